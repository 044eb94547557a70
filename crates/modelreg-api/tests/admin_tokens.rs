//! `/admin/tokens`: API tokens over HTTP, scoped to the caller's organization.

mod common;

use axum::http::Method;
use common::*;
use modelreg_core::auth::Role;
use serde_json::json;

fn admin(token: &str, method: Method, path: &str) -> Req {
    Req::new(method, path).auth(token)
}

/// The token named `name` as `GET /admin/tokens` lists it to `token`'s holder.
async fn listed(app: &TestApp, token: &str, name: &str) -> serde_json::Value {
    let list = app
        .send(admin(token, Method::GET, "/admin/tokens"))
        .await
        .expect(200);
    list.json
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {}", list.text))
        .clone()
}

async fn owners_manage_their_organizations_tokens(app: TestApp) {
    let t = app.tenant().await;
    let name = unique("ci");
    let r = app
        .send(admin(&t.token, Method::POST, "/admin/tokens").json(json!({
            "name": name, "project": "*", "role": "viewer", "expires_at": "2999-01-01T00:00:00Z"
        })))
        .await
        .expect(201);
    let secret = r.json["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mr_"));
    assert_eq!(r.json["role"], "viewer");
    assert_eq!(r.json["expires_at"], "2999-01-01T00:00:00.000000Z");
    // It works, and it is never shown again.
    app.send(
        Req::new(Method::GET, "/assets/models")
            .auth(&secret)
            .project("p"),
    )
    .await
    .expect(200);
    let list = app
        .send(admin(&t.token, Method::GET, "/admin/tokens"))
        .await
        .expect(200);
    assert!(!list.text.contains(&secret[3..]), "a secret in the list");
    let mine = listed(&app, &t.token, &name).await;
    assert!(
        mine["last_used_at"].is_null(),
        "use is recorded in batches, not per request"
    );
    app.last_used.flush().await.unwrap();
    let mine = listed(&app, &t.token, &name).await;
    assert!(mine["last_used_at"].is_string(), "{mine}");

    app.send(admin(
        &t.token,
        Method::DELETE,
        &format!("/admin/tokens/{name}"),
    ))
    .await
    .expect(204);
    app.send(
        Req::new(Method::GET, "/assets/models")
            .auth(&secret)
            .project("p"),
    )
    .await
    .expect_error(401, "INVALID_TOKEN");
    app.send(admin(
        &t.token,
        Method::DELETE,
        &format!("/admin/tokens/{name}"),
    ))
    .await
    .expect_error(404, "RESOURCE_NOT_FOUND");
}

