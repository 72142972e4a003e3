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
//! * [`auth`]: master key via `Authorization: Bearer`, `x-api-key` or `api-key`, compared in
//!   constant time, behind an [`Authenticator`] trait for virtual keys later. The client's key
//!   is never forwarded upstream.
//! * A built-in `mock` provider (`model: mock/<anything>` or `mock_response`) for offline use.
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
pub mod config;
mod error;
mod mock;
mod server;

pub use auth::{AuthError, Authenticator, MasterKeyAuth, OpenAccess, Principal};
pub use config::{ConfigError, MockSettings, Problem, ProxyConfig, ServerSettings};
pub use server::{Gateway, serve_on, shutdown_signal};

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
