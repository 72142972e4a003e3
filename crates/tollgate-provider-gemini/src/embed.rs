//! Embeddings, OpenAI-shaped.
//!
//! * AI Studio: `POST …/models/{m}:batchEmbedContents` with
//!   `{"requests": [{"model": "models/{m}", "content": {"parts": [{"text"}]}, "outputDimensionality"?, "taskType"?, "title"?}]}`
//!   → `{"embeddings": [{"values": [...]}]}`. The API reports no token counts, so `usage` is
//!   absent.
//! * Vertex AI: `POST …/publishers/google/models/{m}:predict` with
//!   `{"instances": [{"content", "task_type"?, "title"?}], "parameters": {"outputDimensionality"?}}`
//!   → `{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count"}}}]}`;
//!   usage is the sum of `token_count`.
//!
//! `dimensions` → `outputDimensionality`; request extras `task_type`/`taskType` and `title` are
//! passed on; `encoding_format: "base64"` returns little-endian f32 bytes in base64 as OpenAI does.
//! Token-array input is refused (Gemini only embeds text).

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tollgate_core::embedding::{
    Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};
use tollgate_core::{Extra, ProviderError, UpstreamConfig};

use crate::endpoint::{Flavor, bare_model};

pub(crate) fn body(
    flavor: Flavor,
    req: &EmbeddingRequest,
    cfg: &UpstreamConfig,
) -> Result<Value, ProviderError> {
    let provider = flavor.provider();
    let Some(texts) = req.input.as_texts() else {
        return Err(ProviderError::bad_request(format!(
            "{provider} embeddings take text input, not token arrays"
        ))
        .with_provider(provider)
        .with_param("input"));
    };
    let task_type = req.extra.get("task_type").or_else(|| req.extra.get("taskType"));
    let title = req.extra.get("title");
    let model = bare_model(&cfg.model);
    let mut body = match flavor {
        Flavor::AiStudio => {
            let requests: Vec<Value> = texts
                .iter()
                .map(|t| {
                    let mut r =
                        json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
                    if let Some(d) = req.dimensions {
                        r["outputDimensionality"] = json!(d);
                    }
                    if let Some(tt) = task_type {
                        r["taskType"] = tt.clone();
                    }
                    if let Some(t) = title {
                        r["title"] = t.clone();
                    }
                    r
                })
                .collect();
            json!({"requests": requests})
        }
        Flavor::Vertex => {
            let instances: Vec<Value> = texts
                .iter()
                .map(|t| {
                    let mut i = json!({"content": t});
                    if let Some(tt) = task_type {
                        i["task_type"] = tt.clone();
                    }
                    if let Some(t) = title {
                        i["title"] = t.clone();
                    }
                    i
                })
                .collect();
            let mut b = json!({"instances": instances});
            if let Some(d) = req.dimensions {
                b["parameters"] = json!({"outputDimensionality": d});
            }
            b
        }
    };
    if let Value::Object(m) = &mut body {
        for (k, v) in &cfg.extra_body {
            m.insert(k.clone(), v.clone());
        }
    }
    Ok(body)
}

pub(crate) fn method(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::AiStudio => "batchEmbedContents",
        Flavor::Vertex => "predict",
    }
}

/// Parses an embeddings answer. `base64` re-encodes the floats as OpenAI's base64 format.
pub(crate) fn parse(
    flavor: Flavor,
    body: &[u8],
    model: &str,
    base64: bool,
) -> Result<EmbeddingResponse, ProviderError> {
    let provider = flavor.provider();
    let decode = |m: String| ProviderError::decode(m).with_provider(provider);
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        decode(format!(
            "{provider} embeddings response is not JSON ({e}): {}",
            tollgate_core::error::body_excerpt(body)
        ))
    })?;
    if let Some(e) = crate::error::from_value(provider, None, &http::HeaderMap::new(), &v) {
        return Err(e);
    }
    let items = match flavor {
        Flavor::AiStudio => v.get("embeddings"),
        Flavor::Vertex => v.get("predictions"),
    }
    .and_then(Value::as_array)
    .ok_or_else(|| {
        decode(format!("no `{}` array", if flavor == Flavor::Vertex { "predictions" } else { "embeddings" }))
    })?;
    let vectors_at = |item: &'_ Value| -> Option<Value> {
        match flavor {
            Flavor::AiStudio => item.get("values").cloned(),
            Flavor::Vertex => item.get("embeddings").and_then(|e| e.get("values")).cloned(),
        }
    };
    let mut data = Vec::with_capacity(items.len());
    let mut tokens: u64 = 0;
    for (i, item) in items.iter().enumerate() {
        let values = vectors_at(item);
        let values = values
            .as_ref()
            .and_then(Value::as_array)
            .ok_or_else(|| decode(format!("embedding {i} has no values")))?;
        let mut floats = Vec::with_capacity(values.len());
        for x in values {
            let f = x.as_f64().ok_or_else(|| decode(format!("embedding {i} has a non-number value")))?;
            floats.push(f as f32);
        }
        if let Some(n) = item
            .get("embeddings")
            .and_then(|e| e.get("statistics"))
            .and_then(|s| s.get("token_count"))
            .and_then(Value::as_f64)
        {
            tokens += n as u64;
        }
        let embedding = if base64 {
            let bytes: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
            EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            EmbeddingVector::Float(floats)
        };
        data.push(Embedding { object: "embedding".into(), index: i as u32, embedding, extra: Map::new() });
    }
    let usage = (flavor == Flavor::Vertex).then(|| EmbeddingUsage {
        prompt_tokens: tokens,
        total_tokens: tokens,
        extra: Extra::new(),
    });
    Ok(EmbeddingResponse { object: "list".into(), data, model: model.to_owned(), usage, extra: Extra::new() })
}
