//! Request defaults from `litellm_params` (`temperature`, `max_tokens`, `top_p`, `stop`, …):
//! applied when the request leaves them out, never over what the request sets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use common::*;
use serde_json::{Value, json};
use tollgate_testkit::MockServer;

const DEFAULTS: &str =
    "      temperature: 0.2\n      top_p: 0.9\n      max_tokens: 50\n      stop: [\"END\"]\n      seed: 7\n";

async fn sent_body(up: &MockServer, proxy: &Proxy, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new().post(proxy.url(path)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    up.last_request().unwrap().json().unwrap()
}

#[tokio::test]
async fn deployment_params_fill_what_the_request_leaves_out() {
    let up = MockServer::start_openai().await;
    let yaml = format!("model_list:\n{}", openai_deployment("g", &up.openai_base(), DEFAULTS));
    let proxy = start(&yaml).await;

    let sent = sent_body(&up, &proxy, "/v1/chat/completions", chat_body("g", "hi")).await;
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["top_p"], 0.9);
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["seed"], 7);
    let limit = sent.get("max_tokens").or_else(|| sent.get("max_completion_tokens"));
    assert_eq!(limit, Some(&json!(50)), "{sent}");

    // What the request sets wins.
    let mut body = chat_body("g", "hi");
    body["temperature"] = json!(1.0);
    body["stop"] = json!("STOP");
    let sent = sent_body(&up, &proxy, "/v1/chat/completions", body).await;
    assert_eq!(sent["temperature"], 1.0);
    assert_eq!(sent["stop"], "STOP");
    assert_eq!(sent["top_p"], 0.9);

    // Text completions too.
    let sent =
        sent_body(&up, &proxy, "/v1/completions", json!({"model": "g", "prompt": "say", "top_p": 0.5})).await;
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["max_tokens"], 50);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn defaults_the_deployments_disagree_on_are_not_applied() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}{}",
        openai_deployment("g", &up.openai_base(), "      temperature: 0.1\n      top_p: 0.8\n"),
        openai_deployment("g", &up.openai_base(), "      temperature: 0.3\n      top_p: 0.8\n"),
    );
    let proxy = start(&yaml).await;
    for _ in 0..4 {
        let sent = sent_body(&up, &proxy, "/v1/chat/completions", chat_body("g", "hi")).await;
        assert_eq!(sent.get("temperature"), None, "{sent}");
        assert_eq!(sent["top_p"], 0.8);
    }
    // Groups without defaults are untouched.
    let yaml = format!("model_list:\n{}", openai_deployment("plain", &up.openai_base(), ""));
    let proxy2 = start(&yaml).await;
    let sent = sent_body(&up, &proxy2, "/v1/chat/completions", chat_body("plain", "hi")).await;
    for k in ["temperature", "top_p", "max_tokens", "stop", "seed"] {
        assert_eq!(sent.get(k), None, "{k} in {sent}");
    }
    proxy.stop().await.unwrap();
    proxy2.stop().await.unwrap();
}
