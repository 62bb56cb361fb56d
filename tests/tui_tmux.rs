//! The real binary in a real terminal (tmux): the dashboard with `--write` against a
//! replicating pair under load. Press C and confirm, check by SQL that GREEN serves and BLUE is
//! fenced; press R and confirm, check the way back; read the screen at every point.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::process::Command;
use std::time::Duration;

use common::migration::{Copy, Mig};
use common::tmux::Tmux;
use common::*;

#[test]
fn cutover_and_rollback_from_the_keyboard() {
    let m = Mig::replicating(Copy::CrashConsistent, "");
    let home = m.home.path();
    // The same clean environment the other CLI tests use, in a script tmux can run.
    let script = common::tmux::dashboard_script(home, &m.cfg, "--write");
    let t = Tmux::start(&script, 160, 48);

    let s = t.wait_for("REPLICATING", Duration::from_secs(20));
    assert!(s.contains("WRITE"), "{s}");
    assert!(s.contains("writable BLUE"), "{s}");
    assert!(s.contains("✓ streaming"), "{s}");

    // A lower-case c does nothing; C opens the dialog with the guards and the SQL.
    t.keys(&["c"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.screen().contains("CUTOVER — plan"));
    t.keys(&["C"]);
    let s = t.wait_for("type cutover then Enter", Duration::from_secs(20));
    assert!(s.contains("CUTOVER — plan"), "{s}");
    assert!(s.contains("✓ lag"), "{s}");
    // (the plan's first steps fill the dialog; the window's come further down)
    assert!(
        s.contains("ALTER SUBSCRIPTION pgcutover_sub SET (synchronous_commit = on)"),
        "the SQL is shown: {s}"
    );
    assert!(s.contains("what runs: full run"), "{s}");
    assert!(s.contains("the app: "), "{s}");
    // A single Enter (or y) does not run a cutover; typing its name and Enter does.
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        t.screen().contains("type cutover then Enter"),
        "still asking"
    );
    t.keys(&["-l", "cutover"]);
    t.keys(&["Enter"]);
    // A second C while it runs must not start anything.
    t.keys(&["C"]);
    let s = t.wait_for("cutover done", Duration::from_secs(30));
    assert!(s.contains("window"), "{s}");
    m.assert_serving("green");
    let s = t.wait_for("CUT OVER", Duration::from_secs(10));
    assert!(s.contains("writable GREEN"), "{s}");
    m.assert_lossless("green", true);

    t.keys(&["Escape"]);
    t.keys(&["R"]);
    let s = t.wait_for("type rollback then Enter", Duration::from_secs(20));
    assert!(s.contains("ROLLBACK — plan"), "{s}");
    t.keys(&["-l", "rollback"]);
    t.keys(&["Enter"]);
    t.wait_for("rollback done", Duration::from_secs(30));
    m.assert_serving("blue");
    let s = t.wait_for("ROLLED BACK", Duration::from_secs(10));
    assert!(s.contains("writable BLUE"), "{s}");
    m.assert_lossless("blue", true);

    // Exactly one cutover and one rollback ran.
    let journal = std::fs::read_to_string(home.join("state/pgcutover/journal.jsonl")).unwrap();
    let runs = |a: &str| {
        journal
            .lines()
            .filter(|l| {
                l.contains("\"event\":\"outcome\"") && l.contains(&format!("\"action\":\"{a}\""))
            })
            .count()
    };
    assert_eq!((runs("cutover"), runs("rollback")), (1, 1), "{journal}");

    // q quits (nothing runs now): the process ends and tmux closes the session.
    t.keys(&["q"]);
    t.wait_exit();

    // A second dashboard, with a bug in the engine (a test hook panics after a step), a FIFO as
    // the redo log, and a canary password in its environment.
    let fifo = home.join("redo.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cfg2 = home.join("panic.toml");
    let text = std::fs::read_to_string(&m.cfg).unwrap();
    let log_line = text
        .lines()
        .find(|l| l.starts_with("log_file"))
        .unwrap()
        .to_string();
    std::fs::write(
        &cfg2,
        text.replace(
            &log_line,
            &format!("log_file = {}", toml_str(&fifo.display().to_string())),
        ),
    )
    .unwrap();
    const CANARY: &str = "CanaryTmux/5?q@w";
    let script2 = home.join("dashboard2.sh");
    std::fs::write(
        &script2,
        format!(
            "#!/bin/sh\nexec env -i PATH=/usr/bin:/bin HOME={h} XDG_CONFIG_HOME={h}/config XDG_STATE_HOME={h}/state \
             TERM=xterm-256color AWS_EC2_METADATA_DISABLED=true PGCUTOVER_LOG=trace \
             PGCUTOVER_BLUE_PASSWORD='{CANARY}' PGCUTOVER_GREEN_PASSWORD='{CANARY}' \
             PGCUTOVER_TEST_PANIC_AFTER=forward_streaming {bin} --config {cfg} --write\n",
            h = home.display(),
            bin = env!("CARGO_BIN_EXE_pgcutover"),
            cfg = cfg2.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&script2)
        .status()
        .unwrap();
    let t = Tmux::start(&script2, 160, 48);
    t.wait_for("ROLLED BACK", Duration::from_secs(20));
    t.wait_for("not a regular file", Duration::from_secs(20));
    t.keys(&["C"]);
    let s = t.wait_for("type cutover then Enter", Duration::from_secs(20));
    assert!(!s.contains("Canary"), "{s}");
    t.keys(&["-l", "cutover"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("stopped unexpectedly", Duration::from_secs(30));
    assert!(
        !s.contains("panicked at"),
        "no backtrace over the screen: {s}"
    );
    assert!(!s.contains("Canary"), "{s}");
    // the screen is still the dashboard, and it still answers keys
    t.keys(&["?"]);
    t.wait_for("nothing runs until you confirm", Duration::from_secs(5));
    t.keys(&["Escape"]);
    m.assert_serving("blue");
    let t0 = std::time::Instant::now();
    t.keys(&["q"]);
    t.wait_exit();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "quitting never waits on a poller"
    );
    let log = std::fs::read_to_string(home.join("state/pgcutover/pgcutover.log")).unwrap();
    assert!(
        log.contains("test hook: panic"),
        "the panic is in the log file"
    );
    assert!(
        !log.contains("Canary"),
        "no password in the log at trace level"
    );
    let journal = std::fs::read_to_string(home.join("state/pgcutover/journal.jsonl")).unwrap();
    assert!(!journal.contains("Canary"));
}
