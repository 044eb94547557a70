//! The storage contract, written once against `Arc<dyn Store>` and run on every backend.

use std::sync::Arc;

use modelreg_core::{
    Error,
    audit::{AuditAction, AuditEntry, GENESIS, first_broken},
    auth::{ProjectGrant, Role},
    list::{CursorKeys, ListQuery, Paging},
    model::{Model, ModelFields, Status},
    resource_uri::{ModelKey, ResourceUri},
    secrets::SealedCredentials,
    store::{ModelChange, NewModel, NewToken, SealedRecord, Store},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
};
use modelreg_store::{
    PoolSettings,
    testing::{PgSchema, plain_fields},
};
use uuid::Uuid;

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<PgSchema>,
}

/// A fresh SQLite file and a fresh PostgreSQL schema.
async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let schema = PgSchema::create().await;
    let settings = PoolSettings::default();
    vec![
        Backend {
            name: "sqlite",
            store: modelreg_store::open(&url, &settings).await.unwrap(),
            _dir: Some(dir),
            _schema: None,
        },
        Backend {
            name: "postgres",
            store: modelreg_store::open(&schema.url, &settings).await.unwrap(),
            _dir: None,
            _schema: Some(schema),
        },
    ]
}

fn scope(org: &str, project: &str) -> TenantScope {
    TenantScope::new(
        OrgId::parse(org).unwrap(),
        ProjectId::parse(project).unwrap(),
    )
}

fn fields(name: &str) -> ModelFields {
    ModelFields {
        provider: Some("openai".into()),
        tags: vec!["a".into()],
        ..plain_fields(name)
    }
}

fn audit() -> AuditEntry {
    AuditEntry {
        action: AuditAction::Update,
        principal: "user:test".into(),
        on_behalf_of: None,
        request_id: Some("req-1".into()),
        changes: serde_json::json!({"rpm": {"from": null, "to": 1}}),
    }
}

fn sealed() -> SealedCredentials {
    SealedCredentials {
        kek_id: "ktest".into(),
        blob: vec![1, 2, 3],
        fields: vec!["api_key".into()],
    }
}

/// An update of `model`'s fields at its current version, credentials unchanged.
fn field_change(model: &Model, fields: ModelFields) -> ModelChange {
    ModelChange {
        id: model.id,
        expected_version: model.version,
        fields,
        catalog: Default::default(),
        credentials: None,
        actor: "user:test".into(),
        now: Timestamp::now(),
    }
}

fn new_model(uri: &str, generated: bool) -> NewModel {
    NewModel {
        id: Uuid::now_v7(),
        resource_uri: ResourceUri::parse(uri).unwrap(),
        generated,
        fields: fields(uri),
        catalog: Default::default(),
        credentials: sealed(),
        actor: "user:test".into(),
        now: Timestamp::now(),
    }
}

#[tokio::test]
async fn insert_get_and_tenant_scoping() {
    for b in backends().await {
        let s = &b.store;
        let a = scope("org-a", "p");
        let m = s
            .insert_model(&a, new_model("m", false), &audit())
            .await
            .unwrap();
        assert_eq!(m.version, 1, "{}", b.name);
        assert_eq!(m.credentials, sealed(), "sealed credentials round-trip");
        assert_eq!(m.fields, fields("m"));
        let by_uri = s
            .get_model(&a, &ModelKey::Uri(m.resource_uri.clone()))
            .await
            .unwrap();
        let by_id = s.get_model(&a, &ModelKey::Id(m.id)).await.unwrap();
        assert_eq!(by_uri.as_ref(), Some(&m));
        assert_eq!(by_id.as_ref(), Some(&m));
        for other in [scope("org-b", "p"), scope("org-a", "q")] {
            assert!(
                s.get_model(&other, &ModelKey::Id(m.id))
                    .await
                    .unwrap()
                    .is_none(),
                "{}",
                b.name
            );
            let list = s.list_models(&other, &ListQuery::default()).await.unwrap();
            assert_eq!(list.total_items, 0);
            let change = ModelChange {
                id: m.id,
                expected_version: 1,
                fields: fields("hijack"),
                catalog: Default::default(),
                credentials: None,
                actor: "user:x".into(),
                now: Timestamp::now(),
            };
            assert!(
                s.update_model(&other, change, &audit())
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(!s.delete_model(&other, m.id, None, &audit()).await.unwrap());
        }
        assert_eq!(
            s.get_model(&a, &ModelKey::Id(m.id))
                .await
                .unwrap()
                .unwrap()
                .fields
                .name,
            "m"
        );
    }
}

#[tokio::test]
async fn given_uris_conflict_and_generated_ones_are_numbered() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("o", "p");
        s.insert_model(&t, new_model("x", false), &audit())
            .await
            .unwrap();
        let dup = s.insert_model(&t, new_model("x", false), &audit()).await;
        assert!(matches!(dup, Err(Error::AlreadyExists(_))), "{}", b.name);
        let g2 = s
            .insert_model(&t, new_model("x", true), &audit())
            .await
            .unwrap();
        let g3 = s
            .insert_model(&t, new_model("x", true), &audit())
            .await
            .unwrap();
        assert_eq!(
            (g2.resource_uri.as_str(), g3.resource_uri.as_str()),
            ("x-2", "x-3")
        );
        // The same uri in another project is fine.
        s.insert_model(&scope("o", "p2"), new_model("x", false), &audit())
            .await
            .unwrap();
    }
}

/// Writes that arrive together (on SQLite, committed in one transaction) each get their own
/// outcome: a taken uri or a stale version fails that write alone, and every write that
/// succeeded is stored, counted and in the audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_each_get_their_own_outcome() {
    for b in backends().await {
        let s = &b.store;
        let t0 = scope("together", "p");
        let t = &t0;
        let target = s
            .insert_model(t, new_model("target", false), &audit())
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (s, t) = (b.store.clone(), t0.clone());
            tasks.spawn(async move {
                let uri = format!("m{i}");
                (
                    "distinct",
                    s.insert_model(&t, new_model(&uri, false), &audit())
                        .await
                        .is_ok(),
                )
            });
        }
        for _ in 0..5 {
            let (s, t) = (b.store.clone(), t0.clone());
            tasks.spawn(async move {
                let r = s.insert_model(&t, new_model("dup", false), &audit()).await;
                assert!(matches!(r, Ok(_) | Err(Error::AlreadyExists(_))), "{r:?}");
                ("dup", r.is_ok())
            });
            let (s, t) = (b.store.clone(), t0.clone());
            tasks.spawn(async move {
                (
                    "generated",
                    s.insert_model(&t, new_model("gen", true), &audit())
                        .await
                        .is_ok(),
                )
            });
            let (s, t, target) = (b.store.clone(), t0.clone(), target.clone());
            tasks.spawn(async move {
                let r = s
                    .update_model(&t, field_change(&target, fields("won")), &audit())
                    .await;
                ("update", r.unwrap().is_some())
            });
        }
        let mut ok = std::collections::BTreeMap::<&str, usize>::new();
        while let Some(done) = tasks.join_next().await {
            let (kind, succeeded) = done.unwrap();
            *ok.entry(kind).or_default() += usize::from(succeeded);
        }
        let expected = [
            ("distinct", 20),
            ("dup", 1),
            ("generated", 5),
            ("update", 1),
        ];
        assert_eq!(ok, expected.into_iter().collect(), "{}", b.name);

        let all = ListQuery {
            limit: 100,
            ..ListQuery::default()
        };
        let page = s.list_models(t, &all).await.unwrap();
        assert_eq!(page.total_items, 1 + 20 + 1 + 5, "{}", b.name);
        let mut generated: Vec<_> = page
            .items
            .iter()
            .map(|m| m.resource_uri.as_str().to_owned())
            .filter(|u| u.starts_with("gen"))
            .collect();
        generated.sort();
        assert_eq!(
            generated,
            ["gen", "gen-2", "gen-3", "gen-4", "gen-5"],
            "{}",
            b.name
        );
        let won = s
            .get_model(t, &ModelKey::Id(target.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (won.version, won.fields.name.as_str()),
            (2, "won"),
            "{}",
            b.name
        );
        // 1 + 27 successful writes, each once in the chain, and the chain intact.
        let chain = s.audit_chain("together", 0, 100).await.unwrap();
        assert_eq!(chain.len(), 1 + 20 + 1 + 5 + 1, "{}", b.name);
        assert_eq!(first_broken(GENESIS, &chain), None, "{}", b.name);
    }
}

