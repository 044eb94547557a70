//! `POST /assets/models/verify` and `POST /assets/models/{resource_uri}/verify`.

use axum::{Json, extract::State};
use modelreg_core::{
    model::{ModelCreate, Status},
    service::Caller,
    verify::ProbeOutcome,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{JsonBody, ModelPath},
};

/// The result of verifying a stored model.
#[derive(Serialize, ToSchema)]
pub struct StoredVerification {
    pub verified: bool,
    /// What happened, in words; never contains a secret.
    pub message: String,
    pub latency_ms: u64,
    /// The model's status after the verification (DEPRECATED and DISABLED never change).
    pub status: Status,
}

/// Verify before save
///
/// Makes one cheap, authenticated call to the provider with the given configuration and
/// credentials. Nothing is stored. A rejected key, a timeout or an unreachable host is
/// `verified: false` with a message that says which, not an error of this API.
#[utoipa::path(
    post,
    path = "/assets/models/verify",
    tag = "models",
    operation_id = "verify_unsaved_model",
    params(crate::openapi::ProjectHeader),
    request_body(content = ModelCreate, content_type = "application/json"),
    responses(
        (status = 200, description = "The verification's outcome", body = ProbeOutcome),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid configuration", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.verify_unsaved", skip_all)]
pub async fn verify_unsaved(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Json<ProbeOutcome>, ApiError> {
    let verifier = caller.verifier()?;
    let input: ModelCreate = super::create_body(&body)?;
    Ok(Json(state.models.verify_unsaved(&verifier, input).await?))
}

/// Verify a stored model
///
/// Verifies the model with its stored credentials and records the result: status `ACTIVE`
/// or `ERROR` (a `DEPRECATED` or `DISABLED` model keeps its status), `status_message` and
/// `last_verified_at`.
#[utoipa::path(
    post,
    path = "/assets/models/{resource_uri}/verify",
    tag = "models",
    operation_id = "verify_model",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "The verification's outcome and the new status", body = StoredVerification),
        (status = 404, description = "No such model in this project", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.verify", skip_all)]
pub async fn verify_stored(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
) -> Result<Json<StoredVerification>, ApiError> {
    let v = state
        .models
        .verify_stored(&caller.verifier()?, &key)
        .await?;
    Ok(Json(StoredVerification {
        verified: v.outcome.verified,
        message: v.outcome.message,
        latency_ms: v.outcome.latency_ms,
        status: v.model.fields.status,
    }))
}
