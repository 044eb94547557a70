//! The hand-written statements, each written once with `?` placeholders. SQLite runs them as
//! they are; PostgreSQL runs them with `$1`, `$2`, … (`dollar_placeholders`). The dynamic list
//! query is in `list_query.rs`. Where the two really differ, a statement has one text per
//! backend.

use std::sync::LazyLock;

use crate::{
    exec::{Dialect, Sql},
    rows::{FIELD_COLUMNS, model_columns_sql},
};

/// A statement in both placeholder styles.
pub(crate) struct Statement {
    pub sqlite: String,
    pub postgres: String,
}

impl Statement {
    fn new(sql: String) -> Statement {
        Statement {
            postgres: dollar_placeholders(&sql),
            sqlite: sql,
        }
    }

    /// A statement whose text differs by backend beyond its placeholders.
    fn pair(sqlite: String, postgres: String) -> Statement {
        Statement {
            sqlite,
            postgres: dollar_placeholders(&postgres),
        }
    }
}

impl Sql for Statement {
    fn text(&self, dialect: Dialect) -> &str {
        match dialect {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        }
    }
}

impl Sql for LazyLock<Statement> {
    fn text(&self, dialect: Dialect) -> &str {
        Statement::text(self, dialect)
    }
}

/// Rewrites `?` placeholders as PostgreSQL's `$1`, `$2`, …, so each statement is written once.
/// The statements this is used on have no `?` inside literals.
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `(?, ?, …)` for `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    format!("({})", vec!["?"; n].join(", "))
}

macro_rules! statement {
    ($name:ident, $sql:expr) => {
        pub(crate) static $name: LazyLock<Statement> = LazyLock::new(|| Statement::new($sql));
    };
    ($name:ident, sqlite: $sqlite:expr, postgres: $postgres:expr) => {
        pub(crate) static $name: LazyLock<Statement> =
            LazyLock::new(|| Statement::pair($sqlite, $postgres));
    };
}

/// `INSERT INTO models (…) VALUES `: the field columns, then `MODEL_ROW_REST`; one row of
/// values is `writes::model_row`.
pub(crate) static MODELS_INTO: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO models ({}, {MODEL_ROW_REST}) VALUES ",
        FIELD_COLUMNS.join(", ")
    )
});
/// The columns of a new model after its fields.
pub(crate) const MODEL_ROW_REST: &str = "id, organization_id, project_id, resource_uri, \
     created_at, updated_at, created_by, updated_by, credential_fields, credentials_kek_id, \
     credentials, version, catalog";
statement!(
    MODEL_BY_ID,
    format!(
        "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? AND id = ?",
        model_columns_sql()
    )
);
/// The project's models that `condition` (with `?` placeholders, after the organization's and
/// the project's) selects, for `dialect`.
pub(crate) fn models_where(condition: &str, dialect: crate::exec::Dialect) -> String {
    let statement = format!(
        "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? AND ({condition})",
        model_columns_sql()
    );
    match dialect {
        crate::exec::Dialect::Sqlite => statement,
        crate::exec::Dialect::Postgres => dollar_placeholders(&statement),
    }
}
statement!(
    MODEL_BY_URI,
    format!(
        "SELECT {} FROM models WHERE organization_id = ? AND project_id = ? AND resource_uri = ?",
        model_columns_sql()
    )
);
statement!(
    UPDATE_MODEL,
    format!(
        "UPDATE models SET {}, catalog = ?, updated_at = ?, updated_by = ?, \
         version = version + 1 \
         WHERE organization_id = ? AND project_id = ? AND id = ? AND version = ?",
        FIELD_COLUMNS
            .iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(", ")
    )
);
statement!(
    UPDATE_CREDENTIALS,
    "UPDATE models SET credential_fields = ?, credentials_kek_id = ?, credentials = ? \
     WHERE organization_id = ? AND project_id = ? AND id = ?"
        .to_owned()
);
statement!(
    DELETE_MODEL,
    "DELETE FROM models WHERE organization_id = ? AND project_id = ? AND id = ? \
     AND (? IS NULL OR version = ?) RETURNING resource_uri"
        .to_owned()
);
statement!(
    URIS_IN_RANGE,
    "SELECT resource_uri FROM models WHERE organization_id = ? AND project_id = ? \
     AND resource_uri >= ? AND resource_uri < ?"
        .to_owned()
);
statement!(
    GENERATION_GET,
    "SELECT generation FROM model_counts WHERE organization_id = ? AND project_id = ?".to_owned()
);
// One row per project, read by the primary key's prefix: its cost is the organization's
// projects, never its models.
statement!(
    ORG_PROJECTS,
    "SELECT project_id FROM model_counts WHERE organization_id = ? AND models > 0 \
     ORDER BY project_id LIMIT ?"
        .to_owned()
);
statement!(
    SEALED_AFTER,
    "SELECT id, organization_id, project_id, credential_fields, credentials_kek_id, credentials \
     FROM models WHERE (? IS NULL OR id > ?) AND (? IS NULL OR credentials_kek_id <> ?) \
     ORDER BY id LIMIT ?"
        .to_owned()
);
statement!(
    REPLACE_SEALED,
    "UPDATE models SET credentials_kek_id = ?, credentials = ? \
     WHERE organization_id = ? AND project_id = ? AND id = ? \
     AND credentials_kek_id = ? AND credentials = ?"
        .to_owned()
);
statement!(
    COUNT_BY_KEK,
    "SELECT credentials_kek_id, COUNT(*) AS n FROM models GROUP BY credentials_kek_id ORDER BY 1"
        .to_owned()
);
statement!(
    COUNT_BY_STATUS_PROVIDER,
    "SELECT status, provider, COUNT(*) AS n FROM models GROUP BY status, provider ORDER BY 1, 2"
        .to_owned()
);
statement!(
    RECORD_VERIFICATION,
    "UPDATE models SET \
     status = CASE WHEN status IN ('DEPRECATED', 'DISABLED') THEN status ELSE ? END, \
     status_message = CASE WHEN status IN ('DEPRECATED', 'DISABLED') THEN status_message ELSE ? END, \
     last_verified_at = ?, version = version + 1 \
     WHERE organization_id = ? AND project_id = ? AND id = ?"
        .to_owned()
);
// Leases due models. PostgreSQL skips rows another replica is leasing right now; SQLite's one
// writer needs no such care.
statement!(
    CLAIM_CHECKS,
    sqlite: claim_checks("ORDER BY next_check_at IS NOT NULL, next_check_at LIMIT ?"),
    postgres: claim_checks("ORDER BY next_check_at NULLS FIRST LIMIT ? FOR UPDATE SKIP LOCKED")
);

fn claim_checks(order_and_lock: &str) -> String {
    format!(
        "UPDATE models SET check_lease_owner = ?, check_lease_until = ? WHERE id IN ( \
         SELECT id FROM models WHERE status IN ('PENDING', 'ACTIVE', 'ERROR') \
         AND (next_check_at IS NULL OR next_check_at <= ?) \
         AND (check_lease_until IS NULL OR check_lease_until < ?) {order_and_lock}) \
         RETURNING {}, check_failures",
        model_columns_sql()
    )
}
statement!(
    FINISH_CHECK,
    "UPDATE models SET check_lease_owner = NULL, check_lease_until = NULL, next_check_at = ?, \
     check_failures = CASE WHEN ? THEN 0 ELSE check_failures + 1 END \
     WHERE organization_id = ? AND project_id = ? AND id = ? AND check_lease_owner = ?"
        .to_owned()
);
statement!(
    AUDIT_LAST,
    "SELECT seq, hash FROM audit_events WHERE organization_id = ? ORDER BY seq DESC LIMIT 1"
        .to_owned()
);
pub(crate) const AUDIT_INTO: &str = "INSERT INTO audit_events (id, organization_id, seq, at, \
     principal, on_behalf_of, action, project_id, model_id, resource_uri, request_id, changes, \
     prev_hash, hash) VALUES ";
/// Filters shared by the history and audit queries: `(? IS NULL OR col = ?)` pairs.
const AUDIT_FILTER: &str = "(? IS NULL OR action = ?) AND (? IS NULL OR resource_uri = ?) \
     AND (? IS NULL OR principal = ? OR on_behalf_of = ?) AND (? IS NULL OR at >= ?) \
     AND (? IS NULL OR at <= ?)";
statement!(
    AUDIT_PAGE,
    format!(
        "SELECT * FROM audit_events WHERE organization_id = ? AND {AUDIT_FILTER} \
         ORDER BY seq DESC LIMIT ? OFFSET ?"
    )
);
statement!(
    AUDIT_COUNT,
    format!("SELECT COUNT(*) AS n FROM audit_events WHERE organization_id = ? AND {AUDIT_FILTER}")
);
statement!(
    HISTORY_PAGE,
    "SELECT * FROM audit_events WHERE organization_id = ? AND project_id = ? \
     AND (resource_uri = ? OR model_id = ?) ORDER BY seq DESC LIMIT ? OFFSET ?"
        .to_owned()
);
statement!(
    HISTORY_COUNT,
    "SELECT COUNT(*) AS n FROM audit_events WHERE organization_id = ? AND project_id = ? \
     AND (resource_uri = ? OR model_id = ?)"
        .to_owned()
);
statement!(
    AUDIT_ORGS,
    "SELECT DISTINCT organization_id FROM audit_events ORDER BY 1".to_owned()
);
statement!(
    AUDIT_CHAIN,
    "SELECT * FROM audit_events WHERE organization_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        .to_owned()
);
statement!(
    INSERT_TOKEN,
    "INSERT INTO api_tokens (id, name, token_hash, organization_id, project_id, role, created_at, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        .to_owned()
);
statement!(
    TOKEN_BY_HASH,
    "SELECT t.*, (SELECT c.generation FROM model_counts c \
     WHERE c.organization_id = t.organization_id AND c.project_id = t.project_id) \
     AS project_generation \
     FROM api_tokens t WHERE t.token_hash = ? AND t.revoked_at IS NULL"
        .to_owned()
);
statement!(
    LIST_TOKENS,
    "SELECT * FROM api_tokens ORDER BY created_at, id".to_owned()
);
statement!(
    ORG_TOKENS,
    "SELECT * FROM api_tokens WHERE organization_id = ? ORDER BY created_at, id".to_owned()
);
statement!(
    REVOKE_ORG_TOKEN,
    "UPDATE api_tokens SET revoked_at = ? WHERE organization_id = ? AND name = ? AND revoked_at IS NULL"
        .to_owned()
);
statement!(
    TOUCH_TOKEN,
    "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"
        .to_owned()
);
statement!(
    APPLIED_MIGRATIONS,
    "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success".to_owned()
);

/// Every candidate generated from `base` starts with its first 89 characters (a suffix is at
/// most 11), so one range query finds all the taken ones: `[prefix, prefix + U+10FFFF)`.
pub(crate) fn uri_range(base: &str) -> (String, String) {
    let prefix: String = base.chars().take(89).collect();
    let end = format!("{prefix}\u{10FFFF}");
    (prefix, end)
}

/// The smallest free `base`, `base-2`, `base-3`, … given the taken uris.
pub(crate) fn first_free(
    base: &modelreg_core::resource_uri::ResourceUri,
    taken: &[String],
) -> modelreg_core::resource_uri::ResourceUri {
    if !taken.iter().any(|t| t == base.as_str()) {
        return base.clone();
    }
    (2u32..)
        .map(|n| base.with_suffix(n))
        .find(|c| !taken.iter().any(|t| t == c.as_str()))
        .expect("a free suffix exists")
}
statement!(
    FORGET_REPLICA,
    "DELETE FROM replicas WHERE replica = ?".to_owned()
);
// Heartbeats. PostgreSQL stamps them with its own clock, so replicas on hosts whose clocks
// disagree still agree on which are alive; SQLite is one host's file, whose clock every
// process shares, and is given the time.
const REPLICA_COLUMNS: &str = "replica, kek_ids, seal_kek_id, seen_at, live_until";
const REPLICA_UPSERT: &str = "ON CONFLICT (replica) DO UPDATE SET kek_ids = excluded.kek_ids, \
     seal_kek_id = excluded.seal_kek_id, seen_at = excluded.seen_at, \
     live_until = excluded.live_until";
statement!(
    REPLICA_HEARTBEAT,
    sqlite: format!("INSERT INTO replicas ({REPLICA_COLUMNS}) VALUES (?, ?, ?, ?, ?) {REPLICA_UPSERT}"),
    postgres: format!(
        "INSERT INTO replicas ({REPLICA_COLUMNS}) \
         VALUES (?, ?, ?, now(), now() + make_interval(secs => ?)) {REPLICA_UPSERT}"
    )
);
statement!(
    FORGET_OLD_REPLICAS,
    sqlite: "DELETE FROM replicas WHERE seen_at < ?".to_owned(),
    postgres: "DELETE FROM replicas WHERE seen_at < now() - interval '1 day'".to_owned()
);
statement!(
    LIVE_REPLICAS,
    sqlite: format!("SELECT {REPLICA_COLUMNS} FROM replicas WHERE live_until >= ? ORDER BY replica"),
    postgres: format!(
        "SELECT {REPLICA_COLUMNS} FROM replicas WHERE live_until >= now() ORDER BY replica"
    )
);

// The catalog (store/catalog.rs).
statement!(
    CATALOG_HEAD,
    "SELECT MAX(id) AS id FROM catalog_snapshots".to_owned()
);
statement!(
    CATALOG_SNAPSHOT,
    "SELECT id, source, version, date, sha256, loaded_at, entries, body \
     FROM catalog_snapshots WHERE id = ?"
        .to_owned()
);
statement!(
    CATALOG_ADD,
    "INSERT INTO catalog_snapshots (source, version, date, sha256, loaded_at, entries, body) \
     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
        .to_owned()
);
