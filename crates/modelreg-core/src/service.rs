//! The operations on models: each takes the capability its role check made (`Reader`,
//! `Writer`, …), turns input into domain values, seals credentials and calls the store.
//! Handlers call these and nothing else.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    audit::{AuditAction, AuditEntry, AuditEvent, diff},
    auth::{Action, Identity, ProjectGrant, Role},
    catalog::{CATALOG_FIELDS, Catalog, CatalogLink, Catalogs, UpstreamChange},
    error::{Error, Result},
    list::{CursorKeys, EntryPage, ListPage, ListQuery},
    live_keys::LiveKeys,
    model::{Model, ModelCreate, ModelFields, ModelUpdate, Status},
    references::ReferencePolicy,
    resource_uri::{ModelKey, ResourceUri},
    secrets::{Binding, Credentials, CredentialsPatch, Keyring, OpenError, SealedCredentials},
    store::{AuditFilter, ModelChange, ModelStore, NewModel},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
    validate,
    verify::{DEFAULT_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT, ProbeOutcome, ProbeTarget, Prober},
};

/// The caller of one request: where it acts, with which role, as whom.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: TenantScope,
    pub role: Role,
    pub principal: String,
    /// The user a service acts for (`X-On-Behalf-Of`), recorded in the audit trail.
    pub on_behalf_of: Option<String>,
    pub request_id: Option<String>,
    /// The project's generation when it was read while authenticating this request (see
    /// `Identity::project_generation`); `list_generation` then needs no read of its own.
    pub generation: Option<i64>,
}

/// Who a change is recorded as made by.
#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: String,
    pub on_behalf_of: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The background health checker.
    pub fn system(name: &str) -> Actor {
        Actor {
            principal: format!("system:{name}"),
            on_behalf_of: None,
            request_id: None,
        }
    }

    fn entry(&self, action: AuditAction, changes: serde_json::Value) -> AuditEntry {
        AuditEntry {
            action,
            principal: self.principal.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            request_id: self.request_id.clone(),
            changes,
        }
    }
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            principal: self.principal.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// The one check of a request's role (the matrix is `Role::allows`); each capability
    /// below is made by it alone.
    fn permit(&self, action: Action) -> Result<()> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "role '{}' may not {}",
                self.role,
                action.describe()
            )))
        }
    }

    pub fn reader(self) -> Result<Reader> {
        self.permit(Action::Read).map(|()| Reader(self))
    }

    pub fn verifier(self) -> Result<Verifier> {
        self.permit(Action::Verify).map(|()| Verifier(self))
    }

    pub fn writer(self) -> Result<Writer> {
        self.permit(Action::Write).map(|()| Writer(self))
    }

    pub fn deleter(self) -> Result<Deleter> {
        self.permit(Action::Delete).map(|()| Deleter(self))
    }
}

// Capabilities: proof that the caller's role allows an action. Their fields are private, so
// only the role check above makes them, and a `ModelService` method cannot run without it.

/// May read models: get, list, history, export, `/v1/models`.
#[derive(Debug)]
pub struct Reader(Caller);

impl Reader {
    /// The project read, for keys of what is kept per project (the list cache).
    pub fn scope(&self) -> &TenantScope {
        &self.0.scope
    }
}

/// May verify models, saved or not.
#[derive(Debug)]
pub struct Verifier(Caller);

/// May create and update models, their credentials and status. Only `Caller::writer` makes
/// one:
///
/// ```compile_fail
/// use modelreg_core::service::{Caller, Writer};
/// fn forge(caller: Caller) -> Writer {
///     Writer(caller)
/// }
/// ```
#[derive(Debug)]
pub struct Writer(Caller);

impl Writer {
    pub(crate) fn caller(&self) -> &Caller {
        &self.0
    }
}

/// May delete models.
#[derive(Debug)]
pub struct Deleter(Caller);

/// May read the organization's audit log: an owner or admin for all projects.
#[derive(Debug)]
pub struct Auditor(OrgId);

