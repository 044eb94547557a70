//! The `/assets/models` resource, one file per operation.

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
use modelreg_core::model::Model;

/// Headers every single-model response carries.
pub(crate) fn entity_headers(model: &Model) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&model.etag()).expect("etags are ASCII"),
    );
    h
}
