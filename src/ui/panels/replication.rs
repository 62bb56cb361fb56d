//! Replication: the flow BLUE → GREEN (or back), its lag over time, slots and subscriptions.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::{block, err_line, kv, oldest_age};
use crate::app::{Panel, State};
use crate::domain::lag::Trend;
use crate::domain::observed::Side;
use crate::format::{byte_rate, bytes, seconds};
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
    if st.databases.is_empty() {
        slot_lines(st, th, src, &mut lines);
        subscription_lines(st, th, tgt, &mut lines);
    } else {
        database_lines(st, th, src, &mut lines);
    }
    other_slot_lines(st, th, src, &mut lines);
    // The rows the lines take once wrapped, so a long line pushes the chart down, not off.
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let n = u16::try_from(para.line_count(inner.width)).unwrap_or(u16::MAX);
    let [text, chart] = Layout::vertical([Constraint::Length(n), Constraint::Min(0)]).areas(inner);
    f.render_widget(para, text);
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
            if let Some(t) = st.lag.lag_time(src) {
                spans.extend(kv(th, "  time", t.describe()));
            }
            spans.extend(trend_spans(th, st.lag.trend(src)));
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

/// One row per replicated database, problems first (the least advanced phase, a failing
/// check, no streaming worker, the largest lag): its phase, its slot on the serving side and
/// its subscription on the other; then the pair's lag (the furthest behind) and its trend.
fn database_lines(st: &State, th: &Theme, src: Side, lines: &mut Vec<Line<'static>>) {
    let tgt = src.other();
    let (sl, tl) = (
        st.side(src).live.value.as_ref(),
        st.side(tgt).live.value.as_ref(),
    );
    let cur = sl.and_then(|l| l.server.current_lsn);
    let mut rows = Vec::new();
    for d in &st.databases {
        let slot = sl.and_then(|l| l.slot(&d.names.slot));
        let sub = tl
            .and_then(|_| d.live(tgt, st.side(tgt)))
            .and_then(|l| l.subscription(&d.names.subscription).cloned());
        let lag = slot.and_then(|s| s.lag_bytes(cur));
        let streaming = sub
            .as_ref()
            .is_some_and(|s| s.enabled && s.worker_pid.is_some());
        let failing = d.checks.iter().filter(|c| !c.ok).count();
        rows.push((d, slot, sub, lag, streaming, failing));
    }
    rows.sort_by_key(|(d, _, _, lag, streaming, failing)| {
        (
            d.phase.phase,
            *failing == 0,
            *streaming,
            std::cmp::Reverse(*lag),
        )
    });
    for (d, slot, sub, lag, streaming, failing) in rows {
        let mut spans = vec![
            Span::styled(
                format!("{:<12} ", crate::text::terminal_safe(&d.name)),
                th.text,
            ),
            Span::styled(format!("{:<12} ", d.phase.phase.label()), th.muted),
        ];
        spans.push(match slot {
            Some(s) if s.active => Span::styled("✓ slot", th.ok),
            Some(_) => Span::styled("▲ slot inactive", th.warn),
            None => Span::styled("· no slot", th.muted),
        });
        if let Some(b) = lag {
            spans.extend(kv(th, "  lag", bytes(b)));
        }
        if let Some(b) = slot.and_then(|s| s.wal_retained_bytes(cur)) {
            spans.extend(kv(th, "  WAL kept", bytes(b)));
        }
        spans.push(match (&sub, streaming) {
            (_, true) => Span::styled("  ✓ streaming", th.ok),
            (Some(s), false) if s.enabled => Span::styled("  ▲ enabled, no worker", th.warn),
            (Some(_), false) => Span::styled("  · subscription disabled", th.muted),
            (None, _) => Span::styled("  · no subscription", th.muted),
        });
        if let Some(n) = sub
            .as_ref()
            .and_then(|s| s.apply_error_count)
            .filter(|n| *n > 0)
        {
            spans.push(Span::styled(format!("  ✗ {n} apply errors"), th.critical));
        }
        if failing > 0 {
            spans.push(Span::styled(format!("  ▲ {failing} check(s)"), th.warn));
        }
        lines.push(Line::from(spans));
        for s in Side::BOTH {
            if let Some(e) = d.error(s) {
                lines.push(err_line(th, Some(s), &format!("[{}] {e}", d.name)));
            }
        }
    }
    if let Some(t) = st.lag.lag_time(src) {
        let mut spans = kv(th, "furthest behind", t.describe());
        spans.extend(trend_spans(th, st.lag.trend(src)));
        lines.push(Line::from(spans));
    }
}

