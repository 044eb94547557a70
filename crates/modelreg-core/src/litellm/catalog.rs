//! The catalogued fields (prices, token limits, capabilities, deprecation date) in a LiteLLM
//! entry's `model_info`, both ways, and what an import asks of each so that a value equal to
//! the catalog's stays the catalog's (docs/litellm.md, "Prices, limits and capabilities").

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::{
    catalog::{CATALOG_FIELDS, Capability, CatalogLink, EntryValues, field_value},
    model::ModelFields,
};

/// The `model_info` key of each catalogued field but `capabilities`, LiteLLM's own name for
/// it (its cost map's, which its Router reads from a deployment's `model_info`), and the field.
pub(super) const CATALOG_INFO: [(&str, &str); 7] = [
    ("input_cost_per_token", "input_cost_per_token"),
    ("output_cost_per_token", "output_cost_per_token"),
    ("cache_read_input_token_cost", "cache_read_cost_per_token"),
    (
        "cache_creation_input_token_cost",
        "cache_write_cost_per_token",
    ),
    ("max_input_tokens", "max_input_tokens"),
    ("max_output_tokens", "max_output_tokens"),
    ("deprecation_date", "deprecation_date"),
];

/// The prices LiteLLM's custom pricing documentation puts in `litellm_params`. LiteLLM copies
/// them onto the deployment's `model_info` (`Deployment.__init__`), over what is there, so on
/// import they win over `model_info`'s.
pub(super) const PRICE_PARAMS: [&str; 4] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
];

/// A capability is the `model_info` flag `supports_<name>`, as in LiteLLM's cost map.
const FLAG_PREFIX: &str = "supports_";

fn is_price(field: &str) -> bool {
    field.ends_with("_cost_per_token")
}

/// Writes the model's catalogued fields into `info` (an entry's `model_info`) under LiteLLM's
/// names. Each capability is `supports_<name>: true`. Capabilities that are the model's own
/// (an override) are written in full, the ones it lacks as `false`: LiteLLM merges a
/// deployment's `model_info` over its own cost map, which would otherwise add back a
/// capability the model was set not to have, and so would an import.
pub(super) fn export(fields: &ModelFields, link: &CatalogLink, info: &mut Map<String, Value>) {
    for (key, field) in CATALOG_INFO {
        let value = field_value(fields, field);
        if !value.is_null() {
            info.insert(key.into(), value);
        }
    }
    let own = !link.is_catalog("capabilities") && !fields.capabilities.is_empty();
    for c in Capability::ALL {
        let has = fields.capabilities.iter().any(|name| name == c.as_str());
        if has || own {
            info.insert(format!("{FLAG_PREFIX}{c}"), json!(has));
        }
    }
}

/// What an entry says of the catalogued fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogValues {
    /// The catalogued fields but `capabilities` that the entry gives, by field name: numbers
    /// written as strings read as numbers, dates trimmed, anything else as written (for the
    /// server to refuse, as it refuses any bad value).
    pub values: BTreeMap<&'static str, Value>,
    /// The `supports_<name>` flags the entry states, for the capabilities modelreg knows.
    pub flags: BTreeMap<Capability, bool>,
    /// The prices read from `litellm_params`, which `model_info` does not change.
    from_params: Vec<&'static str>,
}

/// How a `model_info` or `litellm_params` key was read.
pub(super) enum Read {
    /// A catalogued value or flag, kept.
    Kept,
    /// Not a catalogued key (a `supports_*` flag of a capability modelreg does not know is
    /// not one either).
    Other,
    /// A flag that is not a boolean: the entry cannot be imported as written.
    Invalid(String),
}

impl CatalogValues {
    /// Reads a `model_info` key.
    pub(super) fn read_info(&mut self, key: &str, value: &Value) -> Read {
        if let Some((_, field)) = CATALOG_INFO.iter().find(|(k, _)| *k == key) {
            if !self.from_params.contains(field) {
                self.set(field, value);
            }
            return Read::Kept;
        }
        let Some(name) = key.strip_prefix(FLAG_PREFIX) else {
            return Read::Other;
        };
        let Some(capability) = Capability::parse(name) else {
            return Read::Other;
        };
        match value {
            Value::Bool(b) => {
                self.flags.insert(capability, *b);
                Read::Kept
            }
            // LiteLLM's "not set": the cost map's flag stands.
            Value::Null => Read::Kept,
            other => Read::Invalid(format!(
                "model_info.{key}: must be true or false (got {})",
                short(other)
            )),
        }
    }

