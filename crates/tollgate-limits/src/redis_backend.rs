//! Redis implementations, shared by every instance pointed at the same Redis.
//!
//! Every decision is one Lua script (atomic on the server) over keys that share the entity's hash
//! tag, so it runs unchanged on Redis Cluster. Keys (`<tag>` = `{<namespace>:<kind>:<id>}`):
//!
//! | key | holds | expires |
//! | --- | --- | --- |
//! | `<tag>:rl:r:<window>` | requests admitted in a window | one window after the window ends |
//! | `<tag>:rl:t:<window>` | tokens counted in a window (estimates, then real counts) | same |
//! | `<tag>:rl:p` | sorted set of the parallel slots in use, by expiry: a slot not released within `parallel_ttl` (its instance crashed) is dropped by the next admission | with its newest slot |
//! | `<tag>:b:<period>:s` | settled spend of a budget period, nano-USD | `budget_grace` after the period ends; never for budgets without a period |
//! | `<tag>:b:<period>:r` | outstanding reservations, nano-USD | same |
//! | `<tag>:b:<period>:z` | sorted set of outstanding reservations (`<id>:<amount>` by expiry): a reservation not settled within `reservation_ttl` (its instance crashed) is dropped from `:r` by the next `reserve` | with its last reservation, or the period |
//!
//! `<period>` is `all` for a budget without reset, else `<length_ms>@<anchor_ms>:<index>`, so a
//! changed budget duration starts a fresh counter (seed it from the database with `seed_spent`).
//!
//! Every call is bounded by `RedisConfig::timeout`. When Redis fails or is slow, the
//! [`FailurePolicy`] decides: fail-open lets the request through uncounted (the `fail_open`
//! counter goes up and a warning is logged, at most once per `log_interval`), fail-closed
//! returns [`LimitError::Unavailable`]. After a failure the backend does not try Redis again
//! for `open_circuit_for` (default 500 ms): calls in between fail at once, so an outage costs
//! one timeout per interval, not one per request. The connection is a `ConnectionManager`, which reconnects
//! by itself; it is created lazily, so a proxy starts even while Redis is down.
//!
//! Amounts and counts travel as integers; the scripts compare them as Lua numbers (doubles), exact
//! below 2⁵³ (9 million USD in nano-USD, 9·10¹⁵ tokens).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::aio::ConnectionManagerConfig;
use redis::{FromRedisValue, Script, ScriptInvocation};

use crate::budget::{
    BudgetCounter, BudgetOutcome, BudgetPeriod, BudgetSpec, BudgetUsage, NanoUsd, Reservation,
};
use crate::entity::Entity;
use crate::rate::{Decision, Grant, LimitError, LimitKind, Limits, RateLimiter, retry_for, window_at};
use crate::{BoxFuture, SharedClock, SystemClock};

/// What to do when Redis fails or does not answer within the timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Let the request through uncounted (availability over exactness). The default.
    #[default]
    FailOpen,
    /// Refuse with [`LimitError::Unavailable`] (exactness over availability).
    FailClosed,
}

/// Settings of the Redis backend.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (TLS is not compiled in).
    pub url: String,
    /// First part of every hash tag; separate deployments (or test runs) sharing a Redis use
    /// different namespaces.
    pub namespace: String,
    /// Bound on every Redis call, connecting included.
    pub timeout: Duration,
    pub failure_policy: FailurePolicy,
    /// Rate-limit window length.
    pub window: Duration,
    /// A parallel slot not released within this time (its instance crashed) is freed; keep it
    /// above the longest request.
    pub parallel_ttl: Duration,
    /// How long a finished budget period's counters stay readable.
    pub budget_grace: Duration,
    /// A budget reservation not settled within this time (its instance crashed) stops counting;
    /// keep it above the longest request.
    pub reservation_ttl: Duration,
    /// At most one warning per this interval about Redis failures (the rest are counted).
    pub log_interval: Duration,
    /// After a failed call, calls fail at once (without waiting for the timeout) for this long;
    /// then one call tries Redis again. Zero: every call tries.
    pub open_circuit_for: Duration,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "tollgate".to_owned(),
            timeout: Duration::from_millis(50),
            failure_policy: FailurePolicy::FailOpen,
            window: Duration::from_secs(60),
            parallel_ttl: Duration::from_secs(600),
            budget_grace: Duration::from_secs(86_400),
            reservation_ttl: Duration::from_secs(600),
            log_interval: Duration::from_secs(10),
            open_circuit_for: Duration::from_millis(500),
        }
    }
}

