//! Against a real Redis (127.0.0.1:6379, or `TOLLGATE_TEST_REDIS_URL`), each test in its own
//! namespace (deleted at the end; every key also carries a TTL or belongs to that namespace
//! only). Redis unreachable: the tests print why and skip, unless `TOLLGATE_REQUIRE_SERVICES=1`,
//! where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_limits::{
    BudgetCounter, BudgetOutcome, BudgetPeriod, BudgetSpec, Clock, Entity, EntityKind, FailurePolicy,
    LimitError, LimitKind, Limits, ManualClock, NanoUsd, RateLimiter, RedisBackend, RedisConfig, SystemClock,
};

mod common;
use common::env;

fn key(id: &str) -> Entity {
    Entity::new(EntityKind::Key, id)
}

/// Runs `per_instance` acquisitions on each of two instances concurrently; returns the decisions.
async fn burst(
    a: &RedisBackend,
    b: &RedisBackend,
    entity: &Entity,
    limits: Limits,
    est: u64,
    per_instance: usize,
) -> Vec<tollgate_limits::Decision> {
    let mut tasks = Vec::new();
    for i in 0..per_instance * 2 {
        let limiter = if i % 2 == 0 { a.rate_limiter() } else { b.rate_limiter() };
        let entity = entity.clone();
        tasks.push(tokio::spawn(async move { limiter.try_acquire(&entity, &limits, est).await.unwrap() }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpm_exact_across_two_instances_under_concurrency() {
    let Some(env) = env("rpm").await else { return };
    let (a, b) = (env.instance(), env.instance());
    let e = key("rpm");
    let limits = Limits { rpm: Some(50), ..Limits::default() };
    let decisions = burst(&a, &b, &e, limits, 0, 100).await;
    let allowed = decisions.iter().filter(|d| d.allowed).count();
    assert_eq!(allowed, 50);
    for d in decisions.iter().filter(|d| !d.allowed) {
        assert_eq!(d.limited_by, Some(LimitKind::Requests));
        assert_eq!(d.remaining_requests, Some(0));
        assert_eq!(d.retry_after, Some(d.reset));
        assert!(d.reset <= Duration::from_secs(60));
    }
    // Every admitted request saw a distinct remaining count: 49, 48, …, 0.
    let mut remaining: Vec<u64> =
        decisions.iter().filter(|d| d.allowed).filter_map(|d| d.remaining_requests).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..50).collect::<Vec<u64>>());

    // The next window admits again, exactly as many.
    env.clock.advance(Duration::from_millis(60_000));
    let decisions = burst(&a, &b, &e, limits, 0, 40).await;
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 50);
    assert_eq!(a.stats().fail_open() + b.stats().fail_open(), 0);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tpm_counts_estimates_settles_and_cancels() {
    let Some(env) = env("tpm").await else { return };
    let (a, b) = (env.instance(), env.instance());
    let e = key("tpm");
    let limits = Limits { tpm: Some(1_000), ..Limits::default() };
    let mut decisions = burst(&a, &b, &e, limits, 100, 15).await;
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 10);
    assert!(decisions.iter().filter(|d| !d.allowed).all(|d| d.limited_by == Some(LimitKind::Tokens)));

    let window = env.clock.now_ms() / 60_000;
    let tokens_key = format!("{{{}:key:tpm}}:rl:t:{window}", env.namespace);
    assert_eq!(env.get(&tokens_key).await, Some(1_000));

    // One request really used 40 tokens, another 100 (unchanged): 60 free again.
    let mut grants: Vec<_> = decisions.iter_mut().filter_map(|d| d.grant.take()).collect();
    let rl = a.rate_limiter();
    rl.settle(&mut grants[0], 40).await.unwrap();
    rl.settle(&mut grants[1], 100).await.unwrap();
    assert_eq!(env.get(&tokens_key).await, Some(940));
    let d = b.rate_limiter().try_acquire(&e, &limits, 61).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.remaining_tokens, Some(60));
    let d = b.rate_limiter().try_acquire(&e, &limits, 60).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining_tokens, Some(0));
    // Cancelling a grant gives its tokens back.
    b.rate_limiter().cancel(d.grant.unwrap()).await.unwrap();
    assert_eq!(env.get(&tokens_key).await, Some(940));
    // A real count above the estimate is charged too.
    rl.settle(&mut grants[2], 160).await.unwrap();
    assert_eq!(env.get(&tokens_key).await, Some(1_000));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_parallel_acquire_and_release_across_instances() {
    let Some(env) = env("parallel").await else { return };
    let (a, b) = (env.instance(), env.instance());
    let e = key("par");
    let limits = Limits { max_parallel: Some(5), ..Limits::default() };
    let mut decisions = burst(&a, &b, &e, limits, 0, 20).await;
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 5);
    assert!(
        decisions
            .iter()
            .filter(|d| !d.allowed)
            .all(|d| d.limited_by == Some(LimitKind::Parallel)
                && d.retry_after == Some(Duration::from_secs(1)))
    );
    let slots_key = format!("{{{}:key:par}}:rl:p", env.namespace);
    assert_eq!(env.zcard(&slots_key).await, 5);

    let grants: Vec<_> = decisions.iter_mut().filter_map(|d| d.grant.take()).collect();
    for (i, g) in grants.into_iter().enumerate() {
        let limiter = if i % 2 == 0 { a.rate_limiter() } else { b.rate_limiter() };
        limiter.release(g).await.unwrap();
    }
    assert_eq!(env.zcard(&slots_key).await, 0);
    let decisions = burst(&a, &b, &e, limits, 0, 4).await;
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 5);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_slots_of_a_crashed_instance_expire() {
    let Some(env) = env("parallel-crash").await else { return };
    let ttl = |c: &mut RedisConfig| c.parallel_ttl = Duration::from_secs(60);
    let (a, b) = (env.instance_with(ttl), env.instance_with(ttl));
    let e = key("slots");
    let limits = Limits { max_parallel: Some(2), ..Limits::default() };
    // `a` takes both slots and "crashes" without releasing them.
    let lost: Vec<_> = [
        a.rate_limiter().try_acquire(&e, &limits, 0).await.unwrap(),
        a.rate_limiter().try_acquire(&e, &limits, 0).await.unwrap(),
    ]
    .into_iter()
    .map(|mut d| d.grant.take().unwrap())
    .collect();
    env.clock.advance(Duration::from_secs(59));
    assert!(!b.rate_limiter().try_acquire(&e, &limits, 0).await.unwrap().allowed);
    env.clock.advance(Duration::from_secs(1));
    let d = b.rate_limiter().try_acquire(&e, &limits, 0).await.unwrap();
    assert!(d.allowed);
    // A late release of an expired slot frees nothing of b's.
    for g in lost {
        a.rate_limiter().release(g).await.unwrap();
    }
    let slots_key = format!("{{{}:key:slots}}:rl:p", env.namespace);
    assert_eq!(env.zcard(&slots_key).await, 1);
    b.rate_limiter().release(d.grant.unwrap()).await.unwrap();
    assert_eq!(env.zcard(&slots_key).await, 0);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_keys_carry_ttls() {
    let Some(env) = env("ttl").await else { return };
    let a = env.instance();
    let e = key("ttl");
    let limits = Limits { rpm: Some(10), tpm: Some(10), max_parallel: Some(10) };
    // 15 s into a window: the window keys live for the 45 s left plus one more window.
    env.clock.set(Duration::from_millis((env.clock.now_ms() / 60_000) * 60_000 + 15_000));
    assert!(a.rate_limiter().try_acquire(&e, &limits, 1).await.unwrap().allowed);
    let window = env.clock.now_ms() / 60_000;
    let tag = format!("{{{}:key:ttl}}", env.namespace);
    for suffix in [format!("rl:r:{window}"), format!("rl:t:{window}")] {
        let ttl = env.pttl(&format!("{tag}:{suffix}")).await;
        assert!((100_000..=105_000).contains(&ttl), "{suffix}: {ttl}");
    }
    // Slots expire at absolute times (the clock's): 10 minutes after the admission.
    // (Read the real time first: the TTL can only have shrunk since; 1 s of slack for the
    // server's millisecond rounding.)
    let expected = (env.clock.now_ms() + 600_000) as i64 - SystemClock::new().now_ms() as i64;
    let ttl = env.pttl(&format!("{tag}:rl:p")).await;
    assert!((expected - 5_000..=expected + 1_000).contains(&ttl), "parallel: {ttl} vs {expected}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_reservations_from_two_instances_never_exceed_max() {
    let Some(env) = env("budget").await else { return };
    let (a, b) = (env.instance(), env.instance());
    let e = Entity::new(EntityKind::Team, "t1");
    let now = env.clock.now_ms();
    let spec = BudgetSpec {
        max: NanoUsd(1_000_000),
        period: BudgetPeriod::Every { anchor_ms: now - 1_000, length: Duration::from_secs(3_600) },
    };
    let mut tasks = Vec::new();
    for i in 0..200 {
        let budgets = if i % 2 == 0 { a.budgets() } else { b.budgets() };
        let e = e.clone();
        tasks.push(tokio::spawn(async move { budgets.reserve(&e, &spec, NanoUsd(7_000)).await.unwrap() }));
    }
    let mut reservations = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            BudgetOutcome::Reserved(r) => {
                assert!(!r.is_degraded());
                reservations.push(r);
            }
            BudgetOutcome::Exceeded { max, resets_at_ms, .. } => {
                assert_eq!(max, spec.max);
                assert_eq!(resets_at_ms, Some(now - 1_000 + 3_600_000));
                refused += 1;
            }
        }
    }
    // 142 × 7 000 = 994 000 ≤ 1 000 000 < 143 × 7 000.
    assert_eq!(reservations.len(), 142);
    assert_eq!(refused, 58);
    let u = a.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(0), NanoUsd(994_000)));

    // Settle every reservation with the real (smaller) cost.
    for (i, r) in reservations.into_iter().enumerate() {
        let budgets = if i % 2 == 0 { a.budgets() } else { b.budgets() };
        budgets.settle(r, NanoUsd(3_000)).await.unwrap();
    }
    let u = b.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(426_000), NanoUsd(0)));
    assert_eq!(u.resets_at_ms, Some(now - 1_000 + 3_600_000));

    // Exactly the rest fits; then nothing does.
    let BudgetOutcome::Reserved(last) = a.budgets().reserve(&e, &spec, NanoUsd(574_000)).await.unwrap()
    else {
        panic!("the remaining budget must fit")
    };
    match b.budgets().reserve(&e, &spec, NanoUsd(0)).await.unwrap() {
        BudgetOutcome::Exceeded { spent, reserved, .. } => {
            assert_eq!((spent, reserved), (NanoUsd(426_000), NanoUsd(574_000)));
        }
        other => panic!("{other:?}"),
    }
    a.budgets().settle(last, NanoUsd(600_000)).await.unwrap();
    let u = a.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(1_026_000), NanoUsd(0)));

    // Keys expire a grace period after the period ends.
    let tag = format!("{{{}:team:t1}}", env.namespace);
    let spent_key = format!("{tag}:b:3600000@{}:0:s", now - 1_000);
    let expected = (now - 1_000 + 3_600_000 + 86_400_000) as i64 - SystemClock::new().now_ms() as i64;
    let ttl = env.pttl(&spent_key).await;
    assert!((expected - 10_000..=expected + 1_000).contains(&ttl), "{ttl} vs {expected}");

    // The next period starts from zero.
    env.clock.advance(Duration::from_millis(3_600_000));
    let u = a.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(0), NanoUsd(0)));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_without_period_never_expires_and_seeds() {
    let Some(env) = env("budget-forever").await else { return };
    let a = env.instance();
    let e = Entity::new(EntityKind::User, "u:{1}");
    let spec = BudgetSpec { max: NanoUsd::from_usd(1.0), period: BudgetPeriod::Never };
    a.budgets().seed_spent(&e, &spec, NanoUsd::from_usd(0.75)).await.unwrap();
    a.budgets().seed_spent(&e, &spec, NanoUsd::from_usd(0.5)).await.unwrap();
    let u = a.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!(u.spent, NanoUsd(750_000_000));
    assert_eq!(u.resets_at_ms, None);
    assert!(matches!(
        a.budgets().reserve(&e, &spec, NanoUsd::from_usd(0.3)).await.unwrap(),
        BudgetOutcome::Exceeded { .. }
    ));
    let BudgetOutcome::Reserved(r) = a.budgets().reserve(&e, &spec, NanoUsd::from_usd(0.25)).await.unwrap()
    else {
        panic!("0.25 fits")
    };
    a.budgets().settle(r, NanoUsd::from_usd(0.1)).await.unwrap();
    let tag = format!("{{{}:user:u%3A%7B1%7D}}", env.namespace);
    assert_eq!(env.get(&format!("{tag}:b:all:s")).await, Some(850_000_000));
    assert_eq!(env.pttl(&format!("{tag}:b:all:s")).await, -1);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_of_a_crashed_instance_stop_counting_after_their_ttl() {
    let Some(env) = env("budget-crash").await else { return };
    let ttl = |c: &mut RedisConfig| c.reservation_ttl = Duration::from_secs(60);
    let (a, b) = (env.instance_with(ttl), env.instance_with(ttl));
    let e = key("crash");
    let spec = BudgetSpec { max: NanoUsd(1_000), period: BudgetPeriod::Never };
    // `a` reserves and "crashes": its reservation is never settled.
    let BudgetOutcome::Reserved(lost) = a.budgets().reserve(&e, &spec, NanoUsd(600)).await.unwrap() else {
        panic!("fits")
    };
    assert!(matches!(
        b.budgets().reserve(&e, &spec, NanoUsd(600)).await.unwrap(),
        BudgetOutcome::Exceeded { .. }
    ));
    env.clock.advance(Duration::from_secs(59));
    assert!(matches!(
        b.budgets().reserve(&e, &spec, NanoUsd(600)).await.unwrap(),
        BudgetOutcome::Exceeded { .. }
    ));
    env.clock.advance(Duration::from_secs(1));
    let BudgetOutcome::Reserved(r) = b.budgets().reserve(&e, &spec, NanoUsd(600)).await.unwrap() else {
        panic!("the stale reservation no longer counts")
    };
    let u = b.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(0), NanoUsd(600)));
    // A late settle of the dropped reservation records its spend but does not release b's hold.
    a.budgets().settle(lost, NanoUsd(100)).await.unwrap();
    let u = b.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(100), NanoUsd(600)));
    b.budgets().settle(r, NanoUsd(500)).await.unwrap();
    let u = b.budgets().usage(&e, &spec).await.unwrap();
    assert_eq!((u.spent, u.reserved), (NanoUsd(600), NanoUsd(0)));
    env.cleanup().await;
}

