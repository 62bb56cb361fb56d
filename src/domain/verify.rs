//! Verify: whether BLUE and GREEN hold the same rows, table by table, while the pair replicates.
//! What is pure here: the verdict of a chunk from its reads on both sides, the rows two sides
//! disagree on, the patterns `--table` takes, and the result as a whole.
//!
//! A chunk (a key range, or a whole table without a key) is read on the source in one snapshot
//! (count and an order-independent hash of its rows), then on the target once it has applied
//! past the source's LSN after that read. Equal: verified. Not equal: the source is read again;
//! the target equal to that: verified. The source unchanged between its two reads (quiet) and
//! the target, caught up with it, still different: a mismatch, narrowed to the rows. The source
//! changing at every attempt: hot (unverified), never a mismatch.

use serde::{Deserialize, Serialize};

/// A chunk as one side holds it: how many rows and the sum of their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkRead {
    pub rows: i64,
    pub hash: String,
}

/// What to do after an attempt's reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Verified,
    /// The source did not change between its reads and the target, past both, differs.
    Mismatch,
    /// The source changed while it was read: try again later, or call it hot.
    Again,
}

/// One attempt: the source read before (`s1`) and after (`s2`) the target's (`t`), and the
/// target read again once past `s2` (`t2`, only when the source was quiet).
pub fn attempt(s1: &ChunkRead, t: &ChunkRead, s2: &ChunkRead, t2: Option<&ChunkRead>) -> Next {
    if t == s1 || t == s2 {
        return Next::Verified;
    }
    if s1 != s2 {
        return Next::Again;
    }
    match t2 {
        Some(t2) if t2 == s2 => Next::Verified,
        Some(_) => Next::Mismatch,
        None => Next::Again,
    }
}

/// A row the two sides disagree on, by its key as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDiff {
    pub key: String,
    pub kind: DiffKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// On the source, not on the target.
    Missing,
    /// On the target, not on the source.
    Extra,
    /// On both, with other values.
    Different,
}

/// The rows of a chunk on each side as (key, row hash), both in key order: the keys they
/// disagree on, in key order of appearance.
pub fn row_diff(source: &[(String, String)], target: &[(String, String)]) -> Vec<RowDiff> {
    use std::collections::BTreeMap;
    let t: BTreeMap<&str, &str> = target
        .iter()
        .map(|(k, h)| (k.as_str(), h.as_str()))
        .collect();
    let s: BTreeMap<&str, &str> = source
        .iter()
        .map(|(k, h)| (k.as_str(), h.as_str()))
        .collect();
    let mut out = Vec::new();
    for (k, h) in source {
        match t.get(k.as_str()) {
            None => out.push(RowDiff {
                key: k.clone(),
                kind: DiffKind::Missing,
            }),
            Some(th) if th != h => out.push(RowDiff {
                key: k.clone(),
                kind: DiffKind::Different,
            }),
            Some(_) => {}
        }
    }
    for (k, _) in target {
        if !s.contains_key(k.as_str()) {
            out.push(RowDiff {
                key: k.clone(),
                kind: DiffKind::Extra,
            });
        }
    }
    out
}

/// The groups of a table read whole (`group`, `count hash`, each side's) that differ, or that
/// one side lacks: those to read row by row. In order, so that two narrowings of the same
/// table read the same groups first.
pub fn differing_groups(source: &[(String, String)], target: &[(String, String)]) -> Vec<String> {
    use std::collections::BTreeMap;
    let s: BTreeMap<&str, &str> = source
        .iter()
        .map(|(g, v)| (g.as_str(), v.as_str()))
        .collect();
    let t: BTreeMap<&str, &str> = target
        .iter()
        .map(|(g, v)| (g.as_str(), v.as_str()))
        .collect();
    let mut out: Vec<String> = s
        .iter()
        .filter(|(g, v)| t.get(*g) != Some(*v))
        .map(|(g, _)| (*g).to_string())
        .collect();
    out.extend(
        t.keys()
            .filter(|g| !s.contains_key(*g))
            .map(|g| (*g).to_string()),
    );
    out.sort();
    out
}

