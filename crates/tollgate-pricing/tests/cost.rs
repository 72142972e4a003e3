//! Golden costs, hand-computed from the providers' published per-million-token prices (which the
//! snapshot carries per token). Every expected figure is an exact decimal; the assertions compare
//! integer yoctodollars, i.e. far tighter than the 1e-12 USD the issue asks for.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::Duration;

use tollgate_core::Usage;
use tollgate_core::chat::{CompletionTokensDetails, PromptTokensDetails};
use tollgate_core::embedding::EmbeddingUsage;
use tollgate_pricing::{
    CostError, CostOptions, CustomPrices, PriceKind, ServiceTier, Usd, cost, cost_embedding, cost_with,
};

fn usd(s: &str) -> Usd {
    s.parse().unwrap()
}

/// Core's invariant: `prompt` includes cache reads and writes; `completion` includes reasoning.
fn usage(prompt: u64, cached: u64, writes: u64, writes_1h: u64, completion: u64, reasoning: u64) -> Usage {
    let mut u = Usage::new(prompt, completion);
    u.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(cached),
        cache_creation_tokens: Some(writes),
        cache_creation_1h_tokens: Some(writes_1h),
        ..Default::default()
    });
    u.completion_tokens_details =
        Some(CompletionTokensDetails { reasoning_tokens: Some(reasoning), ..Default::default() });
    u
}

fn total(model: &str, u: &Usage, tier: ServiceTier) -> Usd {
    cost_with(model, u, &CostOptions::tier(tier)).unwrap().total
}

// ---------------------------------------------------------------------------------------------
// The two LiteLLM double-billing bugs
// ---------------------------------------------------------------------------------------------

/// BerriAI/litellm#9812: Anthropic returned `input_tokens: 3, cache_creation_input_tokens: 12304,
/// output_tokens: 550` on Claude 3.7 Sonnet; LiteLLM billed $0.091311 (the written tokens once as
/// input and again as cache writes), Anthropic's console $0.05439. Claude 3.7 Sonnet is not in
/// the snapshot; Claude Sonnet 4.5 has the same published prices ($3 input, $3.75 5-minute cache
/// write, $15 output per million), so the same usage reproduces both figures:
///   right: 3 × 3e-6 + 12304 × 3.75e-6 + 550 × 15e-6 = 0.000009 + 0.04614 + 0.00825 = 0.054399
///   LiteLLM: 12307 × 3e-6 + 12304 × 3.75e-6 + 550 × 15e-6 = 0.036921 + 0.04614 + 0.00825 = 0.091311
#[test]
fn litellm_anthropic_cache_write_double_billing() {
    // The Anthropic adapter normalises to core's invariant: prompt = 3 + 0 + 12304.
    let u = usage(12_307, 0, 12_304, 0, 550, 0);
    let c = cost("anthropic/claude-sonnet-4-5", &u).unwrap();
    assert_eq!(c.total, usd("0.054399"));
    assert_eq!(c.input, usd("0.000009"));
    assert_eq!(c.cache_creation, usd("0.04614"));
    assert_eq!(c.output, usd("0.00825"));
    assert_ne!(c.total, usd("0.091311"));
    assert!((c.total_f64() - 0.054399).abs() < 1e-12);
}

/// BerriAI/litellm#14849: Gemini 2.5 Pro with a cache hit, LiteLLM billed $0.7642 where the
/// right figure was $0.1849: it charged the cached tokens once at the input price (as part of
/// `prompt_tokens`) and again at the cache-read price. The issue's own recomputation mixed price
/// tiers, so its two figures cannot both come from one price list. With the snapshot's prices
/// (Gemini API, prompt > 200k: $2.50 input, $0.25 cache read, $15 output per million) this usage
/// reproduces both numbers exactly:
///   right: 40376 × 2.5e-6 + 231600 × 2.5e-7 + 1744 × 15e-6 = 0.10094 + 0.0579 + 0.02616 = 0.185
///   LiteLLM: 271976 × 2.5e-6 + 231600 × 2.5e-7 + 1744 × 15e-6 = 0.67994 + 0.0579 + 0.02616 = 0.764
#[test]
fn litellm_gemini_cache_hit_double_billing() {
    let u = usage(271_976, 231_600, 0, 0, 1_744, 0);
    let c = cost("gemini/gemini-2.5-pro", &u).unwrap();
    assert_eq!(c.total, usd("0.185"));
    assert_eq!(c.input, usd("0.10094"));
    assert_eq!(c.cache_read, usd("0.0579"));
    assert_eq!(c.output, usd("0.02616"));
    assert_eq!(c.above_tokens, 200_000);
    assert_ne!(c.total, usd("0.764"));

    // The exact usage (262,960 prompt, 257,955 cached, 1,744 output), today's prices:
    // 5005 × 2.5e-6 + 257955 × 2.5e-7 + 1744 × 15e-6 = 0.0125125 + 0.06448875 + 0.02616
    let u = usage(262_960, 257_955, 0, 0, 1_744, 0);
    assert_eq!(cost("gemini/gemini-2.5-pro", &u).unwrap().total, usd("0.10316125"));
}