fn dead_config(url: &str, policy: FailurePolicy) -> RedisConfig {
    let mut cfg = RedisConfig::new(url);
    cfg.timeout = Duration::from_millis(100);
    cfg.failure_policy = policy;
    cfg
}

/// Nothing listens on port 1: connections are refused at once.
#[tokio::test]
async fn fail_open_when_redis_is_unreachable() {
    let b = RedisBackend::new(dead_config("redis://127.0.0.1:1", FailurePolicy::FailOpen)).unwrap();
    let e = key("dead");
    let limits = Limits { rpm: Some(1), tpm: Some(1), max_parallel: Some(1) };
    for i in 1..=3 {
        let started = Instant::now();
        let mut d = b.rate_limiter().try_acquire(&e, &limits, 1_000).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(d.allowed && d.degraded);
        assert_eq!((d.remaining_requests, d.remaining_tokens), (None, None));
        assert_eq!(b.stats().fail_open(), i);
        // Nothing was counted, so there is nothing to write back.
        let mut g = d.grant.take().unwrap();
        b.rate_limiter().settle(&mut g, 5).await.unwrap();
        b.rate_limiter().release(g).await.unwrap();
    }
    let spec = BudgetSpec { max: NanoUsd(1), period: BudgetPeriod::Never };
    match b.budgets().reserve(&e, &spec, NanoUsd(100)).await.unwrap() {
        BudgetOutcome::Reserved(r) => {
            assert!(r.is_degraded());
            // Recording the spend is best effort: it fails and is counted.
            assert!(matches!(b.budgets().settle(r, NanoUsd(5)).await, Err(LimitError::WriteFailed(_))));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.stats().fail_open(), 4);
    assert_eq!(b.stats().write_failures(), 1);
    assert!(b.ping().await.is_err());
}

#[tokio::test]
async fn fail_closed_refuses_when_redis_is_unreachable() {
    let b = RedisBackend::new(dead_config("redis://127.0.0.1:1", FailurePolicy::FailClosed)).unwrap();
    let e = key("dead");
    let limits = Limits { rpm: Some(1), ..Limits::default() };
    let r = b.rate_limiter().try_acquire(&e, &limits, 0).await;
    assert!(matches!(r, Err(LimitError::Unavailable(_))), "{r:?}");
    let spec = BudgetSpec { max: NanoUsd(10), period: BudgetPeriod::Never };
    let r = b.budgets().reserve(&e, &spec, NanoUsd(1)).await;
    assert!(matches!(r, Err(LimitError::Unavailable(_))), "{r:?}");
    assert_eq!((b.stats().fail_closed(), b.stats().fail_open()), (2, 0));
    // Unlimited entities never need Redis.
    assert!(b.rate_limiter().try_acquire(&e, &Limits::default(), 0).await.unwrap().allowed);
}

/// A server that accepts connections and never answers: the timeout bounds every call.
#[tokio::test]
async fn timeout_bounds_a_silent_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = dead_config(&format!("redis://{addr}"), FailurePolicy::FailOpen);
    cfg.open_circuit_for = Duration::ZERO;
    let b = RedisBackend::new(cfg).unwrap();
    let limits = Limits { rpm: Some(1), ..Limits::default() };
    let calls = Arc::new(AtomicU64::new(0));
    for _ in 0..3 {
        let started = Instant::now();
        let d = b.rate_limiter().try_acquire(&key("silent"), &limits, 0).await.unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(90) && took < Duration::from_millis(1_000), "{took:?}");
        assert!(d.allowed && d.degraded);
        calls.fetch_add(1, Ordering::Relaxed);
    }
    assert_eq!(b.stats().fail_open(), calls.load(Ordering::Relaxed));
    drop(listener);
}