/// Rows of a table without a key, each distinct row as (its hash, its text shown, copies):
/// a row the target has fewer copies of is missing there, more copies extra. It is named by
/// its text, and by how many copies when more than one.
pub fn copies_diff(
    source: &[(String, String, i64)],
    target: &[(String, String, i64)],
) -> Vec<RowDiff> {
    use std::collections::BTreeMap;
    let mut count: BTreeMap<&str, (&str, i64, i64)> = BTreeMap::new();
    for (h, shown, n) in source {
        count.entry(h.as_str()).or_insert((shown.as_str(), 0, 0)).1 += n;
    }
    for (h, shown, n) in target {
        count.entry(h.as_str()).or_insert((shown.as_str(), 0, 0)).2 += n;
    }
    count
        .into_values()
        .filter(|(_, s, t)| s != t)
        .map(|(shown, s, t)| {
            let n = (s - t).abs();
            RowDiff {
                key: if n == 1 {
                    shown.to_string()
                } else {
                    format!("{shown} ×{n}")
                },
                kind: if s > t {
                    DiffKind::Missing
                } else {
                    DiffKind::Extra
                },
            }
        })
        .collect()
}

/// A table's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Verified,
    /// Rows differ while the source held still; their keys, at most `MAX_KEYS` of them.
    Mismatch {
        keys: Vec<RowDiff>,
        more: usize,
    },
    /// Some key ranges never held still long enough to compare, even split down: the rows in
    /// them stay unverified (the ranges are listed, at most `MAX_KEYS` of them, and `more`
    /// counts the others). Its fields are named apart from the table's (`rows`, `chunks`):
    /// they are written in the same JSON object.
    Hot {
        #[serde(default)]
        hot_rows: i64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        hot_ranges: Vec<HotRange>,
        #[serde(default)]
        more: usize,
    },
    Skipped {
        reason: String,
    },
}

impl Verdict {
    /// One word for it, as the text report and the progress lines say it.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Mismatch { .. } => "MISMATCH",
            Verdict::Hot { .. } => "hot (unverified)",
            Verdict::Skipped { .. } => "skipped",
        }
    }
}

/// The most keys a mismatch lists per table; the count of the others is kept.
pub const MAX_KEYS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `schema.name`, quoted where needed.
    pub table: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Rows read on the source.
    pub rows: i64,
    pub chunks: usize,
    /// Read as one chunk: the table has no key to split it by, or the two sides order its
    /// key differently (its warning says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl TableResult {
    pub fn name(&self) -> String {
        table_name(self.database.as_deref(), &self.table)
    }
}

/// A table as verify names it: with its database when several are replicated.
pub fn table_name(database: Option<&str>, table: &str) -> String {
    format!("{}{table}", super::names::db_prefix(database))
}

/// A key range that kept changing while verify read it, split as far as it could be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotRange {
    /// The key it starts after (from the table's first row without one), as `key_text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Its last key, included (to the table's end without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<String>,
    /// Rows in it when last read on the source.
    pub rows: i64,
}

impl HotRange {
    /// `key 54321` for one row, `keys (100, 131], 31 rows` for more.
    pub fn describe(&self) -> String {
        match (&self.after, &self.upto) {
            (_, Some(k)) if self.rows == 1 => format!("key {k}"),
            (None, None) => format!("the whole table, {} rows", self.rows),
            (after, upto) => format!(
                "keys ({}, {}], {} rows",
                after.as_deref().unwrap_or("start"),
                upto.as_deref().unwrap_or("end"),
                self.rows
            ),
        }
    }
}

/// A key's values as one text: `7`, or `(7, b)` for a key of several columns.
pub fn key_text(values: &[String]) -> String {
    match values {
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    }
}

/// A table's verdict from its chunks': any mismatch wins, then hot, else verified.
pub fn table_verdict(mismatched: Vec<RowDiff>, hot: Vec<HotRange>) -> Verdict {
    if !mismatched.is_empty() {
        let more = mismatched.len().saturating_sub(MAX_KEYS);
        let mut keys = mismatched;
        keys.truncate(MAX_KEYS);
        return Verdict::Mismatch { keys, more };
    }
    if !hot.is_empty() {
        let hot_rows = hot.iter().map(|h| h.rows).sum();
        let more = hot.len().saturating_sub(MAX_KEYS);
        let mut hot_ranges = hot;
        hot_ranges.truncate(MAX_KEYS);
        return Verdict::Hot {
            hot_rows,
            hot_ranges,
            more,
        };
    }
    Verdict::Verified
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub source: super::observed::Side,
    pub target: super::observed::Side,
    pub tables: Vec<TableResult>,
    pub rows: i64,
    pub seconds: f64,
    pub rows_per_s: f64,
    pub verified: usize,
    pub mismatched: usize,
    pub hot: usize,
    pub skipped: usize,
    pub finished_at: String,
}

