//! bench-load against the mock upstream and the floor, in-process on 127.0.0.1:0.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tollgate_bench::load::{self, Limit, LoadConfig, Mode};

async fn spawn_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(tollgate_bench::upstream::serve(l));
    addr
}

async fn spawn_floor(upstream: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(tollgate_bench::floor::serve(l, upstream));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_bounded_nonstream_and_stream_against_upstream() {
    let up = spawn_upstream().await;
    for mode in [Mode::NonStream, Mode::Stream, Mode::Mixed] {
        let mut cfg = LoadConfig::new(up);
        cfg.concurrency = 4;
        cfg.limit = Limit::Requests(200);
        cfg.mode = mode;
        cfg.watch_pid = Some(std::process::id());
        let r = load::run(cfg).await.unwrap();
        assert_eq!(r.errors, 0, "{mode:?}: {:?}", r.error_samples);
        assert_eq!(r.requests, 200, "{mode:?}");
        assert_eq!(r.latency.count(), 200);
        assert!(r.latency.percentile(50.0) > 0);
        assert!(r.latency.percentile(99.0) >= r.latency.percentile(50.0));
        assert!(r.rps() > 0.0);
        let w = r.watch.as_ref().unwrap();
        assert!(w.rss_kb_end > 0 && w.hwm_kb_end >= w.rss_kb_end);
        let json = r.to_json();
        assert_eq!(json["requests"], 200);
        assert_eq!(json["mode"], mode.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_floor_with_disconnects_and_rss_samples() {
    let up = spawn_upstream().await;
    let floor = spawn_floor(up).await;
    let mut cfg = LoadConfig::new(floor);
    cfg.concurrency = 3;
    cfg.limit = Limit::Requests(300);
    cfg.mode = Mode::Mixed;
    cfg.disconnect_every = 10;
    cfg.watch_pid = Some(std::process::id());
    cfg.rss_every = Some(Duration::from_millis(1));
    let r = load::run(cfg).await.unwrap();
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    // Every 10th of the 300 claimed requests was abandoned on purpose.
    assert_eq!(r.aborted, 30);
    assert_eq!(r.requests, 270);
    assert!(!r.watch.unwrap().rss_samples.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_bounded_with_warmup() {
    let up = spawn_upstream().await;
    let mut cfg = LoadConfig::new(up);
    cfg.concurrency = 2;
    cfg.limit = Limit::Duration(Duration::from_millis(200));
    cfg.warmup = Duration::from_millis(50);
    let r = load::run(cfg).await.unwrap();
    assert_eq!(r.errors, 0, "{:?}", r.error_samples);
    assert!(r.requests > 0);
    assert!(r.elapsed >= Duration::from_millis(200), "{:?}", r.elapsed);
    assert!(r.elapsed < Duration::from_secs(5), "bounded: {:?}", r.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_not_hidden() {
    // A port with nothing listening: every connection is refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = LoadConfig::new(closed);
    cfg.limit = Limit::Duration(Duration::from_millis(100));
    let r = load::run(cfg).await.unwrap();
    assert_eq!(r.requests, 0);
    assert!(r.errors > 0);
    assert!(r.error_samples[0].contains("connect"), "{:?}", r.error_samples);

    // A floor whose upstream is gone answers 502: errors, with the status in the message.
    let floor = spawn_floor(closed).await;
    let mut cfg = LoadConfig::new(floor);
    cfg.limit = Limit::Requests(5);
    let r = load::run(cfg).await.unwrap();
    assert_eq!(r.requests, 0);
    assert_eq!(r.errors, 5);
    assert!(r.error_samples[0].contains("502"), "{:?}", r.error_samples);
}

#[tokio::test]
async fn non_loopback_targets_are_refused() {
    let cfg = LoadConfig::new("192.0.2.1:80".parse().unwrap());
    assert!(matches!(load::run(cfg).await, Err(load::LoadError::NotLoopback(_))));
}