/// After a failed call, the next ones fail at once until `open_circuit_for` has passed.
#[tokio::test]
async fn open_circuit_skips_redis_after_a_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    let mut cfg = dead_config(&format!("redis://{addr}"), FailurePolicy::FailClosed);
    cfg.open_circuit_for = Duration::from_secs(1);
    let b = RedisBackend::with_clock(cfg, Arc::new(clock.clone())).unwrap();
    let limits = Limits { rpm: Some(1), ..Limits::default() };
    let timed = || async {
        let started = Instant::now();
        let r = b.rate_limiter().try_acquire(&key("c"), &limits, 0).await;
        assert!(matches!(r, Err(LimitError::Unavailable(_))), "{r:?}");
        started.elapsed()
    };
    assert!(timed().await >= Duration::from_millis(90));
    for _ in 0..3 {
        assert!(timed().await < Duration::from_millis(50));
    }
    clock.advance(Duration::from_millis(999));
    assert!(timed().await < Duration::from_millis(50));
    clock.advance(Duration::from_millis(1));
    assert!(timed().await >= Duration::from_millis(90));
    assert_eq!(b.stats().fail_closed(), 6);
    drop(listener);
}

#[test]
fn invalid_url_is_a_config_error() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = RedisBackend::new(RedisConfig::new("not a url"));
        assert!(matches!(r, Err(LimitError::InvalidConfig(_))), "{r:?}");
    });
}
