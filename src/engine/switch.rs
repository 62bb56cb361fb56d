//! Cutover and rollback: one procedure, parameterised by direction.
//!
//! Before the window (no downtime): the forward subscription commits synchronously; the reverse
//! path is armed: a slot on the target and a subscription on the source, created disabled.
//! The window (source fenced → target unfenced): fence the source, read its LSN, wait until the
//! target has confirmed it, stop the forward subscription, read the target's LSN, start the
//! reverse subscription's origin there (so it never re-sends what came from the source), copy
//! the sequences, unfence the target. After: drop the forward path, enable the reverse one.
//! (Both must never be enabled together: PostgreSQL 15 has no `origin = none`, rows would loop.)
//!
//! Any failure inside the window puts the source back in service; after the target is unfenced
//! the engine only finishes, and a rerun completes what is left.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};

use super::db::Db;
use super::sqlgen::{self, Stmt};
use super::steps::publisher_conninfo;
use super::{Ctx, Outcome, Plan, PlanStep, State};
use crate::collect::queries;
use crate::config::Settings;
use crate::domain::guards::{Action, SwitchMode, switch_mode};
use crate::domain::lsn::Lsn;
use crate::domain::observed::{Live, QualName, Side};
use crate::domain::phase::ROLLED_BACK_MARK;
use crate::sql::ident;

fn sides(action: Action) -> (Side, Side) {
    if action == Action::Cutover {
        (Side::Blue, Side::Green)
    } else {
        (Side::Green, Side::Blue)
    }
}

struct Names<'a> {
    sub: &'a str,
    slot: &'a str,
    publication: &'a str,
    roles: &'a [String],
}

