//! Lists answered by the in-memory index of their project (`list_index.rs`), on both backends.
//!
//! Each answer is made inside one read-only snapshot (`Backend::snapshot`: a read transaction
//! of a SQLite reader, a `REPEATABLE READ` transaction on PostgreSQL), so that the index, the
//! page's rows and the generations the API keeps the page under are all of one snapshot:
//! 1. the project's newest change in `model_changes` (and the database's, its number of
//!    models, and the generations of `list_query::meta`) is read, in one statement;
//! 2. an index at that change answers at once; one behind it reads the models changed since
//!    (at most `MAX_CATCH_UP`) and applies them; one ahead of it (another reader brought it
//!    to a newer snapshot) makes the request begin again; a project with no index, or one
//!    too far behind, is loaded by a scanning read while its lists go to the database;
//! 3. the page's rows are read by seq.

use std::sync::{Arc, atomic::Ordering};

use modelreg_core::{
    Result,
    list::{ListPage, ListQuery},
    model::Model,
    tenant::{OrgId, ProjectId, TenantScope},
};

use sea_query::Expr;

use super::{Backend, Cost, SqlStore};
use crate::{
    exec::{Dialect, Exec, RowAccess, Value, params},
    list_index::{self, Answer, IMAGE_COLUMNS, Image, MAX_CATCH_UP, ProjectIndex, Slot, retained},
    list_query,
    rows::{finish_models, json_list, model_columns_sql, model_from_row},
    writes::for_dialect,
};

/// What one snapshot made of a list.
enum Outcome {
    Page(ListPage),
    /// The database answers it (the project is too large to hold).
    Database,
    /// The project has no index (or one too far behind): load it, for this reason.
    Load(&'static str),
    /// The index is ahead of this snapshot: take a newer one.
    Again,
}

/// The project's newest change, the database's, the project's number of models, and the
/// generations a page of the list is kept under (`list_query::meta`): one statement, of the
/// snapshot the answer is made in.
#[derive(Default)]
struct Heads {
    project: i64,
    newest: i64,
    models: i64,
    generation: Option<i64>,
    slices: Option<i64>,
}

/// Each `MAX` is a bare subquery, with `COALESCE` outside it: SQLite's shell timed
/// `(SELECT COALESCE(MAX(change), 0) …)` at about 1 ms over a project of 100,000 changes and
/// this form at under 0.1 ms (the benchmark's figures did not move either way).
const PROJECT_HEAD: &str = "COALESCE((SELECT MAX(change) FROM model_changes \
     WHERE organization_id = ? AND project_id = ?), 0)";
const NEWEST: &str = "COALESCE((SELECT MAX(change) FROM model_changes), 0)";
const MODELS: &str = "COALESCE((SELECT models FROM model_counts \
     WHERE organization_id = ? AND project_id = ?), 0)";

async fn heads(c: &mut impl Exec, scope: &TenantScope, q: &ListQuery) -> Result<Heads> {
    let (org, project) = (scope.org.as_str(), scope.project.as_str());
    let mut sel = list_query::meta(scope, q);
    // On SQLite a change's number is the database's, and the log keeps the newest of them all;
    // on PostgreSQL it is the project's generation, and the log keeps each project's newest
    // (migration 0014): there "newest" is the project's own head.
    // sea-query takes a custom expression's `?` as they are; PostgreSQL's are `$1`, `$2`, …
    let dialect = c.dialect();
    let marked = |s: &str| match dialect {
        Dialect::Sqlite => s.to_owned(),
        Dialect::Postgres => crate::sql::dollar_placeholders(s),
    };
    sel.expr_as(
        Expr::cust_with_values(marked(PROJECT_HEAD), [org, project]),
        "project",
    )
    .expr_as(
        Expr::cust_with_values(marked(MODELS), [org, project]),
        "models",
    );
    if dialect == Dialect::Sqlite {
        sel.expr_as(Expr::cust(NEWEST), "newest");
    }
    let (sql, values) = list_query::build(sel, dialect);
    let heads = c
        .fetch_optional(&sql, values, |r| {
            let project = r.int("project")?;
            Ok(Heads {
                project,
                newest: match dialect {
                    Dialect::Sqlite => r.int("newest")?,
                    Dialect::Postgres => project,
                },
                models: r.int("models")?,
                generation: r.opt_int(list_query::GENERATION)?,
                slices: r.opt_int(list_query::SLICES)?,
            })
        })
        .await?;
    Ok(heads.unwrap_or_default())
}

fn image_from_row(r: &dyn RowAccess) -> Result<Image> {
    Ok(Image {
        seq: r.int("seq")?,
        id: r.uuid("id")?,
        name: r.text("name")?,
        name_lc: r.text("name_lc")?,
        description_lc: r.text("description_lc")?,
        resource_uri: r.text("resource_uri")?,
        litellm_model: r.text("litellm_model")?,
        provider: r.text("provider")?,
        status: r.text("status")?,
        mode: r.text("mode")?,
        created_at: time_text(r, "created_at")?,
        updated_at: time_text(r, "updated_at")?,
        created_by: r.text("created_by")?,
        tags: json_list(r, "tags")?,
        capabilities: json_list(r, "capabilities")?,
        max_input_tokens: r.opt_int("max_input_tokens")?,
        input_cost_per_token: r.opt_real("input_cost_per_token")?,
    })
}

/// A time column as the index orders it: the fixed-width RFC 3339 text SQLite stores, whose
/// order is the times' (PostgreSQL's `timestamptz` is read and written the same way).
fn time_text(r: &dyn RowAccess, col: &str) -> Result<String> {
    match r.opt_timestamp(col)? {
        Some(t) => Ok(t.to_string()),
        None => Err(modelreg_core::Error::Internal(format!("{col} is null"))),
    }
}

/// `?, ?, …` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The models of `seqs`, as the index holds them (a seq with no row was deleted).
async fn images(c: &mut impl Exec, seqs: &[i64]) -> Result<Vec<Image>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(500) {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM models WHERE seq IN ({})",
            marks(chunk.len())
        );
        let sql = for_dialect(c, sql);
        let values = chunk.iter().map(|s| Value::from(*s)).collect();
        out.extend(c.fetch(&sql, values, image_from_row).await?);
    }
    Ok(out)
}

