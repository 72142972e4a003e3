//! Cohere's v2 wire format on top of the generic [`MockResponse`]: chat JSON, the named-event SSE
//! chat stream, embed JSON and error bodies.
//!
//! Shapes follow Cohere's v2 API reference:
//!
//! * `POST /v2/chat` answers `{"id", "finish_reason": "COMPLETE" | "MAX_TOKENS" |
//!   "STOP_SEQUENCE" | "TOOL_CALL" | "ERROR" | "TIMEOUT", "message": {"role": "assistant",
//!   "content": [{"type": "text", "text"}], "tool_plan", "tool_calls": [{"id", "type":
//!   "function", "function": {"name", "arguments": "<JSON string>"}}]}, "usage": {"billed_units":
//!   {"input_tokens", "output_tokens"}, "tokens": {"input_tokens", "output_tokens"}}}`.
//! * With `"stream": true` it answers SSE whose `event:` names repeat the data's `type`:
//!   `message-start {"id", "delta": {"message": {"role": "assistant", …}}}`, `content-start` /
//!   `content-delta` / `content-end` (`{"index", "delta": {"message": {"content": {"type",
//!   "text"}}}}`), `tool-plan-delta {"delta": {"message": {"tool_plan"}}}`, `tool-call-start` /
//!   `tool-call-delta` / `tool-call-end` (`{"index", "delta": {"message": {"tool_calls": {…}}}}`),
//!   and `message-end {"delta": {"finish_reason", "usage"}}`.
//! * `POST /v2/embed` answers `{"id", "embeddings": {"float": [[...]]}, "texts", "meta":
//!   {"api_version": {"version": "2"}, "billed_units": {"input_tokens"}}, "response_type":
//!   "embeddings_by_type"}`.
//! * Errors: the HTTP status and `{"id", "message"}`.

use serde_json::{Value, json};

use tollgate_core::sse::encode_event;

use crate::openai::{embedding_vector, stream_pieces, word_count};
use crate::record::RecordedRequest;
use crate::response::MockResponse;
use crate::server::Responder;

/// The response id the `cohere_*` constructors use.
pub const COHERE_MOCK_ID: &str = "c14c80c3-18eb-4519-9460-6c92edd8cfb4";

/// Cohere's chat `usage`: billed units, and raw `tokens` (Cohere adds a few tokens of its own to
/// the prompt, mimicked here as `input + 64`).
pub fn cohere_usage_json(billed_input: u64, billed_output: u64) -> Value {
    json!({
        "billed_units": {"input_tokens": billed_input, "output_tokens": billed_output},
        "tokens": {"input_tokens": billed_input + 64, "output_tokens": billed_output},
    })
}

/// A v2 chat response body. `tool_calls` are `(id, name, arguments JSON string)`.
pub fn cohere_chat_json(
    text: Option<&str>,
    tool_plan: Option<&str>,
    tool_calls: &[(&str, &str, &str)],
    finish_reason: &str,
    usage: Value,
) -> Value {
    let mut message = json!({"role": "assistant"});
    if let Some(t) = text {
        message["content"] = json!([{"type": "text", "text": t}]);
    }
    if let Some(p) = tool_plan {
        message["tool_plan"] = json!(p);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = tool_calls
            .iter()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
    }
    json!({"id": COHERE_MOCK_ID, "message": message, "finish_reason": finish_reason, "usage": usage})
}

/// Builds a v2 chat SSE stream event by event.
#[derive(Debug, Clone)]
pub struct CohereChatStream {
    id: String,
    events: Vec<(String, Value)>,
}

impl CohereChatStream {
    /// An empty stream whose `message-start` will carry `id`.
    pub fn new(id: impl Into<String>) -> Self {
        CohereChatStream { id: id.into(), events: Vec::new() }
    }

