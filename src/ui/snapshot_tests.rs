//! Every panel and dialog on ratatui's `TestBackend`, as insta snapshots: 80×24 and 160×48,
//! dark and mono themes, with stale data, a poller error, split brain and a running cutover.
//! The clock is fixed so the snapshots are stable.

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{Theme, draw};
use crate::app::keys::Keymap;
use crate::app::{Msg, Panel, State, update};
use crate::collect::poller::{Sample, SampleData};
use crate::domain::guards::{Action, Guard};
use crate::domain::observed::Side;
use crate::domain::step::{Edge, StepId};
use crate::domain::testdata;
use crate::engine::{Event, Plan, PlanStep};

fn t0() -> SystemTime {
    // 2026-11-21 10:00:00 UTC
    SystemTime::UNIX_EPOCH + Duration::from_hours(498682)
}

struct Fixture {
    st: State,
    base: Instant,
}

impl Fixture {
    fn at(&self, secs: f64) -> (SystemTime, Instant) {
        let d = Duration::from_secs_f64(secs);
        (t0() + d, self.base + d)
    }

    fn send(&mut self, secs: f64, msg: Msg) {
        let (w, m) = self.at(secs);
        update(&mut self.st, msg, w, m);
    }

    fn live(&mut self, secs: f64, side: Side, data: Result<crate::domain::observed::Live, String>) {
        let (w, _) = self.at(secs);
        self.send(
            secs,
            Msg::Sample(Sample {
                side,
                db: None,
                at: w,
                data: SampleData::Live(data.map(Box::new)),
            }),
        );
    }
}

/// BLUE serving with the slot, GREEN subscribed and streaming; lag samples over a minute.
fn replicating() -> Fixture {
    let mut f = Fixture {
        st: State::new(
            testdata::names(),
            vec!["app".into()],
            false,
            Duration::from_secs(1),
            false,
            Keymap::default(),
        ),
        base: Instant::now(),
    };
    f.st.gate_bytes = Some(16 * 1024);
    for i in 0..60u64 {
        let mut b = testdata::with_pub_slot(testdata::live(true));
        let cur = 0x3000000 + i * 4096;
        b.server.current_lsn = Some(format!("0/{cur:X}").parse().unwrap());
        b.slots[0].active = true;
        b.slots[0].active_pid = Some(4242);
        b.slots[0].confirmed_flush_lsn =
            Some(format!("0/{:X}", cur - 1024 * (i % 7)).parse().unwrap());
        b.slots[0].restart_lsn = Some("0/2F00000".parse().unwrap());
        b.slots[0].sender = Some(crate::domain::observed::Sender {
            state: Some("streaming".into()),
            write_lag_s: Some(0.05),
            flush_lag_s: Some(0.12),
            replay_lag_s: Some(0.1),
            reply_age_s: Some(0.3),
        });
        b.app_roles[0].sessions = 3;
        f.live(i as f64, Side::Blue, Ok(b));
        let mut g = testdata::with_sub(testdata::live(false), true, None);
        g.server.version = "17.2 (Debian 17.2-1)".into();
        g.server.current_lsn = Some("0/1600000".parse().unwrap());
        f.live(i as f64, Side::Green, Ok(g));
    }
    f
}

fn render(st: &State, th: &Theme, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|fr| draw(st, th, fr)).unwrap();
    format!("{}", term.backend())
}

