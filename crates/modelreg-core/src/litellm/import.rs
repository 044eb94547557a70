//! Import: a LiteLLM config (ours or any real-world one) read into create bodies for the API,
//! with what has no place in a model reported.

use serde_json::{Map, Value, json};

use super::{
    ID, INFO_FIELDS, KEYLESS, PARAM_FIELDS, SECRET_PARAMS,
    catalog::{CatalogValues, Read},
};
use crate::{
    model::{Mode, Status},
    references::Reference,
    resource_uri::ResourceUri,
};

/// One `model_list` entry, read for import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub resource_uri: String,
    /// The model's fields as an API body, without `credentials` and the catalogued fields.
    pub fields: Map<String, Value>,
    /// What the entry says of the catalogued fields (prices, token limits, capabilities, the
    /// deprecation date): sent or left to the catalog once the catalog's values are known
    /// ([`CatalogValues::wanted`]).
    pub catalog: CatalogValues,
    /// The credentials to store (references as given; `{"keyless": true}` when the entry has
    /// none, since the API requires credentials).
    pub credentials: Map<String, Value>,
    /// The status the entry asks for (`DEPRECATED`), when it asks for one.
    pub status: Option<Status>,
    /// Keys that have no place in a model, reported and not kept.
    pub dropped: Vec<String>,
    /// Values that cannot be read as their key means them (a `supports_*` flag that is not a
    /// boolean): the entry is refused, as the server refuses a bad value.
    pub invalid: Vec<String>,
}

/// Reads a LiteLLM config into import items, in file order. Entries that cannot be imported
/// are errors naming their position; resource uris that repeat get `-2`, `-3`, … in order, so
/// a re-import of the same file maps every entry to the same model.
pub fn read_config(config: &Value) -> Result<Vec<ImportItem>, String> {
    let list = config
        .get("model_list")
        .ok_or("the file has no `model_list`")?
        .as_array()
        .ok_or("`model_list` must be a list")?;
    let mut used = std::collections::HashSet::new();
    let mut items = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let mut item = read_entry(entry).map_err(|e| format!("model_list[{i}]: {e}"))?;
        let explicit = entry
            .pointer("/model_info/id")
            .and_then(Value::as_str)
            .is_some_and(|id| id == item.resource_uri);
        if explicit && used.contains(&item.resource_uri) {
            return Err(format!(
                "model_list[{i}]: model_info.id '{}' is used by an earlier entry",
                item.resource_uri
            ));
        }
        if let Ok(base) = ResourceUri::parse(&item.resource_uri) {
            let mut n = 1;
            while used.contains(&item.resource_uri) {
                n += 1;
                item.resource_uri = base.with_suffix(n).as_str().to_owned();
            }
        }
        used.insert(item.resource_uri.clone());
        items.push(item);
    }
    Ok(items)
}

