//! Embeddings (`POST /v1/embeddings`), OpenAI-shaped.

use serde::{Deserialize, Serialize};

use crate::Extra;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    /// `float` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl EmbeddingRequest {
    pub fn new(model: impl Into<String>, input: EmbeddingInput) -> Self {
        Self {
            model: model.into(),
            input,
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: Extra::new(),
        }
    }
}

/// The input forms OpenAI accepts: a string, strings, a token array, or token arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// The inputs as strings, for providers that only embed text; `None` for token input.
    pub fn as_texts(&self) -> Option<Vec<&str>> {
        match self {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(v) => Some(v.iter().map(String::as_str).collect()),
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    #[serde(default = "list_object")]
    pub object: String,
    pub data: Vec<Embedding>,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingUsage>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn list_object() -> String {
    "list".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    #[serde(default = "embedding_object")]
    pub object: String,
    pub index: u32,
    pub embedding: EmbeddingVector,
    #[serde(flatten)]
    pub extra: Extra,
}

fn embedding_object() -> String {
    "embedding".into()
}

/// Floats (`encoding_format: float`) or a base64 string of little-endian f32s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_forms_parse() {
        for (v, want_texts) in [
            (json!("a"), Some(1)),
            (json!(["a", "b"]), Some(2)),
            (json!([1, 2, 3]), None),
            (json!([[1], [2, 3]]), None),
        ] {
            let i: EmbeddingInput = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(i.as_texts().map(|t| t.len()), want_texts);
            assert_eq!(serde_json::to_value(&i).unwrap(), v);
        }
    }

    #[test]
    fn response_round_trips() {
        let body = json!({"object": "list", "data": [
            {"object": "embedding", "index": 0, "embedding": [0.25, -1.5]},
            {"object": "embedding", "index": 1, "embedding": "AACAPg=="}
        ], "model": "text-embedding-3-small", "usage": {"prompt_tokens": 4, "total_tokens": 4}});
        let r: EmbeddingResponse = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), body);
    }
}