#[tokio::test]
async fn updates_are_compare_and_swap() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("o", "p");
        let m = s
            .insert_model(&t, new_model("cas", false), &audit())
            .await
            .unwrap();
        let change = |version: i64, name: &str, creds: Option<SealedCredentials>| ModelChange {
            id: m.id,
            expected_version: version,
            fields: fields(name),
            catalog: Default::default(),
            credentials: creds,
            actor: "user:u2".into(),
            now: Timestamp::now(),
        };
        let v2 = s
            .update_model(&t, change(1, "two", None), &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((v2.version, v2.fields.name.as_str()), (2, "two"));
        assert_eq!(v2.updated_by, "user:u2");
        assert_eq!(v2.created_by, "user:test");
        assert!(
            s.update_model(&t, change(1, "stale", None), &audit())
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.name
        );
        let new_creds = SealedCredentials {
            kek_id: "k2".into(),
            blob: vec![9],
            fields: vec!["token".into()],
        };
        let v3 = s
            .update_model(&t, change(2, "three", Some(new_creds)), &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v3.credentials.fields, ["token"]);
        assert_eq!(v3.credentials.blob, [9]);
        assert_eq!(
            s.get_model(&t, &ModelKey::Id(m.id))
                .await
                .unwrap()
                .unwrap()
                .fields
                .name,
            "three"
        );
    }
}

#[tokio::test]
async fn deletes_honour_the_expected_version() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("o", "p");
        let m = s
            .insert_model(&t, new_model("d", false), &audit())
            .await
            .unwrap();
        assert!(
            !s.delete_model(&t, m.id, Some(7), &audit()).await.unwrap(),
            "{}",
            b.name
        );
        assert!(s.delete_model(&t, m.id, Some(1), &audit()).await.unwrap());
        assert!(!s.delete_model(&t, m.id, None, &audit()).await.unwrap());
        assert!(
            s.get_model(&t, &ModelKey::Id(m.id))
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn list_counts_and_pages() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("o", "p");
        for i in 0..7 {
            s.insert_model(&t, new_model(&format!("l{i}"), false), &audit())
                .await
                .unwrap();
        }
        let q = ListQuery {
            limit: 3,
            paging: Paging::Page(3),
            ..ListQuery::default()
        };
        let page = s.list_models(&t, &q).await.unwrap();
        assert_eq!(
            (page.total_items, page.items.len(), page.has_more),
            (7, 1, false),
            "{}",
            b.name
        );
        let q = ListQuery {
            limit: 3,
            ..ListQuery::default()
        };
        let page = s.list_models(&t, &q).await.unwrap();
        assert_eq!((page.items.len(), page.has_more), (3, true));
        assert_eq!(page.items[0].fields.name, "l6", "newest first");
    }
}

#[tokio::test]
async fn batch_inserts_are_all_or_nothing() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("batch", "p");
        let batch: Vec<NewModel> = (0..5).map(|i| new_model(&format!("b{i}"), false)).collect();
        assert_eq!(
            s.insert_models(&t, &batch, &audit()).await.unwrap(),
            5,
            "{}",
            b.name
        );
        let page = s.list_models(&t, &ListQuery::default()).await.unwrap();
        assert_eq!(page.total_items, 5, "{}: the maintained count", b.name);
        assert_eq!(page.items.len(), 5);
        // Each row reads back as given, as a one-model insert would write it.
        for new in &batch {
            let m = s
                .get_model(&t, &ModelKey::Id(new.id))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.fields, new.fields, "{}", b.name);
            assert_eq!(m.credentials, new.credentials, "{}", b.name);
            assert_eq!((m.version, m.created_at), (1, new.now), "{}", b.name);
            assert_eq!(m.resource_uri, new.resource_uri, "{}", b.name);
        }
        let tagged =
            ListQuery::parse(&[("tags".into(), "a".into())], &CursorKeys::ephemeral()).unwrap();
        let page = s.list_models(&t, &tagged).await.unwrap();
        assert_eq!(page.total_items, 5, "{}: the batch's tags", b.name);
        let events = s.audit_chain("batch", 0, 100).await.unwrap();
        assert_eq!(events.len(), 5, "{}: one audit event each", b.name);
        assert!(first_broken(GENESIS, &events).is_none());
        // A taken uri in the middle fails the whole batch.
        let clash = vec![
            new_model("b5", false),
            new_model("b0", false),
            new_model("b6", false),
        ];
        let err = s.insert_models(&t, &clash, &audit()).await.unwrap_err();
        assert!(
            matches!(&err, Error::AlreadyExists(m) if m.contains("b0")),
            "{}: names the taken uri: {err:?}",
            b.name
        );
        // So does a uri given twice in one batch.
        let twice = vec![new_model("b7", false), new_model("b7", false)];
        let err = s.insert_models(&t, &twice, &audit()).await.unwrap_err();
        assert!(
            matches!(&err, Error::AlreadyExists(m) if m.contains("b7")),
            "{}: {err:?}",
            b.name
        );
        let page = s.list_models(&t, &ListQuery::default()).await.unwrap();
        assert_eq!(
            page.total_items, 5,
            "{}: nothing of a failed batch stays",
            b.name
        );
        assert!(
            s.get_model(&t, &ModelKey::Uri(ResourceUri::parse("b5").unwrap()))
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// PostgreSQL writes a batch 1,000 models to a statement: a batch over two of them keeps one
/// unbroken audit chain, after events already there, and every model and tag.
#[tokio::test]
async fn a_long_batch_keeps_one_chain() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("long", "p");
        s.insert_model(&t, new_model("first", false), &audit())
            .await
            .unwrap();
        let batch: Vec<NewModel> = (0..2_100)
            .map(|i| new_model(&format!("l{i:04}"), false))
            .collect();
        assert_eq!(s.insert_models(&t, &batch, &audit()).await.unwrap(), 2_100);
        let events = s.audit_chain("long", 0, 3_000).await.unwrap();
        assert_eq!(events.len(), 2_101, "{}", b.name);
        assert!(
            first_broken(GENESIS, &events).is_none(),
            "{}: the chain runs on across statements",
            b.name
        );
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=2_101).collect::<Vec<i64>>(), "{}", b.name);
        assert_eq!(events[2_100].resource_uri, "l2099", "{}", b.name);
        let tagged =
            ListQuery::parse(&[("tags".into(), "a".into())], &CursorKeys::ephemeral()).unwrap();
        let page = s.list_models(&t, &tagged).await.unwrap();
        assert_eq!(page.total_items, 2_101, "{}: every model's tag", b.name);
        let page = s.list_models(&t, &ListQuery::default()).await.unwrap();
        assert_eq!(page.total_items, 2_101, "{}: the maintained count", b.name);
    }
}

/// A batch and single creates in the same project at once all succeed: the batch takes the
/// project's count and the organization's audit chain in the order every other write does, so
/// neither waits for the other in a cycle (on PostgreSQL a cycle is a deadlock error).
#[tokio::test]
async fn a_batch_and_single_creates_do_not_deadlock() {
    for b in backends().await {
        let t = scope("both", "p");
        let batch: Vec<NewModel> = (0..3_000)
            .map(|i| new_model(&format!("m{i:04}"), false))
            .collect();
        let bulk = {
            let (s, t) = (b.store.clone(), t.clone());
            tokio::spawn(async move { s.insert_models(&t, &batch, &audit()).await })
        };
        let singles: Vec<_> = (0..20)
            .map(|i| {
                let (s, t) = (b.store.clone(), t.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(i * 5)).await;
                    s.insert_model(&t, new_model(&format!("s{i}"), false), &audit())
                        .await
                })
            })
            .collect();
        // A deadlock fails here, in a minute, not as a hung suite.
        let limit = std::time::Duration::from_secs(60);
        tokio::time::timeout(limit, bulk)
            .await
            .expect("the batch ends")
            .unwrap()
            .unwrap_or_else(|e| panic!("{}: {e:?}", b.name));
        for single in singles {
            tokio::time::timeout(limit, single)
                .await
                .expect("each create ends")
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e:?}", b.name));
        }
        let page = b
            .store
            .list_models(&t, &ListQuery::default())
            .await
            .unwrap();
        assert_eq!(page.total_items, 3_020, "{}", b.name);
        let events = b.store.audit_chain("both", 0, 4_000).await.unwrap();
        assert_eq!(events.len(), 3_020, "{}", b.name);
        assert!(first_broken(GENESIS, &events).is_none(), "{}", b.name);
    }
}

