//! Credential references (SPEC §5): a credential value may name where the secret is instead of
//! holding it, `os.environ/NAME` (the LiteLLM convention) or `file:/absolute/path`.
//!
//! A tenant may store a reference, and it is exported to LiteLLM as it is. But the server
//! resolves one, reading its own environment or file system, only where the operator has granted
//! that name or directory to the tenant's organization ([`Grant`]). The server's own settings
//! can never be granted, and every refusal reads the same whether or not the variable or file
//! exists. [`ReferencePolicy::resolve`] is the one place a reference is read: verification, the
//! background checker and `export --with-values` all go through it (docs/secrets.md,
//! docs/security.md).

use std::{
    fmt,
    io::Read,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::{secrets::Credentials, tenant::OrgId};

/// A credential value that names where the secret is instead of holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    Env(&'a str),
    File(&'a str),
}

impl<'a> Reference<'a> {
    pub fn parse(value: &'a str) -> Option<Reference<'a>> {
        if let Some(name) = value.strip_prefix("os.environ/") {
            Some(Reference::Env(name))
        } else {
            value.strip_prefix("file:").map(Reference::File)
        }
    }

    /// Whether the reference is well formed. The message never repeats the value: a client
    /// that pasted a key after the prefix must not get it echoed (or logged).
    pub fn check(&self) -> Result<(), String> {
        match self {
            Reference::Env(name) => {
                if env_name_ok(name) {
                    Ok(())
                } else {
                    Err(
                        "os.environ/ must be followed by a variable name of letters, digits \
                         and _, not starting with a digit"
                            .into(),
                    )
                }
            }
            Reference::File(path) => {
                if path.starts_with('/') && !path.contains('\0') && path.len() <= 4096 {
                    Ok(())
                } else {
                    Err("file: must be followed by an absolute path".into())
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Reference::Env(_) => "an environment variable",
            Reference::File(_) => "a file",
        }
    }
}

fn env_name_ok(name: &str) -> bool {
    name.len() <= 256
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Environment variables that are the server's own settings, or its database client's, and so
/// can never be granted: `MODELREG_*` (the master key, the JWT secret, the database URL…),
/// `DATABASE_URL`, and `PG*` (libpq's and sqlx's connection settings, `PGPASSWORD` among
/// them). Compared without regard to case.
fn is_server_setting(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("MODELREG_") || upper == "DATABASE_URL" || upper.starts_with("PG")
}

/// Parts of the file system that are never read for a reference, whatever is granted: the
/// kernel's views of processes and devices (`/proc/self/environ` holds the whole environment,
/// `/dev/zero` never ends).
const NEVER_READ: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The largest file a reference may name.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// One grant of the operator's configuration: environment variable names (exact, or globs
/// with `*`) and directories whose files may be referred to, for some organizations or all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The organizations that may use it; empty: every organization.
    #[serde(default)]
    pub orgs: Vec<String>,
    /// Variable names, or globs such as `OPENAI_*`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Absolute directories; any regular file below one may be referred to.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

/// A grant as checked at start-up.
#[derive(Debug)]
struct Checked {
    /// `None`: every organization.
    orgs: Option<Vec<OrgId>>,
    env: Vec<wildmatch::WildMatch>,
    /// Each directory as configured and as its canonical path.
    dirs: Vec<(PathBuf, PathBuf)>,
}

/// Where environment variables are read from: the process environment, or a table in tests.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the server may resolve for whom. Nothing is granted by default.
#[derive(Clone)]
pub struct ReferencePolicy {
    grants: Arc<Vec<Checked>>,
    /// The server's own files and directories (data directory, key file, database, config).
    own_paths: Arc<Vec<PathBuf>>,
    /// The server's own secret values (master keys, JWT secret, database password): a
    /// reference that resolves to one, or to text containing one, is refused, whatever its
    /// name, in case the operator's grant is wider than meant.
    own_secrets: Arc<Vec<Zeroizing<String>>>,
    env: EnvLookup,
}

impl fmt::Debug for ReferencePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferencePolicy")
            .field("grants", &self.grants)
            .field("own_paths", &self.own_paths)
            .field("own_secrets", &self.own_secrets.len())
            .finish_non_exhaustive()
    }
}

impl Default for ReferencePolicy {
    fn default() -> Self {
        ReferencePolicy::none()
    }
}

/// The server's own things, which no grant reaches.
#[derive(Default)]
pub struct Protected {
    /// Files and directories: nothing at or below them is read.
    pub paths: Vec<PathBuf>,
    /// Secret values: no resolved value may equal or contain one.
    pub secrets: Vec<Zeroizing<String>>,
}

impl ReferencePolicy {
    /// Nothing granted: every reference is refused.
    pub fn none() -> Self {
        ReferencePolicy {
            grants: Arc::new(Vec::new()),
            own_paths: Arc::new(Vec::new()),
            own_secrets: Arc::new(Vec::new()),
            env: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }

    /// The operator's grants, checked: a malformed name, a grant of one of the server's own
    /// settings, or a directory that does not exist or lies in the server's own files is an
    /// error, so a mistake shows at start-up rather than as a reference that never resolves.
    pub fn new(grants: &[Grant], protected: Protected) -> Result<Self, String> {
        let own_paths: Vec<PathBuf> = protected
            .paths
            .iter()
            .filter(|p| p.is_absolute())
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .chain(NEVER_READ.iter().map(PathBuf::from))
            .collect();
        let mut checked = Vec::with_capacity(grants.len());
        for grant in grants {
            let orgs = if grant.orgs.is_empty() {
                None
            } else {
                Some(
                    grant
                        .orgs
                        .iter()
                        .map(|o| OrgId::parse(o).map_err(|m| format!("organization {o:?}: {m}")))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            for pattern in &grant.env {
                check_pattern(pattern)?;
            }
            let mut dirs = Vec::with_capacity(grant.dirs.len());
            for dir in &grant.dirs {
                if !dir.is_absolute() {
                    return Err(format!("directory {} is not absolute", dir.display()));
                }
                let canonical = std::fs::canonicalize(dir)
                    .ok()
                    .filter(|c| c.is_dir())
                    .ok_or_else(|| format!("directory {} does not exist", dir.display()))?;
                if own_paths.iter().any(|own| canonical.starts_with(own)) {
                    return Err(format!(
                        "directory {} is part of the server's own files, which are never granted",
                        dir.display()
                    ));
                }
                dirs.push((normal(dir), canonical));
            }
            checked.push(Checked {
                orgs,
                env: grant
                    .env
                    .iter()
                    .map(|p| wildmatch::WildMatch::new(p))
                    .collect(),
                dirs,
            });
        }
        Ok(ReferencePolicy {
            grants: Arc::new(checked),
            own_paths: Arc::new(own_paths),
            own_secrets: Arc::new(
                protected
                    .secrets
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            env: Arc::new(|name: &str| std::env::var(name).ok()),
        })
    }

    /// The same policy, reading environment variables through `env` (tests).
    pub fn with_env(mut self, env: EnvLookup) -> Self {
        self.env = env;
        self
    }

    /// `credentials` with every reference replaced by what it names, for `org`; the first
    /// refusal if any reference is refused. See [`ReferencePolicy::resolve_each`].
    pub fn resolve(&self, org: &OrgId, credentials: &Credentials) -> Result<Credentials, String> {
        let (resolved, refused) = self.resolve_each(org, credentials);
        match refused.into_iter().next() {
            Some(why) => Err(why),
            None => resolved.ok_or_else(|| "the credentials are empty".to_owned()),
        }
    }

    /// Each reference of `credentials` replaced by what it names, for `org`: the credentials
    /// without the keys whose reference was refused (`None` if none is left), and one message
    /// per refusal. This is the only function that reads a reference. A reference that is not
    /// granted to `org`, names one of the server's own settings or files, does not exist,
    /// cannot be read, or resolves to one of the server's secrets, is refused with one message
    /// that names the credential key and never the reference or a value, so the answer tells
    /// nothing of what exists.
    pub fn resolve_each(
        &self,
        org: &OrgId,
        credentials: &Credentials,
    ) -> (Option<Credentials>, Vec<String>) {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(credentials.expose_json()).unwrap_or_default();
        let mut refused = Vec::new();
        let mut resolved = serde_json::Map::with_capacity(map.len());
        for (key, value) in map {
            let Some(reference) = value.as_str().and_then(Reference::parse) else {
                resolved.insert(key, value);
                continue;
            };
            match self.read(org, reference).filter(|v| !self.is_own_secret(v)) {
                Some(v) => {
                    resolved.insert(key, serde_json::Value::String(v.to_string()));
                }
                None => refused.push(refused_credential(&key, reference)),
            }
        }
        if resolved.is_empty() {
            return (None, refused);
        }
        match Credentials::from_map(resolved) {
            Ok(c) => (Some(c), refused),
            // Values that resolved but are too large together: a refusal too, not silence.
            Err(why) => {
                refused.push(format!("the resolved credentials {why}"));
                (None, refused)
            }
        }
    }

    /// `value` resolved for `org` if it is a reference (as `resolve_each` resolves a
    /// credential's), else itself; `label` names it in the refusal. For references outside the
    /// credentials, such as an `api_base` of `os.environ/AZURE_API_BASE`.
    pub fn resolve_value(
        &self,
        org: &OrgId,
        label: &str,
        value: &str,
    ) -> Result<Zeroizing<String>, String> {
        match Reference::parse(value) {
            None => Ok(Zeroizing::new(value.to_owned())),
            Some(reference) => self
                .read(org, reference)
                .filter(|v| !self.is_own_secret(v))
                .ok_or_else(|| refused_message(label, reference)),
        }
    }

    /// Whether every reference in `credentials` is one the operator granted to `org`, judged
    /// by name and path alone: nothing is read. For the count, at start-up, of models whose
    /// references will be refused.
    pub fn covers(&self, org: &OrgId, credentials: &Credentials) -> bool {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(credentials.expose_json()).unwrap_or_default();
        map.values()
            .filter_map(|v| v.as_str().and_then(Reference::parse))
            .all(|reference| match reference {
                Reference::Env(name) => self.env_granted(org, name),
                Reference::File(path) => !self.granted_dirs(org, Path::new(path)).is_empty(),
            })
    }

    fn grants_of<'a>(&'a self, org: &OrgId) -> impl Iterator<Item = &'a Checked> {
        let org = org.clone();
        self.grants
            .iter()
            .filter(move |g| g.orgs.as_ref().is_none_or(|orgs| orgs.contains(&org)))
    }

    /// Whether `name` is granted to `org` and is not a server setting.
    fn env_granted(&self, org: &OrgId, name: &str) -> bool {
        env_name_ok(name)
            && !is_server_setting(name)
            && self
                .grants_of(org)
                .flat_map(|g| g.env.iter())
                .any(|pattern| pattern.matches(name))
    }

    /// The granted directories that `path` lies below as written (without `..`), for `org`.
    fn granted_dirs(&self, org: &OrgId, path: &Path) -> Vec<&(PathBuf, PathBuf)> {
        if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Vec::new();
        }
        let normal_path = normal(path);
        self.grants_of(org)
            .flat_map(|g| g.dirs.iter())
            .filter(|(given, canonical)| {
                normal_path.starts_with(given) || normal_path.starts_with(canonical)
            })
            .collect()
    }

    fn read(&self, org: &OrgId, reference: Reference<'_>) -> Option<Zeroizing<String>> {
        reference.check().ok()?;
        match reference {
            Reference::Env(name) => {
                if !self.env_granted(org, name) {
                    return None;
                }
                (self.env)(name).map(Zeroizing::new)
            }
            Reference::File(path) => {
                let path = Path::new(path);
                // Lexically first: a path outside every granted directory is never looked at,
                // so the file system is not touched for it at all.
                let dirs = self.granted_dirs(org, path);
                if dirs.is_empty() {
                    return None;
                }
                // Then as the file system resolves it: a symbolic link out of the granted
                // directory, or into the server's own files, is refused.
                let canonical = std::fs::canonicalize(path).ok()?;
                if !dirs.iter().any(|(_, c)| canonical.starts_with(c))
                    || self.own_paths.iter().any(|own| canonical.starts_with(own))
                {
                    return None;
                }
                // And by identity, which no name changes: the server's own files and
                // directories reached through a hard link, a bind mount or a name that did not
                // exist when the policy was made (the bootstrap token, a new database).
                let own = self.own_identities();
                if canonical
                    .ancestors()
                    .skip(1)
                    .any(|dir| identity(dir).is_some_and(|id| own.contains(&id)))
                {
                    return None;
                }
                read_small_file(&canonical, &own)
            }
        }
    }

    /// The device and inode of each of the server's own files and directories that exists
    /// now. Read at each resolution, so that files made since start-up count.
    fn own_identities(&self) -> Vec<(u64, u64)> {
        self.own_paths.iter().filter_map(|p| identity(p)).collect()
    }

    fn is_own_secret(&self, value: &str) -> bool {
        self.own_secrets.iter().any(|secret| {
            value == secret.as_str() || (secret.len() >= 8 && value.contains(secret.as_str()))
        })
    }
}

/// The refusal of a reference of credential `key`.
fn refused_credential(key: &str, reference: Reference<'_>) -> String {
    let key: String = key.chars().take(40).collect();
    refused_message(&format!("credential {key:?}"), reference)
}

/// The one refusal, whatever the reason; `what` names the value that holds the reference.
fn refused_message(what: &str, reference: Reference<'_>) -> String {
    format!(
        "{what} refers to {} that this server does not resolve for this organization \
         (the operator has not granted it, or it is not set); see docs/secrets.md",
        reference.kind()
    )
}

/// A path's device and inode, following symbolic links.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// File systems whose "files" are the kernel's views of processes and the system: never a
/// secret an operator placed. `/proc/self/environ` is a regular file of size 0 on procfs,
/// and procfs can be mounted anywhere.
const PSEUDO_FILE_SYSTEMS: [i64; 11] = [
    0x9fa0,     // proc
    0x62656572, // sysfs
    0x64626720, // debugfs
    0x73636673, // securityfs
    0x74726163, // tracefs
    0x27e0eb,   // cgroup
    0x63677270, // cgroup2
    0xde5e81e4, // efivarfs
    0xcafe4a11, // bpf
    0x1cd1,     // devpts
    0x62656570, // configfs
];

fn on_pseudo_file_system(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `fstatfs` writes a `statfs` for an open descriptor into the buffer it is given.
    if unsafe { libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
        return true;
    }
    // SAFETY: initialized by the successful call above.
    let stat = unsafe { stat.assume_init() };
    // `f_type`'s integer type differs between platforms (i64 here, u32 or i32 elsewhere).
    #[allow(clippy::unnecessary_cast)]
    let kind = stat.f_type as i64;
    PSEUDO_FILE_SYSTEMS.contains(&kind)
}

/// A regular file of 1 to `MAX_FILE_BYTES` bytes, as text without its trailing newline, that
/// is none of `own` (device and inode) and is on no pseudo file system. Opened without
/// following a final symbolic link and without blocking (a FIFO would otherwise hang the
/// request), then checked.
fn read_small_file(path: &Path, own: &[(u64, u64)]) -> Option<Zeroizing<String>> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file()
        || meta.len() == 0
        || meta.len() > MAX_FILE_BYTES
        || own.contains(&(meta.dev(), meta.ino()))
        || on_pseudo_file_system(&file)
    {
        return None;
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return None;
    }
    let text = std::str::from_utf8(&bytes).ok()?;
    let value = text.trim_end_matches(['\n', '\r']);
    (!value.is_empty()).then(|| Zeroizing::new(value.to_owned()))
}

/// `path` with `.` and repeated separators taken out, without touching the file system.
fn normal(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// A grant's variable pattern: letters, digits, `_` and `*`. One that can only ever match the
/// server's own settings (`MODELREG_MASTER_KEY`, `PG*`) is refused outright.
fn check_pattern(pattern: &str) -> Result<(), String> {
    let ok = !pattern.is_empty()
        && pattern.len() <= 256
        && pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*');
    if !ok {
        return Err(format!(
            "environment pattern {pattern:?} must be letters, digits, _ and *"
        ));
    }
    let literal_prefix = pattern.split('*').next().unwrap_or("");
    let only_own = if pattern.contains('*') {
        let upper = literal_prefix.to_ascii_uppercase();
        upper.starts_with("MODELREG_") || upper.starts_with("PG")
    } else {
        is_server_setting(pattern)
    };
    if only_own {
        return Err(format!(
            "environment pattern {pattern:?} names the server's own settings \
             (MODELREG_*, DATABASE_URL, PG*), which are never granted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn org(s: &str) -> OrgId {
        OrgId::parse(s).unwrap()
    }

    fn creds(json: serde_json::Value) -> Credentials {
        serde_json::from_value(json).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> EnvLookup {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Arc::new(move |name: &str| map.get(name).cloned())
    }

    fn grant(orgs: &[&str], env: &[&str], dirs: &[&Path]) -> Grant {
        Grant {
            orgs: orgs.iter().map(|s| (*s).to_owned()).collect(),
            env: env.iter().map(|s| (*s).to_owned()).collect(),
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        }
    }

    #[test]
    fn globs() {
        let matches = |pattern: &str, name: &str| wildmatch::WildMatch::new(pattern).matches(name);
        assert!(matches("OPENAI_API_KEY", "OPENAI_API_KEY"));
        assert!(!matches("OPENAI_API_KEY", "OPENAI_API_KEY2"));
        assert!(matches("OPENAI_*", "OPENAI_API_KEY"));
        assert!(!matches("OPENAI_*", "OPENAI"));
        assert!(matches("*_KEY", "ANTHROPIC_KEY"));
        assert!(matches("A*B*C", "ABC"));
        assert!(!matches("AB*BA", "ABA"));
        // A pattern of the grammar, letters, digits, `_` and `*`, has no other wildcard.
        assert!(check_pattern("OPENAI_?").is_err());
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let policy = ReferencePolicy::none().with_env(env(&[("OPENAI_API_KEY", "sk-1")]));
        let err = policy
            .resolve(
                &org("acme"),
                &creds(serde_json::json!({"api_key": "os.environ/OPENAI_API_KEY"})),
            )
            .unwrap_err();
        assert!(
            err.contains("\"api_key\"") && !err.contains("sk-1"),
            "{err}"
        );
        // Plain values need no grant.
        let plain = policy
            .resolve(&org("acme"), &creds(serde_json::json!({"api_key": "sk-2"})))
            .unwrap();
        assert_eq!(plain.expose_json(), r#"{"api_key":"sk-2"}"#);
    }

    #[test]
    fn grants_by_name_glob_and_organization() {
        let policy = ReferencePolicy::new(
            &[
                grant(&[], &["SHARED_KEY"], &[]),
                grant(&["acme"], &["ACME_*"], &[]),
            ],
            Protected::default(),
        )
        .unwrap()
        .with_env(env(&[
            ("SHARED_KEY", "shared"),
            ("ACME_OPENAI", "acme-key"),
            ("OTHER", "other"),
        ]));
        let r = |o: &str, v: &str| {
            policy
                .resolve(&org(o), &creds(serde_json::json!({ "k": v })))
                .map(|c| {
                    c.get("k")
                        .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned())
                })
        };
        assert_eq!(
            r("acme", "os.environ/SHARED_KEY").unwrap().unwrap(),
            "shared"
        );
        assert_eq!(
            r("beta", "os.environ/SHARED_KEY").unwrap().unwrap(),
            "shared"
        );
        assert_eq!(
            r("acme", "os.environ/ACME_OPENAI").unwrap().unwrap(),
            "acme-key"
        );
        // Another organization's grant is not this one's.
        let beta = r("beta", "os.environ/ACME_OPENAI").unwrap_err();
        // Not granted, and granted but unset, read the same.
        let other = r("acme", "os.environ/OTHER").unwrap_err();
        let unset = r("acme", "os.environ/ACME_MISSING").unwrap_err();
        assert_eq!(beta, other);
        assert_eq!(other, unset);
        assert!(
            !other.contains("OTHER") && !other.contains("other"),
            "{other}"
        );
    }

    #[test]
    fn covers_judges_by_name_alone() {
        let policy = ReferencePolicy::new(
            &[
                grant(&[], &["OPENAI_*"], &[Path::new("/tmp")]),
                grant(&["acme"], &["ACME_KEY"], &[]),
            ],
            Protected::default(),
        )
        .unwrap()
        // Nothing is set: `covers` must not depend on it.
        .with_env(env(&[]));
        let c = |v: &str| creds(serde_json::json!({"plain": "x", "k": v}));
        assert!(policy.covers(&org("beta"), &c("os.environ/OPENAI_API_KEY")));
        assert!(policy.covers(&org("beta"), &c("file:/tmp/not-there")));
        assert!(policy.covers(&org("acme"), &c("os.environ/ACME_KEY")));
        assert!(policy.covers(&org("beta"), &c("plain-value")));
        assert!(!policy.covers(&org("beta"), &c("os.environ/ACME_KEY")));
        assert!(!policy.covers(&org("beta"), &c("file:/tmp/../etc/passwd")));
        assert!(!policy.covers(&org("beta"), &c("file:/etc/passwd")));
        assert!(!ReferencePolicy::none().covers(&org("beta"), &c("os.environ/OPENAI_API_KEY")));
    }

    #[test]
    fn the_servers_own_settings_are_never_granted() {
        for pattern in [
            "MODELREG_MASTER_KEY",
            "modelreg_jwt_hs256_secret",
            "MODELREG_*",
            "DATABASE_URL",
            "PGPASSWORD",
            "PG*",
        ] {
            let e = ReferencePolicy::new(&[grant(&[], &[pattern], &[])], Protected::default())
                .unwrap_err();
            assert!(e.contains("never granted"), "{pattern}: {e}");
        }
        // A wide grant still never reaches them.
        let policy = ReferencePolicy::new(&[grant(&[], &["*"], &[])], Protected::default())
            .unwrap()
            .with_env(env(&[
                ("MODELREG_MASTER_KEY", "master"),
                ("MODELREG_JWT_HS256_SECRET", "jwt"),
                ("Modelreg_Odd_Case", "odd"),
                ("DATABASE_URL", "postgres://u:p@h/d"),
                ("PGPASSWORD", "pw"),
                ("OPENAI_API_KEY", "sk-ok"),
            ]));
        for name in [
            "MODELREG_MASTER_KEY",
            "MODELREG_JWT_HS256_SECRET",
            "Modelreg_Odd_Case",
            "DATABASE_URL",
            "PGPASSWORD",
        ] {
            let c = creds(serde_json::json!({ "api_key": format!("os.environ/{name}") }));
            assert!(policy.resolve(&org("acme"), &c).is_err(), "{name}");
        }
        let ok = creds(serde_json::json!({"api_key": "os.environ/OPENAI_API_KEY"}));
        assert!(policy.resolve(&org("acme"), &ok).is_ok());
    }

    #[test]
    fn a_value_holding_a_server_secret_is_refused_whatever_its_name() {
        let policy = ReferencePolicy::new(
            &[grant(&[], &["COPY*"], &[])],
            Protected {
                paths: Vec::new(),
                secrets: vec![Zeroizing::new("the-master-key-base64".to_owned())],
            },
        )
        .unwrap()
        .with_env(env(&[
            ("COPY_EXACT", "the-master-key-base64"),
            ("COPY_INSIDE", "prefix the-master-key-base64 suffix"),
        ]));
        for name in ["COPY_EXACT", "COPY_INSIDE"] {
            let c = creds(serde_json::json!({ "k": format!("os.environ/{name}") }));
            assert!(policy.resolve(&org("o"), &c).is_err(), "{name}");
        }
    }

    #[test]
    fn files_only_below_granted_directories_and_never_the_servers_own() {
        let root = tempfile::tempdir().unwrap();
        let granted = root.path().join("granted");
        let own = granted.join("data");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(granted.join("key"), "file-secret\n").unwrap();
        std::fs::write(own.join("master.key"), "own-secret\n").unwrap();
        std::fs::write(root.path().join("outside"), "outside-secret\n").unwrap();
        std::os::unix::fs::symlink(root.path().join("outside"), granted.join("link")).unwrap();
        std::fs::write(granted.join("big"), "x".repeat(70 * 1024)).unwrap();
        let policy = ReferencePolicy::new(
            &[grant(&[], &[], &[&granted])],
            Protected {
                // As the server lists them: its data directory and its key file.
                paths: vec![own.clone(), own.join("master.key")],
                secrets: Vec::new(),
            },
        )
        .unwrap();
        let r = |path: &Path| {
            policy.resolve(
                &org("acme"),
                &creds(serde_json::json!({ "k": format!("file:{}", path.display()) })),
            )
        };
        assert_eq!(
            r(&granted.join("key")).unwrap().expose_json(),
            r#"{"k":"file-secret"}"#
        );
        let refusals = [
            r(&own.join("master.key")).unwrap_err(),
            r(&root.path().join("outside")).unwrap_err(),
            r(&granted.join("link")).unwrap_err(),
            r(&granted.join("../outside")).unwrap_err(),
            r(&granted.join("missing")).unwrap_err(),
            r(&granted.join("big")).unwrap_err(),
            r(&granted).unwrap_err(),
            r(Path::new("/proc/self/environ")).unwrap_err(),
        ];
        assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:#?}");
        // By identity, not only by name: a hard link to the server's key file placed in the
        // granted directory is refused; an empty file too.
        std::fs::hard_link(own.join("master.key"), granted.join("hard")).unwrap();
        assert!(r(&granted.join("hard")).is_err());
        std::fs::write(granted.join("empty"), "").unwrap();
        assert!(r(&granted.join("empty")).is_err());
        assert!(!refusals[0].contains("own-secret") && !refusals[0].contains("master.key"));
        // A granted directory inside the server's own files is a configuration error.
        let e = ReferencePolicy::new(
            &[grant(&[], &[], &[&own])],
            Protected {
                paths: vec![granted.clone()],
                secrets: Vec::new(),
            },
        )
        .unwrap_err();
        assert!(e.contains("own files"), "{e}");
        assert!(
            ReferencePolicy::new(
                &[grant(&[], &[], &[Path::new("/proc")])],
                Protected::default()
            )
            .is_err()
        );
        assert!(
            ReferencePolicy::new(
                &[grant(&[], &[], &[&root.path().join("nope")])],
                Protected::default()
            )
            .is_err()
        );
    }

    #[test]
    fn a_file_of_the_servers_made_after_start_up_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The data directory does not exist yet when the policy is made, and is reached
        // later through a symbolic link that the protected name does not show.
        let link = dir.path().join("link");
        let policy = ReferencePolicy::new(
            &[grant(&[], &[], &[dir.path()])],
            Protected {
                paths: vec![link.join("data-by-link")],
                secrets: Vec::new(),
            },
        )
        .unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("data-by-link")).unwrap();
        std::fs::write(data.join("bootstrap-token"), "mr_owner\n").unwrap();
        std::fs::write(dir.path().join("fine"), "v\n").unwrap();
        let r = |path: &Path| {
            policy.resolve(
                &org("o"),
                &creds(serde_json::json!({ "k": format!("file:{}", path.display()) })),
            )
        };
        assert!(r(&data.join("bootstrap-token")).is_err());
        assert!(r(&dir.path().join("fine")).is_ok());
    }

    #[test]
    fn resolved_values_too_large_together_are_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::write(dir.path().join(name), "x".repeat(40 * 1024)).unwrap();
        }
        let policy =
            ReferencePolicy::new(&[grant(&[], &[], &[dir.path()])], Protected::default()).unwrap();
        let c = creds(serde_json::json!({
            "a": format!("file:{}", dir.path().join("a").display()),
            "b": format!("file:{}", dir.path().join("b").display()),
        }));
        let (resolved, refused) = policy.resolve_each(&org("o"), &c);
        assert!(resolved.is_none());
        assert!(refused[0].contains("bytes"), "{refused:?}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let policy =
            ReferencePolicy::new(&[grant(&[], &[], &[dir.path()])], Protected::default()).unwrap();
        let c = creds(serde_json::json!({ "k": format!("file:{}", fifo.display()) }));
        assert!(policy.resolve(&org("o"), &c).is_err());
    }
}
