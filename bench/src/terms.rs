//! The queries of the cold scenarios: each request asks something no earlier request of the
//! run asked, so no cache of rendered pages can answer it, and the figure is the cost of the
//! query itself.
//!
//! # `search-cold`
//!
//! Request `n` (a counter shared by every connection) takes its term from one of three pools,
//! by `n % 10`: 0–7 a **common** term (about 1% of models), 8 a **rare** one (about 0.01%),
//! 9 one that matches **nothing**. Within a pool the terms are taken in order, each once; a
//! pool that runs out starts again (and says so on stderr once), which at today's cold rates
//! does not happen within a 10 s scenario (the pools last 16,300 requests; `search-cold` made
//! 44 req/s at 10,000 models on SQLite when it was written).
//!
//! - **Common.** Every substring (4–24 characters, not starting or ending with a space) of the
//!   lower-cased name templates `"{display} {team} {env}"` of `seed.rs` (14 × 12 × 3 of them),
//!   such as `"sonnet paym"`, `"4o mini growth st"` or `"bedrock claude ri"`. Each is counted
//!   against the real seed data, the first `min(N, 20,000)` models, twice: in names alone and
//!   in names or descriptions. A term is kept when both counts are equal (so a search of names
//!   only, as MLflow's `name ILIKE`, matches exactly the models modelreg's search of names and
//!   descriptions matches) and it matches 0.3–3% of the sample. About 13,000 terms are kept;
//!   together they match 0.65% of models on average (most join a display name to a team, one
//!   in 168 models; a few join a team to an environment, 2–4%). The pool is sorted, then
//!   shuffled with a fixed seed.
//! - **Rare.** `"{env} {i}"` for the four-digit model numbers `i` (`"prod 4242"`), `env` being
//!   model `i`'s own environment: model `i` always matches, and beside it only the models
//!   whose number starts with `i`'s digits and have the same environment (none at 10,000
//!   models, 0.003–0.006% at 100,000). Below 10,000 models, the largest numbers there are.
//! - **None.** A model name that is not in the data (`qwen`, `mixtral`, …, checked against
//!   every word the seed writes) before a three-digit number: `"qwen 424"`.
//!
//! # `filter-cold`
//!
//! Every combination of status (5, or none) × mode (5, or none) × provider (8, or none) ×
//! tags (none, one of the 19, or two different ones) × sort (8 fields × 2 directions): 990,144
//! queries, each different. Request `n` takes combination `(A·n + B) mod 990,144` (`A` prime
//! to the count, so every combination comes once before any repeats): more than 49 s at
//! 20,000 req/s.
//!
//! # `filter-catalog`
//!
//! The list filtered by the catalog's fields (issue [catalog]): one or two capabilities (of
//! the nine the bundled catalog fills for the seed's families: 45 choices), a
//! `min_input_tokens` threshold (2,000 to 128,000 in 64 steps), a `max_input_cost` threshold
//! (5e-8 to 3.2e-6 USD in 64 steps), half the time a status (5) or a provider (the two whose
//! models the catalog prices) beside them, sorted by `input_cost_per_token` or
//! `max_input_tokens`, up or down: 10,321,920 queries, visited as `filter-cold`'s are, so none
//! repeats within a run. The bundled catalog knows six of the seed's 14 families (five
//! prices, five contexts, three capability lists), so a query matches none to a fifth of the
//! models: nine in ten match some, 9% of the models on average
//! (`catalog_queries_never_repeat_and_match_the_seed`).

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use crate::seed;

/// A term's shortest and longest length.
const MIN_LEN: usize = 4;
const MAX_LEN: usize = 24;
/// Models counted to estimate a common term's frequency.
const SAMPLE: u64 = 20_000;
/// The share of models a common term may match.
pub const COMMON_MIN: f64 = 0.003;
pub const COMMON_MAX: f64 = 0.03;

/// Names of models that the seed never writes, for the terms that match nothing.
pub const ABSENT: [&str; 16] = [
    "qwen", "mixtral", "falcon", "cohere", "deepseek", "jamba", "titan", "vicuna", "orca",
    "phoenix", "kestrel", "nimbus", "sirocco", "tundra", "obsidian", "halcyon",
];

/// Which pool a search term comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Common,
    Rare,
    None,
}

