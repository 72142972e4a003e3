//! Canonical chat request → Converse request body.
//!
//! Translation rules (the ones that are not 1:1 are documented on [`build_body`]).

use serde_json::{Map, Value, json};
use tollgate_core::chat::{
    ContentPart, ImagePart, Message, MessageContent, ResponseFormat, Role, ToolChoice, ToolChoiceMode,
};
use tollgate_core::{ChatRequest, ProviderError, UpstreamConfig};

use crate::PROVIDER;

/// The forced tool used to emulate `response_format` (JSON mode / JSON schema), like
/// Anthropic's recommended approach; its call comes back as the message `content`.
pub const JSON_TOOL_NAME: &str = "json_tool_call";

/// Converse top-level fields a caller may pass through `extra` (request or `extra_body`).
const PASSTHROUGH_FIELDS: &[&str] = &[
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "serviceTier",
];

fn bad(msg: impl Into<String>) -> ProviderError {
    ProviderError::bad_request(msg).with_provider(PROVIDER)
}

/// Whether the model id names an Anthropic model (foundation model, inference profile or ARN).
pub fn is_anthropic_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    m.contains("anthropic.") || m.contains("claude")
}

/// Thinking budget for `reasoning_effort` (LiteLLM's defaults); `None` disables thinking.
fn thinking_budget(effort: &str) -> Result<Option<u32>, ProviderError> {
    Ok(match effort {
        "none" | "disable" | "disabled" => None,
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        other => {
            return Err(bad(format!("unknown reasoning_effort {other:?}")).with_param("reasoning_effort"));
        }
    })
}

/// Parameters Converse has no equivalent for.
fn unsupported_params(req: &ChatRequest, anthropic: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |set: bool, name: &'static str| {
        if set {
            out.push(name);
        }
    };
    check(req.n.is_some_and(|n| n > 1), "n");
    check(req.seed.is_some(), "seed");
    check(req.logprobs == Some(true), "logprobs");
    check(req.top_logprobs.is_some(), "top_logprobs");
    check(req.frequency_penalty.is_some(), "frequency_penalty");
    check(req.presence_penalty.is_some(), "presence_penalty");
    check(req.logit_bias.is_some(), "logit_bias");
    check(req.parallel_tool_calls == Some(false), "parallel_tool_calls");
    check(req.reasoning_effort.is_some() && !anthropic, "reasoning_effort");
    check(req.modalities.as_ref().is_some_and(|m| m.iter().any(|x| x != "text")), "modalities");
    check(req.audio.is_some(), "audio");
    check(req.prediction.is_some(), "prediction");
    check(req.web_search_options.is_some(), "web_search_options");
    check(req.verbosity.is_some(), "verbosity");
    check(req.functions.is_some(), "functions");
    check(req.function_call.is_some(), "function_call");
    out
}

