//! `GET /v1/models` and `GET /v1/models/{id}`: the project's usable models in the OpenAI
//! format.

mod common;

use common::*;
use modelreg_core::{
    auth::Role,
    secrets::{Kek, Keyring},
};
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

/// Asserts the ids are `want`, saying how they differ rather than printing a thousand ids.
#[track_caller]
fn assert_ids(list: &serde_json::Value, want: &[String]) {
    let got = ids(list);
    let first_difference = got.iter().zip(want).position(|(g, w)| g != w);
    assert!(
        got == want,
        "{} ids, {} expected; first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

fn ids(list: &serde_json::Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The OpenAI SDKs read one response: Python's `client.models.list()` does not follow
/// `has_more`, so a project of more than one page looked cut off at 1,000 models. Without
/// `limit` every usable model comes in one response; `limit` and `after` still page.
async fn lists_every_usable_model_without_a_limit(app: TestApp) {
    let t = app.tenant().await;
    let uris: Vec<String> = (0..1205).map(|i| format!("m-{i:05}")).collect();
    app.seed_models(&t, &uris).await;
    app.send(t.patch("/assets/models/m-00600", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    let usable: Vec<String> = uris.iter().filter(|u| *u != "m-00600").cloned().collect();

    // Every usable model in one response, in resource_uri order.
    let r = app.send(t.get("/v1/models")).await.expect(200);
    assert_ids(&r.json, &usable);
    assert_eq!(r.json["has_more"], false);
    assert_eq!(r.json["first_id"], "m-00000");
    assert_eq!(r.json["last_id"], "m-01204");

    // Given `after` alone, everything after it.
    let r = app
        .send(t.get("/v1/models?after=m-00199"))
        .await
        .expect(200);
    assert_ids(&r.json, &usable[200..]);
    assert_eq!(r.json["has_more"], false);

    // Given `limit`, pages as before.
    let p1 = app.send(t.get("/v1/models?limit=1000")).await.expect(200);
    assert_ids(&p1.json, &usable[..1000]);
    assert_eq!(p1.json["has_more"], true);
    let last = p1.json["last_id"].as_str().unwrap();
    let p2 = app
        .send(t.get(&format!("/v1/models?limit=1000&after={last}")))
        .await
        .expect(200);
    assert_ids(&p2.json, &usable[1000..]);
    assert_eq!(p2.json["has_more"], false);
}

/// `GET /v1/models/{id}`, OpenAI's retrieve: the model object for a usable model of the
/// caller's project; a 404 in our error shape for anything else.
async fn retrieves_one_usable_model(app: TestApp) {
    let t = app.tenant().await;
    for name in ["alpha", "old", "off"] {
        app.send(t.post("/assets/models", model(name)))
            .await
            .expect(201);
    }
    app.send(t.patch("/assets/models/old", json!({"status": "DEPRECATED"})))
        .await
        .expect(200);
    let off = app
        .send(t.patch("/assets/models/off", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    let viewer = Tenant {
        token: app.token(&t.org, "*", Role::Viewer).await,
        ..t.clone()
    };
    let listed = app.send(viewer.get("/v1/models")).await.expect(200);

    let r = app.send(viewer.get("/v1/models/alpha")).await.expect(200);
    assert_eq!(
        r.json, listed.json["data"][0],
        "the same object the list gives"
    );
    assert_eq!(r.json["id"], "alpha");
    assert_eq!(r.json["object"], "model");
    assert_eq!(r.json["owned_by"], "openai");
    let r = app.send(viewer.get("/v1/models/old")).await.expect(200);
    assert_eq!(r.json["id"], "old", "DEPRECATED is still usable");

    // DISABLED, unknown, not a resource_uri at all, or the model's uuid (an OpenAI id is
    // what the list gives: the resource_uri): no such model.
    let uuid = off.json["id"].as_str().unwrap().to_owned();
    for id in ["off", "nope", "Not_A-Uri", uuid.as_str()] {
        let r = app
            .send(viewer.get(&format!("/v1/models/{id}")))
            .await
            .expect_error(404, "RESOURCE_NOT_FOUND");
        assert_eq!(
            r.json["error"]["message"],
            format!("model '{id}' not found"),
            "{}",
            r.text
        );
    }
    // Another tenant's model is not found; no token is a 401.
    let other = app.tenant().await;
    app.send(other.get("/v1/models/alpha"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    app.send(Req::new(axum::http::Method::GET, "/v1/models/alpha"))
        .await
        .expect_error(401, "INVALID_TOKEN");
}

/// A DISABLED model whose credentials this server cannot open is reported as ERROR by the
/// model endpoints; it is still DISABLED, and still not usable.
async fn a_disabled_model_stays_unusable_when_its_credentials_do_not_open(app: TestApp) {
    let t = app.tenant().await;
    let writer = app.with_keyring(Keyring::new(vec![Kek::generate()]).unwrap());
    writer
        .send(t.post("/assets/models", model("sealed-elsewhere")))
        .await
        .expect(201);
    writer
        .send(t.patch(
            "/assets/models/sealed-elsewhere",
            json!({"status": "DISABLED"}),
        ))
        .await
        .expect(200);
    let seen = app
        .send(t.get("/assets/models/sealed-elsewhere"))
        .await
        .expect(200);
    assert_eq!(seen.json["status"], "ERROR");
    let r = app
        .send(t.get("/v1/models/sealed-elsewhere"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(
        r.json["error"]["message"],
        "model 'sealed-elsewhere' not found"
    );
    let r = app.send(t.get("/v1/models")).await.expect(200);
    assert_eq!(r.json["data"], json!([]));
}

/// The body is kept between requests (`/v1/models` is a list like any other), and every
/// write that changes it is seen by the next request: a create, a disable, a rename of its
/// re-enable, a delete.
async fn the_kept_list_follows_every_write(app: TestApp) {
    let t = app.tenant().await;
    let ids = |r: &Resp| -> Vec<String> {
        r.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for name in ["a", "b"] {
        app.send(t.post("/assets/models", model(name)))
            .await
            .expect(201);
    }
    let first = app.send(t.get("/v1/models")).await.expect(200);
    assert_eq!(ids(&first), ["a", "b"]);
    let again = app.send(t.get("/v1/models")).await.expect(200);
    assert_eq!(again.json, first.json);
    app.send(t.post("/assets/models", model("c")))
        .await
        .expect(201);
    assert_eq!(
        ids(&app.send(t.get("/v1/models")).await.expect(200)),
        ["a", "b", "c"]
    );
    app.send(t.patch("/assets/models/b", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    assert_eq!(
        ids(&app.send(t.get("/v1/models")).await.expect(200)),
        ["a", "c"]
    );
    app.send(t.patch("/assets/models/b", json!({"status": "ACTIVE"})))
        .await
        .expect(200);
    assert_eq!(
        ids(&app.send(t.get("/v1/models")).await.expect(200)),
        ["a", "b", "c"]
    );
    app.send(t.delete("/assets/models/a")).await.expect(204);
    assert_eq!(
        ids(&app.send(t.get("/v1/models")).await.expect(200)),
        ["b", "c"]
    );
    // A page of one and the whole list are kept apart.
    let one = app.send(t.get("/v1/models?limit=1")).await.expect(200);
    assert_eq!(ids(&one), ["b"]);
    assert_eq!(
        ids(&app.send(t.get("/v1/models")).await.expect(200)),
        ["b", "c"]
    );
}

/// The LiteLLM export is kept between requests as `/v1/models` is, and follows every write.
async fn the_kept_export_follows_every_write(app: TestApp) {
    let t = app.tenant().await;
    let names = |r: &Resp| -> Vec<String> {
        r.json["config"]["model_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model_name"].as_str().unwrap().to_owned())
            .collect()
    };
    app.send(t.post("/assets/models", model("a")))
        .await
        .expect(201);
    let first = app.send(t.get("/assets/exports/litellm")).await.expect(200);
    assert_eq!(names(&first), ["a"]);
    let again = app.send(t.get("/assets/exports/litellm")).await.expect(200);
    assert_eq!(again.json, first.json);
    app.send(t.post("/assets/models", model("b")))
        .await
        .expect(201);
    let r = app.send(t.get("/assets/exports/litellm")).await.expect(200);
    assert_eq!(names(&r), ["a", "b"]);
    app.send(t.patch("/assets/models/a", json!({"status": "DISABLED"})))
        .await
        .expect(200);
    let r = app.send(t.get("/assets/exports/litellm")).await.expect(200);
    assert_eq!(
        (names(&r), r.json["skipped_disabled"].clone()),
        (vec!["b".to_owned()], json!(1))
    );
    // The export's query and `/v1/models`' are kept apart.
    let v1 = app.send(t.get("/v1/models")).await.expect(200);
    assert_eq!(v1.json["object"], "list");
}

on_both_backends!(
    the_kept_export_follows_every_write,
    the_kept_list_follows_every_write,
    lists_usable_models_in_the_openai_format,
    lists_every_usable_model_without_a_limit,
    retrieves_one_usable_model,
    a_disabled_model_stays_unusable_when_its_credentials_do_not_open,
);
