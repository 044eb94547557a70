//! The key-encryption keys: loading them (`MODELREG_MASTER_KEY`, or a key file that the
//! embedded default creates with mode 0600), and `modelreg keys generate|status|rotate|retire`.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    time::Duration,
};

use anyhow::{Context, bail};
use modelreg_core::{
    references::ReferencePolicy,
    secrets::{Binding, Kek, Keyring},
    store::{MaintenanceStore, Store},
};

use secrecy::ExposeSecret;

use crate::config::Config;

/// The keyring the configuration names. With no `master_key` and no key file, a new key file
/// is created when `create` is true.
pub fn load(config: &Config, create: bool) -> anyhow::Result<Keyring> {
    if let Some(keys) = &config.master_key {
        // Several keys, comma-separated, the newest last.
        let keks = keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                Kek::from_base64(k)
                    .map_err(|e| anyhow::anyhow!("MODELREG_MASTER_KEY, key {}: {e}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Keyring::new(keks).map_err(|e| anyhow::anyhow!("MODELREG_MASTER_KEY: {e}"));
    }
    let path = config.key_file();
    if !path.exists() {
        if modelreg_store::is_postgres(&config.database_url()) {
            // Replicas must share one key: a key file made by one of them would leave the
            // others unable to read what it stores.
            bail!(
                "no master key: with PostgreSQL, set MODELREG_MASTER_KEY (or --master-key-file) \
                 to the same key on every replica"
            );
        }
        if !create {
            bail!(
                "no master key: set MODELREG_MASTER_KEY or create the key file {}",
                path.display()
            );
        }
        create_key_file(&path)?;
        tracing::info!(path = %path.display(), "created a new master key file");
    }
    read_key_file(&path)
}

/// What a running server reads again to learn new master keys: the source its keys came from
/// at start, fixed then. A key file is read again by its path; keys in the configuration
/// (`MODELREG_MASTER_KEY` or the `--config` file's `master_key`) by reading the configuration
/// again, of which only `master_key` is used. (The environment itself cannot change, so keys
/// given there are learned only by a restart.)
pub fn reloader(
    config: &Config,
    config_file: Option<&Path>,
    flags: crate::config::Overrides,
) -> modelreg_core::live_keys::Reload {
    if config.master_key.is_some() {
        let file = config_file.map(Path::to_path_buf);
        return std::sync::Arc::new(move || {
            let config =
                Config::load(file.as_deref(), flags.clone()).map_err(|e| format!("{e:#}"))?;
            if config.master_key.is_none() {
                return Err("the configuration no longer names a master key".into());
            }
            load(&config, false).map_err(|e| format!("{e:#}"))
        });
    }
    let path = config.key_file();
    std::sync::Arc::new(move || read_key_file(&path).map_err(|e| format!("{e:#}")))
}

/// Writes `text` to the key file atomically, mode 0600.
fn write_key_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

fn create_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let kek = Kek::generate();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    writeln!(
        f,
        "# modelreg master key(s), base64 of 32 bytes, one per line; the last line is the newest.\n\
         # Losing this file makes every stored credential unreadable: back it up."
    )?;
    writeln!(f, "{}", kek.to_base64().as_str())?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file: one base64 key per line, `#` comments, the newest last. A file that
/// others can read is refused, as ssh refuses such a private key.
pub fn read_key_file(path: &Path) -> anyhow::Result<Keyring> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the key file {} is readable by group or others (mode {mode:o}); run chmod 600 on it",
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let keks = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            Kek::from_base64(l)
                .map_err(|e| anyhow::anyhow!("{} key {}: {e}", path.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Keyring::new(keks).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `modelreg keys generate`: a new key, added as the newest to the key file, or printed for
/// `MODELREG_MASTER_KEY`.
pub fn generate(config: &Config) -> anyhow::Result<()> {
    let kek = Kek::generate();
    if config.master_key.is_some() {
        println!("{}", kek.to_base64().as_str());
        eprintln!(
            "new key {}: append it to MODELREG_MASTER_KEY after a comma (the last key is the newest) \
             on every replica and restart them (a process cannot re-read its environment; with \
             a key file or the --config file they learn it without a restart), then run \
             `modelreg keys rotate`",
            kek.id()
        );
        return Ok(());
    }
    let path = config.key_file();
    let ring = read_key_file(&path)?;
    let text = zeroize::Zeroizing::new(fs::read_to_string(&path)?);
    let mut new_text = zeroize::Zeroizing::new(text.trim_end().to_owned());
    new_text.push('\n');
    new_text.push_str(kek.to_base64().as_str());
    new_text.push('\n');
    write_key_file(&path, &new_text)?;
    println!("{}", kek.id());
    eprintln!(
        "added key {} to {} as the newest (previous newest: {}). Running servers that read this \
         file load it within one heartbeat (10 s by default) or at once on SIGHUP; then run \
         `modelreg keys rotate`, which waits for them.",
        kek.id(),
        path.display(),
        ring.current().id()
    );
    Ok(())
}

/// `modelreg keys status`: how many records each key id protects.
pub async fn status(
    config: &Config,
    store: &dyn MaintenanceStore,
    json: bool,
) -> anyhow::Result<()> {
    let ring = load(config, false)?;
    let counts = store.count_by_kek().await?;
    let configured = ring.ids();
    let mut ids: Vec<String> = configured.iter().map(|s| s.to_string()).collect();
    for (id, _) in &counts {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let rows: Vec<(String, u64, &str)> = ids
        .iter()
        .map(|id| {
            let n = counts
                .iter()
                .find(|(k, _)| k == id)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let state = if id == ring.current().id() {
                "current"
            } else if configured.contains(&id.as_str()) {
                if n == 0 { "retirable" } else { "configured" }
            } else {
                "MISSING"
            };
            (id.clone(), n, state)
        })
        .collect();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(id, n, state)| serde_json::json!({"key_id": id, "records": n, "state": state}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<16} {:>10}  STATE", "KEY", "RECORDS");
        for (id, n, state) in &rows {
            println!("{id:<16} {n:>10}  {state}");
        }
    }
    if rows.iter().any(|(_, n, s)| *s == "MISSING" && *n > 0) {
        bail!("some records are sealed under a key that is not configured: they cannot be read");
    }
    Ok(())
}

/// What a rotation did.
#[derive(Debug, Default)]
pub struct RotateReport {
    pub rotated: u64,
    pub changed_meanwhile: u64,
    pub failed: u64,
}

/// `modelreg keys rotate`: re-wraps every data key not under the newest key, in batches. Safe
/// while servers run: each record is replaced only if it is unchanged since it was read (a
/// concurrent write already used the newest key). Resumable: a second run picks up whatever
/// is not yet under the newest key. `limit` stops after that many records (for a gradual
/// rotation, and for tests of resumption).
pub async fn rotate(
    config: &Config,
    store: &dyn Store,
    batch_size: u32,
    limit: Option<u64>,
    wait: Duration,
) -> anyhow::Result<RotateReport> {
    let ring = load(config, false)?;
    let current = ring.current().id().to_owned();
    every_replica_seals_under(store, &current, wait).await?;
    let total_before: u64 = store
        .count_by_kek()
        .await?
        .iter()
        .filter(|(k, _)| *k != current)
        .map(|(_, n)| n)
        .sum();
    eprintln!("rotating {total_before} record(s) to key {current}");
    let mut report = RotateReport::default();
    let mut after = None;
    'batches: loop {
        let batch = store
            .sealed_batch(after, batch_size.max(1), Some(&current))
            .await?;
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            after = Some(record.id);
            if limit.is_some_and(|l| report.rotated + report.failed >= l) {
                break 'batches;
            }
            let binding = Binding {
                scope: &record.scope,
                record_id: record.id,
            };
            match ring.rewrap(binding, &record.credentials) {
                Ok(new) => {
                    if store.replace_sealed(record, &new).await? {
                        report.rotated += 1;
                    } else {
                        report.changed_meanwhile += 1;
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(id = %record.id, org = %record.scope.org, project = %record.scope.project, error = %e, "cannot re-wrap");
                }
            }
        }
        eprintln!(
            "  {} rotated, {} changed meanwhile, {} failed (of {total_before})",
            report.rotated, report.changed_meanwhile, report.failed
        );
        // A replica that started meanwhile with older keys would read what was re-wrapped as
        // ERROR, and seal anew under an old key: stop, with what was done so far.
        every_replica_seals_under(store, &current, Duration::ZERO).await?;
    }
    Ok(report)
}

/// Waits, up to `wait`, until every running replica reports that it holds `kek_id` and seals
/// new credentials under it; refuses, naming the replicas that do not. Re-wrapping under a key
/// a replica does not hold would make every re-wrapped record read ERROR on it; and a replica
/// still sealing under an older key would leave new records under a key about to be retired.
/// Servers read their keys again beside each heartbeat and on SIGHUP, and move their sealing
/// to a key once every replica holds it, so after `keys generate` this takes a heartbeat or
/// two.
async fn every_replica_seals_under(
    store: &dyn Store,
    kek_id: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    let mut told = false;
    loop {
        let lagging: Vec<_> = store
            .live_replicas()
            .await?
            .into_iter()
            .filter(|r| r.seal_kek_id != kek_id)
            .collect();
        if lagging.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            let names: Vec<String> = lagging
                .iter()
                .map(|r| {
                    let holds = if r.kek_ids.iter().any(|k| k == kek_id) {
                        "holds it, not yet sealing under it"
                    } else {
                        "has not loaded it"
                    };
                    format!("{} ({holds}; last seen {})", r.id, r.seen_at)
                })
                .collect();
            bail!(
                "{} running replica(s) are not yet sealing under key {kek_id}: {}. Nothing more \
                 was re-wrapped. Give them the key (the key file or MODELREG_MASTER_KEY they \
                 read), then send them SIGHUP or wait for their next heartbeat, and run `keys \
                 rotate` again. A replica that stopped without a clean shutdown counts as \
                 running for three of its heartbeats (30 s by default).",
                lagging.len(),
                names.join(", "),
            );
        }
        if !told {
            eprintln!(
                "waiting up to {} s for {} running replica(s) to load and seal under key {kek_id}",
                wait.as_secs(),
                lagging.len()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `modelreg keys retire KEY_ID`: removes a key that no record uses any more.
pub async fn retire(config: &Config, store: &dyn Store, id: &str) -> anyhow::Result<()> {
    let ring = load(config, false)?;
    if ring.current().id() == id {
        bail!("{id} is the newest key: generate a new one and rotate before retiring it");
    }
    if !ring.ids().contains(&id) {
        bail!("{id} is not a configured key");
    }
    let in_use = store
        .count_by_kek()
        .await?
        .into_iter()
        .find(|(k, _)| k == id)
        .map(|(_, n)| n)
        .unwrap_or(0);
    if in_use > 0 {
        bail!("{in_use} record(s) still use {id}: run `modelreg keys rotate` first");
    }
    // A running replica that still seals under it would write records no key opens once it
    // is gone.
    let sealing: Vec<String> = store
        .live_replicas()
        .await?
        .into_iter()
        .filter(|r| r.seal_kek_id == id)
        .map(|r| r.id)
        .collect();
    if !sealing.is_empty() {
        bail!(
            "running replica(s) {} still seal new credentials under {id}: run `modelreg keys \
             rotate` (it waits until they seal under the newest key), then retire",
            sealing.join(", ")
        );
    }
    if config.master_key.is_some() {
        println!(
            "no record uses {id}: remove it from MODELREG_MASTER_KEY on every replica and restart them"
        );
        return Ok(());
    }
    let path = config.key_file();
    let text = zeroize::Zeroizing::new(fs::read_to_string(&path)?);
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim();
            t.is_empty()
                || t.starts_with('#')
                || Kek::from_base64(t).map(|k| k.id() != id).unwrap_or(true)
        })
        .collect();
    write_key_file(&path, &zeroize::Zeroizing::new(kept.join("\n") + "\n"))?;
    println!("retired {id}: removed from {}", path.display());
    Ok(())
}

/// What the start-up check found.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckReport {
    pub total: u64,
    /// Credentials that do not open with the configured keys.
    pub failed: u64,
    /// Credentials holding a reference that no grant covers for the model's organization:
    /// their verifications fail until the operator grants it.
    pub ungranted: u64,
}

/// The start-up check: every stored credential opens with the configured keys, and every
/// reference in them is one the operator granted. Both counts are logged; credentials that do
/// not open are also reported as ERROR on every read of those models.
///
/// It runs beside the server's requests, on their threads, so it is paced: a batch of
/// `CHECK_BATCH` is opened (a few milliseconds of CPU), then the check sleeps three times as
/// long, which keeps it under a quarter of one core. Unpaced, at 1,000,000 models it took 56 s
/// of CPU and the lists ran at about half speed for that minute (docs/performance.md).
pub async fn check_all(
    store: &dyn MaintenanceStore,
    ring: &Keyring,
    references: &ReferencePolicy,
) -> anyhow::Result<CheckReport> {
    const CHECK_BATCH: u32 = 100;
    let mut report = CheckReport::default();
    let mut after = None;
    loop {
        let started = std::time::Instant::now();
        let batch = store.sealed_batch(after, CHECK_BATCH, None).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        for record in &batch {
            report.total += 1;
            let binding = Binding {
                scope: &record.scope,
                record_id: record.id,
            };
            match ring.open(binding, &record.credentials) {
                Err(_) => report.failed += 1,
                Ok(c) if !references.covers(&record.scope.org, &c) => report.ungranted += 1,
                Ok(_) => {}
            }
        }
        tokio::time::sleep(started.elapsed() * 3).await;
    }
    Ok(report)
}
