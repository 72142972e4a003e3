//! Schema migrations (sea-orm-migration). Each migration spells its columns out explicitly, so it
//! never changes when an entity changes: a schema change is a new migration appended to the list.
//! Applied migrations are tracked in `seaql_migrations`; every statement is also
//! `IF NOT EXISTS`, so running `migrate` again (or from two instances) is harmless.

use sea_orm::DatabaseConnection;
use sea_orm_migration::prelude::*;

use crate::error::StoreError;

/// Applies every pending migration. Idempotent.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// The migration list.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Governance)]
    }
}

#[derive(Debug)]
struct M0001Governance;

impl MigrationName for M0001Governance {
    fn name(&self) -> &str {
        "m20261122_000001_governance"
    }
}

fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}
fn id_col(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.string_len(255).not_null().primary_key();
    c
}
fn opt_text(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.string().null();
    c
}
fn opt_i64(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.big_integer().null();
    c
}
fn req_i64(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.big_integer().not_null();
    c
}
fn zero_i64(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.big_integer().not_null().default(0);
    c
}
fn json(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.json().not_null();
    c
}
fn flag(name: &str) -> ColumnDef {
    let mut c = col(name);
    c.boolean().not_null().default(false);
    c
}

/// The limit columns every budgeted entity carries.
fn limit_cols(t: &mut TableCreateStatement) {
    t.col(json("models"))
        .col(opt_i64("max_budget_nanos"))
        .col(opt_text("budget_duration"))
        .col(opt_i64("budget_reset_at"))
        .col(zero_i64("spend_nanos"))
        .col(opt_i64("tpm_limit"))
        .col(opt_i64("rpm_limit"))
        .col(opt_i64("max_parallel_requests"))
        .col(json("metadata"))
        .col(opt_text("budget_id"))
        .col(flag("blocked"))
        .col(req_i64("created_at"))
        .col(req_i64("updated_at"));
}

fn index(table: &str, name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.if_not_exists().name(name).table(Alias::new(table));
    for c in cols {
        i.col(Alias::new(*c));
    }
    i
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Governance {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut keys = Table::create();
        keys.table(Alias::new("virtual_keys"))
            .if_not_exists()
            .col(id_col("id"))
            .col(col("token_hash").string_len(64).not_null().unique_key())
            .col(col("key_hint").string().not_null())
            .col(opt_text("key_alias"))
            .col(opt_i64("expires_at"))
            .col(opt_text("team_id"))
            .col(opt_text("user_id"));
        limit_cols(&mut keys);
        m.create_table(keys).await?;

        let mut teams = Table::create();
        teams.table(Alias::new("teams")).if_not_exists().col(id_col("team_id")).col(opt_text("team_alias"));
        limit_cols(&mut teams);
        m.create_table(teams).await?;

        let mut users = Table::create();
        users
            .table(Alias::new("users"))
            .if_not_exists()
            .col(id_col("user_id"))
            .col(opt_text("user_email"))
            .col(opt_text("user_role"))
            .col(opt_text("team_id"));
        limit_cols(&mut users);
        m.create_table(users).await?;

        let mut customers = Table::create();
        customers
            .table(Alias::new("customers"))
            .if_not_exists()
            .col(id_col("customer_id"))
            .col(opt_text("alias"));
        limit_cols(&mut customers);
        m.create_table(customers).await?;

        m.create_table(
            Table::create()
                .table(Alias::new("budgets"))
                .if_not_exists()
                .col(id_col("budget_id"))
                .col(opt_i64("max_budget_nanos"))
                .col(opt_text("budget_duration"))
                .col(opt_i64("tpm_limit"))
                .col(opt_i64("rpm_limit"))
                .col(opt_i64("max_parallel_requests"))
                .col(req_i64("created_at"))
                .col(req_i64("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Alias::new("spend_logs"))
                .if_not_exists()
                .col(col("id").big_integer().not_null().auto_increment().primary_key())
                .col(col("request_id").string().not_null())
                .col(opt_text("key_hash"))
                .col(opt_text("team_id"))
                .col(opt_text("user_id"))
                .col(opt_text("customer_id"))
                .col(opt_text("model_group"))
                .col(opt_text("deployment"))
                .col(opt_text("provider"))
                .col(zero_i64("prompt_tokens"))
                .col(zero_i64("completion_tokens"))
                .col(zero_i64("cached_tokens"))
                .col(zero_i64("cache_creation_tokens"))
                .col(zero_i64("reasoning_tokens"))
                .col(zero_i64("cost_nanos"))
                .col(req_i64("start_time_ms"))
                .col(req_i64("end_time_ms"))
                .col(opt_i64("ttft_ms"))
                .col(col("status").string().not_null())
                .col(flag("cache_hit"))
                .col(json("tags"))
                .to_owned(),
        )
        .await?;

        let indexes = [
            index("virtual_keys", "idx_virtual_keys_team", &["team_id"]),
            index("virtual_keys", "idx_virtual_keys_user", &["user_id"]),
            index("virtual_keys", "idx_virtual_keys_reset", &["budget_reset_at"]),
            index("teams", "idx_teams_reset", &["budget_reset_at"]),
            index("users", "idx_users_reset", &["budget_reset_at"]),
            index("users", "idx_users_team", &["team_id"]),
            index("customers", "idx_customers_reset", &["budget_reset_at"]),
            index("spend_logs", "idx_spend_logs_start", &["start_time_ms"]),
            index("spend_logs", "idx_spend_logs_key", &["key_hash", "start_time_ms"]),
            index("spend_logs", "idx_spend_logs_team", &["team_id", "start_time_ms"]),
            index("spend_logs", "idx_spend_logs_user", &["user_id", "start_time_ms"]),
            index("spend_logs", "idx_spend_logs_customer", &["customer_id", "start_time_ms"]),
            index("spend_logs", "idx_spend_logs_model", &["model_group", "start_time_ms"]),
            index("spend_logs", "idx_spend_logs_request", &["request_id"]),
        ];
        for i in indexes {
            m.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["spend_logs", "budgets", "customers", "users", "teams", "virtual_keys"] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
