//! A migration under way on real clusters, with the writer: the fixture the engine tests share.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::writer::{TABLE, Writer};
use super::*;

pub const ROLES: [&str; 2] = ["app", "Weird \"App\""];

pub struct Mig {
    pub blue: Cluster,
    pub green: Cluster,
    pub home: tempfile::TempDir,
    pub cfg: PathBuf,
    pub journal: PathBuf,
    pub ports: Arc<Mutex<Vec<u16>>>,
    pub writer: Option<Writer>,
    /// Extra environment for every pgcutover run (e.g. moto's endpoint and fake credentials).
    pub env: Vec<(String, String)>,
}

/// The app's schema in a database (the roles are the instance's: `seed` makes them).
pub const APP_SCHEMA: &str = r#"
CREATE SCHEMA "Ünïcode";
CREATE TABLE "Ünïcode"."Order Items" (id bigserial PRIMARY KEY, note text, by_role text, at timestamptz DEFAULT now());
CREATE TABLE items (id serial PRIMARY KEY, note text);
CREATE SEQUENCE "Ünïcode"."Invoice No" START 1000;
SELECT nextval('"Ünïcode"."Invoice No"');
GRANT USAGE ON SCHEMA "Ünïcode" TO app, "Weird ""App""";
GRANT ALL ON ALL TABLES IN SCHEMA "Ünïcode", public TO app, "Weird ""App""";
GRANT ALL ON ALL SEQUENCES IN SCHEMA "Ünïcode", public TO app, "Weird ""App""";
"#;

pub fn seed(blue: &Cluster) {
    blue.sql(&format!(
        r#"
CREATE ROLE app LOGIN;
CREATE ROLE "Weird ""App""" LOGIN;
{APP_SCHEMA}"#
    ));
}

/// `app_roles = [...]` of [`ROLES`], as the configurations write it.
fn app_roles() -> String {
    let roles: Vec<String> = ROLES.iter().map(|r| toml_str(r)).collect();
    format!("app_roles = [{}]\n", roles.join(", "))
}

/// `prepare` with BLUE alone: GREEN is configured as a dead port, since it does not exist yet.
/// `extra` goes after the app roles, in [cutover].
pub fn prepare_blue(
    blue: &Cluster,
    home: &std::path::Path,
    journal: &std::path::Path,
    extra: &str,
) -> Run {
    let pre = home.join("pre.toml");
    std::fs::write(
        &pre,
        format!(
            "[blue]\ndsn = {}\n[green]\ndsn = \"host=127.0.0.1 port={} dbname=appdb user=postgres connect_timeout=1\"\n[cutover]\n{}{extra}",
            toml_str(&blue.dsn()),
            free_port(),
            app_roles()
        ),
    )
    .unwrap();
    let r = run(pgcutover(home)
        .arg("--config")
        .arg(&pre)
        .args(["run", "prepare", "--yes", "--journal"])
        .arg(journal));
    assert_eq!(r.code, 0, "prepare: {}\n{}", r.stdout, r.stderr);
    r
}

/// BLUE and its copy with the writer, before the pair is configured.
pub struct Pair {
    pub blue: Cluster,
    pub green: Cluster,
    pub home: tempfile::TempDir,
    pub journal: PathBuf,
    pub ports: Arc<Mutex<Vec<u16>>>,
    pub writer: Writer,
}

pub enum Copy {
    BaseBackup,
    CrashConsistent,
    CrashConsistentThenUpgrade18,
}

impl Copy {
    /// GREEN made from `blue` this way, and the log that holds its restore's redo line.
    pub fn green_of(&self, blue: &mut Cluster) -> (Cluster, PathBuf) {
        match self {
            Copy::BaseBackup => {
                let g = blue.basebackup("green");
                let log = g.log.clone();
                (g, log)
            }
            Copy::CrashConsistent => {
                let g = blue.crash_copy("green");
                let log = g.log.clone();
                (g, log)
            }
            Copy::CrashConsistentThenUpgrade18 => {
                let g15 = blue.crash_copy("green");
                let log = g15.base().join("redo-of-restore.log");
                std::fs::copy(&g15.log, &log).unwrap();
                (g15.upgrade(&Bin::pg18()), log)
            }
        }
    }
}

