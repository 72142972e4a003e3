//! Scripted responses: a status, headers, a body of raw bytes, and how to deliver that body.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tollgate_core::sse::{SseEvent, encode_event};

/// How the body ends after its chunks were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Normally: the terminator (last chunk / END_STREAM) follows the body.
    Complete,
    /// After this many chunks the body hangs: no more bytes, no end, until the client goes away.
    Stall(usize),
    /// After this many chunks the connection (HTTP/2: the stream) is torn down without a terminator.
    Cut(usize),
}

#[derive(Debug, Clone)]
enum Chunking {
    /// The body goes out as one piece.
    Whole,
    /// Split into pieces of this many bytes (the last may be shorter).
    Size(usize),
    /// Exactly these pieces; `body` is their concatenation.
    Explicit(Vec<Bytes>),
}

/// A scripted response. Build it with a constructor ([`MockResponse::json`],
/// [`MockResponse::bytes`], [`MockResponse::sse`], the `openai_*` conveniences, …) and refine it
/// with the builder methods, which all take and return `self`.
///
/// Invalid settings (a status outside 100..=999, a header name or value HTTP forbids) are not
/// a panic: the server answers 500 with a JSON body naming the problem instead.
#[derive(Debug, Clone)]
pub struct MockResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    body: Bytes,
    chunking: Chunking,
    pub(crate) delay_before_headers: Duration,
    pub(crate) delay_between_chunks: Duration,
    pub(crate) ending: Ending,
    pub(crate) hang_up: bool,
}

/// An SSE event with data only (the default `message` type), for [`MockResponse::sse`].
pub fn sse_data(data: impl Into<String>) -> SseEvent {
    SseEvent { event: None, data: data.into(), id: None, retry: None }
}

/// An SSE event with an `event:` name, for [`MockResponse::sse`] (Anthropic-style streams).
pub fn sse_event(event: impl Into<String>, data: impl Into<String>) -> SseEvent {
    SseEvent { event: Some(event.into()), data: data.into(), id: None, retry: None }
}

