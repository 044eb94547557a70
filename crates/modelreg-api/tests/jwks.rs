//! Asymmetric JWTs (SPEC §3, issue [identity]): RS256, ES256 and EdDSA against a JWKS URL or
//! OIDC discovery, key rotation at the identity provider, algorithm checks, configurable
//! claims, service accounts acting for an organization with X-Org-Id, and how long fetched
//! keys are trusted (the JWKS response's cache lifetime, its floor, and the grace while the
//! provider is down). The identity provider is a real HTTP server on 127.0.0.1.

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelreg_api::{JwtConfig, ServiceAccount};
use serde_json::{Value, json};

const JWKS: &str = include_str!("fixtures/jwks/jwks.json");

fn key_pem(kid: &str) -> &'static [u8] {
    match kid {
        "rsa-1" => include_bytes!("fixtures/jwks/rsa-1.pem"),
        "rsa-2" => include_bytes!("fixtures/jwks/rsa-2.pem"),
        "ec-1" => include_bytes!("fixtures/jwks/ec-1.pem"),
        "ed-1" => include_bytes!("fixtures/jwks/ed-1.pem"),
        _ => unreachable!(),
    }
}

fn sign(alg: Algorithm, kid: &str, claims: Value) -> String {
    let pem = key_pem(kid);
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => unreachable!(),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The identity provider: per-realm discovery documents and one JWKS whose keys, cache header
/// and availability the test sets, counting how often its JWKS is asked for.
#[derive(Clone)]
struct Idp {
    addr: SocketAddr,
    served: Arc<Mutex<Vec<String>>>,
    fetches: Arc<Mutex<u32>>,
    cache_control: Arc<Mutex<Option<String>>>,
    down: Arc<Mutex<bool>>,
    /// Answers the JWKS only after this long.
    delay: Arc<Mutex<Duration>>,
}

impl Idp {
    async fn start(kids: &[&str]) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = Idp {
            addr: listener.local_addr().unwrap(),
            served: Arc::new(Mutex::new(kids.iter().map(|k| k.to_string()).collect())),
            fetches: Arc::new(Mutex::new(0)),
            cache_control: Arc::new(Mutex::new(None)),
            down: Arc::new(Mutex::new(false)),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
        };
        let app = Router::new()
            .route(
                "/realms/{realm}/.well-known/openid-configuration",
                get(
                    |Path(realm): Path<String>, State(idp): State<Idp>| async move {
                        let addr = idp.addr;
                        Json(json!({"issuer": format!("http://{addr}/realms/{realm}"),
                                "jwks_uri": format!("http://{addr}/realms/{realm}/jwks")}))
                    },
                ),
            )
            .route("/realms/{realm}/jwks", get(Idp::jwks))
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        idp
    }

    async fn jwks(State(idp): State<Idp>) -> Response {
        *idp.fetches.lock().unwrap() += 1;
        let delay = *idp.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if *idp.down.lock().unwrap() {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let all: Value = serde_json::from_str(JWKS).unwrap();
        let want = idp.served.lock().unwrap().clone();
        let keys: Vec<Value> = all["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| want.iter().any(|w| k["kid"] == w.as_str()))
            .cloned()
            .collect();
        let mut res = Json(json!({"keys": keys})).into_response();
        if let Some(cc) = idp.cache_control.lock().unwrap().clone() {
            res.headers_mut()
                .insert(header::CACHE_CONTROL, cc.parse().unwrap());
        }
        res
    }

    fn issuer(&self, realm: &str) -> String {
        format!("http://{}/realms/{realm}", self.addr)
    }

    fn jwks_url(&self) -> String {
        format!("http://{}/realms/x/jwks", self.addr)
    }

    fn fetches(&self) -> u32 {
        *self.fetches.lock().unwrap()
    }

    fn serve(&self, kids: &[&str]) {
        *self.served.lock().unwrap() = kids.iter().map(|k| k.to_string()).collect();
    }

    fn cache_control(&self, value: &str) {
        *self.cache_control.lock().unwrap() = Some(value.to_owned());
    }
}

fn claims(iss: &str, extra: Value) -> Value {
    let mut c = json!({"iss": iss, "sub": "u-1", "preferred_username": "dana",
                       "roles": {"*": "admin"}, "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn list(token: &str) -> Req {
    Req::new(Method::GET, "/assets/models")
        .auth(token)
        .project("p")
}

async fn every_asymmetric_algorithm_through_oidc_discovery(app: TestApp) {
    let idp = Idp::start(&["rsa-1", "ec-1", "ed-1"]).await;
    let app = app.with_jwt(JwtConfig {
        oidc_issuers: vec![idp.issuer("acme"), idp.issuer("beta")],
        ..JwtConfig::default()
    });
    for (alg, kid) in [
        (Algorithm::RS256, "rsa-1"),
        (Algorithm::ES256, "ec-1"),
        (Algorithm::EdDSA, "ed-1"),
    ] {
        let token = sign(alg, kid, claims(&idp.issuer("acme"), json!({})));
        let r = app
            .send(
                Req::new(Method::POST, "/assets/models")
                    .auth(&token)
                    .project("p")
                    .json(model(&format!("by {kid}"))),
            )
            .await
            .expect(201);
        // No org_id: the organization is the Keycloak realm of the issuer.
        assert_eq!(r.json["organization_id"], "acme");
        assert_eq!(r.json["created_by"], "user:dana");
    }
    let beta = sign(
        Algorithm::RS256,
        "rsa-1",
        claims(&idp.issuer("beta"), json!({})),
    );
    let r = app.send(list(&beta)).await.expect(200);
    assert_eq!(
        r.json["pagination"]["total_items"], 0,
        "realm beta is another organization"
    );
    // Keys are cached: one discovery per issuer, not one per request.
    let before = idp.fetches();
    app.send(list(&beta)).await.expect(200);
    assert_eq!(idp.fetches(), before);
}

async fn key_rotation_at_the_provider_just_works_and_bogus_kids_are_rate_limited(app: TestApp) {
    let idp = Idp::start(&["rsa-1"]).await;
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        ..JwtConfig::default()
    });
    let old = sign(
        Algorithm::RS256,
        "rsa-1",
        claims("anyone", json!({"org_id": "acme"})),
    );
    app.send(list(&old)).await.expect(200);
    // The provider rotates: a token signed with the new key refreshes the cache once.
    idp.serve(&["rsa-1", "rsa-2"]);
    let new = sign(
        Algorithm::RS256,
        "rsa-2",
        claims("anyone", json!({"org_id": "acme"})),
    );
    let before = idp.fetches();
    app.send(list(&new)).await.expect(200);
    assert_eq!(idp.fetches(), before + 1);
    // Unknown key ids: at most one refresh per 30 s, however many arrive.
    let mut bogus_header = Header::new(Algorithm::RS256);
    bogus_header.kid = Some("no-such-key".into());
    let bogus = jsonwebtoken::encode(
        &bogus_header,
        &claims("anyone", json!({"org_id": "acme"})),
        &EncodingKey::from_rsa_pem(key_pem("rsa-1")).unwrap(),
    )
    .unwrap();
    let before = idp.fetches();
    for _ in 0..10 {
        let r = app
            .send(list(&bogus))
            .await
            .expect_error(401, "INVALID_TOKEN");
        assert!(r.text.contains("key id"));
    }
    assert!(
        idp.fetches() <= before + 1,
        "{} refreshes",
        idp.fetches() - before
    );
}

async fn algorithm_none_and_confusion_are_refused(app: TestApp) {
    let idp = Idp::start(&["rsa-1", "ec-1"]).await;
    let app = app.with_jwt(JwtConfig {
        oidc_issuers: vec![idp.issuer("acme")],
        ..JwtConfig::default()
    });
    let c = claims(&idp.issuer("acme"), json!({}));
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let rejected = [
        // alg none
        (
            "none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "rsa-1"})),
                b64(&c)
            ),
        ),
        // an RS256 token that names the EC key
        ("alg vs key", {
            let t = sign(Algorithm::RS256, "rsa-1", c.clone());
            let parts: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "RS256", "kid": "ec-1", "typ": "JWT"})),
                parts[1],
                parts[2]
            )
        }),
        // HS256 signed with the RSA public key as the HMAC secret
        ("hs/rs confusion", {
            let jwks: Value = serde_json::from_str(JWKS).unwrap();
            let n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("rsa-1".into());
            jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(n.as_bytes())).unwrap()
        }),
        (
            "expired",
            sign(
                Algorithm::RS256,
                "rsa-1",
                claims(&idp.issuer("acme"), json!({"exp": now() - 120})),
            ),
        ),
        (
            "future",
            sign(
                Algorithm::RS256,
                "rsa-1",
                claims(&idp.issuer("acme"), json!({"nbf": now() + 600})),
            ),
        ),
        (
            "foreign issuer",
            sign(
                Algorithm::RS256,
                "rsa-1",
                claims("https://evil.example/realms/acme", json!({})),
            ),
        ),
        ("tampered", {
            let t = sign(Algorithm::ES256, "ec-1", c.clone());
            let parts: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&claims(
                    &idp.issuer("acme"),
                    json!({"roles": {"*": "owner"}})
                )),
                parts[2]
            )
        }),
    ];
    for (what, token) in rejected {
        let r = app.send(list(&token)).await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.text);
        // The full error shape, WWW-Authenticate included.
        r.expect_error(401, "INVALID_TOKEN");
    }
    // The audience, when configured, is checked.
    let app = app.with_jwt(JwtConfig {
        oidc_issuers: vec![idp.issuer("acme")],
        audience: Some("modelreg".into()),
        ..JwtConfig::default()
    });
    app.send(list(&sign(Algorithm::RS256, "rsa-1", c.clone())))
        .await
        .expect_error(401, "INVALID_TOKEN");
    app.send(list(&sign(
        Algorithm::RS256,
        "rsa-1",
        claims(&idp.issuer("acme"), json!({"aud": "modelreg"})),
    )))
    .await
    .expect(200);
}

