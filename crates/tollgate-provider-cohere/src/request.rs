//! Canonical requests → Cohere v2 `POST /v2/chat` and `POST /v2/embed` requests.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tollgate_core::chat::{
    ContentPart, JsonSchemaFormat, MessageContent, ResponseFormat, Tool, ToolChoice, ToolChoiceMode,
};
use tollgate_core::embedding::EmbeddingRequest;
use tollgate_core::{ChatRequest, ErrorKind, Message, ProviderError, Role, UpstreamConfig};

/// Cohere's API host; the `/v2/...` paths are appended to it.
pub const DEFAULT_API_BASE: &str = "https://api.cohere.com";

/// The `input_type` sent to `/v2/embed` unless the request's `input_type` field says otherwise
/// (`search_query`, `classification`, `clustering`, `image`).
pub const DEFAULT_EMBED_INPUT_TYPE: &str = "search_document";

/// Thinking token budgets for OpenAI's `reasoning_effort` levels.
const BUDGET_LOW: u32 = 1024;
const BUDGET_MEDIUM: u32 = 2048;
const BUDGET_HIGH: u32 = 4096;

type Obj = Map<String, Value>;

/// `{base}/v2/{endpoint}`. A base that already ends in `/v2` or `/v2/{endpoint}` is respected,
/// so LiteLLM-style full URLs (`https://api.cohere.ai/v2/chat`) work too.
fn endpoint_url(cfg: &UpstreamConfig, endpoint: &str) -> String {
    let base = cfg.api_base.as_deref().unwrap_or(DEFAULT_API_BASE).trim_end_matches('/');
    let full = format!("/v2/{endpoint}");
    if base.ends_with(&full) {
        base.to_owned()
    } else if base.ends_with("/v2") {
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
    let key =
        cfg.api_key.as_ref().or(cfg.bearer_token.as_ref()).filter(|k| !k.is_empty()).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Authentication,
                "no Cohere API key: set COHERE_API_KEY (or CO_API_KEY) or pass api_key",
            )
        })?;
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ProviderError::bad_request(format!("cannot serialise the Cohere request: {e}")))?;
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, if stream { "text/event-stream" } else { "application/json" })
        .header(http::header::AUTHORIZATION, format!("Bearer {}", key.expose()));
    for (name, value) in &cfg.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Bytes::from(bytes))
        .map_err(|e| ProviderError::bad_request(format!("invalid Cohere request (url or header): {e}")))
}

fn merge_extra_body(body: &mut Obj, cfg: &UpstreamConfig) {
    for (k, v) in &cfg.extra_body {
        body.insert(k.clone(), v.clone());
    }
}

/// OpenAI parameters Cohere's chat has no equivalent for.
fn unsupported_chat_params(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if req.n.is_some_and(|n| n != 1) {
        out.push("n");
    }
    if req.parallel_tool_calls == Some(false) {
        out.push("parallel_tool_calls");
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
    let messages = req.messages.iter().map(message).collect::<Result<Vec<_>, _>>()?;
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), Value::Bool(stream));

    if let Some(tools) = &req.tools {
        let (tools, choice) = tools_and_choice(tools, req.tool_choice.as_ref())?;
        if tools.iter().any(|t| t.function.as_ref().and_then(|f| f.strict) == Some(true)) {
            body.insert("strict_tools".into(), Value::Bool(true));
        }
        let wire = tools.iter().map(|t| tool(t)).collect::<Result<Vec<_>, _>>()?;
        if !wire.is_empty() {
            body.insert("tools".into(), Value::Array(wire));
        }
        if let Some(choice) = choice {
            body.insert("tool_choice".into(), Value::String(choice.into()));
        }
    } else if let Some(ToolChoice::Named(n)) = &req.tool_choice {
        // Without tools only "none"/"auto"/"required" can be ignored (the model answers directly).
        return Err(ProviderError::bad_request(format!(
            "tool_choice names function `{}` but the request has no tools",
            n.function.name
        ))
        .with_param("tool_choice"));
    }

    if let Some(rf) = &req.response_format {
        body.insert("response_format".into(), response_format(rf));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("p".into(), json!(p));
    }
    if let Some(max) = req.output_token_limit() {
        body.insert("max_tokens".into(), json!(max));
    }
    if let Some(stop) = &req.stop {
        body.insert("stop_sequences".into(), json!(stop.to_vec()));
    }
    if let Some(seed) = req.seed {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(f) = req.frequency_penalty {
        body.insert("frequency_penalty".into(), json!(f));
    }
    if let Some(p) = req.presence_penalty {
        body.insert("presence_penalty".into(), json!(p));
    }
    if let Some(lp) = req.logprobs {
        body.insert("logprobs".into(), Value::Bool(lp));
    }
    if let Some(effort) = &req.reasoning_effort {
        body.insert("thinking".into(), thinking(effort)?);
    }
    // Vendor fields the caller set (`k`, `safety_mode`, `documents`, `citation_options`,
    // `thinking`, …) go through verbatim; `top_k` is the common spelling of Cohere's `k`.
    for (k, v) in &req.extra {
        let key = if k == "top_k" { "k" } else { k.as_str() };
        body.insert(key.to_owned(), v.clone());
    }
    merge_extra_body(&mut body, cfg);

    build_http(&endpoint_url(cfg, "chat"), &body, cfg, stream)
}

