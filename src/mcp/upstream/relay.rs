//! An upstream's answer on its way to the client: each frame passed on as
//! it arrives, read from the upstream only as fast as the client takes it
//! (hyper polls this body when it can write; this body polls the
//! upstream's only then), so neither side's backlog grows here. A client
//! that leaves drops this body, which drops the upstream's answer: hyper
//! closes that connection (HTTP/1.1) or resets the stream (h2), and the
//! upstream sees the request cancelled.
//!
//! When the tool policy can hide something, `tools/list` results are cut
//! on the way (`filter`): a JSON answer is held whole (it is one message),
//! an SSE stream one event at a time.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::audit::{Audit, Outcome};
use super::client::Answer;
use super::filter::{self, SseFilter};
use super::Caller;
use crate::metrics::{UpstreamError, UpstreamMetrics};

/// The stream's error: an `io::Error`, as the server's body type wants.
type BoxError = std::io::Error;

fn broken(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BoxError {
    std::io::Error::other(why)
}

/// How the answer's bytes are treated.
pub(crate) enum Mode {
    /// Untouched.
    Pass,
    /// A JSON answer that may hold a tool list: held whole, then filtered.
    Json(BytesMut),
    /// An SSE stream: filtered event by event.
    Sse(SseFilter),
}

pub(crate) struct Relay {
    upstream: Answer,
    mode: Mode,
    /// Whose tools a filtering mode keeps.
    caller: Arc<Caller>,
    /// Filtered bytes ready to go.
    ready: VecDeque<Bytes>,
    ended: bool,
    broken: bool,
    metrics: Arc<UpstreamMetrics>,
    /// The tool calls this answer ends, and the upstream's status: one
    /// audit line each when the answer ends or is abandoned.
    audit: Option<(Audit, u16)>,
}

impl Relay {
    pub(crate) fn new(
        upstream: Answer,
        mode: Mode,
        caller: Arc<Caller>,
        metrics: Arc<UpstreamMetrics>,
        audit: Option<(Audit, u16)>,
    ) -> Relay {
        Relay {
            upstream,
            mode,
            caller,
            ready: VecDeque::new(),
            ended: false,
            broken: false,
            metrics,
            audit,
        }
    }

    /// Takes in one data frame from the upstream.
    fn take(&mut self, data: Bytes) -> Result<Option<Bytes>, BoxError> {
        let keep = |tool: &str| self.caller.may_call(tool);
        match &mut self.mode {
            Mode::Pass => Ok(Some(data)),
            Mode::Json(held) => {
                if held.len() + data.len() > filter::MAX_HELD {
                    return Err(broken(
                        "a JSON answer from the upstream is too large to filter",
                    ));
                }
                held.extend_from_slice(&data);
                Ok(None)
            }
            Mode::Sse(sse) => {
                sse.push(&data, &keep, &mut self.ready).map_err(broken)?;
                Ok(None)
            }
        }
    }

    /// The upstream's answer ended: what is still held goes out.
    fn finish(&mut self) {
        let keep = |tool: &str| self.caller.may_call(tool);
        match &mut self.mode {
            Mode::Pass => {}
            Mode::Json(held) => {
                let held = held.split().freeze();
                if !held.is_empty() {
                    let out = filter::filter_json(&held, &keep).map_or(held, Bytes::from);
                    self.ready.push_back(out);
                }
            }
            Mode::Sse(sse) => self.ready.extend(sse.finish(&keep)),
        }
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some(b) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finish();
                    this.ended = true;
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match this.take(data) {
                        Ok(Some(pass)) => return Poll::Ready(Some(Ok(Frame::data(pass)))),
                        Ok(None) => {}
                        Err(e) => {
                            this.broken = true;
                            this.metrics.failed(UpstreamError::Broken);
                            return Poll::Ready(Some(Err(e)));
                        }
                    },
                    // Trailers are headers sent late: the same allowlist
                    // holds (an upstream's `Set-Cookie` or
                    // `WWW-Authenticate` stays on its side there too).
                    Err(frame) => {
                        let kept = frame
                            .trailers_ref()
                            .and_then(super::forward::response_trailers);
                        if let Some(t) = kept {
                            return Poll::Ready(Some(Ok(Frame::trailers(t))));
                        }
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    // The upstream broke off: the client's answer breaks
                    // off too (hyper resets it), never ends as if whole.
                    this.broken = true;
                    this.metrics.failed(UpstreamError::Broken);
                    return Poll::Ready(Some(Err(broken(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.mode {
            Mode::Pass => self.upstream.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((audit, status)) = &self.audit {
            let outcome = if self.broken {
                Outcome::UpstreamBroken
            } else if self.ended && self.ready.is_empty() {
                Outcome::Completed
            } else {
                Outcome::ClientGone
            };
            audit.write(outcome, Some(*status));
        }
    }
}