async fn claim_names_are_configurable(app: TestApp) {
    let idp = Idp::start(&["ed-1"]).await;
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        roles_claim: "modelreg_roles".into(),
        username_claim: "email".into(),
        ..JwtConfig::default()
    });
    let token = sign(
        Algorithm::EdDSA,
        "ed-1",
        claims(
            "idp",
            json!({
                "org_id": "acme", "roles": null, "modelreg_roles": {"p": ["viewer", "developer"]},
                "email": "erin@example.com"
            }),
        ),
    );
    let r = app
        .send(
            Req::new(Method::POST, "/assets/models")
                .auth(&token)
                .project("p")
                .json(model("Claims")),
        )
        .await
        .expect(201);
    assert_eq!(r.json["created_by"], "user:erin@example.com");
}

async fn service_accounts_act_for_allowed_organizations_only(app: TestApp) {
    let idp = Idp::start(&["rsa-1"]).await;
    let mut accounts = BTreeMap::new();
    accounts.insert(
        "gateway".to_owned(),
        ServiceAccount {
            orgs: vec!["acme".into(), "beta".into()],
            role: Some("developer".into()),
        },
    );
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        service_accounts: accounts,
        ..JwtConfig::default()
    });
    // A client-credentials token: no org_id, no user, no roles.
    let svc = |client: &str| {
        sign(
            Algorithm::RS256,
            "rsa-1",
            json!({"iss": "idp", "client_id": client, "sub": format!("svc-{client}"), "exp": now() + 600}),
        )
    };
    let token = svc("gateway");
    let r = app
        .send(
            Req::new(Method::POST, "/assets/models")
                .auth(&token)
                .project("p")
                .header("x-org-id", "acme")
                .header("x-on-behalf-of", "user:carol")
                .json(model("Via Gateway")),
        )
        .await
        .expect(201);
    assert_eq!(
        (
            r.json["organization_id"].as_str(),
            r.json["created_by"].as_str()
        ),
        (Some("acme"), Some("service:gateway"))
    );
    let h = app
        .send(
            Req::new(Method::GET, "/assets/models/via-gateway/history")
                .auth(&token)
                .project("p")
                .header("x-org-id", "acme"),
        )
        .await
        .expect(200);
    let event = &h.json["data"][0];
    assert_eq!(
        (event["principal"].as_str(), event["on_behalf_of"].as_str()),
        (Some("service:gateway"), Some("user:carol"))
    );
    // An organization it is not allowed, an unknown client, and no X-Org-Id at all.
    app.send(list(&token).header("x-org-id", "gamma"))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    app.send(list(&svc("intruder")).header("x-org-id", "acme"))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    app.send(list(&token))
        .await
        .expect_error(401, "INVALID_TOKEN");
    // A user token for one organization cannot switch to another with the header.
    let user = sign(
        Algorithm::RS256,
        "rsa-1",
        claims("idp", json!({"org_id": "acme"})),
    );
    app.send(list(&user).header("x-org-id", "beta"))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
}

