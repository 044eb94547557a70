//! `/admin/tokens`: owners and admins of an organization (for all projects) manage its API
//! tokens over HTTP.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use modelreg_core::{
    Error,
    auth::{ProjectGrant, Role, generate_token, hash_token},
    store::{ApiToken, NewToken},
    timestamp::Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    audit::OrgCaller,
    error::{ApiError, ErrorBody},
    extract::JsonBody,
};

/// Body of `POST /admin/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// Unique name, 1–100 of letters, digits, `-`, `_`, `.`; the token acts as `service:<name>`.
    pub name: String,
    /// A project id, or `*` for all projects.
    pub project: String,
    /// owner, admin, member, developer, operator or viewer; never stronger than the caller's.
    pub role: String,
    /// When the token stops working (RFC 3339, in the future); never when absent.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// An API token, without its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub name: String,
    pub organization_id: String,
    pub project: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Recorded in batches, so it may lag by a few seconds.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        TokenView {
            name: t.name.clone(),
            organization_id: t.org.to_string(),
            project: t.project.to_string(),
            role: t.role.to_string(),
            created_at: t.created_at.to_string(),
            expires_at: t.expires_at.map(|x| x.to_string()),
            last_used_at: t.last_used_at.map(|x| x.to_string()),
            revoked_at: t.revoked_at.map(|x| x.to_string()),
        }
    }
}

/// A new token: the only response that ever contains its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret. Shown once; only its hash is stored.
    pub token: String,
    #[serde(flatten)]
    pub details: TokenView,
}

/// The caller's role for the whole organization, which managing tokens needs.
fn admin_role(caller: &OrgCaller) -> Result<Role, ApiError> {
    match caller.0.grants.get(&ProjectGrant::All).copied() {
        Some(r) if r <= Role::Admin => Ok(r),
        _ => Err(Error::Forbidden(
            "managing tokens needs the owner or admin role for all projects".into(),
        )
        .into()),
    }
}

/// Create an API token
///
/// Creates a token in the caller's organization and returns its secret once.
#[utoipa::path(
    post,
    path = "/admin/tokens",
    tag = "admin",
    operation_id = "create_token",
    request_body(content = TokenCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "The token, with its secret", body = CreatedToken),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid token settings", body = ErrorBody),
    ),
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: OrgCaller,
    body: JsonBody,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let mine = admin_role(&caller)?;
    let input: TokenCreate = body.parse()?;
    let field = |name: &str, msg: String| ApiError::field(&["body", name], "value_error", msg);
    let ok_name = !input.name.is_empty()
        && input.name.len() <= 100
        && input
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok_name {
        return Err(field(
            "name",
            "must be 1-100 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let project = ProjectGrant::parse(&input.project).map_err(|m| field("project", m))?;
    let role = Role::parse(&input.role).ok_or_else(|| {
        field(
            "role",
            "must be owner, admin, member, developer, operator or viewer".into(),
        )
    })?;
    if role < mine {
        return Err(
            Error::Forbidden(format!("a {mine} may not create a token with role {role}")).into(),
        );
    }
    let expires_at = match input.expires_at.as_deref() {
        None => None,
        Some(t) => {
            let at = Timestamp::parse(t)
                .ok_or_else(|| field("expires_at", "must be an RFC 3339 time".into()))?;
            if at <= Timestamp::now() {
                return Err(field("expires_at", "must be in the future".into()));
            }
            Some(at)
        }
    };
    let secret = generate_token();
    let created = state
        .registry
        .store()
        .insert_token(NewToken {
            name: input.name,
            org: caller.0.org.clone(),
            project,
            role,
            hash: hash_token(&secret),
            expires_at,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: secret,
            details: TokenView::from(&created),
        }),
    ))
}

/// List API tokens
///
/// The organization's tokens, never their secrets.
#[utoipa::path(
    get,
    path = "/admin/tokens",
    tag = "admin",
    operation_id = "list_tokens",
    responses((status = 200, description = "The tokens", body = Vec<TokenView>)),
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: OrgCaller,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    admin_role(&caller)?;
    let tokens = state.registry.store().org_tokens(&caller.0.org).await?;
    Ok(Json(tokens.iter().map(TokenView::from).collect()))
}

/// Revoke an API token
///
/// The token stops working at once, on every replica.
#[utoipa::path(
    delete,
    path = "/admin/tokens/{name}",
    tag = "admin",
    operation_id = "revoke_token",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No active token of that name in this organization", body = ErrorBody),
    ),
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: OrgCaller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_role(&caller)?;
    if state
        .registry
        .store()
        .revoke_org_token(&caller.0.org, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound(format!(
            "no active token named '{name}' in this organization"
        ))
        .into())
    }
}