impl Identity {
    pub fn auditor(&self) -> Result<Auditor> {
        self.org_role_allowing(Action::Audit)
            .map(|_| Auditor(self.org.clone()))
            .ok_or_else(|| {
                Error::Forbidden(
                    "reading the audit log needs the owner or admin role for all projects".into(),
                )
            })
    }
}

/// A parsed `If-Match` or `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    Any,
    Tags(Vec<String>),
}

impl EtagCondition {
    /// Parses a header value: `*` or a comma-separated list of entity tags. Weak tags (`W/…`)
    /// are kept with their prefix; `matches_strong` never matches them.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        if v == "*" {
            return Some(EtagCondition::Any);
        }
        let tags: Vec<String> = v
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        let well_formed = |t: &String| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.len() >= 2 && t.starts_with('"') && t.ends_with('"')
        };
        (!tags.is_empty() && tags.iter().all(well_formed)).then_some(EtagCondition::Tags(tags))
    }

    /// Strong comparison, as `If-Match` requires.
    pub fn matches_strong(&self, etag: &str) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }

    /// Weak comparison, as `If-None-Match` uses.
    pub fn matches_weak(&self, etag: &str) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags
                .iter()
                .any(|t| t.strip_prefix("W/").unwrap_or(t) == etag),
        }
    }
}

pub(crate) const MAX_UPDATE_ATTEMPTS: usize = 8;

/// The model service: what requests (and the health checker) do to models. It holds only
/// the tenant-scoped `ModelStore`.
#[derive(Clone)]
pub struct ModelService {
    pub(crate) store: Arc<dyn ModelStore>,
    pub(crate) catalogs: Arc<Catalogs>,
    keys: Arc<LiveKeys>,
    prober: Arc<dyn Prober>,
    references: ReferencePolicy,
    on_verification: Option<VerificationHook>,
}

/// Told of every verification: the model's provider, whether it was a stored model (`true`)
/// or one before it is saved, and the outcome. Metrics count them.
pub type VerificationHook = Arc<dyn Fn(Option<&str>, bool, &ProbeOutcome) + Send + Sync>;

/// The prober of a service built without one: every verification says so.
struct NoProber;

#[async_trait::async_trait]
impl Prober for NoProber {
    async fn probe(&self, _: &ProbeTarget) -> ProbeOutcome {
        ProbeOutcome::failed("verification is not configured on this server")
    }
}

/// The outcome of verifying a stored model, and the model after it.
#[derive(Debug)]
pub struct Verified {
    pub outcome: ProbeOutcome,
    pub model: Model,
}

impl ModelService {
    /// A service whose keys never change; see `with_keys` for a server's.
    pub fn new(store: Arc<dyn ModelStore>, keyring: Arc<Keyring>) -> Self {
        Self {
            catalogs: Arc::new(Catalogs::new(store.clone())),
            store,
            keys: Arc::new(LiveKeys::fixed(keyring)),
            prober: Arc::new(NoProber),
            references: ReferencePolicy::none(),
            on_verification: None,
        }
    }

    /// The same service, with keys that can change while it runs.
    pub fn with_keys(mut self, keys: Arc<LiveKeys>) -> Self {
        self.keys = keys;
        self
    }

    /// The same service, resolving credential references as `references` grants (by
    /// default nothing is granted).
    pub fn with_references(mut self, references: ReferencePolicy) -> Self {
        self.references = references;
        self
    }

    /// The same service, telling `hook` of every verification.
    pub fn with_verification_hook(mut self, hook: VerificationHook) -> Self {
        self.on_verification = Some(hook);
        self
    }

    fn verified(&self, fields: &ModelFields, stored: bool, outcome: &ProbeOutcome) {
        if let Some(hook) = &self.on_verification {
            hook(fields.provider.as_deref(), stored, outcome);
        }
    }

    /// The same service, verifying with `prober`.
    pub fn with_prober(mut self, prober: Arc<dyn Prober>) -> Self {
        self.prober = prober;
        self
    }