/// A key withdrawn at the identity provider stays trusted only for the max-age of the JWKS
/// that carried it: before then it is accepted from the cache, after it the keys are fetched
/// again and the withdrawn key is refused.
async fn a_withdrawn_key_is_refused_once_its_max_age_has_passed(app: TestApp) {
    let idp = Idp::start(&["rsa-1", "rsa-2"]).await;
    idp.cache_control("max-age=1");
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        // No floor, so that the max-age of one second is what counts.
        jwks_min_lifetime: Duration::ZERO,
        ..JwtConfig::default()
    });
    let c = claims("anyone", json!({"org_id": "acme"}));
    let (kept, withdrawn) = (
        sign(Algorithm::RS256, "rsa-1", c.clone()),
        sign(Algorithm::RS256, "rsa-2", c),
    );
    app.send(list(&withdrawn)).await.expect(200);
    assert_eq!(idp.fetches(), 1);
    idp.serve(&["rsa-1"]);
    // Within the max-age the cached key still verifies, and nothing is fetched.
    app.send(list(&withdrawn)).await.expect(200);
    assert_eq!(idp.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = app
        .send(list(&withdrawn))
        .await
        .expect_error(401, "INVALID_TOKEN");
    assert!(r.text.contains("key id"), "{}", r.text);
    assert_eq!(idp.fetches(), 2, "one refetch once the max-age has passed");
    // From then on: the withdrawn key is refused without hammering the provider, and the kept
    // key still verifies.
    app.send(list(&withdrawn))
        .await
        .expect_error(401, "INVALID_TOKEN");
    app.send(list(&kept)).await.expect(200);
    assert_eq!(idp.fetches(), 2);
    // When the keys expire again, verifications arriving together share one fetch.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let together = futures::future::join_all((0..8).map(|_| app.send(list(&kept)))).await;
    for r in together {
        r.expect(200);
    }
    assert_eq!(idp.fetches(), 3);
}

