//! OpenAI's wire format on top of the generic [`MockResponse`]: convenience constructors, a
//! chat-stream builder, and the deterministic OpenAI-compatible default responder.
//!
//! Shapes follow OpenAI's API reference for `POST /v1/chat/completions` (the `chat.completion`
//! object and `chat.completion.chunk` stream events: a stable `id` and `created` on every chunk,
//! the role on the first delta, `finish_reason` on the last choice chunk, and with
//! `stream_options.include_usage` a `"usage": null` key on every chunk plus a final chunk with
//! `"choices": []` and the usage, then `data: [DONE]`), `POST /v1/completions`
//! (`text_completion`), `POST /v1/embeddings` (a `list` of `embedding` objects, floats or
//! base64 little-endian f32) and `GET /v1/models`, and OpenAI's error envelope
//! `{"error": {"message", "type", "param", "code"}}`.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tollgate_core::ChatRequest;
use tollgate_core::chat::Role;
use tollgate_core::completion::TextCompletionRequest;
use tollgate_core::embedding::{EmbeddingInput, EmbeddingRequest};

use crate::record::RecordedRequest;
use crate::response::{MockResponse, sse_data};
use crate::server::Responder;

/// The model name the convenience constructors report.
pub const MOCK_MODEL: &str = "gpt-4o-mini";
/// The chat completion id the convenience constructors use (the responder adds `-{seq}`).
pub const MOCK_CHAT_ID: &str = "chatcmpl-mock";
/// The fixed `created` timestamp of every mock object (deterministic output).
pub const MOCK_CREATED: u64 = 1_700_000_000;
/// The `system_fingerprint` of every mock chat object.
pub const MOCK_FINGERPRINT: &str = "fp_mock";
/// Prompt tokens reported by the `openai_*` constructors that take no explicit usage.
pub const MOCK_PROMPT_TOKENS: u64 = 10;

/// Whitespace-separated words: the mock's deterministic "token" count.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Splits text into stream pieces, one per word, each piece starting with the whitespace that
/// precedes its word (`"echo: a b"` → `["echo:", " a", " b"]`). The pieces concatenate to `text`.
pub fn stream_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev_ws = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if ws && !prev_ws && i > start {
            pieces.push(&text[start..i]);
            start = i;
        }
        prev_ws = ws;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// OpenAI's chat `usage` object with its detail objects (all details zero).
pub fn usage_json(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// A `chat.completion` object with one choice carrying `message`.
pub fn chat_completion_json(
    id: &str,
    model: &str,
    message: Value,
    finish_reason: &str,
    usage: Value,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": MOCK_CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": MOCK_FINGERPRINT
    })
}

/// An assistant message with text content.
pub fn assistant_text_json(text: &str) -> Value {
    json!({"role": "assistant", "content": text, "refusal": null, "annotations": []})
}

/// An assistant message that only calls tools (`content: null`); calls are `(id, name, arguments)`.
pub fn assistant_tool_calls_json<I, A, B, C>(calls: I) -> Value
where
    I: IntoIterator<Item = (A, B, C)>,
    A: AsRef<str>,
    B: AsRef<str>,
    C: AsRef<str>,
{
    let calls: Vec<Value> = calls
        .into_iter()
        .map(|(id, name, args)| {
            json!({"id": id.as_ref(), "type": "function",
                   "function": {"name": name.as_ref(), "arguments": args.as_ref()}})
        })
        .collect();
    json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null, "annotations": []})
}

/// OpenAI's error envelope.
pub fn error_json(error_type: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": param, "code": code}})
}

/// Deterministic embedding of `seed_text`: `dims` values in [-1, 1) derived from an FNV-1a hash,
/// so equal inputs get equal vectors and different inputs (almost surely) different ones.
pub fn embedding_vector(seed_text: &str, dims: usize) -> Vec<f32> {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed_text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    (0..dims)
        .map(|j| {
            let mut x = (h ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(PRIME);
            x ^= x >> 29;
            // 16 bits of mantissa keep the JSON short and the value exact in f32.
            f32::from((x >> 48) as u16) / 32768.0 - 1.0
        })
        .collect()
}

fn embedding_item(index: usize, vector: &[f32], base64: bool) -> Value {
    let embedding = if base64 {
        let mut raw = Vec::with_capacity(vector.len() * 4);
        for v in vector {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        Value::String(base64::engine::general_purpose::STANDARD.encode(raw))
    } else {
        json!(vector)
    };
    json!({"object": "embedding", "index": index, "embedding": embedding})
}

fn embeddings_json(model: &str, data: Vec<Value>, prompt_tokens: u64) -> Value {
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    })
}

