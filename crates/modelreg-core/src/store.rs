//! The storage contract. A backend (SQLite now, PostgreSQL next) implements these traits; the
//! rest of modelreg sees only `Arc<dyn Store>`. Every model method takes the tenant first.

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    audit::{AuditEntry, AuditEvent},
    auth::{ProjectGrant, Role},
    error::Result,
    list::{EntryPage, ListPage, ListQuery},
    model::{Model, ModelFields, Status},
    resource_uri::{ModelKey, ResourceUri},
    secrets::SealedCredentials,
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};

/// A model to insert. Its id is chosen before insertion because the credentials are bound to
/// it.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub id: Uuid,
    pub resource_uri: ResourceUri,
    /// When true, `resource_uri` was generated from the name and a taken one gets `-2`, `-3`,
    /// …; when false, a taken one is `AlreadyExists`.
    pub generated: bool,
    pub fields: ModelFields,
    pub catalog: crate::catalog::CatalogLink,
    pub credentials: SealedCredentials,
    pub actor: String,
    pub now: Timestamp,
}

/// A compare-and-swap write of a model's fields: it applies only while the stored version is
/// still `expected_version`.
#[derive(Debug)]
pub struct ModelChange {
    pub id: Uuid,
    pub expected_version: i64,
    pub fields: ModelFields,
    pub catalog: crate::catalog::CatalogLink,
    /// `Some` replaces the stored credentials.
    pub credentials: Option<SealedCredentials>,
    pub actor: String,
    pub now: Timestamp,
}

/// One write of a batch (`ModelStore::write_batch`), planned as its single-model write is.
#[derive(Debug)]
pub enum BatchWrite {
    Create(NewModel),
    Update(ModelChange),
    /// With `expected_version`, only that version.
    Delete {
        id: Uuid,
        expected_version: Option<i64>,
    },
}

/// What became of one write of a batch.
#[derive(Debug)]
pub enum BatchWritten {
    /// Created or updated: the model as stored.
    Stored(Box<Model>),
    Deleted,
    /// The model is gone, or its version moved on (as `update_model`'s and `delete_model`'s
    /// `None` and `false`).
    Missing,
    /// Refused on its own (a taken resource_uri); nothing of it is stored.
    Failed(crate::Error),
    /// Not stored: the batch was atomic and another write of it did not succeed.
    RolledBack,
}

/// A cost map loaded by `modelreg catalog refresh`: the catalog in force while it is the newest.
#[derive(Debug, Clone)]
pub struct CatalogSnapshot {
    pub id: i64,
    pub source: String,
    pub version: String,
    pub date: String,
    pub sha256: String,
    pub loaded_at: Timestamp,
    pub entries: i64,
    /// The file as loaded, gzip-compressed.
    pub body: Vec<u8>,
}

