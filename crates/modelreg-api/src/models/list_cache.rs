//! Rendered list pages, reused while the project's generation stands.
//!
//! Every write to a project (create, update, delete, verification, credential re-wrap) bumps
//! its generation in the database, in the write's own transaction, and the store reads the
//! generation in the same snapshot as each page. A page rendered at generation `g` is therefore
//! exactly what a fresh read returns for as long as the database says `g`: a repeated list
//! costs one indexed read of the generation instead of the page, its count and its
//! serialization. A write on any replica moves the generation in the shared database, so no
//! replica serves a page older than the write it would otherwise have read.
//!
//! Within a project, a page whose filters select slices of it (status, mode, provider, tags:
//! `model_slices`) also outlives writes to models outside those slices: the database moves a
//! slice's own generation only when a model of it is written. Whole-list bodies (`/v1/models`,
//! the LiteLLM export) are kept the same way, in a cache of their own ([`ListCache::for_bodies`]).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use modelreg_core::{
    Error, Result,
    list::{ListQuery, Paging},
    service::{ModelService, Reader},
    tenant::TenantScope,
};
use prometheus_client::metrics::{counter::Counter, family::Family};
use quick_cache::{OptionsBuilder, Weighter, sync::Cache};

use crate::{metrics::ListPageLabels, models::view::ModelList};

/// The bytes the kept pages may take in a process, as [`PageWeight`] counts them. Past it, pages
/// make room one at a time, and a page read once goes first (S3-FIFO): a stream of unique
/// searches passes through the cache's small probation queue and leaves the pages that repeat,
/// whoever's they are.
const MAX_BYTES: u64 = 4 << 20;
/// The entry size the cache is planned for (it sizes its record of recently evicted keys and
/// its shards from it): a page of the default 20 models, at about 800 bytes of JSON each.
const TYPICAL_PAGE_BYTES: u64 = 16 << 10;
/// Parts of the cache with a lock each, and an equal share of the bytes: enough that concurrent
/// lists rarely wait on one lock, few enough that the largest page kept fits in a share.
const SHARDS: usize = 4;
/// A larger page is not kept: it would push out many that are likelier to repeat.
const MAX_PAGE_BYTES: usize = (MAX_BYTES / 16) as usize;
/// An entry's cost beyond its body and its key's text: the key's and the page's structs and the
/// cache's bookkeeping (an allowance, not a measure).
const ENTRY_OVERHEAD: u64 = 256;

pub struct ListCache {
    pages: Cache<PageKey, Page, PageWeight>,
    /// A larger body is not kept: it would push out many that are likelier to repeat.
    max_page: usize,
    /// The turn to render each page being rendered now: one lock per key, forgotten when
    /// nobody holds or waits for it (so it holds no more keys than requests in flight).
    turns: Mutex<HashMap<PageKey, Arc<tokio::sync::Mutex<()>>>>,
    /// `modelreg_list_pages_total{source="kept"}`: pages answered from the cache.
    reused: Counter,
    /// `modelreg_list_pages_total{source="rendered"}`: pages read from the store.
    rendered: Counter,
}

/// What a page is kept under: the caller's project and every parameter that shapes the body,
/// compared as values (so no two tenants' or queries' pages can share an entry).
#[derive(Clone, PartialEq, Eq, Hash)]
struct PageKey {
    scope: TenantScope,
    query: ListQuery,
}

#[derive(Clone)]
struct Page {
    generation: i64,
    /// The generation of the slices its filters select, read with it (`ListPage::slices`).
    slices: Option<i64>,
    body: Bytes,
}

/// What a render gives: the generations it was read at (`ListPage::generation` and
/// `ListPage::slices`), and the body.
pub type Rendered = (Option<i64>, Option<i64>, Bytes);

/// The bytes of the whole-list bodies kept in a process.
const BODIES_MAX_BYTES: u64 = 16 << 20;

