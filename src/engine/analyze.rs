//! The `analyze` action: after a restore and a major-version upgrade GREEN's tables may have no
//! planner statistics (pg_upgrade before 18 does not carry them), and plans flip under the full
//! load after the switch. This ANALYZEs every table of every replicated database on GREEN that
//! has none, largest first, `[analyze] jobs` at a time per database, with progress. A rerun
//! finds only the tables still without statistics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use color_eyre::eyre::Result;
use tokio_postgres::error::SqlState;

use super::db::{Db, UNBOUNDED, sqlstate};
use super::scope::Scope;
use super::sqlgen::Stmt;
use super::step::Step;
use super::{Ctx, Outcome};
use crate::collect::connect::{connect, pg_error_text};
use crate::collect::queries;
use crate::config::Settings;
use crate::domain::guards::Guard;
use crate::domain::observed::Side;
use crate::domain::step::StepId;
use crate::format::bytes;
use crate::sql::qualified;

/// One database's step and the size of each table its statements analyze, in their order.
pub struct Planned {
    pub step: Step,
    pub sizes: Vec<u64>,
}

/// A table without statistics as GREEN lists it.
struct Table {
    schema: String,
    name: String,
    bytes: u64,
    may: bool,
}

async fn tables(settings: &Settings, version_num: i32) -> Result<Vec<Table>> {
    let timeout = settings.poll.timeout.max(Duration::from_secs(10));
    let client = connect(&settings.green, timeout).await?;
    let rows = client
        .query(&queries::tables_without_statistics(version_num), &[])
        .await
        .map_err(|e| color_eyre::eyre::eyre!("GREEN: {}", pg_error_text(&e)))?;
    Ok(rows
        .iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
            bytes: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            may: r.get::<_, Option<bool>>(3).unwrap_or(false),
        })
        .collect())
}

/// Each replicated database's tables without statistics on GREEN, read now, as one step per
/// database (none when every table has statistics); and the notes: the tables this login may
/// not analyze.
pub async fn plan(
    main: &Settings,
    scopes: &[Scope],
    version_num: i32,
) -> Result<(Vec<Planned>, Vec<String>), Guard> {
    let mut planned = Vec::new();
    let mut notes = Vec::new();
    for sc in scopes {
        let prefix = sc.prefix();
        let found = tables(&sc.settings, version_num).await.map_err(|e| Guard {
            name: "tables_readable",
            ok: false,
            detail: format!(
                "{prefix}GREEN's tables without statistics cannot be listed: {}",
                crate::format::report_chain(&e)
            ),
        })?;
        let (may, may_not): (Vec<Table>, Vec<Table>) = found.into_iter().partition(|t| t.may);
        if !may_not.is_empty() {
            let names: Vec<String> = may_not
                .iter()
                .map(|t| qualified(&t.schema, &t.name))
                .collect();
            notes.push(format!(
                "{prefix}{} table(s) without statistics are not this login's to ANALYZE (not their owner): {}; run ANALYZE on them as their owner",
                names.len(),
                crate::domain::checks::list(&names, 5)
            ));
        }
        if may.is_empty() {
            continue;
        }
        let total: u64 = may.iter().map(|t| t.bytes).sum();
        let jobs = main.analyze_jobs.min(may.len());
        let mut step = Step::new(
            StepId::Analyze,
            Side::Green,
            format!(
                "ANALYZE {} table(s) without planner statistics on GREEN ({}), largest first, {jobs} at a time",
                may.len(),
                bytes(total)
            ),
        )
        .later(format!(
            "{UNBOUNDED}  -- first, on each of the {jobs} connection(s): ANALYZE takes as long as the table"
        ));
        for t in &may {
            step = step.stmt(Stmt::new(format!(
                "ANALYZE {}",
                qualified(&t.schema, &t.name)
            )));
        }
        planned.push(Planned {
            step: step.in_db(sc.db.as_deref()),
            sizes: may.iter().map(|t| t.bytes).collect(),
        });
    }
    Ok((planned, notes))
}

/// What the workers of one database have done so far.
#[derive(Default)]
struct Done {
    tables: usize,
    bytes: u64,
    failed: Vec<String>,
    gone: Vec<String>,
}

impl Done {
    /// One table's ANALYZE finished: a table dropped since the plan is not a failure.
    fn record(&mut self, res: Result<()>, table: &str, size: u64, prefix: &str) {
        self.tables += 1;
        self.bytes += size;
        match res {
            Ok(()) => {}
            Err(e) if sqlstate(&e) == Some(&SqlState::UNDEFINED_TABLE) => {
                self.gone.push(table.to_string());
            }
            Err(e) => self.failed.push(format!(
                "{prefix}{table}: {}",
                crate::format::report_chain(&e)
            )),
        }
    }

