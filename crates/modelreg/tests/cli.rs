//! The client commands against a real server process: `login`, every `models` command, their
//! output and exit statuses, completions and `--version`. Secrets given to the CLI never show
//! in what it prints.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::{Value, json};

const GOOD_KEY: &str = modelreg_probe::testing::GOOD_KEY;
const FILE_SECRET: &str = "sk-cli-file-secret-7Qx9";
const ORG_SECRET: &str = "org-cli-secret-44Zp";

fn assert_no_secrets(runs: &[&Run]) {
    for r in runs {
        for secret in [GOOD_KEY, FILE_SECRET, ORG_SECRET] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "a secret was echoed:\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
}

#[tokio::test]
async fn models_commands_work_end_to_end() {
    let provider = modelreg_probe::testing::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]).await;
    let token = server.token.clone().unwrap();
    let profiles = dir.path().join("profiles.toml");
    let profiles = profiles.to_str().unwrap();
    let env: &[(&str, &str)] = &[("MODELREG_PROFILE_FILE", profiles), ("COLUMNS", "72")];

    // login reads the token from stdin, checks it, and saves a private profile.
    let login = cli(
        &["login", "--server", &server.base, "--project", "demo"],
        env,
        Some(&format!("{token}\n")),
    )
    .await;
    login.ok();
    assert!(login.stdout.contains("saved profile 'default'"));
    let mode = std::fs::metadata(profiles).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let bad_login = cli(
        &[
            "login",
            "--server",
            &server.base,
            "--token",
            "mr_not-a-token",
            "--profile",
            "bad",
        ],
        env,
        None,
    )
    .await;
    assert_eq!(bad_login.code, 1);
    assert!(
        bad_login.stderr.contains("INVALID_TOKEN (401)"),
        "{}",
        bad_login.stderr
    );

    // create from flags, the credential as a flag.
    let api_base = format!("http://{provider}/openai/v1");
    let created = cli(
        &[
            "models",
            "create",
            "--name",
            "GPT-4o (prod)",
            "--model",
            "openai/gpt-4o",
            "--mode",
            "chat",
            "--tag",
            "prod,chat",
            "--rpm",
            "100",
            "--api-base",
            &api_base,
            "--credential",
            &format!("api_key={GOOD_KEY}"),
        ],
        env,
        None,
    )
    .await;
    created.ok();
    for line in [
        "resource_uri         gpt-4o-prod",
        "rpm                  100",
        "credential_fields    api_key",
    ] {
        assert!(
            created.stdout.contains(line),
            "{line} in\n{}",
            created.stdout
        );
    }
    assert!(created.stdout.contains("etag"), "{}", created.stdout);

    // create from a YAML file, credentials from stdin.
    let body = dir.path().join("claude.yaml");
    std::fs::write(
        &body,
        "name: Claude\nlitellm_model: anthropic/claude-3-5-sonnet\ndescription: Long context\ntags: [prod]\n",
    )
    .unwrap();
    let from_file = cli(
        &[
            "models",
            "create",
            "-f",
            body.to_str().unwrap(),
            "--credentials-stdin",
            "-o",
            "json",
        ],
        env,
        Some(&format!("{{\"api_key\": \"{FILE_SECRET}\"}}")),
    )
    .await;
    let claude = from_file.ok().json();
    assert_eq!(claude["resource_uri"], "claude");
    assert_eq!(claude["credential_fields"], json!(["api_key"]));
    // KEY=VALUE lines on stdin, and a reference.
    let third = cli(
        &[
            "models",
            "create",
            "--name",
            "Embed",
            "--model",
            "openai/text-embedding-3-small",
            "--mode",
            "embedding",
            "--credentials-stdin",
            "-o",
            "yaml",
        ],
        env,
        Some("# a comment\napi_key=os.environ/OPENAI_API_KEY\n"),
    )
    .await;
    let embed: Value = serde_norway::from_str(&third.ok().stdout).unwrap();
    assert_eq!(embed["resource_uri"], "embed");

    // get, as a table and as JSON.
    let got = cli(&["models", "get", "claude", "-o", "json"], env, None).await;
    assert_eq!(got.ok().json()["description"], "Long context");
    let by_id = cli(
        &["models", "get", claude["id"].as_str().unwrap()],
        env,
        None,
    )
    .await;
    assert!(by_id.ok().stdout.contains("Long context"));

    // list: a table that fits the terminal, JSON, YAML, filters, --all.
    let table = cli(&["models", "list"], env, None).await;
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("RESOURCE_URI"), "{}", table.stdout);
    assert!(
        lines.iter().all(|l| l.chars().count() <= 72),
        "wider than 72:\n{}",
        table.stdout
    );
    for uri in ["gpt-4o-prod", "claude", "embed"] {
        assert!(
            lines.iter().any(|l| l.starts_with(uri)),
            "{uri} in\n{}",
            table.stdout
        );
    }
    let prod = cli(
        &[
            "models", "list", "--tags", "prod", "--sort", "name:asc", "-o", "json",
        ],
        env,
        None,
    )
    .await;
    let names: Vec<Value> = prod.ok().json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, [json!("Claude"), json!("GPT-4o (prod)")]);
    let by_mode = cli(
        &["models", "list", "--mode", "embedding", "-o", "yaml"],
        env,
        None,
    )
    .await;
    let y: Value = serde_norway::from_str(&by_mode.ok().stdout).unwrap();
    assert_eq!(y["pagination"]["total_items"], 1);
    let all = cli(
        &["models", "list", "--all", "--limit", "1", "-o", "json"],
        env,
        None,
    )
    .await;
    assert_eq!(all.ok().json()["data"].as_array().unwrap().len(), 3);
    let searched = cli(
        &[
            "models",
            "list",
            "--search",
            "LONG",
            "-o",
            "json",
            "--provider",
            "anthropic",
        ],
        env,
        None,
    )
    .await;
    assert_eq!(searched.ok().json()["pagination"]["total_items"], 1);
    let bad_sort = cli(&["models", "list", "--sort", "colour:asc"], env, None).await;
    assert_eq!(bad_sort.code, 1);
    assert!(
        bad_sort.stderr.contains("VALIDATION_ERROR (422)"),
        "{}",
        bad_sort.stderr
    );

    // update: a refused value, then fields, a clear and one credential merged.
    let refused = cli(
        &["models", "update", "gpt-4o-prod", "--rpm", "0"],
        env,
        None,
    )
    .await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("VALIDATION_ERROR (422)") && refused.stderr.contains("rpm"),
        "{}",
        refused.stderr
    );
    let updated = cli(
        &[
            "models",
            "update",
            "claude",
            "--rpm",
            "200",
            "--clear",
            "description",
            "--credential",
            &format!("org={ORG_SECRET}"),
            "-o",
            "json",
        ],
        env,
        None,
    )
    .await;
    let u = updated.ok().json();
    assert_eq!(u["rpm"], 200);
    assert_eq!(u["description"], Value::Null);
    assert_eq!(u["credential_fields"], json!(["api_key", "org"]));
    let removed = cli(
        &[
            "models",
            "update",
            "claude",
            "--remove-credential",
            "org",
            "-o",
            "json",
        ],
        env,
        None,
    )
    .await;
    assert_eq!(removed.ok().json()["credential_fields"], json!(["api_key"]));
    let stale = cli(
        &[
            "models",
            "update",
            "claude",
            "--rpm",
            "1",
            "--if-match",
            "\"stale\"",
        ],
        env,
        None,
    )
    .await;
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("PRECONDITION_FAILED (412)"),
        "{}",
        stale.stderr
    );
    let nothing = cli(&["models", "update", "claude"], env, None).await;
    assert_eq!(nothing.code, 2);

    // verify: against a real fake provider on loopback.
    let verified = cli(&["models", "verify", "gpt-4o-prod"], env, None).await;
    assert!(
        verified.ok().stdout.starts_with("verified:"),
        "{}",
        verified.stdout
    );
    cli(
        &[
            "models",
            "update",
            "gpt-4o-prod",
            "--credential",
            "api_key=wrong-key",
        ],
        env,
        None,
    )
    .await
    .ok();
    let failed = cli(
        &["models", "verify", "gpt-4o-prod", "-o", "json"],
        env,
        None,
    )
    .await;
    assert_eq!(failed.code, 1);
    assert_eq!(failed.json()["verified"], false);

    // history, newest first.
    let history = cli(&["models", "history", "gpt-4o-prod"], env, None).await;
    history.ok();
    // Rows start with their time; a wrapped CHANGED cell continues on indented lines.
    let actions: Vec<&str> = history
        .stdout
        .lines()
        .filter(|l| l.starts_with("20"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(actions.len(), 4, "{}", history.stdout);
    assert_eq!(actions.first(), Some(&"model.verify"), "{}", history.stdout);
    assert_eq!(actions.last(), Some(&"model.create"), "{}", history.stdout);

    // delete, twice.
    cli(&["models", "delete", "embed"], env, None).await.ok();
    let again = cli(&["models", "delete", "embed"], env, None).await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("RESOURCE_NOT_FOUND (404)"),
        "{}",
        again.stderr
    );

    // Settings: flags and the environment win over the profile; missing ones are usage errors;
    // an unreachable server has its own status.
    let unreachable = cli(
        &["models", "list", "--server", "http://127.0.0.1:1"],
        env,
        None,
    )
    .await;
    assert_eq!(unreachable.code, 3, "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains("cannot reach the server"));
    let other_project = cli(
        &["models", "list", "-o", "json"],
        &[env[0], ("MODELREG_PROJECT", "empty")],
        None,
    )
    .await;
    assert_eq!(other_project.ok().json()["pagination"]["total_items"], 0);
    let no_profile = dir.path().join("none.toml");
    let unset = cli(
        &["models", "list"],
        &[("MODELREG_PROFILE_FILE", no_profile.to_str().unwrap())],
        None,
    )
    .await;
    assert_eq!(unset.code, 2);
    assert!(unset.stderr.contains("no server"), "{}", unset.stderr);
    let by_env = cli(
        &["models", "list", "-o", "json"],
        &[
            ("MODELREG_PROFILE_FILE", no_profile.to_str().unwrap()),
            ("MODELREG_SERVER", &server.base),
            ("MODELREG_TOKEN", &token),
            ("MODELREG_PROJECT", "demo"),
        ],
        None,
    )
    .await;
    assert_eq!(by_env.ok().json()["pagination"]["total_items"], 2);

    assert_no_secrets(&[
        &login, &created, &from_file, &third, &got, &table, &updated, &removed, &verified, &failed,
        &history,
    ]);
}

#[tokio::test]
async fn completions_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let r = cli(&["completions", shell], &[], None).await;
        r.ok();
        for word in ["models", "import", "export", "dry-run"] {
            assert!(r.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let bad = cli(&["completions", "tcsh"], &[], None).await;
    assert_eq!(bad.code, 2);

    let v = cli(&["--version"], &[], None).await;
    v.ok();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        v.stdout.trim(),
        format!("modelreg {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
