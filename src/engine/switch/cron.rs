//! `[cutover] move_pg_cron`: pg_cron's jobs follow the traffic. Inside the window the source's
//! active jobs are paused (right after the fence, so the pause replicates with the last rows)
//! and the same jobs are activated on the target after every forward subscription stopped and
//! before the target's LSN is read: the activation is not sent back to the source by the
//! reverse path, which starts after it. The jobs paused are journaled before anything changes,
//! so a rerun after a kill between the two activates them.

use color_eyre::eyre::Result;

use super::super::db::Db;
use super::super::journal::Record;
use super::super::sqlgen;
use super::super::step::Step;
use super::super::{Ctx, journal};
use super::exec::Progress;
use crate::config::Settings;
use crate::domain::guards::Guard;
use crate::domain::observed::{Live, Side};
use crate::domain::step::StepId;
use crate::sql::ident;

/// The journal's record of the jobs a window paused, and of their move or restore.
pub const PAUSED: &str = "cron_paused";
pub const SETTLED: &str = "cron_settled";

/// The two steps, (pause on the source, activate on the target), when the move is asked for
/// and pg_cron is loaded on the source; the notes to show otherwise.
pub fn steps(
    settings: &Settings,
    src: Side,
    tgt: Side,
    s: &Live,
    t: &Live,
) -> Result<Option<(Step, Step)>, Guard> {
    if !settings.cutover.move_pg_cron {
        return Ok(None);
    }
    let (su, tu) = (src.upper(), tgt.upper());
    let Some(sdb) = s.server.cron_database.as_deref() else {
        return Ok(None);
    };
    let Some(tdb) = t.server.cron_database.as_deref() else {
        return Err(Guard {
            name: "pg_cron",
            ok: false,
            detail: format!(
                "[cutover] move_pg_cron: pg_cron runs on {su} but is not loaded on {tu}, so its jobs cannot move there; \
                 add pg_cron to {tu}'s shared_preload_libraries (and set cron.database_name), or remove move_pg_cron"
            ),
        });
    };
    let mut pause = Step::new(
        StepId::CronPause,
        src,
        format!(
            "pause pg_cron's active jobs on {su} (database {})",
            ident(sdb)
        ),
    )
    .stmt(sqlgen::cron_table())
    .stmt(sqlgen::cron_active_jobs())
    .later(
        sqlgen::cron_set_active(&[], false)
            .shown
            .replace("ARRAY[]", "ARRAY[<active jobs>]"),
    );
    pause.db = Some(sdb.to_string());
    let mut resume = Step::new(
        StepId::CronResume,
        tgt,
        format!(
            "activate the same pg_cron jobs on {tu} (database {}), before the reverse path starts",
            ident(tdb)
        ),
    )
    .stmt(sqlgen::cron_table())
    .later(
        sqlgen::cron_set_active(&[], true)
            .shown
            .replace("ARRAY[]", &format!("ARRAY[<jobs paused on {su}>]")),
    );
    resume.db = Some(tdb.to_string());
    Ok(Some((pause, resume)))
}

/// The plan's note when the move is asked for but the source has no pg_cron: no step, said.
/// (With `move_pg_cron` off, the `pg_cron` check says what to do by hand.)
pub fn note(settings: &Settings, s: &Live, src: Side) -> Option<String> {
    (settings.cutover.move_pg_cron && s.server.cron_database.is_none()).then(|| {
        format!(
            "[cutover] move_pg_cron: pg_cron is not loaded on {}; there are no jobs to move",
            src.upper()
        )
    })
}

