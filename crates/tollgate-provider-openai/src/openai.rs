//! OpenAI itself: `POST {base}/chat/completions`, `/embeddings`, `/completions`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tollgate_core::adapter::join_url;
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{
    Adapter, CredentialEnv, ErrorKind, ProviderError, RawResponse, StreamDecoder, UpstreamConfig,
};

use crate::wire::{
    self, DoneRule, JsonObject, SseJsonDecoder, bad_request, insert_bearer, merge_extra_body, non_empty,
    post_json, request_object, set_stream_options,
};

/// OpenAI's API base.
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";

const PROVIDER: &str = "openai";

/// Whether `model` is an OpenAI reasoning model (o1, o3, o4 and gpt-5 families), which takes
/// `max_completion_tokens` and rejects `max_tokens`.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.strip_prefix("openai/").unwrap_or(model);
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| m.starts_with(p))
}

/// The chat body OpenAI and Azure share: the canonical request with the upstream model,
/// `max_completion_tokens` for reasoning models, usage always requested on streams,
/// `cfg.extra_body` on top.
pub(crate) fn openai_chat_body(
    provider: &str,
    req: &ChatRequest,
    cfg: &UpstreamConfig,
) -> Result<JsonObject, ProviderError> {
    let mut body = request_object(provider, req, &cfg.model)?;
    if is_reasoning_model(&cfg.model)
        && let Some(v) = body.remove("max_tokens")
    {
        body.entry("max_completion_tokens").or_insert(v);
    }
    set_stream_options(&mut body, req.is_stream(), true);
    merge_extra_body(&mut body, cfg);
    Ok(body)
}

/// The text-completion body OpenAI and Azure share.
pub(crate) fn openai_text_body(
    provider: &str,
    req: &TextCompletionRequest,
    cfg: &UpstreamConfig,
) -> Result<JsonObject, ProviderError> {
    let mut body = request_object(provider, req, &cfg.model)?;
    set_stream_options(&mut body, req.stream.unwrap_or(false), true);
    merge_extra_body(&mut body, cfg);
    Ok(body)
}

pub(crate) fn embedding_body(
    provider: &str,
    req: &EmbeddingRequest,
    cfg: &UpstreamConfig,
) -> Result<JsonObject, ProviderError> {
    let mut body = request_object(provider, req, &cfg.model)?;
    merge_extra_body(&mut body, cfg);
    Ok(body)
}

/// The adapter for `api.openai.com` (or any base given through `OPENAI_BASE_URL`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiAdapter;

impl OpenAiAdapter {
    pub fn new() -> Self {
        OpenAiAdapter
    }

    fn post(
        &self,
        path: &str,
        cfg: &UpstreamConfig,
        body: &JsonObject,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let custom_base = cfg.api_base.as_deref().map(str::trim).filter(|b| !b.is_empty());
        let base = custom_base.unwrap_or(OPENAI_DEFAULT_BASE);
        let mut headers = HeaderMap::new();
        match non_empty(cfg.api_key.as_ref()).or(non_empty(cfg.bearer_token.as_ref())) {
            Some(key) => insert_bearer(PROVIDER, &mut headers, key)?,
            // A custom base may be a local server that needs no key; api.openai.com always does.
            None if custom_base.is_none() => {
                return Err(ProviderError::new(
                    ErrorKind::Authentication,
                    "no OpenAI API key: set OPENAI_API_KEY or pass api_key",
                )
                .with_provider(PROVIDER)
                .with_code("missing_api_key"));
            }
            None => {}
        }
        if let Some(org) = cfg.organization.as_deref().filter(|o| !o.is_empty()) {
            let v = HeaderValue::from_str(org).map_err(|_| {
                bad_request(PROVIDER, "the OpenAI organization id is not a valid header value")
            })?;
            headers.insert("openai-organization", v);
        }
        post_json(PROVIDER, &join_url(base, path), headers, cfg, body)
    }
}

impl Adapter for OpenAiAdapter {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn credential_env(&self) -> CredentialEnv {
        CredentialEnv {
            api_key: &["OPENAI_API_KEY"],
            api_base: &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
            ..CredentialEnv::NONE
        }
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let body = openai_chat_body(PROVIDER, req, cfg)?;
        self.post("chat/completions", cfg, &body)
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        wire::parse_success(PROVIDER, resp, "chat completion")
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        _cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(SseJsonDecoder::<ChatChunk>::new(PROVIDER, DoneRule::Required))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let body = embedding_body(PROVIDER, req, cfg)?;
        self.post("embeddings", cfg, &body)
    }

    fn embedding_response(&self, resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
        wire::parse_success(PROVIDER, resp, "embeddings")
    }

    fn text_completion_request(
        &self,
        req: &TextCompletionRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let body = openai_text_body(PROVIDER, req, cfg)?;
        self.post("completions", cfg, &body)
    }

    fn text_completion_response(&self, resp: &RawResponse) -> Result<TextCompletionResponse, ProviderError> {
        wire::parse_success(PROVIDER, resp, "text completion")
    }

    fn text_completion_stream_decoder(
        &self,
        _req: &TextCompletionRequest,
        _cfg: &UpstreamConfig,
    ) -> Option<Box<dyn StreamDecoder<TextCompletionResponse>>> {
        Some(Box::new(SseJsonDecoder::<TextCompletionResponse>::new(PROVIDER, DoneRule::Required)))
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        wire::error_response(PROVIDER, resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_model_families() {
        for m in ["o1", "o1-mini", "o3-mini-2025-01-31", "o4-mini", "gpt-5", "gpt-5-nano", "openai/o3"] {
            assert!(is_reasoning_model(m), "{m}");
        }
        for m in ["gpt-4o", "gpt-4.1-mini", "chatgpt-4o-latest", "text-embedding-3-small"] {
            assert!(!is_reasoning_model(m), "{m}");
        }
    }

    #[test]
    fn missing_key_is_an_authentication_error_only_for_the_default_base() {
        let req = ChatRequest::new("gpt-4o", vec![tollgate_core::Message::user("hi")]);
        let cfg = UpstreamConfig::new("gpt-4o");
        let err = OpenAiAdapter.chat_request(&req, &cfg).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Authentication);
        assert!(err.message.contains("OPENAI_API_KEY"));
        let mut cfg = UpstreamConfig::new("gpt-4o");
        cfg.api_base = Some("http://127.0.0.1:8000/v1".into());
        let r = OpenAiAdapter.chat_request(&req, &cfg).unwrap();
        assert!(r.headers().get("authorization").is_none());
        assert_eq!(r.uri(), "http://127.0.0.1:8000/v1/chat/completions");
    }

    #[test]
    fn credentials_are_marked_sensitive() {
        let req = ChatRequest::new("gpt-4o", vec![tollgate_core::Message::user("hi")]);
        let mut cfg = UpstreamConfig::new("gpt-4o");
        cfg.api_key = Some("sk-test".into());
        let r = OpenAiAdapter.chat_request(&req, &cfg).unwrap();
        assert!(r.headers()["authorization"].is_sensitive());
    }
}
