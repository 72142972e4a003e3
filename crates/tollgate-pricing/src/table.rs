//! The shapes the generated table is made of, the price kinds and service tiers, and lookup.

use crate::generated::{ENTRIES, PRICE_KEYS, PRICE_VALUES, PRICES};
use crate::money::Usd;

/// What a price is charged for: one bucket of usage, per unit named in the variant.
///
/// Each variant is a field of the model data (without tier suffix or threshold), see
/// [`PriceKind::field_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PriceKind {
    /// Per uncached input token.
    InputToken,
    /// Per output token.
    OutputToken,
    /// Per input token read from the prompt cache.
    CacheRead,
    /// DeepSeek's older name for the cache-read price (`input_cost_per_token_cache_hit`).
    CacheHit,
    /// Per token read from an explicitly created cache (Qwen); informational.
    ExplicitCacheRead,
    /// Per input token written to the cache (default / 5-minute TTL).
    CacheCreation,
    /// Per input token written to the cache with the 1-hour TTL.
    CacheCreation1h,
    /// Per input token written to the cache with a 12-hour TTL (informational).
    CacheCreation12h,
    /// Per reasoning token (a subset of output tokens).
    ReasoningToken,
    InputAudioToken,
    OutputAudioToken,
    /// Per cached audio input token (informational: core's usage has no cached-audio count).
    CacheReadAudio,
    CacheCreationAudio,
    InputImageToken,
    OutputImageToken,
    /// Per cached image input token (informational).
    CacheReadImage,
    InputVideoToken,
    OutputVideoToken,
    /// Per input image.
    InputImage,
    /// Per generated image.
    OutputImage,
    InputPixel,
    OutputPixel,
    InputSecond,
    OutputSecond,
    InputAudioSecond,
    InputVideoSecond,
    OutputVideoSecond,
    InputCharacter,
    OutputCharacter,
    /// Per query (search, rerank).
    Query,
    /// Per request.
    Request,
    /// Per citation token (Perplexity; informational).
    CitationToken,
}

impl PriceKind {
    /// Every kind.
    pub const ALL: [PriceKind; 32] = {
        use PriceKind::*;
        [
            InputToken,
            OutputToken,
            CacheRead,
            CacheHit,
            ExplicitCacheRead,
            CacheCreation,
            CacheCreation1h,
            CacheCreation12h,
            ReasoningToken,
            InputAudioToken,
            OutputAudioToken,
            CacheReadAudio,
            CacheCreationAudio,
            InputImageToken,
            OutputImageToken,
            CacheReadImage,
            InputVideoToken,
            OutputVideoToken,
            InputImage,
            OutputImage,
            InputPixel,
            OutputPixel,
            InputSecond,
            OutputSecond,
            InputAudioSecond,
            InputVideoSecond,
            OutputVideoSecond,
            InputCharacter,
            OutputCharacter,
            Query,
            Request,
            CitationToken,
        ]
    };

    /// The standard-tier field name in the model data (`input_cost_per_token`, …).
    pub fn field_name(self) -> &'static str {
        use PriceKind::*;
        match self {
            InputToken => "input_cost_per_token",
            OutputToken => "output_cost_per_token",
            CacheRead => "cache_read_input_token_cost",
            CacheHit => "input_cost_per_token_cache_hit",
            ExplicitCacheRead => "explicit_cache_read_input_token_cost",
            CacheCreation => "cache_creation_input_token_cost",
            CacheCreation1h => "cache_creation_input_token_cost_above_1hr",
            CacheCreation12h => "cache_creation_input_token_cost_above_12hr",
            ReasoningToken => "output_cost_per_reasoning_token",
            InputAudioToken => "input_cost_per_audio_token",
            OutputAudioToken => "output_cost_per_audio_token",
            CacheReadAudio => "cache_read_input_audio_token_cost",
            CacheCreationAudio => "cache_creation_input_audio_token_cost",
            InputImageToken => "input_cost_per_image_token",
            OutputImageToken => "output_cost_per_image_token",
            CacheReadImage => "cache_read_input_image_token_cost",
            InputVideoToken => "input_cost_per_video_token",
            OutputVideoToken => "output_cost_per_video_token",
            InputImage => "input_cost_per_image",
            OutputImage => "output_cost_per_image",
            InputPixel => "input_cost_per_pixel",
            OutputPixel => "output_cost_per_pixel",
            InputSecond => "input_cost_per_second",
            OutputSecond => "output_cost_per_second",
            InputAudioSecond => "input_cost_per_audio_per_second",
            InputVideoSecond => "input_cost_per_video_per_second",
            OutputVideoSecond => "output_cost_per_video_per_second",
            InputCharacter => "input_cost_per_character",
            OutputCharacter => "output_cost_per_character",
            Query => "input_cost_per_query",
            Request => "input_cost_per_request",
            CitationToken => "citation_cost_per_token",
        }
    }

    /// The kind a standard-tier field name stands for (`"output_cost_per_token"` → `OutputToken`).
    pub fn from_field_name(name: &str) -> Option<PriceKind> {
        PriceKind::ALL.into_iter().find(|k| k.field_name() == name)
    }
}

