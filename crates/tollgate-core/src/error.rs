//! The typed provider error taxonomy.
//!
//! Every failure of an upstream call becomes one [`ProviderError`] with an [`ErrorKind`]. The kind
//! alone decides what the router does (retry, fall back, cool the deployment down) and what the
//! proxy answers (OpenAI error JSON with the matching HTTP status). Adapters classify; nobody else
//! parses provider error bodies.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which deadline a timeout hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutPhase {
    /// No response headers / first stream chunk within the first-token timeout.
    FirstToken,
    /// The whole call took longer than the total timeout.
    Total,
}

/// What went wrong, as far as routing and clients are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 429 from the provider (requests, tokens, or quota).
    RateLimited,
    /// The prompt (plus `max_tokens`) does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider's safety system refused the input or output.
    ContentFiltered,
    /// The credentials were rejected (401).
    Authentication,
    /// The credentials lack permission for this model or feature (403).
    PermissionDenied,
    /// The model or deployment does not exist (404).
    NotFound,
    /// The request is invalid for the provider (400, 422, …).
    BadRequest,
    /// The request uses parameters the provider does not support (and `drop_params` is off).
    UnsupportedParams,
    /// A deadline passed.
    Timeout(TimeoutPhase),
    /// The provider says it is overloaded or unavailable (503, Anthropic's 529).
    Overloaded,
    /// The provider failed (500, 502, 504, other 5xx).
    ServerError,
    /// The connection failed (DNS, TCP, TLS, reset) or broke mid-body.
    Transport,
    /// The provider answered with something that is not its documented format.
    Decode,
}

impl ErrorKind {
    /// Whether trying the same deployment again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Timeout(_)
                | ErrorKind::Overloaded
                | ErrorKind::ServerError
                | ErrorKind::Transport
        )
    }

    /// Whether another deployment or model group may succeed where this one failed. Requests
    /// that are wrong in themselves (bad request, unsupported parameters) fail everywhere.
    pub fn should_fall_back(self) -> bool {
        !matches!(self, ErrorKind::BadRequest | ErrorKind::UnsupportedParams)
    }

    /// Whether the failure says something about the *deployment* (so it may be taken out of
    /// rotation), rather than about this request. Client errors never cool a deployment down.
    pub fn should_cool_down(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Authentication
                | ErrorKind::PermissionDenied
                | ErrorKind::NotFound
                | ErrorKind::Timeout(_)
                | ErrorKind::Overloaded
                | ErrorKind::ServerError
                | ErrorKind::Transport
        )
    }

    /// The HTTP status a gateway answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::RateLimited => 429,
            ErrorKind::ContextWindowExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::BadRequest
            | ErrorKind::UnsupportedParams => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Timeout(_) => 504,
            ErrorKind::Overloaded => 503,
            ErrorKind::ServerError | ErrorKind::Transport | ErrorKind::Decode => 502,
        }
    }

    /// The OpenAI error `type` string.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::ContextWindowExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::BadRequest
            | ErrorKind::UnsupportedParams
            | ErrorKind::NotFound => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::Timeout(_) => "timeout_error",
            ErrorKind::Overloaded => "service_unavailable_error",
            ErrorKind::ServerError | ErrorKind::Decode => "api_error",
            ErrorKind::Transport => "api_connection_error",
        }
    }

    /// The OpenAI error `code` tollgate uses when the provider gave none.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limit_exceeded",
            ErrorKind::ContextWindowExceeded => "context_length_exceeded",
            ErrorKind::ContentFiltered => "content_filter",
            ErrorKind::Authentication => "invalid_api_key",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "model_not_found",
            ErrorKind::BadRequest => "invalid_request",
            ErrorKind::UnsupportedParams => "unsupported_parameter",
            ErrorKind::Timeout(TimeoutPhase::FirstToken) => "first_token_timeout",
            ErrorKind::Timeout(TimeoutPhase::Total) => "request_timeout",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ServerError => "upstream_error",
            ErrorKind::Transport => "upstream_connection_error",
            ErrorKind::Decode => "upstream_decode_error",
        }
    }

    /// Classifies an upstream HTTP status when the body says nothing more specific.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 405 | 409 | 415 | 422 => ErrorKind::BadRequest,
            401 => ErrorKind::Authentication,
            402 | 403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout(TimeoutPhase::Total),
            413 => ErrorKind::ContextWindowExceeded,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            500..=599 => ErrorKind::ServerError,
            // Anything else that is not a success is the upstream misbehaving.
            _ => ErrorKind::ServerError,
        }
    }
}

