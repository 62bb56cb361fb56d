//! The engine when things go wrong: killed after every step, the target dying mid-drain, and
//! every guard refusing. Real clusters, the writer running throughout.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::migration::{Copy, Mig};
use common::*;

const CUTOVER_STEPS: &[&str] = &[
    "sync_commit",
    "forward_streaming",
    "arm_slot",
    "arm_subscription",
    "sequences_ahead",
    "fence",
    "prepared_xacts",
    "source_lsn",
    "drain",
    "stop_forward",
    "end_forward_workers",
    "target_lsn",
    "arm_origin",
    "sequences",
    "unfence",
    "drop_forward",
    "drop_source_slot",
    "mark_rollback",
    "start_reverse",
];

/// A psql session holding a lock on GREEN that blocks its apply worker, so a drain cannot
/// finish; dropping the returned stdin (then waiting for the child) releases it.
fn lock_greens_apply(m: &Mig) -> (std::process::Child, std::process::ChildStdin) {
    let mut locker = Command::new(Bin::pg15().tool("psql"))
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            DB,
            "-p",
        ])
        .arg(m.green.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = locker.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"BEGIN; LOCK TABLE "Ünïcode"."Order Items" IN ACCESS EXCLUSIVE MODE; SELECT 1;"#
    )
    .unwrap();
    wait_for("the lock on GREEN", Duration::from_secs(10), || {
        (m.green.sql("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted AND relation = '\"Ünïcode\".\"Order Items\"'::regclass") == "1").then_some(())
    });
    (locker, stdin)
}

/// `run cutover --json` started in the background, returned once it waits in the drain, with the
/// journal's length before it started.
fn cutover_waiting_in_the_drain(m: &Mig) -> (std::process::Child, usize) {
    let before = std::fs::read_to_string(&m.journal)
        .unwrap_or_default()
        .len();
    let child = pgcutover(m.home.path())
        .arg("--config")
        .arg(&m.cfg)
        .args(["run", "cutover", "--yes", "--json", "--journal"])
        .arg(&m.journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the drain to start", Duration::from_secs(30), || {
        let j = std::fs::read_to_string(&m.journal).unwrap_or_default();
        j[before..]
            .contains(r#""event":"step_started","step":"drain""#)
            .then_some(())
    });
    (child, before)
}

#[test]
fn killed_after_any_step_a_rerun_converges_without_loss() {
    let m = Mig::replicating(Copy::BaseBackup, "");
    let mut serving = "blue";
    let mut killed = 0;
    // Every step, in both directions: a run dies right after the step (like kill -9), then the
    // same action is run again and must finish the switch with nothing lost or doubled.
    for direction in ["cutover", "rollback"] {
        for step in CUTOVER_STEPS {
            let (was_killed, out, now) = m.switch_killed_after(serving, step);
            killed += usize::from(was_killed);
            assert!(out == "done" || out == "nothing_to_do", "{out}");
            serving = now;
            m.assert_lossless(serving, true);
            eprintln!("{direction} round: killed after {step}, rerun {out}");
        }
    }
    assert!(
        killed >= 24,
        "only {killed} runs were killed: the abort hook did not fire"
    );
}

#[test]
fn target_dies_during_the_drain_and_the_source_serves_again() {
    let mut m = Mig::replicating(
        Copy::BaseBackup,
        "drain_timeout_s = 120\nmax_lag_bytes = 100000000",
    );
    // Arm the reverse path first (a run stopped after arming): creating a slot waits for open
    // transactions, and the lock below is held by one.
    let r = m.pgc_env(
        ("PGCUTOVER_TEST_ABORT_AFTER", "arm_subscription"),
        &["run", "cutover", "--yes"],
    );
    assert_eq!(r.code, -1, "{}\n{}", r.stdout, r.stderr);
    // Hold a lock on GREEN that blocks its apply worker: the drain cannot finish.
    let (mut locker, stdin) = lock_greens_apply(&m);

    let (child, _) = cutover_waiting_in_the_drain(&m);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        m.login(&m.blue),
        ["Weird \"App\"=false", "app=false"],
        "BLUE is fenced during the drain"
    );
    m.green.crash();
    drop(stdin);
    let _ = locker.wait();

    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "failed safe: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the failure was noticed quickly"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["outcome"], "failed_safe");
    assert!(
        v["state"].as_str().unwrap().contains("BLUE serves again"),
        "{v}"
    );
    // verified by SQL: BLUE takes the app again, and the app writes there
    assert_eq!(m.login(&m.blue), ["Weird \"App\"=true", "app=true"]);
    let n = m.writer.as_ref().unwrap().count();
    wait_for("writes on BLUE again", Duration::from_secs(20), || {
        (m.writer.as_ref().unwrap().count() > n + 20).then_some(())
    });

    // GREEN comes back: replication catches up, nothing lost, and the cutover now succeeds
    m.green.start();
    m.wait_phase("replicating");
    m.assert_lossless("blue", false);
    let w = m.switch("cutover");
    assert!(w < 5000.0);
    m.assert_serving("green");
    m.assert_lossless("green", true);
}

