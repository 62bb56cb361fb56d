//! `pgcutover demo`: BLUE and GREEN PostgreSQL clusters on loopback in a temp dir, a write
//! workload as the app role, prepare → GREEN from a crash-consistent copy → subscribe → start
//! through the real engine, then the dashboard in write mode. Everything it started is stopped
//! and removed when it exits (also on error or Ctrl-C during set-up).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr, bail, eyre};

use crate::config::Settings;
use crate::domain::guards::Action;
use crate::domain::observed::Side;
use crate::domain::step::StepId;
use crate::engine::{self, Outcome};
use crate::ui::Theme;

#[allow(unsafe_code)] // one of the four justified sites: libc without a safe wrapper
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// PostgreSQL's server binaries: `$PGCUTOVER_PG_BIN`, `pg_config --bindir`, or the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("PGCUTOVER_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").exists() {
            return Ok(d);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).ok_or_else(|| {
        eyre!(
            "no PostgreSQL server binaries (initdb, pg_ctl) found: install them (Debian: apt-get install postgresql-15), \
             or set PGCUTOVER_PG_BIN=/path/to/bin; scripts/demo.sh does this for you"
        )
    })
}

/// A command as the `postgres` OS user when we are root (PostgreSQL refuses to run as root).
fn as_pg(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .wrap_err_with(|| format!("{what}: cannot run"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Cluster {
    name: &'static str,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    running: bool,
}

impl Cluster {
    fn pg_ctl(&self) -> Command {
        as_pg(&self.bin.join("pg_ctl"))
    }

    fn start(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
        run_ok(
            self.pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {}", self.port))
                .arg("start"),
            &format!("starting {}", self.name),
        )?;
        self.running = true;
        Ok(())
    }

    fn stop(&mut self) {
        if self.running {
            let _ = self
                .pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .args(["-w", "-t", "30", "-m", "fast", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }

    fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=demo user=postgres sslmode=disable",
            self.port
        )
    }

    /// The postmaster and its children, to freeze for a crash-consistent copy.
    fn pids(&self) -> Vec<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(pm) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![pm];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, a)| a.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        pids
    }
}

const CONF: &str = "
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 40
shared_buffers = 32MB
log_line_prefix = '%m [%p] '
";

/// Everything the demo started; stopped and removed on drop, whatever happened.
struct Demo {
    dir: tempfile::TempDir,
    blue: Cluster,
    green: Option<Cluster>,
    stop_writer: Arc<AtomicBool>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_writer.store(true, Ordering::Relaxed);
        if let Some(g) = &mut self.green {
            g.stop();
        }
        self.blue.stop();
        eprintln!(
            "demo: stopped both clusters, removing {}",
            self.dir.path().display()
        );
    }
}

fn say(msg: &str) {
    eprintln!("demo: {msg}");
}

fn initdb(bin: &Path, data: &Path) -> Result<()> {
    run_ok(
        as_pg(&bin.join("initdb")).arg("-D").arg(data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]),
        "initdb",
    )?;
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf)?;
    text.push_str(CONF);
    std::fs::write(&conf, text)?;
    Ok(())
}

async fn sql(dsn: &str, text: &str) -> Result<()> {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    c.batch_execute(text).await?;
    Ok(())
}

/// The app: inserts as role `app` at `tps`, on whichever side lets it log in, so a cutover
/// shows up as a pause of a few milliseconds and writes moving to GREEN.
fn spawn_writer(ports: [u16; 2], tps: u32, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) {
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
                for p in ports {
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
            if let Some(c) = &client {
                let r = c
                    .execute(
                        "INSERT INTO orders (item, invoice_no) VALUES ('demo', nextval('invoice_no'))",
                        &[],
                    )
                    .await;
                match r {
                    Ok(_) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => client = None,
                }
            }
        }
    });
}

fn settings(text: &str) -> Result<Settings> {
    crate::config::from_str(text, None, &Default::default())
}

