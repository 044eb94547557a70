//! Authentication (SPEC §3): API tokens and HS256 JWTs, and the `Caller` extractor that adds
//! the project and the role.

use std::{collections::BTreeMap, sync::Arc};

use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use modelreg_core::{
    Error, Result,
    auth::{Identity, ProjectGrant, Role, hash_token},
    service::Caller,
    store::Store,
    tenant::{OrgId, ProjectId, TenantScope},
};
use serde::Deserialize;

use crate::{AppState, error::ApiError};

/// Settings for HS256 JWTs.
#[derive(Clone, Default)]
pub struct JwtConfig {
    /// The shared secret; JWTs are refused when unset.
    pub hs256_secret: Option<Vec<u8>>,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    hs256: Option<(DecodingKey, Validation)>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    preferred_username: Option<String>,
    org_id: Option<String>,
    iss: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, RoleClaim>,
}

/// A role as an identity provider writes it: one name, or a list (the strongest wins).
#[derive(Deserialize)]
#[serde(untagged)]
enum RoleClaim {
    One(String),
    Many(Vec<String>),
}

impl RoleClaim {
    fn strongest(&self) -> Option<Role> {
        match self {
            RoleClaim::One(r) => Role::parse(r),
            RoleClaim::Many(rs) => rs.iter().filter_map(|r| Role::parse(r)).min(),
        }
    }
}

fn unauthenticated(msg: &str) -> Error {
    Error::Unauthenticated(msg.to_owned())
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, jwt: &JwtConfig) -> Self {
        let hs256 = jwt.hs256_secret.as_ref().map(|secret| {
            let mut v = Validation::new(Algorithm::HS256);
            v.leeway = jwt.leeway_secs;
            v.validate_nbf = true;
            v.set_required_spec_claims(&["exp"]);
            match &jwt.issuer {
                Some(iss) => v.set_issuer(&[iss]),
                None => v.iss = None,
            }
            match &jwt.audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            (DecodingKey::from_secret(secret), v)
        });
        Authenticator { store, hs256 }
    }

    /// The identity behind an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Identity> {
        let header = authorization.ok_or_else(|| {
            unauthenticated("missing Authorization header; send Authorization: Bearer <token>")
        })?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be Bearer <token>"))?;
        if token.starts_with("mr_") {
            return self.api_token(token).await;
        }
        if token.split('.').count() == 3 {
            return self.jwt(token);
        }
        Err(unauthenticated("the bearer token is not valid"))
    }

    async fn api_token(&self, token: &str) -> Result<Identity> {
        let found = self
            .store
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| unauthenticated("the API token is unknown or revoked"))?;
        Ok(Identity {
            org: found.org,
            principal: format!("service:{}", found.name),
            grants: [(found.project, found.role)].into(),
        })
    }

    fn jwt(&self, token: &str) -> Result<Identity> {
        let (key, validation) = self
            .hs256
            .as_ref()
            .ok_or_else(|| unauthenticated("JWTs are not accepted by this server"))?;
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
            unauthenticated(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not accepted",
                ErrorKind::InvalidSignature => "the token's signature is invalid",
                ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (exp)",
                _ => "the token is malformed",
            })
        })?;
        let claims = data.claims;
        let user = claims
            .preferred_username
            .or(claims.sub)
            .filter(|u| !u.is_empty() && u.len() <= 255 && !u.chars().any(char::is_control))
            .ok_or_else(|| {
                unauthenticated("the token names no user (preferred_username or sub)")
            })?;
        let org = match claims.org_id {
            Some(o) => o,
            None => claims
                .iss
                .as_deref()
                .and_then(|iss| iss.trim_end_matches('/').rsplit('/').next())
                .filter(|realm| !realm.is_empty() && !realm.contains(':'))
                .map(str::to_owned)
                .ok_or_else(|| {
                    unauthenticated(
                        "the token names no organization (org_id claim or issuer realm)",
                    )
                })?,
        };
        let org = OrgId::parse(&org).map_err(|m| {
            Error::Unauthenticated(format!("the token's organization is invalid: {m}"))
        })?;
        let grants = claims
            .roles
            .iter()
            .filter_map(|(project, role)| {
                Some((ProjectGrant::parse(project).ok()?, role.strongest()?))
            })
            .collect();
        Ok(Identity {
            org,
            principal: format!("user:{user}"),
            grants,
        })
    }
}

/// `X-On-Behalf-Of`: the user a service acts for, recorded in the audit trail.
pub fn on_behalf_of(parts: &Parts) -> std::result::Result<Option<String>, ApiError> {
    let Some(v) = parts.headers.get("x-on-behalf-of") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 255 && !v.chars().any(char::is_control))
        .ok_or_else(|| {
            ApiError::invalid_request("X-On-Behalf-Of must be 1-255 visible characters")
        })?;
    Ok(Some(v.to_owned()))
}

/// The project header.
pub const X_PROJECT_ID: &str = "x-project-id";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> std::result::Result<Self, Self::Rejection> {
        let authorization = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let identity = state.auth.authenticate(authorization).await?;
        let project = match parts.headers.get(X_PROJECT_ID) {
            Some(v) => {
                let raw = v.to_str().map_err(|_| {
                    ApiError::invalid_request("X-Project-ID must be visible ASCII")
                })?;
                ProjectId::parse(raw.trim())
                    .map_err(|m| ApiError::invalid_request(format!("X-Project-ID: {m}")))?
            }
            None => identity.sole_project().cloned().ok_or_else(|| {
                ApiError::invalid_request(
                    "the X-Project-ID header is required: this credential is not bound to exactly one project",
                )
            })?,
        };
        let role = identity.role_in(&project).ok_or_else(|| {
            ApiError::from(Error::Forbidden(format!(
                "this credential has no role in project '{project}'"
            )))
        })?;
        Ok(Caller {
            scope: TenantScope::new(identity.org, project),
            role,
            principal: identity.principal,
            on_behalf_of: on_behalf_of(parts)?,
            request_id: parts
                .extensions
                .get::<crate::middleware::RequestId>()
                .map(|r| r.0.clone()),
        })
    }
}