fn ids(rows: &super::super::db::Rows) -> Vec<i64> {
    rows.iter()
        .filter_map(|r| r.first().cloned().flatten())
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn list(jobs: &[i64]) -> String {
    jobs.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn table_here(step: &Step, db: &Db, ctx: &Ctx<'_>) -> Result<bool> {
    Ok(db.value(ctx, step.id, step.sql(0)?).await?.as_deref() == Some("t"))
}

/// Pause the source's active jobs; with none active, take over those an earlier run paused
/// and did not move (from the journal).
pub async fn pause(step: &Step, db: &Db, p: &mut Progress, ctx: &Ctx<'_>) -> Result<String> {
    let su = db.side.upper();
    if !table_here(step, db, ctx).await? {
        return Ok(format!(
            "no cron.job table on {su} in this database: nothing to pause"
        ));
    }
    let active = ids(&db.run(ctx, step.id, step.sql(1)?).await?);
    if active.is_empty() {
        let earlier = {
            let j = ctx.journal();
            journal::unsettled(j.path(), PAUSED, SETTLED, db.side)
        };
        if earlier.is_empty() {
            return Ok(format!("no active job on {su}"));
        }
        let detail = format!(
            "no active job on {su}; the journal has job(s) {} paused by an earlier run and not moved: they are activated on the other side",
            list(&earlier)
        );
        p.cron_jobs = earlier;
        return Ok(detail);
    }
    // recorded before the pause is sent: an undo and a rerun both know the jobs
    let record = serde_json::to_string(&active)?;
    ctx.journal().write(Record {
        event: PAUSED,
        step: Some(step.id.as_str()),
        side: Some(db.side),
        result: Some(&record),
        ..Default::default()
    })?;
    p.changed.cron_paused = Some((step.db.clone(), active.clone()));
    let paused = ids(&db
        .run(ctx, step.id, &sqlgen::cron_set_active(&active, false))
        .await?);
    p.cron_jobs = active;
    Ok(format!("paused {} job(s): {}", paused.len(), list(&paused)))
}

/// Activate the paused jobs on the target; a job the target does not have is named, not an
/// error: the window must not fail for a job.
pub async fn resume(step: &Step, db: &Db, p: &mut Progress, ctx: &Ctx<'_>) -> Result<String> {
    let tu = db.side.upper();
    let jobs = p.cron_jobs.clone();
    if jobs.is_empty() {
        return Ok("no job to activate".into());
    }
    if !table_here(step, db, ctx).await? {
        let text = format!(
            "no cron.job table on {tu} in this database: job(s) {} stay paused; create them on {tu}",
            list(&jobs)
        );
        ctx.note(text.clone())?;
        return Ok(text);
    }
    p.changed.cron_resumed = Some((step.db.clone(), jobs.clone()));
    let done = ids(&db
        .run(ctx, step.id, &sqlgen::cron_set_active(&jobs, true))
        .await?);
    let now = ids(&db
        .run(ctx, step.id, &sqlgen::cron_which_active(&jobs))
        .await?);
    settled(ctx, db.side.other());
    let missing: Vec<i64> = jobs.iter().copied().filter(|j| !now.contains(j)).collect();
    let mut detail = format!("activated {} job(s): {}", done.len(), list(&done));
    if !missing.is_empty() {
        let text = format!(
            "pg_cron job(s) {} paused on {} are not on {tu}: create them there",
            list(&missing),
            db.side.other().upper()
        );
        ctx.note(text.clone())?;
        detail.push_str(&format!("; {text}"));
    }
    Ok(detail)
}

/// The journal says the jobs paused on `paused_on` no longer wait to move. Best effort: the
/// databases already say it.
pub fn settled(ctx: &Ctx<'_>, paused_on: Side) {
    let _ = ctx.journal().write(Record {
        event: SETTLED,
        side: Some(paused_on),
        ..Default::default()
    });
}

/// Undo: the moved jobs paused on the target again, the paused ones active on the source.
pub async fn restore(
    dbs: &super::exec::Conns,
    ctx: &Ctx<'_>,
    changed: &super::exec::Changed,
) -> Vec<String> {
    let mut said = Vec::new();
    let (s, t) = (dbs.s.side, dbs.t.side);
    for (side, moved, active) in [
        (t, &changed.cron_resumed, false),
        (s, &changed.cron_paused, true),
    ] {
        let Some((db, jobs)) = moved else { continue };
        let done = match dbs.get(side, db.as_deref()) {
            Ok(c) => c
                .run(
                    ctx,
                    StepId::UndoCron,
                    &sqlgen::cron_set_active(jobs, active),
                )
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        let what = if active {
            "active again"
        } else {
            "paused again"
        };
        said.push(match done {
            Ok(()) => format!("pg_cron job(s) {} {what} on {}", list(jobs), side.upper()),
            Err(e) => format!(
                "pg_cron job(s) {} could not be made {what} on {} ({}): UPDATE cron.job by hand",
                list(jobs),
                side.upper(),
                crate::format::report_chain(&e)
            ),
        });
    }
    if changed.cron_paused.is_some() {
        settled(ctx, s);
    }
    said
}
