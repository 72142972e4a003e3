//! Which OpenAI parameters a request sets, by their wire names, so adapters can rename, drop or
//! refuse them uniformly (LiteLLM's `drop_params` contract).

use crate::chat::ChatRequest;

/// The optional parameters of [`ChatRequest`], by wire name, in documentation order.
pub const CHAT_PARAMS: &[&str] = &[
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "response_format",
    "seed",
    "service_tier",
    "stop",
    "stream_options",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
    "modalities",
    "audio",
    "metadata",
    "store",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
    "functions",
    "function_call",
];

impl ChatRequest {
    /// Whether the parameter with this wire name is set (modelled fields and `extra` alike).
    pub fn has_param(&self, name: &str) -> bool {
        match name {
            "frequency_penalty" => self.frequency_penalty.is_some(),
            "presence_penalty" => self.presence_penalty.is_some(),
            "logit_bias" => self.logit_bias.is_some(),
            "logprobs" => self.logprobs.is_some(),
            "top_logprobs" => self.top_logprobs.is_some(),
            "max_tokens" => self.max_tokens.is_some(),
            "max_completion_tokens" => self.max_completion_tokens.is_some(),
            "n" => self.n.is_some(),
            "response_format" => self.response_format.is_some(),
            "seed" => self.seed.is_some(),
            "service_tier" => self.service_tier.is_some(),
            "stop" => self.stop.is_some(),
            "stream_options" => self.stream_options.is_some(),
            "temperature" => self.temperature.is_some(),
            "top_p" => self.top_p.is_some(),
            "tools" => self.tools.is_some(),
            "tool_choice" => self.tool_choice.is_some(),
            "parallel_tool_calls" => self.parallel_tool_calls.is_some(),
            "user" => self.user.is_some(),
            "reasoning_effort" => self.reasoning_effort.is_some(),
            "modalities" => self.modalities.is_some(),
            "audio" => self.audio.is_some(),
            "metadata" => self.metadata.is_some(),
            "store" => self.store.is_some(),
            "prediction" => self.prediction.is_some(),
            "web_search_options" => self.web_search_options.is_some(),
            "verbosity" => self.verbosity.is_some(),
            "prompt_cache_key" => self.prompt_cache_key.is_some(),
            "safety_identifier" => self.safety_identifier.is_some(),
            "functions" => self.functions.is_some(),
            "function_call" => self.function_call.is_some(),
            other => self.extra.contains_key(other),
        }
    }

    /// Those of `names` that the request sets, in the order given (for unsupported-parameter
    /// checks: adapters list what their provider rejects, this says which of them are in use).
    pub fn set_params<'a>(&self, names: &[&'a str]) -> Vec<&'a str> {
        names.iter().copied().filter(|n| self.has_param(n)).collect()
    }

    /// Unsets the parameter with this wire name. Returns whether it was set.
    pub fn clear_param(&mut self, name: &str) -> bool {
        fn take<T>(o: &mut Option<T>) -> bool {
            o.take().is_some()
        }
        match name {
            "frequency_penalty" => take(&mut self.frequency_penalty),
            "presence_penalty" => take(&mut self.presence_penalty),
            "logit_bias" => take(&mut self.logit_bias),
            "logprobs" => take(&mut self.logprobs),
            "top_logprobs" => take(&mut self.top_logprobs),
            "max_tokens" => take(&mut self.max_tokens),
            "max_completion_tokens" => take(&mut self.max_completion_tokens),
            "n" => take(&mut self.n),
            "response_format" => take(&mut self.response_format),
            "seed" => take(&mut self.seed),
            "service_tier" => take(&mut self.service_tier),
            "stop" => take(&mut self.stop),
            "stream_options" => take(&mut self.stream_options),
            "temperature" => take(&mut self.temperature),
            "top_p" => take(&mut self.top_p),
            "tools" => take(&mut self.tools),
            "tool_choice" => take(&mut self.tool_choice),
            "parallel_tool_calls" => take(&mut self.parallel_tool_calls),
            "user" => take(&mut self.user),
            "reasoning_effort" => take(&mut self.reasoning_effort),
            "modalities" => take(&mut self.modalities),
            "audio" => take(&mut self.audio),
            "metadata" => take(&mut self.metadata),
            "store" => take(&mut self.store),
            "prediction" => take(&mut self.prediction),
            "web_search_options" => take(&mut self.web_search_options),
            "verbosity" => take(&mut self.verbosity),
            "prompt_cache_key" => take(&mut self.prompt_cache_key),
            "safety_identifier" => take(&mut self.safety_identifier),
            "functions" => take(&mut self.functions),
            "function_call" => take(&mut self.function_call),
            other => self.extra.remove(other).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_param_can_be_seen_and_cleared() {
        // Build a request that sets every parameter through JSON, so the list and the struct
        // cannot drift apart silently.
        let mut body = json!({"model": "m", "messages": []});
        let samples = json!({
            "frequency_penalty": 0.1, "presence_penalty": 0.1, "logit_bias": {}, "logprobs": true,
            "top_logprobs": 1, "max_tokens": 1, "max_completion_tokens": 1, "n": 1,
            "response_format": {"type": "text"}, "seed": 1, "service_tier": "auto", "stop": "x",
            "stream_options": {}, "temperature": 1.0, "top_p": 1.0, "tools": [],
            "tool_choice": "auto", "parallel_tool_calls": true, "user": "u", "reasoning_effort": "low",
            "modalities": [], "audio": {}, "metadata": {}, "store": false, "prediction": {},
            "web_search_options": {}, "verbosity": "low", "prompt_cache_key": "k",
            "safety_identifier": "s", "functions": [], "function_call": "auto"
        });
        for (k, v) in samples.as_object().unwrap() {
            body[k] = v.clone();
        }
        let mut req: ChatRequest = serde_json::from_value(body).unwrap();
        assert!(req.extra.is_empty(), "every sample maps to a modelled field: {:?}", req.extra);
        assert_eq!(CHAT_PARAMS.len(), samples.as_object().unwrap().len());
        for p in CHAT_PARAMS {
            assert!(req.has_param(p), "{p}");
            assert!(req.clear_param(p), "{p}");
            assert!(!req.has_param(p), "{p}");
        }
        req.extra.insert("vendor".into(), json!(1));
        assert!(req.has_param("vendor"));
        assert!(req.clear_param("vendor"));
    }
}
