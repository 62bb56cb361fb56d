//! The panels and the confirm dialog. Every panel's title carries the age of its data, marked
//! stale after three missed intervals, and a poller's error shows inside the panel.

use std::time::{Duration, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph, Sparkline, Wrap};

use super::{Theme, centered, mark, side_style};
use crate::app::keys::Command;
use crate::app::{Dialog, JournalKind, Panel, State};
use crate::domain::checks::Severity;
use crate::domain::observed::Side;
use crate::domain::polled::Polled;
use crate::format::bytes;

fn age_label<T>(p: &Polled<T>, now: SystemTime, interval: Duration) -> (String, bool) {
    match p.age(now) {
        None => ("no data yet".into(), true),
        Some(a) => {
            let stale = p.is_stale(now, interval);
            let s = if a.as_secs() >= 120 {
                format!("{} min", a.as_secs() / 60)
            } else {
                format!("{} s", a.as_secs())
            };
            (if stale { format!("STALE {s}") } else { s }, stale)
        }
    }
}

fn block<'a>(st: &State, th: &Theme, panel: Panel, age: Option<(String, bool)>) -> Block<'a> {
    let focused = st.focus == panel;
    let mut title = vec![Span::styled(
        format!(" {}:{} ", panel.index() + 1, panel.title()),
        if focused {
            th.title.add_modifier(Modifier::REVERSED)
        } else {
            th.title
        },
    )];
    if let Some((a, stale)) = age {
        title.push(Span::styled(
            format!(" {}{a} ", if stale { "▲ " } else { "" }),
            if stale {
                th.warn.add_modifier(Modifier::BOLD)
            } else {
                th.muted
            },
        ));
    }
    Block::bordered()
        .title(Line::from(title))
        .border_style(if focused { th.border_focus } else { th.border })
}

fn oldest_age(st: &State) -> (String, bool) {
    let b = age_label(&st.blue.live, st.now, st.interval);
    let g = age_label(&st.green.live, st.now, st.interval);
    if b.1 { b } else { g }
}

pub fn draw(st: &State, th: &Theme, f: &mut Frame, panel: Panel, area: Rect) {
    let scroll = st.scroll[panel.index()];
    match panel {
        Panel::Replication => replication(st, th, f, area),
        Panel::Instances => instances(st, th, f, area),
        Panel::Redo => text_panel(
            st,
            th,
            f,
            area,
            panel,
            redo(st, th),
            Some(age_label(&st.redo, st.now, st.interval * 30)),
            0,
        ),
        Panel::Checks => text_panel(
            st,
            th,
            f,
            area,
            panel,
            checks(st, th),
            Some(oldest_age(st)),
            scroll,
        ),
        Panel::Schema => {
            let age = age_label(&st.blue.catalog, st.now, st.interval * 30);
            text_panel(st, th, f, area, panel, schema(st, th), Some(age), scroll);
        }
        Panel::Sequences => {
            let age = age_label(&st.blue.inventory, st.now, st.interval * 30);
            text_panel(st, th, f, area, panel, sequences(st, th), Some(age), scroll);
        }
        Panel::Journal => {
            let lines = journal(st, th);
            // Follow the tail unless the operator scrolled.
            let inner = area.height.saturating_sub(2) as usize;
            let auto = u16::try_from(lines.len().saturating_sub(inner)).unwrap_or(u16::MAX);
            let s = if scroll == 0 { auto } else { scroll.min(auto) };
            // Not wrapped: one row per entry keeps the tail in view (wrapping would push the
            // newest line, often the outcome, below the panel).
            f.render_widget(
                Paragraph::new(lines)
                    .scroll((s, 0))
                    .block(block(st, th, panel, None)),
                area,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn text_panel(
    st: &State,
    th: &Theme,
    f: &mut Frame,
    area: Rect,
    panel: Panel,
    lines: Vec<Line<'static>>,
    age: Option<(String, bool)>,
    scroll: u16,
) {
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0))
            .block(block(st, th, panel, age)),
        area,
    );
}

fn kv(th: &Theme, k: &str, v: String) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{k} "), th.muted),
        Span::styled(v, th.text),
    ]
}

fn err_line(th: &Theme, side: Option<Side>, e: &str) -> Line<'static> {
    let who = side.map(|s| format!("{}: ", s.upper())).unwrap_or_default();
    Line::from(vec![
        Span::styled("✗ ", th.critical),
        Span::styled(format!("{who}{e}"), th.critical),
    ])
}

