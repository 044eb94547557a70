//! `modelreg catalog`: load a newer cost map into the database (an operator's command, like
//! `keys`), and see or settle the models whose catalog values changed upstream (a client of a
//! running server, like `models`).

use std::path::Path;

use anyhow::Context;
use modelreg_core::{catalog::snapshot_of, store::Store};
use serde_json::{Value, json};

use crate::client::{
    self, Client,
    output::{self, Format},
};

/// The most bytes of a cost map file read.
const MAX_FILE: u64 = modelreg_core::catalog::MAX_COST_MAP_BYTES as u64;

/// Loads `file` as the catalog of every server on `store`, from their next request.
pub async fn refresh(
    store: &dyn Store,
    file: &Path,
    version: Option<&str>,
    date: Option<&str>,
) -> anyhow::Result<()> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    anyhow::ensure!(
        meta.len() <= MAX_FILE,
        "{} holds {} bytes; a cost map may hold at most {MAX_FILE}",
        file.display(),
        meta.len()
    );
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let today = modelreg_core::timestamp::Timestamp::now().to_string();
    let date = date.unwrap_or(&today[..10]);
    if let Err((_, message)) = modelreg_core::validate::date(date.to_owned()) {
        anyhow::bail!("--date {message}");
    }
    let version = version.unwrap_or("unversioned");
    let before = modelreg_core::catalog::catalog_in(store).await?;
    let (catalog, snapshot) = snapshot_of(&bytes, version, date)
        .map_err(|e| anyhow::anyhow!("{} is not a usable cost map: {e}", file.display()))?;
    let (added, removed, changed) = before.compare(&catalog);
    let id = store.add_catalog_snapshot(snapshot).await?;
    let source = catalog.source();
    println!(
        "catalog {id}: {} {} ({}), {} entries, sha256 {}",
        source.name,
        source.version,
        source.date,
        catalog.len(),
        source.sha256
    );
    println!(
        "against the catalog it replaces ({} {}): {added} entries added, {removed} removed, \
         {changed} changed",
        before.source().version,
        before.source().date
    );
    println!(
        "models keep their values until they are taken: see `modelreg catalog diff` \
         (GET /assets/catalog/changes) in each project"
    );
    Ok(())
}

/// Prints the project's models whose catalog values changed upstream; with `settle`, takes or
/// keeps each (guarded by its ETag).
pub async fn diff(
    client: &Client,
    settle: Option<&str>,
    model: Option<&str>,
    format: Format,
) -> client::Result<()> {
    // Every page, or only the model named.
    let mut models: Vec<Value> = Vec::new();
    let mut query = vec![("limit".to_owned(), "1000".to_owned())];
    if let Some(uri) = model {
        query.push(("resource_uri".into(), uri.to_owned()));
    }
    loop {
        let reply = client.get("/assets/catalog/changes", &query).await?;
        models.extend(reply.body["data"].as_array().cloned().unwrap_or_default());
        match reply.body["next_after"].as_str() {
            Some(after) => {
                query.retain(|(k, _)| k != "after");
                query.push(("after".into(), after.to_owned()));
            }
            None => break,
        }
    }
    if let Some(action) = settle {
        let mut settled = Vec::new();
        for m in &models {
            let uri = m["resource_uri"].as_str().unwrap_or_default();
            let path = format!("/assets/catalog/changes/{}", client::segment(uri));
            let etag = m["etag"].as_str();
            client
                .send(
                    reqwest::Method::POST,
                    &path,
                    &[],
                    Some(&json!({"action": action})),
                    etag,
                )
                .await?;
            settled.push(uri.to_owned());
        }
        let verb = if action == "take" { "took" } else { "kept" };
        eprintln!(
            "{verb} the upstream changes of {} model(s){}",
            settled.len(),
            if settled.is_empty() {
                String::new()
            } else {
                format!(": {}", settled.join(", "))
            }
        );
        return Ok(());
    }
    if format != Format::Table {
        return output::print_data(format, &Value::Array(models));
    }
    let rows: Vec<Value> = models
        .iter()
        .flat_map(|m| {
            m["changes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    json!({
                        "resource_uri": m["resource_uri"],
                        "catalog_key": m["catalog_key"],
                        "field": c["field"],
                        "current": c["current"],
                        "upstream": c["upstream"],
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if rows.is_empty() {
        println!("no model's catalog values changed upstream");
        return Ok(());
    }
    println!(
        "{}",
        output::rows_table(
            &rows,
            &[
                ("RESOURCE_URI", "resource_uri"),
                ("CATALOG_KEY", "catalog_key"),
                ("FIELD", "field"),
                ("CURRENT", "current"),
                ("UPSTREAM", "upstream"),
            ],
        )
    );
    println!("take them with --take, or keep the current values with --keep (--model URI for one)");
    Ok(())
}
