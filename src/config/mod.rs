//! Configuration: a TOML file (`--config`, `$PGCUTOVER_CONFIG`, or the XDG default), then
//! environment, then flags. Every mistake is an error that names the key and its line.

pub mod conninfo;
pub mod libpq_files;

use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use serde::Deserialize;
use toml::Spanned;

use crate::domain::observed::Side;
use crate::domain::phase::Names;
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
    max_lag_bytes: Option<u64>,
    steady_samples: Option<usize>,
    sample_interval_ms: Option<u64>,
    drain_timeout_s: Option<u64>,
    fence_timeout_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedoFile {
    log_file: Option<PathBuf>,
    not_before: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollFile {
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    inventory_every: Option<u32>,
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

/// How to reach one side. Holds no password: that is looked up at connect time.
#[derive(Debug, Clone)]
pub struct SideSettings {
    pub side: Side,
    pub conninfo: ConnInfo,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
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

#[derive(Debug, Clone)]
pub struct Settings {
    pub blue: SideSettings,
    pub green: SideSettings,
    pub names: Names,
    /// The role replication connects as; `None` = each side's connection user.
    pub replication_user: Option<String>,
    pub app_roles: Vec<String>,
    pub redo_log_file: Option<PathBuf>,
    /// Ignore redo lines stamped before this (GREEN's creation time).
    pub redo_not_before: Option<time::OffsetDateTime>,
    pub cutover: CutoverSettings,
    pub poll: PollSettings,
    pub file: Option<PathBuf>,
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
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, Some(p.clone())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), None)
            }
            Err(e) => bail!(
                "cannot read the configuration file {}: {e}; pass --config PATH (see pgcutover.example.toml)",
                p.display()
            ),
        },
        None => (String::new(), None),
    };
    from_str(&text, file.as_deref(), ov)
}

/// Parse and validate configuration text; `file` only labels messages.
pub fn from_str(text: &str, file: Option<&Path>, ov: &Overrides) -> Result<Settings> {
    let label = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "configuration".into());
    let fc: FileConfig = toml::from_str(text).map_err(|e| {
        // toml's message already names the key, line and column, with the line quoted.
        eyre!("{label}: {}", e.to_string().trim_end())
    })?;
    let at = |span: std::ops::Range<usize>| -> String {
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        format!("{label}, line {line}")
    };

    let name = |v: &Option<Spanned<String>>, key: &str, default: &str| -> Result<String> {
        match v {
            None => Ok(default.to_string()),
            Some(s) => {
                let n = s.get_ref();
                if n.is_empty() || n.len() > 63 {
                    bail!(
                        "{}: [replication] {key} must be 1 to 63 bytes long, got {} bytes",
                        at(s.span()),
                        n.len()
                    );
                }
                Ok(n.clone())
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
            .map(|s| s.span())
            .unwrap_or(0..0);
        bail!(
            "{}: [replication] slot = {:?}: PostgreSQL slot names may hold only lower-case letters, digits and underscores",
            at(span),
            slot
        );
    }
    let replication_user = match &fc.replication.user {
        Some(u) if u.get_ref().is_empty() => {
            bail!("{}: [replication] user must not be empty", at(u.span()))
        }
        u => u.as_ref().map(|u| u.get_ref().clone()),
    };

    let app_roles = match (&ov.app_roles, &fc.cutover.app_roles) {
        (Some(r), _) => r.clone(),
        (None, Some(r)) => {
            if let Some(bad) = r.get_ref().iter().find(|n| n.is_empty() || n.len() > 63) {
                bail!(
                    "{}: [cutover] app_roles has {:?}: role names are 1 to 63 bytes",
                    at(r.span()),
                    bad
                );
            }
            r.get_ref().clone()
        }
        (None, None) => Vec::new(),
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
        let mode_text = f
            .sslmode
            .as_ref()
            .map(|m| (m.get_ref().clone(), at(m.span())))
            .or_else(|| ci.get("sslmode").map(|m| (m.to_string(), origin.clone())));
        let sslmode = match &mode_text {
            None => SslMode::Prefer,
            Some((m, where_)) => SslMode::parse(m).ok_or_else(|| {
                eyre!("{where_}: sslmode {m:?} is not one of disable, prefer, require, verify-ca, verify-full")
            })?,
        };
        let sslrootcert = f
            .sslrootcert
            .clone()
            .or_else(|| ci.get("sslrootcert").map(PathBuf::from));
        if sslmode == SslMode::VerifyFull && sslrootcert.is_none() {
            bail!(
                "{origin}: sslmode verify-ca/verify-full needs sslrootcert = \"/path/to/root.crt\""
            );
        }
        if sslmode == SslMode::Disable && sslrootcert.is_some() {
            bail!("{origin}: sslrootcert is set but sslmode = disable; remove one of them");
        }
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
            sslrootcert,
            password_env: f
                .password_env
                .unwrap_or_else(|| format!("PGCUTOVER_{}_PASSWORD", s.upper())),
            origin,
        })
    };
    let blue = side(Side::Blue, &fc.blue, &ov.blue_dsn)?;
    let green = side(Side::Green, &fc.green, &ov.green_dsn)?;

    let interval = Duration::from_millis(fc.poll.interval_ms.unwrap_or(1000));
    let timeout = Duration::from_millis(fc.poll.timeout_ms.unwrap_or(5000));
    if interval < Duration::from_millis(100) {
        bail!("{label}: [poll] interval_ms must be at least 100");
    }
    if timeout < Duration::from_millis(100) {
        bail!("{label}: [poll] timeout_ms must be at least 100");
    }

    let redo_not_before = match &fc.redo.not_before {
        None => None,
        Some(t) => Some(
            time::OffsetDateTime::parse(t.get_ref(), &time::format_description::well_known::Rfc3339).map_err(|_| {
                eyre!("{}: [redo] not_before = {:?} is not an RFC 3339 time like 2026-11-21T10:00:00Z", at(t.span()), t.get_ref())
            })?,
        ),
    };
    let c = &fc.cutover;
    let cutover = CutoverSettings {
        max_lag_bytes: c.max_lag_bytes.unwrap_or(100 * 1024),
        steady_samples: c.steady_samples.unwrap_or(3).max(1),
        sample_interval: Duration::from_millis(c.sample_interval_ms.unwrap_or(200)),
        drain_timeout: Duration::from_secs(c.drain_timeout_s.unwrap_or(30).max(1)),
        fence_timeout: Duration::from_secs(c.fence_timeout_s.unwrap_or(10).max(1)),
    };

    Ok(Settings {
        blue,
        green,
        names: Names {
            publication,
            slot,
            subscription,
        },
        replication_user,
        app_roles,
        redo_log_file: fc.redo.log_file,
        redo_not_before,
        cutover,
        poll: PollSettings {
            interval,
            timeout,
            inventory_every: fc.poll.inventory_every.unwrap_or(15).max(1),
        },
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
}
