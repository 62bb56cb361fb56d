//! Guards and the decision for the RDS actions (snapshot → upgrade-snapshot → restore), as pure
//! functions of what RDS and BLUE's PostgreSQL said. A rerun never repeats a call: an object
//! already being made is waited for, one already done is left alone.

use serde::Serialize;

use super::guards::Guard;
use super::observed::Live;
use super::rds::{Instance, Snapshot};
use crate::sql::ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RdsAction {
    Snapshot,
    UpgradeSnapshot,
    Restore,
}

impl RdsAction {
    pub fn name(self) -> &'static str {
        match self {
            RdsAction::Snapshot => "snapshot",
            RdsAction::UpgradeSnapshot => "upgrade-snapshot",
            RdsAction::Restore => "restore",
        }
    }
}

/// What RDS said, each read on its own (`Err` = the call failed; `Ok(None)` = no such object).
#[derive(Debug, Clone)]
pub struct RdsFacts {
    pub blue_id: Option<String>,
    pub green_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub engine_version: Option<String>,
    pub blue: Result<Option<Instance>, String>,
    pub green: Result<Option<Instance>, String>,
    pub snapshot: Result<Option<Snapshot>, String>,
}

/// What the run will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Make the call, then wait.
    Call,
    /// A previous run's call is in progress: only wait for it.
    Wait,
    /// Already done.
    Done(String),
}

/// The RestoreDBInstanceFromDBSnapshot settings: configured values, else BLUE's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreParams {
    pub instance_class: Option<String>,
    pub multi_az: bool,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
}

/// What GREEN's restore copies from BLUE unless set here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreSettings {
    pub instance_class: Option<String>,
    pub multi_az: Option<bool>,
    pub subnet_group: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub parameter_group: Option<String>,
}

pub fn restore_params(conf: &RestoreSettings, blue: &Instance) -> RestoreParams {
    RestoreParams {
        instance_class: conf.instance_class.clone().or(blue.class.clone()),
        multi_az: conf.multi_az.unwrap_or(blue.multi_az),
        subnet_group: conf.subnet_group.clone().or(blue.subnet_group.clone()),
        security_groups: conf
            .security_groups
            .clone()
            .unwrap_or(blue.security_groups.clone()),
        // BLUE's group is of the old major version's family; RDS refuses it for the upgraded
        // snapshot with a message naming the family, and the plan says to set
        // [restore] parameter_group then.
        parameter_group: conf
            .parameter_group
            .clone()
            .or(blue.parameter_groups.first().map(|(n, _)| n.clone())),
    }
}

/// Guards and decision. `blue_live` is BLUE's PostgreSQL, needed by `snapshot` (the slot must
/// exist before the snapshot, else the snapshot cannot start replication where it ends).
pub fn evaluate(
    action: RdsAction,
    facts: &RdsFacts,
    blue_live: Option<&Live>,
    slots: &[String],
) -> (Vec<Guard>, Option<Decision>) {
    let mut out = Vec::new();
    let snap_id = if let Some(s) = &facts.snapshot_id {
        out.push(Guard::new("snapshot_named", true, format!("snapshot {s}")));
        s.as_str()
    } else {
        out.push(Guard::new(
            "snapshot_named",
            false,
            "no [aws] snapshot = \"name\" in the configuration: name the migration's snapshot",
        ));
        return (out, None);
    };
    let snapshot = match &facts.snapshot {
        Ok(s) => s.as_ref(),
        Err(e) => {
            out.push(Guard::new("rds_readable", false, e.clone()));
            return (out, None);
        }
    };
    let on = Snap {
        id: snap_id,
        found: snapshot,
    };
    let decision = match action {
        RdsAction::Snapshot => take_snapshot(facts, on, blue_live, slots, &mut out),
        RdsAction::UpgradeSnapshot => upgrade_snapshot(facts, on, &mut out),
        RdsAction::Restore => restore(facts, on, &mut out),
    };
    (out, decision)
}

/// The migration's snapshot: its name and what RDS says of it.
#[derive(Clone, Copy)]
struct Snap<'a> {
    id: &'a str,
    found: Option<&'a Snapshot>,
}

