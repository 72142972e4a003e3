//! # tollgate-provider-gemini
//!
//! Layer 2 of tollgate: the sans-IO adapter for Google's Gemini dialect, served by two providers:
//!
//! * `gemini/…`: Google AI Studio (Gemini Developer API),
//!   `POST {base}/v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`,
//!   key in `x-goog-api-key` (`GEMINI_API_KEY`, then `GOOGLE_API_KEY`); embeddings through
//!   `:batchEmbedContents`;
//! * `vertex_ai/…`: Vertex AI, `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…`
//!   (`global` uses `aiplatform.googleapis.com`), `Authorization: Bearer <cfg.bearer_token>`;
//!   embeddings through `:predict`; Claude models through the Anthropic adapter the caller plugs
//!   in with [`GeminiAdapter::with_anthropic`] (see [`partner`]).
//!
//! The OAuth2 token Vertex needs comes from a service-account key through the sans-IO helpers
//! in [`auth`] (signed JWT → token request → token response → [`auth::TokenCache`]); the
//! transport performs the exchange. Translation details live in [`request`], [`response`],
//! [`stream`], [`schema`], [`embed`] and [`error`].
//!
//! **Must never depend on** an async runtime, an HTTP client or server, a database, or any
//! tollgate crate other than `tollgate-core` (in particular not on the Anthropic adapter: that
//! wiring happens in the facade). Its only extra dependencies are `ring` and `base64`, for
//! service-account JWT signing.

use std::sync::Arc;

use bytes::Bytes;
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, CredentialEnv, ProviderError, RawResponse, Secret,
    StreamDecoder, UpstreamConfig,
};

pub mod auth;
pub mod embed;
pub mod endpoint;
pub mod error;
pub mod partner;
pub mod request;
pub mod response;
pub mod schema;
pub mod stream;

pub use endpoint::Flavor;
pub use stream::GeminiStreamDecoder;

/// The provider prefixes this crate serves.
pub const PROVIDERS: &[&str] = &["gemini", "vertex_ai"];

/// The adapter for a provider prefix (`gemini` or `vertex_ai`). The `vertex_ai` adapter returned
/// here has no Anthropic delegate: wrap `GeminiAdapter::vertex().with_anthropic(...)` yourself to
/// serve `vertex_ai/claude-*`.
pub fn adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    match provider {
        "gemini" => Some(Arc::new(GeminiAdapter::ai_studio())),
        "vertex_ai" => Some(Arc::new(GeminiAdapter::vertex())),
        _ => None,
    }
}

/// The provider a bare model name (no `provider/` prefix) belongs to: `gemini-*` → `gemini`
/// (AI Studio, as an API key is the common way to reach a bare Gemini name).
pub fn provider_for_bare_model(model: &str) -> Option<&'static str> {
    endpoint::bare_model(model).starts_with("gemini-").then_some("gemini")
}

const GEMINI_ENV: CredentialEnv = CredentialEnv {
    api_key: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    api_base: &["GEMINI_API_BASE"],
    ..CredentialEnv::NONE
};

const VERTEX_ENV: CredentialEnv = CredentialEnv {
    options: &[
        (endpoint::OPT_VERTEX_PROJECT, &["VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT"]),
        (endpoint::OPT_VERTEX_LOCATION, &["VERTEXAI_LOCATION", "VERTEX_LOCATION", "GOOGLE_CLOUD_LOCATION"]),
        // A *path*: the facade reads the file into `secrets["vertex_credentials"]`.
        (endpoint::OPT_VERTEX_CREDENTIALS_FILE, &["GOOGLE_APPLICATION_CREDENTIALS"]),
    ],
    ..CredentialEnv::NONE
};

/// The Gemini adapter, for AI Studio or Vertex AI.
#[derive(Debug, Clone)]
pub struct GeminiAdapter {
    flavor: Flavor,
    anthropic: Option<Arc<dyn Adapter>>,
}

impl GeminiAdapter {
    /// `gemini/…`: Google AI Studio.
    pub fn ai_studio() -> Self {
        GeminiAdapter { flavor: Flavor::AiStudio, anthropic: None }
    }

    /// `vertex_ai/…`: Vertex AI.
    pub fn vertex() -> Self {
        GeminiAdapter { flavor: Flavor::Vertex, anthropic: None }
    }

    /// Serves `claude*` models on Vertex through `anthropic`, an adapter speaking the Anthropic
    /// Messages dialect (see [`partner`]). Only meaningful for [`GeminiAdapter::vertex`].
    pub fn with_anthropic(mut self, anthropic: Arc<dyn Adapter>) -> Self {
        self.anthropic = Some(anthropic);
        self
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    fn provider_name(&self) -> &'static str {
        self.flavor.provider()
    }

