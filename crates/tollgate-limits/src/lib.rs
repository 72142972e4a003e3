//! Rate limits and budgets for tollgate: requests per minute, tokens per minute and requests in
//! parallel per entity (virtual key, team, user, end customer, deployment), and spend budgets
//! with reset periods that stay exact across several proxy instances.
//!
//! Two backends sit behind the same traits ([`RateLimiter`], [`BudgetCounter`]):
//! - in process ([`InProcessRateLimiter`], [`InProcessBudgets`]): sharded maps, no global lock,
//!   exact for one instance;
//! - Redis ([`RedisRateLimiter`], [`RedisBudgets`] over one [`RedisBackend`]): one atomic Lua
//!   script per decision, keys hash-tagged per entity (`{<namespace>:<kind>:<id>}:…`) so Redis
//!   Cluster keeps every key of one decision in one slot, TTLs on every window key, a timeout on
//!   every call and a [`FailurePolicy`] (fail-open by default, counted and logged).
//!
//! [`RedisRouterState`] implements tollgate-router's `RouterState` over the same Redis: local
//! atomics on the request path, synced in the background (see its module docs).
//!
//! # Windows
//! Rate limits use **fixed windows** aligned to the epoch (`window_index = now_ms / window_ms`,
//! one minute by default). Within one window the count is exact: never more than `rpm` requests
//! and never more than `tpm` estimated tokens are admitted, across every instance sharing Redis.
//! The price of fixed windows is the edge: a client may get up to `2 × rpm` through in a short
//! span straddling a boundary (the end of one window and the start of the next). Instances compute the window from their own clock; skew between
//! them only moves a request near the boundary into the neighbouring window, and each window's
//! count stays exact.
//!
//! # Amounts
//! Budgets count integer nano-USD ([`NanoUsd`]), never floating-point dollars; the Redis scripts
//! compare them as Lua numbers, exact below 2⁵³ (9 million USD).
//!
//! # Redis Cluster
//! Keys are cluster-ready (one hash tag per entity), but the client compiled in is the
//! single-node `ConnectionManager` (redis's `cluster-async` feature is not enabled yet).
//!
//! This crate must never depend on the proxy, on provider crates or on a database; it holds no
//! HTTP types. It may use tollgate-core and tollgate-router.

mod budget;
mod entity;
mod memory;
mod rate;
mod redis_backend;
mod router_state;

pub use budget::{BudgetCounter, BudgetOutcome, BudgetPeriod, BudgetSpec, BudgetUsage, NanoUsd, Reservation};
pub use entity::{Entity, EntityKind};
pub use memory::{InProcessBudgets, InProcessRateLimiter};
pub use rate::{Admission, Decision, Grant, LimitError, LimitKind, Limits, RateLimiter, acquire_all};
pub use redis_backend::{
    FailurePolicy, RedisBackend, RedisBudgets, RedisConfig, RedisRateLimiter, RedisStats,
};
pub use router_state::{RedisRouterState, RouterStateConfig};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Time comes from the router's [`Clock`]: one clock for routing and limits, controllable in tests.
pub use tollgate_router::{Clock, ManualClock, SystemClock};

/// A boxed, sendable future: keeps the traits usable as `Arc<dyn RateLimiter>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A clock shared by a limiter and its caller (the router's clock, so the proxy can use one).
pub type SharedClock = Arc<dyn Clock>;
