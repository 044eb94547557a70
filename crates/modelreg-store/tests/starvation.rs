//! An expensive query never starves cheap ones. While three times as many slow scans as the
//! pool has connections run or wait, point reads and writes still answer at once and get no
//! pool timeout; scans that wait for a turn wait among themselves. On both backends: the slow
//! scans are made by `hold_scans`, a real `pg_sleep` on each scan's connection on PostgreSQL
//! and a snapshot kept open on SQLite, as a scan that reads a cold disk holds them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use modelreg_core::{
    Error,
    list::{CursorKeys, ListQuery},
    model::Model,
    resource_uri::ModelKey,
    store::Store,
    tenant::{OrgId, ProjectId, TenantScope},
};
use modelreg_store::{
    PoolSettings, PostgresStore, SqliteStore,
    testing::{PgSchema, create_audit, plain_model},
};
use tokio::task::JoinSet;

/// How long each slow scan holds its connection.
const HOLD: Duration = Duration::from_secs(2);
/// What a point read or a write may take while scans are held.
const CHEAP: Duration = Duration::from_millis(500);

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    /// The pool whose connections scans and cheap requests share, as `pool_usage` names it.
    pool: &'static str,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<PgSchema>,
}

impl Backend {
    /// The most connections of the shared pool.
    fn pool_max(&self) -> u32 {
        self.usage().0
    }

    /// The shared pool's most and open connections now.
    fn usage(&self) -> (u32, u32) {
        let usage = self.store.pool_usage();
        let pool = usage.iter().find(|u| u.pool == self.pool).unwrap();
        (pool.max, pool.open)
    }
}

/// A SQLite file and a PostgreSQL schema whose scans are held. PostgreSQL's pool is small, so
/// that three times its size is few connections of the server, and a request waits for a
/// connection 1 s at most.
async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    // The scans held here are the database's own: SQLite's list index would answer these
    // lists from memory after one load of the project (tests/list_index.rs).
    sqlite.limit_list_index(0);
    sqlite.hold_scans(HOLD);
    let schema = PgSchema::create().await;
    let settings = PoolSettings {
        max_connections: 5,
        acquire_timeout: Duration::from_secs(1),
        ..PoolSettings::default()
    };
    let postgres = PostgresStore::open(&schema.url, &settings).await.unwrap();
    postgres.hold_scans(HOLD);
    vec![
        Backend {
            name: "sqlite",
            store: Arc::new(sqlite),
            pool: "read",
            _dir: Some(dir),
            _schema: None,
        },
        Backend {
            name: "postgres",
            store: Arc::new(postgres),
            pool: "primary",
            _dir: None,
            _schema: Some(schema),
        },
    ]
}

/// A project with one model.
async fn seed(b: &Backend) -> (TenantScope, Model) {
    let scope = TenantScope::new(OrgId::parse("org").unwrap(), ProjectId::parse("p").unwrap());
    let model = b
        .store
        .insert_model(&scope, plain_model("seed"), &create_audit())
        .await
        .unwrap();
    (scope, model)
}

/// A filtered list: a scan.
fn scan(store: Arc<dyn Store>, scope: TenantScope) -> impl Future<Output = Result<u64, Error>> {
    let query = ListQuery::parse(
        &[("status".to_owned(), "PENDING".to_owned())],
        &CursorKeys::ephemeral(),
    )
    .unwrap();
    async move { Ok(store.list_models(&scope, &query).await?.total_items) }
}

/// Runs `f`, which must succeed within `CHEAP`.
async fn cheap<T>(b: &Backend, what: &str, f: impl Future<Output = Result<T, Error>>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{}: {what} hung while scans were held", b.name));
    let took = started.elapsed();
    let value =
        out.unwrap_or_else(|e| panic!("{}: {what} failed while scans were held: {e}", b.name));
    assert!(
        took < CHEAP,
        "{}: {what} took {took:?} while scans were held",
        b.name
    );
    value
}

/// For `period`: reads the model and the project's generation, creates a model and deletes
/// it, each within `CHEAP`. The most connections the shared pool had open meanwhile.
async fn cheap_requests_answer(
    b: &Backend,
    scope: &TenantScope,
    model: &Model,
    period: Duration,
) -> u32 {
    let until = Instant::now() + period;
    let mut peak = 0;
    let mut n = 0;
    while Instant::now() < until {
        let s = &b.store;
        let got = cheap(b, "get_model", s.get_model(scope, &ModelKey::Id(model.id))).await;
        assert_eq!(got.as_ref().map(|m| m.id), Some(model.id));
        let generation = cheap(b, "project_generation", s.project_generation(scope)).await;
        assert!(generation.is_some());
        n += 1;
        let created = cheap(
            b,
            "insert_model",
            s.insert_model(scope, plain_model(&format!("cheap-{n}")), &create_audit()),
        )
        .await;
        let deleted = cheap(
            b,
            "delete_model",
            s.delete_model(scope, created.id, None, &create_audit()),
        )
        .await;
        assert!(deleted);
        peak = peak.max(b.usage().1);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(n >= 2, "{}: only {n} rounds of cheap requests", b.name);
    peak
}

/// Scans whose callers wait: a few run, the rest wait for a turn (and, on PostgreSQL, give up
/// after the acquire timeout with a 503 of their own). Point reads and writes meanwhile
/// answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_scans_leave_cheap_requests_answering() {
    for b in backends().await {
        let (scope, model) = seed(&b).await;
        let mut scans = JoinSet::new();
        for _ in 0..3 * b.pool_max() {
            scans.spawn(scan(b.store.clone(), scope.clone()));
        }
        // The scans take their turns, or queue for one.
        tokio::time::sleep(Duration::from_millis(300)).await;
        cheap_requests_answer(&b, &scope, &model, HOLD - Duration::from_millis(500)).await;
        let (mut ran, mut turned_away) = (0, 0);
        while let Some(done) = scans.join_next().await {
            match done.unwrap() {
                Ok(_) => ran += 1,
                Err(Error::Unavailable(m)) => {
                    assert!(
                        !m.contains("pool timed out"),
                        "{}: a scan waited for a connection, not a turn: {m}",
                        b.name
                    );
                    turned_away += 1;
                }
                Err(e) => panic!("{}: a scan failed: {e}", b.name),
            }
        }
        assert!(
            ran > 0,
            "{}: no scan ran ({turned_away} turned away)",
            b.name
        );
        b.store.close().await;
    }
}

/// Scans whose callers go away (a request timeout, a client that hangs up) keep their turn
/// until their query ends: a scan's turn is its connection's, so new scans cannot take
/// connections the abandoned ones still hold, and cheap requests still find one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_scans_keep_their_turn_until_they_end() {
    for b in backends().await {
        let (scope, model) = seed(&b).await;
        let (store, waves_scope, per_wave) = (b.store.clone(), scope.clone(), 3 * b.pool_max());
        let waves = tokio::spawn(async move {
            for _ in 0..3 {
                for _ in 0..per_wave {
                    let scan = scan(store.clone(), waves_scope.clone());
                    tokio::spawn(tokio::time::timeout(Duration::from_millis(100), scan));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let peak =
            cheap_requests_answer(&b, &scope, &model, HOLD - Duration::from_millis(500)).await;
        waves.await.unwrap();
        // SQLite's point reads may open connections past the pool's size, briefly; scans may
        // not.
        let max = b.pool_max();
        assert!(
            peak <= 2 * max,
            "{}: {peak} connections open at once, of a pool of {max}: abandoned scans ran on",
            b.name
        );
        tokio::time::sleep(HOLD).await;
        b.store.close().await;
    }
}
