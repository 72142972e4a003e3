//! [`RouterState`] shared through Redis, without Redis on the request path.
//!
//! The router calls `RouterState` synchronously, for every candidate of every routing decision,
//! so this implementation never waits for Redis there. Each instance keeps local atomics (what
//! it did since the last sync) and a snapshot of the shared state, and a background task syncs
//! every `sync_interval` (default 100 ms): one Lua script per deployment that adds the local
//! deltas to the shared counters and reads back the totals. `load` returns snapshot + local
//! deltas, so an instance always sees its own requests at once and the other instances' within
//! one sync interval. No trait change was needed.
//!
//! Shared keys, hash-tagged per deployment (`<tag>` = `{<namespace>:deployment:<id>}`):
//!
//! | key | holds | expires |
//! | --- | --- | --- |
//! | `<tag>:rs:if` | hash: instance id → `in_flight:expires_ms`; the total counts live instances only | with its last writer |
//! | `<tag>:rs:r:<minute>`, `:rs:t:<minute>` | requests / tokens of a wall-clock minute | 2 minutes |
//! | `<tag>:rs:f:<minute>`, `:rs:s:<minute>` | failures / successes of a minute (cooldown decisions) | 2 minutes |
//! | `<tag>:rs:cd` | cooldown end (ms) | at the cooldown end |
//! | `<tag>:rs:lat` | hash: instance id → `latency_us:ttft_us:expires_ms`; `load` reads the mean | with its last writer |
//!
//! An instance that stops syncing (crash) drops out of the in-flight and latency totals after
//! `instance_ttl`. Deltas are attributed to the minute in which they are synced, so usage is
//! approximate by at most one sync interval at a minute's edge (like [`InMemoryState`], which is
//! approximate across the edge too). A cooldown decided on one instance (from the shared failure
//! counts plus its own unsynced ones) reaches the others with the next sync. When Redis is
//! unavailable the state keeps working locally (each instance sees only itself) and the sync
//! failure is counted in the backend's `write_failures` and logged (rate-limited).
//!
//! [`InMemoryState`]: tollgate_router::InMemoryState

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tollgate_router::{CooldownPolicy, DeploymentLoad, DeploymentRef, RouterState};

use crate::entity::{Entity, EntityKind};
use crate::redis_backend::RedisBackend;

const MINUTE_MS: u64 = 60_000;
/// Marks a pending "clear the cooldown" (an operator's `set_cooldown(d, 0)`).
const CLEAR: u64 = u64::MAX;

/// KEYS: in-flight hash, requests, tokens, failures, successes (of the current minute), cooldown,
/// latency hash. ARGV: instance id, now ms, my in flight, instance ttl ms, request delta, token
/// delta, failure delta, success delta, cooldown to publish (0 none, -1 clear), my latency µs,
/// my ttft µs. Returns {others in flight, requests, tokens, failures, successes, cooldown end,
/// mean latency µs, mean ttft µs}.
const SYNC_LUA: &str = r"
local me = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], me, ARGV[3] .. ':' .. (now + ttl))
local others = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sep = string.find(v, ':', 1, true)
  local c = tonumber(string.sub(v, 1, sep - 1))
  local exp = tonumber(string.sub(v, sep + 1))
  if exp < now then redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= me then others = others + c end
end
redis.call('PEXPIRE', KEYS[1], ttl)
local function add(k, d)
  d = tonumber(d)
  if d ~= 0 then
    local v = redis.call('INCRBY', k, d)
    redis.call('PEXPIRE', k, 120000)
    return v
  end
  return tonumber(redis.call('GET', k) or '0')
end
local r = add(KEYS[2], ARGV[5])
local t = add(KEYS[3], ARGV[6])
local f = add(KEYS[4], ARGV[7])
local s = add(KEYS[5], ARGV[8])
local cd = tonumber(ARGV[9])
if cd == -1 then
  redis.call('DEL', KEYS[6])
elseif cd > now then
  local cur = tonumber(redis.call('GET', KEYS[6]) or '0')
  if cd > cur then redis.call('SET', KEYS[6], cd, 'PX', cd - now) end
  -- A fresh start after the cooldown: the failures that caused it are forgiven.
  redis.call('DEL', KEYS[4], KEYS[5])
  f = 0
  s = 0
