//! # tollgate-router
//!
//! Several deployments behind one model name, traffic spread well, failures absorbed without
//! the caller noticing. Used by the `tollgate` facade and by the proxy.
//!
//! * **Model groups** ([`RouterConfig`], LiteLLM's `model_list` shape): a public name → deployments,
//!   each with its provider model, credentials, `rpm`, `tpm`, `weight`, `order`, `timeout`,
//!   `stream_timeout`, `tags`, `max_parallel_requests` and custom prices. A group named with one
//!   `*` (`anthropic/*`, `*`) is a wildcard: a request for `anthropic/claude-x` uses it, and a
//!   deployment model `anthropic/*` becomes `anthropic/claude-x` (the `*` takes the matched text).
//!   Exact names win over wildcards; among wildcards the longest pattern wins.
//! * **Selection** (per request, no heap allocation for tiers of up to 16 deployments): the
//!   deployments of the lowest `order` tier that has an available one (missing `order`: last tier);
//!   available = passes the tag and context checks, is not cooling down, and is under its
//!   `max_parallel_requests`, `rpm` and `tpm` for the current minute. Among those the
//!   [`RoutingStrategy`] picks: simple-shuffle (weighted random), least-busy, usage-based (lowest
//!   current-minute tokens, then requests), latency-based (lowest moving-average latency, time to
//!   first token for streams; `lowest_latency_buffer` spreads load among near-fastest), cost-based
//!   (cheapest `input·prompt + output·max_tokens` by custom prices, else the [`ModelCatalog`]).
//!   Ties are broken at random.
//! * **Tags** (with `enable_tag_filtering`): a request with tags goes to deployments whose tags
//!   include *all* of the request's tags; if none has them, to deployments tagged `default`; if
//!   there are none, the request fails (`BadRequest`). A request without tags goes to deployments
//!   tagged `default` when the group has any, else to every deployment.
//! * **Pre-call checks** (with `enable_pre_call_checks`): deployments whose context window
//!   (`model_info.max_input_tokens`, else the catalog) is smaller than the prompt's tokens (from
//!   the catalog) are skipped; when none fits, the group fails with `ContextWindowExceeded` before
//!   any call, which leads straight to its context-window fallbacks.
//! * **Retries** (`num_retries` per group, `retry_policy` per error class): retryable kinds
//!   (rate limited, timeout, overloaded, 5xx, transport) are retried after full-jitter exponential
//!   backoff (`retry_backoff_base·2ⁿ` capped at `retry_backoff_max`, at least `retry_after`), on a
//!   different deployment of the group when one is available; when the retry goes to the same
//!   deployment, its `Retry-After` is honoured up to `max_retry_after`. Deployment-specific
//!   failures (authentication, permission, not found, undecodable answer) move at once to another
//!   untried deployment of the group, if any. Request errors (bad request, unsupported parameters,
//!   context window, content filter) are never retried.
//! * **Fallbacks**: when a group fails with an error that [`ErrorKind::should_fall_back`], the
//!   groups listed for it are tried in order, each with its own retries, at most `max_fallbacks`
//!   of them: `context_window_fallbacks` for context-window errors and `content_policy_fallbacks`
//!   for content-filter errors when the group has such an entry, else `fallbacks`, else
//!   `default_fallbacks`.
//! * **Cooldowns**: failures that [`ErrorKind::should_cool_down`] count per minute; the
//!   `allowed_fails + 1`-th, or reaching `cooldown_failure_ratio` over at least
//!   `cooldown_min_requests`, takes the deployment out of rotation for `cooldown_time`. Client
//!   errors never count. When every deployment is cooling the error is `Overloaded` (or
//!   `RateLimited` when limits are the cause) with `retry_after` = the soonest return.
//! * **Timeouts**: total (`timeout`) and first token for streams (`stream_timeout`), enforced by
//!   the transport. Streams are returned only after their first chunk, so retries and fallbacks
//!   happen before the caller sees a byte; later failures end the stream with one error.
//! * **State** ([`RouterState`]) holds in-flight counts, usage windows, latencies and cooldowns;
//!   [`InMemoryState`] is lock-free atomics; a shared implementation can replace it.
//!
//! Every result says which deployment answered and lists every attempt ([`RouteInfo`]); a total
//! failure is a [`RouterError`] carrying each attempt's error.
//!
//! **Must never depend on** provider crates (adapters come from the caller's resolver), the
//! proxy, a server framework (axum), storage or telemetry. It depends on `tollgate-core` and
//! `tollgate-transport`, and with the `pricing` feature on `tollgate-pricing` (`PricingCatalog`).

// Errors are the rare path and carry every attempt; boxing them would only add an allocation.
#![allow(clippy::result_large_err)]

mod catalog;
mod clock;
mod config;
mod outcome;
pub mod rng;
mod router;
mod select;
mod state;
mod stream;

#[cfg(feature = "pricing")]
pub use catalog::PricingCatalog;
pub use catalog::{ModelCatalog, ModelFacts, NoCatalog, StaticCatalog};
pub use clock::{Clock, ManualClock, RecordingSleeper, SleepFuture, Sleeper, SystemClock, TokioSleeper};
pub use config::{
    DeploymentConfig, DeploymentInfo, DeploymentParams, FallbackList, RetryPolicy, RouterConfig,
    RouterSettings, RoutingStrategy, StrategyArgs, is_secret_param,
};
pub use outcome::{Attempt, ConfigError, FailureReason, RouteInfo, Routed, RouterError};
pub use router::{AuthFuture, Authorizer, RequestOptions, Resolver, Router, RouterBuilder, UpstreamHook};
pub use state::{CooldownPolicy, DeploymentLoad, DeploymentRef, InMemoryState, RouterState};
pub use stream::RoutedStream;
pub use tollgate_core::ErrorKind;
pub use tollgate_transport::Timeouts;
