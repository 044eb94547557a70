//! Both backends' migrations produce the same logical schema: the same tables, columns,
//! nullability, type classes, unique constraints and indexes. Substring search is indexed on
//! each its own way: PostgreSQL has two trigram indexes, SQLite the FTS5 table `models_fts`
//! (with its shadow tables), and neither is compared. `model_changes`, the log of changed
//! models the in-memory list index follows, has the same columns on both, keyed each its own
//! way (SQLite numbers changes itself; PostgreSQL by each project's generation, migration 0014).

use std::collections::BTreeSet;

use modelreg_store::{PoolSettings, testing::PgSchema};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// Substring search by pg_trgm, capabilities by jsonb containment (GIN; SQLite's list index
/// holds a bitmap per capability instead), and models by seq (SQLite's rowid).
const POSTGRES_ONLY_INDEXES: [&str; 4] = [
    "models_name_trgm",
    "models_description_trgm",
    "models_capabilities",
    "models_seq",
];
/// The index that checks search candidates from `models_fts` for their tenant, and the one
/// of `model_changes` (SQLite's key is the change's number alone; PostgreSQL's is its primary
/// key).
const SQLITE_ONLY_INDEXES: [&str; 2] = ["models_seq_tenant", "model_changes_project"];

/// text, integer, real, blob, timestamp or uuid. SQLite has no timestamp or uuid type: there
/// such columns are text, and the table below names which ones are which.
fn class_sqlite(table: &str, column: &str, declared: &str) -> String {
    let timestamp = column == "at" || column.ends_with("_at") || column.ends_with("_until");
    let uuid = column == "id" || column == "model_id";
    match declared.to_ascii_uppercase().as_str() {
        "TEXT" if timestamp => "timestamp",
        "TEXT" if uuid => "uuid",
        "TEXT" => "text",
        "INTEGER" => "integer",
        "REAL" => "real",
        "BLOB" => "blob",
        other => panic!("unexpected SQLite type {other} of {table}.{column}"),
    }
    .to_owned()
}

fn class_postgres(data_type: &str) -> String {
    match data_type {
        "text" => "text",
        "bigint" | "integer" => "integer",
        "double precision" => "real",
        "bytea" => "blob",
        "timestamp with time zone" => "timestamp",
        "uuid" => "uuid",
        other => panic!("unexpected PostgreSQL type {other}"),
    }
    .to_owned()
}

#[tokio::test]
async fn migrations_agree_on_the_logical_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let sqlite_url = format!("sqlite://{}", path.display());
    let settings = PoolSettings::default();
    modelreg_store::open(&sqlite_url, &settings)
        .await
        .unwrap()
        .close()
        .await;
    let schema = PgSchema::create().await;
    modelreg_store::open(&schema.url, &settings)
        .await
        .unwrap()
        .close()
        .await;

    let mut lite = SqliteConnection::connect(&sqlite_url).await.unwrap();
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT m.name, p.name, p.type, p.\"notnull\" OR p.pk > 0 FROM sqlite_master m \
         JOIN pragma_table_info(m.name) p WHERE m.type = 'table' \
         AND m.name NOT LIKE 'sqlite_%' AND m.name != '_sqlx_migrations' \
         AND m.name NOT LIKE 'models_fts%'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let sqlite_columns: BTreeSet<(String, String, String, bool)> = rows
        .into_iter()
        .map(|(t, c, ty, not_null)| {
            let class = class_sqlite(&t, &c, &ty);
            (t, c, class, not_null)
        })
        .collect();
    let sqlite_indexes: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap()
    .into_iter()
    .filter(|name: &String| !SQLITE_ONLY_INDEXES.contains(&name.as_str()))
    .collect();
    let table_sql: Vec<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut lite)
            .await
            .unwrap();
    let sqlite_constraints: BTreeSet<String> = table_sql
        .iter()
        .flat_map(|sql| {
            sql.split("CONSTRAINT ")
                .skip(1)
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();

    let mut pg = PgConnection::connect(&schema.url).await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name != '_sqlx_migrations'",
    )
    .bind(&schema.name)
    .fetch_all(&mut pg)
    .await
    .unwrap();
    let pg_columns: BTreeSet<(String, String, String, bool)> = rows
        .into_iter()
        .map(|(t, c, ty, nullable)| (t, c, class_postgres(&ty), nullable == "NO"))
        .collect();
    let pg_constraints: BTreeSet<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = $1 AND c.contype = 'u'",
    )
    .bind(&schema.name)
    .fetch_all(&mut pg)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let pg_indexes: BTreeSet<String> =
        sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE schemaname = $1")
            .bind(&schema.name)
            .fetch_all(&mut pg)
            .await
            .unwrap()
            .into_iter()
            .filter(|name: &String| {
                !name.ends_with("_pkey")
                    && !pg_constraints.contains(name)
                    && !POSTGRES_ONLY_INDEXES.contains(&name.as_str())
            })
            .collect();

    assert!(sqlite_columns.len() > 40, "the SQLite schema was read");
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "columns differ:\n only SQLite: {only_sqlite:?}\n only PostgreSQL: {only_pg:?}"
    );
    assert_eq!(sqlite_indexes, pg_indexes);
    assert_eq!(sqlite_constraints, pg_constraints);
}