fn refused(r: &Run, guard: &str) {
    assert_eq!(
        r.code, 4,
        "expected a refusal by {guard}: {}\n{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout.contains(&format!("✗ {guard}")),
        "expected ✗ {guard} in:\n{}",
        r.stdout
    );
}

#[test]
fn every_guard_refuses() {
    let mut m = Mig::replicating(Copy::BaseBackup, "");

    // a gate no lag passes (below 0 bytes), with no time to wait for it: refused at once
    let tight = m.config_with("max_lag_bytes = 0\ngate_timeout_s = 0");
    refused(&m.pgc_with(&tight, &["run", "cutover", "--yes"]), "lag");
    refused(&m.pgc_with(&tight, &["plan", "cutover"]), "lag");
    // with time to wait, the gate step waits, then gives up naming the settings; nothing changed
    let waits = m.config_with("max_lag_bytes = 0\ngate_timeout_s = 1");
    let r = m.pgc_with(&waits, &["run", "cutover", "--yes"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("gate_timeout_s"), "{}", r.stdout);
    m.assert_serving("blue");

    // wrong phase: nothing to roll back
    refused(&m.pgc(&["run", "rollback", "--yes"]), "state");
    refused(&m.pgc(&["run", "finalize", "--yes"]), "phase");

    // subscription not streaming
    m.green.sql("ALTER SUBSCRIPTION pgcutover_sub DISABLE");
    refused(&m.pgc(&["run", "cutover", "--yes"]), "streaming");
    m.green.sql("ALTER SUBSCRIPTION pgcutover_sub ENABLE");

    // a blocking pre-flight check
    m.blue.sql("CREATE TABLE no_key (v int)");
    let r = m.pgc(&["run", "cutover", "--yes"]);
    refused(&r, "preflight");
    assert!(r.stdout.contains("public.no_key"), "{}", r.stdout);
    m.blue.sql("DROP TABLE no_key");

    // prepared transactions on the source
    m.blue.sql(
        "BEGIN; INSERT INTO items (note) VALUES ('prepared'); PREPARE TRANSACTION 'pgc_test';",
    );
    refused(&m.pgc(&["run", "cutover", "--yes"]), "no_prepared_xacts");
    m.blue.sql("COMMIT PREPARED 'pgc_test'");

    // split brain: everything refuses except fencing, which ends it
    m.green.sql("ALTER ROLE app LOGIN");
    refused(&m.pgc(&["run", "cutover", "--yes"]), "no_split_brain");
    refused(
        &m.pgc(&["run", "unfence", "green", "--yes"]),
        "other_side_fenced",
    );
    let r = m.pgc(&["run", "fence", "green", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    m.assert_serving("blue");

    // unfencing the side that would make two writable sides
    refused(
        &m.pgc(&["run", "unfence", "green", "--yes"]),
        "other_side_fenced",
    );

    // a side unreachable
    m.green.stop();
    let r = m.pgc(&["run", "cutover", "--yes"]);
    refused(&r, "reachable");
    assert!(r.stdout.contains("GREEN cannot be read"), "{}", r.stdout);
    m.green.start();
    m.wait_phase("replicating");

    // refusals changed nothing: still replicating, still lossless, and the cutover now runs
    m.assert_serving("blue");
    m.assert_lossless("blue", false);
    m.switch("cutover");
    m.assert_lossless("green", true);

    // refused runs are journaled as refused, with their guards
    let j = std::fs::read_to_string(&m.journal).unwrap();
    assert!(j.matches(r#""event":"refused""#).count() >= 9, "{j}");
}

#[test]
fn start_refuses_an_origin_outside_the_slot_and_the_source() {
    let m = Mig::subscribed(Copy::CrashConsistent, "");
    let r = m.pgc(&["plan", "start"]);
    assert_eq!(
        r.code,
        0,
        "{}\nGREEN's log:\n{}",
        r.stdout,
        m.green.log_text()
    );
    assert!(
        r.stdout.contains("origin = redo LSN + 1 byte"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("pg_replication_origin_advance"),
        "{}",
        r.stdout
    );

    refused(
        &m.pgc(&["run", "start", "--yes", "--lsn", "0/1"]),
        "origin_cross_check",
    );
    let r = m.pgc(&["run", "start", "--yes", "--lsn", "FF/0"]);
    refused(&r, "origin_cross_check");
    assert!(r.stdout.contains("past the source"), "{}", r.stdout);

    // a log that says `redo is not required` gives no LSN: refused, asking for --lsn
    let cfg = m.home.path().join("norequired.toml");
    let text = std::fs::read_to_string(&m.cfg).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pg-logs/pg15-redo-not-required.log");
    let text = text
        .lines()
        .filter(|l| !l.starts_with("log_file"))
        .collect::<Vec<_>>()
        .join("\n")
        + &format!(
            "\nlog_file = {}\n",
            toml_str(&fixture.display().to_string())
        );
    std::fs::write(&cfg, text).unwrap();
    let r = m.pgc_with(&cfg, &["run", "start", "--yes"]);
    refused(&r, "origin_lsn");
    assert!(
        r.stdout.contains("redo is not required") && r.stdout.contains("--lsn"),
        "{}",
        r.stdout
    );

    // the right origin from the log: starts, and replication is lossless
    let r = m.pgc(&["run", "start", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    m.wait_phase("replicating");
    m.assert_lossless("blue", false);
    assert_eq!(
        m.green
            .sql("SELECT sum(apply_error_count) FROM pg_stat_subscription_stats"),
        "0"
    );
}

/// The databases' safety never depends on the journal or on the operator's patience: a journal
/// that fills up inside the window, SIGINT while the window waits, and a statement that fails in
/// the middle of a short action each end in an explained, safe state with the right exit code.
#[test]
fn journal_full_sigint_and_mid_action_failures_leave_a_safe_explained_state() {
    let m = Mig::replicating(
        Copy::BaseBackup,
        "drain_timeout_s = 120\nmax_lag_bytes = 100000000",
    );

    // 1. the plan shows what the sequences step sends, with the source named
    let r = m.pgc(&["plan", "cutover"]);
    assert!(
        r.stdout.contains("ARRAY[<value from BLUE>]"),
        "{}",
        r.stdout
    );

    // 2. the disk fills up inside the window: the undo still puts BLUE back, and says the
    // journal is incomplete
    let r = m.pgc_steady(
        Some(("PGCUTOVER_TEST_JOURNAL_FULL_AT", "sequences")),
        &["run", "cutover", "--yes", "--json"],
    );
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    let state = v["state"].as_str().unwrap();
    assert!(state.contains("BLUE serves again"), "{state}");
    assert!(state.contains("JOURNAL COULD NOT BE WRITTEN"), "{state}");
    m.assert_serving("blue");
    m.wait_phase("replicating");

    // 3. SIGINT while the window waits for the drain: the wait stops at once, BLUE serves again,
    // the journal says it was interrupted
    // (the forward worker restarted by the undo may take a moment to stream again)
    let r = m.pgc_steady(
        Some(("PGCUTOVER_TEST_ABORT_AFTER", "arm_subscription")),
        &["run", "cutover", "--yes"],
    );
    assert_eq!(r.code, -1, "{}\n{}", r.stdout, r.stderr);
    let (mut locker, stdin) = lock_greens_apply(&m);
    let (child, before) = cutover_waiting_in_the_drain(&m);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "SIGINT ends the wait, not the drain timeout: {:?}",
        t0.elapsed()
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("SIGINT"), "{v}");
    assert!(
        v["state"].as_str().unwrap().contains("BLUE serves again"),
        "{v}"
    );
    let j = std::fs::read_to_string(&m.journal).unwrap();
    assert!(j[before..].contains(r#""event":"interrupted""#));
    drop(stdin);
    let _ = locker.wait();
    m.assert_serving("blue");
    m.wait_phase("replicating");

    // 4. a statement fails in the middle of a short action (a role missing on the side): exit 5
    // with each side's state and an outcome in the journal, not "bad configuration"
    let cfg = m.config_with("");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("app_roles = [", "app_roles = [\"ghost\", ");
    std::fs::write(&cfg, text).unwrap();
    let r = m.pgc_with(&cfg, &["run", "fence", "green", "--yes"]);
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("ghost"),
        "the error names the role: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("now: phase replicating") && r.stdout.contains("BLUE serving"),
        "{}",
        r.stdout
    );
    let j = std::fs::read_to_string(&m.journal).unwrap();
    assert!(j.lines().last().unwrap().contains(r#""event":"outcome""#));
    m.assert_serving("blue");
    m.assert_lossless("blue", false);
}
