//! The streaming conformance grid, run against the Anthropic decoder.
//!
//! Every case is a recorded-shape SSE body (`tests/fixtures/stream/<case>.sse`) and the chunks
//! (plus the terminal error, if any) it must decode to (`<case>.expected.json`), compared value
//! for value. Each body is fed whole, split in two at every byte boundary, and one byte at a
//! time; all three must give exactly the same chunks and error.
//!
//! Case (3): Anthropic streams content blocks one after another and does not interleave them in
//! practice, but the decoder keys all state by block `index`, so interleaved blocks decode
//! correctly too; the case checks that.

// Helpers outside #[test] functions may unwrap: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::chat::StreamAccumulator;
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ErrorKind, Message, ProviderError, StreamDecoder, UpstreamConfig,
};
use tollgate_provider_anthropic::{AnthropicAdapter, AnthropicStreamDecoder};

const CREATED: u64 = 1_700_000_000;

type Outcome = (Vec<ChatChunk>, Option<ProviderError>);

/// Feeds the pieces in order, stopping at the first error; calls `finish` when none occurred.
fn feed(pieces: &[&[u8]]) -> Outcome {
    let mut d = AnthropicStreamDecoder::new("fallback-model", CREATED);
    let mut out = Vec::new();
    for p in pieces {
        if let Err(e) = d.decode(p, &mut out) {
            return (out, Some(e));
        }
    }
    let err = d.finish(&mut out).err();
    (out, err)
}

/// Decodes `body` whole, at every two-way split and byte by byte; asserts they agree.
fn decode_all_ways(body: &[u8]) -> Outcome {
    let whole = feed(&[body]);
    for i in 0..=body.len() {
        let split = feed(&[&body[..i], &body[i..]]);
        assert_eq!(split, whole, "split at byte {i}");
    }
    let singles: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(feed(&singles), whole, "byte at a time");
    whole
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stream").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn outcome_json((chunks, err): &Outcome) -> Value {
    json!({
        "chunks": serde_json::to_value(chunks).unwrap(),
        "error": err.as_ref().map(|e| json!({"kind": format!("{:?}", e.kind), "message": e.message, "code": e.code})),
    })
}

/// Runs one grid case and checks the invariants every stream must keep.
fn run_case(name: &str) -> Outcome {
    let body = read(&format!("{name}.sse"));
    let expected: Value = serde_json::from_slice(&read(&format!("{name}.expected.json"))).unwrap();
    let outcome = decode_all_ways(&body);
    assert_eq!(outcome_json(&outcome), expected, "{name}");

    let (chunks, _) = &outcome;
    if let Some(first) = chunks.first() {
        // One id on every chunk; the role only on the first.
        assert!(chunks.iter().all(|c| c.id == first.id), "{name}: one id");
        assert_eq!(first.choices[0].delta.role, Some(tollgate_core::Role::Assistant));
        assert!(chunks[1..].iter().flat_map(|c| &c.choices).all(|c| c.delta.role.is_none()));
        // Tool-call deltas follow OpenAI's shape: only a call's first fragment has id/type/name.
        let mut seen = std::collections::HashSet::new();
        for d in chunks.iter().flat_map(|c| &c.choices).flat_map(|c| c.delta.tool_calls.iter().flatten()) {
            let first_fragment = seen.insert(d.index);
            assert_eq!(d.id.is_some(), first_fragment, "{name}: id only on the first fragment");
            assert_eq!(d.kind.is_some(), first_fragment);
            assert_eq!(d.function.as_ref().unwrap().name.is_some(), first_fragment);
        }
        // A usage chunk, if any, is last and has no choices.
        for (i, c) in chunks.iter().enumerate() {
            if c.usage.is_some() {
                assert_eq!(i, chunks.len() - 1, "{name}: usage chunk is last");
                assert!(c.choices.is_empty());
            }
        }
    }
    outcome
}

#[test]
fn conformance_text() {
    let (chunks, err) = run_case("text");
    assert!(err.is_none());
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    assert_eq!(acc.finish().first_text(), Some("Hello!"));
}

#[test]
fn conformance_tool_call_split_across_frames() {
    let (chunks, _) = run_case("tool_call_split");
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    let r = acc.finish();
    let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.arguments, "{\"location\": \"San Francisco, CA\"}");
}

#[test]
fn conformance_interleaved_tool_calls() {
    let (chunks, _) = run_case("interleaved_tools");
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    let r = acc.finish();
    let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id, "toolu_A");
    assert_eq!(calls[0].function.arguments, "{\"city\":\"Tokyo\"}");
    assert_eq!(calls[1].id, "toolu_B");
    assert_eq!(calls[1].function.arguments, "{\"tz\":\"JST\"}");
}

#[test]
fn conformance_usage_only_at_end() {
    let (chunks, _) = run_case("usage_at_end");
    let usage = chunks.last().unwrap().usage.as_ref().unwrap();
    assert_eq!(usage.prompt_tokens, 21 + 1500 + 4000);
    assert_eq!(usage.cached_tokens(), 4000);
    assert_eq!(usage.cache_creation_tokens(), 1500);
}

#[test]
fn conformance_error_mid_stream() {
    let (_, err) = run_case("error_mid_stream");
    let err = err.unwrap();
    assert_eq!(err.kind, ErrorKind::Overloaded);
    assert_eq!(err.provider.as_deref(), Some("anthropic"));
}

#[test]
fn conformance_empty_stream() {
    let (chunks, err) = run_case("empty");
    assert!(chunks.is_empty());
    assert_eq!(err.unwrap().kind, ErrorKind::Decode);
}

