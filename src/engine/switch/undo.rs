//! A failure inside the window: put the source back in service and the forward replication as
//! it was, unless the target may already be serving. Nothing here may be interrupted or depend
//! on the journal.

use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use super::super::db::Db;
use super::super::sqlgen;
use super::super::{Ctx, Outcome};
use super::exec::{Changed, Conns};
use crate::config::Settings;
use crate::domain::guards::Action;
use crate::domain::lsn::Lsn;
use crate::domain::step::StepId;
use crate::sql::ident;

/// A failure inside the window: put the source back in service and the forward replication as it
/// was, unless the target may already be serving.
pub async fn undo(
    settings: &Settings,
    dbs: &Conns,
    ctx: &Ctx<'_>,
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
    resume_forward(dbs, ctx, &changed.forward_disabled, &mut done).await;
    disarm_reverse(dbs, ctx, &mut done).await;
    drop_carried(dbs, ctx, &changed.carried, &mut done).await;
    done.state
        .extend(super::cron::restore(dbs, ctx, changed).await);
    done.state.extend(done.problems);
    Ok(Outcome::FailedSafe {
        error,
        state: done.state.join("; "),
    })
}

/// The router's command failed after the target was unfenced. The target is fenced again and
/// its reverse slot, moved to the target LSN of this window, is read for data changes: none
/// means the app never wrote there, and the switch is undone as if the window had failed (the
/// app still goes to the source). A change, or no answer, means the target may hold writes the
/// source lacks: it serves again and the operator finishes the repointing.
pub async fn after_command(
    action: Action,
    settings: &Settings,
    dbs: &Conns,
    ctx: &Ctx<'_>,
    changed: &Changed,
    target_lsn: Lsn,
    err: color_eyre::eyre::Report,
) -> Result<Outcome> {
    let error = crate::format::report_chain(&err);
    ctx.restoring_safety();
    let t = &dbs.t;
    let (su, tu) = (dbs.s.side.upper(), t.side.upper());
    let roles = &settings.app_roles;
    ctx.note(format!(
        "the router command failed after {tu} was unfenced: {error}; checking whether {tu} took a write"
    ))?;
    let id = StepId::UndoTargetWrites;
    let t0 = ctx.begin(
        id,
        &format!("fence {tu} again and look for writes since its unfence"),
        Some(t.side),
    )?;
    let writes: Result<u64> = async {
        t.run(ctx, id, &sqlgen::set_login(roles, false)).await?;
        t.run(ctx, id, &sqlgen::terminate_sessions(roles)).await?;
        // each database's reverse slot, in its database
        let mut total = 0;
        for sc in &dbs.scopes {
            let (n, c) = (&sc.settings.names, dbs.get(t.side, sc.db.as_deref())?);
            c.run(ctx, id, &sqlgen::slot_advance(&n.slot, target_lsn))
                .await?;
            let count = c
                .value(ctx, id, &sqlgen::peek_data_changes(&n.slot, &n.publication))
                .await?;
            total += count
                .and_then(|c| c.parse::<u64>().ok())
                .ok_or_else(|| eyre!("no count of changes"))?;
        }
        Ok(total)
    }
    .await;
    if let Ok(0) = writes {
        ctx.end(id, t0, &format!("{tu} took no write: undoing the switch"))?;
        let mut out = undo(settings, dbs, ctx, changed, err).await?;
        out.prepend(&format!(
            "the router command failed before {tu} took a write, so the switch was undone: "
        ));
        return Ok(out);
    }
    let why = match &writes {
        Ok(c) => format!("{tu} took {c} change(s) after its unfence"),
        Err(e) => format!(
            "whether {tu} took a write cannot be told ({})",
            crate::format::report_chain(e)
        ),
    };
    let back = t.run(ctx, id, &sqlgen::set_login(roles, true)).await;
    ctx.end(id, t0, &why)?;
    let serving = match back {
        Ok(_) => format!("{tu} keeps serving (app roles LOGIN) and {su} stays fenced"),
        Err(e) => format!(
            "{tu} could not be given LOGIN back ({}): run `pgcutover run unfence {}`; {su} stays fenced",
            crate::format::report_chain(&e),
            t.side
        ),
    };
    Ok(Outcome::FailedAfterSwitch {
        error,
        state: format!(
            "{why}, so {serving}. Point the application at {tu} (what the command should have done),              then run `pgcutover run {}` again: it runs the command again and finishes the reverse path",
            action.name()
        ),
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
async fn target_may_serve(settings: &Settings, dbs: &Conns, ctx: &Ctx<'_>) -> Option<TargetServes> {
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
    ctx: &Ctx<'_>,
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

/// The forward subscriptions enabled again where the window had disabled them.
async fn resume_forward(
    dbs: &Conns,
    ctx: &Ctx<'_>,
    disabled: &[Option<String>],
    done: &mut Undone,
) {
    let (su, tu) = (dbs.s.side.upper(), dbs.t.side.upper());
    if disabled.is_empty() {
        done.state
            .push(format!("forward replication {su} → {tu} untouched"));
        return;
    }
    let mut resumed = 0;
    for db in disabled {
        let db = db.as_deref();
        let prefix = crate::domain::names::db_prefix(db);
        let r = async {
            let sub = &dbs.names(db)?.subscription;
            let c = dbs.get(dbs.t.side, db)?;
            c.run(
                ctx,
                StepId::UndoEnableForward,
                &sqlgen::alter_subscription(sub, "ENABLE"),
            )
            .await
            .map_err(|e| e.wrap_err(format!("ALTER SUBSCRIPTION {} ENABLE", ident(sub))))
        }
        .await;
        match r {
            Ok(_) => resumed += 1,
            Err(e) => done.problems.push(format!(
                "{prefix}the forward subscription on {tu} is disabled ({}); rerunning the action re-enables it",
                crate::format::report_chain(&e),
            )),
        }
    }
    if resumed > 0 {
        done.state
            .push(format!("forward replication {su} → {tu} resumed"));
    }
}

/// The armed reverse paths are harmless but keep WAL on the target: take them down.
async fn disarm_reverse(dbs: &Conns, ctx: &Ctx<'_>, done: &mut Undone) {
    for sc in &dbs.scopes {
        let db = sc.db.as_deref();
        let n = &sc.settings.names;
        let (Ok(s), Ok(t)) = (dbs.get(dbs.s.side, db), dbs.get(dbs.t.side, db)) else {
            continue;
        };
        let mut disarmed = true;
        for stmt in sqlgen::drop_subscription(&n.subscription, false) {
            if s.run(ctx, StepId::UndoDisarm, &stmt).await.is_err() {
                disarmed = false;
                break;
            }
        }
        if t.run(ctx, StepId::UndoDisarm, &sqlgen::drop_slot(&n.slot))
            .await
            .is_err()
        {
            disarmed = false;
        }
        if !disarmed {
            done.problems.push(format!(
                "{}the armed reverse path (subscription on {}, slot {} on {}) is partly left; the next run reuses it, \
                 finalize or DROP removes it",
                sc.prefix(),
                s.side.upper(),
                ident(&n.slot),
                t.side.upper()
            ));
        }
    }
}

/// Slots carried to the target for their consumers: the source serves again, so they would only
/// keep WAL there.
async fn drop_carried(
    dbs: &Conns,
    ctx: &Ctx<'_>,
    carried: &[(Option<String>, String)],
    done: &mut Undone,
) {
    let side = dbs.t.side;
    for (db, name) in carried {
        let dropped = match dbs.get(side, db.as_deref()) {
            Ok(t) => t
                .run(ctx, StepId::UndoDisarm, &sqlgen::drop_slot(name))
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !dropped {
            done.problems.push(format!(
                "the carried slot {} is left on {}: drop it there (SELECT pg_drop_replication_slot({}))",
                ident(name),
                side.upper(),
                crate::sql::literal(name)
            ));
        }
    }
}
