//! Golden fixtures: for each case in `tests/fixtures/chat/`, the upstream request the adapter
//! builds (method, URL, every header, JSON body) and the canonical result it parses from the
//! fixture's upstream response; `tests/fixtures/errors.json` classifies every documented
//! Bedrock error. The clock is frozen at 2015-08-30T12:36:00Z with AWS's example credentials.
//!
//! The SigV4 `authorization` values in the fixtures are regression values: the signer itself is
//! proven byte-exact against AWS's test suite in `sigv4_vectors.rs`, and
//! `signature_covers_the_bytes_sent` below re-derives the canonical request by hand.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use tollgate_core::{Adapter, ChatRequest, RawResponse, Secret, UpstreamConfig};
use tollgate_provider_bedrock::BedrockAdapter;
use tollgate_provider_bedrock::sigv4::{self, AmzDate, Credentials, SignableRequest};

const T: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z

fn adapter() -> BedrockAdapter {
    BedrockAdapter::at(UNIX_EPOCH + Duration::from_secs(T))
}

fn load(rel: &str) -> Value {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(v: &Value) -> UpstreamConfig {
    let mut cfg = UpstreamConfig::new(v["model"].as_str().unwrap());
    cfg.api_base = v.get("api_base").and_then(Value::as_str).map(str::to_owned);
    cfg.api_key = v.get("api_key").and_then(Value::as_str).map(Secret::new);
    cfg.drop_params = v.get("drop_params").and_then(Value::as_bool).unwrap_or(false);
    cfg.max_output_tokens = v.get("max_output_tokens").and_then(Value::as_u64).map(|n| n as u32);
    for (k, val) in v.get("options").and_then(Value::as_object).into_iter().flatten() {
        cfg.options.insert(k.clone(), val.as_str().unwrap().to_owned());
    }
    for (k, val) in v.get("secrets").and_then(Value::as_object).into_iter().flatten() {
        cfg.secrets.insert(k.clone(), Secret::new(val.as_str().unwrap()));
    }
    if let Some(Value::Object(extra)) = v.get("extra_body") {
        cfg.extra_body = extra.clone();
    }
    for h in v.get("headers").and_then(Value::as_array).into_iter().flatten() {
        cfg.headers.push((h[0].as_str().unwrap().to_owned(), h[1].as_str().unwrap().to_owned()));
    }
    cfg
}

fn raw_response(v: &Value) -> RawResponse {
    let mut headers = HeaderMap::new();
    for (k, val) in v["headers"].as_object().unwrap() {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
        );
    }
    let body = match v.get("body_text") {
        Some(Value::String(s)) => Bytes::from(s.clone()),
        _ => Bytes::from(v["body"].to_string()),
    };
    RawResponse::new(StatusCode::from_u16(v["status"].as_u64().unwrap() as u16).unwrap(), headers, body)
}

fn check_error(name: &str, e: &tollgate_core::ProviderError, want: &Value) {
    assert_eq!(format!("{:?}", e.kind), want["kind"].as_str().unwrap(), "{name}: {e}");
    assert_eq!(e.provider.as_deref(), Some("bedrock"), "{name}");
    if let Some(m) = want.get("message_contains").and_then(Value::as_str) {
        assert!(e.message.contains(m), "{name}: {:?} lacks {m:?}", e.message);
    }
}

fn headers_json(req: &http::Request<Bytes>) -> Value {
    let mut m = Map::new();
    for (k, v) in req.headers() {
        m.insert(k.as_str().to_owned(), json!(v.to_str().unwrap()));
    }
    Value::Object(m)
}

