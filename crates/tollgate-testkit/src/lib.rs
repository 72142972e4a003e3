//! # tollgate-testkit
//!
//! **Dev-only test support.** This crate exists for tollgate's own integration tests and
//! benchmarks; it must only ever appear under `[dev-dependencies]` (or in dev tooling such as
//! `xtask` and bench crates) and **must never be a normal dependency of a shipped crate**: the
//! layering test in `tests/` enforces this. It depends on `tollgate-core` for the canonical types
//! and on tokio + hyper for serving; it must never depend on axum or on any tollgate crate above core.
//!
//! It provides [`MockServer`]: a scriptable mock LLM upstream that
//!
//! * listens on `127.0.0.1:0` (never a fixed port) and serves HTTP/1.1 and h2c (HTTP/2 with prior
//!   knowledge) with hyper on tokio;
//! * answers from a FIFO of scripted [`MockResponse`]s, per path or for any path, or with one
//!   response for every request ([`MockServer::always`]), falling back to a [`Responder`]
//!   (e.g. the deterministic OpenAI-compatible [`OpenAiResponder`]) and finally to a 500 whose
//!   JSON body says that nothing was scripted;
//! * records every request ([`RecordedRequest`]) *before* it answers, so a test can assert on what
//!   was sent as soon as its call returns;
//! * delivers bodies the way real upstreams misbehave: split into network chunks of any size
//!   (inside UTF-8 code points and frames), with delays, stalls, and abrupt cuts.
//!
//! The body machinery is generic (raw bytes, SSE events, explicit chunks), so responders for other
//! wire dialects (Anthropic SSE, Gemini, Bedrock's binary event stream, Ollama NDJSON) layer on top
//! of it the same way the OpenAI conveniences in [`openai`] do.
//!
//! ```no_run
//! # async fn demo() {
//! use tollgate_testkit::{MockResponse, MockServer};
//!
//! let server = MockServer::start().await;
//! server.enqueue_for("/v1/chat/completions", MockResponse::openai_chat("hello"));
//! server.enqueue(MockResponse::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down").retry_after(2));
//! // ... point the code under test at server.openai_base() ...
//! let sent = server.last_request();
//! # }
//! ```

pub mod anthropic;
pub mod bedrock;
mod body;
pub mod cohere;
pub mod gemini;
pub mod ollama;
pub mod openai;
mod record;
mod response;
mod server;

pub use openai::{OpenAiChatStream, OpenAiResponder};
pub use record::RecordedRequest;
pub use response::{MockResponse, sse_data, sse_event};
pub use server::{MockServer, Responder};
