//! `/admin/tokens`: owners and admins of an organization (for all projects) manage its API
//! tokens over HTTP.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use modelreg_core::{
    auth::{ProjectGrant, Role},
    store::ApiToken,
    timestamp::Timestamp,
    tokens::TokenRequest,
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
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid token settings", body = ErrorBody),
    ),
)]
pub async fn create_token(
    State(state): State<AppState>,
    caller: OrgCaller,
    body: JsonBody,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let admin = caller.0.token_admin()?;
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
    let expires_at = input
        .expires_at
        .map(|t| {
            Timestamp::parse(&t)
                .ok_or_else(|| field("expires_at", "must be an RFC 3339 time".into()))
        })
        .transpose()?;
    let request = TokenRequest {
        name: input.name,
        project,
        role,
        expires_at,
    };
    let (secret, created) = state.tokens.create(&admin, request).await?;
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
    let tokens = state.tokens.list(&caller.0.token_admin()?).await?;
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
    state.tokens.revoke(&caller.0.token_admin()?, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