fn plan_ok() -> Plan {
    Plan {
        action: "cutover".into(),
        guards: vec![
            Guard { name: "reachable", ok: true, detail: "BLUE answers".into() },
            Guard { name: "no_split_brain", ok: true, detail: "the app can log in on at most one side".into() },
            Guard { name: "lag", ok: true, detail: "last 3 samples 1.8 kB, 1.0 kB, 1.2 kB; the gate: below 100.0 kB for 3 in a row ([cutover] max_lag_bytes, steady_samples)".into() },
            Guard { name: "phase", ok: true, detail: "phase is replicating".into() },
        ],
        mode: Some(crate::domain::guards::SwitchMode::Full),
        steps: vec![
            PlanStep {
                step: StepId::Fence,
                db: None,
                window: Some(Edge::Opens),
                title: "fence BLUE: app roles NOLOGIN, their sessions ended".into(),
                side: Side::Blue,
                sql: vec![
                    "ALTER ROLE app NOLOGIN".into(),
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('app')".into(),
                ],
            },
            PlanStep {
                step: StepId::ArmSubscription,
                db: None,
                window: None,
                title: "create BLUE's subscription to GREEN, disabled".into(),
                side: Side::Blue,
                sql: vec!["CREATE SUBSCRIPTION pgcutover_sub CONNECTION 'host=green.example.internal port=5432 dbname=app user=replicator sslmode=verify-full' PUBLICATION pgcutover_pub WITH (enabled = false, create_slot = false, slot_name = 'pgcutover_slot', copy_data = false)".into()],
            },
            PlanStep {
                step: StepId::Unfence,
                db: None,
                window: Some(Edge::Closes),
                title: "unfence GREEN: app roles LOGIN".into(),
                side: Side::Green,
                sql: vec!["ALTER ROLE app LOGIN".into()],
            },
        ],
        notes: vec![],
    }
}

fn key(f: &mut Fixture, secs: f64, c: KeyCode) {
    f.send(secs, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)));
}

#[test]
fn overview_wide_and_small_dark() {
    let mut f = replicating();
    f.send(60.5, Msg::Tick);
    insta::assert_snapshot!("overview_160x48", render(&f.st, &Theme::dark(), 160, 48));
    insta::assert_snapshot!("overview_80x24", render(&f.st, &Theme::dark(), 80, 24));
    key(&mut f, 61.0, KeyCode::Char('4'));
    insta::assert_snapshot!("checks_80x24", render(&f.st, &Theme::dark(), 80, 24));
}

#[test]
fn mono_theme_carries_state_without_colour() {
    let mut f = replicating();
    f.send(60.5, Msg::Tick);
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    term.draw(|fr| draw(&f.st, &Theme::mono(), fr)).unwrap();
    let buf = term.backend().buffer();
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset),
        "mono has no colour"
    );
    insta::assert_snapshot!("overview_mono_160x48", format!("{}", term.backend()));
}

#[test]
fn stale_side_and_poller_error_show_in_their_panels() {
    let mut f = replicating();
    f.live(
        61.0,
        Side::Blue,
        Err("BLUE (postgres@10.0.0.1:5432/app): connection refused".into()),
    );
    // GREEN's last sample is from t=59: stale after three 1 s intervals.
    f.send(65.0, Msg::Tick);
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("connection refused"), "{out}");
    assert!(out.contains("STALE"), "{out}");
    insta::assert_snapshot!("stale_and_error_160x48", out);
}

#[test]
fn split_brain_is_an_alarm_in_the_header() {
    let mut f = replicating();
    let g = testdata::with_sub(testdata::live(true), true, None);
    f.live(61.0, Side::Green, Ok(g));
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(
        out.contains("BOTH") || out.to_lowercase().contains("split"),
        "{out}"
    );
    insta::assert_snapshot!("split_brain_160x48", out);
    insta::assert_snapshot!("split_brain_80x24", render(&f.st, &Theme::mono(), 80, 24));
}

