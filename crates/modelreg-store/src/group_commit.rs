//! Group commit for the SQLite backend.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and SQLite has one
//! writer: one create per transaction is bounded by the disk's fsync rate, whatever the
//! CPU. Here creates and updates are queued to one thread. It takes what has queued (up to
//! `MAX_BATCH`), runs each write in its own savepoint of one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller. So every acknowledged write is on disk,
//! as before, and N writes that arrive together cost one fsync.
//!
//! The thread has its own connection and runs the statements on it directly (rusqlite), not
//! through sqlx: sqlx hands every statement to its connection's thread and back, and with
//! ten statements to a create those thread wake-ups, not SQLite, bounded the writer (about
//! 1 ms per create; docs/performance.md). The sqlx writer pool stays for the rarer writes
//! (deletes, verification results, tokens, key rotation); SQLite's write lock and busy
//! timeout order the two connections.
//!
//! A write that fails (a taken resource_uri, a version that moved on) rolls back to its own
//! savepoint and leaves the others in the batch alone. If the commit itself fails, every
//! write of the batch gets that error, and none of them is stored.
//!
//! A write is queued whole: a caller that goes away after queuing does not cancel it, so a
//! client that disconnects may find its write stored, as with any database whose commit
//! raced a disconnect.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use modelreg_core::{
    Error, Result,
    audit::AuditEntry,
    model::Model,
    resource_uri::ResourceUri,
    store::{ModelChange, NewModel},
    tenant::TenantScope,
    timestamp::Timestamp,
};
use rusqlite::{
    Connection, OpenFlags, ToSql,
    types::{ToSqlOutput, Value, ValueRef},
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    rows::{bind_audit_text, bind_fields, json, model_from_row, next_audit_event},
    sql::{self, first_free, uri_range},
    sqlite_direct::DirectRow,
};

/// Writes per transaction at most. A create takes well under 0.1 ms of SQLite's time, so a
/// full batch holds the write lock for a few milliseconds.
const MAX_BATCH: usize = 64;
/// Writes waiting at most; past it, callers wait to queue.
const QUEUE: usize = 1024;

pub(crate) enum Write {
    Insert {
        scope: TenantScope,
        new: NewModel,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<Model>>,
    },
    /// All of them or none (one savepoint).
    InsertMany {
        scope: TenantScope,
        news: Vec<NewModel>,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<u64>>,
    },
    Update {
        scope: TenantScope,
        change: ModelChange,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<Option<Model>>>,
    },
}

/// A write that ran and waits for the batch's commit to be answered.
enum Done {
    Insert(oneshot::Sender<Result<Model>>, Result<Model>),
    InsertMany(oneshot::Sender<Result<u64>>, Result<u64>),
    Update(
        oneshot::Sender<Result<Option<Model>>>,
        Result<Option<Model>>,
    ),
}

impl Done {
    /// Whether the write changed anything that must be kept.
    fn keeps(&self) -> bool {
        match self {
            Done::Insert(_, r) => r.is_ok(),
            Done::InsertMany(_, r) => r.is_ok(),
            Done::Update(_, r) => matches!(r, Ok(Some(_))),
        }
    }

    /// Answers the caller. A write that ran without error in a batch that did not commit
    /// gets `failed`.
    fn answer(self, failed: Option<&Error>) {
        // A caller that went away no longer needs its answer.
        fn settled<T>(r: Result<T>, failed: Option<&Error>) -> Result<T> {
            match (r, failed) {
                (Ok(_), Some(e)) => Err(copy(e)),
                (r, _) => r,
            }
        }
        match self {
            Done::Insert(reply, r) => drop(reply.send(settled(r, failed))),
            Done::InsertMany(reply, r) => drop(reply.send(settled(r, failed))),
            Done::Update(reply, r) => drop(reply.send(settled(r, failed))),
        }
    }
}

impl Write {
    fn fail(self, e: &Error) {
        match self {
            Write::Insert { reply, .. } => drop(reply.send(Err(copy(e)))),
            Write::InsertMany { reply, .. } => drop(reply.send(Err(copy(e)))),
            Write::Update { reply, .. } => drop(reply.send(Err(copy(e)))),
        }
    }

