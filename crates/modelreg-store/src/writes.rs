//! Every write's rules, written once for both backends: what a create, an update, a delete, a
//! verification and a batch do, in which order, inside the transaction the backend opened.
//!
//! What the database keeps by itself is not here (migration 0010): the count of a project's
//! models and its generation, and the tag rows. Triggers keep them on every insert, delete and
//! update, whoever writes. What is here: the version compare-and-swap, generated
//! resource_uris, and the organization's audit chain.

use modelreg_core::{
    Error, Result,
    audit::AuditEntry,
    model::Model,
    resource_uri::ResourceUri,
    store::{BatchWrite, BatchWritten, ModelChange, NewModel},
    tenant::TenantScope,
    timestamp::Timestamp,
};
use uuid::Uuid;

use crate::{
    exec::{Exec, Value, params},
    rows::{audit_values, field_values, json, model_from_row, next_audit_event},
    sql::{self, first_free, placeholders, uri_range},
};

/// Models per multi-row INSERT: 31 parameters each, under SQLite's 32,766 and PostgreSQL's
/// 65,535 a statement.
const MODELS_PER_INSERT: usize = 500;

/// A new model's row, in `sql::MODELS_INTO`'s column order.
fn model_row(scope: &TenantScope, new: &NewModel, uri: &str, values: &mut Vec<Value>) {
    values.extend(field_values(&new.fields));
    values.extend(params![
        new.id,
        scope.org.as_str(),
        scope.project.as_str(),
        uri,
        new.now,
        new.now,
        new.actor.as_str(),
        new.actor.as_str(),
        json(&new.credentials.fields),
        new.credentials.kek_id.as_str(),
        new.credentials.blob.clone(),
        1i64,
        new.catalog.to_json(),
    ]);
}

/// Inserts models of one project, all or nothing, each with its audit event. Models with
/// given uris go a chunk to a statement; a generated uri depends on the ones before it, so
/// those go one at a time.
pub(crate) async fn insert_many(
    c: &mut impl Exec,
    scope: &TenantScope,
    news: &[NewModel],
    audit: &AuditEntry,
) -> Result<()> {
    if news.iter().any(|n| n.generated) {
        for new in news {
            let uri = insert_one(c, scope, new).await?;
            append_audit(c, scope, &[(new.id, uri.as_str(), new.now)], audit).await?;
        }
        return Ok(());
    }
    for chunk in news.chunks(MODELS_PER_INSERT) {
        let uris: Vec<ResourceUri> = chunk.iter().map(|n| n.resource_uri.clone()).collect();
        insert_rows(c, scope, chunk, &uris).await?;
        let events: Vec<_> = chunk
            .iter()
            .zip(&uris)
            .map(|(n, u)| (n.id, u.as_str(), n.now))
            .collect();
        append_audit(c, scope, &events, audit).await?;
    }
    Ok(())
}

/// One create: the row, its audit event, and the model as stored.
pub(crate) async fn insert(
    c: &mut impl Exec,
    scope: &TenantScope,
    new: &NewModel,
    audit: &AuditEntry,
) -> Result<Model> {
    insert_many(c, scope, std::slice::from_ref(new), audit).await?;
    fetch_model(c, scope, new.id).await
}

/// One model's row, under its given uri or the first free one generated from it; the uri.
async fn insert_one(c: &mut impl Exec, scope: &TenantScope, new: &NewModel) -> Result<ResourceUri> {
    let uri = if new.generated {
        free_generated_uri(c, scope, &new.resource_uri).await?
    } else {
        new.resource_uri.clone()
    };
    insert_rows(
        c,
        scope,
        std::slice::from_ref(new),
        std::slice::from_ref(&uri),
    )
    .await?;
    Ok(uri)
}

