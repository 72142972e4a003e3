//! The streaming conformance grid, run against the Gemini decoder. Every case is fed whole, split
//! in two at every byte boundary, and one byte at a time; all must agree.
//!
//! Gemini specifics: function calls arrive whole in one part of one chunk, so case 2 ("arguments
//! split across many frames") and case 3 ("two interleaved tool calls") cannot happen natively;
//! their tests check instead that whole calls, alone and several per chunk, come out as correct
//! OpenAI tool-call deltas. The stream has no `[DONE]`: EOF after a `finishReason` ends it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_core::chat::StreamAccumulator;
use tollgate_core::{
    ChatChunk, ChatRequest, ErrorKind, FinishReason, Message, ProviderError, UpstreamConfig,
};

fn decoder(provider: &str, model: &str) -> Box<dyn tollgate_core::StreamDecoder<ChatChunk>> {
    let adapter = tollgate_provider_gemini::adapter(provider).unwrap();
    let req = ChatRequest::new(model, vec![Message::user("hi")]);
    adapter.chat_stream_decoder(&req, &UpstreamConfig::new(model))
}

fn sse(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir("stream").join(name)).unwrap()
}

fn outcome(r: &(Vec<ChatChunk>, Option<ProviderError>)) -> (Value, Option<(ErrorKind, String)>) {
    (chunks_json(&r.0), r.1.as_ref().map(|e| (e.kind, e.message.clone())))
}

/// Runs `bytes` whole, split at every boundary, and byte by byte; asserts all agree and returns
/// the whole-feed result.
fn run_all_splits(bytes: &[u8]) -> (Vec<ChatChunk>, Option<ProviderError>) {
    let whole = run_decoder(decoder("gemini", "gemini-2.5-flash"), &[bytes]);
    let want = outcome(&whole);
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        let got = run_decoder(decoder("gemini", "gemini-2.5-flash"), &[a, b]);
        assert_eq!(outcome(&got), want, "split at byte {i}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    let got = run_decoder(decoder("gemini", "gemini-2.5-flash"), &singles);
    assert_eq!(outcome(&got), want, "byte by byte");
    whole
}

fn assert_one_id(chunks: &[ChatChunk]) {
    let first = &chunks[0].id;
    assert!(!first.is_empty());
    assert!(chunks.iter().all(|c| &c.id == first), "all chunks carry one id");
}

#[test]
fn conformance_1_text() {
    let (chunks, err) = run_all_splits(&sse("text.sse"));
    assert!(err.is_none(), "{err:?}");
    let want = read_json(&fixture_dir("stream").join("text.expected.json"));
    pretty_assertions::assert_eq!(chunks_json(&chunks), want);
    assert_one_id(&chunks);
}

#[test]
fn conformance_2_tool_call_arguments_arrive_whole() {
    let (chunks, err) = run_all_splits(&sse("tools.sse"));
    assert!(err.is_none(), "{err:?}");
    assert_one_id(&chunks);
    assert_eq!(chunks.len(), 4);
    // Thought text first, with the role.
    assert_eq!(chunks[0].choices[0].delta.role, Some(tollgate_core::Role::Assistant));
    assert_eq!(chunks[0].choices[0].delta.reasoning_content.as_deref(), Some("Let me check."));
    // One whole call: first (and only) fragment has id, type, name and the complete arguments.
    let calls = chunks[1].choices[0].delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.index, 0);
    assert_eq!(c.kind.as_deref(), Some("function"));
    let id = c.id.as_deref().unwrap();
    assert!(id.starts_with("call_") && id.ends_with("__thought__U0lH"), "{id}");
    assert_eq!(id.len(), "call_".len() + 16 + "__thought__U0lH".len());
    let f = c.function.as_ref().unwrap();
    assert_eq!(f.name.as_deref(), Some("get_weather"));
    let args: Value = serde_json::from_str(f.arguments.as_deref().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris", "days": [1, 2]}));
    assert_eq!(chunks[1].choices[0].finish_reason, None);
}

#[test]
fn conformance_3_several_calls_per_chunk_get_stable_indices() {
    // Gemini cannot interleave argument fragments; two calls in one chunk are the closest case.
    let (chunks, _) = run_all_splits(&sse("tools.sse"));
    let calls = chunks[2].choices[0].delta.tool_calls.as_ref().unwrap();
    type Summary<'a> = (u32, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let summary: Vec<Summary<'_>> = calls
        .iter()
        .map(|c| {
            let f = c.function.as_ref().unwrap();
            (c.index, c.id.as_deref(), f.name.as_deref(), f.arguments.as_deref())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, Some("fc-2"), Some("get_time"), Some("{}")),
            (2, Some("fc-3"), Some("get_weather"), Some("{\"city\":\"Oslo\"}")),
        ]
    );
    assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    let resp = acc.finish();
    let names: Vec<&str> = resp.choices[0]
        .message
        .tool_calls
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.function.name.as_str())
        .collect();
    assert_eq!(names, ["get_weather", "get_time", "get_weather"]);
}

