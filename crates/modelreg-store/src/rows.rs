//! Mapping between rows and domain values, written once for both backends: each backend's row
//! type implements `RowAccess` in its own column types (SQLite text, PostgreSQL uuid and
//! timestamptz).

use modelreg_core::{
    Error, Result,
    audit::AuditEvent,
    auth::{ProjectGrant, Role},
    list::{ListPage, ListQuery},
    model::{Mode, Model, ModelFields, Status},
    resource_uri::ResourceUri,
    secrets::SealedCredentials,
    store::{ApiToken, FoundToken, ReplicaBeat, SealedRecord},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use sqlx::{Row, postgres::PgRow, sqlite::SqliteRow};
use uuid::Uuid;

/// The columns a model is read from, its sealed credentials included: the service checks on
/// every read that they still open.
pub(crate) const MODEL_COLUMNS: [&str; 30] = [
    "id",
    "organization_id",
    "project_id",
    "resource_uri",
    "name",
    "litellm_model",
    "provider",
    "description",
    "tags",
    "api_base",
    "api_version",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "default_max_tokens",
    "rpm",
    "tpm",
    "default_temperature",
    "timeout",
    "status",
    "status_message",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "credential_fields",
    "credentials_kek_id",
    "credentials",
    "last_verified_at",
    "version",
];

/// `MODEL_COLUMNS` joined for hand-written SQL.
pub(crate) fn model_columns_sql() -> String {
    MODEL_COLUMNS.join(", ")
}

/// Binds the writable fields of a model, in the order of the column lists of the INSERT and
/// UPDATE statements. A macro, because each backend's query type is different.
macro_rules! bind_fields {
    ($q:expr, $f:expr) => {{
        let f = $f;
        $q.bind(f.name.clone())
            .bind(f.name.to_lowercase())
            .bind(f.litellm_model.clone())
            .bind(f.provider.clone().unwrap_or_default())
            .bind(f.description.clone())
            .bind(f.description.as_deref().unwrap_or("").to_lowercase())
            .bind($crate::rows::json(&f.tags))
            .bind(f.api_base.clone())
            .bind(f.api_version.clone())
            .bind(f.mode.map(|m| m.as_str()).unwrap_or(""))
            .bind(f.max_input_tokens)
            .bind(f.max_output_tokens)
            .bind(f.default_max_tokens)
            .bind(f.rpm)
            .bind(f.tpm)
            .bind(f.default_temperature)
            .bind(f.timeout)
            .bind(f.status.as_str())
            .bind(f.status_message.clone())
    }};
}
pub(crate) use bind_fields;

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

/// Binds an audit event to `sql::AUDIT_INSERT` on SQLite, where ids and times are text.
macro_rules! bind_audit_text {
    ($q:expr, $e:expr) => {{
        let e = $e;
        $q.bind(e.id.to_string())
            .bind(e.organization_id.clone())
            .bind(e.seq)
            .bind(e.at.to_string())
            .bind(e.principal.clone())
            .bind(e.on_behalf_of.clone())
            .bind(e.action.clone())
            .bind(e.project_id.clone())
            .bind(e.model_id.to_string())
            .bind(e.resource_uri.clone())
            .bind(e.request_id.clone())
            .bind(e.changes.to_string())
            .bind(e.prev_hash.clone())
            .bind(e.hash.clone())
    }};
}
pub(crate) use bind_audit_text;

/// The column list `bind_fields!` binds, for INSERT.
pub(crate) const FIELD_COLUMNS: &str = "name, name_lc, litellm_model, provider, description, \
     description_lc, tags, api_base, api_version, mode, max_input_tokens, max_output_tokens, \
     default_max_tokens, rpm, tpm, default_temperature, timeout, status, status_message";

/// `col = ?` for each column `bind_fields!` binds, for UPDATE.
pub(crate) fn field_assignments() -> String {
    FIELD_COLUMNS
        .split(',')
        .map(|c| format!("{} = ?", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored row has an invalid {what}: {detail}"))
}

/// Typed column access over a backend's row.
pub(crate) trait RowAccess {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn opt_real(&self, col: &str) -> Result<Option<f64>>;
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;
    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>>;

    fn timestamp(&self, col: &str) -> Result<Timestamp> {
        self.opt_timestamp(col)?.ok_or_else(|| corrupt(col, "null"))
    }
}

macro_rules! plain_access {
    () => {
        fn text(&self, col: &str) -> Result<String> {
            self.try_get(col).map_err(crate::db_error)
        }
        fn opt_text(&self, col: &str) -> Result<Option<String>> {
            self.try_get(col).map_err(crate::db_error)
        }
        fn int(&self, col: &str) -> Result<i64> {
            self.try_get(col).map_err(crate::db_error)
        }
        fn opt_int(&self, col: &str) -> Result<Option<i64>> {
            self.try_get(col).map_err(crate::db_error)
        }
        fn opt_real(&self, col: &str) -> Result<Option<f64>> {
            self.try_get(col).map_err(crate::db_error)
        }
        fn bytes(&self, col: &str) -> Result<Vec<u8>> {
            self.try_get(col).map_err(crate::db_error)
        }
    };
}

/// A uuid SQLite stores as text.
pub(crate) fn text_uuid(row: &impl RowAccess, col: &str) -> Result<Uuid> {
    let s = row.text(col)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(col, e))
}

/// A timestamp SQLite stores as RFC 3339 text.
pub(crate) fn text_timestamp(row: &impl RowAccess, col: &str) -> Result<Option<Timestamp>> {
    row.opt_text(col)?
        .map(|s| Timestamp::parse(&s).ok_or_else(|| corrupt(col, s)))
        .transpose()
}

impl RowAccess for SqliteRow {
    plain_access!();

    fn uuid(&self, col: &str) -> Result<Uuid> {
        text_uuid(self, col)
    }

    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>> {
        text_timestamp(self, col)
    }
}

impl RowAccess for PgRow {
    plain_access!();

    fn uuid(&self, col: &str) -> Result<Uuid> {
        self.try_get(col).map_err(crate::db_error)
    }

    fn opt_timestamp(&self, col: &str) -> Result<Option<Timestamp>> {
        let t: Option<time::OffsetDateTime> = self.try_get(col).map_err(crate::db_error)?;
        Ok(t.map(Timestamp::from_offset_date_time))
    }
}

fn json_list(row: &impl RowAccess, col: &str) -> Result<Vec<String>> {
    let s = row.text(col)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// The tenant a row belongs to.
fn scope_from_row(row: &impl RowAccess) -> Result<TenantScope> {
    let org =
        OrgId::parse(&row.text("organization_id")?).map_err(|e| corrupt("organization", e))?;
    let project = ProjectId::parse(&row.text("project_id")?).map_err(|e| corrupt("project", e))?;
    Ok(TenantScope::new(org, project))
}

pub(crate) fn model_from_row(row: &impl RowAccess) -> Result<Model> {
    let uri = row.text("resource_uri")?;
    let resource_uri = ResourceUri::parse(&uri).map_err(|e| corrupt("resource_uri", e))?;
    let status = row.text("status")?;
    let status = Status::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    let mode = match row.text("mode")?.as_str() {
        "" => None,
        m => Some(Mode::parse(m).ok_or_else(|| corrupt("mode", m))?),
    };
    Ok(Model {
        id: row.uuid("id")?,
        resource_uri,
        scope: scope_from_row(row)?,
        fields: ModelFields {
            name: row.text("name")?,
            litellm_model: row.text("litellm_model")?,
            provider: non_empty(row.text("provider")?),
            description: row.opt_text("description")?,
            tags: json_list(row, "tags")?,
            api_base: row.opt_text("api_base")?,
            api_version: row.opt_text("api_version")?,
            mode,
            max_input_tokens: row.opt_int("max_input_tokens")?,
            max_output_tokens: row.opt_int("max_output_tokens")?,
            default_max_tokens: row.opt_int("default_max_tokens")?,
            rpm: row.opt_int("rpm")?,
            tpm: row.opt_int("tpm")?,
            default_temperature: row.opt_real("default_temperature")?,
            timeout: row.opt_real("timeout")?,
            status,
            status_message: row.opt_text("status_message")?,
        },
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
        created_by: row.text("created_by")?,
        updated_by: row.text("updated_by")?,
        credentials: sealed_from_row(row)?,
        last_verified_at: row.opt_timestamp("last_verified_at")?,
        version: row.int("version")?,
    })
}

pub(crate) fn sealed_from_row(row: &impl RowAccess) -> Result<SealedCredentials> {
    Ok(SealedCredentials {
        kek_id: row.text("credentials_kek_id")?,
        blob: row.bytes("credentials")?,
        fields: json_list(row, "credential_fields")?,
    })
}

/// A sealed record with its tenant, for maintenance across tenants.
pub(crate) fn sealed_record_from_row(row: &impl RowAccess) -> Result<SealedRecord> {
    Ok(SealedRecord {
        id: row.uuid("id")?,
        scope: scope_from_row(row)?,
        credentials: sealed_from_row(row)?,
    })
}

pub(crate) fn audit_from_row(row: &impl RowAccess) -> Result<AuditEvent> {
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

pub(crate) fn token_from_row(row: &impl RowAccess) -> Result<ApiToken> {
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

pub(crate) fn replica_from_row(row: &impl RowAccess) -> Result<ReplicaBeat> {
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
pub(crate) fn found_token_from_row(row: &impl RowAccess) -> Result<FoundToken> {
    Ok(FoundToken {
        token: token_from_row(row)?,
        project_generation: row.opt_int("project_generation")?,
    })
}

/// Rewrites `?` placeholders as PostgreSQL's `$1`, `$2`, …, so each statement is written once.
/// The statements this is used on have no `?` inside literals.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The page's models, whether more follow, the total, and the generation read with them.
/// The generation a filtered page is at. A page with rows carries it in its own snapshot. A
/// page with none carries nothing, but a count of none made at generation `g` says that every
/// page of the filter is empty at `g`, so the page may be kept at `g`. (Without this, a search
/// that matches nothing, a typo say, was a full scan on every request.)
pub(crate) fn empty_page_generation(
    from_rows: Option<i64>,
    count: i64,
    counted_at: Option<i64>,
) -> Option<i64> {
    from_rows.or(counted_at.filter(|_| count == 0))
}

/// The maintained total and the generation an unfiltered page's first row carries
/// (`list_query::unfiltered_page`); `None` when the page has no row.
pub(crate) fn total_and_generation(
    first: Option<&impl RowAccess>,
) -> Result<Option<(i64, Option<i64>)>> {
    first
        .map(|row| {
            Ok((
                row.opt_int(crate::list_query::TOTAL)?.unwrap_or(0),
                row.opt_int(crate::list_query::GENERATION)?,
            ))
        })
        .transpose()
}

pub(crate) fn finish_page(
    query: &ListQuery,
    rows: &[impl RowAccess],
    total: i64,
    generation: Option<i64>,
) -> Result<ListPage> {
    let models = rows
        .iter()
        .take(query.limit as usize + 1)
        .map(model_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(finish_models(query, models, total, generation))
}

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
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(super::numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert!(super::field_assignments().starts_with("name = ?, name_lc = ?"));
    }
}
