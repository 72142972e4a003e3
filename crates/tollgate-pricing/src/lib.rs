//! # tollgate-pricing
//!
//! Layer 1 of tollgate: what a model costs, what it can do, and how many tokens a prompt is.
//!
//! * [`model_info`], [`context_window`], [`max_output_tokens`]: facts about ~4,500 models (context
//!   window, max input/output tokens, mode, provider, every `supports_*` [`Capability`]) from a
//!   static table that `cargo xtask codegen` generates from `data/model_prices_and_context_window.json`.
//!   Nothing is parsed at start-up and a lookup allocates nothing (binary search over a sorted
//!   static array).
//! * [`cost`] / [`cost_with`]: the exact cost of a call, broken down by token bucket (uncached
//!   input, cache read, cache write 5-minute and 1-hour, output, reasoning, audio, images) plus
//!   per-image, per-second, per-character and per-query charges, with prompt-size thresholds
//!   (`…_above_200k_tokens`) and service tiers (batch, priority, flex). Amounts are [`Usd`]:
//!   integer yoctodollars, exact for every price in the data. Unknown models are an error, never
//!   a zero cost, unless the deployment configures [`CustomPrices`].
//! * [`tokens`]: OpenAI's o200k_base / cl100k_base tokenizers (loaded lazily, once) with the
//!   chat-message, tool-definition and image overheads OpenAI documents.
//!
//! ## Model name lookup order
//! 1. the name exactly as given (`gpt-4o`, `gemini/gemini-2.5-pro`, `bedrock/…`, `azure/…`);
//! 2. if the name has a provider prefix `p/rest` and step 1 failed: `rest`, but only if that
//!    entry's provider is `p` or a sub-provider of it (`vertex_ai` matches
//!    `vertex_ai-language-models`, `bedrock` matches `bedrock_converse`, `openai` matches
//!    `text-completion-openai`), so `openai/gpt-4o` finds `gpt-4o` while `groq/gpt-4o` does not
//!    silently get OpenAI's price;
//! 3. if `rest` has further segments (`bedrock/us-east-1/anthropic.claude-…`): its last segment,
//!    with the same provider check.
//!
//! Lookups are case-sensitive, like the provider APIs. [`model_info_for`] takes the provider
//! separately (`("anthropic", "claude-sonnet-4-5")`).
//!
//! **Must never depend on** tokio, reqwest, hyper, axum, a database, or any tollgate crate other
//! than `tollgate-core`; its other dependencies are thiserror, serde_json and tiktoken-rs.

mod cost;
#[rustfmt::skip]
mod generated;
mod money;
mod table;
pub mod tokens;

pub use cost::{
    CostBreakdown, CostError, CostOptions, CustomPrices, cost, cost_embedding, cost_of_response, cost_with,
};
pub use generated::Capability;
pub use money::{ParseUsdError, Usd, YOCTO_PER_USD};
pub use table::{PriceKey, PriceKind, ServiceTier};

use table::Entry;

/// What a model is for (`mode` in the data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    Chat,
    Completion,
    Responses,
    Embedding,
    ImageGeneration,
    ImageEdit,
    AudioTranscription,
    AudioSpeech,
    Realtime,
    VideoGeneration,
    Rerank,
    Moderation,
    Search,
    Ocr,
    /// A mode this crate has no variant for (the data's string).
    Other(&'static str),
    /// The entry has no mode.
    Unknown,
}

impl Mode {
    fn parse(s: &'static str) -> Mode {
        match s {
            "chat" => Mode::Chat,
            "completion" => Mode::Completion,
            "responses" => Mode::Responses,
            "embedding" => Mode::Embedding,
            "image_generation" => Mode::ImageGeneration,
            "image_edit" => Mode::ImageEdit,
            "audio_transcription" => Mode::AudioTranscription,
            "audio_speech" => Mode::AudioSpeech,
            "realtime" => Mode::Realtime,
            "video_generation" => Mode::VideoGeneration,
            "rerank" => Mode::Rerank,
            "moderation" => Mode::Moderation,
            "search" => Mode::Search,
            "ocr" => Mode::Ocr,
            "" => Mode::Unknown,
            other => Mode::Other(other),
        }
    }
}

/// Facts about one model: a cheap `Copy` handle into the static table.
#[derive(Clone, Copy)]
pub struct ModelInfo {
    entry: &'static Entry,
}

impl std::fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelInfo")
            .field("key", &self.key())
            .field("provider", &self.provider())
            .field("mode", &self.mode())
            .field("max_input_tokens", &self.max_input_tokens())
            .field("max_output_tokens", &self.max_output_tokens())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ModelInfo {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.entry, other.entry)
    }
}

impl Eq for ModelInfo {}

