//! `modelreg-bench peers`: modelreg and MLflow's model registry side by side, on the same
//! machine, the same data and the same cold search.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo build --release -p modelreg
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p modelreg-bench -- peers \
//!     --models 10000 --rounds 3 --seconds 10 --bin /work/target-bench/release/modelreg
//! ```
//!
//! What it does:
//!
//! 1. Makes a Python virtual environment in `target/peers-venv` (under the repository root)
//!    and installs MLflow [`MLFLOW_VERSION`] from PyPI into it, unless it is there already.
//! 2. Starts `mlflow server` (its default 4 uvicorn workers, a SQLite backend store in the
//!    run's temporary directory) on a free loopback port, and creates N registered models
//!    through its REST API, each with the name and description of model `i` of `seed.rs`.
//! 3. Seeds modelreg (SQLite) with the same N models by the harness's own seeding (plus the
//!    tenth as many in other tenants that every run has) and starts `modelreg serve`.
//! 4. Checks on a few terms that both return the same first page size, then measures each
//!    one's health endpoint, warms both up, and runs `search-cold` (`terms.rs`) in rounds,
//!    modelreg then MLflow, with the same connections and duration. A round gives both the
//!    same terms in the same order (MLflow, the slower, gets a prefix of modelreg's); every
//!    round's terms are new, so modelreg's page cache never answers.
//!
//! modelreg asks `GET /assets/models?search=TERM` (a page of 20, names and descriptions, with
//! the total count); MLflow `GET /api/2.0/mlflow/registered-models/search?filter=name ILIKE
//! '%TERM%'&max_results=20` (its filter reads names only, and it counts nothing). The terms
//! are chosen so that both match the same models (`terms.rs`).
//!
//! The rows go to `bench/results/<date>-<commit>-peers-mlflow.json`.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::{net::TcpStream, process::Command};

use crate::{
    Place, keyring,
    load::{self, Api, Scenario, Target},
    ms, seed, seed_store,
    server::{ServerProc, cpu_seconds, peak_rss_mib},
    terms::Cold,
};

/// The MLflow release measured: the newest 3.x whose packages were all on PyPI when this was
/// written (3.18.0's `mlflow-skinny` was not).
pub const MLFLOW_VERSION: &str = "3.17.2";
/// `mlflow server`'s default.
pub const MLFLOW_WORKERS: u32 = 4;

/// What a peer run does.
#[derive(Clone, Debug)]
pub struct PeerPlan {
    pub models: u64,
    pub rounds: u32,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

/// One system in one round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerRow {
    /// 0 for the health endpoint, then 1, 2, …
    pub round: u32,
    pub system: String,
    pub version: String,
    pub models: u64,
    pub scenario: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU seconds of the server (MLflow: all its processes).
    pub server_cpu_s: f64,
    pub client_cpu_s: f64,
    /// Peak resident memory (MLflow: the sum over its processes).
    pub server_peak_rss_mib: f64,
    /// requests/s as a fraction of the same system's health endpoint in the same run.
    pub vs_healthz: f64,
    /// The request number (`terms.rs`) of the round's first term.
    pub first_term: u64,
}

/// modelreg against MLflow in one round.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pair {
    /// 0 for all rounds together.
    pub round: u32,
    pub modelreg_rps: f64,
    pub mlflow_rps: f64,
    /// modelreg's req/s over MLflow's: above 1, modelreg is faster.
    pub rps_ratio: f64,
    /// modelreg's latency over MLflow's: below 1, modelreg is faster.
    pub p50_ratio: f64,
    pub p99_ratio: f64,
}