fn text_completion_chunk(id: &str, model: &str, choices: Value) -> Value {
    json!({"id": id, "object": "text_completion", "created": MOCK_CREATED, "model": model, "choices": choices})
}

/// Builds an OpenAI chat stream (`chat.completion.chunk` events) step by step.
///
/// ```
/// use tollgate_testkit::OpenAiChatStream;
/// let response = OpenAiChatStream::new("chatcmpl-1", "gpt-4o-mini")
///     .role()
///     .content("Hel")
///     .content("lo")
///     .finish("stop")
///     .usage(5, 2)
///     .into_response();
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiChatStream {
    id: String,
    model: String,
    /// `(delta, finish_reason)` of each choice chunk, in order.
    steps: Vec<(Value, Option<String>)>,
    usage: Option<Value>,
}

impl OpenAiChatStream {
    /// An empty stream whose chunks carry this `id` and `model` (and [`MOCK_CREATED`]).
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiChatStream { id: id.into(), model: model.into(), steps: Vec::new(), usage: None }
    }

    /// A chunk with this raw `delta` object.
    pub fn delta(mut self, delta: Value) -> Self {
        self.steps.push((delta, None));
        self
    }

    /// The opening chunk of a text answer: `{"role":"assistant","content":"","refusal":null}`.
    pub fn role(self) -> Self {
        self.delta(json!({"role": "assistant", "content": "", "refusal": null}))
    }

    /// A content piece.
    pub fn content(self, piece: &str) -> Self {
        self.delta(json!({"content": piece}))
    }

    /// The first fragment of tool call `index`: id, type and name, empty arguments. As the first
    /// chunk of the stream it also carries `role: assistant` and `content: null`, as OpenAI's does.
    pub fn tool_call_start(self, index: u32, id: &str, name: &str) -> Self {
        let call = json!([{"index": index, "id": id, "type": "function",
                           "function": {"name": name, "arguments": ""}}]);
        let delta = if self.steps.is_empty() {
            json!({"role": "assistant", "content": null, "tool_calls": call, "refusal": null})
        } else {
            json!({"tool_calls": call})
        };
        self.delta(delta)
    }

    /// A fragment of tool call `index`'s arguments.
    pub fn tool_call_arguments(self, index: u32, fragment: &str) -> Self {
        self.delta(json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    }

    /// The closing choice chunk: an empty delta with this `finish_reason`.
    pub fn finish(mut self, reason: &str) -> Self {
        self.steps.push((json!({}), Some(reason.to_owned())));
        self
    }

    /// Usage as with `stream_options.include_usage`: every choice chunk gets `"usage": null`
    /// and a final chunk with `"choices": []` carries the usage.
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Some(usage_json(prompt_tokens, completion_tokens));
        self
    }

    /// The chunk objects in order (without the `[DONE]` sentinel).
    pub fn chunks(&self) -> Vec<Value> {
        let base = |choices: Value| {
            json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": MOCK_CREATED,
                "model": self.model,
                "service_tier": "default",
                "system_fingerprint": MOCK_FINGERPRINT,
                "choices": choices
            })
        };
        let mut out: Vec<Value> = self
            .steps
            .iter()
            .map(|(delta, finish)| {
                let mut chunk =
                    base(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]));
                if self.usage.is_some() {
                    chunk["usage"] = Value::Null;
                }
                chunk
            })
            .collect();
        if let Some(usage) = &self.usage {
            let mut last = base(json!([]));
            last["usage"] = usage.clone();
            out.push(last);
        }
        out
    }

    /// The SSE response: one `data:` event per chunk, then `data: [DONE]`.
    pub fn into_response(self) -> MockResponse {
        let events = self.chunks().into_iter().map(|c| sse_data(c.to_string())).chain([sse_data("[DONE]")]);
        MockResponse::sse(events)
    }
}

