//! The reverse direction, for serving the Anthropic Messages API in front of *any* backend (the
//! proxy's `/v1/messages` endpoint, used by Claude Code and the Anthropic SDKs):
//!
//! * [`messages_to_chat_request`]: an Anthropic request → a canonical chat request;
//! * [`chat_response_to_messages`]: a canonical response → an Anthropic response;
//! * [`AnthropicEventEncoder`]: canonical stream chunks → Anthropic's named SSE events.
//!
//! Anthropic-only details travel in the canonical types' extension points, so that a request
//! that goes Anthropic → canonical → Anthropic arrives unchanged: `cache_control` in parts'
//! `extra`, thinking blocks in the assistant message's `thinking_blocks`, `top_k`/`thinking`
//! and unknown top-level fields in the request's `extra`, and blocks with no OpenAI equivalent
//! as [`ContentPart::Other`].

use serde_json::{Value, json};
use tollgate_core::chat::{
    AssistantMessage, ContentPart, FilePart, FileRef, FunctionDefinition, ImagePart, ImageUrl, NamedFunction,
    NamedToolChoice, Stop, StreamOptions, TextPart, Tool, ToolCall, ToolChoice, ToolChoiceMode,
};
use tollgate_core::sse::encode_event;
use tollgate_core::{
    ChatChunk, ChatRequest, ChatResponse, Extra, FinishReason, Message, MessageContent, Role, Usage,
};

use crate::response::usage_to_wire;
use crate::wire::{
    ContentBlock, KnownBlock, MessagesRequest, MessagesResponse, Source, SystemPrompt, ToolResultContent,
    WireContent, WireTool, WireToolChoice, WireUsage,
};

fn with_cache_control(cache_control: &Option<Value>) -> Extra {
    let mut e = Extra::new();
    if let Some(cc) = cache_control {
        e.insert("cache_control".into(), cc.clone());
    }
    e
}

fn text_part(text: &str, cache_control: &Option<Value>) -> ContentPart {
    ContentPart::Text(TextPart { text: text.to_owned(), extra: with_cache_control(cache_control) })
}

/// A block of user content as a canonical part (blocks with no OpenAI form stay verbatim).
fn block_to_part(block: &ContentBlock) -> ContentPart {
    let image = |url: String, cc: &Option<Value>| {
        ContentPart::ImageUrl(ImagePart {
            image_url: ImageUrl { url, detail: None, extra: Extra::new() },
            extra: with_cache_control(cc),
        })
    };
    match block {
        ContentBlock::Known(KnownBlock::Text { text, cache_control, citations: None }) => {
            text_part(text, cache_control)
        }
        ContentBlock::Known(KnownBlock::Image {
            source: Source::Base64 { media_type, data },
            cache_control,
        }) => image(format!("data:{media_type};base64,{data}"), cache_control),
        ContentBlock::Known(KnownBlock::Image { source: Source::Url { url }, cache_control }) => {
            image(url.clone(), cache_control)
        }
        ContentBlock::Known(KnownBlock::Document {
            source: Source::Base64 { media_type, data },
            title: None,
            context: None,
            citations: None,
            cache_control,
        }) if media_type == "application/pdf" => ContentPart::File(FilePart {
            file: FileRef {
                file_id: None,
                file_data: Some(format!("data:{media_type};base64,{data}")),
                filename: None,
                extra: Extra::new(),
            },
            extra: with_cache_control(cache_control),
        }),
        other => ContentPart::Other(serde_json::to_value(other).unwrap_or(Value::Null)),
    }
}

fn parts_content(parts: Vec<ContentPart>) -> Option<MessageContent> {
    match parts.as_slice() {
        [] => None,
        [ContentPart::Text(t)] if t.extra.is_empty() => Some(MessageContent::Text(t.text.clone())),
        _ => Some(MessageContent::Parts(parts)),
    }
}

fn empty_message(role: Role) -> Message {
    let mut m = Message::user("");
    m.role = role;
    m.content = None;
    m
}

