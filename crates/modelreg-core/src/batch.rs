//! A batch of changes to one project's models (`POST /assets/models:batch`): up to
//! [`MAX_OPERATIONS`] creates, updates, deletes, status and tag changes. Each is planned as
//! its single-model request is (the same validation, role check, catalog, sealing,
//! precondition and audit entry, `service.rs`), then the store runs them all in one transaction
//! (`ModelStore::write_batch`; its rules are in the store's `writes.rs`).
//!
//! Models are read before the transaction and written by compare-and-swap inside it, as a
//! single update is: a model changed in between is a 412 for an operation with an expected
//! etag, and is planned again on the fresh row for one without.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{
    audit::AuditEntry,
    error::{Error, Result},
    model::{Model, ModelCreate, ModelUpdate, Patch},
    resource_uri::{ModelKey, ResourceUri},
    service::{
        Caller, EtagCondition, MAX_UPDATE_ATTEMPTS, ModelService, Writer, change_of,
        check_precondition, delete_audit, precondition_failed, too_much_contention,
    },
    store::{BatchWrite, BatchWritten},
    validate,
};

/// The most operations of one batch.
pub const MAX_OPERATIONS: usize = 1_000;

/// One operation of a batch.
pub enum Operation {
    Create(Box<ModelCreate>),
    Update {
        key: ModelKey,
        if_match: Option<EtagCondition>,
        change: Change,
    },
    Delete {
        key: ModelKey,
        if_match: Option<EtagCondition>,
    },
    /// An operation whose body did not parse: it fails with this error, as its single-model
    /// request would.
    Invalid(Error),
}

/// What an update operation changes.
pub enum Change {
    /// A merge patch, as PUT and PATCH take it (setting a status is one).
    Patch(Box<ModelUpdate>),
    /// Tags added after the model's own (those it has already are kept where they are).
    AddTags(Vec<String>),
    /// Tags taken out of the model's.
    RemoveTags(Vec<String>),
}

/// What became of one operation.
#[derive(Debug)]
pub enum Outcome {
    Created(Model),
    /// Updated, or unchanged when the operation changed nothing.
    Updated(Model),
    Deleted(ResourceUri),
    Failed(Error),
    /// Not stored: the batch is atomic and the operation of this index failed.
    RolledBack {
        failed: usize,
    },
}

impl Operation {
    /// The model the operation names, when it names one: a create by its given resource_uri.
    fn key(&self) -> Option<ModelKey> {
        match self {
            Operation::Create(body) => match &body.resource_uri {
                Patch::Value(uri) => ResourceUri::parse(uri).ok().map(ModelKey::Uri),
                _ => None,
            },
            Operation::Update { key, .. } | Operation::Delete { key, .. } => Some(key.clone()),
            Operation::Invalid(_) => None,
        }
    }
}

/// An operation after validation, ready to be planned against the stored model.
enum Prepared {
    Create(Box<(crate::store::NewModel, AuditEntry)>),
    Update {
        key: ModelKey,
        if_match: Option<EtagCondition>,
        change: PreparedChange,
    },
    Delete {
        key: ModelKey,
        if_match: Option<EtagCondition>,
    },
}

enum PreparedChange {
    Patch(Box<validate::ModelPatch>),
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
}

/// Stored models by resource_uri and by id.
type Stored = HashMap<ModelKey, Model>;

/// What planning made of an operation.
enum Step {
    /// The write, its audit entry, and the model's resource_uri as read.
    Write(BatchWrite, AuditEntry, ResourceUri),
    /// An update that changes nothing: the model as it is.
    Unchanged(Model),
}

/// The batch is too large, or names one model twice: refused whole.
fn check_shape(ops: &[Operation]) -> Result<()> {
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(Error::field(
            &["body", "operations"],
            "operations_count",
            format!(
                "must hold 1 to {MAX_OPERATIONS} operations (it holds {})",
                ops.len()
            ),
        ));
    }
    let mut seen: HashMap<ModelKey, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(key) = op.key()
            && let Some(first) = seen.insert(key, i)
        {
            return Err(repeated(first, i));
        }
    }
    Ok(())
}

fn repeated(first: usize, again: usize) -> Error {
    Error::Validation(vec![crate::FieldError {
        loc: vec![
            "body".into(),
            "operations".into(),
            again.to_string(),
            "resource_uri".into(),
        ],
        msg: format!(
            "names the same model as operation {first}; a batch changes each model at most once"
        ),
        kind: "duplicate_model",
    }])
}

