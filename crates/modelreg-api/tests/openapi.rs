//! The OpenAPI document is generated from the code and snapshot-tested, so every API change
//! shows up in review as a diff of `snapshots/openapi__document.snap`.

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use common::*;
use modelreg_api::Limits;
use modelreg_core::{auth::Role, model::ModelFields};
use serde_json::Value;

#[test]
fn document_snapshot() {
    let doc = modelreg_api::openapi();
    let json: Value = serde_json::to_value(&doc).unwrap();
    insta::assert_json_snapshot!("document", json);
}

#[test]
fn every_operation_documents_its_errors_and_the_error_schema() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}");
            // The audit log is organization-wide: no project.
            if path.starts_with("/assets/") && path != "/assets/audit" {
                for code in ["400", "401", "403", "503"] {
                    assert!(responses.contains_key(code), "{method} {path} lacks {code}");
                }
                let params: Vec<&str> = op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert!(params.contains(&"X-Project-ID"), "{method} {path}");
            }
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
        }
    }
    assert_eq!(
        operations, 28,
        "every operation is checked above; the catalog added four, batch one"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// The model's fields are declared once (`with_model_fields!`); the view and the request bodies
/// are derived from it, so each has every field (create ignores the two the registry sets).
#[test]
fn every_declared_model_field_is_in_the_view_and_the_bodies() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for schema in ["ModelView", "ModelCreate", "ModelUpdate"] {
        for name in ModelFields::NAMES {
            let ignored = schema == "ModelCreate" && name.starts_with("status");
            assert_eq!(
                schemas[schema]["properties"][name].is_object(),
                !ignored,
                "{schema}.{name}"
            );
        }
    }
}

/// JSON pointers of the object schemas under `v` that say nothing of what they hold.
fn untyped_objects(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let is_object = match map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
                _ => false,
            };
            let described = [
                "properties",
                "additionalProperties",
                "patternProperties",
                "$ref",
                "allOf",
                "anyOf",
                "oneOf",
            ]
            .iter()
            .any(|k| map.contains_key(*k));
            if is_object && !described {
                out.push(at.to_owned());
            }
            for (k, child) in map {
                let k = k.replace('~', "~0").replace('/', "~1");
                untyped_objects(child, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                untyped_objects(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every object schema says what it holds. openapi-typescript makes a bare
/// `{"type": "object"}` into `Record<string, never>`, which no value but `{}` fits: a typed
/// client could not send credentials nor read an audit event's changes. (`.ci/openapi-ts`
/// checks a client against the real generator.)
#[test]
fn no_schema_is_an_untyped_object() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let mut found = Vec::new();
    untyped_objects(&doc, "", &mut found);
    assert!(
        found.is_empty(),
        "bare object schemas:\n{}",
        found.join("\n")
    );
}

/// Wherever a 429 is documented, so is the `Retry-After` header it always carries.
#[test]
fn every_429_declares_retry_after() {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let (mut with_429, mut missing) = (0, Vec::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(r) = op["responses"].get("429") else {
                continue;
            };
            with_429 += 1;
            let h = &r["headers"]["Retry-After"];
            if h["schema"]["type"] != "integer" || h["required"] != true {
                missing.push(format!("{method} {path}: {h}"));
            }
        }
    }
    assert!(with_429 > 0);
    assert!(
        missing.is_empty(),
        "429 without Retry-After:\n{}",
        missing.join("\n")
    );
}

/// `/assets/models/{resource_uri}` → `/assets/models/some-model`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "some-model"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// 429 is documented on exactly the operations the rate limiter guards, and every 429 sent
/// carries `Retry-After`.
async fn documents_429_exactly_where_the_rate_limiter_applies(app: TestApp) {
    let limited = app.with_limits(Limits {
        rate_per_sec: 1,
        rate_burst: 1,
        ..Limits::default()
    });
    let t = app.tenant().await;
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    let (mut documented, mut refused) = (BTreeSet::new(), BTreeSet::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            if op["responses"].get("429").is_some() {
                documented.insert(name.clone());
            }
            // A credential of its own, whose bucket of one is spent by the first request.
            let token = app.token(&t.org, "*", Role::Owner).await;
            let m: Method = method.to_uppercase().parse().unwrap();
            for _ in 0..3 {
                let r = limited
                    .send(
                        Req::new(m.clone(), &concrete(path))
                            .auth(&token)
                            .project(&t.project),
                    )
                    .await;
                if r.status == 429 {
                    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                    assert!(retry >= 1, "{name}");
                    refused.insert(name);
                    break;
                }
            }
        }
    }
    assert!(!documented.is_empty());
    assert_eq!(
        refused, documented,
        "left: rate limited; right: documented as such"
    );
}

on_both_backends!(documents_429_exactly_where_the_rate_limiter_applies);

/// Every documented operation is served, and a route missing from the document would be
/// caught by `routes!` registration; this checks the other direction over HTTP.
async fn every_documented_operation_is_routed(app: TestApp) {
    let doc = serde_json::to_value(modelreg_api::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let uri = path.replace("{resource_uri}", "some-model");
            let m: Method = method.to_uppercase().parse().unwrap();
            let r = app.send(Req::new(m, &uri)).await;
            let s = r.status.as_u16();
            assert!(
                s != 404
                    || r.json["error"]["message"]
                        != format!("no route for {} {uri}", method.to_uppercase()),
                "{method} {path} is documented but not routed"
            );
            assert_ne!(s, 405, "{method} {path}");
        }
    }
}

on_both_backends!(every_documented_operation_is_routed,);
