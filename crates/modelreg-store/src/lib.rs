//! Storage backends of modelreg: SQLite (embedded default) and PostgreSQL (scale-out).
//! `open` picks one from a database URL.

mod exec;
pub mod list_index;
mod list_query;
mod migrations;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod writes;

use std::{path::Path, sync::Arc, time::Duration};

use modelreg_core::{Error, Result, store::Store};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::SqlStore;

/// Settings of the store: the PostgreSQL backend's connection pool, and the list index.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections per replica. Budget: replicas × this ≤ the server's max_connections, less
    /// what other clients need.
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with 503.
    pub acquire_timeout: Duration,
    /// Server-side limit on one statement.
    pub statement_timeout: Duration,
    /// The most models kept in memory to answer lists (`list_index.rs`), over every project;
    /// 0 keeps none.
    pub list_index_max_models: u64,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
            list_index_max_models: list_index::MAX_MODELS,
        }
    }
}

/// Opens the store a URL names and brings its schema up to date: `sqlite://PATH` (or
/// `sqlite:PATH`) for the embedded backend, `postgres://…` (or `postgresql://…`) for
/// PostgreSQL.
pub async fn open(database_url: &str, settings: &PoolSettings) -> Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(database_url) {
        let mut store = SqliteStore::open(Path::new(path)).await?;
        store.limit_list_index(settings.list_index_max_models);
        return Ok(Arc::new(store));
    }
    if is_postgres(database_url) {
        let mut store = PostgresStore::open(database_url, settings)
            .await
            .map_err(|e| match e {
                Error::Unavailable(m) => {
                    Error::Unavailable(m.replace(database_url, &redact_url(database_url)))
                }
                other => other,
            })?;
        store.limit_list_index(settings.list_index_max_models);
        return Ok(Arc::new(store));
    }
    Err(Error::InvalidRequest(format!(
        "unsupported database URL {:?}; expected sqlite://PATH or postgres://…",
        redact_url(database_url)
    )))
}

/// An older binary must not run against a schema that a newer one migrated: its statements
/// could silently drop what the newer columns mean. The check runs before any migration.
pub(crate) fn refuse_newer_schema(
    newest_applied: Option<i64>,
    migrator: &sqlx::migrate::Migrator,
    place: &str,
) -> Result<()> {
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match newest_applied {
        Some(applied) if applied > known => Err(Error::Unavailable(format!(
            "{place} has schema version {applied}, newer than this modelreg {} understands \
             (up to {known}): it was upgraded by a newer modelreg. Run that version or a later \
             one; schemas are never downgraded.",
            env!("CARGO_PKG_VERSION")
        ))),
        _ => Ok(()),
    }
}

/// Counts of filtered lists, each with the project generation it was made at
/// (`list_query::filtered_page`). A count is reused only while its generation is the one read
/// with the page, in the page's own statement, so it is exact for that page's snapshot; any
/// write to the project, on any replica, moves the generation in the database and retires it.
/// Keyed by the tenant and the filters themselves (hashed with std's SipHash: they hold
/// tenants' search text), and evicted one entry at a time, a count read once first: one
/// tenant's stream of unique searches does not flush the counts other tenants repeat.
pub(crate) struct CountCache(
    quick_cache::sync::Cache<
        (
            modelreg_core::tenant::TenantScope,
            modelreg_core::list::Filters,
        ),
        (i64, u64),
    >,
);

impl Default for CountCache {
    fn default() -> Self {
        CountCache(quick_cache::sync::Cache::new(Self::CAPACITY))
    }
}

impl CountCache {
    /// Counts kept per process.
    const CAPACITY: usize = 4096;

    pub(crate) fn get(
        &self,
        scope: &modelreg_core::tenant::TenantScope,
        query: &modelreg_core::list::ListQuery,
        generation: i64,
    ) -> Option<u64> {
        self.0
            .get(&(scope.clone(), query.filters.clone()))
            .filter(|(g, _)| *g == generation)
            .map(|(_, n)| n)
    }

    pub(crate) fn put(
        &self,
        scope: &modelreg_core::tenant::TenantScope,
        query: &modelreg_core::list::ListQuery,
        generation: i64,
        count: u64,
    ) {
        self.0
            .insert((scope.clone(), query.filters.clone()), (generation, count));
    }
}

/// Whether a URL names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The file path of a `sqlite:` URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then_some(path)
}

/// A URL with any user and password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Maps a database error to the domain error. Connection trouble is `Unavailable` (503); the
/// rest is `Internal`, with the detail kept for the log.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    match &e {
        // A database that is gone, unreachable, or cut off mid-conversation (which shows as a
        // protocol or TLS error on the next read) is unavailable, not a bug of ours.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => {
            Error::Unavailable(format!("the database is unavailable: {e}"))
        }
        sqlx::Error::Database(d)
            if matches!(d.code().as_deref(), Some("5" | "6" | "261" | "517" | "13")) =>
        {
            // SQLITE_BUSY, SQLITE_LOCKED and their extended codes; SQLITE_FULL.
            Error::Unavailable(format!("the database is busy or full: {}", d.message()))
        }
        sqlx::Error::Database(d)
            if d.code().is_some_and(|c| {
                // PostgreSQL: connection exceptions (08), insufficient resources (53),
                // operator intervention such as shutdown and statement timeout (57),
                // serialization failure and deadlock (40).
                ["08", "53", "57", "40"]
                    .iter()
                    .any(|class| c.starts_with(class))
            }) =>
        {
            Error::Unavailable(format!("the database is unavailable: {}", d.message()))
        }
        _ => Error::Internal(format!("database error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(
            sqlite_path("sqlite://data/a.db?mode=rwc"),
            Some("data/a.db")
        );
        assert_eq!(sqlite_path("sqlite:a.db"), Some("a.db"));
        assert_eq!(sqlite_path("sqlite://"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://***@h/db");
        assert!(is_postgres("postgresql://h/db") && !is_postgres("sqlite://x"));
    }
}
