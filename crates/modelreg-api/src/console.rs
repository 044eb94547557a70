//! The web console: a single-page app whose built assets (`crates/modelreg-api/console/dist`,
//! built from `console/src` by `bash .ci/console`) are embedded in the binary and served
//! under `/ui`. The console is one more client of the public API with the caller's own
//! credential, so these routes serve files only: no data, no session, no authority.
//!
//! - `GET /` redirects to `/ui/`.
//! - `/ui`, `/ui/` and any `/ui/<path>` whose last segment has no extension answer
//!   `index.html`, so the app's history routes survive a reload.
//! - `/ui/assets/<file>` answers the embedded file, with its type, an `ETag` and
//!   `Cache-Control: no-cache` (the names are stable, so a browser revalidates, and a 304
//!   costs no body).
//!
//! Every response here carries a strict Content-Security-Policy (no inline script or style,
//! `connect-src` only this origin and the configured OIDC issuers), `nosniff` and
//! `Referrer-Policy: no-referrer`. None of these routes is in the OpenAPI document: they are
//! not API.

use std::{
    hash::{DefaultHasher, Hasher},
    sync::{Arc, LazyLock},
};

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

use crate::{AppState, console_config::ConsoleConfig, error::ApiError};

/// One embedded file of the console.
struct Asset {
    name: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, bytes: include_bytes!(concat!("../console/dist/", $name)) }),*]
    };
}

/// Every file of `console/dist`; a test fails when a built file is missing here.
const ASSETS: &[Asset] = assets![
    "index.html",
    "app.js",
    "app.css",
    "favicon.svg",
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "swagger-ui-LICENSE.txt",
];

/// The names of the embedded files (for tests).
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Each file's strong ETag, from its content: the same build always sends the same tags.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut h = DefaultHasher::new();
            h.write(a.bytes);
            format!("\"{:016x}-{:x}\"", h.finish(), a.bytes.len())
        })
        .collect()
});

/// The console's routes, with the issuers it signs in with (`/ui/config.json`) allowed in
/// `connect-src`: the browser fetches their discovery documents and exchanges the
/// authorization code itself.
pub(crate) fn routes(config: &ConsoleConfig) -> Router<AppState> {
    let issuers: Vec<&str> = config.oidc().iter().map(|c| c.issuer.as_str()).collect();
    let csp: Arc<HeaderValue> = Arc::new(
        HeaderValue::from_str(&content_security_policy(&issuers))
            .expect("issuer origins are valid header text"),
    );
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/assets/{*file}", get(asset))
        .route("/ui/{*path}", get(page))
        .layer(axum::middleware::map_response(move |mut res: Response| {
            let csp = csp.clone();
            async move {
                let h = res.headers_mut();
                h.insert(header::CONTENT_SECURITY_POLICY, (*csp).clone());
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
                res
            }
        }))
}

/// The policy: everything from this origin only, nothing inline, no framing; `connect-src`
/// adds the origin of each configured OIDC issuer.
pub fn content_security_policy(oidc_issuers: &[&str]) -> String {
    let mut connect = vec!["'self'".to_owned()];
    for issuer in oidc_issuers {
        if let Ok(url) = url::Url::parse(issuer) {
            let origin = url.origin().ascii_serialization();
            if origin != "null" && !connect.contains(&origin) {
                connect.push(origin);
            }
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {}; font-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        connect.join(" ")
    )
}

fn serve(i: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = &ETAGS[i];
    let tag = HeaderValue::from_str(etag).expect("an ETag is header text");
    let cache = HeaderValue::from_static("no-cache");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(asset.name)),
            ),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}

fn find(name: &str) -> Option<usize> {
    ASSETS.iter().position(|a| a.name == name)
}

async fn index(headers: HeaderMap) -> Response {
    serve(
        find("index.html").expect("index.html is embedded"),
        &headers,
    )
}

/// A page of the app (`/ui/models/x`): the app itself, which routes on the path. A path
/// whose last segment has an extension, or below `assets/`, is a file that does not exist.
async fn page(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let last = path.rsplit('/').next().unwrap_or("");
    if last.contains('.') || path == "assets" || path.starts_with("assets/") {
        return not_found();
    }
    index(headers).await
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match find(&file) {
        Some(i) if file != "index.html" => serve(i, &headers),
        _ => not_found(),
    }
}

/// The path is not echoed: no error message quotes what the client sent.
fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "the console has no such file",
    )
    .into_response()
}
