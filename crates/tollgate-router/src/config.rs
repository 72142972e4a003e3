//! Router configuration, deserialisable from LiteLLM's `model_list` entries and `router_settings`.
//!
//! Field names follow LiteLLM where it has one (`model_name`, `litellm_params`, `rpm`, `tpm`,
//! `order`, `weight`, `num_retries`, `allowed_fails`, `cooldown_time`, `fallbacks`, …). Durations
//! are seconds (numbers, fractions allowed), as in LiteLLM. Resolving `os.environ/VAR` references
//! is the caller's job (the proxy's config loader); the router takes values as given.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tollgate_core::Secret;

/// A whole router configuration: LiteLLM's `model_list` plus `router_settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RouterConfig {
    pub model_list: Vec<DeploymentConfig>,
    pub router_settings: RouterSettings,
}

/// One deployment (one entry of LiteLLM's `model_list`).
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentConfig {
    /// The public model group this deployment serves. May be a wildcard (`anthropic/*`, `*`).
    pub model_name: String,
    pub litellm_params: DeploymentParams,
    #[serde(default)]
    pub model_info: DeploymentInfo,
}

impl DeploymentConfig {
    /// A deployment of `provider_model` (`groq/llama-3.3-70b-versatile`) in group `model_name`.
    pub fn new(model_name: impl Into<String>, provider_model: impl Into<String>) -> Self {
        DeploymentConfig {
            model_name: model_name.into(),
            litellm_params: DeploymentParams { model: provider_model.into(), ..DeploymentParams::default() },
            model_info: DeploymentInfo::default(),
        }
    }
}

/// `model_info` of a deployment: its id and model facts that override the catalog.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeploymentInfo {
    /// The deployment id reported in attempts and used as the state key. Default: `<group>/<index>`
    /// where index is the deployment's position in `model_list`.
    pub id: Option<String>,
    /// The context window (input tokens) for pre-call checks; default from the catalog.
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    /// Everything else, kept for callers (`mode`, `base_model`, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// `litellm_params` of a deployment: where and how to call it, and its routing limits.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeploymentParams {
    /// The provider model (`azure/gpt-4o-eu`, `anthropic/*` for a wildcard deployment).
    pub model: String,
    #[serde(deserialize_with = "de_secret")]
    pub api_key: Option<Secret>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    /// Extra headers sent upstream (LiteLLM's `extra_headers`).
    pub extra_headers: BTreeMap<String, String>,
    pub drop_params: Option<bool>,
    /// Requests per minute this deployment accepts; also its default weight for simple-shuffle.
    pub rpm: Option<u64>,
    /// Tokens per minute this deployment accepts.
    pub tpm: Option<u64>,
    /// Relative share of traffic under simple-shuffle.
    pub weight: Option<f64>,
    /// Priority tier: the lowest `order` is used first; higher tiers only when no deployment of a
    /// lower tier is available. Deployments without `order` form the last tier.
    pub order: Option<u32>,
    /// Total timeout of one call, seconds.
    #[serde(deserialize_with = "de_opt_secs")]
    pub timeout: Option<Duration>,
    /// First-token timeout of a streamed call, seconds.
    #[serde(deserialize_with = "de_opt_secs")]
    pub stream_timeout: Option<Duration>,
    pub tags: Vec<String>,
    pub max_parallel_requests: Option<u32>,
    /// Custom prices (override the catalog).
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    /// Every other `litellm_params` key: provider-specific options and secrets
    /// (`aws_region_name`, `vertex_project`, `aws_secret_access_key`, …). Keys that name a
    /// credential (see [`is_secret_param`]) become `UpstreamConfig::secrets`, the rest `options`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl fmt::Debug for DeploymentParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `extra` may hold secrets: print its keys only.
        let extra_keys: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("DeploymentParams")
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("api_base", &self.api_base)
            .field("api_version", &self.api_version)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("weight", &self.weight)
            .field("order", &self.order)
            .field("timeout", &self.timeout)
            .field("stream_timeout", &self.stream_timeout)
            .field("tags", &self.tags)
            .field("max_parallel_requests", &self.max_parallel_requests)
            .field("extra_keys", &extra_keys)
            .finish_non_exhaustive()
    }
}

