//! The embedded backend: one SQLite file in WAL mode, with one writer and one way to read.
//!
//! - **Writes** go to one thread with its own connection (group commit). It takes what has
//!   queued (up to `MAX_BATCH`), runs each write in its own savepoint of one
//!   `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. With
//!   `synchronous=FULL` every acknowledged write is on disk, and N writes that arrive together
//!   cost one fsync. A write that fails rolls back to its savepoint and leaves the others
//!   alone; if the commit fails, every write of the batch gets that error and none is stored.
//!   A write is queued whole: a caller that goes away after queuing does not cancel it.
//! - **Reads** run on a small pool of read-only connections, without a hand-off between
//!   threads: a point read or a bounded page runs inline on the calling thread (a few
//!   microseconds of SQLite's time, far less than waking another thread); anything that may
//!   scan runs on tokio's blocking pool, at most `READERS` at once.
//!
//! Both are rusqlite, not sqlx: sqlx runs each SQLite connection on a thread of its own and
//! hands every statement and row across a channel, and those wake-ups, not SQLite, bounded
//! creates (about 1 ms each) and cached lists (docs/performance.md). sqlx only applies the
//! migrations, on one connection that is closed before the store opens. Every connection's
//! settings are in `configure`. Other processes (`modelreg token create`, a second server)
//! wait on SQLite's write lock and busy timeout.

use std::{
    cell::Cell,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use modelreg_core::{Error, Result, store::PoolUsage, timestamp::Timestamp};
use rusqlite::{Connection, OpenFlags, Row, params_from_iter, types::Value as Sqlite};
use sqlx::{Connection as _, sqlite::SqliteConnectOptions};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    exec::{Dialect, Exec, RowAccess, Sql, Value, corrupt},
    rows::{text_timestamp, text_uuid},
    store::{Backend, Cost, Job, SqlStore},
};

/// The embedded store.
pub type SqliteStore = SqlStore<SqliteBackend>;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Scanning reads at once; connections kept idle. Four on this 2-core machine: eight served
/// the cold scenarios no faster (they are CPU-bound) and took the server to 150–180 MiB, each
/// scan holding a connection's page cache, its temporary tables and a malloc arena of its own
/// thread; four stay about 100 MiB (docs/performance.md, "[perf-cold]").
const READERS: u32 = 4;
/// Committed batches between two refreshes of the planner's statistics.
const OPTIMIZE_EVERY: u64 = 10_000;
/// Writes per transaction at most. A create takes well under 0.1 ms of SQLite's time, so a
/// full batch holds the write lock for a few milliseconds.
const MAX_BATCH: usize = 64;
/// Writes waiting at most; past it, callers wait to queue.
const QUEUE: usize = 1024;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            // The directory holds credentials (encrypted) and token hashes: owner only.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        without_memory_statistics();
        migrate(path).await?;
        let writer = Writer::start(open(path, Access::Write)?)?;
        Ok(SqlStore::new(SqliteBackend {
            writer,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                open: AtomicU32::new(0),
                closed: AtomicBool::new(false),
                scans: Arc::new(Semaphore::new(READERS as usize)),
                #[cfg(feature = "testing")]
                hold_scans: Default::default(),
            }),
        }))
    }
}

/// Turns SQLite's memory statistics off, before its first connection. They put one process-wide
/// mutex around every allocation SQLite makes; with a few scans at once (each fetching pages
/// and building temporary tables) the server spent 40% of its time waking and waiting on that
/// mutex (`perf`, filter-cold at 100,000 models). modelreg reads none of the statistics. Once
/// SQLite is initialized (a connection opened earlier in the process) the setting cannot
/// change, and the call does nothing.
fn without_memory_statistics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config with SQLITE_CONFIG_MEMSTATUS takes one int. It is only
        // allowed before sqlite3_initialize and returns SQLITE_MISUSE otherwise, changing
        // nothing; `Once` keeps this process from calling it twice at once.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized before its memory statistics could be turned off"
            );
        }
    });
}

