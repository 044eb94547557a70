//! The load generator: C keep-alive HTTP/1.1 connections over loopback, each sending its next
//! request as soon as the last answer is read, for T seconds. Latencies go into one HDR
//! histogram per connection (microseconds), merged at the end.
//!
//! It is built to cost little per request: hyper's connection API with no pool, no JSON
//! parsing except the cursor scenario's search for `next_cursor`, and bodies read and dropped.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{seed, terms::Cold};

/// The scenarios, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Healthz,
    ListFirst,
    ListPage50,
    ListCursorDeep,
    Search,
    SearchRare,
    Tags2,
    FilterSort,
    Get,
    Create,
    UpdateIfMatch,
    Mixed,
    /// `?search=` with a term no earlier request of the run used (`terms.rs`).
    SearchCold,
    /// Filters and sort in a combination no earlier request of the run used (`terms.rs`).
    FilterCold,
    /// Capabilities, a context and a price bound, sorted by price or context, in a
    /// combination no earlier request of the run used (`terms.rs`).
    FilterCatalog,
    /// `GET /v1/models` (all usable models, no limit) of a 1,000-model project.
    V1Models1k,
    /// The same of a 10,000-model project.
    V1Models10k,
    /// The soak test's load: `mixed`, but half its writes create a model and delete it again,
    /// so the data stays the same size however long it runs.
    Soak,
}

impl Scenario {
    pub const ALL: [Scenario; 17] = [
        Scenario::Healthz,
        Scenario::ListFirst,
        Scenario::ListPage50,
        Scenario::ListCursorDeep,
        Scenario::Search,
        Scenario::SearchRare,
        Scenario::Tags2,
        Scenario::FilterSort,
        Scenario::Get,
        Scenario::Create,
        Scenario::UpdateIfMatch,
        Scenario::Mixed,
        Scenario::SearchCold,
        Scenario::FilterCold,
        Scenario::FilterCatalog,
        Scenario::V1Models1k,
        Scenario::V1Models10k,
    ];

    /// The list scenarios, run at every size of a growth run.
    pub const LISTS: [Scenario; 7] = [
        Scenario::ListFirst,
        Scenario::ListPage50,
        Scenario::ListCursorDeep,
        Scenario::Search,
        Scenario::SearchRare,
        Scenario::Tags2,
        Scenario::FilterSort,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthz => "healthz",
            Scenario::ListFirst => "list-first",
            Scenario::ListPage50 => "list-page-50",
            Scenario::ListCursorDeep => "list-cursor-deep",
            Scenario::Search => "search",
            Scenario::SearchRare => "search-rare",
            Scenario::Tags2 => "tags-2",
            Scenario::FilterSort => "filter-sort",
            Scenario::Get => "get",
            Scenario::Create => "create",
            Scenario::UpdateIfMatch => "update-if-match",
            Scenario::Mixed => "mixed",
            Scenario::SearchCold => "search-cold",
            Scenario::FilterCold => "filter-cold",
            Scenario::FilterCatalog => "filter-catalog",
            Scenario::V1Models1k => "v1-models-1k",
            Scenario::V1Models10k => "v1-models-10k",
            Scenario::Soak => "soak",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The project a scenario reads, and how many models it holds, when it is not the main
    /// one (`seed::V1_PROJECTS`).
    pub fn project(self) -> Option<(&'static str, u64)> {
        match self {
            Scenario::V1Models1k => Some(seed::V1_PROJECTS[0]),
            Scenario::V1Models10k => Some(seed::V1_PROJECTS[1]),
            _ => None,
        }
    }
}

/// What one scenario run measured on the client side.
pub struct Outcome {
    pub requests: u64,
    /// Answers with an unexpected status, and failed connections.
    pub errors: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Microseconds.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
}

/// What a run needs to know about the server and its data.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub token: String,
    /// Models in the main project.
    pub models: u64,
    /// `cursor` values of every page of the main project at limit 100, for the deep scenario.
    pub cursors: Arc<Vec<String>>,
    /// The cold scenarios' queries and counters; `None` when no cold scenario runs.
    pub cold: Option<Cold>,
    /// Which API the server speaks: modelreg's, or MLflow's for the peer comparison.
    pub api: Api,
}

/// The server's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Modelreg,
    /// MLflow's REST API: only `search-cold` (as a registered-model search) and `healthz`
    /// (`/health`).
    Mlflow,
}

struct Call {
    method: Method,
    path: String,
    body: Option<String>,
    if_match: Option<String>,
    /// The status that counts as success.
    expect: u16,
    /// The project, when not the main one.
    project: Option<&'static str>,
}

fn get(path: String) -> Call {
    Call {
        method: Method::GET,
        path,
        body: None,
        if_match: None,
        expect: 200,
        project: None,
    }
}

