//! The dashboard's state and its update function (Elm style): messages in (keys, samples, engine
//! events, ticks), effects out (plan an action, run it, quit). Pure: no terminal, no database, so
//! the keys → actions → effects logic is tested without either.

pub mod databases;
pub mod keys;
pub mod next_step;

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::KeyEvent;

use crate::aws::redo_source::Found;
use crate::collect::poller::{Sample, SampleData};
use crate::domain::checks::{self, Check, SideView};
use crate::domain::guards::Action;
use crate::domain::lag::{LagSample, LagSeries, LagTime};
use crate::domain::observed::{Inventory, Live, Side};
use crate::domain::phase::{self, Alarm, Direction, MigrationNames, PhaseReport};
use crate::domain::polled::Polled;
use crate::domain::rds::{InstanceFacts, Snapshot};
use crate::domain::schema::{self, Catalog, SchemaDiff};
use crate::domain::sequences::{self, SequenceRow};
use crate::domain::step::Edge;
use crate::domain::traffic::{self, TrafficAlarm, TrafficReading};
use crate::engine::{Event, Outcome, Plan};
use keys::{Command, Keymap};

/// The panels, in Tab order; 1–9 jump to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Replication,
    Instances,
    Redo,
    Checks,
    Schema,
    Sequences,
    Journal,
    Traffic,
    Verify,
}

impl Panel {
    pub const ALL: [Panel; 9] = [
        Panel::Replication,
        Panel::Instances,
        Panel::Redo,
        Panel::Checks,
        Panel::Schema,
        Panel::Sequences,
        Panel::Journal,
        Panel::Traffic,
        Panel::Verify,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Panel::Replication => "Replication",
            Panel::Instances => "Instances",
            Panel::Redo => "Redo LSN",
            Panel::Checks => "Checks",
            Panel::Schema => "Schema diff",
            Panel::Sequences => "Sequences",
            Panel::Journal => "Journal",
            Panel::Traffic => "Traffic",
            Panel::Verify => "Verify",
        }
    }
    /// The title where space is short (the 80-column tab bar).
    pub fn short(self) -> &'static str {
        match self {
            Panel::Replication => "Repl",
            Panel::Instances => "Inst",
            Panel::Redo => "Redo",
            Panel::Checks => "Checks",
            Panel::Schema => "Schema",
            Panel::Sequences => "Seq",
            Panel::Journal => "Journal",
            Panel::Traffic => "Traffic",
            Panel::Verify => "Verify",
        }
    }

    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// The routers as the dashboard knows them.
#[derive(Debug)]
pub struct TrafficView {
    /// `pgbouncer` or `command`, from the configuration (before any reading).
    pub router: &'static str,
    pub reading: Polled<TrafficReading>,
    pub alarms: Vec<TrafficAlarm>,
    /// A pause longer than this is an alarm: the cutover would have abandoned its own by then.
    pub pause_limit: Duration,
}

