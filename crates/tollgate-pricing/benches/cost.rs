//! Lookup + cost computation: must be well under a microsecond.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_core::Usage;
use tollgate_core::chat::PromptTokensDetails;

fn usage() -> Usage {
    let mut u = Usage::new(262_960, 1_744);
    u.prompt_tokens_details =
        Some(PromptTokensDetails { cached_tokens: Some(257_955), ..Default::default() });
    u
}

fn bench(c: &mut Criterion) {
    let u = usage();
    c.bench_function("model_info(gpt-4o)", |b| b.iter(|| tollgate_pricing::model_info(black_box("gpt-4o"))));
    c.bench_function("model_info(openai/gpt-4o) prefixed", |b| {
        b.iter(|| tollgate_pricing::model_info(black_box("openai/gpt-4o")))
    });
    c.bench_function("cost(gemini/gemini-2.5-pro) lookup+cost", |b| {
        b.iter(|| tollgate_pricing::cost(black_box("gemini/gemini-2.5-pro"), black_box(&u)))
    });
    c.bench_function("cost(gpt-4o) lookup+cost", |b| {
        b.iter(|| tollgate_pricing::cost(black_box("gpt-4o"), black_box(&u)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
