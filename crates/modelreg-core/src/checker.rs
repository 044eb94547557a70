//! The background health checker (SPEC §6): re-verifies PENDING, ACTIVE and ERROR models every
//! interval, with bounded concurrency, and backs off for models that keep failing. With several
//! replicas, each due model is leased in the database by one of them, so it is checked once per
//! interval, not once per replica. DEPRECATED and DISABLED models are never touched.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, stream};

use crate::{
    error::Result,
    secrets::fill_random,
    service::{Actor, ModelService},
    store::ServerStore,
    timestamp::Timestamp,
};

#[derive(Debug, Clone)]
pub struct CheckerConfig {
    /// How often a healthy model is checked.
    pub interval: Duration,
    /// Checks in flight at once, per replica.
    pub concurrency: usize,
    /// Up to this much is added at random to each next check, so checks spread out.
    pub jitter: Duration,
    /// Models leased per round.
    pub batch: u32,
    /// How long a lease lasts: a replica that dies mid-check frees its models after this.
    pub lease: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            interval: Duration::from_secs(300),
            concurrency: 4,
            jitter: Duration::from_secs(30),
            batch: 100,
            lease: Duration::from_secs(600),
            max_backoff: Duration::from_secs(6 * 3600),
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub checked: u64,
    pub verified: u64,
    pub failed: u64,
}

/// Leases due models through the `ServerStore` and verifies them through the model service.
pub struct HealthChecker {
    models: ModelService,
    leases: Arc<dyn ServerStore>,
    config: CheckerConfig,
    owner: String,
}

impl HealthChecker {
    /// `owner` names this replica in leases; it must differ between replicas.
    pub fn new(
        models: ModelService,
        leases: Arc<dyn ServerStore>,
        config: CheckerConfig,
        owner: String,
    ) -> Self {
        HealthChecker {
            models,
            leases,
            config,
            owner,
        }
    }

    pub fn config(&self) -> &CheckerConfig {
        &self.config
    }

    /// The wait before the next check of a model that has now failed `failures` times in a
    /// row: the interval, doubled per failure up to the longest back-off, plus jitter.
    pub fn next_delay(&self, failures: i64) -> Duration {
        let factor = 1u32 << failures.clamp(0, 16);
        let backoff = self
            .config
            .interval
            .saturating_mul(factor)
            .min(self.config.max_backoff.max(self.config.interval));
        let jitter_ms = self.config.jitter.as_millis() as u64;
        let jitter = if jitter_ms == 0 {
            0
        } else {
            let mut b = [0u8; 8];
            fill_random(&mut b);
            u64::from_le_bytes(b) % jitter_ms
        };
        backoff + Duration::from_millis(jitter)
    }

    /// One round at `now`: leases the due models and checks them.
    pub async fn run_once_at(&self, now: Timestamp) -> Result<Round> {
        let claimed = self
            .leases
            .claim_checks(
                &self.owner,
                now,
                now.plus(self.config.lease),
                self.config.batch,
            )
            .await?;
        let results: Vec<Option<bool>> = stream::iter(claimed)
            .map(|claim| async move {
                let scope = claim.model.scope.clone();
                let id = claim.model.id;
                let actor = Actor::system("health-checker");
                let verified = match self.models.verify_model(claim.model, &actor).await {
                    Ok(v) => v.outcome.verified,
                    // Deleted meanwhile: nothing to schedule.
                    Err(_) => return None,
                };
                let failures = if verified { 0 } else { claim.failures + 1 };
                // Scheduled from the round's time, so one round's models stay together.
                let next = now.plus(self.next_delay(failures));
                if let Err(e) = self
                    .leases
                    .finish_check(&scope, id, &self.owner, verified, next)
                    .await
                {
                    tracing::warn!(%id, error = %e, "could not schedule the next check");
                }
                Some(verified)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut round = Round::default();
        for r in results.into_iter().flatten() {
            round.checked += 1;
            if r {
                round.verified += 1;
            } else {
                round.failed += 1;
            }
        }
        Ok(round)
    }

    pub async fn run_once(&self) -> Result<Round> {
        self.run_once_at(Timestamp::now()).await
    }
}
