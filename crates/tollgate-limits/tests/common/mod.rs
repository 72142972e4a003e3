//! Shared by the Redis test files: a namespace per test on the real Redis, and its cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use tollgate_limits::{Clock, ManualClock, RedisBackend, RedisConfig, SystemClock};

pub fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub struct Env {
    pub url: String,
    pub namespace: String,
    pub clock: ManualClock,
}

impl Env {
    /// A backend on the shared Redis with its own connection (one "proxy instance").
    pub fn instance(&self) -> RedisBackend {
        self.instance_with(|_| {})
    }

    /// Like [`Env::instance`], with settings changed by `f`.
    pub fn instance_with(&self, f: impl FnOnce(&mut RedisConfig)) -> RedisBackend {
        let mut cfg = RedisConfig::new(&self.url);
        cfg.namespace = self.namespace.clone();
        // Generous: a loaded 2-core CI machine must not turn into fail-open events here.
        cfg.timeout = Duration::from_secs(5);
        f(&mut cfg);
        RedisBackend::with_clock(cfg, Arc::new(self.clock.clone())).unwrap()
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
    }

    pub async fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query_async(&mut self.conn().await).await.unwrap()
    }

    pub async fn zcard(&self, key: &str) -> i64 {
        redis::cmd("ZCARD").arg(key).query_async(&mut self.conn().await).await.unwrap()
    }

    pub async fn get(&self, key: &str) -> Option<i64> {
        redis::cmd("GET").arg(key).query_async(&mut self.conn().await).await.unwrap()
    }

    /// Deletes every key of this namespace.
    pub async fn cleanup(self) {
        let mut conn = self.conn().await;
        let pattern = format!("{{{}:*", self.namespace);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let left: (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(left.1.is_empty(), "cleanup left {:?}", left.1);
    }
}

/// `None` (after saying why) when Redis is unreachable and not required.
pub async fn env(test: &str) -> Option<Env> {
    let url = redis_url();
    let now = SystemClock::new().now_ms();
    let env = Env {
        url: url.clone(),
        namespace: format!("tollgate-test-{}-{now}-{test}", std::process::id()),
        // Near real time (budget keys expire at absolute times) but still: windows only move
        // when a test says so.
        clock: ManualClock::new(Duration::from_millis(now)),
    };
    let probe = env.instance();
    match probe.ping().await {
        Ok(()) => Some(env),
        Err(e) => {
            if std::env::var("TOLLGATE_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("Redis at {url} is required (TOLLGATE_REQUIRE_SERVICES=1) but unreachable: {e}");
            }
            eprintln!(
                "SKIPPED {test}: Redis at {url} unreachable ({e}); set TOLLGATE_REQUIRE_SERVICES=1 to fail instead"
            );
            None
        }
    }
}
