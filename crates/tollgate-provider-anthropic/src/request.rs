//! Canonical (OpenAI-shaped) chat request → Anthropic Messages request.
//!
//! Choices made where the two APIs do not line up one to one:
//!
//! * **System prompt.** The leading run of `system`/`developer` messages becomes the top-level
//!   `system`: a plain string when it is one text without `cache_control`, otherwise text blocks
//!   (one per part, `cache_control` kept). A system message *later* in the conversation cannot
//!   go there without moving it in time, so its text is folded into the user turn at that point
//!   (merged with neighbouring user content), as LiteLLM does.
//! * **Alternation.** Anthropic requires user/assistant turns to alternate, so consecutive
//!   messages that map to the same role are merged into one turn (their blocks concatenated).
//!   Tool results (`role: tool`) become `tool_result` blocks of a user turn, so consecutive tool
//!   results share one turn. Empty text is dropped (Anthropic rejects empty text blocks) and the
//!   text of a final assistant turn (a prefill) loses trailing whitespace, which Anthropic rejects.
//! * **`max_tokens`** is always sent: the caller's `max_completion_tokens` / `max_tokens`, else
//!   `cfg.max_output_tokens` (the model's maximum from the model table), else
//!   [`DEFAULT_MAX_TOKENS`]. With thinking on, Anthropic requires `max_tokens > budget_tokens`:
//!   when it is not, the budget is added on top (the caller's number is read as the visible
//!   answer's allowance).
//! * **JSON mode.** `response_format` `json_schema` becomes a tool named [`JSON_TOOL_NAME`] whose
//!   `input_schema` is the schema, forced with `tool_choice: {type: tool}`; the response parser
//!   turns that tool's input back into the message `content` (finish reason `stop`). This works on
//!   every Claude model. `json_object` uses the same tool with a permissive object schema. When
//!   the caller also passes tools, the JSON tool is added to them and the caller's `tool_choice`
//!   is kept (the model may call a tool or answer); when thinking is on, Anthropic forbids forced
//!   tools, so the choice is `auto`.
//! * **Thinking.** A `thinking` object in the request's extra fields is sent as given;
//!   otherwise `reasoning_effort` maps to `{type: enabled, budget_tokens}` with the budgets in
//!   [`reasoning_budget`] (`none` turns thinking off).
//! * **Unsupported parameters** (`n` > 1, `seed`, `logprobs`, `top_logprobs`,
//!   `frequency_penalty`, `presence_penalty`, `logit_bias`) fail with the unsupported-parameter
//!   error unless `drop_params` is set. OpenAI-only knobs without an Anthropic meaning
//!   (`store`, `metadata`, `service_tier`, `modalities`, `prediction`, `verbosity`, …) are ignored.
//!   Fields in the request's `extra` map (e.g. `top_k`, `container`) are passed through.

use serde_json::{Value, json};
use tollgate_core::chat::{ContentPart, FileRef, ResponseFormat, Tool, ToolCall, ToolChoice, ToolChoiceMode};
use tollgate_core::{ChatRequest, Extra, Message, MessageContent, ProviderError, Role, UpstreamConfig};

use crate::PROVIDER;
use crate::wire::{
    ContentBlock, KnownBlock, MessagesRequest, RequestMetadata, Source, SystemPrompt, ToolResultContent,
    WireContent, WireMessage, WireTool, WireToolChoice,
};

/// `max_tokens` when neither the caller nor the model table gives one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The name of the forced tool that carries JSON-mode answers.
pub const JSON_TOOL_NAME: &str = "json_tool_call";

/// The beta that enables `{"type": "file", "file_id": …}` sources (Files API).
pub const FILES_API_BETA: &str = "files-api-2025-04-14";

/// The beta that allows `cache_control: {"type": "ephemeral", "ttl": "1h"}`; sent whenever a
/// request uses the 1-hour TTL.
pub const EXTENDED_CACHE_TTL_BETA: &str = "extended-cache-ttl-2025-04-11";

/// Whether any `cache_control` in a JSON body asks for the 1-hour TTL.
fn uses_one_hour_cache(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (k == "cache_control" && v.get("ttl").and_then(Value::as_str) == Some("1h"))
                || uses_one_hour_cache(v)
        }),
        Value::Array(items) => items.iter().any(uses_one_hour_cache),
        _ => false,
    }
}

