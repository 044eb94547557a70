//! Create, get, update and delete, over HTTP (SPEC §1, §2, §2.2).

mod common;

use common::*;
use futures::future::join_all;
use serde_json::{Value, json};

async fn create_returns_the_full_model_with_location_and_etag(app: TestApp) {
    let t = app.tenant().await;
    let body = json!({
        "name": "GPT-4o (prod)",
        "litellm_model": "openai/gpt-4o",
        "description": "Main chat model",
        "tags": ["prod", "chat", "prod"],
        "api_base": "https://api.openai.com/v1",
        "api_version": "2024-06-01",
        "mode": "chat",
        "max_input_tokens": 128000,
        "max_output_tokens": 4096,
        "default_max_tokens": 1024,
        "rpm": 500,
        "tpm": 2147483647,
        "default_temperature": 0.7,
        "timeout": 30.5,
        "credentials": {"api_key": "sk-abc", "organization": "org-1"}
    });
    let r = app.send(t.post("/assets/models", body)).await.expect(201);
    let m = &r.json;
    assert_eq!(m["resource_uri"], "gpt-4o-prod");
    assert_eq!(r.header("location"), Some("/assets/models/gpt-4o-prod"));
    let etag = r.header("etag").expect("etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(m["provider"], "openai", "inferred from the prefix");
    assert_eq!(m["status"], "PENDING");
    assert_eq!(
        m["tags"],
        json!(["prod", "chat"]),
        "duplicates removed, order kept"
    );
    assert_eq!(m["organization_id"], t.org.as_str());
    assert_eq!(m["project_id"], t.project.as_str());
    assert_eq!(m["credential_fields"], json!(["api_key", "organization"]));
    assert!(m.get("credentials").is_none());
    assert!(
        !r.text.contains("sk-abc"),
        "a secret was returned: {}",
        r.text
    );
    assert!(m["created_by"].as_str().unwrap().starts_with("service:"));
    assert_eq!(m["owner_id"], m["created_by"]);
    assert_eq!(m["updated_by"], m["created_by"]);
    assert_eq!(m["created_at"], m["updated_at"]);
    assert_eq!(m["last_verified_at"], Value::Null);
    assert_eq!(m["tpm"], 2147483647);
    assert_eq!(m["default_temperature"], 0.7);
    assert_eq!(m["timeout"], 30.5);
    let id = m["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
}

async fn get_by_resource_uri_or_id_and_if_none_match(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Claude")))
        .await
        .expect(201);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let etag = created.header("etag").unwrap().to_owned();

    let by_uri = app.send(t.get("/assets/models/claude")).await.expect(200);
    let by_id = app
        .send(t.get(&format!("/assets/models/{id}")))
        .await
        .expect(200);
    assert_eq!(by_uri.json, created.json);
    assert_eq!(by_id.json, created.json);
    assert_eq!(by_uri.header("etag"), Some(etag.as_str()));

    let not_modified = app
        .send(
            t.get("/assets/models/claude")
                .header("if-none-match", &etag),
        )
        .await
        .expect(304);
    assert!(not_modified.text.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    app.send(
        t.get("/assets/models/claude")
            .header("if-none-match", "\"other\""),
    )
    .await
    .expect(200);
    app.send(t.get("/assets/models/claude").header("if-none-match", "*"))
        .await
        .expect(304);

    app.send(t.get("/assets/models/nope"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    app.send(t.get(&format!("/assets/models/{}", uuid::Uuid::now_v7())))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
}

async fn generated_resource_uris_get_numbered_and_given_ones_conflict(app: TestApp) {
    let t = app.tenant().await;
    let mut uris = Vec::new();
    for _ in 0..4 {
        let r = app
            .send(t.post("/assets/models", model("My Model!")))
            .await
            .expect(201);
        uris.push(r.json["resource_uri"].as_str().unwrap().to_owned());
    }
    assert_eq!(uris, ["my-model", "my-model-2", "my-model-3", "my-model-4"]);

    let mut explicit = model("Other");
    explicit["resource_uri"] = json!("my-model-3");
    app.send(t.post("/assets/models", explicit))
        .await
        .expect_error(409, "RESOURCE_ALREADY_EXISTS");

    // A deleted one frees its slot for the next generated uri.
    app.send(t.delete("/assets/models/my-model-2"))
        .await
        .expect(204);
    let r = app
        .send(t.post("/assets/models", model("my model")))
        .await
        .expect(201);
    assert_eq!(r.json["resource_uri"], "my-model-2");

    // Empty after slugging, and a name of 150 characters.
    let r = app
        .send(t.post("/assets/models", model("日本語")))
        .await
        .expect(201);
    assert_eq!(r.json["resource_uri"], "model");
    let long = "a".repeat(150);
    let r1 = app
        .send(t.post("/assets/models", model(&long)))
        .await
        .expect(201);
    let r2 = app
        .send(t.post("/assets/models", model(&long)))
        .await
        .expect(201);
    assert_eq!(r1.json["resource_uri"].as_str().unwrap().len(), 100);
    let second = r2.json["resource_uri"].as_str().unwrap();
    assert_eq!(second.len(), 100);
    assert!(second.ends_with("-2"), "{second}");
}

async fn concurrent_creates_of_one_name_all_get_distinct_uris(app: TestApp) {
    let t = app.tenant().await;
    let futures = (0..20).map(|_| app.send(t.post("/assets/models", model("Same Name"))));
    let results = join_all(futures).await;
    let mut uris: Vec<String> = results
        .into_iter()
        .map(|r| {
            r.expect(201).json["resource_uri"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    uris.sort();
    uris.dedup();
    assert_eq!(uris.len(), 20);
}

async fn update_is_a_merge_patch(app: TestApp) {
    let t = app.tenant().await;
    let mut body = model("Patch Me");
    body["description"] = json!("old");
    body["tags"] = json!(["a", "b"]);
    body["rpm"] = json!(10);
    body["mode"] = json!("chat");
    let created = app.send(t.post("/assets/models", body)).await.expect(201);

    for method in ["PUT", "PATCH"] {
        let change = json!({"description": null, "rpm": 20, "tags": ["c"], "name": "Patched"});
        let req = if method == "PUT" {
            t.put("/assets/models/patch-me", change)
        } else {
            t.patch("/assets/models/patch-me", change)
        };
        let r = app.send(req).await.expect(200);
        let m = &r.json;
        assert_eq!(m["description"], Value::Null, "null clears");
        assert_eq!(m["rpm"], 20);
        assert_eq!(m["tags"], json!(["c"]), "tags replace the list");
        assert_eq!(m["name"], "Patched");
        assert_eq!(m["mode"], "chat", "absent leaves a field alone");
        assert_eq!(m["resource_uri"], "patch-me", "resource_uri is immutable");
        assert_eq!(m["created_at"], created.json["created_at"]);
        assert_ne!(r.header("etag"), created.header("etag"));
    }
    let got = app.send(t.get("/assets/models/patch-me")).await.expect(200);
    assert!(got.json["updated_at"].as_str() > created.json["updated_at"].as_str());

    // merge-patch+json is accepted on PATCH.
    let r = app
        .send(t.patch("/assets/models/patch-me", json!({})).raw(
            "application/merge-patch+json",
            r#"{"status":"DEPRECATED","status_message":"use v2"}"#,
        ))
        .await
        .expect(200);
    assert_eq!(r.json["status"], "DEPRECATED");
    assert_eq!(r.json["status_message"], "use v2");

    // tags: null resets to [].
    let r = app
        .send(t.patch("/assets/models/patch-me", json!({"tags": null})))
        .await
        .expect(200);
    assert_eq!(r.json["tags"], json!([]));
}

async fn an_empty_patch_changes_nothing(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Same")))
        .await
        .expect(201);
    let r = app
        .send(t.put("/assets/models/same", json!({})))
        .await
        .expect(200);
    assert_eq!(r.json, created.json);
    assert_eq!(r.header("etag"), created.header("etag"));
}

async fn credentials_are_replaced_wholesale_and_never_returned(app: TestApp) {
    let t = app.tenant().await;
    let mut body = model("Creds");
    body["credentials"] = json!({"api_key": "sk-one", "org": "o"});
    let created = app.send(t.post("/assets/models", body)).await.expect(201);
    assert_eq!(created.json["credential_fields"], json!(["api_key", "org"]));
    let r = app
        .send(t.put(
            "/assets/models/creds",
            json!({"credentials": {"token": "sk-two"}}),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["credential_fields"], json!(["token"]));
    assert_ne!(r.header("etag"), created.header("etag"));
    assert!(!r.text.contains("sk-two"));
    for bad in [
        json!({"credentials": null}),
        json!({"credentials": {}}),
        json!({"credentials": "x"}),
    ] {
        let r = app
            .send(t.put("/assets/models/creds", bad.clone()))
            .await
            .expect_error(422, "VALIDATION_ERROR");
        assert_eq!(r.error_locs(), ["body.credentials"], "{bad}");
    }
}

async fn get_edit_put_round_trip_works(app: TestApp) {
    let t = app.tenant().await;
    app.send(t.post("/assets/models", model("Round Trip")))
        .await
        .expect(201);
    let mut m = app
        .send(t.get("/assets/models/round-trip"))
        .await
        .expect(200)
        .json;
    m["description"] = json!("edited");
    let r = app
        .send(t.put("/assets/models/round-trip", m.clone()))
        .await
        .expect(200);
    assert_eq!(r.json["description"], "edited");
    // Read-only fields carrying other values are ignored, not applied.
    m["id"] = json!("00000000-0000-0000-0000-000000000000");
    m["organization_id"] = json!("someone-else");
    m["created_by"] = json!("user:mallory");
    let r = app
        .send(t.put("/assets/models/round-trip", m))
        .await
        .expect(200);
    assert_eq!(r.json["organization_id"], t.org.as_str());
    assert_ne!(r.json["created_by"], "user:mallory");

    // The fetched model can be posted back as a new one too (with another resource_uri).
    let mut copy = app
        .send(t.get("/assets/models/round-trip"))
        .await
        .expect(200)
        .json;
    copy["resource_uri"] = json!("round-trip-copy");
    copy["credentials"] = json!({"api_key": "k"});
    let r = app.send(t.post("/assets/models", copy)).await.expect(201);
    assert_eq!(r.json["status"], "PENDING");
}

async fn resource_uri_in_update_must_match_and_unknown_fields_are_rejected(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Fixed")))
        .await
        .expect(201);
    let id = created.json["id"].as_str().unwrap();
    app.send(t.put("/assets/models/fixed", json!({"resource_uri": "fixed"})))
        .await
        .expect(200);
    app.send(t.put(
        &format!("/assets/models/{id}"),
        json!({"resource_uri": "fixed", "rpm": 3}),
    ))
    .await
    .expect(200);
    let r = app
        .send(t.put("/assets/models/fixed", json!({"resource_uri": "moved"})))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    assert_eq!(r.error_locs(), ["body.resource_uri"]);
    let r = app
        .send(t.put("/assets/models/fixed", json!({"colour": "red"})))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    assert_eq!(r.error_locs(), ["body.colour"]);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let mut body = model("x");
    body["colour"] = json!("red");
    let r = app
        .send(t.post("/assets/models", body))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    assert_eq!(r.error_locs(), ["body.colour"]);
    // Nothing changed.
    let now = app.send(t.get("/assets/models/fixed")).await.expect(200);
    assert_eq!(now.json["rpm"], 3);
}

async fn if_match_guards_updates_and_deletes(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Guarded")))
        .await
        .expect(201);
    let v1 = created.header("etag").unwrap().to_owned();

    let r = app
        .send(
            t.put("/assets/models/guarded", json!({"rpm": 1}))
                .header("if-match", &v1),
        )
        .await
        .expect(200);
    let v2 = r.header("etag").unwrap().to_owned();
    assert_ne!(v1, v2);
    // The stale tag now fails, and nothing is written.
    app.send(
        t.put("/assets/models/guarded", json!({"rpm": 2}))
            .header("if-match", &v1),
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    app.send(
        t.patch("/assets/models/guarded", json!({"rpm": 2}))
            .header("if-match", &v1),
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    assert_eq!(
        app.send(t.get("/assets/models/guarded")).await.json["rpm"],
        1
    );
    // A list of tags, one current, matches; * matches; a weak tag never matches.
    app.send(
        t.put("/assets/models/guarded", json!({"rpm": 3}))
            .header("if-match", &format!("\"x\", {v2}")),
    )
    .await
    .expect(200);
    app.send(
        t.put("/assets/models/guarded", json!({"rpm": 4}))
            .header("if-match", "*"),
    )
    .await
    .expect(200);
    let cur = app
        .send(t.get("/assets/models/guarded"))
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    app.send(
        t.put("/assets/models/guarded", json!({"rpm": 5}))
            .header("if-match", &format!("W/{cur}")),
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    app.send(
        t.put("/assets/models/guarded", json!({"rpm": 5}))
            .header("if-match", "garbage"),
    )
    .await
    .expect_error(400, "INVALID_REQUEST");

    app.send(t.delete("/assets/models/guarded").header("if-match", &v1))
        .await
        .expect_error(412, "PRECONDITION_FAILED");
    app.send(t.get("/assets/models/guarded")).await.expect(200);
    app.send(t.delete("/assets/models/guarded").header("if-match", &cur))
        .await
        .expect(204);
}

async fn concurrent_updates_with_one_etag_let_exactly_one_win(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Race")))
        .await
        .expect(201);
    let etag = created.header("etag").unwrap().to_owned();
    let reqs = (0..10).map(|i| {
        app.send(
            t.put("/assets/models/race", json!({"rpm": i + 1}))
                .header("if-match", &etag),
        )
    });
    let results = join_all(reqs).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let failed = results.iter().filter(|r| r.status == 412).count();
    assert_eq!((ok, failed), (1, 9));
}

async fn concurrent_updates_without_etag_lose_no_field(app: TestApp) {
    let t = app.tenant().await;
    app.send(t.post("/assets/models", model("Many Writers")))
        .await
        .expect(201);
    let fields = [
        "rpm",
        "tpm",
        "max_input_tokens",
        "max_output_tokens",
        "default_max_tokens",
    ];
    let reqs = fields
        .iter()
        .map(|f| app.send(t.patch("/assets/models/many-writers", json!({ *f: 7 }))));
    for r in join_all(reqs).await {
        r.expect(200);
    }
    let m = app.send(t.get("/assets/models/many-writers")).await.json;
    for f in fields {
        assert_eq!(m[f], 7, "{f} was lost");
    }
}

async fn delete_removes_and_a_second_delete_is_404(app: TestApp) {
    let t = app.tenant().await;
    let created = app
        .send(t.post("/assets/models", model("Gone")))
        .await
        .expect(201);
    let r = app.send(t.delete("/assets/models/gone")).await.expect(204);
    assert!(r.text.is_empty());
    app.send(t.get("/assets/models/gone"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    app.send(t.delete("/assets/models/gone"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    app.send(t.put("/assets/models/gone", json!({"rpm": 1})))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    // By id works too, and a re-created model has a new id and ETag.
    let again = app
        .send(t.post("/assets/models", model("Gone")))
        .await
        .expect(201);
    assert_eq!(again.json["resource_uri"], "gone");
    assert_ne!(again.json["id"], created.json["id"]);
    assert_ne!(again.header("etag"), created.header("etag"));
    let id = again.json["id"].as_str().unwrap();
    app.send(t.delete(&format!("/assets/models/{id}")))
        .await
        .expect(204);
}

async fn credentials_are_encrypted_and_deleted_rows_are_overwritten(app: TestApp) {
    let t = app.tenant().await;
    let mut body = model("Secret Holder");
    body["credentials"] = json!({"api_key": "sk-UNIQUE-MARKER-4242"});
    let created = app.send(t.post("/assets/models", body)).await.expect(201);
    let stored = app.stored_text().await;
    assert!(
        stored.contains("secret-holder"),
        "the check must see stored rows"
    );
    assert!(
        !stored.contains("sk-UNIQUE-MARKER"),
        "plaintext secret in storage"
    );

    // The ciphertext itself, as stored.
    let id = uuid::Uuid::parse_str(created.json["id"].as_str().unwrap()).unwrap();
    let scope = modelreg_core::tenant::TenantScope::new(
        modelreg_core::tenant::OrgId::parse(&t.org).unwrap(),
        modelreg_core::tenant::ProjectId::parse(&t.project).unwrap(),
    );
    let blob = app
        .store
        .get_model(&scope, &modelreg_core::resource_uri::ModelKey::Id(id))
        .await
        .unwrap()
        .unwrap()
        .credentials
        .blob;
    assert!(
        app.stores_bytes(&blob).await,
        "the check must see the ciphertext"
    );

    app.send(t.delete("/assets/models/secret-holder"))
        .await
        .expect(204);
    // While the server still runs (no close), the WAL included: secure_delete and the
    // checkpoint after a delete leave nothing of the encrypted credentials on disk. (The
    // audit trail keeps the deleted model's plain fields on purpose, never its credentials.)
    assert!(
        !app.stores_bytes(&blob).await,
        "the deleted ciphertext is still stored"
    );
    assert!(!app.stored_text().await.contains("sk-UNIQUE-MARKER"));
}

async fn provider_rules(app: TestApp) {
    let t = app.tenant().await;
    let mut b = model("p1");
    b["litellm_model"] = json!("azure/my-deploy");
    assert_eq!(
        app.send(t.post("/assets/models", b)).await.expect(201).json["provider"],
        "azure"
    );
    let mut b = model("p2");
    b["provider"] = json!("my-gateway");
    assert_eq!(
        app.send(t.post("/assets/models", b)).await.expect(201).json["provider"],
        "my-gateway"
    );
    let mut b = model("p3");
    b["provider"] = Value::Null;
    assert_eq!(
        app.send(t.post("/assets/models", b)).await.expect(201).json["provider"],
        Value::Null
    );
    let mut b = model("p4");
    b["litellm_model"] = json!("local-thing");
    assert_eq!(
        app.send(t.post("/assets/models", b)).await.expect(201).json["provider"],
        Value::Null
    );
    // An inferred provider follows a changed model string; a chosen one stays.
    let r = app
        .send(t.put(
            "/assets/models/p1",
            json!({"litellm_model": "anthropic/claude-3-5-sonnet"}),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["provider"], "anthropic");
    let r = app
        .send(t.put(
            "/assets/models/p2",
            json!({"litellm_model": "anthropic/claude-3-5-sonnet"}),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["provider"], "my-gateway");
}

async fn status_starts_pending_and_people_can_set_it(app: TestApp) {
    let t = app.tenant().await;
    let mut b = model("Stat");
    b["status"] = json!("ACTIVE");
    b["status_message"] = json!("ignored on create");
    let r = app.send(t.post("/assets/models", b)).await.expect(201);
    assert_eq!(r.json["status"], "PENDING");
    assert_eq!(r.json["status_message"], Value::Null);
    for s in ["ACTIVE", "ERROR", "DEPRECATED", "DISABLED", "PENDING"] {
        let r = app
            .send(t.patch(
                "/assets/models/stat",
                json!({"status": s, "status_message": format!("now {s}")}),
            ))
            .await
            .expect(200);
        assert_eq!(r.json["status"], s);
    }
    app.send(t.patch("/assets/models/stat", json!({"status": "BROKEN"})))
        .await
        .expect_error(422, "VALIDATION_ERROR");
}

on_both_backends!(
    create_returns_the_full_model_with_location_and_etag,
    get_by_resource_uri_or_id_and_if_none_match,
    generated_resource_uris_get_numbered_and_given_ones_conflict,
    concurrent_creates_of_one_name_all_get_distinct_uris,
    update_is_a_merge_patch,
    an_empty_patch_changes_nothing,
    credentials_are_replaced_wholesale_and_never_returned,
    get_edit_put_round_trip_works,
    resource_uri_in_update_must_match_and_unknown_fields_are_rejected,
    if_match_guards_updates_and_deletes,
    concurrent_updates_with_one_etag_let_exactly_one_win,
    concurrent_updates_without_etag_lose_no_field,
    delete_removes_and_a_second_delete_is_404,
    credentials_are_encrypted_and_deleted_rows_are_overwritten,
    provider_rules,
    status_starts_pending_and_people_can_set_it,
);
