//! Shared helpers for the fixture-driven tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tollgate_core::{Adapter, ChatRequest, ProviderError, RawResponse, Secret, UpstreamConfig};

pub const MODEL: &str = "llama3.2";
/// The id fixtures use for responses and streams (the adapter generates random ones).
pub const ID: &str = "chatcmpl-test";

pub fn adapter() -> Arc<dyn Adapter> {
    tollgate_provider_ollama::adapter("ollama").expect("ollama adapter")
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("reading fixture {rel}: {e}"))
}

pub fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

/// Writes `value` as the fixture when `BLESS=1` (used once to create expectations, which are
/// then reviewed by hand and committed); otherwise does nothing.
pub fn bless(rel: &str, value: &Value) -> bool {
    if std::env::var("BLESS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        std::fs::write(fixture_path(rel), text).unwrap();
        return true;
    }
    false
}

/// The config every fixture uses unless its `config` object overrides fields.
pub fn config(over: Option<&Value>) -> UpstreamConfig {
    let mut cfg = UpstreamConfig::new(MODEL);
    if let Some(o) = over {
        if let Some(m) = o.get("model").and_then(Value::as_str) {
            cfg.model = m.to_owned();
        }
        if let Some(b) = o.get("api_base").and_then(Value::as_str) {
            cfg.api_base = Some(b.to_owned());
        }
        if let Some(d) = o.get("drop_params").and_then(Value::as_bool) {
            cfg.drop_params = d;
        }
        if let Some(k) = o.get("api_key").and_then(Value::as_str) {
            cfg.api_key = Some(Secret::new(k));
        }
    }
    cfg
}

/// The parts of a built request a fixture pins down.
pub fn upstream_json(req: &http::Request<bytes::Bytes>) -> Value {
    let mut headers = serde_json::Map::new();
    for name in ["content-type", "accept", "authorization"] {
        if let Some(v) = req.headers().get(name) {
            headers.insert(name.into(), Value::String(v.to_str().unwrap().to_owned()));
        }
    }
    let body: Value = serde_json::from_slice(req.body()).expect("request body is JSON");
    json!({
        "method": req.method().as_str(),
        "url": req.uri().to_string(),
        "headers": headers,
        "body": body,
    })
}

pub fn error_json(e: &ProviderError) -> Value {
    json!({
        "kind": format!("{:?}", e.kind),
        "status": e.status,
        "message": e.message,
        "code": e.code,
        "param": e.param,
        "retry_after_ms": e.retry_after.map(|d| d.as_millis() as u64),
        "provider": e.provider,
    })
}

pub fn chat_request(v: &Value) -> ChatRequest {
    serde_json::from_value(v.clone()).expect("fixture request is a valid ChatRequest")
}

pub fn raw(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> RawResponse {
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    RawResponse::new(http::StatusCode::from_u16(status).unwrap(), h, body)
}

/// Decodes a stream fed in the given pieces: the chunks (as JSON) and the error, if any.
pub fn decode_pieces(pieces: &[&[u8]]) -> (Vec<Value>, Option<Value>) {
    use tollgate_core::StreamDecoder;
    let mut dec = tollgate_provider_ollama::OllamaStreamDecoder::with_id("ollama", MODEL, ID);
    let mut out = Vec::new();
    for p in pieces {
        if let Err(e) = dec.decode(p, &mut out) {
            return (to_values(&out), Some(error_json(&e)));
        }
    }
    let res = dec.finish(&mut out);
    (to_values(&out), res.err().map(|e| error_json(&e)))
}

fn to_values(chunks: &[tollgate_core::ChatChunk]) -> Vec<Value> {
    chunks.iter().map(|c| serde_json::to_value(c).unwrap()).collect()
}

/// Runs a stream whole, byte by byte, and split in two at every byte boundary; asserts every
/// split yields the same result and returns it.
pub fn decode_every_split(bytes: &[u8]) -> (Vec<Value>, Option<Value>) {
    let whole = decode_pieces(&[bytes]);
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_pieces(&singles), whole, "byte-by-byte feeding differs from whole");
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(decode_pieces(&[a, b]), whole, "split at byte {i} differs from whole");
    }
    whole
}

/// Checks a stream fixture `streams/<name>.sse` against `streams/<name>.expected.json` under
/// every split, plus the chunk invariants every stream must keep.
pub fn check_stream(name: &str) -> (Vec<Value>, Option<Value>) {
    let bytes = read(&format!("streams/{name}.ndjson"));
    let (chunks, err) = decode_every_split(&bytes);
    let actual = json!({"chunks": chunks, "error": err});
    let rel = format!("streams/{name}.expected.json");
    if !bless(&rel, &actual) {
        pretty_assertions::assert_eq!(actual, read_json(&rel), "stream fixture {name}");
    }
    assert_invariants(&chunks);
    (chunks, err)
}

/// One id for all chunks; tool-call deltas in OpenAI's shape; usage only on a `choices: []` chunk.
pub fn assert_invariants(chunks: &[Value]) {
    if let Some(first) = chunks.first() {
        for c in chunks {
            assert_eq!(c["id"], first["id"], "all chunks share one id");
            assert_eq!(c["object"], "chat.completion.chunk");
            if c.get("usage").is_some() {
                assert_eq!(c["choices"], json!([]), "usage rides on a choice-less chunk");
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in chunks {
        for choice in c["choices"].as_array().unwrap() {
            for tc in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let idx = tc["index"].as_u64().unwrap();
                if seen.insert(idx) {
                    assert!(tc["id"].is_string() && tc["type"] == "function", "first fragment: {tc}");
                    assert!(tc["function"]["name"].is_string(), "first fragment names the function: {tc}");
                } else {
                    assert!(tc.get("id").is_none() && tc["function"].get("name").is_none(), "later: {tc}");
                    assert!(tc["function"]["arguments"].is_string());
                }
            }
        }
    }
}
