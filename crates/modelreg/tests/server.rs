//! The real `modelreg` binary: start-up, the token CLI against a running server, durability
//! across SIGKILL, graceful shutdown and configuration.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use common::*;
use modelreg_store::testing::PgSchema;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn bootstrap_token_is_handed_over_once_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.token.clone().expect("first start prints a token");
    let c = Client::new(&server.base, &token);
    let (s, m) = c
        .send(reqwest::Method::POST, "/assets/models", Some(json!({
            "name": "GPT-4o", "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "sk-x"}
        })))
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["organization_id"], "default");
    assert_eq!(m["created_by"], "service:bootstrap");
    server.kill9().await;

    let server = Server::start(dir.path(), &[]).await;
    assert!(
        server.token.is_none(),
        "a second start must not mint another token"
    );
    let c = Client::new(&server.base, &token);
    let (s, list) = c.send(reqwest::Method::GET, "/assets/models", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["pagination"]["total_items"], 1);

    // The key file and the data directory are private.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("master.key")), 0o600);
}

/// The token commands, against a running server, on either backend: `storage` is the CLI's
/// `--data-dir` or `--database-url`, `envs` the server's.
async fn token_cli_works_against_a_running_server(
    server_dir: &Path,
    storage: [&str; 2],
    envs: &[(&str, &str)],
) {
    let server = Server::start(server_dir, envs).await;
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(storage.iter().map(|s| (*s).to_owned()));
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            output(&refs, &[]).await
        }
    };
    let create = |org: &'static str, role: &'static str, name: &'static str| {
        token_create_in(&storage, org, role, name)
    };
    let (ok, stdout, stderr) = create("default", "viewer", "ci-reader").await;
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    assert!(
        token.starts_with("mr_"),
        "stdout is the token alone: {stdout:?}"
    );
    assert!(stderr.contains("ci-reader"));

    let c = Client::new(&server.base, &token);
    assert_eq!(
        c.send(reqwest::Method::GET, "/assets/models", None).await.0,
        200
    );
    let (s, e) = c
        .send(
            reqwest::Method::POST,
            "/assets/models",
            Some(json!({"name": "x", "litellm_model": "y", "credentials": {"k": "v"}})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("INSUFFICIENT_PERMISSIONS"))
    );

    let (ok, stdout, _) = cli(&["token", "list"]).await;
    assert!(ok);
    assert!(
        stdout.contains("ci-reader") && stdout.contains("viewer") && stdout.contains("bootstrap")
    );
    assert!(!stdout.contains(&token), "token list must not show secrets");
    let (ok, stdout, _) = cli(&["token", "list", "--json"]).await;
    assert!(ok);
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // A duplicate name in the organization and a bad role are refused with a message and a
    // non-zero exit. The same name in another organization is that organization's own.
    let (ok, _, stderr) = create("default", "viewer", "ci-reader").await;
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = create("default", "god", "x").await;
    assert!(!ok && stderr.contains("--role"), "{stderr}");
    let (ok, stdout, stderr) = create("other-org", "viewer", "ci-reader").await;
    assert!(ok, "{stderr}");
    let other = Client::new(&server.base, stdout.trim());

    // With the name in two organizations, revoking needs --org, and revokes only that one.
    let (ok, _, stderr) = cli(&["token", "revoke", "ci-reader"]).await;
    assert!(!ok && stderr.contains("--org"), "{stderr}");
    let (ok, _, stderr) = cli(&["token", "revoke", "ci-reader", "--org", "default"]).await;
    assert!(ok, "{stderr}");
    let (s, e) = c.send(reqwest::Method::GET, "/assets/models", None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (401, Some("INVALID_TOKEN"))
    );
    assert_eq!(
        other
            .send(reqwest::Method::GET, "/assets/models", None)
            .await
            .0,
        200
    );
    // Now the name is active in one organization only: --org is not needed.
    let (ok, _, stderr) = cli(&["token", "revoke", "ci-reader"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(
        other
            .send(reqwest::Method::GET, "/assets/models", None)
            .await
            .0,
        401
    );
    let (ok, _, stderr) = cli(&["token", "revoke", "ci-reader"]).await;
    assert!(!ok && stderr.contains("no active token"));
    server.kill9().await;
}

#[tokio::test]
async fn token_cli_works_against_a_running_server_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    token_cli_works_against_a_running_server(dir.path(), ["--data-dir", d], &[]).await;
}

