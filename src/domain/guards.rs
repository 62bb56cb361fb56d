//! Guards: what must hold, on fresh data, for an action to run. Pure; the engine evaluates them
//! just before it acts and refuses with the failing ones.

use serde::Serialize;

use super::checks::Check;
use super::lsn::Lsn;
use super::observed::{Live, QualName, Side};
use super::phase::{Alarm, Direction, MigrationNames, Phase, PhaseReport, ROLLED_BACK_MARK};
use crate::sql::ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "side")]
pub enum Action {
    Prepare,
    Subscribe,
    Start,
    Cutover,
    Rollback,
    Finalize,
    /// ANALYZE GREEN's tables that have no planner statistics, largest first, in parallel.
    Analyze,
    /// Compare the rows of both sides while one replicates into the other (reads only).
    Verify,
    Fence(Side),
    Unfence(Side),
    /// Snapshot, upgrade-snapshot, restore: guarded by RDS facts (`domain::rds_plan`).
    Rds(super::rds_plan::RdsAction),
}

impl Action {
    /// The actions the dashboard offers keys for, in the order its help lists them.
    pub const ON_DASHBOARD: [Action; 8] = [
        Action::Prepare,
        Action::Subscribe,
        Action::Start,
        Action::Cutover,
        Action::Rollback,
        Action::Finalize,
        Action::Analyze,
        Action::Verify,
    ];

    /// Every action's word, as the command line, the journal and `[keys]` write it.
    pub const WORDS: [&'static str; 13] = [
        "prepare",
        "subscribe",
        "start",
        "cutover",
        "rollback",
        "finalize",
        "analyze",
        "verify",
        "fence",
        "unfence",
        "snapshot",
        "upgrade-snapshot",
        "restore",
    ];

