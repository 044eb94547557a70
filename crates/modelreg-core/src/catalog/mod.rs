//! The model catalog: prices, token limits and capabilities of known models, from a dated
//! snapshot bundled in the binary (docs/catalog.md).
//!
//! The snapshot is LiteLLM's cost map (`crates/modelreg-core/catalog/`, written by `update.sh`
//! there), embedded gzip-compressed and read once, on first use. [`Catalog::from_cost_map`]
//! reads any other cost map file the same way.

mod capability;
mod cost_map;
mod link;
mod lookup;
mod search;
mod state;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, LazyLock};

use serde::Serialize;
use utoipa::ToSchema;

pub use capability::Capability;
pub use link::{
    CATALOG_FIELDS, CatalogLink, EntryValues, Provenance, UpstreamChange, field_value,
    set_field_value,
};
pub use search::CatalogFilter;
pub use state::{Catalogs, MAX_COST_MAP_BYTES, catalog_in, entry_values, snapshot_of};

/// LiteLLM's cost map, `gzip -n -9` (about a twentieth of the JSON's size).
const BUNDLED_COST_MAP: &[u8] = include_bytes!("../../catalog/litellm-model-prices.json.gz");

/// Where the bundled cost map came from, as `update.sh` wrote it down.
const BUNDLED_SOURCE: &str = include_str!("../../catalog/SOURCE");

static BUNDLED: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    let source = bundled_source().expect("catalog/SOURCE names the bundled snapshot (tested)");
    let json = gunzip(BUNDLED_COST_MAP).expect("the bundled cost map is gzip (tested)");
    let catalog =
        Catalog::from_cost_map(&json, source).expect("the bundled cost map parses (tested)");
    Arc::new(catalog)
});

/// Where a catalog's data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CatalogSource {
    /// The data set, e.g. `litellm` (LiteLLM's model cost map).
    pub name: String,
    /// Its release, e.g. `1.108.14`.
    pub version: String,
    /// The day the snapshot was published (YYYY-MM-DD).
    pub date: String,
    /// The SHA-256 of the cost map file as published (uncompressed JSON), in hex.
    pub sha256: String,
}

/// One model of the catalog: what its provider charges, its token limits and what it can do.
/// Every field but the key is optional: the upstream data leaves many out, and a value that is
/// not a usable number, date or flag is left out rather than guessed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CatalogEntry {
    /// The model's key in the cost map, e.g. `gpt-4o` or `azure/gpt-4o`.
    pub key: String,
    /// The LiteLLM provider that serves it (`litellm_provider`), e.g. `openai`.
    pub provider: Option<String>,
    /// What kind of model it is, e.g. `chat`, `embedding`, `image_generation`.
    pub mode: Option<String>,
    /// US dollars per input token.
    pub input_cost_per_token: Option<f64>,
    /// US dollars per output token.
    pub output_cost_per_token: Option<f64>,
    /// US dollars per input token read from the prompt cache (`cache_read_input_token_cost`).
    pub cache_read_cost_per_token: Option<f64>,
    /// US dollars per input token written to the prompt cache
    /// (`cache_creation_input_token_cost`).
    pub cache_write_cost_per_token: Option<f64>,
    /// The context window: the most tokens a request may carry.
    pub max_input_tokens: Option<i64>,
    /// The most tokens one response may hold.
    pub max_output_tokens: Option<i64>,
    /// What the model can do (each `supports_<name>: true` upstream), in the enum's order.
    pub capabilities: Vec<Capability>,
    /// The day the provider retires the model (YYYY-MM-DD), if announced.
    pub deprecation_date: Option<String>,
}

/// A cost map, read: its entries sorted by key, with the indexes lookups and searches use.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    source: CatalogSource,
    /// Sorted by key; keys are unique.
    entries: Vec<CatalogEntry>,
    /// Each entry's key lower-cased, in the same order: searched without lower-casing per request.
    folded_keys: Vec<String>,
    /// Lower-cased key → entry, for LiteLLM's case-insensitive fallback. On a collision the first
    /// key in order keeps the name.
    by_folded_key: HashMap<String, usize>,
    /// The distinct providers and modes, sorted.
    providers: Vec<String>,
    modes: Vec<String>,
}

impl Catalog {
    /// The catalog bundled in the binary: read on the first call, shared after.
    pub fn bundled() -> Arc<Catalog> {
        Arc::clone(&BUNDLED)
    }

    /// Reads a LiteLLM cost map (`model_prices_and_context_window.json`, uncompressed): a JSON
    /// object whose values are objects, one per model. Fields it does not use are ignored, and
    /// an unusable value is left out of its entry (docs/catalog.md has the rules). A file of
    /// another shape, or one without a single model, is [`crate::Error::InvalidRequest`].
    pub fn from_cost_map(json: &[u8], source: CatalogSource) -> crate::Result<Catalog> {
        let entries = cost_map::read(json)?;
        if entries.is_empty() {
            return Err(crate::Error::InvalidRequest(
                "cost map: no model entries in the file".to_owned(),
            ));
        }
        Ok(Catalog::new(source, entries))
    }

    /// `entries` sorted by key, keys unique.
    fn new(source: CatalogSource, entries: Vec<CatalogEntry>) -> Catalog {
        let folded_keys: Vec<String> = entries.iter().map(|e| e.key.to_lowercase()).collect();
        let mut by_folded_key = HashMap::with_capacity(entries.len());
        for (i, folded) in folded_keys.iter().enumerate() {
            by_folded_key.entry(folded.clone()).or_insert(i);
        }
        let distinct = |field: fn(&CatalogEntry) -> Option<&String>| {
            let mut values: Vec<String> = entries.iter().filter_map(field).cloned().collect();
            values.sort_unstable();
            values.dedup();
            values
        };
        let providers = distinct(|e| e.provider.as_ref());
        let modes = distinct(|e| e.mode.as_ref());
        Catalog {
            source,
            entries,
            folded_keys,
            by_folded_key,
            providers,
            modes,
        }
    }

