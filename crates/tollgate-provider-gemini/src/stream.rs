//! `streamGenerateContent?alt=sse` → OpenAI chat chunks.
//!
//! Every SSE `data:` line is one whole `GenerateContentResponse`. There is no `[DONE]`: the
//! stream ends after the chunk that carries a `finishReason`, so EOF after a finish reason is a
//! clean end and EOF before one (or an empty body) is a [`ErrorKind::Decode`] error. A final
//! event that lacks its blank line is still read at EOF (a cut inside its JSON is a decode error).
//!
//! Gemini sends each function call whole, in one part of one chunk: there are no argument
//! fragments to join and calls never interleave. Each call becomes one OpenAI tool-call delta
//! carrying `id`, `type`, `name` and the complete `arguments`, with a per-choice `index` that
//! counts calls in arrival order. `usageMetadata` is cumulative and repeated; the last one seen is
//! emitted at EOF as a final chunk with `choices: []`. A `{"error": …}` event mid-stream becomes
//! the typed error of [`crate::error`]; a blocked prompt becomes `ContentFiltered`. Events with
//! no candidates and no error (e.g. usage-only) are accepted; SSE comments and `event:` names are
//! ignored.

use serde_json::Value;
use tollgate_core::chat::{ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta};
use tollgate_core::sse::{SseDecoder, SseEvent};
use tollgate_core::{ChatChunk, ErrorKind, ProviderError, Role, StreamDecoder, Usage};

use crate::response::{
    GenerateContentResponse, args_string, blocked_prompt_error, fallback_id, map_finish_reason, map_logprobs,
    map_usage, now_unix, parse_rfc3339_utc, tool_call_id,
};

#[derive(Debug, Default, Clone)]
struct CandidateState {
    role_sent: bool,
    calls: u32,
    finished: bool,
}

/// The stream decoder for both Gemini flavors.
#[derive(Debug)]
pub struct GeminiStreamDecoder {
    provider: &'static str,
    sse: SseDecoder,
    events: Vec<SseEvent>,
    id: Option<String>,
    model: String,
    created: u64,
    candidates: Vec<CandidateState>,
    any_finished: bool,
    usage: Option<Usage>,
    failed: bool,
    ended: bool,
}

impl GeminiStreamDecoder {
    pub fn new(provider: &'static str, model: &str) -> Self {
        GeminiStreamDecoder {
            provider,
            sse: SseDecoder::new(),
            events: Vec::new(),
            id: None,
            model: model.to_owned(),
            created: now_unix(),
            candidates: Vec::new(),
            any_finished: false,
            usage: None,
            failed: false,
            ended: false,
        }
    }

    fn decode_error(&self, msg: impl Into<String>) -> ProviderError {
        ProviderError::decode(msg).with_provider(self.provider)
    }

