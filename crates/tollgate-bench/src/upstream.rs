//! The instant mock upstream: answers every `POST` with a fixed OpenAI chat completion (or, when
//! the request body has `"stream": true`, a fixed SSE stream of chunks ending in `[DONE]`), and
//! every other request with `{"status":"ok"}`. Bodies are static; the only per-request work is
//! reading the request body and a byte search for the stream flag.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The non-streamed answer: a complete `chat.completion` object with usage.
pub const CHAT_COMPLETION: &str = concat!(
    r#"{"id":"chatcmpl-bench0001","object":"chat.completion","created":1700000000,"#,
    r#""model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","#,
    r#""content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"#,
    r#""finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18,"#,
    r#""prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"#,
    r#""system_fingerprint":"fp_bench"}"#
);

macro_rules! chunk {
    ($choices:literal) => {
        concat!(
            r#"data: {"id":"chatcmpl-bench0001","object":"chat.completion.chunk","created":1700000000,"#,
            r#""model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":"#,
            $choices,
            "}\n\n"
        )
    };
}

/// The streamed answer: a role chunk, five content chunks, the finish chunk, the usage chunk
/// (`stream_options.include_usage`) and `[DONE]`, all in one write.
pub const CHAT_STREAM: &str = concat!(
    chunk!(r#"[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{"content":" How can"},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{"content":" I help"},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{"content":" you today?"},"logprobs":null,"finish_reason":null}]"#),
    chunk!(r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#),
    r#"data: {"id":"chatcmpl-bench0001","object":"chat.completion.chunk","created":1700000000,"#,
    r#""model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_bench","choices":[],"#,
    r#""usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}"#,
    "\n\n",
    "data: [DONE]\n\n"
);

const HEALTH: &str = r#"{"status":"ok"}"#;

/// Whether a JSON request body asks for a stream (`"stream"` followed by `:` and `true`).
pub fn wants_stream(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"stream\"";
    let mut rest = body;
    while let Some(pos) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[pos + KEY.len()..];
        let after = rest.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &rest[i..]);
        if let Some(after_colon) = after.strip_prefix(b":") {
            let value = after_colon
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map_or(&[][..], |i| &after_colon[i..]);
            return value.starts_with(b"true");
        }
    }
    false
}

/// The response to a request with method `post` and body `body`.
pub fn respond(post: bool, body: &[u8]) -> Response<Full<Bytes>> {
    let (text, ctype) = match (post, post && wants_stream(body)) {
        (true, true) => (CHAT_STREAM, "text/event-stream"),
        (true, false) => (CHAT_COMPLETION, "application/json"),
        (false, _) => (HEALTH, "application/json"),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let post = req.method() == http::Method::POST;
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    Ok(respond(post, &body))
}

/// Serves the mock on `listener` (HTTP/1.1, keep-alive, `TCP_NODELAY`) until the task is dropped.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_flag_detection() {
        assert!(wants_stream(br#"{"model":"m","stream":true}"#));
        assert!(wants_stream(br#"{"stream" :  true, "model":"m"}"#));
        assert!(!wants_stream(br#"{"model":"m","stream":false}"#));
        assert!(!wants_stream(br#"{"model":"m"}"#));
        // The word inside a string value is not the key.
        assert!(!wants_stream(br#"{"model":"m","messages":[{"content":"\"stream\""}]}"#));
    }

    #[test]
    fn bodies_are_valid_openai_shapes() {
        let v: serde_json::Value = serde_json::from_str(CHAT_COMPLETION).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["usage"]["total_tokens"], 18);
        let events: Vec<&str> = CHAT_STREAM.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 9);
        assert_eq!(*events.last().unwrap(), "data: [DONE]");
        for e in &events[..8] {
            let json: serde_json::Value = serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(json["object"], "chat.completion.chunk");
        }
    }
}
