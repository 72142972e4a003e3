//! Ollama `/api/chat` and `/api/embed` replies → canonical responses.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tollgate_core::chat::{AssistantMessage, Choice, ToolCall};
use tollgate_core::embedding::{Embedding, EmbeddingResponse, EmbeddingUsage, EmbeddingVector};
use tollgate_core::error::body_excerpt;
use tollgate_core::{ChatResponse, Extra, FinishReason, ProviderError, RawResponse, Usage};

/// A fresh `chatcmpl-<16 hex>` id: a per-process random seed (std's `RandomState`) mixed with a
/// counter, so ids are unique without a random-number crate.
pub(crate) fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("chatcmpl-{:016x}", h.finish())
}

/// The id of the `n`-th tool call of the response `response_id`, when Ollama gave none.
pub(crate) fn tool_call_id(response_id: &str, n: usize) -> String {
    let suffix = response_id.strip_prefix("chatcmpl-").unwrap_or(response_id);
    format!("call_{suffix}_{n}")
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2024-07-22T20:33:28.123648Z`,
/// `2023-08-04T08:52:19.385406455-07:00`); `None` when it is not one.
pub(crate) fn unix_seconds(ts: &str) -> Option<u64> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { ts.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':'
        || b[16] != b':'
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let mut rest = &ts[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 3600 + rest.get(4..6)?.parse::<i64>().ok()? * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs).ok()
}

/// Parses a JSON object, rejecting `{"error": ...}` bodies (Ollama's error shape).
pub(crate) fn parse_object(bytes: &[u8], what: &str) -> Result<Value, ProviderError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ProviderError::decode(format!("Ollama {what} is not JSON ({e}): {}", body_excerpt(bytes)))
    })?;
    if !v.is_object() {
        return Err(ProviderError::decode(format!(
            "Ollama {what} is not a JSON object: {}",
            body_excerpt(bytes)
        )));
    }
    if let Some(err) = v.get("error") {
        let msg = match err {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Err(crate::error::classify_message(None, msg));
    }
    Ok(v)
}

fn count(v: Option<&Value>) -> Option<u64> {
    v?.as_u64()
}

/// `prompt_eval_count` / `eval_count` → usage; `None` when Ollama reported neither.
pub(crate) fn usage(v: &Value) -> Option<Usage> {
    let prompt = count(v.get("prompt_eval_count"));
    let completion = count(v.get("eval_count"));
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(Usage::new(prompt.unwrap_or(0), completion.unwrap_or(0)))
}

/// `done_reason` → OpenAI's finish reason. Ollama says `stop` after tool calls too.
pub(crate) fn finish_reason(done_reason: Option<&str>, had_tool_calls: bool) -> FinishReason {
    match done_reason {
        Some("length") => FinishReason::Length,
        _ if had_tool_calls => FinishReason::ToolCalls,
        None | Some("stop") | Some("") => FinishReason::Stop,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// One Ollama tool call (`{"function": {"name", "arguments": {..}}}`, maybe with an `id`) →
/// name, id and OpenAI's JSON-string arguments.
pub(crate) fn tool_call(call: &Value, fallback_id: String) -> ToolCall {
    let f = call.get("function");
    let name = f.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default();
    let args = match f.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let id = call.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    ToolCall::function(id.unwrap_or(fallback_id), name, args)
}

pub(crate) fn chat_response(resp: &RawResponse, id: &str) -> Result<ChatResponse, ProviderError> {
    let v = parse_object(&resp.body, "chat response")?;
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| ProviderError::decode("Ollama chat response has no `message` object"))?;
    let text = msg.get("content").and_then(Value::as_str).unwrap_or_default().to_owned();
    let thinking = msg.get("thinking").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned);
    let calls: Vec<ToolCall> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| tool_call(c, tool_call_id(id, i)))
        .collect();
    let finish = finish_reason(v.get("done_reason").and_then(Value::as_str), !calls.is_empty());
    let content = if text.is_empty() && !calls.is_empty() { None } else { Some(text) };
    let message = AssistantMessage {
        content,
        reasoning_content: thinking,
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..AssistantMessage::default()
    };
    Ok(ChatResponse {
        id: id.to_owned(),
        object: "chat.completion".into(),
        created: v.get("created_at").and_then(Value::as_str).and_then(unix_seconds).unwrap_or(0),
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish),
            logprobs: None,
            extra: Extra::new(),
        }],
        usage: usage(&v),
        system_fingerprint: None,
        service_tier: None,
        extra: Extra::new(),
    })
}

pub(crate) fn embedding_response(resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
    let v = parse_object(&resp.body, "embed response")?;
    let list = v
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::decode("Ollama embed response has no `embeddings` array"))?;
    let data = list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let floats = e
                .as_array()
                .ok_or_else(|| ProviderError::decode("an Ollama embedding is not an array"))?
                .iter()
                .map(|x| {
                    x.as_f64()
                        .map(|f| f as f32)
                        .ok_or_else(|| ProviderError::decode("non-numeric embedding value"))
                })
                .collect::<Result<Vec<f32>, _>>()?;
            Ok(Embedding {
                object: "embedding".into(),
                index: i as u32,
                embedding: EmbeddingVector::Float(floats),
                extra: Extra::new(),
            })
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    let usage = count(v.get("prompt_eval_count")).map(|n| EmbeddingUsage {
        prompt_tokens: n,
        total_tokens: n,
        extra: Extra::new(),
    });
    Ok(EmbeddingResponse {
        object: "list".into(),
        data,
        model: v.get("model").and_then(Value::as_str).unwrap_or_default().to_owned(),
        usage,
        extra: Extra::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2024-07-22T20:33:28.123648Z"), Some(1_721_680_408));
        // 08:52:19 at UTC-7 is 15:52:19 UTC.
        assert_eq!(unix_seconds("2023-08-04T08:52:19.385406455-07:00"), Some(1_691_164_339));
        assert_eq!(unix_seconds("2024-02-29T12:00:00+01:00"), Some(1_709_204_400));
        for bad in ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z"] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_unique_and_shaped() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(a.starts_with("chatcmpl-") && a.len() == "chatcmpl-".len() + 16);
        assert_eq!(tool_call_id("chatcmpl-00ff", 2), "call_00ff_2");
    }
}
