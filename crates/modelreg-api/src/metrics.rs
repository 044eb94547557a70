//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format (docs/observability.md).
//!
//! Request metrics are labelled by route template, never by path, so their number stays
//! bounded whatever clients send. Model counts come from one grouped query, cached for
//! [`MODEL_COUNTS_TTL`], so a scrape every few seconds costs the database at most one
//! query per TTL.

use std::{
    sync::{Arc, atomic::AtomicI64},
    time::{Duration, Instant},
};

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use modelreg_core::{store::ServerStore, validate::provider_label, verify::ProbeOutcome};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
        info::Info,
    },
    registry::Registry,
};
use tokio::sync::Mutex;

use crate::{AppState, error::ApiError};

/// How long the models-by-status-and-provider counts are reused.
pub const MODEL_COUNTS_TTL: Duration = Duration::from_secs(30);

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ModelLabels {
    status: String,
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ListPageLabels {
    /// `kept` (a page rendered earlier at the same generation) or `rendered`.
    pub(crate) source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    provider: String,
    /// `stored` (a saved model, by request or the background checker) or `unsaved`.
    kind: &'static str,
    /// `verified` or `failed`.
    outcome: &'static str,
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
    pool_max: Family<PoolLabels, Gauge>,
    pool_open: Family<PoolLabels, Gauge>,
    pool_idle: Family<PoolLabels, Gauge>,
    models: Family<ModelLabels, Gauge>,
    verifications: Family<VerificationLabels, Counter>,
    verification_seconds: Family<VerificationLabels, Histogram>,
    /// List pages answered, by where the body came from.
    pub(crate) list_pages: Family<ListPageLabels, Counter>,
    model_counts_at: Mutex<Option<Instant>>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

fn probe_histogram() -> Histogram {
    // 10 ms … ~40 s: a probe is a call to a remote provider.
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("modelreg");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            duration.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being answered now",
            in_flight.clone(),
        );
        let pool_max = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections a database pool opens",
            pool_max.clone(),
        );
        let pool_open = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections open now (in use and idle)",
            pool_open.clone(),
        );
        let pool_idle = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_idle_connections",
            "Open database connections not in use",
            pool_idle.clone(),
        );
        let models = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "models",
            "Models by status and provider, across every organization (refreshed at most every 30 s)",
            models.clone(),
        );
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "verifications",
            "Verifications by provider, kind (stored or unsaved) and outcome",
            verifications.clone(),
        );
        let verification_seconds = Family::<VerificationLabels, Histogram>::new_with_constructor(
            probe_histogram as fn() -> _,
        );
        registry.register(
            "verification_duration_seconds",
            "Time a verification's call to the provider took",
            verification_seconds.clone(),
        );
        let list_pages = Family::<ListPageLabels, Counter>::default();
        registry.register(
            "list_pages",
            "List pages answered, by source: kept (rendered earlier at the project's current generation) or rendered",
            list_pages.clone(),
        );
        registry.register(
            "build",
            "The running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", crate::GIT_COMMIT),
            ]),
        );
        // Every series the sample dashboard queries exists from the start, at zero, so a
        // fresh replica's panels read 0 rather than "No data".
        for (kind, outcome) in [
            ("stored", "verified"),
            ("stored", "failed"),
            ("unsaved", "verified"),
            ("unsaved", "failed"),
        ] {
            let labels = VerificationLabels {
                provider: String::new(),
                kind,
                outcome,
            };
            let _ = verifications.get_or_create(&labels);
            let _ = verification_seconds.get_or_create(&labels);
        }
        for source in ["kept", "rendered"] {
            let _ = list_pages.get_or_create(&ListPageLabels { source });
        }
        let scrape = RequestLabels {
            method: "GET".into(),
            route: "/metrics".into(),
            status: 200,
        };
        let _ = requests.get_or_create(&scrape);
        let _ = duration.get_or_create(&scrape);
        Metrics {
            registry,
            requests,
            duration,
            in_flight,
            pool_max,
            pool_open,
            pool_idle,
            models,
            verifications,
            verification_seconds,
            list_pages,
            model_counts_at: Mutex::new(None),
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.duration.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// Marks a request in flight until the guard drops (also when the client goes away).
    pub fn in_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// The hook a registry calls on every verification.
    pub fn verification_hook(self: &Arc<Self>) -> modelreg_core::service::VerificationHook {
        let metrics = self.clone();
        Arc::new(move |provider, stored, outcome| {
            metrics.observe_verification(provider, stored, outcome)
        })
    }

    /// Counts one verification.
    pub fn observe_verification(
        &self,
        provider: Option<&str>,
        stored: bool,
        outcome: &ProbeOutcome,
    ) {
        let labels = VerificationLabels {
            // A tenant's free text never becomes a label: other tenants read /metrics, and each
            // new value would be a new series kept for ever.
            provider: provider_label(provider).to_owned(),
            kind: if stored { "stored" } else { "unsaved" },
            outcome: if outcome.verified {
                "verified"
            } else {
                "failed"
            },
        };
        self.verifications.get_or_create(&labels).inc();
        self.verification_seconds
            .get_or_create(&labels)
            .observe(outcome.latency_ms as f64 / 1000.0);
    }

    /// The text of a scrape: pools are read now, model counts when older than the TTL.
    pub async fn render(&self, store: &dyn ServerStore) -> Result<String, modelreg_core::Error> {
        for usage in store.pool_usage() {
            let labels = PoolLabels {
                pool: usage.pool.to_owned(),
            };
            self.pool_max.get_or_create(&labels).set(usage.max.into());
            self.pool_open.get_or_create(&labels).set(usage.open.into());
            self.pool_idle.get_or_create(&labels).set(usage.idle.into());
        }
        {
            let mut at = self.model_counts_at.lock().await;
            if at.is_none_or(|t| t.elapsed() >= MODEL_COUNTS_TTL) {
                let counts = store.count_by_status_provider().await?;
                // Providers outside the known names are summed under `other` (see
                // `provider_label`).
                let mut by_label: std::collections::BTreeMap<ModelLabels, u64> = Default::default();
                // Each status has a series, at zero when no model has it, so that the
                // dashboard's panel reads 0 on an empty registry rather than "No data".
                for status in modelreg_core::model::Status::ALL {
                    by_label.insert(
                        ModelLabels {
                            status: status.as_str().to_owned(),
                            provider: String::new(),
                        },
                        0,
                    );
                }
                for c in counts {
                    let labels = ModelLabels {
                        status: c.status,
                        provider: provider_label(c.provider.as_deref()).to_owned(),
                    };
                    *by_label.entry(labels).or_default() += c.count;
                }
                self.models.clear();
                for (labels, count) in by_label {
                    self.models
                        .get_or_create(&labels)
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                *at = Some(Instant::now());
            }
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| {
            modelreg_core::Error::Internal(format!("cannot encode the metrics: {e}"))
        })?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A request in flight; dropping it ends it.
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Metrics
///
/// Prometheus metrics in the OpenMetrics text format: requests by route and status, latency
/// histograms, requests in flight, database pool usage, models by status and provider,
/// verification outcomes and build info. No tenant's names or secrets appear.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    operation_id = "metrics",
    security(()),
    responses(
        (status = 200, description = "The metrics: OpenMetrics, or the Prometheus text format 0.0.4 when the scraper asks for text/plain", content_type = "application/openmetrics-text", body = String),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorBody),
    ),
)]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let text = state.metrics.render(state.server.as_ref()).await?;
    let (body, content_type) = if wants_text_format(&headers) {
        (to_text_format(&text), TEXT_CONTENT_TYPE)
    } else {
        (text, CONTENT_TYPE)
    };
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The format depends on Accept: caches between scraper and server must know it.
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(res)
}

