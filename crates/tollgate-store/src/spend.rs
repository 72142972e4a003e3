//! Spend rows and the batched background writer.
//!
//! # Delivery guarantees
//!
//! * [`SpendWriter::record`] never waits: it puts the row on a bounded channel
//!   (`capacity`, default 100 000 rows) and returns.
//! * **Overflow policy: drop and count.** When the channel is full (the database has fallen
//!   that far behind), the row is dropped, [`SpendWriterStats::dropped_full`] is incremented and
//!   a warning is logged. The request path is never slowed by the database.
//! * A background task flushes every `flush_interval` (default 1 s) or as soon as
//!   `max_batch_rows` (default 500) rows are waiting: one transaction holding a multi-row
//!   INSERT of the spend logs plus one `UPDATE … SET spend_nanos = spend_nanos + $x` per key,
//!   team and user in the batch (summed in memory first; applied in id order so concurrent
//!   instances take row locks in the same order), and one upsert per end customer (customers are
//!   created on first spend).
//! * A failed flush keeps its rows and is retried at the next interval; if the retained rows
//!   exceed `capacity`, the oldest are dropped and counted in `dropped_db_error`.
//! * [`SpendWriter::shutdown`] stops accepting rows, drains the channel and flushes everything
//!   (zero loss on a graceful stop). A crash loses at most the rows of one flush interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tollgate_core::Usage;

use crate::entity::{customer, spend_log, team, user, virtual_key};
use crate::error::StoreError;
use crate::store::Store;

/// One request's spend, as the proxy reports it. Never carries prompt or response text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    pub request_id: String,
    /// SHA-256 hex of the key used (not the key).
    pub key_hash: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
    pub model_group: Option<String>,
    pub deployment: Option<String>,
    pub provider: Option<String>,
    /// All input tokens (cache reads and writes included).
    pub prompt_tokens: u64,
    /// All output tokens (reasoning included).
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    /// Cost in nano-USD (see [`crate::nanos_from_yocto`]).
    pub cost_nanos: i64,
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    /// Time to first token, ms after start (streams).
    pub ttft_ms: Option<i64>,
    /// `success` or an error kind.
    pub status: String,
    pub cache_hit: bool,
    pub tags: Vec<String>,
}

impl SpendRow {
    /// Copies the token buckets of a normalised [`Usage`].
    pub fn set_usage(&mut self, usage: &Usage) {
        self.prompt_tokens = usage.prompt_tokens;
        self.completion_tokens = usage.completion_tokens;
        let p = usage.prompt_tokens_details.as_ref();
        self.cached_tokens = p.and_then(|d| d.cached_tokens).unwrap_or(0);
        self.cache_creation_tokens = p.and_then(|d| d.cache_creation_tokens).unwrap_or(0);
        self.reasoning_tokens =
            usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0);
    }

    fn into_active(self) -> spend_log::ActiveModel {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        spend_log::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            request_id: Set(self.request_id),
            key_hash: Set(self.key_hash),
            team_id: Set(self.team_id),
            user_id: Set(self.user_id),
            customer_id: Set(self.customer_id),
            model_group: Set(self.model_group),
            deployment: Set(self.deployment),
            provider: Set(self.provider),
            prompt_tokens: Set(n(self.prompt_tokens)),
            completion_tokens: Set(n(self.completion_tokens)),
            cached_tokens: Set(n(self.cached_tokens)),
            cache_creation_tokens: Set(n(self.cache_creation_tokens)),
            reasoning_tokens: Set(n(self.reasoning_tokens)),
            cost_nanos: Set(self.cost_nanos),
            start_time_ms: Set(self.start_time_ms),
            end_time_ms: Set(self.end_time_ms),
            ttft_ms: Set(self.ttft_ms),
            status: Set(self.status),
            cache_hit: Set(self.cache_hit),
            tags: Set(serde_json::Value::Array(
                self.tags.into_iter().map(serde_json::Value::String).collect(),
            )),
        }
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct SpendWriterConfig {
    /// Channel capacity in rows (default 100 000). Rows beyond it are dropped and counted.
    pub capacity: usize,
    /// Flush as soon as this many rows wait (default 500).
    pub max_batch_rows: usize,
    /// Flush at least this often when rows wait (default 1 s).
    pub flush_interval: Duration,
    /// Attempts of the final flush at shutdown (default 3).
    pub shutdown_attempts: u32,
}