    /// The entry with exactly this key.
    pub fn get(&self, key: &str) -> Option<&CatalogEntry> {
        self.entries
            .binary_search_by(|e| e.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true for a catalog that was built: an empty cost map is an error.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the data came from.
    pub fn source(&self) -> &CatalogSource {
        &self.source
    }

    /// Every entry, sorted by key.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The distinct providers of the entries, sorted.
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// The distinct modes of the entries, sorted.
    pub fn modes(&self) -> &[String] {
        &self.modes
    }
}

/// The bundled snapshot's `SOURCE` file: `name=value` lines, `#` comments.
fn bundled_source() -> Option<CatalogSource> {
    let field = |name: &str| {
        BUNDLED_SOURCE
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    Some(CatalogSource {
        name: field("name")?,
        version: field("version")?,
        date: field("date")?,
        sha256: field("sha256")?,
    })
}

fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    // The gzip trailer ends with the uncompressed size (mod 2^32): one allocation.
    let size = compressed
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size) as usize);
    let mut json = Vec::with_capacity(size);
    flate2::read::GzDecoder::new(compressed).read_to_end(&mut json)?;
    Ok(json)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_bundled_snapshot_is_the_file_its_source_names() {
        let source = bundled_source().unwrap();
        assert_eq!(source.name, "litellm");
        assert!(
            source.date.len() == 10 && source.date.as_bytes()[4] == b'-',
            "{}",
            source.date
        );
        // The LiteLLM the export test runs (`.ci/litellm`): the two agree on one release.
        let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/litellm"))
            .unwrap();
        let pinned = ci
            .lines()
            .find_map(|line| line.strip_prefix("LITELLM_VERSION="))
            .unwrap()
            .trim_matches('"');
        assert_eq!(source.version, pinned);
        let json = gunzip(BUNDLED_COST_MAP).unwrap();
        let digest: String = Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, source.sha256);
        assert_eq!(Catalog::bundled().source(), &source);
    }

    #[test]
    fn the_bundled_snapshot_parses_into_thousands_of_entries() {
        let catalog = Catalog::bundled();
        assert!(catalog.len() > 2_000, "{} entries", catalog.len());
        assert!(catalog.get("sample_spec").is_none());
        assert!(catalog.get("fallback_generalizations").is_none());
        assert!(
            catalog
                .entries()
                .windows(2)
                .all(|pair| pair[0].key < pair[1].key)
        );
        // Shared, not read again.
        assert!(Arc::ptr_eq(&catalog, &Catalog::bundled()));

        let gpt_4o = catalog.get("gpt-4o").unwrap();
        assert_eq!(gpt_4o.provider.as_deref(), Some("openai"));
        assert_eq!(gpt_4o.mode.as_deref(), Some("chat"));
        assert_eq!(gpt_4o.input_cost_per_token, Some(2.5e-6));
        assert_eq!(gpt_4o.output_cost_per_token, Some(1e-5));
        assert_eq!(gpt_4o.cache_read_cost_per_token, Some(1.25e-6));
        assert_eq!(gpt_4o.max_input_tokens, Some(128_000));
        assert_eq!(gpt_4o.max_output_tokens, Some(16_384));
        for capability in [
            Capability::FunctionCalling,
            Capability::Vision,
            Capability::ParallelFunctionCalling,
            Capability::ResponseSchema,
        ] {
            assert!(gpt_4o.capabilities.contains(&capability), "{capability}");
        }
        assert!(!gpt_4o.capabilities.contains(&Capability::AudioOutput));
        assert!(gpt_4o.capabilities.is_sorted());
    }

    #[test]
    fn every_field_is_filled_somewhere_in_the_bundled_snapshot() {
        let catalog = Catalog::bundled();
        let count =
            |has: fn(&CatalogEntry) -> bool| catalog.entries().iter().filter(|e| has(e)).count();
        assert!(count(|e| e.provider.is_some()) > 4_000);
        assert!(count(|e| e.mode.is_some()) > 4_000);
        assert!(count(|e| e.input_cost_per_token.is_some()) > 3_000);
        assert!(count(|e| e.output_cost_per_token.is_some()) > 3_000);
        assert!(count(|e| e.cache_read_cost_per_token.is_some()) > 1_000);
        assert!(count(|e| e.cache_write_cost_per_token.is_some()) > 400);
        assert!(count(|e| e.max_input_tokens.is_some()) > 3_000);
        assert!(count(|e| e.max_output_tokens.is_some()) > 2_900);
        assert!(count(|e| e.deprecation_date.is_some()) > 800);
        for capability in Capability::ALL {
            assert!(
                catalog
                    .entries()
                    .iter()
                    .any(|e| e.capabilities.contains(&capability)),
                "no entry has {capability}"
            );
        }
        assert!(catalog.providers().len() > 100);
        assert!(catalog.providers().iter().any(|p| p == "anthropic"));
        assert!(catalog.modes().iter().any(|m| m == "embedding"));
        assert!(catalog.providers().is_sorted() && catalog.modes().is_sorted());
    }

    #[test]
    fn entries_serialize_with_their_field_names() {
        let entry = Catalog::bundled().get("gpt-4o").unwrap().clone();
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["key"], "gpt-4o");
        assert_eq!(json["max_input_tokens"], 128_000);
        assert!(
            json["capabilities"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("function_calling"))
        );
    }
}
