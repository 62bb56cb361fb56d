//! `[traffic]`: where the application's connections go, and how the switch moves them — through
//! PgBouncer's admin console, through the operator's own command, or not at all (`none`, the
//! default: the application finds the serving side by itself).

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};

use super::conninfo::{self, ConnInfo};
use super::file::{BouncerFile, CommandFile, Place, SideFile, TrafficFile};
use super::{Auth, Roots, SideSettings, SslMode};
use crate::domain::observed::Side;
use crate::text::echo;

#[derive(Debug, Clone)]
pub struct TrafficSettings {
    pub router: Router,
    /// PAUSE must finish within this, else the switch is abandoned with nothing changed.
    pub pause_timeout: Duration,
    /// What the bouncers' entries say while BLUE, and while GREEN, serves.
    pub targets: [Option<RouteTarget>; 2],
}

impl TrafficSettings {
    pub fn target(&self, s: Side) -> Option<&RouteTarget> {
        self.targets[usize::from(s == Side::Green)].as_ref()
    }

    pub fn bouncers(&self) -> &[Bouncer] {
        match &self.router {
            Router::PgBouncer(b) => b,
            _ => &[],
        }
    }
}

impl Default for TrafficSettings {
    fn default() -> Self {
        TrafficSettings {
            router: Router::None,
            pause_timeout: Duration::from_secs(5),
            targets: [None, None],
        }
    }
}

#[derive(Debug, Clone)]
pub enum Router {
    None,
    PgBouncer(Vec<Bouncer>),
    Command(CommandRouter),
}

impl Router {
    pub fn name(&self) -> &'static str {
        match self {
            Router::None => "none",
            Router::PgBouncer(_) => "pgbouncer",
            Router::Command(_) => "command",
        }
    }
}