impl MockResponse {
    /// 200 `chat.completion` answering `text`, usage [`MOCK_PROMPT_TOKENS`] prompt tokens and
    /// [`word_count`]`(text)` completion tokens.
    pub fn openai_chat(text: &str) -> Self {
        Self::openai_chat_with_usage(text, MOCK_PROMPT_TOKENS, word_count(text))
    }

    /// 200 `chat.completion` answering `text` with this usage.
    pub fn openai_chat_with_usage(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self::json(&chat_completion_json(
            MOCK_CHAT_ID,
            MOCK_MODEL,
            assistant_text_json(text),
            "stop",
            usage_json(prompt_tokens, completion_tokens),
        ))
    }

    /// 200 `chat.completion` whose message calls tools, given as `(id, name, arguments JSON)`;
    /// `finish_reason: tool_calls`, usage [`MOCK_PROMPT_TOKENS`] + 10.
    pub fn openai_tool_calls<I, A, B, C>(calls: I) -> Self
    where
        I: IntoIterator<Item = (A, B, C)>,
        A: AsRef<str>,
        B: AsRef<str>,
        C: AsRef<str>,
    {
        Self::json(&chat_completion_json(
            MOCK_CHAT_ID,
            MOCK_MODEL,
            assistant_tool_calls_json(calls),
            "tool_calls",
            usage_json(MOCK_PROMPT_TOKENS, 10),
        ))
    }

    /// 200 SSE chat stream: a role chunk, one chunk per piece, a `finish_reason: stop` chunk,
    /// with `usage: Some((prompt, completion))` the include_usage chunks, then `[DONE]`.
    pub fn openai_stream_text<I, S>(pieces: I, usage: Option<(u64, u64)>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut stream = OpenAiChatStream::new(MOCK_CHAT_ID, MOCK_MODEL).role();
        for p in pieces {
            stream = stream.content(p.as_ref());
        }
        stream = stream.finish("stop");
        if let Some((p, c)) = usage {
            stream = stream.usage(p, c);
        }
        stream.into_response()
    }

    /// 200 SSE chat stream of tool calls `(id, name, arguments JSON)`: per call a start chunk
    /// (id, type, name) and the arguments in two fragments (split mid-string, on a character
    /// boundary), then `finish_reason: tool_calls`, optional usage, `[DONE]`.
    pub fn openai_stream_tool_calls<I, A, B, C>(calls: I, usage: Option<(u64, u64)>) -> Self
    where
        I: IntoIterator<Item = (A, B, C)>,
        A: AsRef<str>,
        B: AsRef<str>,
        C: AsRef<str>,
    {
        let mut stream = OpenAiChatStream::new(MOCK_CHAT_ID, MOCK_MODEL);
        for (index, (id, name, args)) in calls.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let args = args.as_ref();
            let mut mid = args.len() / 2;
            while !args.is_char_boundary(mid) {
                mid += 1;
            }
            stream = stream.tool_call_start(index, id.as_ref(), name.as_ref());
            for fragment in [&args[..mid], &args[mid..]] {
                if !fragment.is_empty() {
                    stream = stream.tool_call_arguments(index, fragment);
                }
            }
        }
        stream = stream.finish("tool_calls");
        if let Some((p, c)) = usage {
            stream = stream.usage(p, c);
        }
        stream.into_response()
    }

    /// 200 embeddings list of `n_vectors` float vectors of `dims` values (deterministic, see
    /// [`embedding_vector`]), model `text-embedding-3-small`, usage `n_vectors` prompt tokens.
    pub fn openai_embeddings(n_vectors: usize, dims: usize) -> Self {
        let data = (0..n_vectors)
            .map(|i| embedding_item(i, &embedding_vector(&i.to_string(), dims), false))
            .collect();
        Self::json(&embeddings_json("text-embedding-3-small", data, n_vectors as u64))
    }

    /// 200 `text_completion` answering `text` (model `gpt-3.5-turbo-instruct`).
    pub fn openai_text_completion(text: &str) -> Self {
        let mut body = text_completion_chunk(
            "cmpl-mock",
            "gpt-3.5-turbo-instruct",
            json!([{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}]),
        );
        body["usage"] = text_usage_json(MOCK_PROMPT_TOKENS, word_count(text));
        Self::json(&body)
    }

    /// An error in OpenAI's envelope, e.g. `openai_error(429, "requests", Some("rate_limit_exceeded"), "…")`
    /// or `openai_error(400, "invalid_request_error", Some("context_length_exceeded"), "…")`.
    pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Self {
        Self::json(&error_json(error_type, code, None, message)).status(status)
    }
}

