//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go through a pool of one connection, so SQLite's single writer never sees
//! contention from inside this process (other processes, such as `modelreg token create`,
//! wait on the busy timeout). Reads use their own pool and, thanks to WAL, never block or wait
//! for the writer. `synchronous=FULL` makes every acknowledged commit durable, and
//! `secure_delete` overwrites deleted rows, credentials included.

use std::{path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use modelreg_core::{
    Error, Result,
    list::{ListPage, ListQuery},
    model::{Model, ModelFields},
    resource_uri::{ModelKey, ResourceUri},
    store::{ApiToken, ModelChange, ModelStore, NewModel, NewToken, Store, TokenStore},
    tenant::TenantScope,
    timestamp::Timestamp,
};
use sea_query::SqliteQueryBuilder;
use sea_query_sqlx::SqlxBinder;
use sqlx::{
    AssertSqlSafe, Row, Sqlite, SqlitePool, Transaction,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use uuid::Uuid;

use crate::{
    db_error, list_query,
    rows::{model_columns_sql, model_from_row, token_from_row},
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 8;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
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
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| open_error(path, e))?;
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
        Ok(SqliteStore { read, write })
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

fn open_error(path: &Path, e: sqlx::Error) -> Error {
    Error::Unavailable(format!(
        "cannot open the database at {}: {e}",
        path.display()
    ))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

async fn fetch_model(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    id: Uuid,
) -> Result<Model> {
    let sql = format!(
        "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? AND id = ?",
        model_columns_sql()
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    model_from_row(&row)
}

async fn replace_tags(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    id: Uuid,
    tags: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM model_tags WHERE model_id = ?")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for tag in tags {
        sqlx::query(
            "INSERT INTO model_tags (model_id, organization_id, project_id, tag) VALUES (?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(tag)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

/// The smallest free `base`, `base-2`, `base-3`, … among the project's resource_uris.
async fn free_generated_uri(
    tx: &mut Transaction<'static, Sqlite>,
    scope: &TenantScope,
    base: &ResourceUri,
) -> Result<ResourceUri> {
    // Every candidate starts with the first 89 characters of the base (a suffix is at most
    // 11 characters), so one range query finds all the taken ones.
    let prefix: String = base.as_str().chars().take(89).collect();
    let taken: Vec<String> = sqlx::query_scalar(
        "SELECT resource_uri FROM models WHERE organization_id = ? AND project_id = ? \
         AND resource_uri >= ? AND resource_uri < ?",
    )
    .bind(scope.org.as_str())
    .bind(scope.project.as_str())
    .bind(&prefix)
    .bind(format!("{prefix}\u{10FFFF}"))
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    if !taken.iter().any(|t| t == base.as_str()) {
        return Ok(base.clone());
    }
    let mut n = 2u32;
    loop {
        let candidate = base.with_suffix(n);
        if !taken.iter().any(|t| t == candidate.as_str()) {
            return Ok(candidate);
        }
        n += 1;
    }
}

fn write_fields<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    f: &'q ModelFields,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(&f.name)
        .bind(f.name.to_lowercase())
        .bind(&f.litellm_model)
        .bind(f.provider.clone().unwrap_or_default())
        .bind(&f.description)
        .bind(f.description.as_deref().unwrap_or("").to_lowercase())
        .bind(json(&f.tags))
        .bind(&f.api_base)
        .bind(&f.api_version)
        .bind(f.mode.map(|m| m.as_str()).unwrap_or(""))
        .bind(f.max_input_tokens)
        .bind(f.max_output_tokens)
        .bind(f.default_max_tokens)
        .bind(f.rpm)
        .bind(f.tpm)
        .bind(f.default_temperature)
        .bind(f.timeout)
        .bind(f.status.as_str())
        .bind(&f.status_message)
}

#[async_trait]
impl ModelStore for SqliteStore {
    async fn insert_model(&self, scope: &TenantScope, new: NewModel) -> Result<Model> {
        let mut tx = self.begin_write().await?;
        let uri = if new.generated {
            free_generated_uri(&mut tx, scope, &new.resource_uri).await?
        } else {
            new.resource_uri.clone()
        };
        let now = new.now.to_string();
        let q = sqlx::query(
            "INSERT INTO models (name, name_lc, litellm_model, provider, description, \
             description_lc, tags, api_base, api_version, mode, max_input_tokens, \
             max_output_tokens, default_max_tokens, rpm, tpm, default_temperature, timeout, \
             status, status_message, id, organization_id, project_id, resource_uri, \
             created_at, updated_at, created_by, updated_by, credential_fields, \
             credentials_kek_id, credentials, version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                     ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        );
        let result = write_fields(q, &new.fields)
            .bind(new.id.to_string())
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(uri.as_str())
            .bind(&now)
            .bind(&now)
            .bind(&new.actor)
            .bind(&new.actor)
            .bind(json(&new.credentials.fields))
            .bind(&new.credentials.kek_id)
            .bind(&new.credentials.blob)
            .execute(&mut *tx)
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
        replace_tags(&mut tx, scope, new.id, &new.fields.tags).await?;
        let model = fetch_model(&mut tx, scope, new.id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(model)
    }

    async fn get_model(&self, scope: &TenantScope, key: &ModelKey) -> Result<Option<Model>> {
        let (column, value) = match key {
            ModelKey::Uri(u) => ("resource_uri", u.as_str().to_owned()),
            ModelKey::Id(id) => ("id", id.to_string()),
        };
        let sql = format!(
            "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? AND {column} = ?",
            model_columns_sql()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
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
    ) -> Result<Option<Model>> {
        let mut tx = self.begin_write().await?;
        let q = sqlx::query(
            "UPDATE models SET name = ?, name_lc = ?, litellm_model = ?, provider = ?, \
             description = ?, description_lc = ?, tags = ?, api_base = ?, api_version = ?, \
             mode = ?, max_input_tokens = ?, max_output_tokens = ?, default_max_tokens = ?, \
             rpm = ?, tpm = ?, default_temperature = ?, timeout = ?, status = ?, \
             status_message = ?, updated_at = ?, updated_by = ?, version = version + 1 \
             WHERE organization_id = ? AND project_id = ? AND id = ? AND version = ?",
        );
        let done = write_fields(q, &change.fields)
            .bind(change.now.to_string())
            .bind(&change.actor)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(change.id.to_string())
            .bind(change.expected_version)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(c) = &change.credentials {
            sqlx::query(
                "UPDATE models SET credential_fields = ?, credentials_kek_id = ?, credentials = ? \
                 WHERE organization_id = ? AND project_id = ? AND id = ?",
            )
            .bind(json(&c.fields))
            .bind(&c.kek_id)
            .bind(&c.blob)
            .bind(scope.org.as_str())
            .bind(scope.project.as_str())
            .bind(change.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        replace_tags(&mut tx, scope, change.id, &change.fields.tags).await?;
        let model = fetch_model(&mut tx, scope, change.id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(model))
    }

    async fn delete_model(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM models WHERE organization_id = ? AND project_id = ? AND id = ? \
             AND (? IS NULL OR version = ?)",
        )
        .bind(scope.org.as_str())
        .bind(scope.project.as_str())
        .bind(id.to_string())
        .bind(expected_version)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // ON DELETE CASCADE removes the tags; this keeps the intent explicit.
        sqlx::query("DELETE FROM model_tags WHERE model_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        if done.rows_affected() > 0 {
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
        Ok(done.rows_affected() > 0)
    }

    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage> {
        let (page_sql, page_values) = list_query::page(scope, query).build_sqlx(SqliteQueryBuilder);
        let (count_sql, count_values) =
            list_query::count(scope, query).build_sqlx(SqliteQueryBuilder);
        // One read transaction, so the page and its count see the same snapshot.
        let mut tx = self.read.begin().await.map_err(db_error)?;
        let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_values)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?;
        let total: i64 = sqlx::query_with(AssertSqlSafe(count_sql), count_values)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .try_get(0)
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let has_more = rows.len() > query.limit as usize;
        let items = rows
            .iter()
            .take(query.limit as usize)
            .map(model_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage {
            items,
            total_items: u64::try_from(total).unwrap_or(0),
            has_more,
        })
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken> {
        let id = Uuid::now_v7();
        let now = Timestamp::now();
        let result = sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, organization_id, project_id, role, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&token.name)
        .bind(&token.hash)
        .bind(token.org.as_str())
        .bind(token.project.to_string())
        .bind(token.role.as_str())
        .bind(now.to_string())
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
            }),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists(format!(
                "a token named '{}' already exists",
                token.name
            ))),
            Err(e) => Err(db_error(e)),
        }
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        let row =
            sqlx::query("SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL")
                .bind(hash)
                .fetch_optional(&self.read)
                .await
                .map_err(db_error)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, name: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
        )
        .bind(Timestamp::now().to_string())
        .bind(name)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
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

    async fn close(&self) {
        // Readers first: the last connection to close checkpoints and removes the WAL, and
        // only the writer can.
        self.read.close().await;
        self.write.close().await;
    }
}