/// A JWKS response without a cache header gets the default lifetime (minutes), not the floor:
/// keys are not fetched again per request once the floor has passed.
async fn without_a_cache_header_keys_live_the_default_lifetime(app: TestApp) {
    let idp = Idp::start(&["ec-1"]).await;
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        jwks_min_lifetime: Duration::from_millis(200),
        ..JwtConfig::default()
    });
    let token = sign(
        Algorithm::ES256,
        "ec-1",
        claims("anyone", json!({"org_id": "acme"})),
    );
    app.send(list(&token)).await.expect(200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..5 {
        app.send(list(&token)).await.expect(200);
    }
    assert_eq!(idp.fetches(), 1);
}

/// `Cache-Control: no-cache` expires the keys at once, but the floor keeps them for a while,
/// so a provider that forbids caching does not cost a fetch per request.
async fn no_cache_is_held_to_the_floor(app: TestApp) {
    let idp = Idp::start(&["ed-1"]).await;
    idp.cache_control("no-cache, no-store");
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        jwks_min_lifetime: Duration::from_secs(2),
        ..JwtConfig::default()
    });
    let token = sign(
        Algorithm::EdDSA,
        "ed-1",
        claims("anyone", json!({"org_id": "acme"})),
    );
    for _ in 0..5 {
        app.send(list(&token)).await.expect(200);
    }
    assert_eq!(idp.fetches(), 1, "the floor holds the keys");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    idp.serve(&[]);
    app.send(list(&token))
        .await
        .expect_error(401, "INVALID_TOKEN");
    assert_eq!(
        idp.fetches(),
        2,
        "past the floor, the keys are fetched again"
    );
}

/// An identity provider whose keys live 1 s, a router that keeps them at least 500 ms and
/// `grace` past their lifetime, and a token whose key has been fetched once.
async fn keys_of_one_second(app: &TestApp, grace: Duration) -> (Idp, TestApp, String) {
    let idp = Idp::start(&["rsa-1"]).await;
    idp.cache_control("max-age=1");
    let app = app.with_jwt(JwtConfig {
        jwks_url: Some(idp.jwks_url()),
        jwks_min_lifetime: Duration::from_millis(500),
        jwks_stale_grace: grace,
        ..JwtConfig::default()
    });
    let token = sign(
        Algorithm::RS256,
        "rsa-1",
        claims("anyone", json!({"org_id": "acme"})),
    );
    app.send(list(&token)).await.expect(200);
    (idp, app, token)
}

/// When the keys have expired and the provider cannot be reached, the expired keys are still
/// used for the stale grace; after it every token of that provider is refused, until the
/// provider answers again.
async fn an_unreachable_provider_keeps_expired_keys_for_the_grace_then_fails_closed(app: TestApp) {
    let (idp, app, token) = keys_of_one_second(&app, Duration::from_secs(2)).await;
    *idp.down.lock().unwrap() = true;
    // Expired (1 s), within the grace (until 3 s): the refetch fails, the old keys serve, and
    // the next request does not try again before the floor has passed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.send(list(&token)).await.expect(200);
    app.send(list(&token)).await.expect(200);
    assert_eq!(idp.fetches(), 2);
    // Past the grace: fail closed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = app
        .send(list(&token))
        .await
        .expect_error(401, "INVALID_TOKEN");
    assert!(r.text.contains("cannot be fetched"), "{}", r.text);
    assert_eq!(idp.fetches(), 3);
    // The provider is back: once the floor has passed, the keys are fetched and trusted again.
    *idp.down.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.send(list(&token)).await.expect(200);
    assert_eq!(idp.fetches(), 4);
}

