//! The streaming conformance grid. Every case runs against `tests/fixtures/streams/<case>.sse`,
//! fed whole, byte by byte and split in two at every byte boundary (all must agree), and is
//! compared with `<case>.expected.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_core::chat::StreamAccumulator;

fn accumulate(chunks: &[Value]) -> tollgate_core::ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(&serde_json::from_value(c.clone()).unwrap());
    }
    acc.finish()
}

fn last_choice_chunk(chunks: &[Value]) -> &Value {
    chunks.iter().rev().find(|c| !c["choices"].as_array().unwrap().is_empty()).unwrap()
}

#[test]
fn conformance_text() {
    let (chunks, err) = check_stream("text");
    assert!(err.is_none());
    let r = accumulate(&chunks);
    assert_eq!(r.id, "29f14a5a-11de-4cae-9800-25e4747408ea");
    assert_eq!(r.model, MODEL);
    assert_eq!(r.first_text(), Some("A large language model."));
    assert_eq!(last_choice_chunk(&chunks)["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
}

#[test]
fn conformance_tool_call_split_arguments() {
    let (chunks, err) = check_stream("tool_call_split_args");
    assert!(err.is_none());
    let r = accumulate(&chunks);
    let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "get_weather_p1t92w7gfgq7");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, "{\n    \"location\": \"Madrid\"\n}");
    assert_eq!(r.choices[0].message.reasoning_content.as_deref(), Some("I will search."));
    assert_eq!(r.choices[0].finish_reason, Some(tollgate_core::FinishReason::ToolCalls));
    // Many argument fragments, each its own delta.
    let fragments = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"].get("name").is_none())
        .filter(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .count();
    assert_eq!(fragments, 8);
    assert_eq!(r.usage.unwrap().prompt_tokens, 37);
}

/// Cohere documents parallel calls as consecutive start/delta/end runs, each event naming its
/// call by `index`; the decoder keys on that index, so truly interleaved runs decode too.
#[test]
fn conformance_interleaved_tool_calls() {
    let (chunks, err) = check_stream("interleaved_tools");
    assert!(err.is_none());
    let calls = accumulate(&chunks).choices[0].message.tool_calls.clone().unwrap();
    assert_eq!(calls[0].id, "call_a");
    assert_eq!(calls[0].function.arguments, "{\"location\": \"Madrid\"}");
    assert_eq!(calls[1].id, "call_b");
    assert_eq!(calls[1].function.name, "get_time");
    assert_eq!(calls[1].function.arguments, "{\"tz\": \"CET\"}");

    let (chunks, err) = check_stream("parallel_tools_sequential");
    assert!(err.is_none());
    let calls = accumulate(&chunks).choices[0].message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].function.arguments, "{\"location\": \"Brasilia\"}");
}

#[test]
fn conformance_usage_only_at_end() {
    let (chunks, err) = check_stream("usage_at_end");
    assert!(err.is_none());
    let (last, rest) = chunks.split_last().unwrap();
    assert!(rest.iter().all(|c| c.get("usage").is_none()), "usage appears only on the last chunk");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], json!({"prompt_tokens": 40, "completion_tokens": 60, "total_tokens": 100}));
    let r = accumulate(&chunks);
    assert_eq!(r.choices[0].message.reasoning_content.as_deref(), Some("Let me think."));
    assert_eq!(r.first_text(), Some("Three."));
    assert_eq!(r.choices[0].finish_reason, Some(tollgate_core::FinishReason::Length));
}

#[test]
fn conformance_error_mid_stream() {
    let (chunks, err) = check_stream("error_mid_stream");
    let err = err.expect("typed error");
    assert_eq!(err["kind"], "ServerError");
    assert_eq!(err["message"], "internal error while generating");
    assert_eq!(accumulate(&chunks).first_text(), Some("Partial"));

    let (_, err) = check_stream("error_object_mid_stream");
    assert_eq!(err.expect("typed error")["kind"], "ServerError");
}

#[test]
fn conformance_empty_stream() {
    let (chunks, err) = check_stream("empty");
    assert!(chunks.is_empty());
    assert_eq!(err.expect("decode error")["kind"], "Decode");
}

#[test]
fn conformance_utf8_split_across_chunks() {
    let bytes = read("streams/utf8_split.sse");
    assert!(bytes.iter().any(|b| *b >= 0xf0), "fixture contains a 4-byte code point");
    let (chunks, err) = check_stream("utf8_split");
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).first_text(), Some("Grüße, 🌍 日本語"));
}

#[test]
fn conformance_cut_without_terminator() {
    let (chunks, err) = check_stream("cut_without_terminator");
    assert_eq!(accumulate(&chunks).first_text(), Some("Hello"));
    let err = err.expect("decode error");
    assert_eq!(err["kind"], "Decode");
    assert_eq!(err["provider"], "cohere");
}

#[test]
fn unknown_events_and_citations_are_skipped() {
    let (chunks, err) = check_stream("unknown_and_citation_events_skipped");
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).first_text(), Some("It is 24°C."));
}

#[test]
fn malformed_json_and_non_utf8_are_decode_errors() {
    let (_, err) = check_stream("malformed_json");
    assert_eq!(err.expect("decode error")["kind"], "Decode");
    let (_, err) = check_stream("non_utf8");
    assert_eq!(err.expect("decode error")["kind"], "Decode");
}

#[test]
fn decoder_is_done_after_message_end_and_ignores_trailing_bytes() {
    let a = adapter();
    let req = tollgate_core::ChatRequest::new(MODEL, vec![]);
    let mut dec = a.chat_stream_decoder(&req, &config(None));
    let mut out = Vec::new();
    dec.decode(&read("streams/text.sse"), &mut out).unwrap();
    assert!(dec.is_done());
    let n = out.len();
    dec.decode(b"data: garbage\n\n", &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    assert_eq!(out.len(), n);
}

#[test]
fn a_stream_without_message_start_gets_a_generated_id() {
    let bytes = b"data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hi\"}}}}\n\n\
data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\n";
    let (chunks, err) = decode_every_split(bytes);
    assert!(err.is_none());
    assert!(chunks.iter().all(|c| c["id"] == "chatcmpl-test"));
    assert_eq!(chunks.len(), 2, "no usage chunk without usage");

    let a = adapter();
    let req = tollgate_core::ChatRequest::new(MODEL, vec![]);
    let mut dec = a.chat_stream_decoder(&req, &config(None));
    let mut out = Vec::new();
    dec.decode(bytes, &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    assert!(out[0].id.starts_with("chatcmpl-") && out[0].id.len() == 25, "{}", out[0].id);
    assert!(out.iter().all(|c| c.id == out[0].id));
}
