//! `modelreg models list|get|create|update|delete|verify|history`.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand, builder::PossibleValuesParser};
use modelreg_core::model::{Mode, ModelFields, Status};
use serde_json::{Map, Value, json};

use super::{
    Client, ClientError, Format, Result,
    output::{models_table, print_data, record_table, rows_table},
    segment,
};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List models (every list filter is a flag; --all follows cursors to the end).
    List(ListArgs),
    /// Show one model, by resource_uri or id.
    Get {
        /// resource_uri or id
        model: String,
        #[command(flatten)]
        output: Output,
    },
    /// Create a model from flags, a file (-f), or both (flags win).
    Create {
        #[command(flatten)]
        fields: FieldArgs,
        #[command(flatten)]
        credentials: CredentialArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Change a model: only what is given changes (--clear FIELD empties one).
    Update {
        /// resource_uri or id
        model: String,
        #[command(flatten)]
        fields: FieldArgs,
        #[command(flatten)]
        credentials: CredentialArgs,
        /// The model's status. The server also sets ACTIVE or ERROR when it verifies the model
        /// (DEPRECATED and DISABLED stay as they are).
        #[arg(long, value_parser = PossibleValuesParser::new(Status::ALL.map(Status::as_str)))]
        status: Option<String>,
        /// Why the model has its status: up to 1000 characters.
        #[arg(long)]
        status_message: Option<String>,
        /// Remove this credential key (repeatable); the other keys stay.
        #[arg(long = "remove-credential", value_name = "KEY")]
        remove_credentials: Vec<String>,
        /// Set an optional field to null (repeatable), e.g. --clear rpm; --clear tags empties
        /// the list.
        #[arg(long, value_name = "FIELD", value_parser = PossibleValuesParser::new(CLEARABLE))]
        clear: Vec<String>,
        /// Change the model only if it still has this ETag (the etag of `get -o json`, or of a
        /// previous write); else the server refuses with 412.
        #[arg(long)]
        if_match: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a model and its credentials.
    Delete {
        /// resource_uri or id
        model: String,
        /// Delete the model only if it still has this ETag; else the server refuses with 412.
        #[arg(long)]
        if_match: Option<String>,
    },
    /// Verify a stored model against its provider; exits 1 when it fails.
    Verify {
        /// resource_uri or id
        model: String,
        #[command(flatten)]
        output: Output,
    },
    /// A model's audit events, newest first.
    History {
        /// resource_uri or id
        model: String,
        /// Events per page: 1-100.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[command(flatten)]
        output: Output,
    },
}

/// `-o`, the one output flag of the client commands.
#[derive(Args, Clone, Copy)]
pub struct Output {
    /// How to print: an aligned table, or the data as json or yaml (a model with its etag).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
}

/// The fields `--clear` can set to null: the optional ones.
const CLEARABLE: [&str; 14] = [
    "provider",
    "description",
    "tags",
    "api_base",
    "api_version",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "default_max_tokens",
    "rpm",
    "tpm",
    "default_temperature",
    "timeout",
    "status_message",
];

fn modes() -> PossibleValuesParser {
    PossibleValuesParser::new(Mode::ALL.map(Mode::as_str))
}

/// The list filters (also the export's).
#[derive(Args, Default)]
pub struct Filters {
    /// Case-insensitive substring of the name or description.
    #[arg(long)]
    pub search: Option<String>,
    /// Only models of this status.
    #[arg(long, value_parser = PossibleValuesParser::new(Status::ALL.map(Status::as_str)))]
    pub status: Option<String>,
    /// Only models of this mode.
    #[arg(long, value_parser = modes())]
    pub mode: Option<String>,
    /// Only models with every one of these tags (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// e.g. name:asc,created_at:desc
    #[arg(long)]
    pub sort: Option<String>,
    /// Exact creator, e.g. user:alice
    #[arg(long)]
    pub created_by: Option<String>,
    /// Exact provider.
    #[arg(long)]
    pub provider: Option<String>,
}

impl Filters {
    /// The filters as query pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        let mut put = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                q.push((k.to_owned(), v.clone()));
            }
        };
        put("search", &self.search);
        put("status", &self.status);
        put("mode", &self.mode);
        put("sort", &self.sort);
        put("created_by", &self.created_by);
        put("provider", &self.provider);
        if !self.tags.is_empty() {
            q.push(("tags".into(), self.tags.join(",")));
        }
        q
    }
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// Page size (1-100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Page number.
    #[arg(long, conflicts_with_all = ["cursor", "all"])]
    pub page: Option<u32>,
    /// A next_cursor of a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow cursors to the last page.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub output: Output,
}

