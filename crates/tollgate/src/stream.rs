//! Streams handed to SDK users.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tollgate_core::chat::{ChatChunk, Usage};
use tollgate_core::completion::TextCompletionResponse;
use tollgate_core::error::ProviderError;
use tollgate_transport::ItemStream;

/// A streamed chat completion: a `futures::Stream` of chunks in arrival order.
///
/// Adapters always ask upstreams for usage so the call can be priced; when the caller did not
/// ask for it (`stream_options.include_usage`), the usage-only chunk is kept out of the stream
/// but is still available from [`ChatStream::usage`] once the stream has ended.
pub struct ChatStream {
    inner: ItemStream<ChatChunk>,
    include_usage: bool,
    usage: Option<Usage>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("include_usage", &self.include_usage)
            .field("usage", &self.usage)
            .finish()
    }
}

impl ChatStream {
    pub(crate) fn new(inner: ItemStream<ChatChunk>, include_usage: bool) -> Self {
        ChatStream { inner, include_usage, usage: None }
    }

    /// The usage the upstream reported (available after its usage chunk has gone by).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(u) = &chunk.usage {
                        this.usage = Some(u.clone());
                    }
                    let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
                    if usage_only && !this.include_usage {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                other => return other,
            }
        }
    }
}

/// A streamed legacy text completion.
pub struct TextCompletionStream {
    inner: ItemStream<TextCompletionResponse>,
    include_usage: bool,
    usage: Option<Usage>,
}

impl std::fmt::Debug for TextCompletionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextCompletionStream").field("usage", &self.usage).finish()
    }
}

impl TextCompletionStream {
    pub(crate) fn new(inner: ItemStream<TextCompletionResponse>, include_usage: bool) -> Self {
        TextCompletionStream { inner, include_usage, usage: None }
    }

    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

impl Stream for TextCompletionStream {
    type Item = Result<TextCompletionResponse, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(u) = &chunk.usage {
                        this.usage = Some(u.clone());
                    }
                    if chunk.choices.is_empty() && chunk.usage.is_some() && !this.include_usage {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                other => return other,
            }
        }
    }
}
