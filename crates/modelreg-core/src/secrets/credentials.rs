//! Credentials as a client sends them (SPEC §5): a JSON object whose values never show in
//! `Debug` output, the rules for each value (no masked placeholder, a well-formed reference),
//! the key-by-key patch, and their OpenAPI schemas.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de::Error as _};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ArrayBuilder, ObjectBuilder, Ref, RefOr, Schema, Type,
        schema::{AdditionalProperties, AnyOfBuilder, SchemaType},
    },
};
use zeroize::Zeroizing;

use crate::references::Reference;

/// Largest accepted credentials object, serialized.
pub const MAX_CREDENTIALS_BYTES: usize = 64 * 1024;

/// Plain credentials as received from a client: a non-empty JSON object. The value never
/// appears in `Debug` output; only the key names do.
pub struct Credentials {
    json: SecretString,
    fields: Vec<String>,
}

impl Credentials {
    pub fn from_map(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        if map.is_empty() {
            return Err("must be a non-empty object".into());
        }
        if let Some(k) = map.keys().find(|k| k.trim().is_empty() || k.len() > 256) {
            return Err(format!(
                "key {:?} must be 1-256 characters and not blank",
                k.chars().take(40).collect::<String>()
            ));
        }
        let json = Zeroizing::new(serde_json::to_string(&map).map_err(|e| e.to_string())?);
        if json.len() > MAX_CREDENTIALS_BYTES {
            return Err(format!(
                "must be at most {MAX_CREDENTIALS_BYTES} bytes serialized"
            ));
        }
        let mut fields: Vec<String> = map.keys().cloned().collect();
        fields.sort();
        Ok(Credentials {
            json: SecretString::from(json.as_str()),
            fields,
        })
    }

    /// The sorted key names, which are not secret and are returned as `credential_fields`.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The string value of `key`, for a probe's authentication.
    pub fn get(&self, key: &str) -> Option<SecretString> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.expose_json()).ok()?;
        map.get(key)
            .and_then(|v| v.as_str())
            .map(|s| SecretString::from(s.to_owned()))
    }

    /// The serialized JSON object. Call only where the value is needed (encryption, probes).
    pub fn expose_json(&self) -> &str {
        self.json.expose_secret()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        for (key, value) in &map {
            check_incoming(key, value).map_err(D::Error::custom)?;
        }
        Credentials::from_map(map).map_err(D::Error::custom)
    }
}

/// Strings that are what a client shows in place of a secret, not a secret. Storing one would
/// silently replace a working key with garbage.
fn looks_masked(v: &str) -> bool {
    let t = v.trim();
    let all_mask = t.chars().count() >= 3
        && t.chars()
            .all(|c| matches!(c, '*' | '•' | '●' | '·' | '…' | 'x' | 'X' | '#'));
    let has_mask_run = ["***", "•••", "●●●", "…", "...****"]
        .iter()
        .any(|m| t.contains(m));
    let words = [
        "redacted",
        "<redacted>",
        "[redacted]",
        "(redacted)",
        "hidden",
        "<hidden>",
        "masked",
        "<masked>",
        "[masked]",
        "<secret>",
        "[secret]",
    ];
    all_mask || has_mask_run || words.iter().any(|w| t.eq_ignore_ascii_case(w))
}

/// The rules for a value a client sends. Messages name the key, never the value.
fn check_incoming(key: &str, value: &serde_json::Value) -> Result<(), String> {
    let key_shown: String = key.chars().take(40).collect();
    match value {
        serde_json::Value::String(v) => {
            if v.trim().is_empty() {
                return Err(format!("value of {key_shown:?} must not be empty"));
            }
            if let Some(r) = Reference::parse(v) {
                return r
                    .check()
                    .map_err(|m| format!("value of {key_shown:?}: {m}"));
            }
            if looks_masked(v) {
                return Err(format!(
                    "value of {key_shown:?} looks like a masked placeholder, not a secret; \
                     send the real value, or leave the key out to keep what is stored"
                ));
            }
            Ok(())
        }
        serde_json::Value::Null => Err(format!("value of {key_shown:?} must not be null")),
        _ => Ok(()),
    }
}

/// A key-by-key change to stored credentials: a value sets the key, `null` removes it.
pub struct CredentialsPatch(serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for CredentialsPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsPatch")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for CredentialsPatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        if map.is_empty() {
            return Err(D::Error::custom("must name at least one key"));
        }
        for (key, value) in &map {
            if key.trim().is_empty() || key.len() > 256 {
                return Err(D::Error::custom(
                    "keys must be 1-256 characters and not blank",
                ));
            }
            if !value.is_null() {
                check_incoming(key, value).map_err(D::Error::custom)?;
            }
        }
        Ok(CredentialsPatch(map))
    }
}

/// The OpenAPI schema of one credential value, as `check_incoming` accepts it: any JSON value
/// but null (a string is a secret or a reference). The types are listed one by one because a
/// generated client turns a bare `{"type": "object"}` into a record that holds nothing.
pub struct CredentialValue;

impl PartialSchema for CredentialValue {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .description(Some(
                "A secret, or a reference to one (`os.environ/NAME`, `file:/path`), or any other \
                 JSON value but null (a number, a boolean, an array, an object such as a service \
                 account key).",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(SchemaType::AnyValue)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(AdditionalProperties::FreeForm(true))),
            )
            .into()
    }
}

