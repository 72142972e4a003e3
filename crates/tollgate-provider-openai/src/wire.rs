//! The OpenAI wire dialect shared by every adapter of this crate: request assembly, response and
//! error parsing, and the SSE stream decoders.

use std::marker::PhantomData;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tollgate_core::chat::ChatChunk;
use tollgate_core::completion::TextCompletionResponse;
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::sse::{SseDecoder, SseError, SseEvent};
use tollgate_core::{ErrorKind, ProviderError, RawResponse, Secret, StreamDecoder, UpstreamConfig};

pub(crate) type JsonObject = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

pub(crate) fn bad_request(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::bad_request(message).with_provider(provider)
}

/// Serialises a canonical request into the JSON object that goes upstream, with `model` set to
/// the name the provider knows.
pub(crate) fn request_object<T: Serialize>(
    provider: &str,
    request: &T,
    model: &str,
) -> Result<JsonObject, ProviderError> {
    let mut body = match serde_json::to_value(request) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(bad_request(provider, "the request did not serialise to a JSON object")),
        Err(e) => return Err(bad_request(provider, format!("the request could not be serialised: {e}"))),
    };
    body.insert("model".to_owned(), Value::String(model.to_owned()));
    Ok(body)
}

/// `stream_options` handling. Outside a stream the field is removed (OpenAI rejects it there).
/// With `force_usage`, a streamed request always asks for the final usage chunk, keeping any
/// other stream options the caller set.
pub(crate) fn set_stream_options(body: &mut JsonObject, streaming: bool, force_usage: bool) {
    if !streaming {
        body.remove("stream_options");
        return;
    }
    if !force_usage {
        return;
    }
    let slot = body.entry("stream_options").or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(o) = slot {
        o.insert("include_usage".to_owned(), Value::Bool(true));
    }
}

/// `cfg.extra_body` goes on top of everything the adapter wrote.
pub(crate) fn merge_extra_body(body: &mut JsonObject, cfg: &UpstreamConfig) {
    for (k, v) in &cfg.extra_body {
        body.insert(k.clone(), v.clone());
    }
}

