//! The command line with bad input: clear messages, the right exit code, never a panic, never a
//! password in the output.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use common::*;

fn cfg_file(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let home = tempfile::tempdir().unwrap();
    let cfg = cfg_file(
        home.path(),
        "[blue]\ndsn = \"host=127.0.0.1\"\n\n[green]\ndsn = \"host=127.0.0.1\"\nsslmod = \"require\"\n",
    );
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&cfg)
        .arg("status"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("line 6"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown field `sslmod`"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn missing_side_says_what_to_add() {
    let home = tempfile::tempdir().unwrap();
    let cfg = cfg_file(home.path(), "[blue]\ndsn = \"host=127.0.0.1\"\n");
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&cfg)
        .arg("check"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no [green] connection"), "{}", r.stderr);
}

#[test]
fn missing_config_file_is_explained() {
    let home = tempfile::tempdir().unwrap();
    let r = run(pgcutover(home.path()).args(["--config", "/nonexistent/pgcutover.toml", "status"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read the configuration file")
            && r.stderr.contains("/nonexistent/pgcutover.toml")
            && r.stderr.contains("No such file"),
        "{}",
        r.stderr
    );
}

#[test]
fn unreachable_host_is_reported_not_fatal() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    blue.sql("CREATE ROLE app LOGIN");
    let dead = free_port();
    let r = run(pgcutover(home.path())
        .arg("--blue-dsn")
        .arg(blue.dsn())
        .arg("--green-dsn")
        .arg(format!(
            "host=127.0.0.1 port={dead} dbname=appdb user=postgres connect_timeout=2"
        ))
        .args(["--app-roles", "app", "status", "--json"]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["sides"]["blue"]["reachable"], true);
    assert_eq!(v["sides"]["green"]["reachable"], false);
    let err = v["sides"]["green"]["error"].as_str().unwrap();
    assert!(
        err.contains(&format!("127.0.0.1:{dead}")) && err.contains("refused"),
        "{err}"
    );
    assert!(
        v["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "unreachable" && a["side"] == "green")
    );

    let r = run(pgcutover(home.path())
        .arg("--blue-dsn")
        .arg(blue.dsn())
        .arg("--green-dsn")
        .arg(format!(
            "host=127.0.0.1 port={dead} user=postgres connect_timeout=2"
        ))
        .args(["--app-roles", "app", "check"]));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("✗ reachable"), "{}", r.stdout);
}

#[test]
fn passwords_are_used_but_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    blue.require_password("monitor");
    blue.sql("CREATE ROLE monitor LOGIN PASSWORD 'S3cr3t:pa''ss'");
    let dsn = format!(
        "host=127.0.0.1 port={} dbname=appdb user=monitor sslmode=disable",
        blue.port
    );

    // wrong password: a clear error, the password not echoed
    let r = run(pgcutover(home.path())
        .env("PGCUTOVER_BLUE_PASSWORD", "wrong-hunter2")
        .args([
            "--blue-dsn",
            &dsn,
            "--green-dsn",
            &dsn,
            "--app-roles",
            "app",
            "status",
            "--json",
        ]));
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("hunter2"));
    assert!(all.contains("password authentication failed"), "{all}");

    // per-side environment variable
    let r = run(pgcutover(home.path())
        .env("PGCUTOVER_BLUE_PASSWORD", "S3cr3t:pa'ss")
        .env("PGCUTOVER_GREEN_PASSWORD", "S3cr3t:pa'ss")
        .args([
            "--blue-dsn",
            &dsn,
            "--green-dsn",
            &dsn,
            "--app-roles",
            "app",
            "status",
            "--json",
        ]));
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("S3cr3t"));

    // ~/.pgpass, with libpq's escaping of ':'
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:appdb:monitor:S3cr3t\\:pa'ss\n", blue.port),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(pgcutover(home.path()).args([
        "--blue-dsn",
        &dsn,
        "--green-dsn",
        &dsn,
        "status",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // a password in a DSN on the command line is refused before anything connects
    let r = run(pgcutover(home.path()).args([
        "--blue-dsn",
        &format!("postgresql://monitor:S3cr3t@127.0.0.1:{}/appdb", blue.port),
        "--green-dsn",
        &dsn,
        "status",
    ]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("contains a password") && !r.stderr.contains("S3cr3t"),
        "{}",
        r.stderr
    );
}

#[test]
fn service_file_supplies_the_connection() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    let svc = home.path().join("services.conf");
    std::fs::write(
        &svc,
        format!(
            "[blue db]\nhost=127.0.0.1\nport={}\ndbname=appdb\nuser=postgres\nsslmode=disable\n",
            blue.port
        ),
    )
    .unwrap();
    let cfg = cfg_file(
        home.path(),
        "[blue]\nservice = \"blue db\"\n[green]\nservice = \"blue db\"\n[cutover]\napp_roles = [\"app\"]\n",
    );
    let r = run(pgcutover(home.path())
        .env("PGSERVICEFILE", &svc)
        .arg("--config")
        .arg(&cfg)
        .args(["status", "--json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["sides"]["blue"]["database"], "appdb");
    let r = run(pgcutover(home.path())
        .env("PGSERVICEFILE", home.path().join("none"))
        .arg("--config")
        .arg(&cfg)
        .arg("status"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("service `blue db` is not defined"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_role_that_may_not_emit_the_lsn_message_is_told_the_grant_on_15_and_18() {
    let home = tempfile::tempdir().unwrap();
    let blue = Cluster::new("blue", &Bin::pg15());
    let green = Cluster::new("green", &Bin::pg18());
    for c in [&blue, &green] {
        c.sql("CREATE ROLE app LOGIN");
        c.sql("CREATE ROLE tool LOGIN REPLICATION");
        c.sql("GRANT pg_read_all_stats TO tool");
    }
    // the switch's LSN statement needs it; PUBLIC has it unless revoked, as here on BLUE
    blue.sql("REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM PUBLIC");
    let dsn = |c: &Cluster| format!("host=127.0.0.1 port={} dbname={DB} user=tool", c.port);
    let r = run(pgcutover(home.path())
        .arg("--blue-dsn")
        .arg(dsn(&blue))
        .arg("--green-dsn")
        .arg(dsn(&green))
        .args(["--app-roles", "app", "check"]));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let line = |mark: &str, side: &str| {
        r.stdout.lines().any(|l| {
            l.contains(&format!("{mark} emit_message")) && l.contains(&format!("{side}: tool may"))
        })
    };
    assert!(line("✗", "BLUE") && line("✓", "GREEN"), "{}", r.stdout);
    assert!(
        r.stdout.contains("GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO tool;"),
        "{}",
        r.stdout
    );
}
