//! `GET /assets/models/{resource_uri}`

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use modelreg_core::service::Caller;

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{ModelPath, Preconditions},
    models::{entity_headers, view::ModelView},
};

/// Get a model
///
/// `{resource_uri}` may also be the model's id. With `If-None-Match` matching the current
/// ETag the answer is 304 without a body.
#[utoipa::path(
    get,
    path = "/assets/models/{resource_uri}",
    tag = "models",
    operation_id = "get_model",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag(s) the client holds"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "The model", body = ModelView,
            headers(("ETag" = String, description = "Entity tag of the model"))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such model in this project", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.get", skip_all)]
pub async fn get_model(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
    pre: Preconditions,
) -> Result<Response, ApiError> {
    let model = state.models.get(&caller.reader()?, &key).await?;
    let headers = entity_headers(&model);
    if pre
        .if_none_match
        .is_some_and(|c| c.matches_weak(&model.etag()))
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((headers, Json(ModelView::from(&model))).into_response())
}
