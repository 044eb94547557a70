//! The limits against abuse, on the real binary: per-credential rate limiting, the request
//! and body timeouts, the head size limits, the connection cap, and slow clients cut off.
//! Raw TCP is used where an HTTP client would be too polite to misbehave.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads from `stream` until it is closed or `within` passes; returns what arrived and
/// whether the server closed the connection.
async fn read_until_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    within: Duration,
) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// The JSON body of a raw HTTP/1.1 response.
fn body_of(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// Sends one keep-alive request on `stream` and reads its (small) response head and body.
async fn request_on(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_credential_over_its_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, a, err) = token_create(data, "viewer", "caller-a").await;
    assert!(ok, "{err}");
    let (ok, b, err) = token_create(data, "viewer", "caller-b").await;
    assert!(ok, "{err}");
    let server = Server::start(
        dir.path(),
        &[
            ("MODELREG_RATE_LIMIT_PER_SEC", "2"),
            ("MODELREG_RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    install_tls_provider();
    let http = reqwest::Client::new();
    let get = |token: &str| {
        http.get(format!("{}/assets/models", server.base))
            .bearer_auth(token.trim())
            .header("x-project-id", "demo")
            .send()
    };
    // The burst of 3 passes; a quick fourth or fifth does not.
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let res = get(&a).await.unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            refused = Some(res);
            break;
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    let refused = refused.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED", "{body}");
    assert_eq!(body["error"]["status"], 429);

    // Another credential has its own bucket, and requests without one are not limited.
    assert_eq!(get(&b).await.unwrap().status(), 200);
    for _ in 0..20 {
        let res = http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // After the wait it was told, the first credential is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(get(&a).await.unwrap().status(), 200);
}

/// A provider that accepts connections and never answers.
async fn silent_provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_request_past_the_request_timeout_gets_503_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("MODELREG_REQUEST_TIMEOUT_SECS", "1")]).await;
    let client = Client::new(&server.base, server.token.as_deref().unwrap());
    let api_base = silent_provider().await;
    let (status, created) = client
        .send(
            Method::POST,
            "/assets/models",
            Some(json!({
                "name": "slow", "litellm_model": "openai/gpt-4o", "api_base": api_base,
                "timeout": 600, "credentials": {"api_key": "sk-slow"}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let uri = created["resource_uri"].as_str().unwrap();

    let started = Instant::now();
    let (status, body) = client
        .send(Method::POST, &format!("/assets/models/{uri}/verify"), None)
        .await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1 s"),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // The server goes on, and the stopped verification recorded nothing.
    let (status, after) = client
        .send(Method::GET, &format!("/assets/models/{uri}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(after["status"], created["status"], "{after}");
    assert_eq!(after["last_verified_at"], created["last_verified_at"]);
}

#[tokio::test]
async fn heads_and_bodies_past_their_limits_get_our_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("MODELREG_MAX_HEADER_BYTES", "8192")]).await;
    let token = server.token.clone().unwrap();
    install_tls_provider();
    let http = reqwest::Client::new();

    let long_url = format!("{}/assets/models?name={}", server.base, "x".repeat(9000));
    let res = http.get(long_url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 414);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");

    let res = http
        .get(format!("{}/assets/models", server.base))
        .bearer_auth(&token)
        .header("x-pad", "p".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], 431, "{body}");

    // Far past it, hyper refuses before the request is parsed at all.
    let res = http
        .get(format!("{}/healthz", server.base))
        .header("x-pad", "p".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);

    let res = http
        .post(format!("{}/assets/models", server.base))
        .bearer_auth(&token)
        .header("x-project-id", "demo")
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{body}");

    let client = Client::new(&server.base, &token);
    let (status, page) = client.send(Method::GET, "/assets/models", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["pagination"]["total_items"], 0, "nothing was stored");
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_and_a_freed_slot_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("MODELREG_MAX_CONNECTIONS", "3")]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        assert!(
            request_on(&mut s, "/healthz")
                .await
                .starts_with("HTTP/1.1 200")
        );
        held.push(s);
    }
    let mut extra = TcpStream::connect(addr(&server)).await.unwrap();
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (response, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.to_ascii_lowercase().contains("retry-after: 1"));
    assert!(closed, "the refused connection is closed");
    assert_eq!(body_of(&response)["error"]["code"], "SERVICE_UNAVAILABLE");

    // A slot held by a client that leaves is free again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        let answer = request_on(&mut s, "/healthz").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came free: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn clients_that_trickle_headers_or_sit_idle_are_cut_off_and_free_their_slots() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("MODELREG_HEADER_TIMEOUT_SECS", "1"),
            ("MODELREG_MAX_CONNECTIONS", "3"),
        ],
    )
    .await;
    // Two slowloris clients, each sending one more header line every 200 ms, forever; and
    // one that connects and never sends a byte.
    let started = Instant::now();
    let mut trickles = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        trickles.push(tokio::spawn(async move {
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap();
            for i in 0..100 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if s.write_all(format!("x-{i}: y\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
                let mut probe = [0u8; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
                {
                    break;
                }
            }
            started.elapsed()
        }));
    }
    let mut silent = TcpStream::connect(addr(&server)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // While they hold every slot, a well-behaved client is turned away...
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    let (refused, _) = read_until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");

    // ...until the server cuts them off, about a second after they connected.
    for t in trickles {
        let cut_after = t.await.unwrap();
        assert!(
            cut_after < Duration::from_secs(4),
            "cut after {cut_after:?}"
        );
    }
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(closed, "a silent connection is closed too");

    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    assert!(
        request_on(&mut s, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // An idle keep-alive connection is closed after the same time.
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(4)).await;
    assert!(closed, "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("MODELREG_BODY_TIMEOUT_SECS", "1")]).await;
    let token = server.token.clone().unwrap();
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    let body =
        serde_json::to_vec(&json!({"name": "trickled", "litellm_model": "openai/gpt-4o"})).unwrap();
    s.write_all(
        format!(
            "POST /assets/models HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nx-project-id: demo\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (mut r, mut w) = s.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for b in body {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // The answer comes after about a second, while the body is still trickling in.
    let (response, _) = read_until_closed(&mut r, Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!writer.is_finished(), "the body was still being sent");
    writer.abort();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert_eq!(body_of(&response)["error"]["code"], "REQUEST_TIMEOUT");

    let client = Client::new(&server.base, &token);
    let (_, page) = client.send(Method::GET, "/assets/models", None).await;
    assert_eq!(page["pagination"]["total_items"], 0, "nothing was stored");
}
