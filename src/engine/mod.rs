//! The engine: guarded actions as ordered steps. Each run reads the live state, evaluates the
//! guards on it, and executes steps whose every statement is journaled. The cutover and rollback
//! are one procedure parameterised by direction (`switch`); the rest are short step lists
//! (`steps`) computed from the state, so the plan shown is what runs.

mod analyze;
pub mod db;
pub mod journal;
mod rds_actions;
pub mod scope;
pub mod sqlgen;
mod step;
mod steps;
mod subscribed;
mod switch;
pub mod traffic;
pub mod verify;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail};
use serde::Serialize;

use crate::collect::reading::{self, SideReading};
use crate::config::Settings;
use crate::domain::checks::Check;
use crate::domain::guards::{self, Action, Guard, GuardInput, LagGate, SwitchMode};
use crate::domain::lsn::Lsn;
use crate::domain::observed::{Live, Side};
use crate::domain::phase::{Phase, PhaseReport};
use crate::domain::step::{Edge, StepId};
use journal::{Journal, Record};

/// What the engine reports while it works (the CLI prints these; the dashboard shows them).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        step: StepId,
        title: String,
        side: Option<Side>,
        #[serde(skip_serializing_if = "Option::is_none")]
        window: Option<Edge>,
    },
    StepFinished {
        step: StepId,
        ms: f64,
        detail: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        window: Option<Edge>,
    },
    Note {
        text: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    pub step: StepId,
    pub ms: f64,
}

/// One step of a plan: what it does, where, and its statements as they will run (values known
/// only while running appear as `<…>`).
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    pub step: StepId,
    pub title: String,
    pub side: Side,
    pub sql: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Edge>,
    /// The database it runs in, when several are replicated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub action: String,
    pub guards: Vec<Guard>,
    pub mode: Option<SwitchMode>,
    pub steps: Vec<PlanStep>,
    /// Things the operator should know before confirming (e.g. what will be dropped).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn refused(&self) -> bool {
        self.guards.iter().any(|g| !g.ok)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done {
        summary: String,
        /// NOLOGIN on the source → LOGIN on the target, for cutover and rollback.
        window_ms: Option<f64>,
        /// PAUSE → RESUME: how long the routers held the application, for a switch with them.
        held_ms: Option<f64>,
        steps: Vec<StepTime>,
    },
    NothingToDo {
        summary: String,
    },
    Refused {
        guards: Vec<Guard>,
    },
    /// Failed before the point of no return; the engine put things back as `state` says.
    FailedSafe {
        error: String,
        state: String,
    },
    /// Failed after the target was unfenced: the app is on the target; rerunning finishes.
    FailedAfterSwitch {
        error: String,
        state: String,
    },
}

impl Outcome {
    /// Add a note to what the operator reads: the state after a failure, the summary after
    /// success.
    pub fn append(&mut self, note: &str) {
        match self {
            Outcome::FailedSafe { state, .. } | Outcome::FailedAfterSwitch { state, .. } => {
                state.push_str(note);
            }
            Outcome::Done { summary, .. } | Outcome::NothingToDo { summary } => {
                summary.push_str(note);
            }
            Outcome::Refused { .. } => {}
        }
    }

    /// Put `note` before the state (or summary) it explains.
    pub fn prepend(&mut self, note: &str) {
        match self {
            Outcome::FailedSafe { state, .. } | Outcome::FailedAfterSwitch { state, .. } => {
                state.insert_str(0, note);
            }
            Outcome::Done { summary, .. } | Outcome::NothingToDo { summary } => {
                summary.insert_str(0, note);
            }
            Outcome::Refused { .. } => {}
        }
    }
}

/// RunOptions of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `start`: the redo LSN as read in `redo done at X/Y` (origin = X + 1) …
    pub lsn: Option<Lsn>,
    /// … or, with `exact`, the origin LSN itself.
    pub exact: bool,
    pub journal: Option<PathBuf>,
}

