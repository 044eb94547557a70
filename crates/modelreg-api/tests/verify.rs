//! Both verify endpoints (SPEC §2, §6), against the fake provider: a real HTTP server on
//! 127.0.0.1.

mod common;

use common::*;
use modelreg_core::auth::Role;
use modelreg_probe::testing::{self, GOOD_KEY};
use serde_json::{Value, json};

fn config(name: &str, base: &str, key: &str) -> Value {
    json!({"name": name, "litellm_model": "openai/gpt-4o", "api_base": base,
           "credentials": {"api_key": key}})
}

async fn verifying_a_stored_model_records_the_truth(app: TestApp) {
    let addr = testing::start().await;
    let base = format!("http://{addr}/openai/v1");
    let t = app.tenant().await;
    app.send(t.post("/assets/models", config("Good", &base, GOOD_KEY)))
        .await
        .expect(201);
    let before = app.send(t.get("/assets/models/good")).await.expect(200);
    let r = app
        .send(t.post("/assets/models/good/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], true, "{}", r.text);
    assert_eq!(r.json["status"], "ACTIVE");
    assert!(r.json["latency_ms"].is_u64());
    let after = app.send(t.get("/assets/models/good")).await.expect(200);
    assert_eq!(after.json["status"], "ACTIVE");
    assert!(after.json["last_verified_at"].is_string());
    assert!(
        after.json["status_message"]
            .as_str()
            .unwrap()
            .contains("credentials accepted")
    );
    assert_ne!(after.header("etag"), before.header("etag"));
    // A list shows health beside each model (the console's status badges).
    let list = app.send(t.get("/assets/models")).await.expect(200);
    let row = &list.json["data"][0];
    assert_eq!(row["status"], "ACTIVE");
    assert_eq!(row["status_message"], after.json["status_message"]);
    assert_eq!(row["last_verified_at"], after.json["last_verified_at"]);

    // The key goes bad: ERROR, with the reason; and back.
    app.send(t.put(
        "/assets/models/good",
        json!({"credentials": {"api_key": "revoked"}}),
    ))
    .await
    .expect(200);
    let r = app
        .send(t.post("/assets/models/good/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(
        (r.json["verified"].clone(), r.json["status"].clone()),
        (json!(false), json!("ERROR"))
    );
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("rejected the credentials")
    );
    assert!(!r.text.contains("revoked"));
    let m = app.send(t.get("/assets/models/good")).await.json;
    assert!(m["status_message"].as_str().unwrap().contains("rejected"));

    // People's statuses are never changed by a verification.
    app.send(t.patch(
        "/assets/models/good",
        json!({"status": "DEPRECATED", "status_message": "use v2"}),
    ))
    .await
    .expect(200);
    let r = app
        .send(t.post("/assets/models/good/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(r.json["status"], "DEPRECATED");
    let m = app.send(t.get("/assets/models/good")).await.json;
    assert_eq!(
        (m["status"].as_str(), m["status_message"].as_str()),
        (Some("DEPRECATED"), Some("use v2"))
    );

    app.send(t.post("/assets/models/missing/verify", json!({})))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
}

async fn verify_before_save_stores_nothing(app: TestApp) {
    let addr = testing::start().await;
    let base = format!("http://{addr}/openai/v1");
    let t = app.tenant().await;
    let r = app
        .send(t.post("/assets/models/verify", config("Trial", &base, GOOD_KEY)))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], true, "{}", r.text);
    assert!(r.json.get("status").is_none());
    let r = app
        .send(t.post("/assets/models/verify", config("Trial", &base, "nope")))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], false);
    let r = app
        .send(t.post(
            "/assets/models/verify",
            config("Trial", "http://169.254.169.254/v1", GOOD_KEY),
        ))
        .await
        .expect(200);
    assert!(
        r.json["message"].as_str().unwrap().contains("denied"),
        "{}",
        r.text
    );
    app.send(t.post("/assets/models/verify", json!({"name": "x"})))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    let list = app.send(t.get("/assets/models")).await.expect(200);
    assert_eq!(
        list.json["pagination"]["total_items"], 0,
        "verify stores nothing"
    );
    // "verify" is an endpoint, so it can never be a resource_uri.
    let mut b = config("x", &base, GOOD_KEY);
    b["resource_uri"] = json!("verify");
    app.send(t.post("/assets/models", b))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    let r = app
        .send(t.post("/assets/models", config("Verify", &base, GOOD_KEY)))
        .await
        .expect(201);
    assert_eq!(r.json["resource_uri"], "verify-2");
}

