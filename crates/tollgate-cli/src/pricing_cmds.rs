//! `tollgate models` and `tollgate cost`: the price table and exact costs, for people and scripts.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use tollgate_core::chat::{ChatRequest, CompletionTokensDetails, PromptTokensDetails, Usage};
use tollgate_pricing::{
    Capability, CostBreakdown, CostOptions, Mode, ModelInfo, PriceKind, ServiceTier, Usd,
};

/// Writes `text` to stdout; a closed pipe (`tollgate models | head`) is not an error.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The exit code for usage mistakes and unknown models.
pub(crate) fn not_found() -> ExitCode {
    ExitCode::from(2)
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Chat => "chat",
        Mode::Completion => "completion",
        Mode::Responses => "responses",
        Mode::Embedding => "embedding",
        Mode::ImageGeneration => "image_generation",
        Mode::ImageEdit => "image_edit",
        Mode::AudioTranscription => "audio_transcription",
        Mode::AudioSpeech => "audio_speech",
        Mode::Realtime => "realtime",
        Mode::VideoGeneration => "video_generation",
        Mode::Rerank => "rerank",
        Mode::Moderation => "moderation",
        Mode::Search => "search",
        Mode::Ocr => "ocr",
        Mode::Other(s) => s,
        _ => "",
    }
}

/// `vision` for `supports_vision`.
fn capability_name(c: Capability) -> &'static str {
    c.field_name().trim_start_matches("supports_")
}

/// A per-token price as dollars per million tokens (exact).
fn per_million(price: Option<Usd>) -> Option<String> {
    price.and_then(|p| p.checked_mul(1_000_000)).map(|p| p.to_string())
}

pub(crate) struct ModelsArgs<'a> {
    pub filter: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub supports: &'a [String],
    pub json: bool,
}

