//! The cost maps loaded since the bundled catalog, and the models linked to the catalog.

use modelreg_core::{Result, model::Model, store::CatalogSnapshot, tenant::TenantScope};

use super::{Backend, Cost, SqlStore};
use crate::{
    exec::{Exec, RowAccess, params},
    rows::model_from_row,
    sql,
};

fn snapshot_from_row(r: &dyn RowAccess) -> Result<CatalogSnapshot> {
    Ok(CatalogSnapshot {
        id: r.int("id")?,
        source: r.text("source")?,
        version: r.text("version")?,
        date: r.text("date")?,
        sha256: r.text("sha256")?,
        loaded_at: r.timestamp("loaded_at")?,
        entries: r.int("entries")?,
        body: r.bytes("body")?,
    })
}

impl<B: Backend> SqlStore<B> {
    pub(super) async fn head_of_catalog(&self) -> Result<Option<i64>> {
        Ok(self
            .row(Cost::Point, &*sql::CATALOG_HEAD, Vec::new(), |r| {
                r.opt_int("id")
            })
            .await?
            .flatten())
    }

    pub(super) async fn snapshot_of_catalog(&self, id: i64) -> Result<Option<CatalogSnapshot>> {
        self.row(
            Cost::Point,
            &*sql::CATALOG_SNAPSHOT,
            params![id],
            snapshot_from_row,
        )
        .await
    }

    pub(super) async fn add_snapshot_of_catalog(&self, s: CatalogSnapshot) -> Result<i64> {
        self.write(move |c| {
            Box::pin(async move {
                let values = params![
                    s.source.as_str(),
                    s.version.as_str(),
                    s.date.as_str(),
                    s.sha256.as_str(),
                    s.loaded_at,
                    s.entries,
                    s.body.clone(),
                ];
                let id = c
                    .fetch_optional(&*sql::CATALOG_ADD, values, |r| r.int("id"))
                    .await?;
                id.ok_or_else(|| modelreg_core::Error::Internal("no id for a catalog".into()))
            })
        })
        .await
    }

    pub(super) async fn models_of_catalog(&self, scope: &TenantScope) -> Result<Vec<Model>> {
        self.rows(
            Cost::Scan,
            &*sql::CATALOGUED_MODELS,
            params![scope.org.as_str(), scope.project.as_str()],
            model_from_row,
        )
        .await
    }
}
