//! Canonical requests → Ollama `POST /api/chat` and `POST /api/embed` requests.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tollgate_core::chat::{ContentPart, MessageContent, ResponseFormat, ToolChoice, ToolChoiceMode};
use tollgate_core::embedding::EmbeddingRequest;
use tollgate_core::{ChatRequest, Message, ProviderError, Role, UpstreamConfig};

/// Where a local Ollama listens by default.
pub const DEFAULT_API_BASE: &str = "http://localhost:11434";

type Obj = Map<String, Value>;

/// Request fields that are Ollama model options: given at the top level of a request (as
/// LiteLLM users do), they are moved into `options`.
const OPTION_KEYS: &[&str] = &[
    "top_k",
    "min_p",
    "typical_p",
    "num_ctx",
    "num_keep",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "num_predict",
    "repeat_last_n",
    "repeat_penalty",
    "mirostat",
    "mirostat_eta",
    "mirostat_tau",
    "tfs_z",
    "penalize_newline",
    "use_mmap",
    "use_mlock",
    "numa",
    "low_vram",
];

/// `{base}/api/{endpoint}`; a base without a scheme (`OLLAMA_HOST=127.0.0.1:11434`) gets `http://`,
/// and a base that already ends in `/api` or `/api/{endpoint}` is respected.
fn endpoint_url(cfg: &UpstreamConfig, endpoint: &str) -> String {
    let raw = cfg.api_base.as_deref().unwrap_or(DEFAULT_API_BASE).trim().trim_end_matches('/');
    let base = if raw.contains("://") { raw.to_owned() } else { format!("http://{raw}") };
    let full = format!("/api/{endpoint}");
    if base.ends_with(&full) {
        base
    } else if base.ends_with("/api") {
        format!("{base}/{endpoint}")
    } else {
        format!("{base}{full}")
    }
}

fn build_http(
    url: &str,
    body: &Obj,
    cfg: &UpstreamConfig,
    stream: bool,
) -> Result<http::Request<Bytes>, ProviderError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ProviderError::bad_request(format!("cannot serialise the Ollama request: {e}")))?;
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, if stream { "application/x-ndjson" } else { "application/json" });
    if let Some(key) = cfg.api_key.as_ref().or(cfg.bearer_token.as_ref()).filter(|k| !k.is_empty()) {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {}", key.expose()));
    }
    for (name, value) in &cfg.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Bytes::from(bytes))
        .map_err(|e| ProviderError::bad_request(format!("invalid Ollama request (url or header): {e}")))
}

/// Moves option-like top-level fields into `options`, merges an explicit `options` object, and
/// passes everything else through at the top level.
fn apply_extra(body: &mut Obj, options: &mut Obj, extra: &Obj) {
    for (k, v) in extra {
        if k == "options" {
            if let Value::Object(o) = v {
                for (ok, ov) in o {
                    options.insert(ok.clone(), ov.clone());
                }
            }
        } else if OPTION_KEYS.contains(&k.as_str()) {
            options.insert(k.clone(), v.clone());
        } else {
            body.insert(k.clone(), v.clone());
        }
    }
}

fn unsupported_chat_params(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if req.n.is_some_and(|n| n != 1) {
        out.push("n");
    }
    if matches!(
        req.tool_choice,
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) | Some(ToolChoice::Named(_))
    ) {
        out.push("tool_choice");
    }
    if req.logprobs == Some(true) {
        out.push("logprobs");
    }
    out.extend(req.set_params(&[
        "logit_bias",
        "top_logprobs",
        "service_tier",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "functions",
        "function_call",
    ]));
    out
}

