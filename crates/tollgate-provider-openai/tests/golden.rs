//! Golden fixtures: the requests the adapters build, the responses, streams and error bodies they
//! parse, all compared value-for-value with files under `tests/fixtures/`.

// Test helpers fail loudly on a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse, EmbeddingVector};
use tollgate_core::{Adapter, ProviderError, RawResponse, Secret, StreamDecoder, UpstreamConfig};
use tollgate_provider_openai::adapter;

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir)
}

/// Every `*.{ext}` file of a fixture directory, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn name(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

fn adapter_for(name: &str) -> std::sync::Arc<dyn Adapter> {
    adapter(name).unwrap_or_else(|| panic!("no adapter `{name}`"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Cfg {
    model: String,
    api_key: Option<String>,
    api_base: Option<String>,
    api_version: Option<String>,
    bearer_token: Option<String>,
    organization: Option<String>,
    headers: Vec<(String, String)>,
    extra_body: Map<String, Value>,
    drop_params: bool,
}

impl Cfg {
    fn upstream(self) -> UpstreamConfig {
        let mut c = UpstreamConfig::new(self.model);
        c.api_key = self.api_key.map(Secret::from);
        c.api_base = self.api_base;
        c.api_version = self.api_version;
        c.bearer_token = self.bearer_token.map(Secret::from);
        c.organization = self.organization;
        c.headers = self.headers;
        c.extra_body = self.extra_body;
        c.drop_params = self.drop_params;
        c
    }
}

/// An error as fixtures describe it: every present key must match.
fn check_error(fixture: &str, err: &ProviderError, want: &Value) {
    let want = want.as_object().unwrap_or_else(|| panic!("{fixture}: expected_error must be an object"));
    for (k, v) in want {
        match k.as_str() {
            "kind" => assert_eq!(format!("{:?}", err.kind), v.as_str().unwrap(), "{fixture}: kind ({err})"),
            "status" => {
                assert_eq!(err.status.map(|s| json!(s)).unwrap_or(Value::Null), *v, "{fixture}: status")
            }
            "code" => {
                assert_eq!(err.code.clone().map(Value::String).unwrap_or(Value::Null), *v, "{fixture}: code")
            }
            "param" => {
                assert_eq!(
                    err.param.clone().map(Value::String).unwrap_or(Value::Null),
                    *v,
                    "{fixture}: param"
                )
            }
            "provider" => assert_eq!(err.provider.as_deref(), v.as_str(), "{fixture}: provider"),
            "message" => assert_eq!(err.message, v.as_str().unwrap(), "{fixture}: message"),
            "message_contains" => {
                for part in v.as_array().unwrap() {
                    let part = part.as_str().unwrap();
                    assert!(
                        err.message.contains(part),
                        "{fixture}: message `{}` lacks `{part}`",
                        err.message
                    );
                }
            }
            "retry_after_ms" => assert_eq!(
                err.retry_after.map(|d| json!(d.as_millis() as u64)).unwrap_or(Value::Null),
                *v,
                "{fixture}: retry_after"
            ),
            other => panic!("{fixture}: unknown expected_error key `{other}`"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

fn build_request(f: &Value) -> Result<http::Request<bytes::Bytes>, ProviderError> {
    let a = adapter_for(f["adapter"].as_str().unwrap());
    let cfg: Cfg = serde_json::from_value(f["config"].clone()).unwrap();
    let cfg = cfg.upstream();
    match f["endpoint"].as_str().unwrap_or("chat") {
        "chat" => {
            let req: ChatRequest = serde_json::from_value(f["request"].clone()).unwrap();
            a.chat_request(&req, &cfg)
        }
        "embeddings" => {
            let req: EmbeddingRequest = serde_json::from_value(f["request"].clone()).unwrap();
            a.embedding_request(&req, &cfg)
        }
        "completions" => {
            let req: TextCompletionRequest = serde_json::from_value(f["request"].clone()).unwrap();
            a.text_completion_request(&req, &cfg)
        }
        other => panic!("unknown endpoint {other}"),
    }
}

#[test]
fn request_fixtures() {
    let all = files("requests", "json");
    assert!(all.len() >= 20, "request fixtures are missing: {}", all.len());
    for path in all {
        let fixture = name(&path);
        let f = read_json(&path);
        let result = build_request(&f);
        if let Some(want) = f.get("expected_error") {
            let err = result.expect_err(&fixture);
            check_error(&fixture, &err, want);
            continue;
        }
        let req = result.unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let want = &f["expected"];
        assert_eq!(req.method().as_str(), want["method"], "{fixture}: method");
        assert_eq!(req.uri().to_string(), want["url"].as_str().unwrap(), "{fixture}: url");
        let mut headers = Map::new();
        for (k, v) in req.headers() {
            headers.insert(k.as_str().to_owned(), Value::String(v.to_str().unwrap().to_owned()));
        }
        assert_eq!(Value::Object(headers), want["headers"], "{fixture}: headers");
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body, want["body"], "{fixture}: body");
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn raw_response(f: &Value) -> RawResponse {
    let status = http::StatusCode::from_u16(f["status"].as_u64().unwrap_or(200) as u16).unwrap();
    let mut headers = http::HeaderMap::new();
    if let Some(h) = f.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.as_str().unwrap().parse().unwrap(),
            );
        }
    }
    let body: Vec<u8> = if let Some(text) = f.get("body_text") {
        text.as_str().unwrap().as_bytes().to_vec()
    } else if let Some(hex) = f.get("body_hex") {
        let hex = hex.as_str().unwrap();
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    } else {
        serde_json::to_vec(&f["body"]).unwrap()
    };
    RawResponse::new(status, headers, body)
}

/// Parses a 2xx response through the endpoint's method, returning the canonical JSON.
fn parse_response(a: &dyn Adapter, endpoint: &str, raw: &RawResponse) -> Result<Value, ProviderError> {
    Ok(match endpoint {
        "chat" => serde_json::to_value(a.chat_response(raw)?).unwrap(),
        "embeddings" => serde_json::to_value(a.embedding_response(raw)?).unwrap(),
        "completions" => serde_json::to_value(a.text_completion_response(raw)?).unwrap(),
        other => panic!("unknown endpoint {other}"),
    })
}

#[test]
fn response_fixtures() {
    let all = files("responses", "json");
    assert!(all.len() >= 12, "response fixtures are missing: {}", all.len());
    for path in all {
        let fixture = name(&path);
        let f = read_json(&path);
        let a = adapter_for(f["adapter"].as_str().unwrap());
        let raw = raw_response(&f);
        let result = parse_response(a.as_ref(), f["endpoint"].as_str().unwrap(), &raw);
        match f.get("expected_error") {
            Some(want) => check_error(&fixture, &result.expect_err(&fixture), want),
            None => {
                assert_eq!(result.unwrap_or_else(|e| panic!("{fixture}: {e}")), f["expected"], "{fixture}")
            }
        }
    }
}

fn chat_fixture(file: &str) -> ChatResponse {
    let f = read_json(&fixtures("responses").join(file));
    adapter_for(f["adapter"].as_str().unwrap()).chat_response(&raw_response(&f)).unwrap()
}

#[test]
fn usage_details_and_tool_calls_are_typed() {
    let r = chat_fixture("openai_chat_reasoning_usage.json");
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (2006, 1300, 3306));
    assert_eq!(u.cached_tokens(), 1920);
    assert_eq!(u.reasoning_tokens(), 1024);

    let r = chat_fixture("openai_chat_parallel_tool_calls.json");
    let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].function.name, "get_weather");
    assert_eq!(calls[1].function.arguments, "{\"location\":\"Paris, France\"}");
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.choices[0].message.content, None);

    let r = chat_fixture("openai_chat_json_schema.json");
    let content: Value = serde_json::from_str(r.first_text().unwrap()).unwrap();
    assert_eq!(content["final_answer"], "x = -3.75");

    let r = chat_fixture("azure_chat_content_filter.json");
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ContentFilter));
}

