//! A migration of several databases of one instance, with a writer in each: the fixture of the
//! whole-instance tests and benchmark.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::migration::{APP_SCHEMA, Copy, Mig, Pair, ROLES, prepare_blue, seed};
use super::writer::{TABLE, Writer};
use super::*;

pub const OTHERS: [&str; 2] = ["billing", "Ünïcode \"db\""];

fn databases_toml(list: &[&str]) -> String {
    let names: Vec<String> = list.iter().map(|d| toml_str(d)).collect();
    format!("[replication]\ndatabases = [{}]\n", names.join(", "))
}

pub struct Instance {
    pub mig: Mig,
    /// The writers of the other databases (the migration's own writes to `appdb`).
    pub writers: Vec<(String, Writer)>,
}

impl Instance {
    pub fn all(&self) -> Vec<(&str, &Writer)> {
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
    pub fn assert_lossless(&self, serving: &str, after_switch: bool) {
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

/// BLUE with three databases under writes, prepared with one config, copied (crash-consistent,
/// then upgraded to 18 if asked), subscribed and started: replicating in each.
pub fn replicating(others: &[&str], tps: u32, copy: Copy) -> Instance {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    seed(&blue);
    for db in others {
        blue.sql(&format!("CREATE DATABASE {}", pgcutover::sql::ident(db)));
        blue.try_sql_db(db, APP_SCHEMA).unwrap();
    }
    let ports = Arc::new(Mutex::new(vec![blue.port]));
    let app = Writer::start(ports.clone(), &ROLES, tps);
    let writers: Vec<(String, Writer)> = others
        .iter()
        .map(|db| {
            (
                db.to_string(),
                Writer::start_in(ports.clone(), &ROLES, tps, db),
            )
        })
        .collect();
    wait_for("first writes everywhere", Duration::from_secs(20), || {
        (app.count() > 10 && writers.iter().all(|(_, w)| w.count() > 10)).then_some(())
    });
    let home = tempfile::tempdir().unwrap();
    let journal = home.path().join("journal.jsonl");
    let all: Vec<&str> = std::iter::once(DB).chain(others.iter().copied()).collect();
    prepare_blue(&blue, home.path(), &journal, &databases_toml(&all));
    // one slot per database, each in its database, all before the copy
    let slots = blue.sql("SELECT string_agg(slot_name || '@' || database, ',' ORDER BY database) FROM pg_replication_slots");
    assert_eq!(slots.split(',').count(), all.len(), "{slots}");
    for db in &all {
        assert!(slots.contains(&format!("@{db}")), "{db}: {slots}");
    }
    let (green, log) = copy.green_of(&mut blue);
    let mig = Mig::subscribe(
        Pair {
            blue,
            green,
            home,
            journal,
            ports,
            writer: app,
        },
        &log,
        &databases_toml(&all),
    );
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
    assert_eq!(
        origins.len(),
        all.len(),
        "one origin per database: {origins:?}"
    );
    assert!(
        origins.iter().all(|o| *o == origins[0]),
        "one redo LSN for all: {origins:?}"
    );
    mig.wait_phase("replicating");
    Instance { mig, writers }
}
