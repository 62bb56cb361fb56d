//! Cutover and rollback: one procedure, parameterised by direction.
//!
//! Before the window (no downtime): the forward subscription commits synchronously; the reverse
//! path is armed: a slot on the target and a subscription on the source, created disabled; the
//! sequences are copied a first time.
//! The window (source fenced → target unfenced): fence the source, read its LSN, wait until the
//! target has confirmed it, stop the forward subscription, read the target's LSN, start the
//! reverse subscription's origin there (so it never re-sends what came from the source), copy
//! the sequences, verify the fence, unfence the target. After: drop the forward path, enable the
//! reverse one. With several databases, only what must run in each database runs per database
//! (side by side); the rest reaches them all from one connection, so the window does not grow
//! by a statement per database for it.
//! (Both must never be enabled together: PostgreSQL 15 has no `origin = none`, rows would loop.)
//!
//! `plan` lists the steps as data from the observed state (a step whose effect is already there
//! is left out); `run` executes that same list, step by step. Any failure inside the window
//! puts the source back in service (`undo`); after the target is unfenced the engine only
//! finishes, and a rerun completes what is left.

mod cron;
mod exec;
mod undo;

use color_eyre::eyre::Result;

use super::scope::Scope;
use super::sqlgen;
use super::step::{Step, by_step};
use super::steps::disabled_subscription;
use super::{Ctx, Outcome, traffic};
use crate::collect::queries;
use crate::config::Settings;
use crate::domain::guards::{Action, Guard, SwitchMode, switch_mode};
use crate::domain::lsn::Lsn;
use crate::domain::observed::{Live, QualName, Side};
use crate::domain::phase::{MigrationNames, ROLLED_BACK_MARK};
use crate::domain::step::{Edge, StepId};

/// Source and target of the action.
pub fn sides(action: Action) -> (Side, Side) {
    if action == Action::Cutover {
        (Side::Blue, Side::Green)
    } else {
        (Side::Green, Side::Blue)
    }
}

/// One replicated database as both sides show it now.
pub struct Pair<'a> {
    pub scope: &'a Scope,
    pub s: &'a Live,
    pub t: &'a Live,
}

impl Pair<'_> {
    fn db(&self) -> Option<&str> {
        self.scope.db.as_deref()
    }
    fn settings(&self) -> &Settings {
        &self.scope.settings
    }
    fn mode(&self) -> SwitchMode {
        switch_mode(&self.scope.settings.names, self.s, self.t)
    }
}

/// The switch's mode for every database at once: they go through the window together, so they
/// must all be before it, or all past it (a run killed after the unfence leaves some finished
/// and some not, which the rerun completes).
fn combined_mode(pairs: &[Pair]) -> Result<SwitchMode, Guard> {
    let modes: Vec<(String, SwitchMode)> =
        pairs.iter().map(|p| (p.scope.prefix(), p.mode())).collect();
    combine(&modes)
}

fn combine(modes: &[(String, SwitchMode)]) -> Result<SwitchMode, Guard> {
    let Some(&(_, first)) = modes.first() else {
        return Err(Guard {
            name: "databases",
            ok: false,
            detail: "internal: a switch planned without a database".into(),
        });
    };
    if modes.iter().all(|(_, m)| *m == first) {
        return Ok(first);
    }
    if modes
        .iter()
        .all(|(_, m)| matches!(m, SwitchMode::Finish | SwitchMode::Done))
    {
        return Ok(SwitchMode::Finish);
    }
    let each: Vec<String> = modes
        .iter()
        .map(|(prefix, m)| format!("{prefix}{m:?}"))
        .collect();
    Err(Guard {
        name: "databases",
        ok: false,
        detail: format!(
            "the databases are at different stages of the switch ({}): read `pgcutover status` and the journal before anything else",
            each.join(", ")
        ),
    })
}

/// The steps from the observed state of every database's source and target, and the notes to
/// show. `settings` are those of the instance-wide steps.
pub fn plan(
    action: Action,
    settings: &Settings,
    pairs: &[Pair],
    bouncers: &[traffic::BouncerView],
) -> Result<(SwitchMode, Vec<Step>, Vec<String>), Guard> {
    let (src, tgt) = sides(action);
    let mode = combined_mode(pairs)?;
    let first = &pairs[0];
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if matches!(mode, SwitchMode::Full | SwitchMode::ResumeWindow) {
        notes.extend(window_notes(settings, src, first.s));
        let (carry, carry_notes) = carried_slots(settings, src, tgt, first.s, first.t);
        notes.extend(carry_notes);
        steps.extend(by_step(pairs.iter().map(|p| {
            let armed = arm_steps(p.settings(), src, tgt, p.s, p.t);
            armed.into_iter().map(|s| s.in_db(p.db())).collect()
        })));
        steps.extend(traffic::pause_step(settings, src));
        steps.extend(window_steps(settings, pairs, src, tgt));
        // Inside the window, before the unfence: the new slots start after the last row
        // replicated and before the first write the app makes on the target.
        for step in carry_steps(tgt, &carry, pairs).into_iter().rev() {
            let at = steps
                .iter()
                .position(|s| s.id == StepId::VerifyFence)
                .unwrap_or(steps.len());
            steps.insert(at, step);
        }
        if let Some((pause, resume)) = cron::steps(settings, src, tgt, first.s, first.t)? {
            let at = |steps: &[Step], id: StepId| steps.iter().position(|s| s.id == id);
            if let Some(i) = at(&steps, StepId::Fence) {
                steps.insert(i + 1, pause);
            }
            if let Some(i) = at(&steps, StepId::TargetLsn) {
                steps.insert(i, resume);
            }
        }
        notes.extend(cron::note(settings, first.s, src));
        // the application follows before the cleanup: it waits in the pause meanwhile
        steps.extend(traffic::follow_steps(settings, tgt, None));
    }
    if matches!(mode, SwitchMode::Finish | SwitchMode::Done) {
        // a previous run passed the point of no return: finish moving the traffic
        let views = (!bouncers.is_empty()).then_some(bouncers);
        if views.is_some() || mode == SwitchMode::Finish {
            steps.extend(traffic::follow_steps(settings, tgt, views));
        }
    }
    let mut waits = Vec::new();
    let mut finish = Vec::new();
    for p in pairs {
        let m = p.mode();
        if matches!(
            m,
            SwitchMode::Full | SwitchMode::ResumeWindow | SwitchMode::Finish
        ) {
            let done = finish_steps(action, p.settings(), m, src, tgt, p.s, p.t);
            let (wait, rest): (Vec<Step>, Vec<Step>) = done
                .into_iter()
                .partition(|s| s.id == StepId::ReverseStreaming);
            finish.push(rest.into_iter().map(|s| s.in_db(p.db())).collect());
            waits.extend(wait.into_iter().map(|s| s.in_db(p.db())));
        }
    }
    steps.extend(by_step(finish));
    // Every reverse subscription enabled before waiting for any worker: up to PostgreSQL 15
    // the launcher starts workers at most once per wal_retrieve_retry_interval (5 s), so one
    // wait per database in turn would cost that interval per database.
    steps.extend(waits);
    if mode == SwitchMode::Done && steps.is_empty() {
        notes.push(format!(
            "{} already serves and {} applies from it: nothing to do",
            tgt.upper(),
            src.upper()
        ));
    }
    Ok((mode, steps, notes))
}

