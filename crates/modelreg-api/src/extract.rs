//! Extractors that turn a request into domain values, with every rejection in our error
//! shape.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{HeaderMap, header, request::Parts},
};
use modelreg_core::{FieldError, resource_uri::ModelKey, service::EtagCondition};
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
        let object = self.object()?;
        deserialize_object(serde_json::Value::Object(object))
            .map_err(|e| ApiError::validation(vec![e]))
    }

    /// Parses the body like `parse`, but reports every field that does not parse, not only the
    /// first: each is left out in turn and the rest parsed again. When any failed, `rules`
    /// (the domain's validation) runs on what did parse, and its errors for other fields join
    /// the 422, so a client learns of every invalid field at once.
    pub fn parse_all<T: DeserializeOwned>(
        &self,
        rules: impl FnOnce(T) -> Vec<FieldError>,
    ) -> Result<T, ApiError> {
        let mut object = self.object()?;
        let mut errors: Vec<FieldError> = Vec::new();
        // Each round leaves out one field, so this ends.
        for _ in 0..=object.len() {
            match deserialize_object::<T>(serde_json::Value::Object(object.clone())) {
                Ok(value) if errors.is_empty() => return Ok(value),
                Ok(value) => {
                    let reported: Vec<String> = errors.iter().map(|e| e.loc[1].clone()).collect();
                    errors.extend(
                        rules(value)
                            .into_iter()
                            .filter(|e| e.loc.get(1).is_none_or(|f| !reported.contains(f))),
                    );
                    break;
                }
                Err(e) => {
                    let field = e.loc.get(1).cloned();
                    errors.push(e);
                    match field {
                        Some(f) if object.remove(&f).is_some() => continue,
                        _ => break,
                    }
                }
            }
        }
        Err(ApiError::validation(errors))
    }

    /// The body as a JSON object: malformed JSON is a 400, any other JSON a 422.
    fn object(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let value: serde_json::Value = serde_json::from_slice(&self.0).map_err(|e| {
            ApiError::invalid_request(format!("the request body is not valid JSON: {e}"))
        })?;
        match value {
            serde_json::Value::Object(object) => Ok(object),
            _ => Err(ApiError::field(
                &["body"],
                "model_type",
                "the request body must be a JSON object",
            )),
        }
    }
}

/// `value` as a `T`, or the first error, named by its place in the body.
fn deserialize_object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, FieldError> {
    {
        serde_path_to_error::deserialize(value).map_err(|e| {
            use serde_path_to_error::Segment;
            let mut loc = vec!["body".to_owned()];
            loc.extend(e.path().iter().filter_map(|seg| match seg {
                Segment::Seq { index } => Some(index.to_string()),
                Segment::Map { key } => Some(key.clone()),
                Segment::Enum { variant } => Some(variant.clone()),
                Segment::Unknown => None,
            }));
            let inner = without_literals(&e.into_inner().to_string());
            if loc.len() == 1
                && let Some(field) = unknown_field(&inner)
            {
                loc.push(field);
            }
            let (kind, msg) = if inner.starts_with("unknown field") {
                ("extra_forbidden", inner)
            } else if inner.starts_with("invalid type: floating") && inner.contains("i64") {
                // A number with a fraction, or too large for an integer (JSON reads those as
                // floats): say what is wanted, not how serde saw it. Every integer of a body
                // has these bounds (SPEC §1).
                (
                    "int_parsing",
                    format!("must be an integer between 1 and {}", i32::MAX),
                )
            } else if inner.starts_with("invalid type") {
                ("type_error", inner)
            } else {
                ("value_error", inner)
            };
            FieldError { loc, msg, kind }
        })
    }
}

/// serde's message without the literal it quotes: `invalid type: string "sk-…", expected i64`
/// becomes `invalid type: string, expected i64`. A client that sends a secret in the wrong
/// field must not get it echoed back (or logged).
fn without_literals(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let expected = rest.find(", expected").map(|i| &rest[i..]).unwrap_or("");
        return format!("unknown variant{expected}");
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let kind = rest.split([' ', ',']).next().unwrap_or("");
            let expected = rest.rfind(", expected ").map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}{kind}{expected}");
        }
    }
    msg.to_owned()
}

/// The field name in serde's "unknown field `x`, expected …" message.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
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