/// `None`: refused (the reason is in `out`).
fn take_snapshot(
    facts: &RdsFacts,
    snap: Snap<'_>,
    blue_live: Option<&Live>,
    slots: &[String],
    out: &mut Vec<Guard>,
) -> Option<Decision> {
    let (snap_id, snapshot) = (snap.id, snap.found);
    let Some(blue_id) = &facts.blue_id else {
        out.push(Guard::new(
            "blue_is_rds",
            false,
            "[blue] has no rds_instance: the snapshot is of BLUE's RDS instance",
        ));
        return None;
    };
    Some(match snapshot {
        Some(s) if s.status == "available" => {
            out.push(Guard::new(
                "snapshot_absent",
                true,
                format!("{snap_id} exists and is available"),
            ));
            Decision::Done(format!(
                "snapshot {snap_id} already exists and is available"
            ))
        }
        Some(s) if s.status == "creating" => {
            out.push(Guard::new(
                "snapshot_absent",
                true,
                format!(
                    "{snap_id} is being created ({}%): waiting for it, not making another",
                    s.percent_progress.unwrap_or(0)
                ),
            ));
            Decision::Wait
        }
        Some(s) => {
            out.push(Guard::new(
                "snapshot_absent",
                false,
                format!(
                    "{snap_id} exists with status {}: delete it or name another [aws] snapshot",
                    s.status
                ),
            ));
            return None;
        }
        None => {
            match &facts.blue {
                Ok(Some(b)) => out.push(Guard::new(
                    "blue_available",
                    b.available(),
                    format!("BLUE instance {blue_id} is {}", b.status),
                )),
                Ok(None) => out.push(Guard::new(
                    "blue_available",
                    false,
                    format!("BLUE instance {blue_id} does not exist in this region"),
                )),
                Err(e) => out.push(Guard::new("blue_available", false, e.clone())),
            }
            out.push(slots_guard(blue_live, slots));
            Decision::Call
        }
    })
}

/// Every replicated database's slot exists on BLUE: the one snapshot serves them all.
fn slots_guard(blue_live: Option<&Live>, slots: &[String]) -> Guard {
    let missing: Vec<&str> = blue_live.map_or_else(Vec::new, |l| {
        slots
            .iter()
            .filter(|s| l.slot(s).is_none())
            .map(String::as_str)
            .collect()
    });
    let names = |v: &[&str]| v.iter().map(|s| ident(s)).collect::<Vec<_>>().join(", ");
    let all: Vec<&str> = slots.iter().map(String::as_str).collect();
    Guard::new(
        "slot_exists",
        blue_live.is_some() && missing.is_empty(),
        match blue_live {
            None => "BLUE's PostgreSQL cannot be read, so the slots cannot be checked".to_string(),
            Some(_) if missing.is_empty() => format!("slot {} exists on BLUE", names(&all)),
            Some(_) => format!(
                "slot {} does not exist on BLUE: run prepare first; a snapshot taken before \
                 the slot cannot start replication where it ends",
                names(&missing)
            ),
        },
    )
}

fn upgrade_snapshot(facts: &RdsFacts, snap: Snap<'_>, out: &mut Vec<Guard>) -> Option<Decision> {
    let (snap_id, snapshot) = (snap.id, snap.found);
    let Some(target) = &facts.engine_version else {
        out.push(Guard::new(
            "engine_version_named",
            false,
            "no [aws] engine_version = \"…\": name the target PostgreSQL version (e.g. \"16.4\")",
        ));
        return None;
    };
    Some(match snapshot {
        None => {
            out.push(Guard::new(
                "snapshot_exists",
                false,
                format!("snapshot {snap_id} does not exist: run the snapshot action first"),
            ));
            return None;
        }
        Some(s)
            if s.engine_version.as_deref() == Some(target.as_str()) && s.status == "available" =>
        {
            out.push(Guard::new(
                "snapshot_exists",
                true,
                format!("{snap_id} is at {target}"),
            ));
            Decision::Done(format!("snapshot {snap_id} is already at {target}"))
        }
        Some(s) if s.status == "upgrading" => {
            out.push(Guard::new(
                "snapshot_exists",
                true,
                format!("{snap_id} is being upgraded: waiting for it"),
            ));
            Decision::Wait
        }
        Some(s) => {
            out.push(Guard::new(
                "snapshot_available",
                s.status == "available",
                format!(
                    "{snap_id} is {} at {}",
                    s.status,
                    s.engine_version.as_deref().unwrap_or("?")
                ),
            ));
            Decision::Call
        }
    })
}

