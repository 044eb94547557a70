//! `GET /assets/models`: pagination, sorting, filters and the keyset cursor (SPEC §2.1).

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

const SORT_FIELDS: [&str; 8] = [
    "name",
    "resource_uri",
    "litellm_model",
    "provider",
    "status",
    "mode",
    "created_at",
    "updated_at",
];

/// Lists everything matching `query` by following page numbers.
async fn all_pages(app: &TestApp, t: &Tenant, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let r = app
            .send(t.get(&format!("/assets/models?limit=100&page={page}&{query}")))
            .await
            .expect(200);
        out.extend(r.json["data"].as_array().unwrap().iter().cloned());
        match r.json["pagination"]["next_page"].as_u64() {
            Some(n) => page = n,
            None => return out,
        }
    }
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The value the store sorts by: the field as text, null as "".
fn key(m: &Value, field: &str) -> String {
    m[field].as_str().unwrap_or("").to_owned()
}

/// The expected order of `list` under `sort` (pairs of field and descending), with `id` in the
/// direction of the last key as the final tiebreaker.
fn expected_order(mut list: Vec<Value>, sort: &[(&str, bool)]) -> Vec<String> {
    let id_desc = sort.last().map(|s| s.1).unwrap_or(true);
    list.sort_by(|a, b| {
        for (field, desc) in sort {
            let o = key(a, field).cmp(&key(b, field));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        let o = key(a, "id").cmp(&key(b, "id"));
        if id_desc { o.reverse() } else { o }
    });
    ids(&list)
}

/// A varied set of models: names with mixed case and ties, null and set providers and modes,
/// every status, tags, two creators, and updates that reorder updated_at.
async fn seed(app: &TestApp, t: &Tenant) -> Vec<Value> {
    let other = app
        .token(&t.org, &t.project, modelreg_core::auth::Role::Member)
        .await;
    let specs = [
        (
            "alpha",
            "openai/gpt-4o",
            Some("chat"),
            vec!["prod", "eu"],
            "First model",
        ),
        (
            "Beta",
            "anthropic/claude-3",
            Some("chat"),
            vec!["prod"],
            "Second; 100% reliable",
        ),
        ("gamma", "ollama/llama3", None, vec![], "local_only model"),
        (
            "alpha",
            "azure/deploy-1",
            Some("embedding"),
            vec!["eu"],
            "Éclair embeddings",
        ),
        (
            "Delta",
            "gemini/gemini-pro",
            Some("completion"),
            vec!["prod", "eu", "x"],
            "",
        ),
        (
            "epsilon",
            "local-thing",
            Some("image_generation"),
            vec!["x"],
            "no provider",
        ),
        (
            "Zeta",
            "groq/llama3-70b",
            Some("audio_transcription"),
            vec!["prod"],
            "FAST",
        ),
        ("eta", "mistral/mistral-large", None, vec!["eu"], "European"),
        (
            "theta",
            "openai/text-embedding-3",
            Some("embedding"),
            vec![],
            "vectors",
        ),
        (
            "Iota",
            "deepseek/deepseek-chat",
            Some("chat"),
            vec!["prod", "x"],
            "cheap",
        ),
    ];
    for (i, (name, lm, mode, tags, desc)) in specs.iter().enumerate() {
        let mut body = json!({
            "name": name, "litellm_model": lm, "tags": tags, "description": desc,
            "credentials": {"api_key": "k"}
        });
        if let Some(m) = mode {
            body["mode"] = json!(m);
        }
        let token = if i % 3 == 0 { &other } else { &t.token };
        let req = t.post("/assets/models", body).auth(token);
        app.send(req).await.expect(201);
    }
    // Statuses, and updated_at in another order than created_at.
    let all = all_pages(app, t, "").await;
    let statuses = ["ACTIVE", "ERROR", "DEPRECATED", "DISABLED", "PENDING"];
    for (i, m) in all.iter().enumerate().rev() {
        let uri = m["resource_uri"].as_str().unwrap();
        app.send(t.patch(
            &format!("/assets/models/{uri}"),
            json!({"status": statuses[i % 5]}),
        ))
        .await
        .expect(200);
    }
    all_pages(app, t, "").await
}

async fn empty_list(app: TestApp) {
    let t = app.tenant().await;
    let r = app.send(t.get("/assets/models")).await.expect(200);
    assert_eq!(
        r.json,
        json!({"data": [], "pagination": {"page": 1, "limit": 20, "total_items": 0,
               "total_pages": 0, "next_page": null, "prev_page": null, "next_cursor": null}})
    );
    let r = app.send(t.get("/assets/models?page=3")).await.expect(200);
    assert_eq!(r.json["pagination"]["total_pages"], 0);
    assert_eq!(r.json["pagination"]["next_page"], Value::Null);
}

async fn page_arithmetic_at_the_edges(app: TestApp) {
    let t = app.tenant().await;
    for i in 0..40 {
        app.send(t.post("/assets/models", model(&format!("m{i}"))))
            .await
            .expect(201);
    }
    let p = |q: &str| app.send(t.get(&format!("/assets/models?{q}")));
    let r = p("limit=20").await.expect(200);
    let pg = &r.json["pagination"];
    assert_eq!(
        (
            pg["page"].as_u64(),
            pg["total_items"].as_u64(),
            pg["total_pages"].as_u64()
        ),
        (Some(1), Some(40), Some(2))
    );
    assert_eq!(
        (pg["next_page"].clone(), pg["prev_page"].clone()),
        (json!(2), Value::Null)
    );
    assert!(pg["next_cursor"].is_string());
    assert_eq!(r.json["data"].as_array().unwrap().len(), 20);

    let r = p("limit=20&page=2").await.expect(200);
    let pg = &r.json["pagination"];
    assert_eq!(
        (pg["next_page"].clone(), pg["prev_page"].clone()),
        (Value::Null, json!(1))
    );
    assert_eq!(
        pg["next_cursor"],
        Value::Null,
        "exact multiple: nothing follows"
    );
    assert_eq!(r.json["data"].as_array().unwrap().len(), 20);

    let r = p("limit=20&page=7").await.expect(200);
    let pg = &r.json["pagination"];
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(
        (pg["total_items"].as_u64(), pg["total_pages"].as_u64()),
        (Some(40), Some(2))
    );
    assert_eq!(
        (pg["next_page"].clone(), pg["prev_page"].clone()),
        (Value::Null, json!(2))
    );

    let r = p("limit=7&page=6").await.expect(200);
    let pg = &r.json["pagination"];
    assert_eq!(pg["total_pages"], 6);
    assert_eq!(r.json["data"].as_array().unwrap().len(), 5);
    assert_eq!(
        (pg["next_page"].clone(), pg["prev_page"].clone()),
        (Value::Null, json!(5))
    );

    let r = p("limit=100").await.expect(200);
    assert_eq!(r.json["data"].as_array().unwrap().len(), 40);
    assert_eq!(r.json["pagination"]["total_pages"], 1);

    // Pages partition the list: no duplicate, no gap.
    let mut seen = Vec::new();
    for page in 1..=6 {
        let r = p(&format!("limit=7&page={page}")).await.expect(200);
        seen.extend(ids(r.json["data"].as_array().unwrap()));
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (40, 40));
}

async fn default_order_is_newest_first(app: TestApp) {
    let t = app.tenant().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let r = app
            .send(t.post("/assets/models", model(&format!("n{i}"))))
            .await
            .expect(201);
        created.push(r.json["id"].as_str().unwrap().to_owned());
    }
    created.reverse();
    let r = app.send(t.get("/assets/models")).await.expect(200);
    assert_eq!(ids(r.json["data"].as_array().unwrap()), created);
}

