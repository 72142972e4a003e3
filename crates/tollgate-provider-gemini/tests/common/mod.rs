#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tollgate_core::{Adapter, ChatChunk, ProviderError, Secret, StreamDecoder, UpstreamConfig};

pub fn fixture_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(sub)
}

pub fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Builds the adapter and config a fixture's `cfg` block describes.
pub fn adapter_and_cfg(cfg: &Value) -> (Arc<dyn Adapter>, UpstreamConfig) {
    let provider = cfg["provider"].as_str().unwrap();
    let adapter = tollgate_provider_gemini::adapter(provider).unwrap();
    let mut c = UpstreamConfig::new(cfg["model"].as_str().unwrap());
    if let Some(k) = cfg.get("api_key").and_then(Value::as_str) {
        c.api_key = Some(Secret::new(k));
    }
    if let Some(k) = cfg.get("bearer_token").and_then(Value::as_str) {
        c.bearer_token = Some(Secret::new(k));
    }
    if let Some(b) = cfg.get("api_base").and_then(Value::as_str) {
        c.api_base = Some(b.to_owned());
    }
    if let Some(Value::Object(o)) = cfg.get("options") {
        for (k, v) in o {
            c.options.insert(k.clone(), v.as_str().unwrap().to_owned());
        }
    }
    if let Some(Value::Array(hs)) = cfg.get("headers") {
        for h in hs {
            c.headers.push((h[0].as_str().unwrap().to_owned(), h[1].as_str().unwrap().to_owned()));
        }
    }
    if let Some(Value::Object(o)) = cfg.get("extra_body") {
        c.extra_body = o.clone();
    }
    c.drop_params = cfg.get("drop_params").and_then(Value::as_bool).unwrap_or(false);
    (adapter, c)
}

/// Checks a built upstream request against a fixture's `upstream_request` block.
pub fn assert_request(name: &str, built: &http::Request<bytes::Bytes>, want: &Value) {
    assert_eq!(built.method().as_str(), want["method"].as_str().unwrap(), "{name}: method");
    assert_eq!(built.uri().to_string(), want["url"].as_str().unwrap(), "{name}: url");
    if let Some(Value::Object(hs)) = want.get("headers") {
        for (k, v) in hs {
            let got = built.headers().get(k).map(|h| h.to_str().unwrap().to_owned());
            assert_eq!(got.as_deref(), v.as_str(), "{name}: header {k}");
        }
    }
    if let Some(Value::Array(absent)) = want.get("absent_headers") {
        for k in absent {
            assert!(built.headers().get(k.as_str().unwrap()).is_none(), "{name}: header {k} must be absent");
        }
    }
    let body: Value = serde_json::from_slice(built.body()).unwrap();
    pretty_assertions::assert_eq!(body, want["body"], "{name}: body");
}

/// Feeds `bytes` to a fresh decoder in the given pieces and finishes it.
pub fn run_decoder(
    mut dec: Box<dyn StreamDecoder<ChatChunk>>,
    pieces: &[&[u8]],
) -> (Vec<ChatChunk>, Option<ProviderError>) {
    let mut out = Vec::new();
    for p in pieces {
        if let Err(e) = dec.decode(p, &mut out) {
            return (out, Some(e));
        }
    }
    match dec.finish(&mut out) {
        Ok(()) => (out, None),
        Err(e) => (out, Some(e)),
    }
}

/// The chunks as JSON with `created` zeroed (it comes from the clock when the stream has no
/// `createTime`).
pub fn chunks_json(chunks: &[ChatChunk]) -> Value {
    let mut v = serde_json::to_value(chunks).unwrap();
    for c in v.as_array_mut().unwrap() {
        c["created"] = Value::from(0);
    }
    v
}
