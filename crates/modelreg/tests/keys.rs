//! Master key rotation with the real binary: generate, status, rotate (interrupted, resumed,
//! with the server writing meanwhile), retire; and the start-up check of stored credentials.

mod common;

use std::time::Duration;

use common::*;
use futures::future::join_all;
use modelreg_store::testing::PgSchema;
use reqwest::Method;
use serde_json::{Value, json};

async fn keys(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    output(&all, envs).await
}

/// `keys status --json` as (key id → records, state).
async fn status(base: &[&str], envs: &[(&str, &str)]) -> Vec<(String, u64, String)> {
    let mut args = vec!["status", "--json"];
    args.extend_from_slice(base);
    let (_, out, err) = keys(&args, envs).await;
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out} {err}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["records"].as_u64().unwrap(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn create(uri: &str) -> Value {
    json!({"resource_uri": uri, "name": uri, "litellm_model": "openai/gpt-4o",
           "credentials": {"api_key": format!("sk-{uri}-secret")}})
}

async fn all_readable(c: &Client, n: u64) {
    let (s, list) = c.send(Method::GET, "/assets/models?limit=100", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["pagination"]["total_items"], n);
    for m in list["data"].as_array().unwrap() {
        assert_ne!(m["status"], "ERROR", "{m}");
    }
}

#[tokio::test]
async fn rotate_with_the_key_file_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let at = ["--data-dir", d];
    let server = Server::start(dir.path(), &[]).await;
    let token = server.token.clone().unwrap();
    let c = Client::new(&server.base, &token);
    for i in 0..30 {
        assert_eq!(
            c.send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("a{i}")))
            )
            .await
            .0,
            201
        );
    }
    let st = status(&at, &[]).await;
    assert_eq!(st.len(), 1);
    let old = st[0].0.clone();
    assert_eq!((st[0].1, st[0].2.as_str()), (30, "current"));

    // The newest key cannot be retired; a key in use cannot either.
    let (ok, _, err) = keys(&["retire", &old, "--data-dir", d], &[]).await;
    assert!(!ok && err.contains("newest"), "{err}");
    let (ok, new, err) = keys(&["generate", "--data-dir", d], &[]).await;
    assert!(ok, "{err}");
    let new = new.trim().to_owned();
    assert_ne!(new, old);
    let (ok, _, err) = keys(&["retire", &old, "--data-dir", d], &[]).await;
    assert!(!ok && err.contains("still use"), "{err}");

    // Servers pick up the new key on restart; new writes use it, old records still read.
    server.kill9().await;
    let server = Server::start(dir.path(), &[]).await;
    let c = Client::new(&server.base, &token);
    for i in 0..5 {
        assert_eq!(
            c.send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("b{i}")))
            )
            .await
            .0,
            201
        );
    }
    all_readable(&c, 35).await;
    let st = status(&at, &[]).await;
    assert!(
        st.contains(&(old.clone(), 30, "configured".into())),
        "{st:?}"
    );
    assert!(st.contains(&(new.clone(), 5, "current".into())), "{st:?}");

    // An interrupted rotation (here: stopped after 10 records) is resumed by running it again,
    // while the server keeps serving writes, credentials replacements included.
    let (ok, out, err) = keys(
        &[
            "rotate",
            "--limit",
            "10",
            "--batch-size",
            "4",
            "--data-dir",
            d,
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("rotated 10"), "{out}");
    assert!(err.contains("rotating 30"), "progress is reported: {err}");
    let writers = (0..10).map(|i| {
        let c = Client::new(&server.base, &token);
        async move {
            let (s, _) = c
                .send(
                    Method::PUT,
                    &format!("/assets/models/a{}", 20 + i),
                    Some(json!({"credentials": {"api_key": format!("sk-new-{i}")}})),
                )
                .await;
            assert_eq!(s, 200);
            let (s, _) = c
                .send(
                    Method::POST,
                    "/assets/models",
                    Some(create(&format!("c{i}"))),
                )
                .await;
            assert_eq!(s, 201);
        }
    });
    let rotate_args = ["rotate", "--batch-size", "3", "--data-dir", d];
    let rotation = keys(&rotate_args, &[]);
    let (rotated, _) = tokio::join!(rotation, join_all(writers));
    assert!(rotated.0, "{}", rotated.2);
    let st = status(&at, &[]).await;
    assert!(st.contains(&(old.clone(), 0, "retirable".into())), "{st:?}");
    assert!(st.contains(&(new.clone(), 45, "current".into())), "{st:?}");
    all_readable(&c, 45).await;

    let (ok, out, err) = keys(&["retire", &old, "--data-dir", d], &[]).await;
    assert!(ok && out.contains("retired"), "{err}");
    let key_file = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_eq!(
        key_file
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count(),
        1
    );
    server.kill9().await;
    // With the old key gone, everything still opens.
    let server = Server::start(dir.path(), &[]).await;
    all_readable(&Client::new(&server.base, &token), 45).await;
    server.kill9().await;
}

