//! The LiteLLM proxy `config.yaml` mapping, both ways (docs/litellm.md).
//!
//! Export writes one `model_list` entry per model. Credentials appear only as
//! `os.environ/NAME` references: a stored reference keeps its name, a stored value gets a
//! generated one (`MODELREG_<RESOURCE_URI>_<KEY>`), and every name is listed for a
//! `.env.example`. Import reads such a file (or any real-world one) into create bodies for the
//! API, reporting what it cannot keep.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::{
    model::{Mode, Model, Status},
    references::Reference,
    resource_uri::ResourceUri,
    secrets::Credentials,
    validate::infer_provider,
};

/// `model_info.id` carries the resource uri so a re-import finds the same model.
const ID: &str = "id";

/// The credentials of an entry that has none (Ollama, a local vLLM): the API requires a
/// non-empty object, and this one names no secret. Export leaves it out.
pub const KEYLESS: &str = "keyless";

/// `litellm_params` keys that map to a model field, and the field each one maps to.
const PARAM_FIELDS: [(&str, &str); 7] = [
    ("api_base", "api_base"),
    ("api_version", "api_version"),
    ("rpm", "rpm"),
    ("tpm", "tpm"),
    ("timeout", "timeout"),
    ("max_tokens", "default_max_tokens"),
    ("temperature", "default_temperature"),
];

/// `model_info` keys that map to a model field.
const INFO_FIELDS: [&str; 4] = [
    "max_input_tokens",
    "max_output_tokens",
    "description",
    "tags",
];

/// Every model field a LiteLLM entry can express, through `model_name`, `litellm_params` or
/// `model_info`: on import, the desired state of each (an absent one is cleared).
pub fn mapped_fields() -> impl Iterator<Item = &'static str> {
    ["name", "litellm_model", "provider", "mode"]
        .into_iter()
        .chain(PARAM_FIELDS.iter().map(|(_, field)| *field))
        .chain(INFO_FIELDS)
}

/// `litellm_params` keys that are credentials even when they hold a literal value. Any other
/// key whose value is an `os.environ/` reference is a credential too.
const SECRET_PARAMS: [&str; 12] = [
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_role_name",
    "aws_profile_name",
    "azure_ad_token",
    "client_secret",
    "vertex_credentials",
    "vertex_project",
    "vertex_location",
];

/// The query of an export: the list's filters, in creation order unless a sort is given, so
/// an imported file comes back in its own order.
pub fn export_query(
    pairs: &[(String, String)],
    cursors: &crate::list::CursorKeys,
) -> crate::Result<crate::list::ListQuery> {
    if pairs.iter().any(|(k, _)| k == "sort") {
        return crate::list::ListQuery::parse(pairs, cursors);
    }
    let mut pairs = pairs.to_vec();
    pairs.push(("sort".into(), "created_at:asc".into()));
    crate::list::ListQuery::parse(&pairs, cursors)
}

/// One environment variable that the exported config refers to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvVar {
    pub name: String,
    /// `resource_uri.key` of each credential that uses it.
    pub used_by: Vec<String>,
}

/// What an export produced. Its `Debug` leaves the values out.
#[derive(Default)]
pub struct Export {
    /// The `model_list` entries.
    pub entries: Vec<Value>,
    pub env: BTreeMap<String, EnvVar>,
    /// DISABLED models, left out.
    pub skipped_disabled: u64,
    /// Models whose credentials could not be opened: exported without credentials.
    pub unreadable: Vec<String>,
    /// Each variable's value, when the export was asked for values.
    values: Option<BTreeMap<String, Zeroizing<String>>>,
    /// Why a value is missing (a reference that does not resolve).
    pub unresolved: Vec<String>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("entries", &self.entries.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("skipped_disabled", &self.skipped_disabled)
            .field("unreadable", &self.unreadable)
            .field("unresolved", &self.unresolved)
            .finish_non_exhaustive()
    }
}

impl Export {
    pub fn new(with_values: bool) -> Self {
        Export {
            values: with_values.then(BTreeMap::new),
            ..Export::default()
        }
    }

