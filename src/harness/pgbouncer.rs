//! A throwaway PgBouncer (Debian's package) on a free loopback port, run as the `postgres` OS
//! user when we are root, with its `[databases]` in a `%include`d file the way pgcutover expects
//! an operator to set it up. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, bail};

use super::{free_port, is_root, pg_command, pg_tempdir, postgres_ids, run_ok};

pub const BINARY: &str = "/usr/sbin/pgbouncer";

pub struct PgBouncer {
    pub port: u16,
    /// The file pgbouncer.ini `%include`s: the entries pgcutover rewrites.
    pub include: PathBuf,
    pub log: PathBuf,
    ini: PathBuf,
    pidfile: PathBuf,
    dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Start with `entries` (`name = connection string` lines) in the include file, trusting
    /// `users` (plus the admin user `pgbouncer` and the SHOW-only user `stats`), in `pool_mode`.
    pub fn try_start(entries: &[String], users: &[&str], pool_mode: &str) -> Result<PgBouncer> {
        if !Path::new(BINARY).exists() {
            bail!("PgBouncer is not installed ({BINARY}): apt-get install pgbouncer");
        }
        let dir = pg_tempdir("pgcutover-pgbouncer-")?;
        let include = dir.path().join("pgcutover.ini");
        let ini = dir.path().join("pgbouncer.ini");
        let log = dir.path().join("pgbouncer.log");
        let pidfile = dir.path().join("pgbouncer.pid");
        let users_file = dir.path().join("users.txt");
        std::fs::write(&include, format!("[databases]\n{}\n", entries.join("\n")))?;
        let mut list = vec!["pgbouncer", "stats"];
        list.extend_from_slice(users);
        let users_text = list.iter().fold(String::new(), |mut acc, u| {
            acc.push_str(&format!("\"{}\" \"\"\n", u.replace('"', "\"\"")));
            acc
        });
        std::fs::write(&users_file, users_text)?;
        let port = free_port()?;
        std::fs::write(
            &ini,
            format!(
                "[databases]\n%include {}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\nadmin_users = pgbouncer\nstats_users = stats\n\
                 pool_mode = {pool_mode}\nserver_login_retry = 1\nmax_client_conn = 200\ndefault_pool_size = 20\n\
                 logfile = {}\npidfile = {}\n",
                include.display(),
                users_file.display(),
                log.display(),
                pidfile.display()
            ),
        )?;
        if is_root() {
            let (uid, gid) = postgres_ids()?;
            for f in [&include, &ini, &users_file] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid))?;
            }
        }
        let b = PgBouncer {
            port,
            include,
            log,
            ini,
            pidfile,
            dir,
        };
        b.launch()
            .wrap_err_with(|| format!("PgBouncer in {}", b.dir.path().display()))?;
        Ok(b)
    }

    fn launch(&self) -> Result<()> {
        run_ok(
            pg_command(Path::new(BINARY)).arg("-d").arg(&self.ini),
            "pgbouncer -d",
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "pgbouncer did not listen on {} within 10 s:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The admin console, as pgcutover's `[[traffic.pgbouncer]] admin` takes it.
    pub fn admin_dsn(&self) -> String {
        format!("host=127.0.0.1 port={} user=pgbouncer", self.port)
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Stop it (SIGTERM: PgBouncer's immediate shutdown).
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid() {
            super::signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(&self.pidfile);
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
    }
}
