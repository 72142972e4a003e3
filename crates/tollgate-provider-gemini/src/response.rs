//! Gemini `GenerateContentResponse` → canonical [`ChatResponse`] (and the pieces the stream
//! decoder shares: usage, finish reasons, tool-call ids, logprobs).
//!
//! * text parts are concatenated into `content`; parts with `thought: true` into
//!   `reasoning_content`;
//! * `functionCall` parts become `tool_calls` with the JSON-encoded `args`; the id is Gemini's
//!   `functionCall.id` when it sends one, else a deterministic `call_<16 hex>`; a
//!   `thoughtSignature` on the part is appended as `<id>__thought__<signature>` so it survives an
//!   OpenAI client's round trip and is sent back (Gemini 3 requires it on function-calling turns);
//! * finish reasons: `STOP` → `stop` (`tool_calls` when the candidate called functions),
//!   `MAX_TOKENS` → `length`, `SAFETY`/`RECITATION`/`BLOCKLIST`/`PROHIBITED_CONTENT`/`SPII`/
//!   `IMAGE_SAFETY`/`IMAGE_PROHIBITED_CONTENT`/`IMAGE_RECITATION` → `content_filter`, anything
//!   else (`LANGUAGE`, `OTHER`, `MALFORMED_FUNCTION_CALL`, …) → `stop`;
//! * no candidates and `promptFeedback.blockReason` → a `ContentFiltered` error;
//! * `usageMetadata` → [`Usage`] in core's invariant: Google documents that `promptTokenCount`
//!   already includes `cachedContentTokenCount`, so `prompt_tokens = promptTokenCount +
//!   toolUsePromptTokenCount` and `cached_tokens = cachedContentTokenCount`;
//!   `completion_tokens = candidatesTokenCount + thoughtsTokenCount` with
//!   `reasoning_tokens = thoughtsTokenCount`; per-modality prompt counts fill
//!   `text/image/audio_tokens`;
//! * `logprobsResult` → OpenAI `logprobs.content[]`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_core::chat::{AssistantMessage, Choice, CompletionTokensDetails, PromptTokensDetails, ToolCall};
use tollgate_core::{ChatResponse, ErrorKind, Extra, FinishReason, ProviderError, Usage};

