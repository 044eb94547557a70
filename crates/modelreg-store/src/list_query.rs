//! The list query of `GET /assets/models`, built once with sea-query and rendered for the
//! backend in use.

use modelreg_core::{
    catalog::Capability,
    list::{COUNT_CAP, ListQuery, Paging, SortField, SortType, SortValue},
    tenant::TenantScope,
};
use sea_query::{
    Cond, Expr, ExprTrait, LikeExpr, NullOrdering, Order, Query, QueryStatementBuilder,
    SelectStatement,
};

use crate::{
    exec::{Dialect, Value},
    rows::{ENTRY_COLUMNS, MODEL_COLUMNS},
};

const MODELS: &str = "models";

/// A cursor value for `col`, typed as the backend stores the column.
fn typed(col: &str, value: &str, dialect: Dialect) -> Expr {
    let v = Expr::val(value.to_owned());
    match (dialect, col) {
        (Dialect::Postgres, "id") => v.cast_as("uuid"),
        (Dialect::Postgres, "created_at" | "updated_at") => v.cast_as("timestamptz"),
        _ => v,
    }
}

/// A cursor's sort value for `field` as a bound value, `None` for a number that is missing.
fn cursor_value(field: SortField, value: &str, dialect: Dialect) -> Option<Expr> {
    match field.cursor_value(value) {
        SortValue::Text(v) => Some(typed(column(field), v, dialect)),
        SortValue::Integer(n) => n.map(Expr::val),
        SortValue::Real(x) => x.map(Expr::val),
    }
}

/// A sort field's column: each has the name of the field it sorts by.
fn column(field: SortField) -> &'static str {
    field.as_str()
}

/// `%needle%` with LIKE's wildcards in the needle escaped by `\`.
fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The shortest needle the trigram index answers: a shorter one has no trigram, and is matched
/// by the LIKE alone, over the rows the page or the capped count reads.
const MIN_INDEXED_NEEDLE: usize = 3;

/// A needle as an FTS5 phrase: quoted, so none of its characters is query syntax.
fn fts_phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// Whether the list's search is answered by SQLite's trigram index (models_fts): a needle of
/// three characters or more. On PostgreSQL the planner takes the pg_trgm indexes for the LIKE
/// itself.
fn indexed_search(q: &ListQuery, dialect: Dialect) -> bool {
    dialect == Dialect::Sqlite
        && q.filters
            .search
            .as_ref()
            .is_some_and(|n| n.chars().count() >= MIN_INDEXED_NEEDLE)
}

/// The tenant and the filters: the WHERE clause shared by the page and its count.
fn filter(scope: &TenantScope, q: &ListQuery, dialect: Dialect) -> Cond {
    let f = &q.filters;
    let mut cond = Cond::all()
        .add(Expr::col("organization_id").eq(scope.org.as_str()))
        .add(Expr::col("project_id").eq(scope.project.as_str()));
    if let Some(needle) = &f.search {
        cond = cond.add(if indexed_search(q, dialect) {
            // The trigram index's phrase: its trigrams at consecutive positions, that is the
            // needle as a substring of the lower-cased name or description, compared as they
            // are (the index folds no case of its own). The contract tests hold it to a
            // substring match computed in Rust.
            let matching = Query::select()
                .column("rowid")
                .from("models_fts")
                .and_where(Expr::cust_with_values(
                    "models_fts MATCH ?",
                    [fts_phrase(needle)],
                ))
                .to_owned();
            Cond::all().add(Expr::col((MODELS, "seq")).in_subquery(matching))
        } else {
            let pattern = contains_pattern(needle);
            Cond::any()
                .add(Expr::col("name_lc").like(LikeExpr::new(pattern.clone()).escape('\\')))
                .add(Expr::col("description_lc").like(LikeExpr::new(pattern).escape('\\')))
        });
    }
    if let Some(s) = f.status {
        cond = cond.add(Expr::col("status").eq(s.as_str()));
    }
    if f.usable_only {
        cond = cond.add(Expr::col("status").ne("DISABLED"));
    }
    if let Some(m) = f.mode {
        cond = cond.add(Expr::col("mode").eq(m.as_str()));
    }
    if let Some(c) = &f.created_by {
        cond = cond.add(Expr::col("created_by").eq(c.as_str()));
    }
    if let Some(p) = &f.provider {
        cond = cond.add(Expr::col("provider").eq(p.as_str()));
    }
    if !f.capabilities.is_empty() {
        cond = cond.add(has_capabilities(&f.capabilities, dialect));
    }
    // A model without a value does not match: a comparison with NULL is not true.
    if let Some(n) = f.min_input_tokens {
        cond = cond.add(Expr::col("max_input_tokens").gte(n));
    }
    if let Some(p) = f.max_input_cost {
        cond = cond.add(Expr::col("input_cost_per_token").lte(p.get()));
    }
    // EXISTS on model_tags' primary key (model_id, tag): a page walks its sort's index and
    // probes each row, instead of first collecting every model that has each tag.
    for tag in &f.tags {
        let has_tag = Query::select()
            .expr(Expr::val(1))
            .from("model_tags")
            .and_where(Expr::col(("model_tags", "model_id")).equals((MODELS, "id")))
            .and_where(Expr::col(("model_tags", "tag")).eq(tag.as_str()))
            .to_owned();
        cond = cond.add(Expr::exists(has_tag));
    }
    cond
}

