//! Drawing the dashboard: a pure function of the state and the theme (no I/O), so that panels
//! and dialogs are snapshot-tested on ratatui's `TestBackend`.

mod dialog;
mod header;
mod panels;
pub mod svg;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::app::keys::Command;
use crate::app::next_step::{Tone, next_step};
use crate::app::{Overlay, Panel, State};
pub use theme::Theme;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// Below this width one panel shows at a time, chosen with Tab or 1–9.
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
    header::draw(st, th, f, header);
    if area.width >= WIDE {
        draw_wide(st, th, f, body);
    } else {
        let [tabs, one] = Layout::vertical([Constraint::Length(1), Constraint::Min(4)]).areas(body);
        f.render_widget(Paragraph::new(tab_bar(st, th, tabs.width)), tabs);
        panels::draw(st, th, f, st.focus, one);
    }
    draw_footer(st, th, f, footer);
    match &st.overlay {
        Some(Overlay::Dialog(d)) => dialog::dialog(st, th, f, d, area),
        Some(Overlay::Help) => help(st, th, f, area),
        Some(Overlay::ConfirmQuit) => notice(th, f, area, "Quit?", &confirm_quit_text(st)),
        Some(Overlay::Notice(n)) => notice(th, f, area, "Notice", n),
        None => {}
    }
}

/// The tabs of the one-panel layout: full titles when they fit, else the others shortened, then
/// numbers only; the selected tab keeps its full title, so it is never the one cut off.
fn tab_bar(st: &State, th: &Theme, width: u16) -> Line<'static> {
    let label = |i: usize, p: Panel, level: u8| match (p == st.focus, level) {
        (true, _) | (false, 0) => format!(" {}:{} ", i + 1, p.title()),
        (false, 1) => format!(" {}:{} ", i + 1, p.short()),
        (false, _) => format!(" {} ", i + 1),
    };
    let level = (0..3u8)
        .find(|l| {
            let w: usize = Panel::ALL
                .iter()
                .enumerate()
                .map(|(i, p)| label(i, *p, *l).chars().count())
                .sum();
            w <= usize::from(width)
        })
        .unwrap_or(2);
    Line::from(
        Panel::ALL
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let style = if *p == st.focus {
                    th.selected.add_modifier(Modifier::BOLD)
                } else {
                    th.muted
                };
                Span::styled(label(i, *p, level), style)
            })
            .collect::<Vec<_>>(),
    )
}

