//! OpenAI-compatible vendors as data: one [`VendorRow`] per vendor (generated from
//! `data/openai_compatible_providers.json`), served by one generic [`VendorAdapter`].

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};
use tollgate_core::adapter::join_url;
use tollgate_core::chat::{ChatChunk, ChatRequest, ChatResponse};
use tollgate_core::completion::{TextCompletionRequest, TextCompletionResponse};
use tollgate_core::embedding::{EmbeddingRequest, EmbeddingResponse};
use tollgate_core::{Adapter, CredentialEnv, ProviderError, RawResponse, StreamDecoder, UpstreamConfig};

use crate::vendors_generated::VENDORS;
use crate::wire::{
    self, DoneRule, JsonObject, SseJsonDecoder, bad_request, insert_bearer, merge_extra_body, non_empty,
    post_json, request_object, set_stream_options,
};

/// How a vendor authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VendorAuth {
    /// `Authorization: Bearer <key>` when a key is configured.
    Bearer,
    /// No key is sent.
    None,
    /// Another scheme, as the data describes it. The adapter sends a bearer key when one is
    /// configured, which is what these vendors accept from an OpenAI client.
    Other(&'static str),
}

/// One OpenAI-compatible vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorRow {
    /// The provider prefix in model strings (`groq` in `groq/llama-3.3-70b-versatile`).
    pub name: &'static str,
    /// The default API base (the path `/chat/completions` hangs off); `None` when the user must
    /// give one.
    pub base_url: Option<&'static str>,
    /// Environment variables for the API key, in lookup order.
    pub api_key_env: &'static [&'static str],
    /// Environment variables that override the base URL, in lookup order.
    pub api_base_env: &'static [&'static str],
    pub auth: VendorAuth,
    /// OpenAI parameter → the name sent to the vendor; a dotted target (`metadata.x`) is nested.
    pub param_renames: &'static [(&'static str, &'static str)],
    /// OpenAI parameters the vendor does not accept for any model.
    pub unsupported_params: &'static [&'static str],
    /// One sentence about quirks, or empty.
    pub notes: &'static str,
}

/// The vendor row for a provider prefix.
pub fn vendor(name: &str) -> Option<&'static VendorRow> {
    VENDORS.binary_search_by(|row| row.name.cmp(name)).ok().map(|i| &VENDORS[i])
}

/// The adapter for any [`VendorRow`].
#[derive(Debug, Clone, Copy)]
pub struct VendorAdapter {
    row: &'static VendorRow,
}

impl VendorAdapter {
    pub fn new(row: &'static VendorRow) -> Self {
        VendorAdapter { row }
    }

    /// The adapter for a vendor by name.
    pub fn named(name: &str) -> Option<Self> {
        vendor(name).map(Self::new)
    }

    pub fn row(&self) -> &'static VendorRow {
        self.row
    }

    fn base<'a>(&self, cfg: &'a UpstreamConfig) -> Result<&'a str, ProviderError> {
        if let Some(b) = cfg.api_base.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            return Ok(b);
        }
        if let Some(b) = self.row.base_url {
            return Ok(b);
        }
        let set = if self.row.api_base_env.is_empty() {
            "pass api_base".to_owned()
        } else {
            format!("set {} or pass api_base", self.row.api_base_env.join(" or "))
        };
        let mut message = format!("{} has no default API base: {set}", self.row.name);
        if !self.row.notes.is_empty() {
            message.push_str(" (");
            message.push_str(self.row.notes);
            message.push(')');
        }
        Err(bad_request(self.row.name, message).with_param("api_base"))
    }

    fn post(
        &self,
        path: &str,
        cfg: &UpstreamConfig,
        body: &JsonObject,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let url = join_url(self.base(cfg)?, path);
        let mut headers = HeaderMap::new();
        if self.row.auth != VendorAuth::None
            && let Some(key) = non_empty(cfg.api_key.as_ref()).or(non_empty(cfg.bearer_token.as_ref()))
        {
            insert_bearer(self.row.name, &mut headers, key)?;
        }
        post_json(self.row.name, &url, headers, cfg, body)
    }

    /// The chat body: unsupported parameters refused (or dropped with `drop_params`), renames
    /// applied, `stream_options` only as the caller set it, `cfg.extra_body` on top.
    pub fn chat_body(&self, req: &ChatRequest, cfg: &UpstreamConfig) -> Result<JsonObject, ProviderError> {
        let present: Vec<&str> =
            self.row.unsupported_params.iter().copied().filter(|p| req.has_param(p)).collect();
        let mut body = if present.is_empty() {
            request_object(self.row.name, req, &cfg.model)?
        } else if cfg.drop_params {
            let mut trimmed = req.clone();
            for p in &present {
                trimmed.clear_param(p);
            }
            request_object(self.row.name, &trimmed, &cfg.model)?
        } else {
            return Err(ProviderError::unsupported_params(self.row.name, &cfg.model, &present));
        };
        set_stream_options(&mut body, req.is_stream(), false);
        for (from, to) in self.row.param_renames {
            if let Some(v) = body.remove(*from) {
                insert_path(&mut body, to, v).map_err(|m| {
                    bad_request(self.row.name, format!("cannot send `{from}` as `{to}`: {m}"))
                })?;
            }
        }
        merge_extra_body(&mut body, cfg);
        Ok(body)
    }
}