/// Applies pending migrations on a connection of its own, closed when done.
async fn migrate(path: &Path) -> Result<()> {
    static MIGRATOR: &std::sync::LazyLock<sqlx::migrate::Migrator> = &crate::migrations::SQLITE;
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(crate::db_error)?
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| open_error(path, e))?;
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(crate::db_error)?;
    let newest: Option<i64> = if migrated {
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .map_err(crate::db_error)?
    } else {
        None
    };
    crate::refuse_newer_schema(
        newest,
        MIGRATOR,
        &format!("the database at {}", path.display()),
    )?;
    MIGRATOR.run(&mut conn).await.map_err(|e| {
        Error::Unavailable(format!(
            "cannot migrate the database at {}: {e}",
            path.display()
        ))
    })?;
    conn.close().await.map_err(crate::db_error)
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!(
        "cannot open the database at {}: {e}",
        path.display()
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// How much of the database file a connection maps (`PRAGMA mmap_size`): the whole of any
/// database up to about 10 million models. Mapped pages are the kernel's page cache, shared by
/// every connection; they show in the process's RSS as file pages, not as its own memory.
const MMAP_BYTES: u64 = 1 << 30;

/// Opens a connection with the settings every connection of the store has: WAL, durable
/// commits, enforced foreign keys, deleted rows overwritten, a busy timeout, cached
/// statements.
fn open(path: &Path, access: Access) -> Result<SqliteConn> {
    let flags = match access {
        Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_error)?;
    // Pages are read through a map of the database file (up to MMAP_BYTES of it), not copied
    // in with pread: each commit empties every other connection's page cache, and reading the
    // pages again through the map cost a fraction of the syscalls (docs/performance.md).
    let mut pragmas = format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; \
         PRAGMA mmap_size = {MMAP_BYTES};"
    );
    match access {
        // The planner's statistics, refreshed where a table changed enough since they were
        // made. Without them SQLite walks a sort's index through a filter that matches a
        // handful of rows, and checks search candidates through the table instead of
        // models_seq_tenant. Whole indexes are read (0.3 s at 100,000 models): a sample of
        // 1,000 rows (`analysis_limit`) took a project of 100,000 models for one of 1,000,
        // and a filtered list cost 28 ms on average against 14 ms (docs/performance.md).
        Access::Write => pragmas.push_str(
            " PRAGMA journal_mode = WAL; PRAGMA analysis_limit = 0; PRAGMA optimize = 0x10002;",
        ),
        // Reads touch a few pages each: a small page cache per connection (2 MiB).
        Access::Read => pragmas.push_str(" PRAGMA cache_size = -2048;"),
    }
    conn.execute_batch(&pragmas).map_err(sqlite_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(SqliteConn(conn))
}

/// A connection of the store, as `Exec`.
pub struct SqliteConn(Connection);

impl SqliteConn {
    fn statement<'s>(
        &'s self,
        sql: &(impl Sql + ?Sized),
    ) -> rusqlite::Result<rusqlite::CachedStatement<'s>> {
        self.0.prepare_cached(sql.text(Dialect::Sqlite))
    }
}

/// Our values as SQLite's: ids and times are text.
fn bind(values: Vec<Value>) -> impl Iterator<Item = Sqlite> {
    values.into_iter().map(|v| match v {
        Value::Text(t) => t.map_or(Sqlite::Null, Sqlite::Text),
        Value::Int(i) => i.map_or(Sqlite::Null, Sqlite::Integer),
        Value::Real(f) => f.map_or(Sqlite::Null, Sqlite::Real),
        Value::Bool(b) => Sqlite::Integer(b.into()),
        Value::Blob(b) => Sqlite::Blob(b),
        Value::Uuid(u) => u.map_or(Sqlite::Null, |u| Sqlite::Text(u.to_string())),
        Value::Time(t) => t.map_or(Sqlite::Null, |t| Sqlite::Text(t.to_string())),
    })
}