    fn summary(&self, prefix: &str, total: u64, took: Duration, jobs: usize) -> String {
        let ok = self.tables - self.failed.len() - self.gone.len();
        let mut line = format!(
            "{prefix}analyzed {ok} table(s) ({}) in {:.1} s with {jobs} connection(s)",
            bytes(total),
            took.as_secs_f64()
        );
        if !self.gone.is_empty() {
            line.push_str(&format!(
                "; {} dropped since the plan: {}",
                self.gone.len(),
                self.gone.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            line.push_str(&format!("; {} failed", self.failed.len()));
        }
        line
    }
}

/// Run every database's step: its statements taken in order (largest first) by `[analyze]
/// jobs` connections. A table that fails is named and the others go on; SIGINT stops them all.
pub async fn run(settings: &Settings, planned: &[Planned], ctx: &Ctx<'_>) -> Result<Outcome> {
    if planned.is_empty() {
        return Ok(Outcome::NothingToDo {
            summary: "analyze: every table GREEN's login may analyze has planner statistics".into(),
        });
    }
    let mut summary = Vec::new();
    let mut failed = Vec::new();
    for p in planned {
        let (line, bad) = one_database(settings, p, ctx).await?;
        summary.push(line);
        failed.extend(bad);
    }
    if failed.is_empty() {
        return Ok(Outcome::Done {
            summary: summary.join("; "),
            window_ms: None,
            held_ms: None,
            steps: ctx.steps(),
        });
    }
    Ok(Outcome::FailedSafe {
        error: format!(
            "{} table(s) could not be analyzed: {}",
            failed.len(),
            failed.join("; ")
        ),
        state: format!(
            "{}; the other tables have their statistics and nothing else changed: rerun `pgcutover run analyze` for the rest",
            summary.join("; ")
        ),
    })
}

async fn one_database(
    settings: &Settings,
    p: &Planned,
    ctx: &Ctx<'_>,
) -> Result<(String, Vec<String>)> {
    let step = &p.step;
    let id = step.id;
    let prefix = crate::domain::names::db_prefix(step.db.as_deref());
    let t0 = ctx.begin(id, &step.title, Some(step.side))?;
    let side = match &step.db {
        Some(d) => settings.green.for_database(d),
        None => settings.green.clone(),
    };
    let timeout = settings.poll.timeout.max(Duration::from_secs(10));
    let jobs = settings.analyze_jobs.clamp(1, step.stmts.len().max(1));
    let conns = futures_util::future::join_all(
        (0..jobs).map(|_| async { Db::connect(&side, timeout).await?.unbounded(ctx, id).await }),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<Db>>>()?;
    let total: u64 = p.sizes.iter().sum();
    let n = step.stmts.len();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Done::default());
    let started = Instant::now();
    let workers = conns.iter().map(|db| async {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(stmt) = step.stmts.get(i) else {
                return Ok::<(), color_eyre::Report>(());
            };
            let table = stmt.shown.trim_start_matches("ANALYZE ").to_string();
            let t = Instant::now();
            let res = db.run(ctx, id, stmt).await;
            ctx.check_interrupt(id)?;
            let size = p.sizes.get(i).copied().unwrap_or(0);
            let line = {
                let mut d = done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                d.record(res.map(|_| ()), &table, size, &prefix);
                progress(
                    &prefix,
                    &d,
                    n,
                    total,
                    &table,
                    t.elapsed(),
                    started.elapsed(),
                )
            };
            ctx.note(line)?;
        }
    });
    futures_util::future::try_join_all(workers).await?;
    let d = done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let line = d.summary(&prefix, total, started.elapsed(), jobs);
    ctx.end(id, t0, &line)?;
    Ok((line, d.failed))
}

/// `[app] analyze 3/12 tables, 410 MB of 1.2 GB (34 %): public.big in 2.1 s, about 6 s left`.
fn progress(
    prefix: &str,
    d: &Done,
    n: usize,
    total: u64,
    table: &str,
    took: Duration,
    elapsed: Duration,
) -> String {
    // by bytes: the time ANALYZE takes grows with the table (up to its sample)
    #[allow(clippy::cast_precision_loss)] // a share, shown to a percent
    let share = if total == 0 {
        d.tables as f64 / n.max(1) as f64
    } else {
        d.bytes as f64 / total as f64
    };
    let left = (share > 0.0 && share < 1.0)
        .then(|| Duration::try_from_secs_f64(elapsed.as_secs_f64() * (1.0 - share) / share).ok())
        .flatten()
        .map(|d| format!(", about {} left", crate::format::seconds(d)))
        .unwrap_or_default();
    format!(
        "{prefix}analyze {}/{n} tables, {} of {} ({:.0} %): {table} in {:.1} s{left}",
        d.tables,
        bytes(d.bytes),
        bytes(total),
        share * 100.0,
        took.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_by_bytes_with_what_is_left() {
        let d = Done {
            tables: 1,
            bytes: 300,
            ..Default::default()
        };
        let line = progress(
            "[app] ",
            &d,
            4,
            1200,
            "public.big",
            Duration::from_millis(2100),
            Duration::from_secs(3),
        );
        assert!(
            line.starts_with(
                "[app] analyze 1/4 tables, 300 B of 1.2 kB (25 %): public.big in 2.1 s, about "
            ),
            "{line}"
        );
        assert!(line.ends_with(" left"), "{line}");
        let all = Done {
            tables: 4,
            bytes: 1200,
            ..Default::default()
        };
        let line = progress(
            "",
            &all,
            4,
            1200,
            "t",
            Duration::ZERO,
            Duration::from_secs(3),
        );
        assert!(
            !line.contains("left"),
            "done: nothing left to estimate: {line}"
        );
        // empty tables only: by count
        let line = progress("", &d, 4, 0, "t", Duration::ZERO, Duration::from_secs(1));
        assert!(line.contains("(25 %)"), "{line}");
    }
}
