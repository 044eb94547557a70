//! Turns request bodies into validated domain values (SPEC §1, §2.2). Every broken rule is
//! collected, so one 422 names every bad field.

use serde::de::DeserializeOwned;

use crate::{
    catalog::Capability,
    error::{Error, FieldError},
    model::{FieldType, ModelCreate, ModelFields, ModelUpdate, Patch, Status},
    resource_uri::ResourceUri,
    secrets::Credentials,
};

/// A JSON body as the request type `T`, as the API reads it. A body of the wrong shape (not an
/// object, a wrong type, an unknown field) is a validation error that names the field; the
/// message never quotes the value, so a secret sent in the wrong field is not echoed back.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    if !value.is_object() {
        return Err(not_an_object());
    }
    first_error(&value).map_err(|e| Error::Validation(vec![e]))
}

/// The most errors `from_json_all` reports: enough for any body of a real client, and a bound
/// on the work a body of many bad fields can cause (each one costs a parse of the body).
const MAX_REPORTED: usize = 25;

/// Like `from_json`, but reports every invalid field at once, as docs/api.md promises: a field
/// that does not deserialize is reported and left out, and the rest parsed again; when any
/// failed, `rules` (the domain's validation) runs on what did parse, and its errors for the
/// other fields join them. At most `MAX_REPORTED` errors are reported.
pub fn from_json_all<T: DeserializeOwned>(
    mut value: serde_json::Value,
    rules: impl FnOnce(T) -> Vec<FieldError>,
) -> Result<T, Error> {
    if !value.is_object() {
        return Err(not_an_object());
    }
    let mut errors: Vec<FieldError> = Vec::new();
    while errors.len() < MAX_REPORTED {
        match first_error::<T>(&value) {
            Ok(parsed) if errors.is_empty() => return Ok(parsed),
            Ok(parsed) => {
                let reported: Vec<String> = errors.iter().map(|e| e.loc[1].clone()).collect();
                errors.extend(
                    rules(parsed)
                        .into_iter()
                        .filter(|e| e.loc.get(1).is_none_or(|f| !reported.contains(f))),
                );
                break;
            }
            Err(e) => {
                let field = e.loc.get(1).cloned();
                errors.push(e);
                // Each round leaves out the field that failed, so the loop ends.
                let removed = field.and_then(|f| value.as_object_mut()?.remove(&f));
                if removed.is_none() {
                    break;
                }
            }
        }
    }
    errors.truncate(MAX_REPORTED);
    Err(Error::Validation(errors))
}

fn not_an_object() -> Error {
    Error::field(
        &["body"],
        "model_type",
        "the request body must be a JSON object",
    )
}

/// `value` as a `T`, or its first error, named by its place in the body. Read in place: a
/// body is never copied for it.
fn first_error<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        use serde_path_to_error::Segment;
        let mut loc = vec!["body".to_owned()];
        loc.extend(e.path().iter().filter_map(|seg| match seg {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        }));
        let inner = without_literals(&e.into_inner().to_string());
        if loc.len() == 1
            && let Some(field) = unknown_field(&inner)
        {
            loc.push(field);
        }
        let (kind, msg) = if inner.starts_with("unknown field") {
            ("extra_forbidden", inner)
        } else if inner.starts_with("invalid type: floating") && inner.contains("i64") {
            // A number with a fraction, or too large for an integer (JSON reads those as
            // floats): say what is wanted, not how serde saw it. Every integer of a body has
            // these bounds (SPEC §1).
            (
                "int_parsing",
                format!("must be an integer between 1 and {MAX_INT}"),
            )
        } else if inner.starts_with("invalid type") {
            ("type_error", inner)
        } else {
            ("value_error", inner)
        };
        FieldError { loc, msg, kind }
    })
}

/// serde's message without the literal it quotes: `invalid type: string "sk-…", expected i64`
/// becomes `invalid type: string, expected i64`.
fn without_literals(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let expected = rest.find(", expected").map(|i| &rest[i..]).unwrap_or("");
        return format!("unknown variant{expected}");
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let kind = rest.split([' ', ',']).next().unwrap_or("");
            let expected = rest.rfind(", expected ").map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}{kind}{expected}");
        }
    }
    msg.to_owned()
}