impl Exec for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &(impl Sql + ?Sized), params: Vec<Value>) -> Result<u64> {
        let changed = self
            .statement(sql)
            .and_then(|mut s| s.execute(params_from_iter(bind(params))))
            .map_err(sqlite_error)?;
        Ok(changed as u64)
    }

    async fn fetch<T: Send>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: Vec<Value>,
        mut map: impl FnMut(&dyn RowAccess) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        let mut statement = self.statement(sql).map_err(sqlite_error)?;
        let mut rows = statement
            .query(params_from_iter(bind(params)))
            .map_err(sqlite_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let names = row.as_ref().column_names();
            out.push(map(&SqliteRow {
                row,
                names,
                next: Cell::new(0),
            })?);
        }
        Ok(out)
    }

    async fn lock(&mut self, _key: String) -> Result<()> {
        // The writer's BEGIN IMMEDIATE already holds the database's one write lock.
        Ok(())
    }
}

/// A row with its statement's column names, read once per row (borrowed from SQLite, not
/// copied). rusqlite's lookup by name reads and measures every column's name on each call,
/// which made it 9% of a `get`'s CPU.
struct SqliteRow<'a> {
    row: &'a Row<'a>,
    names: Vec<&'a str>,
    /// Where the next column is looked for first: just after the last one found.
    next: Cell<usize>,
}

impl SqliteRow<'_> {
    /// A column by name. A row is mostly read in the order its statement names the columns
    /// (`model_from_row` and `MODEL_COLUMNS` follow one declaration), so the search starts
    /// after the last column found and usually ends at once: from the first column, a model's
    /// 38 columns took about 700 comparisons a row.
    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> Result<T> {
        let n = self.names.len();
        let start = self.next.get();
        let idx = (0..n)
            .map(|i| (start + i) % n)
            .find(|i| self.names[*i] == col)
            .ok_or_else(|| corrupt(col, "no such column"))?;
        self.next.set(idx + 1);
        self.row.get(idx).map_err(|e| corrupt(col, e))
    }
}

impl RowAccess for SqliteRow<'_> {
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

/// Maps a SQLite error to the domain error: a unique violation is `AlreadyExists`; busy,
/// locked, full and I/O trouble are `Unavailable` (503); the rest `Internal`.
fn sqlite_error(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Error::AlreadyExists(String::new())
        }
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

/// Runs a job to its end on this thread. The futures of `SqliteConn` never wait: each
/// statement runs when polled, so this returns at the first poll.
fn run<T>(job: impl Job<SqliteConn, T>, conn: &mut SqliteConn) -> Result<T> {
    futures::executor::block_on(job(conn))
}

pub struct SqliteBackend {
    writer: Writer,
    readers: Arc<Readers>,
}

/// The read-only connections, opened on demand and kept while idle.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<SqliteConn>>,
    open: AtomicU32,
    /// Set by `close`: no connection is opened or kept after it.
    closed: AtomicBool,
    /// Scanning reads at once: a scan holds its turn until it ends.
    scans: Arc<Semaphore>,
    /// Milliseconds each scanning read holds its connection first (`hold_scans`).
    #[cfg(feature = "testing")]
    hold_scans: AtomicU64,
}

impl Readers {
    fn take(&self) -> Result<SqliteConn> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(stopped());
        }
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = open(&self.path, Access::Read)?;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    fn put(&self, conn: SqliteConn) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < READERS as usize
            && !self.closed.load(Ordering::SeqCst)
        {
            idle.push(conn);
            return;
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    fn read<T>(&self, job: impl Job<SqliteConn, T>) -> Result<T> {
        let mut conn = self.take()?;
        let out = run(job, &mut conn);
        self.put(conn);
        out
    }

    /// A scanning read: `read`, held first in tests (`hold_scans`).
    fn scan<T>(&self, job: impl Job<SqliteConn, T>) -> Result<T> {
        let mut conn = self.take()?;
        #[cfg(feature = "testing")]
        let held = self.hold(&conn);
        let out = run(job, &mut conn);
        #[cfg(feature = "testing")]
        if held {
            let _ = conn.0.execute_batch("COMMIT");
        }
        self.put(conn);
        out
    }

    /// Test support: takes a snapshot and keeps it for the hold, as a long read of a cold
    /// file does. Whether a transaction was begun.
    #[cfg(feature = "testing")]
    fn hold(&self, conn: &SqliteConn) -> bool {
        let millis = self.hold_scans.load(Ordering::Relaxed);
        if millis == 0 {
            return false;
        }
        let began = conn.0.execute_batch("BEGIN").is_ok();
        let _ = conn
            .0
            .query_row("SELECT count(*) FROM models", [], |r| r.get::<_, i64>(0));
        std::thread::sleep(Duration::from_millis(millis));
        began
    }
}

