//! Test harness: the real router over a real SQLite file in a fresh directory, driven with
//! `oneshot`. Each test makes its own organizations and projects.
#![allow(dead_code)]

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use modelreg_api::{Authenticator, JwtConfig, Limits};
use modelreg_core::{
    audit::{AuditAction, AuditEntry},
    auth::{ProjectGrant, Role, generate_token, hash_token},
    model::ModelFields,
    resource_uri::ResourceUri,
    secrets::{Binding, Credentials, Kek, Keyring},
    service::ModelService,
    store::{NewModel, NewToken, Store},
    tenant::{OrgId, ProjectId, TenantScope},
    timestamp::Timestamp,
    tokens::TokenService,
};
use modelreg_store::{PoolSettings, testing::PgSchema};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const JWT_SECRET: &str = "test-hs256-secret-that-is-long-enough";

pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    /// The router's batched record of API token use.
    pub last_used: modelreg_api::LastUsed,
    /// The master keys the router seals credentials with.
    pub keyring: Arc<Keyring>,
}

/// Where a test's data lives: a fresh SQLite file, or a fresh PostgreSQL schema.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
    /// Storage owned by another TestApp.
    Shared,
}

/// Runs each listed `async fn name(app: TestApp)` twice, as `name::sqlite` and
/// `name::postgres`, so every API test covers both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(super::common::TestApp::sqlite().await).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(super::common::TestApp::postgres().await).await
                }
            }
        )*
    };
}