/// The field name in serde's "unknown field `x`, expected …" message.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 64;
const MAX_INT: i64 = i32::MAX as i64;

/// A validated create request.
#[derive(Debug)]
pub struct CreateInput {
    pub resource_uri: Option<ResourceUri>,
    pub fields: ModelFields,
    pub credentials: Credentials,
    /// The catalogued fields the body sends: the catalog does not fill them.
    pub catalog_given: Vec<&'static str>,
}

/// `ModelPatch`: each declared field changed as its type is (`FieldType`).
macro_rules! model_patch {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$($how:tt)*]),* $(,)?) => {
        /// A validated update request: `None`/`Absent` leave a field as it is.
        #[derive(Debug, Default)]
        pub struct ModelPatch {
            pub resource_uri: Option<String>,
            $(pub $name: <$ty as FieldType>::Change,)*
            pub credentials: Option<Credentials>,
            /// The catalogued fields the patch sends (`catalog::CATALOG_FIELDS`), null or not:
            /// they become the user's own.
            pub catalog_given: Vec<&'static str>,
        }

        impl ModelPatch {
            /// Each field after its own change.
            fn changed(&self, cur: &ModelFields) -> ModelFields {
                ModelFields {
                    $($name: cur.$name.changed(&self.$name),)*
                }
            }
        }
    };
}
crate::with_model_fields!(model_patch);