#[test]
fn cutover_dialog_then_running_with_window_timer() {
    let mut f = replicating();
    f.st.write = true;
    key(&mut f, 60.0, KeyCode::Char('C'));
    insta::assert_snapshot!(
        "dialog_checking_80x24",
        render(&f.st, &Theme::dark(), 80, 24)
    );
    f.send(60.2, Msg::Planned(Action::Cutover, Ok(plan_ok())));
    insta::assert_snapshot!("dialog_160x48", render(&f.st, &Theme::dark(), 160, 48));
    insta::assert_snapshot!("dialog_80x24", render(&f.st, &Theme::dark(), 80, 24));
    // Enter alone does not run it; the name is typed first.
    key(&mut f, 60.5, KeyCode::Enter);
    assert!(f.st.running.is_none());
    for c in "cutov".chars() {
        key(&mut f, 60.6, KeyCode::Char(c));
    }
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("type cutover then Enter"), "{out}");
    insta::assert_snapshot!("dialog_typing_80x24", out);
    for c in "er".chars() {
        key(&mut f, 60.7, KeyCode::Char(c));
    }
    key(&mut f, 61.0, KeyCode::Enter);
    assert!(f.st.running.is_some());
    f.send(
        61.1,
        Msg::Engine(Event::StepStarted {
            step: StepId::Fence,
            title: "fence the source".into(),
            side: Some(Side::Blue),
            window: Some(Edge::Opens),
        }),
    );
    f.send(
        61.107,
        Msg::Engine(Event::StepFinished {
            step: StepId::Fence,
            ms: 6.3,
            detail: "BLUE fenced".into(),
            window: Some(Edge::Opens),
        }),
    );
    f.send(
        61.108,
        Msg::Engine(Event::StepStarted {
            step: StepId::Drain,
            title: "wait for the target to confirm it".into(),
            side: Some(Side::Blue),
            window: None,
        }),
    );
    f.send(61.112, Msg::Tick);
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("WINDOW   0.012 s"), "{out}");
    insta::assert_snapshot!("running_cutover_160x48", out);
    insta::assert_snapshot!(
        "running_cutover_mono_80x24",
        render(&f.st, &Theme::mono(), 80, 24)
    );
}

#[test]
fn the_dialog_says_in_words_what_each_mode_runs() {
    use crate::domain::guards::SwitchMode;
    for (i, m) in [
        SwitchMode::Full,
        SwitchMode::ResumeWindow,
        SwitchMode::Finish,
        SwitchMode::Done,
        SwitchMode::Unclear,
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = replicating();
        f.st.write = true;
        key(&mut f, 60.0, KeyCode::Char('C'));
        let mut p = plan_ok();
        p.mode = Some(m);
        if m == SwitchMode::Unclear {
            p.guards.push(Guard {
                name: "mode",
                ok: false,
                detail: "mode is unclear: both sides serve".into(),
            });
        }
        f.send(60.2, Msg::Planned(Action::Cutover, Ok(p)));
        let out = render(&f.st, &Theme::dark(), 120, 30);
        assert!(out.contains(&m.words()[..20]), "{m:?}: {out}");
        assert!(!out.contains(&format!("{m:?}")), "no Debug output: {out}");
        insta::assert_snapshot!(format!("dialog_mode_{i}_120x30"), out);
    }
}

#[test]
fn refused_dialog_says_why_and_help_lists_keys() {
    let mut f = replicating();
    f.st.write = true;
    key(&mut f, 60.0, KeyCode::Char('R'));
    let mut p = plan_ok();
    p.action = "rollback".into();
    p.guards.push(Guard {
        name: "evidence_of_cutover",
        ok: false,
        detail: "no cutover happened: GREEN never served; nothing to roll back".into(),
    });
    f.send(60.2, Msg::Planned(Action::Rollback, Ok(p)));
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(
        out.contains("REFUSED") && out.contains("never served"),
        "{out}"
    );
    insta::assert_snapshot!("refused_160x48", out);
    key(&mut f, 61.0, KeyCode::Esc);
    key(&mut f, 61.0, KeyCode::Char('?'));
    insta::assert_snapshot!("help_160x48", render(&f.st, &Theme::dark(), 160, 48));
}

#[test]
fn too_small_is_a_message_not_a_broken_layout() {
    let f = replicating();
    let out = render(&f.st, &Theme::dark(), 50, 12);
    assert!(out.contains("terminal too small"), "{out}");
    assert!(out.contains("need 60×16, have 50×12"), "{out}");
}

#[test]
fn every_panel_alone_at_80x24() {
    let mut f = replicating();
    for p in Panel::ALL {
        f.st.focus = p;
        let out = render(&f.st, &Theme::dark(), 80, 24);
        assert!(out.contains(p.title()), "{}: {out}", p.title());
    }
}

