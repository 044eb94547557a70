//! The tenant: an organization, and a project within it. Every store call takes one.

use std::fmt;

const MAX_LEN: usize = 128;

fn check_id(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.chars().count() > MAX_LEN {
        return Err(format!("{what} must be at most {MAX_LEN} characters"));
    }
    if let Some(bad) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(format!(
            "{what} may contain only letters, digits and - _ . : @ (found {bad:?})"
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                check_id($what, s)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An organization id: the tenant. 1–128 characters of `[A-Za-z0-9-_.:@]`.
    OrgId,
    "organization id"
);
id_type!(
    /// A project id within an organization. 1–128 characters of `[A-Za-z0-9-_.:@]`.
    ProjectId,
    "project id"
);

/// The organization and project a request acts in. Store methods take it first, so no query
/// can be written without it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantScope {
    pub org: OrgId,
    pub project: ProjectId,
}

impl TenantScope {
    pub fn new(org: OrgId, project: ProjectId) -> Self {
        Self { org, project }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(OrgId::parse("acme").is_ok());
        assert!(ProjectId::parse("proj_1.a:b@c-d").is_ok());
        for bad in ["", "*", "a b", "a/b", "ä", &"x".repeat(129)] {
            assert!(ProjectId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