/// The `search-cold` terms for a main project of `models` models.
pub struct SearchTerms {
    pub common: Vec<String>,
    pub rare: Vec<String>,
    pub none: Vec<String>,
    /// The mean share of the sample the common terms match.
    pub common_mean: f64,
    wrapped: AtomicBool,
}

/// FNV-1a: the counting hashes tens of millions of short strings.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Every substring of `s` (ASCII) of `MIN_LEN..=MAX_LEN` bytes that neither starts nor ends
/// with a space.
fn substrings(s: &str) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    (0..b.len()).flat_map(move |a| {
        (a + MIN_LEN..=(a + MAX_LEN).min(b.len()))
            .map(move |e| &s[a..e])
            .filter(|t| !t.starts_with(' ') && !t.ends_with(' '))
    })
}

/// The lower-cased name templates, `"{display} {team} {env}"`.
pub fn name_templates() -> Vec<String> {
    let mut out = Vec::new();
    for (_, _, display, _) in seed::FAMILIES {
        for team in seed::TEAMS {
            for (env, _) in seed::ENVS {
                out.push(format!("{display} {team} {env}").to_lowercase());
            }
        }
    }
    out
}

/// Number of decimal digits of `n` (1 for 0).
fn digits(n: u64) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

impl SearchTerms {
    pub fn new(models: u64) -> SearchTerms {
        let models = models.max(1);
        // The candidates, each with an index.
        let mut index: FnvMap<&str, usize> = FnvMap::default();
        let templates = name_templates();
        let mut cands: Vec<&str> = Vec::new();
        for t in &templates {
            for s in substrings(t) {
                index.entry(s).or_insert_with(|| {
                    cands.push(s);
                    cands.len() - 1
                });
            }
        }
        // Count them in the seed data: in names, and in names or descriptions.
        let sample = models.min(SAMPLE);
        let mut in_names = vec![0u32; cands.len()];
        let mut in_any = vec![0u32; cands.len()];
        let mut seen = vec![u64::MAX; cands.len()];
        let mut seen_name = vec![u64::MAX; cands.len()];
        for i in 0..sample {
            let f = seed::fields(i);
            let name = f.name.to_lowercase();
            let desc = f.description.unwrap_or_default().to_lowercase();
            for s in substrings(&name) {
                if let Some(&k) = index.get(s)
                    && seen_name[k] != i
                {
                    seen_name[k] = i;
                    seen[k] = i;
                    in_names[k] += 1;
                    in_any[k] += 1;
                }
            }
            for s in substrings(&desc) {
                if let Some(&k) = index.get(s)
                    && seen[k] != i
                {
                    seen[k] = i;
                    in_any[k] += 1;
                }
            }
        }
        let (lo, hi) = (COMMON_MIN * sample as f64, COMMON_MAX * sample as f64);
        let mut common: Vec<(String, u32)> = cands
            .iter()
            .enumerate()
            .filter(|(k, _)| {
                in_names[*k] == in_any[*k] && (lo..=hi).contains(&f64::from(in_any[*k]))
            })
            .map(|(k, s)| ((*s).to_owned(), in_any[k]))
            .collect();
        common.sort();
        let common_mean = common.iter().map(|(_, n)| f64::from(*n)).sum::<f64>()
            / common.len().max(1) as f64
            / sample as f64;
        let mut common: Vec<String> = common.into_iter().map(|(s, _)| s).collect();
        let mut rng = fastrand::Rng::with_seed(0x5EA2C4);
        rng.shuffle(&mut common);

        // Rare: four-digit model numbers (fewer digits on a smaller project).
        let d = digits(models - 1).min(4);
        let (first, last) = (10u64.pow(d - 1), (10u64.pow(d)).min(models));
        let mut rare: Vec<String> = (first..last)
            .map(|i| format!("{} {i}", seed::env_of(i)))
            .collect();
        rng.shuffle(&mut rare);

        let mut none: Vec<String> = ABSENT
            .iter()
            .flat_map(|w| (100..1000).map(move |n| format!("{w} {n}")))
            .collect();
        rng.shuffle(&mut none);
        SearchTerms {
            common,
            rare,
            none,
            common_mean,
            wrapped: AtomicBool::new(false),
        }
    }

