//! Google API errors → [`ProviderError`].
//!
//! Both Gemini APIs answer failures with Google's standard envelope
//! `{"error": {"code": 400, "message": "…", "status": "INVALID_ARGUMENT", "details": [...]}}`
//! (Vertex sometimes wraps it in a one-element array). The canonical `status` decides the kind:
//!
//! | status | HTTP | kind |
//! | --- | --- | --- |
//! | `INVALID_ARGUMENT`, `OUT_OF_RANGE` | 400 | `BadRequest`; `ContextWindowExceeded` when the message talks about the token limit; `Authentication` when `details` carry reason `API_KEY_INVALID` |
//! | `FAILED_PRECONDITION` | 400 | `PermissionDenied` (billing / region not enabled for the project: a deployment problem, not a request problem) |
//! | `UNAUTHENTICATED` | 401 | `Authentication` |
//! | `PERMISSION_DENIED` | 403 | `PermissionDenied` |
//! | `NOT_FOUND` | 404 | `NotFound` |
//! | `RESOURCE_EXHAUSTED` | 429 | `RateLimited` (delay from `Retry-After` or `RetryInfo.retryDelay`) |
//! | `CANCELLED` | 499 | `Transport` |
//! | `ABORTED`, `INTERNAL`, `UNKNOWN`, `DATA_LOSS`, `UNIMPLEMENTED` | 409/500/501 | `ServerError` |
//! | `UNAVAILABLE` | 503 | `Overloaded` |
//! | `DEADLINE_EXCEEDED` | 504 | `Timeout(Total)` |
//!
//! Bodies that are not the envelope (HTML from a proxy, truncated JSON) are classified by HTTP
//! status with an excerpt of the body as the message.

use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::{ErrorKind, ProviderError, TimeoutPhase};

/// Classifies a whole upstream error body.
pub(crate) fn from_body(provider: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(v) = parsed.as_ref()
        && let Some(e) = from_value(provider, Some(status), headers, v)
    {
        return e;
    }
    let kind = ErrorKind::from_status(status);
    let excerpt = body_excerpt(body);
    let message = if excerpt.is_empty() { format!("{provider} returned HTTP {status}") } else { excerpt };
    ProviderError::new(kind, message)
        .with_provider(provider)
        .with_status(status)
        .with_retry_after(parse_retry_after(headers))
}

/// Classifies a parsed Google error envelope; `None` when `v` is not one.
pub(crate) fn from_value(
    provider: &str,
    http_status: Option<u16>,
    headers: &HeaderMap,
    v: &Value,
) -> Option<ProviderError> {
    let v = match v {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let err = v.get("error")?;
    if !err.is_object() {
        // `{"error": "invalid_grant"}` style bodies belong to OAuth, not to the Gemini APIs.
        let message = err.as_str().unwrap_or("upstream error").to_owned();
        let kind = http_status.map_or(ErrorKind::ServerError, ErrorKind::from_status);
        let mut e = ProviderError::new(kind, message).with_provider(provider);
        if let Some(s) = http_status {
            e = e.with_status(s);
        }
        return Some(e);
    }
    let message = err.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
    let status_name = err.get("status").and_then(Value::as_str).unwrap_or("");
    let code = err.get("code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).or(http_status);
    let details = err.get("details").and_then(Value::as_array);
    let reason =
        details.into_iter().flatten().find_map(|d| d.get("reason").and_then(Value::as_str)).unwrap_or("");

    let kind = match status_name {
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" => {
            if reason == "API_KEY_INVALID" {
                ErrorKind::Authentication
            } else if is_token_limit(&message) {
                ErrorKind::ContextWindowExceeded
            } else {
                ErrorKind::BadRequest
            }
        }
        "FAILED_PRECONDITION" => ErrorKind::PermissionDenied,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "CANCELLED" => ErrorKind::Transport,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout(TimeoutPhase::Total),
        "ABORTED" | "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNIMPLEMENTED" => ErrorKind::ServerError,
        _ => match code {
            Some(400) if is_token_limit(&message) => ErrorKind::ContextWindowExceeded,
            Some(c) => ErrorKind::from_status(c),
            None => ErrorKind::ServerError,
        },
    };
    let retry_after = parse_retry_after(headers).or_else(|| retry_info(details));
    let message = if message.is_empty() { format!("{provider} error {status_name}") } else { message };
    let mut e = ProviderError::new(kind, message).with_provider(provider).with_retry_after(retry_after);
    if let Some(s) = http_status.or(code) {
        e = e.with_status(s);
    }
    if !status_name.is_empty() {
        e = e.with_code(status_name);
    }
    Some(e)
}

/// Gemini says "The input token count (N) exceeds the maximum number of tokens allowed (M)".
fn is_token_limit(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    mentions_context_window(&m) || m.contains("input token count") || m.contains("token limit")
}

/// `google.rpc.RetryInfo` → delay (`"retryDelay": "39s"` or `"1.5s"`).
fn retry_info(details: Option<&Vec<Value>>) -> Option<Duration> {
    details?.iter().find_map(|d| {
        let s = d.get("retryDelay")?.as_str()?.strip_suffix('s')?;
        let secs: f64 = s.trim().parse().ok()?;
        (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_and_array_envelope() {
        let body = br#"[{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39s"}]}}]"#;
        let e = from_body("vertex_ai", 429, &HeaderMap::new(), body);
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(39)));
        assert_eq!(e.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    }

    #[test]
    fn html_body_falls_back_to_status() {
        let e = from_body("gemini", 502, &HeaderMap::new(), b"<html><body>Bad Gateway</body></html>");
        assert_eq!(e.kind, ErrorKind::ServerError);
        assert!(e.message.contains("Bad Gateway"));
        let e = from_body("gemini", 503, &HeaderMap::new(), b"");
        assert_eq!(e.kind, ErrorKind::Overloaded);
    }
}
