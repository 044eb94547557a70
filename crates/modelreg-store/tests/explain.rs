//! Query plans on PostgreSQL at 200,000 models: each list filter must use an index, not scan
//! the table. Slow (it seeds the data), so it is opt-in:
//!
//! ```sh
//! cargo test -p modelreg-store --test explain -- --ignored --nocapture
//! ```
//!
//! It asserts that no plan scans `models` sequentially, and writes the plans to
//! `docs/postgres-query-plans.md`.

use modelreg_core::store::ModelStore;
use modelreg_core::{
    list::{CursorKeys, ListQuery, Paging},
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

/// 100,000 models of the benchmark's fourteen families (`bench/src/seed.rs`) with the values
/// the bundled catalog fills for them: six families priced, five with a context, three with
/// capabilities; and 5,000 in another project.
const CATALOG_SEED: &str = r#"
INSERT INTO models (id, organization_id, project_id, resource_uri, name, name_lc, litellm_model,
    provider, description, description_lc, tags, mode, status, created_at, updated_at,
    created_by, updated_by, credentials_kek_id, credentials, input_cost_per_token,
    max_input_tokens, capabilities)
SELECT gen_random_uuid(), 'acme', CASE WHEN i % 21 = 0 THEN 'side' ELSE 'main' END,
    'model-' || i, 'Model ' || i, 'model ' || i,
    (ARRAY['openai/gpt-4o','openai/gpt-4o-mini','openai/o3-mini','openai/text-embedding-3-large',
           'openai/whisper-1','openai/dall-e-3','anthropic/claude-3-5-sonnet',
           'anthropic/claude-3-haiku','azure/gpt-4o-deploy','bedrock/anthropic.claude-3-sonnet',
           'gemini/gemini-1.5-pro','ollama/llama3','mistral/mistral-large','groq/llama3-70b'])[1 + i % 14],
    (ARRAY['openai','openai','openai','openai','openai','openai','anthropic','anthropic','azure',
           'bedrock','gemini','ollama','mistral','groq'])[1 + i % 14],
    'general purpose', 'general purpose', '[]', 'chat',
    (ARRAY['PENDING','ACTIVE','ERROR','DEPRECATED','DISABLED'])[1 + (i / 7) % 5],
    now() - i * interval '1 second', now() - i * interval '1 second',
    'user:u' || (i % 50), 'user:u' || (i % 50), 'k', '\x00',
    (ARRAY[0.0000025, 0.00000015, 0.0000011, 0.00000013, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           0.0, NULL, NULL]::float8[])[1 + i % 14],
    (ARRAY[128000, 128000, 200000, 8191, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 8192, NULL,
           NULL]::bigint[])[1 + i % 14],
    CASE i % 14
        WHEN 0 THEN '["vision","function_calling","parallel_function_calling","tool_choice","response_schema","prompt_caching","pdf_input","system_messages"]'
        WHEN 1 THEN '["vision","function_calling","parallel_function_calling","tool_choice","response_schema","prompt_caching","pdf_input","system_messages"]'
        WHEN 2 THEN '["function_calling","tool_choice","response_schema","reasoning","prompt_caching"]'
        ELSE '[]' END
FROM generate_series(1, $1) AS i;
VACUUM ANALYZE;
"#;

/// The catalog's filters and sorts on PostgreSQL at 100,000 models in the listed project:
/// each plan must take one of migration 0013's indexes and none may scan `models`. Writes the
/// plans, as the planner makes them for each request (custom) and as a statement kept prepared
/// would settle on (generic), to `docs/postgres-catalog-plans.md`.
#[tokio::test]
#[ignore = "slow: seeds 105,000 rows; run with --ignored"]
async fn catalog_filters_use_indexes() {
    const SEEDED: i64 = 105_000;
    let schema = PgSchema::create().await;
    let store = PostgresStore::open(&schema.url, &PoolSettings::default())
        .await
        .unwrap();
    let generic = PostgresStore::open(
        &format!("{}&options[plan_cache_mode]=force_generic_plan", schema.url),
        &PoolSettings::default(),
    )
    .await
    .unwrap();
    let mut c = PgConnection::connect(&schema.url).await.unwrap();
    for statement in CATALOG_SEED.split(";\n").filter(|s| !s.trim().is_empty()) {
        let q = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
        let q = if statement.contains("$1") {
            q.bind(SEEDED)
        } else {
            q
        };
        q.execute(&mut c).await.unwrap();
    }
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM models WHERE project_id = 'main'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let scope = TenantScope::new(
        OrgId::parse("acme").unwrap(),
        ProjectId::parse("main").unwrap(),
    );
    let keys = CursorKeys::ephemeral();
    let parse = |qs: &str| {
        let pairs: Vec<(String, String)> = qs
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        ListQuery::parse(&pairs, &keys).unwrap()
    };
    let scenarios = [
        ("one capability, 14%", "capability=vision"),
        (
            "two capabilities, 7%",
            "capability=reasoning,function_calling",
        ),
        ("a capability no model has", "capability=computer_use"),
        (
            "the benchmark's kind: two capabilities, both bounds, by price",
            "capability=vision,function_calling&min_input_tokens=100000&max_input_cost=0.000003&sort=input_cost_per_token:asc",
        ),
        (
            "the same, by price going down",
            "capability=vision,function_calling&min_input_tokens=100000&max_input_cost=0.000003&sort=input_cost_per_token:desc",
        ),
        (
            "a capability, a context bound, by context going down",
            "capability=reasoning&min_input_tokens=150000&sort=max_input_tokens:desc",
        ),
        (
            "a capability, a price bound and a status, by context",
            "capability=function_calling&max_input_cost=0.000001&status=ACTIVE&sort=max_input_tokens:asc",
        ),
        (
            "a price bound and a provider, by price going down",
            "max_input_cost=0.0000002&provider=openai&sort=input_cost_per_token:desc",
        ),
        ("a context bound alone", "min_input_tokens=150000"),
        (
            "sorted by price, no filter",
            "sort=input_cost_per_token:asc",
        ),
    ];
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let mut doc = format!(
        "# PostgreSQL query plans of the catalog's list filters\n\n\
         `EXPLAIN (ANALYZE, BUFFERS)` of the statements `GET /assets/models` runs for the \
         catalog's filters and sorts, on PostgreSQL {version} with {listed} models in the \
         listed project ({SEEDED} in all), their prices, contexts and capabilities those the \
         bundled catalog fills for the benchmark's fourteen families. Written by `cargo test \
         -p modelreg-store --test explain -- --ignored catalog`, which fails if a plan scans \
         `models` sequentially or takes none of migration 0013's indexes. Each scenario shows \
         the page query, then its count; each first as planned for its values (the list's \
         statements with these filters are planned on every run), then as a statement kept \
         prepared would settle on (`plan_cache_mode = force_generic_plan`).\n\n"
    );
    let mut bad = Vec::new();
    let new_indexes = [
        "models_capabilities",
        "models_input_cost_per_token",
        "models_max_input_tokens",
    ];
    let mut add = |title: &str, qs: &str, custom: String, generic: String| {
        if custom.contains("Seq Scan on models") || !new_indexes.iter().any(|i| custom.contains(i))
        {
            bad.push(title.to_owned());
        }
        doc.push_str(&format!(
            "## {title}: `?{qs}`\n\n```text\n{}\n```\n\nKept prepared (generic):\n\n```text\n{}\n```\n\n",
            custom.trim_end(),
            generic.trim_end()
        ));
    };
    for (title, qs) in scenarios {
        let query = parse(qs);
        let custom = store.explain_list(&scope, &query).await.unwrap();
        let plan = generic.explain_list(&scope, &query).await.unwrap();
        add(title, qs, custom, plan);
    }
    // A cursor page in the middle of a sort by price going down.
    let mut query = parse("capability=function_calling&sort=input_cost_per_token:desc&limit=100");
    for _ in 0..50 {
        let page = store.list_models(&scope, &query).await.unwrap();
        let last = page.items.last().unwrap();
        query.paging = Paging::After(query.after(last));
    }
    let custom = store.explain_list(&scope, &query).await.unwrap();
    let plan = generic.explain_list(&scope, &query).await.unwrap();
    add(
        "the 51st cursor page of a sort by price going down",
        "capability=function_calling&sort=input_cost_per_token:desc&limit=100&cursor=…",
        custom,
        plan,
    );
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/postgres-catalog-plans.md"
    );
    std::fs::write(path, doc).unwrap();
    assert!(
        bad.is_empty(),
        "no new index, or a sequential scan, in: {bad:?}"
    );
}
