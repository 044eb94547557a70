//! The catalog in force: the bundled one, or the newest cost map loaded into the database by
//! `modelreg catalog refresh`, the same on every replica.

use std::{
    io::{Read, Write},
    sync::{Arc, RwLock},
};

use sha2::{Digest, Sha256};

use super::{Catalog, CatalogEntry, CatalogSource, EntryValues};
use crate::{
    error::{Error, Result},
    model::ModelFields,
    store::{CatalogSnapshot, ModelStore},
    timestamp::Timestamp,
};

/// The most a cost map file may hold, uncompressed (LiteLLM's is about 1.5 MB).
pub const MAX_COST_MAP_BYTES: usize = 64 << 20;

/// The catalog in force, read again whenever the database holds a newer cost map.
pub struct Catalogs {
    store: Arc<dyn ModelStore>,
    current: RwLock<(Option<i64>, Arc<Catalog>)>,
}

impl Catalogs {
    pub fn new(store: Arc<dyn ModelStore>) -> Self {
        Catalogs {
            store,
            current: RwLock::new((None, Catalog::bundled())),
        }
    }

    /// The catalog in force now. One indexed read a call; a newer cost map is parsed once.
    pub async fn current(&self) -> Result<Arc<Catalog>> {
        let head = self.store.catalog_head().await?;
        {
            let held = self.current.read().unwrap_or_else(|e| e.into_inner());
            if held.0 == head {
                return Ok(held.1.clone());
            }
        }
        let catalog = catalog_at(self.store.as_ref(), head).await?;
        let mut held = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Snapshots only grow: never go back to an older one read by a slower request.
        if held.0 <= head {
            *held = (head, catalog.clone());
        }
        Ok(catalog)
    }
}

/// The catalog in force in `store`, read without a cache (the command line's).
pub async fn catalog_in(store: &dyn ModelStore) -> Result<Arc<Catalog>> {
    catalog_at(store, store.catalog_head().await?).await
}

async fn catalog_at(store: &dyn ModelStore, head: Option<i64>) -> Result<Arc<Catalog>> {
    Ok(match head {
        None => Catalog::bundled(),
        Some(id) => {
            let s = store
                .catalog_snapshot(id)
                .await?
                .ok_or_else(|| Error::Internal(format!("catalog snapshot {id} is gone")))?;
            Arc::new(parse_snapshot(&s)?)
        }
    })
}

fn parse_snapshot(s: &CatalogSnapshot) -> Result<Catalog> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&s.body[..])
        .take(MAX_COST_MAP_BYTES as u64 + 1)
        .read_to_end(&mut json)
        .map_err(|e| Error::Internal(format!("catalog snapshot {} is corrupt: {e}", s.id)))?;
    Catalog::from_cost_map(
        &json,
        CatalogSource {
            name: s.source.clone(),
            version: s.version.clone(),
            date: s.date.clone(),
            sha256: s.sha256.clone(),
        },
    )
}

/// A cost map file as a snapshot to store, checked by parsing it first: a file that is not a
/// cost map is refused before anything is written.
pub fn snapshot_of(file: &[u8], version: &str, date: &str) -> Result<(Catalog, CatalogSnapshot)> {
    if file.len() > MAX_COST_MAP_BYTES {
        return Err(Error::InvalidRequest(format!(
            "a cost map may hold at most {MAX_COST_MAP_BYTES} bytes (this one has {})",
            file.len()
        )));
    }
    let sha256: String = Sha256::digest(file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let source = CatalogSource {
        name: "litellm".into(),
        version: version.to_owned(),
        date: date.to_owned(),
        sha256: sha256.clone(),
    };
    let catalog = Catalog::from_cost_map(file, source)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(file)
        .and_then(|()| gz.flush())
        .map_err(|e| Error::Internal(format!("cannot compress a cost map: {e}")))?;
    let body = gz
        .finish()
        .map_err(|e| Error::Internal(format!("cannot compress a cost map: {e}")))?;
    let snapshot = CatalogSnapshot {
        id: 0,
        source: "litellm".into(),
        version: version.to_owned(),
        date: date.to_owned(),
        sha256,
        loaded_at: Timestamp::now(),
        entries: i64::try_from(catalog.len()).unwrap_or(i64::MAX),
        body,
    };
    Ok((catalog, snapshot))
}

impl Catalog {
    /// How `newer` differs from this catalog: entries added, removed, and changed in a value
    /// a model takes.
    pub fn compare(&self, newer: &Catalog) -> (usize, usize, usize) {
        let (mut added, mut changed) = (0, 0);
        for e in newer.entries() {
            match self.get(&e.key) {
                None => added += 1,
                Some(old) if entry_values(old) != entry_values(e) => changed += 1,
                Some(_) => {}
            }
        }
        let removed = self
            .entries()
            .iter()
            .filter(|e| newer.get(&e.key).is_none())
            .count();
        (added, removed, changed)
    }

    /// The entry a model with these fields matches, as the model takes its values.
    pub fn entry_for(&self, fields: &ModelFields) -> Option<EntryValues> {
        self.lookup(&fields.litellm_model, fields.base_model.as_deref())
            .map(entry_values)
    }

    /// The entry under `key`, as a model takes its values.
    pub fn entry_values_of(&self, key: &str) -> Option<EntryValues> {
        self.get(key).map(entry_values)
    }
}

/// A catalog entry's values for the catalogued fields it has.
pub fn entry_values(e: &CatalogEntry) -> EntryValues {
    let mut values = std::collections::BTreeMap::new();
    let mut put = |field: &'static str, v: Option<serde_json::Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            values.insert(field, v);
        }
    };
    // Only values a user could send too (validate.rs): a model filled from the catalog
    // survives a GET → PUT round trip.
    let num = |v: Option<f64>| {
        v.filter(|c| c.is_finite() && (0.0..=1.0).contains(c))
            .and_then(serde_json::Number::from_f64)
            .map(Into::into)
    };
    let tokens = |v: Option<i64>| {
        v.filter(|n| (1..=i64::from(i32::MAX)).contains(n))
            .map(Into::into)
    };
    put("input_cost_per_token", num(e.input_cost_per_token));
    put("output_cost_per_token", num(e.output_cost_per_token));
    put(
        "cache_read_cost_per_token",
        num(e.cache_read_cost_per_token),
    );
    put(
        "cache_write_cost_per_token",
        num(e.cache_write_cost_per_token),
    );
    put("max_input_tokens", tokens(e.max_input_tokens));
    put("max_output_tokens", tokens(e.max_output_tokens));
    put(
        "capabilities",
        (!e.capabilities.is_empty()).then(|| {
            e.capabilities
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .into()
        }),
    );
    put(
        "deprecation_date",
        e.deprecation_date
            .clone()
            .filter(|d| crate::validate::date(d.clone()).is_ok())
            .map(Into::into),
    );
    EntryValues {
        key: e.key.clone(),
        values,
    }
}
