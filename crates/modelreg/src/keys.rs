//! Loading the key-encryption keys: `MODELREG_MASTER_KEY`, or a key file that the embedded
//! default creates with mode 0600.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::{Context, bail};
use modelreg_core::secrets::{Kek, Keyring};

use crate::config::Config;

/// The keyring the configuration names. With no `master_key` and no key file, a new key file
/// is created when `create` is true.
pub fn load(config: &Config, create: bool) -> anyhow::Result<Keyring> {
    if let Some(key) = &config.master_key {
        let kek = Kek::from_base64(key).map_err(|e| anyhow::anyhow!("MODELREG_MASTER_KEY: {e}"))?;
        return Keyring::new(vec![kek]).map_err(anyhow::Error::msg);
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
