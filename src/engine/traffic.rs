//! The application's traffic follows the switch. With PgBouncer: PAUSE every configured
//! database on every bouncer (in-flight transactions finish, server connections close, new
//! queries wait), switch, repoint every entry at the target (include file + RELOAD, verified with
//! SHOW DATABASES), RESUME. Paused clients see latency, never the fence. With a command: run
//! the operator's program once the target serves.
//!
//! The steps are planned from what the bouncers say now, so a rerun after a crash finishes the
//! repointing and the RESUME instead of repeating the switch.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};
use futures_util::future::join_all;

use super::Ctx;
use super::journal::Record;
use super::step::Step;
use crate::config::{Bouncer, Retarget, Router, Settings};
use crate::domain::guards::{Action, Guard};
use crate::domain::observed::Side;
use crate::domain::step::StepId;
use crate::pgbouncer::{self, Admin, Entry};

/// One thing asked of a router, as data: the plan shows it, the run does exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterOp {
    Pause {
        bouncer: usize,
        db: String,
    },
    /// Point the bouncer's entries at `to`, RELOAD, and verify with SHOW DATABASES.
    Retarget {
        bouncer: usize,
        to: Side,
    },
    Resume {
        bouncer: usize,
        db: String,
    },
    /// The operator's program, told where the application must go now.
    Command {
        to: Side,
    },
}

/// What one bouncer says of its entries now.
#[derive(Debug, Clone)]
pub struct BouncerView {
    pub name: String,
    pub entries: Result<Vec<Entry>, String>,
}

impl BouncerView {
    /// The configured databases' entries; a missing one is an error naming it.
    fn configured<'a>(&'a self, b: &Bouncer) -> Result<Vec<&'a Entry>, String> {
        let entries = self.entries.as_ref().map_err(Clone::clone)?;
        b.databases
            .iter()
            .map(|db| {
                entries.iter().find(|e| &e.name == db).ok_or_else(|| {
                    format!(
                        "{} has no database `{db}`; add it to the include file",
                        self.name
                    )
                })
            })
            .collect()
    }
}

fn admin_timeout(settings: &Settings) -> Duration {
    settings.poll.timeout.max(Duration::from_secs(5))
}

/// Read every bouncer's entries, in parallel.
pub async fn observe(settings: &Settings) -> Vec<BouncerView> {
    let t = admin_timeout(settings);
    join_all(settings.traffic.bouncers().iter().map(|b| async move {
        let entries = async {
            let a = Admin::connect(b, t).await?;
            a.databases(t).await
        }
        .await
        .map_err(|e| crate::format::report_chain(&e));
        BouncerView {
            name: b.name.clone(),
            entries,
        }
    }))
    .await
}

/// Before a full switch every bouncer must answer and point at the source, or the PAUSE would
/// hold traffic that is not the source's, or the app is already split.
pub fn guard(settings: &Settings, views: &[BouncerView], src: Side) -> Option<Guard> {
    if !matches!(settings.traffic.router, Router::PgBouncer(_)) {
        return None;
    }
    let mut problems = Vec::new();
    for (b, v) in settings.traffic.bouncers().iter().zip(views) {
        match v.configured(b) {
            Err(e) => problems.push(e),
            Ok(entries) => {
                for e in entries {
                    let side = pgbouncer::side_of(e, &settings.traffic);
                    if side != Some(src) {
                        problems.push(format!(
                            "{}: `{}` points at {}:{} ({}), not at {}",
                            b.name,
                            e.name,
                            e.host,
                            e.port,
                            side.map_or("neither side's pgbouncer_target", Side::upper),
                            src.upper()
                        ));
                    }
                }
            }
        }
    }
    let n = views.len();
    Some(Guard::new(
        "traffic",
        problems.is_empty(),
        if problems.is_empty() {
            format!("{n} PgBouncer(s) answer and point at {}", src.upper())
        } else {
            problems.join("; ")
        },
    ))
}