#[cfg(feature = "testing")]
impl SqliteStore {
    /// Test support: every scanning read first holds its connection, in a read transaction,
    /// for `hold`.
    pub fn hold_scans(&self, hold: Duration) {
        let millis = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.backend
            .readers
            .hold_scans
            .store(millis, Ordering::Relaxed);
    }
}

impl Backend for SqliteBackend {
    const DIALECT: Dialect = Dialect::Sqlite;
    type Conn = SqliteConn;

    async fn write<T: Send + 'static>(&self, job: impl Job<SqliteConn, T>) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Box::new(Call {
                job,
                reply,
                checkpoint: false,
            }))
            .await?;
        answer.await.map_err(|_| stopped())?
    }

    async fn snapshot<T: Send + 'static>(
        &self,
        cost: Cost,
        job: impl Job<SqliteConn, T>,
    ) -> Result<T> {
        self.read(cost, move |c| {
            Box::pin(async move {
                c.execute("BEGIN", Vec::new()).await?;
                let out = job(c).await;
                // Ended whatever the job did: a reader goes back to its pool with no snapshot.
                let end = c.execute("COMMIT", Vec::new()).await;
                let out = out?;
                end?;
                Ok(out)
            })
        })
        .await
    }

    async fn read<T: Send + 'static>(&self, cost: Cost, job: impl Job<SqliteConn, T>) -> Result<T> {
        match cost {
            Cost::Point => self.readers.read(job),
            Cost::Scan => {
                let turn = self.readers.scans.clone().acquire_owned().await;
                let turn = turn.map_err(|_| stopped())?;
                let readers = self.readers.clone();
                // The turn goes with the read to its thread: a caller that goes away does not
                // stop the read, and must not let another scan start beside it.
                tokio::task::spawn_blocking(move || {
                    let _turn = turn;
                    readers.scan(job)
                })
                .await
                .map_err(|e| Error::Internal(format!("a database read failed: {e}")))?
            }
        }
    }

    async fn scrub(&self) {
        // secure_delete overwrote the row in the database pages, but the WAL still holds
        // images of them until a checkpoint. Truncating the WAL removes the deleted secret
        // from disk at once, or, while reads of an older snapshot are in the way, at the first
        // commit after they end: the writer does not wait for them (`truncate_wal`).
        let (reply, answer) = oneshot::channel();
        let call = Call {
            job: nothing,
            reply,
            checkpoint: true,
        };
        if self.writer.send(Box::new(call)).await.is_ok() {
            let _ = answer.await;
        }
    }

    fn migrations(&self) -> usize {
        crate::migrations::SQLITE_FILES.len()
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        let idle = self.readers.idle.lock().map(|i| i.len()).unwrap_or(0);
        vec![
            PoolUsage {
                pool: "read",
                max: READERS,
                open: self.readers.open.load(Ordering::Relaxed),
                idle: u32::try_from(idle).unwrap_or(u32::MAX),
            },
            PoolUsage {
                pool: "write",
                max: 1,
                open: 1,
                idle: u32::from(self.writer.is_idle()),
            },
        ]
    }

    async fn close(&self) {
        // Readers first: the last connection to close checkpoints and removes the WAL, and
        // only the writer can.
        self.readers.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.readers.idle.lock() {
            idle.clear();
        }
        self.writer.close().await;
    }
}

/// A write that writes nothing (its batch's commit and checkpoint are what `scrub` waits for).
fn nothing(_: &mut SqliteConn) -> BoxFuture<'_, Result<()>> {
    Box::pin(async { Ok(()) })
}

fn stopped() -> Error {
    Error::Unavailable("the database has been closed".into())
}