    /// The action's word, without the side of fence and unfence.
    pub fn word(self) -> &'static str {
        match self {
            Action::Prepare => "prepare",
            Action::Subscribe => "subscribe",
            Action::Start => "start",
            Action::Cutover => "cutover",
            Action::Rollback => "rollback",
            Action::Finalize => "finalize",
            Action::Analyze => "analyze",
            Action::Verify => "verify",
            Action::Fence(_) => "fence",
            Action::Unfence(_) => "unfence",
            Action::Rds(a) => a.name(),
        }
    }

    pub fn name(self) -> String {
        match self {
            Action::Fence(s) | Action::Unfence(s) => format!("{} {s}", self.word()),
            _ => self.word().into(),
        }
    }

    /// The action from its word (and the side fence and unfence need).
    pub fn from_word(word: &str, side: Option<Side>) -> Result<Action, String> {
        use super::rds_plan::RdsAction;
        let needs_side = |f: fn(Side) -> Action| {
            side.map(f)
                .ok_or_else(|| format!("{word} needs a side: `{word} blue` or `{word} green`"))
        };
        let a = match word {
            "prepare" => Action::Prepare,
            "subscribe" => Action::Subscribe,
            "start" => Action::Start,
            "cutover" => Action::Cutover,
            "rollback" => Action::Rollback,
            "finalize" => Action::Finalize,
            "analyze" => Action::Analyze,
            "verify" => Action::Verify,
            "fence" => return needs_side(Action::Fence),
            "unfence" => return needs_side(Action::Unfence),
            "snapshot" => Action::Rds(RdsAction::Snapshot),
            "upgrade-snapshot" => Action::Rds(RdsAction::UpgradeSnapshot),
            "restore" => Action::Rds(RdsAction::Restore),
            other => {
                return Err(format!(
                    "no action {other:?}; the actions: {}",
                    Self::WORDS.join(", ")
                ));
            }
        };
        if side.is_some() {
            return Err(format!("{word} takes no side (only fence and unfence do)"));
        }
        Ok(a)
    }

    /// One line on what the action does, for help texts.
    pub fn describe(self) -> &'static str {
        use super::rds_plan::RdsAction;
        match self {
            Action::Prepare => "prepare BLUE: replication role, publication, slot",
            Action::Subscribe => "subscribe GREEN: fence it, disabled subscription on the slot",
            Action::Start => "start: advance the origin to the redo LSN + 1, enable",
            Action::Cutover => "cut over BLUE → GREEN (guarded, confirmed)",
            Action::Rollback => "roll back GREEN → BLUE (guarded, confirmed)",
            Action::Finalize => "finalize: drop the way back once GREEN is trusted",
            Action::Analyze => {
                "analyze GREEN: planner statistics for its tables without any, largest first, in parallel"
            }
            Action::Verify => "verify: compare every table's rows on both sides (reads only)",
            Action::Fence(_) => "fence a side: app roles NOLOGIN, their sessions ended",
            Action::Unfence(_) => "unfence a side: app roles LOGIN",
            Action::Rds(RdsAction::Snapshot) => "RDS: CreateDBSnapshot of BLUE (after prepare)",
            Action::Rds(RdsAction::UpgradeSnapshot) => {
                "RDS: ModifyDBSnapshot to [aws] engine_version"
            }
            Action::Rds(RdsAction::Restore) => "RDS: RestoreDBInstanceFromDBSnapshot as GREEN",
        }
    }

    /// The direction replication runs after the action (cutover/rollback).
    pub fn direction(self) -> Option<Direction> {
        match self {
            Action::Cutover => Some(Direction::BlueToGreen),
            Action::Rollback => Some(Direction::GreenToBlue),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guard {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Guard {
    pub(crate) fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Guard {
        Guard {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// Where a cutover (or rollback) stands, read from the live state, so a rerun after a crash
/// continues instead of repeating or doubling anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchMode {
    /// Source serves, forward replication runs: the whole action.
    Full,
    /// Both sides fenced with the forward subscription still there: a previous run stopped
    /// inside the window; redo the window from the fence (every step is idempotent).
    ResumeWindow,
    /// Target serves, source fenced, leftovers of the forward path or the reverse path not yet
    /// enabled: a previous run passed the point of no return; finish it.
    Finish,
    /// Already done.
    Done,
    /// None of the above: refuse and explain.
    Unclear,
}

impl SwitchMode {
    /// What the run will do, in words, for the dialog and the plan's text.
    pub fn words(self) -> &'static str {
        match self {
            SwitchMode::Full => "full run: every step below, from the lag gate to the unfence",
            SwitchMode::ResumeWindow => {
                "resume: a previous run stopped inside the window (both sides fenced); the window is \
                 run again from the fence, each step is safe to repeat"
            }
            SwitchMode::Finish => {
                "finish: a previous run already switched the app; only the steps left after the \
                 switch run"
            }
            SwitchMode::Done => "nothing to do: this switch is already complete",
            SwitchMode::Unclear => "refused: the sides are in no state this action starts from",
        }
    }
}

/// The state of the switch from `src` to `tgt` (source before the action).
pub fn switch_mode(names: &MigrationNames, src: &Live, tgt: &Live) -> SwitchMode {
    let fwd = tgt.subscription(&names.subscription);
    let rev = src.subscription(&names.subscription);
    let src_slot = src.slot(&names.slot).is_some();
    // An enabled reverse subscription while the forward one exists would send rows in a loop.
    let rev_enabled = rev.is_some_and(|r| r.enabled);
    match (src.writable(), tgt.writable()) {
        (true, false) if fwd.is_some() && src_slot && !rev_enabled => SwitchMode::Full,
        (false, false) if fwd.is_some() && src_slot && !rev_enabled => SwitchMode::ResumeWindow,
        (false, true) => {
            let reverse_running = rev.is_some_and(|r| r.enabled);
            if fwd.is_none() && !src_slot && reverse_running {
                SwitchMode::Done
            } else if rev.is_some() {
                SwitchMode::Finish
            } else {
                SwitchMode::Unclear
            }
        }
        _ => SwitchMode::Unclear,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LagGate {
    pub max_bytes: u64,
    pub needed: usize,
    /// Lag samples taken just now, oldest first.
    pub samples: Vec<u64>,
    /// How long the switch's gate step waits for the lag to come down (0: refuse now).
    pub wait_s: u64,
}

pub struct GuardInput<'a> {
    pub names: &'a MigrationNames,
    pub app_roles: &'a [String],
    pub phase: &'a PhaseReport,
    pub blue: Option<&'a Live>,
    pub green: Option<&'a Live>,
    pub errors: [Option<&'a str>; 2],
    pub checks: &'a [Check],
    pub lag: Option<&'a LagGate>,
    /// For `start`: the origin LSN and where it came from, or why there is none.
    pub origin: Option<&'a Result<(Lsn, String), String>>,
    /// The roles pgcutover itself logs in as (each side's login, the replication user): never
    /// app roles, or a fence would lock the tool out and end the replication.
    pub tool_roles: &'a [String],
}

impl<'a> GuardInput<'a> {
    fn live(&self, s: Side) -> Option<&'a Live> {
        match s {
            Side::Blue => self.blue,
            Side::Green => self.green,
        }
    }
}

fn reachable(input: &GuardInput, sides: &[Side], out: &mut Vec<Guard>) -> bool {
    let mut all = true;
    for &s in sides {
        let idx = usize::from(s != Side::Blue);
        if input.live(s).is_some() {
            out.push(Guard::new(
                "reachable",
                true,
                format!("{} answers", s.upper()),
            ));
        } else {
            all = false;
            out.push(Guard::new(
                "reachable",
                false,
                format!(
                    "{} cannot be read: {}",
                    s.upper(),
                    input.errors[idx].unwrap_or("no data")
                ),
            ));
        }
    }
    all
}

fn no_split_brain(input: &GuardInput, out: &mut Vec<Guard>) {
    let split = input.phase.alarms.contains(&Alarm::SplitBrain);
    out.push(Guard::new(
        "no_split_brain",
        !split,
        if split {
            "app roles can log in on BOTH sides: only fencing is allowed until one side is fenced (pgcutover run fence SIDE)"
        } else {
            "the app can log in on at most one side"
        },
    ));
}

fn no_blocking_checks(input: &GuardInput, out: &mut Vec<Guard>) {
    let failing: Vec<String> = input
        .checks
        .iter()
        // tables_subscribed is a guard of its own, read as the switch is planned
        .filter(|c| c.blocks() && c.id != "reachable" && c.id != "tables_subscribed")
        .map(|c| format!("{}: {}", c.id, c.finding))
        .collect();
    out.push(Guard::new(
        "preflight",
        failing.is_empty(),
        if failing.is_empty() {
            "no blocking pre-flight check fails".to_string()
        } else {
            failing.join("; ")
        },
    ));
}

fn phase_in(input: &GuardInput, allowed: &[Phase], out: &mut Vec<Guard>) {
    let p = input.phase.phase;
    let ok = allowed.contains(&p);
    let names: Vec<&str> = allowed.iter().map(|p| p.label()).collect();
    out.push(Guard::new(
        "phase",
        ok,
        if ok {
            format!("phase is {}", p.label())
        } else {
            format!(
                "phase is {}, this action needs {}",
                p.label(),
                names.join(" or ")
            )
        },
    ));
}

/// Guards every action that sets LOGIN/NOLOGIN shares: there are app roles to act on, and none
/// of them is a role the tool itself needs.
fn roles_fit_for_fencing(input: &GuardInput, out: &mut Vec<Guard>) {
    out.push(Guard::new(
        "app_roles_set",
        !input.app_roles.is_empty(),
        if input.app_roles.is_empty() {
            "no app roles are configured: set [cutover] app_roles to the roles the application logs in as; a \
             fence of no role would stop nothing"
                .to_string()
        } else {
            format!("{} app role(s)", input.app_roles.len())
        },
    ));
    let ours: Vec<&String> = input
        .app_roles
        .iter()
        .filter(|r| input.tool_roles.contains(r))
        .collect();
    out.push(Guard::new(
        "app_roles_not_ours",
        ours.is_empty(),
        if ours.is_empty() {
            "no app role is one pgcutover logs in or replicates as".to_string()
        } else {
            format!(
                "app role(s) {} are also roles pgcutover logs in or replicates as: fencing them would lock the \
                 tool out and stop the replication; give the tool and the replication their own roles",
                ours.iter()
                    .map(|r| format!("\"{}\"", crate::text::echo(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    ));
}

pub fn evaluate(action: Action, input: &GuardInput) -> Vec<Guard> {
    let mut out = Vec::new();
    if matches!(
        action,
        Action::Fence(_)
            | Action::Unfence(_)
            | Action::Subscribe
            | Action::Cutover
            | Action::Rollback
    ) {
        roles_fit_for_fencing(input, &mut out);
    }
    match action {
        // Their guards need RDS facts: `rds_plan::evaluate`.
        Action::Rds(_) => {}
        Action::Fence(side) => {
            reachable(input, &[side], &mut out);
        }
        Action::Unfence(side) => unfence(side, input, &mut out),
        Action::Prepare => prepare(input, &mut out),
        Action::Subscribe => subscribe(input, &mut out),
        Action::Start => start(input, &mut out),
        Action::Cutover => switch(Side::Blue, input, &mut out),
        Action::Rollback => switch(Side::Green, input, &mut out),
        Action::Finalize => {
            if reachable(input, &Side::BOTH, &mut out) {
                no_split_brain(input, &mut out);
                phase_in(input, &[Phase::CutOver, Phase::Finalized], &mut out);
            }
        }
        Action::Verify => {
            if reachable(input, &Side::BOTH, &mut out) {
                let d = input.phase.direction;
                out.push(Guard::new(
                    "replicating",
                    d.is_some(),
                    match d {
                        Some(d) => format!("replication runs {}: its rows are compared", d.label()),
                        None => format!(
                            "no side replicates into the other (phase {}): verify compares a pair after `start` or after a switch",
                            input.phase.phase.label()
                        ),
                    },
                ));
            }
        }
        Action::Analyze => {
            if reachable(input, &[Side::Green], &mut out)
                && let Some(g) = input.green
            {
                out.push(Guard::new(
                    "green_writable",
                    !g.server.in_recovery,
                    if g.server.in_recovery {
                        "GREEN is still in recovery (a standby or a restore in progress): ANALYZE cannot run there; wait until it is promoted"
                    } else {
                        "GREEN is not in recovery: ANALYZE can run"
                    },
                ));
            }
        }
    }
    out
}

/// Unfencing a side must not make both writable.
fn unfence(side: Side, input: &GuardInput, out: &mut Vec<Guard>) {
    if reachable(input, &Side::BOTH, out) {
        let other = side.other();
        let other_writable = input.live(other).is_some_and(Live::writable);
        out.push(Guard::new(
            "other_side_fenced",
            !other_writable,
            if other_writable {
                format!(
                    "the app can log in on {}: unfencing {} would make both writable",
                    other.upper(),
                    side.upper()
                )
            } else {
                format!("{} is fenced", other.upper())
            },
        ));
    }
}

/// BLUE can hold a publication and a slot, and the phase is before the subscription.
fn prepare(input: &GuardInput, out: &mut Vec<Guard>) {
    let names = input.names;
    // (`reachable` has pushed a failed guard when the side cannot be read)
    if reachable(input, &[Side::Blue], out)
        && let Some(b) = input.blue
    {
        if input.green.is_none() {
            let ok = super::phase::blue_alone_is_before_cutover(names, b);
            out.push(Guard::new(
                "phase",
                ok,
                if ok {
                    "GREEN is not reachable (not restored yet?); BLUE alone: serving, never cut over"
                } else {
                    "GREEN is not reachable and BLUE does not look like a side before its cutover \
                     (fenced, or holding a subscription): the phase is unknown; make GREEN reachable"
                },
            ));
        } else {
            phase_in(input, &[Phase::Setup, Phase::Prepared], out);
        }
        out.push(Guard::new(
            "wal_level",
            b.server.wal_level == "logical",
            format!("BLUE wal_level = {}", b.server.wal_level),
        ));
        out.push(Guard::new(
            "not_in_recovery",
            !b.server.in_recovery,
            "BLUE is a primary",
        ));
        let free = b.server.max_replication_slots - b.server.replication_slots_used;
        let has = b.slot(&names.slot).is_some();
        out.push(Guard::new(
            "slot_free",
            has || free > 0,
            format!("{free} replication slot(s) free on BLUE"),
        ));
        if input.green.is_some() {
            no_split_brain(input, out);
        }
    }
}

/// GREEN is a finished restore, BLUE serves with its publication and slot.
fn subscribe(input: &GuardInput, out: &mut Vec<Guard>) {
    let names = input.names;
    if reachable(input, &Side::BOTH, out)
        && let (Some(b), Some(gr)) = (input.blue, input.green)
    {
        phase_in(input, &[Phase::Prepared, Phase::Subscribed], out);
        out.push(Guard::new(
            "blue_publication",
            b.publication(&names.publication).is_some(),
            format!("publication {} on BLUE", ident(&names.publication)),
        ));
        out.push(Guard::new(
            "blue_slot",
            b.slot(&names.slot).is_some(),
            format!("slot {} on BLUE", ident(&names.slot)),
        ));
        out.push(Guard::new(
            "green_primary",
            !gr.server.in_recovery,
            "GREEN is a primary (restore finished)",
        ));
        // A fresh copy of BLUE has the app roles with LOGIN: subscribe fences GREEN first,
        // so that split brain is the one it is allowed to act on.
        let blue_writable = b.writable();
        out.push(Guard::new(
            "blue_serves",
            blue_writable,
            if blue_writable {
                "BLUE accepts app logins"
            } else {
                "BLUE is fenced: subscribe expects BLUE to serve"
            },
        ));
        no_blocking_checks(input, out);
    }
}

/// The subscription uses the migration's slot, and (before the first start) the origin LSN is
/// known and consistent with BLUE's slot.
fn start(input: &GuardInput, out: &mut Vec<Guard>) {
    let names = input.names;
    if reachable(input, &Side::BOTH, out)
        && let (Some(b), Some(gr)) = (input.blue, input.green)
    {
        no_split_brain(input, out);
        phase_in(input, &[Phase::Subscribed, Phase::Replicating], out);
        if let Some(sub) = gr.subscription(&names.subscription) {
            let right_slot = sub.slot_name.as_deref() == Some(names.slot.as_str());
            out.push(Guard::new(
                "subscription_slot",
                right_slot,
                format!(
                    "subscription {} uses slot {}",
                    ident(&sub.name),
                    sub.slot_name.as_deref().unwrap_or("NONE")
                ),
            ));
        }
        if input.phase.phase == Phase::Subscribed {
            match input.origin {
                None => out.push(Guard::new(
                    "origin_lsn",
                    false,
                    "no origin LSN: configure [redo] log_file or pass --lsn X/Y",
                )),
                Some(Err(e)) => out.push(Guard::new("origin_lsn", false, e.clone())),
                Some(Ok((lsn, from))) => {
                    out.push(Guard::new(
                        "origin_lsn",
                        true,
                        format!("origin {lsn} ({from})"),
                    ));
                    let slot = b.slot(&names.slot);
                    match (
                        slot.and_then(|s| s.confirmed_flush_lsn),
                        b.server.current_lsn,
                    ) {
                        (Some(conf), Some(cur)) => {
                            let r = super::redo::cross_check(*lsn, conf, cur);
                            out.push(Guard::new("origin_cross_check", r.is_ok(), r.err().unwrap_or_else(|| format!("slot confirmed {conf} ≤ origin {lsn} ≤ BLUE's current {cur}"))));
                        }
                        _ => out.push(Guard::new(
                            "origin_cross_check",
                            false,
                            "BLUE's slot or current LSN is unknown",
                        )),
                    }
                }
            }
        }
        no_blocking_checks(input, out);
    }
}

/// Cutover (`src_side` = BLUE) or rollback (`src_side` = GREEN): what state the pair is in,
/// and for a full switch, whether the target has everything.
fn switch(src_side: Side, input: &GuardInput, out: &mut Vec<Guard>) {
    let names = input.names;
    let tgt_side = src_side.other();
    if !reachable(input, &Side::BOTH, out) {
        return;
    }
    let (Some(src), Some(tgt)) = (input.live(src_side), input.live(tgt_side)) else {
        return;
    };
    no_split_brain(input, out);
    let (su, tu) = (src_side.upper(), tgt_side.upper());
    let phase = input.phase.phase.label();
    // A pair that never cut over looks like a finished rollback. A real rollback (even one
    // interrupted) leaves a subscription on BLUE, an armed (disabled) one on GREEN, or its mark
    // on GREEN's subscription.
    let never_switched = src_side == Side::Green && {
        let on_blue = tgt.subscription(&names.subscription);
        let on_green = src.subscription(&names.subscription);
        on_blue.is_none()
            && on_green.is_some_and(|s| {
                s.enabled
                    && !s
                        .comment
                        .as_deref()
                        .is_some_and(|c| c.starts_with(ROLLED_BACK_MARK))
            })
    };
    let (ok, detail) = match switch_mode(names, src, tgt) {
        SwitchMode::Done | SwitchMode::Finish if never_switched => (
            false,
            format!("nothing to roll back: {tu} serves and no cutover happened (phase {phase})"),
        ),
        SwitchMode::Done => (
            true,
            format!("already done: {tu} serves, {su} applies from it"),
        ),
        SwitchMode::Finish => (
            true,
            format!("{tu} already serves: finishing the switch (reverse path, cleanup)"),
        ),
        SwitchMode::ResumeWindow => (
            true,
            "both sides fenced by an interrupted run: resuming the window".to_string(),
        ),
        SwitchMode::Unclear => (
            false,
            format!(
                "{su} must serve with the subscription {} on {tu} replicating from it (phase is {phase})",
                ident(&names.subscription),
            ),
        ),
        SwitchMode::Full => {
            out.push(Guard::new(
                "state",
                true,
                format!("{su} serves, {tu} applies from it"),
            ));
            full_switch(input, (src_side, src), (tgt_side, tgt), out);
            return;
        }
    };
    out.push(Guard::new("state", ok, detail));
}

/// A full switch's target is streaming, has the app roles, and has caught up.
fn full_switch(input: &GuardInput, src: (Side, &Live), tgt: (Side, &Live), out: &mut Vec<Guard>) {
    let (su, tu) = (src.0.upper(), tgt.0.upper());
    let streaming = tgt
        .1
        .subscription(&input.names.subscription)
        .map(|s| (s.is_streaming(), s.enabled));
    out.push(Guard::new(
        "streaming",
        streaming.is_some_and(|(on, _)| on),
        match streaming {
            Some((true, _)) => format!("apply worker running on {tu}"),
            Some((false, enabled)) => {
                format!("subscription on {tu} is not streaming (enabled: {enabled})")
            }
            None => format!("no subscription on {tu}"),
        },
    ));
    let prepared = src.1.server.prepared_xacts;
    out.push(Guard::new(
        "no_prepared_xacts",
        prepared == 0,
        format!("{prepared} prepared transaction(s) on {su}"),
    ));
    let missing: Vec<String> = [src.1, tgt.1]
        .iter()
        .flat_map(|l| {
            l.app_roles
                .iter()
                .filter(|r| !r.exists)
                .map(|r| ident(&r.name))
        })
        .collect();
    let roles_detail = if input.app_roles.is_empty() {
        "no app roles configured".to_string()
    } else if missing.is_empty() {
        "app roles exist on both sides".to_string()
    } else {
        format!("missing app roles: {}", missing.join(", "))
    };
    out.push(Guard::new(
        "app_roles",
        !input.app_roles.is_empty() && missing.is_empty(),
        roles_detail,
    ));
    match input.lag {
        None => out.push(Guard::new("lag", false, "lag not sampled")),
        Some(l) => {
            let low = l.samples.len() >= l.needed
                && l.samples
                    .iter()
                    .rev()
                    .take(l.needed)
                    .all(|b| *b < l.max_bytes);
            let waits = if low || l.wait_s == 0 {
                String::new()
            } else {
                format!(
                    "; not yet: the lag_gate step waits up to {} s for it ([cutover] gate_timeout_s)",
                    l.wait_s
                )
            };
            out.push(Guard::new(
                "lag",
                low || l.wait_s > 0,
                format!(
                    "last {} samples {}; the gate: below {} for {} in a row ([cutover] max_lag_bytes, steady_samples){waits}",
                    l.samples.len(),
                    l.samples
                        .iter()
                        .map(|b| crate::format::bytes(*b))
                        .collect::<Vec<_>>()
                        .join(", "),
                    crate::format::bytes(l.max_bytes),
                    l.needed
                ),
            ));
        }
    }
    no_blocking_checks(input, out);
}

/// Every table the source publishes is one the target's subscription knows. A table created
/// on both sides after the subscription, and never added to it (`REFRESH PUBLICATION`), is
/// skipped by the apply worker without a word: the schema is the same on both sides, and its
/// rows never reach the target. `db` names the database when several are replicated.
pub fn tables_subscribed(
    db: Option<&str>,
    source: Side,
    target: Side,
    subscription: &str,
    published: &[QualName],
    subscribed: &[QualName],
) -> Guard {
    let prefix = super::names::db_prefix(db);
    match super::checks::unsubscribed(source, target, subscription, published, subscribed) {
        None => Guard::new(
            "tables_subscribed",
            true,
            format!(
                "{prefix}{} subscribes every table {} publishes ({})",
                target.upper(),
                source.upper(),
                published.len()
            ),
        ),
        Some((finding, fix)) => Guard::new(
            "tables_subscribed",
            false,
            format!("{prefix}{finding}. Run {fix}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phase::derive;
    use crate::domain::testdata::{live, names, with_pub_slot, with_sub};

    fn q(schema: &str, name: &str) -> QualName {
        QualName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_published_table_the_subscription_lacks_refuses_the_switch_and_says_refresh() {
        let published = [
            q("public", "a"),
            q("Ünïcode", "New \"t\""),
            q("public", "b"),
        ];
        let all = tables_subscribed(None, Side::Blue, Side::Green, "sub", &published, &published);
        assert!(all.ok, "{}", all.detail);
        let g = tables_subscribed(
            Some("billing"),
            Side::Blue,
            Side::Green,
            "sub",
            &published,
            // a table the source no longer publishes does not matter
            &[q("public", "a"), q("public", "b"), q("public", "gone")],
        );
        assert!(!g.ok);
        assert!(
            g.detail.starts_with("[billing] BLUE publishes 1 table(s)"),
            "{}",
            g.detail
        );
        assert!(
            g.detail.contains(r#""Ünïcode"."New ""t""""#),
            "{}",
            g.detail
        );
        assert!(
            g.detail
                .contains("ALTER SUBSCRIPTION sub REFRESH PUBLICATION on GREEN"),
            "{}",
            g.detail
        );
    }

    #[test]
    fn every_action_word_parses_back_to_its_action() {
        for w in Action::WORDS {
            let a = Action::from_word(w, None)
                .or_else(|_| Action::from_word(w, Some(Side::Green)))
                .unwrap();
            assert_eq!(a.word(), w);
            assert!(!a.describe().is_empty());
        }
        for a in Action::ON_DASHBOARD {
            assert_eq!(Action::from_word(a.word(), None), Ok(a));
        }
        assert!(
            Action::from_word("fence", None)
                .unwrap_err()
                .contains("needs a side")
        );
        assert!(
            Action::from_word("cutover", Some(Side::Blue))
                .unwrap_err()
                .contains("no side")
        );
        assert!(
            Action::from_word("nuke", None)
                .unwrap_err()
                .contains("prepare, subscribe")
        );
    }

    #[test]
    fn action_names() {
        assert_eq!(Action::Unfence(Side::Green).name(), "unfence green");
        assert_eq!(Action::Rollback.direction(), Some(Direction::GreenToBlue));
    }

    #[test]
    fn switch_modes_from_the_live_state() {
        let n = names();
        // blue serves, green applies: a full cutover
        let blue = with_pub_slot(live(true));
        let green = with_sub(with_pub_slot(live(false)), true, None);
        assert_eq!(switch_mode(&n, &blue, &green), SwitchMode::Full);
        // both fenced with the forward path present: a run died inside the window
        let blue_fenced = with_pub_slot(live(false));
        assert_eq!(
            switch_mode(&n, &blue_fenced, &green),
            SwitchMode::ResumeWindow
        );
        // green serves, forward leftovers and the armed reverse subscription: finish
        let green_serving = with_sub(with_pub_slot(live(true)), false, None);
        let blue_armed = with_sub(with_pub_slot(live(false)), false, None);
        assert_eq!(
            switch_mode(&n, &blue_armed, &green_serving),
            SwitchMode::Finish
        );
        // green serves, blue applies, no forward path: done
        let blue_applying = with_sub(live(false), true, None);
        assert_eq!(
            switch_mode(&n, &blue_applying, &with_pub_slot(live(true))),
            SwitchMode::Done
        );
        // an enabled reverse subscription beside the forward path would loop: unclear
        let blue_looping = with_sub(with_pub_slot(live(true)), true, None);
        assert_eq!(switch_mode(&n, &blue_looping, &green), SwitchMode::Unclear);
        // nobody applies and green serves without a reverse path: unclear
        assert_eq!(
            switch_mode(&n, &live(false), &live(true)),
            SwitchMode::Unclear
        );
    }

    fn eval(action: Action, b: &Live, g: &Live, lag: Option<&LagGate>) -> Vec<Guard> {
        let n = names();
        let roles = vec!["app".to_string()];
        let phase = derive(&n, Some(b), Some(g));
        evaluate(
            action,
            &GuardInput {
                tool_roles: &[],
                names: &n,
                app_roles: &roles,
                phase: &phase,
                blue: Some(b),
                green: Some(g),
                errors: [None, None],
                checks: &[],
                lag,
                origin: None,
            },
        )
    }

    fn failing(gs: &[Guard]) -> Vec<&'static str> {
        gs.iter().filter(|g| !g.ok).map(|g| g.name).collect()
    }

    #[test]
    fn fencing_needs_app_roles_that_are_not_the_tools_own() {
        let n = names();
        let (b, gr) = (live(true), live(false));
        let phase = derive(&n, Some(&b), Some(&gr));
        for (roles, tool, want) in [
            (vec![], vec!["postgres".to_string()], "app_roles_set"),
            (
                vec!["app".to_string(), "postgres".to_string()],
                vec!["postgres".to_string()],
                "app_roles_not_ours",
            ),
            (
                vec!["app".to_string(), "rep".to_string()],
                vec!["postgres".to_string(), "rep".to_string()],
                "app_roles_not_ours",
            ),
        ] {
            for action in [
                Action::Fence(Side::Blue),
                Action::Unfence(Side::Green),
                Action::Subscribe,
                Action::Cutover,
                Action::Rollback,
            ] {
                let gs = evaluate(
                    action,
                    &GuardInput {
                        tool_roles: &tool,
                        names: &n,
                        app_roles: &roles,
                        phase: &phase,
                        blue: Some(&b),
                        green: Some(&gr),
                        errors: [None, None],
                        checks: &[],
                        lag: None,
                        origin: None,
                    },
                );
                assert!(failing(&gs).contains(&want), "{action:?} {roles:?}: {gs:?}");
            }
        }
    }

    #[test]
    fn cutover_guards() {
        let blue = with_pub_slot(live(true));
        let green = with_sub(with_pub_slot(live(false)), true, None);
        let low = LagGate {
            max_bytes: 100,
            needed: 3,
            samples: vec![10, 20, 30],
            wait_s: 0,
        };
        assert!(failing(&eval(Action::Cutover, &blue, &green, Some(&low))).is_empty());
        let high = LagGate {
            max_bytes: 100,
            needed: 3,
            samples: vec![10, 200, 30],
            wait_s: 0,
        };
        assert_eq!(
            failing(&eval(Action::Cutover, &blue, &green, Some(&high))),
            ["lag"]
        );
        let short = LagGate {
            max_bytes: 100,
            needed: 3,
            samples: vec![10],
            wait_s: 0,
        };
        assert_eq!(
            failing(&eval(Action::Cutover, &blue, &green, Some(&short))),
            ["lag"]
        );
        // with a gate that waits, a high lag is not a refusal: the gate step waits for it
        let waits = LagGate { wait_s: 60, ..high };
        let gs = eval(Action::Cutover, &blue, &green, Some(&waits));
        assert!(failing(&gs).is_empty(), "{gs:?}");
        assert!(
            gs.iter().any(|g| g.detail.contains("gate_timeout_s")),
            "{gs:?}"
        );
        // a rollback of a pair that never cut over is refused, not "nothing to do"
        assert_eq!(
            failing(&eval(Action::Rollback, &blue, &green, None)),
            ["state"]
        );
        // split brain refuses everything but fencing
        let both = with_sub(with_pub_slot(live(true)), true, None);
        assert!(
            failing(&eval(Action::Cutover, &blue, &both, Some(&low))).contains(&"no_split_brain")
        );
        assert!(failing(&eval(Action::Fence(Side::Green), &blue, &both, None)).is_empty());
        assert_eq!(
            failing(&eval(Action::Unfence(Side::Green), &blue, &green, None)),
            ["other_side_fenced"]
        );
    }
}