    /// Probes a model's provider with `credentials`: references are resolved first, as the
    /// operator grants them to `org`, and one that is not is a failed verification naming the
    /// credential key (never the reference or a value).
    async fn probe(
        &self,
        org: &OrgId,
        fields: &ModelFields,
        credentials: &Credentials,
    ) -> ProbeOutcome {
        let resolved = match self.references.resolve(org, credentials) {
            Ok(c) => c,
            Err(message) => return ProbeOutcome::failed(message),
        };
        // An api_base may be a reference too (`os.environ/AZURE_API_BASE`), resolved under the
        // same grants, and what it names must be a URL like any api_base.
        let api_base = match &fields.api_base {
            None => None,
            Some(base) => match self.references.resolve_value(org, "api_base", base) {
                Err(message) => return ProbeOutcome::failed(message),
                Ok(value) => match validate::api_base_url(value.to_string()) {
                    Ok(url) => Some(url),
                    Err(_) => {
                        return ProbeOutcome::failed(
                            "api_base refers to a value that is not an absolute http(s) URL \
                             without a user name or password",
                        );
                    }
                },
            },
        };
        let target = ProbeTarget {
            provider: fields.provider.clone(),
            litellm_model: fields.litellm_model.clone(),
            api_base,
            api_version: fields.api_version.clone(),
            timeout: fields
                .timeout
                .map(std::time::Duration::from_secs_f64)
                .unwrap_or(DEFAULT_PROBE_TIMEOUT)
                .min(MAX_PROBE_TIMEOUT),
            credentials: resolved,
        };
        self.prober.probe(&target).await
    }

    /// Verifies a model before it is saved: its credentials are tested, nothing is stored.
    pub async fn verify_unsaved(&self, v: &Verifier, body: ModelCreate) -> Result<ProbeOutcome> {
        let input = validate::create(body)?;
        let outcome = self
            .probe(&v.0.scope.org, &input.fields, &input.credentials)
            .await;
        self.verified(&input.fields, false, &outcome);
        Ok(outcome)
    }

    /// Verifies a stored model with its stored credentials, and records the result: status
    /// ACTIVE or ERROR (DEPRECATED and DISABLED stay), `status_message`, `last_verified_at`.
    pub async fn verify_stored(&self, v: &Verifier, key: &ModelKey) -> Result<Verified> {
        let current = self.find(&v.0.scope, key).await?;
        self.verify_model(current, &v.0.actor()).await
    }

    /// Verifies and records, for a request or the background checker (which acts for no
    /// tenant's caller, so this takes no capability).
    pub async fn verify_model(&self, current: Model, actor: &Actor) -> Result<Verified> {
        let outcome = match self.open(&current) {
            Ok(credentials) => {
                self.probe(&current.scope.org, &current.fields, &credentials)
                    .await
            }
            Err(e) => ProbeOutcome::failed(format!("stored credentials cannot be decrypted: {e}")),
        };
        self.verified(&current.fields, true, &outcome);
        let status = if outcome.verified {
            Status::Active
        } else {
            Status::Error
        };
        let at = Timestamp::now();
        // What the store will change: DEPRECATED and DISABLED keep their status and message.
        let mut after = current.fields.clone();
        if !matches!(current.fields.status, Status::Deprecated | Status::Disabled) {
            after.status = status;
            after.status_message = Some(outcome.message.clone());
        }
        let mut changes = diff(Some(&current.fields), Some(&after), false);
        changes["last_verified_at"] = serde_json::json!({
            "from": current.last_verified_at.map(|t| t.to_string()),
            "to": at.to_string(),
        });
        changes["verified"] = serde_json::json!(outcome.verified);
        let audit = actor.entry(AuditAction::Verify, changes);
        let model = self
            .store
            .record_verification(
                &current.scope,
                current.id,
                status,
                &outcome.message,
                at,
                &audit,
            )
            .await?
            .ok_or_else(|| Error::model_not_found(current.resource_uri.as_str()))?;
        Ok(Verified {
            outcome,
            model: self.with_credential_status(model),
        })
    }

    pub fn keys(&self) -> &Arc<LiveKeys> {
        &self.keys
    }

