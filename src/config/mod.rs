//! Configuration: a TOML file (`--config`, `$PGCUTOVER_CONFIG`, or the XDG default), then
//! environment, then flags. Every mistake is an error that names the key and its line.

pub mod conninfo;
pub mod libpq_files;

use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use serde::Deserialize;
use toml::Spanned;

use crate::domain;
use crate::domain::observed::Side;
use crate::domain::phase::Names;
use crate::domain::rds_plan::RestoreSettings;
use conninfo::ConnInfo;

pub const DEFAULT_PUBLICATION: &str = "pgcutover_pub";
pub const DEFAULT_SLOT: &str = "pgcutover_slot";
pub const DEFAULT_SUBSCRIPTION: &str = "pgcutover_sub";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    blue: Option<SideFile>,
    green: Option<SideFile>,
    #[serde(default)]
    replication: ReplicationFile,
    #[serde(default)]
    cutover: CutoverFile,
    #[serde(default)]
    redo: RedoFile,
    #[serde(default)]
    poll: PollFile,
    aws: Option<AwsFile>,
    restore: Option<RestoreFile>,
    /// Dashboard key bindings: `cutover = "C"` or `down = ["j", "Down"]`.
    keys: Option<std::collections::BTreeMap<String, KeysValue>>,
    #[serde(default)]
    ui: UiFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum KeysValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UiFile {
    theme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsFile {
    region: Option<String>,
    profile: Option<String>,
    endpoint_url: Option<Spanned<String>>,
    snapshot: Option<Spanned<String>>,
    engine_version: Option<String>,
    poll_interval_s: Option<Spanned<f64>>,
    metrics_interval_s: Option<Spanned<u64>>,
    timeout_s: Option<Spanned<u64>>,
    action_timeout_min: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreFile {
    instance_class: Option<String>,
    multi_az: Option<bool>,
    subnet_group: Option<String>,
    security_groups: Option<Vec<String>>,
    parameter_group: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideFile {
    dsn: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    sslmode: Option<Spanned<String>>,
    sslrootcert: Option<PathBuf>,
    password_env: Option<String>,
    replication_dsn: Option<Spanned<String>>,
    rds_instance: Option<Spanned<String>>,
    auth: Option<Spanned<String>>,
    /// Replaces the embedded RDS CA bundle for this side.
    rds_ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicationFile {
    publication: Option<Spanned<String>>,
    slot: Option<Spanned<String>>,
    subscription: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CutoverFile {
    app_roles: Option<Spanned<Vec<String>>>,
    max_lag_bytes: Option<Spanned<u64>>,
    steady_samples: Option<Spanned<u64>>,
    sample_interval_ms: Option<Spanned<u64>>,
    drain_timeout_s: Option<Spanned<u64>>,
    fence_timeout_s: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedoFile {
    source: Option<Spanned<String>>,
    log_file: Option<PathBuf>,
    not_before: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollFile {
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    inventory_every: Option<Spanned<u64>>,
}

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
    pub names: Names,
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
}

impl Settings {
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
    from_str(&text, file.as_deref(), ov)
}

/// Parse and validate configuration text; `file` only labels messages.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
pub fn from_str(text: &str, file: Option<&Path>, ov: &Overrides) -> Result<Settings> {
    let label = file.map_or_else(|| "configuration".into(), |p| p.display().to_string());
    let fc: FileConfig = toml::from_str(text).map_err(|e| toml_error(text, &label, &e))?;
    let at = |span: std::ops::Range<usize>| -> String {
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        format!("{label}, line {line}")
    };

    let name = |v: &Option<Spanned<String>>, key: &str, default: &str| -> Result<String> {
        match v {
            None => Ok(default.to_string()),
            Some(s) => {
                domain::names::identifier(s.get_ref())
                    .map_err(|e| eyre!("{}: [replication] {key}: {e}", at(s.span())))?;
                Ok(s.get_ref().clone())
            }
        }
    };
    let publication = name(
        &fc.replication.publication,
        "publication",
        DEFAULT_PUBLICATION,
    )?;
    let subscription = name(
        &fc.replication.subscription,
        "subscription",
        DEFAULT_SUBSCRIPTION,
    )?;
    let slot = name(&fc.replication.slot, "slot", DEFAULT_SLOT)?;
    if !slot
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        let span = fc
            .replication
            .slot
            .as_ref()
            .map(toml::Spanned::span)
            .unwrap_or(0..0);
        bail!(
            "{}: [replication] slot = \"{}\": PostgreSQL slot names may hold only lower-case letters, digits and underscores",
            at(span),
            crate::text::echo(&slot)
        );
    }
    let replication_user = match &fc.replication.user {
        Some(u) => {
            domain::names::identifier(u.get_ref())
                .map_err(|e| eyre!("{}: [replication] user: {e}", at(u.span())))?;
            Some(u.get_ref().clone())
        }
        None => None,
    };

    // One validation for every way the roles arrive: the file, the environment, the flags.
    let (app_roles, roles_from) = match (&ov.app_roles, &fc.cutover.app_roles) {
        (Some(r), _) => (r.clone(), "--app-roles".to_string()),
        (None, Some(r)) => (
            r.get_ref().clone(),
            format!("{}: [cutover] app_roles", at(r.span())),
        ),
        (None, None) => (Vec::new(), String::new()),
    };
    if (ov.app_roles.is_some() || fc.cutover.app_roles.is_some()) && app_roles.is_empty() {
        bail!(
            "{roles_from} is empty: list the roles the application logs in as (the cutover fences exactly \
             these); a fence of no role would report success and stop nothing"
        );
    }
    for r in &app_roles {
        domain::names::identifier(r).map_err(|e| eyre!("{roles_from}: role {e}"))?;
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = app_roles.iter().find(|r| !seen.insert(r.as_str())) {
        bail!("{roles_from} names \"{}\" twice", crate::text::echo(dup));
    }

    let any_rds = [&fc.blue, &fc.green]
        .iter()
        .any(|f| f.as_ref().is_some_and(|f| f.rds_instance.is_some()));
    let aws = if fc.aws.is_some() || any_rds {
        let a = fc.aws.as_ref();
        let endpoint_url = match a.and_then(|a| a.endpoint_url.as_ref()) {
            Some(u) => {
                if !(u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://")) {
                    bail!(
                        "{}: [aws] endpoint_url must start with http:// or https://",
                        at(u.span())
                    );
                }
                Some(u.get_ref().clone())
            }
            None => std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|v| !v.is_empty()),
        };
        let metrics_interval = match a.and_then(|a| a.metrics_interval_s.as_ref()) {
            Some(v) if *v.get_ref() < 60 => bail!(
                "{}: [aws] metrics_interval_s = {} is below 60: RDS publishes these metrics once a minute and every \
                 GetMetricData call is billed; use 60 or more",
                at(v.span()),
                v.get_ref()
            ),
            v => Duration::from_secs(within(v, "[aws] metrics_interval_s", 60, 3600, 60, &at)?),
        };
        let snapshot = match a.and_then(|a| a.snapshot.as_ref()) {
            Some(v) if !valid_rds_id(v.get_ref()) => bail!(
                "{}: [aws] snapshot = \"{}\": RDS identifiers are 1 to 255 letters, digits and hyphens, starting with a \
                 letter, with no two hyphens in a row and no hyphen at the end",
                at(v.span()),
                crate::text::echo(v.get_ref())
            ),
            v => v.map(|v| v.get_ref().clone()),
        };
        let r = fc.restore.clone().unwrap_or_default();
        Some(AwsSettings {
            region: a.and_then(|a| a.region.clone()),
            profile: a.and_then(|a| a.profile.clone()),
            endpoint_url,
            snapshot,
            engine_version: a.and_then(|a| a.engine_version.clone()),
            restore: RestoreSettings {
                instance_class: r.instance_class,
                multi_az: r.multi_az,
                subnet_group: r.subnet_group,
                security_groups: r.security_groups,
                parameter_group: r.parameter_group,
            },
            poll_interval: Duration::from_secs_f64(within(
                a.and_then(|a| a.poll_interval_s.as_ref()),
                "[aws] poll_interval_s",
                0.05,
                600.0,
                10.0,
                &at,
            )?),
            metrics_interval,
            timeout: Duration::from_secs(within(
                a.and_then(|a| a.timeout_s.as_ref()),
                "[aws] timeout_s",
                1,
                600,
                20,
                &at,
            )?),
            action_timeout: Duration::from_secs(
                60 * within(
                    a.and_then(|a| a.action_timeout_min.as_ref()),
                    "[aws] action_timeout_min",
                    1,
                    24 * 60,
                    240,
                    &at,
                )?,
            ),
        })
    } else {
        if fc.restore.is_some() {
            bail!(
                "{label}: [restore] is set but no side has rds_instance and there is no [aws] section"
            );
        }
        None
    };

    let side = |s: Side, f: &Option<SideFile>, flag: &Option<String>| -> Result<SideSettings> {
        let env_var = format!("PGCUTOVER_{}_DSN", s.upper());
        let env_dsn = std::env::var(&env_var).ok().filter(|v| !v.is_empty());
        let f = f.clone().unwrap_or_default();
        let (dsn, origin) = match (flag, env_dsn, &f.dsn) {
            (Some(d), _, _) => (Some(d.clone()), format!("--{s}-dsn")),
            (None, Some(d), _) => (Some(d), format!("${env_var}")),
            (None, None, Some(d)) => (
                Some(d.get_ref().clone()),
                format!("[{s}] dsn in {}", at(d.span())),
            ),
            (None, None, None) => (None, format!("[{s}] in {label}")),
        };
        let mut ci = match &dsn {
            Some(d) => conninfo::parse(d).map_err(|e| eyre!("{origin}: {e}"))?,
            None => ConnInfo::default(),
        };
        if ci.get("password").is_some() {
            bail!(
                "{origin} contains a password; passwords never go in the configuration or on the command line: \
                 set ${} or use ~/.pgpass or a service file",
                format!("PGCUTOVER_{}_PASSWORD", s.upper())
            );
        }
        let service = f
            .service
            .as_ref()
            .map(|v| v.get_ref().clone())
            .or_else(|| ci.get("service").map(str::to_string));
        if let Some(svc) = service {
            let entry = libpq_files::lookup_service(&svc, &libpq_files::service_files())
                .map_err(|e| eyre!("{origin}: {e}"))?;
            ci = ci.with_defaults(&entry);
            ci.params.remove("service");
        } else if dsn.is_none() {
            bail!(
                "{label} has no [{s}] connection: give [{s}] dsn = \"host=… port=… dbname=… user=…\" or service = \"name\", \
                 or set ${env_var} or --{s}-dsn"
            );
        }
        check_static(&ci, &origin)?;
        let mode_text = f
            .sslmode
            .as_ref()
            .map(|m| (m.get_ref().clone(), at(m.span())))
            .or_else(|| ci.get("sslmode").map(|m| (m.to_string(), origin.clone())));
        let sslmode = match &mode_text {
            None => SslMode::Prefer,
            Some((m, where_)) => SslMode::parse(m).ok_or_else(|| {
                eyre!("{where_}: sslmode \"{}\" is not one of disable, prefer, require, verify-ca, verify-full", crate::text::echo(m))
            })?,
        };
        let sslrootcert = f
            .sslrootcert
            .clone()
            .or_else(|| ci.get("sslrootcert").map(PathBuf::from));
        let rds_instance = match &f.rds_instance {
            Some(v) if !valid_rds_id(v.get_ref()) => bail!(
                "{}: [{s}] rds_instance = \"{}\": RDS identifiers are 1 to 63 letters, digits and hyphens, starting with \
                 a letter, with no two hyphens in a row and no hyphen at the end",
                at(v.span()),
                crate::text::echo(v.get_ref())
            ),
            v => v.as_ref().map(|v| v.get_ref().clone()),
        };
        let auth = match f.auth.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
            None | Some(("password", _)) => Auth::Password,
            Some(("iam", span)) => match &aws {
                Some(a) => Auth::Iam(Box::new(a.clone())),
                None => bail!(
                    "{}: [{s}] auth = \"iam\" needs AWS settings: add [{s}] rds_instance or an [aws] section with region",
                    at(span)
                ),
            },
            Some((other, span)) => bail!(
                "{}: [{s}] auth = \"{}\" is not \"password\" or \"iam\"",
                at(span),
                crate::text::echo(other)
            ),
        };
        let rds_host = ci
            .get("host")
            .is_some_and(|h| h.split(',').any(domain::rds::is_rds_host));
        // RDS hosts are verified against the RDS CA bundle unless the operator chose otherwise;
        // IAM tokens are bearer credentials and never travel without TLS.
        let sslmode = match (mode_text.is_some(), sslmode) {
            (false, _) if rds_host => SslMode::VerifyFull,
            (false, _) if matches!(auth, Auth::Iam(_)) => SslMode::Require,
            (_, m) => m,
        };
        if matches!(auth, Auth::Iam(_)) && matches!(sslmode, SslMode::Disable | SslMode::Prefer) {
            bail!(
                "{origin}: auth = \"iam\" sends a token that works as a password for 15 minutes; it needs TLS: set \
                 sslmode = \"require\" or \"verify-full\" (the default for RDS hosts)"
            );
        }
        if let Some(p) = &f.rds_ca_bundle
            && sslrootcert.is_some()
        {
            bail!(
                "{origin}: both sslrootcert and rds_ca_bundle ({}) are set; keep one",
                p.display()
            );
        }
        if let Some(p) = sslrootcert.as_ref().or(f.rds_ca_bundle.as_ref()) {
            // Read now: an unreadable root file is a configuration error, not an unreachable side.
            let pem = crate::files::read_text_capped(p, 4 * 1024 * 1024, "certificate file")
                .map_err(|e| eyre!("{origin}: sslrootcert: {e}"))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!(
                    "{origin}: sslrootcert {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    p.display()
                );
            }
        }
        let roots = match (sslmode, sslrootcert.or(f.rds_ca_bundle.clone())) {
            (SslMode::Disable, Some(_)) => {
                bail!("{origin}: sslrootcert is set but sslmode = disable; remove one of them")
            }
            (SslMode::Disable, None) => Roots::None,
            (_, Some(p)) => Roots::File(p),
            (SslMode::VerifyFull, None) if rds_host || rds_instance.is_some() => Roots::RdsBundle,
            (SslMode::VerifyFull, None) => bail!(
                "{origin}: sslmode verify-ca/verify-full needs sslrootcert = \"/path/to/root.crt\""
            ),
            (_, None) => Roots::None,
        };
        let replication_conninfo = match &f.replication_dsn {
            None => None,
            Some(d) => {
                let where_ = format!("[{s}] replication_dsn in {}", at(d.span()));
                let ci = conninfo::parse(d.get_ref()).map_err(|e| eyre!("{where_}: {e}"))?;
                if ci.get("password").is_some() {
                    bail!(
                        "{where_} contains a password; set $PGCUTOVER_{}_REPLICATION_PASSWORD instead",
                        s.upper()
                    );
                }
                Some(ci)
            }
        };
        Ok(SideSettings {
            side: s,
            replication_conninfo,
            conninfo: ci,
            sslmode,
            roots,
            rds_instance,
            auth,
            password_env: f
                .password_env
                .unwrap_or_else(|| format!("PGCUTOVER_{}_PASSWORD", s.upper())),
            origin,
        })
    };
    let blue = side(Side::Blue, &fc.blue, &ov.blue_dsn)?;
    let green = side(Side::Green, &fc.green, &ov.green_dsn)?;

    let interval = Duration::from_millis(within(
        fc.poll.interval_ms.as_ref(),
        "[poll] interval_ms",
        100,
        60_000,
        1000,
        &at,
    )?);
    let timeout = Duration::from_millis(within(
        fc.poll.timeout_ms.as_ref(),
        "[poll] timeout_ms",
        100,
        120_000,
        5000,
        &at,
    )?);
    let inventory_every = within(
        fc.poll.inventory_every.as_ref(),
        "[poll] inventory_every",
        1,
        10_000,
        15,
        &at,
    )?;
    // within 1..=10 000, so it fits
    let inventory_every = u32::try_from(inventory_every).unwrap_or(u32::MAX);

    let redo_source = match fc
        .redo
        .source
        .as_ref()
        .map(|v| (v.get_ref().as_str(), v.span()))
    {
        None | Some(("auto", _)) => RedoSource::Auto,
        Some(("cloudwatch", _)) => RedoSource::CloudWatch,
        Some(("rds-logs", _)) => RedoSource::RdsLogs,
        Some(("file", _)) => RedoSource::File,
        Some((other, span)) => bail!(
            "{}: [redo] source = \"{}\" is not one of auto, cloudwatch, rds-logs, file",
            at(span),
            crate::text::echo(other)
        ),
    };
    if matches!(redo_source, RedoSource::CloudWatch | RedoSource::RdsLogs)
        && green.rds_instance.is_none()
    {
        bail!(
            "{label}: [redo] source = {:?} reads GREEN's RDS logs, but [green] has no rds_instance",
            redo_source.name()
        );
    }
    if redo_source == RedoSource::File && fc.redo.log_file.is_none() {
        bail!(
            "{label}: [redo] source = \"file\" needs log_file = \"/path/to/green/postgresql.log\""
        );
    }
    let redo_not_before = match &fc.redo.not_before {
        None => None,
        Some(t) => Some(
            time::OffsetDateTime::parse(t.get_ref(), &time::format_description::well_known::Rfc3339).map_err(|_| {
                eyre!("{}: [redo] not_before = \"{}\" is not an RFC 3339 time like 2026-11-21T10:00:00Z", at(t.span()), crate::text::echo(t.get_ref()))
            })?,
        ),
    };
    let c = &fc.cutover;
    let cutover = CutoverSettings {
        max_lag_bytes: within(
            c.max_lag_bytes.as_ref(),
            "[cutover] max_lag_bytes",
            0,
            1 << 40,
            100 * 1024,
            &at,
        )?,
        steady_samples: within(
            c.steady_samples.as_ref(),
            "[cutover] steady_samples",
            1,
            100,
            3,
            &at,
        )?
        .try_into()
        .unwrap_or(usize::MAX),
        sample_interval: Duration::from_millis(within(
            c.sample_interval_ms.as_ref(),
            "[cutover] sample_interval_ms",
            10,
            10_000,
            200,
            &at,
        )?),
        drain_timeout: Duration::from_secs(within(
            c.drain_timeout_s.as_ref(),
            "[cutover] drain_timeout_s",
            1,
            3600,
            30,
            &at,
        )?),
        fence_timeout: Duration::from_secs(within(
            c.fence_timeout_s.as_ref(),
            "[cutover] fence_timeout_s",
            1,
            600,
            10,
            &at,
        )?),
    };
    // The gate's samples are taken by `plan` too, which must answer promptly.
    let gate =
        cutover.sample_interval * u32::try_from(cutover.steady_samples - 1).unwrap_or(u32::MAX);
    if gate > Duration::from_mins(1) {
        bail!(
            "{label}: [cutover] steady_samples × sample_interval_ms spans {} s; keep the lag gate within 60 s",
            gate.as_secs()
        );
    }

    let keys = fc
        .keys
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    KeysValue::One(s) => vec![s.clone()],
                    KeysValue::Many(v) => v.clone(),
                },
            )
        })
        .collect();
    Ok(Settings {
        keys,
        theme: fc.ui.theme.clone(),
        blue,
        green,
        names: Names {
            publication,
            slot,
            subscription,
        },
        replication_user,
        app_roles,
        redo_source,
        redo_log_file: fc.redo.log_file,
        aws,
        redo_not_before,
        cutover,
        poll: PollSettings {
            interval,
            timeout,
            inventory_every,
        },
        file: file.map(Path::to_path_buf),
    })
}

