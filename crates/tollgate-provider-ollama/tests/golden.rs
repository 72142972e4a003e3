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
    let parsed = tollgate_provider_ollama::chat_response_with_id(
        &raw(200, &[("content-type", "application/json")], body.to_string().into_bytes()),
        ID,
    );
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
        images,
        image_http_url_rejected,
        json_schema,
        json_object,
        reasoning,
        reasoning_round_trip_and_disabled,
        options_and_extras,
        tool_choice_none_omits_tools,
        tool_choice_required_unsupported,
        unsupported_dropped,
        stream_with_key_and_host_base,
        usage_without_prompt_eval_count,
        error_body_with_200,
        bad_tool_arguments_rejected,
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
        model_not_found_404,
        bad_request_400,
        context_window_400,
        server_error_500,
        server_busy_503,
        unauthorized_401_proxy,
        rate_limited_429,
        html_502,
    );
}

#[test]
fn adapter_responses_get_fresh_ids_and_the_rest_matches_the_fixture() {
    let f = read_json("chat/tools.json");
    let a = adapter();
    let r1 = a.chat_response(&raw(200, &[], f["response"].to_string().into_bytes())).unwrap();
    let r2 = a.chat_response(&raw(200, &[], f["response"].to_string().into_bytes())).unwrap();
    assert_ne!(r1.id, r2.id, "every response gets its own id");
    assert!(r1.id.starts_with("chatcmpl-") && r1.id.len() == 25, "{}", r1.id);
    let call_id = &r1.choices[0].message.tool_calls.as_ref().unwrap()[0].id;
    assert_eq!(call_id, &format!("call_{}_0", &r1.id["chatcmpl-".len()..]));
    let mut v = serde_json::to_value(&r1).unwrap();
    v["id"] = json!(ID);
    v["choices"][0]["message"]["tool_calls"][0]["id"] = json!("call_test_0");
    assert_eq!(v, f["expected"]);
}

#[test]
fn embeddings_request_and_response() {
    let f = read_json("embeddings/embed.json");
    let a = adapter();
    let req: EmbeddingRequest = serde_json::from_value(f["request"].clone()).unwrap();
    let mut cfg = config(None);
    cfg.model = "all-minilm".into();
    let built = a.embedding_request(&req, &cfg).unwrap();
    assert_eq!(upstream_json(&built), f["upstream"]);
    let parsed = a.embedding_response(&raw(200, &[], f["response"].to_string().into_bytes())).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), f["expected"]);
}

#[test]
fn embeddings_single_string_and_refusals() {
    let a = adapter();
    let cfg = config(None);
    let one: EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": "hello", "dimensions": 64})).unwrap();
    assert_eq!(
        upstream_json(&a.embedding_request(&one, &cfg).unwrap())["body"],
        json!({"model": MODEL, "input": "hello", "dimensions": 64})
    );
    let tokens: EmbeddingRequest = serde_json::from_value(json!({"model": "m", "input": [[1, 2]]})).unwrap();
    assert_eq!(a.embedding_request(&tokens, &cfg).unwrap_err().kind, tollgate_core::ErrorKind::BadRequest);
    for bad in [
        &b"{}"[..],
        b"{\"embeddings\": [[\"x\"]]}",
        b"{\"embeddings\": [1]}",
        b"nope",
        b"{\"error\": \"boom\"}",
    ] {
        assert!(
            a.embedding_response(&raw(200, &[], bad.to_vec())).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn malformed_chat_bodies_are_decode_errors() {
    let a = adapter();
    for bad in [&b""[..], b"not json", b"{\"done\": true}", b"[1,2]", b"{\"message\": 5}", &[0xff, 0xfe]] {
        let e = a.chat_response(&raw(200, &[], bad.to_vec())).unwrap_err();
        assert_eq!(e.kind, tollgate_core::ErrorKind::Decode, "{}", String::from_utf8_lossy(bad));
        assert_eq!(e.provider.as_deref(), Some("ollama"));
    }
}
