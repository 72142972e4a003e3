//! Request translation rules beyond the golden fixtures: parameters Anthropic rejects,
//! `max_tokens` resolution, thinking, JSON mode, tool choice, headers, URLs and bad input.

// Helpers outside #[test] functions may unwrap: a broken case should fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::{Adapter, ChatRequest, ErrorKind, ProviderError, Secret, UpstreamConfig, Usage};
use tollgate_provider_anthropic::wire::MessagesRequest;
use tollgate_provider_anthropic::{
    AnthropicAdapter, PROVIDERS, adapter, is_anthropic_model, merge_betas, messages_url, usage_from_wire,
    usage_to_wire,
};

fn cfg() -> UpstreamConfig {
    let mut c = UpstreamConfig::new("claude-sonnet-4-5");
    c.api_key = Some(Secret::new("k"));
    c
}

fn req(v: Value) -> ChatRequest {
    let mut v = v;
    if v.get("model").is_none() {
        v["model"] = json!("anthropic/claude-sonnet-4-5");
    }
    if v.get("messages").is_none() {
        v["messages"] = json!([{"role": "user", "content": "hi"}]);
    }
    serde_json::from_value(v).unwrap()
}

fn try_body(r: &ChatRequest, c: &UpstreamConfig) -> Result<Value, ProviderError> {
    let built = AnthropicAdapter::new().chat_request(r, c)?;
    Ok(serde_json::from_slice(built.body()).unwrap())
}

fn body(v: Value) -> Value {
    try_body(&req(v), &cfg()).unwrap()
}

fn err(v: Value) -> ProviderError {
    try_body(&req(v), &cfg()).unwrap_err()
}

#[test]
fn rejected_parameters_fail_unless_drop_params() {
    let r = req(json!({"n": 2, "seed": 1, "logprobs": true, "top_logprobs": 2, "frequency_penalty": 0.1,
                       "presence_penalty": 0.2, "logit_bias": {"1": 2}, "temperature": 0.5}));
    let e = try_body(&r, &cfg()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedParams);
    assert_eq!(e.param.as_deref(), Some("n"));
    assert!(
        e.message
            .contains("[n, seed, logprobs, top_logprobs, frequency_penalty, presence_penalty, logit_bias]"),
        "{}",
        e.message
    );
    let mut c = cfg();
    c.drop_params = true;
    let b = try_body(&r, &c).unwrap();
    assert_eq!(
        b,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}],
               "max_tokens": 4096, "temperature": 0.5})
    );
    // Values Anthropic's defaults already mean are fine.
    assert!(try_body(&req(json!({"n": 1, "logprobs": false})), &cfg()).is_ok());
}

#[test]
fn max_tokens_resolution() {
    assert_eq!(body(json!({}))["max_tokens"], 4096);
    assert_eq!(body(json!({"max_tokens": 10, "max_completion_tokens": 20}))["max_tokens"], 20);
    let mut c = cfg();
    c.max_output_tokens = Some(64000);
    assert_eq!(try_body(&req(json!({})), &c).unwrap()["max_tokens"], 64000);
    assert_eq!(try_body(&req(json!({"max_tokens": 5})), &c).unwrap()["max_tokens"], 5);
}

#[test]
fn thinking_from_extra_and_reasoning_effort() {
    let b = body(json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 1000,
                        "reasoning_effort": "high"}));
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 2000}));
    assert_eq!(b["max_tokens"], 3000, "max_tokens is raised above the budget");
    let b = body(json!({"reasoning_effort": "low"}));
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(body(json!({"reasoning_effort": "medium"}))["thinking"]["budget_tokens"], 2048);
    assert!(body(json!({"reasoning_effort": "none"})).get("thinking").is_none());
    let b = body(json!({"thinking": {"type": "disabled"}, "max_tokens": 10}));
    assert_eq!((b["thinking"].clone(), b["max_tokens"].clone()), (json!({"type": "disabled"}), json!(10)));
    let e = err(json!({"reasoning_effort": "extreme"}));
    assert_eq!((e.kind, e.param.as_deref()), (ErrorKind::BadRequest, Some("reasoning_effort")));
}

