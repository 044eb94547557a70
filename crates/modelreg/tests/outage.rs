//! When PostgreSQL goes away, requests fail fast with 503 (no hang, no 500), `/readyz` turns
//! unready, and the service recovers by itself when the database returns. The database is
//! "taken away" by a TCP proxy between modelreg and the shared server, which is never stopped.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use modelreg_store::testing::PgSchema;
use reqwest::Method;
use serde_json::json;
use tokio::{net::TcpListener, task::AbortHandle};

/// A TCP proxy that can cut every connection and refuse new ones, then let them through
/// again.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    open: bool,
    connections: Vec<AbortHandle>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            open: true,
            connections: Vec::new(),
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut st = shared.lock().unwrap();
                if !st.open {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                st.connections.push(task.abort_handle());
            }
        });
        Proxy { addr, state }
    }

    /// Every open connection is dropped and new ones are closed at once.
    fn cut(&self) {
        let mut st = self.state.lock().unwrap();
        st.open = false;
        for c in st.connections.drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().open = true;
    }
}

#[tokio::test]
async fn requests_fail_fast_while_the_database_is_away_and_recover_after() {
    let schema = PgSchema::create().await;
    let mut url = url::Url::parse(&schema.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("MODELREG_DATABASE_URL", url.as_str()),
            ("MODELREG_MASTER_KEY", MASTER_KEY),
            ("MODELREG_DB_ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let c = Client::new(&server.base, server.token.as_deref().unwrap());
    let body =
        json!({"name": "Survivor", "litellm_model": "openai/gpt-4o", "credentials": {"k": "v"}});
    assert_eq!(
        c.send(Method::POST, "/assets/models", Some(body)).await.0,
        201
    );

    proxy.cut();
    for (method, path) in [
        (Method::GET, "/assets/models"),
        (Method::GET, "/assets/models/survivor"),
        (Method::POST, "/assets/models"),
        (Method::GET, "/readyz"),
    ] {
        let started = Instant::now();
        let body = (method == Method::POST).then(|| {
            json!({"name": "During", "litellm_model": "openai/gpt-4o", "credentials": {"k": "v"}})
        });
        let (status, e) = c.send(method.clone(), path, body).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{method} {path}: {e}");
        assert_eq!(e["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(
            took < Duration::from_secs(5),
            "{method} {path} took {took:?}"
        );
    }
    // Liveness is not readiness: the process itself is fine.
    assert_eq!(c.send(Method::GET, "/healthz", None).await.0, 200);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = c.send(Method::GET, "/readyz", None).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: /readyz is {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, m) = c.send(Method::GET, "/assets/models/survivor", None).await;
    assert_eq!((status, m["name"].as_str()), (200, Some("Survivor")));
    let (_, list) = c.send(Method::GET, "/assets/models", None).await;
    assert_eq!(
        list["pagination"]["total_items"], 1,
        "nothing half-written during the outage"
    );
    server.kill9().await;
}
