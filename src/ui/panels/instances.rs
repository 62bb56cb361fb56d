//! Instances: each side's server and RDS instance, with its metrics' sparklines.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use super::{block, err_line, kv, oldest_age};
use crate::app::{Panel, State};
use crate::domain::observed::Side;
use crate::ui::{Theme, side_style};

pub(super) fn instances(st: &State, th: &Theme, f: &mut Frame, area: Rect) {
    let b = block(st, th, Panel::Instances, Some(oldest_age(st)));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let mut lines: Vec<Line> = Vec::new();
    for s in Side::BOTH {
        let ss = st.side(s);
        lines.push(server_line(st, th, s));
        if let Some(e) = &ss.live.last_error {
            lines.push(err_line(th, None, &e.message));
        }
        if st.rds_configured {
            rds_lines(st, th, s, &mut lines);
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

/// `PostgreSQL 15.18` from `server_version_num` (150018): the distributor's words that follow
/// the number in `version()` are not the version.
fn version(num: i32) -> String {
    if num >= 100_000 {
        format!("PostgreSQL {}.{}", num / 10_000, num % 10_000)
    } else {
        format!(
            "PostgreSQL {}.{}.{}",
            num / 10_000,
            (num / 100) % 100,
            num % 100
        )
    }
}

fn spark_char(v: f64, max: f64) -> char {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=7
    let i = ((v / max).clamp(0.0, 1.0) * 7.0).round() as usize;
    BARS[i]
}

/// A side's server: version, fenced or not, app sessions, LSN, recovery.
fn server_line(st: &State, th: &Theme, s: Side) -> Line<'static> {
    let ss = st.side(s);
    let mut spans = vec![Span::styled(format!("{:<6}", s.upper()), side_style(th, s))];
    match ss.live.value.as_ref() {
        Some(l) => {
            spans.push(Span::styled(version(l.server.version_num), th.text));
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
    Line::from(spans)
}

/// A side's RDS instance: status, version, class, free storage, CPU and its sparkline.
fn rds_lines(st: &State, th: &Theme, s: Side, lines: &mut Vec<Line<'static>>) {
    let ss = st.side(s);
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
            if let Some(i) = r.instance() {
                restore_line(st, th, i, lines);
            }
            event_lines(th, r, lines);
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

/// While an instance is not available (a restore, an upgrade, a modification): its status and
/// for how long since it was created. RDS gives no percentage for these, so none is drawn.
fn restore_line(
    st: &State,
    th: &Theme,
    i: &crate::domain::rds::Instance,
    lines: &mut Vec<Line<'static>>,
) {
    if i.available() {
        return;
    }
    let since = i.create_time.and_then(|t| {
        let now = time::OffsetDateTime::from(st.now);
        u64::try_from((now - t).whole_seconds())
            .ok()
            .map(|s| crate::format::seconds(std::time::Duration::from_secs(s)))
    });
    let mut sp = vec![Span::styled("      ⏳ ", th.warn)];
    sp.push(Span::styled(
        format!(
            "{}{}",
            i.status,
            since.map_or_else(String::new, |s| format!(", created {s} ago"))
        ),
        th.warn,
    ));
    sp.push(Span::styled("  (RDS gives no %)", th.muted));
    lines.push(Line::from(sp));
}

/// The newest RDS events of the instance, newest last.
fn event_lines(th: &Theme, r: &crate::domain::rds::InstanceFacts, lines: &mut Vec<Line<'static>>) {
    match &r.events {
        Some(Ok(ev)) => {
            for e in ev.iter().rev().take(3).rev() {
                let at = e.time.map_or_else(
                    || "--:--".to_string(),
                    |t| format!("{:02}:{:02}", t.hour(), t.minute()),
                );
                lines.push(Line::from(vec![
                    Span::styled(format!("      {at} "), th.muted),
                    Span::styled(crate::text::one_line(&e.message).into_owned(), th.text),
                ]));
            }
        }
        Some(Err(e)) => lines.push(Line::styled(format!("      events ▲ {e}"), th.warn)),
        None => {}
    }
}
