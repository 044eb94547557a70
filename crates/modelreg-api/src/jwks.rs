//! Public keys for asymmetric JWTs (RS256, ES256, EdDSA and kin), from a JWKS URL or from the
//! OIDC discovery document of each configured issuer. Keys are cached; a token with an unknown
//! `kid` triggers one refresh, at most once per `MIN_REFRESH` per source, so a key rotation at
//! the identity provider just works and a flood of bogus `kid`s cannot hammer it.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm},
};
use tokio::sync::{Mutex, RwLock};

const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 1024 * 1024;

/// Where a key set comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A JWKS document at this URL.
    Url(String),
    /// The `jwks_uri` of this issuer's `/.well-known/openid-configuration`.
    Issuer(String),
}

pub struct KeySource {
    pub origin: Origin,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// Whether the keys were ever loaded, and when an unknown `kid` last caused a refresh.
    refreshes: Mutex<(bool, Option<Instant>)>,
}

impl KeySource {
    pub fn new(origin: Origin) -> KeySource {
        KeySource {
            origin,
            keys: RwLock::new(HashMap::new()),
            refreshes: Mutex::new((false, None)),
        }
    }

    /// The key and its algorithm for `kid`, refreshing once if it is unknown.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
    ) -> Result<(DecodingKey, Algorithm), String> {
        if let Some(k) = self.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        {
            // The first load always happens; after it, an unknown kid refreshes at most once
            // per MIN_REFRESH.
            let mut r = self.refreshes.lock().await;
            let (loaded, last) = *r;
            let due = !loaded || last.is_none_or(|t| t.elapsed() >= MIN_REFRESH);
            if due {
                *r = (true, if loaded { Some(Instant::now()) } else { last });
                match self.fetch(http).await {
                    Ok(keys) => *self.keys.write().await = keys,
                    Err(e) => tracing::warn!(error = %e, "cannot refresh the JWKS"),
                }
            }
        }
        self.keys.read().await.get(kid).cloned().ok_or_else(|| {
            format!("the token's key id {kid:?} is not among the identity provider's keys")
        })
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
    ) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let jwks_uri = match &self.origin {
            Origin::Url(u) => u.clone(),
            Origin::Issuer(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc: serde_json::Value = get_json(http, &url).await?;
                doc.get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or("the discovery document has no jwks_uri")?
                    .to_owned()
            }
        };
        let set: JwkSet = serde_json::from_value(get_json(http, &jwks_uri).await?)
            .map_err(|e| format!("the JWKS is malformed: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        Ok(keys)
    }
}

/// The algorithm a key is for: its `alg`, else what its type and curve imply. Keys for
/// encryption or symmetric keys are never used.
fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let stated = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
        Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
        Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
        Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
        Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::ES384) => Some(Algorithm::ES384),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => return None,
        None => None,
    };
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    };
    // A stated algorithm must fit the key's type; symmetric ("oct") keys never qualify.
    match (stated, implied) {
        (Some(s), Some(i)) if family(s) == family(i) => Some(s),
        (None, Some(i)) => Some(i),
        _ => None,
    }
}

fn family(a: Algorithm) -> u8 {
    match a {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => 1,
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => 1,
        Algorithm::ES256 | Algorithm::ES384 => 2,
        Algorithm::EdDSA => 3,
        _ => 0,
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let mut res = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{url} answered HTTP {}", res.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("cannot read {url}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url} answered more than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| format!("{url} did not answer JSON"))
}
