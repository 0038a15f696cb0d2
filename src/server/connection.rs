//! How an accepted connection is wrapped before h2 or hyper's HTTP/1.1 gets
//! it: the write hint that batches answers, and the first bytes, read
//! before serving (within `server.handshake_timeout`) to tell HTTP/2's
//! client preface from an HTTP/1.1 request, then handed over again.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::server::TlsStream;

use crate::security::tls::ALPN_HTTP1;

/// An accepted gRPC connection that tells h2 it has no vectored writes, so
/// that a call's answer leaves in one write.
///
/// h2 copies a DATA payload into its write buffer only below a threshold:
/// 256 bytes for vectored IO, 1 KiB otherwise. A `GetKtpResult` answer is
/// about 300 bytes, so on a plain socket h2 chains it as a separate buffer
/// and must write it out before it can encode the trailers: two `writev`s
/// per call, each with the cost of loopback or NIC delivery, never shared
/// with other answers. Below 1 KiB it is copied instead, and the headers,
/// data and trailers of every answer ready at once go out in one write
/// (`bench/README.md`). Only the hint changes; the bytes sent do not.
pub(super) struct CopySmallWrites(pub(super) TcpStream);

impl AsyncRead for CopySmallWrites {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CopySmallWrites {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// What every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection speaks, as its first bytes (or TLS's ALPN) tell; the
/// bytes read to tell are read again by whoever serves it.
pub(super) enum Spoken<IO> {
    /// HTTP/2 with prior knowledge (or `h2` agreed through ALPN).
    Http2(Replayed<IO>),
    /// Anything else: HTTP/1.1, whose parser decides.
    Http1(Replayed<IO>),
}

/// Reads from `io` until its bytes either are the HTTP/2 client preface or
/// cannot be: a connection counts as established only once the client has
/// spoken, so a socket that stays silent (or sends part of a preface and
/// stalls) is closed by the handshake timeout before h2 or hyper hold
/// buffers for it. An HTTP/1.1 request differs from the preface by its
/// second byte at the latest (`POST`, `GET`, `OPTIONS`).
pub(super) async fn sniff<IO: AsyncRead + Unpin>(mut io: IO) -> io::Result<Spoken<IO>> {
    let mut head = [0; PREFACE.len()];
    let mut len = 0;
    while len < PREFACE.len() {
        let n = io.read(&mut head[len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a request",
            ));
        }
        len += n;
        if head[..len] != PREFACE[..len] {
            return Ok(Spoken::Http1(Replayed::new(io, head, len)));
        }
    }
    Ok(Spoken::Http2(Replayed::new(io, head, len)))
}

/// After TLS: `h2` agreed through ALPN must be followed by the preface;
/// `http/1.1` is HTTP/1.1; without ALPN the first bytes tell, as in clear
/// text.
pub(super) async fn by_alpn<IO>(tls: TlsStream<IO>) -> io::Result<Spoken<TlsStream<IO>>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tls.get_ref().1.alpn_protocol() {
        Some(ALPN_HTTP1) => Ok(Spoken::Http1(Replayed::new(tls, [0; PREFACE.len()], 0))),
        Some(_) => match sniff(tls).await? {
            Spoken::Http2(io) => Ok(Spoken::Http2(io)),
            Spoken::Http1(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "h2 agreed through ALPN, but no HTTP/2 client preface",
            )),
        },
        None => sniff(tls).await,
    }
}

/// A connection whose first bytes were already read: reads give them again
/// first.
pub(super) struct Replayed<IO> {
    io: IO,
    head: [u8; PREFACE.len()],
    len: usize,
    /// How much of `head` has been read back.
    replayed: usize,
}

impl<IO> Replayed<IO> {
    fn new(io: IO, head: [u8; PREFACE.len()], len: usize) -> Self {
        Self {
            io,
            head,
            len,
            replayed: 0,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replayed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (from, to) = (self.replayed, self.len);
        if let Some(rest) = self.head.get(from..to).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Replayed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