async fn action(s: &Settings, a: Action, journal: &Path) -> Result<()> {
    say(&format!("{} …", a.name()));
    let opts = engine::Options {
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

#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn set_up(tps: u32) -> Result<(Demo, Settings, Arc<AtomicU64>)> {
    let bin = pg_bin()?;
    let dir = tempfile::Builder::new()
        .prefix("pgcutover-demo-")
        .tempdir()?;
    if is_root() {
        // The clusters run as the postgres user; it must own their directory and reach it.
        run_ok(
            Command::new("chown").arg("postgres:").arg(dir.path()),
            "chown",
        )?;
        let mut d = dir.path().to_path_buf();
        while let Some(p) = d.parent() {
            let _ = Command::new("chmod").arg("o+x").arg(&d).status();
            d = p.to_path_buf();
        }
    }
    say(&format!(
        "clusters in {} (binaries {})",
        dir.path().display(),
        bin.display()
    ));
    let blue_data = dir.path().join("blue");
    initdb(&bin, &blue_data)?;
    let mut demo = Demo {
        blue: Cluster {
            name: "BLUE",
            bin: bin.clone(),
            data: blue_data,
            log: dir.path().join("blue.log"),
            port: free_port()?,
            running: false,
        },
        green: None,
        stop_writer: Arc::new(AtomicBool::new(false)),
        dir,
    };
    demo.blue.start()?;
    let admin = demo.blue.dsn().replace("dbname=demo", "dbname=postgres");
    sql(&admin, "CREATE DATABASE demo").await?;
    sql(
        &demo.blue.dsn(),
        "CREATE ROLE app LOGIN;
         CREATE SEQUENCE invoice_no START 1000;
         CREATE TABLE orders (id bigserial PRIMARY KEY, item text, invoice_no bigint, at timestamptz DEFAULT now());
         GRANT ALL ON orders, invoice_no, orders_id_seq TO app;",
    )
    .await?;
    let green_port = free_port()?;
    let count = Arc::new(AtomicU64::new(0));
    if tps > 0 {
        spawn_writer(
            [demo.blue.port, green_port],
            tps,
            demo.stop_writer.clone(),
            count.clone(),
        );
    }
    let journal = demo.dir.path().join("journal.jsonl");
    let green_log = demo.dir.path().join("green.log");
    let config = |green_dsn: &str| {
        format!(
            "[blue]\ndsn = \"{}\"\n[green]\ndsn = \"{green_dsn}\"\n[cutover]\napp_roles = [\"app\"]\n[redo]\nlog_file = \"{}\"\n[poll]\ninterval_ms = 1000\n",
            demo.blue.dsn(),
            green_log.display()
        )
    };
    // Before GREEN exists its port refuses, as an instance still restoring would.
    let pre = settings(&config(&format!(
        "host=127.0.0.1 port={green_port} dbname=demo user=postgres sslmode=disable connect_timeout=1"
    )))?;
    action(&pre, Action::Prepare, &journal).await?;

    say("GREEN from a crash-consistent copy of BLUE (as an RDS snapshot is) …");
    let green_data = demo.dir.path().join("green");
    let pids = demo.blue.pids();
    for &p in &pids {
        // SAFETY: signalling our own child processes.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(p, libc::SIGSTOP)
        };
    }
    // tar, not cp: coreutils' cp can take fresh WAL pages for holes and copy zeros.
    let copy = (|| -> Result<()> {
        std::fs::create_dir_all(&green_data)?;
        if is_root() {
            run_ok(
                Command::new("chown").arg("postgres:").arg(&green_data),
                "chown",
            )?;
        }
        run_ok(
            as_pg(Path::new("/bin/sh")).arg("-c").arg(format!(
                "tar -C '{}' -cf - . | tar -C '{}' -xf - && chmod 700 '{}'",
                demo.blue.data.display(),
                green_data.display(),
                green_data.display()
            )),
            "copying BLUE's data directory",
        )
    })();
    for &p in &pids {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(p, libc::SIGCONT)
        };
    }
    copy?;
    let mut green = Cluster {
        name: "GREEN",
        bin,
        data: green_data,
        log: green_log.clone(),
        port: green_port,
        running: false,
    };
    green.start()?;
    demo.green = Some(green);
    let s = settings(&config(&demo.green.as_ref().expect("set").dsn()))?;
    action(&s, Action::Subscribe, &journal).await?;
    action(&s, Action::Start, &journal).await?;
    say(&format!(
        "replicating; {} writes so far. Journal: {}",
        count.load(Ordering::Relaxed),
        journal.display()
    ));
    Ok((demo, s, count))
}

