//! The batch endpoint's throughput (docs/batch.md): 1,000-operation batches sent one after
//! another to the real release server, on a fresh store per backend. Each round creates
//! 1,000 models in one batch, then changes them in a second batch of 1,000 mixed operations
//! (400 updates, 200 status changes, 200 tag additions, 200 deletes); an atomic round does the
//! same with `atomic=true`. The figure is operations per second of wall time, from the first
//! byte sent to the last byte of the response read.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::{Place, server::ServerProc};

/// Operations per batch.
pub const OPERATIONS: usize = 1_000;

/// One measured batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub backend: String,
    /// `create` or `mixed`.
    pub kind: String,
    pub atomic: bool,
    pub round: u32,
    pub operations: usize,
    pub seconds: f64,
    pub ops_per_second: f64,
    /// Models in the project before the batch.
    pub models_before: usize,
}

/// Runs `rounds` rounds of each kind on one backend; `on_row` sees each row as it is measured.
pub async fn run(
    bin: &std::path::Path,
    backend: &str,
    rounds: u32,
    mut on_row: impl FnMut(&BatchRow),
) -> anyhow::Result<Vec<BatchRow>> {
    let place = Place::new(backend).await?;
    let server = ServerProc::start(bin, &place.storage(), place.data_dir()).await?;
    let token = server
        .token
        .clone()
        .context("the server minted no bootstrap token on the fresh store")?;
    let mut client = Client::connect(server.addr, token).await?;
    let mut rows = Vec::new();
    let mut models = 0;
    for round in 0..rounds {
        for atomic in [false, true] {
            let prefix = format!("r{round}-{}", if atomic { "a" } else { "n" });
            let creates = (0..OPERATIONS)
                .map(|i| {
                    json!({"op": "create", "body": {
                        "resource_uri": format!("{prefix}-{i}"),
                        "name": format!("Batch model {prefix} {i}"),
                        "litellm_model": "openai/gpt-4o",
                        "tags": ["bench"],
                        "credentials": {"api_key": format!("sk-bench-{i}")},
                    }})
                })
                .collect();
            let mixed = (0..OPERATIONS)
                .map(|i| {
                    let uri = format!("{prefix}-{i}");
                    match i % 5 {
                        0 | 1 => json!({"op": "update", "resource_uri": uri,
                                        "body": {"rpm": 100 + i, "description": "changed"}}),
                        2 => json!({"op": "set_status", "resource_uri": uri,
                                    "status": "DEPRECATED", "status_message": "bench"}),
                        3 => json!({"op": "add_tags", "resource_uri": uri, "tags": ["more"]}),
                        _ => json!({"op": "delete", "resource_uri": uri}),
                    }
                })
                .collect();
            for (kind, ops, change) in [("create", creates, 1000), ("mixed", mixed, -200)] {
                let (seconds, body) = client.batch(ops, atomic).await?;
                if body["succeeded"] != OPERATIONS {
                    bail!(
                        "a {kind} batch did not succeed whole: {}",
                        body["results"]
                            .as_array()
                            .and_then(|r| r.iter().find(|x| x.get("error").is_some()))
                            .cloned()
                            .unwrap_or_default()
                    );
                }
                let row = BatchRow {
                    backend: backend.to_owned(),
                    kind: kind.to_owned(),
                    atomic,
                    round,
                    operations: OPERATIONS,
                    seconds,
                    ops_per_second: OPERATIONS as f64 / seconds,
                    models_before: models,
                };
                models = models.saturating_add_signed(change);
                on_row(&row);
                rows.push(row);
            }
        }
    }
    server.stop().await?;
    Ok(rows)
}

/// The median of each (backend, kind, atomic) as a Markdown table.
pub fn markdown(rows: &[BatchRow]) -> String {
    let mut out = String::from(
        "| backend | batch | atomic | rounds | median s | median ops/s | min ops/s | max ops/s |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    let mut keys: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.backend.clone(), r.kind.clone(), r.atomic))
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    for (backend, kind, atomic) in keys {
        let mut of: Vec<&BatchRow> = rows
            .iter()
            .filter(|r| r.backend == backend && r.kind == kind && r.atomic == atomic)
            .collect();
        of.sort_by(|a, b| a.ops_per_second.total_cmp(&b.ops_per_second));
        let median = of[of.len() / 2];
        out.push_str(&format!(
            "| {backend} | {kind} | {atomic} | {} | {:.3} | {:.0} | {:.0} | {:.0} |\n",
            of.len(),
            median.seconds,
            median.ops_per_second,
            of[0].ops_per_second,
            of[of.len() - 1].ops_per_second,
        ));
    }
    out
}

struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    bearer: String,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, token: String) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Client {
            sender,
            bearer: format!("Bearer {token}"),
        })
    }

    /// Sends one batch; the seconds it took and the response.
    async fn batch(
        &mut self,
        operations: Vec<Value>,
        atomic: bool,
    ) -> anyhow::Result<(f64, Value)> {
        let body = serde_json::to_vec(&json!({ "operations": operations }))?;
        let uri = if atomic {
            "/assets/models:batch?atomic=true"
        } else {
            "/assets/models:batch"
        };
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::HOST, "bench")
            .header(header::AUTHORIZATION, &self.bearer)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-project-id", "batch")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let started = Instant::now();
        let res = tokio::time::timeout(Duration::from_secs(300), self.sender.send_request(req))
            .await
            .context("a batch took over 5 minutes")??;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        let seconds = started.elapsed().as_secs_f64();
        if !status.is_success() {
            bail!(
                "the batch answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok((seconds, serde_json::from_slice(&bytes)?))
    }
}