/// Translates an Anthropic Messages request into a canonical chat request.
///
/// `tool_result` blocks become `role: tool` messages (placed before the rest of their user
/// turn); `tool_use` blocks become `tool_calls`; thinking blocks go to `thinking_blocks` (and
/// their text to `reasoning_content`); `tool_choice.disable_parallel_tool_use` becomes
/// `parallel_tool_calls: false`; a streamed request asks for the final usage chunk.
pub fn messages_to_chat_request(req: &MessagesRequest) -> ChatRequest {
    let mut messages = Vec::new();
    match &req.system {
        None => {}
        Some(SystemPrompt::Text(t)) => messages.push(Message::system(t.clone())),
        Some(SystemPrompt::Blocks(blocks)) => {
            let mut m = empty_message(Role::System);
            m.content = parts_content(blocks.iter().map(block_to_part).collect());
            messages.push(m);
        }
    }
    for wm in &req.messages {
        let blocks = match &wm.content {
            WireContent::Text(t) => vec![ContentBlock::text(t.clone())],
            WireContent::Blocks(b) => b.clone(),
        };
        if wm.role == "assistant" {
            messages.push(assistant_message(&blocks));
        } else {
            let mut parts = Vec::new();
            for b in &blocks {
                match b {
                    ContentBlock::Known(KnownBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                        cache_control,
                    }) => {
                        let mut m = empty_message(Role::Tool);
                        m.tool_call_id = Some(tool_use_id.clone());
                        m.content = match content {
                            None => Some(MessageContent::Text(String::new())),
                            Some(ToolResultContent::Text(t)) => Some(MessageContent::Text(t.clone())),
                            Some(ToolResultContent::Blocks(bs)) => {
                                Some(MessageContent::Parts(bs.iter().map(block_to_part).collect()))
                            }
                        };
                        if let Some(e) = is_error {
                            m.extra.insert("is_error".into(), Value::Bool(*e));
                        }
                        if let Some(cc) = cache_control {
                            m.extra.insert("cache_control".into(), cc.clone());
                        }
                        messages.push(m);
                    }
                    other => parts.push(block_to_part(other)),
                }
            }
            if !parts.is_empty() {
                let mut m = empty_message(Role::User);
                m.content = parts_content(parts);
                messages.push(m);
            }
        }
    }

    let mut out = ChatRequest::new(req.model.clone(), messages);
    out.max_tokens = Some(req.max_tokens);
    out.stop = req.stop_sequences.clone().map(Stop::Many);
    out.temperature = req.temperature;
    out.top_p = req.top_p;
    out.user = req.metadata.as_ref().and_then(|m| m.user_id.clone());
    out.tools = req.tools.as_ref().map(|ts| ts.iter().map(tool_to_canonical).collect());
    if let Some(tc) = &req.tool_choice {
        out.tool_choice = tool_choice_to_canonical(tc);
        if tc.disable_parallel_tool_use == Some(true) {
            out.parallel_tool_calls = Some(false);
        }
    }
    if req.stream == Some(true) {
        out.stream = Some(true);
        out.stream_options = Some(StreamOptions { include_usage: Some(true), extra: Extra::new() });
    }
    out.extra = req.extra.clone();
    if let Some(k) = req.top_k {
        out.extra.insert("top_k".into(), json!(k));
    }
    if let Some(t) = &req.thinking {
        out.extra.insert("thinking".into(), t.clone());
    }
    out
}

fn assistant_message(blocks: &[ContentBlock]) -> Message {
    let mut m = empty_message(Role::Assistant);
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    let mut reasoning: Option<String> = None;
    for b in blocks {
        match b {
            ContentBlock::Known(KnownBlock::ToolUse { id, name, input, cache_control }) => {
                let mut call = ToolCall::function(id.clone(), name.clone(), input.to_string());
                call.extra = with_cache_control(cache_control);
                calls.push(call);
            }
            ContentBlock::Known(KnownBlock::Thinking { thinking: t, .. }) => {
                reasoning.get_or_insert_with(String::new).push_str(t);
                thinking.extend(serde_json::to_value(b).ok());
            }
            ContentBlock::Known(KnownBlock::RedactedThinking { .. }) => {
                thinking.extend(serde_json::to_value(b).ok())
            }
            other => parts.push(block_to_part(other)),
        }
    }
    m.content = parts_content(parts);
    m.tool_calls = (!calls.is_empty()).then_some(calls);
    m.reasoning_content = reasoning;
    if !thinking.is_empty() {
        m.extra.insert("thinking_blocks".into(), Value::Array(thinking));
    }
    m
}

