//! The `prescrypt` command: serve the API, migrate, mint dev tokens, rotate keys, verify and checkpoint the
//! audit log, and a prescriber's key and signed issue (`prescriber`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use prescrypt::audit::checkpoint;
use prescrypt::auth::{self, Role};
use prescrypt::config::CheckpointFileArgs;
use prescrypt::config::{KeysArgs, ServeConfig, StoreArgs};
use prescrypt::telemetry::{self, LogFormat};
use prescrypt::{audit, keys, prescriber_cli, startup, store};

#[derive(Debug, Parser)]
#[command(
    name = "prescrypt",
    version,
    about = "Prescrypt central prescription service"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "PRESCRYPT_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (prints `listening on http://…` on stdout once bound).
    Serve(Box<ServeConfig>),
    /// Apply pending database migrations.
    Migrate(StoreArgs),
    /// Print a bearer token signed by the local development issuer.
    Token {
        #[arg(long)]
        role: Role,
        /// ODS code of the organisation.
        #[arg(long)]
        org: String,
        /// Professional id (subject).
        #[arg(long)]
        sub: String,
        /// Lifetime, e.g. `8h`, `30m`.
        #[arg(long, default_value = "8h", value_parser = auth::parse_ttl)]
        ttl: chrono::Duration,
        #[command(flatten)]
        keys: KeysArgs,
    },
    /// Signing-key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A prescriber's signing key and prescriber-signed issue (what a GP system does).
    Prescriber {
        #[command(subcommand)]
        command: prescriber_cli::PrescriberCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new active signing key; old keys keep verifying (restart the server to use it).
    Rotate(KeysArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk every hash chain; exit 1 and name the first broken entry if any. With
    /// `--checkpoints`, also check every signed checkpoint in the file and that the log still
    /// extends each of them.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// A checkpoint file (as written by `serve` or `audit checkpoint`, or saved from
        /// `GET /api/v1/audit/checkpoints`, one JSON checkpoint per line).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The service's published keys (`/.well-known/jwks.json`) to check the checkpoints'
        /// signatures with; default: the public halves of the keys directory's signing keys.
        #[arg(long, requires = "checkpoints")]
        jwks: Option<PathBuf>,
        #[command(flatten)]
        keys: KeysArgs,
    },
    /// Sign a checkpoint of the audit log now: append it to the checkpoint file, publish it,
    /// and print it.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        keys: KeysArgs,
        #[command(flatten)]
        file: CheckpointFileArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    match cli.command {
        Command::Serve(config) => serve(&config),
        Command::Migrate(args) => {
            let mut conn = store::connect(&args.database_url)?;
            let applied = store::migrate(&mut conn)?;
            println!("applied {applied} migration(s)");
            Ok(())
        }
        Command::Token {
            role,
            org,
            sub,
            ttl,
            keys,
        } => {
            if !auth::is_ods_code(&org.to_ascii_uppercase()) {
                anyhow::bail!("--org must be an ODS code (1 to 6 letters or digits)");
            }
            let issuer = keys::dev_issuer(&keys.keys_dir)?;
            eprintln!(
                "warning: a development token: only a service started with `serve --dev` (same \
                 --keys-dir) trusts it; production tokens come from your identity provider"
            );
            println!("{}", auth::mint(&issuer, role, &org, &sub, ttl)?);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate(args),
        } => {
            let kid = keys::rotate(&args.keys_dir)?;
            println!("new active signing key {kid}");
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    store,
                    checkpoints,
                    jwks,
                    keys,
                },
        } => verify_audit(&store, checkpoints.as_deref(), jwks.as_deref(), &keys),
        Command::Audit {
            command: AuditCommand::Checkpoint { store, keys, file },
        } => {
            let ring = keys::KeyRing::load_or_create(&keys.keys_dir)?;
            let mut conn = store::connect_existing(&store.database_url)?;
            let path = file.resolve(&keys.keys_dir);
            let signed = checkpoint::take(
                &mut conn,
                ring.active(),
                &path,
                // A command of its own: the system clock (only `serve --dev` moves the clock).
                prescrypt::clock::Clock::default().now_utc(),
            )?;
            println!("{}", signed.to_line()?);
            Ok(())
        }
        Command::Prescriber { command } => prescriber_cli::run(command),
    }
}

fn verify_audit(
    store: &StoreArgs,
    checkpoints: Option<&Path>,
    jwks: Option<&Path>,
    keys: &KeysArgs,
) -> anyhow::Result<()> {
    let pinned = match checkpoints {
        None => Vec::new(),
        Some(file) => {
            let verifying = match jwks {
                Some(jwks) => checkpoint::VerifyingKeys::from_jwks_file(jwks)?,
                None => checkpoint::VerifyingKeys::from_jwks(
                    &keys::KeyRing::load(&keys.keys_dir)?.jwks()?,
                )?,
            };
            match checkpoint::read_file(file, &verifying) {
                Ok(pinned) => pinned,
                Err(error) => {
                    println!("checkpoint REFUSED: {error}");
                    std::process::exit(1);
                }
            }
        }
    };
    let mut conn = store::connect_existing(&store.database_url)?;
    match audit::verify_extends(&mut conn, &pinned)? {
        audit::Verification::Intact { entries } => {
            match (checkpoints, pinned.last()) {
                (None, _) => println!("audit log intact: {entries} entries"),
                (Some(_), None) => {
                    println!("audit log intact: {entries} entries; the checkpoint file is empty")
                }
                (Some(_), Some(latest)) => println!(
                    "audit log intact: {entries} entries; extends all {} checkpoints (latest {})",
                    pinned.len(),
                    latest.at
                ),
            }
            Ok(())
        }
        audit::Verification::Broken { chain, seq, reason } => {
            println!("audit log BROKEN at chain {chain} entry {seq}: {reason}");
            std::process::exit(1);
        }
    }
}

fn serve(config: &ServeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = startup::Application::build(config)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", app.address())?;
        if let Some(metrics) = app.metrics_address() {
            writeln!(stdout, "metrics on {metrics}")?;
        }
        stdout.flush()?;
        drop(stdout);
        tracing::info!(address = app.address(), "serving");
        app.run_until_stopped().await?;
        Ok(())
    })
}
