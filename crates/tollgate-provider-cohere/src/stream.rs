//! Cohere v2 chat SSE stream → OpenAI `chat.completion.chunk`s.
//!
//! Each SSE event carries a JSON object whose `type` names it (the `event:` line repeats the
//! name; it is used when `type` is missing). Handled events:
//!
//! * `message-start` — the stream id; becomes the first chunk (`role: assistant`);
//! * `content-start` / `content-delta` — `delta.message.content.text` → `content`, `.thinking` →
//!   `reasoning_content` (the start event's text is normally empty and then yields nothing);
//! * `tool-plan-delta` — `delta.message.tool_plan` → `reasoning_content`;
//! * `tool-call-start` / `tool-call-delta` — keyed by the event's `index`, become OpenAI
//!   tool-call deltas (the first fragment carries id, type and name; later ones only arguments).
//!   Cohere sends calls one after another, but since every event names its call by `index`,
//!   interleaved calls decode correctly too;
//! * `message-end` — the terminator: `finish_reason` goes on a final choice chunk, `usage`
//!   (billed units, see the crate docs) on a usage chunk with `choices: []`; a `delta.error` or
//!   a `finish_reason` of `ERROR`/`TIMEOUT` becomes a typed error instead.
//!
//! A stream without `message-start` gets a generated `chatcmpl-<hex>` id.
//!
//! Skipped by design: `content-end`, `tool-call-end`, `citation-start`/
//! `citation-end` (OpenAI chunks have no citations), `debug`, and any event type Cohere adds later.
//! A data object without `type` but with a `message` string is an error report and becomes a
//! typed error.

use serde_json::Value;
use tollgate_core::chat::{ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use tollgate_core::error::body_excerpt;
use tollgate_core::sse::{SseDecoder, SseError};
use tollgate_core::{ChatChunk, Extra, FinishReason, ProviderError, Role, StreamDecoder};

use crate::response::{arguments, error_message, finish_reason, usage};

/// A fresh id for a stream whose `message-start` carried none: a per-process random seed (std's
/// `RandomState`) mixed with a counter.
fn fallback_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("chatcmpl-{:016x}", h.finish())
}

/// Decodes one Cohere chat stream. Every chunk carries the id of `message-start`.
#[derive(Debug)]
pub struct CohereStreamDecoder {
    provider: String,
    model: String,
    sse: SseDecoder,
    id: Option<String>,
    fallback: Option<String>,
    role_sent: bool,
    /// Cohere's tool-call `index` → OpenAI tool-call index, in order of first appearance.
    tool_indices: Vec<u64>,
    done: bool,
    failed: bool,
}

impl CohereStreamDecoder {
    pub fn new(provider: &str, model: &str) -> Self {
        Self::build(provider, model, None)
    }

    /// A decoder that uses `id` when the stream's `message-start` carries none (instead of a
    /// random one): for reproducible output.
    pub fn with_fallback_id(provider: &str, model: &str, id: &str) -> Self {
        Self::build(provider, model, Some(id.to_owned()))
    }

    fn build(provider: &str, model: &str, fallback: Option<String>) -> Self {
        CohereStreamDecoder {
            provider: provider.to_owned(),
            model: model.to_owned(),
            sse: SseDecoder::new(),
            id: None,
            fallback,
            role_sent: false,
            tool_indices: Vec::new(),
            done: false,
            failed: false,
        }
    }

    fn err(&mut self, e: ProviderError) -> ProviderError {
        self.failed = true;
        e.with_provider(self.provider.clone())
    }

    fn chunk(&mut self) -> ChatChunk {
        if self.id.is_none() {
            self.id = Some(self.fallback.take().unwrap_or_else(fallback_id));
        }
        let id = self.id.clone().unwrap_or_default();
        ChatChunk::new(id, self.model.clone(), 0)
    }

    fn push_delta(&mut self, mut delta: Delta, finish: Option<FinishReason>, out: &mut Vec<ChatChunk>) {
        if !self.role_sent {
            delta.role = Some(Role::Assistant);
            self.role_sent = true;
        }
        let mut choice = ChunkChoice::new(0, delta);
        choice.finish_reason = finish;
        let mut c = self.chunk();
        c.choices.push(choice);
        out.push(c);
    }

    fn tool_index(&mut self, cohere_index: u64) -> u32 {
        match self.tool_indices.iter().position(|i| *i == cohere_index) {
            Some(p) => p as u32,
            None => {
                self.tool_indices.push(cohere_index);
                (self.tool_indices.len() - 1) as u32
            }
        }
    }