/// Connection values that can be judged without connecting: a mistake here is a configuration
/// error (exit 2), not an unreachable side (exit 3).
fn check_static(ci: &ConnInfo, origin: &str) -> Result<()> {
    let bad = |key: &str, v: &str, want: &str| {
        eyre!("{origin}: {key} \"{}\" is not {want}", crate::text::echo(v))
    };
    if let Some(p) = ci.get("port") {
        for x in p.split(',') {
            if !(x.is_empty() || x.parse::<u16>().is_ok_and(|n| n > 0)) {
                return Err(bad("port", x, "a port number (1 to 65535)"));
            }
        }
    }
    let count = |k: &str| ci.get(k).map_or(0, |v| v.split(',').count());
    if let Some(h) = ci.get("host")
        && h.split(',').any(str::is_empty)
    {
        return Err(bad("host", h, "a list of host names without empty entries"));
    }
    let (hosts, ports) = (count("host").max(count("hostaddr")), count("port"));
    if ports > 1 && ports != hosts {
        return Err(eyre!(
            "{origin}: {ports} ports for {hosts} hosts: give one port for all hosts, or one per host"
        ));
    }
    if let Some(a) = ci.get("hostaddr") {
        for x in a.split(',') {
            if x.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("hostaddr", x, "an IP address"));
            }
        }
    }
    if let Some(t) = ci.get("connect_timeout")
        && !t.trim().parse::<u64>().is_ok_and(|n| n <= 3600)
    {
        return Err(bad("connect_timeout", t, "a number of seconds (0 to 3600)"));
    }
    if let Some(k) = ci.get("keepalives")
        && !matches!(k, "0" | "1")
    {
        return Err(bad("keepalives", k, "0 or 1"));
    }
    if let Some(k) = ci.get("keepalives_idle")
        && !k.parse::<u64>().is_ok_and(|n| n <= 86_400)
    {
        return Err(bad("keepalives_idle", k, "a number of seconds"));
    }
    if let Some(t) = ci.get("target_session_attrs")
        && !matches!(t, "any" | "read-write")
    {
        return Err(bad("target_session_attrs", t, "any or read-write"));
    }
    for key in ["host", "user", "dbname", "application_name", "options"] {
        if let Some(v) = ci.get(key)
            && v.contains('\0')
        {
            return Err(bad(key, v, "free of NUL bytes"));
        }
    }
    Ok(())
}

