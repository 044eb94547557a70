//! The soak test: the real server under steady mixed load for a long time (30 minutes by
//! default), sampled every interval for its resident memory, open file descriptors, database
//! connections, p99 latency and errors. It fails on errors, or when the last third of the run
//! is worse than the first third (after a warm-up) by more than the allowances below: a leak
//! of memory, descriptors or connections, or latency that creeps up.
//!
//! The load is `Scenario::Soak`: 90% reads, 5% updates, 5% a create or the delete of the
//! model created before it, so the data stays the same size and what grows is a leak.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    Place, keyring,
    load::{self, Scenario, Target},
    ms, seed_store,
    server::{ServerProc, Storage, open_files, rss_mib},
};

/// What a soak run does.
#[derive(Clone, Debug)]
pub struct SoakPlan {
    pub models: u64,
    pub concurrency: usize,
    pub duration: Duration,
    pub interval: Duration,
    /// Samples before this are the warm-up, left out of the comparison.
    pub warmup: Duration,
}

/// One interval.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the load started, at the end of the interval.
    pub at_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p99_ms: f64,
    pub rss_mib: f64,
    pub open_fds: usize,
    /// SQLite: descriptors open on the database, its WAL and shared memory (three per
    /// connection). PostgreSQL: the server's sessions on the database.
    pub db_connections: usize,
}

/// The allowances: last third against first third.
pub const RSS_GROWTH: f64 = 1.25;
pub const RSS_SLACK_MIB: f64 = 16.0;
pub const FD_SLACK: usize = 16;
pub const P99_GROWTH: f64 = 2.0;
pub const P99_SLACK_MS: f64 = 5.0;

/// A soak run's result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakReport {
    pub backend: String,
    pub models: u64,
    pub concurrency: usize,
    pub samples: Vec<Sample>,
    /// Why it failed; empty when it passed.
    pub failures: Vec<String>,
}