impl MockResponse {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        MockResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            chunking: Chunking::Whole,
            delay_before_headers: Duration::ZERO,
            delay_between_chunks: Duration::ZERO,
            ending: Ending::Complete,
            hang_up: false,
        }
    }

    /// 200 with an empty body.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// 200 with a JSON body (`content-type: application/json`).
    pub fn json(value: &serde_json::Value) -> Self {
        // Serialising a `Value` cannot fail (its map keys are strings).
        let body = serde_json::to_vec(value).unwrap_or_default();
        Self::bytes("application/json", body)
    }

    /// 200 with a raw body and content type: HTML error pages, truncated JSON, non-UTF-8 garbage.
    pub fn bytes(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self::new(200).body(content_type, body)
    }

    /// 200 with a body sent in exactly these network chunks (empty chunks are skipped), e.g. the
    /// frames of a binary event stream split at chosen offsets.
    pub fn chunked<I, B>(content_type: &str, chunks: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let chunks: Vec<Bytes> = chunks.into_iter().map(Into::into).filter(|c| !c.is_empty()).collect();
        let mut whole = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in &chunks {
            whole.extend_from_slice(c);
        }
        let mut r = Self::bytes(content_type, whole);
        r.chunking = Chunking::Explicit(chunks);
        r
    }

    /// 200 `text/event-stream` made of these events (encoded with core's SSE encoder; `id` and
    /// `retry` are written too when set). Build events with [`sse_data`] and [`sse_event`].
    pub fn sse<I>(events: I) -> Self
    where
        I: IntoIterator<Item = SseEvent>,
    {
        let mut out = Vec::new();
        for e in events {
            if let Some(id) = &e.id {
                out.extend_from_slice(format!("id: {id}\n").as_bytes());
            }
            if let Some(retry) = e.retry {
                out.extend_from_slice(format!("retry: {retry}\n").as_bytes());
            }
            encode_event(&mut out, e.event.as_deref(), &e.data);
        }
        Self::sse_raw(out)
    }

    /// 200 `text/event-stream` with these exact bytes (malformed streams, odd line endings).
    pub fn sse_raw(body: impl Into<Bytes>) -> Self {
        Self::bytes("text/event-stream", body).header("cache-control", "no-cache")
    }

    /// Closes the connection without sending any response at all (HTTP/2: resets the stream).
    /// `delay_before_headers` still applies before hanging up.
    pub fn hang_up() -> Self {
        let mut r = Self::new(200);
        r.hang_up = true;
        r
    }

    /// Sets the status code.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets a header, replacing any earlier value of the same name (case-insensitive).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header value, keeping earlier values of the same name.
    pub fn append_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the body and its content type (keeps status, headers and delivery settings).
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self.chunking = Chunking::Whole;
        self.header("content-type", content_type)
    }

    /// `Retry-After: secs`.
    pub fn retry_after(self, secs: u64) -> Self {
        self.header("retry-after", &secs.to_string())
    }

    /// Sends the body in network chunks of `n` bytes (the last may be shorter), so a client sees
    /// splits inside UTF-8 code points and inside frames. `0` is treated as `1`. A chunked body
    /// goes out with `transfer-encoding: chunked` over HTTP/1.1 (one HTTP chunk per piece) and one
    /// DATA frame per piece over HTTP/2, unless a `content-length` header was set explicitly.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunking = Chunking::Size(n.max(1));
        self
    }

    /// Waits this long after the request was read (and recorded) before sending the status line.
    pub fn delay_before_headers(mut self, delay: Duration) -> Self {
        self.delay_before_headers = delay;
        self
    }

    /// Waits this long before every body chunk but the first.
    pub fn delay_between_chunks(mut self, delay: Duration) -> Self {
        self.delay_between_chunks = delay;
        self
    }

    /// Sends `n` chunks, then hangs without ending the body until the client goes away (or the
    /// server is dropped). With fewer than `n` chunks, sends them all and then hangs.
    pub fn stall_after_chunks(mut self, n: usize) -> Self {
        self.ending = Ending::Stall(n);
        self
    }

    /// Sends `n` chunks, then closes the connection abruptly: no terminating chunk over HTTP/1.1,
    /// a stream reset over HTTP/2. The client sees the body end with an error.
    pub fn cut_after_chunks(mut self, n: usize) -> Self {
        self.ending = Ending::Cut(n);
        self
    }

    /// The status code this response will be sent with.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The value of a header as scripted (case-insensitive name), if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The complete body, as it would arrive if nothing cut it short.
    pub fn body_bytes(&self) -> &Bytes {
        &self.body
    }

    /// Whether the body goes out as one piece with a known length.
    pub(crate) fn is_whole(&self) -> bool {
        matches!(self.chunking, Chunking::Whole)
    }

    /// The network chunks the body will be sent in (no empty chunks).
    pub(crate) fn plan_chunks(&self) -> VecDeque<Bytes> {
        match &self.chunking {
            Chunking::Whole if self.body.is_empty() => VecDeque::new(),
            Chunking::Whole => VecDeque::from([self.body.clone()]),
            Chunking::Size(n) => {
                let mut out = VecDeque::with_capacity(self.body.len().div_ceil(*n));
                let mut start = 0;
                while start < self.body.len() {
                    let end = (start + n).min(self.body.len());
                    out.push_back(self.body.slice(start..end));
                    start = end;
                }
                out
            }
            Chunking::Explicit(chunks) => chunks.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_splits_inside_code_points() {
        let r = MockResponse::bytes("text/plain", "h🦀!".as_bytes().to_vec()).chunk_size(2);
        let chunks: Vec<Bytes> = r.plan_chunks().into_iter().collect();
        assert_eq!(chunks, vec![&b"h\xF0"[..], b"\x9F\xA6", b"\x80!"]);
        assert!(!r.is_whole());
        assert_eq!(MockResponse::bytes("a/b", "xyz").chunk_size(0).plan_chunks().len(), 3);
        assert!(MockResponse::ok().plan_chunks().is_empty());
    }

    #[test]
    fn explicit_chunks_skip_empty_ones_and_concatenate() {
        let r = MockResponse::chunked("application/octet-stream", [&b"ab"[..], b"", b"c"]);
        assert_eq!(r.plan_chunks(), VecDeque::from([Bytes::from_static(b"ab"), Bytes::from_static(b"c")]));
        assert_eq!(r.body_bytes(), &Bytes::from_static(b"abc"));
    }

    #[test]
    fn sse_events_are_encoded_with_ids_and_names() {
        let mut first = sse_event("message_start", "{\"a\":1}");
        first.id = Some("7".into());
        first.retry = Some(10);
        let r = MockResponse::sse([first, sse_data("two\nlines")]);
        assert_eq!(
            r.body_bytes(),
            &Bytes::from_static(
                b"id: 7\nretry: 10\nevent: message_start\ndata: {\"a\":1}\n\ndata: two\ndata: lines\n\n"
            )
        );
        assert_eq!(r.header_value("Content-Type"), Some("text/event-stream"));
    }

    #[test]
    fn header_replaces_and_append_keeps() {
        let r = MockResponse::ok()
            .header("x-a", "1")
            .header("X-A", "2")
            .append_header("x-b", "1")
            .append_header("x-b", "2");
        assert_eq!(
            r.headers,
            vec![("X-A".into(), "2".into()), ("x-b".into(), "1".into()), ("x-b".into(), "2".into())]
        );
        assert_eq!(MockResponse::ok().retry_after(3).header_value("retry-after"), Some("3"));
    }
}
