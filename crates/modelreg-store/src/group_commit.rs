//! Group commit for the SQLite backend.
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and SQLite has one
//! writer: one create per transaction is bounded by the disk's fsync rate, whatever the
//! CPU. Here creates and updates are queued to one task. It takes what has queued (up to
//! `MAX_BATCH`), runs each write in its own savepoint of one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller. So every acknowledged write is on disk,
//! as before, and N writes that arrive together cost one fsync.
//!
//! A write that fails (a taken resource_uri, a version that moved on) rolls back to its own
//! savepoint and leaves the others in the batch alone. If the commit itself fails, every
//! write of the batch gets that error, and none of them is stored.
//!
//! A write is queued whole: a caller that goes away after queuing does not cancel it, so a
//! client that disconnects may find its write stored, as with any database whose commit
//! raced a disconnect.

use modelreg_core::{
    Error, Result,
    audit::AuditEntry,
    model::Model,
    store::{ModelChange, NewModel},
    tenant::TenantScope,
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::db_error;

/// Writes per transaction at most. A create takes about 0.1 ms of CPU, so a full batch holds
/// the writer for a few milliseconds.
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
            Done::Update(_, r) => matches!(r, Ok(Some(_))),
        }
    }

    /// Answers the caller. A write that ran without error in a batch that did not commit
    /// gets `failed`.
    fn answer(self, failed: Option<&Error>) {
        // A caller that went away no longer needs its answer.
        match self {
            Done::Insert(reply, r) => {
                let _ = reply.send(match (r, failed) {
                    (Ok(_), Some(e)) => Err(copy(e)),
                    (r, _) => r,
                });
            }
            Done::Update(reply, r) => {
                let _ = reply.send(match (r, failed) {
                    (Ok(_), Some(e)) => Err(copy(e)),
                    (r, _) => r,
                });
            }
        }
    }
}

impl Write {
    fn fail(self, e: &Error) {
        match self {
            Write::Insert { reply, .. } => {
                let _ = reply.send(Err(copy(e)));
            }
            Write::Update { reply, .. } => {
                let _ = reply.send(Err(copy(e)));
            }
        }
    }

    async fn run(self, tx: &mut Transaction<'static, Sqlite>) -> Done {
        match self {
            Write::Insert {
                scope,
                new,
                audit,
                reply,
            } => Done::Insert(
                reply,
                crate::sqlite::insert_in(tx, &scope, &new, &audit).await,
            ),
            Write::Update {
                scope,
                change,
                audit,
                reply,
            } => Done::Update(
                reply,
                crate::sqlite::update_in(tx, &scope, &change, &audit).await,
            ),
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
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Write>,
    /// Transactions the writer has committed (read by tests, to see writes grouped).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the task that commits what `write` (a pool of one connection) is sent.
    pub(crate) fn start(write: SqlitePool) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(commit_loop(write, rx, commits.clone()));
        Writer { queue: tx, commits }
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
        let (reply, answer) = oneshot::channel();
        self.send(Write::Insert {
            scope: scope.clone(),
            new,
            audit: audit.clone(),
            reply,
        })
        .await?;
        answer.await.map_err(|_| stopped())?
    }

    pub(crate) async fn update(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::Update {
            scope: scope.clone(),
            change,
            audit: audit.clone(),
            reply,
        })
        .await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn send(&self, write: Write) -> Result<()> {
        self.queue.send(write).await.map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Unavailable("the database writer has stopped".into())
}

async fn commit_loop(write: SqlitePool, mut queue: mpsc::Receiver<Write>, commits: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if commit_batch(&write, &mut batch).await {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs and commits one batch, and answers each of its writes. Whether it committed.
async fn commit_batch(write: &SqlitePool, batch: &mut Vec<Write>) -> bool {
    // IMMEDIATE takes the write lock up front (see `SqliteStore::begin_write`).
    let mut tx = match write.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = db_error(e);
            batch.drain(..).for_each(|w| w.fail(&e));
            return false;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut broken = None;
    for w in batch.drain(..) {
        if let Some(e) = &broken {
            w.fail(e);
            continue;
        }
        if let Err(e) = statement(&mut tx, "SAVEPOINT one_write").await {
            w.fail(&e);
            broken = Some(e);
            continue;
        }
        let d = w.run(&mut tx).await;
        let end = if d.keeps() {
            statement(&mut tx, "RELEASE one_write").await
        } else {
            match statement(&mut tx, "ROLLBACK TO one_write").await {
                Ok(()) => statement(&mut tx, "RELEASE one_write").await,
                e => e,
            }
        };
        done.push(d);
        if let Err(e) = end {
            // After SQLITE_FULL or an I/O error SQLite may have rolled the whole
            // transaction back: nothing of the batch can be trusted to commit.
            broken = Some(e);
        }
    }
    let failed = match broken {
        Some(e) => {
            if let Err(r) = tx.rollback().await {
                tracing::warn!(error = %r, "rollback of a failed batch failed");
            }
            Some(e)
        }
        None => tx.commit().await.err().map(db_error),
    };
    if let Some(e) = &failed {
        tracing::warn!(error = %e, writes = done.len(), "a batch of writes did not commit");
    }
    let committed = failed.is_none();
    for d in done {
        d.answer(failed.as_ref());
    }
    committed
}

async fn statement(tx: &mut Transaction<'static, Sqlite>, sql: &'static str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(db_error)
}
