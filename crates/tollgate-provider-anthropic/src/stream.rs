//! The Anthropic named-event stream → OpenAI chat chunks, statefully.
//!
//! * `message_start` gives the id (used by every chunk), the model and the input-side usage; it
//!   yields the first chunk, `delta: {role: "assistant", content: ""}`.
//! * `content_block_start` / `content_block_delta` / `content_block_stop`, keyed by the block
//!   `index`: `text_delta` → `content`; `thinking_delta` → `reasoning_content`; `tool_use`
//!   blocks are numbered 0, 1, … in the order they start, their first chunk carrying
//!   `id`/`type`/`name` (and `arguments: ""`) and every `input_json_delta` fragment following as
//!   `arguments` only, with the same `index`. The JSON-mode tool's fragments are `content`.
//!   When a thinking block stops, one chunk carries the complete block (text + `signature`) in
//!   the delta's `thinking_blocks`, so signatures survive a streamed turn losslessly;
//!   `redacted_thinking` blocks are sent the same way when they start. `citations_delta` and
//!   delta types this version does not know are skipped.
//! * `message_delta` yields the last content chunk, `delta: {}` with the mapped finish reason,
//!   and updates the usage (its fields are cumulative: later values win).
//! * `message_stop` is the terminator: it yields the usage chunk (`choices: []`), combining
//!   `message_start` and `message_delta` usage in core's invariant (cache reads and writes
//!   counted in `prompt_tokens`).
//! * `ping` and unknown event types are skipped; `error` becomes the typed [`ProviderError`].
//!
//! Content events before `message_start`, deltas for a block that never started, malformed JSON
//! and invalid UTF-8 are [`ErrorKind::Decode`](tollgate_core::ErrorKind::Decode) errors; so is
//! EOF before `message_stop` (including an empty body). Bytes after `message_stop` are ignored.

use std::collections::HashMap;

use serde_json::Value;
use tollgate_core::chat::{ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use tollgate_core::sse::{SseDecoder, SseEvent};
use tollgate_core::{ChatChunk, Extra, ProviderError, Role, StreamDecoder};

use crate::PROVIDER;
use crate::error::error_from_detail;
use crate::request::JSON_TOOL_NAME;
use crate::response::{map_stop_reason, usage_from_wire};
use crate::wire::{BlockDelta, ContentBlock, KnownBlock, StreamEvent, WireUsage};

#[derive(Debug)]
enum Block {
    Text,
    Thinking { text: String, signature: String },
    Tool { index: u32 },
    JsonTool,
    Other,
}

/// Decodes one Anthropic Messages stream into chat chunks.
#[derive(Debug)]
pub struct AnthropicStreamDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    model: String,
    created: u64,
    started: bool,
    done: bool,
    failed: bool,
    blocks: HashMap<u32, Block>,
    next_tool_index: u32,
    usage: WireUsage,
}

fn decode_err(message: impl Into<String>) -> ProviderError {
    ProviderError::decode(message).with_provider(PROVIDER)
}

