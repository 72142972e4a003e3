//! The built-in `mock` provider: answers without any upstream, so a quickstart config serves
//! offline and load tests measure only the gateway.
//!
//! It is an in-process path of the proxy rather than an adapter: adapters are sans-IO and always
//! produce an HTTP request, and a mock needs none. The handlers check whether the requested
//! group is a mock group ([`crate::ProxyConfig::mocks`]) before calling the SDK client.
//!
//! Replies: `mock_response` when configured, else an echo of the last user message (the prompt
//! for text completions). Usage is deterministic: prompt tokens = whitespace-separated words of
//! every message, completion tokens = words of the reply. Streams send one chunk per word.
//! Embeddings are deterministic 16-dimensional (or `dimensions`) unit vectors derived from an
//! FNV-1a hash of each input; `encoding_format` is ignored (floats are always returned).

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;
use serde_json::Value;
use tollgate::tollgate_core::Extra;
use tollgate::tollgate_core::chat::{ChunkChoice, Delta};
use tollgate::tollgate_core::completion::TextChoice;
use tollgate::tollgate_core::embedding::{Embedding, EmbeddingUsage, EmbeddingVector};
use tollgate::{
    AssistantMessage, ChatChunk, ChatRequest, ChatResponse, Choice, EmbeddingInput, EmbeddingRequest,
    EmbeddingResponse, FinishReason, ProviderError, Role, TextCompletionRequest, TextCompletionResponse,
    Usage,
};

use crate::config::MockSettings;

/// A stream of items or one error, as the SDK's streams.
pub(crate) type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, ProviderError>> + Send>>;

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// One piece per word, each keeping the whitespace after it, so the pieces concatenate back.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            in_space = true;
        } else if in_space && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            in_space = false;
        } else {
            in_space = false;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn chat_reply(mock: &MockSettings, req: &ChatRequest) -> String {
    if let Some(r) = &mock.response {
        return r.clone();
    }
    req.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.text()).unwrap_or_default()
}

fn chat_usage(req: &ChatRequest, reply: &str) -> Usage {
    Usage::new(req.messages.iter().map(|m| words(&m.text())).sum(), words(reply))
}

fn prompt_texts(prompt: &Value) -> Vec<String> {
    match prompt {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// A non-streamed chat completion.
pub(crate) fn chat(mock: &MockSettings, req: &ChatRequest, id: &str, created: u64) -> ChatResponse {
    let reply = chat_reply(mock, req);
    ChatResponse {
        id: format!("chatcmpl-mock-{id}"),
        object: "chat.completion".into(),
        created,
        model: req.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage { content: Some(reply.clone()), ..AssistantMessage::default() },
            finish_reason: Some(FinishReason::Stop),
            logprobs: None,
            extra: Extra::new(),
        }],
        usage: Some(chat_usage(req, &reply)),
        system_fingerprint: None,
        service_tier: None,
        extra: Extra::new(),
    }
}

/// A streamed chat completion: role chunk, one chunk per word, finish chunk, and the usage chunk
/// (`choices: []`) when `stream_options.include_usage` is set.
pub(crate) fn chat_stream(
    mock: &MockSettings,
    req: &ChatRequest,
    id: &str,
    created: u64,
) -> ItemStream<ChatChunk> {
    let reply = chat_reply(mock, req);
    let id = format!("chatcmpl-mock-{id}");
    let chunk = |delta: Delta, finish: Option<FinishReason>| {
        let mut c = ChatChunk::new(id.clone(), req.model.clone(), created);
        let mut choice = ChunkChoice::new(0, delta);
        choice.finish_reason = finish;
        c.choices.push(choice);
        c
    };
    let mut chunks = VecDeque::new();
    chunks.push_back(chunk(
        Delta { role: Some(Role::Assistant), content: Some(String::new()), ..Delta::default() },
        None,
    ));
    for p in pieces(&reply) {
        chunks.push_back(chunk(Delta { content: Some(p), ..Delta::default() }, None));
    }
    chunks.push_back(chunk(Delta::default(), Some(FinishReason::Stop)));
    if req.wants_stream_usage() {
        let mut u = ChatChunk::new(id.clone(), req.model.clone(), created);
        u.usage = Some(chat_usage(req, &reply));
        chunks.push_back(u);
    }
    paced(chunks, mock.chunk_delay)
}

/// A non-streamed text completion (one choice per prompt string).
pub(crate) fn text_completion(
    mock: &MockSettings,
    req: &TextCompletionRequest,
    id: &str,
    created: u64,
) -> TextCompletionResponse {
    let prompts = prompt_texts(&req.prompt);
    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (i, p) in prompts.iter().enumerate() {
        let reply = mock.response.clone().unwrap_or_else(|| p.clone());
        prompt_tokens += words(p);
        completion_tokens += words(&reply);
        choices.push(text_choice(i as u32, reply, Some(FinishReason::Stop)));
    }
    TextCompletionResponse {
        id: format!("cmpl-mock-{id}"),
        object: "text_completion".into(),
        created,
        model: req.model.clone(),
        choices,
        usage: Some(Usage::new(prompt_tokens, completion_tokens)),
        system_fingerprint: None,
        extra: Extra::new(),
    }
}

