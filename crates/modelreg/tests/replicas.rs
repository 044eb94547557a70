//! Several stateless replicas on one PostgreSQL database agree at once: two real
//! `modelreg serve` processes, each request sent to one or the other.

mod common;

use common::*;
use futures::future::join_all;
use modelreg_store::testing::PgSchema;
use reqwest::Method;
use serde_json::json;

struct Cluster {
    a: Server,
    b: Server,
    token: String,
    schema: PgSchema,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Two replicas on a fresh schema, and an owner token made with the CLI.
    async fn start() -> Cluster {
        let schema = PgSchema::create().await;
        let dir = tempfile::tempdir().unwrap();
        let (ok, stdout, stderr) = output(
            &[
                "token",
                "create",
                "--org",
                "acme",
                "--project",
                "*",
                "--role",
                "owner",
                "--name",
                "ops",
                "--database-url",
                &schema.url,
            ],
            &[],
        )
        .await;
        assert!(ok, "{stderr}");
        let token = stdout.trim().to_owned();
        let envs = [
            ("MODELREG_DATABASE_URL", schema.url.as_str()),
            ("MODELREG_MASTER_KEY", MASTER_KEY),
        ];
        let a = Server::start(&dir.path().join("a"), &envs).await;
        let b = Server::start(&dir.path().join("b"), &envs).await;
        assert!(
            a.token.is_none() && b.token.is_none(),
            "a token exists: none is minted"
        );
        Cluster {
            a,
            b,
            token,
            schema,
            _dir: dir,
        }
    }

    fn client(&self, which: usize) -> Client {
        let server = if which.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        };
        Client::new(&server.base, &self.token)
    }
}

fn model(uri: Option<&str>, name: &str) -> serde_json::Value {
    let mut m =
        json!({"name": name, "litellm_model": "openai/gpt-4o", "credentials": {"api_key": "k"}});
    if let Some(u) = uri {
        m["resource_uri"] = json!(u);
    }
    m
}

#[tokio::test]
async fn a_write_on_one_replica_is_read_on_the_other_at_once() {
    let c = Cluster::start().await;
    let (a, b) = (c.client(0), c.client(1));
    for i in 0..20 {
        let uri = format!("m{i}");
        let (s, created) = a
            .send(
                Method::POST,
                "/assets/models",
                Some(model(Some(&uri), &uri)),
            )
            .await;
        assert_eq!(s, 201);
        // The very next request, on the other replica.
        let (s, got) = b
            .send(Method::GET, &format!("/assets/models/{uri}"), None)
            .await;
        assert_eq!(s, 200, "create on A not visible on B");
        assert_eq!(got, created);
        let (s, updated) = b
            .send(
                Method::PATCH,
                &format!("/assets/models/{uri}"),
                Some(json!({"rpm": i + 1})),
            )
            .await;
        assert_eq!(s, 200);
        let (_, got) = a
            .send(Method::GET, &format!("/assets/models/{uri}"), None)
            .await;
        assert_eq!(got, updated, "update on B not visible on A");
        let (_, list) = b.send(Method::GET, "/assets/models?limit=1", None).await;
        assert_eq!(list["pagination"]["total_items"], i + 1);
    }
    for i in 0..20 {
        let uri = format!("m{i}");
        assert_eq!(
            a.send(Method::DELETE, &format!("/assets/models/{uri}"), None)
                .await
                .0,
            204
        );
        let (s, e) = b
            .send(Method::GET, &format!("/assets/models/{uri}"), None)
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (404, Some("RESOURCE_NOT_FOUND"))
        );
    }
}

