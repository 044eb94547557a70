//! The in-memory list index (`list_index.rs`) answers every list exactly as the database does,
//! on both backends: two stores over one database (a SQLite file, a PostgreSQL schema), one
//! with the index and one without, are written to at random (through either, and by plain SQL,
//! as another process would) and asked the same random lists, page by page and cursor by
//! cursor, after every few writes.

use std::sync::Arc;

use modelreg_core::{
    audit::{AuditAction, AuditEntry},
    catalog::Capability,
    list::{After, Filters, ListQuery, Paging, Price, SortField, SortKey},
    model::{Mode, Model, ModelFields, Status},
    resource_uri::ResourceUri,
    secrets::SealedCredentials,
    store::{ModelChange, NewModel, Store},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use modelreg_store::{
    PoolSettings, PostgresStore, SqliteStore,
    testing::{PgSchema, plain_fields},
};
use sqlx::Connection;
use uuid::Uuid;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const WORDS: [&str; 9] = [
    "Sonnet",
    "Haiku",
    "GPT-4o",
    "Gemini",
    "Llama",
    "Zephyr",
    "ÉCLAIR",
    "50%_off",
    "back\\slash",
];
const TEAMS: [&str; 4] = ["payments", "growth", "risk", "search"];
const PROVIDERS: [&str; 3] = ["openai", "anthropic", "bedrock"];
const TAGS: [&str; 5] = ["prod", "staging", "eu", "us", "beta"];
const ACTORS: [&str; 2] = ["user:alice", "service:ci"];
/// Capabilities the models have (a query may also ask for one none has).
const CAPABILITIES: [Capability; 4] = [
    Capability::Vision,
    Capability::FunctionCalling,
    Capability::Reasoning,
    Capability::WebSearch,
];
/// Prices and contexts with ties, as a catalog fills them; a model may also have none, or one
/// of its own.
const COSTS: [f64; 6] = [0.0, 0.0000001, 0.0000025, 0.000015, 0.00003, 1.0];
const CONTEXTS: [i64; 5] = [4096, 8192, 128_000, 200_000, 1_000_000];

fn random_cost(r: &mut Rng) -> f64 {
    if r.chance(20) {
        r.below(100_000) as f64 * 1e-10
    } else {
        *r.pick(&COSTS)
    }
}

fn random_context(r: &mut Rng) -> i64 {
    if r.chance(20) {
        1 + r.below(2_000_000) as i64
    } else {
        *r.pick(&CONTEXTS)
    }
}

fn scope(project: &str) -> TenantScope {
    TenantScope::new(
        OrgId::parse("acme").unwrap(),
        ProjectId::parse(project).unwrap(),
    )
}

fn audit() -> AuditEntry {
    AuditEntry {
        action: AuditAction::Update,
        principal: "user:test".into(),
        on_behalf_of: None,
        request_id: None,
        changes: serde_json::json!({}),
    }
}

fn random_fields(r: &mut Rng) -> ModelFields {
    let name = format!("{} {} {}", r.pick(&WORDS), r.pick(&TEAMS), r.below(1000));
    let mut tags: Vec<String> = TAGS
        .iter()
        .filter(|_| r.chance(35))
        .map(|t| (*t).to_owned())
        .collect();
    tags.sort();
    ModelFields {
        litellm_model: format!("{}/m{}", r.pick(&PROVIDERS), r.below(5)),
        provider: if r.chance(90) {
            Some((*r.pick(&PROVIDERS)).to_owned())
        } else {
            None
        },
        description: if r.chance(60) {
            Some(format!("{} for {}", r.pick(&WORDS), r.pick(&TEAMS)))
        } else {
            None
        },
        tags,
        mode: if r.chance(80) {
            Some(*r.pick(&Mode::ALL))
        } else {
            None
        },
        status: *r.pick(&Status::ALL),
        // In the set's order, as the service stores them.
        capabilities: Capability::ALL
            .iter()
            .filter(|c| CAPABILITIES.contains(c) && r.chance(40))
            .map(|c| c.as_str().to_owned())
            .collect(),
        input_cost_per_token: r.chance(80).then(|| random_cost(r)),
        max_input_tokens: r.chance(80).then(|| random_context(r)),
        ..plain_fields(&name)
    }
}

fn new_model(r: &mut Rng, n: usize) -> NewModel {
    NewModel {
        id: Uuid::now_v7(),
        resource_uri: ResourceUri::parse(&format!("m-{n}")).unwrap(),
        generated: false,
        fields: random_fields(r),
        catalog: Default::default(),
        credentials: SealedCredentials {
            kek_id: "k".into(),
            blob: vec![1],
            fields: vec!["api_key".into()],
        },
        actor: (*r.pick(&ACTORS)).to_owned(),
        now: Timestamp::now(),
    }
}

/// A random list query over what the models hold.
fn random_query(r: &mut Rng, names: &[String]) -> ListQuery {
    let mut f = Filters::default();
    if r.chance(50) && !names.is_empty() {
        let name = r.pick(names).to_lowercase();
        let chars: Vec<char> = name.chars().collect();
        let len = 1 + r.below(7.min(chars.len()));
        let start = r.below(chars.len() + 1 - len);
        f.search = Some(chars[start..start + len].iter().collect());
    } else if r.chance(10) {
        f.search = Some(
            r.pick(&["%", "_", "\\", "nothing at all", "50%_", "é"])
                .to_string(),
        );
    }
    if r.chance(30) {
        f.status = Some(*r.pick(&Status::ALL));
    }
    if r.chance(25) {
        f.mode = Some(*r.pick(&Mode::ALL));
    }
    if r.chance(25) {
        f.provider = Some((*r.pick(&PROVIDERS)).to_owned());
    }
    if r.chance(15) {
        f.created_by = Some((*r.pick(&ACTORS)).to_owned());
    }
    if r.chance(10) {
        f.usable_only = true;
    }
    for _ in 0..r.below(3) {
        let t = (*r.pick(&TAGS)).to_owned();
        if !f.tags.contains(&t) {
            f.tags.push(t);
        }
    }
    if r.chance(30) {
        for _ in 0..1 + r.below(2) {
            f.capabilities.push(if r.chance(5) {
                Capability::ComputerUse
            } else {
                *r.pick(&CAPABILITIES)
            });
        }
        // As the parameters give them: in the set's order, once each.
        f.capabilities.sort();
        f.capabilities.dedup();
    }
    if r.chance(25) {
        f.min_input_tokens = Some(random_context(r));
    }
    if r.chance(25) {
        f.max_input_cost = Price::new(random_cost(r));
    }
    let mut sort = Vec::new();
    for _ in 0..1 + r.below(2) {
        let field = *r.pick(&SortField::ALL);
        if !sort.iter().any(|k: &SortKey| k.field == field) {
            sort.push(SortKey {
                field,
                desc: r.chance(50),
            });
        }
    }
    ListQuery {
        // Mostly the first pages; now and then a deep one (more than 256 rows to skip is
        // ordered another way by the index).
        paging: Paging::Page(if r.chance(15) {
            8 + r.below(8) as u32
        } else {
            1 + r.below(3) as u32
        }),
        limit: 1 + r.below(30) as u32,
        filters: f,
        sort,
    }
}

/// What a page says: its models' ids, its total, whether more follow.
fn summary(page: &modelreg_core::list::ListPage) -> (Vec<Uuid>, u64, bool, bool) {
    (
        page.items.iter().map(|m| m.id).collect(),
        page.total_items,
        page.has_more,
        page.total_is_estimate,
    )
}

/// The next page's query after `last`, by cursor.
fn after(q: &ListQuery, last: &Model) -> ListQuery {
    let mut next = q.clone();
    next.paging = Paging::After(After {
        values: q.sort.iter().map(|k| k.field.value_of(last)).collect(),
        id: last.id,
    });
    next
}

async fn same_answers(
    indexed: &Arc<dyn Store>,
    plain: &Arc<dyn Store>,
    t: &TenantScope,
    q: &ListQuery,
) {
    let a = indexed.list_models(t, q).await.unwrap();
    let b = plain.list_models(t, q).await.unwrap();
    assert!(
        a.items.iter().all(|m| m.scope == *t),
        "only the project's own models"
    );
    assert_eq!(summary(&a), summary(&b), "{q:?}");
    assert_eq!(a.generation, b.generation, "{q:?}");
    assert_eq!(a.slices, b.slices, "{q:?}");
    // The models themselves, every field, not only their ids.
    let fields = |p: &modelreg_core::list::ListPage| -> Vec<ModelFields> {
        p.items.iter().map(|m| m.fields.clone()).collect()
    };
    assert_eq!(fields(&a), fields(&b), "{q:?}");
    // The next pages, by cursor.
    let mut a = a;
    let mut next = q.clone();
    for _ in 0..4 {
        let Some(last) = a.items.last().filter(|_| a.has_more) else {
            break;
        };
        next = after(&next, last);
        a = indexed.list_models(t, &next).await.unwrap();
        let b = plain.list_models(t, &next).await.unwrap();
        assert_eq!(summary(&a).0, summary(&b).0, "{next:?}");
        assert_eq!(a.has_more, b.has_more, "{next:?}");
    }
}

/// A list sorted first by a price or a context, with no search, in short pages: the index
/// reads it value by value, and within a value in the order of ids.
fn random_number_query(r: &mut Rng, names: &[String]) -> ListQuery {
    let mut q = random_query(r, names);
    q.filters.search = None;
    let field = *r.pick(&[SortField::InputCostPerToken, SortField::MaxInputTokens]);
    q.sort.retain(|k| k.field != field);
    q.sort.insert(
        0,
        SortKey {
            field,
            desc: r.chance(50),
        },
    );
    q.sort.truncate(1 + usize::from(r.chance(30)));
    q.limit = 1 + r.below(4) as u32;
    if r.chance(70) {
        q.filters = Filters::default();
    }
    q
}

/// Another process's connection to the same database, writing by plain SQL.
enum PlainSql {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgConnection),
}

