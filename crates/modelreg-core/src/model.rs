//! The model configuration: its enums, its validated fields, the stored record, and the
//! request bodies that create and update it.

use std::fmt;

use serde::{Deserialize, Deserializer, de::IgnoredAny};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    resource_uri::ResourceUri,
    secrets::{Credentials, SealedCredentials},
    tenant::TenantScope,
    timestamp::Timestamp,
};

/// Status of a model configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Active,
    Error,
    Deprecated,
    Disabled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Active,
        Status::Error,
        Status::Deprecated,
        Status::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Active => "ACTIVE",
            Status::Error => "ERROR",
            Status::Deprecated => "DEPRECATED",
            Status::Disabled => "DISABLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Supported model modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Chat,
    Completion,
    Embedding,
    ImageGeneration,
    AudioTranscription,
}

impl Mode {
    pub const ALL: [Mode; 5] = [
        Mode::Chat,
        Mode::Completion,
        Mode::Embedding,
        Mode::ImageGeneration,
        Mode::AudioTranscription,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Completion => "completion",
            Mode::Embedding => "embedding",
            Mode::ImageGeneration => "image_generation",
            Mode::AudioTranscription => "audio_transcription",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every writable field of a model, declared once: its name, its type, and how the store
/// keeps it (`text`, `empty_is_none` (an empty string for none), `nullable`, `json_list`).
/// Everything that lists the fields is derived from this: `ModelFields` below, the store's
/// columns, binds and row reading, and the views. Call it with the name of a macro that
/// takes the list: `with_model_fields!(my_macro)`. A new field goes here, plus a migration.
#[macro_export]
macro_rules! with_model_fields {
    ($callback:ident) => {
        $callback! {
            name: String [text],
            litellm_model: String [text],
            provider: Option<String> [empty_is_none],
            description: Option<String> [nullable],
            tags: Vec<String> [json_list],
            api_base: Option<String> [nullable],
            api_version: Option<String> [nullable],
            mode: Option<$crate::model::Mode> [empty_is_none],
            max_input_tokens: Option<i64> [nullable],
            max_output_tokens: Option<i64> [nullable],
            default_max_tokens: Option<i64> [nullable],
            rpm: Option<i64> [nullable],
            tpm: Option<i64> [nullable],
            default_temperature: Option<f64> [nullable],
            timeout: Option<f64> [nullable],
            status: $crate::model::Status [text],
            status_message: Option<String> [nullable],
        }
    };
}

macro_rules! define_model_fields {
    ($($name:ident : $ty:ty [$($how:tt)*]),* $(,)?) => {
        /// The writable, validated fields of a model: what create sets and update changes.
        #[derive(Debug, Clone, PartialEq)]
        pub struct ModelFields {
            $(pub $name: $ty,)*
        }

        impl ModelFields {
            /// The fields' names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
}
with_model_fields!(define_model_fields);

/// A stored model configuration, as the store returns it. The credentials travel sealed; only
/// the service opens them.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub id: Uuid,
    pub resource_uri: ResourceUri,
    pub scope: TenantScope,
    pub fields: ModelFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub updated_by: String,
    pub credentials: SealedCredentials,
    pub last_verified_at: Option<Timestamp>,
    /// Incremented by every write; the ETag is derived from it.
    pub version: i64,
}

impl Model {
    /// A strong entity tag that changes on every write and never repeats across a delete and
    /// a re-create (the id changes).
    pub fn etag(&self) -> String {
        etag_for(self.id, self.version)
    }
}

pub fn etag_for(id: Uuid, version: i64) -> String {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(version.to_be_bytes());
    let digest = h.finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A field of a request body that distinguishes "absent" from "null" from a value, as JSON
/// merge patch needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

/// Adds the read-only fields of the model representation to a request body: a body may carry
/// them (GET, edit, PUT) and their values are never used. (serde's `flatten` cannot be combined
/// with `deny_unknown_fields`, hence a macro.)
macro_rules! with_read_only_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($body)*
            #[schema(ignore)]
            pub id: Option<IgnoredAny>,
            #[schema(ignore)]
            pub organization_id: Option<IgnoredAny>,
            #[schema(ignore)]
            pub project_id: Option<IgnoredAny>,
            #[schema(ignore)]
            pub created_at: Option<IgnoredAny>,
            #[schema(ignore)]
            pub created_by: Option<IgnoredAny>,
            #[schema(ignore)]
            pub updated_at: Option<IgnoredAny>,
            #[schema(ignore)]
            pub updated_by: Option<IgnoredAny>,
            #[schema(ignore)]
            pub owner_id: Option<IgnoredAny>,
            #[schema(ignore)]
            pub credential_fields: Option<IgnoredAny>,
            #[schema(ignore)]
            pub last_verified_at: Option<IgnoredAny>,
        }
    };
}

with_read_only_fields! {
/// Body of `POST /assets/models`.
///
/// Read-only fields of the model representation (`id`, `organization_id`, `created_at`, …) and
/// `status`/`status_message` are accepted and ignored, so a fetched model can be posted back;
/// new models always start `PENDING`. Any other unknown field is rejected.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCreate {
    /// `^[a-z0-9-]+$`, 1–100 characters. Generated from `name` when omitted.
    #[schema(value_type = String, required = false, pattern = "^[a-z0-9-]+$", min_length = 1, max_length = 100)]
    #[serde(default)]
    pub resource_uri: Patch<String>,
    /// Display name, 1–255 characters after trimming.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    #[serde(default)]
    pub name: Patch<String>,
    /// LiteLLM model string, e.g. `openai/gpt-4o`.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 500)]
    #[serde(default)]
    pub litellm_model: Patch<String>,
    /// Inferred from the `litellm_model` prefix when omitted.
    #[schema(value_type = Option<String>, max_length = 100)]
    #[serde(default)]
    pub provider: Patch<String>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    #[serde(default)]
    pub description: Patch<String>,
    /// At most 50 tags of 1–64 characters, no commas; duplicates are removed, order is kept.
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub tags: Patch<Vec<String>>,
    /// Absolute http(s) URL of the provider endpoint.
    #[schema(value_type = Option<String>, max_length = 1000, format = "uri")]
    #[serde(default)]
    pub api_base: Patch<String>,
    #[schema(value_type = Option<String>, max_length = 50)]
    #[serde(default)]
    pub api_version: Patch<String>,
    #[schema(value_type = Option<Mode>)]
    #[serde(default)]
    pub mode: Patch<Mode>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub max_input_tokens: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub max_output_tokens: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub default_max_tokens: Patch<i64>,
    /// Requests per minute.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub rpm: Patch<i64>,
    /// Tokens per minute.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub tpm: Patch<i64>,
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 9.99)]
    #[serde(default)]
    pub default_temperature: Patch<f64>,
    /// Seconds, greater than 0 and at most 86400.
    #[schema(value_type = Option<f64>, exclusive_minimum = 0, maximum = 86400)]
    #[serde(default)]
    pub timeout: Patch<f64>,
    /// Write-only provider credentials: a non-empty JSON object, at most 64 KiB serialized.
    /// Stored encrypted and never returned.
    #[schema(value_type = Credentials, required = true, write_only)]
    #[serde(default)]
    pub credentials: Patch<Credentials>,
    #[schema(ignore)]
    pub status: Option<IgnoredAny>,
    #[schema(ignore)]
    pub status_message: Option<IgnoredAny>,
}
}

