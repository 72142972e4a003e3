//! tollgate-store: governance storage for the tollgate proxy — virtual keys, teams, users, end
//! customers, reusable budgets and spend logs on SQLite (default, one file, nothing to install)
//! or PostgreSQL, through sea-orm; idempotent migrations; budget periods and resets; a batched,
//! non-blocking spend writer; spend reports.
//!
//! Keys are stored only as SHA-256 hashes. Money is integer nano-USD. Times are Unix ms.
//!
//! Layer 5: depends on tollgate-core (and may use tollgate-pricing). It must never depend on
//! tollgate-proxy, tollgate-cli, the SDK facade, the router, the transport or provider crates;
//! it does no HTTP and no Redis.

mod duration;
pub mod entity;
mod error;
mod keys;
mod limits;
pub mod migration;
mod org;
mod report;
mod reset;
mod spend;
mod store;
mod util;

pub use duration::{BudgetDuration, add_duration, format_day, next_reset, parse_day, parse_duration};
pub use error::StoreError;
pub use keys::{GeneratedKey, KeyFilter, KeyRecord, KeyUpdate, NewKey};
pub use limits::{Limits, LimitsPatch, Patch, patch};
pub use migration::migrate;
pub use org::{
    BudgetRecord, BudgetUpdate, CustomerRecord, CustomerUpdate, NewBudget, NewCustomer, NewTeam, NewUser,
    TeamRecord, TeamUpdate, UserRecord, UserUpdate,
};
pub use report::{GroupBy, SpendFilter, SpendGroup, SpendLogRecord};
pub use reset::ResetSummary;
pub use spend::{RecordOutcome, SpendRow, SpendWriter, SpendWriterConfig, SpendWriterStats};
pub use store::{DEFAULT_DATA_DIR, Page, Paged, SQLITE_FILE_NAME, Store, StoreOptions, default_sqlite_url};
pub use util::{NANOS_PER_USD, nanos_from_yocto, nanos_to_usd, now_ms, sha256_hex, usd_to_nanos};
