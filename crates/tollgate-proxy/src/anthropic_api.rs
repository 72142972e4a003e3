//! The Anthropic-compatible endpoints, in front of *any* configured backend: `POST /v1/messages`
//! and `POST /v1/messages/count_tokens` (also without `/v1`), so Anthropic SDK clients and tools
//! built on them (Claude Code) work through the gateway.
//!
//! A Messages request is translated to the canonical chat request
//! ([`tollgate_provider_anthropic::compat`]), served by the same path as
//! `/v1/chat/completions` (the built-in mock or the router, with the same per-call headers), and
//! the answer is translated back: a `message` object, or Anthropic's own named event sequence
//! (`message_start`, `ping`, `content_block_start`, `content_block_delta` with `text_delta` /
//! `input_json_delta` / `thinking_delta`, `content_block_stop`, `message_delta` with the stop
//! reason and usage, `message_stop`). While a stream is silent, `ping` events keep it alive.
//!
//! Errors use Anthropic's envelope `{"type":"error","error":{"type","message"},"request_id"}`
//! with the status of the error's kind (`overloaded_error` is 529 as Anthropic sends it,
//! `rate_limit_error` 429 with `Retry-After`); failures of the shared middleware (authentication)
//! are re-shaped into that envelope as well. A failure after the stream has started is one
//! `event: error` and the end of the stream.
//!
//! Responses carry Anthropic's `request-id` header (the call id, also in error bodies).
//! Headers: `x-api-key` (what Anthropic clients send) is the gateway key, checked by the usual
//! authenticator and never forwarded. `anthropic-version` is accepted whatever its value (the
//! gateway speaks the `2023-06-01` format). `anthropic-beta` is passed on to Anthropic-dialect
//! deployments (through the request's `anthropic_beta` field, which the Anthropic adapter merges
//! into its own header) and ignored for other backends.
//!
//! For backends of another dialect, the Anthropic-only top-level fields (`top_k`, `thinking`,
//! `container`, `mcp_servers`, …) are dropped rather than sent to an API that would reject them,
//! and so are `cache_control` / `is_error` / `thinking_blocks` markers (except for Bedrock, whose
//! adapter reads them) and a `metadata.user_id` longer than OpenAI's 64-character `user` limit.
//!
//! `count_tokens` answers `{"input_tokens": N}` counted with tollgate-pricing's token counter for
//! the group's first deployment model: exact for OpenAI models, an `o200k_base` estimate for
//! other families (Claude's tokenizer is not public); the `x-tollgate-token-count` header says
//! `exact` or `estimate`.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tollgate::tollgate_core::sse::encode_event;
use tollgate::{
    ChatChunk, ChatRequest, ContentPart, ErrorKind, MessageContent, ProviderError, RequestOptions,
};
use tollgate_provider_anthropic::compat::{
    AnthropicEventEncoder, chat_response_to_messages, messages_to_chat_request,
};
use tollgate_provider_anthropic::wire::{ErrorBody, ErrorDetail, MessagesRequest};

use super::{AppState, CallCtx, Shared, Target, cost_of, mock_delay, require_auth, target, unix_now};
use crate::callbacks::chat_prompt_chars;
use crate::error::ApiError;
use crate::mock::{self, ItemStream};

