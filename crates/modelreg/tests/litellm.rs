//! `modelreg import` and `modelreg export --format litellm` against a real server, on SQLite
//! and PostgreSQL: a real-world config goes in, an export that satisfies LiteLLM's documented
//! schema comes out, and import → export → import loses nothing and changes nothing.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path};

use common::*;
use modelreg_store::testing::PgSchema;
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/litellm")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// A YAML file as JSON.
fn read_yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's schema, compiled.
fn litellm_schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("config.schema.json")).unwrap())
            .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the fixture is a valid JSON Schema")
}

fn assert_valid(config: &Value) {
    let schema = litellm_schema();
    let errors: Vec<String> = schema
        .iter_errors(config)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not a valid LiteLLM config: {errors:#?}");
}

/// The counts line of a successful import.
fn summary(run: &Run) -> &str {
    run.ok();
    run.stdout.lines().last().unwrap_or_default()
}

/// `litellm_params` keys that carry credentials: only references may appear.
const SECRET_PARAMS: [&str; 5] = [
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_region_name",
    "organization",
];

async fn round_trip(envs: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), envs).await;
    let token = match &server.token {
        Some(t) => t.clone(),
        None => panic!("a fresh store mints a token"),
    };
    let client_env = |project: &'static str| -> Vec<(String, String)> {
        vec![
            ("MODELREG_SERVER".into(), server.base.clone()),
            ("MODELREG_TOKEN".into(), token.clone()),
            ("MODELREG_PROJECT".into(), project.into()),
            (
                "MODELREG_PROFILE_FILE".into(),
                dir.path().join("none.toml").to_str().unwrap().into(),
            ),
        ]
    };
    let run = |args: Vec<String>, project: &'static str| {
        let env = client_env(project);
        async move {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&args, &env, None).await
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    // A real-world config: every entry is created, what has no place is reported.
    let first = run(s(&["import", &fixture("real_world.yaml")]), "team").await;
    first.ok();
    assert_eq!(
        summary(&first),
        "created 8, updated 0, unchanged 0, failed 0"
    );
    assert!(
        first
            .stdout
            .starts_with("+ gpt-4o-eu (create)\n+ gpt-4o (create)\n"),
        "{}",
        first.stdout
    );
    for reported in [
        "not imported (not model configuration): general_settings, litellm_settings, router_settings",
        "llama3: kept out (no such model field): litellm_params.stream_timeout\n",
    ] {
        assert!(
            first.stderr.contains(reported),
            "{reported} in\n{}",
            first.stderr
        );
    }
    assert!(
        !first.stderr.contains("gpt-4o-eu: kept out"),
        "base_model has a field: {}",
        first.stderr
    );
    // Idempotent: a second run changes nothing.
    let second = run(s(&["import", &fixture("real_world.yaml")]), "team").await;
    assert_eq!(
        summary(&second),
        "created 0, updated 0, unchanged 8, failed 0",
        "{}",
        second.stdout
    );
    assert_eq!(
        second.stdout.lines().count(),
        1,
        "nothing to list: {}",
        second.stdout
    );

    // What was stored: merge keys applied, quoted numbers read, references kept, keyless
    // entries marked, deprecation carried.
    let c = Client::new(&server.base, &token);
    let get = |uri: &'static str| {
        let c = &c;
        async move {
            let res = c
                .http
                .get(format!("{}/assets/models/{uri}", c.base))
                .bearer_auth(&c.token)
                .header("x-project-id", "team")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{uri}");
            res.json::<Value>().await.unwrap()
        }
    };
    let eu = get("gpt-4o-eu").await;
    assert_eq!(eu["api_version"], "2024-02-15-preview");
    assert_eq!(eu["tpm"], 120000);
    assert_eq!(eu["provider"], "azure");
    assert_eq!(eu["max_input_tokens"], 128000);
    // Azure: priced by its base model; the limits the file gives are the catalog's.
    assert_eq!(eu["base_model"], "azure/gpt-4o");
    assert_eq!(eu["catalog"]["key"], "azure/gpt-4o");
    assert_eq!(eu["catalog"]["fields"]["max_input_tokens"], "catalog");
    assert_eq!(eu["catalog"]["fields"]["max_output_tokens"], "catalog");
    let ca = get("gpt-4o").await;
    assert_eq!(ca["rpm"], 300);
    assert_eq!(
        ca["tags"],
        json!(["free", "canada", "paid"]),
        "litellm_params.tags (LiteLLM's tag routing) first, then model_info.tags, once each"
    );
    let claude = get("claude-3-5-sonnet").await;
    assert_eq!(claude["default_max_tokens"], 4096);
    assert_eq!(claude["default_temperature"], 0.2);
    assert_eq!(claude["tags"], json!(["prod", "bedrock"]));
    assert_eq!(
        claude["credential_fields"],
        json!([
            "aws_access_key_id",
            "aws_region_name",
            "aws_secret_access_key"
        ])
    );
    assert_eq!(get("llama3").await["credential_fields"], json!(["keyless"]));
    let davinci = get("legacy-davinci").await;
    assert_eq!(davinci["status"], "DEPRECATED");
    assert_eq!(davinci["status_message"], "replaced by gpt-4o-mini");
    assert_eq!(get("model").await["litellm_model"], "*");

    // Export: LiteLLM's schema holds, credentials are references only, .env.example names
    // each variable, file order is kept.
    let out = dir.path().join("export");
    std::fs::create_dir(&out).unwrap();
    let config_path = out.join("config.yaml");
    let exported = run(
        s(&[
            "export",
            "--format",
            "litellm",
            "-o",
            config_path.to_str().unwrap(),
        ]),
        "team",
    )
    .await;
    exported.ok();
    let config = read_yaml(&config_path);
    assert_valid(&config);
    let list = config["model_list"].as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|e| e["model_info"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "gpt-4o-eu",
            "gpt-4o",
            "claude-3-5-sonnet",
            "text-embedding-3-large",
            "llama3",
            "model",
            "openai",
            "legacy-davinci"
        ]
    );
    for entry in list {
        for key in SECRET_PARAMS {
            if let Some(v) = entry["litellm_params"].get(key) {
                assert!(
                    v.as_str().unwrap().starts_with("os.environ/"),
                    "{key} = {v}"
                );
            }
        }
    }
    assert_eq!(
        list[2]["litellm_params"]["aws_access_key_id"],
        "os.environ/AWS_ACCESS_KEY_ID"
    );
    assert_eq!(
        list[2]["litellm_params"]["aws_region_name"],
        "os.environ/MODELREG_CLAUDE_3_5_SONNET_AWS_REGION_NAME",
        "a stored literal is exported as a generated variable, never as its value"
    );
    assert!(
        list.iter()
            .flat_map(|e| e["litellm_params"].as_object().unwrap().values())
            .all(|v| v != "us-east-1"),
        "no credential value is exported"
    );
    assert_eq!(
        list[1]["litellm_params"]["tags"],
        json!(["free", "canada", "paid"]),
        "tags are exported where LiteLLM routes by them"
    );
    assert_eq!(
        list[1]["model_info"]["tags"],
        list[1]["litellm_params"]["tags"]
    );
    assert!(list[0]["litellm_params"].get("tags").is_none());
    assert_eq!(list[7]["model_info"]["deprecated"], true);
    assert!(list[4]["litellm_params"].get("keyless").is_none());
    let example = std::fs::read_to_string(out.join(".env.example")).unwrap();
    for var in [
        "AZURE_API_KEY=",
        "AWS_SECRET_ACCESS_KEY=",
        "OPENAI_ORG_ID=",
        "MODELREG_CLAUDE_3_5_SONNET_AWS_REGION_NAME=",
    ] {
        assert!(example.lines().any(|l| l == var), "{var} in\n{example}");
    }

    // Round trip: the export imported elsewhere exports the same, and re-imports as unchanged.
    let copied = run(s(&["import", config_path.to_str().unwrap()]), "copy").await;
    assert_eq!(
        summary(&copied),
        "created 8, updated 0, unchanged 0, failed 0"
    );
    let copy_path = out.join("copy.yaml");
    run(
        s(&[
            "export",
            "--format",
            "litellm",
            "-o",
            copy_path.to_str().unwrap(),
        ]),
        "copy",
    )
    .await
    .ok();
    assert_eq!(read_yaml(&copy_path)["model_list"], config["model_list"]);
    let again = run(s(&["import", config_path.to_str().unwrap()]), "copy").await;
    assert_eq!(
        summary(&again),
        "created 0, updated 0, unchanged 8, failed 0"
    );
    // Into the original project, only the literal region differs: the export made it a
    // reference, so that one credential changes and nothing else.
    let back = run(s(&["import", config_path.to_str().unwrap()]), "team").await;
    assert_eq!(
        summary(&back),
        "created 0, updated 1, unchanged 7, failed 0"
    );
    assert!(
        back.stdout
            .starts_with("~ claude-3-5-sonnet (credential values)\n"),
        "{}",
        back.stdout
    );

    // A dry run shows the diff of an edited file and changes nothing.
    let edited = std::fs::read_to_string(fixture("real_world.yaml"))
        .unwrap()
        .replace("rpm: 300", "rpm: 350")
        .replace("tags: [prod, bedrock]", "tags: [prod]");
    let edited_path = out.join("edited.yaml");
    std::fs::write(&edited_path, edited).unwrap();
    let dry = run(
        s(&["import", "--dry-run", edited_path.to_str().unwrap()]),
        "team",
    )
    .await;
    dry.ok();
    assert!(
        dry.stdout.contains("~ gpt-4o\n    rpm: 300 → 350"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("~ claude-3-5-sonnet\n    tags: [\"prod\",\"bedrock\"] → [\"prod\"]"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("would be created 0, would be updated 2, unchanged 6"),
        "{}",
        dry.stdout
    );
    assert_eq!(get("gpt-4o").await["rpm"], 300, "a dry run writes nothing");
    let applied = run(s(&["import", edited_path.to_str().unwrap()]), "team").await;
    assert!(
        applied
            .ok()
            .stdout
            .contains("created 0, updated 2, unchanged 6"),
        "{}",
        applied.stdout
    );
    assert_eq!(get("gpt-4o").await["rpm"], 350);

    // DISABLED models are left out of an export.
    let res = c
        .http
        .patch(format!("{}/assets/models/llama3", c.base))
        .bearer_auth(&c.token)
        .header("x-project-id", "team")
        .json(&json!({"status": "DISABLED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let without = run(
        s(&["export", "--format", "litellm", "--tags", "prod"]),
        "team",
    )
    .await;
    without.ok();
    let filtered: Value = serde_norway::from_str(&without.stdout).unwrap();
    assert_valid(&filtered);
    assert_eq!(
        filtered["model_list"].as_array().unwrap().len(),
        1,
        "the tag filter applies"
    );
    let all = run(s(&["export", "--format", "litellm"]), "team").await;
    assert!(
        all.ok().stderr.contains("left out 1 DISABLED model(s)"),
        "{}",
        all.stderr
    );
    assert!(!all.stdout.contains("ollama/llama3"));

    // Bad files are usage errors that name the problem.
    let broken = out.join("broken.yaml");
    std::fs::write(&broken, "model_list:\n  - model_name: x\n").unwrap();
    let bad = run(s(&["import", broken.to_str().unwrap()]), "team").await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("model_list[0]: needs a `litellm_params` mapping"),
        "{}",
        bad.stderr
    );
}

#[tokio::test]
async fn litellm_round_trip_on_sqlite() {
    round_trip(&[]).await;
}

#[tokio::test]
async fn litellm_round_trip_on_postgres() {
    let schema = PgSchema::create().await;
    round_trip(&[
        ("MODELREG_DATABASE_URL", &schema.url),
        ("MODELREG_MASTER_KEY", MASTER_KEY),
    ])
    .await;
}

#[tokio::test]
async fn export_with_values_resolves_references_into_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]).await;
    let c = Client::new(&server.base, server.token.as_deref().unwrap());
    let (s, m) = c
        .send(
            reqwest::Method::POST,
            "/assets/models",
            Some(json!({"name": "Prod", "litellm_model": "openai/gpt-4o",
                        "credentials": {"api_key": "sk-literal-value-91", "organization": "os.environ/MR_TEST_ORG",
                                        "jwt": "os.environ/MODELREG_JWT_HS256_SECRET"}})),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let env_file = dir.path().join("values.env");
    let config = dir.path().join("config.yaml");
    let args = [
        "export",
        "--format",
        "litellm",
        "--with-values",
        "--env-file",
        env_file.to_str().unwrap(),
        "--project",
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "-o",
        config.to_str().unwrap(),
    ];
    // References resolve only as the operator grants them, here every variable but the
    // server's own settings, which are never granted.
    let env = [
        ("MR_TEST_ORG", "org-from-env-55"),
        ("MODELREG_REFERENCE_ENV", "*"),
        ("MODELREG_JWT_HS256_SECRET", "jwt-secret-in-export-env-3"),
    ];
    let r = cli(&args, &env, None).await;
    r.ok();
    let values = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        values.contains("MODELREG_PROD_API_KEY='sk-literal-value-91'"),
        "{values}"
    );
    assert!(values.contains("MR_TEST_ORG='org-from-env-55'"), "{values}");
    assert!(
        values.contains("MODELREG_JWT_HS256_SECRET=''")
            && !values.contains("jwt-secret-in-export-env-3"),
        "{values}"
    );
    assert!(r.stderr.contains("\"jwt\""), "{}", r.stderr);
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("sk-literal-value-91") && !text.contains("org-from-env-55"));
    assert!(!r.stdout.contains("sk-literal") && !r.stderr.contains("sk-literal"));
    // The values file is never overwritten.
    let again = cli(&args, &env, None).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("File exists"), "{}", again.stderr);
    // Without a grant the reference is not resolved: reported by model and key, and its
    // value left empty.
    std::fs::remove_file(&env_file).unwrap();
    let unset = cli(&args, &[("MR_TEST_ORG", "org-from-env-55")], None).await;
    unset.ok();
    assert!(
        unset.stderr.contains("prod") && unset.stderr.contains("\"organization\""),
        "{}",
        unset.stderr
    );
    assert!(!unset.stderr.contains("org-from-env-55"));
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains("MR_TEST_ORG=''")
    );
}

