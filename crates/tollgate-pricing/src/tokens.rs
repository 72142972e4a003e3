//! Token counting: OpenAI's BPE tokenizers and the chat-format overheads OpenAI documents.
//!
//! * Text: `o200k_base` (GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o-series) and `cl100k_base` (GPT-4,
//!   GPT-3.5, `text-embedding-3-*`, `text-embedding-ada-002`), from the `tiktoken-rs` crate, which
//!   ships the BPE ranks inside the crate (no download). Each tokenizer is built on first use and
//!   kept for the life of the process ([`is_loaded`] tells whether that happened).
//! * Chat messages (OpenAI cookbook, "How to count tokens with tiktoken"): 3 tokens per message,
//!   +1 when a `name` is set, the role, name and content tokens, and 3 tokens priming the reply.
//!   Tool definitions add the cookbook's `num_tokens_for_tools` overheads (7 per function for
//!   o200k models, 10 for cl100k models; 3 for the property list, 3 per property, −3 + 3 per
//!   enum item, 12 at the end). Tool calls in assistant messages count their name and arguments.
//! * Images: OpenAI's vision formula, see [`image_tokens`].
//! * Other families (Claude, Gemini, Llama, …): their tokenizers are not public or not shipped,
//!   so the count uses `o200k_base` with the same overheads and is flagged as an estimate
//!   ([`TokenCount::exact`] is `false`). Typically within ±15 % for English text.

use std::sync::OnceLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tollgate_core::chat::{ContentPart, Message, MessageContent, Tool};

/// An OpenAI BPE encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();

impl Encoding {
    fn cell(self) -> &'static OnceLock<Option<CoreBPE>> {
        match self {
            Encoding::O200kBase => &O200K,
            Encoding::Cl100kBase => &CL100K,
        }
    }

    /// The tokenizer, built on first use. `None` only if the crate's embedded ranks fail to load,
    /// which would be a packaging bug; callers then fall back to a byte-based estimate.
    fn bpe(self) -> Option<&'static CoreBPE> {
        self.cell()
            .get_or_init(|| match self {
                Encoding::O200kBase => tiktoken_rs::o200k_base().ok(),
                Encoding::Cl100kBase => tiktoken_rs::cl100k_base().ok(),
            })
            .as_ref()
    }

    /// Tokens in `text`, special-token strings counted as ordinary text (as the API does for user content).
    pub fn count(self, text: &str) -> usize {
        match self.bpe() {
            Some(bpe) => bpe.count_ordinary(text),
            None => text.len().div_ceil(4),
        }
    }

    /// The token ids of `text` (ordinary encoding).
    pub fn encode(self, text: &str) -> Vec<u32> {
        self.bpe().map(|bpe| bpe.encode_ordinary(text)).unwrap_or_default()
    }
}

/// Whether `encoding`'s tokenizer has been built yet (it loads lazily, once).
pub fn is_loaded(encoding: Encoding) -> bool {
    encoding.cell().get().is_some()
}

/// A token count and whether it used the model's own tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    pub tokens: u64,
    /// `true` for OpenAI models (their real tokenizer and documented overheads), `false` for an
    /// `o200k_base` approximation of another family's tokenizer.
    pub exact: bool,
}

/// The encoding for `model` (provider prefix ignored) and whether it is that model's own.
pub fn encoding_for_model(model: &str) -> (Encoding, bool) {
    let name = model.rsplit('/').next().unwrap_or(model);
    let name = name.strip_prefix("ft:").unwrap_or(name);
    const O200K_PREFIXES: &[&str] = &[
        "gpt-4o",
        "chatgpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "gpt-oss",
        "gpt-image",
        "computer-use",
    ];
    const CL100K_PREFIXES: &[&str] = &[
        "gpt-4",
        "gpt-3.5",
        "gpt-35",
        "text-embedding-3",
        "text-embedding-ada-002",
        "davinci-002",
        "babbage-002",
    ];
    if O200K_PREFIXES.iter().any(|p| name.starts_with(p)) {
        (Encoding::O200kBase, true)
    } else if CL100K_PREFIXES.iter().any(|p| name.starts_with(p)) {
        (Encoding::Cl100kBase, true)
    } else {
        (Encoding::O200kBase, false)
    }
}

