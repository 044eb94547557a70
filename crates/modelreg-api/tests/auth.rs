//! Identity, roles and tenancy (SPEC §3).

mod common;

use axum::http::Method;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelreg_core::{
    auth::{ProjectGrant, Role, generate_token, hash_token},
    store::NewToken,
    tenant::OrgId,
};
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jwt(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn every_cell_of_the_role_matrix(app: TestApp) {
    let owner = app.tenant().await;
    // (role, list/get, create/update, delete); verify comes with its endpoints.
    let matrix = [
        (Role::Owner, true, true, true),
        (Role::Admin, true, true, true),
        (Role::Member, true, true, false),
        (Role::Developer, true, true, false),
        (Role::Operator, true, false, false),
        (Role::Viewer, true, false, false),
    ];
    for (role, read, write, delete) in matrix {
        let uri = format!("m-{}", role.as_str());
        app.send(owner.post("/assets/models", json!({
            "resource_uri": uri, "name": uri, "litellm_model": "openai/x", "credentials": {"k": "v"}
        })))
        .await
        .expect(201);
        let token = app.token(&owner.org, "*", role).await;
        let t = Tenant {
            token,
            ..owner.clone()
        };
        let code = |allowed: bool, ok: u16| if allowed { ok } else { 403 };
        let check = |r: Resp, allowed: bool, ok: u16, what: &str| {
            assert_eq!(
                r.status.as_u16(),
                code(allowed, ok),
                "{role} {what}: {}",
                r.text
            );
            if !allowed {
                r.expect_error(403, "INSUFFICIENT_PERMISSIONS");
            }
        };
        check(app.send(t.get("/assets/models")).await, read, 200, "list");
        check(
            app.send(t.get(&format!("/assets/models/{uri}"))).await,
            read,
            200,
            "get",
        );
        check(
            app.send(t.post("/assets/models", model(&format!("new {role}"))))
                .await,
            write,
            201,
            "create",
        );
        check(
            app.send(t.put(&format!("/assets/models/{uri}"), json!({"rpm": 1})))
                .await,
            write,
            200,
            "put",
        );
        check(
            app.send(t.patch(
                &format!("/assets/models/{uri}"),
                json!({"status": "DISABLED"}),
            ))
            .await,
            write,
            200,
            "patch (status)",
        );
        check(
            app.send(t.put(
                &format!("/assets/models/{uri}"),
                json!({"credentials": {"k": "new"}}),
            ))
            .await,
            write,
            200,
            "put (credentials)",
        );
        check(
            app.send(t.delete(&format!("/assets/models/{uri}"))).await,
            delete,
            204,
            "delete",
        );
    }
}

async fn forbidden_is_decided_before_the_body_is_read(app: TestApp) {
    let owner = app.tenant().await;
    let viewer = Tenant {
        token: app.token(&owner.org, "*", Role::Viewer).await,
        ..owner.clone()
    };
    app.send(
        viewer
            .post("/assets/models", json!({}))
            .raw("application/json", "{not json"),
    )
    .await
    .expect_error(403, "INSUFFICIENT_PERMISSIONS");
}

async fn missing_or_bad_credentials_are_401(app: TestApp) {
    let t = app.tenant().await;
    let base = || Req::new(Method::GET, "/assets/models").project(&t.project);
    let cases: Vec<(&str, Req)> = vec![
        ("no header", base()),
        (
            "basic",
            base().header("authorization", "Basic dXNlcjpwdw=="),
        ),
        ("empty bearer", base().header("authorization", "Bearer ")),
        ("unknown api token", base().auth(&generate_token())),
        ("garbage", base().auth("not-a-token")),
        ("bad jwt", base().auth("a.b.c")),
    ];
    for (what, req) in cases {
        let r = app.send(req).await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.text);
        r.expect_error(401, "INVALID_TOKEN");
    }
    // Health and documents need no token.
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        app.send(Req::new(Method::GET, path)).await.expect(200);
    }
}