async fn every_sort_field_in_both_directions(app: TestApp) {
    let t = app.tenant().await;
    let all = seed(&app, &t).await;
    for field in SORT_FIELDS {
        for (order, desc) in [("asc", false), ("desc", true)] {
            let got = all_pages(&app, &t, &format!("sort={field}:{order}")).await;
            assert_eq!(
                ids(&got),
                expected_order(all.clone(), &[(field, desc)]),
                "sort={field}:{order}"
            );
        }
        // Order defaults to asc.
        let got = all_pages(&app, &t, &format!("sort={field}")).await;
        assert_eq!(ids(&got), expected_order(all.clone(), &[(field, false)]));
    }
    let got = all_pages(&app, &t, "sort=name:asc,created_at:desc").await;
    assert_eq!(
        ids(&got),
        expected_order(all.clone(), &[("name", false), ("created_at", true)])
    );
    let got = all_pages(&app, &t, "sort=mode:desc,provider:asc,name:desc").await;
    assert_eq!(
        ids(&got),
        expected_order(all, &[("mode", true), ("provider", false), ("name", true)])
    );
}

/// A query-string filter and the predicate it must be equivalent to.
type Filter = Box<dyn Fn(&Value) -> bool>;

async fn sort_combined_with_every_filter(app: TestApp) {
    let t = app.tenant().await;
    let all = seed(&app, &t).await;
    let member = all.iter().find(|m| m["name"] == "alpha").unwrap()["created_by"]
        .as_str()
        .unwrap()
        .to_owned();
    let has_tags = |m: &Value, want: &[&str]| {
        want.iter()
            .all(|w| m["tags"].as_array().unwrap().iter().any(|t| t == w))
    };
    let search = |m: &Value, needle: &str| {
        let hay = |f: &str| m[f].as_str().unwrap_or("").to_lowercase();
        hay("name").contains(needle) || hay("description").contains(needle)
    };
    let filters: Vec<(String, Filter)> = vec![
        ("search=ALPHA".into(), Box::new(move |m| search(m, "alpha"))),
        ("search=model".into(), Box::new(move |m| search(m, "model"))),
        (
            "status=ACTIVE".into(),
            Box::new(|m| m["status"] == "ACTIVE"),
        ),
        ("mode=chat".into(), Box::new(|m| m["mode"] == "chat")),
        (
            "tags=prod".into(),
            Box::new(move |m| has_tags(m, &["prod"])),
        ),
        (
            "tags=prod,eu".into(),
            Box::new(move |m| has_tags(m, &["prod", "eu"])),
        ),
        (format!("created_by={member}"), {
            let member = member.clone();
            Box::new(move |m| m["created_by"] == member.as_str())
        }),
        (format!("owner_id={member}"), {
            let member = member.clone();
            Box::new(move |m| m["created_by"] == member.as_str())
        }),
        (
            "provider=openai".into(),
            Box::new(|m| m["provider"] == "openai"),
        ),
        (
            "status=DISABLED&mode=embedding".into(),
            Box::new(|m| m["status"] == "DISABLED" && m["mode"] == "embedding"),
        ),
    ];
    let mut non_empty = 0;
    for (filter, pred) in &filters {
        let matching: Vec<Value> = all.iter().filter(|m| pred(m)).cloned().collect();
        non_empty += usize::from(!matching.is_empty());
        for field in SORT_FIELDS {
            for (order, desc) in [("asc", false), ("desc", true)] {
                let q = format!("{filter}&sort={field}:{order}");
                let got = all_pages(&app, &t, &q).await;
                assert_eq!(
                    ids(&got),
                    expected_order(matching.clone(), &[(field, desc)]),
                    "{q}"
                );
            }
        }
        let r = app
            .send(t.get(&format!("/assets/models?{filter}&limit=3")))
            .await
            .expect(200);
        assert_eq!(
            r.json["pagination"]["total_items"],
            matching.len(),
            "{filter}"
        );
    }
    assert!(
        non_empty >= 8,
        "the seed should make most filters match something"
    );
}

