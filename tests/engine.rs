//! The engine on real clusters under a concurrent write load: the full flow, lossless after every
//! cutover and rollback; 15→15 from a base backup and from a crash-consistent copy, 15→18.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use common::migration::{Copy, Mig};
use common::{TestCluster, wait_for};
use std::time::Duration;

/// More sequences than one statement reads (the first batch is read with the list, the rest in
/// batches): the dashboard reads every value, and the cutover copies every one.
const MANY: usize = 1200;

fn many_sequences(m: &Mig) {
    let make = format!(
        "CREATE SCHEMA many; DO $$ BEGIN FOR i IN 1..{MANY} LOOP \
         EXECUTE format('CREATE SEQUENCE many.s%s', i); END LOOP; END $$"
    );
    m.blue.sql(&make);
    m.green.sql(&make);
    // s1 is never called: nothing to copy
    m.blue.sql(&format!(
        "DO $$ BEGIN FOR i IN 2..{MANY} LOOP PERFORM setval(format('many.s%s', i), i * 7); END LOOP; END $$"
    ));
}

/// The number of called sequences of `many` and the sum of their values.
fn many_values(c: &common::Cluster) -> String {
    c.sql("SELECT count(last_value) || ':' || sum(last_value) FROM pg_sequences WHERE schemaname = 'many'")
}