impl Mig {
    /// BLUE with the writer running, prepared, GREEN copied from it, subscribed and started.
    pub fn replicating(copy: Copy, extra_config: &str) -> Mig {
        Mig::replicating_at(copy, extra_config, 150)
    }

    /// The same with the writer at `tps` inserts per second.
    pub fn replicating_at(copy: Copy, extra_config: &str, tps: u32) -> Mig {
        Mig::replicating_seeded(copy, extra_config, tps, &|_| {})
    }

    /// The same with more of the app's data created on BLUE before `prepare` (so it is in the
    /// copy and the publication).
    pub fn replicating_seeded(
        copy: Copy,
        extra_config: &str,
        tps: u32,
        more: &dyn Fn(&Cluster),
    ) -> Mig {
        let m = Mig::subscribed_at(copy, extra_config, tps, &|c: &mut Cluster| more(c));
        let r = m.pgc(&["run", "start", "--yes"]);
        assert_eq!(r.code, 0, "start: {}\n{}", r.stdout, r.stderr);
        m.wait_phase("replicating");
        m
    }

    /// The same with BLUE set up by `setup` (which may change its configuration and restart
    /// it) before the writer starts.
    pub fn replicating_set_up(copy: Copy, extra_config: &str, setup: &dyn Fn(&mut Cluster)) -> Mig {
        let m = Mig::subscribed_at(copy, extra_config, 150, setup);
        let r = m.pgc(&["run", "start", "--yes"]);
        assert_eq!(r.code, 0, "start: {}\n{}", r.stdout, r.stderr);
        m.wait_phase("replicating");
        m
    }

    /// The same, up to `subscribe`: the subscription exists, disabled.
    pub fn subscribed(copy: Copy, extra_config: &str) -> Mig {
        Mig::subscribed_at(copy, extra_config, 150, &|_: &mut Cluster| {})
    }

    fn subscribed_at(copy: Copy, extra_config: &str, tps: u32, more: &dyn Fn(&mut Cluster)) -> Mig {
        let mut blue = Cluster::new("blue", &Bin::pg15());
        seed(&blue);
        more(&mut blue);
        let ports = Arc::new(Mutex::new(vec![blue.port]));
        let writer = Writer::start(ports.clone(), &ROLES, tps);
        let home = tempfile::tempdir().unwrap();
        let journal = home.path().join("journal.jsonl");
        wait_for("first writes", Duration::from_secs(20), || {
            (writer.count() > 20).then_some(())
        });

        let r = prepare_blue(&blue, home.path(), &journal, "");
        assert!(r.stdout.contains("done"), "{}", r.stdout);

        let (green, redo_log) = copy.green_of(&mut blue);
        Mig::subscribe(
            Pair {
                blue,
                green,
                home,
                journal,
                ports,
                writer,
            },
            &redo_log,
            extra_config,
        )
    }

    /// GREEN copied: the configuration of the pair (`extra` after the app roles, in
    /// [cutover]), then `subscribe`, up to phase subscribed.
    pub fn subscribe(p: Pair, redo_log: &std::path::Path, extra: &str) -> Mig {
        let Pair {
            blue,
            green,
            home,
            journal,
            ports,
            writer,
        } = p;
        let cfg = home.path().join("pgcutover.toml");
        std::fs::write(
            &cfg,
            format!(
                "[blue]\ndsn = {}\n[green]\ndsn = {}\n[cutover]\n{}{extra}\n[redo]\nlog_file = {}\n",
                toml_str(&blue.dsn()),
                toml_str(&green.dsn()),
                app_roles(),
                toml_str(&redo_log.display().to_string())
            ),
        )
        .unwrap();
        ports.lock().unwrap().push(green.port);
        let m = Mig {
            blue,
            green,
            home,
            cfg,
            journal,
            ports,
            writer: Some(writer),
            env: Vec::new(),
        };
        let r = m.pgc(&["run", "subscribe", "--yes"]);
        assert_eq!(r.code, 0, "subscribe: {}\n{}", r.stdout, r.stderr);
        m.wait_phase("subscribed");
        m
    }

