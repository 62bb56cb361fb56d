//! The application's routers as observed: where each PgBouncer entry points (mapped to BLUE or
//! GREEN), paused or not and since when, its load; and the alarms and pre-flight checks over
//! them. Pure: the reading is made by `pgbouncer::read`, the clock is the caller's.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::checks::{Check, Severity};
use super::observed::Side;

/// A `SHOW POOLS` row, summed over users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PoolLoad {
    pub cl_active: u64,
    pub cl_waiting: u64,
    pub sv_active: u64,
    pub sv_idle: u64,
    /// The longest a waiting client has waited, in ms.
    pub maxwait_ms: u64,
}

/// One configured PgBouncer database as its bouncer serves it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutedEntry {
    pub db: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    /// The side whose `pgbouncer_target` it points at; `None`: neither.
    pub side: Option<Side>,
    pub paused: bool,
    /// Since when it has been seen paused, by the caller's clock; `None` when not paused or
    /// only seen once (a one-shot `status`).
    #[serde(skip)]
    pub paused_since: Option<SystemTime>,
    pub pool_mode: Option<String>,
    pub load: Option<PoolLoad>,
}

/// What the include file says against what PgBouncer serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IncludeState {
    /// The bouncer is repointed by `retarget_argv`, not a file.
    NotUsed,
    /// Writable, and each entry matches SHOW DATABASES.
    Matches {
        path: String,
    },
    Problem {
        path: String,
        problem: String,
    },
}

/// One bouncer's answer; when it could not be read, `error` says why and the rest is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BouncerReading {
    pub name: String,
    pub error: Option<String>,
    pub entries: Vec<RoutedEntry>,
    /// Configured databases SHOW DATABASES does not list.
    pub missing: Vec<String>,
    /// The admin user may PAUSE/RELOAD/RESUME (not only SHOW); `None`: not known.
    pub admin_rights: Option<bool>,
    pub server_login_retry_s: Option<u64>,
    pub include: IncludeState,
}

impl BouncerReading {
    pub fn failed(name: &str, error: String) -> BouncerReading {
        BouncerReading {
            name: name.to_string(),
            error: Some(error),
            entries: Vec::new(),
            missing: Vec::new(),
            admin_rights: None,
            server_login_retry_s: None,
            include: IncludeState::NotUsed,
        }
    }
}

/// Every configured router, read at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficReading {
    /// `pgbouncer` or `command`.
    pub router: &'static str,
    pub bouncers: Vec<BouncerReading>,
    /// `router = "command"`: the program, when it cannot be run (missing, not executable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_problem: Option<String>,
}

/// Where the application's traffic goes, as far as the routers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "to", content = "side")]
pub enum Pointed {
    Side(Side),
    /// Entries point at different sides, or some at neither.
    Split,
    /// No bouncer answered, or the router cannot be observed (a command).
    Unknown,
}

impl TrafficReading {
    pub fn entries(&self) -> impl Iterator<Item = (&BouncerReading, &RoutedEntry)> {
        self.bouncers
            .iter()
            .flat_map(|b| b.entries.iter().map(move |e| (b, e)))
    }

    pub fn pointed(&self) -> Pointed {
        let sides: BTreeSet<Option<Side>> = self.entries().map(|(_, e)| e.side).collect();
        let some_unread = self.bouncers.iter().any(|b| b.error.is_some());
        match (sides.len(), sides.first()) {
            (0, _) => Pointed::Unknown,
            (1, Some(Some(s))) if !some_unread => Pointed::Side(*s),
            (1, Some(Some(_))) => Pointed::Unknown,
            _ => Pointed::Split,
        }
    }

    /// Carry each entry's pause start over from the previous reading, so "paused for" counts
    /// from when it was first seen paused; `at` is this reading's time.
    pub fn stamp_pauses(&mut self, previous: Option<&TrafficReading>, at: SystemTime) {
        let before: HashMap<(&str, &str), SystemTime> = previous
            .into_iter()
            .flat_map(TrafficReading::entries)
            .filter_map(|(b, e)| Some(((b.name.as_str(), e.db.as_str()), e.paused_since?)))
            .collect();
        for b in &mut self.bouncers {
            for e in &mut b.entries {
                e.paused_since = e.paused.then(|| {
                    before
                        .get(&(b.name.as_str(), e.db.as_str()))
                        .copied()
                        .unwrap_or(at)
                });
            }
        }
    }
}

