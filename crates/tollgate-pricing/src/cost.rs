//! The cost of one call, by bucket, exact.
//!
//! ## How usage is split into buckets
//! Core's [`Usage`] invariant: `prompt_tokens` counts every input token, cache reads
//! (`cached_tokens`) and cache writes (`cache_creation_tokens`, of which
//! `cache_creation_1h_tokens` used the 1-hour TTL) included; `completion_tokens` includes
//! `reasoning_tokens`. So (all subtractions saturate at zero):
//!
//! | bucket | tokens | price (first that exists) |
//! | --- | --- | --- |
//! | input | prompt − cached − cache writes − audio in − image in | `input_cost_per_token` |
//! | cache read | cached | `cache_read_input_token_cost`, `input_cost_per_token_cache_hit`, input |
//! | cache write (5 min) | cache writes − 1-hour writes | `cache_creation_input_token_cost`, input |
//! | cache write (1 h) | 1-hour writes | `cache_creation_input_token_cost_above_1hr`, 5-minute write, input |
//! | audio in | prompt `audio_tokens` | `input_cost_per_audio_token`, input |
//! | image in | prompt `image_tokens` | `input_cost_per_image_token`, input |
//! | output | completion − reasoning − audio out − image out | `output_cost_per_token` |
//! | reasoning | reasoning | `output_cost_per_reasoning_token`, output |
//! | audio out | completion `audio_tokens` | `output_cost_per_audio_token`, output |
//! | image out | completion `image_tokens` | `output_cost_per_image_token`, output |
//!
//! Every token is priced exactly once. Providers that report cache tokens *separately* from
//! input tokens (Anthropic, Bedrock) are normalised by their adapters to this invariant, so both
//! kinds of provider are priced by the same rule.
//!
//! ## Thresholds and tiers
//! For each price, the requested [`ServiceTier`]'s variant is used when the model has one for that
//! price kind, else the standard price. Within the tier, the variant with the highest
//! `_above_<N>k_tokens` threshold that `prompt_tokens` exceeds wins (e.g. Gemini 2.5 Pro bills
//! every token of a 262k-token prompt, output included, at the above-200k prices).
//!
//! ## Units that are not tokens
//! [`CostOptions`] carries images, pixels, durations, characters and queries; each is priced at its
//! per-unit price (`output_cost_per_image`, `input_cost_per_second`, `input_cost_per_character`, …).
//!
//! A bucket with a non-zero amount and no price at all makes the cost unknown
//! ([`CostError::MissingPrice`]) rather than silently zero.

use std::time::Duration;

use tollgate_core::Usage;
use tollgate_core::chat::ChatResponse;
use tollgate_core::embedding::EmbeddingUsage;

use crate::money::Usd;
use crate::table::{PriceKind, ServiceTier};
use crate::{ModelInfo, model_info};

/// Per-deployment prices that override (or, for an unknown model, replace) the table's.
///
/// A custom price applies to its kind in every tier and at every prompt size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomPrices {
    prices: Vec<(PriceKind, Usd)>,
}

impl CustomPrices {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the price of `kind` (builder style).
    pub fn with(mut self, kind: PriceKind, price: Usd) -> Self {
        self.set(kind, price);
        self
    }

