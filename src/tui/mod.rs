//! The terminal runtime: raw mode and the alternate screen (restored on exit, panic, Ctrl-Z,
//! SIGTERM and SIGHUP), one event loop over key presses, samples, engine events and a clock,
//! and a redraw only when something visible changed.

use std::io::Stdout;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use crossterm::{execute, terminal};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{self, Effect, Msg, State};
use crate::collect::{poller, reading};
use crate::config::{Router, Settings};
use crate::domain::observed::Side;
use crate::domain::verify::{Report, Underway};
use crate::ui::{self, Theme};

type Term = Terminal<CrosstermBackend<Stdout>>;

fn enter() -> Result<Term> {
    terminal::enable_raw_mode()
        .wrap_err("cannot put the terminal in raw mode: is this a terminal?")?;
    let mut out = std::io::stdout();
    // No mouse capture: tmux selection keeps working.
    execute!(out, terminal::EnterAlternateScreen, crossterm::cursor::Hide)?;
    let t = Terminal::new(CrosstermBackend::new(out))?;
    Ok(t)
}

/// Put the terminal back as we found it; safe to call more than once.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic on the dashboard's own thread ends it: restore the terminal, then report. A panic
/// in a task (the engine, a poller) is caught by the runtime and shown as that task's failure;
/// it must neither restore the terminal under a dashboard that keeps drawing nor print over the
/// screen, so it goes to the log file only.
fn install_panic_hook() {
    let ui_thread = std::thread::current().id();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            restore();
            prev(info);
        } else {
            tracing::error!("a task panicked: {info}");
        }
    }));
}

/// Run an action on its own task; a panic in it becomes a failed outcome that says what each
/// side looks like now, instead of a dashboard that shows "running" forever.
async fn run_guarded(
    action: crate::domain::guards::Action,
    settings: Arc<Settings>,
    eopts: crate::engine::RunOptions,
    etx: mpsc::UnboundedSender<Msg>,
) -> Result<crate::engine::Outcome, String> {
    let (s, ev_tx) = (settings.clone(), etx.clone());
    let task = tokio::spawn(async move {
        let mut on_event = move |ev: &crate::engine::Event| {
            let _ = ev_tx.send(Msg::Engine(ev.clone()));
        };
        crate::engine::run(action, &s, &eopts, &mut on_event)
            .await
            .map_err(|e| crate::format::report_chain(&e))
    });
    match task.await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_panic() {
                let p = e.into_panic();
                p.downcast_ref::<&str>()
                    .map(std::string::ToString::to_string)
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into())
            } else {
                "cancelled".into()
            };
            Err(format!(
                "stopped unexpectedly — {}; ({}); see the journal and `pgcutover status`",
                crate::engine::summary_now(&settings).await,
                crate::text::clip(&what, 300)
            ))
        }
    }
}

/// Pollers of both sides and of AWS; respawned when the refresh rate changes.
struct Pollers {
    handles: Vec<JoinHandle<()>>,
}