/// Whether a `litellm_params` key names a credential (kept as a [`Secret`], never printed).
pub fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("secret")
        || k.contains("token")
        || k.contains("password")
        || k.contains("credentials")
        || k.ends_with("_key")
        || k.ends_with("_key_id")
}

/// How the router picks a deployment within a group (LiteLLM's `routing_strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum RoutingStrategy {
    /// Random, weighted by `weight`, else `rpm`, else `tpm`, else uniform.
    #[default]
    #[serde(rename = "simple-shuffle")]
    SimpleShuffle,
    /// Fewest requests in flight.
    #[serde(rename = "least-busy")]
    LeastBusy,
    /// Lowest current-minute token (else request) usage; deployments at their limit are skipped.
    #[serde(rename = "usage-based-routing", alias = "usage-based-routing-v2")]
    UsageBased,
    /// Lowest recent latency (time to first token for streams).
    #[serde(rename = "latency-based-routing")]
    LatencyBased,
    /// Cheapest by the price table.
    #[serde(rename = "cost-based-routing")]
    CostBased,
}

/// LiteLLM's `routing_strategy_args`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct StrategyArgs {
    /// Latency-based: pick at random among deployments within this fraction of the fastest
    /// (0.0: always the fastest).
    pub lowest_latency_buffer: f64,
    /// Weight of the newest sample in the latency moving average (0 < alpha ≤ 1).
    pub latency_ewma_alpha: f64,
}

impl Default for StrategyArgs {
    fn default() -> Self {
        StrategyArgs { lowest_latency_buffer: 0.0, latency_ewma_alpha: 0.3 }
    }
}

/// LiteLLM's `retry_policy`: retries per error class (overrides `num_retries` for that class).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    #[serde(rename = "AuthenticationErrorRetries")]
    pub authentication_error_retries: Option<u32>,
    #[serde(rename = "TimeoutErrorRetries")]
    pub timeout_error_retries: Option<u32>,
    #[serde(rename = "RateLimitErrorRetries")]
    pub rate_limit_error_retries: Option<u32>,
    #[serde(rename = "InternalServerErrorRetries")]
    pub internal_server_error_retries: Option<u32>,
}

/// A fallback map: LiteLLM writes `[{"gpt-4o": ["gpt-4o-mini", "claude"]}, …]`.
pub type FallbackList = Vec<BTreeMap<String, Vec<String>>>;

/// LiteLLM's `router_settings` (plus the few tollgate additions documented per field).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RouterSettings {
    pub routing_strategy: RoutingStrategy,
    pub routing_strategy_args: StrategyArgs,
    /// Retries per model group after the first attempt (default 2).
    pub num_retries: u32,
    pub retry_policy: RetryPolicy,
    /// LiteLLM's `retry_after`: the minimum wait before a retry, seconds (default 0).
    #[serde(deserialize_with = "de_secs")]
    pub retry_after: Duration,
    /// Backoff base: retry `n` (0-based) waits a uniformly random time in `[0, base·2ⁿ]`, capped
    /// by `retry_backoff_max` (full jitter). Seconds; default 0.5.
    #[serde(deserialize_with = "de_secs")]
    pub retry_backoff_base: Duration,
    /// Default 8 s.
    #[serde(deserialize_with = "de_secs")]
    pub retry_backoff_max: Duration,
    /// The longest upstream `Retry-After` honoured when retrying the same deployment (default 60 s);
    /// longer requests are capped to it.
    #[serde(deserialize_with = "de_secs")]
    pub max_retry_after: Duration,
    /// Failures per minute a deployment may have before it cools down (cools down on the
    /// `allowed_fails + 1`-th). Default 3, as LiteLLM.
    pub allowed_fails: u32,
    /// How long a cooled-down deployment leaves rotation, seconds (default 5, as LiteLLM).
    #[serde(deserialize_with = "de_secs")]
    pub cooldown_time: Duration,
    /// tollgate: also cool down when, in the current minute, failures / requests ≥ this ratio …
    pub cooldown_failure_ratio: Option<f64>,
    /// … and at least this many requests finished (default 10).
    pub cooldown_min_requests: u32,
    pub fallbacks: FallbackList,
    /// Fallback groups for any group without its own `fallbacks` entry.
    pub default_fallbacks: Vec<String>,
    pub context_window_fallbacks: FallbackList,
    pub content_policy_fallbacks: FallbackList,
    /// The most fallback groups tried for one request (default 5, as LiteLLM).
    pub max_fallbacks: u32,
    /// Default total timeout of one call, seconds (default 600).
    #[serde(deserialize_with = "de_opt_secs")]
    pub timeout: Option<Duration>,
    /// Default first-token timeout of streamed calls, seconds (default none).
    #[serde(deserialize_with = "de_opt_secs")]
    pub stream_timeout: Option<Duration>,
    /// Check prompt tokens against each deployment's context window before calling it.
    pub enable_pre_call_checks: bool,
    /// Route by request tags (see the crate docs for the rule).
    pub enable_tag_filtering: bool,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            routing_strategy: RoutingStrategy::SimpleShuffle,
            routing_strategy_args: StrategyArgs::default(),
            num_retries: 2,
            retry_policy: RetryPolicy::default(),
            retry_after: Duration::ZERO,
            retry_backoff_base: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            cooldown_failure_ratio: None,
            cooldown_min_requests: 10,
            fallbacks: Vec::new(),
            default_fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            max_fallbacks: 5,
            timeout: None,
            stream_timeout: None,
            enable_pre_call_checks: false,
            enable_tag_filtering: false,
        }
    }
}

