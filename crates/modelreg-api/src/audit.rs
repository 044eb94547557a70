//! The audit trail over HTTP: `GET /assets/models/{resource_uri}/history` and
//! `GET /assets/audit`.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::request::Parts,
};
use modelreg_core::{
    audit::{AuditAction, AuditEvent},
    list::page_and_limit,
    service::Caller,
    store::AuditFilter,
    timestamp::Timestamp,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::{
    IntoParams, PartialSchema, ToSchema,
    openapi::{
        ObjectBuilder, Ref, RefOr, Schema, Type,
        schema::{AnyOfBuilder, SchemaType},
    },
};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{ModelPath, QueryPairs},
    openapi::json_object,
};

/// One audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    #[schema(format = Uuid)]
    pub id: String,
    /// Position in the organization's chain, from 1.
    pub seq: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// Who made the change: `user:<name>`, `service:<name>` or `system:<name>`.
    pub principal: String,
    /// The user a service acted for (`X-On-Behalf-Of`).
    pub on_behalf_of: Option<String>,
    /// `model.create`, `model.update`, `model.credentials`, `model.delete` or `model.verify`.
    pub action: String,
    pub organization_id: String,
    pub project_id: String,
    #[schema(format = Uuid)]
    pub model_id: String,
    pub resource_uri: String,
    pub request_id: Option<String>,
    pub changes: AuditChanges,
    /// SHA-256 over this event and `prev_hash`.
    pub hash: String,
    pub prev_hash: String,
}

/// What an event changed, as `audit::diff` and the verification write it: each changed field
/// as `{"from": …, "to": …}`, `credentials` only as `{"changed": true}`, and on
/// `model.verify` events `verified` as a boolean.
#[derive(Serialize)]
#[serde(transparent)]
pub struct AuditChanges(pub Value);

impl PartialSchema for AuditChanges {
    fn schema() -> RefOr<Schema> {
        json_object()
            .description(Some(
                "What the event changed: each changed field as `{\"from\": …, \"to\": …}`, \
                 `credentials` only as `{\"changed\": true}` (never a value), and on `model.verify` \
                 events `verified` as a boolean.",
            ))
            .additional_properties(Some(RefOr::<Schema>::from(
                AnyOfBuilder::new()
                    .item(Ref::from_schema_name(FieldChange::name()))
                    .item(Ref::from_schema_name(CredentialsChange::name()))
                    .item(ObjectBuilder::new().schema_type(Type::Boolean)),
            )))
            .into()
    }
}

impl ToSchema for AuditChanges {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (name, schema) in [
            (FieldChange::name(), FieldChange::schema()),
            (CredentialsChange::name(), CredentialsChange::schema()),
        ] {
            schemas.push((name.into(), schema));
        }
    }
}

/// A changed field of an audit event (documentation).
pub struct FieldChange;

impl PartialSchema for FieldChange {
    fn schema() -> RefOr<Schema> {
        let any = |description: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A field's value before and after the change"))
            .property(
                "from",
                any("The value before; null when there was none or no model"),
            )
            .property(
                "to",
                any("The value after; null when cleared or the model was deleted"),
            )
            .required("from")
            .required("to")
            .into()
    }
}

impl ToSchema for FieldChange {}

/// A change of credentials in an audit event (documentation).
pub struct CredentialsChange;

impl PartialSchema for CredentialsChange {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("The credentials changed; their values never appear"))
            .property(
                "changed",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("changed")
            .into()
    }
}

impl ToSchema for CredentialsChange {}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        AuditEventView {
            id: e.id.to_string(),
            seq: e.seq,
            at: e.at.to_string(),
            principal: e.principal.clone(),
            on_behalf_of: e.on_behalf_of.clone(),
            action: e.action.clone(),
            organization_id: e.organization_id.clone(),
            project_id: e.project_id.clone(),
            model_id: e.model_id.to_string(),
            resource_uri: e.resource_uri.clone(),
            request_id: e.request_id.clone(),
            changes: AuditChanges(e.changes.clone()),
            hash: e.hash.clone(),
            prev_hash: e.prev_hash.clone(),
        }
    }
}

