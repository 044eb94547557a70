//! What the store asks of a database connection, and the only place that knows there are two
//! kinds: run a statement, read rows, take a lock for the rest of the transaction.
//!
//! `store.rs` writes every read and every write once, against `Exec`; the SQLite
//! (`sqlite.rs`) and PostgreSQL (`postgres.rs`) backends implement it, and differ only in what
//! really differs: how a transaction starts and where it runs, how a value is bound, and how
//! a lock is taken.

use std::future::Future;

use modelreg_core::{Error, Result, timestamp::Timestamp};
use uuid::Uuid;

/// The backend a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter. Each kind carries its own null, because PostgreSQL types every
/// parameter: a null of the wrong type does not match its column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(bool),
    Blob(Vec<u8>),
    /// A uuid column: text on SQLite, uuid on PostgreSQL.
    Uuid(Option<Uuid>),
    /// A time column: fixed-width RFC 3339 text on SQLite, timestamptz on PostgreSQL.
    Time(Option<Timestamp>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(Some(v))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Value {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        Value::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        Value::Int(v)
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Value {
        Value::Real(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Value {
        Value::Uuid(Some(v))
    }
}
impl From<Option<Uuid>> for Value {
    fn from(v: Option<Uuid>) -> Value {
        Value::Uuid(v)
    }
}
impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Value {
        Value::Time(Some(v))
    }
}
impl From<Option<Timestamp>> for Value {
    fn from(v: Option<Timestamp>) -> Value {
        Value::Time(v)
    }
}

/// `params![a, b, …]`: a statement's parameters, each converted with `Value::from`.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::exec::Value::from($v)),*]
    };
}
pub(crate) use params;

/// The text of a statement for a dialect: a `sql::Statement` (written once, both placeholder
/// styles) or a statement built for the dialect at hand.
pub trait Sql: Sync {
    fn text(&self, dialect: Dialect) -> &str;
}

impl Sql for str {
    fn text(&self, _: Dialect) -> &str {
        self
    }
}

impl<S: Sql + ?Sized> Sql for &S {
    fn text(&self, dialect: Dialect) -> &str {
        (**self).text(dialect)
    }
}

impl Sql for String {
    fn text(&self, _: Dialect) -> &str {
        self
    }
}

/// A connection inside a transaction (writes) or not (reads). Errors are the domain's: a
/// unique violation is `AlreadyExists` (with the database's detail), trouble with the
/// database `Unavailable`, the rest `Internal`.
pub trait Exec: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; the number of rows it changed.
    fn execute(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: Vec<Value>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Every row of a query, each read by `map`.
    fn fetch<T: Send>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: Vec<Value>,
        map: impl FnMut(&dyn RowAccess) -> Result<T> + Send,
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    /// Takes `key` until the transaction ends, so that writers of one key go one at a time.
    /// (SQLite has one writer: there it is already taken.)
    fn lock(&mut self, key: String) -> impl Future<Output = Result<()>> + Send;

    /// The first row of a query, if any.
    fn fetch_optional<T: Send>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: Vec<Value>,
        map: impl FnMut(&dyn RowAccess) -> Result<T> + Send,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move { Ok(self.fetch(sql, params, map).await?.into_iter().next()) }
    }
}

/// Typed column access over a backend's row.
pub trait RowAccess {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn opt_real(&self, col: &str) -> Result<Option<f64>>;
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;
    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>>;

    fn timestamp(&self, col: &str) -> Result<Timestamp> {
        self.opt_timestamp(col)?.ok_or_else(|| corrupt(col, "null"))
    }
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored row has an invalid {what}: {detail}"))
}
