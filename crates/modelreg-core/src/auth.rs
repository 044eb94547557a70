//! Who is calling, and what their role lets them do (SPEC §3).

use std::{collections::BTreeMap, fmt};

use crate::tenant::{OrgId, ProjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Owner,
    Admin,
    Member,
    Developer,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Admin,
        Role::Member,
        Role::Developer,
        Role::Operator,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Developer => "developer",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }

    /// The role matrix of SPEC §3.
    pub fn allows(self, action: Action) -> bool {
        use Role::*;
        match action {
            Action::Read => true,
            Action::Verify => !matches!(self, Viewer),
            Action::Write => matches!(self, Owner | Admin | Member | Developer),
            Action::Delete | Action::Audit | Action::ManageTokens => matches!(self, Owner | Admin),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// list, get, history, /v1/models
    Read,
    /// both verify endpoints
    Verify,
    /// create, update (including credentials and status)
    Write,
    Delete,
    /// the organization's audit log
    Audit,
    /// the organization's API tokens
    ManageTokens,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::Read => "read models",
            Action::Verify => "verify models",
            Action::Write => "create or update models",
            Action::Delete => "delete models",
            Action::Audit => "read the organization's audit log",
            Action::ManageTokens => "manage the organization's API tokens",
        }
    }
}

/// Which project a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectGrant {
    All,
    One(ProjectId),
}

impl ProjectGrant {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "*" {
            Ok(ProjectGrant::All)
        } else {
            ProjectId::parse(s).map(ProjectGrant::One)
        }
    }
}

impl fmt::Display for ProjectGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectGrant::All => f.write_str("*"),
            ProjectGrant::One(p) => p.fmt(f),
        }
    }
}

/// The kind of bearer credential a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An API token (`mr_…`), minted by modelreg.
    ApiToken,
    /// A JWT: HS256 with the configured secret, or signed by an identity provider.
    Jwt,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::ApiToken => "token",
            Credential::Jwt => "jwt",
        }
    }
}

/// An authenticated caller: its organization, its principal name as recorded in
/// `created_by`/`updated_by` (`user:<name>` or `service:<name>`), and its roles by project.
#[derive(Debug, Clone)]
pub struct Identity {
    pub org: OrgId,
    pub principal: String,
    /// What the caller authenticated with.
    pub credential: Credential,
    pub grants: BTreeMap<ProjectGrant, Role>,
    /// A project's generation, read together with the credential (API tokens of one project).
    pub project_generation: Option<(ProjectId, i64)>,
}

impl Identity {
    /// The role in `project`: a grant for that project wins over the `*` grant.
    pub fn role_in(&self, project: &ProjectId) -> Option<Role> {
        self.grants
            .get(&ProjectGrant::One(project.clone()))
            .or_else(|| self.grants.get(&ProjectGrant::All))
            .copied()
    }

    /// The role for all projects (`*`), if it allows `action`: what the organization's own
    /// actions (its audit log, its tokens) need.
    pub fn org_role_allowing(&self, action: Action) -> Option<Role> {
        self.grants
            .get(&ProjectGrant::All)
            .copied()
            .filter(|r| r.allows(action))
    }

    /// The projects this caller can reach, each with the role that applies there (a grant for
    /// the project beats `*`), sorted: the projects its grants name, and with a `*` grant also
    /// `org_projects`, the organization's projects that the caller's grants do not name.
    pub fn reachable_projects(
        &self,
        org_projects: impl IntoIterator<Item = ProjectId>,
    ) -> Vec<(ProjectId, Role)> {
        let named = self.grants.keys().filter_map(|g| match g {
            ProjectGrant::One(p) => Some(p.clone()),
            ProjectGrant::All => None,
        });
        let wildcard = self.grants.contains_key(&ProjectGrant::All);
        let projects: std::collections::BTreeSet<ProjectId> = named
            .chain(org_projects.into_iter().filter(|_| wildcard))
            .collect();
        projects
            .into_iter()
            .filter_map(|p| self.role_in(&p).map(|role| (p, role)))
            .collect()
    }

    /// The project to use when the request names none: the only project of a caller bound to
    /// exactly one.
    pub fn sole_project(&self) -> Option<&ProjectId> {
        let mut it = self.grants.keys();
        match (it.next(), it.next()) {
            (Some(ProjectGrant::One(p)), None) => Some(p),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_matrix() {
        use Action::*;
        let want: [(Role, [bool; 6]); 6] = [
            (Role::Owner, [true, true, true, true, true, true]),
            (Role::Admin, [true, true, true, true, true, true]),
            (Role::Member, [true, true, true, false, false, false]),
            (Role::Developer, [true, true, true, false, false, false]),
            (Role::Operator, [true, true, false, false, false, false]),
            (Role::Viewer, [true, false, false, false, false, false]),
        ];
        let actions = [Read, Verify, Write, Delete, Audit, ManageTokens];
        for (role, row) in want {
            for (action, allowed) in actions.into_iter().zip(row) {
                assert_eq!(role.allows(action), allowed, "{role} {action:?}");
            }
        }
    }

    #[test]
    fn specific_grant_beats_wildcard() {
        let p = ProjectId::parse("p1").unwrap();
        let id = Identity {
            org: OrgId::parse("o").unwrap(),
            principal: "user:a".into(),
            credential: Credential::Jwt,
            grants: [
                (ProjectGrant::All, Role::Viewer),
                (ProjectGrant::One(p.clone()), Role::Admin),
            ]
            .into(),
            project_generation: None,
        };
        assert_eq!(id.role_in(&p), Some(Role::Admin));
        assert_eq!(
            id.role_in(&ProjectId::parse("p2").unwrap()),
            Some(Role::Viewer)
        );
        assert_eq!(id.sole_project(), None);
    }

    #[test]
    fn reachable_projects_name_the_grants_and_with_a_wildcard_the_organizations() {
        let p = |s: &str| ProjectId::parse(s).unwrap();
        let identity = |grants: &[(&str, Role)]| Identity {
            org: OrgId::parse("o").unwrap(),
            principal: "user:a".into(),
            credential: Credential::Jwt,
            grants: grants
                .iter()
                .map(|(g, r)| (ProjectGrant::parse(g).unwrap(), *r))
                .collect(),
            project_generation: None,
        };
        let org = || [p("b"), p("a"), p("c")];
        // Bound to projects: those alone, whatever the organization has.
        let bound = identity(&[("z", Role::Viewer), ("a", Role::Member)]);
        assert_eq!(
            bound.reachable_projects(org()),
            [(p("a"), Role::Member), (p("z"), Role::Viewer)]
        );
        // `*`: the organization's, sorted, and a project named in a grant beats `*`, with or
        // without models.
        let all = identity(&[
            ("*", Role::Viewer),
            ("b", Role::Admin),
            ("new", Role::Owner),
        ]);
        assert_eq!(
            all.reachable_projects(org()),
            [
                (p("a"), Role::Viewer),
                (p("b"), Role::Admin),
                (p("c"), Role::Viewer),
                (p("new"), Role::Owner),
            ]
        );
        assert!(identity(&[]).reachable_projects(org()).is_empty());
    }
}

/// A new API token secret: `mr_` and 256 random bits, base64url. Only its hash is stored.
pub fn generate_token() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    crate::secrets::fill_random(bytes.as_mut_slice());
    format!("mr_{}", URL_SAFE_NO_PAD.encode(bytes.as_slice()))
}

/// The stored form of an API token. Tokens carry 256 bits of entropy, so a plain SHA-256 is
/// enough: there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with("mr_") && a.len() == 3 + 43, "{a}");
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }
}
