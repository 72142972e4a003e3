//! Golden fixtures: for each case, the canonical request and config, the exact upstream request
//! the adapter must build (method, URL, every header, JSON body), an upstream response, and the
//! canonical result it must parse into — all compared value for value.
//!
//! Fixture layout (`tests/fixtures/chat/<case>.json`):
//! `request` (ChatRequest JSON), `config` ({model, api_key?, bearer_token?, api_base?,
//! api_version?, max_output_tokens?, headers?, extra_body?, drop_params?}), `upstream_request`
//! ({method, url, headers, body}), `upstream_response` ({status, headers?, body}) and `expected`
//! (ChatResponse JSON; `created` is checked to be a recent timestamp and then compared as 0).

// Test helpers outside #[test] functions may unwrap: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::{Adapter, ChatRequest, RawResponse, Secret, UpstreamConfig};
use tollgate_provider_anthropic::AnthropicAdapter;

fn fixture(path: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn config(v: &Value) -> UpstreamConfig {
    let mut cfg = UpstreamConfig::new(v["model"].as_str().unwrap());
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    cfg.api_key = s("api_key").map(Secret::new);
    cfg.bearer_token = s("bearer_token").map(Secret::new);
    cfg.api_base = s("api_base");
    cfg.api_version = s("api_version");
    cfg.max_output_tokens = v.get("max_output_tokens").and_then(Value::as_u64).map(|n| n as u32);
    cfg.drop_params = v.get("drop_params").and_then(Value::as_bool).unwrap_or(false);
    if let Some(h) = v.get("headers").and_then(Value::as_array) {
        for pair in h {
            cfg.headers.push((pair[0].as_str().unwrap().into(), pair[1].as_str().unwrap().into()));
        }
    }
    if let Some(Value::Object(m)) = v.get("extra_body") {
        cfg.extra_body = m.clone();
    }
    cfg
}

fn request_as_json(r: &http::Request<bytes::Bytes>) -> Value {
    let mut headers = serde_json::Map::new();
    for (k, v) in r.headers() {
        assert!(!headers.contains_key(k.as_str()), "header {k} sent twice");
        headers.insert(k.as_str().to_owned(), Value::String(v.to_str().unwrap().to_owned()));
    }
    json!({
        "method": r.method().as_str(),
        "url": r.uri().to_string(),
        "headers": headers,
        "body": serde_json::from_slice::<Value>(r.body()).unwrap(),
    })
}

fn raw_response(v: &Value) -> RawResponse {
    let status = http::StatusCode::from_u16(v["status"].as_u64().unwrap() as u16).unwrap();
    let mut headers = http::HeaderMap::new();
    if let Some(Value::Object(h)) = v.get("headers") {
        for (k, val) in h {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                val.as_str().unwrap().parse().unwrap(),
            );
        }
    }
    let body = match &v["body"] {
        Value::String(s) => s.clone().into_bytes(),
        other => serde_json::to_vec(other).unwrap(),
    };
    RawResponse::new(status, headers, body)
}

fn run_case(name: &str) {
    let f = fixture(&format!("chat/{name}.json"));
    let adapter = AnthropicAdapter::new();
    let req: ChatRequest = serde_json::from_value(f["request"].clone()).unwrap();
    let cfg = config(&f["config"]);
    let built = adapter.chat_request(&req, &cfg).unwrap();
    assert_eq!(request_as_json(&built), f["upstream_request"], "{name}: upstream request");

    let resp = raw_response(&f["upstream_response"]);
    let parsed = adapter.chat_response(&resp).unwrap();
    assert!(parsed.created > 1_700_000_000, "{name}: created is a current timestamp");
    let mut got = serde_json::to_value(&parsed).unwrap();
    got["created"] = json!(0);
    assert_eq!(got, f["expected"], "{name}: parsed response");
}

#[test]
fn golden_text() {
    run_case("text");
}

#[test]
fn golden_system() {
    run_case("system");
}

#[test]
fn golden_multi_turn() {
    run_case("multi_turn");
}

#[test]
fn golden_tools_round_trip() {
    run_case("tools_round_trip");
}

#[test]
fn golden_parallel_tools() {
    run_case("parallel_tools");
}

#[test]
fn golden_images() {
    run_case("images");
}

#[test]
fn golden_json_schema() {
    run_case("json_schema");
}

#[test]
fn golden_reasoning() {
    run_case("reasoning");
}

#[test]
fn golden_cached_tokens() {
    run_case("cached_tokens");
}

/// Every documented error type (plus the non-envelope and 200-with-error cases), from
/// `tests/fixtures/errors.json`: `{name, response: {status, headers?, body}, via: "error_response"
/// | "chat_response", expected: {kind, status, code, retry_after_ms, message}}`.
#[test]
fn golden_errors() {
    let adapter = AnthropicAdapter::new();
    let cases = fixture("errors.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let resp = raw_response(&case["response"]);
        let err = match case["via"].as_str().unwrap() {
            "error_response" => adapter.error_response(&resp),
            _ => adapter.chat_response(&resp).unwrap_err(),
        };
        let got = json!({
            "kind": format!("{:?}", err.kind),
            "status": err.status,
            "code": err.code,
            "retry_after_ms": err.retry_after.map(|d| d.as_millis() as u64),
            "message": err.message,
            "provider": err.provider,
        });
        assert_eq!(got, case["expected"], "{name}");
    }
}
