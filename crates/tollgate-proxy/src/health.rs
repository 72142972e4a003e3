//! `GET /health`: checks every configured deployment by calling it.
//!
//! Each deployment gets a minimal request (`max_tokens: 1` chat, or one short input for
//! deployments whose `model_info.mode` is `embedding` / `completion`), all at once, each with a
//! short deadline. The checks go through a separate router of their own (one group per
//! deployment, no retries, no fallbacks), so they never cool a serving deployment down or count
//! against its load. Mock deployments are always healthy; wildcard deployments (`openai/*`)
//! cannot be called without a concrete model and are listed as skipped.
//!
//! The answer has LiteLLM's shape: `healthy_endpoints`, `unhealthy_endpoints` (each entry with
//! `model`, `model_name`, `model_id`, `api_base` when set, and `error` when unhealthy),
//! `healthy_count`, `unhealthy_count`. Credentials are never shown: entries carry no key, the
//! `api_base` loses its query and user-info, and error messages have the deployment's key
//! replaced.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tollgate::{
    ChatRequest, Client, EmbeddingRequest, RequestOptions, RouterConfig, RouterSettings,
    TextCompletionRequest,
};

use crate::config::ProxyConfig;

/// How long one deployment may take to answer its check.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Chat,
    Completion,
    Embedding,
}

/// One deployment to check.
#[derive(Debug)]
struct Check {
    /// The check router's group for this deployment.
    key: String,
    mode: Mode,
    /// The entry shown in the answer (no secrets).
    entry: Map<String, Value>,
    /// Strings to scrub from error messages (the deployment's key).
    secrets: Vec<String>,
}

/// Checks deployments on demand. Built once at start-up from the config.
#[derive(Debug)]
pub(crate) struct HealthChecker {
    client: Option<Client>,
    checks: Vec<Check>,
    /// Entries that are healthy without a call (mock groups).
    always_healthy: Vec<Value>,
    skipped: Vec<Value>,
    timeout: Duration,
}

/// `api_base` without user-info or query (either may hold a credential).
fn safe_base(base: &str) -> String {
    let no_query = base.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((auth, path)) => {
                let host = auth.rsplit('@').next().unwrap_or(auth);
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{scheme}://{}", rest.rsplit('@').next().unwrap_or(rest)),
        },
        None => no_query.to_owned(),
    }
}

fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "[redacted]");
        }
    }
    out
}

impl HealthChecker {
    pub(crate) fn new(config: &ProxyConfig) -> Result<Self, tollgate::Error> {
        Self::with_timeout(config, CHECK_TIMEOUT)
    }

    pub(crate) fn with_timeout(config: &ProxyConfig, timeout: Duration) -> Result<Self, tollgate::Error> {
        let mut model_list = Vec::new();
        let mut checks = Vec::new();
        let mut skipped = Vec::new();
        for (i, d) in config.router.model_list.iter().enumerate() {
            let p = &d.litellm_params;
            let mut entry = Map::new();
            entry.insert("model".into(), Value::String(p.model.clone()));
            entry.insert("model_name".into(), Value::String(d.model_name.clone()));
            if let Some(id) = &d.model_info.id {
                entry.insert("model_id".into(), Value::String(id.clone()));
            }
            if let Some(b) = &p.api_base {
                entry.insert("api_base".into(), Value::String(safe_base(b)));
            }
            if p.model.contains('*') {
                skipped.push(Value::Object(entry));
                continue;
            }
            let mode = match d.model_info.extra.get("mode").and_then(Value::as_str) {
                Some("embedding") => Mode::Embedding,
                Some("completion") => Mode::Completion,
                _ => Mode::Chat,
            };
            let key = format!("tollgate-health-check-{i}");
            let mut dep = d.clone();
            dep.model_name = key.clone();
            dep.litellm_params.timeout = Some(timeout);
            dep.litellm_params.stream_timeout = None;
            dep.litellm_params.rpm = None;
            dep.litellm_params.tpm = None;
            dep.litellm_params.max_parallel_requests = None;
            model_list.push(dep);
            let secrets = p.api_key.iter().map(|k| k.expose().to_owned()).collect();
            checks.push(Check { key, mode, entry, secrets });
        }
        let client = if model_list.is_empty() {
            None
        } else {
            let settings = RouterSettings {
                num_retries: 0,
                timeout: Some(timeout),
                stream_timeout: None,
                max_fallbacks: 0,
                enable_pre_call_checks: false,
                enable_tag_filtering: false,
                ..RouterSettings::default()
            };
            let env = config.env_lookup();
            Some(
                Client::builder()
                    .env(move |n| env(n))
                    .drop_params(true)
                    .timeout(timeout)
                    .router(RouterConfig { model_list, router_settings: settings })
                    .build()?,
            )
        };
        let always_healthy = config.mocks.keys().map(|g| json!({"model": "mock", "model_name": g})).collect();
        Ok(HealthChecker { client, checks, always_healthy, skipped, timeout })
    }