type Rule<T, U> = fn(T) -> Result<U, (&'static str, String)>;

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: &str, kind: &'static str, msg: impl Into<String>) {
        self.errors
            .push(FieldError::new(&["body", field], kind, msg));
    }

    /// A field that may be absent or null (clears it) or a value checked by `rule`.
    fn optional<T, U>(&mut self, field: &str, p: Patch<T>, rule: Rule<T, U>) -> Patch<U> {
        match p {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(v) => match rule(v) {
                Ok(u) => Patch::Value(u),
                Err((kind, msg)) => {
                    self.fail(field, kind, msg);
                    Patch::Absent
                }
            },
        }
    }

    /// A field that, when present, must not be null.
    fn non_null<T, U>(&mut self, field: &str, p: Patch<T>, rule: Rule<T, U>) -> Option<U> {
        match p {
            Patch::Absent => None,
            Patch::Null => {
                self.fail(field, "null_not_allowed", "must not be null");
                None
            }
            Patch::Value(v) => match rule(v) {
                Ok(u) => Some(u),
                Err((kind, msg)) => {
                    self.fail(field, kind, msg);
                    None
                }
            },
        }
    }

    /// A field that create requires.
    fn required<T, U>(&mut self, field: &str, p: Patch<T>, rule: Rule<T, U>) -> Option<U> {
        if p.is_absent() {
            self.fail(field, "missing", "field required");
            return None;
        }
        self.non_null(field, p, rule)
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Error> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

fn text(s: &str, max: usize, multiline: bool) -> Result<(), (&'static str, String)> {
    if s.contains('\0') {
        return Err(("string_nul", "must not contain NUL characters".into()));
    }
    let bad_control = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if s.chars().any(bad_control) {
        return Err((
            "string_control",
            if multiline {
                "must not contain control characters other than newline and tab".into()
            } else {
                "must be a single line without control characters".into()
            },
        ));
    }
    let n = s.chars().count();
    if n > max {
        return Err((
            "string_too_long",
            format!("must be at most {max} characters (got {n})"),
        ));
    }
    Ok(())
}

fn non_blank(s: String, max: usize, multiline: bool) -> Result<String, (&'static str, String)> {
    let t = s.trim();
    if t.is_empty() {
        return Err((
            "string_too_short",
            "must not be empty or blank; send null to clear an optional field".into(),
        ));
    }
    text(t, max, multiline)?;
    Ok(t.to_owned())
}

pub fn name(s: String) -> Result<String, (&'static str, String)> {
    non_blank(s, 255, false)
}

pub fn litellm_model(s: String) -> Result<String, (&'static str, String)> {
    non_blank(s, 500, false)
}

pub fn provider(s: String) -> Result<String, (&'static str, String)> {
    non_blank(s, 100, false)
}

pub fn api_version(s: String) -> Result<String, (&'static str, String)> {
    non_blank(s, 50, false)
}

pub fn description(s: String) -> Result<String, (&'static str, String)> {
    text(&s, 1000, true)?;
    Ok(s)
}

pub fn status_message(s: String) -> Result<String, (&'static str, String)> {
    text(&s, 1000, true)?;
    Ok(s)
}

/// An absolute http(s) URL without user info, or a reference to an environment variable that
/// holds one (`os.environ/AZURE_API_BASE`, as LiteLLM's examples write it). A reference is
/// stored as it is and resolved, like a credential reference, only where the operator granted
/// it (`ReferencePolicy`); the resolved value is held to `api_base_url`.
pub fn api_base(s: String) -> Result<String, (&'static str, String)> {
    let s = non_blank(s, 1000, false)?;
    if s.starts_with("os.environ/") {
        let reference = crate::references::Reference::parse(&s).expect("the prefix was checked");
        reference.check().map_err(|m| ("reference", m))?;
        return Ok(s);
    }
    api_base_url(s)
}

/// The rules of an `api_base` URL.
pub fn api_base_url(s: String) -> Result<String, (&'static str, String)> {
    let url = url::Url::parse(&s).map_err(|e| {
        (
            "url_parsing",
            format!("must be an absolute http(s) URL: {e}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err((
            "url_scheme",
            format!("must use http or https, not {:?}", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(("url_parsing", "must have a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // api_base is returned in every response; a secret in it would leak.
        return Err((
            "url_userinfo",
            "must not contain a user name or password; put secrets in credentials".into(),
        ));
    }
    Ok(s)
}

pub fn positive_int(n: i64) -> Result<i64, (&'static str, String)> {
    if (1..=MAX_INT).contains(&n) {
        Ok(n)
    } else {
        Err((
            "int_range",
            format!("must be between 1 and {MAX_INT} (got {n})"),
        ))
    }
}

pub fn temperature(x: f64) -> Result<f64, (&'static str, String)> {
    if x.is_finite() && (0.0..=9.99).contains(&x) {
        Ok(x)
    } else {
        Err((
            "float_range",
            format!("must be between 0 and 9.99 (got {x})"),
        ))
    }
}

pub fn timeout(x: f64) -> Result<f64, (&'static str, String)> {
    if x.is_finite() && x > 0.0 && x <= 86400.0 {
        Ok(x)
    } else {
        Err((
            "float_range",
            format!("must be greater than 0 and at most 86400 seconds (got {x})"),
        ))
    }
}

/// At most 50 tags of 1–64 characters without commas; duplicates dropped, order kept.
pub fn tags(list: Vec<String>) -> Result<Vec<String>, (&'static str, String)> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, tag) in list.into_iter().enumerate() {
        let at = |msg: &str| format!("tag {i}: {msg}");
        if tag.is_empty() || tag.trim().is_empty() {
            return Err(("tag_empty", at("must not be empty or blank")));
        }
        if tag.trim() != tag {
            return Err((
                "tag_whitespace",
                at("must not start or end with whitespace"),
            ));
        }
        if tag.contains(',') {
            return Err(("tag_comma", at("must not contain a comma")));
        }
        text(&tag, MAX_TAG_LEN, false).map_err(|(k, m)| (k, at(&m)))?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err((
            "too_many_tags",
            format!("at most {MAX_TAGS} distinct tags (got {})", out.len()),
        ));
    }
    Ok(out)
}

fn id<T>(v: T) -> Result<T, (&'static str, String)> {
    Ok(v)
}

/// A price per token in USD: finite, from 0 to 1 (no model costs a dollar a token).
fn cost(v: f64) -> Result<f64, (&'static str, String)> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err((
            "cost_range",
            "must be a price in USD per token, from 0 to 1".into(),
        ))
    }
}

/// Known capabilities (`catalog::Capability`), without duplicates, in the set's own order.
pub fn capabilities(list: Vec<String>) -> Result<Vec<String>, (&'static str, String)> {
    let mut known = Vec::with_capacity(list.len());
    for name in &list {
        let Some(c) = Capability::parse(name) else {
            let allowed: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            return Err((
                "capability",
                format!(
                    "holds a name that is not a capability; use any of {}",
                    allowed.join(", ")
                ),
            ));
        };
        known.push(c);
    }
    known.sort_unstable();
    known.dedup();
    Ok(known.into_iter().map(|c| c.as_str().to_owned()).collect())
}

/// A calendar day, `YYYY-MM-DD`.
pub fn date(s: String) -> Result<String, (&'static str, String)> {
    let t = s.trim();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(t, format) {
        Ok(_) if t.len() == 10 => Ok(t.to_owned()),
        _ => Err(("date", "must be a calendar day, YYYY-MM-DD".into())),
    }
}

/// Providers that are usually run without a key: a model of one may be created without
/// credentials.
pub const KEYLESS_PROVIDERS: &[&str] = &[
    "hosted_vllm",
    "llamafile",
    "lm_studio",
    "ollama",
    "ollama_chat",
    "vllm",
    "xinference",
];

fn is_keyless(provider: &str) -> bool {
    KEYLESS_PROVIDERS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(provider.trim()))
}

/// The credentials of a model that has none: `{"keyless": true}`, which names no secret and
/// which the LiteLLM export leaves out.
pub fn keyless_credentials() -> Credentials {
    let mut map = serde_json::Map::new();
    map.insert(
        crate::litellm::KEYLESS.into(),
        serde_json::Value::Bool(true),
    );
    Credentials::from_map(map).expect("a one-key object")
}

/// LiteLLM's provider names that modelreg knows. A provider is a tenant's free text; where it
/// leaves the tenant (a metric label shared by every organization), only these names are used
/// as they are, and any other is `other`.
pub const KNOWN_PROVIDERS: &[&str] = &[
    "ai21",
    "aleph_alpha",
    "anthropic",
    "anyscale",
    "azure",
    "azure_ai",
    "bedrock",
    "bedrock_converse",
    "cerebras",
    "clarifai",
    "cloudflare",
    "codestral",
    "cohere",
    "cohere_chat",
    "custom_openai",
    "dashscope",
    "databricks",
    "deepinfra",
    "deepseek",
    "fireworks",
    "fireworks_ai",
    "friendliai",
    "gemini",
    "github",
    "google_ai_studio",
    "groq",
    "hosted_vllm",
    "huggingface",
    "jina_ai",
    "lm_studio",
    "mistral",
    "mistral_azure",
    "moonshot",
    "nlp_cloud",
    "nvidia_nim",
    "ollama",
    "ollama_chat",
    "openai",
    "openai_compatible",
    "openrouter",
    "perplexity",
    "predibase",
    "replicate",
    "sagemaker",
    "sambanova",
    "text-completion-openai",
    "together",
    "together_ai",
    "triton",
    "vertex_ai",
    "vertex_ai_beta",
    "vllm",
    "voyage",
    "watsonx",
    "xai",
    "xinference",
];

/// The provider as a label other tenants may see: a known name as it is, `other` for any
/// other text, `` for none.
pub fn provider_label(provider: Option<&str>) -> &'static str {
    match provider {
        None => "",
        Some(p) => KNOWN_PROVIDERS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(p.trim()))
            .copied()
            .unwrap_or("other"),
    }
}

