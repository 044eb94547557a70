//! Domain of modelreg: the model configuration and its rules, the list query, tenancy and
//! roles, credential encryption, and the storage trait the backends implement.
//!
//! Nothing here knows about HTTP or SQL.

pub mod audit;
pub mod auth;
pub mod batch;
pub mod catalog;
pub mod checker;
pub mod error;
pub mod list;
pub mod litellm;
pub mod live_keys;
pub mod model;
pub mod references;
pub mod resource_uri;
pub mod secrets;
pub mod service;
pub mod store;
pub mod tenant;
pub mod timestamp;
pub mod tokens;
pub mod validate;
pub mod verify;

pub use error::{Error, FieldError, Result};
