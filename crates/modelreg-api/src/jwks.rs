//! Public keys for asymmetric JWTs (RS256, ES256, EdDSA and kin), from a JWKS URL or from the
//! OIDC discovery document of each configured issuer.
//!
//! Keys are cached for the lifetime the JWKS response gives them (`Cache-Control`, else
//! `Expires`), bounded by [`lifetime`]: a key the identity provider withdraws stops being
//! trusted once that lifetime has passed, when the next token's verification fetches the set
//! again. A token with an unknown `kid` also triggers one refresh, at most once per
//! `MIN_REFRESH` per source, so a key rotation at the identity provider just works and a flood
//! of bogus `kid`s cannot hammer it.
//!
//! When the keys are past their lifetime and cannot be fetched (the identity provider is down
//! or answers an error), the expired keys are still used for a bounded grace, with a warning,
//! so a short outage of the identity provider is not an outage of this API; after the grace
//! every token of that source is refused until a fetch succeeds (fail closed).

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm},
};
use reqwest::header::{AGE, CACHE_CONTROL, DATE, EXPIRES, HeaderMap};
use tokio::sync::{Mutex, RwLock};

const MIN_REFRESH: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 1024 * 1024;

/// The lifetime of keys whose response states none. Long enough that keys are fetched a few
/// times an hour rather than per request, short enough that a key withdrawn at a provider that
/// sends no cache header stops being trusted within minutes, about the life of a typical
/// access token.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest keys are trusted without asking the identity provider again, whatever its
/// response says (providers commonly answer `max-age` of a day or more): this bounds how long a
/// withdrawn key can stay trusted. It also bounds the floor and the stale grace.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The default least lifetime of fetched keys (`JwtConfig::jwks_min_lifetime`).
pub const DEFAULT_MIN_LIFETIME: Duration = Duration::from_secs(15);

/// The default grace for expired keys while the provider is unreachable
/// (`JwtConfig::jwks_stale_grace`).
pub const DEFAULT_STALE_GRACE: Duration = Duration::from_secs(10 * 60);

/// How long a request waits for the refresh of keys that are past their lifetime when it
/// holds a key for its `kid`. A provider that hangs rather than refusing would otherwise hold
/// every request for the HTTP client's whole timeout once per floor; past this wait the
/// refresh counts as failed and the held keys serve within their grace.
pub const STALE_REFRESH_WAIT: Duration = Duration::from_secs(2);

/// Where a key set comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A JWKS document at this URL.
    Url(String),
    /// The `jwks_uri` of this issuer's `/.well-known/openid-configuration`.
    Issuer(String),
}

type Keys = HashMap<String, (DecodingKey, Algorithm)>;

/// The keys of one source, and until when they are fresh.
struct Cached {
    keys: Keys,
    expires: Instant,
}

/// What decides whether to fetch, kept under the lock that lets one fetch run at a time.
#[derive(Default)]
struct Refresh {
    /// Whether a fetch was ever tried: the first one always happens.
    tried: bool,
    /// When an unknown `kid` last cost a fetch, for `MIN_REFRESH`.
    unknown_kid: Option<Instant>,
    /// After a failed fetch, no other before this.
    retry_after: Option<Instant>,
}

/// The public keys of one identity provider, cached as the module documentation says.
pub struct KeySource {
    pub origin: Origin,
    cached: RwLock<Cached>,
    refresh: Mutex<Refresh>,
    min_lifetime: Duration,
    stale_grace: Duration,
}

impl KeySource {
    /// A source whose keys live at least `min_lifetime` and are used for `stale_grace` past
    /// their lifetime while they cannot be refreshed; both are capped at [`MAX_LIFETIME`].
    pub fn new(origin: Origin, min_lifetime: Duration, stale_grace: Duration) -> KeySource {
        KeySource {
            origin,
            cached: RwLock::new(Cached {
                keys: HashMap::new(),
                expires: Instant::now(),
            }),
            refresh: Mutex::new(Refresh::default()),
            min_lifetime: min_lifetime.min(MAX_LIFETIME),
            stale_grace: stale_grace.min(MAX_LIFETIME),
        }
    }