fn text_choice(index: u32, text: String, finish: Option<FinishReason>) -> TextChoice {
    TextChoice { text, index, logprobs: None, finish_reason: finish, extra: Extra::new() }
}

/// A streamed text completion (first prompt only): one chunk per word, then the usage chunk
/// when asked.
pub(crate) fn text_completion_stream(
    mock: &MockSettings,
    req: &TextCompletionRequest,
    id: &str,
    created: u64,
) -> ItemStream<TextCompletionResponse> {
    let full = text_completion(mock, req, id, created);
    let reply = full.choices.first().map(|c| c.text.clone()).unwrap_or_default();
    let chunk = |choices: Vec<TextChoice>| TextCompletionResponse { choices, usage: None, ..full.clone() };
    let mut chunks = VecDeque::new();
    let ps = pieces(&reply);
    let n = ps.len();
    for (i, p) in ps.into_iter().enumerate() {
        let finish = (i + 1 == n).then_some(FinishReason::Stop);
        chunks.push_back(chunk(vec![text_choice(0, p, finish)]));
    }
    if n == 0 {
        chunks.push_back(chunk(vec![text_choice(0, String::new(), Some(FinishReason::Stop))]));
    }
    let wants_usage = req.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    if wants_usage {
        let mut u = chunk(Vec::new());
        u.usage = full.usage.clone();
        chunks.push_back(u);
    }
    paced(chunks, mock.chunk_delay)
}

/// Deterministic embeddings.
pub(crate) fn embedding(req: &EmbeddingRequest) -> EmbeddingResponse {
    let inputs: Vec<String> = match &req.input {
        EmbeddingInput::Text(t) => vec![t.clone()],
        EmbeddingInput::Texts(v) => v.clone(),
        EmbeddingInput::Tokens(t) => vec![format!("{t:?}")],
        EmbeddingInput::TokenBatches(b) => b.iter().map(|t| format!("{t:?}")).collect(),
    };
    let dims = req.dimensions.unwrap_or(16).clamp(1, 4096) as usize;
    let prompt_tokens = match &req.input {
        EmbeddingInput::Tokens(t) => t.len() as u64,
        EmbeddingInput::TokenBatches(b) => b.iter().map(|t| t.len() as u64).sum(),
        _ => inputs.iter().map(|t| words(t)).sum(),
    };
    let data = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| Embedding {
            object: "embedding".into(),
            index: i as u32,
            embedding: EmbeddingVector::Float(vector(text, dims)),
            extra: Extra::new(),
        })
        .collect();
    EmbeddingResponse {
        object: "list".into(),
        data,
        model: req.model.clone(),
        usage: Some(EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens, extra: Extra::new() }),
        extra: Extra::new(),
    }
}

/// A unit vector derived from the text (FNV-1a seeded xorshift).
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut v = Vec::with_capacity(dims);
    for _ in 0..dims {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        v.push(((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0);
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Yields the items in order, waiting `delay` before each one but the first.
fn paced<T: Send + 'static>(items: VecDeque<T>, delay: Duration) -> ItemStream<T> {
    Box::pin(futures_util::stream::unfold((items, true), move |(mut items, first)| async move {
        let item = items.pop_front()?;
        if !first && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok(item), (items, false)))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tollgate::Message;

    #[test]
    fn pieces_concatenate_back() {
        for text in ["hello big  world", " lead", "trail ", "", "one"] {
            assert_eq!(pieces(text).concat(), text);
        }
        assert_eq!(pieces("hello big world"), vec!["hello ", "big ", "world"]);
    }

    #[tokio::test]
    async fn echo_stream_matches_non_streamed_reply() {
        let mut req = ChatRequest::new("m", vec![Message::system("be nice"), Message::user("say hi there")]);
        let mock = MockSettings::default();
        let full = chat(&mock, &req, "1", 0);
        assert_eq!(full.first_text(), Some("say hi there"));
        assert_eq!(full.usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((5, 3)));
        req.stream_options = Some(tollgate::tollgate_core::chat::StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        });
        let chunks: Vec<_> = chat_stream(&mock, &req, "1", 0).collect().await;
        let text: String = chunks
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
            .collect();
        assert_eq!(text, "say hi there");
        let last = chunks.last().unwrap().as_ref().unwrap();
        assert!(last.choices.is_empty());
        assert_eq!(last.usage, full.usage);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let req = EmbeddingRequest::new("e", EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        let a = embedding(&req);
        let b = embedding(&req);
        assert_eq!(a, b);
        assert_eq!(a.data.len(), 2);
        let EmbeddingVector::Float(v) = &a.data[0].embedding else { panic!("floats") };
        assert_eq!(v.len(), 16);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_ne!(a.data[0].embedding, a.data[1].embedding);
    }
}
