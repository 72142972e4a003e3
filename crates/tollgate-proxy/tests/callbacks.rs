//! Callbacks over real HTTP on 127.0.0.1: the `generic_api` webhook and the OTLP/HTTP trace
//! exporter (a testkit `MockServer` records what they send), a library sink, client
//! disconnects, retries, a stalled receiver and the flush at graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_proxy::{CallEvent, CallStatus, CallbackSink, EventFilter, Gateway, ProxyConfig};
use tollgate_testkit::openai::OpenAiChatStream;
use tollgate_testkit::{MockResponse, MockServer, RecordedRequest};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

const NO_RETRY: &str = "router_settings:\n  num_retries: 0\n";

/// The recorded requests to `path`, waiting (up to `limit`) until there are at least `n`.
async fn wait_requests(server: &MockServer, path: &str, n: usize, limit: Duration) -> Vec<RecordedRequest> {
    let deadline = Instant::now() + limit;
    loop {
        let reqs = server.requests_for(path);
        if reqs.len() >= n || Instant::now() >= deadline {
            return reqs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of every webhook request, in order.
fn events_of(reqs: &[RecordedRequest]) -> Vec<Value> {
    reqs.iter()
        .flat_map(|r| match r.json().unwrap() {
            Value::Array(items) => items,
            other => panic!("a webhook body is a JSON array, got {other}"),
        })
        .collect()
}

async fn wait_events(server: &MockServer, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let evs = events_of(&server.requests_for("/hook"));
        if evs.len() >= n || Instant::now() >= deadline {
            return evs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn by_call_id<'a>(events: &'a [Value], call_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no event for {call_id}: {events:?}"))
}

fn webhook_yaml(upstream: &str, hook: &MockServer, settings: &str, general: &str) -> String {
    format!(
        "model_list:\n{}  - model_name: mocky\n    litellm_params: {{model: mock/echo}}\n{NO_RETRY}litellm_settings:\n{settings}general_settings:\n  webhook_url: {}/hook\n{general}",
        openai_deployment("gpt-4o-mini", upstream, ""),
        hook.url()
    )
}

fn call_id(resp: &reqwest::Response) -> String {
    resp.headers()["x-tollgate-call-id"].to_str().unwrap().to_owned()
}

async fn stream_body(proxy: &Proxy, model: &str, text: &str) -> (String, String) {
    let mut req = chat_body(model, text);
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = call_id(&resp);
    (id, resp.text().await.unwrap())
}

#[tokio::test]
async fn webhook_gets_success_failure_and_stream_events_in_one_batch() {
    let up = MockServer::start_openai().await;
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_batch_size: 3\n  webhook_flush_interval: 3600\n  webhook_headers: {Authorization: Bearer hook-token}\n",
    );
    let proxy = start(&yaml).await;

    let secret_prompt = "tell me the launch codes";
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", secret_prompt))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ok_id = call_id(&resp);
    let cost: f64 = resp.headers()["x-tollgate-response-cost"].to_str().unwrap().parse().unwrap();
    let body: Value = resp.json().await.unwrap();

    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("nope", "hi")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let fail_id = call_id(&resp);

    // Two events are below the batch size and the interval is an hour: nothing sent yet.
    assert!(hook.requests_for("/hook").is_empty());

    let (stream_id, sse) = stream_body(&proxy, "gpt-4o-mini", "stream these words").await;
    let chunks = sse_json(&sse);
    let stream_usage = chunks.last().unwrap()["usage"].clone();
    assert!(stream_usage["prompt_tokens"].as_u64().unwrap() > 0, "{stream_usage}");

    let reqs = wait_requests(&hook, "/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(reqs.len(), 1, "the third event fills a batch of 3");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer hook-token"));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    let raw = reqs[0].body_str().unwrap().to_owned();
    assert!(!raw.contains("launch codes"), "no prompt text in events: {raw}");
    assert!(!raw.contains("echo:"), "no response text in events: {raw}");
    assert!(!raw.contains("sk-upstream"), "no credentials in events: {raw}");
    let events = events_of(&reqs);
    assert_eq!(events.len(), 3);

    let ok = by_call_id(&events, &ok_id);
    assert_eq!(ok["status"], "success");
    assert_eq!(ok["error"], Value::Null);
    assert_eq!(ok["endpoint"], "chat");
    assert_eq!(ok["http_status"], 200);
    assert_eq!(ok["model_group"], "gpt-4o-mini");
    assert_eq!(ok["requested_model"], "gpt-4o-mini");
    assert_eq!(ok["model"], "openai/gpt-4o-mini");
    assert_eq!(ok["provider"], "openai");
    assert_eq!(ok["deployment_id"], "gpt-4o-mini#0");
    assert_eq!(ok["usage_known"], true);
    assert_eq!(ok["prompt_tokens"], body["usage"]["prompt_tokens"]);
    assert_eq!(ok["completion_tokens"], body["usage"]["completion_tokens"]);
    assert_eq!(ok["total_tokens"], body["usage"]["total_tokens"]);
    assert_eq!(ok["cost_usd"].as_f64().unwrap(), cost);
    assert_eq!(ok["stream"], false);
    assert_eq!(ok["cache_hit"], false);
    assert_eq!(ok["retries"], 0);
    assert_eq!(ok["fallbacks"], 0);
    for k in ["key_hash", "team_id", "user_id", "customer_id"] {
        assert_eq!(ok[k], Value::Null, "{k}");
    }
    let start = ok["start_time_unix_nano"].as_u64().unwrap();
    let first = ok["first_token_time_unix_nano"].as_u64().unwrap();
    let end = ok["end_time_unix_nano"].as_u64().unwrap();
    assert!(start <= first && first <= end, "{start} {first} {end}");
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);

    let fail = by_call_id(&events, &fail_id);
    assert_eq!(fail["status"], "failure");
    assert_eq!(fail["http_status"], 404);
    assert_eq!(fail["error"]["kind"], "model_not_found");
    assert_eq!(fail["error"]["type"], "invalid_request_error");
    assert!(fail["error"]["message"].as_str().unwrap().contains("nope"));
    assert_eq!(fail["model_group"], "nope");
    assert_eq!(fail["provider"], Value::Null);
    assert_eq!(fail["deployment_id"], Value::Null);
    assert_eq!(fail["usage_known"], false);
    assert_eq!(fail["cost_usd"], Value::Null);

    let st = by_call_id(&events, &stream_id);
    assert_eq!(st["status"], "success");
    assert_eq!(st["stream"], true);
    assert_eq!(st["http_status"], 200);
    assert_eq!(st["deployment_id"], "gpt-4o-mini#0");
    assert_eq!(st["prompt_tokens"], stream_usage["prompt_tokens"]);
    assert_eq!(st["completion_tokens"], stream_usage["completion_tokens"]);
    assert!(st["cost_usd"].as_f64().unwrap() > 0.0, "a stream is priced from its usage");
    assert!(st["time_to_first_token_ms"].as_f64().is_some());
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn success_and_failure_lists_filter_events() {
    let up = MockServer::start_openai().await;
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  failure_callback: [\"generic_api\"]\n",
        "  webhook_flush_interval: 0.02\n",
    );
    let proxy = start(&yaml).await;
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("mocky", "hi")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http()
        .post(proxy.url("/v1/embeddings"))
        .json(&json!({"model": "nope", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let fail_id = call_id(&resp);
    proxy.stop().await.unwrap();
    let events = events_of(&hook.requests_for("/hook"));
    assert_eq!(events.len(), 1, "only the failure: {events:?}");
    assert_eq!(events[0]["call_id"], fail_id);
    assert_eq!(events[0]["endpoint"], "embeddings");
}

#[tokio::test]
async fn mock_provider_calls_report_their_usage() {
    let up = MockServer::start_openai().await;
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let yaml = webhook_yaml(&up.openai_base(), &hook, "  success_callback: [\"generic_api\"]\n", "");
    let proxy = start(&yaml).await;
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("mocky", "one two three"))
        .send()
        .await
        .unwrap();
    let id = call_id(&resp);
    let resp = http()
        .post(proxy.url("/v1/completions"))
        .json(&json!({"model": "mocky", "prompt": "a b", "stream": true, "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap();
    let text_id = call_id(&resp);
    resp.text().await.unwrap();
    proxy.stop().await.unwrap();
    let events = events_of(&hook.requests_for("/hook"));
    assert_eq!(events.len(), 2, "{events:?}");
    let ev = by_call_id(&events, &id);
    assert_eq!(ev["provider"], "mock");
    assert_eq!((ev["prompt_tokens"].as_u64(), ev["completion_tokens"].as_u64()), (Some(3), Some(3)));
    assert_eq!(ev["cost_usd"], Value::Null, "the mock provider has no price");
    let tx = by_call_id(&events, &text_id);
    assert_eq!(tx["endpoint"], "completions");
    assert_eq!(tx["stream"], true);
    assert_eq!((tx["prompt_tokens"].as_u64(), tx["completion_tokens"].as_u64()), (Some(2), Some(2)));
}

#[tokio::test]
async fn a_disconnected_stream_is_reported_with_its_usage() {
    let up = MockServer::start_openai().await;
    // Every chunk including the usage chunk, then the upstream hangs before `[DONE]`.
    let script = OpenAiChatStream::new("chatcmpl-1", "gpt-4o-mini")
        .role()
        .content("partial ")
        .content("answer")
        .finish("stop")
        .usage(7, 2);
    let n = script.chunks().len();
    let events: Vec<String> = script.chunks().iter().map(|c| format!("data: {c}\n\n")).collect();
    up.enqueue(MockResponse::chunked("text/event-stream", events).stall_after_chunks(n));
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_flush_interval: 0.02\n",
    );
    let proxy = start(&yaml).await;

    let mut req = chat_body("gpt-4o-mini", "hi");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = call_id(&resp);
    let mut seen = String::new();
    while !seen.contains("\"usage\":{") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!seen.contains("[DONE]"));
    drop(resp); // the client goes away mid-stream

    let events = wait_events(&hook, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev["call_id"], id);
    assert_eq!(ev["status"], "client_disconnected");
    assert_eq!(ev["stream"], true);
    assert_eq!(ev["usage_known"], true);
    assert_eq!(ev["usage_estimated"], false);
    assert_eq!(ev["prompt_tokens"], 7);
    assert_eq!(ev["completion_tokens"], 2);
    assert!(ev["cost_usd"].as_f64().unwrap() > 0.0, "the usage seen is priced");
    assert!(ev["first_token_time_unix_nano"].as_u64().is_some());
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_stream_cut_before_its_usage_gets_an_estimate() {
    let up = MockServer::start_openai().await;
    let script = OpenAiChatStream::new("chatcmpl-2", "gpt-4o-mini")
        .role()
        .content("one ")
        .content("two ")
        .content("three ")
        .content("four");
    let n = script.chunks().len();
    let events: Vec<String> = script.chunks().iter().map(|c| format!("data: {c}\n\n")).collect();
    up.enqueue(MockResponse::chunked("text/event-stream", events).stall_after_chunks(n));
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_flush_interval: 0.02\n",
    );
    let proxy = start(&yaml).await;

    let mut req = chat_body("gpt-4o-mini", "abcdefgh");
    req["stream"] = json!(true);
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    let id = call_id(&resp);
    let mut seen = String::new();
    while !seen.contains("four") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(resp);

    let events = wait_events(&hook, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev["call_id"], id);
    assert_eq!(ev["status"], "client_disconnected");
    assert_eq!(ev["usage_known"], false);
    assert_eq!(ev["usage_estimated"], true);
    assert_eq!(ev["prompt_tokens"], 2, "8 prompt characters");
    assert_eq!(ev["completion_tokens"], 5, "18 streamed characters, rounded up");
    assert!(ev["cost_usd"].as_f64().unwrap() > 0.0, "the estimate is priced");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_the_same_batch() {
    let hook = MockServer::start().await;
    hook.enqueue(MockResponse::new(500));
    hook.enqueue(MockResponse::new(503));
    hook.always(MockResponse::ok());
    let up = MockServer::start_openai().await;
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_flush_interval: 0.02\n",
    );
    let proxy = start(&yaml).await;
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("mocky", "hi")).send().await.unwrap();
    let id = call_id(&resp);
    let reqs = wait_requests(&hook, "/hook", 3, Duration::from_secs(10)).await;
    assert_eq!(reqs.len(), 3, "two failures, then a success");
    for r in &reqs {
        let evs = events_of(std::slice::from_ref(r));
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0]["call_id"], id);
    }
    proxy.stop().await.unwrap();
    assert_eq!(hook.requests_for("/hook").len(), 3, "delivered once, nothing more to send");
}

#[tokio::test]
async fn a_stalled_webhook_does_not_slow_requests() {
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok().delay_before_headers(Duration::from_secs(60)));
    let up = MockServer::start_openai().await;
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_batch_size: 1\n  webhook_flush_interval: 0.01\n  webhook_queue_size: 5\n",
    );
    let proxy = start(&yaml).await;
    // The first call's event goes out at once and the receiver holds that request.
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("mocky", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let reqs = wait_requests(&hook, "/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(reqs.len(), 1, "the sender is stuck on the stalled receiver");

    let started = Instant::now();
    for i in 0..30 {
        let resp = http()
            .post(proxy.url("/v1/chat/completions"))
            .json(&chat_body("mocky", &format!("call {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let took = started.elapsed();
    // 30 mock calls take milliseconds; a request waiting on the webhook would take 60 s.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(hook.requests_for("/hook").len(), 1, "still stalled: no second send");
    // The proxy is dropped without a graceful stop: its flush would wait for the receiver.
}

#[tokio::test]
async fn graceful_shutdown_flushes_queued_events() {
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let up = MockServer::start_openai().await;
    let yaml = webhook_yaml(
        &up.openai_base(),
        &hook,
        "  callbacks: [\"generic_api\"]\n",
        "  webhook_batch_size: 100\n  webhook_flush_interval: 3600\n",
    );
    let proxy = start(&yaml).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let resp = http()
            .post(proxy.url("/v1/chat/completions"))
            .json(&chat_body("mocky", &format!("n {i}")))
            .send()
            .await
            .unwrap();
        ids.push(call_id(&resp));
    }
    assert!(hook.requests_for("/hook").is_empty(), "a partial batch waits for the interval");
    proxy.stop().await.unwrap();
    let reqs = hook.requests_for("/hook");
    assert_eq!(reqs.len(), 1);
    let got: Vec<String> =
        events_of(&reqs).iter().map(|e| e["call_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, ids, "every queued event, in order");
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
        .unwrap_or_else(|| panic!("no attribute {key} in {span}"))
}

fn has_attr(span: &Value, key: &str) -> bool {
    span["attributes"].as_array().unwrap().iter().any(|a| a["key"] == key)
}

#[tokio::test]
async fn otlp_spans_follow_the_genai_conventions() {
    let collector = MockServer::start().await;
    collector.always(MockResponse::ok());
    let up = MockServer::start_openai().await;
    let yaml = format!("model_list:\n{}{NO_RETRY}", openai_deployment("gpt-4o-mini", &up.openai_base(), ""));
    let endpoint = collector.url();
    let cfg = config_with_env(
        &yaml,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-otlp-key=abc%20def,other=1"),
            ("OTEL_SERVICE_NAME", "gw-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "20"),
        ],
    );
    assert!(cfg.unsupported_keys.is_empty());
    let proxy = start_config(cfg).await;

    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "hello spans"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ok_id = call_id(&resp);
    let usage = resp.json::<Value>().await.unwrap()["usage"].clone();

    up.enqueue(MockResponse::openai_error(429, "rate_limit_error", Some("rate_limit_exceeded"), "slow down"));
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("gpt-4o-mini", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let fail_id = call_id(&resp);
    proxy.stop().await.unwrap();

    let reqs = collector.requests_for("/v1/traces");
    assert!(!reqs.is_empty(), "{:?}", collector.requests());
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(reqs[0].header("x-otlp-key"), Some("abc def"));
    assert_eq!(reqs[0].header("other"), Some("1"));
    let mut spans = Vec::new();
    for r in &reqs {
        let body = r.json().unwrap();
        let rs = &body["resourceSpans"][0];
        let res = json!({"resource": rs["resource"].clone(), "span": null});
        assert!(
            res["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["key"] == "service.name" && a["value"]["stringValue"] == "gw-test")
        );
        assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "tollgate-proxy");
        spans.extend(rs["scopeSpans"][0]["spans"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(spans.len(), 2, "{spans:?}");
    let trace = |id: &str| id.replace('-', "");
    let ok = spans.iter().find(|s| s["traceId"] == trace(&ok_id)).unwrap();
    assert_eq!(ok["name"], "chat gpt-4o-mini");
    assert_eq!(ok["kind"], 3);
    assert_eq!(ok["spanId"].as_str().unwrap().len(), 16);
    let start: u64 = ok["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = ok["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && start <= end);
    assert_eq!(attr(ok, "gen_ai.operation.name"), &json!({"stringValue": "chat"}));
    assert_eq!(attr(ok, "gen_ai.system"), &json!({"stringValue": "openai"}));
    assert_eq!(attr(ok, "gen_ai.provider.name"), &json!({"stringValue": "openai"}));
    assert_eq!(attr(ok, "gen_ai.request.model"), &json!({"stringValue": "gpt-4o-mini"}));
    assert_eq!(attr(ok, "gen_ai.response.model"), &json!({"stringValue": "gpt-4o-mini"}));
    assert_eq!(
        attr(ok, "gen_ai.usage.input_tokens"),
        &json!({"intValue": usage["prompt_tokens"].as_u64().unwrap().to_string()})
    );
    assert_eq!(
        attr(ok, "gen_ai.usage.output_tokens"),
        &json!({"intValue": usage["completion_tokens"].as_u64().unwrap().to_string()})
    );
    assert_eq!(attr(ok, "http.response.status_code"), &json!({"intValue": "200"}));
    assert_eq!(attr(ok, "tollgate.deployment_id"), &json!({"stringValue": "gpt-4o-mini#0"}));
    assert!(attr(ok, "tollgate.cost_usd")["doubleValue"].as_f64().unwrap() > 0.0);
    assert!(ok.get("status").is_none(), "success leaves the status unset");

    let fail = spans.iter().find(|s| s["traceId"] == trace(&fail_id)).unwrap();
    assert_eq!(fail["status"]["code"], 2);
    assert!(fail["status"]["message"].as_str().unwrap().contains("slow down"));
    assert_eq!(attr(fail, "error.type"), &json!({"stringValue": "rate_limit_exceeded"}));
    assert_eq!(attr(fail, "http.response.status_code"), &json!({"intValue": "429"}));
    assert!(!has_attr(fail, "gen_ai.usage.input_tokens"));
}

// ------------------------------------------------------------------------------------------
// The library trait
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Collect(Mutex<Vec<CallEvent>>);

impl CallbackSink for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn on_event(&self, event: &CallEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test]
async fn a_library_sink_sees_every_call() {
    let cfg = config(
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x, mock_chunk_delay_ms: 5}\n",
    );
    let sink = Arc::new(Collect::default());
    let gw = Gateway::new(cfg).unwrap().with_callback_sink(sink.clone(), EventFilter::ALL);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gw.serve(listener, async move {
        let _ = rx.await;
    }));
    let resp = http()
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"model": "m", "input": "a b c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http().post(format!("{base}/v1/chat/completions")).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    let evs = sink.0.lock().unwrap().clone();
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0].endpoint, "embeddings");
    assert_eq!(evs[0].status, CallStatus::Success);
    assert_eq!(evs[0].prompt_tokens, 3);
    assert_eq!(evs[1].status, CallStatus::Failure);
    assert_eq!(evs[1].http_status, 400);
    assert_eq!(evs[1].error.as_ref().unwrap().kind, "invalid_request");
    assert_eq!(evs[1].model_group, None);
}

// ------------------------------------------------------------------------------------------
// Config
// ------------------------------------------------------------------------------------------

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<ProxyConfig, tollgate_proxy::ConfigError> {
    let env: std::collections::HashMap<String, String> =
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ProxyConfig::from_yaml_str(yaml, "cb.yaml", Arc::new(move |n| env.get(n).cloned()))
}

#[test]
fn callback_config_is_read_and_unknown_names_reported() {
    let cfg = load(
        "litellm_settings:\n  success_callback: [\"generic_api\", \"langfuse\"]\n  failure_callback: [\"otel\"]\n  callbacks: [\"datadog\"]\n",
        &[("GENERIC_LOGGER_ENDPOINT", "http://127.0.0.1:9/logs"), ("GENERIC_LOGGER_HEADERS", "x-a=1,x-b=two")],
    )
    .unwrap();
    let cb = &cfg.callbacks;
    let w = cb.webhook.as_ref().unwrap();
    assert_eq!(w.url, "http://127.0.0.1:9/logs");
    assert_eq!(w.events, EventFilter { success: true, failure: false });
    let headers: Vec<(&str, &str)> = w.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(headers, vec![("x-a", "1"), ("x-b", "two")]);
    let o = cb.otel.as_ref().unwrap();
    assert_eq!(o.endpoint, "http://localhost:4318/v1/traces");
    assert_eq!(o.events, EventFilter { success: false, failure: true });
    assert_eq!(cb.unsupported, vec!["langfuse", "datadog"]);
    let mut keys = cfg.unsupported_keys.clone();
    keys.sort();
    assert_eq!(keys, vec!["litellm_settings.callbacks", "litellm_settings.success_callback"]);
    assert!(!format!("{w:?}").contains("two"), "header values are not printed");
}

#[test]
fn webhook_settings_are_checked() {
    let err = load("litellm_settings:\n  callbacks: [\"generic_api\"]\n", &[]).unwrap_err();
    assert!(err.to_string().contains("GENERIC_LOGGER_ENDPOINT"), "{err}");

    let err = load(
        "general_settings:\n  webhook_url: ftp://x\n  webhook_batch_size: 0\n  webhook_flush_interval: -1\n",
        &[],
    )
    .unwrap_err();
    let mut p = err.problems();
    p.sort();
    assert_eq!(
        p,
        vec![
            "general_settings.webhook_batch_size: must be a positive whole number",
            "general_settings.webhook_flush_interval: must be a positive number of seconds",
            "general_settings.webhook_url: `ftp://x` is not an http:// or https:// URL",
        ]
    );

    let cfg = load("general_settings:\n  webhook_url: https://h/x\n  webhook_queue_size: 7\n", &[]).unwrap();
    let w = cfg.callbacks.webhook.unwrap();
    assert_eq!(w.events, EventFilter::ALL, "a URL alone sends every event");
    assert_eq!(w.batch.queue_capacity, 7);
    assert!(cfg.unsupported_keys.is_empty());
    assert!(cfg.callbacks.otel.is_none());
}

// ------------------------------------------------------------------------------------------
// The batching sink itself
// ------------------------------------------------------------------------------------------

use tollgate_proxy::callbacks::{BatchSettings, HttpBatchSink, SinkStats, WebhookConfig};

fn sink(url: String, batch: BatchSettings) -> HttpBatchSink {
    HttpBatchSink::webhook(&WebhookConfig { url, headers: Vec::new(), events: EventFilter::ALL, batch })
}

fn event(i: usize) -> CallEvent {
    CallEvent::new(format!("call-{i}"), "chat", CallStatus::Success)
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_events_and_counts_them() {
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok());
    let s = sink(
        format!("{}/hook", hook.url()),
        BatchSettings {
            batch_size: 100,
            flush_interval: Duration::from_secs(3600),
            queue_capacity: 3,
            ..BatchSettings::default()
        },
    );
    for i in 0..5 {
        s.on_event(&event(i));
    }
    assert_eq!(s.stats(), SinkStats { queued: 3, dropped: 2, ..SinkStats::default() });
    s.shutdown(Instant::now() + Duration::from_secs(5)).await;
    let got: Vec<Value> =
        events_of(&hook.requests_for("/hook")).iter().map(|e| e["call_id"].clone()).collect();
    assert_eq!(got, vec![json!("call-2"), json!("call-3"), json!("call-4")], "the newest three survive");
    assert_eq!(s.stats(), SinkStats { sent: 3, dropped: 2, ..SinkStats::default() });
}

#[tokio::test]
async fn retries_end_and_client_errors_are_not_retried() {
    let hook = MockServer::start().await;
    hook.always(MockResponse::new(500));
    let fast = BatchSettings {
        flush_interval: Duration::from_millis(10),
        max_retries: 2,
        retry_backoff: Duration::from_millis(5),
        ..BatchSettings::default()
    };
    let s = sink(format!("{}/down", hook.url()), fast.clone());
    s.on_event(&event(1));
    s.on_event(&event(2));
    s.shutdown(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(hook.requests_for("/down").len(), 3, "the first try and two retries");
    assert_eq!(s.stats(), SinkStats { failed: 2, retries: 2, ..SinkStats::default() });

    hook.always(MockResponse::new(400));
    let s = sink(format!("{}/bad", hook.url()), fast);
    s.on_event(&event(3));
    s.shutdown(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(hook.requests_for("/bad").len(), 1, "a 400 is not retried");
    assert_eq!(s.stats(), SinkStats { failed: 1, ..SinkStats::default() });
}

#[tokio::test]
async fn shutdown_gives_up_at_its_deadline() {
    let hook = MockServer::start().await;
    hook.always(MockResponse::ok().delay_before_headers(Duration::from_secs(60)));
    let s = sink(
        format!("{}/slow", hook.url()),
        BatchSettings { flush_interval: Duration::from_millis(10), ..BatchSettings::default() },
    );
    s.on_event(&event(1));
    let started = Instant::now();
    s.shutdown(Instant::now() + Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "{took:?}");
}