#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
fn replication(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
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
    let n = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let [text, chart] = Layout::vertical([Constraint::Length(n), Constraint::Min(0)]).areas(inner);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    if chart.height >= 3 {
        let data: Vec<u64> = st
            .lag
            .samples()
            .map(super::super::domain::lag::LagSample::lag_bytes)
            .collect();
        let max = data.iter().copied().max().unwrap_or(0);
        let [label, spark] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(chart);
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
}

#[allow(clippy::too_many_lines)] // not yet split: issue 10 §3
fn instances(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let b = block(st, th, Panel::Instances, Some(oldest_age(st)));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let mut lines: Vec<Line> = Vec::new();
    for s in Side::BOTH {
        let ss = st.side(s);
        let mut spans = vec![Span::styled(format!("{:<6}", s.upper()), side_style(th, s))];
        match ss.live.value.as_ref() {
            Some(l) => {
                let v = l
                    .server
                    .version
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                spans.push(Span::styled(v, th.text));
                spans.push(Span::raw("  "));
                spans.push(if l.writable() {
                    Span::styled("✓ app LOGIN", th.ok.add_modifier(Modifier::BOLD))
                } else {
                    Span::styled("■ fenced", th.muted)
                });
                let sessions: i64 = l.app_roles.iter().map(|r| r.sessions).sum();
                spans.extend(kv(th, "  sessions", sessions.to_string()));
                if let Some(lsn) = l.server.current_lsn {
                    spans.extend(kv(th, "  lsn", lsn.to_string()));
                }
                if l.server.in_recovery {
                    spans.push(Span::styled("  ▲ in recovery", th.warn));
                }
            }
            None => spans.push(Span::styled("–", th.muted)),
        }
        lines.push(Line::from(spans));
        if let Some(e) = &ss.live.last_error {
            lines.push(err_line(th, None, &e.message));
        }
        if !st.rds_configured {
            continue;
        }
        match (&ss.rds.value, &ss.rds.last_error) {
            (Some(r), _) => {
                if let Some(i) = r.instance() {
                    let mut sp = vec![Span::styled("      RDS ", th.muted)];
                    sp.push(Span::styled(
                        i.status.clone(),
                        if i.available() {
                            th.ok
                        } else {
                            th.warn.add_modifier(Modifier::BOLD)
                        },
                    ));
                    sp.extend(kv(
                        th,
                        " ",
                        format!(
                            "{} {}",
                            i.engine_version.as_deref().unwrap_or("?"),
                            i.class.as_deref().unwrap_or("?")
                        ),
                    ));
                    if let Some(m) = r.metrics() {
                        if let Some(free) = m.latest("FreeStorageSpace") {
                            sp.extend(kv(th, "  free", crate::format::bytes_of_metric(free)));
                        }
                        if let Some(cpu) = m.latest("CPUUtilization") {
                            sp.extend(kv(th, "  cpu", format!("{cpu:.0}%")));
                        }
                    }
                    lines.push(Line::from(sp));
                    if let Some(m) = r.metrics()
                        && let Some(cpu) = m.series.get("CPUUtilization")
                    {
                        let spark: String = cpu
                            .iter()
                            .rev()
                            .take(30)
                            .rev()
                            .map(|p| spark_char(p.v, 100.0))
                            .collect();
                        lines.push(Line::from(vec![
                            Span::styled("      cpu ", th.muted),
                            Span::styled(spark, th.chart),
                        ]));
                    }
                }
                if let Some(Err(e)) = &r.instance {
                    lines.push(err_line(th, None, e));
                }
                if let Some(Err(e)) = &r.metrics {
                    lines.push(Line::styled(format!("      metrics ▲ {e}"), th.warn));
                }
            }
            (None, Some(e)) => lines.push(err_line(th, None, &e.message)),
            (None, None) => lines.push(Line::styled("      RDS: waiting for AWS…", th.muted)),
        }
    }
    if !st.rds_configured {
        lines.push(Line::styled(
            "no RDS configured (self-managed PostgreSQL)",
            th.muted,
        ));
    }
    let snap = st.snapshot.value.as_ref().and_then(|s| s.as_ref());
    let gauge_h = u16::from(snap.is_some());
    let [text, gauge] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(gauge_h)]).areas(inner);
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text);
    if let Some(s) = snap {
        let pct = s
            .percent_progress
            .unwrap_or(if s.status == "available" { 100 } else { 0 });
        f.render_widget(
            Gauge::default()
                .gauge_style(th.chart)
                .percent(u16::try_from(pct.clamp(0, 100)).unwrap_or(100))
                .label(format!("snapshot {} {} {pct}%", s.id, s.status)),
            gauge,
        );
    }
}

