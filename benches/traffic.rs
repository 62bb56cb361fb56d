//! The traffic switch benchmark on real PostgreSQL 15 and PgBouncer (prints numbers; no
//! pass/fail): 10 cutover + rollback cycles through PgBouncer while pgbench (8 clients, 300
//! tps, every transaction logged) runs through it. Reports failed transactions, the clients'
//! largest latency per switch (p50 / max), how long PgBouncer held them, and the breakdown:
//! pause wait, the window, the verified fence, retarget and resume.
//!
//! Run: `cargo bench --bench traffic` (env BENCH_CYCLES).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::migration::{Copy, Mig};
use common::pgbench::*;

const STEPS: &[&str] = &[
    "lag_gate",
    "traffic_pause",
    "fence",
    "drain",
    "verify_fence",
    "unfence",
    "traffic_retarget",
    "traffic_resume",
];

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn main() {
    let cycles: usize = std::env::var("BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut m = Mig::replicating_seeded(Copy::BaseBackup, "", 20, &pgbench_tables);
    let b = bouncer_on(&m.blue);
    m.cfg = traffic_config(&m, &[&b], "");
    let dir = tempfile::tempdir().unwrap();
    // Long enough for every cycle; pgbench is stopped by -T, the switches fit well inside.
    let secs = 20 + cycles as u32 * 9;
    let bench = pgbench(b.port, secs, dir.path());
    std::thread::sleep(Duration::from_secs(3));

    let mut spans = Vec::new();
    let (mut held, mut windows) = (Vec::new(), Vec::new());
    let mut per_step: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..cycles {
        for action in ["cutover", "rollback"] {
            let from = epoch_us();
            let r = m.pgc_steady(None, &["run", action, "--yes", "--json"]);
            let to = epoch_us();
            assert_eq!(r.code, 0, "{action}: {}\n{}", r.stdout, r.stderr);
            let v = r.json();
            let h = v["held_ms"].as_f64().unwrap_or(f64::NAN);
            let w = v["window_ms"].as_f64().unwrap_or(f64::NAN);
            held.push(h);
            windows.push(w);
            for s in v["steps"].as_array().unwrap() {
                if let Some(k) = STEPS.iter().find(|k| s["step"] == **k) {
                    per_step
                        .entry(k)
                        .or_default()
                        .push(s["ms"].as_f64().unwrap());
                }
            }
            spans.push((from, to));
            eprintln!("cycle {}: {action} held {h:.1} ms, window {w:.1} ms", i + 1);
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    let logged = bench.finish();
    // A switch's cost to the app: the slowest transaction that ended while it ran (or within
    // a second after, when the held ones complete).
    let mut worst: Vec<f64> = spans
        .iter()
        .map(|(from, to)| logged.max_ms_between(*from, to + 1_000_000))
        .collect();
    let mut calm: Vec<f64> = logged
        .txns
        .iter()
        .filter(|(end, _)| {
            !spans
                .iter()
                .any(|(from, to)| (*from..=to + 1_000_000).contains(end))
        })
        .filter_map(|(_, ms)| *ms)
        .collect();
    let n = spans.len();
    println!(
        "traffic switch through PgBouncer, {cycles} cycles ({n} switches), pgbench 8 clients at 300 tps:"
    );
    println!(
        "  transactions: {} committed, {} failed",
        logged.committed, logged.failed
    );
    println!(
        "  largest client latency per switch: p50 {:.1} ms  max {:.1} ms  (between switches: p50 {:.1} ms, p99 {:.1} ms)",
        pct(&mut worst, 0.5),
        pct(&mut worst, 1.0),
        pct(&mut calm, 0.5),
        pct(&mut calm, 0.99)
    );
    println!(
        "  held by PgBouncer (PAUSE → RESUME): p50 {:.1} ms  max {:.1} ms",
        pct(&mut held, 0.5),
        pct(&mut held, 1.0)
    );
    println!(
        "  write window (NOLOGIN → LOGIN): p50 {:.1} ms  max {:.1} ms",
        pct(&mut windows, 0.5),
        pct(&mut windows, 1.0)
    );
    println!("  per step (p50 / max, ms):");
    for k in STEPS {
        if let Some(v) = per_step.get_mut(k) {
            println!("    {k:<17} {:>7.1} / {:>7.1}", pct(v, 0.5), pct(v, 1.0));
        }
    }
    assert_eq!(
        history(&m.blue),
        logged.committed,
        "every committed transaction on BLUE"
    );
    assert!(invariant_holds(&m.blue), "TPC-B invariant on BLUE");
    println!(
        "  after the last rollback: count(pgbench_history) on BLUE = logged commits, TPC-B invariant holds"
    );
}