impl Default for SpendWriterConfig {
    fn default() -> Self {
        SpendWriterConfig {
            capacity: 100_000,
            max_batch_rows: 500,
            flush_interval: Duration::from_secs(1),
            shutdown_attempts: 3,
        }
    }
}

/// Counters of a writer (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpendWriterStats {
    /// Rows accepted by `record`.
    pub accepted: u64,
    /// Rows dropped because the channel was full.
    pub dropped_full: u64,
    /// Rows refused because the writer was shut down.
    pub dropped_closed: u64,
    /// Rows dropped after database failures (retention above capacity, or final flush failed).
    pub dropped_db_error: u64,
    /// Rows written.
    pub written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Flushes that failed (and were retried).
    pub flush_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    dropped_full: AtomicU64,
    dropped_closed: AtomicU64,
    dropped_db_error: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    flush_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SpendWriterStats {
        SpendWriterStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_closed: self.dropped_closed.load(Ordering::Relaxed),
            dropped_db_error: self.dropped_db_error.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            flush_errors: self.flush_errors.load(Ordering::Relaxed),
        }
    }
}

type Control = Arc<Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>>;

/// Handle of the background spend writer. Cheap to clone; share it with every request task.
#[derive(Debug, Clone)]
pub struct SpendWriter {
    tx: mpsc::Sender<SpendRow>,
    counters: Arc<Counters>,
    control: Control,
}

/// What happened to a recorded row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Queued for the next flush.
    Queued,
    /// Dropped: the queue is full (counted).
    DroppedFull,
    /// Dropped: the writer has shut down (counted).
    DroppedClosed,
}

impl SpendWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Store, config: SpendWriterConfig) -> Self {
        let capacity = config.capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let (stop_tx, stop_rx) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(store, rx, stop_rx, config, capacity, counters.clone()));
        SpendWriter { tx, counters, control: Arc::new(Mutex::new(Some((stop_tx, task)))) }
    }

    /// Queues a row without waiting. See the module docs for the overflow policy.
    pub fn record(&self, row: SpendRow) -> RecordOutcome {
        match self.tx.try_send(row) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                RecordOutcome::Queued
            }
            Err(mpsc::error::TrySendError::Full(row)) => {
                let n = self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(request_id = %row.request_id, dropped = n + 1, "spend queue full; spend row dropped");
                }
                RecordOutcome::DroppedFull
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.dropped_closed.fetch_add(1, Ordering::Relaxed);
                RecordOutcome::DroppedClosed
            }
        }
    }

    /// Current counters.
    pub fn stats(&self) -> SpendWriterStats {
        self.counters.snapshot()
    }

    /// Rows waiting in the channel (not yet taken by the writer task).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Stops accepting rows, flushes everything queued and waits for the task. Later calls (from
    /// any clone) return the final counters at once.
    pub async fn shutdown(&self) -> SpendWriterStats {
        let control = match self.control.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((stop, task)) = control {
            let _ = stop.send(());
            if let Err(e) = task.await {
                tracing::error!(error = %e, "spend writer task failed");
            }
        }
        self.counters.snapshot()
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<SpendRow>,
    mut stop: oneshot::Receiver<()>,
    cfg: SpendWriterConfig,
    capacity: usize,
    counters: Arc<Counters>,
) {
    let max_batch = cfg.max_batch_rows.max(1);
    let interval = cfg.flush_interval.max(Duration::from_millis(1));
    let mut buf: Vec<SpendRow> = Vec::with_capacity(max_batch);
    let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff_until: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            row = rx.recv() => match row {
                Some(row) => {
                    buf.push(row);
                    if buf.len() >= max_batch && backoff_until.is_none_or(|t| Instant::now() >= t) {
                        backoff_until = flush_or_keep(&store, &mut buf, capacity, &counters, interval).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if !buf.is_empty() {
                    backoff_until = flush_or_keep(&store, &mut buf, capacity, &counters, interval).await;
                }
            }
        }
    }
    // Graceful stop: refuse new rows, drain what is queued, flush it all.
    rx.close();
    while let Some(row) = rx.recv().await {
        buf.push(row);
    }
    for attempt in 1..=cfg.shutdown_attempts.max(1) {
        if buf.is_empty() {
            return;
        }
        if flush_or_keep(&store, &mut buf, usize::MAX, &counters, interval).await.is_none() {
            return;
        }
        if attempt < cfg.shutdown_attempts {
            tokio::time::sleep(interval.min(Duration::from_secs(1))).await;
        }
    }
    if !buf.is_empty() {
        tracing::error!(rows = buf.len(), "spend writer could not flush at shutdown; rows lost");
        counters.dropped_db_error.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
}

/// Flushes `buf`; on success clears it and returns `None`. On failure keeps the rows (dropping the
/// oldest beyond `capacity`) and returns the instant before which no size-triggered retry happens.
async fn flush_or_keep(
    store: &Store,
    buf: &mut Vec<SpendRow>,
    capacity: usize,
    counters: &Counters,
    interval: Duration,
) -> Option<Instant> {
    match store.write_spend_batch(buf).await {
        Ok(()) => {
            counters.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
            counters.batches.fetch_add(1, Ordering::Relaxed);
            buf.clear();
            None
        }
        Err(e) => {
            counters.flush_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, rows = buf.len(), "spend flush failed; will retry");
            if buf.len() > capacity {
                let excess = buf.len() - capacity;
                buf.drain(..excess);
                counters.dropped_db_error.fetch_add(excess as u64, Ordering::Relaxed);
            }
            Some(Instant::now() + interval)
        }
    }
}

