//! Records the git commit the crate is built from as `MODELREG_GIT_COMMIT` (for `/metrics`
//! build info and `modelreg --version`). A build outside a git checkout says `unknown`.

use std::process::Command;

fn main() {
    let commit = std::env::var("MODELREG_GIT_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    });
    println!(
        "cargo:rustc-env=MODELREG_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rerun-if-env-changed=MODELREG_GIT_COMMIT");
    // A new commit changes HEAD or the branch it points at.
    if let Ok(top) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
    {
        let dir = String::from_utf8_lossy(&top.stdout).trim().to_owned();
        if !dir.is_empty() {
            // A path named here that does not exist makes cargo rebuild the crate every
            // time, so only existing ones are named (a clone may have no packed-refs). Refs
            // being packed later changes refs/heads, which is watched.
            for path in ["HEAD", "refs/heads", "packed-refs"] {
                let path = std::path::Path::new(&dir).join(path);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
}
