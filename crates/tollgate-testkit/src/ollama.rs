//! Ollama's native wire format on top of the generic [`MockResponse`]: `/api/chat` JSON, its
//! NDJSON streams, `/api/embed` JSON and `{"error": ...}` bodies.
//!
//! Shapes follow Ollama's API documentation:
//!
//! * `POST /api/chat` with `"stream": false` answers one object: `{"model", "created_at"
//!   (RFC 3339), "message": {"role": "assistant", "content", "thinking"?, "tool_calls"?: [{"function":
//!   {"name", "arguments": {…object…}}}]}, "done": true, "done_reason": "stop" | "length",
//!   "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
//!   "eval_count", "eval_duration"}` (durations in nanoseconds).
//! * Streaming (Ollama's default) answers `application/x-ndjson`: one such object per line with
//!   `"done": false` and a message fragment, then a last line with `"done": true`, an empty
//!   message, `done_reason` and the counts. A failure mid-stream is a line `{"error": "..."}`.
//! * `POST /api/embed` answers `{"model", "embeddings": [[...]], "total_duration",
//!   "load_duration", "prompt_eval_count"}`.
//! * Errors: the HTTP status (404 for a model that is not pulled) and `{"error": "..."}`.

use serde_json::{Value, json};

use crate::openai::{embedding_vector, stream_pieces, word_count};
use crate::record::RecordedRequest;
use crate::response::MockResponse;
use crate::server::Responder;

/// The `created_at` of every mock object: 2023-11-14T22:13:20Z, i.e. `MOCK_CREATED`.
pub const OLLAMA_CREATED_AT: &str = "2023-11-14T22:13:20Z";
/// `application/x-ndjson`, the content type of Ollama's streams.
pub const NDJSON_CONTENT_TYPE: &str = "application/x-ndjson";

/// The timing and count fields of a final (`done: true`) object.
fn done_fields(obj: &mut Value, done_reason: &str, prompt_eval_count: u64, eval_count: u64) {
    obj["done"] = json!(true);
    obj["done_reason"] = json!(done_reason);
    obj["total_duration"] = json!(4_883_583_458_u64);
    obj["load_duration"] = json!(1_334_875_u64);
    obj["prompt_eval_count"] = json!(prompt_eval_count);
    obj["prompt_eval_duration"] = json!(342_546_000_u64);
    obj["eval_count"] = json!(eval_count);
    obj["eval_duration"] = json!(4_535_599_000_u64);
}

/// An assistant message; `tool_calls` are `(name, arguments object)`.
pub fn ollama_message_json(content: &str, thinking: Option<&str>, tool_calls: &[(&str, Value)]) -> Value {
    let mut m = json!({"role": "assistant", "content": content});
    if let Some(t) = thinking {
        m["thinking"] = json!(t);
    }
    if !tool_calls.is_empty() {
        m["tool_calls"] = tool_calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect();
    }
    m
}

/// A complete non-streamed `/api/chat` reply.
pub fn ollama_chat_json(
    model: &str,
    message: Value,
    done_reason: &str,
    prompt_eval_count: u64,
    eval_count: u64,
) -> Value {
    let mut v = json!({"model": model, "created_at": OLLAMA_CREATED_AT, "message": message});
    done_fields(&mut v, done_reason, prompt_eval_count, eval_count);
    v
}

/// Builds an `/api/chat` NDJSON stream line by line.
#[derive(Debug, Clone)]
pub struct OllamaChatStream {
    model: String,
    lines: Vec<Value>,
}

impl OllamaChatStream {
    pub fn new(model: impl Into<String>) -> Self {
        OllamaChatStream { model: model.into(), lines: Vec::new() }
    }

    /// Adds a `done: false` line carrying this message fragment.
    pub fn fragment(mut self, message: Value) -> Self {
        self.lines.push(json!({"model": self.model, "created_at": OLLAMA_CREATED_AT, "message": message,
                               "done": false}));
        self
    }