#[test]
fn json_object_and_schema_tool_choices() {
    let b = body(json!({"response_format": {"type": "json_object"}}));
    assert_eq!(
        b["tools"],
        json!([{"name": "json_tool_call", "description": "Respond with a JSON object in this tool's input.",
                "input_schema": {"type": "object", "additionalProperties": true}}])
    );
    assert_eq!(b["tool_choice"], json!({"type": "tool", "name": "json_tool_call"}));
    // Thinking forbids forced tools.
    let b = body(json!({"response_format": {"type": "json_object"}, "reasoning_effort": "low"}));
    assert_eq!(b["tool_choice"], json!({"type": "auto"}));
    // With the caller's tools, the JSON tool is added and the caller's choice kept.
    let b = body(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
                        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"}),
    );
    assert_eq!(b["tools"].as_array().unwrap().len(), 2);
    assert_eq!(b["tools"][1]["name"], "json_tool_call");
    assert_eq!(b["tool_choice"], json!({"type": "auto"}));
    // `text` is the default: nothing to do.
    assert!(body(json!({"response_format": {"type": "text"}})).get("tools").is_none());
}

#[test]
fn tool_choice_modes_and_parallel_calls() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let tc = |choice: Value, parallel: Option<bool>| {
        let mut v = json!({"tools": tools.clone(), "tool_choice": choice});
        if let Some(p) = parallel {
            v["parallel_tool_calls"] = json!(p);
        }
        body(v)["tool_choice"].clone()
    };
    assert_eq!(tc(json!("auto"), None), json!({"type": "auto"}));
    assert_eq!(tc(json!("required"), None), json!({"type": "any"}));
    assert_eq!(tc(json!("none"), Some(false)), json!({"type": "none"}));
    assert_eq!(
        tc(json!({"type": "function", "function": {"name": "f"}}), Some(false)),
        json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
    );
    assert_eq!(tc(json!("auto"), Some(true)), json!({"type": "auto"}));
    let b = body(json!({"tools": tools, "parallel_tool_calls": false}));
    assert_eq!(b["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    // No tools: no tool_choice (Anthropic rejects one without tools).
    let b = body(json!({"tool_choice": "required", "parallel_tool_calls": false}));
    assert!(b.get("tool_choice").is_none() && b.get("tools").is_none());
}

#[test]
fn invalid_tool_arguments_name_the_call() {
    let e = err(json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "x"}
    ]}));
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(e.message.contains("call_9") && e.message.contains("lookup"), "{}", e.message);
}

#[test]
fn bad_messages_are_bad_requests() {
    for (case, v) in [
        ("only system", json!({"messages": [{"role": "system", "content": "s"}]})),
        (
            "audio",
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
        ),
        (
            "ftp image",
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
        ),
        (
            "non-base64 data uri",
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
        ),
        (
            "text file",
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}]}]}),
        ),
        (
            "empty file",
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"filename": "a"}}]}]}),
        ),
        (
            "tool without id",
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]}),
        ),
        (
            "image in system",
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}, {"role": "user", "content": "q"}]}),
        ),
        (
            "bad thinking block",
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "thinking_blocks": [42]}]}),
        ),
        ("bad top_k", json!({"top_k": -1})),
    ] {
        let e = err(v);
        assert_eq!(e.kind, ErrorKind::BadRequest, "{case}: {e}");
        assert_eq!(e.provider.as_deref(), Some("anthropic"), "{case}");
    }
}