    /// The keys list cursors are sealed with; the same on every replica of a deployment.
    pub fn cursors(&self) -> CursorKeys {
        self.keys.state().cursors().clone()
    }

    /// A model's credentials, opened. A record sealed under a key this server does not hold
    /// makes it read its key configuration again (see `LiveKeys::learn`) before it gives up.
    fn open(&self, model: &Model) -> Result<Credentials, OpenError> {
        match self
            .keys
            .state()
            .ring()
            .open(binding(model), &model.credentials)
        {
            Err(OpenError::UnknownKey(id)) if self.keys.learn(&id) => self
                .keys
                .state()
                .ring()
                .open(binding(model), &model.credentials),
            opened => opened,
        }
    }

    fn seal(&self, binding: Binding<'_>, credentials: &Credentials) -> SealedCredentials {
        self.keys.state().seal(binding, credentials)
    }

    /// The model as a reader must see it: when its credentials do not open (a missing key,
    /// tampered bytes, a ciphertext moved from another row) it is reported as `ERROR` with the
    /// reason, whatever status is stored, so it never passes as healthy.
    pub(crate) fn with_credential_status(&self, mut model: Model) -> Model {
        if let Err(e) = self.open(&model) {
            model.fields.status = Status::Error;
            model.fields.status_message = Some(format!(
                "stored credentials cannot be decrypted: {e}; replace them with PUT {{\"credentials\": …}}{}",
                match e {
                    OpenError::UnknownKey(_) => " or configure the missing master key",
                    _ => "",
                }
            ));
        }
        model
    }

    pub async fn create(&self, w: &Writer, body: ModelCreate) -> Result<Model> {
        let input = validate::create(body)?;
        let catalog = self.catalogs.current().await?;
        let (new, audit) = self.plan_create(&w.0, &catalog, input);
        self.store.insert_model(&w.0.scope, new, &audit).await
    }

    /// A validated create as the store inserts it: the catalog's values filled, the
    /// credentials sealed to the new id, the resource_uri given or generated, its audit entry.
    pub(crate) fn plan_create(
        &self,
        caller: &Caller,
        catalog: &Catalog,
        mut input: validate::CreateInput,
    ) -> (NewModel, AuditEntry) {
        let entry = catalog.entry_for(&input.fields);
        let link = CatalogLink::filled(&mut input.fields, &input.catalog_given, entry.as_ref());
        let id = Uuid::now_v7();
        let credentials = self.seal(
            Binding {
                scope: &caller.scope,
                record_id: id,
            },
            &input.credentials,
        );
        let (resource_uri, generated) = match input.resource_uri {
            Some(uri) => (uri, false),
            None => (ResourceUri::from_name(&input.fields.name), true),
        };
        let audit = caller
            .actor()
            .entry(AuditAction::Create, diff(None, Some(&input.fields), true));
        let new = NewModel {
            id,
            resource_uri,
            generated,
            fields: input.fields,
            catalog: link,
            credentials,
            actor: caller.principal.clone(),
            now: Timestamp::now(),
        };
        (new, audit)
    }

    pub async fn get(&self, r: &Reader, key: &ModelKey) -> Result<Model> {
        Ok(self.with_credential_status(self.find(&r.0.scope, key).await?))
    }

    /// A model `GET /v1/models` lists: of the caller's project, by resource_uri, and not
    /// DISABLED as stored (a model whose credentials do not open reads as ERROR, and a DISABLED
    /// one among them is still not usable).
    pub async fn get_usable(&self, r: &Reader, uri: &ResourceUri) -> Result<Model> {
        let model = self.find(&r.0.scope, &ModelKey::Uri(uri.clone())).await?;
        if model.fields.status == Status::Disabled {
            return Err(Error::model_not_found(uri.as_str()));
        }
        Ok(self.with_credential_status(model))
    }

    async fn find(&self, scope: &TenantScope, key: &ModelKey) -> Result<Model> {
        self.store
            .get_model(scope, key)
            .await?
            .ok_or_else(|| Error::model_not_found(&key.to_string()))
    }