/// PAUSE every configured database on every bouncer.
pub fn pause_step(settings: &Settings, src: Side) -> Option<Step> {
    let bouncers = settings.traffic.bouncers();
    if bouncers.is_empty() {
        return None;
    }
    let mut step = Step::new(
        StepId::TrafficPause,
        src,
        format!(
            "PgBouncer: PAUSE the app's databases (in-flight transactions finish; new ones wait), up to {} ms",
            settings.traffic.pause_timeout.as_millis()
        ),
    );
    for (i, b) in bouncers.iter().enumerate() {
        for db in &b.databases {
            step = step.op(
                RouterOp::Pause {
                    bouncer: i,
                    db: db.clone(),
                },
                format!("PAUSE {db};  -- {}", b.name),
            );
        }
    }
    Some(step)
}

/// Repoint the bouncers that do not yet point at `to` (all of them when `views` is `None`: the
/// switch itself), then RESUME every configured database.
pub fn follow_steps(settings: &Settings, to: Side, views: Option<&[BouncerView]>) -> Vec<Step> {
    match &settings.traffic.router {
        Router::None => Vec::new(),
        Router::Command(c) => vec![
            Step::new(
                StepId::RouterCommand,
                to,
                format!("point the application at {} (your command)", to.upper()),
            )
            .op(
                RouterOp::Command { to },
                format!(
                    "{}  -- PGCUTOVER_TO={to}, up to {} ms",
                    crate::text::echo(&c.argv.join(" ")),
                    c.timeout.as_millis()
                ),
            ),
        ],
        Router::PgBouncer(bouncers) => bouncer_follow_steps(settings, bouncers, to, views),
    }
}

fn bouncer_follow_steps(
    settings: &Settings,
    bouncers: &[Bouncer],
    to: Side,
    views: Option<&[BouncerView]>,
) -> Vec<Step> {
    let Some(target) = settings.traffic.target(to) else {
        return Vec::new();
    };
    let mut retarget = Step::new(
        StepId::TrafficRetarget,
        to,
        format!("PgBouncer: point the app's databases at {}", to.upper()),
    );
    let mut resume = Step::new(
        StepId::TrafficResume,
        to,
        "PgBouncer: RESUME the app's databases".to_string(),
    );
    for (i, b) in bouncers.iter().enumerate() {
        let view = views.and_then(|v| v.get(i));
        let (done, paused) = match view.map(|v| v.configured(b)) {
            Some(Ok(entries)) => (
                entries
                    .iter()
                    .all(|e| pgbouncer::points_at(e, target, &e.name)),
                entries
                    .iter()
                    .filter(|e| e.paused)
                    .map(|e| e.name.clone())
                    .collect(),
            ),
            _ => (false, b.databases.clone()),
        };
        if !done {
            retarget = retarget.op(
                RouterOp::Retarget { bouncer: i, to },
                format!(
                    "{}; RELOAD; SHOW DATABASES until each points at {}  -- {}",
                    match &b.retarget {
                        Retarget::IncludeFile(p) => format!(
                            "write {} ({} → {})",
                            p.display(),
                            b.databases.join(", "),
                            target.address()
                        ),
                        Retarget::Argv(a) => crate::text::echo(&a.join(" ")),
                    },
                    target.address(),
                    b.name
                ),
            );
        }
        let to_resume: Vec<String> = if views.is_some() {
            paused
        } else {
            b.databases.clone()
        };
        for db in &to_resume {
            let (op, shown) = resume_op(i, b, db);
            resume = resume.op(op, shown);
        }
    }
    [retarget, resume]
        .into_iter()
        .filter(|s| !s.router.is_empty())
        .collect()
}

/// RESUME of database `db` on bouncer `i`, and how the plan shows it.
fn resume_op(i: usize, b: &Bouncer, db: &str) -> (RouterOp, String) {
    (
        RouterOp::Resume {
            bouncer: i,
            db: db.to_string(),
        },
        format!("RESUME {db};  -- {}", b.name),
    )
}

