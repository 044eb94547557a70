//! Mapping between rows and domain values, written once for both backends: each backend's row
//! type implements `RowAccess` in its own column types (SQLite text, PostgreSQL uuid and
//! timestamptz). The model's field columns are derived from `with_model_fields!`.

use modelreg_core::{
    Result,
    audit::AuditEvent,
    auth::{ProjectGrant, Role},
    catalog::CatalogLink,
    list::{ListPage, ListQuery},
    model::{Mode, Model, ModelFields, Status},
    resource_uri::ResourceUri,
    secrets::SealedCredentials,
    store::{ApiToken, FoundToken, ReplicaBeat, SealedRecord},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use std::sync::LazyLock;

use uuid::Uuid;

use crate::exec::{RowAccess, Value, corrupt, params};

/// How the store keeps each model field, as `with_model_fields!` declares it.
#[derive(Clone, Copy)]
pub(crate) enum How {
    /// As is.
    Text,
    /// None as an empty string, so that it sorts first on every backend.
    EmptyIsNone,
    /// None as NULL.
    Nullable,
    /// A JSON list of strings in a text column.
    JsonList,
}

/// A field's Rust type, as a column.
pub(crate) trait Column: Sized {
    fn encode(&self, how: How) -> Value;
    fn decode(row: &dyn RowAccess, col: &str, how: How) -> Result<Self>;
}

impl Column for String {
    fn encode(&self, _: How) -> Value {
        self.into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        row.text(col)
    }
}

impl Column for Option<String> {
    fn encode(&self, how: How) -> Value {
        match how {
            How::EmptyIsNone => self.clone().unwrap_or_default().into(),
            _ => self.clone().into(),
        }
    }
    fn decode(row: &dyn RowAccess, col: &str, how: How) -> Result<Self> {
        match how {
            How::EmptyIsNone => Ok(non_empty(row.text(col)?)),
            _ => row.opt_text(col),
        }
    }
}

impl Column for Vec<String> {
    fn encode(&self, _: How) -> Value {
        json(self).into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        json_list(row, col)
    }
}

impl Column for Option<i64> {
    fn encode(&self, _: How) -> Value {
        (*self).into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        row.opt_int(col)
    }
}

impl Column for Option<f64> {
    fn encode(&self, _: How) -> Value {
        (*self).into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        row.opt_real(col)
    }
}

impl Column for Option<Mode> {
    fn encode(&self, _: How) -> Value {
        self.map(|m| m.as_str()).unwrap_or("").into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        match row.text(col)?.as_str() {
            "" => Ok(None),
            m => Mode::parse(m).map(Some).ok_or_else(|| corrupt(col, m)),
        }
    }
}

impl Column for Status {
    fn encode(&self, _: How) -> Value {
        self.as_str().into()
    }
    fn decode(row: &dyn RowAccess, col: &str, _: How) -> Result<Self> {
        let s = row.text(col)?;
        Status::parse(&s).ok_or_else(|| corrupt(col, &s))
    }
}

macro_rules! how {
    (text) => {
        How::Text
    };
    (empty_is_none) => {
        How::EmptyIsNone
    };
    (nullable) => {
        How::Nullable
    };
    (json_list) => {
        How::JsonList
    };
}

/// The columns of the model fields, their values and their reading, from the one declaration.
/// Two more columns follow the fields: the lower-cased name and description the search reads.
macro_rules! field_columns {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$how:ident $($rest:tt)*]),* $(,)?) => {
        /// The columns a model's fields are written to, in `field_values`' order.
        pub(crate) const FIELD_COLUMNS: &[&str] = &[$(stringify!($name),)* "name_lc", "description_lc"];

        /// A model's fields as the values of `FIELD_COLUMNS`.
        pub(crate) fn field_values(f: &ModelFields) -> Vec<Value> {
            vec![
                $(Column::encode(&f.$name, how!($how)),)*
                f.name.to_lowercase().into(),
                f.description.as_deref().unwrap_or("").to_lowercase().into(),
            ]
        }

        fn fields_from_row(row: &dyn RowAccess) -> Result<ModelFields> {
            Ok(ModelFields {
                $($name: <$ty as Column>::decode(row, stringify!($name), how!($how))?,)*
            })
        }
    };
}
modelreg_core::with_model_fields!(field_columns);

