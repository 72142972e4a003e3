//! # tollgate-provider-anthropic
//!
//! Layer 2 of tollgate: the sans-IO adapter for Anthropic's Messages API
//! (`POST {base}/v1/messages`). It turns canonical, OpenAI-shaped chat requests into Messages
//! requests (system prompt, alternating turns, tools and tool results, images and PDFs, JSON
//! mode, thinking, `cache_control`), and Messages responses, named-event streams and errors
//! back into canonical responses, OpenAI-style chunks and typed [`ProviderError`]s. The wire
//! format is public in [`wire`] (with [`request::translate_request`],
//! [`response::message_to_chat_response`] and [`stream::AnthropicStreamDecoder`]) for Anthropic
//! models on other clouds; [`compat`] translates the other way round (Anthropic request →
//! canonical request, canonical response and chunks → Anthropic response and events) for the
//! proxy's Anthropic-compatible `/v1/messages` endpoint.
//!
//! Model strings: `anthropic/<model>`, and bare names starting with `claude-`
//! ([`is_anthropic_model`]).
//!
//! Requests: headers `x-api-key` (from `cfg.api_key`; `cfg.bearer_token` is sent as
//! `Authorization: Bearer` instead, for OAuth tokens), `anthropic-version` (`cfg.api_version`,
//! default [`DEFAULT_API_VERSION`]) and one merged `anthropic-beta` combining the betas a request
//! needs (the Files API for `file_id` sources, the extended cache TTL for `"ttl": "1h"`), betas passed in the request's `anthropic_beta` field and any `anthropic-beta` given in
//! `cfg.headers` (comma-separated, without duplicates). Other `cfg.headers` replace headers of the
//! same name. The base URL (`cfg.api_base`, default [`DEFAULT_API_BASE`]) may be given with or
//! without a trailing `/v1`.
//!
//! Responses carry no timestamp upstream: `created` is the local clock when the response was
//! parsed (or the stream decoder created). Streams always end with a usage chunk
//! (`choices: []`), whether or not the caller set `stream_options.include_usage`; dropping it
//! for callers who did not ask is the caller-facing layer's job.
//!
//! **Must never depend on** an async runtime, an HTTP client or server framework, or any tollgate
//! crate other than `tollgate-core`; it does no I/O and reads no environment variables (the
//! variables it names in [`Adapter::credential_env`] are read by the facade).

pub mod compat;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, CredentialEnv, ProviderError, RawResponse, StreamDecoder,
    UpstreamConfig,
};

pub use compat::{AnthropicEventEncoder, chat_response_to_messages, messages_to_chat_request};
pub use request::{DEFAULT_MAX_TOKENS, JSON_TOOL_NAME, translate_request};
pub use response::{map_stop_reason, message_to_chat_response, usage_from_wire, usage_to_wire};
pub use stream::AnthropicStreamDecoder;

/// The provider prefix.
pub const PROVIDER: &str = "anthropic";

/// The provider prefixes this crate serves.
pub const PROVIDERS: &[&str] = &[PROVIDER];

/// The API base when none is configured.
pub const DEFAULT_API_BASE: &str = "https://api.anthropic.com";

/// The `anthropic-version` header when `cfg.api_version` is not set.
pub const DEFAULT_API_VERSION: &str = "2023-06-01";

/// The adapter for a provider prefix this crate serves.
pub fn adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    (provider == PROVIDER).then(|| Arc::new(AnthropicAdapter::new()) as Arc<dyn Adapter>)
}

/// Whether a bare model name (no `provider/` prefix) is an Anthropic model: `claude-*`.
pub fn is_anthropic_model(model: &str) -> bool {
    model.starts_with("claude-")
}

/// The Messages endpoint for a base URL given as `https://host`, `https://host/v1` or the full
/// `https://host/v1/messages`.
pub fn messages_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/messages") {
        base.to_owned()
    } else if base.ends_with("/v1") {
        format!("{base}/messages")
    } else {
        format!("{base}/v1/messages")
    }
}

/// Anthropic's Messages API.
#[derive(Debug, Clone, Default)]
pub struct AnthropicAdapter;

impl AnthropicAdapter {
    pub fn new() -> Self {
        AnthropicAdapter
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, ProviderError> {
    HeaderValue::from_str(value).map_err(|_| {
        ProviderError::bad_request(format!("the value of header `{name}` is not a valid header value"))
            .with_provider(PROVIDER)
    })
}

/// Joins beta flags into one `anthropic-beta` value, keeping first occurrences in order.
pub fn merge_betas<'a>(betas: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for b in betas.into_iter().flat_map(|b| b.split(',')).map(str::trim) {
        if !b.is_empty() && !seen.contains(&b) {
            seen.push(b);
        }
    }
    (!seen.is_empty()).then(|| seen.join(","))
}

impl Adapter for AnthropicAdapter {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn credential_env(&self) -> CredentialEnv {
        CredentialEnv {
            api_key: &["ANTHROPIC_API_KEY"],
            api_base: &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"],
            bearer_token: &["ANTHROPIC_AUTH_TOKEN"],
            ..CredentialEnv::NONE
        }
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let model = if cfg.model.is_empty() { req.model.as_str() } else { cfg.model.as_str() };
        let translated = translate_request(req, model, cfg)?;
        let mut body = serde_json::to_value(&translated.body).map_err(|e| {
            ProviderError::bad_request(format!("could not serialise the request: {e}"))
                .with_provider(PROVIDER)
        })?;
        if let Value::Object(map) = &mut body {
            for (k, v) in &cfg.extra_body {
                map.insert(k.clone(), v.clone());
            }
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| {
            ProviderError::bad_request(format!("could not serialise the request: {e}"))
                .with_provider(PROVIDER)
        })?;

        let url = messages_url(cfg.api_base.as_deref().unwrap_or(DEFAULT_API_BASE));
        let mut builder = http::Request::builder().method(http::Method::POST).uri(&url);
        let headers = builder.headers_mut().ok_or_else(|| {
            ProviderError::bad_request(format!("invalid Anthropic URL `{url}`")).with_provider(PROVIDER)
        })?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &cfg.api_key {
            headers.insert("x-api-key", header_value("x-api-key", key.expose())?);
        }
        if let Some(token) = &cfg.bearer_token {
            headers
                .insert(AUTHORIZATION, header_value("authorization", &format!("Bearer {}", token.expose()))?);
        }
        let version = cfg.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION);
        headers.insert("anthropic-version", header_value("anthropic-version", version)?);
        let caller_betas = cfg
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("anthropic-beta"))
            .map(|(_, v)| v.as_str());
        if let Some(betas) = merge_betas(caller_betas.chain(translated.betas.iter().map(String::as_str))) {
            headers.insert("anthropic-beta", header_value("anthropic-beta", &betas)?);
        }
        for (k, v) in &cfg.headers {
            if k.eq_ignore_ascii_case("anthropic-beta") {
                continue;
            }
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                ProviderError::bad_request(format!("`{k}` is not a valid header name"))
                    .with_provider(PROVIDER)
            })?;
            headers.insert(name, header_value(k, v)?);
        }
        builder.body(Bytes::from(bytes)).map_err(|e| {
            ProviderError::bad_request(format!("invalid Anthropic request ({url}): {e}"))
                .with_provider(PROVIDER)
        })
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        response::parse_chat_response(&resp.body, response::now_unix())
            .map_err(|e| e.with_status(resp.status.as_u16()))
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(AnthropicStreamDecoder::new(cfg.model.clone(), response::now_unix()))
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        error::classify_response(resp.status.as_u16(), &resp.headers, &resp.body)
    }
}
