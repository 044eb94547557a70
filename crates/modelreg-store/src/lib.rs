//! Storage backends of modelreg. `open` picks one from a database URL.

mod list_query;
mod rows;
pub mod sqlite;

use std::{path::Path, sync::Arc};

use modelreg_core::{Error, Result, store::Store};

pub use sqlite::SqliteStore;

/// Opens the store a URL names and brings its schema up to date. `sqlite://PATH` (or
/// `sqlite:PATH`) is the embedded backend; PostgreSQL is not built yet.
pub async fn open(database_url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(database_url) {
        let store = SqliteStore::open(Path::new(path)).await?;
        return Ok(Arc::new(store));
    }
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Err(Error::InvalidRequest(
            "the PostgreSQL backend is not available in this version; use sqlite://PATH".into(),
        ));
    }
    Err(Error::InvalidRequest(format!(
        "unsupported database URL {:?}; expected sqlite://PATH",
        redact_url(database_url)
    )))
}

/// The file path of a `sqlite:` URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then_some(path)
}

/// A URL with any password replaced, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Maps a database error to the domain error. Connection trouble is `Unavailable` (503); the
/// rest is `Internal`, with the detail kept for the log.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => Error::Unavailable("the database is unavailable".into()),
        sqlx::Error::Database(d)
            if matches!(d.code().as_deref(), Some("5" | "6" | "261" | "517" | "13")) =>
        {
            // SQLITE_BUSY, SQLITE_LOCKED and their extended codes; SQLITE_FULL.
            Error::Unavailable(format!("the database is busy or full: {}", d.message()))
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
    }
}
