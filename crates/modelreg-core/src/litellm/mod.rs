//! The LiteLLM proxy `config.yaml` mapping, both ways (docs/litellm.md).
//!
//! Export writes one `model_list` entry per model. Credentials appear only as
//! `os.environ/NAME` references: a stored reference keeps its name, a stored value gets a
//! generated one (`MODELREG_<RESOURCE_URI>_<KEY>`), and every name is listed for a
//! `.env.example`. Import reads such a file (or any real-world one) into create bodies for the
//! API, reporting what it cannot keep.

mod export;
mod import;

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
}
