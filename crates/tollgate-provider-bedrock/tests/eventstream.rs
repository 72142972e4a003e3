//! The event-stream codec: AWS's published aws-c-event-stream vectors, decode(encode(x)) == x,
//! every byte split, bad CRCs, truncation, bounds, and random bytes that must never panic.

// Test helpers outside #[test] functions may unwrap and panic too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tollgate_provider_bedrock::eventstream::{
    EventStreamError, Header, HeaderValue, MAX_MESSAGE_LEN, Message, MessageDecoder, crc32, encode,
    encode_all,
};

/// aws-c-event-stream: an empty message, a payload-only message and a message with one string
/// header (`content-type: application/json`), payload `{'foo':'bar'}`.
const EMPTY: [u8; 16] =
    [0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];

fn payload_only() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a];
    v.extend_from_slice(b"{'foo':'bar'}");
    v.extend_from_slice(&[0xc3, 0x65, 0x39, 0x36]);
    v
}

fn with_header() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C];
    v.extend_from_slice(b"content-type");
    v.extend_from_slice(&[0x07, 0x00, 0x10]);
    v.extend_from_slice(b"application/json");
    v.extend_from_slice(b"{'foo':'bar'}");
    v.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
    v
}

fn decode_all(bytes: &[u8], step: usize) -> Result<Vec<Message>, EventStreamError> {
    let mut d = MessageDecoder::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        d.push(piece);
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
    }
    d.finish()?;
    Ok(out)
}

#[test]
fn aws_vectors_encode_byte_exact() {
    assert_eq!(encode(&Message::default()).unwrap(), EMPTY);
    let payload = Message { headers: vec![], payload: b"{'foo':'bar'}".to_vec() };
    assert_eq!(encode(&payload).unwrap(), payload_only());
    let headed = Message {
        headers: vec![Header::string("content-type", "application/json")],
        payload: b"{'foo':'bar'}".to_vec(),
    };
    assert_eq!(encode(&headed).unwrap(), with_header());
    let mut all = EMPTY.to_vec();
    all.extend(payload_only());
    all.extend(with_header());
    assert_eq!(encode_all(&[Message::default(), payload, headed]).unwrap(), all);
}

#[test]
fn aws_vectors_decode_at_every_split() {
    let mut all = EMPTY.to_vec();
    all.extend(payload_only());
    all.extend(with_header());
    for step in 1..=all.len() {
        let msgs = decode_all(&all, step).unwrap();
        assert_eq!(msgs.len(), 3, "step {step}");
        assert_eq!(msgs[0], Message::default());
        assert_eq!(msgs[1].payload, b"{'foo':'bar'}");
        assert_eq!(msgs[2].header_str("content-type"), Some("application/json"));
        assert_eq!(msgs[2].payload, b"{'foo':'bar'}");
    }
}

fn every_header_type() -> Message {
    Message {
        headers: vec![
            Header { name: "t".into(), value: HeaderValue::Bool(true) },
            Header { name: "f".into(), value: HeaderValue::Bool(false) },
            Header { name: "byte".into(), value: HeaderValue::Byte(-7) },
            Header { name: "short".into(), value: HeaderValue::Short(-30_000) },
            Header { name: "int".into(), value: HeaderValue::Int(-2_000_000_000) },
            Header { name: "long".into(), value: HeaderValue::Long(i64::MIN + 5) },
            Header { name: "bytes".into(), value: HeaderValue::Bytes(vec![0, 255, 1]) },
            Header::string(":event-type", "contentBlockDelta"),
            Header { name: "ts".into(), value: HeaderValue::Timestamp(1_440_938_160_000) },
            Header { name: "uuid".into(), value: HeaderValue::Uuid(*b"0123456789abcdef") },
        ],
        payload: "{\"text\":\"héllo ✓\"}".as_bytes().to_vec(),
    }
}

#[test]
fn decode_of_encode_is_identity_for_every_header_type() {
    let m = every_header_type();
    let bytes = encode(&m).unwrap();
    for step in [1, 2, 3, 7, bytes.len()] {
        assert_eq!(decode_all(&bytes, step).unwrap(), vec![m.clone()]);
    }
}