    /// Applies a merge patch. Without `If-Match` a concurrent write is retried on the fresh
    /// row (the patch only names the fields it changes, so nothing is lost); with `If-Match`
    /// it is a 412.
    pub async fn update(
        &self,
        w: &Writer,
        key: &ModelKey,
        body: ModelUpdate,
        if_match: Option<&EtagCondition>,
    ) -> Result<Model> {
        let patch = validate::update(body)?;
        let catalog = self.catalogs.current().await?;
        self.write_with_retry(w, key, if_match, |current| {
            self.plan_update(&catalog, &patch, current)
        })
        .await
    }

    /// What a validated merge patch makes of the current model (`None`: nothing changes).
    pub(crate) fn plan_update(
        &self,
        catalog: &Catalog,
        patch: &validate::ModelPatch,
        current: &Model,
    ) -> Result<Option<Planned>> {
        if let Some(uri) = &patch.resource_uri
            && uri != current.resource_uri.as_str()
        {
            return Err(Error::field(
                &["body", "resource_uri"],
                "immutable",
                format!(
                    "is immutable and must equal the model's ('{}') when sent",
                    current.resource_uri
                ),
            ));
        }
        let mut fields = patch.apply(&current.fields);
        // A new model string takes the catalog's values of the entry it matches.
        let moved = fields.litellm_model != current.fields.litellm_model
            || fields.base_model != current.fields.base_model;
        let entry = moved.then(|| catalog.entry_for(&fields));
        let now = current
            .catalog
            .key
            .as_deref()
            .and_then(|k| catalog.entry_values_of(k));
        let link = current.catalog.updated(
            &current.fields,
            &mut fields,
            &patch.catalog_given,
            entry.as_ref().map(Option::as_ref),
            now.as_ref(),
        );
        // Credentials equal to the stored ones are no change: a re-import or a GET → PUT
        // round trip that resends them writes nothing.
        let new_credentials = patch
            .credentials
            .as_ref()
            .filter(|c| !self.same_credentials(current, c));
        if fields == current.fields && link == current.catalog && new_credentials.is_none() {
            return Ok(None);
        }
        let credentials = new_credentials.map(|c| self.seal(binding(current), c));
        Ok(Some(Planned {
            fields,
            catalog: link,
            credentials,
            action: AuditAction::Update,
        }))
    }

    /// Changes the stored credentials key by key: a value sets a key, `null` removes it. The
    /// stored credentials must open; if they do not, replace them whole with PUT.
    pub async fn update_credentials(
        &self,
        w: &Writer,
        key: &ModelKey,
        patch: &CredentialsPatch,
        if_match: Option<&EtagCondition>,
    ) -> Result<Model> {
        self.write_with_retry(w, key, if_match, |current| {
            let stored = self.open(current).map_err(|e| {
                    Error::field(
                        &["body"],
                        "credentials_unreadable",
                        format!(
                            "the stored credentials cannot be decrypted ({e}); replace them whole with PUT"
                        ),
                    )
                })?;
            let merged = stored
                .merged(patch)
                .map_err(|m| Error::field(&["body"], "credentials", m))?;
            Ok(Some(Planned {
                fields: current.fields.clone(),
                catalog: current.catalog.clone(),
                credentials: Some(self.seal(binding(current), &merged)),
                action: AuditAction::Credentials,
            }))
        })
        .await
    }

