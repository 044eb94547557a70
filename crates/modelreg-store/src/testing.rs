//! Test support: every test gets its own PostgreSQL schema on the server that
//! `MODELREG_TEST_POSTGRES_URL` names (default: this machine kind's local server), and drops
//! it when done. An unreachable server fails the test: the PostgreSQL half of the suite is
//! never skipped.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server the PostgreSQL tests use.
pub fn test_postgres_url() -> String {
    std::env::var("MODELREG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.to_owned())
}

static PREPARED: OnceCell<()> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);
const PREFIX: &str = "mrt_";

async fn admin() -> PgConnection {
    let url = test_postgres_url();
    PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required by the test suite and is not reachable at {} \
             (set MODELREG_TEST_POSTGRES_URL): {e}",
            crate::redact_url(&url)
        )
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Once per process: the pg_trgm extension in `public` (which every test schema's search path
/// includes), and removal of schemas that earlier runs left behind over an hour ago.
async fn prepare() {
    PREPARED
        .get_or_init(|| async {
            let mut c = admin().await;
            // Two processes may race here; the loser's error is harmless.
            let _ = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
                .execute(&mut c)
                .await;
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'mrt\\_%'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap_or_default();
            let cutoff = now_secs().saturating_sub(3600);
            for name in stale {
                let born: u64 = name
                    .trim_start_matches(PREFIX)
                    .split('_')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                if born < cutoff {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                    )))
                    .execute(&mut c)
                    .await;
                }
            }
            let _ = c.close().await;
        })
        .await;
}

/// A fresh, empty schema; dropped with everything in it when this value is dropped.
pub struct PgSchema {
    /// A database URL whose connections use this schema.
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        prepare().await;
        let name = format!(
            "{PREFIX}{}_{}_{}",
            now_secs(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = admin().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut c)
            .await
            .expect("create a test schema");
        let _ = c.close().await;
        let base = test_postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{base}{sep}options[search_path]={name},public"),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside async tests; a thread with its own runtime does the blocking work.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut c = PgConnection::connect(&test_postgres_url()).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut c)
                .await
                .ok()?;
                c.close().await.ok()
            })
        })
        .join();
    }
}

/// A model's fields with only the required ones set: named `name`, model `openai/gpt-4o`,
/// `PENDING`. Tests set what they need over it (`ModelFields { tags, ..plain_fields(n) }`).
pub fn plain_fields(name: &str) -> modelreg_core::model::ModelFields {
    modelreg_core::model::ModelFields::new(name, "openai/gpt-4o")
}

/// A new model with only the required fields, named and addressed `uri`, with a sealed
/// credential blob of one byte: for store tests that need rows, not particular fields.
pub fn plain_model(uri: &str) -> modelreg_core::store::NewModel {
    use modelreg_core::{
        resource_uri::ResourceUri, secrets::SealedCredentials, timestamp::Timestamp,
    };
    modelreg_core::store::NewModel {
        id: uuid::Uuid::now_v7(),
        resource_uri: ResourceUri::parse(uri).expect("a valid resource_uri"),
        generated: false,
        fields: plain_fields(uri),
        catalog: Default::default(),
        credentials: SealedCredentials {
            kek_id: "k1".into(),
            blob: vec![1],
            fields: vec![],
        },
        actor: "user:t".into(),
        now: Timestamp::now(),
    }
}

/// The audit entry of a create by `user:t`, for [`plain_model`]s.
pub fn create_audit() -> modelreg_core::audit::AuditEntry {
    modelreg_core::audit::AuditEntry {
        action: modelreg_core::audit::AuditAction::Create,
        principal: "user:t".into(),
        on_behalf_of: None,
        request_id: None,
        changes: serde_json::json!({}),
    }
}
