//! Golden fixtures: for each case, the upstream request the adapter builds and the canonical
//! result it parses, compared value-for-value with `tests/fixtures/**.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::embedding::EmbeddingRequest;

/// `chat/<name>.json`: `request` (+ optional `config`) → `upstream` or `expected_error`;
/// `response` → `expected` or `expected_error`.
fn chat_case(name: &str) {
    let f = read_json(&format!("chat/{name}.json"));
    let a = adapter();
    let req = chat_request(&f["request"]);
    let cfg = config(f.get("config"));
    let built = a.chat_request(&req, &cfg);
    match f.get("upstream") {
        Some(up) => {
            let built = built.unwrap_or_else(|e| panic!("{name}: request failed: {e}"));
            assert_eq!(&upstream_json(&built), up, "{name}: upstream request");
        }
        None => {
            let e = built.expect_err("the fixture expects the request to be refused");
            assert_eq!(error_json(&e), f["expected_error"], "{name}: request error");
            return;
        }
    }
    let Some(body) = f.get("response") else { return };
    let parsed =
        a.chat_response(&raw(200, &[("content-type", "application/json")], body.to_string().into_bytes()));
    match f.get("expected") {
        Some(exp) => {
            let parsed = parsed.unwrap_or_else(|e| panic!("{name}: response failed: {e}"));
            assert_eq!(&serde_json::to_value(&parsed).unwrap(), exp, "{name}: canonical response");
        }
        None => {
            let e = parsed.expect_err("the fixture expects the response to be an error");
            assert_eq!(error_json(&e), f["expected_error"], "{name}: response error");
        }
    }
}

macro_rules! chat_cases {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { chat_case(stringify!($name)); })*
        #[test]
        fn every_chat_fixture_has_a_test() {
            let mut listed: Vec<&str> = vec![$(stringify!($name)),*];
            listed.sort_unstable();
            let mut files: Vec<String> = std::fs::read_dir(fixture_path("chat")).unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".json").to_owned())
                .collect();
            files.sort();
            assert_eq!(files, listed);
        }
    };
}

mod chat {
    use super::{chat_case, fixture_path};
    chat_cases!(
        text,
        system,
        multi_turn,
        tools,
        tool_result_round_trip,
        parallel_tools,
        named_tool_choice,
        tool_choice_none,
        images,
        json_schema,
        json_object,
        reasoning,
        reasoning_disabled,
        usage_billed_not_raw_tokens,
        usage_tokens_fallback,
        custom_base_and_extra_body,
        unsupported_params,
        unsupported_params_dropped,
        audio_part_rejected,
        missing_api_key,
        error_finish_reason,
        error_body_with_200,
    );
}

/// `errors/<name>.json`: a non-2xx upstream response → the typed error.
fn error_case(name: &str) {
    let f = read_json(&format!("errors/{name}.json"));
    let status = f["status"].as_u64().unwrap() as u16;
    let headers: Vec<(String, String)> = f["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
        .unwrap_or_default();
    let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let body = match &f["body"] {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let e = adapter().error_response(&raw(status, &hdrs, body));
    assert_eq!(error_json(&e), f["expected"], "{name}");
}

mod errors {
    use super::error_case;
    macro_rules! error_cases { ($($name:ident),* $(,)?) => { $(#[test] fn $name() { error_case(stringify!($name)); })* }; }
    error_cases!(
        bad_request_400,
        context_window_400,
        unauthorized_401,
        invalid_token_498,
        forbidden_403,
        not_found_404,
        unprocessable_422,
        rate_limited_429,
        client_closed_499,
        internal_500,
        not_implemented_501,
        unavailable_503,
        gateway_timeout_504,
        html_502,
    );
}

#[test]
fn embeddings_request_and_response() {
    let f = read_json("embeddings/embed.json");
    let a = adapter();
    let req: EmbeddingRequest = serde_json::from_value(f["request"].clone()).unwrap();
    let mut cfg = config(None);
    cfg.model = "embed-v4.0".into();
    let built = a.embedding_request(&req, &cfg).unwrap();
    assert_eq!(upstream_json(&built), f["upstream"]);
    let parsed = a.embedding_response(&raw(200, &[], f["response"].to_string().into_bytes())).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), f["expected"]);
}

#[test]
fn embeddings_input_type_override_and_token_input() {
    let a = adapter();
    let mut cfg = config(None);
    cfg.model = "embed-v4.0".into();
    let req: EmbeddingRequest = serde_json::from_value(
        json!({"model": "cohere/embed-v4.0", "input": "q", "input_type": "search_query"}),
    )
    .unwrap();
    let built = a.embedding_request(&req, &cfg).unwrap();
    assert_eq!(
        upstream_json(&built)["body"],
        json!({"model": "embed-v4.0", "texts": ["q"], "input_type": "search_query", "embedding_types": ["float"]})
    );
    let tokens: EmbeddingRequest = serde_json::from_value(json!({"model": "m", "input": [1, 2, 3]})).unwrap();
    assert_eq!(a.embedding_request(&tokens, &cfg).unwrap_err().kind, tollgate_core::ErrorKind::BadRequest);
    let b64: EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": "x", "encoding_format": "base64"})).unwrap();
    assert_eq!(
        a.embedding_request(&b64, &cfg).unwrap_err().kind,
        tollgate_core::ErrorKind::UnsupportedParams
    );
}

#[test]
fn legacy_embeddings_floats_shape_and_bad_bodies() {
    let a = adapter();
    let legacy = json!({"id": "e", "embeddings": [[0.5, -0.25]], "texts": ["a"], "response_type": "embeddings_floats"});
    let r = a.embedding_response(&raw(200, &[], legacy.to_string().into_bytes())).unwrap();
    assert_eq!(serde_json::to_value(&r).unwrap()["data"][0]["embedding"], json!([0.5, -0.25]));
    assert!(r.usage.is_none());
    for bad in [
        &b"<html>oops</html>"[..],
        b"{\"embeddings\": {\"int8\": [[1]]}}",
        b"{\"embeddings\": [[\"x\"]]}",
        b"[]",
    ] {
        let e = a.embedding_response(&raw(200, &[], bad.to_vec())).unwrap_err();
        assert_eq!(e.kind, tollgate_core::ErrorKind::Decode, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn malformed_chat_bodies_are_decode_errors() {
    let a = adapter();
    for bad in [&b""[..], b"not json", b"{\"id\": \"x\"}", b"[1,2]", b"{\"message\": 5}", &[0xff, 0xfe]] {
        let e = a.chat_response(&raw(200, &[], bad.to_vec())).unwrap_err();
        assert_eq!(e.kind, tollgate_core::ErrorKind::Decode, "{}", String::from_utf8_lossy(bad));
        assert_eq!(e.provider.as_deref(), Some("cohere"));
    }
}