    /// A compare-and-swap write of what `plan` makes of the current model (`None`: nothing to
    /// change), with its audit event. A concurrent change is retried on the fresh row without
    /// `If-Match`, and is a 412 with it.
    pub(crate) async fn write_with_retry(
        &self,
        w: &Writer,
        key: &ModelKey,
        if_match: Option<&EtagCondition>,
        plan: impl Fn(&Model) -> Result<Option<Planned>>,
    ) -> Result<Model> {
        let caller = &w.0;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.find(&caller.scope, key).await?;
            check_precondition(if_match, &current)?;
            let Some(p) = plan(&current)? else {
                return Ok(self.with_credential_status(current));
            };
            let (change, audit) = change_of(caller, &current, p);
            match self
                .store
                .update_model(&caller.scope, change, &audit)
                .await?
            {
                Some(updated) => return Ok(self.with_credential_status(updated)),
                None if if_match.is_some() => return Err(precondition_failed()),
                None => continue,
            }
        }
        Err(too_much_contention())
    }

    pub async fn delete(
        &self,
        d: &Deleter,
        key: &ModelKey,
        if_match: Option<&EtagCondition>,
    ) -> Result<()> {
        let caller = &d.0;
        let current = self.find(&caller.scope, key).await?;
        check_precondition(if_match, &current)?;
        let expected = if_match.map(|_| current.version);
        let audit = delete_audit(caller, &current);
        if self
            .store
            .delete_model(&caller.scope, current.id, expected, &audit)
            .await?
        {
            Ok(())
        } else if if_match.is_some() {
            Err(precondition_failed())
        } else {
            Err(Error::model_not_found(&key.to_string()))
        }
    }

    /// Whether `credentials` equal the model's stored ones (false when those do not open).
    fn same_credentials(&self, model: &Model, credentials: &Credentials) -> bool {
        let parse = |c: &Credentials| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(c.expose_json()).ok()
        };
        self.open(model)
            .ok()
            .is_some_and(|stored| parse(&stored) == parse(credentials))
    }

    /// The project's models matching `query`'s filters and sort, as a LiteLLM proxy config
    /// (docs/litellm.md). Credentials appear only as `os.environ/` references.
    pub async fn export_litellm(
        &self,
        r: &Reader,
        query: &ListQuery,
    ) -> Result<crate::litellm::Export> {
        self.export_litellm_in(&r.0.scope, query, false).await
    }

    /// The export of `scope`. `with_values` also collects each variable's value, references
    /// resolved as the operator grants them to the organization (the local
    /// `export --with-values`; no HTTP response ever carries them).
    pub async fn export_litellm_in(
        &self,
        scope: &TenantScope,
        query: &ListQuery,
        with_values: bool,
    ) -> Result<crate::litellm::Export> {
        let mut export = crate::litellm::Export::new(with_values);
        let mut query = ListQuery {
            limit: 100,
            paging: crate::list::Paging::Page(1),
            ..query.clone()
        };
        let mut first = None;
        loop {
            let page = self.store.list_models(scope, &query).await?;
            let at = (page.generation, page.slices);
            if *first.get_or_insert(at) != at {
                // Read across a write: not to be kept.
                first = Some((None, None));
            }
            export.read_at = first.unwrap_or_default();
            for model in &page.items {
                let credentials = self.open(model).ok();
                let resolved = match &credentials {
                    Some(c) if with_values => Some(self.references.resolve_each(&scope.org, c)),
                    _ => None,
                };
                export.add(model, credentials.as_ref(), resolved);
            }
            match page.items.last() {
                Some(last) if page.has_more => {
                    query.paging = crate::list::Paging::After(query.after(last));
                }
                _ => return Ok(export),
            }
        }
    }

    /// A page of the caller's project.
    pub async fn list(&self, r: &Reader, query: &ListQuery) -> Result<ListPage> {
        let mut page = self.store.list_models(&r.0.scope, query).await?;
        page.items = page
            .items
            .into_iter()
            .map(|m| self.with_credential_status(m))
            .collect();
        Ok(page)
    }

    /// A page of the caller's project as `/v1/models` shows it: the columns it returns, no
    /// credentials (so none is decrypted), no count.
    pub async fn list_entries(&self, r: &Reader, query: &ListQuery) -> Result<EntryPage> {
        self.store.list_entries(&r.0.scope, query).await
    }

    /// The generation of the caller's project (see `ModelStore::project_generation`): a page
    /// read at the generation still current is still exact.
    pub async fn list_generation(&self, r: &Reader) -> Result<Option<i64>> {
        match r.0.generation {
            Some(g) => Ok(Some(g)),
            None => self.store.project_generation(&r.0.scope).await,
        }
    }

    /// The generation of the slices the list's filters select (see
    /// `ModelStore::slices_generation`): a page read at the one still current is still exact,
    /// whatever the project's generation says.
    pub async fn list_slices(&self, r: &Reader, query: &ListQuery) -> Result<Option<i64>> {
        self.store.slices_generation(&r.0.scope, query).await
    }
}

