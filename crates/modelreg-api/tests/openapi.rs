//! The OpenAPI document is generated from the code and snapshot-tested, so every API change
//! shows up in review as a diff of `snapshots/openapi__document.snap`.

mod common;

use axum::http::Method;
use common::*;
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
    assert_eq!(operations, 22);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

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
