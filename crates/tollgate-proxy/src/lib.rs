//! # tollgate-proxy
//!
//! The gateway server (layer 6): an OpenAI-compatible HTTP API in front of the router, configured
//! with LiteLLM's `config.yaml` schema, so a LiteLLM user's config and clients keep working.
//!
//! * [`ProxyConfig`]: loads and checks the YAML (`model_list`, `litellm_settings`,
//!   `router_settings`, `general_settings`, `environment_variables`, `os.environ/VAR` references);
//!   problems name the file, the path inside it and what is wrong; unsupported keys are listed.
//! * [`Gateway`] / [`serve_on`]: axum server with `POST /v1/chat/completions`, `/v1/completions`,
//!   `/v1/embeddings`, `GET /v1/models`, `/v1/models/{id}` (each also without `/v1`), health
//!   probes, SSE streaming with keep-alive, OpenAI error JSON for every failure, graceful
//!   shutdown that drains in-flight streams.
//! * Anthropic-compatible `POST /v1/messages` and `/v1/messages/count_tokens` in front of any
//!   backend (Anthropic's request, response, named stream events and error envelope; see
//!   `src/anthropic_api.rs`), for Anthropic SDK clients and Claude Code.
//! * [`auth`]: master key via `Authorization: Bearer`, `x-api-key` or `api-key`, compared in
//!   constant time, behind an [`Authenticator`] trait for virtual keys later. The client's key
//!   is never forwarded upstream.
//! * [`callbacks`]: one standard [`CallEvent`] per call (success, failure, stream end, client
//!   disconnect) to [`CallbackSink`]s; built in: a batched JSON webhook (`generic_api`) and
//!   OTLP/HTTP traces with GenAI attributes ([`otel`]), from `success_callback` /
//!   `failure_callback` / `callbacks` and the `OTEL_*` variables.
//! * [`metrics`]: `GET /metrics` in Prometheus text format (requests, failures by kind, latency,
//!   time to first token, gateway overhead, tokens, spend, in-flight, deployment cooldowns);
//!   `GET /health` calls every deployment once (`max_tokens: 1`) and lists healthy/unhealthy.
//! * A built-in `mock` provider (`model: mock/<anything>` or `mock_response`) for offline use.
//! * Azure OpenAI deployment routes `POST /openai/deployments/{deployment}/chat/completions`
//!   (`/completions`, `/embeddings`; `api-version` accepted): the deployment is the model group.
//! * [`reload`]: the config file is reloaded on change or SIGHUP ([`Reloader`]); new requests
//!   use the new model groups and router, in-flight ones finish on the old; an invalid file
//!   keeps the old config. Request defaults in `litellm_params` (`temperature`, `max_tokens`, …)
//!   fill what a request leaves out.
//! * `GET /openapi.json` ([`openapi_document`]): OpenAPI 3.1 of every route in [`ROUTES`] and
//!   the sub-routers, kept true by `tests/openapi.rs`.
//! * Per-response headers: `x-tollgate-call-id`, `-model-group`, and for routed calls
//!   `-deployment-id`, `-attempted-retries`, `-attempted-fallbacks`, `-overhead-ms`,
//!   `-response-cost` (each also under LiteLLM's `x-litellm-*` name).
//!
//! `docs/configuration.md` is the config reference (supported and unsupported keys).
//!
//! Only configured model groups are served; other model strings get 404 `model_not_found`.
//!
//! **Must never depend on** the CLI (`tollgate-cli`) or any dev-only crate (testkit) outside
//! dev-dependencies.

pub mod auth;
pub mod callbacks;
pub mod config;
mod defaults;
mod error;
mod health;
pub mod metrics;
mod mock;
mod openapi;
pub mod otel;
pub mod reload;
mod server;

pub use auth::{AuthError, Authenticator, MasterKeyAuth, OpenAccess, Principal};
pub use callbacks::{CallEvent, CallStatus, CallbackSink, Callbacks, EventFilter};
pub use config::{ConfigError, MockSettings, Problem, ProxyConfig, ServerSettings};
pub use openapi::openapi_document;
pub use reload::{ReloadOutcome, ReloadReport, Reloader, WatchHandle};
pub use server::{ApiRoute, Gateway, ROUTES, serve_on, shutdown_signal};

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the SDK client: {0}")]
    Client(tollgate::Error),
    #[error("server I/O error: {0}")]
    Io(std::io::Error),
}