/// The thinking budget for a `reasoning_effort` value (LiteLLM's budgets; Anthropic's minimum
/// budget is 1024). `Ok(None)` turns thinking off; unknown values are a bad request.
pub fn reasoning_budget(effort: &str) -> Result<Option<u32>, ProviderError> {
    Ok(match effort {
        "none" | "disable" | "disabled" => None,
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        other => {
            return Err(bad(format!(
                "unsupported reasoning_effort `{other}` (expected none, minimal, low, medium or high)"
            ))
            .with_param("reasoning_effort"));
        }
    })
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::bad_request(message).with_provider(PROVIDER)
}

/// The parameters Anthropic rejects, in the order they are reported.
fn unsupported_params(req: &ChatRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if req.n.is_some_and(|n| n > 1) {
        out.push("n");
    }
    if req.seed.is_some() {
        out.push("seed");
    }
    if req.logprobs == Some(true) {
        out.push("logprobs");
    }
    if req.top_logprobs.is_some() {
        out.push("top_logprobs");
    }
    if req.frequency_penalty.is_some() {
        out.push("frequency_penalty");
    }
    if req.presence_penalty.is_some() {
        out.push("presence_penalty");
    }
    if req.logit_bias.is_some() {
        out.push("logit_bias");
    }
    out
}

/// A translated request: the body and the `anthropic-beta` flags it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    pub body: MessagesRequest,
    pub betas: Vec<String>,
}