// ---------------------------------------------------------------------------------------------
// Buckets
// ---------------------------------------------------------------------------------------------

/// GPT-4o: $2.50 input, $1.25 cached input, $10 output per million.
#[test]
fn openai_cached_input_is_a_subset_of_prompt() {
    let u = usage(1_000, 400, 0, 0, 500, 0);
    let c = cost("gpt-4o", &u).unwrap();
    assert_eq!(c.input, usd("0.0015")); // 600 × 2.5e-6
    assert_eq!(c.cache_read, usd("0.0005")); // 400 × 1.25e-6
    assert_eq!(c.output, usd("0.005")); // 500 × 1e-5
    assert_eq!(c.total, usd("0.007"));
    assert_eq!(c.model, Some("gpt-4o"));
}

/// Claude Sonnet 4.5: $3 input, $0.30 cache read, $3.75 5-minute write, $6 1-hour write, $15 output.
#[test]
fn anthropic_cache_read_and_both_write_ttls() {
    // 100 uncached + 2000 read + 1000 (5 min) + 500 (1 h) written = 3600 prompt tokens.
    let u = usage(3_600, 2_000, 1_500, 500, 400, 0);
    let c = cost("claude-sonnet-4-5", &u).unwrap();
    assert_eq!(c.input, usd("0.0003"));
    assert_eq!(c.cache_read, usd("0.0006"));
    assert_eq!(c.cache_creation, usd("0.00375"));
    assert_eq!(c.cache_creation_1h, usd("0.003"));
    assert_eq!(c.output, usd("0.006"));
    assert_eq!(c.total, usd("0.01365"));
}

/// Qwen Turbo (DashScope): $0.05 input, $0.20 output, $0.50 thinking output per million.
#[test]
fn reasoning_tokens_priced_once_at_the_reasoning_price() {
    let u = usage(1_000, 0, 0, 0, 3_000, 2_000);
    let c = cost("dashscope/qwen-turbo", &u).unwrap();
    assert_eq!(c.input, usd("0.00005"));
    assert_eq!(c.output, usd("0.0002")); // 1000 non-reasoning × 2e-7
    assert_eq!(c.reasoning, usd("0.001")); // 2000 × 5e-7
    assert_eq!(c.total, usd("0.00125"));
}

/// GPT-5 has no separate reasoning price: reasoning tokens are output tokens ($10/M), once.
#[test]
fn reasoning_without_its_own_price_is_output() {
    let u = usage(1_000, 0, 0, 0, 3_000, 2_000);
    let c = cost("gpt-5", &u).unwrap();
    assert_eq!(c.output, usd("0.01"));
    assert_eq!(c.reasoning, usd("0.02"));
    assert_eq!(c.total, usd("0.03125")); // 1000 × 1.25e-6 + 3000 × 1e-5
}

/// gpt-audio: text $2.50 in / $10 out, audio $32 in / $64 out per million.
#[test]
fn audio_tokens_in_and_out() {
    let mut u = Usage::new(1_200, 700);
    u.prompt_tokens_details = Some(PromptTokensDetails { audio_tokens: Some(1_000), ..Default::default() });
    u.completion_tokens_details =
        Some(CompletionTokensDetails { audio_tokens: Some(500), ..Default::default() });
    let c = cost("gpt-audio", &u).unwrap();
    assert_eq!(c.input, usd("0.0005")); // 200 × 2.5e-6
    assert_eq!(c.audio_input, usd("0.032")); // 1000 × 3.2e-5
    assert_eq!(c.output, usd("0.002")); // 200 × 1e-5
    assert_eq!(c.audio_output, usd("0.032")); // 500 × 6.4e-5
    assert_eq!(c.total, usd("0.0665"));
}