    /// The key and its algorithm for `kid`, fetching the keys first when they are past their
    /// lifetime or (once per `MIN_REFRESH`) when `kid` is unknown.
    pub async fn key(
        &self,
        http: &reqwest::Client,
        kid: &str,
    ) -> Result<(DecodingKey, Algorithm), String> {
        {
            let c = self.cached.read().await;
            if Instant::now() < c.expires
                && let Some(k) = c.keys.get(kid)
            {
                return Ok(k.clone());
            }
        }
        {
            // Holding this lock while fetching makes concurrent verifications wait for the one
            // fetch and then find its result, rather than each fetching.
            let mut r = self.refresh.lock().await;
            let now = Instant::now();
            let (stale, known) = {
                let c = self.cached.read().await;
                (now >= c.expires, c.keys.contains_key(kid))
            };
            let may_retry = r.retry_after.is_none_or(|t| now >= t);
            let unknown_due = !known
                && r.unknown_kid
                    .is_none_or(|t| now.saturating_duration_since(t) >= MIN_REFRESH);
            if !r.tried || (may_retry && (stale || unknown_due)) {
                let first = !r.tried;
                r.tried = true;
                let fetched = if known && !first {
                    tokio::time::timeout(STALE_REFRESH_WAIT, self.fetch(http))
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!(
                                "no answer within {} s",
                                STALE_REFRESH_WAIT.as_secs()
                            ))
                        })
                } else {
                    self.fetch(http).await
                };
                let found = match fetched {
                    Ok((keys, lifetime)) => {
                        let found = keys.contains_key(kid);
                        *self.cached.write().await = Cached {
                            keys,
                            expires: Instant::now() + lifetime,
                        };
                        r.retry_after = None;
                        found
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            source = ?self.origin,
                            "cannot refresh the JWKS; keeping the keys held, if any, within their grace"
                        );
                        // Retrying no sooner than the floor keeps an outage at the provider
                        // from costing one failed fetch per request here.
                        r.retry_after = Some(Instant::now() + self.min_lifetime);
                        known
                    }
                };
                // A fetch made for a kid it did not hold, or that did not find the kid, spends
                // the unknown-kid budget: asking again at once would only hammer the provider.
                // The first load is free, so a rotation right after it is still seen.
                if !first && (!known || !found) {
                    r.unknown_kid = Some(now);
                }
            }
        }
        let c = self.cached.read().await;
        if Instant::now() >= c.expires + self.stale_grace {
            return Err(if c.keys.is_empty() {
                "the identity provider's keys cannot be fetched".to_owned()
            } else {
                "the identity provider's keys have expired and cannot be fetched again".to_owned()
            });
        }
        c.keys.get(kid).cloned().ok_or_else(|| {
            format!("the token's key id {kid:?} is not among the identity provider's keys")
        })
    }

    /// The keys of this source, and the lifetime their response states.
    async fn fetch(&self, http: &reqwest::Client) -> Result<(Keys, Duration), String> {
        let jwks_uri = match &self.origin {
            Origin::Url(u) => u.clone(),
            Origin::Issuer(issuer) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let (doc, _) = get_json(http, &url).await?;
                doc.get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or("the discovery document has no jwks_uri")?
                    .to_owned()
            }
        };
        let (doc, headers) = get_json(http, &jwks_uri).await?;
        let set: JwkSet =
            serde_json::from_value(doc).map_err(|e| format!("the JWKS is malformed: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        Ok((
            keys,
            lifetime(&headers, SystemTime::now(), self.min_lifetime),
        ))
    }
}

/// How long keys from a JWKS response with these headers are trusted: what the response states
/// ([`stated_lifetime`]), else [`DEFAULT_LIFETIME`], no more than [`MAX_LIFETIME`] and no less
/// than `floor`.
pub fn lifetime(headers: &HeaderMap, now: SystemTime, floor: Duration) -> Duration {
    stated_lifetime(headers, now)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_LIFETIME)
        .max(floor.min(MAX_LIFETIME))
}

/// How long a response may be reused as its headers say (RFC 9111 §4.2), or `None` when they
/// say nothing: zero for `no-store` or `no-cache`, else `max-age`, else `Expires` less `Date`
/// (or `now`), less any `Age`. An invalid value counts as zero, as RFC 9111 §4.2.1 and §5.3
/// advise: when unsure, refetch.
fn stated_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut max_age = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        // A value that is not text is invalid, so it counts as zero like the others.
        .flat_map(|v| v.to_str().unwrap_or("no-cache").split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        // The first max-age counts (RFC 9111 §4.2.1).
        if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
            max_age = Some(value.and_then(delta_seconds).unwrap_or(0));
        }
    }
    let fresh_for = match max_age {
        Some(secs) => Duration::from_secs(secs),
        None => {
            let expires = headers.get(EXPIRES)?;
            let date = |v: &reqwest::header::HeaderValue| {
                v.to_str()
                    .ok()
                    .and_then(|s| httpdate::parse_http_date(s).ok())
            };
            let since = headers.get(DATE).and_then(date).unwrap_or(now);
            date(expires)
                .and_then(|e| e.duration_since(since).ok())
                .unwrap_or(Duration::ZERO)
        }
    };
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(delta_seconds)
        .unwrap_or(0);
    Some(fresh_for.saturating_sub(Duration::from_secs(age)))
}

