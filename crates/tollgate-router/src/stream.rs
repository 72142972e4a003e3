//! Bookkeeping that outlives the routing decision: the in-flight slot of the answering
//! deployment, and the stream wrapper that releases it when the stream ends.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tollgate_core::ProviderError;
use tollgate_transport::ItemStream;

use crate::router::Inner;

/// One call's hold on its deployment: ends the in-flight count when dropped.
pub(crate) struct Completion {
    inner: Arc<Inner>,
    deployment: usize,
}

impl Completion {
    pub(crate) fn new(inner: Arc<Inner>, deployment: usize) -> Self {
        Completion { inner, deployment }
    }

    /// Tokens served, counted against the deployment's tpm.
    pub(crate) fn add_tokens(&self, tokens: u64) {
        if tokens > 0 {
            let d = &self.inner.deployments[self.deployment];
            self.inner.state.add_tokens(d.r(), self.inner.clock.now_ms(), tokens);
        }
    }

    /// A failure after the response was committed (mid-stream).
    fn failed(&self, e: &ProviderError) {
        if e.kind.should_cool_down() {
            let d = &self.inner.deployments[self.deployment];
            let _ = self.inner.state.record_failure(d.r(), self.inner.clock.now_ms(), self.inner.policy());
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let d = &self.inner.deployments[self.deployment];
        self.inner.state.end(d.r());
    }
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").field("deployment", &self.inner.deployments[self.deployment].id).finish()
    }
}

/// A routed stream: the upstream items, with the deployment's in-flight slot held until the
/// stream ends or is dropped, and the usage chunk counted against its tpm.
pub struct RoutedStream<T> {
    inner: ItemStream<T>,
    completion: Option<Completion>,
    usage_of: fn(&T) -> Option<u64>,
}

impl<T> RoutedStream<T> {
    pub(crate) fn new(inner: ItemStream<T>, completion: Completion, usage_of: fn(&T) -> Option<u64>) -> Self {
        RoutedStream { inner, completion: Some(completion), usage_of }
    }
}

impl<T> fmt::Debug for RoutedStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedStream").field("completion", &self.completion).finish_non_exhaustive()
    }
}

impl<T> Stream for RoutedStream<T> {
    type Item = Result<T, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(v)) => {
                if let (Some(tokens), Some(c)) = ((this.usage_of)(v), &this.completion) {
                    c.add_tokens(tokens);
                }
            }
            Some(Err(e)) => {
                if let Some(c) = this.completion.take() {
                    c.failed(e);
                }
            }
            None => {
                this.completion = None;
            }
        }
        Poll::Ready(item)
    }
}