/// What the traffic steps did, for the undo and the outcome.
#[derive(Default)]
pub struct TrafficProgress {
    /// Bouncer databases this run paused (or found paused) and has not resumed.
    pub paused: Vec<(usize, String)>,
    pub paused_at: Option<Instant>,
    /// How long the app was held, PAUSE sent → RESUME answered.
    pub held_ms: Option<f64>,
}

fn journal(ctx: &Ctx<'_>, step: StepId, shown: &str, t0: Instant, res: &Result<()>) -> Result<()> {
    let err = res.as_ref().err().map(crate::format::report_chain);
    ctx.journal().write(Record {
        event: "router",
        step: Some(step.as_str()),
        sql: Some(shown),
        ok: Some(res.is_ok()),
        error: err.as_deref(),
        ms: Some(t0.elapsed().as_secs_f64() * 1000.0),
        ..Default::default()
    })
}

/// PAUSE all, in parallel, each on its own admin session (PAUSE answers only once the
/// database is paused). One that does not pause in time: RESUME everything, and stop.
pub async fn pause(
    step: &Step,
    settings: &Settings,
    p: &mut TrafficProgress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let bouncers = settings.traffic.bouncers();
    let limit = settings.traffic.pause_timeout;
    let t0 = Instant::now();
    p.paused_at = Some(t0);
    let results = join_all(step.router.iter().map(|(op, _)| async move {
        let RouterOp::Pause { bouncer, db } = op else {
            return Err(eyre!("internal: {op:?} in the pause step"));
        };
        let b = bouncers
            .get(*bouncer)
            .ok_or_else(|| eyre!("internal: no bouncer {bouncer}"))?;
        let deadline = t0 + limit;
        let a = tokio::time::timeout(limit, Admin::connect(b, limit))
            .await
            .map_err(|_| eyre!("{}: no connection within {limit:?}", b.name))??;
        let left = deadline.saturating_duration_since(Instant::now());
        a.command(&format!("PAUSE {db}"), left).await.map_err(|e| {
            eyre!(
                "{e:#}; clients still in a transaction through it keep it from pausing \
                 (raise [traffic] pause_timeout_ms, or end them)"
            )
        })
    }))
    .await;
    let mut failed = Vec::new();
    for ((op, shown), r) in step.router.iter().zip(results) {
        journal(ctx, step.id, shown, t0, &r)?;
        match (op, r) {
            (RouterOp::Pause { bouncer, db }, Ok(())) => p.paused.push((*bouncer, db.clone())),
            (_, Err(e)) => failed.push(crate::format::report_chain(&e)),
            _ => {}
        }
    }
    if failed.is_empty() {
        return Ok(format!(
            "{} database(s) paused in {:.1} ms",
            p.paused.len(),
            t0.elapsed().as_secs_f64() * 1000.0
        ));
    }
    // A PAUSE that timed out may still complete on its own: RESUME every configured database,
    // not only the ones that answered.
    let problems = resume_all(settings, ctx).await;
    p.paused.clear();
    let mut msg = format!(
        "PgBouncer did not pause: {}; every database was resumed, nothing else changed",
        failed.join("; ")
    );
    if !problems.is_empty() {
        msg.push_str(&format!(" (but: {})", problems.join("; ")));
    }
    bail!(msg)
}

/// RESUME every configured database on every bouncer; "not paused" is fine. Returns problems.
pub async fn resume_all(settings: &Settings, ctx: &Ctx<'_>) -> Vec<String> {
    let ops: Vec<(RouterOp, String)> = settings
        .traffic
        .bouncers()
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.databases.iter().map(move |db| resume_op(i, b, db)))
        .collect();
    resume_ops(settings, &ops, StepId::UndoResumeTraffic, ctx).await
}

