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

/// A model in the OpenAI format, with what a client needs to choose and budget it in the
/// names OpenRouter's `GET /api/v1/models` uses (the de-facto shape clients already parse):
/// `context_length`, `pricing` (USD per token, as decimal strings), `top_provider`,
/// `supported_parameters`, `architecture`. `max_output_tokens` and `capabilities` say the same
/// in modelreg's own names. A value the model does not have is absent.
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
    /// The model's display name.
    pub name: String,
    /// The most tokens a request may carry (the model's `max_input_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<i64>,
    /// The most tokens one response may hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<i64>,
    /// USD per token. Only the prices the model has.
    pub pricing: Pricing,
    pub top_provider: TopProvider,
    /// What the model can do (modelreg's names: `vision`, `function_calling`, …).
    pub capabilities: Vec<String>,
    /// The request parameters its capabilities imply, in OpenRouter's names (`tools`,
    /// `tool_choice`, `response_format`, `structured_outputs`, `reasoning`, …).
    pub supported_parameters: Vec<&'static str>,
    pub architecture: Architecture,
    /// The day the provider retires the model, `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<String>,
}

/// Prices in USD per token, as decimal strings (OpenRouter's `pricing`).
#[derive(Serialize, ToSchema, Default)]
pub struct Pricing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_read: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_cache_write: Option<String>,
}

/// The limits of the provider that serves the model (OpenRouter's `top_provider`).
#[derive(Serialize, ToSchema)]
pub struct TopProvider {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<i64>,
}

/// What goes in and out of the model (OpenRouter's `architecture`), from its capabilities.
#[derive(Serialize, ToSchema)]
pub struct Architecture {
    pub input_modalities: Vec<&'static str>,
    pub output_modalities: Vec<&'static str>,
}

/// A price as OpenRouter writes it: a decimal string, never in exponent form.
fn price(v: Option<f64>) -> Option<String> {
    v.map(|p| format!("{p}"))
}

impl From<&ModelEntry> for OpenAiModel {
    fn from(m: &ModelEntry) -> Self {
        let has = |c: &str| m.capabilities.iter().any(|x| x == c);
        let parameters = [
            ("function_calling", "tools"),
            ("tool_choice", "tool_choice"),
            ("parallel_function_calling", "parallel_tool_calls"),
            ("response_schema", "response_format"),
            ("response_schema", "structured_outputs"),
            ("reasoning", "reasoning"),
            ("web_search", "web_search_options"),
        ];
        let mut input = vec!["text"];
        for (c, modality) in [
            ("vision", "image"),
            ("pdf_input", "file"),
            ("audio_input", "audio"),
            ("video_input", "video"),
        ] {
            if has(c) {
                input.push(modality);
            }
        }
        let mut output = vec!["text"];
        if has("audio_output") {
            output.push("audio");
        }
        OpenAiModel {
            id: m.resource_uri.to_string(),
            object: "model",
            created: m.created_at.as_offset_date_time().unix_timestamp(),
            owned_by: m.provider.clone().unwrap_or_else(|| "modelreg".into()),
            name: m.name.clone(),
            context_length: m.max_input_tokens,
            max_output_tokens: m.max_output_tokens,
            pricing: Pricing {
                prompt: price(m.input_cost_per_token),
                completion: price(m.output_cost_per_token),
                input_cache_read: price(m.cache_read_cost_per_token),
                input_cache_write: price(m.cache_write_cost_per_token),
            },
            top_provider: TopProvider {
                context_length: m.max_input_tokens,
                max_completion_tokens: m.max_output_tokens,
            },
            capabilities: m.capabilities.clone(),
            supported_parameters: parameters
                .iter()
                .filter(|(c, _)| has(c))
                .map(|(_, p)| *p)
                .collect(),
            architecture: Architecture {
                input_modalities: input,
                output_modalities: output,
            },
            deprecation_date: m.deprecation_date.clone(),
        }
    }
}

impl From<&Model> for OpenAiModel {
    fn from(m: &Model) -> Self {
        OpenAiModel::from(&ModelEntry::of(m))
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