/// References resolve at verification where the operator granted them (here `MR_VERIFY_KEY_*`
/// and `MR_UNSET_*`, in the test router).
async fn references_are_resolved_at_verification(app: TestApp) {
    let addr = testing::start().await;
    let base = format!("http://{addr}/openai/v1");
    let t = app.tenant().await;
    // Set to GOOD_KEY in the test router's environment (tests/common).
    let var = format!("MR_VERIFY_KEY_{}", std::process::id());
    let r = app
        .send(t.post(
            "/assets/models/verify",
            config("Ref", &base, &format!("os.environ/{var}")),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], true, "{}", r.text);
    let unset = format!("MR_UNSET_{}", std::process::id());
    app.send(t.post(
        "/assets/models",
        config("Unset", &base, &format!("os.environ/{unset}")),
    ))
    .await
    .expect(201);
    let r = app
        .send(t.post("/assets/models/unset/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], false);
    // The message names the credential, not the variable: it reads the same whether the
    // variable is unset or not granted (docs/secrets.md).
    let msg = r.json["message"].as_str().unwrap();
    assert!(
        msg.contains("\"api_key\"") && msg.contains("not set") && !msg.contains(&unset),
        "{msg}"
    );
    assert_eq!(r.json["status"], "ERROR");
    // A variable the operator did not grant is refused with the same words, set or not.
    // Set in the test router's environment, but not granted.
    let ungranted = format!("MR_NOT_GRANTED_{}", std::process::id());
    let r = app
        .send(t.post(
            "/assets/models/verify",
            config("Ungranted", &base, &format!("os.environ/{ungranted}")),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["verified"], false);
    assert_eq!(r.json["message"].as_str().unwrap(), msg);
}

async fn undecryptable_credentials_fail_verification(app: TestApp) {
    let addr = testing::start().await;
    let t = app.tenant().await;
    app.send(t.post(
        "/assets/models",
        config("Broken", &format!("http://{addr}/openai/v1"), GOOD_KEY),
    ))
    .await
    .expect(201);
    app.raw_sql(
        "UPDATE models SET credentials = substr(credentials, 1, 30)",
        "UPDATE models SET credentials = substring(credentials from 1 for 30)",
    )
    .await;
    let r = app
        .send(t.post("/assets/models/broken/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(
        (r.json["verified"].clone(), r.json["status"].clone()),
        (json!(false), json!("ERROR"))
    );
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("cannot be decrypted")
    );
}

async fn verify_column_of_the_role_matrix(app: TestApp) {
    let addr = testing::start().await;
    let base = format!("http://{addr}/openai/v1");
    let owner = app.tenant().await;
    app.send(owner.post("/assets/models", config("M", &base, GOOD_KEY)))
        .await
        .expect(201);
    for role in Role::ALL {
        let t = Tenant {
            token: app.token(&owner.org, "*", role).await,
            ..owner.clone()
        };
        let stored = app.send(t.post("/assets/models/m/verify", json!({}))).await;
        let unsaved = app
            .send(t.post("/assets/models/verify", config("U", &base, GOOD_KEY)))
            .await;
        if role == Role::Viewer {
            stored.expect_error(403, "INSUFFICIENT_PERMISSIONS");
            unsaved.expect_error(403, "INSUFFICIENT_PERMISSIONS");
        } else {
            assert_eq!(stored.expect(200).json["verified"], true, "{role}");
            assert_eq!(unsaved.expect(200).json["verified"], true, "{role}");
        }
    }
}

on_both_backends!(
    verifying_a_stored_model_records_the_truth,
    verify_before_save_stores_nothing,
    references_are_resolved_at_verification,
    undecryptable_credentials_fail_verification,
    verify_column_of_the_role_matrix,
);
