//! Crash and fault tests on the real binary.
//!
//! - The server is killed with SIGKILL at a random moment while eight clients write (create,
//!   update, delete) as fast as it answers, over and over. After each restart every
//!   acknowledged write is there, a write that was in flight is either wholly there or not at
//!   all (never a new description with the old tags), the list's `total_items` matches the
//!   models, and the audit chain verifies.
//! - The same on a private PostgreSQL server, which is also crashed (`pg_ctl stop -m
//!   immediate`) and restarted under load in every fourth round, modelreg staying up. Before
//!   each check the test waits for the killed server's database sessions to end: a COMMIT
//!   sent just before the kill is decided only then.
//! - A data directory on a small tmpfs fills up during writes, SQLite's and then PostgreSQL's
//!   tables': each write is 201 or a clean 503, reads go on, writes work again once there is
//!   room, and nothing acknowledged is lost.
//!
//! The suite runs 10 rounds per backend; `MODELREG_CRASH_ROUNDS=60` runs more (see
//! docs/operations.md). `MODELREG_CRASH_SEED` replays a run.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command as StdCommand,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::*;
use serde_json::{Value, json};

const WORKERS: u64 = 8;

/// xorshift64*: enough randomness for choosing operations and moments, and replayable.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rounds() -> usize {
    std::env::var("MODELREG_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10)
}