/// Two stores on one database, as two replicas: the second's writes change the first's
/// filtered totals at once, though the first reuses a count while the project's generation
/// stays the same.
#[tokio::test]
async fn filtered_totals_stay_exact_across_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("g.db").display());
    let schema = PgSchema::create().await;
    for (name, url, raw_delete) in [
        (
            "sqlite",
            sqlite.as_str(),
            "DELETE FROM models WHERE resource_uri = 'g0'",
        ),
        (
            "postgres",
            schema.url.as_str(),
            "DELETE FROM models WHERE resource_uri = 'g0'",
        ),
    ] {
        let settings = PoolSettings::default();
        let a = modelreg_store::open(url, &settings).await.unwrap();
        let b = modelreg_store::open(url, &settings).await.unwrap();
        let t = scope("gen", "p");
        let by = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ListQuery::parse(&pairs, &CursorKeys::ephemeral()).unwrap()
        };
        let tagged = by(&[("tags", "a")]);
        let disabled = by(&[("status", "DISABLED")]);
        let total = |s: &Arc<dyn Store>, q: &ListQuery| {
            let (s, q, t) = (s.clone(), q.clone(), t.clone());
            async move { s.list_models(&t, &q).await.unwrap().total_items }
        };
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                a.insert_model(&t, new_model(&format!("g{i}"), false), &audit())
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(total(&a, &tagged).await, 3, "{name}");
        assert_eq!(
            total(&a, &tagged).await,
            3,
            "{name}: counted once, then reused"
        );
        // An insert on the other replica.
        b.insert_model(&t, new_model("g3", false), &audit())
            .await
            .unwrap();
        assert_eq!(
            total(&a, &tagged).await,
            4,
            "{name}: another replica's insert"
        );
        // An update there that moves a model into the filter.
        let mut f = ids[1].fields.clone();
        f.status = Status::Disabled;
        assert_eq!(total(&a, &disabled).await, 0, "{name}");
        b.update_model(&t, field_change(&ids[1], f), &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            total(&a, &disabled).await,
            1,
            "{name}: another replica's update"
        );
        // A verification there that changes a PENDING model's status.
        let active = by(&[("status", "ACTIVE")]);
        assert_eq!(total(&a, &active).await, 0, "{name}");
        b.record_verification(
            &t,
            ids[0].id,
            Status::Active,
            "ok",
            Timestamp::now(),
            &audit(),
        )
        .await
        .unwrap();
        assert_eq!(total(&a, &active).await, 1, "{name}: a verification");
        assert_eq!(total(&a, &disabled).await, 1, "{name}");
        // A delete there.
        assert!(b.delete_model(&t, ids[2].id, None, &audit()).await.unwrap());
        assert_eq!(
            total(&a, &tagged).await,
            3,
            "{name}: another replica's delete"
        );
        // A row removed behind the store's back, with plain SQL, moves the generation too
        // (the database's triggers keep it): every replica's cached count retires at once.
        assert_eq!(total(&a, &tagged).await, 3);
        plain_sql(url, raw_delete).await;
        assert_eq!(
            total(&a, &tagged).await,
            2,
            "{name}: a plain SQL delete retired the cached count"
        );
        assert_eq!(total(&b, &tagged).await, 2, "{name}");
        assert_eq!(
            a.list_models(&t, &ListQuery::default())
                .await
                .unwrap()
                .total_items,
            2,
            "{name}: the maintained count followed the plain SQL delete"
        );
        b.insert_model(&t, new_model("g4", false), &audit())
            .await
            .unwrap();
        assert_eq!(total(&a, &tagged).await, 3, "{name}: the next write counts");
    }
}

async fn plain_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_maintained_count_stays_exact() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("o", "counted");
        let other = scope("o", "elsewhere");
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                s.insert_model(&t, new_model(&format!("c{i}"), false), &audit())
                    .await
                    .unwrap()
                    .id,
            );
        }
        s.insert_model(&other, new_model("x", false), &audit())
            .await
            .unwrap();
        // A failed insert (taken uri) counts nothing.
        assert!(
            s.insert_model(&t, new_model("c0", false), &audit())
                .await
                .is_err()
        );
        s.delete_model(&t, ids[0], None, &audit()).await.unwrap();
        // A delete that deletes nothing counts nothing.
        assert!(!s.delete_model(&t, ids[0], None, &audit()).await.unwrap());
        assert!(
            !s.delete_model(&t, ids[1], Some(99), &audit())
                .await
                .unwrap()
        );
        let unfiltered = s.list_models(&t, &ListQuery::default()).await.unwrap();
        let filtered = ListQuery::parse(
            &[("status".into(), "PENDING".into())],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        let counted = s.list_models(&t, &filtered).await.unwrap();
        assert_eq!(
            (unfiltered.total_items, counted.total_items),
            (4, 4),
            "{}",
            b.name
        );
        let empty = s
            .list_models(&scope("o", "never"), &ListQuery::default())
            .await
            .unwrap();
        assert_eq!(empty.total_items, 0);
        assert_eq!(
            s.list_models(&other, &ListQuery::default())
                .await
                .unwrap()
                .total_items,
            1
        );
    }
}

#[tokio::test]
async fn maintenance_batches_and_compare_and_swap() {
    for b in backends().await {
        let s = &b.store;
        let mut ids = Vec::new();
        for (i, project) in ["p1", "p2", "p1", "p3"].iter().enumerate() {
            let mut m = new_model(&format!("k{i}"), false);
            if i % 2 == 1 {
                m.credentials.kek_id = "knew".into();
            }
            ids.push(
                s.insert_model(&scope("o", project), m, &audit())
                    .await
                    .unwrap()
                    .id,
            );
        }
        ids.sort();
        let all = s.sealed_batch(None, 10, None).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids,
            "{}",
            b.name
        );
        let first = s.sealed_batch(None, 2, None).await.unwrap();
        let rest = s.sealed_batch(Some(first[1].id), 10, None).await.unwrap();
        assert_eq!((first.len(), rest.len()), (2, 2));
        let old = s.sealed_batch(None, 10, Some("knew")).await.unwrap();
        assert_eq!(old.len(), 2);
        assert!(old.iter().all(|r| r.credentials.kek_id == "ktest"));
        let mut counts = s.count_by_kek().await.unwrap();
        counts.sort();
        assert_eq!(counts, [("knew".to_owned(), 2), ("ktest".to_owned(), 2)]);

        let record = &old[0];
        let before = s
            .get_model(&record.scope, &ModelKey::Id(record.id))
            .await
            .unwrap()
            .unwrap();
        let new = SealedCredentials {
            kek_id: "knew".into(),
            blob: vec![7, 7],
            fields: record.credentials.fields.clone(),
        };
        assert!(s.replace_sealed(record, &new).await.unwrap());
        // The stale record no longer matches: a second replace changes nothing.
        assert!(!s.replace_sealed(record, &new).await.unwrap());
        let after = s
            .get_model(&record.scope, &ModelKey::Id(record.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.credentials, new);
        assert_eq!(
            after.version, before.version,
            "rotation does not change the model"
        );
        // A record of another tenant with the same id is never touched.
        let moved = SealedRecord {
            scope: scope("other", "p1"),
            ..old[1].clone()
        };
        assert!(!s.replace_sealed(&moved, &new).await.unwrap());
    }
}

