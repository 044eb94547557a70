//! The profile file `modelreg login` writes: named sets of server, token and project.
//!
//! It lives at `MODELREG_PROFILE_FILE`, else `$XDG_CONFIG_HOME/modelreg/profiles.toml`, else
//! `~/.config/modelreg/profiles.toml`. It holds a token, so it is written with mode 0600 in a
//! directory of mode 0700, replaced atomically.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::PathBuf,
};

use serde::{Deserialize, Serialize};

use super::{ClientError, Result};

pub const DEFAULT: &str = "default";

#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    pub server: String,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct ProfileFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the profile file is.
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MODELREG_PROFILE_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            ClientError::usage(
                "cannot tell where the profile file goes: set HOME or MODELREG_PROFILE_FILE",
            )
        })?;
    Ok(base.join("modelreg").join("profiles.toml"))
}

fn read() -> Result<(PathBuf, ProfileFile)> {
    let path = path()?;
    let file = match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            ClientError::usage(format!(
                "the profile file {} is invalid: {e}",
                path.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProfileFile::default(),
        Err(e) => {
            return Err(ClientError::usage(format!(
                "cannot read the profile file {}: {e}",
                path.display()
            )));
        }
    };
    Ok((path, file))
}

/// The named profile, if the file has it.
pub fn load(name: &str) -> Result<Option<Profile>> {
    Ok(read()?.1.profiles.remove(name))
}

/// Saves `profile` under `name`, keeping the others. Returns the file's path.
pub fn save(name: &str, profile: Profile) -> Result<PathBuf> {
    let (path, mut file) = read()?;
    file.profiles.insert(name.to_owned(), profile);
    let text = toml::to_string(&file)
        .map_err(|e| ClientError::usage(format!("cannot write the profile: {e}")))?;
    let io = |e: std::io::Error| {
        ClientError::usage(format!(
            "cannot write the profile file {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let tmp = path.with_extension("toml.tmp");
    let _ = fs::remove_file(&tmp);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    out.sync_all().map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}
