//! Configuration: a TOML file (`--config`, `$PGCUTOVER_CONFIG`, or the XDG default), then
//! environment, then flags. Every mistake is an error that names the key and its line.

pub mod conninfo;
mod file;
pub mod libpq_files;
mod sections;
mod side;
mod traffic;

pub use traffic::{Bouncer, CommandRouter, Retarget, RouteTarget, Router, TrafficSettings};

use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, bail};

use crate::domain::observed::Side;
use crate::domain::phase::MigrationNames;
use crate::domain::rds_plan::RestoreSettings;
use conninfo::ConnInfo;

pub const DEFAULT_PUBLICATION: &str = "pgcutover_pub";
pub const DEFAULT_SLOT: &str = "pgcutover_slot";
pub const DEFAULT_SUBSCRIPTION: &str = "pgcutover_sub";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    /// Chain and host name checked against `sslrootcert`.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            // With a root file we always verify the host name too, so verify-ca is verify-full.
            "verify-ca" | "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Which certificates a verified TLS connection trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// Encrypt only (libpq's require/prefer without a root file).
    None,
    File(PathBuf),
    /// The RDS CA bundle compiled into the binary.
    RdsBundle,
}

/// How the tool logs in to a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A password from the environment, a service file or the password file.
    Password,
    /// An RDS IAM database authentication token, made fresh for every connection.
    Iam(Box<AwsSettings>),
}

/// How to reach one side. Holds no password: that is looked up at connect time.
#[derive(Debug, Clone)]
pub struct SideSettings {
    pub side: Side,
    pub conninfo: ConnInfo,
    pub sslmode: SslMode,
    pub roots: Roots,
    /// The RDS instance identifier of this side, when it is one.
    pub rds_instance: Option<String>,
    pub auth: Auth,
    /// Environment variable holding this side's password.
    pub password_env: String,
    /// Where the settings came from, for messages.
    pub origin: String,
    /// How the *other* server reaches this one for replication; `None` = derived from this
    /// side's connection (host, port, dbname, replication user, sslmode).
    pub replication_conninfo: Option<ConnInfo>,
}

impl SideSettings {
    /// This side's server and credentials, connected to another of its databases.
    #[must_use]
    pub fn for_database(&self, dbname: &str) -> SideSettings {
        SideSettings {
            conninfo: self.conninfo.clone().with_dbname(dbname),
            // the other server's subscription connects to the same database
            replication_conninfo: self
                .replication_conninfo
                .clone()
                .map(|c| c.with_dbname(dbname)),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    pub interval: Duration,
    pub timeout: Duration,
    /// Read the catalogue-wide inventory every N live polls.
    pub inventory_every: u32,
}

/// The cutover's gate and time limits.
#[derive(Debug, Clone)]
pub struct CutoverSettings {
    /// The lag (bytes) under which the cutover may start …
    pub max_lag_bytes: u64,
    /// … for this many consecutive samples …
    pub steady_samples: usize,
    /// … taken this far apart.
    pub sample_interval: Duration,
    /// Longest wait for the target to confirm everything the fenced source wrote.
    pub drain_timeout: Duration,
    /// Longest wait for the app's sessions to end after NOLOGIN.
    pub fence_timeout: Duration,
    /// How long the lag gate waits for the lag to come down before it refuses.
    pub gate_timeout: Duration,
    /// How long a fenced session's open transaction may take to finish before it is ended
    /// (idle sessions end at once); zero ends every session at once.
    pub fence_grace: Duration,
    /// Other logical slots (CDC, DMS) the switch creates on the target inside the window, so
    /// their consumers resume there from the switch point.
    pub carry_slots: Vec<String>,
    /// pg_cron's jobs move with the traffic: the switch pauses the source's active jobs inside
    /// the window and activates the same jobs on the target before it serves.
    pub move_pg_cron: bool,
}

/// Where `start` reads GREEN's `redo done at` line from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedoSource {
    /// CloudWatch Logs, then RDS log files, when GREEN is an RDS instance; else the file.
    Auto,
    CloudWatch,
    RdsLogs,
    File,
}

impl RedoSource {
    pub fn name(self) -> &'static str {
        match self {
            RedoSource::Auto => "auto",
            RedoSource::CloudWatch => "cloudwatch",
            RedoSource::RdsLogs => "rds-logs",
            RedoSource::File => "file",
        }
    }
}

