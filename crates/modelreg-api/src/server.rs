//! The accept loop: HTTP/1.1 and HTTP/2 (cleartext) on hyper, with a cap on connections and
//! on the time and bytes a client may spend on its request headers.
//!
//! `axum::serve` has neither, so a client that opens thousands of connections, or sends its
//! headers one byte every few seconds (slowloris), would keep sockets and memory as long as it
//! liked. Here each connection holds one of `max_connections` slots; one more is answered 503
//! and closed at once. hyper closes a connection whose headers have not all arrived within
//! `header_timeout`, idle keep-alive connections included.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::ServiceExt;

use crate::limits::Limits;

/// Serves `app` on `listener` under `limits` until `shutdown` completes; connections then
/// finish the requests they are on, and this returns once they have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper's own cap on buffered head bytes; the middleware answers anything between
        // `max_header_bytes` and this in our error shape.
        .max_buf_size((limits.max_header_bytes * 2).max(16 * 1024));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(64)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let max_connections = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    // Refusals linger up to a second each; under a flood of connections only this many are
    // answered at once, and the rest are closed without an answer.
    let refusals = Arc::new(Semaphore::new(64));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Ok(refusal) = refusals.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, max_connections).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: Request<Incoming>| req.map(Body::new)),
        );
        let (builder, watcher, header_timeout) =
            (builder.clone(), graceful.watcher(), limits.header_timeout);
        tokio::spawn(async move {
            // hyper's header timer starts once it knows the protocol, which takes a first
            // byte: a client that connects and sends nothing is closed here instead.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_timeout, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                return;
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers a connection over the limit with a 503 in our error shape, and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    tracing::debug!(max, "connection refused: at the connection limit");
    let body = serde_json::json!({
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": format!("the server is serving its maximum of {max} connections; retry shortly"),
            "status": 503,
            "details": {},
            "request_id": format!("req-{}", uuid::Uuid::now_v7().simple()),
        }
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let work = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent before closing, so that the close is not a reset that
        // could destroy the answer before the client reads it.
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), work).await;
}