/// Every kind of write moves the project's generation, and every page carries the generation
/// of its own snapshot: what the API's rendered pages are checked against.
#[tokio::test]
async fn every_write_moves_the_generation_a_page_carries() {
    for b in backends().await {
        let (s, name) = (&b.store, b.name);
        let t = scope("gens", "p");
        let other = scope("gens", "q");
        assert_eq!(s.project_generation(&t).await.unwrap(), None, "{name}");
        let unfiltered = ListQuery::default();
        let filtered = ListQuery::parse(
            &[("search".to_owned(), "gen".to_owned())],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        let no_match = ListQuery::parse(
            &[("search".to_owned(), "no such".to_owned())],
            &CursorKeys::ephemeral(),
        )
        .unwrap();
        // Reads the generation, checks every kind of page carries it (a filtered page with no
        // rows too, through its count of none) and that it moved on from `last`.
        let current = |last: Option<i64>| {
            let (s, t, u, f) = (s.clone(), t.clone(), unfiltered.clone(), filtered.clone());
            let none = no_match.clone();
            async move {
                let g = s.project_generation(&t).await.unwrap().unwrap();
                assert_eq!(s.list_models(&t, &u).await.unwrap().generation, Some(g));
                assert_eq!(s.list_models(&t, &f).await.unwrap().generation, Some(g));
                let empty = s.list_models(&t, &none).await.unwrap();
                assert_eq!((empty.items.len(), empty.generation), (0, Some(g)));
                assert!(
                    last.is_none_or(|l| g > l),
                    "the generation moved on: {last:?} → {g}"
                );
                g
            }
        };
        let m = s
            .insert_model(&t, new_model("gen0", false), &audit())
            .await
            .unwrap();
        let mut g = current(None).await;
        let mut f = m.fields.clone();
        f.description = Some("changed".into());
        s.update_model(&t, field_change(&m, f), &audit())
            .await
            .unwrap()
            .unwrap();
        g = current(Some(g)).await;
        s.record_verification(&t, m.id, Status::Error, "no", Timestamp::now(), &audit())
            .await
            .unwrap();
        g = current(Some(g)).await;
        let record = s.sealed_batch(None, 10, None).await.unwrap().remove(0);
        let rewrapped = SealedCredentials {
            kek_id: "knew".into(),
            ..record.credentials.clone()
        };
        assert!(s.replace_sealed(&record, &rewrapped).await.unwrap());
        g = current(Some(g)).await;
        // A write to another project leaves this one's generation alone.
        s.insert_model(&other, new_model("gen1", false), &audit())
            .await
            .unwrap();
        let unmoved = s.project_generation(&t).await.unwrap();
        assert_eq!(unmoved, Some(g), "{name}: another project's write");
        let second = s
            .insert_model(&t, new_model("gen2", false), &audit())
            .await
            .unwrap();
        g = current(Some(g)).await;
        assert!(s.delete_model(&t, second.id, None, &audit()).await.unwrap());
        g = current(Some(g)).await;
        // A rejected write (stale version) leaves it alone.
        assert!(!s.delete_model(&t, m.id, Some(99), &audit()).await.unwrap());
        let unmoved = s.project_generation(&t).await.unwrap();
        assert_eq!(unmoved, Some(g), "{name}: a refused delete");
    }
}

#[tokio::test]
async fn tokens() {
    for b in backends().await {
        let s = &b.store;
        // Every column is written and read back, `expires_at` among them (the SQLite insert
        // once left it unbound, and an expiring token never expired).
        let expires = Timestamp::parse("2999-01-01T00:00:00.000000Z").unwrap();
        let t = NewToken {
            name: "svc".into(),
            org: OrgId::parse("o").unwrap(),
            project: ProjectGrant::All,
            role: Role::Admin,
            hash: "h1".into(),
            expires_at: Some(expires),
        };
        let created = s.insert_token(t).await.unwrap();
        assert_eq!(created.expires_at, Some(expires));
        let found = s.token_by_hash("h1").await.unwrap().unwrap();
        assert_eq!(found.token, created, "{}", b.name);
        assert_eq!(found.project_generation, None, "a token of every project");
        let listed = s.org_tokens(&OrgId::parse("o").unwrap()).await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&created), "{}", b.name);
        // Names are unique per organization: another organization may use the same one, and
        // only a second one in the same organization is refused.
        let elsewhere = NewToken {
            name: "svc".into(),
            org: OrgId::parse("o2").unwrap(),
            project: ProjectGrant::One(ProjectId::parse("p").unwrap()),
            role: Role::Viewer,
            hash: "h2".into(),
            expires_at: None,
        };
        let other = s.insert_token(elsewhere).await.unwrap();
        assert_eq!(other.expires_at, None);
        let again = NewToken {
            name: "svc".into(),
            org: OrgId::parse("o").unwrap(),
            project: ProjectGrant::All,
            role: Role::Viewer,
            hash: "h3".into(),
            expires_at: None,
        };
        assert!(matches!(
            s.insert_token(again).await,
            Err(Error::AlreadyExists(_))
        ));
        assert!(
            s.revoke_org_token(&OrgId::parse("o").unwrap(), "svc")
                .await
                .unwrap()
        );
        assert!(s.token_by_hash("h1").await.unwrap().is_none());
        assert!(
            s.token_by_hash("h2").await.unwrap().is_some(),
            "{}: the other organization's token of that name stays",
            b.name
        );
        assert!(s.list_tokens().await.unwrap()[0].revoked_at.is_some());
        assert!(
            !s.revoke_org_token(&OrgId::parse("o").unwrap(), "svc")
                .await
                .unwrap()
        );
        s.ready().await.unwrap();
    }
}

#[tokio::test]
async fn every_write_appends_to_the_organizations_chain() {
    for b in backends().await {
        let s = &b.store;
        let t = scope("chain-org", "p");
        let m = s
            .insert_model(&t, new_model("c", false), &audit())
            .await
            .unwrap();
        let change = ModelChange {
            id: m.id,
            expected_version: 1,
            fields: fields("c2"),
            catalog: Default::default(),
            credentials: None,
            actor: "user:u".into(),
            now: Timestamp::now(),
        };
        s.update_model(&t, change, &audit()).await.unwrap().unwrap();
        // A write that does not happen records nothing.
        let stale = ModelChange {
            id: m.id,
            expected_version: 1,
            fields: fields("c3"),
            catalog: Default::default(),
            credentials: None,
            actor: "user:u".into(),
            now: Timestamp::now(),
        };
        assert!(s.update_model(&t, stale, &audit()).await.unwrap().is_none());
        s.insert_model(
            &scope("chain-org", "other"),
            new_model("d", false),
            &audit(),
        )
        .await
        .unwrap();
        assert!(s.delete_model(&t, m.id, None, &audit()).await.unwrap());
        assert!(!s.delete_model(&t, m.id, None, &audit()).await.unwrap());

        let chain = s.audit_chain("chain-org", 0, 100).await.unwrap();
        assert_eq!(
            chain.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4],
            "{}",
            b.name
        );
        assert_eq!(first_broken(GENESIS, &chain), None);
        assert_eq!(
            chain[3].resource_uri, "c",
            "a delete records the resource_uri"
        );
        // History outlives the model, by uri and by id, newest first, in its project only.
        let (by_uri, total) = s
            .model_history(&t, &ModelKey::Uri(ResourceUri::parse("c").unwrap()), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            (total, by_uri.iter().map(|e| e.seq).collect::<Vec<_>>()),
            (3, vec![4, 2, 1])
        );
        let (by_id, _) = s
            .model_history(&t, &ModelKey::Id(m.id), 0, 2)
            .await
            .unwrap();
        assert_eq!(by_id.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 2]);
        let other_org = scope("someone-else", "p");
        assert_eq!(
            s.model_history(&other_org, &ModelKey::Id(m.id), 0, 10)
                .await
                .unwrap()
                .1,
            0
        );
        assert!(
            s.audit_organizations()
                .await
                .unwrap()
                .contains(&"chain-org".to_owned())
        );
    }
}