/// The steps as the plan shows them; `<…>` are values read while running.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
pub fn plan(action: Action, settings: &Settings, state: &State, p: &mut Plan) {
    let (src, tgt) = sides(action);
    let (s, t) = (
        state.live(src).expect("guarded"),
        state.live(tgt).expect("guarded"),
    );
    let mode = switch_mode(&settings.names, s, t);
    p.mode = Some(mode);
    let n = &settings.names;
    let roles = &settings.app_roles;
    let (su, tu) = (src.upper(), tgt.upper());
    let mut steps = Vec::new();
    let mut push = |step: &'static str, title: String, side: Side, sql: Vec<String>| {
        steps.push(PlanStep {
            step,
            title,
            side,
            sql,
        });
    };
    if matches!(mode, SwitchMode::Full | SwitchMode::ResumeWindow) {
        let fwd = t.subscription(&n.subscription).expect("mode has it");
        if fwd.synchronous_commit != "on" {
            push(
                "sync_commit",
                format!("forward subscription commits synchronously ({tu})"),
                tgt,
                vec![
                    sqlgen::alter_subscription(&n.subscription, "SET (synchronous_commit = on)")
                        .shown,
                ],
            );
        }
        if !fwd.enabled {
            push(
                "resume_forward",
                format!("re-enable the forward subscription an interrupted run stopped ({tu})"),
                tgt,
                vec![sqlgen::alter_subscription(&n.subscription, "ENABLE").shown],
            );
        }
        if t.slot(&n.slot).is_none() {
            push(
                "arm_slot",
                format!("arm the reverse path: slot on {tu}"),
                tgt,
                vec![sqlgen::create_slot(&n.slot).shown],
            );
        }
        if t.publication(&n.publication).is_none() {
            push(
                "arm_publication",
                format!("publication on {tu} for the reverse path"),
                tgt,
                vec![sqlgen::create_publication(&n.publication).shown],
            );
        }
        if s.subscription(&n.subscription).is_none() {
            let conn = publisher_conninfo(settings, tgt);
            push(
                "arm_subscription",
                format!("arm the reverse path: subscription on {su}, disabled"),
                src,
                vec![
                    sqlgen::create_subscription(
                        &n.subscription,
                        &conn,
                        &n.publication,
                        &n.slot,
                        false,
                    )
                    .shown,
                ],
            );
        }
        push(
            "fence",
            format!("WINDOW OPENS — fence {su}: app roles NOLOGIN, sessions ended"),
            src,
            vec![
                sqlgen::set_login(roles, false).shown,
                sqlgen::terminate_sessions(roles).shown,
                format!(
                    "{}  -- repeated until 0",
                    sqlgen::count_sessions(roles).shown
                ),
            ],
        );
        push(
            "prepared_xacts",
            format!("refuse if prepared transactions remain on {su}"),
            src,
            vec![sqlgen::count_prepared_xacts().shown],
        );
        push(
            "source_lsn",
            format!("{su}'s last LSN"),
            src,
            vec![sqlgen::current_lsn().shown],
        );
        push(
            "drain",
            format!("wait until {tu} confirmed everything up to it"),
            src,
            vec![format!(
                "{}  -- until confirmed_flush_lsn ≥ <{su} LSN>",
                sqlgen::slot_confirmed_flush(&n.slot).shown
            )],
        );
        push(
            "stop_forward",
            format!("stop the forward subscription ({tu})"),
            tgt,
            vec![
                sqlgen::alter_subscription(&n.subscription, "DISABLE").shown,
                sqlgen::terminate_subscription_workers(&n.subscription).shown,
            ],
        );
        push(
            "target_lsn",
            format!("{tu}'s LSN, the reverse path's start"),
            tgt,
            vec![sqlgen::current_lsn().shown],
        );
        push(
            "arm_origin",
            format!("start the reverse subscription's origin at <{tu} LSN> ({su})"),
            src,
            vec![
                sqlgen::origin_advance("pg_<oid>", Lsn::ZERO)
                    .shown
                    .replace("'0/0'", &format!("'<{tu} LSN>'")),
            ],
        );
        push(
            "sequences",
            format!("copy every sequence {su} → {tu}, never backwards"),
            tgt,
            vec![format!(
                "{}  -- in batches of {}",
                sqlgen::setval_batch(&[(
                    QualName {
                        schema: "<schema>".into(),
                        name: "<sequence>".into()
                    },
                    0
                )])
                .shown
                .replace("ARRAY[0]", &format!("ARRAY[<value from {su}>]")),
                queries::SEQUENCE_BATCH
            )],
        );
        push(
            "unfence",
            format!("WINDOW CLOSES — unfence {tu}: app roles LOGIN"),
            tgt,
            vec![sqlgen::set_login(roles, true).shown],
        );
    }
    if matches!(
        mode,
        SwitchMode::Full | SwitchMode::ResumeWindow | SwitchMode::Finish
    ) {
        if t.subscription(&n.subscription).is_some() {
            push(
                "drop_forward",
                format!("drop the forward subscription ({tu})"),
                tgt,
                sqlgen::drop_subscription(&n.subscription, false)
                    .into_iter()
                    .map(|x| x.shown)
                    .collect(),
            );
        }
        if s.slot(&n.slot).is_some() {
            push(
                "drop_source_slot",
                format!("drop the forward slot ({su})"),
                src,
                vec![sqlgen::drop_slot(&n.slot).shown],
            );
        }
        if action == Action::Rollback {
            push(
                "mark_rollback",
                "mark the subscription as a rollback's".into(),
                src,
                vec![
                    sqlgen::comment_subscription(
                        &n.subscription,
                        &format!("{ROLLED_BACK_MARK} at <time>"),
                    )
                    .shown,
                ],
            );
        }
        push(
            "start_reverse",
            format!("start replication {tu} → {su}"),
            src,
            vec![sqlgen::alter_subscription(&n.subscription, "ENABLE").shown],
        );
    }
    if mode == SwitchMode::Done {
        p.notes.push(format!(
            "{tu} already serves and {su} applies from it: nothing to do"
        ));
    }
    p.steps = steps;
}

/// What the window has changed so far, for undo.
#[derive(Default)]
struct Done {
    fenced: bool,
    forward_disabled: bool,
    unfence_sent: bool,
}