/// A failed upstream call, classified.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// Human-readable explanation; for upstream errors, the provider's own message.
    pub message: String,
    /// The provider that failed (`openai`, `groq`, `anthropic`, …), when known.
    pub provider: Option<String>,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// How long the provider asked us to wait (`Retry-After`, `retry-after-ms`).
    pub retry_after: Option<Duration>,
    /// The offending parameter, when the provider (or tollgate) named one.
    pub param: Option<String>,
    /// The provider's error code (`context_length_exceeded`, `insufficient_quota`, …).
    pub code: Option<String>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
            provider: None,
            status: None,
            retry_after: None,
            param: None,
            code: None,
        }
    }

    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// A decode error: the upstream bytes were not the documented format.
    pub fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }

    /// A bad request detected before anything was sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// Unsupported parameters, named, with LiteLLM's advice on how to proceed.
    pub fn unsupported_params(provider: &str, model: &str, params: &[&str]) -> Self {
        let list = params.join(", ");
        Self::new(
            ErrorKind::UnsupportedParams,
            format!(
                "{provider} does not support parameters: [{list}] for model {model}. \
                 To drop unsupported parameters instead, set `drop_params=true`."
            ),
        )
        .with_provider(provider)
        .with_param(params.first().copied().unwrap_or_default())
    }

    /// The OpenAI error body `{"error": {...}}` a gateway sends for this error.
    pub fn to_openai_body(&self) -> OpenAiErrorBody {
        OpenAiErrorBody {
            error: OpenAiError {
                message: self.message.clone(),
                r#type: self.kind.openai_type().to_owned(),
                param: self.param.clone(),
                code: Some(self.code.clone().unwrap_or_else(|| self.kind.default_code().to_owned())),
            },
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.provider, self.status) {
            (Some(p), Some(s)) => write!(f, "{p} returned {s} ({:?}): {}", self.kind, self.message),
            (Some(p), None) => write!(f, "{p} call failed ({:?}): {}", self.kind, self.message),
            (None, Some(s)) => write!(f, "upstream returned {s} ({:?}): {}", self.kind, self.message),
            (None, None) => write!(f, "{:?}: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for ProviderError {}

/// OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiErrorBody {
    pub error: OpenAiError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAiError {
    pub message: String,
    #[serde(rename = "type", default)]
    pub r#type: String,
    #[serde(default)]
    pub param: Option<String>,
    /// OpenAI sends a string; some vendors send a number. Normalised to a string.
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Whether an error message says the context window was exceeded. Providers report it as a
/// plain 400 with varying words; the phrases here are the ones their documentation and SDKs use.
pub fn mentions_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    const PHRASES: &[&str] = &[
        "context_length_exceeded",
        "context length",
        "context window",
        "maximum context",
        "prompt is too long",
        "input is too long",
        "too many tokens",
        "reduce the length of the messages",
        "exceeds the maximum number of tokens",
        "input length exceeds",
        "string_above_max_length",
    ];
    PHRASES.iter().any(|p| m.contains(p))
}

/// Parses `Retry-After` (seconds or an HTTP date is allowed by RFC 9110; providers send seconds)
/// and OpenAI's `retry-after-ms`. Dates are ignored: without a clock in core they cannot be
/// turned into a delay, and no LLM provider documents sending one.
pub fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok())
        && let Ok(ms) = ms.trim().parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let secs = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A short, printable excerpt of an upstream body for error messages (HTML error pages from a
/// proxy in between, truncated JSON, binary garbage).
pub fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut s: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        use ErrorKind::*;
        let all = [
            RateLimited,
            ContextWindowExceeded,
            ContentFiltered,
            Authentication,
            PermissionDenied,
            NotFound,
            BadRequest,
            UnsupportedParams,
            Timeout(TimeoutPhase::FirstToken),
            Timeout(TimeoutPhase::Total),
            Overloaded,
            ServerError,
            Transport,
            Decode,
        ];
        for k in all {
            // A client error never cools a deployment down, and is never retried.
            if k.http_status() == 400 {
                assert!(!k.should_cool_down(), "{k:?}");
                assert!(!k.is_retryable(), "{k:?}");
            }
            // Whatever is worth retrying is worth falling back from.
            if k.is_retryable() {
                assert!(k.should_fall_back(), "{k:?}");
            }
        }
        assert_eq!(RateLimited.http_status(), 429);
        assert_eq!(ContextWindowExceeded.default_code(), "context_length_exceeded");
        assert!(ContextWindowExceeded.should_fall_back());
        assert!(!BadRequest.should_fall_back());
        assert_eq!(ErrorKind::from_status(529), Overloaded);
        assert_eq!(ErrorKind::from_status(502), ServerError);
        assert_eq!(ErrorKind::from_status(418), ServerError);
    }

    #[test]
    fn openai_body_shape() {
        let e = ProviderError::unsupported_params("anthropic", "claude-x", &["n", "seed"]);
        let v = serde_json::to_value(e.to_openai_body()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "unsupported_parameter");
        assert_eq!(v["error"]["param"], "n");
        assert!(v["error"]["message"].as_str().unwrap().contains("[n, seed]"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = http::HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
        h.insert("retry-after", "-3".parse().unwrap());
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn excerpt_of_html_and_binary() {
        let html = b"<html>\n<head><title>502 Bad Gateway</title></head>\n</html>";
        assert_eq!(body_excerpt(html), "<html> <head><title>502 Bad Gateway</title></head> </html>");
        let bin = [0xff, 0xfe, 0x00, b'a'];
        assert_eq!(body_excerpt(&bin), "\u{fffd}\u{fffd} a");
        assert!(body_excerpt(&[b'x'; 1000]).ends_with('…'));
    }

    #[test]
    fn context_window_phrases() {
        assert!(mentions_context_window(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens."
        ));
        assert!(mentions_context_window("prompt is too long: 210000 tokens > 200000 maximum"));
        assert!(!mentions_context_window("Invalid value for 'temperature'"));
    }
}
