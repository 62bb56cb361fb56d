//! Dashboard figures (prints numbers; no pass/fail):
//! - frame render time at 200×60 with full data (goal ≤ 1 ms);
//! - time to first frame with AWS configured but unreachable (goal ≤ 300 ms), in tmux;
//! - idle CPU over 60 s at 1 s refresh (goal ≤ 0.5 % of a core) and resident memory (goal
//!   ≤ 40 MB), of the demo's dashboard in tmux (`pgcutover demo --tps 0`).
//!
//! `cargo bench --bench dashboard` (add `-- --quick` for a 15 s idle window).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use pgcutover::app::keys::Keymap;
use pgcutover::app::{Msg, State, update};
use pgcutover::collect::poller::{Sample, SampleData};
use pgcutover::domain::observed::Side;
use pgcutover::domain::testdata;
use pgcutover::ui::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn full_state() -> State {
    let mut st = State::new(
        testdata::names(),
        vec!["app".into()],
        true,
        Duration::from_secs(1),
        false,
        Keymap::default(),
    );
    let base = Instant::now();
    let t0 = SystemTime::now() - Duration::from_secs(900);
    for i in 0..900u64 {
        let mut b = testdata::with_pub_slot(testdata::live(true));
        let cur = 0x3000000 + i * 4096;
        b.server.current_lsn = Some(format!("0/{cur:X}").parse().unwrap());
        b.slots[0].active = true;
        b.slots[0].confirmed_flush_lsn =
            Some(format!("0/{:X}", cur - 512 * (i % 13)).parse().unwrap());
        let g = testdata::with_sub(testdata::live(false), true, None);
        for (side, l) in [(Side::Blue, b), (Side::Green, g)] {
            let at = t0 + Duration::from_secs(i);
            update(
                &mut st,
                Msg::Sample(Sample {
                    side,
                    db: None,
                    at,
                    data: SampleData::Live(Ok(Box::new(l))),
                }),
                at,
                base + Duration::from_secs(i),
            );
        }
    }
    for i in 0..200 {
        update(
            &mut st,
            Msg::Engine(pgcutover::engine::Event::StepFinished {
                step: pgcutover::domain::step::StepId::ALL
                    [i % pgcutover::domain::step::StepId::ALL.len()],
                ms: 1.5,
                detail: "a journal line of ordinary length for the panel".into(),
                window: None,
            }),
            SystemTime::now(),
            base + Duration::from_secs(900),
        );
    }
    st
}

fn render_time() {
    let st = full_state();
    let th = Theme::dark();
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for _ in 0..50 {
        term.draw(|f| draw(&st, &th, f)).unwrap();
    }
    let mut times: Vec<f64> = (0..500)
        .map(|_| {
            let t = Instant::now();
            term.draw(|f| draw(&st, &th, f)).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "frame render 200x60, full data: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (goal <= 1 ms)",
        times[250], times[495], times[499]
    );
}

fn tmux(socket: &str) -> Command {
    let mut c = Command::new("tmux");
    c.args(["-L", socket, "-f", "/dev/null"]);
    c
}

fn screen(socket: &str) -> String {
    let out = tmux(socket)
        .args(["capture-pane", "-p", "-t", "b"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into()
}

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_pgcutover"))
}

/// AWS "unreachable": a loopback port that accepts connections and never answers.
fn first_frame() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for c in hole.incoming() {
            keep.push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[blue]\ndsn = \"host=127.0.0.1 port={port} dbname=x user=x sslmode=disable connect_timeout=5\"\nrds_instance = \"blue\"\n\
             [green]\ndsn = \"host=127.0.0.1 port={port} dbname=x user=x sslmode=disable connect_timeout=5\"\nrds_instance = \"green\"\n\
             [aws]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let socket = format!("pgc-bench-{}", std::process::id());
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        tmux(&socket)
            .args(["new-session", "-d", "-s", "b", "-x", "160", "-y", "48"])
            .arg(format!(
                "env AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_EC2_METADATA_DISABLED=true HOME={h} XDG_STATE_HOME={h} {} --config {}",
                bin().display(),
                cfg.display(),
                h = dir.path().display()
            ))
            .status()
            .unwrap();
        while !screen(&socket).contains("writable") {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no frame: {}",
                screen(&socket)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = tmux(&socket).arg("kill-server").status();
        std::thread::sleep(Duration::from_millis(200));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "first frame with AWS unreachable (tmux start included): median {:.0} ms, max {:.0} ms (goal <= 300 ms)",
        times[2], times[4]
    );
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based); after ") " the state is field 3.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn idle(window: Duration) {
    let socket = format!("pgc-bench-idle-{}", std::process::id());
    tmux(&socket)
        .args(["new-session", "-d", "-s", "b", "-x", "160", "-y", "48"])
        // RUST_BACKTRACE set, as on many operators' machines: errors must not pay for backtraces
        .arg(format!(
            "env RUST_BACKTRACE=1 {} demo --tps 0",
            bin().display()
        ))
        .status()
        .unwrap();
    let t = Instant::now();
    while !screen(&socket).contains("REPLICATING") {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "demo did not come up: {}",
            screen(&socket)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid_out = tmux(&socket)
        .args(["display-message", "-p", "-t", "b", "#{pane_pid}"])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&pid_out.stdout)
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let hz = 100.0; // USER_HZ on Linux
    let c0 = proc_cpu_ticks(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let c1 = proc_cpu_ticks(pid);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (c1 - c0) as f64 / hz / secs * 100.0;
    let rss = rss_kb(pid);
    println!(
        "idle over {:.0} s at 1 s refresh (demo dashboard, pollers included): {cpu:.2} % of a core (goal <= 0.5 %); RSS {:.1} MB (goal <= 40 MB)",
        secs,
        rss as f64 / 1024.0
    );
    let _ = tmux(&socket).args(["send-keys", "-t", "b", "q"]).status();
    std::thread::sleep(Duration::from_secs(3));
    let _ = tmux(&socket).arg("kill-server").status();
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    render_time();
    first_frame();
    idle(Duration::from_secs(if quick { 15 } else { 60 }));
}