/// A statement in flight on an engine connection, and how to cancel it.
type Running = (
    u64,
    tokio_postgres::CancelToken,
    Arc<crate::config::SideSettings>,
);

/// SIGINT during a run: the flag stops the action at its next step, and the statements running
/// at that moment are cancelled on their servers (as psql does), so a long wait ends now. The
/// engine's own safety work (the undo) is not interruptible.
#[derive(Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    running: Arc<Mutex<Vec<Running>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Interrupt {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// A statement is about to run; several may run at once (one per database), so each is
    /// known by the ticket returned here.
    pub fn running(
        &self,
        token: tokio_postgres::CancelToken,
        s: &Arc<crate::config::SideSettings>,
    ) -> u64 {
        let ticket = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut r) = self.running.lock() {
            r.push((ticket, token, s.clone()));
        }
        ticket
    }

    pub fn finished(&self, ticket: u64) {
        if let Ok(mut r) = self.running.lock() {
            r.retain(|(t, _, _)| *t != ticket);
        }
    }

    /// Set the flag and cancel what runs now.
    pub async fn fire(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let now: Vec<_> = self
            .running
            .lock()
            .map(|r| r.iter().map(|(_, t, s)| (t.clone(), s.clone())).collect())
            .unwrap_or_default();
        for (t, s) in now {
            let _ = crate::collect::connect::cancel(&t, &s).await;
        }
    }
}

type Sink<'a> = &'a mut (dyn FnMut(&Event) + Send);

/// What a running action shares with its steps: the journal, the event sink, the step timings
/// and the interrupt. Shared, not borrowed mutably, because the steps of several databases run
/// at once; each lock is held only to write one record, never across a wait.
pub struct Ctx<'a> {
    journal: Mutex<&'a mut Journal>,
    on_event: Mutex<Sink<'a>>,
    abort_after: Option<String>,
    panic_after: Option<String>,
    steps: Mutex<Vec<StepTime>>,
    pub interrupt: Interrupt,
    /// False while the engine restores safety: SIGINT does not stop that.
    interruptible: AtomicBool,
}

/// A lock whose holder panicked still guards valid data here (a journal, a list of timings).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a> Ctx<'a> {
    pub fn new(journal: &'a mut Journal, on_event: Sink<'a>) -> Ctx<'a> {
        Ctx {
            journal: Mutex::new(journal),
            on_event: Mutex::new(on_event),
            abort_after: None,
            panic_after: None,
            steps: Mutex::new(Vec::new()),
            interrupt: Interrupt::default(),
            interruptible: AtomicBool::new(true),
        }
    }

    /// The journal, for one record.
    pub fn journal(&self) -> std::sync::MutexGuard<'_, &'a mut Journal> {
        lock(&self.journal)
    }

    fn emit(&self, e: &Event) {
        (lock(&self.on_event))(e);
    }

    /// The steps finished so far, with their durations.
    pub fn steps(&self) -> Vec<StepTime> {
        lock(&self.steps).clone()
    }

    /// The databases are being put back in a safe state: nothing may stop that work, neither
    /// SIGINT nor a journal that can no longer be written.
    pub fn restoring_safety(&self) {
        self.interruptible.store(false, Ordering::SeqCst);
        self.journal().set_lenient();
    }

    /// An error once SIGINT arrived, unless the engine is restoring safety.
    pub fn check_interrupt(&self, step: StepId) -> Result<()> {
        if self.interruptible.load(Ordering::SeqCst) && self.interrupt.is_set() {
            bail!("interrupted (SIGINT) in step {step}");
        }
        Ok(())
    }

    pub fn begin(&self, step: StepId, title: &str, side: Option<Side>) -> Result<Instant> {
        self.begin_at_edge(step, title, side, None)
    }

    /// `begin` for a step that may open or close the switch window.
    pub fn begin_at_edge(
        &self,
        step: StepId,
        title: &str,
        side: Option<Side>,
        window: Option<Edge>,
    ) -> Result<Instant> {
        self.check_interrupt(step)?;
        self.journal().write(Record {
            event: "step_started",
            step: Some(step.as_str()),
            side,
            result: Some(title),
            ..Default::default()
        })?;
        self.emit(&Event::StepStarted {
            step,
            title: title.into(),
            side,
            window,
        });
        Ok(Instant::now())
    }

    pub fn end(&self, step: StepId, t0: Instant, detail: &str) -> Result<()> {
        self.end_at_edge(step, t0, detail, None)
    }

    pub fn end_at_edge(
        &self,
        step: StepId,
        t0: Instant,
        detail: &str,
        window: Option<Edge>,
    ) -> Result<()> {
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        self.journal().write(Record {
            event: "step_finished",
            step: Some(step.as_str()),
            ok: Some(true),
            result: Some(detail),
            ms: Some(ms),
            ..Default::default()
        })?;
        self.emit(&Event::StepFinished {
            step,
            ms,
            detail: detail.into(),
            window,
        });
        lock(&self.steps).push(StepTime { step, ms });
        self.kill_point(step.as_str());
        // Test hook: a bug in the engine, to prove the dashboard reports a panicked action.
        assert!(
            self.panic_after.as_deref() != Some(step.as_str()),
            "test hook: panic after step {step}"
        );
        Ok(())
    }

    /// Test hook: die like `kill -9` at a named point (after a step, or inside one, e.g.
    /// `traffic_retarget:1` after the first bouncer), to prove reruns converge.
    pub fn kill_point(&self, point: &str) {
        if self.abort_after.as_deref() == Some(point) {
            std::process::abort();
        }
    }

    pub fn note(&self, text: impl Into<String>) -> Result<()> {
        let text = text.into();
        self.journal().write(Record {
            event: "note",
            result: Some(&text),
            ..Default::default()
        })?;
        self.emit(&Event::Note { text });
        Ok(())
    }
}

