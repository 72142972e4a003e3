//! The streaming conformance grid, run against Ollama's NDJSON bytes
//! (`tests/fixtures/streams/<case>.ndjson`): every case fed whole, byte by byte and split in two
//! at every byte boundary (all must agree), and compared with `<case>.expected.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_core::FinishReason;
use tollgate_core::chat::StreamAccumulator;

fn accumulate(chunks: &[Value]) -> tollgate_core::ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(&serde_json::from_value(c.clone()).unwrap());
    }
    acc.finish()
}

#[test]
fn conformance_text() {
    let (chunks, err) = check_stream("text");
    assert!(err.is_none());
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    // `created` comes from the first line's `created_at` (08:52:19 at UTC-7).
    assert_eq!(chunks[0]["created"], 1_691_164_339);
    let r = accumulate(&chunks);
    assert_eq!(r.id, ID);
    assert_eq!(r.first_text(), Some("The sky is blue."));
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Stop));
}

/// Ollama never splits a tool call: each arrives whole, with its arguments as a JSON object. The
/// split-arguments case is therefore native-whole; what must hold is that a whole call becomes
/// one correct OpenAI delta (id, type, name and the complete arguments string).
#[test]
fn conformance_tool_call_split_arguments_native_whole() {
    let (chunks, err) = check_stream("tool_call_whole");
    assert!(err.is_none());
    let deltas: Vec<&Value> =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array()).flatten().collect();
    assert_eq!(
        deltas,
        [&json!({"index": 0, "id": "call_test_0", "type": "function",
            "function": {"name": "get_current_weather", "arguments": "{\"format\":\"celsius\",\"location\":\"Paris, FR\"}"}})]
    );
    let r = accumulate(&chunks);
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    let args: Value =
        serde_json::from_str(&r.choices[0].message.tool_calls.as_ref().unwrap()[0].function.arguments)
            .unwrap();
    assert_eq!(args, json!({"format": "celsius", "location": "Paris, FR"}));
}

/// Ollama cannot interleave (calls arrive whole); several calls, in one line or across lines,
/// get consecutive, stable indices.
#[test]
fn conformance_interleaved_tool_calls_native_whole() {
    let (chunks, err) = check_stream("parallel_tools");
    assert!(err.is_none());
    let calls = accumulate(&chunks).choices[0].message.tool_calls.clone().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (calls[0].id.as_str(), calls[0].function.arguments.as_str()),
        ("call_test_0", "{\"location\":\"Paris\"}")
    );
    assert_eq!((calls[1].id.as_str(), calls[1].function.name.as_str()), ("call_up_1", "get_time"));
    assert_eq!(
        (calls[2].id.as_str(), calls[2].function.arguments.as_str()),
        ("call_test_2", "{\"location\":\"Toronto\"}")
    );
}

#[test]
fn conformance_usage_only_at_end() {
    let (chunks, err) = check_stream("usage_at_end");
    assert!(err.is_none());
    let (last, rest) = chunks.split_last().unwrap();
    assert!(rest.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], json!({"prompt_tokens": 18, "completion_tokens": 120, "total_tokens": 138}));
    let r = accumulate(&chunks);
    assert_eq!(r.choices[0].message.reasoning_content.as_deref(), Some("Let me think."));
    assert_eq!(r.first_text(), Some("Three."));
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::Length));
}

#[test]
fn conformance_error_mid_stream() {
    let (chunks, err) = check_stream("error_mid_stream");
    let err = err.expect("typed error");
    assert_eq!(err["kind"], "ServerError");
    assert_eq!(err["provider"], "ollama");
    assert_eq!(accumulate(&chunks).first_text(), Some("Partial"));
    let (_, err) = check_stream("model_not_found_line");
    assert_eq!(err.expect("typed error")["kind"], "NotFound");
}

#[test]
fn conformance_empty_stream() {
    let (chunks, err) = check_stream("empty");
    assert!(chunks.is_empty());
    assert_eq!(err.expect("decode error")["kind"], "Decode");
}

#[test]
fn conformance_utf8_split_across_chunks() {
    assert!(read("streams/utf8_split.ndjson").iter().any(|b| *b >= 0xf0));
    let (chunks, err) = check_stream("utf8_split");
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).first_text(), Some("Grüße, 🌍 日本語"));
}

#[test]
fn conformance_cut_without_terminator() {
    for name in ["cut_mid_line", "cut_at_line_boundary"] {
        let (chunks, err) = check_stream(name);
        assert_eq!(accumulate(&chunks).first_text().map(|t| &t[..5]), Some("Hello"), "{name}");
        assert_eq!(err.expect("decode error")["kind"], "Decode", "{name}");
    }
}

#[test]
fn a_complete_last_line_without_newline_still_terminates() {
    let (chunks, err) = check_stream("final_line_without_newline");
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).usage.unwrap().total_tokens, 308);
}

#[test]
fn blank_lines_and_crlf_are_tolerated() {
    let (chunks, err) = check_stream("blank_lines_and_crlf");
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).first_text(), Some("Hi"));
}

#[test]
fn malformed_json_and_non_utf8_are_decode_errors() {
    let (_, err) = check_stream("malformed_json");
    assert_eq!(err.expect("decode error")["kind"], "Decode");
    let (_, err) = check_stream("non_utf8");
    assert_eq!(err.expect("decode error")["kind"], "Decode");
}

#[test]
fn adapter_streams_share_one_fresh_id() {
    let a = adapter();
    let req = tollgate_core::ChatRequest::new(MODEL, vec![]);
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let mut dec = a.chat_stream_decoder(&req, &config(None));
            let mut out = Vec::new();
            dec.decode(&read("streams/text.ndjson"), &mut out).unwrap();
            assert!(dec.is_done());
            dec.finish(&mut out).unwrap();
            assert!(out.iter().all(|c| c.id == out[0].id));
            out[0].id.clone()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
}