fn read_entry(entry: &Value) -> Result<ImportItem, String> {
    let entry = entry.as_object().ok_or("must be a mapping")?;
    let name = entry
        .get("model_name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or("needs a `model_name` string")?;
    let empty = Map::new();
    let params = match entry.get("litellm_params") {
        Some(Value::Object(m)) => m,
        _ => return Err("needs a `litellm_params` mapping".into()),
    };
    let info = match entry.get("model_info") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err("`model_info` must be a mapping".into()),
    };
    let model = params
        .get("model")
        .and_then(Value::as_str)
        .ok_or("needs `litellm_params.model`")?;

    let mut fields = Map::new();
    let mut credentials = Map::new();
    let mut catalog = CatalogValues::default();
    let mut dropped = Vec::new();
    let mut invalid = Vec::new();
    // LiteLLM reads `litellm_params.base_model` when `model_info` has none.
    let mut param_base_model = None;
    fields.insert("name".into(), json!(name));
    fields.insert("litellm_model".into(), json!(model));
    for (key, value) in params {
        if key == "model" || key == "tags" {
            continue;
        }
        // LiteLLM's custom pricing.
        if catalog.read_param(key, value) {
            continue;
        }
        if key == "custom_llm_provider" {
            fields.insert("provider".into(), value.clone());
        } else if let Some((_, field)) = PARAM_FIELDS.iter().find(|(k, _)| k == key) {
            fields.insert((*field).into(), number_or_string(field, value));
        } else if key == "base_model" {
            param_base_model = Some(value.clone());
        } else if SECRET_PARAMS.contains(&key.as_str())
            || value
                .as_str()
                .is_some_and(|s| matches!(Reference::parse(s), Some(Reference::Env(_))))
        {
            credentials.insert(key.clone(), value.clone());
        } else {
            dropped.push(format!("litellm_params.{key}"));
        }
    }
    if credentials.is_empty() {
        credentials.insert(KEYLESS.into(), json!(true));
    }
    let mut status = None;
    for (key, value) in info {
        match key.as_str() {
            ID => {}
            "mode" => match value.as_str().and_then(Mode::parse) {
                Some(m) => {
                    fields.insert("mode".into(), json!(m.as_str()));
                }
                None => dropped.push(format!("model_info.mode ({value})")),
            },
            "deprecated" => {
                if value.as_bool() == Some(true) {
                    status = Some(Status::Deprecated);
                }
            }
            "deprecation_message" => {
                fields.insert("status_message".into(), value.clone());
            }
            "tags" => {}
            k if INFO_FIELDS.contains(&k) => {
                fields.insert(k.into(), number_or_string(k, value));
            }
            _ => match catalog.read_info(key, value) {
                Read::Kept => {}
                Read::Other => dropped.push(format!("model_info.{key}")),
                Read::Invalid(why) => invalid.push(why),
            },
        }
    }
    if fields.get("base_model").is_some_and(Value::is_null) {
        fields.remove("base_model");
    }
    if let Some(base) = param_base_model.filter(|v| !v.is_null()) {
        fields.entry("base_model").or_insert(base);
    }
    if status.is_none() {
        fields.remove("status_message");
    }
    if let Some(tags) = merge_tags([params.get("tags"), info.get("tags")]) {
        fields.insert("tags".into(), tags);
    }
    let resource_uri = info
        .get(ID)
        .and_then(Value::as_str)
        .filter(|id| ResourceUri::parse(id).is_ok())
        .map(str::to_owned)
        .unwrap_or_else(|| ResourceUri::from_name(name).as_str().to_owned());
    Ok(ImportItem {
        resource_uri,
        fields,
        credentials,
        catalog,
        status,
        dropped,
        invalid,
    })
}

