//! Helpers for tests that run the real `modelreg` binary.
#![allow(dead_code)]

use std::{path::Path, process::Stdio, time::Duration};

use tokio::io::AsyncWriteExt;

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A fixed master key for tests whose replicas must share one.
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub const BIN: &str = env!("CARGO_BIN_EXE_modelreg");

/// A running server process.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The bootstrap token, when this start printed one.
    pub token: Option<String>,
}

pub fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

impl Server {
    pub async fn start(dir: &Path, envs: &[(&str, &str)]) -> Server {
        Server::start_with_log(dir, envs, None).await
    }

    /// Starts a server whose log (stderr) goes to `log` when given.
    pub async fn start_with_log(dir: &Path, envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::inherit(),
        };
        // Heartbeats each second, so a killed replica stops counting as running within 3 s
        // (`keys rotate` waits for the running ones); a test's own setting wins.
        let mut with_beat = vec![("MODELREG_REPLICA_HEARTBEAT_SECS", "1")];
        with_beat.extend_from_slice(envs);
        let mut child = command(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                dir.to_str().unwrap(),
            ],
            &with_beat,
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn modelreg");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let line = line.trim();
                // stdout is a pipe here, not a terminal: no token may ever be printed to it.
                assert!(!line.contains("mr_"), "a token on stdout: {line}");
                if let Some(addr) = listening_at(line) {
                    return addr;
                }
            }
            panic!("modelreg exited before listening");
        })
        .await
        .expect("modelreg did not start in time");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let token = take_bootstrap_token(dir);
        Server { child, base, token }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The server's address from its stdout line: `modelreg listening on URL`, or in JSON log
/// mode `{"message": "modelreg listening", "url": URL}`.
pub fn listening_at(line: &str) -> Option<String> {
    if let Some(addr) = line.strip_prefix("modelreg listening on ") {
        return Some(addr.to_owned());
    }
    let v: Value = serde_json::from_str(line).ok()?;
    (v["message"] == "modelreg listening").then(|| v["url"].as_str().map(str::to_owned))?
}

/// The bootstrap token a start wrote to the data directory (stdout not being a terminal), if
/// this start minted one. The file is removed, as its reader should, so that a later start is
/// seen to mint none.
pub fn take_bootstrap_token(data_dir: &Path) -> Option<String> {
    let path = data_dir.join("bootstrap-token");
    let text = std::fs::read_to_string(&path).ok()?;
    std::fs::remove_file(&path).expect("remove the bootstrap token file");
    Some(text.trim().to_owned())
}

pub async fn output(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let out = command(args, envs).output().await.expect("run modelreg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `modelreg token create` for organization `default`, all projects.
pub async fn token_create(data_dir: &str, role: &str, name: &str) -> (bool, String, String) {
    token_create_in(&["--data-dir", data_dir], "default", role, name).await
}

/// `modelreg token create` for `org`, all projects, on the database `storage` names
/// (`--data-dir DIR` or `--database-url URL`).
pub async fn token_create_in(
    storage: &[&str],
    org: &str,
    role: &str,
    name: &str,
) -> (bool, String, String) {
    let mut args = vec![
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
    ];
    args.extend_from_slice(storage);
    output(&args, &[]).await
}

/// reqwest is built without a default TLS crypto provider (the workspace picks ring): install
/// it once per test process before any client is made.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        install_tls_provider();
        Client {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("x-project-id", "demo");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// What one CLI run did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs the CLI with `envs` (nothing else from this process's environment) and `stdin`.
pub async fn cli(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut c = command(args, envs);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run modelreg");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
