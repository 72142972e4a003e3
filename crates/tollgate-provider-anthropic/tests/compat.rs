//! The reverse direction used by the proxy's `/v1/messages` endpoint: Anthropic request →
//! canonical → Anthropic (through the adapter) must arrive unchanged; canonical responses and
//! stream chunks must re-encode into Anthropic responses and events that decode back to the same
//! thing.

// Helpers outside #[test] functions may unwrap: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::{Adapter, ChatChunk, ChatResponse, Secret, StreamDecoder, UpstreamConfig};
use tollgate_provider_anthropic::wire::{MessagesRequest, MessagesResponse};
use tollgate_provider_anthropic::{
    AnthropicAdapter, AnthropicEventEncoder, AnthropicStreamDecoder, chat_response_to_messages,
    message_to_chat_response, messages_to_chat_request,
};

#[test]
fn anthropic_request_survives_the_round_trip_through_canonical() {
    let original = json!({
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look at these."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.org/a.jpg"}, "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}, "title": "notes"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris", "days": [1, 2]}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}], "is_error": false},
                {"type": "text", "text": "Thanks"}
            ]}
        ],
        "max_tokens": 2048,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_k": 40,
        "metadata": {"user_id": "u-1"},
        "tools": [
            {"name": "weather", "description": "Weather", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stream": true,
        "container": "container_1"
    });
    let parsed: MessagesRequest = serde_json::from_value(original.clone()).unwrap();
    let canonical = messages_to_chat_request(&parsed);
    assert!(canonical.wants_stream_usage());
    let mut cfg = UpstreamConfig::new("claude-sonnet-4-5");
    cfg.api_key = Some(Secret::new("k"));
    let built = AnthropicAdapter::new().chat_request(&canonical, &cfg).unwrap();
    let body: Value = serde_json::from_slice(built.body()).unwrap();
    assert_eq!(body, original);
}

#[test]
fn string_content_and_tool_choices_map_to_canonical() {
    let parsed: MessagesRequest = serde_json::from_value(json!({
        "model": "claude-haiku-4-5", "max_tokens": 10, "system": "sys",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "custom", "name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"}
    }))
    .unwrap();
    let c = serde_json::to_value(messages_to_chat_request(&parsed)).unwrap();
    assert_eq!(
        c,
        json!({"model": "claude-haiku-4-5", "max_tokens": 10,
               "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
               "tool_choice": {"type": "function", "function": {"name": "f"}}})
    );
}

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn anthropic_response_survives_the_round_trip_through_canonical() {
    for case in ["reasoning", "tools_round_trip", "parallel_tools", "cached_tokens", "text"] {
        let f: Value = serde_json::from_slice(&fixture(&format!("chat/{case}.json"))).unwrap();
        let mut original = f["upstream_response"]["body"].clone();
        let parsed: MessagesResponse = serde_json::from_value(original.clone()).unwrap();
        let canonical: ChatResponse = message_to_chat_response(&parsed, 0);
        let back = serde_json::to_value(chat_response_to_messages(&canonical)).unwrap();
        // What does not survive, by design: the matched stop sequence, `service_tier`, and
        // adjacent text blocks, which are joined.
        original["stop_sequence"] = Value::Null;
        original["usage"].as_object_mut().unwrap().remove("service_tier");
        if case == "text" {
            original["content"] = json!([{"type": "text", "text": "Hi! My name is Claude."}]);
        }
        assert_eq!(back, original, "{case}");
    }
}

#[test]
fn canonical_response_from_another_provider_becomes_an_anthropic_message() {
    let resp: ChatResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
            "content": "Hello", "reasoning_content": "think",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                  "prompt_tokens_details": {"cached_tokens": 4}}
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(chat_response_to_messages(&resp)).unwrap(),
        json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
               "content": [{"type": "thinking", "thinking": "think", "signature": ""},
                           {"type": "text", "text": "Hello"},
                           {"type": "tool_use", "id": "call_1", "name": "f", "input": {"_raw_arguments": "not json"}}],
               "stop_reason": "max_tokens", "stop_sequence": null,
               "usage": {"input_tokens": 6, "output_tokens": 2, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0}})
    );
}

fn decode(body: &[u8]) -> Vec<ChatChunk> {
    let mut d = AnthropicStreamDecoder::new("m", 7);
    let mut out = Vec::new();
    d.decode(body, &mut out).unwrap();
    d.finish(&mut out).unwrap();
    out
}

/// Chunks decoded from an Anthropic stream, re-encoded as Anthropic events, decode to the same
/// chunks: the encoder speaks the same dialect the decoder reads.
#[test]
fn event_encoder_round_trips_every_stream_fixture() {
    for case in [
        "text",
        "tool_call_split",
        "interleaved_tools",
        "usage_at_end",
        "thinking",
        "json_mode",
        "utf8_split",
    ] {
        let chunks = decode(&fixture(&format!("stream/{case}.sse")));
        let mut enc = AnthropicEventEncoder::new();
        let mut bytes = Vec::new();
        for c in &chunks {
            enc.push(c, &mut bytes);
        }
        enc.finish(&mut bytes);
        enc.finish(&mut bytes); // idempotent
        assert_eq!(decode(&bytes), chunks, "{case}:\n{}", String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn event_encoder_writes_anthropic_event_names() {
    let chunks = decode(&fixture("stream/tool_call_split.sse"));
    let mut enc = AnthropicEventEncoder::new();
    let mut bytes = Vec::new();
    for c in &chunks {
        enc.push(c, &mut bytes);
    }
    enc.finish(&mut bytes);
    let text = String::from_utf8(bytes).unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}