/// The model's tags from `litellm_params.tags` (LiteLLM's tag routing) and `model_info.tags`,
/// in that order, each once. A value that is not a list is passed on as it is, so validation
/// names it as the real run would.
fn merge_tags(sources: [Option<&Value>; 2]) -> Option<Value> {
    let present: Vec<&Value> = sources
        .into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .collect();
    if let Some(not_a_list) = present.iter().find(|v| !v.is_array()) {
        return Some((*not_a_list).clone());
    }
    let mut tags: Vec<Value> = Vec::new();
    for tag in present.iter().filter_map(|v| v.as_array()).flatten() {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    (!present.is_empty()).then_some(Value::Array(tags))
}

/// YAML configs often quote numbers (`rpm: "60"`); integer fields take them as numbers.
fn number_or_string(field: &str, value: &Value) -> Value {
    let numeric = matches!(
        field,
        "rpm" | "tpm" | "timeout" | "default_max_tokens" | "default_temperature"
    );
    match value.as_str() {
        Some(s) if numeric => s
            .trim()
            .parse::<i64>()
            .map(|n| json!(n))
            .or_else(|_| s.trim().parse::<f64>().map(|x| json!(x)))
            .unwrap_or_else(|_| value.clone()),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_model_names_get_suffixes_in_file_order() {
        let config = json!({"model_list": [
            {"model_name": "gpt-4o", "litellm_params": {"model": "azure/a", "api_key": "os.environ/A"}},
            {"model_name": "gpt-4o", "litellm_params": {"model": "azure/b", "api_key": "os.environ/B"}},
            {"model_name": "llama", "litellm_params": {"model": "ollama/llama3", "api_base": "http://h:11434"}},
            {"model_name": "GPT 4o 2", "litellm_params": {"model": "openai/c"}},
        ]});
        let items = read_config(&config).unwrap();
        let uris: Vec<_> = items.iter().map(|i| i.resource_uri.as_str()).collect();
        assert_eq!(uris, ["gpt-4o", "gpt-4o-2", "llama", "gpt-4o-2-2"]);
        assert_eq!(
            items[2].credentials,
            *json!({"keyless": true}).as_object().unwrap()
        );
    }

    #[test]
    fn unknown_keys_are_reported_and_quoted_numbers_read() {
        let config = json!({"model_list": [{
            "model_name": "x",
            "litellm_params": {"model": "openai/x", "rpm": "60", "weird": 1, "api_key": "sk-literal"},
            "model_info": {"mode": "rerank", "base_model": "gpt", "supports_native_streaming": true,
                           "supports_vision": "yes"}
        }]});
        let item = &read_config(&config).unwrap()[0];
        assert_eq!(item.fields["rpm"], json!(60));
        assert_eq!(item.fields["base_model"], json!("gpt"));
        assert_eq!(item.credentials["api_key"], json!("sk-literal"));
        assert_eq!(
            item.dropped,
            [
                "litellm_params.weird",
                "model_info.mode (\"rerank\")",
                "model_info.supports_native_streaming",
            ]
        );
        assert_eq!(
            item.invalid,
            ["model_info.supports_vision: must be true or false (got \"yes\")"]
        );
    }

    #[test]
    fn litellm_params_tags_are_the_model_tags() {
        let config = json!({"model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/a", "tags": ["free", "eu"]}},
            {"model_name": "b", "litellm_params": {"model": "openai/b", "tags": ["free", "eu"]},
             "model_info": {"tags": ["eu", "prod", "free"]}},
            {"model_name": "c", "litellm_params": {"model": "openai/c"}, "model_info": {"tags": ["prod"]}},
            {"model_name": "d", "litellm_params": {"model": "openai/d", "tags": "free"},
             "model_info": {"tags": ["prod"]}},
            {"model_name": "e", "litellm_params": {"model": "openai/e", "tags": null}},
        ]});
        let items = read_config(&config).unwrap();
        let tags: Vec<Option<&Value>> = items.iter().map(|i| i.fields.get("tags")).collect();
        assert_eq!(
            tags,
            [
                Some(&json!(["free", "eu"])),
                Some(&json!(["free", "eu", "prod"])),
                Some(&json!(["prod"])),
                // Not a list: passed on as it is, so validation names it.
                Some(&json!("free")),
                None,
            ]
        );
        assert!(items.iter().all(|i| i.dropped.is_empty()), "{items:?}");
    }

    #[test]
    fn prices_limits_and_base_model_are_read_under_litellms_names() {
        let config = json!({"model_list": [
            {"model_name": "eu", "litellm_params": {"model": "azure/eu", "base_model": "azure/gpt-4o",
              "input_cost_per_token": "0.000003"},
             "model_info": {"base_model": "gpt-4o", "output_cost_per_token": 1e-5,
              "max_input_tokens": 128000, "supports_vision": true, "deprecation_date": "2026-01-31"}},
            {"model_name": "us", "litellm_params": {"model": "azure/us", "base_model": "azure/gpt-4o"},
             "model_info": {"base_model": null}},
        ]});
        let items = read_config(&config).unwrap();
        assert_eq!(
            items[0].fields["base_model"],
            json!("gpt-4o"),
            "model_info first"
        );
        assert_eq!(
            items[1].fields["base_model"],
            json!("azure/gpt-4o"),
            "then litellm_params, as LiteLLM reads it"
        );
        let c = &items[0].catalog;
        assert_eq!(c.values["input_cost_per_token"], json!(3e-6));
        assert_eq!(c.values["output_cost_per_token"], json!(1e-5));
        assert_eq!(c.values["max_input_tokens"], json!(128000));
        assert_eq!(c.values["deprecation_date"], json!("2026-01-31"));
        assert_eq!(c.flags.len(), 1);
        assert!(
            items
                .iter()
                .all(|i| i.dropped.is_empty() && i.invalid.is_empty())
        );
        // None of them is in the body: the catalog decides which to send.
        for field in crate::catalog::CATALOG_FIELDS {
            assert!(!items[0].fields.contains_key(field), "{field}");
        }
    }

    #[test]
    fn a_repeated_explicit_id_is_an_error() {
        let config = json!({"model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/a"}, "model_info": {"id": "same"}},
            {"model_name": "b", "litellm_params": {"model": "openai/b"}, "model_info": {"id": "same"}},
        ]});
        let err = read_config(&config).unwrap_err();
        assert!(
            err.contains("model_list[1]") && err.contains("same"),
            "{err}"
        );
    }

    #[test]
    fn malformed_entries_name_their_position() {
        for (config, want) in [
            (json!({}), "no `model_list`"),
            (json!({"model_list": {}}), "must be a list"),
            (
                json!({"model_list": [1]}),
                "model_list[0]: must be a mapping",
            ),
            (
                json!({"model_list": [{"model_name": "a"}]}),
                "model_list[0]: needs a `litellm_params` mapping",
            ),
            (
                json!({"model_list": [{"model_name": "a", "litellm_params": {}}]}),
                "needs `litellm_params.model`",
            ),
        ] {
            let err = read_config(&config).unwrap_err();
            assert!(err.contains(want), "{err} / {want}");
        }
    }
}
