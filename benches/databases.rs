//! The whole-instance window (prints numbers; no pass/fail): the same cutover + rollback with 1
//! and with 5 databases replicated, each database under its own writer, on real PostgreSQL 15;
//! then 1 database under 5 writers, so as many app sessions for the fence to end as with 5; then
//! 5 databases under 1 writer. The window (NOLOGIN on the old side → LOGIN on the new) as p50 /
//! max, and the steps run once per database inside it. Lossless is checked in every database
//! written after every switch.
//!
//! Run: `cargo bench --bench databases` (env BENCH_CYCLES, BENCH_TPS: inserts/s per database).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;

use common::instance::replicating;
use common::migration::ROLES;
use common::writer::Writer;

const PER_DATABASE: &[&str] = &["stop_forward", "sequences", "decode_slot"];
/// The window's steps, in the order they start: its length is theirs, each database's at its
/// slowest.
const WINDOW: &[&str] = &[
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

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cycles = env("BENCH_CYCLES", 5);
    let tps = env("BENCH_TPS", 40);
    // the third: one database with the writers (so the app sessions) of five; the fourth: five
    // databases with the writer of one (the others' stopped once replicating): together they
    // tell what grows with the databases from what grows with the sessions the fence ends
    const FIVE: &[&str] = &["db2", "db3", "db4", "db5"];
    for (others, extra, others_write) in [
        (&[][..], 0, true),
        (FIVE, 0, true),
        (&[][..], 4, true),
        (FIVE, 0, false),
    ] {
        let n = others.len() + 1;
        let mut inst = replicating(others, tps, common::migration::Copy::CrashConsistent);
        if !others_write {
            // their rows so far were checked when replicating began; only appdb is written now
            for (_, w) in inst.writers.drain(..) {
                w.stop();
            }
        }
        let extras: Vec<Writer> = (0..extra)
            .map(|_| Writer::start_in(inst.mig.ports.clone(), &ROLES, tps, common::DB))
            .collect();
        let mut windows = Vec::new();
        let mut per_step: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut slowest: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut total = Vec::new();
        for _ in 0..cycles {
            for (action, serving) in [("cutover", "green"), ("rollback", "blue")] {
                let t0 = std::time::Instant::now();
                let (w, steps) = inst.mig.switch_steps(action);
                total.push(t0.elapsed().as_secs_f64());
                windows.push(w);
                let mut this: BTreeMap<&str, f64> = BTreeMap::new();
                for (name, ms) in steps {
                    if let Some(k) = PER_DATABASE.iter().find(|s| **s == name) {
                        per_step.entry(k).or_default().push(ms);
                    }
                    if let Some(k) = WINDOW.iter().find(|s| **s == name) {
                        let m = this.entry(k).or_default();
                        *m = m.max(ms);
                    }
                }
                for (k, ms) in this {
                    slowest.entry(k).or_default().push(ms);
                }
                extras.iter().for_each(Writer::pause);
                inst.assert_lossless(serving, true);
                extras.iter().for_each(Writer::resume);
            }
        }
        println!(
            "{n} database(s), {} writer(s) of {} sessions at {tps} inserts/s each, {} windows:",
            inst.writers.len() + 1 + extra,
            ROLES.len(),
            windows.len()
        );
        println!(
            "  write-unavailability window: p50 {:.1} ms  max {:.1} ms  min {:.1} ms",
            pct(&mut windows, 0.5),
            pct(&mut windows, 1.0),
            pct(&mut windows, 0.0)
        );
        println!(
            "  whole action (gate, window, reverse path started): p50 {:.1} s",
            pct(&mut total, 0.5)
        );
        for k in PER_DATABASE {
            if let Some(v) = per_step.get_mut(k) {
                println!(
                    "    {k:<14} per database p50 {:>6.1} ms  max {:>6.1} ms",
                    pct(v, 0.5),
                    pct(v, 1.0)
                );
            }
        }
        println!("  the window's steps, the slowest database's each time, p50:");
        let shown: Vec<String> = WINDOW
            .iter()
            .filter_map(|k| {
                let v = slowest.get_mut(k)?;
                Some(format!("{k} {:.1}", pct(v, 0.5)))
            })
            .collect();
        println!("    {}", shown.join(" → "));
        println!("  lossless after every switch in every database written");
        for (_, w) in inst.writers.drain(..) {
            w.stop();
        }
        for w in extras {
            w.stop();
        }
    }
}
