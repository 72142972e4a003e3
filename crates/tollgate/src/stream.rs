//! Streams handed to SDK users.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tollgate_core::chat::{ChatChunk, Usage};
use tollgate_core::completion::TextCompletionResponse;
use tollgate_core::error::ProviderError;
use tollgate_transport::ItemStream;

/// A streamed item that may carry usage.
pub trait StreamItem {
    fn usage(&self) -> Option<&Usage>;
    /// A chunk that exists only to report usage (no choices), as OpenAI sends last.
    fn is_usage_only(&self) -> bool;
}

impl StreamItem for ChatChunk {
    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
    fn is_usage_only(&self) -> bool {
        self.choices.is_empty() && self.usage.is_some()
    }
}

impl StreamItem for TextCompletionResponse {
    fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
    fn is_usage_only(&self) -> bool {
        self.choices.is_empty() && self.usage.is_some()
    }
}

/// A streamed response: a `futures::Stream` of items in arrival order.
///
/// Adapters always ask upstreams for usage so the call can be priced; when the caller did not
/// ask for it (`stream_options.include_usage`), the usage-only chunk is kept out of the stream
/// but is still available from [`UsageStream::usage`] once it has gone by.
pub struct UsageStream<T> {
    inner: ItemStream<T>,
    include_usage: bool,
    usage: Option<Usage>,
}

/// A streamed chat completion.
pub type ChatStream = UsageStream<ChatChunk>;
/// A streamed legacy text completion.
pub type TextCompletionStream = UsageStream<TextCompletionResponse>;

impl<T> std::fmt::Debug for UsageStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageStream")
            .field("include_usage", &self.include_usage)
            .field("usage", &self.usage)
            .finish()
    }
}

impl<T> UsageStream<T> {
    pub(crate) fn new(inner: ItemStream<T>, include_usage: bool) -> Self {
        UsageStream { inner, include_usage, usage: None }
    }

    /// The usage the upstream reported (available after its usage chunk has gone by).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

impl<T: StreamItem> Stream for UsageStream<T> {
    type Item = Result<T, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(item))) => {
                    if let Some(u) = item.usage() {
                        this.usage = Some(u.clone());
                    }
                    if item.is_usage_only() && !this.include_usage {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(item)));
                }
                other => return other,
            }
        }
    }
}
