//! The migration's phase, derived only from what is observed on the two servers (never from
//! memory: after a crash or from another terminal the live state is the truth), and the alarms.

use serde::Serialize;

use super::observed::{Live, Side};

/// Text the engine puts on a subscription (`COMMENT ON SUBSCRIPTION`) it creates by a rollback.
/// A rolled-back pair is otherwise identical to one that never cut over.
pub const ROLLED_BACK_MARK: &str = "pgcutover: rolled back";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not enough is known (a side unreachable and the other says nothing conclusive).
    Unknown,
    Setup,
    /// Publication and slot on BLUE.
    Prepared,
    /// The subscription exists on GREEN, disabled.
    Subscribed,
    /// BLUE serves, GREEN applies.
    Replicating,
    /// GREEN serves, BLUE applies (the rollback path).
    CutOver,
    /// BLUE serves again after a cutover, GREEN applies.
    RolledBack,
    /// GREEN serves and the replication between the sides is gone.
    Finalized,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Unknown => "unknown",
            Phase::Setup => "setup",
            Phase::Prepared => "prepared",
            Phase::Subscribed => "subscribed",
            Phase::Replicating => "replicating",
            Phase::CutOver => "cut over",
            Phase::RolledBack => "rolled back",
            Phase::Finalized => "finalized",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    #[serde(rename = "blue->green")]
    BlueToGreen,
    #[serde(rename = "green->blue")]
    GreenToBlue,
}

impl Direction {
    pub fn source(self) -> Side {
        match self {
            Direction::BlueToGreen => Side::Blue,
            Direction::GreenToBlue => Side::Green,
        }
    }
    pub fn target(self) -> Side {
        self.source().other()
    }
    pub fn label(self) -> &'static str {
        match self {
            Direction::BlueToGreen => "BLUE→GREEN",
            Direction::GreenToBlue => "GREEN→BLUE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "id")]
pub enum Alarm {
    /// App roles can log in on both sides: two writable primaries.
    SplitBrain,
    /// App roles can log in on neither side: writes are down.
    Fenced,
    /// Some app roles can log in on this side and some cannot.
    PartiallyFenced {
        side: Side,
    },
    Unreachable {
        side: Side,
    },
    /// The replicated databases are not all in the same phase (e.g. one was never started).
    DatabasesApart {
        /// Each database with its phase, as `name: phase`.
        phases: Vec<String>,
    },
}

impl Alarm {
    pub fn message(&self) -> String {
        match self {
            Alarm::SplitBrain => {
                "SPLIT BRAIN: app roles can log in on both BLUE and GREEN; fence one side now"
                    .into()
            }
            Alarm::Fenced => "FENCED: app roles can log in on neither side; writes are down".into(),
            Alarm::PartiallyFenced { side } => format!(
                "{} is partly fenced: some app roles have LOGIN and some do not",
                side.upper()
            ),
            Alarm::Unreachable { side } => format!("{} is unreachable", side.upper()),
            Alarm::DatabasesApart { phases } => format!(
                "the databases are in different phases ({}): the pair is as far as the least advanced",
                phases.join(", ")
            ),
        }
    }
}

/// The names the migration uses; the same on both sides, whichever direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationNames {
    pub publication: String,
    pub slot: String,
    pub subscription: String,
    /// The databases replicated; each has its own publication, slot and subscription.
    pub databases: super::names::DatabaseSet,
    /// The slot name as configured, which every database's slot name starts from.
    pub slot_family: String,
}

impl MigrationNames {
    /// The names in database `db`: the slot (cluster-wide) and the subscription (shown with
    /// the others of the instance) carry the database when more than one is replicated; a
    /// publication lives in its database, so it keeps its name.
    #[must_use]
    pub fn for_database(&self, db: &str) -> MigrationNames {
        if !self.databases.per_database_names() {
            return self.clone();
        }
        MigrationNames {
            publication: self.publication.clone(),
            slot: super::names::for_database(&self.slot, db),
            subscription: super::names::for_database(&self.subscription, db),
            databases: self.databases.clone(),
            slot_family: self.slot_family.clone(),
        }
    }