/// Everything observed on both sides, with the derived phase and checks.
pub struct Observed {
    pub blue: SideReading,
    pub green: SideReading,
    pub phase: PhaseReport,
    pub checks: Vec<Check>,
}

impl Observed {
    pub fn live(&self, s: Side) -> Option<&Live> {
        match s {
            Side::Blue => self.blue.live.as_ref().ok(),
            Side::Green => self.green.live.as_ref().ok(),
        }
    }
    fn error(&self, s: Side) -> Option<&str> {
        match s {
            Side::Blue => self.blue.live.as_ref().err().map(String::as_str),
            Side::Green => self.green.live.as_ref().err().map(String::as_str),
        }
    }
}

pub async fn observe(settings: &Settings) -> Observed {
    let (blue, green) = reading::read_both(settings, true).await;
    let (phase, checks) = crate::domain::checks::assess(
        &settings.names,
        &settings.app_roles,
        blue.view(),
        green.view(),
    );
    Observed {
        blue,
        green,
        phase,
        checks,
    }
}

/// Sample the source slot's lag `n` times, `interval` apart, on a fresh connection each sample
/// would be wasteful: one reader, the slot's row only.
async fn sample_lag(settings: &Settings, source: Side) -> Option<LagGate> {
    let mut reader = reading::reader(settings, source);
    let mut samples = Vec::new();
    for i in 0..settings.cutover.steady_samples {
        if i > 0 {
            tokio::time::sleep(settings.cutover.sample_interval).await;
        }
        let live = reader.live().await.ok()?;
        let lag = live
            .slot(&settings.names.slot)?
            .lag_bytes(live.server.current_lsn)?;
        samples.push(lag);
    }
    Some(LagGate {
        max_bytes: settings.cutover.max_lag_bytes,
        needed: settings.cutover.steady_samples,
        samples,
        wait_s: settings.cutover.gate_timeout.as_secs(),
    })
}