/// Translates a canonical chat request into a Messages API body. `model` is the model name as
/// Anthropic knows it. `cfg.extra_body` is *not* applied here (the adapter merges it into the
/// serialised body last, so it wins).
pub fn translate_request(
    req: &ChatRequest,
    model: &str,
    cfg: &UpstreamConfig,
) -> Result<Translated, ProviderError> {
    let rejected = unsupported_params(req);
    if !rejected.is_empty() && !cfg.drop_params {
        return Err(ProviderError::unsupported_params(PROVIDER, model, &rejected));
    }
    let mut betas: Vec<String> = Vec::new();

    // --- messages ------------------------------------------------------------------------
    let leading =
        req.messages.iter().take_while(|m| matches!(m.role, Role::System | Role::Developer)).count();
    let mut system_blocks: Vec<ContentBlock> = Vec::new();
    for m in &req.messages[..leading] {
        system_blocks.extend(text_blocks(m, "system")?);
    }
    let system = system_prompt(system_blocks);

    let mut turns: Vec<(&'static str, Vec<ContentBlock>)> = Vec::new();
    for m in &req.messages[leading..] {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => ("user", text_blocks(m, "system")?),
            Role::User => ("user", content_blocks(m, &mut betas)?),
            Role::Assistant => ("assistant", assistant_blocks(m, &mut betas)?),
            Role::Tool | Role::Function => ("user", vec![tool_result_block(m, &mut betas)?]),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if let Some(("assistant", blocks)) = turns.last_mut() {
        trim_trailing_whitespace(blocks);
    }
    if turns.is_empty() {
        return Err(bad("Anthropic needs at least one user or assistant message besides the system prompt")
            .with_param("messages"));
    }
    let messages = turns
        .into_iter()
        .map(|(role, blocks)| WireMessage { role: role.to_owned(), content: collapse(blocks) })
        .collect();

    // --- thinking ------------------------------------------------------------------------
    let thinking = match req.extra.get("thinking") {
        Some(t) => Some(t.clone()),
        None => match req.reasoning_effort.as_deref() {
            Some(effort) => {
                reasoning_budget(effort)?.map(|budget| json!({"type": "enabled", "budget_tokens": budget}))
            }
            None => None,
        },
    };
    let budget = thinking
        .as_ref()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("enabled"))
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
        .map(|b| u32::try_from(b).unwrap_or(u32::MAX));

    let mut max_tokens = req.output_token_limit().or(cfg.max_output_tokens).unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(b) = budget
        && max_tokens <= b
    {
        max_tokens = max_tokens.saturating_add(b);
    }

    // --- tools ---------------------------------------------------------------------------
    let mut tools: Vec<WireTool> = Vec::new();
    for t in req.tools.iter().flatten() {
        tools.push(wire_tool(t)?);
    }
    let caller_has_tools = !tools.is_empty();
    let mut tool_choice = match (&req.tool_choice, caller_has_tools) {
        (Some(tc), true) => Some(wire_tool_choice(tc)),
        _ => None,
    };

    let json_schema = match &req.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => Some((
            json_schema.schema.clone().unwrap_or_else(permissive_schema),
            json_schema.description.clone(),
        )),
        Some(ResponseFormat::JsonObject) => Some((permissive_schema(), None)),
        Some(ResponseFormat::Text) | None => None,
    };
    if let Some((schema, description)) = json_schema {
        tools.push(WireTool {
            kind: None,
            name: JSON_TOOL_NAME.to_owned(),
            description: Some(
                description.unwrap_or_else(|| "Respond with a JSON object in this tool's input.".to_owned()),
            ),
            input_schema: Some(schema),
            cache_control: None,
            extra: Extra::new(),
        });
        if !caller_has_tools {
            tool_choice = Some(if budget.is_some() {
                WireToolChoice::of("auto")
            } else {
                WireToolChoice {
                    kind: "tool".into(),
                    name: Some(JSON_TOOL_NAME.into()),
                    disable_parallel_tool_use: None,
                }
            });
        }
    }
    if req.parallel_tool_calls == Some(false) && caller_has_tools {
        let tc = tool_choice.get_or_insert_with(|| WireToolChoice::of("auto"));
        if tc.kind != "none" {
            tc.disable_parallel_tool_use = Some(true);
        }
    }

    // --- the rest ------------------------------------------------------------------------
    let stop_sequences = req.stop.as_ref().map(|s| {
        // Anthropic rejects stop sequences made only of whitespace.
        s.to_vec().into_iter().filter(|s| !s.trim().is_empty()).collect::<Vec<_>>()
    });
    let stop_sequences = stop_sequences.filter(|v| !v.is_empty());
    let metadata =
        req.user.as_ref().map(|u| RequestMetadata { user_id: Some(u.clone()), extra: Extra::new() });

    let mut extra = Extra::new();
    for (k, v) in &req.extra {
        match k.as_str() {
            "thinking" => {}
            "anthropic_beta" => collect_betas(v, &mut betas),
            _ => {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    let top_k = match extra.remove("top_k") {
        Some(v) => Some(
            v.as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .ok_or_else(|| bad("top_k must be a non-negative integer").with_param("top_k"))?,
        ),
        None => None,
    };

    let body = MessagesRequest {
        model: model.to_owned(),
        messages,
        system,
        max_tokens,
        stop_sequences,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k,
        metadata,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        thinking,
        stream: req.is_stream().then_some(true),
        extra,
    };
    if serde_json::to_value(&body).is_ok_and(|v| uses_one_hour_cache(&v)) {
        betas.push(EXTENDED_CACHE_TTL_BETA.to_owned());
    }
    Ok(Translated { body, betas })
}

fn collect_betas(v: &Value, betas: &mut Vec<String>) {
    match v {
        Value::String(s) => betas.extend(s.split(',').map(|b| b.trim().to_owned())),
        Value::Array(items) => {
            for i in items {
                collect_betas(i, betas);
            }
        }
        _ => {}
    }
}

fn permissive_schema() -> Value {
    json!({"type": "object", "additionalProperties": true})
}

fn system_prompt(blocks: Vec<ContentBlock>) -> Option<SystemPrompt> {
    match blocks.as_slice() {
        [] => None,
        [ContentBlock::Known(KnownBlock::Text { text, cache_control: None, citations: None })] => {
            Some(SystemPrompt::Text(text.clone()))
        }
        _ => Some(SystemPrompt::Blocks(blocks)),
    }
}

/// One plain text block becomes the string shorthand; anything else stays blocks.
fn collapse(blocks: Vec<ContentBlock>) -> WireContent {
    match blocks.as_slice() {
        [ContentBlock::Known(KnownBlock::Text { text, cache_control: None, citations: None })] => {
            WireContent::Text(text.clone())
        }
        _ => WireContent::Blocks(blocks),
    }
}

fn trim_trailing_whitespace(blocks: &mut Vec<ContentBlock>) {
    if let Some(ContentBlock::Known(KnownBlock::Text { text, .. })) = blocks.last_mut() {
        let trimmed = text.trim_end().len();
        text.truncate(trimmed);
        if text.is_empty() {
            blocks.pop();
        }
    }
}

fn cache_control_of(extra: &Extra) -> Option<Value> {
    extra.get("cache_control").cloned()
}

/// A message-level `cache_control` (LiteLLM's shorthand) marks the message's last block.
fn apply_message_cache_control(blocks: &mut [ContentBlock], m: &Message) {
    let Some(cc) = cache_control_of(&m.extra) else { return };
    if let Some(ContentBlock::Known(
        KnownBlock::Text { cache_control, .. }
        | KnownBlock::Image { cache_control, .. }
        | KnownBlock::Document { cache_control, .. }
        | KnownBlock::ToolUse { cache_control, .. }
        | KnownBlock::ToolResult { cache_control, .. },
    )) = blocks.last_mut()
        && cache_control.is_none()
    {
        *cache_control = Some(cc);
    }
}

fn text_block(text: &str, cache_control: Option<Value>) -> Option<ContentBlock> {
    (!text.is_empty()).then(|| {
        ContentBlock::Known(KnownBlock::Text { text: text.to_owned(), cache_control, citations: None })
    })
}

/// Text-only content (system messages).
fn text_blocks(m: &Message, what: &str) -> Result<Vec<ContentBlock>, ProviderError> {
    let mut out = Vec::new();
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => out.extend(text_block(t, None)),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text(t) => out.extend(text_block(&t.text, cache_control_of(&t.extra))),
                    _ => return Err(bad(format!("{what} messages may only contain text parts"))),
                }
            }
        }
    }
    apply_message_cache_control(&mut out, m);
    Ok(out)
}

