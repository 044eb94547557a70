//! `modelreg token create|list|revoke`: administration of API tokens, straight against the
//! database (it works while the server runs).

use std::path::Path;

use anyhow::{Context, bail};
use modelreg_core::{
    auth::{ProjectGrant, Role, generate_token, hash_token},
    store::NewToken,
    tenant::OrgId,
};

use crate::{TokenCommand, config::Config, overrides};

pub async fn run(file: Option<&Path>, cmd: TokenCommand) -> anyhow::Result<()> {
    let storage = match &cmd {
        TokenCommand::Create { storage, .. }
        | TokenCommand::List { storage, .. }
        | TokenCommand::Revoke { storage, .. } => storage.clone(),
    };
    let config = Config::load(file, overrides(&storage))?;
    crate::telemetry::init(&config.log_format, "warn");
    let store = config.open_store().await?;
    let result = async {
        match cmd {
            TokenCommand::Create {
                org,
                project,
                role,
                name,
                ..
            } => {
                let org = OrgId::parse(&org).map_err(anyhow::Error::msg).context("--org")?;
                let project = ProjectGrant::parse(&project)
                    .map_err(anyhow::Error::msg)
                    .context("--project")?;
                let role = Role::parse(&role).with_context(|| {
                    format!(
                        "--role must be one of {}",
                        Role::ALL.map(|r| r.as_str()).join(", ")
                    )
                })?;
                check_name(&name)?;
                let token = generate_token();
                let created = store
                    .insert_token(NewToken {
                        name,
                        org,
                        project,
                        role,
                        hash: hash_token(&token),
            expires_at: None,
                    })
                    .await?;
                eprintln!(
                    "created token '{}' (organization {}, project {}, role {}); it is shown only once:",
                    created.name, created.org, created.project, created.role
                );
                println!("{token}");
                Ok(())
            }
            TokenCommand::List { json, .. } => {
                let tokens = store.list_tokens().await?;
                if json {
                    let list: Vec<_> = tokens
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "name": t.name, "organization_id": t.org.as_str(),
                                "project": t.project.to_string(), "role": t.role.as_str(),
                                "created_at": t.created_at.to_string(),
                                "revoked_at": t.revoked_at.map(|r| r.to_string()),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    let rows: Vec<[String; 6]> = tokens
                        .iter()
                        .map(|t| {
                            [
                                t.name.clone(),
                                t.org.to_string(),
                                t.project.to_string(),
                                t.role.to_string(),
                                t.created_at.to_string(),
                                t.revoked_at.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                            ]
                        })
                        .collect();
                    print_table(["NAME", "ORG", "PROJECT", "ROLE", "CREATED", "REVOKED"], &rows);
                }
                Ok(())
            }
            TokenCommand::Revoke { name, org, .. } => {
                // Names are unique per organization: without --org, the name must be active
                // in exactly one.
                let org = match org {
                    Some(org) => OrgId::parse(&org).map_err(anyhow::Error::msg).context("--org")?,
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
        bail!("--name must be 1-100 characters of letters, digits, '-', '_' and '.'");
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
