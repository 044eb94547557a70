//! Point reads on SQLite without a trip through sqlx's connection thread.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every command and every
//! row across a channel. For a read that costs SQLite a few microseconds, the thread wake-ups
//! on each side cost far more than the read: in the profile of a cached list they were most of
//! the server's CPU (docs/performance.md). The reads here are each one row by a unique key (a
//! token by its hash, a project's generation, a model by its resource URI or id), so they run
//! inline on the calling thread, on a small pool of read-only connections whose statements are
//! prepared once.
//!
//! A read that cannot be served here (the database busy beyond a short wait, or any other
//! error) returns `None`, and the caller takes the ordinary path, which reports errors in the
//! usual way. In WAL mode a reader waits on nothing but a rare WAL recovery.

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use modelreg_core::{Result, timestamp::Timestamp};
use rusqlite::{Connection, OpenFlags, Row, params_from_iter, types::Value};
use uuid::Uuid;

use crate::rows::{RowAccess, corrupt, text_timestamp, text_uuid};

/// Connections kept idle. Callers are tokio worker threads (one per core), so a few suffice.
const IDLE: usize = 4;
/// Longer than this and the read goes the ordinary way instead of holding a worker thread.
const BUSY_WAIT: Duration = Duration::from_millis(20);

pub(crate) struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by `close`: no connection is opened or kept after it.
    closed: AtomicBool,
}

impl DirectReads {
    pub(crate) fn new(path: &Path) -> DirectReads {
        DirectReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_WAIT)?;
        // Point reads touch a few pages each: a small page cache per connection (512 KiB).
        conn.pragma_update(None, "cache_size", -512)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Closes the idle connections (a read in progress closes its own when it ends), so the
    /// writer's close can be the last and remove the WAL.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Runs `read` on a pooled connection; `None` when no connection could be had.
    fn with_connection<T>(&self, read: impl FnOnce(&Connection) -> Option<T>) -> Option<T> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(c) => c,
            None => self
                .connect()
                .inspect_err(|e| tracing::debug!(error = %e, "direct SQLite read unavailable"))
                .ok()?,
        };
        let out = read(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE
            && !self.closed.load(Ordering::SeqCst)
        {
            idle.push(conn);
        }
        out
    }

    /// One row of `sql` with `params`, mapped by `map`; `Some(None)` when there is no row,
    /// `None` when the read could not be made here.
    pub(crate) fn row<T>(
        &self,
        sql: &str,
        params: &[&str],
        map: impl FnOnce(&DirectRow<'_>) -> Result<T>,
    ) -> Option<Option<T>> {
        self.with_connection(|conn| {
            let read = (|| {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(params_from_iter(params.iter()))?;
                Ok::<_, rusqlite::Error>(rows.next()?.map(|row| map(&DirectRow::new(row))))
            })();
            match read {
                Ok(Some(Ok(v))) => Some(Some(v)),
                Ok(None) => Some(None),
                // A row that does not decode goes the ordinary way, which reports it.
                Ok(Some(Err(_))) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "direct SQLite read fell back");
                    None
                }
            }
        })
    }

    /// Every row of `sql` with `params`, mapped by `map`; `None` when the read could not be
    /// made here. Only for statements whose work is bounded (a page that seeks in an index):
    /// it runs on the calling thread.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: Vec<Value>,
        mut map: impl FnMut(&DirectRow<'_>) -> Result<T>,
    ) -> Option<Vec<T>> {
        self.with_connection(|conn| {
            let read = (|| {
                let mut stmt = conn.prepare_cached(sql)?;
                let names: Vec<String> =
                    stmt.column_names().into_iter().map(String::from).collect();
                let mut rows = stmt.query(params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let names = names.iter().map(String::as_str).collect();
                    match map(&DirectRow { row, names }) {
                        Ok(v) => out.push(v),
                        Err(_) => return Ok(None),
                    }
                }
                Ok::<_, rusqlite::Error>(Some(out))
            })();
            read.inspect_err(|e| tracing::debug!(error = %e, "direct SQLite read fell back"))
                .ok()
                .flatten()
        })
    }
}

/// sea-query's values as rusqlite's; `None` if one is of a kind the list statements never
/// bind (the caller then takes the sqlx path).
pub(crate) fn values(values: sea_query::Values) -> Option<Vec<Value>> {
    use sea_query::Value as V;
    fn or_null<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    values
        .0
        .into_iter()
        .map(|v| {
            Some(match v {
                V::Bool(b) => or_null(b, |b| Value::Integer(b.into())),
                V::TinyInt(i) => or_null(i, |i| Value::Integer(i.into())),
                V::SmallInt(i) => or_null(i, |i| Value::Integer(i.into())),
                V::Int(i) => or_null(i, |i| Value::Integer(i.into())),
                V::BigInt(i) => or_null(i, Value::Integer),
                V::TinyUnsigned(u) => or_null(u, |u| Value::Integer(u.into())),
                V::SmallUnsigned(u) => or_null(u, |u| Value::Integer(u.into())),
                V::Unsigned(u) => or_null(u, |u| Value::Integer(u.into())),
                V::BigUnsigned(None) => Value::Null,
                V::BigUnsigned(Some(u)) => Value::Integer(i64::try_from(u).ok()?),
                V::Float(f) => or_null(f, |f| Value::Real(f.into())),
                V::Double(f) => or_null(f, Value::Real),
                V::String(s) => or_null(s, Value::Text),
                V::Char(c) => or_null(c, |c| Value::Text(c.to_string())),
                V::Bytes(b) => or_null(b, Value::Blob),
                _ => return None,
            })
        })
        .collect()
}

/// A row with its statement's column names, read once. rusqlite's lookup by name reads and
/// measures every column's name on each call, which made it 9% of a `get`'s CPU.
pub(crate) struct DirectRow<'a> {
    row: &'a Row<'a>,
    names: Vec<&'a str>,
}

impl<'a> DirectRow<'a> {
    pub(crate) fn new(row: &'a Row<'a>) -> DirectRow<'a> {
        DirectRow {
            row,
            names: row.as_ref().column_names(),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> Result<T> {
        let idx = self
            .names
            .iter()
            .position(|n| *n == col)
            .ok_or_else(|| corrupt(col, "no such column"))?;
        self.row.get(idx).map_err(|e| corrupt(col, e))
    }
}

impl RowAccess for DirectRow<'_> {
    fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.get(col)
    }
    fn opt_real(&self, col: &str) -> Result<Option<f64>> {
        self.get(col)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.get(col)
    }
    fn uuid(&self, col: &str) -> Result<Uuid> {
        text_uuid(self, col)
    }
    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>> {
        text_timestamp(self, col)
    }
}