fn spark_char(v: f64, max: f64) -> char {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=7
    let i = ((v / max).clamp(0.0, 1.0) * 7.0).round() as usize;
    BARS[i]
}

fn redo(st: &State, th: &Theme) -> Vec<Line<'static>> {
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
            lines.push(Line::styled(f.line.text.clone(), th.text));
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

fn checks(st: &State, th: &Theme) -> Vec<Line<'static>> {
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

fn schema(st: &State, th: &Theme) -> Vec<Line<'static>> {
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
                    Span::styled(format!("{:?} ", e.status), th.warn),
                    Span::styled(format!("{:?} ", e.kind), th.muted),
                    Span::styled(e.object.clone(), th.text),
                ]));
            }
        }
    }
    lines
}

fn sequences(st: &State, th: &Theme) -> Vec<Line<'static>> {
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

fn journal(st: &State, th: &Theme) -> Vec<Line<'static>> {
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

/// The dialog's last line: what the keys do now, from the keymap.
fn dialog_footer(st: &State, th: &Theme, d: &Dialog, refused: bool, name: &str) -> Line<'static> {
    let km = &st.keymap;
    let cancel = km.keys(Command::Cancel);
    match (&d.plan, refused) {
        (None, _) => Line::styled(format!("{cancel} cancel"), th.muted),
        (Some(_), true) => Line::from(vec![
            Span::styled(" REFUSED ", th.alarm),
            Span::styled(
                format!("  the guards marked ✗ must hold first · {cancel} closes"),
                th.text,
            ),
        ]),
        (Some(_), false) => Line::from(vec![
            Span::styled(
                format!(" {}: run {name} ", km.keys(Command::Confirm)),
                th.badge_write,
            ),
            Span::styled(
                format!(
                    "   {cancel}: cancel   {}: scroll",
                    km.pair(Command::Down, Command::Up)
                ),
                th.muted,
            ),
        ]),
    }
}

pub fn dialog(st: &State, th: &Theme, f: &mut Frame, d: &Dialog, area: Rect) {
    let r = centered(area, 90, 85, 58, 14);
    f.render_widget(Clear, r);
    let name = d.action.name();
    let mut lines: Vec<Line> = Vec::new();
    let mut refused = true;
    match &d.plan {
        None => lines.push(Line::styled(
            "checking the guards on fresh data…",
            th.accent.add_modifier(Modifier::BOLD),
        )),
        Some(Err(e)) => lines.push(err_line(th, None, e)),
        Some(Ok(p)) => {
            refused = p.refused();
            lines.push(Line::styled(
                "guards (re-checked when you confirm):",
                th.muted,
            ));
            for g in &p.guards {
                lines.push(Line::from(vec![
                    mark(th, g.ok, true),
                    Span::styled(format!("{} ", g.name), th.accent),
                    Span::styled(g.detail.clone(), th.text),
                ]));
            }
            if let Some(m) = p.mode {
                lines.push(Line::styled(format!("mode: {m:?}"), th.muted));
            }
            for n in &p.notes {
                lines.push(Line::styled(format!("note: {n}"), th.warn));
            }
            if !refused {
                lines.push(Line::raw(""));
                lines.push(Line::styled("steps and SQL, in order:", th.muted));
                for (i, s) in p.steps.iter().enumerate() {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:>2}. ", i + 1), th.muted),
                        Span::styled(format!("[{}] ", s.side.upper()), side_style(th, s.side)),
                        Span::styled(s.title.clone(), th.text.add_modifier(Modifier::BOLD)),
                    ]));
                    for q in &s.sql {
                        lines.push(Line::styled(format!("      {q}"), th.accent));
                    }
                }
            }
        }
    }
    let footer = dialog_footer(st, th, d, refused, &name);
    let title = format!(
        " {} — {} ",
        name.to_uppercase(),
        if st.write { "confirm" } else { "read-only" }
    );
    let b = Block::bordered()
        .title(Span::styled(title, th.title))
        .border_style(th.border_focus);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let [body, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((d.scroll, 0)),
        body,
    );
    f.render_widget(Paragraph::new(footer), foot);
}