/// What a catch-up did.
enum CaughtUp {
    /// The index is at `to`.
    Yes,
    /// Another reader moved it elsewhere meanwhile.
    Moved,
    /// More than `MAX_CATCH_UP` changes: load the project instead.
    TooFar,
}

/// Brings `slot`'s index from `from` to `to` in this snapshot: the models changed between.
async fn catch_up(
    c: &mut impl Exec,
    scope: &TenantScope,
    slot: &Slot,
    from: i64,
    to: i64,
) -> Result<CaughtUp> {
    // Change numbers are the database's, shared by every project: the project's own changes
    // between them are counted here, at most one past the bound.
    let sql = for_dialect(
        c,
        "SELECT model_seq FROM model_changes \
         WHERE organization_id = ? AND project_id = ? AND change > ? AND change <= ? \
         ORDER BY change LIMIT ?"
            .to_owned(),
    );
    let mut seqs: Vec<i64> = c
        .fetch(
            &sql,
            params![
                scope.org.as_str(),
                scope.project.as_str(),
                from,
                to,
                MAX_CATCH_UP + 1
            ],
            |r| r.int("model_seq"),
        )
        .await?;
    if i64::try_from(seqs.len()).unwrap_or(i64::MAX) > MAX_CATCH_UP {
        return Ok(CaughtUp::TooFar);
    }
    seqs.sort_unstable();
    seqs.dedup();
    let images = images(c, &seqs).await?;
    let mut index = slot.index.write().unwrap_or_else(|e| e.into_inner());
    Ok(match index.as_mut() {
        Some(ix) if ix.head == from => {
            ix.apply(to, &seqs, images);
            CaughtUp::Yes
        }
        Some(ix) if ix.head == to => CaughtUp::Yes,
        _ => CaughtUp::Moved,
    })
}

