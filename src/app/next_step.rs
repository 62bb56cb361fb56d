//! The one line that says what to do next, in every phase: the operator in the window should not
//! have to work out from eight panels whether it is time to press a key.

use super::State;
use super::keys::Command;
use crate::domain::guards::Action;
use crate::domain::lag::Trend;
use crate::domain::observed::Side;
use crate::domain::phase::Phase;
use crate::format::{byte_rate, bytes, seconds};

/// How the line is shown: go ahead, wait, or stop and look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ready,
    Waiting,
    Alarm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub tone: Tone,
    pub text: String,
}

fn step(tone: Tone, text: impl Into<String>) -> NextStep {
    NextStep {
        tone,
        text: text.into(),
    }
}

pub fn next_step(st: &State) -> NextStep {
    let key = |a: Action| st.keymap.shown_key(Command::Run(a));
    // Short: the line shares 80 columns with the keys.
    let press = |a: Action, what: &str| format!("{} {what}", key(a));
    let mut n = next(st, &press);
    if !st.write && n.tone == Tone::Ready && st.phase.phase != Phase::Finalized {
        n.text.push_str(" · read-only: start with --write to act");
    }
    n
}

fn next(st: &State, press: &dyn Fn(Action, &str) -> String) -> NextStep {
    if let Some(r) = &st.running {
        return step(
            Tone::Waiting,
            format!("{} is running: follow it in the journal", r.action.name()),
        );
    }
    if Side::BOTH.iter().any(|s| st.connecting(*s)) {
        return step(Tone::Waiting, "connecting to both sides…");
    }
    if let Some(a) = st.phase.alarms.first() {
        return step(Tone::Alarm, format!("first: {}", a.message()));
    }
    if let Some(a) = st.traffic.iter().flat_map(|t| &t.alarms).next() {
        return step(Tone::Alarm, format!("first: {}", a.message()));
    }
    let ph = st.phase.phase;
    match ph {
        Phase::Unknown => step(
            Tone::Alarm,
            "phase unknown: a side does not answer; see Instances and the header",
        ),
        Phase::Setup => step(
            Tone::Ready,
            format!(
                "setup · {} (publication and slot)",
                press(Action::Prepare, "prepare BLUE")
            ),
        ),
        Phase::Prepared => step(
            Tone::Ready,
            format!(
                "prepared · restore GREEN from a snapshot taken after the slot, then {}",
                press(Action::Subscribe, "subscribe GREEN")
            ),
        ),
        Phase::Subscribed => subscribed(st, press),
        Phase::Replicating | Phase::RolledBack => replicating(st, press),
        Phase::CutOver => step(
            Tone::Ready,
            format!(
                "cut over: {} serves · {} · {} once the app is proven",
                st.source().upper(),
                press(Action::Rollback, "roll back"),
                press(Action::Finalize, "finalize")
            ),
        ),
        Phase::Finalized => step(
            Tone::Ready,
            "finalized: GREEN serves and the replication is removed; nothing left to do",
        ),
    }
}

fn subscribed(st: &State, press: &dyn Fn(Action, &str) -> String) -> NextStep {
    match &st.redo.value {
        Some(f) => step(
            Tone::Ready,
            format!(
                "subscribed · {} at origin {} ({} line {})",
                press(Action::Start, "start replication"),
                f.line.origin_lsn,
                f.source,
                f.line.line_no
            ),
        ),
        None => step(
            Tone::Waiting,
            "subscribed: waiting for GREEN's `redo done at` line (Redo panel)",
        ),
    }
}

/// Replicating (or rolled back, ready to go again): ready when the lag is below the gate and not
/// growing; otherwise how far above it and where it is going.
fn replicating(st: &State, press: &dyn Fn(Action, &str) -> String) -> NextStep {
    let src = st.source();
    let what = if st.phase.phase == Phase::RolledBack {
        "rolled back"
    } else {
        "replicating"
    };
    let (Some(lag), Some(gate)) = (st.lag.lag_bytes(src), st.gate_bytes) else {
        return step(Tone::Waiting, format!("{what}: waiting for lag samples"));
    };
    let trend = st.lag.trend(src);
    if lag < gate && !matches!(trend, Some(Trend::Growing { .. })) {
        return step(
            Tone::Ready,
            format!(
                "ready: lag {} < gate {} · {}",
                bytes(lag),
                bytes(gate),
                press(Action::Cutover, "cut over")
            ),
        );
    }
    let going = match trend {
        Some(Trend::Draining { eta, .. }) => format!(", draining, caught up in ~{}", seconds(eta)),
        Some(Trend::Growing { bytes_per_s }) => format!(", growing at {}", byte_rate(bytes_per_s)),
        _ => String::new(),
    };
    let rel = if lag < gate { "<" } else { "≥" };
    step(
        Tone::Waiting,
        format!(
            "{what}, waiting: lag {} {rel} gate {}{going}",
            bytes(lag),
            bytes(gate)
        ),
    )
}

