//! Reading LiteLLM's cost map into entries: the upstream keys each field comes from, and what
//! counts as a usable value (docs/catalog.md, "Field mapping").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::{Capability, CatalogEntry};
use crate::Error;

/// Top-level keys that are not models (LiteLLM's `RESERVED_TOP_LEVEL_KEYS`): the format's
/// documentation, shaped like an entry, and the rules LiteLLM guesses unlisted models by.
const RESERVED_KEYS: [&str; 2] = ["sample_spec", "fallback_generalizations"];

/// A price per token above this is not a price: the dearest upstream is under a cent.
const MAX_COST_PER_TOKEN: f64 = 1.0;

/// A token limit above this is not a limit: the largest upstream is about ten million.
const MAX_TOKENS: f64 = 1e9;

/// The entries of a cost map, sorted by key. When a key appears twice the later entry wins, as
/// it does for LiteLLM (Python's `json`).
pub(super) fn read(json: &[u8]) -> crate::Result<Vec<CatalogEntry>> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let map: CostMap = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let at = e.path().to_string();
        let e = e.into_inner();
        Error::InvalidRequest(if at == "." {
            format!("cost map: {e}")
        } else {
            format!("cost map, at '{at}': {e}")
        })
    })?;
    deserializer
        .end()
        .map_err(|e| Error::InvalidRequest(format!("cost map: {e}")))?;
    Ok(map.0.into_values().collect())
}

struct CostMap(BTreeMap<String, CatalogEntry>);

impl<'de> Deserialize<'de> for CostMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;

        impl<'de> Visitor<'de> for Entries {
            type Value = CostMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of model entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CostMap, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if RESERVED_KEYS.contains(&key.as_str()) {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let RawEntry(mut entry) = map.next_value()?;
                    if key.is_empty() {
                        continue;
                    }
                    entry.key.clone_from(&key);
                    entries.insert(key, entry);
                }
                Ok(CostMap(entries))
            }
        }

        deserializer.deserialize_map(Entries)
    }
}

/// One entry, its key still to be set. Reads the few fields the catalog keeps and skips the
/// rest without building them.
struct RawEntry(CatalogEntry);

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> Visitor<'de> for Fields {
            type Value = RawEntry;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a model entry (a JSON object)")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut entry = CatalogEntry {
                    key: String::new(),
                    provider: None,
                    mode: None,
                    input_cost_per_token: None,
                    output_cost_per_token: None,
                    cache_read_cost_per_token: None,
                    cache_write_cost_per_token: None,
                    max_input_tokens: None,
                    max_output_tokens: None,
                    capabilities: Vec::new(),
                    deprecation_date: None,
                };
                let mut max_tokens = None;
                let mut capabilities = BTreeSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "litellm_provider" => entry.provider = text(map.next_value()?),
                        "mode" => entry.mode = text(map.next_value()?),
                        "input_cost_per_token" => {
                            entry.input_cost_per_token = cost(map.next_value()?)
                        }
                        "output_cost_per_token" => {
                            entry.output_cost_per_token = cost(map.next_value()?)
                        }
                        "cache_read_input_token_cost" => {
                            entry.cache_read_cost_per_token = cost(map.next_value()?)
                        }
                        "cache_creation_input_token_cost" => {
                            entry.cache_write_cost_per_token = cost(map.next_value()?)
                        }
                        "max_input_tokens" => entry.max_input_tokens = tokens(map.next_value()?),
                        "max_output_tokens" => entry.max_output_tokens = tokens(map.next_value()?),
                        "max_tokens" => max_tokens = tokens(map.next_value()?),
                        "deprecation_date" => entry.deprecation_date = date(map.next_value()?),
                        _ => match name.strip_prefix("supports_").and_then(Capability::parse) {
                            Some(capability) => {
                                if matches!(map.next_value()?, Value::Bool(true)) {
                                    capabilities.insert(capability);
                                } else {
                                    capabilities.remove(&capability);
                                }
                            }
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                // `max_tokens` is upstream's legacy limit: the output limit where the provider
                // gives one, else the input limit. So it stands in for a missing
                // `max_output_tokens` only when it is not a copy of `max_input_tokens`.
                if entry.max_output_tokens.is_none() && max_tokens != entry.max_input_tokens {
                    entry.max_output_tokens = max_tokens;
                }
                entry.capabilities = capabilities.into_iter().collect();
                Ok(RawEntry(entry))
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

/// A non-empty string.
fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// A JSON number, or a string holding one (`"2.5e-06"`), if finite.
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    n.is_finite().then_some(n)
}

