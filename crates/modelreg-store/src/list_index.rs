//! A project's models in memory, for its lists (SQLite only): what a list filters, searches
//! and sorts by, and nothing else (no credentials, no descriptions as shown, no limits).
//!
//! A list of a project held here is answered without visiting its rows in the database:
//! - each facet (status, mode, provider, `created_by`, each tag, each capability) is a bitmap
//!   of the models that have it, and the filters are their intersection;
//! - each value of `max_input_tokens` and of `input_cost_per_token` is a bitmap too, so that a
//!   bound on either is the union of the values in its range (a catalog's limits and prices:
//!   a few dozen values, however many models);
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
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering},
    },
};

use modelreg_core::{
    catalog::Capability,
    list::{ListQuery, Paging, SortField, SortValue},
    tenant::TenantScope,
};
use roaring::{MultiOps, RoaringBitmap};
use uuid::Uuid;

/// The changes `model_changes` keeps (migration 0012's triggers): an index further behind the
/// newest change than this may have missed some, and loads its project again.
pub(crate) const RETAINED: i64 = 100_000;

/// On PostgreSQL a change's number is its project's generation, and the log keeps each
/// project's newest this many generations (migration 0014's triggers trim it).
pub(crate) const RETAINED_GENERATIONS: i64 = 10_000;

/// How far behind the newest change an index may be and still catch up, on `dialect`.
pub(crate) fn retained(dialect: crate::exec::Dialect) -> i64 {
    match dialect {
        crate::exec::Dialect::Sqlite => RETAINED,
        crate::exec::Dialect::Postgres => RETAINED_GENERATIONS,
    }
}

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

/// Of a list whose first sort key is a number, the most distinct values it is read by, value
/// by value (`ProjectIndex::by_groups`); with more, it is ordered as a list by text is.
const MAX_GROUPS: usize = 4_096;

/// The columns of a model the index holds, read for a load or a catch-up.
pub const IMAGE_COLUMNS: &str = "seq, id, name, name_lc, description_lc, resource_uri, \
     litellm_model, provider, status, mode, created_at, updated_at, created_by, tags, \
     capabilities, max_input_tokens, input_cost_per_token";

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
    /// As stored: names of `Capability` (another name, written by plain SQL, matches no
    /// filter, here as in the database).
    pub capabilities: Vec<String>,
    pub max_input_tokens: Option<i64>,
    pub input_cost_per_token: Option<f64>,
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
    /// Bit `i`: `Capability::ALL[i]`.
    capabilities: u16,
    max_input_tokens: Option<i64>,
    input_cost: Option<f64>,
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
    /// The models of each capability, by its place in `Capability::ALL`.
    capabilities: [RoaringBitmap; CAPABILITIES],
    /// The models of each `max_input_tokens` and each `input_cost_per_token` (none: in no
    /// bitmap), for the bounds on them.
    by_tokens: BTreeMap<i64, RoaringBitmap>,
    by_cost: BTreeMap<Cost, RoaringBitmap>,
    /// The models that have a `max_input_tokens`, an `input_cost_per_token`.
    with_tokens: RoaringBitmap,
    with_cost: RoaringBitmap,
    /// Each slot's model's id, as a number ordered as ids are: ranking by id reads this dense
    /// array rather than the rows.
    ids: Vec<u128>,
    /// The models' slots in the order of their ids.
    by_id: Vec<u32>,
}

const CAPABILITIES: usize = Capability::ALL.len();

/// A capability's place in `Capability::ALL`: its bit in `Row::capabilities`, its bitmap in
/// `ProjectIndex::capabilities`.
fn capability_index(c: Capability) -> usize {
    Capability::ALL
        .iter()
        .position(|x| *x == c)
        .expect("ALL lists every capability")
}

/// A price as a key of `by_cost`: ordered as the database orders numbers (-0 is 0; SQLite
/// keeps no NaN, it stores NULL instead).
#[derive(Debug, Clone, Copy)]
struct Cost(f64);