async fn insert_rows(
    c: &mut impl Exec,
    scope: &TenantScope,
    news: &[NewModel],
    uris: &[ResourceUri],
) -> Result<()> {
    let mut statement = sql::MODELS_INTO.clone();
    let mut values = Vec::new();
    for (i, (new, uri)) in news.iter().zip(uris).enumerate() {
        if i > 0 {
            statement.push_str(", ");
        }
        let before = values.len();
        model_row(scope, new, uri.as_str(), &mut values);
        statement.push_str(&placeholders(values.len() - before));
    }
    let statement = for_dialect(c, statement);
    match c.execute(&statement, values).await {
        Err(Error::AlreadyExists(detail)) => {
            let taken = match uris {
                [uri] => Some(uri.as_str().to_owned()),
                _ => match first_repeated(uris) {
                    Some(uri) => Some(uri),
                    // PostgreSQL's detail names the key; SQLite's error does not, and its
                    // transaction is still usable to ask.
                    None if detail.is_empty() => first_taken(c, scope, uris).await?,
                    None => None,
                },
            };
            Err(Error::AlreadyExists(match taken {
                Some(uri) => {
                    format!("a model with resource_uri '{uri}' already exists in this project")
                }
                None => format!(
                    "a model of the batch has a resource_uri that already exists in this \
                     project, or two share one{detail}"
                ),
            }))
        }
        other => other.map(drop),
    }
}

/// A statement built here with `?` placeholders, for the connection's backend.
pub(crate) fn for_dialect(c: &impl Exec, statement: String) -> String {
    match c.dialect() {
        crate::exec::Dialect::Sqlite => statement,
        crate::exec::Dialect::Postgres => sql::dollar_placeholders(&statement),
    }
}

/// A uri given twice in a batch.
fn first_repeated(uris: &[ResourceUri]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    uris.iter()
        .find(|u| !seen.insert(u.as_str()))
        .map(|u| u.as_str().to_owned())
}

/// The first of `uris` the project already has.
async fn first_taken(
    c: &mut impl Exec,
    scope: &TenantScope,
    uris: &[ResourceUri],
) -> Result<Option<String>> {
    let statement = format!(
        "SELECT resource_uri FROM models WHERE organization_id = ? AND project_id = ? \
         AND resource_uri IN {}",
        placeholders(uris.len())
    );
    let mut values = params![scope.org.as_str(), scope.project.as_str()];
    values.extend(uris.iter().map(|u| Value::from(u.as_str())));
    let taken = c
        .fetch(&for_dialect(c, statement), values, |r| {
            r.text("resource_uri")
        })
        .await?;
    Ok(uris
        .iter()
        .map(|u| u.as_str().to_owned())
        .find(|u| taken.contains(u)))
}