    /// A copy of the configuration with `extra` added to its [cutover] table.
    pub fn config_with(&self, extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(&self.cfg)
            .unwrap()
            .replace("[cutover]\n", &format!("[cutover]\n{extra}\n"));
        let p = self
            .home
            .path()
            .join(format!("variant-{}.toml", text.len()));
        std::fs::write(&p, text).unwrap();
        p
    }

    /// pgcutover with one more environment variable.
    pub fn pgc_env(&self, var: (&str, &str), args: &[&str]) -> Run {
        let mut c = pgcutover(self.home.path());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.env(var.0, var.1)
            .arg("--config")
            .arg(&self.cfg)
            .args(args)
            .arg("--journal")
            .arg(&self.journal);
        run(&mut c)
    }

    /// pgcutover with another config file.
    pub fn pgc_with(&self, cfg: &std::path::Path, args: &[&str]) -> Run {
        let mut c = pgcutover(self.home.path());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.arg("--config").arg(cfg).args(args);
        if args.first() == Some(&"run") {
            c.arg("--journal").arg(&self.journal);
        }
        run(&mut c)
    }

    /// A run retried while it is refused only transiently (up to a minute): on a loaded machine a
    /// burst of WAL can hold the slot's lag over the gate for a few samples, and a worker
    /// restarted by an undo takes a moment to stream again.
    pub fn pgc_steady(&self, var: Option<(&str, &str)>, args: &[&str]) -> Run {
        wait_for(
            "the lag and streaming guards to pass",
            Duration::from_secs(60),
            || {
                let r = match var {
                    Some(v) => self.pgc_env(v, args),
                    None => self.pgc(args),
                };
                if r.refused_only_transiently() {
                    std::thread::sleep(Duration::from_millis(500));
                    None
                } else {
                    Some(r)
                }
            },
        )
    }

    /// The switch away from `serving`, killed (like kill -9) right after `step`, then run again:
    /// the rerun must finish it, and the other side serves. Returns whether the first run was
    /// killed (a step that run did not need lets it finish), the rerun's outcome and the side
    /// that serves now.
    pub fn switch_killed_after(&self, serving: &str, step: &str) -> (bool, String, &'static str) {
        let (action, now) = if serving == "blue" {
            ("cutover", "green")
        } else {
            ("rollback", "blue")
        };
        let r = self.pgc_steady(
            Some(("PGCUTOVER_TEST_ABORT_AFTER", step)),
            &["run", action, "--yes"],
        );
        let killed = r.code == -1;
        if !killed {
            assert_eq!(
                r.code, 0,
                "{action} with abort after {step}: {}\n{}",
                r.stdout, r.stderr
            );
        }
        let r = self.pgc_steady(None, &["run", action, "--yes", "--json"]);
        assert_eq!(
            r.code, 0,
            "rerun of {action} after {step}: {}\n{}",
            r.stdout, r.stderr
        );
        let out = r.json()["outcome"].as_str().unwrap().to_string();
        self.wait_phase(if now == "green" {
            "cut_over"
        } else {
            "rolled_back"
        });
        self.assert_serving(now);
        (killed, out, now)
    }

    pub fn pgc(&self, args: &[&str]) -> Run {
        let mut c = pgcutover(self.home.path());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.arg("--config").arg(&self.cfg).args(args);
        if args.first() == Some(&"run") {
            c.arg("--journal").arg(&self.journal);
        }
        run(&mut c)
    }

    pub fn status(&self) -> serde_json::Value {
        self.pgc(&["status", "--json"]).json()
    }

    pub fn wait_phase(&self, phase: &str) {
        wait_for(&format!("phase {phase}"), Duration::from_secs(30), || {
            let v = self.status();
            (v["phase"] == phase).then_some(())
        });
    }

    pub fn side(&self, s: &str) -> &Cluster {
        if s == "blue" { &self.blue } else { &self.green }
    }

