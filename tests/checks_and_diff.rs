//! Pre-flight checks and the schema/sequence diff on real clusters, including names that need
//! quoting everywhere.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use common::*;
use serde_json::Value;

struct Pair {
    blue: Cluster,
    green: Cluster,
    home: tempfile::TempDir,
    cfg: std::path::PathBuf,
}

/// A clean, prepared 15→15 pair: app roles `app` and `Weird "Role"`, schema `Ünïcode` with table
/// `Order Items`, GREEN by base backup with the app roles fenced.
fn pair() -> Pair {
    let blue = Cluster::new("blue", &Bin::pg15());
    blue.sql(
        r#"
CREATE ROLE app LOGIN;
CREATE ROLE "Weird ""Role""" LOGIN;
CREATE SCHEMA "Ünïcode";
CREATE TABLE "Ünïcode"."Order Items" (id bigserial PRIMARY KEY, qty int NOT NULL DEFAULT 1);
CREATE TABLE items (id serial PRIMARY KEY, note text);
INSERT INTO "Ünïcode"."Order Items" (qty) SELECT g FROM generate_series(1, 5) g;
CREATE PUBLICATION pgcutover_pub FOR ALL TABLES;
SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput');
"#,
    );
    let green = blue.basebackup("green");
    green.sql(r#"ALTER ROLE app NOLOGIN; ALTER ROLE "Weird ""Role""" NOLOGIN;"#);
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), &blue, &green, &["app", "Weird \"Role\""], "");
    Pair {
        blue,
        green,
        home,
        cfg,
    }
}

impl Pair {
    fn check(&self) -> (i32, Vec<Value>) {
        let r = run(pgcutover(self.home.path())
            .arg("--config")
            .arg(&self.cfg)
            .args(["check", "--json"]));
        (r.code, r.json().as_array().unwrap().clone())
    }
    fn status(&self) -> Value {
        let r = run(pgcutover(self.home.path())
            .arg("--config")
            .arg(&self.cfg)
            .args(["status", "--json"]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()
    }
}

fn failing<'a>(checks: &'a [Value], id: &str, side: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["id"] == id && c["ok"] == false && c["side"] == side)
        .unwrap_or_else(|| {
            panic!(
                "no failing check {id} on {side} in {}",
                serde_json::to_string_pretty(checks).unwrap()
            )
        })
}

#[test]
fn clean_pair_is_silent() {
    let p = pair();
    let (code, checks) = p.check();
    let noisy: Vec<&Value> = checks
        .iter()
        .filter(|c| c["ok"] == false && c["severity"] != "info")
        .collect();
    assert!(noisy.is_empty(), "unexpected findings: {noisy:#?}");
    assert_eq!(code, 0);
    // the passing checks are listed too, so a reader sees what was verified
    for id in [
        "wal_level",
        "replication_role",
        "publication",
        "primary_keys",
        "app_roles",
        "extensions",
        "uncovered_databases",
        "other_logical_slots",
        "unfenced_writers",
        "logical_workers",
        "target_statistics",
        "text_order",
    ] {
        assert!(
            checks.iter().any(|c| c["id"] == id && c["ok"] == true),
            "{id} missing"
        );
    }
    let st = p.status();
    assert_eq!(
        st["schema_diff"]["objects"].as_array().unwrap().len(),
        0,
        "{}",
        st["schema_diff"]
    );
    let seqs = st["sequences"].as_array().unwrap();
    let oi = seqs
        .iter()
        .find(|s| s["sequence"] == "\"Ünïcode\".\"Order Items_id_seq\"")
        .unwrap();
    assert_eq!(
        (oi["blue"].as_i64(), oi["difference"].as_i64()),
        (Some(5), Some(0))
    );
}

/// A database GREEN sorts otherwise (ICU's order there, bytewise on BLUE), as a collation
/// changed by an upgrade leaves it: a warning on GREEN that names the REINDEX.
#[test]
fn green_sorting_text_otherwise_is_a_warning() {
    let p = pair();
    p.blue
        .sql("CREATE DATABASE sorted TEMPLATE template0 LOCALE 'C'");
    p.green.sql(
        "CREATE DATABASE sorted TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C'",
    );
    let cfg = p.home.path().join("sorted.toml");
    std::fs::write(
        &cfg,
        format!(
            "[blue]\ndsn = {}\n[green]\ndsn = {}\n[cutover]\napp_roles = [\"app\"]\n",
            toml_str(&p.blue.dsn_for("sorted")),
            toml_str(&p.green.dsn_for("sorted"))
        ),
    )
    .unwrap();
    let r = run(pgcutover(p.home.path())
        .arg("--config")
        .arg(&cfg)
        .args(["check", "--json"]));
    let checks = r.json().as_array().unwrap().clone();
    let c = failing(&checks, "text_order", "green");
    assert_eq!(c["severity"], "warning", "{c:#}");
    assert!(
        c["finding"]
            .as_str()
            .unwrap()
            .starts_with("GREEN sorts text otherwise than BLUE"),
        "{c:#}"
    );
    assert!(c["fix"].as_str().unwrap().contains("REINDEX"), "{c:#}");
}

