//! Cohere v2 chat and embed responses → canonical responses.

use serde_json::Value;
use tollgate_core::chat::{AssistantMessage, Choice, ToolCall};
use tollgate_core::embedding::{Embedding, EmbeddingResponse, EmbeddingUsage, EmbeddingVector};
use tollgate_core::error::body_excerpt;
use tollgate_core::{ChatResponse, ErrorKind, Extra, FinishReason, ProviderError, TimeoutPhase, Usage};

/// Parses a 2xx body as JSON, rejecting error envelopes sent with a success status.
fn parse_body(body: &[u8]) -> Result<Value, ProviderError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ProviderError::decode(format!("Cohere response is not JSON ({e}): {}", body_excerpt(body)))
    })?;
    if !v.is_object() {
        return Err(ProviderError::decode(format!(
            "Cohere response is not a JSON object: {}",
            body_excerpt(body)
        )));
    }
    if let Some(msg) = error_message(&v) {
        return Err(crate::error::classify_message(None, msg.to_owned()));
    }
    Ok(v)
}

/// `{"message": "..."}` without a response's own fields is Cohere's error shape.
pub(crate) fn error_message(v: &Value) -> Option<&str> {
    let msg = v.get("message")?.as_str()?;
    let looks_like_response = v.get("finish_reason").is_some() || v.get("embeddings").is_some();
    (!looks_like_response).then_some(msg)
}

/// Cohere's `finish_reason` → OpenAI's. `ERROR` and `TIMEOUT` are failures, not finishes.
pub(crate) fn finish_reason(reason: &str, error: Option<&str>) -> Result<FinishReason, ProviderError> {
    match reason {
        "COMPLETE" | "STOP_SEQUENCE" => Ok(FinishReason::Stop),
        "MAX_TOKENS" => Ok(FinishReason::Length),
        "TOOL_CALL" => Ok(FinishReason::ToolCalls),
        "ERROR" => Err(ProviderError::new(
            ErrorKind::ServerError,
            error.unwrap_or("Cohere stopped generating with finish_reason ERROR").to_owned(),
        )
        .with_code("cohere_generation_error")),
        "TIMEOUT" => Err(ProviderError::new(
            ErrorKind::Timeout(TimeoutPhase::Total),
            error.unwrap_or("Cohere stopped generating with finish_reason TIMEOUT").to_owned(),
        )),
        other => Ok(FinishReason::Other(other.to_ascii_lowercase())),
    }
}

fn count(v: Option<&Value>) -> Option<u64> {
    let n = v?.as_f64()?;
    (n.is_finite() && n >= 0.0).then(|| n.round() as u64)
}

/// Cohere's `usage` (or embed `meta`): billed units first, raw token counts as the fallback.
pub(crate) fn usage(v: &Value) -> Option<Usage> {
    let billed = v.get("billed_units");
    let tokens = v.get("tokens");
    let pick = |field: &str| {
        count(billed.and_then(|b| b.get(field))).or_else(|| count(tokens.and_then(|t| t.get(field))))
    };
    let input = pick("input_tokens");
    let output = pick("output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage::new(input.unwrap_or(0), output.unwrap_or(0)))
}

/// A tool call's `arguments`: Cohere sends a JSON string; an object is re-encoded defensively.
pub(crate) fn arguments(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

fn push(slot: &mut Option<String>, piece: &str) {
    if piece.is_empty() {
        return;
    }
    match slot {
        Some(s) => {
            s.push('\n');
            s.push_str(piece);
        }
        None => *slot = Some(piece.to_owned()),
    }
}

pub(crate) fn chat_response(resp: &tollgate_core::RawResponse) -> Result<ChatResponse, ProviderError> {
    let v = parse_body(&resp.body)?;
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| ProviderError::decode("Cohere chat response has no `message` object"))?;
    let id = v.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();

    let mut text = String::new();
    let mut reasoning: Option<String> = None;
    for block in msg.get("content").and_then(Value::as_array).into_iter().flatten() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("thinking") => {
                push(&mut reasoning, block.get("thinking").and_then(Value::as_str).unwrap_or_default())
            }
            _ => {}
        }
    }
    if let Some(plan) = msg.get("tool_plan").and_then(Value::as_str) {
        push(&mut reasoning, plan);
    }

    let mut calls = Vec::new();
    for c in msg.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let f = c.get("function");
        calls.push(ToolCall::function(
            c.get("id").and_then(Value::as_str).unwrap_or_default(),
            f.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default(),
            arguments(f.and_then(|f| f.get("arguments"))),
        ));
    }

    let error_text = v.get("error").and_then(Value::as_str);
    let finish = match v.get("finish_reason").and_then(Value::as_str) {
        Some(r) => Some(finish_reason(r, error_text)?),
        None => None,
    };

    let content = if text.is_empty() && !calls.is_empty() { None } else { Some(text) };
    let message = AssistantMessage {
        content,
        reasoning_content: reasoning,
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..AssistantMessage::default()
    };
    Ok(ChatResponse {
        id,
        object: "chat.completion".into(),
        created: 0,
        model: String::new(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish,
            logprobs: None,
            extra: Extra::new(),
        }],
        usage: v.get("usage").and_then(usage),
        system_fingerprint: None,
        service_tier: None,
        extra: Extra::new(),
    })
}

fn vector(v: &Value) -> Result<Vec<f32>, ProviderError> {
    let arr = v.as_array().ok_or_else(|| ProviderError::decode("a Cohere embedding is not an array"))?;
    arr.iter()
        .map(|x| {
            x.as_f64().map(|f| f as f32).ok_or_else(|| ProviderError::decode("non-numeric embedding value"))
        })
        .collect()
}

pub(crate) fn embedding_response(
    resp: &tollgate_core::RawResponse,
) -> Result<EmbeddingResponse, ProviderError> {
    let v = parse_body(&resp.body)?;
    // `embeddings_by_type`: {"float": [[...]]}; legacy `embeddings_floats`: [[...]].
    let list = match v.get("embeddings") {
        Some(Value::Object(by_type)) => by_type.get("float").and_then(Value::as_array).ok_or_else(|| {
            ProviderError::decode(
                "Cohere embed response has no `float` embeddings (embedding_types must include float)",
            )
        })?,
        Some(Value::Array(a)) => a,
        _ => return Err(ProviderError::decode("Cohere embed response has no `embeddings`")),
    };
    let data = list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(Embedding {
                object: "embedding".into(),
                index: i as u32,
                embedding: EmbeddingVector::Float(vector(e)?),
                extra: Extra::new(),
            })
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    let usage = v
        .get("meta")
        .and_then(|m| m.get("billed_units"))
        .and_then(|b| count(b.get("input_tokens")))
        .map(|n| EmbeddingUsage { prompt_tokens: n, total_tokens: n, extra: Extra::new() });
    Ok(EmbeddingResponse { object: "list".into(), data, model: String::new(), usage, extra: Extra::new() })
}