/// A provider that hangs instead of refusing does not hold requests for the HTTP client's
/// timeout: a token whose key is held waits at most `STALE_REFRESH_WAIT` for the refresh of
/// expired keys, then is served from them within the grace.
async fn a_hanging_provider_holds_requests_only_briefly(app: TestApp) {
    let (idp, app, token) = keys_of_one_second(&app, JwtConfig::default().jwks_stale_grace).await;
    *idp.delay.lock().unwrap() = Duration::from_secs(8);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = std::time::Instant::now();
    app.send(list(&token)).await.expect(200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );
    // Within the floor after that failure, nobody waits at all.
    let started = std::time::Instant::now();
    app.send(list(&token)).await.expect(200);
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// With one Keycloak realm per organization, a realm's administrators control what its tokens
/// claim. A token from realm `acme` acts in `acme` only: an `org_id` claim naming another
/// organization is refused, not obeyed.
async fn a_realm_speaks_only_for_its_own_organization(app: TestApp) {
    let idp = Idp::start(&["rsa-1"]).await;
    let app = app.with_jwt(JwtConfig {
        oidc_issuers: vec![idp.issuer("acme"), idp.issuer("beta")],
        ..JwtConfig::default()
    });
    // beta has a model; acme's realm must not reach it.
    let beta = sign(
        Algorithm::RS256,
        "rsa-1",
        claims(&idp.issuer("beta"), json!({})),
    );
    app.send(
        Req::new(Method::POST, "/assets/models")
            .auth(&beta)
            .project("p")
            .json(
                json!({"name": "beta-only", "litellm_model": "openai/gpt-4o",
                         "credentials": {"api_key": "k"}}),
            ),
    )
    .await
    .expect(201);
    let forged = sign(
        Algorithm::RS256,
        "rsa-1",
        claims(&idp.issuer("acme"), json!({"org_id": "beta"})),
    );
    let r = app
        .send(list(&forged))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    assert!(!r.text.contains("beta-only"));
    // Nor through a service account: a realm's administrators choose its tokens' client ids
    // and roles too, so a token that names a configured cross-organization client, with owner
    // roles, still cannot use X-Org-Id for another organization.
    let mut accounts = BTreeMap::new();
    accounts.insert(
        "gateway".to_owned(),
        ServiceAccount {
            orgs: vec!["*".into()],
            role: Some("viewer".into()),
        },
    );
    let app = app.with_jwt(JwtConfig {
        oidc_issuers: vec![idp.issuer("acme"), idp.issuer("beta")],
        service_accounts: accounts,
        ..JwtConfig::default()
    });
    let client = sign(
        Algorithm::RS256,
        "rsa-1",
        json!({"iss": idp.issuer("acme"), "client_id": "gateway", "sub": "svc-gateway",
               "roles": {"*": "owner"}, "exp": now() + 600}),
    );
    let r = app
        .send(list(&client).header("x-org-id", "beta"))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    assert!(!r.text.contains("beta-only"));
    // Its own organization, named or not, is fine.
    for extra in [json!({"org_id": "acme"}), json!({})] {
        let own = sign(
            Algorithm::RS256,
            "rsa-1",
            claims(&idp.issuer("acme"), extra),
        );
        let r = app.send(list(&own)).await.expect(200);
        assert_eq!(r.json["pagination"]["total_items"], 0);
    }
}

on_both_backends!(
    a_realm_speaks_only_for_its_own_organization,
    a_hanging_provider_holds_requests_only_briefly,
    every_asymmetric_algorithm_through_oidc_discovery,
    key_rotation_at_the_provider_just_works_and_bogus_kids_are_rate_limited,
    algorithm_none_and_confusion_are_refused,
    claim_names_are_configurable,
    service_accounts_act_for_allowed_organizations_only,
    a_withdrawn_key_is_refused_once_its_max_age_has_passed,
    without_a_cache_header_keys_live_the_default_lifetime,
    no_cache_is_held_to_the_floor,
    an_unreachable_provider_keeps_expired_keys_for_the_grace_then_fails_closed,
);
