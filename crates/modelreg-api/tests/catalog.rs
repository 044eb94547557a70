//! The catalog ([catalog]): a model filled from it at create, per-field provenance, overrides
//! that survive a refresh, upstream changes taken or kept, and `/assets/catalog` itself.

mod common;

use common::*;
use modelreg_core::catalog::{Catalog, snapshot_of};
use serde_json::{Value, json};

/// The bundled catalog's entry, as the API's JSON.
fn bundled(key: &str) -> Value {
    let catalog = Catalog::bundled();
    serde_json::to_value(catalog.get(key).expect("in the bundled catalog")).unwrap()
}

/// Loads `map` (a cost map) as the catalog in force, as `modelreg catalog refresh` does.
async fn refresh(app: &TestApp, map: &Value, version: &str) {
    let (_, snapshot) = snapshot_of(map.to_string().as_bytes(), version, "2026-12-01").unwrap();
    app.store.add_catalog_snapshot(snapshot).await.unwrap();
}

async fn a_model_created_bare_takes_the_catalogs_values(app: TestApp) {
    let t = app.tenant().await;
    let r = app
        .send(t.post("/assets/models", model("bare")))
        .await
        .expect(201);
    let m = &r.json;
    let e = bundled("gpt-4o");
    for f in [
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_cost_per_token",
        "max_input_tokens",
        "max_output_tokens",
        "capabilities",
    ] {
        assert!(!e[f].is_null(), "gpt-4o has {f} upstream");
        assert_eq!(m[f], e[f], "{f} is the catalog's");
        assert_eq!(
            m["catalog"]["fields"][f], "catalog",
            "{f} is marked as the catalog's"
        );
    }
    assert!(m["input_cost_per_token"].as_f64().unwrap() > 0.0);
    assert!(
        m["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("function_calling"))
    );
    assert_eq!(m["catalog"]["key"], "gpt-4o");
    // What a GET shows, and what the create's audit event recorded.
    let got = app.send(t.get("/assets/models/bare")).await.expect(200);
    assert_eq!(got.json["input_cost_per_token"], e["input_cost_per_token"]);
    assert_eq!(got.json["catalog"], m["catalog"]);
    // A model the catalog does not know keeps its fields empty, and no link.
    let r = app
        .send(t.post(
            "/assets/models",
            json!({"name": "mine", "litellm_model": "openai/my-finetune-xyz",
                   "credentials": {"api_key": "k"}}),
        ))
        .await
        .expect(201);
    assert!(r.json["input_cost_per_token"].is_null());
    assert_eq!(r.json["catalog"], json!({"key": null, "fields": {}}));
}

async fn given_values_are_overrides_and_base_model_names_the_entry(app: TestApp) {
    let t = app.tenant().await;
    let r = app
        .send(t.post(
            "/assets/models",
            json!({"name": "az", "litellm_model": "azure/my-prod-deployment",
                   "base_model": "azure/gpt-4o", "input_cost_per_token": 0.000001,
                   "capabilities": ["vision", "function_calling", "vision"],
                   "credentials": {"api_key": "k"}}),
        ))
        .await
        .expect(201);
    let m = &r.json;
    let e = bundled("azure/gpt-4o");
    assert_eq!(m["catalog"]["key"], "azure/gpt-4o");
    assert_eq!(m["input_cost_per_token"], 0.000001);
    assert_eq!(m["catalog"]["fields"]["input_cost_per_token"], "override");
    assert_eq!(
        m["capabilities"],
        json!(["vision", "function_calling"]),
        "the set's order, no duplicates"
    );
    assert_eq!(m["catalog"]["fields"]["capabilities"], "override");
    assert_eq!(m["output_cost_per_token"], e["output_cost_per_token"]);
    assert_eq!(m["catalog"]["fields"]["output_cost_per_token"], "catalog");
    // Editing a catalog value makes it an override; a new model string follows its entry,
    // overrides staying.
    let r = app
        .send(t.patch("/assets/models/az", json!({"max_output_tokens": 77})))
        .await
        .expect(200);
    assert_eq!(r.json["catalog"]["fields"]["max_output_tokens"], "override");
    let r = app
        .send(t.patch(
            "/assets/models/az",
            json!({"litellm_model": "openai/gpt-4o-mini", "base_model": null}),
        ))
        .await
        .expect(200);
    let mini = bundled("gpt-4o-mini");
    assert_eq!(r.json["catalog"]["key"], "gpt-4o-mini");
    assert_eq!(
        r.json["output_cost_per_token"],
        mini["output_cost_per_token"]
    );
    assert_eq!(
        r.json["input_cost_per_token"], 0.000001,
        "an override stays"
    );
    assert_eq!(r.json["max_output_tokens"], 77, "an override stays");
    // The history records which values became the user's.
    let h = app
        .send(t.get("/assets/models/az/history"))
        .await
        .expect(200);
    let events = h.json["data"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["changes"]["catalog"].is_object()),
        "{events:?}"
    );
}

