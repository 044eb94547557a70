//! The request middleware: request ids, one log line per request, and the final shape of
//! every error response.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tracing::Instrument;

use crate::{
    error::ApiError,
    limits::{self, BodyTimeout, Limits},
    metrics::Metrics,
};

/// What the request middleware needs: the metrics it counts into and the limits it applies.
#[derive(Clone)]
pub(crate) struct Context {
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
}

impl Context {
    pub(crate) fn new(metrics: Arc<Metrics>, limits: Limits) -> Self {
        Context {
            metrics,
            limits: Arc::new(limits),
        }
    }
}

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, as sent by the client or generated; the audit trail records
/// it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who made the request, filled in by the authentication extractors, for the request's log
/// line. Empty for requests that need no credential or were refused before one was read.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Who>>);

#[derive(Debug, Default)]
struct Who {
    principal: Option<String>,
    org: Option<String>,
    project: Option<String>,
}

impl RequestLog {
    /// Records the authenticated principal and its organization.
    pub fn identified(&self, principal: &str, org: &str) {
        if let Ok(mut who) = self.0.lock() {
            who.principal = Some(principal.to_owned());
            who.org = Some(org.to_owned());
        }
    }

    /// Records the project the request acts in.
    pub fn project(&self, project: &str) {
        if let Ok(mut who) = self.0.lock() {
            who.project = Some(project.to_owned());
        }
    }

    fn take(&self) -> Who {
        self.0
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// A client-sent request id is echoed when it is 1–128 visible ASCII characters; otherwise a
/// new one is made.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("req-{}", uuid::Uuid::now_v7().simple()))
}

/// The label of requests that match no route: their paths are the client's to choose, so
/// they never become labels.
const UNMATCHED: &str = "unmatched";

pub(crate) async fn request_context(
    State(Context { metrics, limits }): State<Context>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = metrics.in_flight();
    let id = request_id(&req);
    let who = RequestLog::default();
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(who.clone());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    // The path only where no route matched (the template says it otherwise), so a routed
    // request copies nothing; cut to 256 characters, as it is the client's to choose on the
    // cheapest request there is. The formatter escapes it, so it cannot break a line.
    let path = route
        .is_none()
        .then(|| req.uri().path().chars().take(256).collect::<String>());
    let span = tracing::info_span!(
        "request",
        %method,
        route = route.as_deref().unwrap_or(UNMATCHED),
        request_id = %id
    );

    req.extensions_mut()
        .insert(BodyTimeout(limits.body_timeout));
    let res = match limits::check_head(&req, limits.max_header_bytes) {
        Err(e) => e.into_response(),
        Ok(()) => {
            match tokio::time::timeout(limits.request_timeout, next.run(req))
                .instrument(span.clone())
                .await
            {
                Ok(res) => res,
                Err(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    format!(
                        "the request did not finish within {} s; it was stopped",
                        limits.request_timeout.as_secs_f64()
                    ),
                )
                .into_response(),
            }
        }
    };
    let (mut res, code) = finish_error(res, &id);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    metrics.observe_request(method.as_str(), route, status, elapsed.as_secs_f64());
    let who = who.take();
    // Milliseconds to the microsecond: more digits are noise, and they make lines harder to
    // read and to aggregate.
    let latency_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    // The one line per request: what, who, how it went, and for a refusal, why.
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route,
            path,
            status,
            code,
            latency_ms,
            request_id = %id,
            principal = who.principal.as_deref().unwrap_or("-"),
            org = who.org.as_deref().unwrap_or("-"),
            project = who.project.as_deref().unwrap_or("-"),
            "request"
        )
    });
    res
}

/// Renders the error carried by the response, or turns a bare error status from axum or
/// tower into our shape; with the error's code.
fn finish_error(mut res: Response, request_id: &str) -> (Response, Option<&'static str>) {
    let error = match res.extensions_mut().remove::<ApiError>() {
        Some(e) => e,
        None if is_bare_error(&res) => ApiError::from_status(res.status()),
        None => return (res, None),
    };
    let code = error.code;
    if let Some(internal) = &error.internal {
        if error.status.is_server_error() && error.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = error.code, error = %internal, "request failed");
        } else {
            tracing::warn!(code = error.code, error = %internal, "request failed");
        }
    }
    let body = serde_json::to_vec(&error.body(request_id)).expect("error body serializes");
    let (mut parts, _) = res.into_parts();
    parts.status = error.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (Response::from_parts(parts, Body::from(body)), Some(code))
}

fn is_bare_error(res: &Response) -> bool {
    let s = res.status();
    (s.is_client_error() || s.is_server_error())
        && !res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"))
}
