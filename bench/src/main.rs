//! `modelreg-bench`: see docs/performance.md.
//!
//! ```sh
//! cargo run --release -p modelreg-bench -- run                 # every scenario, 100k models, both backends
//! cargo run --release -p modelreg-bench --features plot -- growth   # list scenarios at 1k…1M, tables and plot
//! cargo run --release -p modelreg-bench -- soak                # 30 minutes of mixed load per backend
//! cargo run --release -p modelreg-bench -- peers               # cold search against MLflow (peers.rs)
//! cargo run --release -p modelreg-bench -- batch               # 1,000-operation batches (docs/batch.md)
//! ```

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
#[cfg(feature = "plot")]
use modelreg_bench::plot;
use modelreg_bench::{Plan, Results, load::Scenario, markdown, run_backend, server};

#[derive(Parser)]
#[command(
    name = "modelreg-bench",
    about = "modelreg's benchmark harness (docs/performance.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// sqlite, postgres, or both. PostgreSQL is MODELREG_TEST_POSTGRES_URL (default
    /// postgres://postgres@127.0.0.1:5432/test), in a fresh schema.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The modelreg binary [default: this workspace's, built with --release first]
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Where the results JSON goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Keep the run's data directory (the SQLite database, the server log) and print its path.
    #[arg(long)]
    keep: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario (or those named) at one size.
    Run {
        #[command(flatten)]
        common: Common,
        /// Models in the main project (the other tenants get a tenth as many).
        #[arg(long, default_value_t = 100_000)]
        models: u64,
        /// Comma-separated scenario names [default: all]
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
    },
    /// The list scenarios at growing sizes, with a PNG plot of p99 against model count.
    Growth {
        #[command(flatten)]
        common: Common,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,10000,100000,1000000"
        )]
        sizes: Vec<u64>,
        /// Where the plot goes.
        #[arg(long, default_value = "docs/performance/p99-growth.png")]
        plot: PathBuf,
    },
    /// modelreg and MLflow side by side on the same cold search (bench/src/peers.rs). Installs
    /// MLflow into target/peers-venv from PyPI when it is not there.
    Peers {
        /// Models in each system.
        #[arg(long, default_value_t = 10_000)]
        models: u64,
        /// Rounds of modelreg then MLflow.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds per system per round.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds of unrecorded warm-up per system.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The modelreg binary [default: this workspace's, built with --release first]
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Where the results JSON goes.
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// 1,000-operation batches of creates and of mixed changes, atomic and not, one after
    /// another (bench/src/batch.rs, docs/batch.md).
    Batch {
        /// sqlite, postgres, or both.
        #[arg(long, default_value = "both")]
        backend: String,
        /// Rounds; each sends four batches (creates and mixed, atomic and not).
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// The modelreg binary [default: this workspace's, built with --release first]
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Where the results JSON goes.
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Steady mixed load for a long time, sampling memory, descriptors, database connections
    /// and p99; fails on errors or growth (docs/operations.md).
    Soak {
        /// sqlite, postgres, or both.
        #[arg(long, default_value = "both")]
        backend: String,
        /// Minutes per backend.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Seconds per sample.
        #[arg(long, default_value_t = 10.0)]
        interval: f64,
        /// Models in the main project.
        #[arg(long, default_value_t = 10_000)]
        models: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// The modelreg binary [default: this workspace's, built with --release first]
        #[arg(long)]
        bin: Option<PathBuf>,
        /// Where the results JSON goes.
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
}

async fn soak(
    backend: &str,
    plan: modelreg_bench::soak::SoakPlan,
    bin: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<()> {
    let (bin, backends) = (binary(bin)?, backends(backend));
    let commit = modelreg_bench::commit();
    eprintln!("soaking commit {commit} on {}", modelreg_bench::machine());
    let mut failed = false;
    std::fs::create_dir_all(&out)?;
    for backend in backends {
        let report = modelreg_bench::soak::soak(&bin, backend, &plan, |s| {
            eprintln!(
                "{backend:>8} {:>6.0}s {:>7.0} req/s p99 {:>7.2} ms errors {} rss {:.1} MiB fds {} db conns {}",
                s.at_s, s.rps, s.p99_ms, s.errors, s.rss_mib, s.open_fds, s.db_connections
            )
        })
        .await?;
        println!("{}", report.markdown());
        let measured_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        let file = out.join(format!(
            "{}-{commit}-soak-{backend}.json",
            &measured_at[..10]
        ));
        std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", file.display());
        failed |= !report.failures.is_empty();
    }
    anyhow::ensure!(!failed, "the soak failed");
    Ok(())
}

async fn batch(
    backend: &str,
    rounds: u32,
    bin: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<()> {
    use modelreg_bench::batch;
    let (bin, backends) = (binary(bin)?, backends(backend));
    let commit = modelreg_bench::commit();
    eprintln!(
        "batches of commit {commit} on {}",
        modelreg_bench::machine()
    );
    let mut rows = Vec::new();
    for backend in backends {
        rows.extend(
            batch::run(&bin, backend, rounds, |r| {
                eprintln!(
                    "{:>8} round {} {:<6} atomic {:<5} {:>7.3} s {:>7.0} ops/s ({} models before)",
                    r.backend,
                    r.round,
                    r.kind,
                    r.atomic,
                    r.seconds,
                    r.ops_per_second,
                    r.models_before
                )
            })
            .await?,
        );
    }
    println!("{}", batch::markdown(&rows));
    std::fs::create_dir_all(&out)?;
    let measured_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let stem = format!("{}-{commit}-batch", &measured_at[..10]);
    let file = free_file(&out, &stem);
    let results = serde_json::json!({
        "commit": commit,
        "machine": modelreg_bench::machine(),
        "measured_at": measured_at,
        "rows": rows,
    });
    std::fs::write(&file, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", file.display());
    Ok(())
}

async fn peers(
    plan: modelreg_bench::peers::PeerPlan,
    bin: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<()> {
    use modelreg_bench::peers;
    let bin = binary(bin)?;
    let commit = modelreg_bench::commit();
    eprintln!(
        "modelreg {commit} against MLflow {} on {}",
        peers::MLFLOW_VERSION,
        modelreg_bench::machine()
    );
    let (rows, pairs) = peers::run(&bin, &plan, |r| {
        eprintln!(
            "round {} {:<8} {:<11} {:>8.0} req/s  p50 {:>8.2} p99 {:>8.2} ms  errors {}  server cpu {:.1}s client cpu {:.1}s",
            r.round, r.system, r.scenario, r.rps, r.p50_ms, r.p99_ms, r.errors, r.server_cpu_s, r.client_cpu_s
        )
    })
    .await?;
    println!("{}", peers::markdown(&rows, &pairs));
    std::fs::create_dir_all(&out)?;
    let measured_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let stem = format!("{}-{commit}-peers-mlflow", &measured_at[..10]);
    let file = free_file(&out, &stem);
    let results = peers::PeerResults {
        commit,
        machine: modelreg_bench::machine(),
        measured_at,
        mlflow_version: peers::MLFLOW_VERSION.into(),
        mlflow_workers: peers::MLFLOW_WORKERS,
        models: plan.models,
        concurrency: plan.concurrency,
        seconds_per_round: plan.duration.as_secs_f64(),
        rows,
        pairs,
    };
    std::fs::write(&file, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", file.display());
    Ok(())
}

/// The binary given, or this workspace's, built with --release first.
fn binary(bin: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match bin {
        Some(b) => Ok(b),
        None => server::release_binary(),
    }
}

/// `sqlite`, `postgres`, or `both` of them.
fn backends(backend: &str) -> Vec<&str> {
    match backend {
        "both" => vec!["sqlite", "postgres"],
        one => vec![one],
    }
}

/// `dir/stem.json`, or, when a run of the same kind on the same commit and day wrote it
/// already, `dir/stem-2.json`, `-3`, …: an earlier file is never overwritten.
fn free_file(dir: &std::path::Path, stem: &str) -> PathBuf {
    (1..)
        .map(|n| match n {
            1 => dir.join(format!("{stem}.json")),
            n => dir.join(format!("{stem}-{n}.json")),
        })
        .find(|f| !f.exists())
        .expect("some file name is free")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Refused before the run rather than after it: a growth run takes hours.
    #[cfg(not(feature = "plot"))]
    if matches!(cli.command, Command::Growth { .. }) {
        anyhow::bail!(
            "growth draws its plot with the `plot` feature: cargo run --release -p modelreg-bench --features plot -- growth"
        );
    }
    let (common, plan, label, plot_path) = match cli.command {
        Command::Soak {
            backend,
            minutes,
            interval,
            models,
            concurrency,
            bin,
            out,
        } => {
            let plan = modelreg_bench::soak::SoakPlan {
                models,
                concurrency,
                duration: Duration::from_secs_f64(minutes * 60.0),
                interval: Duration::from_secs_f64(interval),
                warmup: Duration::from_secs_f64((minutes * 60.0 / 10.0).min(60.0)),
            };
            return soak(&backend, plan, bin, out).await;
        }
        Command::Batch {
            backend,
            rounds,
            bin,
            out,
        } => return batch(&backend, rounds, bin, out).await,
        Command::Peers {
            models,
            rounds,
            seconds,
            warmup,
            concurrency,
            bin,
            out,
        } => {
            let plan = modelreg_bench::peers::PeerPlan {
                models,
                rounds,
                concurrency,
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
            };
            return peers(plan, bin, out).await;
        }
        Command::Run {
            common,
            models,
            scenarios,
        } => {
            let scenarios = if scenarios.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                scenarios
                    .iter()
                    .map(|s| {
                        Scenario::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scenario {s}"))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            let plan = Plan {
                sizes: vec![models],
                scenarios,
                concurrency: common.concurrency,
                duration: Duration::from_secs_f64(common.seconds),
                keep: common.keep,
            };
            (common, plan, format!("run-{models}"), None)
        }
        Command::Growth {
            common,
            sizes,
            plot,
        } => {
            let plan = Plan {
                sizes,
                scenarios: Scenario::LISTS.to_vec(),
                concurrency: common.concurrency,
                duration: Duration::from_secs_f64(common.seconds),
                keep: common.keep,
            };
            (common, plan, "growth".to_owned(), Some(plot))
        }
    };
    let (bin, backends) = (binary(common.bin.clone())?, backends(&common.backend));
    let commit = modelreg_bench::commit();
    eprintln!("measuring commit {commit} on {}", modelreg_bench::machine());
    let mut rows = Vec::new();
    for backend in backends {
        let got = run_backend(&bin, backend, &plan, |r| {
            eprintln!(
                "{:>8} {:>8} {:<17} {:>8.0} req/s  p50 {:>7.2} p99 {:>7.2} ms  errors {}  server cpu {:.1}s client cpu {:.1}s rss {:.0} MiB (own {:.0})",
                r.backend, r.models, r.scenario, r.rps, r.p50_ms, r.p99_ms, r.errors, r.server_cpu_s, r.client_cpu_s, r.server_peak_rss_mib, r.server_anon_mib
            )
        })
        .await?;
        rows.extend(got);
    }
    println!("{}", markdown(&rows));
    std::fs::create_dir_all(&common.out)?;
    let measured_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    // The backend is in the name unless the run covered both, and an earlier file is never
    // overwritten: a second run of the same kind on the same commit gets a number.
    let label = match common.backend.as_str() {
        "both" => label,
        one => format!("{one}-{label}"),
    };
    let stem = format!("{}-{commit}-{label}", &measured_at[..10]);
    let file = free_file(&common.out, &stem);
    let results = Results {
        commit,
        machine: modelreg_bench::machine(),
        measured_at,
        concurrency: plan.concurrency,
        seconds_per_scenario: plan.duration.as_secs_f64(),
        rows,
    };
    std::fs::write(&file, serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", file.display());
    #[cfg(feature = "plot")]
    if let Some(path) = plot_path {
        write_plot(&results, &path)?;
    }
    #[cfg(not(feature = "plot"))]
    let _ = plot_path;
    Ok(())
}

#[cfg(feature = "plot")]
fn write_plot(results: &Results, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    plot::p99_growth(&results.rows, path)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