impl PlainSql {
    /// Sets a model's catalog fields, its version left as it was.
    async fn set_catalog(&mut self, id: Uuid, caps: &str, cost: Option<f64>, ctx: Option<i64>) {
        match self {
            PlainSql::Sqlite(c) => {
                c.execute(
                    "UPDATE models SET capabilities = ?, input_cost_per_token = ?, \
                     max_input_tokens = ? WHERE id = ?",
                    rusqlite::params![caps, cost, ctx, id.to_string()],
                )
                .unwrap();
            }
            PlainSql::Postgres(c) => {
                sqlx::query(
                    "UPDATE models SET capabilities = $1, input_cost_per_token = $2, \
                     max_input_tokens = $3 WHERE id = $4",
                )
                .bind(caps)
                .bind(cost)
                .bind(ctx)
                .bind(id)
                .execute(c)
                .await
                .unwrap();
            }
        }
    }

    /// Inserts 3,000 models into project `other`, in one statement.
    async fn bulk_insert_other(&mut self) {
        match self {
            PlainSql::Sqlite(c) => {
                c.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
                     INSERT INTO models (id, organization_id, project_id, resource_uri, name, \
                     name_lc, litellm_model, status, created_at, updated_at, created_by, \
                     updated_by, credentials_kek_id, credentials) \
                     SELECT printf('%08x-0000-4000-8000-000000000000', i), 'acme', 'other', \
                     'bulk-' || i, 'Bulk', 'bulk', 'openai/x', 'ACTIVE', \
                     '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'user:sql', \
                     'user:sql', 'k', x'00' FROM n",
                    [],
                )
                .unwrap();
            }
            PlainSql::Postgres(c) => {
                sqlx::query(
                    "INSERT INTO models (id, organization_id, project_id, resource_uri, name, \
                     name_lc, litellm_model, status, created_at, updated_at, created_by, \
                     updated_by, credentials_kek_id, credentials) \
                     SELECT (lpad(to_hex(i), 8, '0') || '-0000-4000-8000-000000000000')::uuid, \
                     'acme', 'other', 'bulk-' || i, 'Bulk', 'bulk', 'openai/x', 'ACTIVE', \
                     timestamptz '2026-01-01T00:00:00Z', timestamptz '2026-01-01T00:00:00Z', \
                     'user:sql', 'user:sql', 'k', '\\x00'::bytea \
                     FROM generate_series(1, 3000) AS i",
                )
                .execute(c)
                .await
                .unwrap();
            }
        }
    }

    /// Renames a model of project `p` by hand.
    async fn rename_in_p(&mut self, uri: &str) {
        match self {
            PlainSql::Sqlite(c) => {
                c.execute(
                    "UPDATE models SET name = 'Renamed by hand', name_lc = 'renamed by hand' \
                     WHERE project_id = 'p' AND resource_uri = ?",
                    [uri],
                )
                .unwrap();
            }
            PlainSql::Postgres(c) => {
                sqlx::query(
                    "UPDATE models SET name = 'Renamed by hand', name_lc = 'renamed by hand' \
                     WHERE project_id = 'p' AND resource_uri = $1",
                )
                .bind(uri)
                .execute(c)
                .await
                .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn the_list_index_answers_as_the_database_does_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ix.db");
    let url = format!("sqlite://{}", path.display());
    let mut indexed = SqliteStore::open(&path).await.unwrap();
    // Lists with no search matching more than 40 models are ordered by the database, with the
    // index's total; fewer, by the index.
    indexed.limit_list_index_ordering(40);
    let indexed = Arc::new(indexed);
    let loads = {
        let indexed = indexed.clone();
        Box::new(move || indexed.list_index_loads())
    };
    let sql = rusqlite::Connection::open(&path).unwrap();
    sql.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    answers_as_the_database_does(indexed, loads, &url, PlainSql::Sqlite(sql)).await;
}

#[tokio::test]
async fn the_list_index_answers_as_the_database_does_on_postgres() {
    let schema = PgSchema::create().await;
    let mut indexed = PostgresStore::open(&schema.url, &PoolSettings::default())
        .await
        .unwrap();
    indexed.limit_list_index_ordering(40);
    let indexed = Arc::new(indexed);
    let loads = {
        let indexed = indexed.clone();
        Box::new(move || indexed.list_index_loads())
    };
    let sql = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    answers_as_the_database_does(indexed, loads, &schema.url, PlainSql::Postgres(sql)).await;
}

async fn answers_as_the_database_does(
    indexed: Arc<dyn Store>,
    loads: Box<dyn Fn() -> u64>,
    url: &str,
    mut sql: PlainSql,
) {
    let plain = modelreg_store::open(
        url,
        &PoolSettings {
            list_index_max_models: 0,
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    let (p, other) = (scope("p"), scope("other"));
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<Model> = Vec::new();
    let mut n = 0;
    // Another project's models never show in p's lists.
    for _ in 0..20 {
        n += 1;
        indexed
            .insert_model(&other, new_model(&mut r, n), &audit())
            .await
            .unwrap();
    }
    for round in 0..12 {
        for _ in 0..(if round == 0 { 150 } else { 25 }) {
            // Writes through either store: the index follows the log, whoever wrote.
            let via = if r.chance(70) { &indexed } else { &plain };
            let op = r.below(10);
            if live.is_empty() || op < 5 {
                n += 1;
                live.push(
                    via.insert_model(&p, new_model(&mut r, n), &audit())
                        .await
                        .unwrap(),
                );
            } else if op < 8 {
                let i = r.below(live.len());
                let change = ModelChange {
                    id: live[i].id,
                    expected_version: live[i].version,
                    fields: random_fields(&mut r),
                    catalog: Default::default(),
                    credentials: None,
                    actor: "user:bob".into(),
                    now: Timestamp::now(),
                };
                live[i] = via
                    .update_model(&p, change, &audit())
                    .await
                    .unwrap()
                    .unwrap();
            } else {
                let m = live.swap_remove(r.below(live.len()));
                assert!(via.delete_model(&p, m.id, None, &audit()).await.unwrap());
            }
        }
        // Another process changes the catalog's fields by plain SQL (the version stays, so
        // the stores' own updates still match it).
        if !live.is_empty() {
            let i = r.below(live.len());
            let caps: Vec<&str> = CAPABILITIES
                .iter()
                .filter(|_| r.chance(50))
                .map(|c| c.as_str())
                .collect();
            let cost = r.chance(80).then(|| random_cost(&mut r));
            let context = r.chance(80).then(|| random_context(&mut r));
            let caps = serde_json::to_string(&caps).unwrap();
            sql.set_catalog(live[i].id, &caps, cost, context).await;
        }
        let names: Vec<String> = live.iter().map(|m| m.fields.name.clone()).collect();
        for _ in 0..60 {
            let q = random_query(&mut r, &names);
            same_answers(&indexed, &plain, &p, &q).await;
        }
        for _ in 0..20 {
            let q = random_number_query(&mut r, &names);
            same_answers(&indexed, &plain, &p, &q).await;
        }
    }
    // Thousands of writes to another project (plain SQL, as another process would make them)
    // leave p's index to catch up on p's own few changes, not to load p again.
    let loaded = loads();
    assert!(loaded > 0, "the index answered: p was loaded");
    sql.bulk_insert_other().await;
    n += 1;
    live.push(
        indexed
            .insert_model(&p, new_model(&mut r, n), &audit())
            .await
            .unwrap(),
    );
    same_answers(&indexed, &plain, &p, &ListQuery::default()).await;
    assert_eq!(loads(), loaded, "p's index caught up on its own changes");
    // A write by another connection to p itself.
    sql.rename_in_p(live[0].resource_uri.as_str()).await;
    let q = ListQuery {
        filters: Filters {
            search: Some("by hand".into()),
            ..Filters::default()
        },
        ..ListQuery::default()
    };
    let page = indexed.list_models(&p, &q).await.unwrap();
    assert_eq!(summary(&page).0, vec![live[0].id]);
    same_answers(&indexed, &plain, &p, &q).await;
    indexed.close().await;
    plain.close().await;
}

/// On PostgreSQL, writers of one project commit in an order of their own while lists catch
/// the index up from many snapshots at once. A change is numbered by the project's generation,
/// taken under the row every write of the project locks until it commits (migration 0014), so
/// none is ever numbered below one a snapshot has already seen: after the writes, the index
/// answers as the database does. (Numbered by a sequence, a change committed after a larger
/// one was seen would be missed for good.)
/// Sets its flag when dropped: a failing test stops its readers before its schema is dropped
/// (a reader's open snapshot would hold the drop up).
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_lose_no_change_on_postgres() {
    let schema = PgSchema::create().await;
    let settings = PoolSettings {
        max_connections: 16,
        ..PoolSettings::default()
    };
    let indexed: Arc<dyn Store> =
        Arc::new(PostgresStore::open(&schema.url, &settings).await.unwrap());
    let plain = modelreg_store::open(
        &schema.url,
        &PoolSettings {
            list_index_max_models: 0,
            ..settings.clone()
        },
    )
    .await
    .unwrap();
    let p = scope("p");
    // Listed while empty, the index is loaded at no change: the first create must follow it.
    let all = ListQuery {
        limit: 1_000,
        ..ListQuery::default()
    };
    same_answers(&indexed, &plain, &p, &all).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _stop_readers = StopOnDrop(stop.clone());
    // Readers: lists that keep loading and catching the index up while the writes run.
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let (indexed, p, stop) = (indexed.clone(), p.clone(), stop.clone());
            tokio::spawn(async move {
                let mut r = Rng(0x5151 + i);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let q = random_query(&mut r, &[]);
                    indexed.list_models(&p, &q).await.unwrap();
                }
            })
        })
        .collect();
    // Writers: creates, updates and deletes of one project, eight at a time.
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let p = p.clone();
            let via = if w % 2 == 0 {
                indexed.clone()
            } else {
                plain.clone()
            };
            tokio::spawn(async move {
                let mut r = Rng(0x9e37_79b9 + w);
                let mut mine: Vec<Model> = Vec::new();
                for i in 0..60 {
                    let n = w as usize * 1_000 + i;
                    let op = r.below(10);
                    if mine.is_empty() || op < 5 {
                        mine.push(
                            via.insert_model(&p, new_model(&mut r, n), &audit())
                                .await
                                .unwrap(),
                        );
                    } else if op < 8 {
                        let k = r.below(mine.len());
                        let change = ModelChange {
                            id: mine[k].id,
                            expected_version: mine[k].version,
                            fields: random_fields(&mut r),
                            catalog: Default::default(),
                            credentials: None,
                            actor: "user:bob".into(),
                            now: Timestamp::now(),
                        };
                        mine[k] = via
                            .update_model(&p, change, &audit())
                            .await
                            .unwrap()
                            .unwrap();
                    } else {
                        let m = mine.swap_remove(r.below(mine.len()));
                        assert!(via.delete_model(&p, m.id, None, &audit()).await.unwrap());
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let mut r = Rng(7);
    same_answers(&indexed, &plain, &p, &all).await;
    for _ in 0..40 {
        let q = random_query(&mut r, &[]);
        same_answers(&indexed, &plain, &p, &q).await;
    }
    indexed.close().await;
    plain.close().await;
}
