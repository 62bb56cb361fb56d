//! Sequences: each sequence's value on both sides.

use ratatui::text::{Line, Span};

use crate::app::State;
use crate::ui::Theme;

pub(super) fn sequences(st: &State, th: &Theme) -> Vec<Line<'static>> {
    if st.sequences.is_empty() {
        return vec![Line::styled("no sequences read yet", th.muted)];
    }
    let mut rows: Vec<&crate::domain::sequences::SequenceRow> = st.sequences.iter().collect();
    // Problems first: only on one side, then GREEN behind BLUE.
    rows.sort_by_key(|r| {
        (
            r.only_on.is_none(),
            std::cmp::Reverse(r.difference.unwrap_or(0)),
        )
    });
    let behind = rows
        .iter()
        .filter(|r| r.difference.is_some_and(|d| d > 0))
        .count();
    let mut lines = vec![Line::styled(
        format!(
            "{} sequences; GREEN behind on {behind} (the cutover copies them)",
            rows.len()
        ),
        th.muted,
    )];
    for r in rows {
        let v = |x: Option<i64>| x.map_or("–".into(), |v| v.to_string());
        let (sym, style) = match (r.only_on, r.difference) {
            (Some(_), _) => ("✗ ", th.critical),
            (None, Some(d)) if d > 0 => ("▼ ", th.warn),
            _ => ("✓ ", th.ok),
        };
        lines.push(Line::from(vec![
            Span::styled(sym, style),
            Span::styled(r.sequence.clone(), th.text),
            Span::styled(
                format!("  blue {} green {}", v(r.blue), v(r.green)),
                th.muted,
            ),
        ]));
    }
    lines
}