/// What the window will do to others on the source, read just now: the transactions the fence
/// ends and the logical slots whose consumers lose their source at the switch.
fn window_notes(settings: &Settings, src: Side, s: &Live) -> Vec<String> {
    let su = src.upper();
    let mut notes = Vec::new();
    if !s.open_xacts.is_empty() {
        let list: Vec<String> = s
            .open_xacts
            .iter()
            .map(crate::domain::observed::OpenXact::describe)
            .collect();
        notes.push(format!(
            "{su}: the fence ends {} open transaction(s): {}",
            list.len(),
            list.join(", ")
        ));
    }
    let others: Vec<String> = s
        .other_logical_slots(&settings.names)
        .map(|sl| {
            let at = sl
                .confirmed_flush_lsn
                .map_or_else(|| "?".to_string(), |l| l.to_string());
            let behind = sl
                .lag_bytes(s.server.current_lsn)
                .map(|b| format!(", {} behind now", crate::format::bytes(b)))
                .unwrap_or_default();
            format!("{} at {at}{behind}", crate::sql::ident(&sl.name))
        })
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "{su}: other logical slots stop receiving at the fence: {}; their consumers must start again on {} from the fence LSN the journal records",
            others.join(", "),
            src.other().upper()
        ));
    }
    notes
}

/// The `[cutover] carry_slots` to create on the target, as (name, plugin), and why any other
/// is left alone.
/// A consumer's slot to create on the target, with its plugin, in its database.
struct Carried {
    name: String,
    plugin: String,
    database: Option<String>,
}

fn carried_slots(
    settings: &Settings,
    src: Side,
    tgt: Side,
    s: &Live,
    t: &Live,
) -> (Vec<Carried>, Vec<String>) {
    let (su, tu) = (src.upper(), tgt.upper());
    let mut carry = Vec::new();
    let mut notes = Vec::new();
    for name in &settings.cutover.carry_slots {
        let shown = crate::sql::ident(name);
        if settings.names.owns_slot(name) {
            notes.push(format!(
                "carry_slots: {shown} is pgcutover's own slot; it is not carried"
            ));
            continue;
        }
        match (s.slot(name), t.slot(name)) {
            (_, Some(_)) => notes.push(format!(
                "carry_slots: {shown} is already on {tu}; left as it is (drop it there to carry it again)"
            )),
            (Some(sl), None) if sl.is_logical() => {
                carry.push(Carried {
                    name: name.clone(),
                    plugin: sl.plugin.clone().unwrap_or_else(|| "pgoutput".into()),
                    database: sl.database.clone(),
                });
            }
            (Some(_), None) => notes.push(format!(
                "carry_slots: {shown} on {su} is not a logical slot; only logical slots are carried"
            )),
            (None, None) => notes.push(format!(
                "carry_slots: {shown} is not on {su}; nothing to carry"
            )),
        }
    }
    if !carry.is_empty() {
        let names: Vec<String> = carry.iter().map(|c| crate::sql::ident(&c.name)).collect();
        notes.push(format!(
            "carried slots {} start on {tu} at the switch point: point each consumer at {tu} and let it start from the slot's own position (request LSN 0/0), not from the {su} LSN it stored",
            names.join(", ")
        ));
    }
    (carry, notes)
}

/// A logical slot belongs to a database: each carried slot is created in its own, one step per
/// database.
fn carry_steps(tgt: Side, carry: &[Carried], pairs: &[Pair]) -> Vec<Step> {
    let tu = tgt.upper();
    let several = pairs.len() > 1;
    let mut steps: Vec<Step> = Vec::new();
    for c in carry {
        let db = if several { c.database.as_deref() } else { None };
        let at = steps.iter().position(|s| s.db.as_deref() == db);
        let step = match at {
            Some(i) => steps.remove(i),
            None => Step::new(
                StepId::CarrySlots,
                tgt,
                format!("carry the consumers' slots: create them on {tu} at the switch point"),
            )
            .in_db(db),
        };
        steps.push(step.creating(&c.name, sqlgen::create_slot_for(&c.name, &c.plugin)));
    }
    steps
}

