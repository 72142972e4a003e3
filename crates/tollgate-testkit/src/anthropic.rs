//! Anthropic's Messages dialect on top of the generic [`MockResponse`]: `message` objects,
//! named-event SSE streams, the error envelope, and a deterministic default responder.
//!
//! Shapes follow Anthropic's API reference for `POST /v1/messages`:
//!
//! * the `message` object: `{"id": "msg_…", "type": "message", "role": "assistant", "model",
//!   "content": [blocks], "stop_reason", "stop_sequence", "usage"}` with `text`, `tool_use`
//!   (`id`, `name`, `input` object) and `thinking` (`thinking`, `signature`) blocks, and usage
//!   `input_tokens` (excluding cache reads and writes), `cache_creation_input_tokens`,
//!   `cache_read_input_tokens`, `output_tokens`;
//! * streams: every event has an `event:` name equal to the `type` of its JSON data, in the
//!   order `message_start` (a message with empty `content`), per block `content_block_start` /
//!   `content_block_delta`s (`text_delta`, `thinking_delta` + `signature_delta`,
//!   `input_json_delta` with `partial_json` fragments) / `content_block_stop`, then
//!   `message_delta` (`stop_reason` and the cumulative `usage`) and `message_stop`; `ping` events
//!   may appear anywhere, and an `error` event may replace the rest of the stream;
//! * errors: `{"type": "error", "error": {"type", "message"}, "request_id"}` with the documented
//!   statuses (400 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`,
//!   404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 500 `api_error`,
//!   529 `overloaded_error`).
//!
//! Vertex AI serves the same dialect for Claude models through `…:rawPredict` and
//! `…:streamRawPredict`; [`AnthropicResponder`] answers those paths too.

use serde_json::{Value, json};

use crate::openai::{stream_pieces, word_count};
use crate::record::RecordedRequest;
use crate::response::{MockResponse, sse_event};
use crate::server::Responder;
use tollgate_core::sse::SseEvent;

/// The model the convenience constructors report.
pub const ANTHROPIC_MOCK_MODEL: &str = "claude-sonnet-4-5-20250929";
/// The message id the convenience constructors use (the responder adds `_{seq}`).
pub const ANTHROPIC_MOCK_ID: &str = "msg_mock";
/// The `request_id` of every mock error envelope.
pub const ANTHROPIC_MOCK_REQUEST_ID: &str = "req_mock";
/// Input tokens reported by the constructors that take no explicit usage.
pub const ANTHROPIC_MOCK_INPUT_TOKENS: u64 = 10;

/// Anthropic's `usage` object. `input_tokens` excludes cache reads and cache writes, as on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnthropicUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl AnthropicUsage {
    /// Input and output tokens, no cache activity.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        AnthropicUsage { input_tokens, output_tokens, ..Self::default() }
    }

    /// Sets the cache reads and cache writes.
    pub fn with_cache(mut self, read: u64, creation: u64) -> Self {
        self.cache_read_input_tokens = read;
        self.cache_creation_input_tokens = creation;
        self
    }

    /// The wire object (every field present, as the API sends it).
    pub fn to_json(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens
        })
    }
}

/// A `text` content block.
pub fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// A `tool_use` content block; `input` is the arguments object.
pub fn tool_use_block(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

/// A `thinking` content block with its signature.
pub fn thinking_block(thinking: &str, signature: &str) -> Value {
    json!({"type": "thinking", "thinking": thinking, "signature": signature})
}

/// A `message` object.
pub fn message_json(
    id: &str,
    model: &str,
    content: Vec<Value>,
    stop_reason: &str,
    usage: &AnthropicUsage,
) -> Value {
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage.to_json()
    })
}

/// Anthropic's error envelope.
pub fn error_json(error_type: &str, message: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": ANTHROPIC_MOCK_REQUEST_ID
    })
}

