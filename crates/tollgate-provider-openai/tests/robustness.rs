//! Property tests: arbitrary upstream bytes give typed errors, never panics, and a valid stream
//! decodes to the same chunks however the network splits it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::json;
use tollgate_core::chat::{ChatChunk, ChatRequest};
use tollgate_core::{ErrorKind, RawResponse, StreamDecoder, UpstreamConfig};
use tollgate_provider_openai::adapter;

fn decoder(provider: &str) -> Box<dyn StreamDecoder<ChatChunk>> {
    adapter(provider).unwrap().chat_stream_decoder(&ChatRequest::new("m", vec![]), &UpstreamConfig::new("m"))
}

/// Decodes `pieces` then finishes; the chunks, or the first error's kind.
fn run(provider: &str, pieces: &[&[u8]]) -> Result<Vec<ChatChunk>, ErrorKind> {
    let mut d = decoder(provider);
    let mut out = Vec::new();
    for p in pieces {
        d.decode(p, &mut out).map_err(|e| e.kind)?;
    }
    d.finish(&mut out).map_err(|e| e.kind)?;
    Ok(out)
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&bytes[start..p]);
        start = p;
    }
    out.push(&bytes[start..]);
    out
}

fn stream_of(texts: &[String], done: bool) -> Vec<u8> {
    let mut s = String::new();
    for (i, t) in texts.iter().enumerate() {
        let finish = if i + 1 == texts.len() { json!("stop") } else { json!(null) };
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": finish}]});
        s.push_str(&format!("data: {chunk}\n\n"));
    }
    if done {
        s.push_str("data: [DONE]\n\n");
    }
    s.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_stream_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400),
                                          cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        for provider in ["openai", "azure", "groq"] {
            if let Err(kind) = run(provider, &split_at(&bytes, &cuts)) {
                prop_assert!(matches!(kind, ErrorKind::Decode | ErrorKind::ServerError | ErrorKind::BadRequest
                    | ErrorKind::RateLimited | ErrorKind::Authentication | ErrorKind::NotFound
                    | ErrorKind::ContextWindowExceeded | ErrorKind::ContentFiltered | ErrorKind::PermissionDenied
                    | ErrorKind::Overloaded | ErrorKind::Timeout(_)), "{kind:?}");
            }
        }
    }

    #[test]
    fn arbitrary_response_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), status in 200u16..600) {
        let a = adapter("openai").unwrap();
        let raw = RawResponse::new(http::StatusCode::from_u16(status).unwrap(), http::HeaderMap::new(), bytes);
        if raw.status.is_success() {
            let _ = a.chat_response(&raw);
            let _ = a.embedding_response(&raw);
            let _ = a.text_completion_response(&raw);
        } else {
            let e = a.error_response(&raw);
            prop_assert_eq!(e.status, Some(status));
            prop_assert_eq!(e.provider.as_deref(), Some("openai"));
        }
    }

    #[test]
    fn valid_streams_are_split_invariant(texts in prop::collection::vec("[a-z é🦀\"\\\\\n]{0,12}", 1..6),
                                         cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10)) {
        let bytes = stream_of(&texts, true);
        let whole = run("openai", &[&bytes]).unwrap();
        prop_assert_eq!(whole.len(), texts.len());
        for (c, t) in whole.iter().zip(&texts) {
            prop_assert_eq!(c.choices[0].delta.content.as_deref(), Some(t.as_str()));
        }
        prop_assert_eq!(run("openai", &split_at(&bytes, &cuts)).unwrap(), whole.clone());
        // Without [DONE]: OpenAI calls the stream cut, a vendor accepts it after the finish reason.
        let no_done = stream_of(&texts, false);
        prop_assert_eq!(run("openai", &split_at(&no_done, &cuts)), Err(ErrorKind::Decode));
        prop_assert_eq!(run("groq", &split_at(&no_done, &cuts)).unwrap(), whole);
    }
}
