//! Model facts by name, with and without provider prefix.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tollgate_pricing::{
    Capability, Mode, PriceKind, Usd, context_window, max_output_tokens, model_count, model_info,
    model_info_for,
};

#[test]
fn table_has_every_model_of_the_snapshot() {
    // 4,553 keys in the data, minus `sample_spec` which documents the fields.
    assert_eq!(model_count(), 4_552);
    assert!(model_info("sample_spec").is_none());
    let names: Vec<_> = tollgate_pricing::all_models().map(|m| m.key()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "table must be sorted for binary search");
}

#[test]
fn gpt_4o_facts() {
    let m = model_info("gpt-4o").unwrap();
    assert_eq!(m.provider(), "openai");
    assert_eq!(m.mode(), Mode::Chat);
    assert_eq!(m.max_input_tokens(), Some(128_000));
    assert_eq!(m.max_output_tokens(), Some(16_384));
    assert_eq!(m.context_window(), Some(128_000));
    assert!(m.supports(Capability::FunctionCalling));
    assert!(m.supports(Capability::Vision));
    assert!(m.supports(Capability::ResponseSchema));
    assert!(m.supports(Capability::PromptCaching));
    assert!(!m.supports(Capability::Reasoning));
    assert_eq!(m.price(PriceKind::InputToken), Some("0.0000025".parse::<Usd>().unwrap()));
    assert_eq!(max_output_tokens("gpt-4o"), Some(16_384));
    assert_eq!(context_window("gpt-4o"), Some(128_000));
    assert!(m.capabilities().any(|c| c == Capability::ParallelFunctionCalling));
    assert_eq!(Capability::Vision.field_name(), "supports_vision");
}

#[test]
fn prefixed_and_unprefixed_lookup() {
    let plain = model_info("gpt-4o").unwrap();
    assert_eq!(model_info("openai/gpt-4o"), Some(plain));
    assert_eq!(model_info_for("openai", "gpt-4o"), Some(plain));
    // An exact prefixed key wins over the stripped name.
    let gemini = model_info("gemini/gemini-2.5-pro").unwrap();
    assert_eq!(gemini.provider(), "gemini");
    let vertex = model_info("gemini-2.5-pro").unwrap();
    assert_eq!(vertex.provider(), "vertex_ai-language-models");
    assert_ne!(gemini, vertex);
    // Sub-providers: vertex_ai/ finds the vertex_ai-language-models entry, bedrock/ the converse one.
    assert_eq!(model_info("vertex_ai/gemini-2.5-pro"), Some(vertex));
    assert_eq!(model_info_for("gemini", "gemini-2.5-pro"), Some(gemini));
    let claude = model_info("anthropic/claude-sonnet-4-5").unwrap();
    assert_eq!(claude.key(), "claude-sonnet-4-5");
    assert_eq!(claude.provider(), "anthropic");
    let bedrock = model_info("bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap();
    assert_eq!(bedrock.provider(), "bedrock_converse");
    assert_eq!(bedrock.max_input_tokens(), Some(200_000));
    // Extra path segments (a region) before the model id: the last segment, provider-checked.
    let regional = model_info("bedrock/us-east-1/anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap();
    assert_eq!(regional, bedrock);
    assert_eq!(model_info("groq/us-east-1/gpt-4o"), None);
    // A provider the entry does not belong to does not match; unknown names are None.
    assert_eq!(model_info("groq/gpt-4o"), None);
    assert_eq!(model_info_for("groq", "gpt-4o"), None);
    assert_eq!(model_info("GPT-4O"), None);
    assert_eq!(model_info(""), None);
    assert_eq!(max_output_tokens("nope"), None);
}

#[test]
fn modes_and_capabilities_across_families() {
    assert_eq!(model_info("text-embedding-3-small").unwrap().mode(), Mode::Embedding);
    assert_eq!(model_info("whisper-1").unwrap().mode(), Mode::AudioTranscription);
    assert_eq!(model_info("tts-1").unwrap().mode(), Mode::AudioSpeech);
    let o1 = model_info("o1").unwrap();
    assert!(o1.supports(Capability::Reasoning));
    let sonnet = model_info("claude-sonnet-4-5").unwrap();
    assert!(sonnet.supports(Capability::PromptCaching));
    assert!(sonnet.supports(Capability::ComputerUse));
    assert!(sonnet.has_tier(tollgate_pricing::ServiceTier::Batch));
    assert!(!sonnet.has_tier(tollgate_pricing::ServiceTier::Flex));
}

/// The generated table against the committed data: every model's limits, provider and every
/// standard-tier, no-threshold price, exactly (integer yoctodollars).
#[test]
fn generated_table_matches_the_snapshot_exactly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/model_prices_and_context_window.json");
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut prices_checked = 0;
    for (key, entry) in data.as_object().unwrap() {
        if key == "sample_spec" {
            continue;
        }
        let info = model_info(key).unwrap_or_else(|| panic!("{key} missing from the table"));
        assert_eq!(info.key(), key);
        assert_eq!(info.provider(), entry.get("litellm_provider").and_then(|v| v.as_str()).unwrap_or(""));
        let limit = |f: &str| entry.get(f).and_then(|v| v.as_u64()).filter(|v| *v != 0).map(|v| v as u32);
        assert_eq!(info.max_input_tokens(), limit("max_input_tokens"), "{key}");
        assert_eq!(info.max_output_tokens(), limit("max_output_tokens"), "{key}");
        for (field, value) in entry.as_object().unwrap() {
            let (Some(kind), Some(v)) = (PriceKind::from_field_name(field), value.as_f64()) else { continue };
            let expected = Usd::from_f64(v).unwrap();
            assert_eq!(info.price(kind), Some(expected), "{key}.{field}");
            // The exact decimal reads back as the very same float.
            assert_eq!(expected.to_f64().to_bits(), v.to_bits(), "{key}.{field}");
            prices_checked += 1;
        }
        for cap in Capability::ALL {
            let flag = entry.get(cap.field_name()).and_then(|v| v.as_bool()).unwrap_or(false);
            assert_eq!(info.supports(cap), flag, "{key}.{}", cap.field_name());
        }
    }
    assert!(prices_checked > 10_000, "{prices_checked}");
}
