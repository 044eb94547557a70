//! `GET /v1/models` and `GET /v1/models/{id}`: the project's usable models in the OpenAI
//! format, so existing OpenAI SDK clients can list and retrieve them.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::PathRejection},
    http::header,
    response::IntoResponse,
};
use modelreg_core::{
    Error,
    list::{After, Filters, ListQuery, ModelEntry, Paging, SortField, SortKey},
    model::Model,
    resource_uri::ResourceUri,
    service::Caller,
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::QueryPairs,
};

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

impl From<&Model> for OpenAiModel {
    fn from(m: &Model) -> Self {
        OpenAiModel {
            id: m.resource_uri.to_string(),
            object: "model",
            created: m.created_at.as_offset_date_time().unix_timestamp(),
            owned_by: m
                .fields
                .provider
                .clone()
                .unwrap_or_else(|| "modelreg".into()),
        }
    }
}

impl From<&ModelEntry> for OpenAiModel {
    fn from(m: &ModelEntry) -> Self {
        OpenAiModel {
            id: m.resource_uri.to_string(),
            object: "model",
            created: m.created_at.as_offset_date_time().unix_timestamp(),
            owned_by: m.provider.clone().unwrap_or_else(|| "modelreg".into()),
        }
    }
}

/// Models in the OpenAI list format.
#[derive(Serialize, ToSchema)]
pub struct OpenAiModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<OpenAiModel>,
    /// Whether models follow; pass `last_id` as `after` to get them. Always false without
    /// `limit`.
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

/// Query parameters of `/v1/models` (documentation; parsed by hand).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OpenAiListParams {
    /// Models per page. Without it, every usable model comes in one response.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `id` after which to continue (the previous page's `last_id`).
    after: Option<String>,
}

/// The largest page a client may ask for, and the rows read at a time when it asks for all.
const MAX: u32 = 1000;

/// List usable models (OpenAI-compatible)
///
/// The project's models that are not DISABLED, by id, in the format of OpenAI's
/// `GET /v1/models`. Without `limit`, all of them in one response: OpenAI's SDKs read one
/// response and do not follow `has_more`. With `limit` (and `after`), one page.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    operation_id = "openai_list_models",
    params(OpenAiListParams, crate::openapi::ProjectHeader),
    responses((status = 200, description = "The models, or a page of them", body = OpenAiModelList)),
)]
#[tracing::instrument(name = "openai.models", skip_all)]
pub async fn list_models(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<impl IntoResponse, ApiError> {
    let reader = caller.reader()?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX).contains(&n) => Some(n),
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
    // Kept under `limit` 0 when there is none: the whole list is another body than a page of
    // MAX.
    let query = ListQuery {
        paging,
        limit: limit.unwrap_or(0),
        filters: Filters {
            usable_only: true,
            ..Filters::default()
        },
        sort: vec![SortKey {
            field: SortField::ResourceUri,
            desc: false,
        }],
    };
    let models = &state.models;
    let render = || async {
        // Without a limit, pages of MAX, each continuing after the last by keyset, until
        // none follow. The body may be kept only if every page was read at the same
        // generations.
        let mut query = query.clone();
        query.limit = limit.unwrap_or(MAX);
        let mut data = Vec::new();
        let mut first = None;
        let mut same = true;
        let has_more = loop {
            let page = models.list_entries(&reader, &query).await?;
            let at = (page.generation, page.slices);
            same &= *first.get_or_insert(at) == at;
            data.extend(page.items.iter().map(OpenAiModel::from));
            match page.items.last() {
                Some(last) if page.has_more && limit.is_none() => {
                    query.paging = Paging::After(After {
                        values: vec![last.resource_uri.to_string()],
                        id: last.id,
                    });
                }
                _ => break page.has_more,
            }
        };
        let body = serde_json::to_vec(&OpenAiModelList {
            object: "list",
            first_id: data.first().map(|m| m.id.clone()),
            last_id: data.last().map(|m| m.id.clone()),
            has_more,
            data,
        })
        .map_err(|e| Error::Internal(format!("cannot serialize the model list: {e}")))?;
        let (generation, slices) = first.filter(|_| same).unwrap_or_default();
        Ok((generation, slices, Bytes::from(body)))
    };
    let body = state.bodies.body(models, &reader, &query, render).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// Retrieve a usable model (OpenAI-compatible)
///
/// One model of the project by the `id` the list gives (its resource_uri), in the format of
/// OpenAI's `GET /v1/models/{model}`. A DISABLED model, another project's, or an unknown id
/// is a 404.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "openai",
    operation_id = "openai_retrieve_model",
    params(
        ("id" = String, Path, description = "The model's id as the list gives it: its resource_uri"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "The model", body = OpenAiModel),
        (status = 404, description = "No usable model of this id in this project", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "openai.model", skip_all)]
pub async fn retrieve_model(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<OpenAiModel>, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::invalid_request(format!("invalid path: {e}")))?;
    // An id that is not a resource_uri (a model's uuid included) names no model here.
    let uri = ResourceUri::parse(&id).map_err(|_| ApiError::from(Error::model_not_found(&id)))?;
    let model = state.models.get_usable(&caller.reader()?, &uri).await?;
    Ok(Json(OpenAiModel::from(&model)))
}