pub(crate) fn chat_request(
    provider: &str,
    req: &ChatRequest,
    cfg: &UpstreamConfig,
) -> Result<http::Request<Bytes>, ProviderError> {
    let unsupported = unsupported_chat_params(req);
    if !unsupported.is_empty() && !cfg.drop_params {
        return Err(ProviderError::unsupported_params(provider, &cfg.model, &unsupported));
    }
    let stream = req.is_stream();
    let mut body = Obj::new();
    body.insert("model".into(), Value::String(cfg.model.clone()));
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        messages.push(message(m, &req.messages[..i])?);
    }
    body.insert("messages".into(), Value::Array(messages));
    // Ollama streams unless told otherwise: always say which.
    body.insert("stream".into(), Value::Bool(stream));

    // `tool_choice: none` is expressed by not offering the tools.
    let tools_off = matches!(req.tool_choice, Some(ToolChoice::Mode(ToolChoiceMode::None)));
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty() && !tools_off) {
        let wire = tools
            .iter()
            .map(|t| match (&t.function, t.kind.as_str()) {
                (Some(f), "function") => {
                    let mut func = Obj::new();
                    func.insert("name".into(), Value::String(f.name.clone()));
                    if let Some(d) = &f.description {
                        func.insert("description".into(), Value::String(d.clone()));
                    }
                    if let Some(p) = &f.parameters {
                        func.insert("parameters".into(), p.clone());
                    }
                    Ok(json!({"type": "function", "function": func}))
                }
                _ => Err(ProviderError::bad_request(format!(
                    "Ollama only supports function tools, not `{}`",
                    t.kind
                ))
                .with_param("tools")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        body.insert("tools".into(), Value::Array(wire));
    }

    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            body.insert("format".into(), Value::String("json".into()));
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema.schema.clone().unwrap_or_else(|| json!({"type": "object"}));
            body.insert("format".into(), schema);
        }
        Some(ResponseFormat::Text) | None => {}
    }

    if let Some(effort) = &req.reasoning_effort {
        body.insert("think".into(), think(effort)?);
    }

    let mut options = Obj::new();
    if let Some(max) = req.output_token_limit() {
        options.insert("num_predict".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        options.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        options.insert("stop".into(), json!(stop.to_vec()));
    }
    if let Some(seed) = req.seed {
        options.insert("seed".into(), json!(seed));
    }
    if let Some(f) = req.frequency_penalty {
        options.insert("frequency_penalty".into(), json!(f));
    }
    if let Some(p) = req.presence_penalty {
        options.insert("presence_penalty".into(), json!(p));
    }
    apply_extra(&mut body, &mut options, &req.extra);
    apply_extra(&mut body, &mut options, &cfg.extra_body);
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    build_http(&endpoint_url(cfg, "chat"), &body, cfg, stream)
}

/// `reasoning_effort` → Ollama's `think`: `none` turns thinking off; the levels pass through
/// (gpt-oss uses them; other thinking models treat any level as "on"); `minimal` becomes `low`.
fn think(effort: &str) -> Result<Value, ProviderError> {
    Ok(match effort {
        "none" | "disable" | "disabled" => Value::Bool(false),
        "minimal" | "low" => Value::String("low".into()),
        "medium" => Value::String("medium".into()),
        "high" => Value::String("high".into()),
        other => {
            return Err(ProviderError::bad_request(format!(
                "unknown reasoning_effort `{other}` (expected none, minimal, low, medium or high)"
            ))
            .with_param("reasoning_effort"));
        }
    })
}

fn part_type(p: &ContentPart) -> String {
    match p {
        ContentPart::Text(_) => "text".into(),
        ContentPart::ImageUrl(_) => "image_url".into(),
        ContentPart::InputAudio(_) => "input_audio".into(),
        ContentPart::File(_) => "file".into(),
        ContentPart::Refusal(_) => "refusal".into(),
        ContentPart::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
    }
}

/// The base64 payload of a `data:<mime>;base64,<data>` URI.
fn data_uri_base64(url: &str) -> Result<String, ProviderError> {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',')
            && meta.ends_with(";base64")
        {
            return Ok(data.to_owned());
        }
        return Err(ProviderError::bad_request("image data URIs for Ollama must be base64-encoded")
            .with_param("messages"));
    }
    Err(ProviderError::bad_request(format!(
        "Ollama needs images inline: send a base64 `data:` URI instead of the URL `{}`",
        url.chars().take(100).collect::<String>()
    ))
    .with_param("messages"))
}

/// Text and images of a message's content (`images` only for roles that carry them).
fn content_and_images(m: &Message, allow_images: bool) -> Result<(String, Vec<String>), ProviderError> {
    match &m.content {
        None => Ok((String::new(), Vec::new())),
        Some(MessageContent::Text(t)) => Ok((t.clone(), Vec::new())),
        Some(MessageContent::Parts(parts)) => {
            let mut texts: Vec<&str> = Vec::new();
            let mut images = Vec::new();
            for p in parts {
                match p {
                    ContentPart::Text(t) => texts.push(&t.text),
                    ContentPart::ImageUrl(img) if allow_images => {
                        images.push(data_uri_base64(&img.image_url.url)?)
                    }
                    other => {
                        return Err(ProviderError::bad_request(format!(
                            "Ollama does not accept `{}` content parts in {} messages",
                            part_type(other),
                            m.role.as_str()
                        ))
                        .with_param("messages"));
                    }
                }
            }
            Ok((texts.join("\n"), images))
        }
    }
}