#[test]
fn hints_follow_rebound_keys() {
    let mut f = replicating();
    let table: std::collections::BTreeMap<String, Vec<String>> = [
        ("confirm", vec!["x"]),
        ("cancel", vec!["z", "Esc"]),
        ("down", vec!["n"]),
        ("up", vec!["m"]),
        ("cutover", vec!["U"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    f.st.keymap = Keymap::with_overrides(&table).unwrap();
    f.st.write = true;
    f.send(60.5, Msg::Tick);
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("U cut over"), "{out}");
    // With Enter as the confirmation (`[ui] confirm = "enter"`), the rebound keys are offered.
    f.st.type_to_confirm = false;
    key(&mut f, 61.0, KeyCode::Char('U'));
    f.send(61.1, Msg::Planned(Action::Cutover, Ok(plan_ok())));
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("x: run cutover"), "{out}");
    assert!(out.contains("z/Esc: cancel"), "{out}");
    assert!(out.contains("n/m: scroll"), "{out}");
    assert!(!out.contains("Enter/y"), "{out}");
}

fn routed(db: &str, side: Side, port: u16, paused: bool) -> crate::domain::traffic::RoutedEntry {
    crate::domain::traffic::RoutedEntry {
        db: db.into(),
        host: "10.0.0.1".into(),
        port,
        database: db.into(),
        side: Some(side),
        paused,
        paused_since: None,
        pool_mode: Some("transaction".into()),
        load: Some(crate::domain::traffic::PoolLoad {
            cl_active: 8,
            cl_waiting: if paused { 8 } else { 0 },
            sv_active: 2,
            sv_idle: 3,
            maxwait_ms: if paused { 2300 } else { 0 },
        }),
    }
}

fn bouncers(entries: [Vec<crate::domain::traffic::RoutedEntry>; 2]) -> Msg {
    use crate::domain::traffic::{BouncerReading, IncludeState, TrafficReading};
    let [a, b] = entries;
    let one = |name: &str, entries| BouncerReading {
        name: name.into(),
        error: None,
        entries,
        missing: vec![],
        admin_rights: Some(true),
        server_login_retry_s: Some(1),
        include: IncludeState::NotUsed,
    };
    Msg::Traffic {
        at: t0(),
        data: Box::new(TrafficReading {
            router: "pgbouncer",
            bouncers: vec![
                one("pgbouncer 1 (10.0.0.5:6432)", a),
                one("pgbouncer 2 (10.0.0.6:6432)", b),
            ],
            command_problem: None,
        }),
    }
}

/// The Traffic panel and the header's `traffic →`: calm, then a pause left behind by a killed
/// switch, then bouncers that disagree, then after a switch made here.
#[test]
fn traffic_panel_header_and_alarms() {
    let mut f = replicating();
    let replicating = std::mem::replace(
        &mut f.st,
        State::new(
            testdata::names(),
            vec![],
            false,
            Duration::from_secs(1),
            false,
            Keymap::default(),
        ),
    );
    f.st = replicating.with_traffic("pgbouncer", Duration::from_secs(20));
    let blue = |paused| {
        [
            vec![routed("app", Side::Blue, 5432, paused)],
            vec![routed("app", Side::Blue, 5432, false)],
        ]
    };
    let send_traffic = |f: &mut Fixture, secs: f64, e| {
        let Msg::Traffic { data, .. } = bouncers(e) else {
            unreachable!()
        };
        let (w, _) = f.at(secs);
        f.send(secs, Msg::Traffic { at: w, data });
    };
    send_traffic(&mut f, 60.0, blue(false));
    f.send(60.5, Msg::Tick);
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(
        out.contains("traffic → BLUE") && out.contains("8:Traffic"),
        "{out}"
    );
    assert!(out.contains("✓ no alarms"), "{out}");
    insta::assert_snapshot!("traffic_160x48", out);

    // Paused at 61 s and still at 90 s: longer than any switch would hold it.
    send_traffic(&mut f, 61.0, blue(true));
    send_traffic(&mut f, 90.0, blue(true));
    f.send(90.5, Msg::Tick);
    f.st.focus = Panel::Traffic;
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("PAUSED 29 s"), "{out}");
    insta::assert_snapshot!("traffic_paused_80x24", out);
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("held `app` paused for 29 s"), "{out}");

    // One bouncer repointed, the other not: SPLIT, and the app on BLUE that is still writable.
    send_traffic(
        &mut f,
        91.0,
        [
            vec![routed("app", Side::Green, 5433, false)],
            vec![routed("app", Side::Blue, 5432, false)],
        ],
    );
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(
        out.contains("traffic → SPLIT") && out.contains("bouncers disagree"),
        "{out}"
    );
    assert!(out.contains("APP DOWN"), "GREEN is not writable: {out}");
    // The narrow header keeps the router's word and the alarm in view together.
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("app→SPLIT"), "{out}");
    insta::assert_snapshot!("traffic_split_80x24", out);

    // A cutover made here: the panel says where and how long the app was held.
    f.send(
        92.0,
        Msg::Finished(
            Action::Cutover,
            Ok(crate::engine::Outcome::Done {
                summary: "GREEN serves".into(),
                window_ms: Some(14.2),
                held_ms: Some(61.0),
                steps: vec![],
            }),
        ),
    );
    f.send(95.0, Msg::Tick);
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(
        out.contains("last switch GREEN  app held 61 ms  window 14 ms  3 s ago"),
        "{out}"
    );
}

