//! Formatting any layer may use: the time of day for records, sizes for people, and an error
//! with its causes on one line. Bottom layer: imports nothing of the crate.

use std::error::Error;

/// Now in RFC 3339 with milliseconds, for the journal (ordering records within a second).
pub fn now_rfc3339_ms() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Whole seconds from an RFC 3339 time (as `now_rfc3339` writes them) to `now`; `None` when
/// the text is not one.
pub fn seconds_since(rfc3339: &str, now: time::OffsetDateTime) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (now - t).whole_seconds())
}

/// Now in RFC 3339, for marks left on the databases.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A byte count in binary units, one decimal (`1.5 MB`), whole bytes below a kilobyte. A
/// figure never shows four integer digits (`1000 B` is `1.0 kB`), so neighbours compare by eye.
#[allow(clippy::cast_precision_loss)] // a figure for people: one decimal shown
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    // 999.95 rounds to 1000.0 at one decimal: from there, the next unit.
    while v >= if u == 0 { 1000.0 } else { 999.95 } && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A rate of bytes per second: `12.0 kB/s`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating, for people
pub fn byte_rate(per_s: f64) -> String {
    let n = if per_s.is_nan() {
        0
    } else {
        per_s.max(0.0).round() as u64
    };
    format!("{}/s", bytes(n))
}

/// A duration for people: `0.4 s` below a minute, `3 min 20 s`, `1 h 05 min`.
pub fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// A byte count CloudWatch reports as a float (negative or NaN as 0, beyond range as the most).
pub fn bytes_of_metric(v: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // saturating since 1.45
    let n = if v.is_nan() { 0 } else { v.max(0.0) as u64 };
    bytes(n)
}

/// An error and its causes on one line, a cause left out when the text before already says it
/// (many errors repeat their source in their own message).
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut texts = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        texts.push(c.to_string());
        cause = c.source();
    }
    join_causes(texts.into_iter())
}

/// The same for an `eyre` report, whose context layers are not `source()`s of a std error.
pub fn report_chain(e: &color_eyre::eyre::Report) -> String {
    join_causes(e.chain().map(ToString::to_string))
}

fn join_causes(texts: impl Iterator<Item = String>) -> String {
    let mut s = String::new();
    for t in texts {
        if s.is_empty() {
            s = t;
        } else if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use color_eyre::eyre::{WrapErr, eyre};

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB", "never four integer digits");
        assert_eq!(bytes(1023), "1.0 kB");
        assert_eq!(bytes(1_048_500), "1.0 MB", "1023.9 kB rounds up a unit");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TB");
        assert_eq!(byte_rate(12_288.4), "12.0 kB/s");
        assert_eq!(byte_rate(f64::NAN), "0 B/s");
        assert_eq!(seconds(std::time::Duration::from_millis(400)), "0.4 s");
        assert_eq!(seconds(std::time::Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(seconds(std::time::Duration::from_mins(65)), "1 h 05 min");
    }

    #[test]
    fn causes_once_each() {
        let e: color_eyre::eyre::Result<()> = Err(eyre!("connection refused"));
        let e = e.wrap_err("BLUE: connect").unwrap_err();
        assert_eq!(report_chain(&e), "BLUE: connect: connection refused");
        let io = std::io::Error::other("disk full");
        assert_eq!(error_chain(&io), "disk full");
    }

    #[test]
    fn times_parse_back() {
        let t = now_rfc3339_ms();
        assert!(
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_ok(),
            "{t}"
        );
    }
}
