//! `POST /assets/models:batch` over HTTP, on both backends: per-operation results, atomic and
//! not, If-Match per operation, audit events, tenancy, roles, and refused batches.

mod common;

use axum::http::Method;
use common::*;
use modelreg_core::auth::Role;
use serde_json::{Value, json};

const BATCH: &str = "/assets/models:batch";

fn batch(t: &Tenant, atomic: bool, operations: Vec<Value>) -> Req {
    let uri = if atomic {
        format!("{BATCH}?atomic=true")
    } else {
        BATCH.to_owned()
    };
    t.post(&uri, json!({ "operations": operations }))
}

fn create(uri: &str) -> Value {
    let mut body = model(uri);
    body["resource_uri"] = json!(uri);
    json!({"op": "create", "body": body})
}

/// Creates `uri` in `t`'s project, as a single request.
async fn add(app: &TestApp, t: &Tenant, uri: &str) -> Resp {
    app.send(t.post("/assets/models", create(uri)["body"].clone()))
        .await
        .expect(201)
}

/// `n` creates of `m-0`, `m-1`, …, but the one at `bad` creates `taken`.
fn creates_taking(taken: &str, n: usize, bad: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            if i == bad {
                create(taken)
            } else {
                create(&format!("m-{i}"))
            }
        })
        .collect()
}

fn statuses(r: &Resp) -> Vec<u64> {
    r.json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect()
}

/// The project's model count, as the list reports it.
async fn count(app: &TestApp, t: &Tenant) -> u64 {
    let r = app.send(t.get("/assets/models?limit=1")).await.expect(200);
    r.json["pagination"]["total_items"].as_u64().unwrap()
}

/// The organization's audit events, counted.
async fn audit_events(app: &TestApp, t: &Tenant) -> u64 {
    let r = app
        .send(Req::new(Method::GET, "/assets/audit?limit=1").auth(&t.token))
        .await
        .expect(200);
    r.json["pagination"]["total_items"].as_u64().unwrap()
}