fn restore(facts: &RdsFacts, snap: Snap<'_>, out: &mut Vec<Guard>) -> Option<Decision> {
    let Some(green_id) = &facts.green_id else {
        out.push(Guard::new(
            "green_is_rds",
            false,
            "[green] has no rds_instance: name the instance to restore as GREEN",
        ));
        return None;
    };
    let green = match &facts.green {
        Ok(gr) => gr.as_ref(),
        Err(e) => {
            out.push(Guard::new("rds_readable", false, e.clone()));
            return None;
        }
    };
    Some(match green {
        Some(gr) if gr.available() => {
            out.push(Guard::new(
                "green_absent",
                true,
                format!("{green_id} exists and is available"),
            ));
            Decision::Done(format!(
                "GREEN instance {green_id} already exists and is available"
            ))
        }
        Some(gr)
            if matches!(
                gr.status.as_str(),
                "creating"
                    | "backing-up"
                    | "modifying"
                    | "configuring-log-exports"
                    | "upgrading"
                    | "rebooting"
                    | "configuring-enhanced-monitoring"
            ) =>
        {
            out.push(Guard::new(
                "green_absent",
                true,
                format!("{green_id} is being made ({}): waiting for it", gr.status),
            ));
            Decision::Wait
        }
        Some(gr) => {
            out.push(Guard::new(
                "green_absent",
                false,
                format!("{green_id} exists with status {}: fix or delete it, or name another [green] rds_instance", gr.status),
            ));
            return None;
        }
        None => {
            restore_sources(facts, snap, out);
            Decision::Call
        }
    })
}