    fn run(self, conn: &Connection) -> Done {
        match self {
            Write::Insert {
                scope,
                new,
                audit,
                reply,
            } => Done::Insert(reply, insert(conn, &scope, &new, &audit)),
            Write::InsertMany {
                scope,
                news,
                audit,
                reply,
            } => Done::InsertMany(
                reply,
                news.iter()
                    .try_for_each(|new| insert(conn, &scope, new, &audit).map(drop))
                    .map(|()| news.len() as u64),
            ),
            Write::Update {
                scope,
                change,
                audit,
                reply,
            } => Done::Update(reply, update(conn, &scope, &change, &audit)),
        }
    }
}

/// The batch's failure, for each of its writes. Only the two kinds a transaction can end
/// with occur here.
fn copy(e: &Error) -> Error {
    match e {
        Error::Unavailable(m) => Error::Unavailable(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

/// The queue's sending end, held by the store.
pub(crate) struct Writer {
    /// `None` once the store is closed.
    queue: Mutex<Option<mpsc::Sender<Write>>>,
    /// Answered when the thread has finished and closed its connection.
    finished: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
    /// Transactions the writer has committed (read by tests, to see writes grouped).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Opens a writer connection to the database at `path` (already migrated) and starts the
    /// thread that commits what it is sent.
    pub(crate) fn start(path: &Path, busy_timeout: Duration) -> Result<Writer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error)?;
        // The same settings as the sqlx connections: durable commits, enforced foreign keys,
        // deleted rows overwritten.
        conn.busy_timeout(busy_timeout).map_err(sqlite_error)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )
        .map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(32);
        let (tx, rx) = mpsc::channel(QUEUE);
        let (finished_tx, finished_rx) = oneshot::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("modelreg-writer".into())
            .spawn(move || {
                commit_loop(&conn, rx, &counted);
                drop(conn);
                let _ = finished_tx.send(());
            })
            .map_err(|e| Error::Unavailable(format!("cannot start the database writer: {e}")))?;
        Ok(Writer {
            queue: Mutex::new(Some(tx)),
            finished: tokio::sync::Mutex::new(Some(finished_rx)),
            commits,
        })
    }

    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    pub(crate) async fn insert(
        &self,
        scope: &TenantScope,
        new: NewModel,
        audit: &AuditEntry,
    ) -> Result<Model> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.call(|reply| Write::Insert {
            scope,
            new,
            audit,
            reply,
        })
        .await
    }

    pub(crate) async fn insert_many(
        &self,
        scope: &TenantScope,
        news: Vec<NewModel>,
        audit: &AuditEntry,
    ) -> Result<u64> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.call(|reply| Write::InsertMany {
            scope,
            news,
            audit,
            reply,
        })
        .await
    }

    pub(crate) async fn update(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.call(|reply| Write::Update {
            scope,
            change,
            audit,
            reply,
        })
        .await
    }

    /// Queues the write `make` builds around its reply channel, and waits for the answer.
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Write) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, write: Write) -> Result<()> {
        let queue = self
            .queue
            .lock()
            .ok()
            .and_then(|q| q.clone())
            .ok_or_else(stopped)?;
        queue.send(write).await.map_err(|_| stopped())
    }

    /// Stops taking writes, lets the queued ones finish, and waits for the connection to
    /// close.
    pub(crate) async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(finished) = self.finished.lock().await.take() {
            let _ = finished.await;
        }
    }
}

fn stopped() -> Error {
    Error::Unavailable("the database writer has stopped".into())
}