/// The provider a LiteLLM model string implies: the prefix before the first `/`, or, for a bare
/// model name, the vendor of a few well-known families.
pub fn infer_provider(litellm_model: &str) -> Option<String> {
    if let Some((prefix, _)) = litellm_model.split_once('/') {
        let prefix = prefix.trim();
        return (!prefix.is_empty() && prefix.chars().count() <= 100).then(|| prefix.to_owned());
    }
    let m = litellm_model.to_ascii_lowercase();
    let family = [
        ("gpt-", "openai"),
        ("o1", "openai"),
        ("o3", "openai"),
        ("o4", "openai"),
        ("chatgpt-", "openai"),
        ("text-embedding-", "openai"),
        ("dall-e", "openai"),
        ("whisper-", "openai"),
        ("claude", "anthropic"),
        ("gemini", "gemini"),
        ("mistral", "mistral"),
        ("command", "cohere"),
    ];
    family
        .iter()
        .find(|(p, _)| m.starts_with(p))
        .map(|(_, v)| (*v).to_owned())
}

fn into_option<T>(p: Patch<T>) -> Option<T> {
    match p {
        Patch::Value(v) => Some(v),
        Patch::Absent | Patch::Null => None,
    }
}

/// Validates a create body. `provider`, when absent, is inferred from `litellm_model`.
pub fn create(mut body: ModelCreate) -> Result<CreateInput, Error> {
    let mut c = Checker::default();
    let catalogued_body = body.catalogued();
    let catalog_given = catalogued_body.given(
        !body.max_input_tokens.is_absent(),
        !body.max_output_tokens.is_absent(),
    );
    let resource_uri = c.non_null("resource_uri", body.resource_uri, |s| {
        ResourceUri::parse(&s).map_err(|m| ("resource_uri", m))
    });
    let name = c.required("name", body.name, name);
    let litellm = c.required("litellm_model", body.litellm_model, litellm_model);
    let provider_absent = body.provider.is_absent();
    let provider = c.optional("provider", body.provider, provider);
    let description = c.optional("description", body.description, description);
    let tag_list = c.optional("tags", body.tags, tags);
    let api_base = c.optional("api_base", body.api_base, api_base);
    let api_version = c.optional("api_version", body.api_version, api_version);
    let mode = c.optional("mode", body.mode, id);
    let max_input_tokens = c.optional("max_input_tokens", body.max_input_tokens, positive_int);
    let max_output_tokens = c.optional("max_output_tokens", body.max_output_tokens, positive_int);
    let catalogued = catalogued(&mut c, catalogued_body);
    let default_max_tokens =
        c.optional("default_max_tokens", body.default_max_tokens, positive_int);
    let rpm = c.optional("rpm", body.rpm, positive_int);
    let tpm = c.optional("tpm", body.tpm, positive_int);
    let default_temperature =
        c.optional("default_temperature", body.default_temperature, temperature);
    let timeout_s = c.optional("timeout", body.timeout, timeout);
    let provider = if provider_absent {
        litellm.as_deref().and_then(infer_provider)
    } else {
        into_option(provider)
    };
    // A provider that needs no key (Ollama, a local vLLM) is created without inventing one:
    // its credentials are the `keyless` marker the LiteLLM import uses too.
    let keyless = provider.as_deref().is_some_and(is_keyless);
    let credentials = if keyless && body.credentials.is_absent() {
        Some(keyless_credentials())
    } else {
        c.required("credentials", body.credentials, id)
    };
    c.finish(|| {
        let litellm = litellm.expect("checked");
        CreateInput {
            resource_uri,
            fields: ModelFields {
                name: name.expect("checked"),
                litellm_model: litellm,
                provider,
                description: into_option(description),
                tags: into_option(tag_list).unwrap_or_default(),
                api_base: into_option(api_base),
                api_version: into_option(api_version),
                mode: into_option(mode),
                max_input_tokens: into_option(max_input_tokens),
                max_output_tokens: into_option(max_output_tokens),
                base_model: into_option(catalogued.base_model),
                input_cost_per_token: into_option(catalogued.input_cost_per_token),
                output_cost_per_token: into_option(catalogued.output_cost_per_token),
                cache_read_cost_per_token: into_option(catalogued.cache_read_cost_per_token),
                cache_write_cost_per_token: into_option(catalogued.cache_write_cost_per_token),
                capabilities: into_option(catalogued.capabilities).unwrap_or_default(),
                deprecation_date: into_option(catalogued.deprecation_date),
                default_max_tokens: into_option(default_max_tokens),
                rpm: into_option(rpm),
                tpm: into_option(tpm),
                default_temperature: into_option(default_temperature),
                timeout: into_option(timeout_s),
                status: Status::Pending,
                status_message: None,
            },
            credentials: credentials.expect("checked"),
            catalog_given,
        }
    })
}

