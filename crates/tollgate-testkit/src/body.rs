//! The response body type: pre-split chunks delivered with optional delays, then an ending
//! (complete, stall, or cut).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use crate::response::Ending;

/// How long a cut body waits after its last chunk before tearing the connection down, so that
/// the chunks are on the wire first.
const CUT_GRACE: Duration = Duration::from_millis(25);

/// The error a cut body yields: hyper tears the connection (HTTP/2: the stream) down on it.
#[derive(Debug)]
pub(crate) struct ScriptedCut;

impl fmt::Display for ScriptedCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tollgate-testkit: body cut as scripted")
    }
}

impl std::error::Error for ScriptedCut {}

pub(crate) struct MockBody {
    chunks: VecDeque<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    ending: Ending,
    sent: usize,
    cut_done: bool,
    /// Set when the length is known up front (one whole chunk, complete ending): sent as
    /// `content-length` over HTTP/1.1.
    exact_len: Option<u64>,
}

impl fmt::Debug for MockBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBody").field("chunks_left", &self.chunks.len()).field("sent", &self.sent).finish()
    }
}

impl MockBody {
    pub(crate) fn new(chunks: VecDeque<Bytes>, delay: Duration, ending: Ending, known_length: bool) -> Self {
        let exact_len =
            (known_length && ending == Ending::Complete).then(|| chunks.iter().map(|c| c.len() as u64).sum());
        MockBody { chunks, delay, sleep: None, ending, sent: 0, cut_done: false, exact_len }
    }

    /// A complete body of one piece.
    pub(crate) fn full(body: Bytes) -> Self {
        let chunks = if body.is_empty() { VecDeque::new() } else { VecDeque::from([body]) };
        Self::new(chunks, Duration::ZERO, Ending::Complete, true)
    }

    fn chunk_limit(&self) -> usize {
        match self.ending {
            Ending::Complete => usize::MAX,
            Ending::Stall(n) | Ending::Cut(n) => n,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = ScriptedCut;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ScriptedCut>>> {
        let this = self.get_mut();
        if this.sent < this.chunk_limit() && !this.chunks.is_empty() {
            if this.sent > 0 && !this.delay.is_zero() {
                let delay = this.delay;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            if let Some(chunk) = this.chunks.pop_front() {
                this.sent += 1;
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
        match this.ending {
            Ending::Complete => Poll::Ready(None),
            // Never woken: the body ends only when the connection is dropped.
            Ending::Stall(_) => Poll::Pending,
            Ending::Cut(_) if !this.cut_done => {
                // Give the connection time to flush the chunks already yielded: hyper discards
                // buffered bytes (HTTP/1.1 write buffer, queued HTTP/2 DATA frames) on a body error.
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_GRACE)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.cut_done = true;
                Poll::Ready(Some(Err(ScriptedCut)))
            }
            Ending::Cut(_) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ending == Ending::Complete && self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(_) => SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum()),
            None => SizeHint::default(),
        }
    }
}
