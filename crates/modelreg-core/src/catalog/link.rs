//! What a model keeps of the catalog: the entry it was filled from, and which of its values
//! are the catalog's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ModelFields;

/// The fields the catalog fills, in the order the API shows them.
pub const CATALOG_FIELDS: [&str; 8] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_cost_per_token",
    "cache_write_cost_per_token",
    "max_input_tokens",
    "max_output_tokens",
    "capabilities",
    "deprecation_date",
];

/// A model's link to the catalog, stored with it (the `catalog` column, as JSON).
///
/// A field named in `values` holds the catalog's value, the one recorded there: it was filled
/// when the model was created (or its model string changed), or taken from a newer catalog. Any
/// other field with a value holds the user's own: an override, which no catalog refresh
/// changes. The value recorded is what "upstream changed" compares a newer catalog against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogLink {
    /// The catalog entry the model matched (`None`: none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The catalog's values the model holds, by field name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
    /// Upstream values the user chose not to take (`keep`), by field: not offered again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, Value>,
}

impl CatalogLink {
    /// The link as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a link serializes")
    }

    /// A stored link; `None` for text that is not one.
    pub fn from_json(s: &str) -> Option<CatalogLink> {
        serde_json::from_str(s).ok()
    }

    /// Whether `field` holds the catalog's value.
    pub fn is_catalog(&self, field: &str) -> bool {
        self.values.contains_key(field)
    }
}

/// Where a field's value comes from, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Filled from the catalog, and not changed since.
    Catalog,
    /// Given by a user.
    Override,
}

/// A catalogued field's value as JSON (null for none).
pub fn field_value(fields: &ModelFields, field: &str) -> Value {
    match field {
        "input_cost_per_token" => json_f64(fields.input_cost_per_token),
        "output_cost_per_token" => json_f64(fields.output_cost_per_token),
        "cache_read_cost_per_token" => json_f64(fields.cache_read_cost_per_token),
        "cache_write_cost_per_token" => json_f64(fields.cache_write_cost_per_token),
        "max_input_tokens" => fields.max_input_tokens.map_or(Value::Null, Value::from),
        "max_output_tokens" => fields.max_output_tokens.map_or(Value::Null, Value::from),
        "capabilities" if fields.capabilities.is_empty() => Value::Null,
        "capabilities" => Value::from(fields.capabilities.clone()),
        "deprecation_date" => fields
            .deprecation_date
            .clone()
            .map_or(Value::Null, Value::from),
        _ => Value::Null,
    }
}

/// Sets a catalogued field from its JSON value (null clears it). A value of the wrong type
/// (a stored link edited by hand) clears the field rather than inventing one.
pub fn set_field_value(fields: &mut ModelFields, field: &str, value: &Value) {
    let int = || value.as_i64().filter(|n| *n > 0);
    match field {
        "input_cost_per_token" => fields.input_cost_per_token = value.as_f64(),
        "output_cost_per_token" => fields.output_cost_per_token = value.as_f64(),
        "cache_read_cost_per_token" => fields.cache_read_cost_per_token = value.as_f64(),
        "cache_write_cost_per_token" => fields.cache_write_cost_per_token = value.as_f64(),
        "max_input_tokens" => fields.max_input_tokens = int(),
        "max_output_tokens" => fields.max_output_tokens = int(),
        "capabilities" => {
            fields.capabilities = value
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        }
        "deprecation_date" => fields.deprecation_date = value.as_str().map(str::to_owned),
        _ => {}
    }
}

fn json_f64(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A catalog entry as the model sees it: its key, and its value for each catalogued field it
/// has (never null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryValues {
    pub key: String,
    pub values: BTreeMap<&'static str, Value>,
}

/// A field whose catalog value changed upstream since the model took it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UpstreamChange {
    pub field: String,
    /// The model's value now (null: none).
    pub current: Value,
    /// The catalog's value now (null: the catalog no longer has one).
    pub upstream: Value,
}

impl CatalogLink {
    /// Fills a new model's catalogued fields from `entry`, except those the user gave (`given`):
    /// the link of the new model. A given value equal to the entry's is the catalog's too, so
    /// a model fetched and posted back, or imported, keeps its provenance.
    pub fn filled(fields: &mut ModelFields, given: &[&str], entry: Option<&EntryValues>) -> Self {
        let mut link = CatalogLink {
            key: entry.map(|e| e.key.clone()),
            ..CatalogLink::default()
        };
        link.take_entry(fields, given, entry, |_, _| true);
        link.record_equal(fields, given, entry);
        link
    }