/// A restore's sources: the upgraded snapshot, and BLUE's instance for the settings
/// `[restore]` does not set.
fn restore_sources(facts: &RdsFacts, snap: Snap<'_>, out: &mut Vec<Guard>) {
    let (snap_id, snapshot) = (snap.id, snap.found);
    match snapshot {
        None => out.push(Guard::new(
            "snapshot_available",
            false,
            format!("snapshot {snap_id} does not exist: run snapshot and upgrade-snapshot first"),
        )),
        Some(s) => {
            out.push(Guard::new(
                "snapshot_available",
                s.status == "available",
                format!("{snap_id} is {}", s.status),
            ));
            if let Some(target) = &facts.engine_version {
                let at = s.engine_version.as_deref() == Some(target.as_str());
                out.push(Guard::new(
                    "snapshot_upgraded",
                    at,
                    if at {
                        format!("{snap_id} is at {target}")
                    } else {
                        format!(
                            "{snap_id} is at {}, not {target}: run upgrade-snapshot first",
                            s.engine_version.as_deref().unwrap_or("?")
                        )
                    },
                ));
            }
        }
    }
    match &facts.blue {
        Ok(Some(_)) => out.push(Guard::new(
            "blue_readable",
            true,
            "BLUE's settings are copied unless [restore] sets them",
        )),
        Ok(None) => out.push(Guard::new(
            "blue_readable",
            false,
            "BLUE's instance does not exist: its settings cannot be copied",
        )),
        Err(e) => out.push(Guard::new("blue_readable", false, e.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testdata;

    fn inst(id: &str, status: &str) -> Instance {
        Instance {
            id: id.into(),
            status: status.into(),
            engine: Some("postgres".into()),
            engine_version: Some("15.8".into()),
            class: Some("db.r6g.large".into()),
            storage_type: None,
            allocated_storage_gib: Some(100),
            multi_az: true,
            pending: vec![],
            create_time: None,
            endpoint: None,
            log_exports: vec![],
            parameter_groups: vec![],
            subnet_group: Some("sg-app".into()),
            security_groups: vec!["sg-1".into()],
            iam_auth: false,
        }
    }

    fn snap(status: &str, version: &str) -> Snapshot {
        Snapshot {
            id: "mig".into(),
            instance: Some("blue".into()),
            status: status.into(),
            percent_progress: Some(40),
            engine_version: Some(version.into()),
            create_time: None,
        }
    }

    fn facts(snapshot: Option<Snapshot>, green: Option<Instance>) -> RdsFacts {
        RdsFacts {
            blue_id: Some("blue".into()),
            green_id: Some("green".into()),
            snapshot_id: Some("mig".into()),
            engine_version: Some("17.2".into()),
            blue: Ok(Some(inst("blue", "available"))),
            green: Ok(green),
            snapshot: Ok(snapshot),
        }
    }

    fn ok(gs: &[Guard]) -> bool {
        gs.iter().all(|g| g.ok)
    }

    #[test]
    fn snapshot_needs_the_slot_first() {
        let names = testdata::names();
        let without = testdata::live(true);
        let (gs, d) = evaluate(
            RdsAction::Snapshot,
            &facts(None, None),
            Some(&without),
            std::slice::from_ref(&names.slot),
        );
        assert_eq!(d, Some(Decision::Call));
        let slot = gs.iter().find(|g| g.name == "slot_exists").unwrap();
        assert!(
            !slot.ok && slot.detail.contains("run prepare first"),
            "{slot:?}"
        );
        let with = testdata::with_pub_slot(testdata::live(true));
        let (gs, _) = evaluate(
            RdsAction::Snapshot,
            &facts(None, None),
            Some(&with),
            std::slice::from_ref(&names.slot),
        );
        assert!(ok(&gs), "{gs:?}");
        // several databases: every one's slot, before the one snapshot
        let (gs, _) = evaluate(
            RdsAction::Snapshot,
            &facts(None, None),
            Some(&with),
            &[names.slot.clone(), "slot_billing".into()],
        );
        let slot = gs.iter().find(|g| g.name == "slot_exists").unwrap();
        assert!(
            !slot.ok && slot.detail.starts_with("slot slot_billing does not exist"),
            "{slot:?}"
        );
    }

    #[test]
    fn a_second_press_waits_or_does_nothing() {
        let names = testdata::names();
        let live = testdata::with_pub_slot(testdata::live(true));
        let (_, d) = evaluate(
            RdsAction::Snapshot,
            &facts(Some(snap("creating", "15.8")), None),
            Some(&live),
            std::slice::from_ref(&names.slot),
        );
        assert_eq!(d, Some(Decision::Wait));
        let (_, d) = evaluate(
            RdsAction::Snapshot,
            &facts(Some(snap("available", "15.8")), None),
            Some(&live),
            std::slice::from_ref(&names.slot),
        );
        assert!(matches!(d, Some(Decision::Done(_))));
        let (_, d) = evaluate(
            RdsAction::UpgradeSnapshot,
            &facts(Some(snap("upgrading", "15.8")), None),
            None,
            std::slice::from_ref(&names.slot),
        );
        assert_eq!(d, Some(Decision::Wait));
        let (_, d) = evaluate(
            RdsAction::UpgradeSnapshot,
            &facts(Some(snap("available", "17.2")), None),
            None,
            std::slice::from_ref(&names.slot),
        );
        assert!(matches!(d, Some(Decision::Done(_))));
        let (_, d) = evaluate(
            RdsAction::Restore,
            &facts(
                Some(snap("available", "17.2")),
                Some(inst("green", "creating")),
            ),
            None,
            std::slice::from_ref(&names.slot),
        );
        assert_eq!(d, Some(Decision::Wait));
    }

    #[test]
    fn restore_refuses_an_unupgraded_snapshot_and_a_broken_green() {
        let slot = &["s".to_string()];
        let (gs, _) = evaluate(
            RdsAction::Restore,
            &facts(Some(snap("available", "15.8")), None),
            None,
            slot,
        );
        let up = gs.iter().find(|g| g.name == "snapshot_upgraded").unwrap();
        assert!(!up.ok && up.detail.contains("upgrade-snapshot"));
        let (gs, d) = evaluate(
            RdsAction::Restore,
            &facts(
                Some(snap("available", "17.2")),
                Some(inst("green", "failed")),
            ),
            None,
            slot,
        );
        assert!(!ok(&gs) && d.is_none());
        let (gs, d) = evaluate(
            RdsAction::Restore,
            &facts(Some(snap("available", "17.2")), None),
            None,
            slot,
        );
        assert!(ok(&gs), "{gs:?}");
        assert_eq!(d, Some(Decision::Call));
    }

    #[test]
    fn restore_copies_blue_unless_configured() {
        let blue = inst("blue", "available");
        let p = restore_params(&RestoreSettings::default(), &blue);
        assert_eq!(p.instance_class.as_deref(), Some("db.r6g.large"));
        assert!(p.multi_az);
        assert_eq!(p.security_groups, vec!["sg-1".to_string()]);
        let conf = RestoreSettings {
            instance_class: Some("db.r7g.xlarge".into()),
            multi_az: Some(false),
            ..Default::default()
        };
        let p = restore_params(&conf, &blue);
        assert_eq!(p.instance_class.as_deref(), Some("db.r7g.xlarge"));
        assert!(!p.multi_az);
        assert_eq!(p.subnet_group.as_deref(), Some("sg-app"));
    }
}
