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

use crate::{
    catalog::Capability,
    model::{Mode, Model, Status},
};

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
    InputCostPerToken,
    MaxInputTokens,
}

/// How a sort field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    /// Text, by bytes; never missing (a missing provider or mode is the empty string).
    Text,
    /// A whole number, or none.
    Integer,
    /// A number, or none.
    Real,
}

/// A sort value as a cursor carries it, read for its field's [`SortType`]. A number that is
/// missing sorts before every number: first in ascending order and last in descending order,
/// as an empty provider or mode does, on every backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SortValue<'a> {
    Text(&'a str),
    Integer(Option<i64>),
    Real(Option<f64>),
}

impl SortField {
    pub const ALL: [SortField; 10] = [
        SortField::Name,
        SortField::ResourceUri,
        SortField::LitellmModel,
        SortField::Provider,
        SortField::Status,
        SortField::Mode,
        SortField::CreatedAt,
        SortField::UpdatedAt,
        SortField::InputCostPerToken,
        SortField::MaxInputTokens,
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
            SortField::InputCostPerToken => "input_cost_per_token",
            SortField::MaxInputTokens => "max_input_tokens",
        }
    }

    pub fn sort_type(self) -> SortType {
        match self {
            SortField::InputCostPerToken => SortType::Real,
            SortField::MaxInputTokens => SortType::Integer,
            _ => SortType::Text,
        }
    }

    /// A value of [`SortField::value_of`] read back for this field; `None` if it is not one
    /// (a number field's value is its decimal text, or empty for none).
    pub fn parse_value(self, v: &str) -> Option<SortValue<'_>> {
        match self.sort_type() {
            SortType::Text => Some(SortValue::Text(v)),
            SortType::Integer if v.is_empty() => Some(SortValue::Integer(None)),
            SortType::Integer => v.parse().ok().map(|n| SortValue::Integer(Some(n))),
            SortType::Real if v.is_empty() => Some(SortValue::Real(None)),
            // Not NaN, which no backend orders as a number (and SQLite stores as NULL).
            SortType::Real => v
                .parse::<f64>()
                .ok()
                .filter(|x| !x.is_nan())
                .map(|x| SortValue::Real(Some(x))),
        }
    }

    /// A cursor's value for this field: as [`SortField::parse_value`] reads it, and a number
    /// that does not read as none (a cursor's values are held to `parse_value` when it is
    /// opened, so only a value the server wrote gets here).
    pub fn cursor_value(self, v: &str) -> SortValue<'_> {
        self.parse_value(v).unwrap_or(match self.sort_type() {
            SortType::Text => SortValue::Text(v),
            SortType::Integer => SortValue::Integer(None),
            SortType::Real => SortValue::Real(None),
        })
    }

    /// The model's value for this field exactly as the store compares it, as text: a null
    /// provider or mode as the empty string (so nulls sort first in ascending order on every
    /// backend); a number in decimal (the shortest text that reads back as the same number),
    /// or the empty string for none.
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
            SortField::InputCostPerToken => m
                .fields
                .input_cost_per_token
                .map(|c| c.to_string())
                .unwrap_or_default(),
            SortField::MaxInputTokens => m
                .fields
                .max_input_tokens
                .map(|n| n.to_string())
                .unwrap_or_default(),
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
    /// The model must have every one of these capabilities (in the set's order, without
    /// duplicates, so that one question has one key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    /// The model's `max_input_tokens` is at least this (a model without one does not match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_input_tokens: Option<i64>,
    /// The model's `input_cost_per_token` is at most this (a model without one does not
    /// match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_cost: Option<Price>,
}

/// A price per token in USD as a filter holds it: finite and not negative. Compared and hashed
/// by its bits (it is part of a list's key in the page cache), with -0 read as 0.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Price(f64);

impl Price {
    pub fn new(v: f64) -> Option<Price> {
        // `+ 0.0` turns -0 into 0, so that the two are one key.
        (v.is_finite() && v >= 0.0).then_some(Price(v + 0.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Price {
    type Error = &'static str;
    fn try_from(v: f64) -> Result<Price, &'static str> {
        Price::new(v).ok_or("a price is finite and not negative")
    }
}

impl From<Price> for f64 {
    fn from(p: Price) -> f64 {
        p.0
    }
}

impl PartialEq for Price {
    fn eq(&self, other: &Price) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Price {}

impl std::hash::Hash for Price {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
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
/// two tags or more, a capability, a token or price bound): past it, a list says "at least this many"
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
