//! Response bodies of the model endpoints.

use std::collections::BTreeMap;

use modelreg_core::{
    catalog::{CATALOG_FIELDS, Provenance, field_value},
    list::{CursorKeys, ListPage, ListQuery, Paging},
    model::{Mode, Model, Status},
};
use serde::Serialize;
use utoipa::ToSchema;

/// `ModelView` and its conversion, with the declared fields between `resource_uri` and the
/// record's own members.
macro_rules! model_view {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$($how:tt)*]),* $(,)?) => {
        /// A model configuration as returned by create, get and update. Credentials are never
        /// returned; `credential_fields` names the stored keys.
        #[derive(Serialize, ToSchema)]
        pub struct ModelView {
            #[schema(format = Uuid)]
            pub id: String,
            pub resource_uri: String,
            $(pub $name: $ty,)*
            pub organization_id: String,
            pub project_id: String,
            #[schema(format = DateTime)]
            pub created_at: String,
            #[schema(format = DateTime)]
            pub updated_at: String,
            /// The principal that created the model: `user:<name>` or `service:<name>`.
            pub created_by: String,
            pub updated_by: String,
            /// Deprecated alias of `created_by`.
            #[deprecated = "use created_by"]
            pub owner_id: String,
            /// Sorted key names of the stored credentials; never their values.
            pub credential_fields: Vec<String>,
            /// When a verification last ran.
            #[schema(format = DateTime)]
            pub last_verified_at: Option<String>,
            /// Where the catalogued fields' values come from.
            pub catalog: CatalogView,
        }

        #[allow(deprecated)]
        impl From<&Model> for ModelView {
            fn from(m: &Model) -> Self {
                let f = m.fields.clone();
                ModelView {
                    id: m.id.to_string(),
                    resource_uri: m.resource_uri.to_string(),
                    $($name: f.$name,)*
                    organization_id: m.scope.org.to_string(),
                    project_id: m.scope.project.to_string(),
                    created_at: m.created_at.to_string(),
                    updated_at: m.updated_at.to_string(),
                    created_by: m.created_by.clone(),
                    updated_by: m.updated_by.clone(),
                    owner_id: m.created_by.clone(),
                    credential_fields: m.credentials.fields.clone(),
                    last_verified_at: m.last_verified_at.map(|t| t.to_string()),
                    catalog: CatalogView::from(m),
                }
            }
        }
    };
}
modelreg_core::with_model_fields!(model_view);

/// A model's link to the catalog, as the API shows it (docs/catalog.md).
#[derive(Serialize, ToSchema)]
pub struct CatalogView {
    /// The catalog entry the model matched by its `litellm_model` (or `base_model`); null when
    /// none did.
    pub key: Option<String>,
    /// For each catalogued field that has a value: `catalog` when it is the catalog's, filled
    /// when the model was created or taken from a newer catalog since; `override` when a user
    /// gave it. A catalog refresh never changes an override.
    pub fields: BTreeMap<&'static str, Provenance>,
}

impl From<&Model> for CatalogView {
    fn from(m: &Model) -> Self {
        let fields = CATALOG_FIELDS
            .iter()
            .filter(|f| !field_value(&m.fields, f).is_null())
            .map(|f| {
                let p = if m.catalog.is_catalog(f) {
                    Provenance::Catalog
                } else {
                    Provenance::Override
                };
                (*f, p)
            })
            .collect();
        CatalogView {
            key: m.catalog.key.clone(),
            fields,
        }
    }
}

