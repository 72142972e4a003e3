//! Classifying Anthropic errors: HTTP responses, error bodies sent with 200, and `error` events
//! in the middle of a stream.
//!
//! Anthropic documents one envelope, `{"type":"error","error":{"type":…,"message":…}}`, and these
//! `error.type` values: `invalid_request_error` (400), `authentication_error` (401),
//! `permission_error` (403), `not_found_error` (404), `request_too_large` (413),
//! `rate_limit_error` (429), `api_error` (500) and `overloaded_error` (529); `billing_error` (402)
//! and `timeout_error` (504) also occur. The type decides the kind; the HTTP status is only the
//! fallback for types this version does not know and for bodies that are not the envelope.

use http::HeaderMap;
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::{ErrorKind, ProviderError, TimeoutPhase};

use crate::PROVIDER;
use crate::wire::{ErrorBody, ErrorDetail};

/// The kind an Anthropic `error.type` (plus its message) stands for. `None` for types this
/// version does not know.
pub fn kind_for_error_type(error_type: &str, message: &str) -> Option<ErrorKind> {
    Some(match error_type {
        "invalid_request_error" => {
            if mentions_context_window(message) {
                ErrorKind::ContextWindowExceeded
            } else if mentions_content_filter(message) {
                ErrorKind::ContentFiltered
            } else {
                ErrorKind::BadRequest
            }
        }
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" | "billing_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        // The body exceeded 32 MB (rejected by Cloudflare in front of the API): no deployment of
        // the same API takes it either, so it is a bad request rather than a context-window miss.
        "request_too_large" => ErrorKind::BadRequest,
        "rate_limit_error" => ErrorKind::RateLimited,
        "api_error" => ErrorKind::ServerError,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout(TimeoutPhase::Total),
        _ => return None,
    })
}

fn mentions_content_filter(message: &str) -> bool {
    message.to_ascii_lowercase().contains("content filtering policy")
}

/// Builds the typed error for an Anthropic error detail.
pub fn error_from_detail(detail: &ErrorDetail, status: Option<u16>) -> ProviderError {
    let kind = kind_for_error_type(&detail.kind, &detail.message).unwrap_or_else(|| match status {
        Some(s) => ErrorKind::from_status(s),
        None => ErrorKind::ServerError,
    });
    let message = if detail.message.is_empty() { detail.kind.clone() } else { detail.message.clone() };
    let mut err = ProviderError::new(kind, message).with_provider(PROVIDER);
    if let Some(s) = status {
        err = err.with_status(s);
    }
    // Anthropic's type is the most precise code there is, except where OpenAI clients look for a
    // well-known code of their own (context_length_exceeded, content_filter).
    if !detail.kind.is_empty()
        && !matches!(kind, ErrorKind::ContextWindowExceeded | ErrorKind::ContentFiltered)
    {
        err = err.with_code(detail.kind.clone());
    }
    err
}

/// Classifies a non-2xx upstream response.
pub fn classify_response(status: u16, headers: &HeaderMap, body: &[u8]) -> ProviderError {
    let retry_after = parse_retry_after(headers);
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => error_from_detail(&b.error, Some(status)).with_retry_after(retry_after),
        Err(_) => ProviderError::new(
            ErrorKind::from_status(status),
            format!("HTTP {status} without an Anthropic error body: {}", body_excerpt(body)),
        )
        .with_provider(PROVIDER)
        .with_status(status)
        .with_retry_after(retry_after),
    }
}
