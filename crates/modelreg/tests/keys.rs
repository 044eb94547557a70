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
    // New credentials are sealed under the newest key every running replica holds: the killed
    // server's heartbeat (old key only) counts for three heartbeats (3 s here), then the new
    // one's next heartbeat moves sealing to the new key.
    server.kill9().await;
    let server = Server::start(dir.path(), &[]).await;
    let db = format!("sqlite://{}/modelreg.db", dir.path().display());
    wait_for_replicas(&db, |live| live.iter().all(|r| r.seal_kek_id == new)).await;
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

/// The README's order, `keys generate` then `keys rotate` with no restart between them, on a
/// running server: it learns the new key by itself, `rotate` waits until it has, and no model
/// reads ERROR at any point.
#[tokio::test]
async fn rotation_in_the_readmes_order_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let c = Client::new(&server.base, server.token.as_deref().unwrap());
    for i in 0..20 {
        let (s, _) = c
            .send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("r{i}"))),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (ok, new, err) = keys(&["generate", "--data-dir", d], &[]).await;
    assert!(ok, "{err}");
    let (ok, out, err) = keys(&["rotate", "--data-dir", d], &[]).await;
    assert!(ok, "{err}");
    assert!(out.contains("rotated 20"), "{out}");
    all_readable(&c, 20).await;
    let (s, _) = c
        .send(Method::POST, "/assets/models", Some(create("after")))
        .await;
    assert_eq!(s, 201);
    all_readable(&c, 21).await;
    let st = status(&["--data-dir", d], &[]).await;
    assert!(
        st.contains(&(new.trim().to_owned(), 21, "current".into())),
        "{st:?}"
    );
    server.kill9().await;
}

