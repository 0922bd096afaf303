//! Persistence of lutece over SQLite.
//!
//! What do we store? Everything that must survive a restart of the control plane: tenants, API
//! keys (as hashes), agent join tokens (as hashes), nodes, jobs with their tasks and their
//! state history times, and usage records. What the scheduler needs (free resources per node)
//! is rebuilt from the tasks that are not finished; nothing derived is stored twice.
//!
//! Writes go through one connection, so transactions never race for SQLite's write lock;
//! reads use a pool of their own and see committed data (WAL mode).

mod audit;
mod data;
mod deployments;
mod fleet;
mod jobs;
mod limits;
mod migrate;
mod quotas;
mod rows;
mod tenancy;
mod tokens;

pub use audit::{AuditHeads, AuditLine};
pub use data::{DataPlacementRow, DeletionRow, EncryptionKeyRow, FileRow};
pub use deployments::{DeploymentRow, ReplicaRow};
pub use jobs::{Allocation, NodeTask};
pub use limits::{GatewayKey, LimitsRow};
pub use quotas::GpuQuotaRow;
pub use rows::{JobRow, KeyRow, NewJob, NodeRow, TaskOutcome, TaskRow, TenantRow, UsageSummaryRow};
pub use tokens::TokenUsageRow;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// Why a store call failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique name or id is already taken.
    #[error("{what} already exists")]
    Conflict { what: String },
    /// The row to change does not exist (or is not in a state that allows the change).
    #[error("{what} not found")]
    NotFound { what: String },
    /// The row exists and the caller may see it, but not change it this way.
    #[error("{reason}")]
    Denied { reason: String },
    /// A stored value could not be read back (a bug or a damaged database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives a crash of the machine, not only of the process.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten, not left in free pages: a destroyed key is gone.
            .pragma("secure_delete", "on")
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrate::run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Store { writer, reader })
    }

    /// Reads and changes one `meta` value, e.g. whether the platform was bootstrapped.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let value = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?;
        Ok(value)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Closes both pools, waiting for in-flight statements.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict_or(error: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Database(error),
    }
}

#[cfg(test)]
mod tests;
