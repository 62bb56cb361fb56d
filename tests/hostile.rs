//! Hostile and careless input against the real binary and real servers: no panic, no hang, no
//! escape sequence from a database on the terminal, no silent wrong answer, the right exit code.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

fn mkfifo(p: &std::path::Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Every control character a database name could smuggle: OSC retitle, clear screen, C1 CSI.
const EVIL: &str = "evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\r\u{202e}x";

fn no_control(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n' && *c != '\t') || *c == '\u{202e}')
        .collect();
    assert!(bad.is_empty(), "{what} printed {bad:?}:\n{text}");
}

#[test]
fn names_from_the_database_cannot_drive_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    let green = Cluster::new("green", &Bin::pg15());
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for c in [&blue, &green] {
        c.sql(&format!("CREATE ROLE {} LOGIN", ident(EVIL)));
    }
    blue.sql(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (id int PRIMARY KEY); CREATE SEQUENCE {s}.{t2}; \
         SELECT nextval({q}); COMMENT ON TABLE {s}.{t} IS {c}",
        s = ident(EVIL),
        t = ident(EVIL),
        t2 = ident(&format!("{EVIL}_seq")),
        q = lit(&format!(
            "{}.{}",
            ident(EVIL),
            ident(&format!("{EVIL}_seq"))
        )),
        c = lit(EVIL)
    ));
    let cfg = write_config(home.path(), &blue, &green, &["app"], "");
    // TOML strings cannot hold raw control characters: write the name escaped
    let toml_escaped: String = EVIL
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect();
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "app_roles = [\"app\"]",
        &format!("app_roles = [\"{toml_escaped}\"]"),
    );
    std::fs::write(&cfg, text).unwrap();
    for args in [
        &["status"][..],
        &["check"],
        &["plan", "prepare"],
        &["plan", "cutover"],
        &["plan", "fence", "blue"],
        &["status", "--json"],
        &["check", "--json"],
        &["plan", "prepare", "--json"],
    ] {
        let r = run(pgcutover(home.path()).arg("--config").arg(&cfg).args(args));
        no_control(&format!("{args:?} stdout"), &r.stdout);
        no_control(&format!("{args:?} stderr"), &r.stderr);
        assert!(
            args[0] == "plan" || r.stdout.contains("evil") || r.stderr.contains("evil"),
            "{args:?}: the name is shown, escaped:\n{}\n{}",
            r.stdout,
            r.stderr
        );
        if args.contains(&"--json") {
            // still JSON, and the name survives (escaped) for a program reading it
            let v = r.json();
            assert!(
                args[0] == "plan" || v.to_string().contains("evil"),
                "{args:?}: {v}"
            );
        }
    }
}

#[test]
fn paths_that_are_not_regular_files_never_hang() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    blue.sql("CREATE ROLE app LOGIN");
    let fifo = home.path().join("redo.fifo");
    mkfifo(&fifo);
    let cfg = write_config(
        home.path(),
        &blue,
        &blue,
        &["app"],
        &format!(
            "[redo]\nlog_file = {}\n",
            toml_str(&fifo.display().to_string())
        ),
    );
    for args in [&["status", "--json"][..], &["plan", "start"]] {
        let t0 = Instant::now();
        let r = run(pgcutover(home.path()).arg("--config").arg(&cfg).args(args));
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?}",
            t0.elapsed()
        );
        // `plan start` reads the log before its guards (here refusing: the phase is setup),
        // so for it the point is that it answered at all
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            args[0] == "plan" || all.contains("not a regular file"),
            "{args:?}: {all}"
        );
    }
    // the configuration itself: a device, a FIFO, a directory, something huge
    let cfg_fifo = home.path().join("cfg.fifo");
    mkfifo(&cfg_fifo);
    let big = home.path().join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    for p in [
        std::path::PathBuf::from("/dev/zero"),
        std::path::PathBuf::from("/dev/urandom"),
        cfg_fifo,
        home.path().to_path_buf(),
        big,
    ] {
        let t0 = Instant::now();
        let r = run(pgcutover(home.path()).arg("--config").arg(&p).arg("status"));
        assert_eq!(r.code, 2, "{}: {}", p.display(), r.stderr);
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", p.display());
        assert!(
            r.stderr.contains("regular file")
                || r.stderr.contains("directory")
                || r.stderr.contains("larger than"),
            "{}: {}",
            p.display(),
            r.stderr
        );
    }
}

