//! The `/assets/models` resource, one file per operation.

pub mod batch;
pub mod create;
pub mod credentials;
pub mod delete;
pub mod get;
pub mod list;
pub mod list_cache;
pub mod update;
pub mod verify;
pub mod view;

use axum::http::{HeaderMap, HeaderValue, header};
use modelreg_core::{
    Error, FieldError,
    model::{Model, ModelCreate, ModelUpdate},
    validate,
};

/// The domain's errors of a body that parsed in part, for `JsonBody::parse_all`.
fn rule_errors<T>(checked: Result<T, Error>) -> Vec<FieldError> {
    match checked {
        Err(Error::Validation(errors)) => errors,
        _ => Vec::new(),
    }
}

/// A create (or verify-before-save) body, with every invalid field reported at once.
pub(crate) fn create_body(
    body: &crate::extract::JsonBody,
) -> Result<ModelCreate, crate::error::ApiError> {
    Ok(create_value(body.json()?)?)
}

/// An update body, with every invalid field reported at once.
pub(crate) fn update_body(
    body: &crate::extract::JsonBody,
) -> Result<ModelUpdate, crate::error::ApiError> {
    Ok(update_value(body.json()?)?)
}

/// A create body as JSON (a request's, or an operation's of a batch), checked as
/// `create_body` checks it.
pub(crate) fn create_value(json: serde_json::Value) -> Result<ModelCreate, Error> {
    validate::from_json_all(json, |b: ModelCreate| rule_errors(validate::create(b)))
}

/// An update body as JSON, checked as `update_body` checks it.
pub(crate) fn update_value(json: serde_json::Value) -> Result<ModelUpdate, Error> {
    validate::from_json_all(json, |b: ModelUpdate| rule_errors(validate::update(b)))
}

/// Headers every single-model response carries.
pub(crate) fn entity_headers(model: &Model) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&model.etag()).expect("etags are ASCII"),
    );
    h
}
