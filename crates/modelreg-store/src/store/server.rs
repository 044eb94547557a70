//! What the running server keeps for itself, over any backend: readiness, the metrics'
//! counts, health-check leases and replica heartbeats.

use async_trait::async_trait;
use modelreg_core::{
    Error, Result,
    store::{ClaimedCheck, PoolUsage, ReplicaBeat, ServerStore, StatusProviderCount},
    tenant::TenantScope,
    timestamp::Timestamp,
};
use uuid::Uuid;

use super::{Backend, Cost, SqlStore, scoped};
use crate::{
    exec::{Dialect, Exec, Value, params},
    rows::{model_from_row, replica_from_row},
    sql,
};

#[async_trait]
impl<B: Backend> ServerStore for SqlStore<B> {
    async fn warm_list_indexes(&self) -> Result<u64> {
        self.warm_indexes().await
    }

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
        self.execute(&sql::FORGET_REPLICA, values).await.map(drop)
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
        self.execute(&sql::FINISH_CHECK, values).await.map(drop)
    }
}