/// Builds an Anthropic named-event stream step by step. Block indices count up from 0 in the
/// order blocks are added.
///
/// ```
/// use tollgate_testkit::anthropic::{AnthropicStream, AnthropicUsage};
/// let response = AnthropicStream::new("msg_1", "claude-sonnet-4-5", AnthropicUsage::new(12, 1))
///     .ping()
///     .text(["Hel", "lo"])
///     .finish("end_turn", 2)
///     .into_response();
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicStream {
    events: Vec<SseEvent>,
    next_index: u32,
}

fn event(data: &Value) -> SseEvent {
    let name = data.get("type").and_then(Value::as_str).unwrap_or("message").to_owned();
    sse_event(name, data.to_string())
}

impl AnthropicStream {
    /// Starts with `message_start`: a message with empty content, `stop_reason: null` and this
    /// input-side usage (`output_tokens` as given, usually 1 at the start).
    pub fn new(id: &str, model: &str, usage: AnthropicUsage) -> Self {
        let mut message = message_json(id, model, Vec::new(), "", &usage);
        message["stop_reason"] = Value::Null;
        AnthropicStream {
            events: vec![event(&json!({"type": "message_start", "message": message}))],
            next_index: 0,
        }
    }

    /// Adds a raw event (its `type` names the event).
    pub fn raw(mut self, data: Value) -> Self {
        self.events.push(event(&data));
        self
    }

    /// A `ping` event.
    pub fn ping(self) -> Self {
        self.raw(json!({"type": "ping"}))
    }

    fn block(mut self, start: Value, deltas: Vec<Value>) -> Self {
        let index = self.next_index;
        self.next_index += 1;
        self = self.raw(json!({"type": "content_block_start", "index": index, "content_block": start}));
        for d in deltas {
            self = self.raw(json!({"type": "content_block_delta", "index": index, "delta": d}));
        }
        self.raw(json!({"type": "content_block_stop", "index": index}))
    }

    /// A text block streamed as these `text_delta` pieces.
    pub fn text<I, S>(self, pieces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let deltas = pieces.into_iter().map(|p| json!({"type": "text_delta", "text": p.as_ref()})).collect();
        self.block(json!({"type": "text", "text": ""}), deltas)
    }

    /// A thinking block: `thinking_delta` pieces, then one `signature_delta`.
    pub fn thinking<I, S>(self, pieces: I, signature: &str) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut deltas: Vec<Value> =
            pieces.into_iter().map(|p| json!({"type": "thinking_delta", "thinking": p.as_ref()})).collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature}));
        self.block(json!({"type": "thinking", "thinking": "", "signature": ""}), deltas)
    }

    /// A `tool_use` block (`input: {}` at the start) whose arguments arrive as these
    /// `input_json_delta` fragments; like the API, the first delta has an empty `partial_json`.
    pub fn tool_use<I, S>(self, id: &str, name: &str, fragments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let deltas = std::iter::once(String::new())
            .chain(fragments.into_iter().map(|f| f.as_ref().to_owned()))
            .map(|f| json!({"type": "input_json_delta", "partial_json": f}))
            .collect();
        self.block(json!({"type": "tool_use", "id": id, "name": name, "input": {}}), deltas)
    }

    /// `message_delta` with this `stop_reason` and cumulative `output_tokens`.
    pub fn message_delta(self, stop_reason: &str, output_tokens: u64) -> Self {
        self.raw(json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens}
        }))
    }

    /// `message_stop`: the terminator.
    pub fn message_stop(self) -> Self {
        self.raw(json!({"type": "message_stop"}))
    }

    /// `message_delta` then `message_stop`.
    pub fn finish(self, stop_reason: &str, output_tokens: u64) -> Self {
        self.message_delta(stop_reason, output_tokens).message_stop()
    }

    /// An `error` event (e.g. `overloaded_error` mid-stream).
    pub fn error(self, error_type: &str, message: &str) -> Self {
        self.raw(json!({"type": "error", "error": {"type": error_type, "message": message}}))
    }

    /// The events in order.
    pub fn events(&self) -> &[SseEvent] {
        &self.events
    }

    /// The SSE response.
    pub fn into_response(self) -> MockResponse {
        MockResponse::sse(self.events)
    }
}

