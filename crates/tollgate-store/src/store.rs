//! Connecting to the database.

use std::path::Path;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The file name of the default SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "tollgate.sqlite";

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./tollgate-data";

/// `sqlite://<data_dir>/tollgate.sqlite?mode=rwc`: the default database (created on first start).
pub fn default_sqlite_url(data_dir: &Path) -> String {
    let dir = data_dir.display().to_string();
    format!("sqlite://{}/{SQLITE_FILE_NAME}?mode=rwc", dir.trim_end_matches('/'))
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`.
    pub url: String,
    /// PostgreSQL only: the schema to use (`search_path`). `None` = the server default.
    pub pg_schema: Option<String>,
    /// Pool size (default 10; SQLite serialises writers anyway).
    pub max_connections: u32,
    /// SQLite busy timeout (default 5 s).
    pub sqlite_busy_timeout: Duration,
    /// How long to wait for a connection (connect and pool acquire; default 10 s).
    pub connect_timeout: Duration,
}

impl StoreOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            pg_schema: None,
            max_connections: 10,
            sqlite_busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The governance store: a pooled connection to SQLite or PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
}

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based page number.
    pub page: u64,
    /// Rows per page (1..=1000).
    pub page_size: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page { page: 1, page_size: 50 }
    }
}

impl Page {
    pub(crate) fn validate(self) -> Result<Self, StoreError> {
        if self.page == 0 {
            return Err(StoreError::invalid("page", "pages start at 1"));
        }
        if self.page_size == 0 || self.page_size > 1000 {
            return Err(StoreError::invalid("page_size", "must be between 1 and 1000"));
        }
        Ok(self)
    }

    pub(crate) fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.page_size)
    }
}

/// A page of results and the total count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching in total.
    pub total: u64,
    /// The page returned.
    pub page: u64,
    /// The page size used.
    pub page_size: u64,
}

impl Store {
    /// Connects with default options. See [`Store::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(StoreOptions::new(url)).await
    }

    /// Connects to `sqlite://…` (creating the file's directory; add `?mode=rwc` to create the
    /// file, which [`default_sqlite_url`] does; WAL journal, `synchronous=NORMAL`, busy timeout)
    /// or `postgres://…` / `postgresql://…` (TLS via rustls when the URL asks for it). Does not
    /// run migrations: call [`Store::migrate`].
    pub async fn connect_with(opts: StoreOptions) -> Result<Self, StoreError> {
        let url = opts.url.trim().to_owned();
        let mut co = ConnectOptions::new(url.clone());
        co.max_connections(opts.max_connections.max(1))
            .min_connections(0)
            .connect_timeout(opts.connect_timeout)
            .acquire_timeout(opts.connect_timeout)
            .sqlx_logging(false);
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or("");
            let in_memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
            if !in_memory
                && let Some(parent) = Path::new(path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            let busy = opts.sqlite_busy_timeout;
            co.map_sqlx_sqlite_opts(move |o| {
                let o = o.busy_timeout(busy).foreign_keys(false);
                if in_memory {
                    o
                } else {
                    o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                }
            });
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if let Some(schema) = &opts.pg_schema {
                co.set_schema_search_path(schema.clone());
            }
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(&url)));
        }
        let db = Database::connect(co).await?;
        Ok(Store { db })
    }

    /// Wraps an existing sea-orm connection.
    pub fn from_connection(db: DatabaseConnection) -> Self {
        Store { db }
    }

    /// The underlying sea-orm connection.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// SQLite or PostgreSQL.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migration::migrate(&self.db).await
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// Hides a password in a URL for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_url_points_into_the_data_dir() {
        assert_eq!(
            default_sqlite_url(Path::new("./tollgate-data")),
            "sqlite://./tollgate-data/tollgate.sqlite?mode=rwc"
        );
        assert_eq!(
            default_sqlite_url(Path::new("/var/lib/tg/")),
            "sqlite:///var/lib/tg/tollgate.sqlite?mode=rwc"
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("mysql://u:pw@h/db"), "mysql://***@h/db");
    }
}
