//! `/assets/catalog`: the model catalog in force (docs/catalog.md), and the project's models
//! whose catalog values changed upstream.

use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
    http::HeaderMap,
};
use modelreg_core::{
    Error, FieldError,
    catalog::{Capability, CatalogEntry, CatalogFilter, CatalogSource, UpstreamChange},
    service::{Caller, Settle, UpstreamQuery},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{JsonBody, ModelPath, Preconditions, QueryPairs},
    models::{entity_headers, view::ModelView},
};

/// The most entries a page holds.
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;
/// The highest page asked for (past the catalog's end a page is empty).
const MAX_PAGE: usize = 100_000;

/// Query parameters of `GET /assets/catalog` (documentation; parsed by hand).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CatalogParams {
    /// Case-insensitive substring of the entry's key (`%`, `_` and `\` are literal).
    search: Option<String>,
    /// LiteLLM's provider of the entry, exactly (`openai`, `anthropic`, `azure`, …).
    provider: Option<String>,
    /// The entry's mode, exactly (`chat`, `embedding`, …).
    mode: Option<String>,
    /// Comma-separated capabilities; an entry must have all of them.
    capability: Option<String>,
    /// Only the entry a model with this `litellm_model` takes its values from (none or one), as
    /// a create would find it: for a form that shows the catalog's values before saving.
    litellm_model: Option<String>,
    /// With `litellm_model`: the model's `base_model`.
    base_model: Option<String>,
    /// 1-based page number.
    #[param(minimum = 1, maximum = 100000, default = 1)]
    page: Option<u32>,
    /// Entries per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
}

/// A page of the catalog.
#[derive(Serialize, ToSchema)]
pub struct CatalogPage {
    /// The catalog in force: where it comes from and when it was made.
    pub source: CatalogSource,
    pub data: Vec<CatalogEntry>,
    pub pagination: CatalogPagination,
}

/// Where a page of the catalog is.
#[derive(Serialize, ToSchema)]
pub struct CatalogPagination {
    pub page: usize,
    pub limit: usize,
    pub total_items: usize,
    pub total_pages: usize,
    pub next_page: Option<usize>,
    pub prev_page: Option<usize>,
}

/// One catalog entry, with the catalog it is from.
#[derive(Serialize, ToSchema)]
pub struct CatalogEntryView {
    pub source: CatalogSource,
    #[serde(flatten)]
    pub entry: CatalogEntry,
}

fn query_error(name: &str, kind: &'static str, msg: impl Into<String>) -> Error {
    Error::field(&["query", name], kind, msg)
}

/// The first non-empty value of a query parameter, trimmed.
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The filter and page of a query string; every bad parameter reported at once.
fn parse(pairs: &[(String, String)]) -> Result<(CatalogFilter, usize, usize), Error> {
    let mut errors = Vec::new();
    let first = |name: &str| first(pairs, name);
    let mut number = |name: &str, default: usize, max: usize| match first(name) {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(query_error(
                    name,
                    "range",
                    format!("must be a whole number from 1 to {max}"),
                ));
                default
            }
        },
    };
    let page = number("page", 1, MAX_PAGE);
    let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT);
    let mut text = |name: &str| {
        let v = first(name)?;
        if v.chars().count() > 200 || v.chars().any(char::is_control) {
            errors.push(query_error(
                name,
                "string",
                "must be at most 200 characters, without control characters",
            ));
            return None;
        }
        Some(v.to_owned())
    };
    let search = text("search");
    let provider = text("provider");
    let mode = text("mode");
    let mut capabilities = Vec::new();
    for c in first("capability").unwrap_or("").split(',') {
        let c = c.trim();
        if c.is_empty() {
            continue;
        }
        match Capability::parse(c) {
            Some(c) => capabilities.push(c),
            None => errors.push(query_error(
                "capability",
                "capability",
                format!(
                    "holds a name that is not a capability; use any of {}",
                    Capability::ALL.map(Capability::as_str).join(", ")
                ),
            )),
        }
    }
    if !errors.is_empty() {
        let fields = errors
            .into_iter()
            .flat_map(|e| match e {
                Error::Validation(v) => v,
                _ => Vec::new(),
            })
            .collect();
        return Err(Error::Validation(fields));
    }
    let filter = CatalogFilter {
        search,
        provider,
        mode,
        capabilities,
    };
    Ok((filter, page, limit))
}