fn run_case(name: &str) {
    let case = load(&format!("chat/{name}.json"));
    let a = adapter();
    let req: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
    let cfg = config(&case["config"]);
    let built = a.chat_request(&req, &cfg);

    if let Some(want) = case.get("upstream_request") {
        let built = built.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(built.method().as_str(), want["method"], "{name}: method");
        assert_eq!(built.uri().to_string(), want["url"].as_str().unwrap(), "{name}: url");
        assert_eq!(headers_json(&built), want["headers"], "{name}: headers");
        let body: Value = serde_json::from_slice(built.body()).unwrap();
        assert_eq!(body, want["body"], "{name}: body");
        // The signed bytes are canonical (sorted keys, compact) whatever serde_json features are on.
        assert_eq!(built.body().as_ref(), tollgate_provider_bedrock::sorted_json(&body).as_slice(), "{name}");
        if let Some(scope) = want.get("credential_scope").and_then(Value::as_str) {
            let auth = built.headers()["authorization"].to_str().unwrap();
            assert!(auth.contains(&format!("Credential=AKIDEXAMPLE/{scope},")), "{name}: {auth}");
        }
    } else if let Some(want) = case.get("expected_error").filter(|_| case.get("response").is_none()) {
        let e = built.expect_err(name);
        check_error(name, &e, want);
        return;
    }

    if let Some(resp) = case.get("response") {
        let raw = raw_response(resp);
        let parsed =
            if raw.status.is_success() { a.chat_response(&raw) } else { Err(a.error_response(&raw)) };
        match (case.get("expected"), case.get("expected_error")) {
            (Some(want), _) => {
                let got = serde_json::to_value(parsed.unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap();
                assert_eq!(got, *want, "{name}: parsed response");
            }
            (None, Some(want)) => check_error(name, &parsed.expect_err(name), want),
            (None, None) => panic!("{name}: response without expectation"),
        }
    }
}

macro_rules! golden {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                run_case(stringify!($case));
            }
        )*
    };
}

golden!(
    text,
    system,
    multi_turn,
    tools_round_trip,
    parallel_tools,
    named_tool_choice,
    tool_choice_none,
    tool_history_without_tools,
    images,
    image_url_not_supported,
    json_schema,
    json_object,
    reasoning,
    cached_tokens,
    unsupported_params,
    unsupported_params_dropped,
    arn_and_custom_endpoint,
    missing_credentials,
    missing_region,
    error_body_with_200,
);

#[test]
fn every_fixture_has_a_test() {
    let dir = format!("{}/tests/fixtures/chat", env!("CARGO_MANIFEST_DIR"));
    let n = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(n, 20, "add new fixtures to the golden! list");
}

#[test]
fn documented_errors_are_classified() {
    let a = adapter();
    for case in load("errors.json").as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let e = a.error_response(&raw_response(case));
        assert_eq!(format!("{:?}", e.kind), case["kind"].as_str().unwrap(), "{name}: {e}");
        assert_eq!(e.status, Some(case["status"].as_u64().unwrap() as u16), "{name}");
        assert_eq!(e.provider.as_deref(), Some("bedrock"));
        let expected_message = case
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| case.pointer("/body/message").and_then(Value::as_str))
            .unwrap();
        assert_eq!(e.message, expected_message, "{name}");
        if let Some(code) = case.get("code") {
            assert_eq!(json!(e.code), *code, "{name}");
        }
        let retry = case.get("retry_after_secs").and_then(Value::as_u64).map(Duration::from_secs);
        assert_eq!(e.retry_after, retry, "{name}");
    }
}

/// Re-derives, by hand, the canonical request for the `text` case (model id double-encoded in
/// the canonical path, signed headers, body hash of the exact bytes sent) and checks the
/// `Authorization` header is the signature over it.
#[test]
fn signature_covers_the_bytes_sent() {
    let case = load("chat/text.json");
    let req: ChatRequest = serde_json::from_value(case["request"].clone()).unwrap();
    let built = adapter().chat_request(&req, &config(&case["config"])).unwrap();
    let body_hash = sigv4::sha256_hex(built.body());
    assert_eq!(built.uri().path(), "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let out = sigv4::sign(
        &SignableRequest {
            method: "POST",
            path: built.uri().path(),
            query: "",
            headers: &[
                ("content-type", "application/json"),
                ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            payload_sha256: &body_hash,
        },
        &creds,
        "us-east-1",
        "bedrock",
        &AmzDate::from_system_time(UNIX_EPOCH + Duration::from_secs(T)),
    );
    assert_eq!(
        out.canonical_request,
        format!(
            "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\n\
             content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n{body_hash}"
        )
    );
    assert_eq!(built.headers()["authorization"].to_str().unwrap(), out.authorization);
    assert!(out.authorization.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature="
    ));
    // A different body gives a different signature: the body is really covered.
    let mut other = req.clone();
    other.messages[0] = tollgate_core::Message::user("Hello?");
    let built2 = adapter().chat_request(&other, &config(&case["config"])).unwrap();
    assert_ne!(built2.headers()["authorization"], built.headers()["authorization"]);
}