    /// A `.env` file with each variable's value (an export with values only). Values are
    /// single-quoted, as dotenv readers and POSIX shells take them.
    pub fn env_file(&self) -> Option<Zeroizing<String>> {
        let values = self.values.as_ref()?;
        let mut out = Zeroizing::new(String::from(
            "# Secrets exported by `modelreg export --with-values`. Keep this file private.\n",
        ));
        for var in self.env.values() {
            let value = values.get(&var.name).map(|v| v.as_str()).unwrap_or("");
            out.push_str(&format!(
                "\n# {}\n{}='{}'\n",
                var.used_by.join(", "),
                var.name,
                value.replace('\'', "'\\''")
            ));
        }
        Some(out)
    }
    /// The LiteLLM config document.
    pub fn config(&self) -> Value {
        json!({ "model_list": self.entries })
    }

    /// A `.env.example` naming each variable, with the credentials that use it.
    pub fn env_example(&self) -> String {
        env_example(self.env.values())
    }

    /// Adds one model. `credentials` are the opened ones (`None` when they do not open);
    /// `resolved`, in an export with values, the same with their references resolved, and
    /// why any reference is not (`ReferencePolicy::resolve_each`).
    pub fn add(
        &mut self,
        model: &Model,
        credentials: Option<&Credentials>,
        resolved: Option<(Option<Credentials>, Vec<String>)>,
    ) {
        let f = &model.fields;
        if f.status == Status::Disabled {
            self.skipped_disabled += 1;
            return;
        }
        let uri = model.resource_uri.as_str();
        let mut params = Map::new();
        params.insert("model".into(), json!(f.litellm_model));
        if f.provider.is_some() && f.provider != infer_provider(&f.litellm_model) {
            params.insert("custom_llm_provider".into(), json!(f.provider));
        }
        let numbers = [
            ("api_base", f.api_base.as_ref().map(|v| json!(v))),
            ("api_version", f.api_version.as_ref().map(|v| json!(v))),
            ("rpm", f.rpm.map(|v| json!(v))),
            ("tpm", f.tpm.map(|v| json!(v))),
            ("timeout", f.timeout.map(|v| json!(v))),
            ("max_tokens", f.default_max_tokens.map(|v| json!(v))),
            ("temperature", f.default_temperature.map(|v| json!(v))),
        ];
        for (key, value) in numbers {
            if let Some(v) = value {
                params.insert(key.into(), v);
            }
        }
        // LiteLLM routes by `litellm_params.tags`; `model_info.tags` below keeps them where
        // earlier exports put them.
        if !f.tags.is_empty() {
            params.insert("tags".into(), json!(f.tags));
        }
        match credentials {
            Some(c) => {
                let map: Map<String, Value> =
                    serde_json::from_str(c.expose_json()).unwrap_or_default();
                let resolved: Option<Map<String, Value>> = match resolved {
                    Some((values, refused)) if self.values.is_some() => {
                        self.unresolved
                            .extend(refused.into_iter().map(|why| format!("{uri}: {why}")));
                        values.and_then(|r| serde_json::from_str(r.expose_json()).ok())
                    }
                    _ => None,
                };
                for (key, value) in map {
                    if key == KEYLESS {
                        continue;
                    }
                    let text = value.as_str().unwrap_or_default();
                    let name = match Reference::parse(text) {
                        Some(Reference::Env(name)) => name.to_owned(),
                        _ => env_name(uri, &key),
                    };
                    self.env
                        .entry(name.clone())
                        .or_insert_with(|| EnvVar {
                            name: name.clone(),
                            used_by: Vec::new(),
                        })
                        .used_by
                        .push(format!("{uri}.{key}"));
                    if let (Some(values), Some(v)) = (
                        self.values.as_mut(),
                        resolved.as_ref().and_then(|r| r.get(&key)),
                    ) {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        values.insert(name.clone(), Zeroizing::new(text));
                    }
                    params.insert(key, json!(format!("os.environ/{name}")));
                }
            }
            None => self.unreadable.push(uri.to_owned()),
        }
        let mut info = Map::new();
        info.insert(ID.into(), json!(uri));
        if let Some(m) = f.mode {
            info.insert("mode".into(), json!(m.as_str()));
        }
        if let Some(v) = f.max_input_tokens {
            info.insert("max_input_tokens".into(), json!(v));
        }
        if let Some(v) = f.max_output_tokens {
            info.insert("max_output_tokens".into(), json!(v));
        }
        if let Some(v) = &f.description {
            info.insert("description".into(), json!(v));
        }
        if !f.tags.is_empty() {
            info.insert("tags".into(), json!(f.tags));
        }
        if f.status == Status::Deprecated {
            info.insert("deprecated".into(), json!(true));
            if let Some(m) = &f.status_message {
                info.insert("deprecation_message".into(), json!(m));
            }
        }
        self.entries.push(json!({
            "model_name": f.name,
            "litellm_params": params,
            "model_info": info,
        }));
    }
}

