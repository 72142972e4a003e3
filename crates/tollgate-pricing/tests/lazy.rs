//! Tokenizer data loads lazily, once. This file holds one test so no other test in the same
//! process can load a tokenizer first.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tollgate_pricing::tokens::{Encoding, count_text, is_loaded};

#[test]
fn tokenizers_load_on_first_use_only() {
    assert!(!is_loaded(Encoding::O200kBase));
    assert!(!is_loaded(Encoding::Cl100kBase));
    // Model and price lookups never touch the tokenizers.
    assert!(tollgate_pricing::model_info("gpt-4o").is_some());
    assert!(!is_loaded(Encoding::O200kBase));

    assert_eq!(count_text("gpt-4o", "hello world").tokens, 2);
    assert!(is_loaded(Encoding::O200kBase));
    assert!(!is_loaded(Encoding::Cl100kBase));

    let first = std::time::Instant::now();
    count_text("gpt-4", "hello world");
    let cold = first.elapsed();
    let second = std::time::Instant::now();
    count_text("gpt-4", "hello world");
    let warm = second.elapsed();
    assert!(is_loaded(Encoding::Cl100kBase));
    // Building the BPE takes milliseconds; a second count reuses it.
    assert!(warm < cold, "warm {warm:?} vs cold {cold:?}");
}
