//! The sans-IO adapter contract between canonical types and a provider's wire format.
//!
//! An [`Adapter`] never touches the network: it turns a canonical request plus an
//! [`UpstreamConfig`] into an `http::Request<Bytes>`, and an upstream [`RawResponse`] (or the
//! bytes of a streamed body, through a [`StreamDecoder`]) back into canonical types or a typed
//! [`ProviderError`]. The transport crate does the I/O. Every adapter is therefore testable from
//! bytes alone, which is what the golden fixtures do.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::completion::{TextCompletionRequest, TextCompletionResponse};
use crate::embedding::{EmbeddingRequest, EmbeddingResponse};
use crate::error::{ErrorKind, ProviderError};
use crate::{Extra, Secret};

/// The API an upstream call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Chat,
    Embeddings,
    TextCompletion,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::TextCompletion => "text completions",
        }
    }
}

/// Where and how to call one upstream deployment: everything an adapter needs besides the
/// request itself. Built by the facade or the router from explicit settings and environment
/// variables; adapters never read the environment.
#[derive(Debug, Clone, Default)]
pub struct UpstreamConfig {
    /// The model name as the provider knows it (the provider prefix already removed).
    pub model: String,
    /// Base URL including the version path (`https://api.openai.com/v1`). `None`: the adapter's default.
    pub api_base: Option<String>,
    pub api_key: Option<Secret>,
    /// An OAuth / Entra ID access token, sent as `Authorization: Bearer` by providers whose
    /// `api_key` travels in another header (Azure's `api-key`) or that only take tokens (Vertex AI).
    pub bearer_token: Option<Secret>,
    /// The model's maximum output tokens from the model table, for providers that require
    /// `max_tokens` on every request (Anthropic). Filled by the layer that owns pricing/model info.
    pub max_output_tokens: Option<u32>,
    /// Provider API version (Azure `api-version`, Anthropic `anthropic-version`).
    pub api_version: Option<String>,
    /// OpenAI organization id (`OpenAI-Organization` header).
    pub organization: Option<String>,
    /// Extra headers sent upstream as given.
    pub headers: Vec<(String, String)>,
    /// Extra top-level JSON fields merged into the request body (they win over canonical ones).
    pub extra_body: Extra,
    /// Drop parameters the provider does not support instead of failing (LiteLLM's `drop_params`).
    pub drop_params: bool,
    /// Provider-specific, non-secret settings under LiteLLM's `litellm_params` names
    /// (`aws_region_name`, `vertex_project`, `vertex_location`, …).
    pub options: std::collections::BTreeMap<String, String>,
    /// Provider-specific secrets under LiteLLM's names (`aws_access_key_id`,
    /// `aws_secret_access_key`, `aws_session_token`, `vertex_credentials`, …).
    pub secrets: std::collections::BTreeMap<String, Secret>,
}

impl UpstreamConfig {
    pub fn new(model: impl Into<String>) -> Self {
        UpstreamConfig { model: model.into(), ..Self::default() }
    }
}

/// The environment variables a provider's credentials conventionally come from, in lookup order.
/// Adapters only *name* them; the facade (or the proxy config) reads the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CredentialEnv {
    pub api_key: &'static [&'static str],
    pub api_base: &'static [&'static str],
    pub api_version: &'static [&'static str],
    pub bearer_token: &'static [&'static str],
    /// Provider-specific settings by option name (LiteLLM's `litellm_params` names, e.g.
    /// `aws_region_name` ← `AWS_REGION`, `AWS_DEFAULT_REGION`), filling [`UpstreamConfig::options`].
    pub options: &'static [(&'static str, &'static [&'static str])],
    /// Provider-specific secrets by name (e.g. `aws_secret_access_key` ← `AWS_SECRET_ACCESS_KEY`),
    /// filling [`UpstreamConfig::secrets`].
    pub secrets: &'static [(&'static str, &'static [&'static str])],
}

