//! Server-Sent Events: an incremental decoder and an encoder.
//!
//! The decoder follows the WHATWG "event stream interpretation" rules: lines end in CRLF, LF or a
//! lone CR; `data` lines of one event are joined with `\n`; lines starting with `:` are comments;
//! a blank line dispatches the event; an event without data is not dispatched; a leading BOM is
//! skipped. Bytes may arrive split anywhere, including inside a CRLF pair or a UTF-8 code point:
//! the decoder only interprets complete lines, so any split of a stream yields the same events
//! (proved by a property test below).
//!
//! Unlike a browser, the decoder is strict about UTF-8: an upstream that sends invalid UTF-8 is
//! broken, and a gateway should say so rather than forward replacement characters.

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any (`None` means the default type, `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` field seen in this event, if any.
    pub id: Option<String>,
    /// The `retry:` field in milliseconds, if any.
    pub retry: Option<u64>,
}

/// Why the byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("the event stream is not valid UTF-8 (line {line})")]
    InvalidUtf8 { line: u64 },
    #[error("an event-stream line or event exceeded {limit} bytes")]
    TooLarge { limit: usize },
}

/// Incremental SSE decoder. Feed bytes as they arrive; collect complete events.
pub struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next chunk belongs to it.
    pending_cr: bool,
    /// Still at the very start of the stream (a BOM may follow).
    at_start: bool,
    lines_seen: u64,
    event: SseEvent,
    has_data: bool,
    max_bytes: usize,
}

impl fmt::Debug for SseDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseDecoder")
            .field("buffered", &self.line.len())
            .field("lines_seen", &self.lines_seen)
            .finish()
    }
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The default bound on one line or one event: far above any real chunk, small enough that a
/// runaway upstream cannot exhaust memory.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder that fails with [`SseError::TooLarge`] when a line or an event's data exceeds
    /// `max_bytes`.
    pub fn with_limit(max_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            pending_cr: false,
            at_start: true,
            lines_seen: 0,
            event: SseEvent::default(),
            has_data: false,
            max_bytes,
        }
    }

    /// Feeds bytes; pushes every event they complete onto `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while !input.is_empty() {
            match input.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(input);
                    if self.line.len() > self.max_bytes {
                        return Err(SseError::TooLarge { limit: self.max_bytes });
                    }
                    return Ok(());
                }
                Some(pos) => {
                    self.line.extend_from_slice(&input[..pos]);
                    let terminator = input[pos];
                    input = &input[pos + 1..];
                    if terminator == b'\r' {
                        match input.first() {
                            Some(b'\n') => input = &input[1..],
                            Some(_) => {}
                            None => self.pending_cr = true,
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, out)?;
                    // Reuse the allocation for the next line.
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Ok(())
    }

    /// Whether bytes of an unfinished line or event are buffered (a stream that ends now was cut).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.event.event.is_some()
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.lines_seen += 1;
        let mut bytes = raw;
        if self.at_start {
            self.at_start = false;
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
            }
        }
        let line = std::str::from_utf8(bytes).map_err(|_| SseError::InvalidUtf8 { line: self.lines_seen })?;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
                if self.event.data.len() > self.max_bytes {
                    return Err(SseError::TooLarge { limit: self.max_bytes });
                }
            }
            "event" => self.event.event = Some(value.to_owned()),
            // Per the spec an id containing NUL is ignored.
            "id" if !value.contains('\0') => self.event.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.event.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.has_data {
            out.push(event);
        }
        self.has_data = false;
    }
}

