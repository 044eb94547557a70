//! `ApiError`: the one error type of the HTTP layer, and the JSON shape of SPEC §4.
//!
//! A handler or extractor returns an `ApiError`; its response carries the error as an
//! extension, and the request middleware renders the body once the request id is known (see
//! `middleware.rs`). Responses that axum or tower produce on their own (404, 405, 413, …) are
//! rewritten into the same shape there too.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use modelreg_core::{Error, FieldError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Map<String, Value>,
    pub fields: Vec<FieldError>,
    /// What went wrong inside, for the log only.
    pub internal: Option<String>,
    /// Seconds for `Retry-After` on a 429 or 503; 1 when not set.
    pub retry_after: Option<u16>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            fields: Vec::new(),
            internal: None,
            retry_after: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let summary = fields
            .iter()
            .take(5)
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let more = fields.len().saturating_sub(5);
        let message = if more > 0 {
            format!("Validation failed: {summary}; and {more} more")
        } else {
            format!("Validation failed: {summary}")
        };
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
            message,
        );
        e.details.insert(
            "fields".into(),
            Value::from(fields.iter().map(|f| f.field()).collect::<Vec<_>>()),
        );
        e.fields = fields;
        e
    }

    pub fn field(loc: &[&str], kind: &'static str, msg: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(loc, kind, msg)])
    }

    /// The error for a status that something other than our code produced.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("RESOURCE_NOT_FOUND", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "this method is not allowed on this route; see the Allow header",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("PAYLOAD_TOO_LARGE", "the request body is larger than 1 MiB")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "the request body must be application/json",
            ),
            StatusCode::URI_TOO_LONG => ("INVALID_REQUEST", "the URL is too long"),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                ("INVALID_REQUEST", "the request headers are too large")
            }
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
            StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMIT_EXCEEDED", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("SERVICE_UNAVAILABLE", "the service is unavailable")
            }
            s if s.is_server_error() => ("INTERNAL_ERROR", "an internal error occurred"),
            _ => ("INVALID_REQUEST", "the request is invalid"),
        };
        ApiError::new(status, code, message)
    }

    /// The JSON body, with the request id of the response it goes out in.
    pub fn body(&self, request_id: &str) -> Value {
        let mut body = json!({ "error": self.object(request_id) });
        if let Some(detail) = self.detail() {
            body["detail"] = json!(detail);
        }
        body
    }

    /// The `error` object of the body.
    pub fn object(&self, request_id: &str) -> ErrorObject {
        ErrorObject {
            code: self.code.to_owned(),
            message: self.message.clone(),
            status: self.status.as_u16(),
            details: self.details.clone(),
            request_id: request_id.to_owned(),
        }
    }

    /// The body's `detail` list: only on a 422.
    pub fn detail(&self) -> Option<Vec<ErrorDetail>> {
        (self.status == StatusCode::UNPROCESSABLE_ENTITY).then(|| {
            self.fields
                .iter()
                .map(|f| ErrorDetail {
                    loc: f.loc.clone(),
                    msg: f.msg.clone(),
                    kind: f.kind.to_owned(),
                })
                .collect()
        })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(fields) => ApiError::validation(fields),
            Error::InvalidRequest(m) => ApiError::invalid_request(m),
            Error::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", m)
            }
            Error::Forbidden(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "INSUFFICIENT_PERMISSIONS", m)
            }
            Error::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", m),
            Error::AlreadyExists(m) => {
                ApiError::new(StatusCode::CONFLICT, "RESOURCE_ALREADY_EXISTS", m)
            }
            Error::PreconditionFailed(m) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED", m)
            }
            Error::Unavailable(m) => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "the service is temporarily unavailable; retry shortly",
                );
                e.internal = Some(m);
                e
            }
            Error::Internal(m) => {
                let mut e = ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "an internal error occurred; the request id identifies it in the server log",
                );
                e.internal = Some(m);
                e
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        let headers = res.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"modelreg\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(self.retry_after.unwrap_or(1)),
                );
            }
            _ => {}
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// The error response body of every endpoint (SPEC §4).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
    /// Only on 422: each invalid input, in the shape FastAPI clients parse.
    #[schema(nullable = false)]
    pub detail: Option<Vec<ErrorDetail>>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable machine-readable code, e.g. `VALIDATION_ERROR`.
    #[schema(example = "VALIDATION_ERROR")]
    pub code: String,
    pub message: String,
    /// The HTTP status code.
    pub status: u16,
    pub details: Map<String, Value>,
    /// The `X-Request-ID` of the response.
    pub request_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Where the problem is, e.g. `["body", "name"]`.
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}