#[async_trait]
pub trait ModelStore: Send + Sync {
    /// The newest cost map loaded (`None`: none; the bundled catalog is in force). Shared by
    /// every tenant: the catalog is reference data, not a tenant's.
    async fn catalog_head(&self) -> Result<Option<i64>>;
    async fn catalog_snapshot(&self, id: i64) -> Result<Option<CatalogSnapshot>>;
    /// Adds a cost map (its `id` is ignored); the new one's id.
    async fn add_catalog_snapshot(&self, snapshot: CatalogSnapshot) -> Result<i64>;
    /// The project's models linked to a catalog entry, for "upstream changed": by
    /// resource_uri, after `after`, at most `limit`; or, with `uris`, only those.
    async fn catalogued_models(
        &self,
        scope: &TenantScope,
        after: Option<&str>,
        uris: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<Model>>;

    async fn insert_model(
        &self,
        scope: &TenantScope,
        new: NewModel,
        audit: &AuditEntry,
    ) -> Result<Model>;
    async fn get_model(&self, scope: &TenantScope, key: &ModelKey) -> Result<Option<Model>>;
    /// The models of the project that `keys` name (at most 1,000 keys), in one read, in no
    /// particular order; a key that names none is left out.
    async fn get_models(&self, scope: &TenantScope, keys: &[ModelKey]) -> Result<Vec<Model>>;
    /// `None` when the model is gone or its version moved on.
    async fn update_model(
        &self,
        scope: &TenantScope,
        change: ModelChange,
        audit: &AuditEntry,
    ) -> Result<Option<Model>>;
    /// Deletes the row and its credentials. With `expected_version`, only that version.
    /// Returns whether a row was deleted.
    async fn delete_model(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expected_version: Option<i64>,
        audit: &AuditEntry,
    ) -> Result<bool>;
    /// Runs the writes of a batch in order, in one transaction, each with its audit event; one
    /// result per write. With `atomic`, the first write that does not succeed undoes the
    /// others (they are `RolledBack`, and so is every write after it); without, each write
    /// stands or falls alone. An error of the database fails the whole batch, and nothing of
    /// it is stored.
    async fn write_batch(
        &self,
        scope: &TenantScope,
        writes: Vec<(BatchWrite, AuditEntry)>,
        atomic: bool,
    ) -> Result<Vec<BatchWritten>>;
    async fn list_models(&self, scope: &TenantScope, query: &ListQuery) -> Result<ListPage>;
    /// A page of the list as `/v1/models` shows it: only the columns of [`ModelEntry`], and
    /// no total.
    async fn list_entries(&self, scope: &TenantScope, query: &ListQuery) -> Result<EntryPage>;
    /// The project's generation: bumped in the same transaction as every create, update, delete,
    /// verification and credential re-wrap of its models. `None` before its first model.
    async fn project_generation(&self, scope: &TenantScope) -> Result<Option<i64>>;
    /// The generation of the slices of the project that the list's filters select
    /// (`ListPage::slices`), now; `None` when its filters select none.
    async fn slices_generation(
        &self,
        scope: &TenantScope,
        query: &ListQuery,
    ) -> Result<Option<i64>>;
    /// Records a verification: `last_verified_at` always; `status` and `status_message` unless
    /// the stored status is DEPRECATED or DISABLED, which only people set. `None` when the
    /// model is gone.
    async fn record_verification(
        &self,
        scope: &TenantScope,
        id: Uuid,
        status: Status,
        message: &str,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<Option<Model>>;
    /// A model's audit events, newest first, by resource_uri or id; they outlive the model.
    async fn model_history(
        &self,
        scope: &TenantScope,
        key: &ModelKey,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)>;
    /// The projects of `org` that hold at least one model, in byte order of their ids, at most
    /// `limit`. Read from the per-project counts the database keeps (one row per project), so
    /// the cost follows the number of projects, not of models.
    async fn org_projects(&self, org: &OrgId, limit: u32) -> Result<Vec<ProjectId>>;
    /// An organization's audit events, newest first, filtered.
    async fn audit_events(
        &self,
        org: &OrgId,
        filter: &AuditFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)>;
}

/// Filters of the organization's audit log. All combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub resource_uri: Option<String>,
    pub actor: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// An API token as stored: only the hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub org: OrgId,
    pub project: ProjectGrant,
    pub role: Role,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// An active token found by its hash, with its project's generation (see
/// `ModelStore::project_generation`) read in the same statement: a request that authenticates
/// with it needs no second read to know whether a page it rendered earlier is still exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    pub token: ApiToken,
    /// `None` for a token of every project (`*`), or a project without models yet.
    pub project_generation: Option<i64>,
}

#[derive(Debug)]
pub struct NewToken {
    pub name: String,
    pub org: OrgId,
    pub project: ProjectGrant,
    pub role: Role,
    pub hash: String,
    pub expires_at: Option<Timestamp>,
}

/// API tokens are looked up before the tenant is known, so these methods are not scoped.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// `AlreadyExists` when the organization has a token of that name. Names are unique per
    /// organization only, so a refusal tells nothing of other organizations' tokens.
    async fn insert_token(&self, token: NewToken) -> Result<ApiToken>;
    /// The active (not revoked) token with this hash.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<FoundToken>>;
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    /// The tokens of one organization.
    async fn org_tokens(&self, org: &OrgId) -> Result<Vec<ApiToken>>;
    /// Revokes an active token of `org` by name; whether one was.
    async fn revoke_org_token(&self, org: &OrgId, name: &str) -> Result<bool>;
    /// Records when tokens were last used, in one batch.
    async fn touch_tokens(&self, used: &[(Uuid, Timestamp)]) -> Result<()>;
}

/// A record's sealed credentials with its tenant, for maintenance.
#[derive(Debug, Clone)]
pub struct SealedRecord {
    pub id: Uuid,
    pub scope: TenantScope,
    pub credentials: SealedCredentials,
}