/// Appends one event to `out` in wire form. Multi-line data becomes several `data:` lines;
/// a `\r\n` or lone `\r` in the data is treated as a line break, as the decoder would.
pub fn encode_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(single_line(name).as_bytes());
        out.push(b'\n');
    }
    let normalised;
    let data = if data.contains('\r') {
        normalised = data.replace("\r\n", "\n").replace('\r', "\n");
        normalised.as_str()
    } else {
        data
    };
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends a comment line (used as a keep-alive: `: ping`).
pub fn encode_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    out.extend_from_slice(single_line(text).as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn single_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) { s.replace(['\r', '\n'], " ").into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out)?;
        }
        Ok(out)
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.map(str::to_owned), data: data.to_owned(), id: None, retry: None }
    }

    #[test]
    fn lf_crlf_cr_multiline_comments_and_fields() {
        let input = b"\xEF\xBB\xBF: hello\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n\
data: line1\ndata: line2\nid: 7\nretry: 1500\n\n\
data:no-space\r\rdata\n\nevent: only-event\n\n: comment\n\nunknown: x\ndata: [DONE]\n\n";
        let out = decode_all(&[input]).unwrap();
        assert_eq!(
            out,
            vec![
                ev(Some("message_start"), "{\"a\":1}"),
                SseEvent {
                    event: None,
                    data: "line1\nline2".into(),
                    id: Some("7".into()),
                    retry: Some(1500)
                },
                ev(None, "no-space"),
                ev(None, ""),
                ev(None, "[DONE]"),
            ]
        );
    }

    #[test]
    fn utf8_split_inside_a_code_point() {
        let text = "data: héllo 🦀\n\n".as_bytes();
        let crab = text.iter().position(|&b| b == 0xF0).unwrap();
        let out = decode_all(&[&text[..crab + 2], &text[crab + 2..]]).unwrap();
        assert_eq!(out, vec![ev(None, "héllo 🦀")]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(decode_all(&[b"data: \xff\xfe\n\n"]), Err(SseError::InvalidUtf8 { line: 1 }));
    }

    #[test]
    fn oversized_lines_are_refused() {
        let mut d = SseDecoder::with_limit(8);
        let mut out = Vec::new();
        assert_eq!(d.feed(b"data: 0123456789", &mut out), Err(SseError::TooLarge { limit: 8 }));
    }

    #[test]
    fn partial_event_is_reported() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"data: {\"x\":", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(d.has_partial());
        d.feed(b"1}\n\n", &mut out).unwrap();
        assert!(!d.has_partial());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn encoder_output_decodes_back() {
        let mut buf = Vec::new();
        encode_event(&mut buf, Some("content_block_delta"), "a\nb\r\nc");
        encode_comment(&mut buf, "keep\nalive");
        encode_event(&mut buf, None, "");
        assert_eq!(
            buf,
            b"event: content_block_delta\ndata: a\ndata: b\ndata: c\n\n: keep alive\n\ndata: \n\n"
        );
        let out = decode_all(&[&buf]).unwrap();
        assert_eq!(out, vec![ev(Some("content_block_delta"), "a\nb\nc"), ev(None, "")]);
    }

    fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
        // Streams made of realistic pieces: fields, comments, blank lines and all three line endings,
        // with multi-byte characters so that splits land inside code points.
        let piece = prop_oneof![
            Just("data: {\"x\":\"é🦀\"}".to_string()),
            Just("data:plain".to_string()),
            Just("event: content_block_delta".to_string()),
            Just(": ping".to_string()),
            Just("id: 42".to_string()),
            Just("retry: 10".to_string()),
            Just("".to_string()),
            "[a-zé🦀 :]{0,12}".prop_map(|s| format!("data: {s}")),
        ];
        let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        prop::collection::vec((piece, ending), 0..40).prop_map(|parts| {
            let mut s = String::new();
            for (p, e) in parts {
                s.push_str(&p);
                s.push_str(e);
            }
            s.into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any split of the byte stream gives the same events as feeding it whole.
        #[test]
        fn split_invariant(stream in arb_stream(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
            let whole = decode_all(&[&stream]).unwrap();
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&stream[start..p]);
                start = p;
            }
            chunks.push(&stream[start..]);
            prop_assert_eq!(decode_all(&chunks).unwrap(), whole.clone());
            // Byte-at-a-time is the most adversarial split of all.
            let singles: Vec<&[u8]> = stream.chunks(1).collect();
            prop_assert_eq!(decode_all(&singles).unwrap(), whole);
        }

        /// Arbitrary bytes never panic; they decode or fail with a typed error.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_all(&[&bytes]);
        }

        /// Whatever the encoder writes decodes to the same data.
        #[test]
        fn encode_decode_round_trip(data in "[a-z\n é🦀:]{0,40}", name in proptest::option::of("[a-z_]{1,10}")) {
            let mut buf = Vec::new();
            encode_event(&mut buf, name.as_deref(), &data);
            let out = decode_all(&[&buf]).unwrap();
            prop_assert_eq!(out, vec![SseEvent { event: name, data, id: None, retry: None }]);
        }
    }
}
