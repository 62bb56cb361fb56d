//! Foundation benchmarks on real PostgreSQL 15 (prints numbers; no pass/fail):
//! - schema diff of 10,000 tables / 100,000 columns, end to end (both catalogues read
//!   concurrently + diff); goal ≤ 1 s;
//! - one full poll cycle's server-side time per side (the live query), goal ≤ 2 ms; also the
//!   round trip on loopback and the slow (inventory) query;
//! - the same with 5 replicated databases: the main reader's live query plus one objects-only
//!   query per other database, side by side on their own connections (goal ≤ 2 ms per poll
//!   per side).
//!
//! Run: `cargo bench --bench foundation` (env BENCH_TABLES to change the size).
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use pgcutover::collect::postgres::PgReader;
use pgcutover::collect::reading::reader;
use pgcutover::config::{self, Overrides};
use pgcutover::domain::observed::Side;
use pgcutover::domain::schema;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.3} ms  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  (n={})",
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 99 / 100).min(v.len() - 1)]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

fn explain_ms(c: &Cluster, sql: &str) -> f64 {
    let out = c.sql(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["Execution Time"].as_f64().unwrap() + v[0]["Planning Time"].as_f64().unwrap_or(0.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tables: usize = std::env::var("BENCH_TABLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let blue = Cluster::new("bench-blue", &Bin::pg15());
    let t = Instant::now();
    blue.sql("CREATE ROLE app LOGIN");
    blue.sql(&format!(
        "DO $$ BEGIN FOR i IN 1..{tables} LOOP
           EXECUTE format('CREATE TABLE t%s (id bigserial PRIMARY KEY, a int NOT NULL DEFAULT 0, b text, c timestamptz DEFAULT now(),
             d numeric(12,2), e boolean, f jsonb, g bytea, h varchar(40), i date)', i);
           IF i % 500 = 0 THEN COMMIT; END IF;
         END LOOP; END $$"
    ));
    blue.sql("CREATE PUBLICATION pgcutover_pub FOR ALL TABLES");
    blue.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    let green = blue.basebackup("bench-green");
    green.sql("ALTER TABLE t1 ADD COLUMN extra int");
    eprintln!(
        "setup: {tables} tables in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let ov = Overrides {
        blue_dsn: Some(blue.dsn()),
        green_dsn: Some(green.dsn()),
        app_roles: Some(vec!["app".into()]),
        ..Default::default()
    };
    let mut s = config::from_str("", None, &ov).unwrap();
    s.poll.timeout = Duration::from_secs(60);
    let mut b = reader(&s, Side::Blue);
    let mut g = reader(&s, Side::Green);
    b.live().await.unwrap();
    g.live().await.unwrap();

    // schema diff end to end
    let mut runs = Vec::new();
    let mut objects = 0;
    let mut found = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (cb, cg) = tokio::join!(b.catalog(), g.catalog());
        let (cb, cg) = (cb.unwrap(), cg.unwrap());
        let d = schema::diff(&cb, &cg);
        runs.push(t.elapsed());
        objects = cb.len();
        found = d.objects.len();
    }
    let cb = b.catalog().await.unwrap();
    let cg = g.catalog().await.unwrap();
    let mut diff_only = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        std::hint::black_box(schema::diff(&cb, &cg));
        diff_only.push(t.elapsed());
    }
    println!(
        "schema diff, {tables} tables / {} columns ({objects} objects per side, {found} differences):",
        tables * 10
    );
    println!("  end to end (both catalogues + diff): {}", stats(runs));
    println!(
        "  in-memory diff alone:                {}",
        stats(diff_only)
    );
    let mut one = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(b.catalog().await.unwrap());
        one.push(t.elapsed());
    }
    println!("  one side's catalogue read:           {}", stats(one));
    let server: Vec<Duration> = (0..3)
        .map(|_| {
            Duration::from_secs_f64(
                explain_ms(&blue, &pgcutover::collect::queries::catalog()) / 1000.0,
            )
        })
        .collect();
    println!("  catalogue query server-side:         {}", stats(server));

    // poll cycle
    let mut rtt = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        std::hint::black_box(b.live().await.unwrap());
        rtt.push(t.elapsed());
    }
    // server-side time of the prepared statement, as the poller runs it (plan cached)
    let live_sql = pgcutover::collect::queries::live(150000, true);
    let server = prepared_server_times(
        &blue.dsn(),
        &format!("PREPARE live(text[], text) AS {live_sql}"),
        "live('{app}', NULL)",
    )
    .await;
    println!("live poll (one statement, one round trip):");
    println!(
        "  server-side (EXPLAIN ANALYZE EXECUTE, prepared): {}",
        stats(server)
    );
    println!(
        "  round trip on loopback incl. JSON decode:      {}",
        stats(rtt)
    );
    let mut inv = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        std::hint::black_box(b.inventory().await.unwrap());
        inv.push(t.elapsed());
    }
    println!("inventory poll ({tables} tables): {}", stats(inv));
    databases_poll(&blue, &s, &mut b).await;
}

/// The server-side time of a prepared statement (`prepare`), executed as `execute` 60 times on
/// one connection, the first 10 left out (plan and caches warm, as in the poller).
async fn prepared_server_times(dsn: &str, prepare: &str, execute: &str) -> Vec<Duration> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(prepare).await.unwrap();
    let mut server = Vec::new();
    for i in 0..60 {
        let rows = client
            .simple_query(&format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {execute}"))
            .await
            .unwrap();
        let text = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        let v: serde_json::Value = serde_json::from_str(&text.unwrap()).unwrap();
        if i >= 10 {
            server.push(Duration::from_secs_f64(
                v[0]["Execution Time"].as_f64().unwrap() / 1000.0,
            ));
        }
    }
    server
}

/// One poll of a side with 5 replicated databases: the main live query and 4 objects-only
/// queries, at once, as the dashboard's pollers run them.
async fn databases_poll(blue: &Cluster, s: &pgcutover::config::Settings, b: &mut PgReader) {
    let names: Vec<String> = (1..=4).map(|i| format!("bench_db{i}")).collect();
    let mut others = Vec::new();
    for n in &names {
        blue.sql(&format!("CREATE DATABASE {n}"));
        blue.try_sql_db(
            n,
            "CREATE TABLE t (id bigserial PRIMARY KEY); CREATE PUBLICATION p FOR ALL TABLES",
        )
        .unwrap();
        let mut r = PgReader::new(
            s.blue.for_database(n),
            Duration::from_secs(60),
            s.app_roles.clone(),
            None,
        )
        .objects_only();
        r.database_live().await.unwrap();
        others.push(r);
    }
    let mut cycle = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let (main, rest) = tokio::join!(
            b.live(),
            futures_util::future::join_all(others.iter_mut().map(|r| r.database_live()))
        );
        std::hint::black_box(main.unwrap());
        for r in rest {
            std::hint::black_box(r.unwrap());
        }
        cycle.push(t.elapsed());
    }
    // server-side, prepared on a connection kept open, as the poller runs it
    let sql = pgcutover::collect::queries::database_live(150000, true);
    let server = prepared_server_times(
        &blue.dsn_for(&names[0]),
        &format!("PREPARE db_live AS {sql}"),
        "db_live",
    )
    .await;
    println!("5 replicated databases, one poll of a side:");
    println!(
        "  one more database's query, server-side (prepared): {}",
        stats(server)
    );
    println!(
        "  main + 4 databases side by side, round trip on loopback: {}",
        stats(cycle)
    );
}
