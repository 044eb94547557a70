//! The one store implementation: every storage trait of modelreg, written once over a
//! `Backend`. Reads are here; writes' rules are in `writes.rs`; the two backends
//! (`sqlite.rs`, `postgres.rs`) say only where a transaction runs and how a statement is
//! bound.

use std::future::Future;

use async_trait::async_trait;
use futures::future::BoxFuture;
use modelreg_core::{
    Error, Result,
    audit::{AuditEntry, AuditEvent},
    list::{ListPage, ListQuery, Paging},
    model::{Model, Status},
    resource_uri::ModelKey,
    secrets::SealedCredentials,
    store::{
        ApiToken, AuditFilter, ClaimedCheck, FoundToken, MaintenanceStore, ModelChange, ModelStore,
        NewModel, NewToken, PoolUsage, ReplicaBeat, SealedRecord, ServerStore, StatusProviderCount,
        Store, TokenStore,
    },
    tenant::{OrgId, TenantScope},
    timestamp::Timestamp,
};
use uuid::Uuid;

use crate::{
    CountCache,
    exec::{Dialect, Exec, Value, params},
    list_query,
    rows::{
        audit_from_row, empty_page_generation, finish_models, found_token_from_row, model_from_row,
        replica_from_row, sealed_record_from_row, token_from_row,
    },
    sql, writes,
};

/// A unit of work on a connection of the backend: a read, or a write inside a transaction.
pub trait Job<C, T>:
    for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T>> + Send + 'static
{
}
impl<C, T, F> Job<C, T> for F where
    F: for<'c> FnOnce(&'c mut C) -> BoxFuture<'c, Result<T>> + Send + 'static
{
}

/// What a read costs, so the backend knows where to run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// A few rows by an index: microseconds.
    Point,
    /// Anything that may scan.
    Scan,
}

/// Where a backend's transactions run. The real differences between SQLite and PostgreSQL
/// are behind this and `Exec`; nothing else in the store knows which it talks to.
pub trait Backend: Send + Sync + 'static {
    const DIALECT: Dialect;
    type Conn: Exec;

    /// Runs `job` in one transaction: committed when it returns `Ok`, rolled back otherwise.
    fn write<T: Send + 'static>(
        &self,
        job: impl Job<Self::Conn, T>,
    ) -> impl Future<Output = Result<T>> + Send;

    /// Runs `job` on a connection for reading.
    fn read<T: Send + 'static>(
        &self,
        cost: Cost,
        job: impl Job<Self::Conn, T>,
    ) -> impl Future<Output = Result<T>> + Send;

    /// After a delete: removes what the files still hold of deleted rows, where the backend
    /// can (SQLite's write-ahead log).
    fn scrub(&self) -> impl Future<Output = ()> + Send;

    /// The migrations this binary applies.
    fn migrations(&self) -> usize;
    fn pool_usage(&self) -> Vec<PoolUsage>;
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The store over a backend. `SqliteStore` and `PostgresStore` are its two instances.
pub struct SqlStore<B> {
    pub(crate) backend: B,
    counts: CountCache,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> Self {
        SqlStore {
            backend,
            counts: CountCache::default(),
        }
    }