/// The AWS side: where the APIs are and how the RDS actions behave. Credentials come from the
/// standard chain (environment, profile, SSO, credential process, instance role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// The migration's snapshot of BLUE.
    pub snapshot: Option<String>,
    /// The engine version `upgrade-snapshot` moves the snapshot to.
    pub engine_version: Option<String>,
    pub restore: RestoreSettings,
    /// How often actions poll Describe* while waiting.
    pub poll_interval: Duration,
    /// CloudWatch metrics are read at most this often (they cost money per metric).
    pub metrics_interval: Duration,
    /// One API call's limit, retries included.
    pub timeout: Duration,
    /// Longest wait for a snapshot, an upgrade or a restore.
    pub action_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub blue: SideSettings,
    pub green: SideSettings,
    pub names: MigrationNames,
    /// The role replication connects as; `None` = each side's connection user.
    pub replication_user: Option<String>,
    pub app_roles: Vec<String>,
    pub redo_source: RedoSource,
    pub redo_log_file: Option<PathBuf>,
    /// Present when a side is an RDS instance or `[aws]` is configured.
    pub aws: Option<AwsSettings>,
    /// Ignore redo lines stamped before this (GREEN's creation time).
    pub redo_not_before: Option<time::OffsetDateTime>,
    pub cutover: CutoverSettings,
    pub poll: PollSettings,
    pub file: Option<PathBuf>,
    /// The `[keys]` table as written: command name → key names. The dashboard turns it into its
    /// keymap (and reports a mistake there), so a bad entry never stops `status` or `run`.
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// `[ui] theme`; `--theme` wins.
    pub theme: Option<String>,
    /// `[ui] confirm = "type"` (the default): cutover, rollback and finalize run only once their
    /// name is typed in the dialog; `"enter"`: Enter alone confirms them, as every other action.
    pub confirm_by_typing: bool,
    pub traffic: TrafficSettings,
    /// `[analyze] jobs`: how many tables the `analyze` action analyzes at once, per database.
    pub analyze_jobs: usize,
    pub verify: VerifySettings,
}

/// `[verify]`: how hard `verify` may read the servers.
#[derive(Debug, Clone)]
pub struct VerifySettings {
    /// Rows read per second on each side, at most (0: no limit).
    pub max_rows_per_s: u64,
    /// Rows per chunk of a table with a key.
    pub chunk_rows: u64,
    /// Each statement's limit on the servers: a chunk never holds a snapshot longer.
    pub statement_timeout: Duration,
    /// The switch refuses without a verify of its direction that found no mismatch.
    pub required: bool,
    /// How long verify waits for the target to apply past a chunk's read before it stops.
    pub apply_timeout: Duration,
}

impl Settings {
    /// The longest a switch of this configuration may hold the app paused on purpose: the
    /// PAUSE's own limit, then a fence and a drain at theirs. A pause seen for longer is not
    /// the tool's doing any more (or it was killed mid-switch).
    pub fn longest_hold(&self) -> Duration {
        self.traffic.pause_timeout + self.cutover.fence_timeout + self.cutover.drain_timeout
    }

    /// These settings in database `db` of both sides: the connections, the one the other
    /// server replicates through, and the names of that database's publication, slot and
    /// subscription.
    #[must_use]
    pub fn for_database(&self, db: &str) -> Settings {
        Settings {
            blue: self.blue.for_database(db),
            green: self.green.for_database(db),
            names: self.names.for_database(db),
            ..self.clone()
        }
    }

    pub fn side(&self, s: Side) -> &SideSettings {
        match s {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }
}

/// What the command line and environment add on top of the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub blue_dsn: Option<String>,
    pub green_dsn: Option<String>,
    pub app_roles: Option<Vec<String>>,
}

/// `$XDG_CONFIG_HOME/pgcutover/config.toml` (or `~/.config/…`).
pub fn default_config_path() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("pgcutover").join("config.toml"))
}

