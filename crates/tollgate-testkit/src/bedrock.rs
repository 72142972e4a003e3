//! AWS Bedrock Runtime's wire format on top of the generic [`MockResponse`]: Converse JSON,
//! ConverseStream binary event streams, and Bedrock's error responses.
//!
//! Shapes follow the Bedrock Runtime API reference:
//!
//! * `POST /model/{modelId}/converse` answers `{"output": {"message": {"role": "assistant",
//!   "content": [...]}}, "stopReason", "usage", "metrics"}`. Content blocks are `{"text"}`,
//!   `{"toolUse": {"toolUseId", "name", "input"}}` (input is a JSON *object*) and
//!   `{"reasoningContent": {"reasoningText": {"text", "signature"}}}`. `usage` has `inputTokens`,
//!   `outputTokens`, `totalTokens` and, with prompt caching, `cacheReadInputTokens` and
//!   `cacheWriteInputTokens` (reported *separately* from `inputTokens`). Bedrock sends neither a
//!   response id nor the model name; the request id travels in the `x-amzn-requestid` header.
//! * `POST /model/{modelId}/converse-stream` answers `application/vnd.amazon.eventstream`: binary
//!   frames (encoded with `tollgate_provider_bedrock::eventstream`) whose `:event-type` header
//!   names the event and whose payload is JSON: `messageStart {"role"}`, `contentBlockStart
//!   {"contentBlockIndex", "start": {"toolUse": {"toolUseId", "name"}}}`, `contentBlockDelta
//!   {"contentBlockIndex", "delta": {"text"} | {"toolUse": {"input": "<partial JSON string>"}} |
//!   {"reasoningContent": {"text"} | {"signature"}}}`, `contentBlockStop {"contentBlockIndex"}`,
//!   `messageStop {"stopReason"}` and finally `metadata {"usage", "metrics"}`. Failures mid-stream
//!   are `:message-type: exception` frames with an `:exception-type` header
//!   (`throttlingException`, `validationException`, `modelStreamErrorException`, …).
//! * Errors: an HTTP status, `x-amzn-errortype: <Type>:http://internal.amazon.com/coral/…`, and a
//!   JSON body `{"message": "..."}`.

use serde_json::{Value, json};
use tollgate_provider_bedrock::eventstream::{self, Message};

use crate::openai::{stream_pieces, word_count};
use crate::record::RecordedRequest;
use crate::response::MockResponse;
use crate::server::Responder;

/// The request id the `bedrock_*` constructors send in `x-amzn-requestid`.
pub const BEDROCK_REQUEST_ID: &str = "7f3c1a52-0b6e-4d7a-9a1e-mockbedrock01";
/// `application/vnd.amazon.eventstream`, the ConverseStream content type.
pub const EVENTSTREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// The latency every mock `metrics` object reports.
pub const MOCK_LATENCY_MS: u64 = 321;

/// A Converse `TokenUsage` object. `totalTokens` is the sum of all four counts, as Bedrock
/// reports it; the cache fields are present only when given.
pub fn bedrock_usage_json(
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
) -> Value {
    let mut u = json!({
        "inputTokens": input,
        "outputTokens": output,
        "totalTokens": input + output + cache_read.unwrap_or(0) + cache_write.unwrap_or(0),
    });
    if let Some(r) = cache_read {
        u["cacheReadInputTokens"] = json!(r);
    }
    if let Some(w) = cache_write {
        u["cacheWriteInputTokens"] = json!(w);
    }
    u
}

/// A `{"text": ...}` content block.
pub fn text_block(text: &str) -> Value {
    json!({ "text": text })
}

/// A `{"toolUse": {...}}` content block; `input` is the tool's JSON object.
pub fn tool_use_block(tool_use_id: &str, name: &str, input: Value) -> Value {
    json!({ "toolUse": { "toolUseId": tool_use_id, "name": name, "input": input } })
}