/// The router's services over `store`, as the server hands them out.
pub fn services(store: &Arc<dyn Store>, models: ModelService) -> modelreg_api::Services {
    modelreg_api::Services {
        models,
        tokens: TokenService::new(store.clone()),
        server: store.clone(),
        console: modelreg_api::ConsoleConfig::default(),
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique within the test process, for tokens and tenants.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("modelreg.db").display());
        TestApp::with(&url, Backend::Sqlite(dir)).await
    }

    pub async fn postgres() -> TestApp {
        let schema = PgSchema::create().await;
        let url = schema.url.clone();
        TestApp::with(&url, Backend::Postgres(schema)).await
    }

    async fn with(url: &str, backend: Backend) -> TestApp {
        let store = modelreg_store::open(url, &PoolSettings::default())
            .await
            .expect("open store");
        let keyring = Arc::new(Keyring::new(vec![Kek::generate()]).unwrap());
        let (router, last_used) =
            TestApp::router_for(store.clone(), keyring.clone(), Limits::default());
        TestApp {
            router,
            store,
            backend,
            last_used,
            keyring,
        }
    }

    /// Another router over the same storage, accepting JWTs as `jwt` says.
    pub fn with_jwt(&self, jwt: JwtConfig) -> TestApp {
        let keyring = Arc::new(Keyring::new(vec![Kek::generate()]).unwrap());
        let models = ModelService::new(self.store.clone(), keyring.clone());
        let auth = Authenticator::new(self.store.clone(), &jwt);
        let last_used = auth.last_used();
        TestApp {
            router: modelreg_api::router(services(&self.store, models), auth, Limits::default()),
            store: self.store.clone(),
            backend: Backend::Shared,
            last_used,
            keyring,
        }
    }

    /// Another router over the same storage, with other master keys.
    pub fn with_keyring(&self, keyring: Keyring) -> TestApp {
        let keyring = Arc::new(keyring);
        let (router, last_used) =
            TestApp::router_for(self.store.clone(), keyring.clone(), Limits::default());
        TestApp {
            router,
            store: self.store.clone(),
            backend: Backend::Shared,
            last_used,
            keyring,
        }
    }

    /// Another router over the same storage and master keys, with these limits.
    pub fn with_limits(&self, limits: Limits) -> TestApp {
        let (router, last_used) =
            TestApp::router_for(self.store.clone(), self.keyring.clone(), limits);
        TestApp {
            router,
            store: self.store.clone(),
            backend: Backend::Shared,
            last_used,
            keyring: self.keyring.clone(),
        }
    }

    fn router_for(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        limits: Limits,
    ) -> (Router, modelreg_api::LastUsed) {
        let auth = Authenticator::new(
            store.clone(),
            &JwtConfig {
                hs256_secret: Some(JWT_SECRET.as_bytes().to_vec()),
                leeway_secs: 0,
                ..JwtConfig::default()
            },
        );
        let prober = modelreg_probe::HttpProber::new(modelreg_probe::ProbeConfig::default())
            .expect("prober");
        let last_used = auth.last_used();
        // The operator's grant for the tests that resolve references (verify.rs); nothing
        // else is granted, as in a default deployment. The environment they see is a table,
        // so that no test changes this process's environment while other threads read it:
        // `MR_VERIFY_KEY_*` and `MR_NOT_GRANTED_*` are set, `MR_UNSET_*` are not.
        let references = modelreg_core::references::ReferencePolicy::new(
            &[modelreg_core::references::Grant {
                env: vec!["MR_VERIFY_KEY_*".into(), "MR_UNSET_*".into()],
                ..Default::default()
            }],
            Default::default(),
        )
        .expect("grants")
        .with_env(Arc::new(|name: &str| {
            (name.starts_with("MR_VERIFY_KEY_") || name.starts_with("MR_NOT_GRANTED_"))
                .then(|| modelreg_probe::testing::GOOD_KEY.to_owned())
        }));
        let models = ModelService::new(store.clone(), keyring)
            .with_prober(Arc::new(prober))
            .with_references(references);
        let router = modelreg_api::router(services(&store, models), auth, limits);
        (router, last_used)
    }

    /// Whether storage holds these exact bytes anywhere: in the SQLite files, or (as hex) in
    /// any PostgreSQL row.
    pub async fn stores_bytes(&self, needle: &[u8]) -> bool {
        match &self.backend {
            Backend::Sqlite(dir) => ["modelreg.db", "modelreg.db-wal"].iter().any(|f| {
                std::fs::read(dir.path().join(f))
                    .unwrap_or_default()
                    .windows(needle.len())
                    .any(|w| w == needle)
            }),
            Backend::Postgres(_) => {
                let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
                self.stored_text().await.contains(&hex)
            }
            Backend::Shared => panic!("stores_bytes on the TestApp that owns the storage"),
        }
    }

    /// Runs SQL straight on the storage, bypassing modelreg: `sqlite` or `postgres` by backend.
    pub async fn raw_sql(&self, sqlite: &str, postgres: &str) {
        use sqlx::Connection;
        match &self.backend {
            Backend::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("modelreg.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sqlite.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            Backend::Postgres(schema) => {
                let mut c = sqlx::PgConnection::connect(&schema.url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(postgres.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            Backend::Shared => panic!("raw SQL on the TestApp that owns the storage"),
        }
    }

    /// Everything the backend has written, as text: the SQLite files' bytes, or every row of
    /// every table of the PostgreSQL schema (bytea as hex). For checks that a value never
    /// reached storage in the clear.
    pub async fn stored_text(&self) -> String {
        match &self.backend {
            Backend::Sqlite(dir) => ["modelreg.db", "modelreg.db-wal"]
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(&std::fs::read(dir.path().join(f)).unwrap_or_default())
                        .into_owned()
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Backend::Postgres(schema) => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&schema.url).await.unwrap();
                let mut out = String::new();
                for table in ["models", "model_tags", "api_tokens"] {
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT t::text FROM {table} t"
                    )))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                    out.push_str(&rows.join("\n"));
                }
                out
            }
            Backend::Shared => panic!("stored_text on the TestApp that owns the storage"),
        }
    }

    /// A new API token for `org`, bound to `project` (`*` for all), with `role`.
    pub async fn token(&self, org: &str, project: &str, role: Role) -> String {
        self.named_token(org, &unique("t"), project, role).await
    }

    /// `token`, named `name`, so that its principal (`service:<name>`) is known.
    pub async fn named_token(&self, org: &str, name: &str, project: &str, role: Role) -> String {
        let token = generate_token();
        self.store
            .insert_token(NewToken {
                name: name.to_owned(),
                org: OrgId::parse(org).unwrap(),
                project: ProjectGrant::parse(project).unwrap(),
                role,
                hash: hash_token(&token),
                expires_at: None,
            })
            .await
            .expect("insert token");
        token
    }

    /// An owner token for a fresh organization, and a fresh project id.
    pub async fn tenant(&self) -> Tenant {
        let org = unique("org");
        let project = unique("proj");
        let token = self.token(&org, "*", Role::Owner).await;
        Tenant {
            org,
            project,
            token,
        }
    }

    /// Stores one model per uri in `t`'s project in one batch, straight through the store (as
    /// a bulk import does): thousands in well under a second, and no rate limit in the way.
    /// Each is `openai/gpt-4o` with `{"api_key": "sk-test"}` sealed under this app's keys.
    pub async fn seed_models(&self, t: &Tenant, uris: &[String]) {
        let scope = TenantScope::new(
            OrgId::parse(&t.org).unwrap(),
            ProjectId::parse(&t.project).unwrap(),
        );
        let credentials: Credentials =
            serde_json::from_value(json!({"api_key": "sk-test"})).unwrap();
        let now = Timestamp::now();
        let models: Vec<NewModel> = uris
            .iter()
            .map(|uri| {
                let id = uuid::Uuid::now_v7();
                NewModel {
                    id,
                    resource_uri: ResourceUri::parse(uri).unwrap(),
                    generated: false,
                    fields: ModelFields {
                        provider: Some("openai".into()),
                        ..modelreg_store::testing::plain_fields(uri)
                    },
                    catalog: Default::default(),
                    credentials: self.keyring.seal(
                        Binding {
                            scope: &scope,
                            record_id: id,
                        },
                        &credentials,
                    ),
                    actor: "user:seed".into(),
                    now,
                }
            })
            .collect();
        let audit = AuditEntry {
            action: AuditAction::Create,
            principal: "user:seed".into(),
            on_behalf_of: None,
            request_id: None,
            changes: json!({}),
        };
        let n = self
            .store
            .insert_models(&scope, &models, &audit)
            .await
            .expect("seed models");
        assert_eq!(n, uris.len() as u64);
    }

    pub async fn send(&self, req: Req) -> Resp {
        let mut builder = Request::builder().method(req.method).uri(&req.uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder.body(Body::from(req.body)).expect("request");
        let res = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }
}