/// The origin LSN for `start`: `--lsn` (+1 unless exact), else the restore's redo line from the
/// configured source (CloudWatch Logs, RDS log files or a file).
pub async fn origin_for_start(
    settings: &Settings,
    opts: &RunOptions,
) -> Result<(Lsn, String), String> {
    if let Some(lsn) = opts.lsn {
        return if opts.exact {
            Ok((lsn, format!("--lsn {lsn} --exact")))
        } else {
            let origin = lsn.checked_add(1).ok_or("LSN out of range")?;
            Ok((origin, format!("--lsn {lsn} + 1 byte")))
        };
    }
    let found = crate::aws::redo_source::locate(settings).await?;
    Ok((
        found.line.origin_lsn,
        format!(
            "{}: `{}` — {}",
            found.source,
            found.line.text,
            found.line.rule()
        ),
    ))
}

/// The roles pgcutover itself uses on either side: each side's login and the replication user.
fn tool_roles(settings: &Settings) -> Vec<String> {
    let mut v = Vec::new();
    for side in Side::BOTH {
        let s = settings.side(side);
        v.push(crate::collect::connect::login_credentials(s).0);
        if let Some(u) = s.replication_conninfo.as_ref().and_then(|c| c.get("user")) {
            v.push(u.to_string());
        }
    }
    v.extend(settings.replication_user.clone());
    v
}

/// Fresh state, guards and the steps the action would run, without changing anything.
pub async fn plan(action: Action, settings: &Settings, opts: &RunOptions) -> (Observed, Plan) {
    let (state, plan, _) = prepare(action, settings, opts).await;
    (state, plan)
}

/// For a switch, what the bouncers say now; before a full switch, whether they may be paused.
async fn traffic_views(
    action: Action,
    settings: &Settings,
    state: &Observed,
    guards: &mut Vec<Guard>,
) -> Vec<traffic::BouncerView> {
    if !matches!(action, Action::Cutover | Action::Rollback) {
        return Vec::new();
    }
    let bouncers = traffic::observe(settings).await;
    let (src, tgt) = switch::sides(action);
    if let (Some(s), Some(t)) = (state.live(src), state.live(tgt))
        && matches!(
            guards::switch_mode(&settings.names, s, t),
            guards::SwitchMode::Full | guards::SwitchMode::ResumeWindow
        )
    {
        guards.extend(traffic::guard(settings, &bouncers, src));
    }
    bouncers
}

