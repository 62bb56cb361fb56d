//! The last verify result, kept for `status`, the dashboard and the switch's plan, and
//! journaled.

use color_eyre::eyre::{Result, eyre};

use crate::config::Settings;
use crate::domain::observed::Side;
use crate::domain::verify::{self as v, Report, TableResult};
use crate::engine::journal::{Journal, Record};

/// Where the last verify result is kept, for `status` and the cutover's guards.
pub fn last_path() -> Option<std::path::PathBuf> {
    crate::config::verify_dir().map(|d| d.join("verify-last.json"))
}

/// Keep the result (0600, replaced whole) and journal it (the tables are journaled one by one
/// as they finish: `journal_table`); what could not be done is said.
pub fn record(report: &Report, journal: Option<&mut Journal>) -> Result<()> {
    let text = serde_json::to_string(report)?;
    let path =
        last_path().ok_or_else(|| eyre!("no state directory: set $XDG_STATE_HOME or HOME"))?;
    crate::files::replace_private(&path, text.as_bytes())?;
    let Some(j) = journal else {
        return Ok(());
    };
    let summary = format!(
        "{}; {} rows in {:.1} s",
        report.counts(),
        report.rows,
        report.seconds
    );
    j.write(Record {
        event: "verify",
        side: Some(report.source),
        ok: Some(report.mismatched == 0),
        result: Some(&summary),
        ..Default::default()
    })
}

/// One table's verdict, journaled as soon as it is known.
pub fn journal_table(journal: &mut Journal, source: Side, t: &TableResult) -> Result<()> {
    journal.write(Record {
        event: "verify_table",
        side: Some(source),
        ok: Some(!matches!(t.verdict, v::Verdict::Mismatch { .. })),
        result: Some(&serde_json::to_string(t)?),
        ..Default::default()
    })
}

/// The last verify result kept, if any (a file that cannot be read counts as none).
pub fn last() -> Option<Report> {
    let text = crate::files::read_text_capped(&last_path()?, 64 << 20, "verify result").ok()?;
    serde_json::from_str(&text).ok()
}

/// What the switch's plan says of the last verify: a guard when `[verify] required` (it must
/// exist, be of this direction and have no mismatch), else a note.
pub fn switch_check(
    settings: &Settings,
    source: Side,
) -> (Option<crate::domain::guards::Guard>, Option<String>) {
    let last = last().map(|r| v::Last::of(&r, time::OffsetDateTime::now_utc()));
    let (ok, text) = match &last {
        None => (
            false,
            "no verify result: `pgcutover verify` compares the rows of both sides before the switch".to_string(),
        ),
        Some(l) if l.source != source => (
            false,
            format!(
                "the last verify ({}) compared the other direction: run `pgcutover verify` again",
                l.describe()
            ),
        ),
        Some(l) => (l.mismatched == 0, format!("last verify: {}", l.describe())),
    };
    if settings.verify.required {
        let g = crate::domain::guards::Guard {
            name: "verified",
            ok,
            detail: if ok {
                text
            } else {
                format!("{text} ([verify] required = true)")
            },
        };
        (Some(g), None)
    } else {
        (None, Some(text))
    }
}
