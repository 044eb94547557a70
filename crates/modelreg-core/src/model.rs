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

/// Every writable field of a model, declared once. Everything that lists the fields is derived
/// from this: `ModelFields` below, the request bodies `ModelCreate` and `ModelUpdate`, the
/// store's columns, binds and row reading, the views and the client's field order. Call it with
/// the name of a macro that takes the list: `with_model_fields!(my_macro)`. A new field goes
/// here, plus a migration and its rule in `validate`.
///
/// Each entry is `/// doc` `name: Type [storage; create; schema]`:
/// - storage, how the store keeps it: `text`, `empty_is_none` (an empty string for none, so
///   that it sorts first on every backend), `nullable`, `json_list`;
/// - create, what the create body does with it: `required`, `optional`, or `ignored` (the
///   registry sets it: a new model starts `PENDING`);
/// - schema, the OpenAPI facts both request bodies document, as `#[schema(...)]` items.
///
/// The doc comment describes the field in the create body's schema.
#[macro_export]
macro_rules! with_model_fields {
    ($callback:ident) => {
        $callback! {
            /// Display name, 1–255 characters after trimming.
            name: String [text; required; min_length = 1, max_length = 255],
            /// LiteLLM model string, e.g. `openai/gpt-4o`.
            litellm_model: String [text; required; min_length = 1, max_length = 500],
            /// Inferred from the `litellm_model` prefix when omitted.
            provider: Option<String> [empty_is_none; optional; max_length = 100],
            description: Option<String> [nullable; optional; max_length = 1000],
            /// At most 50 tags of 1–64 characters, no commas; duplicates are removed, order is kept.
            tags: Vec<String> [json_list; optional; nullable],
            /// Absolute http(s) URL of the provider endpoint.
            api_base: Option<String> [nullable; optional; max_length = 1000, format = "uri"],
            api_version: Option<String> [nullable; optional; max_length = 50],
            mode: Option<$crate::model::Mode> [empty_is_none; optional;],
            max_input_tokens: Option<i64> [nullable; optional; minimum = 1, maximum = 2147483647],
            max_output_tokens: Option<i64> [nullable; optional; minimum = 1, maximum = 2147483647],
            /// The catalog entry to read prices and limits from when `litellm_model` names a
            /// deployment (Azure style), e.g. `azure/gpt-4o`.
            base_model: Option<String> [nullable; optional; max_length = 500],
            /// USD per input token. From the catalog when omitted (`catalog` says which).
            input_cost_per_token: Option<f64> [nullable; optional; minimum = 0, maximum = 1],
            /// USD per output token. From the catalog when omitted.
            output_cost_per_token: Option<f64> [nullable; optional; minimum = 0, maximum = 1],
            /// USD per input token read from the provider's prompt cache. From the catalog when
            /// omitted.
            cache_read_cost_per_token: Option<f64> [nullable; optional; minimum = 0, maximum = 1],
            /// USD per input token written to the provider's prompt cache. From the catalog when
            /// omitted.
            cache_write_cost_per_token: Option<f64> [nullable; optional; minimum = 0, maximum = 1],
            /// What the model can do, from a closed set (`vision`, `function_calling`, …); kept
            /// in the set's order, without duplicates. From the catalog when omitted.
            capabilities: Vec<String> [json_list; optional; nullable],
            /// The day the provider retires the model, `YYYY-MM-DD`. From the catalog when
            /// omitted.
            deprecation_date: Option<String> [nullable; optional; format = Date],
            default_max_tokens: Option<i64> [nullable; optional; minimum = 1, maximum = 2147483647],
            /// Requests per minute.
            rpm: Option<i64> [nullable; optional; minimum = 1, maximum = 2147483647],
            /// Tokens per minute.
            tpm: Option<i64> [nullable; optional; minimum = 1, maximum = 2147483647],
            default_temperature: Option<f64> [nullable; optional; minimum = 0, maximum = 9.99],
            /// Seconds, greater than 0 and at most 86400.
            timeout: Option<f64> [nullable; optional; exclusive_minimum = 0, maximum = 86400],
            status: $crate::model::Status [text; ignored;],
            status_message: Option<String> [nullable; ignored; max_length = 1000],
        }
    };
}

