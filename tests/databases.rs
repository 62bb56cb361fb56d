//! The whole instance: BLUE with three databases (one named `Ünïcode "db"`), a writer in each,
//! replicated by one migration and switched in one window, both ways, losing nothing in any of
//! them; `databases = "all"` finds the same three; a fourth database left out blocks.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::migration::{Mig, ROLES, seed};
use common::writer::{TABLE, Writer};
use common::*;

const OTHERS: [&str; 2] = ["billing", "Ünïcode \"db\""];

/// The app's schema in a database other than `appdb` (the roles are the instance's).
const SCHEMA: &str = r#"
CREATE SCHEMA "Ünïcode";
CREATE TABLE "Ünïcode"."Order Items" (id bigserial PRIMARY KEY, note text, by_role text, at timestamptz DEFAULT now());
CREATE TABLE items (id serial PRIMARY KEY, note text);
CREATE SEQUENCE "Ünïcode"."Invoice No" START 1000;
SELECT nextval('"Ünïcode"."Invoice No"');
GRANT USAGE ON SCHEMA "Ünïcode" TO app, "Weird ""App""";
GRANT ALL ON ALL TABLES IN SCHEMA "Ünïcode", public TO app, "Weird ""App""";
GRANT ALL ON ALL SEQUENCES IN SCHEMA "Ünïcode", public TO app, "Weird ""App""";
"#;

fn databases_toml(list: &[&str]) -> String {
    let names: Vec<String> = list.iter().map(|d| toml_str(d)).collect();
    format!("[replication]\ndatabases = [{}]\n", names.join(", "))
}

struct Instance {
    mig: Mig,
    /// The writers of the other databases (the migration's own writes to `appdb`).
    writers: Vec<(String, Writer)>,
}

impl Instance {
    fn all(&self) -> Vec<(&str, &Writer)> {
        std::iter::once((DB, self.mig.writer.as_ref().unwrap()))
            .chain(self.writers.iter().map(|(d, w)| (d.as_str(), w)))
            .collect()
    }

    fn rows(c: &Cluster, db: &str) -> String {
        c.try_sql_db(
            db,
            &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM {TABLE} t"),
        )
        .unwrap()
    }

    /// Every database: the sides converge, every acknowledged id is on both, and after a switch
    /// the serving side's sequence is not behind.
    fn assert_lossless(&self, serving: &str, after_switch: bool) {
        let (s, o) = if serving == "blue" {
            (&self.mig.blue, &self.mig.green)
        } else {
            (&self.mig.green, &self.mig.blue)
        };
        for (_, w) in self.all() {
            w.pause();
        }
        for (db, w) in self.all() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Self::rows(s, db) != Self::rows(o, db) {
                assert!(Instant::now() < deadline, "{db}: the sides never converged");
                std::thread::sleep(Duration::from_millis(100));
            }
            let ids: std::collections::HashSet<i64> = s
                .try_sql_db(
                    db,
                    &format!("SELECT coalesce(string_agg(id::text, ','), '') FROM {TABLE}"),
                )
                .unwrap()
                .split(',')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().unwrap())
                .collect();
            let acked = w.acked();
            assert!(
                acked.len() > 20,
                "{db}: the writer wrote too little to prove anything"
            );
            let missing = acked.iter().filter(|id| !ids.contains(id)).count();
            assert_eq!(
                missing, 0,
                "{db}: {missing} acknowledged ids missing on {serving}"
            );
            if after_switch {
                let seq = |c: &Cluster| -> i64 {
                    c.try_sql_db(db, r#"SELECT coalesce(pg_sequence_last_value('"Ünïcode"."Order Items_id_seq"'), 0)"#)
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                assert!(
                    seq(s) >= seq(o),
                    "{db}: the serving side's sequence is behind"
                );
            }
        }
        for (_, w) in self.all() {
            w.resume();
        }
    }
}