/// A provider's service tier: prices in the data carry it as a suffix (`_batches`, `_priority`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum ServiceTier {
    /// The default, on-demand price.
    #[default]
    Standard,
    /// Batch APIs (OpenAI/Anthropic/Gemini batch, Bedrock batch): `_batches`.
    Batch,
    /// OpenAI `service_tier: "priority"`, Gemini priority: `_priority`.
    Priority,
    /// OpenAI `service_tier: "flex"`: `_flex`.
    Flex,
    /// `_ultrafast`.
    Ultrafast,
    /// `_balanced`.
    Balanced,
    /// `_decisions`.
    Decisions,
}

impl ServiceTier {
    /// The tier named by a request's or response's `service_tier` (`default`/`auto`/`scale` are
    /// standard pricing; unknown names too).
    pub fn from_service_tier(s: &str) -> ServiceTier {
        match s {
            "flex" => ServiceTier::Flex,
            "priority" => ServiceTier::Priority,
            "batch" | "batches" => ServiceTier::Batch,
            "ultrafast" => ServiceTier::Ultrafast,
            "balanced" => ServiceTier::Balanced,
            "decisions" => ServiceTier::Decisions,
            _ => ServiceTier::Standard,
        }
    }
}

/// One price's key: what, which tier, and the prompt size it applies above (0 = always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PriceKey {
    pub kind: PriceKind,
    pub tier: ServiceTier,
    /// The price applies when the prompt has **more** than this many tokens (0: from the first).
    pub above_tokens: u32,
}

pub(crate) const fn k(kind: PriceKind, tier: ServiceTier, above_tokens: u32) -> PriceKey {
    PriceKey { kind, tier, above_tokens }
}

/// One model row of the generated table.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: &'static str,
    pub(crate) provider: u16,
    pub(crate) mode: u8,
    pub(crate) max_input: u32,
    pub(crate) max_output: u32,
    pub(crate) flags: u64,
    pub(crate) prices_start: u32,
    pub(crate) prices_len: u16,
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn e(
    name: &'static str,
    provider: u16,
    mode: u8,
    max_input: u32,
    max_output: u32,
    flags: u64,
    prices_start: u32,
    prices_len: u16,
) -> Entry {
    Entry { name, provider, mode, max_input, max_output, flags, prices_start, prices_len }
}

impl Entry {
    /// This row's prices.
    pub(crate) fn prices(&'static self) -> impl Iterator<Item = (PriceKey, Usd)> + 'static {
        let start = self.prices_start as usize;
        let end = start + self.prices_len as usize;
        PRICES.get(start..end).unwrap_or(&[]).iter().filter_map(|packed| {
            let key = PRICE_KEYS.get((packed >> 16) as usize)?;
            let value = PRICE_VALUES.get((packed & 0xFFFF) as usize)?;
            Some((*key, Usd::from_yocto(*value)))
        })
    }

    /// The price of `kind` for `tier` at a prompt of `prompt_tokens`: the variant with the highest
    /// threshold below the prompt size; `None` when this tier does not price `kind` at all (no
    /// fallback to another tier here).
    pub(crate) fn price_in_tier(
        &'static self,
        kind: PriceKind,
        tier: ServiceTier,
        prompt_tokens: u64,
    ) -> Option<(Usd, u32)> {
        let mut best: Option<(Usd, u32)> = None;
        for (key, value) in self.prices() {
            if key.kind != kind || key.tier != tier {
                continue;
            }
            if key.above_tokens != 0 && prompt_tokens <= u64::from(key.above_tokens) {
                continue;
            }
            if best.is_none_or(|(_, t)| key.above_tokens >= t) {
                best = Some((value, key.above_tokens));
            }
        }
        best
    }
}

/// Exact, case-sensitive lookup of a table key.
pub(crate) fn find(name: &str) -> Option<&'static Entry> {
    ENTRIES.binary_search_by(|e| e.name.cmp(name)).ok().and_then(|i| ENTRIES.get(i))
}

/// Number of models in the table.
pub(crate) fn len() -> usize {
    ENTRIES.len()
}

/// Every row, sorted by name.
pub(crate) fn all() -> &'static [Entry] {
    &ENTRIES
}