/// Before the window: nothing here blocks the application.
fn arm_steps(settings: &Settings, src: Side, tgt: Side, s: &Live, t: &Live) -> Vec<Step> {
    let n = &settings.names;
    let (su, tu) = (src.upper(), tgt.upper());
    let mut steps = Vec::new();
    let fwd = t.subscription(&n.subscription);
    // synchronous_commit is taken up by the running worker at its next transaction (it re-reads
    // its subscription on change); no restart, so no wait.
    if fwd.is_some_and(|f| f.synchronous_commit != "on") {
        steps.push(
            Step::new(
                StepId::SyncCommit,
                tgt,
                format!("forward subscription commits synchronously ({tu})"),
            )
            .stmt(sqlgen::alter_subscription(
                &n.subscription,
                "SET (synchronous_commit = on)",
            )),
        );
    }
    if fwd.is_some_and(|f| !f.enabled) {
        steps.push(
            Step::new(
                StepId::ResumeForward,
                tgt,
                format!("re-enable the forward subscription an interrupted run stopped ({tu})"),
            )
            .stmt(sqlgen::alter_subscription(&n.subscription, "ENABLE")),
        );
    }
    // The window must not start without a forward worker: the launcher may take up to
    // wal_retrieve_retry_interval (5 s) to start one, and that wait belongs out here.
    steps.push(
        Step::new(
            StepId::ForwardStreaming,
            tgt,
            format!("forward apply worker running on {tu}"),
        )
        .stmt(sqlgen::subscription_workers(&n.subscription))
        .repeat(format!(
            "until a worker runs, up to {} s",
            exec::WORKER_START.as_secs()
        )),
    );
    steps.push(lag_gate_step(settings, src, tgt));
    if t.slot(&n.slot).is_none() {
        steps.push(
            Step::new(
                StepId::ArmSlot,
                tgt,
                format!("arm the reverse path: slot on {tu}"),
            )
            .stmt(sqlgen::create_slot(&n.slot)),
        );
    }
    if t.publication(&n.publication).is_none() {
        steps.push(
            Step::new(
                StepId::ArmPublication,
                tgt,
                format!("publication on {tu} for the reverse path"),
            )
            .stmt(sqlgen::create_publication(&n.publication)),
        );
    }
    if s.subscription(&n.subscription).is_none() {
        steps.push(
            Step::new(
                StepId::ArmSubscription,
                src,
                format!("arm the reverse path: subscription on {su}, disabled"),
            )
            .stmt(disabled_subscription(settings, tgt)),
        );
    }
    // Ahead of the window the same copy costs nothing to the app, and the one inside it then
    // runs on connections that have already read these catalogues: cold, 5 databases' copies
    // at once took up to 17 ms here. A sequence never goes backwards, so twice is harmless.
    steps.push(sequences_step(
        StepId::SequencesAhead,
        src,
        tgt,
        format!(
            "copy every sequence {su} → {tu} ahead of the window too (read on {su}, set on {tu})"
        ),
    ));
    steps
}

/// Copy the source's sequences to the target: read on the source, set on the target.
fn sequences_step(id: StepId, src: Side, tgt: Side, title: String) -> Step {
    let (su, tu) = (src.upper(), tgt.upper());
    Step::new(id, tgt, title)
        .stmt_noted(sqlgen::sequence_list(), format!("on {su}"))
        .later(format!(
            "{}  -- on {su}, only past the first {n} sequences, in batches of {n}",
            placeholder(
                &sqlgen::sequence_values(&[0]).shown,
                &[("ARRAY[0]", "ARRAY[<oids>]")]
            ),
            n = queries::SEQUENCE_BATCH
        ))
        .later(
            placeholder(
                &sqlgen::setval_batch(&[(
                    QualName {
                        schema: "<schema>".into(),
                        name: "<sequence>".into(),
                    },
                    0,
                )])
                .shown,
                &[("ARRAY[0]", &format!("ARRAY[<value from {su}>]"))],
            ) + &format!("  -- on {tu}"),
        )
}

/// The lag gate waits (the forward subscription already commits synchronously, so its
/// confirmed position is current) instead of refusing at the first high sample.
fn lag_gate_step(settings: &Settings, src: Side, tgt: Side) -> Step {
    let (su, tu) = (src.upper(), tgt.upper());
    let c = &settings.cutover;
    Step::new(
        StepId::LagGate,
        src,
        format!(
            "lag gate: {tu} within {} bytes of {su} for {} samples {} ms apart",
            c.max_lag_bytes,
            c.steady_samples,
            c.sample_interval.as_millis()
        ),
    )
    .stmt(sqlgen::slot_lag(&settings.names.slot))
    .repeat(format!(
        "until it holds, up to {} s ([cutover] gate_timeout_s)",
        c.gate_timeout.as_secs()
    ))
}