/// One attempt at the list in the connection's current snapshot.
async fn in_snapshot(
    c: &mut impl Exec,
    slot: &Slot,
    scope: &TenantScope,
    q: &ListQuery,
    (max_models, max_ordered): (u64, u64),
) -> Result<Outcome> {
    let heads = heads(c, scope, q).await?;
    if u64::try_from(heads.models).unwrap_or(u64::MAX) > max_models {
        return Ok(Outcome::Database);
    }
    let behind = {
        let index = slot.index.read().unwrap_or_else(|e| e.into_inner());
        match index.as_ref() {
            None => return Ok(Outcome::Load("not loaded")),
            Some(ix) if ix.head > heads.project => return Ok(Outcome::Again),
            Some(ix) if ix.head == heads.project => None,
            Some(ix) => Some(ix.head),
        }
    };
    if let Some(from) = behind {
        // The log keeps the newest changes: one further behind may have lost some.
        if from < heads.newest - retained(c.dialect()) {
            return Ok(Outcome::Load("behind the changes kept"));
        }
        match catch_up(c, scope, slot, from, heads.project).await? {
            CaughtUp::Yes => {}
            CaughtUp::Moved => return Ok(Outcome::Again),
            CaughtUp::TooFar => return Ok(Outcome::Load("too many changes behind")),
        }
    }
    let answer = {
        let index = slot.index.read().unwrap_or_else(|e| e.into_inner());
        match index.as_ref() {
            Some(ix) if ix.head == heads.project => ix.answer(q, max_ordered),
            _ => return Ok(Outcome::Again),
        }
    };
    let Answer { seqs, total } = answer;
    let total = i64::try_from(total).unwrap_or(i64::MAX);
    let models = match seqs {
        Some(seqs) => rows(c, &seqs).await?,
        // Many models and no search: the sort's index finds the page at once; the total is
        // the index's, exact (a count in the database would visit them all, or stop at the cap).
        None => {
            let dialect = c.dialect();
            let (sql, values) = list_query::build(list_query::page(scope, q, dialect), dialect);
            c.fetch(&sql, values, model_from_row).await?
        }
    };
    let mut page = finish_models(q, models, total, heads.generation);
    page.slices = heads.slices;
    Ok(Outcome::Page(page))
}

/// The project's index, made from the connection's current snapshot; `None` for a project
/// too large to hold.
async fn load_in_snapshot(
    c: &mut impl Exec,
    scope: &TenantScope,
    max_models: u64,
) -> Result<Option<ProjectIndex>> {
    let heads = heads(c, scope, &ListQuery::default()).await?;
    if u64::try_from(heads.models).unwrap_or(u64::MAX) > max_models {
        return Ok(None);
    }
    let sql = for_dialect(
        c,
        format!("SELECT {IMAGE_COLUMNS} FROM models WHERE organization_id = ? AND project_id = ?"),
    );
    let images = c
        .fetch(
            &sql,
            params![scope.org.as_str(), scope.project.as_str()],
            image_from_row,
        )
        .await?;
    Ok(Some(ProjectIndex::new(heads.project, images)))
}

/// The page's models, in the order of `seqs`.
async fn rows(c: &mut impl Exec, seqs: &[i64]) -> Result<Vec<Model>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT seq, {} FROM models WHERE seq IN ({})",
        model_columns_sql(),
        marks(seqs.len())
    );
    let sql = for_dialect(c, sql);
    let values = seqs.iter().map(|s| Value::from(*s)).collect();
    let mut found = c
        .fetch(&sql, values, |r| Ok((r.int("seq")?, model_from_row(r)?)))
        .await?;
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some(i) = found.iter().position(|(s, _)| s == seq) {
            out.push(found.swap_remove(i).1);
        }
    }
    Ok(out)
}

impl<B: Backend> SqlStore<B> {
    /// The list from its project's index, or `None` where the database answers it.
    pub(super) async fn indexed_list(
        &self,
        scope: &TenantScope,
        q: &ListQuery,
    ) -> Result<Option<ListPage>> {
        let Some(indexes) = &self.indexes else {
            return Ok(None);
        };
        let slot = indexes.slot(scope);
        let limits = (indexes.max_models, indexes.max_ordered);
        for _ in 0..4 {
            let (s, scope2, q2) = (slot.clone(), scope.clone(), q.clone());
            let outcome = self
                .backend
                .snapshot(Cost::Point, move |c| {
                    Box::pin(async move { in_snapshot(c, &s, &scope2, &q2, limits).await })
                })
                .await?;
            match outcome {
                Outcome::Page(page) => return Ok(Some(page)),
                Outcome::Database => return Ok(None),
                Outcome::Again => continue,
                Outcome::Load(reason) => {
                    // The lists that come while the project loads go to the database.
                    let started = std::time::Instant::now();
                    if self.load_once(scope, &slot).await? != Some(true) {
                        return Ok(None);
                    }
                    tracing::info!(
                        reason,
                        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "a project's list index was loaded"
                    );
                }
            }
        }
        Ok(None)
    }