fn text_usage_json(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
           "total_tokens": prompt_tokens + completion_tokens})
}

/// The deterministic OpenAI-compatible default responder (see [`crate::MockServer::start_openai`]).
///
/// Routes on the path's suffix, so `/v1/chat/completions`, `/chat/completions` and Azure's
/// `/openai/deployments/{d}/chat/completions?api-version=…` all reach the same handler:
///
/// * `POST …/chat/completions`: the reply is `"echo: "` + the text of the last user message.
///   `prompt_tokens` is the [`word_count`] of all messages' text, `completion_tokens` that of the
///   reply. `max_completion_tokens`/`max_tokens` cut the reply to that many words with
///   `finish_reason: length`. With `stream: true` it streams one piece per word
///   ([`stream_pieces`]), honouring `stream_options.include_usage`. The id is `chatcmpl-mock-{seq}`.
/// * `POST …/completions`: the same for each prompt string (`text_completion` objects, id
///   `cmpl-mock-{seq}`), streamed when asked.
/// * `POST …/embeddings`: one vector per input, `dimensions` values long (default
///   [`OpenAiResponder::embedding_dims`]), floats or base64 as `encoding_format` asks;
///   `prompt_tokens` is the word count of the inputs (the token count for token inputs).
/// * `GET …/models`: [`OpenAiResponder::models`].
/// * anything else: 404 `invalid_request_error` "Invalid URL", like OpenAI.
///
/// A body that is not valid JSON or not a valid request of its kind gets a 400
/// `invalid_request_error`. An Azure request without `model` uses the deployment name.
/// Every answer carries `x-request-id: req_mock_{seq}`.
#[derive(Debug, Clone)]
pub struct OpenAiResponder {
    /// The ids `GET /models` lists.
    pub models: Vec<String>,
    /// Embedding length when the request sets no `dimensions`.
    pub embedding_dims: usize,
}

impl Default for OpenAiResponder {
    fn default() -> Self {
        OpenAiResponder {
            models: vec![
                "gpt-4o-mini".into(),
                "text-embedding-3-small".into(),
                "gpt-3.5-turbo-instruct".into(),
            ],
            embedding_dims: 8,
        }
    }
}

impl Responder for OpenAiResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let path = request.path.trim_end_matches('/');
        let post = request.method == http::Method::POST;
        let response = if path.ends_with("/chat/completions") && post {
            self.chat(request)
        } else if path.ends_with("/completions") && post {
            self.text_completion(request)
        } else if path.ends_with("/embeddings") && post {
            self.embeddings(request)
        } else if path.ends_with("/models") && request.method == http::Method::GET {
            self.list_models()
        } else {
            MockResponse::json(&error_json(
                "invalid_request_error",
                None,
                None,
                &format!("Invalid URL ({} {})", request.method, request.path),
            ))
            .status(404)
        };
        Some(response.header("x-request-id", &format!("req_mock_{}", request.seq)))
    }
}

fn bad_request(message: &str, param: Option<&str>) -> MockResponse {
    MockResponse::json(&error_json("invalid_request_error", None, param, message)).status(400)
}

fn azure_deployment(path: &str) -> Option<&str> {
    let rest = &path[path.find("/deployments/")? + "/deployments/".len()..];
    rest.split('/').next().filter(|d| !d.is_empty())
}

