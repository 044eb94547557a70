//! Leak-proofing: a whole lifecycle with distinctive secret values, on each backend, through
//! the real binary with logging at trace level. Every response body and header, every log line,
//! and the raw storage (the SQLite files, or every row of the PostgreSQL tables) are searched
//! for each secret in raw, base64 (standard and URL-safe, every alignment), URL-encoded, JSON-
//! escaped and hex forms.
//!
//! Both verify endpoints run for real against a fake provider (which receives the secrets, as
//! a provider must); the model's history, the organization's audit log, `/v1/models`, the
//! LiteLLM export and `/metrics` are read, and the CLI's `models`, `export` and `import` run
//! against the server with their output and written files searched too.

mod common;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE},
};
use common::*;
use modelreg_store::testing::PgSchema;
use serde_json::{Value, json};

/// Secrets with characters that encode differently in URLs, JSON and base64.
const SECRETS: [&str; 4] = [
    "sk-LEAK+CANARY/aaaa1111=",
    "sk-LEAK+CANARY/bbbb2222=",
    "LEAK\"CANARY\\cccc3333",
    "os-token-LEAK-CANARY-dddd4444",
];

/// Every form in which a secret could show up.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![
        secret.to_owned(),
        url_encode(secret),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
    ];
    // base64 of the secret inside larger data depends on its alignment: take each of the three
    // alignments and keep the characters that depend only on the secret's bytes.
    for pad in 0..3 {
        let mut data = vec![b'x'; pad];
        data.extend_from_slice(secret.as_bytes());
        for engine in [&STANDARD, &URL_SAFE] {
            let enc = engine.encode(&data);
            let skip = (pad * 4).div_ceil(3) + 1;
            let keep = secret.len() * 4 / 3 - 2;
            out.push(enc.chars().skip(skip).take(keep).collect());
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_clean(place: &str, hay: &str) {
    for secret in SECRETS {
        for form in forms(secret) {
            assert!(
                !hay.contains(&form),
                "secret {secret:?} found in {place} as {form:?}"
            );
        }
    }
}

struct Recorder {
    http: reqwest::Client,
    base: String,
    token: String,
    seen: String,
}

impl Recorder {
    /// Sends a request and records the whole response: status line, headers and body.
    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("x-project-id", "leak");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        self.seen.push_str(&format!("{status}\n"));
        for (k, v) in res.headers() {
            self.seen
                .push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        let text = res.text().await.unwrap();
        self.seen.push_str(&text);
        self.seen.push('\n');
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A request made to fail on purpose: method, path, body, extra headers, expected status.
type ErrorCase<'a> = (
    reqwest::Method,
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    u16,
);

async fn lifecycle(envs: &[(&str, &str)], dir: &tempfile::TempDir) -> (String, String) {
    let log = dir.path().join("serve.log");
    let mut all_envs = envs.to_vec();
    all_envs.push(("RUST_LOG", "trace"));
    let server = Server::start_with_log(dir.path(), &all_envs, Some(&log)).await;
    install_tls_provider();
    let mut r = Recorder {
        http: reqwest::Client::new(),
        base: server.base.clone(),
        token: server.token.clone().unwrap(),
        seen: String::new(),
    };
    use reqwest::Method as M;
    let [a, b, c, d] = SECRETS;
    let provider = modelreg_probe::testing::start().await;
    let api_base = format!("http://{provider}/openai/v1");
    let create = json!({"resource_uri": "leaky", "name": "Leaky", "litellm_model": "openai/gpt-4o",
                        "api_base": api_base, "credentials": {"api_key": a, "organization": d}})
    .to_string();
    assert_eq!(
        r.send(M::POST, "/assets/models", Some(&create), &[])
            .await
            .0,
        201
    );
    assert_eq!(
        r.send(M::GET, "/assets/models/leaky", None, &[]).await.0,
        200
    );
    assert_eq!(
        r.send(M::GET, "/assets/models?search=leaky", None, &[])
            .await
            .0,
        200
    );
    let (s, m) = r.send(M::GET, "/assets/models/leaky", None, &[]).await;
    assert_eq!(s, 200);
    let put = json!({"credentials": {"api_key": b}, "description": "rotated"}).to_string();
    assert_eq!(
        r.send(M::PUT, "/assets/models/leaky", Some(&put), &[])
            .await
            .0,
        200
    );
    let patch = json!({"extra": c}).to_string();
    assert_eq!(
        r.send(
            M::PATCH,
            "/assets/models/leaky/credentials",
            Some(&patch),
            &[]
        )
        .await
        .0,
        200
    );
    // Verification (the fake provider refuses these keys), and everything that reads back.
    let (s, v) = r
        .send(M::POST, "/assets/models/leaky/verify", None, &[])
        .await;
    assert_eq!((s, v["verified"].clone()), (200, json!(false)), "{v}");
    let unsaved = json!({"name": "u", "litellm_model": "openai/gpt-4o", "api_base": api_base,
                         "credentials": {"api_key": b, "extra": c}})
    .to_string();
    let (s, v) = r
        .send(M::POST, "/assets/models/verify", Some(&unsaved), &[])
        .await;
    assert_eq!((s, v["verified"].clone()), (200, json!(false)), "{v}");
    for path in [
        "/assets/models/leaky/history",
        "/assets/audit",
        "/v1/models",
        "/assets/exports/litellm",
        "/metrics",
    ] {
        let (s, body) = r.send(M::GET, path, None, &[]).await;
        assert_eq!(s, 200, "{path}: {body}");
    }
    // Errors caused on purpose, each carrying a secret.
    let errors: Vec<ErrorCase> = vec![
        (M::POST, "/assets/models", create.clone(), vec![], 409),
        (
            M::POST,
            "/assets/models",
            json!({"name": "x", "litellm_model": "y", "rpm": a, "credentials": {"k": b}})
                .to_string(),
            vec![],
            422,
        ),
        (
            M::POST,
            "/assets/models",
            json!({"name": "x", "litellm_model": "y", "credentials": a}).to_string(),
            vec![],
            422,
        ),
        (
            M::POST,
            "/assets/models",
            json!({"name": "x", "litellm_model": "y", "mode": b, "credentials": {"k": "v"}})
                .to_string(),
            vec![],
            422,
        ),
        (
            M::POST,
            "/assets/models",
            format!("{{\"name\": \"{a}\", broken"),
            vec![],
            400,
        ),
        (
            M::PUT,
            "/assets/models/leaky",
            put.clone(),
            vec![("if-match", "\"stale\"")],
            412,
        ),
        (
            M::PUT,
            "/assets/models/leaky",
            json!({"api_base": format!("https://user:{a}@h.example")}).to_string(),
            vec![],
            422,
        ),
        (
            M::PATCH,
            "/assets/models/leaky/credentials",
            json!({"api_key": "****", "other": c}).to_string(),
            vec![],
            422,
        ),
        (
            M::PATCH,
            "/assets/models/missing/credentials",
            patch.clone(),
            vec![],
            404,
        ),
        (
            M::PUT,
            "/assets/models/leaky",
            json!({"credentials": {"k": d}, "unknown_field": a}).to_string(),
            vec![],
            422,
        ),
    ];
    for (method, path, body, headers, want) in errors {
        let (s, e) = r.send(method.clone(), path, Some(&body), &headers).await;
        assert_eq!(s, want, "{method} {path}: {e}");
    }
    // Batches: creates and updates carrying secrets, operations that fail with a secret in
    // their body, an atomic batch rolled back, and batches refused whole.
    let batch = json!({"operations": [
        {"op": "create", "body": {"resource_uri": "batched", "name": "Batched",
            "litellm_model": "openai/gpt-4o", "credentials": {"api_key": a, "token": d}}},
        {"op": "update", "resource_uri": "leaky", "body": {"credentials": {"api_key": c}}},
        {"op": "set_status", "resource_uri": "leaky", "status": "DISABLED"},
        {"op": "create", "body": {"name": "x", "litellm_model": "y", "rpm": a,
            "credentials": {"k": b}}},
        {"op": "update", "resource_uri": "missing", "body": {"credentials": {"k": d}}},
    ]});
    let (s, v) = r
        .send(
            M::POST,
            "/assets/models:batch",
            Some(&batch.to_string()),
            &[],
        )
        .await;
    // `leaky` named twice: refused whole.
    assert_eq!(s, 422, "{v}");
    let batch = json!({"operations": [
        {"op": "create", "body": {"resource_uri": "batched", "name": "Batched",
            "litellm_model": "openai/gpt-4o", "credentials": {"api_key": a, "token": d}}},
        {"op": "update", "resource_uri": "leaky", "if_match": "\"stale\"",
            "body": {"credentials": {"api_key": c}}},
        {"op": "add_tags", "resource_uri": "batched-nope", "tags": ["t"]},
        {"op": "create", "body": {"name": "x", "litellm_model": "y", "rpm": a,
            "credentials": {"k": b}}},
    ]});
    let (s, v) = r
        .send(
            M::POST,
            "/assets/models:batch",
            Some(&batch.to_string()),
            &[],
        )
        .await;
    assert_eq!((s, v["succeeded"].clone()), (200, json!(1)), "{v}");
    // Atomic, failing in the database (`batched` is taken) after a create went in.
    let batch = json!({"operations": [
        {"op": "create", "body": {"resource_uri": "fresh", "name": "Fresh",
            "litellm_model": "openai/gpt-4o", "credentials": {"api_key": b}}},
        {"op": "create", "body": {"resource_uri": "batched", "name": "Again",
            "litellm_model": "openai/gpt-4o", "credentials": {"api_key": c}}},
    ]});
    let (s, v) = r
        .send(
            M::POST,
            "/assets/models:batch?atomic=true",
            Some(&batch.to_string()),
            &[],
        )
        .await;
    assert_eq!(
        (s, v["results"][1]["status"].clone()),
        (200, json!(409)),
        "{v}"
    );
    let batch = json!({"operations": [
        {"op": "set_status", "resource_uri": "batched", "status": "DISABLED"},
        {"op": "update", "resource_uri": "leaky", "body": {"credentials": {"api_key": c}}},
        {"op": "delete", "resource_uri": "batched"},
    ]})
    .to_string();
    // `batched` named twice; then a batch that is not one, with secrets in it.
    for body in [
        batch,
        json!({"operations": [{"op": "rotate", "secret": a}]}).to_string(),
        json!({"operations": [{"op": "create", "body": {"credentials": {"k": b}}}], "x": c})
            .to_string(),
        format!("{{\"operations\": [{{\"op\": \"create\", \"body\": \"{a}\""),
    ] {
        let (s, v) = r
            .send(M::POST, "/assets/models:batch", Some(&body), &[])
            .await;
        assert!(s == 422 || s == 400, "{s}: {v}");
    }
    let batch = json!({"operations": [
        {"op": "update", "resource_uri": "leaky", "body": {"credentials": {"api_key": c}}},
        {"op": "delete", "resource_uri": "batched"},
    ]})
    .to_string();
    let (s, v) = r
        .send(
            M::POST,
            "/assets/models:batch?atomic=true",
            Some(&batch),
            &[],
        )
        .await;
    assert_eq!((s, v["succeeded"].clone()), (200, json!(2)), "{v}");
    assert_eq!(m["credential_fields"], json!(["api_key", "organization"]));
    assert_eq!(
        r.send(M::DELETE, "/assets/models/leaky", None, &[]).await.0,
        204
    );
    // A model kept, so that storage holds live credentials too.
    let keep = json!({"resource_uri": "kept", "name": "Kept", "litellm_model": "openai/gpt-4o",
                      "credentials": {"api_key": a, "extra": c, "token": d}})
    .to_string();
    assert_eq!(
        r.send(M::POST, "/assets/models", Some(&keep), &[]).await.0,
        201
    );
    // The CLI: its output and the files it writes are part of what is searched.
    let out = dir.path().join("cli");
    std::fs::create_dir(&out).unwrap();
    let import_file = out.join("import.yaml");
    std::fs::write(
        &import_file,
        format!(
            "model_list:\n  - model_name: imported\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: {}\n",
            serde_json::to_string(b).unwrap()
        ),
    )
    .unwrap();
    let config = out.join("config.yaml");
    let env = [
        ("MODELREG_SERVER", server.base.as_str()),
        ("MODELREG_TOKEN", r.token.as_str()),
        ("MODELREG_PROJECT", "leak"),
        ("MODELREG_PROFILE_FILE", "/nonexistent/profiles.toml"),
    ];
    let runs = [
        vec!["import", import_file.to_str().unwrap()],
        vec!["import", "--dry-run", import_file.to_str().unwrap()],
        vec!["models", "get", "kept"],
        vec!["models", "get", "imported", "-o", "yaml"],
        vec!["models", "list", "-o", "json"],
        vec!["models", "verify", "kept"],
        vec!["models", "history", "kept"],
        vec![
            "export",
            "--format",
            "litellm",
            "-o",
            config.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let run = cli(&args, &env, None).await;
        assert!(
            run.code == 0 || args[1] == "verify",
            "{args:?}: {}",
            run.stderr
        );
        r.seen.push_str(&run.stdout);
        r.seen.push_str(&run.stderr);
    }
    r.seen.push_str(&std::fs::read_to_string(&config).unwrap());
    r.seen
        .push_str(&std::fs::read_to_string(out.join(".env.example")).unwrap());
    // What was recorded holds what each step returns, so the search below covers it.
    for proof in [
        "os.environ/MODELREG_KEPT_API_KEY",
        "MODELREG_LEAKY_EXTRA",
        "model.verify",
        "modelreg_verifications_total",
        "\"object\":\"list\"",
        "created 1, updated 0, unchanged 0, failed 0",
        // A table row, compared by its words: the field column is as wide as the longest
        // field name.
        "credential_fields api_key,extra,token",
    ] {
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            r.seen.contains(proof) || r.seen.lines().any(|l| words(l) == proof),
            "{proof} was not recorded"
        );
    }
    server.kill9().await;
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.lines().count() > 50,
        "trace logging was on: {} lines",
        logs.lines().count()
    );
    assert!(
        logs.contains("TRACE") || logs.contains("trace"),
        "trace lines were captured"
    );
    (r.seen, logs)
}

#[tokio::test]
async fn no_secret_leaks_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (responses, logs) = lifecycle(&[], &dir).await;
    assert_clean("the HTTP responses", &responses);
    assert_clean("the trace log", &logs);
    let mut storage = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("modelreg.db")
        {
            storage.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(
        storage.contains("credentials"),
        "the database file was read"
    );
    assert_clean("the SQLite database files", &storage);
}

#[tokio::test]
async fn no_secret_leaks_on_postgres() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (responses, logs) = lifecycle(
        &[
            ("MODELREG_DATABASE_URL", &schema.url),
            ("MODELREG_MASTER_KEY", MASTER_KEY),
        ],
        &dir,
    )
    .await;
    assert_clean("the HTTP responses", &responses);
    assert_clean("the trace log", &logs);
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema.name)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut storage = String::new();
    for table in &tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{table}\" t"
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        storage.push_str(&rows.join("\n"));
    }
    assert!(
        tables.len() >= 4 && storage.contains("kept"),
        "the tables were read: {tables:?}"
    );
    assert_clean("the PostgreSQL tables", &storage);
}

/// The detector itself: each form of a secret, embedded at any alignment, is found.
#[test]
fn the_detector_finds_every_form() {
    for secret in SECRETS {
        let mut samples = vec![
            format!("a {secret} b"),
            format!("q={}&x", url_encode(secret)),
            serde_json::json!({ "k": secret }).to_string(),
            secret
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ];
        for pad in 0..3 {
            let mut data = b"prefix".to_vec();
            data.extend(vec![b'y'; pad]);
            data.extend_from_slice(secret.as_bytes());
            data.extend_from_slice(b"suffix");
            samples.push(STANDARD.encode(&data));
            samples.push(URL_SAFE.encode(&data));
        }
        for sample in samples {
            let caught = std::panic::catch_unwind(|| assert_clean("sample", &sample)).is_err();
            assert!(caught, "{secret:?} not found in {sample:?}");
        }
    }
}
