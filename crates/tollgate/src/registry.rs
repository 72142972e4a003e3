//! Model string → provider adapter, over the provider crates compiled in (cargo features).

use std::sync::Arc;

use tollgate_core::{Adapter, ErrorKind, ModelRef, ProviderError};

/// Finds the adapter for a model reference and returns it with the model name to send upstream.
///
/// * `provider/model`: the provider prefix must be one this build knows;
/// * a bare name: `claude-*` goes to Anthropic, `gemini-*` to Gemini (AI Studio), Bedrock model ids
///   (`anthropic.claude-…`, `us.amazon.nova-…`, ARNs) to Bedrock, `command-*`/`embed-*` to Cohere —
///   each when its feature is on — and anything else to OpenAI (LiteLLM's rule for bare names).
pub fn resolve_provider(model: ModelRef<'_>) -> Result<(Arc<dyn Adapter>, String), ProviderError> {
    match model.provider {
        Some(prefix) => match adapter_for(prefix) {
            Some(a) => Ok((a, model.model.to_owned())),
            None => Err(unknown_provider(prefix, &model.to_string())),
        },
        None => {
            let provider = infer_provider(model.model);
            match adapter_for(provider) {
                Some(a) => Ok((a, model.model.to_owned())),
                None => Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "model `{}` has no provider prefix and its default provider `{provider}` is not \
                         compiled in; enable the `{provider}` feature of tollgate or write `provider/model`",
                        model.model
                    ),
                )
                .with_param("model")),
            }
        }
    }
}

fn infer_provider(model: &str) -> &'static str {
    #[cfg(feature = "gemini")]
    if let Some(p) = tollgate_provider_gemini::provider_for_bare_model(model) {
        return p;
    }
    #[cfg(feature = "bedrock")]
    if tollgate_provider_bedrock::is_bedrock_model(model) {
        return "bedrock";
    }
    #[cfg(feature = "cohere")]
    if tollgate_provider_cohere::is_cohere_model(model) {
        return "cohere";
    }
    if model.starts_with("claude-") { "anthropic" } else { "openai" }
}

/// Gemini / Vertex AI; with the `anthropic` feature, Vertex also serves `vertex_ai/claude-*`
/// through the Anthropic dialect.
#[cfg(feature = "gemini")]
fn gemini_adapter(provider: &str) -> Option<Arc<dyn Adapter>> {
    #[cfg(feature = "anthropic")]
    if provider == "vertex_ai"
        && let Some(anthropic) = tollgate_provider_anthropic::adapter("anthropic")
    {
        return Some(Arc::new(tollgate_provider_gemini::GeminiAdapter::vertex().with_anthropic(anthropic)));
    }
    tollgate_provider_gemini::adapter(provider)
}

/// The adapter for a provider prefix, if that provider is compiled in.
fn adapter_for(provider: &str) -> Option<Arc<dyn Adapter>> {
    #[cfg(feature = "openai")]
    if let Some(a) = tollgate_provider_openai::adapter(provider) {
        return Some(a);
    }
    #[cfg(feature = "anthropic")]
    if let Some(a) = tollgate_provider_anthropic::adapter(provider) {
        return Some(a);
    }
    #[cfg(feature = "bedrock")]
    if let Some(a) = tollgate_provider_bedrock::adapter(provider) {
        return Some(a);
    }
    #[cfg(feature = "gemini")]
    if let Some(a) = gemini_adapter(provider) {
        return Some(a);
    }
    #[cfg(feature = "cohere")]
    if let Some(a) = tollgate_provider_cohere::adapter(provider) {
        return Some(a);
    }
    #[cfg(feature = "ollama")]
    if let Some(a) = tollgate_provider_ollama::adapter(provider) {
        return Some(a);
    }
    let _ = provider;
    None
}

/// Every provider prefix this build can serve, sorted.
pub fn known_providers() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    #[cfg(feature = "openai")]
    {
        out.push("openai");
        out.push("azure");
        out.extend(tollgate_provider_openai::VENDORS.iter().map(|v| v.name));
    }
    #[cfg(feature = "anthropic")]
    out.extend(tollgate_provider_anthropic::PROVIDERS);
    #[cfg(feature = "bedrock")]
    out.extend(tollgate_provider_bedrock::PROVIDERS);
    #[cfg(feature = "gemini")]
    out.extend(tollgate_provider_gemini::PROVIDERS);
    #[cfg(feature = "cohere")]
    out.extend(tollgate_provider_cohere::PROVIDERS);
    #[cfg(feature = "ollama")]
    out.extend(tollgate_provider_ollama::PROVIDERS);
    out.sort_unstable();
    out.dedup();
    out
}

fn unknown_provider(prefix: &str, model: &str) -> ProviderError {
    let known = known_providers();
    let hint = if known.is_empty() {
        "no provider features are enabled".to_owned()
    } else {
        let close: Vec<&str> =
            known.iter().copied().filter(|k| k.contains(prefix) || prefix.contains(k)).take(5).collect();
        if close.is_empty() {
            format!("{} providers are available (see tollgate::known_providers())", known.len())
        } else {
            format!("did you mean {}?", close.join(", "))
        }
    };
    ProviderError::new(
        ErrorKind::BadRequest,
        format!("unknown provider `{prefix}` in model `{model}`: {hint} (or enable its cargo feature)"),
    )
    .with_param("model")
    .with_code("unknown_provider")
}
