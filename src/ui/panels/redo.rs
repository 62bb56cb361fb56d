//! Redo: GREEN's `redo done at` line and the origin LSN it gives.

use ratatui::text::{Line, Span};

use super::{err_line, kv};
use crate::app::State;
use crate::ui::Theme;

/// The redo line found, the origin it gives and the cross-check; the log line is wrapped under a
/// margin so it reads as one quoted line.
pub(super) fn redo(st: &State, th: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match (&st.redo.value, &st.redo.last_error) {
        (Some(f), _) => {
            lines.push(Line::from(kv(th, "source", f.source.clone())));
            if let Some(t) = f.line.time {
                lines.push(Line::from(kv(
                    th,
                    "time",
                    t.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                )));
            }
            lines.push(Line::styled(format!("line {}:", f.line.line_no), th.muted));
            for row in crate::text::wrap(&f.line.text, width.saturating_sub(2)) {
                lines.push(Line::from(vec![
                    Span::styled("│ ", th.muted),
                    Span::styled(row, th.text),
                ]));
            }
            let mut sp = kv(th, "origin", f.line.origin_lsn.to_string());
            sp.push(Span::styled(format!("  ({})", f.line.rule()), th.muted));
            lines.push(Line::from(sp));
            if let Some(verdict) = crate::domain::redo::verdict_now(
                f.line.origin_lsn,
                st.phase.phase,
                &st.names.slot,
                st.blue.live.value.as_ref(),
            ) {
                match verdict {
                    Ok(()) => lines.push(Line::styled(
                        "✓ cross-check: between the slot's confirmed_flush_lsn and BLUE's LSN",
                        th.ok,
                    )),
                    Err(e) => lines.push(Line::styled(format!("✗ cross-check: {e}"), th.critical)),
                }
            }
        }
        (None, Some(e)) => lines.push(err_line(th, None, &e.message)),
        (None, None) => lines.push(Line::styled(
            "no redo source read yet ([redo] log_file, or GREEN's RDS logs)",
            th.muted,
        )),
    }
    lines
}
