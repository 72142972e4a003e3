//! The rate-limiter contract: limits, decisions, grants.

use std::time::Duration;

use crate::BoxFuture;
use crate::entity::Entity;

/// Limits of one entity; `None`: unlimited on that axis (and nothing is counted for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests admitted per window (a minute unless the limiter was configured otherwise).
    pub rpm: Option<u64>,
    /// Estimated tokens admitted per window; corrected to the real count by [`RateLimiter::settle`].
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub max_parallel: Option<u64>,
}

impl Limits {
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_parallel.is_none()
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests,
    Tokens,
    Parallel,
}

/// The outcome of [`RateLimiter::try_acquire`], with what the `x-ratelimit-*` headers need.
#[derive(Debug)]
pub struct Decision {
    pub allowed: bool,
    /// Refused: when trying again can succeed (the window's end; a short pause for parallel).
    pub retry_after: Option<Duration>,
    /// Requests left in the current window after this decision (`None`: no rpm limit, or the
    /// backend was unavailable and the request was let through).
    pub remaining_requests: Option<u64>,
    /// Tokens left in the current window after this decision.
    pub remaining_tokens: Option<u64>,
    /// Time until the current window resets.
    pub reset: Duration,
    /// Refused: which limit was hit first (requests, then tokens, then parallel).
    pub limited_by: Option<LimitKind>,
    /// Allowed because the shared backend was unavailable and the policy is fail-open: nothing
    /// was counted.
    pub degraded: bool,
    /// Allowed: what to settle and release when the request ends.
    pub grant: Option<Grant>,
}

/// What an admitted request holds: hand it back through [`RateLimiter::settle`] (real token
/// count) and [`RateLimiter::release`] (frees the parallel slot), or [`RateLimiter::cancel`] when
/// the request is refused at another level and never runs.
#[derive(Debug)]
pub struct Grant {
    pub(crate) entity: Entity,
    pub(crate) window: u64,
    pub(crate) counted_request: bool,
    pub(crate) counted_tokens: bool,
    /// Tokens currently counted for this request in its window.
    pub(crate) tokens: u64,
    pub(crate) holds_slot: bool,
    /// The shared backend's id of the slot (empty in process).
    pub(crate) slot_id: String,
}

impl Grant {
    pub fn entity(&self) -> &Entity {
        &self.entity
    }

    /// Tokens this request currently counts for in its window (the estimate until settled).
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// A grant that holds nothing (fail-open, or no limit configured).
    pub(crate) fn empty(entity: &Entity, window: u64) -> Self {
        Grant {
            entity: entity.clone(),
            window,
            counted_request: false,
            counted_tokens: false,
            tokens: 0,
            holds_slot: false,
            slot_id: String::new(),
        }
    }
}

/// Errors of a limiter or a budget counter.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The shared backend failed or timed out and the policy is fail-closed. The proxy should
    /// refuse the request (503).
    #[error("limits backend unavailable: {0}")]
    Unavailable(String),
    /// A settle or release could not be written (logged and counted; the window's count stays
    /// at the estimate, or the slot is freed by its TTL).
    #[error("limits backend write failed: {0}")]
    WriteFailed(String),
    /// The backend's settings are unusable (e.g. an invalid Redis URL).
    #[error("invalid limits configuration: {0}")]
    InvalidConfig(String),
}

/// A rate limiter for rpm / tpm / max-parallel limits keyed by entity.
///
/// One decision is one atomic check-and-increment over the entity's window counters: either every
/// counter is incremented (allowed) or none is (refused). Several levels (key, team, user, …) are
/// separate decisions; when a later level refuses, [`RateLimiter::cancel`] the earlier grants.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    fn try_acquire<'a>(
        &'a self,
        entity: &'a Entity,
        limits: &'a Limits,
        tokens_estimate: u64,
    ) -> BoxFuture<'a, Result<Decision, LimitError>>;

    /// Replaces the grant's token estimate by the real count in the window it was admitted in
    /// (a window already over is left alone). May be called more than once.
    fn settle<'a>(
        &'a self,
        grant: &'a mut Grant,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), LimitError>>;

    /// The request ended: frees its parallel slot.
    fn release(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>>;

    /// The request never ran: takes back its request, its tokens and its slot.
    fn cancel(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>>;
}

/// Window arithmetic shared by the backends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) index: u64,
    pub(crate) reset: Duration,
}

pub(crate) fn window_at(now_ms: u64, window_ms: u64) -> Window {
    let window_ms = window_ms.max(1);
    let index = now_ms / window_ms;
    let end = index.saturating_add(1).saturating_mul(window_ms);
    Window { index, reset: Duration::from_millis(end.saturating_sub(now_ms)) }
}

/// How long a refused caller should wait before a parallel slot may be free.
pub(crate) const PARALLEL_RETRY: Duration = Duration::from_secs(1);

pub(crate) fn retry_for(kind: LimitKind, reset: Duration) -> Duration {
    match kind {
        LimitKind::Requests | LimitKind::Tokens => reset,
        LimitKind::Parallel => PARALLEL_RETRY,
    }
}

/// The outcome of [`acquire_all`].
#[derive(Debug)]
pub enum Admission {
    /// Every level admitted the request: one grant per level that counted something, and every
    /// level's decision (grants taken out) for the `x-ratelimit-*` headers.
    Allowed { grants: Vec<Grant>, decisions: Vec<Decision> },
    /// Level `level` (an index into the input) refused; the grants of the levels before it were
    /// cancelled.
    Refused { level: usize, decision: Decision },
}

/// Acquires at every level in order (key, team, user, …), all or nothing: when a level refuses or
/// fails closed, the levels already admitted are cancelled. Cancel failures are counted by the
/// backend and otherwise ignored (their counters expire with their window).
pub async fn acquire_all<L: RateLimiter + ?Sized>(
    limiter: &L,
    levels: &[(Entity, Limits)],
    tokens_estimate: u64,
) -> Result<Admission, LimitError> {
    let mut grants = Vec::with_capacity(levels.len());
    let mut decisions = Vec::with_capacity(levels.len());
    for (level, (entity, limits)) in levels.iter().enumerate() {
        let outcome = limiter.try_acquire(entity, limits, tokens_estimate).await;
        let refused = match outcome {
            Ok(mut d) if d.allowed => {
                if let Some(g) = d.grant.take() {
                    grants.push(g);
                }
                decisions.push(d);
                continue;
            }
            Ok(d) => Ok(Admission::Refused { level, decision: d }),
            Err(e) => Err(e),
        };
        for g in grants {
            let _ = limiter.cancel(g).await;
        }
        return refused;
    }
    Ok(Admission::Allowed { grants, decisions })
}
