//! Fail-open decisions are logged at most once per `log_interval`, with the count of the ones
//! left out. No Redis needed: nothing listens on 127.0.0.1:1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate_limits::{Entity, EntityKind, Limits, ManualClock, RateLimiter, RedisBackend, RedisConfig};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn fail_open_warnings_are_rate_limited() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(Duration::from_secs(1_000_000));
    let mut cfg = RedisConfig::new("redis://127.0.0.1:1");
    cfg.timeout = Duration::from_millis(100);
    cfg.log_interval = Duration::from_secs(10);
    let b = RedisBackend::with_clock(cfg, Arc::new(clock.clone())).unwrap();
    let rl = b.rate_limiter();
    let e = Entity::new(EntityKind::Team, "t");
    let limits = Limits { rpm: Some(5), ..Limits::default() };

    for _ in 0..5 {
        assert!(rl.try_acquire(&e, &limits, 0).await.unwrap().degraded);
    }
    let lines = buf.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN") && lines[0].contains("failing open"), "{}", lines[0]);
    assert!(lines[0].contains("suppressed=0"), "{}", lines[0]);

    clock.advance(Duration::from_secs(10));
    assert!(rl.try_acquire(&e, &limits, 0).await.unwrap().degraded);
    let lines = buf.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("suppressed=4") && lines[1].contains("fail_open_total=6"), "{}", lines[1]);
    assert_eq!(b.stats().fail_open(), 6);
}