    /// The link after an update from `before` to `fields`. A field the user gave a new value
    /// becomes an override, unless the value is the catalog's (`entry`: the model's entry in
    /// the catalog in force); a field sent unchanged keeps its provenance (a GET → PUT round
    /// trip changes nothing). When the model string changed (`moved` is `Some`: the entry the
    /// new one matches, if any), the catalog's fields and the empty ones follow the new entry,
    /// and overrides stay.
    pub fn updated(
        &self,
        before: &ModelFields,
        fields: &mut ModelFields,
        given: &[&str],
        moved: Option<Option<&EntryValues>>,
        entry: Option<&EntryValues>,
    ) -> Self {
        let changed: Vec<&str> = given
            .iter()
            .copied()
            .filter(|f| field_value(fields, f) != field_value(before, f))
            .collect();
        let mut link = self.clone();
        for f in &changed {
            link.values.remove(*f);
            link.kept.remove(*f);
        }
        let entry = match moved {
            Some(new_entry) => {
                link.key = new_entry.map(|e| e.key.clone());
                link.kept.clear();
                let catalog = link.values.clone();
                link.take_entry(fields, &changed, new_entry, |f, fields| {
                    catalog.contains_key(f) || field_value(fields, f).is_null()
                });
                new_entry
            }
            None => entry,
        };
        link.record_equal(fields, &changed, entry);
        link
    }

    /// Records as the catalog's each of `fields` (of `given`) whose value is the entry's.
    fn record_equal(&mut self, fields: &ModelFields, given: &[&str], entry: Option<&EntryValues>) {
        let Some(entry) = entry else {
            return;
        };
        for f in given {
            if let Some(v) = entry.values.get(f)
                && field_value(fields, f) == *v
            {
                self.values.insert((*f).to_owned(), v.clone());
                self.kept.remove(*f);
            }
        }
    }

    /// Sets each catalogued field that `entry` has and `follows` allows (skipping `given`),
    /// recording it as the catalog's; a catalog field the entry lacks is cleared.
    fn take_entry(
        &mut self,
        fields: &mut ModelFields,
        given: &[&str],
        entry: Option<&EntryValues>,
        follows: impl Fn(&str, &ModelFields) -> bool,
    ) {
        for f in CATALOG_FIELDS {
            if given.contains(&f) || !follows(f, fields) {
                continue;
            }
            match entry.and_then(|e| e.values.get(f)) {
                Some(v) => {
                    set_field_value(fields, f, v);
                    self.values.insert(f.to_owned(), v.clone());
                }
                None if self.values.remove(f).is_some() => {
                    set_field_value(fields, f, &Value::Null);
                }
                None => {}
            }
        }
    }

    /// The catalogued fields whose value in `entry` (the catalog now) differs from what the
    /// model took: a catalog field whose recorded value changed, and an empty field the
    /// catalog now fills. An override never shows, nor an upstream value the user kept away.
    pub fn upstream_changes(
        &self,
        fields: &ModelFields,
        entry: Option<&EntryValues>,
    ) -> Vec<UpstreamChange> {
        let Some(entry) = entry else {
            return Vec::new();
        };
        CATALOG_FIELDS
            .iter()
            .filter_map(|f| {
                let upstream = entry.values.get(f).cloned().unwrap_or(Value::Null);
                let current = field_value(fields, f);
                let changed = match self.values.get(*f) {
                    Some(recorded) => *recorded != upstream,
                    None => current.is_null() && !upstream.is_null(),
                };
                (changed && self.kept.get(*f) != Some(&upstream)).then(|| UpstreamChange {
                    field: (*f).to_owned(),
                    current,
                    upstream,
                })
            })
            .collect()
    }

    /// Takes the upstream values of `changes` into `fields`, as the catalog's.
    pub fn take(&mut self, fields: &mut ModelFields, changes: &[UpstreamChange]) {
        for c in changes {
            set_field_value(fields, &c.field, &c.upstream);
            self.kept.remove(&c.field);
            if c.upstream.is_null() {
                self.values.remove(&c.field);
            } else {
                self.values.insert(c.field.clone(), c.upstream.clone());
            }
        }
    }

    /// Keeps the model's values against `changes`: each becomes the user's own, and that
    /// upstream value is not offered again.
    pub fn keep(&mut self, changes: &[UpstreamChange]) {
        for c in changes {
            self.values.remove(&c.field);
            self.kept.insert(c.field.clone(), c.upstream.clone());
        }
    }
}