/// US dollars per token: zero (a free model) up to [`MAX_COST_PER_TOKEN`].
fn cost(value: Value) -> Option<f64> {
    // `abs` turns a -0.0 into 0.0.
    number(&value)
        .filter(|n| (0.0..=MAX_COST_PER_TOKEN).contains(n))
        .map(f64::abs)
}

/// A token limit: a whole number from 1 up to [`MAX_TOKENS`]. Upstream writes 0 for "unknown".
fn tokens(value: Value) -> Option<i64> {
    number(&value)
        .filter(|n| n.fract() == 0.0 && (1.0..=MAX_TOKENS).contains(n))
        .map(|n| n as i64)
}

/// A real calendar day written YYYY-MM-DD, kept as written.
fn date(value: Value) -> Option<String> {
    let Value::String(s) = value else {
        return None;
    };
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !shaped {
        return None;
    }
    let (year, month, day) = (
        s[0..4].parse().ok()?,
        s[5..7].parse::<u8>().ok()?,
        s[8..10].parse().ok()?,
    );
    let month = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, CatalogSource};

    /// The message of the error reading `json` must be.
    fn error_of(json: &str) -> String {
        match read(json.as_bytes()) {
            Err(Error::InvalidRequest(message)) => message,
            other => panic!("expected InvalidRequest for {json:?}, got {other:?}"),
        }
    }

    fn source() -> CatalogSource {
        CatalogSource {
            name: "test".to_owned(),
            version: "0".to_owned(),
            date: "2026-01-01".to_owned(),
            sha256: String::new(),
        }
    }

    /// Every quirk of the upstream file, one entry each.
    const QUIRKS: &str = r#"{
        "sample_spec": {
            "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
            "max_input_tokens": "max input tokens, if the provider specifies it",
            "deprecation_date": "date when the model becomes deprecated in the format YYYY-MM-DD",
            "input_cost_per_token": 0.0
        },
        "fallback_generalizations": {
            "rules": [{"name": "claude", "pattern": "^claude-", "model_info": {"litellm_provider": "anthropic"}}]
        },
        "strings": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": "2.5e-06",
            "output_cost_per_token": " 0.00001 ",
            "max_input_tokens": "128000",
            "max_output_tokens": 16384.0,
            "cache_read_input_token_cost": 1.25E-6
        },
        "legacy-limit": {
            "litellm_provider": "together_ai",
            "max_tokens": 4096
        },
        "legacy-input-limit": {
            "litellm_provider": "voyage",
            "mode": "embedding",
            "max_tokens": 32000,
            "max_input_tokens": 32000
        },
        "both-limits": {
            "max_tokens": 1000,
            "max_output_tokens": 2000
        },
        "junk": {
            "litellm_provider": "",
            "mode": 7,
            "input_cost_per_token": -0.000001,
            "output_cost_per_token": "free",
            "cache_creation_input_token_cost": 12.5,
            "cache_read_input_token_cost": "NaN",
            "max_input_tokens": 0,
            "max_output_tokens": 1000.5,
            "max_tokens": -5,
            "deprecation_date": "2025-02-30",
            "supports_vision": "true",
            "supports_telepathy": true,
            "supports_function_calling": false,
            "supports_reasoning": true,
            "supports_tool_choice": true,
            "supported_regions": ["global"],
            "search_context_cost_per_query": {"low": 0.0},
            "output_cost_per_token_batches": 1e999,
            "source": null
        },
        "dates": {
            "deprecation_date": "2026-02-28",
            "litellm_provider": "azure",
            "supports_vision": true,
            "supports_vision": false
        },
        "odd-dates-1": {"deprecation_date": "28-02-2026"},
        "odd-dates-2": {"deprecation_date": "2026-2-28"},
        "odd-dates-3": {"deprecation_date": 20260228},
        "odd-dates-4": {"deprecation_date": "2026-02-28T00:00:00Z"},
        "free": {"input_cost_per_token": 0, "output_cost_per_token": -0.0},
        "empty": {},
        "twice": {"mode": "chat"},
        "twice": {"mode": "embedding"}
    }"#;

    #[test]
    fn a_hand_written_map_exercises_every_quirk() {
        let catalog = Catalog::from_cost_map(QUIRKS.as_bytes(), source()).unwrap();
        assert!(catalog.get("sample_spec").is_none(), "documentation");
        assert!(catalog.get("fallback_generalizations").is_none(), "rules");
        let keys: Vec<&str> = catalog.entries().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "both-limits",
                "dates",
                "empty",
                "free",
                "junk",
                "legacy-input-limit",
                "legacy-limit",
                "odd-dates-1",
                "odd-dates-2",
                "odd-dates-3",
                "odd-dates-4",
                "strings",
                "twice",
            ]
        );

        let strings = catalog.get("strings").unwrap();
        assert_eq!(strings.input_cost_per_token, Some(2.5e-6));
        assert_eq!(strings.output_cost_per_token, Some(1e-5));
        assert_eq!(strings.cache_read_cost_per_token, Some(1.25e-6));
        assert_eq!(strings.max_input_tokens, Some(128_000));
        assert_eq!(strings.max_output_tokens, Some(16_384));

        assert_eq!(
            catalog.get("legacy-limit").unwrap().max_output_tokens,
            Some(4096)
        );
        let input_limit = catalog.get("legacy-input-limit").unwrap();
        assert_eq!(input_limit.max_input_tokens, Some(32_000));
        assert_eq!(
            input_limit.max_output_tokens, None,
            "max_tokens was the input limit"
        );
        assert_eq!(
            catalog.get("both-limits").unwrap().max_output_tokens,
            Some(2000)
        );

        let junk = catalog.get("junk").unwrap();
        assert_eq!(
            junk,
            &CatalogEntry {
                key: "junk".to_owned(),
                provider: None,
                mode: None,
                input_cost_per_token: None,
                output_cost_per_token: None,
                cache_read_cost_per_token: None,
                cache_write_cost_per_token: None,
                max_input_tokens: None,
                max_output_tokens: None,
                capabilities: vec![Capability::ToolChoice, Capability::Reasoning],
                deprecation_date: None,
            }
        );

        let dates = catalog.get("dates").unwrap();
        assert_eq!(dates.deprecation_date.as_deref(), Some("2026-02-28"));
        assert_eq!(dates.capabilities, [], "the later of two equal keys wins");
        for odd in 1..=4 {
            let entry = catalog.get(&format!("odd-dates-{odd}")).unwrap();
            assert_eq!(entry.deprecation_date, None, "{}", entry.key);
        }

        let free = catalog.get("free").unwrap();
        assert_eq!(free.input_cost_per_token, Some(0.0));
        assert!(free.output_cost_per_token.unwrap().is_sign_positive());

        assert_eq!(
            catalog.get("twice").unwrap().mode.as_deref(),
            Some("embedding")
        );
        assert_eq!(
            catalog.providers(),
            ["azure", "openai", "together_ai", "voyage"]
        );
        assert_eq!(catalog.modes(), ["chat", "embedding"]);
    }

    #[test]
    fn a_file_that_is_not_an_object_of_objects_is_an_error() {
        assert!(error_of("").contains("EOF"));
        assert!(error_of("not json").contains("expected ident"));
        assert!(error_of(r#"[{"gpt-4o": {}}]"#).contains("a JSON object of model entries"));
        let numbers = error_of(r#"{"gpt-4o": 1, "gpt-4": 2}"#);
        assert!(numbers.contains("a model entry"), "{numbers}");
        assert!(numbers.starts_with("cost map, at 'gpt-4o': "), "{numbers}");
        assert!(error_of(r#"{"gpt-4o": {}} trailing"#).contains("trailing"));
        assert!(error_of(r#"{"gpt-4o": {"mode": "chat"}"#).contains("EOF"));
        assert!(error_of("\u{1F600}").contains("expected value"));
        // Beyond f64, in a field the catalog reads: serde_json cannot hold it.
        let huge = error_of(r#"{"a": {"input_cost_per_token": 1e999}}"#);
        assert_eq!(
            huge,
            "cost map, at 'a.input_cost_per_token': number out of range at line 1 column 36"
        );
    }

    #[test]
    fn a_map_without_a_model_is_an_error() {
        for json in [
            "{}",
            r#"{"sample_spec": {"mode": "chat"}}"#,
            r#"{"fallback_generalizations": [], "": {}}"#,
        ] {
            match Catalog::from_cost_map(json.as_bytes(), source()) {
                Err(Error::InvalidRequest(message)) => {
                    assert!(message.contains("no model entries"), "{message}")
                }
                other => panic!("{json}: {other:?}"),
            }
        }
        let one = Catalog::from_cost_map(br#"{"m": {}}"#, source()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.source(), &source());
    }

    #[test]
    fn dates_must_be_real_days() {
        let date = |s: &str| date(Value::String(s.to_owned()));
        assert_eq!(date("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(date("2025-02-29"), None);
        assert_eq!(date("2025-13-01"), None);
        assert_eq!(date("2025-00-10"), None);
        assert_eq!(date("２０２５-01-01"), None);
        assert_eq!(date("+025-01-01"), None);
    }
}
