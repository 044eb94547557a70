//! `PUT` and `PATCH /assets/models/{resource_uri}`: both apply a JSON merge patch.

use axum::{Json, extract::State, http::HeaderMap};
use modelreg_core::{model::ModelUpdate, service::Caller};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{JsonBody, ModelPath, Preconditions},
    models::{entity_headers, view::ModelView},
};

async fn update(
    state: AppState,
    caller: Caller,
    key: ModelPath,
    pre: Preconditions,
    body: JsonBody,
) -> Result<(HeaderMap, Json<ModelView>), ApiError> {
    let writer = caller.writer()?;
    let input: ModelUpdate = super::update_body(&body)?;
    let model = state
        .models
        .update(&writer, &key.0, input, pre.if_match.as_ref())
        .await?;
    Ok((entity_headers(&model), Json(ModelView::from(&model))))
}

/// Update a model (PUT)
///
/// A partial update with JSON merge patch semantics: absent fields are unchanged, `null`
/// clears a nullable field, `tags` and `credentials` are replaced whole. `If-Match` makes the
/// write conditional (412 when the model changed).
#[utoipa::path(
    put,
    path = "/assets/models/{resource_uri}",
    tag = "models",
    operation_id = "update_model",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the model's ETag matches"),
        crate::openapi::ProjectHeader,
    ),
    request_body(content = ModelUpdate, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated model", body = ModelView,
            headers(("ETag" = String, description = "Entity tag of the updated model"))),
        (status = 404, description = "No such model in this project", body = ErrorBody),
        (status = 412, description = "If-Match did not match", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.put", skip_all)]
pub async fn put_model(
    State(state): State<AppState>,
    caller: Caller,
    key: ModelPath,
    pre: Preconditions,
    body: JsonBody,
) -> Result<(HeaderMap, Json<ModelView>), ApiError> {
    update(state, caller, key, pre, body).await
}

/// Update a model (PATCH)
///
/// The same semantics as PUT. `application/merge-patch+json` is accepted too.
#[utoipa::path(
    patch,
    path = "/assets/models/{resource_uri}",
    tag = "models",
    operation_id = "patch_model",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the model's ETag matches"),
        crate::openapi::ProjectHeader,
    ),
    request_body(content(
        (ModelUpdate = "application/json"),
        (ModelUpdate = "application/merge-patch+json"),
    )),
    responses(
        (status = 200, description = "The updated model", body = ModelView,
            headers(("ETag" = String, description = "Entity tag of the updated model"))),
        (status = 404, description = "No such model in this project", body = ErrorBody),
        (status = 412, description = "If-Match did not match", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.patch", skip_all)]
pub async fn patch_model(
    State(state): State<AppState>,
    caller: Caller,
    key: ModelPath,
    pre: Preconditions,
    body: JsonBody,
) -> Result<(HeaderMap, Json<ModelView>), ApiError> {
    update(state, caller, key, pre, body).await
}