    /// A content piece.
    pub fn content(self, piece: &str) -> Self {
        self.fragment(ollama_message_json(piece, None, &[]))
    }

    /// A thinking piece (empty content).
    pub fn thinking(self, piece: &str) -> Self {
        self.fragment(ollama_message_json("", Some(piece), &[]))
    }

    /// Whole tool calls `(name, arguments object)` in one line: Ollama never splits a call.
    pub fn tool_calls(self, calls: &[(&str, Value)]) -> Self {
        self.fragment(ollama_message_json("", None, calls))
    }

    /// The final `done: true` line with the counts.
    pub fn done(mut self, done_reason: &str, prompt_eval_count: u64, eval_count: u64) -> Self {
        let mut v = json!({"model": self.model, "created_at": OLLAMA_CREATED_AT,
                           "message": {"role": "assistant", "content": ""}});
        done_fields(&mut v, done_reason, prompt_eval_count, eval_count);
        self.lines.push(v);
        self
    }

    /// An `{"error": ...}` line, as Ollama writes a failure mid-stream.
    pub fn error(mut self, message: &str) -> Self {
        self.lines.push(json!({"error": message}));
        self
    }

    /// The lines so far, as JSON values.
    pub fn lines(&self) -> &[Value] {
        &self.lines
    }

    /// 200 `application/x-ndjson`, one network chunk per line (each ending in `\n`).
    pub fn into_response(self) -> MockResponse {
        let lines: Vec<Vec<u8>> = self
            .lines
            .iter()
            .map(|l| {
                let mut b = l.to_string().into_bytes();
                b.push(b'\n');
                b
            })
            .collect();
        MockResponse::chunked(NDJSON_CONTENT_TYPE, lines)
    }
}

impl MockResponse {
    /// 200 `/api/chat` reply with `text`, `done_reason: stop`, 10 prompt and `words` eval tokens.
    pub fn ollama_chat(model: &str, text: &str) -> Self {
        Self::ollama_chat_with_usage(model, text, 10, word_count(text).max(1))
    }

    /// 200 `/api/chat` reply with `text` and these counts.
    pub fn ollama_chat_with_usage(model: &str, text: &str, prompt_eval_count: u64, eval_count: u64) -> Self {
        MockResponse::json(&ollama_chat_json(
            model,
            ollama_message_json(text, None, &[]),
            "stop",
            prompt_eval_count,
            eval_count,
        ))
    }

    /// 200 `/api/chat` reply calling these tools `(name, arguments object)` (Ollama says
    /// `done_reason: stop` after tool calls too).
    pub fn ollama_tool_calls(model: &str, calls: &[(&str, Value)], usage: (u64, u64)) -> Self {
        MockResponse::json(&ollama_chat_json(
            model,
            ollama_message_json("", None, calls),
            "stop",
            usage.0,
            usage.1,
        ))
    }

    /// An NDJSON chat stream: one content line per piece, then `done: true` with the counts.
    pub fn ollama_stream_text<I, S>(model: &str, pieces: I, usage: (u64, u64)) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = OllamaChatStream::new(model);
        for p in pieces {
            s = s.content(p.as_ref());
        }
        s.done("stop", usage.0, usage.1).into_response()
    }

    /// An NDJSON chat stream answering `text` word by word (see [`stream_pieces`]).
    pub fn ollama_stream_words(model: &str, text: &str, usage: (u64, u64)) -> Self {
        Self::ollama_stream_text(model, stream_pieces(text), usage)
    }

    /// 200 `/api/embed` reply: one deterministic vector of `dims` per text ([`embedding_vector`]).
    pub fn ollama_embed(model: &str, texts: &[&str], dims: usize, prompt_eval_count: u64) -> Self {
        let vectors: Vec<Vec<f32>> = texts.iter().map(|t| embedding_vector(t, dims)).collect();
        MockResponse::json(&json!({
            "model": model,
            "embeddings": vectors,
            "total_duration": 14_143_917_u64,
            "load_duration": 1_019_500_u64,
            "prompt_eval_count": prompt_eval_count,
        }))
    }

    /// An Ollama error: `status` with `{"error": message}`.
    pub fn ollama_error(status: u16, message: &str) -> Self {
        MockResponse::json(&json!({"error": message})).status(status)
    }

    /// Ollama's answer for a model that is not pulled: 404
    /// `{"error": "model \"{model}\" not found, try pulling it first"}`.
    pub fn ollama_model_not_found(model: &str) -> Self {
        Self::ollama_error(404, &format!("model \"{model}\" not found, try pulling it first"))
    }
}

