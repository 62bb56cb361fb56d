//! Every phase, produced by SQL on real clusters, is reported by `status --json`: 15→15 and 15→18.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn status(home: &std::path::Path, cfg: &std::path::Path) -> Value {
    let r = run(pgcutover(home)
        .arg("--config")
        .arg(cfg)
        .args(["status", "--json"]));
    assert_eq!(r.code, 0, "status failed: {}\n{}", r.stderr, r.stdout);
    r.json()
}

/// The migration's slot in a `status --json` answer.
fn our_slot(v: &Value) -> &Value {
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ours"] == true)
        .unwrap()
}

fn alarm_ids(v: &Value) -> Vec<String> {
    v["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_phase(
    home: &std::path::Path,
    cfg: &std::path::Path,
    phase: &str,
    writable: &[&str],
) -> Value {
    let v = status(home, cfg);
    assert_eq!(
        v["phase"],
        phase,
        "{}",
        serde_json::to_string_pretty(&v).unwrap()
    );
    let w: Vec<&str> = v["writable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(w, writable, "writable sides in phase {phase}");
    v
}

fn connstr(c: &Cluster) -> String {
    format!("host=127.0.0.1 port={} dbname={DB} user=postgres", c.port)
}

fn create_sub(on: &Cluster, from: &Cluster, enabled: bool) {
    on.sql(&format!(
        "CREATE SUBSCRIPTION pgcutover_sub CONNECTION '{}' PUBLICATION pgcutover_pub \
         WITH (copy_data = false, create_slot = false, enabled = {enabled}, connect = true, slot_name = 'pgcutover_sub_slot_placeholder')",
        connstr(from)
    ).replace("pgcutover_sub_slot_placeholder", "pgcutover_slot"));
}

fn drop_sub(on: &Cluster) {
    on.sql("ALTER SUBSCRIPTION pgcutover_sub DISABLE");
    on.sql("ALTER SUBSCRIPTION pgcutover_sub SET (slot_name = NONE)");
    on.sql("DROP SUBSCRIPTION pgcutover_sub");
}

fn wait_streaming(on: &Cluster) {
    wait_for("the apply worker", Duration::from_secs(30), || {
        (on.sql("SELECT count(*) FROM pg_stat_subscription WHERE subname = 'pgcutover_sub' AND pid IS NOT NULL") == "1")
            .then_some(())
    });
}

fn login(c: &Cluster, yes: bool) {
    c.sql(&format!(
        "ALTER ROLE app {}",
        if yes { "LOGIN" } else { "NOLOGIN" }
    ));
}

/// Walk setup → prepared → subscribed → replicating → cut over → rolled back → cut over →
/// finalized by hand, checking what `status` says at each point.
fn walk(blue: &mut Cluster, green: &mut Cluster, green_version_prefix: &str) {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), blue, green, &["app"], "");

    // GREEN is a copy of BLUE: the app role can log in on both.
    let v = status(home.path(), &cfg);
    assert!(alarm_ids(&v).contains(&"split_brain".to_string()), "{v}");
    assert_eq!(v["sides"]["blue"]["reachable"], true);
    assert!(
        v["sides"]["green"]["version"]
            .as_str()
            .unwrap()
            .starts_with(green_version_prefix)
    );
    assert!(
        v["sides"]["blue"]["current_lsn"]
            .as_str()
            .unwrap()
            .contains('/')
    );

    login(green, false);
    let v = assert_phase(home.path(), &cfg, "setup", &["blue"]);
    assert!(alarm_ids(&v).is_empty(), "{v}");

    blue.sql("CREATE PUBLICATION pgcutover_pub FOR ALL TABLES");
    blue.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    let v = assert_phase(home.path(), &cfg, "prepared", &["blue"]);
    assert_eq!(v["direction"], "blue->green");
    let slot = our_slot(&v);
    assert_eq!(slot["side"], "blue");
    assert!(slot["lag_bytes"].as_u64().is_some());

    if green
        .try_sql("SELECT 1 FROM pg_publication WHERE pubname = 'pgcutover_pub'")
        .unwrap()
        != "1"
    {
        green.sql("CREATE PUBLICATION pgcutover_pub FOR ALL TABLES");
    }
    create_sub(green, blue, false);
    assert_phase(home.path(), &cfg, "subscribed", &["blue"]);

    green.sql("ALTER SUBSCRIPTION pgcutover_sub ENABLE");
    wait_streaming(green);
    blue.sql("INSERT INTO items (note) SELECT 'x' FROM generate_series(1, 10)");
    let v = assert_phase(home.path(), &cfg, "replicating", &["blue"]);
    let sub = &v["subscriptions"].as_array().unwrap()[0];
    assert_eq!(
        (sub["side"].as_str(), sub["enabled"].as_bool()),
        (Some("green"), Some(true))
    );
    assert!(sub["worker_pid"].as_i64().is_some());
    // Lag in seconds is the walsender's own figure, read from pg_stat_replication.
    let slot = our_slot(&v);
    assert_eq!(slot["sender"]["state"], "streaming", "{slot}");
    assert!(slot["sender"]["reply_age_s"].as_f64().is_some(), "{slot}");
    let t = slot["lag_time"].as_str().unwrap();
    assert!(t == "caught up" || t.ends_with(" s"), "{t}");
    assert!(slot["lag_seconds"].as_f64().is_some(), "{slot}");

    // cut over by hand: fence BLUE (both fenced for a moment), reverse the path, unfence GREEN
    login(blue, false);
    let v = status(home.path(), &cfg);
    assert!(alarm_ids(&v).contains(&"fenced".to_string()), "{v}");
    drop_sub(green);
    blue.sql("SELECT pg_drop_replication_slot('pgcutover_slot')");
    green.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    create_sub(blue, green, true);
    login(green, true);
    let v = assert_phase(home.path(), &cfg, "cut_over", &["green"]);
    assert_eq!(v["direction"], "green->blue");

    // roll back by hand; the engine marks the subscription it creates
    login(green, false);
    drop_sub(blue);
    green.sql("SELECT pg_drop_replication_slot('pgcutover_slot')");
    blue.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    create_sub(green, blue, true);
    green.sql(
        "COMMENT ON SUBSCRIPTION pgcutover_sub IS 'pgcutover: rolled back at 2026-11-21T10:00:00Z'",
    );
    login(blue, true);
    let v = assert_phase(home.path(), &cfg, "rolled_back", &["blue"]);
    assert_eq!(v["direction"], "blue->green");

    // cut over again, then finalize: drop the reverse path
    login(blue, false);
    drop_sub(green);
    blue.sql("SELECT pg_drop_replication_slot('pgcutover_slot')");
    green.sql("SELECT pg_create_logical_replication_slot('pgcutover_slot', 'pgoutput')");
    create_sub(blue, green, true);
    login(green, true);
    assert_phase(home.path(), &cfg, "cut_over", &["green"]);
    drop_sub(blue);
    green.sql("SELECT pg_drop_replication_slot('pgcutover_slot')");
    let v = assert_phase(home.path(), &cfg, "finalized", &["green"]);
    assert_eq!(v["direction"], Value::Null);
    assert!(alarm_ids(&v).is_empty(), "{v}");
}

fn seed(blue: &Cluster) {
    blue.sql("CREATE ROLE app LOGIN");
    blue.sql("CREATE TABLE items (id bigserial PRIMARY KEY, note text)");
    blue.sql("GRANT ALL ON items, items_id_seq TO app");
    blue.sql("INSERT INTO items (note) VALUES ('a'), ('b')");
}

#[test]
fn phases_15_to_15() {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    seed(&blue);
    let mut green = blue.basebackup("green");
    walk(&mut blue, &mut green, "15.");
}

#[test]
fn phases_15_to_18() {
    let mut blue = Cluster::new("blue", &Bin::pg15());
    seed(&blue);
    let green15 = blue.crash_copy("green");
    assert!(
        green15.log_text().contains("redo done at"),
        "{}",
        green15.log_text()
    );
    let mut green = green15.upgrade(&Bin::pg18());
    walk(&mut blue, &mut green, "18.");
}