#[test]
fn bad_prelude_crc_is_reported_before_waiting_for_the_body() {
    let mut bytes = with_header();
    bytes[9] ^= 0x01;
    let mut d = MessageDecoder::new();
    d.push(&bytes[..12]);
    assert!(matches!(d.next_message(), Err(EventStreamError::PreludeCrc { .. })));
}

#[test]
fn bad_message_crc() {
    let mut bytes = with_header();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert!(matches!(decode_all(&bytes, bytes.len()), Err(EventStreamError::MessageCrc { .. })));
    // A flipped payload byte is caught by the message CRC too.
    let mut bytes = with_header();
    bytes[50] ^= 0x20;
    assert!(matches!(decode_all(&bytes, 5), Err(EventStreamError::MessageCrc { .. })));
}

#[test]
fn truncated_frames() {
    let bytes = with_header();
    for cut in 1..bytes.len() {
        assert_eq!(decode_all(&bytes[..cut], 4), Err(EventStreamError::Truncated(cut)), "cut {cut}");
    }
    assert_eq!(decode_all(&[], 1).unwrap(), vec![]);
}

/// A prelude with a valid CRC but impossible lengths.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut v = total.to_be_bytes().to_vec();
    v.extend_from_slice(&headers.to_be_bytes());
    let c = crc32(&v);
    v.extend_from_slice(&c.to_be_bytes());
    v
}

#[test]
fn frame_size_is_bounded() {
    let mut d = MessageDecoder::new();
    d.push(&prelude(MAX_MESSAGE_LEN as u32 + 1, 0));
    assert_eq!(d.next_message(), Err(EventStreamError::BadLength(MAX_MESSAGE_LEN + 1)));
    let mut d = MessageDecoder::new();
    d.push(&prelude(15, 0));
    assert_eq!(d.next_message(), Err(EventStreamError::BadLength(15)));
    let mut d = MessageDecoder::new();
    d.push(&prelude(20, 5));
    assert_eq!(d.next_message(), Err(EventStreamError::BadHeadersLength { headers: 5, total: 20 }));
    let big = Message { headers: vec![], payload: vec![0; MAX_MESSAGE_LEN] };
    assert!(matches!(encode(&big), Err(EventStreamError::BadLength(_))));
}

#[test]
fn malformed_headers_are_errors() {
    // Header section claims a string longer than itself; CRCs are valid so the header parser
    // is what must object.
    let headers = [3u8, b'a', b'b', b'c', 7, 0x00, 0x09, b'x'];
    let mut v = prelude((16 + headers.len()) as u32, headers.len() as u32);
    v.extend_from_slice(&headers);
    let c = crc32(&v);
    v.extend_from_slice(&c.to_be_bytes());
    assert!(matches!(decode_all(&v, 3), Err(EventStreamError::BadHeader(_))));
    // Unknown value type 42.
    let headers = [1u8, b'a', 42];
    let mut v = prelude((16 + headers.len()) as u32, headers.len() as u32);
    v.extend_from_slice(&headers);
    let c = crc32(&v);
    v.extend_from_slice(&c.to_be_bytes());
    assert!(matches!(decode_all(&v, 3), Err(EventStreamError::BadHeader(_))));
}

#[test]
fn encode_rejects_unencodable_headers() {
    let long_name = Message { headers: vec![Header::string("n".repeat(256), "v")], payload: vec![] };
    assert!(matches!(encode(&long_name), Err(EventStreamError::Encode(_))));
    let long_value = Message { headers: vec![Header::string("n", "v".repeat(70_000))], payload: vec![] };
    assert!(matches!(encode(&long_value), Err(EventStreamError::Encode(_))));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), step in 1usize..64) {
        let _ = decode_all(&bytes, step);
    }

    #[test]
    fn round_trip_random_messages(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        value in "[a-zA-Z0-9 ]{0,40}",
        n in any::<i32>(),
        step in 1usize..40,
    ) {
        let m = Message {
            headers: vec![Header::string(":event-type", value), Header { name: "n".into(), value: HeaderValue::Int(n) }],
            payload,
        };
        let mut bytes = encode(&m).unwrap();
        bytes.extend(encode(&m).unwrap());
        prop_assert_eq!(decode_all(&bytes, step).unwrap(), vec![m.clone(), m]);
    }
}