/// The fallbacks listed for `group` in a LiteLLM fallback list (first matching entry).
pub(crate) fn lookup_fallbacks<'a>(list: &'a FallbackList, group: &str) -> Option<&'a [String]> {
    list.iter().find_map(|m| m.get(group)).map(Vec::as_slice)
}

fn secs_to_duration<E: serde::de::Error>(v: f64) -> Result<Duration, E> {
    if (0.0..1e12).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(E::custom(format!("`{v}` is not a valid number of seconds")))
    }
}

fn de_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    secs_to_duration(f64::deserialize(d)?)
}

fn de_opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) => secs_to_duration(v).map(Some),
    }
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litellm_shapes_deserialise() {
        let cfg: RouterConfig = serde_json::from_value(serde_json::json!({
            "model_list": [{
                "model_name": "gpt-4o",
                "litellm_params": {
                    "model": "azure/gpt-4o-eu", "api_key": "sk-x", "api_base": "https://eu.example",
                    "api_version": "2024-06-01", "rpm": 600, "tpm": 100000, "order": 1,
                    "timeout": 30, "stream_timeout": 2.5, "tags": ["eu"],
                    "aws_region_name": "eu-west-1", "aws_secret_access_key": "s3cr3t"
                },
                "model_info": {"id": "azure-eu", "max_input_tokens": 128000}
            }],
            "router_settings": {
                "routing_strategy": "usage-based-routing-v2", "num_retries": 3, "allowed_fails": 1,
                "cooldown_time": 30, "fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}],
                "retry_policy": {"RateLimitErrorRetries": 5}
            }
        }))
        .unwrap();
        let d = &cfg.model_list[0];
        assert_eq!(d.litellm_params.rpm, Some(600));
        assert_eq!(d.litellm_params.stream_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(d.model_info.id.as_deref(), Some("azure-eu"));
        assert!(d.litellm_params.extra.contains_key("aws_region_name"));
        let dbg = format!("{:?}", d.litellm_params);
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("sk-x"), "{dbg}");
        let s = &cfg.router_settings;
        assert_eq!(s.routing_strategy, RoutingStrategy::UsageBased);
        assert_eq!(s.cooldown_time, Duration::from_secs(30));
        assert_eq!(lookup_fallbacks(&s.fallbacks, "gpt-4o"), Some(&["gpt-4o-mini".to_owned()][..]));
        assert_eq!(s.retry_policy.rate_limit_error_retries, Some(5));
        assert_eq!(s.max_fallbacks, 5);
        assert!(is_secret_param("aws_secret_access_key") && !is_secret_param("aws_region_name"));
    }

    #[test]
    fn rejects_negative_seconds() {
        let r: Result<RouterSettings, _> = serde_json::from_value(serde_json::json!({"cooldown_time": -1}));
        assert!(r.is_err());
    }
}