/// `reasoning_effort` → Cohere's `thinking` object.
fn thinking(effort: &str) -> Result<Value, ProviderError> {
    let budget = match effort {
        "none" | "disable" | "disabled" => return Ok(json!({"type": "disabled"})),
        "minimal" | "low" => BUDGET_LOW,
        "medium" => BUDGET_MEDIUM,
        "high" => BUDGET_HIGH,
        other => {
            return Err(ProviderError::bad_request(format!(
                "unknown reasoning_effort `{other}` (expected none, minimal, low, medium or high)"
            ))
            .with_param("reasoning_effort"));
        }
    };
    Ok(json!({"type": "enabled", "token_budget": budget}))
}

fn response_format(rf: &ResponseFormat) -> Value {
    match rf {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { json_schema: JsonSchemaFormat { schema, .. } } => match schema {
            Some(s) => json!({"type": "json_object", "json_schema": s}),
            None => json!({"type": "json_object"}),
        },
    }
}

/// The tools to send and Cohere's `tool_choice`. Cohere only knows `REQUIRED` and `NONE`; a
/// named function is expressed exactly by sending only that tool with `REQUIRED`.
fn tools_and_choice<'a>(
    tools: &'a [Tool],
    choice: Option<&ToolChoice>,
) -> Result<(Vec<&'a Tool>, Option<&'static str>), ProviderError> {
    let all: Vec<&Tool> = tools.iter().collect();
    Ok(match choice {
        None | Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => (all, None),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => (all, Some("REQUIRED")),
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => (all, Some("NONE")),
        Some(ToolChoice::Named(named)) => {
            let name = &named.function.name;
            let only: Vec<&Tool> =
                all.into_iter().filter(|t| t.function.as_ref().is_some_and(|f| &f.name == name)).collect();
            if only.is_empty() {
                return Err(ProviderError::bad_request(format!(
                    "tool_choice names function `{name}`, which is not among the request's tools"
                ))
                .with_param("tool_choice"));
            }
            (only, Some("REQUIRED"))
        }
    })
}

fn tool(t: &Tool) -> Result<Value, ProviderError> {
    let f = match (&t.function, t.kind.as_str()) {
        (Some(f), "function") => f,
        _ => {
            return Err(ProviderError::bad_request(format!(
                "Cohere only supports function tools, not `{}`",
                t.kind
            ))
            .with_param("tools"));
        }
    };
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

/// Text-only content (system and tool messages): a string, or text blocks.
fn text_content(content: Option<&MessageContent>, role: &str) -> Result<Value, ProviderError> {
    match content {
        None => Ok(Value::String(String::new())),
        Some(MessageContent::Text(t)) => Ok(Value::String(t.clone())),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                match p {
                    ContentPart::Text(t) => blocks.push(json!({"type": "text", "text": t.text})),
                    other => return Err(unsupported_part(other, role)),
                }
            }
            Ok(Value::Array(blocks))
        }
    }
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

fn unsupported_part(p: &ContentPart, role: &str) -> ProviderError {
    ProviderError::bad_request(format!(
        "Cohere does not accept `{}` content parts in {role} messages",
        part_type(p)
    ))
    .with_param("messages")
}

fn user_content(content: Option<&MessageContent>) -> Result<Value, ProviderError> {
    match content {
        None => Ok(Value::String(String::new())),
        Some(MessageContent::Text(t)) => Ok(Value::String(t.clone())),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                match p {
                    ContentPart::Text(t) => blocks.push(json!({"type": "text", "text": t.text})),
                    ContentPart::ImageUrl(img) => {
                        let mut url = Obj::new();
                        url.insert("url".into(), Value::String(img.image_url.url.clone()));
                        if let Some(d) = &img.image_url.detail {
                            url.insert("detail".into(), Value::String(d.clone()));
                        }
                        blocks.push(json!({"type": "image_url", "image_url": url}));
                    }
                    other => return Err(unsupported_part(other, "user")),
                }
            }
            Ok(Value::Array(blocks))
        }
    }
}

