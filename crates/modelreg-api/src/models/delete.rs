//! `DELETE /assets/models/{resource_uri}`

use axum::{extract::State, http::StatusCode};
use modelreg_core::service::Caller;

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{ModelPath, Preconditions},
};

/// Delete a model
///
/// Removes the model and its stored credentials. A second delete is a 404. `If-Match` makes
/// the delete conditional.
#[utoipa::path(
    delete,
    path = "/assets/models/{resource_uri}",
    tag = "models",
    operation_id = "delete_model",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the model's ETag matches"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such model in this project", body = ErrorBody),
        (status = 412, description = "If-Match did not match", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.delete", skip_all)]
pub async fn delete_model(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
    pre: Preconditions,
) -> Result<StatusCode, ApiError> {
    state
        .models
        .delete(&caller.deleter()?, &key, pre.if_match.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