async fn resume_ops(
    settings: &Settings,
    ops: &[(RouterOp, String)],
    id: StepId,
    ctx: &Ctx<'_>,
) -> Vec<String> {
    let bouncers = settings.traffic.bouncers();
    let t = admin_timeout(settings);
    let t0 = Instant::now();
    let results = join_all(ops.iter().map(|(op, _)| async move {
        let RouterOp::Resume { bouncer, db } = op else {
            return Err(eyre!("internal: {op:?} in a resume"));
        };
        let b = bouncers
            .get(*bouncer)
            .ok_or_else(|| eyre!("internal: no bouncer {bouncer}"))?;
        let a = Admin::connect(b, t).await?;
        match a.command(&format!("RESUME {db}"), t).await {
            Err(e) if format!("{e:#}").contains("is not paused") => Ok(()),
            r => r,
        }
    }))
    .await;
    let mut problems = Vec::new();
    for ((_, shown), r) in ops.iter().zip(results) {
        // the databases' safety does not wait on the journal: a failed write is reported later
        let _ = journal(ctx, id, shown, t0, &r);
        if let Err(e) = r {
            problems.push(crate::format::report_chain(&e));
        }
    }
    problems
}

/// RESUME what the step lists.
pub async fn resume(
    step: &Step,
    settings: &Settings,
    p: &mut TrafficProgress,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let problems = resume_ops(settings, &step.router, step.id, ctx).await;
    if !problems.is_empty() {
        bail!(
            "RESUME failed: {}; the bouncers point at the serving side: RESUME by hand or rerun",
            problems.join("; ")
        );
    }
    p.paused.clear();
    p.held_ms = p.paused_at.map(|t| t.elapsed().as_secs_f64() * 1000.0);
    Ok(match p.held_ms {
        Some(ms) => format!(
            "{} database(s) resumed; the app was held {ms:.1} ms",
            step.router.len()
        ),
        None => format!("{} database(s) resumed", step.router.len()),
    })
}

/// Repoint each listed bouncer, one after another, each verified before the next.
pub async fn retarget(step: &Step, settings: &Settings, ctx: &Ctx<'_>) -> Result<String> {
    let bouncers = settings.traffic.bouncers();
    let t = admin_timeout(settings);
    let mut done = Vec::new();
    for (op, shown) in &step.router {
        let RouterOp::Retarget { bouncer, to } = op else {
            bail!("internal: {op:?} in the retarget step");
        };
        let b = bouncers
            .get(*bouncer)
            .ok_or_else(|| eyre!("internal: no bouncer {bouncer}"))?;
        let target = settings
            .traffic
            .target(*to)
            .ok_or_else(|| eyre!("no [{to}] pgbouncer_target"))?;
        let t0 = Instant::now();
        let r = retarget_one(b, target, t, settings).await;
        journal(ctx, step.id, shown, t0, &r)?;
        r.map_err(|e| {
            eyre!(
                "{e:#}; repointed so far: {}; the bouncers stay paused (never resumed while they point at different sides): \
                 fix it and rerun to finish",
                if done.is_empty() { "none".to_string() } else { done.join(", ") }
            )
        })?;
        done.push(b.name.clone());
        ctx.kill_point(&format!("{}:{}", step.id, done.len()));
    }
    Ok(format!("{} bouncer(s) repointed and verified", done.len()))
}

async fn retarget_one(
    b: &Bouncer,
    target: &crate::config::RouteTarget,
    t: Duration,
    settings: &Settings,
) -> Result<()> {
    match &b.retarget {
        Retarget::IncludeFile(path) => {
            let text = pgbouncer::include_text(b, target);
            let path = path.clone();
            tokio::task::spawn_blocking(move || pgbouncer::write_include(&path, &text))
                .await
                .map_err(|e| eyre!("include file writer: {e}"))??;
        }
        Retarget::Argv(argv) => {
            for db in &b.databases {
                let args: Vec<String> = argv
                    .iter()
                    .map(|a| {
                        a.replace("{db}", db)
                            .replace("{host}", &target.host)
                            .replace("{port}", &target.port.to_string())
                            .replace("{dbname}", target.dbname.as_deref().unwrap_or(db))
                    })
                    .collect();
                run_program(&args, &[], t, settings).await?;
            }
        }
    }
    let a = Admin::connect(b, t).await?;
    a.command("RELOAD", t).await?;
    let entries = a.databases(t).await?;
    for db in &b.databases {
        match entries.iter().find(|e| &e.name == db) {
            Some(e) if pgbouncer::points_at(e, target, db) => {}
            Some(e) => bail!(
                "{}: after RELOAD `{db}` points at {}:{}/{}, not {}; is the include file the one pgbouncer.ini %includes?",
                b.name,
                e.host,
                e.port,
                e.database,
                target.address()
            ),
            None => bail!("{}: after RELOAD there is no database `{db}`", b.name),
        }
    }
    Ok(())
}