impl Cost {
    fn new(v: f64) -> Cost {
        Cost(v + 0.0)
    }
}

impl PartialEq for Cost {
    fn eq(&self, other: &Cost) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cost {}
impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Cost) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cost {
    fn cmp(&self, other: &Cost) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Two sort keys of one field, as the database compares them: text by bytes, numbers as
/// numbers, a missing number before every number.
fn compare_keys(a: SortValue<'_>, b: SortValue<'_>) -> Ordering {
    match (a, b) {
        (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
        (SortValue::Integer(a), SortValue::Integer(b)) => a.cmp(&b),
        (SortValue::Real(a), SortValue::Real(b)) => a.map(Cost::new).cmp(&b.map(Cost::new)),
        // Keys of one field are of one kind.
        _ => Ordering::Equal,
    }
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
            capabilities: std::array::from_fn(|_| RoaringBitmap::new()),
            by_tokens: BTreeMap::new(),
            by_cost: BTreeMap::new(),
            with_tokens: RoaringBitmap::new(),
            with_cost: RoaringBitmap::new(),
            ids: Vec::new(),
            by_id: Vec::new(),
        };
        for image in images {
            index.insert_row(image);
        }
        // The ids' order, made once rather than model by model.
        let mut by_id: Vec<u32> = index.all.iter().collect();
        by_id.sort_unstable_by_key(|slot| index.ids[*slot as usize]);
        index.by_id = by_id;
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
            let id = image.id.as_u128();
            let slot = self.insert_row(image);
            let at = self.by_id.partition_point(|s| self.ids[*s as usize] < id);
            self.by_id.insert(at, slot);
        }
        self.head = head;
    }

    /// Adds a model, all but its place in `by_id`; the slot it takes.
    fn insert_row(&mut self, image: Image) -> u32 {
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
        let mut capabilities = 0u16;
        for c in image
            .capabilities
            .iter()
            .filter_map(|c| Capability::parse(c))
        {
            capabilities |= 1 << capability_index(c);
        }
        for (i, bitmap) in self.capabilities.iter_mut().enumerate() {
            if capabilities & (1 << i) != 0 {
                bitmap.insert(slot);
            }
        }
        if let Some(n) = image.max_input_tokens {
            self.by_tokens.entry(n).or_default().insert(slot);
            self.with_tokens.insert(slot);
        }
        if let Some(c) = image.input_cost_per_token {
            self.by_cost.entry(Cost::new(c)).or_default().insert(slot);
            self.with_cost.insert(slot);
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
        if self.ids.len() <= slot as usize {
            self.ids.resize(slot as usize + 1, 0);
        }
        self.ids[slot as usize] = image.id.as_u128();
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
            capabilities,
            max_input_tokens: image.max_input_tokens,
            input_cost: image.input_cost_per_token,
        });
        slot
    }

    fn remove(&mut self, seq: i64) {
        let Some(slot) = self.by_seq.remove(&seq) else {
            return;
        };
        let Some(row) = self.rows[slot as usize].take() else {
            return;
        };
        let id = self.ids[slot as usize];
        let at = self.by_id.partition_point(|s| self.ids[*s as usize] < id);
        if self.by_id.get(at) == Some(&slot) {
            self.by_id.remove(at);
        }
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
        for (i, bitmap) in self.capabilities.iter_mut().enumerate() {
            if row.capabilities & (1 << i) != 0 {
                bitmap.remove(slot);
            }
        }
        if let Some(n) = row.max_input_tokens
            && let Some(b) = self.by_tokens.get_mut(&n)
        {
            b.remove(slot);
            if b.is_empty() {
                self.by_tokens.remove(&n);
            }
        }
        if let Some(c) = row.input_cost.map(Cost::new)
            && let Some(b) = self.by_cost.get_mut(&c)
        {
            b.remove(slot);
            if b.is_empty() {
                self.by_cost.remove(&c);
            }
        }
        self.with_tokens.remove(slot);
        self.with_cost.remove(slot);
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
        // The bounds: the union of the values in range.
        let mut ranges: Vec<RoaringBitmap> = Vec::new();
        if let Some(n) = f.min_input_tokens {
            ranges.push(self.by_tokens.range(n..).map(|(_, b)| b).union());
        }
        if let Some(p) = f.max_input_cost {
            let most = Cost::new(p.get());
            ranges.push(self.by_cost.range(..=most).map(|(_, b)| b).union());
        }
        let mut wanted: Vec<Option<&RoaringBitmap>> = ranges.iter().map(Some).collect();
        for c in &f.capabilities {
            wanted.push(Some(&self.capabilities[capability_index(*c)]));
        }
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
        // The cursor's values read once, for their fields.
        let after = match &q.paging {
            Paging::After(a) => Some((
                q.sort
                    .iter()
                    .zip(&a.values)
                    .map(|(k, v)| k.field.cursor_value(v))
                    .collect::<Vec<SortValue>>(),
                a.id,
            )),
            Paging::Page(_) => None,
        };
        let skip = usize::try_from(q.offset()).unwrap_or(usize::MAX);
        if needle.is_none()
            && let Some(groups) = self.number_groups(q)
        {
            return Answer {
                seqs: Some(self.by_groups(q, &matching, groups, after.as_ref(), skip)),
                total: matching.len(),
            };
        }
        if needle.is_none() && matching.len() > max_ordered {
            return Answer {
                seqs: None,
                total: matching.len(),
            };
        }
        // The needle's searcher is made once for every candidate (SIMD where the CPU has it).
        let finder = needle.map(|n| memchr::memmem::Finder::new(n.as_bytes()));
        let want = skip.saturating_add(q.limit as usize + 1);
        let mut total = 0u64;
        let candidates = matching
            .iter()
            .filter_map(|slot| self.rows[slot as usize].as_ref())
            .filter(|r| {
                finder.as_ref().is_none_or(|f| {
                    f.find(r.text(NAME_LC).as_bytes()).is_some()
                        || f.find(r.text(DESCRIPTION_LC).as_bytes()).is_some()
                })
            })
            .inspect(|_| total += 1)
            .filter(|r| {
                after
                    .as_ref()
                    .is_none_or(|(values, id)| self.after(q, r, values, *id))
            });
        let rows = self.best(q, candidates, want, matching.len() as usize);
        let seqs = rows.iter().skip(skip).map(|r| r.seq).collect();
        Answer {
            seqs: Some(seqs),
            total,
        }
    }

    /// The first `want` of `rows` in the list's order. A page near the start keeps its best
    /// rows in order as the candidates go by, most of them refused by one comparison with the
    /// last kept; a deeper one sorts them all (`hint`: about how many there are).
    fn best<'r>(
        &'r self,
        q: &ListQuery,
        rows: impl Iterator<Item = &'r Row>,
        want: usize,
        hint: usize,
    ) -> Vec<&'r Row> {
        let cmp = |a: &&Row, b: &&Row| self.compare(q, a, b);
        let near = want <= 256;
        let mut kept: Vec<&Row> = Vec::with_capacity(if near { want + 1 } else { hint });
        for r in rows {
            if !near {
                kept.push(r);
                continue;
            }
            if kept.len() == want {
                if want == 0 || cmp(&r, &kept[want - 1]) != Ordering::Less {
                    continue;
                }
                kept.pop();
            }
            let at = kept.partition_point(|x| cmp(x, &r) == Ordering::Less);
            kept.insert(at, r);
        }
        if !near {
            if want < kept.len() {
                if want == 0 {
                    return Vec::new();
                }
                kept.select_nth_unstable_by(want - 1, cmp);
                kept.truncate(want);
            }
            kept.sort_unstable_by(cmp);
        }
        kept
    }

    /// Of a list whose first sort key is a number, the models of each value of it in the
    /// list's order (`None`: those without one), when there are few values (a catalog's
    /// prices or contexts); `None` otherwise.
    fn number_groups(
        &self,
        q: &ListQuery,
    ) -> Option<Vec<(SortValue<'static>, Option<&RoaringBitmap>)>> {
        let first = q.sort.first()?;
        let mut groups: Vec<(SortValue<'static>, Option<&RoaringBitmap>)> = match first.field {
            SortField::InputCostPerToken if self.by_cost.len() <= MAX_GROUPS => {
                let mut g = vec![(SortValue::Real(None), None)];
                g.extend(
                    self.by_cost
                        .iter()
                        .map(|(c, b)| (SortValue::Real(Some(c.0)), Some(b))),
                );
                g
            }
            SortField::MaxInputTokens if self.by_tokens.len() <= MAX_GROUPS => {
                let mut g = vec![(SortValue::Integer(None), None)];
                g.extend(
                    self.by_tokens
                        .iter()
                        .map(|(n, b)| (SortValue::Integer(Some(*n)), Some(b))),
                );
                g
            }
            _ => return None,
        };
        if first.desc {
            groups.reverse();
        }
        Some(groups)
    }

    /// The page of a list with no search whose first sort key is a number, read group by
    /// group (`number_groups`): the groups before the cursor's or the offset's are passed
    /// over whole, and only the models of the groups the page reaches are ranked, by the rest
    /// of the order. However many models match (the database orders no such list), the work is
    /// an intersection per group and a look at the models of the few groups the page spans:
    /// their ids alone when the number is the only key.
    fn by_groups(
        &self,
        q: &ListQuery,
        matching: &RoaringBitmap,
        groups: Vec<(SortValue<'static>, Option<&RoaringBitmap>)>,
        after: Option<&(Vec<SortValue>, Uuid)>,
        skip: usize,
    ) -> Vec<i64> {
        let with = match q.sort[0].field {
            SortField::InputCostPerToken => &self.with_cost,
            _ => &self.with_tokens,
        };
        let desc = q.sort[0].desc;
        let room = q.limit as usize + 1;
        let (mut out, mut skipped): (Vec<i64>, usize) = (Vec::with_capacity(room), 0);
        for (value, bitmap) in groups {
            // Before the cursor's group, passed over; in it, each model is held to the cursor.
            let at_cursor = match after {
                Some((values, _)) => {
                    let o = compare_keys(value, values[0]);
                    match if desc { o.reverse() } else { o } {
                        Ordering::Less => continue,
                        Ordering::Equal => true,
                        Ordering::Greater => false,
                    }
                }
                None => false,
            };
            let slots = match bitmap {
                Some(b) => b & matching,
                None => matching - with,
            };
            let n = slots.len() as usize;
            if n == 0 {
                continue;
            }
            if !at_cursor && skipped + n <= skip {
                skipped += n;
                continue;
            }
            let want = (skip - skipped) + (room - out.len());
            let seqs: Vec<i64> = if q.sort.len() == 1 {
                // Equal in the one key: by id, in its direction (`ListQuery::id_desc`).
                let beyond = after.filter(|_| at_cursor).map(|(_, id)| id.as_u128());
                self.first_by_id(&slots, want, desc, beyond)
                    .into_iter()
                    .filter_map(|slot| self.rows[slot as usize].as_ref().map(|r| r.seq))
                    .collect()
            } else {
                let rows = slots
                    .iter()
                    .filter_map(|slot| self.rows[slot as usize].as_ref())
                    .filter(|r| {
                        !at_cursor
                            || after.is_some_and(|(values, id)| self.after(q, r, values, *id))
                    });
                self.best(q, rows, want, n).iter().map(|r| r.seq).collect()
            };
            let passed = (skip - skipped).min(seqs.len());
            skipped += passed;
            out.extend_from_slice(&seqs[passed..]);
            if out.len() >= room {
                break;
            }
        }
        out.truncate(room);
        out
    }

    /// The first `want` of `slots` by id, going up or down, after `beyond` if given. Where
    /// `slots` are many, the models are walked in the ids' order (`by_id`) from `beyond` on,
    /// and each is looked for in `slots`: about `want · models / slots` looks. Where they are
    /// few, each of them is ranked by its id instead.
    fn first_by_id(
        &self,
        slots: &RoaringBitmap,
        want: usize,
        desc: bool,
        beyond: Option<u128>,
    ) -> Vec<u32> {
        let n = u128::from(slots.len());
        if want == 0 || n == 0 {
            return Vec::new();
        }
        if n * n >= want as u128 * u128::from(self.all.len()) {
            let id = |s: &u32| self.ids[*s as usize];
            let mut out = Vec::with_capacity(want);
            let mut take = |slot: &u32| {
                if slots.contains(*slot) {
                    out.push(*slot);
                }
                out.len() < want
            };
            if desc {
                let end = beyond.map_or(self.by_id.len(), |b| {
                    self.by_id.partition_point(|s| id(s) < b)
                });
                for slot in self.by_id[..end].iter().rev() {
                    if !take(slot) {
                        break;
                    }
                }
            } else {
                let start = beyond.map_or(0, |b| self.by_id.partition_point(|s| id(s) <= b));
                for slot in &self.by_id[start..] {
                    if !take(slot) {
                        break;
                    }
                }
            }
            return out;
        }
        // Going down, the complement orders as the ids reversed.
        let key = |id: u128| if desc { !id } else { id };
        let beyond = beyond.map(key);
        let near = want <= 256;
        let mut kept: Vec<(u128, u32)> =
            Vec::with_capacity(if near { want + 1 } else { slots.len() as usize });
        for slot in slots {
            let k = key(self.ids[slot as usize]);
            if beyond.is_some_and(|b| k <= b) {
                continue;
            }
            if !near {
                kept.push((k, slot));
                continue;
            }
            if kept.len() == want {
                if k >= kept[want - 1].0 {
                    continue;
                }
                kept.pop();
            }
            let at = kept.partition_point(|x| x.0 < k);
            kept.insert(at, (k, slot));
        }
        if !near {
            if want < kept.len() {
                kept.select_nth_unstable(want - 1);
                kept.truncate(want);
            }
            kept.sort_unstable();
        }
        kept.into_iter().map(|(_, slot)| slot).collect()
    }

    /// The value a row is sorted by for `field`, as the database holds it.
    fn key<'r>(&'r self, row: &'r Row, field: SortField) -> SortValue<'r> {
        SortValue::Text(match field {
            SortField::Name => row.text(NAME),
            SortField::ResourceUri => row.text(RESOURCE_URI),
            SortField::LitellmModel => row.text(LITELLM_MODEL),
            SortField::Provider => self.value(row.provider),
            SortField::Status => self.value(row.status),
            SortField::Mode => self.value(row.mode),
            SortField::CreatedAt => row.text(CREATED_AT),
            SortField::UpdatedAt => row.text(UPDATED_AT),
            SortField::InputCostPerToken => return SortValue::Real(row.input_cost),
            SortField::MaxInputTokens => return SortValue::Integer(row.max_input_tokens),
        })
    }

    /// The list's order: its sort keys, then `id`, compared as SQLite compares them (text by
    /// bytes, numbers as numbers with a missing one first).
    fn compare(&self, q: &ListQuery, a: &Row, b: &Row) -> Ordering {
        for k in &q.sort {
            let o = compare_keys(self.key(a, k.field), self.key(b, k.field));
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = a.id.cmp(&b.id);
        if q.id_desc() { o.reverse() } else { o }
    }

    /// Whether `row` comes strictly after a cursor's row (its sort values and id).
    fn after(&self, q: &ListQuery, row: &Row, values: &[SortValue], id: Uuid) -> bool {
        for (k, v) in q.sort.iter().zip(values) {
            let o = compare_keys(self.key(row, k.field), *v);
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
            capabilities: vec![],
            max_input_tokens: None,
            input_cost_per_token: None,
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
    fn capabilities_bounds_and_number_sorts() {
        let priced = |seq: i64, caps: &[&str], tokens: Option<i64>, cost: Option<f64>| Image {
            capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
            max_input_tokens: tokens,
            input_cost_per_token: cost,
            ..image(seq, &format!("m{seq}"), "ACTIVE", &[])
        };
        let mut ix = ProjectIndex::new(
            0,
            [
                priced(1, &["vision"], Some(128_000), Some(0.000003)),
                priced(2, &["vision", "reasoning"], Some(8_192), Some(0.0)),
                priced(3, &["reasoning", "telepathy"], None, None),
                priced(4, &[], Some(128_000), Some(-0.0)),
            ],
        );
        let by = |filters: Filters, field: SortField, desc: bool| ListQuery {
            filters,
            sort: vec![SortKey { field, desc }],
            limit: 10,
            ..ListQuery::default()
        };
        let seqs = |ix: &ProjectIndex, q: &ListQuery| ix.answer(q, MAX_ORDERED).seqs.unwrap();
        let caps = |c: &[Capability]| Filters {
            capabilities: c.to_vec(),
            ..Filters::default()
        };
        let vision = caps(&[Capability::Vision]);
        assert_eq!(seqs(&ix, &by(vision, SortField::Name, false)), [1, 2]);
        let both = caps(&[Capability::Vision, Capability::Reasoning]);
        assert_eq!(seqs(&ix, &by(both, SortField::Name, false)), [2]);
        // A missing number sorts first going up, last going down; -0 ties with 0 (by id).
        let all = Filters::default();
        let cost = SortField::InputCostPerToken;
        assert_eq!(seqs(&ix, &by(all.clone(), cost, false)), [3, 2, 4, 1]);
        assert_eq!(seqs(&ix, &by(all.clone(), cost, true)), [1, 4, 2, 3]);
        let tokens = SortField::MaxInputTokens;
        assert_eq!(seqs(&ix, &by(all, tokens, true)), [4, 1, 2, 3]);
        // Bounds: a model without a value never matches.
        let bounds = |min: Option<i64>, max: Option<f64>| Filters {
            min_input_tokens: min,
            max_input_cost: max.and_then(modelreg_core::list::Price::new),
            ..Filters::default()
        };
        let q = by(bounds(Some(8_192), None), tokens, false);
        assert_eq!(
            (seqs(&ix, &q), ix.answer(&q, MAX_ORDERED).total),
            (vec![2, 1, 4], 3)
        );
        assert_eq!(seqs(&ix, &by(bounds(None, Some(0.0)), cost, false)), [2, 4]);
        assert_eq!(
            seqs(&ix, &by(bounds(Some(100_000), Some(0.000003)), cost, true)),
            [1, 4]
        );
        // A cursor after a missing number, going up: every number follows.
        let mut q = by(Filters::default(), cost, false);
        q.paging = Paging::After(After {
            values: vec![String::new()],
            id: Uuid::from_u128(3),
        });
        assert_eq!(seqs(&ix, &q), [2, 4, 1]);
        // A change moves a model out of a capability and a bound.
        ix.apply(1, &[1], vec![priced(1, &[], Some(100), Some(0.5))]);
        let q = by(caps(&[Capability::Vision]), SortField::Name, false);
        assert_eq!(seqs(&ix, &q), [2]);
        let q = by(bounds(Some(8_192), None), tokens, false);
        assert_eq!(seqs(&ix, &q), [2, 4]);
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
