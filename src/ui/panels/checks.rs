//! Checks: failures first, each with its fix.

use ratatui::text::{Line, Span};

use crate::app::State;
use crate::domain::checks::Severity;
use crate::ui::{Theme, mark};

pub(super) fn checks(st: &State, th: &Theme) -> Vec<Line<'static>> {
    if st.checks.is_empty() {
        return vec![Line::styled("waiting for both sides…", th.muted)];
    }
    let failing = st.checks.iter().filter(|c| !c.ok).count();
    let mut lines = vec![Line::styled(
        format!("{failing} of {} need attention", st.checks.len()),
        if failing == 0 { th.ok } else { th.warn },
    )];
    for c in &st.checks {
        let mut sp = vec![mark(th, c.ok, c.severity == Severity::Blocking)];
        sp.push(Span::styled(format!("{} ", c.id), th.accent));
        sp.push(Span::styled(c.finding.clone(), th.text));
        lines.push(Line::from(sp));
        if !c.ok && !c.fix.is_empty() {
            lines.push(Line::styled(format!("   → {}", c.fix), th.muted));
        }
    }
    lines
}
