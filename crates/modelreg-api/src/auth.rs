//! Authentication (SPEC §3): API tokens and HS256 JWTs, and the `Caller` extractor that adds
//! the project and the role.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use crate::{
    AppState,
    error::ApiError,
    jwks::{self, KeySource, Origin},
};
use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use modelreg_core::{
    Error, Result,
    auth::{Credential, Identity, ProjectGrant, Role, hash_token},
    service::Caller,
    store::{FoundToken, TokenStore},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use serde_json::{Map, Value};

/// A service account: the organizations its client may act for (`*` for any), and the role it
/// has in all their projects when its token carries no roles.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ServiceAccount {
    pub orgs: Vec<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// How JWTs are accepted.
#[derive(Clone)]
pub struct JwtConfig {
    /// HS256 tokens signed with this secret; refused when unset.
    pub hs256_secret: Option<Vec<u8>>,
    /// When set, `iss` of HS256 and JWKS-URL tokens must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Asymmetric tokens verified against this JWKS.
    pub jwks_url: Option<String>,
    /// Asymmetric tokens from these issuers, verified against each one's discovered JWKS;
    /// `iss` must be one of them.
    pub oidc_issuers: Vec<String>,
    /// The claim holding roles by project.
    pub roles_claim: String,
    /// The claim naming the user (`sub` when absent).
    pub username_claim: String,
    /// Clients that may act for organizations named by `X-Org-Id`.
    pub service_accounts: BTreeMap<String, ServiceAccount>,
    /// The least time keys fetched from a JWKS are trusted before the next verification fetches
    /// them again, whatever the response says (`no-cache`, `max-age=0`), and the least time
    /// between two fetches after one failed: it keeps an identity provider that forbids
    /// caching from costing a fetch per request. 15 seconds; capped at one hour. Keys live for
    /// the response's `Cache-Control: max-age` (or `Expires`), 5 minutes when it states none,
    /// one hour at most.
    pub jwks_min_lifetime: Duration,
    /// How long keys past their lifetime are still used while the identity provider cannot be
    /// reached (with a warning logged); after it, that provider's tokens are refused until a
    /// fetch succeeds. 10 minutes; capped at one hour.
    pub jwks_stale_grace: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            hs256_secret: None,
            issuer: None,
            audience: None,
            leeway_secs: 30,
            jwks_url: None,
            oidc_issuers: Vec::new(),
            roles_claim: "roles".into(),
            username_claim: "preferred_username".into(),
            service_accounts: BTreeMap::new(),
            jwks_min_lifetime: jwks::DEFAULT_MIN_LIFETIME,
            jwks_stale_grace: jwks::DEFAULT_STALE_GRACE,
        }
    }
}

impl JwtConfig {
    /// Whether any kind of JWT is accepted.
    pub fn accepts_jwts(&self) -> bool {
        self.hs256_secret.is_some() || self.jwks_url.is_some() || !self.oidc_issuers.is_empty()
    }
}

/// When API tokens were last used, kept in memory and written in batches, so a request costs
/// no database write.
#[derive(Clone)]
pub struct LastUsed {
    store: Arc<dyn TokenStore>,
    pending: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Timestamp>>>,
}

impl LastUsed {
    fn note(&self, id: uuid::Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, Timestamp::now());
        }
    }

    /// Writes what was noted since the last flush.
    pub async fn flush(&self) -> Result<()> {
        let batch: Vec<(uuid::Uuid, Timestamp)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return Ok(()),
        };
        if batch.is_empty() {
            return Ok(());
        }
        self.store.touch_tokens(&batch).await
    }
}

pub struct Authenticator {
    store: Arc<dyn TokenStore>,
    last_used: LastUsed,
    config: JwtConfig,
    hs256: Option<DecodingKey>,
    sources: Vec<KeySource>,
    http: reqwest::Client,
}

fn unauthenticated(msg: &str) -> Error {
    Error::Unauthenticated(msg.to_owned())
}

