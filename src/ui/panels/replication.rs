//! Replication: the flow BLUE → GREEN (or back), its lag over time, slots and subscriptions.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Wrap};

use super::{block, err_line, kv, oldest_age};
use crate::app::{Panel, State};
use crate::domain::observed::Side;
use crate::format::bytes;
use crate::ui::{Theme, side_style};

pub(super) fn replication(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let b = block(st, th, Panel::Replication, Some(oldest_age(st)));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let src = st.source();
    let tgt = src.other();
    let mut lines: Vec<Line> = Vec::new();
    for s in Side::BOTH {
        if let Some(e) = &st.side(s).live.last_error {
            lines.push(err_line(th, Some(s), &e.message));
        }
    }
    slot_lines(st, th, src, &mut lines);
    subscription_lines(st, th, tgt, &mut lines);
    let n = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let [text, chart] = Layout::vertical([Constraint::Length(n), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    lag_chart(st, th, f, chart);
}

/// The migration's slot on the serving side: active or not, lag, catch-up estimate, WAL kept.
fn slot_lines(st: &State, th: &Theme, src: Side, lines: &mut Vec<Line<'static>>) {
    let slot_name = &st.names.slot;
    match st
        .side(src)
        .live
        .value
        .as_ref()
        .and_then(|l| l.slot(slot_name).map(|sl| (l, sl)))
    {
        Some((l, sl)) => {
            let cur = l.server.current_lsn;
            let mut spans = vec![Span::styled(format!("slot {slot_name} on "), th.muted)];
            spans.push(Span::styled(src.upper(), side_style(th, src)));
            spans.push(Span::raw("  "));
            spans.push(if sl.active {
                Span::styled("✓ active", th.ok)
            } else {
                Span::styled("▲ inactive", th.warn)
            });
            spans.extend(kv(th, "  wal", sl.wal_status.clone().unwrap_or("?".into())));
            lines.push(Line::from(spans));
            let lag = sl.lag_bytes(cur).map_or("?".into(), bytes);
            let retained = sl.wal_retained_bytes(cur).map_or("?".into(), bytes);
            let mut spans = kv(th, "lag", lag);
            if let Some(t) = st.lag.lag_time() {
                spans.extend(kv(th, "  ≈", format!("{:.1} s", t.as_secs_f64())));
            }
            match st.lag.eta(Duration::from_mins(1)) {
                Some(eta) if eta > Duration::ZERO => {
                    spans.extend(kv(th, "  catch-up", format!("{} s", eta.as_secs())));
                }
                _ => {}
            }
            spans.extend(kv(th, "  WAL kept", retained));
            lines.push(Line::from(spans));
        }
        None if st.side(src).live.value.is_some() => lines.push(Line::styled(
            format!("no slot {slot_name} on {} (prepare makes it)", src.upper()),
            th.muted,
        )),
        None => {}
    }
}

/// The migration's subscription on the other side: streaming or not, apply errors.
fn subscription_lines(st: &State, th: &Theme, tgt: Side, lines: &mut Vec<Line<'static>>) {
    let sub_name = &st.names.subscription;
    match st
        .side(tgt)
        .live
        .value
        .as_ref()
        .and_then(|l| l.subscription(sub_name))
    {
        Some(sub) => {
            let mut spans = vec![Span::styled(
                format!("subscription {sub_name} on "),
                th.muted,
            )];
            spans.push(Span::styled(tgt.upper(), side_style(th, tgt)));
            spans.push(Span::raw("  "));
            spans.push(match (sub.enabled, sub.worker_pid) {
                (true, Some(pid)) => Span::styled(format!("✓ streaming (pid {pid})"), th.ok),
                (true, None) => Span::styled("▲ enabled, no worker", th.warn),
                (false, _) => Span::styled("· disabled", th.muted),
            });
            if let Some(n) = sub.apply_error_count.filter(|n| *n > 0) {
                spans.push(Span::styled(format!("  ✗ {n} apply errors"), th.critical));
            }
            lines.push(Line::from(spans));
        }
        None if st.side(tgt).live.value.is_some() => lines.push(Line::styled(
            format!(
                "no subscription {sub_name} on {} (subscribe makes it)",
                tgt.upper()
            ),
            th.muted,
        )),
        None => {}
    }
}

/// Lag over the last 15 minutes, the newest samples one per column.
fn lag_chart(st: &State, th: &Theme, f: &mut Frame, chart: Rect) {
    if chart.height < 3 {
        return;
    }
    let data: Vec<u64> = st
        .lag
        .samples()
        .map(crate::domain::lag::LagSample::lag_bytes)
        .collect();
    let max = data.iter().copied().max().unwrap_or(0);
    let [label, spark] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(chart);
    f.render_widget(
        Paragraph::new(Line::styled(
            format!("lag, last 15 min (max {})", bytes(max)),
            th.muted,
        )),
        label,
    );
    // The newest samples, one per column.
    let w = spark.width as usize;
    let tail = &data[data.len().saturating_sub(w)..];
    f.render_widget(Sparkline::default().data(tail).style(th.chart), spark);
}