fn parse_body<T: DeserializeOwned>(request: &RecordedRequest) -> Result<T, Box<MockResponse>> {
    let mut value: Value = serde_json::from_slice(&request.body).map_err(|e| {
        Box::new(bad_request(&format!("We could not parse the JSON body of your request. ({e})"), None))
    })?;
    if let Value::Object(map) = &mut value
        && !map.contains_key("model")
        && let Some(deployment) = azure_deployment(&request.path)
    {
        map.insert("model".into(), Value::String(deployment.to_owned()));
    }
    serde_json::from_value(value)
        .map_err(|e| Box::new(bad_request(&format!("Invalid request body: {e}"), None)))
}

/// Cuts `reply` to `limit` words; returns the text and the finish reason.
fn apply_limit(reply: &str, limit: Option<u32>) -> (String, &'static str) {
    let pieces = stream_pieces(reply);
    match limit {
        Some(n) if (n as usize) < pieces.len() => (pieces[..n as usize].concat(), "length"),
        _ => (reply.to_owned(), "stop"),
    }
}

impl OpenAiResponder {
    fn chat(&self, request: &RecordedRequest) -> MockResponse {
        let chat: ChatRequest = match parse_body(request) {
            Ok(c) => c,
            Err(r) => return *r,
        };
        if chat.messages.is_empty() {
            return bad_request("[] is too short - 'messages'", Some("messages"));
        }
        let last_user = chat
            .messages
            .iter()
            .rev()
            .find(|m| matches!(m.role, Role::User))
            .map(|m| m.text())
            .unwrap_or_default();
        let (reply, finish) = apply_limit(&format!("echo: {last_user}"), chat.output_token_limit());
        let prompt_tokens: u64 = chat.messages.iter().map(|m| word_count(&m.text())).sum();
        let completion_tokens = word_count(&reply);
        let id = format!("{MOCK_CHAT_ID}-{}", request.seq);
        if chat.is_stream() {
            let mut stream = OpenAiChatStream::new(id, chat.model.as_str()).role();
            for piece in stream_pieces(&reply) {
                stream = stream.content(piece);
            }
            stream = stream.finish(finish);
            if chat.wants_stream_usage() {
                stream = stream.usage(prompt_tokens, completion_tokens);
            }
            stream.into_response()
        } else {
            MockResponse::json(&chat_completion_json(
                &id,
                &chat.model,
                assistant_text_json(&reply),
                finish,
                usage_json(prompt_tokens, completion_tokens),
            ))
        }
    }