#[test]
fn the_first_frame_says_connecting_not_unreachable() {
    let st = State::new(
        testdata::names(),
        vec!["app".into()],
        false,
        Duration::from_secs(1),
        false,
        Keymap::default(),
    );
    let out = render(&st, &Theme::dark(), 160, 48);
    assert!(out.contains("connecting to BLUE, GREEN"), "{out}");
    assert!(
        !out.contains("unreachable") && !out.contains("stale:"),
        "{out}"
    );
}

/// Fifteen minutes of BLUE's slot read every 5 s: a 5 MB spike that drains, a switch 100 s ago
/// (GREEN serves since), and GREEN's slot lag after it.
fn fifteen_minutes() -> Fixture {
    let mut f = replicating();
    f.st.lag.clear();
    f.st.gate_bytes = Some(1024 * 1024);
    let lag_at = |s: u64| -> u64 {
        match s {
            300..=420 => 5 * 1024 * 1024 - (s - 300) * 40_000,
            _ => 2_000 + (s % 3) * 700,
        }
    };
    let start = 100.0;
    for k in 0..=180u64 {
        let s = k * 5;
        let secs = start + s as f64;
        let side = if s < 800 { Side::Blue } else { Side::Green };
        let mut l = testdata::with_pub_slot(testdata::live(true));
        let cur = 0x3000000 + s * 40_000;
        l.server.current_lsn = Some(format!("0/{cur:X}").parse().unwrap());
        l.slots[0].active = true;
        l.slots[0].confirmed_flush_lsn = Some(format!("0/{:X}", cur - lag_at(s)).parse().unwrap());
        l.slots[0].sender = Some(crate::domain::observed::Sender {
            state: Some("streaming".into()),
            write_lag_s: Some(0.2),
            flush_lag_s: Some(if (300..=420).contains(&s) { 30.0 } else { 0.3 }),
            replay_lag_s: None,
            reply_age_s: Some(0.5),
        });
        // Before the switch BLUE serves; after it GREEN serves and feeds BLUE back.
        let subscriber = testdata::with_sub(testdata::live(false), true, None);
        f.live(secs, side, Ok(l));
        f.live(secs, side.other(), Ok(subscriber));
        if s == 800 {
            f.st.last_switch = Some(crate::app::LastSwitch {
                action: crate::domain::guards::Action::Cutover,
                to: Side::Green,
                at: t0() + Duration::from_secs_f64(secs),
                window_ms: Some(31.0),
                held_ms: Some(47.0),
            });
        }
    }
    f.send(start + 901.0, Msg::Tick);
    f
}

#[test]
fn lag_chart_spans_fifteen_minutes_with_gate_spike_and_switch() {
    let f = fifteen_minutes();
    let out = render(&f.st, &Theme::dark(), 160, 48);
    insta::assert_snapshot!("lag_chart_160x48", out);
    assert!(out.contains("max 5.0 MB"), "{out}");
    assert!(out.contains("last switch"), "{out}");
}