/// The writable fields of a model, as flags or a file. The server checks every value and
/// reports all that it refuses at once; the limits below are its.
#[derive(Args, Default)]
pub struct FieldArgs {
    /// A YAML or JSON file with the body (any field of the model, and credentials).
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// The display name: 1-255 characters, one line (required to create).
    #[arg(long)]
    pub name: Option<String>,
    /// The LiteLLM model string, e.g. openai/gpt-4o: 1-500 characters (required to create).
    #[arg(long = "model", value_name = "LITELLM_MODEL")]
    pub litellm_model: Option<String>,
    /// The path key: 1-100 of a-z, 0-9 and '-', not a UUID. Set at create (made from the name
    /// when absent); it never changes.
    #[arg(long)]
    pub resource_uri: Option<String>,
    /// The provider, e.g. openai or anthropic: 1-100 characters. When a create leaves it out,
    /// it is taken from the model string's prefix.
    #[arg(long)]
    pub provider: Option<String>,
    /// Free text: up to 1000 characters.
    #[arg(long)]
    pub description: Option<String>,
    /// A tag (repeatable, or comma-separated); replaces the list. At most 50 distinct tags of
    /// 1-64 characters.
    #[arg(long = "tag", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// The provider's base URL, e.g. https://api.openai.com/v1: absolute http or https,
    /// without a user name or password.
    #[arg(long)]
    pub api_base: Option<String>,
    /// The provider's API version, e.g. 2024-06-01 for Azure: 1-50 characters.
    #[arg(long)]
    pub api_version: Option<String>,
    /// What the model does.
    #[arg(long, value_parser = modes())]
    pub mode: Option<String>,
    /// The largest prompt the model takes, in tokens: 1-2147483647.
    #[arg(long)]
    pub max_input_tokens: Option<i64>,
    /// The most tokens the model writes in one answer: 1-2147483647.
    #[arg(long)]
    pub max_output_tokens: Option<i64>,
    /// max_tokens for requests that give none: 1-2147483647.
    #[arg(long)]
    pub default_max_tokens: Option<i64>,
    /// Requests per minute allowed: 1-2147483647.
    #[arg(long)]
    pub rpm: Option<i64>,
    /// Tokens per minute allowed: 1-2147483647.
    #[arg(long)]
    pub tpm: Option<i64>,
    /// The default sampling temperature: 0-9.99.
    #[arg(long = "temperature")]
    pub default_temperature: Option<f64>,
    /// Seconds a call to the provider may take: more than 0, at most 86400.
    #[arg(long)]
    pub timeout: Option<f64>,
}

/// Where credentials come from. Values are never printed.
#[derive(Args, Default)]
pub struct CredentialArgs {
    /// KEY=VALUE (repeatable). VALUE may be a reference, os.environ/NAME or file:/path, which
    /// the server resolves in the server's environment, and only where its operator granted
    /// it to this organization (docs/secrets.md). A literal value shows in the process list;
    /// prefer --credentials-stdin or a reference.
    #[arg(long = "credential", value_name = "KEY=VALUE")]
    pub credential: Vec<String>,
    /// Read credentials from stdin: a JSON object, or KEY=VALUE lines.
    #[arg(long)]
    pub credentials_stdin: bool,
}

