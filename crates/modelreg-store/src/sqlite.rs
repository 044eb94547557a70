//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go through a pool of one connection, so SQLite's single writer never sees
//! contention from inside this process (other processes, such as `modelreg token create`,
//! wait on the busy timeout). Creates and updates share transactions (`group_commit`), so
//! writes that arrive together cost one fsync. Reads use their own pool and, thanks to WAL, never block or wait
//! for the writer. `synchronous=FULL` makes every acknowledged commit durable, and
//! `secure_delete` overwrites deleted rows, credentials included.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use modelreg_core::{
    Error, Result,
    audit::{AuditEntry, AuditEvent},
    list::{ListPage, ListQuery, Paging},
    model::{Model, Status},
    resource_uri::ModelKey,
    secrets::SealedCredentials,
    store::{
        ApiToken, AuditFilter, ClaimedCheck, FoundToken, MaintenanceStore, ModelChange, ModelStore,
        NewModel, NewToken, PoolUsage, ReplicaBeat, SealedRecord, ServerStore, StatusProviderCount, Store,
        TokenStore,
    },
    tenant::{OrgId, TenantScope},
    timestamp::Timestamp,
};
use sea_query::{SelectStatement, SqliteQueryBuilder};
use sea_query_sqlx::SqlxBinder;
use sqlx::{
    AssertSqlSafe, Row, Sqlite, SqlitePool, Transaction,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

use crate::{
    db_error,
    group_commit::Writer,
    list_query::{self, Dialect},
    rows::{
        RowAccess, audit_from_row, bind_audit_text, empty_page_generation, finish_models,
        finish_page, found_token_from_row, model_from_row, next_audit_event, replica_from_row,
        sealed_record_from_row, token_from_row, total_and_generation,
    },
    sql,
    sqlite_direct::{self, DirectReads},
};

static MIGRATOR: &std::sync::LazyLock<Migrator> = &crate::migrations::SQLITE;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 8;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Point reads that skip sqlx's connection thread (see `sqlite_direct`).
    direct: DirectReads,
    /// Creates and updates, committed in groups on `write`.
    writer: Writer,
    counts: crate::CountCache,
}

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
        let base = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db_error)?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("secure_delete", "ON");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .before_acquire(|conn, _| Box::pin(not_stuck_in_a_transaction(conn)))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| open_error(path, e))?;
        let newest: Option<i64> = if sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&write)
        .await
        .map_err(db_error)?
            > 0
        {
            sqlx::query_scalar(AssertSqlSafe(sql::NEWEST_MIGRATION.sqlite.as_str()))
                .fetch_one(&write)
                .await
                .map_err(db_error)?
        } else {
            None
        };
        crate::refuse_newer_schema(
            newest,
            MIGRATOR,
            &format!("the database at {}", path.display()),
        )?;
        MIGRATOR.run(&write).await.map_err(|e| {
            Error::Unavailable(format!(
                "cannot migrate the database at {}: {e}",
                path.display()
            ))
        })?;
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteStore {
            read,
            writer: Writer::start(path, BUSY_TIMEOUT)?,
            write,
            direct: DirectReads::new(path),
            counts: crate::CountCache::default(),
        })
    }

    /// An unfiltered page read on the calling thread (`sqlite_direct`), when its work is
    /// bounded: a cursor page seeks to its cursor in the sort's index, and a numbered page
    /// skips at most `DIRECT_OFFSET` rows. This saves sqlx's copy of every value and its hand-off
    /// of every row between threads, most of the cost of a 100-model page. `None`: take the
    /// sqlx path (also for a page past the end, whose total is read apart).
    fn direct_page(&self, statement: &SelectStatement, query: &ListQuery) -> Option<ListPage> {
        const DIRECT_OFFSET: u64 = 1_000;
        let bounded = match &query.paging {
            Paging::After(_) => true,
            Paging::Page(n) => {
                u64::from(n.saturating_sub(1)) * u64::from(query.limit) <= DIRECT_OFFSET
            }
        };
        if !bounded {
            return None;
        }
        let (sql, values) = statement.build(SqliteQueryBuilder);
        let rows = self
            .direct
            .rows(&sql, sqlite_direct::values(values)?, |r| {
                Ok((model_from_row(r)?, total_and_generation(Some(r))?))
            })?;
        let (total, generation) = rows.first()?.1?;
        let models = rows.into_iter().map(|(m, _)| m).collect();
        Some(finish_models(query, models, total, generation))
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        // IMMEDIATE takes the write lock up front, so a transaction that reads then writes
        // never fails on lock upgrade when another process writes too.
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }
}

