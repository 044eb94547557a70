//! `GET /auth/me`: who the caller is and what it may do in each project it reaches, so that a
//! client (the console) shows only what the server would allow. It decides nothing: every
//! other endpoint checks the role again.

use axum::{Json, extract::State};
use modelreg_core::auth::{Action, Credential, Identity, Role};
use serde::{Serialize, Serializer};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, Type},
};

use crate::{AppState, audit::OrgCaller, error::ApiError};

/// The caller of `GET /auth/me`.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// As recorded in `created_by`: `user:<name>` or `service:<name>`.
    #[schema(example = "service:bootstrap")]
    pub principal: String,
    #[schema(example = "default")]
    pub organization_id: String,
    /// What the caller authenticated with: an API token or a JWT.
    pub credential: CredentialKind,
    /// The credential's roles as granted: a project id, or `*` for all projects.
    pub grants: Vec<Grant>,
    /// The projects this credential reaches, sorted by id. For a `*` grant: every project of
    /// the organization that holds a model (at most 1,000), and each project a grant names;
    /// otherwise the projects its grants name. A new project appears once it has a model.
    pub projects: Vec<ProjectAccess>,
}

/// The kind of credential.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// An API token (`mr_…`).
    Token,
    /// A JWT (HS256, or from an identity provider).
    Jwt,
}

/// A role granted for a project, or for all of them (`*`).
#[derive(Serialize, ToSchema)]
pub struct Grant {
    #[schema(example = "*")]
    pub project: String,
    pub role: RoleName,
}

/// A project the caller reaches, its role there and what that role allows.
#[derive(Serialize, ToSchema)]
pub struct ProjectAccess {
    #[schema(example = "main")]
    pub id: String,
    /// The role that applies: a grant for this project beats the `*` grant.
    pub role: RoleName,
    pub can: Permissions,
}

/// What the caller may do, as the server decides it (`Role::allows`).
#[derive(Serialize, ToSchema)]
pub struct Permissions {
    /// List, get, history, export, `/v1/models`.
    pub read: bool,
    /// Both verify endpoints.
    pub verify: bool,
    /// Create and update models, their credentials and status.
    pub write: bool,
    pub delete: bool,
    /// Read the organization's audit log (`/assets/audit`). Organization-wide: it needs the
    /// role for all projects (`*`), so it is the same in every project.
    pub audit: bool,
    /// Manage the organization's API tokens (`/admin/tokens`). Organization-wide, like `audit`.
    pub manage_tokens: bool,
}

/// A role's name: `owner`, `admin`, `member`, `developer`, `operator` or `viewer`.
pub struct RoleName(pub Role);

impl Serialize for RoleName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl PartialSchema for RoleName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A role, strongest first in this list"))
            .enum_values(Some(Role::ALL.map(Role::as_str)))
            .into()
    }
}

impl ToSchema for RoleName {}

impl Me {
    fn new(identity: &Identity, projects: Vec<(modelreg_core::tenant::ProjectId, Role)>) -> Me {
        // The organization's own actions are decided as their endpoints decide them.
        let audit = identity.auditor().is_ok();
        let manage_tokens = identity.token_admin().is_ok();
        Me {
            principal: identity.principal.clone(),
            organization_id: identity.org.to_string(),
            credential: match identity.credential {
                Credential::ApiToken => CredentialKind::Token,
                Credential::Jwt => CredentialKind::Jwt,
            },
            grants: identity
                .grants
                .iter()
                .map(|(project, role)| Grant {
                    project: project.to_string(),
                    role: RoleName(*role),
                })
                .collect(),
            projects: projects
                .into_iter()
                .map(|(id, role)| ProjectAccess {
                    id: id.to_string(),
                    role: RoleName(role),
                    can: Permissions {
                        read: role.allows(Action::Read),
                        verify: role.allows(Action::Verify),
                        write: role.allows(Action::Write),
                        delete: role.allows(Action::Delete),
                        audit,
                        manage_tokens,
                    },
                })
                .collect(),
        }
    }
}

/// The caller
///
/// Who the credential acts as, its grants, and the projects it reaches with what it may do in
/// each. Needs no `X-Project-ID`. Reads only the caller's own organization.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    operation_id = "me",
    responses((status = 200, description = "The caller", body = Me)),
)]
#[tracing::instrument(name = "auth.me", skip_all)]
pub async fn me(
    State(state): State<AppState>,
    OrgCaller(identity): OrgCaller,
) -> Result<Json<Me>, ApiError> {
    let projects = state.models.reachable_projects(&identity).await?;
    Ok(Json(Me::new(&identity, projects)))
}
