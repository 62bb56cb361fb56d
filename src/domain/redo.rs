//! Finding the redo LSN of GREEN's restore in its server log, and the origin LSN the
//! subscription must start from (DESIGN §2, proven on real clusters):
//! - the FIRST `redo done at X/Y` of the restore decides (later ones are restarts of GREEN;
//!   earlier ones, before `not_before`, are older attempts under the same name);
//! - origin = X + 1 byte, except when the same recovery logged `recovery stopping before …`
//!   (point-in-time restore that did not replay the record at X): then origin = X;
//! - `redo is not required` carries no LSN: refuse and ask the operator for one.
//!
//! Lines may carry PostgreSQL's `%m [%p] ` prefix or RDS's `%t:%r:%u@%d:[%p]:`; we match on the
//! message text, and read the time from the line's start when it has one.

use serde::Serialize;
use time::OffsetDateTime;

use super::lsn::Lsn;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedoLine {
    /// 1-based line number in the text searched.
    pub line_no: usize,
    pub text: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub time: Option<OffsetDateTime>,
    pub redo_lsn: Lsn,
    pub origin_lsn: Lsn,
    /// The recovery stopped before a record (point-in-time restore): origin = redo LSN exactly.
    pub stopped_before: bool,
}

impl RedoLine {
    pub fn rule(&self) -> &'static str {
        if self.stopped_before {
            "recovery stopped before the record at the redo LSN, which was not replayed: origin = redo LSN"
        } else {
            "the record at the redo LSN was replayed: origin = redo LSN + 1 byte"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedoError {
    /// The restore logged `redo is not required`: no LSN to take.
    NotRequired {
        line_no: usize,
        text: String,
    },
    NotFound,
    BadLsn {
        line_no: usize,
        text: String,
    },
}

impl std::fmt::Display for RedoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedoError::NotRequired { line_no, text } => write!(
                f,
                "line {line_no} says `redo is not required` ({text}): the restore replayed no WAL, so the log holds no \
                 redo LSN; find the LSN the copy was taken at and pass it with --lsn X/Y"
            ),
            RedoError::NotFound => write!(
                f,
                "no `redo done at` line in the log (after the time bound, if one was set): check that this is GREEN's \
                 log from its first start after the restore, or pass the LSN with --lsn X/Y"
            ),
            RedoError::BadLsn { line_no, text } => {
                write!(
                    f,
                    "line {line_no} has `redo done at` without a readable LSN: {text}"
                )
            }
        }
    }
}

impl std::error::Error for RedoError {}

