//! Configuration: command-line flags, then `MODELREG_*` environment variables, then an optional
//! TOML file, then defaults.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Every setting. Keys are the TOML keys; the environment variable of each is `MODELREG_` and
/// the key in upper case. Secrets are `SecretString`s, so no `{:?}` of the configuration can
/// print them, and they are never serialized (their defaults are unset).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Directory of the embedded database and its key file.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…` (which may hold a password); defaults to
    /// `<data_dir>/modelreg.db`.
    #[serde(skip_serializing)]
    pub database_url: Option<SecretString>,
    /// Base64 of a 32-byte key-encryption key. Takes precedence over the key file.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// Key file; defaults to `master.key` beside the SQLite database, created with mode 0600.
    pub master_key_file: Option<PathBuf>,
    /// Accept HS256 JWTs signed with this secret.
    #[serde(skip_serializing)]
    pub jwt_hs256_secret: Option<SecretString>,
    /// Required `iss` of JWTs, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWTs, when set.
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`, in seconds.
    pub jwt_leeway_secs: u64,
    /// Accept RS256/ES256/EdDSA tokens verified against this JWKS URL.
    pub jwks_url: Option<String>,
    /// Accept asymmetric tokens from these issuers (comma-separated), each verified against
    /// the JWKS its OIDC discovery document names; e.g. one Keycloak realm per organization.
    pub oidc_issuers: Option<String>,
    /// The console's client id at the `oidc_issuers` (a public client, signing in with the
    /// authorization code and PKCE). When set with `oidc_issuers`, the console offers sign-in
    /// through each; it is public, and served unauthenticated at `/ui/config.json`.
    pub console_oidc_client_id: Option<String>,
    /// The JWT claim holding roles by project.
    pub jwt_roles_claim: String,
    /// The JWT claim naming the user (falls back to `sub`).
    pub jwt_username_claim: String,
    /// Service accounts that may act for other organizations with `X-Org-Id`, as JSON:
    /// `{"client-id": {"orgs": ["acme", "beta"], "role": "viewer"}}` (`"*"` for any org).
    pub service_accounts: Option<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `modelreg=debug` (`RUST_LOG` wins when set).
    pub log_level: String,
    /// Seconds to let requests in flight finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// PostgreSQL: connections per replica.
    pub db_pool_size: u32,
    /// PostgreSQL: seconds a request waits for a connection before it fails with 503.
    pub db_acquire_timeout_secs: u64,
    /// PostgreSQL: server-side limit on one statement, in seconds.
    pub db_statement_timeout_secs: u64,
    /// The most models kept in memory to answer lists, over every project, on either backend;
    /// 0 keeps none (docs/performance.md, "the list index").
    pub list_index_max_models: u64,
    /// Networks and addresses probes may never reach, comma-separated CIDRs; replaces the
    /// default (link-local and cloud metadata addresses).
    pub probe_deny: Option<String>,
    /// Background health checks: seconds between checks of a healthy model; 0 turns them off.
    pub check_interval_secs: u64,
    /// Background health checks in flight at once, per replica.
    pub check_concurrency: u32,
    /// Up to this many seconds are added at random to each next check.
    pub check_jitter_secs: u64,
    /// Seconds between a server's heartbeats, when it also reads its master keys again and
    /// reports which it holds (docs/secrets.md, rotation).
    pub replica_heartbeat_secs: u64,
    /// Requests per second each credential may make on average; 0 turns rate limiting off.
    pub rate_limit_per_sec: u32,
    /// Requests a credential may make at once after being idle.
    pub rate_limit_burst: u32,
    /// Longest a request may run before it is stopped with 503, in seconds.
    pub request_timeout_secs: u64,
    /// Longest a client may take to send a request body before 408, in seconds.
    pub body_timeout_secs: u64,
    /// Longest a client may take to send its headers, and longest an idle connection is kept,
    /// in seconds.
    pub header_timeout_secs: u64,
    /// Largest request head (URL and headers), in bytes.
    pub max_header_bytes: usize,
    /// Connections served at once; one more is answered 503.
    pub max_connections: usize,
    /// Environment variables that credential references (`os.environ/NAME`) of every
    /// organization may name: names or globs such as `OPENAI_*`, comma-separated. Nothing by
    /// default; the server's own settings never (docs/secrets.md).
    pub reference_env: Option<String>,
    /// Directories whose files credential references (`file:PATH`) of every organization may
    /// name, comma-separated. None by default.
    pub reference_dirs: Option<String>,
    /// Grants for some organizations, as JSON:
    /// `[{"orgs": ["acme"], "env": ["ACME_*"], "dirs": ["/run/secrets/acme"]}]`.
    pub reference_grants: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let limits = modelreg_api::Limits::default();
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./modelreg-data"),
            database_url: None,
            master_key: None,
            master_key_file: None,
            jwt_hs256_secret: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_secs: 30,
            jwks_url: None,
            oidc_issuers: None,
            console_oidc_client_id: None,
            jwt_roles_claim: "roles".into(),
            jwt_username_claim: "preferred_username".into(),
            service_accounts: None,
            log_format: "text".into(),
            log_level: "info".into(),
            shutdown_grace_secs: 30,
            db_pool_size: 10,
            db_acquire_timeout_secs: 3,
            db_statement_timeout_secs: 10,
            list_index_max_models: modelreg_store::list_index::MAX_MODELS,
            probe_deny: None,
            check_interval_secs: 0,
            check_concurrency: 4,
            check_jitter_secs: 30,
            replica_heartbeat_secs: 10,
            rate_limit_per_sec: limits.rate_per_sec,
            rate_limit_burst: limits.rate_burst,
            request_timeout_secs: limits.request_timeout.as_secs(),
            body_timeout_secs: limits.body_timeout.as_secs(),
            header_timeout_secs: limits.header_timeout.as_secs(),
            max_header_bytes: limits.max_header_bytes,
            max_connections: limits.max_connections,
            reference_env: None,
            reference_dirs: None,
            reference_grants: None,
        }
    }
}

/// Settings given as flags; only those set override the rest.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

const STRING_KEYS: [&str; 20] = [
    "listen",
    "data_dir",
    "database_url",
    "master_key",
    "master_key_file",
    "jwt_hs256_secret",
    "jwt_issuer",
    "jwt_audience",
    "log_level",
    "log_format",
    "probe_deny",
    "jwks_url",
    "oidc_issuers",
    "console_oidc_client_id",
    "jwt_roles_claim",
    "jwt_username_claim",
    "service_accounts",
    "reference_env",
    "reference_dirs",
    "reference_grants",
];

/// Every key of the configuration file: a key that is not one of these is a mistake (a typo
/// would otherwise leave the setting at its default without a word).
fn known_keys() -> Vec<String> {
    let mut keys: Vec<String> = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    // The secrets, which are never serialized.
    keys.extend(["database_url", "master_key", "jwt_hs256_secret"].map(str::to_owned));
    keys
}

/// Refuses a configuration file with a key that is not a setting, naming the nearest one.
fn check_keys(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", file.display()))?;
    let known = known_keys();
    for key in table.keys() {
        if known.contains(key) {
            continue;
        }
        let nearest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(key, k), k))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(score, _)| *score >= 0.8)
            .map(|(_, k)| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        anyhow::bail!(
            "config file {}: unknown key `{key}`{nearest} (the keys are the settings' names in \
             lower case without MODELREG_; see `modelreg --help` and the README)",
            file.display()
        );
    }
    Ok(())
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            check_keys(file)?;
            figment = figment.merge(Toml::file(file));
        }
        // String settings are read verbatim (figment's Env would turn a secret like "123" into
        // a number); the numeric ones are parsed by figment.
        let strings: BTreeMap<&str, String> = STRING_KEYS
            .iter()
            .filter_map(|k| {
                Some((
                    *k,
                    std::env::var(format!("MODELREG_{}", k.to_uppercase())).ok()?,
                ))
            })
            .collect();
        figment = figment
            .merge(Env::prefixed("MODELREG_").only(&[
                "jwt_leeway_secs",
                "shutdown_grace_secs",
                "db_pool_size",
                "db_acquire_timeout_secs",
                "db_statement_timeout_secs",
                "list_index_max_models",
                "check_interval_secs",
                "check_concurrency",
                "check_jitter_secs",
                "replica_heartbeat_secs",
                "rate_limit_per_sec",
                "rate_limit_burst",
                "request_timeout_secs",
                "body_timeout_secs",
                "header_timeout_secs",
                "max_header_bytes",
                "max_connections",
            ]))
            .merge(Serialized::defaults(strings))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        anyhow::ensure!(
            matches!(config.log_format.as_str(), "text" | "json"),
            "configuration: log_format must be text or json"
        );
        Ok(config)
    }

    /// The limits of the HTTP server. Timeouts of 0 are taken as 1 s, and a head limit under
    /// 8 KiB as 8 KiB, so that no setting turns a protection off by accident.
    pub fn limits(&self) -> modelreg_api::Limits {
        let secs = |s: u64| std::time::Duration::from_secs(s.max(1));
        modelreg_api::Limits {
            rate_per_sec: self.rate_limit_per_sec,
            rate_burst: self.rate_limit_burst.max(1),
            request_timeout: secs(self.request_timeout_secs),
            body_timeout: secs(self.body_timeout_secs),
            header_timeout: secs(self.header_timeout_secs),
            max_header_bytes: self.max_header_bytes.max(8 * 1024),
            max_connections: self.max_connections.max(1),
        }
    }

    /// The database URL in use.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("modelreg.db").display()),
        }
    }

    /// Pool settings of the PostgreSQL backend.
    pub fn pool(&self) -> modelreg_store::PoolSettings {
        modelreg_store::PoolSettings {
            max_connections: self.db_pool_size.max(1),
            acquire_timeout: std::time::Duration::from_secs(self.db_acquire_timeout_secs.max(1)),
            statement_timeout: std::time::Duration::from_secs(
                self.db_statement_timeout_secs.max(1),
            ),
            list_index_max_models: self.list_index_max_models,
        }
    }

    /// Opens the configured store, migrating it.
    pub async fn open_store(
        &self,
    ) -> anyhow::Result<std::sync::Arc<dyn modelreg_core::store::Store>> {
        Ok(modelreg_store::open(&self.database_url(), &self.pool()).await?)
    }

    /// How JWTs are accepted.
    pub fn jwt(&self) -> anyhow::Result<modelreg_api::JwtConfig> {
        let service_accounts = match &self.service_accounts {
            None => Default::default(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| anyhow::anyhow!("MODELREG_SERVICE_ACCOUNTS is not valid: {e}"))?,
        };
        Ok(modelreg_api::JwtConfig {
            hs256_secret: self
                .jwt_hs256_secret
                .as_ref()
                .map(|s| s.expose_secret().as_bytes().to_vec()),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_secs: self.jwt_leeway_secs,
            jwks_url: self.jwks_url.clone(),
            oidc_issuers: self.oidc_issuers(),
            roles_claim: self.jwt_roles_claim.clone(),
            username_claim: self.jwt_username_claim.clone(),
            service_accounts,
            // The JWKS cache bounds are not an operator's setting: their defaults hold.
            ..modelreg_api::JwtConfig::default()
        })
    }

    /// The OIDC issuers whose tokens are accepted, and which the console may sign in with.
    fn oidc_issuers(&self) -> Vec<String> {
        comma_list(&self.oidc_issuers)
    }

    /// What the console is told before sign-in: the issuers with the console's client id, when
    /// both are set.
    pub fn console(&self) -> modelreg_api::ConsoleConfig {
        modelreg_api::ConsoleConfig::new(
            &self.oidc_issuers(),
            self.console_oidc_client_id.as_deref(),
        )
    }

    /// The prober, with the configured deny list.
    pub fn prober(&self) -> anyhow::Result<modelreg_probe::HttpProber> {
        let deny = match &self.probe_deny {
            Some(list) => {
                let cidrs: Vec<&str> = list.split(',').filter(|c| !c.trim().is_empty()).collect();
                modelreg_probe::DenyList::parse(&cidrs)
                    .map_err(|e| anyhow::anyhow!("MODELREG_PROBE_DENY: {e}"))?
            }
            None => modelreg_probe::DenyList::default(),
        };
        modelreg_probe::HttpProber::new(modelreg_probe::ProbeConfig {
            deny,
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for probes: {e}"))
    }

    /// What credential references may resolve to (docs/secrets.md): the configured grants,
    /// with the server's own files (data directory, key file, database, `config_file`) and
    /// secrets (master keys, JWT secret, database URL) kept out of every grant.
    pub fn references(
        &self,
        keyring: &modelreg_core::secrets::Keyring,
        config_file: Option<&Path>,
    ) -> anyhow::Result<modelreg_core::references::ReferencePolicy> {
        use modelreg_core::references::{Grant, Protected, ReferencePolicy};
        let mut grants = vec![Grant {
            orgs: Vec::new(),
            env: comma_list(&self.reference_env),
            dirs: comma_list(&self.reference_dirs)
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        }];
        if let Some(json) = &self.reference_grants {
            let more: Vec<Grant> = serde_json::from_str(json)
                .map_err(|e| anyhow::anyhow!("MODELREG_REFERENCE_GRANTS is not valid: {e}"))?;
            grants.extend(more);
        }
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        // Files are compared by name and, at each resolution, by identity, so the bootstrap
        // token and a database made after start-up count.
        let mut paths = vec![
            absolute(&self.data_dir),
            absolute(&self.data_dir.join(crate::serve::BOOTSTRAP_TOKEN_FILE)),
            absolute(&self.key_file()),
        ];
        let url = self.database_url();
        if let Some(db) = modelreg_store::sqlite_path(&url) {
            let db = absolute(Path::new(db));
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = db.clone().into_os_string();
                p.push(suffix);
                paths.push(PathBuf::from(p));
            }
        }
        paths.extend(config_file.map(absolute));
        let mut secrets: Vec<zeroize::Zeroizing<String>> =
            keyring.keks().iter().map(|k| k.to_base64()).collect();
        secrets.extend(
            [&self.master_key, &self.jwt_hs256_secret, &self.database_url]
                .into_iter()
                .flatten()
                .map(|s| zeroize::Zeroizing::new(s.expose_secret().to_owned())),
        );
        if let Some(password) = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        {
            // As written in the URL, and as the database sees it.
            let decoded = percent_encoding::percent_decode_str(&password).decode_utf8_lossy();
            secrets.push(zeroize::Zeroizing::new(decoded.into_owned()));
            secrets.push(zeroize::Zeroizing::new(password));
        }
        // The database client's own password setting, if the operator uses it.
        secrets.extend(
            std::env::var("PGPASSWORD")
                .ok()
                .map(zeroize::Zeroizing::new),
        );
        for grant in &grants {
            if grant.orgs.is_empty() && grant.env.iter().any(|p| p.trim_matches('*').is_empty()) {
                tracing::warn!(
                    "credential references may name any environment variable (a grant of `*` to \
                     every organization): every tenant that may verify can send the value of any \
                     variable of this process, except modelreg's own settings, to a host of its \
                     choosing; grant names or prefixes instead (docs/secrets.md)"
                );
            }
        }
        ReferencePolicy::new(&grants, Protected { paths, secrets })
            .map_err(|e| anyhow::anyhow!("credential reference grants: {e}"))
    }

    /// The database URL without credentials, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        modelreg_store::redact_url(&self.database_url())
    }

    /// Where the key file lives: as configured, else beside the SQLite database.
    pub fn key_file(&self) -> PathBuf {
        if let Some(f) = &self.master_key_file {
            return f.clone();
        }
        let url = self.database_url();
        let dir = modelreg_store::sqlite_path(&url)
            .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| self.data_dir.clone());
        dir.join("master.key")
    }
}

/// A setting of comma-separated values, each trimmed, empty ones dropped.
fn comma_list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_in_the_file_names_the_nearest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("modelreg.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let e = Config::load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key `lisen`") && e.contains("did you mean `listen`?"),
            "{e}"
        );
        std::fs::write(&file, "completely_unrelated = 1\n").unwrap();
        let e = Config::load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key `completely_unrelated`") && !e.contains("did you mean"),
            "{e}"
        );
        // Every real key, secrets included, is accepted.
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9\"\nmaster_key_file = \"/x\"\ncheck_interval_secs = 5\n\
             database_url = \"sqlite:///tmp/x.db\"\njwt_hs256_secret = \"s\"\n",
        )
        .unwrap();
        assert!(Config::load(Some(&file), Overrides::default()).is_ok());
    }

    /// The console's client id comes from the file or `MODELREG_CONSOLE_OIDC_CLIENT_ID`, and
    /// the console offers the issuers only with it.
    #[test]
    fn the_console_client_id_pairs_with_the_issuers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("modelreg.toml");
        std::fs::write(
            &file,
            "oidc_issuers = \"https://kc.example.com/realms/acme, https://id.example.org\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), Overrides::default()).unwrap();
        assert!(config.console().oidc().is_empty());
        std::fs::write(
            &file,
            "oidc_issuers = \"https://kc.example.com/realms/acme, https://id.example.org\"\n\
             console_oidc_client_id = \"modelreg-console\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), Overrides::default()).unwrap();
        let console = config.console();
        let oidc: Vec<(&str, &str)> = console
            .oidc()
            .iter()
            .map(|c| (c.issuer.as_str(), c.client_id.as_str()))
            .collect();
        assert_eq!(
            oidc,
            [
                ("https://kc.example.com/realms/acme", "modelreg-console"),
                ("https://id.example.org", "modelreg-console"),
            ]
        );
    }

    /// No `{:?}` of the configuration prints a secret: the master key, the JWT secret, or a
    /// database password.
    #[test]
    fn debug_never_prints_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("modelreg.toml");
        std::fs::write(
            &file,
            r#"
master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
jwt_hs256_secret = "jwt-secret-canary-5521"
database_url = "postgres://modelreg:db-password-canary-0042@db.example/modelreg"
"#,
        )
        .unwrap();
        let config = Config::load(Some(&file), Overrides::default()).unwrap();
        let shown = format!("{config:?} {:#?}", config.clone());
        for secret in [
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "jwt-secret-canary-5521",
            "db-password-canary-0042",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // The values are still there for the code that needs them.
        assert!(config.database_url().contains("db-password-canary-0042"));
        assert_eq!(
            config.jwt().unwrap().hs256_secret.as_deref(),
            Some(b"jwt-secret-canary-5521".as_slice())
        );
    }
}