/// A `.env.example` naming each variable, with the credentials that use it.
pub fn env_example<'a>(vars: impl IntoIterator<Item = &'a EnvVar>) -> String {
    let mut out = String::from(
        "# Environment variables the LiteLLM config exported by modelreg refers to.\n# Fill in each value; never commit the filled-in file.\n",
    );
    for var in vars {
        out.push_str(&format!("\n# {}\n{}=\n", var.used_by.join(", "), var.name));
    }
    out
}

/// The generated variable name of a stored credential value: `MODELREG_<URI>_<KEY>`, upper
/// case, every other character `_`.
pub fn env_name(resource_uri: &str, key: &str) -> String {
    let mut name = String::from("MODELREG_");
    for c in format!("{resource_uri}_{key}").chars() {
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    name
}

/// One `model_list` entry, read for import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportItem {
    pub resource_uri: String,
    /// The model's fields as an API body, without `credentials`.
    pub fields: Map<String, Value>,
    /// The credentials to store (references as given; `{"keyless": true}` when the entry has
    /// none, since the API requires credentials).
    pub credentials: Map<String, Value>,
    /// The status the entry asks for (`DEPRECATED`), when it asks for one.
    pub status: Option<Status>,
    /// Keys that have no place in a model, reported and not kept.
    pub dropped: Vec<String>,
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
    let mut dropped = Vec::new();
    fields.insert("name".into(), json!(name));
    fields.insert("litellm_model".into(), json!(model));
    for (key, value) in params {
        if key == "model" || key == "tags" {
            continue;
        }
        if key == "custom_llm_provider" {
            fields.insert("provider".into(), value.clone());
        } else if let Some((_, field)) = PARAM_FIELDS.iter().find(|(k, _)| k == key) {
            fields.insert((*field).into(), number_or_string(field, value));
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
            _ => dropped.push(format!("model_info.{key}")),
        }
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
        status,
        dropped,
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
        "rpm"
            | "tpm"
            | "timeout"
            | "default_max_tokens"
            | "default_temperature"
            | "max_input_tokens"
            | "max_output_tokens"
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
    fn the_mapped_fields_are_every_field_an_entry_can_hold() {
        let mut fields: Vec<&str> = mapped_fields().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "api_base",
                "api_version",
                "default_max_tokens",
                "default_temperature",
                "description",
                "litellm_model",
                "max_input_tokens",
                "max_output_tokens",
                "mode",
                "name",
                "provider",
                "rpm",
                "tags",
                "timeout",
                "tpm",
            ]
        );
    }

    #[test]
    fn env_names_are_shell_safe() {
        assert_eq!(env_name("gpt-4o", "api_key"), "MODELREG_GPT_4O_API_KEY");
        assert_eq!(env_name("a", "aws.secret-key"), "MODELREG_A_AWS_SECRET_KEY");
    }

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
            "model_info": {"mode": "rerank", "base_model": "gpt"}
        }]});
        let item = &read_config(&config).unwrap()[0];
        assert_eq!(item.fields["rpm"], json!(60));
        assert_eq!(item.credentials["api_key"], json!("sk-literal"));
        assert_eq!(
            item.dropped,
            [
                "litellm_params.weird",
                "model_info.base_model",
                "model_info.mode (\"rerank\")"
            ]
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