/// The columns a model is read from, its sealed credentials included: the service checks on
/// every read that they still open.
pub(crate) static MODEL_COLUMNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let fields = FIELD_COLUMNS.iter().filter(|c| !c.ends_with("_lc"));
    ["id", "organization_id", "project_id", "resource_uri"]
        .into_iter()
        .chain(fields.copied())
        .chain([
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
            "credential_fields",
            "credentials_kek_id",
            "credentials",
            "last_verified_at",
            "version",
            "catalog",
        ])
        .collect()
});

/// `MODEL_COLUMNS` joined for hand-written SQL.
pub(crate) fn model_columns_sql() -> String {
    MODEL_COLUMNS.join(", ")
}

/// The next event of an organization's audit chain, after `last` (its newest `(seq, hash)`),
/// hashed.
pub(crate) fn next_audit_event(
    scope: &TenantScope,
    model_id: Uuid,
    resource_uri: &str,
    entry: &modelreg_core::audit::AuditEntry,
    at: Timestamp,
    last: Option<(i64, String)>,
) -> AuditEvent {
    let (seq, prev_hash) = last
        .map(|(seq, hash)| (seq + 1, hash))
        .unwrap_or((1, modelreg_core::audit::GENESIS.to_owned()));
    let mut event = AuditEvent {
        id: Uuid::now_v7(),
        organization_id: scope.org.to_string(),
        seq,
        at,
        principal: entry.principal.clone(),
        on_behalf_of: entry.on_behalf_of.clone(),
        action: entry.action.as_str().to_owned(),
        project_id: scope.project.to_string(),
        model_id,
        resource_uri: resource_uri.to_owned(),
        request_id: entry.request_id.clone(),
        changes: entry.changes.clone(),
        prev_hash,
        hash: String::new(),
    };
    event.hash = event.compute_hash();
    event
}

/// An audit event as the values of `sql::AUDIT_COLUMNS`.
pub(crate) fn audit_values(e: &AuditEvent) -> Vec<Value> {
    params![
        e.id,
        e.organization_id.as_str(),
        e.seq,
        e.at,
        e.principal.as_str(),
        e.on_behalf_of.clone(),
        e.action.as_str(),
        e.project_id.as_str(),
        e.model_id,
        e.resource_uri.as_str(),
        e.request_id.clone(),
        e.changes.to_string(),
        e.prev_hash.as_str(),
        e.hash.as_str(),
    ]
}

pub(crate) fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

/// A uuid SQLite stores as text.
pub(crate) fn text_uuid(row: &dyn RowAccess, col: &str) -> Result<Uuid> {
    let s = row.text(col)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(col, e))
}

/// A timestamp SQLite stores as RFC 3339 text.
pub(crate) fn text_timestamp(row: &dyn RowAccess, col: &str) -> Result<Option<Timestamp>> {
    row.opt_text(col)?
        .map(|s| Timestamp::parse(&s).ok_or_else(|| corrupt(col, s)))
        .transpose()
}