/// Counts kept by a workload that runs beside the dashboard (the demo's app): what the app
/// itself saw of the switches.
#[derive(Debug, Default)]
pub struct AppCounts {
    pub committed: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

impl AppCounts {
    pub fn read(&self) -> Msg {
        use std::sync::atomic::Ordering::Relaxed;
        Msg::App {
            committed: self.committed.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastSwitch {
    pub action: Action,
    pub to: Side,
    pub at: SystemTime,
    pub window_ms: Option<f64>,
    pub held_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct SidePolled {
    pub live: Polled<Live>,
    pub inventory: Polled<Inventory>,
    pub catalog: Polled<Catalog>,
    pub rds: Polled<InstanceFacts>,
}

impl SidePolled {
    fn view(&self) -> SideView<'_> {
        SideView {
            live: self.live.fresh(),
            inventory: self.inventory.value.as_ref(),
            error: self.live.last_error.as_ref().map(|e| e.message.as_str()),
            rds: self.rds.value.as_ref(),
            catalog: self.catalog.value.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum JournalKind {
    Started,
    Finished,
    Note,
    Outcome { ok: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct JournalLine {
    pub at: SystemTime,
    pub kind: JournalKind,
    pub text: String,
    pub ms: Option<f64>,
}

/// The confirm dialog of one action: guards and SQL once the plan is in.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub action: Action,
    pub plan: Option<Result<Plan, String>>,
    pub scroll: u16,
    /// What the operator has typed towards the action's name (see [`Dialog::typed_confirm`]).
    pub typed: String,
    /// This dialog runs only once the action's name is typed: cutover, rollback and finalize,
    /// unless `[ui] confirm = "enter"`.
    pub typed_confirm: bool,
}

impl Dialog {
    /// The plan may run: checked, not refused.
    pub fn runnable(&self) -> bool {
        matches!(&self.plan, Some(Ok(p)) if !p.refused())
    }

    /// The dialog wants the action's name typed now (a runnable plan of a deliberate action).
    pub fn wants_typing(&self) -> bool {
        self.typed_confirm && self.runnable()
    }

    /// The word to type: the action's name.
    pub fn word(&self) -> String {
        self.action.name()
    }
}

/// The actions a single key must not run: they move the application or drop the way back.
pub const DELIBERATE: [Action; 3] = [Action::Cutover, Action::Rollback, Action::Finalize];

#[derive(Debug, Clone)]
pub enum Overlay {
    Dialog(Dialog),
    Help,
    ConfirmQuit,
    /// A one-line message (e.g. why a key did nothing), closed by any key.
    Notice(String),
}

#[derive(Debug, Clone)]
pub struct Running {
    pub action: Action,
    pub started: Instant,
    /// While the source is fenced: since when (the window timer).
    pub fenced_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read fresh state and evaluate the guards (the dialog shows the result).
    Plan(Action),
    /// Run the confirmed action on the engine.
    Run(Action),
    SetInterval(Duration),
    /// Watch these databases from now on (`databases = "all"` lists another set).
    Watch(Vec<String>),
    /// Read everything again now (an action changed what the panels show).
    Refresh,
    Quit,
}

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Sample(Sample),
    Rds {
        side: Side,
        at: SystemTime,
        data: Box<Result<InstanceFacts, String>>,
    },
    Snapshot {
        at: SystemTime,
        data: Result<Option<Snapshot>, String>,
    },
    Redo {
        at: SystemTime,
        data: Box<Result<Found, String>>,
    },
    /// The counts of a workload run beside the dashboard.
    App {
        committed: u64,
        failed: u64,
    },
    /// What the application's routers say (only when `[traffic] router` is set).
    Traffic {
        at: SystemTime,
        data: Box<TrafficReading>,
    },
    Planned(Action, Result<Plan, String>),
    Engine(Event),
    Finished(Action, Result<Outcome, String>),
    /// verify's files read again: the last result kept, and a run under way.
    Verify {
        last: Option<Box<crate::domain::verify::Report>>,
        underway: Option<Box<crate::domain::verify::Underway>>,
    },
    /// The clock: ages, staleness and the window timer move.
    Tick,
}

pub struct State {
    pub names: MigrationNames,
    pub app_roles: Vec<String>,
    /// Started with `--write`: actions may run.
    pub write: bool,
    pub interval: Duration,
    /// The inventory and catalogue are read every this many polls: their panels go stale
    /// after three of their own intervals, not three live ones.
    pub inventory_every: u32,
    pub rds_configured: bool,
    pub blue: SidePolled,
    pub green: SidePolled,
    /// Each replicated database, when there are several (empty: the main connection's only).
    pub databases: Vec<databases::DbWatch>,
    /// The database each side's main reader is connected to, when several are watched.
    main_db: [String; 2],
    pub snapshot: Polled<Option<Snapshot>>,
    pub redo: Polled<Found>,
    pub phase: PhaseReport,
    pub checks: Vec<Check>,
    pub schema: Option<SchemaDiff>,
    pub sequences: Vec<SequenceRow>,
    pub lag: LagSeries,
    /// The cutover's lag gate (`[cutover] max_lag_bytes`), drawn on the lag chart.
    pub gate_bytes: Option<u64>,
    pub journal: Vec<JournalLine>,
    pub running: Option<Running>,
    /// The last switch's window (NOLOGIN → LOGIN), ms.
    pub last_window_ms: Option<f64>,
    /// The routers, when configured: their last reading and its alarms.
    pub traffic: Option<TrafficView>,
    /// The last switch made in this session, with how long the routers held the app.
    pub last_switch: Option<LastSwitch>,
    /// `[ui] confirm = "type"`: the deliberate actions are confirmed by typing their name.
    pub type_to_confirm: bool,
    /// (committed, failed) of a workload run beside the dashboard, e.g. the demo's app.
    pub app_counts: Option<(u64, u64)>,
    /// The last `verify` result, when one was kept.
    pub verify: Option<crate::domain::verify::Report>,
    /// A verify run under way, or stopped part-way (a rerun resumes it).
    pub verify_underway: Option<crate::domain::verify::Underway>,
    pub overlay: Option<Overlay>,
    pub focus: Panel,
    /// Rows scrolled in each panel; the Journal's counts up from its tail (0 follows it).
    pub scroll: [u16; 9],
    /// How far up the Journal can scroll, as of its last draw (it depends on the panel's size
    /// and wrapping, which only the drawing knows; as `ratatui`'s list state does).
    pub journal_max_scroll: std::cell::Cell<u16>,
    pub frozen: bool,
    pub keymap: Keymap,
    /// Wall clock and monotonic clock of the last message, for ages and timers.
    pub now: SystemTime,
    pub now_i: Instant,
    pub quit: bool,
}

const JOURNAL_KEEP: usize = 1000;

const RUNNING_NOTICE: &str = "wait for it to finish";

/// How often the redo line is read again once found (it does not change after a restore).
pub const REDO_EVERY: Duration = Duration::from_mins(10);

impl State {
    pub fn new(
        names: MigrationNames,
        app_roles: Vec<String>,
        write: bool,
        interval: Duration,
        rds_configured: bool,
        keymap: Keymap,
    ) -> State {
        let mut phase = phase::derive(&names, None, None);
        // Nothing was read yet: connecting, not unreachable.
        phase
            .alarms
            .retain(|a| !matches!(a, Alarm::Unreachable { .. }));
        State {
            names,
            app_roles,
            write,
            interval,
            inventory_every: 15,
            rds_configured,
            blue: SidePolled::default(),
            green: SidePolled::default(),
            databases: Vec::new(),
            main_db: Default::default(),
            snapshot: Polled::default(),
            redo: Polled::default(),
            phase,
            checks: Vec::new(),
            schema: None,
            sequences: Vec::new(),
            lag: LagSeries::new(Duration::from_mins(15)),
            gate_bytes: None,
            journal: Vec::new(),
            running: None,
            last_window_ms: None,
            traffic: None,
            last_switch: None,
            type_to_confirm: true,
            app_counts: None,
            verify: None,
            verify_underway: None,
            overlay: None,
            focus: Panel::Replication,
            scroll: [0; 9],
            journal_max_scroll: std::cell::Cell::new(0),
            frozen: false,
            keymap,
            now: SystemTime::now(),
            now_i: Instant::now(),
            quit: false,
        }
    }

    pub fn side(&self, s: Side) -> &SidePolled {
        match s {
            Side::Blue => &self.blue,
            Side::Green => &self.green,
        }
    }

    fn side_mut(&mut self, s: Side) -> &mut SidePolled {
        match s {
            Side::Blue => &mut self.blue,
            Side::Green => &mut self.green,
        }
    }

    /// The side whose slot feeds the other: BLUE unless the pair runs GREEN → BLUE.
    pub fn source(&self) -> Side {
        self.phase.direction.map_or(Side::Blue, Direction::source)
    }

    /// How long the source has been fenced in the running switch.
    pub fn window(&self) -> Option<Duration> {
        let r = self.running.as_ref()?;
        r.fenced_at.map(|t| self.now_i.saturating_duration_since(t))
    }

    /// The interval of the inventory and catalogue reads.
    pub fn inventory_interval(&self) -> Duration {
        self.interval * self.inventory_every.max(1)
    }

    /// A side that has neither answered nor failed yet: the dashboard is still connecting.
    pub fn connecting(&self, s: Side) -> bool {
        self.side(s).live.unanswered()
            || self.databases.iter().any(|d| {
                let d = d.side(s);
                !d.main && d.objects.unanswered()
            })
    }

    /// What the configuration adds to watch: the inventory's cadence and, with a router, the
    /// routers.
    pub fn watching(mut self, settings: &crate::config::Settings) -> State {
        self.inventory_every = settings.poll.inventory_every;
        self.gate_bytes = Some(settings.cutover.max_lag_bytes);
        self.type_to_confirm = settings.confirm_by_typing;
        match settings.traffic.router {
            crate::config::Router::None => self,
            _ => self.with_traffic(settings.traffic.router.name(), settings.longest_hold()),
        }
    }

    /// Watch the routers too: `router` is `pgbouncer` or `command`.
    pub fn with_traffic(mut self, router: &'static str, pause_limit: Duration) -> State {
        self.traffic = Some(TrafficView {
            router,
            reading: Polled::default(),
            alarms: Vec::new(),
            pause_limit,
        });
        self
    }

    /// The last verify's summary, its age as of the last message.
    pub fn verify_last(&self) -> Option<crate::domain::verify::Last> {
        let now = time::OffsetDateTime::from(self.now);
        self.verify
            .as_ref()
            .map(|r| crate::domain::verify::Last::of(r, now))
    }

    /// Watch several replicated databases; `main_db` is the database each side's main reader is
    /// connected to.
    pub fn watch_databases(&mut self, names: &[String], main_db: [&str; 2]) {
        self.main_db = main_db.map(str::to_string);
        let mut old = std::mem::take(&mut self.databases);
        // a database watched already keeps its readings
        self.databases = names
            .iter()
            .map(|n| match old.iter().position(|d| &d.name == n) {
                Some(i) => old.swap_remove(i),
                None => databases::DbWatch::new(n, &self.names, main_db),
            })
            .collect();
        self.recompute();
    }

    /// With `databases = "all"`: the databases the inventory lists now (BLUE's, GREEN's when
    /// BLUE cannot be read, as an action resolves them), when they are not the ones watched. A
    /// database created after the dashboard started is then watched like the others, so the
    /// phase (the least advanced database's) shows that it is not replicated.
    fn all_databases_now(&self) -> Option<Vec<String>> {
        if self.names.databases != crate::domain::names::DatabaseSet::All
            || self.databases.is_empty()
        {
            return None;
        }
        let inv = self
            .blue
            .inventory
            .fresh()
            .or_else(|| self.green.inventory.fresh())?;
        let now = crate::domain::names::select_all(&inv.databases).ok()?;
        let watched: Vec<&str> = self.databases.iter().map(|d| d.name.as_str()).collect();
        (now != watched).then_some(now)
    }

    /// Follow a change of `databases = "all"`'s list: watch the new list and say what changed.
    fn follow_all_databases(&mut self) -> Vec<Effect> {
        let Some(now) = self.all_databases_now() else {
            return Vec::new();
        };
        let watched: Vec<String> = self.databases.iter().map(|d| d.name.clone()).collect();
        let quoted = |v: Vec<&String>| {
            v.iter()
                .map(|n| crate::sql::ident(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let added = quoted(now.iter().filter(|n| !watched.contains(n)).collect());
        let gone = quoted(watched.iter().filter(|n| !now.contains(n)).collect());
        let mut said = Vec::new();
        if !added.is_empty() {
            said.push(format!(
                "new database(s) {added}: watched now; not replicated until prepared"
            ));
        }
        if !gone.is_empty() {
            said.push(format!("database(s) {gone} no longer listed: not watched"));
        }
        self.note(format!("databases = \"all\": {}", said.join("; ")));
        let main_db = self.main_db.clone();
        self.watch_databases(&now, [&main_db[0], &main_db[1]]);
        vec![Effect::Watch(now)]
    }

    /// A line in the dashboard's journal from the runtime.
    pub fn note(&mut self, text: String) {
        self.log(JournalKind::Note, text, None);
    }

    /// The migration's slot names, one per replicated database.
    fn slot_names(&self) -> Vec<&str> {
        if self.databases.is_empty() {
            vec![self.names.slot.as_str()]
        } else {
            self.databases
                .iter()
                .map(|d| d.names.slot.as_str())
                .collect()
        }
    }

    fn recompute(&mut self) {
        if self.databases.is_empty() {
            (self.phase, self.checks) = checks::assess(
                &self.names,
                &self.app_roles,
                self.blue.view(),
                self.green.view(),
            );
        } else {
            for d in &mut self.databases {
                d.assess(&self.app_roles, &self.blue, &self.green);
            }
            if let Some(p) = databases::phase(&self.databases) {
                self.phase = p;
            }
            self.checks = databases::checks(&self.databases);
        }
        // Before its first answer a side is connecting, not unreachable.
        let connecting: Vec<Side> = Side::BOTH
            .into_iter()
            .filter(|s| self.connecting(*s))
            .collect();
        self.phase
            .alarms
            .retain(|a| !matches!(a, Alarm::Unreachable { side } if connecting.contains(side)));
        if let Some(r) = self.traffic.as_ref().and_then(|t| t.reading.fresh()) {
            traffic::add_checks(&mut self.checks, r, &self.phase.writable);
        }
        self.traffic_alarms();
    }

    /// The routers' alarms at `now`: a pause grows longer with the clock alone.
    fn traffic_alarms(&mut self) {
        let switching = self.running.is_some();
        let (writable, now) = (&self.phase.writable, self.now);
        if let Some(t) = &mut self.traffic {
            t.alarms = t.reading.fresh().map_or_else(Vec::new, |r| {
                traffic::alarms(r, writable, switching, t.pause_limit, now)
            });
        }
    }

    fn log(&mut self, kind: JournalKind, text: String, ms: Option<f64>) {
        self.journal.push(JournalLine {
            at: self.now,
            kind,
            text,
            ms,
        });
        if self.journal.len() > JOURNAL_KEEP {
            let extra = self.journal.len() - JOURNAL_KEEP;
            self.journal.drain(..extra);
        }
    }
}

/// Apply one message; the returned effects are for the runtime to carry out.
pub fn update(st: &mut State, msg: Msg, now: SystemTime, now_i: Instant) -> Vec<Effect> {
    st.now = now;
    st.now_i = now_i;
    match msg {
        Msg::Key(k) => key(st, k),
        Msg::Tick => {
            st.traffic_alarms();
            Vec::new()
        }
        Msg::App { committed, failed } => {
            st.app_counts = Some((committed, failed));
            Vec::new()
        }
        Msg::Verify { last, underway } => {
            st.verify = last.map(|r| *r);
            st.verify_underway = underway.map(|u| *u);
            Vec::new()
        }
        Msg::Traffic { at, data } => {
            if !st.frozen {
                traffic_sample(st, at, *data);
            }
            Vec::new()
        }
        Msg::Sample(s) => {
            if st.frozen {
                return Vec::new();
            }
            let inventory = s.db.is_none() && matches!(s.data, SampleData::Inventory(_));
            sample(st, s, now_i);
            if inventory {
                st.follow_all_databases()
            } else {
                Vec::new()
            }
        }
        Msg::Rds { side, at, data } => {
            if !st.frozen {
                let rds = &mut st.side_mut(side).rds;
                // CloudWatch is read every minute, RDS every 15 s: a read without metrics
                // keeps the last ones instead of blanking them between reads.
                let data = (*data).map(|mut new| {
                    if new.metrics.is_none() {
                        new.metrics = rds.value.as_mut().and_then(|old| old.metrics.take());
                    }
                    new
                });
                rds.record(at, data);
                st.recompute();
            }
            Vec::new()
        }
        Msg::Snapshot { at, data } => {
            st.snapshot.record(at, data);
            Vec::new()
        }
        Msg::Redo { at, data } => {
            st.redo.record(at, *data);
            Vec::new()
        }
        Msg::Planned(action, plan) => {
            if let Some(Overlay::Dialog(d)) = &mut st.overlay
                && d.action == action
                && d.plan.is_none()
            {
                d.plan = Some(plan);
            }
            Vec::new()
        }
        Msg::Engine(ev) => {
            engine_event(st, ev);
            Vec::new()
        }
        Msg::Finished(action, result) => {
            finished(st, action, &result);
            vec![Effect::Refresh]
        }
    }
}

fn traffic_sample(st: &mut State, at: SystemTime, mut r: TrafficReading) {
    if let Some(t) = &mut st.traffic {
        r.stamp_pauses(t.reading.value.as_ref(), at);
        t.reading.record(at, Ok(r));
        st.recompute();
    }
}

/// An action ended: its outcome goes to the journal, a switch's times to the header and the
/// Traffic panel.
fn finished(st: &mut State, action: Action, result: &Result<Outcome, String>) {
    st.running = None;
    // "… is running: wait for it to finish" is answered now
    if matches!(&st.overlay, Some(Overlay::Notice(n)) if n.ends_with(RUNNING_NOTICE)) {
        st.overlay = None;
    }
    let (ok, text) = match result {
        Ok(o) => outcome_line(action, o),
        Err(e) => (false, format!("{}: error: {e}", action.name())),
    };
    if let Ok(Outcome::Done {
        window_ms, held_ms, ..
    }) = result
    {
        if let Some(w) = window_ms {
            st.last_window_ms = Some(*w);
        }
        if matches!(action, Action::Cutover | Action::Rollback) {
            st.last_switch = Some(LastSwitch {
                action,
                to: if action == Action::Cutover {
                    Side::Green
                } else {
                    Side::Blue
                },
                at: st.now,
                window_ms: *window_ms,
                held_ms: *held_ms,
            });
        }
    }
    st.log(JournalKind::Outcome { ok }, text, None);
}

fn outcome_line(action: Action, o: &Outcome) -> (bool, String) {
    let name = action.name();
    match o {
        Outcome::Done {
            summary, window_ms, ..
        } => (
            true,
            match window_ms {
                Some(w) => format!("{name} done: {summary} (window {w:.1} ms)"),
                None => format!("{name} done: {summary}"),
            },
        ),
        Outcome::NothingToDo { summary } => (true, format!("{name}: nothing to do: {summary}")),
        Outcome::Refused { guards } => {
            let why: Vec<String> = guards
                .iter()
                .filter(|g| !g.ok)
                .map(|g| format!("{}: {}", g.name, g.detail))
                .collect();
            (false, format!("{name} refused: {}", why.join("; ")))
        }
        Outcome::FailedSafe { error, state } => {
            (false, format!("{name} failed, put back: {error} — {state}"))
        }
        Outcome::FailedAfterSwitch { error, state } => (
            false,
            format!("{name} failed after the switch: {error} — {state}; run it again to finish"),
        ),
    }
}

fn engine_event(st: &mut State, ev: Event) {
    match ev {
        Event::StepStarted {
            step,
            title,
            side,
            window,
        } => {
            if window == Some(Edge::Opens)
                && let Some(r) = &mut st.running
            {
                r.fenced_at.get_or_insert(st.now_i);
            }
            let where_ = side
                .map(|s| format!(" [{}]", s.upper()))
                .unwrap_or_default();
            st.log(
                JournalKind::Started,
                format!("{step}{where_}: {title}"),
                None,
            );
        }
        Event::StepFinished {
            step,
            ms,
            detail,
            window,
        } => {
            if window == Some(Edge::Closes)
                && let Some(r) = &mut st.running
            {
                r.fenced_at = None;
            }
            st.log(JournalKind::Finished, format!("{step}: {detail}"), Some(ms));
        }
        Event::Note { text } => st.log(JournalKind::Note, text, None),
    }
}

fn sample(st: &mut State, s: Sample, now_i: Instant) {
    let side = s.side;
    if let Some(db) = &s.db {
        return database_sample(st, db, s.side, s.at, s.data);
    }
    match s.data {
        SampleData::Live(r) => {
            let r = r.map(|b| *b);
            st.side_mut(side).live.record(s.at, r);
            st.recompute();
            let src = st.source();
            if side == src
                && let Some(live) = st.side(src).live.fresh()
                && let Some(cur) = live.server.current_lsn
            {
                // several databases: the one furthest behind is the pair's lag
                let behind = st
                    .slot_names()
                    .into_iter()
                    .filter_map(|n| live.slot(n))
                    .filter_map(|sl| Some((sl, sl.confirmed_flush_lsn?)))
                    .min_by_key(|(_, conf)| *conf);
                if let Some((slot, conf)) = behind {
                    st.lag.push(LagSample {
                        at: now_i,
                        source: src,
                        current: cur,
                        confirmed: conf,
                        time: LagTime::of(cur.bytes_since(conf), slot.sender.as_ref()),
                    });
                }
            }
        }
        SampleData::Inventory(r) => {
            st.side_mut(side).inventory.record(s.at, r.map(|b| *b));
            st.sequences = sequence_rows(st);
            st.recompute();
        }
        SampleData::Catalog(r) => {
            st.side_mut(side).catalog.record(s.at, r.map(|b| *b));
            st.schema = schema_diff(st);
            // the tables its publication and subscription hold are checked
            st.recompute();
        }
        // a main reader sends neither
        SampleData::DbLive(_) | SampleData::Sequences(_) => {}
    }
}

fn sequence_rows(st: &State) -> Vec<SequenceRow> {
    if !st.databases.is_empty() {
        return databases::sequences(&st.databases, &st.blue, &st.green);
    }
    let seq = |x: &SidePolled| {
        x.inventory
            .value
            .as_ref()
            .map(|i| i.sequences.clone())
            .unwrap_or_default()
    };
    sequences::diff(&seq(&st.blue), &seq(&st.green))
}

fn schema_diff(st: &State) -> Option<SchemaDiff> {
    if !st.databases.is_empty() {
        return databases::schema(&st.databases, &st.blue, &st.green);
    }
    match (&st.blue.catalog.value, &st.green.catalog.value) {
        (Some(b), Some(g)) => Some(schema::diff(b, g)),
        _ => None,
    }
}

/// A reading of one more replicated database.
fn database_sample(st: &mut State, db: &str, side: Side, at: SystemTime, data: SampleData) {
    let Some(d) = st.databases.iter_mut().find(|d| d.name == db) else {
        return;
    };
    let d = d.side_mut(side);
    match data {
        SampleData::DbLive(r) => {
            d.objects.record(at, r.map(|b| *b));
            st.recompute();
        }
        SampleData::Sequences(r) => {
            d.sequences.record(at, r);
            st.sequences = sequence_rows(st);
        }
        SampleData::Catalog(r) => {
            d.catalog.record(at, r.map(|b| *b));
            st.schema = schema_diff(st);
            st.recompute();
        }
        SampleData::Live(_) | SampleData::Inventory(_) => {}
    }
}

/// Confirm the dialog's plan: it runs (once: `running` is set before the effect).
fn confirm(st: &mut State, d: Dialog) -> Vec<Effect> {
    if !d.runnable() || st.running.is_some() || !st.write {
        // Refused or still checking: nothing runs, the dialog stays.
        st.overlay = Some(Overlay::Dialog(d));
        return Vec::new();
    }
    st.running = Some(Running {
        action: d.action,
        started: st.now_i,
        fenced_at: None,
    });
    st.log(
        JournalKind::Note,
        format!("{} confirmed", d.action.name()),
        None,
    );
    st.focus = Panel::Journal;
    vec![Effect::Run(d.action)]
}

/// Keys in the dialog. While it wants the action's name typed, letters are typing (so `n` or
/// `y` cannot cancel or confirm by accident): Esc cancels, Backspace erases, the arrows scroll,
/// and Enter runs only when the name is complete.
fn dialog_key(st: &mut State, mut d: Dialog, k: KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    if d.wants_typing() {
        match k.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Enter if d.typed == d.word() => return confirm(st, d),
            KeyCode::Backspace => {
                d.typed.pop();
            }
            KeyCode::Char(c) if !c.is_control() && d.typed.chars().count() < 40 => {
                d.typed.push(c);
            }
            KeyCode::Down | KeyCode::PageDown => d.scroll = d.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::PageUp => d.scroll = d.scroll.saturating_sub(1),
            _ => {}
        }
        st.overlay = Some(Overlay::Dialog(d));
        return Vec::new();
    }
    match st.keymap.command(&k, true) {
        Some(Command::Cancel) => return Vec::new(),
        Some(Command::Confirm) => return confirm(st, d),
        _ => {}
    }
    match st.keymap.command(&k, false) {
        Some(Command::Down) => d.scroll = d.scroll.saturating_add(1),
        Some(Command::Up) => d.scroll = d.scroll.saturating_sub(1),
        _ => {}
    }
    st.overlay = Some(Overlay::Dialog(d));
    Vec::new()
}

#[allow(clippy::too_many_lines)] // the overlays' keys, then one arm per command of the keymap
fn key(st: &mut State, k: KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    if keys::is_ctrl(&k, 'c') {
        return quit(st);
    }
    // Overlays take the keys first.
    match st.overlay.take() {
        Some(Overlay::Help | Overlay::Notice(_)) => return Vec::new(),
        Some(Overlay::ConfirmQuit) => {
            return match st.keymap.command(&k, true) {
                Some(Command::Confirm) => {
                    st.quit = true;
                    vec![Effect::Quit]
                }
                _ => Vec::new(),
            };
        }
        Some(Overlay::Dialog(d)) => return dialog_key(st, d, k),
        None => {}
    }
    if let KeyCode::Char(c @ '1'..='9') = k.code {
        st.focus = Panel::ALL[(c as usize) - ('1' as usize)];
        return Vec::new();
    }
    let Some(cmd) = st.keymap.command(&k, false) else {
        return Vec::new();
    };
    if let Some(action) = cmd.action() {
        if st.running.is_some() {
            // A repeated key while an action runs does nothing, visibly.
            st.overlay = Some(Overlay::Notice(format!(
                "{} is running: {RUNNING_NOTICE}",
                st.running
                    .as_ref()
                    .map(|r| r.action.name())
                    .unwrap_or_default()
            )));
            return Vec::new();
        }
        if !st.write {
            st.overlay = Some(Overlay::Notice(format!(
                "read-only: {} needs the dashboard started with --write",
                action.name()
            )));
            return Vec::new();
        }
        st.overlay = Some(Overlay::Dialog(Dialog {
            action,
            plan: None,
            scroll: 0,
            typed: String::new(),
            typed_confirm: st.type_to_confirm && DELIBERATE.contains(&action),
        }));
        return vec![Effect::Plan(action)];
    }
    let i = st.focus.index();
    match cmd {
        Command::Help => st.overlay = Some(Overlay::Help),
        Command::Quit => return quit(st),
        Command::NextPanel => st.focus = Panel::ALL[(i + 1) % Panel::ALL.len()],
        Command::PrevPanel => st.focus = Panel::ALL[(i + Panel::ALL.len() - 1) % Panel::ALL.len()],
        Command::Freeze => st.frozen = !st.frozen,
        // The Journal scrolls from its tail: up goes back in time, down returns to the tail.
        Command::Up if st.focus == Panel::Journal => {
            st.scroll[i] = st.scroll[i]
                .saturating_add(1)
                .min(st.journal_max_scroll.get());
        }
        Command::Down if st.focus == Panel::Journal => {
            st.scroll[i] = st.scroll[i].saturating_sub(1);
        }
        Command::Down => st.scroll[i] = st.scroll[i].saturating_add(1),
        Command::Up => st.scroll[i] = st.scroll[i].saturating_sub(1),
        Command::Faster | Command::Slower => {
            let ms = u64::try_from(st.interval.as_millis()).unwrap_or(u64::MAX);
            let next = if cmd == Command::Faster {
                (ms / 2).max(250)
            } else {
                (ms * 2).min(60_000)
            };
            st.interval = Duration::from_millis(next);
            return vec![Effect::SetInterval(st.interval)];
        }
        _ => {}
    }
    Vec::new()
}

fn quit(st: &mut State) -> Vec<Effect> {
    if st.running.is_some() {
        st.overlay = Some(Overlay::ConfirmQuit);
        return Vec::new();
    }
    st.quit = true;
    vec![Effect::Quit]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::guards::Guard;
    use crate::domain::testdata;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn press(st: &mut State, c: KeyCode) -> Vec<Effect> {
        update(
            st,
            Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)),
            SystemTime::now(),
            Instant::now(),
        )
    }

    fn state(write: bool) -> State {
        State::new(
            testdata::names(),
            vec!["app".into()],
            write,
            Duration::from_secs(1),
            false,
            Keymap::default(),
        )
    }

    /// C, its plan (passing) arrives, Enter: the cutover runs.
    fn confirm_cutover(st: &mut State) {
        confirm_cutover_with(st, "cutover");
    }

    fn confirm_cutover_with(st: &mut State, typed: &str) {
        press(st, KeyCode::Char('C'));
        update(
            st,
            Msg::Planned(Action::Cutover, Ok(plan(true))),
            SystemTime::now(),
            Instant::now(),
        );
        for c in typed.chars() {
            press(st, KeyCode::Char(c));
        }
        press(st, KeyCode::Enter);
    }

    fn plan(ok: bool) -> Plan {
        Plan {
            action: "cutover".into(),
            guards: vec![Guard {
                name: "lag",
                ok,
                detail: if ok {
                    "low".into()
                } else {
                    "lag 5 MB, needs < 100 kB".into()
                },
            }],
            mode: None,
            steps: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn enter_alone_confirms_when_configured_and_for_other_actions() {
        let mut st = state(true);
        st.type_to_confirm = false;
        confirm_cutover_with(&mut st, "");
        assert_eq!(st.running.as_ref().map(|r| r.action), Some(Action::Cutover));
        let mut st = state(true);
        press(&mut st, KeyCode::Char('P'));
        update(
            &mut st,
            Msg::Planned(Action::Prepare, Ok(plan(true))),
            SystemTime::now(),
            Instant::now(),
        );
        assert_eq!(
            press(&mut st, KeyCode::Enter),
            vec![Effect::Run(Action::Prepare)]
        );
        // Esc cancels a typed confirmation, whatever was typed.
        let mut st = state(true);
        press(&mut st, KeyCode::Char('C'));
        update(
            &mut st,
            Msg::Planned(Action::Cutover, Ok(plan(true))),
            SystemTime::now(),
            Instant::now(),
        );
        press(&mut st, KeyCode::Char('c'));
        press(&mut st, KeyCode::Esc);
        assert!(st.overlay.is_none() && st.running.is_none());
    }

    #[test]
    fn cutover_key_plans_then_enter_runs_once() {
        let mut st = state(true);
        assert_eq!(
            press(&mut st, KeyCode::Char('C')),
            vec![Effect::Plan(Action::Cutover)]
        );
        // Enter before the plan is in does nothing.
        assert!(press(&mut st, KeyCode::Enter).is_empty());
        update(
            &mut st,
            Msg::Planned(Action::Cutover, Ok(plan(true))),
            SystemTime::now(),
            Instant::now(),
        );
        // A single Enter does not run a cutover: its name must be typed. `y` and `n` are
        // letters of the name being typed, not confirm and cancel.
        assert!(press(&mut st, KeyCode::Enter).is_empty());
        for c in "cutovet".chars() {
            assert!(press(&mut st, KeyCode::Char(c)).is_empty());
        }
        assert!(
            press(&mut st, KeyCode::Enter).is_empty(),
            "a typo does not run it"
        );
        press(&mut st, KeyCode::Backspace);
        press(&mut st, KeyCode::Char('r'));
        assert!(matches!(&st.overlay, Some(Overlay::Dialog(d)) if d.typed == "cutover"));
        assert_eq!(
            press(&mut st, KeyCode::Enter),
            vec![Effect::Run(Action::Cutover)]
        );
        assert!(st.running.is_some());
        // Pressing C or R again while it runs does nothing but say so.
        assert!(press(&mut st, KeyCode::Char('C')).is_empty());
        assert!(matches!(st.overlay, Some(Overlay::Notice(_))));
        press(&mut st, KeyCode::Esc);
        assert!(press(&mut st, KeyCode::Char('R')).is_empty());
        press(&mut st, KeyCode::Esc);
        // q asks first while running.
        assert!(press(&mut st, KeyCode::Char('q')).is_empty());
        assert!(matches!(st.overlay, Some(Overlay::ConfirmQuit)));
        assert!(press(&mut st, KeyCode::Char('n')).is_empty());
        assert!(!st.quit);
        update(
            &mut st,
            Msg::Finished(
                Action::Cutover,
                Ok(Outcome::Done {
                    summary: "GREEN serves".into(),
                    window_ms: Some(17.5),
                    held_ms: Some(48.0),
                    steps: vec![],
                }),
            ),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(st.running.is_none());
        assert_eq!(st.last_window_ms, Some(17.5));
        assert_eq!(press(&mut st, KeyCode::Char('q')), vec![Effect::Quit]);
    }

    #[test]
    fn a_refused_plan_cannot_be_confirmed() {
        let mut st = state(true);
        press(&mut st, KeyCode::Char('R'));
        update(
            &mut st,
            Msg::Planned(Action::Rollback, Ok(plan(false))),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(press(&mut st, KeyCode::Enter).is_empty());
        assert!(press(&mut st, KeyCode::Char('y')).is_empty());
        assert!(st.running.is_none());
        assert!(
            matches!(st.overlay, Some(Overlay::Dialog(_))),
            "the dialog stays, saying why"
        );
        press(&mut st, KeyCode::Esc);
        assert!(st.overlay.is_none());
    }

    #[test]
    fn read_only_refuses_actions_and_a_stale_plan_is_ignored() {
        let mut st = state(false);
        assert!(press(&mut st, KeyCode::Char('C')).is_empty());
        assert!(matches!(&st.overlay, Some(Overlay::Notice(n)) if n.contains("--write")));
        let mut st = state(true);
        press(&mut st, KeyCode::Char('C'));
        press(&mut st, KeyCode::Esc);
        press(&mut st, KeyCode::Char('F'));
        // The cutover's plan arrives after its dialog was closed: it must not fill finalize's.
        update(
            &mut st,
            Msg::Planned(Action::Cutover, Ok(plan(true))),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(press(&mut st, KeyCode::Enter).is_empty());
    }

    #[test]
    fn window_timer_runs_from_fence_to_unfence() {
        use crate::domain::step::StepId;
        let mut st = state(true);
        confirm_cutover(&mut st);
        let t0 = Instant::now();
        let ev = |step: StepId, started: bool| {
            Msg::Engine(if started {
                Event::StepStarted {
                    step,
                    title: "t".into(),
                    side: Some(Side::Blue),
                    window: Some(Edge::Opens),
                }
            } else {
                Event::StepFinished {
                    step,
                    ms: 1.0,
                    detail: "d".into(),
                    window: Some(Edge::Closes),
                }
            })
        };
        update(&mut st, ev(StepId::Fence, true), SystemTime::now(), t0);
        update(
            &mut st,
            Msg::Tick,
            SystemTime::now(),
            t0 + Duration::from_millis(12),
        );
        assert_eq!(st.window(), Some(Duration::from_millis(12)));
        update(
            &mut st,
            ev(StepId::Unfence, false),
            SystemTime::now(),
            t0 + Duration::from_millis(20),
        );
        assert_eq!(st.window(), None);
        assert_eq!(st.journal.len(), 3);
    }

    #[test]
    fn metrics_survive_the_reads_between_cloudwatch_polls() {
        use crate::domain::rds::{InstanceFacts, Metrics, Point};
        let mut st = state(false);
        let mut m = Metrics::default();
        m.series
            .insert("FreeStorageSpace".into(), vec![Point { t: 60, v: 5e9 }]);
        let rds = |metrics: Option<Metrics>| Msg::Rds {
            side: Side::Blue,
            at: SystemTime::now(),
            data: Box::new(Ok(InstanceFacts {
                metrics: metrics.map(Ok),
                ..Default::default()
            })),
        };
        update(&mut st, rds(Some(m)), SystemTime::now(), Instant::now());
        update(&mut st, rds(None), SystemTime::now(), Instant::now());
        let kept = st.blue.rds.value.as_ref().and_then(|r| r.metrics());
        assert_eq!(kept.and_then(|m| m.latest("FreeStorageSpace")), Some(5e9));
    }

    #[test]
    fn panels_keys_freeze_and_refresh_rate() {
        let mut st = state(false);
        press(&mut st, KeyCode::Tab);
        assert_eq!(st.focus, Panel::Instances);
        press(&mut st, KeyCode::Char('7'));
        assert_eq!(st.focus, Panel::Journal);
        // The Journal scrolls up from its tail, and no further than its first entry (as drawn).
        press(&mut st, KeyCode::Char('j'));
        assert_eq!(st.scroll[6], 0, "at the tail, down stays there");
        st.journal_max_scroll.set(2);
        for _ in 0..5 {
            press(&mut st, KeyCode::Char('k'));
        }
        assert_eq!(st.scroll[6], 2);
        press(&mut st, KeyCode::Char('j'));
        assert_eq!(st.scroll[6], 1);
        press(&mut st, KeyCode::Char(' '));
        assert!(st.frozen);
        let live = testdata::live(true);
        update(
            &mut st,
            Msg::Sample(Sample {
                side: Side::Blue,
                db: None,
                at: SystemTime::now(),
                data: SampleData::Live(Ok(Box::new(live))),
            }),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(
            st.blue.live.value.is_none(),
            "frozen: the view does not move"
        );
        assert_eq!(
            press(&mut st, KeyCode::Char('+')),
            vec![Effect::SetInterval(Duration::from_millis(500))]
        );
        assert_eq!(press(&mut st, KeyCode::Char('?')), vec![]);
        assert!(matches!(st.overlay, Some(Overlay::Help)));
    }

    #[test]
    fn a_side_is_connecting_until_its_first_answer_or_error() {
        let mut st = state(false);
        assert!(st.connecting(Side::Blue) && st.connecting(Side::Green));
        assert!(
            !st.phase
                .alarms
                .iter()
                .any(|a| matches!(a, Alarm::Unreachable { .. })),
            "{:?}",
            st.phase.alarms
        );
        let t = SystemTime::now();
        let sample = |side, data| {
            Msg::Sample(crate::collect::poller::Sample {
                side,
                db: None,
                at: t,
                data,
            })
        };
        let live = testdata::with_pub_slot(testdata::live(true));
        update(
            &mut st,
            sample(Side::Blue, SampleData::Live(Ok(Box::new(live)))),
            t,
            Instant::now(),
        );
        // BLUE answered; GREEN is still connecting, not "unreachable"
        assert!(!st.connecting(Side::Blue) && st.connecting(Side::Green));
        assert!(
            !st.phase
                .alarms
                .contains(&Alarm::Unreachable { side: Side::Green })
        );
        update(
            &mut st,
            sample(
                Side::Green,
                SampleData::Live(Err("connection refused".into())),
            ),
            t,
            Instant::now(),
        );
        assert!(
            st.phase
                .alarms
                .contains(&Alarm::Unreachable { side: Side::Green })
        );
    }

    #[test]
    fn no_panel_is_stale_at_its_own_cadence() {
        let mut st = state(false);
        st.inventory_every = 15;
        let t = SystemTime::now();
        let mut inv: Polled<u8> = Polled::default();
        inv.record(t, Ok(1));
        // the redo line is read every 10 min, the inventory every 15 polls of 1 s
        let mut redo: Polled<u8> = Polled::default();
        redo.record(t, Ok(1));
        assert!(!redo.is_stale(t + Duration::from_mins(9), REDO_EVERY));
        assert!(redo.is_stale(t + Duration::from_mins(31), REDO_EVERY));
        assert!(!inv.is_stale(t + Duration::from_secs(40), st.inventory_interval()));
        assert!(inv.is_stale(t + Duration::from_secs(46), st.inventory_interval()));
    }

    #[test]
    fn the_running_notice_closes_when_the_action_ends_and_panels_refresh() {
        let mut st = state(true);
        confirm_cutover(&mut st);
        press(&mut st, KeyCode::Char('C'));
        assert!(matches!(&st.overlay, Some(Overlay::Notice(n)) if n.contains("is running")));
        let fx = update(
            &mut st,
            Msg::Finished(
                Action::Cutover,
                Ok(Outcome::NothingToDo {
                    summary: "x".into(),
                }),
            ),
            SystemTime::now(),
            Instant::now(),
        );
        assert!(st.overlay.is_none(), "{:?}", st.overlay);
        assert_eq!(fx, vec![Effect::Refresh]);
    }
}