/// Marks the database as migrated by a newer modelreg.
async fn add_future_migration(url: &str) {
    use sqlx::Connection;
    let sql = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
               VALUES (99990101000000, 'from the future', TRUE, $1, 0)";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql)
            .bind(vec![0u8])
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.replace("$1", "?")))
            .bind(vec![0u8])
            .execute(&mut c)
            .await
            .unwrap();
    }
}

async fn newer_schema_is_refused(url: &str, envs: &[(&str, &str)]) {
    let migrate = ["migrate", "--database-url", url];
    cli(&migrate, envs, None).await.ok();
    add_future_migration(url).await;
    let refused = cli(&migrate, envs, None).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("has schema version 99990101000000, newer than this modelreg")
            && refused.stderr.contains("Run that version or a later one"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn an_older_binary_refuses_a_newer_schema_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("modelreg.db").display());
    newer_schema_is_refused(&url, &[]).await;
}

#[tokio::test]
async fn an_older_binary_refuses_a_newer_schema_on_postgres() {
    let schema = PgSchema::create().await;
    newer_schema_is_refused(&schema.url, &[]).await;
}

/// A server of its own, and client commands against one of its projects.
struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    token: String,
}

impl Setup {
    async fn start() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("data"), &[]).await;
        let token = server.token.clone().expect("a fresh store mints a token");
        Setup { dir, server, token }
    }

    /// `Client::send` works in the project `demo`.
    fn api(&self) -> Client {
        Client::new(&self.server.base, &self.token)
    }

    async fn create(&self, body: Value) {
        let (status, reply) = self
            .api()
            .send(reqwest::Method::POST, "/assets/models", Some(body))
            .await;
        assert_eq!(status, 201, "{reply}");
    }

    async fn run(&self, args: &[&str], project: &str) -> Run {
        let profile = self.dir.path().join("none.toml");
        let env = [
            ("MODELREG_SERVER", self.server.base.as_str()),
            ("MODELREG_TOKEN", self.token.as_str()),
            ("MODELREG_PROJECT", project),
            ("MODELREG_PROFILE_FILE", profile.to_str().unwrap()),
        ];
        cli(args, &env, None).await
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// Strings that YAML 1.1 readers (PyYAML, and so LiteLLM) take for something else when they
/// are written plain: booleans, nulls, sexagesimal and underscore integers, octal, floats,
/// dates and timestamps, and the merge and value keys. YAML 1.2 readers take most as strings.
const YAML_1_1_TRAPS: [&str; 24] = [
    "on",
    "OFF",
    "yes",
    "No",
    "y",
    "n",
    "true",
    "null",
    "~",
    "1_000",
    "12:30",
    "190:20:30",
    "0755",
    "0x1F",
    "+12",
    "1e3",
    "6.8523015e+5",
    ".inf",
    "-.Inf",
    ".NaN",
    "2002-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "=",
    "<<",
];

/// `litellm_params` and `model_info` keys whose values are numbers or booleans (and every
/// `supports_*` flag).
const NOT_STRINGS: [&str; 12] = [
    "rpm",
    "tpm",
    "timeout",
    "max_tokens",
    "temperature",
    "max_input_tokens",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "deprecated",
];

/// Every plain (unquoted) scalar of a block-style YAML text, as `(key, value)`: a sequence
/// item has the key of its sequence, a plain mapping key is reported with an empty value.
fn plain_scalars(text: &str) -> Vec<(String, String)> {
    /// The length of the double-quoted scalar at the start of `s`, quotes included.
    fn quoted_len(s: &str) -> usize {
        let mut escaped = false;
        for (i, c) in s.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return i + 1,
                _ => {}
            }
        }
        panic!("unterminated quoted scalar: {s}");
    }
    let mut plain = Vec::new();
    let mut keys: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        let mut rest = body;
        let mut item_indent = indent;
        while let Some(r) = rest.strip_prefix("- ") {
            rest = r;
            item_indent += 2;
        }
        // A key: quoted, or plain up to `:`.
        let (key, value) = if rest.starts_with('"') {
            let n = quoted_len(rest);
            match rest[n..].strip_prefix(':') {
                Some(v) => (Some(rest[..n].to_owned()), v.trim_start()),
                None => (None, rest),
            }
        } else {
            match rest.split_once(':') {
                Some((k, v)) if v.is_empty() || v.starts_with(' ') => {
                    plain.push((k.to_owned(), String::new()));
                    (Some(k.to_owned()), v.trim_start())
                }
                _ => (None, rest),
            }
        };
        match key {
            Some(k) => {
                keys.retain(|(i, _)| *i < item_indent);
                keys.push((item_indent, k));
            }
            None => keys.retain(|(i, _)| *i <= indent),
        }
        if !value.is_empty() && !value.starts_with('"') {
            let owner = keys.last().map(|(_, k)| k.clone()).unwrap_or_default();
            plain.push((owner, value.to_owned()));
        } else if value.starts_with('"') {
            assert_eq!(quoted_len(value), value.len(), "one scalar a line: {line}");
        }
    }
    plain
}