pub(crate) fn json_list(row: &dyn RowAccess, col: &str) -> Result<Vec<String>> {
    let s = row.text(col)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The tenant a row belongs to.
fn scope_from_row(row: &dyn RowAccess) -> Result<TenantScope> {
    let org =
        OrgId::parse(&row.text("organization_id")?).map_err(|e| corrupt("organization", e))?;
    let project = ProjectId::parse(&row.text("project_id")?).map_err(|e| corrupt("project", e))?;
    Ok(TenantScope::new(org, project))
}

pub(crate) fn model_from_row(row: &dyn RowAccess) -> Result<Model> {
    let uri = row.text("resource_uri")?;
    Ok(Model {
        id: row.uuid("id")?,
        resource_uri: ResourceUri::parse(&uri).map_err(|e| corrupt("resource_uri", e))?,
        scope: scope_from_row(row)?,
        fields: fields_from_row(row)?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        created_by: row.text("created_by")?,
        updated_by: row.text("updated_by")?,
        credentials: sealed_from_row(row)?,
        last_verified_at: row.opt_timestamp("last_verified_at")?,
        version: row.int("version")?,
        catalog: {
            let s = row.text("catalog")?;
            CatalogLink::from_json(&s).ok_or_else(|| corrupt("catalog", s))?
        },
    })
}

/// The columns of a `ModelEntry` (`/v1/models`).
pub(crate) const ENTRY_COLUMNS: [&str; 13] = [
    "id",
    "resource_uri",
    "created_at",
    "provider",
    "name",
    "max_input_tokens",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_cost_per_token",
    "cache_write_cost_per_token",
    "capabilities",
    "deprecation_date",
];

pub(crate) fn entry_from_row(row: &dyn RowAccess) -> Result<modelreg_core::list::ModelEntry> {
    let uri = row.text("resource_uri")?;
    Ok(modelreg_core::list::ModelEntry {
        id: row.uuid("id")?,
        resource_uri: ResourceUri::parse(&uri).map_err(|e| corrupt("resource_uri", e))?,
        created_at: row.timestamp("created_at")?,
        provider: non_empty(row.text("provider")?),
        name: row.text("name")?,
        max_input_tokens: row.opt_int("max_input_tokens")?,
        max_output_tokens: row.opt_int("max_output_tokens")?,
        input_cost_per_token: row.opt_real("input_cost_per_token")?,
        output_cost_per_token: row.opt_real("output_cost_per_token")?,
        cache_read_cost_per_token: row.opt_real("cache_read_cost_per_token")?,
        cache_write_cost_per_token: row.opt_real("cache_write_cost_per_token")?,
        capabilities: json_list(row, "capabilities")?,
        deprecation_date: row.opt_text("deprecation_date")?,
    })
}

pub(crate) fn sealed_from_row(row: &dyn RowAccess) -> Result<SealedCredentials> {
    Ok(SealedCredentials {
        kek_id: row.text("credentials_kek_id")?,
        blob: row.bytes("credentials")?,
        fields: json_list(row, "credential_fields")?,
    })
}

/// A sealed record with its tenant, for maintenance across tenants.
pub(crate) fn sealed_record_from_row(row: &dyn RowAccess) -> Result<SealedRecord> {
    Ok(SealedRecord {
        id: row.uuid("id")?,
        scope: scope_from_row(row)?,
        credentials: sealed_from_row(row)?,
    })
}

pub(crate) fn audit_from_row(row: &dyn RowAccess) -> Result<AuditEvent> {
    let changes = row.text("changes")?;
    Ok(AuditEvent {
        id: row.uuid("id")?,
        organization_id: row.text("organization_id")?,
        seq: row.int("seq")?,
        at: row.timestamp("at")?,
        principal: row.text("principal")?,
        on_behalf_of: row.opt_text("on_behalf_of")?,
        action: row.text("action")?,
        project_id: row.text("project_id")?,
        model_id: row.uuid("model_id")?,
        resource_uri: row.text("resource_uri")?,
        request_id: row.opt_text("request_id")?,
        changes: serde_json::from_str(&changes).map_err(|e| corrupt("audit changes", e))?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

pub(crate) fn token_from_row(row: &dyn RowAccess) -> Result<ApiToken> {
    let role = row.text("role")?;
    Ok(ApiToken {
        id: row.uuid("id")?,
        name: row.text("name")?,
        org: OrgId::parse(&row.text("organization_id")?).map_err(|e| corrupt("token org", e))?,
        project: ProjectGrant::parse(&row.text("project_id")?)
            .map_err(|e| corrupt("token project", e))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("token role", role))?,
        created_at: row.timestamp("created_at")?,
        revoked_at: row.opt_timestamp("revoked_at")?,
        expires_at: row.opt_timestamp("expires_at")?,
        last_used_at: row.opt_timestamp("last_used_at")?,
    })
}

pub(crate) fn replica_from_row(row: &dyn RowAccess) -> Result<ReplicaBeat> {
    Ok(ReplicaBeat {
        id: row.text("replica")?,
        kek_ids: row
            .text("kek_ids")?
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        seal_kek_id: row.text("seal_kek_id")?,
        seen_at: row.timestamp("seen_at")?,
        live_until: row.timestamp("live_until")?,
    })
}

/// A row of `TOKEN_BY_HASH`: the token and its project's generation.
pub(crate) fn found_token_from_row(row: &dyn RowAccess) -> Result<FoundToken> {
    Ok(FoundToken {
        token: token_from_row(row)?,
        project_generation: row.opt_int("project_generation")?,
    })
}

/// The page's models, whether more follow, the total, and the generation read with them.
/// A page of `query` from the models its statement returned (up to `limit + 1`: one more
/// than the page says there are more).
pub(crate) fn finish_models(
    query: &ListQuery,
    mut models: Vec<Model>,
    total: i64,
    generation: Option<i64>,
) -> ListPage {
    let has_more = models.len() > query.limit as usize;
    models.truncate(query.limit as usize);
    ListPage {
        items: models,
        total_items: u64::try_from(total).unwrap_or(0),
        has_more,
        generation,
        slices: None,
        total_is_estimate: false,
    }
}
