//! # tollgate-core
//!
//! Layer 0 of tollgate: the vocabulary every other crate speaks.
//!
//! * canonical, OpenAI-shaped wire types ([`chat`], [`embedding`], [`completion`], [`models`]) that
//!   keep unknown fields in an `extra` map so OpenAI→OpenAI traffic round-trips losslessly;
//! * [`ModelRef`]: `provider/model` references and bare OpenAI names;
//! * [`ProviderError`] and [`ErrorKind`]: the typed error taxonomy that decides retries, fallbacks,
//!   cooldowns and the OpenAI error JSON + HTTP status a failure becomes;
//! * [`sse`]: a split-invariant Server-Sent-Events decoder and an encoder;
//! * [`adapter`]: the sans-IO [`Adapter`] and [`StreamDecoder`] traits every provider implements.
//!
//! **Must never depend on** an async runtime (tokio), an HTTP client (reqwest, hyper), a server
//! framework (axum), a database or any other tollgate crate. Its normal dependencies are serde,
//! serde_json, bytes, http and thiserror; the layering test in `tests/` enforces this.

pub mod adapter;
pub mod chat;
pub mod completion;
pub mod embedding;
pub mod error;
pub mod model_ref;
pub mod models;
pub mod params;
pub mod secret;
pub mod sse;

pub use adapter::{Adapter, CredentialEnv, Endpoint, RawResponse, StreamDecoder, UpstreamConfig};
pub use chat::{ChatChunk, ChatRequest, ChatResponse, FinishReason, Message, MessageContent, Role, Usage};
pub use error::{ErrorKind, OpenAiErrorBody, ProviderError, TimeoutPhase};
pub use model_ref::ModelRef;
pub use secret::Secret;

/// The JSON object type used for every `extra` map (unknown fields kept verbatim).
pub type Extra = serde_json::Map<String, serde_json::Value>;