async fn a_round_trip_keeps_each_fields_provenance(app: TestApp) {
    let t = app.tenant().await;
    let mut body = model("trip");
    body["max_output_tokens"] = json!(99);
    app.send(t.post("/assets/models", body)).await.expect(201);
    let got = app
        .send(t.get("/assets/models/trip"))
        .await
        .expect(200)
        .json;
    let fields = got["catalog"]["fields"].clone();
    assert_eq!(fields["max_output_tokens"], "override");
    assert_eq!(fields["input_cost_per_token"], "catalog");
    // GET → PUT of the whole model, every catalogued field sent as it is: nothing moves.
    let r = app
        .send(t.put("/assets/models/trip", got.clone()))
        .await
        .expect(200);
    assert_eq!(r.json["catalog"]["fields"], fields);
    assert_eq!(r.json["updated_at"], got["updated_at"], "no write at all");
    // Posted back as a new model: the values equal to the catalog's are the catalog's.
    let mut copy = got.clone();
    copy["resource_uri"] = json!("trip-copy");
    copy["credentials"] = json!({"api_key": "k"});
    let r = app.send(t.post("/assets/models", copy)).await.expect(201);
    assert_eq!(r.json["catalog"]["fields"], fields);
    // An override set back to the catalog's value is the catalog's again.
    let r = app
        .send(t.patch(
            "/assets/models/trip",
            json!({"max_output_tokens": bundled("gpt-4o")["max_output_tokens"]}),
        ))
        .await
        .expect(200);
    assert_eq!(r.json["catalog"]["fields"]["max_output_tokens"], "catalog");
}

