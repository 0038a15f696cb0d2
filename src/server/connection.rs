//! How an accepted gRPC connection is wrapped before h2 gets it.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tonic::transport::server::{Connected, TcpConnectInfo};

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

impl Connected for CopySmallWrites {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.connect_info()
    }
}