/// Validates an update body (JSON merge patch).
pub fn update(mut body: ModelUpdate) -> Result<ModelPatch, Error> {
    let mut c = Checker::default();
    let catalogued_body = body.catalogued();
    let catalog_given = catalogued_body.given(
        !body.max_input_tokens.is_absent(),
        !body.max_output_tokens.is_absent(),
    );
    let resource_uri = c.non_null("resource_uri", body.resource_uri, id);
    let name = c.non_null("name", body.name, name);
    let litellm_model = c.non_null("litellm_model", body.litellm_model, litellm_model);
    let provider = c.optional("provider", body.provider, provider);
    let description = c.optional("description", body.description, description);
    // `tags: null` is the merge-patch way of resetting the list to its default, `[]`.
    let tags = match c.optional("tags", body.tags, tags) {
        Patch::Absent => None,
        Patch::Null => Some(Vec::new()),
        Patch::Value(v) => Some(v),
    };
    let api_base = c.optional("api_base", body.api_base, api_base);
    let api_version = c.optional("api_version", body.api_version, api_version);
    let mode = c.optional("mode", body.mode, id);
    let max_input_tokens = c.optional("max_input_tokens", body.max_input_tokens, positive_int);
    let max_output_tokens = c.optional("max_output_tokens", body.max_output_tokens, positive_int);
    let catalogued = catalogued(&mut c, catalogued_body);
    let default_max_tokens =
        c.optional("default_max_tokens", body.default_max_tokens, positive_int);
    let rpm = c.optional("rpm", body.rpm, positive_int);
    let tpm = c.optional("tpm", body.tpm, positive_int);
    let default_temperature =
        c.optional("default_temperature", body.default_temperature, temperature);
    let timeout = c.optional("timeout", body.timeout, timeout);
    let status = c.non_null("status", body.status, id);
    let status_message = c.optional("status_message", body.status_message, status_message);
    let credentials = c.non_null("credentials", body.credentials, id);
    c.finish(|| ModelPatch {
        resource_uri,
        name,
        litellm_model,
        provider,
        description,
        tags,
        api_base,
        api_version,
        mode,
        max_input_tokens,
        max_output_tokens,
        base_model: catalogued.base_model,
        input_cost_per_token: catalogued.input_cost_per_token,
        output_cost_per_token: catalogued.output_cost_per_token,
        cache_read_cost_per_token: catalogued.cache_read_cost_per_token,
        cache_write_cost_per_token: catalogued.cache_write_cost_per_token,
        // `capabilities: null` resets the list to its default, `[]`, as for tags.
        capabilities: match catalogued.capabilities {
            Patch::Absent => None,
            Patch::Null => Some(Vec::new()),
            Patch::Value(v) => Some(v),
        },
        deprecation_date: catalogued.deprecation_date,
        default_max_tokens,
        rpm,
        tpm,
        default_temperature,
        timeout,
        status,
        status_message,
        credentials,
        catalog_given,
    })
}