impl Report {
    /// `compared`: the rows this run compared in its `seconds`; a run that resumed another
    /// took the rest over, so they do not count in its rate.
    pub fn new(
        source: super::observed::Side,
        tables: Vec<TableResult>,
        (seconds, compared): (f64, i64),
        finished_at: String,
    ) -> Report {
        let count = |f: fn(&Verdict) -> bool| tables.iter().filter(|t| f(&t.verdict)).count();
        let rows = tables.iter().map(|t| t.rows).sum();
        let rows_per_s = rate(compared, seconds).unwrap_or(0.0);
        Report {
            source,
            target: source.other(),
            verified: count(|v| matches!(v, Verdict::Verified)),
            mismatched: count(|v| matches!(v, Verdict::Mismatch { .. })),
            hot: count(|v| matches!(v, Verdict::Hot { .. })),
            skipped: count(|v| matches!(v, Verdict::Skipped { .. })),
            tables,
            rows,
            seconds,
            rows_per_s,
            finished_at,
        }
    }

    /// The verdicts counted, with the direction.
    pub fn counts(&self) -> String {
        counts(
            self.source,
            [self.verified, self.mismatched, self.hot, self.skipped],
        )
    }

    /// Like `check`: 1 when a table has a mismatch; hot and skipped tables are warnings.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.mismatched > 0)
    }
}

/// Rows per second, when there is a time to divide by.
fn rate(rows: i64, seconds: f64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // a rate, shown to a row
    (seconds > 0.0).then(|| rows.max(0) as f64 / seconds)
}

/// A run as it goes, kept with its resume point after every few chunks: the dashboard's
/// Verify panel reads it, whichever process runs the verify.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// The process that runs it.
    pub pid: u32,
    /// Tables to compare, and rows in them (the planner's estimate, on the source).
    pub tables_total: usize,
    pub rows_estimate: i64,
    /// Rows compared so far, those of a run resumed included.
    pub rows_done: i64,
    /// Rows this process compared, in `seconds`: the rate, whatever it took over.
    pub compared: i64,
    pub seconds: f64,
    /// The table being compared, with its database when several are.
    pub table: Option<String>,
    pub updated_at: String,
}

impl Live {
    pub fn rows_per_s(&self) -> Option<f64> {
        rate(self.compared, self.seconds).filter(|r| *r > 0.0)
    }

    /// The time left at this rate, for the rows the estimate says are left.
    pub fn eta(&self) -> Option<std::time::Duration> {
        let left = self.rows_estimate.saturating_sub(self.rows_done).max(0);
        #[allow(clippy::cast_precision_loss)] // seconds of rows
        let s = left as f64 / self.rows_per_s()?;
        std::time::Duration::try_from_secs_f64(s).ok()
    }
}

/// A run under way (or stopped part-way) as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Underway {
    pub source: super::observed::Side,
    pub live: Live,
    /// The tables done so far, in the order they finished.
    pub finished: Vec<TableResult>,
    /// Its process still runs: else it was stopped, and a rerun resumes it.
    pub alive: bool,
}

/// The last verify as `status` and the switch's plan show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Last {
    pub finished_at: String,
    /// Seconds since it finished, when the time can be read.
    pub age_s: Option<i64>,
    pub source: super::observed::Side,
    pub target: super::observed::Side,
    pub verified: usize,
    pub mismatched: usize,
    pub hot: usize,
    pub skipped: usize,
}

impl Last {
    pub fn of(r: &Report, now: time::OffsetDateTime) -> Last {
        let age_s = crate::format::seconds_since(&r.finished_at, now);
        Last {
            finished_at: r.finished_at.clone(),
            age_s,
            source: r.source,
            target: r.target,
            verified: r.verified,
            mismatched: r.mismatched,
            hot: r.hot,
            skipped: r.skipped,
        }
    }

