//! The `application/vnd.amazon.eventstream` binary framing (AWS event streams), both ways.
//!
//! One message on the wire:
//!
//! ```text
//! total length   u32 BE   (whole message, including these 4 bytes and both CRCs)
//! headers length u32 BE
//! prelude CRC    u32 BE   CRC-32 (IEEE) of the 8 bytes above
//! headers        name length u8, name (UTF-8), value type u8, value — repeated
//! payload        total − headers − 16 bytes
//! message CRC    u32 BE   CRC-32 of everything before it
//! ```
//!
//! Header value types: 0 true, 1 false, 2 byte, 3 short, 4 int, 5 long (all big-endian,
//! signed), 6 byte array and 7 string (u16 BE length + bytes), 8 timestamp (i64 ms since the
//! epoch), 9 UUID (16 bytes).
//!
//! [`MessageDecoder`] decodes incrementally from arbitrary byte splits, checks both CRCs (the
//! prelude CRC before trusting the lengths) and bounds the frame size; [`encode`] writes
//! messages (the tests and the testkit mock use it to speak Bedrock).

use thiserror::Error;

/// Largest message accepted (AWS documents 16 MiB as the event-stream message limit).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// Prelude (12 bytes) + message CRC (4 bytes).
const OVERHEAD: usize = 16;

/// Why bytes could not be decoded into (or a message encoded as) an event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventStreamError {
    #[error("event-stream prelude CRC mismatch (expected {expected:#010x}, computed {computed:#010x})")]
    PreludeCrc { expected: u32, computed: u32 },
    #[error("event-stream message CRC mismatch (expected {expected:#010x}, computed {computed:#010x})")]
    MessageCrc { expected: u32, computed: u32 },
    #[error("event-stream message length {0} is outside 16..={MAX_MESSAGE_LEN}")]
    BadLength(usize),
    #[error("event-stream headers length {headers} does not fit a message of {total} bytes")]
    BadHeadersLength { headers: usize, total: usize },
    #[error("malformed event-stream header: {0}")]
    BadHeader(String),
    #[error("event-stream ended inside a message ({0} bytes buffered)")]
    Truncated(usize),
    #[error("cannot encode event-stream message: {0}")]
    Encode(String),
}

/// A typed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One header: a name and a typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: HeaderValue,
}

impl Header {
    pub fn string(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header { name: name.into(), value: HeaderValue::String(value.into()) }
    }
}