fn message(m: &Message) -> Result<Value, ProviderError> {
    let mut out = Obj::new();
    match m.role {
        Role::System | Role::Developer => {
            out.insert("role".into(), "system".into());
            out.insert("content".into(), text_content(m.content.as_ref(), "system")?);
        }
        Role::User => {
            out.insert("role".into(), "user".into());
            out.insert("content".into(), user_content(m.content.as_ref())?);
        }
        Role::Assistant => {
            out.insert("role".into(), "assistant".into());
            let has_calls = m.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
            let text = m.text();
            if !text.is_empty() || !has_calls {
                out.insert("content".into(), text_content(m.content.as_ref(), "assistant")?);
            }
            if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
                // The reasoning Cohere produced before calling tools travels back as `tool_plan`.
                if let Some(plan) = m.reasoning_content.as_ref().filter(|p| !p.is_empty()) {
                    out.insert("tool_plan".into(), Value::String(plan.clone()));
                }
                let wire: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.function.name, "arguments": c.function.arguments},
                        })
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(wire));
            }
        }
        Role::Tool => {
            let id = m.tool_call_id.as_ref().ok_or_else(|| {
                ProviderError::bad_request("a tool message needs `tool_call_id`").with_param("messages")
            })?;
            out.insert("role".into(), "tool".into());
            out.insert("tool_call_id".into(), Value::String(id.clone()));
            out.insert("content".into(), text_content(m.content.as_ref(), "tool")?);
        }
        Role::Function => {
            return Err(ProviderError::bad_request(
                "legacy `function` messages are not supported by Cohere; use tools and `tool` messages",
            )
            .with_param("messages"));
        }
    }
    Ok(Value::Object(out))
}

pub(crate) fn embedding_request(
    provider: &str,
    req: &EmbeddingRequest,
    cfg: &UpstreamConfig,
) -> Result<http::Request<Bytes>, ProviderError> {
    let texts = req.input.as_texts().ok_or_else(|| {
        ProviderError::bad_request("Cohere embeds text; token-array input is not supported")
            .with_param("input")
    })?;
    if req.encoding_format.as_deref().is_some_and(|f| f != "float") && !cfg.drop_params {
        return Err(ProviderError::unsupported_params(provider, &cfg.model, &["encoding_format"]));
    }
    let mut body = Obj::new();
    body.insert("model".into(), Value::String(cfg.model.clone()));
    body.insert("texts".into(), json!(texts));
    let input_type = req.extra.get("input_type").cloned().unwrap_or_else(|| DEFAULT_EMBED_INPUT_TYPE.into());
    body.insert("input_type".into(), input_type);
    body.insert("embedding_types".into(), json!(["float"]));
    if let Some(d) = req.dimensions {
        body.insert("output_dimension".into(), json!(d));
    }
    for (k, v) in &req.extra {
        if k != "input_type" {
            body.insert(k.clone(), v.clone());
        }
    }
    merge_extra_body(&mut body, cfg);
    build_http(&endpoint_url(cfg, "embed"), &body, cfg, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let mut cfg = UpstreamConfig::new("m");
        assert_eq!(endpoint_url(&cfg, "chat"), "https://api.cohere.com/v2/chat");
        cfg.api_base = Some("https://api.cohere.ai/v2/chat".into());
        assert_eq!(endpoint_url(&cfg, "chat"), "https://api.cohere.ai/v2/chat");
        cfg.api_base = Some("http://127.0.0.1:9/v2/".into());
        assert_eq!(endpoint_url(&cfg, "embed"), "http://127.0.0.1:9/v2/embed");
        cfg.api_base = Some("http://proxy/cohere/".into());
        assert_eq!(endpoint_url(&cfg, "chat"), "http://proxy/cohere/v2/chat");
    }

    #[test]
    fn effort_levels() {
        assert_eq!(thinking("none").unwrap(), json!({"type": "disabled"}));
        assert_eq!(thinking("high").unwrap()["token_budget"], 4096);
        assert_eq!(thinking("extreme").unwrap_err().kind, ErrorKind::BadRequest);
    }
}
