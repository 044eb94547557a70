//! The one error type of the domain. The API maps each variant to an HTTP status and code.

use std::fmt;

/// A problem with one input field, in the shape FastAPI clients parse (`loc`, `msg`, `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where the problem is, e.g. `["body", "name"]` or `["query", "limit"]`.
    pub loc: Vec<String>,
    /// A human-readable message that names the rule that was broken.
    pub msg: String,
    /// A stable machine-readable kind, e.g. `string_too_long`.
    pub kind: &'static str,
}

impl FieldError {
    pub fn new(loc: &[&str], kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| s.to_string()).collect(),
            msg: msg.into(),
            kind,
        }
    }

    /// The field's dotted name without the `body`/`query`/`path` prefix, for messages; the
    /// prefix itself for an error of the whole body or query.
    pub fn field(&self) -> String {
        if self.loc.len() <= 1 {
            return self.loc.first().cloned().unwrap_or_default();
        }
        self.loc
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.msg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more inputs broke a rule (422).
    #[error("validation failed: {}", join(.0))]
    Validation(Vec<FieldError>),
    /// The request as a whole is malformed (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing, malformed, expired or revoked credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the role does not allow the action (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource in the caller's organization and project (404).
    #[error("{0}")]
    NotFound(String),
    /// A unique key is taken (409).
    #[error("{0}")]
    AlreadyExists(String),
    /// `If-Match` did not match the current version (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Storage is unreachable or overloaded (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure. The text goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn field(loc: &[&str], kind: &'static str, msg: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(loc, kind, msg)])
    }

    pub fn model_not_found(key: &str) -> Self {
        Error::NotFound(format!("model '{key}' not found"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