/// A `{"reasoningContent": {"reasoningText": {...}}}` content block.
pub fn reasoning_block(text: &str, signature: Option<&str>) -> Value {
    let mut rt = json!({ "text": text });
    if let Some(s) = signature {
        rt["signature"] = json!(s);
    }
    json!({ "reasoningContent": { "reasoningText": rt } })
}

/// A complete Converse response body.
pub fn converse_json(content: Vec<Value>, stop_reason: &str, usage: Value) -> Value {
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": { "latencyMs": MOCK_LATENCY_MS },
    })
}

/// A 500 explaining that a scripted event stream could not be encoded (instead of a panic).
fn unencodable(e: &eventstream::EventStreamError) -> MockResponse {
    let body = json!({"message": format!("tollgate-testkit: cannot encode the scripted event stream: {e}")});
    MockResponse::json(&body).status(500)
}

/// Builds a ConverseStream body event by event. Each event becomes one event-stream frame; by
/// default each frame goes out as its own network chunk (re-split with
/// [`MockResponse::chunk_size`] to make frames straddle reads).
#[derive(Debug, Clone, Default)]
pub struct BedrockStream {
    messages: Vec<Message>,
    /// Frames whose message CRC gets corrupted on encoding.
    bad_crc: Vec<usize>,
}

impl BedrockStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an arbitrary event with a JSON payload.
    pub fn event(mut self, event_type: &str, payload: &Value) -> Self {
        self.messages.push(Message::event(event_type, payload.to_string()));
        self
    }

    /// Adds a raw event-stream message (odd headers, non-JSON payloads, `:message-type: error`).
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// `messageStart {"role": "assistant"}`.
    pub fn message_start(self) -> Self {
        self.event("messageStart", &json!({"role": "assistant"}))
    }

    /// `contentBlockDelta` with a text piece.
    pub fn text(self, index: u64, piece: &str) -> Self {
        self.event("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": {"text": piece}}))
    }

    /// `contentBlockDelta` with a reasoning text piece.
    pub fn reasoning(self, index: u64, piece: &str) -> Self {
        self.event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}}),
        )
    }

    /// `contentBlockDelta` with the reasoning block's signature.
    pub fn reasoning_signature(self, index: u64, signature: &str) -> Self {
        self.event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": signature}}}),
        )
    }

    /// `contentBlockStart` opening a tool-use block.
    pub fn tool_use_start(self, index: u64, tool_use_id: &str, name: &str) -> Self {
        self.event(
            "contentBlockStart",
            &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_use_id, "name": name}}}),
        )
    }

    /// `contentBlockDelta` with a fragment of the tool input's JSON text.
    pub fn tool_use_input(self, index: u64, fragment: &str) -> Self {
        self.event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}}),
        )
    }

    /// `contentBlockStop`.
    pub fn block_stop(self, index: u64) -> Self {
        self.event("contentBlockStop", &json!({"contentBlockIndex": index}))
    }

    /// `messageStop` with a stop reason (`end_turn`, `tool_use`, `max_tokens`, …).
    pub fn message_stop(self, stop_reason: &str) -> Self {
        self.event("messageStop", &json!({"stopReason": stop_reason}))
    }

    /// The terminating `metadata` event with this usage object ([`bedrock_usage_json`]).
    pub fn metadata(self, usage: Value) -> Self {
        self.event("metadata", &json!({"usage": usage, "metrics": {"latencyMs": MOCK_LATENCY_MS}}))
    }

    /// `metadata` with plain input/output counts.
    pub fn usage(self, input: u64, output: u64) -> Self {
        self.metadata(bedrock_usage_json(input, output, None, None))
    }

    /// A modelled exception frame (`throttlingException`, `validationException`,
    /// `modelStreamErrorException`, …) with `{"message": ...}`.
    pub fn exception(mut self, exception_type: &str, message: &str) -> Self {
        self.messages.push(Message::exception(exception_type, message));
        self
    }

    /// Corrupts the message CRC of the frame at `index` (0-based, counting every event added):
    /// a client must reject the stream there.
    pub fn corrupt_crc(mut self, index: usize) -> Self {
        self.bad_crc.push(index);
        self
    }

    /// How many frames the stream has.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The encoded frames, one `Vec` per event.
    pub fn frames(&self) -> Result<Vec<Vec<u8>>, eventstream::EventStreamError> {
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut frame = eventstream::encode(m)?;
                if self.bad_crc.contains(&i)
                    && let Some(last) = frame.last_mut()
                {
                    *last ^= 0xFF;
                }
                Ok(frame)
            })
            .collect()
    }

    /// 200 `application/vnd.amazon.eventstream`, one network chunk per frame, with the
    /// `x-amzn-requestid` header. A stream that cannot be encoded (a frame over 16 MiB) becomes a
    /// 500 naming the problem.
    pub fn into_response(self) -> MockResponse {
        match self.frames() {
            Ok(frames) => MockResponse::chunked(EVENTSTREAM_CONTENT_TYPE, frames)
                .header("x-amzn-requestid", BEDROCK_REQUEST_ID),
            Err(e) => unencodable(&e),
        }
    }
}