/// `$XDG_STATE_HOME/pgcutover` (or `~/.local/state/pgcutover`): logs and journals.
pub fn state_dir() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("pgcutover"))
}

static VERIFY_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Where verify keeps its last result and a run's progress: the state directory, unless this
/// process said otherwise (the demo keeps its own, so that it neither replaces nor shows the
/// result of a real pair's verify).
pub fn verify_dir() -> Option<PathBuf> {
    VERIFY_DIR.get().cloned().or_else(state_dir)
}

/// Keep verify's files in `dir` for the rest of the process (the first call wins).
pub fn keep_verify_in(dir: PathBuf) {
    let _ = VERIFY_DIR.set(dir);
}

fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(fallback)))
}

/// No configuration is this large; a bigger "file" is a wrong path (`/dev/zero`, a log).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Load the configuration: `--config` (must exist), else `$PGCUTOVER_CONFIG` (must exist), else
/// the XDG default (optional), then the overrides.
pub fn load(ov: &Overrides) -> Result<Settings> {
    let env_path = std::env::var_os("PGCUTOVER_CONFIG").map(PathBuf::from);
    let (path, required) = match (&ov.config, env_path) {
        (Some(p), _) => (Some(p.clone()), true),
        (None, Some(p)) => (Some(p), true),
        (None, None) => (default_config_path(), false),
    };
    let (text, file) = match &path {
        Some(p) => match crate::files::read_text_capped(p, MAX_CONFIG_BYTES, "configuration") {
            Ok(t) => (t, Some(p.clone())),
            Err(crate::files::ReadError::NotFound(_)) if !required => (String::new(), None),
            Err(e) => bail!(
                "cannot read the configuration file: {e}; pass --config PATH (see pgcutover.example.toml)"
            ),
        },
        None => (String::new(), None),
    };
    let nothing_given = file.is_none() && ov.blue_dsn.is_none() && ov.green_dsn.is_none();
    from_str(&text, file.as_deref(), ov).map_err(|e| {
        if nothing_given {
            // Most likely a first run: say where the file was looked for and how to make one.
            let looked = path.map_or_else(
                || "no $PGCUTOVER_CONFIG, and neither $XDG_CONFIG_HOME nor $HOME is set".into(),
                |p| format!("{} (absent; $PGCUTOVER_CONFIG is not set)", p.display()),
            );
            e.wrap_err(format!(
                "no configuration file: looked for {looked}. Copy pgcutover.example.toml there and \
                 fill in [blue] and [green], or pass --config PATH, or --blue-dsn/--green-dsn"
            ))
        } else {
            e
        }
    })
}