#[test]
fn journal_wraps_the_outcome_and_scrolls_back_to_the_first_entry() {
    let mut f = replicating();
    f.st.write = true;
    for i in 0..30u64 {
        f.send(
            61.0 + i as f64 * 0.01,
            Msg::Engine(Event::Note {
                text: format!("entry {i}: a step of the run"),
            }),
        );
    }
    f.send(
        62.0,
        Msg::Finished(
            Action::Cutover,
            Ok(crate::engine::Outcome::Done {
                summary: "GREEN serves, BLUE follows it; writes were unavailable for 31 ms".into(),
                window_ms: Some(31.0),
                held_ms: None,
                steps: vec![],
            }),
        ),
    );
    key(&mut f, 62.1, KeyCode::Char('7'));
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(
        out.contains("unavailable for 31 ms"),
        "the outcome is wrapped, not cut: {out}"
    );
    insta::assert_snapshot!("journal_tail_80x24", out);
    // k at the tail goes back; enough of them reach the first entry, and no further.
    for _ in 0..200 {
        key(&mut f, 62.2, KeyCode::Char('k'));
    }
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("entry 0:"), "{out}");
    let max = f.st.journal_max_scroll.get();
    assert_eq!(f.st.scroll[Panel::Journal.index()], max);
    key(&mut f, 62.3, KeyCode::Char('j'));
    assert_eq!(f.st.scroll[Panel::Journal.index()], max - 1);
}

#[test]
fn instances_show_the_version_a_restore_in_progress_and_rds_events() {
    use crate::domain::rds::{Event as RdsEvent, Instance, InstanceFacts};
    let mut f = replicating();
    f.st.rds_configured = true;
    let created =
        time::OffsetDateTime::from(t0() + Duration::from_mins(1) - Duration::from_mins(12));
    let instance = Instance {
        id: "green".into(),
        status: "creating".into(),
        engine: Some("postgres".into()),
        engine_version: Some("17.2".into()),
        class: Some("db.r6g.large".into()),
        storage_type: None,
        allocated_storage_gib: None,
        multi_az: false,
        pending: vec![],
        create_time: Some(created),
        endpoint: None,
        log_exports: vec![],
        parameter_groups: vec![],
        subnet_group: None,
        security_groups: vec![],
        iam_auth: false,
    };
    let events = (0..5)
        .map(|i| RdsEvent {
            time: Some(created + Duration::from_secs(60 * i)),
            source: "green".into(),
            message: format!("event {i}: Restored from snapshot"),
        })
        .collect();
    f.send(
        60.5,
        Msg::Rds {
            side: Side::Green,
            at: t0() + Duration::from_mins(1),
            data: Box::new(Ok(InstanceFacts {
                instance: Some(Ok(instance)),
                events: Some(Ok(events)),
                ..Default::default()
            })),
        },
    );
    key(&mut f, 60.6, KeyCode::Char('2'));
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("GREEN PostgreSQL 15.18"), "{out}");
    assert!(!out.contains("(Debian"), "{out}");
    assert!(out.contains("creating, created 12 min 00 s ago"), "{out}");
    assert!(
        out.contains("event 4:") && !out.contains("event 1:"),
        "the last three: {out}"
    );
    insta::assert_snapshot!("instances_restore_80x24", out);
}

#[test]
fn schema_panel_names_each_difference_in_words() {
    use crate::domain::schema::{Catalog, ObjectKey, ObjectKind};
    let mut f = replicating();
    let key = |kind, parent: &str, name: &str| ObjectKey {
        kind,
        schema: "public".into(),
        parent: parent.into(),
        name: name.into(),
    };
    let mut blue = Catalog::default();
    let mut green = Catalog::default();
    for c in [&mut blue, &mut green] {
        c.insert(key(ObjectKind::Table, "", "accounts"), "table".into());
        c.insert(key(ObjectKind::Column, "accounts", "id"), "bigint".into());
    }
    blue.insert(key(ObjectKind::Column, "accounts", "note"), "text".into());
    green.insert(
        key(ObjectKind::Index, "accounts", "accounts_note_idx"),
        "CREATE INDEX accounts_note_idx ON public.accounts USING btree (note)".into(),
    );
    blue.insert(
        key(ObjectKind::Column, "Order Items", "qty"),
        "integer".into(),
    );
    green.insert(
        key(ObjectKind::Column, "Order Items", "qty"),
        "bigint".into(),
    );
    for (side, c) in [(Side::Blue, blue), (Side::Green, green)] {
        let (w, _) = f.at(60.0);
        f.send(
            60.0,
            Msg::Sample(Sample {
                side,
                db: None,
                at: w,
                data: SampleData::Catalog(Ok(Box::new(c))),
            }),
        );
    }
    f.send(60.5, Msg::Tick);
    f.st.focus = Panel::Schema;
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(out.contains("only on GREEN"), "{out}");
    assert!(!out.contains("OnlyGreen"), "no Debug output: {out}");
    insta::assert_snapshot!("schema_diff_80x24", out);
}