pub async fn run(
    action: Action,
    settings: &Settings,
    state: &State,
    plan: &Plan,
    ctx: &mut Ctx<'_>,
) -> Result<Outcome> {
    let (src, tgt) = sides(action);
    let mode = plan.mode.expect("switch plans have a mode");
    if mode == SwitchMode::Done {
        return Ok(Outcome::NothingToDo {
            summary: plan.notes.join("; "),
        });
    }
    let n = Names {
        sub: &settings.names.subscription,
        slot: &settings.names.slot,
        publication: &settings.names.publication,
        roles: &settings.app_roles,
    };
    let timeout = settings.poll.timeout.max(Duration::from_secs(10));
    let (s, t) = tokio::join!(
        Db::connect(settings.side(src), timeout),
        Db::connect(settings.side(tgt), timeout)
    );
    let (s, t) = (s?, t?);
    let (s_live, t_live) = (
        state.live(src).expect("guarded"),
        state.live(tgt).expect("guarded"),
    );

    let mut window_ms = None;
    if matches!(mode, SwitchMode::Full | SwitchMode::ResumeWindow) {
        arm(settings, &n, &s, &t, s_live, t_live, ctx).await?;
        let mut done = Done::default();
        match window(settings, &n, &s, &t, ctx, &mut done).await {
            Ok(ms) => window_ms = Some(ms),
            Err(e) => return undo(settings, &n, &s, &t, ctx, &done, e).await,
        }
    }
    // Past the point of no return: the app is on the target. Finish, or say what is left.
    if let Err(e) = finish(action, &n, &s, &t, ctx).await {
        let (su, tu) = (src.upper(), tgt.upper());
        return Ok(Outcome::FailedAfterSwitch {
            error: crate::format::report_chain(&e),
            state: format!(
                "{tu} serves (app roles LOGIN), {su} is fenced. The reverse path is not finished; \
                 run `pgcutover run {}` again to complete it",
                action.name()
            ),
        });
    }
    let (su, tu) = (src.upper(), tgt.upper());
    Ok(Outcome::Done {
        summary: match window_ms {
            Some(ms) => format!(
                "{tu} serves; {su} fenced and applying from {tu}; writes were unavailable for {ms:.0} ms"
            ),
            None => format!("finished: {tu} serves; {su} applies from {tu}"),
        },
        window_ms,
        steps: ctx.steps.clone(),
    })
}

