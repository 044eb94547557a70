//! modelreg's benchmark harness (docs/performance.md): seed a fresh database, start the real
//! `modelreg serve`, drive each scenario over loopback, and report requests/s, latency
//! percentiles, the server's CPU seconds and peak RSS, the load generator's own CPU, and each
//! figure's ratio to the server's ceiling on `/healthz` in the same run.

pub mod batch;
pub mod load;
pub mod peers;
#[cfg(feature = "plot")]
pub mod plot;
pub mod seed;
pub mod server;
pub mod soak;
pub mod terms;

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use modelreg_core::secrets::{Kek, Keyring};
use serde::{Deserialize, Serialize};

use crate::{
    load::{Api, Scenario, Target},
    server::{ServerProc, Storage, anon_rss_mib, cpu_seconds, peak_rss_mib},
};

/// One scenario at one size on one backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub backend: String,
    /// Models in the main project.
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
    /// CPU seconds the server used during the scenario.
    pub server_cpu_s: f64,
    /// CPU seconds the load generator used during the scenario.
    pub client_cpu_s: f64,
    /// The server's peak resident memory since it started, at the end of the scenario.
    pub server_peak_rss_mib: f64,
    /// The server's own memory at the end of the scenario (`RssAnon`): its peak RSS less the
    /// database file's pages it maps, which are the kernel's page cache (SQLite reads through
    /// a map of the file). 0 in results written before it was measured.
    #[serde(default)]
    pub server_anon_mib: f64,
    /// requests/s as a fraction of `/healthz`'s in the same run.
    pub vs_healthz: f64,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sizes: Vec<u64>,
    pub scenarios: Vec<Scenario>,
    pub concurrency: usize,
    pub duration: Duration,
    /// Keep the data directory (SQLite database and server log) instead of removing it.
    pub keep: bool,
}

/// Where a backend's data lives for one plan; dropped (and removed) afterwards.
pub(crate) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(modelreg_store::testing::PgSchema, tempfile::TempDir),
}

impl Place {
    pub(crate) async fn new(backend: &str) -> anyhow::Result<Place> {
        Ok(match backend {
            "sqlite" => Place::Sqlite(tempfile::tempdir()?),
            "postgres" => Place::Postgres(
                modelreg_store::testing::PgSchema::create().await,
                tempfile::tempdir()?,
            ),
            other => anyhow::bail!("unknown backend {other}: sqlite or postgres"),
        })
    }

    pub(crate) fn storage(&self) -> Storage {
        match self {
            Place::Sqlite(d) => Storage::Sqlite(d.path().to_owned()),
            Place::Postgres(s, _) => Storage::Postgres(s.url.clone()),
        }
    }

    pub(crate) fn data_dir(&self) -> &Path {
        match self {
            Place::Sqlite(d) | Place::Postgres(_, d) => d.path(),
        }
    }
}

/// The keyring of the benchmark's databases.
pub(crate) fn keyring() -> anyhow::Result<Keyring> {
    Keyring::new(vec![
        Kek::from_base64(server::MASTER_KEY).map_err(anyhow::Error::msg)?,
    ])
    .map_err(anyhow::Error::msg)
}

/// Seeds models `from..to` into `storage`, then (PostgreSQL) analyzes.
pub(crate) async fn seed_store(
    storage: &Storage,
    keyring: &Keyring,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    seed_with(storage, keyring, from, to, &[]).await
}

/// [`seed_store`], and the `extra` projects of the main organization, each with its count of
/// models (`seed::V1_PROJECTS`).
pub(crate) async fn seed_with(
    storage: &Storage,
    keyring: &Keyring,
    from: u64,
    to: u64,
    extra: &[(&str, u64)],
) -> anyhow::Result<()> {
    let store = modelreg_store::open(&storage.url(), &modelreg_store::PoolSettings::default())
        .await
        .context("open the store to seed")?;
    seed::seed(store.as_ref(), keyring, from, to).await?;
    for (project, n) in extra {
        seed::seed_project(store.as_ref(), keyring, seed::MAIN_ORG, project, *n).await?;
    }
    store.close().await;
    if let Storage::Postgres(url) = storage {
        // What autovacuum's ANALYZE does soon after a bulk load; without it the first
        // minutes after seeding would measure plans made without statistics.
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query("ANALYZE").execute(&mut c).await?;
        c.close().await?;
    }
    Ok(())
}