impl CredentialArgs {
    /// The credentials given, if any. Read once: stdin is consumed.
    fn read(&self) -> Result<Option<Map<String, Value>>> {
        let mut out = Map::new();
        if self.credentials_stdin {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ClientError::usage(format!("cannot read stdin: {e}")))?;
            let text = text.trim();
            if text.starts_with('{') {
                let map: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
                    ClientError::usage(format!("stdin is not a JSON object: {}", e.classify_name()))
                })?;
                out.extend(map);
            } else {
                for line in text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let (k, v) = split_pair(line)?;
                    out.insert(k, Value::String(v));
                }
            }
        }
        for pair in &self.credential {
            let (k, v) = split_pair(pair)?;
            out.insert(k, Value::String(v));
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

/// serde_json's error category, which never quotes the input (it may be a secret).
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "not an object of strings",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

/// `KEY=VALUE`; the message names the key only.
fn split_pair(pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(ClientError::usage(
            "a credential must be KEY=VALUE (the value is not shown here)",
        )),
    }
}

impl FieldArgs {
    /// The body: the file's fields, then the flags over them.
    fn body(&self) -> Result<Map<String, Value>> {
        let mut body = match &self.file {
            Some(path) => read_body_file(path)?,
            None => Map::new(),
        };
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body.insert(k.to_owned(), v);
            }
        };
        set("name", self.name.clone().map(Value::from));
        set("litellm_model", self.litellm_model.clone().map(Value::from));
        set("resource_uri", self.resource_uri.clone().map(Value::from));
        set("provider", self.provider.clone().map(Value::from));
        set("description", self.description.clone().map(Value::from));
        set("api_base", self.api_base.clone().map(Value::from));
        set("api_version", self.api_version.clone().map(Value::from));
        set("mode", self.mode.clone().map(Value::from));
        set("max_input_tokens", self.max_input_tokens.map(Value::from));
        set("max_output_tokens", self.max_output_tokens.map(Value::from));
        set(
            "default_max_tokens",
            self.default_max_tokens.map(Value::from),
        );
        set("rpm", self.rpm.map(Value::from));
        set("tpm", self.tpm.map(Value::from));
        set(
            "default_temperature",
            self.default_temperature.map(|v| json!(v)),
        );
        set("timeout", self.timeout.map(|v| json!(v)));
        if !self.tags.is_empty() {
            body.insert("tags".into(), json!(self.tags));
        }
        Ok(body)
    }
}

/// A body file: YAML (which JSON is a subset of) holding a mapping.
pub fn read_body_file(path: &std::path::Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::usage(format!("cannot read {}: {e}", path.display())))?;
    let value: Value = serde_norway::from_str(&text).map_err(|e| {
        ClientError::usage(format!("{} is not valid YAML or JSON: {e}", path.display()))
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ClientError::usage(format!(
            "{} must hold a mapping of model fields",
            path.display()
        ))),
    }
}

/// What `get` shows first: the model's names, then what it is and whether it works.
const SHOWN_FIRST: &[&str] = &[
    "resource_uri",
    "id",
    "name",
    "litellm_model",
    "provider",
    "mode",
    "status",
    "status_message",
];

/// What `get` shows after the model's fields: the record's own members.
const SHOWN_LAST: &[&str] = &[
    "credential_fields",
    "last_verified_at",
    "organization_id",
    "project_id",
    "created_by",
    "updated_by",
    "owner_id",
    "created_at",
    "updated_at",
    "catalog",
    "etag",
];

/// The order of a model's members in `get`: `SHOWN_FIRST`, the rest of the declared fields in
/// their order, `SHOWN_LAST`.
fn model_order() -> Vec<&'static str> {
    let rest = ModelFields::NAMES
        .iter()
        .filter(|n| !SHOWN_FIRST.contains(n));
    SHOWN_FIRST
        .iter()
        .chain(rest)
        .chain(SHOWN_LAST)
        .copied()
        .collect()
}