impl CredentialEnv {
    /// No conventional variables. Build others as `CredentialEnv { api_key: &[..], ..CredentialEnv::NONE }`.
    pub const NONE: CredentialEnv = CredentialEnv {
        api_key: &[],
        api_base: &[],
        api_version: &[],
        bearer_token: &[],
        options: &[],
        secrets: &[],
    };
}

/// An upstream HTTP response with its whole body read.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        RawResponse { status, headers, body: body.into() }
    }

    /// A 200 response with a JSON body, for tests and fixtures.
    pub fn ok_json(body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        RawResponse { status: StatusCode::OK, headers, body: body.into() }
    }
}

/// Turns a streamed upstream body into canonical items, statefully (ids, tool-call indices,
/// partial JSON, usage at the end). One decoder per stream.
pub trait StreamDecoder<T>: Send {
    /// Feeds the next bytes of the body, exactly as they came off the network (any split).
    /// Pushes every item they complete onto `out`.
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<T>) -> Result<(), ProviderError>;

    /// The body ended. Pushes what is left, and fails with [`ErrorKind::Decode`] when the stream
    /// was cut before the provider's terminator.
    fn finish(&mut self, out: &mut Vec<T>) -> Result<(), ProviderError>;

    /// The provider's terminator was seen; the transport may stop reading.
    fn is_done(&self) -> bool {
        false
    }
}

impl<T> fmt::Debug for dyn StreamDecoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamDecoder")
    }
}

/// One provider wire dialect. Implementations are cheap to share (`Arc<dyn Adapter>`).
///
/// Contract with the transport: non-2xx responses go to [`Adapter::error_response`]; 2xx
/// responses go to the matching `*_response` method, which must still reject error bodies that
/// some vendors send with a 200.
pub trait Adapter: Send + Sync + fmt::Debug {
    /// The provider name used in model strings and errors (`openai`, `groq`, `azure`, …).
    fn provider(&self) -> &str;

    /// Where this provider's credentials come from by convention (`OPENAI_API_KEY`, …).
    fn credential_env(&self) -> CredentialEnv {
        CredentialEnv::NONE
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError>;
    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError>;
    fn chat_stream_decoder(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>>;

    fn embedding_request(
        &self,
        _req: &EmbeddingRequest,
        _cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        Err(unsupported_endpoint(self.provider(), Endpoint::Embeddings))
    }
    fn embedding_response(&self, _resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
        Err(unsupported_endpoint(self.provider(), Endpoint::Embeddings))
    }

    fn text_completion_request(
        &self,
        _req: &TextCompletionRequest,
        _cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        Err(unsupported_endpoint(self.provider(), Endpoint::TextCompletion))
    }
    fn text_completion_response(&self, _resp: &RawResponse) -> Result<TextCompletionResponse, ProviderError> {
        Err(unsupported_endpoint(self.provider(), Endpoint::TextCompletion))
    }
    /// `None` when the provider cannot stream text completions.
    fn text_completion_stream_decoder(
        &self,
        _req: &TextCompletionRequest,
        _cfg: &UpstreamConfig,
    ) -> Option<Box<dyn StreamDecoder<TextCompletionResponse>>> {
        None
    }

    /// Classifies a non-2xx upstream response.
    fn error_response(&self, resp: &RawResponse) -> ProviderError;
}

/// The error for an endpoint a provider does not offer.
pub fn unsupported_endpoint(provider: &str, endpoint: Endpoint) -> ProviderError {
    ProviderError::new(
        ErrorKind::BadRequest,
        format!("{provider} does not support the {} endpoint", endpoint.as_str()),
    )
    .with_provider(provider)
    .with_code("unsupported_endpoint")
}

/// Joins a base URL and a path with exactly one `/` between them.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    let mut s = String::with_capacity(base.len() + 1 + path.len());
    s.push_str(base);
    s.push('/');
    s.push_str(path);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_url_normalises_slashes() {
        assert_eq!(join_url("https://a/v1/", "/chat/completions"), "https://a/v1/chat/completions");
        assert_eq!(join_url("https://a/v1", "chat/completions"), "https://a/v1/chat/completions");
    }
}
