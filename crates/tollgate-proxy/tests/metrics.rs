//! `GET /metrics` and `GET /health` over real HTTP on 127.0.0.1, with testkit upstreams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_testkit::{MockResponse, MockServer};

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

// ------------------------------------------------------------------------------------------
// A strict reader of the text exposition format
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `k="v",k2="v2"` (with `\\`, `\"`, `\n` escapes); panics on anything else.
fn parse_labels(mut s: &str, line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !s.is_empty() {
        let (name, rest) = s.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
        assert!(is_label_name(name), "bad label name {name:?} in {line:?}");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        assert!(out.insert(name.to_owned(), value).is_none(), "label repeated in {line:?}");
        s = &rest[end + 1..];
        if let Some(r) = s.strip_prefix(',') {
            s = r;
            assert!(!s.is_empty(), "trailing comma in {line:?}");
        } else {
            assert!(s.is_empty(), "junk after labels in {line:?}");
        }
    }
    out
}

/// Checks every line of an exposition and returns the samples. Each sample's family must have
/// been declared by a `# TYPE` line before it, and declared once.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        assert!(!line.is_empty(), "empty line in exposition");
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, tail) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            assert!(is_metric_name(name), "bad name in {line:?}");
            match kw {
                "HELP" => assert!(tail.is_some_and(|t| !t.is_empty()), "empty help: {line:?}"),
                "TYPE" => {
                    let t = tail.unwrap();
                    assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&t), "{line:?}");
                    assert!(types.insert(name.to_owned(), t.to_owned()).is_none(), "TYPE twice: {line:?}");
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                (n, parse_labels(l, line))
            }
            None => (series, BTreeMap::new()),
        };
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        let t = types.get(family).unwrap_or_else(|| panic!("sample before its TYPE: {line:?}"));
        if t == "counter" || t == "histogram" {
            assert!(value >= 0.0, "negative {t}: {line:?}");
        }
        samples.push(Sample { name: name.to_owned(), labels, value });
    }
    samples
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The value of the one sample with exactly these labels, if any.
fn value(samples: &[Sample], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    let want = labels(pairs);
    let found: Vec<f64> =
        samples.iter().filter(|s| s.name == name && s.labels == want).map(|s| s.value).collect();
    assert!(found.len() <= 1, "{name} {want:?} appears {} times", found.len());
    found.first().copied()
}

/// Every histogram series: buckets cumulative and ending in `+Inf` = `_count`, `_sum` present.
/// Returns the number of histogram series checked.
fn check_histograms(samples: &[Sample], family: &str) -> usize {
    type Labels = Vec<(String, String)>;
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
        let le = s.labels.get("le").unwrap_or_else(|| panic!("bucket without le: {s:?}"));
        let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
        let key: Vec<(String, String)> =
            s.labels.iter().filter(|(k, _)| *k != "le").map(|(k, v)| (k.clone(), v.clone())).collect();
        groups.entry(key).or_default().push((le, s.value));
    }
    for (key, buckets) in &groups {
        let pairs: Vec<(&str, &str)> = key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for w in buckets.windows(2) {
            assert!(w[0].0 < w[1].0, "{family} {key:?}: bounds not increasing");
            assert!(w[0].1 <= w[1].1, "{family} {key:?}: buckets not cumulative");
        }
        let last = buckets.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{family} {key:?}: no +Inf bucket");
        let count = value(samples, &format!("{family}_count"), &pairs).expect("_count");
        let sum = value(samples, &format!("{family}_sum"), &pairs).expect("_sum");
        assert_eq!(last.1, count, "{family} {key:?}: +Inf bucket != _count");
        assert!(sum >= 0.0 && (count > 0.0 || sum == 0.0), "{family} {key:?}: sum {sum}");
    }
    groups.len()
}