/// gpt-image-1: $5 text in, $10 image in, $40 image out per million tokens.
#[test]
fn image_tokens_in_and_out() {
    let mut u = Usage::new(1_100, 4_160);
    u.prompt_tokens_details = Some(PromptTokensDetails { image_tokens: Some(1_000), ..Default::default() });
    u.completion_tokens_details =
        Some(CompletionTokensDetails { image_tokens: Some(4_160), ..Default::default() });
    let c = cost("gpt-image-1", &u).unwrap();
    assert_eq!(c.input, usd("0.0005"));
    assert_eq!(c.image_input, usd("0.01"));
    assert_eq!(c.image_output, usd("0.1664"));
    assert_eq!(c.output, Usd::ZERO);
    assert_eq!(c.total, usd("0.1769"));
}

/// DALL·E 2 via AI/ML API: $0.026 per image.
#[test]
fn per_image_pricing() {
    let opts = CostOptions { output_images: 3, ..Default::default() };
    let c = cost_with("aiml/dall-e-2", &Usage::default(), &opts).unwrap();
    assert_eq!(c.image_output, usd("0.078"));
    assert_eq!(c.total, usd("0.078"));
}

/// Azure DALL·E 3 HD 1024×1024 is priced per pixel in the data ($8.39233e-8 per pixel, the
/// data's rendering of $0.088 per image): 1024 × 1024 × 8.39233e-8 = 0.0879999582208, exactly.
#[test]
fn per_pixel_pricing() {
    let opts = CostOptions { pixels: 1024 * 1024, ..Default::default() };
    let c = cost_with("azure/hd/1024-x-1024/dall-e-3", &Usage::default(), &opts).unwrap();
    assert_eq!(c.image_output, usd("0.0879999582208"));
}

/// Sora 2: $0.10 per second of video; Veo 3 on Vertex: $0.40 per second.
#[test]
fn per_second_video_output() {
    let opts = CostOptions { output_duration: Duration::from_secs(8), ..Default::default() };
    assert_eq!(cost_with("openai/sora-2", &Usage::default(), &opts).unwrap().seconds, usd("0.8"));
    assert_eq!(
        cost_with("vertex_ai/veo-3.0-generate-001", &Usage::default(), &opts).unwrap().total,
        usd("3.2")
    );
}

/// Whisper: $0.006 per minute = $0.0001 per second, billed on the exact duration here.
#[test]
fn per_second_pricing() {
    let opts = CostOptions { input_duration: Duration::from_millis(90_500), ..Default::default() };
    let c = cost_with("whisper-1", &Usage::default(), &opts).unwrap();
    assert_eq!(c.seconds, usd("0.00905"));
    assert_eq!(c.total, usd("0.00905"));
}

/// TTS-1: $15 per million characters.
#[test]
fn per_character_pricing() {
    let opts = CostOptions { input_characters: 1_000, ..Default::default() };
    let c = cost_with("tts-1", &Usage::default(), &opts).unwrap();
    assert_eq!(c.characters, usd("0.015"));
}

/// Amazon Rerank 1.0: $1 per 1,000 queries.
#[test]
fn per_query_pricing() {
    let opts = CostOptions { queries: 7, ..Default::default() };
    assert_eq!(cost_with("amazon.rerank-v1:0", &Usage::default(), &opts).unwrap().total, usd("0.007"));
}

/// text-embedding-3-small: $0.02 per million tokens; $0.01 in the batch API.
#[test]
fn embeddings() {
    let u = EmbeddingUsage { prompt_tokens: 12_345, total_tokens: 12_345, extra: Default::default() };
    let c = cost_embedding("text-embedding-3-small", &u, &CostOptions::default()).unwrap();
    assert_eq!(c.total, usd("0.0002469"));
    let c = cost_embedding("text-embedding-3-small", &u, &CostOptions::tier(ServiceTier::Batch)).unwrap();
    assert_eq!(c.total, usd("0.00012345"));
}

/// DeepSeek: cache hits at $0.028/M, misses $0.28/M, output $0.42/M.
#[test]
fn deepseek_cache_hits() {
    let u = usage(10_000, 8_000, 0, 0, 1_000, 0);
    let c = cost("deepseek/deepseek-chat", &u).unwrap();
    assert_eq!(c.total, usd("0.001204")); // 2000 × 2.8e-7 + 8000 × 2.8e-8 + 1000 × 4.2e-7
}

// ---------------------------------------------------------------------------------------------
// Tiers
// ---------------------------------------------------------------------------------------------

/// GPT-4o batch: $1.25 / $5; priority: $4.25 input, $2.125 cached, $17 output.
#[test]
fn openai_batch_and_priority_tiers() {
    let u = usage(1_000, 400, 0, 0, 500, 0);
    // Batch has no cached price for gpt-4o: the standard cached price applies to that bucket.
    let c = cost_with("gpt-4o", &u, &CostOptions::tier(ServiceTier::Batch)).unwrap();
    assert_eq!(c.input, usd("0.00075"));
    assert_eq!(c.cache_read, usd("0.0005"));
    assert_eq!(c.output, usd("0.0025"));
    assert!(c.tier_applied);
    assert_eq!(total("gpt-4o", &u, ServiceTier::Priority), usd("0.0119"));
}

