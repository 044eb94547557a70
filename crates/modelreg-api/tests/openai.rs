//! `GET /v1/models`: the project's usable models in the OpenAI list format.

mod common;

use common::*;
use modelreg_core::auth::Role;
use serde_json::json;

async fn lists_usable_models_in_the_openai_format(app: TestApp) {
    let t = app.tenant().await;
    for name in ["zeta", "alpha", "mid", "off"] {
        app.send(t.post("/assets/models", model(name)))
            .await
            .expect(201);
    }
    app.send(t.patch("/assets/models/off", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    app.send(t.patch("/assets/models/mid", json!({"status": "DEPRECATED"})))
        .await
        .expect(200);
    let viewer = Tenant {
        token: app.token(&t.org, "*", Role::Viewer).await,
        ..t.clone()
    };
    let r = app.send(viewer.get("/v1/models")).await.expect(200);
    assert_eq!(r.json["object"], "list");
    let ids: Vec<&str> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["alpha", "mid", "zeta"],
        "DISABLED is left out, DEPRECATED is listed"
    );
    let first = &r.json["data"][0];
    assert_eq!(first["object"], "model");
    assert_eq!(first["owned_by"], "openai");
    assert!(first["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(r.json["has_more"], false);

    // Pagination as OpenAI does it: limit, then after = last_id.
    let p1 = app.send(t.get("/v1/models?limit=2")).await.expect(200);
    assert_eq!(p1.json["has_more"], true);
    assert_eq!(p1.json["last_id"], "mid");
    let p2 = app
        .send(t.get("/v1/models?limit=2&after=mid"))
        .await
        .expect(200);
    assert_eq!(p2.json["data"][0]["id"], "zeta");
    assert_eq!(p2.json["has_more"], false);
    for bad in ["limit=0", "limit=1001", "limit=x"] {
        app.send(t.get(&format!("/v1/models?{bad}")))
            .await
            .expect_error(422, "VALIDATION_ERROR");
    }
    // Another tenant sees none of them; no token is a 401.
    let other = app.tenant().await;
    let r = app.send(other.get("/v1/models")).await.expect(200);
    assert_eq!(r.json["data"], json!([]));
    app.send(Req::new(axum::http::Method::GET, "/v1/models"))
        .await
        .expect_error(401, "INVALID_TOKEN");
}

on_both_backends!(lists_usable_models_in_the_openai_format);