#[test]
fn conformance_utf8_split_across_chunks() {
    let (chunks, err) = run_case("utf8_split");
    assert!(err.is_none());
    assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("héllo 🦀 日本"));
    // The grid already splits at every byte; make sure some splits land inside code points.
    let body = read("utf8_split.sse");
    let crab = body.windows(4).position(|w| w == "🦀".as_bytes()).unwrap();
    for i in crab + 1..crab + 4 {
        assert_eq!(feed(&[&body[..i], &body[i..]]), (chunks.clone(), None));
    }
}

#[test]
fn conformance_cut_without_terminator() {
    let (_, err) = run_case("cut_without_terminator");
    assert_eq!(err.unwrap().kind, ErrorKind::Decode);
}

#[test]
fn thinking_blocks_signatures_unknown_deltas_and_events() {
    let (_, err) = run_case("thinking");
    assert!(err.is_none());
}

#[test]
fn json_mode_tool_streams_as_content() {
    let (chunks, _) = run_case("json_mode");
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    let r = acc.finish();
    assert_eq!(r.first_text(), Some("{\"name\": \"Alice\", \"age\": 30}"));
    assert!(r.choices[0].message.tool_calls.is_none());
}

#[test]
fn adapter_decoder_stops_reading_at_message_stop() {
    let adapter = AnthropicAdapter::new();
    let req = ChatRequest::new("anthropic/claude-sonnet-4-5", vec![Message::user("hi")]);
    let mut d = adapter.chat_stream_decoder(&req, &UpstreamConfig::new("claude-sonnet-4-5"));
    let mut out = Vec::new();
    let mut body = read("text.sse");
    body.extend_from_slice(b"event: content_block_delta\ndata: not even json\n\n");
    d.decode(&body, &mut out).unwrap();
    assert!(d.is_done());
    d.finish(&mut out).unwrap();
    assert_eq!(out.len(), 5);
    assert!(out[0].created > CREATED, "created is the current time");
}

fn decode_error(body: &[u8]) -> ProviderError {
    let (_, err) = feed(&[body]);
    err.unwrap_or_else(|| panic!("no error for {:?}", String::from_utf8_lossy(body)))
}

const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"content\":[],\"usage\":{\"input_tokens\":1}}}\n\n";

#[test]
fn bad_input_is_a_typed_decode_error() {
    let cases: Vec<Vec<u8>> = vec![
        // malformed JSON
        format!("{START}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\n\n").into_bytes(),
        // a known event with the wrong shape
        format!("{START}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":\"zero\"}}\n\n").into_bytes(),
        // a delta for a block that never started
        format!("{START}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":3,\"delta\":{{\"type\":\"text_delta\",\"text\":\"x\"}}}}\n\n").into_bytes(),
        // content before message_start
        b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec(),
        // invalid UTF-8
        [START.as_bytes(), b"event: ping\ndata: {\"type\":\"ping\",\"x\":\"\xff\xfe\"}\n\n"].concat(),
        // an HTML error page instead of a stream
        b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        // a truncated frame
        format!("{START}event: message_stop\ndata: {{\"type\":\"mess").into_bytes(),
    ];
    for body in cases {
        let err = decode_error(&body);
        assert_eq!(err.kind, ErrorKind::Decode, "{:?}: {err}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn error_event_types_are_classified() {
    for (t, kind) in [
        ("rate_limit_error", ErrorKind::RateLimited),
        ("api_error", ErrorKind::ServerError),
        ("invalid_request_error", ErrorKind::BadRequest),
        ("something_new", ErrorKind::ServerError),
    ] {
        let body = format!(
            "{START}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{t}\",\"message\":\"m\"}}}}\n\n"
        );
        assert_eq!(decode_error(body.as_bytes()).kind, kind, "{t}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random bytes never panic the decoder.
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), cut in any::<prop::sample::Index>()) {
            let i = cut.index(bytes.len() + 1);
            let _ = feed(&[&bytes[..i], &bytes[i..]]);
        }

        /// Random event-stream-looking input never panics either (gets past the SSE layer).
        #[test]
        fn random_events_never_panic(events in prop::collection::vec((
            prop_oneof![Just("message_start"), Just("content_block_start"), Just("content_block_delta"),
                        Just("content_block_stop"), Just("message_delta"), Just("message_stop"), Just("error"), Just("zzz")],
            prop_oneof![
                Just(r#"{"type":"message_start","message":{"id":"m","usage":{}}}"#.to_string()),
                Just(r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#.to_string()),
                Just(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#.to_string()),
                Just(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":1}}"#.to_string()),
                "[ -~]{0,40}",
            ],
        ), 0..12)) {
            let mut body = String::new();
            for (name, data) in events {
                body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
            }
            let _ = feed(&[body.as_bytes()]);
        }

        /// Random bodies never panic the response parser or the error classifier.
        #[test]
        fn random_responses_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), status in 100u16..600) {
            let adapter = AnthropicAdapter::new();
            let resp = tollgate_core::RawResponse::new(
                http::StatusCode::from_u16(status).unwrap(), http::HeaderMap::new(), bytes);
            let _ = adapter.chat_response(&resp);
            let _ = adapter.error_response(&resp);
        }
    }
}

#[test]
fn event_name_stands_in_for_a_missing_type() {
    let body = b"event: message_start\ndata: {\"message\":{\"id\":\"m1\",\"model\":\"c\",\"usage\":{\"input_tokens\":2}}}\n\n\
event: message_stop\ndata: {}\n\n";
    let (chunks, err) = feed(&[body]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].id, "m1");
    assert_eq!(chunks[1].usage.as_ref().unwrap().prompt_tokens, 2);
}
