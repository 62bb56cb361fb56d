//! The header: where the migration stands (phase, direction, writable sides, lag, mode, clock)
//! and what needs the operator's eye (window timer, running action, alarms, stale sides).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Theme, WIDE};
use crate::app::State;
use crate::app::keys::Command;
use crate::domain::observed::Side;
use crate::domain::phase::{Alarm, Direction};
use crate::domain::traffic::TrafficAlarm;

pub(super) fn draw(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let p = Paragraph::new(vec![
        state_line(st, th, area.width),
        attention_line(st, th, area.width),
    ])
    .block(
        Block::default()
            .borders(ratatui::widgets::Borders::BOTTOM)
            .border_style(th.border),
    );
    f.render_widget(p, area);
}

fn fmt_clock(t: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!("{:02}:{:02}:{:02}Z", t.hour(), t.minute(), t.second())
}

/// Phase, direction, writable sides, lag, mode badge and clock.
fn state_line(st: &State, th: &Theme, width: u16) -> Line<'static> {
    let narrow = width < WIDE;
    let ph = &st.phase;
    let writable = if ph.writable.is_empty() {
        Span::styled("none", th.warn.add_modifier(Modifier::BOLD))
    } else {
        let names: Vec<&str> = ph.writable.iter().map(|s| s.upper()).collect();
        Span::styled(names.join("+"), th.ok.add_modifier(Modifier::BOLD))
    };
    // The serving side's slot: after a switch, the new direction's lag, not the old one's.
    let src = st.source();
    let lag = match (st.lag.lag_bytes(src), st.lag.lag_time(src)) {
        (Some(b), Some(t)) if !narrow => match t.short() {
            Some(t) => format!("{} ({t})", crate::format::bytes(b)),
            None => crate::format::bytes(b),
        },
        (Some(b), _) => crate::format::bytes(b),
        _ => "–".into(),
    };
    let badge = match (st.write, narrow) {
        (true, _) => Span::styled(" WRITE ", th.badge_write),
        (false, false) => Span::styled(" READ-ONLY ", th.badge_read_only),
        (false, true) => Span::styled(" RO ", th.badge_read_only),
    };
    let mut spans = vec![
        Span::styled(if narrow { "" } else { " pgcutover " }, th.title),
        Span::styled(if narrow { " " } else { "│ phase " }, th.muted),
        Span::styled(
            ph.phase.label().to_uppercase(),
            th.accent.add_modifier(Modifier::BOLD),
        ),
        Span::styled(" │ ", th.muted),
        Span::styled(
            ph.direction.map_or("no direction", Direction::label),
            th.text,
        ),
        Span::styled(
            if narrow {
                " │ writes "
            } else {
                " │ writable "
            },
            th.muted,
        ),
        writable,
        Span::styled(" │ lag ", th.muted),
        Span::styled(lag, th.text),
    ];
    if let Some(t) = &st.traffic {
        spans.push(Span::styled(
            if narrow {
                " │ app→"
            } else {
                " │ traffic → "
            },
            th.muted,
        ));
        spans.push(traffic_to(t, th));
    }
    spans.extend([Span::raw(" "), badge]);
    // The clock is the first thing to go when the line is short of room; the labels stay.
    let used: usize = spans.iter().map(Span::width).sum();
    if used + 10 <= usize::from(width) {
        spans.extend([Span::raw(" "), Span::styled(fmt_clock(st.now), th.muted)]);
    }
    Line::from(spans)
}

/// Where the routers send the app: a side, SPLIT, or `?` before an answer or for a command.
fn traffic_to(t: &crate::app::TrafficView, th: &Theme) -> Span<'static> {
    use crate::domain::traffic::Pointed;
    match t
        .reading
        .fresh()
        .map(crate::domain::traffic::TrafficReading::pointed)
    {
        Some(Pointed::Side(Side::Blue)) => {
            Span::styled("BLUE", th.blue_side.add_modifier(Modifier::BOLD))
        }
        Some(Pointed::Side(Side::Green)) => {
            Span::styled("GREEN", th.green_side.add_modifier(Modifier::BOLD))
        }
        Some(Pointed::Split) => Span::styled("SPLIT", th.alarm),
        Some(Pointed::Unknown) | None => Span::styled("?", th.warn),
    }
}

