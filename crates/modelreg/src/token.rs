//! `modelreg token create|list|revoke`: administration of API tokens, straight against the
//! database (it works while the server runs).

use std::{path::Path, time::Duration};

use anyhow::bail;
use modelreg_api::admin::TokenView;
use modelreg_core::{
    auth::{ProjectGrant, Role, generate_token, hash_token},
    store::{ApiToken, NewToken},
    tenant::OrgId,
    timestamp::Timestamp,
};

use crate::{
    TokenCommand,
    client::{ClientError, Format, to_yaml},
    config_file, load_config, overrides,
};

/// `--expires`: a time from now (`30d`, `12h`, `90m`, `2w`, `3600s`) or an RFC 3339 time; in
/// the future either way.
pub fn parse_expiry(s: &str) -> Result<Timestamp, String> {
    const UNITS: [(&str, u64); 5] = [
        ("s", 1),
        ("m", 60),
        ("h", 3600),
        ("d", 86_400),
        ("w", 604_800),
    ];
    // Far enough for any token, near enough that the time never overflows.
    const MAX: u64 = 100 * 366 * 86_400;
    let now = Timestamp::now();
    let at = match Timestamp::parse(s) {
        Some(at) => at,
        None => {
            let bad = || {
                format!(
                    "{s:?} is neither a time from now (a number and s, m, h, d or w, e.g. 30d) \
                     nor an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)"
                )
            };
            let digits = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let (n, unit) = s.split_at(digits);
            let n: u64 = n.parse().map_err(|_| bad())?;
            let (_, per) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
            let secs = n.saturating_mul(*per);
            if secs > MAX {
                return Err(format!("{s:?} is more than 100 years away"));
            }
            now.plus(Duration::from_secs(secs))
        }
    };
    if at <= now {
        return Err(format!("{s:?} is not in the future"));
    }
    Ok(at)
}

fn usage(flag: &str, message: impl std::fmt::Display) -> anyhow::Error {
    ClientError::usage(format!("{flag}: {message}")).into()
}

pub async fn run(ahead: Option<&Path>, cmd: TokenCommand) -> anyhow::Result<()> {
    let storage = match &cmd {
        TokenCommand::Create { storage, .. }
        | TokenCommand::List { storage, .. }
        | TokenCommand::Revoke { storage, .. } => storage.clone(),
    };
    // Usage is checked before the database is opened (which would create it).
    let grant = match &cmd {
        TokenCommand::Create {
            org,
            project,
            role,
            name,
            ..
        } => {
            check_name(name)?;
            Some((
                OrgId::parse(org).map_err(|m| usage("--org", m))?,
                ProjectGrant::parse(project).map_err(|m| usage("--project", m))?,
                Role::parse(role).ok_or_else(|| usage("--role", "unknown role"))?,
            ))
        }
        _ => None,
    };
    let config = load_config(config_file(ahead, &storage).as_deref(), overrides(&storage))?;
    crate::telemetry::init(&config.log_format, "warn");
    let store = config.open_store().await?;
    let result = async {
        match cmd {
            TokenCommand::Create { name, expires, .. } => {
                let (org, project, role) = grant.expect("parsed above");
                let token = generate_token();
                let created = store
                    .insert_token(NewToken {
                        name,
                        org,
                        project,
                        role,
                        hash: hash_token(&token),
                        expires_at: expires,
                    })
                    .await?;
                let until = match created.expires_at {
                    Some(at) => format!("expires {at}"),
                    None => "never expires".to_owned(),
                };
                let (name, org, project, role) =
                    (&created.name, &created.org, &created.project, &created.role);
                eprintln!(
                    "created token '{name}' (organization {org}, project {project}, role {role}, \
                     {until}); it is shown only once:"
                );
                println!("{token}");
                Ok(())
            }
            TokenCommand::List { output, json, .. } => {
                if json {
                    eprintln!("warning: --json is deprecated; use -o json");
                }
                let format = if json { Format::Json } else { output };
                print_list(&store.list_tokens().await?, format)
            }
            TokenCommand::Revoke { name, org, .. } => {
                // Names are unique per organization: without --org, the name must be active
                // in exactly one.
                let org = match org {
                    Some(org) => OrgId::parse(&org).map_err(|m| usage("--org", m))?,
                    None => {
                        let mut orgs: Vec<OrgId> = store
                            .list_tokens()
                            .await?
                            .into_iter()
                            .filter(|t| t.name == name && t.revoked_at.is_none())
                            .map(|t| t.org)
                            .collect();
                        match orgs.len() {
                            0 => bail!("no active token named '{name}'"),
                            1 => orgs.remove(0),
                            _ => bail!(
                                "organizations {} each have a token named '{name}'; say which with --org",
                                orgs.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        }
                    }
                };
                if store.revoke_org_token(&org, &name).await? {
                    println!("revoked token '{name}' of organization {org}");
                    Ok(())
                } else {
                    bail!("no active token named '{name}' in organization {org}")
                }
            }
        }
    }
    .await;
    store.close().await;
    result
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(usage(
            "--name",
            "must be 1-100 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// `token list`: JSON and YAML in the shape of the API's token list (GET /admin/tokens).
fn print_list(tokens: &[ApiToken], format: Format) -> anyhow::Result<()> {
    let views: Vec<TokenView> = tokens.iter().map(TokenView::from).collect();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&views)?),
        Format::Yaml => print!("{}", to_yaml(&views)?),
        Format::Table => {
            let or_dash = |t: Option<String>| t.unwrap_or_else(|| "-".into());
            let rows: Vec<[String; 8]> = views
                .into_iter()
                .map(|t| {
                    [
                        t.name,
                        t.organization_id,
                        t.project,
                        t.role,
                        t.created_at,
                        or_dash(t.expires_at),
                        or_dash(t.last_used_at),
                        or_dash(t.revoked_at),
                    ]
                })
                .collect();
            let header = [
                "NAME",
                "ORG",
                "PROJECT",
                "ROLE",
                "CREATED",
                "EXPIRES",
                "LAST USED",
                "REVOKED",
            ];
            print_table(header, &rows);
        }
    }
    Ok(())
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_time_from_now_or_an_rfc_3339_time_in_the_future() {
        let now = Timestamp::now();
        let day = parse_expiry("1d").unwrap();
        assert!(day > now.plus(Duration::from_secs(86_399)));
        assert!(day <= Timestamp::now().plus(Duration::from_secs(86_400)));
        for ok in ["90s", "15m", "12h", "30d", "2w", "36500d"] {
            assert!(parse_expiry(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            parse_expiry("2100-01-01T01:00:00+01:00")
                .unwrap()
                .to_string(),
            "2100-01-01T00:00:00.000000Z"
        );
        for bad in [
            "",
            "30",
            "d",
            "1y",
            "1.5h",
            "-5h",
            "5 h",
            "0s",
            "99999999999999999999d",
            "40000d",
            "2000-01-01T00:00:00Z",
            "tomorrow",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad:?}");
        }
    }
}
