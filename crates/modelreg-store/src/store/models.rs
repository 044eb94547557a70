//! The model store, over any backend: the tenant's models, their lists and their history.

use async_trait::async_trait;
use modelreg_core::{
    Result,
    audit::{AuditEntry, AuditEvent},
    list::{EntryPage, ListPage, ListQuery, ModelEntry, Paging},
    model::{Model, Status},
    resource_uri::ModelKey,
    store::{
        AuditFilter, BatchWrite, BatchWritten, CatalogSnapshot, ModelChange, ModelStore, NewModel,
    },
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use uuid::Uuid;

use super::{Backend, Cost, SqlStore, bounded, scoped};
use crate::{
    exec::{RowAccess, Value, corrupt, params},
    list_query,
    rows::{entry_from_row, finish_models, model_from_row},
    sql, writes,
};

#[async_trait]
impl<B: Backend> ModelStore for SqlStore<B> {
    async fn catalog_head(&self) -> Result<Option<i64>> {
        self.head_of_catalog().await
    }

    async fn catalog_snapshot(&self, id: i64) -> Result<Option<CatalogSnapshot>> {
        self.snapshot_of_catalog(id).await
    }

    async fn add_catalog_snapshot(&self, snapshot: CatalogSnapshot) -> Result<i64> {
        self.add_snapshot_of_catalog(snapshot).await
    }

    async fn catalogued_models(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        uris: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<Model>> {
        self.models_of_catalog(scope, after, uris, limit).await
    }

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

    async fn get_models(&self, scope: &TenantScope, keys: &[ModelKey]) -> Result<Vec<Model>> {
        let (mut uris, mut ids) = (Vec::new(), Vec::new());
        for key in keys {
            match key {
                ModelKey::Uri(u) => uris.push(Value::from(u.as_str())),
                ModelKey::Id(id) => ids.push(Value::from(*id)),
            }
        }
        let mut wanted = Vec::new();
        if !uris.is_empty() {
            wanted.push(format!("resource_uri IN {}", sql::placeholders(uris.len())));
        }
        if !ids.is_empty() {
            wanted.push(format!("id IN {}", sql::placeholders(ids.len())));
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let statement = sql::models_where(&wanted.join(" OR "), B::DIALECT);
        let mut values = scoped(scope);
        values.extend(uris);
        values.extend(ids);
        // Up to a thousand rows by two indexes: not a point read.
        self.rows(Cost::Scan, statement, values, model_from_row)
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

    async fn write_batch(
        &self,
        scope: &TenantScope,
        writes: Vec<(BatchWrite, AuditEntry)>,
        atomic: bool,
    ) -> Result<Vec<BatchWritten>> {
        let deletes = writes
            .iter()
            .any(|(w, _)| matches!(w, BatchWrite::Delete { .. }));
        let scope = scope.clone();
        let written = self
            .write(move |c| {
                Box::pin(async move { writes::batch(c, &scope, &writes, atomic).await })
            })
            .await?;
        if deletes && written.iter().any(|w| matches!(w, BatchWritten::Deleted)) {
            self.backend.scrub().await;
        }
        Ok(written)
    }

    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage> {
        // On SQLite, the project's index in memory answers most lists (`list_index.rs`).
        if let Some(page) = self.indexed_list(scope, query).await? {
            return Ok(page);
        }
        // The page carries, in its own statement, the total where a maintained count has it
        // (model_counts unfiltered, model_slices for status, mode, provider and one tag), the
        // project's generation and its filters' slices' generation. Any other total is a
        // count capped at COUNT_CAP, kept while the generation it was made at stands.
        let (page_sql, page_values) = list_query::page_statement(scope, query, B::DIALECT);
        let cost = if query.filters.is_empty() && bounded(query) {
            Cost::Point
        } else {
            Cost::Scan
        };
        let rows = self
            .rows(cost, page_sql, page_values, move |r| {
                Ok((model_from_row(r)?, meta_from_row(r)?))
            })
            .await?;
        let (models, meta): (Vec<Model>, Vec<Meta>) = rows.into_iter().unzip();
        let offset = query.offset();
        let past_end = |total: i64| {
            matches!(query.paging, Paging::Page(_)) && u64::try_from(total).unwrap_or(0) <= offset
        };
        // The total, whether it was counted (and so capped), and the generations to keep at.
        let (total, counted, mut at) = match meta.into_iter().next() {
            Some(meta) => match meta.total {
                Some(total) => (total, false, meta),
                None => {
                    let (n, _) = self.filtered_total(scope, query, meta.key()).await?;
                    (n, true, meta)
                }
            },
            // A page with no row has nothing to carry them: they are read alone, after it. The
            // page may be kept at what they say only if they say it is empty too.
            None => {
                let (sql, values) = list_query::build(list_query::meta(scope, query), B::DIALECT);
                let meta = self
                    .row(Cost::Point, sql, values, meta_from_row)
                    .await?
                    .unwrap_or_default();
                let (total, counted, at) = match meta.total {
                    Some(total) => (total, false, meta),
                    None => {
                        let (n, at) = self.filtered_total(scope, query, None).await?;
                        (n, true, at)
                    }
                };
                let at = if past_end(total) { at } else { Meta::default() };
                (total, counted, at)
            }
        };
        let cap = i64::try_from(modelreg_core::list::COUNT_CAP).unwrap_or(i64::MAX);
        let estimate = counted && total > cap;
        let total = if estimate { cap } else { total };
        let mut page = finish_models(query, models, total, at.generation);
        page.slices = at.slices.take();
        page.total_is_estimate = estimate;
        Ok(page)
    }

    async fn list_entries(&self, scope: &TenantScope, query: &ListQuery) -> Result<EntryPage> {
        let statement = list_query::entries_with_meta(scope, query, B::DIALECT);
        let (sql, values) = list_query::build(statement, B::DIALECT);
        // Pages of up to a thousand entries: only a short one is a point read.
        let cost = if bounded(query) && query.limit <= 100 {
            Cost::Point
        } else {
            Cost::Scan
        };
        let rows = self
            .rows(cost, sql, values, |r| {
                let at = (
                    r.opt_int(list_query::GENERATION)?,
                    r.opt_int(list_query::SLICES)?,
                );
                Ok((entry_from_row(r)?, at))
            })
            .await?;
        // A page with no row carries no generation, and is not kept.
        let (generation, slices) = rows.first().map(|(_, at)| *at).unwrap_or_default();
        let mut items: Vec<ModelEntry> = rows.into_iter().map(|(e, _)| e).collect();
        let has_more = items.len() > query.limit as usize;
        items.truncate(query.limit as usize);
        Ok(EntryPage {
            items,
            has_more,
            generation,
            slices,
        })
    }

    async fn slices_generation(
        &self,
        scope: &TenantScope,
        query: &ListQuery,
    ) -> Result<Option<i64>> {
        let Some(slices) = list_query::Slices::of(scope, query) else {
            return Ok(None);
        };
        let (sql, values) = list_query::build(slices.generation(), B::DIALECT);
        self.row(Cost::Point, sql, values, |r| r.opt_int(list_query::SLICES))
            .await
            .map(Option::flatten)
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

    async fn org_projects(&self, org: &OrgId, limit: u32) -> Result<Vec<ProjectId>> {
        // Projects are few next to models, but nothing bounds them: not a point read.
        let values = params![org.as_str(), i64::from(limit)];
        self.rows(Cost::Scan, &sql::ORG_PROJECTS, values, |r| {
            ProjectId::parse(&r.text("project_id")?).map_err(|e| corrupt("project", e))
        })
        .await
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

/// The columns after a page's models (`list_query::page_with_meta`), and of a count.
#[derive(Default, Clone, Copy)]
struct Meta {
    total: Option<i64>,
    generation: Option<i64>,
    slices: Option<i64>,
}

impl Meta {
    /// The generation a count of the list is kept under: its slices' where its filters
    /// select some, else the project's.
    fn key(&self) -> Option<i64> {
        self.slices.or(self.generation)
    }
}

fn meta_from_row(r: &dyn RowAccess) -> Result<Meta> {
    Ok(Meta {
        total: r.opt_int(list_query::TOTAL)?,
        generation: r.opt_int(list_query::GENERATION)?,
        slices: r.opt_int(list_query::SLICES)?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// The count of a list whose page was read at `key` (`Meta::key`), up to COUNT_CAP + 1,
    /// and the generations of the count's own snapshot: the count kept for that key, or a new
    /// one, kept for the next request.
    async fn filtered_total(
        &self,
        scope: &TenantScope,
        query: &ListQuery,
        key: Option<i64>,
    ) -> Result<(i64, Meta)> {
        if let Some(n) = key.and_then(|g| self.counts.get(scope, query, g)) {
            return Ok((i64::try_from(n).unwrap_or(i64::MAX), Meta::default()));
        }
        let (count_sql, count_values) = list_query::build(
            list_query::capped_count(scope, query, B::DIALECT),
            B::DIALECT,
        );
        let counted = self
            .row(Cost::Scan, count_sql, count_values, |r| {
                let at = Meta {
                    total: None,
                    generation: r.opt_int(list_query::GENERATION)?,
                    slices: r.opt_int(list_query::SLICES)?,
                };
                Ok((r.int("n")?, at))
            })
            .await?;
        let (n, at) = counted.unwrap_or_default();
        if let Some(g) = at.key() {
            self.counts
                .put(scope, query, g, u64::try_from(n).unwrap_or(0));
        }
        Ok((n, at))
    }
}
