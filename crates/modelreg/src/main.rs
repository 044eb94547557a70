//! `modelreg`: the server and its administration commands.

mod catalog;
mod client;
mod config;
mod keys;
mod serve;
mod telemetry;
mod token;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand, builder::PossibleValuesParser};

use crate::config::{Config, Overrides};

/// `--version`: the release and the commit it was built from.
fn version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (commit {})",
            env!("CARGO_PKG_VERSION"),
            modelreg_api::GIT_COMMIT
        )
    });
    &VERSION
}

/// A registry of LLM model configurations.
///
/// The server commands (serve, migrate, token, keys, audit) take their settings from flags,
/// then MODELREG_* environment variables, then the TOML file given by their --config
/// (MODELREG_CONFIG), then defaults. Secrets (MODELREG_MASTER_KEY, MODELREG_JWT_HS256_SECRET)
/// are read from the environment or the file only, never from flags.
///
/// The client commands (login, models, export, import) talk to a running server. Their exit
/// status: 0 success, 1 the server refused (or a verification failed), 2 bad usage, 3 the
/// server could not be reached. Every command exits 2 on bad usage.
#[derive(Parser)]
#[command(name = "modelreg", version = version(), about, long_about)]
struct Cli {
    /// Where --config went before it was a flag of the server commands; still taken there.
    #[arg(long, hide = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (runs migrations first).
    Serve(ServeArgs),
    /// Apply database migrations, then exit.
    Migrate(StorageArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the master keys that protect stored credentials (see docs/secrets.md).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The model catalog: load a newer LiteLLM cost map, and see or settle what changed upstream.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Save a server, token and project as a profile for the client commands.
    Login(LoginArgs),
    /// Models on a running server: list, get, create, update, delete, verify, history.
    Models(ModelsArgs),
    /// Write the project's models as a LiteLLM proxy config.yaml (and a .env.example).
    Export(ExportArgs),
    /// Create or update models from a LiteLLM proxy config.yaml. Idempotent.
    Import(ImportArgs),
    /// Print a shell completion script: bash, zsh or fish.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct LoginArgs {
    #[command(flatten)]
    client: client::ClientArgs,
}

#[derive(Args)]
struct ModelsArgs {
    #[command(flatten)]
    client: client::ClientArgs,
    #[command(subcommand)]
    command: client::models::ModelsCommand,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// A LiteLLM proxy config.yaml.
    Litellm,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    client: client::ClientArgs,
    /// The format to write.
    #[arg(long, value_enum)]
    format: ExportFormat,
    #[command(flatten)]
    filters: client::models::Filters,
    /// The file the config is written to; - for stdout. (Here -o names a file, as for curl
    /// or cc: the format is --format.)
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    output: PathBuf,
    /// Where the .env.example goes [default: beside --output; none for stdout]
    #[arg(long)]
    env_example: Option<PathBuf>,
    /// Also write the credential values, references resolved, into --env-file (mode 0600).
    /// Reads the database and master key directly (no server), so run it where they are.
    #[arg(long, requires = "env_file")]
    with_values: bool,
    /// The file of values for --with-values; it must not exist yet.
    #[arg(long, requires = "with_values")]
    env_file: Option<PathBuf>,
    /// Organization to export, with --with-values.
    #[arg(long, default_value = "default")]
    org: String,
    #[command(
        flatten,
        next_help_heading = "With --with-values (the database, read directly)"
    )]
    storage: KeyArgs,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    client: client::ClientArgs,
    /// The LiteLLM config.yaml.
    file: PathBuf,
    /// Show what would change, as a diff, and which entries the server would refuse (exit
    /// status 1); change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Clone, Default)]
