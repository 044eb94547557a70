//! The model's path key: `^[a-z0-9-]+$`, 1–100 characters, unique within a project.

use std::fmt;

use uuid::Uuid;

pub const MAX_LEN: usize = 100;

/// Path segments under `/assets/models/` that are endpoints, not models.
const RESERVED: [&str; 1] = ["verify"];

/// A valid `resource_uri`.
///
/// A value that has the form of a UUID is refused, because the path segment
/// `/assets/models/{key}` accepts either a resource_uri or a model id and the two must never be
/// confused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceUri(String);

impl ResourceUri {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "may contain only lower-case letters a-z, digits and '-' (found {bad:?})"
            ));
        }
        if looks_like_uuid(s) {
            return Err("must not have the form of a UUID; UUIDs are model ids".into());
        }
        if RESERVED.contains(&s) {
            return Err(format!(
                "{s:?} is reserved: /assets/models/{s} is an endpoint"
            ));
        }
        Ok(ResourceUri(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Generates a resource_uri from a model name: lower-case ASCII, every run of other
    /// characters becomes one `-`, trimmed of `-`, cut to 100 characters; empty gives `model`.
    pub fn from_name(name: &str) -> Self {
        let mut slug = String::with_capacity(name.len().min(MAX_LEN));
        let mut pending_dash = false;
        for c in name.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                if pending_dash && !slug.is_empty() {
                    slug.push('-');
                }
                pending_dash = false;
                slug.push(c);
                if slug.len() >= MAX_LEN {
                    break;
                }
            } else {
                pending_dash = true;
            }
        }
        slug.truncate(MAX_LEN);
        let slug = slug.trim_end_matches('-');
        if slug.is_empty() {
            return ResourceUri("model".into());
        }
        if looks_like_uuid(slug) || RESERVED.contains(&slug) {
            // A name that is itself a UUID, or an endpoint's name: keep it distinguishable.
            return ResourceUri::with_suffix_of(slug, 2);
        }
        ResourceUri(slug.to_owned())
    }

    /// The `n`-th candidate for a generated resource_uri whose base is taken: `base-n`, with the
    /// base cut so the whole stays within 100 characters.
    pub fn with_suffix(&self, n: u32) -> Self {
        ResourceUri::with_suffix_of(&self.0, n)
    }

    fn with_suffix_of(base: &str, n: u32) -> Self {
        let suffix = format!("-{n}");
        let keep = MAX_LEN - suffix.len();
        let base = if base.len() > keep {
            &base[..keep]
        } else {
            base
        };
        let base = base.trim_end_matches('-');
        ResourceUri(format!("{base}{suffix}"))
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && Uuid::parse_str(s).is_ok()
}

/// How a request names a model in the path: by resource_uri, or by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelKey {
    Uri(ResourceUri),
    Id(Uuid),
}

impl ModelKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 36
            && let Ok(id) = Uuid::parse_str(s)
        {
            return Ok(ModelKey::Id(id));
        }
        ResourceUri::parse(s).map(ModelKey::Uri)
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelKey::Uri(u) => u.fmt(f),
            ModelKey::Id(id) => id.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_documented_alphabet() {
        for ok in ["a", "gpt-4o", "0-9", "a--b", &"x".repeat(100)] {
            assert!(ResourceUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn parse_rejects_everything_else() {
        for bad in [
            "",
            "GPT",
            "../etc",
            "a/b",
            "a b",
            "é",
            "a_b",
            "a.b",
            &"x".repeat(101),
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "verify",
        ] {
            assert!(ResourceUri::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_from_name() {
        let cases = [
            ("GPT-4o (prod)", "gpt-4o-prod"),
            ("  Claude 3.5 Sonnet!!  ", "claude-3-5-sonnet"),
            ("Ünïcödé model", "n-c-d-model"),
            ("---", "model"),
            ("", "model"),
            ("日本語", "model"),
            ("a__b", "a-b"),
            ("Verify", "verify-2"),
        ];
        for (name, want) in cases {
            assert_eq!(ResourceUri::from_name(name).as_str(), want, "{name:?}");
        }
    }

    #[test]
    fn generated_is_cut_to_100_and_always_valid() {
        let long = "ab ".repeat(100);
        let uri = ResourceUri::from_name(&long);
        assert!(uri.as_str().len() <= 100);
        assert!(!uri.as_str().ends_with('-'));
        assert!(ResourceUri::parse(uri.as_str()).is_ok());
        let suffixed = ResourceUri::from_name(&"z".repeat(150)).with_suffix(12);
        assert_eq!(suffixed.as_str().len(), 100);
        assert!(suffixed.as_str().ends_with("-12"));
        assert!(ResourceUri::parse(suffixed.as_str()).is_ok());
    }

    #[test]
    fn a_uuid_name_does_not_generate_a_uuid_uri() {
        let name = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let uri = ResourceUri::from_name(name);
        assert!(ResourceUri::parse(uri.as_str()).is_ok(), "{uri}");
    }

    #[test]
    fn key_is_id_or_uri() {
        let id = Uuid::now_v7();
        assert_eq!(ModelKey::parse(&id.to_string()), Ok(ModelKey::Id(id)));
        assert!(matches!(ModelKey::parse("gpt-4o"), Ok(ModelKey::Uri(_))));
        assert!(ModelKey::parse("../x").is_err());
    }
}