/// One connection's state across its requests.
struct Worker {
    scenario: Scenario,
    conn: usize,
    n: u64,
    rng: fastrand::Rng,
    /// The ETag of the connection's own model (update scenarios).
    etag: Option<String>,
    /// The model the soak load created last, deleted by its next write of that kind.
    created: Option<String>,
}

const LIST: &str = "/assets/models";

impl Worker {
    fn own_model(&self) -> String {
        format!("{LIST}/{}", seed::uri(self.conn as u64))
    }

    /// Creates a model, or deletes the one created last.
    fn churn(&mut self) -> Call {
        match self.created.take() {
            Some(uri) => Call {
                method: Method::DELETE,
                path: format!("{LIST}/{uri}"),
                body: None,
                if_match: None,
                expect: 204,
                project: None,
            },
            None => {
                // Unique in the process: a soak runs many windows, each with new workers.
                static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let uri = format!(
                    "soak-{}",
                    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                );
                self.created = Some(uri.clone());
                Call {
                    method: Method::POST,
                    path: LIST.into(),
                    body: Some(format!(
                        r#"{{"name":"Soak {uri}","resource_uri":"{uri}","litellm_model":"openai/gpt-4o-mini","mode":"chat","tags":["soak"],"credentials":{{"api_key":"sk-soak-{uri}"}}}}"#
                    )),
                    if_match: None,
                    expect: 201,
                    project: None,
                }
            }
        }
    }

