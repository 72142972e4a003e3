//! Config loading: LiteLLM's documented schema, `os.environ/` references, `environment_variables`,
//! unsupported keys and error paths.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use pretty_assertions::assert_eq;
use serde_json::Value;
use tollgate::RoutingStrategy;
use tollgate_proxy::{ConfigError, Gateway, ProxyConfig};
use tollgate_testkit::MockServer;

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    ProxyConfig::from_yaml_str(yaml, "proxy_config.yaml", Arc::new(move |n| env.get(n).cloned()))
}

fn problems(yaml: &str) -> Vec<String> {
    match load(yaml, &[]) {
        Ok(_) => panic!("expected an invalid config"),
        Err(e) => e.problems(),
    }
}

/// A config in LiteLLM's documented shape, using its common keys (including some tollgate does
/// not support yet).
const LITELLM_CONFIG: &str = r#"
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/chatgpt-v-2
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: "2023-07-01-preview"
      rpm: 6
      timeout: 30
      stream_timeout: 60
    model_info:
      id: azure-eu
      base_model: azure/gpt-35-turbo
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: gpt-3.5-turbo
      api_key: os.environ/OPENAI_API_KEY
      tpm: 100000
      extra_headers: {"x-team": "os.environ/TEAM_NAME"}
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20240620
      api_key: "os.environ/ANTHROPIC_API_KEY"
  - model_name: llama3
    litellm_params:
      model: ollama/llama3
      api_base: http://localhost:11434
  - model_name: bedrock-claude
    litellm_params:
      model: bedrock/anthropic.claude-3-sonnet-20240229-v1:0
      aws_region_name: us-east-1
  - model_name: "anthropic/*"
    litellm_params:
      model: "anthropic/*"
      api_key: os.environ/ANTHROPIC_API_KEY

litellm_settings:
  drop_params: True
  num_retries: 3
  request_timeout: 10
  fallbacks: [{"gpt-3.5-turbo": ["claude"]}]
  context_window_fallbacks: [{"gpt-3.5-turbo": ["claude"]}]
  success_callback: ["langfuse"]
  cache: True
  set_verbose: False

router_settings:
  routing_strategy: usage-based-routing-v2
  redis_host: localhost
  redis_port: 6379
  enable_pre_call_checks: true

general_settings:
  master_key: sk-1234
  database_url: "postgresql://user:pass@localhost:5432/litellm"
  alerting: ["slack"]

environment_variables:
  AZURE_API_BASE: https://example-eu.openai.azure.com
  TEAM_NAME: platform
"#;