#[test]
fn other_slots_on_the_serving_side_show_with_their_lag() {
    let mut f = replicating();
    let mut b = f.st.blue.live.value.clone().unwrap();
    let mut cdc = b.slots[0].clone();
    cdc.name = "debezium".into();
    cdc.plugin = Some("test_decoding".into());
    cdc.active = false;
    cdc.sender = None;
    cdc.confirmed_flush_lsn = Some("0/3000000".parse().unwrap());
    b.slots.push(cdc);
    f.live(60.0, Side::Blue, Ok(b));
    f.send(60.5, Msg::Tick);
    f.st.focus = Panel::Replication;
    let out = render(&f.st, &Theme::dark(), 80, 24);
    assert!(
        out.contains("other slot debezium (test_decoding)  lag 236.0 kB  inactive  ▲ stops at the"),
        "{out}"
    );
    // The line wraps, and the chart moves down a row instead of hiding its end.
    assert!(out.contains("│switch "), "{out}");
    insta::assert_snapshot!("other_slots_80x24", out);
}

/// The same frame as text with one panel shown (below the wide layout's width).
fn panel(st: &mut State, p: Panel) -> String {
    st.focus = p;
    render(st, &Theme::dark(), 110, 30)
}

#[test]
fn replication_shows_a_row_per_database_the_troubled_one_first() {
    use crate::app::databases::tests::{billing_unsubscribed, subscribed_both, two};
    let (mut st, b) = two();
    billing_unsubscribed(&mut st, &b);
    let t = panel(&mut st, Panel::Replication);
    let row = |db: &str| {
        t.lines()
            .position(|l| l.contains(&format!("│{db} ")))
            .unwrap_or_else(|| panic!("no row for {db} in {t}"))
    };
    assert!(
        row("billing") < row("app"),
        "billing is not subscribed: first\n{t}"
    );
    let billing = t.lines().nth(row("billing")).unwrap();
    assert!(
        billing.contains("no subscription") && billing.contains("slot inactive"),
        "{billing}"
    );
    subscribed_both(&mut st, &b);
    let t = panel(&mut st, Panel::Replication);
    for db in ["app", "billing"] {
        assert!(
            t.lines()
                .any(|l| l.contains(&format!("│{db} ")) && l.contains("✓ streaming")),
            "{t}"
        );
    }
}

#[test]
fn sequences_are_named_with_their_database_the_one_behind_first() {
    let mut st = crate::app::databases::tests::with_sequences();
    let t = panel(&mut st, Panel::Sequences);
    let at = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} in {t}"));
    assert!(
        at("[billing] public.invoices_id_seq") < at("[app] public.orders_id_seq"),
        "{t}"
    );
}

fn verify_table(
    table: &str,
    verdict: crate::domain::verify::Verdict,
) -> crate::domain::verify::TableResult {
    crate::domain::verify::TableResult {
        database: None,
        table: table.into(),
        verdict,
        rows: 120_000,
        chunks: 12,
        whole: false,
        warnings: Vec::new(),
    }
}