async fn a_revoked_token_stops_working_at_once(app: TestApp) {
    let token = generate_token();
    let name = unique("revokable");
    let org = unique("org");
    app.store
        .insert_token(NewToken {
            name: name.clone(),
            org: OrgId::parse(&org).unwrap(),
            project: ProjectGrant::All,
            role: Role::Owner,
            hash: hash_token(&token),
            expires_at: None,
        })
        .await
        .unwrap();
    let req = || {
        Req::new(Method::GET, "/assets/models")
            .auth(&token)
            .project("p")
    };
    app.send(req()).await.expect(200);
    let org_id = OrgId::parse(&org).unwrap();
    assert!(app.store.revoke_org_token(&org_id, &name).await.unwrap());
    app.send(req()).await.expect_error(401, "INVALID_TOKEN");
    assert!(
        !app.store.revoke_org_token(&org_id, &name).await.unwrap(),
        "already revoked"
    );
    // Only the hash is stored.
    let listed = app.store.list_tokens().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.name == name && t.revoked_at.is_some())
    );
    let stored = app.stored_text().await;
    assert!(
        stored.contains(&hash_token(&token)),
        "the check must see the token row"
    );
    assert!(!stored.contains(&token[3..]), "the token secret is stored");
}

async fn hs256_jwts(app: TestApp) {
    let org = unique("jwtorg");
    let good = json!({"sub": "u-1", "preferred_username": "alice", "org_id": org,
                      "roles": {"p1": "admin", "p2": "viewer"}, "exp": now() + 600});
    let get = |token: String, project: &str| {
        Req::new(Method::GET, "/assets/models")
            .auth(&token)
            .project(project)
    };
    app.send(get(jwt(good.clone()), "p1")).await.expect(200);
    let r = app
        .send(
            Req::new(Method::POST, "/assets/models")
                .auth(&jwt(good.clone()))
                .project("p1")
                .json(model("From Alice")),
        )
        .await
        .expect(201);
    assert_eq!(r.json["created_by"], "user:alice");
    assert_eq!(r.json["organization_id"], org.as_str());
    // The role is per project: viewer in p2, nothing in p3.
    app.send(
        Req::new(Method::POST, "/assets/models")
            .auth(&jwt(good.clone()))
            .project("p2")
            .json(model("x")),
    )
    .await
    .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    app.send(get(jwt(good.clone()), "p3"))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");

    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let rejected = [
        ("expired", jwt(with(json!({"exp": now() - 60})))),
        ("not yet valid", jwt(with(json!({"nbf": now() + 600})))),
        ("no exp", jwt(with(json!({"exp": null})))),
        (
            "no user",
            jwt(with(json!({"sub": null, "preferred_username": null}))),
        ),
        ("no org", jwt(with(json!({"org_id": null})))),
        ("bad org", jwt(with(json!({"org_id": "a b"})))),
        (
            "wrong key",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &good,
                &EncodingKey::from_secret(b"another secret"),
            )
            .unwrap(),
        ),
        (
            "wrong algorithm",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS384),
                &good,
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            )
            .unwrap(),
        ),
        ("alg none", {
            use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
            let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
            format!("{h}.{p}.")
        }),
    ];
    for (what, token) in rejected {
        let r = app.send(get(token, "p1")).await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.text);
        r.expect_error(401, "INVALID_TOKEN");
    }
}

async fn jwt_organization_from_the_keycloak_realm_and_role_lists(app: TestApp) {
    let realm = unique("realm");
    let token = jwt(
        json!({"sub": "bob", "iss": format!("https://kc.example/realms/{realm}"),
                           "roles": {"*": ["viewer", "developer"]}, "exp": now() + 600}),
    );
    let r = app
        .send(
            Req::new(Method::POST, "/assets/models")
                .auth(&token)
                .project("any")
                .json(model("Realm Model")),
        )
        .await
        .expect(201);
    assert_eq!(r.json["organization_id"], realm.as_str());
    assert_eq!(
        r.json["created_by"], "user:bob",
        "sub when there is no preferred_username"
    );
}

