//! Azure OpenAI: deployment URLs with `api-version`, or the `v1` API; `api-key` or Entra ID auth.

use bytes::Bytes;
use http::HeaderMap;
use tollgate_core::adapter::join_url;
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{
    Adapter, CredentialEnv, ErrorKind, ProviderError, RawResponse, StreamDecoder, UpstreamConfig,
};

use crate::openai::{embedding_body, openai_chat_body, openai_text_body};
use crate::wire::{
    self, DoneRule, JsonObject, SseJsonDecoder, bad_request, encode_component, insert_bearer, non_empty,
    post_json, secret_header,
};

const PROVIDER: &str = "azure";

/// The `api-version` used when none is configured: the latest generally available date-versioned
/// data-plane (inference) release in Azure OpenAI's REST API reference.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// The `api_version` value that selects Azure's versionless `v1` API (`/openai/v1/...`, model in
/// the body).
pub const AZURE_V1: &str = "v1";

/// Azure OpenAI (`{api_base}/openai/deployments/{deployment}/...?api-version=...`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureAdapter;

impl AzureAdapter {
    pub fn new() -> Self {
        AzureAdapter
    }

    /// The URL for an operation (`chat/completions`, `embeddings`, `completions`).
    pub fn url(&self, path: &str, cfg: &UpstreamConfig) -> Result<String, ProviderError> {
        let base = cfg.api_base.as_deref().map(str::trim).filter(|b| !b.is_empty()).ok_or_else(|| {
            bad_request(
                PROVIDER,
                "Azure OpenAI needs an api_base (https://<resource>.openai.azure.com): set AZURE_API_BASE \
                 (or AZURE_OPENAI_ENDPOINT) or pass api_base",
            )
            .with_param("api_base")
        })?;
        let base = base.trim_end_matches('/');
        let version = cfg.api_version.as_deref().map(str::trim).filter(|v| !v.is_empty());
        if version == Some(AZURE_V1) || base.ends_with("/openai/v1") {
            let root = if base.ends_with("/openai/v1") {
                base.to_owned()
            } else if base.ends_with("/openai") {
                format!("{base}/v1")
            } else {
                format!("{base}/openai/v1")
            };
            return Ok(join_url(&root, path));
        }
        if cfg.model.trim().is_empty() {
            return Err(
                bad_request(PROVIDER, "the Azure deployment name (the model) is empty").with_param("model")
            );
        }
        let root = base.strip_suffix("/openai").unwrap_or(base);
        let version = version.unwrap_or(AZURE_DEFAULT_API_VERSION);
        Ok(format!(
            "{root}/openai/deployments/{}/{path}?api-version={}",
            encode_component(&cfg.model),
            encode_component(version)
        ))
    }

    fn post(
        &self,
        path: &str,
        cfg: &UpstreamConfig,
        body: &JsonObject,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let url = self.url(path, cfg)?;
        let mut headers = HeaderMap::new();
        if let Some(key) = non_empty(cfg.api_key.as_ref()) {
            headers.insert("api-key", secret_header(PROVIDER, "", key)?);
        } else if let Some(token) = non_empty(cfg.bearer_token.as_ref()) {
            insert_bearer(PROVIDER, &mut headers, token)?;
        } else {
            return Err(ProviderError::new(
                ErrorKind::Authentication,
                "no Azure OpenAI credentials: set AZURE_API_KEY (or AZURE_OPENAI_API_KEY) for the api-key header, \
                 or AZURE_AD_TOKEN for an Entra ID bearer token",
            )
            .with_provider(PROVIDER)
            .with_code("missing_api_key"));
        }
        post_json(PROVIDER, &url, headers, cfg, body)
    }
}

impl Adapter for AzureAdapter {
    fn provider(&self) -> &str {
        PROVIDER
    }

    fn credential_env(&self) -> CredentialEnv {
        CredentialEnv {
            api_key: &["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
            api_base: &["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
            api_version: &["AZURE_API_VERSION"],
            bearer_token: &["AZURE_AD_TOKEN"],
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

    fn cfg(base: &str, version: Option<&str>) -> UpstreamConfig {
        let mut c = UpstreamConfig::new("my gpt/4o");
        c.api_base = Some(base.into());
        c.api_version = version.map(str::to_owned);
        c
    }

    #[test]
    fn url_forms() {
        let a = AzureAdapter;
        assert_eq!(
            a.url("chat/completions", &cfg("https://r.openai.azure.com/", None)).unwrap(),
            "https://r.openai.azure.com/openai/deployments/my%20gpt%2F4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            a.url("embeddings", &cfg("https://r.openai.azure.com/openai", Some("2025-04-01-preview")))
                .unwrap(),
            "https://r.openai.azure.com/openai/deployments/my%20gpt%2F4o/embeddings?api-version=2025-04-01-preview"
        );
        assert_eq!(
            a.url("chat/completions", &cfg("https://r.openai.azure.com", Some("v1"))).unwrap(),
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            a.url("completions", &cfg("https://r.openai.azure.com/openai/v1/", None)).unwrap(),
            "https://r.openai.azure.com/openai/v1/completions"
        );
        let err = a.url("chat/completions", &UpstreamConfig::new("d")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(err.message.contains("AZURE_API_BASE"));
    }

    #[test]
    fn missing_credentials_name_the_env_vars() {
        let req = ChatRequest::new("d", vec![tollgate_core::Message::user("hi")]);
        let err = AzureAdapter.chat_request(&req, &cfg("https://r.openai.azure.com", None)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Authentication);
        assert!(err.message.contains("AZURE_API_KEY") && err.message.contains("AZURE_AD_TOKEN"));
    }
}
