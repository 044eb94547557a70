//! Export: models as a LiteLLM `model_list`, credentials only as `os.environ/` references.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::{ID, KEYLESS};
use crate::{
    model::{Model, Status},
    references::Reference,
    secrets::Credentials,
    validate::infer_provider,
};

/// The query of an export: the list's filters, in creation order unless a sort is given, so
/// an imported file comes back in its own order.
pub fn export_query(
    pairs: &[(String, String)],
    cursors: &crate::list::CursorKeys,
) -> crate::Result<crate::list::ListQuery> {
    let mut params = crate::list::ListParams::from_pairs(pairs)?;
    params.sort.get_or_insert_with(|| "created_at:asc".into());
    params.into_query(cursors)
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
    /// The generations every page of it was read at (`ListPage::generation` and
    /// `ListPage::slices`), when they were the same for all: the export is then exactly what
    /// any read at those generations gives, and may be kept as a list page is.
    pub read_at: (Option<i64>, Option<i64>),
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
        // LiteLLM prices and limits an Azure-style deployment by its `base_model`.
        if let Some(v) = &f.base_model {
            info.insert("base_model".into(), json!(v));
        }
        // Prices, limits, capabilities and the deprecation date, under LiteLLM's names.
        super::catalog::export(f, &model.catalog, &mut info);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_shell_safe() {
        assert_eq!(env_name("gpt-4o", "api_key"), "MODELREG_GPT_4O_API_KEY");
        assert_eq!(env_name("a", "aws.secret-key"), "MODELREG_A_AWS_SECRET_KEY");
    }
}