    /// The pool and the place in it of request `n`.
    pub fn slot(n: u64) -> (Kind, u64) {
        match n % 10 {
            8 => (Kind::Rare, n / 10),
            9 => (Kind::None, n / 10),
            r => (Kind::Common, n / 10 * 8 + r),
        }
    }

    /// The term of request `n`.
    pub fn term(&self, n: u64) -> &str {
        let (kind, k) = Self::slot(n);
        let pool = match kind {
            Kind::Common => &self.common,
            Kind::Rare => &self.rare,
            Kind::None => &self.none,
        };
        if k >= pool.len() as u64 && !self.wrapped.swap(true, Ordering::Relaxed) {
            eprintln!(
                "search-cold: the {kind:?} pool ({} terms) ran out at request {n}; its terms repeat from here on",
                pool.len()
            );
        }
        &pool[(k % pool.len() as u64) as usize]
    }

    /// Requests that can be made before any term repeats.
    pub fn distinct_requests(&self) -> u64 {
        let c = self.common.len() as u64;
        // The common pool lasts c / 8 rounds of ten requests, the others their length.
        (c / 8)
            .min(self.rare.len() as u64)
            .min(self.none.len() as u64)
            * 10
    }
}

/// The statuses, modes, providers and tags a `filter-cold` query picks from.
pub const STATUSES: [&str; 5] = ["PENDING", "ACTIVE", "ERROR", "DEPRECATED", "DISABLED"];
pub const MODES: [&str; 5] = [
    "chat",
    "completion",
    "embedding",
    "image_generation",
    "audio_transcription",
];
pub const SORT_FIELDS: [&str; 8] = [
    "name",
    "resource_uri",
    "litellm_model",
    "provider",
    "status",
    "mode",
    "created_at",
    "updated_at",
];

/// The `filter-cold` queries: every combination, visited in a fixed shuffled order.
pub struct FilterCombos {
    providers: Vec<&'static str>,
    tags: Vec<String>,
    /// Tag choices: none, each tag, each unordered pair.
    tag_sets: Vec<Vec<usize>>,
    pub count: u64,
    step: u64,
}

impl Default for FilterCombos {
    fn default() -> Self {
        Self::new()
    }
}

impl FilterCombos {
    pub fn new() -> FilterCombos {
        let mut providers: Vec<&'static str> = Vec::new();
        for (p, ..) in seed::FAMILIES {
            if !providers.contains(&p) {
                providers.push(p);
            }
        }
        let mut tags: Vec<String> = seed::ENVS.iter().map(|(e, _)| (*e).to_owned()).collect();
        tags.extend(seed::REGIONS.iter().map(|(r, _)| (*r).to_owned()));
        tags.push("beta".into());
        tags.extend(seed::TEAMS.iter().map(|t| format!("team-{t}")));
        let mut tag_sets = vec![vec![]];
        tag_sets.extend((0..tags.len()).map(|a| vec![a]));
        for a in 0..tags.len() {
            for b in a + 1..tags.len() {
                tag_sets.push(vec![a, b]);
            }
        }
        let count = (STATUSES.len() as u64 + 1)
            * (MODES.len() as u64 + 1)
            * (providers.len() as u64 + 1)
            * tag_sets.len() as u64
            * (SORT_FIELDS.len() as u64 * 2);
        // A prime that does not divide the count, so n -> n·step mod count is a bijection.
        let step = [7_919u64, 104_729, 1_299_709]
            .into_iter()
            .find(|p| !count.is_multiple_of(*p))
            .expect("one of three primes does not divide the count");
        FilterCombos {
            providers,
            tags,
            tag_sets,
            count,
            step,
        }
    }

