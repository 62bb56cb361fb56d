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