    /// Adds an event: `type` is set in the data and repeated as the SSE `event:` name.
    pub fn event(mut self, kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(map) => {
                // `type` first, as Cohere writes it.
                let mut ordered = serde_json::Map::new();
                ordered.insert("type".into(), json!(kind));
                ordered.extend(map.into_iter().filter(|(k, _)| k != "type"));
                Value::Object(ordered)
            }
            other => other,
        };
        self.events.push((kind.to_owned(), data));
        self
    }

    /// `message-start` with the stream id.
    pub fn message_start(self) -> Self {
        let id = self.id.clone();
        self.event(
            "message-start",
            json!({"id": id, "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "",
                   "tool_calls": [], "citations": []}}}),
        )
    }

    /// `content-start` (an empty text block at `index`).
    pub fn content_start(self, index: u64) -> Self {
        self.event(
            "content-start",
            json!({"index": index, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        )
    }

    /// `content-delta` with a text piece.
    pub fn text(self, index: u64, piece: &str) -> Self {
        self.event(
            "content-delta",
            json!({"index": index, "delta": {"message": {"content": {"text": piece}}}}),
        )
    }

    /// `content-end`.
    pub fn content_end(self, index: u64) -> Self {
        self.event("content-end", json!({"index": index}))
    }

    /// `tool-plan-delta` with a piece of the tool plan.
    pub fn tool_plan(self, piece: &str) -> Self {
        self.event("tool-plan-delta", json!({"delta": {"message": {"tool_plan": piece}}}))
    }

    /// `tool-call-start` for call `index` (arguments start empty).
    pub fn tool_call_start(self, index: u64, id: &str, name: &str) -> Self {
        self.event(
            "tool-call-start",
            json!({"index": index, "delta": {"message": {"tool_calls": {"id": id, "type": "function",
                   "function": {"name": name, "arguments": ""}}}}}),
        )
    }

    /// `tool-call-delta` with a fragment of call `index`'s arguments.
    pub fn tool_call_arguments(self, index: u64, fragment: &str) -> Self {
        self.event(
            "tool-call-delta",
            json!({"index": index, "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}}}),
        )
    }

    /// `tool-call-end`.
    pub fn tool_call_end(self, index: u64) -> Self {
        self.event("tool-call-end", json!({"index": index}))
    }

    /// The terminating `message-end` with a finish reason and, optionally, billed usage.
    pub fn message_end(self, finish_reason: &str, usage: Option<(u64, u64)>) -> Self {
        let mut delta = json!({"finish_reason": finish_reason});
        if let Some((i, o)) = usage {
            delta["usage"] = cohere_usage_json(i, o);
        }
        self.event("message-end", json!({"delta": delta}))
    }

    /// `message-end` reporting a generation error (`finish_reason: ERROR`, `delta.error`).
    pub fn message_end_error(self, error: &str) -> Self {
        self.event("message-end", json!({"delta": {"finish_reason": "ERROR", "error": error}}))
    }

    /// The `(event name, data)` pairs so far.
    pub fn events(&self) -> &[(String, Value)] {
        &self.events
    }

    /// 200 `text/event-stream` with these events, one network chunk per event (as Cohere flushes
    /// them; re-split with [`MockResponse::chunk_size`]).
    pub fn into_response(self) -> MockResponse {
        let frames: Vec<Vec<u8>> = self
            .events
            .into_iter()
            .map(|(name, data)| {
                let mut out = Vec::new();
                encode_event(&mut out, Some(&name), &data.to_string());
                out
            })
            .collect();
        MockResponse::chunked("text/event-stream", frames).header("cache-control", "no-cache")
    }
}

impl MockResponse {
    /// 200 v2 chat reply with `text`, `COMPLETE`, billed usage `(10, words)`.
    pub fn cohere_chat(text: &str) -> Self {
        Self::cohere_chat_with_usage(text, 10, word_count(text).max(1))
    }

    /// 200 v2 chat reply with `text`, `COMPLETE` and these billed units.
    pub fn cohere_chat_with_usage(text: &str, input_tokens: u64, output_tokens: u64) -> Self {
        MockResponse::json(&cohere_chat_json(
            Some(text),
            None,
            &[],
            "COMPLETE",
            cohere_usage_json(input_tokens, output_tokens),
        ))
    }

    /// 200 v2 chat reply that calls tools `(id, name, arguments)` after a `tool_plan`, `TOOL_CALL`.
    pub fn cohere_tool_calls(tool_plan: &str, calls: &[(&str, &str, &str)], usage: (u64, u64)) -> Self {
        MockResponse::json(&cohere_chat_json(
            None,
            Some(tool_plan),
            calls,
            "TOOL_CALL",
            cohere_usage_json(usage.0, usage.1),
        ))
    }

    /// A v2 chat stream of text: `message-start`, `content-start`, one `content-delta` per piece,
    /// `content-end`, `message-end COMPLETE` with billed usage.
    pub fn cohere_stream_text<I, S>(pieces: I, usage: (u64, u64)) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = CohereChatStream::new(COHERE_MOCK_ID).message_start().content_start(0);
        for p in pieces {
            s = s.text(0, p.as_ref());
        }
        s.content_end(0).message_end("COMPLETE", Some(usage)).into_response()
    }

    /// A v2 chat stream answering `text` word by word (see [`stream_pieces`]).
    pub fn cohere_stream_words(text: &str, usage: (u64, u64)) -> Self {
        Self::cohere_stream_text(stream_pieces(text), usage)
    }

    /// 200 v2 embed reply with one deterministic float vector of `dims` per text
    /// ([`embedding_vector`] of the text), billed `input_tokens`.
    pub fn cohere_embed(texts: &[&str], dims: usize, input_tokens: u64) -> Self {
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedding_vector(t, dims)).collect();
        MockResponse::json(&json!({
            "id": COHERE_MOCK_ID,
            "embeddings": {"float": vectors},
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
            "response_type": "embeddings_by_type",
        }))
    }

    /// A Cohere error: `status` with `{"id", "message"}`.
    pub fn cohere_error(status: u16, message: &str) -> Self {
        MockResponse::json(&json!({"id": COHERE_MOCK_ID, "message": message})).status(status)
    }
}

/// A deterministic default responder speaking Cohere v2:
///
/// * `POST /v2/chat`: answers `echo: <last user text>` (`COMPLETE`), cut to `max_tokens` words
///   (`MAX_TOKENS`), as a stream when `"stream": true`; billed input is the word count of every
///   message, billed output that of the reply.
/// * `POST /v2/embed`: one [`embedding_vector`] per text, `output_dimension` long (default
///   [`CohereResponder::embedding_dims`]); billed input is the texts' word count.
/// * a body that is not JSON or lacks `messages`/`texts`: 400; any other path: 404.
#[derive(Debug, Clone, Copy)]
pub struct CohereResponder {
    pub embedding_dims: usize,
}

impl Default for CohereResponder {
    fn default() -> Self {
        CohereResponder { embedding_dims: 8 }
    }
}

/// The text of a v2 message `content`: a string or text blocks.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

impl CohereResponder {
    fn chat(body: &Value) -> MockResponse {
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return MockResponse::cohere_error(400, "invalid request: messages is required");
        };
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| content_text(m.get("content")))
            .unwrap_or_default();
        let input: u64 = messages.iter().map(|m| word_count(&content_text(m.get("content")))).sum();
        let reply = format!("echo: {last_user}");
        let mut pieces = stream_pieces(&reply);
        let finish = match body.get("max_tokens").and_then(Value::as_u64).map(|n| n as usize) {
            Some(n) if n < pieces.len() => {
                pieces.truncate(n);
                "MAX_TOKENS"
            }
            _ => "COMPLETE",
        };
        let text = pieces.concat();
        let output = word_count(&text);
        if body.get("stream").and_then(Value::as_bool) == Some(true) {
            let mut s = CohereChatStream::new(COHERE_MOCK_ID).message_start().content_start(0);
            for p in &pieces {
                s = s.text(0, p);
            }
            s.content_end(0).message_end(finish, Some((input, output))).into_response()
        } else {
            MockResponse::json(&cohere_chat_json(
                Some(&text),
                None,
                &[],
                finish,
                cohere_usage_json(input, output),
            ))
        }
    }

    fn embed(&self, body: &Value) -> MockResponse {
        let Some(texts) = body.get("texts").and_then(Value::as_array) else {
            return MockResponse::cohere_error(400, "invalid request: texts is required");
        };
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        let dims =
            body.get("output_dimension").and_then(Value::as_u64).map_or(self.embedding_dims, |d| d as usize);
        let tokens = texts.iter().map(|t| word_count(t)).sum();
        MockResponse::cohere_embed(&texts, dims, tokens)
    }
}