    /// A slot of this migration, in this database or another replicated one.
    pub fn owns_slot(&self, name: &str) -> bool {
        name == self.slot
            || (self.databases.per_database_names()
                && name.starts_with(&super::names::family_prefix(&self.slot_family)))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    pub direction: Option<Direction>,
    /// Sides where an app role can log in.
    pub writable: Vec<Side>,
    pub alarms: Vec<Alarm>,
}

/// The phase of several databases replicated together: the least advanced one's, with an alarm
/// when they differ. Roles, and so the writable sides and their alarms, are the instance's:
/// the first report's hold for all.
pub fn combine(reports: &[(String, PhaseReport)]) -> Option<PhaseReport> {
    let (_, first) = reports.first()?;
    let mut out = first.clone();
    if let Some((_, least)) = reports.iter().min_by_key(|(_, r)| r.phase) {
        out.phase = least.phase;
        out.direction = least.direction;
    }
    if reports.iter().any(|(_, r)| r.phase != first.phase) {
        out.alarms.push(Alarm::DatabasesApart {
            phases: reports
                .iter()
                .map(|(db, r)| format!("{}: {}", crate::sql::ident(db), r.phase.label()))
                .collect(),
        });
    }
    Some(out)
}

/// Derive phase, direction, writable sides and alarms. `None` = that side could not be read.
pub fn derive(names: &MigrationNames, blue: Option<&Live>, green: Option<&Live>) -> PhaseReport {
    let side = |s: Side| match s {
        Side::Blue => blue,
        Side::Green => green,
    };
    let writable: Vec<Side> = Side::BOTH
        .into_iter()
        .filter(|s| side(*s).is_some_and(Live::writable))
        .collect();

    let mut alarms = Vec::new();
    for s in Side::BOTH {
        if side(s).is_none() {
            alarms.push(Alarm::Unreachable { side: s });
        }
    }
    if writable.len() == 2 {
        alarms.push(Alarm::SplitBrain);
    }
    if blue.is_some() && green.is_some() && writable.is_empty() {
        alarms.push(Alarm::Fenced);
    }
    for s in Side::BOTH {
        if side(s).is_some_and(Live::partially_fenced) {
            alarms.push(Alarm::PartiallyFenced { side: s });
        }
    }

    let sub_on = |s: Side| side(s).and_then(|l| l.subscription(&names.subscription));
    let forward = sub_on(Side::Green);
    let reverse = sub_on(Side::Blue);
    let green_serves = writable == [Side::Green];

    let (phase, direction) = match (forward, reverse) {
        // An enabled subscription says which way data flows; a disabled one is a path being built
        // or torn down, and the side that serves decides.
        (_, Some(r)) if r.enabled => (Phase::CutOver, Some(Direction::GreenToBlue)),
        (Some(f), _) if f.enabled => {
            let rolled = f
                .comment
                .as_deref()
                .is_some_and(|c| c.starts_with(ROLLED_BACK_MARK));
            let p = if rolled {
                Phase::RolledBack
            } else {
                Phase::Replicating
            };
            (p, Some(Direction::BlueToGreen))
        }
        (_, Some(_)) if green_serves => (Phase::CutOver, Some(Direction::GreenToBlue)),
        (Some(_), _) => (Phase::Subscribed, Some(Direction::BlueToGreen)),
        (None, _) if green_serves => (Phase::Finalized, None),
        (None, _) => {
            let prepared = blue.is_some_and(|b| {
                b.publication(&names.publication).is_some() && b.slot(&names.slot).is_some()
            });
            match (blue, green) {
                (Some(_), _) if prepared => (Phase::Prepared, Some(Direction::BlueToGreen)),
                (Some(_), _) => (Phase::Setup, None),
                (None, _) => (Phase::Unknown, None),
            }
        }
    };

    // One side alone cannot tell the phase: BLUE with its slot is "prepared", "replicating" and
    // "rolled back" alike, and GREEN serving is "cut over" or "finalized" depending on BLUE.
    let (phase, direction) = if blue.is_none() || green.is_none() {
        (Phase::Unknown, None)
    } else {
        (phase, direction)
    };
    PhaseReport {
        phase,
        direction,
        writable,
        alarms,
    }
}

/// Before GREEN exists, `prepare` is judged on BLUE alone: BLUE serves and holds no
/// subscription of ours (so it was never cut over to a GREEN that is now unreachable).
pub fn blue_alone_is_before_cutover(names: &MigrationNames, blue: &Live) -> bool {
    blue.writable() && blue.subscription(&names.subscription).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::observed::*;
    use crate::domain::testdata::{live, names, with_pub_slot, with_sub};

    fn phase(b: &Live, g: &Live) -> (Phase, Option<Direction>) {
        let r = derive(&names(), Some(b), Some(g));
        (r.phase, r.direction)
    }

    #[test]
    fn walks_through_every_phase() {
        use Direction::*;
        assert_eq!(phase(&live(true), &live(false)).0, Phase::Setup);
        let blue = with_pub_slot(live(true));
        assert_eq!(
            phase(&blue, &live(false)),
            (Phase::Prepared, Some(BlueToGreen))
        );
        let green_pub = with_pub_slot(live(false));
        assert_eq!(
            phase(&blue, &with_sub(green_pub.clone(), false, None)),
            (Phase::Subscribed, Some(BlueToGreen))
        );
        assert_eq!(
            phase(&blue, &with_sub(green_pub.clone(), true, None)),
            (Phase::Replicating, Some(BlueToGreen))
        );
        // cut over: blue fenced, applying from green's slot
        let blue_sub = with_sub(live(false), true, None);
        let green_serving = with_pub_slot(live(true));
        assert_eq!(
            phase(&blue_sub, &green_serving),
            (Phase::CutOver, Some(GreenToBlue))
        );
        // rolled back: blue serves, green applies through a subscription the rollback marked
        let green_marked = with_sub(live(false), true, Some("pgcutover: rolled back at 12:00"));
        assert_eq!(
            phase(&with_pub_slot(live(true)), &green_marked),
            (Phase::RolledBack, Some(BlueToGreen))
        );
        // finalized: green serves, no replication left
        assert_eq!(phase(&live(false), &live(true)), (Phase::Finalized, None));
    }

    #[test]
    fn reverse_path_armed_early_does_not_look_cut_over() {
        // a disabled reverse subscription on blue while forward replication still runs
        let blue = with_sub(with_pub_slot(live(true)), false, None);
        let green = with_sub(with_pub_slot(live(false)), true, None);
        assert_eq!(phase(&blue, &green).0, Phase::Replicating);
    }

    #[test]
    fn split_brain_and_fenced_alarms() {
        let r = derive(&names(), Some(&live(true)), Some(&live(true)));
        assert!(r.alarms.contains(&Alarm::SplitBrain));
        assert_eq!(r.writable, vec![Side::Blue, Side::Green]);
        let r = derive(&names(), Some(&live(false)), Some(&live(false)));
        assert!(r.alarms.contains(&Alarm::Fenced));
        assert!(r.writable.is_empty());
        let r = derive(&names(), Some(&live(true)), Some(&live(false)));
        assert!(r.alarms.is_empty());
    }

    #[test]
    fn partial_fence_is_reported() {
        let mut b = live(true);
        b.app_roles.push(Role {
            name: "Weird \"App\"".into(),
            exists: true,
            can_login: false,
            sessions: 0,
        });
        let r = derive(&names(), Some(&b), Some(&live(false)));
        assert!(
            r.alarms
                .contains(&Alarm::PartiallyFenced { side: Side::Blue })
        );
        assert_eq!(r.writable, vec![Side::Blue]);
    }

    #[test]
    fn unreachable_side_is_an_alarm_not_a_crash() {
        // BLUE with its slot is "prepared", "replicating" or "rolled back" depending on GREEN
        let r = derive(&names(), Some(&with_pub_slot(live(true))), None);
        assert_eq!((r.phase, r.direction), (Phase::Unknown, None));
        assert!(r.alarms.contains(&Alarm::Unreachable { side: Side::Green }));
        assert!(!r.alarms.contains(&Alarm::Fenced));
        // GREEN serving alone is "cut over" or "finalized" depending on BLUE
        let r = derive(&names(), None, Some(&live(true)));
        assert_eq!(r.phase, Phase::Unknown);
        assert!(blue_alone_is_before_cutover(&names(), &live(true)));
        assert!(!blue_alone_is_before_cutover(&names(), &live(false)));
        let r = derive(&names(), None, None);
        assert_eq!(r.phase, Phase::Unknown);
    }

    #[test]
    fn several_databases_are_as_far_as_the_least_advanced() {
        let at = |phase: Phase| PhaseReport {
            phase,
            direction: None,
            writable: vec![Side::Blue],
            alarms: Vec::new(),
        };
        let same = combine(&[
            ("app".into(), at(Phase::Replicating)),
            ("billing".into(), at(Phase::Replicating)),
        ])
        .unwrap();
        assert_eq!(same.phase, Phase::Replicating);
        assert!(same.alarms.is_empty());
        let apart = combine(&[
            ("app".into(), at(Phase::Replicating)),
            ("Ünïcode \"db\"".into(), at(Phase::Subscribed)),
        ])
        .unwrap();
        assert_eq!(apart.phase, Phase::Subscribed);
        let m = apart.alarms[0].message();
        assert!(
            m.contains("app: replicating") && m.contains("\"Ünïcode \"\"db\"\"\": subscribed"),
            "{m}"
        );
        assert!(combine(&[]).is_none());
    }
}
