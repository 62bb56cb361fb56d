//! One read of everything AWS says about the migration: both instances, their events and
//! metrics, BLUE's logical-replication parameter, GREEN's log files, the snapshot. Each part
//! fails on its own; AWS being down is a value in the report, never an error of the command.

use std::time::Duration;

use crate::aws::{Aws, metrics, rds};
use crate::config::Settings;
use crate::domain::rds::{InstanceFacts, Snapshot};

/// The AWS part of a status read.
#[derive(Debug, Clone, Default)]
pub struct RdsRead {
    pub blue: Option<InstanceFacts>,
    pub green: Option<InstanceFacts>,
    pub snapshot: Option<Result<Option<Snapshot>, String>>,
}

/// How far back metrics and events go.
pub const METRICS_SPAN: Duration = Duration::from_mins(15);
pub const EVENTS_SPAN: Duration = Duration::from_hours(1);

/// Read it all, within `budget`; what did not answer in time is reported as such.
pub async fn read(settings: &Settings, budget: Duration) -> RdsRead {
    let Some(a) = &settings.aws else {
        return RdsRead::default();
    };
    let work = async {
        let aws = Aws::shared(a).await;
        read_with(aws, settings, true).await
    };
    if let Ok(r) = tokio::time::timeout(budget, work).await {
        r
    } else {
        let e = format!(
            "AWS did not answer within {} s; check the network path to AWS and [aws] region/endpoint_url",
            budget.as_secs()
        );
        let side = |id: &Option<String>| {
            id.as_ref().map(|_| InstanceFacts {
                instance: Some(Err(e.clone())),
                ..Default::default()
            })
        };
        RdsRead {
            blue: side(&settings.blue.rds_instance),
            green: side(&settings.green.rds_instance),
            snapshot: a.snapshot.as_ref().map(|_| Err(e.clone())),
        }
    }
}

/// The same with a given client; `with_metrics` = false skips CloudWatch (read less often).
pub async fn read_with(aws: &Aws, settings: &Settings, with_metrics: bool) -> RdsRead {
    let blue_id = settings.blue.rds_instance.as_deref();
    let green_id = settings.green.rds_instance.as_deref();
    let side = |id: Option<String>, blue: bool| async move {
        let id = id?;
        let (instance, events) = tokio::join!(
            rds::instance(&aws.rds, &id),
            rds::events(&aws.rds, &id, EVENTS_SPAN)
        );
        let instance = instance.and_then(|i| {
            i.ok_or_else(|| format!("RDS instance {id} does not exist in this region"))
        });
        let mut out = InstanceFacts {
            events: Some(events),
            ..Default::default()
        };
        if blue {
            if let Ok(i) = &instance {
                out.logical_replication = match i.parameter_groups.first() {
                    Some((g, _)) => Some(rds::logical_replication(&aws.rds, g).await),
                    None => None,
                };
            }
        } else {
            out.log_files = Some(rds::log_files(&aws.rds, &id).await.map(|f| f.len()));
        }
        out.instance = Some(instance);
        Some(out)
    };
    let snap = async {
        match settings.aws.as_ref().and_then(|a| a.snapshot.as_deref()) {
            Some(s) => Some(rds::snapshot(&aws.rds, s).await),
            None => None,
        }
    };
    let ids: Vec<&str> = [blue_id, green_id].into_iter().flatten().collect();
    let mets = async {
        if !with_metrics || ids.is_empty() {
            return None;
        }
        Some(metrics::read(&aws.cloudwatch, &ids, METRICS_SPAN, Duration::from_mins(1)).await)
    };
    let (mut blue, mut green, snapshot, mets) = tokio::join!(
        side(blue_id.map(str::to_string), true),
        side(green_id.map(str::to_string), false),
        snap,
        mets
    );
    if let Some(m) = mets {
        let mut it = 0;
        for (s, present) in [
            (&mut blue, blue_id.is_some()),
            (&mut green, green_id.is_some()),
        ] {
            if !present {
                continue;
            }
            if let Some(s) = s.as_mut() {
                s.metrics = Some(m.as_ref().map(|v| v[it].clone()).map_err(Clone::clone));
            }
            it += 1;
        }
    }
    RdsRead {
        blue,
        green,
        snapshot,
    }
}
