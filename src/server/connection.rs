//! How an accepted gRPC connection is wrapped before h2 gets it: the write
//! hint that batches answers, and the HTTP/2 client preface, read before
//! serving (within `server.handshake_timeout`) and then handed to h2 again.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::TcpStream,
};

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

/// Reads the client preface from `io`, so that a connection counts as
/// established only once the client has spoken HTTP/2: a socket that stays
/// silent (or speaks something else) can then be closed before h2 holds
/// buffers for it. h2 still gets the preface, from [`PrefaceRead`].
pub(super) async fn read_preface<IO: AsyncRead + Unpin>(mut io: IO) -> io::Result<PrefaceRead<IO>> {
    let mut preface = [0; PREFACE.len()];
    io.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an HTTP/2 client preface",
        ));
    }
    Ok(PrefaceRead { io, replayed: 0 })
}

/// A connection whose preface was already read: reads give it again first.
pub(super) struct PrefaceRead<IO> {
    io: IO,
    /// How much of the preface h2 has read back.
    replayed: usize,
}

impl<IO: AsyncRead + Unpin> AsyncRead for PrefaceRead<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(rest) = PREFACE.get(self.replayed..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for PrefaceRead<IO> {
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