/// What `plan` computes, plus the executable steps (which carry secrets the plan redacts).
async fn prepare(
    action: Action,
    settings: &Settings,
    opts: &RunOptions,
) -> (Observed, Plan, Prepared) {
    let mut p = Plan {
        action: action.name(),
        guards: Vec::new(),
        mode: None,
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let (main, scopes) = match scope::resolve(settings).await {
        Ok(x) => x,
        Err(e) => {
            p.guards.push(Guard {
                name: "databases",
                ok: false,
                detail: e,
            });
            let prepared = Prepared::empty(settings.clone(), Vec::new());
            return (observe(settings).await, p, prepared);
        }
    };
    let mut states =
        futures_util::future::join_all(scopes.iter().map(|sc| observe(&sc.settings))).await;
    let origin = if action == Action::Start {
        Some(origin_for_start(&main, opts).await)
    } else {
        None
    };
    let guards = scope_guards(action, &main, &scopes, &states, origin.as_ref()).await;
    p.guards.extend(guards);
    let mut prepared = Prepared::empty(main.clone(), scopes.clone());
    prepared.origin = origin.and_then(std::result::Result::ok).map(|(l, _)| l);
    // `resolve` gives at least one database: the first is the instance's view
    let bouncers = traffic_views(action, &main, &states[0], &mut p.guards).await;
    if matches!(action, Action::Cutover | Action::Rollback) {
        let (source, target) = switch::sides(action);
        let (guard, note) = verify::switch_check(&main, source);
        p.guards.extend(guard);
        p.notes.extend(note);
        p.guards
            .extend(subscribed::guards(&scopes, source, target).await);
    }
    if let Action::Rds(a) = action {
        let slots: Vec<String> = scopes
            .iter()
            .map(|sc| sc.settings.names.slot.clone())
            .collect();
        prepare_rds(
            a,
            &scopes[0].settings,
            &states[0],
            &slots,
            &mut p,
            &mut prepared,
        )
        .await;
    } else if matches!(action, Action::Verify | Action::Analyze) {
        if !p.refused() {
            prepare_reader(action, &main, &scopes, &states[0], &mut p, &mut prepared).await;
        }
    } else if !p.refused() {
        match planned_steps(action, &main, &scopes, &states, &bouncers, prepared.origin) {
            Ok((mode, steps, notes)) => {
                p.mode = mode;
                p.steps = steps.iter().map(step::Step::to_plan).collect();
                p.notes.extend(notes);
                prepared.steps = steps;
            }
            Err(g) => p.guards.push(g),
        }
    }
    (states.swap_remove(0), p, prepared)
}

/// The steps of the actions that only read the data (verify) or its statistics (analyze):
/// each plans from a listing of the tables it reads just now.
async fn prepare_reader(
    action: Action,
    main: &Settings,
    scopes: &[scope::Scope],
    state: &Observed,
    p: &mut Plan,
    prepared: &mut Prepared,
) {
    let planned = if action == Action::Verify {
        // the guards refused a pair without a direction before this
        let source = state
            .phase
            .direction
            .map_or(Side::Blue, crate::domain::phase::Direction::source);
        verify::plan(scopes, source).await.map(|(steps, notes)| {
            p.steps = steps.iter().map(step::Step::to_plan).collect();
            notes
        })
    } else {
        let version = state.live(Side::Green).map_or(0, |g| g.server.version_num);
        analyze::plan(main, scopes, version)
            .await
            .map(|(planned, notes)| {
                p.steps = planned.iter().map(|a| a.step.to_plan()).collect();
                prepared.analyze = planned;
                notes
            })
    };
    match planned {
        Ok(notes) => p.notes.extend(notes),
        Err(g) => p.guards.push(g),
    }
}

/// Every database's guards, each said of its database when there are several.
async fn scope_guards(
    action: Action,
    main: &Settings,
    scopes: &[scope::Scope],
    states: &[Observed],
    origin: Option<&Result<(Lsn, String), String>>,
) -> Vec<Guard> {
    let tools = tool_roles(main);
    let mut out = Vec::new();
    for (sc, state) in scopes.iter().zip(states) {
        let lag = match action {
            Action::Cutover => sample_lag(&sc.settings, Side::Blue).await,
            Action::Rollback => sample_lag(&sc.settings, Side::Green).await,
            _ => None,
        };
        let guards = guards::evaluate(
            action,
            &GuardInput {
                tool_roles: &tools,
                names: &sc.settings.names,
                app_roles: &main.app_roles,
                phase: &state.phase,
                blue: state.live(Side::Blue),
                green: state.live(Side::Green),
                errors: [state.error(Side::Blue), state.error(Side::Green)],
                checks: &state.checks,
                lag: lag.as_ref(),
                origin,
            },
        );
        let prefix = sc.prefix();
        out.extend(guards.into_iter().map(|mut g| {
            g.detail.insert_str(0, &prefix);
            g
        }));
    }
    out
}

type Planned = (Option<SwitchMode>, Vec<step::Step>, Vec<String>);

/// The steps of every database, from each one's observed state.
fn planned_steps(
    action: Action,
    main: &Settings,
    scopes: &[scope::Scope],
    states: &[Observed],
    bouncers: &[traffic::BouncerView],
    origin: Option<Lsn>,
) -> Result<Planned, Guard> {
    fn seen(st: &Observed) -> steps::Seen<'_> {
        steps::Seen {
            blue: st.live(Side::Blue),
            green: st.live(Side::Green),
            phase: st.phase.phase,
        }
    }
    if matches!(action, Action::Cutover | Action::Rollback) {
        let (src, tgt) = switch::sides(action);
        let mut pairs = Vec::new();
        for (sc, st) in scopes.iter().zip(states) {
            let v = seen(st);
            pairs.push(switch::Pair {
                scope: sc,
                s: v.need(src)?,
                t: v.need(tgt)?,
            });
        }
        let (mode, steps, notes) = switch::plan(action, main, &pairs, bouncers)?;
        return Ok((Some(mode), steps, notes));
    }
    // Fence and unfence act on roles, which belong to the instance: once.
    let scopes = if matches!(action, Action::Fence(_) | Action::Unfence(_)) {
        &scopes[..1]
    } else {
        scopes
    };
    let mut lists: Vec<Vec<step::Step>> = Vec::new();
    let mut notes = Vec::new();
    for (sc, st) in scopes.iter().zip(states) {
        let (steps, n) = steps::computed(action, &sc.settings, &seen(st), origin)?;
        let mut mine = Vec::new();
        for s in steps {
            if s.id.instance_wide() {
                if !lists.iter().flatten().chain(&mine).any(|o| o.id == s.id) {
                    mine.push(s);
                }
            } else {
                mine.push(s.in_db(sc.db.as_deref()));
            }
        }
        lists.push(mine);
        let prefix = sc.prefix();
        notes.extend(n.into_iter().map(|t| format!("{prefix}{t}")));
    }
    // each step in every database before the next: `start` enables every subscription before
    // it waits for any worker (the launcher starts them once per retry interval)
    Ok((None, step::by_step(lists), notes))
}

