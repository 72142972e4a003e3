//! Time and sleeping, injectable so tests control them.
//!
//! Every timestamp the router keeps (cooldown ends, usage minutes, attempt durations) comes from
//! a [`Clock`]; every backoff wait goes through a [`Sleeper`]. Tests use [`ManualClock`] and
//! [`RecordingSleeper`] to move time by hand and to see requested delays without waiting.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time. `now()` is the time since the Unix epoch (so that timestamps can be shared
/// between processes by a shared state store) and never goes backwards.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Duration;

    fn now_ms(&self) -> u64 {
        u64::try_from(self.now().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Wall-clock time, anchored once and advanced by a monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    anchor_wall: Duration,
    anchor: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        let anchor_wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        SystemClock { anchor_wall, anchor: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.anchor_wall + self.anchor.elapsed()
    }
}

/// A clock that moves only when told to. Cheap to clone; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// Starts at `start` since the epoch.
    pub fn new(start: Duration) -> Self {
        let c = ManualClock::default();
        c.set(start);
        c
    }

    pub fn advance(&self, by: Duration) {
        self.micros.fetch_add(u64::try_from(by.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    pub fn set(&self, to: Duration) {
        self.micros.store(u64::try_from(to.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

/// A boxed future returned by [`Sleeper::sleep`].
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Waits between retries.
pub trait Sleeper: Send + Sync + fmt::Debug {
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Records every requested delay and returns at once; optionally advances a [`ManualClock`] by
/// the delay, as if the time had passed.
#[derive(Debug, Clone, Default)]
pub struct RecordingSleeper {
    delays: Arc<Mutex<Vec<Duration>>>,
    clock: Option<ManualClock>,
}

impl RecordingSleeper {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sleeper that also advances `clock` by each delay.
    pub fn advancing(clock: ManualClock) -> Self {
        RecordingSleeper { delays: Arc::default(), clock: Some(clock) }
    }

    /// The delays requested so far, in order.
    pub fn delays(&self) -> Vec<Duration> {
        self.delays.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> SleepFuture {
        if let Ok(mut d) = self.delays.lock() {
            d.push(duration);
        }
        if let Some(c) = &self.clock {
            c.advance(duration);
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Duration::from_secs(100));
        assert_eq!(c.now_ms(), 100_000);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now_ms(), 101_500);
        let s = RecordingSleeper::advancing(c.clone());
        drop(s.sleep(Duration::from_secs(2)));
        assert_eq!(c.now_ms(), 103_500);
        assert_eq!(s.delays(), vec![Duration::from_secs(2)]);
    }

    #[test]
    fn system_clock_is_after_2020_and_monotonic() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(a.as_secs() > 1_577_836_800 && b >= a);
    }
}