impl Responder for CohereResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let path = request.path.trim_end_matches('/');
        let post = request.method == http::Method::POST;
        if !post || !(path.ends_with("/v2/chat") || path.ends_with("/v2/embed")) {
            return Some(MockResponse::cohere_error(
                404,
                &format!("{} {} not found", request.method, request.path),
            ));
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => {
                return Some(MockResponse::cohere_error(400, &format!("invalid request: invalid json: {e}")));
            }
        };
        Some(if path.ends_with("/v2/chat") { Self::chat(&body) } else { self.embed(&body) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::sse::SseDecoder;

    #[test]
    fn chat_and_tool_replies() {
        let v: Value =
            serde_json::from_slice(MockResponse::cohere_chat_with_usage("hi", 5, 1).body_bytes()).unwrap();
        assert_eq!(v["message"]["content"], json!([{"type": "text", "text": "hi"}]));
        assert_eq!(v["finish_reason"], "COMPLETE");
        assert_eq!(v["usage"]["billed_units"], json!({"input_tokens": 5, "output_tokens": 1}));
        let t: Value = serde_json::from_slice(
            MockResponse::cohere_tool_calls("plan", &[("c1", "f", r#"{"a":1}"#)], (1, 2)).body_bytes(),
        )
        .unwrap();
        assert_eq!(t["message"]["tool_calls"][0]["function"]["arguments"], r#"{"a":1}"#);
        assert_eq!(t["message"]["tool_plan"], "plan");
        assert!(t["message"].get("content").is_none());
        assert_eq!(t["finish_reason"], "TOOL_CALL");
    }

    #[test]
    fn stream_events_are_named_and_typed() {
        let r = MockResponse::cohere_stream_text(["a", " b"], (3, 2));
        let mut events = Vec::new();
        SseDecoder::new().feed(r.body_bytes(), &mut events).unwrap();
        let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
        assert_eq!(
            names,
            [
                "message-start",
                "content-start",
                "content-delta",
                "content-delta",
                "content-end",
                "message-end"
            ]
        );
        for e in &events {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["type"].as_str(), e.event.as_deref());
        }
        let first: Value = serde_json::from_str(&events[0].data).unwrap();
        assert_eq!(first["id"], COHERE_MOCK_ID);
        assert!(events[0].data.starts_with(r#"{"type":"message-start""#));
        let end: Value = serde_json::from_str(&events[5].data).unwrap();
        assert_eq!(end["delta"]["usage"]["billed_units"]["output_tokens"], 2);
        assert_eq!(r.plan_chunks().len(), 6, "one network chunk per event");
        assert_eq!(r.header_value("content-type"), Some("text/event-stream"));
    }

    #[test]
    fn embed_and_errors() {
        let v: Value =
            serde_json::from_slice(MockResponse::cohere_embed(&["a", "b"], 4, 2).body_bytes()).unwrap();
        assert_eq!(v["embeddings"]["float"].as_array().unwrap().len(), 2);
        assert_eq!(v["embeddings"]["float"][0].as_array().unwrap().len(), 4);
        assert_eq!(v["meta"]["billed_units"]["input_tokens"], 2);
        let e = MockResponse::cohere_error(429, "You are using a Trial key");
        assert_eq!(e.status_code(), 429);
        let v: Value = serde_json::from_slice(e.body_bytes()).unwrap();
        assert_eq!(v["message"], "You are using a Trial key");
    }

    fn post(path: &str, body: &str) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            method: http::Method::POST,
            path: path.into(),
            query: None,
            version: http::Version::HTTP_11,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn responder_chats_streams_and_embeds() {
        let r = CohereResponder::default()
            .respond(&post("/v2/chat", r#"{"model":"m","messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"a b"}]}]}"#))
            .unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["message"]["content"][0]["text"], "echo: a b");
        assert_eq!(v["usage"]["billed_units"], json!({"input_tokens": 3, "output_tokens": 3}));

        let r = CohereResponder::default()
            .respond(&post(
                "/v2/chat",
                r#"{"stream":true,"max_tokens":2,"messages":[{"role":"user","content":"a b c"}]}"#,
            ))
            .unwrap();
        let mut events = Vec::new();
        SseDecoder::new().feed(r.body_bytes(), &mut events).unwrap();
        let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(end["delta"]["finish_reason"], "MAX_TOKENS");

        let r = CohereResponder::default()
            .respond(&post("/v2/embed", r#"{"texts":["a","b c"],"output_dimension":3}"#))
            .unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["embeddings"]["float"][1].as_array().unwrap().len(), 3);
        assert_eq!(v["meta"]["billed_units"]["input_tokens"], 3);

        assert_eq!(CohereResponder::default().respond(&post("/v2/chat", "nope")).unwrap().status_code(), 400);
        assert_eq!(CohereResponder::default().respond(&post("/v2/embed", "{}")).unwrap().status_code(), 400);
        assert_eq!(CohereResponder::default().respond(&post("/v1/x", "{}")).unwrap().status_code(), 404);
    }
}
