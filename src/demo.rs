//! `pgcutover demo`: BLUE and GREEN PostgreSQL clusters on loopback in a temp dir, a write
//! workload as the app role, prepare → GREEN from a crash-consistent copy → subscribe → start
//! through the real engine, then the dashboard in write mode. Everything it started is stopped
//! and removed when it exits (also on error or Ctrl-C during set-up).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, bail};

use crate::app::{self, AppCounts, Msg, State};
use crate::config::Settings;
use crate::domain::guards::Action;
use crate::domain::observed::Side;
use crate::domain::step::StepId;
use crate::engine::{self, Outcome};
use crate::harness::pgbouncer::PgBouncer;
use crate::harness::{Bin, Cluster, free_port};
use crate::ui::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the demo's clusters add to the harness's settings.
const CONF: &str = "
max_connections = 40
";

/// Everything the demo started; stopped and removed on drop, whatever happened.
struct Demo {
    dir: tempfile::TempDir,
    blue: Cluster,
    green: Option<Cluster>,
    /// The app's PgBouncer, when the package is installed.
    bouncer: Option<PgBouncer>,
    stop_writer: Arc<AtomicBool>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_writer.store(true, Ordering::Relaxed);
        if let Some(b) = &mut self.bouncer {
            b.stop();
        }
        // A fast stop, not the harness's immediate one: the demo's clusters end cleanly.
        if let Some(g) = &mut self.green {
            let _ = g.try_stop();
        }
        let _ = self.blue.try_stop();
        let dirs: Vec<String> = [Some(self.dir.path()), Some(self.blue.base())]
            .into_iter()
            .chain([self.green.as_ref().map(Cluster::base)])
            .flatten()
            .map(|d| d.display().to_string())
            .collect();
        eprintln!("demo: stopped the clusters, removing {}", dirs.join(", "));
    }
}

fn say(msg: &str) {
    eprintln!("demo: {msg}");
}

async fn sql(dsn: &str, text: &str) -> Result<()> {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    c.batch_execute(text).await?;
    Ok(())
}

/// The app: inserts as role `app` at `tps`. Through PgBouncer when there is one (`ports` is
/// its one port), else on whichever side lets it log in. Every failed insert is counted: with
/// PgBouncer a switch is a pause of some milliseconds and the count stays 0.
fn spawn_writer(ports: Vec<u16>, tps: u32, stop: Arc<AtomicBool>, counts: Arc<AppCounts>) {
    tokio::spawn(async move {
        let every = Duration::from_secs_f64(1.0 / f64::from(tps.max(1)));
        let mut client: Option<tokio_postgres::Client> = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            if client
                .as_ref()
                .is_none_or(tokio_postgres::Client::is_closed)
            {
                client = None;
                for p in &ports {
                    let dsn = format!(
                        "host=127.0.0.1 port={p} dbname=demo user=app application_name=demo-app connect_timeout=2"
                    );
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        client = Some(c);
                        break;
                    }
                }
            }
            // The simple protocol: PgBouncer 1.18 in transaction pooling keeps no prepared
            // statement from one transaction to the next.
            let r = match &client {
                Some(c) => c
                    .batch_execute(
                        "INSERT INTO orders (item, invoice_no) VALUES ('demo', nextval('invoice_no'))",
                    )
                    .await
                    .is_ok(),
                None => false,
            };
            if r {
                counts.committed.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                client = None;
            }
        }
    });
}

fn settings(text: &str) -> Result<Settings> {
    crate::config::from_str(text, None, &Default::default())
}

async fn action(s: &Settings, a: Action, journal: &Path) -> Result<()> {
    say(&format!("{} …", a.name()));
    let opts = engine::RunOptions {
        journal: Some(journal.to_path_buf()),
        ..Default::default()
    };
    let mut quiet = |_: &engine::Event| {};
    match engine::run(a, s, &opts, &mut quiet).await? {
        Outcome::Done { .. } | Outcome::NothingToDo { .. } => Ok(()),
        other => bail!(
            "{} did not complete: {}",
            a.name(),
            crate::report::text::outcome(&other)
        ),
    }
}

