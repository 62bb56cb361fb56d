//! The status report as plain text: the accessible, grep-able form of what the dashboard shows.

use std::fmt::Write;

use super::Status;
use crate::domain::checks::Severity;
use crate::domain::observed::Side;
use crate::format::bytes;

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
    header(&mut o, s);
    redo(&mut o, s);
    snapshot(&mut o, s);
    sides(&mut o, s);
    slots(&mut o, s);
    subscriptions(&mut o, s);
    traffic(&mut o, s);
    if let Some(v) = &s.verify {
        o.push_str(&format!("\nverify: {}\n", v.describe()));
    }
    o.push_str("\nchecks:\n");
    o.push_str(&checks(s));
    schema_diff(&mut o, s);
    sequences(&mut o, s);
    o
}

/// The phase, direction, writable sides and alarms.
fn header(o: &mut String, s: &Status) {
    let dir = s
        .direction
        .map_or("-", super::super::domain::phase::Direction::label);
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
    for a in s.traffic.iter().flat_map(|t| &t.alarms) {
        let _ = writeln!(o, "ALARM ✗ {}", crate::text::one_line(&a.message));
    }
    o.push('\n');
}

/// GREEN's `redo done at` line and the origin it gives.
fn redo(o: &mut String, s: &Status) {
    if let Some(r) = &s.redo {
        match (&r.found, &r.error) {
            (Some(f), _) => {
                let _ = writeln!(
                    o,
                    "redo   {}  at {}\n       `{}`\n       origin {}  ({}){}",
                    f.source,
                    f.line
                        .time
                        .and_then(|t| t
                            .format(&time::format_description::well_known::Rfc3339)
                            .ok())
                        .unwrap_or_else(|| "?".into()),
                    f.line.text,
                    f.line.origin_lsn,
                    f.line.rule(),
                    match (&r.cross_check_ok, &r.cross_check) {
                        (Some(true), _) => "  ✓ cross-check".to_string(),
                        (Some(false), Some(e)) => format!("\n       ✗ cross-check: {e}"),
                        _ => String::new(),
                    }
                );
            }
            (None, Some(e)) => {
                let _ = writeln!(o, "redo   ✗ {e}");
            }
            (None, None) => {}
        }
    }
}

/// The migration's RDS snapshot.
fn snapshot(o: &mut String, s: &Status) {
    if let Some(snap) = &s.snapshot {
        match snap {
            Ok(Some(sn)) => {
                let _ = writeln!(
                    o,
                    "snapshot {}: {}{}  engine {}",
                    sn.id,
                    sn.status,
                    sn.percent_progress
                        .map(|p| format!(" {p}%"))
                        .unwrap_or_default(),
                    sn.engine_version.as_deref().unwrap_or("?")
                );
            }
            Ok(None) => {
                let _ = writeln!(o, "snapshot: not taken yet");
            }
            Err(e) => {
                let _ = writeln!(o, "snapshot ✗ {e}");
            }
        }
    }
}

