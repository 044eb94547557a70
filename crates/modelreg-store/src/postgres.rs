//! The scale-out backend: PostgreSQL (and Postgres-compatible databases), shared by any
//! number of stateless modelreg replicas.
//!
//! Nothing is cached in the process but counts keyed by the database's own generation: every
//! request reads the database, so a write acknowledged by one replica is what the next request
//! on any replica sees. Writes are one transaction each; locks that order writers (generated
//! resource_uris per base name, the audit chain per organization) are transaction-scoped
//! advisory locks. Migrations run under sqlx's advisory lock, so replicas that start together
//! do not race.

use std::{str::FromStr, sync::Arc, time::Duration};

use modelreg_core::{Error, Result, store::PoolUsage, timestamp::Timestamp};
use sqlx::{
    AssertSqlSafe, PgConnection, PgPool, Postgres, Row,
    pool::PoolConnection,
    postgres::{PgArguments, PgConnectOptions, PgDatabaseError, PgPoolOptions},
    query::Query,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    PoolSettings, db_error,
    exec::{Dialect, Exec, RowAccess, Sql, Value},
    store::{Backend, Cost, Job, SqlStore},
};

/// The scale-out store.
pub type PostgresStore = SqlStore<PgBackend>;

static MIGRATOR: &std::sync::LazyLock<sqlx::migrate::Migrator> = &crate::migrations::POSTGRES;

impl PostgresStore {
    /// Connects and applies pending migrations (under an advisory lock).
    pub async fn open(url: &str, settings: &PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::InvalidRequest(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("modelreg")
            .options([(
                "statement_timeout",
                format!("{}ms", settings.statement_timeout.as_millis()),
            )]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // Connections are checked when taken from the pool, so a database that went away
            // and came back is noticed and the pool heals by itself.
            .test_before_acquire(true)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(options);
        let unreachable = |e: sqlx::Error| {
            Error::Unavailable(format!("cannot reach the PostgreSQL database: {e}"))
        };
        let newest: Option<i64> =
            if sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .map_err(unreachable)?
            {
                sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .map_err(unreachable)?
            } else {
                None
            };
        crate::refuse_newer_schema(newest, MIGRATOR, "the PostgreSQL database")?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            Error::Unavailable(format!("cannot migrate the PostgreSQL database: {e}"))
        })?;
        let scan_turns = scan_turns(settings.max_connections);
        Ok(SqlStore::new(PgBackend {
            pool,
            scans: Arc::new(Semaphore::new(scan_turns as usize)),
            scan_turns,
            acquire_timeout: settings.acquire_timeout,
            #[cfg(feature = "testing")]
            hold_scans: Default::default(),
        }))
    }

