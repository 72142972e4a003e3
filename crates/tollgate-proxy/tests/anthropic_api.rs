//! The Anthropic-compatible endpoints over real HTTP on 127.0.0.1: `/v1/messages` (plain and
//! streamed) through the mock provider, an OpenAI-dialect testkit upstream and an Anthropic
//! testkit upstream; tools round trips; Anthropic-shaped errors; `count_tokens`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_testkit::anthropic::{AnthropicStream, AnthropicUsage};
use tollgate_testkit::{MockResponse, MockServer};

const NO_RETRY: &str = "router_settings:\n  num_retries: 0\n";

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// One named SSE event: `event:` name and parsed `data:`.
#[derive(Debug)]
struct Event {
    name: String,
    data: Value,
}

fn events_of(body: &str) -> Vec<Event> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("unexpected line {line:?} in {body}");
                }
            }
            let data: Value =
                serde_json::from_str(&data).unwrap_or_else(|err| panic!("bad data {data}: {err}"));
            let name = name.unwrap_or_else(|| panic!("event without a name: {e}"));
            // Anthropic's events repeat their name as `type`.
            assert_eq!(data["type"], name.as_str(), "{e}");
            Event { name, data }
        })
        .collect()
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

/// The concatenated deltas of one kind (`text_delta` → `text`, …) of block `index`.
fn deltas(events: &[Event], kind: &str, field: &str, index: u64) -> String {
    events
        .iter()
        .filter(|e| {
            e.name == "content_block_delta" && e.data["index"] == index && e.data["delta"]["type"] == kind
        })
        .map(|e| e.data["delta"][field].as_str().unwrap().to_owned())
        .collect()
}

/// The expected event names of a stream with one text block of `n` deltas.
fn text_stream_names(n: usize) -> Vec<&'static str> {
    let mut v = vec!["message_start", "ping", "content_block_start"];
    v.extend(std::iter::repeat_n("content_block_delta", n));
    v.extend(["content_block_stop", "message_delta", "message_stop"]);
    v
}

fn msg_body(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]})
}

async fn post(proxy: &Proxy, path: &str, body: &Value) -> reqwest::Response {
    http().post(proxy.url(path)).header("anthropic-version", "2023-06-01").json(body).send().await.unwrap()
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (status, body)
}

const MOCK_YAML: &str = "model_list:\n  - model_name: m\n    litellm_params: {model: mock/echo}\n";

async fn openai_upstream(extra_yaml: &str) -> (MockServer, Proxy) {
    let up = MockServer::start_openai().await;
    let yaml = format!("model_list:\n{}{extra_yaml}", openai_deployment("gpt", &up.openai_base(), ""));
    let proxy = start(&yaml).await;
    (up, proxy)
}

async fn anthropic_upstream(extra_yaml: &str) -> (MockServer, Proxy) {
    let up = MockServer::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {}\n      api_key: sk-ant-upstream\n{extra_yaml}",
        up.url()
    );
    let proxy = start(&yaml).await;
    (up, proxy)
}