#[tokio::test]
async fn replica_heartbeats() {
    for b in backends().await {
        let s = &b.store;
        let keys = |k: &[&str]| k.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        let live_for = std::time::Duration::from_secs(30);
        s.replica_heartbeat("a", &keys(&["k1"]), "k1", live_for)
            .await
            .unwrap();
        s.replica_heartbeat("b", &keys(&["k1", "k2"]), "k1", live_for)
            .await
            .unwrap();
        // A second beat replaces the first.
        s.replica_heartbeat("a", &keys(&["k1", "k2"]), "k2", live_for)
            .await
            .unwrap();
        let live = s.live_replicas().await.unwrap();
        assert_eq!(live.len(), 2, "{}", b.name);
        assert_eq!(
            (
                live[0].id.as_str(),
                live[0].kek_ids.clone(),
                live[0].seal_kek_id.as_str()
            ),
            ("a", keys(&["k1", "k2"]), "k2"),
            "{}",
            b.name
        );
        assert!(live[0].live_until > live[0].seen_at, "{}", b.name);
        // Past its live_until a replica no longer counts; a forgotten one is gone.
        s.replica_heartbeat("c", &keys(&["k1"]), "k1", std::time::Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        s.forget_replica("a").await.unwrap();
        let live = s.live_replicas().await.unwrap();
        assert_eq!(
            live.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b"],
            "{}",
            b.name
        );
    }
}

/// The database keeps its own invariants: an update and a delete made with plain SQL, outside
/// modelreg, move the project's generation, its count and its tag rows, so every list (and
/// every replica's cached count) sees them at once.
#[tokio::test]
async fn plain_sql_writes_are_seen_by_the_lists() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("raw.db").display());
    let schema = PgSchema::create().await;
    for url in [sqlite.as_str(), schema.url.as_str()] {
        let s = modelreg_store::open(url, &PoolSettings::default())
            .await
            .unwrap();
        let t = scope("raw", "p");
        for i in 0..3 {
            s.insert_model(&t, new_model(&format!("r{i}"), false), &audit())
                .await
                .unwrap();
        }
        let by = |k: &str, v: &str| {
            ListQuery::parse(&[(k.into(), v.into())], &CursorKeys::ephemeral()).unwrap()
        };
        let total = |q: ListQuery| {
            let (s, t) = (s.clone(), t.clone());
            async move { s.list_models(&t, &q).await.unwrap().total_items }
        };
        assert_eq!(total(by("status", "DISABLED")).await, 0, "{url}");
        assert_eq!(total(by("tags", "z")).await, 0, "{url}");
        let before = s.project_generation(&t).await.unwrap().unwrap();

        plain_sql(
            url,
            "UPDATE models SET status = 'DISABLED', tags = '[\"z\"]' WHERE resource_uri = 'r1'",
        )
        .await;
        let after = s.project_generation(&t).await.unwrap().unwrap();
        assert!(
            after > before,
            "{url}: a plain SQL update moved the generation"
        );
        assert_eq!(total(by("status", "DISABLED")).await, 1, "{url}");
        assert_eq!(
            total(by("tags", "z")).await,
            1,
            "{url}: the tag rows followed"
        );
        assert_eq!(total(by("tags", "a")).await, 2, "{url}: the old tags went");

        // Health-check bookkeeping is not something a list shows: it moves nothing.
        plain_sql(url, "UPDATE models SET check_failures = 7").await;
        assert_eq!(
            s.project_generation(&t).await.unwrap(),
            Some(after),
            "{url}"
        );

        plain_sql(url, "DELETE FROM models WHERE resource_uri = 'r1'").await;
        assert_eq!(total(by("tags", "z")).await, 0, "{url}");
        assert_eq!(
            total(ListQuery::default()).await,
            2,
            "{url}: the count followed"
        );
        s.close().await;
    }
}

/// The list's query parameters as given, parsed as the API parses them.
fn query(pairs: &[(&str, &str)]) -> ListQuery {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ListQuery::parse(&pairs, &CursorKeys::ephemeral()).unwrap()
}

/// Every model of a list, page after page.
async fn all_of(s: &Arc<dyn Store>, t: &TenantScope, mut q: ListQuery) -> Vec<Model> {
    q.limit = 100;
    let mut out = Vec::new();
    for page in 1.. {
        q.paging = Paging::Page(page);
        let got = s.list_models(t, &q).await.unwrap();
        let more = got.has_more;
        out.extend(got.items);
        if !more {
            break;
        }
    }
    out
}

/// A search is a case-insensitive substring of the name or the description, with `%`, `_` and
/// `\` literal, whether the trigram index answers it (three characters or more, on SQLite) or
/// the LIKE alone does; and the index follows creates, updates and deletes. The expected
/// results are computed here from the models themselves.
#[tokio::test]
async fn search_is_a_literal_substring_on_every_backend() {
    let texts: [(&str, Option<&str>); 9] = [
        ("Zephyr-7B Chat", Some("Fast 100% open model_x")),
        ("ZEPHYR beta", None),
        ("Ünïcode Straße", Some("grüße aus köln")),
        ("back\\slash", Some("a\\b path c:\\x")),
        ("under_score", Some("50% off")),
        ("plain", Some("nothing special here")),
        ("ab", Some("x")),
        ("GPT-4o mini", Some("OpenAI's small model, 128k context")),
        ("ΟΔΟΣ İstanbul", Some("Say \"hi\" now")),
    ];
    let needles = [
        "zephyr",
        "ZEPH",
        "phyr-7",
        "100%",
        "%",
        "0%",
        "_",
        "l_x",
        "e_s",
        "de_",
        "\\",
        "k\\s",
        "c:\\x",
        "straße",
        "STRASSE",
        "üni",
        "grü",
        "ß",
        "ab",
        "a",
        "b",
        "zz",
        "",
        "plain",
        "  ",
        "4o m",
        "'s ",
        "\"",
        "mod",
        "model",
        "no such needle",
        "\"hi\"",
        "y \"h",
        "οδοσ",
        "οδος",
        "ΟΔΟΣ",
        "istanbul",
        "i̇stan",
        "r-7b c",
        "AND",
        "a OR b",
        "x*",
    ];
    for b in backends().await {
        let (s, name) = (&b.store, b.name);
        let t = scope("search", "p");
        let mut models = Vec::new();
        for (i, (title, description)) in texts.iter().enumerate() {
            let mut m = new_model(&format!("s{i}"), false);
            m.fields.name = (*title).into();
            m.fields.description = description.map(Into::into);
            models.push(s.insert_model(&t, m, &audit()).await.unwrap());
        }
        s.insert_model(
            &scope("search", "other"),
            new_model("zephyr", false),
            &audit(),
        )
        .await
        .unwrap();
        let check = |models: Vec<Model>| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                for needle in needles {
                    let lc = needle.to_lowercase();
                    let mut expected: Vec<String> = models
                        .iter()
                        .filter(|m| {
                            m.fields.name.to_lowercase().contains(&lc)
                                || m.fields
                                    .description
                                    .as_deref()
                                    .unwrap_or("")
                                    .to_lowercase()
                                    .contains(&lc)
                        })
                        .map(|m| m.resource_uri.to_string())
                        .collect();
                    expected.sort();
                    let q = query(&[("search", needle)]);
                    let page = s.list_models(&t, &q).await.unwrap();
                    let mut got: Vec<String> = all_of(&s, &t, q)
                        .await
                        .into_iter()
                        .map(|m| m.resource_uri.to_string())
                        .collect();
                    got.sort();
                    assert_eq!(got, expected, "{name}: search {needle:?}");
                    assert_eq!(
                        page.total_items,
                        expected.len() as u64,
                        "{name}: {needle:?}"
                    );
                }
            }
        };
        check(models.clone()).await;
        // Renamed, redescribed and deleted: the index follows.
        let mut f = models[0].fields.clone();
        f.name = "Mistral Large".into();
        f.description = Some("now 42% zephyr-free".into());
        models[0] = s
            .update_model(&t, field_change(&models[0], f), &audit())
            .await
            .unwrap()
            .unwrap();
        let gone = models.remove(1);
        assert!(s.delete_model(&t, gone.id, None, &audit()).await.unwrap());
        check(models.clone()).await;
        assert_eq!(
            all_of(s, &t, query(&[("search", "mistral")])).await.len(),
            1,
            "{name}"
        );
        assert!(
            all_of(s, &t, query(&[("search", "zephyr beta")]))
                .await
                .is_empty(),
            "{name}: a deleted model is not found"
        );
    }
}