#[tokio::test]
async fn the_export_quotes_every_string_that_yaml_1_1_would_misread() {
    let s = Setup::start().await;
    s.create(json!({
        "resource_uri": "azure-eu", "name": "gpt-4o", "litellm_model": "azure/gpt-4o-eu",
        "api_base": "https://example-eu.openai.azure.com/", "api_version": "2024-06-01",
        "description": "2024-01-01", "tags": YAML_1_1_TRAPS, "rpm": 600, "tpm": 120000,
        "timeout": 30, "default_temperature": 0.2, "default_max_tokens": 4096,
        "max_input_tokens": 128000,
        "credentials": {"api_key": "os.environ/AZURE_API_KEY", "on": "os.environ/ON_KEY"}
    }))
    .await;
    s.create(json!({
        "name": "no", "litellm_model": "openai/gpt-4o-mini", "api_version": "1_0",
        "description": "line one\nkey: value # not a comment\n\t\"quoted\" \\ \u{2028}",
        "credentials": {"keyless": true}
    }))
    .await;
    let export = s.run(&["export", "--format", "litellm"], "demo").await;
    let text = &export.ok().stdout;

    for line in [
        "- model_name: \"gpt-4o\"",
        "    api_version: \"2024-06-01\"",
        "    description: \"2024-01-01\"",
        "- model_name: \"no\"",
        "    id: \"no\"",
        "    - \"on\"",
        "    - \"1_000\"",
        "    - \"12:30\"",
        "    - \"0755\"",
        "    \"on\": \"os.environ/ON_KEY\"",
        "    rpm: 600",
        "    timeout: 30.0",
        "    temperature: 0.2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    // No string is left plain: only numbers, under the keys that hold numbers, and plain keys
    // that are identifiers no YAML version reads as anything else.
    for (key, value) in plain_scalars(text) {
        if value.is_empty() {
            let identifier = key.starts_with(|c: char| c.is_ascii_lowercase())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            let special = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
            assert!(
                identifier && !special.contains(&key.as_str()),
                "plain key {key:?}"
            );
        } else {
            let number = value.parse::<i64>().is_ok()
                || (value.contains('.') && value.parse::<f64>().is_ok() && !value.contains('e'));
            let flag = key.starts_with("supports_") && (value == "true" || value == "false");
            assert!(
                (NOT_STRINGS.contains(&key.as_str()) && (number || value == "true")) || flag,
                "{key}: {value} is plain in\n{text}"
            );
        }
    }
    // YAML 1.2 reads back every value exactly.
    let config: Value = serde_norway::from_str(text).unwrap();
    assert_valid(&config);
    let list = config["model_list"].as_array().unwrap();
    assert_eq!(list[0]["model_info"]["tags"], json!(YAML_1_1_TRAPS));
    assert_eq!(list[0]["litellm_params"]["tags"], json!(YAML_1_1_TRAPS));
    assert_eq!(list[0]["litellm_params"]["api_version"], "2024-06-01");
    assert_eq!(list[0]["litellm_params"]["on"], "os.environ/ON_KEY");
    assert_eq!(
        list[1]["model_info"]["description"],
        "line one\nkey: value # not a comment\n\t\"quoted\" \\ \u{2028}"
    );

    // Idempotent with import: the export imported elsewhere exports the same text, and
    // re-imports as unchanged.
    let config_path = s.file("config.yaml", text);
    let copied = s.run(&["import", &config_path], "copy").await;
    assert_eq!(
        summary(&copied),
        "created 2, updated 0, unchanged 0, failed 0"
    );
    let again = s.run(&["export", "--format", "litellm"], "copy").await;
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&again.ok().stdout), body(text));
    let back = s.run(&["import", &config_path], "demo").await;
    assert_eq!(
        summary(&back),
        "created 0, updated 0, unchanged 2, failed 0"
    );
}