/// Tokens in a plain string for `model`.
pub fn count_text(model: &str, text: &str) -> TokenCount {
    let (enc, exact) = encoding_for_model(model);
    TokenCount { tokens: enc.count(text) as u64, exact }
}

/// Image input detail (`image_url.detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageDetail {
    Low,
    High,
    /// The API picks; counted as `High` (the upper bound).
    #[default]
    Auto,
}

impl ImageDetail {
    pub fn parse(s: Option<&str>) -> ImageDetail {
        match s {
            Some("low") => ImageDetail::Low,
            Some("high") => ImageDetail::High,
            _ => ImageDetail::Auto,
        }
    }
}

/// Dimensions assumed for an image whose size is unknown (a URL not fetched): 1024×1024, which
/// at high detail is 765 tokens on GPT-4o.
pub const DEFAULT_IMAGE_SIZE: (u32, u32) = (1024, 1024);

/// Image input tokens on `model`, per OpenAI's vision guide ("Calculating costs"):
///
/// * tile models (GPT-4o, GPT-4.1, GPT-4.5, o1, o3; GPT-4o mini and computer-use with their own
///   constants): `low` = base tokens; `high` scales the image to fit 2048×2048, then its shortest
///   side to 768, and adds tile tokens per 512-px tile: GPT-4o 85 + 170 × tiles.
/// * patch models (GPT-4.1 mini/nano, GPT-5 mini/nano, o4-mini): 32-px patches, at most 1536
///   (the image is scaled down to fit), times the model's multiplier (1.62, 2.46, 1.72).
pub fn image_tokens(model: &str, size: Option<(u32, u32)>, detail: ImageDetail) -> u64 {
    let name = model.rsplit('/').next().unwrap_or(model);
    let (w, h) = size.unwrap_or(DEFAULT_IMAGE_SIZE);
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let patch_multiplier = [
        ("gpt-4.1-mini", 1.62),
        ("gpt-4.1-nano", 2.46),
        ("gpt-5-mini", 1.62),
        ("gpt-5-nano", 2.46),
        ("o4-mini", 1.72),
    ]
    .into_iter()
    .find(|(p, _)| name.starts_with(p))
    .map(|(_, m)| m);
    if let Some(mult) = patch_multiplier {
        const PATCH: f64 = 32.0;
        const MAX_PATCHES: f64 = 1536.0;
        let mut patches = (w / PATCH).ceil() * (h / PATCH).ceil();
        if patches > MAX_PATCHES {
            let mut r = (PATCH * PATCH * MAX_PATCHES / (w * h)).sqrt();
            let fit_w = (w * r / PATCH).floor() / (w * r / PATCH);
            let fit_h = (h * r / PATCH).floor() / (h * r / PATCH);
            r *= fit_w.min(fit_h);
            patches = ((w * r) / PATCH).ceil() * ((h * r) / PATCH).ceil();
        }
        return (patches.min(MAX_PATCHES) * mult).ceil() as u64;
    }
    let (base, per_tile) = if name.starts_with("gpt-4o-mini") {
        (2833, 5667)
    } else if name.starts_with("computer-use") {
        (65, 129)
    } else {
        (85, 170)
    };
    if detail == ImageDetail::Low {
        return base;
    }
    let (mut w, mut h) = (w, h);
    if w > 2048.0 || h > 2048.0 {
        let s = 2048.0 / w.max(h);
        w *= s;
        h *= s;
    }
    if w.min(h) > 768.0 {
        let s = 768.0 / w.min(h);
        w *= s;
        h *= s;
    }
    let tiles = ((w / 512.0).ceil() * (h / 512.0).ceil()) as u64;
    base + per_tile * tiles
}