fn full_flow(copy: Copy) {
    let m = Mig::replicating(copy, "");
    m.assert_lossless("blue", false);
    m.assert_serving("blue");
    many_sequences(&m);
    let want = format!("{}:{}", MANY - 1, (2..=MANY).map(|i| i * 7).sum::<usize>());
    assert_eq!(many_values(&m.blue), want);
    let st = m.pgc_steady(None, &["status", "--json"]).json();
    let read: Vec<&serde_json::Value> = st["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["sequence"].as_str().unwrap().starts_with("many."))
        .collect();
    assert_eq!(read.len(), MANY, "every sequence listed");
    let blue_sum: i64 = read.iter().filter_map(|r| r["blue"].as_i64()).sum();
    assert_eq!(
        format!(
            "{}:{blue_sum}",
            read.iter().filter(|r| r["blue"].is_i64()).count()
        ),
        want,
        "every value read, past the first batch too"
    );

    let w1 = m.switch("cutover");
    m.wait_phase("cut_over");
    m.assert_serving("green");
    m.assert_lossless("green", true);
    assert_eq!(many_values(&m.green), want, "every sequence copied");

    // the plan shown is what runs: the same steps, in the same order
    let plan = m.pgc_steady(None, &["plan", "rollback", "--json"]).json();
    let planned: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect();
    let (w2, ran) = m.switch_steps("rollback");
    let ran: Vec<String> = ran.into_iter().map(|(s, _)| s).collect();
    assert_eq!(planned, ran, "plan vs run");
    m.wait_phase("rolled_back");
    m.assert_serving("blue");
    m.assert_lossless("blue", true);

    let w3 = m.switch("cutover");
    m.wait_phase("cut_over");
    m.assert_serving("green");
    m.assert_lossless("green", true);
    eprintln!("windows: {w1:.0} / {w2:.0} / {w3:.0} ms");

    // the journal holds every statement, with the subscription's connection redacted
    let j = std::fs::read_to_string(&m.journal).unwrap();
    for step in [
        "fence",
        "drain",
        "stop_forward",
        "arm_origin",
        "sequences",
        "unfence",
        "start_reverse",
    ] {
        assert!(
            j.contains(&format!("\"step\":\"{step}\"")),
            "journal lacks {step}"
        );
    }
    assert!(
        j.contains(r#"ALTER ROLE \"Weird \"\"App\"\"\" NOLOGIN"#),
        "journal shows the quoted fence"
    );
    let mut fence_checks = Vec::new();
    let mut decoded = Vec::new();
    for line in j.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["ts"].is_string() && v["run"].is_string() && v["event"].is_string(),
            "{line}"
        );
        if v["event"] == "step_finished" && v["step"] == "verify_fence" {
            fence_checks.push(v["result"].as_str().unwrap().to_string());
        }
        if v["event"] == "step_finished" && v["step"] == "decode_slot" {
            decoded.push(v["result"].as_str().unwrap().to_string());
        }
    }
    // the app's writes all end before the last LSN, so the fence check reads the id counter
    // instead of decoding the slot (a transaction of autovacuum's may make one window decode)
    assert_eq!(fence_checks.len(), 3, "{fence_checks:?}");
    let quiet = fence_checks
        .iter()
        .filter(|d| d.starts_with("no transaction ended on "))
        .count();
    assert!(quiet >= 2, "{fence_checks:?}");
    assert!(
        fence_checks
            .iter()
            .all(|d| d.starts_with("no transaction ended on ")
                || d.ends_with("the slots are decoded")),
        "{fence_checks:?}"
    );
    // the slot is decoded only after a window whose ids moved, and finds no write
    assert_eq!(decoded.len(), 3, "{decoded:?}");
    assert_eq!(
        decoded.iter().filter(|d| *d == "nothing to decode").count(),
        quiet,
        "{decoded:?}"
    );
    assert!(
        decoded
            .iter()
            .all(|d| d == "nothing to decode" || d.contains("the slot decoded, no write")),
        "{decoded:?}"
    );

    // a finished action run again does nothing
    let r = m.pgc(&["run", "cutover", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("nothing to do"), "{}", r.stdout);

    // finalize drops the rollback path
    let r = m.pgc(&["run", "finalize", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    m.wait_phase("finalized");
    assert_eq!(m.blue.sql("SELECT count(*) FROM pg_subscription"), "0");
    assert_eq!(
        m.green.sql("SELECT count(*) FROM pg_replication_slots"),
        "0"
    );
    let acked = m.writer.as_ref().unwrap().count();
    assert!(acked > 200, "the writer kept writing: {acked}");
}

#[test]
fn full_flow_15_to_15_base_backup() {
    full_flow(Copy::BaseBackup);
}

#[test]
fn full_flow_15_to_15_crash_consistent_copy() {
    full_flow(Copy::CrashConsistent);
}

#[test]
fn full_flow_15_to_18() {
    full_flow(Copy::CrashConsistentThenUpgrade18);
}

/// An idle BLUE (no writes at all after prepare, as in a quiet maintenance window): a copy taken
/// at once must still give an origin past the slot's confirmed position, so start accepts it.
#[test]
fn copy_of_an_idle_blue_right_after_prepare_starts() {
    use common::*;
    let mut blue = Cluster::new("blue", &Bin::pg15());
    common::migration::seed(&blue);
    let home = tempfile::tempdir().unwrap();
    let dead = free_port();
    let pre = write_config(home.path(), &blue, &blue, &["app"], "");
    let text = std::fs::read_to_string(&pre).unwrap();
    let green_line = format!("[green]\ndsn = {}", toml_str(&blue.dsn()));
    let text = text.replace(
        &green_line,
        &format!("[green]\ndsn = \"host=127.0.0.1 port={dead} dbname=appdb user=postgres connect_timeout=1\""),
    );
    std::fs::write(&pre, &text).unwrap();
    let r = run(pgcutover(home.path())
        .arg("--config")
        .arg(&pre)
        .args(["run", "prepare", "--yes"]));
    assert_eq!(r.code, 0, "prepare: {}\n{}", r.stdout, r.stderr);
    let green = blue.crash_copy("green");
    let cfg = home.path().join("full.toml");
    std::fs::write(
        &cfg,
        format!(
            "[blue]\ndsn = {}\n[green]\ndsn = {}\n[cutover]\napp_roles = [\"app\"]\n[redo]\nlog_file = {}\n",
            toml_str(&blue.dsn()),
            toml_str(&green.dsn()),
            toml_str(&green.log.display().to_string())
        ),
    )
    .unwrap();
    for action in ["subscribe", "start"] {
        let r = run(pgcutover(home.path())
            .arg("--config")
            .arg(&cfg)
            .args(["run", action, "--yes"]));
        assert_eq!(r.code, 0, "{action}: {}\n{}", r.stdout, r.stderr);
    }
}

/// `[cutover] carry_slots`: a CDC consumer's slot on BLUE is created on GREEN inside the window,
/// so its stream there starts after the last replicated row and holds every write the app makes
/// on GREEN from its first one.
#[test]
fn a_carried_slot_starts_on_green_at_the_switch_point() {
    let m = Mig::replicating(Copy::BaseBackup, "carry_slots = [\"cdc\"]");
    // Created after GREEN's copy, as a consumer attached to BLUE alone would be.
    m.blue
        .sql("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')");
    let plan = m.pgc_steady(None, &["plan", "cutover", "--json"]).json();
    let text = plan.to_string();
    assert!(
        text.contains("pg_create_logical_replication_slot('cdc', 'test_decoding')"),
        "{text}"
    );
    m.switch("cutover");
    m.wait_phase("cut_over");
    let plugin = m
        .green
        .sql("SELECT plugin FROM pg_replication_slots WHERE slot_name = 'cdc'");
    assert_eq!(plugin.trim(), "test_decoding");
    // The unfence's start: BLUE's rows (replicated to GREEN) are all older, as BLUE was fenced
    // and drained before it; the app could write on GREEN only after it.
    let journal = std::fs::read_to_string(&m.journal).unwrap();
    let unfenced_at = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["step"] == "unfence" && v["event"] == "step_started")
        .map(|v| v["ts"].as_str().unwrap().to_string())
        .expect("the journal has the unfence");
    let stream = |only_local: bool| -> Vec<i64> {
        let out = m.green.sql(&format!(
            "SELECT data FROM pg_logical_slot_peek_changes('cdc', NULL, NULL, 'only-local', '{}') \
             WHERE data LIKE '%Order Items%INSERT%'",
            if only_local { 1 } else { 0 }
        ));
        out.lines()
            .filter_map(|l| l.split("id[bigint]:").nth(1))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let ids = wait_for(
        "the app's writes in GREEN's carried slot",
        Duration::from_secs(30),
        || {
            let ids = stream(false);
            (ids.len() >= 5).then_some(ids)
        },
    );
    let local: Vec<i64> = stream(true).into_iter().take(ids.len()).collect();
    assert_eq!(
        ids, local,
        "nothing replicated from BLUE is in the carried slot: it starts after the last applied change"
    );
    let last = ids.iter().max().unwrap();
    let written_on_green: Vec<i64> = m
        .green
        .sql(&format!(
            r#"SELECT id FROM "Ünïcode"."Order Items" WHERE at > '{unfenced_at}' AND id <= {last} ORDER BY id"#
        ))
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        sorted, written_on_green,
        "every write the app made on GREEN, from its first, is in the carried slot"
    );
    m.assert_lossless("green", true);
}

/// `[cutover] move_pg_cron`: BLUE's active pg_cron jobs are paused inside the window and the
/// same jobs activated on GREEN before it serves (and not sent back to BLUE by the reverse
/// path); an undone window puts them back; a rerun after a kill between the two finds the jobs
/// in the journal; a rollback moves them back.
#[test]
fn pg_cron_jobs_move_with_the_traffic() {
    let m = Mig::replicating_set_up(Copy::BaseBackup, "move_pg_cron = true", &|blue| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(blue.data.join("postgresql.conf"))
            .and_then(|mut f| {
                f.write_all(
                    b"\nshared_preload_libraries = 'pg_cron'\ncron.database_name = 'appdb'\n",
                )
            })
            .unwrap();
        blue.restart();
        blue.sql("CREATE EXTENSION pg_cron");
        // yearly: no job runs during the test
        blue.sql("SELECT cron.schedule('nightly', '0 0 1 1 *', 'SELECT 1')");
        blue.sql("SELECT cron.schedule('kept off', '0 0 1 1 *', 'SELECT 2')");
        blue.sql("UPDATE cron.job SET active = false WHERE jobname = 'kept off'");
    });
    let jobs = |c: &common::Cluster| {
        c.sql("SELECT string_agg(jobname || '=' || active, ',' ORDER BY jobname) FROM cron.job")
            .trim()
            .to_string()
    };
    let plan = m.pgc_steady(None, &["plan", "cutover", "--json"]).json();
    let text = plan.to_string();
    assert!(
        text.contains("UPDATE cron.job SET active = false"),
        "{text}"
    );
    assert!(text.contains("ARRAY[<jobs paused on BLUE>]"), "{text}");

    // a window that fails after the jobs moved: BLUE runs them again
    let r = m.pgc_steady(
        Some(("PGCUTOVER_TEST_JOURNAL_FULL_AT", "sequences")),
        &["run", "cutover", "--yes", "--json"],
    );
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    let state = r.json()["state"].as_str().unwrap().to_string();
    assert!(state.contains("BLUE serves again"), "{state}");
    assert!(state.contains("active again on BLUE"), "{state}");
    assert_eq!(jobs(&m.blue), "kept off=false,nightly=true");
    m.wait_phase("replicating");

    // killed between the pause and the activation: the rerun activates them on GREEN
    let (killed, _, _) = m.switch_killed_after("blue", "cron_pause");
    assert!(killed, "the run was killed after cron_pause");
    assert_eq!(jobs(&m.green), "kept off=false,nightly=true");
    m.assert_lossless("green", true);
    // the reverse path, past the activation by now, did not bring it to BLUE
    assert_eq!(jobs(&m.blue), "kept off=false,nightly=false");
    let journal = std::fs::read_to_string(&m.journal).unwrap();
    assert!(journal.contains(r#""event":"cron_paused""#), "{journal}");
    assert!(
        journal.contains("paused by an earlier run and not moved"),
        "the rerun took the jobs from the journal"
    );
    assert!(journal.contains("activated 1 job(s): 1"), "{journal}");

    m.switch("rollback");
    m.wait_phase("rolled_back");
    m.assert_lossless("blue", true);
    assert_eq!(jobs(&m.blue), "kept off=false,nightly=true");
    assert_eq!(jobs(&m.green), "kept off=false,nightly=false");
}
