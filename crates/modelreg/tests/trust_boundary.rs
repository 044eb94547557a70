//! The trust boundary of credential references, through the real binary: an `operator` of one
//! organization names the server's own environment and files in credential references and an
//! `api_base` of its choosing (a recording provider on 127.0.0.1). Nothing of them may reach
//! that listener, on either verify endpoint or through the background checker, while a
//! reference the operator granted still works. On SQLite (whose master key is a one-line key
//! file in the data directory) and on PostgreSQL (whose master key is in the environment).

mod common;

use std::{path::Path, time::Duration};

use common::*;
use modelreg_probe::testing::{self, RequestLog};
use modelreg_store::testing::PgSchema;
use reqwest::Method;
use serde_json::{Value, json};

const JWT_SECRET: &str = "jwt-secret-value-for-the-trust-test";
const SERVER_SECRET: &str = "server-only-secret-value-7f3a";
const SA_TOKEN: &str = "mounted-service-account-token-9c1e";
/// Organization tenant-b's key: granted to tenant-b only.
const TENANT_B_VALUE: &str = "tenant-b-provider-key-41d0";

struct Setup {
    root: tempfile::TempDir,
    envs: Vec<(String, String)>,
    /// `--data-dir` or `--database-url` for the CLI.
    storage: Vec<String>,
    _schema: Option<PgSchema>,
}

impl Setup {
    fn granted(&self) -> std::path::PathBuf {
        self.root.path().join("granted")
    }
    fn data(&self) -> std::path::PathBuf {
        self.granted().join("data")
    }
}

