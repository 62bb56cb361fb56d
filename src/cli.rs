//! Command line: parse, load configuration, dispatch. Exit codes: 0 ok, 1 a blocking check
//! failed (`check`), 2 bad configuration or usage, 3 a side could not be read (`status`, which
//! still prints everything else), 4 an action refused (a guard failed, or not confirmed), 5 an
//! action failed and the engine put things back (safe), 6 an action failed after the target
//! took over (rerun it to finish).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{Result, eyre};

use crate::collect::reading;
use crate::config::{self, Overrides, Settings};
use crate::domain::guards::Action;
use crate::engine::{self, Outcome};
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
    /// Dashboard: allow actions (without it the dashboard only watches)
    #[arg(long)]
    pub write: bool,
    /// Dashboard theme: dark (default), light, mono, or NAME.toml in $XDG_CONFIG_HOME/pgcutover/themes
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Dashboard: journal file of the actions it runs (default: $XDG_STATE_HOME/pgcutover/journal.jsonl)
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Without a command: the dashboard
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Two local PostgreSQL clusters, a write workload, prepared and replicating, and the
    /// dashboard in write mode: press C to cut over and R to roll back. Removes everything on exit.
    Demo {
        /// Write SVG screenshots of the demo's dashboard into this directory, then exit
        #[arg(long, value_name = "DIR")]
        screenshots: Option<PathBuf>,
        /// Writes per second of the demo workload (0: none)
        #[arg(long, default_value_t = 50)]
        tps: u32,
        /// Dashboard theme: dark (default), light, mono, or NAME.toml in $XDG_CONFIG_HOME/pgcutover/themes
        #[arg(long, value_name = "NAME")]
        theme: Option<String>,
    },
    /// One snapshot of both sides: phase, alarms, replication, checks, schema and sequence diff
    Status {
        /// Machine-readable output (documented in the README)
        #[arg(long)]
        json: bool,
    },
    /// Pre-flight checks; exits 1 when a blocking check fails
    Check {
        /// Machine-readable output: each check with its id, severity, finding and fix
        #[arg(long)]
        json: bool,
    },
    /// Compare the rows of BLUE and GREEN table by table while they replicate; exits 1 when a
    /// table has a mismatch (hot tables, which changed at every read, are warnings)
    Verify {
        /// Machine-readable output: every table with its verdict, and the keys of mismatched rows
        #[arg(long)]
        json: bool,
        /// Only the tables matching (`orders`, `public.order*`; `*` and `?`); repeatable
        #[arg(long, value_name = "PATTERN")]
        table: Vec<String>,
        /// Start over instead of going on with an interrupted verify of the same tables
        #[arg(long)]
        restart: bool,
    },
    /// Show an action's guards (evaluated now) and every statement it would run; changes nothing
    Plan {
        #[command(flatten)]
        target: ActionArgs,
        /// Machine-readable output: the guards, the mode and every step with its SQL
        #[arg(long)]
        json: bool,
    },
    /// Run an action: guards re-checked on fresh data, every statement journaled
    Run {
        #[command(flatten)]
        target: ActionArgs,
        /// Do not ask for confirmation (required when not on a terminal)
        #[arg(long)]
        yes: bool,
        /// Print the outcome as JSON
        #[arg(long)]
        json: bool,
        /// Journal file (default: $XDG_STATE_HOME/pgcutover/journal.jsonl)
        #[arg(long, value_name = "PATH")]
        journal: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    Blue,
    Green,
}

#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// The action
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(action_words()))]
    pub action: String,
    /// The side, for fence and unfence
    #[arg(value_enum)]
    pub side: Option<SideArg>,
    /// start: the LSN of GREEN's `redo done at X/Y` line, instead of reading the log (origin = X/Y + 1)
    #[arg(long, value_name = "X/Y")]
    pub lsn: Option<String>,
    /// start: use --lsn as the origin exactly (a point-in-time restore that logged `recovery stopping before`)
    #[arg(long, requires = "lsn")]
    pub exact: bool,
}

/// The action words with their one-line help, from the domain's one list of actions.
fn action_words() -> Vec<clap::builder::PossibleValue> {
    use crate::domain::observed::Side;
    Action::WORDS
        .iter()
        .filter_map(|w| {
            let a = Action::from_word(w, None)
                .or_else(|_| Action::from_word(w, Some(Side::Blue)))
                .ok()?;
            Some(clap::builder::PossibleValue::new(*w).help(a.describe()))
        })
        .collect()
}