/// The routes of this module, with authentication and Anthropic-shaped errors.
pub(super) fn routes(st: AppState) -> axum::Router<Shared> {
    axum::Router::new()
        .route("/v1/messages", post(messages))
        .route("/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/messages/count_tokens", post(count_tokens))
        .route_layer(middleware::from_fn_with_state(st, require_auth))
        // Outermost: whatever the inner layers answer with an OpenAI error body is re-shaped.
        .route_layer(middleware::from_fn(anthropic_error_shape))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// An error answer in Anthropic's envelope.
#[derive(Debug, Clone)]
struct AnthropicError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl AnthropicError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AnthropicError { status, kind, message: message.into(), retry_after: None }
    }

    fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    fn not_found_model(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("model: {model} is not served by this gateway (see GET /v1/models)."),
        )
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", message)
    }

    /// A body that could not be read: too large (413, `request_too_large`) or broken off.
    fn from_rejection(rejection: &BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("The request body is larger than this gateway's limit of {limit} bytes."),
            )
        } else {
            Self::invalid_request(format!("Could not read the request body: {}", rejection.body_text()))
        }
    }

    fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let body = ErrorBody {
            kind: "error".into(),
            error: ErrorDetail { kind: self.kind.to_owned(), message: self.message.clone() },
            request_id: request_id.map(str::to_owned),
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#.to_vec()
        })
    }

    fn into_response_with_id(self, request_id: Option<&str>) -> Response {
        let mut resp = (self.status, Bytes::from(self.body(request_id))).into_response();
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

/// The Anthropic error type and status of an error kind. Overloaded is 529, as Anthropic sends
/// it; the others keep the gateway's usual status (502 for upstream failures, 504 for timeouts).
fn kind_to_anthropic(kind: ErrorKind) -> (StatusCode, &'static str) {
    let status = |s: u16| StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY);
    match kind {
        ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
        ErrorKind::ContextWindowExceeded
        | ErrorKind::ContentFiltered
        | ErrorKind::BadRequest
        | ErrorKind::UnsupportedParams => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        ErrorKind::Authentication => (StatusCode::UNAUTHORIZED, "authentication_error"),
        ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "permission_error"),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found_error"),
        ErrorKind::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout_error"),
        ErrorKind::Overloaded => (status(529), "overloaded_error"),
        ErrorKind::ServerError | ErrorKind::Transport | ErrorKind::Decode => {
            (status(kind.http_status()), "api_error")
        }
    }
}

impl From<ProviderError> for AnthropicError {
    fn from(e: ProviderError) -> Self {
        let (status, kind) = kind_to_anthropic(e.kind);
        AnthropicError { status, kind, message: e.message, retry_after: e.retry_after }
    }
}

/// The Anthropic error type for an HTTP status (for errors that only carry a status).
fn type_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 | 403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Re-shapes OpenAI error bodies (`{"error": {"message", …}}`, as the shared middleware answers)
/// into Anthropic's envelope, keeping status and headers. Other responses pass untouched.
async fn anthropic_error_shape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status().is_success() || !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let already = parsed.as_ref().is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("error"));
    let message =
        parsed.as_ref().and_then(|v| v.pointer("/error/message")).and_then(Value::as_str).map(str::to_owned);
    let out = match (already, message) {
        (false, Some(message)) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let request_id = parts.headers.get("x-tollgate-call-id").and_then(|v| v.to_str().ok());
            AnthropicError::new(parts.status, type_for_status(parts.status), message).body(request_id)
        }
        _ => bytes.to_vec(),
    };
    Response::from_parts(parts, Body::from(out))
}

// ---------------------------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------------------------

/// Parses a Messages request. `count_tokens` bodies carry no `max_tokens`; `default_max_tokens`
/// fills it in for them.
fn parse_messages(
    st: &AppState,
    body: Result<Bytes, BytesRejection>,
    default_max_tokens: Option<u32>,
) -> Result<MessagesRequest, AnthropicError> {
    let bytes =
        body.map_err(|r| AnthropicError::from_rejection(&r, st.config.server.max_request_body_bytes))?;
    let mut value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AnthropicError::invalid_request(format!("The request body is not valid JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(AnthropicError::invalid_request("The request body must be a JSON object."));
    };
    if let Some(n) = default_max_tokens {
        obj.entry("max_tokens").or_insert(json!(n));
    }
    for field in ["model", "messages", "max_tokens"] {
        if !obj.contains_key(field) {
            return Err(AnthropicError::invalid_request(format!("{field}: Field required")));
        }
    }
    serde_json::from_value(value)
        .map_err(|e| AnthropicError::invalid_request(format!("Invalid request body: {e}")))
}

/// The deployment models of a routed group, in config order.
fn group_models<'a>(st: &'a AppState, group: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    st.config
        .router
        .model_list
        .iter()
        .filter(move |d| d.model_name == group)
        .map(|d| d.litellm_params.model.as_str())
}