#[test]
fn bearer_token_field_wins_and_skips_sigv4() {
    let mut cfg = UpstreamConfig::new("amazon.nova-lite-v1:0");
    cfg.options.insert("aws_region_name".into(), "us-east-1".into());
    cfg.secrets.insert("aws_access_key_id".into(), Secret::new("AKIDEXAMPLE"));
    cfg.secrets.insert("aws_secret_access_key".into(), Secret::new("secret"));
    cfg.bearer_token = Some(Secret::new("tok"));
    let req = ChatRequest::new("x", vec![tollgate_core::Message::user("hi")]);
    let built = adapter().chat_request(&req, &cfg).unwrap();
    assert_eq!(built.headers()["authorization"], "Bearer tok");
    assert!(built.headers().get("x-amz-date").is_none());
}

#[test]
fn credential_env_names() {
    let env = adapter().credential_env();
    assert_eq!(env.api_key, &["AWS_BEARER_TOKEN_BEDROCK"]);
    assert_eq!(
        env.options,
        &[("aws_region_name", &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION_NAME"][..])]
    );
    let secrets: Vec<_> = env.secrets.iter().map(|(k, v)| (*k, v.to_vec())).collect();
    assert_eq!(
        secrets,
        vec![
            ("aws_access_key_id", vec!["AWS_ACCESS_KEY_ID"]),
            ("aws_secret_access_key", vec!["AWS_SECRET_ACCESS_KEY"]),
            ("aws_session_token", vec!["AWS_SESSION_TOKEN"]),
        ]
    );
}

#[test]
fn response_ids_come_from_the_request_id_or_are_generated() {
    let a = adapter();
    let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": "end_turn"});
    let r1 = a.chat_response(&RawResponse::ok_json(body.to_string())).unwrap();
    let r2 = a.chat_response(&RawResponse::ok_json(body.to_string())).unwrap();
    assert!(r1.id.starts_with("chatcmpl-bedrock-"));
    assert_ne!(r1.id, r2.id, "generated ids are unique");
    assert_eq!(r1.usage, None);
}

#[test]
fn malformed_responses_are_decode_errors() {
    use tollgate_core::ErrorKind::Decode;
    let a = adapter();
    for body in [
        &b"{not json"[..],
        b"<html>oops</html>",
        &[0xff, 0xfe, 0x00],
        b"{}",
        br#"{"output": {"message": {"role": "assistant"}}}"#,
        b"[]",
    ] {
        let e = a.chat_response(&RawResponse::ok_json(Bytes::copy_from_slice(body))).unwrap_err();
        assert_eq!(e.kind, Decode, "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn other_stop_reasons() {
    let a = adapter();
    for (stop, want) in [
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("malformed_tool_use", "malformed_tool_use"),
    ] {
        let body = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": stop});
        let r = a.chat_response(&RawResponse::ok_json(body.to_string())).unwrap();
        assert_eq!(r.choices[0].finish_reason.as_ref().unwrap().as_str(), want);
        assert_eq!(r.choices[0].message.content, None);
    }
}

#[test]
fn request_side_bad_input() {
    use tollgate_core::ErrorKind::{BadRequest, UnsupportedParams};
    let a = adapter();
    let mut cfg = UpstreamConfig::new("amazon.nova-pro-v1:0");
    cfg.options.insert("aws_region_name".into(), "us-east-1".into());
    cfg.api_key = Some(Secret::new("tok"));
    let parse = |v: Value| -> ChatRequest { serde_json::from_value(v).unwrap() };
    let cases = [
        (
            json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            BadRequest,
        ),
        (json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), BadRequest),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            BadRequest,
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA=="}}]}]}),
            BadRequest,
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}),
            BadRequest,
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}),
            BadRequest,
        ),
        (json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}), BadRequest),
        // reasoning_effort on a non-Anthropic model has no Converse mapping.
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low"}),
            UnsupportedParams,
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": false}),
            UnsupportedParams,
        ),
    ];
    for (req, kind) in cases {
        let e = a.chat_request(&parse(req.clone()), &cfg).unwrap_err();
        assert_eq!(e.kind, kind, "{req}");
    }
    let empty_model = UpstreamConfig::new("");
    assert_eq!(
        a.chat_request(&parse(json!({"model": "m", "messages": []})), &empty_model).unwrap_err().kind,
        BadRequest
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn response_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let a = adapter();
            let _ = a.chat_response(&RawResponse::ok_json(bytes.clone()));
            let _ = a.error_response(&RawResponse::new(StatusCode::BAD_REQUEST, HeaderMap::new(), bytes));
        }

        #[test]
        fn response_parser_never_panics_on_json_shapes(
            text in proptest::option::of("[a-z ]{0,20}"),
            stop in "[a-z_]{0,15}",
            tokens in proptest::option::of(any::<u32>()),
            weird in any::<bool>(),
        ) {
            let content = if weird { json!([{"toolUse": {"input": 5}}, {"reasoningContent": {}}, 7]) } else { json!([{"text": text}]) };
            let body = json!({"output": {"message": {"content": content}}, "stopReason": stop,
                "usage": {"inputTokens": tokens, "cacheReadInputTokens": tokens}});
            let _ = adapter().chat_response(&RawResponse::ok_json(body.to_string()));
        }
    }
}