/// The totals of status, mode, provider and tag filters, and their combinations, come from
/// the maintained slices; they match the models through creates, changes from one slice to
/// another, deletes and plain SQL. A write moves the generation of the slices it touches and
/// of no other.
#[tokio::test]
async fn slice_totals_are_exact_and_move_only_with_their_models() {
    use modelreg_core::model::Mode;
    let statuses = [Status::Active, Status::Error, Status::Disabled];
    let modes = [None, Some(Mode::Chat), Some(Mode::Embedding)];
    let providers = ["openai", "anthropic"];
    let tag_sets: [&[&str]; 4] = [&["a"], &["a", "b"], &["b", "c"], &[]];
    let filters: Vec<Vec<(&str, &str)>> = vec![
        vec![("status", "ACTIVE")],
        vec![("status", "ERROR"), ("mode", "chat")],
        vec![("provider", "anthropic")],
        vec![
            ("provider", "openai"),
            ("status", "DISABLED"),
            ("mode", "embedding"),
        ],
        vec![("tags", "b")],
        vec![("tags", "a"), ("status", "ACTIVE")],
        vec![("tags", "c"), ("provider", "openai"), ("mode", "chat")],
        vec![("tags", "a,b")],
        vec![("tags", "nope")],
        vec![("mode", "completion")],
    ];
    let matches = |m: &Model, filter: &[(&str, &str)]| {
        filter.iter().all(|(k, v)| match *k {
            "status" => m.fields.status.as_str() == *v,
            "mode" => m.fields.mode.map(|x| x.as_str()) == Some(*v),
            "provider" => m.fields.provider.as_deref() == Some(*v),
            "tags" => v.split(',').all(|t| m.fields.tags.iter().any(|x| x == t)),
            _ => unreachable!(),
        })
    };
    for b in backends().await {
        let (s, name) = (&b.store, b.name);
        let t = scope("slices", "p");
        let mut n = 0;
        for status in statuses {
            for mode in modes {
                for provider in providers {
                    for tags in tag_sets {
                        let mut m = new_model(&format!("m{n}"), false);
                        n += 1;
                        m.fields.status = status;
                        m.fields.mode = mode;
                        m.fields.provider = Some(provider.into());
                        m.fields.tags = tags.iter().map(|t| (*t).to_owned()).collect();
                        s.insert_model(&t, m, &audit()).await.unwrap();
                    }
                }
            }
        }
        let check = |label: &'static str| {
            let (s, t, filters) = (s.clone(), t.clone(), filters.clone());
            async move {
                let models = all_of(&s, &t, ListQuery::default()).await;
                for filter in &filters {
                    let expected = models.iter().filter(|m| matches(m, filter)).count();
                    let page = s.list_models(&t, &query(filter)).await.unwrap();
                    assert_eq!(
                        (page.total_items, page.total_is_estimate),
                        (expected as u64, false),
                        "{name} {label}: {filter:?}"
                    );
                    let listed = all_of(&s, &t, query(filter)).await;
                    assert_eq!(listed.len(), expected, "{name} {label}: {filter:?}");
                }
            }
        };
        check("created").await;

        let slices = |filter: &'static [(&'static str, &'static str)]| {
            let (s, t) = (s.clone(), t.clone());
            async move {
                s.slices_generation(&t, &query(filter))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let active = slices(&[("status", "ACTIVE")]).await;
        let anthropic_c = slices(&[("tags", "c"), ("provider", "anthropic")]).await;
        let project = s.project_generation(&t).await.unwrap();
        // One ERROR openai chat model with tags [a] becomes DISABLED with tags [c].
        let victim = all_of(s, &t, query(&[("status", "ERROR"), ("mode", "chat")]))
            .await
            .into_iter()
            .find(|m| m.fields.provider.as_deref() == Some("openai") && m.fields.tags == ["a"])
            .unwrap();
        let mut f = victim.fields.clone();
        f.status = Status::Disabled;
        f.tags = vec!["c".into()];
        s.update_model(&t, field_change(&victim, f), &audit())
            .await
            .unwrap()
            .unwrap();
        check("updated").await;
        assert!(s.project_generation(&t).await.unwrap() > project, "{name}");
        assert_eq!(
            slices(&[("status", "ACTIVE")]).await,
            active,
            "{name}: a write to ERROR and DISABLED models leaves ACTIVE's slices"
        );
        assert_eq!(
            slices(&[("tags", "c"), ("provider", "anthropic")]).await,
            anthropic_c,
            "{name}: and another provider's"
        );
        assert!(
            slices(&[("status", "DISABLED")]).await > 0,
            "{name}: the slices it entered moved"
        );
        let error_before = slices(&[("status", "ERROR")]).await;
        let some_active = all_of(s, &t, query(&[("status", "ACTIVE")])).await;
        assert!(
            s.delete_model(&t, some_active[0].id, None, &audit())
                .await
                .unwrap()
        );
        check("deleted").await;
        assert!(slices(&[("status", "ACTIVE")]).await > active, "{name}");
        assert_eq!(slices(&[("status", "ERROR")]).await, error_before, "{name}");
        let url = match (&b._dir, &b._schema) {
            (Some(dir), _) => format!("sqlite://{}", dir.path().join("c.db").display()),
            (_, Some(schema)) => schema.url.clone(),
            _ => unreachable!(),
        };
        {
            plain_sql(
                &url,
                "UPDATE models SET mode = 'completion', tags = '[\"b\"]' \
                 WHERE provider = 'anthropic' AND status = 'ACTIVE'",
            )
            .await;
            check("plain SQL").await;
        }
    }
}

/// Where no maintained count answers (a search, two tags), the count stops past COUNT_CAP and
/// the page says its total is a floor; a sliced filter over the same models stays exact, and
/// so does a search SQLite's trigram index answers. The
/// models are made by plain SQL, which the triggers keep counted, indexed and sliced.
#[tokio::test]
async fn counts_past_the_cap_are_floors() {
    let cap = modelreg_core::list::COUNT_CAP;
    let n = cap + 50;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("cap.db").display());
    let schema = PgSchema::create().await;
    let now = Timestamp::now().to_string();
    // The database's own counts, without SQLite's list index (whose totals are exact whatever
    // the filters: tests/list_index.rs).
    let settings = PoolSettings {
        list_index_max_models: 0,
        ..PoolSettings::default()
    };
    for url in [sqlite.as_str(), schema.url.as_str()] {
        let s = modelreg_store::open(url, &settings).await.unwrap();
        let (id, at) = if url.starts_with("postgres") {
            (
                "(lpad(to_hex(i), 8, '0') || '-0000-4000-8000-000000000000')::uuid".to_owned(),
                "now()".to_owned(),
            )
        } else {
            (
                "printf('%08x-0000-4000-8000-000000000000', i)".to_owned(),
                format!("'{now}'"),
            )
        };
        plain_sql(
            url,
            &format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
                 INSERT INTO models (id, organization_id, project_id, resource_uri, name, \
                 name_lc, litellm_model, provider, tags, status, created_at, updated_at, \
                 created_by, updated_by, credentials_kek_id, credentials, max_input_tokens) \
                 SELECT {id}, 'cap', 'p', 'bulk-' || i, 'Bulk ' || i, 'bulk ' || i, 'openai/x', \
                 'openai', '[\"a\",\"b\"]', 'ACTIVE', {at}, {at}, 'user:sql', 'user:sql', 'k', \
                 {blob}, 1000 FROM n",
                blob = if url.starts_with("postgres") {
                    "'\\x00'::bytea"
                } else {
                    "x'00'"
                },
            ),
        )
        .await;
        let t = scope("cap", "p");
        // A search SQLite's trigram index answers counts its candidates, which it finds for
        // the page anyway: exact. PostgreSQL's, and a needle too short for the index, count
        // up to the cap.
        let page = s
            .list_models(&t, &query(&[("search", "bulk")]))
            .await
            .unwrap();
        let indexed = url.starts_with("sqlite");
        assert_eq!(
            (page.total_items, page.total_is_estimate, page.has_more),
            if indexed {
                (n, false, true)
            } else {
                (cap, true, true)
            },
            "{url}"
        );
        let short = s
            .list_models(&t, &query(&[("search", "bu")]))
            .await
            .unwrap();
        assert_eq!(
            (short.total_items, short.total_is_estimate, short.has_more),
            (cap, true, true),
            "{url}"
        );
        let two_tags = s.list_models(&t, &query(&[("tags", "a,b")])).await.unwrap();
        assert_eq!(
            (two_tags.total_items, two_tags.total_is_estimate),
            (cap, true),
            "{url}"
        );
        // The catalog's filters are counted too, with or without a facet.
        for filter in [
            vec![("min_input_tokens", "1")],
            vec![("status", "ACTIVE"), ("min_input_tokens", "1")],
        ] {
            let page = s.list_models(&t, &query(&filter)).await.unwrap();
            assert_eq!(
                (page.total_items, page.total_is_estimate, page.has_more),
                (cap, true, true),
                "{url}: {filter:?}"
            );
        }
        let sliced = s.list_models(&t, &query(&[("tags", "a")])).await.unwrap();
        assert_eq!(
            (sliced.total_items, sliced.total_is_estimate),
            (n, false),
            "{url}"
        );
        let rare = s
            .list_models(&t, &query(&[("search", "bulk 1005")]))
            .await
            .unwrap();
        assert_eq!(
            (rare.total_items, rare.total_is_estimate),
            (2, false),
            "{url}"
        );
        let all = s.list_models(&t, &ListQuery::default()).await.unwrap();
        assert_eq!(
            (all.total_items, all.total_is_estimate),
            (n, false),
            "{url}"
        );
        s.close().await;
    }
}