    /// The query string (without `?`) of request `n`; distinct for `n` in `0..count`.
    pub fn query(&self, n: u64) -> String {
        let mut k = ((n % self.count) as u128 * self.step as u128 + 12_345) as u64 % self.count;
        let mut next = |radix: usize| {
            let d = (k % radix as u64) as usize;
            k /= radix as u64;
            d
        };
        let status = next(STATUSES.len() + 1);
        let mode = next(MODES.len() + 1);
        let provider = next(self.providers.len() + 1);
        let tags = &self.tag_sets[next(self.tag_sets.len())];
        let sort = next(SORT_FIELDS.len() * 2);
        let mut q = Vec::new();
        if status > 0 {
            q.push(format!("status={}", STATUSES[status - 1]));
        }
        if mode > 0 {
            q.push(format!("mode={}", MODES[mode - 1]));
        }
        if provider > 0 {
            q.push(format!("provider={}", self.providers[provider - 1]));
        }
        if !tags.is_empty() {
            let t: Vec<&str> = tags.iter().map(|i| self.tags[*i].as_str()).collect();
            q.push(format!("tags={}", t.join(",")));
        }
        q.push(format!(
            "sort={}:{}",
            SORT_FIELDS[sort / 2],
            if sort % 2 == 0 { "asc" } else { "desc" }
        ));
        q.join("&")
    }
}

/// The capabilities the bundled catalog fills for the seed's families (`seed::FAMILIES`).
pub const CATALOG_CAPABILITIES: [&str; 9] = [
    "vision",
    "function_calling",
    "parallel_function_calling",
    "tool_choice",
    "response_schema",
    "reasoning",
    "prompt_caching",
    "pdf_input",
    "system_messages",
];
/// The thresholds: `min_input_tokens` = 2,000 · (k + 1), `max_input_cost` = 5e-8 · (k + 1),
/// for k below these.
const TOKEN_STEPS: usize = 64;
const COST_STEPS: usize = 64;
pub const CATALOG_SORTS: [&str; 4] = [
    "input_cost_per_token:asc",
    "input_cost_per_token:desc",
    "max_input_tokens:asc",
    "max_input_tokens:desc",
];

/// The providers a `filter-catalog` query may name: those of the seed's families the bundled
/// catalog prices.
pub const CATALOG_PROVIDERS: [&str; 2] = ["openai", "ollama"];

/// The `filter-catalog` queries: every combination, visited in a fixed shuffled order.
pub struct CatalogCombos {
    /// Capability choices: each one, each unordered pair.
    capability_sets: Vec<Vec<usize>>,
    pub count: u64,
    step: u64,
}

impl Default for CatalogCombos {
    fn default() -> Self {
        Self::new()
    }
}

impl CatalogCombos {
    pub fn new() -> CatalogCombos {
        let n = CATALOG_CAPABILITIES.len();
        let mut capability_sets: Vec<Vec<usize>> = (0..n).map(|a| vec![a]).collect();
        for a in 0..n {
            for b in a + 1..n {
                capability_sets.push(vec![a, b]);
            }
        }
        // Half none, then each status, then each provider.
        let facets = 2 * (STATUSES.len() + CATALOG_PROVIDERS.len()) as u64;
        let count = capability_sets.len() as u64
            * TOKEN_STEPS as u64
            * COST_STEPS as u64
            * facets
            * CATALOG_SORTS.len() as u64;
        let step = [7_919u64, 104_729, 1_299_709]
            .into_iter()
            .find(|p| !count.is_multiple_of(*p))
            .expect("one of three primes does not divide the count");
        CatalogCombos {
            capability_sets,
            count,
            step,
        }
    }

    /// The query string (without `?`) of request `n`; distinct for `n` in `0..count`.
    pub fn query(&self, n: u64) -> String {
        let mut k = ((n % self.count) as u128 * self.step as u128 + 54_321) as u64 % self.count;
        let mut next = |radix: usize| {
            let d = (k % radix as u64) as usize;
            k /= radix as u64;
            d
        };
        let caps = &self.capability_sets[next(self.capability_sets.len())];
        let tokens = 2_000 * (next(TOKEN_STEPS) + 1);
        let cost = 5 * (next(COST_STEPS) + 1);
        let facets = STATUSES.len() + CATALOG_PROVIDERS.len();
        let facet = next(2 * facets);
        let sort = CATALOG_SORTS[next(CATALOG_SORTS.len())];
        let caps: Vec<&str> = caps.iter().map(|i| CATALOG_CAPABILITIES[*i]).collect();
        let mut q = vec![
            format!("capability={}", caps.join(",")),
            format!("min_input_tokens={tokens}"),
            format!("max_input_cost={cost}e-8"),
        ];
        match facet.checked_sub(facets) {
            Some(f) if f < STATUSES.len() => q.push(format!("status={}", STATUSES[f])),
            Some(f) => q.push(format!(
                "provider={}",
                CATALOG_PROVIDERS[f - STATUSES.len()]
            )),
            None => {}
        }
        q.push(format!("sort={sort}"));
        q.join("&")
    }
}

