//! Default request parameters from `litellm_params` (LiteLLM behaviour): a deployment that sets
//! `temperature`, `max_tokens`, `top_p`, … has them applied to requests that leave them out.
//! A value the request sets always wins.
//!
//! The gateway applies them before routing, so it can only apply a value every deployment of
//! the group agrees on (the usual single-deployment group, or a group configured alike). A key
//! set on only some deployments of a group, or with different values, is not applied (the
//! deployment is chosen by the router later); [`conflicts`] lists those so start-up and reload
//! can say so.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tollgate::{ChatRequest, TextCompletionRequest};

use crate::config::ProxyConfig;

/// The request parameters a deployment's `litellm_params` may default.
pub(crate) const DEFAULTABLE: &[&str] = &[
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
    "n",
    "reasoning_effort",
    "parallel_tool_calls",
    "top_logprobs",
];

/// The defaults of `group`: the keys of [`DEFAULTABLE`] that every deployment of the group
/// sets to the same value. Empty for mock, wildcard and unknown groups.
pub(crate) fn group_defaults(config: &ProxyConfig, group: &str) -> Map<String, Value> {
    let mut deps = config.router.model_list.iter().filter(|d| d.model_name == group);
    let Some(first) = deps.next() else { return Map::new() };
    let mut out: Map<String, Value> = DEFAULTABLE
        .iter()
        .filter_map(|k| first.litellm_params.extra.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .filter(|(_, v)| !v.is_null())
        .collect();
    for d in deps {
        out.retain(|k, v| d.litellm_params.extra.get(k) == Some(v));
    }
    out
}

/// Groups whose deployments disagree on a default (so it is not applied), as
/// `group: key` strings.
pub(crate) fn conflicts(config: &ProxyConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut groups: Vec<&str> = config.router.model_list.iter().map(|d| d.model_name.as_str()).collect();
    groups.dedup();
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        let agreed = group_defaults(config, g);
        for k in DEFAULTABLE {
            let anyone =
                config.router.model_list.iter().any(|d| {
                    d.model_name == g && d.litellm_params.extra.get(*k).is_some_and(|v| !v.is_null())
                });
            if anyone && !agreed.contains_key(*k) {
                out.push(format!("{g}: {k}"));
            }
        }
    }
    out
}

/// Sets `slot` from `defaults[key]` when the request left it out. YAML strings holding numbers
/// (`"0.2"`, e.g. from `os.environ/`) are read as numbers.
fn fill<T: DeserializeOwned>(slot: &mut Option<T>, defaults: &Map<String, Value>, key: &str) {
    if slot.is_some() {
        return;
    }
    let Some(v) = defaults.get(key) else { return };
    let parsed = serde_json::from_value::<T>(v.clone()).ok().or_else(|| match v {
        Value::String(s) => serde_json::from_str::<T>(s).ok(),
        _ => None,
    });
    if parsed.is_none() {
        tracing::warn!(key, value = %v, "litellm_params default has the wrong type; not applied");
    }
    *slot = parsed;
}

/// Applies the group's defaults to a chat request.
pub(crate) fn chat(config: &ProxyConfig, mut req: ChatRequest) -> ChatRequest {
    let d = group_defaults(config, &req.model);
    if d.is_empty() {
        return req;
    }
    fill(&mut req.temperature, &d, "temperature");
    fill(&mut req.top_p, &d, "top_p");
    fill(&mut req.max_tokens, &d, "max_tokens");
    fill(&mut req.max_completion_tokens, &d, "max_completion_tokens");
    fill(&mut req.presence_penalty, &d, "presence_penalty");
    fill(&mut req.frequency_penalty, &d, "frequency_penalty");
    fill(&mut req.seed, &d, "seed");
    fill(&mut req.stop, &d, "stop");
    fill(&mut req.n, &d, "n");
    fill(&mut req.reasoning_effort, &d, "reasoning_effort");
    fill(&mut req.parallel_tool_calls, &d, "parallel_tool_calls");
    fill(&mut req.top_logprobs, &d, "top_logprobs");
    req
}

/// Applies the group's defaults to a text completion request.
pub(crate) fn text(config: &ProxyConfig, mut req: TextCompletionRequest) -> TextCompletionRequest {
    let d = group_defaults(config, &req.model);
    if d.is_empty() {
        return req;
    }
    fill(&mut req.temperature, &d, "temperature");
    fill(&mut req.top_p, &d, "top_p");
    fill(&mut req.max_tokens, &d, "max_tokens");
    fill(&mut req.presence_penalty, &d, "presence_penalty");
    fill(&mut req.frequency_penalty, &d, "frequency_penalty");
    fill(&mut req.seed, &d, "seed");
    fill(&mut req.stop, &d, "stop");
    fill(&mut req.n, &d, "n");
    req
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn cfg(yaml: &str) -> ProxyConfig {
        ProxyConfig::from_yaml_str(yaml, "t.yaml", Arc::new(|_| None)).unwrap()
    }

    const TWO: &str = "model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_key: k, temperature: \"0.2\", top_p: 0.9}
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_key: k, temperature: \"0.2\", top_p: 0.5, seed: 1}
";

    #[test]
    fn agreed_values_apply_and_conflicts_are_listed() {
        let c = cfg(TWO);
        let d = group_defaults(&c, "g");
        assert_eq!(d.keys().collect::<Vec<_>>(), ["temperature"]);
        assert_eq!(conflicts(&c), ["g: top_p", "g: seed"]);
        let req: ChatRequest =
            serde_json::from_value(serde_json::json!({"model": "g", "messages": []})).unwrap();
        // A number written as a string is read as a number.
        assert_eq!(chat(&c, req).temperature, Some(0.2));
        assert!(group_defaults(&c, "other").is_empty());
    }
}
