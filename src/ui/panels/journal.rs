//! Journal: the actions' steps and statements as they run.

use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::app::{JournalKind, State};
use crate::ui::Theme;

pub(super) fn journal(st: &State, th: &Theme) -> Vec<Line<'static>> {
    if st.journal.is_empty() {
        return vec![Line::styled(
            "no action yet this session; steps appear here as they run",
            th.muted,
        )];
    }
    st.journal
        .iter()
        .map(|j| {
            let t = time::OffsetDateTime::from(j.at);
            let stamp = format!("{:02}:{:02}:{:02} ", t.hour(), t.minute(), t.second());
            let (sym, style) = match j.kind {
                JournalKind::Started => ("▶ ", th.accent),
                JournalKind::Finished => ("✓ ", th.ok),
                JournalKind::Note => ("· ", th.muted),
                JournalKind::Outcome { ok: true } => ("■ ", th.ok.add_modifier(Modifier::BOLD)),
                JournalKind::Outcome { ok: false } => ("✗ ", th.critical),
            };
            let mut sp = vec![
                Span::styled(stamp, th.muted),
                Span::styled(sym, style),
                Span::styled(j.text.clone(), th.text),
            ];
            if let Some(ms) = j.ms {
                sp.push(Span::styled(format!("  {ms:.1} ms"), th.muted));
            }
            Line::from(sp)
        })
        .collect()
}