    pub fn set(&mut self, kind: PriceKind, price: Usd) {
        match self.prices.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = price,
            None => self.prices.push((kind, price)),
        }
    }

    /// Sets a price by its data field name (`input_cost_per_token`, as in LiteLLM configs);
    /// returns `false` for a name that is not a standard-tier price field.
    pub fn set_field(&mut self, field: &str, price: Usd) -> bool {
        match PriceKind::from_field_name(field) {
            Some(kind) => {
                self.set(kind, price);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, kind: PriceKind) -> Option<Usd> {
        self.prices.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p)
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// Options for [`cost_with`]: tier, custom prices, and the non-token units of the call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CostOptions<'a> {
    pub tier: ServiceTier,
    pub custom: Option<&'a CustomPrices>,
    /// Images sent (priced at `input_cost_per_image`).
    pub input_images: u64,
    /// Images generated (priced at `output_cost_per_image`).
    pub output_images: u64,
    /// Pixels of generated images, width × height × n (`input_cost_per_pixel` /
    /// `output_cost_per_pixel`, the data's convention for DALL·E size entries).
    pub pixels: u64,
    /// Input media duration (`input_cost_per_second`, else `input_cost_per_audio_per_second`).
    pub input_duration: Duration,
    /// Input video duration (`input_cost_per_video_per_second`).
    pub input_video_duration: Duration,
    /// Generated audio/video duration (`output_cost_per_second`, else `output_cost_per_video_per_second`).
    pub output_duration: Duration,
    /// Characters of input text (TTS, per-character models: `input_cost_per_character`).
    pub input_characters: u64,
    /// Characters of output text (`output_cost_per_character`).
    pub output_characters: u64,
    /// Queries (search, rerank: `input_cost_per_query`).
    pub queries: u64,
}

impl<'a> CostOptions<'a> {
    pub fn tier(tier: ServiceTier) -> Self {
        CostOptions { tier, ..CostOptions::default() }
    }

    pub fn with_custom(mut self, custom: &'a CustomPrices) -> Self {
        self.custom = Some(custom);
        self
    }
}

/// Why a cost could not be computed. Never a silent zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    #[error("no price known for model `{0}` (not in the price table and no custom price configured)")]
    UnknownModel(String),
    #[error("no price known for `{model}`: it has no `{}` price but the call used {units} of it", kind.field_name())]
    MissingPrice { model: String, kind: PriceKind, units: u64 },
    #[error("cost of `{0}` overflows")]
    Overflow(String),
    #[error("the response from `{0}` reports no usage, so its cost is unknown")]
    NoUsage(String),
}

/// The cost of one call, by bucket. Every field is exact; `total` is their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CostBreakdown {
    /// The table key used (`None` when only custom prices priced the call).
    pub model: Option<&'static str>,
    /// The tier requested.
    pub tier: ServiceTier,
    /// Whether at least one bucket used a price of the requested tier (always true for standard).
    pub tier_applied: bool,
    /// The highest prompt-size threshold applied to any bucket (0 = none).
    pub above_tokens: u32,
    /// Uncached text input tokens.
    pub input: Usd,
    pub cache_read: Usd,
    /// Cache writes with the default (5-minute) TTL.
    pub cache_creation: Usd,
    /// Cache writes with the 1-hour TTL.
    pub cache_creation_1h: Usd,
    /// Text output tokens (reasoning, audio and image tokens excluded).
    pub output: Usd,
    pub reasoning: Usd,
    pub audio_input: Usd,
    pub audio_output: Usd,
    /// Image input tokens plus per-image input charges.
    pub image_input: Usd,
    /// Image output tokens plus per-image and per-pixel output charges.
    pub image_output: Usd,
    /// Per-second charges (input and output media).
    pub seconds: Usd,
    /// Per-character charges.
    pub characters: Usd,
    /// Per-query charges.
    pub queries: Usd,
    pub total: Usd,
}

impl CostBreakdown {
    /// The total as the nearest `f64` (lossy; for display and metrics).
    pub fn total_f64(&self) -> f64 {
        self.total.to_f64()
    }
}

/// The standard-tier cost of `usage` on `model`.
pub fn cost(model: &str, usage: &Usage) -> Result<CostBreakdown, CostError> {
    cost_with(model, usage, &CostOptions::default())
}

