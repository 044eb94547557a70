//! Credentials: key-by-key updates, masked placeholders, references, and records that cannot
//! be decrypted (issue [secrets]).

mod common;

use common::*;
use modelreg_core::{
    auth::Role,
    secrets::{Kek, Keyring},
};
use serde_json::{Value, json};

fn with_creds(name: &str, creds: Value) -> Value {
    let mut b = model(name);
    b["credentials"] = creds;
    b
}

async fn patch_credentials_merges_key_by_key(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post(
            "/assets/models",
            with_creds("Merge", json!({"a": "1", "b": "2"})),
        ))
        .await
        .expect(201);
    let v1 = created.header("etag").unwrap().to_owned();
    let r = app
        .send(
            t.patch(
                "/assets/models/merge/credentials",
                json!({"b": null, "c": "3"}),
            )
            .header("if-match", &v1),
        )
        .await
        .expect(200);
    assert_eq!(r.json["credential_fields"], json!(["a", "c"]));
    assert_ne!(r.header("etag"), Some(v1.as_str()));
    assert_eq!(r.json["name"], "Merge", "other fields are untouched");
    // A stale ETag, removing every key, an empty change, a non-object: refused.
    app.send(
        t.patch("/assets/models/merge/credentials", json!({"a": "9"}))
            .header("if-match", &v1),
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    for bad in [
        json!({"a": null, "c": null}),
        json!({}),
        json!(["a"]),
        json!({"a": "****"}),
    ] {
        app.send(t.patch("/assets/models/merge/credentials", bad.clone()))
            .await
            .expect_error(422, "VALIDATION_ERROR");
    }
    let now = app.send(t.get("/assets/models/merge")).await.expect(200);
    assert_eq!(
        now.json["credential_fields"],
        json!(["a", "c"]),
        "refused changes wrote nothing"
    );
    app.send(t.patch("/assets/models/nope/credentials", json!({"a": "1"})))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    let viewer = Tenant {
        token: app.token(&t.org, "*", Role::Viewer).await,
        ..t.clone()
    };
    app.send(viewer.patch("/assets/models/merge/credentials", json!({"a": "1"})))
        .await
        .expect_error(403, "INSUFFICIENT_PERMISSIONS");
}

async fn masked_placeholders_are_refused_everywhere(app: TestApp) {
    let t = app.tenant().await;
    app.send(t.post(
        "/assets/models",
        with_creds("Real", json!({"api_key": "sk-real-1"})),
    ))
    .await
    .expect(201);
    for masked in ["****", "sk-...****wxyz", "••••••", "<redacted>"] {
        let r = app
            .send(t.post(
                "/assets/models",
                with_creds("Masked", json!({"api_key": masked})),
            ))
            .await
            .expect_error(422, "VALIDATION_ERROR");
        assert_eq!(r.error_locs(), ["body.credentials"]);
        assert!(
            r.text.contains("api_key") && r.text.contains("placeholder"),
            "{}",
            r.text
        );
        let r = app
            .send(t.put(
                "/assets/models/real",
                json!({"credentials": {"api_key": masked}}),
            ))
            .await
            .expect_error(422, "VALIDATION_ERROR");
        assert!(r.text.contains("placeholder"));
        app.send(t.patch(
            "/assets/models/real/credentials",
            json!({"api_key": masked}),
        ))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    }
    let m = app.send(t.get("/assets/models/real")).await.expect(200);
    assert_eq!(
        m.json["status"], "PENDING",
        "the stored key was not replaced"
    );
}

async fn references_are_stored_as_references(app: TestApp) {
    let t = app.tenant().await;
    let r = app
        .send(t.post(
            "/assets/models",
            with_creds(
                "Refs",
                json!({"api_key": "os.environ/OPENAI_API_KEY", "cert": "file:/run/secrets/cert"}),
            ),
        ))
        .await
        .expect(201);
    assert_eq!(r.json["credential_fields"], json!(["api_key", "cert"]));
    for bad in ["os.environ/", "os.environ/9X", "file:relative"] {
        app.send(t.post(
            "/assets/models",
            with_creds("Bad Ref", json!({"api_key": bad})),
        ))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    }
    // A reference is not a secret, but it is still never returned.
    assert!(!r.text.contains("OPENAI_API_KEY"));
}

