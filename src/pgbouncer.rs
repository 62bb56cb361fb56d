//! A plain client of PgBouncer's admin console (`SHOW`, `PAUSE`, `RESUME`, `RELOAD`, over the
//! simple query protocol it speaks) and the writer of the `%include`d file that holds the
//! entries the switch repoints.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::config::{Bouncer, Retarget, RouteTarget, Router, TrafficSettings};
use crate::domain::observed::Side;
use crate::domain::traffic::{BouncerReading, IncludeState, RoutedEntry, TrafficReading};

/// One admin-console session.
pub struct Admin {
    client: Client,
    pub name: String,
}

/// A `SHOW DATABASES` row: where an entry points and whether it is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub paused: bool,
    /// The entry's own pool_mode; empty when it uses the global one.
    pub pool_mode: String,
}

pub use crate::domain::traffic::PoolLoad;

type Row = HashMap<String, String>;

impl Admin {
    pub async fn connect(b: &Bouncer, timeout: Duration) -> Result<Admin> {
        let client = crate::collect::connect::connect_named(&b.name, &b.admin, timeout).await?;
        Ok(Admin {
            client,
            name: b.name.clone(),
        })
    }

    /// Run one admin command (`PAUSE app`), bounded by `timeout`.
    pub async fn command(&self, cmd: &str, timeout: Duration) -> Result<()> {
        self.rows(cmd, timeout).await.map(drop)
    }

    async fn rows(&self, cmd: &str, timeout: Duration) -> Result<Vec<Row>> {
        let msgs = tokio::time::timeout(timeout, self.client.simple_query(cmd))
            .await
            .map_err(|_| eyre!("{}: `{cmd}` did not answer within {timeout:?}", self.name))?
            .map_err(|e| {
                eyre!(
                    "{}: `{cmd}`: {}",
                    self.name,
                    crate::collect::connect::pg_error_text(&e)
                )
            })?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    r.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.name().to_string(), r.get(i).unwrap_or("").to_string()))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    pub async fn databases(&self, timeout: Duration) -> Result<Vec<Entry>> {
        let rows = self.rows("SHOW DATABASES", timeout).await?;
        Ok(rows.iter().map(entry).collect())
    }

    /// Client and server counts of each database's pools, summed over users.
    pub async fn pools(&self, timeout: Duration) -> Result<HashMap<String, PoolLoad>> {
        Ok(pool_loads(&self.rows("SHOW POOLS", timeout).await?))
    }

    /// `SHOW CONFIG` as key → value.
    pub async fn config(&self, timeout: Duration) -> Result<HashMap<String, String>> {
        let rows = self.rows("SHOW CONFIG", timeout).await?;
        Ok(rows
            .iter()
            .map(|r| (field(r, "key"), field(r, "value")))
            .collect())
    }
}

/// A `SHOW DATABASES` row; what cannot be read is empty or 0 (then it points at no side).
fn entry(r: &Row) -> Entry {
    Entry {
        name: field(r, "name"),
        host: field(r, "host"),
        port: field(r, "port").parse().unwrap_or(0),
        database: field(r, "database"),
        paused: field(r, "paused") == "1",
        pool_mode: field(r, "pool_mode"),
    }
}

/// `SHOW POOLS` rows summed per database; counts saturate rather than overflow on a bad row.
fn pool_loads(rows: &[Row]) -> HashMap<String, PoolLoad> {
    let mut out: HashMap<String, PoolLoad> = HashMap::new();
    for r in rows {
        let n = |k: &str| field(r, k).parse::<u64>().unwrap_or(0);
        let p = out.entry(field(r, "database")).or_default();
        p.cl_active = p.cl_active.saturating_add(n("cl_active"));
        p.cl_waiting = p.cl_waiting.saturating_add(n("cl_waiting"));
        p.sv_active = p.sv_active.saturating_add(n("sv_active"));
        p.sv_idle = p.sv_idle.saturating_add(n("sv_idle"));
        let wait_ms = n("maxwait")
            .saturating_mul(1000)
            .saturating_add(n("maxwait_us") / 1000);
        p.maxwait_ms = p.maxwait_ms.max(wait_ms);
    }
    out
}

fn field(r: &Row, k: &str) -> String {
    r.get(k).cloned().unwrap_or_default()
}

/// Whether an entry points at `t`: its address, and its database as `t` names it (or, when `t`
/// names none, the entry's own name, as `include_text` writes it).
pub fn points_at(e: &Entry, t: &RouteTarget, db: &str) -> bool {
    e.host == t.host && e.port == t.port && e.database == t.dbname.as_deref().unwrap_or(db)
}

