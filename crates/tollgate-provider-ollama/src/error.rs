//! Ollama error bodies → [`ProviderError`].
//!
//! Ollama answers failures with `{"error": "..."}`: 400 for invalid requests, 404 when the model
//! is not pulled (`model "x" not found, try pulling it first`), 500 for runner failures, 503 when
//! its queue is full (`server busy`); proxies in front of it add 401/403/429/502.

use serde_json::Value;
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::{ErrorKind, ProviderError, RawResponse};

fn kind_for(status: Option<u16>, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    let context = mentions_context_window(message) || lower.contains("exceeds the context");
    if context && matches!(status, None | Some(400 | 413 | 422 | 500)) {
        return ErrorKind::ContextWindowExceeded;
    }
    match status {
        Some(s) => ErrorKind::from_status(s),
        // Errors inside a 200 body or stream: the message is all there is to go on.
        None if lower.contains("not found") => ErrorKind::NotFound,
        None if lower.contains("server busy") => ErrorKind::Overloaded,
        None => ErrorKind::ServerError,
    }
}

/// Classifies an error message, with the HTTP status when there was one.
pub(crate) fn classify_message(status: Option<u16>, message: String) -> ProviderError {
    let kind = kind_for(status, &message);
    let e = ProviderError::new(kind, message);
    match status {
        Some(s) => e.with_status(s),
        None => e,
    }
}

pub(crate) fn classify(resp: &RawResponse) -> ProviderError {
    let status = resp.status.as_u16();
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| match v.get("error") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| {
            let excerpt = body_excerpt(&resp.body);
            if excerpt.is_empty() { format!("Ollama returned HTTP {status}") } else { excerpt }
        });
    classify_message(Some(status), message).with_retry_after(parse_retry_after(&resp.headers))
}
