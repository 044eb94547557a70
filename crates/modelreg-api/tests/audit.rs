//! The audit trail over HTTP: every change is recorded with who, when and what, credentials
//! only as changed; a model's history outlives it; the organization's log is for owners and
//! admins of all projects.

mod common;

use common::*;
use modelreg_core::auth::Role;
use modelreg_probe::testing;
use serde_json::{Value, json};

fn actions(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_change_is_recorded_and_history_outlives_the_model(app: TestApp) {
    let addr = testing::start().await;
    let t = app.tenant().await;
    let body = json!({"name": "Audited", "litellm_model": "openai/gpt-4o",
                      "api_base": format!("http://{addr}/openai/v1"),
                      "credentials": {"api_key": "sk-AUDIT-SECRET-1"}});
    let created = app
        .send(
            t.post("/assets/models", body)
                .header("x-request-id", "req-create-1"),
        )
        .await
        .expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    app.send(
        t.put("/assets/models/audited", json!({"rpm": 10}))
            .header("x-on-behalf-of", "user:alice"),
    )
    .await
    .expect(200);
    app.send(t.patch("/assets/models/audited", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    app.send(t.patch("/assets/models/audited", json!({"status": "PENDING"})))
        .await
        .expect(200);
    app.send(t.patch(
        "/assets/models/audited/credentials",
        json!({"api_key": "sk-AUDIT-SECRET-2"}),
    ))
    .await
    .expect(200);
    app.send(t.post("/assets/models/audited/verify", json!({})))
        .await
        .expect(200);
    // Refused and no-op writes record nothing.
    app.send(t.put("/assets/models/audited", json!({"rpm": 0})))
        .await
        .expect(422);
    app.send(t.put("/assets/models/audited", json!({})))
        .await
        .expect(200);
    app.send(t.delete("/assets/models/audited"))
        .await
        .expect(204);

    let h = app
        .send(t.get("/assets/models/audited/history"))
        .await
        .expect(200);
    assert_eq!(
        actions(&h.json),
        [
            "model.delete",
            "model.verify",
            "model.credentials",
            "model.update",
            "model.update",
            "model.update",
            "model.create"
        ]
    );
    assert!(
        !h.text.contains("AUDIT-SECRET"),
        "a secret is in the history"
    );
    let events = h.json["data"].as_array().unwrap();
    let create = &events[6];
    assert_eq!(create["request_id"], "req-create-1");
    assert_eq!(
        create["changes"]["name"],
        json!({"from": null, "to": "Audited"})
    );
    assert_eq!(create["changes"]["credentials"], json!({"changed": true}));
    assert_eq!(create["model_id"], id.as_str());
    assert!(
        create["principal"]
            .as_str()
            .unwrap()
            .starts_with("service:")
    );
    let put = &events[5];
    assert_eq!(put["changes"], json!({"rpm": {"from": null, "to": 10}}));
    assert_eq!(put["on_behalf_of"], "user:alice");
    assert_eq!(
        events[4]["changes"]["status"],
        json!({"from": "PENDING", "to": "DISABLED"})
    );
    assert_eq!(
        events[2]["changes"],
        json!({"credentials": {"changed": true}})
    );
    // The key set by the credentials change is not one the provider accepts.
    assert_eq!(events[1]["changes"]["verified"], false);
    assert_eq!(
        events[1]["changes"]["status"],
        json!({"from": "PENDING", "to": "ERROR"})
    );
    assert_eq!(
        events[0]["changes"]["rpm"],
        json!({"from": 10, "to": null}),
        "what it was before"
    );
    // Chained: each event points at the one before it.
    for pair in events.windows(2) {
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
        assert_eq!(
            pair[0]["seq"].as_i64().unwrap(),
            pair[1]["seq"].as_i64().unwrap() + 1
        );
    }
    // By id too, paginated; another tenant sees nothing of it.
    let p = app
        .send(t.get(&format!("/assets/models/{id}/history?limit=3&page=2")))
        .await
        .expect(200);
    assert_eq!(
        actions(&p.json),
        ["model.update", "model.update", "model.update"]
    );
    assert_eq!(p.json["pagination"]["total_items"], 7);
    let other = app.tenant().await;
    let r = app
        .send(other.get(&format!("/assets/models/{id}/history")))
        .await
        .expect(200);
    assert_eq!(r.json["pagination"]["total_items"], 0);
    app.send(t.get("/assets/models/audited/history?limit=0"))
        .await
        .expect_error(422, "VALIDATION_ERROR");
}

async fn the_organization_log_is_for_owners_and_admins(app: TestApp) {
    let t = app.tenant().await;
    for name in ["a1", "a2"] {
        app.send(t.post("/assets/models", model(name)))
            .await
            .expect(201);
    }
    app.send(
        t.put("/assets/models/a1", json!({"rpm": 1}))
            .header("x-on-behalf-of", "user:bob"),
    )
    .await
    .expect(200);
    let with = |role: Role, project: &'static str| {
        let app = &app;
        let t = &t;
        async move { app.token(&t.org, project, role).await }
    };
    let get = |token: String, q: &'static str| {
        Req::new(axum::http::Method::GET, &format!("/assets/audit{q}")).auth(&token)
    };
    let all = app.send(get(t.token.clone(), "")).await.expect(200);
    assert_eq!(
        actions(&all.json),
        ["model.update", "model.create", "model.create"]
    );
    let admin = with(Role::Admin, "*").await;
    app.send(get(admin.clone(), "")).await.expect(200);
    for (role, project) in [
        (Role::Member, "*"),
        (Role::Viewer, "*"),
        (Role::Owner, "one-project"),
    ] {
        let token = with(role, project).await;
        app.send(get(token, ""))
            .await
            .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    }
    let r = app
        .send(get(admin.clone(), "?action=model.create"))
        .await
        .expect(200);
    assert_eq!(r.json["pagination"]["total_items"], 2);
    let r = app
        .send(get(admin.clone(), "?resource_uri=a1"))
        .await
        .expect(200);
    assert_eq!(actions(&r.json), ["model.update", "model.create"]);
    let r = app
        .send(get(admin.clone(), "?actor=user:bob"))
        .await
        .expect(200);
    assert_eq!(
        actions(&r.json),
        ["model.update"],
        "matched as the user acted for"
    );
    let r = app
        .send(get(admin.clone(), "?since=2100-01-01T00:00:00Z"))
        .await
        .expect(200);
    assert_eq!(r.json["pagination"]["total_items"], 0);
    let r = app
        .send(get(admin.clone(), "?until=2100-01-01T00:00:00Z&limit=1"))
        .await
        .expect(200);
    assert_eq!(
        (
            r.json["pagination"]["total_pages"].as_u64(),
            r.json["data"].as_array().unwrap().len()
        ),
        (Some(3), 1)
    );
    for bad in ["?action=model.hack", "?since=yesterday", "?page=0"] {
        app.send(get(admin.clone(), bad))
            .await
            .expect_error(422, "VALIDATION_ERROR");
    }
    // Another organization's log is its own.
    let other = app.tenant().await;
    let r = app.send(get(other.token.clone(), "")).await.expect(200);
    assert_eq!(r.json["pagination"]["total_items"], 0);
}

on_both_backends!(
    every_change_is_recorded_and_history_outlives_the_model,
    the_organization_log_is_for_owners_and_admins,
);