/// The window: from the source's fence to the target's unfence.
#[allow(clippy::too_many_lines)] // the window's ten steps as one table, in the order they run
fn window_steps(settings: &Settings, pairs: &[Pair], src: Side, tgt: Side) -> Vec<Step> {
    let roles = &settings.app_roles;
    let c = &settings.cutover;
    let (su, tu) = (src.upper(), tgt.upper());
    let slots: Vec<&str> = pairs
        .iter()
        .map(|p| p.settings().names.slot.as_str())
        .collect();
    // the instance-wide steps reach every database's objects from one connection: the window
    // grows with every statement run per database (more connections at once only contend)
    let subs: Vec<(&str, Option<&str>)> = pairs.iter().map(|p| p.scope.subscription()).collect();
    let dbs: Vec<Option<&str>> = pairs.iter().map(Pair::db).collect();
    // per database: each step in each database, in the order of the databases
    let each = |f: &dyn Fn(&MigrationNames) -> Step| -> Vec<Step> {
        pairs
            .iter()
            .map(|p| f(&p.settings().names).in_db(p.db()))
            .collect()
    };
    let mut steps = vec![
        Step::new(
            StepId::Fence,
            src,
            format!("WINDOW OPENS — fence {su}: app roles NOLOGIN, sessions ended"),
        )
        .edge(Edge::Opens)
        .stmt(sqlgen::set_login(roles, false))
        .stmt(sqlgen::terminate_sessions(roles))
        .stmt(sqlgen::count_sessions(roles))
        .stmts((!c.fence_grace.is_zero()).then(|| sqlgen::terminate_idle_sessions(roles)))
        .repeat(if c.fence_grace.is_zero() {
            format!(
                "the last two until 0 are left, up to {} s",
                c.fence_timeout.as_secs()
            )
        } else {
            format!(
                "idle sessions ended at once (the last), open transactions given {} ms to finish, \
                 then all ended (the second); until 0 are left, up to {} s",
                c.fence_grace.as_millis(),
                c.fence_timeout.as_secs()
            )
        }),
        Step::new(
            StepId::PreparedXacts,
            src,
            format!("refuse if prepared transactions remain on {su}"),
        )
        .stmt(sqlgen::count_prepared_xacts(&dbs)),
        Step::new(StepId::SourceLsn, src, format!("{su}'s last LSN")).stmt(sqlgen::current_lsn()),
        Step::new(
            StepId::Drain,
            src,
            format!("wait until {tu} confirmed everything up to it, in every database"),
        )
        .stmt(sqlgen::slot_confirmed_flush(&slots))
        .repeat(format!(
            "until every confirmed_flush_lsn ≥ <{su} LSN>, up to {} s",
            c.drain_timeout.as_secs()
        )),
    ];
    steps.extend(each(&|n: &MigrationNames| {
        Step::new(
            StepId::StopForward,
            tgt,
            format!("disable the forward subscription ({tu})"),
        )
        .stmt(sqlgen::alter_subscription(&n.subscription, "DISABLE"))
    }));
    steps.push(
        Step::new(
            StepId::TargetLsn,
            tgt,
            format!("{tu}'s LSN, the reverse path's start"),
        )
        .stmt(sqlgen::current_lsn()),
    );
    steps.push(
        Step::new(
            StepId::ArmOrigin,
            src,
            format!("start the reverse subscriptions' origins at <{tu} LSN> ({su})"),
        )
        .later(placeholder(
            &sqlgen::subscription_origins_set(&subs, Lsn::ZERO).shown,
            &[("'0/0'", &format!("'<{tu} LSN>'"))],
        )),
    );
    steps.extend(each(&|_: &MigrationNames| {
        sequences_step(
            StepId::Sequences,
            src,
            tgt,
            format!("copy every sequence {su} → {tu}, never backwards (read on {su}, set on {tu})"),
        )
    }));
    steps.push(
        Step::new(
            StepId::VerifyFence,
            src,
            format!(
                "verify the fence: nothing on {su} holds a transaction id (else undo); did one end since its last LSN?"
            ),
        )
        .stmt(sqlgen::xid_horizon(&dbs)),
    );
    // A disabled worker ends on its own within a second, outside the window; ending it here
    // would spend the window on its exit (and its walsender's), unless a slot is to be decoded
    steps.push(
        Step::new(
            StepId::EndForwardWorkers,
            tgt,
            format!(
                "only if a transaction ended on {su}: end the forward apply workers ({tu}), so the slots can be decoded"
            ),
        )
        .stmt(sqlgen::terminate_subscriptions_workers(&subs)),
    );
    steps.extend(each(&|n: &MigrationNames| {
        Step::new(
            StepId::DecodeSlot,
            src,
            format!("only if a transaction ended on {su}: no write in the slot after the drain"),
        )
        .stmt(sqlgen::peek_data_changes(&n.slot, &n.publication))
        .repeat(format!(
            "run only if a transaction ended on {su} since its last LSN; retried while the slot's \
             walsender exits, up to {} s; any row → undo",
            exec::WALSENDER_EXIT.as_secs()
        ))
    }));
    steps.push(
        Step::new(
            StepId::Unfence,
            tgt,
            format!("WINDOW CLOSES — unfence {tu}: app roles LOGIN"),
        )
        .edge(Edge::Closes)
        .stmt(sqlgen::set_login(roles, true)),
    );
    steps
}

/// After the point of no return: the forward path goes, the reverse path starts.
fn finish_steps(
    action: Action,
    settings: &Settings,
    mode: SwitchMode,
    src: Side,
    tgt: Side,
    s: &Live,
    t: &Live,
) -> Vec<Step> {
    let n = &settings.names;
    let (su, tu) = (src.upper(), tgt.upper());
    let mut steps = Vec::new();
    if let Some(fwd) = t.subscription(&n.subscription) {
        // the window disables it; a rerun that only finishes finds it as it is
        let enabled = mode == SwitchMode::Finish && fwd.enabled;
        steps.push(
            Step::new(
                StepId::DropForward,
                tgt,
                format!("drop the forward subscription ({tu})"),
            )
            .stmts(sqlgen::drop_subscription(&n.subscription, enabled)),
        );
    }
    if s.slot(&n.slot).is_some() {
        steps.push(
            Step::new(
                StepId::DropSourceSlot,
                src,
                format!("drop the forward slot ({su})"),
            )
            .stmt(sqlgen::drop_slot(&n.slot))
            .repeat(format!(
                "retried while its walsender exits (SQLSTATE 55006), up to {} s",
                exec::WALSENDER_EXIT.as_secs()
            )),
        );
    }
    if action == Action::Rollback {
        steps.push(
            Step::new(
                StepId::MarkRollback,
                src,
                "mark the subscription as a rollback's",
            )
            .later(
                sqlgen::comment_subscription(
                    &n.subscription,
                    &format!("{ROLLED_BACK_MARK} at <time>"),
                )
                .shown,
            ),
        );
    }
    steps.push(
        Step::new(
            StepId::StartReverse,
            src,
            format!("start replication {tu} → {su}"),
        )
        .stmt(sqlgen::alter_subscription(&n.subscription, "ENABLE")),
    );
    steps.push(
        Step::new(
            StepId::ReverseStreaming,
            src,
            format!("reverse apply worker running on {su}"),
        )
        .stmt(sqlgen::subscription_origin(&n.subscription))
        .repeat(format!(
            "until its worker runs, up to {} s",
            exec::WORKER_START_REVERSE.as_secs()
        )),
    );
    steps
}

