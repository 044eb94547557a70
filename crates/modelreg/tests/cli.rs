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
    // The field column is as wide as the longest field name, so a row is compared by its
    // words, not its spacing.
    for line in [
        "resource_uri gpt-4o-prod",
        "rpm 100",
        "credential_fields api_key",
        "catalog gpt-4o (every value the catalog's)",
    ] {
        assert!(
            created
                .stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line),
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

/// A running server with its owner token (every project), and a profile file of the test's
/// own (none until a test logs in), so that the settings are the ones the test gives.
struct Setup {
    _dir: tempfile::TempDir,
    server: Server,
    token: String,
    data: String,
    profiles: String,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server = Server::start(&data, &[]).await;
        let token = server.token.clone().unwrap();
        let profiles = dir
            .path()
            .join("profiles.toml")
            .to_str()
            .unwrap()
            .to_owned();
        Setup {
            data: data.to_str().unwrap().to_owned(),
            _dir: dir,
            server,
            token,
            profiles,
        }
    }

    /// Server, token and project `demo` from the environment, plus `extra`.
    async fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut env = vec![
            ("MODELREG_PROFILE_FILE", self.profiles.as_str()),
            ("MODELREG_SERVER", self.server.base.as_str()),
            ("MODELREG_TOKEN", self.token.as_str()),
            ("MODELREG_PROJECT", "demo"),
        ];
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k, v));
        }
        cli(args, &env, None).await
    }
}

#[tokio::test]
async fn json_and_yaml_outputs_carry_the_etag() {
    let s = Setup::new().await;
    let created = s
        .cli(
            &[
                "models",
                "create",
                "--name",
                "Tagged",
                "--model",
                "openai/gpt-4o",
                "--credential",
                "api_key=k",
                "-o",
                "json",
            ],
            &[],
        )
        .await;
    let created = created.ok().json();
    let created_tag = created["etag"]
        .as_str()
        .unwrap_or_else(|| panic!("no etag in {created}"));
    assert!(created_tag.starts_with('"'), "{created_tag}");

    let got = s.cli(&["models", "get", "tagged", "-o", "json"], &[]).await;
    let got = got.ok().json();
    assert_eq!(got["etag"].as_str(), Some(created_tag), "{got}");
    let yaml = s.cli(&["models", "get", "tagged", "-o", "yaml"], &[]).await;
    let yaml: Value = serde_norway::from_str(&yaml.ok().stdout).unwrap();
    assert_eq!(yaml["etag"].as_str(), Some(created_tag), "{yaml:?}");

    // The ETag printed is the one --if-match takes, and an update prints the new one.
    let updated = s
        .cli(
            &[
                "models",
                "update",
                "tagged",
                "--rpm",
                "5",
                "--if-match",
                created_tag,
                "-o",
                "json",
            ],
            &[],
        )
        .await;
    let updated = updated.ok().json();
    let new_tag = updated["etag"].as_str().expect("an etag after update");
    assert_ne!(new_tag, created_tag);
    let again = s.cli(&["models", "get", "tagged", "-o", "yaml"], &[]).await;
    let again: Value = serde_norway::from_str(&again.ok().stdout).unwrap();
    assert_eq!(again["etag"].as_str(), Some(new_tag));
    // A credentials-only update is a write too.
    let creds = s
        .cli(
            &[
                "models",
                "update",
                "tagged",
                "--credential",
                "api_key=os.environ/X",
                "-o",
                "yaml",
            ],
            &[],
        )
        .await;
    let creds: Value = serde_norway::from_str(&creds.ok().stdout).unwrap();
    assert!(
        creds["etag"].as_str().is_some_and(|t| t != new_tag),
        "{creds:?}"
    );
}

