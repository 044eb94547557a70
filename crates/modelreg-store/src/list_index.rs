//! A project's models in memory, for its lists (SQLite only): what a list filters, searches
//! and sorts by, and nothing else (no credentials, no descriptions as shown, no limits).
//!
//! A list of a project held here is answered without visiting its rows in the database:
//! - each facet (status, mode, provider, `created_by`, each tag) is a bitmap of the models
//!   that have it, and the filters are their intersection;
//! - a search is the intersection of the bitmaps of the needle's byte trigrams, each candidate
//!   then checked for the needle as a substring of the lower-cased name or description, as the
//!   database's own search does;
//! - the total is the number of models left, exact whatever the filters;
//! - the page is ordered here, and only its rows are read from the database.
//!
//! It follows `model_changes` (migration 0012), the log that SQLite's triggers keep of every
//! model written: the store reads the project's newest change in a reader's snapshot and
//! brings the index to it before answering from it (`store/indexed.rs`), so an answer is
//! exactly as of that snapshot. PostgreSQL has no such log; its lists are answered by its
//! own indexes.

use std::{
    cmp::Ordering,
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering},
    },
};

use modelreg_core::{
    list::{ListQuery, Paging, SortField},
    tenant::TenantScope,
};
use roaring::RoaringBitmap;
use uuid::Uuid;

/// The changes `model_changes` keeps (migration 0012's triggers): an index further behind the
/// newest change than this may have missed some, and loads its project again.
pub(crate) const RETAINED: i64 = 100_000;

/// The most models held in memory by default, over every project (`list_index_max_models`;
/// their memory is in `docs/performance.md`). A project larger than this is answered by the
/// database alone; the least recently listed projects are dropped to make room for another.
pub const MAX_MODELS: u64 = 250_000;

/// The most changes an index catches up on by reading those models again; further behind, it
/// loads its project again.
pub(crate) const MAX_CATCH_UP: i64 = 2_000;

/// Of a list with no search, the most models ordered here for a page; a list matching more is
/// ordered by the database's sort indexes, which find its first rows at once.
pub(crate) const MAX_ORDERED: u64 = 20_000;

/// The columns of a model the index holds, read for a load or a catch-up.
pub const IMAGE_COLUMNS: &str = "seq, id, name, name_lc, description_lc, resource_uri, \
     litellm_model, provider, status, mode, created_at, updated_at, created_by, tags";

/// A model as the index holds it, read from the database.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Image {
    pub seq: i64,
    pub id: Uuid,
    pub name: String,
    pub name_lc: String,
    pub description_lc: String,
    pub resource_uri: String,
    pub litellm_model: String,
    pub provider: String,
    pub status: String,
    pub mode: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
    pub tags: Vec<String>,
}

/// The text fields of a row, in one allocation, in this order.
const NAME: usize = 0;
const NAME_LC: usize = 1;
const DESCRIPTION_LC: usize = 2;
const RESOURCE_URI: usize = 3;
const LITELLM_MODEL: usize = 4;
const CREATED_AT: usize = 5;
const UPDATED_AT: usize = 6;
const TEXTS: usize = 7;

/// Which facet a bitmap is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Facet {
    Status,
    Mode,
    Provider,
    CreatedBy,
    Tag,
}

struct Row {
    seq: i64,
    id: Uuid,
    text: Box<str>,
    ends: [u32; TEXTS],
    status: u32,
    mode: u32,
    provider: u32,
    created_by: u32,
    tags: Box<[u32]>,
}

impl Row {
    fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// One project's models.
pub(crate) struct ProjectIndex {
    /// The project's newest change (`model_changes.change`) this index has applied.
    pub head: i64,
    rows: Vec<Option<Row>>,
    free: Vec<u32>,
    by_seq: HashMap<i64, u32>,
    all: RoaringBitmap,
    trigrams: HashMap<[u8; 3], RoaringBitmap>,
    facets: HashMap<(Facet, u32), RoaringBitmap>,
    /// Interned facet values and sort keys of few values (status, mode, provider, principals,
    /// tags).
    values: Vec<Box<str>>,
    codes: HashMap<Box<str>, u32>,
}

/// What the index answers for a list: the exact total, and the page's seqs in order
/// (`limit + 1` at most, so the caller learns whether more follow), or `None` for a list
/// with no search matching more than [`MAX_ORDERED`] models, whose first rows the database's
/// sort indexes find at once.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub seqs: Option<Vec<i64>>,
    pub total: u64,
}