impl ModelService {
    /// Runs a batch of operations on the caller's project, in order, one result per operation.
    /// With `atomic`, all are stored or none: the first that fails is reported, every other
    /// is `RolledBack`. Without, each stands or falls alone. A batch that is too large or
    /// names a model twice is refused whole, and so is one the database fails.
    pub async fn batch(
        &self,
        w: &Writer,
        ops: Vec<Operation>,
        atomic: bool,
    ) -> Result<Vec<Outcome>> {
        let caller = w.caller();
        check_shape(&ops)?;
        let catalog = self.catalogs.current().await?;
        let n = ops.len();
        let mut out: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(n);
        for (i, op) in ops.into_iter().enumerate() {
            match self.prepare(caller, &catalog, op) {
                Ok(p) => prepared.push(Some(p)),
                Err(e) => {
                    out[i] = Some(Outcome::Failed(e));
                    prepared.push(None);
                }
            }
        }
        let mut pending: Vec<usize> = (0..n).filter(|i| out[*i].is_none()).collect();
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            if atomic && let Some(failed) = first_failed(&out) {
                return Ok(rolled_back(out, failed));
            }
            let mut writes = Vec::new();
            let mut written = Vec::new();
            let mut ids: HashMap<Uuid, usize> = HashMap::new();
            let mut uris = Vec::new();
            let stored = self.stored(caller, &pending, &prepared).await?;
            for &i in &pending {
                let Some(op) = &prepared[i] else { continue };
                match self.plan(caller, &catalog, op, &stored) {
                    Ok(Step::Write(write, audit, uri)) => {
                        if let Some(id) = target(&write)
                            && let Some(first) = ids.insert(id, i)
                            && attempt == 0
                        {
                            return Err(repeated(first, i));
                        }
                        writes.push((write, audit));
                        written.push(i);
                        uris.push(uri);
                    }
                    Ok(Step::Unchanged(model)) => {
                        out[i] = Some(Outcome::Updated(self.with_credential_status(model)));
                    }
                    Err(e) => out[i] = Some(Outcome::Failed(e)),
                }
            }
            if atomic && let Some(failed) = first_failed(&out) {
                return Ok(rolled_back(out, failed));
            }
            if writes.is_empty() {
                return Ok(finished(out));
            }
            let results = self
                .store
                .write_batch(&caller.scope, writes, atomic)
                .await?;
            let mut again = Vec::new();
            for ((i, result), uri) in written.into_iter().zip(results).zip(uris) {
                let op = prepared[i].as_ref();
                let if_match = op.and_then(Prepared::if_match);
                out[i] = match result {
                    BatchWritten::Stored(model) => Some(match op {
                        Some(Prepared::Create(..)) => Outcome::Created(*model),
                        _ => Outcome::Updated(self.with_credential_status(*model)),
                    }),
                    BatchWritten::Deleted => Some(Outcome::Deleted(uri)),
                    // Changed or deleted since it was read: with an expected etag that is a
                    // 412, as for a single request; without, it is planned again.
                    BatchWritten::Missing if if_match.is_some() => {
                        Some(Outcome::Failed(precondition_failed()))
                    }
                    BatchWritten::Missing => match op {
                        Some(Prepared::Delete { key, .. }) => {
                            Some(Outcome::Failed(Error::model_not_found(&key.to_string())))
                        }
                        _ => {
                            again.push(i);
                            None
                        }
                    },
                    BatchWritten::Failed(e) => Some(Outcome::Failed(e)),
                    BatchWritten::RolledBack => {
                        again.push(i);
                        None
                    }
                };
            }
            if atomic {
                if let Some(failed) = first_failed(&out) {
                    return Ok(rolled_back(out, failed));
                }
                // Only models changed since they were read stopped it: all again, on fresh rows.
                if !again.is_empty() {
                    again = pending.clone();
                    out.iter_mut().for_each(|o| *o = None);
                }
            }
            if again.is_empty() {
                return Ok(finished(out));
            }
            pending = again;
        }
        for i in pending {
            out[i] = Some(Outcome::Failed(too_much_contention()));
        }
        match first_failed(&out) {
            Some(failed) if atomic => Ok(rolled_back(out, failed)),
            _ => Ok(finished(out)),
        }
    }

    /// Validates an operation as its single-model request is validated; a create is planned
    /// whole here (it reads no stored model).
    fn prepare(
        &self,
        caller: &Caller,
        catalog: &crate::catalog::Catalog,
        op: Operation,
    ) -> Result<Prepared> {
        Ok(match op {
            Operation::Create(body) => {
                let (new, audit) = self.plan_create(caller, catalog, validate::create(*body)?);
                Prepared::Create(Box::new((new, audit)))
            }
            Operation::Update {
                key,
                if_match,
                change,
            } => Prepared::Update {
                key,
                if_match,
                change: match change {
                    Change::Patch(body) => {
                        PreparedChange::Patch(Box::new(validate::update(*body)?))
                    }
                    Change::AddTags(tags) => PreparedChange::AddTags(tag_list(tags)?),
                    Change::RemoveTags(tags) => PreparedChange::RemoveTags(tag_list(tags)?),
                },
            },
            Operation::Delete { key, if_match } => {
                // The role check of a single delete, for this operation alone.
                caller.clone().deleter()?;
                Prepared::Delete { key, if_match }
            }
            Operation::Invalid(e) => return Err(e),
        })
    }

    /// The models the operations of `pending` name, as stored now, read together.
    async fn stored(
        &self,
        caller: &Caller,
        pending: &[usize],
        prepared: &[Option<Prepared>],
    ) -> Result<Stored> {
        let keys: Vec<ModelKey> = pending
            .iter()
            .filter_map(|&i| match &prepared[i] {
                Some(Prepared::Update { key, .. } | Prepared::Delete { key, .. }) => {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect();
        let models = self.store.get_models(&caller.scope, &keys).await?;
        Ok(models
            .into_iter()
            .flat_map(|m| {
                [
                    (ModelKey::Uri(m.resource_uri.clone()), m.clone()),
                    (ModelKey::Id(m.id), m),
                ]
            })
            .collect())
    }

    /// Plans an operation against the model as stored now (`stored`).
    fn plan(
        &self,
        caller: &Caller,
        catalog: &crate::catalog::Catalog,
        op: &Prepared,
        stored: &Stored,
    ) -> Result<Step> {
        let (key, if_match) = match op {
            Prepared::Create(planned) => {
                let (new, audit) = &**planned;
                let write = BatchWrite::Create(new.clone());
                return Ok(Step::Write(write, audit.clone(), new.resource_uri.clone()));
            }
            Prepared::Update { key, if_match, .. } | Prepared::Delete { key, if_match } => {
                (key, if_match.as_ref())
            }
        };
        let current = stored
            .get(key)
            .cloned()
            .ok_or_else(|| Error::model_not_found(&key.to_string()))?;
        check_precondition(if_match, &current)?;
        let change = match op {
            Prepared::Update { change, .. } => change,
            _ => {
                let expected_version = if_match.map(|_| current.version);
                let audit = delete_audit(caller, &current);
                let write = BatchWrite::Delete {
                    id: current.id,
                    expected_version,
                };
                return Ok(Step::Write(write, audit, current.resource_uri));
            }
        };
        let tags_patch;
        let patch = match change {
            PreparedChange::Patch(patch) => patch,
            PreparedChange::AddTags(tags) => {
                let mut all = current.fields.tags.clone();
                all.extend(
                    tags.iter()
                        .filter(|t| !current.fields.tags.contains(t))
                        .cloned(),
                );
                tags_patch = tags_set_to(all)?;
                &tags_patch
            }
            PreparedChange::RemoveTags(tags) => {
                let mut kept = current.fields.tags.clone();
                kept.retain(|t| !tags.contains(t));
                tags_patch = tags_set_to(kept)?;
                &tags_patch
            }
        };
        Ok(match self.plan_update(catalog, patch, &current)? {
            None => Step::Unchanged(current),
            Some(planned) => {
                let (change, audit) = change_of(caller, &current, planned);
                Step::Write(
                    BatchWrite::Update(change),
                    audit,
                    current.resource_uri.clone(),
                )
            }
        })
    }
}

impl Prepared {
    fn if_match(&self) -> Option<&EtagCondition> {
        match self {
            Prepared::Update { if_match, .. } | Prepared::Delete { if_match, .. } => {
                if_match.as_ref()
            }
            Prepared::Create(..) => None,
        }
    }
}

/// Tags named by an add or remove operation, checked as a model's tags are.
fn tag_list(tags: Vec<String>) -> Result<Vec<String>> {
    validate::tags(tags).map_err(|(kind, msg)| Error::field(&["body", "tags"], kind, msg))
}

/// The merge patch that sets a model's tags to `tags`, checked as PUT checks them (at most 50).
fn tags_set_to(tags: Vec<String>) -> Result<validate::ModelPatch> {
    validate::update(ModelUpdate {
        tags: Patch::Value(tags),
        ..ModelUpdate::default()
    })
}

/// The model a write changes, when it is a stored one.
fn target(write: &BatchWrite) -> Option<Uuid> {
    match write {
        BatchWrite::Create(_) => None,
        BatchWrite::Update(change) => Some(change.id),
        BatchWrite::Delete { id, .. } => Some(*id),
    }
}

fn first_failed(out: &[Option<Outcome>]) -> Option<usize> {
    out.iter()
        .position(|o| matches!(o, Some(Outcome::Failed(_))))
}

/// An atomic batch that stored nothing: the operation that failed, and every other rolled back.
fn rolled_back(out: Vec<Option<Outcome>>, failed: usize) -> Vec<Outcome> {
    out.into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(Outcome::Failed(e)) if i == failed => Outcome::Failed(e),
            _ => Outcome::RolledBack { failed },
        })
        .collect()
}

fn finished(out: Vec<Option<Outcome>>) -> Vec<Outcome> {
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed(too_much_contention())))
        .collect()
}