    fn fail(&mut self, e: ProviderError) -> Result<(), ProviderError> {
        self.failed = true;
        Err(e)
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if let Err(e) = self.sse.feed(bytes, &mut self.events) {
            let e = self.decode_error(format!("{} stream: {e}", self.provider));
            return self.fail(e);
        }
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            if let Err(e) = self.event(&ev.data, out) {
                return self.fail(e);
            }
        }
        self.events = events;
        self.events.clear();
        Ok(())
    }

    fn event(&mut self, data: &str, out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            self.decode_error(format!(
                "{} stream event is not JSON ({e}): {}",
                self.provider,
                tollgate_core::error::body_excerpt(data.as_bytes())
            ))
        })?;
        if let Some(e) = crate::error::from_value(self.provider, None, &http::HeaderMap::new(), &value) {
            return Err(e);
        }
        let r: GenerateContentResponse = serde_json::from_value(value).map_err(|e| {
            self.decode_error(format!("{} stream event has an unexpected shape: {e}", self.provider))
        })?;
        if let Some(e) = blocked_prompt_error(self.provider, &r) {
            return Err(e);
        }
        if self.id.is_none() {
            self.id = Some(r.response_id.clone().filter(|i| !i.is_empty()).unwrap_or_else(fallback_id));
            if let Some(t) = r.create_time.as_deref().and_then(parse_rfc3339_utc) {
                self.created = t;
            }
        }
        if let Some(m) = r.model_version.as_deref().filter(|m| !m.is_empty()) {
            m.clone_into(&mut self.model);
        }
        if let Some(u) = &r.usage_metadata {
            self.usage = Some(map_usage(u));
        }
        let id = self.id.clone().unwrap_or_default();
        let mut choices = Vec::new();
        for (pos, c) in r.candidates.iter().enumerate() {
            let index = c.index.unwrap_or(pos as u32);
            let slot = index as usize;
            if slot > 1024 {
                return Err(self.decode_error(format!(
                    "{} stream: candidate index {index} is implausible",
                    self.provider
                )));
            }
            if self.candidates.len() <= slot {
                self.candidates.resize_with(slot + 1, CandidateState::default);
            }
            let st = &mut self.candidates[slot];
            let mut delta = Delta::default();
            let mut calls = Vec::new();
            for part in c.content.iter().flat_map(|c| &c.parts) {
                if let Some(fc) = &part.function_call {
                    calls.push(ToolCallDelta {
                        index: st.calls,
                        id: Some(tool_call_id(&id, index, st.calls, part)),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(fc.name.clone()),
                            arguments: Some(args_string(fc)),
                        }),
                        ..ToolCallDelta::default()
                    });
                    st.calls += 1;
                } else if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                    let slot = if part.thought == Some(true) {
                        &mut delta.reasoning_content
                    } else {
                        &mut delta.content
                    };
                    slot.get_or_insert_with(String::new).push_str(t);
                }
            }
            if !calls.is_empty() {
                delta.tool_calls = Some(calls);
            }
            let finish = c.finish_reason.as_deref().map(|f| map_finish_reason(f, st.calls > 0));
            if finish.is_some() {
                st.finished = true;
                self.any_finished = true;
            }
            let logprobs = c.logprobs_result.as_ref().and_then(map_logprobs);
            let has_payload = delta.content.is_some()
                || delta.reasoning_content.is_some()
                || delta.tool_calls.is_some()
                || finish.is_some()
                || logprobs.is_some();
            if !has_payload && st.role_sent {
                continue;
            }
            if !st.role_sent {
                delta.role = Some(Role::Assistant);
                st.role_sent = true;
            }
            let mut choice = ChunkChoice::new(index, delta);
            choice.finish_reason = finish;
            choice.logprobs = logprobs;
            choices.push(choice);
        }
        if !choices.is_empty() {
            let mut chunk = ChatChunk::new(id, self.model.clone(), self.created);
            chunk.choices = choices;
            out.push(chunk);
        }
        Ok(())
    }

    /// Whether every candidate seen so far has finished.
    fn all_finished(&self) -> bool {
        self.any_finished && self.candidates.iter().all(|c| c.finished || !c.role_sent)
    }
}

impl StreamDecoder<ChatChunk> for GeminiStreamDecoder {
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.failed || self.ended {
            return Ok(());
        }
        self.feed(bytes, out)
    }

    fn finish(&mut self, out: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        if self.failed || self.ended {
            return Ok(());
        }
        self.ended = true;
        if self.sse.has_partial() {
            // The last event may lack its blank line; a cut inside it fails to parse below.
            self.feed(b"\n\n", out)?;
        }
        if self.id.is_none() {
            return Err(ProviderError::new(
                ErrorKind::Decode,
                format!("{} stream ended without any event", self.provider),
            )
            .with_provider(self.provider));
        }
        if !self.all_finished() {
            return Err(
                self.decode_error(format!("{} stream was cut before its finishReason", self.provider))
            );
        }
        if let Some(u) = self.usage.take() {
            let mut chunk =
                ChatChunk::new(self.id.clone().unwrap_or_default(), self.model.clone(), self.created);
            chunk.usage = Some(u);
            out.push(chunk);
        }
        Ok(())
    }
}