/// Runs the CLI with stdout on a pseudo-terminal of `cols` x `rows` (and no controlling
/// terminal, so the terminal's size can only come from stdout). What it printed, and its
/// exit status.
fn on_terminal(args: &[&str], envs: &[(&str, &str)], cols: u16, rows: u16) -> (String, i32) {
    use std::{
        io::Read,
        os::fd::{FromRawFd, OwnedFd},
        os::unix::process::CommandExt,
        process::Stdio,
    };
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors we then own; the other pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are open descriptors returned by openpty, owned by nothing else.
    let (mut master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    };
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; a new session has no controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("run modelreg");
    // Close our copy of the child's end, so that reading ends when the child exits.
    drop(cmd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // EIO: the child closed its end.
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
    (
        String::from_utf8_lossy(&out).replace("\r\n", "\n"),
        status.code().unwrap_or(-1),
    )
}

/// Two models, one with long values, for the table tests.
async fn two_models(s: &Setup) {
    for (name, model, tags) in [
        (
            "Claude Sonnet long context",
            LONG_MODEL,
            "prod,long-context,experimental",
        ),
        ("GPT-4o (prod)", "openai/gpt-4o", "prod,chat"),
    ] {
        s.cli(
            &[
                "models",
                "create",
                "--name",
                name,
                "--model",
                model,
                "--tag",
                tags,
                "--mode",
                "chat",
                "--credential",
                "api_key=k",
            ],
            &[],
        )
        .await
        .ok();
    }
}

const LONG_MODEL: &str = "anthropic/claude-3-5-sonnet-20241022";

/// Every header whole, and the long row on one line.
fn assert_whole_rows(text: &str, what: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("NAME") && lines[0].contains("MODEL") && lines[0].contains("TAGS"),
        "{what}: a header was cut:\n{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("claude-sonnet-long-context") && l.contains(LONG_MODEL)),
        "{what}: the row was cut:\n{text}"
    );
}