/// A write queued for the writer thread, with its caller's reply channel.
struct Call<F, T> {
    job: F,
    reply: oneshot::Sender<Result<T>>,
    /// Truncate the WAL once the batch is committed (see `scrub`).
    checkpoint: bool,
}

/// A queued write, whatever it returns.
trait Queued: Send {
    fn checkpoint(&self) -> bool;
    /// Runs the write; its answer waits for the batch's commit.
    fn run(self: Box<Self>, conn: &mut SqliteConn) -> Box<dyn Answer>;
    fn fail(self: Box<Self>, e: &Error);
}

/// A write that ran and waits for the batch's commit to be answered.
trait Answer {
    /// Whether it succeeded, so its savepoint is kept.
    fn ok(&self) -> bool;
    /// Answers the caller. A write that ran without error in a batch that did not commit
    /// gets `failed`.
    fn answer(self: Box<Self>, failed: Option<&Error>);
}

impl<T: Send + 'static, F: Job<SqliteConn, T>> Queued for Call<F, T> {
    fn checkpoint(&self) -> bool {
        self.checkpoint
    }

    fn run(self: Box<Self>, conn: &mut SqliteConn) -> Box<dyn Answer> {
        let Call { job, reply, .. } = *self;
        Box::new((reply, run(job, conn)))
    }

    fn fail(self: Box<Self>, e: &Error) {
        // A caller that went away no longer needs its answer.
        let _ = self.reply.send(Err(copy(e)));
    }
}

impl<T> Answer for (oneshot::Sender<Result<T>>, Result<T>) {
    fn ok(&self) -> bool {
        self.1.is_ok()
    }

    fn answer(self: Box<Self>, failed: Option<&Error>) {
        let (reply, result) = *self;
        let _ = reply.send(match (result, failed) {
            (Ok(_), Some(e)) => Err(copy(e)),
            (r, _) => r,
        });
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

/// The queue's sending end.
struct Writer {
    /// `None` once the store is closed.
    queue: Mutex<Option<mpsc::Sender<Box<dyn Queued>>>>,
    /// Answered when the thread has finished and closed its connection.
    finished: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
    /// Transactions the writer has committed (read by tests, to see writes grouped).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
    /// Writes queued or running.
    pending: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the thread that commits what it is sent, on `conn`.
    fn start(conn: SqliteConn) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (finished_tx, finished_rx) = oneshot::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicU64::new(0));
        let (counted, running) = (commits.clone(), pending.clone());
        std::thread::Builder::new()
            .name("modelreg-writer".into())
            .spawn(move || {
                let mut conn = conn;
                commit_loop(&mut conn, rx, &counted, &running);
                drop(conn);
                let _ = finished_tx.send(());
            })
            .map_err(|e| Error::Unavailable(format!("cannot start the database writer: {e}")))?;
        Ok(Writer {
            queue: Mutex::new(Some(tx)),
            finished: tokio::sync::Mutex::new(Some(finished_rx)),
            commits,
            pending,
        })
    }

    #[cfg(test)]
    fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn is_idle(&self) -> bool {
        self.pending.load(Ordering::Relaxed) == 0
    }

    async fn send(&self, write: Box<dyn Queued>) -> Result<()> {
        let queue = self
            .queue
            .lock()
            .ok()
            .and_then(|q| q.clone())
            .ok_or_else(stopped)?;
        self.pending.fetch_add(1, Ordering::Relaxed);
        queue.send(write).await.map_err(|_| {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            stopped()
        })
    }

    /// Stops taking writes, lets the queued ones finish, and waits for the connection to
    /// close.
    async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(finished) = self.finished.lock().await.take() {
            let _ = finished.await;
        }
    }
}