/// An organization's projects are those of its own that hold models, in byte order, whatever
/// other organizations call theirs; a project whose last model is deleted leaves the list.
#[tokio::test]
async fn org_projects_are_the_organizations_own_with_models() {
    for b in backends().await {
        let s = &b.store;
        let ids = |ps: Vec<ProjectId>| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let mut last = None;
        for (org, project, uri) in [
            ("org-a", "p-one", "m1"),
            ("org-a", "p-one", "m2"),
            ("org-a", "Zeta", "m1"),
            ("org-a", "p-two", "m1"),
            ("org-b", "p-one", "m1"),
            ("org-b", "p-secret", "m1"),
        ] {
            let m = s
                .insert_model(&scope(org, project), new_model(uri, false), &audit())
                .await
                .unwrap();
            last = Some(m);
        }
        let org_a = OrgId::parse("org-a").unwrap();
        let org_b = OrgId::parse("org-b").unwrap();
        assert_eq!(
            ids(s.org_projects(&org_a, 100).await.unwrap()),
            ["Zeta", "p-one", "p-two"],
            "{}",
            b.name
        );
        assert_eq!(
            ids(s.org_projects(&org_b, 100).await.unwrap()),
            ["p-one", "p-secret"],
            "{}",
            b.name
        );
        assert_eq!(
            ids(s.org_projects(&org_a, 1).await.unwrap()),
            ["Zeta"],
            "{}",
            b.name
        );
        let none = OrgId::parse("org-none").unwrap();
        assert!(s.org_projects(&none, 100).await.unwrap().is_empty());

        // org-b's only model of p-secret goes: the project is no longer listed, and org-a's
        // list never changed.
        let secret = last.unwrap();
        assert!(
            s.delete_model(&scope("org-b", "p-secret"), secret.id, None, &audit())
                .await
                .unwrap()
        );
        assert_eq!(
            ids(s.org_projects(&org_b, 100).await.unwrap()),
            ["p-one"],
            "{}",
            b.name
        );
        assert_eq!(
            ids(s.org_projects(&org_a, 100).await.unwrap()),
            ["Zeta", "p-one", "p-two"],
            "{}",
            b.name
        );
    }
}

