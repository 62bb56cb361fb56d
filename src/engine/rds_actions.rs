//! The RDS actions: CreateDBSnapshot, ModifyDBSnapshot (engine upgrade) and
//! RestoreDBInstanceFromDBSnapshot, each followed by polling Describe* until RDS says done.
//! (The SDK's waiters sleep at least 30 s between polls; the operator wants to see progress.)

use std::time::Duration;

use color_eyre::eyre::{Result, bail};

use super::journal::Record;
use super::{Ctx, Outcome, PlanStep};
use crate::aws::{Aws, explain, rds};
use crate::config::Settings;
use crate::domain::observed::Side;
use crate::domain::rds_plan::{Decision, RdsAction, RdsFacts, RestoreParams, restore_params};
use crate::domain::step::StepId;

/// Read what the guards need, concurrently.
pub async fn facts(aws: &Aws, settings: &Settings) -> RdsFacts {
    let a = settings.aws.as_ref();
    let snapshot_id = a.and_then(|a| a.snapshot.clone());
    let blue_id = settings.blue.rds_instance.clone();
    let green_id = settings.green.rds_instance.clone();
    let inst = |id: Option<String>| async move {
        match id {
            Some(id) => rds::instance(&aws.rds, &id).await,
            None => Ok(None),
        }
    };
    let snap = async {
        match &snapshot_id {
            Some(id) => rds::snapshot(&aws.rds, id).await,
            None => Ok(None),
        }
    };
    let (blue, green, snapshot) = tokio::join!(inst(blue_id.clone()), inst(green_id.clone()), snap);
    RdsFacts {
        blue_id,
        green_id,
        snapshot_id,
        engine_version: a.and_then(|a| a.engine_version.clone()),
        blue,
        green,
        snapshot,
    }
}

/// The call as shown in the plan and the journal.
pub fn call_text(action: RdsAction, facts: &RdsFacts, params: Option<&RestoreParams>) -> String {
    let snap = facts.snapshot_id.as_deref().unwrap_or("?");
    match action {
        RdsAction::Snapshot => format!(
            "CreateDBSnapshot DBInstanceIdentifier={} DBSnapshotIdentifier={snap}",
            facts.blue_id.as_deref().unwrap_or("?")
        ),
        RdsAction::UpgradeSnapshot => format!(
            "ModifyDBSnapshot DBSnapshotIdentifier={snap} EngineVersion={}",
            facts.engine_version.as_deref().unwrap_or("?")
        ),
        RdsAction::Restore => {
            let mut s = format!(
                "RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier={} DBSnapshotIdentifier={snap}",
                facts.green_id.as_deref().unwrap_or("?")
            );
            if let Some(p) = params {
                if let Some(c) = &p.instance_class {
                    s.push_str(&format!(" DBInstanceClass={c}"));
                }
                s.push_str(&format!(" MultiAZ={}", p.multi_az));
                if let Some(g) = &p.subnet_group {
                    s.push_str(&format!(" DBSubnetGroupName={g}"));
                }
                if !p.security_groups.is_empty() {
                    s.push_str(&format!(
                        " VpcSecurityGroupIds={}",
                        p.security_groups.join(",")
                    ));
                }
                if let Some(g) = &p.parameter_group {
                    s.push_str(&format!(" DBParameterGroupName={g}"));
                }
            }
            s.push_str(" EnableCloudwatchLogsExports=postgresql,upgrade");
            s
        }
    }
}

fn side_of(action: RdsAction) -> Side {
    match action {
        RdsAction::Snapshot | RdsAction::UpgradeSnapshot => Side::Blue,
        RdsAction::Restore => Side::Green,
    }
}

fn params(settings: &Settings, facts: &RdsFacts) -> Option<RestoreParams> {
    let blue = facts.blue.as_ref().ok()?.as_ref()?;
    let conf = settings
        .aws
        .as_ref()
        .map(|a| a.restore.clone())
        .unwrap_or_default();
    Some(restore_params(&conf, blue))
}

/// The step that makes the RDS call.
fn call_step(action: RdsAction) -> StepId {
    match action {
        RdsAction::Snapshot => StepId::SnapshotCall,
        RdsAction::UpgradeSnapshot => StepId::UpgradeSnapshotCall,
        RdsAction::Restore => StepId::RestoreCall,
    }
}

