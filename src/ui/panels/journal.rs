//! Journal: the actions' steps and statements as they run.

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::app::{JournalKind, State};
use crate::ui::Theme;

/// The entries, each wrapped to `width` under its text (the outcome line is the one that
/// matters and is often the longest), one row per line of the result.
pub(super) fn journal(st: &State, th: &Theme, width: usize) -> Vec<Line<'static>> {
    if st.journal.is_empty() {
        return vec![Line::styled(
            "no action yet this session; steps appear here as they run",
            th.muted,
        )];
    }
    // `hh:mm:ss ▶ `: continuation rows start under the text.
    const LEAD: usize = 11;
    let mut out = Vec::new();
    for j in &st.journal {
        let t = time::OffsetDateTime::from(j.at);
        let stamp = format!("{:02}:{:02}:{:02} ", t.hour(), t.minute(), t.second());
        let (sym, style) = match j.kind {
            JournalKind::Started => ("▶ ", th.accent),
            JournalKind::Finished => ("✓ ", th.ok),
            JournalKind::Note => ("· ", th.muted),
            JournalKind::Outcome { ok: true } => ("■ ", th.ok.add_modifier(Modifier::BOLD)),
            JournalKind::Outcome { ok: false } => ("✗ ", th.critical),
        };
        let text = match j.ms {
            Some(ms) => format!("{}  {ms:.1} ms", j.text),
            None => j.text.clone(),
        };
        for (i, row) in crate::text::wrap(&text, width.saturating_sub(LEAD))
            .into_iter()
            .enumerate()
        {
            out.push(if i == 0 {
                Line::from(vec![
                    Span::styled(stamp.clone(), th.muted),
                    Span::styled(sym, style),
                    Span::styled(row, th.text),
                ])
            } else {
                Line::from(vec![
                    Span::raw(" ".repeat(LEAD)),
                    Span::styled(row, th.text),
                ])
            });
        }
    }
    out
}
