//! The short actions: prepare, subscribe, start, finalize, fence, unfence. Each is a list of
//! steps computed from the observed state (a step whose effect is already there is left out),
//! so rerunning converges and the plan is exactly what runs.

use std::time::Duration;

use color_eyre::eyre::{Result, bail};

use super::sqlgen::{self, Conninfo, Stmt};
use super::{Ctx, Outcome, Plan, PlanStep, State, db::Db};
use crate::collect::connect::login_credentials;
use crate::config::{Settings, SslMode};
use crate::domain::guards::Action;
use crate::domain::lsn::Lsn;
use crate::domain::observed::Side;
use crate::domain::phase::Phase;
use crate::sql::ident;

/// How the other server connects to `publisher` for replication.
pub fn publisher_conninfo(settings: &Settings, publisher: Side) -> Conninfo {
    let s = settings.side(publisher);
    let (ci, explicit) = match &s.replication_conninfo {
        Some(ci) => (ci, true),
        None => (&s.conninfo, false),
    };
    let (login_user, login_password) = login_credentials(s);
    let user = match (explicit, ci.get("user"), &settings.replication_user) {
        (true, Some(u), _) => u.to_string(),
        (_, _, Some(u)) => u.clone(),
        (_, Some(u), None) => u.to_string(),
        (_, None, None) => login_user.clone(),
    };
    let mut pairs = Vec::new();
    for key in ["host", "hostaddr", "port"] {
        if let Some(v) = ci.get(key) {
            pairs.push((
                key.to_string(),
                v.split(',').next().unwrap_or(v).to_string(),
            ));
        }
    }
    let dbname = ci
        .get("dbname")
        .or(s.conninfo.get("dbname"))
        .map_or_else(|| login_user.clone(), str::to_string);
    pairs.push(("dbname".into(), dbname.clone()));
    pairs.push(("user".into(), user.clone()));
    // The server's libpq has no root file of ours: verification modes become `require` there.
    let mode = match (explicit, ci.get("sslmode")) {
        (true, Some(m)) => Some(m.to_string()),
        _ => match s.sslmode {
            SslMode::Disable => Some("disable".to_string()),
            SslMode::Prefer => None,
            SslMode::Require | SslMode::VerifyFull => Some("require".to_string()),
        },
    };
    if let Some(m) = mode {
        pairs.push(("sslmode".into(), m));
    }
    pairs.push(("application_name".into(), "pgcutover_replication".into()));
    let password = std::env::var(format!(
        "PGCUTOVER_{}_REPLICATION_PASSWORD",
        publisher.upper()
    ))
    .ok()
    .or_else(|| {
        if user == login_user {
            login_password
        } else {
            None
        }
    });
    Conninfo { pairs, password }
}

pub struct Step {
    id: &'static str,
    title: String,
    side: Side,
    stmts: Vec<Stmt>,
}

#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
pub fn computed(
    action: Action,
    settings: &Settings,
    state: &State,
    origin: Option<Lsn>,
) -> (Vec<Step>, Vec<String>) {
    let n = &settings.names;
    let roles = &settings.app_roles;
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    match action {
        Action::Prepare => {
            let b = state.live(Side::Blue).expect("guarded");
            if let Some(u) = &settings.replication_user
                && !b.replication_role.may_replicate()
            {
                steps.push(Step {
                    id: "grant",
                    title: format!("let {} replicate", ident(u)),
                    side: Side::Blue,
                    stmts: vec![sqlgen::grant_replication(u, b.server.is_rds)],
                });
            }
            if b.publication(&n.publication).is_none() {
                steps.push(Step {
                    id: "publication",
                    title: "publication for all tables".into(),
                    side: Side::Blue,
                    stmts: vec![sqlgen::create_publication(&n.publication)],
                });
            }
            if b.slot(&n.slot).is_none() {
                steps.push(Step {
                    id: "slot",
                    title: "logical slot (pgoutput), before the snapshot".into(),
                    side: Side::Blue,
                    // Then one flushed transaction that writes WAL: a snapshot taken at once
                    // would otherwise end at the slot's own record, whose start (the redo LSN)
                    // lies before the slot's confirmed_flush_lsn, and start would refuse it.
                    stmts: vec![sqlgen::create_slot(&n.slot), sqlgen::seal_slot()],
                });
            }
        }
        Action::Subscribe => {
            let g = state.live(Side::Green).expect("guarded");
            if g.app_roles.iter().any(|r| r.exists && r.can_login)
                || g.app_roles.iter().any(|r| r.sessions > 0)
            {
                steps.push(Step {
                    id: "fence_green",
                    title: "fence GREEN: app roles NOLOGIN, their sessions ended".into(),
                    side: Side::Green,
                    stmts: vec![
                        sqlgen::set_login(roles, false),
                        sqlgen::terminate_sessions(roles),
                    ],
                });
            }
            if g.slot(&n.slot).is_some() {
                notes.push(format!(
                    "GREEN holds a slot {} copied from BLUE by the snapshot; it is useless there and keeps WAL: it will be dropped",
                    ident(&n.slot)
                ));
                steps.push(Step {
                    id: "drop_copied_slot",
                    title: "drop the slot the snapshot copied into GREEN".into(),
                    side: Side::Green,
                    stmts: vec![sqlgen::drop_slot(&n.slot)],
                });
            }
            if g.subscription(&n.subscription).is_none() {
                let conn = publisher_conninfo(settings, Side::Blue);
                steps.push(Step {
                    id: "subscription",
                    title: "subscription on BLUE's slot, disabled".into(),
                    side: Side::Green,
                    stmts: vec![sqlgen::create_subscription(
                        &n.subscription,
                        &conn,
                        &n.publication,
                        &n.slot,
                        false,
                    )],
                });
            }
        }
        Action::Start => {
            let g = state.live(Side::Green).expect("guarded");
            if state.phase.phase == Phase::Subscribed
                && let (Some(sub), Some(lsn)) = (g.subscription(&n.subscription), origin)
            {
                let origin_name = format!("pg_{}", sub.oid);
                steps.push(Step {
                    id: "advance_origin",
                    title: format!("start the subscription's origin at {lsn}"),
                    side: Side::Green,
                    stmts: vec![
                        sqlgen::origin_advance(&origin_name, lsn),
                        sqlgen::origin_progress(&origin_name),
                    ],
                });
                steps.push(Step {
                    id: "enable",
                    title: "enable the subscription".into(),
                    side: Side::Green,
                    stmts: vec![sqlgen::alter_subscription(&n.subscription, "ENABLE")],
                });
            }
        }
        Action::Finalize => {
            let b = state.live(Side::Blue).expect("guarded");
            let g = state.live(Side::Green).expect("guarded");
            if let Some(sub) = b.subscription(&n.subscription) {
                notes.push(format!("the rollback path goes: subscription {} on BLUE and slot {} on GREEN; after this, rolling back means a new migration", ident(&n.subscription), ident(&n.slot)));
                steps.push(Step {
                    id: "drop_reverse_subscription",
                    title: "drop the rollback subscription on BLUE".into(),
                    side: Side::Blue,
                    stmts: sqlgen::drop_subscription(&n.subscription, sub.enabled),
                });
            }
            if g.slot(&n.slot).is_some() {
                steps.push(Step {
                    id: "drop_reverse_slot",
                    title: "drop the rollback slot on GREEN".into(),
                    side: Side::Green,
                    stmts: vec![sqlgen::drop_slot(&n.slot)],
                });
            }
        }
        Action::Fence(side) => {
            steps.push(Step {
                id: "fence",
                title: format!(
                    "fence {}: app roles NOLOGIN, their sessions ended",
                    side.upper()
                ),
                side,
                stmts: vec![
                    sqlgen::set_login(roles, false),
                    sqlgen::terminate_sessions(roles),
                ],
            });
        }
        Action::Unfence(side) => {
            steps.push(Step {
                id: "unfence",
                title: format!("unfence {}: app roles LOGIN", side.upper()),
                side,
                stmts: vec![sqlgen::set_login(roles, true)],
            });
        }
        Action::Cutover | Action::Rollback | Action::Rds(_) => {
            unreachable!("switch actions are planned in switch.rs, RDS actions in rds_actions.rs")
        }
    }
    (steps, notes)
}

