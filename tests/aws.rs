//! The AWS layer end to end against moto's server on loopback, with real PostgreSQL clusters:
//! the redo LSN read from CloudWatch Logs through the real SDK path (GREEN's own server log,
//! rewritten with the RDS prefix, beside an older attempt's lines and a later restart's), then
//! `start` from it, lossless; the RDS facts in `status --json`; the snapshot and restore actions.
#![allow(clippy::unwrap_used, unsafe_code, clippy::pedantic)] // a test harness: a failed setup should stop the test loudly; pedantic style is for the product

mod common;

use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use common::migration::{Copy, Mig};
use common::moto::{Moto, REGION};

/// `2026-11-21 07:40:00.123 UTC [123] LOG:  text` → (unix ms, `2026-11-21 07:40:00 UTC::@:[123]:LOG:  text`).
fn as_rds_line(line: &str, last_ms: i64) -> (i64, String) {
    let parsed = (|| {
        let (stamp, rest) = line.split_at_checked(19)?;
        let t = time::PrimitiveDateTime::parse(
            stamp,
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        )
        .ok()?
        .assume_utc();
        let rest = rest
            .strip_prefix('.')
            .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
        let frac: i64 = line[19..]
            .strip_prefix('.')
            .map(|r| {
                r.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| format!("{d:0<3}")[..3].parse().ok())
            .unwrap_or(0);
        let rest = rest.strip_prefix(" UTC [")?;
        let (pid, msg) = rest.split_once("] ")?;
        let (level, text) = msg.split_once(":  ")?;
        Some((
            t.unix_timestamp() * 1000 + frac,
            format!("{stamp} UTC::@:[{pid}]:{level}:  {text}"),
        ))
    })();
    parsed.unwrap_or((last_ms, line.to_string()))
}

fn stamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap()
}

fn first_redo(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("redo done at "))
        .unwrap_or_else(|| panic!("GREEN logged no redo line:\n{log}"));
    let after = &line[line.find("redo done at ").unwrap() + 13..];
    after.split_whitespace().next().unwrap().to_string()
}

