//! `GET /v1/models`: the project's usable models in the OpenAI list format, so existing OpenAI
//! SDK clients can list them.

use axum::{Json, extract::State};
use modelreg_core::{
    list::{After, Filters, ListQuery, Paging, SortField, SortKey},
    service::Caller,
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{AppState, error::ApiError, extract::QueryPairs};

/// A model in the OpenAI format.
#[derive(Serialize, ToSchema)]
pub struct OpenAiModel {
    /// The model's resource_uri: the name a client asks the gateway for.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// The provider, or `modelreg` when there is none.
    pub owned_by: String,
}

/// A page of models in the OpenAI list format.
#[derive(Serialize, ToSchema)]
pub struct OpenAiModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<OpenAiModel>,
    /// Whether models follow; pass `last_id` as `after` to get them.
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

/// Query parameters of `/v1/models` (documentation; parsed by hand).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OpenAiListParams {
    /// Models per page.
    #[param(minimum = 1, maximum = 1000, default = 1000)]
    limit: Option<u32>,
    /// The `id` after which to continue (the previous page's `last_id`).
    after: Option<String>,
}

const MAX: u32 = 1000;

/// List usable models (OpenAI-compatible)
///
/// The project's models that are not DISABLED, by id, in the format of OpenAI's
/// `GET /v1/models`.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    operation_id = "openai_list_models",
    params(OpenAiListParams, crate::openapi::ProjectHeader),
    responses((status = 200, description = "A page of models", body = OpenAiModelList)),
)]
#[tracing::instrument(name = "openai.models", skip_all)]
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<OpenAiModelList>, ApiError> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None => MAX,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    &["query", "limit"],
                    "int_range",
                    format!("must be an integer between 1 and {MAX}"),
                ));
            }
        },
    };
    let paging = match get("after").filter(|a| !a.is_empty()) {
        // resource_uris are unique in a project, so the id tiebreaker never matters here;
        // the largest id keeps the row named by `after` itself out.
        Some(after) => Paging::After(After {
            values: vec![after.to_owned()],
            id: Uuid::max(),
        }),
        None => Paging::Page(1),
    };
    let query = ListQuery {
        paging,
        limit,
        filters: Filters {
            usable_only: true,
            ..Filters::default()
        },
        sort: vec![SortKey {
            field: SortField::ResourceUri,
            desc: false,
        }],
    };
    let page = state.registry.list(&caller, &query).await?;
    let data: Vec<OpenAiModel> = page
        .items
        .iter()
        .map(|m| OpenAiModel {
            id: m.resource_uri.to_string(),
            object: "model",
            created: m.created_at.as_offset_date_time().unix_timestamp(),
            owned_by: m
                .fields
                .provider
                .clone()
                .unwrap_or_else(|| "modelreg".into()),
        })
        .collect();
    Ok(Json(OpenAiModelList {
        object: "list",
        first_id: data.first().map(|m| m.id.clone()),
        last_id: data.last().map(|m| m.id.clone()),
        has_more: page.has_more,
        data,
    }))
}
