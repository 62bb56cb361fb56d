//! `verify` as an action (the dashboard's key): its plan with the estimate to confirm against,
//! and its outcome.

use std::time::Duration;

use super::kept::last_path;
use crate::domain::observed::Side;
use crate::domain::verify::{Report, TableResult, Verdict};
use crate::engine::scope::Scope;

/// `verify` as an action (the dashboard's key): per database one step that says how many
/// tables and rows it reads and how, and a note with the estimate to confirm against.
pub async fn plan(
    scopes: &[Scope],
    source: Side,
) -> Result<(Vec<crate::engine::step::Step>, Vec<String>), crate::domain::guards::Guard> {
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let (su, tu) = (source.upper(), source.other().upper());
    for sc in scopes {
        let cfg = &sc.settings.verify;
        let tables =
            super::source_tables(sc, source)
                .await
                .map_err(|e| crate::domain::guards::Guard {
                    name: "tables_readable",
                    ok: false,
                    detail: format!(
                        "{}{su}'s tables cannot be listed: {}",
                        sc.prefix(),
                        crate::format::report_chain(&e)
                    ),
                })?;
        let rows: i64 = tables.iter().map(|t| t.estimate).sum();
        let keyless = tables.iter().filter(|t| t.key.is_empty()).count();
        let mut step = crate::engine::step::Step::new(
            crate::domain::step::StepId::Compare,
            source,
            format!(
                "compare {} table(s), about {rows} rows, {su} → {tu}{}",
                tables.len(),
                if keyless > 0 {
                    format!(" ({keyless} without a key, read whole)")
                } else {
                    String::new()
                }
            ),
        );
        step = step.later(format!(
            "SELECT count(*), <hash of every row>, pg_current_wal_insert_lsn() FROM <table> WHERE <key range>  \
             -- on {su}, then on {tu} once it applied past that LSN; chunks of {} rows",
            cfg.chunk_rows
        ));
        steps.push(step.in_db(sc.db.as_deref()));
        let limit = cfg.max_rows_per_s;
        notes.push(format!(
            "{}reads about {rows} rows on each side (estimate), read-only; {}",
            sc.prefix(),
            if limit == 0 {
                "no throttle ([verify] max_rows_per_s = 0): as fast as the servers read".to_string()
            } else {
                #[allow(clippy::cast_precision_loss)] // an estimate of seconds
                let s = rows.max(0) as f64 / limit as f64;
                format!(
                    "at most {limit} rows/s ([verify] max_rows_per_s): about {}",
                    crate::format::seconds(Duration::from_secs_f64(s))
                )
            }
        ));
    }
    Ok((steps, notes))
}

/// The action's outcome: no mismatch is done (hot and skipped tables said); a mismatch is a
/// failure that changed nothing.
pub fn outcome(r: &Report, steps: Vec<crate::engine::StepTime>) -> crate::engine::Outcome {
    let summary = format!(
        "verify {}; {} rows in {:.1} s",
        r.counts(),
        r.rows,
        r.seconds
    );
    if r.mismatched == 0 {
        return crate::engine::Outcome::Done {
            summary,
            window_ms: None,
            held_ms: None,
            steps,
        };
    }
    let tables: Vec<String> = r
        .tables
        .iter()
        .filter(|t| matches!(t.verdict, Verdict::Mismatch { .. }))
        .map(TableResult::name)
        .collect();
    crate::engine::Outcome::FailedSafe {
        error: format!(
            "rows differ in {}: {}",
            tables.len(),
            crate::domain::checks::list(&tables, 5)
        ),
        state: format!(
            "{summary}; nothing was changed: the rows' keys are in `pgcutover verify --json` and {}",
            last_path().map_or_else(|| "the journal".into(), |p| p.display().to_string())
        ),
    }
}
