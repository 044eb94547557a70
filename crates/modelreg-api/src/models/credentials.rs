//! `PATCH /assets/models/{resource_uri}/credentials`: change stored credentials key by key.

use axum::{Json, extract::State, http::HeaderMap};
use modelreg_core::{secrets::CredentialsPatch, service::Caller};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{JsonBody, ModelPath, Preconditions},
    models::{entity_headers, view::ModelView},
};

/// Update credentials key by key
///
/// Merges the body into the stored credentials: a value sets its key, `null` removes it, keys
/// not named are kept. The credentials must not become empty. A masked placeholder such as
/// `"****"` is refused. Values may be references (`os.environ/NAME`, `file:/path`), stored as
/// such. The response, like every other, never contains a value.
#[utoipa::path(
    patch,
    path = "/assets/models/{resource_uri}/credentials",
    tag = "models",
    operation_id = "patch_model_credentials",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the model's ETag matches"),
        crate::openapi::ProjectHeader,
    ),
    request_body(
        content = CredentialsPatch,
        description = "Keys to set (a value) or remove (null)",
        content_type = "application/json",
    ),
    responses(
        (status = 200, description = "The model, with the new credential_fields", body = ModelView,
            headers(("ETag" = String, description = "Entity tag of the updated model"))),
        (status = 404, description = "No such model in this project", body = ErrorBody),
        (status = 412, description = "If-Match did not match", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid change, a placeholder, or stored credentials that cannot be decrypted", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.patch_credentials", skip_all)]
pub async fn patch_credentials(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
    pre: Preconditions,
    body: JsonBody,
) -> Result<(HeaderMap, Json<ModelView>), ApiError> {
    let writer = caller.writer()?;
    let patch: CredentialsPatch = body.parse()?;
    let model = state
        .models
        .update_credentials(&writer, &key, &patch, pre.if_match.as_ref())
        .await?;
    Ok((entity_headers(&model), Json(ModelView::from(&model))))
}
