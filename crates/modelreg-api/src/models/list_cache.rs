//! Rendered list pages, reused while the project's generation stands.
//!
//! Every write to a project (create, update, delete, verification, credential re-wrap) bumps
//! its generation in the database, in the write's own transaction, and the store reads the
//! generation in the same snapshot as each page. A page rendered at generation `g` is therefore
//! exactly what a fresh read returns for as long as the database says `g`: a repeated list
//! costs one indexed read of the generation instead of the page, its count and its
//! serialization. A write on any replica moves the generation in the shared database, so no
//! replica serves a page older than the write it would otherwise have read.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use modelreg_core::{
    Error, Result,
    list::{ListQuery, Paging},
    service::{Caller, Registry},
};

use prometheus_client::metrics::{counter::Counter, family::Family};

use crate::{metrics::ListPageLabels, models::view::ModelList};

/// Bounds per process: past either, the cache starts over. (A bound, not an LRU: the pages a
/// deployment repeats come back at once.)
const MAX_ENTRIES: usize = 4096;
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
pub struct ListCache {
    pages: Mutex<Pages>,
    /// `modelreg_list_pages_total{source="kept"}` and `{source="rendered"}`.
    kept: Counter,
    rendered: Counter,
    /// One render at a time per key. When a write moves the generation, every connection
    /// listing the same page misses at once; without this each would run the page and its
    /// count itself (32 full scans of a search at once took 5 s at 100,000 models). Now one
    /// renders, and the rest wait for it and take its page.
    rendering: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Pages {
    by_key: HashMap<String, (i64, Bytes)>,
    bytes: usize,
}

impl ListCache {
    pub(crate) fn new(counted: Family<ListPageLabels, Counter>) -> ListCache {
        let source = |source| counted.get_or_create(&ListPageLabels { source }).clone();
        ListCache {
            kept: source("kept"),
            rendered: source("rendered"),
            ..Default::default()
        }
    }

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
        // Keyset pages are not kept: their cursors rarely repeat, and each would push out a
        // page that does. So they are not coalesced either.
        if !matches!(query.paging, Paging::Page(_)) {
            return self.render(key, registry, caller, query).await;
        }
        // The project's generation as of this request (read with the caller's token, or
        // now). `list_generation` checks the caller may read, as `list` does.
        let Some(generation) = registry.list_generation(caller).await? else {
            // A project never written to has no generation, and its pages are not kept.
            return self.render(key, registry, caller, query).await;
        };
        if let Some(body) = self.kept(&key, |kept| kept == generation) {
            return Ok(body);
        }
        // Renders of one page take turns, so that the misses after a write cost one render
        // and not one per connection. (One turn per page and generation was tried: under
        // 10% writes it ran a render per generation at once, and the mixed benchmark fell
        // from 780 to 330 requests/s with peak memory up from 55 to 93 MiB.)
        let _turn = self.turn(&key).await;
        // A page kept meanwhile at this generation or a newer one shows the registry at a
        // moment during this request: generations only grow, so a newer one was read after
        // this request's own.
        if let Some(body) = self.kept(&key, |kept| kept >= generation) {
            return Ok(body);
        }
        self.render(key, registry, caller, query).await
    }

    /// The kept page for `key`, if its generation is acceptable.
    fn kept(&self, key: &str, acceptable: impl FnOnce(i64) -> bool) -> Option<Bytes> {
        let (generation, body) = self.get(key)?;
        if !acceptable(generation) {
            return None;
        }
        self.kept.inc();
        Some(body)
    }

    /// Reads and serializes the page, and keeps it when it is a page-number page.
    async fn render(
        &self,
        key: String,
        registry: &Registry,
        caller: &Caller,
        query: &ListQuery,
    ) -> Result<Bytes> {
        let page = registry.list(caller, query).await?;
        self.rendered.inc();
        let body = Bytes::from(
            serde_json::to_vec(&ModelList::new(query, &page, &registry.cursors()))
                .map_err(|e| Error::Internal(format!("cannot serialize a list page: {e}")))?,
        );
        if let (Some(generation), Paging::Page(_)) = (page.generation, &query.paging) {
            self.put(key, generation, body.clone());
        }
        Ok(body)
    }

    /// Waits for the turn to render `key`.
    async fn turn(&self, key: &str) -> Turn<'_> {
        let gate = {
            let mut rendering = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
            rendering.entry(key.to_owned()).or_default().clone()
        };
        // Built before waiting, so that a request cancelled while it waits lets go too.
        let mut turn = Turn {
            cache: self,
            key: key.to_owned(),
            gate,
            held: None,
        };
        turn.held = Some(turn.gate.clone().lock_owned().await);
        turn
    }

    fn get(&self, key: &str) -> Option<(i64, Bytes)> {
        self.pages.lock().ok()?.by_key.get(key).cloned()
    }

    fn put(&self, key: String, generation: i64, body: Bytes) {
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
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

/// The turn to render one key, held until dropped (also when the request is cancelled or
/// fails). The key's lock is forgotten when no other request holds or waits for it.
struct Turn<'a> {
    cache: &'a ListCache,
    key: String,
    gate: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut rendering = self
            .cache
            .rendering
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The map's Arc and this one: nobody else waits. Waiting clones an Arc under the same
        // mutex, so the count cannot grow behind this check.
        if Arc::strong_count(&self.gate) == 2 {
            rendering.remove(&self.key);
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
        assert_eq!(cache.pages.lock().unwrap().bytes, 9);
    }

    #[tokio::test]
    async fn a_key_is_forgotten_once_nobody_waits_for_it() {
        let cache = ListCache::default();
        let first = cache.turn("k").await;
        // A second request waits behind the first.
        let mut second = Box::pin(cache.turn("k"));
        assert!(futures::poll!(&mut second).is_pending());
        drop(first);
        let second = second.await;
        assert_eq!(cache.rendering.lock().unwrap().len(), 1);
        drop(second);
        assert!(cache.rendering.lock().unwrap().is_empty());
        // A request cancelled while waiting leaves nothing behind either.
        let first = cache.turn("k").await;
        let mut waiting = Box::pin(cache.turn("k"));
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(waiting);
        drop(first);
        assert!(cache.rendering.lock().unwrap().is_empty());
    }

    #[test]
    fn the_byte_bound_holds() {
        let cache = ListCache::default();
        let big = MAX_BYTES / 16;
        for i in 0..40 {
            cache.put(format!("k{i}"), 1, body(big));
            assert!(cache.pages.lock().unwrap().bytes <= MAX_BYTES);
        }
        // Too large a page is not kept at all.
        cache.put("huge".into(), 1, body(big + 1));
        assert_eq!(cache.get("huge"), None);
    }
}