/// The fields the catalog fills, as a create or update body sends them.
pub struct Catalogued {
    pub base_model: Patch<String>,
    pub input_cost_per_token: Patch<f64>,
    pub output_cost_per_token: Patch<f64>,
    pub cache_read_cost_per_token: Patch<f64>,
    pub cache_write_cost_per_token: Patch<f64>,
    pub capabilities: Patch<Vec<String>>,
    pub deprecation_date: Patch<String>,
}

macro_rules! catalogued_of {
    ($body:ty) => {
        impl $body {
            /// The catalog's fields of this body, taken out of it.
            fn catalogued(&mut self) -> Catalogued {
                Catalogued {
                    base_model: std::mem::take(&mut self.base_model),
                    input_cost_per_token: std::mem::take(&mut self.input_cost_per_token),
                    output_cost_per_token: std::mem::take(&mut self.output_cost_per_token),
                    cache_read_cost_per_token: std::mem::take(&mut self.cache_read_cost_per_token),
                    cache_write_cost_per_token: std::mem::take(
                        &mut self.cache_write_cost_per_token,
                    ),
                    capabilities: std::mem::take(&mut self.capabilities),
                    deprecation_date: std::mem::take(&mut self.deprecation_date),
                }
            }
        }
    };
}
catalogued_of!(ModelCreate);
catalogued_of!(ModelUpdate);