    async fn write<T: Send + 'static>(&self, job: impl Job<B::Conn, T>) -> Result<T> {
        self.backend.write(job).await
    }

    async fn read<T: Send + 'static>(&self, cost: Cost, job: impl Job<B::Conn, T>) -> Result<T> {
        self.backend.read(cost, job).await
    }

    /// Every row of one statement, read by `map`.
    async fn rows<T: Send + 'static>(
        &self,
        cost: Cost,
        statement: &'static sql::Statement,
        values: Vec<Value>,
        map: fn(&dyn crate::rows::RowAccess) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.read(cost, move |c| {
            Box::pin(async move { c.fetch(statement, values, map).await })
        })
        .await
    }

    /// One row of one statement, if any.
    async fn row<T: Send + 'static>(
        &self,
        cost: Cost,
        statement: &'static sql::Statement,
        values: Vec<Value>,
        map: fn(&dyn crate::rows::RowAccess) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self
            .rows(cost, statement, values, map)
            .await?
            .into_iter()
            .next())
    }

    /// A page of events and the count of all of them.
    async fn events_page(
        &self,
        (page, count): (&'static sql::Statement, &'static sql::Statement),
        filter: Vec<Value>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        self.read(Cost::Scan, move |c| {
            Box::pin(async move {
                let mut paged = filter.clone();
                paged.extend(params![
                    i64::from(limit),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ]);
                let events = c.fetch(page, paged, audit_from_row).await?;
                let total = c.fetch_optional(count, filter, |r| r.int("n")).await?;
                Ok((events, u64::try_from(total.unwrap_or(0)).unwrap_or(0)))
            })
        })
        .await
    }

    /// `EXPLAIN` of the statements a list request runs (the page and, when filtered, its
    /// count), for checking that filters use indexes.
    pub async fn explain_list(&self, scope: &TenantScope, query: &ListQuery) -> Result<String> {
        let explain = match B::DIALECT {
            Dialect::Sqlite => "EXPLAIN QUERY PLAN",
            Dialect::Postgres => "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)",
        };
        let mut statements = vec![list_query::build(
            list_query::page(scope, query, B::DIALECT),
            B::DIALECT,
        )];
        if !query.filters.is_empty() {
            statements.push(list_query::build(
                list_query::count(scope, query),
                B::DIALECT,
            ));
        }
        let unfiltered = query.filters.is_empty();
        self.read(Cost::Scan, move |c| {
            Box::pin(async move {
                let mut out = String::new();
                for (statement, values) in statements {
                    let column = match B::DIALECT {
                        Dialect::Sqlite => "detail",
                        Dialect::Postgres => "QUERY PLAN",
                    };
                    let plan = c
                        .fetch(&format!("{explain} {statement}"), values, |r| {
                            r.text(column)
                        })
                        .await?;
                    out.push_str(&plan.join("\n"));
                    out.push_str("\n\n");
                }
                if unfiltered {
                    out.push_str("Count: one row of model_counts, read by primary key.\n");
                }
                Ok(out)
            })
        })
        .await
    }
}

fn scoped(scope: &TenantScope) -> Vec<Value> {
    params![scope.org.as_str(), scope.project.as_str()]
}

/// A page whose work is bounded: a cursor page seeks to its cursor in the sort's index, and
/// a numbered page skips at most 1,000 rows.
fn bounded(query: &ListQuery) -> bool {
    match &query.paging {
        Paging::After(_) => true,
        Paging::Page(n) => u64::from(n.saturating_sub(1)) * u64::from(query.limit) <= 1_000,
    }
}