impl Authenticator {
    pub fn new(store: Arc<dyn TokenStore>, config: &JwtConfig) -> Self {
        let source = |o| KeySource::new(o, config.jwks_min_lifetime, config.jwks_stale_grace);
        let mut sources: Vec<KeySource> = config
            .oidc_issuers
            .iter()
            .map(|i| source(Origin::Issuer(i.clone())))
            .collect();
        if let Some(url) = &config.jwks_url {
            sources.push(source(Origin::Url(url.clone())));
        }
        let http = modelreg_probe::tls_config()
            .ok()
            .and_then(|tls| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .ok()
            })
            .unwrap_or_default();
        Authenticator {
            last_used: LastUsed {
                store: store.clone(),
                pending: Default::default(),
            },
            store,
            hs256: config
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s)),
            config: config.clone(),
            sources,
            http,
        }
    }

    /// The batched record of token use; flush it periodically.
    pub fn last_used(&self) -> LastUsed {
        self.last_used.clone()
    }

    fn validation(&self, alg: Algorithm, issuer: Option<&str>) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.config.leeway_secs;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        match issuer {
            Some(iss) => v.set_issuer(&[iss]),
            None => v.iss = None,
        }
        match &self.config.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                // jsonwebtoken checks `aud` only when present: require it.
                v.set_required_spec_claims(&["exp", "aud"]);
            }
            None => v.validate_aud = false,
        }
        v
    }

    /// The identity behind an `Authorization` header value; `org_header` is `X-Org-Id`.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        org_header: Option<&str>,
    ) -> Result<Identity> {
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
            let (claims, realm) = self.verify_jwt(token).await?;
            return self.identity(claims, realm.as_deref(), org_header);
        }
        Err(unauthenticated("the bearer token is not valid"))
    }

    async fn api_token(&self, token: &str) -> Result<Identity> {
        let FoundToken {
            token: found,
            project_generation,
        } = self
            .store
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| unauthenticated("the API token is unknown or revoked"))?;
        if found.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            return Err(unauthenticated("the API token has expired"));
        }
        self.last_used.note(found.id);
        let project_generation = match (&found.project, project_generation) {
            (ProjectGrant::One(p), Some(g)) => Some((p.clone(), g)),
            _ => None,
        };
        Ok(Identity {
            org: found.org,
            principal: format!("service:{}", found.name),
            credential: Credential::ApiToken,
            grants: [(found.project, found.role)].into(),
            project_generation,
        })
    }

    /// Checks a JWT's signature and standard claims and returns its claims. HMAC is only ever
    /// used with the configured secret, and asymmetric keys only with their own algorithm, so
    /// `none` and algorithm confusion are refused.
    ///
    /// With the claims comes the organization the key's source speaks for, when it speaks for
    /// one alone: a configured OIDC issuer that is a Keycloak realm (`…/realms/<name>`).
    async fn verify_jwt(&self, token: &str) -> Result<(Map<String, Value>, Option<String>)> {
        let (header, iss) = unverified_parts(token)?;
        let mut realm = None;
        let (key, validation) = match header.alg {
            Algorithm::HS256 => {
                let key = self.hs256.clone().ok_or_else(|| {
                    unauthenticated("HS256 tokens are not accepted by this server")
                })?;
                (
                    key,
                    self.validation(Algorithm::HS256, self.config.issuer.as_deref()),
                )
            }
            Algorithm::HS384 | Algorithm::HS512 => {
                return Err(unauthenticated("the token's algorithm is not accepted"));
            }
            alg => {
                // `iss` only picks the key source; the signature and `iss` are validated below.
                let by_issuer = self.sources.iter().find(|s| {
                    matches!(&s.origin, Origin::Issuer(i) if Some(i.trim_end_matches('/')) == iss.as_deref().map(|x| x.trim_end_matches('/')))
                });
                let source = by_issuer
                    .or_else(|| {
                        self.sources
                            .iter()
                            .find(|s| matches!(s.origin, Origin::Url(_)))
                    })
                    .ok_or_else(|| {
                        unauthenticated(if self.sources.is_empty() {
                            "tokens signed with public keys are not accepted by this server"
                        } else {
                            "the token's issuer is not accepted"
                        })
                    })?;
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| unauthenticated("the token names no key (kid)"))?;
                let (key, key_alg) = source
                    .key(&self.http, kid)
                    .await
                    .map_err(Error::Unauthenticated)?;
                if key_alg != alg {
                    return Err(unauthenticated(
                        "the token's algorithm does not match its key's",
                    ));
                }
                let issuer = match &source.origin {
                    Origin::Issuer(i) => {
                        realm = keycloak_realm(i);
                        iss.filter(|x| x.trim_end_matches('/') == i.trim_end_matches('/'))
                    }
                    Origin::Url(_) => self.config.issuer.clone(),
                };
                let v = self.validation(alg, issuer.as_deref());
                (key, v)
            }
        };
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
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
        Ok((data.claims, realm))
    }

    /// The caller a verified token describes.
    /// `realm` is the organization the token's issuer is bound to, if any: a token from one
    /// organization's realm acts in that organization only, whatever its `org_id` claim says
    /// (a realm's administrators can put any claim in its tokens).
    fn identity(
        &self,
        claims: Map<String, Value>,
        realm: Option<&str>,
        org_header: Option<&str>,
    ) -> Result<Identity> {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty() && u.len() <= 255 && !u.chars().any(char::is_control))
                .map(str::to_owned)
        };
        let mut grants: BTreeMap<ProjectGrant, Role> = claims
            .get(&self.config.roles_claim)
            .and_then(Value::as_object)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|(project, role)| {
                        Some((ProjectGrant::parse(project).ok()?, strongest(role)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Neither a claim nor a header takes a realm's token to another organization: not
        // `org_id`, and not `X-Org-Id` through a service account of the same client name
        // (the realm's administrators choose the client ids and roles in its tokens too).
        if let Some(realm) = realm
            && [text("org_id").as_deref(), org_header]
                .into_iter()
                .flatten()
                .any(|named| named != realm)
        {
            return Err(Error::Forbidden(format!(
                "this token was issued by the realm of organization {realm}, which may not act \
                 for another organization"
            )));
        }
        let (org, principal) = match (text("org_id"), org_header) {
            (Some(org), header) => {
                if header.is_some_and(|h| h != org) {
                    return Err(Error::Forbidden(format!(
                        "this token acts for organization {org}, not the one X-Org-Id names"
                    )));
                }
                let user = text(&self.config.username_claim)
                    .or_else(|| text("sub"))
                    .ok_or_else(|| {
                        unauthenticated("the token names no user (preferred_username or sub)")
                    })?;
                (org, format!("user:{user}"))
            }
            (None, Some(requested)) => {
                // A service account acting for the organization it names.
                let client = text("client_id")
                    .or_else(|| text("azp"))
                    .or_else(|| text("sub"))
                    .ok_or_else(|| {
                        unauthenticated("the token names no client (client_id, azp or sub)")
                    })?;
                let account = self.config.service_accounts.get(&client).ok_or_else(|| {
                    Error::Forbidden(format!(
                        "service account {client:?} may not act for other organizations"
                    ))
                })?;
                if !account.orgs.iter().any(|o| o == "*" || o == requested) {
                    return Err(Error::Forbidden(format!(
                        "service account {client:?} may not act for organization {requested:?}"
                    )));
                }
                if grants.is_empty()
                    && let Some(role) = account.role.as_deref().and_then(Role::parse)
                {
                    grants.insert(ProjectGrant::All, role);
                }
                (requested.to_owned(), format!("service:{client}"))
            }
            (None, None) => {
                // The Keycloak realm: the last path segment of an issuer URL.
                let realm = text("iss")
                    .and_then(|iss| url::Url::parse(&iss).ok())
                    .and_then(|u| {
                        u.path_segments()?
                            .rfind(|seg| !seg.is_empty())
                            .map(str::to_owned)
                    })
                    .ok_or_else(|| {
                        unauthenticated(
                            "the token names no organization: an org_id claim, an issuer realm, or X-Org-Id for a service account",
                        )
                    })?;
                let user = text(&self.config.username_claim)
                    .or_else(|| text("sub"))
                    .ok_or_else(|| {
                        unauthenticated("the token names no user (preferred_username or sub)")
                    })?;
                (realm, format!("user:{user}"))
            }
        };
        let org = OrgId::parse(&org).map_err(|m| {
            Error::Unauthenticated(format!("the token's organization is invalid: {m}"))
        })?;
        Ok(Identity {
            org,
            principal,
            credential: Credential::Jwt,
            grants,
            project_generation: None,
        })
    }
}

/// The realm a Keycloak issuer URL names (`https://kc.example.com/realms/acme` → `acme`): an
/// issuer that is one organization's own.
fn keycloak_realm(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer).ok()?;
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "realms", realm] => Some((*realm).to_owned()),
        _ => None,
    }
}