fn max_by<T: PartialOrd + Copy>(xs: &[Sample], f: impl Fn(&Sample) -> T) -> Option<T> {
    xs.iter().map(f).fold(None, |m, x| {
        Some(m.map_or(x, |m: T| if x > m { x } else { m }))
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

impl SoakReport {
    /// Compares the last third of the samples after the warm-up with the first third.
    fn judge(&mut self, warmup: Duration) {
        let errors: u64 = self.samples.iter().map(|s| s.errors).sum();
        if errors > 0 {
            self.failures.push(format!("{errors} requests failed"));
        }
        let steady: Vec<Sample> = self
            .samples
            .iter()
            .filter(|s| s.at_s > warmup.as_secs_f64())
            .cloned()
            .collect();
        if steady.len() < 3 {
            self.failures
                .push("too few samples after the warm-up to judge growth".into());
            return;
        }
        let third = steady.len() / 3;
        let (first, last) = (&steady[..third], &steady[steady.len() - third..]);
        let (r0, r1) = (
            max_by(first, |s| s.rss_mib).unwrap_or(0.0),
            max_by(last, |s| s.rss_mib).unwrap_or(0.0),
        );
        if r1 > r0 * RSS_GROWTH + RSS_SLACK_MIB {
            self.failures
                .push(format!("resident memory grew from {r0:.0} to {r1:.0} MiB"));
        }
        let (f0, f1) = (
            max_by(first, |s| s.open_fds).unwrap_or(0),
            max_by(last, |s| s.open_fds).unwrap_or(0),
        );
        if f1 > f0 + FD_SLACK {
            self.failures
                .push(format!("open file descriptors grew from {f0} to {f1}"));
        }
        let (c0, c1) = (
            max_by(first, |s| s.db_connections).unwrap_or(0),
            max_by(last, |s| s.db_connections).unwrap_or(0),
        );
        if c1 > c0 {
            self.failures
                .push(format!("database connections grew from {c0} to {c1}"));
        }
        let (p0, p1) = (
            median(first.iter().map(|s| s.p99_ms).collect()),
            median(last.iter().map(|s| s.p99_ms).collect()),
        );
        if p1 > p0 * P99_GROWTH + P99_SLACK_MS {
            self.failures
                .push(format!("p99 grew from {p0:.1} to {p1:.1} ms"));
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{} · {} models · {} connections: {}\n\n| s | req/s | p99 ms | errors | RSS MiB | fds | db conns |\n|---:|---:|---:|---:|---:|---:|---:|\n",
            self.backend,
            self.models,
            self.concurrency,
            if self.failures.is_empty() {
                "passed".to_owned()
            } else {
                format!("FAILED: {}", self.failures.join("; "))
            }
        );
        for s in &self.samples {
            out.push_str(&format!(
                "| {:.0} | {:.0} | {:.2} | {} | {:.1} | {} | {} |\n",
                s.at_s, s.rps, s.p99_ms, s.errors, s.rss_mib, s.open_fds, s.db_connections
            ));
        }
        out
    }
}

/// Database connections the server holds now.
async fn db_connections(storage: &Storage, pid: u32) -> anyhow::Result<usize> {
    match storage {
        Storage::Sqlite(dir) => {
            let db = dir.join("modelreg.db").display().to_string();
            Ok(open_files(pid)
                .iter()
                .filter(|f| f.starts_with(&db))
                .count())
        }
        Storage::Postgres(url) => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(url).await?;
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut c)
            .await?;
            c.close().await?;
            Ok(n as usize)
        }
    }
}

/// Runs a soak on one backend; `on_sample` sees each interval as it ends.
pub async fn soak(
    bin: &std::path::Path,
    backend: &str,
    plan: &SoakPlan,
    mut on_sample: impl FnMut(&Sample),
) -> anyhow::Result<SoakReport> {
    let place = Place::new(backend).await?;
    let storage = place.storage();
    seed_store(&storage, &keyring()?, 0, plan.models).await?;
    let server = ServerProc::start(bin, &storage, place.data_dir()).await?;
    let target = Target {
        addr: server.addr,
        token: server
            .token
            .clone()
            .context("the server minted no bootstrap token on the fresh store")?,
        models: plan.models,
        cursors: Arc::new(Vec::new()),
        cold: None,
        api: load::Api::Modelreg,
    };
    let started = std::time::Instant::now();
    let mut report = SoakReport {
        backend: backend.to_owned(),
        models: plan.models,
        concurrency: plan.concurrency,
        samples: Vec::new(),
        failures: Vec::new(),
    };
    while started.elapsed() < plan.duration {
        let out = load::drive(&target, Scenario::Soak, plan.concurrency, plan.interval).await?;
        let sample = Sample {
            at_s: started.elapsed().as_secs_f64(),
            requests: out.requests,
            errors: out.errors,
            rps: out.requests as f64 / out.elapsed.as_secs_f64(),
            p99_ms: ms(out.latency.value_at_quantile(0.99)),
            rss_mib: rss_mib(server.pid),
            open_fds: open_files(server.pid).len(),
            db_connections: db_connections(&storage, server.pid).await?,
        };
        if out.errors > 0 {
            eprintln!("statuses: {:?}", out.statuses);
        }
        on_sample(&sample);
        report.samples.push(sample);
    }
    server.stop().await?;
    report.judge(plan.warmup);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(f: impl Fn(usize) -> (f64, usize, f64)) -> SoakReport {
        SoakReport {
            backend: "sqlite".into(),
            models: 1,
            concurrency: 1,
            samples: (0..30)
                .map(|i| {
                    let (rss, fds, p99) = f(i);
                    Sample {
                        at_s: 10.0 * (i + 1) as f64,
                        requests: 100,
                        errors: 0,
                        rps: 10.0,
                        p99_ms: p99,
                        rss_mib: rss,
                        open_fds: fds,
                        db_connections: 3,
                    }
                })
                .collect(),
            failures: Vec::new(),
        }
    }

    #[test]
    fn a_steady_run_passes_and_each_kind_of_growth_fails() {
        let warmup = Duration::from_secs(60);
        let mut steady = samples(|i| (50.0 + (i % 3) as f64, 20, 4.0));
        steady.judge(warmup);
        assert!(steady.failures.is_empty(), "{:?}", steady.failures);

        let mut leak = samples(|i| (50.0 + 3.0 * i as f64, 20, 4.0));
        leak.judge(warmup);
        assert!(
            leak.failures[0].contains("resident memory"),
            "{:?}",
            leak.failures
        );

        let mut fds = samples(|i| (50.0, 20 + 2 * i, 4.0));
        fds.judge(warmup);
        assert!(
            fds.failures[0].contains("descriptors"),
            "{:?}",
            fds.failures
        );

        let mut slow = samples(|i| (50.0, 20, 4.0 + 3.0 * i as f64));
        slow.judge(warmup);
        assert!(slow.failures[0].contains("p99"), "{:?}", slow.failures);

        let mut errors = samples(|_| (50.0, 20, 4.0));
        errors.samples[5].errors = 1;
        errors.judge(warmup);
        assert_eq!(errors.failures, ["1 requests failed"]);
    }
}
