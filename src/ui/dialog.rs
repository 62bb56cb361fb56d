//! The confirm dialog: the action's guards and plan, then its progress and outcome.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::panels::err_line;
use super::{Theme, centered, mark, side_style};
use crate::app::keys::Command;
use crate::app::{Dialog, State};

/// The dialog's last line: what the keys do now, from the keymap.
fn dialog_footer(st: &State, th: &Theme, d: &Dialog, name: &str) -> Line<'static> {
    let km = &st.keymap;
    let cancel = km.keys(Command::Cancel);
    let refused = matches!(&d.plan, Some(Ok(p)) if p.refused()) || matches!(d.plan, Some(Err(_)));
    if d.plan.is_none() {
        return Line::styled(format!("{cancel} cancel"), th.muted);
    }
    if refused {
        return Line::from(vec![
            Span::styled(" REFUSED ", th.alarm),
            Span::styled(
                format!("  the guards marked ✗ must hold first · {cancel} closes"),
                th.text,
            ),
        ]);
    }
    if d.wants_typing() {
        let complete = d.typed == d.word();
        return Line::from(vec![
            Span::styled(format!(" type {name} then Enter: "), th.badge_write),
            Span::styled(
                format!(" {}▏", crate::text::one_line(&d.typed)),
                if complete { th.ok } else { th.accent },
            ),
            Span::styled("   Esc cancel   ↑/↓ scroll", th.muted),
        ]);
    }
    Line::from(vec![
        Span::styled(
            format!(" {}: run {name} ", km.keys(Command::Confirm)),
            th.badge_write,
        ),
        Span::styled(
            format!(
                "   {cancel}: cancel   {}: scroll",
                km.pair(Command::Down, Command::Up)
            ),
            th.muted,
        ),
    ])
}

/// A guard: its name in words, then its detail, without saying the name twice when the
/// detail already starts with it (`phase is cut over`, not `phase phase is cut over`).
fn guard_line(th: &Theme, g: &crate::domain::guards::Guard) -> Line<'static> {
    let words = g.name.replace('_', " ");
    let mut spans = vec![mark(th, g.ok, true)];
    if !g.detail.starts_with(&words) {
        spans.push(Span::styled(format!("{words}: "), th.accent));
    }
    spans.push(Span::styled(g.detail.clone(), th.text));
    Line::from(spans)
}

/// A statement cut into lines of `width`, each continuation indented under the first, so a
/// long `CREATE SUBSCRIPTION … CONNECTION '…'` reads as one statement.
fn sql_lines(th: &Theme, q: &str, width: usize) -> Vec<Line<'static>> {
    const FIRST: &str = "      ";
    const NEXT: &str = "          ";
    let room = |indent: &str| width.saturating_sub(indent.len()).max(20);
    crate::text::wrap_hanging(q, room(FIRST), room(NEXT))
        .into_iter()
        .enumerate()
        .filter(|(_, row)| !row.is_empty())
        .map(|(i, row)| {
            let indent = if i == 0 { FIRST } else { NEXT };
            Line::styled(format!("{indent}{}", row.trim_end()), th.accent)
        })
        .collect()
}

/// The plan's steps, numbered, each with its side once and its statements.
fn step_lines(th: &Theme, p: &crate::engine::Plan, width: usize, lines: &mut Vec<Line<'static>>) {
    for (i, s) in p.steps.iter().enumerate() {
        let mut spans = vec![Span::styled(format!("{:>2}. ", i + 1), th.muted)];
        // The side once: most titles name it already.
        if !s.title.contains(s.side.upper()) {
            spans.push(Span::styled(
                format!("{}: ", s.side.upper()),
                side_style(th, s.side),
            ));
        }
        spans.push(Span::styled(
            s.title.clone(),
            th.text.add_modifier(Modifier::BOLD),
        ));
        lines.push(Line::from(spans));
        for q in &s.sql {
            lines.extend(sql_lines(th, q, width));
        }
    }
}

pub fn dialog(st: &State, th: &Theme, f: &mut Frame, d: &Dialog, area: Rect) {
    let r = centered(area, 90, 85, 58, 14);
    f.render_widget(Clear, r);
    let width = usize::from(r.width.saturating_sub(2));
    let name = d.action.name();
    let mut lines: Vec<Line> = Vec::new();
    let mut state_word = "plan";
    match &d.plan {
        None => {
            state_word = "checking";
            lines.push(Line::styled(
                "checking the guards on fresh data…",
                th.accent.add_modifier(Modifier::BOLD),
            ));
        }
        Some(Err(e)) => {
            state_word = "refused";
            lines.push(err_line(th, None, e));
        }
        Some(Ok(p)) => {
            if p.refused() {
                state_word = "refused";
            }
            lines.push(Line::styled(
                "guards (re-checked when you confirm):",
                th.muted,
            ));
            lines.extend(p.guards.iter().map(|g| guard_line(th, g)));
            if let Some(m) = p.mode {
                lines.push(Line::from(vec![
                    Span::styled("what runs: ", th.muted),
                    Span::styled(m.words(), th.text),
                ]));
            }
            if let Some(x) = crate::app::next_step::app_experience(st, d.action) {
                lines.push(Line::styled(x, th.text.add_modifier(Modifier::BOLD)));
            }
            for n in &p.notes {
                lines.push(Line::styled(format!("note: {n}"), th.warn));
            }
            if !p.refused() {
                lines.push(Line::raw(""));
                lines.push(Line::styled("steps and SQL, in order:", th.muted));
                step_lines(th, p, width, &mut lines);
            }
        }
    }
    let footer = dialog_footer(st, th, d, &name);
    let title = format!(
        " {} — {} ",
        name.to_uppercase(),
        if st.write { state_word } else { "read-only" }
    );
    let b = Block::bordered()
        .title(Span::styled(title, th.title))
        .border_style(th.border_focus);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let [body, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((d.scroll, 0)),
        body,
    );
    f.render_widget(Paragraph::new(footer), foot);
}
