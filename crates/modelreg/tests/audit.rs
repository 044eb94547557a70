//! `modelreg audit verify` on a real data directory: an intact chain passes; an edited or a
//! removed event is reported with its position, and the command fails.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;

#[tokio::test]
async fn audit_verify_finds_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let c = Client::new(&server.base, server.token.as_deref().unwrap());
    for i in 0..5 {
        let body = json!({"name": format!("m{i}"), "litellm_model": "openai/gpt-4o", "credentials": {"k": "v"}});
        assert_eq!(
            c.send(Method::POST, "/assets/models", Some(body)).await.0,
            201
        );
    }
    assert_eq!(
        c.send(Method::PUT, "/assets/models/m1", Some(json!({"rpm": 3})))
            .await
            .0,
        200
    );
    server.kill9().await;

    let (ok, out, err) = output(&["audit", "verify", "--data-dir", d], &[]).await;
    assert!(ok, "{err}");
    assert!(out.contains("default: 6 events, chain intact"), "{out}");

    let url = format!("sqlite://{}", dir.path().join("modelreg.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_events SET principal = 'user:mallory' WHERE seq = 4")
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, out, _) = output(&["audit", "verify", "--data-dir", d], &[]).await;
    assert!(!ok);
    assert!(
        out.contains("BROKEN at event 4: its content does not match its hash"),
        "{out}"
    );

    sqlx::query("DELETE FROM audit_events WHERE seq >= 4 AND seq < 6")
        .execute(&mut db)
        .await
        .unwrap();
    let (ok, out, _) = output(&["audit", "verify", "--data-dir", d], &[]).await;
    assert!(!ok);
    assert!(out.contains("BROKEN at event 4: is missing"), "{out}");
}
