//! The pollers and connections on real servers: one connection per side, errors as data,
//! reconnection, TLS with and without verification.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use pgcutover::collect::poller::{self, SampleData};
use pgcutover::config::{self, Overrides};

fn settings(blue: &str, green: &str) -> config::Settings {
    let ov = Overrides {
        blue_dsn: Some(blue.into()),
        green_dsn: Some(green.into()),
        app_roles: Some(vec!["app".into()]),
        ..Default::default()
    };
    let mut s = config::from_str(
        "[poll]\ninterval_ms = 150\ntimeout_ms = 2000\ninventory_every = 2\n",
        None,
        &ov,
    )
    .unwrap();
    s.poll.inventory_every = 2;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_keeps_one_connection_reports_errors_and_reconnects() {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    blue.sql("CREATE ROLE app LOGIN");
    let s = settings(&blue.dsn(), &blue.dsn());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = poller::spawn(
        pgcutover::collect::reading::reader(&s, pgcutover::domain::observed::Side::Blue),
        s.poll.clone(),
        tx,
    );

    let (mut live, mut inv, mut cat) = (0, 0, 0);
    while live < 6 || inv < 2 || cat < 2 {
        let sample = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match sample.data {
            SampleData::Live(r) => {
                let l = r.unwrap();
                assert_eq!(l.app_roles[0].name, "app");
                live += 1;
            }
            SampleData::Inventory(r) => {
                r.unwrap();
                inv += 1;
            }
            SampleData::Catalog(r) => {
                r.unwrap();
                cat += 1;
            }
            SampleData::DbLive(_) | SampleData::Sequences(_) => {
                panic!("the main reader read one database's objects")
            }
        }
    }
    let conns =
        blue.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgcutover'");
    assert_eq!(conns, "1", "one monitoring connection per side");

    // the server goes away: errors arrive as samples, the task keeps running
    tokio::task::block_in_place(|| blue.stop());
    let err = loop {
        let sample = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let SampleData::Live(Err(e)) = sample.data {
            break e;
        }
    };
    assert!(err.starts_with("BLUE"), "{err}");
    assert!(!task.is_finished());

    // and it comes back on the same port: the poller reconnects by itself
    tokio::task::block_in_place(|| blue.start());
    loop {
        let sample = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let SampleData::Live(Ok(_)) = sample.data {
            break;
        }
    }
    drop(rx);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// Another replicated database is read over its own connection: its subscriptions and
/// publications (not the instance's facts) every interval, its sequences and catalogue slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_reader_reads_that_databases_objects_only() {
    let blue = Cluster::new("blue", &Bin::pg15());
    blue.sql("CREATE DATABASE \"Bïlling\"");
    let db = "Bïlling";
    blue.try_sql_db(
        db,
        "CREATE TABLE invoices (id bigserial PRIMARY KEY); CREATE PUBLICATION billing_pub FOR ALL TABLES; \
         SELECT setval('invoices_id_seq', 42)",
    )
    .unwrap();
    let s = settings(&blue.dsn(), &blue.dsn());
    let reader = pgcutover::collect::postgres::PgReader::new(
        s.blue.for_database(db),
        s.poll.timeout,
        s.app_roles.clone(),
        None,
    )
    .objects_only();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = poller::spawn_database(reader, db.to_string(), s.poll.clone(), tx);
    let (mut live, mut seq, mut cat) = (0, 0, 0);
    while live < 3 || seq < 1 || cat < 1 {
        let sample = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sample.db.as_deref(), Some(db));
        match sample.data {
            SampleData::DbLive(r) => {
                let d = r.unwrap();
                let pubs: Vec<_> = d.publications.iter().map(|p| p.name.as_str()).collect();
                assert_eq!(pubs, ["billing_pub"], "that database's publications only");
                live += 1;
            }
            SampleData::Sequences(r) => {
                let v = r.unwrap();
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].sequence.name, "invoices_id_seq");
                assert_eq!(v[0].last_value, Some(42));
                seq += 1;
            }
            SampleData::Catalog(r) => {
                assert!(!r.unwrap().is_empty(), "the table and its sequence");
                cat += 1;
            }
            other => panic!("a database reader sent {other:?}"),
        }
    }
    let conns = blue.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgcutover' AND datname = 'Bïlling'",
    );
    assert_eq!(conns, "1", "one connection for the database");
    task.abort();
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost` only, signed by it; and an unrelated CA.
fn make_certs(dir: &std::path::Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=other-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn tls_encrypts_and_verifies_host_names() {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    for f in ["server.crt", "server.key"] {
        std::fs::copy(certs.path().join(f), blue.data.join(f)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        blue.data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    if unsafe { libc::geteuid() } == 0 {
        run_ok(
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(blue.data.join("server.key"))
                .arg(blue.data.join("server.crt")),
            "chown",
        );
    }
    blue.sql("ALTER SYSTEM SET ssl = on");
    // TCP connections must use TLS, so a successful connection proves encryption.
    let hba = blue.data.join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba)
        .unwrap()
        .replace("\nhost ", "\nhostssl ");
    std::fs::write(&hba, text).unwrap();
    blue.restart();
    let home = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    let other = certs.path().join("other.pem");
    let status = |dsn: String| {
        run(pgcutover(home.path()).args([
            "--blue-dsn",
            &dsn,
            "--green-dsn",
            &dsn,
            "--app-roles",
            "app",
            "status",
            "--json",
        ]))
    };
    let base = |host: &str| format!("host={host} port={} dbname=appdb user=postgres", blue.port);

    // encrypted without verification (libpq's require)
    let r = status(format!("{} sslmode=require", base("127.0.0.1")));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = status(format!("{} sslmode=disable", base("127.0.0.1")));
    assert_eq!(r.code, 3, "the server accepts only TLS");
    assert!(
        r.json()["sides"]["blue"]["error"]
            .as_str()
            .unwrap()
            .contains("no encryption"),
        "{}",
        r.stdout
    );

    // verified: the right CA and the certificate's host name
    let r = status(format!(
        "{} sslmode=verify-full sslrootcert={}",
        base("localhost"),
        ca.display()
    ));
    assert_eq!(r.code, 0, "{}", r.stdout);

    // the right CA but another host name: refused
    let r = status(format!(
        "{} sslmode=require sslrootcert={}",
        base("127.0.0.1"),
        ca.display()
    ));
    assert_eq!(r.code, 3);
    let err = r.json()["sides"]["blue"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("certificate"), "{err}");

    // a CA that did not sign the server's certificate: refused
    let r = status(format!(
        "{} sslmode=verify-full sslrootcert={}",
        base("localhost"),
        other.display()
    ));
    assert_eq!(r.code, 3);
    let err = r.json()["sides"]["blue"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );

    // a root file that is not there: a configuration error (exit 2), not an unreachable side
    let r = status(format!(
        "{} sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
        base("localhost")
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("sslrootcert") && r.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        r.stderr
    );
}