/// The guards and steps of an RDS action, from the AWS APIs' answers.
async fn prepare_rds(
    a: crate::domain::rds_plan::RdsAction,
    settings: &Settings,
    state: &Observed,
    slots: &[String],
    p: &mut Plan,
    prepared: &mut Prepared,
) {
    let Some(aws_settings) = &settings.aws else {
        p.guards.push(Guard {
            name: "aws_configured",
            ok: false,
            detail: "no AWS settings: set [blue]/[green] rds_instance and [aws] region".into(),
        });
        return;
    };
    let aws = crate::aws::Aws::shared(aws_settings).await;
    let facts = rds_actions::facts(aws, settings).await;
    let (guards, decision) =
        crate::domain::rds_plan::evaluate(a, &facts, state.live(Side::Blue), slots);
    p.guards = guards;
    if let Some(d) = decision
        && !p.refused()
    {
        let (steps, notes) = rds_actions::plan(a, settings, &facts, &d);
        p.steps = steps;
        p.notes = notes;
        prepared.rds = Some((facts, d));
    }
}

struct Prepared {
    steps: Vec<step::Step>,
    origin: Option<Lsn>,
    rds: Option<(
        crate::domain::rds_plan::RdsFacts,
        crate::domain::rds_plan::Decision,
    )>,
    /// The settings of the instance-wide steps, and of each replicated database.
    main: Settings,
    scopes: Vec<scope::Scope>,
    analyze: Vec<analyze::Planned>,
}

impl Prepared {
    fn empty(main: Settings, scopes: Vec<scope::Scope>) -> Prepared {
        Prepared {
            steps: Vec::new(),
            origin: None,
            rds: None,
            main,
            scopes,
            analyze: Vec::new(),
        }
    }
}

