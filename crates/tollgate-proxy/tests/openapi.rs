//! `/openapi.json` stays true: every route the router registers is documented (with its
//! method), and every documented path and method is served (answers something other than the
//! unknown-route 404 or 405).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;
use tollgate_proxy::{ROUTES, openapi_document};

/// `{*id}` (axum's rest-of-path parameter) is `{id}` in OpenAPI.
fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// Every `.route("…"` path literal in the crate's sources: routes registered outside [`ROUTES`]
/// (sub-routers of other modules) are caught too.
fn routes_in_sources() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split(".route(\"").skip(1) {
                    let literal = piece.split('"').next().unwrap();
                    // Paths only (prose such as `.route("…")` in comments is not one).
                    if literal.starts_with('/') {
                        found.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_registered_route_is_documented() {
    let doc = openapi_document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for r in ROUTES {
        let p = openapi_path(r.path);
        let item = paths.get(&p).unwrap_or_else(|| panic!("{} {} is not in /openapi.json", r.method, r.path));
        let op = item
            .get(r.method.to_lowercase())
            .unwrap_or_else(|| panic!("{} {} is documented without that method", r.method, r.path));
        // Routes without auth say so; the others inherit the global schemes.
        if !r.auth {
            assert_eq!(op["security"], serde_json::json!([]), "{} {}", r.method, r.path);
        } else {
            assert!(op.get("security").is_none(), "{} {}", r.method, r.path);
        }
    }
    let sources = routes_in_sources();
    assert!(sources.len() >= 4, "the source scan finds the sub-routers' routes: {sources:?}");
    for literal in sources {
        assert!(paths.contains_key(&openapi_path(&literal)), "route {literal} is not in /openapi.json");
    }
    // The auth schemes and the error envelope.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["x-api-key"]["name"], "x-api-key");
    assert_eq!(schemes["api-key"]["name"], "api-key");
    let err = &doc["components"]["schemas"]["ErrorResponse"]["properties"]["error"]["properties"];
    for field in ["message", "type", "param", "code"] {
        assert!(err.get(field).is_some(), "error.{field}");
    }
}

/// Every `$ref` points at a component that exists.
#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let target = r.strip_prefix("#/").unwrap().split('/').fold(doc, |v, k| &v[k]);
                    assert!(!target.is_null(), "dangling $ref {r}");
                    *seen += 1;
                }
                m.values().for_each(|x| walk(x, doc, seen));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, doc, seen)),
            _ => {}
        }
    }
    let doc = openapi_document();
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 50, "{seen}");
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let proxy = start(
        "general_settings: {master_key: sk-test}\nmodel_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\n",
    )
    .await;
    let served: Value = reqwest::get(proxy.url("/openapi.json")).await.unwrap().json().await.unwrap();
    assert_eq!(served, openapi_document());
    let http = reqwest::Client::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "m").replace("{deployment}", "m");
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            // No key: authenticated routes answer 401, open ones their content.
            let resp = http.request(method.clone(), proxy.url(&concrete)).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(
                status != 405 && !(status == 404 && body["error"]["code"] == "not_found"),
                "{method} {concrete} is documented but answers {status} {body}"
            );
            let op = &item[method.as_str().to_lowercase()];
            if op.get("security") == Some(&serde_json::json!([])) {
                assert_eq!(status, 200, "{method} {concrete} needs no key");
            } else {
                assert_eq!(status, 401, "{method} {concrete} needs a key");
            }
        }
    }
    // The unknown-route answer this test tells apart really is what an unknown path gets.
    let resp = http.get(proxy.url("/v1/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    proxy.stop().await.unwrap();
}