/// The operator's router command, told the target.
pub async fn command(
    step: &Step,
    settings: &Settings,
    action: Action,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let Router::Command(c) = &settings.traffic.router else {
        bail!("internal: router command without [traffic.command]");
    };
    let to = step.side;
    let s = settings.side(to);
    let host = s.conninfo.get("host").unwrap_or("").to_string();
    let port = s.conninfo.get("port").unwrap_or("5432").to_string();
    let dbname = s.conninfo.get("dbname").unwrap_or("").to_string();
    let env = [
        ("PGCUTOVER_TO", to.to_string()),
        ("PGCUTOVER_TO_HOST", host),
        ("PGCUTOVER_TO_PORT", port),
        ("PGCUTOVER_TO_DBNAME", dbname),
        ("PGCUTOVER_ACTION", action.name().clone()),
    ];
    let t0 = Instant::now();
    let r = run_program(&c.argv, &env, c.timeout, settings).await;
    let shown = step.router.first().map_or("", |(_, s)| s.as_str());
    journal(
        ctx,
        step.id,
        shown,
        t0,
        &r.as_ref().map(drop).map_err(|e| eyre!("{e:#}")),
    )?;
    let out = r?;
    Ok(if out.is_empty() { "done".into() } else { out })
}

/// The values of this process's environment that may be secrets (names with PASSWORD, SECRET
/// or TOKEN: libpq's, pgcutover's `password_env` defaults, AWS's), which the program inherits.
/// Also the variables the configuration names in `password_env`, whatever they are called.
fn secret_values(settings: &Settings) -> Vec<String> {
    let named: Vec<&str> = [&settings.blue, &settings.green]
        .into_iter()
        .chain(settings.traffic.bouncers().iter().map(|b| &b.admin))
        .map(|s| s.password_env.as_str())
        .collect();
    std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            let upper = k.to_ascii_uppercase();
            named.contains(&k.as_ref())
                || ["PASSWORD", "SECRET", "TOKEN"]
                    .iter()
                    .any(|w| upper.contains(w))
        })
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .collect()
}

