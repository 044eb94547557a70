//! The real `modelreg serve` process, and what /proc says about a process: CPU seconds and
//! peak resident memory.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The master key the benchmark's databases are sealed with.
pub const MASTER_KEY: &str = "YmVuY2htYXJrLW1hc3Rlci1rZXktMzItYnl0ZXMhISE=";

pub struct ServerProc {
    child: Child,
    pub addr: SocketAddr,
    /// The bootstrap token, minted by the first start on a fresh store only.
    pub token: Option<String>,
    pub pid: u32,
}

/// Where the server keeps its data: a SQLite data directory, or a PostgreSQL URL.
#[derive(Clone, Debug)]
pub enum Storage {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Storage {
    pub fn url(&self) -> String {
        match self {
            Storage::Sqlite(dir) => format!("sqlite://{}", dir.join("modelreg.db").display()),
            Storage::Postgres(url) => url.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgres",
        }
    }
}

impl ServerProc {
    /// Starts `bin serve` on a free loopback port and waits for it to listen. On a store with
    /// no token yet, the server mints the bootstrap owner token (into the data directory, as
    /// stdout is not a terminal). Its log (warnings
    /// such as sqlx's slow-statement alerts) goes to `server.log` in `data_dir`.
    pub async fn start(bin: &Path, storage: &Storage, data_dir: &Path) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .context("cannot open the server log")?;
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_clear()
            .env("MODELREG_DATABASE_URL", storage.url())
            .env("MODELREG_MASTER_KEY", MASTER_KEY)
            .env("MODELREG_LOG_LEVEL", "warn")
            // The PostgreSQL pool is sized for the benchmark's 32 connections.
            .env("MODELREG_DB_POOL_SIZE", "16")
            // One token drives all the load: the per-credential rate limit would be the figure.
            .env("MODELREG_RATE_LIMIT_PER_SEC", "0");
        // The list index's bound passes through, so a run can be made without it (0).
        if let Ok(max) = std::env::var("MODELREG_LIST_INDEX_MAX_MODELS") {
            cmd.env("MODELREG_LIST_INDEX_MAX_MODELS", max);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                let line = line.trim();
                if let Some(a) = line.strip_prefix("modelreg listening on http://") {
                    return Ok(a.parse::<SocketAddr>()?);
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not start within 60 s")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // stdout is a pipe, so a bootstrap token is written to the data directory instead of
        // printed; it is taken (and the file removed) as an operator would.
        let token_file = data_dir.join("bootstrap-token");
        let token = std::fs::read_to_string(&token_file)
            .ok()
            .map(|t| t.trim().to_owned());
        if token.is_some() {
            std::fs::remove_file(&token_file).context("cannot remove the bootstrap token file")?;
        }
        wait_until_idle(pid).await;
        Ok(ServerProc {
            child,
            addr,
            token,
            pid,
        })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SIGTERM, so the server closes the database cleanly (SQLite checkpoints its WAL).
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// Waits (up to 10 minutes) until the server has finished its start-up work. It checks
/// every stored credential in the background, which at 1,000,000 models is seconds of CPU
/// that took `/healthz` from about 80,000 req/s to 45,000 in the first scenarios measured.
/// Idle means under 5% of a core over half a second.
async fn wait_until_idle(pid: u32) {
    let started = std::time::Instant::now();
    let window = Duration::from_millis(500);
    let mut before = cpu_seconds(pid);
    while started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(window).await;
        let now = cpu_seconds(pid);
        let busy = now - before;
        before = now;
        if busy < 0.05 * window.as_secs_f64() {
            break;
        }
    }
    if started.elapsed() > Duration::from_secs(2) {
        eprintln!(
            "waited {:.1} s for the server's start-up work (the credential check)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// User plus system CPU seconds a process has used, all threads.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces; fields resume after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// A memory line of `/proc/PID/status` (such as `VmHWM`), in MiB; 0 when unreadable.
fn status_mib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Peak resident memory of a process since it started, in MiB (`VmHWM`).
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM")
}

/// A process's own resident memory now, without mapped files, in MiB (`RssAnon`).
pub fn anon_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "RssAnon")
}

/// Resident memory of a process now, in MiB (`VmRSS`).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS")
}

/// The open file descriptors of a process, with where each points.
pub fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| {
                    std::fs::read_link(e.path())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The release binary of the workspace, built first so the figures are of this commit.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "modelreg",
                "--bin",
                "modelreg",
            ])
            .current_dir(&root)
            .status()
            .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p modelreg failed");
    }
    Ok(root.join("target/release/modelreg").canonicalize()?)
}
