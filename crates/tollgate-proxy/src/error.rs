//! Failures as OpenAI error responses: `{"error": {"message", "type", "param", "code"}}` with the
//! status of the error's kind, and `Retry-After` when the upstream asked for a wait.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tollgate::ProviderError;
use tollgate::tollgate_core::error::{OpenAiError, OpenAiErrorBody};

/// An error answer of the gateway.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: OpenAiErrorBody,
    pub(crate) retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: OpenAiErrorBody {
                error: OpenAiError {
                    message: message.into(),
                    r#type: kind.to_owned(),
                    param: None,
                    code: Some(code.to_owned()),
                },
            },
            retry_after: None,
        }
    }

    pub(crate) fn with_param(mut self, param: &str) -> Self {
        self.body.error.param = Some(param.to_owned());
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_request", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", "invalid_api_key", message)
    }

    pub(crate) fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model `{model}` is not served by this gateway (see GET /v1/models)."),
        )
        .with_param("model")
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal_error", message)
    }

    /// A body that could not be read: too large (413) or broken off.
    pub(crate) fn from_rejection(rejection: &BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                format!("The request body is larger than this gateway's limit of {limit} bytes."),
            )
        } else {
            Self::bad_request(format!("Could not read the request body: {}", rejection.body_text()))
        }
    }

    /// The `data:` payload of a mid-stream error event.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).unwrap_or_else(|_| br#"{"error":{"message":"internal error","type":"api_error","param":null,"code":"internal_error"}}"#.to_vec())
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        let status = StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_GATEWAY);
        ApiError { status, body: e.to_openai_body(), retry_after: e.retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Bytes::from(self.to_json())).into_response();
        resp.extensions_mut().insert(crate::metrics::FailureKind::classify(
            self.status.as_u16(),
            self.body.error.code.as_deref(),
        ));
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up (a sub-second wait is still "retry after 1").
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}