fn is_anthropic_dialect(model: &str) -> bool {
    model.starts_with("anthropic/") || tollgate_provider_anthropic::is_anthropic_model(model)
}

/// The betas of `anthropic-beta` headers (comma-separated, possibly repeated).
fn betas(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest `user` passed to non-Anthropic backends.
const MAX_USER_CHARS: usize = 64;

/// Deployments whose adapters read the Anthropic markers compat leaves in messages and parts
/// (`cache_control`, `is_error`, `thinking_blocks`): Anthropic itself and Bedrock's Converse.
fn reads_anthropic_markers(model: &str) -> bool {
    is_anthropic_dialect(model) || model.starts_with("bedrock/")
}

/// Removes the Anthropic markers from messages, parts, tool calls and tools: OpenAI-dialect
/// APIs reject unknown fields such as `cache_control` with a 400.
fn strip_anthropic_markers(req: &mut ChatRequest) {
    const MARKERS: [&str; 3] = ["cache_control", "is_error", "thinking_blocks"];
    for m in &mut req.messages {
        for k in MARKERS {
            m.extra.remove(k);
        }
        if let Some(MessageContent::Parts(parts)) = &mut m.content {
            for p in parts {
                let extra = match p {
                    ContentPart::Text(t) => &mut t.extra,
                    ContentPart::ImageUrl(i) => &mut i.extra,
                    ContentPart::File(f) => &mut f.extra,
                    _ => continue,
                };
                extra.remove("cache_control");
            }
        }
        for c in m.tool_calls.iter_mut().flatten() {
            c.extra.remove("cache_control");
        }
    }
    for t in req.tools.iter_mut().flatten() {
        t.extra.remove("cache_control");
    }
}

/// The canonical request for a group. Anthropic-dialect deployments get everything (plus the
/// client's betas); other backends get neither the Anthropic-only top-level fields (`top_k`,
/// `thinking`, …) nor, unless their adapter reads them, the markers in messages and tools.
fn canonical_request(st: &AppState, req: &MessagesRequest, headers: &HeaderMap) -> ChatRequest {
    let mut chat = messages_to_chat_request(req);
    let models: Vec<&str> = group_models(st, &req.model).collect();
    let anthropic = !models.is_empty() && models.iter().all(|m| is_anthropic_dialect(m));
    if anthropic {
        let betas = betas(headers);
        if !betas.is_empty() {
            chat.extra.insert("anthropic_beta".into(), json!(betas));
        }
    } else {
        chat.extra.clear();
        // `metadata.user_id` becomes OpenAI's `user`, which OpenAI caps at 64 characters;
        // Claude Code's ids are longer, so those are not passed on (they only tag abuse reports).
        if chat.user.as_ref().is_some_and(|u| u.chars().count() > MAX_USER_CHARS) {
            chat.user = None;
        }
        if !models.iter().all(|m| reads_anthropic_markers(m)) {
            strip_anthropic_markers(&mut chat);
        }
    }
    chat
}

async fn messages(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut ctx = CallCtx::new("messages");
    let result = match messages_inner(&st, &mut ctx, &headers, body).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(call_id = %ctx.call_id, status = e.status.as_u16(), error = %e.message, "call failed");
            }
            e.into_response_with_id(Some(&ctx.call_id))
        }
    };
    // Callbacks see the call like any other (streams report themselves when they end).
    let result: Result<Response, ApiError> = Ok(result);
    ctx.report(&st, &result);
    with_request_id(ctx, result)
}

/// Finishes the call (per-call headers, log) and adds Anthropic's `request-id` header (the
/// call id), which the Anthropic SDKs expose as the response's request id.
fn with_request_id(ctx: CallCtx, result: Result<Response, ApiError>) -> Response {
    let id = HeaderValue::from_str(&ctx.call_id).ok();
    let mut resp = ctx.finish(result);
    if let Some(id) = id {
        resp.headers_mut().insert(HeaderName::from_static("request-id"), id);
    }
    resp
}