    /// Loads the indexes of the largest projects first, while they fit. The models loaded.
    pub(super) async fn warm_indexes(&self) -> Result<u64> {
        let Some(indexes) = &self.indexes else {
            return Ok(0);
        };
        let projects = self
            .rows(
                Cost::Scan,
                "SELECT organization_id, project_id, models FROM model_counts \
                 WHERE models > 0 ORDER BY models DESC",
                Vec::new(),
                |r| {
                    Ok((
                        r.text("organization_id")?,
                        r.text("project_id")?,
                        u64::try_from(r.int("models")?).unwrap_or(0),
                    ))
                },
            )
            .await?;
        let mut held = 0;
        for (org, project, models) in projects {
            if held + models > indexes.max_models {
                continue;
            }
            let (Ok(org), Ok(project)) = (OrgId::parse(&org), ProjectId::parse(&project)) else {
                continue;
            };
            let scope = TenantScope::new(org, project);
            let slot = indexes.slot(&scope);
            if self.load_once(&scope, &slot).await? == Some(true) {
                held += models;
            }
        }
        Ok(held)
    }

    /// Loads `slot`'s project unless a load of it is running already (`None`): one load of a
    /// project at a time. Whether it was loaded.
    async fn load_once(&self, scope: &TenantScope, slot: &Arc<Slot>) -> Result<Option<bool>> {
        if slot.loading.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let loaded = self.load(scope, slot).await;
        slot.loading.store(false, Ordering::Release);
        loaded.map(Some)
    }

    /// Loads `slot`'s project from one snapshot, making room for it first. Whether it was.
    async fn load(&self, scope: &TenantScope, slot: &Arc<Slot>) -> Result<bool> {
        let Some(indexes) = &self.indexes else {
            return Ok(false);
        };
        let (scope2, max) = (scope.clone(), indexes.max_models);
        let loaded = self
            .backend
            .snapshot(Cost::Scan, move |c| {
                Box::pin(async move { load_in_snapshot(c, &scope2, max).await })
            })
            .await?;
        let Some(index) = loaded else {
            return Ok(false);
        };
        indexes.loads.fetch_add(1, Ordering::Relaxed);
        indexes.make_room(slot, index.len());
        let mut held = slot.index.write().unwrap_or_else(|e| e.into_inner());
        if held.as_ref().is_none_or(|h| h.head <= index.head) {
            *held = Some(index);
        }
        Ok(true)
    }
}

/// The indexes of a store: both backends hold them (PostgreSQL since migration 0014).
pub(super) fn indexes() -> Option<list_index::Indexes> {
    Some(list_index::Indexes::new(list_index::MAX_MODELS))
}

impl<B: Backend> SqlStore<B> {
    /// Holds at most `max_models` models in memory for lists (0: none, every list goes to
    /// the database).
    pub fn limit_list_index(&mut self, max_models: u64) {
        if max_models == 0 {
            self.indexes = None;
        } else if let Some(indexes) = &mut self.indexes {
            indexes.max_models = max_models;
        }
    }

    /// How many times a project's list index was loaded since the start (0 without one).
    pub fn list_index_loads(&self) -> u64 {
        self.indexes
            .as_ref()
            .map_or(0, |i| i.loads.load(Ordering::Relaxed))
    }

    /// Test support: of a list with no search, the most models the index orders itself
    /// (more go to the database's sort indexes, with the index's total).
    #[cfg(feature = "testing")]
    pub fn limit_list_index_ordering(&mut self, max_ordered: u64) {
        if let Some(indexes) = &mut self.indexes {
            indexes.max_ordered = max_ordered;
        }
    }
}