/// Inserts `value` at a dotted path, creating (or extending) nested objects.
fn insert_path(body: &mut JsonObject, path: &str, value: Value) -> Result<(), String> {
    let mut parts = path.split('.');
    let mut current = body;
    let mut key = parts.next().unwrap_or(path);
    for next in parts {
        let slot = current.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        current = match slot {
            Value::Object(o) => o,
            _ => return Err(format!("`{key}` is already set and is not an object")),
        };
        key = next;
    }
    current.insert(key.to_owned(), value);
    Ok(())
}

impl Adapter for VendorAdapter {
    fn provider(&self) -> &str {
        self.row.name
    }

    fn credential_env(&self) -> CredentialEnv {
        CredentialEnv {
            api_key: self.row.api_key_env,
            api_base: self.row.api_base_env,
            ..CredentialEnv::NONE
        }
    }

    fn chat_request(
        &self,
        req: &ChatRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let body = self.chat_body(req, cfg)?;
        self.post("chat/completions", cfg, &body)
    }

    fn chat_response(&self, resp: &RawResponse) -> Result<ChatResponse, ProviderError> {
        wire::parse_success(self.row.name, resp, "chat completion")
    }

    fn chat_stream_decoder(
        &self,
        _req: &ChatRequest,
        _cfg: &UpstreamConfig,
    ) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(SseJsonDecoder::<ChatChunk>::new(self.row.name, DoneRule::AfterFinishReason))
    }

    fn embedding_request(
        &self,
        req: &EmbeddingRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let mut body = request_object(self.row.name, req, &cfg.model)?;
        merge_extra_body(&mut body, cfg);
        self.post("embeddings", cfg, &body)
    }

    fn embedding_response(&self, resp: &RawResponse) -> Result<EmbeddingResponse, ProviderError> {
        wire::parse_success(self.row.name, resp, "embeddings")
    }

    fn text_completion_request(
        &self,
        req: &TextCompletionRequest,
        cfg: &UpstreamConfig,
    ) -> Result<http::Request<Bytes>, ProviderError> {
        let mut body = request_object(self.row.name, req, &cfg.model)?;
        set_stream_options(&mut body, req.stream.unwrap_or(false), false);
        merge_extra_body(&mut body, cfg);
        self.post("completions", cfg, &body)
    }

    fn text_completion_response(&self, resp: &RawResponse) -> Result<TextCompletionResponse, ProviderError> {
        wire::parse_success(self.row.name, resp, "text completion")
    }

    fn text_completion_stream_decoder(
        &self,
        _req: &TextCompletionRequest,
        _cfg: &UpstreamConfig,
    ) -> Option<Box<dyn StreamDecoder<TextCompletionResponse>>> {
        Some(Box::new(SseJsonDecoder::<TextCompletionResponse>::new(
            self.row.name,
            DoneRule::AfterFinishReason,
        )))
    }

    fn error_response(&self, resp: &RawResponse) -> ProviderError {
        wire::error_response(self.row.name, resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_sorted_unique_and_searchable() {
        assert!(VENDORS.windows(2).all(|w| w[0].name < w[1].name));
        for row in VENDORS {
            assert_eq!(vendor(row.name).map(|r| r.name), Some(row.name));
        }
        assert!(vendor("no-such-vendor").is_none());
        assert!(vendor("").is_none());
    }

    #[test]
    fn nested_insert() {
        let mut body = JsonObject::new();
        body.insert("metadata".into(), json!({"a": 1}));
        insert_path(&mut body, "metadata.completion_window", json!("24h")).unwrap();
        insert_path(&mut body, "x.y.z", json!(true)).unwrap();
        assert_eq!(
            Value::Object(body.clone()),
            json!({"metadata": {"a": 1, "completion_window": "24h"}, "x": {"y": {"z": true}}})
        );
        body.insert("s".into(), json!("str"));
        assert!(insert_path(&mut body, "s.t", json!(1)).is_err());
    }
}
