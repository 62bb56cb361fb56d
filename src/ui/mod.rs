//! Drawing the dashboard: a pure function of the state and the theme (no I/O), so that panels
//! and dialogs are snapshot-tested on ratatui's `TestBackend`.

mod panels;
pub mod svg;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::keys::Command;
use crate::app::{Overlay, Panel, State};
use crate::domain::guards::Action;
use crate::domain::phase::Alarm;
pub use theme::Theme;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// Below this width one panel shows at a time, chosen with Tab or 1–7.
pub const WIDE: u16 = 120;

pub fn draw(st: &State, th: &Theme, f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = vec![
            Line::styled("terminal too small", th.warn.add_modifier(Modifier::BOLD)),
            Line::raw(format!(
                "need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
                area.width, area.height
            )),
            Line::styled("q quits", th.muted),
        ];
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(st, th, f, header);
    if area.width >= WIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(body);
        let l = Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(35),
            Constraint::Percentage(25),
        ])
        .split(left);
        let r = Layout::vertical([
            Constraint::Percentage(25),
            Constraint::Percentage(20),
            Constraint::Percentage(20),
            Constraint::Percentage(35),
        ])
        .split(right);
        panels::draw(st, th, f, Panel::Replication, l[0]);
        panels::draw(st, th, f, Panel::Instances, l[1]);
        panels::draw(st, th, f, Panel::Redo, l[2]);
        panels::draw(st, th, f, Panel::Checks, r[0]);
        panels::draw(st, th, f, Panel::Schema, r[1]);
        panels::draw(st, th, f, Panel::Sequences, r[2]);
        panels::draw(st, th, f, Panel::Journal, r[3]);
    } else {
        let [tabs, one] = Layout::vertical([Constraint::Length(1), Constraint::Min(4)]).areas(body);
        let mut spans = Vec::new();
        for (i, p) in Panel::ALL.iter().enumerate() {
            let label = format!(" {}:{} ", i + 1, p.title());
            spans.push(if *p == st.focus {
                Span::styled(label, th.selected.add_modifier(Modifier::BOLD))
            } else {
                Span::styled(label, th.muted)
            });
        }
        f.render_widget(Paragraph::new(Line::from(spans)), tabs);
        panels::draw(st, th, f, st.focus, one);
    }
    draw_footer(st, th, f, footer);
    match &st.overlay {
        Some(Overlay::Dialog(d)) => panels::dialog(st, th, f, d, area),
        Some(Overlay::Help) => help(st, th, f, area),
        Some(Overlay::ConfirmQuit) => notice(th, f, area, "Quit?", &confirm_quit_text(st)),
        Some(Overlay::Notice(n)) => notice(th, f, area, "Notice", n),
        None => {}
    }
}

fn fmt_clock(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!("{:02}:{:02}:{:02}Z", t.hour(), t.minute(), t.second())
}