/// Splits `s` into two fragments at a character boundary near the middle (the second may be empty).
pub(crate) fn halves(s: &str) -> [&str; 2] {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid += 1;
    }
    [&s[..mid], &s[mid..]]
}

impl MockResponse {
    /// 200 `message` answering `text`: `stop_reason: end_turn`, usage
    /// [`ANTHROPIC_MOCK_INPUT_TOKENS`] in and [`word_count`]`(text)` out.
    pub fn anthropic_message(text: &str) -> Self {
        Self::anthropic_message_with_usage(
            text,
            AnthropicUsage::new(ANTHROPIC_MOCK_INPUT_TOKENS, word_count(text)),
        )
    }

    /// 200 `message` answering `text` with this usage.
    pub fn anthropic_message_with_usage(text: &str, usage: AnthropicUsage) -> Self {
        Self::anthropic_message_blocks(vec![text_block(text)], "end_turn", usage)
    }

    /// 200 `message` with these content blocks, stop reason and usage.
    pub fn anthropic_message_blocks(content: Vec<Value>, stop_reason: &str, usage: AnthropicUsage) -> Self {
        Self::json(&message_json(ANTHROPIC_MOCK_ID, ANTHROPIC_MOCK_MODEL, content, stop_reason, &usage))
    }

    /// 200 `message` that calls tools, given as `(id, name, input object)`: `stop_reason:
    /// tool_use`, usage [`ANTHROPIC_MOCK_INPUT_TOKENS`] in, 20 out.
    pub fn anthropic_tool_use<I, A, B>(calls: I) -> Self
    where
        I: IntoIterator<Item = (A, B, Value)>,
        A: AsRef<str>,
        B: AsRef<str>,
    {
        let content =
            calls.into_iter().map(|(id, name, input)| tool_use_block(id.as_ref(), name.as_ref(), input));
        Self::anthropic_message_blocks(
            content.collect(),
            "tool_use",
            AnthropicUsage::new(ANTHROPIC_MOCK_INPUT_TOKENS, 20),
        )
    }

    /// 200 SSE stream of one text block made of `pieces`, a `ping` after `message_start`,
    /// `stop_reason: end_turn`; usage `usage.input_tokens` (and cache fields) at the start and
    /// `usage.output_tokens` in `message_delta`.
    pub fn anthropic_stream_text<I, S>(pieces: I, usage: AnthropicUsage) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let start = AnthropicUsage { output_tokens: 1, ..usage };
        AnthropicStream::new(ANTHROPIC_MOCK_ID, ANTHROPIC_MOCK_MODEL, start)
            .ping()
            .text(pieces)
            .finish("end_turn", usage.output_tokens)
            .into_response()
    }

    /// 200 SSE stream of tool calls `(id, name, arguments JSON)`, each `tool_use` block's
    /// arguments in two `input_json_delta` fragments split mid-string, `stop_reason: tool_use`.
    pub fn anthropic_stream_tool_use<I, A, B, C>(calls: I, usage: AnthropicUsage) -> Self
    where
        I: IntoIterator<Item = (A, B, C)>,
        A: AsRef<str>,
        B: AsRef<str>,
        C: AsRef<str>,
    {
        let start = AnthropicUsage { output_tokens: 1, ..usage };
        let mut s = AnthropicStream::new(ANTHROPIC_MOCK_ID, ANTHROPIC_MOCK_MODEL, start);
        for (id, name, args) in calls {
            s = s.tool_use(
                id.as_ref(),
                name.as_ref(),
                halves(args.as_ref()).into_iter().filter(|f| !f.is_empty()),
            );
        }
        s.finish("tool_use", usage.output_tokens).into_response()
    }

    /// An error in Anthropic's envelope, e.g. `anthropic_error(529, "overloaded_error", "Overloaded")`.
    pub fn anthropic_error(status: u16, error_type: &str, message: &str) -> Self {
        Self::json(&error_json(error_type, message))
            .status(status)
            .header("request-id", ANTHROPIC_MOCK_REQUEST_ID)
    }
}