/// Builds the Converse / ConverseStream JSON body.
///
/// * `system` and `developer` messages (wherever they appear) become top-level `system` blocks,
///   in order; Converse has no mid-conversation system role.
/// * `tool` results become `toolResult` blocks in a `user` message (`status: "error"` when the
///   message carries `"is_error": true` or `"status": "error"`); consecutive messages of the same
///   Converse role are merged, so the conversation alternates user/assistant. (Bedrock also
///   wants the first turn to be a user turn; tollgate does not invent one, Bedrock says so.)
/// * Images must be `data:` URIs (Converse takes bytes, not URLs): an `http(s)` image URL is a
///   BadRequest. PDF (and the other Converse document formats) `file_data` become `document` blocks.
/// * `cache_control` on a text part adds a `cachePoint` block after it.
/// * Assistant `thinking_blocks` (LiteLLM's convention, with signatures) are sent back as
///   `reasoningContent`; a bare `reasoning_content` without a signature is not sent (Bedrock
///   rejects unsigned thinking).
/// * `tool_choice: "none"` omits `toolConfig` — unless the history holds tool calls/results,
///   which Bedrock only accepts with a `toolConfig`: then the tools are sent without a
///   `toolChoice` (the model may still call one). Tool calls in the history without any `tools`
///   get a minimal spec per tool name for the same reason.
/// * `response_format` `json_object`/`json_schema` adds a tool [`JSON_TOOL_NAME`] with the schema
///   and forces it (`toolChoice.tool`); its input comes back as the text content.
/// * `reasoning_effort` on Anthropic models → `additionalModelRequestFields.thinking` with a
///   budget of 1024 (minimal/low), 2048 (medium) or 4096 (high) tokens; when no output cap was
///   given, `maxTokens` becomes the model's max output (`cfg.max_output_tokens`) or budget + 4096.
///   A raw Anthropic `thinking` object in the request's extra fields is passed through as is.
/// * Unsupported parameters (`n`>1, `seed`, `logprobs`, penalties, `logit_bias`,
///   `parallel_tool_calls=false`, …) fail with UnsupportedParams unless `drop_params`;
///   `user`, `metadata`, `store`, `service_tier`, `stream_options` and prompt-cache keys are
///   ignored (they do not change the output).
pub fn build_body(req: &ChatRequest, cfg: &UpstreamConfig) -> Result<Value, ProviderError> {
    let anthropic = is_anthropic_model(&cfg.model);
    let unsupported = unsupported_params(req, anthropic);
    if !unsupported.is_empty() && !cfg.drop_params {
        return Err(ProviderError::unsupported_params(PROVIDER, &cfg.model, &unsupported));
    }

    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut history_has_tools = false;
    let mut history_tool_names: Vec<String> = Vec::new();

    for (i, m) in req.messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                system.extend(text_blocks(m, i)?);
                continue;
            }
            Role::User => ("user", user_blocks(m, i)?),
            Role::Assistant => {
                let blocks = assistant_blocks(m, i)?;
                for b in &blocks {
                    if let Some(name) = b.pointer("/toolUse/name").and_then(Value::as_str) {
                        history_has_tools = true;
                        if !history_tool_names.iter().any(|n| n == name) {
                            history_tool_names.push(name.to_owned());
                        }
                    }
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                history_has_tools = true;
                ("user", vec![tool_result_block(m, i)?])
            }
            Role::Function => {
                return Err(bad(format!(
                    "messages[{i}]: legacy `function` messages are not supported by Bedrock Converse; use tools"
                )));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }

    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(
            turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }

    // inferenceConfig
    let mut inference = Map::new();
    let mut max_tokens = req.output_token_limit();
    let mut additional = Map::new();
    if let Some(effort) = req.reasoning_effort.as_deref().filter(|_| anthropic)
        && let Some(budget) = thinking_budget(effort)?
    {
        additional.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
        if max_tokens.is_none() {
            max_tokens = Some(cfg.max_output_tokens.unwrap_or(budget + 4096));
        }
    }
    if let Some(thinking) = req.extra.get("thinking") {
        additional.insert("thinking".into(), thinking.clone());
    }
    if let Some(n) = max_tokens {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        let seqs = stop.to_vec();
        if !seqs.is_empty() {
            inference.insert("stopSequences".into(), json!(seqs));
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }

    if let Some(tool_config) = tool_config(req, history_has_tools, &history_tool_names)? {
        body.insert("toolConfig".into(), tool_config);
    }

    for key in PASSTHROUGH_FIELDS {
        if let Some(v) = req.extra.get(*key) {
            body.insert((*key).into(), v.clone());
        }
    }
    if !additional.is_empty() {
        match body.get_mut("additionalModelRequestFields") {
            Some(Value::Object(existing)) => {
                for (k, v) in additional {
                    existing.entry(k).or_insert(v);
                }
            }
            _ => {
                body.insert("additionalModelRequestFields".into(), Value::Object(additional));
            }
        }
    }
    for (k, v) in &cfg.extra_body {
        body.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(body))
}

fn tool_config(
    req: &ChatRequest,
    history_has_tools: bool,
    history_tool_names: &[String],
) -> Result<Option<Value>, ProviderError> {
    let mut specs = Vec::new();
    for (i, t) in req.tools.iter().flatten().enumerate() {
        let f = match (&t.kind[..], &t.function) {
            ("function", Some(f)) => f,
            _ => {
                return Err(bad(format!(
                    "tools[{i}]: only function tools are supported by Bedrock Converse"
                )));
            }
        };
        let mut spec = Map::new();
        spec.insert("name".into(), json!(f.name));
        if let Some(d) = f.description.as_deref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(d));
        }
        let schema = f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({ "json": schema }));
        specs.push(json!({ "toolSpec": spec }));
    }

    let mut choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => Some(json!({"auto": {}})),
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(json!({"any": {}})),
        Some(ToolChoice::Named(n)) => Some(json!({"tool": {"name": n.function.name}})),
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => {
            if !history_has_tools {
                specs.clear();
            }
            None
        }
    };

    let schema = match &req.response_format {
        Some(ResponseFormat::JsonObject) => Some((json!({"type": "object"}), None)),
        Some(ResponseFormat::JsonSchema { json_schema }) => Some((
            json_schema.schema.clone().unwrap_or_else(|| json!({"type": "object"})),
            json_schema.description.clone(),
        )),
        Some(ResponseFormat::Text) | None => None,
    };
    if let Some((schema, description)) = schema {
        let description =
            description.unwrap_or_else(|| "Respond with a JSON object matching this schema.".to_owned());
        specs.push(json!({"toolSpec": {
            "name": JSON_TOOL_NAME,
            "description": description,
            "inputSchema": {"json": schema}
        }}));
        choice = Some(json!({"tool": {"name": JSON_TOOL_NAME}}));
    }

    if specs.is_empty() && history_has_tools {
        for name in history_tool_names {
            specs.push(json!({"toolSpec": {
                "name": name,
                "inputSchema": {"json": {"type": "object", "properties": {}}}
            }}));
        }
    }
    if specs.is_empty() {
        return Ok(None);
    }
    let mut cfg = Map::new();
    cfg.insert("tools".into(), Value::Array(specs));
    if let Some(c) = choice {
        cfg.insert("toolChoice".into(), c);
    }
    Ok(Some(Value::Object(cfg)))
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn push_text(out: &mut Vec<Value>, text: &str, extra: Option<&tollgate_core::Extra>) {
    if !text.is_empty() {
        out.push(json!({ "text": text }));
    }
    if extra.is_some_and(|e| e.contains_key("cache_control")) {
        out.push(cache_point());
    }
}

