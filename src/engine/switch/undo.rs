//! A failure inside the window: put the source back in service and the forward replication as
//! it was, unless the target may already be serving. Nothing here may be interrupted or depend
//! on the journal.

use std::time::Duration;

use color_eyre::eyre::Result;

use super::super::db::Db;
use super::super::sqlgen;
use super::super::{Ctx, Outcome};
use super::exec::{Changed, Conns};
use crate::config::Settings;
use crate::domain::step::StepId;
use crate::sql::ident;

/// A failure inside the window: put the source back in service and the forward replication as it
/// was, unless the target may already be serving.
pub async fn undo(
    settings: &Settings,
    dbs: &Conns,
    ctx: &mut Ctx<'_>,
    changed: &Changed,
    err: color_eyre::eyre::Report,
) -> Result<Outcome> {
    let error = crate::format::report_chain(&err);
    // Nothing below depends on the journal or can be interrupted: the source must serve again.
    ctx.restoring_safety();
    ctx.note(format!("window failed: {error}; undoing"))?;
    if changed.unfence_sent
        && let Some(state) = target_may_serve(settings, dbs, ctx).await
    {
        return Ok(state.outcome(error));
    }
    let mut done = Undone::default();
    if changed.fenced {
        unfence_source(settings, dbs, ctx, &mut done).await?;
    }
    resume_forward(settings, dbs, ctx, changed.forward_disabled, &mut done).await;
    disarm_reverse(settings, dbs, ctx, &mut done).await;
    done.state.extend(done.problems);
    Ok(Outcome::FailedSafe {
        error,
        state: done.state.join("; "),
    })
}

/// What undo restored, and what it could not.
#[derive(Default)]
struct Undone {
    state: Vec<String>,
    problems: Vec<String>,
}

/// After the unfence of the target was sent, the target may serve: then undo stops.
enum TargetServes {
    /// Its unfence committed: the switch happened; a rerun finishes it.
    Yes(String),
    /// It cannot be read: the source stays fenced rather than risk two writable sides.
    Unknown(String),
}

impl TargetServes {
    fn outcome(self, error: String) -> Outcome {
        match self {
            TargetServes::Yes(state) => Outcome::FailedAfterSwitch { error, state },
            TargetServes::Unknown(state) => Outcome::FailedSafe { error, state },
        }
    }
}

/// The LOGIN may have committed even if its answer was lost: look before deciding.
async fn target_may_serve(
    settings: &Settings,
    dbs: &Conns,
    ctx: &mut Ctx<'_>,
) -> Option<TargetServes> {
    let (s, t) = (&dbs.s, &dbs.t);
    let (su, tu) = (s.side.upper(), t.side.upper());
    let fresh = Db::connect(settings.side(t.side), Duration::from_secs(5)).await;
    let q = sqlgen::any_can_login(&settings.app_roles);
    let serving = match &fresh {
        Ok(db) => db.value(ctx, StepId::Undo, &q).await.ok().flatten(),
        Err(_) => None,
    };
    match serving.as_deref() {
        Some("t") => Some(TargetServes::Yes(format!(
            "{tu} serves (its unfence committed), {su} is fenced; run the action again to finish the reverse path"
        ))),
        Some(_) => None,
        None => Some(TargetServes::Unknown(format!(
            "UNKNOWN: the unfence of {tu} was sent but {tu} cannot be read, so {su} was left FENCED to avoid two \
             writable sides; check {tu}'s app roles, then `pgcutover run unfence {}` on the side that should serve",
            s.side
        ))),
    }
}

/// LOGIN back for the app roles on the source, with one fresh connection if the engine's own
/// connection was the casualty.
async fn unfence_source(
    settings: &Settings,
    dbs: &Conns,
    ctx: &mut Ctx<'_>,
    done: &mut Undone,
) -> Result<()> {
    let s = &dbs.s;
    let su = s.side.upper();
    let id = StepId::UndoUnfenceSource;
    let login = sqlgen::set_login(&settings.app_roles, true);
    let t0 = ctx.begin(id, "put the source back in service", Some(s.side))?;
    let first = s.run(ctx, id, &login).await.map(|_| ());
    let result = match first {
        Ok(()) => Ok(()),
        Err(e) => match Db::connect(settings.side(s.side), Duration::from_secs(5)).await {
            Ok(db) => db.run(ctx, id, &login).await.map(|_| ()).map_err(|_| e),
            Err(_) => Err(e),
        },
    };
    match result {
        Ok(()) => {
            ctx.end(id, t0, "source serves again")?;
            done.state
                .push(format!("{su} serves again (app roles LOGIN)"));
        }
        Err(e) => done.problems.push(format!(
            "{su} is still FENCED (could not restore LOGIN: {}); run `pgcutover run unfence {}`",
            crate::format::report_chain(&e),
            s.side
        )),
    }
    Ok(())
}

/// The forward subscription enabled again if the window had disabled it.
async fn resume_forward(
    settings: &Settings,
    dbs: &Conns,
    ctx: &mut Ctx<'_>,
    disabled: bool,
    done: &mut Undone,
) {
    let (su, tu) = (dbs.s.side.upper(), dbs.t.side.upper());
    let sub = settings.names.subscription.as_str();
    if !disabled {
        done.state
            .push(format!("forward replication {su} → {tu} untouched"));
        return;
    }
    match dbs.t.run(ctx, StepId::UndoEnableForward, &sqlgen::alter_subscription(sub, "ENABLE")).await {
        Ok(_) => done.state.push(format!("forward replication {su} → {tu} resumed")),
        Err(e) => done.problems.push(format!(
            "the forward subscription on {tu} is disabled ({}); rerunning the action re-enables it, or ALTER SUBSCRIPTION {} ENABLE",
            crate::format::report_chain(&e),
            ident(sub)
        )),
    }
}

/// The armed reverse path is harmless but keeps WAL on the target: take it down.
async fn disarm_reverse(settings: &Settings, dbs: &Conns, ctx: &mut Ctx<'_>, done: &mut Undone) {
    let (s, t) = (&dbs.s, &dbs.t);
    let (sub, slot) = (
        settings.names.subscription.as_str(),
        settings.names.slot.as_str(),
    );
    let mut disarmed = true;
    for stmt in sqlgen::drop_subscription(sub, false) {
        if s.run(ctx, StepId::UndoDisarm, &stmt).await.is_err() {
            disarmed = false;
            break;
        }
    }
    if t.run(ctx, StepId::UndoDisarm, &sqlgen::drop_slot(slot))
        .await
        .is_err()
    {
        disarmed = false;
    }
    if !disarmed {
        done.problems.push(format!(
            "the armed reverse path (subscription on {}, slot {} on {}) is partly left; the next run reuses it, \
             finalize or DROP removes it",
            s.side.upper(),
            ident(slot),
            t.side.upper()
        ));
    }
}