/// A deterministic default responder speaking Ollama's native API:
///
/// * `POST /api/chat`: answers `echo: <last user content>` (`done_reason: stop`), cut to
///   `options.num_predict` words (`length`), streamed as NDJSON unless `"stream": false` (Ollama
///   streams by default); `prompt_eval_count` is the word count of every message, `eval_count`
///   that of the reply.
/// * `POST /api/embed`: one [`embedding_vector`] per input, `dimensions` long (default
///   [`OllamaResponder::embedding_dims`]).
/// * a model listed in [`OllamaResponder::missing_models`]: 404 "model not found"; a body that
///   is not JSON or lacks `messages`/`input`: 400; any other path: 404 `page not found`.
#[derive(Debug, Clone)]
pub struct OllamaResponder {
    pub embedding_dims: usize,
    /// Models that answer 404 as if they were not pulled.
    pub missing_models: Vec<String>,
}

impl Default for OllamaResponder {
    fn default() -> Self {
        OllamaResponder { embedding_dims: 8, missing_models: Vec::new() }
    }
}

impl OllamaResponder {
    fn chat(model: &str, body: &Value) -> MockResponse {
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return MockResponse::ollama_error(400, "messages is required");
        };
        let text_of = |m: &Value| m.get("content").and_then(Value::as_str).unwrap_or_default().to_owned();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(text_of)
            .unwrap_or_default();
        let prompt: u64 = messages.iter().map(|m| word_count(&text_of(m))).sum();
        let reply = format!("echo: {last_user}");
        let mut pieces = stream_pieces(&reply);
        let reason = match body.pointer("/options/num_predict").and_then(Value::as_u64).map(|n| n as usize) {
            Some(n) if n < pieces.len() => {
                pieces.truncate(n);
                "length"
            }
            _ => "stop",
        };
        let text = pieces.concat();
        let eval = word_count(&text);
        if body.get("stream").and_then(Value::as_bool).unwrap_or(true) {
            let mut s = OllamaChatStream::new(model);
            for p in &pieces {
                s = s.content(p);
            }
            s.done(reason, prompt, eval).into_response()
        } else {
            MockResponse::json(&ollama_chat_json(
                model,
                ollama_message_json(&text, None, &[]),
                reason,
                prompt,
                eval,
            ))
        }
    }

    fn embed(&self, model: &str, body: &Value) -> MockResponse {
        let inputs: Vec<&str> = match body.get("input") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => return MockResponse::ollama_error(400, "input is required"),
        };
        let dims = body.get("dimensions").and_then(Value::as_u64).map_or(self.embedding_dims, |d| d as usize);
        let tokens = inputs.iter().map(|t| word_count(t)).sum();
        MockResponse::ollama_embed(model, &inputs, dims, tokens)
    }
}

