//! Golden fixtures: for every file in `tests/fixtures/chat/`, the upstream request the adapter
//! builds and the canonical response it parses, compared value for value; for every file in
//! `tests/fixtures/errors/`, the typed error an upstream error body becomes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use tollgate_core::{ChatRequest, ErrorKind, RawResponse, TimeoutPhase};

fn files(sub: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(fixture_dir(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn chat_fixtures() {
    let all = files("chat");
    assert!(all.len() >= 12, "expected the whole fixture set, found {}", all.len());
    for path in all {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let fx = read_json(&path);
        let (adapter, cfg) = adapter_and_cfg(&fx["cfg"]);
        let req: ChatRequest = serde_json::from_value(fx["request"].clone()).unwrap();
        let built = adapter.chat_request(&req, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_request(&name, &built, &fx["upstream_request"]);

        if let Some(upstream) = fx.get("upstream_response") {
            let raw = RawResponse::ok_json(serde_json::to_vec(upstream).unwrap());
            let resp = adapter.chat_response(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut got = serde_json::to_value(&resp).unwrap();
            if fx["response"]["created"] == 0 {
                got["created"] = Value::from(0);
            }
            pretty_assertions::assert_eq!(got, fx["response"], "{name}: response");
        }
    }
}

fn kind_from_str(s: &str) -> ErrorKind {
    match s {
        "RateLimited" => ErrorKind::RateLimited,
        "ContextWindowExceeded" => ErrorKind::ContextWindowExceeded,
        "ContentFiltered" => ErrorKind::ContentFiltered,
        "Authentication" => ErrorKind::Authentication,
        "PermissionDenied" => ErrorKind::PermissionDenied,
        "NotFound" => ErrorKind::NotFound,
        "BadRequest" => ErrorKind::BadRequest,
        "Timeout" => ErrorKind::Timeout(TimeoutPhase::Total),
        "Overloaded" => ErrorKind::Overloaded,
        "ServerError" => ErrorKind::ServerError,
        "Transport" => ErrorKind::Transport,
        "Decode" => ErrorKind::Decode,
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn error_fixtures() {
    let all = files("errors");
    assert!(all.len() >= 12, "expected the whole error set, found {}", all.len());
    for path in all {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let fx = read_json(&path);
        let adapter = tollgate_provider_gemini::adapter(fx["provider"].as_str().unwrap()).unwrap();
        let status = fx["status"].as_u64().unwrap() as u16;
        let mut headers = HeaderMap::new();
        if let Some(Value::Object(hs)) = fx.get("headers") {
            for (k, v) in hs {
                headers.insert(
                    http::HeaderName::try_from(k.as_str()).unwrap(),
                    v.as_str().unwrap().parse().unwrap(),
                );
            }
        }
        let body: Vec<u8> = match &fx["body"] {
            Value::String(s) => s.as_bytes().to_vec(),
            v => serde_json::to_vec(v).unwrap(),
        };
        let raw = RawResponse::new(StatusCode::from_u16(status).unwrap(), headers, body);
        let err = if status == 200 {
            adapter.chat_response(&raw).expect_err(&name)
        } else {
            adapter.error_response(&raw)
        };
        let want = &fx["expected"];
        assert_eq!(err.kind, kind_from_str(want["kind"].as_str().unwrap()), "{name}: kind ({err})");
        assert_eq!(err.provider.as_deref(), fx["provider"].as_str(), "{name}: provider");
        if let Some(s) = want.get("status") {
            assert_eq!(err.status.map(u64::from), s.as_u64(), "{name}: status");
        }
        if let Some(c) = want.get("code") {
            assert_eq!(err.code.as_deref(), c.as_str(), "{name}: code");
        }
        if let Some(m) = want.get("message") {
            assert_eq!(err.message, m.as_str().unwrap(), "{name}: message");
        }
        if let Some(ms) = want.get("retry_after_ms") {
            assert_eq!(err.retry_after, Some(Duration::from_millis(ms.as_u64().unwrap())), "{name}: retry");
        }
    }
}