impl RoutedEntry {
    pub fn paused_for(&self, now: SystemTime) -> Option<Duration> {
        self.paused_since
            .map(|t| now.duration_since(t).unwrap_or_default())
    }

    pub fn address(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "id")]
pub enum TrafficAlarm {
    /// A bouncer sends the app to a side where app roles cannot log in: the app is down.
    OnFencedSide {
        bouncer: String,
        db: String,
        side: Side,
    },
    /// Bouncers (or entries) point at different sides, or some at neither.
    Disagree { detail: String },
    /// An entry has been paused for longer than the cutover would hold it.
    LongPause {
        bouncer: String,
        db: String,
        secs: u64,
    },
}

impl TrafficAlarm {
    pub fn message(&self) -> String {
        match self {
            TrafficAlarm::OnFencedSide { bouncer, db, side } => format!(
                "APP DOWN: {bouncer} sends `{db}` to {}, where app roles cannot log in; \
                 run the cutover or rollback again to finish the switch",
                side.upper()
            ),
            TrafficAlarm::Disagree { detail } => {
                format!(
                    "bouncers disagree: {detail}; run the cutover or rollback again to converge"
                )
            }
            TrafficAlarm::LongPause { bouncer, db, secs } => format!(
                "{bouncer} has held `{db}` paused for {secs} s: the app waits; \
                 `RESUME {db};` on its admin console, or run the switch again to finish"
            ),
        }
    }
}

/// The alarms over a reading. `writable` are the sides where app roles can log in; while a
/// switch runs (`switching`) the tool itself holds pauses and points at a fenced side for
/// milliseconds, so only a pause longer than `pause_limit` is an alarm then.
pub fn alarms(
    r: &TrafficReading,
    writable: &[Side],
    switching: bool,
    pause_limit: Duration,
    now: SystemTime,
) -> Vec<TrafficAlarm> {
    let mut out = Vec::new();
    if !switching {
        if let Pointed::Split = r.pointed() {
            let mut parts: Vec<String> = r
                .entries()
                .map(|(b, e)| {
                    format!(
                        "{} `{}` → {}",
                        b.name,
                        e.db,
                        e.side.map_or("neither side", Side::upper)
                    )
                })
                .collect();
            parts.sort();
            out.push(TrafficAlarm::Disagree {
                detail: parts.join(", "),
            });
        }
        // Only when some side is writable: with both fenced the phase alarm already says so.
        if !writable.is_empty() {
            for (b, e) in r.entries() {
                if let Some(s) = e.side
                    && !writable.contains(&s)
                {
                    out.push(TrafficAlarm::OnFencedSide {
                        bouncer: b.name.clone(),
                        db: e.db.clone(),
                        side: s,
                    });
                }
            }
        }
    }
    for (b, e) in r.entries() {
        if let Some(d) = e.paused_for(now)
            && d > pause_limit
        {
            out.push(TrafficAlarm::LongPause {
                bouncer: b.name.clone(),
                db: e.db.clone(),
                secs: d.as_secs(),
            });
        }
    }
    out
}

/// `server_login_retry` above this makes one refused login to the fenced side cost the app
/// that long after the switch.
const LOGIN_RETRY_ADVICE_S: u64 = 2;

/// Add the routers' checks to `out` (the other checks of the same observation), kept in the
/// order every check list has: failures first, then by severity. `writable` are the sides app
/// roles can log in on; the serving side is the one when there is exactly one.
pub fn add_checks(out: &mut Vec<Check>, r: &TrafficReading, writable: &[Side]) {
    let serving = match writable {
        [s] => Some(*s),
        _ => None,
    };
    out.extend(checks(r, serving));
    out.sort_by_key(|c| (c.ok, c.severity));
}