async fn search_is_a_case_insensitive_substring_of_name_or_description(app: TestApp) {
    let t = app.tenant().await;
    let mk = |name: &str, desc: &str| {
        let mut b = model(name);
        b["description"] = json!(desc);
        b
    };
    for (n, d) in [
        ("GPT Turbo", "fast"),
        ("Other", "has TURBO inside"),
        ("100% sure", "literal percent"),
        ("under_score", "literal underscore"),
        ("ÉCLAIR", "unicode"),
        ("plain", "nothing"),
    ] {
        app.send(t.post("/assets/models", mk(n, d)))
            .await
            .expect(201);
    }
    let names = |q: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            let r = app
                .send(t.get(&format!("/assets/models?sort=name:asc&search={q}")))
                .await
                .expect(200);
            r.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("turbo").await, ["GPT Turbo", "Other"]);
    assert_eq!(names("%25").await, ["100% sure"], "% is literal");
    assert_eq!(names("_").await, ["under_score"], "_ is literal");
    assert_eq!(
        names("%C3%A9clair").await,
        ["ÉCLAIR"],
        "Unicode case folding"
    );
    assert_eq!(names("nomatch").await, Vec::<String>::new());
    assert_eq!(
        names("").await.len(),
        6,
        "an empty search matches everything"
    );
}