#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
fn draw_header(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let ph = &st.phase;
    let writable = if ph.writable.is_empty() {
        Span::styled("none", th.warn.add_modifier(Modifier::BOLD))
    } else {
        let names: Vec<&str> = ph.writable.iter().map(|s| s.upper()).collect();
        Span::styled(names.join("+"), th.ok.add_modifier(Modifier::BOLD))
    };
    let lag = match (st.lag.lag_bytes(), st.lag.lag_time()) {
        (Some(b), Some(t)) => format!("{} ({:.1} s)", crate::format::bytes(b), t.as_secs_f64()),
        (Some(b), None) => crate::format::bytes(b),
        _ => "–".into(),
    };
    let badge = match (st.write, area.width < WIDE) {
        (true, _) => Span::styled(" WRITE ", th.badge_write),
        (false, false) => Span::styled(" READ-ONLY ", th.badge_read_only),
        (false, true) => Span::styled(" RO ", th.badge_read_only),
    };
    let narrow = area.width < WIDE;
    let line1 = Line::from(vec![
        Span::styled(if narrow { "" } else { " pgcutover " }, th.title),
        Span::styled(if narrow { " " } else { "│ phase " }, th.muted),
        Span::styled(
            ph.phase.label().to_uppercase(),
            th.accent.add_modifier(Modifier::BOLD),
        ),
        Span::styled(" │ ", th.muted),
        Span::styled(
            ph.direction
                .map_or("no direction", super::domain::phase::Direction::label),
            th.text,
        ),
        Span::styled(if narrow { " w:" } else { " │ writable " }, th.muted),
        writable,
        Span::styled(if narrow { " lag " } else { " │ lag " }, th.muted),
        Span::styled(lag, th.text),
        Span::raw(" "),
        badge,
        Span::raw(" "),
        Span::styled(fmt_clock(st.now), th.muted),
    ]);
    let mut line2: Vec<Span> = Vec::new();
    if let Some(w) = st.window() {
        line2.push(Span::styled(
            format!(
                " ⏱ WINDOW {:>7.3} s — {} fenced, writes wait ",
                w.as_secs_f64(),
                st.source().upper()
            ),
            th.window_timer,
        ));
        line2.push(Span::raw(" "));
    } else if let Some(r) = &st.running {
        line2.push(Span::styled(
            format!(
                " ▶ {} running {:.1} s ",
                r.action.name(),
                st.now_i.saturating_duration_since(r.started).as_secs_f64()
            ),
            th.accent.add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        line2.push(Span::raw(" "));
    }
    for a in &ph.alarms {
        let style = match a {
            Alarm::SplitBrain | Alarm::Fenced => th.alarm,
            _ => th.warn.add_modifier(Modifier::BOLD),
        };
        line2.push(Span::styled(format!(" ✗ {} ", a.message()), style));
        line2.push(Span::raw(" "));
    }
    let stale: Vec<&str> = [
        crate::domain::observed::Side::Blue,
        crate::domain::observed::Side::Green,
    ]
    .into_iter()
    .filter(|s| st.side(*s).live.is_stale(st.now, st.interval))
    .map(super::domain::observed::Side::upper)
    .collect();
    if !stale.is_empty() {
        line2.push(Span::styled(
            format!(" ▲ stale: {} ", stale.join(", ")),
            th.warn.add_modifier(Modifier::BOLD),
        ));
    }
    if st.frozen {
        line2.push(Span::styled(" ❄ FROZEN (Space) ", th.selected));
    }
    if line2.is_empty() {
        line2.push(Span::styled(" ✓ no alarms", th.ok));
        if let Some(w) = st.last_window_ms {
            line2.push(Span::styled(format!("   last window {w:.1} ms"), th.muted));
        }
    }
    let p = Paragraph::new(vec![line1, Line::from(line2)]).block(
        Block::default()
            .borders(ratatui::widgets::Borders::BOTTOM)
            .border_style(th.border),
    );
    f.render_widget(p, area);
}

fn confirm_quit_text(st: &State) -> String {
    format!(
        "{} is running; quitting stops watching it (the engine stops with the process: rerun the action to \
         finish it). {} quits, {} stays.",
        st.running
            .as_ref()
            .map(|r| r.action.name())
            .unwrap_or_default(),
        st.keymap.keys(Command::Confirm),
        st.keymap.keys(Command::Cancel),
    )
}

fn draw_footer(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let k = |c: Command| st.keymap.first(c);
    let hints: Vec<(String, &str)> = match &st.overlay {
        Some(Overlay::Dialog(_) | Overlay::ConfirmQuit) => vec![
            (st.keymap.keys(Command::Confirm), "confirm"),
            (st.keymap.keys(Command::Cancel), "cancel"),
            (st.keymap.pair(Command::Down, Command::Up), "scroll"),
        ],
        Some(_) => vec![("any key".into(), "close")],
        None => vec![
            (k(Command::Run(Action::Cutover)), "cutover"),
            (k(Command::Run(Action::Rollback)), "rollback"),
            (
                format!(
                    "{}{}{}{}",
                    k(Command::Run(Action::Prepare)),
                    k(Command::Run(Action::Subscribe)),
                    k(Command::Run(Action::Start)),
                    k(Command::Run(Action::Finalize))
                ),
                "setup",
            ),
            (k(Command::Help), "help"),
            (format!("{}/1-7", k(Command::NextPanel)), "panel"),
            (k(Command::Freeze), "freeze"),
            (
                st.keymap.pair(Command::Faster, Command::Slower),
                format_rate(st),
            ),
            (k(Command::Quit), "quit"),
        ],
    };
    let mut spans = Vec::new();
    for (key, what) in hints {
        spans.push(Span::styled(format!(" {key} "), th.selected));
        spans.push(Span::styled(format!(" {what} "), th.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn format_rate(st: &State) -> &'static str {
    match st.interval.as_millis() {
        0..=250 => "every 0.25 s",
        251..=500 => "every 0.5 s",
        501..=1000 => "every 1 s",
        1001..=2000 => "every 2 s",
        2001..=4000 => "every 4 s",
        4001..=8000 => "every 8 s",
        _ => "slow",
    }
}

/// A centred rectangle of `pct_w`% × `pct_h`% of `area`, at least `min_w` × `min_h`.
pub fn centered(area: Rect, pct_w: u16, pct_h: u16, min_w: u16, min_h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(min_w).min(area.width);
    let h = (area.height * pct_h / 100).max(min_h).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn notice(th: &Theme, f: &mut Frame, area: Rect, title: &str, text: &str) {
    let r = centered(area, 60, 20, 40, 6);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text.to_string())
            .wrap(Wrap { trim: true })
            .block(
                Block::bordered()
                    .title(Span::styled(format!(" {title} "), th.title))
                    .border_style(th.border_focus),
            )
            .style(th.text),
        r,
    );
}

fn help(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let r = centered(area, 70, 80, 56, 14);
    f.render_widget(Clear, r);
    let mut lines = vec![Line::styled(
        "Actions open a dialog with the guards and the SQL; nothing runs until you confirm.",
        th.muted,
    )];
    for (keys, what) in st.keymap.help() {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{keys:>10}  "),
                th.accent.add_modifier(Modifier::BOLD),
            ),
            Span::styled(what, th.text),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(
            format!("{:>10}  ", "1–7"),
            th.accent.add_modifier(Modifier::BOLD),
        ),
        Span::styled("jump to a panel", th.text),
    ]));
    lines.push(Line::from(vec![
        Span::styled(
            format!("{:>10}  ", "Ctrl-C"),
            th.accent.add_modifier(Modifier::BOLD),
        ),
        Span::styled("quit (asks first while an action runs)", th.text),
    ]));
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(Span::styled(" Help — any key closes ", th.title))
                .border_style(th.border_focus),
        ),
        r,
    );
}

/// Styles used by several panels.
pub(crate) fn mark(th: &Theme, ok: bool, blocking: bool) -> Span<'static> {
    match (ok, blocking) {
        (true, _) => Span::styled("✓ ", th.ok),
        (false, true) => Span::styled("✗ ", th.critical),
        (false, false) => Span::styled("▲ ", th.warn),
    }
}

pub(crate) fn side_style(th: &Theme, s: crate::domain::observed::Side) -> Style {
    match s {
        crate::domain::observed::Side::Blue => th.blue_side,
        crate::domain::observed::Side::Green => th.green_side,
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss)] // small synthetic figures
mod snapshot_tests;