pub(crate) fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Runs `plan` on one backend: for each size, seed up to it, start the server, measure
/// `/healthz` and then each scenario. `on_row` sees every row as it is measured.
pub async fn run_backend(
    bin: &Path,
    backend: &str,
    plan: &Plan,
    mut on_row: impl FnMut(&Row),
) -> anyhow::Result<Vec<Row>> {
    let place = Place::new(backend).await?;
    let storage = place.storage();
    if plan.keep {
        eprintln!("keeping the data directory {}", place.data_dir().display());
    }
    let keyring = keyring()?;
    let mut rows = Vec::new();
    let mut seeded = 0u64;
    let mut token: Option<String> = None;
    // The `/v1/models` scenarios' projects, once, only when one of them runs.
    let mut extra: Vec<(&str, u64)> = plan.scenarios.iter().filter_map(|s| s.project()).collect();
    extra.dedup();
    for &size in &plan.sizes {
        seed_with(&storage, &keyring, seeded, size, &extra).await?;
        extra.clear();
        seeded = size;
        let server = ServerProc::start(bin, &storage, place.data_dir()).await?;
        if let Some(t) = &server.token {
            token = Some(t.clone());
        }
        let mut target = Target {
            addr: server.addr,
            token: token
                .clone()
                .context("the server minted no bootstrap token on the fresh store")?,
            models: size,
            cursors: Arc::new(Vec::new()),
            cold: None,
            api: Api::Modelreg,
        };
        if plan.scenarios.iter().any(|s| {
            matches!(
                s,
                Scenario::SearchCold | Scenario::FilterCold | Scenario::FilterCatalog
            )
        }) {
            let started = std::time::Instant::now();
            let cold = terms::Cold::new(size);
            eprintln!(
                "search-cold: {} common terms (mean {:.2}% of models), {} rare, {} matching none: {} requests before any repeats ({:.1} s to count)",
                cold.search.common.len(),
                cold.search.common_mean * 100.0,
                cold.search.rare.len(),
                cold.search.none.len(),
                cold.search.distinct_requests(),
                started.elapsed().as_secs_f64()
            );
            target.cold = Some(cold);
        }
        if plan.scenarios.contains(&Scenario::ListCursorDeep) {
            target.cursors = Arc::new(load::walk_cursors(&target).await?);
        }
        let mut healthz_rps = None;
        let mut scenarios = vec![Scenario::Healthz];
        scenarios.extend(plan.scenarios.iter().filter(|s| **s != Scenario::Healthz));
        for scenario in scenarios {
            let me = std::process::id();
            let (server_before, client_before) = (cpu_seconds(server.pid), cpu_seconds(me));
            let out = load::drive(&target, scenario, plan.concurrency, plan.duration).await?;
            let seconds = out.elapsed.as_secs_f64();
            let rps = out.requests as f64 / seconds;
            let ceiling = *healthz_rps.get_or_insert(rps);
            let h = &out.latency;
            let row = Row {
                backend: backend.to_owned(),
                models: size,
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
                server_cpu_s: cpu_seconds(server.pid) - server_before,
                client_cpu_s: cpu_seconds(me) - client_before,
                server_peak_rss_mib: peak_rss_mib(server.pid),
                server_anon_mib: anon_rss_mib(server.pid),
                vs_healthz: rps / ceiling,
            };
            on_row(&row);
            rows.push(row);
        }
        server.stop().await?;
    }
    if plan.keep {
        match place {
            Place::Sqlite(d) => {
                let _ = d.keep();
            }
            Place::Postgres(_, d) => {
                let _ = d.keep();
            }
        }
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| backend | models | scenario | req/s | × healthz | p50 ms | p95 ms | p99 ms | max ms | errors | server CPU s | client CPU s | server peak RSS MiB | own memory MiB |\n\
         |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {:.1} | {:.1} | {:.0} | {:.0} |\n",
            r.backend,
            r.models,
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
            r.server_peak_rss_mib,
            r.server_anon_mib
        ));
    }
    out
}

/// The commit being measured, `-dirty` when the work tree has changes.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// The machine, for the record: CPU model and count.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} × {model}")
}

/// A results file: what was run, where, on which commit, and the rows.
#[derive(Serialize, Deserialize)]
pub struct Results {
    pub commit: String,
    pub machine: String,
    pub measured_at: String,
    pub concurrency: usize,
    pub seconds_per_scenario: f64,
    pub rows: Vec<Row>,
}