/// Run a program with a time limit; its output (clipped, one line, terminal-safe) or an error
/// with its exit status.
async fn run_program(
    argv: &[String],
    env: &[(&str, String)],
    limit: Duration,
    settings: &Settings,
) -> Result<String> {
    let (prog, args) = argv.split_first().ok_or_else(|| eyre!("empty command"))?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let shown = crate::text::echo(prog);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .map_err(|_| eyre!("`{shown}` did not finish within {limit:?} (it was killed)"))?
        .map_err(|e| eyre!("cannot run `{shown}`: {e}"))?;
    // Its output is journaled and shown: whatever secret it was handed or found is masked.
    let secrets = secret_values(settings);
    let text = |b: &[u8]| {
        let masked = crate::text::redact_secrets(String::from_utf8_lossy(b).trim(), &secrets);
        crate::text::clip(&crate::text::one_line(&masked), 300)
    };
    if !out.status.success() {
        bail!("`{shown}` failed ({}): {}", out.status, text(&out.stderr));
    }
    Ok(text(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        crate::config::from_str(
            "[cutover]\napp_roles = [\"app\"]\n\
             [blue]\ndsn = \"host=127.0.0.1 port=1 dbname=app user=admin\"\n\
             pgbouncer_target = \"host=10.0.0.1 port=5432 dbname=app\"\n\
             [green]\ndsn = \"host=127.0.0.1 port=2 dbname=app user=admin\"\n\
             pgbouncer_target = \"host=10.0.0.2 port=5432 dbname=app\"\n\
             [traffic]\nrouter = \"pgbouncer\"\n\
             [[traffic.pgbouncer]]\nadmin = \"host=10.0.0.5\"\ndatabases = [\"app\"]\ninclude_file = \"/i1\"\n\
             [[traffic.pgbouncer]]\nadmin = \"host=10.0.0.6\"\ndatabases = [\"app\"]\ninclude_file = \"/i2\"\n",
            None,
            &Default::default(),
        )
        .unwrap()
    }

    fn view(name: &str, host: &str, paused: bool) -> BouncerView {
        BouncerView {
            name: name.into(),
            entries: Ok(vec![Entry {
                name: "app".into(),
                host: host.into(),
                port: 5432,
                database: "app".into(),
                paused,
                pool_mode: String::new(),
            }]),
        }
    }

    #[test]
    fn a_switch_pauses_repoints_and_resumes_every_bouncer() {
        let st = settings();
        let pause = pause_step(&st, Side::Blue).unwrap();
        assert_eq!(pause.router.len(), 2);
        let follow = follow_steps(&st, Side::Green, None);
        let ids: Vec<StepId> = follow.iter().map(|s| s.id).collect();
        assert_eq!(ids, [StepId::TrafficRetarget, StepId::TrafficResume]);
        assert_eq!(follow[0].router.len(), 2);
        assert_eq!(follow[1].router.len(), 2);
        let plan = follow[0].to_plan();
        assert!(
            plan.sql[0].contains("write /i1 (app → 10.0.0.2:5432)"),
            "{:?}",
            plan.sql
        );
    }

    #[test]
    fn a_rerun_finishes_only_what_is_left() {
        let st = settings();
        // killed between the first and the second bouncer's repointing
        let views = [view("b1", "10.0.0.2", true), view("b2", "10.0.0.1", true)];
        let follow = follow_steps(&st, Side::Green, Some(&views));
        assert_eq!(follow[0].router.len(), 1);
        assert!(matches!(
            follow[0].router[0].0,
            RouterOp::Retarget { bouncer: 1, .. }
        ));
        assert_eq!(follow[1].router.len(), 2);
        // all repointed and resumed: nothing
        let views = [view("b1", "10.0.0.2", false), view("b2", "10.0.0.2", false)];
        assert!(follow_steps(&st, Side::Green, Some(&views)).is_empty());
        // an unreadable bouncer is repointed and resumed
        let views = [
            view("b1", "10.0.0.2", false),
            BouncerView {
                name: "b2".into(),
                entries: Err("down".into()),
            },
        ];
        let follow = follow_steps(&st, Side::Green, Some(&views));
        assert_eq!(follow[0].router.len(), 1);
        assert_eq!(follow[1].router.len(), 1);
    }

    #[test]
    fn the_guard_wants_every_bouncer_on_the_source() {
        let st = settings();
        let ok = [view("b1", "10.0.0.1", false), view("b2", "10.0.0.1", false)];
        assert!(guard(&st, &ok, Side::Blue).unwrap().ok);
        let split = [view("b1", "10.0.0.1", false), view("b2", "10.0.0.2", false)];
        let g = guard(&st, &split, Side::Blue).unwrap();
        assert!(!g.ok);
        assert!(
            g.detail.contains("pgbouncer 2") && g.detail.contains("(GREEN)"),
            "{}",
            g.detail
        );
        let down = [
            view("b1", "10.0.0.1", false),
            BouncerView {
                name: "b2".into(),
                entries: Err("b2: connection refused".into()),
            },
        ];
        assert!(!guard(&st, &down, Side::Blue).unwrap().ok);
    }
}