/// Other logical slots on the serving side (CDC, DMS, another subscriber): their consumers lose
/// their source at the switch, so they are shown with their lag beside ours.
fn other_slot_lines(st: &State, th: &Theme, src: Side, lines: &mut Vec<Line<'static>>) {
    const SHOWN: usize = 3;
    let Some(l) = st.side(src).live.value.as_ref() else {
        return;
    };
    let others: Vec<_> = l.other_logical_slots(&st.names).collect();
    for sl in others.iter().take(SHOWN) {
        let plugin = sl.plugin.as_deref().unwrap_or("?");
        let mut spans = vec![
            Span::styled("other slot ", th.muted),
            Span::styled(
                format!(
                    "{} ({})",
                    crate::text::terminal_safe(&sl.name),
                    crate::text::terminal_safe(plugin)
                ),
                th.text,
            ),
        ];
        spans.extend(kv(
            th,
            "  lag",
            sl.lag_bytes(l.server.current_lsn).map_or("?".into(), bytes),
        ));
        spans.push(Span::styled(
            if sl.active { "  active" } else { "  inactive" },
            th.muted,
        ));
        spans.push(Span::styled("  ▲ stops at the switch", th.warn));
        lines.push(Line::from(spans));
    }
    if others.len() > SHOWN {
        lines.push(Line::styled(
            format!(
                "and {} more other slots (4:Checks lists them)",
                others.len() - SHOWN
            ),
            th.muted,
        ));
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

/// Where the lag is going: draining (with when it will be caught up), growing, or nothing to
/// say (steady, caught up, not enough samples yet).
fn trend_spans(th: &Theme, t: Option<Trend>) -> Vec<Span<'static>> {
    match t {
        Some(Trend::Draining { bytes_per_s, eta }) => vec![Span::styled(
            format!(
                "  draining {}, caught up in ~{}",
                byte_rate(bytes_per_s),
                seconds(eta)
            ),
            th.text,
        )],
        Some(Trend::Growing { bytes_per_s }) => vec![Span::styled(
            format!("  ▲ growing at {}", byte_rate(bytes_per_s)),
            th.warn,
        )],
        _ => Vec::new(),
    }
}

/// The chart's points: one bar per column (the largest lag of its span), the gate across the
/// window, and a vertical mark where the last switch was.
type Points = Vec<(f64, f64)>;
fn chart_series(st: &State, cols: usize, top: u64) -> (Points, Points, Points) {
    #[allow(clippy::cast_precision_loss)] // chart coordinates
    let (w, n, top) = (WINDOW.as_secs_f64(), cols as f64, top as f64);
    let bars = st
        .lag
        .buckets(st.now_i, WINDOW, cols)
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| {
            #[allow(clippy::cast_precision_loss)]
            b.map(|b| (-w + (i as f64 + 0.5) * w / n, b as f64))
        })
        .collect();
    let gate_line = st
        .gate_bytes
        .map(|g| {
            #[allow(clippy::cast_precision_loss)]
            let g = g as f64;
            vec![(-w, g), (0.0, g)]
        })
        .unwrap_or_default();
    let switch_mark = st
        .last_switch
        .as_ref()
        .and_then(|s| st.now.duration_since(s.at).ok())
        .filter(|age| *age < WINDOW)
        .map(|age| vec![(-age.as_secs_f64(), 0.0), (-age.as_secs_f64(), top)])
        .unwrap_or_default();
    (bars, gate_line, switch_mark)
}

/// The chart's window.
const WINDOW: Duration = Duration::from_mins(15);

/// Lag over the last 15 minutes: the largest lag of each column's span of time, scaled to the
/// largest in the window, with the gate drawn across and the last switch marked.
fn lag_chart(st: &State, th: &Theme, f: &mut Frame, chart: Rect) {
    if chart.height < 4 || chart.width < 20 {
        return;
    }
    let gate = st.gate_bytes;
    let max = st
        .lag
        .buckets(st.now_i, WINDOW, 1)
        .first()
        .copied()
        .flatten()
        .unwrap_or(0);
    // The y axis reaches the gate when the lag stays under it, so the line shows the margin.
    let top = max.max(gate.unwrap_or(0)).max(1);
    let y_labels = [bytes(0), bytes(top / 2), bytes(top)];
    let label_w = y_labels.iter().map(String::len).max().unwrap_or(0);
    // One bucket per plot column: the chart's width less the y labels and the axis.
    let cols = usize::from(chart.width).saturating_sub(label_w + 1).max(1);
    let (bars, gate_line, switch_mark) = chart_series(st, cols, top);
    #[allow(clippy::cast_precision_loss)] // chart coordinates
    let top_f = top as f64;
    // An empty line (no gate, no switch in the window) draws nothing.
    let line = |style, data| {
        Dataset::default()
            .graph_type(GraphType::Line)
            .marker(symbols::Marker::Braille)
            .style(style)
            .data(data)
    };
    let datasets = vec![
        Dataset::default()
            .graph_type(GraphType::Bar)
            .marker(symbols::Marker::HalfBlock)
            .style(th.chart)
            .data(&bars),
        line(th.warn, &gate_line),
        line(th.accent, &switch_mark),
    ];
    // The legend in the title: a legend box would hide the newest bars.
    let mut title = vec![Span::styled(
        format!("lag, last 15 min (max {})", bytes(max)),
        th.muted,
    )];
    if let Some(g) = gate {
        title.push(Span::styled(format!("  ⠉ gate {}", bytes(g)), th.warn));
    }
    if !switch_mark.is_empty() {
        title.push(Span::styled("  ⡇ last switch", th.accent));
    }
    let c = Chart::new(datasets)
        .block(Block::default().title(Line::from(title)))
        .x_axis(
            Axis::default()
                .style(th.muted)
                .bounds([-WINDOW.as_secs_f64(), 0.0])
                .labels(["-15 min", "-10", "-5", "now"]),
        )
        .y_axis(
            Axis::default()
                .style(th.muted)
                .bounds([0.0, top_f])
                .labels(y_labels),
        )
        .legend_position(None);
    f.render_widget(c, chart);
}