/// The window timer or the running action, then alarms and stale sides; a calm line when
/// there is nothing.
fn attention_line(st: &State, th: &Theme, width: u16) -> Line<'static> {
    let mut line: Vec<Span> = Vec::new();
    if let Some(w) = st.window() {
        line.push(Span::styled(
            format!(
                " ⏱ WINDOW {:>7.3} s — {} fenced, writes wait ",
                w.as_secs_f64(),
                st.source().upper()
            ),
            th.window_timer,
        ));
        line.push(Span::raw(" "));
    } else if let Some(r) = &st.running {
        line.push(Span::styled(
            format!(
                " ▶ {} running {:.1} s ",
                r.action.name(),
                st.now_i.saturating_duration_since(r.started).as_secs_f64()
            ),
            th.accent.add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        line.push(Span::raw(" "));
    }
    for a in &st.phase.alarms {
        let style = match a {
            Alarm::SplitBrain | Alarm::Fenced => th.alarm,
            _ => th.warn.add_modifier(Modifier::BOLD),
        };
        line.push(Span::styled(format!(" ✗ {} ", a.message()), style));
        line.push(Span::raw(" "));
    }
    for a in st.traffic.iter().flat_map(|t| &t.alarms) {
        let style = match a {
            TrafficAlarm::LongPause { .. } => th.warn.add_modifier(Modifier::BOLD),
            _ => th.alarm,
        };
        line.push(Span::styled(format!(" ✗ {} ", a.message()), style));
        line.push(Span::raw(" "));
    }
    let connecting = side_spans(st, th, &mut line);
    app_span(st, th, &mut line);
    if st.frozen {
        line.push(Span::styled(
            format!(" ❄ FROZEN ({}) ", st.keymap.keys(Command::Freeze)),
            th.selected,
        ));
    }
    if line
        .iter()
        .all(|s| s.content.starts_with(" app: ") || s.content.starts_with(" … connecting"))
        && connecting.is_empty()
    {
        line.insert(0, Span::styled(" ✓ no alarms ", th.ok));
        if let Some(w) = st.last_window_ms {
            line.push(Span::styled(format!("   last window {w:.1} ms"), th.muted));
        }
    }
    Line::from(fit_spans(line, usize::from(width)))
}

/// The spans that fit in `width`; the one that crosses the edge ends in `…`, and what did not
/// fit is counted (`+2 more`), so an alarm is never cut off without a word.
fn fit_spans(mut line: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let shown = |s: &Span| !s.content.trim().is_empty();
    while line.last().is_some_and(|s| !shown(s)) {
        line.pop();
    }
    let total: usize = line.iter().map(Span::width).sum();
    if total <= width {
        return line;
    }
    let mut left = line.iter().filter(|s| shown(s)).count();
    let mut out = Vec::new();
    let mut used = 0;
    for s in line {
        if shown(&s) {
            left -= 1;
        }
        // Room for the count, ` +99 more`, while something is still to come.
        let room = width.saturating_sub(used + if left > 0 { 10 } else { 0 });
        if s.width() <= room {
            used += s.width();
            out.push(s);
            continue;
        }
        if room > 8 && shown(&s) {
            out.push(Span::styled(crate::text::fit(&s.content, room), s.style));
        } else if shown(&s) {
            left += 1;
        }
        break;
    }
    if left > 0 {
        out.push(Span::raw(format!(" +{left} more")));
    }
    out
}

/// Sides still connecting, and sides whose data is stale; returns the connecting ones.
fn side_spans(st: &State, th: &Theme, line: &mut Vec<Span<'static>>) -> Vec<&'static str> {
    let connecting: Vec<&str> = Side::BOTH
        .into_iter()
        .filter(|s| st.connecting(*s))
        .map(Side::upper)
        .collect();
    if !connecting.is_empty() {
        line.push(Span::styled(
            format!(" … connecting to {} ", connecting.join(", ")),
            th.muted,
        ));
    }
    let stale: Vec<&str> = Side::BOTH
        .into_iter()
        .filter(|s| !st.connecting(*s) && st.side(*s).live.is_stale(st.now, st.interval))
        .map(Side::upper)
        .collect();
    if !stale.is_empty() {
        line.push(Span::styled(
            format!(" ▲ stale: {} ", stale.join(", ")),
            th.warn.add_modifier(Modifier::BOLD),
        ));
    }
    connecting
}

/// The counts of a workload run beside the dashboard.
fn app_span(st: &State, th: &Theme, line: &mut Vec<Span<'static>>) {
    if let Some((committed, failed)) = st.app_counts {
        line.push(Span::styled(
            format!(" app: {committed} committed, {failed} failed "),
            if failed == 0 { th.ok } else { th.alarm },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spans: &[Span]) -> String {
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn what_does_not_fit_is_cut_with_an_ellipsis_and_counted() {
        let line = || {
            vec![
                Span::raw(" ✗ first alarm, a long one "),
                Span::raw(" "),
                Span::raw(" ✗ second "),
                Span::raw(" "),
                Span::raw(" ✗ third "),
                Span::raw(" "),
            ]
        };
        assert_eq!(
            text(&fit_spans(line(), 80)),
            " ✗ first alarm, a long one   ✗ second   ✗ third "
        );
        assert_eq!(text(&fit_spans(line(), 30)), " ✗ first alarm, a l… +2 more");
        assert_eq!(
            text(&fit_spans(line(), 47)),
            " ✗ first alarm, a long one   ✗ secon… +1 more"
        );
    }
}
