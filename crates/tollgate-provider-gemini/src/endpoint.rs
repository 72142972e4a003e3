//! Where requests go and how they authenticate: AI Studio vs Vertex AI URLs and headers.

use bytes::Bytes;
use tollgate_core::{ErrorKind, ProviderError, UpstreamConfig};

/// Which Google API a [`crate::GeminiAdapter`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Google AI Studio / Gemini Developer API (`generativelanguage.googleapis.com`, API key).
    AiStudio,
    /// Vertex AI (regional `aiplatform.googleapis.com`, OAuth2 bearer token).
    Vertex,
}

impl Flavor {
    pub fn provider(self) -> &'static str {
        match self {
            Flavor::AiStudio => "gemini",
            Flavor::Vertex => "vertex_ai",
        }
    }
}

/// AI Studio's default base URL.
pub const AI_STUDIO_BASE: &str = "https://generativelanguage.googleapis.com";
/// AI Studio's default API version path segment.
pub const AI_STUDIO_VERSION: &str = "v1beta";
/// Vertex AI's default API version path segment.
pub const VERTEX_VERSION: &str = "v1";
/// The Vertex location used when none is configured (LiteLLM's default too).
pub const DEFAULT_VERTEX_LOCATION: &str = "us-central1";

/// Vertex `cfg.options` key for the Google Cloud project.
pub const OPT_VERTEX_PROJECT: &str = "vertex_project";
/// Vertex `cfg.options` key for the location (region or `global`).
pub const OPT_VERTEX_LOCATION: &str = "vertex_location";
/// `cfg.secrets` key for the service-account JSON (see [`crate::auth`]).
pub const SECRET_VERTEX_CREDENTIALS: &str = "vertex_credentials";
/// `cfg.options` key holding the *path* from `GOOGLE_APPLICATION_CREDENTIALS`; the facade reads
/// the file into `secrets["vertex_credentials"]`.
pub const OPT_VERTEX_CREDENTIALS_FILE: &str = "vertex_credentials_file";

/// Whether the last path segment of a base URL already is an API version (`…/v1beta`).
fn ends_with_version(base: &str) -> bool {
    let last = base.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let mut chars = last.chars();
    chars.next() == Some('v') && chars.next().is_some_and(|c| c.is_ascii_digit())
}

fn versioned_base(cfg: &UpstreamConfig, default_base: &str, default_version: &str) -> String {
    let base = cfg.api_base.as_deref().unwrap_or(default_base).trim_end_matches('/');
    if ends_with_version(base) {
        base.to_owned()
    } else {
        let version = cfg.api_version.as_deref().unwrap_or(default_version);
        format!("{base}/{version}")
    }
}

