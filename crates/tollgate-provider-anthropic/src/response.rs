//! Anthropic Messages response → canonical chat response, and the pieces the stream decoder
//! shares with it (stop reasons, usage).

use serde_json::Value;
use tollgate_core::chat::{AssistantMessage, Choice, PromptTokensDetails, ToolCall};
use tollgate_core::error::body_excerpt;
use tollgate_core::{ChatResponse, Extra, FinishReason, ProviderError, Usage};

use crate::error::error_from_detail;
use crate::request::JSON_TOOL_NAME;
use crate::wire::{CacheCreation, ContentBlock, ErrorBody, KnownBlock, MessagesResponse, WireUsage};

/// Maps an Anthropic `stop_reason` to an OpenAI finish reason. `tool_use` is `tool_calls` only
/// when real tool calls were returned (a JSON-mode answer is a plain `stop`). `pause_turn`
/// (a server-tool loop paused; send the turn back to continue) has no OpenAI equivalent and is
/// kept verbatim, as are reasons this version does not know.
pub fn map_stop_reason(reason: &str, has_tool_calls: bool) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" if has_tool_calls => FinishReason::ToolCalls,
        "tool_use" => FinishReason::Stop,
        "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Anthropic usage → canonical usage. Anthropic's `input_tokens` excludes cache reads and
/// writes; the canonical `prompt_tokens` includes both (core's invariant).
pub fn usage_from_wire(u: &WireUsage) -> Usage {
    let input = u.input_tokens.unwrap_or(0);
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_creation_input_tokens.unwrap_or(0);
    let mut usage = Usage::new(input + read + write, u.output_tokens.unwrap_or(0));
    let one_hour = u.cache_creation.as_ref().and_then(|c| c.ephemeral_1h_input_tokens);
    if u.cache_read_input_tokens.is_some() || u.cache_creation_input_tokens.is_some() || one_hour.is_some() {
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(read),
            cache_creation_tokens: Some(write),
            cache_creation_1h_tokens: one_hour,
            ..PromptTokensDetails::default()
        });
    }
    usage
}

/// Canonical usage → Anthropic usage (for the proxy's `/v1/messages` endpoint): the inverse of
/// [`usage_from_wire`]. Cache fields are written when the usage has prompt-token details.
pub fn usage_to_wire(u: &Usage) -> WireUsage {
    let read = u.cached_tokens();
    let write = u.cache_creation_tokens();
    let details = u.prompt_tokens_details.as_ref();
    let one_hour = details.and_then(|d| d.cache_creation_1h_tokens);
    WireUsage {
        input_tokens: Some(u.prompt_tokens.saturating_sub(read + write)),
        output_tokens: Some(u.completion_tokens),
        cache_creation_input_tokens: details.map(|_| write),
        cache_read_input_tokens: details.map(|_| read),
        cache_creation: one_hour.map(|h| CacheCreation {
            ephemeral_5m_input_tokens: Some(write.saturating_sub(h)),
            ephemeral_1h_input_tokens: Some(h),
            extra: Extra::new(),
        }),
        extra: Extra::new(),
    }
}

/// Seconds since the Unix epoch, for `created` (Anthropic responses carry no timestamp).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Parses a 2xx Messages API body (which may still be an error envelope) into a chat response.
pub fn parse_chat_response(body: &[u8], created: u64) -> Result<ChatResponse, ProviderError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ProviderError::decode(format!("Anthropic response is not JSON ({e}): {}", body_excerpt(body)))
            .with_provider(crate::PROVIDER)
    })?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(match serde_json::from_value::<ErrorBody>(value) {
            Ok(b) => error_from_detail(&b.error, None),
            Err(e) => ProviderError::decode(format!("malformed Anthropic error body: {e}"))
                .with_provider(crate::PROVIDER),
        });
    }
    let msg: MessagesResponse = serde_json::from_value(value).map_err(|e| {
        ProviderError::decode(format!("unexpected Anthropic response shape: {e}"))
            .with_provider(crate::PROVIDER)
    })?;
    Ok(message_to_chat_response(&msg, created))
}

/// Translates a parsed Messages API response.
///
/// Text blocks are concatenated into `content`; `tool_use` blocks become `tool_calls` (arguments
/// = the input as a JSON string), except the JSON-mode tool ([`JSON_TOOL_NAME`]) whose input
/// becomes `content`; thinking text becomes `reasoning_content` and every thinking /
/// redacted-thinking block is kept verbatim (with its signature) in the message's
/// `thinking_blocks`, which the request side sends back on the next turn. Blocks of other types
/// (server tool results, …) are kept verbatim in `provider_content_blocks`.
///
/// Tool inputs are re-serialised from parsed JSON, so their object keys come out sorted (the
/// workspace's serde_json does not preserve order); the streamed path forwards Anthropic's
/// `partial_json` text verbatim.
pub fn message_to_chat_response(msg: &MessagesResponse, created: u64) -> ChatResponse {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut thinking_blocks: Vec<Value> = Vec::new();
    let mut other_blocks: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<ToolCall> = Vec::new();
    for block in &msg.content {
        match block {
            ContentBlock::Known(KnownBlock::Text { text: t, .. }) => {
                text.get_or_insert_with(String::new).push_str(t);
            }
            ContentBlock::Known(KnownBlock::ToolUse { name, input, .. }) if name == JSON_TOOL_NAME => {
                text.get_or_insert_with(String::new).push_str(&input.to_string());
            }
            ContentBlock::Known(KnownBlock::ToolUse { id, name, input, .. }) => {
                tool_calls.push(ToolCall::function(id.clone(), name.clone(), input.to_string()));
            }
            ContentBlock::Known(b @ KnownBlock::Thinking { thinking, .. }) => {
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                thinking_blocks.extend(serde_json::to_value(b).ok());
            }
            ContentBlock::Known(b @ KnownBlock::RedactedThinking { .. }) => {
                thinking_blocks.extend(serde_json::to_value(b).ok());
            }
            other => other_blocks.extend(serde_json::to_value(other).ok()),
        }
    }
    let has_tool_calls = !tool_calls.is_empty();
    if text.is_none() && !has_tool_calls {
        text = Some(String::new());
    }
    let mut extra = Extra::new();
    if !thinking_blocks.is_empty() {
        extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    if !other_blocks.is_empty() {
        extra.insert("provider_content_blocks".into(), Value::Array(other_blocks));
    }
    let message = AssistantMessage {
        content: text,
        tool_calls: has_tool_calls.then_some(tool_calls),
        reasoning_content: reasoning,
        extra,
        ..AssistantMessage::default()
    };
    let usage = usage_from_wire(&msg.usage);
    ChatResponse {
        id: msg.id.clone(),
        object: "chat.completion".into(),
        created,
        model: msg.model.clone(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: msg.stop_reason.as_deref().map(|r| map_stop_reason(r, has_tool_calls)),
            logprobs: None,
            extra: Extra::new(),
        }],
        usage: Some(usage),
        system_fingerprint: None,
        service_tier: None,
        extra: Extra::new(),
    }
}