end
local cool = tonumber(redis.call('GET', KEYS[6]) or '0')
local lat = tonumber(ARGV[10])
local ttft = tonumber(ARGV[11])
if lat > 0 or ttft > 0 then
  redis.call('HSET', KEYS[7], me, lat .. ':' .. ttft .. ':' .. (now + ttl))
  redis.call('PEXPIRE', KEYS[7], ttl)
end
local ls, ln, ts, tn = 0, 0, 0, 0
local lats = redis.call('HGETALL', KEYS[7])
for i = 1, #lats, 2 do
  local v = lats[i + 1]
  local a = string.find(v, ':', 1, true)
  local b = string.find(v, ':', a + 1, true)
  local l = tonumber(string.sub(v, 1, a - 1))
  local tt = tonumber(string.sub(v, a + 1, b - 1))
  local exp = tonumber(string.sub(v, b + 1))
  if exp < now then redis.call('HDEL', KEYS[7], lats[i]) else
    if l > 0 then ls = ls + l; ln = ln + 1 end
    if tt > 0 then ts = ts + tt; tn = tn + 1 end
  end
end
local lm, tm = 0, 0
if ln > 0 then lm = math.floor(ls / ln) end
if tn > 0 then tm = math.floor(ts / tn) end
return {others, r, t, f, s, cool, lm, tm}
";

#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    // Local, since the last sync.
    in_flight: AtomicU64,
    rpm_delta: AtomicU64,
    tpm_delta: AtomicU64,
    fail_delta: AtomicU64,
    success_delta: AtomicU64,
    pending_cooldown: AtomicU64,
    latency_bits: AtomicU64,
    ttft_bits: AtomicU64,
    // Snapshot of the shared state at the last sync.
    snap_minute: AtomicU64,
    others_in_flight: AtomicU64,
    rpm: AtomicU64,
    tpm: AtomicU64,
    fails: AtomicU64,
    successes: AtomicU64,
    cooldown_until: AtomicU64,
    shared_latency_bits: AtomicU64,
    shared_ttft_bits: AtomicU64,
}

struct Deployments {
    slots: Box<[Slot]>,
    /// Hash tag of each deployment, in slot order.
    tags: Box<[String]>,
}

/// Settings of [`RedisRouterState`].
#[derive(Debug, Clone, Copy)]
pub struct RouterStateConfig {
    pub sync_interval: Duration,
    /// An instance silent this long no longer counts in the shared in-flight and latency totals.
    pub instance_ttl: Duration,
}

impl Default for RouterStateConfig {
    fn default() -> Self {
        Self { sync_interval: Duration::from_millis(100), instance_ttl: Duration::from_secs(10) }
    }
}

/// Router state shared through Redis (see the module docs).
pub struct RedisRouterState {
    backend: RedisBackend,
    cfg: RouterStateConfig,
    instance: String,
    deployments: OnceLock<Deployments>,
    script: redis::Script,
}

impl fmt::Debug for RedisRouterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRouterState")
            .field("instance", &self.instance)
            .field("deployments", &self.deployments.get().map_or(0, |d| d.slots.len()))
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ema(cell: &AtomicU64, sample_ms: f64, alpha: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        let old = f64::from_bits(bits);
        let new = if old > 0.0 { old + alpha * (sample_ms - old) } else { sample_ms };
        Some(new.to_bits())
    });
}

impl RedisRouterState {
    /// A state without a sync task: call [`RedisRouterState::sync_now`] yourself (tests, or a
    /// caller with its own scheduler).
    pub fn new(backend: RedisBackend, cfg: RouterStateConfig) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let now = backend.now_ms();
        let instance = format!("{}-{now}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        Self { backend, cfg, instance, deployments: OnceLock::new(), script: redis::Script::new(SYNC_LUA) }
    }