/// Counters of the backend's failures (for metrics).
#[derive(Debug, Default)]
pub struct RedisStats {
    fail_open: AtomicU64,
    fail_closed: AtomicU64,
    write_failures: AtomicU64,
}

impl RedisStats {
    /// Decisions let through uncounted because Redis failed (fail-open).
    pub fn fail_open(&self) -> u64 {
        self.fail_open.load(Ordering::Relaxed)
    }

    /// Decisions refused because Redis failed (fail-closed).
    pub fn fail_closed(&self) -> u64 {
        self.fail_closed.load(Ordering::Relaxed)
    }

    /// Settles, releases, cancels and seeds that could not be written.
    pub fn write_failures(&self) -> u64 {
        self.write_failures.load(Ordering::Relaxed)
    }
}

/// Atomic check-and-increment of one rate-limit decision.
/// KEYS: requests, tokens, parallel slots (sorted set of slot ids by expiry). ARGV: rpm, tpm,
/// max parallel (-1: unlimited, not counted), token estimate, window TTL ms, now ms, slot expiry
/// ms, slot id. Returns {refused_by (0 none, 1 requests, 2 tokens, 3 parallel), requests,
/// tokens, slots in use} after the decision.
const ACQUIRE_LUA: &str = r"
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local par = tonumber(ARGV[3])
local est = tonumber(ARGV[4])
local r = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(redis.call('GET', KEYS[2]) or '0')
local p = 0
if par >= 0 then
  -- Slots of requests that never released them (their instance crashed) expire.
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
  p = redis.call('ZCARD', KEYS[3])
end
local why = 0
if rpm >= 0 and r + 1 > rpm then why = 1
elseif tpm >= 0 and t + est > tpm then why = 2
elseif par >= 0 and p + 1 > par then why = 3 end
if why == 0 then
  if rpm >= 0 then
    r = redis.call('INCR', KEYS[1])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
  end
  if tpm >= 0 then
    t = redis.call('INCRBY', KEYS[2], est)
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
  if par >= 0 then
    redis.call('ZADD', KEYS[3], ARGV[7], ARGV[8])
    p = p + 1
    redis.call('PEXPIREAT', KEYS[3], ARGV[7])
  end
end
return {why, r, t, p}
";

/// Adds signed deltas to the request and token counters if they still exist (a window already
/// gone is left alone), never below zero, keeping TTLs, and frees a parallel slot.
/// KEYS: requests, tokens, parallel slots. ARGV: request delta, token delta, slot id ('' none).
const ADJUST_LUA: &str = r"
for i = 1, 2 do
  local d = tonumber(ARGV[i])
  if d ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    local v = redis.call('INCRBY', KEYS[i], d)
    if v < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
  end
end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[3], ARGV[3]) end
return 1
";

