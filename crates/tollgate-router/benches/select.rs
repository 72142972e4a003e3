//! Deployment selection for a group of 10 deployments, per strategy: the per-request routing
//! decision without the upstream call (`Router::pick_deployment`).
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_core::{
    Adapter, ChatChunk, ChatRequest, ChatResponse, ProviderError, RawResponse, StreamDecoder, UpstreamConfig,
};
use tollgate_router::{RequestOptions, Router, RouterConfig};

#[derive(Debug)]
struct Noop;

impl Adapter for Noop {
    fn provider(&self) -> &str {
        "noop"
    }
    fn chat_request(
        &self,
        _: &ChatRequest,
        _: &UpstreamConfig,
    ) -> Result<http::Request<bytes::Bytes>, ProviderError> {
        Err(ProviderError::bad_request("bench"))
    }
    fn chat_response(&self, _: &RawResponse) -> Result<ChatResponse, ProviderError> {
        Err(ProviderError::bad_request("bench"))
    }
    fn chat_stream_decoder(&self, _: &ChatRequest, _: &UpstreamConfig) -> Box<dyn StreamDecoder<ChatChunk>> {
        Box::new(NoDecoder)
    }
    fn error_response(&self, _: &RawResponse) -> ProviderError {
        ProviderError::bad_request("bench")
    }
}

#[derive(Debug)]
struct NoDecoder;

impl StreamDecoder<ChatChunk> for NoDecoder {
    fn decode(&mut self, _: &[u8], _: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        Ok(())
    }
    fn finish(&mut self, _: &mut Vec<ChatChunk>) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn router(strategy: &str) -> Router {
    let list: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            serde_json::json!({
                "model_name": "gpt-4o",
                "litellm_params": {
                    "model": format!("noop/deployment-{i}"), "api_key": "k",
                    "rpm": 1000 + i * 100, "tpm": 1_000_000, "weight": 1 + i,
                    "input_cost_per_token": 1e-6 * f64::from(i + 1), "output_cost_per_token": 2e-6
                },
                "model_info": {"id": format!("d{i}")}
            })
        })
        .collect();
    let cfg: RouterConfig = serde_json::from_value(serde_json::json!({
        "model_list": list, "router_settings": {"routing_strategy": strategy}
    }))
    .expect("config");
    Router::builder(cfg)
        .resolver(|m| Ok((Arc::new(Noop) as Arc<dyn Adapter>, m.to_owned())))
        .build()
        .expect("router")
}

fn bench(c: &mut Criterion) {
    let opts = RequestOptions::default();
    for strategy in
        ["simple-shuffle", "least-busy", "usage-based-routing", "latency-based-routing", "cost-based-routing"]
    {
        let r = router(strategy);
        c.bench_function(&format!("select/10 deployments/{strategy}"), |b| {
            b.iter(|| black_box(r.pick_deployment(black_box("gpt-4o"), &opts)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
