//! Bounds on a request body as it arrives: its method's size limit and
//! `server.request_read_timeout`. tonic has one message limit per service,
//! set to the largest any method needs (an image upload); this body wrapper
//! holds each method to its own, reading the gRPC length prefix of the
//! message as it arrives, so a `GetKtpResult` of 5 MB is refused before it
//! is buffered, like one over tonic's own limit. And a body still arriving
//! when its read time is up is cut, so a client that sends headers and
//! stalls holds its call (and an image slot) no longer than that.

use std::{
    error::Error,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::codegen::Bytes;

/// Length of the prefix of every gRPC message: a compression flag, then
/// the message length as a big-endian `u32`.
const PREFIX: usize = 5;

type BoxError = Box<dyn Error + Send + Sync>;

/// The message was over its method's limit.
#[derive(Debug, thiserror::Error)]
#[error("the request message is {size} bytes, over this method's limit of {limit}")]
pub struct TooLarge {
    /// The message's length, from its prefix.
    pub size: u64,
    /// The method's limit.
    pub limit: usize,
}

/// The message had not fully arrived when its read time was up.
#[derive(Debug, thiserror::Error)]
#[error("the request message did not fully arrive within {} ms of its headers", limit.as_millis())]
pub struct ReadTimeout {
    /// `server.request_read_timeout`.
    pub limit: Duration,
}

/// Why a body was cut, for the call layer to answer.
#[derive(Debug)]
pub enum Refused {
    /// Over the method's size limit.
    TooLarge(TooLarge),
    /// Not fully received in time.
    TimedOut(ReadTimeout),
}

/// When a body must have fully arrived.
#[derive(Debug, Clone, Copy)]
pub struct ReadBy {
    /// The request headers' arrival plus the limit.
    pub at: Instant,
    /// `server.request_read_timeout`, for the error.
    pub limit: Duration,
}

/// A request body whose first message may be at most `limit` bytes, and
/// which must have arrived by `read_by`.
#[derive(Debug)]
pub struct Limited<B> {
    /// Boxed, the body with it: tonic's future for a call holds the
    /// request's body type five times over, for the call's whole life (a
    /// waiting call's for seconds): 72 bytes here were 360 there, and the
    /// body's own 16 bytes 80 (`bench/README.md`, "waiting calls").
    check: Box<Check<B>>,
}

/// The body and what [`Limited`] checks as it arrives.
#[derive(Debug)]
struct Check<B> {
    inner: B,
    limit: usize,
    /// Whether the body is gRPC's length-prefixed messages (else the whole
    /// body is one message, counted as it arrives: Connect's).
    framed: bool,
    /// The prefix bytes seen so far, until all five are.
    prefix: [u8; PREFIX],
    /// Prefix bytes seen (framed), or body bytes (whole).
    seen: usize,
    read_by: Option<ReadBy>,
    /// The timer of `read_by`, made only once the body has to be waited
    /// for (the usual small message arrives with its headers).
    timer: Option<Pin<Box<Sleep>>>,
    /// Set when the body was cut, for the call layer to answer why.
    refused: Arc<OnceLock<Refused>>,
}

impl<B> Limited<B> {
    /// Wraps `inner`; a message over `limit`, or one still arriving at
    /// `read_by`, is cut and the reason noted in `refused`, which the call
    /// layer reads to answer why.
    pub fn new(
        inner: B,
        limit: usize,
        read_by: Option<ReadBy>,
        refused: Arc<OnceLock<Refused>>,
    ) -> Self {
        Self::checked(inner, limit, true, read_by, refused)
    }

    /// [`Self::new`] for a body that is one unframed message (Connect's):
    /// its bytes are counted as they arrive.
    pub fn whole(
        inner: B,
        limit: usize,
        read_by: Option<ReadBy>,
        refused: Arc<OnceLock<Refused>>,
    ) -> Self {
        Self::checked(inner, limit, false, read_by, refused)
    }

    fn checked(
        inner: B,
        limit: usize,
        framed: bool,
        read_by: Option<ReadBy>,
        refused: Arc<OnceLock<Refused>>,
    ) -> Self {
        Self {
            check: Box::new(Check {
                inner,
                limit,
                framed,
                prefix: [0; PREFIX],
                seen: 0,
                read_by,
                timer: None,
                refused,
            }),
        }
    }

    #[cfg(test)]
    fn inspect(&mut self, data: &Bytes) -> Result<(), TooLarge> {
        self.check.inspect(data)
    }
}

impl<B> Check<B> {
    /// Whether the read time is up; starts the timer on the first wait.
    fn timed_out(&mut self, cx: &mut Context<'_>) -> Option<ReadTimeout> {
        let read_by = self.read_by?;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(read_by.at)));
        timer.as_mut().poll(cx).is_ready().then_some(ReadTimeout {
            limit: read_by.limit,
        })
    }

    /// Reads prefix bytes from `data`; `Err` once the length is known to be
    /// over the limit.
    fn inspect(&mut self, data: &Bytes) -> Result<(), TooLarge> {
        if !self.framed {
            self.seen = self.seen.saturating_add(data.len());
            return match self.seen > self.limit {
                true => Err(TooLarge {
                    size: self.seen as u64,
                    limit: self.limit,
                }),
                false => Ok(()),
            };
        }
        if self.seen >= PREFIX {
            return Ok(());
        }
        let mut chunk = data.clone();
        while self.seen < PREFIX && chunk.has_remaining() {
            self.prefix[self.seen] = chunk.get_u8();
            self.seen += 1;
        }
        if self.seen < PREFIX {
            return Ok(());
        }
        let size = u64::from(u32::from_be_bytes([
            self.prefix[1],
            self.prefix[2],
            self.prefix[3],
            self.prefix[4],
        ]));
        if size > self.limit as u64 {
            return Err(TooLarge {
                size,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.check.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(too_large) = this.check.inspect(data)
                {
                    let message = too_large.to_string();
                    let _ = this.check.refused.set(Refused::TooLarge(too_large));
                    return Poll::Ready(Some(Err(message.into())));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.check.timed_out(cx) {
                Some(timed_out) => {
                    let message = timed_out.to_string();
                    let _ = this.check.refused.set(Refused::TimedOut(timed_out));
                    Poll::Ready(Some(Err(message.into())))
                }
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.check.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.check.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(limit: usize) -> Limited<()> {
        Limited::new((), limit, None, Arc::default())
    }

    /// tonic's future for a call holds the body type five times over, for
    /// the call's life: the body and what it checks live behind one pointer.
    #[test]
    fn the_body_wrapper_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<Limited<tonic::body::Body>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn the_length_prefix_decides_even_split_across_frames() {
        let mut body = limited(100);
        assert!(body.inspect(&Bytes::from_static(&[0, 0])).is_ok());
        assert!(
            body.inspect(&Bytes::from_static(&[0, 0, 101, 9, 9]))
                .is_err()
        );

        let mut body = limited(100);
        assert!(
            body.inspect(&Bytes::from_static(&[0, 0, 0, 0, 100, 1]))
                .is_ok()
        );
        // Later frames are the message itself, not prefixes.
        assert!(body.inspect(&Bytes::from_static(&[255; 8])).is_ok());
    }
}
