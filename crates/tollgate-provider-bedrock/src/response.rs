//! Converse responses and errors → canonical types.

use serde_json::{Value, json};
use tollgate_core::chat::{AssistantMessage, Choice, PromptTokensDetails, ToolCall};
use tollgate_core::error::{body_excerpt, mentions_context_window, parse_retry_after};
use tollgate_core::{ChatResponse, ErrorKind, Extra, FinishReason, ProviderError, TimeoutPhase, Usage};

use crate::PROVIDER;
use crate::request::JSON_TOOL_NAME;

/// Bedrock `stopReason` → OpenAI `finish_reason`.
pub fn map_stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Bedrock `TokenUsage` → core's invariant: `prompt_tokens = inputTokens + cacheReadInputTokens
/// + cacheWriteInputTokens` (Bedrock reports the three separately), cache reads/writes as subsets.
pub fn map_usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64);
    let input = n("inputTokens").unwrap_or(0);
    let output = n("outputTokens").unwrap_or(0);
    let read = n("cacheReadInputTokens");
    let write = n("cacheWriteInputTokens");
    let prompt = input + read.unwrap_or(0) + write.unwrap_or(0);
    let mut usage = Usage::new(prompt, output);
    if read.is_some() || write.is_some() {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(read.unwrap_or(0)),
            cache_creation_tokens: Some(write.unwrap_or(0)),
            ..PromptTokensDetails::default()
        });
    }
    // Bedrock does not break reasoning tokens out of `outputTokens`.
    usage
}

/// Parses a 2xx Converse body. `id` and `created` come from the adapter (Bedrock sends neither).
pub fn parse_chat(body: &[u8], id: String, created: u64) -> Result<ChatResponse, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ProviderError::decode(format!("Bedrock Converse response is not JSON ({e}): {}", body_excerpt(body)))
            .with_provider(PROVIDER)
    })?;
    if v.get("output").is_none() {
        // An error body delivered with a success status.
        if let Some(msg) = error_message(&v) {
            let ty = v.get("__type").and_then(Value::as_str).map(short_error_type).unwrap_or("");
            return Err(classify(ty, 200, &msg));
        }
        return Err(ProviderError::decode(format!(
            "Bedrock Converse response has no `output`: {}",
            body_excerpt(body)
        ))
        .with_provider(PROVIDER));
    }
    let content = v.pointer("/output/message/content").and_then(Value::as_array).ok_or_else(|| {
        ProviderError::decode("Bedrock Converse response has no output.message.content")
            .with_provider(PROVIDER)
    })?;

    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks: Vec<Value> = Vec::new();
    let mut tool_calls = Vec::new();
    let mut json_tool = false;
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let name = tu.get("name").and_then(Value::as_str).unwrap_or_default();
            let input = tu.get("input").cloned().unwrap_or_else(|| json!({}));
            let arguments = serde_json::to_string(&input).unwrap_or_default();
            if name == JSON_TOOL_NAME {
                json_tool = true;
                text.get_or_insert_with(String::new).push_str(&arguments);
                continue;
            }
            let id = tu.get("toolUseId").and_then(Value::as_str).unwrap_or_default();
            tool_calls.push(ToolCall::function(id, name, arguments));
        } else if let Some(rc) = block.get("reasoningContent") {
            if let Some(rt) = rc.get("reasoningText") {
                let t = rt.get("text").and_then(Value::as_str).unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(t);
                let mut tb = json!({"type": "thinking", "thinking": t});
                if let Some(sig) = rt.get("signature") {
                    tb["signature"] = sig.clone();
                }
                thinking_blocks.push(tb);
            } else if let Some(data) = rc.get("redactedContent") {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
        // Other block kinds (citations, guardContent, …) carry no text for the OpenAI shape.
    }

    let stop = v.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
    let mut finish = map_stop_reason(stop);
    if json_tool && finish == FinishReason::ToolCalls && tool_calls.is_empty() {
        finish = FinishReason::Stop;
    }
    let mut message = AssistantMessage {
        content: text,
        reasoning_content: reasoning,
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        ..AssistantMessage::default()
    };
    if !thinking_blocks.is_empty() {
        message.extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    let usage = v.get("usage").map(map_usage);
    let mut extra = Extra::new();
    for key in ["metrics", "trace", "additionalModelResponseFields", "performanceConfig"] {
        if let Some(val) = v.get(key) {
            extra.insert(key.into(), val.clone());
        }
    }
    Ok(ChatResponse {
        id,
        object: "chat.completion".into(),
        created,
        model: String::new(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish),
            logprobs: None,
            extra: Extra::new(),
        }],
        usage,
        system_fingerprint: None,
        service_tier: None,
        extra,
    })
}

