//! The cost maps loaded since the bundled catalog, and the models linked to the catalog.

use modelreg_core::{Result, model::Model, store::CatalogSnapshot, tenant::TenantScope};

use super::{Backend, Cost, SqlStore};
use crate::{
    exec::{Exec, RowAccess, Value, params},
    rows::{model_columns_sql, model_from_row},
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

    pub(super) async fn models_of_catalog(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        uris: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<Model>> {
        let mut sql = format!(
            "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? \
             AND catalog <> '{{}}' AND resource_uri > ?",
            model_columns_sql()
        );
        let mut values = params![
            scope.org.as_str(),
            scope.project.as_str(),
            after.unwrap_or("")
        ];
        if let Some(uris) = uris {
            sql.push_str(&format!(
                " AND resource_uri IN {}",
                crate::sql::placeholders(uris.len().max(1))
            ));
            values.extend(uris.iter().map(|u| Value::from(u.as_str())));
            if uris.is_empty() {
                values.push(Value::from(""));
            }
        }
        sql.push_str(" ORDER BY resource_uri LIMIT ?");
        values.push(Value::from(i64::from(limit)));
        let sql = match B::DIALECT {
            crate::exec::Dialect::Sqlite => sql,
            crate::exec::Dialect::Postgres => crate::sql::dollar_placeholders(&sql),
        };
        self.rows(Cost::Scan, sql, values, model_from_row).await
    }
}