#[async_trait]
impl<B: Backend> ModelStore for SqlStore<B> {
    async fn insert_model(
        &self,
        scope: &TenantScope,
        new: NewModel,
        audit: &AuditEntry,
    ) -> Result<Model> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.write(move |c| Box::pin(async move { writes::insert(c, &scope, &new, &audit).await }))
            .await
    }

    async fn get_model(&self, scope: &TenantScope, key: &ModelKey) -> Result<Option<Model>> {
        let (statement, value) = match key {
            ModelKey::Uri(u) => (&*sql::MODEL_BY_URI, Value::from(u.as_str())),
            ModelKey::Id(id) => (&*sql::MODEL_BY_ID, Value::from(*id)),
        };
        let mut values = scoped(scope);
        values.push(value);
        self.row(Cost::Point, statement, values, model_from_row)
            .await
    }

    async fn update_model(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.write(move |c| {
            Box::pin(async move { writes::update(c, &scope, &change, &audit).await })
        })
        .await
    }

    async fn delete_model(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<bool> {
        let (scope, audit) = (scope.clone(), audit.clone());
        let deleted = self
            .write(move |c| {
                Box::pin(
                    async move { writes::delete(c, &scope, id, expected_version, &audit).await },
                )
            })
            .await?;
        if deleted {
            self.backend.scrub().await;
        }
        Ok(deleted)
    }

    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage> {
        let unfiltered = query.filters.is_empty();
        // An unfiltered page carries the maintained count and the generation in its own
        // statement; a filtered one the generation, its count reused while that generation is
        // current, else counted once (with the generation it was counted at).
        let statement = if unfiltered {
            list_query::unfiltered_page(scope, query, B::DIALECT)
        } else {
            list_query::filtered_page(scope, query, B::DIALECT)
        };
        let (page_sql, page_values) = list_query::build(statement, B::DIALECT);
        let cost = if unfiltered && bounded(query) {
            Cost::Point
        } else {
            Cost::Scan
        };
        let rows = self
            .read(cost, move |c| {
                Box::pin(async move {
                    c.fetch(&page_sql, page_values, move |r| {
                        let total = if unfiltered {
                            r.opt_int(list_query::TOTAL)?
                        } else {
                            None
                        };
                        Ok((
                            model_from_row(r)?,
                            total,
                            r.opt_int(list_query::GENERATION)?,
                        ))
                    })
                    .await
                })
            })
            .await?;
        let generation = rows.first().and_then(|(_, _, g)| *g);
        let (total, generation) = match rows.first() {
            Some((_, Some(total), _)) => (*total, generation),
            // A page past the end has no row to carry the total: read it alone.
            _ if unfiltered => {
                let total = self
                    .row(Cost::Point, &sql::COUNT_GET, scoped(scope), |r| {
                        r.int("models")
                    })
                    .await?;
                (total.unwrap_or(0), None)
            }
            _ => {
                let key = CountCache::key(scope, query);
                match generation.and_then(|g| self.counts.get(&key, g)) {
                    Some(n) => (i64::try_from(n).unwrap_or(i64::MAX), generation),
                    None => {
                        let (count_sql, count_values) = list_query::build(
                            list_query::count_with_generation(scope, query),
                            B::DIALECT,
                        );
                        let counted = self
                            .read(Cost::Scan, move |c| {
                                Box::pin(async move {
                                    c.fetch_optional(&count_sql, count_values, |r| {
                                        Ok((r.int("n")?, r.opt_int(list_query::GENERATION)?))
                                    })
                                    .await
                                })
                            })
                            .await?;
                        let (n, counted_at) = counted.unwrap_or((0, None));
                        if let Some(g) = counted_at {
                            self.counts.put(key, g, u64::try_from(n).unwrap_or(0));
                        }
                        (n, empty_page_generation(generation, n, counted_at))
                    }
                }
            }
        };
        let models = rows.into_iter().map(|(m, _, _)| m).collect();
        Ok(finish_models(query, models, total, generation))
    }

    async fn project_generation(&self, scope: &TenantScope) -> Result<Option<i64>> {
        self.row(Cost::Point, &sql::GENERATION_GET, scoped(scope), |r| {
            r.int("generation")
        })
        .await
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
        let (scope, audit, message) = (scope.clone(), audit.clone(), message.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                let outcome = (status.as_str(), message.as_str(), at);
                writes::record_verification(c, &scope, id, outcome, &audit).await
            })
        })
        .await
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
        let mut filter = scoped(scope);
        filter.extend(params![uri, id]);
        let statements = (&*sql::HISTORY_PAGE, &*sql::HISTORY_COUNT);
        self.events_page(statements, filter, offset, limit).await
    }

    async fn audit_events(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        let values = params![
            org.as_str(),
            filter.action.clone(),
            filter.action.clone(),
            filter.resource_uri.clone(),
            filter.resource_uri.clone(),
            filter.actor.clone(),
            filter.actor.clone(),
            filter.actor.clone(),
            filter.since,
            filter.since,
            filter.until,
            filter.until,
        ];
        let statements = (&*sql::AUDIT_PAGE, &*sql::AUDIT_COUNT);
        self.events_page(statements, values, offset, limit).await
    }
}