    fn rows(c: &Cluster) -> (String, String) {
        let t = c.sql(&format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM {TABLE} t"));
        let i = c.sql("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM items t");
        (t, i)
    }

    /// Pause the writer, wait until both sides hold the same rows, check every acknowledged id
    /// is on both, and that the serving side's sequences are not behind the other's.
    pub fn assert_lossless(&self, serving: &str, after_switch: bool) {
        let w = self.writer.as_ref().unwrap();
        w.pause();
        let other = if serving == "blue" { "green" } else { "blue" };
        let (s, o) = (self.side(serving), self.side(other));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (a, b) = (Self::rows(s), Self::rows(o));
            if a == b {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sides never converged: {serving} {a:?} vs {other} {b:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let acked = w.acked();
        for c in [s, o] {
            let ids: std::collections::HashSet<i64> = c
                .sql(&format!(
                    "SELECT coalesce(string_agg(id::text, ','), '') FROM {TABLE}"
                ))
                .split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().unwrap())
                .collect();
            let missing: Vec<&i64> = acked.iter().filter(|id| !ids.contains(id)).collect();
            assert!(
                missing.is_empty(),
                "{}: {} acknowledged ids missing, e.g. {:?}",
                c.name,
                missing.len(),
                &missing[..missing.len().min(5)]
            );
        }
        let seq = |c: &Cluster, name: &str| -> i64 {
            c.sql(&format!(
                "SELECT coalesce(pg_sequence_last_value('{name}'), 0)"
            ))
            .parse()
            .unwrap()
        };
        // Before any switch the copy's sequences may be ahead (a restore starts them up to 32
        // values on, as logged); after a switch the new side must never be behind the old.
        if after_switch {
            for name in [
                r#""Ünïcode"."Order Items_id_seq""#,
                r#""Ünïcode"."Invoice No""#,
                "items_id_seq",
            ] {
                assert!(
                    seq(s, name) >= seq(o, name),
                    "{name}: serving {serving} is behind {other}"
                );
            }
        }
        let max_id: i64 = s
            .sql(&format!("SELECT max(id) FROM {TABLE}"))
            .parse()
            .unwrap();
        assert!(
            seq(s, r#""Ünïcode"."Order Items_id_seq""#) >= max_id,
            "the serving side would hand out an existing id"
        );
        w.resume();
    }

    /// Writable sides, by SQL.
    pub fn login(&self, c: &Cluster) -> Vec<String> {
        c.sql("SELECT string_agg(rolname || '=' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('app', 'Weird \"App\"')")
            .split(',')
            .map(str::to_string)
            .collect()
    }

    pub fn assert_serving(&self, serving: &str) {
        let other = if serving == "blue" { "green" } else { "blue" };
        assert_eq!(
            self.login(self.side(serving)),
            ["Weird \"App\"=true", "app=true"],
            "{serving} must accept the app"
        );
        assert_eq!(
            self.login(self.side(other)),
            ["Weird \"App\"=false", "app=false"],
            "{other} must be fenced"
        );
    }

    /// Run cutover or rollback; returns the window in ms.
    pub fn switch(&self, action: &str) -> f64 {
        self.switch_steps(action).0
    }

    /// Run cutover or rollback; returns the window and each step's time (ms).
    pub fn switch_steps(&self, action: &str) -> (f64, Vec<(String, f64)>) {
        let before = self.writer.as_ref().unwrap().count();
        let r = self.pgc_steady(None, &["run", action, "--yes", "--json"]);
        assert_eq!(r.code, 0, "{action}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(v["outcome"], "done", "{v}");
        let steps: Vec<(String, f64)> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap().to_string(),
                    s["ms"].as_f64().unwrap(),
                )
            })
            .collect();
        let shown: Vec<String> = steps.iter().map(|(s, ms)| format!("{s}={ms:.1}")).collect();
        eprintln!("{action}: {}", shown.join(" "));
        // the app keeps writing, now on the other side
        wait_for("writes after the switch", Duration::from_secs(20), || {
            (self.writer.as_ref().unwrap().count() > before + 20).then_some(())
        });
        (v["window_ms"].as_f64().unwrap(), steps)
    }
}