/// A number setting within its bounds, or an error naming the key, its line and the range.
/// `!(lo <= v && v <= hi)` also refuses NaN.
fn within<T>(
    v: Option<&Spanned<T>>,
    key: &str,
    lo: T,
    hi: T,
    default: T,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<T>
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    match v {
        None => Ok(default),
        Some(s) => {
            let x = *s.get_ref();
            if lo <= x && x <= hi {
                Ok(x)
            } else {
                bail!(
                    "{}: {key} = {x} is out of range: use {lo} to {hi} (default {default})",
                    at(s.span())
                )
            }
        }
    }
}

/// A TOML error without the line it quotes (the line may hold a password), and without quoted
/// values in serde's message (`invalid type: string "…"`): the line and column say where.
fn toml_error(text: &str, label: &str, e: &toml::de::Error) -> color_eyre::eyre::Report {
    let place = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(", line {line}, column {col}")
        }
        None => String::new(),
    };
    eyre!("{label}{place}: {}", redact_quoted(e.message().trim_end()))
}

/// Replace every `"…"` in a message by `"…"`, and clip `` `…` `` names.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[i] as char;
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(j) = after.find(q) {
            if q == '"' {
                out.push_str("\"…\"");
            } else {
                out.push('`');
                out.push_str(&crate::text::echo(&after[..j]));
                out.push('`');
            }
            rest = &after[j + 1..];
        } else {
            // an unclosed quote: nothing after it is shown
            out.push(q);
            out.push('…');
            rest = "";
        }
    }
    out.push_str(rest);
    crate::text::one_line(&out).into_owned()
}

/// RDS instance and snapshot identifiers: a letter first, then letters, digits and single
/// hyphens, no hyphen last.
fn valid_rds_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
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
        assert!(e.contains("RDS identifiers"), "{e}");
    }

    #[test]
    fn no_rds_settings_means_no_aws() {
        let s = load(GOOD).unwrap();
        assert!(s.aws.is_none());
        assert_eq!(s.redo_source, RedoSource::Auto);
        assert_eq!(s.blue.roots, Roots::None);
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
