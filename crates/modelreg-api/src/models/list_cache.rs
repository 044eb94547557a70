//! Rendered list pages, reused while the project's generation stands.
//!
//! Every write to a project (create, update, delete, verification, credential re-wrap) bumps
//! its generation in the database, in the write's own transaction, and the store reads the
//! generation in the same snapshot as each page. A page rendered at generation `g` is therefore
//! exactly what a fresh read returns for as long as the database says `g`: a repeated list
//! costs one indexed read of the generation instead of the page, its count and its
//! serialization. A write on any replica moves the generation in the shared database, so no
//! replica serves a page older than the write it would otherwise have read.

use std::{collections::HashMap, sync::Mutex};

use axum::body::Bytes;
use modelreg_core::{
    Error, Result,
    list::{ListQuery, Paging},
    service::{Caller, Registry},
};

use crate::models::view::ModelList;

/// Bounds per process: past either, the cache starts over. (A bound, not an LRU: the pages a
/// deployment repeats come back at once.)
const MAX_ENTRIES: usize = 4096;
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct ListCache(Mutex<Pages>);

#[derive(Default)]
struct Pages {
    by_key: HashMap<String, (i64, Bytes)>,
    bytes: usize,
}

impl ListCache {
    /// The JSON body of `GET /assets/models` for this caller's project and query.
    pub async fn page(
        &self,
        registry: &Registry,
        caller: &Caller,
        query: &ListQuery,
    ) -> Result<Bytes> {
        // The caller's project and every parameter that shapes the body (`ListQuery`'s Debug
        // form is derived, so it names each field and value).
        let key = format!(
            "{}\u{0}{}\u{0}{query:?}",
            caller.scope.org.as_str(),
            caller.scope.project.as_str()
        );
        if let Some((generation, body)) = self.get(&key) {
            // `list_generation` checks the caller may read, as `list` does.
            if registry.list_generation(caller).await? == Some(generation) {
                return Ok(body);
            }
        }
        let page = registry.list(caller, query).await?;
        let body = Bytes::from(
            serde_json::to_vec(&ModelList::new(query, &page))
                .map_err(|e| Error::Internal(format!("cannot serialize a list page: {e}")))?,
        );
        // Keyset pages are not kept: their cursors rarely repeat, and each would push out a
        // page that does.
        if let (Some(generation), Paging::Page(_)) = (page.generation, &query.paging) {
            self.put(key, generation, body.clone());
        }
        Ok(body)
    }

    fn get(&self, key: &str) -> Option<(i64, Bytes)> {
        self.0.lock().ok()?.by_key.get(key).cloned()
    }

    fn put(&self, key: String, generation: i64, body: Bytes) {
        let Ok(mut pages) = self.0.lock() else { return };
        // Generations only grow: a slow reader must not replace a newer page with its older one.
        if let Some((newer, _)) = pages.by_key.get(&key)
            && *newer > generation
        {
            return;
        }
        if body.len() > MAX_BYTES / 16 {
            return;
        }
        if pages.by_key.len() >= MAX_ENTRIES || pages.bytes + body.len() > MAX_BYTES {
            pages.by_key.clear();
            pages.bytes = 0;
        }
        pages.bytes += body.len();
        if let Some((_, old)) = pages.by_key.insert(key, (generation, body)) {
            pages.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn an_older_generation_never_replaces_a_newer_page() {
        let cache = ListCache::default();
        cache.put("k".into(), 5, body(3));
        cache.put("k".into(), 4, body(7));
        assert_eq!(cache.get("k"), Some((5, body(3))));
        cache.put("k".into(), 6, body(9));
        assert_eq!(cache.get("k"), Some((6, body(9))));
        assert_eq!(cache.0.lock().unwrap().bytes, 9);
    }

    #[test]
    fn the_byte_bound_holds() {
        let cache = ListCache::default();
        let big = MAX_BYTES / 16;
        for i in 0..40 {
            cache.put(format!("k{i}"), 1, body(big));
            assert!(cache.0.lock().unwrap().bytes <= MAX_BYTES);
        }
        // Too large a page is not kept at all.
        cache.put("huge".into(), 1, body(big + 1));
        assert_eq!(cache.get("huge"), None);
    }
}
