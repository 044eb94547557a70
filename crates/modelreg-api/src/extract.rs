//! Extractors that turn a request into domain values, with every rejection in our error
//! shape.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{HeaderMap, header, request::Parts},
};
use modelreg_core::{resource_uri::ModelKey, service::EtagCondition};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, checked for media type and size but parsed only when the handler
/// asks, so that authorization runs first.
pub struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let is_json = mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if !is_json {
            let got = if ct.is_empty() {
                "none".to_owned()
            } else {
                format!("{ct:?}")
            };
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("the request body must be application/json (Content-Type was {got})"),
            ));
        }
        let deadline = req
            .extensions()
            .get::<crate::limits::BodyTimeout>()
            .map_or(std::time::Duration::from_secs(10), |t| t.0);
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "REQUEST_TIMEOUT",
                    format!(
                        "the request body did not arrive within {} s",
                        deadline.as_secs_f64()
                    ),
                )
            })?;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::from_status(rejection.status())
            } else {
                ApiError::invalid_request(format!("cannot read the request body: {rejection}"))
            }
        })?;
        Ok(JsonBody(bytes))
    }
}

impl JsonBody {
    /// A body from bytes already read (the fuzz targets feed bodies in this way).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        JsonBody(bytes.into())
    }

    /// Parses the body. Malformed JSON is a 400; JSON of the wrong shape (not an object, a
    /// wrong type, an unknown field) is a 422 that names the field.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        modelreg_core::validate::from_json(self.json()?).map_err(ApiError::from)
    }

    /// Parses the body like `parse`, but reports every invalid field at once, the domain's
    /// `rules` included (`validate::from_json_all`).
    pub fn parse_all<T: DeserializeOwned>(
        &self,
        rules: impl FnOnce(T) -> Vec<modelreg_core::FieldError>,
    ) -> Result<T, ApiError> {
        modelreg_core::validate::from_json_all(self.json()?, rules).map_err(ApiError::from)
    }

    /// The body as JSON: malformed JSON is a 400.
    pub(crate) fn json(&self) -> Result<serde_json::Value, ApiError> {
        serde_json::from_slice(&self.0).map_err(|e| {
            ApiError::invalid_request(format!("the request body is not valid JSON: {e}"))
        })
    }
}

/// The raw query string as pairs, decoded. Parsing into a typed query is the domain's job.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// The `{resource_uri}` path segment: a resource_uri or a model id.
pub struct ModelPath(pub ModelKey);

impl<S: Send + Sync> FromRequestParts<S> for ModelPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_request(format!("invalid path: {e}")))?;
        ModelKey::parse(&raw)
            .map(ModelPath)
            .map_err(|msg| ApiError::field(&["path", "resource_uri"], "resource_uri", msg))
    }
}

/// `If-Match` and `If-None-Match`.
pub struct Preconditions {
    pub if_match: Option<EtagCondition>,
    pub if_none_match: Option<EtagCondition>,
}

fn condition(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<EtagCondition>, ApiError> {
    let Some(v) = headers.get(&name) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(EtagCondition::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "{name} must be * or a list of quoted entity tags, as the ETag header gives them"
            ))
        })
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Preconditions {
            if_match: condition(&parts.headers, header::IF_MATCH)?,
            if_none_match: condition(&parts.headers, header::IF_NONE_MATCH)?,
        })
    }
}
