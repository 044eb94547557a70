//! The scale-out backend: PostgreSQL (and Postgres-compatible databases), shared by any
//! number of stateless modelreg replicas.
//!
//! Nothing is cached in the process: every request reads the database, so a write
//! acknowledged by one replica is what the next request on any replica sees. Writes are
//! compare-and-swap on a version column. Generated resource_uris are serialized per base
//! name with a transaction-scoped advisory lock, so concurrent creates of one name get
//! distinct uris without retries. Migrations run under sqlx's advisory lock, so replicas that
//! start together do not race.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use modelreg_core::{
    Error, Result,
    audit::{AuditEntry, AuditEvent},
    list::{ListPage, ListQuery},
    model::{Model, Status},
    resource_uri::{ModelKey, ResourceUri},
    secrets::SealedCredentials,
    store::{
        ApiToken, AuditFilter, ClaimedCheck, FoundToken, MaintenanceStore, ModelChange, ModelStore,
        NewModel, NewToken, PoolUsage, ReplicaBeat, SealedRecord, ServerStore, StatusProviderCount, Store,
        TokenStore,
    },
    tenant::{OrgId, TenantScope},
    timestamp::Timestamp,
};
use sea_query::PostgresQueryBuilder;
use sea_query_sqlx::SqlxBinder;
use sqlx::{
    AssertSqlSafe, Encode, PgPool, Postgres, QueryBuilder, Row, Transaction, Type,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgDatabaseError, PgPoolOptions},
    query_builder::Separated,
};
use uuid::Uuid;

use crate::{
    PoolSettings, db_error,
    list_query::{self, Dialect},
    rows::{
        audit_from_row, bind_fields, empty_page_generation, finish_page, found_token_from_row,
        json, model_from_row, next_audit_event, replica_from_row, sealed_record_from_row,
        token_from_row, total_and_generation,
    },
    sql::{self, first_free, uri_range},
};

static MIGRATOR: &std::sync::LazyLock<Migrator> = &crate::migrations::POSTGRES;

pub struct PostgresStore {
    pool: PgPool,
    counts: crate::CountCache,
}

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
                sqlx::query_scalar(q(&sql::NEWEST_MIGRATION))
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
        Ok(PostgresStore {
            pool,
            counts: crate::CountCache::default(),
        })
    }

    /// `EXPLAIN (ANALYZE, BUFFERS)` of the two statements a list request runs (the page and
    /// its count), for checking that filters use indexes.
    pub async fn explain_list(&self, scope: &TenantScope, query: &ListQuery) -> Result<String> {
        let (page_sql, page_values) =
            list_query::page(scope, query, Dialect::Postgres).build_sqlx(PostgresQueryBuilder);
        let (count_sql, count_values) =
            list_query::count(scope, query).build_sqlx(PostgresQueryBuilder);
        let mut out = String::new();
        let mut statements = vec![(page_sql, page_values)];
        if !query.filters.is_empty() {
            statements.push((count_sql, count_values));
        }
        for (sql, values) in statements {
            let plan: Vec<String> = sqlx::query_scalar_with(
                AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")),
                values,
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            out.push_str(&plan.join("\n"));
            out.push_str("\n\n");
        }
        if query.filters.is_empty() {
            out.push_str("Count: one row of model_counts, read by primary key.\n");
        }
        Ok(out)
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db_error)
    }
}