/// Each distinct byte trigram of `s`.
fn trigrams_of(s: &str, out: &mut HashSet<[u8; 3]>) {
    for w in s.as_bytes().windows(3) {
        out.insert([w[0], w[1], w[2]]);
    }
}

impl ProjectIndex {
    pub(crate) fn new(head: i64, images: impl IntoIterator<Item = Image>) -> ProjectIndex {
        let mut index = ProjectIndex {
            head,
            rows: Vec::new(),
            free: Vec::new(),
            by_seq: HashMap::new(),
            all: RoaringBitmap::new(),
            trigrams: HashMap::new(),
            facets: HashMap::new(),
            values: Vec::new(),
            codes: HashMap::new(),
        };
        for image in images {
            index.insert(image);
        }
        index
    }

    pub(crate) fn len(&self) -> u64 {
        self.all.len()
    }

    fn code(&mut self, value: &str) -> u32 {
        if let Some(c) = self.codes.get(value) {
            return *c;
        }
        let c = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.values.push(value.into());
        self.codes.insert(value.into(), c);
        c
    }

    fn value(&self, code: u32) -> &str {
        &self.values[code as usize]
    }

    /// Brings the index to `head`: each model of `seqs` is now `images`' (absent: deleted).
    pub(crate) fn apply(&mut self, head: i64, seqs: &[i64], images: Vec<Image>) {
        for seq in seqs {
            self.remove(*seq);
        }
        for image in images {
            self.remove(image.seq);
            self.insert(image);
        }
        self.head = head;
    }

