//! `GET /assets/models`

use axum::{extract::State, http::header, response::IntoResponse};
use modelreg_core::{list::ListQuery, service::Caller};
use utoipa::IntoParams;

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::QueryPairs,
    models::view::ModelList,
};

/// Query parameters of the list (documentation; the parser is `ListQuery::parse`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 2147483647, default = 1)]
    page: Option<u32>,
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// Case-insensitive substring of the name or the description.
    #[param(max_length = 255)]
    search: Option<String>,
    /// Exact status.
    #[param(inline)]
    status: Option<modelreg_core::model::Status>,
    /// Exact mode.
    #[param(inline)]
    mode: Option<modelreg_core::model::Mode>,
    /// Comma-separated; a model matches when it has every listed tag.
    tags: Option<String>,
    /// `field:order` pairs joined by commas, e.g. `name:asc,created_at:desc`. Fields: name,
    /// resource_uri, litellm_model, provider, status, mode, created_at, updated_at. Default
    /// `created_at:desc`; `id` is always the final tiebreaker.
    sort: Option<String>,
    /// Exact creator, e.g. `user:alice`.
    created_by: Option<String>,
    /// Deprecated alias of `created_by`.
    #[deprecated = "use created_by"]
    owner_id: Option<String>,
    /// Exact provider.
    provider: Option<String>,
    /// Keyset cursor from `pagination.next_cursor`; `page` is then ignored.
    cursor: Option<String>,
}

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
    let query = ListQuery::parse(&pairs, &state.models.cursors())?;
    let body = state.lists.page(&state.models, &caller, &query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