#[test]
fn the_last_verify_heads_the_checks_and_fills_the_verify_panel() {
    use crate::domain::verify::{DiffKind, Report, RowDiff, Verdict};
    let mut f = replicating();
    // finished three minutes before the message that brings it
    let report = |mismatched: bool| {
        let mut tables = vec![verify_table("public.items", Verdict::Verified)];
        if mismatched {
            let d = |key: &str, kind| RowDiff {
                key: key.into(),
                kind,
            };
            tables.push(verify_table(
                "\"Ünïcode\".\"Order Items\"",
                Verdict::Mismatch {
                    keys: vec![
                        d("3", DiffKind::Different),
                        d("4", DiffKind::Missing),
                        d("-7", DiffKind::Extra),
                    ],
                    more: 0,
                },
            ));
        }
        let at =
            time::OffsetDateTime::from(t0() + Duration::from_secs(61) - Duration::from_mins(3));
        Some(Box::new(Report::new(
            Side::Blue,
            tables,
            (4.0, 240_000),
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        )))
    };
    let verify = |last| Msg::Verify {
        last,
        underway: None,
    };
    f.send(61.0, verify(report(true)));
    f.st.focus = Panel::Checks;
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(
        out.contains("✗ verify 3 min 00 s ago, BLUE → GREEN: 1 verified, 1 MISMATCHED"),
        "{out}"
    );
    // the Verify panel: the result, then the mismatched table first with its rows' keys
    let out = render(&f.st, &Theme::dark(), 160, 60);
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{out}"))
    };
    assert!(at("9:Verify") < at("last run 3 min 00 s ago"), "{out}");
    assert!(
        out.contains("240.0 k rows in 4.0 s (60.0 k rows/s)"),
        "{out}"
    );
    assert!(
        out.contains(
            "✗ \"Ünïcode\".\"Order Items\"  3 row(s) differ: 3 different, 4 missing, -7 extra"
        ),
        "{out}"
    );
    assert!(
        at("Order Items") < at("✓ public.items  120.0 k rows"),
        "problems first"
    );
    f.send(62.0, verify(report(false)));
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(out.contains("✓ verify 3 min 01 s ago"), "{out}");
    f.send(63.0, verify(None));
    let out = render(&f.st, &Theme::dark(), 160, 48);
    assert!(!out.contains("verify 3 min"), "{out}");
    assert!(out.contains("no verify yet: V compares"), "{out}");
}

#[test]
fn a_verify_under_way_shows_its_progress_and_a_stopped_one_says_so() {
    use crate::domain::verify::{Live, Underway, Verdict};
    let mut f = replicating();
    let underway = |alive| Msg::Verify {
        last: None,
        underway: Some(Box::new(Underway {
            source: Side::Blue,
            live: Live {
                pid: 1,
                tables_total: 30,
                rows_estimate: 4_500_000,
                rows_done: 1_200_000,
                compared: 900_000,
                seconds: 5.0,
                table: Some("[billing] public.invoices".into()),
                updated_at: String::new(),
            },
            finished: vec![
                verify_table("public.a", Verdict::Verified),
                verify_table(
                    "public.b",
                    Verdict::Hot {
                        more: 0,
                        hot_rows: 3,
                        hot_ranges: vec![
                            crate::domain::verify::HotRange {
                                after: Some("41".into()),
                                upto: Some("42".into()),
                                rows: 1,
                            },
                            crate::domain::verify::HotRange {
                                after: Some("(7, \"a\tb\")".into()),
                                upto: Some("(7, z)".into()),
                                rows: 2,
                            },
                        ],
                    },
                ),
            ],
            alive,
        })),
    };
    f.send(61.0, underway(true));
    f.st.focus = Panel::Verify;
    // the one-panel layout shows it whole
    let out = render(&f.st, &Theme::dark(), 100, 30);
    for needle in [
        "● running, BLUE → GREEN",
        "tables 2 / 30 · rows 1.2 M of about 4.5 M (27 %)",
        // its own 900 000 rows in 5 s, not the 300 000 it took over
        "180.0 k rows/s · about 18.3 s left",
        "now: [billing] public.invoices",
        // the hot ranges where the writes go, a control character in a key escaped
        r#"▲ public.b  hot: 3 row(s) changed at every read, unverified: key 42; keys ((7, "a\tb"), (7, z)]"#,
        "✓ public.a  120.0 k rows",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    f.send(62.0, underway(false));
    let out = render(&f.st, &Theme::dark(), 100, 30);
    assert!(
        out.contains("▲ stopped part-way, BLUE → GREEN: run verify again to resume it"),
        "{out}"
    );
    assert!(!out.contains("rows/s"), "a stopped run has no rate: {out}");
}