#[derive(Clone)]
pub struct Tenant {
    pub org: String,
    pub project: String,
    pub token: String,
}

impl Tenant {
    pub fn get(&self, uri: &str) -> Req {
        Req::new(Method::GET, uri)
            .auth(&self.token)
            .project(&self.project)
    }
    pub fn post(&self, uri: &str, body: Value) -> Req {
        Req::new(Method::POST, uri)
            .auth(&self.token)
            .project(&self.project)
            .json(body)
    }
    pub fn put(&self, uri: &str, body: Value) -> Req {
        Req::new(Method::PUT, uri)
            .auth(&self.token)
            .project(&self.project)
            .json(body)
    }
    pub fn patch(&self, uri: &str, body: Value) -> Req {
        Req::new(Method::PATCH, uri)
            .auth(&self.token)
            .project(&self.project)
            .json(body)
    }
    pub fn delete(&self, uri: &str) -> Req {
        Req::new(Method::DELETE, uri)
            .auth(&self.token)
            .project(&self.project)
    }
}

pub struct Req {
    pub method: Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: Method, uri: &str) -> Req {
        Req {
            method,
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn without(mut self, k: &str) -> Req {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        self
    }
    pub fn auth(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }
    pub fn project(self, p: &str) -> Req {
        self.header("x-project-id", p)
    }
    pub fn json(mut self, body: Value) -> Req {
        self.body = serde_json::to_vec(&body).unwrap();
        self.header("content-type", "application/json")
    }
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self.header("content-type", content_type)
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns self, printing the body on failure.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    /// Asserts an error in the shape of SPEC §4 with this status and code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Resp {
        let s = self.expect(status);
        assert_eq!(
            s.header("content-type"),
            Some("application/json"),
            "{}",
            s.text
        );
        let e = &s.json["error"];
        assert_eq!(e["code"], code, "{}", s.text);
        assert_eq!(e["status"], status, "{}", s.text);
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            s.text
        );
        assert!(e["details"].is_object(), "{}", s.text);
        let rid = e["request_id"].as_str().expect("request_id");
        assert_eq!(Some(rid), s.header("x-request-id"));
        if status == 422 {
            let detail = s.json["detail"].as_array().expect("422 has detail");
            assert!(!detail.is_empty());
            for d in detail {
                assert!(d["loc"].is_array() && d["msg"].is_string() && d["type"].is_string());
            }
        }
        if status == 401 {
            assert!(
                s.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer"))
            );
        }
        s
    }

    /// The `loc` of each 422 detail, joined with dots.
    pub fn error_locs(&self) -> Vec<String> {
        self.json["detail"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|e| {
                        e["loc"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| p.as_str().unwrap_or_default().to_owned())
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A minimal valid create body.
pub fn model(name: &str) -> Value {
    json!({
        "name": name,
        "litellm_model": "openai/gpt-4o",
        "credentials": {"api_key": "sk-test"}
    })
}

pub fn content_type_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}