/// An entry's weight: its bytes, body and key text, plus [`ENTRY_OVERHEAD`].
#[derive(Clone)]
struct PageWeight;

impl Weighter<PageKey, Page> for PageWeight {
    fn weight(&self, key: &PageKey, page: &Page) -> u64 {
        let filters = &key.query.filters;
        let text: usize = [
            key.scope.org.as_str(),
            key.scope.project.as_str(),
            filters.search.as_deref().unwrap_or(""),
            filters.created_by.as_deref().unwrap_or(""),
            filters.provider.as_deref().unwrap_or(""),
        ]
        .iter()
        .map(|s| s.len())
        .chain(filters.tags.iter().map(String::len))
        .sum();
        (text + page.body.len()) as u64 + ENTRY_OVERHEAD
    }
}

impl ListCache {
    pub(crate) fn new(counted: &Family<ListPageLabels, Counter>) -> ListCache {
        let source = |source| counted.get_or_create(&ListPageLabels { source }).clone();
        ListCache::with_budget(
            MAX_BYTES,
            MAX_PAGE_BYTES,
            source("kept"),
            source("rendered"),
        )
    }

    /// The cache of whole-list bodies (`/v1/models`, about 110 bytes a model: 1.1 MB at 10,000
    /// models; the LiteLLM export): it keeps fewer and larger bodies than the list's.
    pub(crate) fn for_bodies(counted: &Family<ListPageLabels, Counter>) -> ListCache {
        let source = |source| counted.get_or_create(&ListPageLabels { source }).clone();
        ListCache::with_budget(
            BODIES_MAX_BYTES,
            (BODIES_MAX_BYTES / 4) as usize,
            source("kept"),
            source("rendered"),
        )
    }

    fn with_budget(bytes: u64, max_page: usize, reused: Counter, rendered: Counter) -> ListCache {
        let options = OptionsBuilder::new()
            .weight_capacity(bytes)
            .estimated_items_capacity((bytes / TYPICAL_PAGE_BYTES).max(1) as usize)
            .shards(SHARDS)
            .build()
            .expect("every option is set");
        ListCache {
            pages: Cache::with_options(options, PageWeight, Default::default(), Default::default()),
            max_page,
            turns: Mutex::default(),
            reused,
            rendered,
        }
    }

    /// The JSON body of `GET /assets/models` for this caller's project and query.
    pub async fn page(
        &self,
        models: &ModelService,
        reader: &Reader,
        query: &ListQuery,
    ) -> Result<Bytes> {
        let render = || async {
            let page = models.list(reader, query).await?;
            let body = serde_json::to_vec(&ModelList::new(query, &page, &models.cursors()))
                .map_err(|e| Error::Internal(format!("cannot serialize a list page: {e}")))?;
            Ok((page.generation, page.slices, Bytes::from(body)))
        };
        self.body(models, reader, query, render).await
    }

    /// The body `render` makes of the caller's project and `query` (reading it at the
    /// generations it returns), kept and reused as [`ListCache::page`] says.
    pub async fn body<F, Fut>(
        &self,
        models: &ModelService,
        reader: &Reader,
        query: &ListQuery,
        render: F,
    ) -> Result<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered>>,
    {
        // Keyset pages are not kept: their cursors rarely repeat, and each would push out a
        // page that does. So they are not coalesced either.
        if !matches!(query.paging, Paging::Page(_)) {
            return Ok(self.render(render).await?.2);
        }
        // The project's generation as of this request (read with the caller's token, or now).
        let Some(generation) = models.list_generation(reader).await? else {
            // A project never written to has no generation, and its pages are not kept.
            return Ok(self.render(render).await?.2);
        };
        let key = PageKey {
            scope: reader.scope().clone(),
            query: query.clone(),
        };
        let slices = || models.list_slices(reader, query);
        self.page_at(key, generation, slices, render).await
    }