#[derive(Serialize, Deserialize)]
pub struct PeerResults {
    pub commit: String,
    pub machine: String,
    pub measured_at: String,
    pub mlflow_version: String,
    pub mlflow_workers: u32,
    pub models: u64,
    pub concurrency: usize,
    pub seconds_per_round: f64,
    pub rows: Vec<PeerRow>,
    pub pairs: Vec<Pair>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtual environment with MLflow, made (or completed) when needed. Returns its `bin`.
pub fn mlflow_venv() -> anyhow::Result<PathBuf> {
    let venv = repo_root().join("target/peers-venv");
    let bin = venv.join("bin");
    let python = bin.join("python");
    if !python.exists() {
        eprintln!("making {}", venv.display());
        let ok = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("cannot run python3 -m venv")?
            .success();
        anyhow::ensure!(ok, "python3 -m venv {} failed", venv.display());
    }
    let installed = std::process::Command::new(&python)
        .args(["-c", "import mlflow; print(mlflow.__version__)"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() != Some(MLFLOW_VERSION) {
        eprintln!(
            "installing mlflow=={MLFLOW_VERSION} into {}",
            venv.display()
        );
        let ok = std::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(format!("mlflow=={MLFLOW_VERSION}"))
            .status()
            .context("cannot run pip")?
            .success();
        anyhow::ensure!(ok, "pip install mlflow=={MLFLOW_VERSION} failed");
    }
    Ok(bin)
}

/// A running `mlflow server`: its process group is ended on drop.
pub struct Mlflow {
    child: tokio::process::Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl Mlflow {
    pub async fn start(venv_bin: &Path, dir: &Path) -> anyhow::Result<Mlflow> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = std::fs::File::create(dir.join("mlflow.log"))?;
        let child = Command::new(venv_bin.join("mlflow"))
            .arg("server")
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--default-artifact-root")
            .arg(dir.join("artifacts"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--workers", &MLFLOW_WORKERS.to_string()])
            .env("PATH", format!("{}:/usr/bin:/bin", venv_bin.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start mlflow server")?;
        let pid = child.id().context("mlflow exited at once")?;
        let mut me = Mlflow { child, addr, pid };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = request(addr, Method::GET, "/health", None).await {
                break;
            }
            if let Some(status) = me.child.try_wait()? {
                bail!(
                    "mlflow server exited ({status}); see {}",
                    dir.join("mlflow.log").display()
                );
            }
            if started.elapsed() > Duration::from_secs(180) {
                bail!("mlflow server did not answer /health within 180 s");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!(
            "mlflow {MLFLOW_VERSION} listening on {addr} after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(me)
    }

    /// The server's processes: the one started and all its descendants.
    pub fn pids(&self) -> Vec<u32> {
        let mut parents: Vec<(u32, u32)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
                if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                    parents.push((pid, ppid));
                }
            }
        }
        let mut tree = vec![self.pid];
        let mut k = 0;
        while k < tree.len() {
            let p = tree[k];
            tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
            k += 1;
        }
        tree
    }

    pub fn cpu_seconds(&self) -> f64 {
        self.pids().into_iter().map(cpu_seconds).sum()
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.pids().into_iter().map(peak_rss_mib).sum()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        unsafe {
            libc::kill(-(self.pid as i32), libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
            }
            let _ = self.child.wait().await;
        }
        Ok(())
    }
}

/// One request on a new connection: (status, body).
async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    send(&mut sender, method, path, body, None).await
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: Option<String>,
    auth: Option<&str>,
) -> anyhow::Result<(u16, Bytes)> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1");
    if let Some(token) = auth {
        req = req
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("x-project-id", seed::MAIN_PROJECT);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(b))
        }
        None => Full::new(Bytes::new()),
    };
    sender.ready().await?;
    let res = sender.send_request(req.body(body)?).await?;
    let status = res.status().as_u16();
    Ok((status, res.into_body().collect().await?.to_bytes()))
}

/// Creates models `0..n` as MLflow registered models, over `conns` connections.
async fn seed_mlflow(addr: SocketAddr, n: u64, conns: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            for i in (c..n).step_by(conns as usize) {
                let f = seed::fields(i);
                let body = serde_json::json!({"name": f.name, "description": f.description});
                let (status, body) = send(
                    &mut sender,
                    Method::POST,
                    "/api/2.0/mlflow/registered-models/create",
                    Some(body.to_string()),
                    None,
                )
                .await?;
                anyhow::ensure!(
                    status == 200,
                    "creating MLflow model {i}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "created {n} MLflow registered models in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Both systems' first page for `term`: the number of models on it.
async fn first_pages(m: &Target, f: &Target, term: &str) -> anyhow::Result<(usize, usize)> {
    let stream = TcpStream::connect(m.addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (status, body) = send(
        &mut sender,
        Method::GET,
        &format!("/assets/models?search={}", enc(term)),
        None,
        Some(&m.token),
    )
    .await?;
    anyhow::ensure!(status == 200, "modelreg search {term:?}: {status}");
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let ours = v["data"].as_array().map_or(0, Vec::len);
    let (status, body) = request(
        f.addr,
        Method::GET,
        &format!(
            "/api/2.0/mlflow/registered-models/search?filter={}&max_results=20",
            enc(&format!("name ILIKE '%{term}%'"))
        ),
        None,
    )
    .await?;
    anyhow::ensure!(
        status == 200,
        "MLflow search {term:?}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let theirs = v["registered_models"].as_array().map_or(0, Vec::len);
    Ok((ours, theirs))
}

/// Where a system's CPU and memory are read.
enum Proc<'a> {
    Modelreg(u32),
    Mlflow(&'a Mlflow),
}

impl Proc<'_> {
    fn cpu(&self) -> f64 {
        match self {
            Proc::Modelreg(pid) => cpu_seconds(*pid),
            Proc::Mlflow(m) => m.cpu_seconds(),
        }
    }
    fn rss(&self) -> f64 {
        match self {
            Proc::Modelreg(pid) => peak_rss_mib(*pid),
            Proc::Mlflow(m) => m.peak_rss_mib(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    t: &Target,
    proc_: &Proc<'_>,
    scenario: Scenario,
    plan: &PeerPlan,
    round: u32,
    system: &str,
    version: &str,
    ceiling: Option<f64>,
) -> anyhow::Result<PeerRow> {
    let first_term = t
        .cold
        .as_ref()
        .map_or(0, |c| c.next_search.load(Ordering::Relaxed));
    let me = std::process::id();
    let (server_before, client_before) = (proc_.cpu(), cpu_seconds(me));
    let out = load::drive(t, scenario, plan.concurrency, plan.duration).await?;
    let seconds = out.elapsed.as_secs_f64();
    let rps = out.requests as f64 / seconds;
    let h = &out.latency;
    Ok(PeerRow {
        round,
        system: system.to_owned(),
        version: version.to_owned(),
        models: plan.models,
        scenario: scenario.name().to_owned(),
        concurrency: plan.concurrency,
        seconds,
        requests: out.requests,
        errors: out.errors,
        rps,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        server_cpu_s: proc_.cpu() - server_before,
        client_cpu_s: cpu_seconds(me) - client_before,
        server_peak_rss_mib: proc_.rss(),
        vs_healthz: ceiling.map_or(1.0, |c| rps / c),
        first_term,
    })
}

fn pair(round: u32, m: &[&PeerRow], f: &[&PeerRow]) -> Pair {
    let rps = |rows: &[&PeerRow]| {
        rows.iter().map(|r| r.requests as f64).sum::<f64>()
            / rows.iter().map(|r| r.seconds).sum::<f64>()
    };
    // Over several rounds, the latencies are the rounds' means.
    let mean = |rows: &[&PeerRow], get: fn(&PeerRow) -> f64| {
        rows.iter().map(|r| get(r)).sum::<f64>() / rows.len() as f64
    };
    let (mr, fr) = (rps(m), rps(f));
    Pair {
        round,
        modelreg_rps: mr,
        mlflow_rps: fr,
        rps_ratio: mr / fr,
        p50_ratio: mean(m, |r| r.p50_ms) / mean(f, |r| r.p50_ms),
        p99_ratio: mean(m, |r| r.p99_ms) / mean(f, |r| r.p99_ms),
    }
}

/// Runs the comparison; `on_row` sees each row as it is measured.
pub async fn run(
    bin: &Path,
    plan: &PeerPlan,
    mut on_row: impl FnMut(&PeerRow),
) -> anyhow::Result<(Vec<PeerRow>, Vec<Pair>)> {
    let venv_bin = mlflow_venv()?;
    let dir = tempfile::tempdir()?;
    let mlflow = Mlflow::start(&venv_bin, dir.path()).await?;
    seed_mlflow(mlflow.addr, plan.models, 8).await?;

    let place = Place::new("sqlite").await?;
    seed_store(&place.storage(), &keyring()?, 0, plan.models).await?;
    let server = ServerProc::start(bin, &place.storage(), place.data_dir()).await?;
    let version = String::from_utf8_lossy(
        &std::process::Command::new(bin)
            .arg("--version")
            .output()?
            .stdout,
    )
    .trim()
    .to_owned();

    let started = Instant::now();
    let cold = Cold::new(plan.models);
    eprintln!(
        "search-cold: {} common terms (mean {:.2}% of models), {} rare, {} none; {} requests before any repeats ({:.1} s to count)",
        cold.search.common.len(),
        cold.search.common_mean * 100.0,
        cold.search.rare.len(),
        cold.search.none.len(),
        cold.search.distinct_requests(),
        started.elapsed().as_secs_f64()
    );
    let ours = Target {
        addr: server.addr,
        token: server
            .token
            .clone()
            .context("the server minted no bootstrap token on the fresh store")?,
        models: plan.models,
        cursors: Arc::new(Vec::new()),
        cold: Some(cold.clone()),
        api: Api::Modelreg,
    };
    let theirs = Target {
        addr: mlflow.addr,
        token: String::new(),
        api: Api::Mlflow,
        ..ours.clone()
    };

    // The same answers: the first page of terms from the pools' ends (used only by a run
    // long enough to wrap around).
    let s = &cold.search;
    let probes = s
        .common
        .iter()
        .rev()
        .take(8)
        .chain(s.rare.iter().rev().take(4));
    for term in probes.chain(s.none.iter().rev().take(2)) {
        let (a, b) = first_pages(&ours, &theirs, term).await?;
        anyhow::ensure!(
            a == b,
            "{term:?}: modelreg's first page has {a} models, MLflow's {b}"
        );
    }

    let m_proc = Proc::Modelreg(server.pid);
    let f_proc = Proc::Mlflow(&mlflow);
    let mlflow_version = format!("mlflow {MLFLOW_VERSION}");
    let mut rows = Vec::new();
    let m_health = measure(
        &ours,
        &m_proc,
        Scenario::Healthz,
        plan,
        0,
        "modelreg",
        &version,
        None,
    )
    .await?;
    on_row(&m_health);
    let f_health = measure(
        &theirs,
        &f_proc,
        Scenario::Healthz,
        plan,
        0,
        "mlflow",
        &mlflow_version,
        None,
    )
    .await?;
    on_row(&f_health);
    let (m_ceiling, f_ceiling) = (m_health.rps, f_health.rps);
    rows.push(m_health);
    rows.push(f_health);

    // Warm-up, unrecorded: Python's first requests import and compile.
    let warm = PeerPlan {
        duration: plan.warmup,
        ..plan.clone()
    };
    load::drive(&ours, Scenario::SearchCold, warm.concurrency, warm.duration).await?;
    load::drive(
        &theirs,
        Scenario::SearchCold,
        warm.concurrency,
        warm.duration,
    )
    .await?;

    let counter = &cold.next_search;
    for round in 1..=plan.rounds {
        let start = counter.load(Ordering::Relaxed);
        let m = measure(
            &ours,
            &m_proc,
            Scenario::SearchCold,
            plan,
            round,
            "modelreg",
            &version,
            Some(m_ceiling),
        )
        .await?;
        on_row(&m);
        let m_end = counter.swap(start, Ordering::Relaxed);
        let f = measure(
            &theirs,
            &f_proc,
            Scenario::SearchCold,
            plan,
            round,
            "mlflow",
            &mlflow_version,
            Some(f_ceiling),
        )
        .await?;
        on_row(&f);
        let f_end = counter.load(Ordering::Relaxed);
        counter.store(m_end.max(f_end), Ordering::Relaxed);
        rows.push(m);
        rows.push(f);
    }
    server.stop().await?;
    mlflow.stop().await?;

    let of = |system: &str, round: u32| -> Vec<&PeerRow> {
        rows.iter()
            .filter(|r| r.system == system && r.round > 0 && (round == 0 || r.round == round))
            .collect()
    };
    let mut pairs: Vec<Pair> = (1..=plan.rounds)
        .map(|k| pair(k, &of("modelreg", k), &of("mlflow", k)))
        .collect();
    pairs.push(pair(0, &of("modelreg", 0), &of("mlflow", 0)));
    Ok((rows, pairs))
}

/// The rows and the ratios as Markdown.
pub fn markdown(rows: &[PeerRow], pairs: &[Pair]) -> String {
    let mut out = String::from(
        "| round | system | scenario | req/s | × health | p50 ms | p95 ms | p99 ms | max ms | errors | server CPU s | client CPU s | server peak RSS MiB |\n\
         |---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.1} | {:.1} | {:.0} |\n",
            r.round,
            r.system,
            r.scenario,
            r.rps,
            r.vs_healthz,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            r.server_cpu_s,
            r.client_cpu_s,
            r.server_peak_rss_mib
        ));
    }
    out.push_str(
        "\n| round | modelreg req/s | MLflow req/s | req/s modelreg ÷ MLflow | p50 modelreg ÷ MLflow | p99 modelreg ÷ MLflow |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for p in pairs {
        let round = if p.round == 0 {
            "all".to_owned()
        } else {
            p.round.to_string()
        };
        out.push_str(&format!(
            "| {round} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} |\n",
            p.modelreg_rps, p.mlflow_rps, p.rps_ratio, p.p50_ratio, p.p99_ratio
        ));
    }
    out
}