    /// Runs every check at once and answers in LiteLLM's shape.
    pub(crate) async fn check_all(&self) -> Value {
        let results = futures_util::future::join_all(self.checks.iter().map(|c| self.check_one(c))).await;
        let mut healthy = self.always_healthy.clone();
        let mut unhealthy = Vec::new();
        for (c, r) in self.checks.iter().zip(results) {
            let mut entry = c.entry.clone();
            match r {
                Ok(()) => healthy.push(Value::Object(entry)),
                Err(msg) => {
                    entry.insert("error".into(), Value::String(scrub(&msg, &c.secrets)));
                    unhealthy.push(Value::Object(entry));
                }
            }
        }
        let mut out = json!({
            "healthy_count": healthy.len(),
            "unhealthy_count": unhealthy.len(),
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
        });
        if !self.skipped.is_empty() {
            out["skipped_endpoints"] = Value::Array(self.skipped.clone());
        }
        out
    }

    async fn check_one(&self, c: &Check) -> Result<(), String> {
        let router = self.client.as_ref().and_then(Client::router).ok_or("no router for health checks")?;
        let opts = RequestOptions::default();
        let call = async {
            let res = match c.mode {
                Mode::Chat => {
                    let req: ChatRequest = serde_json::from_value(json!({
                        "model": c.key,
                        "messages": [{"role": "user", "content": "ping"}],
                        "max_tokens": 1,
                    }))
                    .map_err(|e| e.to_string())?;
                    router.chat(&req, &opts).await.map(|_| ())
                }
                Mode::Completion => {
                    let req: TextCompletionRequest =
                        serde_json::from_value(json!({"model": c.key, "prompt": "ping", "max_tokens": 1}))
                            .map_err(|e| e.to_string())?;
                    router.text_completion(&req, &opts).await.map(|_| ())
                }
                Mode::Embedding => {
                    let req: EmbeddingRequest =
                        serde_json::from_value(json!({"model": c.key, "input": "ping"}))
                            .map_err(|e| e.to_string())?;
                    router.embedding(&req, &opts).await.map(|_| ())
                }
            };
            res.map_err(|e| e.into_provider_error().to_string())
        };
        // The router has the same deadline; this one also bounds connection set-up and backoff.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), call).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs_f64())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_loses_credentials() {
        assert_eq!(safe_base("https://u:p@host.example/v1?key=abc"), "https://host.example/v1");
        assert_eq!(safe_base("http://127.0.0.1:9/v1"), "http://127.0.0.1:9/v1");
        assert_eq!(safe_base("https://k@h.example"), "https://h.example");
    }

    #[test]
    fn keys_are_scrubbed_from_errors() {
        assert_eq!(scrub("bad key sk-secret-1 given", &["sk-secret-1".into()]), "bad key [redacted] given");
    }
}