    fn insert(&mut self, image: Image) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.rows.push(None);
                u32::try_from(self.rows.len() - 1).expect("fewer than 2^32 models in a project")
            }
        };
        let mut grams = HashSet::new();
        trigrams_of(&image.name_lc, &mut grams);
        trigrams_of(&image.description_lc, &mut grams);
        for g in grams {
            self.trigrams.entry(g).or_default().insert(slot);
        }
        let status = self.code(&image.status);
        let mode = self.code(&image.mode);
        let provider = self.code(&image.provider);
        let created_by = self.code(&image.created_by);
        let mut tags: Vec<u32> = image.tags.iter().map(|t| self.code(t)).collect();
        tags.sort_unstable();
        tags.dedup();
        for (facet, code) in [
            (Facet::Status, status),
            (Facet::Mode, mode),
            (Facet::Provider, provider),
            (Facet::CreatedBy, created_by),
        ]
        .into_iter()
        .chain(tags.iter().map(|t| (Facet::Tag, *t)))
        {
            self.facets.entry((facet, code)).or_default().insert(slot);
        }
        let texts = [
            &image.name,
            &image.name_lc,
            &image.description_lc,
            &image.resource_uri,
            &image.litellm_model,
            &image.created_at,
            &image.updated_at,
        ];
        let mut text = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = [0u32; TEXTS];
        for (i, t) in texts.into_iter().enumerate() {
            text.push_str(t);
            ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        self.all.insert(slot);
        self.by_seq.insert(image.seq, slot);
        self.rows[slot as usize] = Some(Row {
            seq: image.seq,
            id: image.id,
            text: text.into_boxed_str(),
            ends,
            status,
            mode,
            provider,
            created_by,
            tags: tags.into_boxed_slice(),
        });
    }

    fn remove(&mut self, seq: i64) {
        let Some(slot) = self.by_seq.remove(&seq) else {
            return;
        };
        let Some(row) = self.rows[slot as usize].take() else {
            return;
        };
        let mut grams = HashSet::new();
        trigrams_of(row.text(NAME_LC), &mut grams);
        trigrams_of(row.text(DESCRIPTION_LC), &mut grams);
        for g in grams {
            if let Some(b) = self.trigrams.get_mut(&g) {
                b.remove(slot);
                if b.is_empty() {
                    self.trigrams.remove(&g);
                }
            }
        }
        for key in [
            (Facet::Status, row.status),
            (Facet::Mode, row.mode),
            (Facet::Provider, row.provider),
            (Facet::CreatedBy, row.created_by),
        ]
        .into_iter()
        .chain(row.tags.iter().map(|t| (Facet::Tag, *t)))
        {
            if let Some(b) = self.facets.get_mut(&key) {
                b.remove(slot);
            }
        }
        self.all.remove(slot);
        self.free.push(slot);
    }

    fn facet(&self, facet: Facet, value: &str) -> Option<&RoaringBitmap> {
        let code = self.codes.get(value)?;
        self.facets.get(&(facet, *code))
    }

    /// The list `q` asks for; the database orders a list with no search that matches more
    /// than `max_ordered` models.
    pub(crate) fn answer(&self, q: &ListQuery, max_ordered: u64) -> Answer {
        let f = &q.filters;
        let empty = RoaringBitmap::new();
        let needle = f.search.as_deref();
        let mut wanted: Vec<Option<&RoaringBitmap>> = Vec::new();
        if let Some(s) = f.status {
            wanted.push(self.facet(Facet::Status, s.as_str()));
        }
        if let Some(m) = f.mode {
            wanted.push(self.facet(Facet::Mode, m.as_str()));
        }
        if let Some(p) = &f.provider {
            wanted.push(self.facet(Facet::Provider, p));
        }
        if let Some(c) = &f.created_by {
            wanted.push(self.facet(Facet::CreatedBy, c));
        }
        for t in &f.tags {
            wanted.push(self.facet(Facet::Tag, t));
        }
        if let Some(n) = needle {
            for w in n.as_bytes().windows(3) {
                wanted.push(self.trigrams.get(&[w[0], w[1], w[2]]));
            }
        }
        // A value no model has matches nothing.
        let missing = wanted.iter().any(Option::is_none);
        let mut sets: Vec<&RoaringBitmap> = wanted.into_iter().flatten().collect();
        let mut matching = if missing {
            empty
        } else {
            sets.sort_by_key(|b| b.len());
            match sets.split_first() {
                None => self.all.clone(),
                Some((first, rest)) => {
                    let mut m = (*first).clone();
                    for b in rest {
                        if m.is_empty() {
                            break;
                        }
                        m &= *b;
                    }
                    m
                }
            }
        };
        if f.usable_only
            && let Some(disabled) = self.facet(Facet::Status, "DISABLED")
        {
            matching -= disabled;
        }
        if needle.is_none() && matching.len() > max_ordered {
            return Answer {
                seqs: None,
                total: matching.len(),
            };
        }
        // The needle's searcher is made once for every candidate (SIMD where the CPU has it).
        let finder = needle.map(|n| memchr::memmem::Finder::new(n.as_bytes()));
        let after = match &q.paging {
            Paging::After(a) => Some(a),
            Paging::Page(_) => None,
        };
        let skip = usize::try_from(q.offset()).unwrap_or(usize::MAX);
        let want = skip.saturating_add(q.limit as usize + 1);
        let cmp = |a: &&Row, b: &&Row| self.compare(q, a, b);
        // A page near the start keeps its best rows in order as the candidates go by, most of
        // them refused by one comparison with the last kept; a deeper one sorts them all.
        let near = want <= 256;
        let mut rows: Vec<&Row> = Vec::with_capacity(if near {
            want + 1
        } else {
            matching.len() as usize
        });
        let mut total = 0u64;
        for slot in &matching {
            let Some(r) = self.rows[slot as usize].as_ref() else {
                continue;
            };
            if finder.as_ref().is_some_and(|f| {
                f.find(r.text(NAME_LC).as_bytes()).is_none()
                    && f.find(r.text(DESCRIPTION_LC).as_bytes()).is_none()
            }) {
                continue;
            }
            total += 1;
            if after.is_some_and(|a| !self.after(q, r, &a.values, a.id)) {
                continue;
            }
            if !near {
                rows.push(r);
                continue;
            }
            if rows.len() == want {
                if cmp(&r, &rows[want - 1]) != Ordering::Less {
                    continue;
                }
                rows.pop();
            }
            let at = rows.partition_point(|x| cmp(x, &r) == Ordering::Less);
            rows.insert(at, r);
        }
        if !near {
            if want < rows.len() {
                rows.select_nth_unstable_by(want - 1, cmp);
                rows.truncate(want);
            }
            rows.sort_unstable_by(cmp);
        }
        let seqs = rows.iter().skip(skip).map(|r| r.seq).collect();
        Answer {
            seqs: Some(seqs),
            total,
        }
    }

    /// The value a row is sorted by for `field`, as the database holds it.
    fn key<'r>(&'r self, row: &'r Row, field: SortField) -> &'r str {
        match field {
            SortField::Name => row.text(NAME),
            SortField::ResourceUri => row.text(RESOURCE_URI),
            SortField::LitellmModel => row.text(LITELLM_MODEL),
            SortField::Provider => self.value(row.provider),
            SortField::Status => self.value(row.status),
            SortField::Mode => self.value(row.mode),
            SortField::CreatedAt => row.text(CREATED_AT),
            SortField::UpdatedAt => row.text(UPDATED_AT),
        }
    }

    /// The list's order: its sort keys, then `id`, compared as SQLite compares text (bytes).
    fn compare(&self, q: &ListQuery, a: &Row, b: &Row) -> Ordering {
        for k in &q.sort {
            let o = self.key(a, k.field).cmp(self.key(b, k.field));
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = a.id.cmp(&b.id);
        if q.id_desc() { o.reverse() } else { o }
    }

    /// Whether `row` comes strictly after a cursor's row (its sort values and id).
    fn after(&self, q: &ListQuery, row: &Row, values: &[String], id: Uuid) -> bool {
        for (k, v) in q.sort.iter().zip(values) {
            let o = self.key(row, k.field).cmp(v.as_str());
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o == Ordering::Greater;
            }
        }
        let o = row.id.cmp(&id);
        let o = if q.id_desc() { o.reverse() } else { o };
        o == Ordering::Greater
    }
}

