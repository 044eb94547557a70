//! Query plans on PostgreSQL at 200,000 models: each list filter must use an index, not scan
//! the table. Slow (it seeds the data), so it is opt-in:
//!
//! ```sh
//! cargo test -p modelreg-store --test explain -- --ignored --nocapture
//! ```
//!
//! It asserts that no plan scans `models` sequentially, and writes the plans to
//! `docs/postgres-query-plans.md`.

use modelreg_core::{
    list::{CursorKeys, ListQuery},
    tenant::{OrgId, ProjectId, TenantScope},
};
use modelreg_store::{PoolSettings, PostgresStore, testing::PgSchema};
use sqlx::{Connection, PgConnection};

const MODELS: i64 = 200_000;

const SEED: &str = r#"
INSERT INTO models (id, organization_id, project_id, resource_uri, name, name_lc, litellm_model,
    provider, description, description_lc, tags, mode, status, created_at, updated_at,
    created_by, updated_by, credentials_kek_id, credentials)
SELECT gen_random_uuid(), 'acme', CASE WHEN i % 20 = 0 THEN 'side' ELSE 'main' END,
    'model-' || i, 'Model ' || i || ' ' || substr(md5(i::text), 1, 8),
    lower('Model ' || i || ' ' || substr(md5(i::text), 1, 8)),
    (ARRAY['openai/gpt-4o','anthropic/claude-3-5-sonnet','azure/deploy','ollama/llama3','groq/llama3-70b'])[1 + i % 5],
    (ARRAY['openai','anthropic','azure','ollama','groq'])[1 + i % 5],
    CASE WHEN i % 100 = 3 THEN 'a fast model' WHEN i % 10000 = 1 THEN 'the turbo one' ELSE 'general purpose' END,
    CASE WHEN i % 100 = 3 THEN 'a fast model' WHEN i % 10000 = 1 THEN 'the turbo one' ELSE 'general purpose' END,
    '[]', (ARRAY['chat','completion','embedding','image_generation','audio_transcription'])[1 + i % 5],
    (ARRAY['PENDING','ACTIVE','ERROR','DEPRECATED','DISABLED'])[1 + (i / 7) % 5],
    now() - i * interval '1 second', now() - i * interval '1 second',
    'user:u' || (i % 50), 'user:u' || (i % 50), 'k', '\x00'
FROM generate_series(1, $1) AS i;
INSERT INTO model_tags (model_id, organization_id, project_id, tag)
SELECT id, organization_id, project_id, t.tag FROM models,
    LATERAL (VALUES ('prod'), ('eu'), ('gpu')) AS t(tag)
WHERE (t.tag = 'prod' AND substr(resource_uri, 7)::int % 10 = 1)
   OR (t.tag = 'eu' AND substr(resource_uri, 7)::int % 7 = 0)
   OR (t.tag = 'gpu' AND substr(resource_uri, 7)::int % 100 = 1);
VACUUM ANALYZE;
"#;

#[tokio::test]
#[ignore = "slow: seeds 200,000 rows; run with --ignored"]
async fn list_filters_use_indexes() {
    let schema = PgSchema::create().await;
    let store = PostgresStore::open(&schema.url, &PoolSettings::default())
        .await
        .unwrap();
    let mut c = PgConnection::connect(&schema.url).await.unwrap();
    for statement in SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        let q = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
        let q = if statement.contains("$1") {
            q.bind(MODELS)
        } else {
            q
        };
        q.execute(&mut c).await.unwrap();
    }
    let scope = TenantScope::new(
        OrgId::parse("acme").unwrap(),
        ProjectId::parse("main").unwrap(),
    );
    let scenarios = [
        ("default list (newest first)", ""),
        ("page 50", "page=50&limit=20"),
        ("search, about 1%", "search=fast"),
        ("search, about 0.01%", "search=turbo"),
        ("two tags, about 0.14%", "tags=gpu,eu"),
        ("two tags, about 1.4%", "tags=prod,eu"),
        (
            "status + mode, sorted by name",
            "status=ACTIVE&mode=chat&sort=name:asc",
        ),
        ("provider", "provider=groq"),
        ("created_by", "created_by=user:u7"),
        ("sort by updated_at", "sort=updated_at:asc"),
    ];
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let mut doc = format!(
        "# PostgreSQL query plans\n\n\
         `EXPLAIN (ANALYZE, BUFFERS)` of the statements `GET /assets/models` runs, on \
         PostgreSQL {version} with {MODELS} models ({} in the listed project), written by \
         `cargo test -p modelreg-store --test explain -- --ignored`. The test fails if any plan \
         scans `models` sequentially. Each scenario shows the page query, then its count.\n\n",
        MODELS - MODELS / 20
    );
    let mut seq_scans = Vec::new();
    for (title, qs) in scenarios {
        let pairs: Vec<(String, String)> = qs
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let query = ListQuery::parse(&pairs, &CursorKeys::ephemeral()).unwrap();
        let plan = store.explain_list(&scope, &query).await.unwrap();
        if plan.contains("Seq Scan on models") {
            seq_scans.push(title);
        }
        doc.push_str(&format!(
            "## {title}: `?{qs}`\n\n```text\n{}```\n\n",
            plan.trim_end().to_owned() + "\n"
        ));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/postgres-query-plans.md"
    );
    std::fs::write(path, doc).unwrap();
    assert!(seq_scans.is_empty(), "sequential scans in: {seq_scans:?}");
}
