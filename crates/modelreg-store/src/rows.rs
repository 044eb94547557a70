//! Mapping between the `models`/`api_tokens` rows and domain values.

use modelreg_core::{
    Error, Result,
    auth::{ProjectGrant, Role},
    model::{Mode, Model, ModelFields, Status},
    resource_uri::ResourceUri,
    store::ApiToken,
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use sqlx::{Row, sqlite::SqliteRow};
use uuid::Uuid;

/// The columns a model is read from. The credentials ciphertext is not among them: reads
/// never need it.
pub(crate) const MODEL_COLUMNS: [&str; 28] = [
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
    "last_verified_at",
    "version",
];

/// `MODEL_COLUMNS` joined for hand-written SQL.
pub(crate) fn model_columns_sql() -> String {
    MODEL_COLUMNS.join(", ")
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored model has an invalid {what}: {detail}"))
}

fn timestamp(row: &SqliteRow, col: &str) -> Result<Timestamp> {
    let s: String = row.try_get(col).map_err(crate::db_error)?;
    Timestamp::parse(&s).ok_or_else(|| corrupt(col, s))
}

fn json_list(row: &SqliteRow, col: &str) -> Result<Vec<String>> {
    let s: String = row.try_get(col).map_err(crate::db_error)?;
    serde_json::from_str(&s).map_err(|e| corrupt(col, e))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub(crate) fn model_from_row(row: &SqliteRow) -> Result<Model> {
    let get_s = |c: &str| -> Result<String> { row.try_get(c).map_err(crate::db_error) };
    let get_os = |c: &str| -> Result<Option<String>> { row.try_get(c).map_err(crate::db_error) };
    let get_oi = |c: &str| -> Result<Option<i64>> { row.try_get(c).map_err(crate::db_error) };
    let get_of = |c: &str| -> Result<Option<f64>> { row.try_get(c).map_err(crate::db_error) };

    let id = get_s("id")?;
    let id = Uuid::parse_str(&id).map_err(|e| corrupt("id", e))?;
    let org = OrgId::parse(&get_s("organization_id")?).map_err(|e| corrupt("organization", e))?;
    let project = ProjectId::parse(&get_s("project_id")?).map_err(|e| corrupt("project", e))?;
    let uri = get_s("resource_uri")?;
    let resource_uri = ResourceUri::parse(&uri).map_err(|e| corrupt("resource_uri", e))?;
    let status = get_s("status")?;
    let status = Status::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    let mode = match get_s("mode")?.as_str() {
        "" => None,
        m => Some(Mode::parse(m).ok_or_else(|| corrupt("mode", m))?),
    };
    Ok(Model {
        id,
        resource_uri,
        scope: TenantScope::new(org, project),
        fields: ModelFields {
            name: get_s("name")?,
            litellm_model: get_s("litellm_model")?,
            provider: non_empty(get_s("provider")?),
            description: get_os("description")?,
            tags: json_list(row, "tags")?,
            api_base: get_os("api_base")?,
            api_version: get_os("api_version")?,
            mode,
            max_input_tokens: get_oi("max_input_tokens")?,
            max_output_tokens: get_oi("max_output_tokens")?,
            default_max_tokens: get_oi("default_max_tokens")?,
            rpm: get_oi("rpm")?,
            tpm: get_oi("tpm")?,
            default_temperature: get_of("default_temperature")?,
            timeout: get_of("timeout")?,
            status,
            status_message: get_os("status_message")?,
        },
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
        created_by: get_s("created_by")?,
        updated_by: get_s("updated_by")?,
        credential_fields: json_list(row, "credential_fields")?,
        last_verified_at: get_os("last_verified_at")?
            .map(|s| Timestamp::parse(&s).ok_or_else(|| corrupt("last_verified_at", s)))
            .transpose()?,
        version: row.try_get("version").map_err(crate::db_error)?,
    })
}

pub(crate) fn token_from_row(row: &SqliteRow) -> Result<ApiToken> {
    let get_s = |c: &str| -> Result<String> { row.try_get(c).map_err(crate::db_error) };
    let id = get_s("id")?;
    let role = get_s("role")?;
    Ok(ApiToken {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("token id", e))?,
        name: get_s("name")?,
        org: OrgId::parse(&get_s("organization_id")?).map_err(|e| corrupt("token org", e))?,
        project: ProjectGrant::parse(&get_s("project_id")?)
            .map_err(|e| corrupt("token project", e))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("token role", role))?,
        created_at: timestamp(row, "created_at")?,
        revoked_at: row
            .try_get::<Option<String>, _>("revoked_at")
            .map_err(crate::db_error)?
            .map(|s| Timestamp::parse(&s).ok_or_else(|| corrupt("revoked_at", s)))
            .transpose()?,
    })
}