async fn each_operation_gets_its_result_in_order(app: TestApp) {
    let t = app.tenant().await;
    let a = add(&app, &t, "a").await;
    let etag_a = a.header("etag").unwrap().to_owned();
    for uri in ["b", "c", "d", "e"] {
        add(&app, &t, uri).await;
    }
    app.send(t.put("/assets/models/d", json!({"tags": ["keep", "drop"]})))
        .await
        .expect(200);
    let r = app
        .send(batch(
            &t,
            false,
            vec![
                create("new-one"),
                json!({"op": "create", "body": model("Generated Name")}),
                json!({"op": "update", "resource_uri": "a", "if_match": etag_a,
                       "body": {"rpm": 7, "credentials": {"api_key": "sk-BATCH-SECRET"}}}),
                json!({"op": "set_status", "resource_uri": "b", "status": "DISABLED",
                       "status_message": "retired"}),
                json!({"op": "add_tags", "resource_uri": "c", "tags": ["x", "y"]}),
                json!({"op": "remove_tags", "resource_uri": "d", "tags": ["drop"]}),
                json!({"op": "delete", "resource_uri": "e"}),
                json!({"op": "update", "resource_uri": "nope", "body": {"rpm": 1}}),
                json!({"op": "create", "body": {"name": "", "litellm_model": "openai/x"}}),
            ],
        ))
        .await
        .expect(200);
    assert_eq!(statuses(&r), [201, 201, 200, 200, 200, 200, 204, 404, 422]);
    let results = r.json["results"].as_array().unwrap();
    for (i, x) in results.iter().enumerate() {
        assert_eq!(x["index"], i);
    }
    assert_eq!(results[0]["op"], "create");
    assert_eq!(results[0]["resource_uri"], "new-one");
    assert_eq!(results[1]["resource_uri"], "generated-name");
    assert_eq!(results[2]["model"]["rpm"], 7);
    assert_eq!(results[2]["model"]["credential_fields"], json!(["api_key"]));
    assert_ne!(results[2]["etag"], json!(etag_a));
    assert_eq!(results[3]["op"], "set_status");
    assert_eq!(results[3]["model"]["status"], "DISABLED");
    assert_eq!(results[3]["model"]["status_message"], "retired");
    assert_eq!(results[4]["model"]["tags"], json!(["x", "y"]));
    assert_eq!(results[5]["model"]["tags"], json!(["keep"]));
    assert_eq!(results[6]["resource_uri"], "e");
    assert!(results[6].get("model").is_none());
    assert_eq!(results[7]["error"]["code"], "RESOURCE_NOT_FOUND");
    assert_eq!(results[8]["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(
        results[8]["detail"][0]["loc"],
        json!(["body", "operations", "8", "body", "name"])
    );
    assert_eq!(r.json["succeeded"], 7);
    assert_eq!(r.json["failed"], 2);
    assert_eq!(r.json["rolled_back"], 0);
    assert!(!r.text.contains("sk-BATCH-SECRET"), "a secret was returned");

    // What the results say is what is stored.
    let etag = results[2]["etag"].as_str().unwrap();
    let got = app.send(t.get("/assets/models/a")).await.expect(200);
    assert_eq!(got.header("etag"), Some(etag));
    assert_eq!(got.json["rpm"], 7);
    app.send(t.get("/assets/models/e"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    app.send(t.get("/assets/models/generated-name"))
        .await
        .expect(200);
    assert_eq!(count(&app, &t).await, 6);
}

/// 1,000 creates, the 700th of which takes a resource_uri the project already has: the
/// database refuses it after 699 rows went in, and all of them are undone.
async fn atomic_batch_leaves_nothing_when_operation_700_fails(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "taken").await;
    let events = audit_events(&app, &t).await;
    let r = app
        .send(batch(&t, true, creates_taking("taken", 1000, 699)))
        .await
        .expect(200);
    let s = statuses(&r);
    assert_eq!(s[699], 409, "{}", r.json["results"][699]);
    assert_eq!(
        r.json["results"][699]["error"]["code"],
        "RESOURCE_ALREADY_EXISTS"
    );
    assert!(s.iter().enumerate().all(|(i, s)| i == 699 || *s == 424));
    let rolled = &r.json["results"][0]["error"];
    assert_eq!(rolled["code"], "ROLLED_BACK");
    assert!(
        rolled["message"]
            .as_str()
            .unwrap()
            .contains("operation 699")
    );
    assert_eq!(r.json["succeeded"], 0);
    assert_eq!(r.json["failed"], 1);
    assert_eq!(r.json["rolled_back"], 999);
    assert_eq!(count(&app, &t).await, 1, "nothing of the batch is stored");
    app.send(t.get("/assets/models/m-0"))
        .await
        .expect_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(audit_events(&app, &t).await, events, "no audit event kept");

    // The same batch without the bad operation stores all 1,000, each with its event.
    let ops: Vec<Value> = (0..1000).map(|i| create(&format!("m-{i}"))).collect();
    let r = app.send(batch(&t, true, ops)).await.expect(200);
    assert_eq!(r.json["succeeded"], 1000);
    assert_eq!(count(&app, &t).await, 1001);
    assert_eq!(audit_events(&app, &t).await, events + 1000);
}

/// An atomic batch whose failure is found before anything is written (a missing model, a
/// stale etag) stores nothing either.
async fn atomic_batch_refused_before_writing(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "here").await;
    let r = app
        .send(batch(
            &t,
            true,
            vec![
                create("first"),
                json!({"op": "update", "resource_uri": "here", "if_match": "\"stale\"",
                       "body": {"rpm": 3}}),
                create("third"),
            ],
        ))
        .await
        .expect(200);
    assert_eq!(statuses(&r), [424, 412, 424]);
    assert_eq!(count(&app, &t).await, 1);
}

async fn non_atomic_batch_keeps_the_good_operations(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "taken").await;
    let events = audit_events(&app, &t).await;
    let r = app
        .send(batch(&t, false, creates_taking("taken", 10, 5)))
        .await
        .expect(200);
    assert_eq!(
        statuses(&r),
        [201, 201, 201, 201, 201, 409, 201, 201, 201, 201]
    );
    assert_eq!(r.json["succeeded"], 9);
    assert_eq!(r.json["failed"], 1);
    assert_eq!(count(&app, &t).await, 10);
    assert_eq!(audit_events(&app, &t).await, events + 9);
    app.send(t.get("/assets/models/m-9")).await.expect(200);
}