use crate::request::THOUGHT_SIGNATURE_SEPARATOR;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub create_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub logprobs_result: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Content {
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
    #[serde(default)]
    pub thought_signature: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
    #[serde(default)]
    pub block_reason_message: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub cached_content_token_count: u64,
    #[serde(default)]
    pub thoughts_token_count: u64,
    #[serde(default)]
    pub tool_use_prompt_token_count: u64,
    #[serde(default)]
    pub prompt_tokens_details: Vec<ModalityTokenCount>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModalityTokenCount {
    #[serde(default)]
    pub modality: String,
    #[serde(default)]
    pub token_count: u64,
}

/// Maps `usageMetadata` to core's usage invariant (see the module docs).
pub(crate) fn map_usage(u: &UsageMetadata) -> Usage {
    let prompt = u.prompt_token_count + u.tool_use_prompt_token_count;
    let completion = u.candidates_token_count + u.thoughts_token_count;
    let mut usage = Usage::new(prompt, completion);
    let modality = |name: &str| {
        let n: u64 =
            u.prompt_tokens_details.iter().filter(|d| d.modality == name).map(|d| d.token_count).sum();
        (n > 0).then_some(n)
    };
    let details = PromptTokensDetails {
        cached_tokens: Some(u.cached_content_token_count),
        text_tokens: modality("TEXT"),
        image_tokens: modality("IMAGE"),
        audio_tokens: modality("AUDIO"),
        ..PromptTokensDetails::default()
    };
    usage.prompt_tokens_details = Some(details);
    if u.thoughts_token_count > 0 {
        usage.completion_tokens_details = Some(CompletionTokensDetails {
            reasoning_tokens: Some(u.thoughts_token_count),
            ..CompletionTokensDetails::default()
        });
    }
    usage
}

/// Gemini `finishReason` → OpenAI finish reason.
pub fn map_finish_reason(reason: &str, called_functions: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ if called_functions => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The canonical tool-call id for a Gemini function call (see the module docs).
pub(crate) fn tool_call_id(response_id: &str, candidate: u32, call: u32, part: &Part) -> String {
    let Some(fc) = &part.function_call else { return String::new() };
    let mut id = match fc.id.as_deref().filter(|i| !i.is_empty()) {
        Some(i) => i.to_owned(),
        None => {
            let mut h = DefaultHasher::new();
            (response_id, candidate, call, fc.name.as_str()).hash(&mut h);
            format!("call_{:016x}", h.finish())
        }
    };
    if let Some(sig) = part.thought_signature.as_deref().filter(|s| !s.is_empty()) {
        id.push_str(THOUGHT_SIGNATURE_SEPARATOR);
        id.push_str(sig);
    }
    id
}

pub(crate) fn args_string(fc: &FunctionCall) -> String {
    match &fc.args {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// `logprobsResult` → OpenAI `{"content": [{"token", "logprob", "top_logprobs": [...]}]}`.
pub(crate) fn map_logprobs(lp: &Value) -> Option<Value> {
    let chosen = lp.get("chosenCandidates")?.as_array()?;
    let top = lp.get("topCandidates").and_then(Value::as_array);
    let entry = |c: &Value| {
        json!({
            "token": c.get("token").and_then(Value::as_str).unwrap_or(""),
            "logprob": c.get("logProbability").and_then(Value::as_f64).unwrap_or(0.0),
            "bytes": Value::Null,
        })
    };
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = entry(c);
            let tops: Vec<Value> = top
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(entry).collect())
                .unwrap_or_default();
            e["top_logprobs"] = Value::Array(tops);
            e
        })
        .collect();
    Some(json!({"content": content}))
}

/// A blocked prompt (no candidates, `promptFeedback.blockReason`) as a typed error.
pub(crate) fn blocked_prompt_error(provider: &str, r: &GenerateContentResponse) -> Option<ProviderError> {
    if !r.candidates.is_empty() {
        return None;
    }
    let fb = r.prompt_feedback.as_ref()?;
    let reason = fb.block_reason.as_deref()?;
    let message = match &fb.block_reason_message {
        Some(m) => format!("the prompt was blocked ({reason}): {m}"),
        None => format!("the prompt was blocked ({reason})"),
    };
    Some(ProviderError::new(ErrorKind::ContentFiltered, message).with_provider(provider).with_code(reason))
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An id for responses that carry no `responseId`.
pub(crate) fn fallback_id() -> String {
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut h = DefaultHasher::new();
    (n, nanos).hash(&mut h);
    format!("chatcmpl-{:016x}{:08x}", h.finish(), n as u32)
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Parses an RFC 3339 UTC timestamp (`2025-05-01T12:34:56.789Z`, Vertex's `createTime`).
pub(crate) fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !s.ends_with('Z') || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec).ok()
}

/// Parses a whole (non-streamed) response body.
pub(crate) fn parse_chat_response(provider: &str, body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ProviderError::decode(format!(
            "{provider} response is not JSON ({e}): {}",
            tollgate_core::error::body_excerpt(body)
        ))
        .with_provider(provider)
    })?;
    if let Some(e) = crate::error::from_value(provider, None, &http::HeaderMap::new(), &value) {
        return Err(e);
    }
    let r: GenerateContentResponse = serde_json::from_value(value).map_err(|e| {
        ProviderError::decode(format!("{provider} response has an unexpected shape: {e}"))
            .with_provider(provider)
    })?;
    if let Some(e) = blocked_prompt_error(provider, &r) {
        return Err(e);
    }
    if r.candidates.is_empty() {
        return Err(
            ProviderError::decode(format!("{provider} response has no candidates")).with_provider(provider)
        );
    }
    let id = r.response_id.clone().filter(|i| !i.is_empty()).unwrap_or_else(fallback_id);
    let mut choices = Vec::with_capacity(r.candidates.len());
    for (pos, c) in r.candidates.iter().enumerate() {
        let index = c.index.unwrap_or(pos as u32);
        let mut text: Option<String> = None;
        let mut reasoning: Option<String> = None;
        let mut calls = Vec::new();
        for part in c.content.iter().flat_map(|c| &c.parts) {
            if let Some(fc) = &part.function_call {
                let call_id = tool_call_id(&id, index, calls.len() as u32, part);
                calls.push(ToolCall::function(call_id, fc.name.clone(), args_string(fc)));
            } else if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                let slot = if part.thought == Some(true) { &mut reasoning } else { &mut text };
                slot.get_or_insert_with(String::new).push_str(t);
            }
        }
        let finish = c.finish_reason.as_deref().map(|f| map_finish_reason(f, !calls.is_empty()));
        choices.push(Choice {
            index,
            message: AssistantMessage {
                content: text,
                reasoning_content: reasoning,
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..AssistantMessage::default()
            },
            finish_reason: finish,
            logprobs: c.logprobs_result.as_ref().and_then(map_logprobs),
            extra: Extra::new(),
        });
    }
    Ok(ChatResponse {
        id,
        object: "chat.completion".into(),
        created: r.create_time.as_deref().and_then(parse_rfc3339_utc).unwrap_or_else(now_unix),
        model: r.model_version.clone().unwrap_or_default(),
        choices,
        usage: r.usage_metadata.as_ref().map(map_usage),
        system_fingerprint: None,
        service_tier: None,
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_utc("2024-02-29T12:00:00.123456Z"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339_utc("2024-02-29 12:00:00"), None);
        assert_eq!(parse_rfc3339_utc("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn usage_counts_cached_inside_prompt_and_thoughts_inside_completion() {
        let u: UsageMetadata = serde_json::from_value(json!({
            "promptTokenCount": 1000, "cachedContentTokenCount": 800, "candidatesTokenCount": 50,
            "thoughtsTokenCount": 200, "toolUsePromptTokenCount": 10, "totalTokenCount": 1260,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 900}, {"modality": "IMAGE", "tokenCount": 100}]
        }))
        .unwrap();
        let usage = map_usage(&u);
        assert_eq!(usage.prompt_tokens, 1010);
        assert_eq!(usage.cached_tokens(), 800);
        assert_eq!(usage.completion_tokens, 250);
        assert_eq!(usage.reasoning_tokens(), 200);
        assert_eq!(usage.total_tokens, 1260);
        assert_eq!(usage.prompt_tokens_details.unwrap().image_tokens, Some(100));
    }
}
