//! Cutover benchmark on real PostgreSQL 15 (prints numbers; no pass/fail): 10 cutover + rollback
//! cycles under a ~300 inserts/s write load from two app roles, the write-unavailability window
//! (NOLOGIN on the old side → LOGIN on the new) as p50 / max, and each window step's time.
//! Lossless is checked after every switch (every acknowledged row on both sides).
//!
//! Run: `cargo bench --bench cutover` (env BENCH_CYCLES, BENCH_TPS).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::migration::{Copy, Mig};

const WINDOW_STEPS: &[&str] = &[
    "fence",
    "prepared_xacts",
    "source_lsn",
    "drain",
    "stop_forward",
    "end_forward_workers",
    "target_lsn",
    "arm_origin",
    "sequences",
    "verify_fence",
    "decode_slot",
    "unfence",
];

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let cycles: usize = std::env::var("BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tps: u32 = std::env::var("BENCH_TPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let m = Mig::replicating_at(Copy::BaseBackup, "", tps);
    let mut windows = Vec::new();
    let mut per_step: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let started = std::time::Instant::now();
    let acked_before = m.writer.as_ref().unwrap().count();
    for i in 0..cycles {
        for (action, serving) in [("cutover", "green"), ("rollback", "blue")] {
            let (w, steps) = m.switch_steps(action);
            windows.push(w);
            for (name, ms) in steps {
                if let Some(k) = WINDOW_STEPS.iter().find(|s| **s == name) {
                    per_step.entry(k).or_default().push(ms);
                }
            }
            m.assert_lossless(serving, true);
            eprintln!("cycle {}: {action} window {w:.1} ms", i + 1);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let acked = m.writer.as_ref().unwrap().count() - acked_before;
    let n = windows.len();
    println!(
        "cutover + rollback, {cycles} cycles ({n} windows), writer {tps} inserts/s requested, {:.0}/s acknowledged:",
        acked as f64 / secs
    );
    println!(
        "  write-unavailability window: p50 {:.1} ms  max {:.1} ms  min {:.1} ms",
        pct(&mut windows, 0.5),
        pct(&mut windows, 1.0),
        pct(&mut windows, 0.0)
    );
    println!("  per step inside the window (p50 / max, ms):");
    for k in WINDOW_STEPS {
        if let Some(v) = per_step.get_mut(k) {
            println!("    {k:<16} {:>7.1} / {:>7.1}", pct(v, 0.5), pct(v, 1.0));
        }
    }
    println!(
        "  lossless after every switch: every acknowledged id on both sides, rows and checksums equal"
    );
}
