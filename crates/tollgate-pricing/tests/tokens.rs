//! Token counts on known strings, checked against tiktoken's published values and the examples
//! of OpenAI's cookbook "How to count tokens with tiktoken" (whose counts OpenAI's API confirmed).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use serde_json::json;
use tollgate_core::chat::{ContentPart, ImagePart, ImageUrl, Message, MessageContent, Tool};
use tollgate_pricing::tokens::{
    Encoding, ImageDetail, count_chat, count_chat_with_images, count_text, encoding_for_model, image_tokens,
};

#[test]
fn tiktoken_reference_strings() {
    // The cookbook's example: "tiktoken is great!" is 6 cl100k tokens.
    assert_eq!(Encoding::Cl100kBase.encode("tiktoken is great!"), vec![83, 1609, 5963, 374, 2294, 0]);
    assert_eq!(Encoding::Cl100kBase.count("antidisestablishmentarianism"), 6);
    assert_eq!(Encoding::O200kBase.count("antidisestablishmentarianism"), 6);
    assert_eq!(Encoding::Cl100kBase.count("2 + 2 = 4"), 7);
    assert_eq!(Encoding::O200kBase.count("2 + 2 = 4"), 7);
    assert_eq!(Encoding::Cl100kBase.count("お誕生日おめでとう"), 9);
    assert_eq!(Encoding::O200kBase.count("お誕生日おめでとう"), 8);
    // Special-token text in user content is ordinary text, not a special token.
    assert!(Encoding::O200kBase.count("<|endoftext|>") > 1);
}

#[test]
fn encodings_per_family() {
    assert_eq!(encoding_for_model("gpt-4o-mini"), (Encoding::O200kBase, true));
    assert_eq!(encoding_for_model("openai/gpt-5"), (Encoding::O200kBase, true));
    assert_eq!(encoding_for_model("o3-mini"), (Encoding::O200kBase, true));
    assert_eq!(encoding_for_model("gpt-4-0613"), (Encoding::Cl100kBase, true));
    assert_eq!(encoding_for_model("gpt-3.5-turbo"), (Encoding::Cl100kBase, true));
    assert_eq!(encoding_for_model("text-embedding-3-small"), (Encoding::Cl100kBase, true));
    // Other families: o200k as an approximation, flagged as an estimate.
    assert_eq!(encoding_for_model("anthropic/claude-sonnet-4-5"), (Encoding::O200kBase, false));
    assert!(!count_text("gemini-2.5-pro", "hi").exact);
}

fn named(mut m: Message, name: &str) -> Message {
    m.name = Some(name.into());
    m
}

/// The cookbook's six-message example: 129 prompt tokens on gpt-3.5-turbo / gpt-4, 124 on gpt-4o.
#[test]
fn cookbook_chat_example() {
    let messages = vec![
        Message::system(
            "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
        ),
        named(Message::system("New synergies will help drive top-line growth."), "example_user"),
        named(Message::system("Things working well together will increase revenue."), "example_assistant"),
        named(
            Message::system(
                "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
            ),
            "example_user",
        ),
        named(
            Message::system("Let's talk later when we're less busy about how to do better."),
            "example_assistant",
        ),
        Message::user(
            "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        ),
    ];
    assert_eq!(count_chat("gpt-4", &messages, &[]).tokens, 129);
    assert_eq!(count_chat("gpt-3.5-turbo", &messages, &[]).tokens, 129);
    let c = count_chat("gpt-4o", &messages, &[]);
    assert_eq!(c.tokens, 124);
    assert!(c.exact);
}

/// The cookbook's tool example: 105 prompt tokens on gpt-3.5-turbo / gpt-4, 101 on gpt-4o.
#[test]
fn cookbook_tools_example() {
    let tools = vec![Tool::function(
        "get_current_weather",
        "Get the current weather in a given location",
        json!({
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                "unit": {"type": "string", "description": "The unit of temperature to return",
                         "enum": ["celsius", "fahrenheit"]}
            },
            "required": ["location"]
        }),
    )];
    let messages = vec![
        Message::system("You are a helpful assistant that can answer to questions about the weather."),
        Message::user("What's the weather like in San Francisco?"),
    ];
    assert_eq!(count_chat("gpt-4", &messages, &tools).tokens, 105);
    assert_eq!(count_chat("gpt-4o", &messages, &tools).tokens, 101);
    assert_eq!(count_chat("gpt-4o-mini", &messages, &tools).tokens, 101);
}

/// OpenAI's vision guide examples (GPT-4o): 1024×1024 high = 765; 2048×4096 high = 1105; low = 85.
#[test]
fn image_token_formula() {
    assert_eq!(image_tokens("gpt-4o", Some((1024, 1024)), ImageDetail::High), 765);
    assert_eq!(image_tokens("gpt-4o", Some((2048, 4096)), ImageDetail::High), 1105);
    assert_eq!(image_tokens("gpt-4o", Some((4096, 8192)), ImageDetail::Low), 85);
    assert_eq!(image_tokens("gpt-4o", Some((512, 512)), ImageDetail::Auto), 255);
    // GPT-4o mini's constants: 2833 + 5667 × tiles.
    assert_eq!(image_tokens("gpt-4o-mini", Some((1024, 1024)), ImageDetail::High), 2833 + 4 * 5667);
    // Unknown size: the documented default 1024×1024.
    assert_eq!(image_tokens("gpt-4o", None, ImageDetail::High), 765);
    // Patch models: 1024×1024 = 32×32 patches = 1024 × 1.62 (GPT-4.1 mini), rounded up.
    assert_eq!(image_tokens("gpt-4.1-mini", Some((1024, 1024)), ImageDetail::High), 1659);
    // Oversized: capped at 1536 patches before the multiplier.
    assert!(
        image_tokens("gpt-4.1-mini", Some((4096, 4096)), ImageDetail::High)
            <= (1536.0f64 * 1.62).ceil() as u64
    );
}

#[test]
fn images_inside_messages() {
    let img = |detail: &str| {
        ContentPart::ImageUrl(ImagePart {
            image_url: ImageUrl {
                url: "https://example.com/a.png".into(),
                detail: Some(detail.into()),
                extra: Default::default(),
            },
            extra: Default::default(),
        })
    };
    let text_only = vec![Message::user("What is in this image?")];
    let base = count_chat("gpt-4o", &text_only, &[]).tokens;
    let mut with_image = Message::user("What is in this image?");
    with_image.content =
        Some(MessageContent::Parts(vec![ContentPart::text("What is in this image?"), img("low")]));
    assert_eq!(count_chat("gpt-4o", &[with_image.clone()], &[]).tokens, base + 85);
    with_image.content =
        Some(MessageContent::Parts(vec![ContentPart::text("What is in this image?"), img("high")]));
    let sized = count_chat_with_images("gpt-4o", &[with_image], &[], &|_| Some((2048, 4096)));
    assert_eq!(sized.tokens, base + 1105);
}