/// BLUE with three databases under writes, prepared with one config, copied, subscribed and
/// started: replicating in each.
fn replicating() -> Instance {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    seed(&blue);
    for db in OTHERS {
        blue.sql(&format!("CREATE DATABASE {}", pgcutover::sql::ident(db)));
        blue.try_sql_db(db, SCHEMA).unwrap();
    }
    let ports = Arc::new(Mutex::new(vec![blue.port]));
    let app = Writer::start(ports.clone(), &ROLES, 60);
    let writers: Vec<(String, Writer)> = OTHERS
        .iter()
        .map(|db| {
            (
                db.to_string(),
                Writer::start_in(ports.clone(), &ROLES, 60, db),
            )
        })
        .collect();
    wait_for("first writes everywhere", Duration::from_secs(20), || {
        (app.count() > 10 && writers.iter().all(|(_, w)| w.count() > 10)).then_some(())
    });
    let home = tempfile::tempdir().unwrap();
    let journal = home.path().join("journal.jsonl");
    let all: Vec<&str> = std::iter::once(DB).chain(OTHERS).collect();
    let roles = "app_roles = [\"app\", \"Weird \\\"App\\\"\"]\n";
    let pre = home.path().join("pre.toml");
    std::fs::write(
        &pre,
        format!(
            "[blue]\ndsn = {}\n[green]\ndsn = \"host=127.0.0.1 port={} dbname=appdb user=postgres connect_timeout=1\"\n[cutover]\n{roles}{}",
            toml_str(&blue.dsn()),
            free_port(),
            databases_toml(&all)
        ),
    )
    .unwrap();
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&pre)
        .args(["run", "prepare", "--yes", "--journal"])
        .arg(&journal));
    assert_eq!(r.code, 0, "prepare: {}\n{}", r.stdout, r.stderr);
    // one slot per database, each in its database, all before the copy
    let slots = blue.sql("SELECT string_agg(slot_name || '@' || database, ',' ORDER BY database) FROM pg_replication_slots");
    assert_eq!(slots.split(',').count(), 3, "{slots}");
    assert!(
        slots.contains("pgcutover_slot_appdb@appdb")
            && slots.contains("pgcutover_slot_billing@billing"),
        "{slots}"
    );
    assert!(slots.contains("@Ünïcode \"db\""), "{slots}");

    let green = blue.crash_copy("green");
    let log = green.log.clone();
    let cfg = home.path().join("pgcutover.toml");
    std::fs::write(
        &cfg,
        format!(
            "[blue]\ndsn = {}\n[green]\ndsn = {}\n[cutover]\n{roles}{}[redo]\nlog_file = {}\n",
            toml_str(&blue.dsn()),
            toml_str(&green.dsn()),
            databases_toml(&all),
            toml_str(&log.display().to_string())
        ),
    )
    .unwrap();
    ports.lock().unwrap().push(green.port);
    let mig = Mig {
        blue,
        green,
        home,
        cfg,
        journal,
        ports,
        writer: Some(app),
        env: Vec::new(),
    };
    let r = mig.pgc(&["run", "subscribe", "--yes"]);
    assert_eq!(r.code, 0, "subscribe: {}\n{}", r.stdout, r.stderr);
    mig.wait_phase("subscribed");
    let r = mig.pgc(&["run", "start", "--yes"]);
    assert_eq!(r.code, 0, "start: {}\n{}", r.stdout, r.stderr);
    // each subscription's origin was set from the one redo line of the copy
    let journal = std::fs::read_to_string(&mig.journal).unwrap();
    let origins: Vec<String> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "step_finished" && v["step"] == "advance_origin")
        .map(|v| v["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(origins.len(), 3, "one origin per database: {origins:?}");
    assert!(
        origins.iter().all(|o| *o == origins[0]),
        "one redo LSN for all: {origins:?}"
    );
    mig.wait_phase("replicating");
    Instance { mig, writers }
}

#[test]
fn three_databases_cut_over_and_roll_back_in_one_window_losing_nothing() {
    let inst = replicating();
    let m = &inst.mig;
    let v = m.status();
    let dbs = v["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3, "{v}");
    assert!(dbs.iter().all(|d| d["phase"] == "replicating"), "{v}");
    inst.assert_lossless("blue", false);

    let (window, steps) = m.switch_steps("cutover");
    let count = |id: &str| steps.iter().filter(|(s, _)| s == id).count();
    assert_eq!(count("fence"), 1, "{steps:?}");
    assert_eq!(count("unfence"), 1, "{steps:?}");
    assert_eq!(
        count("drain"),
        1,
        "one drain waits for every slot: {steps:?}"
    );
    assert_eq!(count("stop_forward"), 3, "{steps:?}");
    assert_eq!(count("sequences"), 3, "{steps:?}");
    assert_eq!(count("verify_fence"), 3, "{steps:?}");
    eprintln!("cutover of 3 databases: window {window:.0} ms");
    m.assert_serving("green");
    m.wait_phase("cut_over");
    inst.assert_lossless("green", true);
    for (db, w) in inst.all() {
        let before = w.count();
        wait_for(
            &format!("{db}: writes on GREEN"),
            Duration::from_secs(20),
            || (w.count() > before + 10).then_some(()),
        );
    }

    m.switch("rollback");
    m.assert_serving("blue");
    m.wait_phase("rolled_back");
    inst.assert_lossless("blue", true);

    // "all" finds the same three (postgres holds no table)
    let all = m.home.path().join("all.toml");
    let text = std::fs::read_to_string(&m.cfg).unwrap();
    let start = text.find("[replication]").unwrap();
    let end = start + text[start..].find("[redo]").unwrap();
    std::fs::write(
        &all,
        format!(
            "{}[replication]\ndatabases = \"all\"\n{}",
            &text[..start],
            &text[end..]
        ),
    )
    .unwrap();
    let v = m.pgc_with(&all, &["status", "--json"]).json();
    let mut names: Vec<&str> = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["appdb", "billing", "Ünïcode \"db\""], "{v}");
    assert_eq!(v["phase"], "rolled_back", "{v}");

    // a fourth database with a table, left out: the cutover's blocking check names it
    m.blue.sql("CREATE DATABASE reports");
    m.blue
        .try_sql_db("reports", "CREATE TABLE r (id int PRIMARY KEY)")
        .unwrap();
    let r = m.pgc(&["check", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let checks = r.json();
    let u = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "uncovered_databases" && c["ok"] == false)
        .unwrap();
    let finding = u["finding"].as_str().unwrap();
    assert!(
        finding.contains("reports (1 table") && !finding.contains("billing"),
        "{finding}"
    );

    let mut inst = inst;
    for (_, w) in inst.writers.drain(..) {
        w.stop();
    }
}
