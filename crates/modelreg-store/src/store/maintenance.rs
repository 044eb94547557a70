//! Maintenance across tenants, over any backend: key rotation, the audit chain, bulk loads.

use async_trait::async_trait;
use modelreg_core::{
    Result,
    audit::{AuditEntry, AuditEvent},
    secrets::SealedCredentials,
    store::{MaintenanceStore, NewModel, SealedRecord},
    tenant::TenantScope,
};
use uuid::Uuid;

use super::{Backend, Cost, SqlStore};
use crate::{
    exec::params,
    rows::{audit_from_row, sealed_record_from_row},
    sql, writes,
};

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
        let replaced = self.execute(&sql::REPLACE_SEALED, values).await?;
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
                writes::insert_many(c, &scope, &models, &audit).await?;
                Ok(models.len() as u64)
            })
        })
        .await
    }
}