fn error_message(v: &Value) -> Option<String> {
    ["message", "Message", "errorMessage"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// `ValidationException:http://internal.amazon.com/coral/...` → `ValidationException`;
/// `com.amazon.coral.service#UnrecognizedClientException` → `UnrecognizedClientException`.
fn short_error_type(raw: &str) -> &str {
    let s = raw.split(':').next().unwrap_or(raw);
    s.rsplit('#').next().unwrap_or(s).trim()
}

/// Whether a ValidationException message is about the context window.
fn is_context_window(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    mentions_context_window(message)
        || ["too long", "too many input tokens", "context limit", "model_context_window_exceeded"]
            .iter()
            .any(|p| m.contains(p))
}

/// Classifies a Bedrock error by its type name (header `x-amzn-errortype`, `__type`, or the
/// event-stream `:exception-type`, in either case), the HTTP status and the message.
pub fn classify(error_type: &str, status: u16, message: &str) -> ProviderError {
    let ty = error_type.to_ascii_lowercase();
    let kind = match ty.as_str() {
        "throttlingexception" | "servicequotaexceededexception" => ErrorKind::RateLimited,
        "validationexception" if is_context_window(message) => ErrorKind::ContextWindowExceeded,
        "validationexception" => ErrorKind::BadRequest,
        "accessdeniedexception" => ErrorKind::PermissionDenied,
        "resourcenotfoundexception" => ErrorKind::NotFound,
        "modeltimeoutexception" => ErrorKind::Timeout(TimeoutPhase::Total),
        "serviceunavailableexception" | "modelnotreadyexception" => ErrorKind::Overloaded,
        "internalserverexception" | "modelerrorexception" | "modelstreamerrorexception" => {
            ErrorKind::ServerError
        }
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "missingauthenticationtokenexception"
        | "expiredtokenexception"
        | "invalidclienttokenid"
        | "signaturedoesnotmatch" => ErrorKind::Authentication,
        _ => {
            let m = message.to_ascii_lowercase();
            if status == 403 && (m.contains("signature") || m.contains("security token")) {
                ErrorKind::Authentication
            } else if status == 400 && is_context_window(message) {
                ErrorKind::ContextWindowExceeded
            } else if (200..300).contains(&status) {
                ErrorKind::ServerError
            } else {
                ErrorKind::from_status(status)
            }
        }
    };
    let mut e = ProviderError::new(kind, message).with_provider(PROVIDER);
    if !error_type.is_empty() {
        e = e.with_code(error_type);
    }
    if !(200..300).contains(&status) {
        e = e.with_status(status);
    }
    e
}

/// Classifies a non-2xx Bedrock response.
pub fn error_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> ProviderError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let header_type = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(short_error_type);
    let body_type =
        parsed.as_ref().and_then(|v| v.get("__type")).and_then(Value::as_str).map(short_error_type);
    let error_type = header_type.or(body_type).unwrap_or("");
    let message = parsed
        .as_ref()
        .and_then(error_message)
        .unwrap_or_else(|| if body.is_empty() { format!("HTTP {status}") } else { body_excerpt(body) });
    classify(error_type, status, &message).with_retry_after(parse_retry_after(headers))
}
