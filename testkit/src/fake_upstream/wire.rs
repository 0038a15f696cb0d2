//! HTTP/1.1 on the wire: reading one request, writing every kind of answer
//! (and non-answer) a [`Reply`] stands for.

use std::{collections::HashMap, sync::atomic::Ordering, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{Recorded, Reply, State};

/// Reads and discards until the peer closes; counts that as abandoned.
pub(super) async fn wait_for_close(stream: &mut TcpStream, state: &State) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
    state.abandoned.fetch_add(1, Ordering::SeqCst);
}

/// Sends `reply` (already resolved); false when the connection must close
/// afterwards.
pub(super) async fn answer(stream: &mut TcpStream, state: &State, mut reply: Reply) -> bool {
    while let Reply::Delayed(pause, then) = reply {
        let mut probe = [0u8; 1];
        tokio::select! {
            () = tokio::time::sleep(pause) => reply = *then,
            // HTTP/1.1 clients send nothing more while waiting: a read that
            // ends means the gateway closed the connection.
            _ = stream.read(&mut probe) => {
                state.abandoned.fetch_add(1, Ordering::SeqCst);
                return false;
            }
        }
    }
    match reply {
        Reply::Json(status, body) => {
            let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
            write_whole(stream, status, &headers, body.to_string().as_bytes()).await
        }
        Reply::Raw {
            status,
            headers,
            body,
        } => write_whole(stream, status, &headers, &body).await,
        Reply::Hang => {
            wait_for_close(stream, state).await;
            false
        }
        Reply::CutMidBody => {
            write_part(stream, br#"{"data": {"nik": "#).await;
            false
        }
        Reply::ResetMidBody(part) => {
            write_part(stream, &part).await;
            // Give the gateway time to read the head as such (so the cut
            // comes after the status), then reset.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = stream.set_zero_linger();
            false
        }
        Reply::Close => false,
        Reply::Reset => {
            let _ = stream.set_zero_linger();
            false
        }
        Reply::Huge {
            status,
            len,
            chunked,
        } => {
            write_huge(stream, status, len, chunked).await;
            false
        }
        Reply::Cycle(..) | Reply::Sequence(..) | Reply::Delayed(..) => {
            unreachable!("resolved before answering")
        }
    }
}

async fn write_whole(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> bool {
    let framed = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    let mut head = format!("HTTP/1.1 {status} Fake\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !framed {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// A 200 head announcing 1000 bytes and only `part` of them.
async fn write_part(stream: &mut TcpStream, part: &[u8]) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let _ = stream.write_all(&[head.as_bytes(), part].concat()).await;
    let _ = stream.flush().await;
}

/// Streams `len` bytes of a JSON-looking body until done or until the
/// gateway stops reading and closes the connection.
async fn write_huge(stream: &mut TcpStream, status: u16, len: usize, chunked: bool) {
    const PIECE: usize = 64 * 1024;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let head =
        format!("HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let piece = vec![b' '; PIECE];
    let mut sent = 0;
    while sent < len {
        let n = PIECE.min(len - sent);
        let ok = if chunked {
            let size = format!("{n:x}\r\n");
            stream.write_all(size.as_bytes()).await.is_ok()
                && stream.write_all(&piece[..n]).await.is_ok()
                && stream.write_all(b"\r\n").await.is_ok()
        } else {
            stream.write_all(&piece[..n]).await.is_ok()
        };
        if !ok {
            return;
        }
        sent += n;
    }
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
}

/// Reads one request head and its `Content-Length` body; `None` at EOF.
pub(super) async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        read_more(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        read_more(stream, buf).await?;
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    let url = url::Url::parse(&format!("http://fake{target}")).ok()?;
    Some(Recorded {
        method,
        path: url.path().to_owned(),
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body,
        received: std::time::Instant::now(),
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 64 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