#[test]
fn bad_settings_are_configuration_errors_not_unreachable_sides() {
    let home = tempfile::tempdir().unwrap();
    let base = |extra: &str| {
        let p = home.path().join(format!("c{}.toml", extra.len()));
        std::fs::write(
            &p,
            format!("[blue]\ndsn = \"host=127.0.0.1 port=1\"\n[green]\ndsn = \"host=127.0.0.1 port=2\"\n{}",
                if extra.starts_with("[cutover]") {
                    format!("{extra}app_roles = [\"app\"]\n")
                } else {
                    format!("[cutover]\napp_roles = [\"app\"]\n{extra}")
                }),
        )
        .unwrap();
        p
    };
    let long = "r".repeat(64);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--blue-dsn".into(), "host=h port=70000".into()],
            "port",
        ),
        (
            vec!["--green-dsn".into(), "host=h connect_timeout=abc".into()],
            "connect_timeout",
        ),
        (
            vec![
                "--blue-dsn".into(),
                "host=h sslmode=verify-full sslrootcert=/nonexistent.crt".into(),
            ],
            "sslrootcert",
        ),
        (vec!["--app-roles".into(), long.clone()], "64 bytes"),
        (vec!["--app-roles".into(), "app,".into()], "empty"),
        (vec!["--app-roles".into(), "app,app".into()], "twice"),
    ];
    let cfg = base("");
    for (args, want) in &cases {
        let r = run(pgcutover(home.path())
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .args(["status"]));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    // the dashboard's theme is a name, never a path
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--theme", "../../etc/x"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("plain name"), "{}", r.stderr);
    for (extra, want) in [
        ("[aws]\npoll_interval_s = nan\n", "poll_interval_s"),
        (
            "[cutover]\nsample_interval_ms = 9223372036854775807\n",
            "sample_interval_ms",
        ),
        ("[replication]\nuser = \"\"\n", "empty"),
    ] {
        let cfg = base(extra);
        let t0 = Instant::now();
        let r = run(pgcutover(home.path())
            .arg("--config")
            .arg(&cfg)
            .args(["plan", "cutover"]));
        assert_eq!(r.code, 2, "{extra}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{extra}: {}", r.stderr);
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
    // app_roles = [] in the file: refused, not a fence of nothing
    let p = home.path().join("empty-roles.toml");
    std::fs::write(
        &p,
        "[blue]\ndsn = \"host=a\"\n[green]\ndsn = \"host=b\"\n[cutover]\napp_roles = []\n",
    )
    .unwrap();
    let r = run(pgcutover(home.path()).arg("--config").arg(&p).arg("status"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("app_roles") && r.stderr.contains("empty"),
        "{}",
        r.stderr
    );
}

#[test]
fn log_file_is_private_and_its_errors_are_reported() {
    let home = tempfile::tempdir().unwrap();
    let cfg_text = "[blue]\ndsn = \"host=127.0.0.1 port=1 connect_timeout=1\"\n[green]\ndsn = \"host=127.0.0.1 port=2 connect_timeout=1\"\n[cutover]\napp_roles = [\"app\"]\n";
    let cfg = home.path().join("c.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    // a directory, or a place that cannot be written: said, exit 2, nothing silently lost
    for bad in [home.path().to_path_buf(), "/proc/pgcutover.log".into()] {
        let r = run(pgcutover(home.path())
            .arg("--config")
            .arg(&cfg)
            .arg("--log-file")
            .arg(&bad)
            .arg("status"));
        assert_eq!(r.code, 2, "{}: {}", bad.display(), r.stderr);
        assert!(r.stderr.contains("log file"), "{}", r.stderr);
    }
    let log = home.path().join("logs/pgcutover.log");
    let r = run(pgcutover(home.path())
        .env("PGCUTOVER_LOG", "trace")
        .arg("--config")
        .arg(&cfg)
        .arg("--log-file")
        .arg(&log)
        .arg("status"));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the log file is private");
    // a bad filter is said, not silently replaced
    let r = run(pgcutover(home.path())
        .env("PGCUTOVER_LOG", "tokio_postgres=[")
        .arg("--config")
        .arg(&cfg)
        .arg("--log-file")
        .arg(&log)
        .arg("status"));
    assert!(r.stderr.contains("PGCUTOVER_LOG"), "{}", r.stderr);
}

#[test]
fn one_side_down_means_phase_unknown() {
    let home = tempfile::tempdir().unwrap();
    let mut blue = Cluster::new("blue", &Bin::pg15());
    blue.sql("CREATE ROLE app LOGIN");
    // BLUE prepared (publication and slot): with GREEN down this is not "prepared" for sure
    blue.sql("CREATE PUBLICATION pgcutover_pub FOR ALL TABLES");
    blue.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    let green = Cluster::new("green", &Bin::pg15());
    green.sql("CREATE ROLE app LOGIN");
    let cfg = write_config(home.path(), &blue, &green, &["app"], "");
    let port = green.port;
    drop(green);
    let v = run(pgcutover(home.path())
        .arg("--config")
        .arg(&cfg)
        .args(["status", "--json"]))
    .json();
    assert_eq!(v["phase"], "unknown", "GREEN down: {v}");
    let _ = port;
    blue.stop();
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&cfg)
        .args(["status", "--json"]));
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["phase"], "unknown");
}