/// Text-only content (system messages).
fn text_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => push_text(&mut out, t, None),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text(t) => push_text(&mut out, &t.text, Some(&t.extra)),
                    _ => return Err(bad(format!("messages[{i}]: system messages may only contain text"))),
                }
            }
        }
    }
    if m.extra.contains_key("cache_control") {
        out.push(cache_point());
    }
    Ok(out)
}

fn user_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => push_text(&mut out, t, None),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                part_block(&mut out, p, i)?;
            }
        }
    }
    if m.extra.contains_key("cache_control") {
        out.push(cache_point());
    }
    Ok(out)
}

fn part_block(out: &mut Vec<Value>, p: &ContentPart, i: usize) -> Result<(), ProviderError> {
    match p {
        ContentPart::Text(t) => push_text(out, &t.text, Some(&t.extra)),
        ContentPart::ImageUrl(img) => out.push(image_block(img, i)?),
        ContentPart::File(f) => {
            let Some(data) = f.file.file_data.as_deref() else {
                return Err(bad(format!(
                    "messages[{i}]: file parts need `file_data` (a base64 data URI); Bedrock cannot read file ids"
                )));
            };
            let (mime, b64) = parse_data_uri(data)
                .ok_or_else(|| bad(format!("messages[{i}]: `file_data` must be a base64 data URI")))?;
            let format = document_format(&mime).ok_or_else(|| {
                bad(format!("messages[{i}]: Bedrock does not accept documents of type {mime}"))
            })?;
            let name = document_name(f.file.filename.as_deref());
            out.push(json!({"document": {"format": format, "name": name, "source": {"bytes": b64}}}));
            if f.extra.contains_key("cache_control") {
                out.push(cache_point());
            }
        }
        ContentPart::InputAudio(_) => {
            return Err(bad(format!("messages[{i}]: audio input is not supported by Bedrock Converse")));
        }
        ContentPart::Refusal(r) => push_text(out, &r.refusal, None),
        ContentPart::Other(v) => {
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("?");
            return Err(bad(format!("messages[{i}]: content part type {ty:?} is not supported by Bedrock")));
        }
    }
    Ok(())
}