impl MockResponse {
    /// 200 Converse JSON with this body ([`converse_json`]) and the `x-amzn-requestid` header.
    pub fn bedrock_converse_json(body: &Value) -> Self {
        MockResponse::json(body).header("x-amzn-requestid", BEDROCK_REQUEST_ID)
    }

    /// 200 Converse reply with one text block, `end_turn`, 10 input and `word count` output tokens.
    pub fn bedrock_converse(text: &str) -> Self {
        let output = crate::openai::word_count(text).max(1);
        Self::bedrock_converse_with_usage(text, bedrock_usage_json(10, output, None, None))
    }

    /// 200 Converse reply with one text block, `end_turn`, and this usage object
    /// ([`bedrock_usage_json`]).
    pub fn bedrock_converse_with_usage(text: &str, usage: Value) -> Self {
        Self::bedrock_converse_json(&converse_json(vec![text_block(text)], "end_turn", usage))
    }

    /// 200 Converse reply whose content is these tool uses `(toolUseId, name, input object)`,
    /// `stopReason: tool_use`.
    pub fn bedrock_tool_use<I, A, B>(calls: I, usage: (u64, u64)) -> Self
    where
        I: IntoIterator<Item = (A, B, Value)>,
        A: AsRef<str>,
        B: AsRef<str>,
    {
        let content = calls
            .into_iter()
            .map(|(id, name, input)| tool_use_block(id.as_ref(), name.as_ref(), input))
            .collect();
        Self::bedrock_converse_json(&converse_json(
            content,
            "tool_use",
            bedrock_usage_json(usage.0, usage.1, None, None),
        ))
    }

    /// A ConverseStream of text: `messageStart`, one `contentBlockDelta` per piece, the block
    /// stop, `messageStop end_turn` and `metadata` with `(input, output)` tokens.
    pub fn bedrock_stream_text<I, S>(pieces: I, usage: (u64, u64)) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = BedrockStream::new().message_start();
        for p in pieces {
            s = s.text(0, p.as_ref());
        }
        s.block_stop(0).message_stop("end_turn").usage(usage.0, usage.1).into_response()
    }

    /// A ConverseStream answering `text` word by word (see [`stream_pieces`]).
    pub fn bedrock_stream_words(text: &str, usage: (u64, u64)) -> Self {
        Self::bedrock_stream_text(stream_pieces(text), usage)
    }

    /// A Bedrock error: `status`, `x-amzn-errortype: {error_type}:http://internal.amazon.com/…`,
    /// `x-amzn-requestid`, and `{"message": ...}`. Throttling answers should also get
    /// [`MockResponse::retry_after`] when a test needs it.
    pub fn bedrock_error(status: u16, error_type: &str, message: &str) -> Self {
        MockResponse::json(&json!({ "message": message }))
            .status(status)
            .header(
                "x-amzn-errortype",
                &format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            )
            .header("x-amzn-requestid", BEDROCK_REQUEST_ID)
    }
}