#[tokio::test]
async fn narrow_columns_print_readable_tables() {
    let s = Setup::new().await;
    two_models(&s).await;
    // COLUMNS=0 means no wrapping; a width too narrow for the table too.
    for columns in ["0", "10", "30", "50"] {
        let r = s.cli(&["models", "list"], &[("COLUMNS", columns)]).await;
        assert_whole_rows(&r.ok().stdout, &format!("COLUMNS={columns}"));
    }
    // A width that fits wraps, and every line fits it.
    let wide = s.cli(&["models", "list"], &[("COLUMNS", "90")]).await;
    wide.ok();
    assert!(
        wide.stdout.lines().all(|l| l.chars().count() <= 90),
        "{}",
        wide.stdout
    );
    // A record: the id is never cut into pieces.
    let got = s
        .cli(
            &["models", "get", "claude-sonnet-long-context"],
            &[("COLUMNS", "30")],
        )
        .await;
    got.ok();
    let id_line = got.stdout.lines().find(|l| l.starts_with("id ")).unwrap();
    let id = id_line.split_whitespace().nth(1).unwrap();
    assert_eq!(id.len(), 36, "{}", got.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_width_terminal_prints_readable_tables() {
    let s = Setup::new().await;
    two_models(&s).await;
    // A terminal that reports 0 x 0 (a serial console, some CI runners), or 30 columns.
    let env = [
        ("MODELREG_PROFILE_FILE", s.profiles.as_str()),
        ("MODELREG_SERVER", s.server.base.as_str()),
        ("MODELREG_TOKEN", s.token.as_str()),
        ("MODELREG_PROJECT", "demo"),
    ];
    for (cols, rows) in [(0, 0), (30, 24)] {
        let (text, code) =
            tokio::task::block_in_place(|| on_terminal(&["models", "list"], &env, cols, rows));
        assert_eq!(code, 0, "{text}");
        assert_whole_rows(&text, &format!("a {cols}x{rows} terminal"));
    }
    // A terminal wide enough wraps to its width.
    let (text, code) =
        tokio::task::block_in_place(|| on_terminal(&["models", "list"], &env, 100, 24));
    assert_eq!(code, 0, "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

#[tokio::test]
async fn a_server_without_a_scheme_is_a_usage_error() {
    let s = Setup::new().await;
    let hostport = s.server.base.trim_start_matches("http://").to_owned();
    let by_flag = s.cli(&["models", "list", "--server", &hostport], &[]).await;
    assert_eq!(by_flag.code, 2, "{}", by_flag.stderr);
    assert!(
        by_flag.stderr.contains(&format!("http://{hostport}")),
        "{}",
        by_flag.stderr
    );
    // `localhost:8080` parses as a URL of scheme "localhost".
    let named = s
        .cli(
            &["models", "list"],
            &[("MODELREG_SERVER", "localhost:8080")],
        )
        .await;
    assert_eq!(named.code, 2, "{}", named.stderr);
    assert!(
        named.stderr.contains("MODELREG_SERVER") && named.stderr.contains("http://localhost:8080"),
        "{}",
        named.stderr
    );
    let ftp = s
        .cli(&["models", "list", "--server", "ftp://example.com"], &[])
        .await;
    assert_eq!(ftp.code, 2, "{}", ftp.stderr);
    // login saves nothing it could not use.
    let login = s
        .cli(&["login", "--server", &hostport, "--project", "demo"], &[])
        .await;
    assert_eq!(login.code, 2, "{}", login.stderr);
    assert!(!std::path::Path::new(&s.profiles).exists());
}

#[tokio::test]
async fn login_without_a_project_warns() {
    let s = Setup::new().await;
    let env = [("MODELREG_PROFILE_FILE", s.profiles.as_str())];
    let bare = cli(
        &["login", "--server", &s.server.base],
        &env,
        Some(&format!("{}\n", s.token)),
    )
    .await;
    bare.ok();
    assert!(
        bare.stderr.contains("warning") && bare.stderr.contains("--project"),
        "{}",
        bare.stderr
    );
    let with = cli(
        &[
            "login",
            "--server",
            &s.server.base,
            "--project",
            "demo",
            "--profile",
            "p",
        ],
        &env,
        Some(&format!("{}\n", s.token)),
    )
    .await;
    with.ok();
    assert!(!with.stderr.contains("warning"), "{}", with.stderr);
}

#[tokio::test]
async fn a_missing_project_names_the_flag_and_the_variable() {
    let s = Setup::new().await;
    let r = s
        .cli(&["models", "list"], &[("MODELREG_PROJECT", "")])
        .await;
    assert!(r.stderr.contains("X-Project-ID"), "{}", r.stderr);
    for word in ["--project", "MODELREG_PROJECT", "login --project"] {
        assert!(r.stderr.contains(word), "{word} in\n{}", r.stderr);
    }
    assert_eq!(
        r.code, 2,
        "a missing setting is a usage error: {}",
        r.stderr
    );
}

#[tokio::test]
async fn a_reference_that_does_not_resolve_is_explained() {
    let s = Setup::new().await;
    for (uri, reference) in [
        ("by-env", "os.environ/OPENAI_API_KEY"),
        ("by-file", "file:/run/secrets/openai"),
    ] {
        s.cli(
            &[
                "models",
                "create",
                "--name",
                uri,
                "--model",
                "openai/gpt-4o",
                "--api-base",
                "http://127.0.0.1:1/v1",
                "--credential",
                &format!("api_key={reference}"),
            ],
            &[],
        )
        .await
        .ok();
        for output in ["table", "json"] {
            let r = s.cli(&["models", "verify", uri, "-o", output], &[]).await;
            assert_eq!(r.code, 1, "{}", r.stderr);
            assert!(
                r.stderr.contains("the server's environment")
                    && r.stderr.contains("granted")
                    && r.stderr.contains("docs/secrets.md"),
                "{uri} -o {output}:\n{}",
                r.stderr
            );
        }
    }
    let help = s.cli(&["models", "create", "--help"], &[]).await;
    assert!(
        help.ok().stdout.contains("the server's environment"),
        "{}",
        help.stdout
    );
}

/// Each option of a `--help` page and its description.
fn options(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if (2..=6).contains(&indent) && t.starts_with('-') {
            let flag = t
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .unwrap_or(t)
                .to_owned();
            out.push((flag, String::new()));
        } else if let Some((_, desc)) = out.last_mut() {
            desc.push_str(t);
            desc.push(' ');
        }
    }
    out
}

#[tokio::test]
async fn every_create_and_update_flag_is_described() {
    for cmd in ["create", "update"] {
        let r = cli(&["models", cmd, "--help"], &[], None).await;
        let opts = options(&r.ok().stdout);
        assert!(opts.len() > 15, "{}", r.stdout);
        for (flag, desc) in &opts {
            assert!(!desc.trim().is_empty(), "{cmd} {flag} has no description");
        }
        let desc = |flag: &str| {
            opts.iter()
                .find(|(f, _)| f == flag)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("{cmd} has no {flag}"))
        };
        for mode in [
            "chat",
            "completion",
            "embedding",
            "image_generation",
            "audio_transcription",
        ] {
            assert!(
                desc("--mode").contains(mode),
                "{cmd} --mode: {}",
                desc("--mode")
            );
        }
        for flag in [
            "--rpm",
            "--tpm",
            "--max-input-tokens",
            "--max-output-tokens",
            "--default-max-tokens",
        ] {
            assert!(
                desc(flag).contains("2147483647"),
                "{cmd} {flag}: {}",
                desc(flag)
            );
        }
        assert!(
            desc("--temperature").contains("9.99"),
            "{}",
            desc("--temperature")
        );
        assert!(desc("--timeout").contains("86400"), "{}", desc("--timeout"));
        if cmd == "update" {
            for status in ["PENDING", "ACTIVE", "ERROR", "DEPRECATED", "DISABLED"] {
                assert!(desc("--status").contains(status), "{}", desc("--status"));
            }
        }
    }
    // The listed values are the ones taken.
    let bad = cli(
        &[
            "models",
            "create",
            "--name",
            "x",
            "--model",
            "y",
            "--mode",
            "chatty",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[tokio::test]
async fn config_is_a_flag_of_the_server_commands_only() {
    let top = cli(&["--help"], &[], None).await;
    assert!(
        top.ok().stdout.matches("MODELREG_CONFIG").count() <= 1,
        "{}",
        top.stdout
    );
    for cmd in [
        &["serve"][..],
        &["migrate"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["keys", "generate"],
        &["keys", "status"],
        &["keys", "rotate"],
        &["keys", "retire"],
        &["audit", "verify"],
        &["export"],
    ] {
        let r = cli(&[cmd, &["--help"]].concat(), &[], None).await;
        r.ok();
        assert!(r.stdout.contains("--config"), "{cmd:?}:\n{}", r.stdout);
        assert_eq!(
            r.stdout.matches("MODELREG_CONFIG").count(),
            1,
            "{cmd:?}:\n{}",
            r.stdout
        );
    }
    for cmd in [
        &["login"][..],
        &["models", "list"],
        &["models", "create"],
        &["import"],
        &["openapi"],
        &["completions"],
    ] {
        let r = cli(&[cmd, &["--help"]].concat(), &[], None).await;
        r.ok();
        assert!(!r.stdout.contains("--config"), "{cmd:?}:\n{}", r.stdout);
    }
    let refused = cli(&["models", "list", "--config", "x.toml"], &[], None).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);

    // On a server command it works after the command (and, as before, ahead of it).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-file");
    let toml = dir.path().join("modelreg.toml");
    std::fs::write(&toml, format!("data_dir = {:?}\n", data.to_str().unwrap())).unwrap();
    let toml = toml.to_str().unwrap();
    for args in [["migrate", "--config", toml], ["--config", toml, "migrate"]] {
        let r = cli(&args, &[], None).await;
        assert!(
            r.ok().stdout.contains("from-file"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let by_env = cli(&["migrate"], &[("MODELREG_CONFIG", toml)], None).await;
    assert!(
        by_env.ok().stdout.contains("from-file"),
        "{}",
        by_env.stdout
    );
    // The variable does not trouble the client commands.
    let none = dir.path().join("none.toml");
    let client = cli(
        &[
            "models",
            "list",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ],
        &[
            ("MODELREG_CONFIG", toml),
            ("MODELREG_PROFILE_FILE", none.to_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(client.code, 3, "{}", client.stderr);
}

#[tokio::test]
async fn tokens_expire_and_their_use_is_listed() {
    let s = Setup::new().await;
    let data = ["--data-dir", s.data.as_str()];
    let create = |name: &'static str, expires: &'static str| {
        let expires = format!("--expires={expires}");
        async move {
            let mut args = vec![
                "token",
                "create",
                "--org",
                "default",
                "--project",
                "demo",
                "--role",
                "viewer",
                "--name",
                name,
                &expires,
            ];
            args.extend_from_slice(&data);
            cli(&args, &[], None).await
        }
    };
    let month = create("month", "30d").await;
    let secret = month.ok().stdout.trim().to_owned();
    assert!(month.stderr.contains("expires"), "{}", month.stderr);
    create("fixed", "2100-01-01T00:00:00Z").await.ok();
    create("hours", "12h").await.ok();
    for bad in ["30", "tomorrow", "2000-01-01T00:00:00Z", "0d", "-5h"] {
        let r = create("bad", bad).await;
        assert_eq!(r.code, 2, "--expires {bad}: {}", r.stderr);
        assert!(r.stderr.contains("--expires"), "{}", r.stderr);
    }

    let list = |args: &'static [&'static str]| {
        let mut a = vec!["token", "list"];
        a.extend_from_slice(args);
        a.extend_from_slice(&data);
        async move { cli(&a, &[], None).await }
    };
    let tokens = list(&["-o", "json"]).await;
    let tokens = tokens.ok().json();
    let find = |v: &Value, name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {v}"))
    };
    assert_eq!(
        find(&tokens, "fixed")["expires_at"],
        "2100-01-01T00:00:00.000000Z"
    );
    let month_row = find(&tokens, "month");
    let in_30_days = month_row["expires_at"].as_str().unwrap();
    assert!(in_30_days > month_row["created_at"].as_str().unwrap());
    assert_eq!(month_row["last_used_at"], Value::Null);
    assert_eq!(find(&tokens, "bootstrap")["expires_at"], Value::Null);

    // Use it; the server records use in batches, within seconds.
    s.cli(&["models", "list"], &[("MODELREG_TOKEN", &secret)])
        .await
        .ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let used = loop {
        let v = list(&["-o", "json"]).await.ok().json();
        let row = find(&v, "month");
        if row["last_used_at"].is_string() {
            break row;
        }
        assert!(std::time::Instant::now() < deadline, "never recorded: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let table = list(&[]).await;
    let header = table.ok().stdout.lines().next().unwrap().to_owned();
    assert!(
        header.contains("EXPIRES") && header.contains("LAST USED"),
        "{}",
        table.stdout
    );
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("month"))
        .unwrap();
    assert!(row.contains(in_30_days), "{row}");
    assert!(
        row.contains(used["last_used_at"].as_str().unwrap()),
        "{row}"
    );

    // The old flag still works, and says what replaces it.
    let old = list(&["--json"]).await;
    assert_eq!(old.ok().json(), list(&["-o", "json"]).await.json());
    assert!(old.stderr.contains("-o json"), "{}", old.stderr);
    let yaml = list(&["-o", "yaml"]).await;
    let yaml: Value = serde_norway::from_str(&yaml.ok().stdout).unwrap();
    assert!(yaml.as_array().is_some_and(|a| a.len() == 4), "{yaml:?}");
}

#[tokio::test]
async fn one_output_flag_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let key = [("MODELREG_MASTER_KEY", MASTER_KEY)];
    let status = cli(
        &["keys", "status", "--data-dir", data, "-o", "json"],
        &key,
        None,
    )
    .await;
    let keys = status.ok().json();
    assert!(keys.as_array().is_some_and(|k| !k.is_empty()), "{keys}");
    let old = cli(
        &["keys", "status", "--data-dir", data, "--json"],
        &key,
        None,
    )
    .await;
    assert_eq!(old.ok().json(), keys);
    assert!(old.stderr.contains("-o json"), "{}", old.stderr);
    let table = cli(
        &["keys", "status", "--data-dir", data, "--output", "table"],
        &key,
        None,
    )
    .await;
    assert!(
        table.ok().stdout.to_uppercase().contains("KEY"),
        "{}",
        table.stdout
    );
    let tokens = cli(
        &["token", "list", "--data-dir", data, "-o", "json"],
        &[],
        None,
    )
    .await;
    assert!(tokens.ok().json().is_array());

    // export's -o is the file it writes (its format is --format): a format name there is a
    // mistake, not a file name.
    let export = cli(
        &[
            "export",
            "--format",
            "litellm",
            "-o",
            "json",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(export.code, 2, "{}", export.stderr);
    assert!(export.stderr.contains("--format"), "{}", export.stderr);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let token = |org: &'static str, role: &'static str, name: &'static str| {
        let args = [
            "token",
            "create",
            "--org",
            org,
            "--project",
            "*",
            "--role",
            role,
            "--name",
            name,
            "--data-dir",
            data,
        ];
        async move { cli(&args, &[], None).await }
    };
    token("default", "viewer", "fine").await.ok();
    for (what, r) in [
        ("a bad role", token("default", "emperor", "a").await),
        (
            "a bad organization",
            token("Not An Org!", "viewer", "b").await,
        ),
        ("a bad name", token("default", "viewer", "no spaces").await),
    ] {
        assert_eq!(r.code, 2, "{what}: {}", r.stderr);
    }
    let missing = dir.path().join("missing.toml");
    let r = cli(
        &["migrate", "--config", missing.to_str().unwrap()],
        &[],
        None,
    )
    .await;
    assert_eq!(r.code, 2, "a missing --config file: {}", r.stderr);
    let r = cli(
        &[
            "export",
            "--format",
            "litellm",
            "--with-values",
            "--env-file",
            "x.env",
            "--data-dir",
            data,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(r.code, 2, "--with-values without --project: {}", r.stderr);
    assert!(r.stderr.contains("--project"), "{}", r.stderr);
}