// A chosen few of the fields in the order a list reads best: written out, not derived from
// `with_model_fields!`.
/// A model in a list.
#[derive(Serialize, ToSchema)]
pub struct ModelSummary {
    #[schema(format = Uuid)]
    pub id: String,
    pub resource_uri: String,
    pub name: String,
    pub litellm_model: String,
    pub provider: Option<String>,
    pub mode: Option<Mode>,
    pub status: Status,
    /// Why the model has its status (extension: a list shows health beside each model).
    pub status_message: Option<String>,
    /// When a verification last ran (extension).
    #[schema(format = DateTime)]
    pub last_verified_at: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// USD per input token (extension: a list compares prices).
    pub input_cost_per_token: Option<f64>,
    /// USD per output token (extension).
    pub output_cost_per_token: Option<f64>,
    /// The context window (extension).
    pub max_input_tokens: Option<i64>,
    /// What the model can do (extension).
    pub capabilities: Vec<String>,
    pub project_id: String,
    pub created_by: String,
    /// Deprecated alias of `created_by`.
    #[deprecated = "use created_by"]
    pub owner_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[allow(deprecated)]
impl From<&Model> for ModelSummary {
    fn from(m: &Model) -> Self {
        let f = &m.fields;
        ModelSummary {
            id: m.id.to_string(),
            resource_uri: m.resource_uri.to_string(),
            name: f.name.clone(),
            litellm_model: f.litellm_model.clone(),
            provider: f.provider.clone(),
            mode: f.mode,
            status: f.status,
            status_message: f.status_message.clone(),
            last_verified_at: m.last_verified_at.map(|t| t.to_string()),
            description: f.description.clone(),
            tags: f.tags.clone(),
            input_cost_per_token: f.input_cost_per_token,
            output_cost_per_token: f.output_cost_per_token,
            max_input_tokens: f.max_input_tokens,
            capabilities: f.capabilities.clone(),
            project_id: m.scope.project.to_string(),
            created_by: m.created_by.clone(),
            owner_id: m.created_by.clone(),
            created_at: m.created_at.to_string(),
            updated_at: m.updated_at.to_string(),
        }
    }
}

/// Pagination metadata for list responses.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    /// The page number; null when the page was chosen by `cursor`.
    pub page: Option<u32>,
    pub limit: u32,
    /// Models matching the filters. When `total_items_is_estimate` is true, at least this
    /// many: a count that no maintained count answers (a search, `created_by`, two tags or
    /// more) stops at 10,000.
    pub total_items: u64,
    /// Present, and true, only when `total_items` is a floor ("10,000 or more") rather than
    /// the exact count; absent otherwise, so an exact page has the platform's shape.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_items_is_estimate: bool,
    /// ceil(total_items / limit); 0 when there are no items.
    pub total_pages: u64,
    /// Null on the last page, and in cursor mode.
    pub next_page: Option<u64>,
    /// Null on the first page, and in cursor mode.
    pub prev_page: Option<u64>,
    /// Keyset cursor for the rows after this page; null when none follow.
    pub next_cursor: Option<String>,
}

/// Paginated list response for models.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub data: Vec<ModelSummary>,
    pub pagination: Pagination,
}

impl ModelList {
    /// `cursors` seal the next page's cursor.
    pub fn new(query: &ListQuery, page: &ListPage, cursors: &CursorKeys) -> Self {
        let limit = u64::from(query.limit);
        let total_pages = page.total_items.div_ceil(limit);
        let (page_no, next_page, prev_page) = match query.paging {
            Paging::Page(p) => {
                let p64 = u64::from(p);
                // Past a capped count, whether a next page exists is whether rows follow.
                let next = (p64 < total_pages || page.total_is_estimate && page.has_more)
                    .then_some(p64 + 1);
                // Past the end, "previous" is the last page that exists.
                let prev = (p64 > 1).then(|| (p64 - 1).min(total_pages.max(1)));
                (Some(p), next, prev)
            }
            Paging::After(_) => (None, None, None),
        };
        let next_cursor = page
            .has_more
            .then(|| page.items.last().map(|m| query.cursor_after(m, cursors)))
            .flatten();
        ModelList {
            data: page.items.iter().map(ModelSummary::from).collect(),
            pagination: Pagination {
                page: page_no,
                limit: query.limit,
                total_items: page.total_items,
                total_items_is_estimate: page.total_is_estimate,
                total_pages,
                next_page,
                prev_page,
                next_cursor,
            },
        }
    }
}