/// BLUE with the app's schema and role, the writer, prepare; GREEN from a crash-consistent copy
/// of BLUE; subscribe and start.
async fn set_up(tps: u32) -> Result<(Demo, Settings, Arc<AppCounts>)> {
    let bin = Bin::installed()?;
    let dir = tempfile::Builder::new()
        .prefix("pgcutover-demo-")
        .tempdir()?;
    say(&format!("binaries {}", bin.dir.display()));
    let mut demo = Demo {
        blue: Cluster::try_new("BLUE", &bin, CONF)?,
        green: None,
        bouncer: None,
        stop_writer: Arc::new(AtomicBool::new(false)),
        dir,
    };
    say(&format!("BLUE in {}", demo.blue.base().display()));
    sql(&demo.blue.dsn_for("postgres"), "CREATE DATABASE demo").await?;
    sql(
        &demo.blue.dsn_for("demo"),
        "CREATE ROLE app LOGIN;
         CREATE SEQUENCE invoice_no START 1000;
         CREATE TABLE orders (id bigserial PRIMARY KEY, item text, invoice_no bigint, at timestamptz DEFAULT now());
         GRANT ALL ON orders, invoice_no, orders_id_seq TO app;",
    )
    .await?;
    let green_port = free_port()?;
    let target = |port: u16| format!("host=127.0.0.1 port={port} dbname=demo");
    demo.bouncer = start_bouncer(&target(demo.blue.port));
    let counts = Arc::new(AppCounts::default());
    if tps > 0 {
        let ports = match &demo.bouncer {
            Some(b) => vec![b.port],
            None => vec![demo.blue.port, green_port],
        };
        spawn_writer(ports, tps, demo.stop_writer.clone(), counts.clone());
    }
    let journal = journal_path(demo.dir.path());
    let blue_dsn = demo.blue.dsn_for("demo");
    let traffic = demo.bouncer.as_ref().map_or(String::new(), |b| {
        format!(
            "[traffic]\nrouter = \"pgbouncer\"\n[[traffic.pgbouncer]]\nadmin = \"{}\"\n\
             databases = [\"demo\"]\ninclude_file = \"{}\"\n",
            b.admin_dsn(),
            b.include.display()
        )
    });
    let (blue_target, green_target) = (target(demo.blue.port), target(green_port));
    let config = |green_dsn: &str, green_log: &Path| {
        format!(
            "[blue]\ndsn = \"{blue_dsn}\"\npgbouncer_target = \"{blue_target}\"\n\
             [green]\ndsn = \"{green_dsn}\"\npgbouncer_target = \"{green_target}\"\n\
             [cutover]\napp_roles = [\"app\"]\n[redo]\nlog_file = \"{}\"\n[poll]\ninterval_ms = 1000\n{traffic}",
            green_log.display()
        )
    };
    // Before GREEN exists its port refuses, as an instance still restoring would.
    let pre = settings(&config(
        &format!(
            "host=127.0.0.1 port={green_port} dbname=demo user=postgres sslmode=disable connect_timeout=1"
        ),
        &demo.dir.path().join("no-green-yet.log"),
    ))?;
    action(&pre, Action::Prepare, &journal).await?;

    say("GREEN from a crash-consistent copy of BLUE (as an RDS snapshot is) …");
    let green = demo.blue.try_crash_copy("GREEN", Some(green_port))?;
    let s = settings(&config(&green.dsn_for("demo"), &green.log))?;
    demo.green = Some(green);
    action(&s, Action::Subscribe, &journal).await?;
    action(&s, Action::Start, &journal).await?;
    say(&format!(
        "replicating; {} writes so far. Journal: {}",
        counts.committed.load(Ordering::Relaxed),
        journal.display()
    ));
    Ok((demo, s, counts))
}