/// Each side's server and RDS instance.
fn sides(o: &mut String, s: &Status) {
    for (side, out) in [(Side::Blue, &s.sides.blue), (Side::Green, &s.sides.green)] {
        if out.reachable {
            let _ = writeln!(
                o,
                "{:<6} PostgreSQL {}  wal_level={}  lsn={}{}{}",
                side.upper(),
                out.version.as_deref().unwrap_or("?"),
                out.wal_level.as_deref().unwrap_or("?"),
                out.current_lsn
                    .map_or_else(|| "?".into(), |l| l.to_string()),
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
        if let Some(r) = &out.rds {
            match (&r.instance, &r.error) {
                (Some(i), _) => {
                    let free = out
                        .metrics
                        .as_ref()
                        .and_then(|m| m.latest.get("FreeStorageSpace"))
                        .map(|f| format!("  free {}", crate::format::bytes_of_metric(*f)))
                        .unwrap_or_default();
                    let _ = writeln!(
                        o,
                        "       RDS {}: {}  {} {}  {}{}{}{}",
                        i.id,
                        i.status,
                        i.engine.as_deref().unwrap_or("?"),
                        i.engine_version.as_deref().unwrap_or("?"),
                        i.class.as_deref().unwrap_or("?"),
                        if i.multi_az { "  Multi-AZ" } else { "" },
                        free,
                        if i.pending.is_empty() {
                            String::new()
                        } else {
                            format!("  pending: {}", i.pending.join(", "))
                        }
                    );
                }
                (None, Some(e)) => {
                    let _ = writeln!(o, "       RDS ✗ {e}");
                }
                (None, None) => {}
            }
            if let Some(e) = out.metrics.as_ref().and_then(|m| m.error.as_ref()) {
                let _ = writeln!(o, "       metrics ✗ {e}");
            }
        }
    }
}

/// Replication slots on both sides.
fn slots(o: &mut String, s: &Status) {
    if !s.slots.is_empty() {
        o.push_str("\nslots:\n");
        for sl in &s.slots {
            let _ = writeln!(
                o,
                "  {:<6} {}{}  {}  lag {} ({})  retained {}  {}",
                sl.side.upper(),
                crate::sql::ident(&sl.name),
                if sl.ours { " (ours)" } else { "" },
                if sl.active { "active" } else { "inactive" },
                sl.lag_bytes.map_or_else(|| "-".into(), bytes),
                sl.lag_time,
                sl.wal_retained_bytes.map_or_else(|| "-".into(), bytes),
                sl.wal_status.as_deref().unwrap_or(""),
            );
        }
    }
}

/// Where the app's traffic goes: per bouncer and database, the side, paused, and the load.
fn traffic(o: &mut String, s: &Status) {
    use crate::domain::traffic::Pointed;
    let Some(t) = &s.traffic else { return };
    let to = match t.pointed {
        Pointed::Side(side) => side.upper().to_string(),
        Pointed::Split => "SPLIT".into(),
        Pointed::Unknown => "unknown".into(),
    };
    let _ = writeln!(o, "\ntraffic ({}) → {to}", t.reading.router);
    if let Some(p) = &t.reading.command_problem {
        let _ = writeln!(o, "  ✗ command: {}", crate::text::one_line(p));
    }
    for b in &t.reading.bouncers {
        if let Some(e) = &b.error {
            let _ = writeln!(o, "  ✗ {}: {}", b.name, crate::text::one_line(e));
            continue;
        }
        for e in &b.entries {
            let load = e.load.as_ref().map_or(String::new(), |l| {
                format!(
                    "  clients {}/{} waiting  servers {}/{} idle  max wait {} ms",
                    l.cl_active, l.cl_waiting, l.sv_active, l.sv_idle, l.maxwait_ms
                )
            });
            let _ = writeln!(
                o,
                "  {} {:<8} → {:<5} {}{}{}",
                crate::text::one_line(&b.name),
                e.db,
                e.side.map_or("?", Side::upper),
                crate::text::one_line(&e.address()),
                if e.paused { "  PAUSED" } else { "" },
                load
            );
        }
        for m in &b.missing {
            let _ = writeln!(o, "  ✗ {}: no database {m}", b.name);
        }
    }
}

/// Subscriptions on both sides.
fn subscriptions(o: &mut String, s: &Status) {
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
                sub.origin_lsn.map_or_else(|| "-".into(), |l| l.to_string()),
            );
        }
    }
}

/// The schema difference, the first 50 objects.
fn schema_diff(o: &mut String, s: &Status) {
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
                let _ = writeln!(
                    o,
                    "  {:<13} {:<17} {}",
                    e.status.label(),
                    e.kind.label(),
                    e.object
                );
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
}

/// Sequences that differ, the first 20.
fn sequences(o: &mut String, s: &Status) {
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
            let v = |x: Option<i64>| x.map_or_else(|| "-".into(), |v| v.to_string());
            let _ = writeln!(
                o,
                "  {:<40} BLUE {:>12}  GREEN {:>12}",
                r.sequence,
                v(r.blue),
                v(r.green)
            );
        }
    }
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