async fn if_match_mismatch_fails_only_that_operation(app: TestApp) {
    let t = app.tenant().await;
    for uri in ["one", "two", "three"] {
        add(&app, &t, uri).await;
    }
    let two = app.send(t.get("/assets/models/two")).await.expect(200);
    let etag_two = two.header("etag").unwrap().to_owned();
    let r = app
        .send(batch(
            &t,
            false,
            vec![
                json!({"op": "update", "resource_uri": "one", "if_match": "\"0000\"",
                       "body": {"rpm": 1}}),
                json!({"op": "update", "resource_uri": "two", "if_match": etag_two,
                       "body": {"rpm": 2}}),
                json!({"op": "delete", "resource_uri": "three", "if_match": "\"0000\""}),
            ],
        ))
        .await
        .expect(200);
    assert_eq!(statuses(&r), [412, 200, 412]);
    assert_eq!(r.json["results"][0]["error"]["code"], "PRECONDITION_FAILED");
    let one = app.send(t.get("/assets/models/one")).await.expect(200);
    assert_eq!(one.json["rpm"], Value::Null);
    app.send(t.get("/assets/models/three")).await.expect(200);
    // A malformed if_match is the request's fault: the whole batch is refused.
    app.send(batch(
        &t,
        false,
        vec![json!({"op": "delete", "resource_uri": "one", "if_match": "no-quotes"})],
    ))
    .await
    .expect_error(422, "VALIDATION_ERROR");
    app.send(t.get("/assets/models/one")).await.expect(200);
}

async fn every_change_writes_its_audit_event(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "audited").await;
    add(&app, &t, "gone").await;
    let before = audit_events(&app, &t).await;
    let r = app
        .send(
            batch(
                &t,
                false,
                vec![
                    create("born"),
                    json!({"op": "set_status", "resource_uri": "audited", "status": "DEPRECATED"}),
                    json!({"op": "add_tags", "resource_uri": "born", "tags": ["t"]}),
                    json!({"op": "delete", "resource_uri": "gone"}),
                    // Changes nothing, so writes no event.
                    json!({"op": "remove_tags", "resource_uri": "audited", "tags": ["absent"]}),
                ],
            )
            .header("x-request-id", "req-batch-1"),
        )
        .await;
    // `born` is created and changed in one batch: a model named twice is refused.
    r.expect_error(422, "VALIDATION_ERROR");
    let r = app
        .send(
            batch(
                &t,
                false,
                vec![
                    create("born"),
                    json!({"op": "set_status", "resource_uri": "audited", "status": "DEPRECATED"}),
                    json!({"op": "delete", "resource_uri": "gone"}),
                    json!({"op": "remove_tags", "resource_uri": "audited-2", "tags": ["absent"]}),
                ],
            )
            .header("x-request-id", "req-batch-1"),
        )
        .await
        .expect(200);
    assert_eq!(statuses(&r), [201, 200, 204, 404]);
    assert_eq!(audit_events(&app, &t).await, before + 3);
    let history = |uri: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            let h = app
                .send(t.get(&format!("/assets/models/{uri}/history")))
                .await
                .expect(200);
            h.json["data"].as_array().unwrap().clone()
        }
    };
    let born = history("born").await;
    assert_eq!(born[0]["action"], "model.create");
    assert_eq!(born[0]["request_id"], "req-batch-1");
    let audited = history("audited").await;
    assert_eq!(audited[0]["action"], "model.update");
    assert_eq!(
        audited[0]["changes"]["status"],
        json!({"from": "PENDING", "to": "DEPRECATED"})
    );
    assert!(
        audited[0]["principal"]
            .as_str()
            .unwrap()
            .starts_with("service:")
    );
    let gone = history("gone").await;
    assert_eq!(gone[0]["action"], "model.delete");
    // The chain still verifies with the batch's events in it.
    let r = app
        .send(t.post("/assets/models", create("after")["body"].clone()))
        .await;
    r.expect(201);
}