async fn project_header_rules(app: TestApp) {
    let t = app.tenant().await;
    // A token for all projects must name one.
    let r = app
        .send(Req::new(Method::GET, "/assets/models").auth(&t.token))
        .await
        .expect_error(400, "INVALID_REQUEST");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Project-ID")
    );
    for bad in ["a b", "*", &"x".repeat(129), "p/q"] {
        app.send(
            Req::new(Method::GET, "/assets/models")
                .auth(&t.token)
                .project(bad),
        )
        .await
        .expect_error(400, "INVALID_REQUEST");
    }
    // A token bound to one project uses it when the header is absent, and may not leave it.
    let bound = app.token(&t.org, "only", Role::Member).await;
    let r = app
        .send(
            Req::new(Method::POST, "/assets/models")
                .auth(&bound)
                .json(model("Bound")),
        )
        .await
        .expect(201);
    assert_eq!(r.json["project_id"], "only");
    app.send(
        Req::new(Method::GET, "/assets/models")
            .auth(&bound)
            .project("only"),
    )
    .await
    .expect(200);
    app.send(
        Req::new(Method::GET, "/assets/models")
            .auth(&bound)
            .project("other"),
    )
    .await
    .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    // A JWT with two projects must name one; with one it need not.
    let org = unique("o");
    let two = jwt(
        json!({"sub": "c", "org_id": org, "roles": {"a": "admin", "b": "admin"}, "exp": now() + 60}),
    );
    app.send(Req::new(Method::GET, "/assets/models").auth(&two))
        .await
        .expect_error(400, "INVALID_REQUEST");
    let one = jwt(json!({"sub": "c", "org_id": org, "roles": {"a": "admin"}, "exp": now() + 60}));
    app.send(Req::new(Method::GET, "/assets/models").auth(&one))
        .await
        .expect(200);
}

async fn organizations_and_projects_never_see_each_other(app: TestApp) {
    let org_a = unique("a");
    let org_b = unique("b");
    let tenants = [
        (org_a.clone(), "p1"),
        (org_a.clone(), "p2"),
        (org_b.clone(), "p1"),
        (org_b.clone(), "p2"),
    ];
    let mut made = Vec::new();
    for (org, project) in &tenants {
        let t = Tenant {
            org: org.clone(),
            project: project.to_string(),
            token: app.token(org, "*", Role::Owner).await,
        };
        // The same resource_uri in every tenant, plus one of its own.
        let mut b = model("Shared");
        b["tags"] = json!(["common"]);
        let shared = app.send(t.post("/assets/models", b)).await.expect(201).json;
        let own_uri = format!("own-{}-{project}", if *org == org_a { "a" } else { "b" });
        let mut b = model("Own");
        b["resource_uri"] = json!(own_uri);
        let own = app.send(t.post("/assets/models", b)).await.expect(201).json;
        made.push((t, shared, own));
    }
    for (i, (t, shared, _)) in made.iter().enumerate() {
        let list = app
            .send(t.get("/assets/models?tags=common&search=shared"))
            .await
            .expect(200);
        assert_eq!(list.json["pagination"]["total_items"], 1);
        assert_eq!(list.json["data"][0]["id"], shared["id"]);
        let all = app.send(t.get("/assets/models")).await.expect(200);
        assert_eq!(all.json["pagination"]["total_items"], 2);
        let got = app.send(t.get("/assets/models/shared")).await.expect(200);
        assert_eq!(got.json["id"], shared["id"]);
        for (j, (_, other_shared, other_own)) in made.iter().enumerate() {
            if i == j {
                continue;
            }
            for target in [
                other_shared["id"].as_str().unwrap(),
                other_own["id"].as_str().unwrap(),
                other_own["resource_uri"].as_str().unwrap(),
            ] {
                let path = format!("/assets/models/{target}");
                app.send(t.get(&path))
                    .await
                    .expect_error(404, "RESOURCE_NOT_FOUND");
                app.send(t.put(&path, json!({"rpm": 9})))
                    .await
                    .expect_error(404, "RESOURCE_NOT_FOUND");
                app.send(t.patch(&path, json!({"rpm": 9})))
                    .await
                    .expect_error(404, "RESOURCE_NOT_FOUND");
                app.send(t.delete(&path))
                    .await
                    .expect_error(404, "RESOURCE_NOT_FOUND");
            }
        }
    }
    // Nothing was touched by the attempts.
    for (t, shared, own) in &made {
        for m in [shared, own] {
            let uri = m["resource_uri"].as_str().unwrap();
            let now = app
                .send(t.get(&format!("/assets/models/{uri}")))
                .await
                .expect(200);
            assert_eq!(&now.json, m);
        }
    }
}

on_both_backends!(
    every_cell_of_the_role_matrix,
    forbidden_is_decided_before_the_body_is_read,
    missing_or_bad_credentials_are_401,
    a_revoked_token_stops_working_at_once,
    hs256_jwts,
    jwt_organization_from_the_keycloak_realm_and_role_lists,
    project_header_rules,
    organizations_and_projects_never_see_each_other,
);
