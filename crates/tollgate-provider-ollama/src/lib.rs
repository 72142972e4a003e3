//! # tollgate-provider-ollama
//!
//! Layer 2 of tollgate: the sans-IO adapter for Ollama's **native** API.
//!
//! * chat: OpenAI-shaped `ChatRequest`s become `POST {base}/api/chat`
//!   bodies (messages with inline base64 `images`, `tools`, tool calls whose `arguments` are JSON
//!   *objects*, `format`, `options`, `think`, and an explicit `stream` flag because Ollama streams
//!   by default), and Ollama's replies and NDJSON streams become OpenAI chat completions and chunks;
//! * embeddings: `POST {base}/api/embed`;
//! * errors: Ollama's `{"error": "..."}` bodies classified into tollgate's
//!   [`ErrorKind`](tollgate_core::ErrorKind)s.
//!
//! Both prefixes, `ollama/` and `ollama_chat/`, use `/api/chat`. (LiteLLM sent `ollama/` to the
//! prompt-only `/api/generate`; chat is the better default: it keeps roles, tools and images.)
//!
//! **Ids**: Ollama's replies carry no id. Every response and stream gets a fresh
//! `chatcmpl-<hex>` id (all chunks of one stream share it), and tool calls without an id get
//! `call_<hex>_<n>`. `created` comes from Ollama's `created_at`.
//!
//! **Usage**: `prompt_tokens` ← `prompt_eval_count`, `completion_tokens` ← `eval_count`
//! (which includes thinking tokens). Ollama reports no cache or reasoning breakdown.
//!
//! **Mapping notes**: `max_tokens`/`max_completion_tokens` → `options.num_predict`; `temperature`,
//! `top_p`, `stop`, `seed`, `frequency_penalty`, `presence_penalty` → `options`; Ollama option names
//! given at the top level of a request (`top_k`, `num_ctx`, `min_p`, …) are moved into `options`
//! and other unknown fields (`keep_alive`, `think`, …) pass through. `response_format` →
//! `format` (`"json"` or the schema). `reasoning_effort` → `think` (`none` → `false`, levels pass
//! through, `minimal` → `"low"`); `thinking` comes back as `reasoning_content` and goes out again
//! on assistant turns. `tool_choice: none` is sent as "no tools"; `required` and named functions
//! have no Ollama equivalent (unsupported unless `drop_params`). Tool results carry `tool_name`,
//! looked up from the assistant turn that made the call.
//!
//! **Streams** always end with a usage chunk (`choices: []`) when Ollama reports counts, whether or
//! not the caller asked for `stream_options.include_usage`: cost tracking needs it, and the layer
//! that speaks to the client decides whether to forward it.
//!
//! **Must never depend on** an async runtime, an HTTP client or server, a database, or any tollgate
//! crate other than `tollgate-core`. Adapters never read environment variables: the variables
//! that conventionally point at Ollama are named by `credential_env()`.

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

pub use request::DEFAULT_API_BASE;
pub use stream::OllamaStreamDecoder;

/// The provider prefixes this crate serves (`ollama/llama3.2`, `ollama_chat/qwen3`).
pub const PROVIDERS: &[&str] = &["ollama", "ollama_chat"];

/// The adapter for one of [`PROVIDERS`], or `None` for any other prefix. Ollama model names
/// (`llama3.2`, `qwen3:8b`, …) are not recognisable without the prefix, so there is no bare-name
/// rule.
pub fn adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    let name = PROVIDERS.iter().find(|p| **p == provider)?;
    Some(Arc::new(OllamaAdapter::new(name)))
}

/// Ollama's native API as a tollgate [`Adapter`].
#[derive(Debug, Clone)]
pub struct OllamaAdapter {
    provider: &'static str,
}

impl OllamaAdapter {
    /// An adapter that reports itself as `provider` (`ollama` or `ollama_chat`).
    pub fn new(provider: &'static str) -> Self {
        OllamaAdapter { provider }
    }
}

impl Default for OllamaAdapter {
    fn default() -> Self {
        Self::new("ollama")
    }
}

/// `OLLAMA_API_BASE` (LiteLLM's name) then `OLLAMA_HOST` (Ollama's own, which may lack the
/// scheme: `127.0.0.1:11434` is accepted and gets `http://`). A key is optional (Ollama itself
/// needs none; authenticating proxies and hosted Ollama do): `OLLAMA_API_KEY`.
const CREDENTIAL_ENV: CredentialEnv = CredentialEnv {
    api_key: &["OLLAMA_API_KEY"],
    api_base: &["OLLAMA_API_BASE", "OLLAMA_HOST"],
    ..CredentialEnv::NONE
};

impl Adapter for OllamaAdapter {
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
        response::chat_response(resp, &response::new_id()).map_err(|e| e.with_provider(self.provider))
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(OllamaStreamDecoder::new(self.provider, &cfg.model))
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

/// Parses a non-streamed `/api/chat` reply with a caller-chosen id instead of a fresh random
/// one (for reproducible fixtures and for callers that already own a request id).
pub fn chat_response_with_id(resp: &RawResponse, id: &str) -> Result<ChatResponse, ProviderError> {
    response::chat_response(resp, id).map_err(|e| e.with_provider("ollama"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(adapter("ollama").unwrap().provider(), "ollama");
        assert_eq!(adapter("ollama_chat").unwrap().provider(), "ollama_chat");
        assert!(adapter("openai").is_none());
        let env = adapter("ollama").unwrap().credential_env();
        assert_eq!(env.api_base, &["OLLAMA_API_BASE", "OLLAMA_HOST"]);
    }
}