/// Which models "upstream changed" reads.
#[derive(Debug, Clone)]
pub struct UpstreamQuery {
    /// Models after this resource_uri.
    pub after: Option<String>,
    /// Only these models (at most 100).
    pub uris: Option<Vec<String>>,
    /// At most this many models with changes.
    pub limit: u32,
}

/// Whether an upstream change is taken into the model or kept away from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Take,
    Keep,
}

impl ModelService {
    /// The catalog in force.
    pub async fn catalog(&self) -> Result<Arc<Catalog>> {
        self.catalogs.current().await
    }

    /// The project's models whose catalog values changed upstream since they took them, with
    /// those changes, by resource_uri: at most `q.limit`, after `q.after`, or only those of
    /// `q.uris`. Reads the project's models linked to the catalog in order, a batch at a time,
    /// until the page is full; the second value is where the next page starts (`None`: none
    /// follows).
    pub async fn upstream_changes(
        &self,
        r: &Reader,
        q: &UpstreamQuery,
    ) -> Result<(Vec<(Model, Vec<UpstreamChange>)>, Option<String>)> {
        const BATCH: u32 = 1000;
        let catalog = self.catalogs.current().await?;
        let mut out = Vec::new();
        let mut after = q.after.clone();
        loop {
            let batch = self
                .store
                .catalogued_models(&r.0.scope, after.as_deref(), q.uris.as_deref(), BATCH)
                .await?;
            let full = batch.len() == BATCH as usize;
            for m in batch {
                after = Some(m.resource_uri.to_string());
                let changes = upstream_of(&catalog, &m);
                if !changes.is_empty() {
                    out.push((m, changes));
                    if out.len() >= q.limit as usize {
                        return Ok((out, after));
                    }
                }
            }
            if !full {
                return Ok((out, None));
            }
        }
    }

    /// Takes or keeps a model's upstream changes: all of them, or those of `only` (field
    /// names). The model unchanged when there are none.
    pub async fn settle_upstream(
        &self,
        w: &Writer,
        key: &ModelKey,
        how: Settle,
        only: Option<&[String]>,
        if_match: Option<&EtagCondition>,
    ) -> Result<Model> {
        if only
            .unwrap_or_default()
            .iter()
            .any(|f| !CATALOG_FIELDS.contains(&f.as_str()))
        {
            return Err(Error::field(
                &["body", "fields"],
                "catalog_field",
                format!(
                    "holds a name that is not a field the catalog fills; use any of {}",
                    CATALOG_FIELDS.join(", ")
                ),
            ));
        }
        let catalog = self.catalogs.current().await?;
        self.write_with_retry(w, key, if_match, |current| {
            let mut changes = upstream_of(&catalog, current);
            if let Some(only) = only {
                changes.retain(|c| only.contains(&c.field));
            }
            if changes.is_empty() {
                return Ok(None);
            }
            let (mut fields, mut link) = (current.fields.clone(), current.catalog.clone());
            match how {
                Settle::Take => link.take(&mut fields, &changes),
                Settle::Keep => link.keep(&changes),
            }
            Ok(Some(Planned {
                fields,
                catalog: link,
                credentials: None,
                action: AuditAction::Update,
            }))
        })
        .await
    }
}

/// A model's upstream changes against `catalog`.
fn upstream_of(catalog: &Catalog, m: &Model) -> Vec<UpstreamChange> {
    let entry = m
        .catalog
        .key
        .as_deref()
        .and_then(|k| catalog.entry_values_of(k));
    m.catalog.upstream_changes(&m.fields, entry.as_ref())
}

impl ModelService {
    /// A model's audit events, newest first; they outlive the model.
    pub async fn history(
        &self,
        r: &Reader,
        key: &ModelKey,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        let offset = u64::from(page - 1) * u64::from(limit);
        self.store
            .model_history(&r.0.scope, key, offset, limit)
            .await
    }

