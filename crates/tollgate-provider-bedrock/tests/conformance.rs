//! The streaming conformance grid for the ConverseStream decoder. Every case is fed whole, one
//! byte at a time, and split in two at every byte boundary; all runs must give the same chunks
//! and the same error. Inputs (event frames) and expected chunks live in `tests/fixtures/stream/`.
//!
//! (3) interleaved tool calls: Bedrock keys every delta by `contentBlockIndex`, so interleaving
//! is supported and tested.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use tollgate_core::chat::ResponseFormat;
use tollgate_core::{Adapter, ChatChunk, ChatRequest, Message as ChatMessage, ProviderError, UpstreamConfig};
use tollgate_provider_bedrock::BedrockAdapter;
use tollgate_provider_bedrock::eventstream::{Header, Message, encode};

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const CREATED: u64 = 1_700_000_000;
const ID: &str = "chatcmpl-bedrock-17979cfe362a00000000";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/stream/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Encodes the fixture's frames as a ConverseStream body.
fn body(case: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for f in case["frames"].as_array().unwrap() {
        let msg = if let Some(ev) = f.get("event") {
            Message::event(ev.as_str().unwrap(), f["payload"].to_string())
        } else if let Some(ex) = f.get("exception") {
            Message::exception(ex.as_str().unwrap(), f["message"].as_str().unwrap())
        } else {
            Message {
                headers: vec![
                    Header::string(":message-type", "error"),
                    Header::string(":error-code", f["error_code"].as_str().unwrap()),
                    Header::string(":error-message", f["error_message"].as_str().unwrap()),
                ],
                payload: vec![],
            }
        };
        out.extend(encode(&msg).unwrap());
    }
    let cut = case.get("truncate_bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
    out.truncate(out.len() - cut);
    out
}

fn decoder(json_mode: bool) -> Box<dyn tollgate_core::StreamDecoder<ChatChunk>> {
    let adapter = BedrockAdapter::at(UNIX_EPOCH + Duration::from_secs(CREATED));
    let mut req = ChatRequest::new(MODEL, vec![ChatMessage::user("hi")]);
    req.stream = Some(true);
    if json_mode {
        req.response_format = Some(ResponseFormat::JsonObject);
    }
    adapter.chat_stream_decoder(&req, &UpstreamConfig::new(MODEL))
}

type Outcome = (Vec<ChatChunk>, Option<ProviderError>);

fn feed<'a>(json_mode: bool, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut d = decoder(json_mode);
    let mut out = Vec::new();
    for p in pieces {
        if let Err(e) = d.decode(p, &mut out) {
            return (out, Some(e));
        }
    }
    let err = d.finish(&mut out).err();
    (out, err)
}

/// Runs every split and checks they agree; returns the whole-body outcome.
fn run_all_splits(bytes: &[u8], json_mode: bool) -> Outcome {
    let whole = feed(json_mode, [bytes]);
    let bytewise = feed(json_mode, bytes.chunks(1));
    assert_eq!(bytewise, whole, "one byte at a time differs from whole");
    for k in 1..bytes.len() {
        let split = feed(json_mode, [&bytes[..k], &bytes[k..]]);
        assert_eq!(split, whole, "split at byte {k} differs from whole");
    }
    whole
}