/// What the application will experience if `action` runs now, in one line: how long it is held
/// and where its traffic goes. `None` for actions that do not touch the app's traffic.
pub fn app_experience(st: &State, action: Action) -> Option<String> {
    let to = st.source().other().upper();
    let from = st.source().upper();
    match action {
        Action::Cutover | Action::Rollback => Some(match st.traffic.as_ref() {
            Some(t) if t.router == "pgbouncer" => {
                let typical = st.last_switch.as_ref().and_then(|s| s.held_ms).map_or_else(
                    || "well under a second when the lag is low".to_string(),
                    |ms| format!("{ms:.0} ms at the last switch"),
                );
                format!(
                    "the app: PgBouncer holds its queries ({typical}; never more than {}), then sends them to {to}; no errors",
                    seconds(t.pause_limit)
                )
            }
            Some(_) => format!(
                "the app: its sessions on {from} end at the fence and must reconnect; the router command then points it at {to}"
            ),
            None => format!(
                "the app: its sessions on {from} end at the fence and {from} refuses its logins; it must reconnect to {to} itself (no [traffic] router)"
            ),
        }),
        Action::Finalize => Some(format!(
            "the app: nothing changes, {} keeps serving; the way back is dropped for good",
            st.source().upper()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::app::keys::Keymap;
    use crate::domain::lag::{LagSample, LagTime};
    use crate::domain::lsn::Lsn;
    use crate::domain::phase::Alarm;
    use crate::domain::testdata;

    fn state(phase: Phase) -> State {
        let mut st = State::new(
            testdata::names(),
            vec!["app".into()],
            true,
            Duration::from_secs(1),
            false,
            Keymap::default(),
        );
        for s in Side::BOTH {
            st.side_mut(s)
                .live
                .record(SystemTime::now(), Ok(testdata::live(s == Side::Blue)));
        }
        st.phase.phase = phase;
        st.gate_bytes = Some(100 * 1024);
        st
    }

    fn lag(st: &mut State, points: &[(u64, u64)]) {
        let t0 = Instant::now();
        for &(s, bytes) in points {
            st.lag.push(LagSample {
                at: t0 + Duration::from_secs(s),
                source: Side::Blue,
                current: Lsn::from_u64(10_000_000 + s * 1000),
                confirmed: Lsn::from_u64(10_000_000 + s * 1000 - bytes),
                time: LagTime::Behind {
                    lag: Duration::from_millis(300),
                    since_reply: None,
                },
            });
        }
    }

    #[test]
    fn connecting_until_both_sides_answer() {
        let mut st = state(Phase::Replicating);
        st.green = crate::app::SidePolled::default();
        assert_eq!(next_step(&st).text, "connecting to both sides…");
    }

    #[test]
    fn ready_below_the_gate_names_the_key() {
        let mut st = state(Phase::Replicating);
        lag(&mut st, &[(0, 2_000), (1, 1_000), (2, 1_500)]);
        let n = next_step(&st);
        assert_eq!(n.tone, Tone::Ready);
        assert_eq!(n.text, "ready: lag 1.5 kB < gate 100.0 kB · C cut over");
        st.write = false;
        assert!(next_step(&st).text.ends_with("start with --write to act"));
    }

    #[test]
    fn waiting_above_the_gate_says_where_lag_is_going() {
        let mut st = state(Phase::Replicating);
        let pts: Vec<(u64, u64)> = (0..30).map(|s| (s, 3_000_000 - s * 50_000)).collect();
        lag(&mut st, &pts);
        let n = next_step(&st);
        assert_eq!(n.tone, Tone::Waiting);
        assert!(
            n.text
                .starts_with("replicating, waiting: lag 1.5 MB ≥ gate 100.0 kB, draining"),
            "{}",
            n.text
        );
        assert!(n.text.contains("caught up in ~"), "{}", n.text);
    }

    #[test]
    fn an_alarm_comes_first_and_a_running_action_says_where_to_look() {
        let mut st = state(Phase::Replicating);
        st.phase.alarms.push(Alarm::SplitBrain);
        assert_eq!(next_step(&st).tone, Tone::Alarm);
        assert!(next_step(&st).text.contains("SPLIT BRAIN"));
        st.running = Some(crate::app::Running {
            action: Action::Cutover,
            started: Instant::now(),
            fenced_at: None,
        });
        assert_eq!(
            next_step(&st).text,
            "cutover is running: follow it in the journal"
        );
    }

    #[test]
    fn the_app_experience_names_the_router_and_the_hold() {
        let mut st = state(Phase::Replicating);
        assert!(
            app_experience(&st, Action::Cutover)
                .unwrap()
                .contains("must reconnect to GREEN itself")
        );
        st = st.with_traffic("pgbouncer", Duration::from_secs(70));
        assert_eq!(
            app_experience(&st, Action::Cutover).unwrap(),
            "the app: PgBouncer holds its queries (well under a second when the lag is low; never more than 1 min 10 s), then sends them to GREEN; no errors"
        );
        assert_eq!(app_experience(&st, Action::Prepare), None);
    }

    #[test]
    fn every_phase_has_a_next_step() {
        for ph in [
            Phase::Unknown,
            Phase::Setup,
            Phase::Prepared,
            Phase::Subscribed,
            Phase::Replicating,
            Phase::CutOver,
            Phase::RolledBack,
            Phase::Finalized,
        ] {
            let n = next_step(&state(ph));
            assert!(!n.text.is_empty(), "{ph:?}");
        }
        assert!(
            next_step(&state(Phase::Setup))
                .text
                .contains("P prepare BLUE")
        );
        assert!(
            next_step(&state(Phase::Subscribed))
                .text
                .contains("redo done at")
        );
    }
}
