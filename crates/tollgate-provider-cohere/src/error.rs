//! Cohere error bodies → [`ProviderError`].
//!
//! Cohere answers failures with `{"message": "..."}` (some bodies also carry an `id`) and these
//! statuses: 400 bad request, 401 unauthorized, 403 forbidden, 404 not found, 422 unprocessable
//! entity, 429 too many requests, 498 invalid token, 499 client closed request, 500 internal
//! server error, 501 not implemented, 503 service unavailable, 504 gateway timeout.

use serde_json::Value;
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::{ErrorKind, ProviderError, RawResponse, TimeoutPhase};

fn kind_for(status: Option<u16>, message: &str) -> ErrorKind {
    match status {
        Some(400 | 413 | 422) | None if mentions_context_window(message) => ErrorKind::ContextWindowExceeded,
        Some(400 | 422) => ErrorKind::BadRequest,
        Some(498) => ErrorKind::Authentication,
        Some(499) => ErrorKind::Transport,
        Some(501) => ErrorKind::BadRequest,
        Some(504) => ErrorKind::Timeout(TimeoutPhase::Total),
        Some(s) => ErrorKind::from_status(s),
        None => ErrorKind::ServerError,
    }
}

/// Classifies an error message, with the HTTP status when there was one.
pub(crate) fn classify_message(status: Option<u16>, message: String) -> ProviderError {
    let kind = kind_for(status, &message);
    let mut e = ProviderError::new(kind, message);
    if let Some(s) = status {
        e = e.with_status(s);
    }
    if status == Some(499) {
        e = e.with_code("request_cancelled");
    }
    e
}

pub(crate) fn classify(resp: &RawResponse) -> ProviderError {
    let status = resp.status.as_u16();
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| {
            let excerpt = body_excerpt(&resp.body);
            if excerpt.is_empty() { format!("Cohere returned HTTP {status}") } else { excerpt }
        });
    classify_message(Some(status), message).with_retry_after(parse_retry_after(&resp.headers))
}