/// A deterministic default responder speaking Bedrock Converse:
///
/// * `POST /model/{modelId}/converse`: answers `echo: <last user text>` (`end_turn`), cut to
///   `inferenceConfig.maxTokens` words (`max_tokens`); `inputTokens` is the word count of every
///   text block of `system` and `messages`, `outputTokens` that of the reply.
/// * `POST /model/{modelId}/converse-stream`: the same as an event stream, one word per
///   `contentBlockDelta`.
/// * a body that is not JSON or has no `messages`: 400 `ValidationException`; any other path:
///   404 `UnknownOperationException`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BedrockResponder;

/// Every `text` of a Converse content array.
fn texts(content: Option<&Value>) -> impl Iterator<Item = &str> {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
}

impl Responder for BedrockResponder {
    fn respond(&self, request: &RecordedRequest) -> Option<MockResponse> {
        let op =
            request.path.strip_prefix("/model/").and_then(|rest| rest.rsplit_once('/')).map(|(_, op)| op);
        let stream = match op {
            Some("converse") if request.method == http::Method::POST => false,
            Some("converse-stream") if request.method == http::Method::POST => true,
            _ => {
                return Some(MockResponse::bedrock_error(
                    404,
                    "UnknownOperationException",
                    &format!("Unknown operation {} {}", request.method, request.path),
                ));
            }
        };
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => {
                return Some(MockResponse::bedrock_error(
                    400,
                    "ValidationException",
                    &format!("Malformed input request: {e}"),
                ));
            }
        };
        let Some(messages) = body.get("messages").and_then(Value::as_array) else {
            return Some(MockResponse::bedrock_error(
                400,
                "ValidationException",
                "Malformed input request: messages is required",
            ));
        };
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| texts(m.get("content")).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let input: u64 = texts(body.get("system")).map(word_count).sum::<u64>()
            + messages.iter().flat_map(|m| texts(m.get("content"))).map(word_count).sum::<u64>();
        let reply = format!("echo: {last_user}");
        let mut pieces = stream_pieces(&reply);
        let limit = body.pointer("/inferenceConfig/maxTokens").and_then(Value::as_u64).map(|n| n as usize);
        let stop = match limit {
            Some(n) if n < pieces.len() => {
                pieces.truncate(n);
                "max_tokens"
            }
            _ => "end_turn",
        };
        let text = pieces.concat();
        let output = word_count(&text);
        Some(if stream {
            let mut s = BedrockStream::new().message_start();
            for p in &pieces {
                s = s.text(0, p);
            }
            s.block_stop(0).message_stop(stop).usage(input, output).into_response()
        } else {
            MockResponse::bedrock_converse_json(&converse_json(
                vec![text_block(&text)],
                stop,
                bedrock_usage_json(input, output, None, None),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_provider_bedrock::eventstream::{EventStreamError, MessageDecoder};

    fn decode(bytes: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        let mut d = MessageDecoder::new();
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn converse_reply_has_the_documented_shape() {
        let r = MockResponse::bedrock_converse_with_usage("hi", bedrock_usage_json(3, 2, Some(100), Some(7)));
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["output"]["message"]["content"], json!([{"text": "hi"}]));
        assert_eq!(v["stopReason"], "end_turn");
        assert_eq!(
            v["usage"],
            json!({"inputTokens": 3, "outputTokens": 2, "totalTokens": 112,
                   "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7})
        );
        assert_eq!(r.header_value("x-amzn-requestid"), Some(BEDROCK_REQUEST_ID));
        let t = MockResponse::bedrock_tool_use([("tu_1", "f", json!({"a": 1}))], (4, 5));
        let v: Value = serde_json::from_slice(t.body_bytes()).unwrap();
        assert_eq!(v["output"]["message"]["content"][0]["toolUse"]["input"], json!({"a": 1}));
        assert_eq!(v["stopReason"], "tool_use");
        assert_eq!(reasoning_block("r", Some("s"))["reasoningContent"]["reasoningText"]["signature"], "s");
    }

    #[test]
    fn stream_frames_decode_to_the_scripted_events() {
        let r = MockResponse::bedrock_stream_text(["Hel", "lo"], (5, 2));
        assert_eq!(r.header_value("content-type"), Some(EVENTSTREAM_CONTENT_TYPE));
        let msgs = decode(r.body_bytes()).unwrap();
        let kinds: Vec<&str> = msgs.iter().map(|m| m.header_str(":event-type").unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        let p: Value = serde_json::from_slice(&msgs[2].payload).unwrap();
        assert_eq!(p, json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}));
        let meta: Value = serde_json::from_slice(&msgs[5].payload).unwrap();
        assert_eq!(meta["usage"]["totalTokens"], 7);
        assert!(msgs.iter().all(|m| m.header_str(":message-type") == Some("event")));
        // One network chunk per frame.
        assert_eq!(r.plan_chunks().len(), 6);
    }

    #[test]
    fn exceptions_and_corrupted_crcs() {
        let s = BedrockStream::new().message_start().exception("throttlingException", "slow down");
        assert_eq!(s.len(), 2);
        let msgs = decode(s.into_response().body_bytes()).unwrap();
        assert_eq!(msgs[1].header_str(":message-type"), Some("exception"));
        assert_eq!(msgs[1].header_str(":exception-type"), Some("throttlingException"));

        let bad = BedrockStream::new().message_start().text(0, "x").corrupt_crc(1).into_response();
        assert!(matches!(decode(bad.body_bytes()), Err(EventStreamError::MessageCrc { .. })));
    }

    #[test]
    fn errors_carry_the_type_header() {
        let r = MockResponse::bedrock_error(429, "ThrottlingException", "Too many requests");
        assert_eq!(r.status_code(), 429);
        assert!(r.header_value("x-amzn-errortype").unwrap().starts_with("ThrottlingException:"));
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v, json!({"message": "Too many requests"}));
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
    fn responder_echoes_and_streams() {
        let body = r#"{"system":[{"text":"be terse"}],"messages":[{"role":"user","content":[{"text":"one two three"}]}],
                      "inferenceConfig":{"maxTokens":3}}"#;
        let r = BedrockResponder.respond(&post("/model/a.b%3A0/converse", body)).unwrap();
        let v: Value = serde_json::from_slice(r.body_bytes()).unwrap();
        assert_eq!(v["output"]["message"]["content"][0]["text"], "echo: one two");
        assert_eq!(v["stopReason"], "max_tokens");
        assert_eq!(v["usage"]["inputTokens"], 5);
        assert_eq!(v["usage"]["outputTokens"], 3);

        let r = BedrockResponder.respond(&post("/model/a.b%3A0/converse-stream", body)).unwrap();
        let msgs = decode(r.body_bytes()).unwrap();
        let text: String = msgs
            .iter()
            .filter(|m| m.header_str(":event-type") == Some("contentBlockDelta"))
            .map(|m| {
                serde_json::from_slice::<Value>(&m.payload).unwrap()["delta"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(text, "echo: one two");
        assert_eq!(msgs.last().unwrap().header_str(":event-type"), Some("metadata"));

        assert_eq!(BedrockResponder.respond(&post("/model/x/converse", "{")).unwrap().status_code(), 400);
        assert_eq!(BedrockResponder.respond(&post("/model/x/converse", "{}")).unwrap().status_code(), 400);
        assert_eq!(BedrockResponder.respond(&post("/v1/chat/completions", "{}")).unwrap().status_code(), 404);
    }
}