/// One project's index and its upkeep.
#[derive(Default)]
pub(crate) struct Slot {
    pub index: RwLock<Option<ProjectIndex>>,
    /// Set while a load of the project runs: the lists that come meanwhile go to the database.
    pub loading: AtomicBool,
    /// When the project was last listed, by `Indexes::clock`.
    used: AtomicU64,
}

/// Every project's index, and the room they share.
pub(crate) struct Indexes {
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
    clock: AtomicU64,
    /// The most models held, over every project.
    pub max_models: u64,
    /// Of a list with no search, the most models ordered here ([`MAX_ORDERED`]).
    pub max_ordered: u64,
    /// Projects loaded since the start.
    pub loads: AtomicU64,
}

impl Indexes {
    pub(crate) fn new(max_models: u64) -> Indexes {
        Indexes {
            slots: Mutex::default(),
            clock: AtomicU64::default(),
            max_models,
            max_ordered: MAX_ORDERED,
            loads: AtomicU64::default(),
        }
    }

    pub(crate) fn slot(&self, scope: &TenantScope) -> Arc<Slot> {
        let key = (
            scope.org.as_str().to_owned(),
            scope.project.as_str().to_owned(),
        );
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(key).or_default().clone();
        slot.used.store(
            self.clock.fetch_add(1, AtomicOrdering::Relaxed),
            AtomicOrdering::Relaxed,
        );
        slot
    }