impl Catalogued {
    /// The catalogued fields sent, with the two token limits the body holds elsewhere.
    fn given(&self, max_input_tokens: bool, max_output_tokens: bool) -> Vec<&'static str> {
        [
            (
                "input_cost_per_token",
                !self.input_cost_per_token.is_absent(),
            ),
            (
                "output_cost_per_token",
                !self.output_cost_per_token.is_absent(),
            ),
            (
                "cache_read_cost_per_token",
                !self.cache_read_cost_per_token.is_absent(),
            ),
            (
                "cache_write_cost_per_token",
                !self.cache_write_cost_per_token.is_absent(),
            ),
            ("max_input_tokens", max_input_tokens),
            ("max_output_tokens", max_output_tokens),
            ("capabilities", !self.capabilities.is_absent()),
            ("deprecation_date", !self.deprecation_date.is_absent()),
        ]
        .into_iter()
        .filter_map(|(f, sent)| sent.then_some(f))
        .collect()
    }
}

/// The catalog's fields, each checked by its rule.
fn catalogued(c: &mut Checker, b: Catalogued) -> Catalogued {
    Catalogued {
        base_model: c.optional("base_model", b.base_model, litellm_model),
        input_cost_per_token: c.optional("input_cost_per_token", b.input_cost_per_token, cost),
        output_cost_per_token: c.optional("output_cost_per_token", b.output_cost_per_token, cost),
        cache_read_cost_per_token: c.optional(
            "cache_read_cost_per_token",
            b.cache_read_cost_per_token,
            cost,
        ),
        cache_write_cost_per_token: c.optional(
            "cache_write_cost_per_token",
            b.cache_write_cost_per_token,
            cost,
        ),
        capabilities: c.optional("capabilities", b.capabilities, capabilities),
        deprecation_date: c.optional("deprecation_date", b.deprecation_date, date),
    }
}