/// The model has every one of `wanted` in its `capabilities` (a JSON list of names).
///
/// On PostgreSQL, one containment of the list cast to jsonb, written as the expression of the
/// GIN index `models_capabilities` (migration 0013) so that the planner can take it. On SQLite
/// (where only a list the index in memory does not answer comes here) one `json_each` per
/// capability asked for.
fn has_capabilities(wanted: &[Capability], dialect: Dialect) -> Cond {
    match dialect {
        Dialect::Postgres => {
            let names: Vec<&str> = wanted.iter().map(|c| c.as_str()).collect();
            let json = serde_json::to_string(&names).expect("names serialize");
            Cond::all().add(Expr::cust_with_values(
                "CAST(capabilities AS jsonb) @> CAST($1 AS jsonb)",
                [json],
            ))
        }
        Dialect::Sqlite => {
            let mut cond = Cond::all();
            for c in wanted {
                cond = cond.add(Expr::cust_with_values(
                    "EXISTS (SELECT 1 FROM json_each(models.capabilities) WHERE value = ?)",
                    [c.as_str()],
                ));
            }
            cond
        }
    }
}

/// One key of a keyset position: its column, its direction, and the cursor's value (`None`:
/// a number that is missing, which sorts before every number).
struct Key {
    col: &'static str,
    desc: bool,
    value: Option<Expr>,
    /// Whether the column may be NULL (the numbers).
    nullable: bool,
}

impl Key {
    /// The row's key equals the cursor's.
    fn equal(&self) -> Expr {
        match &self.value {
            Some(v) => Expr::col(self.col).eq(v.clone()),
            None => Expr::col(self.col).is_null(),
        }
    }

    /// The row's key comes strictly after the cursor's in the list's order; `None` when none
    /// can (a missing number, descending: only missing numbers follow, and they are equal).
    fn beyond(&self) -> Option<Cond> {
        let col = || Expr::col(self.col);
        Some(match (&self.value, self.desc) {
            (None, false) => Cond::all().add(col().is_not_null()),
            (None, true) => return None,
            (Some(v), false) => Cond::all().add(col().gt(v.clone())),
            (Some(v), true) if self.nullable => {
                Cond::any().add(col().lt(v.clone())).add(col().is_null())
            }
            (Some(v), true) => Cond::all().add(col().lt(v.clone())),
        })
    }

    /// The row's key is the cursor's or after it: the range a walk of the sort's index starts
    /// from. `None` where every row qualifies (a missing number, ascending).
    fn from(&self) -> Option<Cond> {
        let col = || Expr::col(self.col);
        Some(match (&self.value, self.desc) {
            (None, false) => return None,
            (None, true) => Cond::all().add(col().is_null()),
            (Some(v), false) => Cond::all().add(col().gte(v.clone())),
            (Some(v), true) if self.nullable => {
                Cond::any().add(col().lte(v.clone())).add(col().is_null())
            }
            (Some(v), true) => Cond::all().add(col().lte(v.clone())),
        })
    }
}

