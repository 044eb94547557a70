//! `modelreg export --format litellm` and `modelreg import`: LiteLLM proxy `config.yaml` files
//! (docs/litellm.md). The mapping itself is `modelreg_core::litellm`.

use std::{
    collections::{BTreeSet, HashMap},
    io::{IsTerminal, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use indicatif::{ProgressBar, ProgressStyle};
use modelreg_core::{
    catalog::EntryValues,
    litellm::{self, EnvVar, ImportItem, Wanted, same_value},
    model::{ModelCreate, ModelUpdate, Status},
    validate::{self, infer_provider},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Client, ClientError, Result, models::Filters, segment, yaml};

/// The top-level sections of a LiteLLM config that are not models: reported, not imported.
const OTHER_SECTIONS: [&str; 5] = [
    "litellm_settings",
    "general_settings",
    "router_settings",
    "environment_variables",
    "credential_list",
];

// ---------------------------------------------------------------------------------------
// Export

/// What an export wrote.
pub struct Exported {
    pub config: Value,
    pub env: Vec<EnvVar>,
    pub skipped_disabled: u64,
    pub unreadable: Vec<String>,
}

/// The config as YAML: entries keep LiteLLM's key order (`model_name`, `litellm_params`
/// with `model` first, `model_info` with `id` first), with a header saying where it came
/// from. Every string is quoted, so LiteLLM's YAML 1.1 reader takes it as the string it is
/// (see `yaml`).
pub fn config_yaml(exported: &Exported, source: &str) -> Result<String> {
    let mut list = Vec::new();
    for entry in exported.config["model_list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut e = serde_norway::Mapping::new();
        e.insert("model_name".into(), yaml(&entry["model_name"])?);
        let mut params = serde_norway::Mapping::new();
        if let Some(p) = entry["litellm_params"].as_object() {
            params.insert("model".into(), yaml(&p["model"])?);
            for (k, v) in p.iter().filter(|(k, _)| *k != "model") {
                params.insert(k.as_str().into(), yaml(v)?);
            }
        }
        e.insert("litellm_params".into(), params.into());
        if let Some(info) = entry["model_info"].as_object().filter(|i| !i.is_empty()) {
            let mut m = serde_norway::Mapping::new();
            if let Some(id) = info.get("id") {
                m.insert("id".into(), yaml(id)?);
            }
            for (k, v) in info.iter().filter(|(k, _)| *k != "id") {
                m.insert(k.as_str().into(), yaml(v)?);
            }
            e.insert("model_info".into(), m.into());
        }
        list.push(serde_norway::Value::Mapping(e));
    }
    let mut doc = serde_norway::Mapping::new();
    doc.insert("model_list".into(), serde_norway::Value::Sequence(list));
    let mut out = format!(
        "# LiteLLM proxy config exported by modelreg {} from {source}.\n\
         # Credentials are os.environ/ references; .env.example names each variable.\n",
        env!("CARGO_PKG_VERSION")
    );
    if exported.skipped_disabled > 0 {
        out.push_str(&format!(
            "# {} DISABLED model(s) left out.\n",
            exported.skipped_disabled
        ));
    }
    out.push_str(&yaml::to_string(&serde_norway::Value::Mapping(doc)));
    Ok(out)
}

fn yaml(v: &Value) -> Result<serde_norway::Value> {
    serde_norway::to_value(v).map_err(|e| ClientError::usage(format!("cannot write YAML: {e}")))
}

/// Fetches the export of the client's project from the server.
pub async fn export_remote(client: &Client, filters: &Filters) -> Result<Exported> {
    let reply = client
        .get("/assets/exports/litellm", &filters.pairs())
        .await?;
    let b = reply.body;
    let env = b["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_value::<EnvVar>(v.clone()).ok())
        .collect();
    Ok(Exported {
        config: b["config"].clone(),
        env,
        skipped_disabled: b["skipped_disabled"].as_u64().unwrap_or(0),
        unreadable: b["unreadable"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    })
}

/// Writes `text` to `path`, or stdout for `-`. `private` files (secrets) get mode 0600 and
/// must not exist yet, so a secret never lands in a file someone else can already read.
pub fn write_out(path: &Path, text: &str, private: bool) -> Result<()> {
    if path == Path::new("-") {
        print!("{text}");
        return std::io::stdout()
            .flush()
            .map_err(|e| ClientError::usage(format!("cannot write stdout: {e}")));
    }
    let io =
        |e: std::io::Error| ClientError::usage(format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if private {
        options.create_new(true).mode(0o600);
    } else {
        options.create(true).truncate(true);
    }
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes the config and the `.env.example`, and says what was left out.
pub fn write_export(
    exported: &Exported,
    source: &str,
    output: &Path,
    env_example: Option<&PathBuf>,
) -> Result<()> {
    write_out(output, &config_yaml(exported, source)?, false)?;
    let example = env_example
        .cloned()
        .or_else(|| (output != Path::new("-")).then(|| output.with_file_name(".env.example")));
    if let Some(path) = example {
        write_out(&path, &litellm::env_example(&exported.env), false)?;
        eprintln!(
            "wrote {} ({} variable(s))",
            path.display(),
            exported.env.len()
        );
    }
    let n = exported.config["model_list"]
        .as_array()
        .map_or(0, |l| l.len());
    if output != Path::new("-") {
        eprintln!("wrote {} ({n} model(s))", output.display());
    }
    if exported.skipped_disabled > 0 {
        eprintln!("left out {} DISABLED model(s)", exported.skipped_disabled);
    }
    if !exported.unreadable.is_empty() {
        eprintln!(
            "warning: the credentials of {} cannot be decrypted; exported without credentials",
            exported.unreadable.join(", ")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Import

/// Reads a LiteLLM config file: YAML with anchors and merge keys applied.
pub fn read_config_file(path: &Path) -> Result<(Vec<ImportItem>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::usage(format!("cannot read {}: {e}", path.display())))?;
    parse_config(&text).map_err(|e| ClientError::usage(format!("{}: {e}", path.display())))
}

/// The entries of a config text, and the top-level sections that are not imported.
pub fn parse_config(text: &str) -> std::result::Result<(Vec<ImportItem>, Vec<String>), String> {
    let mut doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    doc.apply_merge()
        .map_err(|e| format!("cannot apply YAML merge keys: {e}"))?;
    let doc: Value = serde_json::to_value(&doc)
        .map_err(|e| format!("unsupported YAML (keys must be strings): {e}"))?;
    let others = doc
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| *k != "model_list")
                .map(|k| {
                    if OTHER_SECTIONS.contains(&k.as_str()) {
                        k.clone()
                    } else {
                        format!("{k} (unknown)")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((litellm::read_config(&doc)?, others))
}

/// What import does with one entry.
#[derive(Debug)]
enum Plan {
    Create,
    /// Field changes (`{field: value}`), their readable diff, and whether the credential key
    /// names differ.
    Update {
        etag: Option<String>,
        changes: Map<String, Value>,
        diff: Vec<String>,
    },
}

/// The catalog entry of each model string an import met, by `(litellm_model, base_model)`.
type CatalogCache = HashMap<(String, Option<String>), Option<EntryValues>>;

/// The catalog entry a create of `item` would fill from, as the server finds it
/// (`GET /assets/catalog?litellm_model=…&base_model=…`): the catalog in force, which may be
/// newer than the one bundled in this binary.
async fn catalog_entry(
    client: &Client,
    cache: &mut CatalogCache,
    item: &ImportItem,
) -> Result<Option<EntryValues>> {
    let model = item.fields["litellm_model"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let base = item
        .fields
        .get("base_model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let key = (model, base);
    if let Some(entry) = cache.get(&key) {
        return Ok(entry.clone());
    }
    let mut query = vec![("litellm_model".to_owned(), key.0.clone())];
    if let Some(base) = &key.1 {
        query.push(("base_model".to_owned(), base.clone()));
    }
    let reply = client.get("/assets/catalog", &query).await?;
    let entry = reply.body["data"]
        .as_array()
        .and_then(|d| d.first())
        .and_then(litellm::entry_values_of);
    cache.insert(key, entry.clone());
    Ok(entry)
}

/// Counts of an import run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// What must change for the stored model `current` to match `item`, whose catalogued fields
/// are `wanted` ([`litellm::CatalogValues::wanted`]).
fn plan_update(
    item: &ImportItem,
    current: &Value,
    etag: Option<String>,
    wanted: &[(&'static str, Wanted)],
) -> Plan {
    let mut changes = Map::new();
    let mut diff = Vec::new();
    // The entry is the desired state of every field it can express.
    for field in litellm::mapped_fields() {
        let want = match (field, item.fields.get(field)) {
            (_, Some(v)) => v.clone(),
            ("provider", None) => json!(infer_provider(
                item.fields["litellm_model"].as_str().unwrap_or_default()
            )),
            ("tags", None) => json!([]),
            _ => Value::Null,
        };
        let have = current.get(field).cloned().unwrap_or(Value::Null);
        if !same_value(&have, &want) {
            diff.push(format!("{field}: {} → {}", show(&have), show(&want)));
            changes.insert(field.into(), want);
        }
    }
    // A new model string makes the catalog's values and the empty fields follow the entry it
    // matches (overrides stay): what a field holds after the changes, unless they name it.
    let moved = changes.contains_key("litellm_model") || changes.contains_key("base_model");
    for (field, w) in wanted {
        let have = current.get(*field).cloned().unwrap_or(Value::Null);
        let follows = moved
            && (current["catalog"]["fields"][*field] == "catalog" || litellm::is_empty(&have));
        let after = if follows { &w.catalog } else { &have };
        // Equal values are left as they are, whichever their provenance: an import changes
        // values, and re-running it changes nothing.
        if same_value(after, &w.value) {
            continue;
        }
        // The server records a value it is sent that equals the catalog's as the catalog's,
        // so an override the file gives back to the catalog is the catalog's again.
        let whose = if w.is_catalog() && !w.is_empty() {
            " (the catalog's)"
        } else {
            ""
        };
        diff.push(format!(
            "{field}: {} → {}{whose}",
            show(&have),
            show(&w.value)
        ));
        changes.insert((*field).into(), w.value.clone());
    }
    if item.status == Some(Status::Deprecated) {
        if current["status"] != json!("DEPRECATED") {
            diff.push(format!(
                "status: {} → \"DEPRECATED\"",
                show(&current["status"])
            ));
            changes.insert("status".into(), json!("DEPRECATED"));
        }
        let want = item
            .fields
            .get("status_message")
            .cloned()
            .unwrap_or(Value::Null);
        if !same_value(&current["status_message"], &want) {
            diff.push(format!(
                "status_message: {} → {}",
                show(&current["status_message"]),
                show(&want)
            ));
            changes.insert("status_message".into(), want);
        }
    }
    let have: BTreeSet<String> = current["credential_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let want: BTreeSet<String> = item.credentials.keys().cloned().collect();
    if have != want {
        diff.push(format!(
            "credential keys: {:?} → {:?}",
            have.iter().collect::<Vec<_>>(),
            want.iter().collect::<Vec<_>>()
        ));
    }
    Plan::Update {
        etag,
        changes,
        diff,
    }
}

/// Prints a line above the progress bar; a hidden bar (not a terminal) would drop it.
fn say(bar: &ProgressBar, line: String, to_stderr: bool) {
    if !bar.is_hidden() {
        bar.println(line);
    } else if to_stderr {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn progress(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Imports the entries into the client's project. With `dry_run` nothing is written; the
/// plan is printed as a diff, and each entry the server would refuse is reported as a failure.
pub async fn import(client: &Client, items: &[ImportItem], dry_run: bool) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut catalog = CatalogCache::new();
    let bar = progress(items.len());
    for item in items {
        bar.set_message(item.resource_uri.clone());
        if !item.dropped.is_empty() {
            say(
                &bar,
                format!(
                    "warning: {}: kept out (no such model field): {}",
                    item.resource_uri,
                    item.dropped.join(", ")
                ),
                true,
            );
        }
        match import_one(client, &mut catalog, item, dry_run).await {
            Ok((outcome, lines)) => {
                for l in lines {
                    say(&bar, l, false);
                }
                match outcome {
                    Outcome::Created => report.created += 1,
                    Outcome::Updated => report.updated += 1,
                    Outcome::Unchanged => report.unchanged += 1,
                }
            }
            Err(e) if e.exit == super::exit::UNREACHABLE => {
                bar.finish_and_clear();
                return Err(e);
            }
            Err(e) => {
                say(
                    &bar,
                    format!("! {}: {}", item.resource_uri, e.message),
                    true,
                );
                report.failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Checks `body` as the server would, without sending it: the same reading of the JSON and
/// the same domain rules (`modelreg_core::validate`). An error is the server's refusal, so a
/// dry run fails the entries that the real run would fail.
fn would_accept<T: DeserializeOwned, U>(
    body: &Value,
    rules: fn(T) -> modelreg_core::Result<U>,
) -> Result<()> {
    let every_error = |t: T| match rules(t) {
        Err(modelreg_core::Error::Validation(errors)) => errors,
        _ => Vec::new(),
    };
    validate::from_json_all::<T>(body.clone(), every_error)
        .and_then(rules)
        .map(drop)
        .map_err(|e| ClientError::refused(e.to_string()))
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}

async fn import_one(
    client: &Client,
    catalog: &mut CatalogCache,
    item: &ImportItem,
    dry_run: bool,
) -> Result<(Outcome, Vec<String>)> {
    if !item.invalid.is_empty() {
        return Err(ClientError::refused(format!(
            "validation failed: {}",
            item.invalid.join("; ")
        )));
    }
    let path = format!("/assets/models/{}", segment(&item.resource_uri));
    let current = match client.get(&path, &[]).await {
        Ok(reply) => Some(reply),
        Err(e) if e.status == Some(404) => None,
        Err(e) => return Err(e),
    };
    let entry = catalog_entry(client, catalog, item).await?;
    let wanted = item.catalog.wanted(entry.as_ref());
    let plan = match current {
        Some(reply) => plan_update(item, &reply.body, reply.etag, &wanted),
        None => Plan::Create,
    };
    let uri = &item.resource_uri;
    match plan {
        Plan::Create => {
            let line = format!("+ {uri} (create)");
            let mut body = item.fields.clone();
            // A value that is the catalog's is left for the catalog to fill, so it stays the
            // catalog's; any other is the model's own.
            for (field, w) in &wanted {
                if !w.is_catalog() {
                    body.insert((*field).into(), w.value.clone());
                }
            }
            body.insert("resource_uri".into(), json!(uri));
            body.insert(
                "credentials".into(),
                Value::Object(item.credentials.clone()),
            );
            let body = Value::Object(body);
            // A new model starts PENDING; a deprecated entry is marked after.
            let mark = (item.status == Some(Status::Deprecated)).then(|| {
                let mut mark = Map::new();
                mark.insert("status".into(), json!("DEPRECATED"));
                if let Some(m) = item.fields.get("status_message") {
                    mark.insert("status_message".into(), m.clone());
                }
                Value::Object(mark)
            });
            if dry_run {
                would_accept::<ModelCreate, _>(&body, validate::create)?;
                if let Some(mark) = &mark {
                    would_accept::<ModelUpdate, _>(mark, validate::update)?;
                }
                return Ok((Outcome::Created, vec![line]));
            }
            let created = client.post("/assets/models", Some(&body)).await?;
            if let Some(mark) = &mark {
                client.patch(&path, mark, created.etag.as_deref()).await?;
            }
            Ok((Outcome::Created, vec![line]))
        }
        Plan::Update {
            etag,
            mut changes,
            diff,
        } => {
            let describe = |diff: &[String]| {
                let mut lines = vec![format!("~ {uri}")];
                lines.extend(diff.iter().map(|d| format!("    {d}")));
                lines
            };
            changes.insert(
                "credentials".into(),
                Value::Object(item.credentials.clone()),
            );
            let changes = Value::Object(changes);
            if dry_run {
                would_accept::<ModelUpdate, _>(&changes, validate::update)?;
                // Credential values are never read back, so a dry run compares their key
                // names only; a real run lets the server compare the values.
                return Ok(if diff.is_empty() {
                    (Outcome::Unchanged, Vec::new())
                } else {
                    (Outcome::Updated, describe(&diff))
                });
            }
            let reply = client.patch(&path, &changes, etag.as_deref()).await?;
            if reply.etag.is_some() && reply.etag == etag {
                Ok((Outcome::Unchanged, Vec::new()))
            } else {
                let mut lines = describe(&diff);
                if diff.is_empty() {
                    lines[0].push_str(" (credential values)");
                }
                Ok((Outcome::Updated, lines))
            }
        }
    }
}
