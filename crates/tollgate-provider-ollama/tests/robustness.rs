//! Random bytes never panic the stream decoder, the response parsers or the error classifier,
//! and the decoder's result never depends on how the bytes were split.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;

fn line_soup() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just(b"{\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"content\":\"h\xc3\xa9\"},\"done\":false}\n".to_vec()),
            Just(b"{\"message\":{\"thinking\":\"t\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}},{}]},\"done\":false}\n".to_vec()),
            Just(b"{\"message\":{\"tool_calls\":[{\"id\":5,\"function\":{\"arguments\":\"x\"}}]},\"done\":false}\n".to_vec()),
            Just(b"{\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":3,\"eval_count\":-1}\n".to_vec()),
            Just(b"{\"done\":true}".to_vec()),
            Just(b"{\"error\":{\"nested\":true}}\n".to_vec()),
            Just(b"\r\n\n".to_vec()),
            Just(b"[1,2]\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..24),
        ],
        0..8,
    );
    pieces.prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn stream_decoder_never_panics_and_is_split_invariant(bytes in line_soup(), cut in any::<prop::sample::Index>()) {
        let whole = decode_pieces(&[&bytes]);
        let at = cut.index(bytes.len() + 1);
        let (a, b) = bytes.split_at(at);
        prop_assert_eq!(decode_pieces(&[a, b]), whole);
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_pieces(&[&bytes]);
    }

    #[test]
    fn response_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), status in 100u16..600) {
        let a = adapter();
        let r = raw(200, &[], bytes.clone());
        let _ = a.chat_response(&r);
        let _ = a.embedding_response(&r);
        let e = a.error_response(&raw(status, &[], bytes));
        prop_assert_eq!(e.provider.as_deref(), Some("ollama"));
    }

    #[test]
    fn json_shaped_responses_never_panic(text in "\\{\"(message|created_at|done_reason|embeddings|prompt_eval_count|error)\":(\\{\\}|\\[\\]|null|1|\"2024-99-99T99:99:99Z\"|\\[\\[1,\"a\"\\]\\]|\\{\"tool_calls\":\\[1\\]\\})\\}") {
        let a = adapter();
        let _ = a.chat_response(&raw(200, &[], text.clone().into_bytes()));
        let _ = a.embedding_response(&raw(200, &[], text.into_bytes()));
    }
}