impl AnthropicStreamDecoder {
    /// A decoder whose chunks carry `created` (Anthropic events carry no timestamp) and `model`
    /// until `message_start` names the model.
    pub fn new(model: impl Into<String>, created: u64) -> Self {
        AnthropicStreamDecoder {
            sse: SseDecoder::new(),
            events: Vec::new(),
            id: String::new(),
            model: model.into(),
            created,
            started: false,
            done: false,
            failed: false,
            blocks: HashMap::new(),
            next_tool_index: 0,
            usage: WireUsage::default(),
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        let mut c = ChatChunk::new(self.id.clone(), self.model.clone(), self.created);
        c.choices = choices;
        c
    }

    fn delta_chunk(&self, delta: Delta) -> ChatChunk {
        self.chunk(vec![ChunkChoice::new(0, delta)])
    }

    fn require_started(&self, what: &str) -> Result<(), ProviderError> {
        if self.started { Ok(()) } else { Err(decode_err(format!("`{what}` before `message_start`"))) }
    }

    fn handle(&mut self, ev: &SseEvent, out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        let value: Value = serde_json::from_str(&ev.data).map_err(|e| {
            decode_err(format!(
                "malformed JSON in Anthropic `{}` event: {e}",
                ev.event.as_deref().unwrap_or("")
            ))
        })?;
        // The data's `type` is authoritative; the `event:` name is the fallback.
        let mut value = value;
        if value.get("type").is_none()
            && let (Some(name), Some(obj)) = (&ev.event, value.as_object_mut())
        {
            obj.insert("type".into(), Value::String(name.clone()));
        }
        let event: StreamEvent = serde_json::from_value(value)
            .map_err(|e| decode_err(format!("unexpected Anthropic stream event: {e}")))?;
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = message.usage;
                self.started = true;
                out.push(self.delta_chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                }));
            }
            StreamEvent::ContentBlockStart { index, content_block } => {
                self.require_started("content_block_start")?;
                self.block_start(index, content_block, out);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.require_started("content_block_delta")?;
                self.block_delta(index, delta, out)?;
            }
            StreamEvent::ContentBlockStop { index } => {
                self.require_started("content_block_stop")?;
                if let Some(Block::Thinking { text, signature }) = self.blocks.remove(&index) {
                    let block =
                        serde_json::json!({"type": "thinking", "thinking": text, "signature": signature});
                    out.push(self.thinking_blocks_chunk(block));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                self.require_started("message_delta")?;
                if let Some(u) = &usage {
                    self.usage.merge(u);
                }
                if let Some(reason) = delta.stop_reason {
                    let mut choice = ChunkChoice::new(0, Delta::default());
                    choice.finish_reason = Some(map_stop_reason(&reason, self.next_tool_index > 0));
                    out.push(self.chunk(vec![choice]));
                }
            }
            StreamEvent::MessageStop => {
                self.require_started("message_stop")?;
                self.done = true;
                let mut c = self.chunk(Vec::new());
                c.usage = Some(usage_from_wire(&self.usage));
                out.push(c);
            }
            StreamEvent::Ping | StreamEvent::Unknown => {}
            StreamEvent::Error { error } => {
                self.failed = true;
                return Err(error_from_detail(&error, None));
            }
        }
        Ok(())
    }

    fn thinking_blocks_chunk(&self, block: Value) -> ChatChunk {
        let mut extra = Extra::new();
        extra.insert("thinking_blocks".into(), Value::Array(vec![block]));
        self.delta_chunk(Delta { extra, ..Delta::default() })
    }

    fn block_start(&mut self, index: u32, block: ContentBlock, out: &mut Vec<ChatChunk>) {
        let state = match block {
            ContentBlock::Known(KnownBlock::Text { text, .. }) => {
                if !text.is_empty() {
                    out.push(self.delta_chunk(Delta { content: Some(text), ..Delta::default() }));
                }
                Block::Text
            }
            ContentBlock::Known(KnownBlock::Thinking { thinking, signature }) => {
                if !thinking.is_empty() {
                    out.push(self.delta_chunk(Delta {
                        reasoning_content: Some(thinking.clone()),
                        ..Delta::default()
                    }));
                }
                Block::Thinking { text: thinking, signature }
            }
            ContentBlock::Known(b @ KnownBlock::RedactedThinking { .. }) => {
                if let Ok(v) = serde_json::to_value(&b) {
                    out.push(self.thinking_blocks_chunk(v));
                }
                Block::Other
            }
            ContentBlock::Known(KnownBlock::ToolUse { name, .. }) if name == JSON_TOOL_NAME => {
                Block::JsonTool
            }
            ContentBlock::Known(KnownBlock::ToolUse { id, name, .. }) => {
                let index = self.next_tool_index;
                self.next_tool_index += 1;
                out.push(self.delta_chunk(Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index,
                        id: Some(id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(String::new()),
                        }),
                        extra: Extra::new(),
                    }]),
                    ..Delta::default()
                }));
                Block::Tool { index }
            }
            // Server tool calls and results, documents, …: not representable as OpenAI deltas.
            _ => Block::Other,
        };
        self.blocks.insert(index, state);
    }

    fn block_delta(
        &mut self,
        index: u32,
        delta: BlockDelta,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), ProviderError> {
        let Some(block) = self.blocks.get_mut(&index) else {
            return Err(decode_err(format!("`content_block_delta` for block {index}, which never started")));
        };
        let d = match (block, delta) {
            (Block::Text, BlockDelta::TextDelta { text }) => {
                Delta { content: Some(text), ..Delta::default() }
            }
            (Block::Thinking { text, .. }, BlockDelta::ThinkingDelta { thinking }) => {
                text.push_str(&thinking);
                Delta { reasoning_content: Some(thinking), ..Delta::default() }
            }
            (Block::Thinking { signature, .. }, BlockDelta::SignatureDelta { signature: s }) => {
                signature.push_str(&s);
                return Ok(());
            }
            (Block::Tool { .. } | Block::JsonTool, BlockDelta::InputJsonDelta { partial_json })
                if partial_json.is_empty() =>
            {
                return Ok(());
            }
            (Block::Tool { index }, BlockDelta::InputJsonDelta { partial_json }) => Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    index: *index,
                    function: Some(FunctionCallDelta { name: None, arguments: Some(partial_json) }),
                    ..ToolCallDelta::default()
                }]),
                ..Delta::default()
            },
            (Block::JsonTool, BlockDelta::InputJsonDelta { partial_json }) => {
                Delta { content: Some(partial_json), ..Delta::default() }
            }
            // Citations, deltas of blocks tollgate does not map, unknown delta types: skipped.
            _ => return Ok(()),
        };
        let empty = d.content.as_deref() == Some("") || d.reasoning_content.as_deref() == Some("");
        if !empty {
            out.push(self.delta_chunk(d));
        }
        Ok(())
    }
}

impl StreamDecoder<ChatChunk> for AnthropicStreamDecoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let fed = self.sse.feed(bytes, &mut events);
        let mut result = Ok(());
        for ev in &events {
            if self.done {
                break;
            }
            if let Err(e) = self.handle(ev, out) {
                self.failed = true;
                result = Err(e);
                break;
            }
        }
        self.events = events;
        result?;
        if let Err(e) = fed {
            self.failed = true;
            return Err(decode_err(format!("invalid Anthropic event stream: {e}")));
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        self.failed = true;
        Err(decode_err(if self.started {
            "the Anthropic stream ended before `message_stop`"
        } else {
            "the Anthropic stream ended before `message_start` (empty or cut stream)"
        }))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