fn commit_loop(conn: &Connection, mut queue: mpsc::Receiver<Write>, commits: &AtomicU64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        if commit_batch(conn, &mut batch) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs and commits one batch, and answers each of its writes. Whether it committed.
fn commit_batch(conn: &Connection, batch: &mut Vec<Write>) -> bool {
    // IMMEDIATE takes the write lock up front, so no statement of the batch fails on lock
    // upgrade when another connection writes too.
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = sqlite_error(e);
        batch.drain(..).for_each(|w| w.fail(&e));
        return false;
    }
    let mut done = Vec::with_capacity(batch.len());
    let mut broken = None;
    for w in batch.drain(..) {
        if let Some(e) = &broken {
            w.fail(e);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT one_write") {
            let e = sqlite_error(e);
            w.fail(&e);
            broken = Some(e);
            continue;
        }
        let d = w.run(conn);
        let end = if d.keeps() {
            conn.execute_batch("RELEASE one_write")
        } else {
            conn.execute_batch("ROLLBACK TO one_write; RELEASE one_write")
        };
        done.push(d);
        if let Err(e) = end {
            broken = Some(sqlite_error(e));
        } else if conn.is_autocommit() {
            // After SQLITE_FULL or an I/O error SQLite may roll the whole transaction back
            // by itself: nothing of the batch can be trusted to commit.
            broken = Some(Error::Unavailable(
                "the database rolled the transaction back".into(),
            ));
        }
    }
    let failed = match broken {
        Some(e) => Some(e),
        None => conn.execute_batch("COMMIT").err().map(sqlite_error),
    };
    if failed.is_some()
        && !conn.is_autocommit()
        && let Err(r) = conn.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %r, "rollback of a failed batch failed");
    }
    if let Some(e) = &failed {
        tracing::warn!(error = %e, writes = done.len(), "a batch of writes did not commit");
    }
    let committed = failed.is_none();
    for d in done {
        d.answer(failed.as_ref());
    }
    committed
}

/// Statement parameters, collected with the same `bind` chain as sqlx's queries (so
/// `bind_fields!` serves both).
#[derive(Default)]
struct Params {
    values: Vec<Value>,
    /// The first value that could not be converted; the statement then fails with it.
    error: Option<rusqlite::Error>,
}

impl Params {
    fn bind<T: ToSql>(mut self, v: T) -> Params {
        let value = match v.to_sql() {
            Ok(ToSqlOutput::Borrowed(r)) => match r {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                // Borrowed text comes from a Rust string, so it is UTF-8.
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            },
            Ok(ToSqlOutput::Owned(v)) => v,
            Ok(_) => {
                let unsupported = rusqlite::Error::ToSqlConversionFailure(
                    "a parameter kind the writer does not bind".into(),
                );
                self.error.get_or_insert(unsupported);
                Value::Null
            }
            Err(e) => {
                self.error.get_or_insert(e);
                Value::Null
            }
        };
        self.values.push(value);
        self
    }

    fn values(self) -> rusqlite::Result<rusqlite::ParamsFromIter<Vec<Value>>> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(rusqlite::params_from_iter(self.values)),
        }
    }
}

fn execute(conn: &Connection, sql: &str, params: Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params.values()?)
}

/// Maps a SQLite error to the domain error: busy, locked, full and I/O trouble are
/// `Unavailable` (503), the rest `Internal`.
fn sqlite_error(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen
            ) =>
        {
            Error::Unavailable(format!("the database is busy or full: {e}"))
        }
        _ => Error::Internal(format!("database error: {e}")),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

fn scoped(scope: &TenantScope) -> Params {
    Params::default()
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
}

fn insert(
    conn: &Connection,
    scope: &TenantScope,
    new: &NewModel,
    audit: &AuditEntry,
) -> Result<Model> {
    let uri = if new.generated {
        free_generated_uri(conn, scope, &new.resource_uri)?
    } else {
        new.resource_uri.clone()
    };
    let now = new.now.to_string();
    let params = bind_fields!(Params::default(), &new.fields)
        .bind(new.id.to_string())
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(uri.as_str())
        .bind(now.clone())
        .bind(now)
        .bind(new.actor.clone())
        .bind(new.actor.clone())
        .bind(json(&new.credentials.fields))
        .bind(new.credentials.kek_id.clone())
        .bind(new.credentials.blob.clone());
    match execute(conn, &sql::INSERT_MODEL.sqlite, params) {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::AlreadyExists(format!(
                "a model with resource_uri '{uri}' already exists in this project"
            )));
        }
        Err(e) => return Err(sqlite_error(e)),
    }
    replace_tags(conn, scope, new.id, &new.fields.tags)?;
    add_to_count(conn, scope, 1)?;
    append_audit(conn, scope, new.id, uri.as_str(), audit, new.now)?;
    fetch_model(conn, scope, new.id)
}

