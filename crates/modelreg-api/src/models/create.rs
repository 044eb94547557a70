//! `POST /assets/models`

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use modelreg_core::{model::ModelCreate, service::Caller};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::JsonBody,
    models::{entity_headers, view::ModelView},
};

/// Create a model
///
/// Creates a model configuration. It starts `PENDING`. `resource_uri` is generated from the
/// name when omitted (`-2`, `-3`, … when taken); a given one that is taken is a 409.
#[utoipa::path(
    post,
    path = "/assets/models",
    tag = "models",
    operation_id = "create_model",
    params(crate::openapi::ProjectHeader),
    request_body(content = ModelCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = ModelView,
            headers(("Location" = String, description = "URL of the new model"),
                    ("ETag" = String, description = "Entity tag of the new model"))),
        (status = 409, description = "resource_uri is taken", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.create", skip_all)]
pub async fn create_model(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, HeaderMap, Json<ModelView>), ApiError> {
    // The role is checked before the body, so a viewer learns nothing from validation.
    let writer = caller.writer()?;
    let input: ModelCreate = super::create_body(&body)?;
    let model = state.models.create(&writer, input).await?;
    let mut headers = entity_headers(&model);
    let location = format!("/assets/models/{}", model.resource_uri);
    headers.insert(
        header::LOCATION,
        location
            .parse()
            .expect("resource_uri is a valid header value"),
    );
    Ok((StatusCode::CREATED, headers, Json(ModelView::from(&model))))
}