/// The cost of a chat response: its `model`, its `usage` and the `service_tier` it reports.
pub fn cost_of_response(
    response: &ChatResponse,
    custom: Option<&CustomPrices>,
) -> Result<CostBreakdown, CostError> {
    let usage = response.usage.as_ref().ok_or_else(|| CostError::NoUsage(response.model.clone()))?;
    let tier = response.service_tier.as_deref().map(ServiceTier::from_service_tier).unwrap_or_default();
    cost_with(&response.model, usage, &CostOptions { tier, custom, ..CostOptions::default() })
}

/// The cost of an embedding call (`prompt_tokens` at the input price).
pub fn cost_embedding(
    model: &str,
    usage: &EmbeddingUsage,
    opts: &CostOptions<'_>,
) -> Result<CostBreakdown, CostError> {
    cost_with(model, &Usage::new(usage.prompt_tokens, 0), opts)
}

/// The cost of `usage` on `model` with a tier, custom prices and non-token units.
pub fn cost_with(model: &str, usage: &Usage, opts: &CostOptions<'_>) -> Result<CostBreakdown, CostError> {
    let info = model_info(model);
    if info.is_none() && opts.custom.is_none_or(CustomPrices::is_empty) {
        return Err(CostError::UnknownModel(model.to_owned()));
    }
    let mut p = Pricer { model, info, opts, prompt: usage.prompt_tokens, tier_applied: false, above: 0 };
    let mut b = CostBreakdown { model: info.map(|i| i.key()), tier: opts.tier, ..CostBreakdown::default() };

    let cached = usage.cached_tokens();
    let writes = usage.cache_creation_tokens();
    let writes_1h = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cache_creation_1h_tokens)
        .unwrap_or(0)
        .min(writes);
    let writes_5m = writes - writes_1h;
    let details = usage.prompt_tokens_details.as_ref();
    let audio_in = details.and_then(|d| d.audio_tokens).unwrap_or(0);
    let image_in = details.and_then(|d| d.image_tokens).unwrap_or(0);
    let text_in = usage
        .prompt_tokens
        .saturating_sub(cached)
        .saturating_sub(writes)
        .saturating_sub(audio_in)
        .saturating_sub(image_in);

    let out = usage.completion_tokens_details.as_ref();
    let reasoning = usage.reasoning_tokens().min(usage.completion_tokens);
    let audio_out = out.and_then(|d| d.audio_tokens).unwrap_or(0);
    let image_out = out.and_then(|d| d.image_tokens).unwrap_or(0);
    let text_out =
        usage.completion_tokens.saturating_sub(reasoning).saturating_sub(audio_out).saturating_sub(image_out);

    use PriceKind::*;
    b.input = p.charge(text_in, &[InputToken])?;
    b.cache_read = p.charge(cached, &[CacheRead, CacheHit, InputToken])?;
    b.cache_creation = p.charge(writes_5m, &[CacheCreation, InputToken])?;
    b.cache_creation_1h = p.charge(writes_1h, &[CacheCreation1h, CacheCreation, InputToken])?;
    b.audio_input = p.charge(audio_in, &[InputAudioToken, InputToken])?;
    b.image_input = p.charge(image_in, &[InputImageToken, InputToken])?;
    b.output = p.charge(text_out, &[OutputToken])?;
    b.reasoning = p.charge(reasoning, &[ReasoningToken, OutputToken])?;
    b.audio_output = p.charge(audio_out, &[OutputAudioToken, OutputToken])?;
    b.image_output = p.charge(image_out, &[OutputImageToken, OutputToken])?;

    // Non-token units.
    let per_image_in = p.charge(opts.input_images, &[InputImage])?;
    b.image_input = p.add(b.image_input, per_image_in)?;
    let per_image_out = p.charge(opts.output_images, &[OutputImage])?;
    b.image_output = p.add(b.image_output, per_image_out)?;
    if opts.pixels > 0 {
        let px = match p.price(&[InputPixel]).or_else(|| p.price(&[OutputPixel])) {
            Some(price) => price.checked_mul(opts.pixels).ok_or_else(|| p.overflow())?,
            None => return Err(p.missing(InputPixel, opts.pixels)),
        };
        b.image_output = p.add(b.image_output, px)?;
    }
    let secs_in = p.per_second(opts.input_duration, &[InputSecond, InputAudioSecond])?;
    let secs_video = p.per_second(opts.input_video_duration, &[InputVideoSecond])?;
    let secs_out = p.per_second(opts.output_duration, &[OutputSecond, OutputVideoSecond])?;
    b.seconds = p.add(p.add(secs_in, secs_video)?, secs_out)?;
    let chars_in = p.charge(opts.input_characters, &[InputCharacter])?;
    let chars_out = p.charge(opts.output_characters, &[OutputCharacter])?;
    b.characters = p.add(chars_in, chars_out)?;
    b.queries = p.charge(opts.queries, &[Query])?;

    let mut total = Usd::ZERO;
    for part in [
        b.input,
        b.cache_read,
        b.cache_creation,
        b.cache_creation_1h,
        b.output,
        b.reasoning,
        b.audio_input,
        b.audio_output,
        b.image_input,
        b.image_output,
        b.seconds,
        b.characters,
        b.queries,
    ] {
        total = p.add(total, part)?;
    }
    b.total = total;
    b.tier_applied = opts.tier == ServiceTier::Standard || p.tier_applied;
    b.above_tokens = p.above;
    Ok(b)
}