    /// A shared state with its sync task (on the current Tokio runtime); the task ends at its
    /// next tick after the last `Arc` is dropped.
    pub fn spawn(backend: RedisBackend, cfg: RouterStateConfig) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let state = Arc::new(Self::new(backend, cfg));
        let weak: Weak<Self> = Arc::downgrade(&state);
        let every = cfg.sync_interval.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(state) = weak.upgrade() else { break };
                // Failures are counted and logged by the backend; the next tick tries again.
                let _ = state.sync_now().await;
            }
        });
        (state, task)
    }

    pub fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    /// This instance's id in the shared hashes.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    fn slot(&self, d: DeploymentRef<'_>) -> Option<&Slot> {
        self.deployments.get()?.slots.get(d.slot)
    }

    /// Pushes local deltas and reads the shared totals, one script per deployment. On failure
    /// the deltas are kept for the next sync.
    pub async fn sync_now(&self) -> Result<(), crate::LimitError> {
        let Some(deps) = self.deployments.get() else { return Ok(()) };
        let mut result = Ok(());
        for (slot, tag) in deps.slots.iter().zip(deps.tags.iter()) {
            if let Err(e) = self.sync_slot(slot, tag).await {
                result = Err(e);
            }
        }
        result
    }

    async fn sync_slot(&self, s: &Slot, tag: &str) -> Result<(), crate::LimitError> {
        let now = self.backend.now_ms();
        let minute = now / MINUTE_MS;
        let rpm = s.rpm_delta.swap(0, Ordering::AcqRel);
        let tpm = s.tpm_delta.swap(0, Ordering::AcqRel);
        let fails = s.fail_delta.swap(0, Ordering::AcqRel);
        let successes = s.success_delta.swap(0, Ordering::AcqRel);
        let cooldown = s.pending_cooldown.swap(0, Ordering::AcqRel);
        let cd_arg = match cooldown {
            CLEAR => -1,
            v => int(v),
        };
        let us = |bits: u64| (f64::from_bits(bits) * 1000.0).round() as i64;
        let keys = [
            format!("{tag}:rs:if"),
            format!("{tag}:rs:r:{minute}"),
            format!("{tag}:rs:t:{minute}"),
            format!("{tag}:rs:f:{minute}"),
            format!("{tag}:rs:s:{minute}"),
            format!("{tag}:rs:cd"),
            format!("{tag}:rs:lat"),
        ];
        let mut inv = self.script.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(&self.instance)
            .arg(int(now))
            .arg(int(s.in_flight.load(Ordering::Acquire)))
            .arg(int(ms(self.cfg.instance_ttl).max(1)))
            .arg(int(rpm))
            .arg(int(tpm))
            .arg(int(fails))
            .arg(int(successes))
            .arg(cd_arg)
            .arg(us(s.latency_bits.load(Ordering::Relaxed)))
            .arg(us(s.ttft_bits.load(Ordering::Relaxed)));
        let out: Vec<i64> = match self.backend.invoke_for_sync(inv).await {
            Ok(v) => v,
            Err(e) => {
                // Keep what was not written for the next sync.
                s.rpm_delta.fetch_add(rpm, Ordering::AcqRel);
                s.tpm_delta.fetch_add(tpm, Ordering::AcqRel);
                s.fail_delta.fetch_add(fails, Ordering::AcqRel);
                s.success_delta.fetch_add(successes, Ordering::AcqRel);
                if cooldown != 0 {
                    let _ =
                        s.pending_cooldown.compare_exchange(0, cooldown, Ordering::AcqRel, Ordering::Acquire);
                }
                return Err(e);
            }
        };
        let [others, r, t, f, sc, cool, lat, ttft] = out.as_slice() else {
            return Err(crate::LimitError::WriteFailed(
                "router state script returned an unexpected shape".into(),
            ));
        };
        let n = |v: &i64| u64::try_from(*v).unwrap_or(0);
        s.others_in_flight.store(n(others), Ordering::Relaxed);
        s.rpm.store(n(r), Ordering::Relaxed);
        s.tpm.store(n(t), Ordering::Relaxed);
        s.fails.store(n(f), Ordering::Relaxed);
        s.successes.store(n(sc), Ordering::Relaxed);
        s.snap_minute.store(minute, Ordering::Release);
        // A cooldown set locally while this sync ran wins until the next one.
        if s.pending_cooldown.load(Ordering::Acquire) == 0 {
            s.cooldown_until.store(n(cool), Ordering::Relaxed);
        }
        s.shared_latency_bits.store((n(lat) as f64 / 1000.0).to_bits(), Ordering::Relaxed);
        s.shared_ttft_bits.store((n(ttft) as f64 / 1000.0).to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The shared count of the current minute plus local unsynced deltas.
    fn current(s: &Slot, now_ms: u64, shared: &AtomicU64, delta: &AtomicU64) -> u64 {
        let base = if s.snap_minute.load(Ordering::Acquire) == now_ms / MINUTE_MS {
            shared.load(Ordering::Relaxed)
        } else {
            0
        };
        base.saturating_add(delta.load(Ordering::Relaxed))
    }
}

impl RouterState for RedisRouterState {
    fn prepare(&self, deployment_ids: &[&str]) {
        let ns = self.backend.config().namespace.clone();
        let _ = self.deployments.set(Deployments {
            slots: deployment_ids.iter().map(|_| Slot::default()).collect(),
            tags: deployment_ids
                .iter()
                .map(|id| Entity::new(EntityKind::Deployment, *id).redis_tag(&ns))
                .collect(),
        });
    }

    fn load(&self, d: DeploymentRef<'_>, now_ms: u64) -> DeploymentLoad {
        let Some(s) = self.slot(d) else { return DeploymentLoad::default() };
        let shared_or_local = |shared: &AtomicU64, local: &AtomicU64| {
            let v = f64::from_bits(shared.load(Ordering::Relaxed));
            if v > 0.0 { v } else { f64::from_bits(local.load(Ordering::Relaxed)) }
        };
        DeploymentLoad {
            in_flight: s
                .in_flight
                .load(Ordering::Relaxed)
                .saturating_add(s.others_in_flight.load(Ordering::Relaxed)),
            rpm_used: Self::current(s, now_ms, &s.rpm, &s.rpm_delta),
            tpm_used: Self::current(s, now_ms, &s.tpm, &s.tpm_delta),
            cooldown_until_ms: s.cooldown_until.load(Ordering::Relaxed),
            latency_ms: shared_or_local(&s.shared_latency_bits, &s.latency_bits),
            ttft_ms: shared_or_local(&s.shared_ttft_bits, &s.ttft_bits),
        }
    }

    fn begin(&self, d: DeploymentRef<'_>, _now_ms: u64) {
        let Some(s) = self.slot(d) else { return };
        s.in_flight.fetch_add(1, Ordering::Relaxed);
        s.rpm_delta.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self, d: DeploymentRef<'_>) {
        let Some(s) = self.slot(d) else { return };
        let _ = s.in_flight.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    fn add_tokens(&self, d: DeploymentRef<'_>, _now_ms: u64, tokens: u64) {
        let Some(s) = self.slot(d) else { return };
        s.tpm_delta.fetch_add(tokens, Ordering::Relaxed);
    }

    fn record_latency(&self, d: DeploymentRef<'_>, latency: Duration, first_token: bool, alpha: f64) {
        let Some(s) = self.slot(d) else { return };
        let cell = if first_token { &s.ttft_bits } else { &s.latency_bits };
        ema(cell, (latency.as_secs_f64() * 1000.0).max(1e-3), alpha);
    }

    fn record_success(&self, d: DeploymentRef<'_>, _now_ms: u64) {
        let Some(s) = self.slot(d) else { return };
        s.success_delta.fetch_add(1, Ordering::Relaxed);
    }

    fn record_failure(&self, d: DeploymentRef<'_>, now_ms: u64, policy: &CooldownPolicy) -> Option<u64> {
        let s = self.slot(d)?;
        let local = s.fail_delta.fetch_add(1, Ordering::AcqRel) + 1;
        let fails = Self::current(s, now_ms, &s.fails, &AtomicU64::new(0)).saturating_add(local);
        let successes = Self::current(s, now_ms, &s.successes, &s.success_delta);
        let over_allowed = fails > u64::from(policy.allowed_fails);
        let over_ratio = policy.failure_ratio.is_some_and(|ratio| {
            let total = fails + successes;
            total >= u64::from(policy.min_requests) && (fails as f64) >= ratio * total as f64
        });
        if !(over_allowed || over_ratio) {
            return None;
        }
        let until = now_ms.saturating_add(ms(policy.cooldown_time));
        let prev = s.cooldown_until.fetch_max(until, Ordering::AcqRel);
        s.pending_cooldown.store(until.max(1), Ordering::Release);
        // Forgiven, here and (with the next sync) in the shared counters.
        s.fail_delta.store(0, Ordering::Release);
        s.success_delta.store(0, Ordering::Release);
        s.fails.store(0, Ordering::Release);
        s.successes.store(0, Ordering::Release);
        (prev <= now_ms).then_some(until)
    }

    fn set_cooldown(&self, d: DeploymentRef<'_>, until_ms: u64) {
        let Some(s) = self.slot(d) else { return };
        s.cooldown_until.store(until_ms, Ordering::Release);
        s.pending_cooldown.store(if until_ms == 0 { CLEAR } else { until_ms }, Ordering::Release);
    }
}