#[test]
fn conformance_4_usage_only_at_the_end() {
    let (chunks, err) = run_all_splits(&sse("usage_at_end.sse"));
    assert!(err.is_none(), "{err:?}");
    assert_one_id(&chunks);
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let u = last.usage.as_ref().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (7, 2, 9));
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.usage.is_none()));
    // The last content chunk has the mapped finish reason.
    assert_eq!(chunks[chunks.len() - 2].choices[0].finish_reason, Some(FinishReason::Length));

    // Usage from the tools stream keeps core's invariant (cached inside prompt, thoughts inside completion).
    let (chunks, _) = run_all_splits(&sse("tools.sse"));
    let u = chunks.last().unwrap().usage.as_ref().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (30, 125, 155));
    assert_eq!((u.cached_tokens(), u.reasoning_tokens()), (20, 100));
}

#[test]
fn conformance_5_error_mid_stream_is_typed() {
    let (chunks, err) = run_all_splits(&sse("error_mid_stream.sse"));
    let err = err.expect("an error");
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(err.provider.as_deref(), Some("gemini"));
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("Partial "));

    // A blocked prompt mid-stream is a content-filter error.
    let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, \"responseId\": \"b\"}\n\n";
    let (_, err) = run_all_splits(blocked);
    assert_eq!(err.unwrap().kind, ErrorKind::ContentFiltered);
}

#[test]
fn conformance_6_empty_stream_is_a_decode_error() {
    let (chunks, err) = run_all_splits(b"");
    assert!(chunks.is_empty());
    assert_eq!(err.unwrap().kind, ErrorKind::Decode);
    // Only comments and blank lines: still nothing.
    let (_, err) = run_all_splits(b": keep-alive\n\n\n");
    assert_eq!(err.unwrap().kind, ErrorKind::Decode);
}

#[test]
fn conformance_7_utf8_split_across_chunks() {
    let bytes = sse("text.sse");
    // Split inside the 4-byte 🌍 and inside the 2-byte ö explicitly (run_all_splits covers every point too).
    let globe = bytes.windows(4).position(|w| w == "🌍".as_bytes()).unwrap();
    let umlaut = bytes.windows(2).position(|w| w == "ö".as_bytes()).unwrap();
    let pieces: Vec<&[u8]> = vec![
        &bytes[..umlaut + 1],
        &bytes[umlaut + 1..globe + 2],
        &bytes[globe + 2..globe + 3],
        &bytes[globe + 3..],
    ];
    let (chunks, err) = run_decoder(decoder("gemini", "gemini-2.5-flash"), &pieces);
    assert!(err.is_none());
    let mut acc = StreamAccumulator::new();
    chunks.iter().for_each(|c| acc.push(c));
    assert_eq!(acc.finish().first_text(), Some("Hello, wörld 🌍!"));
    run_all_splits(&bytes);
}

#[test]
fn conformance_8_cut_without_terminator_is_a_decode_error() {
    let (chunks, err) = run_all_splits(&sse("cut.sse"));
    assert_eq!(chunks.len(), 2, "what arrived was decoded");
    let err = err.unwrap();
    assert_eq!(err.kind, ErrorKind::Decode);
    assert!(err.message.contains("finishReason"), "{}", err.message);

    // Cut in the middle of the final event's JSON.
    let text = sse("text.sse");
    let cut = &text[..text.len() - 30];
    let (_, err) = run_all_splits(cut);
    assert_eq!(err.unwrap().kind, ErrorKind::Decode);

    // The last event without its blank line still counts (a complete final event).
    let unterminated = &text[..text.len() - 4];
    let (chunks, err) = run_all_splits(unterminated);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks.last().unwrap().usage.as_ref().unwrap().total_tokens, 9);
}

#[test]
fn bad_input_gives_typed_errors() {
    for (name, bytes) in [
        ("malformed json", &b"data: {\"candidates\": [\n\n"[..]),
        ("not json", b"data: hello\n\n"),
        ("non utf8", b"data: {\"a\": \"\xff\xfe\"}\n\n"),
        ("wrong shape", b"data: {\"candidates\": 5}\n\n"),
        ("html", b"<html><body>502</body></html>"),
    ] {
        let (_, err) = run_all_splits(bytes);
        assert_eq!(err.unwrap_or_else(|| panic!("{name}: no error")).kind, ErrorKind::Decode, "{name}");
    }
    // Unknown fields and event names are skipped.
    let odd = b"event: something\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"executableCode\": {}}, {\"text\": \"x\"}]}, \"finishReason\": \"STOP\", \"newField\": 1}], \"responseId\": \"r\"}\n\n";
    let (chunks, err) = run_all_splits(odd);
    assert!(err.is_none());
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("x"));
}

#[test]
fn decoder_stops_after_an_error() {
    let bytes = sse("error_mid_stream.sse");
    let mut dec = decoder("vertex_ai", "gemini-2.5-pro");
    let mut out = Vec::new();
    assert!(dec.decode(&bytes, &mut out).is_err());
    // Later bytes and EOF add nothing and raise nothing more.
    assert!(dec.decode(b"data: {}\n\n", &mut out).is_ok());
    assert!(dec.finish(&mut out).is_ok());
    assert_eq!(out.len(), 1);
}