async fn expired_tokens_stop_working(app: TestApp) {
    let t = app.tenant().await;
    let name = unique("short");
    let r = app
        .send(admin(&t.token, Method::POST, "/admin/tokens").json(json!({
            "name": name, "project": "p", "role": "member", "expires_at": "2999-01-01T00:00:00Z"
        })))
        .await
        .expect(201);
    let secret = r.json["token"].as_str().unwrap().to_owned();
    app.send(Req::new(Method::GET, "/assets/models").auth(&secret))
        .await
        .expect(200);
    app.raw_sql(
        &format!(
            "UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE name = '{name}'"
        ),
        &format!("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE name = '{name}'"),
    )
    .await;
    let r = app
        .send(Req::new(Method::GET, "/assets/models").auth(&secret))
        .await
        .expect_error(401, "INVALID_TOKEN");
    assert!(r.text.contains("expired"));
    for bad in [
        json!({"name": "x y", "project": "*", "role": "viewer"}),
        json!({"name": unique("n"), "project": "*", "role": "god"}),
        json!({"name": unique("n"), "project": "a b", "role": "viewer"}),
        json!({"name": unique("n"), "project": "*", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": unique("n"), "project": "*", "role": "viewer", "extra": 1}),
    ] {
        app.send(admin(&t.token, Method::POST, "/admin/tokens").json(bad.clone()))
            .await
            .expect_error(422, "VALIDATION_ERROR");
    }
}

async fn only_owners_and_admins_of_the_organization_and_no_escalation(app: TestApp) {
    let t = app.tenant().await;
    let admin_token = app.token(&t.org, "*", Role::Admin).await;
    // An admin may create tokens, but none stronger than itself.
    app.send(
        admin(&admin_token, Method::POST, "/admin/tokens")
            .json(json!({"name": unique("a"), "project": "*", "role": "admin"})),
    )
    .await
    .expect(201);
    app.send(
        admin(&admin_token, Method::POST, "/admin/tokens")
            .json(json!({"name": unique("o"), "project": "*", "role": "owner"})),
    )
    .await
    .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    for token in [
        app.token(&t.org, "*", Role::Member).await,
        app.token(&t.org, "*", Role::Viewer).await,
        app.token(&t.org, "one", Role::Owner).await,
    ] {
        app.send(admin(&token, Method::GET, "/admin/tokens"))
            .await
            .expect_error(403, "INSUFFICIENT_PERMISSIONS");
        app.send(
            admin(&token, Method::POST, "/admin/tokens")
                .json(json!({"name": unique("x"), "project": "*", "role": "viewer"})),
        )
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
        app.send(admin(&token, Method::DELETE, "/admin/tokens/any"))
            .await
            .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    }
    // Another organization neither sees nor revokes these tokens.
    let name = unique("kept");
    app.send(
        admin(&t.token, Method::POST, "/admin/tokens")
            .json(json!({"name": name, "project": "*", "role": "viewer"})),
    )
    .await
    .expect(201);
    let other = app.tenant().await;
    let theirs = app
        .send(admin(&other.token, Method::GET, "/admin/tokens"))
        .await
        .expect(200);
    assert!(!theirs.text.contains(&name));
    app.send(admin(
        &other.token,
        Method::DELETE,
        &format!("/admin/tokens/{name}"),
    ))
    .await
    .expect_error(404, "RESOURCE_NOT_FOUND");
    let mine = app
        .send(admin(&t.token, Method::GET, "/admin/tokens"))
        .await
        .expect(200);
    assert!(mine.text.contains(&name));
    app.send(Req::new(Method::GET, "/admin/tokens"))
        .await
        .expect_error(401, "INVALID_TOKEN");
}

/// `expires_at` given over the API is what is stored, and the token stops working when it
/// passes. (On SQLite the insert once left it unbound: the row held NULL and an "expiring"
/// token worked for ever. No test saw it: the create response echoes the input, and the
/// expiry test wrote `expires_at` with raw SQL.)
async fn an_expiry_set_over_the_api_is_stored_and_enforced(app: TestApp) {
    let t = app.tenant().await;
    let name = unique("soon");
    let at = modelreg_core::timestamp::Timestamp::now()
        .plus(std::time::Duration::from_secs(2))
        .to_string();
    let r = app
        .send(admin(&t.token, Method::POST, "/admin/tokens").json(json!({
            "name": name, "project": "*", "role": "viewer", "expires_at": at
        })))
        .await
        .expect(201);
    let secret = r.json["token"].as_str().unwrap().to_owned();
    let stored = listed(&app, &t.token, &name).await;
    assert_eq!(stored["expires_at"], r.json["expires_at"], "{stored}");
    assert!(stored["expires_at"].is_string(), "{stored}");
    let req = || {
        Req::new(Method::GET, "/assets/models")
            .auth(&secret)
            .project("p")
    };
    app.send(req()).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = app.send(req()).await.expect_error(401, "INVALID_TOKEN");
    assert!(r.text.contains("expired"), "{}", r.text);
}

/// Token names are unique per organization: a name another organization uses is free here, so
/// a 409 never tells one tenant another's token names.
async fn token_names_are_unique_per_organization(app: TestApp) {
    let a = app.tenant().await;
    let b = app.tenant().await;
    let name = unique("shared-name");
    let body = json!({"name": name, "project": "*", "role": "viewer"});
    app.send(admin(&a.token, Method::POST, "/admin/tokens").json(body.clone()))
        .await
        .expect(201);
    let theirs = app
        .send(admin(&b.token, Method::POST, "/admin/tokens").json(body.clone()))
        .await
        .expect(201);
    assert_eq!(theirs.json["organization_id"], b.org.as_str());
    let r = app
        .send(admin(&a.token, Method::POST, "/admin/tokens").json(body))
        .await
        .expect_error(409, "RESOURCE_ALREADY_EXISTS");
    assert!(!r.text.contains(b.org.as_str()), "{}", r.text);
    // Revoking in one organization leaves the other's token of that name.
    app.send(admin(
        &a.token,
        Method::DELETE,
        &format!("/admin/tokens/{name}"),
    ))
    .await
    .expect(204);
    let secret = theirs.json["token"].as_str().unwrap();
    app.send(
        Req::new(Method::GET, "/assets/models")
            .auth(secret)
            .project("p"),
    )
    .await
    .expect(200);
}

on_both_backends!(
    owners_manage_their_organizations_tokens,
    expired_tokens_stop_working,
    an_expiry_set_over_the_api_is_stored_and_enforced,
    token_names_are_unique_per_organization,
    only_owners_and_admins_of_the_organization_and_no_escalation,
);
