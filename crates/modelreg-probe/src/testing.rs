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

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json, Router,
    extract::Query,
    http::{HeaderMap, StatusCode, header},
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

/// Starts the fake provider; it runs until the test process ends.
pub async fn start() -> SocketAddr {
    let app = Router::new()
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
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
