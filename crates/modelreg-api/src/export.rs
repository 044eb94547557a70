//! `GET /assets/exports/litellm`: the project's models as a LiteLLM proxy config.

use axum::{body::Bytes, extract::State, http::header, response::IntoResponse};
use modelreg_core::{
    Error,
    list::ListParams,
    litellm::{EnvVar, export_query},
    service::Caller,
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::QueryPairs,
    openapi::json_object,
};

/// The export's query parameters: the list's filters and sort ([`ListParams`], which also
/// parses them), without its paging, and with the export's own default order.
pub struct ExportParams;

impl IntoParams for ExportParams {
    fn into_params(
        parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        const EXPORTED: [&str; 7] = [
            "search",
            "status",
            "mode",
            "tags",
            "sort",
            "created_by",
            "provider",
        ];
        ListParams::into_params(parameter_in)
            .into_iter()
            .filter(|p| EXPORTED.contains(&p.name.as_str()))
            .map(|mut p| {
                if p.name == "sort" {
                    // Worded, line break included, as the document has always said it.
                    p.description = Some(
                        "The order of `model_list`, as in the list. Default `created_at:asc` \
                         (creation order,\nso an imported file keeps its order)."
                            .into(),
                    );
                }
                p
            })
            .collect()
    }
}

/// A LiteLLM proxy configuration and the environment variables it refers to.
#[derive(Serialize, ToSchema)]
pub struct LitellmExport {
    /// The LiteLLM `config.yaml` document (`model_list`), as JSON (described by `config_schema`).
    #[schema(schema_with = config_schema)]
    pub config: serde_json::Value,
    /// Every `os.environ/` variable the config names, with the credentials that use it.
    pub env: Vec<EnvVarView>,
    /// DISABLED models matching the filters, left out.
    pub skipped_disabled: u64,
    /// Models whose stored credentials cannot be decrypted, exported without credentials.
    pub unreadable: Vec<String>,
}

/// `{"model_list": [...]}`, each entry LiteLLM's own (`model_name`, `litellm_params`,
/// `model_info`), so its keys are LiteLLM's to add to.
fn config_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::ArrayBuilder;
    json_object()
        .description(Some(
            "The LiteLLM `config.yaml` document (`model_list`), as JSON.",
        ))
        .property(
            "model_list",
            ArrayBuilder::new().items(json_object().description(Some(
                "One deployment: `model_name`, `litellm_params` and `model_info`, as LiteLLM reads them",
            ))),
        )
        .required("model_list")
        .build()
}

/// An environment variable of the export.
#[derive(Serialize, ToSchema)]
pub struct EnvVarView {
    pub name: String,
    /// `resource_uri.key` of each credential that uses it.
    pub used_by: Vec<String>,
}

impl From<EnvVar> for EnvVarView {
    fn from(v: EnvVar) -> Self {
        EnvVarView {
            name: v.name,
            used_by: v.used_by,
        }
    }
}

/// Export as a LiteLLM config
///
/// The project's models matching the filters as a LiteLLM proxy `config.yaml` (as JSON).
/// DISABLED models are left out and DEPRECATED ones are marked. Each deployment's `model_info`
/// carries the model's prices, token limits, `base_model`, capabilities (`supports_<name>`)
/// and deprecation date under LiteLLM's own names, so LiteLLM prices and limits it as modelreg
/// does. Credentials appear only as `os.environ/` references: a stored reference keeps its
/// name, a stored value gets `MODELREG_<RESOURCE_URI>_<KEY>`. No secret value is ever returned.
#[utoipa::path(
    get,
    path = "/assets/exports/litellm",
    tag = "models",
    operation_id = "export_litellm",
    params(ExportParams, crate::openapi::ProjectHeader),
    responses(
        (status = 200, description = "The configuration", body = LitellmExport),
        (status = 422, description = "Invalid query parameter", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "models.export", skip_all)]
pub async fn export_litellm(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<impl IntoResponse, ApiError> {
    let query = export_query(&pairs, &state.models.cursors())?;
    let reader = caller.reader()?;
    let models = &state.models;
    let render = || async {
        let export = models.export_litellm(&reader, &query).await?;
        let (generation, slices) = export.read_at;
        let body = serde_json::to_vec(&LitellmExport {
            config: export.config(),
            env: export.env.into_values().map(EnvVarView::from).collect(),
            skipped_disabled: export.skipped_disabled,
            unreadable: export.unreadable,
        })
        .map_err(|e| Error::Internal(format!("cannot serialize the export: {e}")))?;
        Ok((generation, slices, Bytes::from(body)))
    };
    // Kept beside `/v1/models`' bodies: its queries never ask for usable models only, which
    // every `/v1/models` key does, so the two never share a key.
    let body = state.bodies.body(models, &reader, &query, render).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