fn check(name: &str) {
    let case = fixture(name);
    let json_mode = case.get("json_mode").and_then(Value::as_bool).unwrap_or(false);
    let (chunks, err) = run_all_splits(&body(&case), json_mode);

    let mut got = Vec::new();
    for c in &chunks {
        assert_eq!(c.id, ID, "{name}: every chunk carries the stream's one id");
        assert_eq!(c.model, MODEL);
        assert_eq!(c.created, CREATED);
        assert_eq!(c.object, "chat.completion.chunk");
        let mut v = serde_json::to_value(c).unwrap();
        for k in ["id", "object", "created", "model"] {
            v.as_object_mut().unwrap().remove(k);
        }
        got.push(v);
    }
    assert_eq!(Value::Array(got), case["chunks"], "{name}: chunks");

    // OpenAI's shape: a usage chunk, when present, is last and has no choices; the finish
    // reason is on the last content chunk.
    if let Some(pos) = chunks.iter().position(|c| c.usage.is_some()) {
        assert_eq!(pos, chunks.len() - 1, "{name}: usage chunk is last");
        assert!(chunks[pos].choices.is_empty());
        if pos > 0 {
            assert!(
                chunks[pos - 1].choices[0].finish_reason.is_some(),
                "{name}: finish on last content chunk"
            );
        }
    }

    match (&case["error"], err) {
        (Value::Null, None) => {}
        (Value::Null, Some(e)) => panic!("{name}: unexpected error {e}"),
        (want, None) => panic!("{name}: expected error {want}"),
        (want, Some(e)) => {
            assert_eq!(format!("{:?}", e.kind), want["kind"].as_str().unwrap(), "{name}: {e}");
            assert_eq!(e.provider.as_deref(), Some("bedrock"));
            if let Some(m) = want.get("message") {
                assert_eq!(json!(e.message), *m, "{name}");
            }
            if let Some(m) = want.get("message_contains").and_then(Value::as_str) {
                assert!(e.message.contains(m), "{name}: {:?} lacks {m:?}", e.message);
            }
            if let Some(code) = want.get("code") {
                assert_eq!(json!(e.code), *code, "{name}");
            }
        }
    }
}

#[test]
fn conformance_text() {
    check("text");
}

#[test]
fn conformance_tool_call_split_arguments() {
    check("tool_call_split_arguments");
}

#[test]
fn conformance_interleaved_tool_calls() {
    check("interleaved_tool_calls");
}

#[test]
fn conformance_usage_at_end() {
    check("usage_at_end");
}

#[test]
fn conformance_error_mid_stream() {
    check("error_mid_stream");
}

#[test]
fn conformance_empty_stream() {
    check("empty");
}

#[test]
fn conformance_utf8_split() {
    check("utf8_split");
}

#[test]
fn conformance_cut_without_terminator() {
    check("cut_without_terminator");
}

#[test]
fn conformance_cut_after_message_stop() {
    check("cut_after_message_stop");
}

#[test]
fn stream_reasoning() {
    check("reasoning");
}

#[test]
fn stream_json_mode_tool_becomes_content() {
    check("json_mode_tool_as_content");
}

#[test]
fn stream_unknown_events_and_blocks_are_skipped() {
    check("unknown_event_skipped");
}

#[test]
fn stream_is_done_after_metadata() {
    let bytes = body(&fixture("text"));
    let mut d = decoder(false);
    let mut out = Vec::new();
    let split = bytes.len() - 10;
    d.decode(&bytes[..split], &mut out).unwrap();
    assert!(!d.is_done());
    d.decode(&bytes[split..], &mut out).unwrap();
    assert!(d.is_done());
}

