//! `RedisRouterState` against the real Redis: two instances (two connections) share in-flight
//! counts, usage, cooldowns and latencies through background-style syncs (driven by hand here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use tollgate_limits::{Clock, RedisBackend, RedisConfig, RedisRouterState, RouterStateConfig};
use tollgate_router::{CooldownPolicy, DeploymentRef, RouterState};

mod common;
use common::env;

const IDS: [&str; 2] = ["dep-1", "dep:{2}"];

fn d(slot: usize) -> DeploymentRef<'static> {
    DeploymentRef { slot, id: IDS[slot] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_load_cooldowns_and_latency() {
    let Some(env) = env("router-state").await else { return };
    let cfg = RouterStateConfig::default();
    let a = RedisRouterState::new(env.instance(), cfg);
    let b = RedisRouterState::new(env.instance(), cfg);
    assert_ne!(a.instance_id(), b.instance_id());
    a.prepare(&IDS);
    b.prepare(&IDS);
    let now = env.clock.now_ms();

    for _ in 0..3 {
        a.begin(d(0), now);
    }
    for _ in 0..2 {
        b.begin(d(0), now);
    }
    a.add_tokens(d(0), now, 100);
    b.add_tokens(d(0), now, 50);
    // Before any sync each instance sees itself, without waiting for Redis.
    let l = a.load(d(0), now);
    assert_eq!((l.in_flight, l.rpm_used, l.tpm_used), (3, 3, 100));

    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    a.sync_now().await.unwrap();
    for s in [&a, &b] {
        let l = s.load(d(0), now);
        assert_eq!((l.in_flight, l.rpm_used, l.tpm_used), (5, 5, 150));
        let other = s.load(d(1), now);
        assert_eq!((other.in_flight, other.rpm_used, other.tpm_used), (0, 0, 0));
    }

    // Ends on one instance reach the other with its next sync.
    a.end(d(0));
    a.end(d(0));
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    assert_eq!(b.load(d(0), now).in_flight, 3);

    // Failures add up across instances: a's two plus b's one pass allowed_fails = 2.
    let policy = CooldownPolicy {
        allowed_fails: 2,
        failure_ratio: None,
        min_requests: 0,
        cooldown_time: Duration::from_secs(10),
    };
    assert_eq!(a.record_failure(d(1), now, &policy), None);
    assert_eq!(a.record_failure(d(1), now, &policy), None);
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    assert_eq!(b.record_failure(d(1), now, &policy), Some(now + 10_000));
    assert_eq!(b.load(d(1), now).cooldown_until_ms, now + 10_000);
    assert_eq!(a.load(d(1), now).cooldown_until_ms, 0);
    b.sync_now().await.unwrap();
    a.sync_now().await.unwrap();
    assert_eq!(a.load(d(1), now).cooldown_until_ms, now + 10_000);
    // The failures that caused it are forgiven everywhere: one more is not a new cooldown.
    assert_eq!(a.record_failure(d(1), now, &policy), None);
    // An operator clears it on one instance; the other follows.
    a.set_cooldown(d(1), 0);
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    assert_eq!(b.load(d(1), now).cooldown_until_ms, 0);

    // Latencies: the shared value is the mean of the instances' moving averages.
    a.record_latency(d(0), Duration::from_millis(100), false, 0.5);
    b.record_latency(d(0), Duration::from_millis(300), false, 0.5);
    b.record_latency(d(0), Duration::from_millis(40), true, 0.5);
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    a.sync_now().await.unwrap();
    for s in [&a, &b] {
        let l = s.load(d(0), now);
        assert!((l.latency_ms - 200.0).abs() < 0.01, "{}", l.latency_ms);
        assert!((l.ttft_ms - 40.0).abs() < 0.01, "{}", l.ttft_ms);
    }

    // A new minute: usage starts over, in flight does not.
    env.clock.advance(Duration::from_secs(60));
    let later = env.clock.now_ms();
    let l = b.load(d(0), later);
    assert_eq!((l.rpm_used, l.tpm_used, l.in_flight), (0, 0, 3));
    // An instance silent for longer than instance_ttl drops out of the shared in-flight count.
    b.sync_now().await.unwrap();
    assert_eq!(b.load(d(0), later).in_flight, 2);
    assert_eq!(a.backend().stats().write_failures() + b.backend().stats().write_failures(), 0);
    env.cleanup().await;
}

#[tokio::test]
async fn keeps_working_locally_while_redis_is_down() {
    let mut cfg = RedisConfig::new("redis://127.0.0.1:1");
    cfg.timeout = Duration::from_millis(100);
    let backend = RedisBackend::new(cfg).unwrap();
    let s = RedisRouterState::new(backend.clone(), RouterStateConfig::default());
    s.prepare(&IDS);
    let now = backend.clock().now_ms();
    s.begin(d(0), now);
    s.add_tokens(d(0), now, 7);
    let started = Instant::now();
    assert!(s.sync_now().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(backend.stats().write_failures(), 2); // one per deployment
    // Unsent deltas are kept for the next sync and still count locally.
    let l = s.load(d(0), now);
    assert_eq!((l.in_flight, l.rpm_used, l.tpm_used), (1, 1, 7));
}

#[tokio::test]
async fn spawned_sync_task_stops_with_the_state() {
    let mut cfg = RedisConfig::new("redis://127.0.0.1:1");
    cfg.timeout = Duration::from_millis(20);
    let backend = RedisBackend::new(cfg).unwrap();
    let (state, task) = RedisRouterState::spawn(
        backend.clone(),
        RouterStateConfig { sync_interval: Duration::from_millis(10), ..RouterStateConfig::default() },
    );
    state.prepare(&IDS[..1]);
    // The task syncs (and fails, counted) on its own.
    let started = Instant::now();
    while backend.stats().write_failures() < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "no background sync happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!task.is_finished());
    drop(state);
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}