    /// Reads a `litellm_params` key; whether it was a price (LiteLLM's custom pricing), which
    /// wins over `model_info`'s whichever comes first.
    pub(super) fn read_param(&mut self, key: &str, value: &Value) -> bool {
        match CATALOG_INFO.iter().find(|(k, _)| *k == key) {
            Some((_, field)) if PRICE_PARAMS.contains(&key) => {
                // A null one is not set: LiteLLM then keeps `model_info`'s.
                if !value.is_null() {
                    self.set(field, value);
                    self.from_params.push(field);
                }
                true
            }
            _ => false,
        }
    }

    fn set(&mut self, field: &'static str, value: &Value) {
        // Null is LiteLLM's "not set", as if the key were absent.
        if !value.is_null() {
            self.values.insert(field, normalized(field, value));
        }
    }

    /// What the entry asks of each catalogued field, in [`CATALOG_FIELDS`] order, given the
    /// catalog's values for the model it describes (`entry`: the entry a create would fill
    /// from, `None` when there is none).
    ///
    /// A field the entry leaves out (or sets to null, LiteLLM's "not set") is the catalog's:
    /// LiteLLM too takes it from its cost map then. A field it gives is the catalog's when its
    /// value is the catalog's, and the model's own (an override) otherwise. Capabilities are
    /// the catalog's, with each stated flag adding or removing one, as LiteLLM merges the
    /// flags of `model_info` over its cost map.
    pub fn wanted(&self, entry: Option<&EntryValues>) -> Vec<(&'static str, Wanted)> {
        let catalog = |field: &str| entry.and_then(|e| e.values.get(field)).cloned();
        CATALOG_FIELDS
            .iter()
            .map(|&field| {
                let from_catalog = catalog(field);
                let wanted = if field == "capabilities" {
                    let listed: Vec<&str> = from_catalog
                        .as_ref()
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let has = |c: &Capability| match self.flags.get(c) {
                        Some(flag) => *flag,
                        None => listed.contains(&c.as_str()),
                    };
                    let value: Vec<&str> = Capability::ALL
                        .iter()
                        .filter(|c| has(c))
                        .map(|c| c.as_str())
                        .collect();
                    Wanted {
                        value: json!(value),
                        catalog: from_catalog.unwrap_or_else(|| json!([])),
                    }
                } else {
                    let from_catalog = from_catalog.unwrap_or(Value::Null);
                    Wanted {
                        value: self
                            .values
                            .get(field)
                            .cloned()
                            .unwrap_or_else(|| from_catalog.clone()),
                        catalog: from_catalog,
                    }
                };
                (field, wanted)
            })
            .collect()
    }
}

/// One catalogued field as an import wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// The value (null: none; capabilities are a list, empty for none).
    pub value: Value,
    /// The catalog's value for the model (null or `[]` when it has none).
    pub catalog: Value,
}

impl Wanted {
    /// Whether the value is the catalog's, so that it is left for the catalog to fill.
    pub fn is_catalog(&self) -> bool {
        same_value(&self.value, &self.catalog)
    }

    /// Whether it is no value at all.
    pub fn is_empty(&self) -> bool {
        is_empty(&self.value)
    }
}

/// Two field values are the same: numbers by value (`128000` and `128000.0`), the rest
/// exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// No value: null, or an empty list (capabilities).
pub fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(Vec::is_empty)
}

/// A catalogued value as the API takes it: a number written as a string is the number (YAML
/// configs often quote them), a date is trimmed. Anything else is kept as written, so the
/// server names what is wrong with it, as for any other field.
fn normalized(field: &str, value: &Value) -> Value {
    let Some(s) = value.as_str() else {
        return value.clone();
    };
    let s = s.trim();
    if field == "deprecation_date" {
        return json!(s);
    }
    let number = if is_price(field) {
        s.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .and_then(serde_json::Number::from_f64)
    } else {
        s.parse::<i64>().ok().map(serde_json::Number::from)
    };
    number.map_or_else(|| value.clone(), Value::Number)
}