    /// Test support: every scanning read first holds its connection in a real `pg_sleep` of
    /// `hold`, as a query that reads a cold disk does.
    #[cfg(feature = "testing")]
    pub fn hold_scans(&self, hold: Duration) {
        let millis = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.backend
            .hold_scans
            .store(millis, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Connections of the pool that scans never take, so that point reads and writes always find
/// one. Scans wait for a turn of their own instead; a separate pool for point reads would also
/// keep them apart, but would leave its connections idle while scans queue, and the other
/// way round.
const KEPT_FROM_SCANS: u32 = 2;

/// Scans at once in a pool of `max_connections`: all of it but `KEPT_FROM_SCANS`, at least
/// one (a pool of one or two shares its connections with scans).
fn scan_turns(max_connections: u32) -> u32 {
    max_connections.saturating_sub(KEPT_FROM_SCANS).max(1)
}

fn closed() -> Error {
    Error::Unavailable("the database has been closed".into())
}

pub struct PgBackend {
    pool: PgPool,
    /// Turns of the reads that may scan (`Cost::Scan`), `scan_turns` of them: a scan holds one
    /// with its connection, until its query ends.
    scans: Arc<Semaphore>,
    scan_turns: u32,
    /// How long a scan waits for a turn and a connection.
    acquire_timeout: Duration,
    /// Milliseconds each scanning read sleeps on its connection first (`hold_scans`).
    #[cfg(feature = "testing")]
    hold_scans: std::sync::atomic::AtomicU64,
}

impl PgBackend {
    /// A scan found no turn and connection within the acquire timeout.
    fn busy(&self) -> Error {
        Error::Unavailable(format!(
            "the database is busy: an expensive read found no turn (at most {} run at once) \
             and connection within {} ms",
            self.scan_turns,
            self.acquire_timeout.as_millis()
        ))
    }
}

/// A connection of the pool, in a transaction (writes) or not (reads).
pub enum PgConn {
    Tx(sqlx::Transaction<'static, Postgres>),
    Pooled(PoolConnection<Postgres>),
}

impl PgConn {
    fn conn(&mut self) -> &mut PgConnection {
        match self {
            PgConn::Tx(tx) => tx,
            PgConn::Pooled(c) => c,
        }
    }
}

/// Binds our values with PostgreSQL's types: uuid and timestamptz columns get uuid and
/// timestamptz values, and each null its column's type.
///
/// A statement with a LIKE pattern (a list's search) is not kept prepared, so PostgreSQL plans
/// each run with its pattern. Kept prepared, it settled after five runs on a generic plan that
/// cannot tell a rare needle (the trigram indexes) from a common one (a walk of the sort's
/// index), and a search with a new needle on every request took about 2 s at 100,000 models.
fn bind<'q>(sql: &'q str, values: Vec<Value>) -> Query<'q, Postgres, PgArguments> {
    let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(!sql.contains(" LIKE "));
    for v in values {
        query = match v {
            Value::Text(t) => query.bind(t),
            Value::Int(i) => query.bind(i),
            Value::Real(f) => query.bind(f),
            Value::Bool(b) => query.bind(b),
            Value::Blob(b) => query.bind(b),
            Value::Uuid(u) => query.bind(u),
            Value::Time(t) => query.bind(t.map(|t| t.as_offset_date_time())),
        };
    }
    query
}

/// A database error as the domain's: a unique violation is `AlreadyExists`, with
/// PostgreSQL's detail of which key (`: detail`).
fn pg_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::AlreadyExists(
            d.try_downcast_ref::<PgDatabaseError>()
                .and_then(|p| p.detail())
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
        ),
        _ => db_error(e),
    }
}

impl Exec for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: &(impl Sql + ?Sized), params: Vec<Value>) -> Result<u64> {
        let done = bind(sql.text(Dialect::Postgres), params)
            .execute(self.conn())
            .await
            .map_err(pg_error)?;
        Ok(done.rows_affected())
    }

    async fn fetch<T: Send>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: Vec<Value>,
        mut map: impl FnMut(&dyn RowAccess) -> Result<T> + Send,
    ) -> Result<Vec<T>> {
        let rows = bind(sql.text(Dialect::Postgres), params)
            .fetch_all(self.conn())
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| map(r)).collect()
    }

    async fn lock(&mut self, key: String) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(db_error)
            .map(drop)
    }
}

impl Backend for PgBackend {
    const DIALECT: Dialect = Dialect::Postgres;
    type Conn = PgConn;