/// The deterministic Anthropic default responder.
///
/// * `POST …/v1/messages`, `POST …:rawPredict`, `POST …:streamRawPredict` (Vertex AI): the reply
///   is `"echo: "` + the text of the last user message (its string content or its `text`
///   blocks). `input_tokens` is the [`word_count`] of the system prompt and every message's text,
///   `output_tokens` that of the reply. `max_tokens` smaller than the reply's word count cuts it
///   with `stop_reason: max_tokens`. With `stream: true` (or on `:streamRawPredict`) it streams
///   one `text_delta` per word ([`stream_pieces`]). The id is `msg_mock_{seq}`; the model is the
///   request's `model`, or [`ANTHROPIC_MOCK_MODEL`] when there is none (Vertex).
/// * a body that is not JSON or has no `messages`: 400 `invalid_request_error`;
/// * anything else: 404 `not_found_error`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnthropicResponder;

fn bad_request(message: &str) -> MockResponse {
    MockResponse::anthropic_error(400, "invalid_request_error", message)
}

/// The text of one Messages `content` (a string or an array of blocks).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

impl Responder for AnthropicResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let path = request.path.trim_end_matches('/');
        let post = request.method == http::Method::POST;
        let raw_stream = path.ends_with(":streamRawPredict");
        if !(post && (path.ends_with("/v1/messages") || path.ends_with(":rawPredict") || raw_stream)) {
            return Some(MockResponse::anthropic_error(
                404,
                "not_found_error",
                &format!("Not found: {} {}", request.method, request.path),
            ));
        }
        Some(self.messages(request, raw_stream))
    }
}