#[tokio::test]
async fn token_cli_works_against_a_running_server_on_postgres() {
    let schema = modelreg_store::testing::PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    token_cli_works_against_a_running_server(
        dir.path(),
        ["--database-url", &schema.url],
        &[
            ("MODELREG_DATABASE_URL", &schema.url),
            ("MODELREG_MASTER_KEY", MASTER_KEY),
        ],
    )
    .await;
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_on_sqlite() {
    acknowledged_writes_survive_sigkill(&[]).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_on_postgres() {
    let schema = PgSchema::create().await;
    acknowledged_writes_survive_sigkill(&[
        ("MODELREG_DATABASE_URL", &schema.url),
        ("MODELREG_MASTER_KEY", MASTER_KEY),
    ])
    .await;
}

async fn acknowledged_writes_survive_sigkill(envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut token = None;
    let mut expected: Vec<(String, i64)> = Vec::new();
    for round in 0..4 {
        let server = Server::start(dir.path(), envs).await;
        let token = token
            .get_or_insert_with(|| server.token.clone().unwrap())
            .clone();
        let c = Client::new(&server.base, &token);
        // Everything acknowledged before is there, with its last acknowledged value.
        for (uri, rpm) in &expected {
            let (s, m) = c
                .send(reqwest::Method::GET, &format!("/assets/models/{uri}"), None)
                .await;
            assert_eq!(s, 200, "round {round}: {uri} lost");
            assert_eq!(m["rpm"], *rpm, "round {round}: update of {uri} lost");
        }
        let (_, list) = c
            .send(reqwest::Method::GET, "/assets/models?limit=1", None)
            .await;
        assert_eq!(list["pagination"]["total_items"], expected.len());
        // New creates and updates, each acknowledged, then SIGKILL with no warning.
        for i in 0..15 {
            let uri = format!("r{round}-m{i}");
            let (s, _) = c
                .send(
                    reqwest::Method::POST,
                    "/assets/models",
                    Some(json!({
                        "resource_uri": uri, "name": uri, "litellm_model": "openai/gpt-4o",
                        "rpm": 1, "credentials": {"api_key": "k"}
                    })),
                )
                .await;
            assert_eq!(s, 201);
            expected.push((uri, 1));
        }
        for (uri, rpm) in expected.iter_mut().step_by(3) {
            *rpm += 1;
            let (s, _) = c
                .send(
                    reqwest::Method::PATCH,
                    &format!("/assets/models/{uri}"),
                    Some(json!({"rpm": *rpm})),
                )
                .await;
            assert_eq!(s, 200);
        }
        server.kill9().await;
    }
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]).await;
    let token = server.token.clone().unwrap();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = serde_json::to_vec(&json!({
        "name": "In Flight", "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "k"}
    }))
    .unwrap();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /assets/models HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         X-Project-ID: demo\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server is draining: the request already started still completes.
    stream.write_all(&body[5..]).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("response in time")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert!(status.success(), "{status:?}");

    // And what it acknowledged is there after a restart.
    let server = Server::start(dir.path(), &[]).await;
    let c = Client::new(&server.base, &token);
    assert_eq!(
        c.send(reqwest::Method::GET, "/assets/models/in-flight", None)
            .await
            .0,
        200
    );
    server.kill9().await;
}

#[tokio::test]
async fn many_query_parameters_over_real_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let c = Client::new(&server.base, server.token.as_deref().unwrap());
    // 5,000 parameters (20 KB) stay under the 32 KiB head limit, so the query parser is what
    // answers; a longer URL is a 414 (tests/limits.rs).
    let many = vec!["a=1"; 5_000].join("&");
    let (s, e) = c
        .send(
            reqwest::Method::GET,
            &format!("/assets/models?{many}"),
            None,
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    server.kill9().await;
}

