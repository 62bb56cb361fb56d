//! Checks: failures first, each with its fix.

use ratatui::text::{Line, Span};

use crate::app::State;
use crate::domain::checks::Severity;
use crate::text::wrap;
use crate::ui::{Theme, mark};

/// The summary (kept in view above the scrolled list), then each check, its text wrapped under
/// itself and its fix under the arrow.
pub(super) fn checks(st: &State, th: &Theme, width: usize) -> (Line<'static>, Vec<Line<'static>>) {
    if st.checks.is_empty() {
        return (
            Line::styled("waiting for both sides…", th.muted),
            Vec::new(),
        );
    }
    let failing = st.checks.iter().filter(|c| !c.ok).count();
    let summary = Line::styled(
        format!("{failing} of {} need attention", st.checks.len()),
        if failing == 0 { th.ok } else { th.warn },
    );
    let mut lines = Vec::new();
    if let Some(v) = &st.verify_last() {
        let text = format!("verify {}", v.describe());
        let clean = v.mismatched == 0 && v.hot == 0 && v.skipped == 0;
        for (i, row) in wrap(&text, width.saturating_sub(2)).into_iter().enumerate() {
            let lead = if i == 0 {
                mark(th, clean, v.mismatched > 0)
            } else {
                Span::raw("  ")
            };
            lines.push(Line::from(vec![lead, Span::styled(row, th.text)]));
        }
    }
    for c in &st.checks {
        let text = format!("{} {}", c.id, c.finding);
        for (i, row) in wrap(&text, width.saturating_sub(2)).into_iter().enumerate() {
            if i == 0 {
                let (id, rest) = row.split_at(row.len().min(c.id.len()));
                lines.push(Line::from(vec![
                    mark(th, c.ok, c.severity == Severity::Blocking),
                    Span::styled(id.to_string(), th.accent),
                    Span::styled(rest.to_string(), th.text),
                ]));
            } else {
                lines.push(Line::from(vec![
                    Span::raw("  "),
                    Span::styled(row, th.text),
                ]));
            }
        }
        if !c.ok && !c.fix.is_empty() {
            for (i, row) in wrap(&c.fix, width.saturating_sub(5))
                .into_iter()
                .enumerate()
            {
                let lead = if i == 0 { "   → " } else { "     " };
                lines.push(Line::styled(format!("{lead}{row}"), th.muted));
            }
        }
    }
    (summary, lines)
}
