//! Anthropic Claude models on Vertex AI (`vertex_ai/claude-*`).
//!
//! Vertex serves Claude through `publishers/anthropic/models/{model}:rawPredict` (and
//! `:streamRawPredict` for streams) with the Anthropic Messages body, minus `model`, plus
//! `"anthropic_version": "vertex-2023-10-16"`, authenticated with the Vertex OAuth token. The
//! answers (JSON and the SSE event stream) are Anthropic's own format.
//!
//! This crate does not depend on the Anthropic adapter. Instead [`crate::GeminiAdapter::with_anthropic`]
//! takes any [`Adapter`](tollgate_core::Adapter) that speaks the Anthropic Messages dialect; for Claude models the Vertex
//! adapter asks it for the request, then [`rewrite_for_vertex`] moves it onto Vertex, and the
//! response, stream decoder and error classification are the Anthropic adapter's (Google-format
//! error envelopes, which Vertex's front end can also send, are classified here first).

use bytes::Bytes;
use serde_json::Value;
use tollgate_core::{ProviderError, UpstreamConfig};

use crate::endpoint::{Flavor, model_method_url, post_json};

/// The `anthropic_version` Vertex requires in the body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Whether a Vertex model name is an Anthropic partner model.
pub fn is_vertex_anthropic_model(model: &str) -> bool {
    crate::endpoint::bare_model(model).starts_with("claude")
}

/// The Vertex URL for an Anthropic model: `…/publishers/anthropic/models/{m}:rawPredict` or
/// `:streamRawPredict`.
pub fn vertex_anthropic_url(cfg: &UpstreamConfig, stream: bool) -> Result<String, ProviderError> {
    let method = if stream { "streamRawPredict" } else { "rawPredict" };
    model_method_url(Flavor::Vertex, cfg, "anthropic", method)
}

/// Turns an Anthropic Messages body into the Vertex form: drops `model`, sets
/// `anthropic_version` (unless the caller set one through `extra_body`).
pub fn vertex_anthropic_body(mut body: Value) -> Value {
    if let Value::Object(m) = &mut body {
        m.remove("model");
        m.entry("anthropic_version").or_insert_with(|| Value::String(VERTEX_ANTHROPIC_VERSION.into()));
    }
    body
}

/// Moves a request built by the Anthropic adapter onto Vertex: new URL, the body rewritten by
/// [`vertex_anthropic_body`], Vertex authentication instead of `x-api-key`, and the
/// `anthropic-beta` header kept (Vertex honours it). `stream` picks `streamRawPredict`.
pub fn rewrite_for_vertex(
    anthropic_req: &http::Request<Bytes>,
    cfg: &UpstreamConfig,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let body: Value = serde_json::from_slice(anthropic_req.body()).map_err(|e| {
        ProviderError::bad_request(format!("the Anthropic adapter built a non-JSON body: {e}"))
            .with_provider("vertex_ai")
    })?;
    let body = vertex_anthropic_body(body);
    let url = vertex_anthropic_url(cfg, stream)?;
    let bytes = serde_json::to_vec(&body).map_err(|e| {
        ProviderError::bad_request(format!("cannot encode body: {e}")).with_provider("vertex_ai")
    })?;
    // Vertex auth, but without the Anthropic key the inner adapter may have been given.
    let mut vcfg = cfg.clone();
    vcfg.headers.clear();
    let mut req = post_json(Flavor::Vertex, &vcfg, &url, bytes)?;
    if let Some(beta) = anthropic_req.headers().get("anthropic-beta") {
        req.headers_mut().insert("anthropic-beta", beta.clone());
    }
    for (k, v) in &cfg.headers {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::try_from(k.as_str()), http::HeaderValue::try_from(v.as_str()))
        {
            req.headers_mut().insert(name, value);
        }
    }
    Ok(req)
}