/// The stores of the catalog tests, by database: SQLite with its list index and without it
/// (the SQL every list falls back to) over one file, and PostgreSQL. The first of each
/// database writes.
struct CatalogBackends {
    databases: Vec<Vec<(&'static str, Arc<dyn Store>)>>,
    _dir: tempfile::TempDir,
    _schema: PgSchema,
}

async fn catalog_backends() -> CatalogBackends {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cat.db").display());
    let schema = PgSchema::create().await;
    let plain = PoolSettings {
        list_index_max_models: 0,
        ..PoolSettings::default()
    };
    let open = |url: String, settings: PoolSettings| async move {
        modelreg_store::open(&url, &settings).await.unwrap()
    };
    CatalogBackends {
        databases: vec![
            vec![
                ("sqlite", open(url.clone(), PoolSettings::default()).await),
                ("sqlite without the list index", open(url, plain).await),
            ],
            vec![(
                "postgres",
                open(schema.url.clone(), PoolSettings::default()).await,
            )],
        ],
        _dir: dir,
        _schema: schema,
    }
}

const CAPABILITY_SETS: [&[&str]; 5] = [
    &[],
    &["vision"],
    &["vision", "function_calling"],
    &["function_calling", "reasoning"],
    &["vision", "function_calling", "reasoning", "prompt_caching"],
];
/// Prices with ties, a zero, and none.
const COSTS: [Option<f64>; 6] = [
    None,
    Some(0.0),
    Some(0.000001),
    Some(0.0000025),
    Some(0.00003),
    Some(1.0),
];
const CONTEXTS: [Option<i64>; 5] = [
    None,
    Some(4096),
    Some(128_000),
    Some(200_000),
    Some(1_000_000),
];

/// The catalog's fields of model `i` of the catalog tests: every combination comes up.
fn catalog_fields(i: usize) -> ModelFields {
    ModelFields {
        capabilities: CAPABILITY_SETS[i % 5]
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        input_cost_per_token: COSTS[i % 6],
        max_input_tokens: CONTEXTS[(i / 2) % 5],
        status: [Status::Active, Status::Error, Status::Pending][i % 3],
        provider: Some(["openai", "anthropic"][(i / 3) % 2].into()),
        tags: if i.is_multiple_of(4) {
            vec!["a".into()]
        } else {
            vec![]
        },
        ..plain_fields(&format!("cat {i}"))
    }
}

fn has_all(m: &Model, wanted: &[&str]) -> bool {
    wanted
        .iter()
        .all(|c| m.fields.capabilities.iter().any(|x| x == c))
}

/// The order a list of `sort` (field, descending) must have, computed here: numbers as
/// numbers with a missing one first in ascending order, then `id` in the direction of the
/// last key.
fn in_catalog_order(mut models: Vec<Model>, sort: &[(&str, bool)]) -> Vec<Uuid> {
    use std::cmp::Ordering;
    let key = |m: &Model, field: &str| -> (Option<f64>, String) {
        match field {
            "input_cost_per_token" => (m.fields.input_cost_per_token, String::new()),
            "max_input_tokens" => (m.fields.max_input_tokens.map(|n| n as f64), String::new()),
            "status" => (None, m.fields.status.as_str().to_owned()),
            other => panic!("no key for {other}"),
        }
    };
    let id_desc = sort.last().is_none_or(|s| s.1);
    models.sort_by(|a, b| {
        for (field, desc) in sort {
            let (x, y) = (key(a, field), key(b, field));
            // Option's order: None first.
            let o =
                x.0.partial_cmp(&y.0)
                    .unwrap_or(Ordering::Equal)
                    .then(x.1.cmp(&y.1));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        let o = a.id.cmp(&b.id);
        if id_desc { o.reverse() } else { o }
    });
    models.into_iter().map(|m| m.id).collect()
}

/// Every model of a list, cursor after cursor, two at a time.
async fn all_by_cursor(s: &Arc<dyn Store>, t: &TenantScope, mut q: ListQuery) -> Vec<Uuid> {
    q.limit = 2;
    let mut out = Vec::new();
    loop {
        let page = s.list_models(t, &q).await.unwrap();
        out.extend(page.items.iter().map(|m| m.id));
        match page.items.last() {
            Some(last) if page.has_more => q.paging = Paging::After(q.after(last)),
            _ => return out,
        }
    }
}

type Pred = fn(&Model) -> bool;

/// The catalog tests' filters, and what each must match.
fn catalog_filters() -> Vec<(Vec<(&'static str, &'static str)>, Pred)> {
    vec![
        (vec![("capability", "vision")], |m| has_all(m, &["vision"])),
        (vec![("capability", "reasoning,function_calling")], |m| {
            has_all(m, &["reasoning", "function_calling"])
        }),
        (vec![("capability", "computer_use")], |_| false),
        (vec![("min_input_tokens", "128000")], |m| {
            m.fields.max_input_tokens.is_some_and(|n| n >= 128_000)
        }),
        (vec![("min_input_tokens", "1")], |m| {
            m.fields.max_input_tokens.is_some()
        }),
        (vec![("max_input_cost", "0.0000025")], |m| {
            m.fields
                .input_cost_per_token
                .is_some_and(|c| c <= 0.0000025)
        }),
        (vec![("max_input_cost", "0")], |m| {
            m.fields.input_cost_per_token == Some(0.0)
        }),
        (
            vec![
                ("capability", "vision"),
                ("min_input_tokens", "100000"),
                ("max_input_cost", "0.00003"),
            ],
            |m| {
                has_all(m, &["vision"])
                    && m.fields.max_input_tokens.is_some_and(|n| n >= 100_000)
                    && m.fields.input_cost_per_token.is_some_and(|c| c <= 0.00003)
            },
        ),
        (
            vec![
                ("capability", "function_calling"),
                ("max_input_cost", "0.5"),
                ("status", "ACTIVE"),
                ("provider", "openai"),
            ],
            |m| {
                has_all(m, &["function_calling"])
                    && m.fields.input_cost_per_token.is_some_and(|c| c <= 0.5)
                    && m.fields.status == Status::Active
                    && m.fields.provider.as_deref() == Some("openai")
            },
        ),
        (
            vec![
                ("min_input_tokens", "4096"),
                ("tags", "a"),
                ("search", "cat 1"),
            ],
            |m| {
                m.fields.max_input_tokens.is_some_and(|n| n >= 4096)
                    && m.fields.tags.iter().any(|t| t == "a")
                    && m.fields.name.contains("cat 1")
            },
        ),
    ]
}

/// `capability`, `min_input_tokens` and `max_input_cost`, alone and together and with the
/// other filters, and the sorts by price and by context in both directions with models that
/// have none, through pages and cursors, on both backends and on SQLite with and without its
/// list index; then again after writes move models in and out of them. The expected lists are
/// computed here from the models themselves.
#[tokio::test]
async fn catalog_filters_and_sorts_on_every_backend() {
    let backends = catalog_backends().await;
    let t = scope("catalog", "p");
    let sorts: [&[(&str, bool)]; 6] = [
        &[("input_cost_per_token", false)],
        &[("input_cost_per_token", true)],
        &[("max_input_tokens", false)],
        &[("max_input_tokens", true)],
        &[("max_input_tokens", true), ("input_cost_per_token", false)],
        &[("status", false), ("input_cost_per_token", true)],
    ];
    for stores in &backends.databases {
        let (_, writer) = &stores[0];
        let mut models = Vec::new();
        for i in 0..36 {
            let mut m = new_model(&format!("c{i}"), false);
            m.fields = catalog_fields(i);
            models.push(writer.insert_model(&t, m, &audit()).await.unwrap());
        }
        // Another project's models never show.
        let mut stranger = new_model("c0", false);
        stranger.fields = catalog_fields(4);
        writer
            .insert_model(&scope("catalog", "other"), stranger, &audit())
            .await
            .unwrap();
        for (name, s) in stores {
            let mut non_empty = 0;
            for (params, pred) in catalog_filters() {
                let matching: Vec<Model> = models.iter().filter(|m| pred(m)).cloned().collect();
                non_empty += usize::from(!matching.is_empty());
                let q = query(&params);
                let page = s.list_models(&t, &q).await.unwrap();
                assert_eq!(
                    (page.total_items, page.total_is_estimate),
                    (matching.len() as u64, false),
                    "{name}: {params:?}"
                );
                // The default order, newest first.
                let mut expected: Vec<Uuid> = matching.iter().map(|m| m.id).collect();
                expected.reverse();
                let got: Vec<Uuid> = all_of(s, &t, q).await.iter().map(|m| m.id).collect();
                assert_eq!(got, expected, "{name}: {params:?}");
                for sort in sorts {
                    let text: Vec<String> = sort
                        .iter()
                        .map(|(f, d)| format!("{f}:{}", if *d { "desc" } else { "asc" }))
                        .collect();
                    let text = text.join(",");
                    let mut params = params.clone();
                    params.push(("sort", text.as_str()));
                    let q = query(&params);
                    let expected = in_catalog_order(matching.clone(), sort);
                    let paged: Vec<Uuid> = all_of(s, &t, q.clone())
                        .await
                        .iter()
                        .map(|m| m.id)
                        .collect();
                    assert_eq!(paged, expected, "{name}: {params:?} by page");
                    assert_eq!(
                        all_by_cursor(s, &t, q).await,
                        expected,
                        "{name}: {params:?} by cursor"
                    );
                }
            }
            assert!(non_empty >= 8, "{name}: the filters should match something");
        }

        // Writes move models in and out of the filters and the orders: a price set, a context
        // removed, capabilities changed, a model deleted.
        let (_, last) = &stores[stores.len() - 1];
        let mut f = models[0].fields.clone();
        f.input_cost_per_token = Some(0.0000005);
        f.capabilities = vec!["vision".into(), "reasoning".into()];
        models[0] = last
            .update_model(&t, field_change(&models[0], f), &audit())
            .await
            .unwrap()
            .unwrap();
        let mut f = models[7].fields.clone();
        f.max_input_tokens = None;
        f.capabilities = vec![];
        models[7] = writer
            .update_model(&t, field_change(&models[7], f), &audit())
            .await
            .unwrap()
            .unwrap();
        let gone = models.remove(10);
        assert!(
            writer
                .delete_model(&t, gone.id, None, &audit())
                .await
                .unwrap()
        );
        for (name, s) in stores {
            let q = query(&[
                ("capability", "vision,reasoning"),
                ("max_input_cost", "0.000001"),
                ("sort", "input_cost_per_token:desc"),
            ]);
            let matching: Vec<Model> = models
                .iter()
                .filter(|m| {
                    has_all(m, &["vision", "reasoning"])
                        && m.fields.input_cost_per_token.is_some_and(|c| c <= 0.000001)
                })
                .cloned()
                .collect();
            assert!(matching.iter().any(|m| m.id == models[0].id));
            let expected = in_catalog_order(matching, &[("input_cost_per_token", true)]);
            assert_eq!(all_by_cursor(s, &t, q).await, expected, "{name}");
            let q = query(&[("sort", "max_input_tokens:asc"), ("min_input_tokens", "1")]);
            let expected = in_catalog_order(
                models
                    .iter()
                    .filter(|m| m.fields.max_input_tokens.is_some())
                    .cloned()
                    .collect(),
                &[("max_input_tokens", false)],
            );
            assert!(!expected.contains(&models[7].id));
            assert_eq!(all_by_cursor(s, &t, q).await, expected, "{name}");
        }
    }
}

/// A list filtered by a catalog field and a facet is kept under its slices' generation (the
/// catalog's filters only narrow the slices, so every model they match is in them): a change
/// of a model's capabilities, price or context in those slices moves it, and one outside
/// them does not. One filtered by the catalog's fields alone is kept under the project's.
#[tokio::test]
async fn catalog_filters_are_kept_under_generations_that_cover_them() {
    let backends = catalog_backends().await;
    for (k, (name, s)) in backends.databases.iter().flatten().enumerate() {
        let t = scope("catalog-gen", &format!("p{k}"));
        let model = |uri: &str, status: Status| {
            let mut m = new_model(uri, false);
            m.fields = ModelFields {
                status,
                ..catalog_fields(1)
            };
            m
        };
        let active = s
            .insert_model(&t, model("active", Status::Active), &audit())
            .await
            .unwrap();
        let error = s
            .insert_model(&t, model("error", Status::Error), &audit())
            .await
            .unwrap();
        let sliced = query(&[("status", "ACTIVE"), ("capability", "vision")]);
        let alone = query(&[("capability", "vision")]);
        let first = s.list_models(&t, &sliced).await.unwrap();
        assert_eq!(first.total_items, 1, "{name}");
        let slices = first.slices.expect("a status filter selects slices");
        let by_project = s.list_models(&t, &alone).await.unwrap();
        assert_eq!(
            (by_project.total_items, by_project.slices),
            (2, None),
            "{name}: no facet, no slices: the project's generation"
        );
        // A change outside the slices leaves them.
        let mut f = error.fields.clone();
        f.capabilities = vec![];
        f.input_cost_per_token = Some(0.5);
        f.max_input_tokens = Some(10);
        s.update_model(&t, field_change(&error, f), &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.list_models(&t, &sliced).await.unwrap().slices,
            Some(slices),
            "{name}"
        );
        assert_eq!(
            s.list_models(&t, &alone).await.unwrap().total_items,
            1,
            "{name}"
        );
        // One inside moves them.
        let mut f = active.fields.clone();
        f.capabilities = vec!["reasoning".into()];
        s.update_model(&t, field_change(&active, f), &audit())
            .await
            .unwrap()
            .unwrap();
        let after = s.list_models(&t, &sliced).await.unwrap();
        assert!(after.slices.unwrap() > slices, "{name}");
        assert_eq!(after.total_items, 0, "{name}");
    }
}
