//! Routing state: requests in flight, current-minute usage, latencies, failures and cooldowns.
//!
//! The router reads and updates it through [`RouterState`], so that several proxy instances can
//! share it (a Redis implementation comes later). [`InMemoryState`] keeps one cache-line-aligned
//! slot of atomics per deployment: no lock on the request path.
//!
//! Usage and failure counts are per wall-clock minute (`now_ms / 60_000`). At a minute boundary
//! the counters are reset by whichever thread sees the new minute first; increments racing with
//! that reset may be lost, so counts are exact within a minute and approximate across its edge.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which deployment: its position in the router's deployment list (stable for the router's
/// life) and its id (stable across restarts and instances; what a shared store keys on).
#[derive(Debug, Clone, Copy)]
pub struct DeploymentRef<'a> {
    pub slot: usize,
    pub id: &'a str,
}

/// A deployment's current load, as read for one routing decision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeploymentLoad {
    pub in_flight: u64,
    /// Requests started in the current minute.
    pub rpm_used: u64,
    /// Tokens used in the current minute.
    pub tpm_used: u64,
    /// When its cooldown ends (ms since the epoch); 0 or in the past: not cooling.
    pub cooldown_until_ms: u64,
    /// Moving average of whole-call latency, ms; 0: no sample yet.
    pub latency_ms: f64,
    /// Moving average of time to first token of streams, ms; 0: no sample yet.
    pub ttft_ms: f64,
}

/// When a failing deployment leaves rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CooldownPolicy {
    /// Cool down when the failures of the current minute exceed this.
    pub allowed_fails: u32,
    /// Or when failures / finished requests of the current minute reach this ratio …
    pub failure_ratio: Option<f64>,
    /// … with at least this many finished requests.
    pub min_requests: u32,
    pub cooldown_time: Duration,
}

/// Shared routing state. Implementations must be cheap to read: `load` is called for every
/// candidate deployment of every routing decision.
pub trait RouterState: Send + Sync + fmt::Debug {
    /// Called once when a router is built, with every deployment id in slot order.
    fn prepare(&self, _deployment_ids: &[&str]) {}

