//! Integration tests against real SQLite (a temp directory) and real PostgreSQL
//! (127.0.0.1:5432, database `test`, a fresh schema per test, dropped afterwards).
//! PostgreSQL tests skip with a message when the server is unreachable, unless
//! `TOLLGATE_REQUIRE_SERVICES=1`, in which case they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};
use serde_json::json;
use tollgate_store::entity::{customer, spend_log, team, virtual_key};
use tollgate_store::*;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `TOLLGATE_TEST_POSTGRES_URL` overrides the default server (same trust-auth expectations).
fn pg_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| PG_URL.to_owned())
}
static SEQ: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(unique("tollgate_store_test")).join("nested").join("data")
}

async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = temp_dir();
    let store = Store::connect(&default_sqlite_url(&dir)).await.unwrap();
    store.migrate().await.unwrap();
    let result = tokio::spawn(body(store.clone())).await;
    let _ = store.close().await;
    let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let required = std::env::var("TOLLGATE_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let url = pg_url();
    let mut admin_opts = StoreOptions::new(url.clone());
    admin_opts.max_connections = 1;
    admin_opts.connect_timeout = Duration::from_secs(3);
    let admin = match Store::connect_with(admin_opts).await {
        Ok(a) => a,
        Err(e) => {
            assert!(
                !required,
                "PostgreSQL at {url} is required (TOLLGATE_REQUIRE_SERVICES=1) but unreachable: {e}"
            );
            eprintln!(
                "SKIPPED: PostgreSQL at {url} unreachable ({e}); set TOLLGATE_REQUIRE_SERVICES=1 to fail instead"
            );
            return;
        }
    };
    let schema = unique("tg_store_test");
    admin.connection().execute_unprepared(&format!("CREATE SCHEMA \"{schema}\"")).await.unwrap();
    let mut opts = StoreOptions::new(url);
    opts.pg_schema = Some(schema.clone());
    let store = Store::connect_with(opts).await.unwrap();
    store.migrate().await.unwrap();
    let result = tokio::spawn(body(store.clone())).await;
    let _ = store.close().await;
    admin.connection().execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await.unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

both_backends!(
    migrations_are_idempotent,
    key_lifecycle,
    invalid_input_writes_nothing,
    teams_users_customers_budgets,
    spend_writer_concurrent_records_are_all_written,
    spend_writer_flushes_by_size,
    spend_writer_flushes_by_interval,
    spend_writer_retries_failed_flushes,
    reports_group_and_filter,
    budget_reset,
);

async fn count_keys(store: &Store) -> u64 {
    virtual_key::Entity::find().count(store.connection()).await.unwrap()
}

async fn count_logs(store: &Store) -> u64 {
    spend_log::Entity::find().count(store.connection()).await.unwrap()
}

async fn migrations_are_idempotent(store: Store) {
    // The harness already migrated once.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let n = store
        .connection()
        .query_one(Statement::from_string(
            store.backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(count_keys(&store).await, 0);
}

async fn key_lifecycle(store: Store) {
    let generated = store
        .generate_key(NewKey {
            key_alias: Some("ci".into()),
            models: vec!["gpt-4o".into(), "claude".into()],
            duration: Some("30d".into()),
            limits: Limits {
                max_budget: Some(10.0),
                budget_duration: Some("1mo".into()),
                tpm_limit: Some(1000),
                rpm_limit: Some(10),
                max_parallel_requests: Some(2),
                budget_id: None,
            },
            metadata: Some(json!({"owner": "ci"})),
            team_id: Some("team-a".into()),
            user_id: Some("alice".into()),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let key = generated.key.clone();
    assert!(key.starts_with("sk-") && key.len() == 46, "{key}");
    assert!(!format!("{generated:?}").contains(&key));
    let rec = &generated.record;
    assert_eq!(rec.token_hash, sha256_hex(&key));
    assert_eq!(rec.max_budget_nanos, Some(10 * NANOS_PER_USD));
    assert_eq!(rec.budget_duration.as_deref(), Some("1mo"));
    assert!(rec.budget_reset_at.unwrap() > now_ms());
    assert!(rec.expires_at.unwrap() > now_ms() + 29 * 86_400_000);
    assert!(rec.allows_model("gpt-4o") && !rec.allows_model("gpt-5"));

    // Lookup by the presented key, by hash and by id.
    let found = store.lookup_key(&key).await.unwrap().unwrap();
    assert_eq!(&found, rec);
    assert_eq!(store.find_key(&rec.token_hash).await.unwrap().unwrap().id, rec.id);
    assert_eq!(store.key_info(&rec.id).await.unwrap().id, rec.id);
    assert!(store.lookup_key("sk-not-a-key").await.unwrap().is_none());

    // Only the hash is stored: the secret appears nowhere in the table.
    let dump =
        serde_json::to_string(&virtual_key::Entity::find().all(store.connection()).await.unwrap()).unwrap();
    assert!(!dump.contains(&key[3..]), "raw key stored");
    assert!(!dump.contains(&key[3..20]));

    // Update: alias changed, budget cleared, models replaced, metadata kept.
    let upd: KeyUpdate =
        serde_json::from_value(json!({"key_alias": "ci-2", "max_budget": null, "models": ["gpt-4o-mini"]}))
            .unwrap();
    let updated = store.update_key(&key, upd).await.unwrap();
    assert_eq!(updated.key_alias.as_deref(), Some("ci-2"));
    assert_eq!(updated.max_budget_nanos, None);
    assert_eq!(updated.allowed_models(), vec!["gpt-4o-mini".to_owned()]);
    assert_eq!(updated.metadata, json!({"owner": "ci"}));
    assert_eq!(updated.tpm_limit, Some(1000));

    // Block / unblock.
    assert!(store.set_key_blocked(&rec.id, true).await.unwrap().blocked);
    assert!(store.lookup_key(&key).await.unwrap().unwrap().blocked);
    assert!(!store.set_key_blocked(&rec.id, false).await.unwrap().blocked);

    // Regenerate: same id, old key dead, new key works.
    let regen = store.regenerate_key(&key).await.unwrap();
    assert_ne!(regen.key, key);
    assert_eq!(regen.record.id, rec.id);
    assert!(store.lookup_key(&key).await.unwrap().is_none());
    assert_eq!(store.lookup_key(&regen.key).await.unwrap().unwrap().id, rec.id);

    // List with pagination and a filter.
    for i in 0..3 {
        store
            .generate_key(NewKey {
                team_id: Some("team-b".into()),
                key_alias: Some(format!("b{i}")),
                ..NewKey::default()
            })
            .await
            .unwrap();
    }
    let filter = KeyFilter { team_id: Some("team-b".into()), ..KeyFilter::default() };
    let p1 = store.list_keys(filter.clone(), Page { page: 1, page_size: 2 }).await.unwrap();
    assert_eq!((p1.total, p1.items.len()), (3, 2));
    let p2 = store.list_keys(filter, Page { page: 2, page_size: 2 }).await.unwrap();
    assert_eq!(p2.items.len(), 1);
    assert!(p1.items.iter().chain(&p2.items).all(|k| k.team_id.as_deref() == Some("team-b")));
    assert_eq!(store.list_keys(KeyFilter::default(), Page::default()).await.unwrap().total, 4);

    // Delete.
    store.delete_key(&regen.key).await.unwrap();
    assert!(store.lookup_key(&regen.key).await.unwrap().is_none());
    assert!(matches!(store.key_info(&rec.id).await, Err(StoreError::NotFound { entity: "key", .. })));
    assert!(matches!(store.delete_key(&rec.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(count_keys(&store).await, 3);
}

async fn invalid_input_writes_nothing(store: Store) {
    let bad_inputs = [
        json!({"budget_duration": "1y"}),
        json!({"budget_duration": "0d"}),
        json!({"max_budget": -1.0}),
        json!({"duration": "soon"}),
        json!({"tpm_limit": -5}),
        json!({"rpm_limit": -1}),
        json!({"metadata": [1, 2]}),
        json!({"models": [""]}),
        json!({"duration": "1d", "expires_at": 5}),
    ];
    for input in bad_inputs {
        let req: NewKey = serde_json::from_value(input.clone()).unwrap();
        let err = store.generate_key(req).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{input}: {err}");
        assert!(err.is_client_error());
    }
    let err = store
        .generate_key(NewKey {
            limits: Limits { budget_id: Some("nope".into()), ..Limits::default() },
            ..NewKey::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { entity: "budget", .. }), "{err}");
    assert_eq!(count_keys(&store).await, 0);

    // A bad update leaves the row as it was.
    let k = store.generate_key(NewKey { key_alias: Some("keep".into()), ..NewKey::default() }).await.unwrap();
    let upd: KeyUpdate =
        serde_json::from_value(json!({"key_alias": "changed", "budget_duration": "2x"})).unwrap();
    assert!(matches!(
        store.update_key(&k.key, upd).await,
        Err(StoreError::Invalid { field: "budget_duration", .. })
    ));
    assert_eq!(store.lookup_key(&k.key).await.unwrap().unwrap(), k.record);

    for bad in [json!({"max_budget": -0.5}), json!({"budget_duration": "week"}), json!({"team_id": ""})] {
        let req: NewTeam = serde_json::from_value(bad.clone()).unwrap();
        assert!(matches!(store.create_team(req).await, Err(StoreError::Invalid { .. })), "{bad}");
    }
    assert!(matches!(
        store.create_budget(NewBudget { max_budget: Some(-3.0), ..NewBudget::default() }).await,
        Err(StoreError::Invalid { field: "max_budget", .. })
    ));
    assert!(matches!(
        store
            .create_customer(NewCustomer {
                customer_id: "c".into(),
                limits: Limits { max_budget: Some(f64::NAN), ..Limits::default() },
                ..NewCustomer::default()
            })
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(team::Entity::find().count(store.connection()).await.unwrap(), 0);
    assert_eq!(customer::Entity::find().count(store.connection()).await.unwrap(), 0);
    assert_eq!(store.list_budgets(Page::default()).await.unwrap().total, 0);
    assert_eq!(count_keys(&store).await, 1);
}

async fn teams_users_customers_budgets(store: Store) {
    let b = store
        .create_budget(NewBudget {
            budget_id: Some("gold".into()),
            max_budget: Some(100.0),
            budget_duration: Some("1w".into()),
            rpm_limit: Some(60),
            ..NewBudget::default()
        })
        .await
        .unwrap();
    assert_eq!(b.max_budget_nanos, Some(100 * NANOS_PER_USD));
    assert!(matches!(
        store.create_budget(NewBudget { budget_id: Some("gold".into()), ..NewBudget::default() }).await,
        Err(StoreError::Conflict { entity: "budget", .. })
    ));
    let b = store
        .update_budget("gold", serde_json::from_value(json!({"rpm_limit": null, "tpm_limit": 5})).unwrap())
        .await
        .unwrap();
    assert_eq!((b.rpm_limit, b.tpm_limit), (None, Some(5)));

    let t = store
        .create_team(NewTeam {
            team_id: Some("eng".into()),
            team_alias: Some("Engineering".into()),
            models: vec!["gpt-4o".into()],
            limits: Limits { budget_id: Some("gold".into()), ..Limits::default() },
            ..NewTeam::default()
        })
        .await
        .unwrap();
    assert_eq!(t.budget_id.as_deref(), Some("gold"));
    let generated = store.create_team(NewTeam::default()).await.unwrap();
    assert!(generated.team_id.starts_with("team_"));
    assert!(matches!(
        store.create_team(NewTeam { team_id: Some("eng".into()), ..NewTeam::default() }).await,
        Err(StoreError::Conflict { entity: "team", .. })
    ));
    let t =
        store.update_team("eng", serde_json::from_value(json!({"max_budget": 5.5})).unwrap()).await.unwrap();
    assert_eq!(t.max_budget_nanos, Some(5_500_000_000));
    assert!(store.set_team_blocked("eng", true).await.unwrap().blocked);
    assert_eq!(store.list_teams(Page::default()).await.unwrap().total, 2);

    let u = store
        .create_user(NewUser {
            user_id: Some("alice".into()),
            user_email: Some("alice@example.com".into()),
            team_id: Some("eng".into()),
            ..NewUser::default()
        })
        .await
        .unwrap();
    assert_eq!(u.team_id.as_deref(), Some("eng"));
    let u =
        store.update_user("alice", serde_json::from_value(json!({"team_id": null})).unwrap()).await.unwrap();
    assert_eq!(u.team_id, None);
    assert_eq!(store.user_info("alice").await.unwrap().user_email.as_deref(), Some("alice@example.com"));

    let c = store
        .create_customer(NewCustomer { customer_id: "cust-1".into(), ..NewCustomer::default() })
        .await
        .unwrap();
    assert!(!c.blocked);
    assert!(store.set_customer_blocked("cust-1", true).await.unwrap().blocked);
    assert!(matches!(
        store.customer_info("cust-2").await,
        Err(StoreError::NotFound { entity: "customer", .. })
    ));

    store.delete_team("eng").await.unwrap();
    store.delete_user("alice").await.unwrap();
    store.delete_customer("cust-1").await.unwrap();
    store.delete_budget("gold").await.unwrap();
    assert!(matches!(store.team_info("eng").await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_users(Page::default()).await.unwrap().total, 0);
    assert_eq!(store.list_customers(Page::default()).await.unwrap().total, 0);
    assert!(matches!(
        store.list_teams(Page { page: 0, page_size: 1 }).await,
        Err(StoreError::Invalid { .. })
    ));
}

fn row(i: u64, key_hash: &str, cost: i64) -> SpendRow {
    SpendRow {
        request_id: format!("req-{i}"),
        key_hash: Some(key_hash.to_owned()),
        team_id: Some("eng".into()),
        user_id: Some("alice".into()),
        customer_id: Some(format!("cust-{}", i % 3)),
        model_group: Some("gpt-4o".into()),
        deployment: Some("openai-1".into()),
        provider: Some("openai".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_nanos: cost,
        start_time_ms: 1_700_000_000_000 + i64::try_from(i).unwrap(),
        end_time_ms: 1_700_000_000_500 + i64::try_from(i).unwrap(),
        status: "success".into(),
        tags: vec!["t1".into()],
        ..SpendRow::default()
    }
}

async fn spend_writer_concurrent_records_are_all_written(store: Store) {
    let key = store.generate_key(NewKey::default()).await.unwrap();
    store.create_team(NewTeam { team_id: Some("eng".into()), ..NewTeam::default() }).await.unwrap();
    store.create_user(NewUser { user_id: Some("alice".into()), ..NewUser::default() }).await.unwrap();
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            max_batch_rows: 64,
            flush_interval: Duration::from_millis(20),
            ..SpendWriterConfig::default()
        },
    );
    let hash = key.record.token_hash.clone();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let writer = writer.clone();
        let hash = hash.clone();
        tasks.push(tokio::spawn(async move {
            let mut sum = 0i64;
            let mut per_customer = [0i64; 3];
            for j in 0..125u64 {
                let i = t * 1000 + j;
                let cost = i64::try_from(i % 97 + 1).unwrap() * 1_000;
                sum += cost;
                per_customer[usize::try_from(i % 3).unwrap()] += cost;
                assert_eq!(writer.record(row(i, &hash, cost)), RecordOutcome::Queued);
                if j % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            (sum, per_customer)
        }));
    }
    let mut total = 0i64;
    let mut per_customer = [0i64; 3];
    for t in tasks {
        let (s, pc) = t.await.unwrap();
        total += s;
        for k in 0..3 {
            per_customer[k] += pc[k];
        }
    }
    let stats = writer.shutdown().await;
    assert_eq!(stats.accepted, 2000);
    assert_eq!(stats.written, 2000);
    assert_eq!(stats.dropped_full + stats.dropped_db_error, 0);
    assert!(stats.batches >= 1 && stats.flush_errors == 0, "{stats:?}");
    assert_eq!(count_logs(&store).await, 2000);
    assert_eq!(store.lookup_key(&key.key).await.unwrap().unwrap().spend_nanos, total);
    assert_eq!(store.team_info("eng").await.unwrap().spend_nanos, total);
    assert_eq!(store.user_info("alice").await.unwrap().spend_nanos, total);
    for (k, expected) in per_customer.iter().enumerate() {
        assert_eq!(store.customer_info(&format!("cust-{k}")).await.unwrap().spend_nanos, *expected);
    }
    // After shutdown nothing is accepted, and a second shutdown is harmless.
    assert_eq!(writer.record(row(99_999, &hash, 1)), RecordOutcome::DroppedClosed);
    assert_eq!(writer.shutdown().await.dropped_closed, 1);
}

async fn wait_for_logs(store: &Store, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count_logs(store).await < n {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} spend rows");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn spend_writer_flushes_by_size(store: Store) {
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            max_batch_rows: 10,
            flush_interval: Duration::from_secs(3600),
            ..SpendWriterConfig::default()
        },
    );
    for i in 0..25 {
        writer.record(row(i, "h", 1));
    }
    wait_for_logs(&store, 20).await;
    // The 5 left over wait for the (hour-long) interval; only the size trigger has fired.
    assert_eq!(count_logs(&store).await, 20);
    assert_eq!(writer.stats().batches, 2);
    let stats = writer.shutdown().await;
    assert_eq!((stats.written, stats.batches), (25, 3));
    assert_eq!(count_logs(&store).await, 25);
}

async fn spend_writer_flushes_by_interval(store: Store) {
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            max_batch_rows: 10_000,
            flush_interval: Duration::from_millis(100),
            ..SpendWriterConfig::default()
        },
    );
    for i in 0..3 {
        writer.record(row(i, "h", 1));
    }
    // Far below the batch size: only the interval can flush these.
    wait_for_logs(&store, 3).await;
    assert_eq!(writer.stats().written, 3);
    writer.shutdown().await;
    assert_eq!(count_logs(&store).await, 3);
}

async fn spend_writer_drops_and_counts_on_overflow(store: Store) {
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            capacity: 4,
            max_batch_rows: 10_000,
            flush_interval: Duration::from_secs(3600),
            ..SpendWriterConfig::default()
        },
    );
    // On a current-thread runtime the writer task cannot drain while this loop runs (no await),
    // so exactly `capacity` rows fit and the rest are dropped without waiting.
    let outcomes: Vec<RecordOutcome> = (0..10).map(|i| writer.record(row(i, "h", 1))).collect();
    let queued = outcomes.iter().filter(|o| **o == RecordOutcome::Queued).count();
    let dropped = outcomes.iter().filter(|o| **o == RecordOutcome::DroppedFull).count();
    assert_eq!((queued, dropped), (4, 6), "{outcomes:?}");
    assert_eq!(writer.stats().dropped_full, 6);
    let stats = writer.shutdown().await;
    assert_eq!(stats.dropped_full, u64::try_from(dropped).unwrap());
    assert_eq!(stats.written, u64::try_from(queued).unwrap());
    assert_eq!(count_logs(&store).await, u64::try_from(queued).unwrap());
}

async fn spend_writer_retries_failed_flushes(store: Store) {
    let db = store.connection();
    db.execute_unprepared("ALTER TABLE spend_logs RENAME TO spend_logs_away").await.unwrap();
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            max_batch_rows: 2,
            flush_interval: Duration::from_millis(30),
            ..SpendWriterConfig::default()
        },
    );
    for i in 0..5 {
        assert_eq!(writer.record(row(i, "h", 1)), RecordOutcome::Queued);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while writer.stats().flush_errors < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no failed flush seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(writer.stats().written, 0);
    db.execute_unprepared("ALTER TABLE spend_logs_away RENAME TO spend_logs").await.unwrap();
    let stats = writer.shutdown().await;
    assert_eq!((stats.written, stats.dropped_db_error), (5, 0), "{stats:?}");
    assert_eq!(count_logs(&store).await, 5);
    // Customers were upserted exactly once per committed batch, not per failed attempt.
    let spend: i64 = customer::Entity::find().all(db).await.unwrap().iter().map(|c| c.spend_nanos).sum();
    assert_eq!(spend, 5);
}

// Current-thread runtime on purpose (see the test body).
#[tokio::test]
async fn sqlite_spend_writer_drops_and_counts_on_overflow() {
    with_sqlite(spend_writer_drops_and_counts_on_overflow).await;
}

#[tokio::test]
async fn postgres_spend_writer_drops_and_counts_on_overflow() {
    with_postgres(spend_writer_drops_and_counts_on_overflow).await;
}

async fn reports_group_and_filter(store: Store) {
    let day0 = parse_day("2026-03-01").unwrap();
    let day1 = parse_day("2026-03-02").unwrap();
    let mk = |id: &str, key: &str, team: Option<&str>, model: &str, start: i64, cost: i64| SpendRow {
        request_id: id.into(),
        key_hash: Some(key.into()),
        team_id: team.map(str::to_owned),
        user_id: Some("u1".into()),
        customer_id: None,
        model_group: Some(model.into()),
        prompt_tokens: 100,
        completion_tokens: 10,
        cost_nanos: cost,
        start_time_ms: start,
        end_time_ms: start + 1000,
        status: "success".into(),
        ..SpendRow::default()
    };
    store
        .write_spend_batch(&[
            mk("r1", "k1", Some("eng"), "gpt-4o", day0 + 1_000, 100),
            mk("r2", "k1", Some("eng"), "claude", day0 + 2_000, 200),
            mk("r3", "k2", Some("ops"), "gpt-4o", day1 + 3_000, 400),
            mk("r4", "k2", None, "gpt-4o", day1 + 86_399_999, 800),
            mk("r5", "k3", Some("ops"), "claude", day1 + 86_400_000, 1600),
        ])
        .await
        .unwrap();
    let all = SpendFilter::default();
    let by_key = store.spend_report(GroupBy::Key, &all).await.unwrap();
    let summary: Vec<(Option<&str>, i64, i64)> =
        by_key.iter().map(|g| (g.group.as_deref(), g.spend_nanos, g.requests)).collect();
    assert_eq!(summary, vec![(Some("k3"), 1600, 1), (Some("k2"), 1200, 2), (Some("k1"), 300, 2)]);
    assert_eq!(by_key[1].prompt_tokens, 200);
    assert_eq!(by_key[1].completion_tokens, 20);

    let by_team = store.spend_report(GroupBy::Team, &all).await.unwrap();
    let summary: Vec<(Option<&str>, i64)> =
        by_team.iter().map(|g| (g.group.as_deref(), g.spend_nanos)).collect();
    assert_eq!(summary, vec![(Some("ops"), 2000), (None, 800), (Some("eng"), 300)]);

    let by_model = store.spend_report(GroupBy::Model, &all).await.unwrap();
    let summary: Vec<(Option<&str>, i64)> =
        by_model.iter().map(|g| (g.group.as_deref(), g.spend_nanos)).collect();
    assert_eq!(summary, vec![(Some("claude"), 1800), (Some("gpt-4o"), 1300)]);

    let by_user = store.spend_report(GroupBy::User, &all).await.unwrap();
    assert_eq!(by_user.len(), 1);
    assert_eq!((by_user[0].spend_nanos, by_user[0].requests), (3100, 5));
    let by_customer = store.spend_report(GroupBy::Customer, &all).await.unwrap();
    assert_eq!(by_customer.len(), 1);
    assert_eq!(by_customer[0].group, None);

    let by_day = store.spend_report(GroupBy::Day, &all).await.unwrap();
    let summary: Vec<(Option<&str>, i64, i64)> =
        by_day.iter().map(|g| (g.group.as_deref(), g.spend_nanos, g.requests)).collect();
    assert_eq!(
        summary,
        vec![(Some("2026-03-01"), 300, 2), (Some("2026-03-02"), 1200, 2), (Some("2026-03-03"), 1600, 1)]
    );

    // Date range (end exclusive) + model filter.
    let f = SpendFilter { start_ms: Some(day1), end_ms: Some(day1 + 86_400_000), ..SpendFilter::default() };
    let by_day = store.spend_report(GroupBy::Day, &f).await.unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(by_day[0].spend_nanos, 1200);
    let f = SpendFilter { model_group: Some("claude".into()), ..SpendFilter::default() };
    assert_eq!(store.spend_report(GroupBy::Key, &f).await.unwrap().len(), 2);

    // Logs: newest first, filters, pagination.
    let logs = store.spend_logs(&all, Page { page: 1, page_size: 2 }).await.unwrap();
    assert_eq!(logs.total, 5);
    let ids: Vec<&str> = logs.items.iter().map(|l| l.request_id.as_str()).collect();
    assert_eq!(ids, vec!["r5", "r4"]);
    let page3 = store.spend_logs(&all, Page { page: 3, page_size: 2 }).await.unwrap();
    assert_eq!(page3.items.iter().map(|l| l.request_id.as_str()).collect::<Vec<_>>(), vec!["r1"]);
    let f = SpendFilter { key_hash: Some("k1".into()), ..SpendFilter::default() };
    assert_eq!(store.spend_logs(&f, Page::default()).await.unwrap().total, 2);
    let f = SpendFilter { team_id: Some("ops".into()), user_id: Some("u1".into()), ..SpendFilter::default() };
    assert_eq!(store.spend_logs(&f, Page::default()).await.unwrap().total, 2);
    let f = SpendFilter { customer_id: Some("x".into()), ..SpendFilter::default() };
    assert_eq!(store.spend_logs(&f, Page::default()).await.unwrap().total, 0);
    let f = SpendFilter { start_ms: Some(5), end_ms: Some(4), ..SpendFilter::default() };
    assert!(matches!(store.spend_logs(&f, Page::default()).await, Err(StoreError::Invalid { .. })));
}

async fn budget_reset(store: Store) {
    let key = store
        .generate_key(NewKey {
            limits: Limits { max_budget: Some(1.0), budget_duration: Some("1h".into()), ..Limits::default() },
            ..NewKey::default()
        })
        .await
        .unwrap();
    let plain = store.generate_key(NewKey::default()).await.unwrap();
    store
        .create_team(NewTeam {
            team_id: Some("eng".into()),
            limits: Limits { budget_duration: Some("1d".into()), ..Limits::default() },
            ..NewTeam::default()
        })
        .await
        .unwrap();
    let mut r1 = row(1, &key.record.token_hash, 5_000);
    r1.customer_id = None;
    let mut r2 = row(2, &plain.record.token_hash, 7_000);
    r2.customer_id = None;
    store.write_spend_batch(&[r1, r2]).await.unwrap();
    assert_eq!(store.lookup_key(&key.key).await.unwrap().unwrap().spend_nanos, 5_000);

    let now = now_ms();
    assert_eq!(store.reset_due_budgets(now).await.unwrap(), ResetSummary::default());
    let later = now + 2 * 3_600_000;
    let summary = store.reset_due_budgets(later).await.unwrap();
    assert_eq!(summary, ResetSummary { keys: 1, teams: 0, ..ResetSummary::default() });
    let after = store.lookup_key(&key.key).await.unwrap().unwrap();
    assert_eq!(after.spend_nanos, 0);
    assert!(after.budget_reset_at.unwrap() > later && after.budget_reset_at.unwrap() <= later + 3_600_000);
    // Keys without a budget period keep their spend; a second run at the same time is a no-op.
    assert_eq!(store.lookup_key(&plain.key).await.unwrap().unwrap().spend_nanos, 7_000);
    assert_eq!(store.reset_due_budgets(later).await.unwrap(), ResetSummary::default());
    assert_eq!(store.team_info("eng").await.unwrap().spend_nanos, 5_000 + 7_000);
    let summary = store.reset_due_budgets(now + 2 * 86_400_000).await.unwrap();
    assert_eq!((summary.keys, summary.teams), (1, 1));
    assert_eq!(store.team_info("eng").await.unwrap().spend_nanos, 0);
}

#[tokio::test]
async fn sqlite_creates_data_dir_and_uses_wal() {
    let dir = temp_dir();
    assert!(!dir.exists());
    let store = Store::connect(&default_sqlite_url(&dir)).await.unwrap();
    store.migrate().await.unwrap();
    assert!(dir.join(SQLITE_FILE_NAME).is_file());
    let mode = store
        .connection()
        .query_one(Statement::from_string(store.backend(), "PRAGMA journal_mode".to_owned()))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "journal_mode")
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await.unwrap();
    // Reopening an existing database and migrating again works.
    let store = Store::connect(&default_sqlite_url(&dir)).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap());
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let err = Store::connect("mysql://root:secret@localhost/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    assert!(!err.to_string().contains("secret"));
}