macro_rules! define_model_fields {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$($how:tt)*]),* $(,)?) => {
        /// The writable, validated fields of a model: what create sets and update changes.
        #[derive(Debug, Clone, PartialEq)]
        pub struct ModelFields {
            $($(#[$doc])* pub $name: $ty,)*
        }

        impl ModelFields {
            /// The fields' names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
}
with_model_fields!(define_model_fields);

impl ModelFields {
    /// A model with only the required fields: `PENDING`, everything else empty (what tests,
    /// seeds and fixtures start from, setting what they need over it).
    pub fn new(name: &str, litellm_model: &str) -> ModelFields {
        ModelFields {
            name: name.into(),
            litellm_model: litellm_model.into(),
            provider: None,
            description: None,
            tags: Vec::new(),
            api_base: None,
            api_version: None,
            mode: None,
            max_input_tokens: None,
            max_output_tokens: None,
            base_model: None,
            input_cost_per_token: None,
            output_cost_per_token: None,
            cache_read_cost_per_token: None,
            cache_write_cost_per_token: None,
            capabilities: Vec::new(),
            deprecation_date: None,
            default_max_tokens: None,
            rpm: None,
            tpm: None,
            default_temperature: None,
            timeout: None,
            status: Status::Pending,
            status_message: None,
        }
    }
}

/// What the request bodies and patches make of a field's type. A nullable field (`Option<T>`) is
/// sent as a `T` (a body's `Patch` has its own null) and changed by a `Patch<T>` (null clears
/// it); any other is sent as itself and changed by an `Option` (none leaves it).
pub trait FieldType: Clone {
    type Value;
    type Change: Default + fmt::Debug;
    /// The field after `change`.
    fn changed(&self, change: &Self::Change) -> Self;
}

impl<T: Clone + fmt::Debug> FieldType for Option<T> {
    type Value = T;
    type Change = Patch<T>;
    fn changed(&self, change: &Patch<T>) -> Self {
        match change {
            Patch::Absent => self.clone(),
            Patch::Null => None,
            Patch::Value(v) => Some(v.clone()),
        }
    }
}

macro_rules! non_null_field_type {
    ($($ty:ty),*) => {$(
        impl FieldType for $ty {
            type Value = Self;
            type Change = Option<Self>;
            fn changed(&self, change: &Option<Self>) -> Self {
                change.clone().unwrap_or_else(|| self.clone())
            }
        }
    )*};
}
non_null_field_type!(String, Vec<String>, Status);

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
    /// The catalog entry it was filled from, and which values are the catalog's.
    pub catalog: crate::catalog::CatalogLink,
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
            #[schema(ignore)]
            pub catalog: Option<IgnoredAny>,
        }
    };
}

/// `ModelCreate`, one declared field at a time by what create does with it (a macro cannot
/// choose attributes per field otherwise). The fields collect in the first brackets, those create
/// ignores in the second: they follow `credentials`, where serde's list of the expected fields
/// (in an unknown field's message) has always had them.
macro_rules! model_create {
    ([$($done:tt)*] [$($ignored:tt)*]) => {
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
            $($done)*
            /// Write-only provider credentials: a non-empty JSON object, at most 64 KiB serialized.
            /// Stored encrypted and never returned.
            #[schema(value_type = Credentials, required = true, write_only)]
            #[serde(default)]
            pub credentials: Patch<Credentials>,
            $($ignored)*
        }
        }
    };
    (
        [$($done:tt)*] [$($ignored:tt)*]
        $(#[$doc:meta])* $name:ident : $ty:ty [$how:ident; required; $($schema:tt)*], $($rest:tt)*
    ) => {
        model_create! { [$($done)*
            $(#[$doc])*
            #[schema(value_type = $ty, required = true, $($schema)*)]
            #[serde(default)]
            pub $name: Patch<<$ty as FieldType>::Value>,
        ] [$($ignored)*] $($rest)* }
    };
    (
        [$($done:tt)*] [$($ignored:tt)*]
        $(#[$doc:meta])* $name:ident : $ty:ty [$how:ident; optional; $($schema:tt)*], $($rest:tt)*
    ) => {
        model_create! { [$($done)*
            $(#[$doc])*
            #[schema(value_type = $ty, $($schema)*)]
            #[serde(default)]
            pub $name: Patch<<$ty as FieldType>::Value>,
        ] [$($ignored)*] $($rest)* }
    };
    (
        [$($done:tt)*] [$($ignored:tt)*]
        $(#[$doc:meta])* $name:ident : $ty:ty [$how:ident; ignored; $($schema:tt)*], $($rest:tt)*
    ) => {
        model_create! { [$($done)*] [$($ignored)*
            #[schema(ignore)]
            pub $name: Option<IgnoredAny>,
        ] $($rest)* }
    };
    ($($fields:tt)*) => {
        model_create! { [] [] $($fields)* }
    };
}
with_model_fields!(model_create);

/// `ModelUpdate`: every field may be sent, none is required.
macro_rules! model_update {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$how:ident; $create:ident; $($schema:tt)*]),* $(,)?) => {
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
            $(
                #[schema(value_type = $ty, required = false, $($schema)*)]
                #[serde(default)]
                pub $name: Patch<<$ty as FieldType>::Value>,
            )*
            /// Replaces the stored credentials wholesale.
            #[schema(value_type = Credentials, required = false, write_only)]
            #[serde(default)]
            pub credentials: Patch<Credentials>,
        }
        }
    };
}
with_model_fields!(model_update);