struct Pricer<'a> {
    model: &'a str,
    info: Option<ModelInfo>,
    opts: &'a CostOptions<'a>,
    prompt: u64,
    tier_applied: bool,
    above: u32,
}

impl Pricer<'_> {
    /// The first price in `chain` that the custom prices or the table have.
    fn price(&mut self, chain: &[PriceKind]) -> Option<crate::Usd> {
        for &kind in chain {
            if let Some(p) = self.opts.custom.and_then(|c| c.get(kind)) {
                return Some(p);
            }
            let Some(info) = self.info else { continue };
            let entry = info.entry();
            if self.opts.tier != ServiceTier::Standard
                && let Some((p, above)) = entry.price_in_tier(kind, self.opts.tier, self.prompt)
            {
                self.tier_applied = true;
                self.above = self.above.max(above);
                return Some(p);
            }
            if let Some((p, above)) = entry.price_in_tier(kind, ServiceTier::Standard, self.prompt) {
                self.above = self.above.max(above);
                return Some(p);
            }
        }
        None
    }

    fn charge(&mut self, units: u64, chain: &[PriceKind]) -> Result<Usd, CostError> {
        if units == 0 {
            return Ok(Usd::ZERO);
        }
        match self.price(chain) {
            Some(price) => price.checked_mul(units).ok_or_else(|| self.overflow()),
            None => Err(self.missing(chain[0], units)),
        }
    }

    /// Per-second price × duration, computed in nanoseconds and rounded to the nearest yoctodollar
    /// (exact whenever the price has at most 15 decimal places, i.e. for every price in the data).
    fn per_second(&mut self, d: Duration, chain: &[PriceKind]) -> Result<Usd, CostError> {
        if d.is_zero() {
            return Ok(Usd::ZERO);
        }
        let Some(price) = self.price(chain) else {
            return Err(self.missing(chain[0], d.as_secs().max(1)));
        };
        let nanos = d.as_nanos();
        let scaled = price.yocto().checked_mul(nanos).ok_or_else(|| self.overflow())?;
        Ok(Usd::from_yocto((scaled + 500_000_000) / 1_000_000_000))
    }

    fn add(&self, a: Usd, b: Usd) -> Result<Usd, CostError> {
        a.checked_add(b).ok_or_else(|| self.overflow())
    }

    fn missing(&self, kind: PriceKind, units: u64) -> CostError {
        CostError::MissingPrice { model: self.model.to_owned(), kind, units }
    }

    fn overflow(&self) -> CostError {
        CostError::Overflow(self.model.to_owned())
    }
}