/// Run an action: plan on fresh state, refuse if a guard fails, else execute.
pub async fn run(
    action: Action,
    settings: &Settings,
    opts: &RunOptions,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<Outcome> {
    let path = match &opts.journal {
        Some(p) => p.clone(),
        None => match journal::default_path() {
            Some(p) => p,
            None => bail!(
                "no place for the journal: set $XDG_STATE_HOME or HOME, or pass --journal PATH"
            ),
        },
    };
    let mut journal = Journal::open(&path, &action.name())?;
    let (_, plan, prepared) = prepare(action, settings, opts).await;
    for g in &plan.guards {
        journal.write(Record {
            event: "guard",
            step: Some(g.name),
            ok: Some(g.ok),
            result: Some(&g.detail),
            ..Default::default()
        })?;
    }
    if plan.refused() {
        journal.write(Record {
            event: "refused",
            ok: Some(false),
            ..Default::default()
        })?;
        return Ok(Outcome::Refused {
            guards: plan.guards,
        });
    }
    let interrupt = Interrupt::default();
    let watcher = {
        let i = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                i.fire().await;
            }
        })
    };
    let mut ctx = Ctx::new(&mut journal, on_event);
    ctx.abort_after = std::env::var("PGCUTOVER_TEST_ABORT_AFTER").ok();
    ctx.panic_after = std::env::var("PGCUTOVER_TEST_PANIC_AFTER").ok();
    ctx.interrupt = interrupt.clone();
    let result = execute(action, settings, &plan, &prepared, &ctx).await;
    watcher.abort();
    // From here on the outcome is reported whatever the journal does.
    ctx.restoring_safety();
    if interrupt.is_set() {
        let _ = ctx.journal().write(Record {
            event: "interrupted",
            ok: Some(false),
            result: Some("SIGINT: the running statements were cancelled on their servers"),
            ..Default::default()
        });
    }
    let mut outcome = settle(action, settings, result).await;
    let summary_json = serde_json::to_string(&outcome).unwrap_or_default();
    let _ = ctx.journal().write(Record {
        event: "outcome",
        result: Some(&summary_json),
        ..Default::default()
    });
    if let Some(f) = ctx.journal().failed().map(str::to_string) {
        outcome.append(&format!(
            "; THE JOURNAL COULD NOT BE WRITTEN ({f}): it lacks the last statements, and this outcome is their only record"
        ));
    }
    Ok(outcome)
}

/// The planned steps, run by the executor of the action's kind.
async fn execute(
    action: Action,
    settings: &Settings,
    plan: &Plan,
    prepared: &Prepared,
    ctx: &Ctx<'_>,
) -> Result<Outcome> {
    match action {
        Action::Cutover | Action::Rollback => {
            let Some(mode) = plan.mode else {
                bail!("internal: {} planned without a mode", action.name());
            };
            switch::run(
                action,
                &prepared.main,
                &prepared.scopes,
                mode,
                &prepared.steps,
                &plan.notes,
                ctx,
            )
            .await
        }
        Action::Analyze => analyze::run(&prepared.main, &prepared.analyze, ctx).await,
        Action::Verify => {
            let t0 = ctx.begin(StepId::Compare, &plan.action, None)?;
            let mut tell = |said: verify::Said<'_>| {
                let _ = match said {
                    verify::Said::Line(line) => ctx.note(line),
                    verify::Said::Table(source, t) => {
                        verify::journal_table(&mut ctx.journal(), source, t)
                    }
                };
            };
            let report = verify::run(&prepared.main, &[], false, &mut tell).await?;
            let kept = verify::record(&report, Some(&mut ctx.journal()));
            if let Err(e) = kept {
                let _ = ctx.note(format!(
                    "the verify result was not kept: {}",
                    crate::format::report_chain(&e)
                ));
            }
            ctx.end(
                StepId::Compare,
                t0,
                &format!(
                    "{} verified, {} MISMATCHED",
                    report.verified, report.mismatched
                ),
            )?;
            Ok(verify::outcome(&report, ctx.steps()))
        }
        Action::Rds(a) => {
            let (Some(aws_settings), Some((facts, decision))) = (&settings.aws, &prepared.rds)
            else {
                bail!("internal: RDS action planned without RDS facts");
            };
            let aws = crate::aws::Aws::shared(aws_settings).await;
            match rds_actions::run(a, aws, settings, facts, decision, ctx).await {
                Ok(o) => Ok(o),
                Err(e) => Ok(Outcome::FailedSafe {
                    error: format!("{e:#}"),
                    state: "no database was changed; rerun the action to keep waiting".into(),
                }),
            }
        }
        _ => {
            steps::run(
                action,
                &prepared.main,
                &prepared.steps,
                prepared.origin,
                ctx,
            )
            .await
        }
    }
}