/// `https://{location}-aiplatform.googleapis.com`, or `https://aiplatform.googleapis.com` for `global`.
pub fn vertex_host(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// The Vertex project and location from `cfg.options`.
pub fn vertex_project_location(cfg: &UpstreamConfig) -> Result<(&str, &str), ProviderError> {
    let project = cfg.options.get(OPT_VERTEX_PROJECT).map(String::as_str).filter(|p| !p.is_empty());
    let Some(project) = project else {
        return Err(ProviderError::new(
            ErrorKind::BadRequest,
            "vertex_ai needs a Google Cloud project: set `vertex_project` (or VERTEXAI_PROJECT / GOOGLE_CLOUD_PROJECT)",
        )
        .with_provider("vertex_ai")
        .with_param(OPT_VERTEX_PROJECT));
    };
    let location = cfg
        .options
        .get(OPT_VERTEX_LOCATION)
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .unwrap_or(DEFAULT_VERTEX_LOCATION);
    Ok((project, location))
}

/// The model name without a leading `models/` (AI Studio resource names may carry it).
pub(crate) fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// The URL of a model method: `…/models/{model}:{method}` (AI Studio) or
/// `…/projects/{p}/locations/{l}/publishers/{publisher}/models/{model}:{method}` (Vertex).
/// `method` may carry a query (`streamGenerateContent?alt=sse`).
pub fn model_method_url(
    flavor: Flavor,
    cfg: &UpstreamConfig,
    publisher: &str,
    method: &str,
) -> Result<String, ProviderError> {
    let model = bare_model(&cfg.model);
    if model.is_empty() {
        return Err(ProviderError::bad_request("no model given").with_provider(flavor.provider()));
    }
    Ok(match flavor {
        Flavor::AiStudio => {
            let base = versioned_base(cfg, AI_STUDIO_BASE, AI_STUDIO_VERSION);
            format!("{base}/models/{model}:{method}")
        }
        Flavor::Vertex => {
            let (project, location) = vertex_project_location(cfg)?;
            let host = vertex_host(location);
            let base = versioned_base(cfg, &host, VERTEX_VERSION);
            format!(
                "{base}/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
            )
        }
    })
}

/// A JSON POST with the flavor's authentication and the configured extra headers.
pub(crate) fn post_json(
    flavor: Flavor,
    cfg: &UpstreamConfig,
    url: &str,
    body: Vec<u8>,
) -> Result<http::Request<Bytes>, ProviderError> {
    let mut b = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json");
    let api_key = cfg.api_key.as_ref().filter(|k| !k.is_empty());
    let bearer = cfg.bearer_token.as_ref().filter(|k| !k.is_empty());
    b = match (flavor, api_key, bearer) {
        (Flavor::AiStudio, Some(key), _) => b.header("x-goog-api-key", key.expose()),
        (Flavor::Vertex, _, Some(token)) => {
            b.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        }
        // Vertex AI express mode takes an API key.
        (Flavor::Vertex, Some(key), None) => b.header("x-goog-api-key", key.expose()),
        (Flavor::AiStudio, None, Some(token)) => {
            b.header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose()))
        }
        (Flavor::AiStudio, None, None) => {
            return Err(ProviderError::new(
                ErrorKind::Authentication,
                "gemini needs an API key: set `api_key` (or GEMINI_API_KEY / GOOGLE_API_KEY)",
            )
            .with_provider("gemini"));
        }
        (Flavor::Vertex, None, None) => {
            return Err(ProviderError::new(
                ErrorKind::Authentication,
                "vertex_ai needs an OAuth2 access token in `bearer_token` (exchange the service-account \
                 key with tollgate_provider_gemini::auth) or an express-mode `api_key`",
            )
            .with_provider("vertex_ai"));
        }
    };
    for (k, v) in &cfg.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Bytes::from(body)).map_err(|e| {
        ProviderError::bad_request(format!("invalid upstream request: {e}")).with_provider(flavor.provider())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_both_flavors() {
        let mut cfg = UpstreamConfig::new("models/gemini-2.5-flash");
        assert_eq!(
            model_method_url(Flavor::AiStudio, &cfg, "google", "generateContent").unwrap(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        cfg.api_base = Some("http://127.0.0.1:9/v1alpha/".into());
        assert_eq!(
            model_method_url(Flavor::AiStudio, &cfg, "google", "embedContent").unwrap(),
            "http://127.0.0.1:9/v1alpha/models/gemini-2.5-flash:embedContent"
        );
        let mut cfg = UpstreamConfig::new("gemini-2.5-pro");
        assert_eq!(
            model_method_url(Flavor::Vertex, &cfg, "google", "generateContent").unwrap_err().kind,
            ErrorKind::BadRequest
        );
        cfg.options.insert("vertex_project".into(), "p1".into());
        assert_eq!(
            model_method_url(Flavor::Vertex, &cfg, "google", "generateContent").unwrap(),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        cfg.options.insert("vertex_location".into(), "global".into());
        assert_eq!(
            model_method_url(Flavor::Vertex, &cfg, "anthropic", "streamRawPredict").unwrap(),
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/anthropic/models/gemini-2.5-pro:streamRawPredict"
        );
    }
}
