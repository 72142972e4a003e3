//! # tollgate-provider-cohere
//!
//! Layer 2 of tollgate: the sans-IO adapter for Cohere's **v2** API.
//!
//! * chat: OpenAI-shaped `ChatRequest`s become `POST {base}/v2/chat`
//!   bodies (messages with `system`/`user`/`assistant`/`tool` roles, content blocks with images,
//!   tools, `tool_choice`, `response_format`, `thinking`), and Cohere's responses and named-event
//!   SSE streams (`message-start` … `message-end`) become OpenAI chat completions and chunks;
//! * embeddings: `POST {base}/v2/embed` with `input_type` and `embedding_types: ["float"]`;
//! * errors: Cohere's `{"message": ...}` bodies classified into tollgate's
//!   [`ErrorKind`](tollgate_core::ErrorKind)s.
//!
//! The provider prefixes `cohere/` and `cohere_chat/` both map to this adapter (LiteLLM used the
//! second for its chat route; tollgate has one route, v2 chat).
//!
//! **Usage accounting**: Cohere reports `usage.billed_units` (what is charged) and
//! `usage.tokens` (everything the model saw, including tokens Cohere adds itself). tollgate's
//! `prompt_tokens`/`completion_tokens` are the **billed** units, falling back to `tokens` when a
//! response has no billed units, so costs computed from Cohere's published prices match the bill.
//! Cohere does not report prompt-cache or reasoning token counts, so those details stay empty.
//!
//! **Reasoning**: `reasoning_effort` becomes `thinking` (`none` → disabled; `minimal`/`low`,
//! `medium`, `high` → enabled with a 1024/2048/4096-token budget). Thinking blocks and Cohere's
//! `tool_plan` (the model's plan before it calls tools) come back as `reasoning_content`; an
//! assistant turn's `reasoning_content` is sent back as its `tool_plan` when it called tools.
//!
//! **Tool choice**: Cohere knows `REQUIRED` and `NONE`; a named function is sent as that one tool
//! with `REQUIRED`.
//!
//! **Streams** always end with a usage chunk (`choices: []`) when Cohere reports usage, whether or
//! not the caller asked for `stream_options.include_usage`: cost tracking needs it, and the layer
//! that speaks to the client decides whether to forward it.
//!
//! **Response identity**: Cohere's chat and embed responses carry neither the model name nor a
//! creation time. Streams are labelled with the model from `UpstreamConfig`;
//! non-streamed responses have an empty `model` and `created: 0`, which the caller fills in.
//!
//! **Must never depend on** an async runtime, an HTTP client or server, a database, or any tollgate
//! crate other than `tollgate-core`. Adapters never read environment variables: the variables
//! that conventionally hold Cohere credentials are named by `credential_env()`.

mod error;
mod request;
mod response;
mod stream;

use std::sync::Arc;

use bytes::Bytes;
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, CredentialEnv, ProviderError, RawResponse, StreamDecoder,
    UpstreamConfig,
};

pub use request::{DEFAULT_API_BASE, DEFAULT_EMBED_INPUT_TYPE};
pub use stream::CohereStreamDecoder;

/// The provider prefixes this crate serves (`cohere/command-a-03-2025`, `cohere_chat/...`).
pub const PROVIDERS: &[&str] = &["cohere", "cohere_chat"];

/// The adapter for one of [`PROVIDERS`], or `None` for any other prefix.
pub fn adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    let name = PROVIDERS.iter().find(|p| **p == provider)?;
    Some(Arc::new(CohereAdapter::new(name)))
}

/// Whether a bare model name (no `provider/` prefix) is one of Cohere's: the Command family
/// (`command-a-03-2025`, `command-r-plus`, `command-r7b-12-2024`, …), Aya
/// (`c4ai-aya-expanse-32b`, `c4ai-aya-vision-8b`) and the Embed family (`embed-v4.0`,
/// `embed-english-v3.0`, …).
pub fn is_cohere_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m == "command" || m.starts_with("command-") || m.starts_with("c4ai-aya") || m.starts_with("embed-")
}

/// Cohere's v2 API as a tollgate [`Adapter`].
#[derive(Debug, Clone)]
pub struct CohereAdapter {
    provider: &'static str,
}

impl CohereAdapter {
    /// An adapter that reports itself as `provider` (`cohere` or `cohere_chat`).
    pub fn new(provider: &'static str) -> Self {
        CohereAdapter { provider }
    }
}

impl Default for CohereAdapter {
    fn default() -> Self {
        Self::new("cohere")
    }
}

/// `COHERE_API_KEY` first (LiteLLM's name), then `CO_API_KEY` (Cohere's SDKs' name).
const CREDENTIAL_ENV: CredentialEnv = CredentialEnv {
    api_key: &["COHERE_API_KEY", "CO_API_KEY"],
    api_base: &["COHERE_API_BASE"],
    ..CredentialEnv::NONE
};

impl Adapter for CohereAdapter {
    fn provider(&self) -> &str {
        self.provider
    }

    fn credential_env(&self) -> CredentialEnv {
        CREDENTIAL_ENV
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        request::chat_request(self.provider, req, cfg).map_err(|e| e.with_provider(self.provider))
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        response::chat_response(resp).map_err(|e| e.with_provider(self.provider))
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(CohereStreamDecoder::new(self.provider, &cfg.model))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        request::embedding_request(self.provider, req, cfg).map_err(|e| e.with_provider(self.provider))
    }

    fn embedding_response(&self, resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
        response::embedding_response(resp).map_err(|e| e.with_provider(self.provider))
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        error::classify(resp).with_provider(self.provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_bare_names() {
        assert_eq!(adapter("cohere").unwrap().provider(), "cohere");
        assert_eq!(adapter("cohere_chat").unwrap().provider(), "cohere_chat");
        assert!(adapter("openai").is_none());
        assert!(is_cohere_model("command-a-03-2025"));
        assert!(is_cohere_model("command-r-plus"));
        assert!(is_cohere_model("embed-v4.0"));
        assert!(is_cohere_model("c4ai-aya-vision-8b"));
        assert!(!is_cohere_model("gpt-4o"));
        assert!(!is_cohere_model("commander"));
        let env = adapter("cohere").unwrap().credential_env();
        assert_eq!(env.api_key, &["COHERE_API_KEY", "CO_API_KEY"]);
    }
}
