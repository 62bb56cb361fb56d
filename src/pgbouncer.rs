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

use crate::config::{Bouncer, RouteTarget, TrafficSettings};
use crate::domain::observed::Side;

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
}

/// A `SHOW POOLS` row, summed over users.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolLoad {
    pub cl_active: u64,
    pub cl_waiting: u64,
    pub sv_active: u64,
    pub sv_idle: u64,
    /// The longest a waiting client has waited, in ms.
    pub maxwait_ms: u64,
}

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
}