impl ModelPatch {
    /// The fields after this patch.
    ///
    /// When `litellm_model` changes, `provider` is not in the patch, and the stored provider is
    /// the one the old model string implied, the provider is inferred again from the new model
    /// string: a provider that was never chosen by a person follows the model.
    pub fn apply(&self, cur: &ModelFields) -> ModelFields {
        let mut after = self.changed(cur);
        if self.provider.is_absent()
            && after.litellm_model != cur.litellm_model
            && cur.provider == infer_provider(&cur.litellm_model)
        {
            after.provider = infer_provider(&after.litellm_model);
        }
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_json(v: serde_json::Value) -> Result<CreateInput, Error> {
        create(serde_json::from_value(v).unwrap())
    }

    fn fields_of(err: Error) -> Vec<String> {
        match err {
            Error::Validation(v) => v.iter().map(|e| e.field()).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_body_of_the_wrong_shape_names_the_field_never_the_value() {
        let refused = |v| from_json::<ModelCreate>(v).err().expect("refused");
        assert_eq!(
            refused(serde_json::json!({"rpm": "sk-secret-1"})).to_string(),
            "validation failed: rpm: invalid type: string, expected i64"
        );
        assert_eq!(fields_of(refused(serde_json::json!({"nope": 1}))), ["nope"]);
        let err = refused(serde_json::json!(["x"]));
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
        let err = refused(serde_json::json!({"credentials": {"api_key": "***"}}));
        assert!(
            err.to_string().contains("masked placeholder") && !err.to_string().contains("***"),
            "{err}"
        );
    }

    #[test]
    fn minimal_create_infers_provider_and_starts_pending() {
        let c = create_json(serde_json::json!({
            "name": "  GPT 4o  ", "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "x"}
        }))
        .unwrap();
        assert_eq!(c.fields.name, "GPT 4o");
        assert_eq!(c.fields.provider.as_deref(), Some("openai"));
        assert_eq!(c.fields.status, Status::Pending);
        assert!(c.fields.tags.is_empty());
        assert!(c.resource_uri.is_none());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let err = create_json(serde_json::json!({
            "resource_uri": "Bad/URI",
            "description": "x".repeat(1001),
            "tags": ["ok", ""],
            "api_base": "not a url",
            "rpm": 0,
            "default_temperature": 10.0,
            "timeout": 0,
        }))
        .unwrap_err();
        let mut got = fields_of(err);
        got.sort();
        assert_eq!(
            got,
            [
                "api_base",
                "credentials",
                "default_temperature",
                "description",
                "litellm_model",
                "name",
                "resource_uri",
                "rpm",
                "tags",
                "timeout"
            ]
        );
    }

    #[test]
    fn text_rules() {
        assert!(name("a\0b".into()).is_err());
        assert!(name("a\nb".into()).is_err());
        assert!(description("line1\nline2\ttab".into()).is_ok());
        assert!(description("bell\u{7}".into()).is_err());
        assert!(name("x".repeat(255)).is_ok());
        assert!(
            name("é".repeat(255)).is_ok(),
            "limits count characters, not bytes"
        );
        assert!(name("x".repeat(256)).is_err());
        assert!(name("   ".into()).is_err());
    }

    #[test]
    fn url_rules() {
        assert!(api_base("https://api.openai.com/v1".into()).is_ok());
        assert!(api_base("http://127.0.0.1:11434".into()).is_ok());
        assert!(api_base("os.environ/AZURE_API_BASE".into()).is_ok());
        assert!(api_base("os.environ/".into()).is_err());
        assert!(api_base("os.environ/A-B".into()).is_err());
        assert!(api_base("file:/etc/hosts".into()).is_err());
        for bad in [
            "ftp://x",
            "/relative",
            "https://",
            "https://user:pw@host",
            "nope",
        ] {
            assert!(api_base(bad.into()).is_err(), "{bad}");
        }
    }

    #[test]
    fn number_rules() {
        assert!(positive_int(1).is_ok() && positive_int(2147483647).is_ok());
        assert!(positive_int(0).is_err() && positive_int(2147483648).is_err());
        assert!(temperature(0.0).is_ok() && temperature(9.99).is_ok());
        assert!(temperature(-0.1).is_err() && temperature(10.0).is_err());
        assert!(timeout(0.001).is_ok() && timeout(86400.0).is_ok());
        assert!(timeout(0.0).is_err() && timeout(86400.5).is_err());
    }

    #[test]
    fn tag_rules() {
        let t = |v: &[&str]| tags(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(t(&["b", "a", "b"]).unwrap(), ["b", "a"]);
        assert!(t(&["a,b"]).is_err());
        assert!(t(&[""]).is_err());
        assert!(t(&[" a"]).is_err());
        assert!(t(&[&"x".repeat(65)]).is_err());
        let fifty: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        let mut fifty_one = fifty.clone();
        assert!(tags(fifty).is_ok());
        fifty_one.push("50".into());
        assert!(tags(fifty_one).is_err());
    }

    #[test]
    fn provider_inference() {
        assert_eq!(infer_provider("azure/my-deploy").as_deref(), Some("azure"));
        assert_eq!(infer_provider("ollama/llama3").as_deref(), Some("ollama"));
        assert_eq!(infer_provider("gpt-4o").as_deref(), Some("openai"));
        assert_eq!(
            infer_provider("claude-3-opus").as_deref(),
            Some("anthropic")
        );
        assert_eq!(infer_provider("my-local-thing"), None);
        assert_eq!(infer_provider("/x"), None);
    }

    #[test]
    fn patch_semantics() {
        let base = create_json(serde_json::json!({
            "name": "n", "litellm_model": "openai/gpt-4o", "description": "d",
            "tags": ["a"], "rpm": 5, "credentials": {"k": "v"}
        }))
        .unwrap()
        .fields;
        let p = update(
            serde_json::from_value(serde_json::json!({
                "description": null, "rpm": 7, "litellm_model": "anthropic/claude-3"
            }))
            .unwrap(),
        )
        .unwrap();
        let after = p.apply(&base);
        assert_eq!(after.description, None);
        assert_eq!(after.rpm, Some(7));
        assert_eq!(after.tags, ["a"], "absent leaves tags alone");
        assert_eq!(after.name, "n");
        assert_eq!(
            after.provider.as_deref(),
            Some("anthropic"),
            "inferred provider follows"
        );

        let mut chosen = base.clone();
        chosen.provider = Some("my-proxy".into());
        assert_eq!(p.apply(&chosen).provider.as_deref(), Some("my-proxy"));

        let clear_tags =
            update(serde_json::from_value(serde_json::json!({"tags": null})).unwrap()).unwrap();
        assert!(clear_tags.apply(&base).tags.is_empty());

        let err = update(
            serde_json::from_value(serde_json::json!({"name": null, "status": null})).unwrap(),
        )
        .unwrap_err();
        assert_eq!(fields_of(err), ["name", "status"]);
    }
}