#[tokio::test]
async fn a_dry_run_refuses_each_entry_the_real_run_would() {
    let s = Setup::start().await;
    s.create(json!({"resource_uri": "existing", "name": "existing",
                    "litellm_model": "openai/gpt-4o",
                    "credentials": {"api_key": "os.environ/OPENAI_API_KEY"}}))
        .await;
    let file = s.file(
        "config.yaml",
        "model_list:
  - model_name: fine
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/OPENAI_API_KEY}
  - model_name: zero-rpm
    litellm_params: {model: openai/gpt-4o, rpm: 0}
  - model_name: bad-base
    litellm_params: {model: openai/gpt-4o, api_base: not a url}
  - model_name: wordy-tpm
    litellm_params: {model: openai/gpt-4o, tpm: lots}
  - model_name: masked-key
    litellm_params: {model: openai/gpt-4o, api_key: '****'}
  - model_name: long-message
    litellm_params: {model: openai/gpt-4o}
    model_info: {deprecated: true, deprecation_message: \"bell \\a\"}
  - model_name: existing
    litellm_params: {model: openai/gpt-4o, temperature: 12, api_key: os.environ/OPENAI_API_KEY}
",
    );
    let refused = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("! "))
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect()
    };
    let dry = s.run(&["import", "--dry-run", &file], "demo").await;
    assert_eq!(dry.code, 1, "{}\n{}", dry.stdout, dry.stderr);
    assert_eq!(
        refused(&dry),
        [
            "zero-rpm",
            "bad-base",
            "wordy-tpm",
            "masked-key",
            "long-message",
            "existing"
        ],
        "{}",
        dry.stderr
    );
    for reason in [
        "! zero-rpm: validation failed: rpm: must be between 1 and 2147483647 (got 0)",
        "! bad-base: validation failed: api_base: must be an absolute http(s) URL",
        "! wordy-tpm: validation failed: tpm: invalid type: string, expected",
        "! masked-key: validation failed: credentials: value of \"api_key\" looks like a masked placeholder",
        "! long-message: validation failed: status_message: must not contain control characters",
        "! existing: validation failed: default_temperature: must be between 0 and 9.99 (got 12)",
    ] {
        assert!(dry.stderr.contains(reason), "{reason} in\n{}", dry.stderr);
    }
    assert!(
        !dry.stderr.contains("****"),
        "values are never echoed: {}",
        dry.stderr
    );
    assert!(
        dry.stdout
            .ends_with("would be created 1, would be updated 0, unchanged 0, failed 6\n"),
        "{}",
        dry.stdout
    );
    let (status, _) = s
        .api()
        .send(reqwest::Method::GET, "/assets/models/fine", None)
        .await;
    assert_eq!(status, 404, "a dry run writes nothing");

    // The real run refuses the same entries.
    let real = s.run(&["import", &file], "demo").await;
    assert_eq!(real.code, 1, "{}\n{}", real.stdout, real.stderr);
    assert_eq!(refused(&real), refused(&dry), "{}", real.stderr);
}