/// The app's PgBouncer in transaction pooling, its database `demo` pointing at BLUE; `None`
/// (the app then connects directly) when the package is missing or it cannot start.
fn start_bouncer(blue_target: &str) -> Option<PgBouncer> {
    match PgBouncer::try_start(&[format!("demo = {blue_target}")], &["app"], "transaction") {
        Ok(b) => {
            say(&format!(
                "PgBouncer on 127.0.0.1:{}: the app writes through it, and C/R switch it",
                b.port
            ));
            Some(b)
        }
        Err(e) => {
            say(&format!(
                "no PgBouncer ({}): the app connects directly and sees the fence as errors",
                crate::format::report_chain(&e)
            ));
            None
        }
    }
}

pub fn main(
    rt: &tokio::runtime::Runtime,
    screenshots: Option<PathBuf>,
    tps: u32,
    theme: Theme,
) -> ExitCode {
    let result = rt.block_on(async {
        let (demo, settings, counts) = tokio::select! {
            r = set_up(tps) => r?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted during set-up"),
        };
        let journal = journal_path(demo.dir.path());
        crate::config::keep_verify_in(demo.dir.path().to_path_buf());
        let r = match &screenshots {
            Some(dir) => shots(&settings, dir, &theme, &journal, &counts).await,
            None => {
                crate::tui::run(
                    settings,
                    crate::tui::DashboardOptions {
                        write: true,
                        theme,
                        journal: Some(journal.clone()),
                        app_counts: Some(counts),
                    },
                )
                .await
            }
        };
        drop(demo);
        say(&format!(
            "the journal of this demo is kept in {}",
            journal.display()
        ));
        r
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::tui::restore();
            eprintln!("pgcutover demo: {}", crate::format::report_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The demo's journal: kept after the demo (its clusters are removed, the record of what ran on
/// them is not), in the state directory beside the real journal, not mixed into it.
fn journal_path(demo_dir: &Path) -> PathBuf {
    crate::config::state_dir().map_or_else(
        || demo_dir.join("journal.jsonl"),
        |d| d.join("demo-journal.jsonl"),
    )
}

/// Render the real dashboard on the demo's data into SVG files: the overview at 160×48, the
/// cutover dialog, the window timer during a cutover, and 80×24.
async fn shots(
    settings: &Settings,
    dir: &Path,
    theme: &Theme,
    journal: &Path,
    counts: &AppCounts,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let save = |st: &State, name: &str, w: u16, h: u16| -> Result<()> {
        let svg = render_svg(st, theme, w, h)?;
        std::fs::write(dir.join(name), svg)?;
        say(&format!("wrote {}", dir.join(name).display()));
        Ok(())
    };
    let (mut st, mut readers) = warmed_up(settings).await;
    update(&mut st, counts.read());
    save(&st, "overview-160x48.svg", 160, 48)?;
    save(&st, "overview-80x24.svg", 80, 24)?;

    // A verify of the pair while the app writes, as the dashboard shows it when it is done.
    let report = engine::verify::run(settings, &[], true, &mut |_| {}).await?;
    engine::verify::record(&report, None)?;
    update(
        &mut st,
        Msg::Verify {
            last: Some(Box::new(report)),
            underway: None,
        },
    );
    st.focus = app::Panel::Verify;
    save(&st, "verify-160x48.svg", 160, 48)?;
    st.focus = app::Panel::Replication;

    // The cutover dialog with its real plan.
    update(
        &mut st,
        Msg::Key(KeyEvent::new(KeyCode::Char('C'), KeyModifiers::SHIFT)),
    );
    let (_, plan) = engine::plan(Action::Cutover, settings, &Default::default()).await;
    update(&mut st, Msg::Planned(Action::Cutover, Ok(plan)));
    save(&st, "cutover-dialog-160x48.svg", 160, 48)?;

    // Type its name, confirm, and take a frame while the source is fenced (the window timer).
    for c in "cutover".chars() {
        update(
            &mut st,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
    save(&st, "cutover-dialog-typed-80x24.svg", 80, 24)?;
    update(
        &mut st,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    let (events, outcome) = cutover(settings, journal).await;
    let mut window_shot = false;
    for (at, e) in events {
        let is_drain_end =
            matches!(&e, engine::Event::StepFinished { step, .. } if *step == StepId::Drain);
        app::update(&mut st, Msg::Engine(e), SystemTime::now(), at);
        if is_drain_end && !window_shot {
            save(&st, "cutover-window-160x48.svg", 160, 48)?;
            window_shot = true;
        }
    }
    update(&mut st, Msg::Finished(Action::Cutover, outcome));
    feed(&mut st, &mut readers, settings, false).await;
    update(&mut st, counts.read());
    save(&st, "after-cutover-160x48.svg", 160, 48)?;
    Ok(())
}

fn update(st: &mut State, msg: Msg) {
    app::update(st, msg, SystemTime::now(), Instant::now());
}

/// A dashboard state with a minute of samples (so the lag chart has a shape) and the redo line.
async fn warmed_up(settings: &Settings) -> (State, Readers) {
    let mut st = State::new(
        settings.names.clone(),
        settings.app_roles.clone(),
        true,
        settings.poll.interval,
        false,
        crate::app::keys::Keymap::default(),
    )
    .watching(settings);
    let mut readers = Readers {
        sides: [
            crate::collect::reading::reader(settings, Side::Blue),
            crate::collect::reading::reader(settings, Side::Green),
        ],
        traffic: crate::pgbouncer::Reader::default(),
    };
    for i in 0..40 {
        feed(&mut st, &mut readers, settings, i == 0).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    if let Ok(found) = crate::aws::redo_source::locate(settings).await {
        let data = Box::new(Ok(found));
        update(
            &mut st,
            Msg::Redo {
                at: SystemTime::now(),
                data,
            },
        );
    }
    (st, readers)
}

/// Run the cutover, keeping each engine event with the instant it happened.
async fn cutover(
    settings: &Settings,
    journal: &Path,
) -> (
    Vec<(Instant, engine::Event)>,
    Result<engine::Outcome, String>,
) {
    let mut events = Vec::new();
    let mut on_event = |e: &engine::Event| events.push((Instant::now(), e.clone()));
    let opts = engine::RunOptions {
        journal: Some(journal.to_path_buf()),
        ..Default::default()
    };
    let outcome = engine::run(Action::Cutover, settings, &opts, &mut on_event)
        .await
        .map_err(|e| e.to_string());
    (events, outcome)
}

/// What the dashboard's pollers read with: both sides and the routers.
struct Readers {
    sides: [crate::collect::postgres::PgReader; 2],
    traffic: crate::pgbouncer::Reader,
}

/// One poll of both sides and the routers into the state, as the dashboard's pollers would send
/// it: live facts, and with `full` the inventory and catalogue too.
async fn feed(st: &mut crate::app::State, readers: &mut Readers, settings: &Settings, full: bool) {
    use crate::collect::poller::{Sample, SampleData};
    use crate::format::report_chain;
    if let Some(r) = readers
        .traffic
        .read(&settings.traffic, settings.poll.timeout)
        .await
    {
        update(
            st,
            Msg::Traffic {
                at: SystemTime::now(),
                data: Box::new(r),
            },
        );
    }
    for (reader, side) in readers.sides.iter_mut().zip(Side::BOTH) {
        let mut data = vec![SampleData::Live(
            reader
                .live()
                .await
                .map(Box::new)
                .map_err(|e| report_chain(&e)),
        )];
        if full {
            data.push(SampleData::Inventory(
                reader
                    .inventory()
                    .await
                    .map(Box::new)
                    .map_err(|e| report_chain(&e)),
            ));
            data.push(SampleData::Catalog(
                reader
                    .catalog()
                    .await
                    .map(Box::new)
                    .map_err(|e| report_chain(&e)),
            ));
        }
        for data in data {
            let at = SystemTime::now();
            crate::app::update(
                st,
                crate::app::Msg::Sample(Sample {
                    side,
                    db: None,
                    at,
                    data,
                }),
                at,
                Instant::now(),
            );
        }
    }
}

pub fn render_svg(st: &crate::app::State, theme: &Theme, w: u16, h: u16) -> Result<String> {
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend)?;
    term.draw(|f| crate::ui::draw(st, theme, f))?;
    Ok(crate::ui::svg::render(term.backend().buffer()))
}
