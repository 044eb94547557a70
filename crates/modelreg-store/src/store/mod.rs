//! The one store implementation: every storage trait of modelreg, written once over a
//! `Backend`, one file per trait (`models.rs`, `tokens.rs`, `server.rs`, `maintenance.rs`).
//! Reads are there; the rules of writes are in `writes.rs`. The two backends (`sqlite.rs`,
//! `postgres.rs`) say only where a transaction runs and how a statement is bound.

mod catalog;
mod indexed;
mod maintenance;
mod models;
mod server;
mod tokens;

use std::future::Future;

use async_trait::async_trait;
use futures::future::BoxFuture;
use modelreg_core::{
    Result,
    audit::AuditEvent,
    list::{ListQuery, Paging},
    store::{PoolUsage, Store},
    tenant::TenantScope,
};

use crate::{
    CountCache,
    exec::{Dialect, Exec, RowAccess, Sql, Value, params},
    list_query,
    rows::audit_from_row,
    sql,
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

    /// Runs `job` in one read-only snapshot: every statement it runs sees the database as of
    /// one moment (SQLite: a read transaction; PostgreSQL: `REPEATABLE READ`).
    fn snapshot<T: Send + 'static>(
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
    /// Each project's models in memory for its lists (`list_index.rs`).
    indexes: Option<crate::list_index::Indexes>,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> Self {
        SqlStore {
            backend,
            counts: CountCache::default(),
            indexes: indexed::indexes(),
        }
    }

    async fn write<T: Send + 'static>(&self, job: impl Job<B::Conn, T>) -> Result<T> {
        self.backend.write(job).await
    }

    async fn read<T: Send + 'static>(&self, cost: Cost, job: impl Job<B::Conn, T>) -> Result<T> {
        self.backend.read(cost, job).await
    }

    /// Every row of one statement (a `sql::Statement` or one built for `B::DIALECT`), read
    /// by `map`.
    async fn rows<T: Send + 'static>(
        &self,
        cost: Cost,
        statement: impl Sql + Send + 'static,
        values: Vec<Value>,
        map: impl FnMut(&dyn RowAccess) -> Result<T> + Send + 'static,
    ) -> Result<Vec<T>> {
        self.read(cost, move |c| {
            Box::pin(async move { c.fetch(&statement, values, map).await })
        })
        .await
    }

    /// The first row of one statement, if any.
    async fn row<T: Send + 'static>(
        &self,
        cost: Cost,
        statement: impl Sql + Send + 'static,
        values: Vec<Value>,
        map: impl FnMut(&dyn RowAccess) -> Result<T> + Send + 'static,
    ) -> Result<Option<T>> {
        Ok(self
            .rows(cost, statement, values, map)
            .await?
            .into_iter()
            .next())
    }

    /// One statement as a write of its own; the rows it changed.
    async fn execute(&self, statement: &'static sql::Statement, values: Vec<Value>) -> Result<u64> {
        self.write(move |c| Box::pin(async move { c.execute(statement, values).await }))
            .await
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
        let mut statements = vec![list_query::page_statement(scope, query, B::DIALECT)];
        let counted = list_query::Slices::of(scope, query).is_none_or(|s| !s.exact);
        if !query.filters.is_empty() && counted {
            statements.push(list_query::build(
                list_query::capped_count(scope, query, B::DIALECT),
                B::DIALECT,
            ));
        }
        let unfiltered = query.filters.is_empty();
        let sliced = !counted;
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
                } else if sliced {
                    out.push_str("Count: the sum of the filters' rows of model_slices.\n");
                }
                Ok(out)
            })
        })
        .await
    }
}

pub(super) fn scoped(scope: &TenantScope) -> Vec<Value> {
    params![scope.org.as_str(), scope.project.as_str()]
}

/// A page whose work is bounded: a cursor page seeks to its cursor in the sort's index, and
/// a numbered page skips at most 1,000 rows.
pub(super) fn bounded(query: &ListQuery) -> bool {
    match &query.paging {
        Paging::After(_) => true,
        Paging::Page(n) => u64::from(n.saturating_sub(1)) * u64::from(query.limit) <= 1_000,
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn close(&self) {
        self.backend.close().await;
    }
}
