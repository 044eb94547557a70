//! The server's logs through the real binary: one line per request with method, route,
//! status, latency, request id, principal, organization and project; JSON lines with
//! `--log-format json`, plain text (no colour codes) when stderr is not a terminal.

mod common;

use common::*;
use serde_json::Value;

async fn requests(server: &Server) {
    let token = server.token.clone().unwrap();
    let c = Client::new(&server.base, &token);
    assert_eq!(
        c.send(reqwest::Method::GET, "/assets/models", None).await.0,
        200
    );
    let anonymous = reqwest::Client::new()
        .get(format!("{}/assets/models", server.base))
        .header("x-request-id", "client-chosen-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // A path no route matches.
    let unmatched = reqwest::Client::new()
        .get(format!("{}/no/such/route", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unmatched.status(), 404);
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_who_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start_with_log(
        &dir.path().join("data"),
        &[("MODELREG_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        Some(&log),
    )
    .await;
    requests(&server).await;
    // A clean stop, so that its lines are in the log too.
    let mut server = server;
    // SAFETY: signals the test's own child process.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    server.child.wait().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 3, "{text}");
    let ok = requests[0];
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["route"], "/assets/models");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["principal"], "service:bootstrap");
    assert_eq!(ok["org"], "default");
    assert_eq!(ok["project"], "demo");
    assert!(ok["request_id"].as_str().unwrap().starts_with("req-"));
    assert!(ok["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(ok["timestamp"].is_string());
    let refused = requests[1];
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["request_id"], "client-chosen-id-1");
    assert_eq!(refused["principal"], "-");
    assert_eq!(refused["org"], "-");
    // A refusal says why; a success has no code. Latency is to the microsecond.
    assert_eq!(refused["code"], "INVALID_TOKEN", "{refused}");
    assert!(ok.get("code").is_none(), "{ok}");
    for line in &requests {
        let ms = line["latency_ms"].as_f64().unwrap();
        assert_eq!((ms * 1000.0).round() / 1000.0, ms, "{line}");
    }
    // Where no route matched, the path is logged beside the route.
    let unmatched = requests[2];
    assert_eq!(
        (unmatched["route"].as_str(), unmatched["path"].as_str()),
        (Some("unmatched"), Some("/no/such/route")),
        "{unmatched}"
    );
    assert_eq!(unmatched["code"], "RESOURCE_NOT_FOUND");
    assert!(ok.get("path").is_none(), "{ok}");
    // The shutdown is logged once, though the server and its grace timer both wait for it.
    let shutting_down = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutting down"))
        })
        .count();
    assert_eq!(shutting_down, 1, "{text}");
}

#[tokio::test]
async fn text_logs_are_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start_with_log(
        &dir.path().join("data"),
        &[("RUST_LOG", "info")],
        Some(&log),
    )
    .await;
    requests(&server).await;
    server.kill9().await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains(" request ") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("a request line in {text}"));
    for part in [
        "INFO",
        "method=GET",
        "route=\"/assets/models\"",
        "principal=\"service:bootstrap\"",
        "org=\"default\"",
        "project=\"demo\"",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

/// With stdout not a terminal (here both streams go to one file, as a service manager or a
/// container runtime merges them into a log pipeline), the bootstrap owner token is never
/// printed: it goes to a file of mode 0600 in the data directory, and the log says only where.
#[tokio::test]
async fn the_bootstrap_token_never_reaches_a_log_pipeline() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let merged_path = dir.path().join("merged.log");
    let merged = std::fs::File::create(&merged_path).unwrap();
    let mut child = command(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[("RUST_LOG", "info")],
    )
    .stdout(merged.try_clone().unwrap())
    .stderr(merged)
    .spawn()
    .unwrap();
    let base = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let text = std::fs::read_to_string(&merged_path).unwrap();
            if let Some(addr) = text.lines().find_map(listening_at) {
                return addr;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the server did not start");
    let file = data.join("bootstrap-token");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.starts_with("mr_"), "{token}");
    // The token works, and is nowhere in what the process wrote.
    let c = Client::new(&base, &token);
    assert_eq!(
        c.send(reqwest::Method::GET, "/assets/models", None).await.0,
        200
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let text = std::fs::read_to_string(&merged_path).unwrap();
    assert!(!text.contains(&token), "the token is in the log: {text}");
    assert!(!text.contains("mr_"), "a token is in the log: {text}");
    // In JSON mode every line either stream writes is JSON, the address line included.
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let told: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"].as_str() == file.to_str())
        .collect();
    assert_eq!(told.len(), 1, "the log names where the token is: {text}");
}

/// At a terminal (here a pseudo-terminal that `script` gives the server) the bootstrap token
/// is printed for the person starting the server, and no file is written.
#[tokio::test]
async fn at_a_terminal_the_bootstrap_token_is_printed() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = format!(
        "{BIN} serve --listen 127.0.0.1:0 --data-dir {}",
        data.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c", &serve, "/dev/null"])
        .env_clear()
        .env("SHELL", "/bin/sh")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        // Its own process group, so that the server under `script` is stopped with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) runs the server in a pseudo-terminal");
    let group = child.id().unwrap() as i32;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (token, base) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut token = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            let line = line.trim();
            if line.starts_with("mr_") {
                token = Some(line.to_owned());
            }
            if let Some(addr) = line.strip_prefix("modelreg listening on ") {
                return (token, addr.to_owned());
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server did not start");
    let token = token.expect("the token was printed to the terminal");
    assert!(!data.join("bootstrap-token").exists());
    let c = Client::new(&base, &token);
    assert_eq!(
        c.send(reqwest::Method::GET, "/assets/models", None).await.0,
        200
    );
    // SAFETY: signals the process group made above, which holds only `script`.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    child.wait().await.unwrap();
    // `script` runs the shell and the server in a session of their own, which the signal
    // above does not reach (and the hang-up that follows is a reload to the server): stop
    // the server by its data directory, which is this test's alone.
    let mine = data.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&mine) {
            // SAFETY: a process whose command line names this test's own temporary directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