/// A statement as the plan shows it, with the values known only while running as `<…>`.
fn placeholder(shown: &str, swaps: &[(&str, &str)]) -> String {
    swaps
        .iter()
        .fold(shown.to_string(), |s, (from, to)| s.replacen(from, to, 1))
}

/// Where a step stands: before the window, inside it, or past the point of no return.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Arm,
    Window,
    Finish,
}

/// A step's stage, from its place between the steps that open and close the window.
fn stage(steps: &[Step], i: usize) -> Stage {
    let opens = steps.iter().position(|s| s.window == Some(Edge::Opens));
    let closes = steps.iter().position(|s| s.window == Some(Edge::Closes));
    if opens.is_some_and(|o| i < o) {
        Stage::Arm
    } else if closes.is_some_and(|c| i <= c) {
        Stage::Window
    } else {
        Stage::Finish
    }
}

/// A step failed: what is left depends on where it stood.
async fn on_failure(
    action: Action,
    settings: &Settings,
    stage: Stage,
    dbs: &exec::Conns,
    progress: &exec::Progress,
    ctx: &Ctx<'_>,
    e: color_eyre::eyre::Report,
) -> Result<Outcome> {
    let (su, tu) = (dbs.s.side.upper(), dbs.t.side.upper());
    match stage {
        Stage::Arm => {
            // the pause step resumes what it paused; anything after it must too
            if !progress.traffic.paused.is_empty() {
                let problems = traffic::resume_all(settings, ctx).await;
                if !problems.is_empty() {
                    return Err(e.wrap_err(format!(
                        "and RESUME failed: {}; RESUME by hand",
                        problems.join("; ")
                    )));
                }
            }
            Err(e)
        }
        Stage::Window => {
            let mut out = undo::undo(settings, dbs, ctx, &progress.changed, e).await?;
            // the bouncers still point at the source: resume them only if it serves again
            if matches!(out, Outcome::FailedSafe { .. }) && !progress.traffic.paused.is_empty() {
                let problems = traffic::resume_all(settings, ctx).await;
                out.append(&if problems.is_empty() {
                    format!("; PgBouncer resumed, still pointing at {su}: the app saw only latency")
                } else {
                    format!("; PgBouncer RESUME failed: {}", problems.join("; "))
                });
            } else if !progress.traffic.paused.is_empty() {
                out.append("; PgBouncer is still PAUSED: rerun to finish the switch and resume it");
            }
            Ok(out)
        }
        Stage::Finish => Ok(Outcome::FailedAfterSwitch {
            error: crate::format::report_chain(&e),
            state: format!(
                "{tu} serves (app roles LOGIN), {su} is fenced.{} The reverse path is not finished; \
                     run `pgcutover run {}` again to complete it",
                if progress.traffic.paused.is_empty() {
                    String::new()
                } else {
                    " PgBouncer is still PAUSED (the app waits): the rerun repoints and resumes it first.".to_string()
                },
                action.name()
            ),
        }),
    }
}

/// The end of the group of steps starting at `i` that run at the same time: a stretch of
/// steps each of one database that only read the progress. Each database's steps run in their
/// order; the databases do not wait for each other, so the window does not grow with their
/// number.
fn alongside_end(steps: &[Step], i: usize) -> usize {
    let runs = |s: &Step| s.db.is_some() && exec::runs_alongside(s.id);
    if !runs(&steps[i]) {
        return i + 1;
    }
    i + steps[i..].iter().take_while(|s| runs(s)).count()
}

/// A step's detail, named with its database when several are replicated: their steps finish
/// in any order.
fn with_db(step: &Step, detail: &str) -> String {
    format!(
        "{}{detail}",
        crate::domain::names::db_prefix(step.db.as_deref())
    )
}

/// Run a group's steps, each database's in order and the databases at once. Every database
/// runs to its end or its first failure, so none is left half-done by another's; returns the
/// first failure in the plan's order (its place in the group), the others as notes.
async fn run_alongside(
    group: &[Step],
    action: Action,
    settings: &Settings,
    dbs: &exec::Conns,
    progress: &mut exec::Progress,
    ctx: &Ctx<'_>,
) -> Option<(usize, color_eyre::eyre::Report)> {
    for step in group {
        exec::before_alongside(step, progress);
    }
    let progress = &*progress;
    let mut chains: Vec<Vec<(usize, &Step)>> = Vec::new();
    for (k, step) in group.iter().enumerate() {
        match chains.iter_mut().find(|c| c[0].1.db == step.db) {
            Some(c) => c.push((k, step)),
            None => chains.push(vec![(k, step)]),
        }
    }
    let results = futures_util::future::join_all(chains.into_iter().map(|chain| async move {
        for (k, step) in chain {
            let done = async {
                let t0 = ctx.begin_at_edge(step.id, &step.title, Some(step.side), step.window)?;
                let detail = exec::alongside(step, action, settings, dbs, progress, ctx).await?;
                ctx.end_at_edge(step.id, t0, &with_db(step, &detail), step.window)
            }
            .await;
            if let Err(e) = done {
                return Some((k, e));
            }
        }
        None
    }))
    .await;
    let mut failures: Vec<(usize, color_eyre::eyre::Report)> =
        results.into_iter().flatten().collect();
    failures.sort_by_key(|(k, _)| *k);
    let mut failures = failures.into_iter();
    let first = failures.next();
    for (k, e) in failures {
        let _ = ctx.note(format!(
            "{}also failed: {}",
            crate::domain::names::db_prefix(group[k].db.as_deref()),
            crate::format::report_chain(&e)
        ));
    }
    first
}

