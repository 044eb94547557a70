//! API token administration over HTTP (`/admin/tokens`): an organization's owners and admins
//! for all projects create, list and revoke its tokens. It holds only the `TokenStore`.

use std::sync::Arc;

use crate::{
    auth::{Action, Identity, ProjectGrant, Role, generate_token, hash_token},
    error::{Error, Result},
    store::{ApiToken, NewToken, TokenStore},
    tenant::OrgId,
    timestamp::Timestamp,
};

/// May manage the organization's tokens: made only by `Identity::token_admin`, which checks
/// the role for all projects.
#[derive(Debug)]
pub struct TokenAdmin {
    org: OrgId,
    role: Role,
}

impl Identity {
    pub fn token_admin(&self) -> Result<TokenAdmin> {
        match self.org_role_allowing(Action::ManageTokens) {
            Some(role) => Ok(TokenAdmin {
                org: self.org.clone(),
                role,
            }),
            None => Err(Error::Forbidden(
                "managing tokens needs the owner or admin role for all projects".into(),
            )),
        }
    }
}

/// A token to create, its inputs parsed.
#[derive(Debug)]
pub struct TokenRequest {
    pub name: String,
    pub project: ProjectGrant,
    pub role: Role,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone)]
pub struct TokenService {
    store: Arc<dyn TokenStore>,
}

impl TokenService {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        TokenService { store }
    }

    /// Creates a token in the admin's organization, never with a stronger role than the
    /// admin's own. Returns its secret, the only time it is seen (only its hash is stored),
    /// with the token.
    pub async fn create(
        &self,
        admin: &TokenAdmin,
        request: TokenRequest,
    ) -> Result<(String, ApiToken)> {
        if request.role < admin.role {
            return Err(Error::Forbidden(format!(
                "a {} may not create a token with role {}",
                admin.role, request.role
            )));
        }
        if request.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            return Err(Error::field(
                &["body", "expires_at"],
                "value_error",
                "must be in the future",
            ));
        }
        let secret = generate_token();
        let token = self
            .store
            .insert_token(NewToken {
                name: request.name,
                org: admin.org.clone(),
                project: request.project,
                role: request.role,
                hash: hash_token(&secret),
                expires_at: request.expires_at,
            })
            .await?;
        Ok((secret, token))
    }

    /// The organization's tokens.
    pub async fn list(&self, admin: &TokenAdmin) -> Result<Vec<ApiToken>> {
        self.store.org_tokens(&admin.org).await
    }

    /// Revokes the organization's active token named `name`.
    pub async fn revoke(&self, admin: &TokenAdmin, name: &str) -> Result<()> {
        if self.store.revoke_org_token(&admin.org, name).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "no active token named '{name}' in this organization"
            )))
        }
    }
}
