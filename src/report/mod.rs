//! The status report: everything observed on both sides, with phase, alarms, checks and diffs.
//! Built by a pure function so the dashboard, `status` and `check` agree by construction.

pub mod text;

use serde::Serialize;

use crate::aws::redo_source::Found;
use crate::collect::reading::SideReading;
use crate::domain::checks::{self, Check};
use crate::domain::lag::LagTime;
use crate::domain::lsn::Lsn;
use crate::domain::observed::{Live, Publication, Role, Side, Subscription};
use crate::domain::phase::{Alarm, Direction, MigrationNames, Phase};
use crate::domain::rds::{Event, Instance, Point, Snapshot};
use crate::domain::schema::{self, SchemaDiff};
use crate::domain::sequences::{self, SequenceRow};
use crate::domain::traffic::{self, Pointed, TrafficAlarm, TrafficReading};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub generated_at: String,
    pub phase: Phase,
    pub direction: Option<Direction>,
    pub writable: Vec<Side>,
    pub alarms: Vec<AlarmOut>,
    pub sides: SideReports,
    pub slots: Vec<SlotOut>,
    pub subscriptions: Vec<SubscriptionOut>,
    pub publications: Vec<PublicationOut>,
    pub app_roles: Vec<RoleOut>,
    pub checks: Vec<Check>,
    /// `None` when either side's catalogue could not be read.
    pub schema_diff: Option<SchemaDiff>,
    pub sequences: Vec<SequenceRow>,
    /// The migration's RDS snapshot (`[aws] snapshot`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Result<Option<Snapshot>, String>>,
    /// The restore's redo line, when a source is configured.
    pub redo: Option<RedoOut>,
    /// The application's routers, when `[traffic] router` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficOut>,
    /// Each replicated database's phase, when several are (`[replication] databases`); the
    /// pair's `phase` is then the least advanced one's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseOut>,
    /// The last `verify`, as it was kept.
    pub verify: Option<crate::domain::verify::Last>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatabaseOut {
    pub name: String,
    pub phase: Phase,
    pub direction: Option<Direction>,
    /// Its failing checks (schema drift, replica identity, …).
    pub failing: Vec<&'static str>,
}

/// The reports of several replicated databases as one: the first is the instance's (roles,
/// RDS, traffic, the redo line); the others add their phase, their failing checks (said of
/// their database) and their replication objects.
pub fn merge_databases(first: (&str, Status), others: Vec<(String, Status)>) -> Status {
    let (name, mut st) = first;
    let all: Vec<(String, &Status)> = std::iter::once((name.to_string(), &st))
        .chain(others.iter().map(|(n, s)| (n.clone(), s)))
        .collect();
    let phases: Vec<(String, crate::domain::phase::PhaseReport)> = all
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                crate::domain::phase::PhaseReport {
                    phase: s.phase,
                    direction: s.direction,
                    writable: s.writable.clone(),
                    alarms: Vec::new(),
                },
            )
        })
        .collect();
    let databases: Vec<DatabaseOut> = all
        .iter()
        .map(|(n, s)| DatabaseOut {
            name: n.clone(),
            phase: s.phase,
            direction: s.direction,
            failing: s.checks.iter().filter(|c| !c.ok).map(|c| c.id).collect(),
        })
        .collect();
    if let Some(pr) = crate::domain::phase::combine(&phases) {
        st.phase = pr.phase;
        st.direction = pr.direction;
        st.alarms.extend(pr.alarms.into_iter().map(|a| AlarmOut {
            message: a.message(),
            alarm: a,
        }));
    }
    st.databases = databases;
    st.checks = checks::merge_databases(
        std::mem::take(&mut st.checks),
        others
            .iter()
            .map(|(db, o)| (db.as_str(), o.checks.as_slice())),
    );
    for (_, o) in others {
        for sl in o.slots {
            if !st
                .slots
                .iter()
                .any(|m| m.side == sl.side && m.name == sl.name)
            {
                st.slots.push(sl);
            }
        }
        st.subscriptions.extend(o.subscriptions);
        st.publications.extend(o.publications);
    }
    st
}

/// Where the application's traffic goes and what each router says.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficOut {
    pub pointed: Pointed,
    pub alarms: Vec<TrafficAlarmOut>,
    #[serde(flatten)]
    pub reading: TrafficReading,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrafficAlarmOut {
    #[serde(flatten)]
    pub alarm: TrafficAlarm,
    pub message: String,
}

/// Add the routers' reading to a report: its alarms (a one-shot reading cannot tell how long a
/// pause has lasted) and its checks, which `check` counts like the others.
pub fn with_traffic(st: &mut Status, reading: TrafficReading) {
    traffic::add_checks(&mut st.checks, &reading, &st.writable);
    let alarms = traffic::alarms(
        &reading,
        &st.writable,
        false,
        std::time::Duration::MAX,
        std::time::SystemTime::now(),
    );
    st.traffic = Some(TrafficOut {
        pointed: reading.pointed(),
        alarms: alarms
            .into_iter()
            .map(|a| TrafficAlarmOut {
                message: a.message(),
                alarm: a,
            })
            .collect(),
        reading,
    });
}

