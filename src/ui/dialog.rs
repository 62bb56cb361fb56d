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
fn dialog_footer(st: &State, th: &Theme, d: &Dialog, refused: bool, name: &str) -> Line<'static> {
    let km = &st.keymap;
    let cancel = km.keys(Command::Cancel);
    match (&d.plan, refused) {
        (None, _) => Line::styled(format!("{cancel} cancel"), th.muted),
        (Some(_), true) => Line::from(vec![
            Span::styled(" REFUSED ", th.alarm),
            Span::styled(
                format!("  the guards marked ✗ must hold first · {cancel} closes"),
                th.text,
            ),
        ]),
        (Some(_), false) => Line::from(vec![
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
        ]),
    }
}

pub fn dialog(st: &State, th: &Theme, f: &mut Frame, d: &Dialog, area: Rect) {
    let r = centered(area, 90, 85, 58, 14);
    f.render_widget(Clear, r);
    let name = d.action.name();
    let mut lines: Vec<Line> = Vec::new();
    let mut refused = true;
    match &d.plan {
        None => lines.push(Line::styled(
            "checking the guards on fresh data…",
            th.accent.add_modifier(Modifier::BOLD),
        )),
        Some(Err(e)) => lines.push(err_line(th, None, e)),
        Some(Ok(p)) => {
            refused = p.refused();
            lines.push(Line::styled(
                "guards (re-checked when you confirm):",
                th.muted,
            ));
            for g in &p.guards {
                lines.push(Line::from(vec![
                    mark(th, g.ok, true),
                    Span::styled(format!("{} ", g.name), th.accent),
                    Span::styled(g.detail.clone(), th.text),
                ]));
            }
            if let Some(m) = p.mode {
                lines.push(Line::styled(format!("mode: {m:?}"), th.muted));
            }
            for n in &p.notes {
                lines.push(Line::styled(format!("note: {n}"), th.warn));
            }
            if !refused {
                lines.push(Line::raw(""));
                lines.push(Line::styled("steps and SQL, in order:", th.muted));
                for (i, s) in p.steps.iter().enumerate() {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:>2}. ", i + 1), th.muted),
                        Span::styled(format!("[{}] ", s.side.upper()), side_style(th, s.side)),
                        Span::styled(s.title.clone(), th.text.add_modifier(Modifier::BOLD)),
                    ]));
                    for q in &s.sql {
                        lines.push(Line::styled(format!("      {q}"), th.accent));
                    }
                }
            }
        }
    }
    let footer = dialog_footer(st, th, d, refused, &name);
    let title = format!(
        " {} — {} ",
        name.to_uppercase(),
        if st.write { "confirm" } else { "read-only" }
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