impl Pollers {
    fn start(w: &Watched, interval: Duration, tx: &mpsc::Sender<Msg>) -> Pollers {
        let settings = &w.settings;
        let mut handles = Vec::new();
        let mut poll = settings.poll.clone();
        poll.interval = interval;
        for side in Side::BOTH {
            let (stx, mut srx) = mpsc::channel(64);
            let main_db = crate::collect::connect::database(settings.side(side));
            handles.push(poller::spawn(
                reading::reader(settings, side).members_of(&settings.names.for_database(&main_db)),
                poll.clone(),
                stx.clone(),
            ));
            // one connection per other replicated database: its own objects only
            for db in w.databases.iter().filter(|d| **d != main_db) {
                let reader = crate::collect::postgres::PgReader::new(
                    settings.side(side).for_database(db),
                    settings.poll.timeout,
                    settings.app_roles.clone(),
                    settings.replication_user.clone(),
                )
                .objects_only()
                .members_of(&settings.names.for_database(db));
                handles.push(poller::spawn_database(
                    reader,
                    db.clone(),
                    poll.clone(),
                    stx.clone(),
                ));
            }
            drop(stx);
            let tx = tx.clone();
            handles.push(tokio::spawn(async move {
                while let Some(s) = srx.recv().await {
                    if tx.send(Msg::Sample(s)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        if settings.aws.is_some() {
            handles.push(tokio::spawn(aws_poller(settings.clone(), tx.clone())));
        }
        if !matches!(settings.traffic.router, Router::None) {
            handles.push(tokio::spawn(traffic_poller(
                settings.clone(),
                interval,
                tx.clone(),
            )));
        }
        handles.push(tokio::spawn(verify_poller(tx.clone())));
        if settings.redo_log_file.is_some()
            || (settings.aws.is_some() && settings.green.rds_instance.is_some())
        {
            handles.push(tokio::spawn(redo_poller(settings.clone(), tx.clone())));
        }
        Pollers { handles }
    }

    fn stop(&mut self) {
        for h in self.handles.drain(..) {
            h.abort();
        }
    }
}

/// A file's modification time, to read it again only when it changed.
/// A file read away from the event loop's thread (a panicked read counts as none).
async fn read_off_thread<T: Send + 'static>(read: fn() -> Option<T>) -> Option<Box<T>> {
    tokio::task::spawn_blocking(read)
        .await
        .ok()
        .flatten()
        .map(Box::new)
}

fn modified(path: Option<&std::path::Path>) -> Option<SystemTime> {
    std::fs::metadata(path?).and_then(|m| m.modified()).ok()
}

/// verify's files, every second: a run under way (whichever process runs it, a `pgcutover
/// verify` beside the dashboard included) and the last result. Each is parsed again only when
/// it changed; a run's process is looked for every time, so one that stopped shows as stopped.
async fn verify_poller(tx: mpsc::Sender<Msg>) {
    use crate::engine::verify;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (last_path, progress_path) = (verify::last_path(), verify::progress_path());
    let mut seen: Option<(Option<SystemTime>, Option<SystemTime>)> = None;
    let mut last: Option<Box<Report>> = None;
    let mut underway: Option<Box<Underway>> = None;
    loop {
        tick.tick().await;
        let now = (
            modified(last_path.as_deref()),
            modified(progress_path.as_deref()),
        );
        let changed = seen != Some(now);
        if seen.map(|s| s.0) != Some(now.0) {
            last = read_off_thread(verify::last).await;
        }
        let mut alive_changed = false;
        if seen.map(|s| s.1) != Some(now.1) {
            underway = read_off_thread(verify::underway).await;
        } else if let Some(u) = &mut underway {
            let alive = verify::still_running(&u.live);
            alive_changed = alive != u.alive;
            u.alive = alive;
        }
        seen = Some(now);
        if (changed || alive_changed)
            && tx
                .send(Msg::Verify {
                    last: last.clone(),
                    underway: underway.clone(),
                })
                .await
                .is_err()
        {
            return;
        }
    }
}

/// The routers at the refresh rate, over admin sessions kept between reads.
pub async fn traffic_poller(settings: Arc<Settings>, interval: Duration, tx: mpsc::Sender<Msg>) {
    let mut reader = crate::pgbouncer::Reader::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(r) = reader.read(&settings.traffic, settings.poll.timeout).await else {
            return;
        };
        let msg = Msg::Traffic {
            at: SystemTime::now(),
            data: Box::new(r),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// RDS facts every 15 s, CloudWatch metrics every `metrics_interval` (≥ 60 s: they are billed).
async fn aws_poller(settings: Arc<Settings>, tx: mpsc::Sender<Msg>) {
    let Some(a) = settings.aws.clone() else {
        return;
    };
    let aws = crate::aws::Aws::shared(&a).await;
    let mut last_metrics: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let with_metrics = last_metrics.is_none_or(|t| t.elapsed() >= a.metrics_interval);
        let read = tokio::time::timeout(
            a.timeout * 2,
            crate::collect::rds::read_with(aws, &settings, with_metrics),
        )
        .await;
        let at = SystemTime::now();
        if let Ok(mut r) = read {
            if with_metrics {
                last_metrics = Some(Instant::now());
            }
            for (side, sr) in [(Side::Blue, r.blue.take()), (Side::Green, r.green.take())] {
                if let Some(sr) = sr {
                    let _ = tx
                        .send(Msg::Rds {
                            side,
                            at,
                            data: Box::new(Ok(sr)),
                        })
                        .await;
                }
            }
            if let Some(s) = r.snapshot {
                let _ = tx.send(Msg::Snapshot { at, data: s }).await;
            }
        } else {
            let e = format!("AWS did not answer within {} s", (a.timeout * 2).as_secs());
            for (side, id) in [
                (Side::Blue, &settings.blue.rds_instance),
                (Side::Green, &settings.green.rds_instance),
            ] {
                if id.is_some() {
                    let _ = tx
                        .send(Msg::Rds {
                            side,
                            at,
                            data: Box::new(Err(e.clone())),
                        })
                        .await;
                }
            }
        }
    }
}

/// The redo line, every minute until found (then every 10 minutes: it does not change).
async fn redo_poller(settings: Arc<Settings>, tx: mpsc::Sender<Msg>) {
    loop {
        let data = crate::aws::redo_source::locate(&settings).await;
        let found = data.is_ok();
        if tx
            .send(Msg::Redo {
                at: SystemTime::now(),
                data: Box::new(data),
            })
            .await
            .is_err()
        {
            return;
        }
        let again = if found {
            crate::app::REDO_EVERY
        } else {
            Duration::from_mins(1)
        };
        tokio::time::sleep(again).await;
    }
}

pub struct DashboardOptions {
    pub write: bool,
    pub theme: Theme,
    /// Where actions journal (default: $XDG_STATE_HOME/pgcutover/journal.jsonl).
    pub journal: Option<std::path::PathBuf>,
    /// A workload run beside the dashboard (the demo's app), whose counts it shows.
    pub app_counts: Option<Arc<crate::app::AppCounts>>,
}

/// The keymap from `[keys]`; a bad entry names the file it came from.
fn keymap(settings: &Settings) -> Result<crate::app::keys::Keymap> {
    crate::app::keys::Keymap::with_overrides(&settings.keys).map_err(|e| {
        color_eyre::eyre::eyre!(
            "{}: {e}",
            settings
                .file
                .as_ref()
                .map_or("the configuration".to_string(), |p| p.display().to_string())
        )
    })
}

fn unix_second() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the loop owns besides the state: the pollers and the running action, and what it
/// needs to start them again.
/// What the pollers read: the settings of the main connections (with one database listed,
/// that database) and, when several are replicated, their names.
#[derive(Clone)]
struct Watched {
    settings: Arc<Settings>,
    databases: Vec<String>,
}

/// The databases to watch, from `[replication] databases` (`all` is read on the servers). When
/// they cannot be listed, the DSN's database is watched and the journal says why.
async fn watched(settings: &Arc<Settings>, st: &mut State) -> Watched {
    match crate::engine::scope::resolve(settings).await {
        Ok((main, scopes)) => {
            let databases: Vec<String> = scopes.iter().filter_map(|s| s.db.clone()).collect();
            if !databases.is_empty() {
                let main_db = Side::BOTH.map(|s| crate::collect::connect::database(main.side(s)));
                st.watch_databases(&databases, [&main_db[0], &main_db[1]]);
            }
            Watched {
                settings: Arc::new(main),
                databases,
            }
        }
        Err(e) => {
            st.note(format!("{e}; only the DSN's database is watched"));
            Watched {
                settings: settings.clone(),
                databases: Vec::new(),
            }
        }
    }
}

struct Runtime {
    settings: Arc<Settings>,
    watched: Watched,
    journal: Option<std::path::PathBuf>,
    tx: mpsc::Sender<Msg>,
    pollers: Pollers,
    /// The pollers' refresh interval now.
    interval: Duration,
    engine: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Start polling at `interval`.
    fn new(
        settings: Arc<Settings>,
        watched: Watched,
        interval: Duration,
        journal: Option<std::path::PathBuf>,
        tx: mpsc::Sender<Msg>,
    ) -> Runtime {
        Runtime {
            pollers: Pollers::start(&watched, interval, &tx),
            watched,
            interval,
            settings,
            journal,
            tx,
            engine: None,
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Quit => {}
            Effect::Watch(databases) => {
                self.watched.databases = databases;
                self.restart_pollers();
            }
            Effect::SetInterval(iv) => {
                self.interval = iv;
                self.restart_pollers();
            }
            // Fresh pollers read at once, the inventory and catalogue included (sequences
            // copied by a cutover show as copied, not behind).
            Effect::Refresh => self.restart_pollers(),
            Effect::Plan(action) => {
                let (s, tx) = (self.settings.clone(), self.tx.clone());
                tokio::spawn(async move {
                    let (_, plan) =
                        crate::engine::plan(action, &s, &crate::engine::RunOptions::default())
                            .await;
                    let _ = tx.send(Msg::Planned(action, Ok(plan))).await;
                });
            }
            Effect::Run(action) => self.run(action),
        }
    }

    fn run(&mut self, action: crate::domain::guards::Action) {
        let s = self.settings.clone();
        let eopts = crate::engine::RunOptions {
            journal: self.journal.clone(),
            ..Default::default()
        };
        // Steps and the outcome travel in order on their own unbounded channel: the engine's
        // callback is synchronous and must never block on the UI.
        let (etx, mut erx) = mpsc::unbounded_channel::<Msg>();
        let fwd = self.tx.clone();
        tokio::spawn(async move {
            while let Some(m) = erx.recv().await {
                if fwd.send(m).await.is_err() {
                    return;
                }
            }
        });
        self.engine = Some(tokio::spawn(async move {
            let out = run_guarded(action, s, eopts, etx.clone()).await;
            let _ = etx.send(Msg::Finished(action, out));
        }));
    }

    /// Pollers of what is watched now, at the interval now; they read at once.
    fn restart_pollers(&mut self) {
        self.pollers.stop();
        self.pollers = Pollers::start(&self.watched, self.interval, &self.tx);
    }

    fn stop(mut self) {
        self.pollers.stop();
        if let Some(e) = self.engine {
            e.abort();
        }
    }
}

/// The dashboard's state before any reading: what the configuration says to watch.
fn initial_state(settings: &Settings, opts: &DashboardOptions) -> Result<State> {
    Ok(State::new(
        settings.names.clone(),
        settings.app_roles.clone(),
        opts.write,
        settings.poll.interval,
        settings.blue.rds_instance.is_some() || settings.green.rds_instance.is_some(),
        keymap(settings)?,
    )
    .watching(settings))
}

/// Run the dashboard until the operator quits.
pub async fn run(settings: Settings, opts: DashboardOptions) -> Result<()> {
    let mut st = initial_state(&settings, &opts)?;
    let settings = Arc::new(settings);
    install_panic_hook();
    let mut term = enter()?;
    // The first frame before any I/O: AWS or a side being slow never delays it.
    term.draw(|f| ui::draw(&st, &opts.theme, f))?;
    tracing::info!("dashboard started (write = {})", opts.write);

    let watched = watched(&settings, &mut st).await;
    let (tx, mut rx) = mpsc::channel::<Msg>(256);
    let mut rt = Runtime::new(settings, watched, st.interval, opts.journal.clone(), tx);
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup_sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut last_second = unix_second();

    let result: Result<()> = loop {
        let mut dirty = false;
        let msg = tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => {
                    if crate::app::keys::is_ctrl(&k, 'z') {
                        suspend(&mut term)?;
                        term.clear()?;
                        term.draw(|f| ui::draw(&st, &opts.theme, f))?;
                        continue;
                    }
                    Some(Msg::Key(k))
                }
                Some(Ok(TermEvent::Resize(_, _))) => { dirty = true; None }
                Some(Ok(_)) => None,
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            m = rx.recv() => m,
            _ = tick.tick() => {
                // Ages tick once a second; the window timer and a running action every 100 ms.
                let s = unix_second();
                (s != last_second || st.running.is_some()).then(|| { last_second = s; Msg::Tick })
            },
            _ = term_sig.recv() => { tracing::info!("SIGTERM"); break Ok(()) },
            _ = hup_sig.recv() => { tracing::info!("SIGHUP"); break Ok(()) },
        };
        let mut effects = Vec::new();
        if let Some(m) = msg {
            let tick = matches!(m, Msg::Tick);
            effects = app::update(&mut st, m, SystemTime::now(), Instant::now());
            if let (true, Some(c)) = (tick, &opts.app_counts) {
                effects.extend(app::update(
                    &mut st,
                    c.read(),
                    SystemTime::now(),
                    Instant::now(),
                ));
            }
            dirty = true;
        }
        // Coalesce: apply whatever else is already waiting before drawing once.
        while let Ok(m) = rx.try_recv() {
            effects.extend(app::update(&mut st, m, SystemTime::now(), Instant::now()));
            dirty = true;
        }
        for e in effects {
            rt.apply(e);
        }
        if st.quit {
            break Ok(());
        }
        if dirty {
            term.draw(|f| ui::draw(&st, &opts.theme, f))?;
        }
    };
    rt.stop();
    restore();
    tracing::info!("dashboard stopped");
    result
}

/// Ctrl-Z: give the terminal back, stop like any job, take it again on `fg`.
fn suspend(term: &mut Term) -> Result<()> {
    restore();
    // SAFETY: raising a signal on our own process has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
    terminal::enable_raw_mode()?;
    execute!(
        term.backend_mut(),
        terminal::EnterAlternateScreen,
        crossterm::cursor::Hide
    )?;
    Ok(())
}