fn commit_loop(
    conn: &mut SqliteConn,
    mut queue: mpsc::Receiver<Box<dyn Queued>>,
    commits: &AtomicU64,
    pending: &AtomicU64,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A truncation of the WAL that readers put off, tried again after each commit.
    let mut truncate_due = false;
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        if commit_batch(conn, &mut batch, &mut truncate_due) {
            let done = commits.fetch_add(1, Ordering::Relaxed) + 1;
            // The statistics again now and then, as the tables grow (see `open`): a check
            // that costs microseconds unless a table changed tenfold.
            if done.is_multiple_of(OPTIMIZE_EVERY)
                && let Err(e) = conn.0.execute_batch("PRAGMA optimize")
            {
                tracing::warn!(error = %e, "PRAGMA optimize failed");
            }
        }
        pending.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Runs and commits one batch, and answers each of its writes; then truncates the WAL if a
/// write asked for it or a truncation is `due`. Whether it committed.
fn commit_batch(conn: &mut SqliteConn, batch: &mut Vec<Box<dyn Queued>>, due: &mut bool) -> bool {
    *due |= batch.iter().any(|w| w.checkpoint());
    // IMMEDIATE takes the write lock up front, so no statement of the batch fails on lock
    // upgrade when another process writes too.
    if let Err(e) = conn.0.execute_batch("BEGIN IMMEDIATE") {
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
        if let Err(e) = conn.0.execute_batch("SAVEPOINT one_write") {
            let e = sqlite_error(e);
            w.fail(&e);
            broken = Some(e);
            continue;
        }
        let d = w.run(conn);
        let end = if d.ok() {
            conn.0.execute_batch("RELEASE one_write")
        } else {
            conn.0
                .execute_batch("ROLLBACK TO one_write; RELEASE one_write")
        };
        done.push(d);
        if let Err(e) = end {
            broken = Some(sqlite_error(e));
        } else if conn.0.is_autocommit() {
            // After SQLITE_FULL or an I/O error SQLite may roll the whole transaction back
            // by itself: nothing of the batch can be trusted to commit.
            broken = Some(Error::Unavailable(
                "the database rolled the transaction back".into(),
            ));
        }
    }
    let failed = match broken {
        Some(e) => Some(e),
        None => conn.0.execute_batch("COMMIT").err().map(sqlite_error),
    };
    if failed.is_some()
        && !conn.0.is_autocommit()
        && let Err(r) = conn.0.execute_batch("ROLLBACK")
    {
        tracing::warn!(error = %r, "rollback of a failed batch failed");
    }
    if let Some(e) = &failed {
        tracing::warn!(error = %e, writes = done.len(), "a batch of writes did not commit");
    } else if *due {
        *due = !truncate_wal(conn);
    }
    let committed = failed.is_none();
    for d in done {
        d.answer(failed.as_ref());
    }
    committed
}

/// Checkpoints the whole WAL and truncates it, if nothing is in the way: whether it did. It
/// does not wait. A reader of an older snapshot (a long scan) would make it wait for that read
/// to end, and every write queued behind it with it, up to the busy timeout.
fn truncate_wal(conn: &SqliteConn) -> bool {
    if let Err(e) = conn.0.busy_timeout(Duration::ZERO) {
        tracing::warn!(error = %e, "cannot checkpoint without waiting");
        return false;
    }
    // Its first column is 1 when readers or another process's writer kept it from completing.
    let blocked = conn
        .0
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        });
    if let Err(e) = conn.0.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!(error = %e, "cannot restore the writer's busy timeout");
    }
    match blocked {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint after delete failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelreg_core::{
        list::ListQuery,
        resource_uri::ModelKey,
        store::{MaintenanceStore, ModelStore, NewModel, Store},
        tenant::{OrgId, ProjectId, TenantScope},
    };

    /// A keyset page seeks to its cursor in the sort's index instead of walking the index
    /// from the first row, for every sort field in both directions, with the values bound
    /// as parameters (as the store runs it).
    #[tokio::test]
    async fn a_keyset_page_seeks_to_its_cursor() {
        use modelreg_core::list::{After, CursorKeys, Paging};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("k.db")).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        for field in [
            "name",
            "created_at",
            "updated_at",
            "litellm_model",
            "provider",
            "status",
        ] {
            for dir in ["asc", "desc"] {
                let mut q = ListQuery::parse(
                    &[("sort".to_owned(), format!("{field}:{dir}"))],
                    &CursorKeys::ephemeral(),
                )
                .unwrap();
                q.paging = Paging::After(After {
                    values: vec!["2026-01-01T00:00:00Z".into()],
                    id: Uuid::now_v7(),
                });
                let plan = store.explain_list(&scope, &q).await.unwrap();
                let op = if dir == "asc" { ">" } else { "<" };
                let seek = format!("AND {field}{op}?)");
                assert!(plan.contains(&seek), "{field}:{dir} does not seek: {plan}");
            }
        }
    }

    /// A model with only the required fields, `m{i}`.
    fn plain_model(i: usize) -> NewModel {
        crate::testing::plain_model(&format!("m{i}"))
    }

    use crate::testing::create_audit as test_audit;

    /// A clean close leaves no WAL behind: the readers and the writer thread close their
    /// connections, the writer's last, and it checkpoints.
    #[tokio::test]
    async fn a_clean_close_removes_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let model = store
            .insert_model(&scope, plain_model(1), &test_audit())
            .await
            .unwrap();
        // A point read and a page, each served by a reader that is then kept.
        let key = ModelKey::Id(model.id);
        assert!(store.get_model(&scope, &key).await.unwrap().is_some());
        let page = store
            .list_models(&scope, &ListQuery::default())
            .await
            .unwrap();
        assert_eq!(page.total_items, 1);
        let wal = dir.path().join("w.db-wal");
        assert!(wal.exists(), "the WAL is in use while the store is open");
        store.close().await;
        assert!(!wal.exists(), "the WAL outlived a clean close");
    }

    /// A delete while a read keeps an older snapshot answers without waiting for that read,
    /// and the WAL, which still holds the deleted row, is truncated at the first commit after
    /// the read ends.
    #[tokio::test]
    async fn a_long_read_puts_off_the_wal_truncation_not_the_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let audit = test_audit();
        let model = store
            .insert_model(&scope, plain_model(1), &audit)
            .await
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM models", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let started = std::time::Instant::now();
        assert!(
            store
                .delete_model(&scope, model.id, None, &audit)
                .await
                .unwrap()
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the delete waited {:?} for the reader",
            started.elapsed()
        );
        let wal = dir.path().join("t.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        store
            .insert_model(&scope, plain_model(2), &audit)
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    }

    /// Creates that arrive together share a transaction: fewer commits than creates, and
    /// each one stored.
    #[tokio::test]
    async fn creates_that_arrive_together_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("g.db")).await.unwrap());
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let audit = test_audit();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..32 {
            let (store, scope, audit) = (store.clone(), scope.clone(), audit.clone());
            tasks.spawn(async move {
                let new = plain_model(i);
                store.insert_model(&scope, new, &audit).await.unwrap()
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let commits = store.backend.writer.commits();
        assert!(
            (1..32).contains(&commits),
            "{commits} commits for 32 creates"
        );
        let page = store
            .list_models(&scope, &ListQuery::default())
            .await
            .unwrap();
        assert_eq!(page.total_items, 32);
    }

    /// Unfiltered pages, read inline, are the pages a filtered query that matches every
    /// model reads on the blocking pool: same models, same order.
    #[tokio::test]
    async fn inline_and_scanning_pages_agree() {
        use modelreg_core::list::CursorKeys;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let models: Vec<_> = (0..30).map(plain_model).collect();
        store
            .insert_models(&scope, &models, &test_audit())
            .await
            .unwrap();
        for pairs in [
            vec![("limit", "7")],
            vec![("sort", "name:asc"), ("page", "3"), ("limit", "10")],
        ] {
            let parse = |extra: Option<(&str, &str)>| {
                let mut p: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                p.extend(extra.map(|(k, v)| (k.to_owned(), v.to_owned())));
                ListQuery::parse(&p, &CursorKeys::ephemeral()).unwrap()
            };
            let inline = store.list_models(&scope, &parse(None)).await.unwrap();
            let scanned = store
                .list_models(&scope, &parse(Some(("status", "PENDING"))))
                .await
                .unwrap();
            assert_eq!(inline.items, scanned.items);
            assert_eq!(
                (inline.total_items, inline.has_more),
                (scanned.total_items, scanned.has_more)
            );
        }
    }
}