fn tool_to_canonical(t: &WireTool) -> Tool {
    match t.kind.as_deref() {
        // Client tools (`type` absent or `custom`).
        None | Some("custom") => Tool {
            kind: "function".into(),
            function: Some(FunctionDefinition {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.input_schema.clone(),
                strict: None,
                extra: Extra::new(),
            }),
            extra: with_cache_control(&t.cache_control),
        },
        // Server tools keep their own shape; the Anthropic adapter sends them back as given.
        Some(kind) => {
            let mut extra = t.extra.clone();
            extra.insert("name".into(), Value::String(t.name.clone()));
            if let Some(cc) = &t.cache_control {
                extra.insert("cache_control".into(), cc.clone());
            }
            Tool { kind: kind.to_owned(), function: None, extra }
        }
    }
}

fn tool_choice_to_canonical(tc: &WireToolChoice) -> Option<ToolChoice> {
    Some(match tc.kind.as_str() {
        "auto" => ToolChoice::Mode(ToolChoiceMode::Auto),
        "any" => ToolChoice::Mode(ToolChoiceMode::Required),
        "none" => ToolChoice::Mode(ToolChoiceMode::None),
        "tool" => ToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: NamedFunction { name: tc.name.clone().unwrap_or_default() },
            extra: Extra::new(),
        }),
        _ => return None,
    })
}

/// The Anthropic `stop_reason` for an OpenAI finish reason.
pub fn stop_reason_for(finish: &FinishReason) -> String {
    match finish {
        FinishReason::Stop => "end_turn".into(),
        FinishReason::Length => "max_tokens".into(),
        FinishReason::ToolCalls | FinishReason::FunctionCall => "tool_use".into(),
        FinishReason::ContentFilter => "refusal".into(),
        FinishReason::Other(s) => s.clone(),
    }
}

/// Tool-call arguments as a `tool_use` input. Anthropic requires an object; arguments that are
/// not a JSON object (a model's malformed output) are kept as a string under `_raw_arguments`.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"_raw_arguments": arguments}),
    }
}

fn assistant_blocks(msg: &AssistantMessage) -> Vec<ContentBlock> {
    let mut blocks = Vec::new();
    match msg.extra.get("thinking_blocks") {
        Some(Value::Array(tb)) => {
            blocks.extend(tb.iter().filter_map(|b| serde_json::from_value::<ContentBlock>(b.clone()).ok()));
        }
        _ => {
            if let Some(r) = msg.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
                blocks.push(ContentBlock::Known(KnownBlock::Thinking {
                    thinking: r.clone(),
                    signature: String::new(),
                }));
            }
        }
    }
    if let Some(t) = msg.content.as_ref().filter(|t| !t.is_empty()) {
        blocks.push(ContentBlock::text(t.clone()));
    }
    for call in msg.tool_calls.iter().flatten() {
        blocks.push(ContentBlock::Known(KnownBlock::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input: tool_input(&call.function.arguments),
            cache_control: None,
        }));
    }
    blocks
}