/// A batch: its writes in order, in the one transaction the backend opened, each with its
/// audit event, as its single-model write does it (`insert`, `update`, `delete`).
///
/// - The locks of generated resource_uris are taken first, all of them, in order: a single
///   create takes its uri's lock before the project's count row, so a batch that took the
///   count row (with its first write) and then waited for a uri's lock could wait for a create
///   that waits for it.
/// - Atomic: one savepoint around the batch; the first write that does not succeed rolls back
///   to it, and the rest are not run.
/// - Not atomic: a savepoint around each write, so one that fails (a taken uri: on PostgreSQL
///   the failed statement spoils the transaction until then) is undone alone and the next runs.
/// - An error of the database fails the whole batch: the backend rolls the transaction back.
pub(crate) async fn batch(
    c: &mut impl Exec,
    scope: &TenantScope,
    writes: &[(BatchWrite, AuditEntry)],
    atomic: bool,
) -> Result<Vec<BatchWritten>> {
    let mut generated: Vec<&str> = writes
        .iter()
        .filter_map(|(w, _)| match w {
            BatchWrite::Create(new) if new.generated => Some(new.resource_uri.as_str()),
            _ => None,
        })
        .collect();
    generated.sort_unstable();
    generated.dedup();
    for base in generated {
        c.lock(uri_lock(scope, base)).await?;
    }
    // Savepoints, not nested transactions: on SQLite the batch already runs in the
    // group-commit writer's savepoint of one write, on PostgreSQL in BEGIN … COMMIT.
    savepoint(c, "SAVEPOINT batch").await?;
    let mut out = Vec::with_capacity(writes.len());
    // The audit events of the writes that stand, appended together at the end: one lock of
    // the chain and one statement instead of three round trips a write.
    let mut events: Vec<(Uuid, String, Timestamp, &AuditEntry)> = Vec::new();
    let mut generated = Generated::default();
    for (write, audit) in writes {
        if !atomic {
            savepoint(c, "SAVEPOINT batch_write").await?;
        }
        let written = match batch_write(c, scope, write, &mut generated).await {
            Err(Error::AlreadyExists(m)) => BatchWritten::Failed(Error::AlreadyExists(m)),
            Err(e) => return Err(e),
            Ok((written, Some((id, uri, at)))) => {
                events.push((id, uri, at, audit));
                written
            }
            Ok((written, None)) => written,
        };
        let succeeded = matches!(written, BatchWritten::Stored(_) | BatchWritten::Deleted);
        match (atomic, succeeded) {
            (false, true) => savepoint(c, "RELEASE batch_write").await?,
            (false, false) => {
                savepoint(c, "ROLLBACK TO batch_write").await?;
                savepoint(c, "RELEASE batch_write").await?;
            }
            (true, true) => {}
            (true, false) => {
                savepoint(c, "ROLLBACK TO batch").await?;
                savepoint(c, "RELEASE batch").await?;
                let failed = out.len();
                let mut out: Vec<BatchWritten> =
                    writes.iter().map(|_| BatchWritten::RolledBack).collect();
                out[failed] = written;
                return Ok(out);
            }
        }
        out.push(written);
    }
    let events: Vec<_> = events
        .iter()
        .map(|(id, uri, at, audit)| (*id, uri.as_str(), *at, *audit))
        .collect();
    append_events(c, scope, &events).await?;
    savepoint(c, "RELEASE batch").await?;
    Ok(out)
}

async fn savepoint(c: &mut impl Exec, statement: &str) -> Result<()> {
    c.execute(statement, Vec::new()).await.map(drop)
}

/// The uris a batch's generated creates have seen taken, by base (read once a base), and the
/// next suffix to try: many creates of one name in a batch cost one read and one pass over
/// the suffixes, not a read and a scan each.
#[derive(Default)]
struct Generated(std::collections::HashMap<String, (std::collections::HashSet<String>, u32)>);

impl Generated {
    async fn uri(
        &mut self,
        c: &mut impl Exec,
        scope: &TenantScope,
        base: &ResourceUri,
    ) -> Result<ResourceUri> {
        if !self.0.contains_key(base.as_str()) {
            let (from, to) = uri_range(base.as_str());
            let values = params![scope.org.as_str(), scope.project.as_str(), from, to];
            let taken = c
                .fetch(&*sql::URIS_IN_RANGE, values, |r| r.text("resource_uri"))
                .await?;
            self.0
                .insert(base.as_str().to_owned(), (taken.into_iter().collect(), 2));
        }
        let (taken, next) = self.0.get_mut(base.as_str()).expect("read above");
        let uri = if taken.contains(base.as_str()) {
            // Only ever added to, so the smallest free suffix never goes down.
            let (n, uri) = (*next..)
                .map(|n| (n, base.with_suffix(n)))
                .find(|(_, u)| !taken.contains(u.as_str()))
                .expect("a free suffix exists");
            *next = n + 1;
            uri
        } else {
            base.clone()
        };
        taken.insert(uri.as_str().to_owned());
        Ok(uri)
    }
}