/// RFC 9111 §1.2.2 delta-seconds: digits only; a value too large to hold is the largest one.
fn delta_seconds(v: &str) -> Option<u64> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().unwrap_or(u64::MAX))
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

/// The JSON document at `url`, and the response's headers.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Result<(serde_json::Value, HeaderMap), String> {
    let mut res = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("{url} answered HTTP {}", res.status().as_u16()));
    }
    let headers = res.headers().clone();
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
    let doc = serde_json::from_slice(&body).map_err(|_| format!("{url} did not answer JSON"))?;
    Ok((doc, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: Duration = DEFAULT_MIN_LIFETIME;

    fn lifetime_of(pairs: &[(&str, &str)]) -> Duration {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        lifetime(&headers, SystemTime::UNIX_EPOCH, FLOOR)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_huge_max_age_is_capped_at_the_maximum() {
        assert_eq!(
            lifetime_of(&[("cache-control", "max-age=31536000")]),
            MAX_LIFETIME
        );
        // Too large for any integer: the largest one, then the cap.
        let overflow = "max-age=99999999999999999999999999";
        assert_eq!(lifetime_of(&[("cache-control", overflow)]), MAX_LIFETIME);
        let far = [
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("expires", "Fri, 01 Jan 2027 00:00:00 GMT"),
        ];
        assert_eq!(lifetime_of(&far), MAX_LIFETIME);
        // The floor and the grace are bounded by it too.
        assert_eq!(
            lifetime(&HeaderMap::new(), SystemTime::now(), secs(86_400)),
            MAX_LIFETIME
        );
        let source = KeySource::new(Origin::Url("x".into()), secs(86_400), secs(86_400));
        assert_eq!(
            (source.min_lifetime, source.stale_grace),
            (MAX_LIFETIME, MAX_LIFETIME)
        );
    }

    #[test]
    fn a_max_age_within_the_bounds_is_honoured_less_its_age() {
        assert_eq!(
            lifetime_of(&[("cache-control", "public, max-age=600")]),
            secs(600)
        );
        assert_eq!(
            lifetime_of(&[("cache-control", "max-age=600"), ("age", "100")]),
            secs(500)
        );
        // Directive names are case-insensitive, a quoted value is read, the first max-age
        // counts, and max-age wins over Expires.
        assert_eq!(
            lifetime_of(&[("cache-control", "Max-Age=\"120\"")]),
            secs(120)
        );
        assert_eq!(
            lifetime_of(&[
                ("cache-control", "max-age=120"),
                ("cache-control", "max-age=900"),
                ("expires", "Thu, 01 Jan 1970 00:30:00 GMT"),
            ]),
            secs(120)
        );
    }

    #[test]
    fn forbidding_caching_or_an_invalid_lifetime_gives_the_floor() {
        for cc in [
            "no-store",
            "no-cache",
            "max-age=0",
            "private, NO-CACHE",
            "max-age=3600, no-cache",
            "max-age=soon",
            "max-age=-5",
            "max-age",
        ] {
            assert_eq!(lifetime_of(&[("cache-control", cc)]), FLOOR, "{cc}");
        }
        assert_eq!(lifetime_of(&[("expires", "0")]), FLOOR);
        assert_eq!(
            lifetime_of(&[("cache-control", "max-age=600"), ("age", "700")]),
            FLOOR
        );
    }

    #[test]
    fn expires_counts_from_the_date_header_else_from_now() {
        assert_eq!(
            lifetime_of(&[
                ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
                ("expires", "Thu, 01 Jan 2026 00:10:00 GMT"),
            ]),
            secs(600)
        );
        // lifetime_of's `now` is the epoch.
        assert_eq!(
            lifetime_of(&[("expires", "Thu, 01 Jan 1970 00:20:00 GMT")]),
            secs(1200)
        );
        assert_eq!(
            lifetime_of(&[
                ("date", "Thu, 01 Jan 2026 00:10:00 GMT"),
                ("expires", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ]),
            FLOOR
        );
    }

    #[test]
    fn without_a_cache_header_the_default_lifetime_applies() {
        assert_eq!(lifetime_of(&[]), DEFAULT_LIFETIME);
        assert_eq!(
            lifetime_of(&[("cache-control", "public")]),
            DEFAULT_LIFETIME
        );
    }
}