/// The name of the function a tool message answers: from the nearest earlier assistant turn
/// that made the call.
fn tool_name_for<'a>(id: &str, earlier: &'a [Message]) -> Option<&'a str> {
    earlier
        .iter()
        .rev()
        .filter(|m| m.role == Role::Assistant)
        .find_map(|m| m.tool_calls.as_ref()?.iter().find(|c| c.id == id).map(|c| c.function.name.as_str()))
}

fn message(m: &Message, earlier: &[Message]) -> Result<Value, ProviderError> {
    let mut out = Obj::new();
    let role = match m.role {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        Role::Function => {
            return Err(ProviderError::bad_request(
                "legacy `function` messages are not supported by Ollama; use tools and `tool` messages",
            )
            .with_param("messages"));
        }
    };
    out.insert("role".into(), role.into());
    let (text, images) = content_and_images(m, m.role == Role::User)?;
    out.insert("content".into(), Value::String(text));
    if !images.is_empty() {
        out.insert("images".into(), json!(images));
    }
    if m.role == Role::Assistant {
        if let Some(thinking) = m.reasoning_content.as_ref().filter(|t| !t.is_empty()) {
            out.insert("thinking".into(), Value::String(thinking.clone()));
        }
        if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
            let wire = calls
                .iter()
                .map(|c| {
                    // Ollama's arguments are a JSON object, OpenAI's a JSON-encoded string.
                    let args: Value = if c.function.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&c.function.arguments).map_err(|e| {
                            ProviderError::bad_request(format!(
                                "tool call `{}` has arguments that are not JSON ({e}); Ollama needs a JSON object",
                                c.id
                            ))
                            .with_param("messages")
                        })?
                    };
                    Ok(json!({"function": {"name": c.function.name, "arguments": args}}))
                })
                .collect::<Result<Vec<_>, ProviderError>>()?;
            out.insert("tool_calls".into(), Value::Array(wire));
        }
    }
    if m.role == Role::Tool
        && let Some(name) = m.tool_call_id.as_deref().and_then(|id| tool_name_for(id, earlier))
    {
        out.insert("tool_name".into(), Value::String(name.to_owned()));
    }
    Ok(Value::Object(out))
}

pub(crate) fn embedding_request(
    provider: &str,
    req: &EmbeddingRequest,
    cfg: &UpstreamConfig,
) -> Result<http::Request<Bytes>, ProviderError> {
    let texts = req.input.as_texts().ok_or_else(|| {
        ProviderError::bad_request("Ollama embeds text; token-array input is not supported")
            .with_param("input")
    })?;
    if req.encoding_format.as_deref().is_some_and(|f| f != "float") && !cfg.drop_params {
        return Err(ProviderError::unsupported_params(provider, &cfg.model, &["encoding_format"]));
    }
    let mut body = Obj::new();
    body.insert("model".into(), Value::String(cfg.model.clone()));
    let input = match &req.input {
        tollgate_core::embedding::EmbeddingInput::Text(t) => Value::String(t.clone()),
        _ => json!(texts),
    };
    body.insert("input".into(), input);
    if let Some(d) = req.dimensions {
        body.insert("dimensions".into(), json!(d));
    }
    let mut options = Obj::new();
    apply_extra(&mut body, &mut options, &req.extra);
    apply_extra(&mut body, &mut options, &cfg.extra_body);
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    build_http(&endpoint_url(cfg, "embed"), &body, cfg, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let mut cfg = UpstreamConfig::new("m");
        assert_eq!(endpoint_url(&cfg, "chat"), "http://localhost:11434/api/chat");
        cfg.api_base = Some("127.0.0.1:11434".into());
        assert_eq!(endpoint_url(&cfg, "embed"), "http://127.0.0.1:11434/api/embed");
        cfg.api_base = Some("https://ollama.example.com/api/".into());
        assert_eq!(endpoint_url(&cfg, "chat"), "https://ollama.example.com/api/chat");
        cfg.api_base = Some("http://h:1/api/chat".into());
        assert_eq!(endpoint_url(&cfg, "chat"), "http://h:1/api/chat");
    }

    #[test]
    fn data_uris() {
        assert_eq!(data_uri_base64("data:image/png;base64,AAAA").unwrap(), "AAAA");
        assert!(data_uri_base64("data:image/png,raw").is_err());
        let e = data_uri_base64("https://x/y.png").unwrap_err();
        assert!(e.message.contains("inline"), "{}", e.message);
    }
}