    /// Drops the least recently listed projects' indexes, other than `keep`, until the
    /// indexes hold at most `max_models - room` models.
    pub(crate) fn make_room(&self, keep: &Arc<Slot>, room: u64) {
        let slots: Vec<Arc<Slot>> = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.values().cloned().collect()
        };
        let mut held: Vec<(u64, u64, Arc<Slot>)> = slots
            .into_iter()
            .filter(|s| !Arc::ptr_eq(s, keep))
            .filter_map(|s| {
                let n = s.index.read().ok()?.as_ref()?.len();
                Some((s.used.load(AtomicOrdering::Relaxed), n, s))
            })
            .collect();
        let mut total: u64 = held.iter().map(|(_, n, _)| n).sum();
        held.sort_by_key(|(used, ..)| *used);
        for (_, n, slot) in held {
            if total + room <= self.max_models {
                break;
            }
            if let Ok(mut index) = slot.index.write() {
                *index = None;
            }
            total -= n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelreg_core::list::{After, Filters, SortKey};

    fn image(seq: i64, name: &str, status: &str, tags: &[&str]) -> Image {
        Image {
            seq,
            id: Uuid::from_u128(seq as u128),
            name: name.into(),
            name_lc: name.to_lowercase(),
            description_lc: format!("model number {seq}"),
            resource_uri: format!("m-{seq}"),
            litellm_model: "openai/gpt-4o".into(),
            provider: "openai".into(),
            status: status.into(),
            mode: "chat".into(),
            created_at: format!("2026-01-01T00:00:{:02}.000000Z", seq % 60),
            updated_at: "2026-01-01T00:00:00.000000Z".into(),
            created_by: "user:a".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn query(filters: Filters, sort: &str) -> ListQuery {
        ListQuery {
            filters,
            sort: vec![SortKey {
                field: match sort {
                    "name" => SortField::Name,
                    _ => SortField::CreatedAt,
                },
                desc: false,
            }],
            limit: 2,
            ..ListQuery::default()
        }
    }

    #[test]
    fn filters_search_sort_and_follow_changes() {
        let mut ix = ProjectIndex::new(
            1,
            [
                image(1, "Zeta Sonnet", "ACTIVE", &["prod"]),
                image(2, "Alpha Sonnet", "ACTIVE", &["prod", "eu"]),
                image(3, "Beta Haiku", "DISABLED", &["eu"]),
            ],
        );
        let search = |n: &str| Filters {
            search: Some(n.into()),
            ..Filters::default()
        };
        let a = ix.answer(&query(search("sonnet"), "name"), MAX_ORDERED);
        assert_eq!(
            a,
            Answer {
                seqs: Some(vec![2, 1]),
                total: 2
            }
        );
        // Short needles are checked on every row.
        let a = ix.answer(&query(search("ha"), "name"), MAX_ORDERED);
        assert_eq!(a.seqs, Some(vec![2, 3]));
        // Two tags: both.
        let tags = Filters {
            tags: vec!["prod".into(), "eu".into()],
            ..Filters::default()
        };
        assert_eq!(
            ix.answer(&query(tags.clone(), "name"), MAX_ORDERED).seqs,
            Some(vec![2])
        );
        let usable = Filters {
            usable_only: true,
            ..Filters::default()
        };
        assert_eq!(ix.answer(&query(usable, "name"), MAX_ORDERED).total, 2);
        // A rename moves the row out of the search and the tag.
        let mut renamed = image(2, "Alpha Opus", "ACTIVE", &["prod"]);
        renamed.description_lc = "gone".into();
        ix.apply(5, &[2], vec![renamed]);
        assert_eq!(ix.head, 5);
        assert_eq!(
            ix.answer(&query(search("sonnet"), "name"), MAX_ORDERED)
                .seqs,
            Some(vec![1])
        );
        assert_eq!(ix.answer(&query(tags, "name"), MAX_ORDERED).total, 0);
        // A delete.
        ix.apply(6, &[1], vec![]);
        assert_eq!(
            ix.answer(&query(search("sonnet"), "name"), MAX_ORDERED)
                .total,
            0
        );
        assert_eq!(ix.len(), 2);
        // Values never seen match nothing.
        let unknown = Filters {
            provider: Some("nobody".into()),
            ..Filters::default()
        };
        assert_eq!(ix.answer(&query(unknown, "name"), MAX_ORDERED).total, 0);
    }

    #[test]
    fn pages_by_offset_and_cursor() {
        let ix = ProjectIndex::new(
            0,
            (1..=5).map(|i| image(i, &format!("m{i}"), "ACTIVE", &[])),
        );
        let mut q = query(Filters::default(), "name");
        q.paging = Paging::Page(2);
        let a = ix.answer(&q, MAX_ORDERED);
        assert_eq!((a.seqs, a.total), (Some(vec![3, 4, 5]), 5));
        q.paging = Paging::After(After {
            values: vec!["m3".into()],
            id: Uuid::from_u128(3),
        });
        assert_eq!(ix.answer(&q, MAX_ORDERED).seqs, Some(vec![4, 5]));
        q.sort[0].desc = true;
        assert_eq!(ix.answer(&q, MAX_ORDERED).seqs, Some(vec![2, 1]));
    }
}
