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
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
pub async fn undo(
    settings: &Settings,
    dbs: &Conns,
    ctx: &mut Ctx<'_>,
    changed: &Changed,
    err: color_eyre::eyre::Report,
) -> Result<Outcome> {
    let (s, t) = (&dbs.s, &dbs.t);
    let (sub, slot, roles) = (
        settings.names.subscription.as_str(),
        settings.names.slot.as_str(),
        settings.app_roles.as_slice(),
    );
    let (su, tu) = (s.side.upper(), t.side.upper());
    let error = crate::format::report_chain(&err);
    // Nothing below depends on the journal or can be interrupted: the source must serve again.
    ctx.restoring_safety();
    ctx.note(format!("window failed: {error}; undoing"))?;
    if changed.unfence_sent {
        // The LOGIN may have committed even if its answer was lost: look before deciding.
        let fresh = Db::connect(settings.side(t.side), Duration::from_secs(5)).await;
        let q = sqlgen::any_can_login(roles);
        let serving = match &fresh {
            Ok(db) => db.value(ctx, StepId::Undo, &q).await.ok().flatten(),
            Err(_) => None,
        };
        match serving.as_deref() {
            Some("t") => {
                return Ok(Outcome::FailedAfterSwitch {
                    error,
                    state: format!(
                        "{tu} serves (its unfence committed), {su} is fenced; run the action again to finish the reverse path"
                    ),
                });
            }
            Some(_) => {}
            None => {
                return Ok(Outcome::FailedSafe {
                    error,
                    state: format!(
                        "UNKNOWN: the unfence of {tu} was sent but {tu} cannot be read, so {su} was left FENCED to avoid two \
                         writable sides; check {tu}'s app roles, then `pgcutover run unfence {}` on the side that should serve",
                        s.side
                    ),
                });
            }
        }
    }
    let mut state = Vec::new();
    let mut problems = Vec::new();
    if changed.fenced {
        let t0 = ctx.begin(
            StepId::UndoUnfenceSource,
            "put the source back in service",
            Some(s.side),
        )?;
        match s
            .run(
                ctx,
                StepId::UndoUnfenceSource,
                &sqlgen::set_login(roles, true),
            )
            .await
        {
            Ok(_) => {
                ctx.end(StepId::UndoUnfenceSource, t0, "source serves again")?;
                state.push(format!("{su} serves again (app roles LOGIN)"));
            }
            Err(e) => {
                // the engine's connection may be the casualty: one fresh try
                let retry = match Db::connect(settings.side(s.side), Duration::from_secs(5)).await {
                    Ok(db) => db
                        .run(
                            ctx,
                            StepId::UndoUnfenceSource,
                            &sqlgen::set_login(roles, true),
                        )
                        .await
                        .map(|_| ()),
                    Err(e2) => Err(e2),
                };
                match retry {
                    Ok(()) => {
                        ctx.end(StepId::UndoUnfenceSource, t0, "source serves again")?;
                        state.push(format!("{su} serves again (app roles LOGIN)"));
                    }
                    Err(_) => problems.push(format!(
                        "{su} is still FENCED (could not restore LOGIN: {}); run `pgcutover run unfence {}`",
                        crate::format::report_chain(&e),
                        s.side
                    )),
                }
            }
        }
    }
    if changed.forward_disabled {
        match t.run(ctx, StepId::UndoEnableForward, &sqlgen::alter_subscription(sub, "ENABLE")).await {
            Ok(_) => state.push(format!("forward replication {su} → {tu} resumed")),
            Err(e) => problems.push(format!(
                "the forward subscription on {tu} is disabled ({}); rerunning the action re-enables it, or ALTER SUBSCRIPTION {} ENABLE",
                crate::format::report_chain(&e),
                ident(sub)
            )),
        }
    } else {
        state.push(format!("forward replication {su} → {tu} untouched"));
    }
    // The armed reverse path is harmless but keeps WAL on the target: take it down.
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
        problems.push(format!(
            "the armed reverse path (subscription on {su}, slot {} on {tu}) is partly left; the next run reuses it, finalize or DROP removes it",
            ident(slot)
        ));
    }
    state.extend(problems);
    Ok(Outcome::FailedSafe {
        error,
        state: state.join("; "),
    })
}
