//! The LiteLLM proxy `config.yaml` mapping, both ways (docs/litellm.md).
//!
//! Export writes one `model_list` entry per model. Credentials appear only as
//! `os.environ/NAME` references: a stored reference keeps its name, a stored value gets a
//! generated one (`MODELREG_<RESOURCE_URI>_<KEY>`), and every name is listed for a
//! `.env.example`. Import reads such a file (or any real-world one) into create bodies for the
//! API, reporting what it cannot keep. Prices, token limits, capabilities and the deprecation
//! date travel in `model_info` under LiteLLM's own names (`catalog`).

mod catalog;
mod export;
mod import;

pub use catalog::{CatalogValues, Wanted, entry_values_of, is_empty, same_value};
pub use export::{EnvVar, Export, env_example, env_name, export_query};
pub use import::{ImportItem, read_config};

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

/// `model_info` keys that map to a model field of the same name. The catalogued fields
/// (prices, token limits, …) are `catalog::CATALOG_INFO`.
const INFO_FIELDS: [&str; 3] = ["base_model", "description", "tags"];

/// Every model field a LiteLLM entry can express, through `model_name`, `litellm_params` or
/// `model_info`, but the catalogued ones: on import, the desired state of each (an absent one
/// is cleared). A catalogued field the entry leaves out is the catalog's instead
/// ([`CatalogValues::wanted`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_field_has_one_place() {
        // The mapped fields, the catalogued ones, and the ones LiteLLM has no place for.
        let catalogued = crate::catalog::CATALOG_FIELDS;
        let elsewhere = ["status", "status_message"];
        let mut all: Vec<&str> = mapped_fields().chain(catalogued).chain(elsewhere).collect();
        all.sort();
        let mut names = crate::model::ModelFields::NAMES.to_vec();
        names.sort();
        assert_eq!(all, names);
        for (_, field) in catalog::CATALOG_INFO {
            assert!(catalogued.contains(&field), "{field}");
        }
    }

    #[test]
    fn the_mapped_fields_are_every_field_an_entry_can_hold() {
        let mut fields: Vec<&str> = mapped_fields().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "api_base",
                "api_version",
                "base_model",
                "default_max_tokens",
                "default_temperature",
                "description",
                "litellm_model",
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
}
