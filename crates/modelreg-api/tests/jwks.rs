//! Asymmetric JWTs (SPEC §3, issue [identity]): RS256, ES256 and EdDSA against a JWKS URL or
//! OIDC discovery, key rotation at the identity provider, algorithm checks, configurable
//! claims, and service accounts acting for an organization with X-Org-Id. The identity
//! provider is a real HTTP server on 127.0.0.1.

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::Method,
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

/// What the fake identity provider's handlers share: the key ids it serves, how often its
/// JWKS was fetched, and its address.
type IdpState = (Arc<Mutex<Vec<String>>>, Arc<Mutex<u32>>, SocketAddr);

/// The identity provider: per-realm discovery documents and one JWKS whose keys the test sets.
#[derive(Clone)]
struct Idp {
    addr: SocketAddr,
    served: Arc<Mutex<Vec<String>>>,
    fetches: Arc<Mutex<u32>>,
}

impl Idp {
    async fn start(kids: &[&str]) -> Idp {
        let served = Arc::new(Mutex::new(
            kids.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(Mutex::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = (served.clone(), fetches.clone(), addr);
        let app = Router::new()
            .route(
                "/realms/{realm}/.well-known/openid-configuration",
                get(
                    |Path(realm): Path<String>, State((_, _, addr)): State<IdpState>| async move {
                        Json(json!({"issuer": format!("http://{addr}/realms/{realm}"),
                                "jwks_uri": format!("http://{addr}/realms/{realm}/jwks")}))
                    },
                ),
            )
            .route(
                "/realms/{realm}/jwks",
                get(|State((served, fetches, _)): State<IdpState>| async move {
                    *fetches.lock().unwrap() += 1;
                    let all: Value = serde_json::from_str(JWKS).unwrap();
                    let want = served.lock().unwrap().clone();
                    let keys: Vec<Value> = all["keys"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|k| want.iter().any(|w| k["kid"] == w.as_str()))
                        .cloned()
                        .collect();
                    Json(json!({"keys": keys}))
                }),
            )
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Idp {
            addr,
            served,
            fetches,
        }
    }

    fn issuer(&self, realm: &str) -> String {
        format!("http://{}/realms/{realm}", self.addr)
    }

    fn fetches(&self) -> u32 {
        *self.fetches.lock().unwrap()
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
        jwks_url: Some(format!("http://{}/realms/x/jwks", idp.addr)),
        ..JwtConfig::default()
    });
    let old = sign(
        Algorithm::RS256,
        "rsa-1",
        claims("anyone", json!({"org_id": "acme"})),
    );
    app.send(list(&old)).await.expect(200);
    // The provider rotates: a token signed with the new key refreshes the cache once.
    *idp.served.lock().unwrap() = vec!["rsa-1".into(), "rsa-2".into()];
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
        jwks_url: Some(format!("http://{}/realms/x/jwks", idp.addr)),
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
        jwks_url: Some(format!("http://{}/realms/x/jwks", idp.addr)),
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

on_both_backends!(
    every_asymmetric_algorithm_through_oidc_discovery,
    key_rotation_at_the_provider_just_works_and_bogus_kids_are_rate_limited,
    algorithm_none_and_confusion_are_refused,
    claim_names_are_configurable,
    service_accounts_act_for_allowed_organizations_only,
);
