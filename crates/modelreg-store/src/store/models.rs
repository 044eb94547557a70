//! The model store, over any backend: the tenant's models, their lists and their history.

use async_trait::async_trait;
use modelreg_core::{
    Result,
    audit::{AuditEntry, AuditEvent},
    list::{ListPage, ListQuery},
    model::{Model, Status},
    resource_uri::ModelKey,
    store::{AuditFilter, ModelChange, ModelStore, NewModel},
    tenant::{OrgId, TenantScope},
    timestamp::Timestamp,
};
use uuid::Uuid;

use super::{Backend, Cost, SqlStore, bounded, scoped};
use crate::{
    exec::{Value, params},
    list_query,
    rows::{empty_page_generation, finish_models, model_from_row},
    sql, writes,
};

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
            .rows(cost, page_sql, page_values, move |r| {
                let total = if unfiltered {
                    r.opt_int(list_query::TOTAL)?
                } else {
                    None
                };
                let generation = r.opt_int(list_query::GENERATION)?;
                Ok((model_from_row(r)?, total, generation))
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
            _ => self.filtered_total(scope, query, generation).await?,
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

impl<B: Backend> SqlStore<B> {
    /// The total of a filtered list whose page was read at `generation`, and the generation
    /// the page may be kept at: the count kept for that generation, or a new count (with the
    /// generation it was made at, kept for the next request).
    async fn filtered_total(
        &self,
        scope: &TenantScope,
        query: &ListQuery,
        generation: Option<i64>,
    ) -> Result<(i64, Option<i64>)> {
        if let Some(n) = generation.and_then(|g| self.counts.get(scope, query, g)) {
            return Ok((i64::try_from(n).unwrap_or(i64::MAX), generation));
        }
        let (count_sql, count_values) =
            list_query::build(list_query::count_with_generation(scope, query), B::DIALECT);
        let counted = self
            .row(Cost::Scan, count_sql, count_values, |r| {
                Ok((r.int("n")?, r.opt_int(list_query::GENERATION)?))
            })
            .await?;
        let (n, counted_at) = counted.unwrap_or((0, None));
        if let Some(g) = counted_at {
            self.counts
                .put(scope, query, g, u64::try_from(n).unwrap_or(0));
        }
        Ok((n, empty_page_generation(generation, n, counted_at)))
    }
}