/// Drops reservations whose holder never settled them (crashed) from the reserved total.
/// Members are `<reservation id>:<amount>`, scored by their expiry (ms).
const PURGE_LUA_PART: &str = r"
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
if #stale > 0 then
  local gone = 0
  for _, m in ipairs(stale) do gone = gone + tonumber(string.match(m, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
  local v = redis.call('DECRBY', KEYS[2], gone)
  if v < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
end
";

/// KEYS: spent, reserved, reservations. ARGV: max, estimate, expire-at ms (0: never), now ms,
/// reservation expiry ms, reservation member. Returns {reserved? 1/0, spent, reserved}.
const RESERVE_LUA_PART: &str = r"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local r = tonumber(redis.call('GET', KEYS[2]) or '0')
local max = tonumber(ARGV[1])
local est = tonumber(ARGV[2])
if s + r >= max or s + r + est > max then return {0, s, r} end
r = redis.call('INCRBY', KEYS[2], est)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
local exp = tonumber(ARGV[3])
if exp > 0 then redis.call('PEXPIREAT', KEYS[2], exp) end
redis.call('PEXPIREAT', KEYS[3], math.max(exp, tonumber(ARGV[5])))
return {1, s, r}
";

/// KEYS: spent, reserved, reservations. ARGV: reservation member ('' : none held), actual cost,
/// expire-at ms (0: never). A reservation already dropped as stale is not taken back twice.
const SETTLE_LUA: &str = r"
if ARGV[1] ~= '' and redis.call('ZREM', KEYS[3], ARGV[1]) == 1 then
  local v = redis.call('DECRBY', KEYS[2], tonumber(string.match(ARGV[1], ':(%d+)$')))
  if v < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
end
local s = redis.call('INCRBY', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return s
";

/// KEYS: spent. ARGV: at least this much, expire-at ms (0: never).
const SEED_LUA: &str = r"
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > s then redis.call('SET', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

struct Scripts {
    acquire: Script,
    adjust: Script,
    reserve: Script,
    settle: Script,
    seed: Script,
}

struct Inner {
    conn: ConnectionManager,
    cfg: RedisConfig,
    clock: SharedClock,
    stats: RedisStats,
    last_warn_ms: AtomicU64,
    suppressed: AtomicU64,
    /// Calls fail at once until then (ms since the epoch).
    circuit_open_until_ms: AtomicU64,
    /// Prefix of this backend's reservation ids, unique per process and backend.
    id_prefix: String,
    next_id: AtomicU64,
    scripts: Scripts,
}

/// One Redis connection (a reconnecting `ConnectionManager`) with its settings and failure
/// counters; hands out the rate limiter and the budget counters. Cheap to clone.
#[derive(Clone)]
pub struct RedisBackend(Arc<Inner>);

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("namespace", &self.0.cfg.namespace)
            .field("timeout", &self.0.cfg.timeout)
            .field("failure_policy", &self.0.cfg.failure_policy)
            .field("stats", &self.0.stats)
            .finish_non_exhaustive()
    }
}

/// Why a Redis call produced no answer.
enum CallError {
    Timeout,
    /// A recent call failed; this one did not try.
    CircuitOpen,
    Redis(redis::RedisError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timed out"),
            CallError::CircuitOpen => f.write_str("unavailable (a recent call failed; not retried yet)"),
            CallError::Redis(e) => write!(f, "{e}"),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A limit as a script argument: -1 for none; limits beyond i64 are as good as none.
fn limit_arg(l: Option<u64>) -> i64 {
    l.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn int_arg(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl RedisBackend {
    /// Sets up the backend; the connection is made on first use (so this succeeds while Redis
    /// is down). Must be called inside a Tokio runtime. Fails only on an invalid URL.
    pub fn new(cfg: RedisConfig) -> Result<Self, LimitError> {
        Self::with_clock(cfg, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(cfg: RedisConfig, clock: SharedClock) -> Result<Self, LimitError> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| LimitError::InvalidConfig(format!("redis url: {e}")))?;
        let manager_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout))
            .set_response_timeout(Some(cfg.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_cfg)
            .map_err(|e| LimitError::InvalidConfig(format!("redis connection: {e}")))?;
        static BACKENDS: AtomicU64 = AtomicU64::new(0);
        let id_prefix =
            format!("{}.{}.{}", std::process::id(), clock.now_ms(), BACKENDS.fetch_add(1, Ordering::Relaxed));
        Ok(Self(Arc::new(Inner {
            conn,
            cfg,
            clock,
            stats: RedisStats::default(),
            last_warn_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            circuit_open_until_ms: AtomicU64::new(0),
            id_prefix,
            next_id: AtomicU64::new(0),
            scripts: Scripts {
                acquire: Script::new(ACQUIRE_LUA),
                adjust: Script::new(ADJUST_LUA),
                reserve: Script::new(&format!("{PURGE_LUA_PART}{RESERVE_LUA_PART}")),
                settle: Script::new(SETTLE_LUA),
                seed: Script::new(SEED_LUA),
            },
        })))
    }

    pub fn config(&self) -> &RedisConfig {
        &self.0.cfg
    }

    /// The clock windows and periods are computed from.
    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }

    pub fn stats(&self) -> &RedisStats {
        &self.0.stats
    }

    pub fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter(self.clone())
    }

    pub fn budgets(&self) -> RedisBudgets {
        RedisBudgets(self.clone())
    }

    /// One round trip (health checks).
    pub async fn ping(&self) -> Result<(), LimitError> {
        let mut conn = self.0.conn.clone();
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(self.0.cfg.timeout, cmd.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(LimitError::Unavailable(e.to_string())),
            Err(_) => Err(LimitError::Unavailable("timed out".to_owned())),
        }
    }

    /// An id unique across instances (reservations, parallel slots).
    fn next_id(&self) -> String {
        format!("{}.{}", self.0.id_prefix, self.0.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.0.clock.now_ms()
    }

    /// A background write (router-state sync): failures are counted and logged, never fatal.
    pub(crate) async fn invoke_for_sync<T: FromRedisValue>(
        &self,
        inv: ScriptInvocation<'_>,
    ) -> Result<T, LimitError> {
        self.invoke(inv).await.map_err(|e| self.write_failed("router state sync", &e))
    }

    async fn invoke<T: FromRedisValue>(&self, inv: ScriptInvocation<'_>) -> Result<T, CallError> {
        let now = self.0.clock.now_ms();
        if now < self.0.circuit_open_until_ms.load(Ordering::Relaxed) {
            return Err(CallError::CircuitOpen);
        }
        let mut conn = self.0.conn.clone();
        let res = match tokio::time::timeout(self.0.cfg.timeout, inv.invoke_async(&mut conn)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => CallError::Redis(e),
            Err(_) => CallError::Timeout,
        };
        // Any failure opens the circuit: the next calls fail at once instead of each waiting.
        let until = self.0.clock.now_ms().saturating_add(ms(self.0.cfg.open_circuit_for));
        self.0.circuit_open_until_ms.fetch_max(until, Ordering::Relaxed);
        Err(res)
    }

    /// A decision could not be made: fail open (`Ok`) or closed (`Err`), counted and logged.
    fn decision_failed(&self, what: &str, err: &CallError) -> Result<(), LimitError> {
        match self.0.cfg.failure_policy {
            FailurePolicy::FailOpen => {
                self.0.stats.fail_open.fetch_add(1, Ordering::Relaxed);
                self.warn(what, err, "failing open");
                Ok(())
            }
            FailurePolicy::FailClosed => {
                self.0.stats.fail_closed.fetch_add(1, Ordering::Relaxed);
                self.warn(what, err, "failing closed");
                Err(LimitError::Unavailable(format!("{what}: {err}")))
            }
        }
    }

    fn write_failed(&self, what: &str, err: &CallError) -> LimitError {
        self.0.stats.write_failures.fetch_add(1, Ordering::Relaxed);
        self.warn(what, err, "not written");
        LimitError::WriteFailed(format!("{what}: {err}"))
    }

    /// At most one warning per `log_interval`; the ones in between are counted and reported
    /// with the next.
    fn warn(&self, what: &str, err: &CallError, outcome: &str) {
        let now = self.0.clock.now_ms();
        let last = self.0.last_warn_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= ms(self.0.cfg.log_interval);
        if due
            && self
                .0
                .last_warn_ms
                .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.0.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                target: "tollgate_limits",
                operation = what,
                error = %err,
                suppressed,
                fail_open_total = self.0.stats.fail_open(),
                "redis limits backend unavailable: {outcome}"
            );
        } else {
            self.0.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn rate_keys(&self, entity: &Entity, window: u64) -> [String; 3] {
        let tag = entity.redis_tag(&self.0.cfg.namespace);
        [format!("{tag}:rl:r:{window}"), format!("{tag}:rl:t:{window}"), format!("{tag}:rl:p")]
    }

    fn budget_keys(&self, entity: &Entity, period: BudgetPeriod, index: u64) -> [String; 3] {
        let tag = entity.redis_tag(&self.0.cfg.namespace);
        let p = match period {
            BudgetPeriod::Never => "all".to_owned(),
            BudgetPeriod::Every { anchor_ms, length } => format!("{}@{anchor_ms}:{index}", ms(length)),
        };
        [format!("{tag}:b:{p}:s"), format!("{tag}:b:{p}:r"), format!("{tag}:b:{p}:z")]
    }

    /// Absolute expiry of a budget period's keys; 0: never.
    fn budget_expiry(&self, period_end_ms: Option<u64>) -> i64 {
        period_end_ms.map_or(0, |end| int_arg(end.saturating_add(ms(self.0.cfg.budget_grace)).max(1)))
    }
}

/// Rate limiter over Redis (see the module docs).
#[derive(Debug, Clone)]
pub struct RedisRateLimiter(RedisBackend);

impl RedisRateLimiter {
    pub fn backend(&self) -> &RedisBackend {
        &self.0
    }

    async fn acquire(&self, entity: &Entity, limits: &Limits, est: u64) -> Result<Decision, LimitError> {
        let b = &self.0;
        let window_ms = ms(b.0.cfg.window).max(1);
        let now = b.0.clock.now_ms();
        let w = window_at(now, window_ms);
        let open = |degraded: bool| Decision {
            allowed: true,
            retry_after: None,
            remaining_requests: None,
            remaining_tokens: None,
            reset: w.reset,
            limited_by: None,
            degraded,
            grant: Some(Grant::empty(entity, w.index)),
        };
        if limits.is_unlimited() {
            return Ok(open(false));
        }
        let keys = b.rate_keys(entity, w.index);
        let slot_id = if limits.max_parallel.is_some() { b.next_id() } else { String::new() };
        // Window keys live one window past their end, so late settles still find them.
        let window_ttl = int_arg(ms(w.reset).saturating_add(window_ms).max(1));
        let mut inv = b.0.scripts.acquire.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(limit_arg(limits.rpm))
            .arg(limit_arg(limits.tpm))
            .arg(limit_arg(limits.max_parallel))
            .arg(int_arg(est))
            .arg(window_ttl)
            .arg(int_arg(now))
            .arg(int_arg(now.saturating_add(ms(b.0.cfg.parallel_ttl).max(1))))
            .arg(&slot_id);
        let out: Vec<i64> = match b.invoke(inv).await {
            Ok(v) => v,
            Err(e) => {
                b.decision_failed("rate limit", &e)?;
                return Ok(open(true));
            }
        };
        let [why, r, t, _p] = out.as_slice() else {
            let e = CallError::Redis(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "rate-limit script returned an unexpected shape",
            )));
            b.decision_failed("rate limit", &e)?;
            return Ok(open(true));
        };
        let refused = match why {
            1 => Some(LimitKind::Requests),
            2 => Some(LimitKind::Tokens),
            3 => Some(LimitKind::Parallel),
            _ => None,
        };
        let grant = refused.is_none().then(|| Grant {
            entity: entity.clone(),
            window: w.index,
            counted_request: limits.rpm.is_some(),
            counted_tokens: limits.tpm.is_some(),
            tokens: if limits.tpm.is_some() { est } else { 0 },
            holds_slot: limits.max_parallel.is_some(),
            slot_id,
        });
        Ok(Decision {
            allowed: refused.is_none(),
            retry_after: refused.map(|k| retry_for(k, w.reset)),
            remaining_requests: limits.rpm.map(|l| l.saturating_sub(count(*r))),
            remaining_tokens: limits.tpm.map(|l| l.saturating_sub(count(*t))),
            reset: w.reset,
            limited_by: refused,
            degraded: false,
            grant,
        })
    }

    /// Adds `requests` and `tokens` to the grant's window counters and, with `free_slot`, frees
    /// its parallel slot.
    async fn adjust(
        &self,
        what: &str,
        grant: &Grant,
        requests: i64,
        tokens: i64,
        free_slot: bool,
    ) -> Result<(), LimitError> {
        let slot = if free_slot && grant.holds_slot { grant.slot_id.as_str() } else { "" };
        if requests == 0 && tokens == 0 && slot.is_empty() {
            return Ok(());
        }
        let b = &self.0;
        let keys = b.rate_keys(&grant.entity, grant.window);
        let mut inv = b.0.scripts.adjust.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(requests).arg(tokens).arg(slot);
        b.invoke::<i64>(inv).await.map(|_| ()).map_err(|e| b.write_failed(what, &e))
    }
}

impl RateLimiter for RedisRateLimiter {
    fn try_acquire<'a>(
        &'a self,
        entity: &'a Entity,
        limits: &'a Limits,
        tokens_estimate: u64,
    ) -> BoxFuture<'a, Result<Decision, LimitError>> {
        Box::pin(self.acquire(entity, limits, tokens_estimate))
    }

    fn settle<'a>(
        &'a self,
        grant: &'a mut Grant,
        actual_tokens: u64,
    ) -> BoxFuture<'a, Result<(), LimitError>> {
        Box::pin(async move {
            if !grant.counted_tokens {
                return Ok(());
            }
            let delta = int_arg(actual_tokens).saturating_sub(int_arg(grant.tokens));
            self.adjust("settle tokens", grant, 0, delta, false).await?;
            grant.tokens = actual_tokens;
            Ok(())
        })
    }

    fn release(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>> {
        Box::pin(async move { self.adjust("release", &grant, 0, 0, true).await })
    }

    fn cancel(&self, grant: Grant) -> BoxFuture<'_, Result<(), LimitError>> {
        Box::pin(async move {
            let requests = if grant.counted_request { -1 } else { 0 };
            let tokens = if grant.counted_tokens { -int_arg(grant.tokens) } else { 0 };
            self.adjust("cancel", &grant, requests, tokens, true).await
        })
    }
}

