//! The whole instance: BLUE with three databases (one named `Ünïcode "db"`), a writer in each,
//! replicated by one migration and switched in one window, both ways, losing nothing in any of
//! them; `databases = "all"` finds the same three; a fourth database left out blocks; the same
//! three 15 → 18, killed at every point where the databases stand apart.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)]

mod common;

use std::time::Duration;

use common::instance::{OTHERS, replicating};
use common::migration::Copy;
use common::writer::TABLE;
use common::*;

#[test]
fn three_databases_cut_over_and_roll_back_in_one_window_losing_nothing() {
    let inst = replicating(&OTHERS, 60, Copy::CrashConsistent);
    let m = &inst.mig;
    // slot names carry their database, a hash for one that is not lower-case ASCII
    let slots = m
        .blue
        .sql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots");
    assert_eq!(
        slots,
        "pgcutover_slot__n_code__db__412cd417,pgcutover_slot_appdb,pgcutover_slot_billing"
    );
    let v = m.status();
    let dbs = v["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3, "{v}");
    assert!(dbs.iter().all(|d| d["phase"] == "replicating"), "{v}");
    inst.assert_lossless("blue", false);
    verify_each_database(m);

    // the dashboard, in a real terminal: a row for each database, each streaming
    {
        let script = common::tmux::dashboard_script(m.home.path(), &m.cfg, "");
        let t = common::tmux::Tmux::start(&script, 160, 48);
        let rows = |s: &str| {
            ["appdb", "billing", "Ünïcode \"db\""]
                .iter()
                .filter(|db| {
                    s.lines()
                        .any(|l| l.contains(&format!("│{db} ")) && l.contains("✓ streaming"))
                })
                .count()
        };
        let mut screen = String::new();
        let all = (0..200).any(|_| {
            screen = t.screen();
            if rows(&screen) == 3 && screen.contains("REPLICATING") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
            false
        });
        assert!(all, "a streaming row per database:\n{screen}");
        assert!(!screen.contains("apart"), "{screen}");
    }

    let (window, steps) = m.switch_steps("cutover");
    let count = |id: &str| steps.iter().filter(|(s, _)| s == id).count();
    assert_eq!(count("fence"), 1, "{steps:?}");
    assert_eq!(count("unfence"), 1, "{steps:?}");
    assert_eq!(
        count("drain"),
        1,
        "one drain waits for every slot: {steps:?}"
    );
    // per database only what must run in each: the rest reaches them all from one connection
    assert_eq!(count("stop_forward"), 3, "{steps:?}");
    assert_eq!(count("sequences"), 3, "{steps:?}");
    assert_eq!(count("decode_slot"), 3, "{steps:?}");
    for once in ["end_forward_workers", "arm_origin", "verify_fence"] {
        assert_eq!(count(once), 1, "{once}: {steps:?}");
    }
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
    // after the cutover GREEN is the source: every database verified over the reverse path
    let r = m.pgc(&["verify", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["source"], "green", "{v:#}");
    for db in ["appdb", "billing", "Ünïcode \"db\""] {
        let t = writers_table(&v)
            .into_iter()
            .find(|t| t["database"] == db)
            .unwrap_or_else(|| panic!("{db}: {v:#}"));
        assert!(
            t["verdict"] == "verified" || t["verdict"] == "hot",
            "{db}: {t:#}"
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

    // a table made on both sides of one database and never added to its subscription: the
    // check says so of that database
    for c in [&m.blue, &m.green] {
        c.try_sql_db("billing", "CREATE TABLE late (id int PRIMARY KEY)")
            .unwrap();
    }
    let r = m.pgc(&["check", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let late = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "tables_subscribed" && c["ok"] == false)
        .cloned()
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        late["finding"]
            .as_str()
            .unwrap()
            .starts_with("[billing] BLUE publishes 1 table(s) that GREEN's subscription"),
        "{late:#}"
    );
    assert!(
        late["finding"].as_str().unwrap().contains("public.late"),
        "{late:#}"
    );
    for c in [&m.blue, &m.green] {
        c.try_sql_db("billing", "DROP TABLE late").unwrap();
    }

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

/// The verdicts a verify report gives the writers' table, one per database.
fn writers_table(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["table"] == TABLE)
        .collect()
}

/// `verify` of every database while the writers write: a row changed on GREEN in one database
/// is reported as that row of that database's table, and the same table in the others is not
/// a mismatch.
fn verify_each_database(m: &common::migration::Mig) {
    const DIVERGED: &str = "Ünïcode \"db\"";
    let id = m
        .blue
        .try_sql_db(DIVERGED, &format!("SELECT min(id) FROM {TABLE}"))
        .unwrap();
    let note = |value: &str| {
        m.green
            .try_sql_db(
                DIVERGED,
                &format!(
                    "SET session_replication_role = replica; UPDATE {TABLE} SET note = {value} WHERE id = {id}"
                ),
            )
            .unwrap();
    };
    let kept = m
        .green
        .try_sql_db(
            DIVERGED,
            &format!("SELECT quote_nullable(note) FROM {TABLE} WHERE id = {id}"),
        )
        .unwrap();
    note("'planted'");
    let r = m.pgc(&["verify", "--json"]);
    note(&kept);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    let order_items = writers_table(&v);
    let mut dbs: Vec<&str> = order_items
        .iter()
        .map(|t| t["database"].as_str().unwrap())
        .collect();
    dbs.sort_unstable();
    assert_eq!(dbs, ["appdb", "billing", DIVERGED], "{v:#}");
    for t in &order_items {
        if t["database"] == DIVERGED {
            assert_eq!(t["verdict"], "mismatch", "{t:#}");
            assert_eq!(
                t["keys"],
                serde_json::json!([{"key": id, "kind": "different"}]),
                "{t:#}"
            );
        } else {
            assert_ne!(t["verdict"], "mismatch", "{t:#}");
        }
    }
    let mismatches = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["verdict"] == "mismatch")
        .count();
    assert_eq!(mismatches, 1, "only the planted row: {v:#}");
}

/// 15 → 18 with three databases, and kill -9 at the points where the databases stand apart: after the first database finished a
/// step the others are still running (the window's per-database steps, the arming before it,
/// the cleanup after it). The rerun finds each database where it was left and converges, with
/// nothing lost in any of them.
#[test]
fn three_databases_15_to_18_killed_mid_switch_a_rerun_converges() {
    const POINTS: &[&str] = &[
        "arm_subscription",
        "stop_forward",
        "arm_origin",
        "sequences",
        "verify_fence",
        "decode_slot",
        "unfence",
        "drop_forward",
        "mark_rollback",
        "start_reverse",
    ];
    // GREEN upgraded to 18: every round is a full switch 15 ⇄ 18
    let inst = replicating(&OTHERS, 40, Copy::CrashConsistentThenUpgrade18);
    let m = &inst.mig;
    let mut serving = "blue";
    let mut killed = 0;
    for step in POINTS {
        let (was_killed, _, now) = m.switch_killed_after(serving, step);
        killed += usize::from(was_killed);
        serving = now;
        let v = m.status();
        assert!(
            v["databases"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["phase"] == v["phase"]),
            "every database in the same phase after the rerun: {v}"
        );
        inst.assert_lossless(serving, true);
        eprintln!("killed after {step}, rerun converged: {serving} serves");
    }
    // mark_rollback runs in a rollback only; every other point kills its run
    assert!(killed >= POINTS.len() - 1, "only {killed} runs were killed");
    let mut inst = inst;
    for (_, w) in inst.writers.drain(..) {
        w.stop();
    }
}
