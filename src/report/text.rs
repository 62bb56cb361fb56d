//! The status report as plain text: the accessible, grep-able form of what the dashboard shows.

use std::fmt::Write;

use super::Status;
use crate::domain::checks::Severity;
use crate::domain::observed::Side;

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn mark(ok: bool, sev: Severity) -> &'static str {
    match (ok, sev) {
        (true, _) => "✓",
        (false, Severity::Blocking) => "✗",
        (false, Severity::Warning) => "▲",
        (false, Severity::Info) => "·",
    }
}

pub fn status(s: &Status) -> String {
    let mut o = String::new();
    let dir = s.direction.map(|d| d.label()).unwrap_or("-");
    let writable: Vec<&str> = s.writable.iter().map(|w| w.upper()).collect();
    let _ = writeln!(
        o,
        "phase: {}   direction: {dir}   writable: {}",
        s.phase.label(),
        if writable.is_empty() {
            "none".to_string()
        } else {
            writable.join(", ")
        }
    );
    for a in &s.alarms {
        let _ = writeln!(o, "ALARM ✗ {}", a.message);
    }
    o.push('\n');
    for (side, out) in [(Side::Blue, &s.sides.blue), (Side::Green, &s.sides.green)] {
        if out.reachable {
            let _ = writeln!(
                o,
                "{:<6} PostgreSQL {}  wal_level={}  lsn={}{}{}",
                side.upper(),
                out.version.as_deref().unwrap_or("?"),
                out.wal_level.as_deref().unwrap_or("?"),
                out.current_lsn
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "?".into()),
                if out.in_recovery == Some(true) {
                    "  IN RECOVERY"
                } else {
                    ""
                },
                if out.writable == Some(true) {
                    "  app LOGIN"
                } else {
                    "  app NOLOGIN"
                },
            );
        } else {
            let _ = writeln!(
                o,
                "{:<6} ✗ unreachable: {}",
                side.upper(),
                out.error.as_deref().unwrap_or("?")
            );
        }
    }
    if !s.slots.is_empty() {
        o.push_str("\nslots:\n");
        for sl in &s.slots {
            let _ = writeln!(
                o,
                "  {:<6} {}{}  {}  lag {}  retained {}  {}",
                sl.side.upper(),
                crate::sql::ident(&sl.name),
                if sl.ours { " (ours)" } else { "" },
                if sl.active { "active" } else { "inactive" },
                sl.lag_bytes.map(bytes).unwrap_or_else(|| "-".into()),
                sl.wal_retained_bytes
                    .map(bytes)
                    .unwrap_or_else(|| "-".into()),
                sl.wal_status.as_deref().unwrap_or(""),
            );
        }
    }
    if !s.subscriptions.is_empty() {
        o.push_str("\nsubscriptions:\n");
        for sb in &s.subscriptions {
            let sub = &sb.subscription;
            let _ = writeln!(
                o,
                "  {:<6} {}  {}  {}  origin {}",
                sb.side.upper(),
                crate::sql::ident(&sub.name),
                if sub.enabled { "enabled" } else { "disabled" },
                if sub.worker_pid.is_some() {
                    "streaming"
                } else {
                    "no worker"
                },
                sub.origin_lsn
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into()),
            );
        }
    }
    o.push_str("\nchecks:\n");
    o.push_str(&checks(s));
    match &s.schema_diff {
        None => o.push_str("\nschema diff: unavailable (a side's catalogue could not be read)\n"),
        Some(d) if d.is_empty() => o.push_str("\nschema diff: none\n"),
        Some(d) => {
            let _ = writeln!(
                o,
                "\nschema diff: {} only in BLUE, {} only in GREEN, {} different",
                d.only_blue, d.only_green, d.different
            );
            for e in d.objects.iter().take(50) {
                let what = match e.status {
                    crate::domain::schema::DiffStatus::OnlyBlue => "only BLUE ",
                    crate::domain::schema::DiffStatus::OnlyGreen => "only GREEN",
                    crate::domain::schema::DiffStatus::Different => "different ",
                };
                let _ = writeln!(o, "  {what} {:<17} {}", e.kind.label(), e.object);
            }
            if d.objects.len() > 50 {
                let _ = writeln!(
                    o,
                    "  … and {} more (--json lists all)",
                    d.objects.len() - 50
                );
            }
        }
    }
    let differing: Vec<_> = s
        .sequences
        .iter()
        .filter(|r| r.difference != Some(0))
        .collect();
    if !s.sequences.is_empty() {
        let _ = writeln!(
            o,
            "\nsequences: {} ({} differ)",
            s.sequences.len(),
            differing.len()
        );
        for r in differing.iter().take(20) {
            let v = |x: Option<i64>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "  {:<40} BLUE {:>12}  GREEN {:>12}",
                r.sequence,
                v(r.blue),
                v(r.green)
            );
        }
    }
    o
}

/// The checks, failures first, each failure with its fix.
pub fn checks(s: &Status) -> String {
    let mut o = String::new();
    for c in &s.checks {
        let _ = writeln!(o, "  {} {:<24} {}", mark(c.ok, c.severity), c.id, c.finding);
        if !c.ok && !c.fix.is_empty() {
            let _ = writeln!(o, "    {:<24} fix: {}", "", c.fix);
        }
    }
    let blocking = s.blocking_failures().count();
    let _ = writeln!(
        o,
        "{}",
        if blocking == 0 {
            "no blocking problem".to_string()
        } else {
            format!("{blocking} blocking problem(s)")
        }
    );
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_units() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 kB");
        assert_eq!(super::bytes(5 * 1024 * 1024 * 1024), "5.0 GB");
    }
}