#[test]
fn checks_fire_on_real_problems() {
    let mut p = pair();
    p.blue.sql(
        r#"
CREATE TABLE "Ünïcode"."No Key" (v text);
CREATE TABLE nothing_ident (id int PRIMARY KEY);
ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
CREATE TABLE parted (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE parted_2026 PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT lo_create(0);
CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM items;
"#,
    );
    p.green.sql(r#"DROP ROLE "Weird ""Role""""#);
    p.green
        .sql("CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM items");
    p.green.sql("ALTER SYSTEM SET wal_level = replica");
    p.green.restart();
    let p = p; // the config still points at GREEN's old port: rewrite it
    let cfg = write_config(
        p.home.path(),
        &p.blue,
        &p.green,
        &["app", "Weird \"Role\""],
        "",
    );
    assert_eq!(cfg, p.cfg);

    let (code, checks) = p.check();
    assert_eq!(code, 1, "a blocking check failed, so exit 1");

    let pk = failing(&checks, "primary_keys", "blue");
    let f = pk["finding"].as_str().unwrap();
    assert!(f.contains(r#""Ünïcode"."No Key""#), "{f}");
    assert!(
        f.contains("public.parted_2026"),
        "leaf partitions count: {f}"
    );
    assert!(
        !f.contains("public.parted,") && !f.contains("nothing_ident"),
        "{f}"
    );
    assert_eq!(pk["severity"], "blocking");
    assert!(
        pk["fix"]
            .as_str()
            .unwrap()
            .contains("REPLICA IDENTITY FULL")
    );

    let n = failing(&checks, "replica_identity_nothing", "blue");
    assert!(
        n["finding"]
            .as_str()
            .unwrap()
            .contains("public.nothing_ident")
    );

    let u = failing(&checks, "unlogged_tables", "blue");
    assert_eq!(u["severity"], "warning");
    assert!(u["finding"].as_str().unwrap().contains("public.scratch"));

    let lo = failing(&checks, "large_objects", "blue");
    assert!(
        lo["finding"]
            .as_str()
            .unwrap()
            .starts_with("BLUE: 1 large object")
    );

    let roles = failing(&checks, "app_roles", "green");
    assert!(
        roles["finding"]
            .as_str()
            .unwrap()
            .contains(r#""Weird ""Role""""#),
        "{roles}"
    );
    assert!(
        roles["fix"]
            .as_str()
            .unwrap()
            .contains(r#"CREATE ROLE "Weird ""Role""" NOLOGIN"#)
    );

    let wl = failing(&checks, "wal_level", "green");
    assert!(
        wl["finding"]
            .as_str()
            .unwrap()
            .contains("wal_level = replica")
    );
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "wal_level" && c["side"] == "blue" && c["ok"] == true)
    );

    let mv = failing(&checks, "materialized_views", "green");
    assert!(mv["finding"].as_str().unwrap().contains("public.mv"));

    // the plain-text form says the same
    let r = run(pgcutover(p.home.path())
        .arg("--config")
        .arg(&p.cfg)
        .arg("check"));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("✗ primary_keys"), "{}", r.stdout);
    assert!(r.stdout.contains("blocking problem(s)"), "{}", r.stdout);
}

#[test]
fn instance_checks_fire_on_planted_cases() {
    let p = pair();
    p.blue.sql(
        r#"
CREATE DATABASE billing;
CREATE DATABASE "Ünïcode ""db""";
CREATE DATABASE empty_one;
CREATE ROLE etl LOGIN;
GRANT INSERT ON items TO etl;
SELECT pg_create_logical_replication_slot('debezium', 'test_decoding');
"#,
    );
    p.blue
        .try_sql_db("billing", "CREATE TABLE invoices (id int PRIMARY KEY)")
        .unwrap();
    p.blue
        .try_sql_db("Ünïcode \"db\"", "CREATE TABLE t (id int PRIMARY KEY)")
        .unwrap();
    // A table on GREEN over 1 MB whose statistics are gone, as after pg_upgrade before 18.
    p.green.sql(
        "CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
         ANALYZE big;
         DELETE FROM pg_statistic WHERE starelid = 'big'::regclass;",
    );
    // A session left idle in a transaction on BLUE: the fence would end it.
    let mut idle = std::process::Command::new(p.blue.bin.tool("psql"))
        .args(["-X", "-q", &p.blue.dsn_for(DB)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = idle.stdin.as_mut().unwrap();
        writeln!(stdin, "BEGIN; SELECT txid_current();").unwrap();
        stdin.flush().unwrap();
    }
    wait_for(
        "the idle transaction",
        std::time::Duration::from_secs(10),
        || {
            (p.blue
                .sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")
                .trim()
                == "1")
                .then_some(())
        },
    );

    let (code, checks) = p.check();
    let _ = idle.kill();
    let _ = idle.wait();
    assert_eq!(code, 1, "a database left out blocks");
    let u = failing(&checks, "uncovered_databases", "blue");
    let f = u["finding"].as_str().unwrap();
    assert!(
        f.contains("billing (1 table,") && f.contains(r#""Ünïcode ""db""" (1 table,"#),
        "{f}"
    );
    assert!(
        !f.contains("empty_one") && !f.contains("postgres"),
        "no user tables, nothing to lose: {f}"
    );
    assert_eq!(u["severity"], "blocking");

    let s = failing(&checks, "other_logical_slots", "blue");
    let f = s["finding"].as_str().unwrap();
    assert!(f.contains("debezium (test_decoding, inactive"), "{f}");
    assert!(!f.contains("pgcutover_slot"), "ours is not another: {f}");

    let w = failing(&checks, "unfenced_writers", "blue");
    let f = w["finding"].as_str().unwrap();
    assert!(f.contains("etl") && !f.contains("Weird"), "{f}");

    let x = failing(&checks, "open_transactions", "blue");
    let f = x["finding"].as_str().unwrap();
    assert!(f.contains("idle in transaction"), "{f}");

    let st = failing(&checks, "target_statistics", "green");
    let f = st["finding"].as_str().unwrap();
    assert!(f.contains("public.big ("), "{f}");

    // GREEN's copy of BLUE's slot is not reported as someone else's; GREEN has no other.
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "other_logical_slots" && c["side"] == "green" && c["ok"] == true),
        "{checks:#?}"
    );
}

#[test]
fn schema_diff_finds_drift() {
    let p = pair();
    p.blue.sql(
        r#"
ALTER TABLE "Ünïcode"."Order Items" ADD COLUMN "Note Text" text;
CREATE INDEX "Order Items qty" ON "Ünïcode"."Order Items" (qty);
ALTER TABLE items ALTER COLUMN note SET NOT NULL;
CREATE EXTENSION pg_trgm;
"#,
    );
    p.green.sql(
        r#"
CREATE SEQUENCE "Ünïcode".green_only_seq;
CREATE EXTENSION pg_trgm VERSION '1.5';
"#,
    );
    let st = p.status();
    let d = &st["schema_diff"];
    let objs = d["objects"].as_array().unwrap();
    let find = |status: &str, kind: &str, object: &str| {
        objs.iter()
            .find(|o| o["status"] == status && o["kind"] == kind && o["object"] == object)
            .unwrap_or_else(|| {
                panic!(
                    "no {status} {kind} {object} in {}",
                    serde_json::to_string_pretty(d).unwrap()
                )
            })
    };
    find(
        "only_blue",
        "column",
        r#""Ünïcode"."Order Items"."Note Text""#,
    );
    find(
        "only_blue",
        "index",
        r#""Ünïcode"."Order Items"."Order Items qty""#,
    );
    find("only_green", "sequence", r#""Ünïcode".green_only_seq"#);
    let ext = find("different", "extension", "pg_trgm");
    assert_eq!(
        (ext["blue"].as_str(), ext["green"].as_str()),
        (Some("1.6"), Some("1.5"))
    );
    let col = find("different", "column", "public.items.note");
    assert_eq!(
        (col["blue"].as_str(), col["green"].as_str()),
        (Some("text not null"), Some("text"))
    );
    assert_eq!(d["only_blue"], 2);
    assert_eq!(d["only_green"], 1);
    assert_eq!(d["different"], 2);
    assert_eq!(
        objs.len(),
        5,
        "nothing else differs: {}",
        serde_json::to_string_pretty(d).unwrap()
    );

    let seqs = st["sequences"].as_array().unwrap();
    let g = seqs
        .iter()
        .find(|s| s["sequence"] == r#""Ünïcode".green_only_seq"#)
        .unwrap();
    assert_eq!(g["only_on"], "green");

    let (_, checks) = p.check();
    let ev = failing(&checks, "extension_versions", "green");
    assert!(
        ev["finding"]
            .as_str()
            .unwrap()
            .contains("pg_trgm 1.6 on BLUE, 1.5 on GREEN")
    );
}

#[test]
fn sequences_show_the_gap_the_cutover_must_close() {
    let p = pair();
    p.blue
        .sql(r#"INSERT INTO "Ünïcode"."Order Items" (qty) SELECT 1 FROM generate_series(1, 37)"#);
    let st = p.status();
    let oi = st["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sequence"] == r#""Ünïcode"."Order Items_id_seq""#)
        .unwrap()
        .clone();
    assert_eq!(
        (
            oi["blue"].as_i64(),
            oi["green"].as_i64(),
            oi["difference"].as_i64()
        ),
        (Some(42), Some(5), Some(37))
    );
}

/// `analyze`: GREEN's tables without planner statistics get them, largest first, on
/// `[analyze] jobs` connections; the check that warned is then silent, and a rerun has nothing
/// to do.
#[test]
fn analyze_gives_green_its_missing_statistics_largest_first() {
    let p = pair();
    p.green.sql(
        r#"
CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
ANALYZE big;
DELETE FROM pg_statistic WHERE starelid = 'big'::regclass;
CREATE TABLE "Ünïcode"."small ""one""" (id int) WITH (autovacuum_enabled = false);
INSERT INTO "Ünïcode"."small ""one""" SELECT generate_series(1, 10);
CREATE TABLE never_filled (id int);
"#,
    );
    let (_, checks) = p.check();
    failing(&checks, "target_statistics", "green");
    let pgc = |args: &[&str]| {
        run(pgcutover(p.home.path())
            .arg("--config")
            .arg(&p.cfg)
            .args(args))
    };
    let plan = pgc(&["plan", "analyze", "--json"]).json();
    let sql: Vec<String> = plan["steps"][0]["sql"]
        .as_array()
        .unwrap_or_else(|| panic!("{plan:#}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let at = |t: &str| {
        sql.iter()
            .position(|s| s == &format!("ANALYZE {t}"))
            .unwrap_or_else(|| panic!("{t} in {sql:#?}"))
    };
    assert!(
        at("public.big") < at(r#""Ünïcode"."small ""one""""#),
        "largest first: {sql:#?}"
    );
    at("public.never_filled");
    assert!(
        sql.iter().any(|s| s.contains("SET statement_timeout = 0")),
        "{sql:#?}"
    );

    let r = pgc(&["run", "analyze", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["outcome"], "done", "{v:#}");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("with 2 connection(s)"),
        "{v:#}"
    );
    let has = |t: &str| {
        p.green
            .sql(&format!(
                "SELECT count(*) > 0 FROM pg_stats WHERE tablename = '{t}'"
            ))
            .trim()
            == "t"
    };
    assert!(has("big") && has("small \"one\""));
    // the empty table was analyzed too: found empty, it is not listed again
    let again = pgc(&["run", "analyze", "--yes", "--json"]).json();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");
    let (_, checks) = p.check();
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "target_statistics" && c["side"] == "green" && c["ok"] == true),
        "{checks:#?}"
    );
}

/// pg_cron runs in its own database (`cron.database_name`), not the DSN's: its jobs are still
/// counted, there, and the finding says where.
#[test]
fn pg_cron_jobs_are_counted_in_pg_cron_s_own_database() {
    let mut p = pair();
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(p.blue.data.join("postgresql.conf"))
            .and_then(|mut f| {
                f.write_all(
                    b"\nshared_preload_libraries = 'pg_cron'\ncron.database_name = 'cron home'\n",
                )
            })
            .unwrap();
    }
    p.blue.restart();
    p.blue.sql(r#"CREATE DATABASE "cron home""#);
    for q in [
        "CREATE EXTENSION pg_cron",
        // yearly: no job runs during the test
        "SELECT cron.schedule('nightly', '0 0 1 1 *', 'SELECT 1')",
        "SELECT cron.schedule('off', '0 0 1 1 *', 'SELECT 2')",
        "UPDATE cron.job SET active = false WHERE jobname = 'off'",
    ] {
        p.blue.try_sql_db("cron home", q).unwrap();
    }
    let (_, checks) = p.check();
    let c = checks
        .iter()
        .find(|c| c["id"] == "pg_cron" && c["side"] == "blue" && c["ok"] == false)
        .unwrap_or_else(|| panic!("no pg_cron finding: {checks:#?}"));
    let f = c["finding"].as_str().unwrap();
    assert!(
        f.contains(r#"1 active pg_cron job(s) in database "cron home""#),
        "{f}"
    );
    // GREEN has no pg_cron loaded: nothing to say of it
    assert!(
        !checks
            .iter()
            .any(|c| c["id"] == "pg_cron" && c["side"] == "green" && c["ok"] == false),
        "{checks:#?}"
    );
}
