//! `verify` against its floor (prints numbers; no pass/fail): pgbench_accounts at scale
//! BENCH_SCALE (100: 10 million rows) on a replicating 15 → 15 pair with a light writer; the
//! verify of that table (rows/s, total time, chunks) against a plain `count(*)` + the same hash
//! over the whole table on both sides at once in the same run, and the CPU time of the verify
//! sessions on the source (the postmaster's reaped children, before and after).
//!
//! Run: `cargo bench --bench verify` (env BENCH_SCALE, BENCH_CHUNK: rows per chunk).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::migration::{Copy, Mig};
use common::*;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds of the cluster's backends that have exited (the postmaster's reaped children).
fn reaped_cpu_s(c: &Cluster) -> f64 {
    let pm = c.pids()[0];
    let stat = std::fs::read_to_string(format!("/proc/{pm}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // after the command: state is field 0, so cutime and cstime (fields 16, 17 of stat) are 13, 14
    let ticks: f64 = f[13].parse::<f64>().unwrap() + f[14].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

const FLOOR: &str = "SELECT count(*), sum(('x' || left(md5(ROW(aid, bid, abalance, filler)::text), 16))::bit(64)::bigint::numeric) FROM pgbench_accounts";

fn main() {
    let scale = env("BENCH_SCALE", 100);
    let chunk = env("BENCH_CHUNK", 10_000);
    let load = move |b: &mut Cluster| {
        run_ok(
            std::process::Command::new(Bin::pg15().tool("pgbench"))
                .args(["-i", "-q", "-s"])
                .arg(scale.to_string())
                .args(["-h", "127.0.0.1", "-p"])
                .arg(b.port.to_string())
                .args(["-U", "postgres", DB]),
            "pgbench -i",
        );
        b.sql("ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY");
        b.sql("VACUUM ANALYZE pgbench_accounts");
    };
    let t0 = Instant::now();
    let m = Mig::replicating_set_up(Copy::BaseBackup, "", &load);
    println!(
        "pair ready in {:.0} s (pgbench scale {scale})",
        t0.elapsed().as_secs_f64()
    );
    let cfg = m.home.path().join("bench.toml");
    let base = std::fs::read_to_string(&m.cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{base}[verify]\nmax_rows_per_s = 0\nchunk_rows = {chunk}\n"),
    )
    .unwrap();

    // the floor: one scan with the same hash on each side, both at once
    let t = Instant::now();
    std::thread::scope(|s| {
        let a = s.spawn(|| m.blue.sql(FLOOR));
        let b = s.spawn(|| m.green.sql(FLOOR));
        assert_eq!(
            a.join().unwrap(),
            b.join().unwrap(),
            "the floor's scans agree"
        );
    });
    let floor = t.elapsed().as_secs_f64();

    let cpu0 = reaped_cpu_s(&m.blue);
    let t = Instant::now();
    let r = m.pgc_with(&cfg, &["verify", "--json", "--table", "pgbench_accounts"]);
    let took = t.elapsed().as_secs_f64();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let cpu = reaped_cpu_s(&m.blue) - cpu0;
    let v = r.json();
    let t0 = &v["tables"][0];
    let rows = t0["rows"].as_f64().unwrap();
    println!(
        "verify pgbench_accounts: {} ({} chunks of {chunk}), {rows:.0} rows in {took:.1} s: {:.0} rows/s",
        t0["verdict"],
        t0["chunks"],
        rows / took
    );
    println!(
        "floor (count + the same hash, whole table, both sides at once): {floor:.1} s: {:.0} rows/s",
        rows / floor
    );
    println!("verify / floor: {:.2}x (goal: within 2x)", took / floor);
    println!(
        "source CPU of the verify sessions: {cpu:.1} s ({:.0} % of one core over the run)",
        100.0 * cpu / took
    );
}