/// Maintenance across every tenant: key rotation, key status, the audit chain check, bulk
/// loads and the start-up check. Reached only from the binary's administration commands and
/// start-up, never from a request handler.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Up to `limit` records with id greater than `after`, in id order; with `not_kek`, only
    /// those sealed under another key.
    async fn sealed_batch(
        &self,
        after: Option<Uuid>,
        limit: u32,
        not_kek: Option<&str>,
    ) -> Result<Vec<SealedRecord>>;
    /// Replaces a record's sealed credentials if they are still `old` (a concurrent change
    /// wins). Does not change the model's version: its representation is the same.
    async fn replace_sealed(&self, record: &SealedRecord, new: &SealedCredentials) -> Result<bool>;
    /// The organizations that have audit events.
    async fn audit_organizations(&self) -> Result<Vec<String>>;
    /// Up to `limit` audit events of `org` with a sequence number above `after_seq`, in order.
    async fn audit_chain(&self, org: &str, after_seq: i64, limit: u32) -> Result<Vec<AuditEvent>>;
    /// How many records each key id protects.
    async fn count_by_kek(&self) -> Result<Vec<(String, u64)>>;
    /// Inserts many models of one project in one transaction, each with its audit event: bulk
    /// loads such as the benchmark's seeding, one commit (and one fsync) per batch. All or
    /// nothing: a taken uri fails the whole batch.
    async fn insert_models(
        &self,
        scope: &TenantScope,
        models: &[NewModel],
        audit: &AuditEntry,
    ) -> Result<u64>;
}

/// What a running server reads and writes for itself, outside any tenant's request: its
/// readiness and pools, the metrics' counts, health-check leases and replica heartbeats.
/// Tenants' names never leave it, only counts.
#[async_trait]
pub trait ServerStore: Send + Sync {
    /// Storage is reachable and the schema is at the version this binary expects.
    async fn ready(&self) -> Result<()>;
    /// The connection pools and how much of each is in use.
    fn pool_usage(&self) -> Vec<PoolUsage>;
    /// Loads the lists' in-memory indexes of the largest projects, as many as they hold
    /// (SQLite; a store that keeps none loads nothing). The models loaded.
    async fn warm_list_indexes(&self) -> Result<u64> {
        Ok(0)
    }
    /// Models by status and provider across every organization (for metrics; no tenant's
    /// names appear, only the counts).
    async fn count_by_status_provider(&self) -> Result<Vec<StatusProviderCount>>;
    /// Leases up to `limit` models due for a health check (status PENDING, ACTIVE or ERROR,
    /// `next_check_at` passed or unset, no live lease) to `owner` until `lease_until`.
    /// Concurrent callers never get the same model.
    async fn claim_checks(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedCheck>>;
    /// Records that replica `id` is alive for `live_for` more, holds `kek_ids` and seals under
    /// `seal_kek_id`, stamped with the store's clock; forgets replicas not seen for a day.
    async fn replica_heartbeat(
        &self,
        id: &str,
        kek_ids: &[String],
        seal_kek_id: &str,
        live_for: std::time::Duration,
    ) -> Result<()>;
    /// The replicas that count as running now, by the store's clock.
    async fn live_replicas(&self) -> Result<Vec<ReplicaBeat>>;
    /// Forgets a replica that stops cleanly.
    async fn forget_replica(&self, id: &str) -> Result<()>;
    /// Ends `owner`'s lease on a model and schedules its next check; counts a failure in a row
    /// or resets the count.
    async fn finish_check(
        &self,
        scope: &TenantScope,
        id: Uuid,
        owner: &str,
        succeeded: bool,
        next_check_at: Timestamp,
    ) -> Result<()>;
}

/// What a running server last reported of itself: the master keys it holds (newest last) and
/// the one it seals new credentials under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaBeat {
    pub id: String,
    pub kek_ids: Vec<String>,
    pub seal_kek_id: String,
    /// When it reported, by the store's clock.
    pub seen_at: Timestamp,
    /// Until when it counts as running without another heartbeat, by the store's clock.
    pub live_until: Timestamp,
}

/// A model leased for a health check, with its failures in a row.
#[derive(Debug, Clone)]
pub struct ClaimedCheck {
    pub model: Model,
    pub failures: i64,
}

/// Models of one status and provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusProviderCount {
    pub status: String,
    /// `None` for models without a provider.
    pub provider: Option<String>,
    pub count: u64,
}

/// The connections of one pool of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    /// `primary` (PostgreSQL), or `read` and `write` (SQLite).
    pub pool: &'static str,
    /// The most connections the pool opens.
    pub max: u32,
    /// Connections open now.
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
}

/// The whole store, as a backend implements it. Each part of modelreg holds only the part it
/// needs: the model service a `ModelStore`, the token service and the authenticator a
/// `TokenStore`, the server's own jobs a `ServerStore`, the administration commands a
/// `MaintenanceStore`.
#[async_trait]
pub trait Store: ModelStore + TokenStore + ServerStore + MaintenanceStore {
    /// Flushes and closes connections.
    async fn close(&self);
}