/// The plan's steps and notes for a decision.
pub fn plan(
    action: RdsAction,
    settings: &Settings,
    facts: &RdsFacts,
    decision: &Decision,
) -> (Vec<PlanStep>, Vec<String>) {
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let wait = PlanStep {
        step: StepId::RdsWait,
        title: "poll Describe* until RDS reports it available".into(),
        side: side_of(action),
        sql: vec![match action {
            RdsAction::Restore => format!(
                "DescribeDBInstances DBInstanceIdentifier={} (every {:?})",
                facts.green_id.as_deref().unwrap_or("?"),
                poll_every(settings)
            ),
            _ => format!(
                "DescribeDBSnapshots DBSnapshotIdentifier={} (every {:?})",
                facts.snapshot_id.as_deref().unwrap_or("?"),
                poll_every(settings)
            ),
        }],
        window: None,
        db: None,
    };
    match decision {
        Decision::Done(why) => notes.push(format!("nothing to do: {why}")),
        Decision::Wait => {
            notes.push("a previous run's call is in progress: this run only waits for it".into());
            steps.push(wait);
        }
        Decision::Call => {
            let p = params(settings, facts);
            steps.push(PlanStep {
                step: call_step(action),
                title: match action {
                    RdsAction::Snapshot => "snapshot BLUE (after the slot exists)".into(),
                    RdsAction::UpgradeSnapshot => "upgrade the snapshot's engine version".into(),
                    RdsAction::Restore => "restore the snapshot as GREEN".into(),
                },
                side: side_of(action),
                sql: vec![call_text(action, facts, p.as_ref())],
                window: None,
                db: None,
            });
            steps.push(wait);
            if action == RdsAction::Restore {
                if p.as_ref().is_some_and(|p| p.parameter_group.is_some())
                    && settings
                        .aws
                        .as_ref()
                        .is_some_and(|a| a.restore.parameter_group.is_none())
                {
                    notes.push(
                        "the parameter group is BLUE's; if RDS refuses it for the new version's family, set \
                         [restore] parameter_group to a group of that family (with rds.logical_replication = 1)"
                            .into(),
                    );
                }
                notes.push(
                    "GREEN starts with BLUE's roles and app logins from the snapshot: fence it (subscribe does) \
                     before the app can find it"
                        .into(),
                );
            }
        }
    }
    (steps, notes)
}

fn poll_every(settings: &Settings) -> Duration {
    settings
        .aws
        .as_ref()
        .map_or(Duration::from_secs(10), |a| a.poll_interval)
}

/// Make the call (unless waiting on an earlier one), then poll until done.
pub async fn run(
    action: RdsAction,
    aws: &Aws,
    settings: &Settings,
    facts: &RdsFacts,
    decision: &Decision,
    ctx: &Ctx<'_>,
) -> Result<Outcome> {
    let side = side_of(action);
    if let Decision::Done(why) = decision {
        return Ok(Outcome::NothingToDo {
            summary: why.clone(),
        });
    }
    if *decision == Decision::Call {
        let p = params(settings, facts);
        let text = call_text(action, facts, p.as_ref());
        let t0 = ctx.begin(call_step(action), &text, Some(side))?;
        let result = send(action, aws, facts, p).await;
        ctx.journal().write(Record {
            event: "call",
            step: Some(action.name()),
            side: Some(side),
            sql: Some(&text),
            ok: Some(result.is_ok()),
            error: result.as_ref().err().map(String::as_str),
            ms: Some(t0.elapsed().as_secs_f64() * 1000.0),
            ..Default::default()
        })?;
        if let Err(e) = result {
            return Ok(Outcome::FailedSafe {
                error: e,
                state: "RDS refused the call; nothing was changed".into(),
            });
        }
        ctx.end(call_step(action), t0, "accepted by RDS")?;
    }
    let t0 = ctx.begin(StepId::RdsWait, "waiting for RDS", Some(side))?;
    let timeout = settings
        .aws
        .as_ref()
        .map_or(Duration::from_hours(4), |a| a.action_timeout);
    let wait = super::Wait::new(timeout, poll_every(settings));
    let mut last = String::new();
    loop {
        let (done, status) = poll_once(action, aws, facts).await?;
        if status != last {
            ctx.note(status.clone())?;
            last = status;
        }
        if done {
            break;
        }
        if !wait.again().await {
            bail!(
                "RDS did not finish within {} min ({last}); it may still be working: rerun the action to keep waiting",
                timeout.as_secs() / 60
            );
        }
    }
    ctx.end(StepId::RdsWait, t0, &last)?;
    Ok(Outcome::Done {
        summary: last,
        window_ms: None,
        held_ms: None,
        steps: ctx.steps(),
    })
}

