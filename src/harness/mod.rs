//! The demo/test harness, not part of the tool's operation: throwaway PostgreSQL clusters from
//! the machine's binaries, in temp dirs, on free loopback ports, run as the `postgres` OS user
//! when we are root (PostgreSQL refuses to run as root). Used by `pgcutover demo` and by the
//! integration tests (`tests/common`), so both exercise the same clusters. Every server a
//! `Cluster` starts is stopped when it is dropped, whatever happened.

pub mod pgbouncer;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};

/// Server settings every harness cluster gets: logical replication on loopback, logs with
/// the time and pid (the redo line's format). `extra` settings are appended after these.
const BASE_CONF: &str = "
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
log_line_prefix = '%m [%p] '
shared_buffers = 32MB
";

#[allow(unsafe_code)] // one of the four justified sites: libc without a safe wrapper
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The `postgres` OS user's uid and gid (root runs the servers as it).
#[allow(unsafe_code)] // as above: getpwnam has no safe wrapper in std
fn postgres_ids() -> Result<(u32, u32)> {
    let name = std::ffi::CString::new("postgres")?;
    // SAFETY: a NUL-terminated name; the result is read at once, before any other getpw* call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "running as root needs an OS user `postgres` (apt-get install postgresql-15 makes one)"
        );
    }
    // SAFETY: non-null, points to libc's static passwd record.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

/// Stop or resume a process we started.
#[allow(unsafe_code)] // as above: kill has no safe wrapper in std
fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: signalling our own child processes; a vanished pid is harmless (ESRCH).
    unsafe { libc::kill(pid, sig) };
}

/// A command run as the `postgres` OS user when we are root.
pub fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Run to completion; an error carries the command's output.
pub fn run_ok(cmd: &mut Command, what: &str) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .wrap_err_with(|| format!("{what}: cannot run"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A temp dir the `postgres` user owns and can reach.
pub fn pg_tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    let d = tempfile::Builder::new().prefix(prefix).tempdir()?;
    if is_root() {
        let (uid, gid) = postgres_ids()?;
        std::os::unix::fs::chown(d.path(), Some(uid), Some(gid))?;
        // TMPDIR may be under a directory only root can traverse.
        let mut dir = d.path().parent();
        while let Some(p) = dir {
            if let Ok(m) = std::fs::metadata(p) {
                use std::os::unix::fs::PermissionsExt;
                let mode = m.permissions().mode();
                if mode & 0o001 == 0 {
                    let _ =
                        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001));
                }
            }
            dir = p.parent();
        }
    }
    Ok(d)
}

/// A PostgreSQL installation's binaries and its major version.
#[derive(Debug, Clone)]
pub struct Bin {
    pub dir: PathBuf,
    pub major: u32,
}

impl Bin {
    /// `$PGCUTOVER_PG_BIN`, `pg_config --bindir`, or the newest `/usr/lib/postgresql/*/bin`.
    pub fn installed() -> Result<Bin> {
        let dir = if let Some(d) = std::env::var_os("PGCUTOVER_PG_BIN") {
            PathBuf::from(d)
        } else if let Some(d) = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|d| d.join("initdb").exists())
        {
            d
        } else {
            let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((v, bin))
                })
                .collect();
            found.sort();
            found.pop().map(|(_, b)| b).ok_or_else(|| {
                eyre!(
                    "no PostgreSQL server binaries (initdb, pg_ctl) found: install them (Debian: apt-get install \
                     postgresql-15), or set PGCUTOVER_PG_BIN=/path/to/bin; `bash tests/setup.sh` (the README's first command) installs it"
                )
            })?
        };
        Bin::at(dir)
    }

    /// The binaries in `dir`, their major version read from `pg_ctl --version`.
    pub fn at(dir: PathBuf) -> Result<Bin> {
        let out = run_ok(
            Command::new(dir.join("pg_ctl")).arg("--version"),
            &format!("{}/pg_ctl --version", dir.display()),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let major = text
            .split_whitespace()
            .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| eyre!("no version in `pg_ctl --version`: {}", text.trim()))?;
        Ok(Bin { dir, major })
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// initdb a data directory as the postgres user, with the harness settings and `extra`.
pub fn initdb(bin: &Bin, data: &Path, extra: &str) -> Result<()> {
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
    )?;
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    text.push_str(BASE_CONF);
    text.push_str(extra);
    std::fs::write(&conf, text)?;
    Ok(())
}

/// The installation's psql, else the newest installed one (a build may lack psql; any recent
/// psql talks to any server).
fn psql_for(bin: &Bin) -> PathBuf {
    let own = bin.tool("psql");
    if own.exists() {
        return own;
    }
    Bin::installed().map_or_else(|_| PathBuf::from("psql"), |b| b.tool("psql"))
}

pub struct Cluster {
    pub name: String,
    pub bin: Bin,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    /// The settings appended at initdb, kept for the cluster an upgrade makes.
    conf: String,
    /// The psql that runs `try_sql_db`, found once.
    psql: PathBuf,
    base: tempfile::TempDir,
    running: bool,
    frozen: Vec<i32>,
}

impl Cluster {
    /// initdb with `conf` appended, then start.
    pub fn try_new(name: &str, bin: &Bin, conf: &str) -> Result<Cluster> {
        let base = pg_tempdir(&format!("pgcutover-{name}-"))?;
        let data = base.path().join("data");
        initdb(bin, &data, conf)?;
        let mut c = Cluster::adopt(name, bin, conf, base, data);
        c.try_start()?;
        Ok(c)
    }

