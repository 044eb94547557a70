//! The audit trail (SPEC §7): an event for every create, update, credentials change, delete
//! and verification, written in the same transaction as the change. Events of an
//! organization form a hash chain: each event's hash covers its content and the previous
//! event's hash, so a changed, removed or inserted event shows.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{model::ModelFields, timestamp::Timestamp};

/// The hash before an organization's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Update,
    Credentials,
    Delete,
    Verify,
}

impl AuditAction {
    pub const ALL: [AuditAction; 5] = [
        AuditAction::Create,
        AuditAction::Update,
        AuditAction::Credentials,
        AuditAction::Delete,
        AuditAction::Verify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "model.create",
            AuditAction::Update => "model.update",
            AuditAction::Credentials => "model.credentials",
            AuditAction::Delete => "model.delete",
            AuditAction::Verify => "model.verify",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What the service tells the store to record with a change. The store adds the tenant, the
/// model, the time, the sequence number and the hashes.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub action: AuditAction,
    pub principal: String,
    pub on_behalf_of: Option<String>,
    pub request_id: Option<String>,
    /// Per changed field `{"from": …, "to": …}`; credentials only as `{"changed": true}`.
    pub changes: Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: Uuid,
    pub organization_id: String,
    pub seq: i64,
    pub at: Timestamp,
    pub principal: String,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub project_id: String,
    pub model_id: Uuid,
    pub resource_uri: String,
    pub request_id: Option<String>,
    pub changes: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// The hash this event must have: SHA-256 over its content and the previous hash.
    pub fn compute_hash(&self) -> String {
        let content = json!([
            self.prev_hash,
            self.organization_id,
            self.seq,
            self.at.to_string(),
            self.principal,
            self.on_behalf_of,
            self.action,
            self.project_id,
            self.model_id.to_string(),
            self.resource_uri,
            self.request_id,
            self.changes,
        ]);
        Sha256::digest(content.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Each declared field's value, in declaration order (`with_model_fields!`).
macro_rules! audit_field_values {
    ($($(#[$doc:meta])* $name:ident : $ty:ty [$($how:tt)*]),* $(,)?) => {
        fn field_values(f: &ModelFields) -> Vec<(&'static str, Value)> {
            vec![$((stringify!($name), json!(f.$name)),)*]
        }
    };
}
crate::with_model_fields!(audit_field_values);

/// `{field: {from, to}}` for each field that differs; `None` stands for no model (before a
/// create, after a delete). `credentials_changed` adds `credentials: {changed: true}`.
pub fn diff(
    before: Option<&ModelFields>,
    after: Option<&ModelFields>,
    credentials_changed: bool,
) -> Value {
    let b = before.map(field_values).unwrap_or_default();
    let a = after.map(field_values).unwrap_or_default();
    let mut out = Map::new();
    let names: Vec<&str> = b.iter().chain(a.iter()).map(|(n, _)| *n).collect();
    for name in names {
        if out.contains_key(name) {
            continue;
        }
        let from = b
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        let to = a
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if from != to {
            out.insert(name.to_owned(), json!({"from": from, "to": to}));
        }
    }
    if credentials_changed {
        out.insert("credentials".into(), json!({"changed": true}));
    }
    Value::Object(out)
}

/// The first event of `events` (in sequence order, all of one organization, starting after
/// `prev_hash`) whose link is broken, with the reason.
pub fn first_broken(prev_hash: &str, events: &[AuditEvent]) -> Option<(i64, String)> {
    let mut prev = prev_hash.to_owned();
    for e in events {
        if e.prev_hash != prev {
            return Some((e.seq, "does not point at the previous event's hash".into()));
        }
        if e.compute_hash() != e.hash {
            return Some((e.seq, "its content does not match its hash".into()));
        }
        prev = e.hash.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn fields() -> ModelFields {
        ModelFields {
            provider: Some("openai".into()),
            ..ModelFields::new("n", "openai/gpt-4o")
        }
    }

    #[test]
    fn diffs_name_only_what_changed() {
        let a = fields();
        let mut b = fields();
        b.rpm = Some(5);
        b.status = Status::Active;
        assert_eq!(
            diff(Some(&a), Some(&b), true),
            json!({"rpm": {"from": null, "to": 5}, "status": {"from": "PENDING", "to": "ACTIVE"},
                   "credentials": {"changed": true}})
        );
        let created = diff(None, Some(&a), true);
        assert_eq!(created["name"], json!({"from": null, "to": "n"}));
        assert!(
            created.get("description").is_none(),
            "null to null is no change"
        );
        let deleted = diff(Some(&a), None, false);
        assert_eq!(
            deleted["litellm_model"],
            json!({"from": "openai/gpt-4o", "to": null})
        );
    }

    #[test]
    fn the_chain_shows_tampering() {
        let mut events = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=3 {
            let mut e = AuditEvent {
                id: Uuid::now_v7(),
                organization_id: "o".into(),
                seq,
                at: Timestamp::now(),
                principal: "user:a".into(),
                on_behalf_of: None,
                action: "model.update".into(),
                project_id: "p".into(),
                model_id: Uuid::nil(),
                resource_uri: "m".into(),
                request_id: None,
                changes: json!({"rpm": {"from": seq, "to": seq + 1}}),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = e.compute_hash();
            prev = e.hash.clone();
            events.push(e);
        }
        assert_eq!(first_broken(GENESIS, &events), None);
        let mut edited = events.clone();
        edited[1].principal = "user:mallory".into();
        assert_eq!(first_broken(GENESIS, &edited).unwrap().0, 2);
        let mut removed = events.clone();
        removed.remove(1);
        assert_eq!(first_broken(GENESIS, &removed).unwrap().0, 3);
    }
}