fn q(statement: &sql::Statement) -> AssertSqlSafe<&str> {
    AssertSqlSafe(statement.postgres.as_str())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Ends a transaction explicitly: commits when `commit` says so, else rolls back. (A dropped
/// transaction would only be rolled back lazily, holding its locks until the connection is
/// next used.)
async fn settle<T>(
    tx: Transaction<'static, Postgres>,
    result: Result<T>,
    commit: impl FnOnce(&T) -> bool,
) -> Result<T> {
    match result {
        Ok(value) if commit(&value) => {
            tx.commit().await.map_err(db_error)?;
            Ok(value)
        }
        other => {
            if let Err(e) = tx.rollback().await {
                tracing::warn!(error = %e, "rollback failed");
            }
            other
        }
    }
}

fn ts(t: Timestamp) -> time::OffsetDateTime {
    t.as_offset_date_time()
}

async fn fetch_model(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Model> {
    let row = sqlx::query(q(&sql::MODEL_BY_ID))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    model_from_row(&row)
}

async fn replace_tags(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    id: Uuid,
    tags: &[String],
) -> Result<()> {
    sqlx::query(q(&sql::DELETE_TAGS))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for tag in tags {
        sqlx::query(q(&sql::INSERT_TAG))
            .bind(id)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(tag)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Keeps `model_counts` in step with an insert (+1) or a delete (-1), in the same transaction.
async fn add_to_count(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    delta: i64,
) -> Result<()> {
    sqlx::query(q(&sql::COUNT_ADD))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(delta)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// The smallest free generated uri. Creates of the same base in the same project wait for
/// each other on an advisory lock held until the transaction ends.
async fn free_generated_uri(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    base: &ResourceUri,
) -> Result<ResourceUri> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!(
            "modelreg/uri/{}/{}/{}",
            scope.org,
            scope.project,
            base.as_str()
        ))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    let (from, to) = uri_range(base.as_str());
    let taken: Vec<String> = sqlx::query_scalar(q(&sql::URIS_IN_RANGE))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(first_free(base, &taken))
}

/// Binds a new model's 30 values in `sql::MODELS_INTO`'s column order, to `sql::INSERT_MODEL`
/// or to one row of a multi-row VALUES (`version` is the statement's literal 1).
macro_rules! bind_new_model {
    ($q:expr, $scope:expr, $new:expr, $uri:expr) => {{
        let (scope, new) = ($scope, $new);
        bind_fields!($q, &new.fields)
            .bind(new.id)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind($uri)
            .bind(ts(new.now))
            .bind(ts(new.now))
            .bind(&new.actor)
            .bind(&new.actor)
            .bind(json(&new.credentials.fields))
            .bind(&new.credentials.kek_id)
            .bind(&new.credentials.blob)
    }};
}

/// Binds an audit event to `sql::AUDIT_INSERT`, or to one row of a multi-row VALUES.
macro_rules! bind_audit {
    ($q:expr, $e:expr) => {{
        let e = $e;
        $q.bind(e.id)
            .bind(&e.organization_id)
            .bind(e.seq)
            .bind(ts(e.at))
            .bind(&e.principal)
            .bind(&e.on_behalf_of)
            .bind(&e.action)
            .bind(&e.project_id)
            .bind(e.model_id)
            .bind(&e.resource_uri)
            .bind(&e.request_id)
            .bind(e.changes.to_string())
            .bind(&e.prev_hash)
            .bind(&e.hash)
    }};
}

/// Takes the organization's audit chain for the rest of the transaction (one writer per
/// chain at a time; SQLite has one writer anyway) and returns its newest `(seq, hash)`.
async fn lock_audit_chain(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
) -> Result<Option<(i64, String)>> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("modelreg/audit/{}", scope.org))
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    sqlx::query_as(q(&sql::AUDIT_LAST))
        .bind(scope.org.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)
}

/// Appends an audit event to the organization's chain, in the caller's transaction.
async fn append_audit(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    model_id: Uuid,
    resource_uri: &str,
    entry: &AuditEntry,
    at: Timestamp,
) -> Result<()> {
    let last = lock_audit_chain(tx, scope).await?;
    let event = next_audit_event(scope, model_id, resource_uri, entry, at, last);
    bind_audit!(sqlx::query(q(&sql::AUDIT_INSERT)), &event)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// One row of a multi-row VALUES list, bound with the `.bind` chain a query takes, so
/// `bind_fields!` and `bind_audit!` serve both.
struct ValuesRow<'r, 'b>(&'r mut Separated<'b, Postgres, &'static str>);

impl ValuesRow<'_, '_> {
    fn bind<'t, T: Encode<'t, Postgres> + Type<Postgres>>(self, value: T) -> Self {
        self.0.push_bind(value);
        self
    }
}

/// Models per multi-row INSERT: 30 parameters each, well under PostgreSQL's 65,535 a
/// statement. Tag rows (4 parameters) go 10,000 a statement.
const MODELS_PER_INSERT: usize = 1_000;
const TAGS_PER_INSERT: usize = 10_000;

/// `insert_models` for models with explicit uris: per chunk of models one multi-row INSERT
/// each into models, model_tags and audit_events, the count moved once and the chain taken
/// once. Each model row goes in exactly as `insert_in` writes it.
async fn insert_all(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    models: &[NewModel],
    audit: &AuditEntry,
) -> Result<()> {
    // The project's count row before the organization's chain, the order every other write
    // takes them in; the other order deadlocks against a concurrent create.
    add_to_count(tx, scope, models.len() as i64).await?;
    let mut last = lock_audit_chain(tx, scope).await?;
    for chunk in models.chunks(MODELS_PER_INSERT) {
        let mut insert = QueryBuilder::<Postgres>::new(sql::MODELS_INTO.as_str());
        insert.push_values(chunk, |mut row, new| {
            bind_new_model!(ValuesRow(&mut row), scope, new, new.resource_uri.as_str());
            row.push("1");
        });
        match insert.build().persistent(false).execute(&mut **tx).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AlreadyExists(format!(
                    "a model of the batch has a resource_uri that already exists in this \
                     project, or two share one{}",
                    violation_detail(&e)
                )));
            }
            Err(e) => return Err(db_error(e)),
        }
        let tags: Vec<(Uuid, &String)> = chunk
            .iter()
            .flat_map(|new| new.fields.tags.iter().map(|t| (new.id, t)))
            .collect();
        for tags in tags.chunks(TAGS_PER_INSERT) {
            let mut insert = QueryBuilder::<Postgres>::new(sql::TAGS_INTO);
            insert.push_values(tags, |mut row, (id, tag)| {
                row.push_bind(*id)
                    .push_bind(scope.org.as_str())
                    .push_bind(scope.project.as_str())
                    .push_bind(*tag);
            });
            insert
                .build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        let mut insert = QueryBuilder::<Postgres>::new(sql::AUDIT_INTO);
        insert.push_values(chunk, |mut row, new| {
            let event = next_audit_event(
                scope,
                new.id,
                new.resource_uri.as_str(),
                audit,
                new.now,
                last.take(),
            );
            bind_audit!(ValuesRow(&mut row), &event);
            last = Some((event.seq, event.hash));
        });
        insert
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// PostgreSQL's detail of a unique violation (which key), as `: detail`, or nothing.
fn violation_detail(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<PgDatabaseError>()
            .and_then(|p| p.detail())
            .map(|d| format!(": {d}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

async fn insert_in(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    new: &NewModel,
    audit: &AuditEntry,
) -> Result<Model> {
    let uri = if new.generated {
        free_generated_uri(tx, scope, &new.resource_uri).await?
    } else {
        new.resource_uri.clone()
    };
    let result = bind_new_model!(sqlx::query(q(&sql::INSERT_MODEL)), scope, new, uri.as_str())
        .execute(&mut **tx)
        .await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(Error::AlreadyExists(format!(
                "a model with resource_uri '{uri}' already exists in this project"
            )));
        }
        Err(e) => return Err(db_error(e)),
    }
    replace_tags(tx, scope, new.id, &new.fields.tags).await?;
    add_to_count(tx, scope, 1).await?;
    append_audit(tx, scope, new.id, uri.as_str(), audit, new.now).await?;
    fetch_model(tx, scope, new.id).await
}

async fn update_in(
    tx: &mut Transaction<'static, Postgres>,
    scope: &TenantScope,
    change: &ModelChange,
    audit: &AuditEntry,
) -> Result<Option<Model>> {
    let done = bind_fields!(sqlx::query(q(&sql::UPDATE_MODEL)), &change.fields)
        .bind(ts(change.now))
        .bind(&change.actor)
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(change.id)
        .bind(change.expected_version)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    if let Some(c) = &change.credentials {
        sqlx::query(q(&sql::UPDATE_CREDENTIALS))
            .bind(json(&c.fields))
            .bind(&c.kek_id)
            .bind(&c.blob)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(change.id)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    replace_tags(tx, scope, change.id, &change.fields.tags).await?;
    // No change in number, but the lists may see it: a new generation.
    add_to_count(tx, scope, 0).await?;
    let model = fetch_model(tx, scope, change.id).await?;
    append_audit(
        tx,
        scope,
        model.id,
        model.resource_uri.as_str(),
        audit,
        change.now,
    )
    .await?;
    Ok(Some(model))
}

#[async_trait]
impl ModelStore for PostgresStore {
    async fn insert_model(
        &self,
        scope: &TenantScope,
        new: NewModel,
        audit: &AuditEntry,
    ) -> Result<Model> {
        let mut tx = self.begin().await?;
        let result = insert_in(&mut tx, scope, &new, audit).await;
        settle(tx, result, |_| true).await
    }

    async fn get_model(&self, scope: &TenantScope, key: &ModelKey) -> Result<Option<Model>> {
        let query = match key {
            ModelKey::Uri(u) => sqlx::query(q(&sql::MODEL_BY_URI))
                .bind(scope.org.as_str())
                .bind(scope.project.as_str())
                .bind(u.as_str().to_owned()),
            ModelKey::Id(id) => sqlx::query(q(&sql::MODEL_BY_ID))
                .bind(scope.org.as_str())
                .bind(scope.project.as_str())
                .bind(*id),
        };
        let row = query.fetch_optional(&self.pool).await.map_err(db_error)?;
        row.as_ref().map(model_from_row).transpose()
    }

    async fn update_model(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        let mut tx = self.begin().await?;
        let result = update_in(&mut tx, scope, &change, audit).await;
        // A version that moved on wrote nothing: roll back rather than commit.
        settle(tx, result, Option::is_some).await
    }

    async fn delete_model(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let result = async {
            // The tags go with the row (ON DELETE CASCADE).
            let deleted_uri: Option<String> = sqlx::query_scalar(q(&sql::DELETE_MODEL))
                .bind(scope.org.as_str())
                .bind(scope.project.as_str())
                .bind(id)
                .bind(expected_version)
                .bind(expected_version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            let deleted = deleted_uri.is_some();
            if let Some(uri) = &deleted_uri {
                add_to_count(&mut tx, scope, -1).await?;
                append_audit(&mut tx, scope, id, uri, audit, Timestamp::now()).await?;
            }
            Ok(deleted)
        }
        .await;
        settle(tx, result, |_| true).await
    }

    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage> {
        if query.filters.is_empty() {
            // The page and the maintained count in one statement: one round trip, one snapshot.
            let (page_sql, page_values) =
                list_query::unfiltered_page(scope, query, Dialect::Postgres)
                    .build_sqlx(PostgresQueryBuilder);
            let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_values)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
            let (total, generation) = match total_and_generation(rows.first())? {
                Some(found) => found,
                // A page past the end has no row to carry the total: read it alone.
                None => (
                    sqlx::query_scalar(q(&sql::COUNT_GET))
                        .bind(scope.org.as_str())
                        .bind(scope.project.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_error)?
                        .unwrap_or(0),
                    None,
                ),
            };
            return finish_page(query, &rows, total, generation);
        }
        // A filtered page carries the project's generation; its count is reused while that
        // generation is current, else counted once (with the generation it was counted at).
        let (page_sql, page_values) = list_query::filtered_page(scope, query, Dialect::Postgres)
            .build_sqlx(PostgresQueryBuilder);
        let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_values)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let generation: Option<i64> = match rows.first() {
            Some(row) => row
                .try_get::<Option<i64>, _>(list_query::GENERATION)
                .map_err(db_error)?,
            None => None,
        };
        let key = crate::CountCache::key(scope, query);
        let cached = generation.and_then(|g| self.counts.get(&key, g));
        let (total, generation) = match cached {
            Some(n) => (i64::try_from(n).unwrap_or(i64::MAX), generation),
            None => {
                let (count_sql, count_values) = list_query::count_with_generation(scope, query)
                    .build_sqlx(PostgresQueryBuilder);
                let row = sqlx::query_with(AssertSqlSafe(count_sql), count_values)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                let n: i64 = row.try_get(0).map_err(db_error)?;
                let counted_at: Option<i64> =
                    row.try_get(list_query::GENERATION).map_err(db_error)?;
                if let Some(g) = counted_at {
                    self.counts.put(key, g, u64::try_from(n).unwrap_or(0));
                }
                (n, empty_page_generation(generation, n, counted_at))
            }
        };
        finish_page(query, &rows, total, generation)
    }

    async fn project_generation(&self, scope: &TenantScope) -> Result<Option<i64>> {
        sqlx::query_scalar(q(&sql::GENERATION_GET))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn record_verification(
        &self,
        scope: &TenantScope,
        id: Uuid,
        status: Status,
        message: &str,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        let mut tx = self.begin().await?;
        let result = async {
            let done = sqlx::query(q(&sql::RECORD_VERIFICATION))
                .bind(status.as_str())
                .bind(message)
                .bind(ts(at))
                .bind(scope.org.as_str())
                .bind(scope.project.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            add_to_count(&mut tx, scope, 0).await?;
            let model = fetch_model(&mut tx, scope, id).await?;
            append_audit(&mut tx, scope, id, model.resource_uri.as_str(), audit, at).await?;
            Ok(Some(model))
        }
        .await;
        settle(tx, result, Option::is_some).await
    }
    async fn model_history(
        &self,
        scope: &TenantScope,
        key: &ModelKey,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        // A key matches by resource_uri or by id; the other column gets a value no row has.
        let (uri, id) = match key {
            ModelKey::Uri(u) => (u.as_str().to_owned(), Uuid::nil()),
            ModelKey::Id(id) => (String::new(), *id),
        };
        let rows = sqlx::query(q(&sql::HISTORY_PAGE))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(&uri)
            .bind(id)
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let total: i64 = sqlx::query_scalar(q(&sql::HISTORY_COUNT))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(&uri)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let events = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((events, u64::try_from(total).unwrap_or(0)))
    }

    async fn audit_events(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        let since = filter.since.map(|t| t.as_offset_date_time());
        let until = filter.until.map(|t| t.as_offset_date_time());
        macro_rules! filtered {
            ($q:expr) => {
                $q.bind(org.as_str())
                    .bind(&filter.action)
                    .bind(&filter.action)
                    .bind(&filter.resource_uri)
                    .bind(&filter.resource_uri)
                    .bind(&filter.actor)
                    .bind(&filter.actor)
                    .bind(&filter.actor)
                    .bind(since.clone())
                    .bind(since.clone())
                    .bind(until.clone())
                    .bind(until.clone())
            };
        }
        let rows = filtered!(sqlx::query(q(&sql::AUDIT_PAGE)))
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let total: i64 = filtered!(sqlx::query_scalar(q(&sql::AUDIT_COUNT)))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let events = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((events, u64::try_from(total).unwrap_or(0)))
    }
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken> {
        let id = Uuid::now_v7();
        let now = Timestamp::now();
        let result = sqlx::query(q(&sql::INSERT_TOKEN))
            .bind(id)
            .bind(&token.name)
            .bind(&token.hash)
            .bind(token.org.as_str())
            .bind(token.project.to_string())
            .bind(token.role.as_str())
            .bind(ts(now))
            .bind(token.expires_at.map(ts))
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(ApiToken {
                id,
                name: token.name,
                org: token.org,
                project: token.project,
                role: token.role,
                created_at: now,
                revoked_at: None,
                expires_at: token.expires_at,
                last_used_at: None,
            }),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists(format!(
                "a token named '{}' already exists in organization {}",
                token.name, token.org
            ))),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<FoundToken>> {
        let row = sqlx::query(q(&sql::TOKEN_BY_HASH))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(found_token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(q(&sql::LIST_TOKENS))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn org_tokens(&self, org: &OrgId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(q(&sql::ORG_TOKENS))
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_org_token(&self, org: &OrgId, name: &str) -> Result<bool> {
        let done = sqlx::query(q(&sql::REVOKE_ORG_TOKEN))
            .bind(ts(Timestamp::now()))
            .bind(org.as_str())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_tokens(&self, used: &[(Uuid, Timestamp)]) -> Result<()> {
        for (id, at) in used {
            sqlx::query(q(&sql::TOUCH_TOKEN))
                .bind(ts(*at))
                .bind(*id)
                .bind(ts(*at))
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn sealed_batch(
        &self,
        after: Option<Uuid>,
        limit: u32,
        not_kek: Option<&str>,
    ) -> Result<Vec<SealedRecord>> {
        let rows = sqlx::query(q(&sql::SEALED_AFTER))
            .bind(after)
            .bind(after)
            .bind(not_kek)
            .bind(not_kek)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(sealed_record_from_row).collect()
    }

    async fn replace_sealed(&self, record: &SealedRecord, new: &SealedCredentials) -> Result<bool> {
        let mut tx = self.begin().await?;
        let result = async {
            let done = sqlx::query(q(&sql::REPLACE_SEALED))
                .bind(&new.kek_id)
                .bind(&new.blob)
                .bind(record.scope.org.as_str())
                .bind(record.scope.project.as_str())
                .bind(record.id)
                .bind(&record.credentials.kek_id)
                .bind(&record.credentials.blob)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            let replaced = done.rows_affected() > 0;
            if replaced {
                // Whether the credentials open decides the status a list shows: a new generation.
                add_to_count(&mut tx, &record.scope, 0).await?;
            }
            Ok(replaced)
        }
        .await;
        settle(tx, result, |_| true).await
    }

    async fn audit_organizations(&self) -> Result<Vec<String>> {
        sqlx::query_scalar(q(&sql::AUDIT_ORGS))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn audit_chain(&self, org: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(q(&sql::AUDIT_CHAIN))
            .bind(org)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn count_by_kek(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(q(&sql::COUNT_BY_KEK))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
            .collect())
    }
    async fn insert_models(
        &self,
        scope: &TenantScope,
        models: &[NewModel],
        audit: &AuditEntry,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let result = async {
            if models.iter().any(|m| m.generated) {
                // A generated uri depends on the ones before it: one at a time.
                for new in models {
                    insert_in(&mut tx, scope, new, audit).await?;
                }
            } else {
                insert_all(&mut tx, scope, models, audit).await?;
            }
            Ok(models.len() as u64)
        }
        .await;
        settle(tx, result, |_| true).await
    }
}

#[async_trait]
impl ServerStore for PostgresStore {
    async fn ready(&self) -> Result<()> {
        let applied: i64 = sqlx::query_scalar(q(&sql::APPLIED_MIGRATIONS))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        let expected = MIGRATOR.iter().count() as i64;
        if applied < expected {
            return Err(Error::Unavailable(format!(
                "database schema is behind: {applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        vec![crate::pool_usage(
            "primary",
            self.pool.options().get_max_connections(),
            &self.pool,
        )]
    }

    async fn count_by_status_provider(&self) -> Result<Vec<StatusProviderCount>> {
        let rows: Vec<(String, Option<String>, i64)> =
            sqlx::query_as(q(&sql::COUNT_BY_STATUS_PROVIDER))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(status, provider, n)| StatusProviderCount {
                status,
                provider,
                count: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }
    async fn claim_checks(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedCheck>> {
        let rows = sqlx::query(q(&sql::CLAIM_CHECKS_POSTGRES))
            .bind(owner)
            .bind(ts(lease_until))
            .bind(ts(now))
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedCheck {
                    model: model_from_row(row)?,
                    failures: row.try_get("check_failures").map_err(db_error)?,
                })
            })
            .collect()
    }

    async fn replica_heartbeat(
        &self,
        id: &str,
        kek_ids: &[String],
        seal_kek_id: &str,
        live_for: std::time::Duration,
    ) -> Result<()> {
        // The database's clock, not this host's: every replica and `keys rotate` compare
        // against the same one.
        let upsert = format!(
            "INSERT INTO replicas ({}) VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4)) \
             ON CONFLICT (replica) DO UPDATE SET kek_ids = excluded.kek_ids, \
             seal_kek_id = excluded.seal_kek_id, seen_at = excluded.seen_at, \
             live_until = excluded.live_until",
            sql::REPLICA_COLUMNS
        );
        sqlx::query(AssertSqlSafe(upsert))
            .bind(id)
            .bind(kek_ids.join(","))
            .bind(seal_kek_id)
            .bind(live_for.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM replicas WHERE seen_at < now() - interval '1 day'")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn live_replicas(&self) -> Result<Vec<ReplicaBeat>> {
        let select = format!(
            "SELECT {} FROM replicas WHERE live_until >= now() ORDER BY replica",
            sql::REPLICA_COLUMNS
        );
        let rows = sqlx::query(AssertSqlSafe(select))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(replica_from_row).collect()
    }

    async fn forget_replica(&self, id: &str) -> Result<()> {
        sqlx::query(q(&sql::FORGET_REPLICA))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn finish_check(
        &self,
        scope: &TenantScope,
        id: Uuid,
        owner: &str,
        succeeded: bool,
        next_check_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(q(&sql::FINISH_CHECK))
            .bind(ts(next_check_at))
            .bind(succeeded)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn close(&self) {
        self.pool.close().await;
    }
}
