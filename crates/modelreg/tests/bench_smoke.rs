//! A CI-sized run of the benchmark harness (bench/): a few hundred models, every scenario for
//! a fraction of a second, on both backends, against this build's real binary. It checks that
//! the harness works (every scenario sends requests and gets the answers it expects, the
//! figures are filled in) and asserts no timings: the real figures come from the benchmark
//! command and docs/performance.md.

use std::time::Duration;

use modelreg_bench::{Plan, load::Scenario, markdown, run_backend};

async fn smoke(backend: &str) {
    let plan = Plan {
        sizes: vec![300, 600],
        scenarios: Scenario::ALL.to_vec(),
        concurrency: 4,
        duration: Duration::from_millis(250),
        keep: false,
    };
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_modelreg"));
    let rows = run_backend(bin, backend, &plan, |_| {}).await.unwrap();
    let table = markdown(&rows);
    assert_eq!(rows.len(), 2 * Scenario::ALL.len(), "{table}");
    for r in &rows {
        assert!(r.requests > 0, "{} sent nothing:\n{table}", r.scenario);
        assert_eq!(r.errors, 0, "{} had errors:\n{table}", r.scenario);
        assert!(
            r.p50_ms > 0.0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms,
            "{table}"
        );
        assert!(r.server_peak_rss_mib > 0.0, "{table}");
        assert!(r.vs_healthz > 0.0, "{table}");
    }
    assert_eq!(rows[0].scenario, "healthz");
    assert_eq!(
        (rows[0].models, rows[Scenario::ALL.len()].models),
        (300, 600)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_runs_every_scenario_on_sqlite() {
    smoke("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_runs_every_scenario_on_postgres() {
    smoke("postgres").await;
}
