//! The short actions: prepare, subscribe, start, finalize, fence, unfence. Each is a list of
//! steps computed from the observed state (a step whose effect is already there is left out),
//! so rerunning converges; the plan shows that list and the run executes it.

use std::time::Duration;

use color_eyre::eyre::{Result, bail};

use super::sqlgen::{self, Conninfo, Stmt};
use super::step::Step;
use super::{Ctx, Outcome, Wait, db::Db};
use crate::collect::connect::login_credentials;
use crate::config::{Settings, SslMode};
use crate::domain::guards::{Action, Guard};
use crate::domain::lsn::Lsn;
use crate::domain::observed::{Live, Side};
use crate::domain::phase::Phase;
use crate::domain::step::StepId;
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

/// The sides an action's steps are computed from, as the guards found them readable.
/// The migration's subscription to `publisher`, created disabled (it is enabled once its origin
/// is placed): the forward one by `subscribe`, the reverse one when a switch arms it.
pub fn disabled_subscription(settings: &Settings, publisher: Side) -> Stmt {
    let n = &settings.names;
    sqlgen::create_subscription(
        &n.subscription,
        &publisher_conninfo(settings, publisher),
        &n.publication,
        &n.slot,
        false,
    )
}

pub struct Seen<'a> {
    pub blue: Option<&'a Live>,
    pub green: Option<&'a Live>,
    pub phase: Phase,
}

impl<'a> Seen<'a> {
    /// A side the action needs; the guards refuse before this when it cannot be read, so a
    /// missing side here is reported as a refusal, never a panic.
    pub fn need(&self, side: Side) -> Result<&'a Live, Guard> {
        match side {
            Side::Blue => self.blue,
            Side::Green => self.green,
        }
        .ok_or_else(|| Guard {
            name: "reachable",
            ok: false,
            detail: format!("{} cannot be read", side.upper()),
        })
    }
}

/// The steps of a short action and the notes to show with them.
pub fn computed(
    action: Action,
    settings: &Settings,
    seen: &Seen,
    origin: Option<Lsn>,
) -> Result<(Vec<Step>, Vec<String>), Guard> {
    let roles = &settings.app_roles;
    let mut notes = Vec::new();
    let steps = match action {
        Action::Prepare => prepare(settings, seen.need(Side::Blue)?),
        Action::Subscribe => subscribe(settings, seen.need(Side::Green)?, &mut notes),
        Action::Start => start(settings, seen.need(Side::Green)?, seen.phase, origin),
        Action::Finalize => finalize(
            settings,
            seen.need(Side::Blue)?,
            seen.need(Side::Green)?,
            &mut notes,
        ),
        Action::Fence(side) => vec![
            Step::new(
                StepId::Fence,
                side,
                format!(
                    "fence {}: app roles NOLOGIN, their sessions ended",
                    side.upper()
                ),
            )
            .stmt(sqlgen::set_login(roles, false))
            .stmt(sqlgen::terminate_sessions(roles)),
        ],
        Action::Unfence(side) => vec![
            Step::new(
                StepId::Unfence,
                side,
                format!("unfence {}: app roles LOGIN", side.upper()),
            )
            .stmt(sqlgen::set_login(roles, true)),
        ],
        Action::Cutover | Action::Rollback | Action::Rds(_) | Action::Analyze | Action::Verify => {
            return Err(Guard {
                name: "action",
                ok: false,
                detail: format!("internal: {} is planned by its own module", action.name()),
            });
        }
    };
    Ok((steps, notes))
}

fn prepare(settings: &Settings, b: &Live) -> Vec<Step> {
    let n = &settings.names;
    let mut steps = Vec::new();
    if let Some(u) = &settings.replication_user
        && !b.replication_role.may_replicate()
    {
        steps.push(
            Step::new(
                StepId::Grant,
                Side::Blue,
                format!("let {} replicate", ident(u)),
            )
            .stmt(sqlgen::grant_replication(u, b.server.is_rds)),
        );
    }
    if b.publication(&n.publication).is_none() {
        steps.push(
            Step::new(
                StepId::Publication,
                Side::Blue,
                "publication for all tables",
            )
            .stmt(sqlgen::create_publication(&n.publication)),
        );
    }
    if b.slot(&n.slot).is_none() {
        // Then one flushed transaction that writes WAL: a snapshot taken at once would otherwise
        // end at the slot's own record, whose start (the redo LSN) lies before the slot's
        // confirmed_flush_lsn, and start would refuse it.
        steps.push(
            Step::new(
                StepId::Slot,
                Side::Blue,
                "logical slot (pgoutput), before the snapshot",
            )
            .stmt(sqlgen::create_slot(&n.slot))
            .stmt(sqlgen::seal_slot()),
        );
    }
    steps
}

fn subscribe(settings: &Settings, g: &Live, notes: &mut Vec<String>) -> Vec<Step> {
    let n = &settings.names;
    let roles = &settings.app_roles;
    let mut steps = Vec::new();
    if g.app_roles.iter().any(|r| r.exists && r.can_login)
        || g.app_roles.iter().any(|r| r.sessions > 0)
    {
        steps.push(
            Step::new(
                StepId::FenceGreen,
                Side::Green,
                "fence GREEN: app roles NOLOGIN, their sessions ended",
            )
            .stmt(sqlgen::set_login(roles, false))
            .stmt(sqlgen::terminate_sessions(roles)),
        );
    }
    if g.slot(&n.slot).is_some() {
        notes.push(format!(
            "GREEN holds a slot {} copied from BLUE by the snapshot; it is useless there and keeps WAL: it will be dropped",
            ident(&n.slot)
        ));
        steps.push(
            Step::new(
                StepId::DropCopiedSlot,
                Side::Green,
                "drop the slot the snapshot copied into GREEN",
            )
            .stmt(sqlgen::drop_slot(&n.slot)),
        );
    }
    if g.subscription(&n.subscription).is_none() {
        steps.push(
            Step::new(
                StepId::Subscription,
                Side::Green,
                "subscription on BLUE's slot, disabled",
            )
            .stmt(disabled_subscription(settings, Side::Blue)),
        );
    }
    steps
}