    /// `12 min ago, BLUE → GREEN: 14 verified, 0 MISMATCHED, 1 hot, 0 skipped`.
    pub fn describe(&self) -> String {
        let age = self.age_s.map_or_else(
            || format!("at {}", self.finished_at),
            |s| {
                format!(
                    "{} ago",
                    crate::format::seconds(std::time::Duration::from_secs(
                        u64::try_from(s).unwrap_or(0)
                    ))
                )
            },
        );
        format!(
            "{age}, {}",
            counts(
                self.source,
                [self.verified, self.mismatched, self.hot, self.skipped]
            )
        )
    }
}

/// `BLUE → GREEN: 14 verified, 0 MISMATCHED, 1 hot, 0 skipped`: how a run's verdicts are said
/// wherever its result is shown.
fn counts(
    source: super::observed::Side,
    [verified, mismatched, hot, skipped]: [usize; 4],
) -> String {
    format!(
        "{} → {}: {verified} verified, {mismatched} MISMATCHED, {hot} hot, {skipped} skipped",
        source.upper(),
        source.other().upper()
    )
}

/// `--table` patterns: `*` any run of characters, `?` one; matched against the name as it is
/// and as the report writes it (quoted where needed): `schema.name` for a pattern with a dot,
/// and the name alone (a name may hold a dot itself).
pub fn matches(pattern: &str, schema: &str, name: &str) -> bool {
    let by_name = glob(pattern, name) || glob(pattern, &crate::sql::ident(name));
    if pattern.contains('.') {
        by_name
            || glob(pattern, &format!("{schema}.{name}"))
            || glob(pattern, &crate::sql::qualified(schema, name))
    } else {
        by_name
    }
}

/// The `--table` patterns that name no table of `tables` (schema, name): a typo, to be said
/// before anything is read instead of verifying nothing.
pub fn unmatched<'a>(patterns: &'a [String], tables: &[(&str, &str)]) -> Vec<&'a str> {
    patterns
        .iter()
        .filter(|p| !tables.iter().any(|(s, n)| matches(p, s, n)))
        .map(String::as_str)
        .collect()
}