/// Budget counters over Redis (see the module docs).
#[derive(Debug, Clone)]
pub struct RedisBudgets(RedisBackend);

impl RedisBudgets {
    pub fn backend(&self) -> &RedisBackend {
        &self.0
    }

    async fn do_reserve(
        &self,
        entity: &Entity,
        spec: &BudgetSpec,
        estimate: NanoUsd,
    ) -> Result<BudgetOutcome, LimitError> {
        let b = &self.0;
        let now = b.0.clock.now_ms();
        let (period, end) = spec.period.at(now);
        let member = format!("{}:{}", b.next_id(), estimate.0);
        let reservation = |degraded: bool| Reservation {
            entity: entity.clone(),
            spec_period: spec.period,
            period,
            period_end_ms: end,
            amount: estimate,
            degraded,
            member: if degraded { String::new() } else { member.clone() },
        };
        let [spent_key, reserved_key, zset_key] = b.budget_keys(entity, spec.period, period);
        let mut inv = b.0.scripts.reserve.prepare_invoke();
        inv.key(&spent_key)
            .key(&reserved_key)
            .key(&zset_key)
            .arg(int_arg(spec.max.0))
            .arg(int_arg(estimate.0))
            .arg(b.budget_expiry(end))
            .arg(int_arg(now))
            .arg(int_arg(now.saturating_add(ms(b.0.cfg.reservation_ttl))))
            .arg(&member);
        let out: Vec<i64> = match b.invoke(inv).await {
            Ok(v) => v,
            Err(e) => {
                b.decision_failed("budget", &e)?;
                return Ok(BudgetOutcome::Reserved(reservation(true)));
            }
        };
        match out.as_slice() {
            [1, ..] => Ok(BudgetOutcome::Reserved(reservation(false))),
            [_, s, r] => Ok(BudgetOutcome::Exceeded {
                spent: NanoUsd(count(*s)),
                reserved: NanoUsd(count(*r)),
                max: spec.max,
                resets_at_ms: end,
            }),
            _ => {
                let e = CallError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "budget script returned an unexpected shape",
                )));
                b.decision_failed("budget", &e)?;
                Ok(BudgetOutcome::Reserved(reservation(true)))
            }
        }
    }

    async fn do_settle(&self, r: Reservation, actual: NanoUsd) -> Result<(), LimitError> {
        let b = &self.0;
        let [spent_key, reserved_key, zset_key] = b.budget_keys(&r.entity, r.spec_period, r.period);
        let mut inv = b.0.scripts.settle.prepare_invoke();
        inv.key(&spent_key)
            .key(&reserved_key)
            .key(&zset_key)
            .arg(&r.member)
            .arg(int_arg(actual.0))
            .arg(b.budget_expiry(r.period_end_ms));
        b.invoke::<i64>(inv).await.map(|_| ()).map_err(|e| b.write_failed("budget settle", &e))
    }

    async fn do_usage(&self, entity: &Entity, spec: &BudgetSpec) -> Result<BudgetUsage, LimitError> {
        let b = &self.0;
        let (period, end) = spec.period.at(b.0.clock.now_ms());
        let [spent_key, reserved_key, _] = b.budget_keys(entity, spec.period, period);
        let mut conn = b.0.conn.clone();
        let mut cmd = redis::cmd("MGET");
        cmd.arg(&spent_key).arg(&reserved_key);
        let vals = match tokio::time::timeout(b.0.cfg.timeout, cmd.query_async::<Vec<Option<i64>>>(&mut conn))
            .await
        {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(LimitError::Unavailable(e.to_string())),
            Err(_) => return Err(LimitError::Unavailable("timed out".to_owned())),
        };
        let get = |i: usize| NanoUsd(vals.get(i).copied().flatten().map_or(0, count));
        Ok(BudgetUsage { spent: get(0), reserved: get(1), resets_at_ms: end })
    }

    async fn do_seed(&self, entity: &Entity, spec: &BudgetSpec, spent: NanoUsd) -> Result<(), LimitError> {
        let b = &self.0;
        let (period, end) = spec.period.at(b.0.clock.now_ms());
        let [spent_key, _, _] = b.budget_keys(entity, spec.period, period);
        let mut inv = b.0.scripts.seed.prepare_invoke();
        inv.key(&spent_key).arg(int_arg(spent.0)).arg(b.budget_expiry(end));
        b.invoke::<i64>(inv).await.map(|_| ()).map_err(|e| b.write_failed("budget seed", &e))
    }
}

impl BudgetCounter for RedisBudgets {
    fn reserve<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        estimate: NanoUsd,
    ) -> BoxFuture<'a, Result<BudgetOutcome, LimitError>> {
        Box::pin(self.do_reserve(entity, spec, estimate))
    }

    fn settle(&self, reservation: Reservation, actual: NanoUsd) -> BoxFuture<'_, Result<(), LimitError>> {
        Box::pin(self.do_settle(reservation, actual))
    }

    fn usage<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
    ) -> BoxFuture<'a, Result<BudgetUsage, LimitError>> {
        Box::pin(self.do_usage(entity, spec))
    }

    fn seed_spent<'a>(
        &'a self,
        entity: &'a Entity,
        spec: &'a BudgetSpec,
        spent: NanoUsd,
    ) -> BoxFuture<'a, Result<(), LimitError>> {
        Box::pin(self.do_seed(entity, spec, spent))
    }
}