impl ToSchema for CredentialValue {}

/// A credentials object: non-empty, keys of 1–256 characters, each value `value`.
fn credentials_object(description: &str, value: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .min_properties(Some(1))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(256)),
        ))
        .additional_properties(Some(value.into()))
        .into()
}

impl PartialSchema for Credentials {
    fn schema() -> RefOr<Schema> {
        credentials_object(
            "Provider credentials, e.g. `{\"api_key\": \"sk-…\"}`: a non-empty object of at most \
             64 KiB serialized. Stored encrypted and never returned.",
            Ref::from_schema_name(CredentialValue::name()),
        )
    }
}

impl ToSchema for Credentials {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((CredentialValue::name().into(), CredentialValue::schema()));
    }
}

impl PartialSchema for CredentialsPatch {
    fn schema() -> RefOr<Schema> {
        credentials_object(
            "Keys to set (a value) or remove (null); keys not named are kept.",
            AnyOfBuilder::new()
                .item(Ref::from_schema_name(CredentialValue::name()))
                .item(ObjectBuilder::new().schema_type(Type::Null)),
        )
    }
}

impl ToSchema for CredentialsPatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((CredentialValue::name().into(), CredentialValue::schema()));
    }
}

impl Credentials {
    /// These credentials with `patch` applied.
    pub fn merged(&self, patch: &CredentialsPatch) -> Result<Credentials, String> {
        let mut map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.expose_json()).map_err(|e| e.to_string())?;
        for (key, value) in &patch.0 {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
        if map.is_empty() {
            return Err("the change would remove every key; credentials must not be empty".into());
        }
        Credentials::from_map(map)
    }

    /// The keys whose values are references, not secrets.
    pub fn references(&self) -> Vec<String> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.expose_json()).unwrap_or_default();
        map.iter()
            .filter(|(_, v)| v.as_str().and_then(Reference::parse).is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Credentials {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn masked_placeholders_and_bad_references_are_refused_without_echo() {
        for masked in [
            "****",
            "sk-...****abcd",
            "••••••••",
            "xxxxxxxx",
            "<redacted>",
            "REDACTED",
            "sk-ab…yz",
            "   ",
        ] {
            let json = serde_json::json!({ "api_key": masked }).to_string();
            let err = serde_json::from_str::<Credentials>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains("api_key"), "{masked}: {err}");
            if masked.trim().len() > 3 {
                assert!(!err.contains(masked), "the value was echoed: {err}");
            }
        }
        for ok in [
            "sk-proj-abc123",
            "os.environ/OPENAI_API_KEY",
            "file:/run/secrets/key",
            "x",
        ] {
            let json = serde_json::json!({ "api_key": ok }).to_string();
            assert!(serde_json::from_str::<Credentials>(&json).is_ok(), "{ok}");
        }
        for bad in [
            "os.environ/",
            "os.environ/1ABC",
            "os.environ/A-B",
            "os.environ/sk-live-abcdef123456",
            "file:relative/path",
            "file:sk-live-abcdef123456",
        ] {
            let json = serde_json::json!({ "api_key": bad }).to_string();
            let err = serde_json::from_str::<Credentials>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains("api_key"), "{bad}: {err}");
            // Neither the value nor what follows the prefix is repeated: a client that pasted
            // a key after `os.environ/` must not get it back.
            let after_prefix = bad.split_once(['/', ':']).map(|(_, r)| r).unwrap_or(bad);
            assert!(
                after_prefix.len() < 3 || !err.contains(after_prefix),
                "the value was echoed: {err}"
            );
        }
    }

    #[test]
    fn merge_sets_and_removes_keys() {
        let c = creds(r#"{"a":"1","b":"2"}"#);
        let p: CredentialsPatch = serde_json::from_str(r#"{"b":null,"c":"3"}"#).unwrap();
        let m = c.merged(&p).unwrap();
        assert_eq!(m.fields(), ["a", "c"]);
        assert_eq!(m.expose_json(), r#"{"a":"1","c":"3"}"#);
        let all: CredentialsPatch = serde_json::from_str(r#"{"a":null,"b":null}"#).unwrap();
        assert!(c.merged(&all).is_err());
        assert!(serde_json::from_str::<CredentialsPatch>("{}").is_err());
        assert!(serde_json::from_str::<CredentialsPatch>(r#"{"a":"****"}"#).is_err());
    }

    #[test]
    fn references_are_stored_as_they_are() {
        let json = serde_json::json!({
            "api_key": "os.environ/MR_TEST_KEY",
            "token": "file:/run/secrets/key",
            "plain": "v"
        });
        let c: Credentials = serde_json::from_value(json).unwrap();
        assert_eq!(c.references(), ["api_key", "token"]);
        assert!(c.expose_json().contains("os.environ/MR_TEST_KEY"));
    }

    #[test]
    fn credentials_rules_and_no_debug_leak() {
        for bad in [r#"{}"#, r#"[]"#, r#""x""#, r#"{"":"v"}"#] {
            assert!(serde_json::from_str::<Credentials>(bad).is_err(), "{bad}");
        }
        let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(MAX_CREDENTIALS_BYTES));
        assert!(serde_json::from_str::<Credentials>(&big).is_err());
        let c = creds(r#"{"api_key":"sk-leak-me"}"#);
        assert!(!format!("{c:?}").contains("sk-leak-me"));
    }
}