#[test]
fn embeddings_float_and_base64() {
    let load = |file: &str| -> EmbeddingResponse {
        let f = read_json(&fixtures("responses").join(file));
        adapter_for(f["adapter"].as_str().unwrap()).embedding_response(&raw_response(&f)).unwrap()
    };
    let r = load("openai_embeddings_float.json");
    assert!(matches!(&r.data[0].embedding, EmbeddingVector::Float(v) if v.len() == 8));
    assert_eq!(r.usage.unwrap().prompt_tokens, 8);
    let r = load("openai_embeddings_base64.json");
    match &r.data[0].embedding {
        // Four little-endian f32s: 0.25, -1.5, 1.0, 0.0.
        EmbeddingVector::Base64(s) => assert_eq!(s, "AACAPgAAwL8AAIA/AAAAAA=="),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_fixtures() {
    let all = files("errors", "json");
    assert!(all.len() >= 14, "error fixtures are missing: {}", all.len());
    let mut kinds = std::collections::BTreeSet::new();
    for path in all {
        let fixture = name(&path);
        let f = read_json(&path);
        let a = adapter_for(f["adapter"].as_str().unwrap());
        let raw = raw_response(&f);
        let err = if raw.status.is_success() {
            parse_response(a.as_ref(), f["endpoint"].as_str().unwrap_or("chat"), &raw).expect_err(&fixture)
        } else {
            a.error_response(&raw)
        };
        check_error(&fixture, &err, &f["expected"]);
        kinds.insert(format!("{:?}", err.kind));
    }
    for k in [
        "Authentication",
        "PermissionDenied",
        "NotFound",
        "BadRequest",
        "ContextWindowExceeded",
        "ContentFiltered",
        "RateLimited",
        "ServerError",
        "Overloaded",
    ] {
        assert!(kinds.contains(k), "no error fixture produces {k}");
    }
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Decoded {
    items: Vec<Value>,
    error: Option<ProviderError>,
    done: bool,
}

/// Feeds `pieces` in order, then `finish`; stops at the first error, as the transport does.
fn run_decoder<T: serde::Serialize>(mut d: Box<dyn StreamDecoder<T>>, pieces: &[&[u8]]) -> Decoded {
    let mut out = Vec::new();
    let mut error = None;
    for p in pieces {
        if d.is_done() {
            break;
        }
        if let Err(e) = d.decode(p, &mut out) {
            error = Some(e);
            break;
        }
    }
    if error.is_none() {
        error = d.finish(&mut out).err();
    }
    Decoded {
        items: out.iter().map(|i| serde_json::to_value(i).unwrap()).collect(),
        error,
        done: d.is_done(),
    }
}

struct StreamFixture {
    name: String,
    meta: Value,
    bytes: Vec<u8>,
}

fn stream_fixtures() -> Vec<StreamFixture> {
    files("streams", "sse")
        .into_iter()
        .map(|p| StreamFixture {
            name: name(&p),
            meta: read_json(&p.with_extension("json")),
            bytes: std::fs::read(&p).unwrap(),
        })
        .collect()
}

fn decode_fixture(s: &StreamFixture, pieces: &[&[u8]]) -> Decoded {
    let a = adapter_for(s.meta["adapter"].as_str().unwrap());
    let cfg = UpstreamConfig::new("m");
    match s.meta["endpoint"].as_str().unwrap_or("chat") {
        "chat" => {
            let req = ChatRequest::new("m", vec![]);
            run_decoder::<ChatChunk>(a.chat_stream_decoder(&req, &cfg), pieces)
        }
        "completions" => {
            let req = TextCompletionRequest::new("m", "p");
            let d = a.text_completion_stream_decoder(&req, &cfg).unwrap();
            run_decoder::<TextCompletionResponse>(d, pieces)
        }
        other => panic!("unknown endpoint {other}"),
    }
}

fn check_decoded(s: &StreamFixture, d: &Decoded, how: &str) {
    let fixture = format!("{} ({how})", s.name);
    assert_eq!(Value::Array(d.items.clone()), s.meta["expected_items"], "{fixture}: items");
    match (&d.error, s.meta.get("expected_error")) {
        (None, None) => {}
        (Some(e), Some(want)) => check_error(&fixture, e, want),
        (got, want) => panic!("{fixture}: error {got:?}, expected {want:?}"),
    }
    if let Some(done) = s.meta.get("done") {
        assert_eq!(Value::Bool(d.done), *done, "{fixture}: is_done");
    }
}

#[test]
fn stream_fixtures_decode_whole_and_byte_by_byte() {
    let all = stream_fixtures();
    assert!(all.len() >= 11, "stream fixtures are missing: {}", all.len());
    for s in &all {
        check_decoded(s, &decode_fixture(s, &[&s.bytes]), "whole");
        let singles: Vec<&[u8]> = s.bytes.chunks(1).collect();
        check_decoded(s, &decode_fixture(s, &singles), "byte by byte");
    }
}

#[test]
fn streams_split_at_every_byte_give_the_same_chunks() {
    for s in &stream_fixtures() {
        for i in 0..=s.bytes.len() {
            let d = decode_fixture(s, &[&s.bytes[..i], &s.bytes[i..]]);
            check_decoded(s, &d, &format!("split at {i}"));
        }
    }
}

#[test]
fn streamed_text_adds_up_to_the_reply_and_its_usage() {
    let s = stream_fixtures().into_iter().find(|s| s.name == "openai_chat_text_usage").unwrap();
    let a = adapter_for("openai");
    let mut d = a.chat_stream_decoder(&ChatRequest::new("m", vec![]), &UpstreamConfig::new("m"));
    let mut out = Vec::new();
    d.decode(&s.bytes, &mut out).unwrap();
    assert!(d.is_done());
    d.finish(&mut out).unwrap();
    let mut acc = tollgate_core::chat::StreamAccumulator::new();
    for c in &out {
        acc.push(c);
    }
    let r = acc.finish();
    assert_eq!(r.first_text(), Some("Hello! How can I help?"));
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_tokens()), (19, 7, 0));
}

#[test]
fn interleaved_tool_call_deltas_rebuild_two_calls() {
    let s = stream_fixtures().into_iter().find(|s| s.name == "openai_chat_parallel_tool_calls").unwrap();
    let a = adapter_for("openai");
    let mut d = a.chat_stream_decoder(&ChatRequest::new("m", vec![]), &UpstreamConfig::new("m"));
    let mut out = Vec::new();
    d.decode(&s.bytes, &mut out).unwrap();
    d.finish(&mut out).unwrap();
    let mut acc = tollgate_core::chat::StreamAccumulator::new();
    for c in &out {
        acc.push(c);
    }
    let r = acc.finish();
    let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "call_a1");
    assert_eq!(calls[0].function.arguments, "{\"location\":\"Boston, MA\"}");
    assert_eq!(calls[1].id, "call_b2");
    assert_eq!(calls[1].function.arguments, "{\"location\":\"Paris, France\"}");
    assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
}

#[test]
fn bytes_after_done_are_ignored() {
    let a = adapter_for("openai");
    let mut d = a.chat_stream_decoder(&ChatRequest::new("m", vec![]), &UpstreamConfig::new("m"));
    let mut out = Vec::new();
    d.decode(b"data: [DONE]\n\n", &mut out).unwrap();
    assert!(d.is_done());
    d.decode(b"data: {not json\n\n\xff\xfe", &mut out).unwrap();
    d.finish(&mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn empty_stream_is_cut() {
    for provider in ["openai", "azure", "groq"] {
        let a = adapter_for(provider);
        let mut d = a.chat_stream_decoder(&ChatRequest::new("m", vec![]), &UpstreamConfig::new("m"));
        let mut out = Vec::new();
        let e = d.finish(&mut out).unwrap_err();
        assert_eq!(e.kind, tollgate_core::ErrorKind::Decode, "{provider}");
        assert_eq!(e.message, "stream ended before [DONE]");
    }
}

#[test]
fn retry_after_ms_wins_over_retry_after() {
    let f = read_json(&fixtures("errors").join("openai_429_rate_limit.json"));
    let e = adapter_for("openai").error_response(&raw_response(&f));
    assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
    assert!(e.kind.is_retryable());
}