/// User (and assistant) content: text, images, documents, native blocks.
fn content_blocks(m: &Message, betas: &mut Vec<String>) -> Result<Vec<ContentBlock>, ProviderError> {
    let mut out = Vec::new();
    match &m.content {
        None => {}
        Some(MessageContent::Text(t)) => out.extend(text_block(t, None)),
        Some(MessageContent::Parts(parts)) => {
            for p in parts {
                if let Some(b) = part_block(p, betas)? {
                    out.push(b);
                }
            }
        }
    }
    apply_message_cache_control(&mut out, m);
    Ok(out)
}

fn part_block(p: &ContentPart, betas: &mut Vec<String>) -> Result<Option<ContentBlock>, ProviderError> {
    Ok(match p {
        ContentPart::Text(t) => text_block(&t.text, cache_control_of(&t.extra)),
        ContentPart::Refusal(r) => text_block(&r.refusal, cache_control_of(&r.extra)),
        ContentPart::ImageUrl(i) => {
            let cc = cache_control_of(&i.extra).or_else(|| cache_control_of(&i.image_url.extra));
            Some(url_block(&i.image_url.url, cc)?)
        }
        ContentPart::File(f) => Some(file_block(&f.file, cache_control_of(&f.extra), betas)?),
        ContentPart::InputAudio(_) => {
            return Err(bad("Anthropic does not accept audio input (`input_audio` content parts)"));
        }
        // A part type tollgate does not model: most likely a native Anthropic block
        // (`document`, `search_result`, …) the caller wants sent as is.
        ContentPart::Other(v) => Some(ContentBlock::Other(v.clone())),
    })
}

/// Splits `data:<media type>;base64,<data>`.
fn parse_data_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

fn media_block(media_type: &str, source: Source, cache_control: Option<Value>) -> ContentBlock {
    if media_type == "application/pdf" {
        ContentBlock::Known(KnownBlock::Document {
            source,
            title: None,
            context: None,
            citations: None,
            cache_control,
        })
    } else {
        ContentBlock::Known(KnownBlock::Image { source, cache_control })
    }
}

/// An `image_url` part: a base64 data URI or an http(s) URL. PDFs become document blocks.
fn url_block(url: &str, cache_control: Option<Value>) -> Result<ContentBlock, ProviderError> {
    if url.starts_with("data:") {
        let (media_type, data) = parse_data_uri(url)
            .ok_or_else(|| bad("image data URIs must look like `data:<media type>;base64,<data>`"))?;
        let source = Source::Base64 { media_type: media_type.to_owned(), data: data.to_owned() };
        return Ok(media_block(media_type, source, cache_control));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let media_type =
            if path.to_ascii_lowercase().ends_with(".pdf") { "application/pdf" } else { "image" };
        return Ok(media_block(media_type, Source::Url { url: url.to_owned() }, cache_control));
    }
    Err(bad("image URLs must be http(s) URLs or base64 data URIs"))
}

/// A `file` part: inline data (PDF or image) or a Files API id.
fn file_block(
    f: &FileRef,
    cache_control: Option<Value>,
    betas: &mut Vec<String>,
) -> Result<ContentBlock, ProviderError> {
    if let Some(data_uri) = &f.file_data {
        let (media_type, data) = parse_data_uri(data_uri)
            .ok_or_else(|| bad("file_data must be a data URI: `data:<media type>;base64,<data>`"))?;
        if media_type != "application/pdf" && !media_type.starts_with("image/") {
            return Err(bad(format!("Anthropic accepts PDF and image files inline, not `{media_type}`")));
        }
        let source = Source::Base64 { media_type: media_type.to_owned(), data: data.to_owned() };
        return Ok(media_block(media_type, source, cache_control));
    }
    if let Some(file_id) = &f.file_id {
        betas.push(FILES_API_BETA.to_owned());
        return Ok(ContentBlock::Known(KnownBlock::Document {
            source: Source::File { file_id: file_id.clone() },
            title: None,
            context: None,
            citations: None,
            cache_control,
        }));
    }
    Err(bad("a file content part needs `file_data` or `file_id`"))
}