#[test]
fn headers_betas_and_extra_body() {
    let mut c = cfg();
    c.api_version = Some("2099-01-01".into());
    c.headers = vec![
        ("anthropic-beta".into(), "a, b".into()),
        ("ANTHROPIC-BETA".into(), "b,c".into()),
        ("x-api-key".into(), "override".into()),
    ];
    c.extra_body.insert("max_tokens".into(), json!(7));
    c.extra_body.insert("service_tier".into(), json!("standard_only"));
    let r = req(json!({"anthropic_beta": "c,d"}));
    let built = AnthropicAdapter::new().chat_request(&r, &c).unwrap();
    let h = built.headers();
    assert_eq!(h["anthropic-beta"], "a,b,c,d");
    assert_eq!(h.get_all("anthropic-beta").iter().count(), 1);
    assert_eq!(h["anthropic-version"], "2099-01-01");
    assert_eq!(h["x-api-key"], "override");
    let b: Value = serde_json::from_slice(built.body()).unwrap();
    assert_eq!(b["max_tokens"], 7);
    assert_eq!(b["service_tier"], "standard_only");
    assert!(b.get("anthropic_beta").is_none());

    let mut bad = cfg();
    bad.headers = vec![("x-bad".into(), "line\nbreak".into())];
    assert_eq!(try_body(&req(json!({})), &bad).unwrap_err().kind, ErrorKind::BadRequest);
    let mut bad = cfg();
    bad.headers = vec![("bad header".into(), "v".into())];
    assert_eq!(try_body(&req(json!({})), &bad).unwrap_err().kind, ErrorKind::BadRequest);
    assert_eq!(merge_betas(["", " , "]), None);
}

#[test]
fn urls_registry_and_credentials() {
    assert_eq!(messages_url("https://api.anthropic.com"), "https://api.anthropic.com/v1/messages");
    assert_eq!(messages_url("https://h/x/v1/"), "https://h/x/v1/messages");
    assert_eq!(messages_url("https://h/v1/messages"), "https://h/v1/messages");
    assert_eq!(PROVIDERS, &["anthropic"]);
    let a = adapter("anthropic").unwrap();
    assert_eq!(a.provider(), "anthropic");
    assert!(adapter("openai").is_none());
    assert!(is_anthropic_model("claude-3-5-sonnet-latest"));
    assert!(!is_anthropic_model("gpt-4o") && !is_anthropic_model("claudette"));
    let env = a.credential_env();
    assert_eq!(env.api_key, &["ANTHROPIC_API_KEY"]);
    assert_eq!(env.api_base, &["ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"]);
    // The model comes from the config (prefix removed); the request's model is the fallback.
    let r = req(json!({}));
    assert_eq!(try_body(&r, &cfg()).unwrap()["model"], "claude-sonnet-4-5");
    assert_eq!(try_body(&r, &UpstreamConfig::default()).unwrap()["model"], "anthropic/claude-sonnet-4-5");
    // Without credentials no auth header is invented.
    let built = AnthropicAdapter::new().chat_request(&r, &UpstreamConfig::new("m")).unwrap();
    assert!(built.headers().get("x-api-key").is_none() && built.headers().get("authorization").is_none());
}

#[test]
fn usage_round_trips_through_wire_form() {
    let wire = serde_json::from_value(json!({"input_tokens": 10, "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 3, "output_tokens": 7}))
    .unwrap();
    let u: Usage = usage_from_wire(&wire);
    assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (18, 7, 25));
    let back = serde_json::to_value(usage_to_wire(&u)).unwrap();
    assert_eq!(
        back,
        json!({"input_tokens": 10, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3, "output_tokens": 7})
    );
}

/// The wire types read and write Anthropic's own request shape unchanged (the proxy's
/// `/v1/messages` endpoint relies on this), including blocks tollgate does not model.
#[test]
fn wire_request_round_trips() {
    let v = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AA=="}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}, "title": "t"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": false}]}
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "bash_20250124", "name": "bash"}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u"},
        "stream": true,
        "container": "c1"
    });
    let parsed: MessagesRequest = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(parsed.extra.get("container"), Some(&json!("c1")));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), v);
}
