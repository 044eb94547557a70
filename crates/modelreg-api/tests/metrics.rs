//! `GET /metrics`, parsed as the OpenMetrics text format and checked value by value, on both
//! backends.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use common::*;
use modelreg_probe::testing::{self, GOOD_KEY};
use serde_json::json;

/// One sample: its name and sorted labels.
type Key = (String, BTreeMap<String, String>);

/// A scrape, parsed strictly: every line is a comment of a known kind or a well-formed
/// sample of a declared family, and the text ends with `# EOF`.
struct Scrape {
    types: BTreeMap<String, String>,
    samples: BTreeMap<Key, f64>,
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {name:?}"
        );
        // Values escape `"` and `\`; find the closing quote.
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closed label value") {
                (_, '\\') => value.push(chars.next().expect("escaped char").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

fn parse(text: &str) -> Scrape {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect("a family name").to_owned();
            match kind {
                "TYPE" => {
                    types.insert(name, parts.next().expect("a type").to_owned());
                }
                "HELP" | "UNIT" => {}
                other => panic!("unknown comment {other}: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("closed labels"))),
            None => (series, BTreeMap::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name:?}"
        );
        let family = ["_total", "_bucket", "_count", "_sum", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no # TYPE");
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "duplicate sample {line}"
        );
    }
    Scrape { types, samples }
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        *self
            .samples
            .get(&(name.to_owned(), labels.clone()))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }

    fn with_name(&self, name: &str) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

async fn scrape(app: &TestApp) -> (Scrape, String) {
    let r = app
        .send(Req::new(Method::GET, "/metrics"))
        .await
        .expect(200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    (parse(&r.text), r.text)
}

async fn metrics_count_requests_models_and_verifications(app: TestApp) {
    let provider = testing::start().await;
    let base = format!("http://{provider}/openai/v1");
    let t = app.tenant().await;
    for body in [
        json!({"name": "Good", "litellm_model": "openai/gpt-4o", "api_base": base,
               "credentials": {"api_key": GOOD_KEY}}),
        json!({"name": "Other", "litellm_model": "openai/gpt-4o-mini", "credentials": {"api_key": "k"}}),
        json!({"name": "Claude", "litellm_model": "anthropic/claude-3-5-sonnet",
               "credentials": {"api_key": "k"}}),
    ] {
        app.send(t.post("/assets/models", body)).await.expect(201);
    }
    app.send(t.get("/assets/models/good")).await.expect(200);
    app.send(t.get("/assets/models/absent")).await.expect(404);
    app.send(Req::new(Method::GET, "/no/such/path"))
        .await
        .expect(404);
    let v = app
        .send(t.post("/assets/models/good/verify", json!({})))
        .await
        .expect(200);
    assert_eq!(v.json["verified"], true);
    let v = app
        .send(t.post(
            "/assets/models/verify",
            json!({"name": "x", "litellm_model": "openai/gpt-4o", "api_base": base,
                   "credentials": {"api_key": "bad-key"}}),
        ))
        .await
        .expect(200);
    assert_eq!(v.json["verified"], false);

    let (m, text) = scrape(&app).await;
    let requests = "modelreg_http_requests_total";
    assert_eq!(m.types["modelreg_http_requests"], "counter");
    assert_eq!(
        m.get(
            requests,
            &[
                ("method", "POST"),
                ("route", "/assets/models"),
                ("status", "201")
            ]
        ),
        3.0
    );
    let by_uri = [
        ("method", "GET"),
        ("route", "/assets/models/{resource_uri}"),
    ];
    assert_eq!(
        m.get(requests, &[by_uri[0], by_uri[1], ("status", "200")]),
        1.0
    );
    assert_eq!(
        m.get(requests, &[by_uri[0], by_uri[1], ("status", "404")]),
        1.0
    );
    // Unrouted paths share one label, so clients cannot grow the series.
    assert_eq!(
        m.get(
            requests,
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(!text.contains("/no/such/path") && !text.contains("absent"));

    // Latency: a histogram whose +Inf bucket and count agree with the counter.
    assert_eq!(
        m.types["modelreg_http_request_duration_seconds"],
        "histogram"
    );
    let created = [
        ("method", "POST"),
        ("route", "/assets/models"),
        ("status", "201"),
    ];
    let hist = "modelreg_http_request_duration_seconds";
    assert_eq!(m.get(&format!("{hist}_count"), &created), 3.0);
    let mut inf = created.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(m.get(&format!("{hist}_bucket"), &inf), 3.0);
    assert!(m.get(&format!("{hist}_sum"), &created) > 0.0);
    let mut buckets: Vec<(f64, f64)> = m
        .with_name(&format!("{hist}_bucket"))
        .into_iter()
        .filter(|(l, _)| {
            created
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(l, v)| (l["le"].parse::<f64>().unwrap_or(f64::INFINITY), v))
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "buckets are cumulative: {buckets:?}"
    );

    // The scrape itself is the one request in flight.
    assert_eq!(m.get("modelreg_http_requests_in_flight", &[]), 1.0);

    // Pools: each has a maximum, and no more open connections than that.
    let pools = m.with_name("modelreg_db_pool_max_connections");
    assert!(!pools.is_empty());
    for (labels, max) in pools {
        let pool = labels["pool"].as_str();
        let open = m.get("modelreg_db_pool_connections", &[("pool", pool)]);
        let idle = m.get("modelreg_db_pool_idle_connections", &[("pool", pool)]);
        assert!(
            max >= 1.0 && open <= max && idle <= open,
            "{pool}: {max} {open} {idle}"
        );
    }
    let pool_names: BTreeSet<&str> = m
        .with_name("modelreg_db_pool_connections")
        .into_iter()
        .map(|(l, _)| l["pool"].as_str())
        .collect();
    match app.backend {
        Backend::Postgres(_) => assert_eq!(pool_names, BTreeSet::from(["primary"])),
        _ => assert_eq!(pool_names, BTreeSet::from(["read", "write"])),
    }

    // Models by status and provider.
    let models = "modelreg_models";
    assert_eq!(
        m.get(models, &[("provider", "openai"), ("status", "ACTIVE")]),
        1.0
    );
    assert_eq!(
        m.get(models, &[("provider", "openai"), ("status", "PENDING")]),
        1.0
    );
    assert_eq!(
        m.get(models, &[("provider", "anthropic"), ("status", "PENDING")]),
        1.0
    );

    // Verification outcomes.
    let verifications = "modelreg_verifications_total";
    assert_eq!(
        m.get(
            verifications,
            &[
                ("kind", "stored"),
                ("outcome", "verified"),
                ("provider", "openai")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            verifications,
            &[
                ("kind", "unsaved"),
                ("outcome", "failed"),
                ("provider", "openai")
            ]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            "modelreg_verification_duration_seconds_count",
            &[
                ("kind", "stored"),
                ("outcome", "verified"),
                ("provider", "openai")
            ]
        ),
        1.0
    );

    // Build info.
    let build = m.with_name("modelreg_build_info");
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build[0].0["commit"].is_empty());
    assert_eq!(build[0].1, 1.0);

    // No tenant's names appear, nor any secret.
    for private in [&t.org, &t.project, "Good", "Claude", GOOD_KEY] {
        assert!(!text.contains(private), "{private} appears in the metrics");
    }

    // Model counts are reused for 30 s: a scrape does not query the models table each time.
    app.send(t.post(
        "/assets/models",
        json!({"name": "Later", "litellm_model": "anthropic/claude-3-haiku", "credentials": {"api_key": "k"}}),
    ))
    .await
    .expect(201);
    let (again, _) = scrape(&app).await;
    assert_eq!(
        again.get(models, &[("provider", "anthropic"), ("status", "PENDING")]),
        1.0
    );
    assert_eq!(
        again.get(
            requests,
            &[
                ("method", "POST"),
                ("route", "/assets/models"),
                ("status", "201")
            ]
        ),
        4.0
    );
}

/// Requests that miss the same page at once render it once; the others wait and take it.
/// A write makes the next burst render it once more.
async fn concurrent_misses_of_one_page_render_it_once(app: TestApp) {
    let t = app.tenant().await;
    for name in ["One", "Two", "Three"] {
        app.send(t.post("/assets/models", model(name)))
            .await
            .expect(201);
    }
    let pages = "modelreg_list_pages_total";
    let counts = |m: &Scrape| {
        (
            m.get(pages, &[("source", "rendered")]),
            m.get(pages, &[("source", "kept")]),
        )
    };
    // Warm the families so that both samples exist before the first burst.
    app.send(t.get("/assets/models?limit=1")).await.expect(200);
    app.send(t.get("/assets/models?limit=1")).await.expect(200);
    let (before, _) = scrape(&app).await;
    let (rendered, kept) = counts(&before);

    let burst = || {
        futures::future::join_all(
            (0..16).map(|_| app.send(t.get("/assets/models?limit=2&sort=name:asc&search=o"))),
        )
    };
    for r in burst().await {
        let r = r.expect(200);
        assert_eq!(r.json["pagination"]["total_items"], 2, "{}", r.text);
    }
    let (m, _) = scrape(&app).await;
    assert_eq!(counts(&m), (rendered + 1.0, kept + 15.0));

    app.send(t.post("/assets/models", model("Four")))
        .await
        .expect(201);
    for r in burst().await {
        let r = r.expect(200);
        assert_eq!(r.json["pagination"]["total_items"], 3, "{}", r.text);
    }
    let (m, _) = scrape(&app).await;
    assert_eq!(counts(&m), (rendered + 2.0, kept + 30.0));
}

/// A provider is a tenant's free text, and `/metrics` is read by anyone who can reach it and
/// shared by every organization: a provider name other than LiteLLM's known ones is counted as
/// `other`, so it neither shows one tenant's names to another nor grows the series without end.
async fn a_tenants_own_provider_names_never_become_labels(app: TestApp) {
    let t = app.tenant().await;
    for body in [
        json!({"name": "a", "litellm_model": "gpt-4o", "provider": "acme-internal-llm-7",
               "credentials": {"api_key": "k"}}),
        json!({"name": "b", "litellm_model": "acme-internal-llm-8/x", "credentials": {"api_key": "k"}}),
        json!({"name": "c", "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "k"}}),
    ] {
        app.send(t.post("/assets/models", body)).await.expect(201);
    }
    app.send(t.post(
        "/assets/models/verify",
        json!({"name": "d", "litellm_model": "acme-internal-llm-9/x",
               "api_base": "http://127.0.0.1:9/v1", "credentials": {"api_key": "k"}}),
    ))
    .await
    .expect(200);
    let (m, text) = scrape(&app).await;
    for private in [
        "acme-internal-llm-7",
        "acme-internal-llm-8",
        "acme-internal-llm-9",
    ] {
        assert!(!text.contains(private), "{private} appears in the metrics");
    }
    assert_eq!(
        m.get(
            "modelreg_models",
            &[("provider", "other"), ("status", "PENDING")]
        ),
        2.0
    );
    assert_eq!(
        m.get(
            "modelreg_models",
            &[("provider", "openai"), ("status", "PENDING")]
        ),
        1.0
    );
    assert_eq!(
        m.get(
            "modelreg_verifications_total",
            &[
                ("kind", "unsaved"),
                ("outcome", "failed"),
                ("provider", "other")
            ]
        ),
        1.0
    );
}

on_both_backends!(
    metrics_count_requests_models_and_verifications,
    a_tenants_own_provider_names_never_become_labels,
    concurrent_misses_of_one_page_render_it_once
);

/// The sample Grafana dashboard in docs/ only queries metrics that exist.
#[tokio::test]
async fn the_sample_dashboard_queries_only_real_metrics() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    app.send(t.post("/assets/models", model("One")))
        .await
        .expect(201);
    app.send(t.post("/assets/models/verify", model("Two")))
        .await
        .expect(200);
    let (m, _) = scrape(&app).await;
    dashboard_metrics_are_in(&m);
}

/// A scraper that asks for the Prometheus text format (version 0.0.4) gets it, not OpenMetrics:
/// counters and info named by their samples, no `# EOF`. (`.ci/prometheus` also has the real
/// `promtool` check both.)
#[tokio::test]
async fn the_text_format_is_served_when_asked_for() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    app.send(t.post("/assets/models", model("One")))
        .await
        .expect(201);
    for accept in [
        "text/plain;version=0.0.4",
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text;version=1.0.0;q=0.1,text/plain;version=0.0.4;q=0.9",
    ] {
        let r = app
            .send(Req::new(Method::GET, "/metrics").header("accept", accept))
            .await
            .expect(200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept}"
        );
        assert!(!r.text.contains("# EOF"), "{accept}");
        assert_eq!(r.header("vary"), Some("accept"));
        assert!(
            r.text
                .contains("# TYPE modelreg_http_requests_total counter")
                && r.text.contains("# HELP modelreg_http_requests_total ")
                && r.text.contains("# TYPE modelreg_build_info gauge")
                && r.text
                    .contains("# TYPE modelreg_http_request_duration_seconds histogram"),
            "{}",
            r.text
        );
        // Each sample's family is declared under the sample's own name (or its histogram's).
        for line in r
            .text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| r.text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(
                r.text.contains(&format!("# TYPE {family} ")),
                "{name} has no TYPE line"
            );
        }
    }
    // Prometheus offers both, OpenMetrics first: it gets OpenMetrics.
    let r = app
        .send(Req::new(Method::GET, "/metrics").header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ))
        .await
        .expect(200);
    assert!(r.text.ends_with("# EOF\n"));
}

/// On a fresh replica, before any request or verification, every series the dashboard
/// queries is there (at zero), so no panel reads "No data".
#[tokio::test]
async fn a_fresh_replica_has_every_series_the_dashboard_queries() {
    let app = TestApp::sqlite().await;
    let (m, _) = scrape(&app).await;
    dashboard_metrics_are_in(&m);
}

/// Each `modelreg_*` name in the dashboard's queries has a sample in `m`.
fn dashboard_metrics_are_in(m: &Scrape) {
    let names: BTreeSet<&str> = m.samples.keys().map(|(n, _)| n.as_str()).collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/modelreg-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("modelreg_") {
                    queried += 1;
                    assert!(
                        names.contains(word),
                        "{word} (panel {}) is not a metric",
                        panel["title"]
                    );
                }
            }
        }
    }
    assert!(queried >= 10, "{queried}");
}