// ------------------------------------------------------------------------------------------
// The mock provider
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn message_through_mock_with_system_prompt() {
    let proxy = start(MOCK_YAML).await;
    let mut body = msg_body("m", "hello there world");
    body["system"] = json!("be brief");
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model-group"], "m");
    let call_id = resp.headers()["x-tollgate-call-id"].to_str().unwrap().replace('-', "");
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["id"], format!("msg_{call_id}"));
    assert_eq!(request_id.replace('-', ""), call_id, "Anthropic's request-id header");
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(msg["model"], "m");
    assert_eq!(msg["content"], json!([{"type": "text", "text": "hello there world"}]));
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["stop_sequence"], Value::Null);
    // The mock counts words of every message, the system prompt included: 2 + 3.
    assert_eq!(msg["usage"]["input_tokens"], 5);
    assert_eq!(msg["usage"]["output_tokens"], 3);

    // Also without the /v1 prefix.
    let resp = post(&proxy, "/messages", &msg_body("m", "again")).await;
    assert_eq!(resp.status(), 200);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["content"][0]["text"], "again");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn stream_through_mock_has_anthropic_event_sequence() {
    let proxy = start(MOCK_YAML).await;
    let mut body = msg_body("m", "one two three four");
    body["stream"] = json!(true);
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events = events_of(&text);
    assert_eq!(names(&events), text_stream_names(4), "{text}");
    let start = &events[0].data["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"), "{text}");
    assert_eq!(start["model"], "m");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(events[2].data["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(events[2].data["index"], 0);
    assert_eq!(deltas(&events, "text_delta", "text", 0), "one two three four");
    let delta = &events[events.len() - 2].data;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
    assert_eq!(delta["usage"]["input_tokens"], 4);
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// An OpenAI-dialect upstream behind the group
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn message_through_openai_upstream() {
    let (up, proxy) = openai_upstream("").await;
    let mut body = msg_body("gpt", "hi there");
    body["system"] =
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]);
    body["temperature"] = json!(0.5);
    body["top_k"] = json!(5);
    body["stop_sequences"] = json!(["END"]);
    // Claude Code's user ids are longer than OpenAI's 64-character `user` limit.
    body["metadata"] =
        json!({"user_id": format!("user_{}_account__session_{}", "a".repeat(64), "b".repeat(36))});
    let resp = http()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-client")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-deployment-id"], "gpt#0");
    assert!(resp.headers().contains_key("x-tollgate-response-cost"));
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["content"], json!([{"type": "text", "text": "echo: hi there"}]));
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["model"], "gpt");
    assert!(msg["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(msg["usage"]["output_tokens"], 3);

    let sent = up.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"), "the deployment's key");
    assert_eq!(sent.header("x-api-key"), None, "the client's key is not forwarded");
    assert_eq!(sent.header("anthropic-beta"), None);
    let sent = sent.json().unwrap();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
            {"role": "user", "content": "hi there"}
        ])
    );
    assert!(!sent.to_string().contains("cache_control"), "OpenAI rejects cache_control: {sent}");
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["stop"], json!(["END"]));
    assert!(sent.get("top_k").is_none(), "Anthropic-only fields are not sent to OpenAI: {sent}");
    assert!(sent.get("user").is_none(), "{sent}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn stream_through_openai_upstream() {
    let (_up, proxy) = openai_upstream("").await;
    let mut body = msg_body("gpt", "one two three");
    body["stream"] = json!(true);
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-model-group"], "gpt");
    let text = resp.text().await.unwrap();
    let events = events_of(&text);
    let n = events.iter().filter(|e| e.name == "content_block_delta").count();
    assert!(n >= 2, "{text}");
    assert_eq!(names(&events), text_stream_names(n), "{text}");
    assert_eq!(deltas(&events, "text_delta", "text", 0), "echo: one two three");
    let delta = &events[events.len() - 2].data;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4, "the upstream's usage: {text}");
    assert!(delta["usage"]["input_tokens"].as_u64().unwrap() > 0);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn tools_round_trip_through_openai_upstream() {
    let (up, proxy) = openai_upstream("").await;
    let tools = json!([{
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }]);
    // Turn 1: the model calls the tool.
    up.enqueue(MockResponse::openai_tool_calls([("call_1", "get_weather", r#"{"city":"Paris"}"#)]));
    let mut body = msg_body("gpt", "weather in Paris?");
    body["tools"] = tools.clone();
    body["tool_choice"] = json!({"type": "any"});
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["stop_reason"], "tool_use");
    assert_eq!(
        msg["content"],
        json!([{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}])
    );
    let sent = up.last_request().unwrap().json().unwrap();
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["function"]["parameters"], tools[0]["input_schema"]);
    assert_eq!(sent["tool_choice"], "required");

    // Turn 2: the tool result goes back; the upstream sees OpenAI's tool message.
    up.enqueue(MockResponse::openai_chat("It is sunny."));
    let body = json!({
        "model": "gpt", "max_tokens": 100, "tools": tools,
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": msg["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny, 21C"},
                {"type": "text", "text": "thanks"}
            ]}
        ]
    });
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["content"], json!([{"type": "text", "text": "It is sunny."}]));
    let sent = up.last_request().unwrap().json().unwrap();
    let m = &sent["messages"];
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(m[1]["tool_calls"][0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(m[1]["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(m[2], json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}));
    assert_eq!(m[3], json!({"role": "user", "content": "thanks"}));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn streamed_tool_call_through_openai_upstream() {
    let (up, proxy) = openai_upstream("").await;
    let args = r#"{"city":"Paris","unit":"C"}"#;
    up.enqueue(MockResponse::openai_stream_tool_calls([("call_9", "get_weather", args)], Some((20, 7))));
    let mut body = msg_body("gpt", "weather?");
    body["stream"] = json!(true);
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let text = post(&proxy, "/v1/messages", &body).await.text().await.unwrap();
    let events = events_of(&text);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{text}"
    );
    assert_eq!(
        events[2].data["content_block"],
        json!({"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {}})
    );
    assert_eq!(deltas(&events, "input_json_delta", "partial_json", 0), args);
    let delta = &events[6].data;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["input_tokens"], 20);
    assert_eq!(delta["usage"]["output_tokens"], 7);
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// An Anthropic upstream behind the group: betas passed on, thinking streamed back
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn thinking_stream_through_anthropic_upstream() {
    let (up, proxy) = anthropic_upstream("").await;
    up.enqueue(
        AnthropicStream::new("msg_up", "claude-sonnet-4-5", AnthropicUsage::new(30, 1))
            .ping()
            .thinking(["Let me ", "think."], "sig-123")
            .text(["The answer ", "is 4."])
            .finish("end_turn", 12)
            .into_response(),
    );
    let mut body = msg_body("claude", "2+2?");
    body["messages"][0]["content"] =
        json!([{"type": "text", "text": "2+2?", "cache_control": {"type": "ephemeral"}}]);
    body["stream"] = json!(true);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let resp = http()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-client")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events = events_of(&text);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{text}"
    );
    assert_eq!(events[2].data["content_block"]["type"], "thinking");
    assert_eq!(deltas(&events, "thinking_delta", "thinking", 0), "Let me think.");
    assert_eq!(deltas(&events, "signature_delta", "signature", 0), "sig-123");
    assert_eq!(events[7].data["content_block"], json!({"type": "text", "text": ""}));
    assert_eq!(events[7].data["index"], 1);
    assert_eq!(deltas(&events, "text_delta", "text", 1), "The answer is 4.");
    assert_eq!(events[11].data["usage"]["output_tokens"], 12);
    assert_eq!(events[11].data["usage"]["input_tokens"], 30);

    let sent = up.last_request().unwrap();
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-upstream"), "the deployment's key, not the client's");
    assert!(sent.header("anthropic-beta").unwrap().contains("interleaved-thinking-2025-05-14"));
    let sent = sent.json().unwrap();
    assert_eq!(sent["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "2+2?", "cache_control": {"type": "ephemeral"}}
        ]}]),
        "Anthropic deployments get the markers unchanged"
    );
    assert_eq!(sent["model"], "claude-sonnet-4-5");
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Errors in Anthropic's shape
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_model_is_404_not_found_error() {
    let proxy = start(MOCK_YAML).await;
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, body) = error_of(post(&proxy, path, &msg_body("nope", "hi")).await).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["type"], "not_found_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
        assert!(body["request_id"].is_string());
    }
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn bad_json_and_missing_fields_are_400_invalid_request_error() {
    let proxy = start(MOCK_YAML).await;
    let resp = http()
        .post(proxy.url("/v1/messages"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, body) =
        error_of(post(&proxy, "/v1/messages", &json!({"model": "m", "messages": []})).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("max_tokens"), "{body}");
    proxy.stop().await.unwrap();

    // A body over the limit: 413 `request_too_large`, as Anthropic answers.
    let proxy = start(&format!("{MOCK_YAML}general_settings:\n  max_request_size_mb: 0.001\n")).await;
    let (status, body) =
        error_of(post(&proxy, "/v1/messages", &msg_body("m", &"x".repeat(4000))).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["type"], "request_too_large");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn auth_failures_are_401_authentication_error() {
    let yaml = format!("{MOCK_YAML}general_settings:\n  master_key: sk-master\n");
    let proxy = start(&yaml).await;
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, body) = error_of(post(&proxy, path, &msg_body("m", "hi")).await).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    let resp = http()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .json(&msg_body("m", "hi"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");

    // x-api-key is how Anthropic clients send the key.
    let resp = http()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-master")
        .header("anthropic-version", "2023-06-01")
        .json(&msg_body("m", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["content"][0]["text"], "hi");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_rate_limit_is_429_rate_limit_error_with_retry_after() {
    let (up, proxy) = openai_upstream(NO_RETRY).await;
    up.enqueue(
        MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "Slow down").retry_after(7),
    );
    let resp = post(&proxy, "/v1/messages", &msg_body("gpt", "hi")).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    assert!(resp.headers().contains_key("x-tollgate-call-id"));
    let (status, body) = error_of(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("Slow down"), "{body}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_overloaded_is_529_overloaded_error() {
    let (up, proxy) = anthropic_upstream(NO_RETRY).await;
    up.enqueue(MockResponse::anthropic_error(529, "overloaded_error", "Overloaded"));
    let (status, body) = error_of(post(&proxy, "/v1/messages", &msg_body("claude", "hi")).await).await;
    assert_eq!(status, 529);
    assert_eq!(body["error"]["type"], "overloaded_error");

    // Also from an OpenAI upstream's 503.
    let (up, proxy2) = openai_upstream(NO_RETRY).await;
    up.enqueue(MockResponse::openai_error(503, "server_error", None, "busy"));
    let (status, body) = error_of(post(&proxy2, "/v1/messages", &msg_body("gpt", "hi")).await).await;
    assert_eq!(status, 529);
    assert_eq!(body["error"]["type"], "overloaded_error");
    proxy.stop().await.unwrap();
    proxy2.stop().await.unwrap();
}

#[tokio::test]
async fn mid_stream_failure_is_one_error_event_then_the_end() {
    let (up, proxy) = openai_upstream(NO_RETRY).await;
    let pieces: Vec<String> = (0..20).map(|i| format!("word{i} ")).collect();
    up.enqueue(MockResponse::openai_stream_text(pieces, None).chunk_size(400).cut_after_chunks(2));
    let mut body = msg_body("gpt", "hi");
    body["stream"] = json!(true);
    let resp = post(&proxy, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events = events_of(&text);
    let errors: Vec<&Event> = events.iter().filter(|e| e.name == "error").collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert_eq!(events.last().unwrap().name, "error", "the error is the last event: {text}");
    assert!(errors[0].data["error"]["type"].is_string());
    assert!(!names(&events).contains(&"message_stop"), "{text}");
    assert_eq!(events[0].name, "message_start");
    assert!(deltas(&events, "text_delta", "text", 0).starts_with("word0 "), "{text}");
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// count_tokens
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn count_tokens_uses_the_token_counter() {
    use tollgate::tollgate_core::Message;
    let (up, proxy) = openai_upstream("").await;
    let body = json!({
        "model": "gpt",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "How many tokens is this sentence?"}]
    });
    let resp = post(&proxy, "/v1/messages/count_tokens", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-token-count"], "exact");
    let got: Value = resp.json().await.unwrap();
    let expected = tollgate::pricing::tokens::count_chat(
        "openai/gpt-4o-mini",
        &[Message::system("You are terse."), Message::user("How many tokens is this sentence?")],
        &[],
    );
    assert_eq!(got, json!({"input_tokens": expected.tokens}));
    assert!(expected.tokens > 10);
    assert_eq!(up.request_count(), 0, "counting calls no upstream");

    // Tools count too.
    let mut with_tools = body.clone();
    with_tools["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let got2: Value = post(&proxy, "/v1/messages/count_tokens", &with_tools).await.json().await.unwrap();
    assert!(got2["input_tokens"].as_u64().unwrap() > expected.tokens, "{got2}");
    proxy.stop().await.unwrap();

    // A non-OpenAI model is an estimate.
    let proxy = start(MOCK_YAML).await;
    let resp = post(&proxy, "/v1/messages/count_tokens", &msg_body("m", "hello")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-token-count"], "estimate");
    let got: Value = resp.json().await.unwrap();
    assert!(got["input_tokens"].as_u64().unwrap() > 0);
    proxy.stop().await.unwrap();
}

/// Sum of a counter's samples whose label set contains every `label="value"` pair given.
fn counter_sum(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn messages_calls_are_counted_in_metrics_with_their_tokens() {
    let (_up, proxy) = openai_upstream("").await;
    let scrape = || async { http().get(proxy.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let before = counter_sum(
        &scrape().await,
        "tollgate_tokens_total",
        &["model_group=\"gpt\"", "type=\"completion\""],
    );

    let resp = post(&proxy, "/v1/messages", &msg_body("gpt", "hi there")).await;
    assert_eq!(resp.status(), 200);
    let mut streamed = msg_body("gpt", "hi there");
    streamed["stream"] = json!(true);
    let resp = post(&proxy, "/v1/messages", &streamed).await;
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();

    let text = scrape().await;
    let after = counter_sum(&text, "tollgate_tokens_total", &["model_group=\"gpt\"", "type=\"completion\""]);
    // "echo: hi there" is 3 completion tokens for the mock upstream, once per call.
    assert_eq!(after - before, 6.0, "{text}");
    proxy.stop().await.unwrap();
}