#[async_trait]
impl<B: Backend> TokenStore for SqlStore<B> {
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken> {
        let stored = ApiToken {
            id: Uuid::now_v7(),
            name: token.name,
            org: token.org,
            project: token.project,
            role: token.role,
            created_at: Timestamp::now(),
            revoked_at: None,
            expires_at: token.expires_at,
            last_used_at: None,
        };
        let values = params![
            stored.id,
            stored.name.as_str(),
            token.hash,
            stored.org.as_str(),
            stored.project.to_string(),
            stored.role.as_str(),
            stored.created_at,
            stored.expires_at,
        ];
        let inserted = self
            .write(move |c| Box::pin(async move { c.execute(&*sql::INSERT_TOKEN, values).await }))
            .await;
        match inserted {
            Ok(_) => Ok(stored),
            Err(Error::AlreadyExists(_)) => Err(Error::AlreadyExists(format!(
                "a token named '{}' already exists in organization {}",
                stored.name, stored.org
            ))),
            Err(e) => Err(e),
        }
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<FoundToken>> {
        let values = params![hash];
        self.row(
            Cost::Point,
            &sql::TOKEN_BY_HASH,
            values,
            found_token_from_row,
        )
        .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        self.rows(Cost::Scan, &sql::LIST_TOKENS, vec![], token_from_row)
            .await
    }

    async fn org_tokens(&self, org: &OrgId) -> Result<Vec<ApiToken>> {
        let values = params![org.as_str()];
        self.rows(Cost::Scan, &sql::ORG_TOKENS, values, token_from_row)
            .await
    }

    async fn revoke_org_token(&self, org: &OrgId, name: &str) -> Result<bool> {
        let values = params![Timestamp::now(), org.as_str(), name];
        let revoked = self
            .write(move |c| {
                Box::pin(async move { c.execute(&*sql::REVOKE_ORG_TOKEN, values).await })
            })
            .await?;
        Ok(revoked > 0)
    }

    async fn touch_tokens(&self, used: &[(Uuid, Timestamp)]) -> Result<()> {
        let used = used.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                for (id, at) in used {
                    c.execute(&*sql::TOUCH_TOKEN, params![at, id, at]).await?;
                }
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl<B: Backend> MaintenanceStore for SqlStore<B> {
    async fn sealed_batch(
        &self,
        after: Option<Uuid>,
        limit: u32,
        not_kek: Option<&str>,
    ) -> Result<Vec<SealedRecord>> {
        let values = params![after, after, not_kek, not_kek, i64::from(limit)];
        self.rows(
            Cost::Scan,
            &sql::SEALED_AFTER,
            values,
            sealed_record_from_row,
        )
        .await
    }

    async fn replace_sealed(&self, record: &SealedRecord, new: &SealedCredentials) -> Result<bool> {
        let values = params![
            new.kek_id.as_str(),
            new.blob.clone(),
            record.scope.org.as_str(),
            record.scope.project.as_str(),
            record.id,
            record.credentials.kek_id.as_str(),
            record.credentials.blob.clone(),
        ];
        let replaced = self
            .write(move |c| Box::pin(async move { c.execute(&*sql::REPLACE_SEALED, values).await }))
            .await?;
        Ok(replaced > 0)
    }

    async fn audit_organizations(&self) -> Result<Vec<String>> {
        self.rows(Cost::Scan, &sql::AUDIT_ORGS, vec![], |r| {
            r.text("organization_id")
        })
        .await
    }

    async fn audit_chain(&self, org: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        let values = params![org, after_seq, i64::from(limit)];
        self.rows(Cost::Scan, &sql::AUDIT_CHAIN, values, audit_from_row)
            .await
    }

    async fn count_by_kek(&self) -> Result<Vec<(String, u64)>> {
        self.rows(Cost::Scan, &sql::COUNT_BY_KEK, vec![], |r| {
            Ok((
                r.text("credentials_kek_id")?,
                u64::try_from(r.int("n")?).unwrap_or(0),
            ))
        })
        .await
    }

    async fn insert_models(
        &self,
        scope: &TenantScope,
        models: &[NewModel],
        audit: &AuditEntry,
    ) -> Result<u64> {
        // Copied once for the writer: seeding and imports call this, not requests.
        let (scope, models, audit) = (scope.clone(), models.to_vec(), audit.clone());
        self.write(move |c| {
            Box::pin(async move {
                let uris = writes::insert_many(c, &scope, &models, &audit).await?;
                Ok(uris.len() as u64)
            })
        })
        .await
    }
}

#[async_trait]
impl<B: Backend> ServerStore for SqlStore<B> {
    async fn ready(&self) -> Result<()> {
        let applied = self
            .row(Cost::Point, &sql::APPLIED_MIGRATIONS, vec![], |r| {
                r.int("n")
            })
            .await?
            .unwrap_or(0);
        let expected = self.backend.migrations() as i64;
        if applied < expected {
            return Err(Error::Unavailable(format!(
                "database schema is behind: {applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        self.backend.pool_usage()
    }

    async fn count_by_status_provider(&self) -> Result<Vec<StatusProviderCount>> {
        self.rows(Cost::Scan, &sql::COUNT_BY_STATUS_PROVIDER, vec![], |r| {
            Ok(StatusProviderCount {
                status: r.text("status")?,
                provider: r.opt_text("provider")?,
                count: u64::try_from(r.int("n")?).unwrap_or(0),
            })
        })
        .await
    }

    async fn claim_checks(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedCheck>> {
        let values = params![owner, lease_until, now, now, i64::from(limit)];
        self.write(move |c| {
            Box::pin(async move {
                c.fetch(&*sql::CLAIM_CHECKS, values, |r| {
                    Ok(ClaimedCheck {
                        model: model_from_row(r)?,
                        failures: r.int("check_failures")?,
                    })
                })
                .await
            })
        })
        .await
    }

    async fn replica_heartbeat(
        &self,
        id: &str,
        kek_ids: &[String],
        seal_kek_id: &str,
        live_for: std::time::Duration,
    ) -> Result<()> {
        let mut beat = params![id, kek_ids.join(","), seal_kek_id];
        let now = Timestamp::now();
        let forget = match B::DIALECT {
            Dialect::Sqlite => {
                beat.extend(params![now, now.plus(live_for)]);
                params![now.minus(std::time::Duration::from_secs(24 * 3600))]
            }
            Dialect::Postgres => {
                beat.push(Value::Real(Some(live_for.as_secs_f64())));
                vec![]
            }
        };
        self.write(move |c| {
            Box::pin(async move {
                c.execute(&*sql::REPLICA_HEARTBEAT, beat).await?;
                c.execute(&*sql::FORGET_OLD_REPLICAS, forget).await?;
                Ok(())
            })
        })
        .await
    }

    async fn live_replicas(&self) -> Result<Vec<ReplicaBeat>> {
        let values = match B::DIALECT {
            Dialect::Sqlite => params![Timestamp::now()],
            Dialect::Postgres => vec![],
        };
        self.rows(Cost::Scan, &sql::LIVE_REPLICAS, values, replica_from_row)
            .await
    }

    async fn forget_replica(&self, id: &str) -> Result<()> {
        let values = params![id];
        self.write(move |c| Box::pin(async move { c.execute(&*sql::FORGET_REPLICA, values).await }))
            .await
            .map(drop)
    }

    async fn finish_check(
        &self,
        scope: &TenantScope,
        id: Uuid,
        owner: &str,
        succeeded: bool,
        next_check_at: Timestamp,
    ) -> Result<()> {
        let mut values = params![next_check_at, succeeded];
        values.extend(scoped(scope));
        values.extend(params![id, owner]);
        self.write(move |c| Box::pin(async move { c.execute(&*sql::FINISH_CHECK, values).await }))
            .await
            .map(drop)
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn close(&self) {
        self.backend.close().await;
    }
}