/// The side an entry serves: the one whose `pgbouncer_target` it points at.
pub fn side_of(e: &Entry, traffic: &TrafficSettings) -> Option<Side> {
    Side::BOTH
        .into_iter()
        .find(|s| traffic.target(*s).is_some_and(|t| points_at(e, t, &e.name)))
}

/// The include file's text for `b`'s databases pointing at `t`.
pub fn include_text(b: &Bouncer, t: &RouteTarget) -> String {
    let mut s = String::from(
        "; Written by pgcutover at every switch: the databases that follow the serving side.\n\
         ; Edits here are replaced; change [blue]/[green] pgbouncer_target instead.\n\
         [databases]\n",
    );
    for db in &b.databases {
        s.push_str(&format!("{db} = {}\n", t.entry_for(db)));
    }
    s
}

/// Replace `path` by `text` atomically: a temporary file beside it with the same owner and mode,
/// written and synced, renamed over it, and the directory synced, so PgBouncer reads either the
/// old file or the new one, never a part, and can still read it.
pub fn write_include(path: &Path, text: &str) -> Result<()> {
    let meta = std::fs::metadata(path).wrap_err_with(|| {
        format!(
            "include file {}: it must exist (pgbouncer.ini %includes it)",
            path.display()
        )
    })?;
    if !meta.is_file() {
        bail!("include file {} is not a regular file", path.display());
    }
    let dir = path
        .parent()
        .ok_or_else(|| eyre!("include file {} has no directory", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.pgcutover-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .wrap_err_with(|| format!("cannot create {}", tmp.display()))?;
        let (uid, gid) = (meta.uid(), meta.gid());
        let ours = std::fs::metadata(&tmp)?;
        if (ours.uid(), ours.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).wrap_err_with(|| {
                format!(
                    "cannot give {} the include file's owner ({uid}:{gid}); run as that user or root",
                    tmp.display()
                )
            })?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
            .wrap_err_with(|| format!("cannot rename {} over {}", tmp.display(), path.display()))?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What every configured router says now, for `status` and `check`; `None` when no router is
/// configured.
pub async fn read(traffic: &TrafficSettings, timeout: Duration) -> Option<TrafficReading> {
    Reader::default().read(traffic, timeout).await
}

/// Reads the routers again and again over one admin session per bouncer, kept between reads
/// (PgBouncer logs every login) and opened again after a failure.
#[derive(Default)]
pub struct Reader {
    sessions: Vec<Option<Session>>,
}

struct Session {
    admin: Admin,
    /// Asked once per session: the probe is an error line in PgBouncer's log.
    rights: Option<bool>,
}

impl Reader {
    /// Every configured router's state; bouncers are read in parallel, each within `timeout`.
    pub async fn read(
        &mut self,
        traffic: &TrafficSettings,
        timeout: Duration,
    ) -> Option<TrafficReading> {
        match &traffic.router {
            Router::None => None,
            Router::Command(c) => Some(TrafficReading {
                router: "command",
                bouncers: Vec::new(),
                command_problem: program_problem(c.argv.first().map_or("", String::as_str)),
            }),
            Router::PgBouncer(bs) => {
                self.sessions.resize_with(bs.len(), || None);
                let bouncers = futures_util::future::join_all(
                    bs.iter()
                        .zip(self.sessions.iter_mut())
                        .map(|(b, s)| read_bouncer(b, s, traffic, timeout)),
                )
                .await;
                Some(TrafficReading {
                    router: "pgbouncer",
                    bouncers,
                    command_problem: None,
                })
            }
        }
    }
}

async fn read_bouncer(
    b: &Bouncer,
    session: &mut Option<Session>,
    traffic: &TrafficSettings,
    timeout: Duration,
) -> BouncerReading {
    let answers = tokio::time::timeout(timeout, async {
        if session.is_none() {
            let admin = Admin::connect(b, timeout).await?;
            let rights = admin.admin_rights(timeout).await;
            *session = Some(Session { admin, rights });
        }
        let s = session.as_ref().ok_or_else(|| eyre!("no session"))?;
        let entries = s.admin.databases(timeout).await?;
        let pools = s.admin.pools(timeout).await?;
        let config = s.admin.config(timeout).await?;
        Ok::<_, color_eyre::eyre::Report>((entries, pools, config, s.rights))
    })
    .await
    .map_err(|_| eyre!("{}: no answer within {timeout:?}", b.name))
    .and_then(|r| r);
    match answers {
        Err(e) => {
            *session = None;
            BouncerReading::failed(&b.name, crate::format::report_chain(&e))
        }
        Ok((entries, pools, config, admin_rights)) => {
            let mut r = reading_of(b, traffic, &entries, &pools, &config);
            r.admin_rights = admin_rights;
            r
        }
    }
}

/// A bouncer's reading from its answers (pure, so it is tested without a PgBouncer).
fn reading_of(
    b: &Bouncer,
    traffic: &TrafficSettings,
    entries: &[Entry],
    pools: &HashMap<String, PoolLoad>,
    config: &HashMap<String, String>,
) -> BouncerReading {
    let global_mode = config.get("pool_mode").cloned();
    let mut routed = Vec::new();
    let mut missing = Vec::new();
    for db in &b.databases {
        let Some(e) = entries.iter().find(|e| &e.name == db) else {
            missing.push(db.clone());
            continue;
        };
        routed.push(RoutedEntry {
            db: db.clone(),
            host: e.host.clone(),
            port: e.port,
            database: e.database.clone(),
            side: side_of(e, traffic),
            paused: e.paused,
            paused_since: None,
            pool_mode: if e.pool_mode.is_empty() {
                global_mode.clone()
            } else {
                Some(e.pool_mode.clone())
            },
            load: pools.get(db).cloned(),
        });
    }
    let include = match &b.retarget {
        Retarget::Argv(_) => IncludeState::NotUsed,
        Retarget::IncludeFile(path) => include_state(path, b, entries),
    };
    BouncerReading {
        name: b.name.clone(),
        error: None,
        entries: routed,
        missing,
        admin_rights: None,
        server_login_retry_s: config
            .get("server_login_retry")
            .and_then(|v| v.trim().parse().ok()),
        include,
    }
}

impl Admin {
    /// Whether this login may change things (PAUSE, RELOAD), not only SHOW: `RESUME` of a
    /// database that cannot exist is refused for want of rights before the name is looked up,
    /// and changes nothing either way. `None` when the answer is neither.
    pub async fn admin_rights(&self, timeout: Duration) -> Option<bool> {
        match self
            .command(r#"RESUME "pgcutover rights probe""#, timeout)
            .await
        {
            Ok(()) => Some(true),
            Err(e) => {
                let m = e.to_string();
                if m.contains("admin access needed") {
                    Some(false)
                } else if m.contains("no such database") {
                    Some(true)
                } else {
                    None
                }
            }
        }
    }
}

/// Whether the include file can be rewritten and says what PgBouncer serves: its entries for
/// the configured databases name the same host, port and database as SHOW DATABASES.
fn include_state(path: &Path, b: &Bouncer, entries: &[Entry]) -> IncludeState {
    let shown = path.display().to_string();
    let problem = |problem: String| IncludeState::Problem {
        path: shown.clone(),
        problem,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return problem(format!("cannot be read: {e}")),
    };
    // Opening for append proves write permission without changing a byte or the mtime.
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
        return problem(format!("is not writable: {e}"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Err(e) = tempfile::Builder::new()
        .prefix(".pgcutover-check")
        .tempfile_in(dir)
    {
        return problem(format!(
            "its directory {} does not let pgcutover create the replacement file: {e}",
            dir.display()
        ));
    }
    let lines = include_entries(&text);
    let mut differ = Vec::new();
    for db in &b.databases {
        let Some(e) = entries.iter().find(|e| &e.name == db) else {
            continue;
        };
        match lines.iter().find(|(name, _)| name == db) {
            None => differ.push(format!("has no line for `{db}`")),
            Some((_, conn)) => {
                let (host, port, dbname) = entry_address(conn, db);
                if (host.as_str(), port, dbname.as_str())
                    != (e.host.as_str(), e.port, e.database.as_str())
                {
                    differ.push(format!(
                        "says `{db}` → {host}:{port}/{dbname} but PgBouncer serves {}:{}/{} \
                         (a RELOAD pending, or an edit by hand)",
                        e.host, e.port, e.database
                    ));
                }
            }
        }
    }
    if differ.is_empty() {
        IncludeState::Matches { path: shown }
    } else {
        problem(differ.join("; "))
    }
}

/// The `name = connstr` lines of an ini file's `[databases]` section.
fn include_entries(text: &str) -> Vec<(String, String)> {
    let mut in_databases = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(';') || line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_databases = line.eq_ignore_ascii_case("[databases]");
            continue;
        }
        if in_databases && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().trim_matches('"').to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The host, port and database a PgBouncer connection string names, with PgBouncer's
/// defaults (port 5432, the entry's own name).
fn entry_address(conn: &str, db: &str) -> (String, u16, String) {
    let (mut host, mut port, mut dbname) = (String::new(), 5432, db.to_string());
    for kv in conn.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            let v = v.trim_matches('\'');
            match k {
                "host" => host = v.to_string(),
                "port" => port = v.parse().unwrap_or(0),
                "dbname" => dbname = v.to_string(),
                _ => {}
            }
        }
    }
    (host, port, dbname)
}

/// Why `program` cannot be run, if it cannot: missing, not a file, not executable. A bare
/// name is looked up in PATH.
fn program_problem(program: &str) -> Option<String> {
    let candidates: Vec<std::path::PathBuf> = if program.contains('/') {
        vec![program.into()]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
            .unwrap_or_default()
    };
    let runnable = candidates.iter().any(|c| {
        std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    (!runnable).then(|| {
        format!(
            "`{}` is not an executable file{}",
            crate::text::echo(program),
            if program.contains('/') {
                ""
            } else {
                " in PATH"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn row() -> impl Strategy<Value = Row> {
            let key = prop::sample::select(vec![
                "name",
                "host",
                "port",
                "database",
                "paused",
                "cl_active",
                "cl_waiting",
                "sv_active",
                "sv_idle",
                "maxwait",
                "maxwait_us",
                "x",
            ]);
            let value = prop_oneof![
                "\\PC{0,12}",
                any::<u64>().prop_map(|n| n.to_string()),
                Just(u64::MAX.to_string()),
                Just("-1".to_string()),
            ];
            prop::collection::hash_map(key.prop_map(str::to_string), value, 0..12)
        }

        proptest! {
            /// Whatever PgBouncer answers (or something else on its port), reading it never
            /// panics, overflow included.
            #[test]
            fn any_rows_read_without_panic(rows in prop::collection::vec(row(), 0..8)) {
                let _ = rows.iter().map(entry).collect::<Vec<_>>();
                let _ = pool_loads(&rows);
            }
        }
    }

    #[test]
    fn pool_counts_saturate() {
        let big: Row = [
            ("database", "app"),
            ("maxwait", "18446744073709551615"),
            ("cl_waiting", "18446744073709551615"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = &pool_loads(&[big.clone(), big])["app"];
        assert_eq!((p.maxwait_ms, p.cl_waiting), (u64::MAX, u64::MAX));
    }

    #[test]
    fn an_entry_serves_the_side_whose_target_it_points_at() {
        let target = |host: &str, dbname: Option<&str>| RouteTarget {
            entry: String::new(),
            host: host.into(),
            port: 5432,
            dbname: dbname.map(str::to_string),
        };
        let traffic = TrafficSettings {
            targets: [
                Some(target("10.0.0.1", Some("app"))),
                Some(target("10.0.0.2", None)),
            ],
            ..TrafficSettings::default()
        };
        let entry = |host: &str, database: &str| Entry {
            name: "app".into(),
            host: host.into(),
            port: 5432,
            database: database.into(),
            paused: false,
            pool_mode: String::new(),
        };
        assert_eq!(
            side_of(&entry("10.0.0.2", "app"), &traffic),
            Some(Side::Green)
        );
        assert_eq!(
            side_of(&entry("10.0.0.1", "app"), &traffic),
            Some(Side::Blue)
        );
        assert_eq!(side_of(&entry("10.0.0.1", "other"), &traffic), None);
        assert_eq!(side_of(&entry("10.0.0.2", "other"), &traffic), None);
        assert_eq!(side_of(&entry("10.0.0.9", "app"), &traffic), None);
    }

    #[test]
    fn include_file_is_replaced_keeping_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("inc.ini");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_include(&p, "[databases]\napp = host=x\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "[databases]\napp = host=x\n"
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // nothing left beside it
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = write_include(&dir.path().join("missing.ini"), "x").unwrap_err();
        assert!(format!("{e:#}").contains("must exist"), "{e:#}");
    }

    fn settings_with_include(path: &Path) -> crate::config::Settings {
        crate::config::from_str(
            &format!(
                "[cutover]\napp_roles = [\"app\"]\n\
                 [blue]\ndsn = \"host=127.0.0.1 port=1 dbname=app user=admin\"\n\
                 pgbouncer_target = \"host=10.0.0.1 port=5432 dbname=app\"\n\
                 [green]\ndsn = \"host=127.0.0.1 port=2 dbname=app user=admin\"\n\
                 pgbouncer_target = \"host=10.0.0.2\"\n\
                 [traffic]\nrouter = \"pgbouncer\"\n\
                 [[traffic.pgbouncer]]\nadmin = \"host=10.0.0.5 user=pgbouncer\"\n\
                 databases = [\"app\", \"gone\"]\ninclude_file = {:?}\n",
                path.display().to_string()
            ),
            None,
            &crate::config::Overrides::default(),
        )
        .unwrap()
    }

    fn shown(host: &str, database: &str, paused: bool, pool_mode: &str) -> Entry {
        Entry {
            name: "app".into(),
            host: host.into(),
            port: 5432,
            database: database.into(),
            paused,
            pool_mode: pool_mode.into(),
        }
    }

    #[test]
    fn a_reading_maps_entries_to_sides_and_compares_the_include_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgcutover.ini");
        let s = settings_with_include(&path);
        let b = &s.traffic.bouncers()[0];
        let green = s.traffic.target(Side::Green).unwrap();
        std::fs::write(&path, include_text(b, green)).unwrap();
        let config: HashMap<String, String> = [
            ("pool_mode".to_string(), "transaction".to_string()),
            ("server_login_retry".to_string(), "15".to_string()),
        ]
        .into();
        let pools: HashMap<String, PoolLoad> = [(
            "app".to_string(),
            PoolLoad {
                cl_active: 3,
                ..PoolLoad::default()
            },
        )]
        .into();

        let r = reading_of(
            b,
            &s.traffic,
            &[shown("10.0.0.2", "app", false, "")],
            &pools,
            &config,
        );
        assert_eq!(r.missing, vec!["gone".to_string()]);
        assert_eq!(r.entries[0].side, Some(Side::Green));
        assert_eq!(r.entries[0].pool_mode.as_deref(), Some("transaction"));
        assert_eq!(r.entries[0].load.as_ref().map(|l| l.cl_active), Some(3));
        assert_eq!(r.server_login_retry_s, Some(15));
        assert!(
            matches!(r.include, IncludeState::Matches { .. }),
            "{:?}",
            r.include
        );

        // PgBouncer still serves BLUE (RELOAD pending): the file and SHOW DATABASES differ.
        let r = reading_of(
            b,
            &s.traffic,
            &[shown("10.0.0.1", "app", true, "session")],
            &pools,
            &config,
        );
        assert_eq!(r.entries[0].side, Some(Side::Blue));
        assert_eq!(r.entries[0].pool_mode.as_deref(), Some("session"));
        match &r.include {
            IncludeState::Problem { problem, .. } => {
                assert!(problem.contains("RELOAD pending"), "{problem}");
            }
            other => panic!("{other:?}"),
        }

        // A file that is not there.
        std::fs::remove_file(&path).unwrap();
        let r = reading_of(
            b,
            &s.traffic,
            &[shown("10.0.0.2", "app", false, "")],
            &pools,
            &config,
        );
        assert!(
            matches!(&r.include, IncludeState::Problem { problem, .. } if problem.contains("cannot be read")),
            "{:?}",
            r.include
        );
    }

    #[test]
    fn include_lines_and_addresses_are_read_like_pgbouncer_reads_them() {
        let text = "; comment\n[pgbouncer]\napp = host=nope\n[databases]\n\
                    app = host=10.0.0.2 port=6000 dbname='real'\nother=host=h\n";
        let e = include_entries(text);
        assert_eq!(
            e,
            vec![
                (
                    "app".to_string(),
                    "host=10.0.0.2 port=6000 dbname='real'".to_string()
                ),
                ("other".to_string(), "host=h".to_string())
            ]
        );
        assert_eq!(
            entry_address(&e[0].1, "app"),
            ("10.0.0.2".to_string(), 6000, "real".to_string())
        );
        assert_eq!(
            entry_address("host=h", "other"),
            ("h".to_string(), 5432, "other".to_string())
        );
    }

    #[test]
    fn a_missing_program_is_a_problem_and_sh_is_not() {
        assert!(program_problem("/bin/sh").is_none());
        assert!(program_problem("sh").is_none());
        let p = program_problem("/nonexistent/repoint\u{1b}[2J").unwrap();
        assert!(
            p.contains("not an executable file") && !p.contains('\u{1b}'),
            "{p}"
        );
        assert!(program_problem("/etc/passwd").is_some());
    }
}