/// One decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<Header>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name == name).and_then(|h| match &h.value {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// An event as AWS JSON services send it: `:event-type`, `:content-type: application/json`,
    /// `:message-type: event`.
    pub fn event(event_type: &str, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            headers: vec![
                Header::string(":event-type", event_type),
                Header::string(":content-type", "application/json"),
                Header::string(":message-type", "event"),
            ],
            payload: payload.into(),
        }
    }

    /// A modelled exception (`:message-type: exception`, `:exception-type`), payload
    /// `{"message": ...}` as Bedrock sends it.
    pub fn exception(exception_type: &str, message: &str) -> Message {
        let payload = serde_json::json!({ "message": message }).to_string();
        Message {
            headers: vec![
                Header::string(":exception-type", exception_type),
                Header::string(":content-type", "application/json"),
                Header::string(":message-type", "exception"),
            ],
            payload: payload.into_bytes(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) — the gzip/zlib CRC.
// ---------------------------------------------------------------------------------------------

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Encodes one message.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EventStreamError> {
    let mut headers = Vec::new();
    for h in &msg.headers {
        let name = h.name.as_bytes();
        if name.is_empty() || name.len() > u8::MAX as usize {
            return Err(EventStreamError::Encode(format!(
                "header name length {} not in 1..=255",
                name.len()
            )));
        }
        headers.push(name.len() as u8);
        headers.extend_from_slice(name);
        let with_len = |out: &mut Vec<u8>, ty: u8, bytes: &[u8]| -> Result<(), EventStreamError> {
            let len = u16::try_from(bytes.len())
                .map_err(|_| EventStreamError::Encode(format!("header value of {} bytes", bytes.len())))?;
            out.push(ty);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
            Ok(())
        };
        match &h.value {
            HeaderValue::Bool(true) => headers.push(0),
            HeaderValue::Bool(false) => headers.push(1),
            HeaderValue::Byte(v) => {
                headers.push(2);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                headers.push(3);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                headers.push(4);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                headers.push(5);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => with_len(&mut headers, 6, v)?,
            HeaderValue::String(v) => with_len(&mut headers, 7, v.as_bytes())?,
            HeaderValue::Timestamp(v) => {
                headers.push(8);
                headers.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                headers.push(9);
                headers.extend_from_slice(v);
            }
        }
    }
    let total = OVERHEAD + headers.len() + msg.payload.len();
    if total > MAX_MESSAGE_LEN {
        return Err(EventStreamError::BadLength(total));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&msg.payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Encodes several messages back to back: a whole event-stream body (what a mock Bedrock
/// ConverseStream endpoint sends).
pub fn encode_all(msgs: &[Message]) -> Result<Vec<u8>, EventStreamError> {
    let mut out = Vec::new();
    for m in msgs {
        out.extend(encode(m)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes messages from a byte stream fed in arbitrary pieces.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    buf: Vec<u8>,
    /// Start of the undecoded bytes in `buf` (consumed bytes are compacted away lazily).
    start: usize,
}

impl MessageDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a decoded message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `None` when more bytes are needed. After an error the
    /// decoder's state is unspecified: the stream is corrupt and must be abandoned.
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 12 {
            return Ok(None);
        }
        let expected = be_u32(&avail[8..12]);
        let computed = crc32(&avail[..8]);
        if expected != computed {
            return Err(EventStreamError::PreludeCrc { expected, computed });
        }
        let total = be_u32(&avail[0..4]) as usize;
        let headers_len = be_u32(&avail[4..8]) as usize;
        if !(OVERHEAD..=MAX_MESSAGE_LEN).contains(&total) {
            return Err(EventStreamError::BadLength(total));
        }
        if headers_len > total - OVERHEAD {
            return Err(EventStreamError::BadHeadersLength { headers: headers_len, total });
        }
        if avail.len() < total {
            return Ok(None);
        }
        let frame = &avail[..total];
        let expected = be_u32(&frame[total - 4..]);
        let computed = crc32(&frame[..total - 4]);
        if expected != computed {
            return Err(EventStreamError::MessageCrc { expected, computed });
        }
        let headers = parse_headers(&frame[12..12 + headers_len])?;
        let payload = frame[12 + headers_len..total - 4].to_vec();
        self.start += total;
        Ok(Some(Message { headers, payload }))
    }

    /// The body ended: an error when a partial message is left over.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(EventStreamError::Truncated(n)),
        }
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<Header>, EventStreamError> {
    fn take<'a>(b: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], EventStreamError> {
        if b.len() < n {
            return Err(EventStreamError::BadHeader(format!("{what} runs past the headers section")));
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = take(&mut b, 1, "name length")?[0] as usize;
        let name = std::str::from_utf8(take(&mut b, name_len, "name")?)
            .map_err(|_| EventStreamError::BadHeader("header name is not UTF-8".into()))?
            .to_owned();
        let ty = take(&mut b, 1, "value type")?[0];
        let fixed = |b: &mut &[u8], n: usize| -> Result<[u8; 8], EventStreamError> {
            let s = take(b, n, "value")?;
            let mut a = [0u8; 8];
            a[8 - n..].copy_from_slice(s);
            Ok(a)
        };
        let value = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes([take(&mut b, 1, "value")?[0]])),
            3 => {
                let a = fixed(&mut b, 2)?;
                HeaderValue::Short(i16::from_be_bytes([a[6], a[7]]))
            }
            4 => {
                let a = fixed(&mut b, 4)?;
                HeaderValue::Int(i32::from_be_bytes([a[4], a[5], a[6], a[7]]))
            }
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(&mut b, 8)?)),
            6 | 7 => {
                let l = take(&mut b, 2, "value length")?;
                let len = u16::from_be_bytes([l[0], l[1]]) as usize;
                let v = take(&mut b, len, "value")?;
                if ty == 6 {
                    HeaderValue::Bytes(v.to_vec())
                } else {
                    HeaderValue::String(
                        String::from_utf8(v.to_vec()).map_err(|_| {
                            EventStreamError::BadHeader(format!("header {name} is not UTF-8"))
                        })?,
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut b, 8)?)),
            9 => {
                let v = take(&mut b, 16, "value")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(v);
                HeaderValue::Uuid(a)
            }
            other => return Err(EventStreamError::BadHeader(format!("unknown header value type {other}"))),
        };
        out.push(Header { name, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/IEEE.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