with_read_only_fields! {
/// Body of `PUT`/`PATCH /assets/models/{resource_uri}`: a JSON merge patch.
///
/// Absent fields are unchanged, `null` clears a nullable field, `tags` replaces the list and
/// `credentials` replaces the stored credentials wholesale. Read-only fields of the model
/// representation are accepted and ignored; `resource_uri`, when sent, must be the model's.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelUpdate {
    /// Must equal the model's resource_uri when sent (it is immutable).
    #[schema(value_type = String, required = false)]
    #[serde(default)]
    pub resource_uri: Patch<String>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 255)]
    #[serde(default)]
    pub name: Patch<String>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 500)]
    #[serde(default)]
    pub litellm_model: Patch<String>,
    #[schema(value_type = Option<String>, max_length = 100)]
    #[serde(default)]
    pub provider: Patch<String>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    #[serde(default)]
    pub description: Patch<String>,
    #[schema(value_type = Option<Vec<String>>)]
    #[serde(default)]
    pub tags: Patch<Vec<String>>,
    #[schema(value_type = Option<String>, max_length = 1000, format = "uri")]
    #[serde(default)]
    pub api_base: Patch<String>,
    #[schema(value_type = Option<String>, max_length = 50)]
    #[serde(default)]
    pub api_version: Patch<String>,
    #[schema(value_type = Option<Mode>)]
    #[serde(default)]
    pub mode: Patch<Mode>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub max_input_tokens: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub max_output_tokens: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub default_max_tokens: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub rpm: Patch<i64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647)]
    #[serde(default)]
    pub tpm: Patch<i64>,
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 9.99)]
    #[serde(default)]
    pub default_temperature: Patch<f64>,
    #[schema(value_type = Option<f64>, exclusive_minimum = 0, maximum = 86400)]
    #[serde(default)]
    pub timeout: Patch<f64>,
    #[schema(value_type = Status, required = false)]
    #[serde(default)]
    pub status: Patch<Status>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    #[serde(default)]
    pub status_message: Patch<String>,
    /// Replaces the stored credentials wholesale.
    #[schema(value_type = Credentials, required = false, write_only)]
    #[serde(default)]
    pub credentials: Patch<Credentials>,
}
}