async fn bad_catalog_values_are_422_naming_each_field(app: TestApp) {
    let t = app.tenant().await;
    let mut body = model("bad");
    body["input_cost_per_token"] = json!(-1);
    body["output_cost_per_token"] = json!(2);
    body["capabilities"] = json!(["vision", "telepathy"]);
    body["deprecation_date"] = json!("next tuesday");
    body["base_model"] = json!("");
    let r = app
        .send(t.post("/assets/models", body))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    let mut locs = r.error_locs();
    locs.sort();
    assert_eq!(
        locs,
        [
            "body.base_model",
            "body.capabilities",
            "body.deprecation_date",
            "body.input_cost_per_token",
            "body.output_cost_per_token"
        ]
    );
    // Nothing was stored.
    app.send(t.get("/assets/models/bad"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
}

/// A cost map where gpt-4o costs more and has a longer context, and nothing else changed.
fn newer_map() -> Value {
    let e = bundled("gpt-4o");
    json!({
        "sample_spec": {"max_tokens": "documentation"},
        "gpt-4o": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 0.00001,
            "output_cost_per_token": e["output_cost_per_token"],
            "cache_read_input_token_cost": e["cache_read_cost_per_token"],
            "max_input_tokens": 256000,
            "max_output_tokens": e["max_output_tokens"],
            "supports_function_calling": true,
            "supports_parallel_function_calling": true,
            "supports_vision": true,
            "supports_response_schema": true,
            "supports_prompt_caching": true,
            "supports_system_messages": true,
            "supports_tool_choice": true,
            "supports_pdf_input": true,
        }
    })
}

async fn overrides_survive_a_refresh_and_upstream_changes_are_taken_or_kept(app: TestApp) {
    let t = app.tenant().await;
    let mut pinned = model("pinned");
    pinned["input_cost_per_token"] = json!(0.000003);
    app.send(t.post("/assets/models", pinned)).await.expect(201);
    app.send(t.post("/assets/models", model("taker")))
        .await
        .expect(201);
    app.send(t.post("/assets/models", model("keeper")))
        .await
        .expect(201);
    let none = app.send(t.get("/assets/catalog/changes")).await.expect(200);
    assert_eq!(none.json["data"], json!([]), "nothing changed upstream yet");

    refresh(&app, &newer_map(), "test-2").await;
    let r = app.send(t.get("/assets/catalog/changes")).await.expect(200);
    assert_eq!(r.json["source"]["version"], "test-2");
    let data = r.json["data"].as_array().unwrap();
    let uris: Vec<&str> = data
        .iter()
        .map(|m| m["resource_uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["keeper", "pinned", "taker"]);
    let fields = |uri: &str| -> Vec<String> {
        let m = data.iter().find(|m| m["resource_uri"] == uri).unwrap();
        m["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(fields("taker").contains(&"input_cost_per_token".to_owned()));
    assert!(fields("taker").contains(&"max_input_tokens".to_owned()));
    assert!(
        !fields("pinned").contains(&"input_cost_per_token".to_owned()),
        "an override is never an upstream change"
    );
    // A page at a time, and only the models named.
    let p1 = app
        .send(t.get("/assets/catalog/changes?limit=2"))
        .await
        .expect(200);
    let uris = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["resource_uri"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(uris(&p1.json), ["keeper", "pinned"]);
    assert_eq!(p1.json["next_after"], "pinned");
    let p2 = app
        .send(t.get("/assets/catalog/changes?limit=2&after=pinned"))
        .await
        .expect(200);
    assert_eq!(uris(&p2.json), ["taker"]);
    assert_eq!(p2.json["next_after"], Value::Null);
    let named = app
        .send(t.get("/assets/catalog/changes?resource_uri=taker,nobody"))
        .await
        .expect(200);
    assert_eq!(uris(&named.json), ["taker"]);
    let too_many = (0..101)
        .map(|i| format!("m{i}"))
        .collect::<Vec<_>>()
        .join(",");
    app.send(t.get(&format!(
        "/assets/catalog/changes?resource_uri={too_many}&limit=0"
    )))
    .await
    .expect_error(422, "VALIDATION_ERROR");
    // The refresh changed no model.
    let p = app.send(t.get("/assets/models/pinned")).await.expect(200);
    assert_eq!(p.json["input_cost_per_token"], 0.000003);
    let before = app.send(t.get("/assets/models/taker")).await.expect(200);
    assert_eq!(
        before.json["input_cost_per_token"],
        bundled("gpt-4o")["input_cost_per_token"]
    );

    // Take, guarded by the ETag the list gave.
    let etag = before.header("etag").unwrap().to_owned();
    let taken = app
        .send(
            t.post("/assets/catalog/changes/taker", json!({"action": "take"}))
                .header("if-match", &etag),
        )
        .await
        .expect(200);
    assert_eq!(taken.json["input_cost_per_token"], 0.00001);
    assert_eq!(taken.json["max_input_tokens"], 256000);
    assert_eq!(
        taken.json["catalog"]["fields"]["input_cost_per_token"],
        "catalog"
    );
    // A stale ETag is a 412.
    app.send(
        t.post("/assets/catalog/changes/keeper", json!({"action": "keep"}))
            .header("if-match", &etag),
    )
    .await
    .expect_error(412, "PRECONDITION_FAILED");
    // Keep: the values stay, become the user's, and are not offered again.
    let kept = app
        .send(t.post(
            "/assets/catalog/changes/keeper",
            json!({"action": "keep", "fields": ["input_cost_per_token"]}),
        ))
        .await
        .expect(200);
    assert_eq!(
        kept.json["input_cost_per_token"],
        bundled("gpt-4o")["input_cost_per_token"]
    );
    assert_eq!(
        kept.json["catalog"]["fields"]["input_cost_per_token"],
        "override"
    );
    let r = app.send(t.get("/assets/catalog/changes")).await.expect(200);
    let left: Vec<(String, Vec<String>)> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["resource_uri"].as_str().unwrap().to_owned(),
                m["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["field"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert!(left.iter().all(|(uri, _)| uri != "taker"), "{left:?}");
    let keeper = left.iter().find(|(uri, _)| uri == "keeper").unwrap();
    assert!(!keeper.1.contains(&"input_cost_per_token".to_owned()));
    assert!(keeper.1.contains(&"max_input_tokens".to_owned()));
    // A field the catalog does not fill is a 422.
    app.send(t.post(
        "/assets/catalog/changes/keeper",
        json!({"action": "take", "fields": ["rpm"]}),
    ))
    .await
    .expect_error(422, "VALIDATION_ERROR");
    // Both are in the history.
    let h = app
        .send(t.get("/assets/models/taker/history"))
        .await
        .expect(200);
    assert_eq!(
        h.json["data"][0]["changes"]["input_cost_per_token"]["to"], 0.00001,
        "{}",
        h.json["data"][0]
    );
    // A new model is filled from the refreshed catalog.
    let fresh = app
        .send(t.post("/assets/models", model("fresh")))
        .await
        .expect(201);
    assert_eq!(fresh.json["input_cost_per_token"], 0.00001);
}

async fn the_catalog_is_searched_and_read(app: TestApp) {
    let t = app.tenant().await;
    let r = app
        .send(t.get("/assets/catalog?search=GPT-4O&provider=openai&capability=vision,function_calling&limit=5"))
        .await
        .expect(200);
    let data = r.json["data"].as_array().unwrap();
    assert!(!data.is_empty() && data.len() <= 5);
    for e in data {
        assert!(e["key"].as_str().unwrap().to_lowercase().contains("gpt-4o"));
        assert_eq!(e["provider"], "openai");
        let caps = e["capabilities"].as_array().unwrap();
        assert!(caps.contains(&json!("vision")) && caps.contains(&json!("function_calling")));
    }
    assert!(r.json["pagination"]["total_items"].as_u64().unwrap() >= data.len() as u64);
    assert_eq!(r.json["source"]["name"], "litellm");
    let e = app
        .send(t.get("/assets/catalog/azure%2Fgpt-4o"))
        .await
        .expect(200);
    assert_eq!(e.json["key"], "azure/gpt-4o");
    assert_eq!(e.json["provider"], "azure");
    // The entry a model string takes its values from, as a create finds it.
    let one = app
        .send(t.get("/assets/catalog?litellm_model=openai/gpt-4o"))
        .await
        .expect(200);
    assert_eq!(one.json["pagination"]["total_items"], 1);
    assert_eq!(one.json["data"][0]["key"], "gpt-4o");
    let az = app
        .send(t.get("/assets/catalog?litellm_model=azure/my-deployment&base_model=azure/gpt-4o"))
        .await
        .expect(200);
    assert_eq!(az.json["data"][0]["key"], "azure/gpt-4o");
    let none = app
        .send(t.get("/assets/catalog?litellm_model=nobody/nothing-at-all"))
        .await
        .expect(200);
    assert_eq!(none.json["pagination"]["total_items"], 0);
    app.send(t.get("/assets/catalog/no-such-model-anywhere"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    let bad = app
        .send(t.get("/assets/catalog?capability=telepathy&limit=0"))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    let mut locs = bad.error_locs();
    locs.sort();
    assert_eq!(locs, ["query.capability", "query.limit"]);
    // The catalog needs a credential like any read.
    app.send(t.get("/assets/catalog").without("authorization"))
        .await
        .expect(401);
}

on_both_backends!(
    a_model_created_bare_takes_the_catalogs_values,
    given_values_are_overrides_and_base_model_names_the_entry,
    bad_catalog_values_are_422_naming_each_field,
    a_round_trip_keeps_each_fields_provenance,
    overrides_survive_a_refresh_and_upstream_changes_are_taken_or_kept,
    the_catalog_is_searched_and_read,
);