#[tokio::test]
async fn configuration_precedence_is_flag_then_env_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let toml = dir.path().join("modelreg.toml");
    std::fs::write(&toml, format!("data_dir = {:?}\n", p("from-file"))).unwrap();
    let toml = toml.to_str().unwrap();
    let applied_to = |stdout: &str| stdout.trim().rsplit('/').nth(1).unwrap().to_owned();

    let (ok, out, err) = output(&["--config", toml, "migrate"], &[]).await;
    assert!(ok, "{err}");
    assert_eq!(applied_to(&out), "from-file");
    let env_dir = p("from-env");
    let (ok, out, _) = output(
        &["--config", toml, "migrate"],
        &[("MODELREG_DATA_DIR", &env_dir)],
    )
    .await;
    assert!(ok);
    assert_eq!(applied_to(&out), "from-env");
    let (ok, out, _) = output(
        &["--config", toml, "migrate", "--data-dir", &p("from-flag")],
        &[("MODELREG_DATA_DIR", &env_dir)],
    )
    .await;
    assert!(ok);
    assert_eq!(applied_to(&out), "from-flag");
    // An explicit database URL wins over the data directory.
    let url = format!("sqlite://{}", p("elsewhere/x.db"));
    let (ok, out, _) = output(
        &["migrate", "--data-dir", &p("ignored")],
        &[("MODELREG_DATABASE_URL", &url)],
    )
    .await;
    assert!(ok);
    assert!(out.contains("elsewhere/x.db"));

    let (ok, _, err) = output(&["migrate", "--database-url", "postgres://u:pw@h/db"], &[]).await;
    assert!(!ok && err.contains("PostgreSQL"), "{err}");
    assert!(!err.contains("pw"), "the password was printed: {err}");
    let (ok, _, err) = output(&["--config", &p("missing.toml"), "migrate"], &[]).await;
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn master_key_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // A bad MODELREG_MASTER_KEY stops start-up with a clear message.
    let (ok, _, err) = output(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", d],
        &[("MODELREG_MASTER_KEY", "too-short")],
    )
    .await;
    assert!(!ok && err.contains("MODELREG_MASTER_KEY"), "{err}");
    // A good one is used, and no key file is created.
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let server = Server::start(dir.path(), &[("MODELREG_MASTER_KEY", key)]).await;
    assert!(!dir.path().join("master.key").exists());
    server.kill9().await;

    // A key file that others can read is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let server = Server::start(dir2.path(), &[]).await;
    server.kill9().await;
    let key_file = dir2.path().join("master.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = output(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir2.path().to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("chmod 600"), "{err}");
}

#[tokio::test]
async fn openapi_command_prints_the_document() {
    let (ok, out, _) = output(&["openapi"], &[]).await;
    assert!(ok);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["paths"]["/assets/models"].is_object());
    let (ok, out, _) = output(&["--help"], &[]).await;
    assert!(ok && out.contains("serve") && out.contains("token"));
    let (ok, out, _) = output(&["serve", "--help"], &[]).await;
    assert!(ok && out.contains("MODELREG_LISTEN") && out.contains("MODELREG_DATA_DIR"));
}

/// What the console reads first, over real HTTP from the real binary: `/auth/me` with the
/// bootstrap token, and `/ui/config.json` without a credential, whose OIDC sign-in comes from
/// `MODELREG_OIDC_ISSUERS` with `MODELREG_CONSOLE_OIDC_CLIENT_ID` and never shows a secret.
#[tokio::test]
async fn the_console_learns_who_it_is_and_how_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let token = server.token.clone().expect("first start prints a token");
    let c = Client::new(&server.base, &token);
    let me = || async {
        let r = reqwest::Client::new()
            .get(format!("{}/auth/me", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let mut expected = json!({
        "principal": "service:bootstrap", "organization_id": "default", "credential": "token",
        "grants": [{"project": "*", "role": "owner"}], "projects": [],
    });
    assert_eq!(me().await, expected);
    let (s, m) = c
        .send(reqwest::Method::POST, "/assets/models", Some(json!({
            "name": "GPT-4o", "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "sk-x"}
        })))
        .await;
    assert_eq!(s, 201, "{m}");
    expected["projects"] = json!([{"id": "demo", "role": "owner", "can": {
        "read": true, "verify": true, "write": true, "delete": true, "audit": true,
        "manage_tokens": true,
    }}]);
    assert_eq!(me().await, expected);
    let config = |base: String| async move {
        let r = reqwest::get(format!("{base}/ui/config.json"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let body: Value = serde_json::from_str(&config(server.base.clone()).await).unwrap();
    assert_eq!(
        body,
        json!({"oidc": [], "version": env!("CARGO_PKG_VERSION")})
    );
    server.kill9().await;

    let secret = "jwt-secret-canary-7731";
    let server = Server::start(
        dir.path(),
        &[
            (
                "MODELREG_OIDC_ISSUERS",
                "https://kc.example.com/realms/acme, https://id.example.org",
            ),
            ("MODELREG_CONSOLE_OIDC_CLIENT_ID", "modelreg-console"),
            ("MODELREG_JWT_HS256_SECRET", secret),
        ],
    )
    .await;
    let text = config(server.base.clone()).await;
    let master_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert!(
        !text.contains(secret) && !text.contains(master_key.trim()),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({
            "oidc": [
                {"issuer": "https://kc.example.com/realms/acme", "client_id": "modelreg-console"},
                {"issuer": "https://id.example.org", "client_id": "modelreg-console"},
            ],
            "version": env!("CARGO_PKG_VERSION"),
        })
    );
    server.kill9().await;
}