    fn text_completion(&self, request: &RecordedRequest) -> MockResponse {
        let req: TextCompletionRequest = match parse_body(request) {
            Ok(r) => r,
            Err(r) => return *r,
        };
        // Strings are echoed; token prompts are counted but have no text to echo.
        let (prompts, prompt_tokens): (Vec<String>, u64) = match &req.prompt {
            Value::String(s) => (vec![s.clone()], word_count(s)),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                let texts: Vec<String> = items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                let tokens = texts.iter().map(|t| word_count(t)).sum();
                (texts, tokens)
            }
            Value::Array(items) if !items.is_empty() => (vec![String::new()], count_numbers(&req.prompt)),
            _ => {
                return bad_request("Invalid prompt: expected a string or a non-empty array", Some("prompt"));
            }
        };
        let answers: Vec<(String, &str)> =
            prompts.iter().map(|p| apply_limit(&format!("echo: {p}"), req.max_tokens)).collect();
        let completion_tokens: u64 = answers.iter().map(|(t, _)| word_count(t)).sum();
        let id = format!("cmpl-mock-{}", request.seq);
        if req.stream.unwrap_or(false) {
            let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
            let mut events = Vec::new();
            let mut push = |choices: Value, usage: Option<Value>| {
                let mut chunk = text_completion_chunk(&id, &req.model, choices);
                if include_usage {
                    chunk["usage"] = usage.unwrap_or(Value::Null);
                }
                events.push(sse_data(chunk.to_string()));
            };
            for (index, (text, finish)) in answers.iter().enumerate() {
                for piece in stream_pieces(text) {
                    push(
                        json!([{"text": piece, "index": index, "logprobs": null, "finish_reason": null}]),
                        None,
                    );
                }
                push(json!([{"text": "", "index": index, "logprobs": null, "finish_reason": finish}]), None);
            }
            if include_usage {
                push(json!([]), Some(text_usage_json(prompt_tokens, completion_tokens)));
            }
            events.push(sse_data("[DONE]"));
            MockResponse::sse(events)
        } else {
            let choices: Vec<Value> = answers
                .iter()
                .enumerate()
                .map(|(index, (text, finish))| {
                    json!({"text": text, "index": index, "logprobs": null, "finish_reason": finish})
                })
                .collect();
            let mut body = text_completion_chunk(&id, &req.model, Value::Array(choices));
            body["usage"] = text_usage_json(prompt_tokens, completion_tokens);
            MockResponse::json(&body)
        }
    }

    fn embeddings(&self, request: &RecordedRequest) -> MockResponse {
        let req: EmbeddingRequest = match parse_body(request) {
            Ok(r) => r,
            Err(r) => return *r,
        };
        let (seeds, prompt_tokens): (Vec<String>, u64) = match &req.input {
            EmbeddingInput::Text(t) => (vec![t.clone()], word_count(t)),
            EmbeddingInput::Texts(v) => (v.clone(), v.iter().map(|t| word_count(t)).sum()),
            EmbeddingInput::Tokens(t) => (vec![format!("{t:?}")], t.len() as u64),
            EmbeddingInput::TokenBatches(b) => {
                (b.iter().map(|t| format!("{t:?}")).collect(), b.iter().map(|t| t.len() as u64).sum())
            }
        };
        if seeds.is_empty() {
            return bad_request("'$.input' is invalid: it must not be empty", Some("input"));
        }
        let dims = req.dimensions.map_or(self.embedding_dims, |d| d as usize);
        let base64 = req.encoding_format.as_deref() == Some("base64");
        let data = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| embedding_item(i, &embedding_vector(s, dims), base64))
            .collect();
        MockResponse::json(&embeddings_json(&req.model, data, prompt_tokens))
    }

    fn list_models(&self) -> MockResponse {
        let data: Vec<Value> = self
            .models
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": MOCK_CREATED, "owned_by": "system"}))
            .collect();
        MockResponse::json(&json!({"object": "list", "data": data}))
    }
}