fn exception_kind(ty: &str, message: &str) -> ProviderError {
    let mut bytes = encode(&Message::event("messageStart", r#"{"role":"assistant"}"#)).unwrap();
    bytes.extend(encode(&Message::exception(ty, message)).unwrap());
    let (_, err) = feed(false, [&bytes[..]]);
    err.expect("an exception frame is an error")
}

#[test]
fn stream_exception_frames_are_typed() {
    use tollgate_core::ErrorKind::*;
    let cases = [
        ("throttlingException", "Too many tokens", RateLimited),
        ("validationException", "Input is too long for requested model.", ContextWindowExceeded),
        ("validationException", "messages.1.content: blank text", BadRequest),
        ("modelStreamErrorException", "The model stream failed", ServerError),
        ("serviceUnavailableException", "Service unavailable", Overloaded),
        ("internalServerException", "Internal error", ServerError),
        ("someNewException", "?", ServerError),
    ];
    for (ty, msg, kind) in cases {
        let e = exception_kind(ty, msg);
        assert_eq!(e.kind, kind, "{ty}");
        assert_eq!(e.message, msg);
        assert_eq!(e.code.as_deref(), Some(ty));
    }
}

#[test]
fn stream_error_message_type_frames_are_typed() {
    let case = json!({"frames": [{"error_code": "ThrottlingException", "error_message": "slow down"}]});
    let (_, err) = feed(false, [&body(&case)[..]]);
    let e = err.unwrap();
    assert_eq!(e.kind, tollgate_core::ErrorKind::RateLimited);
    assert_eq!(e.message, "slow down");
}

#[test]
fn stream_bad_input_is_a_decode_error() {
    use tollgate_core::ErrorKind::Decode;
    // Malformed JSON payload.
    let bytes = encode(&Message::event("contentBlockDelta", "{not json")).unwrap();
    assert_eq!(feed(false, [&bytes[..]]).1.unwrap().kind, Decode);
    // A bad CRC.
    let mut bytes = encode(&Message::event("messageStart", r#"{"role":"assistant"}"#)).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 1;
    assert_eq!(feed(false, [&bytes[..]]).1.unwrap().kind, Decode);
    // Not an event stream at all (an HTML error page sent with 200).
    let html = b"<html><body>502 Bad Gateway</body></html>";
    assert_eq!(feed(false, [&html[..]]).1.unwrap().kind, Decode);
    // An event without :event-type.
    let bytes =
        encode(&Message { headers: vec![Header::string(":message-type", "event")], payload: b"{}".to_vec() })
            .unwrap();
    assert_eq!(feed(false, [&bytes[..]]).1.unwrap().kind, Decode);
    // A toolUse delta for a block that never started.
    let bytes = encode(&Message::event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#,
    ))
    .unwrap();
    assert_eq!(feed(false, [&bytes[..]]).1.unwrap().kind, Decode);
    // Non-UTF-8 payload.
    let bytes = encode(&Message::event("contentBlockDelta", vec![0xff, 0xfe, 0x7b])).unwrap();
    assert_eq!(feed(false, [&bytes[..]]).1.unwrap().kind, Decode);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..50) {
            let _ = feed(false, bytes.chunks(step));
        }

        #[test]
        fn random_payloads_in_valid_frames_never_panic(
            events in proptest::collection::vec((0usize..7, proptest::collection::vec(any::<u8>(), 0..80)), 0..8)
        ) {
            const TYPES: [&str; 7] = ["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata", "x"];
            let mut bytes = Vec::new();
            for (t, payload) in events {
                bytes.extend(encode(&Message::event(TYPES[t], payload)).unwrap());
            }
            let _ = feed(false, [&bytes[..]]);
        }
    }
}

/// The stream and the non-streamed reply say the same thing: folding the chunks of a
/// tool-calling stream gives the response `chat_response` parses from the equivalent body.
#[test]
fn stream_and_non_stream_agree() {
    use tollgate_core::RawResponse;
    use tollgate_core::chat::StreamAccumulator;
    let usage = json!({"inputTokens": 9, "outputTokens": 30, "totalTokens": 39, "cacheReadInputTokens": 100});
    let frames = json!({"frames": [
        {"event": "messageStart", "payload": {"role": "assistant"}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"text": "Checking "}}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 0, "delta": {"text": "both."}}},
        {"event": "contentBlockStop", "payload": {"contentBlockIndex": 0}},
        {"event": "contentBlockStart", "payload": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "a", "name": "w"}}}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Oslo\"}"}}}},
        {"event": "contentBlockStop", "payload": {"contentBlockIndex": 1}},
        {"event": "contentBlockStart", "payload": {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "b", "name": "t"}}}},
        {"event": "contentBlockDelta", "payload": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}},
        {"event": "contentBlockStop", "payload": {"contentBlockIndex": 2}},
        {"event": "messageStop", "payload": {"stopReason": "tool_use"}},
        {"event": "metadata", "payload": {"usage": usage, "metrics": {"latencyMs": 1}}}
    ]});
    let (chunks, err) = run_all_splits(&body(&frames), false);
    assert!(err.is_none());
    let mut acc = StreamAccumulator::new();
    for c in &chunks {
        acc.push(c);
    }
    let streamed = acc.finish();

    let reply = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Checking both."},
            {"toolUse": {"toolUseId": "a", "name": "w", "input": {"city": "Oslo"}}},
            {"toolUse": {"toolUseId": "b", "name": "t", "input": {}}}
        ]}},
        "stopReason": "tool_use", "usage": usage
    });
    let adapter = BedrockAdapter::at(UNIX_EPOCH + Duration::from_secs(CREATED));
    let parsed = adapter.chat_response(&RawResponse::ok_json(reply.to_string())).unwrap();
    assert_eq!(streamed.choices, parsed.choices);
    assert_eq!(streamed.usage, parsed.usage);
    assert_eq!(parsed.usage.as_ref().unwrap().prompt_tokens, 109);
}
