//! Traffic: where the application's routers send it. Per bouncer and database: the side it
//! points at, paused or not and for how long, clients and servers, the longest wait; and the
//! last switch made from this dashboard with how long the app was held.

use ratatui::text::{Line, Span};

use super::err_line;
use crate::app::State;
use crate::domain::observed::Side;
use crate::domain::traffic::{Pointed, RoutedEntry};
use crate::ui::Theme;

pub(super) fn traffic(st: &State, th: &Theme) -> Vec<Line<'static>> {
    let Some(t) = &st.traffic else {
        return vec![
            Line::styled(
                "no router configured ([traffic] router = \"none\")",
                th.muted,
            ),
            Line::styled(
                "the app's connections are switched by hand after a cutover; \
                 set router = \"pgbouncer\" or \"command\" to make it part of the key",
                th.muted,
            ),
        ];
    };
    let mut lines = Vec::new();
    if let Some(s) = &st.last_switch {
        let mut sp = vec![Span::styled("last switch ", th.muted)];
        sp.push(side_span(th, Some(s.to)));
        if let Some(h) = s.held_ms {
            sp.push(Span::styled(format!("  app held {h:.0} ms"), th.text));
        }
        if let Some(w) = s.window_ms {
            sp.push(Span::styled(format!("  window {w:.0} ms"), th.muted));
        }
        let ago = st.now.duration_since(s.at).unwrap_or_default().as_secs();
        sp.push(Span::styled(format!("  {ago} s ago"), th.muted));
        lines.push(Line::from(sp));
    }
    match (&t.reading.value, &t.reading.last_error) {
        (None, Some(e)) => lines.push(err_line(th, None, &e.message)),
        (None, None) => lines.push(Line::styled("no answer from the routers yet", th.muted)),
        (Some(r), _) => {
            let to = match r.pointed() {
                Pointed::Side(s) => side_span(th, Some(s)),
                Pointed::Split => Span::styled("SPLIT", th.critical),
                Pointed::Unknown => Span::styled("unknown", th.warn),
            };
            lines.insert(
                0,
                Line::from(vec![Span::styled(format!("{} → ", r.router), th.muted), to]),
            );
            if let Some(p) = &r.command_problem {
                lines.push(err_line(th, None, p));
            } else if r.router == "command" {
                lines.push(Line::styled(
                    "the command router cannot be observed: the last switch above is what it was told",
                    th.muted,
                ));
            }
            for b in &r.bouncers {
                lines.push(Line::styled(b.name.clone(), th.accent));
                if let Some(e) = &b.error {
                    lines.push(err_line(th, None, e));
                    continue;
                }
                for e in &b.entries {
                    lines.push(entry_line(st, th, e));
                }
                for m in &b.missing {
                    lines.push(err_line(
                        th,
                        None,
                        &format!("no database `{m}` on this bouncer"),
                    ));
                }
            }
        }
    }
    for a in &t.alarms {
        lines.push(Line::styled(format!("✗ {}", a.message()), th.alarm));
    }
    lines
}

fn side_span(th: &Theme, s: Option<Side>) -> Span<'static> {
    match s {
        Some(Side::Blue) => Span::styled("BLUE", th.blue_side),
        Some(Side::Green) => Span::styled("GREEN", th.green_side),
        None => Span::styled("neither side", th.critical),
    }
}

fn entry_line(st: &State, th: &Theme, e: &RoutedEntry) -> Line<'static> {
    let serving_ok = e.side.is_some_and(|s| st.phase.writable.contains(&s));
    let mut sp = vec![
        Span::styled(
            if e.paused {
                "⏸ "
            } else if serving_ok {
                "✓ "
            } else {
                "✗ "
            },
            if e.paused {
                th.warn
            } else if serving_ok {
                th.ok
            } else {
                th.critical
            },
        ),
        Span::styled(format!("{} → ", e.db), th.text),
        side_span(th, e.side),
        Span::styled(format!(" {}", e.address()), th.muted),
    ];
    if e.paused {
        let d = e
            .paused_for(st.now)
            .map(|d| format!(" {} s", d.as_secs()))
            .unwrap_or_default();
        sp.push(Span::styled(format!("  PAUSED{d}"), th.warn));
    }
    if let Some(l) = &e.load {
        sp.push(Span::styled(
            format!(
                "  clients {} · {} waiting  servers {} · {} idle",
                l.cl_active, l.cl_waiting, l.sv_active, l.sv_idle
            ),
            th.text,
        ));
        if l.maxwait_ms > 0 {
            sp.push(Span::styled(
                format!("  max wait {} ms", l.maxwait_ms),
                th.warn,
            ));
        }
    }
    if let Some(m) = e.pool_mode.as_deref().filter(|m| *m != "transaction") {
        sp.push(Span::styled(format!("  pool_mode {m}"), th.muted));
    }
    Line::from(sp)
}