fn image_block(img: &ImagePart, i: usize) -> Result<Value, ProviderError> {
    let url = &img.image_url.url;
    let Some((mime, b64)) = parse_data_uri(url) else {
        return Err(bad(format!(
            "messages[{i}]: Bedrock Converse only accepts images as bytes; pass the image as a \
             base64 data URI (data:image/png;base64,...) instead of a URL"
        )));
    };
    let format = match mime.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => return Err(bad(format!("messages[{i}]: Bedrock does not accept images of type {other}"))),
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": b64}}}))
}

/// `data:<mime>;base64,<data>` → (mime, data). Converse's JSON carries bytes as base64, so the
/// data is passed on without decoding.
fn parse_data_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mut parts = meta.split(';');
    let mime = parts.next()?.trim().to_ascii_lowercase();
    if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some((mime, data.to_owned()))
}

fn document_format(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// Converse document names allow alphanumerics, single spaces, hyphens, parentheses and
/// square brackets; anything else becomes a space.
fn document_name(filename: Option<&str>) -> String {
    let base = filename.map(|f| f.rsplit_once('.').map_or(f, |(stem, _)| stem)).unwrap_or("document");
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') { c } else { ' ' })
        .collect();
    let name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() { "document".to_owned() } else { name }
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    if let Some(Value::Array(blocks)) = m.extra.get("thinking_blocks") {
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("thinking") => {
                    let mut rt = Map::new();
                    rt.insert("text".into(), b.get("thinking").cloned().unwrap_or_else(|| json!("")));
                    if let Some(sig) = b.get("signature") {
                        rt.insert("signature".into(), sig.clone());
                    }
                    out.push(json!({"reasoningContent": {"reasoningText": rt}}));
                }
                Some("redacted_thinking") => {
                    if let Some(data) = b.get("data") {
                        out.push(json!({"reasoningContent": {"redactedContent": data}}));
                    }
                }
                _ => {}
            }
        }
    }
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => push_text(&mut out, t, None),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                part_block(&mut out, p, i)?;
            }
        }
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let args = call.function.arguments.trim();
        let input: Value = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_str(args).map_err(|e| {
                bad(format!("messages[{i}].tool_calls[{j}]: arguments are not valid JSON ({e})"))
            })?
        };
        out.push(json!({"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": input}}));
    }
    Ok(out)
}

fn tool_result_block(m: &Message, i: usize) -> Result<Value, ProviderError> {
    let Some(id) = m.tool_call_id.as_deref() else {
        return Err(bad(format!("messages[{i}]: a tool message needs `tool_call_id`")));
    };
    let mut content = Vec::new();
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => content.push(json!({ "text": t })),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text(t) => content.push(json!({ "text": t.text })),
                    ContentPart::ImageUrl(img) => content.push(image_block(img, i)?),
                    _ => {
                        return Err(bad(format!(
                            "messages[{i}]: tool results may contain text and images only"
                        )));
                    }
                }
            }
        }
    }
    if content.is_empty() {
        // Converse requires at least one content block.
        content.push(json!({ "text": "" }));
    }
    let mut result = Map::new();
    result.insert("toolUseId".into(), json!(id));
    result.insert("content".into(), Value::Array(content));
    let is_error = m.extra.get("is_error").and_then(Value::as_bool) == Some(true)
        || m.extra.get("status").and_then(Value::as_str) == Some("error");
    if is_error {
        result.insert("status".into(), json!("error"));
    }
    Ok(json!({ "toolResult": result }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_and_names() {
        assert_eq!(parse_data_uri("data:image/png;base64,AAA"), Some(("image/png".into(), "AAA".into())));
        assert_eq!(parse_data_uri("data:image/png,AAA"), None);
        assert_eq!(parse_data_uri("https://x/y.png"), None);
        assert_eq!(document_name(Some("my_report.v2.pdf")), "my report v2");
        assert_eq!(document_name(Some("...")), "document");
        assert_eq!(document_name(None), "document");
    }

    #[test]
    fn anthropic_detection() {
        assert!(is_anthropic_model("anthropic.claude-3-5-sonnet-20240620-v1:0"));
        assert!(is_anthropic_model("us.anthropic.claude-sonnet-4-20250514-v1:0"));
        assert!(!is_anthropic_model("amazon.nova-pro-v1:0"));
    }
}