/// The one RDS call of the action; an error is RDS's answer, explained.
async fn send(
    action: RdsAction,
    aws: &Aws,
    facts: &RdsFacts,
    p: Option<RestoreParams>,
) -> std::result::Result<(), String> {
    let snap = facts.snapshot_id.clone().unwrap_or_default();
    match action {
        RdsAction::Snapshot => aws
            .rds
            .create_db_snapshot()
            .db_instance_identifier(facts.blue_id.clone().unwrap_or_default())
            .db_snapshot_identifier(&snap)
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("created-by")
                    .value("pgcutover")
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| explain("CreateDBSnapshot", &e)),
        RdsAction::UpgradeSnapshot => aws
            .rds
            .modify_db_snapshot()
            .db_snapshot_identifier(&snap)
            .engine_version(facts.engine_version.clone().unwrap_or_default())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| explain("ModifyDBSnapshot", &e)),
        RdsAction::Restore => {
            let p = p.unwrap_or(RestoreParams {
                instance_class: None,
                multi_az: false,
                subnet_group: None,
                security_groups: vec![],
                parameter_group: None,
            });
            aws.rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(facts.green_id.clone().unwrap_or_default())
                .db_snapshot_identifier(&snap)
                .set_db_instance_class(p.instance_class)
                .multi_az(p.multi_az)
                .set_db_subnet_group_name(p.subnet_group)
                .set_vpc_security_group_ids(
                    (!p.security_groups.is_empty()).then_some(p.security_groups),
                )
                .set_db_parameter_group_name(p.parameter_group)
                .enable_cloudwatch_logs_exports("postgresql")
                .enable_cloudwatch_logs_exports("upgrade")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| explain("RestoreDBInstanceFromDBSnapshot", &e))
        }
    }
}

/// One look at what the action waits for: finished or not, and its status in words. A failed
/// poll is retried; a state RDS does not leave is an error.
async fn poll_once(action: RdsAction, aws: &Aws, facts: &RdsFacts) -> Result<(bool, String)> {
    let snap = facts.snapshot_id.clone().unwrap_or_default();
    Ok(match action {
        RdsAction::Snapshot | RdsAction::UpgradeSnapshot => {
            match rds::snapshot(&aws.rds, &snap).await {
                Ok(Some(s)) => {
                    let at_target =
                        action == RdsAction::Snapshot || s.engine_version == facts.engine_version;
                    let st = format!(
                        "snapshot {snap}: {}{}{}",
                        s.status,
                        s.percent_progress
                            .map(|p| format!(" {p}%"))
                            .unwrap_or_default(),
                        s.engine_version
                            .map(|v| format!(", engine {v}"))
                            .unwrap_or_default()
                    );
                    if matches!(
                        s.status.as_str(),
                        "failed" | "deleted" | "incompatible-restore"
                    ) {
                        bail!("{st}: RDS gave up; see DescribeEvents for the snapshot");
                    }
                    (s.status == "available" && at_target, st)
                }
                Ok(None) => (false, format!("snapshot {snap}: not listed yet")),
                Err(e) => (false, format!("poll failed, retrying: {e}")),
            }
        }
        RdsAction::Restore => {
            let green = facts.green_id.clone().unwrap_or_default();
            match rds::instance(&aws.rds, &green).await {
                Ok(Some(i)) => {
                    let st = format!("instance {green}: {}", i.status);
                    if matches!(
                        i.status.as_str(),
                        "failed"
                            | "incompatible-restore"
                            | "incompatible-parameters"
                            | "storage-full"
                    ) {
                        bail!("{st}: RDS could not restore; see DescribeEvents for {green}");
                    }
                    (i.available(), st)
                }
                Ok(None) => (false, format!("instance {green}: not listed yet")),
                Err(e) => (false, format!("poll failed, retrying: {e}")),
            }
        }
    })
}

#[cfg(test)]
#[path = "rds_actions_tests.rs"]
mod tests;
