//! `GET /auth/me`: the caller, its grants and the projects it reaches with what it may do in
//! each, for API tokens and JWTs, on both backends.

mod common;

use axum::http::Method;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelreg_core::{auth::Role, tenant::OrgId};
use serde_json::{Value, json};

fn jwt(claims: Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let mut claims = claims;
    claims["exp"] = json!(exp);
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The `can` object: read, verify, write, delete, audit, manage_tokens.
fn can(flags: [bool; 6]) -> Value {
    let [read, verify, write, delete, audit, manage_tokens] = flags;
    json!({"read": read, "verify": verify, "write": write, "delete": delete,
           "audit": audit, "manage_tokens": manage_tokens})
}

const ALL: [bool; 6] = [true; 6];

/// Stores one model in each of `projects` of `org`.
async fn models_in(app: &TestApp, org: &str, projects: &[&str]) {
    for project in projects {
        let t = Tenant {
            org: org.to_owned(),
            project: (*project).to_owned(),
            token: String::new(),
        };
        app.seed_models(&t, &[format!("m-{project}")]).await;
    }
}

fn me(token: &str) -> Req {
    Req::new(Method::GET, "/auth/me").auth(token)
}

async fn an_owner_of_all_projects_sees_its_organizations_projects(app: TestApp) {
    let org = unique("org");
    let other = unique("org");
    models_in(&app, &org, &["beta", "alpha"]).await;
    // Another organization's projects, one of the same name: never shown.
    models_in(&app, &other, &["gamma", "alpha"]).await;
    let name = unique("console");
    let token = app.named_token(&org, &name, "*", Role::Owner).await;

    // No X-Project-ID needed.
    let r = app.send(me(&token)).await.expect(200);
    assert_eq!(
        r.json,
        json!({
            "principal": format!("service:{name}"),
            "organization_id": org,
            "credential": "token",
            "grants": [{"project": "*", "role": "owner"}],
            "projects": [
                {"id": "alpha", "role": "owner", "can": can(ALL)},
                {"id": "beta", "role": "owner", "can": can(ALL)},
            ],
        })
    );

    // A project appears with its first model, created over the API.
    let t = Tenant {
        org: org.clone(),
        project: "aardvark".into(),
        token: token.clone(),
    };
    app.send(t.post("/assets/models", model("First")))
        .await
        .expect(201);
    let r = app.send(me(&token)).await.expect(200);
    let ids: Vec<&str> = r.json["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["aardvark", "alpha", "beta"]);

    // An organization without models: nothing to list, and nothing of the others.
    let empty = app.token(&unique("org"), "*", Role::Admin).await;
    let r = app.send(me(&empty)).await.expect(200);
    assert_eq!(r.json["projects"], json!([]));
    assert_eq!(r.json["grants"], json!([{"project": "*", "role": "admin"}]));
}

async fn a_viewer_of_one_project_sees_that_project_only(app: TestApp) {
    let org = unique("org");
    models_in(&app, &org, &["alpha", "beta"]).await;
    let name = unique("ro");
    let token = app.named_token(&org, &name, "alpha", Role::Viewer).await;
    let r = app.send(me(&token)).await.expect(200);
    assert_eq!(
        r.json,
        json!({
            "principal": format!("service:{name}"),
            "organization_id": org,
            "credential": "token",
            "grants": [{"project": "alpha", "role": "viewer"}],
            "projects": [
                {"id": "alpha", "role": "viewer",
                 "can": can([true, false, false, false, false, false])},
            ],
        })
    );
    // A project bound token is listed whether or not its project has models yet; an operator
    // may verify but not write.
    let token = app.token(&org, "empty", Role::Operator).await;
    let r = app.send(me(&token)).await.expect(200);
    assert_eq!(
        r.json["projects"],
        json!([{"id": "empty", "role": "operator",
                "can": can([true, true, false, false, false, false])}])
    );
    // What `can` says is what the endpoints do.
    let viewer = Tenant {
        org: org.clone(),
        project: "alpha".into(),
        token: app
            .named_token(&org, &unique("ro"), "alpha", Role::Viewer)
            .await,
    };
    app.send(viewer.get("/assets/models")).await.expect(200);
    app.send(viewer.post("/assets/models", model("Nope")))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
}

async fn a_jwt_with_roles_by_project(app: TestApp) {
    let org = unique("org");
    models_in(&app, &org, &["alpha", "beta"]).await;
    models_in(&app, &unique("org"), &["elsewhere"]).await;
    let token = jwt(json!({
        "sub": "u-1", "preferred_username": "alice", "org_id": org,
        "roles": {"*": "viewer", "alpha": ["viewer", "developer"], "fresh": "admin"},
    }));
    let r = app.send(me(&token)).await.expect(200);
    // The organization's own actions (audit log, tokens) need a role for all projects that
    // allows them: a viewer's `*` does not, whatever the role in one project.
    assert_eq!(
        r.json,
        json!({
            "principal": "user:alice",
            "organization_id": org,
            "credential": "jwt",
            "grants": [
                {"project": "*", "role": "viewer"},
                {"project": "alpha", "role": "developer"},
                {"project": "fresh", "role": "admin"},
            ],
            "projects": [
                {"id": "alpha", "role": "developer",
                 "can": can([true, true, true, false, false, false])},
                {"id": "beta", "role": "viewer",
                 "can": can([true, false, false, false, false, false])},
                {"id": "fresh", "role": "admin",
                 "can": can([true, true, true, true, false, false])},
            ],
        })
    );
    let fresh_admin = Req::new(Method::GET, "/assets/audit").auth(&token);
    app.send(fresh_admin)
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");

    // An owner for all projects may read the audit log and manage tokens, and the endpoints
    // agree.
    let owner = jwt(json!({"sub": "bob", "org_id": org, "roles": {"*": "owner"}}));
    let r = app.send(me(&owner)).await.expect(200);
    assert_eq!(r.json["principal"], "user:bob");
    assert_eq!(r.json["projects"][0]["can"], can(ALL));
    app.send(Req::new(Method::GET, "/assets/audit").auth(&owner))
        .await
        .expect(200);
    app.send(Req::new(Method::GET, "/admin/tokens").auth(&owner))
        .await
        .expect(200);

    // A JWT without roles reaches nothing, and says so.
    let none = jwt(json!({"sub": "carol", "org_id": org}));
    let r = app.send(me(&none)).await.expect(200);
    assert_eq!(
        (&r.json["grants"], &r.json["projects"]),
        (&json!([]), &json!([]))
    );
}

async fn without_a_valid_credential_it_is_401(app: TestApp) {
    app.send(Req::new(Method::GET, "/auth/me"))
        .await
        .expect_error(401, "INVALID_TOKEN");
    app.send(me("mr_not-a-token"))
        .await
        .expect_error(401, "INVALID_TOKEN");
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "mallory", "org_id": "x", "roles": {"*": "owner"}, "exp": 4_000_000_000u64}),
        &EncodingKey::from_secret(b"not the server's secret"),
    )
    .unwrap();
    app.send(me(&forged))
        .await
        .expect_error(401, "INVALID_TOKEN");
    // A revoked token stops at once.
    let org = unique("org");
    let name = unique("gone");
    let token = app.named_token(&org, &name, "*", Role::Owner).await;
    app.send(me(&token)).await.expect(200);
    assert!(
        app.store
            .revoke_org_token(&OrgId::parse(&org).unwrap(), &name)
            .await
            .unwrap()
    );
    app.send(me(&token))
        .await
        .expect_error(401, "INVALID_TOKEN");
}

on_both_backends!(
    an_owner_of_all_projects_sees_its_organizations_projects,
    a_viewer_of_one_project_sees_that_project_only,
    a_jwt_with_roles_by_project,
    without_a_valid_credential_it_is_401,
);