async fn undecryptable_credentials_read_as_error_never_as_healthy(app: TestApp) {
    let t = app.tenant().await;
    for name in ["truncated", "donor", "moved", "fine"] {
        app.send(t.post(
            "/assets/models",
            with_creds(name, json!({"api_key": format!("sk-{name}")})),
        ))
        .await
        .expect(201);
        app.send(t.patch(
            &format!("/assets/models/{name}"),
            json!({"status": "ACTIVE"}),
        ))
        .await
        .expect(200);
    }
    app.raw_sql(
        "UPDATE models SET credentials = substr(credentials, 1, 40) WHERE resource_uri = 'truncated'",
        "UPDATE models SET credentials = substring(credentials from 1 for 40) WHERE resource_uri = 'truncated'",
    )
    .await;
    let moved = "UPDATE models SET credentials = (SELECT credentials FROM models WHERE resource_uri = 'donor') \
                 WHERE resource_uri = 'moved'";
    app.raw_sql(moved, moved).await;

    for (name, reason) in [
        ("truncated", "malformed"),
        ("moved", "moved from another record"),
    ] {
        let r = app
            .send(t.get(&format!("/assets/models/{name}")))
            .await
            .expect(200);
        assert_eq!(r.json["status"], "ERROR", "{name}");
        let msg = r.json["status_message"].as_str().unwrap();
        assert!(
            msg.contains("cannot be decrypted") && msg.contains(reason),
            "{name}: {msg}"
        );
    }
    for name in ["donor", "fine"] {
        assert_eq!(
            app.send(t.get(&format!("/assets/models/{name}")))
                .await
                .json["status"],
            "ACTIVE"
        );
    }
    let list = app
        .send(t.get("/assets/models?sort=name:asc"))
        .await
        .expect(200);
    let statuses: Vec<&str> = list.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ACTIVE", "ACTIVE", "ERROR", "ERROR"],
        "donor, fine, moved, truncated"
    );
    // A key-by-key change needs readable credentials; a whole replacement heals the record.
    let r = app
        .send(t.patch("/assets/models/moved/credentials", json!({"x": "1"})))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    assert!(r.text.contains("cannot be decrypted"));
    let r = app
        .send(t.put(
            "/assets/models/moved",
            json!({"credentials": {"api_key": "sk-new"}}),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["status"], "ACTIVE");

    // A master key that is not configured: every record reads as ERROR, naming the key.
    let other = app.with_keyring(Keyring::new(vec![Kek::generate()]).unwrap());
    let r = other.send(t.get("/assets/models/fine")).await.expect(200);
    assert_eq!(r.json["status"], "ERROR");
    let msg = r.json["status_message"].as_str().unwrap();
    assert!(
        msg.contains("not configured") && msg.contains("master key"),
        "{msg}"
    );
}

async fn error_messages_never_echo_values(app: TestApp) {
    let t = app.tenant().await;
    app.send(t.post("/assets/models", model("Echo")))
        .await
        .expect(201);
    let secret = "sk-ECHO-CANARY-7731";
    for body in [
        json!({"rpm": secret}),
        json!({"credentials": secret}),
        json!({"name": {"nested": secret}}),
        json!({"tags": [secret, 5]}),
        json!({"mode": secret}),
    ] {
        let r = app.send(t.put("/assets/models/echo", body.clone())).await;
        assert_eq!(r.status.as_u16(), 422, "{body}");
        assert!(!r.text.contains("ECHO-CANARY"), "echoed: {}", r.text);
    }
    let r = app
        .send(t.post(
            "/assets/models",
            with_creds("E2", json!({"api_key": secret, "other": "****"})),
        ))
        .await
        .expect(422);
    assert!(!r.text.contains("ECHO-CANARY"));
    // A malformed reference (a key pasted after the prefix) is refused without repeating it,
    // on create, on update, on the key-by-key change and on verify.
    for value in [
        format!("os.environ/{secret}"),
        format!("file:{secret}"),
        format!("file:./{secret}"),
    ] {
        let creds = json!({"api_key": value});
        let model = "/assets/models/echo";
        for req in [
            t.post("/assets/models", with_creds("E3", creds.clone())),
            t.put(model, json!({"credentials": creds})),
            t.patch(&format!("{model}/credentials"), creds.clone()),
            t.post("/assets/models/verify", with_creds("E4", creds.clone())),
        ] {
            let r = app.send(req).await;
            assert_eq!(r.status.as_u16(), 422, "{value}: {}", r.text);
            assert!(!r.text.contains("ECHO-CANARY"), "echoed: {}", r.text);
        }
    }
}

on_both_backends!(
    patch_credentials_merges_key_by_key,
    masked_placeholders_are_refused_everywhere,
    references_are_stored_as_references,
    undecryptable_credentials_read_as_error_never_as_healthy,
    error_messages_never_echo_values,
);