fn glob(p: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (p.chars().collect(), s.chars().collect());
    // iterative with one backtrack point: linear in practice, no recursion to blow up
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(rows: i64, hash: &str) -> ChunkRead {
        ChunkRead {
            rows,
            hash: hash.into(),
        }
    }

    #[test]
    fn a_run_s_rate_and_time_left_count_only_what_it_compared() {
        let mut l = Live {
            tables_total: 4,
            rows_estimate: 1_000_000,
            rows_done: 600_000,
            compared: 200_000,
            seconds: 2.0,
            ..Live::default()
        };
        // resumed at 400 000: the rate is its own 100 000 rows/s, 4 s left
        assert_eq!(l.rows_per_s(), Some(100_000.0));
        assert_eq!(l.eta(), Some(std::time::Duration::from_secs(4)));
        // past the estimate: nothing left, not a negative time
        l.rows_done = 1_200_000;
        assert_eq!(l.eta(), Some(std::time::Duration::ZERO));
        // nothing compared yet: no rate, no time left
        l.compared = 0;
        assert_eq!((l.rows_per_s(), l.eta()), (None, None));
        // a resumed report's rate is of the rows it compared
        let t = TableResult {
            database: None,
            table: "t".into(),
            verdict: Verdict::Verified,
            rows: 1000,
            chunks: 1,
            whole: false,
            warnings: Vec::new(),
        };
        let r = Report::new(
            crate::domain::observed::Side::Blue,
            vec![t.clone(), t],
            (1.0, 500),
            String::new(),
        );
        assert_eq!((r.rows, r.rows_per_s), (2000, 500.0));
    }

    #[test]
    fn a_table_read_whole_is_narrowed_where_its_groups_differ() {
        let g = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
        };
        let s = g(&[("0a", "3 17"), ("ff", "1 5"), ("10", "2 9")]);
        let t = g(&[("0a", "3 17"), ("10", "2 8"), ("c3", "1 4")]);
        // one hash differs, one group only on the source, one only on the target
        assert_eq!(differing_groups(&s, &t), vec!["10", "c3", "ff"]);
        assert!(differing_groups(&s, &s).is_empty());
    }

    #[test]
    fn rows_without_a_key_differ_by_their_copies() {
        let c = |v: &[(&str, &str, i64)]| -> Vec<(String, String, i64)> {
            v.iter()
                .map(|(h, r, n)| ((*h).into(), (*r).into(), *n))
                .collect()
        };
        // the same row twice on the source, once on the target; a row only on each side;
        // a row with its copies on both
        let s = c(&[("h1", "(1,a)", 2), ("h2", "(2,b)", 1), ("h4", "(4,d)", 3)]);
        let t = c(&[("h1", "(1,a)", 1), ("h3", "(3,c)", 2), ("h4", "(4,d)", 3)]);
        let d = copies_diff(&s, &t);
        let got: Vec<(&str, DiffKind)> = d.iter().map(|r| (r.key.as_str(), r.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("(1,a)", DiffKind::Missing),
                ("(2,b)", DiffKind::Missing),
                ("(3,c) ×2", DiffKind::Extra),
            ]
        );
        assert!(copies_diff(&s, &s).is_empty());
    }

    #[test]
    fn a_chunk_is_a_mismatch_only_when_the_source_held_still() {
        let (a, b, c) = (r(10, "a"), r(10, "b"), r(11, "c"));
        assert_eq!(attempt(&a, &a, &b, None), Next::Verified, "equal at once");
        assert_eq!(
            attempt(&a, &b, &b, None),
            Next::Verified,
            "the target had applied a later change the source's second read shows"
        );
        assert_eq!(
            attempt(&a, &c, &b, None),
            Next::Again,
            "the source moved: changes in flight, never a mismatch"
        );
        assert_eq!(
            attempt(&a, &c, &a, None),
            Next::Again,
            "quiet: read once more"
        );
        assert_eq!(attempt(&a, &c, &a, Some(&a)), Next::Verified);
        assert_eq!(
            attempt(&a, &c, &a, Some(&c)),
            Next::Mismatch,
            "quiet and the target, past it, still differs"
        );
    }

    #[test]
    fn row_diff_names_missing_extra_and_different_keys() {
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, h)| ((*k).to_string(), (*h).to_string()))
                .collect()
        };
        let d = row_diff(
            &s(&[("1", "x"), ("2", "y"), ("3", "z")]),
            &s(&[("1", "x"), ("3", "Z"), ("4", "w")]),
        );
        let got: Vec<(&str, DiffKind)> = d.iter().map(|r| (r.key.as_str(), r.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("2", DiffKind::Missing),
                ("3", DiffKind::Different),
                ("4", DiffKind::Extra)
            ]
        );
        assert!(row_diff(&s(&[("1", "x")]), &s(&[("1", "x")])).is_empty());
    }

    #[test]
    fn a_table_is_mismatched_hot_or_verified_and_the_keys_are_bounded() {
        let many: Vec<RowDiff> = (0..150)
            .map(|i| RowDiff {
                key: i.to_string(),
                kind: DiffKind::Different,
            })
            .collect();
        match table_verdict(many, Vec::new()) {
            Verdict::Mismatch { keys, more } => {
                assert_eq!((keys.len(), more), (MAX_KEYS, 50));
            }
            v => panic!("{v:?}"),
        }
        let hot = |after: Option<&str>, upto: &str, rows| HotRange {
            after: after.map(str::to_string),
            upto: Some(upto.to_string()),
            rows,
        };
        let (one, some) = (hot(Some("7"), "8", 1), hot(None, "(3, b)", 31));
        assert_eq!(
            table_verdict(Vec::new(), vec![one.clone(), some.clone()]),
            Verdict::Hot {
                hot_rows: 32,
                hot_ranges: vec![one.clone(), some.clone()],
                more: 0,
            }
        );
        assert_eq!(one.describe(), "key 8");
        assert_eq!(some.describe(), "keys (start, (3, b)], 31 rows");
        assert_eq!(key_text(&["3".into(), "b".into()]), "(3, b)");
        let many = vec![one; MAX_KEYS + 5];
        match table_verdict(Vec::new(), many) {
            Verdict::Hot {
                hot_rows,
                hot_ranges,
                more,
            } => assert_eq!((hot_rows, hot_ranges.len(), more), (105, MAX_KEYS, 5)),
            v => panic!("{v:?}"),
        }
        assert_eq!(table_verdict(Vec::new(), Vec::new()), Verdict::Verified);
    }

    #[test]
    fn a_table_s_verdict_is_kept_and_read_back_whole() {
        // the verdict's fields share the table's JSON object: a name used by both (`chunks`)
        // was written twice, and the kept result could not be read back
        for verdict in [
            Verdict::Hot {
                hot_rows: 1,
                hot_ranges: vec![HotRange {
                    after: Some("54320".into()),
                    upto: Some("54321".into()),
                    rows: 1,
                }],
                more: 0,
            },
            Verdict::Mismatch {
                keys: vec![RowDiff {
                    key: "7".into(),
                    kind: DiffKind::Extra,
                }],
                more: 0,
            },
            Verdict::Skipped {
                reason: "not on GREEN".into(),
            },
        ] {
            let t = TableResult {
                database: Some("app".into()),
                table: "public.t".into(),
                verdict,
                rows: 100,
                chunks: 10,
                whole: false,
                warnings: Vec::new(),
            };
            let text = serde_json::to_string(&t).unwrap();
            assert_eq!(text.matches("\"chunks\"").count(), 1, "{text}");
            assert_eq!(serde_json::from_str::<TableResult>(&text).unwrap(), t);
        }
    }

    #[test]
    fn the_exit_code_is_one_only_for_a_mismatch() {
        use super::super::observed::Side;
        let t = |verdict| TableResult {
            database: None,
            table: "public.t".into(),
            verdict,
            rows: 5,
            chunks: 1,
            whole: false,
            warnings: Vec::new(),
        };
        let ok = Report::new(
            Side::Blue,
            vec![
                t(Verdict::Verified),
                t(Verdict::Hot {
                    hot_rows: 1,
                    hot_ranges: Vec::new(),
                    more: 0,
                }),
                t(Verdict::Skipped {
                    reason: "no such table on GREEN".into(),
                }),
            ],
            (2.0, 15),
            String::new(),
        );
        assert_eq!(ok.exit_code(), 0);
        assert_eq!((ok.verified, ok.hot, ok.skipped), (1, 1, 1));
        assert!((ok.rows_per_s - 7.5).abs() < 1e-9);
        let bad = Report::new(
            Side::Green,
            vec![t(Verdict::Mismatch {
                keys: Vec::new(),
                more: 0,
            })],
            (1.0, 5),
            String::new(),
        );
        assert_eq!((bad.exit_code(), bad.target), (1, Side::Blue));
    }

    #[test]
    fn table_patterns() {
        assert!(matches("*", "public", "t"));
        assert!(matches("order*", "public", "orders"));
        assert!(matches("public.ord?rs", "public", "orders"));
        assert!(!matches("public.*", "app", "orders"));
        assert!(matches("Ünïcode.*", "Ünïcode", "Order Items"));
        assert!(!matches("a*b", "x", "acd"));
        assert!(matches("*a*b*", "x", "xxaxxbxx"));
        // as the report names them: quoted where needed
        assert!(matches(
            r#""Ünïcode"."Order Items""#,
            "Ünïcode",
            "Order Items"
        ));
        assert!(matches(r#""Order Items""#, "Ünïcode", "Order Items"));
        assert!(matches(r#""Ünïcode".*"#, "Ünïcode", "Order Items"));
        assert!(!matches(r#""Ünïcode".*"#, "public", "Order Items"));
        // a name with a dot in it
        assert!(matches("a.b", "public", "a.b"));
        assert!(matches(r#"public."a.b""#, "public", "a.b"));
        let tables = [("public", "orders"), ("Ünïcode", "Order Items")];
        let pats = |v: &[&str]| -> Vec<String> { v.iter().map(|p| (*p).to_string()).collect() };
        assert!(unmatched(&pats(&["ord*", "\"Order Items\""]), &tables).is_empty());
        let typo = pats(&["ord*", "oders", ""]);
        assert_eq!(unmatched(&typo, &tables), vec!["oders", ""]);
    }
}