/// The shared state of the cold scenarios: the generators and the counter of requests made,
/// shared by every connection (and every scenario of a run, so no query repeats across them).
#[derive(Clone)]
pub struct Cold {
    pub search: Arc<SearchTerms>,
    pub filters: Arc<FilterCombos>,
    pub catalog: Arc<CatalogCombos>,
    pub next_search: Arc<AtomicU64>,
    pub next_filter: Arc<AtomicU64>,
    pub next_catalog: Arc<AtomicU64>,
}

impl Cold {
    pub fn new(models: u64) -> Cold {
        Cold {
            search: Arc::new(SearchTerms::new(models)),
            filters: Arc::new(FilterCombos::new()),
            catalog: Arc::new(CatalogCombos::new()),
            next_search: Arc::new(AtomicU64::new(0)),
            next_filter: Arc::new(AtomicU64::new(0)),
            next_catalog: Arc::new(AtomicU64::new(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The models of a 10,000-model project, lower-cased: (name, description).
    fn data(n: u64) -> Vec<(String, String)> {
        (0..n)
            .map(|i| {
                let f = seed::fields(i);
                (
                    f.name.to_lowercase(),
                    f.description.unwrap_or_default().to_lowercase(),
                )
            })
            .collect()
    }

    fn matches(data: &[(String, String)], term: &str) -> (usize, usize) {
        let names = data.iter().filter(|(n, _)| n.contains(term)).count();
        let any = data
            .iter()
            .filter(|(n, d)| n.contains(term) || d.contains(term))
            .count();
        (names, any)
    }

    /// The selectivity claims, counted against all 10,000 models of the seed data (the pool
    /// was built from the same 10,000, so this checks the counting; the 20,000-model sample
    /// of larger runs is checked below).
    #[test]
    fn search_terms_match_their_shares() {
        let n = 10_000u64;
        let terms = SearchTerms::new(n);
        let data = data(n);
        assert!(terms.common.len() > 10_000, "{}", terms.common.len());
        assert!(
            (0.004..0.012).contains(&terms.common_mean),
            "{}",
            terms.common_mean
        );
        // Every 25th common term, counted directly.
        let mut total = 0usize;
        let mut counted = 0usize;
        for t in terms.common.iter().step_by(25) {
            let (names, any) = matches(&data, t);
            assert_eq!(
                names, any,
                "{t:?}: names alone and names or descriptions differ"
            );
            assert!(
                (30..=300).contains(&any),
                "{t:?} matches {any} of {n} models"
            );
            total += any;
            counted += 1;
        }
        let mean = total as f64 / counted as f64 / n as f64;
        assert!((0.004..0.012).contains(&mean), "common mean {mean}");
        // Rare: model i itself and nothing else at 10,000 models.
        assert_eq!(terms.rare.len(), 9_000);
        for t in terms.rare.iter().step_by(50) {
            assert_eq!(matches(&data, t), (1, 1), "{t:?}");
        }
        for t in terms.none.iter().step_by(100) {
            assert_eq!(matches(&data, t), (0, 0), "{t:?}");
        }
        // No absent word occurs anywhere in the seed's text.
        for w in ABSENT {
            assert_eq!(matches(&data, w).1, 0, "{w}");
        }
    }

    /// At 100,000 models the common pool comes from a 20,000-model sample; its terms keep
    /// their shares over all 100,000, and rare terms stay rare.
    #[test]
    fn search_terms_hold_at_100k() {
        let n = 100_000u64;
        let terms = SearchTerms::new(n);
        let data = data(n);
        for t in terms.common.iter().step_by(500) {
            let (names, any) = matches(&data, t);
            assert_eq!(names, any, "{t:?}");
            assert!(
                (200..=3_500).contains(&any),
                "{t:?} matches {any} of {n} models"
            );
        }
        for t in terms.rare.iter().step_by(300) {
            let (_, any) = matches(&data, t);
            assert!((1..=12).contains(&any), "{t:?} matches {any}");
        }
    }

    #[test]
    fn search_requests_are_distinct_and_mixed() {
        let terms = SearchTerms::new(10_000);
        let k = terms.distinct_requests();
        // 16,300 today: 40 times what a 10 s run measured at 10,000 models (44 req/s).
        assert!(k >= 15_000, "{k}");
        let mut seen = HashSet::new();
        let mut kinds = [0u64; 3];
        for n in 0..k {
            assert!(seen.insert(terms.term(n).to_owned()), "request {n} repeats");
            kinds[SearchTerms::slot(n).0 as usize] += 1;
        }
        assert_eq!(kinds, [k * 8 / 10, k / 10, k / 10]);
        assert!(!terms.wrapped.load(Ordering::Relaxed));
    }

    #[test]
    fn filter_queries_never_repeat() {
        let f = FilterCombos::new();
        assert_eq!(f.count, 6 * 6 * 9 * 191 * 16);
        // A 10 s scenario at 20,000 req/s, and then some.
        let mut seen = HashSet::new();
        for n in 0..f.count {
            assert!(
                seen.insert(f.query(n)),
                "request {n} repeats {}",
                f.query(n)
            );
        }
        assert_eq!(f.query(0), f.query(f.count));
        // Every query is one the API accepts: known parameters, tags distinct.
        for n in (0..f.count).step_by(9_973) {
            let q = f.query(n);
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            for (k, v) in &pairs {
                assert!(
                    ["status", "mode", "provider", "tags", "sort"].contains(&k.as_str()),
                    "{q}"
                );
                if k == "tags" {
                    let t: Vec<&str> = v.split(',').collect();
                    assert!(t.len() <= 2 && (t.len() < 2 || t[0] != t[1]), "{q}");
                }
            }
        }
    }

    /// No two `filter-catalog` requests of a run alike, every one a query the API accepts,
    /// and the mix of what they match over the seed data: some nothing, most a share of it.
    #[test]
    fn catalog_queries_never_repeat_and_match_the_seed() {
        use modelreg_core::list::{CursorKeys, ListQuery};
        let c = CatalogCombos::new();
        assert_eq!(c.count, 45 * 64 * 64 * 14 * 4);
        // More than a 10 s scenario at 20,000 req/s makes.
        let mut seen = HashSet::new();
        for n in 0..400_000 {
            assert!(
                seen.insert(c.query(n)),
                "request {n} repeats {}",
                c.query(n)
            );
        }
        assert_eq!(c.query(7), c.query(7 + c.count));
        let data: Vec<_> = (0..2_000).map(seed::fields).collect();
        let keys = CursorKeys::ephemeral();
        let (mut none, mut some, mut sorted_by) = (0, 0, HashSet::new());
        let mut matched = 0;
        for n in (0..c.count).step_by((c.count / 2_000) as usize) {
            let q = c.query(n);
            let pairs: Vec<(String, String)> =
                form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            let query = ListQuery::parse(&pairs, &keys).unwrap_or_else(|e| panic!("{q}: {e:?}"));
            let f = &query.filters;
            assert!((1..=2).contains(&f.capabilities.len()), "{q}");
            sorted_by.insert(format!("{:?}", query.sort));
            let matching = data
                .iter()
                .filter(|m| {
                    f.capabilities
                        .iter()
                        .all(|c| m.capabilities.iter().any(|x| x == c.as_str()))
                        && m.max_input_tokens
                            .is_some_and(|t| t >= f.min_input_tokens.unwrap())
                        && m.input_cost_per_token
                            .is_some_and(|p| p <= f.max_input_cost.unwrap().get())
                        && f.status.is_none_or(|s| m.status == s)
                        && f.provider
                            .as_ref()
                            .is_none_or(|p| m.provider.as_ref() == Some(p))
                })
                .count();
            matched += matching;
            if matching == 0 {
                none += 1;
            } else {
                some += 1;
                assert!(matching <= data.len() / 4, "{q} matches {matching}");
            }
        }
        assert_eq!(sorted_by.len(), 4);
        // About nine in ten match some models (9% of them on average), one in ten none.
        assert!(
            some > 1_600 && none > 100,
            "{some} match something, {none} nothing"
        );
        let mean = matched as f64 / (some + none) as f64 / data.len() as f64;
        assert!((0.06..0.12).contains(&mean), "{mean}");
    }
}