    /// The Anthropic delegate for this model, when it is a Claude model on Vertex.
    fn partner(&self, model: &str) -> Result<Option<&Arc<dyn Adapter>>, ProviderError> {
        if self.flavor != Flavor::Vertex || !partner::is_vertex_anthropic_model(model) {
            return Ok(None);
        }
        match &self.anthropic {
            Some(a) => Ok(Some(a)),
            None => Err(ProviderError::bad_request(format!(
                "vertex_ai/{model} is an Anthropic model; this vertex_ai adapter was built without an \
                 Anthropic delegate (GeminiAdapter::vertex().with_anthropic(..))"
            ))
            .with_provider("vertex_ai")),
        }
    }

    /// Anthropic answers carry `"type": "error"` / `"type": "message"`; Google's carry `error.status`.
    fn is_google_envelope(body: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(body).ok().is_some_and(|v| {
            let v =
                if let serde_json::Value::Array(a) = &v { a.first().cloned().unwrap_or_default() } else { v };
            v.get("error").and_then(|e| e.get("status")).is_some()
        })
    }
}

impl Adapter for GeminiAdapter {
    fn provider(&self) -> &str {
        self.provider_name()
    }

    fn credential_env(&self) -> CredentialEnv {
        match self.flavor {
            Flavor::AiStudio => GEMINI_ENV,
            Flavor::Vertex => VERTEX_ENV,
        }
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        if let Some(inner) = self.partner(&cfg.model)? {
            // The Anthropic adapter may insist on a key; Vertex authenticates with the token instead.
            let mut icfg = cfg.clone();
            icfg.api_base = None;
            icfg.headers.clear();
            if icfg.api_key.is_none() {
                icfg.api_key = Some(Secret::new("vertex-ai"));
            }
            let built = inner.chat_request(req, &icfg)?;
            return partner::rewrite_for_vertex(&built, cfg, req.is_stream());
        }
        let body = request::generate_content_body(req, cfg, self.provider_name())?;
        let method = if req.is_stream() { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let url = endpoint::model_method_url(self.flavor, cfg, "google", method)?;
        let bytes = serde_json::to_vec(&body).map_err(|e| {
            ProviderError::bad_request(format!("cannot encode request: {e}"))
                .with_provider(self.provider_name())
        })?;
        endpoint::post_json(self.flavor, cfg, &url, bytes)
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        if let Some(inner) = &self.anthropic {
            // Claude answers are Anthropic Messages JSON (`"type": "message"`).
            let is_claude = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("message"));
            if self.flavor == Flavor::Vertex && is_claude {
                return inner.chat_response(resp);
            }
        }
        response::parse_chat_response(self.provider_name(), &resp.body)
    }

    fn chat_stream_decoder(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        if let Ok(Some(inner)) = self.partner(&cfg.model) {
            return inner.chat_stream_decoder(req, cfg);
        }
        Box::new(GeminiStreamDecoder::new(self.provider_name(), endpoint::bare_model(&cfg.model)))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let body = embed::body(self.flavor, req, cfg)?;
        let url = endpoint::model_method_url(self.flavor, cfg, "google", embed::method(self.flavor))?;
        let bytes = serde_json::to_vec(&body).map_err(|e| {
            ProviderError::bad_request(format!("cannot encode request: {e}"))
                .with_provider(self.provider_name())
        })?;
        endpoint::post_json(self.flavor, cfg, &url, bytes)
    }

    /// `model` is left empty (Google's answer does not name it and the trait gives no request);
    /// vectors are floats.
    fn embedding_response(&self, resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
        embed::parse(self.flavor, &resp.body, "", false)
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        if let Some(inner) = &self.anthropic
            && self.flavor == Flavor::Vertex
            && !Self::is_google_envelope(&resp.body)
        {
            let body_is_json = serde_json::from_slice::<serde_json::Value>(&resp.body).is_ok();
            if body_is_json {
                let mut e = inner.error_response(resp);
                e.provider = Some("vertex_ai".into());
                return e;
            }
        }
        error::from_body(self.provider_name(), resp.status.as_u16(), &resp.headers, &resp.body)
    }
}

/// Parses an embeddings answer with the request's context (model name, `encoding_format`),
/// for callers that have it (the trait method cannot).
pub fn parse_embedding_response(
    flavor: Flavor,
    resp: &RawResponse,
    req: &EmbeddingRequest,
) -> Result<EmbeddingResponse, ProviderError> {
    if !resp.status.is_success() {
        return Err(error::from_body(flavor.provider(), resp.status.as_u16(), &resp.headers, &resp.body));
    }
    let base64 = req.encoding_format.as_deref() == Some("base64");
    embed::parse(flavor, &resp.body, endpoint::bare_model(&req.model), base64)
}