async fn messages_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let wire = parse_messages(st, body, None)?;
    ctx.group = Some(wire.model.clone());
    let group = wire.model.clone();
    let stream = wire.stream == Some(true);
    let keepalive = st.config.server.keepalive_interval;
    let target = target(st, &group).map_err(|_| AnthropicError::not_found_model(&group))?;
    let mut req = canonical_request(st, &wire, headers);
    let msg_id = format!("msg_{}", ctx.call_id.replace('-', ""));
    match (target, stream) {
        (Target::Mock(m), false) => {
            mock_delay(m).await;
            let resp = mock::chat(m, &req, &ctx.call_id, unix_now());
            ctx.meter.usage(resp.usage.as_ref());
            ctx.usage.clone_from(&resp.usage);
            message_response(&resp, &msg_id, &group)
        }
        (Target::Mock(m), true) => {
            mock_delay(m).await;
            let s = mock::chat_stream(m, &req, &ctx.call_id, unix_now());
            let tracked = ctx.track(st, chat_prompt_chars(&req), s);
            let s = Box::pin(ctx.meter.tap(tracked));
            Ok(event_stream_response(s, keepalive, ctx.call_id.clone(), msg_id, group))
        }
        (Target::Routed(router), false) => {
            let opts = RequestOptions::from_chat(&req);
            req.stream = None;
            req.stream_options = None;
            let routed = router.chat(&req, &opts).await.map_err(|e| e.into_provider_error())?;
            ctx.cost = routed.response.usage.as_ref().and_then(|u| cost_of(st, &routed.route, u));
            ctx.meter.usage(routed.response.usage.as_ref());
            ctx.usage.clone_from(&routed.response.usage);
            ctx.routed(routed.route);
            message_response(&routed.response, &msg_id, &group)
        }
        (Target::Routed(router), true) => {
            let opts = RequestOptions::from_chat(&req);
            req.stream = Some(true);
            let routed = router.chat_stream(&req, &opts).await.map_err(|e| e.into_provider_error())?;
            ctx.routed(routed.route);
            let tracked = ctx.track(st, chat_prompt_chars(&req), routed.response);
            Ok(event_stream_response(
                Box::pin(ctx.meter.tap(tracked)),
                keepalive,
                ctx.call_id.clone(),
                msg_id,
                group,
            ))
        }
    }
}