    /// The page kept under `key` if it was rendered at `generation` or later, or else the one
    /// `render` makes, kept for the next request.
    ///
    /// A page kept at this generation or a newer one shows the registry at a moment during
    /// this request: generations only grow, so a newer one was read after this request's own.
    /// Such a page is served at once, also while a newer one is being rendered: under writes,
    /// most requests in flight still carry the generation of the page kept (taking the page
    /// out for the render made each of them wait for it, and the mixed benchmark fell from
    /// about 850 to 640 requests/s).
    ///
    /// Renders of one page take turns, so that the misses after a write cost one render and
    /// not one per connection: without this, every connection listing the same page ran the
    /// page and its count itself (32 full scans of a search at once took 5 s at 100,000
    /// models). A request that waited re-checks the page first. (One turn per page and
    /// generation was tried: under 10% writes it ran a render per generation at once, and the
    /// mixed benchmark fell from 780 to 330 requests/s with peak memory up from 55 to 93 MiB.)
    ///
    /// A page whose filters select slices of the project (status, mode, provider, tags) is
    /// also kept across writes to other slices: when the project's generation has moved but
    /// its slices' has not, nothing it shows or counts has changed, and it is served and kept
    /// at the newer generation.
    async fn page_at<S, SFut, F, Fut>(
        &self,
        key: PageKey,
        generation: i64,
        slices: S,
        render: F,
    ) -> Result<Bytes>
    where
        S: FnOnce() -> SFut,
        SFut: Future<Output = Result<Option<i64>>>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered>>,
    {
        if let Some(body) = self.kept(&key, generation) {
            return Ok(body);
        }
        if let Some(page) = self.pages.get(&key)
            && let Some(kept_slices) = page.slices
            && slices().await?.is_some_and(|now| now <= kept_slices)
        {
            // Read after this request's generation: the page is exact as of then.
            self.keep(key, generation, page.slices, page.body.clone());
            self.reused.inc();
            return Ok(page.body);
        }
        let _turn = self.turn(&key).await;
        if let Some(body) = self.kept(&key, generation) {
            return Ok(body);
        }
        let (rendered_at, slices_at, body) = self.render(render).await?;
        if let Some(rendered_at) = rendered_at {
            self.keep(key, rendered_at, slices_at, body.clone());
        }
        Ok(body)
    }

    /// Keeps `body` under `key` as of `generation`, unless it is too large or the page kept
    /// is newer. Generations only grow: the turn orders renders, but a keyset page, an unkept
    /// render or a page revalidated by its slices may have been kept beside it.
    fn keep(&self, key: PageKey, generation: i64, slices: Option<i64>, body: Bytes) {
        if body.len() <= self.max_page
            && self
                .pages
                .get(&key)
                .is_none_or(|kept| kept.generation <= generation)
        {
            self.pages.insert(
                key,
                Page {
                    generation,
                    slices,
                    body,
                },
            );
        }
    }

    /// The page kept under `key`, if it was rendered at `generation` or later.
    fn kept(&self, key: &PageKey, generation: i64) -> Option<Bytes> {
        let page = self.pages.get(key).filter(|p| p.generation >= generation)?;
        self.reused.inc();
        Some(page.body)
    }

    /// Waits for the turn to render `key`; held until dropped, also when the request is
    /// cancelled or fails.
    async fn turn(&self, key: &PageKey) -> Turn<'_> {
        let gate = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry(key.clone()).or_default().clone()
        };
        // Built before waiting, so that a request cancelled while it waits lets go too.
        let mut turn = Turn {
            cache: self,
            key: key.clone(),
            gate,
            held: None,
        };
        turn.held = Some(turn.gate.clone().lock_owned().await);
        turn
    }

    /// Reads and serializes a page.
    async fn render<F, Fut>(&self, render: F) -> Result<Rendered>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered>>,
    {
        let page = render().await?;
        self.rendered.inc();
        Ok(page)
    }
}