/// Search the model catalog
///
/// The catalog in force (bundled, or the newest cost map an operator loaded with `modelreg
/// catalog refresh`), filtered and paged, ordered by key.
#[utoipa::path(
    get,
    path = "/assets/catalog",
    tag = "catalog",
    operation_id = "list_catalog",
    params(CatalogParams, crate::openapi::ProjectHeader),
    responses(
        (status = 200, description = "A page of catalog entries", body = CatalogPage),
        (status = 422, description = "Invalid query parameters", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "catalog.list", skip_all)]
pub async fn list_catalog(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<CatalogPage>, ApiError> {
    caller.reader()?;
    let (filter, page, limit) = parse(&pairs)?;
    let catalog = state.models.catalog().await?;
    let (entries, total) = match first(&pairs, "litellm_model") {
        // The entry a create would fill from, if it also passes the other filters.
        Some(model) => {
            let found: Vec<&CatalogEntry> = catalog
                .lookup(model, first(&pairs, "base_model"))
                .filter(|e| {
                    let (hit, _) = catalog.search(&filter, 0, catalog.len());
                    hit.iter().any(|h| h.key == e.key)
                })
                .into_iter()
                .collect();
            let total = found.len();
            (found.into_iter().skip((page - 1) * limit).collect(), total)
        }
        None => catalog.search(&filter, (page - 1) * limit, limit),
    };
    let total_pages = total.div_ceil(limit);
    Ok(Json(CatalogPage {
        source: catalog.source().clone(),
        data: entries.into_iter().cloned().collect(),
        pagination: CatalogPagination {
            page,
            limit,
            total_items: total,
            total_pages,
            next_page: (page < total_pages).then_some(page + 1),
            prev_page: (page > 1).then_some(page - 1),
        },
    }))
}

/// Get a catalog entry
///
/// `{key}` is the entry's key as the catalog spells it, with a slash percent-encoded:
/// `GET /assets/catalog/azure%2Fgpt-4o` is the entry `azure/gpt-4o`.
#[utoipa::path(
    get,
    path = "/assets/catalog/{key}",
    tag = "catalog",
    operation_id = "get_catalog_entry",
    params(
        ("key" = String, Path, description = "The entry's key, e.g. `gpt-4o`, or `azure%2Fgpt-4o` for `azure/gpt-4o`"),
        crate::openapi::ProjectHeader,
    ),
    responses(
        (status = 200, description = "The entry", body = CatalogEntryView),
        (status = 404, description = "No such entry", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "catalog.get", skip_all)]
pub async fn get_catalog_entry(
    State(state): State<AppState>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<CatalogEntryView>, ApiError> {
    caller.reader()?;
    let Path(key) = key.map_err(|e| ApiError::invalid_request(format!("invalid path: {e}")))?;
    let catalog = state.models.catalog().await?;
    let entry = catalog.get(&key).ok_or_else(|| {
        Error::NotFound(format!(
            "no catalog entry '{}'",
            key.chars().take(200).collect::<String>()
        ))
    })?;
    Ok(Json(CatalogEntryView {
        source: catalog.source().clone(),
        entry: entry.clone(),
    }))
}

/// A model whose catalog values changed upstream.
#[derive(Serialize, ToSchema)]
pub struct ModelUpstream {
    pub resource_uri: String,
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    /// The catalog entry it is linked to.
    pub catalog_key: Option<String>,
    /// The model's ETag, for `If-Match` on take or keep.
    pub etag: String,
    pub changes: Vec<UpstreamChange>,
}

/// The project's models whose catalog values changed upstream.
#[derive(Serialize, ToSchema)]
pub struct UpstreamChanges {
    /// The catalog compared against: the one in force.
    pub source: CatalogSource,
    pub data: Vec<ModelUpstream>,
    /// Pass as `after` for the next page; null when no model follows.
    pub next_after: Option<String>,
}

/// Query parameters of `GET /assets/catalog/changes` (documentation; parsed by hand).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ChangesParams {
    /// Only these models: comma-separated resource_uris, at most 100 (a list page's rows).
    resource_uri: Option<String>,
    /// Models after this resource_uri (the previous page's `next_after`).
    after: Option<String>,
    /// Models with changes per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// The most models `resource_uri` may name.
const MAX_URIS: usize = 100;

fn changes_query(pairs: &[(String, String)]) -> Result<UpstreamQuery, Error> {
    let mut errors = Vec::new();
    let limit = match first(pairs, "limit") {
        None => 100,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    &["query", "limit"],
                    "range",
                    "must be a whole number from 1 to 1000",
                ));
                100
            }
        },
    };
    let uris = first(pairs, "resource_uri").map(|v| {
        v.split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect::<Vec<_>>()
    });
    if uris.as_ref().is_some_and(|u| u.len() > MAX_URIS) {
        errors.push(FieldError::new(
            &["query", "resource_uri"],
            "too_many",
            format!("names at most {MAX_URIS} models"),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(UpstreamQuery {
        after: first(pairs, "after").map(str::to_owned),
        uris,
        limit,
    })
}

/// Models whose catalog values changed upstream
///
/// After a catalog refresh, each model of the project that holds a catalog value the new
/// catalog changed (or lacks one the catalog now has), with the fields that differ, by
/// resource_uri, a page at a time (`after`, `limit`), or for the models `resource_uri` names
/// (a list page's badges). Overrides never appear; nor does an upstream value already kept.
/// Take or keep each with `POST /assets/catalog/changes/{resource_uri}`.
#[utoipa::path(
    get,
    path = "/assets/catalog/changes",
    tag = "catalog",
    operation_id = "list_catalog_changes",
    params(ChangesParams, crate::openapi::ProjectHeader),
    responses(
        (status = 200, description = "Models with upstream changes", body = UpstreamChanges),
        (status = 422, description = "Invalid query parameters", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "catalog.changes", skip_all)]
pub async fn list_catalog_changes(
    State(state): State<AppState>,
    caller: Caller,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<UpstreamChanges>, ApiError> {
    let reader = caller.reader()?;
    let query = changes_query(&pairs)?;
    let catalog = state.models.catalog().await?;
    let (changed, next_after) = state.models.upstream_changes(&reader, &query).await?;
    Ok(Json(UpstreamChanges {
        source: catalog.source().clone(),
        data: changed
            .into_iter()
            .map(|(m, changes)| ModelUpstream {
                resource_uri: m.resource_uri.to_string(),
                id: m.id.to_string(),
                name: m.fields.name.clone(),
                catalog_key: m.catalog.key.clone(),
                etag: m.etag(),
                changes,
            })
            .collect(),
        next_after,
    }))
}

/// Take or keep upstream changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleBody {
    /// `take` sets the fields to the catalog's new values, still marked as the catalog's;
    /// `keep` leaves the model's values, which become its own (overrides), and stops offering
    /// those upstream values.
    pub action: SettleAction,
    /// Only these fields (default: every field that changed).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum SettleAction {
    Take,
    Keep,
}

/// Take or keep a model's upstream changes
///
/// One write with its audit event (an update whose changes show the fields and the catalog
/// link). `If-Match` makes it conditional. A model with no upstream change is returned as it
/// is.
#[utoipa::path(
    post,
    path = "/assets/catalog/changes/{resource_uri}",
    tag = "catalog",
    operation_id = "settle_catalog_change",
    params(
        ("resource_uri" = String, Path, description = "The model's resource_uri or id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the model's ETag matches"),
        crate::openapi::ProjectHeader,
    ),
    request_body(content = SettleBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The model after it", body = ModelView,
            headers(("ETag" = String, description = "Entity tag of the model"))),
        (status = 404, description = "No such model in this project", body = ErrorBody),
        (status = 412, description = "If-Match did not match", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "catalog.settle", skip_all)]
pub async fn settle_catalog_change(
    State(state): State<AppState>,
    caller: Caller,
    ModelPath(key): ModelPath,
    pre: Preconditions,
    body: JsonBody,
) -> Result<(HeaderMap, Json<ModelView>), ApiError> {
    let writer = caller.writer()?;
    let body: SettleBody = body.parse()?;
    let how = match body.action {
        SettleAction::Take => Settle::Take,
        SettleAction::Keep => Settle::Keep,
    };
    let model = state
        .models
        .settle_upstream(
            &writer,
            &key,
            how,
            body.fields.as_deref(),
            pre.if_match.as_ref(),
        )
        .await?;
    Ok((entity_headers(&model), Json(ModelView::from(&model))))
}
