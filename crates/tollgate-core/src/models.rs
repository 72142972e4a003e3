//! The model list (`GET /v1/models`), OpenAI-shaped.

use serde::{Deserialize, Serialize};

use crate::Extra;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    #[serde(default = "list_object")]
    pub object: String,
    pub data: Vec<ModelObject>,
}

fn list_object() -> String {
    "list".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelObject {
    pub id: String,
    #[serde(default = "model_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub owned_by: String,
    #[serde(flatten)]
    pub extra: Extra,
}

fn model_object() -> String {
    "model".into()
}

impl ModelObject {
    pub fn new(id: impl Into<String>, owned_by: impl Into<String>, created: u64) -> Self {
        Self {
            id: id.into(),
            object: model_object(),
            created,
            owned_by: owned_by.into(),
            extra: Extra::new(),
        }
    }
}
