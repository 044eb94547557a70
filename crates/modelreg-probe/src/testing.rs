//! A fake provider for tests: a real HTTP server on 127.0.0.1 that emulates each provider's
//! model-list endpoint and its authentication, plus misbehaving endpoints. The only key it
//! accepts is `GOOD_KEY`.
//!
//! | api_base (after `http://127.0.0.1:PORT`) | behaves like |
//! |---|---|
//! | `/openai/v1` | OpenAI and compatibles: `GET /models`, `Authorization: Bearer` |
//! | `/azure` | Azure OpenAI: `GET /openai/models?api-version=`, `api-key` |
//! | `/anthropic` | Anthropic: `GET /v1/models`, `x-api-key`, `anthropic-version` |
//! | `/gemini` | Gemini: `GET /v1beta/models`, `x-goog-api-key` |
//! | `/ollama` | Ollama: `GET /api/tags`, no authentication |
//! | `/bedrock` | AWS Bedrock: `GET /foundation-models`, SigV4 checked by recomputing it with `BEDROCK_SECRET` |
//! | `/slow`, `/fail`, `/garbage`, `/huge`, `/to-metadata` | any path below: 10 s late, HTTP 500, not JSON, 8 MiB, a redirect to 169.254.169.254 |
//! | `/hop` | `GET /models` redirects to `/openai/v1/models` |
//! | `/redirect/{status}/{host:port}` | any path below: answers `status` (a 3xx) with `Location: http://{host:port}/{the rest of the path}?{the query}` |
//!
//! `start_recording` starts the same server and also keeps every request it receives, headers
//! included, so a test can see what reached a host that should never have had a credential.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, Uri, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde_json::{Value, json};

pub const GOOD_KEY: &str = "good-key-123";
pub const BEDROCK_ACCESS_KEY: &str = "AKIDMODELREGTEST";
pub const BEDROCK_SECRET: &str = "bedrock-secret-for-tests";

fn models(ids: &[&str]) -> Value {
    json!({"object": "list", "data": ids.iter().map(|id| json!({"id": id, "object": "model"})).collect::<Vec<_>>()})
}

fn header_is(h: &HeaderMap, name: &str, want: &str) -> bool {
    h.get(name).and_then(|v| v.to_str().ok()) == Some(want)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"message": "Incorrect API key provided"}})),
    )
        .into_response()
}

async fn openai(h: HeaderMap) -> Response {
    if !header_is(&h, "authorization", &format!("Bearer {GOOD_KEY}")) {
        return unauthorized();
    }
    Json(models(&["gpt-4o", "gpt-4o-mini", "llama3-70b"])).into_response()
}

async fn azure(
    h: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !header_is(&h, "api-key", GOOD_KEY) {
        return unauthorized();
    }
    if !q.contains_key("api-version") {
        return (StatusCode::BAD_REQUEST, "api-version missing").into_response();
    }
    Json(models(&["gpt-4o"])).into_response()
}

async fn anthropic(h: HeaderMap) -> Response {
    if !header_is(&h, "x-api-key", GOOD_KEY) {
        return unauthorized();
    }
    if h.get("anthropic-version").is_none() {
        return (StatusCode::BAD_REQUEST, "anthropic-version missing").into_response();
    }
    Json(models(&[
        "claude-3-5-sonnet-20240620",
        "claude-3-opus-20240229",
    ]))
    .into_response()
}

async fn gemini(h: HeaderMap) -> Response {
    if !header_is(&h, "x-goog-api-key", GOOD_KEY) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"status": "PERMISSION_DENIED"}})),
        )
            .into_response();
    }
    Json(
        json!({"models": [{"name": "models/gemini-1.5-pro"}, {"name": "models/gemini-1.5-flash"}]}),
    )
    .into_response()
}

async fn ollama() -> Response {
    Json(json!({"models": [{"name": "llama3:latest", "model": "llama3:latest"}]})).into_response()
}