/// The `iss` claim of a token, read without verification.
/// What is read from a JWT before its signature is checked: its header (algorithm and key
/// id), and its `iss`, which only picks where the key comes from. Both come from the client,
/// so this is a parser of untrusted input (fuzzed in `fuzz/`).
pub fn unverified_parts(token: &str) -> Result<(jsonwebtoken::Header, Option<String>)> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| unauthenticated("the token is malformed or its algorithm is not accepted"))?;
    Ok((header, unverified_issuer(token)))
}

fn unverified_issuer(token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss").and_then(Value::as_str).map(str::to_owned)
}

/// A role as an identity provider writes it: one name, or a list (the strongest wins).
fn strongest(v: &Value) -> Option<Role> {
    match v {
        Value::String(r) => Role::parse(r),
        Value::Array(rs) => rs
            .iter()
            .filter_map(|r| r.as_str().and_then(Role::parse))
            .min(),
        _ => None,
    }
}

/// The identity behind a request's `Authorization` (and `X-Org-Id`) headers.
pub(crate) async fn identify(
    parts: &Parts,
    state: &AppState,
) -> std::result::Result<Identity, ApiError> {
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let org_header = parts.headers.get("x-org-id").and_then(|v| v.to_str().ok());
    let identity = state.auth.authenticate(authorization, org_header).await?;
    state.limiter.check(format!(
        "{}\u{0}{}",
        identity.org.as_str(),
        identity.principal
    ))?;
    if let Some(log) = parts.extensions.get::<crate::middleware::RequestLog>() {
        log.identified(&identity.principal, identity.org.as_str());
    }
    Ok(identity)
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
        let identity = identify(parts, state).await?;
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
        if let Some(log) = parts.extensions.get::<crate::middleware::RequestLog>() {
            log.project(project.as_str());
        }
        let role = identity.role_in(&project).ok_or_else(|| {
            ApiError::from(Error::Forbidden(format!(
                "this credential has no role in project '{project}'"
            )))
        })?;
        let generation = identity
            .project_generation
            .filter(|(p, _)| *p == project)
            .map(|(_, g)| g);
        Ok(Caller {
            generation,
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
