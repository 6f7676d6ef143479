//! A connection whose reads fail with `TimedOut` once the request part
//! being read (head or body, as [`RequestClock`] tracks them) is past its
//! deadline. hyper then ends the connection: a client sending a byte at a
//! time cannot hold it. Idle connections and streamed responses have no
//! deadline. Writes pass through.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::request_clock::{Part, ReadTimeouts, RequestClock};

/// A connection (TCP, or TLS over it: the deadlines must see the
/// plaintext request) with request read deadlines.
pub struct TimedIo<S = TcpStream> {
    inner: S,
    clock: RequestClock,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is set to.
    armed: Option<Instant>,
}

impl<S> TimedIo<S> {
    pub fn new(inner: S, timeouts: ReadTimeouts) -> Self {
        TimedIo {
            inner,
            clock: RequestClock::new(timeouts),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            armed: None,
        }
    }

    fn timed_out(&self, part: Part) -> io::Error {
        let what = match part {
            Part::Head => "request head",
            Part::Body => "request body",
        };
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} not received within {}s",
                self.clock.timeout(part).as_secs_f64()
            ),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((deadline, part)) = this.clock.deadline() {
            if Instant::now() >= deadline {
                return Poll::Ready(Err(this.timed_out(part)));
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.clock.on_read(&buf.filled()[before..], Instant::now());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, part)) = this.clock.deadline() else {
                    return Poll::Pending;
                };
                if this.armed != Some(deadline) {
                    this.timer
                        .as_mut()
                        .reset(tokio::time::Instant::from_std(deadline));
                    this.armed = Some(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(this.timed_out(part))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