#[tokio::test]
async fn rotate_with_master_keys_in_the_environment_on_postgres() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let old = MASTER_KEY;
    let env_old = [
        ("MODELREG_DATABASE_URL", schema.url.as_str()),
        ("MODELREG_MASTER_KEY", old),
    ];
    let server = Server::start(dir.path(), &env_old).await;
    let token = server.token.clone().unwrap();
    let c = Client::new(&server.base, &token);
    for i in 0..12 {
        assert_eq!(
            c.send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("p{i}")))
            )
            .await
            .0,
            201
        );
    }
    server.kill9().await;
    let (ok, new, _) = keys(&["generate"], &env_old).await;
    assert!(ok);
    let both = format!("{old},{}", new.trim());
    let env_both = [
        ("MODELREG_DATABASE_URL", schema.url.as_str()),
        ("MODELREG_MASTER_KEY", both.as_str()),
    ];
    let (ok, _, err) = keys(&["rotate", "--batch-size", "5"], &env_both).await;
    assert!(ok, "{err}");
    let st = status(&[], &env_both).await;
    let old_id = st
        .iter()
        .find(|k| k.2 == "retirable")
        .expect("old key retirable")
        .0
        .clone();
    assert!(st.iter().any(|k| k.1 == 12 && k.2 == "current"), "{st:?}");
    let (ok, out, _) = keys(&["retire", &old_id], &env_both).await;
    assert!(
        ok && out.contains("remove it from MODELREG_MASTER_KEY"),
        "{out}"
    );
    // The new key alone opens everything.
    let env_new = [
        ("MODELREG_DATABASE_URL", schema.url.as_str()),
        ("MODELREG_MASTER_KEY", new.trim()),
    ];
    let server = Server::start(dir.path(), &env_new).await;
    all_readable(&Client::new(&server.base, &token), 12).await;
    server.kill9().await;
}

#[tokio::test]
async fn start_up_warns_with_the_count_of_unreadable_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.token.clone().unwrap();
    let c = Client::new(&server.base, &token);
    for i in 0..7 {
        assert_eq!(
            c.send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("w{i}")))
            )
            .await
            .0,
            201
        );
    }
    server.kill9().await;
    // The key file is lost and replaced by another key: nothing opens any more.
    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{MASTER_KEY}\n")).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start_with_log(
        dir.path(),
        &[("MODELREG_MASTER_KEY_FILE", other.to_str().unwrap())],
        Some(&log),
    )
    .await;
    let mut warned = String::new();
    for _ in 0..50 {
        warned = std::fs::read_to_string(&log).unwrap();
        if warned.contains("cannot be decrypted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        warned.contains("7 stored credential(s) cannot be decrypted"),
        "{warned}"
    );
    // And every read says so, without a 500.
    let (s, m) = Client::new(&server.base, &token)
        .send(Method::GET, "/assets/models/w3", None)
        .await;
    assert_eq!((s, m["status"].as_str()), (200, Some("ERROR")));
    let (ok, out, _) = keys(
        &[
            "status",
            "--master-key-file",
            other.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!ok && out.contains("MISSING"), "{out}");
    server.kill9().await;
}