    fn handle(
        &mut self,
        name: Option<&str>,
        data: &str,
        out: &mut Vec<ChatChunk>,
    ) -> Result<(), ProviderError> {
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::decode(format!(
                "Cohere stream event is not JSON ({e}): {}",
                body_excerpt(data.as_bytes())
            ))
        })?;
        if !v.is_object() {
            return Err(ProviderError::decode(format!(
                "Cohere stream event is not a JSON object: {}",
                body_excerpt(data.as_bytes())
            )));
        }
        let kind = v.get("type").and_then(Value::as_str).or(name);
        let message = v.get("delta").and_then(|d| d.get("message"));
        match kind {
            Some("message-start") => {
                if let Some(id) = v.get("id").and_then(Value::as_str)
                    && self.id.is_none()
                {
                    self.id = Some(id.to_owned());
                }
                if !self.role_sent {
                    let delta = Delta { content: Some(String::new()), ..Delta::default() };
                    self.push_delta(delta, None, out);
                }
            }
            Some("content-start" | "content-delta") => {
                let content = message.and_then(|m| m.get("content"));
                let text =
                    content.and_then(|c| c.get("text")).and_then(Value::as_str).filter(|t| !t.is_empty());
                let thinking =
                    content.and_then(|c| c.get("thinking")).and_then(Value::as_str).filter(|t| !t.is_empty());
                if text.is_some() || thinking.is_some() {
                    let delta = Delta {
                        content: text.map(str::to_owned),
                        reasoning_content: thinking.map(str::to_owned),
                        ..Delta::default()
                    };
                    self.push_delta(delta, None, out);
                }
            }
            Some("tool-plan-delta") => {
                if let Some(plan) = message.and_then(|m| m.get("tool_plan")).and_then(Value::as_str) {
                    let delta = Delta { reasoning_content: Some(plan.to_owned()), ..Delta::default() };
                    self.push_delta(delta, None, out);
                }
            }
            Some(k @ ("tool-call-start" | "tool-call-delta")) => {
                let cohere_index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let index = self.tool_index(cohere_index);
                let call = message.and_then(|m| m.get("tool_calls"));
                let func = call.and_then(|c| c.get("function"));
                let tc = if k == "tool-call-start" {
                    ToolCallDelta {
                        index,
                        id: Some(
                            call.and_then(|c| c.get("id"))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(
                                func.and_then(|f| f.get("name"))
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_owned(),
                            ),
                            arguments: Some(arguments(func.and_then(|f| f.get("arguments")))),
                        }),
                        extra: Extra::new(),
                    }
                } else {
                    let args = arguments(func.and_then(|f| f.get("arguments")));
                    if args.is_empty() {
                        return Ok(());
                    }
                    ToolCallDelta {
                        index,
                        function: Some(FunctionCallDelta { name: None, arguments: Some(args) }),
                        ..ToolCallDelta::default()
                    }
                };
                let delta = Delta { tool_calls: Some(vec![tc]), ..Delta::default() };
                self.push_delta(delta, None, out);
            }
            Some("message-end") => {
                let delta = v.get("delta");
                let error =
                    delta.and_then(|d| d.get("error")).and_then(Value::as_str).filter(|e| !e.is_empty());
                let reason = delta.and_then(|d| d.get("finish_reason")).and_then(Value::as_str);
                if let Some(e) = error {
                    // Always an error: `finish_reason` fails for ERROR and TIMEOUT.
                    let r = if reason == Some("TIMEOUT") { "TIMEOUT" } else { "ERROR" };
                    finish_reason(r, Some(e))?;
                }
                let finish = match reason {
                    Some(r) => finish_reason(r, error)?,
                    None => FinishReason::Stop,
                };
                self.push_delta(Delta::default(), Some(finish), out);
                if let Some(u) = delta.and_then(|d| d.get("usage")).and_then(usage) {
                    let mut c = self.chunk();
                    c.usage = Some(u);
                    out.push(c);
                }
                self.done = true;
            }
            None => {
                if let Some(msg) = error_message(&v) {
                    return Err(crate::error::classify_message(None, msg.to_owned()));
                }
            }
            // content-start, content-end, tool-call-end, citation-*, debug, future events.
            Some(_) => {}
        }
        Ok(())
    }
}

impl StreamDecoder<ChatChunk> for CohereStreamDecoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        let mut events = Vec::new();
        let fed = self.sse.feed(bytes, &mut events);
        for ev in events {
            if self.done {
                break;
            }
            if let Err(e) = self.handle(ev.event.as_deref(), &ev.data, out) {
                return Err(self.err(e));
            }
        }
        if let Err(e) = fed {
            if self.done {
                // Garbage after the terminator is not the stream's problem.
                return Ok(());
            }
            let msg = match e {
                SseError::InvalidUtf8 { .. } | SseError::TooLarge { .. } => {
                    format!("Cohere event stream: {e}")
                }
            };
            return Err(self.err(ProviderError::decode(msg)));
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        let e = ProviderError::decode("the Cohere stream ended before its `message-end` event");
        Err(self.err(e))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
