//! Config reload: the file is rewritten while requests run (none fails, new groups serve,
//! removed groups answer 404, in-flight streams finish on the old config), an invalid rewrite
//! keeps the old config, SIGHUP triggers a reload, restart-only settings are reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tollgate_proxy::{Gateway, ProxyConfig, ProxyError, ReloadOutcome, Reloader};
use tollgate_testkit::MockServer;

/// A config file of its own in the temp dir, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(yaml: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "tollgate-reload-{}-{}.yaml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, yaml).unwrap();
        TempConfig(path)
    }

    fn write(&self, yaml: &str) {
        std::fs::write(&self.0, yaml).unwrap();
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn start_file(file: &TempConfig) -> (Proxy, Reloader) {
    let gateway = Gateway::new(ProxyConfig::load(&file.0).unwrap()).unwrap();
    let reloader = gateway.reloader();
    (start_gateway(gateway).await, reloader)
}

/// Waits (bounded) until the gateway serves `group`.
async fn wait_for_group(reloader: &Reloader, group: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while reloader.current_config().has_group(group) != present {
        assert!(Instant::now() < deadline, "group {group} present={present} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mock_group(name: &str, reply: &str) -> String {
    format!("  - model_name: {name}\n    litellm_params: {{model: mock/x, mock_response: \"{reply}\"}}\n")
}

async fn chat(http: &reqwest::Client, proxy: &Proxy, model: &str) -> (u16, Value) {
    let resp =
        http.post(proxy.url("/v1/chat/completions")).json(&chat_body(model, "hi")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rewrite_under_load_drops_nothing() {
    let up = MockServer::start_openai().await;
    let routed = openai_deployment("gpt", &up.openai_base(), "");
    let before = format!(
        "model_list:\n{}{}{}\
         \x20 - model_name: slow\n    litellm_params: {{model: mock/x, mock_response: \"one two three four five six\", mock_chunk_delay_ms: 100}}\n",
        mock_group("alpha", "v1"),
        mock_group("beta", "b"),
        routed
    );
    let after = format!("model_list:\n{}{}{}", mock_group("alpha", "v2"), mock_group("gamma", "g"), routed);
    let file = TempConfig::new(&before);
    let (proxy, reloader) = start_file(&file).await;
    let _watch = reloader.watch(Some(Duration::from_millis(200)), false);
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &proxy, "beta").await.0, 200);
    assert_eq!(chat(&http, &proxy, "gamma").await.0, 404);

    // A stream that is still running when the file changes (6 chunks, 100 ms apart): its
    // headers are in before the rewrite, so it started on the old config.
    let mut body = chat_body("slow", "hi");
    body["stream"] = Value::Bool(true);
    let resp = http.post(proxy.url("/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let slow = tokio::spawn(async move { resp.text().await.unwrap() });

    // 8 clients loop on the groups that survive the reload: for at least 2 s and until 300 ms
    // after the reload was seen (at most 5000 requests each).
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let v2_seen = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..8 {
        let (http, base) = (http.clone(), proxy.base.clone());
        let (ok, failed, v2_seen, stop) = (ok.clone(), failed.clone(), v2_seen.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            for n in 0..5000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let model = if (i + n) % 2 == 0 { "alpha" } else { "gpt" };
                let resp = http
                    .post(format!("{base}/v1/chat/completions"))
                    .json(&chat_body(model, "hi"))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        if body["choices"][0]["message"]["content"] == "v2" {
                            v2_seen.fetch_add(1, Ordering::Relaxed);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    file.write(&after);
    wait_for_group(&reloader, "gamma", true).await;
    let until = (started + Duration::from_secs(2)).max(Instant::now() + Duration::from_millis(300));
    tokio::time::sleep_until(until.into()).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests during the reload");
    assert!(ok.load(Ordering::Relaxed) > 50, "too few requests ran: {}", ok.load(Ordering::Relaxed));
    assert!(v2_seen.load(Ordering::Relaxed) > 0, "the reloaded alpha never answered");

    // The stream that started before the reload finished on the old config, whole.
    let text = slow.await.unwrap();
    assert_eq!(stream_text(&sse_json(&text)), "one two three four five six");
    assert!(text.ends_with("data: [DONE]\n\n"));

    // New group serves, removed groups answer 404, the routed group still works.
    let (status, body) = chat(&http, &proxy, "gamma").await;
    assert_eq!((status, body["choices"][0]["message"]["content"].as_str()), (200, Some("g")));
    let (status, body) = chat(&http, &proxy, "beta").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(chat(&http, &proxy, "slow").await.0, 404);
    assert_eq!(chat(&http, &proxy, "gpt").await.0, 200);
    let models: Value = http.get(proxy.url("/v1/models")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha", "gamma", "gpt"]);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_rewrite_keeps_the_old_config() {
    let file = TempConfig::new(&format!("model_list:\n{}", mock_group("alpha", "v1")));
    let (proxy, reloader) = start_file(&file).await;
    let http = reqwest::Client::new();

    // Unchanged file: nothing to do.
    assert!(reloader.reload_if_changed().is_none());

    file.write(&format!(
        "model_list:\n{}  - model_name: broken\n    litellm_params: {{api_base: http://127.0.0.1:1}}\n",
        mock_group("alpha", "v2")
    ));
    let outcome = reloader.reload_if_changed().expect("the file changed");
    let ReloadOutcome::Rejected(ProxyError::Config(e)) = outcome else { panic!("{outcome:?}") };
    let problems = e.problems();
    assert!(
        problems.iter().any(|p| p.starts_with("model_list[1].litellm_params")),
        "problems name the path: {problems:?}"
    );
    // Reported once: the same broken content is not retried at every poll.
    assert!(reloader.reload_if_changed().is_none());
    let (status, body) = chat(&http, &proxy, "alpha").await;
    assert_eq!((status, body["choices"][0]["message"]["content"].as_str()), (200, Some("v1")));
    assert!(!reloader.current_config().has_group("broken"));

    // Not YAML at all: same.
    file.write("model_list: [\n");
    assert!(!reloader.reload().is_applied());
    assert_eq!(chat(&http, &proxy, "alpha").await.0, 200);

    // Fixed: applied.
    file.write(&format!("model_list:\n{}", mock_group("alpha", "v3")));
    let ReloadOutcome::Applied(report) = reloader.reload_if_changed().expect("changed") else { panic!() };
    assert!(report.added_groups.is_empty() && report.removed_groups.is_empty());
    let (_, body) = chat(&http, &proxy, "alpha").await;
    assert_eq!(body["choices"][0]["message"]["content"], "v3");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn restart_only_settings_are_reported_and_kept() {
    let file = TempConfig::new(&format!(
        "general_settings: {{master_key: sk-old}}\nmodel_list:\n{}",
        mock_group("alpha", "v1")
    ));
    let (proxy, reloader) = start_file(&file).await;
    file.write(&format!(
        "general_settings: {{master_key: sk-new, max_request_size_mb: 1}}\nmodel_list:\n{}{}",
        mock_group("alpha", "v1"),
        mock_group("delta", "d")
    ));
    let ReloadOutcome::Applied(report) = reloader.reload() else { panic!() };
    assert_eq!(report.added_groups, ["delta"]);
    assert_eq!(
        report.restart_required,
        ["general_settings.master_key", "general_settings.max_request_size_mb"]
    );
    let http = reqwest::Client::new();
    let send = |key: &'static str| {
        http.post(proxy.url("/v1/chat/completions")).bearer_auth(key).json(&chat_body("delta", "hi")).send()
    };
    assert_eq!(send("sk-old").await.unwrap().status(), 200);
    assert_eq!(send("sk-new").await.unwrap().status(), 401);
    proxy.stop().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads() {
    let file = TempConfig::new(&format!("model_list:\n{}", mock_group("alpha", "v1")));
    let (proxy, reloader) = start_file(&file).await;
    // No polling: only the signal can trigger the reload.
    let mut watch = reloader.watch(None, true);
    watch.ready().await;
    file.write(&format!("model_list:\n{}{}", mock_group("alpha", "v1"), mock_group("epsilon", "e")));
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &proxy, "epsilon").await.0, 404);
    // This test binary's only SIGHUP listener is the watcher above (installed before sending).
    let status =
        std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for_group(&reloader, "epsilon", true).await;
    let (status, body) = chat(&http, &proxy, "epsilon").await;
    assert_eq!((status, body["choices"][0]["message"]["content"].as_str()), (200, Some("e")));
    proxy.stop().await.unwrap();
}