/// Before the window: nothing here blocks the application.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn arm(
    settings: &Settings,
    n: &Names<'_>,
    s: &Db,
    t: &Db,
    s_live: &Live,
    t_live: &Live,
    ctx: &mut Ctx<'_>,
) -> Result<()> {
    let (su, tu) = (s.side.upper(), t.side.upper());
    let fwd = t_live
        .subscription(n.sub)
        .ok_or_else(|| eyre!("the forward subscription is gone from {tu}"))?;
    // synchronous_commit is taken up by the running worker at its next transaction (it re-reads
    // its subscription on change); no restart, so no wait.
    if fwd.synchronous_commit != "on" {
        let t0 = ctx.begin(
            "sync_commit",
            "forward subscription commits synchronously",
            Some(t.side),
        )?;
        t.run(
            ctx,
            "sync_commit",
            &sqlgen::alter_subscription(n.sub, "SET (synchronous_commit = on)"),
        )
        .await?;
        ctx.end("sync_commit", t0, "synchronous_commit = on")?;
    }
    if !fwd.enabled {
        let t0 = ctx.begin(
            "resume_forward",
            "re-enable the forward subscription",
            Some(t.side),
        )?;
        t.run(
            ctx,
            "resume_forward",
            &sqlgen::alter_subscription(n.sub, "ENABLE"),
        )
        .await?;
        ctx.end("resume_forward", t0, "enabled")?;
    }
    // The window must not start without a forward worker: the launcher may take up to
    // wal_retrieve_retry_interval (5 s) to start one, and that wait belongs out here.
    let t0 = ctx.begin(
        "forward_streaming",
        "forward apply worker running",
        Some(t.side),
    )?;
    let workers = sqlgen::subscription_workers(n.sub);
    let deadline = Instant::now() + Duration::from_mins(1);
    while first(&t.run(ctx, "forward_streaming", &workers).await?, 0).is_none() {
        if Instant::now() > deadline {
            bail!(
                "no forward apply worker on {tu} after 60 s; nothing was fenced: read {tu}'s log"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctx.end("forward_streaming", t0, "streaming")?;
    if t_live.slot(n.slot).is_none() {
        let t0 = ctx.begin("arm_slot", "reverse slot on the target", Some(t.side))?;
        let lsn = t
            .value(ctx, "arm_slot", &sqlgen::create_slot(n.slot))
            .await?;
        ctx.end(
            "arm_slot",
            t0,
            &format!("slot at {}", lsn.unwrap_or_default()),
        )?;
    }
    if t_live.publication(n.publication).is_none() {
        let t0 = ctx.begin("arm_publication", "publication on the target", Some(t.side))?;
        t.run(
            ctx,
            "arm_publication",
            &sqlgen::create_publication(n.publication),
        )
        .await?;
        ctx.end("arm_publication", t0, "created")?;
    }
    if s_live.subscription(n.sub).is_none() {
        let t0 = ctx.begin(
            "arm_subscription",
            "reverse subscription on the source, disabled",
            Some(s.side),
        )?;
        let conn = publisher_conninfo(settings, t.side);
        s.run(
            ctx,
            "arm_subscription",
            &sqlgen::create_subscription(n.sub, &conn, n.publication, n.slot, false),
        )
        .await?;
        ctx.end("arm_subscription", t0, &format!("on {su}, disabled"))?;
    }
    Ok(())
}

fn first(rows: &super::db::Rows, col: usize) -> Option<String> {
    rows.first().and_then(|r| r.get(col)).cloned().flatten()
}

fn parse_lsn(v: Option<String>, what: &str) -> Result<Lsn> {
    v.ok_or_else(|| eyre!("{what}: no value"))?
        .parse::<Lsn>()
        .map_err(|e| eyre!("{what}: {e}"))
}

/// The window. Returns its length in milliseconds (NOLOGIN sent → LOGIN committed).
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn window(
    settings: &Settings,
    n: &Names<'_>,
    s: &Db,
    t: &Db,
    ctx: &mut Ctx<'_>,
    done: &mut Done,
) -> Result<f64> {
    let (su, tu) = (s.side.upper(), t.side.upper());
    let c = &settings.cutover;

    let t0 = ctx.begin("fence", "fence the source", Some(s.side))?;
    let opened = Instant::now();
    done.fenced = true; // set before sending: if the answer is lost, undo must still unfence
    s.run(ctx, "fence", &sqlgen::set_login(n.roles, false))
        .await?;
    let deadline = Instant::now() + c.fence_timeout;
    loop {
        s.run(ctx, "fence", &sqlgen::terminate_sessions(n.roles))
            .await?;
        let left = s
            .value(ctx, "fence", &sqlgen::count_sessions(n.roles))
            .await?;
        if left.as_deref() == Some("0") {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} app session(s) still on {su} after {} s",
                left.unwrap_or_default(),
                c.fence_timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ctx.end("fence", t0, &format!("{su} fenced"))?;

    let t0 = ctx.begin("prepared_xacts", "no prepared transactions", Some(s.side))?;
    let prepared = s
        .value(ctx, "prepared_xacts", &sqlgen::count_prepared_xacts())
        .await?;
    if prepared.as_deref() != Some("0") {
        bail!(
            "{} prepared transaction(s) on {su}: they would be stranded; COMMIT/ROLLBACK PREPARED them first",
            prepared.unwrap_or_default()
        );
    }
    ctx.end("prepared_xacts", t0, "none")?;

    let t0 = ctx.begin("source_lsn", "source LSN after the fence", Some(s.side))?;
    let source_lsn = parse_lsn(
        s.value(ctx, "source_lsn", &sqlgen::current_lsn()).await?,
        "source LSN",
    )?;
    ctx.end("source_lsn", t0, &source_lsn.to_string())?;

    let t0 = ctx.begin("drain", "wait for the target to confirm it", Some(s.side))?;
    let q = sqlgen::slot_confirmed_flush(n.slot);
    let deadline = Instant::now() + c.drain_timeout;
    let mut inactive_since: Option<Instant> = None;
    loop {
        let rows = s.run(ctx, "drain", &q).await?;
        let confirmed = parse_lsn(first(&rows, 0), "confirmed_flush_lsn")?;
        if confirmed >= source_lsn {
            break;
        }
        // A target that went away shows as an inactive slot (or a dead connection to it).
        if first(&rows, 1).as_deref() == Some("f") {
            let since = *inactive_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) || t.is_closed() {
                bail!(
                    "{tu} stopped receiving (slot inactive) at {confirmed}, {} bytes short of {source_lsn}",
                    source_lsn.bytes_since(confirmed)
                );
            }
        } else {
            inactive_since = None;
        }
        if Instant::now() > deadline {
            bail!(
                "{tu} confirmed only {confirmed} of {source_lsn} within {} s ({} bytes behind)",
                c.drain_timeout.as_secs(),
                source_lsn.bytes_since(confirmed)
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ctx.end(
        "drain",
        t0,
        &format!("{tu} has everything up to {source_lsn}"),
    )?;

    let t0 = ctx.begin(
        "stop_forward",
        "stop the forward subscription",
        Some(t.side),
    )?;
    done.forward_disabled = true;
    t.run(
        ctx,
        "stop_forward",
        &sqlgen::alter_subscription(n.sub, "DISABLE"),
    )
    .await?;
    // Everything is flushed on the target (drain), so ending the worker loses nothing: a
    // transaction it may be in rolls back and its origin does not move.
    t.run(
        ctx,
        "stop_forward",
        &sqlgen::terminate_subscription_workers(n.sub),
    )
    .await?;
    let q = sqlgen::subscription_workers(n.sub);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = t.run(ctx, "stop_forward", &q).await?;
        if first(&rows, 0).is_none() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the forward apply worker on {tu} did not stop within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ctx.end("stop_forward", t0, "disabled, worker gone")?;

    let t0 = ctx.begin(
        "target_lsn",
        "target LSN: the reverse path starts here",
        Some(t.side),
    )?;
    let target_lsn = parse_lsn(
        t.value(ctx, "target_lsn", &sqlgen::current_lsn()).await?,
        "target LSN",
    )?;
    ctx.end("target_lsn", t0, &target_lsn.to_string())?;

    let t0 = ctx.begin(
        "arm_origin",
        "reverse subscription starts at the target LSN",
        Some(s.side),
    )?;
    let origin = first(
        &s.run(ctx, "arm_origin", &sqlgen::subscription_origin(n.sub))
            .await?,
        0,
    )
    .ok_or_else(|| {
        eyre!(
            "the reverse subscription {} is missing on {su}",
            ident(n.sub)
        )
    })?;
    s.run(
        ctx,
        "arm_origin",
        &sqlgen::origin_advance(&origin, target_lsn),
    )
    .await?;
    let at = parse_lsn(
        s.value(ctx, "arm_origin", &sqlgen::origin_progress(&origin))
            .await?,
        "origin",
    )?;
    if at != target_lsn {
        bail!("the reverse origin reads {at} after advancing it to {target_lsn}");
    }
    ctx.end("arm_origin", t0, &format!("{origin} at {target_lsn}"))?;

    let t0 = ctx.begin("sequences", "copy sequences", Some(t.side))?;
    let copied = copy_sequences(s, t, ctx).await?;
    ctx.end("sequences", t0, &copied)?;

    let t0 = ctx.begin("unfence", "unfence the target", Some(t.side))?;
    done.unfence_sent = true;
    t.run(ctx, "unfence", &sqlgen::set_login(n.roles, true))
        .await?;
    let ms = opened.elapsed().as_secs_f64() * 1000.0;
    ctx.end("unfence", t0, &format!("{tu} serves; window {ms:.1} ms"))?;
    Ok(ms)
}

async fn copy_sequences(s: &Db, t: &Db, ctx: &mut Ctx<'_>) -> Result<String> {
    let list = s
        .run(ctx, "sequences", &Stmt::new(queries::sequence_list()))
        .await?;
    let mut names = std::collections::HashMap::new();
    let mut oids = Vec::new();
    let mut unreadable = 0;
    for r in &list {
        let (Some(oid), Some(schema), Some(name)) = (r[0].as_deref(), r[1].clone(), r[2].clone())
        else {
            continue;
        };
        let oid: i64 = oid.parse().map_err(|_| eyre!("bad sequence oid {oid}"))?;
        if r[3].as_deref() == Some("t") {
            oids.push(oid);
            names.insert(oid, QualName { schema, name });
        } else {
            unreadable += 1;
        }
    }
    if unreadable > 0 {
        bail!(
            "{unreadable} sequence(s) on the source cannot be read by this role: grant SELECT on them or connect as their owner"
        );
    }
    let mut set = 0u64;
    let mut offered = 0usize;
    for batch in oids.chunks(queries::SEQUENCE_BATCH) {
        let rows = s
            .run(ctx, "sequences", &sqlgen::sequence_values(batch))
            .await?;
        let values: Vec<(QualName, i64)> = rows
            .iter()
            .filter_map(|r| {
                let oid: i64 = r[0].as_deref()?.parse().ok()?;
                let v: i64 = r[1].as_deref()?.parse().ok()?; // never called: nothing to copy
                Some((names.get(&oid)?.clone(), v))
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        offered += values.len();
        let n = t
            .value(ctx, "sequences", &sqlgen::setval_batch(&values))
            .await?;
        set += n.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    let missing = offered as u64 - set.min(offered as u64);
    if missing > 0 {
        ctx.note(format!(
            "{missing} sequence(s) of the source do not exist on the target (see the schema diff)"
        ))?;
    }
    Ok(format!("{set} of {} sequence(s) set", oids.len()))
}

/// After the point of no return. Every step checks first, so a rerun finishes what is left.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn finish(action: Action, n: &Names<'_>, s: &Db, t: &Db, ctx: &mut Ctx<'_>) -> Result<()> {
    let tgt_sub = first(
        &t.run(ctx, "drop_forward", &sqlgen::subscription_origin(n.sub))
            .await?,
        1,
    );
    if let Some(enabled) = tgt_sub {
        let t0 = ctx.begin(
            "drop_forward",
            "drop the forward subscription",
            Some(t.side),
        )?;
        for stmt in sqlgen::drop_subscription(n.sub, enabled == "t") {
            t.run(ctx, "drop_forward", &stmt).await?;
        }
        ctx.end("drop_forward", t0, "dropped")?;
    }
    let exists = Stmt::new(format!(
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = {}",
        crate::sql::literal(n.slot)
    ));
    if s.value(ctx, "drop_source_slot", &exists).await?.as_deref() == Some("1") {
        let t0 = ctx.begin("drop_source_slot", "drop the forward slot", Some(s.side))?;
        // The walsender that served the subscription may take a moment to exit.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match s
                .run(ctx, "drop_source_slot", &sqlgen::drop_slot(n.slot))
                .await
            {
                Ok(_) => break,
                Err(e)
                    if e.to_string().contains("is active for PID") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
        ctx.end("drop_source_slot", t0, "dropped")?;
    }
    if action == Action::Rollback {
        let t0 = ctx.begin(
            "mark_rollback",
            "mark the subscription as a rollback's",
            Some(s.side),
        )?;
        let text = format!("{ROLLED_BACK_MARK} at {}", crate::format::now_rfc3339());
        s.run(
            ctx,
            "mark_rollback",
            &sqlgen::comment_subscription(n.sub, &text),
        )
        .await?;
        ctx.end("mark_rollback", t0, &text)?;
    }
    let t0 = ctx.begin(
        "start_reverse",
        "start the reverse replication",
        Some(s.side),
    )?;
    s.run(
        ctx,
        "start_reverse",
        &sqlgen::alter_subscription(n.sub, "ENABLE"),
    )
    .await?;
    let q = sqlgen::subscription_origin(n.sub);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = s.run(ctx, "start_reverse", &q).await?;
        if first(&rows, 2).as_deref() == Some("1") {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the reverse subscription is enabled but its apply worker did not start within 30 s: read {}'s log",
                s.side.upper()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ctx.end("start_reverse", t0, "streaming")?;
    Ok(())
}

/// A failure inside the window: put the source back in service and the forward replication as it
/// was, unless the target may already be serving.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn undo(
    settings: &Settings,
    n: &Names<'_>,
    s: &Db,
    t: &Db,
    ctx: &mut Ctx<'_>,
    done: &Done,
    err: color_eyre::eyre::Report,
) -> Result<Outcome> {
    let (su, tu) = (s.side.upper(), t.side.upper());
    let error = crate::format::report_chain(&err);
    // Nothing below depends on the journal or can be interrupted: the source must serve again.
    ctx.restoring_safety();
    ctx.note(format!("window failed: {error}; undoing"))?;
    if done.unfence_sent {
        // The LOGIN may have committed even if its answer was lost: look before deciding.
        let fresh = Db::connect(settings.side(t.side), Duration::from_secs(5)).await;
        let q = Stmt::new(format!(
            "SELECT bool_or(rolcanlogin) FROM pg_roles WHERE rolname = ANY ({})",
            sqlgen::text_array(n.roles)
        ));
        let serving = match &fresh {
            Ok(db) => db.value(ctx, "undo", &q).await.ok().flatten(),
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
    if done.fenced {
        let t0 = ctx.begin(
            "undo_unfence_source",
            "put the source back in service",
            Some(s.side),
        )?;
        match s
            .run(
                ctx,
                "undo_unfence_source",
                &sqlgen::set_login(n.roles, true),
            )
            .await
        {
            Ok(_) => {
                ctx.end("undo_unfence_source", t0, "source serves again")?;
                state.push(format!("{su} serves again (app roles LOGIN)"));
            }
            Err(e) => {
                // the engine's connection may be the casualty: one fresh try
                let retry = match Db::connect(settings.side(s.side), Duration::from_secs(5)).await {
                    Ok(db) => db
                        .run(
                            ctx,
                            "undo_unfence_source",
                            &sqlgen::set_login(n.roles, true),
                        )
                        .await
                        .map(|_| ()),
                    Err(e2) => Err(e2),
                };
                match retry {
                    Ok(()) => {
                        ctx.end("undo_unfence_source", t0, "source serves again")?;
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
    if done.forward_disabled {
        match t.run(ctx, "undo_enable_forward", &sqlgen::alter_subscription(n.sub, "ENABLE")).await {
            Ok(_) => state.push(format!("forward replication {su} → {tu} resumed")),
            Err(e) => problems.push(format!(
                "the forward subscription on {tu} is disabled ({}); rerunning the action re-enables it, or ALTER SUBSCRIPTION {} ENABLE",
                crate::format::report_chain(&e),
                ident(n.sub)
            )),
        }
    } else {
        state.push(format!("forward replication {su} → {tu} untouched"));
    }
    // The armed reverse path is harmless but keeps WAL on the target: take it down.
    let mut disarmed = true;
    for stmt in sqlgen::drop_subscription(n.sub, false) {
        if s.run(ctx, "undo_disarm", &stmt).await.is_err() {
            disarmed = false;
            break;
        }
    }
    if t.run(ctx, "undo_disarm", &sqlgen::drop_slot(n.slot))
        .await
        .is_err()
    {
        disarmed = false;
    }
    if !disarmed {
        problems.push(format!(
            "the armed reverse path (subscription on {su}, slot {} on {tu}) is partly left; the next run reuses it, finalize or DROP removes it",
            ident(n.slot)
        ));
    }
    state.extend(problems);
    Ok(Outcome::FailedSafe {
        error,
        state: state.join("; "),
    })
}