/// SQLite's trigger that moves a project's generation fires on an update of the columns it
/// lists: every column of `models` a list can show must be there, or a write of a new column
/// would leave every cache stale. (PostgreSQL's compares whole rows less the health-check
/// bookkeeping, so a new column counts there without a change.)
#[tokio::test]
async fn the_generation_trigger_covers_every_visible_column() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    modelreg_store::open(&url, &PoolSettings::default())
        .await
        .unwrap()
        .close()
        .await;
    let mut lite = SqliteConnection::connect(&url).await.unwrap();
    let listed = update_columns(&mut lite, "models_changed").await;
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('models')")
        .fetch_all(&mut lite)
        .await
        .unwrap();
    let bookkeeping = [
        "next_check_at",
        "check_failures",
        "check_lease_owner",
        "check_lease_until",
        // Derived from name and description, which are listed.
        "name_lc",
        "description_lc",
    ];
    let missing: Vec<&String> = columns
        .iter()
        .filter(|c| !bookkeeping.contains(&c.as_str()) && !listed.contains(*c))
        .collect();
    assert!(missing.is_empty(), "not in models_changed: {missing:?}");
}

/// SQLite's list index (`list_index.rs`) follows `model_changes`, which the
/// `model_changes_changed` trigger appends to when a column the index holds changes: every
/// column of `list_index::IMAGE_COLUMNS` must be in its list, or an update of that column
/// would leave the index behind.
#[tokio::test]
async fn the_change_log_follows_every_column_the_list_index_holds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    modelreg_store::open(&url, &PoolSettings::default())
        .await
        .unwrap()
        .close()
        .await;
    let mut lite = SqliteConnection::connect(&url).await.unwrap();
    let listed = update_columns(&mut lite, "model_changes_changed").await;
    let missing: Vec<&str> = modelreg_store::list_index::IMAGE_COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| !listed.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "not in model_changes_changed: {missing:?}"
    );
}

/// PostgreSQL's log (migration 0014) follows the same columns: its `zz_model_changes_changed`
/// trigger fires on an update of each column the index holds.
#[tokio::test]
async fn the_postgres_change_log_follows_every_column_the_list_index_holds() {
    let schema = PgSchema::create().await;
    modelreg_store::open(&schema.url, &PoolSettings::default())
        .await
        .unwrap()
        .close()
        .await;
    let mut pg = PgConnection::connect(&schema.url).await.unwrap();
    let listed: BTreeSet<String> = sqlx::query_scalar(
        "SELECT event_object_column::text FROM information_schema.triggered_update_columns \
         WHERE trigger_schema = $1 AND trigger_name = 'zz_model_changes_changed'",
    )
    .bind(&schema.name)
    .fetch_all(&mut pg)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(!listed.is_empty(), "the trigger was found");
    let missing: Vec<&str> = modelreg_store::list_index::IMAGE_COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| !listed.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "not in zz_model_changes_changed: {missing:?}"
    );
}

/// The columns an `AFTER UPDATE OF … ON models` trigger of SQLite lists.
async fn update_columns(lite: &mut SqliteConnection, trigger: &str) -> BTreeSet<String> {
    let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = ?")
        .bind(trigger)
        .fetch_one(lite)
        .await
        .unwrap();
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, rest) = sql.split_once("UPDATE OF").unwrap();
    let (columns, _) = rest.split_once(" ON models").unwrap();
    columns.split(',').map(|c| c.trim().to_owned()).collect()
}