/// Rows per INSERT statement (21 bound columns each: well under SQLite's and PostgreSQL's
/// parameter limits).
const INSERT_CHUNK: usize = 500;

impl Store {
    /// Writes rows and the per-entity spend increments in one transaction (what the writer
    /// does per batch; public for callers that batch themselves).
    pub async fn write_spend_batch(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut keys: BTreeMap<&str, i64> = BTreeMap::new();
        let mut teams: BTreeMap<&str, i64> = BTreeMap::new();
        let mut users: BTreeMap<&str, i64> = BTreeMap::new();
        let mut customers: BTreeMap<&str, i64> = BTreeMap::new();
        for r in rows {
            if let Some(k) = r.key_hash.as_deref() {
                let e = keys.entry(k).or_default();
                *e = e.saturating_add(r.cost_nanos);
            }
            if let Some(k) = r.team_id.as_deref() {
                let e = teams.entry(k).or_default();
                *e = e.saturating_add(r.cost_nanos);
            }
            if let Some(k) = r.user_id.as_deref() {
                let e = users.entry(k).or_default();
                *e = e.saturating_add(r.cost_nanos);
            }
            if let Some(k) = r.customer_id.as_deref() {
                let e = customers.entry(k).or_default();
                *e = e.saturating_add(r.cost_nanos);
            }
        }
        let txn = self.db.begin().await?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            spend_log::Entity::insert_many(chunk.iter().cloned().map(SpendRow::into_active))
                .exec_without_returning(&txn)
                .await?;
        }
        for (hash, c) in keys.into_iter().filter(|(_, c)| *c != 0) {
            virtual_key::Entity::update_many()
                .col_expr(virtual_key::Column::SpendNanos, Expr::col(virtual_key::Column::SpendNanos).add(c))
                .filter(virtual_key::Column::TokenHash.eq(hash))
                .exec(&txn)
                .await?;
        }
        for (id, c) in teams.into_iter().filter(|(_, c)| *c != 0) {
            team::Entity::update_many()
                .col_expr(team::Column::SpendNanos, Expr::col(team::Column::SpendNanos).add(c))
                .filter(team::Column::TeamId.eq(id))
                .exec(&txn)
                .await?;
        }
        for (id, c) in users.into_iter().filter(|(_, c)| *c != 0) {
            user::Entity::update_many()
                .col_expr(user::Column::SpendNanos, Expr::col(user::Column::SpendNanos).add(c))
                .filter(user::Column::UserId.eq(id))
                .exec(&txn)
                .await?;
        }
        let now = crate::util::now_ms();
        for (id, c) in customers {
            let am = customer::ActiveModel {
                customer_id: Set(id.to_owned()),
                alias: Set(None),
                models: Set(serde_json::json!([])),
                max_budget_nanos: Set(None),
                budget_duration: Set(None),
                budget_reset_at: Set(None),
                spend_nanos: Set(c),
                tpm_limit: Set(None),
                rpm_limit: Set(None),
                max_parallel_requests: Set(None),
                metadata: Set(serde_json::json!({})),
                budget_id: Set(None),
                blocked: Set(false),
                created_at: Set(now),
                updated_at: Set(now),
            };
            customer::Entity::insert(am)
                .on_conflict(
                    OnConflict::column(customer::Column::CustomerId)
                        .value(
                            customer::Column::SpendNanos,
                            Expr::cust("customers.spend_nanos + excluded.spend_nanos"),
                        )
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