fn assistant_blocks(m: &Message, betas: &mut Vec<String>) -> Result<Vec<ContentBlock>, ProviderError> {
    let mut out = Vec::new();
    // Thinking blocks of an earlier turn (with their signatures) must come back first, as
    // Anthropic returned them; `reasoning_content` alone cannot be sent (it has no signature).
    if let Some(Value::Array(blocks)) = m.extra.get("thinking_blocks") {
        for b in blocks {
            match serde_json::from_value::<ContentBlock>(b.clone()) {
                Ok(
                    block @ ContentBlock::Known(
                        KnownBlock::Thinking { .. } | KnownBlock::RedactedThinking { .. },
                    ),
                ) => {
                    out.push(block);
                }
                _ => {
                    return Err(bad(format!(
                        "`thinking_blocks` entries must be Anthropic thinking or redacted_thinking blocks, got {b}"
                    ))
                    .with_param("messages"));
                }
            }
        }
    }
    let mut content = content_blocks(m, betas)?;
    out.append(&mut content);
    for call in m.tool_calls.iter().flatten() {
        out.push(tool_use_block(call)?);
    }
    Ok(out)
}

fn tool_use_block(call: &ToolCall) -> Result<ContentBlock, ProviderError> {
    let args = call.function.arguments.trim();
    let input = if args.is_empty() {
        json!({})
    } else {
        serde_json::from_str::<Value>(args).map_err(|e| {
            bad(format!(
                "tool call `{}` ({}) has arguments that are not valid JSON: {e}",
                call.id, call.function.name
            ))
            .with_param("messages")
        })?
    };
    Ok(ContentBlock::Known(KnownBlock::ToolUse {
        id: call.id.clone(),
        name: call.function.name.clone(),
        input,
        cache_control: cache_control_of(&call.extra),
    }))
}

fn tool_result_block(m: &Message, betas: &mut Vec<String>) -> Result<ContentBlock, ProviderError> {
    let Some(id) = &m.tool_call_id else {
        return Err(bad(format!(
            "a `{}` message needs `tool_call_id` (Anthropic matches tool results by id)",
            m.role.as_str()
        ))
        .with_param("messages"));
    };
    let content = match &m.content {
        None => None,
        Some(MessageContent::Text(t)) => Some(ToolResultContent::Text(t.clone())),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::new();
            for p in parts {
                blocks.extend(part_block(p, betas)?);
            }
            Some(ToolResultContent::Blocks(blocks))
        }
    };
    Ok(ContentBlock::Known(KnownBlock::ToolResult {
        tool_use_id: id.clone(),
        content,
        is_error: m.extra.get("is_error").and_then(Value::as_bool),
        cache_control: cache_control_of(&m.extra),
    }))
}

fn wire_tool(t: &Tool) -> Result<WireTool, ProviderError> {
    if t.kind == "function" {
        let f =
            t.function.as_ref().ok_or_else(|| bad("a function tool needs `function`").with_param("tools"))?;
        return Ok(WireTool {
            kind: None,
            name: f.name.clone(),
            description: f.description.clone(),
            input_schema: Some(
                f.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            ),
            cache_control: cache_control_of(&t.extra).or_else(|| cache_control_of(&f.extra)),
            extra: Extra::new(),
        });
    }
    // Anthropic's own tool types (`web_search_20250305`, `bash_20250124`, …): sent as given.
    let mut v = Extra::new();
    v.insert("type".into(), Value::String(t.kind.clone()));
    for (k, val) in &t.extra {
        v.insert(k.clone(), val.clone());
    }
    serde_json::from_value(Value::Object(v))
        .map_err(|e| bad(format!("invalid `{}` tool: {e}", t.kind)).with_param("tools"))
}

fn wire_tool_choice(tc: &ToolChoice) -> WireToolChoice {
    match tc {
        ToolChoice::Mode(ToolChoiceMode::Auto) => WireToolChoice::of("auto"),
        ToolChoice::Mode(ToolChoiceMode::Required) => WireToolChoice::of("any"),
        ToolChoice::Mode(ToolChoiceMode::None) => WireToolChoice::of("none"),
        ToolChoice::Named(n) => WireToolChoice {
            kind: "tool".into(),
            name: Some(n.function.name.clone()),
            disable_parallel_tool_use: None,
        },
    }
}