/// One PgBouncer: its admin console and the entries that follow the serving side.
#[derive(Debug, Clone)]
pub struct Bouncer {
    /// `pgbouncer N (host:port)`, for messages and the dashboard.
    pub name: String,
    /// How to log in to the admin console (`side` is meaningless here: connect by name).
    pub admin: SideSettings,
    pub databases: Vec<String>,
    pub retarget: Retarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retarget {
    /// Rewrite this `%include`d file (atomically, keeping its owner and mode), then RELOAD.
    IncludeFile(PathBuf),
    /// Run this once per database (`{db}`, `{host}`, `{port}`, `{dbname}` filled in), then RELOAD.
    Argv(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRouter {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// What a bouncer entry says while a side serves: the text written after `db = `, and the
/// address it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    pub entry: String,
    pub host: String,
    pub port: u16,
    pub dbname: Option<String>,
}

impl RouteTarget {
    /// The entry for PgBouncer database `db`: the target as written, with `dbname=db` when it
    /// names none.
    pub fn entry_for(&self, db: &str) -> String {
        if self.dbname.is_some() {
            self.entry.clone()
        } else {
            format!("{} dbname={db}", self.entry)
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// PgBouncer database names as its admin console takes them unquoted (`PAUSE app`).
fn valid_db_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 63 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(super) fn resolve(
    f: &TrafficFile,
    sides: [Option<&SideFile>; 2],
    p: &Place<'_>,
) -> Result<TrafficSettings> {
    let pause_ms = p.within(
        f.pause_timeout_ms.as_ref(),
        "[traffic] pause_timeout_ms",
        10,
        600_000,
        5000,
    )?;
    let mut targets = [None, None];
    for (slot, (side, file)) in targets.iter_mut().zip(Side::BOTH.into_iter().zip(sides)) {
        if let Some(t) = file.and_then(|f| f.pgbouncer_target.as_ref()) {
            *slot = Some(route_target(side, t.get_ref(), &p.at(t.span()))?);
        }
    }
    let (router_name, router_at) = match &f.router {
        Some(r) => (r.get_ref().as_str(), p.at(r.span())),
        None => ("none", p.label.clone()),
    };
    let router = match router_name {
        "none" => Router::None,
        "pgbouncer" => Router::PgBouncer(bouncers(f, &router_at, p)?),
        "command" => Router::Command(command(f.command.as_ref(), &router_at, p)?),
        other => bail!(
            "{router_at}: [traffic] router = \"{}\" is not one of none, pgbouncer, command",
            echo(other)
        ),
    };
    if matches!(router, Router::PgBouncer(_)) {
        match &targets {
            [Some(b), Some(g)] if b.host == g.host && b.port == g.port => bail!(
                "{}: [blue] and [green] pgbouncer_target both point at {}; each must name its own side's server",
                p.label,
                b.address()
            ),
            [Some(_), Some(_)] => {}
            _ => bail!(
                "{router_at}: router = \"pgbouncer\" needs pgbouncer_target in both [blue] and [green] \
                 (what the entries say while that side serves, e.g. \"host=10.0.0.1 port=5432 dbname=app\")"
            ),
        }
    }
    Ok(TrafficSettings {
        router,
        pause_timeout: Duration::from_millis(pause_ms),
        targets,
    })
}

fn route_target(side: Side, text: &str, at: &str) -> Result<RouteTarget> {
    let key = format!("{at}: [{side}] pgbouncer_target");
    if text.chars().any(char::is_control) {
        bail!("{key} holds a control character; it is written into PgBouncer's configuration");
    }
    let ci = conninfo::parse(text).map_err(|e| eyre!("{key}: {e}"))?;
    if ci.get("password").is_some() {
        bail!(
            "{key} holds a password; it would be written into the include file: give the password to \
             PgBouncer in its auth_file or userlist instead"
        );
    }
    let host = ci
        .get("host")
        .filter(|h| !h.is_empty() && !h.contains(','))
        .ok_or_else(|| eyre!("{key} needs one host=…"))?
        .to_string();
    let port = match ci.get("port") {
        None => 5432,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| eyre!("{key}: port `{}` is not a port number", echo(p)))?,
    };
    Ok(RouteTarget {
        entry: text.trim().to_string(),
        host,
        port,
        dbname: ci.get("dbname").map(str::to_string),
    })
}

fn bouncers(f: &TrafficFile, router_at: &str, p: &Place<'_>) -> Result<Vec<Bouncer>> {
    if f.pgbouncer.is_empty() {
        bail!(
            "{router_at}: router = \"pgbouncer\" needs at least one [[traffic.pgbouncer]] table (admin, databases, include_file)"
        );
    }
    f.pgbouncer
        .iter()
        .enumerate()
        .map(|(i, b)| bouncer(i + 1, b, p))
        .collect()
}

fn bouncer(n: usize, b: &BouncerFile, p: &Place<'_>) -> Result<Bouncer> {
    let at = p.at(b.admin.span());
    let key = format!("{at}: [[traffic.pgbouncer]] #{n}");
    let admin = admin_login(&key, b)?;
    let addr = format!(
        "{}:{}",
        admin.conninfo.get("host").unwrap_or("?"),
        admin.conninfo.get("port").unwrap_or("6432")
    );
    let databases = b.databases.get_ref().clone();
    if databases.is_empty() {
        bail!(
            "{key}: databases is empty; list the PgBouncer database names that point at the serving side"
        );
    }
    if let Some(bad) = databases.iter().find(|d| !valid_db_name(d)) {
        bail!(
            "{}: [[traffic.pgbouncer]] #{n}: database `{}` is not a plain name (1 to 63 letters, digits or _)",
            p.at(b.databases.span()),
            echo(bad)
        );
    }
    let retarget = match (&b.include_file, &b.retarget_argv) {
        (Some(path), None) if path.is_absolute() => Retarget::IncludeFile(path.clone()),
        (Some(path), None) => bail!(
            "{key}: include_file \"{}\" must be an absolute path",
            echo(&path.display().to_string())
        ),
        (None, Some(argv)) if argv.get_ref().first().is_some_and(|a| !a.is_empty()) => {
            Retarget::Argv(argv.get_ref().clone())
        }
        (None, Some(argv)) => bail!("{}: retarget_argv is empty", p.at(argv.span())),
        (Some(_), Some(_)) => bail!("{key}: give include_file or retarget_argv, not both"),
        (None, None) => bail!(
            "{key}: how should its entries be repointed? set include_file (the file pgbouncer.ini %includes) \
             or retarget_argv"
        ),
    };
    Ok(Bouncer {
        name: format!("pgbouncer {n} ({addr})"),
        admin,
        databases,
        retarget,
    })
}

fn admin_login(key: &str, b: &BouncerFile) -> Result<SideSettings> {
    let ci = conninfo::parse(b.admin.get_ref()).map_err(|e| eyre!("{key} admin: {e}"))?;
    let password_env = b
        .password_env
        .clone()
        .unwrap_or_else(|| "PGCUTOVER_PGBOUNCER_PASSWORD".into());
    if ci.get("password").is_some() {
        bail!(
            "{key} admin contains a password; passwords never go in the configuration: set ${password_env} \
             or use ~/.pgpass"
        );
    }
    if ci.get("dbname").is_some_and(|d| d != "pgbouncer") {
        bail!("{key} admin: the admin console's database is pgbouncer; leave dbname out");
    }
    if ci.get("host").is_none_or(str::is_empty) {
        bail!("{key} admin needs host=… (and port=…, 6432 by default for PgBouncer)");
    }
    let defaults = conninfo::parse("dbname=pgbouncer port=6432").map_err(|e| eyre!("{e}"))?;
    let ci: ConnInfo = ci.with_defaults(&defaults);
    let sslmode = match ci.get("sslmode") {
        None => SslMode::Prefer,
        Some(m) => SslMode::parse(m).ok_or_else(|| {
            eyre!(
                "{key} admin: sslmode \"{}\" is not one of disable, prefer, require, verify-ca, verify-full",
                echo(m)
            )
        })?,
    };
    let roots = match ci.get("sslrootcert") {
        Some(f) => Roots::File(PathBuf::from(f)),
        None if sslmode == SslMode::VerifyFull => {
            bail!("{key} admin: sslmode {sslmode:?} needs sslrootcert=…")
        }
        None => Roots::None,
    };
    Ok(SideSettings {
        side: Side::Blue,
        conninfo: ci,
        sslmode,
        roots,
        rds_instance: None,
        auth: Auth::Password,
        password_env,
        origin: format!("{key} admin"),
        replication_conninfo: None,
    })
}

fn command(c: Option<&CommandFile>, router_at: &str, p: &Place<'_>) -> Result<CommandRouter> {
    let Some(c) = c else {
        bail!(
            "{router_at}: router = \"command\" needs [traffic.command] argv = [\"/path/to/program\", …]"
        );
    };
    let argv = c.argv.get_ref().clone();
    if argv.first().is_none_or(String::is_empty) {
        bail!("{}: [traffic.command] argv is empty", p.at(c.argv.span()));
    }
    let timeout_ms = p.within(
        c.timeout_ms.as_ref(),
        "[traffic.command] timeout_ms",
        100,
        600_000,
        10_000,
    )?;
    Ok(CommandRouter {
        argv,
        timeout: Duration::from_millis(timeout_ms),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Overrides, Retarget, Router, Settings, from_str};
    use crate::domain::observed::Side;

    const SIDES: &str = "[cutover]\napp_roles = [\"app\"]\n\
        [blue]\ndsn = \"host=127.0.0.1 port=1 dbname=app user=admin\"\n\
        pgbouncer_target = \"host=10.0.0.1 port=5432 dbname=app\"\n\
        [green]\ndsn = \"host=127.0.0.1 port=2 dbname=app user=admin\"\n\
        pgbouncer_target = \"host=10.0.0.2\"\n";

    fn load(extra: &str) -> color_eyre::eyre::Result<Settings> {
        from_str(&format!("{SIDES}{extra}"), None, &Overrides::default())
    }

    #[test]
    fn none_is_the_default() {
        let s = load("").unwrap();
        assert!(matches!(s.traffic.router, Router::None));
    }

    #[test]
    fn a_bouncer_with_its_include_file() {
        let s = load(
            "[traffic]\nrouter = \"pgbouncer\"\npause_timeout_ms = 2000\n\
             [[traffic.pgbouncer]]\nadmin = \"host=10.0.0.5 user=pgbouncer\"\n\
             databases = [\"app\", \"app_ro\"]\ninclude_file = \"/etc/pgbouncer/pgcutover.ini\"\n",
        )
        .unwrap();
        let b = &s.traffic.bouncers()[0];
        assert_eq!(b.name, "pgbouncer 1 (10.0.0.5:6432)");
        assert_eq!(b.admin.conninfo.get("dbname"), Some("pgbouncer"));
        assert_eq!(
            b.retarget,
            Retarget::IncludeFile("/etc/pgbouncer/pgcutover.ini".into())
        );
        assert_eq!(s.traffic.pause_timeout.as_millis(), 2000);
        let green = s.traffic.target(Side::Green).unwrap();
        assert_eq!(green.entry_for("app"), "host=10.0.0.2 dbname=app");
        assert_eq!((green.host.as_str(), green.port), ("10.0.0.2", 5432));
        assert_eq!(green.dbname, None);
    }

    #[test]
    fn mistakes_name_the_fix() {
        let bouncer = "[[traffic.pgbouncer]]\nadmin = \"host=h\"\ndatabases = [\"app\"]\n";
        for (extra, says) in [
            (
                "[traffic]\nrouter = \"dns\"\n",
                "not one of none, pgbouncer, command",
            ),
            (
                "[traffic]\nrouter = \"pgbouncer\"\n",
                "at least one [[traffic.pgbouncer]]",
            ),
            (
                &format!("[traffic]\nrouter = \"pgbouncer\"\n{bouncer}"),
                "set include_file",
            ),
            (
                &format!(
                    "[traffic]\nrouter = \"pgbouncer\"\n{bouncer}include_file = \"rel.ini\"\n"
                ),
                "absolute path",
            ),
            (
                "[traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"host=h password=S3cretXY\"\n\
                 databases = [\"app\"]\ninclude_file = \"/x\"\n",
                "contains a password",
            ),
            (
                "[traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"host=h\"\n\
                 databases = [\"a b\"]\ninclude_file = \"/x\"\n",
                "not a plain name",
            ),
            (
                "[traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"host=h\"\n\
                 databases = []\ninclude_file = \"/x\"\n",
                "databases is empty",
            ),
            (
                "[traffic]\nrouter = \"command\"\n",
                "needs [traffic.command]",
            ),
            (
                "[traffic]\nrouter = \"command\"\n[traffic.command]\nargv = []\n",
                "argv is empty",
            ),
            ("[traffic]\npause_timeout_ms = 0\n", "out of range"),
        ] {
            let e = format!("{:#}", load(extra).unwrap_err());
            assert!(e.contains(says), "{extra}: {e}");
            assert!(!e.contains("S3cretXY"), "{e}");
        }
    }

    #[test]
    fn targets_are_checked() {
        let base = "[cutover]\napp_roles = [\"app\"]\n[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n\
                    [traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"host=h\"\n\
                    databases = [\"app\"]\ninclude_file = \"/x\"\n";
        let e = format!(
            "{:#}",
            from_str(base, None, &Overrides::default()).unwrap_err()
        );
        assert!(e.contains("pgbouncer_target in both"), "{e}");
        let with = |b: &str, g: &str| {
            let text = base
                .replace(
                    "dsn = \"host=a\"",
                    &format!("dsn = \"host=a\"\npgbouncer_target = \"{b}\""),
                )
                .replace(
                    "dsn = \"host=b\"",
                    &format!("dsn = \"host=b\"\npgbouncer_target = \"{g}\""),
                );
            format!(
                "{:#}",
                from_str(&text, None, &Overrides::default()).unwrap_err()
            )
        };
        assert!(with("host=x", "host=x").contains("both point at x:5432"));
        assert!(with("host=x password=S3cretXY", "host=y").contains("holds a password"));
        assert!(!with("host=x password=S3cretXY", "host=y").contains("S3cretXY"));
        assert!(with("port=5432", "host=y").contains("needs one host"));
        assert!(with("host=x port=99999", "host=y").contains("not a port number"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The traffic tables' own syntax mixed with wide and control characters: an
            /// answer or an error, never a panic.
            #[test]
            fn traffic_soup_loads_or_errs_without_panic(text in crate::text::token_soup(&[
                "[traffic]", "[[traffic.pgbouncer]]", "[traffic.command]", "router", "=",
                "\"pgbouncer\"", "\"command\"", "pause_timeout_ms", "admin", "databases",
                "include_file", "retarget_argv", "argv", "timeout_ms", "pgbouncer_target",
                "\"host=h port=1\"", "[\"app\"]", "[]", "\"/x\"", "\n", "1", "-1", "nan",
                "password=", "\"",
            ], 60)) {
                let _ = load(&text);
            }

            /// A password in the admin console's DSN or in a target never shows.
            #[test]
            fn a_traffic_password_never_shows(post in "[a-z =\"'\\[\\]\\n/?@:]{0,20}", target in any::<bool>()) {
                let secret = "password=Zq9Xw7Kp";
                let bouncer = |admin: &str| format!(
                    "[traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"{admin}\"\n\
                     databases = [\"app\"]\ninclude_file = \"/x\"\n"
                );
                let text = if target {
                    format!(
                        "{}{}",
                        SIDES.replace("host=10.0.0.1 port=5432 dbname=app", &format!("host=h {secret}{post}")),
                        bouncer("host=b")
                    )
                } else {
                    format!("{SIDES}{}", bouncer(&format!("host=h {secret}{post}")))
                };
                if let Err(e) = from_str(&text, None, &Overrides::default()) {
                    let e = format!("{e:#}");
                    prop_assert!(!e.contains("Zq9X"), "{}", e);
                }
            }
        }
    }
}