/// An operation that names another project's model answers 404 for that operation, and
/// changes nothing there.
async fn another_projects_model_is_not_found(app: TestApp) {
    let t = app.tenant().await;
    let other = Tenant {
        project: unique("other"),
        ..t.clone()
    };
    let stranger = app.tenant().await;
    for owner in [&other, &stranger] {
        add(&app, owner, "theirs").await;
    }
    let id = app
        .send(stranger.get("/assets/models/theirs"))
        .await
        .expect(200)
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .send(batch(
            &t,
            false,
            vec![
                json!({"op": "update", "resource_uri": "theirs", "body": {"rpm": 9}}),
                json!({"op": "delete", "resource_uri": id}),
                json!({"op": "set_status", "resource_uri": "theirs-too", "status": "DISABLED"}),
            ],
        ))
        .await
        .expect(200);
    assert_eq!(statuses(&r), [404, 404, 404]);
    for owner in [&other, &stranger] {
        let m = app
            .send(owner.get("/assets/models/theirs"))
            .await
            .expect(200);
        assert_eq!(m.json["rpm"], Value::Null);
    }
}

async fn roles_are_those_of_the_single_endpoints(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "kept").await;
    for role in [Role::Viewer, Role::Operator] {
        let token = app.token(&t.org, "*", role).await;
        let as_role = Tenant { token, ..t.clone() };
        app.send(batch(&as_role, false, vec![create("by-viewer")]))
            .await
            .expect_error(403, "INSUFFICIENT_PERMISSIONS");
        // Even a malformed batch is refused for the role first.
        app.send(as_role.post(BATCH, json!({"nonsense": true})))
            .await
            .expect_error(403, "INSUFFICIENT_PERMISSIONS");
    }
    let member = Tenant {
        token: app.token(&t.org, "*", Role::Member).await,
        ..t.clone()
    };
    let r = app
        .send(batch(
            &member,
            false,
            vec![
                create("by-member"),
                json!({"op": "delete", "resource_uri": "kept"}),
            ],
        ))
        .await
        .expect(200);
    assert_eq!(statuses(&r), [201, 403]);
    assert_eq!(
        r.json["results"][1]["error"]["code"],
        "INSUFFICIENT_PERMISSIONS"
    );
    app.send(t.get("/assets/models/kept")).await.expect(200);
    assert_eq!(count(&app, &t).await, 2);
}

async fn malformed_batches_are_refused_whole(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "existing").await;
    let too_many: Vec<Value> = (0..1001).map(|i| create(&format!("x-{i}"))).collect();
    let cases: Vec<(Req, u16, &str)> = vec![
        (batch(&t, false, too_many), 422, "body.operations"),
        (batch(&t, false, vec![]), 422, "body.operations"),
        (
            batch(
                &t,
                false,
                vec![json!({"op": "explode", "resource_uri": "existing"})],
            ),
            422,
            "",
        ),
        (
            batch(&t, false, vec![json!({"resource_uri": "existing"})]),
            422,
            "",
        ),
        (batch(&t, false, vec![json!({"op": "delete"})]), 422, ""),
        (
            batch(
                &t,
                false,
                vec![json!({"op": "delete", "resource_uri": "existing", "extra": 1})],
            ),
            422,
            "",
        ),
        (
            batch(
                &t,
                false,
                vec![
                    create("dup"),
                    json!({"op": "delete", "resource_uri": "dup"}),
                ],
            ),
            422,
            "body.operations.1.resource_uri",
        ),
        (
            batch(
                &t,
                false,
                vec![json!({"op": "delete", "resource_uri": "Not A Uri"})],
            ),
            422,
            "body.operations.0.resource_uri",
        ),
        (t.post(BATCH, json!([1, 2])), 422, ""),
        (t.post(BATCH, json!({"operations": "all"})), 422, ""),
        (t.post(BATCH, json!({"operations": [], "more": 1})), 422, ""),
        (
            t.post(
                &format!("{BATCH}?atomic=maybe"),
                json!({"operations": [create("q")]}),
            ),
            422,
            "query.atomic",
        ),
    ];
    for (req, status, loc) in cases {
        let r = app.send(req).await.expect_error(status, "VALIDATION_ERROR");
        if !loc.is_empty() {
            assert!(r.error_locs().contains(&loc.to_owned()), "{}", r.text);
        }
    }
    let r = app
        .send(
            t.post(BATCH, json!({}))
                .raw("application/json", "{\"operations\": ["),
        )
        .await;
    r.expect_error(400, "INVALID_REQUEST");
    let r = app
        .send(t.post(BATCH, json!({})).raw("text/plain", "{}"))
        .await;
    r.expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    // The same model by its uri and by its id is one model named twice.
    let id = app
        .send(t.get("/assets/models/existing"))
        .await
        .expect(200)
        .json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(batch(
        &t,
        false,
        vec![
            json!({"op": "set_status", "resource_uri": "existing", "status": "ACTIVE"}),
            json!({"op": "delete", "resource_uri": id}),
        ],
    ))
    .await
    .expect_error(422, "VALIDATION_ERROR");
    assert_eq!(
        count(&app, &t).await,
        1,
        "nothing stored by a refused batch"
    );
    let m = app.send(t.get("/assets/models/existing")).await.expect(200);
    assert_eq!(m.json["status"], "PENDING");
}