#[test]
fn litellm_documented_config_loads() {
    let cfg = load(
        LITELLM_CONFIG,
        &[("AZURE_API_KEY", "az-key"), ("OPENAI_API_KEY", "sk-oa"), ("ANTHROPIC_API_KEY", "sk-ant")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.model_groups, vec!["gpt-3.5-turbo", "claude", "llama3", "bedrock-claude", "anthropic/*"]);
    assert!(cfg.mocks.is_empty());
    let list = &cfg.router.model_list;
    assert_eq!(list.len(), 6);
    let azure = &list[0].litellm_params;
    assert_eq!(
        azure.api_base.as_deref(),
        Some("https://example-eu.openai.azure.com"),
        "from environment_variables"
    );
    assert_eq!(azure.api_key.as_ref().map(|k| k.expose()), Some("az-key"), "from the environment");
    assert_eq!(azure.rpm, Some(6));
    assert_eq!(azure.stream_timeout, Some(Duration::from_secs(60)));
    assert_eq!(azure.drop_params, Some(true), "litellm_settings.drop_params applies to every deployment");
    assert_eq!(list[0].model_info.id.as_deref(), Some("azure-eu"));
    assert_eq!(list[0].model_info.extra.get("base_model"), Some(&Value::from("azure/gpt-35-turbo")));
    assert_eq!(list[1].model_info.id.as_deref(), Some("gpt-3.5-turbo#1"));
    assert_eq!(list[1].litellm_params.extra_headers.get("x-team").map(String::as_str), Some("platform"));
    assert_eq!(list[2].litellm_params.api_key.as_ref().map(|k| k.expose()), Some("sk-ant"));

    let rs = &cfg.router.router_settings;
    assert_eq!(rs.routing_strategy, RoutingStrategy::UsageBased);
    assert_eq!(rs.num_retries, 3, "litellm_settings.num_retries");
    assert_eq!(rs.timeout, Some(Duration::from_secs(10)), "litellm_settings.request_timeout");
    assert!(rs.enable_pre_call_checks);
    assert_eq!(rs.fallbacks[0]["gpt-3.5-turbo"], vec!["claude".to_owned()]);
    assert_eq!(rs.context_window_fallbacks.len(), 1);
    assert!(cfg.drop_params);
    assert_eq!(cfg.request_timeout, Some(Duration::from_secs(10)));
    assert_eq!(cfg.master_key.as_ref().map(|k| k.expose()), Some("sk-1234"));

    let mut unsupported = cfg.unsupported_keys.clone();
    unsupported.sort();
    assert_eq!(
        unsupported,
        vec![
            "general_settings.alerting",
            "general_settings.database_url",
            "litellm_settings.cache",
            "litellm_settings.set_verbose",
            "litellm_settings.success_callback",
            "router_settings.redis_host",
            "router_settings.redis_port",
        ]
    );
    assert!(!format!("{cfg:?}").contains("az-key"), "secrets are not printed");

    // And a gateway (router over every provider) builds from it.
    Gateway::new(cfg).unwrap();
}

#[test]
fn router_settings_win_over_litellm_settings() {
    let cfg = load(
        "litellm_settings: {num_retries: 5, request_timeout: 9}\nrouter_settings: {num_retries: 1, timeout: 2}\n",
        &[],
    )
    .unwrap();
    assert_eq!(cfg.router.router_settings.num_retries, 1);
    assert_eq!(cfg.router.router_settings.timeout, Some(Duration::from_secs(2)));
}

#[test]
fn missing_environment_variable_names_the_path() {
    let p = problems(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: os.environ/NOPE_KEY\n",
    );
    assert_eq!(p, vec!["model_list[0].litellm_params.api_key: environment variable `NOPE_KEY` is not set"]);
    // environment_variables may reference the process environment, and a missing one is named too.
    let p = problems("environment_variables:\n  A: os.environ/MISSING_A\n");
    assert_eq!(p, vec!["environment_variables.A: environment variable `MISSING_A` is not set"]);
    let cfg = load(
        "environment_variables:\n  A: os.environ/REAL_A\ngeneral_settings:\n  master_key: os.environ/A\n",
        &[("REAL_A", "sk-a")],
    )
    .unwrap();
    assert_eq!(cfg.master_key.as_ref().map(|k| k.expose()), Some("sk-a"));
}

#[test]
fn invalid_values_report_file_path_and_reason() {
    let yaml = r#"
model_list:
  - model_name: ok
    litellm_params: {model: openai/gpt-4o, rpm: 10}
  - model_name: bad-rpm
    litellm_params: {model: openai/gpt-4o}
  - model_name: bad
    litellm_params:
      model: openai/gpt-4o
      rpm: lots
  - litellm_params: {model: openai/gpt-4o}
  - model_name: no-params
  - model_name: unknown-provider
    litellm_params: {model: notaprovider/model-x}
router_settings:
  routing_strategy: fastest-please
litellm_settings:
  num_retries: -1
general_settings:
  max_request_size_mb: -3
"#;
    let err = load(yaml, &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("proxy_config.yaml: invalid configuration"), "{text}");
    let p = err.problems();
    let has = |prefix: &str| p.iter().any(|x| x.starts_with(prefix));
    assert!(has("model_list[2].litellm_params.rpm: invalid type: string \"lots\""), "{p:#?}");
    assert!(has("model_list[3].model_name: missing"), "{p:#?}");
    assert!(has("model_list[4].litellm_params: missing"), "{p:#?}");
    assert!(has("model_list[5].litellm_params.model: "), "{p:#?}");
    assert!(has("router_settings.routing_strategy: unknown variant `fastest-please`"), "{p:#?}");
    assert!(has("litellm_settings.num_retries: invalid value"), "{p:#?}");
    assert!(has("general_settings.max_request_size_mb: must be a positive"), "{p:#?}");
    assert!(!has("model_list[0]") && !has("model_list[1]"), "{p:#?}");

    let p = problems(
        "model_list:\n  - model_name: ok\n    litellm_params: {model: openai/gpt-4o}\n  - model_name: m\n    litellm_params: {model: mock/m}\nlitellm_settings:\n  fallbacks: [{\"ok\": [\"nowhere\", \"m\"]}]\n",
    );
    assert_eq!(
        p,
        vec![
            "litellm_settings.fallbacks[0].ok: `nowhere` is not a model group of model_list",
            "litellm_settings.fallbacks[0].ok: fallbacks to or from the mock group `m` are not supported",
        ]
    );
}

#[test]
fn structural_and_yaml_errors() {
    assert_eq!(problems("model_list: {a: 1}\n"), vec!["model_list: expected a list, found a mapping"]);
    assert_eq!(problems("- just\n- a list\n"), vec!["expected a mapping, found a list"]);
    let err = load("model_list:\n  - model_name: a\n   bad indent: [\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
    assert!(err.to_string().contains("line"), "{err}");
    let p = problems(
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\n  - model_name: m\n    litellm_params: {model: openai/gpt-4o}\n",
    );
    assert_eq!(p, vec!["model_list[1]: group `m` mixes mock and real deployments"]);
}

#[test]
fn unknown_keys_everywhere_are_reported_by_path() {
    let cfg = load(
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x}\n    extra_thing: 1\nguardrails: []\ncallback_settings: {}\n",
        &[],
    )
    .unwrap();
    let mut keys = cfg.unsupported_keys.clone();
    keys.sort();
    assert_eq!(keys, vec!["callback_settings", "guardrails", "model_list[0].extra_thing"]);
}

#[test]
fn mock_settings_are_read() {
    let cfg = load(
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x, mock_response: hi, mock_delay_ms: 20, mock_chunk_delay_ms: 5}\n",
        &[],
    )
    .unwrap();
    let m = &cfg.mocks["m"];
    assert_eq!(m.response.as_deref(), Some("hi"));
    assert_eq!(m.delay, Duration::from_millis(20));
    assert_eq!(m.chunk_delay, Duration::from_millis(5));
    assert!(cfg.router.model_list.is_empty(), "mocks are not routed upstream");
    let p = problems(
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/x, mock_delay_ms: soon}\n",
    );
    assert!(p[0].starts_with("model_list[0].litellm_params.mock_delay_ms: invalid type"), "{p:?}");
}

#[test]
fn example_config_in_deploy_loads_without_keys() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config.example.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let cfg = load(&text, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.model_groups.iter().any(|g| g == "gpt-4o-mini"));
    assert!(cfg.model_groups.iter().all(|g| cfg.mocks.contains_key(g)), "serves offline");
    assert!(cfg.unsupported_keys.is_empty(), "{:?}", cfg.unsupported_keys);
}

/// `environment_variables` reach provider credentials through the client's env lookup, without
/// touching the process environment.
#[tokio::test]
async fn environment_variables_supply_provider_credentials() {
    let up = MockServer::start_openai().await;
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\nenvironment_variables:\n  OPENAI_API_KEY: sk-from-config\n",
        up.openai_base()
    );
    let proxy = start_config(config(&yaml)).await;
    let resp = reqwest::Client::new()
        .post(proxy.url("/v1/chat/completions"))
        .json(&chat_body("g", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.last_request().unwrap().header("authorization"), Some("Bearer sk-from-config"));
    proxy.stop().await.unwrap();
}