    /// The organization's audit events, newest first.
    pub async fn audit_log(
        &self,
        auditor: &Auditor,
        filter: &AuditFilter,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<AuditEvent>, u64)> {
        let offset = u64::from(page - 1) * u64::from(limit);
        self.store
            .audit_events(&auditor.0, filter, offset, limit)
            .await
    }

    /// The projects `identity` can reach, each with the role it has there, sorted
    /// (`Identity::reachable_projects`). For a `*` grant these are the projects of its own
    /// organization that hold models, at most [`MAX_LISTED_PROJECTS`] of them; that grant
    /// lets it read every project of the organization, so naming them tells it nothing it
    /// could not read. A credential bound to projects costs no read.
    pub async fn reachable_projects(&self, identity: &Identity) -> Result<Vec<(ProjectId, Role)>> {
        let org_projects = if identity.grants.contains_key(&ProjectGrant::All) {
            self.store
                .org_projects(&identity.org, MAX_LISTED_PROJECTS)
                .await?
        } else {
            Vec::new()
        };
        Ok(identity.reachable_projects(org_projects))
    }
}

/// The most projects of an organization listed for a caller of all of them, so the answer
/// stays small whatever the organization holds.
pub const MAX_LISTED_PROJECTS: u32 = 1_000;

/// What a write makes of a model.
pub(crate) struct Planned {
    pub(crate) fields: ModelFields,
    pub(crate) catalog: CatalogLink,
    pub(crate) credentials: Option<SealedCredentials>,
    pub(crate) action: AuditAction,
}

/// The compare-and-swap write of `p` over `current`, and its audit entry: what changed,
/// field by field.
pub(crate) fn change_of(caller: &Caller, current: &Model, p: Planned) -> (ModelChange, AuditEntry) {
    let mut changes = diff(
        Some(&current.fields),
        Some(&p.fields),
        p.credentials.is_some(),
    );
    // Which values are the catalog's is part of the model: a change of it (a field that
    // became the user's own, an upstream value taken or kept) is in its history.
    if p.catalog != current.catalog
        && let Some(map) = changes.as_object_mut()
    {
        map.insert(
            "catalog".into(),
            serde_json::json!({"from": current.catalog, "to": p.catalog}),
        );
    }
    let audit = caller.actor().entry(p.action, changes);
    let change = ModelChange {
        id: current.id,
        expected_version: current.version,
        fields: p.fields,
        catalog: p.catalog,
        credentials: p.credentials,
        actor: caller.principal.clone(),
        now: Timestamp::now(),
    };
    (change, audit)
}

/// The audit entry of deleting `current`.
pub(crate) fn delete_audit(caller: &Caller, current: &Model) -> AuditEntry {
    caller.actor().entry(
        AuditAction::Delete,
        diff(Some(&current.fields), None, false),
    )
}

/// What a model's credentials are bound to.
fn binding(model: &Model) -> Binding<'_> {
    Binding {
        scope: &model.scope,
        record_id: model.id,
    }
}

pub(crate) fn too_much_contention() -> Error {
    Error::Unavailable("the model is being changed by many writers at once; retry".into())
}

pub(crate) fn precondition_failed() -> Error {
    Error::PreconditionFailed(
        "the model has changed since it was read; fetch it again and retry with its new ETag"
            .into(),
    )
}

pub(crate) fn check_precondition(cond: Option<&EtagCondition>, current: &Model) -> Result<()> {
    match cond {
        Some(c) if !c.matches_strong(&current.etag()) => Err(precondition_failed()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_conditions() {
        let tag = "\"abc\"";
        assert!(EtagCondition::parse("*").unwrap().matches_strong(tag));
        let c = EtagCondition::parse("\"x\", \"abc\"").unwrap();
        assert!(c.matches_strong(tag));
        let weak = EtagCondition::parse("W/\"abc\"").unwrap();
        assert!(!weak.matches_strong(tag));
        assert!(weak.matches_weak(tag));
        assert!(EtagCondition::parse("abc").is_none());
        assert!(EtagCondition::parse("").is_none());
    }
}