const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the scraper asks for the Prometheus text format (0.0.4) rather than OpenMetrics:
/// it names `text/plain` and does not prefer `application/openmetrics-text`. Prometheus
/// itself offers both, OpenMetrics first; older scrapers and agents ask for text only.
fn wants_text_format(headers: &axum::http::HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let quality = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next()?;
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                Some(
                    params
                        .find_map(|p| p.strip_prefix("q=").and_then(|q| q.parse().ok()))
                        .unwrap_or(1.0),
                )
            })
            .fold(0.0, f32::max)
    };
    let text = quality("text/plain");
    text > 0.0 && text > quality("application/openmetrics-text")
}

/// The OpenMetrics text that `prometheus-client` writes, in the Prometheus text format 0.0.4:
/// counters and info metrics are named by their samples (`_total`, `_info`; info becomes a
/// gauge), and `# UNIT` and `# EOF` go.
fn to_text_format(openmetrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, (String, &str)> = Default::default();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            match kind {
                "counter" => renamed.insert(name, (format!("{name}_total"), "counter")),
                "info" => renamed.insert(name, (format!("{name}_info"), "gauge")),
                _ => None,
            };
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                match renamed.get(name) {
                    Some((new, kind)) if prefix == "# TYPE " => {
                        out.push_str(&format!("# TYPE {new} {kind}"));
                    }
                    Some((new, _)) => out.push_str(&format!("{prefix}{new} {tail}")),
                    None => out.push_str(line),
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