/// Run the planned steps, in order.
pub async fn run(
    action: Action,
    settings: &Settings,
    scopes: &[Scope],
    mode: SwitchMode,
    steps: &[Step],
    notes: &[String],
    ctx: &Ctx<'_>,
) -> Result<Outcome> {
    if mode == SwitchMode::Done && steps.is_empty() {
        return Ok(Outcome::NothingToDo {
            summary: notes.join("; "),
        });
    }
    let (src, tgt) = sides(action);
    let (su, tu) = (src.upper(), tgt.upper());
    let dbs = exec::Conns::open(settings, action, steps, scopes).await?;
    let mut progress = exec::Progress::default();
    let mut i = 0;
    while i < steps.len() {
        let group = &steps[i..alongside_end(steps, i)];
        let failed = if let [step] = group {
            let result = async {
                let t0 = ctx.begin_at_edge(step.id, &step.title, Some(step.side), step.window)?;
                let detail = exec::step(step, action, settings, &dbs, &mut progress, ctx).await?;
                ctx.end_at_edge(step.id, t0, &with_db(step, &detail), step.window)
            }
            .await;
            result.err().map(|e| (0, e))
        } else {
            run_alongside(group, action, settings, &dbs, &mut progress, ctx).await
        };
        if let Some((k, e)) = failed {
            let step = &group[k];
            if step.id == StepId::RouterCommand
                && let Some(lsn) = progress.target_lsn
            {
                // the target may not have taken a write yet: then the switch can still be undone
                return undo::after_command(action, settings, &dbs, ctx, &progress.changed, lsn, e)
                    .await;
            }
            return on_failure(
                action,
                settings,
                stage(steps, i + k),
                &dbs,
                &progress,
                ctx,
                e,
            )
            .await;
        }
        i += group.len();
    }
    let held = progress
        .traffic
        .held_ms
        .map(|ms| format!("; the app was held {ms:.0} ms by PgBouncer"))
        .unwrap_or_default();
    Ok(Outcome::Done {
        summary: match progress.window_ms {
            Some(ms) => format!(
                "{tu} serves; {su} fenced and applying from {tu}; writes were unavailable for {ms:.0} ms{held}"
            ),
            None => format!("finished: {tu} serves; {su} applies from {tu}{held}"),
        },
        window_ms: progress.window_ms,
        held_ms: progress.traffic.held_ms,
        steps: ctx.steps(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testdata;

    fn settings() -> Settings {
        crate::config::from_str(
            "[cutover]\napp_roles = [\"app\"]\n\
             [blue]\ndsn = \"host=127.0.0.1 port=1 dbname=app user=admin\"\n\
             [green]\ndsn = \"host=127.0.0.1 port=2 dbname=app user=admin\"\n",
            None,
            &Default::default(),
        )
        .unwrap()
    }

    fn one(st: &Settings) -> Scope {
        Scope {
            db: None,
            settings: st.clone(),
        }
    }

    fn window(st: &Settings, scopes: &[Scope]) -> Vec<Step> {
        let (s, t) = (testdata::live(true), testdata::live(false));
        let pairs: Vec<Pair> = scopes
            .iter()
            .map(|scope| Pair {
                scope,
                s: &s,
                t: &t,
            })
            .collect();
        window_steps(st, &pairs, Side::Blue, Side::Green)
    }

    fn three(st: &Settings) -> Vec<Scope> {
        ["app", "billing", "Ünïcode \"db\""]
            .iter()
            .map(|d| Scope {
                db: Some((*d).to_string()),
                settings: st.for_database(d),
            })
            .collect()
    }

    #[test]
    fn several_databases_share_one_window() {
        let mut st = settings();
        st.names.databases = crate::domain::names::DatabaseSet::Listed(vec![
            "app".into(),
            "billing".into(),
            "Ünïcode \"db\"".into(),
        ]);
        let scopes = three(&st);
        let steps = window(&st, &scopes);
        let count = |id: StepId| steps.iter().filter(|s| s.id == id).count();
        for id in [
            StepId::Fence,
            StepId::PreparedXacts,
            StepId::SourceLsn,
            StepId::Drain,
            StepId::EndForwardWorkers,
            StepId::TargetLsn,
            StepId::ArmOrigin,
            StepId::VerifyFence,
            StepId::Unfence,
        ] {
            assert_eq!(count(id), 1, "{id} once for the instance");
        }
        for id in [StepId::StopForward, StepId::Sequences, StepId::DecodeSlot] {
            assert_eq!(count(id), 3, "{id} once per database");
            let dbs: Vec<_> = steps
                .iter()
                .filter(|s| s.id == id)
                .map(|s| s.db.clone())
                .collect();
            assert_eq!(dbs, scopes.iter().map(|s| s.db.clone()).collect::<Vec<_>>());
        }
        // the drain waits for every database's slot in one statement; the workers, origins and
        // fence check are every database's in one statement each, from one connection
        let one_for_all = |id: StepId, what: &dyn Fn(&Scope) -> String| {
            let step = steps.iter().find(|s| s.id == id).unwrap();
            assert_eq!(step.db, None, "{id} runs on the main connection");
            let sql = step.to_plan().sql.join("\n");
            for sc in &scopes {
                assert!(sql.contains(&what(sc)), "{id}: {sql}");
            }
        };
        one_for_all(StepId::Drain, &|sc| format!("'{}'", sc.settings.names.slot));
        let sub_in_db = |sc: &Scope| {
            format!(
                "({}, {})",
                crate::sql::literal(&sc.settings.names.subscription),
                crate::sql::literal(sc.db.as_deref().unwrap())
            )
        };
        one_for_all(StepId::EndForwardWorkers, &sub_in_db);
        one_for_all(StepId::ArmOrigin, &sub_in_db);
        let db_literal = |sc: &Scope| crate::sql::literal(sc.db.as_deref().unwrap());
        one_for_all(StepId::VerifyFence, &db_literal);
        one_for_all(StepId::PreparedXacts, &db_literal);
        // every stop happens before the target's LSN is read: the reverse origins start after
        // the last row any database applied; the workers are ended only for a slot's decoding
        let at = |id: StepId| steps.iter().position(|s| s.id == id).unwrap();
        let last_stop = steps
            .iter()
            .rposition(|s| s.id == StepId::StopForward)
            .unwrap();
        assert!(last_stop < at(StepId::TargetLsn));
        assert!(at(StepId::VerifyFence) < at(StepId::EndForwardWorkers));
        assert!(at(StepId::EndForwardWorkers) < at(StepId::DecodeSlot));
        let stop = steps.iter().find(|s| s.id == StepId::StopForward).unwrap();
        assert!(stop.title.starts_with("[app] "), "{}", stop.title);
        assert!(
            stop.stmts[0].shown.contains("pgcutover_sub_app"),
            "{}",
            stop.stmts[0].shown
        );
        // the sequences are read on the source and set on the target, each shown where it runs
        let seq = steps.iter().find(|s| s.id == StepId::Sequences).unwrap();
        let shown = seq.to_plan().sql;
        assert!(shown[0].ends_with("-- on BLUE"), "{shown:?}");
        // the note is the plan's, not the statement's: it runs as it is shown
        assert_eq!(seq.stmts[0].sql, seq.stmts[0].shown);
        assert!(!seq.stmts[0].secret);
        assert!(shown[2].ends_with("-- on GREEN"), "{shown:?}");
    }

    fn ids(steps: &[Step]) -> Vec<(StepId, Option<String>)> {
        steps.iter().map(|s| (s.id, s.db.clone())).collect()
    }

    /// The groups `run` makes: each runs at once; an instance-wide or progress-changing step
    /// runs alone. Each group's first step and its size.
    fn groups(steps: &[Step]) -> Vec<(StepId, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < steps.len() {
            let end = alongside_end(steps, i);
            out.push((steps[i].id, end - i));
            i = end;
        }
        out
    }

    #[test]
    fn each_step_runs_in_every_database_side_by_side_and_skips_the_done_ones() {
        let s = |id, db: &str| Step::new(id, Side::Green, "t").in_db(Some(db));
        let merged = by_step([
            vec![
                s(StepId::SyncCommit, "a"),
                s(StepId::ForwardStreaming, "a"),
                s(StepId::LagGate, "a"),
            ],
            // b's subscription already commits synchronously; it also arms a slot
            vec![
                s(StepId::ForwardStreaming, "b"),
                s(StepId::LagGate, "b"),
                s(StepId::ArmSlot, "b"),
            ],
            vec![s(StepId::SyncCommit, "c"), s(StepId::ForwardStreaming, "c")],
        ]);
        let d = |id, db: &str| (id, Some(db.to_string()));
        assert_eq!(
            ids(&merged),
            vec![
                d(StepId::SyncCommit, "a"),
                d(StepId::SyncCommit, "c"),
                d(StepId::ForwardStreaming, "a"),
                d(StepId::ForwardStreaming, "b"),
                d(StepId::ForwardStreaming, "c"),
                d(StepId::LagGate, "a"),
                d(StepId::LagGate, "b"),
                d(StepId::ArmSlot, "b"),
            ]
        );
        // all of them one database's each: one group, each database's chain in its order
        assert_eq!(groups(&merged), vec![(StepId::SyncCommit, 8)]);
        let mut st = settings();
        st.names.databases = crate::domain::names::DatabaseSet::Listed(vec![
            "app".into(),
            "billing".into(),
            "Ünïcode \"db\"".into(),
        ]);
        let window = window(&st, &three(&st));
        // the stops side by side before the one target LSN; the origins armed at once; the
        // sequences side by side; the fence checked at once; when a slot must be decoded, the
        // workers ended at once and each slot decoded side by side
        assert_eq!(
            groups(&window),
            vec![
                (StepId::Fence, 1),
                (StepId::PreparedXacts, 1),
                (StepId::SourceLsn, 1),
                (StepId::Drain, 1),
                (StepId::StopForward, 3),
                (StepId::TargetLsn, 1),
                (StepId::ArmOrigin, 1),
                (StepId::Sequences, 3),
                (StepId::VerifyFence, 1),
                (StepId::EndForwardWorkers, 1),
                (StepId::DecodeSlot, 3),
                (StepId::Unfence, 1),
            ]
        );
        // one database alone: nothing to run alongside
        let one = window_steps(
            &settings(),
            &[Pair {
                scope: &one(&settings()),
                s: &testdata::live(true),
                t: &testdata::live(false),
            }],
            Side::Blue,
            Side::Green,
        );
        assert!((0..one.len()).all(|i| alongside_end(&one, i) == i + 1));
    }

    #[test]
    fn databases_at_different_stages_are_refused() {
        use SwitchMode::{Done, Finish, Full};
        let m = |v: &[(&str, SwitchMode)]| {
            combine(
                &v.iter()
                    .map(|(p, m)| ((*p).to_string(), *m))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(m(&[("[a] ", Full), ("[b] ", Full)]).unwrap(), Full);
        // a run killed after the unfence: the rerun finishes those that are not done
        assert_eq!(m(&[("[a] ", Done), ("[b] ", Finish)]).unwrap(), Finish);
        let g = m(&[("[a] ", Done), ("[billing] ", Full)]).unwrap_err();
        assert!(g.detail.contains("different stages"), "{}", g.detail);
        assert!(g.detail.contains("[billing] Full"), "{}", g.detail);
        assert!(m(&[]).is_err());
    }

    #[test]
    fn the_window_is_bounded_by_its_edges_and_every_step_shows_sql() {
        let st = settings();
        let steps = window(&st, &[one(&st)]);
        assert_eq!(steps.first().map(|s| s.id), Some(StepId::Fence));
        assert_eq!(steps.first().and_then(|s| s.window), Some(Edge::Opens));
        assert_eq!(steps.last().map(|s| s.id), Some(StepId::Unfence));
        assert_eq!(steps.last().and_then(|s| s.window), Some(Edge::Closes));
        for s in &steps {
            assert!(!s.to_plan().sql.is_empty(), "{} shows no SQL", s.id);
        }
        let all: Vec<Step> = steps;
        assert_eq!(stage(&all, 0), Stage::Window);
        assert_eq!(stage(&all, all.len() - 1), Stage::Window);
    }

    #[test]
    fn stages_follow_the_edges() {
        let st = settings();
        let mut steps = arm_steps(
            &st,
            Side::Blue,
            Side::Green,
            &testdata::live(true),
            &testdata::live(false),
        );
        let armed = steps.len();
        steps.extend(window(&st, &[one(&st)]));
        let closes = steps.len() - 1;
        steps.push(Step::new(StepId::StartReverse, Side::Blue, "x"));
        assert!((0..armed).all(|i| stage(&steps, i) == Stage::Arm));
        assert!((armed..=closes).all(|i| stage(&steps, i) == Stage::Window));
        assert_eq!(stage(&steps, closes + 1), Stage::Finish);
        // a rerun that only finishes has no edges: all of it is past the point of no return
        let finish = vec![Step::new(StepId::DropForward, Side::Green, "x")];
        assert_eq!(stage(&finish, 0), Stage::Finish);
    }

    #[test]
    fn the_plan_names_the_transactions_the_fence_ends_and_other_slots() {
        let st = settings();
        let mut s = testdata::with_pub_slot(testdata::live(true));
        s.slots[0].name = st.names.slot.clone();
        let mut cdc = s.slots[0].clone();
        cdc.name = "debezium".into();
        s.slots.push(cdc);
        s.open_xacts.push(crate::domain::observed::OpenXact {
            pid: 7,
            user: Some("app".into()),
            state: Some("idle in transaction".into()),
            application_name: None,
            xact_age_s: Some(3.0),
        });
        let notes = window_notes(&st, Side::Blue, &s).join("\n");
        assert!(
            notes.contains("BLUE: the fence ends 1 open transaction(s): pid 7 (app, idle in transaction for 3.0 s)"),
            "{notes}"
        );
        assert!(
            notes.contains("other logical slots stop receiving at the fence: debezium at 0/90, 112 B behind now"),
            "{notes}"
        );
        assert!(!notes.contains(&st.names.slot), "{notes}");
        assert!(window_notes(&st, Side::Blue, &testdata::live(true)).is_empty());
    }

    #[test]
    fn pg_cron_jobs_move_inside_the_window_when_asked() {
        let mut st = settings();
        let names = st.names.clone();
        let mut s = testdata::with_pub_slot(testdata::live(true));
        let mut t = testdata::with_sub(testdata::live(false), true, None);
        s.slots[0].name.clone_from(&names.slot);
        t.subscriptions[0].name.clone_from(&names.subscription);
        let scope = one(&st);
        let planned = |st: &Settings, s: &Live, t: &Live| {
            plan(
                Action::Cutover,
                st,
                &[Pair {
                    scope: &scope,
                    s,
                    t,
                }],
                &[],
            )
        };
        let ids = |steps: &[Step]| steps.iter().map(|s| s.id).collect::<Vec<_>>();
        // not asked: no step, whatever pg_cron does
        s.server.cron_database = Some("postgres".into());
        t.server.cron_database = Some("postgres".into());
        let (mode, steps, _) = planned(&st, &s, &t).unwrap();
        assert_eq!(mode, SwitchMode::Full);
        assert!(!ids(&steps).contains(&StepId::CronPause));
        st.cutover.move_pg_cron = true;
        let (_, steps, _) = planned(&st, &s, &t).unwrap();
        let order = ids(&steps);
        let at = |id| order.iter().position(|x| *x == id).unwrap();
        // paused with the source fenced, so the pause replicates with the last rows; activated
        // once no forward worker can apply anything more, before the reverse path's start
        assert_eq!(at(StepId::CronPause), at(StepId::Fence) + 1);
        assert_eq!(at(StepId::CronResume) + 1, at(StepId::TargetLsn));
        assert!(at(StepId::StopForward) < at(StepId::CronResume));
        let pause = &steps[at(StepId::CronPause)];
        assert_eq!(
            (pause.side, pause.db.as_deref()),
            (Side::Blue, Some("postgres"))
        );
        let shown = pause.to_plan().sql.join("\n");
        assert!(shown.contains("FROM cron.job WHERE active"), "{shown}");
        assert!(
            shown.contains("UPDATE cron.job SET active = false"),
            "{shown}"
        );
        let resume = &steps[at(StepId::CronResume)];
        assert_eq!(resume.side, Side::Green);
        assert!(
            resume
                .to_plan()
                .sql
                .join("\n")
                .contains("ARRAY[<jobs paused on BLUE>]"),
            "{:?}",
            resume.to_plan().sql
        );
        // the target cannot run them: refused before anything runs, with the fix
        t.server.cron_database = None;
        let Err(g) = planned(&st, &s, &t) else {
            panic!("planned without pg_cron on GREEN")
        };
        assert!(g.detail.contains("not loaded on GREEN"), "{}", g.detail);
        assert!(
            g.detail.contains("shared_preload_libraries"),
            "{}",
            g.detail
        );
        // nothing to move: said, no step
        s.server.cron_database = None;
        let (_, steps, notes) = planned(&st, &s, &t).unwrap();
        assert!(!ids(&steps).contains(&StepId::CronResume));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("pg_cron is not loaded on BLUE")),
            "{notes:?}"
        );
    }

    #[test]
    fn placeholders_replace_the_runtime_values() {
        let st = settings();
        let steps = window(&st, &[one(&st)]);
        let plan: Vec<_> = steps.iter().map(Step::to_plan).collect();
        let text = serde_json::to_string(&plan).unwrap();
        assert!(text.contains("'<GREEN LSN>'"), "{text}");
        assert!(text.contains("ARRAY[<value from BLUE>]"), "{text}");
        assert!(!text.contains("'0/0'"), "{text}");
    }
}