/// An error outside the window (whose undo reports for itself) becomes a safe failure: every
/// step before the window and every short action leaves a state a rerun continues from. Say
/// which, read fresh.
async fn settle(action: Action, settings: &Settings, result: Result<Outcome>) -> Outcome {
    match result {
        Ok(o) => o,
        Err(e) => Outcome::FailedSafe {
            error: crate::format::report_chain(&e),
            state: format!(
                "{}; rerun `pgcutover run {}` to continue from here, or see `pgcutover status`",
                summary_now(settings).await,
                action.name()
            ),
        },
    }
}

/// Each side's state in one line, read now, for an outcome after a failure: who serves, and
/// what of the replication exists, in each replicated database.
pub async fn summary_now(settings: &Settings) -> String {
    let scopes = match scope::resolve(settings).await {
        Ok((_, scopes)) => scopes,
        Err(_) => vec![scope::Scope {
            db: None,
            settings: settings.clone(),
        }],
    };
    let reads = futures_util::future::join_all(
        scopes
            .iter()
            .map(|sc| reading::read_both(&sc.settings, false)),
    )
    .await;
    let mut phases = Vec::new();
    let mut per_db = [Vec::new(), Vec::new()];
    for (sc, (b, g)) in scopes.iter().zip(&reads) {
        let names = &sc.settings.names;
        let (lb, lg) = (b.live.as_ref().ok(), g.live.as_ref().ok());
        phases.push((
            sc.db.clone().unwrap_or_default(),
            crate::domain::phase::derive(names, lb, lg),
        ));
        for (k, l) in [lb, lg].into_iter().enumerate() {
            if let Some(l) = l {
                per_db[k].push(format!("{}{}", sc.prefix(), objects(names, l)));
            }
        }
    }
    let phase = crate::domain::phase::combine(&phases).map_or(Phase::Unknown, |p| p.phase);
    let side = |k: usize, s: Side| -> String {
        let (b, g) = &reads[0];
        let r = if k == 0 { b } else { g };
        match &r.live {
            Err(e) => format!(
                "{} could not be read ({})",
                s.upper(),
                crate::text::clip(e, 200)
            ),
            Ok(l) => format!("{} {}, {}", s.upper(), login(l), per_db[k].join(", ")),
        }
    };
    format!(
        "now: phase {}; {}; {}",
        phase.label(),
        side(0, Side::Blue),
        side(1, Side::Green)
    )
}

/// Who may log in on a side, and how many app sessions it has.
fn login(l: &Live) -> String {
    let login = if l.partially_fenced() {
        "PARTLY fenced (some app roles can log in)"
    } else if l.writable() {
        "serving (app roles can log in)"
    } else {
        "FENCED (app roles cannot log in)"
    };
    let sessions: i64 = l.app_roles.iter().map(|r| r.sessions).sum();
    format!("{login}, {sessions} app session(s)")
}

/// What of one database's replication a side holds.
fn objects(n: &crate::domain::phase::MigrationNames, l: &Live) -> String {
    let sub = match l.subscription(&n.subscription) {
        Some(x) if x.enabled => "subscription enabled",
        Some(_) => "subscription disabled",
        None => "no subscription",
    };
    let slot = if l.slot(&n.slot).is_some() {
        "slot present"
    } else {
        "no slot"
    };
    format!("{sub}, {slot}")
}

/// The one way the engine waits for a server: try, then `again()` pauses before the next try
/// and says false once the deadline has passed (the caller then says what did not happen).
/// (A loop around this rather than a helper taking an async closure: the engine's future must
/// stay `Send` for the dashboard's task, which async closures borrowing the context break.)
pub struct Wait {
    deadline: Instant,
    every: Duration,
}

impl Wait {
    pub fn new(timeout: Duration, every: Duration) -> Wait {
        Wait {
            deadline: Instant::now() + timeout,
            every,
        }
    }

    pub async fn again(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.every).await;
        true
    }
}