/// One write of a batch, without its audit event: what became of it, and the event to
/// append when it stands (the model, its uri, when).
async fn batch_write(
    c: &mut impl Exec,
    scope: &TenantScope,
    write: &BatchWrite,
    generated: &mut Generated,
) -> Result<(BatchWritten, Option<(Uuid, String, Timestamp)>)> {
    Ok(match write {
        BatchWrite::Create(new) => {
            // Its lock was taken at the start of the batch.
            let uri = if new.generated {
                generated.uri(c, scope, &new.resource_uri).await?
            } else {
                new.resource_uri.clone()
            };
            insert_rows(
                c,
                scope,
                std::slice::from_ref(new),
                std::slice::from_ref(&uri),
            )
            .await?;
            let model = fetch_model(c, scope, new.id).await?;
            let event = (new.id, uri.as_str().to_owned(), new.now);
            (BatchWritten::Stored(Box::new(model)), Some(event))
        }
        BatchWrite::Update(change) => match update_row(c, scope, change).await? {
            Some(model) => {
                let event = (model.id, model.resource_uri.as_str().to_owned(), change.now);
                (BatchWritten::Stored(Box::new(model)), Some(event))
            }
            None => (BatchWritten::Missing, None),
        },
        BatchWrite::Delete {
            id,
            expected_version,
        } => match delete_row(c, scope, *id, *expected_version).await? {
            Some(uri) => (BatchWritten::Deleted, Some((*id, uri, Timestamp::now()))),
            None => (BatchWritten::Missing, None),
        },
    })
}

/// A compare-and-swap update: `None` when the model is gone or its version moved on.
pub(crate) async fn update(
    c: &mut impl Exec,
    scope: &TenantScope,
    change: &ModelChange,
    audit: &AuditEntry,
) -> Result<Option<Model>> {
    let Some(model) = update_row(c, scope, change).await? else {
        return Ok(None);
    };
    let event = (model.id, model.resource_uri.as_str(), change.now);
    append_audit(c, scope, &[event], audit).await?;
    Ok(Some(model))
}

/// `update` without its audit event.
async fn update_row(
    c: &mut impl Exec,
    scope: &TenantScope,
    change: &ModelChange,
) -> Result<Option<Model>> {
    let mut values = field_values(&change.fields);
    values.extend(params![
        change.catalog.to_json(),
        change.now,
        change.actor.as_str(),
        scope.org.as_str(),
        scope.project.as_str(),
        change.id,
        change.expected_version,
    ]);
    if c.execute(&*sql::UPDATE_MODEL, values).await? == 0 {
        return Ok(None);
    }
    if let Some(s) = &change.credentials {
        let values = params![
            json(&s.fields),
            s.kek_id.as_str(),
            s.blob.clone(),
            scope.org.as_str(),
            scope.project.as_str(),
            change.id,
        ];
        c.execute(&*sql::UPDATE_CREDENTIALS, values).await?;
    }
    fetch_model(c, scope, change.id).await.map(Some)
}

/// Deletes a model (with `expected_version`, only that version); whether one was.
pub(crate) async fn delete(
    c: &mut impl Exec,
    scope: &TenantScope,
    id: Uuid,
    expected_version: Option<i64>,
    audit: &AuditEntry,
) -> Result<bool> {
    let deleted = delete_row(c, scope, id, expected_version).await?;
    if let Some(uri) = &deleted {
        append_audit(c, scope, &[(id, uri, Timestamp::now())], audit).await?;
    }
    Ok(deleted.is_some())
}