/// A model as the output format wants it, with its ETag (a response header) as `etag`, the
/// value `--if-match` takes.
fn print_model(format: Format, mut model: Value, etag: Option<&str>) -> Result<()> {
    if let (Some(obj), Some(tag)) = (model.as_object_mut(), etag) {
        obj.insert("etag".into(), json!(tag));
    }
    if format == Format::Table {
        if let Some(obj) = model.as_object_mut()
            && let Some(link) = obj.get("catalog")
        {
            let readable = json!(catalog_line(link));
            obj.insert("catalog".into(), readable);
        }
        println!("{}", record_table(&model, &model_order()));
        return Ok(());
    }
    print_data(format, &model)
}

/// A model's link to the catalog in a line: the entry, and which values are the user's own.
fn catalog_line(link: &Value) -> String {
    let Some(key) = link["key"].as_str() else {
        return "no catalog entry".into();
    };
    let overrides: Vec<&str> = link["fields"]
        .as_object()
        .map(|f| {
            f.iter()
                .filter(|(_, p)| *p == "override")
                .map(|(n, _)| n.as_str())
                .collect()
        })
        .unwrap_or_default();
    if overrides.is_empty() {
        format!("{key} (every value the catalog's)")
    } else {
        format!("{key} (overrides: {})", overrides.join(", "))
    }
}

/// What a failed verification adds when a reference did not resolve: the server resolves
/// references in its own environment, as its operator granted them, never in this shell's.
fn verify_hint(message: &str) -> Option<&'static str> {
    // The server's one wording for a refused reference (modelreg_core::references).
    let refused = ["refers to an environment variable", "refers to a file"]
        .iter()
        .any(|m| message.contains(m));
    refused.then_some(
        "hint: os.environ/ and file: references are resolved by the server, in the server's \
         environment (its process environment and files), not in this shell's; and only those \
         its operator granted to this organization. Ask the operator to grant it, or store the \
         value itself with --credentials-stdin (see docs/secrets.md).",
    )
}

fn model_path(model: &str) -> String {
    format!("/assets/models/{}", segment(model))
}