/// Rows strictly after the cursor's row in the sort order: for keys k1..kn and id,
/// `k1 ≷= v1 AND ((k1 ≷ v1) OR (k1 = v1 AND k2 ≷ v2) OR … OR (k1 = v1 AND … AND kn = vn AND
/// id ≷ last_id))`. The first term is implied by the rest; it is there for the planner. With
/// the values bound as parameters SQLite did not see a range in the OR alone, and walked the
/// sort's index from the first row to the cursor on every page: 19 ms for a page in the middle
/// of 100,000 models, under 1 ms with the bound.
///
/// A number may be missing (NULL), and sorts before every number: `≷` and `=` above are then
/// written with `IS NULL` and `IS NOT NULL` ([`Key`]).
fn after_cursor(q: &ListQuery, values: &[String], last_id: &str, dialect: Dialect) -> Cond {
    let mut keys: Vec<Key> = q
        .sort
        .iter()
        .zip(values)
        .map(|(k, v)| Key {
            col: column(k.field),
            desc: k.desc,
            value: cursor_value(k.field, v, dialect),
            nullable: k.field.sort_type() != SortType::Text,
        })
        .collect();
    keys.push(Key {
        col: "id",
        desc: q.id_desc(),
        value: Some(typed("id", last_id, dialect)),
        nullable: false,
    });
    let mut any = Cond::any();
    for i in 0..keys.len() {
        let Some(beyond) = keys[i].beyond() else {
            continue;
        };
        let mut all = Cond::all();
        for k in &keys[..i] {
            all = all.add(k.equal());
        }
        any = any.add(all.add(beyond));
    }
    let mut cond = Cond::all();
    if let Some(from) = keys[0].from() {
        cond = cond.add(from);
    }
    cond.add(any)
}

/// The page: `limit + 1` rows, so the caller learns whether more follow.
pub(crate) fn page(scope: &TenantScope, q: &ListQuery, dialect: Dialect) -> SelectStatement {
    page_of(&MODEL_COLUMNS, scope, q, dialect)
}

