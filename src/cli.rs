//! Command line: parse, load configuration, dispatch. Exit codes: 0 ok, 1 a blocking check
//! failed (`check`), 2 bad configuration or usage, 3 a side could not be read (`status`, which
//! still prints everything else).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use color_eyre::eyre::Result;

use crate::collect::snapshot;
use crate::config::{self, Overrides, Settings};
use crate::report;

#[derive(Debug, Parser)]
#[command(
    name = "pgcutover",
    version,
    about = "Blue/green PostgreSQL major-version upgrades by logical replication"
)]
pub struct Cli {
    /// Configuration file (default: $PGCUTOVER_CONFIG, else $XDG_CONFIG_HOME/pgcutover/config.toml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// BLUE connection (libpq keyword/value or URI, no password); overrides the file and $PGCUTOVER_BLUE_DSN
    #[arg(long, global = true, value_name = "DSN")]
    pub blue_dsn: Option<String>,
    /// GREEN connection; overrides the file and $PGCUTOVER_GREEN_DSN
    #[arg(long, global = true, value_name = "DSN")]
    pub green_dsn: Option<String>,
    /// The application's roles, comma-separated; overrides [cutover] app_roles
    #[arg(long, global = true, value_delimiter = ',', value_name = "ROLE,…")]
    pub app_roles: Option<Vec<String>>,
    /// Log file (default: $XDG_STATE_HOME/pgcutover/pgcutover.log)
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One snapshot of both sides: phase, alarms, replication, checks, schema and sequence diff
    Status {
        /// Machine-readable output (documented in the README)
        #[arg(long)]
        json: bool,
    },
    /// Pre-flight checks; exits 1 when a blocking check fails
    Check {
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(path: Option<PathBuf>) {
    let path = path.or_else(|| config::state_dir().map(|d| d.join("pgcutover.log")));
    let Some(path) = path else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGCUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    let _ = color_eyre::install();
    let cli = Cli::parse();
    init_logging(cli.log_file.clone());
    let ov = Overrides {
        config: cli.config.clone(),
        blue_dsn: cli.blue_dsn.clone(),
        green_dsn: cli.green_dsn.clone(),
        app_roles: cli.app_roles.clone(),
    };
    let settings = match config::load(&ov) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pgcutover: {}", crate::collect::poller::error_text(&e));
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcutover: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pgcutover: {}", crate::collect::poller::error_text(&e));
            ExitCode::from(2)
        }
    }
}

async fn run(cmd: Command, settings: Settings) -> Result<ExitCode> {
    match cmd {
        Command::Status { json } => {
            let st = status(&settings).await;
            print(&st, json)?;
            // The report is complete either way; the code tells scripts a side was not read.
            let all_read = st.sides.blue.reachable && st.sides.green.reachable;
            Ok(if all_read {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Check { json } => {
            let st = status(&settings).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&st.checks)?);
            } else {
                print!("{}", report::text::checks(&st));
            }
            Ok(if st.blocking_failures().next().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

pub async fn status(settings: &Settings) -> report::Status {
    let (b, g) = snapshot::read_both(settings, true).await;
    report::build(&settings.names, &settings.app_roles, &b, &g)
}

fn print(st: &report::Status, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(st)?);
    } else {
        print!("{}", report::text::status(st));
    }
    Ok(())
}