fn start(settings: &Settings, g: &Live, phase: Phase, origin: Option<Lsn>) -> Vec<Step> {
    let n = &settings.names;
    let mut steps = Vec::new();
    if phase == Phase::Subscribed
        && let (Some(sub), Some(lsn)) = (g.subscription(&n.subscription), origin)
    {
        let origin_name = format!("pg_{}", sub.oid);
        steps.push(
            Step::new(
                StepId::AdvanceOrigin,
                Side::Green,
                format!("start the subscription's origin at {lsn}"),
            )
            .stmt(sqlgen::origin_advance(&origin_name, lsn))
            .stmt(sqlgen::origin_progress(&origin_name)),
        );
        steps.push(
            Step::new(StepId::Enable, Side::Green, "enable the subscription")
                .stmt(sqlgen::alter_subscription(&n.subscription, "ENABLE")),
        );
        steps.push(
            Step::new(StepId::Verify, Side::Green, "wait for the apply worker")
                .stmt(sqlgen::subscription_origin(&n.subscription))
                .repeat(format!(
                    "until its worker runs, up to {} s",
                    WORKER_START.as_secs()
                )),
        );
    }
    steps
}

fn finalize(settings: &Settings, b: &Live, g: &Live, notes: &mut Vec<String>) -> Vec<Step> {
    let n = &settings.names;
    let mut steps = Vec::new();
    if let Some(sub) = b.subscription(&n.subscription) {
        notes.push(format!("the rollback path goes: subscription {} on BLUE and slot {} on GREEN; after this, rolling back means a new migration", ident(&n.subscription), ident(&n.slot)));
        steps.push(
            Step::new(
                StepId::DropReverseSubscription,
                Side::Blue,
                "drop the rollback subscription on BLUE",
            )
            .stmts(sqlgen::drop_subscription(&n.subscription, sub.enabled)),
        );
    }
    if g.slot(&n.slot).is_some() {
        steps.push(
            Step::new(
                StepId::DropReverseSlot,
                Side::Green,
                "drop the rollback slot on GREEN",
            )
            .stmt(sqlgen::drop_slot(&n.slot)),
        );
    }
    steps
}

/// How long `start` waits for the apply worker it enabled.
const WORKER_START: Duration = Duration::from_secs(30);

pub async fn run(
    action: Action,
    settings: &Settings,
    steps: &[Step],
    origin: Option<Lsn>,
    ctx: &Ctx<'_>,
) -> Result<Outcome> {
    if steps.is_empty() {
        return Ok(Outcome::NothingToDo {
            summary: format!("{}: nothing to do, already in place", action.name()),
        });
    }
    let timeout = settings.poll.timeout.max(Duration::from_secs(10));
    // one connection per side and database, opened when a step first needs it
    let mut conns: Vec<(Side, Option<String>, Db)> = Vec::new();
    let mut summary = Vec::new();
    for step in steps {
        let at = conns
            .iter()
            .position(|(s, d, _)| *s == step.side && *d == step.db);
        let at = if let Some(i) = at {
            i
        } else {
            let ss = match &step.db {
                Some(d) => settings.side(step.side).for_database(d),
                None => settings.side(step.side).clone(),
            };
            conns.push((step.side, step.db.clone(), Db::connect(&ss, timeout).await?));
            conns.len() - 1
        };
        let db = &conns[at].2;
        let t0 = ctx.begin(step.id, &step.title, Some(step.side))?;
        let detail = if step.id == StepId::Verify {
            let q = step.sql(0)?;
            let wait = Wait::new(WORKER_START, Duration::from_millis(100));
            loop {
                let rows = db.run(ctx, step.id, q).await?;
                let workers = rows.first().and_then(|r| r.get(2)).cloned().flatten();
                if workers.as_deref() == Some("1") {
                    break "apply worker streaming".to_string();
                }
                if !wait.again().await {
                    bail!(
                        "the subscription is enabled but no apply worker runs after {} s: read GREEN's server log",
                        WORKER_START.as_secs()
                    );
                }
            }
        } else {
            let mut values = Vec::new();
            for stmt in &step.stmts {
                values.push(db.value(ctx, step.id, stmt).await?);
            }
            let last = values.last().cloned().flatten();
            if step.id == StepId::AdvanceOrigin {
                let want = origin.map(|l| l.to_string());
                if last != want {
                    bail!(
                        "the origin reads {last:?} after advancing it to {want:?}; the subscription was NOT enabled"
                    );
                }
            }
            match (step.id, values.first().cloned().flatten()) {
                (StepId::Slot, Some(lsn)) => format!("slot created at {lsn}"),
                (StepId::AdvanceOrigin, _) => format!("origin at {}", last.unwrap_or_default()),
                _ => step.title.clone(),
            }
        };
        ctx.end(step.id, t0, &detail)?;
        summary.push(detail);
    }
    Ok(Outcome::Done {
        summary: summary.join("; "),
        window_ms: None,
        held_ms: None,
        steps: ctx.steps(),
    })
}