/// A value for a message: at most 64 characters of it.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The catalog entry `GET /assets/catalog?litellm_model=…` returns (a `CatalogEntry` as JSON),
/// as a model takes its values: the catalogued fields it has, never null, capabilities only
/// when there are some ([`crate::catalog::entry_values`], which the API's entry holds already
/// filtered).
pub fn entry_values_of(entry: &Value) -> Option<EntryValues> {
    let key = entry.get("key")?.as_str()?.to_owned();
    let values = CATALOG_FIELDS
        .iter()
        .filter_map(|&field| {
            let value = entry.get(field).filter(|v| !is_empty(v))?;
            Some((field, value.clone()))
        })
        .collect();
    Some(EntryValues { key, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, CatalogFilter, entry_values};

    fn entry(values: Value) -> EntryValues {
        entry_values_of(&values).expect("an entry")
    }

    #[test]
    fn an_entry_from_the_api_is_what_a_create_fills_from() {
        let catalog = Catalog::bundled();
        let (all, total) = catalog.search(&CatalogFilter::default(), 0, catalog.len());
        assert_eq!(all.len(), total);
        for e in all {
            let json = serde_json::to_value(e).unwrap();
            assert_eq!(entry_values_of(&json), Some(entry_values(e)), "{}", e.key);
        }
    }

    #[test]
    fn the_export_writes_litellm_keys() {
        let catalog = Catalog::bundled();
        let e = catalog.get("gpt-4o").expect("gpt-4o is in the catalog");
        let values = entry_values(e);
        let mut fields = ModelFields::new("m", "openai/gpt-4o");
        let link = CatalogLink::filled(&mut fields, &[], Some(&values));
        let mut info = Map::new();
        export(&fields, &link, &mut info);
        assert_eq!(info["input_cost_per_token"], json!(e.input_cost_per_token));
        assert_eq!(
            info["cache_read_input_token_cost"],
            json!(e.cache_read_cost_per_token)
        );
        assert_eq!(info["max_output_tokens"], json!(e.max_output_tokens));
        assert_eq!(info["supports_vision"], json!(true));
        // The catalog's capabilities: only the ones it has, as LiteLLM's cost map writes them.
        assert!(info.values().all(|v| v != &json!(false)), "{info:?}");
        assert!(!info.contains_key("cache_write_cost_per_token"));

        // The model's own capabilities: every one stated.
        let mut own = fields.clone();
        own.capabilities = vec!["vision".into()];
        let mut link = link.clone();
        link.values.remove("capabilities");
        let mut info = Map::new();
        export(&own, &link, &mut info);
        let flags: Vec<(&String, &Value)> = info
            .iter()
            .filter(|(k, _)| k.starts_with("supports_"))
            .collect();
        assert_eq!(flags.len(), Capability::ALL.len());
        assert_eq!(info["supports_vision"], json!(true));
        assert_eq!(info["supports_function_calling"], json!(false));
    }

    fn read(info: Value, params: Value) -> (CatalogValues, Vec<String>) {
        let mut values = CatalogValues::default();
        let mut problems = Vec::new();
        for (k, v) in params.as_object().unwrap() {
            values.read_param(k, v);
        }
        for (k, v) in info.as_object().unwrap() {
            match values.read_info(k, v) {
                Read::Invalid(why) => problems.push(why),
                Read::Other => problems.push(format!("no place for {k}")),
                Read::Kept => {}
            }
        }
        (values, problems)
    }

    #[test]
    fn the_import_reads_litellm_keys_from_both_places() {
        let (values, problems) = read(
            json!({
                "input_cost_per_token": 1e-6, "output_cost_per_token": "0.000004",
                "cache_read_input_token_cost": 5e-7, "max_input_tokens": " 128000 ",
                "max_output_tokens": 16384, "deprecation_date": " 2026-03-01 ",
                "supports_vision": true, "supports_tool_choice": false,
                "supports_function_calling": null, "supports_native_streaming": true,
                "supports_reasoning": "yes", "mode": "chat",
            }),
            // litellm_params' custom pricing wins, as in LiteLLM.
            json!({"input_cost_per_token": 2e-6, "max_input_tokens": 1}),
        );
        assert_eq!(
            values.values,
            BTreeMap::from([
                ("input_cost_per_token", json!(2e-6)),
                ("output_cost_per_token", json!(4e-6)),
                ("cache_read_cost_per_token", json!(5e-7)),
                ("max_input_tokens", json!(128000)),
                ("max_output_tokens", json!(16384)),
                ("deprecation_date", json!("2026-03-01")),
            ])
        );
        assert_eq!(
            values.flags,
            BTreeMap::from([(Capability::Vision, true), (Capability::ToolChoice, false)])
        );
        assert_eq!(
            problems,
            [
                "no place for mode",
                "no place for supports_native_streaming",
                "model_info.supports_reasoning: must be true or false (got \"yes\")",
            ]
        );
        // Wrong types are kept as written, for the server to refuse.
        let (values, _) = read(
            json!({"input_cost_per_token": "free", "max_input_tokens": 1.5, "deprecation_date": 20260301}),
            json!({}),
        );
        assert_eq!(values.values["input_cost_per_token"], json!("free"));
        assert_eq!(values.values["max_input_tokens"], json!(1.5));
        assert_eq!(values.values["deprecation_date"], json!(20260301));
    }

    #[test]
    fn a_value_equal_to_the_catalogs_is_the_catalogs() {
        let catalog = entry(json!({
            "key": "gpt-x", "input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
            "max_input_tokens": 128000, "capabilities": ["vision", "function_calling"],
        }));
        let (values, _) = read(
            json!({
                "input_cost_per_token": 2.5e-6, "output_cost_per_token": 2e-5,
                "max_input_tokens": 128000.0, "max_output_tokens": 4096,
                "supports_function_calling": false, "supports_reasoning": true,
            }),
            json!({}),
        );
        let wanted: BTreeMap<&str, Wanted> = values.wanted(Some(&catalog)).into_iter().collect();
        let is_catalog = |f: &str| wanted[f].is_catalog();
        assert!(is_catalog("input_cost_per_token"));
        assert!(is_catalog("max_input_tokens"), "128000.0 is 128000");
        assert!(!is_catalog("output_cost_per_token"));
        assert_eq!(wanted["output_cost_per_token"].value, json!(2e-5));
        assert!(!is_catalog("max_output_tokens"), "the catalog has none");
        // Left out: the catalog's, whatever it is (none here).
        assert!(is_catalog("cache_read_cost_per_token"));
        assert!(wanted["cache_read_cost_per_token"].is_empty());
        // The catalog's capabilities, one removed and one added: the model's own.
        assert_eq!(wanted["capabilities"].value, json!(["vision", "reasoning"]));
        assert!(!is_catalog("capabilities"));

        // No flags at all: the catalog's capabilities.
        let wanted = CatalogValues::default().wanted(Some(&catalog));
        let caps = &wanted.iter().find(|(f, _)| *f == "capabilities").unwrap().1;
        assert!(caps.is_catalog());
        assert_eq!(caps.value, json!(["vision", "function_calling"]));
        // No catalog entry: every value given is the model's own.
        let (values, _) = read(json!({"input_cost_per_token": 0}), json!({}));
        let wanted = values.wanted(None);
        assert!(!wanted[0].1.is_catalog());
        assert!(
            wanted[1..]
                .iter()
                .all(|(_, w)| w.is_catalog() && w.is_empty())
        );
    }

    #[test]
    fn export_then_import_is_the_same_values() {
        let catalog = Catalog::bundled();
        let values = entry_values(catalog.get("gpt-4o").unwrap());
        let mut fields = ModelFields::new("m", "openai/gpt-4o");
        let mut link = CatalogLink::filled(&mut fields, &[], Some(&values));
        // Two overrides: a price and the capabilities.
        let before = fields.clone();
        fields.output_cost_per_token = Some(1.2345e-5);
        fields.capabilities = vec!["vision".into(), "reasoning".into()];
        link = link.updated(
            &before,
            &mut fields,
            &["output_cost_per_token", "capabilities"],
            None,
            Some(&values),
        );
        assert!(!link.is_catalog("output_cost_per_token"));
        let mut info = Map::new();
        export(&fields, &link, &mut info);
        let (read_back, problems) = read(Value::Object(info), json!({}));
        assert!(problems.is_empty(), "{problems:?}");
        for (field, wanted) in read_back.wanted(Some(&values)) {
            let value = field_value(&fields, field);
            let value = if field == "capabilities" && value.is_null() {
                json!([])
            } else {
                value
            };
            assert!(same_value(&wanted.value, &value), "{field}: {wanted:?}");
            assert_eq!(
                wanted.is_catalog(),
                link.is_catalog(field) || wanted.is_empty(),
                "{field}: provenance"
            );
        }
    }
}