    fn next(&mut self, t: &Target) -> Call {
        self.n += 1;
        let scenario = match self.scenario {
            Scenario::Soak => match self.rng.u32(0..100) {
                0..40 => Scenario::ListFirst,
                40..75 => Scenario::Get,
                75..85 => Scenario::Search,
                85..90 => Scenario::FilterSort,
                90..95 => return self.churn(),
                _ => Scenario::UpdateIfMatch,
            },
            // 90% reads, 10% writes.
            Scenario::Mixed => match self.rng.u32(0..100) {
                0..40 => Scenario::ListFirst,
                40..75 => Scenario::Get,
                75..85 => Scenario::Search,
                85..90 => Scenario::FilterSort,
                90..95 => Scenario::Create,
                _ => Scenario::UpdateIfMatch,
            },
            s => s,
        };
        match (t.api, scenario) {
            (Api::Mlflow, Scenario::Healthz) => return get("/health".into()),
            (Api::Mlflow, Scenario::SearchCold) => {
                let term = cold(t).search_term();
                // MLflow's registered-model filter: names only; ILIKE is case-insensitive.
                let filter = format!("name ILIKE '%{term}%'");
                return get(format!(
                    "/api/2.0/mlflow/registered-models/search?filter={}&max_results=20",
                    encode(&filter)
                ));
            }
            (Api::Mlflow, s) => panic!("MLflow has no {} scenario", s.name()),
            (Api::Modelreg, _) => {}
        }
        match scenario {
            Scenario::Healthz => get("/healthz".into()),
            Scenario::SearchCold => {
                get(format!("{LIST}?search={}", encode(&cold(t).search_term())))
            }
            Scenario::FilterCold => get(format!("{LIST}?{}", cold(t).filter_query())),
            Scenario::FilterCatalog => get(format!("{LIST}?{}", cold(t).catalog_query())),
            Scenario::V1Models1k | Scenario::V1Models10k => Call {
                project: scenario.project().map(|(p, _)| p),
                ..get("/v1/models".into())
            },
            Scenario::ListFirst => get(format!("{LIST}?limit=20")),
            Scenario::ListPage50 => get(format!("{LIST}?limit=20&page=50")),
            Scenario::ListCursorDeep => {
                if t.cursors.is_empty() {
                    get(format!("{LIST}?limit=100"))
                } else {
                    let c = &t.cursors[self.rng.usize(..t.cursors.len())];
                    get(format!("{LIST}?limit=100&cursor={}", encode(c)))
                }
            }
            Scenario::Search => get(format!("{LIST}?search={}", seed::COMMON_WORD)),
            Scenario::SearchRare => get(format!("{LIST}?search={}", seed::RARE_WORD)),
            Scenario::Tags2 => get(format!("{LIST}?tags={}", seed::TWO_TAGS)),
            Scenario::FilterSort => get(format!("{LIST}?status=ACTIVE&mode=chat&sort=name:asc")),
            Scenario::Get => get(format!(
                "{LIST}/{}",
                seed::uri(self.rng.u64(..t.models.max(1)))
            )),
            Scenario::Create => Call {
                method: Method::POST,
                path: LIST.into(),
                body: Some(format!(
                    r#"{{"name":"Load {} {}","litellm_model":"openai/gpt-4o-mini","mode":"chat","tags":["load","bench"],"description":"created by the benchmark","credentials":{{"api_key":"sk-load-{}-{}"}}}}"#,
                    self.conn, self.n, self.conn, self.n
                )),
                if_match: None,
                expect: 201,
                project: None,
            },
            Scenario::UpdateIfMatch => match &self.etag {
                // The first request of a connection learns its model's ETag.
                None => get(self.own_model()),
                Some(tag) => Call {
                    method: Method::PATCH,
                    path: self.own_model(),
                    body: Some(format!(r#"{{"rpm":{}}}"#, 1 + self.n % 10_000)),
                    if_match: Some(tag.clone()),
                    expect: 200,
                    project: None,
                },
            },
            Scenario::Mixed | Scenario::Soak => unreachable!("resolved above"),
        }
    }
}

fn cold(t: &Target) -> &Cold {
    t.cold
        .as_ref()
        .expect("the cold scenarios' state is made before they run")
}

impl Cold {
    /// The next request's search term.
    fn search_term(&self) -> String {
        let n = self
            .next_search
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.search.term(n).to_owned()
    }

    /// The next request's filters and sort.
    fn filter_query(&self) -> String {
        let n = self
            .next_filter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.filters.query(n)
    }

    /// The next request's catalog filters and sort.
    fn catalog_query(&self) -> String {
        let n = self
            .next_catalog
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.catalog.query(n)
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs `scenario` with `concurrency` connections for `duration`.
pub async fn drive(
    t: &Target,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for conn in 0..concurrency {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            connection(
                t,
                Worker {
                    scenario,
                    conn,
                    n: 0,
                    rng: fastrand::Rng::with_seed(conn as u64 + 1),
                    etag: None,
                    created: None,
                },
                deadline,
            )
            .await
        }));
    }
    let mut out = Outcome {
        requests: 0,
        errors: 0,
        statuses: BTreeMap::new(),
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let one = task.await??;
        out.requests += one.requests;
        out.errors += one.errors;
        for (s, n) in one.statuses {
            *out.statuses.entry(s).or_default() += n;
        }
        out.latency.add(&one.latency)?;
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn connection(t: Target, mut w: Worker, deadline: Instant) -> anyhow::Result<Outcome> {
    let mut out = Outcome {
        requests: 0,
        errors: 0,
        statuses: BTreeMap::new(),
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        elapsed: Duration::ZERO,
    };
    let bearer = format!("Bearer {}", t.token);
    let mut sender = connect(t.addr).await?;
    while Instant::now() < deadline {
        let call = w.next(&t);
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &bearer)
            .header("x-project-id", call.project.unwrap_or(seed::MAIN_PROJECT));
        if let Some(tag) = &call.if_match {
            req = req.header(header::IF_MATCH, tag);
        }
        let body = match call.body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body)?;
        let sent = Instant::now();
        let res = match sender.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                // The server closed the connection: count it, reconnect, go on.
                out.errors += 1;
                sender = connect(t.addr).await?;
                continue;
            }
        };
        let status = res.status().as_u16();
        let etag = res
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = res.into_body().collect().await?;
        let micros = sent.elapsed().as_micros() as u64;
        out.latency.record(micros.max(1))?;
        out.requests += 1;
        *out.statuses.entry(status).or_default() += 1;
        if status != call.expect {
            out.errors += 1;
        }
        if matches!(
            w.scenario,
            Scenario::UpdateIfMatch | Scenario::Mixed | Scenario::Soak
        ) && etag.is_some()
        {
            // Only the connection's own model's answers carry the tag it needs.
            if call.path == w.own_model() {
                w.etag = etag;
            }
        }
    }
    // A soak's last created model is deleted, untimed, so the data does not grow.
    if let Some(uri) = w.created.take() {
        let req = Request::builder()
            .method(Method::DELETE)
            .uri(format!("{LIST}/{uri}"))
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &bearer)
            .header("x-project-id", seed::MAIN_PROJECT)
            .body(Full::new(Bytes::new()))?;
        if let Ok(res) = sender.send_request(req).await {
            let _ = res.into_body().collect().await;
        }
    }
    Ok(out)
}

/// Walks the main project's list to the end at limit 100 and returns each page's cursor, so
/// the deep scenario can ask for pages anywhere in the list.
pub async fn walk_cursors(t: &Target) -> anyhow::Result<Vec<String>> {
    let mut sender = connect(t.addr).await?;
    let bearer = format!("Bearer {}", t.token);
    let mut cursors = Vec::new();
    let mut path = format!("{LIST}?limit=100");
    loop {
        let req = Request::builder()
            .uri(&path)
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &bearer)
            .header("x-project-id", seed::MAIN_PROJECT)
            .body(Full::new(Bytes::new()))?;
        sender.ready().await?;
        let res = sender.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status == 200,
            "walking the list: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        match v["pagination"]["next_cursor"].as_str() {
            Some(c) => {
                cursors.push(c.to_owned());
                path = format!("{LIST}?limit=100&cursor={}", encode(c));
            }
            None => return Ok(cursors),
        }
    }
}