impl Responder for OllamaResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let path = request.path.trim_end_matches('/');
        let post = request.method == http::Method::POST;
        if !post || !(path.ends_with("/api/chat") || path.ends_with("/api/embed")) {
            return Some(MockResponse::ollama_error(404, "404 page not found"));
        }
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => return Some(MockResponse::ollama_error(400, &format!("invalid JSON: {e}"))),
        };
        let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
        if self.missing_models.iter().any(|m| m == model) {
            return Some(MockResponse::ollama_model_not_found(model));
        }
        Some(if path.ends_with("/api/chat") { Self::chat(model, &body) } else { self.embed(model, &body) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(r: &MockResponse) -> Vec<Value> {
        let body = std::str::from_utf8(r.body_bytes()).unwrap();
        assert!(body.ends_with('\n'));
        body.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn chat_reply_shape() {
        let v: Value =
            serde_json::from_slice(MockResponse::ollama_chat("llama3.2", "hi there").body_bytes()).unwrap();
        assert_eq!(v["message"], json!({"role": "assistant", "content": "hi there"}));
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["prompt_eval_count"], 10);
        assert_eq!(v["eval_count"], 2);
        assert_eq!(v["created_at"], OLLAMA_CREATED_AT);
        let t: Value = serde_json::from_slice(
            MockResponse::ollama_tool_calls("m", &[("f", json!({"x": 1}))], (1, 2)).body_bytes(),
        )
        .unwrap();
        assert_eq!(t["message"]["tool_calls"][0]["function"]["arguments"], json!({"x": 1}));
    }

    #[test]
    fn ndjson_stream_ends_with_done() {
        let r = MockResponse::ollama_stream_text("m", ["a", " b"], (4, 2));
        assert_eq!(r.header_value("content-type"), Some(NDJSON_CONTENT_TYPE));
        let lines = lines_of(&r);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["message"]["content"], " b");
        assert!(lines[..2].iter().all(|l| l["done"] == false));
        assert_eq!(lines[2]["done"], true);
        assert_eq!(lines[2]["eval_count"], 2);
        assert_eq!(r.plan_chunks().len(), 3, "one network chunk per line");
        let e = OllamaChatStream::new("m").content("x").error("boom").into_response();
        assert_eq!(lines_of(&e)[1], json!({"error": "boom"}));
    }

    #[test]
    fn embed_and_errors() {
        let v: Value =
            serde_json::from_slice(MockResponse::ollama_embed("e", &["a", "b"], 3, 2).body_bytes()).unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
        assert_eq!(v["embeddings"][1].as_array().unwrap().len(), 3);
        let e = MockResponse::ollama_model_not_found("nope");
        assert_eq!(e.status_code(), 404);
        let v: Value = serde_json::from_slice(e.body_bytes()).unwrap();
        assert_eq!(v["error"], "model \"nope\" not found, try pulling it first");
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
    fn responder_streams_by_default_and_embeds() {
        let r = OllamaResponder::default()
            .respond(&post("/api/chat", r#"{"model":"m","messages":[{"role":"user","content":"a b"}]}"#))
            .unwrap();
        let lines = lines_of(&r);
        let text: String = lines.iter().filter_map(|l| l["message"]["content"].as_str()).collect();
        assert_eq!(text, "echo: a b");
        assert_eq!(lines.last().unwrap()["prompt_eval_count"], 2);

        let r = OllamaResponder::default()
            .respond(&post(
                "/api/chat",
                r#"{"model":"m","stream":false,"options":{"num_predict":1},"messages":[{"role":"user","content":"a b"}]}"#,
            ))
            .unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["message"]["content"], "echo:");
        assert_eq!(v["done_reason"], "length");

        let r = OllamaResponder::default()
            .respond(&post("/api/embed", r#"{"model":"e","input":"x y"}"#))
            .unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 8);
        assert_eq!(v["prompt_eval_count"], 2);

        let missing = OllamaResponder { missing_models: vec!["gone".into()], ..OllamaResponder::default() };
        assert_eq!(missing.respond(&post("/api/chat", r#"{"model":"gone"}"#)).unwrap().status_code(), 404);
        assert_eq!(missing.respond(&post("/api/chat", "{")).unwrap().status_code(), 400);
        assert_eq!(missing.respond(&post("/api/generate", "{}")).unwrap().status_code(), 404);
    }
}
