//! Schema: objects that differ between the sides.

use ratatui::text::{Line, Span};

use super::err_line;
use crate::app::State;
use crate::domain::observed::Side;
use crate::ui::Theme;

pub(super) fn schema(st: &State, th: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for s in Side::BOTH {
        if let Some(e) = &st.side(s).catalog.last_error {
            lines.push(err_line(th, Some(s), &e.message));
        }
    }
    match &st.schema {
        None => lines.push(Line::styled("waiting for both catalogues…", th.muted)),
        Some(d) if d.is_empty() => {
            lines.push(Line::styled("✓ BLUE and GREEN have the same schema", th.ok));
        }
        Some(d) => {
            lines.push(Line::styled(
                format!(
                    "▲ {} only on BLUE, {} only on GREEN, {} different",
                    d.only_blue, d.only_green, d.different
                ),
                th.warn,
            ));
            for e in &d.objects {
                lines.push(Line::from(vec![
                    Span::styled(format!("{} ", e.status.label()), th.warn),
                    Span::styled(format!("{} ", e.kind.label()), th.muted),
                    Span::styled(e.object.clone(), th.text),
                ]));
            }
        }
    }
    lines
}