/// Page numbers of an event list.
#[derive(Serialize, ToSchema)]
pub struct EventPagination {
    pub page: u32,
    pub limit: u32,
    pub total_items: u64,
    pub total_pages: u64,
    pub next_page: Option<u64>,
    pub prev_page: Option<u64>,
}

/// A page of audit events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditEventList {
    pub data: Vec<AuditEventView>,
    pub pagination: EventPagination,
}

impl AuditEventList {
    fn new(events: &[AuditEvent], total: u64, page: u32, limit: u32) -> Self {
        let total_pages = total.div_ceil(u64::from(limit));
        let p = u64::from(page);
        AuditEventList {
            data: events.iter().map(AuditEventView::from).collect(),
            pagination: EventPagination {
                page,
                limit,
                total_items: total,
                total_pages,
                next_page: (p < total_pages).then_some(p + 1),
                prev_page: (p > 1).then(|| (p - 1).min(total_pages.max(1))),
            },
        }
    }
}

/// Paging of an event list (documentation).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    #[param(minimum = 1, default = 1)]
    page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
}

/// A model's history
///
/// The model's audit events, newest first. It still answers after the model is deleted
/// (by resource_uri or id).
#[utoipa::path(
    get,
    path = "/assets/models/{resource_uri}/history",
    tag = "audit",
    operation_id = "model_history",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        PageParams,
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "A page of events", body = AuditEventList),
        (status = 422, description = "Invalid paging", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.history", skip_all)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<AuditEventList>, ApiError> {
    let (page, limit) = page_and_limit(&pairs)?;
    let (events, total) = state
        .models
        .history(&caller.reader()?, &key, page, limit)
        .await?;
    Ok(Json(AuditEventList::new(&events, total, page, limit)))
}

/// Filters of the audit log (documentation).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditParams {
    /// `model.create`, `model.update`, `model.credentials`, `model.delete` or `model.verify`.
    action: Option<String>,
    resource_uri: Option<String>,
    /// A principal, matched as the actor or the user acted for.
    actor: Option<String>,
    /// Events at or after this RFC 3339 time.
    since: Option<String>,
    /// Events at or before this RFC 3339 time.
    until: Option<String>,
    #[param(minimum = 1, default = 1)]
    page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
}

/// The organization-level caller of the audit log: no project is involved.
pub struct OrgCaller(pub modelreg_core::auth::Identity);

impl FromRequestParts<AppState> for OrgCaller {
    type Rejection = ApiError;

    /// Authenticated, rate limited and logged as every other caller (`auth::identify`).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(OrgCaller(crate::auth::identify(parts, state).await?))
    }
}

/// The organization's audit log
///
/// Every change in the organization, newest first, filtered. For owners and admins of all
/// projects (`*`).
#[utoipa::path(
    get,
    path = "/assets/audit",
    tag = "audit",
    operation_id = "audit_log",
    params(AuditParams),
    responses(
        (status = 200, description = "A page of events", body = AuditEventList),
        (status = 422, description = "Invalid filter or paging", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "audit.list", skip_all)]
pub async fn audit_log(
    State(state): State<AppState>,
    OrgCaller(identity): OrgCaller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<AuditEventList>, ApiError> {
    let (page, limit) = page_and_limit(&pairs)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let time = |k: &str| -> Result<Option<Timestamp>, ApiError> {
        get(k)
            .map(|v| {
                Timestamp::parse(&v).ok_or_else(|| {
                    ApiError::field(&["query", k], "datetime", "must be an RFC 3339 time")
                })
            })
            .transpose()
    };
    let action = get("action");
    if let Some(a) = &action
        && AuditAction::parse(a).is_none()
    {
        return Err(ApiError::field(
            &["query", "action"],
            "enum",
            format!(
                "must be one of {}",
                AuditAction::ALL.map(|a| a.as_str()).join(", ")
            ),
        ));
    }
    let filter = AuditFilter {
        action,
        resource_uri: get("resource_uri"),
        actor: get("actor"),
        since: time("since")?,
        until: time("until")?,
    };
    let (events, total) = state
        .models
        .audit_log(&identity.auditor()?, &filter, page, limit)
        .await?;
    Ok(Json(AuditEventList::new(&events, total, page, limit)))
}
