//! Verify: a run under way (tables, rows, rate, time left, the table being compared) or the
//! last result, then each table's verdict, problems first, a mismatch with its rows' keys.

use ratatui::text::{Line, Span};

use crate::app::State;
use crate::domain::verify::{DiffKind, Report, TableResult, Underway, Verdict};
use crate::text::{fit, one_line};
use crate::ui::Theme;

/// Keys of a mismatched table shown on its line; the rest are counted.
const KEYS_SHOWN: usize = 5;

pub(super) fn verify(st: &State, th: &Theme, width: usize) -> Vec<Line<'static>> {
    let (mut lines, tables) = match (&st.verify_underway, &st.verify) {
        (Some(u), _) => (underway(u, th, width), &u.finished),
        (None, Some(r)) => (last(st, r, th), &r.tables),
        (None, None) => {
            return vec![Line::styled(
                format!(
                    "no verify yet: {} compares the rows of both sides, read-only (its dialog gives the estimate of rows and time); or `pgcutover verify`",
                    st.keymap.shown_key(crate::app::keys::Command::Run(
                        crate::domain::guards::Action::Verify
                    ))
                ),
                th.muted,
            )];
        }
    };
    let mut ordered: Vec<&TableResult> = tables.iter().collect();
    ordered.sort_by_key(|t| rank(&t.verdict));
    for t in ordered {
        lines.push(table_line(t, th, width));
    }
    lines
}

/// Problems first: mismatches, hot tables, skipped ones, then the verified.
fn rank(v: &Verdict) -> u8 {
    match v {
        Verdict::Mismatch { .. } => 0,
        Verdict::Hot { .. } => 1,
        Verdict::Skipped { .. } => 2,
        Verdict::Verified => 3,
    }
}

/// `1.2 M`, `35.0 k`, `812`: counts of rows at a glance.
fn count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

#[allow(clippy::cast_precision_loss)] // counts of rows, shown to three digits
fn rows(n: i64) -> String {
    count(n as f64)
}

fn underway(u: &Underway, th: &Theme, width: usize) -> Vec<Line<'static>> {
    let l = &u.live;
    let dir = format!("{} → {}", u.source.upper(), u.source.other().upper());
    let mut out = vec![if u.alive {
        Line::styled(format!("● running, {dir}"), th.accent)
    } else {
        Line::styled(
            format!("▲ stopped part-way, {dir}: run verify again to resume it"),
            th.warn,
        )
    }];
    let done = u.finished.len();
    let pct = if l.rows_estimate > 0 {
        #[allow(clippy::cast_precision_loss)] // a percentage
        let p = (l.rows_done as f64 / l.rows_estimate as f64 * 100.0).min(100.0);
        format!(" ({p:.0} %)")
    } else {
        String::new()
    };
    out.push(Line::styled(
        format!(
            "tables {done} / {} · rows {} of about {}{pct}",
            l.tables_total,
            rows(l.rows_done),
            rows(l.rows_estimate)
        ),
        th.text,
    ));
    if u.alive {
        let rate = l.rows_per_s().map_or_else(
            || "rate: measuring".to_string(),
            |r| format!("{} rows/s", count(r)),
        );
        let eta = l.eta().map_or_else(String::new, |d| {
            format!(" · about {} left", crate::format::seconds(d))
        });
        out.push(Line::styled(format!("{rate}{eta}"), th.text));
        if let Some(t) = &l.table {
            out.push(Line::styled(fit(&format!("now: {t}"), width), th.muted));
        }
    }
    out
}

fn last(st: &State, r: &Report, th: &Theme) -> Vec<Line<'static>> {
    let Some(l) = st.verify_last() else {
        return Vec::new();
    };
    let style = if r.mismatched > 0 {
        th.critical
    } else if r.hot + r.skipped > 0 {
        th.warn
    } else {
        th.ok
    };
    vec![
        Line::styled(format!("last run {}", l.describe()), style),
        Line::styled(
            format!(
                "{} rows in {} ({} rows/s)",
                rows(r.rows),
                crate::format::seconds(std::time::Duration::from_secs_f64(r.seconds.max(0.0))),
                count(r.rows_per_s)
            ),
            th.muted,
        ),
    ]
}

fn table_line(t: &TableResult, th: &Theme, width: usize) -> Line<'static> {
    let (mark, style) = match t.verdict {
        Verdict::Verified => ("✓ ", th.ok),
        Verdict::Mismatch { .. } => ("✗ ", th.critical),
        Verdict::Hot { .. } | Verdict::Skipped { .. } => ("▲ ", th.warn),
    };
    let detail = match &t.verdict {
        Verdict::Verified => format!("{} rows", rows(t.rows)),
        Verdict::Mismatch { keys, more } => {
            let shown = first_few(keys, *more, ", ", "more (verify --json)", |d| {
                let kind = match d.kind {
                    DiffKind::Missing => "missing",
                    DiffKind::Extra => "extra",
                    DiffKind::Different => "different",
                };
                format!("{} {kind}", one_line(&d.key))
            });
            format!("{} row(s) differ: {shown}", keys.len() + more)
        }
        Verdict::Hot {
            hot_rows,
            hot_ranges,
            more,
        } => {
            let shown = first_few(hot_ranges, *more, "; ", "more range(s)", |h| {
                one_line(&h.describe()).into_owned()
            });
            format!("hot: {hot_rows} row(s) changed at every read, unverified: {shown}")
        }
        Verdict::Skipped { reason } => format!("skipped: {}", one_line(reason)),
    };
    let name = one_line(&t.name()).into_owned();
    let room = width.saturating_sub(2 + name.chars().count() + 2);
    Line::from(vec![
        Span::styled(mark, style),
        Span::styled(name, th.accent),
        Span::raw("  "),
        Span::styled(fit(&detail, room), th.text),
    ])
}

/// The first `KEYS_SHOWN` of a list kept in part (`more` left out of it), then how many others.
fn first_few<T>(
    items: &[T],
    more: usize,
    sep: &str,
    others: &str,
    show: impl Fn(&T) -> String,
) -> String {
    let shown: Vec<String> = items.iter().take(KEYS_SHOWN).map(show).collect();
    let rest = items.len() - shown.len() + more;
    if rest > 0 {
        format!("{}{sep}{rest} {others}", shown.join(sep))
    } else {
        shown.join(sep)
    }
}