/// A header value holding a credential: marked sensitive so HTTP stacks do not log it.
pub(crate) fn secret_header(
    provider: &str,
    prefix: &str,
    secret: &Secret,
) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(&format!("{prefix}{}", secret.expose())).map_err(|_| {
        bad_request(provider, "the credential contains characters that are not allowed in an HTTP header")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Authorization: Bearer <secret>`.
pub(crate) fn insert_bearer(
    provider: &str,
    headers: &mut HeaderMap,
    secret: &Secret,
) -> Result<(), ProviderError> {
    headers.insert(AUTHORIZATION, secret_header(provider, "Bearer ", secret)?);
    Ok(())
}

/// The usable credential, ignoring empty strings (an empty env var means "unset").
pub(crate) fn non_empty(s: Option<&Secret>) -> Option<&Secret> {
    s.filter(|s| !s.is_empty())
}

/// Builds `POST url` with a JSON body: the adapter's `headers`, then `cfg.headers` (which win).
/// Invalid header names or values and invalid URLs are bad requests, never panics.
pub(crate) fn post_json(
    provider: &str,
    url: &str,
    mut headers: HeaderMap,
    cfg: &UpstreamConfig,
    body: &JsonObject,
) -> Result<Request<Bytes>, ProviderError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &cfg.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad_request(provider, format!("invalid header name `{}`", name.escape_debug())))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| bad_request(provider, format!("invalid value for header `{n}`")))?;
        headers.insert(n, v);
    }
    let bytes = serde_json::to_vec(body)
        .map_err(|e| bad_request(provider, format!("the request could not be serialised: {e}")))?;
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .body(Bytes::from(bytes))
        .map_err(|e| bad_request(provider, format!("invalid upstream URL `{url}`: {e}")))?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The fields of an OpenAI-style error object, read leniently: Azure sends `"type": null`, some
/// vendors send numeric codes or `{"error": "text"}`.
#[derive(Debug, Default)]
struct ErrorInfo {
    message: String,
    kind_hint: Option<String>,
    param: Option<String>,
    code: Option<String>,
    /// Azure's `innererror.code` (`ResponsibleAIPolicyViolation`).
    inner_code: Option<String>,
    /// An HTTP status named inside the body (`"code": 429`, Azure's `"status": 400`).
    status_hint: Option<u16>,
}

fn scalar_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_status(v: Option<&Value>) -> Option<u16> {
    let n = match v? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|s| (400..=599).contains(s))
}

/// Reads the value of an `error` key. `None` when it is absent or `null` (not an error).
fn error_info(error: &Value) -> Option<ErrorInfo> {
    match error {
        Value::Null => None,
        Value::String(s) => Some(ErrorInfo { message: s.clone(), ..ErrorInfo::default() }),
        Value::Object(o) => {
            let message = match o.get("message") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            Some(ErrorInfo {
                message,
                kind_hint: scalar_string(o.get("type")),
                param: scalar_string(o.get("param")),
                code: scalar_string(o.get("code")),
                inner_code: o.get("innererror").and_then(|i| scalar_string(i.get("code"))),
                status_hint: as_status(o.get("status")).or_else(|| as_status(o.get("code"))),
            })
        }
        other => Some(ErrorInfo { message: other.to_string(), ..ErrorInfo::default() }),
    }
}

fn is_content_filter_code(code: &str) -> bool {
    matches!(code, "content_filter" | "content_policy_violation" | "ResponsibleAIPolicyViolation")
}

/// The kind of an error that came without a meaningful HTTP status (a 200 body, a stream event).
fn kind_without_status(info: &ErrorInfo) -> ErrorKind {
    if let Some(s) = info.status_hint {
        return ErrorKind::from_status(s);
    }
    let code = info.code.as_deref().unwrap_or("");
    let hint = info.kind_hint.as_deref().unwrap_or("");
    match (code, hint) {
        ("rate_limit_exceeded" | "insufficient_quota", _)
        | (_, "rate_limit_error" | "insufficient_quota") => ErrorKind::RateLimited,
        ("invalid_api_key", _) | (_, "authentication_error") => ErrorKind::Authentication,
        ("model_not_found" | "DeploymentNotFound", _) => ErrorKind::NotFound,
        (_, "invalid_request_error") => ErrorKind::BadRequest,
        _ => ErrorKind::ServerError,
    }
}

/// Refines a status-derived kind with what the body says.
fn refine(kind: ErrorKind, info: &ErrorInfo) -> ErrorKind {
    let code = info.code.as_deref().unwrap_or("");
    if is_content_filter_code(code) || info.inner_code.as_deref().is_some_and(is_content_filter_code) {
        return ErrorKind::ContentFiltered;
    }
    if code == "context_length_exceeded" {
        return ErrorKind::ContextWindowExceeded;
    }
    let may_be_context =
        matches!(kind, ErrorKind::BadRequest | ErrorKind::ContextWindowExceeded | ErrorKind::ServerError);
    if may_be_context && mentions_context_window(&info.message) {
        return ErrorKind::ContextWindowExceeded;
    }
    kind
}

fn build_error(provider: &str, kind: ErrorKind, info: ErrorInfo) -> ProviderError {
    let message = if info.message.is_empty() {
        info.code.clone().unwrap_or_else(|| "the provider returned an error without a message".to_owned())
    } else {
        info.message
    };
    let mut e = ProviderError::new(kind, message).with_provider(provider);
    e.code = info.code;
    e.param = info.param;
    e
}

/// Classifies a non-2xx response (OpenAI's `{"error": {...}}` body, or whatever a proxy sent).
pub(crate) fn error_response(provider: &str, resp: &RawResponse) -> ProviderError {
    let status = resp.status.as_u16();
    let retry_after = parse_retry_after(&resp.headers);
    let base = ErrorKind::from_status(status);
    let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let info = parsed.as_ref().and_then(|v| match v.get("error") {
        Some(e) => error_info(e),
        // Bodies like `{"message": "..."}` or FastAPI's `{"detail": "..."}`.
        None => v.get("message").or_else(|| v.get("detail")).map(|m| ErrorInfo {
            message: m.as_str().map_or_else(|| m.to_string(), str::to_owned),
            code: scalar_string(v.get("code")),
            ..ErrorInfo::default()
        }),
    });
    let err = match info {
        Some(info) => {
            let kind = refine(base, &info);
            build_error(provider, kind, info)
        }
        None => {
            let message = if resp.body.iter().all(u8::is_ascii_whitespace) {
                "empty error body".to_owned()
            } else if parsed.is_some() {
                format!("unrecognised error body: {}", body_excerpt(&resp.body))
            } else {
                format!("non-JSON error body: {}", body_excerpt(&resp.body))
            };
            ProviderError::new(base, message).with_provider(provider)
        }
    };
    err.with_status(status).with_retry_after(retry_after)
}

/// The error an `{"error": ...}` value describes when it arrived without an error status.
fn error_without_status(provider: &str, error: &Value) -> Option<ProviderError> {
    let info = error_info(error)?;
    let kind = refine(kind_without_status(&info), &info);
    Some(build_error(provider, kind, info))
}

pub(crate) fn decode_error(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::decode(message).with_provider(provider)
}

/// Parses a 2xx JSON body into `T`, rejecting error bodies sent with a success status.
pub(crate) fn parse_success<T: DeserializeOwned>(
    provider: &str,
    resp: &RawResponse,
    what: &str,
) -> Result<T, ProviderError> {
    let value: Value = serde_json::from_slice(&resp.body).map_err(|e| {
        decode_error(
            provider,
            format!("the {what} response is not valid JSON ({e}): {}", body_excerpt(&resp.body)),
        )
    })?;
    if let Some(err) = value.get("error").and_then(|e| error_without_status(provider, e)) {
        return Err(err.with_status(resp.status.as_u16()).with_retry_after(parse_retry_after(&resp.headers)));
    }
    serde_json::from_value(value).map_err(|e| {
        decode_error(
            provider,
            format!(
                "the {what} response does not have the documented shape ({e}): {}",
                body_excerpt(&resp.body)
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// An item of an OpenAI-style SSE stream (`data: {json}` events ended by `data: [DONE]`).
pub(crate) trait StreamItem: DeserializeOwned + Send + 'static {
    const WHAT: &'static str;
    /// Whether a choice in this item carries a finish reason.
    fn has_finish(&self) -> bool;
    /// An `error` member of an otherwise valid item (OpenRouter-style mid-stream errors).
    fn embedded_error(&self) -> Option<&Value>;
}

impl StreamItem for ChatChunk {
    const WHAT: &'static str = "chat completion chunk";
    fn has_finish(&self) -> bool {
        self.choices.iter().any(|c| c.finish_reason.is_some())
    }
    fn embedded_error(&self) -> Option<&Value> {
        self.extra.get("error").filter(|e| !e.is_null())
    }
}

impl StreamItem for TextCompletionResponse {
    const WHAT: &'static str = "text completion chunk";
    fn has_finish(&self) -> bool {
        self.choices.iter().any(|c| c.finish_reason.is_some())
    }
    fn embedded_error(&self) -> Option<&Value> {
        self.extra.get("error").filter(|e| !e.is_null())
    }
}

/// Whether EOF without `data: [DONE]` is a cut stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DoneRule {
    /// OpenAI and Azure always end with `[DONE]`.
    Required,
    /// Many vendors omit `[DONE]`: EOF is a clean end once a choice has finished.
    AfterFinishReason,
}

/// Decodes an OpenAI-style SSE body into items of type `T`.
pub(crate) struct SseJsonDecoder<T> {
    provider: String,
    sse: SseDecoder,
    events: Vec<SseEvent>,
    rule: DoneRule,
    done: bool,
    failed: bool,
    saw_finish: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for SseJsonDecoder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseJsonDecoder")
            .field("provider", &self.provider)
            .field("done", &self.done)
            .field("saw_finish", &self.saw_finish)
            .finish()
    }
}

impl<T: StreamItem> SseJsonDecoder<T> {
    pub(crate) fn new(provider: &str, rule: DoneRule) -> Self {
        SseJsonDecoder {
            provider: provider.to_owned(),
            sse: SseDecoder::new(),
            events: Vec::new(),
            rule,
            done: false,
            failed: false,
            saw_finish: false,
            _item: PhantomData,
        }
    }

    fn cut(&self) -> ProviderError {
        decode_error(&self.provider, "stream ended before [DONE]")
    }

    fn sse_error(&self, e: &SseError) -> ProviderError {
        decode_error(&self.provider, format!("invalid event stream: {e}"))
    }

    /// Handles the events decoded so far.
    fn drain(&mut self, out: &mut Vec<T>) -> Result<(), ProviderError> {
        let mut events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for ev in events.drain(..) {
            if self.done {
                break;
            }
            if let Err(e) = self.event(&ev, out) {
                self.failed = true;
                result = Err(e);
                break;
            }
        }
        events.clear();
        self.events = events;
        result
    }

    fn event(&mut self, ev: &SseEvent, out: &mut Vec<T>) -> Result<(), ProviderError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let is_error_event = ev.event.as_deref() == Some("error");
        if !is_error_event && let Ok(item) = serde_json::from_str::<T>(data) {
            if let Some(err) = item.embedded_error().and_then(|e| error_without_status(&self.provider, e)) {
                return Err(err);
            }
            self.saw_finish |= item.has_finish();
            out.push(item);
            return Ok(());
        }
        // Not a plain item: an error event, a vendor's looser chunk, or garbage.
        let value: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(_) if is_error_event => {
                return Err(ProviderError::new(
                    ErrorKind::ServerError,
                    format!("stream error event: {data}"),
                )
                .with_provider(&self.provider));
            }
            Err(e) => {
                return Err(decode_error(
                    &self.provider,
                    format!("malformed {} ({e}): {}", T::WHAT, body_excerpt(data.as_bytes())),
                ));
            }
        };
        let error = value.get("error").or(if is_error_event { Some(&value) } else { None });
        if let Some(err) = error.and_then(|e| error_without_status(&self.provider, e)) {
            return Err(err);
        }
        match serde_json::from_value::<T>(loosen(value)) {
            Ok(item) => {
                self.saw_finish |= item.has_finish();
                out.push(item);
                Ok(())
            }
            Err(e) => Err(decode_error(
                &self.provider,
                format!("malformed {} ({e}): {}", T::WHAT, body_excerpt(data.as_bytes())),
            )),
        }
    }
}

/// Accepts what OpenAI-compatible servers commonly send in place of the documented chunk:
/// `"choices": null` on the usage chunk, a missing `id` or `model`.
fn loosen(mut value: Value) -> Value {
    if let Value::Object(o) = &mut value {
        if o.get("choices").is_none_or(Value::is_null) {
            o.insert("choices".to_owned(), Value::Array(Vec::new()));
        }
        for key in ["id", "model"] {
            if o.get(key).is_none_or(Value::is_null) {
                o.insert(key.to_owned(), Value::String(String::new()));
            }
        }
    }
    value
}

impl<T: StreamItem> StreamDecoder<T> for SseJsonDecoder<T> {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<T>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        let fed = self.sse.feed(bytes, &mut self.events);
        // Events completed before a bad line still count, and a bad line after `[DONE]` does not.
        self.drain(out)?;
        match fed {
            Err(e) if !self.done => {
                self.failed = true;
                Err(self.sse_error(&e))
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, out: &mut Vec<T>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        if self.failed {
            // The error was reported by `decode`; the stream still did not end cleanly.
            return Err(self.cut());
        }
        if self.sse.has_partial() {
            // The last event lacks its blank line; accept it if it is complete in itself.
            let mut tail = Vec::new();
            if self.sse.feed(b"\n\n", &mut self.events).is_err() {
                return Err(self.cut());
            }
            if self.drain(&mut tail).is_err() {
                return Err(self.cut());
            }
            out.append(&mut tail);
        }
        if self.done || (self.rule == DoneRule::AfterFinishReason && self.saw_finish) {
            return Ok(());
        }
        Err(self.cut())
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finish_after_a_failed_decode_is_still_an_error() {
        let mut d = SseJsonDecoder::<ChatChunk>::new("openai", DoneRule::Required);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"data: {oops}\n\n", &mut out).unwrap_err().kind, ErrorKind::Decode);
        // Later bytes are ignored, and the stream never counts as complete.
        d.decode(b"data: [DONE]\n\n", &mut out).unwrap();
        assert!(!d.is_done());
        assert_eq!(d.finish(&mut out).unwrap_err().kind, ErrorKind::Decode);
        assert!(out.is_empty());
    }

    #[test]
    fn error_event_without_json_is_a_server_error() {
        let mut d = SseJsonDecoder::<ChatChunk>::new("groq", DoneRule::AfterFinishReason);
        let mut out = Vec::new();
        let e = d.decode(b"event: error\ndata: upstream went away\n\n", &mut out).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ServerError);
        assert!(e.message.contains("upstream went away"));
        let mut d = SseJsonDecoder::<ChatChunk>::new("groq", DoneRule::AfterFinishReason);
        let e =
            d.decode(b"event: error\ndata: {\"message\":\"busy\",\"code\":503}\n\n", &mut out).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Overloaded, "busy"));
    }

    #[test]
    fn stream_options_are_forced_or_removed() {
        let mut body = JsonObject::new();
        body.insert("stream_options".into(), json!("bogus"));
        set_stream_options(&mut body, true, true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        set_stream_options(&mut body, false, true);
        assert!(!body.contains_key("stream_options"));
        body.insert("stream_options".into(), json!({"include_usage": false, "x": 1}));
        set_stream_options(&mut body, true, false);
        assert_eq!(body["stream_options"], json!({"include_usage": false, "x": 1}));
        set_stream_options(&mut body, true, true);
        assert_eq!(body["stream_options"], json!({"include_usage": true, "x": 1}));
    }

    #[test]
    fn url_components_are_percent_encoded() {
        assert_eq!(encode_component("gpt-4o_prod.v2~x"), "gpt-4o_prod.v2~x");
        assert_eq!(encode_component("a b/c?d#é"), "a%20b%2Fc%3Fd%23%C3%A9");
    }
}