/// Translates a canonical chat response into an Anthropic Messages response (first choice).
pub fn chat_response_to_messages(resp: &ChatResponse) -> MessagesResponse {
    let choice = resp.choices.first();
    MessagesResponse {
        id: resp.id.clone(),
        kind: "message".into(),
        role: "assistant".into(),
        model: resp.model.clone(),
        content: choice.map(|c| assistant_blocks(&c.message)).unwrap_or_default(),
        stop_reason: choice.and_then(|c| c.finish_reason.as_ref()).map(stop_reason_for),
        stop_sequence: None,
        usage: resp.usage.as_ref().map(usage_to_wire).unwrap_or_else(|| usage_to_wire(&Usage::default())),
        extra: Extra::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call by its OpenAI index.
    Tool(u32),
}

/// Re-encodes canonical chat chunks as Anthropic's named SSE events, statefully: one
/// `message_start`, content blocks opened and closed as the delta kind changes (reasoning →
/// thinking, content → text, each tool call → its own `tool_use` block), and at the end one
/// `message_delta` with the stop reason and usage, then `message_stop`.
#[derive(Debug, Default)]
pub struct AnthropicEventEncoder {
    started: bool,
    finished: bool,
    next_block: u32,
    /// Open blocks with their Anthropic index, in opening order.
    open: Vec<(Open, u32)>,
    stop_reason: Option<String>,
    usage: Option<Usage>,
}

impl AnthropicEventEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
        encode_event(out, Some(name), &data.to_string());
    }

    fn close_all(&mut self, out: &mut Vec<u8>) {
        for (_, index) in std::mem::take(&mut self.open) {
            Self::event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
        }
    }

    /// The Anthropic index of the open block of this kind, opening it (and closing the others
    /// unless both are tool calls) when needed.
    fn block(&mut self, kind: Open, start: Value, out: &mut Vec<u8>) -> u32 {
        if let Some((_, i)) = self.open.iter().find(|(k, _)| *k == kind) {
            return *i;
        }
        let keep_open =
            matches!(kind, Open::Tool(_)) && self.open.iter().all(|(k, _)| matches!(k, Open::Tool(_)));
        if !keep_open {
            self.close_all(out);
        }
        let index = self.next_block;
        self.next_block += 1;
        self.open.push((kind, index));
        Self::event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: Value) {
        Self::event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    /// Encodes one chunk.
    pub fn push(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if !self.started {
            self.started = true;
            let usage = chunk.usage.as_ref().map(usage_to_wire).unwrap_or(WireUsage {
                input_tokens: Some(0),
                output_tokens: Some(0),
                ..WireUsage::default()
            });
            let message = json!({
                "id": chunk.id, "type": "message", "role": "assistant", "model": chunk.model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage,
            });
            Self::event(out, "message_start", &json!({"type": "message_start", "message": message}));
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else { return };
        let d = &choice.delta;
        if let Some(r) = d.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
            let i =
                self.block(Open::Thinking, json!({"type": "thinking", "thinking": "", "signature": ""}), out);
            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": r}));
        }
        if let Some(Value::Array(blocks)) = d.extra.get("thinking_blocks") {
            for b in blocks {
                match (b.get("type").and_then(Value::as_str), b.get("signature").and_then(Value::as_str)) {
                    (Some("thinking"), Some(sig)) if !sig.is_empty() => {
                        let i = self.block(
                            Open::Thinking,
                            json!({"type": "thinking", "thinking": "", "signature": ""}),
                            out,
                        );
                        Self::delta(out, i, json!({"type": "signature_delta", "signature": sig}));
                        // The thinking block is complete once its signature is known.
                        self.close_all(out);
                    }
                    (Some("redacted_thinking"), _) => {
                        self.close_all(out);
                        let index = self.next_block;
                        self.next_block += 1;
                        Self::event(
                            out,
                            "content_block_start",
                            &json!({"type": "content_block_start", "index": index, "content_block": b}),
                        );
                        Self::event(
                            out,
                            "content_block_stop",
                            &json!({"type": "content_block_stop", "index": index}),
                        );
                    }
                    _ => {}
                }
            }
        }
        if let Some(t) = d.content.as_ref().filter(|t| !t.is_empty()) {
            let i = self.block(Open::Text, json!({"type": "text", "text": ""}), out);
            Self::delta(out, i, json!({"type": "text_delta", "text": t}));
        }
        for tc in d.tool_calls.iter().flatten() {
            let name = tc.function.as_ref().and_then(|f| f.name.clone()).unwrap_or_default();
            let start = json!({"type": "tool_use", "id": tc.id.clone().unwrap_or_default(), "name": name, "input": {}});
            let i = self.block(Open::Tool(tc.index), start, out);
            if let Some(args) =
                tc.function.as_ref().and_then(|f| f.arguments.as_ref()).filter(|a| !a.is_empty())
            {
                Self::delta(out, i, json!({"type": "input_json_delta", "partial_json": args}));
            }
        }
        if let Some(f) = &choice.finish_reason {
            self.stop_reason = Some(stop_reason_for(f));
        }
    }

    /// Ends the message: closes open blocks, sends `message_delta` (stop reason, usage) and
    /// `message_stop`. Call it once the upstream stream has ended cleanly.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished || !self.started {
            return;
        }
        self.finished = true;
        self.close_all(out);
        let usage = usage_to_wire(&self.usage.clone().unwrap_or_default());
        Self::event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason.clone().unwrap_or_else(|| "end_turn".into()), "stop_sequence": null},
                    "usage": usage}),
        );
        Self::event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}