/// Parse and validate configuration text; `file` only labels messages.
pub fn from_str(text: &str, file: Option<&Path>, ov: &Overrides) -> Result<Settings> {
    let place = file::Place {
        text,
        label: file.map_or_else(|| "configuration".into(), |p| p.display().to_string()),
    };
    let fc = file::parse(&place)?;
    let (names, replication_user) = sections::replication(&fc.replication, &place)?;
    let app_roles = sections::app_roles(ov, &fc.cutover, &place)?;
    let aws = sections::aws(
        fc.aws.as_ref(),
        fc.restore.as_ref(),
        [fc.blue.as_ref(), fc.green.as_ref()],
        &place,
    )?;
    let side = |s: Side, f: &Option<file::SideFile>, flag: &Option<String>| {
        side::resolve(s, f.as_ref(), flag.as_ref(), aws.as_ref(), &place)
    };
    let blue = side(Side::Blue, &fc.blue, &ov.blue_dsn)?;
    let green = side(Side::Green, &fc.green, &ov.green_dsn)?;
    let (redo_source, redo_log_file, redo_not_before) =
        sections::redo(&fc.redo, green.rds_instance.is_some(), &place)?;
    Ok(Settings {
        keys: sections::keys(fc.keys.as_ref()),
        theme: fc.ui.theme.clone(),
        confirm_by_typing: match fc.ui.confirm.as_ref() {
            None => true,
            Some(c) => match c.get_ref().as_str() {
                "type" => true,
                "enter" => false,
                other => bail!(
                    "{}: [ui] confirm = \"{}\" is not one of type, enter",
                    place.at(c.span()),
                    crate::text::echo(other)
                ),
            },
        },
        blue,
        green,
        names,
        replication_user,
        app_roles,
        redo_source,
        redo_log_file,
        aws,
        redo_not_before,
        cutover: sections::cutover(&fc.cutover, &place)?,
        poll: sections::poll(&fc.poll, &place)?,
        analyze_jobs: sections::analyze_jobs(&fc.analyze, &place)?,
        verify: sections::verify(&fc.verify, &place)?,
        traffic: traffic::resolve(&fc.traffic, [fc.blue.as_ref(), fc.green.as_ref()], &place)?,
        file: file.map(Path::to_path_buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[blue]
dsn = "host=10.0.0.1 port=5432 dbname=app user=admin"
[green]
dsn = "postgresql://admin@green.example:5433/app?sslmode=require"
[replication]
slot = "my_slot"
[cutover]
app_roles = ["app", "Weird \"App\""]
"#;

    fn load(text: &str) -> Result<Settings> {
        from_str(
            text,
            Some(Path::new("/etc/pgc.toml")),
            &Overrides::default(),
        )
    }

    #[test]
    fn good_file_with_defaults() {
        let s = load(GOOD).unwrap();
        assert_eq!(s.names.slot, "my_slot");
        assert_eq!(s.names.publication, DEFAULT_PUBLICATION);
        assert_eq!(s.names.subscription, DEFAULT_SUBSCRIPTION);
        assert_eq!(
            s.app_roles,
            vec!["app".to_string(), "Weird \"App\"".to_string()]
        );
        assert_eq!(s.green.sslmode, SslMode::Require);
        assert_eq!(s.blue.sslmode, SslMode::Prefer);
        assert_eq!(s.green.conninfo.get("port"), Some("5433"));
        assert_eq!(s.blue.password_env, "PGCUTOVER_BLUE_PASSWORD");
        assert_eq!(s.poll.interval, Duration::from_secs(1));
    }

    #[test]
    fn databases_are_a_list_or_all() {
        use crate::domain::names::DatabaseSet;
        let base = "[blue]\ndsn = \"host=a dbname=app\"\n[green]\ndsn = \"host=b dbname=app\"\n[replication]\n";
        let s = load(base).unwrap();
        assert_eq!(s.names.databases, DatabaseSet::Dsn);
        let s = load(&format!("{base}databases = \"all\"\n")).unwrap();
        assert_eq!(s.names.databases, DatabaseSet::All);
        let s = load(&format!(
            "{base}databases = [\"app\", \"Ünïcode \\\"db\\\"\"]\n"
        ))
        .unwrap();
        assert_eq!(
            s.names.databases,
            DatabaseSet::Listed(vec!["app".into(), "Ünïcode \"db\"".into()])
        );
        let per = s.for_database("Ünïcode \"db\"");
        assert!(
            per.names.slot.starts_with("pgcutover_slot_"),
            "{}",
            per.names.slot
        );
        assert_eq!(per.blue.conninfo.get("dbname"), Some("Ünïcode \"db\""));
        assert_eq!(per.names.publication, s.names.publication);
        // one listed database keeps today's names
        let one = load(&format!("{base}databases = [\"billing\"]\n")).unwrap();
        assert_eq!(one.for_database("billing").names.slot, DEFAULT_SLOT);
        for (bad, says) in [
            ("databases = \"app\"", "give a list"),
            ("databases = []", "is empty"),
            ("databases = [\"a\", \"a\"]", "twice"),
            ("databases = 3", "line 6"),
        ] {
            let e = load(&format!("{base}{bad}\n")).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("line 6"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = load("[blue]\ndsn = \"host=a\"\nhots = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/pgc.toml"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("unknown field `hots`"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_line() {
        let e = load(
            "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n[cutover]\napp_roles = \"app\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 6"), "{e}");
        assert!(e.contains("app_roles") || e.contains("sequence"), "{e}");
    }

    #[test]
    fn missing_side_says_how_to_fix() {
        let e = load("[blue]\ndsn = \"host=a\"\n").unwrap_err().to_string();
        assert!(e.contains("no [green] connection"), "{e}");
        assert!(e.contains("PGCUTOVER_GREEN_DSN"), "{e}");
    }

    #[test]
    fn password_in_file_is_refused_without_echoing_it() {
        let e = load("[blue]\ndsn = \"host=a password=hunter2\"\n[green]\ndsn=\"host=b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("contains a password"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = load("[blue]\ndsn = \"postgresql://u:hunter2@h/db\"\n[green]\ndsn=\"host=b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("hunter2") && e.contains("PGCUTOVER_BLUE_PASSWORD"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_explained() {
        let base = "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n";
        let e = load(&format!("{base}[replication]\nslot = \"My Slot\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 6") && e.contains("lower-case"), "{e}");
        let e =
            load("[blue]\ndsn = \"host=a\"\nsslmode = \"sometimes\"\n[green]\ndsn = \"host=b\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("line 3") && e.contains("sometimes"), "{e}");
        let e = load("[blue]\ndsn = \"host=a sslmode=verify-full\"\n[green]\ndsn = \"host=b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs sslrootcert"), "{e}");
        let e =
            load("[blue]\ndsn = \"host=a sslmode=prefer bogus=1\"\n[green]\ndsn = \"host=b\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("unknown connection keyword `bogus`") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let ov = Overrides {
            blue_dsn: Some("host=flag port=1".into()),
            app_roles: Some(vec!["x".into()]),
            ..Default::default()
        };
        let s = from_str(GOOD, None, &ov).unwrap();
        assert_eq!(s.blue.conninfo.get("host"), Some("flag"));
        assert_eq!(s.blue.origin, "--blue-dsn");
        assert_eq!(s.app_roles, vec!["x".to_string()]);
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../pgcutover.example.toml");
        let s = from_str(text, None, &Overrides::default()).unwrap();
        assert_eq!(s.names.slot, DEFAULT_SLOT);
        assert!(!s.app_roles.is_empty());
    }

    #[test]
    fn rds_hosts_verify_against_the_bundle_and_iam_needs_tls() {
        let s = load(
            r#"
[aws]
region = "eu-west-1"
[blue]
dsn = "host=blue.abc.eu-west-1.rds.amazonaws.com dbname=app user=admin"
rds_instance = "blue"
[green]
dsn = "host=127.0.0.1 dbname=app user=admin"
rds_instance = "green"
auth = "iam"
"#,
        )
        .unwrap();
        assert_eq!(s.blue.sslmode, SslMode::VerifyFull);
        assert_eq!(s.blue.roots, Roots::RdsBundle);
        assert_eq!(
            s.green.sslmode,
            SslMode::Require,
            "IAM tokens only over TLS"
        );
        assert!(matches!(s.green.auth, Auth::Iam(_)));
        assert_eq!(
            s.aws.as_ref().unwrap().metrics_interval,
            Duration::from_mins(1)
        );

        let e = load(
            r#"
[blue]
dsn = "host=127.0.0.1"
auth = "iam"
sslmode = "disable"
rds_instance = "blue"
[green]
dsn = "host=127.0.0.1"
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs TLS"), "{e}");
        let e = load(&format!("{GOOD}\n[aws]\nmetrics_interval_s = 10\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("below 60") && e.contains("line"), "{e}");
        let e = load(&format!("{GOOD}\n[redo]\nsource = \"cloudwatch\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no rds_instance"), "{e}");
        let e = load(&GOOD.replace("[green]", "[green]\nrds_instance = \"bad--name\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RDS instance identifiers"), "{e}");
        let long = format!("a{}", "b".repeat(63));
        let e = load(&GOOD.replace("[green]", &format!("[green]\nrds_instance = \"{long}\"")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 to 63"),
            "64 characters are too many for an instance: {e}"
        );
    }

    #[test]
    fn no_rds_settings_means_no_aws() {
        let s = load(GOOD).unwrap();
        assert!(s.aws.is_none());
        assert_eq!(s.redo_source, RedoSource::Auto);
        assert_eq!(s.blue.roots, Roots::None);
    }

    #[test]
    fn a_quoted_key_holding_a_secret_is_not_echoed() {
        let e = load("[blue]\n['dsn = \"host=a password=Zq9Xw7Kp']\n[green]\ndsn=\"host=b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("Zq9X") && e.contains("unknown field `…`"),
            "{e}"
        );
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn toml_errors_never_quote_the_line_or_a_value() {
        for text in [
            "[blue]\ndsn = \"host=a password=S3cret\n[green]\ndsn = \"host=b\"\n",
            "[blue]\ndsn = 'host=a password=S3cret\n",
            "[blue]\ndsn = \"\"\"host=a password=S3cret\n",
            "[blue]\ndsn = host=a password=S3cret\n",
            "[blue]\ndsn = [\"host=a password=S3cret\"]\n",
            "[blue]\ndsn = \"host=a\" password=S3cret\n",
            "[cutover]\napp_roles = \"S3cret\"\n",
            "[blue]\nS3cret = 1\n",
        ] {
            let e = load(text).unwrap_err().to_string();
            // an unknown key is a name the operator typed in place of one, so it may show
            if !text.contains("S3cret = 1") {
                assert!(!e.contains("S3cret"), "{text:?} → {e}");
            }
            assert!(e.contains("line "), "{text:?} → {e}");
        }
    }

    #[test]
    fn every_number_has_bounds() {
        let base = "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n";
        for (table, key, bad) in [
            ("aws", "poll_interval_s", "nan"),
            ("aws", "poll_interval_s", "-1.0"),
            ("aws", "poll_interval_s", "inf"),
            ("aws", "poll_interval_s", "1e300"),
            ("aws", "timeout_s", "0"),
            ("aws", "action_timeout_min", "9223372036854775807"),
            ("aws", "metrics_interval_s", "9223372036854775807"),
            ("cutover", "sample_interval_ms", "9223372036854775807"),
            ("cutover", "steady_samples", "9223372036854775807"),
            ("cutover", "steady_samples", "0"),
            ("cutover", "drain_timeout_s", "9223372036854775807"),
            ("cutover", "fence_timeout_s", "0"),
            ("cutover", "max_lag_bytes", "9223372036854775807"),
            ("poll", "interval_ms", "9223372036854775807"),
            ("poll", "timeout_ms", "1"),
            ("poll", "inventory_every", "0"),
            ("poll", "inventory_every", "4294967296"),
        ] {
            let text = format!("{base}[{table}]\n{key} = {bad}\n");
            let e = load(&text).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains("line "),
                "{key} = {bad} → {e}"
            );
        }
        let e = load(&format!(
            "{base}[cutover]\nsteady_samples = 100\nsample_interval_ms = 10000\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("within 60 s"), "{e}");
        // a negative number where an unsigned one goes is a type error, with its line
        let e = load(&format!("{base}[poll]\ninterval_ms = -5\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 6"), "{e}");
    }

    #[test]
    fn roles_are_validated_whatever_their_source() {
        let base = "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n";
        let long = "r".repeat(64);
        for roles in [
            vec![long.clone()],
            vec![String::new()],
            vec!["a\0b".into()],
            vec![],
            vec!["a".into(), "a".into()],
        ] {
            let ov = Overrides {
                app_roles: Some(roles.clone()),
                ..Default::default()
            };
            let e = from_str(base, None, &ov).unwrap_err().to_string();
            assert!(e.contains("--app-roles"), "{roles:?} → {e}");
            let list: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
            let text = format!("{base}[cutover]\napp_roles = [{}]\n", list.join(", "))
                .replace("\\0", "\\u0000");
            let e = load(&text).unwrap_err().to_string();
            assert!(e.contains("app_roles"), "{roles:?} → {e}");
        }
        let e = load(&format!("{base}[replication]\nuser = \"{long}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[replication] user") && e.contains("64 bytes"),
            "{e}"
        );
        for key in ["publication", "subscription"] {
            let e = load(&format!("{base}[replication]\n{key} = \"{long}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn a_config_path_that_is_not_a_small_regular_file_is_refused() {
        for p in ["/dev/zero", "/dev/urandom", "/"] {
            let ov = Overrides {
                config: Some(PathBuf::from(p)),
                ..Default::default()
            };
            let e = super::load(&ov).unwrap_err().to_string();
            assert!(
                e.contains("regular file") || e.contains("directory"),
                "{p}: {e}"
            );
        }
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.toml");
        std::fs::write(
            &big,
            "#".repeat(usize::try_from(MAX_CONFIG_BYTES).unwrap() + 1),
        )
        .unwrap();
        let ov = Overrides {
            config: Some(big),
            ..Default::default()
        };
        let e = super::load(&ov).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_loads_or_errs_without_panic(text in "[\\[\\]a-z_=\"'0-9., \\n-]{0,300}") {
                let _ = load(&text);
            }

            #[test]
            fn token_soup_loads_or_errs_without_panic(text in crate::text::token_soup(&[
                "[blue]", "[green]", "[switch]", "[", "]", "dsn", "host", "=", "\"", "'", "`",
                "'''", "\"\"\"", "\\", "password=", "postgres://u:p@h/d", "?", "#", ".", ",", "1",
                "{", "}", "true",
            ], 60)) {
                let _ = load(&text);
            }

            #[test]
            fn any_bytes_as_toml_no_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let _ = load(&String::from_utf8_lossy(&bytes));
            }

            /// Any list of database names loads or errs without a panic; once loaded, each
            /// database's slot name is one PostgreSQL takes whole, and no two are the same.
            #[test]
            fn any_databases_give_valid_distinct_slot_names(dbs in prop::collection::vec(any::<String>(), 0..6)) {
                let list: Vec<String> = dbs.iter().map(|d| toml::Value::String(d.clone()).to_string()).collect();
                let text = format!("[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n[replication]\ndatabases = [{}]\n", list.join(", "));
                if let Ok(s) = load(&text) {
                    let slots: Vec<String> = dbs.iter().map(|d| s.for_database(d).names.slot).collect();
                    for sl in &slots {
                        prop_assert!(crate::domain::names::slot(sl).is_ok(), "{}", sl);
                    }
                    let distinct: std::collections::HashSet<&String> = slots.iter().collect();
                    prop_assert_eq!(distinct.len(), slots.len());
                }
            }

            /// A secret in a string value never shows, whatever breaks around it.
            #[test]
            fn a_dsn_password_never_shows(pre in "[a-z =\"'\\[\\]\\n]{0,20}", post in "[a-z =\"'\\[\\]\\n]{0,20}") {
                let text = format!("[blue]\n{pre}dsn = \"host=a password=Zq9Xw7Kp{post}\n[green]\ndsn=\"host=b\"\n");
                if let Err(e) = load(&text) {
                    prop_assert!(!e.to_string().contains("Zq9X"), "{}", e);
                }
            }
        }
    }

    #[test]
    fn a_bad_keys_table_does_not_stop_the_other_commands() {
        let base = "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n";
        let s = load(&format!(
            "{base}[keys]\nnot_a_command = \"x\"\ncutover = [\"C\", \"F5\"]\n"
        ))
        .unwrap();
        assert_eq!(s.keys["cutover"], vec!["C".to_string(), "F5".to_string()]);
    }

    #[test]
    fn static_connection_mistakes_are_configuration_errors() {
        for dsn in [
            "host=a port=70000",
            "host=a port=0",
            "host=a port=x",
            "host=a connect_timeout=abc",
            "host=a hostaddr=not-an-ip",
            "host=a keepalives=2",
            "host=a target_session_attrs=primary-ish",
            "host=a,b port=1,2,3",
            "host=a,,b",
            "host=a sslmode=verify-full sslrootcert=/nonexistent/root.crt",
            "host=a sslmode=require sslrootcert=/dev/zero",
            "postgresql://h:99999/db",
        ] {
            let text = format!("[blue]\ndsn = \"{dsn}\"\n[green]\ndsn = \"host=b\"\n");
            let e = load(&text).unwrap_err().to_string();
            assert!(e.contains("[blue] dsn"), "{dsn} → {e}");
        }
        let d = tempfile::tempdir().unwrap();
        let not_pem = d.path().join("root.crt");
        std::fs::write(&not_pem, "hello").unwrap();
        let text = format!(
            "[blue]\ndsn = \"host=a sslmode=verify-full sslrootcert={}\"\n[green]\ndsn = \"host=b\"\n",
            not_pem.display()
        );
        let e = load(&text).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