    fn load(&self, d: DeploymentRef<'_>, now_ms: u64) -> DeploymentLoad;

    /// A call to `d` starts: one more in flight, one more request this minute.
    fn begin(&self, d: DeploymentRef<'_>, now_ms: u64);

    /// A call to `d` ended (however it ended; exactly once per `begin`).
    fn end(&self, d: DeploymentRef<'_>);

    /// Tokens the deployment served (counted against its `tpm`).
    fn add_tokens(&self, d: DeploymentRef<'_>, now_ms: u64, tokens: u64);

    /// A latency sample; `first_token`: time to the first streamed chunk, else the whole call.
    /// `alpha` is the weight of the new sample in the moving average.
    fn record_latency(&self, d: DeploymentRef<'_>, latency: Duration, first_token: bool, alpha: f64);

    fn record_success(&self, d: DeploymentRef<'_>, now_ms: u64);

    /// A failure that counts against the deployment. Returns the end of the cooldown (ms) when
    /// this failure put the deployment into cooldown.
    fn record_failure(&self, d: DeploymentRef<'_>, now_ms: u64, policy: &CooldownPolicy) -> Option<u64>;

    /// Puts `d` in cooldown until `until_ms` (e.g. an operator action); 0 clears it.
    fn set_cooldown(&self, d: DeploymentRef<'_>, until_ms: u64);
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    in_flight: AtomicU64,
    usage_minute: AtomicU64,
    rpm: AtomicU64,
    tpm: AtomicU64,
    health_minute: AtomicU64,
    fails: AtomicU64,
    successes: AtomicU64,
    cooldown_until: AtomicU64,
    latency_bits: AtomicU64,
    ttft_bits: AtomicU64,
}

const MINUTE_MS: u64 = 60_000;

/// Resets `counters` when `minute` moves on; returns nothing, the caller then adds.
fn roll(minute_cell: &AtomicU64, minute: u64, counters: &[&AtomicU64]) {
    let seen = minute_cell.load(Ordering::Acquire);
    if seen != minute
        && minute_cell.compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire).is_ok()
    {
        for c in counters {
            c.store(0, Ordering::Release);
        }
    }
}

/// Process-local state: one slot of atomics per deployment.
#[derive(Default)]
pub struct InMemoryState {
    slots: OnceLock<Box<[Slot]>>,
}

impl fmt::Debug for InMemoryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryState")
            .field("deployments", &self.slots.get().map_or(0, |s| s.len()))
            .finish()
    }
}

impl InMemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, d: DeploymentRef<'_>) -> Option<&Slot> {
        self.slots.get()?.get(d.slot)
    }
}

impl RouterState for InMemoryState {
    /// Sizes the slots; a second router on the same state must have the same deployments (extra
    /// slots are ignored: reads of unknown slots see an idle deployment).
    fn prepare(&self, deployment_ids: &[&str]) {
        let _ = self.slots.set((0..deployment_ids.len()).map(|_| Slot::default()).collect());
    }

    fn load(&self, d: DeploymentRef<'_>, now_ms: u64) -> DeploymentLoad {
        let Some(s) = self.slot(d) else { return DeploymentLoad::default() };
        let current = s.usage_minute.load(Ordering::Acquire) == now_ms / MINUTE_MS;
        DeploymentLoad {
            in_flight: s.in_flight.load(Ordering::Relaxed),
            rpm_used: if current { s.rpm.load(Ordering::Relaxed) } else { 0 },
            tpm_used: if current { s.tpm.load(Ordering::Relaxed) } else { 0 },
            cooldown_until_ms: s.cooldown_until.load(Ordering::Relaxed),
            latency_ms: f64::from_bits(s.latency_bits.load(Ordering::Relaxed)),
            ttft_ms: f64::from_bits(s.ttft_bits.load(Ordering::Relaxed)),
        }
    }

    fn begin(&self, d: DeploymentRef<'_>, now_ms: u64) {
        let Some(s) = self.slot(d) else { return };
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        roll(&s.usage_minute, now_ms / MINUTE_MS, &[&s.rpm, &s.tpm]);
        s.rpm.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self, d: DeploymentRef<'_>) {
        let Some(s) = self.slot(d) else { return };
        // Never below zero, even if a caller ends twice.
        let _ = s.in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    fn add_tokens(&self, d: DeploymentRef<'_>, now_ms: u64, tokens: u64) {
        let Some(s) = self.slot(d) else { return };
        roll(&s.usage_minute, now_ms / MINUTE_MS, &[&s.rpm, &s.tpm]);
        s.tpm.fetch_add(tokens, Ordering::Relaxed);
    }

    fn record_latency(&self, d: DeploymentRef<'_>, latency: Duration, first_token: bool, alpha: f64) {
        let Some(s) = self.slot(d) else { return };
        let cell = if first_token { &s.ttft_bits } else { &s.latency_bits };
        let sample = (latency.as_secs_f64() * 1000.0).max(1e-3);
        let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            let old = f64::from_bits(bits);
            let new = if old > 0.0 { old + alpha * (sample - old) } else { sample };
            Some(new.to_bits())
        });
    }

    fn record_success(&self, d: DeploymentRef<'_>, now_ms: u64) {
        let Some(s) = self.slot(d) else { return };
        roll(&s.health_minute, now_ms / MINUTE_MS, &[&s.fails, &s.successes]);
        s.successes.fetch_add(1, Ordering::Relaxed);
    }

    fn record_failure(&self, d: DeploymentRef<'_>, now_ms: u64, policy: &CooldownPolicy) -> Option<u64> {
        let s = self.slot(d)?;
        roll(&s.health_minute, now_ms / MINUTE_MS, &[&s.fails, &s.successes]);
        let fails = s.fails.fetch_add(1, Ordering::AcqRel) + 1;
        let successes = s.successes.load(Ordering::Acquire);
        let over_allowed = fails > u64::from(policy.allowed_fails);
        let over_ratio = policy.failure_ratio.is_some_and(|ratio| {
            let total = fails + successes;
            total >= u64::from(policy.min_requests) && (fails as f64) >= ratio * total as f64
        });
        if !(over_allowed || over_ratio) {
            return None;
        }
        let until =
            now_ms.saturating_add(u64::try_from(policy.cooldown_time.as_millis()).unwrap_or(u64::MAX));
        let prev = s.cooldown_until.fetch_max(until, Ordering::AcqRel);
        // A fresh start after the cooldown: the failures that caused it are forgiven.
        s.fails.store(0, Ordering::Release);
        s.successes.store(0, Ordering::Release);
        (prev <= now_ms).then_some(until)
    }

    fn set_cooldown(&self, d: DeploymentRef<'_>, until_ms: u64) {
        if let Some(s) = self.slot(d) {
            s.cooldown_until.store(until_ms, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(slot: usize) -> DeploymentRef<'static> {
        DeploymentRef { slot, id: "x" }
    }

    #[test]
    fn usage_is_per_minute() {
        let s = InMemoryState::new();
        s.prepare(&["a", "b"]);
        s.begin(d(0), 60_000);
        s.add_tokens(d(0), 60_500, 100);
        let l = s.load(d(0), 119_999);
        assert_eq!((l.in_flight, l.rpm_used, l.tpm_used), (1, 1, 100));
        // Next minute: counters read as zero, then reset on the first write.
        assert_eq!(s.load(d(0), 120_000).rpm_used, 0);
        s.begin(d(0), 120_001);
        assert_eq!(s.load(d(0), 120_002).rpm_used, 1);
        assert_eq!(s.load(d(0), 120_002).tpm_used, 0);
        s.end(d(0));
        s.end(d(0));
        s.end(d(0));
        assert_eq!(s.load(d(0), 120_002).in_flight, 0);
        assert_eq!(s.load(d(1), 0), DeploymentLoad::default());
        assert_eq!(s.load(d(9), 0), DeploymentLoad::default());
    }

    #[test]
    fn cooldown_after_allowed_fails_and_by_ratio() {
        let s = InMemoryState::new();
        s.prepare(&["a", "b"]);
        let p = CooldownPolicy {
            allowed_fails: 2,
            failure_ratio: None,
            min_requests: 0,
            cooldown_time: Duration::from_secs(10),
        };
        assert_eq!(s.record_failure(d(0), 1_000, &p), None);
        assert_eq!(s.record_failure(d(0), 1_000, &p), None);
        assert_eq!(s.record_failure(d(0), 2_000, &p), Some(12_000));
        assert_eq!(s.load(d(0), 2_000).cooldown_until_ms, 12_000);

        let p = CooldownPolicy { allowed_fails: 100, failure_ratio: Some(0.5), min_requests: 4, ..p };
        for _ in 0..2 {
            s.record_success(d(1), 1_000);
        }
        assert_eq!(s.record_failure(d(1), 1_000, &p), None); // 1/3, below min requests
        assert_eq!(s.record_failure(d(1), 1_000, &p), Some(11_000)); // 2/4 ≥ 0.5
    }

    #[test]
    fn latency_moving_average() {
        let s = InMemoryState::new();
        s.prepare(&["a"]);
        s.record_latency(d(0), Duration::from_millis(100), false, 0.5);
        s.record_latency(d(0), Duration::from_millis(200), false, 0.5);
        s.record_latency(d(0), Duration::from_millis(40), true, 0.5);
        let l = s.load(d(0), 0);
        assert!((l.latency_ms - 150.0).abs() < 1e-9, "{}", l.latency_ms);
        assert!((l.ttft_ms - 40.0).abs() < 1e-9);
    }
}