impl ActionArgs {
    fn resolve(&self) -> Result<(Action, engine::RunOptions)> {
        use crate::domain::observed::Side;
        let side = self.side.map(|s| {
            if s == SideArg::Blue {
                Side::Blue
            } else {
                Side::Green
            }
        });
        let action = Action::from_word(&self.action, side).map_err(|e| eyre!(e))?;
        if self.lsn.is_some() && action != Action::Start {
            color_eyre::eyre::bail!("--lsn is for `start` only");
        }
        let lsn = match &self.lsn {
            None => None,
            Some(l) => Some(
                l.parse()
                    .map_err(|e| color_eyre::eyre::eyre!("--lsn: {e}"))?,
            ),
        };
        Ok((
            action,
            engine::RunOptions {
                lsn,
                exact: self.exact,
                journal: None,
            },
        ))
    }
}

/// Levels other crates may log at, whatever `PGCUTOVER_LOG` asks: below INFO, tokio-postgres
/// logs every statement it sends (a `CREATE SUBSCRIPTION` carries a password) and the AWS SDK
/// its signed requests.
const THIRD_PARTY_MAX: tracing_subscriber::filter::LevelFilter =
    tracing_subscriber::filter::LevelFilter::INFO;

/// The log file as text a terminal can show: server messages and names in it are escaped.
struct SafeLog(std::fs::File);

