//! Random bytes never panic the stream decoder, the response parsers or the error classifier,
//! and the decoder's result never depends on how the bytes were split.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use proptest::prelude::*;

fn event_soup() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just(b"event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"x\"}\n\n".to_vec()),
            Just(b"data: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"h\xc3\xa9\"}}}}\n\n".to_vec()),
            Just(b"data: {\"type\":\"tool-call-start\",\"index\":3,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}}}}\n\n".to_vec()),
            Just(b"data: {\"type\":\"tool-call-delta\",\"index\":3,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{}\"}}}}}\n\n".to_vec()),
            Just(b"data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":1.5,\"output_tokens\":-2}}}}\n\n".to_vec()),
            Just(b"data: {\"type\":\"message-end\",\"delta\":null}\n\n".to_vec()),
            Just(b"data: {\"type\":7}\n\n".to_vec()),
            Just(b"data: [DONE]\n\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..24),
        ],
        0..8,
    );
    pieces.prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn stream_decoder_never_panics_and_is_split_invariant(bytes in event_soup(), cut in any::<prop::sample::Index>()) {
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
        prop_assert_eq!(e.provider.as_deref(), Some("cohere"));
    }

    #[test]
    fn json_shaped_responses_never_panic(text in "\\{\"(id|message|finish_reason|usage|embeddings|meta)\":(\\{\\}|\\[\\]|null|1|\"x\"|\\[\\[1,\"a\"\\]\\]|\\{\"content\":\\[\\{\"type\":\"text\"\\}\\]\\})\\}") {
        let a = adapter();
        let _ = a.chat_response(&raw(200, &[], text.clone().into_bytes()));
        let _ = a.embedding_response(&raw(200, &[], text.into_bytes()));
    }
}