fn seed() -> u64 {
    std::env::var("MODELREG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// What a model's stored state may be: absent (`None`) or at a version. One element once
/// the outcome is known; two while a write's outcome is not.
type Allowed = BTreeSet<Option<u32>>;

/// The description and tags of a model at `version`: an update changes both, so a
/// half-applied one would show.
fn description(uri: &str, version: u32) -> String {
    format!("{uri} at version {version}")
}

fn tags(worker: u64, version: u32) -> Vec<String> {
    vec![format!("w{worker}"), format!("v{version}")]
}

/// The outcome of a write: acknowledged, refused (nothing was done), or unknown.
enum Outcome {
    Done,
    Refused(u16, String),
    Unknown,
}

async fn write(req: reqwest::RequestBuilder, ok: u16) -> Outcome {
    match req.send().await {
        Ok(res) if res.status().as_u16() == ok => Outcome::Done,
        // A 5xx may come after the commit (a connection lost on the way back): unknown.
        Ok(res) if res.status().is_server_error() => Outcome::Unknown,
        Ok(res) => Outcome::Refused(res.status().as_u16(), res.text().await.unwrap_or_default()),
        Err(_) => Outcome::Unknown,
    }
}

/// One client: writes to its own models until told to stop or until a write's outcome is
/// unknown (the server is gone). Returns what each of its models may now be.
async fn worker(
    base: String,
    token: String,
    worker: u64,
    round: usize,
    mut models: BTreeMap<String, Allowed>,
    mut rng: Rng,
    stop: Arc<AtomicBool>,
) -> BTreeMap<String, Allowed> {
    install_tls_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut created = 0;
    while !stop.load(Ordering::Relaxed) {
        let present: Vec<(String, u32)> = models
            .iter()
            .filter_map(|(uri, a)| match a.iter().next() {
                Some(Some(v)) if a.len() == 1 => Some((uri.clone(), *v)),
                _ => None,
            })
            .collect();
        let pick = rng.below(100);
        let (uri, before, after, outcome) = if present.is_empty() || pick < 45 {
            let uri = format!("w{worker}-r{round}-{created}");
            created += 1;
            let req = http
                .post(format!("{base}/assets/models"))
                .bearer_auth(&token)
                .header("x-project-id", "demo")
                .json(&json!({
                    "name": uri, "resource_uri": uri, "litellm_model": "openai/gpt-4o",
                    "description": description(&uri, 1), "tags": tags(worker, 1),
                    "credentials": {"api_key": format!("sk-{uri}")}
                }));
            (uri, None, Some(1), write(req, 201).await)
        } else {
            let (uri, v) = present[rng.below(present.len() as u64) as usize].clone();
            if pick < 85 {
                let req = http
                    .patch(format!("{base}/assets/models/{uri}"))
                    .bearer_auth(&token)
                    .header("x-project-id", "demo")
                    .json(&json!({
                        "description": description(&uri, v + 1), "tags": tags(worker, v + 1)
                    }));
                (uri, Some(v), Some(v + 1), write(req, 200).await)
            } else {
                let req = http
                    .delete(format!("{base}/assets/models/{uri}"))
                    .bearer_auth(&token)
                    .header("x-project-id", "demo");
                (uri, Some(v), None, write(req, 204).await)
            }
        };
        match outcome {
            Outcome::Done => {
                models.insert(uri, [after].into());
            }
            Outcome::Refused(status, body) => {
                panic!("round {round}: a write to {uri} was refused with {status}: {body}")
            }
            Outcome::Unknown => {
                models.insert(uri, [before, after].into());
                break;
            }
        }
    }
    models
}

/// `total_items`, and every model in the project by resource_uri, paged by cursor.
async fn list_all(base: &str, token: &str) -> (u64, BTreeMap<String, Value>) {
    install_tls_provider();
    let http = reqwest::Client::new();
    let mut stored = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let mut url = format!("{base}/assets/models?limit=100&sort=resource_uri:asc");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = http
            .get(url)
            .bearer_auth(token)
            .header("x-project-id", "demo")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        total.get_or_insert(page["pagination"]["total_items"].as_u64().unwrap());
        for m in page["data"].as_array().unwrap() {
            stored.insert(m["resource_uri"].as_str().unwrap().to_owned(), m.clone());
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (total.unwrap(), stored),
        }
    }
}

/// Creates model `m-{i}` with a large description and credentials, to fill a disk quickly.
async fn create_large(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    i: usize,
) -> reqwest::Response {
    let uri = format!("m-{i}");
    http.post(format!("{base}/assets/models"))
        .bearer_auth(token)
        .header("x-project-id", "demo")
        .json(&json!({
            "name": uri, "resource_uri": uri, "litellm_model": "openai/gpt-4o",
            "description": format!("{uri} {}", "d".repeat(900)),
            "credentials": {"api_key": "k".repeat(2000)}
        }))
        .send()
        .await
        .unwrap()
}

/// Creates large models until five are refused with a clean 503; any answer but 201 or 503
/// fails the test. Returns the resource_uris acknowledged and the next model's number.
async fn fill_disk(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    max: usize,
) -> (Vec<String>, usize) {
    let mut acknowledged = Vec::new();
    let mut full = 0;
    let mut i = 0;
    while full < 5 {
        assert!(i < max, "the disk never filled up");
        let res = create_large(http, base, token, i).await;
        match res.status().as_u16() {
            201 => acknowledged.push(format!("m-{i}")),
            503 => {
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
                full += 1;
            }
            other => panic!(
                "write {i} on a full disk: {other} {}",
                res.text().await.unwrap()
            ),
        }
        i += 1;
    }
    assert!(
        acknowledged.len() > 10,
        "the disk filled before anything was written"
    );
    (acknowledged, i)
}

/// Checks every model against what may be stored, then records what is. Returns how many
/// models the clients have tried to write, and how many are stored.
async fn check(
    base: &str,
    token: &str,
    round: usize,
    models: &mut [BTreeMap<String, Allowed>],
) -> (usize, usize) {
    let (total, mut stored) = list_all(base, token).await;
    assert_eq!(
        total,
        stored.len() as u64,
        "round {round}: total_items disagrees with the models listed"
    );
    let present = stored.len();
    let mut tracked = 0;
    for (worker, owned) in models.iter_mut().enumerate() {
        for (uri, allowed) in owned.iter_mut() {
            tracked += 1;
            let actual = stored.remove(uri).map(|m| {
                let v: u32 = m["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|t| t.as_str()?.strip_prefix('v')?.parse().ok())
                    .unwrap_or_else(|| panic!("round {round}: {uri} has tags {}", m["tags"]));
                assert_eq!(
                    m["tags"],
                    json!(tags(worker as u64, v)),
                    "round {round}: {uri}"
                );
                assert_eq!(
                    m["description"],
                    description(uri, v),
                    "round {round}: {uri} is half-updated"
                );
                assert_eq!(m["name"], *uri);
                v
            });
            assert!(
                allowed.contains(&actual),
                "round {round}: {uri} is {actual:?}, but may only be {allowed:?}"
            );
            *allowed = [actual].into();
        }
    }
    assert!(
        stored.is_empty(),
        "round {round}: models no client wrote: {:?}",
        stored.keys().collect::<Vec<_>>()
    );
    (tracked, present)
}

/// `modelreg audit verify` passes; with `written`, it found a chain to check.
async fn audit_verifies(dir: &Path, envs: &[(&str, &str)], round: usize, written: bool) {
    let (ok, out, err) = output(
        &["audit", "verify", "--data-dir", dir.to_str().unwrap()],
        envs,
    )
    .await;
    // An empty trail (nothing written yet) prints nothing; a chain prints "intact".
    assert!(
        ok && !out.contains("BROKEN") && (!written || out.contains("chain intact")),
        "round {round}: audit verify (exit ok: {ok}): {out}{err}"
    );
}

/// Rounds of load, each ended by SIGKILL at a random moment; with `pg`, every fourth round
/// also crashes and restarts the database mid-load.
async fn crash_rounds(envs: &[(&str, &str)], pg: Option<&PrivatePg>) {
    let seed = seed();
    let rounds = rounds();
    eprintln!("crash test: seed {seed}, {rounds} rounds (MODELREG_CRASH_SEED to replay)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut token: Option<String> = None;
    let mut models: Vec<BTreeMap<String, Allowed>> = vec![BTreeMap::new(); WORKERS as usize];
    let (mut kills, mut db_restarts, mut unknown) = (0, 0, 0);
    for round in 0..rounds {
        let server = Server::start(dir.path(), envs).await;
        let token = token
            .get_or_insert_with(|| {
                server
                    .token
                    .clone()
                    .expect("the first start prints a token")
            })
            .clone();
        // A stored model has a create event; a round may also end with none stored (every
        // write of the first round still in flight at the kill).
        let (tracked, present) = check(&server.base, &token, round, &mut models).await;
        audit_verifies(dir.path(), envs, round, present > 0).await;
        if round == 0 {
            assert_eq!(tracked, 0);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = models
            .drain(..)
            .enumerate()
            .map(|(w, owned)| {
                tokio::spawn(worker(
                    server.base.clone(),
                    token.clone(),
                    w as u64,
                    round,
                    owned,
                    Rng::new(rng.next()),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(700))).await;
        if let Some(pg) = pg.filter(|_| round % 4 == 3) {
            pg.crash_and_restart();
            db_restarts += 1;
            tokio::time::sleep(Duration::from_millis(200 + rng.below(500))).await;
        }
        server.kill9().await;
        kills += 1;
        // A killed server's COMMIT may still be on its way through PostgreSQL (waiting on the
        // WAL flush, which takes long on a busy disk right after a crash recovery). Its
        // outcome is decided only when its session ends, so the check waits for that.
        if let Some(pg) = pg {
            pg.wait_for_sessions_to_end();
        }
        for t in tasks {
            models.push(t.await.unwrap());
        }
        unknown += models
            .iter()
            .flat_map(|m| m.values())
            .filter(|a| a.len() > 1)
            .count();
    }
    let server = Server::start(dir.path(), envs).await;
    let (tracked, present) =
        check(&server.base, token.as_deref().unwrap(), rounds, &mut models).await;
    audit_verifies(dir.path(), envs, rounds, present > 0).await;
    server.kill9().await;
    eprintln!(
        "crash test: {kills} kills, {db_restarts} database restarts, {tracked} models written, {unknown} writes in flight at a crash; all checks passed"
    );
    assert!(
        tracked > rounds,
        "the load wrote too little to test anything"
    );
}

#[tokio::test]
async fn sigkill_under_write_load_loses_no_acknowledged_write_on_sqlite() {
    crash_rounds(&[], None).await;
}

#[tokio::test]
async fn sigkill_and_database_crashes_under_write_load_lose_nothing_on_postgres() {
    let pg = PrivatePg::start();
    crash_rounds(
        &[
            ("MODELREG_DATABASE_URL", &pg.url()),
            ("MODELREG_MASTER_KEY", MASTER_KEY),
            ("MODELREG_DB_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
        Some(&pg),
    )
    .await;
}

/// A PostgreSQL server of this test's own, in a temporary directory, so that crashing it
/// disturbs no other test. It runs as the `postgres` user, as PostgreSQL refuses root.
struct PrivatePg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let out = StdCommand::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runuser {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl PrivatePg {
    fn start() -> PrivatePg {
        PrivatePg::start_with(None)
    }

    /// With `data_on`, the data directory lives there (a small disk) and the WAL beside the
    /// temporary directory, so that a full disk fails table writes, not the WAL.
    fn start_with(data_on: Option<&Path>) -> PrivatePg {
        let versions = std::fs::read_dir("/usr/lib/postgresql").expect(
            "PostgreSQL's server binaries under /usr/lib/postgresql (.ci/run installs them)",
        );
        let bin = versions
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let uid = |flag: &str| -> u32 {
            let out = StdCommand::new("id")
                .args([flag, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a postgres user")
        };
        let owner = (Some(uid("-u")), Some(uid("-g")));
        std::os::unix::fs::chown(dir.path(), owner.0, owner.1).unwrap();
        let data = match data_on {
            Some(disk) => {
                std::os::unix::fs::chown(disk, owner.0, owner.1).unwrap();
                disk.join("data")
            }
            None => dir.path().join("data"),
        };
        let wal = dir.path().join("wal");
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ];
        if data_on.is_some() {
            args.extend(["--waldir", wal.to_str().unwrap()]);
        }
        as_postgres(&bin.join("initdb"), &args);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePg {
            _dir: dir,
            data,
            bin,
            port,
        };
        pg.pg_ctl_start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.data.display()
        );
        let log = self.data.join("server.log");
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server as a crash would (no checkpoint, recovery from the WAL on start),
    /// and starts it again.
    fn crash_and_restart(&self) {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        self.pg_ctl_start();
    }
}

impl PrivatePg {
    /// Waits until no client session but this query's own is left, so that every
    /// transaction of a killed server has committed or rolled back.
    fn wait_for_sessions_to_end(&self) {
        let port = self.port.to_string();
        let started = std::time::Instant::now();
        loop {
            let out = as_postgres(
                &self.bin.join("psql"),
                &[
                    "-h",
                    self.data.to_str().unwrap(),
                    "-p",
                    &port,
                    "-d",
                    "postgres",
                    "-Atc",
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                ],
            );
            let left: u32 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a count");
            if left == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{left} sessions of a killed server still open after 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = StdCommand::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// A tmpfs of `size` mounted on a new temporary directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = StdCommand::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    /// Bytes in use on the disk.
    fn used(&self) -> u64 {
        let out = StdCommand::new("df")
            .args(["--output=used", "-B1"])
            .arg(self.dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's used bytes")
    }

    fn resize(&self, size: &str) {
        let out = StdCommand::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

#[tokio::test]
async fn a_full_disk_gives_503_keeps_reads_and_loses_nothing() {
    let disk = SmallDisk::mount("3m");
    let data = disk.dir.path();
    let server = Server::start(data, &[]).await;
    let token = server.token.clone().unwrap();
    install_tls_provider();
    let http = reqwest::Client::new();
    let (mut acknowledged, i) = fill_disk(&http, &server.base, &token, 20_000).await;

    // Reads go on while the disk is full.
    let (total, _) = list_all(&server.base, &token).await;
    assert_eq!(total, acknowledged.len() as u64);

    // With room again, writes succeed without a restart.
    disk.resize("64m");
    let res = create_large(&http, &server.base, &token, i).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    acknowledged.push(format!("m-{i}"));

    // After a crash, everything acknowledged is there, the database is sound, and the audit
    // chain verifies.
    server.kill9().await;
    let server = Server::start(data, &[]).await;
    let (total, stored) = list_all(&server.base, &token).await;
    assert_eq!(total, acknowledged.len() as u64);
    acknowledged.sort();
    assert_eq!(stored.into_keys().collect::<Vec<_>>(), acknowledged);
    server.kill9().await;

    let db = data.join("modelreg.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (integrity,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    pool.close().await;
    audit_verifies(data, &[], 0, true).await;
}

#[tokio::test]
async fn a_full_disk_under_postgres_gives_503_keeps_reads_and_loses_nothing() {
    // The disk is declared first so that it is unmounted after the server has stopped.
    let disk = SmallDisk::mount("128m");
    let pg = PrivatePg::start_with(Some(disk.dir.path()));
    // Leave 3 MiB free for the tables.
    disk.resize(&format!("{}k", disk.used() / 1024 + 3 * 1024));
    let url = pg.url();
    let envs = [
        ("MODELREG_DATABASE_URL", url.as_str()),
        ("MODELREG_MASTER_KEY", MASTER_KEY),
    ];
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &envs).await;
    let token = server.token.clone().unwrap();
    install_tls_provider();
    let http = reqwest::Client::new();
    let (acknowledged, i) = fill_disk(&http, &server.base, &token, 50_000).await;
    eprintln!(
        "postgres full disk: {} creates acknowledged, then 5 refused with 503",
        acknowledged.len()
    );
    let (total, _) = list_all(&server.base, &token).await;
    assert_eq!(total, acknowledged.len() as u64, "reads go on");

    disk.resize("256m");
    let res = create_large(&http, &server.base, &token, i).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    server.kill9().await;
    pg.crash_and_restart();
    let server = Server::start(dir.path(), &envs).await;
    let (total, _) = list_all(&server.base, &token).await;
    assert_eq!(total, acknowledged.len() as u64 + 1);
    server.kill9().await;
    audit_verifies(dir.path(), &envs, 0, true).await;
}