/// `delete` without its audit event: the deleted model's uri, if one was.
async fn delete_row(
    c: &mut impl Exec,
    scope: &TenantScope,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<Option<String>> {
    let values = params![
        scope.org.as_str(),
        scope.project.as_str(),
        id,
        expected_version,
        expected_version,
    ];
    c.fetch_optional(&*sql::DELETE_MODEL, values, |r| r.text("resource_uri"))
        .await
}

/// Records a verification; `None` when the model is gone.
pub(crate) async fn record_verification(
    c: &mut impl Exec,
    scope: &TenantScope,
    id: Uuid,
    (status, message, at): (&str, &str, Timestamp),
    audit: &AuditEntry,
) -> Result<Option<Model>> {
    let values = params![
        status,
        message,
        at,
        scope.org.as_str(),
        scope.project.as_str(),
        id
    ];
    if c.execute(&*sql::RECORD_VERIFICATION, values).await? == 0 {
        return Ok(None);
    }
    let model = fetch_model(c, scope, id).await?;
    append_audit(c, scope, &[(id, model.resource_uri.as_str(), at)], audit).await?;
    Ok(Some(model))
}

pub(crate) async fn fetch_model(c: &mut impl Exec, scope: &TenantScope, id: Uuid) -> Result<Model> {
    let values = params![scope.org.as_str(), scope.project.as_str(), id];
    c.fetch_optional(&*sql::MODEL_BY_ID, values, model_from_row)
        .await?
        .ok_or_else(|| Error::Internal(format!("model {id} vanished inside its own write")))
}

/// The smallest free generated uri. Creates of the same base in the same project wait for
/// each other on a lock held until the transaction ends.
async fn free_generated_uri(
    c: &mut impl Exec,
    scope: &TenantScope,
    base: &ResourceUri,
) -> Result<ResourceUri> {
    c.lock(uri_lock(scope, base.as_str())).await?;
    let (from, to) = uri_range(base.as_str());
    let values = params![scope.org.as_str(), scope.project.as_str(), from, to];
    let taken = c
        .fetch(&*sql::URIS_IN_RANGE, values, |r| r.text("resource_uri"))
        .await?;
    Ok(first_free(base, &taken))
}

/// The lock that creates of one generated uri's base in one project take.
fn uri_lock(scope: &TenantScope, base: &str) -> String {
    format!("modelreg/uri/{}/{}/{base}", scope.org, scope.project)
}

/// Appends one event per `(model, uri, at)`, each of `entry`: see `append_events`.
async fn append_audit(
    c: &mut impl Exec,
    scope: &TenantScope,
    events: &[(Uuid, &str, Timestamp)],
    entry: &AuditEntry,
) -> Result<()> {
    let events: Vec<_> = events
        .iter()
        .map(|(id, uri, at)| (*id, *uri, *at, entry))
        .collect();
    append_events(c, scope, &events).await
}

/// Audit events per INSERT: 14 parameters each, under SQLite's 32,766 a statement.
const EVENTS_PER_INSERT: usize = 2_000;

/// Appends one event per `(model, uri, at, entry)` to the organization's audit chain, in order,
/// a statement per 2,000. The chain is taken for the rest of the transaction (one writer per
/// chain at a time), after the project's count row, which the write's own statement took:
/// every write takes the two in that order, so two never wait for each other crosswise.
async fn append_events(
    c: &mut impl Exec,
    scope: &TenantScope,
    events: &[(Uuid, &str, Timestamp, &AuditEntry)],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    c.lock(format!("modelreg/audit/{}", scope.org)).await?;
    let mut last = c
        .fetch_optional(&*sql::AUDIT_LAST, params![scope.org.as_str()], |r| {
            Ok((r.int("seq")?, r.text("hash")?))
        })
        .await?;
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut statement = sql::AUDIT_INTO.to_owned();
        let mut values = Vec::new();
        for (i, (model_id, uri, at, entry)) in chunk.iter().enumerate() {
            let event = next_audit_event(scope, *model_id, uri, entry, *at, last.take());
            if i > 0 {
                statement.push_str(", ");
            }
            let row = audit_values(&event);
            statement.push_str(&placeholders(row.len()));
            values.extend(row);
            last = Some((event.seq, event.hash));
        }
        let statement = for_dialect(c, statement);
        c.execute(&statement, values).await?;
    }
    Ok(())
}