impl std::io::Write for SafeLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one whole event per call; a split character only loses itself.
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(crate::text::terminal_safe(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The log file: `--log-file` (an error if it cannot be written) or the XDG default (a
/// warning), created 0600. Never the terminal.
fn init_logging(explicit: Option<PathBuf>) -> Result<(), String> {
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let required = explicit.is_some();
    let Some(path) = explicit.or_else(|| config::state_dir().map(|d| d.join("pgcutover.log")))
    else {
        return Ok(());
    };
    let file = match crate::files::append_private(&path) {
        Ok(f) => f,
        Err(e) => {
            let msg = format!(
                "cannot write the log file {}: {e}; pass --log-file PATH to a writable file",
                path.display()
            );
            if required {
                return Err(msg);
            }
            eprintln!("pgcutover: warning: {msg}; logging is off");
            return Ok(());
        }
    };
    let (env, bad) = match std::env::var("PGCUTOVER_LOG") {
        Err(_) => (tracing_subscriber::EnvFilter::new("info"), None),
        Ok(v) => match tracing_subscriber::EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                tracing_subscriber::EnvFilter::new("info"),
                Some(e.to_string()),
            ),
        },
    };
    if let Some(e) = bad {
        eprintln!(
            "pgcutover: warning: PGCUTOVER_LOG is not a level or filter ({}); logging at info",
            crate::text::echo(&e)
        );
    }
    let cap = Targets::new()
        .with_target("pgcutover", LevelFilter::TRACE)
        .with_default(THIRD_PARTY_MAX);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(SafeLog(file)))
        .with_filter(env.and(cap));
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// Everything the CLI prints goes through these: names from the databases, lines from logs and
/// values the operator typed may hold terminal control sequences, which are escaped here, once,
/// for every command.
fn out(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(crate::text::terminal_safe(s).as_bytes());
    let _ = o.flush();
}

fn out_json(s: &str) {
    out(&crate::text::json_safe(s));
    out("\n");
}

fn err(s: &str) {
    eprintln!("{}", crate::text::terminal_safe(s));
}

/// An operational error explains itself by its chain of causes; a backtrace is for panics.
/// color-eyre's report hook captures and resolves a backtrace for every error when
/// `RUST_BACKTRACE` is set: on the dashboard, every failed poll of an unreachable side paid for it,
/// and the symbol tables it loaded held 40 MB of the process's 54 MB.
struct CausesOnly;

impl color_eyre::eyre::EyreHandler for CausesOnly {
    fn debug(
        &self,
        error: &(dyn std::error::Error + 'static),
        f: &mut std::fmt::Formatter<'_>,
    ) -> std::fmt::Result {
        f.write_str(&crate::format::error_chain(error))
    }
}

fn install_hooks() {
    let (panic_hook, _report_hook) = color_eyre::config::HookBuilder::default().into_hooks();
    panic_hook.install();
    let _ = color_eyre::eyre::set_hook(Box::new(|_| Box::new(CausesOnly)));
}

/// Entry point for the binary.
pub fn main() -> ExitCode {
    install_hooks();
    let cli = Cli::parse();
    if let Err(e) = init_logging(cli.log_file.clone()) {
        err(&format!("pgcutover: {e}"));
        return ExitCode::from(2);
    }
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
    let code = dispatch(&rt, cli);
    // A reader stuck in a blocking call (a log on a hung mount) must not hold the exit: the
    // runtime would otherwise wait for it forever.
    rt.shutdown_timeout(std::time::Duration::from_millis(300));
    code
}

fn dispatch(rt: &tokio::runtime::Runtime, cli: Cli) -> ExitCode {
    let load_theme = |name: Option<&str>| {
        crate::ui::Theme::load(name.unwrap_or("dark"), crate::ui::theme::no_color_env())
            .map_err(|e| err(&format!("pgcutover: {e}")))
            .ok()
    };
    if let Some(Command::Demo {
        screenshots,
        tps,
        theme,
    }) = &cli.command
    {
        let Some(theme) = load_theme(theme.as_deref()) else {
            return ExitCode::from(2);
        };
        return crate::demo::main(rt, screenshots.clone(), *tps, theme);
    }
    let ov = Overrides {
        config: cli.config.clone(),
        blue_dsn: cli.blue_dsn.clone(),
        green_dsn: cli.green_dsn.clone(),
        app_roles: cli.app_roles.clone(),
    };
    let settings = match config::load(&ov) {
        Ok(s) => s,
        Err(e) => {
            err(&format!("pgcutover: {}", crate::format::report_chain(&e)));
            return ExitCode::from(2);
        }
    };
    let Some(command) = cli.command else {
        let Some(theme) = load_theme(cli.theme.as_deref().or(settings.theme.as_deref())) else {
            return ExitCode::from(2);
        };
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            eprintln!(
                "pgcutover: the dashboard needs a terminal; for scripts use `pgcutover status --json` or `pgcutover check`"
            );
            return ExitCode::from(2);
        }
        let opts = crate::tui::DashboardOptions {
            write: cli.write,
            theme,
            journal: cli.journal.clone(),
            app_counts: None,
        };
        return match rt.block_on(crate::tui::run(settings, opts)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                crate::tui::restore();
                err(&format!("pgcutover: {}", crate::format::report_chain(&e)));
                ExitCode::from(2)
            }
        };
    };
    match rt.block_on(run(command, settings)) {
        Ok(code) => code,
        Err(e) => {
            err(&format!("pgcutover: {}", crate::format::report_chain(&e)));
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::too_many_lines)] // one arm per command, each a few lines that call into the layers below
async fn run(cmd: Command, settings: Settings) -> Result<ExitCode> {
    match cmd {
        Command::Demo { .. } => unreachable!("the demo needs no configuration and starts in main"),
        Command::Plan { target, json } => {
            let (action, opts) = target.resolve()?;
            let (_, plan) = engine::plan(action, &settings, &opts).await;
            if json {
                out_json(&serde_json::to_string_pretty(&plan)?);
            } else {
                out(&report::text::plan(&plan));
            }
            Ok(if plan.refused() {
                ExitCode::from(4)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Run {
            target,
            yes,
            json,
            journal,
        } => {
            let (action, mut opts) = target.resolve()?;
            opts.journal = journal;
            if !yes {
                use std::io::{BufRead, IsTerminal, Write};
                if !std::io::stdin().is_terminal() {
                    color_eyre::eyre::bail!(
                        "`run` changes the databases: pass --yes, or run it on a terminal to confirm"
                    );
                }
                let (_, plan) = engine::plan(action, &settings, &opts).await;
                out(&report::text::plan(&plan));
                if plan.refused() {
                    return Ok(ExitCode::from(4));
                }
                out(&format!("type yes to run {}: ", plan.action));
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if answer.trim() != "yes" {
                    eprintln!("not run");
                    return Ok(ExitCode::from(4));
                }
            }
            let mut print_event = |e: &engine::Event| err(&report::text::event(e));
            let outcome = engine::run(action, &settings, &opts, &mut print_event).await?;
            if json {
                out_json(&serde_json::to_string_pretty(&outcome)?);
            } else {
                out(&report::text::outcome(&outcome));
            }
            Ok(match outcome {
                Outcome::Done { .. } | Outcome::NothingToDo { .. } => ExitCode::SUCCESS,
                Outcome::Refused { .. } => ExitCode::from(4),
                Outcome::FailedSafe { .. } => ExitCode::from(5),
                Outcome::FailedAfterSwitch { .. } => ExitCode::from(6),
            })
        }
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
        Command::Verify {
            json,
            table,
            restart,
        } => {
            // read-only for the data: a journal that cannot be opened is said, not a refusal
            let mut journal = engine::journal::default_path()
                .ok_or_else(|| eyre!("no place for the journal: set $XDG_STATE_HOME or HOME"))
                .and_then(|p| engine::journal::Journal::open(&p, "verify"))
                .map_err(|e| {
                    err(&format!(
                        "the verdicts are not journaled: {}",
                        crate::format::report_chain(&e)
                    ));
                })
                .ok();
            let mut tell = |said: engine::verify::Said<'_>| match said {
                engine::verify::Said::Line(line) => err(&crate::text::one_line(line)),
                engine::verify::Said::Table(source, t) => {
                    if let Some(j) = journal.as_mut()
                        && let Err(e) = engine::verify::journal_table(j, source, t)
                    {
                        err(&format!(
                            "the verdict of {} was not journaled: {}",
                            crate::text::one_line(&t.name()),
                            crate::format::report_chain(&e)
                        ));
                    }
                }
            };
            let report = match engine::verify::run(&settings, &table, restart, &mut tell).await {
                Ok(r) => r,
                Err(e) => {
                    err(&format!(
                        "pgcutover verify: {}",
                        crate::format::report_chain(&e)
                    ));
                    // patterns to mend are a usage error; else no verdict: the rows could not
                    // be compared
                    let usage = e.downcast_ref::<engine::verify::NoMatch>().is_some();
                    return Ok(ExitCode::from(if usage { 2 } else { 3 }));
                }
            };
            if let Err(e) = engine::verify::record(&report, journal.as_mut()) {
                err(&format!(
                    "the result was not recorded ({}); it is printed below",
                    crate::format::report_chain(&e)
                ));
            }
            if json {
                out_json(&serde_json::to_string_pretty(&report)?);
            } else {
                out(&report::text::verify(&report));
            }
            Ok(ExitCode::from(report.exit_code()))
        }
        Command::Check { json } => {
            let st = status(&settings).await;
            if json {
                out_json(&serde_json::to_string_pretty(&st.checks)?);
            } else {
                out(&report::text::checks(&st));
            }
            Ok(if st.blocking_failures().next().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// The pair's status; with several databases replicated, each one's phase and failing checks
/// too, the pair's phase being the least advanced one's.
pub async fn status(settings: &Settings) -> report::Status {
    let mut st = status_databases(settings).await;
    st.verify = engine::verify::last()
        .map(|r| crate::domain::verify::Last::of(&r, time::OffsetDateTime::now_utc()));
    st
}

async fn status_databases(settings: &Settings) -> report::Status {
    let scopes = match crate::engine::scope::resolve(settings).await {
        Ok((_, scopes)) if scopes.len() > 1 => scopes,
        Ok((main, _)) => return status_of(&main).await,
        Err(e) => {
            let mut st = status_of(settings).await;
            st.checks.push(crate::domain::checks::Check {
                id: "databases",
                severity: crate::domain::checks::Severity::Blocking,
                ok: false,
                side: None,
                finding: e,
                fix: "list the databases in [replication] databases".into(),
            });
            return st;
        }
    };
    let first = status_of(&scopes[0].settings).await;
    let others = futures_util::future::join_all(scopes[1..].iter().map(|sc| async move {
        let (b, g) = reading::read_both(&sc.settings, true).await;
        let st = report::build(&sc.settings.names, &sc.settings.app_roles, &b, &g);
        (sc.db.clone().unwrap_or_default(), st)
    }))
    .await;
    let name = scopes[0].db.clone().unwrap_or_default();
    report::merge_databases((&name, first), others)
}

async fn status_of(settings: &Settings) -> report::Status {
    let budget = settings
        .aws
        .as_ref()
        .map_or(settings.poll.timeout, |a| a.timeout);
    let ((mut b, mut g), aws, traffic) = tokio::join!(
        reading::read_both(settings, true),
        crate::collect::rds::read(settings, budget),
        crate::pgbouncer::read(&settings.traffic, settings.poll.timeout)
    );
    b.rds = aws.blue;
    g.rds = aws.green;
    let mut st = report::build(&settings.names, &settings.app_roles, &b, &g);
    st.snapshot = aws.snapshot;
    if let Some(t) = traffic {
        report::with_traffic(&mut st, t);
    }
    let has_source = settings.redo_log_file.is_some()
        || (settings.aws.is_some() && settings.green.rds_instance.is_some());
    if has_source {
        let found =
            match tokio::time::timeout(budget, crate::aws::redo_source::locate(settings)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "the redo source did not answer within {} s",
                    budget.as_secs()
                )),
            };
        st.redo = Some(report::redo_out(
            found,
            &settings.names,
            st.phase,
            b.live.as_ref().ok(),
        ));
    }
    st
}

fn print(st: &report::Status, json: bool) -> Result<()> {
    if json {
        out_json(&serde_json::to_string_pretty(st)?);
    } else {
        out(&report::text::status(st));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn every_flag_and_argument_is_described_in_help() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in c.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "pgcutover", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    #[test]
    fn dashboard_flags_only_where_they_apply() {
        assert!(Cli::try_parse_from(["pgcutover", "--write", "--journal", "j"]).is_ok());
        assert!(Cli::try_parse_from(["pgcutover", "demo", "--theme", "mono"]).is_ok());
        for args in [
            &["pgcutover", "status", "--write"][..],
            &["pgcutover", "check", "--theme", "mono"],
            &["pgcutover", "run", "cutover", "--write"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["pgcutover", "run", "cutover", "--journal", "j"]).is_ok());
    }
}