on_both_backends!(
    each_operation_gets_its_result_in_order,
    atomic_batch_leaves_nothing_when_operation_700_fails,
    atomic_batch_refused_before_writing,
    non_atomic_batch_keeps_the_good_operations,
    if_match_mismatch_fails_only_that_operation,
    every_change_writes_its_audit_event,
    another_projects_model_is_not_found,
    roles_are_those_of_the_single_endpoints,
    malformed_batches_are_refused_whole,
);

/// Creates with generated resource_uris, in batches and one at a time at once, on the same
/// names: a batch takes every uri lock it needs before its first write (which takes the
/// project's count row), so it never waits for a single create that holds a uri's lock and
/// waits for that row; and every model gets a uri of its own.
async fn batches_and_single_creates_of_the_same_names_do_not_deadlock(app: TestApp) {
    let t = app.tenant().await;
    let ops: Vec<Value> = (0..50)
        .map(|i| json!({"op": "create", "body": model(&format!("Name {i}"))}))
        .collect();
    let batches = (0..3).map(|_| app.send(batch(&t, false, ops.clone())));
    let singles =
        (0..20).map(|i| app.send(t.post("/assets/models", model(&format!("Name {}", 49 - i)))));
    let (batches, singles) = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        futures::future::join(
            futures::future::join_all(batches),
            futures::future::join_all(singles),
        ),
    )
    .await
    .expect("no deadlock");
    for r in batches {
        assert_eq!(r.expect(200).json["succeeded"], 50);
    }
    for r in singles {
        r.expect(201);
    }
    assert_eq!(count(&app, &t).await, 170);
}

on_both_backends!(batches_and_single_creates_of_the_same_names_do_not_deadlock);

/// Many creates of one name in a batch take `name`, `name-2`, `name-3`, … in order, as single
/// creates would, and a single create after them takes the next.
async fn creates_of_one_name_take_the_next_suffixes(app: TestApp) {
    let t = app.tenant().await;
    add(&app, &t, "same-3").await;
    let ops: Vec<Value> = (0..300)
        .map(|_| json!({"op": "create", "body": model("Same")}))
        .collect();
    let r = app.send(batch(&t, true, ops)).await.expect(200);
    let uris: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["resource_uri"].as_str().unwrap())
        .collect();
    let mut expected = vec!["same".to_owned(), "same-2".to_owned()];
    expected.extend((4..=301).map(|n| format!("same-{n}")));
    assert_eq!(uris, expected);
    let one = app
        .send(t.post("/assets/models", model("Same")))
        .await
        .expect(201);
    assert_eq!(one.json["resource_uri"], "same-302");
}

on_both_backends!(creates_of_one_name_take_the_next_suffixes);