impl Status {
    pub fn blocking_failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.blocks())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmOut {
    #[serde(flatten)]
    pub alarm: Alarm,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideReports {
    pub blue: SideReport,
    pub green: SideReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideReport {
    pub reachable: bool,
    pub error: Option<String>,
    pub version: Option<String>,
    pub version_num: Option<i32>,
    pub wal_level: Option<String>,
    pub in_recovery: Option<bool>,
    pub current_lsn: Option<Lsn>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// The server says it is RDS (the `rds_superuser` role exists).
    pub on_rds: Option<bool>,
    /// An app role can log in here.
    pub writable: Option<bool>,
    /// What the RDS API says of this side's instance; `None` without `rds_instance`.
    pub rds: Option<RdsOut>,
    /// CloudWatch metrics of the instance, last 15 minutes.
    pub metrics: Option<MetricsOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RdsOut {
    pub instance: Option<Instance>,
    pub error: Option<String>,
    pub events: Vec<Event>,
    pub events_error: Option<String>,
    /// BLUE: `rds.logical_replication` in its parameter group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_replication: Option<Result<Option<String>, String>>,
    /// GREEN: how many server log files RDS lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_files: Option<Result<usize, String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsOut {
    /// The newest value of each metric.
    pub latest: std::collections::BTreeMap<String, f64>,
    pub series: std::collections::BTreeMap<String, Vec<Point>>,
    pub error: Option<String>,
}

/// The restore's redo line as `start` would use it, with the cross-check against the slot.
#[derive(Debug, Clone, Serialize)]
pub struct RedoOut {
    pub found: Option<Found>,
    pub error: Option<String>,
    pub origin_lsn: Option<Lsn>,
    pub rule: Option<&'static str>,
    /// `ok`, or why the LSN does not fit the slot and the source; `None` when it can't be told.
    pub cross_check: Option<String>,
    pub cross_check_ok: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotOut {
    pub side: Side,
    pub name: String,
    /// The migration's slot (the configured name).
    pub ours: bool,
    pub plugin: Option<String>,
    pub slot_type: String,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
    /// current LSN − confirmed_flush_lsn.
    pub lag_bytes: Option<u64>,
    /// current LSN − restart_lsn.
    pub wal_retained_bytes: Option<u64>,
    /// The walsender's lag in seconds (the largest of write/flush/replay lag); 0 when caught
    /// up, absent when unknown (see `lag_time`).
    pub lag_seconds: Option<f64>,
    /// The same for people, with why it is unknown.
    pub lag_time: String,
    /// The walsender's row from `pg_stat_replication`, when one streams the slot.
    pub sender: Option<crate::domain::observed::Sender>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionOut {
    pub side: Side,
    pub ours: bool,
    #[serde(flatten)]
    pub subscription: Subscription,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicationOut {
    pub side: Side,
    #[serde(flatten)]
    pub publication: Publication,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleOut {
    pub side: Side,
    #[serde(flatten)]
    pub role: Role,
}

fn side_out(r: &SideReading) -> SideReport {
    match &r.live {
        Ok(l) => SideReport {
            reachable: true,
            error: None,
            version: Some(l.server.version.clone()),
            version_num: Some(l.server.version_num),
            wal_level: Some(l.server.wal_level.clone()),
            in_recovery: Some(l.server.in_recovery),
            current_lsn: l.server.current_lsn,
            database: Some(l.server.database.clone()),
            user: Some(l.server.user.clone()),
            on_rds: Some(l.server.is_rds),
            writable: Some(l.writable()),
            rds: rds_out(r),
            metrics: metrics_out(r),
        },
        Err(e) => SideReport {
            reachable: false,
            error: Some(e.clone()),
            version: None,
            version_num: None,
            wal_level: None,
            in_recovery: None,
            current_lsn: None,
            database: None,
            user: None,
            on_rds: None,
            writable: None,
            rds: rds_out(r),
            metrics: metrics_out(r),
        },
    }
}

fn ok<T>(o: Option<&Result<T, String>>) -> Option<&T> {
    o.and_then(|r| r.as_ref().ok())
}

/// Assemble the report from what was read on both sides.
pub fn build(
    names: &MigrationNames,
    app_roles: &[String],
    blue: &SideReading,
    green: &SideReading,
) -> Status {
    let (ph, checks) = checks::assess(names, app_roles, blue.view(), green.view());
    let mut live = LiveLists::default();
    for (side, r) in [(Side::Blue, blue), (Side::Green, green)] {
        if let Ok(l) = r.live.as_ref() {
            live.add(names, side, l);
        }
    }
    let schema_diff = match (ok(blue.catalog.as_ref()), ok(green.catalog.as_ref())) {
        (Some(b), Some(g)) => Some(schema::diff(b, g)),
        _ => None,
    };
    let seq = |r: &SideReading| {
        ok(r.inventory.as_ref())
            .map(|i| i.sequences.clone())
            .unwrap_or_default()
    };
    let sequences = sequences::diff(&seq(blue), &seq(green));

    Status {
        generated_at: crate::format::now_rfc3339(),
        phase: ph.phase,
        direction: ph.direction,
        writable: ph.writable,
        alarms: ph
            .alarms
            .into_iter()
            .map(|a| AlarmOut {
                message: a.message(),
                alarm: a,
            })
            .collect(),
        sides: SideReports {
            blue: side_out(blue),
            green: side_out(green),
        },
        slots: live.slots,
        subscriptions: live.subscriptions,
        publications: live.publications,
        app_roles: live.roles,
        checks,
        schema_diff,
        sequences,
        snapshot: None,
        redo: None,
        traffic: None,
        databases: Vec::new(),
        verify: None,
    }
}

/// The report's per-object lists from both sides' live reads, each entry tagged with its side.
#[derive(Default)]
struct LiveLists {
    slots: Vec<SlotOut>,
    subscriptions: Vec<SubscriptionOut>,
    publications: Vec<PublicationOut>,
    roles: Vec<RoleOut>,
}

impl LiveLists {
    fn add(&mut self, names: &MigrationNames, side: Side, l: &Live) {
        let cur = l.server.current_lsn;
        self.slots.extend(l.slots.iter().map(|s| {
            let time = s.lag_bytes(cur).map(|b| LagTime::of(b, s.sender.as_ref()));
            SlotOut {
                side,
                name: s.name.clone(),
                ours: s.name == names.slot,
                plugin: s.plugin.clone(),
                slot_type: s.slot_type.clone(),
                active: s.active,
                active_pid: s.active_pid,
                restart_lsn: s.restart_lsn,
                confirmed_flush_lsn: s.confirmed_flush_lsn,
                wal_status: s.wal_status.clone(),
                safe_wal_size: s.safe_wal_size,
                lag_bytes: s.lag_bytes(cur),
                wal_retained_bytes: s.wal_retained_bytes(cur),
                lag_seconds: time.and_then(|t| t.seconds()),
                lag_time: time.map_or_else(|| "?".into(), |t| t.describe()),
                sender: s.sender.clone(),
            }
        }));
        self.subscriptions
            .extend(l.subscriptions.iter().map(|s| SubscriptionOut {
                side,
                ours: s.name == names.subscription,
                subscription: s.clone(),
            }));
        self.publications
            .extend(l.publications.iter().map(|p| PublicationOut {
                side,
                publication: p.clone(),
            }));
        self.roles.extend(l.app_roles.iter().map(|r| RoleOut {
            side,
            role: r.clone(),
        }));
    }
}

fn rds_out(r: &SideReading) -> Option<RdsOut> {
    let rds = r.rds.as_ref()?;
    let (instance, error) = match &rds.instance {
        Some(Ok(i)) => (Some(i.clone()), None),
        Some(Err(e)) => (None, Some(e.clone())),
        None => (None, None),
    };
    let (events, events_error) = match &rds.events {
        Some(Ok(e)) => (e.clone(), None),
        Some(Err(e)) => (Vec::new(), Some(e.clone())),
        None => (Vec::new(), None),
    };
    Some(RdsOut {
        instance,
        error,
        events,
        events_error,
        logical_replication: rds.logical_replication.clone(),
        log_files: rds.log_files.clone(),
    })
}

fn metrics_out(r: &SideReading) -> Option<MetricsOut> {
    match r.rds.as_ref()?.metrics.as_ref()? {
        Ok(m) => Some(MetricsOut {
            latest: m
                .series
                .iter()
                .filter_map(|(k, v)| v.last().map(|p| (k.clone(), p.v)))
                .collect(),
            series: m.series.clone(),
            error: None,
        }),
        Err(e) => Some(MetricsOut {
            latest: Default::default(),
            series: Default::default(),
            error: Some(e.clone()),
        }),
    }
}

/// The redo line with its verdict against BLUE's slot and current LSN.
pub fn redo_out(
    found: Result<Found, String>,
    names: &MigrationNames,
    phase: Phase,
    blue: Option<&Live>,
) -> RedoOut {
    match found {
        Err(e) => RedoOut {
            found: None,
            error: Some(e),
            origin_lsn: None,
            rule: None,
            cross_check: None,
            cross_check_ok: None,
        },
        Ok(f) => {
            let origin = f.line.origin_lsn;
            let verdict = crate::domain::redo::verdict_now(origin, phase, &names.slot, blue);
            RedoOut {
                origin_lsn: Some(origin),
                rule: Some(f.line.rule()),
                cross_check_ok: verdict.as_ref().map(Result::is_ok),
                cross_check: verdict.map(|v| match v {
                    Ok(()) => {
                        "ok: between the slot's confirmed_flush_lsn and BLUE's current LSN".into()
                    }
                    Err(e) => e,
                }),
                found: Some(f),
                error: None,
            }
        }
    }
}