/// The time at the start of a log line: `2024-05-01 10:00:00[.123] UTC` (also `GMT`, `Z`,
/// `+00`, `-05:30`). `None` when the line starts otherwise or the zone is a name we can't map.
pub fn line_time(line: &str) -> Option<OffsetDateTime> {
    use time::macros::format_description;
    let date_time = line.get(..19)?;
    let pdt = time::PrimitiveDateTime::parse(
        date_time,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .ok()?;
    let mut rest = &line[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let scaled = format!("{digits:0<9}");
        nanos = scaled.get(..9)?.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let zone = rest.strip_prefix(' ')?.split([' ', ':']).next()?;
    // `%t` renders the zone name, `%m` too; RDS always logs UTC.
    let offset = match zone {
        "UTC" | "GMT" | "Z" => time::UtcOffset::UTC,
        z if z.starts_with(['+', '-']) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = &z[1..];
            let (h, m) = match body.len() {
                2 => (body.parse::<i8>().ok()?, 0i8),
                4 => (body[..2].parse().ok()?, body[2..].parse().ok()?),
                _ => return None,
            };
            time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
        _ => return None,
    };
    Some(pdt.replace_nanosecond(nanos).ok()?.assume_offset(offset))
}

/// Find the restore's redo line in `log`. Lines stamped before `not_before` are skipped
/// (unstamped lines are kept: the caller bounded the source already).
pub fn find(log: &str, not_before: Option<OffsetDateTime>) -> Result<RedoLine, RedoError> {
    let lines: Vec<&str> = log.lines().collect();
    let mut episode_start = 0;
    for (i, line) in lines.iter().enumerate() {
        if let (Some(bound), Some(t)) = (not_before, line_time(line))
            && t < bound
        {
            episode_start = i + 1;
            continue;
        }
        if line.contains("redo starts at ") {
            episode_start = i;
        }
        if line.contains("redo is not required") {
            return Err(RedoError::NotRequired {
                line_no: i + 1,
                text: line.trim().to_string(),
            });
        }
        let Some(pos) = line.find("redo done at ") else {
            continue;
        };
        let after = &line[pos + "redo done at ".len()..];
        let token = after.split_whitespace().next().unwrap_or("");
        let redo_lsn: Lsn = token.parse().map_err(|_| RedoError::BadLsn {
            line_no: i + 1,
            text: line.trim().to_string(),
        })?;
        let stopped_before = lines[episode_start..i]
            .iter()
            .any(|l| l.contains("recovery stopping before "));
        let origin_lsn = if stopped_before {
            redo_lsn
        } else {
            redo_lsn.checked_add(1).ok_or(RedoError::BadLsn {
                line_no: i + 1,
                text: line.trim().to_string(),
            })?
        };
        return Ok(RedoLine {
            line_no: i + 1,
            text: line.trim().to_string(),
            time: line_time(line),
            redo_lsn,
            origin_lsn,
            stopped_before,
        });
    }
    Err(RedoError::NotFound)
}

/// The origin must lie between the slot's confirmed position (the slot was made before the
/// snapshot) and the source's current LSN (the copy cannot be from the future). Anything else
/// is a stale or foreign log, or the wrong slot.
pub fn cross_check(
    origin: Lsn,
    slot_confirmed_flush: Lsn,
    source_current: Lsn,
) -> Result<(), String> {
    if origin < slot_confirmed_flush {
        return Err(format!(
            "origin {origin} is before the slot's confirmed_flush_lsn {slot_confirmed_flush}: the log is older than the \
             slot (an earlier attempt's log, or the slot was created after the snapshot); changes between the two \
             would be replayed twice"
        ));
    }
    if origin > source_current {
        return Err(format!(
            "origin {origin} is past the source's current LSN {source_current}: this log is not of a copy of this \
             source (another cluster's, or the LSN was mistyped)"
        ));
    }
    Ok(())
}

/// The cross-check against BLUE as observed now. `None` when it cannot be told (no slot or LSN
/// read) or no longer applies: once replication started, the slot moves past the origin by design.
pub fn verdict_now(
    origin: Lsn,
    phase: super::phase::Phase,
    slot: &str,
    blue: Option<&super::observed::Live>,
) -> Option<Result<(), String>> {
    use super::phase::Phase;
    if !matches!(phase, Phase::Prepared | Phase::Subscribed) {
        return None;
    }
    let l = blue?;
    let conf = l.slot(slot)?.confirmed_flush_lsn?;
    let cur = l.server.current_lsn?;
    Some(cross_check(origin, conf, cur))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pg-logs")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Rewrite `%m [%p] ` lines with RDS's `%t:%r:%u@%d:[%p]:` prefix.
    fn as_rds(log: &str) -> String {
        log.lines()
            .map(|l| {
                let (Some(ts), Some(rest)) = (l.get(..19), l.split_once("] ").map(|(_, r)| r))
                else {
                    return l.to_string();
                };
                let pid = l
                    .split_once('[')
                    .and_then(|(_, r)| r.split_once(']'))
                    .map(|(p, _)| p)
                    .unwrap_or("0");
                format!("{ts} UTC:10.0.0.5(5432):rdsadmin@rdsadmin:[{pid}]:{rest}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    const EXPECTED: &[(&str, Option<(&str, &str)>)] = &[
        (
            "pg15-snapshot-commit-at-redo.log",
            Some(("0/1D6ACA0", "0/1D6ACA1")),
        ),
        (
            "pg15-snapshot-update-at-redo.log",
            Some(("0/1D726A8", "0/1D726A9")),
        ),
        (
            "pg15-basebackup-restore.log",
            Some(("0/202D398", "0/202D399")),
        ),
        (
            "pg15-pitr-stop-before-commit.log",
            Some(("0/3092B80", "0/3092B80")),
        ),
        (
            "pg15-two-crash-recoveries.log",
            Some(("0/15EAD30", "0/15EAD31")),
        ),
        ("pg18-crash-recovery.log", Some(("0/17E8D20", "0/17E8D21"))),
        ("pg15-redo-not-required.log", None),
        (
            "pg15-snapshot-before-upgrade-to-18.log",
            Some(("0/1D6A888", "0/1D6A889")),
        ),
        ("pg18-after-upgrade.log", None),
    ];

    #[test]
    fn every_fixture_gives_the_proven_answer_in_both_prefixes() {
        for (name, want) in EXPECTED {
            for (form, text) in [("%m [%p]", fixture(name)), ("rds", as_rds(&fixture(name)))] {
                let got = find(&text, None);
                match want {
                    Some((redo, origin)) => {
                        let r = got.unwrap_or_else(|e| panic!("{name} ({form}): {e}"));
                        assert_eq!(r.redo_lsn.to_string(), *redo, "{name} ({form})");
                        assert_eq!(r.origin_lsn.to_string(), *origin, "{name} ({form})");
                        assert!(r.text.contains("redo done at"));
                        assert!(r.time.is_some(), "{name} ({form}): time of {}", r.text);
                    }
                    None => assert!(
                        got.is_err(),
                        "{name} ({form}) must not yield an LSN: {got:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn not_required_and_not_found_say_what_to_do() {
        let e = find(&fixture("pg15-redo-not-required.log"), None).unwrap_err();
        assert!(matches!(e, RedoError::NotRequired { .. }));
        assert!(e.to_string().contains("--lsn"));
        let e = find(&fixture("pg18-after-upgrade.log"), None).unwrap_err();
        assert_eq!(e, RedoError::NotFound);
        assert!(e.to_string().contains("--lsn"));
    }

    #[test]
    fn time_bound_skips_an_earlier_attempt() {
        // two crash recoveries: bounding after the first takes the second
        let log = fixture("pg15-two-crash-recoveries.log");
        let second_start = line_time("2026-11-21 05:14:15.300 UTC [1] LOG: x").unwrap();
        let r = find(&log, Some(second_start)).unwrap();
        assert_eq!(r.redo_lsn.to_string(), "0/16158A0");
        // an RDS log group holding an older attempt under the same instance name
        let older = as_rds(&fixture("pg15-snapshot-update-at-redo.log"));
        let newer = as_rds(&fixture("pg15-pitr-stop-before-commit.log"));
        let both = format!("{older}\n{newer}");
        assert_eq!(find(&both, None).unwrap().redo_lsn.to_string(), "0/1D726A8");
        let created = line_time("2026-11-21 05:18:40 UTC").unwrap();
        let r = find(&both, Some(created)).unwrap();
        assert_eq!(
            (r.redo_lsn.to_string(), r.origin_lsn.to_string()),
            ("0/3092B80".into(), "0/3092B80".into())
        );
        assert!(r.stopped_before);
    }

    #[test]
    fn stopping_before_in_an_earlier_recovery_does_not_leak_into_a_later_one() {
        let log = "2026-01-01 00:00:00 UTC [1] LOG:  recovery stopping before commit of transaction 5\n\
                   2026-01-01 00:00:01 UTC [2] LOG:  redo starts at 0/100\n\
                   2026-01-01 00:00:02 UTC [2] LOG:  redo done at 0/200 system usage: x";
        let r = find(log, None).unwrap();
        assert_eq!(r.origin_lsn.to_string(), "0/201");
    }

    #[test]
    fn times_and_odd_lines() {
        let t =
            line_time("2024-05-01 10:00:00 UTC::@:[123]:LOG:  redo done at 0/3000148 system usage")
                .unwrap();
        assert_eq!(t.unix_timestamp(), 1714557600);
        let t = line_time("2024-05-01 10:00:00.250 -05 [1] LOG").unwrap();
        assert_eq!(t.unix_timestamp(), 1714557600 + 5 * 3600);
        assert_eq!(t.millisecond(), 250);
        assert!(line_time("LOG: redo done").is_none());
        assert!(line_time("2024-05-01 10:00:00 CEST [1]").is_none());
        let e = find("x LOG:  redo done at banana", None).unwrap_err();
        assert!(matches!(e, RedoError::BadLsn { line_no: 1, .. }));
        // IPv6 remote host in the RDS prefix, no suffix after the LSN
        let r = find(
            "2024-05-01 10:00:00 UTC:[2001:db8::1](5432):u@d:[7]:LOG:  redo done at 1/A",
            None,
        )
        .unwrap();
        assert_eq!(r.origin_lsn.to_string(), "1/B");
    }

    #[test]
    fn cross_check_bounds() {
        let l = |s: &str| s.parse::<Lsn>().unwrap();
        assert!(cross_check(l("0/200"), l("0/100"), l("0/300")).is_ok());
        assert!(cross_check(l("0/100"), l("0/100"), l("0/100")).is_ok());
        assert!(
            cross_check(l("0/99"), l("0/100"), l("0/300"))
                .unwrap_err()
                .contains("before the slot")
        );
        assert!(
            cross_check(l("0/301"), l("0/100"), l("0/300"))
                .unwrap_err()
                .contains("past the source")
        );
    }

    #[test]
    fn verdict_only_before_start() {
        use crate::domain::phase::Phase;
        use crate::domain::testdata;
        let blue = testdata::with_pub_slot(testdata::live(true)); // confirmed 0/90, current 0/100
        let ok: Lsn = "0/91".parse().unwrap();
        let early: Lsn = "0/50".parse().unwrap();
        assert_eq!(
            verdict_now(ok, Phase::Subscribed, "slot", Some(&blue)),
            Some(Ok(()))
        );
        assert!(matches!(
            verdict_now(early, Phase::Prepared, "slot", Some(&blue)),
            Some(Err(_))
        ));
        assert_eq!(
            verdict_now(early, Phase::Replicating, "slot", Some(&blue)),
            None
        );
        assert_eq!(
            verdict_now(ok, Phase::Subscribed, "other", Some(&blue)),
            None
        );
        assert_eq!(verdict_now(ok, Phase::Subscribed, "slot", None), None);
    }
}
