//! Connections to PostgreSQL can be encrypted: `sslmode=require` (or `verify-ca` and
//! `verify-full` with `sslrootcert`) in the database URL. Managed databases often require it.

use modelreg_core::list::ListQuery;
use modelreg_core::tenant::{OrgId, ProjectId, TenantScope};
use modelreg_store::{PoolSettings, testing::PgSchema};
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn sslmode_require_gives_an_encrypted_connection() {
    let schema = PgSchema::create().await;
    let url = format!("{}&sslmode=require", schema.url);
    let mut c = PgConnection::connect(&url).await.expect(
        "a TLS connection (the test server must have ssl = on, as Debian's PostgreSQL has)",
    );
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert!(encrypted);
    let store = modelreg_store::open(&url, &PoolSettings::default())
        .await
        .unwrap();
    let scope = TenantScope::new(OrgId::parse("o").unwrap(), ProjectId::parse("p").unwrap());
    assert_eq!(
        store
            .list_models(&scope, &ListQuery::default())
            .await
            .unwrap()
            .total_items,
        0
    );
}
