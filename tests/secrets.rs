//! A canary password, given in every way pgcutover takes one, never appears in any output, file
//! or server log: every command and action runs at the most verbose log level against servers
//! that log every statement (`log_statement = all`), and a failing `CREATE SUBSCRIPTION` (the
//! statement the server would log with its error) is among them.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::migration::{ROLES, seed};
use common::*;

/// Passwords with the characters that break naive parsers: `/ ? @ : ' "` and a space.
const C_ENV: &str = "CanaryEnv/7?x@y:z'q\"w s";
const C_REPL: &str = "CanaryRepl/9?x@y:z";

struct Secrets {
    home: tempfile::TempDir,
    journal: PathBuf,
    log: PathBuf,
    outputs: Vec<String>,
}

impl Secrets {
    fn run(&mut self, cfg: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c: Command = pgcutover(self.home.path());
        c.env("PGCUTOVER_LOG", "trace")
            .arg("--log-file")
            .arg(&self.log)
            .arg("--config")
            .arg(cfg);
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args);
        if args.first() == Some(&"run") {
            c.arg("--journal").arg(&self.journal);
        }
        let r = run(&mut c);
        self.outputs
            .push(format!("$ {args:?}\n{}\n{}", r.stdout, r.stderr));
        r
    }
}

fn assert_absent(what: &str, text: &str) {
    for canary in [C_ENV, C_REPL] {
        // the whole password and any 6-character piece of it
        let chars: Vec<char> = canary.chars().collect();
        for w in chars.windows(6) {
            let piece: String = w.iter().collect();
            assert!(
                !text.contains(&piece),
                "{what} contains {piece:?} of a password:\n{}",
                text.lines()
                    .filter(|l| l.contains(&piece))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[test]
fn a_canary_password_never_leaves_the_process() {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    seed(&blue);
    let lit = C_ENV.replace('\'', "''");
    blue.sql(&format!(
        "CREATE ROLE tool SUPERUSER LOGIN PASSWORD '{lit}'"
    ));
    blue.sql("ALTER SYSTEM SET log_statement = 'all'");
    blue.sql("ALTER SYSTEM SET log_min_error_statement = 'error'");
    // (its reload also applies the ALTER SYSTEM above)
    blue.require_password("tool");
    blue.sql("CREATE TABLE secrets_probe (id int PRIMARY KEY)");

    let home = tempfile::tempdir().unwrap();
    let dir = home.path().to_path_buf();
    let mut s = Secrets {
        journal: home.path().join("journal.jsonl"),
        log: home.path().join("pgcutover.log"),
        home,
        outputs: Vec::new(),
    };
    let roles: Vec<String> = ROLES.iter().map(|r| toml_str(r)).collect();
    let cfg_for = |name: &str, blue_port: u16, green_port: u16, extra: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "[blue]\ndsn = \"host=127.0.0.1 port={blue_port} dbname=appdb user=tool sslmode=disable connect_timeout=3\"\n\
                 [green]\ndsn = \"host=127.0.0.1 port={green_port} dbname=appdb user=tool sslmode=disable connect_timeout=3\"\n\
                 [cutover]\napp_roles = [{}]\n{extra}",
                roles.join(", ")
            ),
        )
        .unwrap();
        p
    };
    let env = [
        ("PGCUTOVER_BLUE_PASSWORD", C_ENV),
        ("PGCUTOVER_GREEN_PASSWORD", C_ENV),
    ];

    // prepare needs only BLUE
    let pre = cfg_for("pre.toml", blue.port, free_port(), "");
    let r = s.run(&pre, &env, &["run", "prepare", "--yes"]);
    assert_eq!(r.code, 0, "prepare: {}\n{}", r.stdout, r.stderr);

    let green = blue.crash_copy("green");
    green.sql("SELECT 1");
    let redo = format!(
        "[redo]\nlog_file = {}\n",
        toml_str(&green.log.display().to_string())
    );
    let cfg = cfg_for("pgcutover.toml", blue.port, green.port, &redo);

    // a CREATE SUBSCRIPTION that fails on GREEN (the publisher is unreachable): the server logs
    // a failing statement with its error, unless told not to
    let dead = free_port();
    let failing = s.home.path().join("failing.toml");
    std::fs::write(
        &failing,
        std::fs::read_to_string(&cfg).unwrap().replacen(
            "[green]",
            &format!(
                "replication_dsn = \"host=127.0.0.1 port={dead} dbname=appdb user=tool connect_timeout=2\"\n[green]"
            ),
            1,
        ),
    )
    .unwrap();
    let mut env_repl = env.to_vec();
    env_repl.push(("PGCUTOVER_BLUE_REPLICATION_PASSWORD", C_REPL));
    let r = s.run(&failing, &env_repl, &["run", "subscribe", "--yes"]);
    assert_eq!(
        r.code, 5,
        "a failure mid-action is a failed action, not bad configuration: {}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout.contains("now: phase") && r.stdout.contains("GREEN"),
        "the outcome says where each side stands: {}",
        r.stdout
    );
    let j = std::fs::read_to_string(&s.journal).unwrap();
    assert!(
        j.lines().last().unwrap().contains("\"event\":\"outcome\""),
        "the journal ends with the outcome"
    );

    // the whole flow with the real subscription
    for args in [
        &["run", "subscribe", "--yes"][..],
        &["run", "start", "--yes"],
    ] {
        let r = s.run(&cfg, &env, args);
        assert_eq!(r.code, 0, "{args:?}: {}\n{}", r.stdout, r.stderr);
    }
    wait_for("replicating", std::time::Duration::from_secs(30), || {
        let r = s.run(&cfg, &env, &["status", "--json"]);
        (r.json()["phase"] == "replicating").then_some(())
    });
    for args in [
        &["status"][..],
        &["check", "--json"],
        &["plan", "cutover"],
        &["plan", "cutover", "--json"],
        &["run", "cutover", "--yes"],
        &["plan", "rollback"],
        &["run", "rollback", "--yes", "--json"],
    ] {
        let r = s.run(&cfg, &env, args);
        assert!(
            r.code == 0 || (args[0] == "check" && r.code == 1),
            "{args:?}: {}\n{}",
            r.stdout,
            r.stderr
        );
    }

    // the other ways to give a password: PGPASSWORD, a password file, a service file
    let pgpass = s.home.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "*:*:*:tool:{}\n",
            C_ENV.replace('\\', "\\\\").replace(':', "\\:")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let svc = s.home.path().join("pg_service.conf");
    std::fs::write(
        &svc,
        format!(
            "[bluesvc]\nhost=127.0.0.1\nport={}\ndbname=appdb\nuser=tool\nsslmode=disable\npassword={C_ENV}\n",
            blue.port
        ),
    )
    .unwrap();
    let svc_cfg = s.home.path().join("svc.toml");
    std::fs::write(
        &svc_cfg,
        std::fs::read_to_string(&cfg).unwrap().replacen(
            &format!(
                "dsn = \"host=127.0.0.1 port={} dbname=appdb user=tool sslmode=disable connect_timeout=3\"",
                blue.port
            ),
            "service = \"bluesvc\"",
            1,
        ),
    )
    .unwrap();
    let pgpass_s = pgpass.display().to_string();
    let svc_s = svc.display().to_string();
    for (c, e) in [
        (&cfg, vec![("PGPASSWORD", C_ENV)]),
        (&cfg, vec![("PGPASSFILE", pgpass_s.as_str())]),
        (
            &svc_cfg,
            vec![
                ("PGSERVICEFILE", svc_s.as_str()),
                ("PGCUTOVER_GREEN_PASSWORD", C_ENV),
            ],
        ),
    ] {
        for args in [&["status", "--json"][..], &["plan", "cutover"]] {
            let r = s.run(c, &e, args);
            assert!(
                r.stdout.contains("\"reachable\": true") || r.stdout.contains("cutover"),
                "{e:?} {args:?}: {}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
    // a wrong password: the error is shown, the password is not
    let r = s.run(
        &cfg,
        &[
            ("PGCUTOVER_BLUE_PASSWORD", C_REPL),
            ("PGCUTOVER_GREEN_PASSWORD", C_REPL),
        ],
        &["status"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.contains("password authentication failed"),
        "{}",
        r.stdout
    );

    for (i, o) in s.outputs.iter().enumerate() {
        assert_absent(&format!("command output #{i}"), o);
    }
    let journal = std::fs::read_to_string(&s.journal).unwrap();
    assert!(
        journal.contains("CREATE SUBSCRIPTION"),
        "the journal has the statements"
    );
    assert!(
        journal.contains("password=********"),
        "redacted, not dropped"
    );
    assert_absent("the journal", &journal);
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains("CREATE SUBSCRIPTION") && log.contains("password=********"),
        "statements reach the log at trace level, redacted"
    );
    assert_absent("the log file", &log);
    for (f, name) in [(&s.journal, "journal"), (&s.log, "log")] {
        let mode = std::fs::metadata(f).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600,
            "{name} is private"
        );
    }
    green.sql("SELECT 1");
    let (bl, gl) = (blue.log_text(), green.log_text());
    assert!(
        bl.contains("statement:") && gl.contains("statement:"),
        "both servers log statements"
    );
    assert_absent("BLUE's server log", &bl);
    assert_absent("GREEN's server log", &gl);
    blue.stop();
}