impl AnthropicResponder {
    fn messages(&self, request: &RecordedRequest, force_stream: bool) -> MockResponse {
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => return bad_request(&format!("There was an error parsing the body: {e}")),
        };
        let Some(messages) = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
            return bad_request("messages: Field required");
        };
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| content_text(m.get("content").unwrap_or(&Value::Null)))
            .unwrap_or_default();
        let system = body.get("system").map(content_text).unwrap_or_default();
        let input_tokens = word_count(&system)
            + messages
                .iter()
                .map(|m| word_count(&content_text(m.get("content").unwrap_or(&Value::Null))))
                .sum::<u64>();
        let reply = format!("echo: {last_user}");
        let pieces = stream_pieces(&reply);
        let limit =
            body.get("max_tokens").and_then(Value::as_u64).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let (pieces, stop) = match limit {
            Some(n) if n < pieces.len() => (pieces[..n].to_vec(), "max_tokens"),
            _ => (pieces, "end_turn"),
        };
        let reply = pieces.concat();
        let output_tokens = word_count(&reply);
        let id = format!("{ANTHROPIC_MOCK_ID}_{}", request.seq);
        let model = body.get("model").and_then(Value::as_str).unwrap_or(ANTHROPIC_MOCK_MODEL);
        let stream = force_stream || body.get("stream").and_then(Value::as_bool) == Some(true);
        if stream {
            AnthropicStream::new(&id, model, AnthropicUsage::new(input_tokens, 1))
                .ping()
                .text(pieces)
                .finish(stop, output_tokens)
                .into_response()
        } else {
            MockResponse::json(&message_json(
                &id,
                model,
                vec![text_block(&reply)],
                stop,
                &AnthropicUsage::new(input_tokens, output_tokens),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{HeaderMap, Method, Version};
    use tollgate_core::sse::SseDecoder;

    fn post(path: &str, body: &str) -> RecordedRequest {
        RecordedRequest {
            seq: 4,
            method: Method::POST,
            path: path.into(),
            query: None,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn events_of(r: &MockResponse) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        SseDecoder::new().feed(r.body_bytes(), &mut out).unwrap();
        out.into_iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                let name = e.event.unwrap();
                assert_eq!(v["type"], name.as_str(), "the event name equals the data's type");
                (name, v)
            })
            .collect()
    }

    #[test]
    fn message_has_the_documented_shape() {
        let r = MockResponse::anthropic_message_blocks(
            vec![
                thinking_block("hmm", "sig"),
                text_block("Hi"),
                tool_use_block("toolu_1", "f", json!({"a": 1})),
            ],
            "tool_use",
            AnthropicUsage::new(5, 7).with_cache(100, 20),
        );
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["stop_reason"], "tool_use");
        assert!(v["stop_sequence"].is_null());
        assert_eq!(v["content"][0], json!({"type": "thinking", "thinking": "hmm", "signature": "sig"}));
        assert_eq!(v["content"][2]["input"], json!({"a": 1}));
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 5, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 7})
        );
        assert_eq!(r.header_value("content-type"), Some("application/json"));
    }

    #[test]
    fn stream_has_the_documented_event_order() {
        let r = MockResponse::anthropic_stream_tool_use(
            [("toolu_1", "get_weather", r#"{"city":"Zürich"}"#)],
            AnthropicUsage::new(9, 4),
        );
        let evs = events_of(&r);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(evs[0].1["message"]["content"], json!([]));
        assert_eq!(evs[0].1["message"]["usage"]["input_tokens"], 9);
        assert_eq!(evs[1].1["content_block"]["input"], json!({}));
        let args: String = evs.iter().filter_map(|(_, v)| v["delta"]["partial_json"].as_str()).collect();
        assert_eq!(args, r#"{"city":"Zürich"}"#);
        assert_eq!(evs[6].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(evs[6].1["usage"]["output_tokens"], 4);

        let t = AnthropicStream::new("m", "c", AnthropicUsage::default())
            .thinking(["a", "b"], "sig")
            .error("overloaded_error", "Overloaded");
        let evs: Vec<(String, Value)> = t
            .events()
            .iter()
            .map(|e| (e.event.clone().unwrap(), serde_json::from_str(&e.data).unwrap()))
            .collect();
        assert_eq!(evs[4].1["delta"], json!({"type": "signature_delta", "signature": "sig"}));
        assert_eq!(evs.last().unwrap().1["error"]["type"], "overloaded_error");
    }

    #[test]
    fn error_envelope() {
        let r = MockResponse::anthropic_error(529, "overloaded_error", "Overloaded");
        assert_eq!(r.status_code(), 529);
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_mock"})
        );
    }

    #[test]
    fn responder_echoes_and_streams() {
        let body = r#"{"model":"claude-x","max_tokens":100,"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi there"}]}]}"#;
        let r = AnthropicResponder.respond(&post("/v1/messages", body)).unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["content"][0]["text"], "echo: hi there");
        assert_eq!(v["id"], "msg_mock_4");
        assert_eq!(v["model"], "claude-x");
        assert_eq!(v["usage"]["input_tokens"], 4);
        assert_eq!(v["usage"]["output_tokens"], 3);

        let cut = r#"{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"a b c"}]}"#;
        let v: Value = serde_json::from_slice(
            AnthropicResponder.respond(&post("/v1/messages", cut)).unwrap().body_bytes(),
        )
        .unwrap();
        assert_eq!(v["content"][0]["text"], "echo: a");
        assert_eq!(v["stop_reason"], "max_tokens");

        let vertex = r#"{"anthropic_version":"vertex-2023-10-16","max_tokens":9,"messages":[{"role":"user","content":"x"}]}"#;
        let r = AnthropicResponder
            .respond(&post(
                "/v1/projects/p/locations/l/publishers/anthropic/models/claude:streamRawPredict",
                vertex,
            ))
            .unwrap();
        let evs = events_of(&r);
        let text: String = evs.iter().filter_map(|(_, v)| v["delta"]["text"].as_str()).collect();
        assert_eq!(text, "echo: x");
        assert_eq!(evs.last().unwrap().0, "message_stop");

        assert_eq!(AnthropicResponder.respond(&post("/v1/messages", "{")).unwrap().status_code(), 400);
        assert_eq!(AnthropicResponder.respond(&post("/v1/other", "{}")).unwrap().status_code(), 404);
    }
}