/// The turn to render one page. Its lock is forgotten when no other request holds or waits
/// for it.
struct Turn<'a> {
    cache: &'a ListCache,
    key: PageKey,
    gate: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut turns = self.cache.turns.lock().unwrap_or_else(|e| e.into_inner());
        // The map's Arc and this one: nobody else waits. Waiting clones the Arc under the same
        // lock, so the count cannot grow behind this check.
        if Arc::strong_count(&self.gate) == 2 {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use modelreg_core::tenant::{OrgId, ProjectId};

    use super::*;

    fn cache(bytes: u64) -> ListCache {
        ListCache::with_budget(
            bytes,
            MAX_PAGE_BYTES,
            Counter::default(),
            Counter::default(),
        )
    }

    fn key(tenant: &str, search: Option<&str>) -> PageKey {
        let mut query = ListQuery::default();
        query.filters.search = search.map(str::to_owned);
        PageKey {
            scope: TenantScope {
                org: OrgId::parse(tenant).unwrap(),
                project: ProjectId::parse("p").unwrap(),
            },
            query,
        }
    }

    async fn no_slices() -> Result<Option<i64>> {
        panic!("a page without slices never asks for them")
    }

    fn body(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    /// `cache.page_at`, with a render that makes `n` bytes at `generation`.
    async fn page(cache: &ListCache, key: &PageKey, generation: i64, n: usize) -> Bytes {
        cache
            .page_at(key.clone(), generation, no_slices, || async move {
                Ok((Some(generation), None, body(n)))
            })
            .await
            .unwrap()
    }

    fn kept(cache: &ListCache, key: &PageKey) -> Option<(i64, usize)> {
        cache.pages.get(key).map(|p| (p.generation, p.body.len()))
    }

    #[tokio::test]
    async fn a_page_is_reused_until_the_generation_moves_on() {
        let cache = cache(MAX_BYTES);
        let k = key("a", None);
        assert_eq!(page(&cache, &k, 5, 3).await, body(3));
        // An older generation (a request that read it before the page was rendered) takes the
        // newer page and never replaces it.
        assert_eq!(page(&cache, &k, 4, 7).await, body(3));
        assert_eq!(page(&cache, &k, 5, 7).await, body(3));
        assert_eq!(kept(&cache, &k), Some((5, 3)));
        assert_eq!((cache.reused.get(), cache.rendered.get()), (2, 1));
        // A newer generation renders the page again.
        assert_eq!(page(&cache, &k, 6, 9).await, body(9));
        assert_eq!(kept(&cache, &k), Some((6, 9)));
        assert_eq!((cache.reused.get(), cache.rendered.get()), (2, 2));
    }

    /// While a newer page renders, a request that carries the kept page's generation (read
    /// before the write that made the newer one) takes the kept page at once.
    #[tokio::test]
    async fn the_kept_page_is_served_while_a_newer_one_renders() {
        let cache = cache(MAX_BYTES);
        let k = key("a", None);
        assert_eq!(page(&cache, &k, 1, 3).await, body(3));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut newer = Box::pin(cache.page_at(k.clone(), 2, no_slices, || async move {
            released.await.unwrap();
            Ok((Some(2), None, body(5)))
        }));
        assert!(futures::poll!(&mut newer).is_pending());
        let mut older = Box::pin(page(&cache, &k, 1, 9));
        assert_eq!(
            futures::poll!(&mut older),
            std::task::Poll::Ready(body(3)),
            "served without waiting for the render"
        );
        release.send(()).unwrap();
        assert_eq!(newer.await.unwrap(), body(5));
        assert_eq!(kept(&cache, &k), Some((2, 5)));
        assert_eq!(cache.rendered.get(), 2);
    }

    #[tokio::test]
    async fn misses_of_one_page_wait_for_one_render_and_a_cancelled_one_hands_it_on() {
        let cache = cache(MAX_BYTES);
        let k = key("a", None);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut first = Box::pin(cache.page_at(k.clone(), 1, no_slices, || async move {
            released.await.unwrap();
            Ok((Some(1), None, body(1)))
        }));
        assert!(futures::poll!(&mut first).is_pending());
        // A second request waits for the first's render, and takes its page.
        let mut second = Box::pin(page(&cache, &k, 1, 2));
        assert!(futures::poll!(&mut second).is_pending());
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), body(1));
        assert_eq!(second.await, body(1));
        assert_eq!(cache.rendered.get(), 1);
        // A render cancelled while others wait: the next one renders.
        let mut stalled = Box::pin(cache.page_at(k.clone(), 2, no_slices, std::future::pending));
        assert!(futures::poll!(&mut stalled).is_pending());
        let mut waiting = Box::pin(page(&cache, &k, 2, 4));
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(stalled);
        assert_eq!(waiting.await, body(4));
        assert_eq!(kept(&cache, &k), Some((2, 4)));
    }

    /// A page whose slices have not moved is served after the project's generation moved
    /// (a write elsewhere in the project), and kept at the newer generation; once its slices
    /// move, it renders.
    #[tokio::test]
    async fn a_page_outlives_writes_to_other_slices() {
        let cache = cache(MAX_BYTES);
        let k = key("a", None);
        let at = |generation: i64, slices: i64, n: usize, now: i64| {
            cache.page_at(
                k.clone(),
                generation,
                move || async move { Ok(Some(now)) },
                move || async move { Ok((Some(generation), Some(slices), body(n))) },
            )
        };
        assert_eq!(at(1, 10, 3, 10).await.unwrap(), body(3));
        assert_eq!(at(2, 10, 7, 10).await.unwrap(), body(3), "slices unchanged");
        assert_eq!(kept(&cache, &k), Some((2, 3)));
        assert_eq!(
            at(2, 10, 7, 10).await.unwrap(),
            body(3),
            "now current by generation"
        );
        assert_eq!(at(3, 11, 9, 11).await.unwrap(), body(9), "slices moved");
        assert_eq!((cache.reused.get(), cache.rendered.get()), (2, 2));
    }

    #[tokio::test]
    async fn the_byte_bound_holds() {
        let cache = cache(MAX_BYTES);
        for i in 0..100 {
            page(&cache, &key("a", Some(&format!("s{i}"))), 1, MAX_PAGE_BYTES).await;
            assert!(cache.pages.weight() <= MAX_BYTES);
        }
        // Too large a page is not kept at all.
        let huge = key("a", Some("huge"));
        page(&cache, &huge, 1, MAX_PAGE_BYTES + 1).await;
        assert_eq!(kept(&cache, &huge), None);
    }

    /// One tenant sending unique searches fills the cache with pages read once; another
    /// tenant's page that repeats outlives all of them.
    #[tokio::test]
    async fn unique_searches_of_one_tenant_do_not_evict_another_tenants_hot_page() {
        let budget = 64 << 10;
        let cache = cache(budget);
        let flood = |from: usize| {
            let cache = &cache;
            async move {
                for i in from..from + 1000 {
                    page(cache, &key("noisy", Some(&format!("q{i}"))), 1, 1000).await;
                }
            }
        };
        // The cache already full of the noisy tenant's pages, then the hot page, read a few
        // times, then ten times the budget of unique searches.
        flood(0).await;
        let hot = key("quiet", None);
        for _ in 0..3 {
            page(&cache, &hot, 1, 1000).await;
        }
        for round in 1..=10 {
            flood(round * 1000).await;
            page(&cache, &hot, 1, 1000).await;
        }
        assert_eq!(kept(&cache, &hot), Some((1, 1000)));
        assert!(cache.pages.weight() <= budget);
        // Every read of the hot page after the first came from the cache.
        assert_eq!(cache.reused.get(), 12);
    }
}