fn body_of(req: Value, model: &str) -> Value {
    let mut cfg = UpstreamConfig::new(model);
    cfg.options.insert("aws_region_name".into(), "us-east-1".into());
    cfg.api_key = Some(Secret::new("tok"));
    let req: ChatRequest = serde_json::from_value(req).unwrap();
    let built = adapter().chat_request(&req, &cfg).unwrap();
    serde_json::from_slice(built.body()).unwrap()
}

#[test]
fn tool_choice_none_keeps_tools_when_the_history_has_tool_blocks() {
    let body = body_of(
        json!({"model": "m", "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "done", "status": "error"}
        ]}),
        "amazon.nova-pro-v1:0",
    );
    assert_eq!(
        body["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]})
    );
    assert_eq!(body["messages"][2]["content"][0]["toolResult"]["status"], "error");
}

#[test]
fn passthrough_fields_and_raw_thinking() {
    let body = body_of(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "additionalModelRequestFields": {"top_k": 5},
            "requestMetadata": {"team": "a"},
            "some_unknown_field": 1}),
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
    );
    assert_eq!(
        body["additionalModelRequestFields"],
        json!({"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 2000}})
    );
    assert_eq!(body["requestMetadata"], json!({"team": "a"}));
    assert!(body.get("some_unknown_field").is_none());
}

#[test]
fn reasoning_effort_levels() {
    for (effort, budget, max_tokens) in [
        ("minimal", Some(1024), 5120),
        ("low", Some(1024), 5120),
        ("medium", Some(2048), 6144),
        ("none", None, 0),
    ] {
        let body = body_of(
            json!({"model": "m", "reasoning_effort": effort, "messages": [{"role": "user", "content": "x"}]}),
            "anthropic.claude-3-7-sonnet-20250219-v1:0",
        );
        match budget {
            Some(b) => {
                assert_eq!(body["additionalModelRequestFields"]["thinking"]["budget_tokens"], b, "{effort}");
                assert_eq!(body["inferenceConfig"]["maxTokens"], max_tokens, "{effort}");
            }
            None => assert!(body.get("additionalModelRequestFields").is_none(), "{effort}"),
        }
    }
    // An explicit output cap is kept.
    let body = body_of(
        json!({"model": "m", "reasoning_effort": "high", "max_tokens": 9000, "messages": [{"role": "user", "content": "x"}]}),
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], 9000);
}

#[test]
fn converse_prefix_and_streaming_url() {
    let mut cfg = UpstreamConfig::new("converse/meta.llama3-70b-instruct-v1:0");
    cfg.options.insert("aws_region_name".into(), "us-west-2".into());
    cfg.api_key = Some(Secret::new("tok"));
    let mut req = ChatRequest::new("x", vec![tollgate_core::Message::user("hi")]);
    req.stream = Some(true);
    let built = adapter().chat_request(&req, &cfg).unwrap();
    assert_eq!(
        built.uri().to_string(),
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/meta.llama3-70b-instruct-v1%3A0/converse-stream"
    );
    assert_eq!(built.headers()["accept"], "application/vnd.amazon.eventstream");
}
