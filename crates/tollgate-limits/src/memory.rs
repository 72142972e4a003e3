//! In-process implementations: exact for one instance, no global lock.
//!
//! State lives in 64 shards, each a small mutex-protected map chosen by the entity's hash, so
//! requests of different entities rarely meet on a lock and a decision holds one shard's lock for
//! a few integer operations (the check and the increment are one critical section: exact).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use crate::budget::{BudgetCounter, BudgetOutcome, BudgetSpec, BudgetUsage, NanoUsd, Reservation};
use crate::entity::Entity;
use crate::rate::{Decision, Grant, LimitError, LimitKind, Limits, RateLimiter, retry_for, window_at};
use crate::{BoxFuture, SharedClock, SystemClock};

const SHARDS: usize = 64;
/// A shard prunes dead entries when it grows past this many.
const PRUNE_AT: usize = 4_096;

struct Shards<V> {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<Entity, V>>]>,
}

impl<V: Default> Shards<V> {
    fn new() -> Self {
        Self { hasher: RandomState::new(), shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    fn shard(&self, e: &Entity) -> std::sync::MutexGuard<'_, HashMap<Entity, V>> {
        let i = (self.hasher.hash_one(e) as usize) % self.shards.len().max(1);
        // Never fails: the index is reduced modulo the non-empty shard count.
        match self.shards.get(i) {
            Some(m) => m.lock().unwrap_or_else(PoisonError::into_inner),
            None => self.shards[0].lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Runs `f` on the entity's entry (created if missing; `dead` entries are pruned first when
    /// the shard is large).
    fn with<R>(&self, e: &Entity, dead: impl Fn(&V) -> bool, f: impl FnOnce(&mut V) -> R) -> R {
        let mut map = self.shard(e);
        if !map.contains_key(e) {
            if map.len() >= PRUNE_AT {
                map.retain(|_, v| !dead(v));
            }
            map.insert(e.clone(), V::default());
        }
        match map.get_mut(e) {
            Some(v) => f(v),
            None => f(&mut V::default()),
        }
    }

    fn with_existing<R>(&self, e: &Entity, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.shard(e).get_mut(e).map(f)
    }
}

#[derive(Debug, Default)]
struct RateState {
    window: u64,
    requests: u64,
    tokens: u64,
    parallel: u64,
}

/// In-process rate limiter over fixed windows (see the crate docs).
pub struct InProcessRateLimiter {
    state: Shards<RateState>,
    window_ms: u64,
    clock: SharedClock,
}

impl fmt::Debug for InProcessRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessRateLimiter").field("window_ms", &self.window_ms).finish()
    }
}

impl Default for InProcessRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessRateLimiter {
    /// One-minute windows on the system clock.
    pub fn new() -> Self {
        Self::with_clock(60_000, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(window_ms: u64, clock: SharedClock) -> Self {
        Self { state: Shards::new(), window_ms: window_ms.max(1), clock }
    }

    fn decide(&self, entity: &Entity, limits: &Limits, est: u64) -> Decision {
        let w = window_at(self.clock.now_ms(), self.window_ms);
        if limits.is_unlimited() {
            return Decision {
                allowed: true,
                retry_after: None,
                remaining_requests: None,
                remaining_tokens: None,
                reset: w.reset,
                limited_by: None,
                degraded: false,
                grant: Some(Grant::empty(entity, w.index)),
            };
        }
        let current = w.index;
        let dead = move |s: &RateState| s.window != current && s.parallel == 0;
        self.state.with(entity, dead, |s| {
            if s.window != w.index {
                s.window = w.index;
                s.requests = 0;
                s.tokens = 0;
            }
            let refused = if limits.rpm.is_some_and(|l| s.requests.saturating_add(1) > l) {
                Some(LimitKind::Requests)
            } else if limits.tpm.is_some_and(|l| s.tokens.saturating_add(est) > l) {
                Some(LimitKind::Tokens)
            } else if limits.max_parallel.is_some_and(|l| s.parallel.saturating_add(1) > l) {
                Some(LimitKind::Parallel)
            } else {
                None
            };
            let grant = if refused.is_none() {
                let mut g = Grant::empty(entity, w.index);
                if limits.rpm.is_some() {
                    s.requests += 1;
                    g.counted_request = true;
                }
                if limits.tpm.is_some() {
                    s.tokens = s.tokens.saturating_add(est);
                    g.counted_tokens = true;
                    g.tokens = est;
                }
                if limits.max_parallel.is_some() {
                    s.parallel += 1;
                    g.holds_slot = true;
                }
                Some(g)
            } else {
                None
            };
            Decision {
                allowed: refused.is_none(),
                retry_after: refused.map(|k| retry_for(k, w.reset)),
                remaining_requests: limits.rpm.map(|l| l.saturating_sub(s.requests)),
                remaining_tokens: limits.tpm.map(|l| l.saturating_sub(s.tokens)),
                reset: w.reset,
                limited_by: refused,
                degraded: false,
                grant,
            }
        })
    }

    fn undo(&self, grant: &Grant, request: bool, tokens: bool, slot: bool) {
        self.state.with_existing(&grant.entity, |s| {
            if s.window == grant.window {
                if request && grant.counted_request {
                    s.requests = s.requests.saturating_sub(1);
                }
                if tokens && grant.counted_tokens {
                    s.tokens = s.tokens.saturating_sub(grant.tokens);
                }
            }
            if slot && grant.holds_slot {
                s.parallel = s.parallel.saturating_sub(1);
            }
        });
    }
}

impl RateLimiter for InProcessRateLimiter {
    fn try_acquire<'a>(
        &'a self,
        entity: &'a Entity,
        limits: &'a Limits,
        tokens_estimate: u64,
    ) -> BoxFuture<'a, Result<Decision, LimitError>> {
        let d = self.decide(entity, limits, tokens_estimate);
        Box::pin(async move { Ok(d) })
    }