/// GPT-5 flex: $0.625 input, $0.0625 cached, $5 output per million.
#[test]
fn openai_flex_tier() {
    let u = usage(10_000, 2_000, 0, 0, 3_000, 1_000);
    assert_eq!(total("gpt-5", &u, ServiceTier::Flex), usd("0.020125"));
}

#[test]
fn tier_the_model_lacks_falls_back_to_standard_and_says_so() {
    let u = usage(1_000, 0, 0, 0, 1_000, 0);
    let c = cost_with("deepseek/deepseek-chat", &u, &CostOptions::tier(ServiceTier::Flex)).unwrap();
    assert!(!c.tier_applied);
    assert_eq!(c.total, usd("0.0007"));
    assert_eq!(ServiceTier::from_service_tier("flex"), ServiceTier::Flex);
    assert_eq!(ServiceTier::from_service_tier("default"), ServiceTier::Standard);
}

// ---------------------------------------------------------------------------------------------
// Thresholds
// ---------------------------------------------------------------------------------------------

/// Gemini 2.5 Pro: $1.25 / $10 up to 200k prompt tokens, $2.50 / $15 above.
#[test]
fn gemini_200k_threshold_applies_strictly_above() {
    let at = usage(200_000, 0, 0, 0, 1_000, 0);
    let c = cost("gemini/gemini-2.5-pro", &at).unwrap();
    assert_eq!(c.total, usd("0.26")); // 200000 × 1.25e-6 + 1000 × 1e-5
    assert_eq!(c.above_tokens, 0);
    let above = usage(200_001, 0, 0, 0, 1_000, 0);
    let c = cost("gemini/gemini-2.5-pro", &above).unwrap();
    assert_eq!(c.total, usd("0.5150025")); // 200001 × 2.5e-6 + 1000 × 1.5e-5
    assert_eq!(c.above_tokens, 200_000);
}

/// Gemini 2.5 Pro above 200k, priority ($4.50 / $0.45 cached / $27) and batch ($1.25 / $0.25 / $7.50).
#[test]
fn threshold_combined_with_tier() {
    let u = usage(300_000, 100_000, 0, 0, 2_000, 0);
    // 200000 × 4.5e-6 + 100000 × 4.5e-7 + 2000 × 2.7e-5 = 0.9 + 0.045 + 0.054
    assert_eq!(total("gemini/gemini-2.5-pro", &u, ServiceTier::Priority), usd("0.999"));
    // 200000 × 1.25e-6 + 100000 × 2.5e-7 + 2000 × 7.5e-6 = 0.25 + 0.025 + 0.015
    assert_eq!(total("gemini/gemini-2.5-pro", &u, ServiceTier::Batch), usd("0.29"));
}

/// Claude Sonnet 4.5 on Bedrock, 1M context: above 200k input $6, 5-minute write $7.50, 1-hour
/// write $12, read $0.60, output $22.50 per million.
#[test]
fn anthropic_long_context_cache_write_thresholds() {
    let u = usage(250_000, 100_000, 60_000, 20_000, 1_000, 0);
    let c = cost("anthropic.claude-sonnet-4-5-20250929-v1:0", &u).unwrap();
    assert_eq!(c.input, usd("0.54")); // 90000 × 6e-6
    assert_eq!(c.cache_read, usd("0.06")); // 100000 × 6e-7
    assert_eq!(c.cache_creation, usd("0.3")); // 40000 × 7.5e-6
    assert_eq!(c.cache_creation_1h, usd("0.24")); // 20000 × 1.2e-5
    assert_eq!(c.output, usd("0.0225"));
    assert_eq!(c.total, usd("1.1625"));
}

/// GPT-5.4: $2.50 / $15 up to 272k, $5 / $22.50 above; flex above 272k $2.50 / $11.25.
#[test]
fn openai_272k_threshold_and_flex() {
    let u = usage(300_000, 0, 0, 0, 10_000, 0);
    assert_eq!(total("gpt-5.4", &u, ServiceTier::Standard), usd("1.725")); // 1.5 + 0.225
    assert_eq!(total("gpt-5.4", &u, ServiceTier::Flex), usd("0.8625")); // 0.75 + 0.1125
}