/// A plan: guards with their verdicts, then every step with its statements.
pub fn plan(p: &crate::engine::Plan) -> String {
    let mut o = String::new();
    let mode = p
        .mode
        .map(|m| {
            format!(
                "   (mode: {})",
                serde_json::to_value(m)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let _ = writeln!(o, "plan: {}{mode}", p.action);
    o.push_str("guards:\n");
    for g in &p.guards {
        let _ = writeln!(
            o,
            "  {} {:<20} {}",
            if g.ok { "✓" } else { "✗" },
            g.name,
            g.detail
        );
    }
    if p.refused() {
        o.push_str("REFUSED: the guards marked ✗ must hold first\n");
        return o;
    }
    for n in &p.notes {
        let _ = writeln!(o, "note: {n}");
    }
    if p.steps.is_empty() {
        o.push_str("nothing to do\n");
    }
    for (i, s) in p.steps.iter().enumerate() {
        let _ = writeln!(o, "{:>3}. [{}] {}", i + 1, s.side.upper(), s.title);
        for sql in &s.sql {
            let _ = writeln!(o, "       {sql}");
        }
    }
    o
}

/// One engine event as a progress line.
pub fn event(e: &crate::engine::Event) -> String {
    use crate::engine::Event;
    match e {
        Event::StepStarted {
            step, title, side, ..
        } => {
            format!(
                "→ {step:<20} {}{title}",
                side.map(|s| format!("[{}] ", s.upper()))
                    .unwrap_or_default()
            )
        }
        Event::StepFinished {
            step, ms, detail, ..
        } => format!("✓ {step:<20} {ms:>8.1} ms  {detail}"),
        Event::Note { text } => format!("! {text}"),
    }
}

/// An action's outcome, for people.
pub fn outcome(out: &crate::engine::Outcome) -> String {
    use crate::engine::Outcome;
    match out {
        Outcome::Done {
            summary,
            window_ms,
            held_ms,
            steps,
        } => {
            let mut o = format!("done: {summary}\n");
            if let Some(w) = window_ms {
                let _ = writeln!(o, "write-unavailability window: {w:.1} ms");
            }
            if let Some(h) = held_ms {
                let _ = writeln!(o, "the routers held the app (PAUSE → RESUME): {h:.1} ms");
            }
            for s in steps {
                let _ = writeln!(o, "  {:<20} {:>8.1} ms", s.step, s.ms);
            }
            o
        }
        Outcome::NothingToDo { summary } => format!("{summary}\n"),
        Outcome::Refused { guards } => {
            let mut o = String::from("refused:\n");
            for g in guards.iter().filter(|g| !g.ok) {
                let _ = writeln!(o, "  ✗ {:<20} {}", g.name, g.detail);
            }
            o
        }
        Outcome::FailedSafe { error, state } => {
            format!("FAILED, put back: {error}\nstate: {state}\n")
        }
        Outcome::FailedAfterSwitch { error, state } => {
            format!("FAILED after the switch: {error}\nstate: {state}\n")
        }
    }
}

/// A verify run: one line per table, the mismatched rows' keys under it, then the totals.
pub fn verify(r: &crate::domain::verify::Report) -> String {
    use crate::domain::verify::Verdict;
    let mut out = format!("verify: {} → {}\n", r.source.upper(), r.target.upper());
    for t in &r.tables {
        let mut line = format!(
            "  {:<16} {}  {} rows, {} chunk(s){}",
            t.verdict.word(),
            t.name(),
            t.rows,
            t.chunks,
            if t.whole { ", read whole (no key)" } else { "" }
        );
        match &t.verdict {
            Verdict::Skipped { reason } => line.push_str(&format!(": {reason}")),
            Verdict::Hot {
                hot_rows,
                hot_ranges,
                more,
            } => line.push_str(&format!(
                ": {hot_rows} row(s) in {} key range(s) changed at every read, unverified; \
                 run verify again when writes are lighter",
                hot_ranges.len() + more
            )),
            _ => {}
        }
        out.push_str(&crate::text::one_line(&line));
        out.push('\n');
        if let Verdict::Mismatch { keys, more } = &t.verdict {
            for d in keys {
                out.push_str(&format!(
                    "      {:?} key {}\n",
                    d.kind,
                    crate::text::one_line(&d.key)
                ));
            }
            if *more > 0 {
                out.push_str(&format!("      and {more} more row(s)\n"));
            }
        }
        if let Verdict::Hot {
            hot_ranges, more, ..
        } = &t.verdict
        {
            for h in hot_ranges {
                out.push_str(&format!(
                    "      hot {}\n",
                    crate::text::one_line(&h.describe())
                ));
            }
            if *more > 0 {
                out.push_str(&format!("      and {more} more range(s)\n"));
            }
        }
        for w in &t.warnings {
            out.push_str(&format!("      warning: {}\n", crate::text::one_line(w)));
        }
    }
    out.push_str(&format!(
        "{} verified, {} MISMATCHED, {} hot, {} skipped; {} rows in {:.1} s ({:.0} rows/s)\n",
        r.verified, r.mismatched, r.hot, r.skipped, r.rows, r.seconds, r.rows_per_s
    ));
    out
}