pub fn plan(steps: &[Step], notes: Vec<String>, p: &mut Plan) {
    p.notes = notes;
    p.steps = steps
        .iter()
        .map(|s| PlanStep {
            step: s.id,
            title: s.title.clone(),
            side: s.side,
            sql: s.stmts.iter().map(|x| x.shown.clone()).collect(),
        })
        .collect();
}

pub async fn run(
    action: Action,
    settings: &Settings,
    steps: &[Step],
    origin: Option<Lsn>,
    ctx: &mut Ctx<'_>,
) -> Result<Outcome> {
    if steps.is_empty() {
        return Ok(Outcome::NothingToDo {
            summary: format!("{}: nothing to do, already in place", action.name()),
        });
    }
    let timeout = settings.poll.timeout.max(Duration::from_secs(10));
    let mut conns: [Option<Db>; 2] = [None, None];
    let mut summary = Vec::new();
    for step in steps {
        let idx = usize::from(step.side != Side::Blue);
        if conns[idx].is_none() {
            conns[idx] = Some(Db::connect(settings.side(step.side), timeout).await?);
        }
        let db = conns[idx].as_ref().expect("connected");
        let t0 = ctx.begin(step.id, &step.title, Some(step.side))?;
        let mut values = Vec::new();
        for stmt in &step.stmts {
            values.push(db.value(ctx, step.id, stmt).await?);
        }
        let last = values.last().cloned().flatten();
        let detail = match (step.id, values.first().cloned().flatten()) {
            ("slot", Some(lsn)) => format!("slot created at {lsn}"),
            ("advance_origin", _) => format!("origin at {}", last.clone().unwrap_or_default()),
            _ => step.title.clone(),
        };
        if step.id == "advance_origin" {
            let want = origin.map(|l| l.to_string());
            if last != want {
                bail!(
                    "the origin reads {last:?} after advancing it to {want:?}; the subscription was NOT enabled"
                );
            }
        }
        ctx.end(step.id, t0, &detail)?;
        summary.push(detail);
    }
    if action == Action::Start {
        let g = conns[1].as_ref().expect("start ran on GREEN");
        let t0 = ctx.begin("verify", "wait for the apply worker", Some(Side::Green))?;
        let q = sqlgen::subscription_origin(&settings.names.subscription);
        let mut streaming = false;
        for _ in 0..300 {
            let rows = g.run(ctx, "verify", &q).await?;
            if rows
                .first()
                .and_then(|r| r.get(2))
                .cloned()
                .flatten()
                .as_deref()
                == Some("1")
            {
                streaming = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !streaming {
            bail!(
                "the subscription is enabled but no apply worker runs after 30 s: read GREEN's server log"
            );
        }
        ctx.end("verify", t0, "apply worker streaming")?;
    }
    Ok(Outcome::Done {
        summary: summary.join("; "),
        window_ms: None,
        steps: ctx.steps.clone(),
    })
}
