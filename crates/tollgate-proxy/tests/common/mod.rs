//! Shared helpers: start the proxy on 127.0.0.1:0 and read SSE bodies.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_proxy::{ProxyConfig, ProxyError, serve_on};

pub struct Proxy {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), ProxyError>>>,
}

impl Proxy {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the shutdown signal and returns the server task's result.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub async fn stop(mut self) -> Result<(), ProxyError> {
        self.signal_shutdown();
        self.task.take().unwrap().await.unwrap()
    }
}

pub fn config(yaml: &str) -> ProxyConfig {
    config_with_env(yaml, &[])
}

pub fn config_with_env(yaml: &str, env: &[(&str, &str)]) -> ProxyConfig {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ProxyConfig::from_yaml_str(yaml, "test.yaml", Arc::new(move |n| env.get(n).cloned()))
        .unwrap_or_else(|e| panic!("{e}"))
}

pub async fn start(yaml: &str) -> Proxy {
    start_config(config(yaml)).await
}

pub async fn start_config(cfg: ProxyConfig) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, cfg, async move {
        let _ = rx.await;
    }));
    Proxy { base: format!("http://{addr}"), stop: Some(tx), task: Some(task) }
}

/// An OpenAI-dialect deployment of group `group` at the testkit server.
pub fn openai_deployment(group: &str, base: &str, extra: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {base}\n      api_key: sk-upstream\n{extra}"
    )
}

/// The events of an SSE body: `data:` payloads (as strings) and comments (as `:`-prefixed).
pub fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").map(str::to_owned).unwrap_or_else(|| e.to_owned()))
        .collect()
}

/// The JSON `data:` payloads of an SSE body (no `[DONE]`, no comments).
pub fn sse_json(body: &str) -> Vec<Value> {
    sse_events(body)
        .iter()
        .filter(|e| !e.starts_with(':') && e.as_str() != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap_or_else(|err| panic!("bad event {e}: {err}")))
        .collect()
}

pub fn stream_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"].as_array())
        .flatten()
        .filter_map(|c| c["delta"]["content"].as_str())
        .collect()
}

pub fn chat_body(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// Serves an already built gateway on 127.0.0.1:0 (tests that keep a handle on the gateway:
/// reloads, custom authenticators).
pub async fn start_gateway(gateway: tollgate_proxy::Gateway) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async move {
        let _ = rx.await;
    }));
    Proxy { base: format!("http://{addr}"), stop: Some(tx), task: Some(task) }
}