impl ModelInfo {
    /// The table key this model was found under (`gpt-4o`, `gemini/gemini-2.5-pro`).
    pub fn key(&self) -> &'static str {
        self.entry.name
    }

    /// The data's `litellm_provider` (`openai`, `anthropic`, `vertex_ai-language-models`, …).
    pub fn provider(&self) -> &'static str {
        generated::PROVIDERS.get(usize::from(self.entry.provider)).copied().unwrap_or("")
    }

    pub fn mode(&self) -> Mode {
        Mode::parse(generated::MODES.get(usize::from(self.entry.mode)).copied().unwrap_or(""))
    }

    /// Maximum prompt tokens, when the data says.
    pub fn max_input_tokens(&self) -> Option<u32> {
        (self.entry.max_input != 0).then_some(self.entry.max_input)
    }

    /// Maximum completion tokens, when the data says.
    pub fn max_output_tokens(&self) -> Option<u32> {
        (self.entry.max_output != 0).then_some(self.entry.max_output)
    }

    /// The context window used for pre-call checks: the maximum input tokens.
    pub fn context_window(&self) -> Option<u32> {
        self.max_input_tokens()
    }

    /// Whether the data marks the capability `true` (absent or `false` both read as `false`).
    pub fn supports(&self, capability: Capability) -> bool {
        self.entry.flags & (1u64 << (capability as u32)) != 0
    }

    /// Every capability the model has.
    pub fn capabilities(&self) -> impl Iterator<Item = Capability> + 'static {
        let flags = self.entry.flags;
        Capability::ALL.into_iter().filter(move |c| flags & (1u64 << (*c as u32)) != 0)
    }

    /// The standard-tier, below-any-threshold price of `kind`.
    pub fn price(&self, kind: PriceKind) -> Option<Usd> {
        self.entry.price_in_tier(kind, ServiceTier::Standard, 0).map(|(p, _)| p)
    }

    /// The price of `kind` in `tier` for a prompt of `prompt_tokens` (threshold applied); falls
    /// back to the standard tier when `tier` does not price `kind`.
    pub fn price_at(&self, kind: PriceKind, tier: ServiceTier, prompt_tokens: u64) -> Option<Usd> {
        self.entry
            .price_in_tier(kind, tier, prompt_tokens)
            .or_else(|| self.entry.price_in_tier(kind, ServiceTier::Standard, prompt_tokens))
            .map(|(p, _)| p)
    }

    /// Every price the table has for this model.
    pub fn prices(&self) -> impl Iterator<Item = (PriceKey, Usd)> + 'static {
        self.entry.prices()
    }

    /// Whether any price is given for `tier`.
    pub fn has_tier(&self, tier: ServiceTier) -> bool {
        self.entry.prices().any(|(k, _)| k.tier == tier)
    }

    pub(crate) fn entry(&self) -> &'static Entry {
        self.entry
    }
}

/// Whether table provider `entry_provider` belongs to the request prefix `prefix`.
fn provider_matches(prefix: &str, entry_provider: &str) -> bool {
    if entry_provider == prefix {
        return true;
    }
    if let Some(rest) = entry_provider.strip_prefix(prefix)
        && (rest.starts_with('_') || rest.starts_with('-'))
    {
        return true;
    }
    matches!((prefix, entry_provider), ("openai", "text-completion-openai"))
}

/// Facts about `model`, by the lookup order in the crate docs.
pub fn model_info(model: &str) -> Option<ModelInfo> {
    if let Some(entry) = table::find(model) {
        return Some(ModelInfo { entry });
    }
    let (prefix, rest) = model.split_once('/')?;
    let matching = |name: &str| {
        let info = ModelInfo { entry: table::find(name)? };
        provider_matches(prefix, info.provider()).then_some(info)
    };
    matching(rest).or_else(|| rest.rsplit_once('/').and_then(|(_, last)| matching(last)))
}

/// Facts about `model` served by `provider`: `provider/model` first, then `model` if its
/// provider matches (see the crate docs), then `model` as written if it already has a prefix.
pub fn model_info_for(provider: &str, model: &str) -> Option<ModelInfo> {
    let mut buf = String::with_capacity(provider.len() + 1 + model.len());
    buf.push_str(provider);
    buf.push('/');
    buf.push_str(model);
    if let Some(entry) = table::find(&buf) {
        return Some(ModelInfo { entry });
    }
    if let Some(entry) = table::find(model) {
        let info = ModelInfo { entry };
        if provider_matches(provider, info.provider()) || model.contains('/') {
            return Some(info);
        }
    }
    None
}

/// Maximum completion tokens for `model` (for a default `max_tokens`).
pub fn max_output_tokens(model: &str) -> Option<u32> {
    model_info(model)?.max_output_tokens()
}

/// The context window (maximum input tokens) of `model` (for pre-call context checks).
pub fn context_window(model: &str) -> Option<u32> {
    model_info(model)?.context_window()
}

/// Every model in the table, sorted by key.
pub fn all_models() -> impl Iterator<Item = ModelInfo> {
    table::all().iter().map(|entry| ModelInfo { entry })
}

/// Number of models in the table.
pub fn model_count() -> usize {
    table::len()
}