pub async fn run(client: &Client, cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List(args) => list(client, args).await,
        ModelsCommand::Get {
            model,
            output: Output { output },
        } => {
            let reply = client.get(&model_path(&model), &[]).await?;
            print_model(output, reply.body, reply.etag.as_deref())
        }
        ModelsCommand::Create {
            fields,
            credentials,
            output: Output { output },
        } => {
            let mut body = fields.body()?;
            if let Some(c) = credentials.read()? {
                body.insert("credentials".into(), Value::Object(c));
            }
            let reply = client
                .post("/assets/models", Some(&Value::Object(body)))
                .await?;
            print_model(output, reply.body, reply.etag.as_deref())
        }
        ModelsCommand::Update {
            model,
            fields,
            credentials,
            status,
            status_message,
            remove_credentials,
            clear,
            if_match,
            output: Output { output },
        } => {
            let mut body = fields.body()?;
            if let Some(s) = status {
                body.insert("status".into(), json!(s));
            }
            if let Some(m) = status_message {
                body.insert("status_message".into(), json!(m));
            }
            for field in clear {
                body.insert(field, Value::Null);
            }
            let mut patch = credentials.read()?.unwrap_or_default();
            for key in remove_credentials {
                patch.insert(key, Value::Null);
            }
            if body.is_empty() && patch.is_empty() {
                return Err(ClientError::usage(
                    "nothing to change: give a field flag, -f FILE, --credential, --status or --clear",
                ));
            }
            let path = model_path(&model);
            let mut etag = if_match;
            let mut last = None;
            if !body.is_empty() {
                let reply = client
                    .patch(&path, &Value::Object(body), etag.as_deref())
                    .await?;
                etag = reply.etag.clone();
                last = Some(reply);
            }
            // Key by key: the stored credentials not named stay as they are.
            if !patch.is_empty() {
                let reply = client
                    .patch(
                        &format!("{path}/credentials"),
                        &Value::Object(patch),
                        etag.as_deref(),
                    )
                    .await?;
                last = Some(reply);
            }
            let reply = last.expect("one request was sent");
            print_model(output, reply.body, reply.etag.as_deref())
        }
        ModelsCommand::Delete { model, if_match } => {
            client
                .delete(&model_path(&model), if_match.as_deref())
                .await?;
            println!("deleted {model}");
            Ok(())
        }
        ModelsCommand::Verify {
            model,
            output: Output { output },
        } => {
            let reply = client
                .post(&format!("{}/verify", model_path(&model)), None)
                .await?;
            let verified = reply.body["verified"].as_bool() == Some(true);
            if output == Format::Table {
                println!(
                    "{}: {} ({} ms)",
                    if verified { "verified" } else { "FAILED" },
                    reply.body["message"].as_str().unwrap_or(""),
                    reply.body["latency_ms"]
                );
            } else {
                print_data(output, &reply.body)?;
            }
            if verified {
                return Ok(());
            }
            let mut why = format!("{model} did not verify");
            if let Some(hint) = verify_hint(reply.body["message"].as_str().unwrap_or("")) {
                why.push_str("\n  ");
                why.push_str(hint);
            }
            Err(ClientError::refused(why))
        }
        ModelsCommand::History {
            model,
            limit,
            page,
            output: Output { output },
        } => {
            let reply = client
                .get(
                    &format!("{}/history", model_path(&model)),
                    &[
                        ("limit".into(), limit.to_string()),
                        ("page".into(), page.to_string()),
                    ],
                )
                .await?;
            if output != Format::Table {
                return print_data(output, &reply.body);
            }
            let rows: Vec<Value> = reply.body["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut e| {
                    let changed: Vec<String> = e["changes"]
                        .as_object()
                        .map(|c| c.keys().cloned().collect())
                        .unwrap_or_default();
                    e["changed"] = json!(changed.join(","));
                    e
                })
                .collect();
            println!(
                "{}",
                rows_table(
                    &rows,
                    &[
                        ("AT", "at"),
                        ("ACTION", "action"),
                        ("PRINCIPAL", "principal"),
                        ("CHANGED", "changed"),
                    ],
                )
            );
            Ok(())
        }
    }
}

async fn list(client: &Client, args: ListArgs) -> Result<()> {
    let format = args.output.output;
    let mut query = args.filters.pairs();
    if let Some(l) = args.limit {
        query.push(("limit".into(), l.to_string()));
    }
    if let Some(p) = args.page {
        query.push(("page".into(), p.to_string()));
    }
    let mut cursor = args.cursor.clone();
    let mut all: Vec<Value> = Vec::new();
    loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor".into(), c.clone()));
        }
        let reply = client.get("/assets/models", &q).await?;
        if !args.all {
            if format != Format::Table {
                return print_data(format, &reply.body);
            }
            let data = reply.body["data"].as_array().cloned().unwrap_or_default();
            println!("{}", models_table(&data));
            let p = &reply.body["pagination"];
            if std::io::stderr().is_terminal() {
                eprintln!(
                    "page {} of {}, {} models{}",
                    p["page"],
                    p["total_pages"],
                    p["total_items"],
                    p["next_cursor"]
                        .as_str()
                        .map(|c| format!("; next: --cursor {c}"))
                        .unwrap_or_default()
                );
            }
            return Ok(());
        }
        all.extend(reply.body["data"].as_array().cloned().unwrap_or_default());
        match reply.body["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    match format {
        Format::Table => println!("{}", models_table(&all)),
        other => print_data(other, &json!({ "data": all }))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_shows_every_declared_field_once() {
        let order = model_order();
        for name in ModelFields::NAMES {
            let shown = order.iter().filter(|o| *o == name).count();
            assert_eq!(shown, 1, "{name} is shown {shown} times");
        }
    }
}