/// Polls the running replicas' heartbeats in the database at `url` until `done` says so (20 s
/// at most), rather than sleeping for a guessed number of heartbeats.
async fn wait_for_replicas(url: &str, done: impl Fn(&[modelreg_core::store::ReplicaBeat]) -> bool) {
    let store = modelreg_store::open(url, &modelreg_store::PoolSettings::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let live = store.live_replicas().await.unwrap();
        if done(&live) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replicas did not get there: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.close().await;
}

fn borrow(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A key file of mode 0600 holding `keys`, one per line.
fn key_file(path: &std::path::Path, keys: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, keys.join("\n") + "\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Two replicas on PostgreSQL, sharing a key file: `keys generate` then `keys rotate`, no
/// restart; both learn the key, and every model reads fine on both throughout.
#[tokio::test]
async fn two_replicas_learn_a_new_key_and_rotation_waits_for_both() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys/master.key");
    key_file(&file, &[MASTER_KEY]);
    let file_s = file.to_str().unwrap();
    let envs = [
        ("MODELREG_DATABASE_URL", schema.url.as_str()),
        ("MODELREG_MASTER_KEY_FILE", file_s),
    ];
    let a = Server::start(&dir.path().join("a"), &envs).await;
    let b = Server::start(&dir.path().join("b"), &envs).await;
    let token = a.token.clone().or(b.token.clone()).unwrap();
    let (ca, cb) = (Client::new(&a.base, &token), Client::new(&b.base, &token));
    for i in 0..10 {
        let (s, _) = ca
            .send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("m{i}"))),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (ok, _, err) = keys(&["generate"], &envs).await;
    assert!(ok, "{err}");
    let (ok, out, err) = keys(&["rotate"], &envs).await;
    assert!(ok, "{err}");
    assert!(out.contains("rotated 10"), "{out}");
    all_readable(&ca, 10).await;
    all_readable(&cb, 10).await;
    let (s, _) = cb
        .send(Method::POST, "/assets/models", Some(create("by-b")))
        .await;
    assert_eq!(s, 201);
    all_readable(&ca, 11).await;
    a.kill9().await;
    b.kill9().await;
}

/// Two replicas on one PostgreSQL schema, each reading a key file of its own (both with the
/// same key at first), and A's environment, for the CLI.
struct TwoReplicas {
    schema: PgSchema,
    dir: tempfile::TempDir,
    file_a: std::path::PathBuf,
    file_b: std::path::PathBuf,
    env_a: Vec<(String, String)>,
    a: Server,
    b: Server,
}

impl TwoReplicas {
    async fn start() -> TwoReplicas {
        let schema = PgSchema::create().await;
        let dir = tempfile::tempdir().unwrap();
        let (file_a, file_b) = (dir.path().join("a.key"), dir.path().join("b.key"));
        key_file(&file_a, &[MASTER_KEY]);
        key_file(&file_b, &[MASTER_KEY]);
        let env = |file: &std::path::Path| {
            vec![
                ("MODELREG_DATABASE_URL".to_owned(), schema.url.clone()),
                (
                    "MODELREG_MASTER_KEY_FILE".to_owned(),
                    file.display().to_string(),
                ),
            ]
        };
        let (env_a, env_b) = (env(&file_a), env(&file_b));
        let a = Server::start(&dir.path().join("a"), &borrow(&env_a)).await;
        let b = Server::start(&dir.path().join("b"), &borrow(&env_b)).await;
        TwoReplicas {
            schema,
            dir,
            file_a,
            file_b,
            env_a,
            a,
            b,
        }
    }
}

/// A replica that has not loaded the new key: `keys rotate` refuses and re-wraps nothing, and
/// the replica that has the key keeps sealing new credentials under the old one, which both
/// hold, so the other reads them. Once the key is given and the replica told (SIGHUP), the
/// rotation goes through.
#[tokio::test]
async fn rotation_refuses_while_a_running_replica_lacks_the_key() {
    let TwoReplicas {
        schema,
        dir: _dir,
        file_a,
        file_b,
        env_a,
        a,
        b,
    } = TwoReplicas::start().await;
    let token = a.token.clone().or(b.token.clone()).unwrap();
    let (ca, cb) = (Client::new(&a.base, &token), Client::new(&b.base, &token));
    for i in 0..5 {
        let (s, _) = ca
            .send(
                Method::POST,
                "/assets/models",
                Some(create(&format!("n{i}"))),
            )
            .await;
        assert_eq!(s, 201);
    }
    // Only A's key file gets the new key; A reads it within a heartbeat (1 s here), and
    // reports it, while both still seal under the old one.
    let (ok, new, err) = keys(&["generate"], &borrow(&env_a)).await;
    assert!(ok, "{err}");
    let new = new.trim().to_owned();
    wait_for_replicas(&schema.url, |live| {
        live.iter().filter(|r| r.kek_ids.contains(&new)).count() == 1
            && live.iter().all(|r| r.seal_kek_id != new)
    })
    .await;
    let (s, _) = ca
        .send(
            Method::POST,
            "/assets/models",
            Some(create("while-b-lacks")),
        )
        .await;
    assert_eq!(s, 201);
    all_readable(&cb, 6).await;
    let (ok, _, err) = keys(&["rotate", "--wait", "2"], &borrow(&env_a)).await;
    assert!(!ok, "rotated while a replica lacked the key");
    assert!(
        err.contains(&format!("are not yet sealing under key {new}"))
            && err.matches("has not loaded it").count() == 1,
        "{err}"
    );
    let st = status(&[], &borrow(&env_a)).await;
    assert!(st.contains(&(new.clone(), 0, "current".into())), "{st:?}");
    // Give B the key and tell it.
    std::fs::copy(&file_a, &file_b).unwrap();
    // SAFETY: signals the test's own child process.
    unsafe { libc::kill(b.pid() as i32, libc::SIGHUP) };
    let (ok, out, err) = keys(&["rotate", "--wait", "10"], &borrow(&env_a)).await;
    assert!(ok, "{err}");
    assert!(out.contains("rotated 6"), "{out}");
    all_readable(&ca, 6).await;
    all_readable(&cb, 6).await;
    a.kill9().await;
    b.kill9().await;
}

/// A key no record uses may still be the one running replicas seal new credentials under (here
/// because one replica lacks the newer key): retiring it then would leave their next records
/// under a key nobody holds, so it is refused.
#[tokio::test]
async fn retire_refuses_while_a_replica_seals_under_the_key() {
    let TwoReplicas {
        schema,
        dir: _dir,
        file_a: _,
        file_b: _,
        env_a,
        a,
        b,
    } = TwoReplicas::start().await;
    let old = status(&[], &borrow(&env_a)).await;
    let (ok, new, err) = keys(&["generate"], &borrow(&env_a)).await;
    assert!(ok, "{err}");
    let new = new.trim().to_owned();
    wait_for_replicas(&schema.url, |live| {
        live.iter().any(|r| r.kek_ids.contains(&new))
    })
    .await;
    let old_id = old.first().map(|k| k.0.clone()).unwrap_or_else(|| {
        // No record yet: `keys status` lists the configured key anyway.
        panic!("no key in {old:?}")
    });
    let (ok, _, err) = keys(&["retire", &old_id], &borrow(&env_a)).await;
    assert!(!ok, "retired a key that replicas seal under");
    assert!(err.contains("still seal new credentials under"), "{err}");
    a.kill9().await;
    b.kill9().await;
}