fn plus_one(lsn: &str) -> String {
    let (hi, lo) = lsn.split_once('/').unwrap();
    let v = (u64::from_str_radix(hi, 16).unwrap() << 32) + u64::from_str_radix(lo, 16).unwrap() + 1;
    format!("{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF)
}

async fn create_instance(rds: &aws_sdk_rds::Client, id: &str, version: &str, exports: bool) -> i64 {
    let mut req = rds
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .engine_version(version)
        .db_instance_class("db.r6g.large")
        .allocated_storage(100)
        .multi_az(true)
        .master_username("admin")
        .master_user_password("not-a-real-password");
    if exports {
        req = req.enable_cloudwatch_logs_exports("postgresql");
    }
    req.send().await.unwrap();
    let d = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    let t = d.db_instances()[0].instance_create_time().unwrap();
    t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
}

/// Put lines into GREEN's log group, oldest first, as RDS does.
async fn put_log(logs: &aws_sdk_cloudwatchlogs::Client, lines: &[(i64, String)]) {
    let group = "/aws/rds/instance/green/postgresql";
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name("green")
        .send()
        .await;
    let mut sorted = lines.to_vec();
    sorted.sort_by_key(|(t, _)| *t);
    for chunk in sorted.chunks(500) {
        logs.put_log_events()
            .log_group_name(group)
            .log_stream_name("green")
            .set_log_events(Some(
                chunk
                    .iter()
                    .map(|(t, m)| {
                        InputLogEvent::builder()
                            .timestamp(*t)
                            .message(m)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
    }
}

fn aws_config(
    m: &Mig,
    base: &std::path::Path,
    moto: &Moto,
    green_id: &str,
    slot: Option<&str>,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(base).unwrap();
    let redo_at = text.find("[redo]").unwrap();
    let mut text = text[..redo_at]
        .replace("[blue]\n", "[blue]\nrds_instance = \"blue\"\n")
        .replace(
            "[green]\n",
            &format!("[green]\nrds_instance = \"{green_id}\"\n"),
        );
    text.push_str(&format!(
        "[redo]\nsource = \"cloudwatch\"\n[aws]\nregion = \"{REGION}\"\nendpoint_url = \"{}\"\nsnapshot = \"pgcutover-mig\"\nengine_version = \"17.2\"\ntimeout_s = 10\npoll_interval_s = 0.1\n",
        moto.url
    ));
    if let Some(s) = slot {
        text.push_str(&format!("[replication]\nslot = \"{s}\"\n"));
    }
    let p = m
        .home
        .path()
        .join(format!("aws-{green_id}-{}.toml", slot.unwrap_or("")));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn redo_from_cloudwatch_then_start_and_rds_actions_on_moto() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sdk = rt.block_on(moto.sdk());
    let rds = aws_sdk_rds::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    rt.block_on(create_instance(&rds, "blue", "15.8", false));
    let green_created = rt.block_on(create_instance(&rds, "green", "17.2", true));
    // Log lines carry whole seconds: let the restore's lines start after the creation time.
    std::thread::sleep(Duration::from_millis(1100));

    let mut m = Mig::subscribed(Copy::CrashConsistent, "");
    let log = m.green.log_text();
    let redo = first_redo(&log);
    let origin = plus_one(&redo);

    // An earlier attempt under the same instance name, two hours before GREEN was created …
    let old = green_created - 2 * 3600 * 1000;
    let mut lines = vec![
        (
            old,
            format!("{} UTC::@:[77]:LOG:  redo starts at 0/1000028", stamp(old)),
        ),
        (
            old + 1000,
            format!(
                "{} UTC::@:[77]:LOG:  redo done at 0/1FFFFF0 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.01 s",
                stamp(old + 1000)
            ),
        ),
    ];
    // … GREEN's own log, as RDS would export it …
    let mut last = green_created;
    for l in log.lines() {
        let (t, text) = as_rds_line(l, last);
        last = t;
        lines.push((t, text));
    }
    // … and a later restart of GREEN.
    let later = last + 60_000;
    lines.push((
        later,
        format!(
            "{} UTC::@:[99]:LOG:  redo done at 7/7777770 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.01 s",
            stamp(later)
        ),
    ));
    rt.block_on(put_log(&logs, &lines));

    let base = m.cfg.clone();
    m.cfg = aws_config(&m, &base, &moto, "green", None);
    m.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
    ];

    // status shows the restore's line, its source, the origin and the verdict.
    let v = m.status();
    let r = &v["redo"];
    assert_eq!(r["found"]["line"]["redo_lsn"], redo.as_str(), "{r:#}");
    assert_eq!(r["origin_lsn"], origin.as_str(), "{r:#}");
    assert_eq!(r["cross_check_ok"], true, "{r:#}");
    assert!(
        r["found"]["source"]
            .as_str()
            .unwrap()
            .contains("CloudWatch Logs /aws/rds/instance/green/postgresql"),
        "{r:#}"
    );
    assert!(r["found"]["line"]["time"].is_string(), "{r:#}");
    let blue_rds = &v["sides"]["blue"]["rds"]["instance"];
    assert_eq!(blue_rds["status"], "available", "{v:#}");
    assert_eq!(blue_rds["engine_version"], "15.8");
    assert_eq!(
        v["sides"]["green"]["rds"]["instance"]["log_exports"][0],
        "postgresql"
    );
    assert!(v["sides"]["green"]["rds"]["instance"]["create_time"].is_string());
    // moto answers no CloudWatch metrics call: shown as an error of that part, not fatal.
    assert!(v["sides"]["blue"]["metrics"].is_object(), "{v:#}");
    assert_eq!(v["phase"], "subscribed");
    let text = m.pgc(&["status"]);
    assert!(
        text.stdout.contains("RDS blue: available"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("origin {origin}")),
        "{}",
        text.stdout
    );

    // start takes the same line through the same path, and replication is lossless.
    let plan = m.pgc(&["plan", "start"]);
    assert!(plan.stdout.contains("CloudWatch Logs"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&origin), "{}", plan.stdout);
    let r = m.pgc(&["run", "start", "--yes"]);
    assert_eq!(r.code, 0, "start: {}\n{}", r.stdout, r.stderr);
    m.wait_phase("replicating");
    m.assert_lossless("blue", false);

    // The snapshot needs the slot first: with another slot name the guard refuses.
    let no_slot = aws_config(&m, &base, &moto, "green", Some("not_prepared_slot"));
    let r = m.pgc_with(&no_slot, &["run", "snapshot", "--yes"]);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("run prepare first"), "{}", r.stdout);

    let r = m.pgc(&["run", "snapshot", "--yes"]);
    assert_eq!(r.code, 0, "snapshot: {}\n{}", r.stdout, r.stderr);
    let snaps = rt
        .block_on(
            rds.describe_db_snapshots()
                .db_snapshot_identifier("pgcutover-mig")
                .send(),
        )
        .unwrap();
    assert_eq!(
        snaps.db_snapshots()[0].db_instance_identifier(),
        Some("blue")
    );
    // A second press does nothing.
    let r = m.pgc(&["run", "snapshot", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("already exists and is available"),
        "{}",
        r.stdout
    );
    let journal = std::fs::read_to_string(&m.journal).unwrap();
    assert_eq!(
        journal
            .matches("CreateDBSnapshot DBInstanceIdentifier=blue")
            .count(),
        2,
        "one call, journaled at start and as sent"
    );

    // Restore as a new GREEN copies BLUE's class and Multi-AZ and turns on the log exports.
    // (moto keeps the snapshot at BLUE's engine version: ModifyDBSnapshot is not in moto, so the
    // upgrade guard is satisfied by configuring the version the snapshot has.)
    let restore_cfg = aws_config(&m, &base, &moto, "green-restored", None);
    let text = std::fs::read_to_string(&restore_cfg)
        .unwrap()
        .replace("engine_version = \"17.2\"", "engine_version = \"15.8\"");
    std::fs::write(&restore_cfg, text).unwrap();
    let r = m.pgc_with(&restore_cfg, &["plan", "restore"]);
    assert!(
        r.stdout.contains("RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier=green-restored DBSnapshotIdentifier=pgcutover-mig DBInstanceClass=db.r6g.large MultiAZ=true"),
        "{}",
        r.stdout
    );
    let r = m.pgc_with(&restore_cfg, &["run", "restore", "--yes"]);
    assert_eq!(r.code, 0, "restore: {}\n{}", r.stdout, r.stderr);
    let d = rt
        .block_on(
            rds.describe_db_instances()
                .db_instance_identifier("green-restored")
                .send(),
        )
        .unwrap();
    let g = &d.db_instances()[0];
    assert_eq!(g.db_instance_class(), Some("db.r6g.large"));
    assert_eq!(g.multi_az(), Some(true));
    assert_eq!(g.db_instance_status(), Some("available"));
    let r = m.pgc_with(&restore_cfg, &["run", "restore", "--yes"]);
    assert!(
        r.stdout.contains("already exists and is available"),
        "{}",
        r.stdout
    );
}
