//! The store's error type.

use sea_orm::DbErr;

/// Everything a store operation can fail with. `Invalid`, `NotFound` and `Conflict` are the
/// caller's fault (the management API answers 400 / 404 / 409); validation happens before any
/// write, so nothing is written when one of them is returned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A field failed validation (bad duration, negative budget, …).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The addressed row does not exist.
    #[error("{entity} `{id}` not found")]
    NotFound {
        /// Which kind of row (`key`, `team`, …).
        entity: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// A row with this id already exists.
    #[error("{entity} `{id}` already exists")]
    Conflict {
        /// Which kind of row.
        entity: &'static str,
        /// The duplicate id.
        id: String,
    },
    /// The database URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database url `{0}` (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    /// The OS random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Creating the SQLite data directory failed.
    #[error("cannot create data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl StoreError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid { field, message: message.into() }
    }

    pub(crate) fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound { entity, id: id.into() }
    }

    /// True for errors the caller caused (HTTP 4xx): `Invalid`, `NotFound`, `Conflict`.
    pub fn is_client_error(&self) -> bool {
        matches!(self, StoreError::Invalid { .. } | StoreError::NotFound { .. } | StoreError::Conflict { .. })
    }
}