/// The `check` items for the routers. `serving` is the side app roles can log in on, when it
/// is exactly one.
pub fn checks(r: &TrafficReading, serving: Option<Side>) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |id, severity, ok, finding: String, fix: String| {
        out.push(Check {
            id,
            severity,
            ok,
            side: None,
            finding,
            fix: if ok { String::new() } else { fix },
        });
    };
    if let Some(p) = &r.command_problem {
        push(
            "router_command",
            Severity::Blocking,
            false,
            format!("[traffic.command] argv: {p}"),
            "install the program or correct argv; it must be executable by this user".into(),
        );
    } else if r.router == "command" {
        push(
            "router_command",
            Severity::Blocking,
            true,
            "[traffic.command] program found and executable".into(),
            String::new(),
        );
    }
    for b in &r.bouncers {
        bouncer_checks(&mut push, b, serving);
    }
    out
}

fn bouncer_checks(
    push: &mut impl FnMut(&'static str, Severity, bool, String, String),
    b: &BouncerReading,
    serving: Option<Side>,
) {
    if access_checks(push, b) {
        settings_checks(push, b);
        if let Some(side) = serving {
            serving_check(push, b, side);
        }
    }
}

/// Reachable with admin rights, every configured database there, the include file usable;
/// false when the bouncer could not be read at all.
fn access_checks(
    push: &mut impl FnMut(&'static str, Severity, bool, String, String),
    b: &BouncerReading,
) -> bool {
    let n = &b.name;
    if let Some(e) = &b.error {
        push(
            "bouncer_admin",
            Severity::Blocking,
            false,
            format!("{n} cannot be read: {e}"),
            "check [[traffic.pgbouncer]] admin, the network path, and that the user is in \
             PgBouncer's admin_users"
                .into(),
        );
        return false;
    }
    match b.admin_rights {
        Some(false) => push(
            "bouncer_admin",
            Severity::Blocking,
            false,
            format!(
                "{n}: the admin user may only SHOW (a stats user); PAUSE and RELOAD need admin rights"
            ),
            "add the user to admin_users in pgbouncer.ini and RELOAD".into(),
        ),
        _ => push(
            "bouncer_admin",
            Severity::Blocking,
            true,
            format!("{n} answers with admin rights"),
            String::new(),
        ),
    }
    if !b.missing.is_empty() {
        push(
            "bouncer_databases",
            Severity::Blocking,
            false,
            format!("{n} has no database {}", b.missing.join(", ")),
            "add the entries to the include file (or pgbouncer.ini) and RELOAD".into(),
        );
    }
    match &b.include {
        IncludeState::NotUsed => {}
        IncludeState::Matches { path } => push(
            "include_file",
            Severity::Blocking,
            true,
            format!("{n}: {path} is writable and matches SHOW DATABASES"),
            String::new(),
        ),
        IncludeState::Problem { path, problem } => push(
            "include_file",
            Severity::Blocking,
            false,
            format!("{n}: {path}: {problem}"),
            "the file must exist, be writable by pgcutover's user, be %included by pgbouncer.ini \
             and hold the configured databases as PgBouncer serves them (RELOAD after editing it)"
                .into(),
        ),
    }
    true
}

/// Settings that decide what the app sees during the switch: pool mode and login retry.
fn settings_checks(
    push: &mut impl FnMut(&'static str, Severity, bool, String, String),
    b: &BouncerReading,
) {
    let n = &b.name;
    let session: Vec<&str> = b
        .entries
        .iter()
        .filter(|e| e.pool_mode.as_deref() == Some("session"))
        .map(|e| e.db.as_str())
        .collect();
    push(
        "pool_mode",
        Severity::Warning,
        session.is_empty(),
        if session.is_empty() {
            format!("{n}: no configured database pools in session mode")
        } else {
            format!(
                "{n}: {} pooled in session mode: PAUSE waits for every client to disconnect, so \
                 the cutover is abandoned after pause_timeout_ms",
                session.join(", ")
            )
        },
        "use pool_mode = transaction for the app's databases, or have the app reconnect often"
            .into(),
    );
    if let Some(s) = b.server_login_retry_s {
        push(
            "server_login_retry",
            Severity::Warning,
            s <= LOGIN_RETRY_ADVICE_S,
            format!(
                "{n}: server_login_retry = {s} s{}",
                if s <= LOGIN_RETRY_ADVICE_S {
                    String::new()
                } else {
                    format!(
                        ": one login refused by the fenced side (an app that bypasses the PAUSE) \
                         makes the pool wait {s} s before trying the new side"
                    )
                }
            ),
            format!(
                "set server_login_retry = {LOGIN_RETRY_ADVICE_S} (or lower) in pgbouncer.ini and RELOAD"
            ),
        );
    }
}

/// Every configured database points at the side that serves.
fn serving_check(
    push: &mut impl FnMut(&'static str, Severity, bool, String, String),
    b: &BouncerReading,
    side: Side,
) {
    let n = &b.name;
    {
        let wrong: Vec<String> = b
            .entries
            .iter()
            .filter(|e| e.side != Some(side))
            .map(|e| {
                format!(
                    "`{}` → {} ({})",
                    e.db,
                    e.side.map_or("neither side", Side::upper),
                    e.address()
                )
            })
            .collect();
        push(
            "traffic_serving_side",
            Severity::Blocking,
            wrong.is_empty(),
            if wrong.is_empty() {
                format!("{n}: every configured database points at {}", side.upper())
            } else {
                format!("{n}: {} while {} serves", wrong.join(", "), side.upper())
            },
            "run the cutover or rollback again (it finishes the repointing), or repoint by hand \
             and RELOAD"
                .into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(db: &str, side: Option<Side>, paused: bool) -> RoutedEntry {
        RoutedEntry {
            db: db.into(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: db.into(),
            side,
            paused,
            paused_since: None,
            pool_mode: Some("transaction".into()),
            load: None,
        }
    }

    fn bouncer(name: &str, entries: Vec<RoutedEntry>) -> BouncerReading {
        BouncerReading {
            name: name.into(),
            error: None,
            entries,
            missing: Vec::new(),
            admin_rights: Some(true),
            server_login_retry_s: Some(1),
            include: IncludeState::Matches {
                path: "/etc/pgbouncer/pgcutover.ini".into(),
            },
        }
    }

    fn reading(bouncers: Vec<BouncerReading>) -> TrafficReading {
        TrafficReading {
            router: "pgbouncer",
            bouncers,
            command_problem: None,
        }
    }

    const GREEN: Option<Side> = Some(Side::Green);
    const BLUE: Option<Side> = Some(Side::Blue);

    #[test]
    fn pointed_is_one_side_only_when_every_entry_agrees_and_every_bouncer_answered() {
        let one = reading(vec![
            bouncer("a", vec![entry("app", GREEN, false)]),
            bouncer("b", vec![entry("app", GREEN, false)]),
        ]);
        assert_eq!(one.pointed(), Pointed::Side(Side::Green));
        let split = reading(vec![
            bouncer("a", vec![entry("app", GREEN, false)]),
            bouncer("b", vec![entry("app", BLUE, false)]),
        ]);
        assert_eq!(split.pointed(), Pointed::Split);
        let elsewhere = reading(vec![bouncer("a", vec![entry("app", None, false)])]);
        assert_eq!(elsewhere.pointed(), Pointed::Split);
        let unread = reading(vec![
            bouncer("a", vec![entry("app", GREEN, false)]),
            BouncerReading::failed("b", "refused".into()),
        ]);
        assert_eq!(unread.pointed(), Pointed::Unknown);
        assert_eq!(reading(vec![]).pointed(), Pointed::Unknown);
    }

    #[test]
    fn alarms_name_a_fenced_target_a_split_and_a_long_pause() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let limit = Duration::from_secs(5);
        let calm = reading(vec![bouncer("a", vec![entry("app", GREEN, false)])]);
        assert!(alarms(&calm, &[Side::Green], false, limit, t0).is_empty());

        let down = alarms(&calm, &[Side::Blue], false, limit, t0);
        assert_eq!(down.len(), 1);
        assert!(
            down[0].message().contains("APP DOWN"),
            "{}",
            down[0].message()
        );
        // During a switch the tool points at the fenced side on purpose, for milliseconds.
        assert!(alarms(&calm, &[Side::Blue], true, limit, t0).is_empty());
        // Both fenced: the phase's FENCED alarm says it once.
        assert!(alarms(&calm, &[], false, limit, t0).is_empty());

        let split = reading(vec![
            bouncer("a", vec![entry("app", GREEN, false)]),
            bouncer("b", vec![entry("app", BLUE, false)]),
        ]);
        let a = alarms(&split, &[Side::Green], false, limit, t0);
        assert!(
            a.iter().any(|a| matches!(a, TrafficAlarm::Disagree { detail } if detail.contains("b `app` → BLUE"))),
            "{a:?}"
        );

        let mut paused = reading(vec![bouncer("a", vec![entry("app", GREEN, true)])]);
        paused.stamp_pauses(None, t0);
        let mut later = paused.clone();
        later.stamp_pauses(Some(&paused), t0 + Duration::from_secs(9));
        assert_eq!(
            later.bouncers[0].entries[0].paused_for(t0 + Duration::from_secs(9)),
            Some(Duration::from_secs(9))
        );
        let a = alarms(
            &later,
            &[Side::Green],
            true,
            limit,
            t0 + Duration::from_secs(9),
        );
        assert_eq!(
            a,
            vec![TrafficAlarm::LongPause {
                bouncer: "a".into(),
                db: "app".into(),
                secs: 9
            }]
        );
        // Resumed: the clock starts again at the next pause.
        let mut resumed = reading(vec![bouncer("a", vec![entry("app", GREEN, false)])]);
        resumed.stamp_pauses(Some(&later), t0 + Duration::from_secs(10));
        assert_eq!(resumed.bouncers[0].entries[0].paused_since, None);
    }

    #[test]
    fn checks_fire_on_each_planted_problem_and_are_quiet_on_a_clean_bouncer() {
        let clean = reading(vec![bouncer("a", vec![entry("app", GREEN, false)])]);
        let c = checks(&clean, Some(Side::Green));
        assert!(c.iter().all(|c| c.ok), "{c:#?}");
        let ids: BTreeSet<&str> = c.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            BTreeSet::from([
                "bouncer_admin",
                "include_file",
                "pool_mode",
                "server_login_retry",
                "traffic_serving_side"
            ])
        );

        let failing = |b: BouncerReading, serving| -> Vec<&'static str> {
            checks(&reading(vec![b]), serving)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.id)
                .collect()
        };
        let mut b = bouncer("a", vec![entry("app", GREEN, false)]);
        b.admin_rights = Some(false);
        assert_eq!(failing(b, GREEN), vec!["bouncer_admin"]);
        let mut b = bouncer("a", vec![entry("app", GREEN, false)]);
        b.entries[0].pool_mode = Some("session".into());
        assert_eq!(failing(b, GREEN), vec!["pool_mode"]);
        let mut b = bouncer("a", vec![entry("app", GREEN, false)]);
        b.server_login_retry_s = Some(15);
        assert_eq!(failing(b, GREEN), vec!["server_login_retry"]);
        let mut b = bouncer("a", vec![entry("app", GREEN, false)]);
        b.include = IncludeState::Problem {
            path: "/x".into(),
            problem: "not writable".into(),
        };
        assert_eq!(failing(b, GREEN), vec!["include_file"]);
        let mut b = bouncer("a", vec![]);
        b.missing = vec!["app".into()];
        assert_eq!(failing(b, GREEN), vec!["bouncer_databases"]);
        assert_eq!(
            failing(bouncer("a", vec![entry("app", BLUE, false)]), GREEN),
            vec!["traffic_serving_side"]
        );
        assert_eq!(
            failing(BouncerReading::failed("a", "refused".into()), GREEN),
            vec!["bouncer_admin"]
        );
        let cmd = TrafficReading {
            router: "command",
            bouncers: vec![],
            command_problem: Some("/nope: not found".into()),
        };
        assert_eq!(
            checks(&cmd, GREEN)
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            vec!["router_command"]
        );
    }
}
