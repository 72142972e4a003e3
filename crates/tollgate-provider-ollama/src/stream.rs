//! Ollama `/api/chat` NDJSON stream → OpenAI `chat.completion.chunk`s.
//!
//! The body is one JSON object per line. Every object until the last has `done: false` and a
//! `message` fragment (`content`, `thinking`, and — whole, never split — `tool_calls`); the last
//! has `done: true`, `done_reason` and the token counts. A line `{"error": "..."}` reports a
//! failure. Lines are only interpreted once complete, so any split of the bytes (inside a line,
//! inside a UTF-8 code point) decodes the same. Blank lines are skipped.
//!
//! Output: one id for the whole stream (generated: Ollama has none); the first chunk carries
//! `role: assistant`; each whole tool call becomes one OpenAI tool-call delta with id, type, name
//! and the complete arguments; the `done` line becomes a chunk with the finish reason and a
//! usage chunk with `choices: []`. Bytes after the `done` line are ignored.

use serde_json::Value;
use tollgate_core::chat::{ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use tollgate_core::error::body_excerpt;
use tollgate_core::{ChatChunk, Extra, ProviderError, Role, StreamDecoder};

use crate::response::{finish_reason, new_id, parse_object, tool_call, tool_call_id, unix_seconds, usage};

/// Far above any real line; keeps a runaway upstream from exhausting memory.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Decodes one Ollama chat stream.
#[derive(Debug)]
pub struct OllamaStreamDecoder {
    provider: String,
    model: String,
    id: String,
    created: Option<u64>,
    line: Vec<u8>,
    role_sent: bool,
    tool_calls: u32,
    done: bool,
    failed: bool,
}

impl OllamaStreamDecoder {
    /// A decoder with a freshly generated stream id.
    pub fn new(provider: &str, model: &str) -> Self {
        Self::with_id(provider, model, &new_id())
    }

    /// A decoder whose chunks carry `id` (reproducible output; callers that own a request id).
    pub fn with_id(provider: &str, model: &str, id: &str) -> Self {
        OllamaStreamDecoder {
            provider: provider.to_owned(),
            model: model.to_owned(),
            id: id.to_owned(),
            created: None,
            line: Vec::new(),
            role_sent: false,
            tool_calls: 0,
            done: false,
            failed: false,
        }
    }

    fn fail(&mut self, e: ProviderError) -> ProviderError {
        self.failed = true;
        e.with_provider(self.provider.clone())
    }

    fn chunk(&self) -> ChatChunk {
        ChatChunk::new(self.id.clone(), self.model.clone(), self.created.unwrap_or(0))
    }

    fn push_delta(&mut self, mut delta: Delta, out: &mut Vec<ChatChunk>) -> usize {
        if !self.role_sent {
            delta.role = Some(Role::Assistant);
            self.role_sent = true;
        }
        let mut c = self.chunk();
        c.choices.push(ChunkChoice::new(0, delta));
        out.push(c);
        out.len() - 1
    }

    fn handle_line(&mut self, line: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        if std::str::from_utf8(line).is_err() {
            return Err(ProviderError::decode(format!(
                "Ollama stream line is not UTF-8: {}",
                body_excerpt(line)
            )));
        }
        let v = parse_object(line, "stream line")?;
        if self.created.is_none() {
            self.created = v.get("created_at").and_then(Value::as_str).and_then(unix_seconds);
        }
        let msg = v.get("message");
        let text = msg.and_then(|m| m.get("content")).and_then(Value::as_str).filter(|s| !s.is_empty());
        let thinking = msg.and_then(|m| m.get("thinking")).and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut calls = Vec::new();
        for c in msg.and_then(|m| m.get("tool_calls")).and_then(Value::as_array).into_iter().flatten() {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let call = tool_call(c, tool_call_id(&self.id, index as usize));
            calls.push(ToolCallDelta {
                index,
                id: Some(call.id),
                kind: Some("function".into()),
                function: Some(FunctionCallDelta {
                    name: Some(call.function.name),
                    arguments: Some(call.function.arguments),
                }),
                extra: Extra::new(),
            });
        }
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        // A first line with nothing in it still opens the stream (role chunk), as OpenAI does.
        let first_empty =
            !self.role_sent && text.is_none() && thinking.is_none() && calls.is_empty() && !done;
        if text.is_some() || thinking.is_some() || !calls.is_empty() || first_empty {
            let delta = Delta {
                content: if first_empty { Some(String::new()) } else { text.map(str::to_owned) },
                reasoning_content: thinking.map(str::to_owned),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Delta::default()
            };
            self.push_delta(delta, out);
        }
        if done {
            let reason = finish_reason(v.get("done_reason").and_then(Value::as_str), self.tool_calls > 0);
            let idx = self.push_delta(Delta::default(), out);
            if let Some(choice) = out[idx].choices.first_mut() {
                choice.finish_reason = Some(reason);
            }
            if let Some(u) = usage(&v) {
                let mut c = self.chunk();
                c.usage = Some(u);
                out.push(c);
            }
            self.done = true;
        }
        Ok(())
    }
}

impl StreamDecoder<ChatChunk> for OllamaStreamDecoder {
    fn decode(&mut self, mut bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        while !bytes.is_empty() && !self.done && !self.failed {
            match bytes.iter().position(|b| *b == b'\n') {
                None => {
                    self.line.extend_from_slice(bytes);
                    if self.line.len() > MAX_LINE_BYTES {
                        let e = ProviderError::decode(format!(
                            "an Ollama stream line exceeded {MAX_LINE_BYTES} bytes"
                        ));
                        return Err(self.fail(e));
                    }
                    return Ok(());
                }
                Some(pos) => {
                    self.line.extend_from_slice(&bytes[..pos]);
                    bytes = &bytes[pos + 1..];
                    let line = std::mem::take(&mut self.line);
                    if let Err(e) = self.handle_line(&line, out) {
                        return Err(self.fail(e));
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.done || self.failed {
            return Ok(());
        }
        // A last line without its newline still counts when it is complete JSON.
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if let Err(e) = self.handle_line(&line, out) {
                let e = if e.kind == tollgate_core::ErrorKind::Decode {
                    ProviderError::decode(format!(
                        "the Ollama stream was cut inside a line: {}",
                        body_excerpt(&line)
                    ))
                } else {
                    e
                };
                return Err(self.fail(e));
            }
            if self.done {
                return Ok(());
            }
        }
        let e = ProviderError::decode("the Ollama stream ended before its `done: true` line");
        Err(self.fail(e))
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