/// A non-streamed answer as an Anthropic `message` (id `msg_…`, model = the requested group).
fn message_response(
    resp: &tollgate::ChatResponse,
    msg_id: &str,
    group: &str,
) -> Result<Response, AnthropicError> {
    let mut msg = chat_response_to_messages(resp);
    msg.id = msg_id.to_owned();
    msg.model = group.to_owned();
    let body = serde_json::to_vec(&msg)
        .map_err(|e| AnthropicError::internal(format!("cannot encode the response: {e}")))?;
    let mut resp = (StatusCode::OK, Bytes::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Anthropic's named-event SSE response for a stream of canonical chunks. `message_start` is
/// followed by a `ping`; `ping` is also sent after every `keepalive` of silence. An error item
/// becomes one `event: error` and ends the stream. Dropping the body (client gone) drops the
/// upstream stream, which cancels it.
fn event_stream_response(
    stream: ItemStream<ChatChunk>,
    keepalive: Duration,
    call_id: String,
    msg_id: String,
    model: String,
) -> Response {
    struct St {
        inner: ItemStream<ChatChunk>,
        enc: AnthropicEventEncoder,
        started: bool,
        done: bool,
        keepalive: Duration,
        call_id: String,
        msg_id: String,
        model: String,
    }
    impl St {
        /// `message_start` (with the usage the first chunk carries, if any), then a `ping`.
        fn start(&mut self, first_usage: Option<tollgate::Usage>, out: &mut Vec<u8>) {
            self.started = true;
            let mut head = ChatChunk::new(self.msg_id.clone(), self.model.clone(), unix_now());
            head.usage = first_usage;
            self.enc.push(&head, out);
            out.extend_from_slice(PING);
        }
    }
    let st = St {
        inner: stream,
        enc: AnthropicEventEncoder::new(),
        started: false,
        done: false,
        keepalive,
        call_id,
        msg_id,
        model,
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let mut out = Vec::new();
            match tokio::time::timeout(st.keepalive, st.inner.next()).await {
                Err(_) => out.extend_from_slice(PING),
                Ok(Some(Ok(chunk))) => {
                    if !st.started {
                        st.start(chunk.usage.clone(), &mut out);
                    }
                    st.enc.push(&chunk, &mut out);
                }
                Ok(Some(Err(e))) => {
                    st.done = true;
                    tracing::warn!(call_id = %st.call_id, error = %e, "stream failed mid-way");
                    let data = AnthropicError::from(e).body(Some(&st.call_id));
                    encode_event(&mut out, Some("error"), &String::from_utf8_lossy(&data));
                }
                Ok(None) => {
                    st.done = true;
                    if !st.started {
                        st.start(None, &mut out);
                    }
                    st.enc.finish(&mut out);
                }
            }
            if !out.is_empty() {
                return Some((Ok::<_, Infallible>(Bytes::from(out)), st));
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    resp
}

// ---------------------------------------------------------------------------------------------
// count_tokens
// ---------------------------------------------------------------------------------------------

async fn count_tokens(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut ctx = CallCtx::new("count_tokens");
    let result = match count_tokens_inner(&st, &mut ctx, &headers, body) {
        Ok(r) => r,
        Err(e) => e.into_response_with_id(Some(&ctx.call_id)),
    };
    with_request_id(ctx, Ok(result))
}

fn count_tokens_inner(
    st: &AppState,
    ctx: &mut CallCtx,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let wire = parse_messages(st, body, Some(1))?;
    ctx.group = Some(wire.model.clone());
    target(st, &wire.model).map_err(|_| AnthropicError::not_found_model(&wire.model))?;
    let req = canonical_request(st, &wire, headers);
    // The tokenizer of the group's first deployment (a mock group counts with o200k_base).
    let model = group_models(st, &wire.model).next().unwrap_or(&wire.model);
    let tools = req.tools.as_deref().unwrap_or(&[]);
    let count = tollgate::pricing::tokens::count_chat(model, &req.messages, tools);
    let body = serde_json::to_vec(&json!({"input_tokens": count.tokens}))
        .map_err(|e| AnthropicError::internal(format!("cannot encode the response: {e}")))?;
    let mut resp = (StatusCode::OK, Bytes::from(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        HeaderName::from_static("x-tollgate-token-count"),
        HeaderValue::from_static(if count.exact { "exact" } else { "estimate" }),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_anthropic_types_and_statuses() {
        assert_eq!(
            kind_to_anthropic(ErrorKind::Overloaded),
            (StatusCode::from_u16(529).unwrap(), "overloaded_error")
        );
        assert_eq!(
            kind_to_anthropic(ErrorKind::RateLimited),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
        );
        assert_eq!(kind_to_anthropic(ErrorKind::NotFound), (StatusCode::NOT_FOUND, "not_found_error"));
        assert_eq!(kind_to_anthropic(ErrorKind::ContextWindowExceeded).1, "invalid_request_error");
        assert_eq!(kind_to_anthropic(ErrorKind::ServerError), (StatusCode::BAD_GATEWAY, "api_error"));
        assert_eq!(type_for_status(StatusCode::UNAUTHORIZED), "authentication_error");
        assert_eq!(type_for_status(StatusCode::BAD_REQUEST), "invalid_request_error");
    }

    #[test]
    fn betas_split_and_trim() {
        let mut h = HeaderMap::new();
        h.append("anthropic-beta", HeaderValue::from_static("a-1, b-2"));
        h.append("anthropic-beta", HeaderValue::from_static("c-3"));
        assert_eq!(betas(&h), vec!["a-1", "b-2", "c-3"]);
    }
}