const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_PER_NAME: u64 = 1;
const REPLY_PRIMING: u64 = 3;

/// Prompt tokens for a chat request: messages (with images at the default size) and tools.
pub fn count_chat(model: &str, messages: &[Message], tools: &[Tool]) -> TokenCount {
    count_chat_with_images(model, messages, tools, &|_| None)
}

/// Like [`count_chat`], with `image_size` giving an image's dimensions from its URL when known.
pub fn count_chat_with_images(
    model: &str,
    messages: &[Message],
    tools: &[Tool],
    image_size: &dyn Fn(&str) -> Option<(u32, u32)>,
) -> TokenCount {
    let (enc, exact) = encoding_for_model(model);
    let mut n = 0u64;
    for m in messages {
        n += TOKENS_PER_MESSAGE;
        n += enc.count(m.role.as_str()) as u64;
        if let Some(name) = &m.name {
            n += enc.count(name) as u64 + TOKENS_PER_NAME;
        }
        match &m.content {
            Some(MessageContent::Text(t)) => n += enc.count(t) as u64,
            Some(MessageContent::Parts(parts)) => {
                for part in parts {
                    n += part_tokens(enc, model, part, image_size);
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            n += enc.count(&call.function.name) as u64 + enc.count(&call.function.arguments) as u64;
        }
        if let Some(id) = &m.tool_call_id {
            n += enc.count(id) as u64;
        }
    }
    n += REPLY_PRIMING;
    n += tools_tokens(enc, tools);
    TokenCount { tokens: n, exact }
}

fn part_tokens(
    enc: Encoding,
    model: &str,
    part: &ContentPart,
    image_size: &dyn Fn(&str) -> Option<(u32, u32)>,
) -> u64 {
    match part {
        ContentPart::Text(t) => enc.count(&t.text) as u64,
        ContentPart::ImageUrl(img) => {
            let detail = ImageDetail::parse(img.image_url.detail.as_deref());
            image_tokens(model, image_size(&img.image_url.url), detail)
        }
        ContentPart::Refusal(r) => enc.count(&r.refusal) as u64,
        // Audio and files are tokenized by the provider from their decoded contents; their size
        // cannot be derived from the base64 here. Counted as zero (documented limitation).
        _ => 0,
    }
}

/// The tool-definition overhead from OpenAI's cookbook (`num_tokens_for_tools`).
fn tools_tokens(enc: Encoding, tools: &[Tool]) -> u64 {
    let functions: Vec<_> = tools.iter().filter_map(|t| t.function.as_ref()).collect();
    if functions.is_empty() {
        return 0;
    }
    let func_init: i64 = if enc == Encoding::Cl100kBase { 10 } else { 7 };
    let (prop_init, prop_key, enum_init, enum_item, func_end) = (3i64, 3i64, -3i64, 3i64, 12i64);
    let mut n: i64 = 0;
    for f in functions {
        n += func_init;
        let desc = f.description.as_deref().unwrap_or("");
        let desc = desc.strip_suffix('.').unwrap_or(desc);
        n += enc.count(&format!("{}:{desc}", f.name)) as i64;
        let props = f.parameters.as_ref().and_then(|p| p.get("properties")).and_then(Value::as_object);
        if let Some(props) = props.filter(|p| !p.is_empty()) {
            n += prop_init;
            for (key, schema) in props {
                n += prop_key;
                let ty = match schema.get("type") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                if let Some(items) = schema.get("enum").and_then(Value::as_array) {
                    n += enum_init;
                    for item in items {
                        n += enum_item;
                        let text = item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string());
                        n += enc.count(&text) as i64;
                    }
                }
                let pdesc = schema.get("description").and_then(Value::as_str).unwrap_or("");
                let pdesc = pdesc.strip_suffix('.').unwrap_or(pdesc);
                n += enc.count(&format!("{key}:{ty}:{pdesc}")) as i64;
            }
        }
    }
    n += func_end;
    n.max(0) as u64
}