/// Every panel at once: Replication, Traffic (with a router), Instances and Redo on the left;
/// Checks, Verify, Schema diff, Sequences and Journal on the right.
fn draw_wide(st: &State, th: &Theme, f: &mut Frame, body: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    // The Traffic panel takes room only when a router is configured.
    let l = if st.traffic.is_some() {
        Layout::vertical([
            Constraint::Percentage(34),
            Constraint::Percentage(22),
            Constraint::Percentage(26),
            Constraint::Percentage(18),
        ])
        .split(left)
    } else {
        Layout::vertical([
            Constraint::Percentage(40),
            Constraint::Percentage(35),
            Constraint::Percentage(25),
        ])
        .split(left)
    };
    let r = Layout::vertical([
        Constraint::Percentage(22),
        Constraint::Percentage(18),
        Constraint::Percentage(16),
        Constraint::Percentage(16),
        Constraint::Percentage(28),
    ])
    .split(right);
    panels::draw(st, th, f, Panel::Replication, l[0]);
    let rest = if st.traffic.is_some() {
        panels::draw(st, th, f, Panel::Traffic, l[1]);
        &l[2..]
    } else {
        &l[1..]
    };
    panels::draw(st, th, f, Panel::Instances, rest[0]);
    panels::draw(st, th, f, Panel::Redo, rest[1]);
    panels::draw(st, th, f, Panel::Checks, r[0]);
    panels::draw(st, th, f, Panel::Verify, r[1]);
    panels::draw(st, th, f, Panel::Schema, r[2]);
    panels::draw(st, th, f, Panel::Sequences, r[3]);
    panels::draw(st, th, f, Panel::Journal, r[4]);
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
    let k = |c: Command| st.keymap.shown_key(c);
    let rate = format_rate(st);
    let hints: Vec<(String, &str)> = match &st.overlay {
        Some(Overlay::Dialog(d)) if d.wants_typing() => vec![
            ("a-z".into(), "type the name"),
            ("Esc".into(), "cancel"),
            ("↑/↓".into(), "scroll"),
        ],
        Some(Overlay::Dialog(_) | Overlay::ConfirmQuit) => vec![
            (st.keymap.keys(Command::Confirm), "confirm"),
            (st.keymap.keys(Command::Cancel), "cancel"),
            (st.keymap.pair(Command::Down, Command::Up), "scroll"),
        ],
        Some(_) => vec![("any key".into(), "close")],
        None if area.width < WIDE => vec![(k(Command::Help), "keys"), (k(Command::Quit), "quit")],
        None => vec![
            (k(Command::Help), "keys"),
            (st.keymap.pair(Command::Faster, Command::Slower), &rate),
            (k(Command::Quit), "quit"),
        ],
    };
    let mut keys = Vec::new();
    for (key, what) in hints {
        keys.push(Span::styled(format!(" {key} "), th.selected));
        keys.push(Span::styled(format!(" {what} "), th.muted));
    }
    let keys = Line::from(keys);
    if st.overlay.is_some() {
        f.render_widget(Paragraph::new(keys), area);
        return;
    }
    // The next step takes what the keys leave; the keys (quit among them) are always shown.
    let kw = u16::try_from(keys.width())
        .unwrap_or(u16::MAX)
        .min(area.width);
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(kw)]).areas(area);
    let n = next_step(st);
    let style = match n.tone {
        Tone::Ready => th.ok,
        Tone::Waiting => th.warn,
        Tone::Alarm => th.alarm,
    };
    let text = crate::text::fit(&format!(" ▶ {}", n.text), usize::from(left.width));
    f.render_widget(Paragraph::new(Line::styled(text, style)), left);
    f.render_widget(Paragraph::new(keys), right);
}

/// The refresh interval as the footer says it: `every 0.25 s`, `every 16 s`, `every 1 min`.
fn format_rate(st: &State) -> String {
    let ms = st.interval.as_millis();
    if ms < 1000 {
        format!(
            "every {} s",
            f64::from(u32::try_from(ms).unwrap_or(0)) / 1000.0
        )
    } else if ms < 60_000 {
        format!("every {} s", ms / 1000)
    } else {
        format!("every {} min", ms / 60_000)
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

/// A box as tall as its text needs (wrapped at its width), not a fixed share of the screen.
fn notice(th: &Theme, f: &mut Frame, area: Rect, title: &str, text: &str) {
    let w = (area.width * 60 / 100).max(40).min(area.width);
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let rows: usize = text
        .lines()
        .map(|l| l.chars().count().div_ceil(inner).max(1))
        .sum();
    // a word-wrap may need a row more than the character count says
    let h = u16::try_from(rows + 3).unwrap_or(u16::MAX);
    let r = centered(area, 0, 0, w, h);
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
            format!("{:>10}  ", "1–8"),
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

#[cfg(test)]
mod rate_tests {
    #[test]
    fn every_refresh_interval_is_said_as_it_is() {
        let mut st = crate::app::State::new(
            crate::domain::testdata::names(),
            vec![],
            false,
            std::time::Duration::from_millis(250),
            false,
            crate::app::keys::Keymap::default(),
        );
        let mut seen = Vec::new();
        for ms in [250u64, 500, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000] {
            st.interval = std::time::Duration::from_millis(ms);
            seen.push(super::format_rate(&st));
        }
        assert_eq!(
            seen,
            [
                "every 0.25 s",
                "every 0.5 s",
                "every 1 s",
                "every 2 s",
                "every 4 s",
                "every 8 s",
                "every 16 s",
                "every 32 s",
                "every 1 min"
            ]
        );
    }
}
