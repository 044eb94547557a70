//! `GET /ui/config.json`: the console's public settings, unauthenticated, outside the OpenAPI
//! document.

mod common;

use std::sync::Arc;

use axum::http::Method;
use common::*;
use modelreg_api::{Authenticator, ConsoleConfig, JwtConfig, Limits};
use modelreg_core::{
    secrets::{Kek, Keyring},
    service::ModelService,
};
use serde_json::json;

/// A router over `app`'s storage whose console is configured by `console`, accepting HS256
/// JWTs (a secret the endpoint must never show).
fn router_with(app: &TestApp, console: ConsoleConfig) -> TestApp {
    let keyring = Arc::new(Keyring::new(vec![Kek::generate()]).unwrap());
    let models = ModelService::new(app.store.clone(), keyring.clone());
    let auth = Authenticator::new(
        app.store.clone(),
        &JwtConfig {
            hs256_secret: Some(JWT_SECRET.as_bytes().to_vec()),
            oidc_issuers: vec!["https://kc.example.com/realms/acme".into()],
            ..JwtConfig::default()
        },
    );
    let last_used = auth.last_used();
    let services = modelreg_api::Services {
        console,
        ..services(&app.store, models)
    };
    TestApp {
        router: modelreg_api::router(services, auth, Limits::default()),
        store: app.store.clone(),
        backend: Backend::Shared,
        last_used,
        keyring,
    }
}

#[tokio::test]
async fn the_console_learns_its_sign_in_without_a_credential() {
    let app = TestApp::sqlite().await;
    let issuers = [
        "https://kc.example.com/realms/acme".to_owned(),
        "https://login.example.org/".to_owned(),
    ];
    let console = router_with(&app, ConsoleConfig::new(&issuers, Some("modelreg-console")));
    let r = console
        .send(Req::new(Method::GET, "/ui/config.json"))
        .await
        .expect(200);
    assert_eq!(
        r.json,
        json!({
            "oidc": [
                {"issuer": "https://kc.example.com/realms/acme", "client_id": "modelreg-console"},
                {"issuer": "https://login.example.org/", "client_id": "modelreg-console"},
            ],
            "version": env!("CARGO_PKG_VERSION"),
        })
    );
    assert!(content_type_json(&r.headers));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.header("x-request-id").is_some());
    // Nothing but public settings: the JWT secret is never there.
    assert!(!r.text.contains(JWT_SECRET), "{}", r.text);

    // A credential, even a bad one, changes nothing: the endpoint does not read it.
    let with_bad = console
        .send(Req::new(Method::GET, "/ui/config.json").auth("mr_bogus"))
        .await
        .expect(200);
    assert_eq!(with_bad.json, r.json);
    // It is read only.
    console
        .send(Req::new(Method::POST, "/ui/config.json").json(json!({})))
        .await
        .expect(405);
}

#[tokio::test]
async fn without_a_client_id_the_console_offers_no_provider() {
    let app = TestApp::sqlite().await;
    // The harness's router: issuers of its own configuration are not the console's concern.
    let r = app
        .send(Req::new(Method::GET, "/ui/config.json"))
        .await
        .expect(200);
    assert_eq!(
        r.json,
        json!({"oidc": [], "version": env!("CARGO_PKG_VERSION")})
    );
    // Issuers alone (the router accepts their tokens) are not enough either.
    let issuers = ["https://kc.example.com/realms/acme".to_owned()];
    let console = router_with(&app, ConsoleConfig::new(&issuers, None));
    let r = console
        .send(Req::new(Method::GET, "/ui/config.json"))
        .await
        .expect(200);
    assert_eq!(r.json["oidc"], json!([]));
}

/// A file of the console, not an API operation: the OpenAPI document does not list it.
#[test]
fn it_is_not_in_the_openapi_document() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/auth/me"));
    assert!(!paths.keys().any(|p| p.starts_with("/ui/")), "{paths:?}");
}