/// The page, of `columns` only.
fn page_of(
    columns: &[&'static str],
    scope: &TenantScope,
    q: &ListQuery,
    dialect: Dialect,
) -> SelectStatement {
    let mut cond = filter(scope, q, dialect);
    if let Paging::After(after) = &q.paging {
        cond = cond.add(after_cursor(
            q,
            &after.values,
            &after.id.to_string(),
            dialect,
        ));
    }
    let mut sel = Query::select();
    sel.columns(columns.iter().copied())
        .from(MODELS)
        .cond_where(cond);
    order(&mut sel, q, dialect);
    sel.limit(u64::from(q.limit) + 1).offset(q.offset());
    sel
}

/// The list's order, ending in `id`. A missing number sorts first in ascending order, as
/// SQLite orders NULL and as an empty provider or mode sorts on every backend; PostgreSQL is
/// told so (its own default puts NULL last), in the order of its sort indexes (migration 0013).
fn order(sel: &mut SelectStatement, q: &ListQuery, dialect: Dialect) {
    for k in &q.sort {
        let dir = if k.desc { Order::Desc } else { Order::Asc };
        if dialect == Dialect::Postgres && k.field.sort_type() != SortType::Text {
            let nulls = if k.desc {
                NullOrdering::Last
            } else {
                NullOrdering::First
            };
            sel.order_by_with_nulls(column(k.field), dir, nulls);
        } else {
            sel.order_by(column(k.field), dir);
        }
    }
    sel.order_by("id", if q.id_desc() { Order::Desc } else { Order::Asc });
}

/// The page of `page_with_meta`, as text and values for `dialect`.
///
/// A page of a search answered by SQLite's trigram index is read from its candidates, found
/// once (`WITH candidates AS MATERIALIZED`): checked for the tenant and the other filters
/// (in `models_seq_tenant` alone where they ask nothing else of the row), counted for the
/// total, and ordered for the page, whose rows alone are then read. In one plain statement
/// SQLite walked a sort's index and probed each row against the candidates instead, and a
/// separate count found them all again.
pub(crate) fn page_statement(
    scope: &TenantScope,
    q: &ListQuery,
    dialect: Dialect,
) -> (String, Vec<Value>) {
    if !indexed_search(q, dialect) {
        return build(page_with_meta(scope, q, dialect), dialect);
    }
    let mut candidates = Query::select();
    candidates.column("seq").column("id");
    for k in &q.sort {
        if k.field.as_str() != "id" {
            candidates.column(column(k.field));
        }
    }
    candidates
        .from(MODELS)
        .cond_where(filter(scope, q, dialect));
    let mut keys = Query::select();
    keys.column("seq").from(CANDIDATES);
    if let Paging::After(after) = &q.paging {
        keys.cond_where(after_cursor(
            q,
            &after.values,
            &after.id.to_string(),
            dialect,
        ));
    }
    order(&mut keys, q, dialect);
    keys.limit(u64::from(q.limit) + 1).offset(q.offset());
    let mut sel = Query::select();
    sel.columns(MODEL_COLUMNS.iter().copied())
        .from(MODELS)
        .and_where(Expr::col("seq").in_subquery(keys));
    order(&mut sel, q, dialect);
    with_meta_total(
        &mut sel,
        scope,
        q,
        Expr::cust(format!("(SELECT COUNT(*) FROM {CANDIDATES})")),
    );
    let (candidates_sql, mut values) = build(candidates, dialect);
    let (page_sql, page_values) = build(sel, dialect);
    values.extend(page_values);
    (
        format!("WITH {CANDIDATES} AS MATERIALIZED ({candidates_sql}) {page_sql}"),
        values,
    )
}

/// The name of the search's candidates in `page_statement`.
const CANDIDATES: &str = "candidates";

/// The columns that follow a page's models (and make up the statement of an empty page's):
/// the total when it is known without counting, the project's generation, and the generation
/// of the slices the filters select. Read in the page's own statement, they are of its
/// snapshot.
pub(crate) const TOTAL: &str = "total_items";
pub(crate) const GENERATION: &str = "generation";
pub(crate) const SLICES: &str = "slices";

/// A scalar subquery of `model_counts` for the project: its `models` or its `generation`.
fn project_count(scope: &TenantScope, column: &'static str) -> Expr {
    let sel = Query::select()
        .column(column)
        .from("model_counts")
        .and_where(Expr::col("organization_id").eq(scope.org.as_str()))
        .and_where(Expr::col("project_id").eq(scope.project.as_str()))
        .to_owned();
    Expr::SubQuery(None, Box::new(sel.into_sub_query_statement()))
}

/// The slices of `model_slices` (migration 0011) that the filters select, if they filter by
/// status, mode, provider, usability or tags: those of the first tag named (or of all models),
/// narrowed by the rest. Every model the filters match, before or after any write, is in one
/// of them, so a write that could change the list moves their generation; and when nothing
/// else filters (no search, no `created_by`, one tag at most) their models add up to the
/// exact total.
pub(crate) struct Slices {
    cond: Cond,
    /// Whether their models add up to the list's total.
    pub(crate) exact: bool,
}

impl Slices {
    pub(crate) fn of(scope: &TenantScope, q: &ListQuery) -> Option<Slices> {
        let f = &q.filters;
        let faceted = f.status.is_some()
            || f.mode.is_some()
            || f.provider.is_some()
            || f.usable_only
            || !f.tags.is_empty();
        if !faceted {
            return None;
        }
        let mut cond = Cond::all()
            .add(Expr::col("organization_id").eq(scope.org.as_str()))
            .add(Expr::col("project_id").eq(scope.project.as_str()))
            .add(Expr::col("tag").eq(f.tags.first().map_or("", String::as_str)));
        if let Some(s) = f.status {
            cond = cond.add(Expr::col("status").eq(s.as_str()));
        }
        if f.usable_only {
            cond = cond.add(Expr::col("status").ne("DISABLED"));
        }
        if let Some(m) = f.mode {
            cond = cond.add(Expr::col("mode").eq(m.as_str()));
        }
        if let Some(p) = &f.provider {
            cond = cond.add(Expr::col("provider").eq(p.as_str()));
        }
        // The catalog's filters (capabilities, token and price bounds) only narrow the
        // slices: every model they match is in them, so the generation still covers the page,
        // but their models no longer add up to its total.
        let exact = f.search.is_none()
            && f.created_by.is_none()
            && f.tags.len() <= 1
            && f.capabilities.is_empty()
            && f.min_input_tokens.is_none()
            && f.max_input_cost.is_none();
        Some(Slices { cond, exact })
    }

    /// `SUM(column)` over the slices, 0 when there are none (a slice once made is kept at 0
    /// models, so the sum of generations only grows).
    fn sum(&self, column: &'static str) -> Expr {
        let sel = Query::select()
            .expr(Expr::cust(format!(
                "CAST(COALESCE(SUM({column}), 0) AS BIGINT)"
            )))
            .from("model_slices")
            .cond_where(self.cond.clone())
            .to_owned();
        Expr::SubQuery(None, Box::new(sel.into_sub_query_statement()))
    }

    /// The generation of the slices alone, as a statement.
    pub(crate) fn generation(&self) -> SelectStatement {
        Query::select()
            .expr_as(self.sum("generation"), SLICES)
            .to_owned()
    }
}

/// Adds the columns named by [`TOTAL`], [`GENERATION`] and [`SLICES`] to `sel`.
fn with_meta(sel: &mut SelectStatement, scope: &TenantScope, q: &ListQuery) {
    let total = if q.filters.is_empty() {
        project_count(scope, "models")
    } else {
        match Slices::of(scope, q) {
            Some(s) if s.exact => s.sum("models"),
            _ => Expr::cust("NULL"),
        }
    };
    with_meta_total(sel, scope, q, total);
}

/// [`with_meta`] with the total given.
fn with_meta_total(sel: &mut SelectStatement, scope: &TenantScope, q: &ListQuery, total: Expr) {
    sel.expr_as(total, TOTAL);
    with_generations(sel, scope, q);
}

/// Adds the columns named by [`GENERATION`] (the project's) and [`SLICES`] (the generation of
/// the slices the filters select, or null) to `sel`.
fn with_generations(sel: &mut SelectStatement, scope: &TenantScope, q: &ListQuery) {
    sel.expr_as(project_count(scope, "generation"), GENERATION);
    sel.expr_as(
        Slices::of(scope, q).map_or_else(|| Expr::cust("NULL"), |s| s.sum("generation")),
        SLICES,
    );
}

/// A page of models followed by [`with_meta`]'s columns.
pub(crate) fn page_with_meta(
    scope: &TenantScope,
    q: &ListQuery,
    dialect: Dialect,
) -> SelectStatement {
    let mut sel = page(scope, q, dialect);
    with_meta(&mut sel, scope, q);
    sel
}

/// A page of `ModelEntry` columns (`/v1/models`) followed by the generations (no total).
pub(crate) fn entries_with_meta(
    scope: &TenantScope,
    q: &ListQuery,
    dialect: Dialect,
) -> SelectStatement {
    let mut sel = page_of(&ENTRY_COLUMNS, scope, q, dialect);
    with_generations(&mut sel, scope, q);
    sel
}

/// [`with_meta`]'s columns alone, for a page that returned no row to carry them.
pub(crate) fn meta(scope: &TenantScope, q: &ListQuery) -> SelectStatement {
    let mut sel = Query::select();
    with_meta(&mut sel, scope, q);
    sel
}

/// The number of rows the filters match, up to [`COUNT_CAP`] + 1, named `n`, with the
/// generations it was made at ([`GENERATION`], [`SLICES`]).
pub(crate) fn capped_count(
    scope: &TenantScope,
    q: &ListQuery,
    dialect: Dialect,
) -> SelectStatement {
    let matching = Query::select()
        .expr(Expr::val(1))
        .from(MODELS)
        .cond_where(filter(scope, q, dialect))
        .limit(COUNT_CAP + 1)
        .to_owned();
    let mut sel = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from_subquery(matching, "matching")
        .to_owned();
    with_generations(&mut sel, scope, q);
    sel
}

/// The statement's text for `dialect`, and its values.
pub(crate) fn build(statement: SelectStatement, dialect: Dialect) -> (String, Vec<Value>) {
    let (sql, values) = match dialect {
        Dialect::Sqlite => statement.build(sea_query::SqliteQueryBuilder),
        Dialect::Postgres => statement.build(sea_query::PostgresQueryBuilder),
    };
    (sql, values.0.into_iter().map(value).collect())
}

/// A sea-query value as ours. The list statements bind text (filters, cursor values, cast in
/// SQL where PostgreSQL needs another type) and integers (limits and offsets) only.
fn value(v: sea_query::Value) -> Value {
    use sea_query::Value as V;
    match v {
        V::String(s) => Value::Text(s),
        V::Char(c) => Value::Text(c.map(String::from)),
        V::Bool(b) => Value::Bool(b.unwrap_or(false)),
        V::TinyInt(i) => Value::Int(i.map(i64::from)),
        V::SmallInt(i) => Value::Int(i.map(i64::from)),
        V::Int(i) => Value::Int(i.map(i64::from)),
        V::BigInt(i) => Value::Int(i),
        V::TinyUnsigned(u) => Value::Int(u.map(i64::from)),
        V::SmallUnsigned(u) => Value::Int(u.map(i64::from)),
        V::Unsigned(u) => Value::Int(u.map(i64::from)),
        V::BigUnsigned(u) => Value::Int(u.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
        V::Float(f) => Value::Real(f.map(f64::from)),
        V::Double(f) => Value::Real(f),
        V::Bytes(b) => Value::Blob(b.unwrap_or_default()),
        // No list statement binds another kind (dates, uuids and json are bound as text).
        _ => Value::Text(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(contains_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