async fn scrape(proxy: &Proxy) -> Vec<Sample> {
    let resp = http().get(proxy.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse_exposition(&resp.text().await.unwrap())
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

const DEP: &str = "gpt-4o-mini#0";
const GROUP: &str = "gpt-4o-mini";

#[tokio::test]
async fn metrics_count_requests_failures_tokens_spend_and_timings() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}  - model_name: echo\n    litellm_params: {{model: mock/echo}}\nlitellm_settings:\n  num_retries: 0\n",
        openai_deployment(
            GROUP,
            &up.openai_base(),
            "      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n"
        ),
    );
    let proxy = start(&yaml).await;

    // Before any request: no request series, the gauge at 0, the deployment's health present.
    let s = scrape(&proxy).await;
    assert!(!s.iter().any(|s| s.name == "tollgate_requests_total"));
    assert_eq!(value(&s, "tollgate_in_flight_requests", &[]), Some(0.0));
    assert_eq!(
        value(&s, "tollgate_deployment_cooling_down", &[("model_group", GROUP), ("deployment", DEP)]),
        Some(0.0)
    );

    // 1. A success.
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body(GROUP, "one two three"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let (p1, c1) = (
        body["usage"]["prompt_tokens"].as_u64().unwrap(),
        body["usage"]["completion_tokens"].as_u64().unwrap(),
    );

    // 2. An upstream error (500 → 502 upstream_error).
    up.enqueue(MockResponse::openai_error(500, "server_error", None, "boom"));
    let resp =
        http().post(proxy.url("/chat/completions")).json(&chat_body(GROUP, "fails")).send().await.unwrap();
    assert_eq!(resp.status(), 502);

    // 3. A stream, with usage asked for (so the test knows the tokens).
    let mut req = chat_body(GROUP, "streaming words here");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse_json(&resp.text().await.unwrap());
    let usage = events.iter().rev().find(|e| e["usage"].is_object()).expect("usage chunk");
    let (p2, c2) = (
        usage["usage"]["prompt_tokens"].as_u64().unwrap(),
        usage["usage"]["completion_tokens"].as_u64().unwrap(),
    );

    // 4. A stream without usage asked for: its tokens still count.
    let mut req = chat_body(GROUP, "a b");
    req["stream"] = json!(true);
    let resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await.unwrap();
    let echo = up.last_request().unwrap().json().unwrap();
    assert_eq!(echo["stream_options"]["include_usage"], true, "the proxy always asks for usage");
    // The testkit echoes: completion = "echo: a b" words; prompt = the words of the prompt.
    let (p3, c3) = (2, 3);

    // 5. A model the gateway does not serve (fallback series), 6. the mock group, 7. embeddings.
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("nope", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("echo", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http()
        .post(proxy.url("/v1/embeddings"))
        .json(&json!({"model": GROUP, "input": "alpha beta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let emb: Value = resp.json().await.unwrap();
    let p4 = emb["usage"]["prompt_tokens"].as_u64().unwrap();

    let s = scrape(&proxy).await;
    let dep = [("model_group", GROUP), ("deployment", DEP)];
    let req_total = |group: &str, dep: &str, endpoint: &str, class: &str| {
        value(
            &s,
            "tollgate_requests_total",
            &[("model_group", group), ("deployment", dep), ("endpoint", endpoint), ("status_class", class)],
        )
    };
    assert_eq!(req_total(GROUP, DEP, "chat", "2xx"), Some(3.0));
    assert_eq!(req_total(GROUP, DEP, "embeddings", "2xx"), Some(1.0));
    // The failed call never got a deployment: it counts under its group.
    assert_eq!(req_total(GROUP, "", "chat", "5xx"), Some(1.0));
    assert_eq!(req_total("", "", "chat", "4xx"), Some(1.0));
    assert_eq!(req_total("echo", "", "chat", "2xx"), Some(1.0));
    let total: f64 = s.iter().filter(|s| s.name == "tollgate_requests_total").map(|s| s.value).sum();
    assert_eq!(total, 7.0, "the /metrics scrapes themselves are not counted");

    let failures = |group: &str, dep: &str, kind: &str| {
        value(
            &s,
            "tollgate_request_failures_total",
            &[("model_group", group), ("deployment", dep), ("endpoint", "chat"), ("error_kind", kind)],
        )
    };
    assert_eq!(failures(GROUP, "", "upstream_error"), Some(1.0));
    assert_eq!(failures("", "", "not_found"), Some(1.0));
    assert_eq!(s.iter().filter(|s| s.name == "tollgate_request_failures_total").count(), 2);

    let tokens = |t: &str| value(&s, "tollgate_tokens_total", &[dep[0], dep[1], ("type", t)]);
    assert_eq!(tokens("prompt"), Some((p1 + p2 + p3 + p4) as f64));
    assert_eq!(tokens("completion"), Some((c1 + c2 + c3) as f64));
    let spend = value(&s, "tollgate_spend_usd_total", &dep).unwrap();
    let expected = (p1 + p2 + p3 + p4) as f64 * 0.001 + (c1 + c2 + c3) as f64 * 0.002;
    assert!((spend - expected).abs() < 1e-9, "spend {spend} != {expected}");

    // Histograms: consistent everywhere; counts where they belong.
    assert!(check_histograms(&s, "tollgate_request_duration_seconds") >= 4);
    check_histograms(&s, "tollgate_time_to_first_token_seconds");
    check_histograms(&s, "tollgate_gateway_overhead_seconds");
    let chat_dep = [dep[0], dep[1], ("endpoint", "chat")];
    assert_eq!(value(&s, "tollgate_request_duration_seconds_count", &chat_dep), Some(3.0));
    assert_eq!(value(&s, "tollgate_time_to_first_token_seconds_count", &chat_dep), Some(2.0));
    let ttft_series = s.iter().filter(|s| s.name == "tollgate_time_to_first_token_seconds_count").count();
    assert_eq!(ttft_series, 1, "only streams have a time to first token");
    // Overhead: every routed answer (3 chats, 1 embedding).
    assert_eq!(value(&s, "tollgate_gateway_overhead_seconds_count", &dep), Some(4.0));
    assert_eq!(value(&s, "tollgate_in_flight_requests", &[]), Some(0.0));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn in_flight_counts_open_streams_and_drops_when_the_client_leaves() {
    // A mock stream that takes long enough to be observed while open.
    let yaml = "model_list:\n  - model_name: slow\n    litellm_params: {model: mock/slow, mock_response: \"a b c d e f g h\", mock_chunk_delay_ms: 200}\n";
    let proxy = start(yaml).await;
    let mut req = chat_body("slow", "x");
    req["stream"] = json!(true);
    let mut resp = http().post(proxy.url("/v1/chat/completions")).json(&req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().expect("a first event");
    assert!(!first.is_empty());
    let s = scrape(&proxy).await;
    assert_eq!(value(&s, "tollgate_in_flight_requests", &[]), Some(1.0));
    // The request is counted at once, its duration only when the stream ends.
    let labels = [("model_group", "slow"), ("deployment", ""), ("endpoint", "chat")];
    assert_eq!(value(&s, "tollgate_time_to_first_token_seconds_count", &labels), Some(1.0));
    assert_eq!(value(&s, "tollgate_request_duration_seconds_count", &labels), None);
    drop(resp); // the client goes away mid-stream

    // The server notices the closed connection on its next write (every 200 ms here).
    let mut left = false;
    for _ in 0..100 {
        let s = scrape(&proxy).await;
        if value(&s, "tollgate_in_flight_requests", &[]) == Some(0.0) {
            assert_eq!(value(&s, "tollgate_request_duration_seconds_count", &labels), Some(1.0));
            left = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(left, "the in-flight gauge must drop once the client has gone");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_need_no_key_but_count_refused_requests() {
    let yaml = "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\ngeneral_settings:\n  master_key: sk-master-metrics\n";
    let proxy = start(yaml).await;
    let resp =
        http().post(proxy.url("/v1/chat/completions")).json(&chat_body("echo", "x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let s = scrape(&proxy).await; // no key
    let l = [("model_group", ""), ("deployment", ""), ("endpoint", "chat")];
    assert_eq!(value(&s, "tollgate_requests_total", &[l[0], l[1], l[2], ("status_class", "4xx")]), Some(1.0));
    assert_eq!(
        value(&s, "tollgate_request_failures_total", &[l[0], l[1], l[2], ("error_kind", "authentication")]),
        Some(1.0)
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_can_require_the_key() {
    let yaml = "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\ngeneral_settings:\n  master_key: sk-master-m\n  metrics_require_auth: true\n";
    let proxy = start(yaml).await;
    let resp = http().get(proxy.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http().get(proxy.url("/metrics")).bearer_auth("sk-wrong").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http().get(proxy.url("/metrics")).bearer_auth("sk-master-m").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let s = parse_exposition(&resp.text().await.unwrap());
    assert_eq!(value(&s, "tollgate_in_flight_requests", &[]), Some(0.0));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn cooling_down_deployments_show_in_the_gauge() {
    let up = MockServer::start_openai().await;
    up.always(MockResponse::openai_error(500, "server_error", None, "down"));
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  num_retries: 0\n  allowed_fails: 0\n  cooldown_time: 600\n",
        openai_deployment("g", &up.openai_base(), ""),
        openai_deployment("g", &up.openai_base(), ""),
    );
    let proxy = start(&yaml).await;
    for _ in 0..4 {
        let resp =
            http().post(proxy.url("/v1/chat/completions")).json(&chat_body("g", "x")).send().await.unwrap();
        assert!(resp.status().is_server_error());
    }
    let s = scrape(&proxy).await;
    let cooling: Vec<f64> = ["g#0", "g#1"]
        .iter()
        .map(|d| {
            value(&s, "tollgate_deployment_cooling_down", &[("model_group", "g"), ("deployment", d)]).unwrap()
        })
        .collect();
    assert!(cooling.contains(&1.0), "a failing deployment is cooling down: {cooling:?}");
    proxy.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// /health
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_checks_each_deployment_without_leaking_keys() {
    let good = MockServer::start_openai().await;
    let bad = MockServer::start_openai().await;
    bad.always(MockResponse::openai_error(
        500,
        "server_error",
        None,
        "internal failure for key sk-health-secret-123",
    ));
    let yaml = format!(
        "model_list:\n{}  - model_name: bad\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: sk-health-secret-123\n  - model_name: echo\n    litellm_params: {{model: mock/echo}}\ngeneral_settings:\n  master_key: sk-master-health\n",
        openai_deployment("good", &good.openai_base(), ""),
        bad.openai_base(),
    );
    let proxy = start(&yaml).await;

    // It costs tokens: the key is required.
    let resp = http().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let resp = http().get(proxy.url("/health")).bearer_auth("sk-master-health").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("sk-health-secret-123"), "{text}");
    assert!(!text.contains("sk-upstream"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["healthy_count"], 2, "{body:#}");
    assert_eq!(body["unhealthy_count"], 1, "{body:#}");
    let names = |k: &str| -> Vec<String> {
        body[k].as_array().unwrap().iter().map(|e| e["model_name"].as_str().unwrap().to_owned()).collect()
    };
    let mut healthy = names("healthy_endpoints");
    healthy.sort();
    assert_eq!(healthy, vec!["echo", "good"]);
    assert_eq!(names("unhealthy_endpoints"), vec!["bad"]);
    let sick = &body["unhealthy_endpoints"][0];
    assert_eq!(sick["model"], "openai/gpt-4o-mini");
    assert_eq!(sick["model_id"], "bad#1");
    assert_eq!(sick["api_base"], bad.openai_base());
    let err = sick["error"].as_str().unwrap();
    assert!(err.contains("internal failure for key [redacted]"), "{err}");
    assert!(sick.get("api_key").is_none());

    // One minimal call per deployment.
    assert_eq!(good.request_count(), 1);
    assert_eq!(bad.request_count(), 1, "no retries for health checks");
    let sent = good.last_request().unwrap().json().unwrap();
    let max = sent.get("max_tokens").or_else(|| sent.get("max_completion_tokens"));
    assert_eq!(max, Some(&json!(1)), "{sent}");
    assert_eq!(
        good.last_request().unwrap().header("authorization"),
        Some("Bearer sk-upstream"),
        "each deployment is called with its own key"
    );

    // Health checks do not take the serving deployment out of rotation.
    let resp = http()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth("sk-master-health")
        .json(&chat_body("good", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn health_uses_the_deployment_mode_and_skips_wildcards() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n  - model_name: emb\n    litellm_params:\n      model: openai/text-embedding-3-small\n      api_base: {base}\n      api_key: sk-upstream\n    model_info: {{mode: embedding}}\n  - model_name: \"openai/*\"\n    litellm_params:\n      model: \"openai/*\"\n      api_base: {base}\n      api_key: sk-upstream\n",
        base = up.openai_base(),
    );
    let proxy = start(&yaml).await;
    let body: Value = http().get(proxy.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["healthy_count"], 1, "{body:#}");
    assert_eq!(body["unhealthy_count"], 0, "{body:#}");
    assert_eq!(body["healthy_endpoints"][0]["model_name"], "emb");
    assert_eq!(body["skipped_endpoints"][0]["model_name"], "openai/*");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].path.ends_with("/embeddings"), "{}", reqs[0].path);
    assert_eq!(reqs[0].json().unwrap()["input"], "ping");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn streams_that_fail_mid_way_count_as_failures() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\n",
        openai_deployment("gpt", &up.openai_base(), "")
    );
    let proxy = start(&yaml).await;
    let pieces: Vec<String> = (0..20).map(|i| format!("word{i} ")).collect();
    for path in ["/v1/chat/completions", "/v1/messages"] {
        up.enqueue(
            MockResponse::openai_stream_text(pieces.clone(), None).chunk_size(400).cut_after_chunks(2),
        );
        let body = json!({"model": "gpt", "max_tokens": 50, "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]});
        let resp = http().post(proxy.url(path)).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("error"), "{text}");
    }
    let s = scrape(&proxy).await;
    for endpoint in ["chat", "messages"] {
        let l = [("model_group", "gpt"), ("deployment", "gpt#0"), ("endpoint", endpoint)];
        assert_eq!(
            value(&s, "tollgate_requests_total", &[l[0], l[1], l[2], ("status_class", "2xx")]),
            Some(1.0)
        );
        let failed: f64 = s
            .iter()
            .filter(|x| x.name == "tollgate_request_failures_total")
            .filter(|x| x.labels.get("endpoint").map(String::as_str) == Some(endpoint))
            .map(|x| x.value)
            .sum();
        assert_eq!(failed, 1.0, "{endpoint}");
        assert_eq!(value(&s, "tollgate_request_duration_seconds_count", &l), Some(1.0));
    }
    assert_eq!(value(&s, "tollgate_in_flight_requests", &[]), Some(0.0));
    proxy.stop().await.unwrap();
}