    async fn write<T: Send + 'static>(&self, job: impl Job<PgConn, T>) -> Result<T> {
        let mut conn = PgConn::Tx(self.pool.begin().await.map_err(db_error)?);
        let result = job(&mut conn).await;
        let PgConn::Tx(tx) = conn else {
            return result;
        };
        // Ended explicitly: a dropped transaction would only be rolled back lazily, holding
        // its locks until the connection is next used.
        match result {
            Ok(value) => {
                tx.commit().await.map_err(db_error)?;
                Ok(value)
            }
            Err(e) => {
                if let Err(r) = tx.rollback().await {
                    tracing::warn!(error = %r, "rollback failed");
                }
                Err(e)
            }
        }
    }

    async fn snapshot<T: Send + 'static>(&self, cost: Cost, job: impl Job<PgConn, T>) -> Result<T> {
        const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        if cost == Cost::Point {
            // In a task of its own, run to its end: a caller that went away while the BEGIN was
            // in flight would leave the connection inside this read-only snapshot with sqlx
            // none the wiser (it rolls back a dropped transaction only once the BEGIN has
            // returned), and the pool would hand it to the next request, writes included
            // (tests/starvation.rs abandons requests at random points and caught it).
            let pool = self.pool.clone();
            return tokio::spawn(async move {
                let tx = pool.begin_with(BEGIN).await.map_err(db_error)?;
                let mut conn = PgConn::Tx(tx);
                let out = job(&mut conn).await;
                if let PgConn::Tx(tx) = conn {
                    let end = tx.rollback().await.map_err(db_error);
                    let out = out?;
                    end?;
                    return Ok(out);
                }
                out
            })
            .await
            .map_err(|e| Error::Internal(format!("a database read failed: {e}")))?;
        }
        // A scan runs to its end in a task of its own (`read`), so it ends its snapshot itself.
        self.read(cost, move |c| {
            Box::pin(async move {
                c.execute(BEGIN, Vec::new()).await?;
                let out = job(c).await;
                let end = c.execute("ROLLBACK", Vec::new()).await;
                let out = out?;
                end?;
                Ok(out)
            })
        })
        .await
    }

    async fn read<T: Send + 'static>(&self, cost: Cost, job: impl Job<PgConn, T>) -> Result<T> {
        if cost == Cost::Point {
            let mut conn = PgConn::Pooled(self.pool.acquire().await.map_err(db_error)?);
            return job(&mut conn).await;
        }
        // A turn first, then a connection, both within the acquire timeout: scans wait for a
        // turn among themselves, and no more of them than there are turns hold connections or
        // wait in the pool's queue.
        let taken = tokio::time::timeout(self.acquire_timeout, async {
            let turn = self
                .scans
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| closed())?;
            let conn = self.pool.acquire().await.map_err(db_error)?;
            Ok::<_, Error>((turn, conn))
        })
        .await;
        let (turn, conn) = taken.map_err(|_| self.busy())??;
        #[cfg(feature = "testing")]
        let hold = self.hold_scans.load(std::sync::atomic::Ordering::Relaxed);
        // The scan runs to its end in a task of its own, which keeps the turn until then. Were
        // the turn dropped with a caller that goes away (a request timeout, a client that hangs
        // up), the connection would stay busy with the query while a new scan took another
        // connection, and the ones kept for point reads would go the same way.
        tokio::spawn(async move {
            let _turn = turn;
            let mut conn = PgConn::Pooled(conn);
            #[cfg(feature = "testing")]
            if hold > 0 {
                sqlx::query("SELECT pg_sleep($1)")
                    .bind(hold as f64 / 1000.0)
                    .execute(conn.conn())
                    .await
                    .map_err(db_error)?;
            }
            job(&mut conn).await
        })
        .await
        .map_err(|e| Error::Internal(format!("a database read failed: {e}")))?
    }

    async fn scrub(&self) {
        // PostgreSQL keeps no copy of a deleted row that this process can remove; VACUUM
        // reclaims it in its own time.
    }

    fn migrations(&self) -> usize {
        crate::migrations::POSTGRES_FILES.len()
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        vec![PoolUsage {
            pool: "primary",
            max: self.pool.options().get_max_connections(),
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        }]
    }

    async fn close(&self) {
        self.scans.close();
        self.pool.close().await;
    }
}

impl RowAccess for sqlx::postgres::PgRow {
    fn text(&self, col: &str) -> Result<String> {
        self.try_get(col).map_err(db_error)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.try_get(col).map_err(db_error)
    }
    fn int(&self, col: &str) -> Result<i64> {
        self.try_get(col).map_err(db_error)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        self.try_get(col).map_err(db_error)
    }
    fn opt_real(&self, col: &str) -> Result<Option<f64>> {
        self.try_get(col).map_err(db_error)
    }
    fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.try_get(col).map_err(db_error)
    }
    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.try_get(col).map_err(db_error)
    }
    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>> {
        let t: Option<time::OffsetDateTime> = self.try_get(col).map_err(db_error)?;
        Ok(t.map(Timestamp::from_offset_date_time))
    }
}
