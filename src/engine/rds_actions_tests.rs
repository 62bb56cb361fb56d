//! The RDS actions against the SDK's own mock layer, for what moto cannot emulate:
//! ModifyDBSnapshot with `upgrading → available`.

use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::modify_db_snapshot::ModifyDbSnapshotOutput;
use aws_sdk_rds::types::DbSnapshot;
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use crate::aws::Aws;

fn settings() -> crate::config::Settings {
    crate::config::from_str(
        r#"
[blue]
dsn = "host=127.0.0.1 port=1 dbname=app user=admin"
rds_instance = "blue"
[green]
dsn = "host=127.0.0.1 port=2 dbname=app user=admin"
rds_instance = "green"
[aws]
region = "eu-west-1"
snapshot = "mig"
engine_version = "17.2"
poll_interval_s = 0.05
"#,
        None,
        &Default::default(),
    )
    .unwrap()
}

fn snap(status: &str, version: &str, pct: i32) -> DescribeDbSnapshotsOutput {
    DescribeDbSnapshotsOutput::builder()
        .db_snapshots(
            DbSnapshot::builder()
                .db_snapshot_identifier("mig")
                .db_instance_identifier("blue")
                .status(status)
                .engine_version(version)
                .percent_progress(pct)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn upgrade_snapshot_calls_once_then_polls_until_available_at_the_target() {
    let modify = mock!(aws_sdk_rds::Client::modify_db_snapshot)
        .match_requests(|r| {
            r.engine_version() == Some("17.2") && r.db_snapshot_identifier() == Some("mig")
        })
        .then_output(|| ModifyDbSnapshotOutput::builder().build());
    let polls = mock!(aws_sdk_rds::Client::describe_db_snapshots)
        .sequence()
        .output(|| snap("upgrading", "15.8", 100))
        .times(2)
        .output(|| snap("available", "17.2", 100))
        .build();
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&modify, &polls]);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let aws = Aws {
        rds,
        ..Aws::from_sdk(sdk)
    };
    let s = settings();
    let facts = crate::domain::rds_plan::RdsFacts {
        blue_id: Some("blue".into()),
        green_id: Some("green".into()),
        snapshot_id: Some("mig".into()),
        engine_version: Some("17.2".into()),
        blue: Ok(None),
        green: Ok(None),
        snapshot: Ok(None),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut journal =
        crate::engine::journal::Journal::open(&dir.path().join("j.jsonl"), "upgrade-snapshot")
            .unwrap();
    let mut notes = Vec::new();
    let mut on_event = |e: &crate::engine::Event| {
        if let crate::engine::Event::Note { text } = e {
            notes.push(text.clone());
        }
    };
    let ctx = crate::engine::Ctx::new(&mut journal, &mut on_event);
    let out = super::run(
        crate::domain::rds_plan::RdsAction::UpgradeSnapshot,
        &aws,
        &s,
        &facts,
        &crate::domain::rds_plan::Decision::Call,
        &ctx,
    )
    .await
    .unwrap();
    assert!(
        matches!(out, crate::engine::Outcome::Done { .. }),
        "{out:?}"
    );
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(polls.num_calls(), 3);
    assert_eq!(
        notes,
        vec![
            "snapshot mig: upgrading 100%, engine 15.8".to_string(),
            "snapshot mig: available 100%, engine 17.2".to_string()
        ]
    );
    let j = std::fs::read_to_string(dir.path().join("j.jsonl")).unwrap();
    assert!(
        j.contains("ModifyDBSnapshot DBSnapshotIdentifier=mig EngineVersion=17.2"),
        "{j}"
    );
}
