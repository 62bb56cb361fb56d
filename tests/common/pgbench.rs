//! pgbench (the real client) through PgBouncer: its tables, a config with `[traffic]`, a run
//! with per-transaction logs and what they say, and the TPC-B invariant. Shared by
//! `tests/traffic.rs` and `benches/traffic.rs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::migration::Mig;
use super::*;
use pgcutover::harness::pgbouncer::PgBouncer;

/// pgbench's tables on BLUE before the copy; `pgbench_history` gets a key so it replicates.
pub fn pgbench_tables(blue: &Cluster) {
    run_ok(
        Command::new(Bin::pg15().tool("pgbench"))
            .args(["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p"])
            .arg(blue.port.to_string())
            .args(["-U", "postgres", DB]),
        "pgbench -i",
    );
    blue.sql("ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY");
    blue.sql("GRANT ALL ON ALL TABLES IN SCHEMA public TO app");
    blue.sql("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app");
}

pub fn entry(c: &Cluster) -> String {
    format!("host=127.0.0.1 port={} dbname={DB}", c.port)
}

/// A PgBouncer in transaction pooling whose database `bench` points at `c`, for `app`.
pub fn bouncer_on(c: &Cluster) -> PgBouncer {
    PgBouncer::try_start(&[format!("bench = {}", entry(c))], &["app"], "transaction").unwrap()
}

/// The migration's configuration with `[traffic]` for `bouncers` and both sides' targets.
pub fn traffic_config(m: &Mig, bouncers: &[&PgBouncer], extra: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(&m.cfg).unwrap();
    for c in [&m.blue, &m.green] {
        let dsn_line = format!("dsn = {}\n", toml_str(&c.dsn()));
        text = text.replacen(
            &dsn_line,
            &format!("{dsn_line}pgbouncer_target = {}\n", toml_str(&entry(c))),
            1,
        );
    }
    text.push_str("[traffic]\nrouter = \"pgbouncer\"\npause_timeout_ms = 3000\n");
    for b in bouncers {
        text.push_str(&format!(
            "[[traffic.pgbouncer]]\nadmin = {}\ndatabases = [\"bench\"]\ninclude_file = {}\n",
            toml_str(&b.admin_dsn()),
            toml_str(&b.include.display().to_string())
        ));
    }
    text.push_str(extra);
    let p = m.home.path().join("traffic.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub struct Bench {
    child: Child,
    prefix: PathBuf,
}

/// pgbench through `port` for `secs`, 8 clients at 300 tps, every transaction logged.
pub fn pgbench(port: u16, secs: u32, dir: &Path) -> Bench {
    let prefix = dir.join("pgbench");
    let child = Command::new(Bin::pg15().tool("pgbench"))
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", "app", "-n", "-c", "8", "-j", "2", "-R", "300", "-T"])
        .arg(secs.to_string())
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg("bench")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pgbench");
    Bench { child, prefix }
}

/// What pgbench logged: committed transactions, failed ones, and the largest latency (ms).
pub struct Logged {
    pub committed: u64,
    pub failed: u64,
    pub max_ms: f64,
    /// Every transaction: when it ended (µs since the epoch) and its latency (ms); `None` for
    /// a failed one.
    pub txns: Vec<(u64, Option<f64>)>,
}

impl Logged {
    /// The largest latency of the transactions that ended between `from` and `to` (µs since
    /// the epoch): what a switch in that span cost the app.
    pub fn max_ms_between(&self, from: u64, to: u64) -> f64 {
        self.txns
            .iter()
            .filter(|(end, _)| (from..=to).contains(end))
            .filter_map(|(_, ms)| *ms)
            .fold(0.0, f64::max)
    }
}

impl Bench {
    pub fn finish(self) -> Logged {
        let out = self.child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("aborted"),
            "pgbench failed ({}):\n{}\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        let dir = self.prefix.parent().unwrap();
        let name = self
            .prefix
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let mut l = Logged {
            committed: 0,
            failed: 0,
            max_ms: 0.0,
            txns: Vec::new(),
        };
        for f in std::fs::read_dir(dir).unwrap() {
            let f = f.unwrap();
            if !f.file_name().to_string_lossy().starts_with(&name) {
                continue;
            }
            for line in std::fs::read_to_string(f.path()).unwrap().lines() {
                // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
                let fields: Vec<&str> = line.split_whitespace().collect();
                let time = fields.get(2).copied().unwrap_or("");
                let end = match (fields.get(4), fields.get(5)) {
                    (Some(s), Some(us)) => {
                        s.parse::<u64>().unwrap_or(0) * 1_000_000 + us.parse::<u64>().unwrap_or(0)
                    }
                    _ => 0,
                };
                match time.parse::<f64>() {
                    Ok(us) => {
                        l.committed += 1;
                        l.max_ms = l.max_ms.max(us / 1000.0);
                        l.txns.push((end, Some(us / 1000.0)));
                    }
                    Err(_) if time == "skipped" => {}
                    Err(_) => {
                        l.failed += 1;
                        l.txns.push((end, None));
                    }
                }
            }
        }
        l
    }
}

pub fn invariant_holds(c: &Cluster) -> bool {
    c.sql(
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches) \
         AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers) \
         AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
    ) == "t"
}

pub fn history(c: &Cluster) -> u64 {
    c.sql("SELECT count(*) FROM pgbench_history")
        .parse()
        .unwrap()
}

pub fn points_at(b: &PgBouncer, c: &Cluster) -> bool {
    std::fs::read_to_string(&b.include)
        .unwrap()
        .contains(&format!("port={}", c.port))
}