    fn settle<'a>(
        &'a self,
        grant: &'a mut Grant,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), LimitError>> {
        if grant.counted_tokens {
            self.state.with_existing(&grant.entity, |s| {
                if s.window == grant.window {
                    s.tokens = s.tokens.saturating_sub(grant.tokens).saturating_add(actual_tokens);
                }
            });
            grant.tokens = actual_tokens;
        }
        Box::pin(async { Ok(()) })
    }

    fn release(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>> {
        self.undo(&grant, false, false, true);
        Box::pin(async { Ok(()) })
    }

    fn cancel(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>> {
        self.undo(&grant, true, true, true);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug, Default)]
struct BudgetState {
    period: u64,
    spent: u64,
    reserved: u64,
}

/// In-process budget counters.
pub struct InProcessBudgets {
    state: Shards<BudgetState>,
    clock: SharedClock,
}

impl fmt::Debug for InProcessBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBudgets").finish_non_exhaustive()
    }
}

impl Default for InProcessBudgets {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBudgets {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    pub fn with_clock(clock: SharedClock) -> Self {
        Self { state: Shards::new(), clock }
    }

    /// Runs `f` on the entity's state rolled to `period`.
    fn at_period<R>(&self, entity: &Entity, period: u64, f: impl FnOnce(&mut BudgetState) -> R) -> R {
        self.state.with(
            entity,
            |s| s.reserved == 0 && s.period < period,
            |s| {
                if period > s.period {
                    *s = BudgetState { period, spent: 0, reserved: 0 };
                }
                f(s)
            },
        )
    }
}

impl BudgetCounter for InProcessBudgets {
    fn reserve<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        estimate: NanoUsd,
    ) -> BoxFuture<'a, Result<BudgetOutcome, LimitError>> {
        let (period, end) = spec.period.at(self.clock.now_ms());
        let max = spec.max.0;
        let out = self.at_period(entity, period, |s| {
            let held = s.spent.saturating_add(s.reserved);
            if held >= max || held.saturating_add(estimate.0) > max {
                BudgetOutcome::Exceeded {
                    spent: NanoUsd(s.spent),
                    reserved: NanoUsd(s.reserved),
                    max: spec.max,
                    resets_at_ms: end,
                }
            } else {
                s.reserved += estimate.0;
                BudgetOutcome::Reserved(Reservation {
                    entity: entity.clone(),
                    spec_period: spec.period,
                    period,
                    period_end_ms: end,
                    amount: estimate,
                    degraded: false,
                    member: String::new(),
                })
            }
        });
        Box::pin(async move { Ok(out) })
    }

    fn settle(&self, r: Reservation, actual: NanoUsd) -> BoxFuture<'_, Result<(), LimitError>> {
        self.at_period(&r.entity, r.period, |s| {
            if s.period == r.period {
                s.reserved = s.reserved.saturating_sub(r.amount.0);
                s.spent = s.spent.saturating_add(actual.0);
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn usage<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
    ) -> BoxFuture<'a, Result<BudgetUsage, LimitError>> {
        let (period, end) = spec.period.at(self.clock.now_ms());
        let u = self
            .state
            .with_existing(entity, |s| {
                (s.period == period).then_some((NanoUsd(s.spent), NanoUsd(s.reserved)))
            })
            .flatten()
            .unwrap_or_default();
        Box::pin(async move { Ok(BudgetUsage { spent: u.0, reserved: u.1, resets_at_ms: end }) })
    }

    fn seed_spent<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        spent: NanoUsd,
    ) -> BoxFuture<'a, Result<(), LimitError>> {
        let (period, _) = spec.period.at(self.clock.now_ms());
        self.at_period(entity, period, |s| s.spent = s.spent.max(spent.0));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::entity::EntityKind;
    use crate::{BudgetPeriod, ManualClock};

    fn mc(ms: u64) -> ManualClock {
        ManualClock::new(Duration::from_millis(ms))
    }

    fn key(id: &str) -> Entity {
        Entity::new(EntityKind::Key, id)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn rpm_exact_within_a_window_and_resets_after() {
        let clock = mc(120_000);
        let rl = InProcessRateLimiter::with_clock(60_000, Arc::new(clock.clone()));
        let limits = Limits { rpm: Some(3), ..Limits::default() };
        let e = key("a");
        block_on(async {
            for i in 0..3 {
                let d = rl.try_acquire(&e, &limits, 0).await.unwrap();
                assert!(d.allowed);
                assert_eq!(d.remaining_requests, Some(2 - i));
            }
            clock.advance(Duration::from_millis(10_000));
            let d = rl.try_acquire(&e, &limits, 0).await.unwrap();
            assert!(!d.allowed);
            assert_eq!(d.limited_by, Some(LimitKind::Requests));
            assert_eq!(d.retry_after, Some(Duration::from_secs(50)));
            assert_eq!(d.reset, Duration::from_secs(50));
            assert!(d.grant.is_none());
            // Another entity has its own window.
            assert!(rl.try_acquire(&key("b"), &limits, 0).await.unwrap().allowed);
            clock.set(Duration::from_millis(180_000));
            let d = rl.try_acquire(&e, &limits, 0).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining_requests, Some(2));
        });
    }

    #[test]
    fn rpm_exact_under_thread_contention() {
        let rl = Arc::new(InProcessRateLimiter::with_clock(60_000, Arc::new(mc(0))));
        let limits = Limits { rpm: Some(250), ..Limits::default() };
        let allowed = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if block_on(rl.try_acquire(&key("hot"), &limits, 0)).unwrap().allowed {
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.into_inner(), 250);
    }

    #[test]
    fn tpm_counts_estimates_and_settles_to_actual() {
        let clock = mc(0);
        let rl = InProcessRateLimiter::with_clock(60_000, Arc::new(clock.clone()));
        let limits = Limits { tpm: Some(1_000), ..Limits::default() };
        let e = key("t");
        block_on(async {
            let mut g = rl.try_acquire(&e, &limits, 600).await.unwrap().grant.unwrap();
            let d = rl.try_acquire(&e, &limits, 600).await.unwrap();
            assert!(!d.allowed);
            assert_eq!(d.limited_by, Some(LimitKind::Tokens));
            assert_eq!(d.remaining_tokens, Some(400));
            // The first request really used 100 tokens: room for 900 more.
            rl.settle(&mut g, 100).await.unwrap();
            assert_eq!(g.tokens(), 100);
            let d = rl.try_acquire(&e, &limits, 900).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining_tokens, Some(0));
            // Settling twice replaces, it does not add.
            rl.settle(&mut g, 50).await.unwrap();
            assert_eq!(rl.try_acquire(&e, &limits, 50).await.unwrap().remaining_tokens, Some(0));
            // A settle after the window ended leaves the new window alone.
            clock.set(Duration::from_millis(60_000));
            let d = rl.try_acquire(&e, &limits, 10).await.unwrap();
            assert_eq!(d.remaining_tokens, Some(990));
            rl.settle(&mut g, 900).await.unwrap();
            assert_eq!(rl.try_acquire(&e, &limits, 0).await.unwrap().remaining_tokens, Some(990));
        });
    }

    #[test]
    fn parallel_slots_acquire_and_release_and_cancel_undoes() {
        let rl = InProcessRateLimiter::with_clock(60_000, Arc::new(mc(0)));
        let limits = Limits { rpm: Some(10), max_parallel: Some(2), ..Limits::default() };
        let e = key("p");
        block_on(async {
            let g1 = rl.try_acquire(&e, &limits, 0).await.unwrap().grant.unwrap();
            let g2 = rl.try_acquire(&e, &limits, 0).await.unwrap().grant.unwrap();
            let d = rl.try_acquire(&e, &limits, 0).await.unwrap();
            assert!(!d.allowed);
            assert_eq!(d.limited_by, Some(LimitKind::Parallel));
            assert_eq!(d.retry_after, Some(Duration::from_secs(1)));
            rl.release(g1).await.unwrap();
            let g3 = rl.try_acquire(&e, &limits, 0).await.unwrap();
            assert!(g3.allowed);
            assert_eq!(g3.remaining_requests, Some(7));
            // Cancel gives back the request too.
            rl.cancel(g3.grant.unwrap()).await.unwrap();
            let d = rl.try_acquire(&e, &limits, 0).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining_requests, Some(7));
            rl.release(g2).await.unwrap();
        });
    }

    #[test]
    fn acquire_all_is_all_or_nothing() {
        use crate::rate::{Admission, acquire_all};
        let rl = InProcessRateLimiter::with_clock(60_000, Arc::new(mc(0)));
        let k = (key("k"), Limits { rpm: Some(10), max_parallel: Some(10), ..Limits::default() });
        let team = (Entity::new(EntityKind::Team, "t"), Limits { rpm: Some(1), ..Limits::default() });
        let levels = [k.clone(), team.clone()];
        block_on(async {
            let Admission::Allowed { grants, decisions } = acquire_all(&rl, &levels, 0).await.unwrap() else {
                panic!("both levels have room")
            };
            assert_eq!((grants.len(), decisions.len()), (2, 2));
            assert_eq!(decisions[1].remaining_requests, Some(0));
            match acquire_all(&rl, &levels, 0).await.unwrap() {
                Admission::Refused { level, decision } => {
                    assert_eq!(level, 1);
                    assert_eq!(decision.limited_by, Some(LimitKind::Requests));
                }
                other => panic!("{other:?}"),
            }
            // The key level's request and slot were taken back: this one leaves 8, not 7.
            let d = rl.try_acquire(&k.0, &k.1, 0).await.unwrap();
            assert_eq!(d.remaining_requests, Some(8));
            for g in grants {
                rl.release(g).await.unwrap();
            }
        });
    }

    #[test]
    fn unlimited_counts_nothing() {
        let rl = InProcessRateLimiter::new();
        let d = block_on(rl.try_acquire(&key("u"), &Limits::default(), 10)).unwrap();
        assert!(d.allowed);
        assert_eq!((d.remaining_requests, d.remaining_tokens), (None, None));
    }

    #[test]
    fn budget_reservations_never_pass_max_and_settle_corrects() {
        let clock = mc(5_000);
        let b = InProcessBudgets::with_clock(Arc::new(clock.clone()));
        let spec = BudgetSpec {
            max: NanoUsd(1_000),
            period: BudgetPeriod::Every { anchor_ms: 0, length: Duration::from_secs(60) },
        };
        let e = key("b");
        block_on(async {
            let BudgetOutcome::Reserved(r1) = b.reserve(&e, &spec, NanoUsd(600)).await.unwrap() else {
                unreachable!("first reservation fits")
            };
            match b.reserve(&e, &spec, NanoUsd(500)).await.unwrap() {
                BudgetOutcome::Exceeded { spent, reserved, max, resets_at_ms } => {
                    assert_eq!((spent, reserved, max), (NanoUsd(0), NanoUsd(600), NanoUsd(1_000)));
                    assert_eq!(resets_at_ms, Some(60_000));
                }
                other => unreachable!("{other:?}"),
            }
            b.settle(r1, NanoUsd(200)).await.unwrap();
            let u = b.usage(&e, &spec).await.unwrap();
            assert_eq!((u.spent, u.reserved), (NanoUsd(200), NanoUsd(0)));
            assert!(matches!(b.reserve(&e, &spec, NanoUsd(800)).await.unwrap(), BudgetOutcome::Reserved(_)));
            // Full: even a zero estimate is refused.
            assert!(matches!(
                b.reserve(&e, &spec, NanoUsd(0)).await.unwrap(),
                BudgetOutcome::Exceeded { .. }
            ));
            // The next period starts from zero.
            clock.set(Duration::from_millis(60_000));
            assert_eq!(
                b.usage(&e, &spec).await.unwrap(),
                BudgetUsage { spent: NanoUsd(0), reserved: NanoUsd(0), resets_at_ms: Some(120_000) }
            );
            b.seed_spent(&e, &spec, NanoUsd(900)).await.unwrap();
            b.seed_spent(&e, &spec, NanoUsd(100)).await.unwrap();
            assert_eq!(b.usage(&e, &spec).await.unwrap().spent, NanoUsd(900));
            assert!(matches!(
                b.reserve(&e, &spec, NanoUsd(101)).await.unwrap(),
                BudgetOutcome::Exceeded { .. }
            ));
            assert!(matches!(b.reserve(&e, &spec, NanoUsd(100)).await.unwrap(), BudgetOutcome::Reserved(_)));
        });
    }
}