fn update(
    conn: &Connection,
    scope: &TenantScope,
    change: &ModelChange,
    audit: &AuditEntry,
) -> Result<Option<Model>> {
    let params = bind_fields!(Params::default(), &change.fields)
        .bind(change.now.to_string())
        .bind(change.actor.clone())
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(change.id.to_string())
        .bind(change.expected_version);
    if execute(conn, &sql::UPDATE_MODEL.sqlite, params).map_err(sqlite_error)? == 0 {
        return Ok(None);
    }
    if let Some(c) = &change.credentials {
        let params = Params::default()
            .bind(json(&c.fields))
            .bind(c.kek_id.clone())
            .bind(c.blob.clone())
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(change.id.to_string());
        execute(conn, &sql::UPDATE_CREDENTIALS.sqlite, params).map_err(sqlite_error)?;
    }
    replace_tags(conn, scope, change.id, &change.fields.tags)?;
    // No change in number, but the lists may see it: a new generation.
    add_to_count(conn, scope, 0)?;
    let model = fetch_model(conn, scope, change.id)?;
    append_audit(
        conn,
        scope,
        model.id,
        model.resource_uri.as_str(),
        audit,
        change.now,
    )?;
    Ok(Some(model))
}

/// The smallest free generated uri. The writer holds the write lock, so nobody else can
/// take it before the insert.
fn free_generated_uri(
    conn: &Connection,
    scope: &TenantScope,
    base: &ResourceUri,
) -> Result<ResourceUri> {
    let (from, to) = uri_range(base.as_str());
    let mut stmt = conn
        .prepare_cached(&sql::URIS_IN_RANGE.sqlite)
        .map_err(sqlite_error)?;
    let taken = scoped(scope)
        .bind(from)
        .bind(to)
        .values()
        .and_then(|params| {
            stmt.query_map(params, |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sqlite_error)?;
    Ok(first_free(base, &taken))
}

fn replace_tags(conn: &Connection, scope: &TenantScope, id: Uuid, tags: &[String]) -> Result<()> {
    let id = id.to_string();
    execute(
        conn,
        &sql::DELETE_TAGS.sqlite,
        Params::default().bind(id.clone()),
    )
    .map_err(sqlite_error)?;
    for tag in tags {
        let params = Params::default()
            .bind(id.clone())
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(tag.as_str());
        execute(conn, &sql::INSERT_TAG.sqlite, params).map_err(sqlite_error)?;
    }
    Ok(())
}

/// Keeps `model_counts` in step with an insert (+1), in the same transaction; 0 only moves
/// the generation.
fn add_to_count(conn: &Connection, scope: &TenantScope, delta: i64) -> Result<()> {
    execute(conn, &sql::COUNT_ADD.sqlite, scoped(scope).bind(delta))
        .map(drop)
        .map_err(sqlite_error)
}

/// Appends an audit event to the organization's chain, in the writer's transaction.
fn append_audit(
    conn: &Connection,
    scope: &TenantScope,
    model_id: Uuid,
    resource_uri: &str,
    entry: &AuditEntry,
    at: Timestamp,
) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(&sql::AUDIT_LAST.sqlite)
        .map_err(sqlite_error)?;
    let last = stmt
        .query_row([scope.org.as_str()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sqlite_error)?;
    let event = next_audit_event(scope, model_id, resource_uri, entry, at, last);
    let params = bind_audit_text!(Params::default(), &event);
    execute(conn, &sql::AUDIT_INSERT.sqlite, params)
        .map(drop)
        .map_err(sqlite_error)
}

fn fetch_model(conn: &Connection, scope: &TenantScope, id: Uuid) -> Result<Model> {
    let mut stmt = conn
        .prepare_cached(&sql::MODEL_BY_ID.sqlite)
        .map_err(sqlite_error)?;
    let params = scoped(scope)
        .bind(id.to_string())
        .values()
        .map_err(sqlite_error)?;
    let mut rows = stmt.query(params).map_err(sqlite_error)?;
    let row = rows
        .next()
        .map_err(sqlite_error)?
        .ok_or_else(|| Error::Internal(format!("model {id} vanished inside its own write")))?;
    model_from_row(&DirectRow::new(row))
}
