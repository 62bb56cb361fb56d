//! The panels, one file each. Every panel's title carries the age of its data, marked stale
//! after three missed intervals, and a poller's error shows inside the panel.

mod checks;
mod instances;
mod journal;
mod redo;
mod replication;
mod schema;
mod sequences;
mod traffic;
mod verify;

use std::time::{Duration, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::Theme;
use crate::app::{Panel, State};
use crate::domain::observed::Side;
use crate::domain::polled::Polled;

pub(super) fn age_label<T>(p: &Polled<T>, now: SystemTime, interval: Duration) -> (String, bool) {
    match p.age(now) {
        None => ("no data yet".into(), true),
        Some(a) => {
            let stale = p.is_stale(now, interval);
            let s = if a.as_secs() >= 120 {
                format!("{} min", a.as_secs() / 60)
            } else {
                format!("{} s", a.as_secs())
            };
            (if stale { format!("STALE {s}") } else { s }, stale)
        }
    }
}

pub(super) fn block<'a>(
    st: &State,
    th: &Theme,
    panel: Panel,
    age: Option<(String, bool)>,
) -> Block<'a> {
    let focused = st.focus == panel;
    let mut title = vec![Span::styled(
        format!(" {}:{} ", panel.index() + 1, panel.title()),
        if focused {
            th.title.add_modifier(Modifier::REVERSED)
        } else {
            th.title
        },
    )];
    if let Some((a, stale)) = age {
        title.push(Span::styled(
            format!(" {}{a} ", if stale { "▲ " } else { "" }),
            if stale {
                th.warn.add_modifier(Modifier::BOLD)
            } else {
                th.muted
            },
        ));
    }
    Block::bordered()
        .title(Line::from(title))
        .border_style(if focused { th.border_focus } else { th.border })
}

pub(super) fn oldest_age(st: &State) -> (String, bool) {
    let b = age_label(&st.blue.live, st.now, st.interval);
    let g = age_label(&st.green.live, st.now, st.interval);
    if b.1 { b } else { g }
}

pub fn draw(st: &State, th: &Theme, f: &mut Frame, panel: Panel, area: Rect) {
    let scroll = st.scroll[panel.index()];
    match panel {
        Panel::Replication => replication::replication(st, th, f, area),
        Panel::Instances => instances::instances(st, th, f, area),
        Panel::Redo => text_panel(
            st,
            th,
            f,
            area,
            panel,
            redo::redo(st, th, usize::from(area.width.saturating_sub(2))),
            Some(age_label(&st.redo, st.now, crate::app::REDO_EVERY)),
            0,
        ),
        Panel::Checks => checks_panel(st, th, f, area, scroll),
        Panel::Schema => {
            let age = age_label(&st.blue.catalog, st.now, st.inventory_interval());
            text_panel(
                st,
                th,
                f,
                area,
                panel,
                schema::schema(st, th),
                Some(age),
                scroll,
            );
        }
        Panel::Sequences => {
            let age = age_label(&st.blue.inventory, st.now, st.inventory_interval());
            text_panel(
                st,
                th,
                f,
                area,
                panel,
                sequences::sequences(st, th),
                Some(age),
                scroll,
            );
        }
        Panel::Traffic => {
            let age = st
                .traffic
                .as_ref()
                .map(|t| age_label(&t.reading, st.now, st.interval));
            text_panel(
                st,
                th,
                f,
                area,
                panel,
                traffic::traffic(st, th),
                age,
                scroll,
            );
        }
        Panel::Verify => {
            let lines = verify::verify(st, th, usize::from(area.width.saturating_sub(2)));
            text_panel(st, th, f, area, panel, lines, None, scroll);
        }
        Panel::Journal => {
            let b = block(st, th, panel, None);
            let inner = b.inner(area);
            let lines = journal::journal(st, th, usize::from(inner.width));
            // The tail is followed; the scroll is rows up from it (k goes back, j comes
            // down to the tail again), up to the first entry.
            let last_top = u16::try_from(lines.len().saturating_sub(usize::from(inner.height)))
                .unwrap_or(u16::MAX);
            st.journal_max_scroll.set(last_top);
            let top = last_top - scroll.min(last_top);
            f.render_widget(Paragraph::new(lines).scroll((top, 0)).block(b), area);
        }
    }
}

/// Checks: the summary kept in view above the scrolled list.
fn checks_panel(st: &State, th: &Theme, f: &mut Frame, area: Rect, scroll: u16) {
    let b = block(st, th, Panel::Checks, Some(oldest_age(st)));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let (summary, lines) = checks::checks(st, th, usize::from(inner.width));
    let [top, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(summary), top);
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), rest);
}

#[allow(clippy::too_many_arguments)]
fn text_panel(
    st: &State,
    th: &Theme,
    f: &mut Frame,
    area: Rect,
    panel: Panel,
    lines: Vec<Line<'static>>,
    age: Option<(String, bool)>,
    scroll: u16,
) {
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block(st, th, panel, age)),
        area,
    );
}

pub(super) fn kv(th: &Theme, k: &str, v: String) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{k} "), th.muted),
        Span::styled(v, th.text),
    ]
}

pub(super) fn err_line(th: &Theme, side: Option<Side>, e: &str) -> Line<'static> {
    let who = side.map(|s| format!("{}: ", s.upper())).unwrap_or_default();
    Line::from(vec![
        Span::styled("✗ ", th.critical),
        Span::styled(format!("{who}{e}"), th.critical),
    ])
}
