//! The proxy over real HTTP on 127.0.0.1: endpoints (through a testkit OpenAI upstream and through
//! the mock provider), auth, the error table, streaming details and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::time::Duration;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_testkit::{MockResponse, MockServer};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn upstream_proxy(extra_yaml: &str) -> (MockServer, Proxy) {
    let up = MockServer::start_openai().await;
    let yaml =
        format!("model_list:\n{}{}", openai_deployment("gpt-4o-mini", &up.openai_base(), ""), extra_yaml);
    let proxy = start(&yaml).await;
    (up, proxy)
}

// ------------------------------------------------------------------------------------------
// Endpoints through an OpenAI-dialect upstream
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn chat_through_upstream() {
    let (up, proxy) = upstream_proxy("").await;
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hi there"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let call_id = resp.headers()["x-tollgate-call-id"].to_str().unwrap().to_owned();
    assert_eq!(call_id.len(), 36);
    assert_eq!(resp.headers()["x-litellm-call-id"].to_str().unwrap(), call_id);
    assert_eq!(resp.headers()["x-tollgate-model-group"], "gpt-4o-mini");
    let resp_headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "echo: hi there");
    assert_eq!(body["usage"]["completion_tokens"], 3);

    // Route headers: deployment id (`<group>#<index>` by default), no retries or fallbacks,
    // gateway overhead, and the cost from the price table.
    let h = &resp_headers;
    assert_eq!(h["x-tollgate-deployment-id"], "gpt-4o-mini#0");
    assert_eq!(h["x-litellm-model-id"], "gpt-4o-mini#0");
    assert_eq!(h["x-tollgate-attempted-retries"], "0");
    assert_eq!(h["x-tollgate-attempted-fallbacks"], "0");
    let overhead: f64 = h["x-tollgate-overhead-ms"].to_str().unwrap().parse().unwrap();
    assert!((0.0..1000.0).contains(&overhead), "{overhead}");
    let cost: f64 = h["x-tollgate-response-cost"].to_str().unwrap().parse().unwrap();
    assert!(cost > 0.0 && cost < 0.01, "{cost}");

    let sent = up.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.json().unwrap()["model"], "gpt-4o-mini");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"));

    // Also without the /v1 prefix.
    let resp = http()
        .post(proxy.url("/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "again"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "echo: again");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn stream_through_upstream_with_and_without_usage() {
    let (_up, proxy) = upstream_proxy("").await;
    let mut req = chat_body("gpt-4o-mini", "one two three");
    req["stream"] = json!(true);
    let resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-tollgate-model-group"], "gpt-4o-mini");
    let body = resp.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let events = sse_json(&body);
    assert_eq!(stream_text(&events), "echo: one two three");
    assert!(events.iter().all(|e| e.get("usage").is_none()), "no usage chunk unless asked: {body}");

    req["stream_options"] = json!({"include_usage": true});
    let body =
        http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap().text().await.unwrap();
    let events = sse_json(&body);
    let last = events.last().unwrap();
    assert_eq!(last["object"], "chat.completion.chunk");
    assert_eq!(last["choices"], json!([]), "OpenAI's usage chunk has empty choices");
    assert_eq!(last["usage"]["completion_tokens"], 4);
    assert_eq!(last["usage"]["total_tokens"], last["usage"]["prompt_tokens"].as_u64().unwrap() + 4);
    assert_eq!(events.iter().filter(|e| e.get("usage").is_some_and(|u| !u.is_null())).count(), 1);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn embeddings_and_completions_through_upstream() {
    let (up, proxy) = upstream_proxy("").await;
    let resp = http()
        .post(proxy.url("/v1/embeddings"))
        .json(&json!({"model": "gpt-4o-mini", "input": ["a b", "c"], "dimensions": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(up.last_request().unwrap().path, "/v1/embeddings");

    let resp = http()
        .post(proxy.url("/completions"))
        .json(&json!({"model": "gpt-4o-mini", "prompt": "say this"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "echo: say this");
    assert_eq!(up.last_request().unwrap().path, "/v1/completions");

    let body = http()
        .post(proxy.url("/v1/completions"))
        .json(&json!({"model": "gpt-4o-mini", "prompt": "x y", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let text: String =
        sse_json(&body).iter().filter_map(|e| e["choices"][0]["text"].as_str().map(str::to_owned)).collect();
    assert_eq!(text, "echo: x y");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn models_list_the_configured_groups() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}{}  - model_name: team/echo\n    litellm_params: {{model: mock/echo}}\n",
        openai_deployment("gpt-4o-mini", &up.openai_base(), ""),
        openai_deployment("gpt-4o-mini", &up.openai_base(), ""),
    );
    let proxy = start(&yaml).await;
    for path in ["/v1/models", "/models"] {
        let body: Value = http().get(proxy.url(path)).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["object"], "list");
        let ids: Vec<&str> =
            body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["gpt-4o-mini", "team/echo"]);
        assert_eq!(body["data"][0]["object"], "model");
    }
    let one: Value =
        http().get(proxy.url("/v1/models/team/echo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["id"], "team/echo");
    let resp = http().get(proxy.url("/models/gpt-4o")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(up.request_count(), 0, "listing models calls no upstream");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn fallbacks_and_custom_prices_show_in_headers() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}{}litellm_settings:\n  num_retries: 0\n  fallbacks: [{{\"primary\": [\"backup\"]}}]\n",
        openai_deployment("primary", &up.openai_base(), ""),
        openai_deployment(
            "backup",
            &up.openai_base(),
            "      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n"
        ),
    );
    let proxy = start(&yaml).await;
    up.enqueue(MockResponse::openai_error(500, "server_error", None, "boom"));
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("primary", "hi there"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-tollgate-attempted-fallbacks"], "1");
    assert_eq!(h["x-litellm-attempted-fallbacks"], "1");
    assert_eq!(h["x-tollgate-model-group"], "backup", "the group that answered");
    assert_eq!(h["x-tollgate-deployment-id"], "backup#1");
    let body: Value = resp.json().await.unwrap();
    let (p, c) = (
        body["usage"]["prompt_tokens"].as_f64().unwrap(),
        body["usage"]["completion_tokens"].as_f64().unwrap(),
    );
    let cost: f64 = h["x-tollgate-response-cost"].to_str().unwrap().parse().unwrap();
    assert!((cost - (p * 0.001 + c * 0.002)).abs() < 1e-12, "{cost} for {p}+{c} tokens");
    assert_eq!(up.request_count(), 2);
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// The mock provider
// ------------------------------------------------------------------------------------------

const MOCK_YAML: &str = "model_list:
  - model_name: echo
    litellm_params:
      model: mock/echo
  - model_name: fixed
    litellm_params:
      model: openai/gpt-4o
      mock_response: Fixed reply here
  - model_name: embed
    litellm_params:
      model: mock/embed
";

#[tokio::test]
async fn mock_provider_answers_offline() {
    let proxy = start(MOCK_YAML).await;
    let body: Value = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("echo", "hello mock world"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "hello mock world");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], json!({"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}));

    // `mock_response` on any deployment makes it a mock (LiteLLM's behaviour).
    let mut req = chat_body("fixed", "ignored");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let body =
        http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap().text().await.unwrap();
    let events = sse_json(&body);
    assert_eq!(stream_text(&events), "Fixed reply here");
    // role chunk, 3 word chunks, finish chunk, usage chunk
    assert_eq!(events.len(), 6, "{body}");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[5]["choices"], json!([]));
    assert_eq!(events[5]["usage"]["completion_tokens"], 3);
    assert!(body.ends_with("data: [DONE]\n\n"));

    let body: Value = http()
        .post(proxy.url("/v1/embeddings"))
        .json(&json!({"model": "embed", "input": "abc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 16);

    let body: Value = http()
        .post(proxy.url("/v1/completions"))
        .json(&json!({"model": "echo", "prompt": "complete me"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["text"], "complete me");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn stream_sends_keepalive_pings_while_idle() {
    let mut cfg = config(
        "model_list:\n  - model_name: slow\n    litellm_params: {model: mock/slow, mock_chunk_delay_ms: 400}\n",
    );
    cfg.server.keepalive_interval = Duration::from_millis(100);
    let proxy = start_config(cfg).await;
    let mut req = chat_body("slow", "a b");
    req["stream"] = json!(true);
    let body =
        http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap().text().await.unwrap();
    let events = sse_events(&body);
    assert!(events.iter().any(|e| e == ": ping"), "{body}");
    assert_eq!(stream_text(&sse_json(&body)), "a b");
    assert_eq!(events.last().unwrap(), "[DONE]");
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Auth
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn master_key_is_required_and_never_forwarded() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}general_settings:\n  master_key: sk-master-123\n",
        openai_deployment("gpt-4o-mini", &up.openai_base(), "")
    );
    let proxy = start(&yaml).await;
    let url = proxy.url("/v1/chat/completions");
    let body = chat_body("gpt-4o-mini", "hi");

    let resp = http().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "authentication_error");
    let resp = http().post(&url).bearer_auth("sk-master-12").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http().get(proxy.url("/v1/models")).header("x-api-key", "wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(up.request_count(), 0, "refused requests never reach an upstream");

    let resp = http().post(&url).bearer_auth("sk-master-123").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http().post(&url).header("x-api-key", "sk-master-123").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http().post(&url).header("api-key", "sk-master-123").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    for r in up.requests() {
        assert_eq!(r.header("authorization"), Some("Bearer sk-upstream"));
        assert!(r.header("x-api-key").is_none() && r.header("api-key").is_none());
        assert!(!format!("{:?}", r.headers).contains("sk-master-123"));
    }
    assert_eq!(up.request_count(), 3);

    // Health probes need no key.
    for path in ["/health/liveliness", "/health/liveness", "/health/readiness"] {
        assert_eq!(http().get(proxy.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Error table
// ------------------------------------------------------------------------------------------

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn request_errors() {
    let (up, proxy) = upstream_proxy("general_settings:\n  max_request_size_mb: 0.001\n").await; // 1048 bytes
    let url = proxy.url("/v1/chat/completions");

    let resp = http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{body}");

    let resp = http().post(&url).json(&json!({"model": "gpt-4o-mini"})).send().await.unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("messages"), "{body}");

    let resp = http().post(&url).json(&chat_body("gpt-5-unknown", "hi")).send().await.unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");

    // A provider model string that is not a configured group is not passed through.
    let resp = http().post(&url).json(&chat_body("openai/gpt-4o-mini", "hi")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    let big = "x".repeat(4000);
    let resp = http().post(&url).json(&chat_body("gpt-4o-mini", &big)).send().await.unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "request_too_large");
    assert_eq!(up.request_count(), 0);
    proxy.stop().await.unwrap();
}

const NO_RETRY: &str = "router_settings:\n  num_retries: 0\n";

#[tokio::test]
async fn upstream_rate_limit_is_429_with_retry_after() {
    let (up, proxy) = upstream_proxy(NO_RETRY).await;
    up.enqueue(
        MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "Slow down").retry_after(7),
    );
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "7");
    assert!(resp.headers().contains_key("x-tollgate-call-id"));
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("Slow down"), "{body}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_context_window_is_400_context_length_exceeded() {
    let (up, proxy) = upstream_proxy(NO_RETRY).await;
    up.enqueue(MockResponse::openai_error(
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        "This model's maximum context length is 128000 tokens.",
    ));
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_down_is_502() {
    // A port that was just free: nothing listens there.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let yaml = format!(
        "model_list:\n{}{NO_RETRY}",
        openai_deployment("gpt-4o-mini", &format!("http://{addr}/v1"), "")
    );
    let proxy = start(&yaml).await;
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert!(status == 502 || status == 503, "{status} {body}");
    assert_eq!(body["error"]["type"], "api_connection_error");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let up = MockServer::start_openai().await;
    up.enqueue(MockResponse::openai_chat("late").delay_before_headers(Duration::from_secs(5)));
    let yaml = format!(
        "model_list:\n{}{NO_RETRY}",
        openai_deployment("gpt-4o-mini", &up.openai_base(), "      timeout: 0.3\n")
    );
    let proxy = start(&yaml).await;
    let started = std::time::Instant::now();
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hi"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["type"], "timeout_error");
    assert!(started.elapsed() < Duration::from_secs(4));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn mid_stream_cut_becomes_one_error_event() {
    let (up, proxy) = upstream_proxy(NO_RETRY).await;
    let pieces: Vec<String> = (0..20).map(|i| format!("word{i} ")).collect();
    up.enqueue(MockResponse::openai_stream_text(pieces, None).chunk_size(400).cut_after_chunks(2));
    let mut req = chat_body("gpt-4o-mini", "hi");
    req["stream"] = json!(true);
    let resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let events = sse_json(&body);
    let errors: Vec<&Value> = events.iter().filter(|e| e.get("error").is_some()).collect();
    assert_eq!(errors.len(), 1, "{body}");
    assert!(errors[0]["error"]["message"].is_string());
    assert!(errors[0]["error"]["type"].is_string());
    assert!(events.last().unwrap().get("error").is_some(), "the error event is the last: {body}");
    assert!(!body.contains("[DONE]"), "a broken stream does not end with [DONE]: {body}");
    assert!(stream_text(&events).starts_with("word0 "), "{body}");
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Graceful shutdown
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_drains_an_in_flight_stream() {
    let mut proxy = start(
        "model_list:\n  - model_name: slow\n    litellm_params: {model: mock/slow, mock_chunk_delay_ms: 50}\n",
    )
    .await;
    let mut req = chat_body("slow", "one two three four five six seven eight");
    req["stream"] = json!(true);
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));

    proxy.signal_shutdown();
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let mut body = String::from_utf8(first.to_vec()).unwrap();
    body.push_str(std::str::from_utf8(&rest).unwrap());
    assert_eq!(stream_text(&sse_json(&body)), "one two three four five six seven eight");
    assert!(body.ends_with("data: [DONE]\n\n"));
    let result = tokio::time::timeout(Duration::from_secs(5), proxy.task.take().unwrap()).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");

    // No longer accepting.
    let after = reqwest::Client::new().get(proxy.url("/health/liveliness")).send().await;
    assert!(after.is_err());
}

/// A client that goes away mid-stream ends the request at once: the upstream stream is dropped
/// (cancelled), so nothing is left in flight and shutdown does not wait for it.
#[tokio::test]
async fn client_disconnect_ends_the_call() {
    let up = MockServer::start_openai().await;
    let pieces: Vec<String> = (0..50).map(|i| format!("w{i} ")).collect();
    up.enqueue(MockResponse::openai_stream_text(pieces, None).chunk_size(300).stall_after_chunks(2));
    let yaml = format!("model_list:\n{}{NO_RETRY}", openai_deployment("gpt-4o-mini", &up.openai_base(), ""));
    let mut cfg = config(&yaml);
    cfg.server.drain_timeout = Duration::from_secs(30);
    let mut proxy = start_config(cfg).await;
    let mut req = chat_body("gpt-4o-mini", "hi");
    req["stream"] = json!(true);
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.signal_shutdown();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), proxy.task.take().unwrap()).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "nothing left to drain: {:?}", started.elapsed());
}

#[tokio::test]
async fn shutdown_cuts_streams_at_the_drain_deadline() {
    let mut cfg = config(
        "model_list:\n  - model_name: slow\n    litellm_params: {model: mock/slow, mock_chunk_delay_ms: 1000}\n",
    );
    cfg.server.drain_timeout = Duration::from_millis(200);
    let mut proxy = start_config(cfg).await;
    let mut req = chat_body("slow", "a b c d e f g h i j");
    req["stream"] = json!(true);
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    resp.chunk().await.unwrap().unwrap();
    proxy.signal_shutdown();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), proxy.task.take().unwrap()).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}