async fn cursor_pages_through_250_models_without_duplicate_or_gap(app: TestApp) {
    let t = app.tenant().await;
    for i in 0..250 {
        // Ties on name, so the id tiebreaker matters.
        app.send(t.post("/assets/models", model(&format!("model {}", i % 7))))
            .await
            .expect(201);
    }
    for sort in [
        "",
        "sort=name:asc",
        "sort=name:desc,resource_uri:asc",
        "sort=updated_at:asc",
    ] {
        let expected = ids(&all_pages(&app, &t, sort).await);
        assert_eq!(expected.len(), 250);
        let mut got = Vec::new();
        let mut url = format!("/assets/models?limit=23&{sort}");
        loop {
            let r = app.send(t.get(&url)).await.expect(200);
            let pg = &r.json["pagination"];
            assert_eq!(pg["total_items"], 250);
            // Page mode first, then cursor mode, which has no page number.
            assert_eq!(pg["page"].is_null(), url.contains("cursor="));
            got.extend(ids(r.json["data"].as_array().unwrap()));
            match pg["next_cursor"].as_str() {
                // The cursor alone carries the sort.
                Some(c) => url = format!("/assets/models?limit=23&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(got, expected, "sort {sort:?}");
    }
}

async fn cursor_paging_while_models_are_created_misses_and_repeats_nothing(app: TestApp) {
    let t = app.tenant().await;
    let mut originals = HashSet::new();
    for i in 0..250 {
        let r = app
            .send(t.post("/assets/models", model(&format!("orig {i}"))))
            .await
            .expect(201);
        originals.insert(r.json["id"].as_str().unwrap().to_owned());
    }
    for sort in ["sort=created_at:desc", "sort=name:asc"] {
        let mut seen = Vec::new();
        let mut url = format!("/assets/models?limit=20&{sort}");
        let mut n = 0;
        loop {
            let r = app.send(t.get(&url)).await.expect(200);
            seen.extend(ids(r.json["data"].as_array().unwrap()));
            // Writers keep adding models between pages.
            for _ in 0..3 {
                n += 1;
                app.send(t.post("/assets/models", model(&format!("new {sort} {n}"))))
                    .await
                    .expect(201);
            }
            match r.json["pagination"]["next_cursor"].as_str() {
                Some(c) => url = format!("/assets/models?limit=20&cursor={c}"),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "a model was listed twice ({sort})"
        );
        assert!(
            originals.is_subset(&unique),
            "a model that existed throughout was skipped ({sort})"
        );
        if sort == "sort=created_at:desc" {
            assert_eq!(unique, originals, "newer models sort before the cursor");
        }
    }
}

async fn cursor_rules(app: TestApp) {
    let t = app.tenant().await;
    for i in 0..5 {
        let mut b = model(&format!("c{i}"));
        b["tags"] = json!(["t"]);
        app.send(t.post("/assets/models", b)).await.expect(201);
    }
    let r = app
        .send(t.get("/assets/models?limit=2&sort=name:asc&tags=t"))
        .await
        .expect(200);
    let c = r.json["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Same parameters again: fine. Cursor alone: fine, and page is ignored.
    let a = app
        .send(t.get(&format!(
            "/assets/models?limit=2&sort=name:asc&tags=t&cursor={c}"
        )))
        .await
        .expect(200);
    let b = app
        .send(t.get(&format!("/assets/models?limit=2&page=99&cursor={c}")))
        .await
        .expect(200);
    assert_eq!(a.json["data"], b.json["data"]);
    assert_eq!(b.json["data"][0]["name"], "c2");
    assert_eq!(b.json["pagination"]["page"], Value::Null);
    // Another sort or filter beside the cursor is refused.
    for q in ["sort=name:desc", "tags=other", "status=ACTIVE"] {
        let r = app
            .send(t.get(&format!("/assets/models?{q}&cursor={c}")))
            .await
            .expect_error(422, "VALIDATION_ERROR");
        assert_eq!(r.error_locs(), ["query.cursor"], "{q}");
    }
    for bad in ["abc", "eyJ2IjoxfQ", "%00"] {
        app.send(t.get(&format!("/assets/models?cursor={bad}")))
            .await
            .expect_error(422, "VALIDATION_ERROR");
    }
}

/// A cursor is refused (422, on `query.cursor`) when it was not issued by this server or was
/// changed in any way, whatever the sort field and whatever the value put in it: one whose
/// sort value is not of the column's type (`"not-a-time"` for `created_at`) was a 500 on
/// PostgreSQL.
async fn a_forged_or_tampered_cursor_is_refused_on_every_field(app: TestApp) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let t = app.tenant().await;
    for i in 0..3 {
        app.send(t.post("/assets/models", model(&format!("f{i}"))))
            .await
            .expect(201);
    }
    // The time fields first: their forged values were the 500.
    let fields = ["created_at", "updated_at"]
        .into_iter()
        .chain(SORT_FIELDS.into_iter().filter(|f| !f.ends_with("_at")));
    for field in fields {
        let r = app
            .send(t.get(&format!("/assets/models?limit=1&sort={field}:asc")))
            .await
            .expect(200);
        let cursor = r.json["pagination"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        // The untouched cursor works.
        app.send(t.get(&format!("/assets/models?cursor={cursor}")))
            .await
            .expect(200);
        // A cursor is `payload.mac`: forgeries keep the mac of the real payload, or have none.
        let (payload, mac) = cursor.split_once('.').expect("a sealed cursor");
        let doc: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let mut forgeries: Vec<Value> = Vec::new();
        for value in [
            json!("not-a-time"),
            json!("zzz"),
            json!(""),
            json!("2026-13-45T99:99:99Z"),
        ] {
            // (A value equal to the original, such as "" for an unset mode, is no change.)
            if doc["after"]["values"][0] != value {
                let mut d = doc.clone();
                d["after"]["values"][0] = value;
                forgeries.push(d);
            }
        }
        let mut other_id = doc.clone();
        other_id["after"]["id"] = json!("00000000-0000-0000-0000-000000000000");
        forgeries.push(other_id);
        let mut raws: Vec<String> = forgeries
            .iter()
            .map(|f| {
                format!(
                    "{}.{mac}",
                    URL_SAFE_NO_PAD.encode(serde_json::to_vec(f).unwrap())
                )
            })
            .collect();
        // Without the seal, and a wrong-typed value without the seal.
        raws.push(payload.to_owned());
        let mut bad_time = doc.clone();
        bad_time["after"]["values"][0] = json!("not-a-time");
        raws.push(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&bad_time).unwrap()));
        for raw in raws {
            let r = app
                .send(t.get(&format!("/assets/models?cursor={raw}")))
                .await
                .expect_error(422, "VALIDATION_ERROR");
            assert_eq!(r.error_locs(), ["query.cursor"], "{field}: {raw}");
        }
    }
}

/// The list's catalog parameters are checked like the others: each bad one is named.
async fn catalog_parameters_are_checked(app: TestApp) {
    let t = app.tenant().await;
    for (q, loc) in [
        ("capability=telepathy", "query.capability"),
        ("capability=vision,telepathy", "query.capability"),
        ("min_input_tokens=0", "query.min_input_tokens"),
        ("min_input_tokens=many", "query.min_input_tokens"),
        ("max_input_cost=-1", "query.max_input_cost"),
        ("max_input_cost=NaN", "query.max_input_cost"),
        ("sort=input_cost_per_token:up", "query.sort"),
    ] {
        let r = app
            .send(t.get(&format!("/assets/models?{q}")))
            .await
            .expect_error(422, "VALIDATION_ERROR");
        assert_eq!(r.error_locs(), [loc], "{q}");
    }
    // All at once: each named.
    let r = app
        .send(t.get("/assets/models?capability=telepathy&min_input_tokens=0&max_input_cost=-1"))
        .await
        .expect_error(422, "VALIDATION_ERROR");
    assert_eq!(
        r.error_locs(),
        [
            "query.capability",
            "query.min_input_tokens",
            "query.max_input_cost"
        ]
    );
    // The allowed values are named; what the client sent is not quoted.
    assert!(r.text.contains("vision, function_calling"), "{}", r.text);
    assert!(!r.text.contains("telepathy"), "{}", r.text);
}

/// Models with capabilities, prices and contexts given (some without any), created through
/// the API: (capabilities, input_cost_per_token, max_input_tokens).
async fn seed_catalog(app: &TestApp, t: &Tenant) -> Vec<Value> {
    let specs: [(&[&str], Option<f64>, Option<i64>); 9] = [
        (
            &["vision", "function_calling"],
            Some(0.0000025),
            Some(128_000),
        ),
        (&["vision"], Some(0.0000025), Some(200_000)),
        (&["function_calling"], None, Some(128_000)),
        (
            &["vision", "function_calling", "reasoning"],
            Some(0.00001),
            None,
        ),
        (&[], Some(0.0), Some(8_192)),
        (&["vision", "function_calling"], None, Some(1_000_000)),
        (
            &["vision", "function_calling"],
            Some(0.000001),
            Some(200_000),
        ),
        (
            &["vision", "function_calling"],
            Some(0.00003),
            Some(128_000),
        ),
        (
            &["function_calling", "vision"],
            Some(0.0000025),
            Some(128_000),
        ),
    ];
    for (i, (caps, cost, context)) in specs.iter().enumerate() {
        let mut b = model(&format!("cat{i}"));
        // A model string the catalog does not know: no value is filled in.
        b["litellm_model"] = json!(format!("hosted_vllm/house-model-{i}"));
        b["capabilities"] = json!(caps);
        b["input_cost_per_token"] = json!(cost);
        b["max_input_tokens"] = json!(context);
        app.send(t.post("/assets/models", b)).await.expect(201);
    }
    let all = all_pages(app, t, "").await;
    assert_eq!(all.len(), specs.len());
    assert!(all.iter().any(|m| m["input_cost_per_token"].is_null()));
    all
}

/// A number field's value as the list orders it: none before every number.
fn number(m: &Value, field: &str) -> Option<f64> {
    m[field].as_f64()
}

/// The ids of `list` ordered by the number `field`, then by id in the same direction.
fn by_number(mut list: Vec<Value>, field: &str, desc: bool) -> Vec<String> {
    list.sort_by(|a, b| {
        let o = number(a, field)
            .partial_cmp(&number(b, field))
            .unwrap()
            .then_with(|| key(a, "id").cmp(&key(b, "id")));
        if desc { o.reverse() } else { o }
    });
    ids(&list)
}

/// Every model of a list, following `next_cursor` one model at a time.
async fn all_cursors(app: &TestApp, t: &Tenant, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut r = app
        .send(t.get(&format!("/assets/models?limit=1&{query}")))
        .await
        .expect(200);
    loop {
        out.extend(r.json["data"].as_array().unwrap().iter().cloned());
        let Some(c) = r.json["pagination"]["next_cursor"].as_str() else {
            return out;
        };
        r = app
            .send(t.get(&format!("/assets/models?cursor={c}")))
            .await
            .expect(200);
    }
}

/// Filters by capability, context and price, sorted by price or by context either way, by
/// page and by cursor; models without a value are left out by a bound and sort first going up.
async fn catalog_filters_and_sorts(app: TestApp) {
    let t = app.tenant().await;
    let all = seed_catalog(&app, &t).await;
    let has = |m: &Value, c: &str| m["capabilities"].as_array().unwrap().iter().any(|x| x == c);
    let wanted = |m: &&Value| {
        has(m, "vision")
            && has(m, "function_calling")
            && number(m, "max_input_tokens").is_some_and(|n| n >= 128_000.0)
            && number(m, "input_cost_per_token").is_some_and(|c| c <= 0.00001)
    };
    let matching: Vec<Value> = all.iter().filter(wanted).cloned().collect();
    assert_eq!(matching.len(), 3, "the seed makes three match");
    let filter =
        "capability=function_calling,vision&min_input_tokens=128000&max_input_cost=0.00001";
    for (field, order, desc) in [
        ("input_cost_per_token", "asc", false),
        ("input_cost_per_token", "desc", true),
        ("max_input_tokens", "asc", false),
        ("max_input_tokens", "desc", true),
    ] {
        let q = format!("{filter}&sort={field}:{order}");
        let expected = by_number(matching.clone(), field, desc);
        assert_eq!(ids(&all_pages(&app, &t, &q).await), expected, "{q}");
        assert_eq!(ids(&all_cursors(&app, &t, &q).await), expected, "{q}");
        let r = app
            .send(t.get(&format!("/assets/models?{q}&limit=2")))
            .await
            .expect(200);
        assert_eq!(r.json["pagination"]["total_items"], 3, "{q}");
        // Unfiltered: the models without a value come first going up, last going down.
        let q = format!("sort={field}:{order}");
        let expected = by_number(all.clone(), field, desc);
        assert_eq!(ids(&all_cursors(&app, &t, &q).await), expected, "{q}");
    }
}

/// A page filtered by the catalog's fields is not served from the page cache after a write
/// changes what it shows: capabilities, a price, a context.
async fn a_catalog_filtered_page_follows_writes(app: TestApp) {
    let t = app.tenant().await;
    let all = seed_catalog(&app, &t).await;
    let list = |q: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let r = app
                .send(t.get(&format!("/assets/models?{q}")))
                .await
                .expect(200);
            ids(r.json["data"].as_array().unwrap())
        }
    };
    let alone = "capability=reasoning";
    let sliced = "status=PENDING&capability=reasoning&sort=max_input_tokens:desc";
    let cheap = "max_input_cost=0.000001&sort=input_cost_per_token:asc";
    let long = "min_input_tokens=500000";
    let reasoning: Vec<String> = ids(&all)
        .into_iter()
        .zip(&all)
        .filter(|(_, m)| {
            m["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "reasoning")
        })
        .map(|(id, _)| id)
        .collect();
    assert_eq!(list(alone).await, reasoning);
    assert_eq!(list(sliced).await, reasoning);
    let before_cheap = list(cheap).await;
    assert_eq!(list(long).await.len(), 1);
    // Pages now kept. Each write changes what one of them shows.
    let uri = |i: usize| all[i]["resource_uri"].as_str().unwrap().to_owned();
    // A model without a price, of a short context, without reasoning.
    let target = all
        .iter()
        .position(|m| {
            m["input_cost_per_token"].is_null()
                && number(m, "max_input_tokens").is_some_and(|n| n < 500_000.0)
        })
        .unwrap();
    let patch = |i: usize, body: Value| t.patch(&format!("/assets/models/{}", uri(i)), body);
    app.send(patch(target, json!({"capabilities": ["reasoning"], "input_cost_per_token": 0.0000001, "max_input_tokens": 900000})))
        .await
        .expect(200);
    let id = all[target]["id"].as_str().unwrap().to_owned();
    assert!(list(alone).await.contains(&id));
    assert!(list(sliced).await.contains(&id));
    let now_cheap = list(cheap).await;
    assert_eq!(now_cheap.len(), before_cheap.len() + 1);
    assert!(now_cheap.contains(&id));
    assert_eq!(list(long).await.len(), 2);
    app.send(patch(
        target,
        json!({"capabilities": [], "max_input_tokens": null}),
    ))
    .await
    .expect(200);
    assert!(!list(alone).await.contains(&id));
    assert!(!list(sliced).await.contains(&id));
    assert_eq!(list(long).await.len(), 1);
}

on_both_backends!(
    catalog_parameters_are_checked,
    catalog_filters_and_sorts,
    a_catalog_filtered_page_follows_writes,
    empty_list,
    page_arithmetic_at_the_edges,
    default_order_is_newest_first,
    every_sort_field_in_both_directions,
    sort_combined_with_every_filter,
    search_is_a_case_insensitive_substring_of_name_or_description,
    cursor_pages_through_250_models_without_duplicate_or_gap,
    cursor_paging_while_models_are_created_misses_and_repeats_nothing,
    cursor_rules,
    a_forged_or_tampered_cursor_is_refused_on_every_field,
);
