//! `modelreg serve`: open storage, mint the bootstrap token if needed, serve until a signal.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use modelreg_api::Authenticator;
use modelreg_core::{
    auth::{ProjectGrant, Role, generate_token, hash_token},
    checker::{CheckerConfig, HealthChecker},
    live_keys::LiveKeys,
    service::ModelService,
    store::{NewToken, ServerStore, TokenStore},
    tenant::OrgId,
    tokens::TokenService,
};
use tokio::net::TcpListener;

use crate::{
    config::{Config, Overrides},
    keys,
};

pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

/// `config_file` is the TOML file the configuration came from, if any: like the data
/// directory, it is never readable through a credential reference. With `flags`, it is read
/// again to learn new master keys without a restart.
pub async fn run(
    config: Config,
    config_file: Option<&std::path::Path>,
    flags: Overrides,
) -> anyhow::Result<()> {
    // SIGHUP asks for the master keys to be read again; heard from the start, so that one
    // sent while the server starts (a service manager's reload) does not kill it.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let keyring = keys::load(&config, true)?;
    let references = config.references(&keyring, config_file)?;
    let store = config.open_store().await?;
    tracing::info!(
        database = %config.database_url_redacted(),
        kek = keyring.current().id(),
        "storage ready"
    );

    let jwt = config.jwt()?;
    if !jwt.accepts_jwts() {
        bootstrap_token(store.as_ref(), &config.data_dir).await?;
    }
    let keyring = Arc::new(keyring);
    // Load the largest projects' list indexes in the background (SQLite), so that the first
    // lists after a start do not wait for them; until each is loaded its lists go to the
    // database.
    {
        let store = store.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match store.warm_list_indexes().await {
                Ok(0) => {}
                Ok(models) => tracing::info!(
                    models,
                    millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "list index loaded"
                ),
                Err(e) => tracing::warn!(error = %e, "the list index was not loaded"),
            }
        });
    }
    // Check every stored credential in the background: a large registry starts at once, and
    // what does not open, or refers to what is not granted, is reported with its count.
    {
        let (store, keyring, references) = (store.clone(), keyring.clone(), references.clone());
        tokio::spawn(async move {
            match keys::check_all(store.as_ref(), &keyring, &references).await {
                Ok(r) => {
                    if r.failed == 0 {
                        tracing::info!(total = r.total, "every stored credential opens");
                    } else {
                        tracing::warn!(
                            total = r.total,
                            failed = r.failed,
                            "{} stored credential(s) cannot be decrypted (missing master key, tampering, or a ciphertext moved between rows); those models read as ERROR. See `modelreg keys status`.",
                            r.failed
                        );
                    }
                    if r.ungranted > 0 {
                        tracing::warn!(
                            ungranted = r.ungranted,
                            "{} stored model(s) refer to environment variables or files that no grant covers for their organization: their verifications fail (the background checker marks them ERROR) until the operator grants them with MODELREG_REFERENCE_ENV, MODELREG_REFERENCE_DIRS or MODELREG_REFERENCE_GRANTS (docs/secrets.md)",
                            r.ungranted
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check the stored credentials"),
            }
        });
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let auth = Authenticator::new(store.clone(), &jwt);
    // Token use is written in batches, not on every request.
    let last_used = auth.last_used();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if let Err(e) = last_used.flush().await {
                tracing::warn!(error = %e, "could not record token use");
            }
        }
    });
    // The master keys, read again on SIGHUP and beside each heartbeat from the source they
    // came from at start, so that `keys generate` needs no restart; the heartbeat says which
    // this replica holds and seals under.
    let live = Arc::new(LiveKeys::reloadable(
        keyring.clone(),
        keys::reloader(&config, config_file, flags),
    ));
    let replica = Replica {
        id: format!("replica-{}", uuid::Uuid::now_v7()),
        // At most an hour: others forget a replica not seen for a day.
        interval: Duration::from_secs(config.replica_heartbeat_secs.clamp(1, 3600)),
    };
    // Once before serving: a replica that starts with a new key seals under it only when
    // every live replica holds it.
    replica.beat(store.as_ref(), &live).await;
    let heartbeats = replica.spawn(store.clone(), live.clone(), hangup);
    // One set of metrics, so the background checker's verifications are counted too.
    let metrics = Arc::new(modelreg_api::metrics::Metrics::new());
    // Each part gets the part of the store it needs; no request reaches `MaintenanceStore`.
    let models = ModelService::new(store.clone(), keyring)
        .with_keys(live)
        .with_references(references)
        .with_prober(Arc::new(config.prober()?))
        .with_verification_hook(metrics.verification_hook());
    if config.check_interval_secs > 0 {
        spawn_checker(models.clone(), store.clone(), &config, replica.id.clone());
    }
    let limits = config.limits();
    let services = modelreg_api::Services {
        models,
        tokens: TokenService::new(store.clone()),
        server: store.clone(),
        console: config.console(),
    };
    let app = modelreg_api::router_with_metrics(services, auth, metrics, limits.clone());
    // Where to reach the server, on stdout for whoever started it; in JSON log mode as a JSON
    // line too, so that a pipeline merging stdout into the log reads only JSON.
    if config.log_format == "json" {
        println!(
            "{}",
            serde_json::json!({
                "message": "modelreg listening",
                "url": format!("http://{addr}"),
                "console": format!("http://{addr}/ui/"),
            })
        );
    } else {
        println!("modelreg listening on http://{addr}");
        println!("web console at http://{addr}/ui/ (sign in with an API token)");
    }
    tracing::info!(%addr, "listening");

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    // One signal, heard by the server (to stop accepting) and by the grace timer.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopping = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server = modelreg_api::serve(listener, app, &limits, stopping(stop_rx.clone()));
    // In-flight requests get `grace` to finish once a signal arrives; then we stop anyway.
    let served = tokio::select! {
        result = server => result.context("server error"),
        _ = async { stopping(stop_rx).await; tokio::time::sleep(grace).await } => {
            tracing::warn!("requests still running after the grace period; stopping");
            Ok(())
        }
    };
    // No heartbeat after this replica's row is removed, or it would count as running again.
    heartbeats.abort();
    let _ = heartbeats.await;
    if let Err(e) = store.forget_replica(&replica.id).await {
        tracing::warn!(error = %e, "could not remove this replica's heartbeat");
    }
    store.close().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// This running server, as other replicas and `keys rotate` see it through its heartbeats.
#[derive(Clone)]
struct Replica {
    id: String,
    interval: Duration,
}

impl Replica {
    /// Reads the master keys again, decides which key to seal new credentials under (the
    /// newest that every live replica holds, this one included), and reports both.
    async fn beat(&self, store: &dyn ServerStore, live: &LiveKeys) {
        match live.reload() {
            Ok(true) => tracing::info!(
                keys = ?live.state().ring().ids(),
                "read the master keys again: a key was added"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the master keys again; keeping those held")
            }
        }
        let mine: Vec<String> = live
            .state()
            .ring()
            .ids()
            .into_iter()
            .map(str::to_owned)
            .collect();
        match store.live_replicas().await {
            Ok(replicas) => {
                let mut held: Vec<Vec<String>> = replicas
                    .into_iter()
                    .filter(|r| r.id != self.id)
                    .map(|r| r.kek_ids)
                    .collect();
                held.push(mine.clone());
                live.seal_under_common(&held);
            }
            Err(e) => tracing::warn!(error = %e, "could not read the other replicas' heartbeats"),
        }
        let seal = live.state().seal_id().to_owned();
        if let Err(e) = store
            .replica_heartbeat(&self.id, &mine, &seal, self.interval * 3)
            .await
        {
            tracing::warn!(error = %e, "could not record this replica's heartbeat");
        }
    }

    /// Beats every interval, and at once on SIGHUP, until aborted.
    fn spawn(
        &self,
        store: Arc<dyn ServerStore>,
        live: Arc<LiveKeys>,
        mut hangup: Option<tokio::signal::unix::Signal>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let hup = async {
                    match hangup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(this.interval) => {}
                    _ = hup => tracing::info!("SIGHUP: reading the master keys again"),
                }
                this.beat(store.as_ref(), &live).await;
            }
        })
    }
}