/// A data directory inside a granted directory (so the server's own files sit below a grant),
/// a granted file holding the provider key, and a file outside any grant.
async fn setup(postgres: bool) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let granted = root.path().join("granted");
    std::fs::create_dir_all(granted.join("data")).unwrap();
    std::fs::write(
        granted.join("allowed-key"),
        format!("{}\n", testing::GOOD_KEY),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("secret")).unwrap();
    std::fs::write(root.path().join("secret/sa-token"), SA_TOKEN).unwrap();
    let mut envs: Vec<(String, String)> = [
        ("MODELREG_JWT_HS256_SECRET", JWT_SECRET),
        ("SERVER_SECRET", SERVER_SECRET),
        ("ALLOWED_KEY", testing::GOOD_KEY),
        ("TENANT_B_KEY", TENANT_B_VALUE),
        ("MODELREG_REFERENCE_ENV", "ALLOWED_*"),
        (
            "MODELREG_REFERENCE_GRANTS",
            r#"[{"orgs": ["tenant-b"], "env": ["TENANT_B_*"]}]"#,
        ),
        ("MODELREG_CHECK_INTERVAL_SECS", "1"),
        ("MODELREG_CHECK_JITTER_SECS", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    envs.push((
        "MODELREG_REFERENCE_DIRS".into(),
        granted.display().to_string(),
    ));
    let (storage, schema) = if postgres {
        let schema = PgSchema::create().await;
        envs.push(("MODELREG_DATABASE_URL".into(), schema.url.clone()));
        envs.push(("MODELREG_MASTER_KEY".into(), MASTER_KEY.into()));
        (
            vec!["--database-url".into(), schema.url.clone()],
            Some(schema),
        )
    } else {
        let data = granted.join("data").display().to_string();
        (vec!["--data-dir".into(), data], None)
    };
    Setup {
        root,
        envs,
        storage,
        _schema: schema,
    }
}

async fn token(s: &Setup, org: &str, role: &str, name: &str) -> String {
    let storage: Vec<&str> = s.storage.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = token_create_in(&storage, org, role, name).await;
    assert!(ok, "{stderr}");
    stdout.trim().to_owned()
}

fn model(name: &str, base: &str, api_key: &str) -> Value {
    json!({"name": name, "litellm_model": "openai/gpt-4o", "api_base": base,
           "credentials": {"api_key": api_key}})
}

/// Every value of the server's that no tenant may obtain.
fn server_secrets(s: &Setup) -> Vec<String> {
    let mut secrets = vec![
        JWT_SECRET.to_owned(),
        SERVER_SECRET.to_owned(),
        SA_TOKEN.to_owned(),
        MASTER_KEY.to_owned(),
        TENANT_B_VALUE.to_owned(),
    ];
    if let Ok(key_file) = std::fs::read_to_string(s.data().join("master.key")) {
        secrets.extend(
            key_file
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    secrets
}

fn assert_nothing_leaked(log: &RequestLog, secrets: &[String]) {
    for r in log.requests() {
        let seen = format!("{} {:?}", r.uri, r.headers);
        for secret in secrets {
            assert!(
                !seen.contains(secret.as_str()),
                "the listener received a server secret: {seen}"
            );
        }
        // Whatever reached it carried only the granted provider key.
        if let Some((_, auth)) = r.headers.iter().find(|(n, _)| n == "authorization") {
            assert_eq!(auth, &format!("Bearer {}", testing::GOOD_KEY), "{seen}");
        }
    }
}

async fn references_reach_only_what_the_operator_granted(postgres: bool) {
    let s = setup(postgres).await;
    let (addr, log) = testing::start_recording().await;
    // Models whose references must be refused point at a path of their own, so any request
    // made for one of them, whatever it carries, shows in the log; granted ones at the fake
    // OpenAI.
    let base = format!("http://{addr}/openai/v1");
    let forbidden_base = format!("http://{addr}/forbidden/v1");
    // Tokens first: on SQLite this creates the database and the key file in the data dir.
    let operator = token(&s, "tenant-a", "operator", "op").await;
    let developer = token(&s, "tenant-a", "developer", "dev").await;
    let envs: Vec<(&str, &str)> = s
        .envs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let server = Server::start(&s.data(), &envs).await;
    let op = Client::new(&server.base, &operator);
    let dev = Client::new(&server.base, &developer);
    let secrets = server_secrets(&s);
    if !postgres {
        assert!(
            secrets.len() > 4,
            "the SQLite run has a key file to protect"
        );
    }

    let data = s.data();
    let outside = s.root.path().join("secret");
    let forbidden: Vec<(String, &str)> = vec![
        ("os.environ/MODELREG_JWT_HS256_SECRET".into(), "env"),
        ("os.environ/MODELREG_MASTER_KEY".into(), "env"),
        ("os.environ/SERVER_SECRET".into(), "env"),
        ("os.environ/TENANT_B_KEY".into(), "env"),
        ("os.environ/NOT_SET_ANYWHERE".into(), "env"),
        (
            format!("file:{}", data.join("master.key").display()),
            "file",
        ),
        (
            format!("file:{}", data.join("modelreg.db").display()),
            "file",
        ),
        (
            format!("file:{}", outside.join("sa-token").display()),
            "file",
        ),
        (
            format!("file:{}/../secret/sa-token", s.granted().display()),
            "file",
        ),
        (
            format!("file:{}", outside.join("missing").display()),
            "file",
        ),
        ("file:/proc/self/environ".into(), "file"),
    ];

    // 1. Verify before save: each answers the same refusal, whether or not the thing exists,
    //    and the listener is never called.
    let mut messages: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (reference, kind) in &forbidden {
        let (status, body) = op
            .send(
                Method::POST,
                "/assets/models/verify",
                Some(model("x", &forbidden_base, reference)),
            )
            .await;
        assert_eq!(status, 200, "{reference}: {body}");
        assert_eq!(body["verified"], false, "{reference}: {body}");
        let message = body["message"].as_str().unwrap().to_owned();
        assert!(
            !message.contains(reference.as_str())
                && !message.contains(reference.split(['/', ':']).next_back().unwrap()),
            "the reference is named in {message}"
        );
        messages.entry(kind).or_default().push(message);
    }
    for (kind, all) in &messages {
        assert!(
            all.windows(2).all(|w| w[0] == w[1]),
            "{kind} refusals differ: {all:#?}"
        );
    }
    assert!(
        log.requests().is_empty(),
        "a refused reference still called the listener: {:?}",
        log.requests()
    );

    // A granted reference works, from the environment and from a file.
    for reference in [
        "os.environ/ALLOWED_KEY".to_owned(),
        format!("file:{}", s.granted().join("allowed-key").display()),
    ] {
        let (status, body) = op
            .send(
                Method::POST,
                "/assets/models/verify",
                Some(model("x", &base, &reference)),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["verified"], true, "{reference}: {body}");
    }
    assert_eq!(log.requests().len(), 2);

    // 2. Stored models, verified by the operator, then by the background checker.
    let mut stored = Vec::new();
    for (i, (reference, _)) in forbidden.iter().enumerate() {
        let (status, body) = dev
            .send(
                Method::POST,
                "/assets/models",
                Some(model(&format!("forbidden {i}"), &forbidden_base, reference)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        stored.push(body["resource_uri"].as_str().unwrap().to_owned());
    }
    let (status, body) = dev
        .send(
            Method::POST,
            "/assets/models",
            Some(model("granted", &base, "os.environ/ALLOWED_KEY")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let granted = body["resource_uri"].as_str().unwrap().to_owned();
    for uri in &stored {
        let (status, body) = op
            .send(Method::POST, &format!("/assets/models/{uri}/verify"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["verified"], false, "{uri}: {body}");
        let (_, m) = op
            .send(Method::GET, &format!("/assets/models/{uri}"), None)
            .await;
        assert_eq!(m["status"], "ERROR");
    }
    let (_, body) = op
        .send(
            Method::POST,
            &format!("/assets/models/{granted}/verify"),
            None,
        )
        .await;
    assert_eq!(body["verified"], true, "{body}");

    // The checker re-verifies every model (a check each second): wait until it has done so
    // for all of them, as the history shows.
    let all: Vec<&String> = stored.iter().chain([&granted]).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for uri in all {
        loop {
            let (_, h) = op
                .send(Method::GET, &format!("/assets/models/{uri}/history"), None)
                .await;
            let by_checker = h["data"].as_array().is_some_and(|events| {
                events
                    .iter()
                    .any(|e| e["principal"] == "system:health-checker")
            });
            if by_checker {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the checker did not verify {uri}: {h}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (_, m) = op
        .send(Method::GET, &format!("/assets/models/{granted}"), None)
        .await;
    assert_eq!(m["status"], "ACTIVE", "{m}");
    assert_nothing_leaked(&log, &secrets);
    // Every request the listener got came from a granted reference: none was made for a
    // model with a refused one, by either endpoint or the checker.
    let requests = log.requests();
    assert!(
        requests.iter().all(|r| r.uri.starts_with("/openai/v1/")),
        "a refused reference led to a request: {requests:?}"
    );
    assert!(requests.len() >= 4, "{requests:?}");
    drop(server);
}

#[tokio::test]
async fn references_reach_only_what_the_operator_granted_sqlite() {
    references_reach_only_what_the_operator_granted(false).await;
}

#[tokio::test]
async fn references_reach_only_what_the_operator_granted_postgres() {
    references_reach_only_what_the_operator_granted(true).await;
}

/// The operator's grants are checked at start-up: a grant of the server's own settings or of
/// its own files stops the server with a clear message instead of being silently narrowed.
#[tokio::test]
async fn a_grant_of_the_servers_own_settings_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("inner")).unwrap();
    let data_s = data.display().to_string();
    let inner = data.join("inner").display().to_string();
    for (key, value, says) in [
        (
            "MODELREG_REFERENCE_ENV",
            "MODELREG_MASTER_KEY",
            "never granted",
        ),
        ("MODELREG_REFERENCE_ENV", "PG*", "never granted"),
        ("MODELREG_REFERENCE_DIRS", inner.as_str(), "own files"),
        ("MODELREG_REFERENCE_DIRS", "/no/such/dir", "does not exist"),
        ("MODELREG_REFERENCE_GRANTS", "[{\"env\": 1}]", "not valid"),
    ] {
        // A server that accepted the grant would serve until killed: the timeout fails it.
        let (ok, _, stderr) = tokio::time::timeout(
            Duration::from_secs(30),
            output(
                &["serve", "--listen", "127.0.0.1:0", "--data-dir", &data_s],
                &[(key, value)],
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{key}={value}: the server started"));
        assert!(!ok, "{key}={value} was accepted");
        assert!(stderr.contains(says), "{key}={value}: {stderr}");
    }
    assert!(Path::new(&data_s).exists());
}

/// After an upgrade, or a grant withdrawn, models that refer to what no grant covers would
/// turn ERROR one by one as they are verified. The start-up check counts them and says how to
/// grant, so the operator learns it at once.
#[tokio::test]
async fn the_start_up_check_counts_references_no_grant_covers() {
    let s = setup(false).await;
    let developer = token(&s, "tenant-a", "developer", "dev").await;
    let envs: Vec<(&str, &str)> = s
        .envs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| !k.starts_with("MODELREG_CHECK_"))
        .collect();
    let server = Server::start(&s.data(), &envs).await;
    let dev = Client::new(&server.base, &developer);
    for (name, key) in [
        ("granted", "os.environ/ALLOWED_KEY"),
        ("other org's", "os.environ/TENANT_B_KEY"),
        ("plain", "sk-plain-value"),
    ] {
        let (status, body) = dev
            .send(
                Method::POST,
                "/assets/models",
                Some(model(name, "http://127.0.0.1:9/v1", key)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    server.kill9().await;
    let log = s.root.path().join("second-start.log");
    let _server = Server::start_with_log(&s.data(), &envs, Some(&log)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("stored model(s) refer to") {
            assert!(
                text.contains("1 stored model(s) refer to")
                    && text.contains("MODELREG_REFERENCE_ENV"),
                "{text}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no warning: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// LiteLLM's own examples write `api_base: os.environ/AZURE_API_BASE`. It is stored as a
/// reference, and resolved for a probe only where the operator granted the variable, like a
/// credential reference; what it names must be a URL.
#[tokio::test]
async fn an_api_base_reference_resolves_only_where_granted() {
    let s = setup(false).await;
    let (addr, log) = testing::start_recording().await;
    let developer = token(&s, "tenant-a", "developer", "dev").await;
    let base = format!("http://{addr}/azure");
    let mut envs: Vec<(&str, &str)> = s
        .envs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| !k.starts_with("MODELREG_CHECK_"))
        .collect();
    envs.extend([
        ("ALLOWED_AZURE_BASE", base.as_str()),
        ("ALLOWED_NOT_A_URL", "no url here"),
        ("OTHER_AZURE_BASE", base.as_str()),
    ]);
    let server = Server::start(&s.data(), &envs).await;
    let dev = Client::new(&server.base, &developer);
    let verify = |name: &'static str, api_base: &'static str| {
        let dev = &dev;
        async move {
            let (status, body) = dev
                .send(
                    Method::POST,
                    "/assets/models",
                    Some(json!({"name": name, "litellm_model": "azure/my-deployment",
                                "api_base": api_base, "api_version": "2024-06-01",
                                "credentials": {"api_key": testing::GOOD_KEY}})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["api_base"], api_base, "stored as the reference");
            let uri = body["resource_uri"].as_str().unwrap().to_owned();
            let (status, body) = dev
                .send(Method::POST, &format!("/assets/models/{uri}/verify"), None)
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let granted = verify("granted", "os.environ/ALLOWED_AZURE_BASE").await;
    assert_eq!(granted["verified"], true, "{granted}");
    let before = log.requests().len();
    let other = verify("other", "os.environ/OTHER_AZURE_BASE").await;
    assert_eq!(other["verified"], false);
    let message = other["message"].as_str().unwrap();
    assert!(
        message.starts_with("api_base refers to an environment variable")
            && !message.contains("OTHER_AZURE_BASE")
            && !message.contains(&addr.to_string()),
        "{message}"
    );
    let not_url = verify("not a url", "os.environ/ALLOWED_NOT_A_URL").await;
    assert_eq!(not_url["verified"], false);
    let message = not_url["message"].as_str().unwrap();
    assert!(
        message.contains("not an absolute http(s) URL") && !message.contains("no url here"),
        "{message}"
    );
    assert_eq!(
        log.requests().len(),
        before,
        "a refused api_base was called"
    );
    // A malformed reference is refused when written.
    let (status, body) = dev
        .send(
            Method::POST,
            "/assets/models",
            Some(json!({"name": "bad", "litellm_model": "azure/x",
                        "api_base": "os.environ/not-a-name", "credentials": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(!body.to_string().contains("not-a-name"), "{body}");
}