pub fn main(
    rt: &tokio::runtime::Runtime,
    screenshots: Option<PathBuf>,
    tps: u32,
    theme: Theme,
) -> ExitCode {
    let result = rt.block_on(async {
        let (demo, settings, _count) = tokio::select! {
            r = set_up(tps) => r?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted during set-up"),
        };
        let journal = demo.dir.path().join("journal.jsonl");
        let r = match &screenshots {
            Some(dir) => shots(&settings, dir, &theme, &journal).await,
            None => {
                crate::tui::run(
                    settings,
                    crate::tui::Options {
                        write: true,
                        theme,
                        journal: Some(journal),
                    },
                )
                .await
            }
        };
        drop(demo);
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

/// Render the real dashboard on the demo's data into SVG files: the overview at 160×48, the
/// cutover dialog, the window timer during a cutover, and 80×24.
#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
async fn shots(settings: &Settings, dir: &Path, theme: &Theme, journal: &Path) -> Result<()> {
    use crate::app::{self, Msg, State};
    std::fs::create_dir_all(dir)?;
    let mut st = State::new(
        settings.names.clone(),
        settings.app_roles.clone(),
        true,
        settings.poll.interval,
        false,
        crate::app::keys::Keymap::default(),
    );
    let mut readers = [
        crate::collect::snapshot::reader(settings, Side::Blue),
        crate::collect::snapshot::reader(settings, Side::Green),
    ];
    // A minute of samples, so the lag chart has a shape.
    for i in 0..40 {
        feed(&mut st, &mut readers, i == 0).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    if let Ok(found) = crate::aws::redo_source::locate(settings).await {
        app::update(
            &mut st,
            Msg::Redo {
                at: SystemTime::now(),
                data: Box::new(Ok(found)),
            },
            SystemTime::now(),
            Instant::now(),
        );
    }
    let save = |st: &State, name: &str, w: u16, h: u16| -> Result<()> {
        let svg = render_svg(st, theme, w, h)?;
        std::fs::write(dir.join(name), svg)?;
        say(&format!("wrote {}", dir.join(name).display()));
        Ok(())
    };
    save(&st, "overview-160x48.svg", 160, 48)?;
    save(&st, "overview-80x24.svg", 80, 24)?;

    // The cutover dialog with its real plan.
    let key = |c: char| {
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::SHIFT,
        ))
    };
    app::update(&mut st, key('C'), SystemTime::now(), Instant::now());
    let (_, plan) = engine::plan(Action::Cutover, settings, &Default::default()).await;
    app::update(
        &mut st,
        Msg::Planned(Action::Cutover, Ok(plan)),
        SystemTime::now(),
        Instant::now(),
    );
    save(&st, "cutover-dialog-160x48.svg", 160, 48)?;

    // Confirm, and take a frame while the source is fenced (the window timer).
    app::update(
        &mut st,
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::NONE,
        )),
        SystemTime::now(),
        Instant::now(),
    );
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let mut on_event = move |e: &engine::Event| {
        ev2.lock()
            .expect("events")
            .push((Instant::now(), e.clone()));
    };
    let outcome = engine::run(
        Action::Cutover,
        settings,
        &engine::Options {
            journal: Some(journal.to_path_buf()),
            ..Default::default()
        },
        &mut on_event,
    )
    .await
    .map_err(|e| e.to_string());
    let mut window_shot = false;
    for (at, e) in events.lock().expect("events").drain(..) {
        let is_drain_end =
            matches!(&e, engine::Event::StepFinished { step, .. } if *step == StepId::Drain);
        app::update(&mut st, Msg::Engine(e), SystemTime::now(), at);
        if is_drain_end && !window_shot {
            save(&st, "cutover-window-160x48.svg", 160, 48)?;
            window_shot = true;
        }
    }
    app::update(
        &mut st,
        Msg::Finished(Action::Cutover, outcome),
        SystemTime::now(),
        Instant::now(),
    );
    feed(&mut st, &mut readers, false).await;
    save(&st, "after-cutover-160x48.svg", 160, 48)?;
    Ok(())
}

/// One poll of both sides into the state, as the dashboard's pollers would send it: live facts,
/// and with `full` the inventory and catalogue too.
async fn feed(
    st: &mut crate::app::State,
    readers: &mut [crate::collect::postgres::PgReader; 2],
    full: bool,
) {
    use crate::collect::poller::{Sample, SampleData};
    use crate::format::report_chain;
    for (reader, side) in readers.iter_mut().zip(Side::BOTH) {
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
                crate::app::Msg::Sample(Sample { side, at, data }),
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