/// Runs the background health checker until the process ends.
fn spawn_checker(
    models: ModelService,
    leases: Arc<dyn ServerStore>,
    config: &Config,
    replica: String,
) {
    let interval = Duration::from_secs(config.check_interval_secs);
    let checker = HealthChecker::new(
        models,
        leases,
        CheckerConfig {
            interval,
            concurrency: config.check_concurrency.max(1) as usize,
            jitter: Duration::from_secs(config.check_jitter_secs),
            ..CheckerConfig::default()
        },
        replica,
    );
    // Due models are looked for at least every 30 s, so a new model is checked soon.
    let poll = interval.min(Duration::from_secs(30));
    tracing::info!(
        interval_secs = interval.as_secs(),
        "background health checks on"
    );
    tokio::spawn(async move {
        loop {
            match checker.run_once().await {
                Ok(r) if r.checked > 0 => tracing::info!(
                    checked = r.checked,
                    verified = r.verified,
                    failed = r.failed,
                    "health checks"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "health check round failed"),
            }
            tokio::time::sleep(poll).await;
        }
    });
}

/// The embedded default has no identity provider: the first start mints one owner token for
/// organization `default`, all projects, and hands it over once. Later starts find it (or any
/// token created since) and mint nothing.
///
/// The token is shown to the person at the terminal. When stdout is not a terminal it is most
/// likely a log pipeline (a service manager, a container runtime merging stdout and stderr),
/// where a token would be kept and shipped: then the token goes to a file of the data
/// directory readable by this user alone, and the log says only where it is. That file is
/// written before the token is minted, so a token can never be minted and then lost.
async fn bootstrap_token(store: &dyn TokenStore, data_dir: &Path) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !store.list_tokens().await?.is_empty() {
        return Ok(());
    }
    let token = generate_token();
    let pending = if std::io::stdout().is_terminal() {
        None
    } else {
        Some(PendingTokenFile::write(data_dir, &token)?)
    };
    let minted = store
        .insert_token(NewToken {
            name: BOOTSTRAP_TOKEN_NAME.into(),
            org: OrgId::parse("default").expect("valid"),
            project: ProjectGrant::All,
            role: Role::Owner,
            hash: hash_token(&token),
            expires_at: None,
        })
        .await;
    match minted {
        Ok(_) => {}
        // Another replica starting at the same moment minted it and handed it over; the
        // pending file is removed when dropped.
        Err(modelreg_core::Error::AlreadyExists(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    match pending {
        None => println!(
            "Created an owner token for organization 'default', all projects. It is shown only \
             once; only its hash is stored:\n\n    {token}\n"
        ),
        Some(file) => {
            let path = file.publish()?;
            tracing::warn!(
                path = %path.display(),
                "created an owner token for organization 'default', all projects; stdout is \
                 not a terminal, so it was written to this file (mode 0600) instead of printed. \
                 Read it, then delete the file"
            );
        }
    }
    Ok(())
}

/// The file the bootstrap token is written to when stdout is not a terminal.
pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";

/// The bootstrap token in a private file beside its final name, until the token is minted.
/// Dropped unpublished, the file is removed.
struct PendingTokenFile {
    path: std::path::PathBuf,
    published: bool,
}

impl PendingTokenFile {
    fn write(data_dir: &Path, token: &str) -> anyhow::Result<PendingTokenFile> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let path = data_dir.join(format!(
            "{BOOTSTRAP_TOKEN_FILE}.{}.pending",
            std::process::id()
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("cannot write the bootstrap token to {}", path.display()))?;
        let pending = PendingTokenFile {
            path,
            published: false,
        };
        writeln!(file, "{token}")?;
        file.sync_all()?;
        Ok(pending)
    }

    /// Moves the file to its final name (replacing one an earlier start left) and returns it.
    fn publish(mut self) -> anyhow::Result<std::path::PathBuf> {
        let target = self.path.with_file_name(BOOTSTRAP_TOKEN_FILE);
        // The token is minted now: whatever happens, the file that holds it stays.
        self.published = true;
        std::fs::rename(&self.path, &target).with_context(|| {
            format!(
                "the bootstrap token is in {}, which could not be renamed to {}",
                self.path.display(),
                target.display()
            )
        })?;
        Ok(target)
    }
}

impl Drop for PendingTokenFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
