//! The list query of `GET /assets/models` (SPEC §2.1): filters, sort, page or keyset paging.
//!
//! A client's parameters become a [`ListQuery`] through [`ListParams`] (`params`). A cursor is
//! opaque to clients and sealed by the server (`cursor`). A request that carries a cursor uses
//! the cursor's sort and filters, so `?cursor=…` alone fetches the next page; sort or filter
//! parameters sent beside a cursor must equal the cursor's.

mod cursor;
mod params;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Mode, Model, Status};

pub use cursor::CursorKeys;
pub use params::{ListParams, page_and_limit, parse_sort};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
pub const MAX_PAGE: u32 = i32::MAX as u32;
pub const MAX_SEARCH_LEN: usize = 255;
pub const MAX_QUERY_PARAMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    Name,
    ResourceUri,
    LitellmModel,
    Provider,
    Status,
    Mode,
    CreatedAt,
    UpdatedAt,
}

impl SortField {
    pub const ALL: [SortField; 8] = [
        SortField::Name,
        SortField::ResourceUri,
        SortField::LitellmModel,
        SortField::Provider,
        SortField::Status,
        SortField::Mode,
        SortField::CreatedAt,
        SortField::UpdatedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortField::Name => "name",
            SortField::ResourceUri => "resource_uri",
            SortField::LitellmModel => "litellm_model",
            SortField::Provider => "provider",
            SortField::Status => "status",
            SortField::Mode => "mode",
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
        }
    }

    /// The model's value for this field exactly as the store compares it: text, with a null
    /// provider or mode as the empty string (so nulls sort first in ascending order on every
    /// backend).
    pub fn value_of(self, m: &Model) -> String {
        match self {
            SortField::Name => m.fields.name.clone(),
            SortField::ResourceUri => m.resource_uri.as_str().to_owned(),
            SortField::LitellmModel => m.fields.litellm_model.clone(),
            SortField::Provider => m.fields.provider.clone().unwrap_or_default(),
            SortField::Status => m.fields.status.as_str().to_owned(),
            SortField::Mode => m.fields.mode.map(|x| x.as_str()).unwrap_or("").to_owned(),
            SortField::CreatedAt => m.created_at.to_string(),
            SortField::UpdatedAt => m.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SortKey {
    pub field: SortField,
    pub desc: bool,
}

pub fn default_sort() -> Vec<SortKey> {
    vec![SortKey {
        field: SortField::CreatedAt,
        desc: true,
    }]
}

/// Filters of the list. All of them combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Filters {
    /// Lower-cased needle, matched as a substring of the lower-cased name or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The model must have every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Leave out DISABLED models (the usable ones, as `/v1/models` lists them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usable_only: bool,
}

impl Filters {
    /// No filter at all: every model of the project matches.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// Where a keyset page starts: after the row with these sort values and this id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct After {
    pub values: Vec<String>,
    pub id: Uuid,
}

/// How the page is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Paging {
    Page(u32),
    After(After),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub paging: Paging,
    pub limit: u32,
    pub filters: Filters,
    pub sort: Vec<SortKey>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            paging: Paging::Page(1),
            limit: DEFAULT_LIMIT,
            filters: Filters::default(),
            sort: default_sort(),
        }
    }
}

/// The most rows a count visits where no maintained count answers (a search, `created_by`,
/// two tags or more): past it, a list says "at least this many"
/// (`pagination.total_items_is_estimate`). At 100,000 models a count of this many rows costs a
/// few milliseconds on either backend, where an exact count of a search matching most of a
/// project cost 130 ms (docs/performance.md, "[perf-cold]").
pub const COUNT_CAP: u64 = 10_000;

/// One page as the store returns it.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Model>,
    /// Rows matching the filters, ignoring paging.
    pub total_items: u64,
    /// Whether rows follow the last item of this page.
    pub has_more: bool,
    /// The project's generation (bumped by every write to it) in the page's own snapshot, when
    /// the store read it: the page is exactly what any read at that generation would return.
    pub generation: Option<i64>,
    /// The generation of the slices of the project that the filters select (status, mode,
    /// provider, tags), in the same snapshot, where they select some: it moves only on writes
    /// to models of those slices, so the page stays exact while it stands, whatever else is
    /// written to the project.
    pub slices: Option<i64>,
    /// Whether `total_items` is a floor rather than the count: a count that no maintained
    /// count answers stops at [`COUNT_CAP`] rows.
    pub total_is_estimate: bool,
}

/// A model as `GET /v1/models` shows it: the columns it returns (and `id`, to continue
/// after it), read without the rest of the row and its credentials.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    pub id: uuid::Uuid,
    pub resource_uri: crate::resource_uri::ResourceUri,
    pub created_at: crate::timestamp::Timestamp,
    pub provider: Option<String>,
    pub name: String,
    pub max_input_tokens: Option<i64>,
    pub max_output_tokens: Option<i64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_cost_per_token: Option<f64>,
    pub cache_write_cost_per_token: Option<f64>,
    pub capabilities: Vec<String>,
    pub deprecation_date: Option<String>,
}

impl ModelEntry {
    /// The entry of a whole model.
    pub fn of(m: &crate::model::Model) -> ModelEntry {
        let f = &m.fields;
        ModelEntry {
            id: m.id,
            resource_uri: m.resource_uri.clone(),
            created_at: m.created_at,
            provider: f.provider.clone(),
            name: f.name.clone(),
            max_input_tokens: f.max_input_tokens,
            max_output_tokens: f.max_output_tokens,
            input_cost_per_token: f.input_cost_per_token,
            output_cost_per_token: f.output_cost_per_token,
            cache_read_cost_per_token: f.cache_read_cost_per_token,
            cache_write_cost_per_token: f.cache_write_cost_per_token,
            capabilities: f.capabilities.clone(),
            deprecation_date: f.deprecation_date.clone(),
        }
    }
}

/// A page of [`ModelEntry`]s, with the generations it was read at (as in [`ListPage`]).
#[derive(Debug, Clone)]
pub struct EntryPage {
    pub items: Vec<ModelEntry>,
    pub has_more: bool,
    pub generation: Option<i64>,
    pub slices: Option<i64>,
}

impl ListQuery {
    /// The direction of the `id` tiebreaker: that of the last sort key.
    pub fn id_desc(&self) -> bool {
        self.sort.last().map(|k| k.desc).unwrap_or(true)
    }

    /// Rows to skip in page mode.
    pub fn offset(&self) -> u64 {
        match self.paging {
            Paging::Page(p) => u64::from(p - 1) * u64::from(self.limit),
            Paging::After(_) => 0,
        }
    }

    /// The keyset position just after `last` in this query's sort.
    pub fn after(&self, last: &Model) -> After {
        After {
            values: self.sort.iter().map(|k| k.field.value_of(last)).collect(),
            id: last.id,
        }
    }
}