/// Whether the writer connection is fit for a new transaction. After SQLITE_FULL or an I/O
/// error SQLite may roll the transaction back by itself; sqlx's own ROLLBACK then fails and
/// its transaction depth stays at 1, so every later `BEGIN` would fail. Such a connection is
/// closed, and the pool opens a new one.
async fn not_stuck_in_a_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> std::result::Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A rollback queued when the last transaction was dropped runs before this ping.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("the database writer was left in a failed transaction; reconnecting");
        return Ok(false);
    }
    Ok(true)
}

fn open_error(path: &Path, e: sqlx::Error) -> Error {
    Error::Unavailable(format!(
        "cannot open the database at {}: {e}",
        path.display()
    ))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Ends a transaction explicitly: commits when `commit` says so, else rolls back. (A dropped
/// transaction would only be rolled back lazily, holding its locks until the connection is
/// next used.)
async fn settle<T>(
    tx: Transaction<'static, Sqlite>,
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

async fn fetch_model(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Model> {
    let row = sqlx::query(AssertSqlSafe(sql::MODEL_BY_ID.sqlite.as_str()))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    model_from_row(&row)
}

/// Keeps `model_counts` in step with an insert (+1) or a delete (-1), in the same transaction.
async fn add_to_count(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    delta: i64,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(sql::COUNT_ADD.sqlite.as_str()))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(delta)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Appends an audit event to the organization's chain, in the caller's transaction.
async fn append_audit(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    model_id: Uuid,
    resource_uri: &str,
    entry: &AuditEntry,
    at: Timestamp,
) -> Result<()> {
    let last: Option<(i64, String)> =
        sqlx::query_as(AssertSqlSafe(sql::AUDIT_LAST.sqlite.as_str()))
            .bind(scope.org.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_error)?;
    let event = next_audit_event(scope, model_id, resource_uri, entry, at, last);
    let q = sqlx::query(AssertSqlSafe(sql::AUDIT_INSERT.sqlite.as_str()));
    bind_audit_text!(q, &event)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[async_trait]
impl ModelStore for SqliteStore {
    async fn insert_model(
        &self,
        scope: &TenantScope,
        new: NewModel,
        audit: &AuditEntry,
    ) -> Result<Model> {
        self.writer.insert(scope, new, audit).await
    }

    async fn get_model(&self, scope: &TenantScope, key: &ModelKey) -> Result<Option<Model>> {
        let (statement, value) = match key {
            ModelKey::Uri(u) => (&sql::MODEL_BY_URI, u.as_str().to_owned()),
            ModelKey::Id(id) => (&sql::MODEL_BY_ID, id.to_string()),
        };
        let params = [scope.org.as_str(), scope.project.as_str(), value.as_str()];
        if let Some(found) = self
            .direct
            .row(&statement.sqlite, &params, |r| model_from_row(r))
        {
            return Ok(found);
        }
        let row = sqlx::query(AssertSqlSafe(statement.sqlite.as_str()))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(value)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(model_from_row).transpose()
    }

    async fn update_model(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        // A version that moved on writes nothing: its savepoint is rolled back.
        self.writer.update(scope, change, audit).await
    }

    async fn delete_model(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let result = async {
            let deleted_uri: Option<String> =
                sqlx::query_scalar(AssertSqlSafe(sql::DELETE_MODEL.sqlite.as_str()))
                    .bind(scope.org.as_str())
                    .bind(scope.project.as_str())
                    .bind(id.to_string())
                    .bind(expected_version)
                    .bind(expected_version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
            // ON DELETE CASCADE removes the tags; this keeps the intent explicit.
            sqlx::query(AssertSqlSafe(sql::DELETE_TAGS.sqlite.as_str()))
                .bind(id.to_string())
                .execute(&mut *tx)
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
        let deleted = settle(tx, result, |_| true).await?;
        if deleted {
            // secure_delete overwrote the row in the database pages, but the WAL still holds
            // images of them until a checkpoint. Truncating the WAL now removes the deleted
            // secret from disk at once. Best effort: a failure leaves it to the next checkpoint.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await
            {
                tracing::warn!(error = %e, "checkpoint after delete failed");
            }
        }
        Ok(deleted)
    }

    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage> {
        if query.filters.is_empty() {
            // The page and the maintained count in one statement: one round trip, one snapshot.
            let statement = list_query::unfiltered_page(scope, query, Dialect::Sqlite);
            if let Some(page) = self.direct_page(&statement, query) {
                return Ok(page);
            }
            let (page_sql, page_values) = statement.build_sqlx(SqliteQueryBuilder);
            let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_values)
                .fetch_all(&self.read)
                .await
                .map_err(db_error)?;
            let (total, generation) = match total_and_generation(rows.first())? {
                Some(found) => found,
                // A page past the end has no row to carry the total: read it alone.
                None => (
                    sqlx::query_scalar(AssertSqlSafe(sql::COUNT_GET.sqlite.as_str()))
                        .bind(scope.org.as_str())
                        .bind(scope.project.as_str())
                        .fetch_optional(&self.read)
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
        let (page_sql, page_values) =
            list_query::filtered_page(scope, query, Dialect::Sqlite).build_sqlx(SqliteQueryBuilder);
        let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_values)
            .fetch_all(&self.read)
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
                let (count_sql, count_values) =
                    list_query::count_with_generation(scope, query).build_sqlx(SqliteQueryBuilder);
                let row = sqlx::query_with(AssertSqlSafe(count_sql), count_values)
                    .fetch_one(&self.read)
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
        let params = [scope.org.as_str(), scope.project.as_str()];
        if let Some(found) = self.direct.row(&sql::GENERATION_GET.sqlite, &params, |r| {
            r.int("generation")
        }) {
            return Ok(found);
        }
        sqlx::query_scalar(AssertSqlSafe(sql::GENERATION_GET.sqlite.as_str()))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .fetch_optional(&self.read)
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
        let mut tx = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(AssertSqlSafe(sql::RECORD_VERIFICATION.sqlite.as_str()))
                .bind(status.as_str())
                .bind(message)
                .bind(at.to_string())
                .bind(scope.org.as_str())
                .bind(scope.project.as_str())
                .bind(id.to_string())
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
        let rows = sqlx::query(AssertSqlSafe(sql::HISTORY_PAGE.sqlite.as_str()))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(&uri)
            .bind(id.to_string())
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(sql::HISTORY_COUNT.sqlite.as_str()))
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(&uri)
            .bind(id.to_string())
            .fetch_one(&self.read)
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
        let since = filter.since.map(|t| t.to_string());
        let until = filter.until.map(|t| t.to_string());
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
        let rows = filtered!(sqlx::query(AssertSqlSafe(sql::AUDIT_PAGE.sqlite.as_str())))
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        let total: i64 = filtered!(sqlx::query_scalar(AssertSqlSafe(
            sql::AUDIT_COUNT.sqlite.as_str()
        )))
        .fetch_one(&self.read)
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
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken> {
        let id = Uuid::now_v7();
        let now = Timestamp::now();
        let result = sqlx::query(AssertSqlSafe(sql::INSERT_TOKEN.sqlite.as_str()))
            .bind(id.to_string())
            .bind(&token.name)
            .bind(&token.hash)
            .bind(token.org.as_str())
            .bind(token.project.to_string())
            .bind(token.role.as_str())
            .bind(now.to_string())
            .bind(token.expires_at.map(|t| t.to_string()))
            .execute(&self.write)
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
        if let Some(found) = self.direct.row(&sql::TOKEN_BY_HASH.sqlite, &[hash], |r| {
            found_token_from_row(r)
        }) {
            return Ok(found);
        }
        let row = sqlx::query(AssertSqlSafe(sql::TOKEN_BY_HASH.sqlite.as_str()))
            .bind(hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(found_token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(AssertSqlSafe(sql::LIST_TOKENS.sqlite.as_str()))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn org_tokens(&self, org: &OrgId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(AssertSqlSafe(sql::ORG_TOKENS.sqlite.as_str()))
            .bind(org.as_str())
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_org_token(&self, org: &OrgId, name: &str) -> Result<bool> {
        let done = sqlx::query(AssertSqlSafe(sql::REVOKE_ORG_TOKEN.sqlite.as_str()))
            .bind(Timestamp::now().to_string())
            .bind(org.as_str())
            .bind(name)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn touch_tokens(&self, used: &[(Uuid, Timestamp)]) -> Result<()> {
        for (id, at) in used {
            sqlx::query(AssertSqlSafe(sql::TOUCH_TOKEN.sqlite.as_str()))
                .bind(at.to_string())
                .bind(id.to_string())
                .bind(at.to_string())
                .execute(&self.write)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn sealed_batch(
        &self,
        after: Option<Uuid>,
        limit: u32,
        not_kek: Option<&str>,
    ) -> Result<Vec<SealedRecord>> {
        let after = after.map(|a| a.to_string());
        let rows = sqlx::query(AssertSqlSafe(sql::SEALED_AFTER.sqlite.as_str()))
            .bind(after.clone())
            .bind(after)
            .bind(not_kek)
            .bind(not_kek)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(sealed_record_from_row).collect()
    }

    async fn replace_sealed(&self, record: &SealedRecord, new: &SealedCredentials) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let result = async {
            let done = sqlx::query(AssertSqlSafe(sql::REPLACE_SEALED.sqlite.as_str()))
                .bind(&new.kek_id)
                .bind(&new.blob)
                .bind(record.scope.org.as_str())
                .bind(record.scope.project.as_str())
                .bind(record.id.to_string())
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
        sqlx::query_scalar(AssertSqlSafe(sql::AUDIT_ORGS.sqlite.as_str()))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)
    }

    async fn audit_chain(&self, org: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(AssertSqlSafe(sql::AUDIT_CHAIN.sqlite.as_str()))
            .bind(org)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn count_by_kek(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as(AssertSqlSafe(sql::COUNT_BY_KEK.sqlite.as_str()))
                .fetch_all(&self.read)
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
        // Cloned once into the writer's queue; seeding and imports call this, not requests.
        self.writer.insert_many(scope, models.to_vec(), audit).await
    }
}

#[async_trait]
impl ServerStore for SqliteStore {
    async fn ready(&self) -> Result<()> {
        let applied: i64 =
            sqlx::query_scalar(AssertSqlSafe(sql::APPLIED_MIGRATIONS.sqlite.as_str()))
                .fetch_one(&self.read)
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
        vec![
            crate::pool_usage("read", READERS, &self.read),
            crate::pool_usage("write", 1, &self.write),
        ]
    }

    async fn count_by_status_provider(&self) -> Result<Vec<StatusProviderCount>> {
        let rows: Vec<(String, Option<String>, i64)> =
            sqlx::query_as(AssertSqlSafe(sql::COUNT_BY_STATUS_PROVIDER.sqlite.as_str()))
                .fetch_all(&self.read)
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
        let rows = sqlx::query(AssertSqlSafe(sql::CLAIM_CHECKS_SQLITE.sqlite.as_str()))
            .bind(owner)
            .bind(lease_until.to_string())
            .bind(now.to_string())
            .bind(now.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.write)
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
        let now = Timestamp::now();
        let upsert = format!(
            "INSERT INTO replicas ({}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (replica) DO UPDATE SET \
             kek_ids = excluded.kek_ids, seal_kek_id = excluded.seal_kek_id, \
             seen_at = excluded.seen_at, live_until = excluded.live_until",
            sql::REPLICA_COLUMNS
        );
        sqlx::query(AssertSqlSafe(upsert))
            .bind(id)
            .bind(kek_ids.join(","))
            .bind(seal_kek_id)
            .bind(now.to_string())
            .bind(now.plus(live_for).to_string())
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM replicas WHERE seen_at < ?")
            .bind(
                now.minus(std::time::Duration::from_secs(24 * 3600))
                    .to_string(),
            )
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn live_replicas(&self) -> Result<Vec<ReplicaBeat>> {
        let select = format!(
            "SELECT {} FROM replicas WHERE live_until >= ? ORDER BY replica",
            sql::REPLICA_COLUMNS
        );
        let rows = sqlx::query(AssertSqlSafe(select))
            .bind(Timestamp::now().to_string())
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(replica_from_row).collect()
    }

    async fn forget_replica(&self, id: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(sql::FORGET_REPLICA.sqlite.as_str()))
            .bind(id)
            .execute(&self.write)
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
        sqlx::query(AssertSqlSafe(sql::FINISH_CHECK.sqlite.as_str()))
            .bind(next_check_at.to_string())
            .bind(succeeded)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(id.to_string())
            .bind(owner)
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) {
        // Readers first: the last connection to close checkpoints and removes the WAL, and
        // only the writer can.
        self.read.close().await;
        self.direct.close();
        self.writer.close().await;
        self.write.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelreg_core::{
        audit::AuditAction,
        auth::{ProjectGrant, Role},
        model::{Mode, ModelFields},
        resource_uri::ResourceUri,
        tenant::ProjectId,
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
                let (sql, values) = list_query::filtered_page(&scope, &q, Dialect::Sqlite)
                    .build_sqlx(SqliteQueryBuilder);
                let plan: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as_with(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")), values)
                        .fetch_all(&store.read)
                        .await
                        .unwrap();
                let op = if dir == "asc" { ">" } else { "<" };
                let seek = format!("AND {field}{op}?)");
                assert!(
                    plan.iter().any(|(_, _, _, d)| d.contains(&seek)),
                    "{field}:{dir} does not seek: {plan:?}"
                );
            }
        }
    }

    /// A model with only the required fields, `m{i}`.
    fn plain_model(i: usize) -> NewModel {
        NewModel {
            id: Uuid::now_v7(),
            resource_uri: ResourceUri::parse(&format!("m{i}")).unwrap(),
            generated: false,
            fields: ModelFields {
                name: format!("m{i}"),
                litellm_model: "openai/gpt-4o".into(),
                provider: None,
                description: None,
                tags: vec![],
                api_base: None,
                api_version: None,
                mode: None,
                max_input_tokens: None,
                max_output_tokens: None,
                default_max_tokens: None,
                rpm: None,
                tpm: None,
                default_temperature: None,
                timeout: None,
                status: Status::Pending,
                status_message: None,
            },
            credentials: SealedCredentials {
                kek_id: "k1".into(),
                blob: vec![1],
                fields: vec![],
            },
            actor: "user:t".into(),
            now: Timestamp::now(),
        }
    }

    fn test_audit() -> AuditEntry {
        AuditEntry {
            action: AuditAction::Create,
            principal: "user:t".into(),
            on_behalf_of: None,
            request_id: None,
            changes: serde_json::json!({}),
        }
    }

    /// An unfiltered page read directly is the page the sqlx path reads, on every kind of
    /// page the direct path takes.
    #[tokio::test]
    async fn direct_pages_match_the_ordinary_path() {
        use modelreg_core::list::{After, CursorKeys};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let models: Vec<_> = (0..30).map(plain_model).collect();
        store
            .insert_models(&scope, &models, &test_audit())
            .await
            .unwrap();
        let first = ListQuery::parse(
            &[("limit".to_owned(), "7".to_owned())],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        let whole = store.list_models(&scope, &first).await.unwrap();
        let last = whole.items.last().unwrap();
        let mut after = ListQuery::parse(
            &[("limit".to_owned(), "7".to_owned())],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        after.paging = Paging::After(After {
            values: vec![last.created_at.to_string()],
            id: last.id,
        });
        let mut by_name = ListQuery::parse(
            &[
                ("sort".to_owned(), "name:asc".to_owned()),
                ("page".to_owned(), "3".to_owned()),
                ("limit".to_owned(), "10".to_owned()),
            ],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        let mut tail = by_name.clone();
        tail.paging = Paging::Page(4);
        // (query, models on the page): page 4 of 10 is past the end of 30.
        for (q, expected) in [(&first, 7), (&after, 7), (&by_name, 10), (&tail, 0)] {
            let statement = list_query::unfiltered_page(&scope, q, Dialect::Sqlite);
            let (sql, values) = statement.build_sqlx(SqliteQueryBuilder);
            let rows = sqlx::query_with(AssertSqlSafe(sql), values)
                .fetch_all(&store.read)
                .await
                .unwrap();
            let direct = store.direct_page(&statement, q);
            assert_eq!(rows.len().min(q.limit as usize), expected, "{q:?}");
            match total_and_generation(rows.first()).unwrap() {
                Some((total, generation)) => {
                    let ordinary = finish_page(q, &rows, total, generation).unwrap();
                    let direct = direct.expect("a bounded page is read directly");
                    assert_eq!(direct.items, ordinary.items, "{q:?}");
                    if q == &after {
                        // The cursor page follows the first page, without overlap.
                        assert!(direct.items.iter().all(|m| !whole.items.contains(m)));
                    }
                    assert_eq!(
                        (direct.total_items, direct.has_more, direct.generation),
                        (ordinary.total_items, ordinary.has_more, ordinary.generation),
                        "{q:?}"
                    );
                }
                // A page past the end has no row to carry the total: the sqlx path reads it.
                None => assert!(direct.is_none(), "{q:?}"),
            }
        }
        by_name.paging = Paging::Page(1_000);
        let far = list_query::unfiltered_page(&scope, &by_name, Dialect::Sqlite);
        assert!(
            store.direct_page(&far, &by_name).is_none(),
            "an unbounded offset"
        );
    }

    /// A clean close leaves no WAL behind: the direct readers and the writer thread close
    /// their connections first, so the sqlx writer's is the last and checkpoints.
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
        // A point read and a page, each served by a direct connection that is then kept.
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
        let commits = store.writer.commits();
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

    /// The direct reads return exactly what the sqlx path does, every column set.
    #[tokio::test]
    async fn direct_reads_match_the_ordinary_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("d.db")).await.unwrap();
        let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
        let audit = test_audit();
        let new = NewModel {
            id: Uuid::now_v7(),
            resource_uri: ResourceUri::parse("full").unwrap(),
            generated: false,
            fields: ModelFields {
                name: "Full".into(),
                litellm_model: "openai/gpt-4o".into(),
                provider: Some("openai".into()),
                description: Some("every field set".into()),
                tags: vec!["a".into(), "b".into()],
                api_base: Some("https://example.test/v1".into()),
                api_version: Some("2024-01-01".into()),
                mode: Some(Mode::Chat),
                max_input_tokens: Some(128_000),
                max_output_tokens: Some(4_096),
                default_max_tokens: Some(1_024),
                rpm: Some(60),
                tpm: Some(90_000),
                default_temperature: Some(0.7),
                timeout: Some(30.5),
                status: Status::Active,
                status_message: Some("ok".into()),
            },
            credentials: SealedCredentials {
                kek_id: "k1".into(),
                blob: vec![0, 1, 2, 255],
                fields: vec!["api_key".into()],
            },
            actor: "user:t".into(),
            now: Timestamp::now(),
        };
        let model = store.insert_model(&scope, new, &audit).await.unwrap();
        let token = store
            .insert_token(NewToken {
                name: "t".into(),
                org: scope.org.clone(),
                project: ProjectGrant::One(scope.project.clone()),
                role: Role::Viewer,
                hash: "h".into(),
                expires_at: None,
            })
            .await
            .unwrap();

        let uri = model.resource_uri.as_str();
        let params = [scope.org.as_str(), scope.project.as_str(), uri];
        let direct = store
            .direct
            .row(&sql::MODEL_BY_URI.sqlite, &params, |r| model_from_row(r))
            .expect("served directly");
        assert_eq!(direct.as_ref(), Some(&model));
        let key = ModelKey::Uri(model.resource_uri.clone());
        assert_eq!(store.get_model(&scope, &key).await.unwrap(), Some(model));

        let found = store
            .direct
            .row(&sql::TOKEN_BY_HASH.sqlite, &["h"], |r| {
                found_token_from_row(r)
            })
            .expect("served directly")
            .unwrap();
        assert_eq!(found.token, token);
        let generation = store.project_generation(&scope).await.unwrap();
        assert!(generation.is_some());
        assert_eq!(found.project_generation, generation);
        let missing = store
            .direct
            .row(&sql::TOKEN_BY_HASH.sqlite, &["nope"], |r| {
                found_token_from_row(r)
            });
        assert_eq!(missing, Some(None), "no row is an answer, not a fallback");
    }

    /// A read that cannot be made directly says so, and the caller takes the ordinary path.
    #[test]
    fn an_unreadable_database_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let direct = DirectReads::new(&dir.path().join("absent.db"));
        let read = direct.row("SELECT 1", &[], |r| r.int("1"));
        assert!(read.is_none());
    }
}
