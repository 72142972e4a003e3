//! ConverseStream: event-stream frames → OpenAI chat chunks.
//!
//! Events: `messageStart` (role chunk), `contentBlockStart` (a `toolUse` start opens an OpenAI
//! tool call: id, type and name, `arguments: ""`), `contentBlockDelta` (`text` → content,
//! `toolUse.input` partial JSON → arguments, `reasoningContent.text` → `reasoning_content`,
//! `reasoningContent.signature`/`redactedContent` → a `thinking_blocks` delta field),
//! `contentBlockStop` (nothing), `messageStop` (the finish reason chunk) and `metadata`
//! (the usage chunk, `choices: []`, always emitted). Unknown event types are skipped.
//! `:message-type: exception` frames (`throttlingException`, `validationException`,
//! `modelStreamErrorException`, `serviceUnavailableException`, `internalServerException`)
//! and `:message-type: error` frames become typed errors.
//!
//! **Terminator**: the `metadata` event after `messageStop`. A body that ends before it is a
//! Decode error — including a cut between `messageStop` and `metadata`: the text is complete
//! then, but the usage (and so the cost) is lost, and tollgate does not record guessed costs.
//! Bytes after the terminator are ignored.

use std::collections::HashMap;

use serde_json::{Value, json};
use tollgate_core::chat::{ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use tollgate_core::{ChatChunk, FinishReason, ProviderError, Role, StreamDecoder};

use crate::PROVIDER;
use crate::eventstream::{Message, MessageDecoder};
use crate::request::JSON_TOOL_NAME;
use crate::response::{classify, map_stop_reason, map_usage};

#[derive(Debug, Clone, Copy)]
enum Block {
    /// An OpenAI tool call with this index.
    Tool(u32),
    /// The forced JSON-mode tool: its input is streamed as content.
    JsonTool,
}

/// Stateful decoder for one ConverseStream body.
#[derive(Debug)]
pub struct ConverseStreamDecoder {
    frames: MessageDecoder,
    id: String,
    model: String,
    created: u64,
    json_mode: bool,
    blocks: HashMap<u64, Block>,
    next_tool: u32,
    role_sent: bool,
    stopped: bool,
    done: bool,
}

fn decode_err(msg: impl Into<String>) -> ProviderError {
    ProviderError::decode(msg).with_provider(PROVIDER)
}

impl ConverseStreamDecoder {
    /// `json_mode`: the request emulated `response_format` with the forced JSON tool.
    pub fn new(id: String, model: String, created: u64, json_mode: bool) -> Self {
        ConverseStreamDecoder {
            frames: MessageDecoder::new(),
            id,
            model,
            created,
            json_mode,
            blocks: HashMap::new(),
            next_tool: 0,
            role_sent: false,
            stopped: false,
            done: false,
        }
    }

    fn chunk(&mut self, mut delta: Delta, finish: Option<FinishReason>) -> ChatChunk {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some(Role::Assistant);
        }
        let mut c = ChatChunk::new(self.id.clone(), self.model.clone(), self.created);
        let mut choice = ChunkChoice::new(0, delta);
        choice.finish_reason = finish;
        c.choices.push(choice);
        c
    }

    fn handle(&mut self, msg: Message, out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        match msg.header_str(":message-type").unwrap_or("event") {
            "exception" => {
                let ty = msg.header_str(":exception-type").unwrap_or("").to_owned();
                let text = serde_json::from_slice::<Value>(&msg.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("message")
                            .or_else(|| v.get("Message"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| String::from_utf8_lossy(&msg.payload).into_owned());
                return Err(classify(&ty, 200, &text));
            }
            "error" => {
                let code = msg.header_str(":error-code").unwrap_or("").to_owned();
                let text = msg.header_str(":error-message").unwrap_or("stream error").to_owned();
                return Err(classify(&code, 200, &text));
            }
            "event" => {}
            other => return Err(decode_err(format!("unknown event-stream :message-type {other:?}"))),
        }
        let Some(event) = msg.header_str(":event-type").map(str::to_owned) else {
            return Err(decode_err("event-stream event without :event-type"));
        };
        if self.done {
            return Ok(());
        }
        let known = matches!(
            event.as_str(),
            "messageStart"
                | "contentBlockStart"
                | "contentBlockDelta"
                | "contentBlockStop"
                | "messageStop"
                | "metadata"
        );
        if !known {
            return Ok(()); // Documented skip: event types added after this adapter was written.
        }
        let v: Value = serde_json::from_slice(&msg.payload)
            .map_err(|e| decode_err(format!("ConverseStream {event} payload is not JSON: {e}")))?;
        let index = || v.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match event.as_str() {
            "messageStart" if !self.role_sent => {
                let c = self.chunk(Delta { content: Some(String::new()), ..Delta::default() }, None);
                out.push(c);
            }
            "contentBlockStart" => {
                if let Some(tu) = v.pointer("/start/toolUse") {
                    let name = tu.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                    if self.json_mode && name == JSON_TOOL_NAME {
                        self.blocks.insert(index(), Block::JsonTool);
                        return Ok(());
                    }
                    let ti = self.next_tool;
                    self.next_tool += 1;
                    self.blocks.insert(index(), Block::Tool(ti));
                    let id = tu.get("toolUseId").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let delta = Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: ti,
                            id: Some(id),
                            kind: Some("function".into()),
                            function: Some(FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            }),
                            ..ToolCallDelta::default()
                        }]),
                        ..Delta::default()
                    };
                    let c = self.chunk(delta, None);
                    out.push(c);
                }
            }
            "contentBlockDelta" => {
                let Some(d) = v.get("delta") else {
                    return Err(decode_err("contentBlockDelta without `delta`"));
                };
                let mut delta = Delta::default();
                if let Some(t) = d.get("text").and_then(Value::as_str) {
                    delta.content = Some(t.to_owned());
                } else if let Some(tu) = d.get("toolUse") {
                    let input = tu.get("input").and_then(Value::as_str).unwrap_or_default().to_owned();
                    match self.blocks.get(&index()) {
                        Some(Block::Tool(ti)) => {
                            delta.tool_calls = Some(vec![ToolCallDelta {
                                index: *ti,
                                function: Some(FunctionCallDelta { name: None, arguments: Some(input) }),
                                ..ToolCallDelta::default()
                            }]);
                        }
                        Some(Block::JsonTool) => delta.content = Some(input),
                        None => {
                            return Err(decode_err(format!(
                                "toolUse delta for content block {} that was never started",
                                index()
                            )));
                        }
                    }
                } else if let Some(rc) = d.get("reasoningContent") {
                    if let Some(t) = rc.get("text").and_then(Value::as_str) {
                        delta.reasoning_content = Some(t.to_owned());
                    } else if let Some(sig) = rc.get("signature") {
                        delta.extra.insert(
                            "thinking_blocks".into(),
                            json!([{"type": "thinking", "thinking": "", "signature": sig}]),
                        );
                    } else if let Some(data) = rc.get("redactedContent") {
                        delta.extra.insert(
                            "thinking_blocks".into(),
                            json!([{"type": "redacted_thinking", "data": data}]),
                        );
                    } else {
                        return Ok(());
                    }
                } else {
                    return Ok(()); // citations and other delta kinds have no OpenAI equivalent
                }
                let c = self.chunk(delta, None);
                out.push(c);
            }
            "contentBlockStop" => {}
            "messageStop" => {
                let reason = v.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn");
                let mut finish = map_stop_reason(reason);
                let only_json_tool =
                    self.next_tool == 0 && self.blocks.values().any(|b| matches!(b, Block::JsonTool));
                if finish == FinishReason::ToolCalls && only_json_tool {
                    finish = FinishReason::Stop;
                }
                self.stopped = true;
                let c = self.chunk(Delta::default(), Some(finish));
                out.push(c);
            }
            "metadata" => {
                let mut c = ChatChunk::new(self.id.clone(), self.model.clone(), self.created);
                c.usage = Some(v.get("usage").map(map_usage).unwrap_or_default());
                for key in ["metrics", "trace"] {
                    if let Some(val) = v.get(key) {
                        c.extra.insert(key.into(), val.clone());
                    }
                }
                out.push(c);
                if self.stopped {
                    self.done = true;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder<ChatChunk> for ConverseStreamDecoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(()); // bytes after the terminator are ignored
        }
        self.frames.push(bytes);
        while !self.done {
            let msg = self.frames.next_message().map_err(|e| decode_err(e.to_string()))?;
            let Some(msg) = msg else { return Ok(()) };
            self.handle(msg, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        self.frames.finish().map_err(|e| decode_err(e.to_string()))?;
        if !self.stopped {
            return Err(decode_err("ConverseStream ended before messageStop"));
        }
        Err(decode_err("ConverseStream ended after messageStop but before the metadata (usage) event"))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
