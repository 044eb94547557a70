//! `GET /assets/models`

use axum::{extract::State, http::header, response::IntoResponse};
use modelreg_core::{list::ListParams, service::Caller};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::QueryPairs,
    models::view::ModelList,
};

/// List models
///
/// Lists the project's models with search, filters, multi-field sort and page or keyset
/// pagination.
#[utoipa::path(
    get,
    path = "/assets/models",
    tag = "models",
    operation_id = "list_models",
    params(ListParams, crate::openapi::ProjectHeader),
    responses(
        (status = 200, description = "A page of models", body = ModelList),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.list", skip_all)]
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<impl IntoResponse, ApiError> {
    let reader = caller.reader()?;
    let query = ListParams::from_pairs(&pairs)?.into_query(&state.models.cursors())?;
    let body = state.lists.page(&state.models, &reader, &query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
