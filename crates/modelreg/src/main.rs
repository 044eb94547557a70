//! `modelreg`: the server and its administration commands.

mod config;
mod keys;
mod serve;
mod telemetry;
mod token;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};

/// A registry of LLM model configurations.
///
/// Settings come from flags, then MODELREG_* environment variables, then the TOML file given
/// by --config, then defaults. Secrets (MODELREG_MASTER_KEY, MODELREG_JWT_HS256_SECRET) are
/// read from the environment or the file only, never from flags.
#[derive(Parser)]
#[command(name = "modelreg", version, about, long_about)]
struct Cli {
    /// TOML configuration file [env: MODELREG_CONFIG]
    #[arg(long, global = true, env = "MODELREG_CONFIG")]
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
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Args, Clone, Default)]
struct StorageArgs {
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
        /// owner, admin, member, developer, operator or viewer.
        #[arg(long)]
        role: String,
        /// Unique name; the token acts as service:<name>.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List API tokens (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke an API token by name. It stops working at once.
    Revoke {
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: KeyArgs,
    },
    /// Re-wrap every data key under the newest master key. Safe while servers run; resumable.
    Rotate {
        /// Records per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Stop after this many records (run again to continue).
        #[arg(long)]
        limit: Option<u64>,
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

fn overrides(storage: &StorageArgs) -> Overrides {
    Overrides {
        data_dir: storage.data_dir.clone(),
        database_url: storage.database_url.clone(),
        ..Overrides::default()
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::load(
                file,
                Overrides {
                    listen: args.listen,
                    master_key_file: args.master_key_file,
                    log_format: args.log_format,
                    log_level: args.log_level,
                    ..overrides(&args.storage)
                },
            )?;
            telemetry::init(&config.log_format, &config.log_level);
            serve::run(config).await
        }
        Command::Migrate(storage) => {
            let config = Config::load(file, overrides(&storage))?;
            telemetry::init(&config.log_format, &config.log_level);
            let store = config.open_store().await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url_redacted());
            Ok(())
        }
        Command::Token(cmd) => token::run(file, cmd).await,
        Command::Audit(AuditCommand::Verify { storage }) => {
            let config = Config::load(file, overrides(&storage))?;
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
            let config = Config::load(
                file,
                Overrides {
                    master_key_file: args.master_key_file.clone(),
                    ..overrides(&args.storage)
                },
            )?;
            telemetry::init(&config.log_format, "warn");
            if let KeysCommand::Generate { .. } = cmd {
                return keys::generate(&config);
            }
            let store = config.open_store().await?;
            let result = match cmd {
                KeysCommand::Generate { .. } => unreachable!("handled above"),
                KeysCommand::Status { json, .. } => keys::status(&config, store.as_ref(), json).await,
                KeysCommand::Rotate {
                    batch_size, limit, ..
                } => keys::rotate(&config, store.as_ref(), batch_size, limit)
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

/// `modelreg audit verify`: walks each organization's chain in order.
async fn audit_verify(store: &dyn modelreg_core::store::Store) -> anyhow::Result<()> {
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
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