fn count_numbers(v: &Value) -> u64 {
    match v {
        Value::Number(_) => 1,
        Value::Array(items) => items.iter().map(count_numbers).sum(),
        _ => 0,
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
            seq: 3,
            method: Method::POST,
            path: path.into(),
            query: None,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn respond(path: &str, body: &str) -> MockResponse {
        OpenAiResponder::default().respond(&post(path, body)).unwrap()
    }

    fn json_of(r: &MockResponse) -> Value {
        serde_json::from_slice(r.body_bytes()).unwrap()
    }

    fn sse_of(r: &MockResponse) -> Vec<String> {
        let mut out = Vec::new();
        SseDecoder::new().feed(r.body_bytes(), &mut out).unwrap();
        out.into_iter().map(|e| e.data).collect()
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        assert_eq!(stream_pieces("echo: a  b"), vec!["echo:", " a", "  b"]);
        assert_eq!(stream_pieces(" x"), vec![" x"]);
        assert!(stream_pieces("").is_empty());
        for t in ["echo: héllo 🦀 world", "  lead", "trail  ", "a\nb\tc"] {
            assert_eq!(stream_pieces(t).concat(), t);
        }
        assert_eq!(word_count("  a b\nc "), 3);
    }

    #[test]
    fn azure_paths_route_by_suffix_and_default_the_model() {
        let r = respond(
            "/openai/deployments/my-gpt/chat/completions",
            r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(r.status_code(), 200);
        let v = json_of(&r);
        assert_eq!(v["model"], "my-gpt");
        assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
        assert_eq!(r.header_value("x-request-id"), Some("req_mock_3"));
        assert_eq!(azure_deployment("/openai/deployments//x"), None);
    }

    #[test]
    fn max_tokens_cuts_the_reply_with_length() {
        let v = json_of(&respond(
            "/chat/completions",
            r#"{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"one two three"}]}"#,
        ));
        assert_eq!(v["choices"][0]["message"]["content"], "echo: one");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 2);
        assert_eq!(v["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn bad_bodies_are_400_openai_errors() {
        for (path, body) in [
            ("/v1/chat/completions", "{not json"),
            ("/v1/chat/completions", r#"{"model":"m","messages":[]}"#),
            ("/v1/chat/completions", r#"{"model":"m","messages":"x"}"#),
            ("/v1/embeddings", r#"{"model":"m"}"#),
            ("/v1/embeddings", r#"{"model":"m","input":[]}"#),
            ("/v1/completions", r#"{"model":"m","prompt":{}}"#),
            ("/v1/completions", "\u{0}\u{ff}"),
        ] {
            let r = respond(path, body);
            assert_eq!(r.status_code(), 400, "{path} {body}");
            let v = json_of(&r);
            assert_eq!(v["error"]["type"], "invalid_request_error");
            assert!(v["error"]["message"].as_str().unwrap().len() > 5);
        }
        let r = respond("/v1/unknown", "{}");
        assert_eq!(r.status_code(), 404);
        assert_eq!(json_of(&r)["error"]["message"], "Invalid URL (POST /v1/unknown)");
    }

    #[test]
    fn embeddings_floats_base64_and_dimensions() {
        let v = json_of(&respond("/v1/embeddings", r#"{"model":"e","input":["a b","c"],"dimensions":3}"#));
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 3);
        assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
        let floats: Vec<f32> = v["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(floats, embedding_vector("a b", 3));
        assert_ne!(embedding_vector("a b", 3), embedding_vector("c", 3));

        let b = json_of(&respond("/embeddings", r#"{"model":"e","input":"a b","encoding_format":"base64"}"#));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = raw.chunks(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        assert_eq!(decoded, embedding_vector("a b", 8));

        let t = json_of(&respond("/v1/embeddings", r#"{"model":"e","input":[[1,2],[3]]}"#));
        assert_eq!(t["data"].as_array().unwrap().len(), 2);
        assert_eq!(t["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn text_completions_answer_and_stream() {
        let v = json_of(&respond("/v1/completions", r#"{"model":"i","prompt":["a","b c"]}"#));
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][1]["text"], "echo: b c");
        assert_eq!(v["choices"][1]["index"], 1);
        assert_eq!(v["usage"], json!({"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}));

        let r = respond(
            "/v1/completions",
            r#"{"model":"i","prompt":"x y","stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let data = sse_of(&r);
        assert_eq!(data.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> =
            data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        let text: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
        assert_eq!(text, "echo: x y");
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null() && c.get("usage").is_some()));
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["total_tokens"], 5);
        assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn stream_without_usage_has_no_usage_keys() {
        let r = MockResponse::openai_stream_text(["a", "b"], None);
        let data = sse_of(&r);
        assert_eq!(data.len(), 5);
        for d in &data[..4] {
            let v: Value = serde_json::from_str(d).unwrap();
            assert!(v.get("usage").is_none());
            assert_eq!(v["id"], MOCK_CHAT_ID);
        }
    }

    #[test]
    fn tool_call_stream_fragments_reassemble() {
        let r = MockResponse::openai_stream_tool_calls(
            [("call_1", "get_weather", r#"{"city":"Zürich"}"#), ("call_2", "noop", "")],
            Some((4, 6)),
        );
        let data = sse_of(&r);
        let chunks: Vec<Value> =
            data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(chunks[0]["choices"][0]["delta"]["content"].is_null());
        assert_eq!(chunks[0]["choices"][0]["delta"]["tool_calls"][0]["id"], "call_1");
        let args: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0].as_object())
            .filter(|t| t["index"] == 0)
            .filter_map(|t| t["function"]["arguments"].as_str())
            .collect();
        assert_eq!(args, r#"{"city":"Zürich"}"#);
        assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 4);
    }

    #[test]
    fn error_envelope() {
        let r = MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
            .retry_after(1);
        assert_eq!(r.status_code(), 429);
        assert_eq!(
            json_of(&r),
            json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        );
        let parsed: tollgate_core::OpenAiErrorBody = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(parsed.error.code.as_deref(), Some("rate_limit_exceeded"));
    }
}