struct StorageArgs {
    /// TOML configuration file [env: MODELREG_CONFIG]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory of the embedded database [env: MODELREG_DATA_DIR] [default: ./modelreg-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///var/lib/modelreg/modelreg.db or postgres://user@host/db
    /// [env: MODELREG_DATABASE_URL] [default: sqlite://<data-dir>/modelreg.db]
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on [env: MODELREG_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<String>,
    /// Master key file (base64 keys, one per line, newest last) [env: MODELREG_MASTER_KEY_FILE]
    /// [default: master.key beside the database]
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// Log format: text or json [env: MODELREG_LOG_FORMAT] [default: text]
    #[arg(long)]
    log_format: Option<String>,
    /// Log filter, e.g. info or modelreg=debug [env: MODELREG_LOG_LEVEL] [default: info]
    #[arg(long)]
    log_level: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token and print it once. Only its hash is stored.
    Create {
        /// Organization the token acts in.
        #[arg(long)]
        org: String,
        /// Project the token is bound to, or '*' for all projects.
        #[arg(long)]
        project: String,
        /// The token's role in its projects.
        #[arg(long, value_parser = PossibleValuesParser::new(
            modelreg_core::auth::Role::ALL.map(modelreg_core::auth::Role::as_str)
        ))]
        role: String,
        /// Name, unique in the organization; the token acts as service:<name>.
        #[arg(long)]
        name: String,
        /// When the token stops working: a time from now (30d, 12h, 90m, 2w, 3600s) or an
        /// RFC 3339 time (2030-01-01T00:00:00Z) [default: never]
        #[arg(long, value_name = "WHEN", value_parser = token::parse_expiry)]
        expires: Option<modelreg_core::timestamp::Timestamp>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List API tokens (never their secrets): their expiry and last use too.
    List {
        /// How to print: a table, or json or yaml.
        #[arg(short, long, value_enum, default_value_t)]
        output: client::Format,
        /// Deprecated: use -o json.
        #[arg(long, hide = true, conflicts_with = "output")]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke an API token by name. It stops working at once.
    Revoke {
        name: String,
        /// The token's organization; needed only when several organizations have a token of
        /// that name.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `-o` of the commands that print a table or JSON only.
#[derive(Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
enum TableOrJson {
    /// An aligned table.
    #[default]
    Table,
    /// JSON.
    Json,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new master key as the newest (key file), or print one for MODELREG_MASTER_KEY.
    Generate {
        #[command(flatten)]
        storage: KeyArgs,
    },
    /// How many records each key protects, and which keys can be retired.
    Status {
        /// How to print: a table, or json.
        #[arg(short, long, value_enum, default_value_t)]
        output: TableOrJson,
        /// Deprecated: use -o json.
        #[arg(long, hide = true, conflicts_with = "output")]
        json: bool,
        #[command(flatten)]
        storage: KeyArgs,
    },
    /// Re-wrap every data key under the newest master key. Safe while servers run: it waits
    /// until every running server holds that key, and refuses if one does not; resumable.
    Rotate {
        /// Records per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Stop after this many records (run again to continue).
        #[arg(long)]
        limit: Option<u64>,
        /// Seconds to wait for every running server to load the newest key before refusing.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        #[command(flatten)]
        storage: KeyArgs,
    },
    /// Remove a master key that no record uses any more.
    Retire {
        /// The key id, as `keys status` shows it.
        key_id: String,
        #[command(flatten)]
        storage: KeyArgs,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Load a LiteLLM cost map (model_prices_and_context_window.json) into the database: from
    /// their next request, every server on it fills new models from it. Offline: reads only
    /// FILE. Models keep their values until a user takes the changes (`catalog diff`).
    Refresh {
        /// The cost map file.
        file: PathBuf,
        /// The version it is of (LiteLLM's release, or a date) [default: unversioned]
        #[arg(long)]
        version: Option<String>,
        /// The day it was made, YYYY-MM-DD [default: today]
        #[arg(long)]
        date: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// The project's models whose catalog values changed upstream (a running server); take or
    /// keep the changes.
    Diff {
        #[command(flatten)]
        client: client::ClientArgs,
        /// Take the upstream values into the models.
        #[arg(long, conflicts_with = "keep")]
        take: bool,
        /// Keep the models' values (they become overrides) and stop offering these changes.
        #[arg(long)]
        keep: bool,
        /// Only this model (its resource_uri).
        #[arg(long)]
        model: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: client::output::Format,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every organization's hash chain; report the first broken link. Exits non-zero
    /// when a chain is broken.
    Verify {
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Args, Clone, Default)]
struct KeyArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Master key file [env: MODELREG_MASTER_KEY_FILE] [default: master.key beside the database]
    #[arg(long)]
    master_key_file: Option<PathBuf>,
}

/// The configuration file of a server command: its --config, else a --config given ahead of
/// the command (where it used to go), else MODELREG_CONFIG.
fn config_file(ahead: Option<&Path>, storage: &StorageArgs) -> Option<PathBuf> {
    storage
        .config
        .clone()
        .or_else(|| ahead.map(Path::to_path_buf))
        .or_else(|| {
            std::env::var_os("MODELREG_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
}

/// The configuration; one that cannot be used (a missing file, a bad value) is a usage error.
fn load_config(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
    Config::load(file, overrides).map_err(|e| client::ClientError::usage(format!("{e:#}")).into())
}

/// The configuration of a command that reads the database and the master keys directly
/// (`keys`, `export --with-values`), logging warnings only.
fn key_config(ahead: Option<&Path>, args: &KeyArgs) -> anyhow::Result<Config> {
    let config = load_config(
        config_file(ahead, &args.storage).as_deref(),
        Overrides {
            master_key_file: args.master_key_file.clone(),
            ..overrides(&args.storage)
        },
    )?;
    telemetry::init(&config.log_format, "warn");
    Ok(config)
}

fn overrides(storage: &StorageArgs) -> Overrides {
    Overrides {
        data_dir: storage.data_dir.clone(),
        database_url: storage.database_url.clone(),
        ..Overrides::default()
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ahead = cli.config.as_deref();
    if ahead.is_some()
        && matches!(
            cli.command,
            Command::Login(_)
                | Command::Models(_)
                | Command::Import(_)
                | Command::Openapi
                | Command::Completions { .. }
        )
    {
        return Err(client::ClientError::usage(
            "--config is read by the server commands only (serve, migrate, token, keys, audit, \
             export --with-values); the client commands take --server, --token and --project",
        )
        .into());
    }
    match cli.command {
        Command::Serve(args) => {
            let file = config_file(ahead, &args.storage);
            let file = file.as_deref();
            let flags = Overrides {
                listen: args.listen,
                master_key_file: args.master_key_file,
                log_format: args.log_format,
                log_level: args.log_level,
                ..overrides(&args.storage)
            };
            let config = load_config(file, flags.clone())?;
            telemetry::init(&config.log_format, &config.log_level);
            serve::run(config, file, flags).await
        }
        Command::Migrate(storage) => {
            let config = load_config(config_file(ahead, &storage).as_deref(), overrides(&storage))?;
            telemetry::init(&config.log_format, &config.log_level);
            let store = config.open_store().await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url_redacted());
            Ok(())
        }
        Command::Token(cmd) => token::run(ahead, cmd).await,
        Command::Audit(AuditCommand::Verify { storage }) => {
            let config = load_config(config_file(ahead, &storage).as_deref(), overrides(&storage))?;
            telemetry::init(&config.log_format, "warn");
            let store = config.open_store().await?;
            let result = audit_verify(store.as_ref()).await;
            store.close().await;
            result
        }
        Command::Keys(cmd) => {
            let args = match &cmd {
                KeysCommand::Generate { storage }
                | KeysCommand::Status { storage, .. }
                | KeysCommand::Rotate { storage, .. }
                | KeysCommand::Retire { storage, .. } => storage.clone(),
            };
            let config = key_config(ahead, &args)?;
            if let KeysCommand::Generate { .. } = cmd {
                return keys::generate(&config);
            }
            let store = config.open_store().await?;
            let result = match cmd {
                KeysCommand::Generate { .. } => unreachable!("handled above"),
                KeysCommand::Status { output, json, .. } => {
                    if json {
                        eprintln!("warning: --json is deprecated; use -o json");
                    }
                    let json = json || output == TableOrJson::Json;
                    keys::status(&config, store.as_ref(), json).await
                }
                KeysCommand::Rotate {
                    batch_size, limit, wait, ..
                } => keys::rotate(
                    &config,
                    store.as_ref(),
                    batch_size,
                    limit,
                    std::time::Duration::from_secs(wait),
                )
                    .await
                    .and_then(|r| {
                        println!(
                            "rotated {}, changed meanwhile {}, failed {}",
                            r.rotated, r.changed_meanwhile, r.failed
                        );
                        anyhow::ensure!(
                            r.failed == 0,
                            "{} record(s) could not be re-wrapped: their credentials do not open (see the log)",
                            r.failed
                        );
                        Ok(())
                    }),
                KeysCommand::Retire { key_id, .. } => keys::retire(&config, store.as_ref(), &key_id).await,
            };
            store.close().await;
            result
        }
        Command::Login(args) => login(args).await,
        Command::Models(args) => {
            let client = client::Client::new(client::Settings::resolve(&args.client)?)?;
            Ok(client::models::run(&client, args.command).await?)
        }
        Command::Catalog(CatalogCommand::Refresh {
            file,
            version,
            date,
            storage,
        }) => {
            let config = load_config(config_file(ahead, &storage).as_deref(), overrides(&storage))?;
            telemetry::init(&config.log_format, "warn");
            let store = config.open_store().await?;
            let result =
                catalog::refresh(store.as_ref(), &file, version.as_deref(), date.as_deref()).await;
            store.close().await;
            result
        }
        Command::Catalog(CatalogCommand::Diff {
            client: args,
            take,
            keep,
            model,
            output,
        }) => {
            let client = client::Client::new(client::Settings::resolve(&args)?)?;
            let settle = match (take, keep) {
                (true, _) => Some("take"),
                (_, true) => Some("keep"),
                _ => None,
            };
            Ok(catalog::diff(&client, settle, model.as_deref(), output).await?)
        }
        Command::Export(args) => export(ahead, args).await,
        Command::Import(args) => {
            let (items, others) = client::interop::read_config_file(&args.file)?;
            if !others.is_empty() {
                eprintln!(
                    "not imported (not model configuration): {}",
                    others.join(", ")
                );
            }
            let client = client::Client::new(client::Settings::resolve(&args.client)?)?;
            let r = client::interop::import(&client, &items, args.dry_run).await?;
            let verb = if args.dry_run { "would be " } else { "" };
            println!(
                "{verb}created {}, {verb}updated {}, unchanged {}, failed {}",
                r.created, r.updated, r.unchanged, r.failed
            );
            if r.failed > 0 {
                return Err(client::ClientError::refused(format!(
                    "{} entr{} could not be imported",
                    r.failed,
                    if r.failed == 1 { "y" } else { "ies" }
                ))
                .into());
            }
            Ok(())
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "modelreg", &mut std::io::stdout());
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                modelreg_api::openapi()
                    .to_pretty_json()
                    .expect("the OpenAPI document serializes")
            );
            Ok(())
        }
    }
}

/// `modelreg login`: checks the token against the server, then saves the profile.
async fn login(args: LoginArgs) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    let mut c = args.client;
    let name = c.profile_name();
    if c.token.is_none() && std::env::var("MODELREG_TOKEN").is_err() {
        if std::io::stdin().is_terminal() {
            eprint!("Token: ");
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        c.token = Some(line.trim().to_owned()).filter(|t| !t.is_empty());
    }
    let settings = client::Settings::resolve(&c)?;
    let api = client::Client::new(settings.clone())?;
    let no_project = settings.project.is_none();
    let mut needs_project = false;
    match api
        .get("/assets/models", &[("limit".into(), "1".into())])
        .await
    {
        Ok(_) => {}
        // A token good for several projects needs a project to list; it still authenticated.
        Err(e) if e.status == Some(400) && no_project => needs_project = true,
        Err(e) => return Err(e.into()),
    }
    let path = client::profile::save(&name, settings.into_profile())?;
    println!("saved profile '{name}' in {}", path.display());
    if no_project {
        let then = if needs_project {
            "this token is not bound to one project, so every command will need --project NAME \
             or MODELREG_PROJECT"
        } else {
            "commands will act in the token's own project"
        };
        eprintln!(
            "warning: no project given, so profile '{name}' has none: {then}. To keep one in the \
             profile, log in again with --project NAME."
        );
    }
    Ok(())
}

/// `modelreg export`: from the server, or with values from the database directly.
async fn export(ahead: Option<&Path>, args: ExportArgs) -> anyhow::Result<()> {
    let ExportFormat::Litellm = args.format;
    // Elsewhere -o is the output format; here it is the file, so a format's name is a slip.
    if let Some(name) = args
        .output
        .to_str()
        .filter(|o| matches!(*o, "table" | "json" | "yaml"))
    {
        return Err(client::ClientError::usage(format!(
            "export's -o is the file to write (the format is --format litellm), not an output \
             format; to write a file named {name}, say -o ./{name}"
        ))
        .into());
    }
    if !args.with_values {
        let client = client::Client::new(client::Settings::resolve(&args.client)?)?;
        let exported = client::interop::export_remote(&client, &args.filters).await?;
        let source = format!(
            "{} project {}",
            client.settings().server,
            client
                .settings()
                .project
                .as_deref()
                .unwrap_or("(the token's)")
        );
        client::interop::write_export(&exported, &source, &args.output, args.env_example.as_ref())?;
        return Ok(());
    }
    // Local: the values need the master key, which only the server side holds.
    let project = args
        .client
        .project
        .clone()
        .or_else(|| std::env::var("MODELREG_PROJECT").ok())
        .ok_or_else(|| {
            client::ClientError::usage("--with-values needs --project (or MODELREG_PROJECT)")
        })?;
    let scope = modelreg_core::tenant::TenantScope::new(
        modelreg_core::tenant::OrgId::parse(&args.org)
            .map_err(|m| client::ClientError::usage(format!("--org: {m}")))?,
        modelreg_core::tenant::ProjectId::parse(&project)
            .map_err(|m| client::ClientError::usage(format!("--project: {m}")))?,
    );
    let file = config_file(ahead, &args.storage.storage);
    let config = key_config(ahead, &args.storage)?;
    let keyring = keys::load(&config, false)?;
    // References resolve here exactly as the server resolves them: only as granted.
    let references = config.references(&keyring, file.as_deref())?;
    let store = config.open_store().await?;
    let models =
        modelreg_core::service::ModelService::new(store.clone(), std::sync::Arc::new(keyring))
            .with_references(references);
    let result =
        match modelreg_core::litellm::export_query(&args.filters.pairs(), &models.cursors()) {
            Ok(query) => models.export_litellm_in(&scope, &query, true).await,
            Err(e) => Err(e),
        };
    store.close().await;
    let export = result?;
    for why in &export.unresolved {
        eprintln!("warning: {why}");
    }
    let env_file = args.env_file.as_ref().expect("clap requires it");
    let values = export.env_file().expect("an export with values has a .env");
    let exported = client::interop::Exported {
        config: export.config(),
        env: export.env.values().cloned().collect(),
        skipped_disabled: export.skipped_disabled,
        unreadable: export.unreadable.clone(),
    };
    client::interop::write_out(env_file, &values, true)?;
    eprintln!("wrote {} (secrets: keep it private)", env_file.display());
    client::interop::write_export(
        &exported,
        &format!("organization {} project {project}", args.org),
        &args.output,
        args.env_example.as_ref(),
    )?;
    Ok(())
}

/// `modelreg audit verify`: walks each organization's chain in order.
async fn audit_verify(store: &dyn modelreg_core::store::MaintenanceStore) -> anyhow::Result<()> {
    use modelreg_core::audit::{GENESIS, first_broken};
    let mut broken = 0;
    for org in store.audit_organizations().await? {
        let (mut after, mut prev, mut count) = (0i64, GENESIS.to_owned(), 0u64);
        let mut failure = None;
        loop {
            let batch = store.audit_chain(&org, after, 1000).await?;
            let Some(last) = batch.last() else { break };
            // A gap in the sequence is a removed event.
            if let Some(gap) = batch
                .iter()
                .zip(after + 1..)
                .find(|(e, want)| e.seq != *want)
            {
                failure = Some((gap.1, "is missing".to_owned()));
                break;
            }
            if let Some(f) = first_broken(&prev, &batch) {
                failure = Some(f);
                break;
            }
            count += batch.len() as u64;
            after = last.seq;
            prev = last.hash.clone();
        }
        match failure {
            None => println!("{org}: {count} events, chain intact"),
            Some((seq, why)) => {
                broken += 1;
                println!("{org}: BROKEN at event {seq}: {why}");
            }
        }
    }
    anyhow::ensure!(
        broken == 0,
        "{broken} organization(s) have a broken audit chain"
    );
    Ok(())
}

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (ring, the one sqlx and the probes use).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<client::ClientError>() {
            Some(c) => {
                eprintln!("error: {}", c.message);
                ExitCode::from(c.exit)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