pub(crate) fn models(args: &ModelsArgs<'_>) -> ExitCode {
    let mut wanted = Vec::new();
    for s in args.supports {
        let name = s.trim_start_matches("supports_");
        match Capability::ALL.iter().find(|c| capability_name(**c) == name) {
            Some(c) => wanted.push(*c),
            None => {
                eprintln!("error: unknown capability `{s}`; known capabilities:");
                for c in Capability::ALL {
                    eprintln!("  {}", capability_name(c));
                }
                return not_found();
            }
        }
    }
    let filter = args.filter.map(str::to_lowercase);
    let rows: Vec<ModelInfo> = tollgate_pricing::all_models()
        .filter(|m| filter.as_deref().is_none_or(|f| m.key().to_lowercase().contains(f)))
        .filter(|m| {
            args.provider.is_none_or(|p| m.provider() == p || m.provider().starts_with(&format!("{p}_")))
        })
        .filter(|m| args.mode.is_none_or(|md| mode_name(m.mode()) == md))
        .filter(|m| wanted.iter().all(|c| m.supports(*c)))
        .collect();
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|m| {
                json!({
                    "model": m.key(),
                    "provider": m.provider(),
                    "mode": mode_name(m.mode()),
                    "context_window": m.context_window(),
                    "max_output_tokens": m.max_output_tokens(),
                    "input_cost_per_million_tokens": per_million(m.price(PriceKind::InputToken)),
                    "output_cost_per_million_tokens": per_million(m.price(PriceKind::OutputToken)),
                    "capabilities": m.capabilities().map(capability_name).collect::<Vec<_>>(),
                })
            })
            .collect();
        emit(&format!("{}\n", serde_json::Value::Array(list)));
        return ExitCode::SUCCESS;
    }
    if rows.is_empty() {
        eprintln!("no model matches; try a shorter filter or `tollgate models --help`");
        return not_found();
    }
    let header = ["MODEL", "PROVIDER", "CONTEXT", "MAX OUT", "IN $/1M", "OUT $/1M", "CAPABILITIES"];
    let opt = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|m| {
            [
                m.key().to_owned(),
                m.provider().to_owned(),
                opt(m.context_window()),
                opt(m.max_output_tokens()),
                per_million(m.price(PriceKind::InputToken)).unwrap_or_else(|| "-".into()),
                per_million(m.price(PriceKind::OutputToken)).unwrap_or_else(|| "-".into()),
                m.capabilities().map(capability_name).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let colour = std::io::stdout().is_terminal();
    let (bold, reset) = if colour { ("\x1b[1m", "\x1b[0m") } else { ("", "") };
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let numeric = (2..=5).contains(&i);
            if i == cells.len() - 1 {
                s.push_str(cell);
            } else if numeric {
                s.push_str(&format!("{cell:>w$}  "));
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut text = format!("{bold}{}{reset}\n", line(&header.map(String::from)));
    for row in &table {
        text.push_str(&line(row));
        text.push('\n');
    }
    text.push_str(&format!("{} model(s)\n", table.len()));
    emit(&text);
    ExitCode::SUCCESS
}

pub(crate) struct CostArgs<'a> {
    pub models: &'a str,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    pub tier: Option<&'a str>,
    pub request: Option<&'a Path>,
    pub json: bool,
}

fn buckets(b: &CostBreakdown) -> [(&'static str, Usd); 12] {
    [
        ("input", b.input),
        ("cache_read", b.cache_read),
        ("cache_creation", b.cache_creation),
        ("cache_creation_1h", b.cache_creation_1h),
        ("output", b.output),
        ("reasoning", b.reasoning),
        ("audio_input", b.audio_input),
        ("audio_output", b.audio_output),
        ("image_input", b.image_input),
        ("image_output", b.image_output),
        ("seconds", b.seconds),
        ("characters", b.characters),
    ]
}

pub(crate) fn cost(args: &CostArgs<'_>) -> ExitCode {
    let models: Vec<&str> = args.models.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
    if models.is_empty() {
        eprintln!("error: name at least one model (`tollgate cost gpt-4o --prompt-tokens 1000 …`)");
        return not_found();
    }
    let request = match args.request {
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|t| {
                    serde_json::from_str::<ChatRequest>(&t)
                        .map_err(|e| format!("{} is not an OpenAI chat request: {e}", path.display()))
                });
            match parsed {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    if request.is_none() && args.prompt_tokens.is_none() {
        eprintln!("error: give --prompt-tokens N (and --completion-tokens M), or --request FILE");
        return not_found();
    }
    let tier = args.tier.map(ServiceTier::from_service_tier).unwrap_or_default();
    let opts = CostOptions::tier(tier);
    let mut results = Vec::new();
    let mut unknown = Vec::new();
    for model in &models {
        let prompt = match &request {
            Some(r) => {
                let tools = r.tools.as_deref().unwrap_or(&[]);
                tollgate_pricing::tokens::count_chat(model, &r.messages, tools).tokens
            }
            None => args.prompt_tokens.unwrap_or(0),
        };
        let mut usage = Usage::new(prompt, args.completion_tokens);
        if args.cached_tokens > 0 || args.cache_creation_tokens > 0 {
            usage.prompt_tokens_details = Some(PromptTokensDetails {
                cached_tokens: (args.cached_tokens > 0).then_some(args.cached_tokens),
                cache_creation_tokens: (args.cache_creation_tokens > 0).then_some(args.cache_creation_tokens),
                ..PromptTokensDetails::default()
            });
        }
        if args.reasoning_tokens > 0 {
            usage.completion_tokens_details = Some(CompletionTokensDetails {
                reasoning_tokens: Some(args.reasoning_tokens),
                ..CompletionTokensDetails::default()
            });
        }
        match tollgate_pricing::cost_with(model, &usage, &opts) {
            Ok(b) => results.push((*model, prompt, b)),
            Err(e) => unknown.push((*model, e.to_string())),
        }
    }
    if args.json {
        let priced: Vec<_> = results
            .iter()
            .map(|(m, prompt, b)| {
                let mut obj = serde_json::Map::new();
                obj.insert("model".into(), json!(m));
                obj.insert("prompt_tokens".into(), json!(prompt));
                obj.insert("completion_tokens".into(), json!(args.completion_tokens));
                for (name, amount) in buckets(b) {
                    if !amount.is_zero() {
                        obj.insert(name.into(), json!(amount.to_string()));
                    }
                }
                obj.insert("total".into(), json!(b.total.to_string()));
                serde_json::Value::Object(obj)
            })
            .collect();
        let errors: Vec<_> = unknown.iter().map(|(m, e)| json!({"model": m, "error": e})).collect();
        emit(&format!("{}\n", json!({"costs": priced, "errors": errors})));
    } else {
        let mut text = String::new();
        for (m, prompt, b) in &results {
            let tier = match (args.tier, b.tier_applied) {
                (Some(t), true) => format!(", {t} tier"),
                (Some(t), false) => format!(", no {t} price: standard tier"),
                (None, _) => String::new(),
            };
            text.push_str(&format!(
                "{m}: {prompt} prompt + {} completion tokens{tier}\n",
                args.completion_tokens
            ));
            for (name, amount) in buckets(b) {
                if !amount.is_zero() {
                    text.push_str(&format!("  {name:<18} ${amount}\n"));
                }
            }
            text.push_str(&format!("  {:<18} ${}\n", "total", b.total));
        }
        emit(&text);
        for (_, e) in &unknown {
            if results.is_empty() {
                eprintln!("error: {e}");
            } else {
                eprintln!("note: {e}");
            }
        }
    }
    if results.is_empty() { not_found() } else { ExitCode::SUCCESS }
}
