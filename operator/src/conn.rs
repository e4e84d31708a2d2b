//! Accepted connections that can be cut: [`Running::kill`](crate::Running::kill) must end
//! the connections a replica serves, as a crash would. Stopping the accept loop is not
//! enough: hyper serves each accepted connection on its own task, so without this a
//! "killed" replica keeps answering its peers' open Raft streams (dropping every message)
//! and their channels never reconnect to the replica restarted on the same address.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tonic::transport::server::{Connected, TcpConnectInfo};

type Dead = Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>>;

/// A TCP connection that fails every read and write once its server is cut.
pub struct Conn {
    io: TcpStream,
    dead: Dead,
}

impl Conn {
    /// Wraps `io`; it is cut when `cut` turns true (or its sender is dropped).
    pub fn new(io: TcpStream, mut cut: watch::Receiver<bool>) -> Self {
        let dead = Box::pin(async move {
            let _ = cut.wait_for(|c| *c).await;
        });
        Self { io, dead }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        // Polling registers the waker, so a pending read wakes up when the server is cut.
        match self.dead.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::ErrorKind::ConnectionAborted.into()),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