/// `tiered_pricing` ranges (Qwen Plus): $0.40 / $1.20 / $4 thinking up to 256k; $1.20 / $3.60 /
/// $12 above.
#[test]
fn tiered_pricing_ranges_are_thresholds() {
    let small = usage(1_000, 0, 0, 0, 1_000, 500);
    assert_eq!(cost("dashscope/qwen-plus-2025-07-28", &small).unwrap().total, usd("0.0030")); // 0.0004 + 0.0006 + 0.002
    let big = usage(300_000, 0, 0, 0, 1_000, 500);
    // 300000 × 1.2e-6 + 500 × 3.6e-6 + 500 × 1.2e-5 = 0.36 + 0.0018 + 0.006
    assert_eq!(cost("dashscope/qwen-plus-2025-07-28", &big).unwrap().total, usd("0.3678"));
}

/// The `_above_128k_tokens` keys (Gemini experimental models) are recognised.
#[test]
fn above_128k_keys_are_parsed() {
    let info = tollgate_pricing::model_info("gemini/gemma-3-27b-it").unwrap();
    let keys: Vec<_> = info.prices().map(|(k, _)| (k.kind, k.above_tokens)).collect();
    assert!(keys.contains(&(PriceKind::InputToken, 128_000)));
    assert!(keys.contains(&(PriceKind::InputCharacter, 128_000)));
}

// ---------------------------------------------------------------------------------------------
// Unknown models and custom prices
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_model_has_no_price_not_zero() {
    let err = cost("no-such-model-xyz", &Usage::new(10, 10)).unwrap_err();
    assert_eq!(err, CostError::UnknownModel("no-such-model-xyz".into()));
    assert!(err.to_string().contains("no price known"));
    // A prefix of a provider the entry does not belong to does not borrow another's price.
    assert!(cost("groq/gpt-4o", &Usage::new(10, 10)).is_err());
}

#[test]
fn custom_prices_price_unknown_models_and_override_the_table() {
    let custom = CustomPrices::new()
        .with(PriceKind::InputToken, usd("0.000001"))
        .with(PriceKind::OutputToken, usd("0.000002"));
    let opts = CostOptions::default().with_custom(&custom);
    let c = cost_with("my-finetune", &Usage::new(1_000, 500), &opts).unwrap();
    assert_eq!(c.total, usd("0.002"));
    assert_eq!(c.model, None);

    // Override on a known model: input and output custom, cache read still from the table.
    let u = usage(1_000, 400, 0, 0, 500, 0);
    let c = cost_with("gpt-4o", &u, &opts).unwrap();
    assert_eq!(c.input, usd("0.0006"));
    assert_eq!(c.cache_read, usd("0.0005"));
    assert_eq!(c.output, usd("0.001"));

    let mut by_name = CustomPrices::new();
    assert!(by_name.set_field("input_cost_per_token", Usd::from_f64(3e-6).unwrap()));
    assert!(!by_name.set_field("not_a_price", Usd::ZERO));
    assert_eq!(by_name.get(PriceKind::InputToken), Some(Usd::from_micros(3)));
}

#[test]
fn a_used_bucket_without_any_price_is_an_error() {
    // Whisper has no per-image price.
    let opts = CostOptions { output_images: 1, ..Default::default() };
    let err = cost_with("whisper-1", &Usage::default(), &opts).unwrap_err();
    assert!(matches!(err, CostError::MissingPrice { kind: PriceKind::OutputImage, units: 1, .. }), "{err}");
    // An unknown model with an empty custom price list is still unknown.
    let empty = CustomPrices::new();
    assert!(cost_with("nope", &Usage::new(1, 1), &CostOptions::default().with_custom(&empty)).is_err());
}

#[test]
fn inconsistent_usage_never_underflows() {
    // More cached than prompt tokens (a buggy upstream): no panic, nothing negative.
    let u = usage(10, 50, 0, 0, 0, 0);
    let c = cost("gpt-4o", &u).unwrap();
    assert_eq!(c.input, Usd::ZERO);
    assert_eq!(c.cache_read, usd("0.0000625"));
}

#[test]
fn cost_of_a_response_uses_its_model_usage_and_service_tier() {
    let mut resp: tollgate_core::ChatResponse = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
        "choices": [], "service_tier": "priority",
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
                  "prompt_tokens_details": {"cached_tokens": 400}}
    }))
    .unwrap();
    assert_eq!(tollgate_pricing::cost_of_response(&resp, None).unwrap().total, usd("0.0119"));
    resp.usage = None;
    assert_eq!(
        tollgate_pricing::cost_of_response(&resp, None).unwrap_err(),
        CostError::NoUsage("gpt-4o".into())
    );
}
