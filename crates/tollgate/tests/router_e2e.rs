//! The SDK built from a router configuration in LiteLLM's `model_list` / `router_settings` shape:
//! groups of deployments, retries onto a healthy deployment, fallbacks to another group, and
//! credentials for deployments that do not name their own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use serde_json::json;
use tollgate::{ChatRequest, Client, ErrorKind, Message, RouterConfig};
use tollgate_testkit::{MockResponse, MockServer};

fn config(value: serde_json::Value) -> RouterConfig {
    serde_json::from_value(value).expect("a LiteLLM-shaped router config")
}

fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("route me")])
}

#[tokio::test]
async fn a_failing_deployment_is_retried_on_its_healthy_sibling() {
    let broken = MockServer::start().await;
    broken.always(MockResponse::openai_error(500, "server_error", None, "boom"));
    let healthy = MockServer::start_openai().await;
    let client = Client::builder()
        .no_env()
        .router(config(json!({
            "model_list": [
                {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": broken.openai_base(), "api_key": "sk-a", "order": 1}},
                {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": healthy.openai_base(), "api_key": "sk-b", "order": 2}}
            ],
            "router_settings": {"num_retries": 2, "retry_backoff_base": 0.001, "retry_backoff_max": 0.002}
        })))
        .build()
        .unwrap();

    for _ in 0..3 {
        let resp = client.completion(ask("chat")).await.unwrap();
        assert_eq!(resp.first_text(), Some("echo: route me"));
    }
    assert!(broken.request_count() >= 1, "the first tier was tried");
    assert_eq!(healthy.request_count(), 3);
    let seen = healthy.last_request().unwrap();
    assert_eq!(seen.header("authorization"), Some("Bearer sk-b"), "each deployment uses its own key");
    assert_eq!(seen.json().unwrap()["model"], "gpt-4o-mini");

    // Streams go through the router too.
    let mut s = client.stream(ask("chat")).await.unwrap();
    let mut text = String::new();
    while let Some(c) = s.next().await {
        for ch in c.unwrap().choices {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "echo: route me");
}

#[tokio::test]
async fn a_failing_group_falls_back_and_deployments_get_provider_credentials() {
    let primary = MockServer::start().await;
    primary.always(MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down"));
    let backup = MockServer::start_openai().await;
    let client = Client::builder()
        .no_env()
        // Deployments without `api_key` get the provider's key from the client settings.
        .api_key("groq", "gsk-from-settings")
        .router(config(json!({
            "model_list": [
                {"model_name": "primary", "litellm_params": {"model": "openai/gpt-4o", "api_base": primary.openai_base(), "api_key": "sk-p"}},
                {"model_name": "backup", "litellm_params": {"model": "groq/llama-3.3-70b-versatile", "api_base": backup.openai_base()}}
            ],
            "router_settings": {"num_retries": 0, "fallbacks": [{"primary": ["backup"]}]}
        })))
        .build()
        .unwrap();

    let resp = client.completion(ask("primary")).await.unwrap();
    assert_eq!(resp.first_text(), Some("echo: route me"));
    assert_eq!(primary.request_count(), 1);
    assert_eq!(backup.last_request().unwrap().header("authorization"), Some("Bearer gsk-from-settings"));

    // Model strings that are not router groups are still called directly.
    let e = client.completion(ask("nosuch/model")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
}

#[tokio::test]
async fn when_everything_fails_the_error_lists_every_attempt() {
    let a = MockServer::start().await;
    a.always(MockResponse::openai_error(503, "server_error", None, "down a"));
    let b = MockServer::start().await;
    b.always(MockResponse::openai_error(502, "server_error", None, "down b"));
    let client = Client::builder()
        .no_env()
        .router(config(json!({
            "model_list": [
                {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o", "api_base": a.openai_base(), "api_key": "k", "order": 1}},
                {"model_name": "chat", "litellm_params": {"model": "openai/gpt-4o", "api_base": b.openai_base(), "api_key": "k", "order": 2}}
            ],
            "router_settings": {"num_retries": 1, "retry_backoff_base": 0.001, "retry_backoff_max": 0.002}
        })))
        .build()
        .unwrap();
    let e = client.completion(ask("chat")).await.unwrap_err();
    assert!(e.kind.is_retryable(), "{e:?}");
    assert!(a.request_count() >= 1 && b.request_count() >= 1);
    assert!(e.message.contains("down"), "{}", e.message);
}

#[test]
fn an_invalid_router_configuration_is_refused_at_build() {
    let e = Client::builder()
        .no_env()
        .router(config(json!({
            "model_list": [{"model_name": "chat", "litellm_params": {"model": "nosuchprovider/x"}}]
        })))
        .build()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("nosuchprovider"), "{}", e.message);
}