/// Bedrock's check: the request's SigV4 signature, recomputed from the secret at the request's
/// own `x-amz-date`, must be the one sent.
async fn bedrock(h: HeaderMap, uri: axum::http::Uri) -> Response {
    use aws_sigv4::{
        http_request::{SignableBody, SignableRequest, SigningSettings, sign},
        sign::v4,
    };
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let sent = get("authorization");
    let Some(region) = sent
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(2))
    else {
        return unauthorized();
    };
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let Ok(at) = time::PrimitiveDateTime::parse(get("x-amz-date"), &format) else {
        return unauthorized();
    };
    let identity = aws_credential_types::Credentials::new(
        BEDROCK_ACCESS_KEY,
        BEDROCK_SECRET,
        (!get("x-amz-security-token").is_empty()).then(|| get("x-amz-security-token").to_owned()),
        None,
        "fake",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("bedrock")
        .time(at.assume_utc().into())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = format!("http://{}{}", get("host"), uri);
    let request = SignableRequest::new(
        "GET",
        &url,
        std::iter::once(("host", get("host"))),
        SignableBody::Bytes(&[]),
    )
    .expect("signable");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    let expected = instructions
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    if expected != sent {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "The request signature we calculated does not match"})),
        )
            .into_response();
    }
    Json(json!({"modelSummaries": [{"modelId": "anthropic.claude-3-sonnet-20240229-v1:0"}]}))
        .into_response()
}

/// A redirect to another server: the path after `/redirect/{status}/{authority}/` and the query
/// are kept, so the other server's provider route answers as the first one's would have.
async fn redirect_elsewhere(
    Path((status, authority, rest)): Path<(u16, String, String)>,
    uri: Uri,
) -> Response {
    let Ok(status) = StatusCode::from_u16(status) else {
        return (StatusCode::BAD_REQUEST, "not a status").into_response();
    };
    if !status.is_redirection() {
        return (StatusCode::BAD_REQUEST, "not a redirect status").into_response();
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    (
        status,
        [(
            header::LOCATION,
            format!("http://{authority}/{rest}{query}"),
        )],
    )
        .into_response()
}

/// A request the fake provider received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `Host` header: which host and port the client thought it was talking to.
    pub host: String,
    /// The path and query.
    pub uri: String,
    /// Every header, names in lowercase, values lossily decoded.
    pub headers: Vec<(String, String)>,
}

/// Every request a recording fake provider received, in order of arrival.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Received>>>);

impl RequestLog {
    /// The requests received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.0.lock().expect("request log").clone()
    }
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    log.0.lock().expect("request log").push(Received {
        host: request
            .headers()
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .unwrap_or_default(),
        uri: request.uri().to_string(),
        headers,
    });
    next.run(request).await
}

/// Starts the fake provider; it runs until the test process ends.
pub async fn start() -> SocketAddr {
    serve(app()).await
}

/// Starts the fake provider and keeps every request it receives; it runs until the test
/// process ends.
pub async fn start_recording() -> (SocketAddr, RequestLog) {
    let log = RequestLog::default();
    let addr = serve(app().layer(from_fn_with_state(log.clone(), record))).await;
    (addr, log)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn app() -> Router {
    Router::new()
        .route("/openai/v1/models", get(openai))
        .route("/azure/openai/models", get(azure))
        .route("/anthropic/v1/models", get(anthropic))
        .route("/gemini/v1beta/models", get(gemini))
        .route("/ollama/api/tags", get(ollama))
        .route("/bedrock/foundation-models", get(bedrock))
        // The misbehaving endpoints answer any path below them, so every provider's probe can
        // be pointed at each.
        .route(
            "/slow/{*rest}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Json(models(&["gpt-4o"]))
            }),
        )
        .route(
            "/fail/{*rest}",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/garbage/{*rest}",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{not json") }),
        )
        .route(
            "/huge/{*rest}",
            get(|| async { "x".repeat(8 * 1024 * 1024) }),
        )
        .route(
            "/to-metadata/{*rest}",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/hop/models",
            get(|| async { Redirect::temporary("/openai/v1/models") }),
        )
        .route(
            "/redirect/{status}/{authority}/{*rest}",
            get(redirect_elsewhere),
        )
}