    fn adopt(name: &str, bin: &Bin, conf: &str, base: tempfile::TempDir, data: PathBuf) -> Cluster {
        let log = base.path().join(format!("{}.log", name.to_lowercase()));
        Cluster {
            name: name.into(),
            bin: bin.clone(),
            port: 0,
            data,
            log,
            conf: conf.to_string(),
            psql: psql_for(bin),
            base,
            running: false,
            frozen: Vec::new(),
        }
    }

    /// The temp dir holding the data directory, the log and the socket.
    pub fn base(&self) -> &Path {
        self.base.path()
    }

    /// Start on the port it had (or was given), else on a fresh free port, retrying if another
    /// process took it meanwhile; return once the server accepts writes.
    pub fn try_start(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
        let keep = self.port;
        for attempt in 0..5 {
            // A restart keeps its port so clients configured for it reconnect.
            self.port = if attempt == 0 && keep != 0 {
                keep
            } else {
                free_port()?
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
                .wrap_err_with(|| format!("{}: cannot run pg_ctl", self.name))?;
            if out.status.success() {
                self.running = true;
                return self.wait_writable();
            }
            let log = self.log_text();
            if attempt == 4 || !log.contains("could not bind") {
                bail!(
                    "{}: pg_ctl start failed: {}\n--- log ---\n{log}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr),
                );
            }
        }
        bail!("{}: no free port after 5 tries", self.name)
    }

    /// `pg_ctl -w` can return while a server is still read-only: wait for the end of recovery.
    fn wait_writable(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            if self
                .try_sql_db("postgres", "SELECT pg_is_in_recovery()")
                .as_deref()
                == Ok("f")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} stayed in recovery for 60 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop (`-m fast`).
    pub fn try_stop(&mut self) -> Result<()> {
        self.stop_with("fast")
    }

    /// Stop like a crash (`-m immediate`).
    pub fn try_crash(&mut self) -> Result<()> {
        self.stop_with("immediate")
    }

    fn stop_with(&mut self, mode: &str) -> Result<()> {
        self.thaw();
        if self.running {
            run_ok(
                pg_command(&self.bin.tool("pg_ctl"))
                    .arg("-D")
                    .arg(&self.data)
                    .args(["-w", "-t", "60", "-m", mode, "stop"]),
                &format!("pg_ctl stop -m {mode}"),
            )?;
            self.running = false;
        }
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// A libpq keyword/value string as the superuser, over TCP.
    pub fn dsn_for(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={db} user=postgres sslmode=disable",
            self.port
        )
    }

    /// Run SQL through psql (one statement at a time, so CREATE SUBSCRIPTION works): its
    /// unaligned output, or its error text.
    pub fn try_sql_db(&self, db: &str, sql: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// The postmaster and its children.
    pub fn pids(&self) -> Vec<i32> {
        let pid_file =
            std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(pm) = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![pm];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // ppid is the 2nd field after the parenthesised command name
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, a)| a.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        pids
    }

    fn thaw(&mut self) {
        for pid in self.frozen.drain(..) {
            signal(pid, libc::SIGCONT);
        }
    }

    fn new_base(name: &str) -> Result<(tempfile::TempDir, PathBuf)> {
        let base = pg_tempdir(&format!("pgcutover-{name}-"))?;
        let data = base.path().join("data");
        Ok((base, data))
    }

    /// A copy by `pg_basebackup -X stream -c fast`: a clean copy whose start logs `redo done`.
    pub fn try_basebackup(&self, name: &str) -> Result<Cluster> {
        let (base, data) = Cluster::new_base(name)?;
        run_ok(
            pg_command(&self.bin.tool("pg_basebackup"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream"])
                .args(["-c", "fast", "--no-sync", "-p"])
                .arg(self.port.to_string())
                .arg("-D")
                .arg(&data),
            "pg_basebackup",
        )?;
        let mut c = Cluster::adopt(name, &self.bin, &self.conf, base, data);
        c.try_start()?;
        Ok(c)
    }

    /// A crash-consistent copy, like an RDS snapshot: all of this server's processes are
    /// stopped with SIGSTOP while the data directory is copied. Slots come along. Started on
    /// `port` when given.
    pub fn try_crash_copy(&mut self, name: &str, port: Option<u16>) -> Result<Cluster> {
        let (base, data) = Cluster::new_base(name)?;
        let pids = self.pids();
        if pids.is_empty() {
            bail!("{} is not running", self.name);
        }
        for &p in &pids {
            signal(p, libc::SIGSTOP);
        }
        self.frozen = pids;
        // tar, not cp: coreutils' cp can take fresh WAL pages for holes and copy zeros.
        // As the postgres user, paths as arguments (never spliced into the script).
        let copy = run_ok(
            pg_command(Path::new("/bin/sh"))
                .arg("-c")
                .arg(r#"mkdir -m 700 "$2" && tar -C "$1" -cf - . | tar -C "$2" -xf -"#)
                .arg("sh")
                .arg(&self.data)
                .arg(&data),
            "copying the data directory",
        );
        self.thaw();
        copy?;
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
        let mut c = Cluster::adopt(name, &self.bin, &self.conf, base, data);
        c.port = port.unwrap_or(0);
        c.try_start()?;
        Ok(c)
    }

    /// pg_upgrade this cluster (stopped first) to `to`'s major version, in place of this one.
    pub fn try_upgrade(mut self, to: &Bin) -> Result<Cluster> {
        self.try_stop()?;
        let new_data = self.base.path().join("data-new");
        initdb(to, &new_data, &self.conf)?;
        let (p1, p2) = (free_port()?, free_port()?);
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
        )?;
        let log = self
            .base
            .path()
            .join(format!("{}-upgraded.log", self.name.to_lowercase()));
        let base = std::mem::replace(&mut self.base, tempfile::tempdir()?);
        let mut c = Cluster::adopt(&self.name, to, &self.conf, base, new_data);
        c.log = log;
        c.try_start()?;
        Ok(c)
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