/// Each replica keeps the pages it rendered while the project's generation stands: a page
/// repeated on A, then a write on B, and A's very next identical list shows the write.
#[tokio::test]
async fn a_repeated_list_shows_another_replicas_write_at_once() {
    let c = Cluster::start().await;
    let (a, b) = (c.client(0), c.client(1));
    let newest = "/assets/models?limit=5";
    let search = "/assets/models?limit=5&search=stable";
    let pending = "/assets/models?limit=5&sort=name:asc&status=PENDING";
    let list = |path: &'static str| {
        let a = &a;
        async move {
            let (s, first) = a.send(Method::GET, path, None).await;
            assert_eq!(s, 200);
            // The same page again: this one can come from A's rendered pages.
            let (_, again) = a.send(Method::GET, path, None).await;
            assert_eq!(first, again);
            again
        }
    };
    for i in 0..6u64 {
        let uri = format!("stable-{i}");
        for path in [newest, search, pending] {
            list(path).await;
        }
        let (s, _) = b
            .send(
                Method::POST,
                "/assets/models",
                Some(model(Some(&uri), &uri)),
            )
            .await;
        assert_eq!(s, 201);
        for path in [newest, search] {
            let page = list(path).await;
            assert_eq!(
                page["pagination"]["total_items"],
                i + 1,
                "{path}: create on B"
            );
            assert_eq!(page["data"][0]["resource_uri"], uri.as_str(), "{path}");
        }
        // The earlier ones were disabled below: only the new model is PENDING.
        let page = list(pending).await;
        assert_eq!(page["pagination"]["total_items"], 1, "create on B");
        assert_eq!(page["data"][0]["resource_uri"], uri.as_str());

        let (s, _) = b
            .send(
                Method::PATCH,
                &format!("/assets/models/{uri}"),
                Some(json!({"description": format!("changed {i}")})),
            )
            .await;
        assert_eq!(s, 200);
        let page = list(newest).await;
        assert_eq!(
            page["data"][0]["description"],
            format!("changed {i}"),
            "update on B"
        );
        let (s, _) = b
            .send(
                Method::PATCH,
                &format!("/assets/models/{uri}"),
                Some(json!({"status": "DISABLED"})),
            )
            .await;
        assert_eq!(s, 200);
        let page = list(pending).await;
        assert_eq!(page["pagination"]["total_items"], 0, "status change on B");

        // Another model, then deleted on B: gone from A's next list.
        let gone = format!("gone-{i}");
        let (s, _) = b
            .send(
                Method::POST,
                "/assets/models",
                Some(model(Some(&gone), &gone)),
            )
            .await;
        assert_eq!(s, 201);
        assert_eq!(list(newest).await["data"][0]["resource_uri"], gone.as_str());
        let (s, _) = b
            .send(Method::DELETE, &format!("/assets/models/{gone}"), None)
            .await;
        assert_eq!(s, 204);
        let page = list(newest).await;
        assert_eq!(page["data"][0]["resource_uri"], uri.as_str(), "delete on B");
        assert_eq!(page["pagination"]["total_items"], i + 1);
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_replica_at_once() {
    let c = Cluster::start().await;
    let (ok, stdout, _) = output(
        &[
            "token",
            "create",
            "--org",
            "acme",
            "--project",
            "*",
            "--role",
            "viewer",
            "--name",
            "reader",
            "--database-url",
            &c.schema.url,
        ],
        &[],
    )
    .await;
    assert!(ok);
    let reader = stdout.trim().to_owned();
    let on = |s: &Server| Client::new(&s.base, &reader);
    assert_eq!(
        on(&c.a).send(Method::GET, "/assets/models", None).await.0,
        200
    );
    assert_eq!(
        on(&c.b).send(Method::GET, "/assets/models", None).await.0,
        200
    );
    let (ok, _, stderr) = output(
        &["token", "revoke", "reader", "--database-url", &c.schema.url],
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    for s in [&c.a, &c.b] {
        let (status, e) = on(s).send(Method::GET, "/assets/models", None).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (401, Some("INVALID_TOKEN"))
        );
    }
}

#[tokio::test]
async fn concurrent_puts_with_one_etag_across_replicas_let_exactly_one_win() {
    let c = Cluster::start().await;
    let a = c.client(0);
    let (s, _) = a
        .send(
            Method::POST,
            "/assets/models",
            Some(model(Some("race"), "race")),
        )
        .await;
    assert_eq!(s, 201);
    let res = a
        .http
        .get(format!("{}/assets/models/race", a.base))
        .bearer_auth(&c.token)
        .header("x-project-id", "demo")
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let puts = (0..20).map(|i| {
        let client = c.client(i);
        let etag = etag.clone();
        async move {
            client
                .http
                .put(format!("{}/assets/models/race", client.base))
                .bearer_auth(&client.token)
                .header("x-project-id", "demo")
                .header("if-match", etag)
                .json(&json!({"rpm": i + 1}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(puts).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let failed = statuses.iter().filter(|s| **s == 412).count();
    assert_eq!((ok, failed), (1, 19), "{statuses:?}");
}

#[tokio::test]
async fn fifty_concurrent_creates_of_one_resource_uri_across_replicas() {
    let c = Cluster::start().await;
    let creates = (0..50).map(|i| {
        let client = c.client(i);
        async move {
            client
                .send(
                    Method::POST,
                    "/assets/models",
                    Some(model(Some("only-one"), "x")),
                )
                .await
        }
    });
    let results = join_all(creates).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let conflicts = results
        .iter()
        .filter(|(s, e)| *s == 409 && e["error"]["code"] == "RESOURCE_ALREADY_EXISTS")
        .count();
    assert_eq!((created, conflicts), (1, 49));
}

#[tokio::test]
async fn concurrent_creates_of_one_name_across_replicas_get_distinct_uris() {
    let c = Cluster::start().await;
    let creates = (0..40).map(|i| {
        let client = c.client(i);
        async move {
            client
                .send(
                    Method::POST,
                    "/assets/models",
                    Some(model(None, "Same Name")),
                )
                .await
        }
    });
    let results = join_all(creates).await;
    let mut uris: Vec<String> = results
        .iter()
        .map(|(s, m)| {
            assert_eq!(*s, 201, "{m}");
            m["resource_uri"].as_str().unwrap().to_owned()
        })
        .collect();
    uris.sort();
    uris.dedup();
    assert_eq!(uris.len(), 40);
    assert!(uris.contains(&"same-name".to_owned()) && uris.contains(&"same-name-40".to_owned()));
}

#[tokio::test]
async fn replicas_starting_together_migrate_an_empty_database_once() {
    let schema = PgSchema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("MODELREG_DATABASE_URL", schema.url.as_str()),
        ("MODELREG_MASTER_KEY", MASTER_KEY),
    ];
    let starts = (0..3).map(|i| {
        let path = dir.path().join(i.to_string());
        async move { Server::start(&path, &envs).await }
    });
    let servers = join_all(starts).await;
    // Exactly one of them minted and printed the bootstrap token; it works on all.
    let tokens: Vec<&String> = servers.iter().filter_map(|s| s.token.as_ref()).collect();
    assert_eq!(tokens.len(), 1);
    for s in &servers {
        let (status, _) = Client::new(&s.base, tokens[0])
            .send(Method::GET, "/readyz", None)
            .await;
        assert_eq!(status, 200);
        let (status, _) = Client::new(&s.base, tokens[0])
            .send(Method::GET, "/assets/models", None)
            .await;
        assert_eq!(status, 200);
    }
}
