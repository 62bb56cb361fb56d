//! The engine's own connection to a side (separate from monitoring), where every statement is
//! journaled before and after it runs and bounded by a timeout.

use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, bail, eyre};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::Ctx;
use super::sqlgen::Stmt;
use crate::collect::connect::{connect, pg_error_text};
use crate::config::SideSettings;
use crate::domain::observed::Side;
use crate::domain::step::StepId;
use crate::engine::journal::Record;
use tokio_postgres::error::SqlState;

/// Sent before a statement that carries a password (`CREATE SUBSCRIPTION … password=…`), in
/// its own round trip so that it is in force when the server receives the next one: the server
/// must not write that statement to its log (log_statement; on error, log_min_error_statement)
/// nor keep it in pg_stat_statements. These settings need privileges a role may lack (plain RDS
/// masters cannot set them): each is tried and skipped if refused. A short lock_timeout keeps the
/// statement from waiting, visible in pg_stat_activity, behind someone's lock. What remains is in
/// the README (Secrets).
pub const SECRET_GUARD: &str = "BEGIN; SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '60s'; \
DO $pgcutover$ DECLARE p text; BEGIN \
FOREACH p IN ARRAY ARRAY['log_statement=none', 'log_min_error_statement=panic', \
'log_min_duration_statement=-1', 'pg_stat_statements.track_utility=off'] LOOP \
BEGIN PERFORM set_config(split_part(p, '=', 1), split_part(p, '=', 2), true); \
EXCEPTION WHEN insufficient_privilege OR undefined_object OR invalid_parameter_value OR cant_change_runtime_param THEN NULL; \
END; END LOOP; END $pgcutover$";

/// Rows as text, as PostgreSQL sends them over the simple protocol.
pub type Rows = Vec<Vec<Option<String>>>;

/// What `unbounded` sends, as the plan shows it.
pub const UNBOUNDED: &str = "SET statement_timeout = 0";

pub struct Db {
    pub side: Side,
    client: Client,
    timeout: Duration,
    /// For cancelling a running statement on SIGINT.
    settings: std::sync::Arc<SideSettings>,
}

impl Db {
    pub async fn connect(s: &SideSettings, timeout: Duration) -> Result<Db> {
        let client = connect(s, timeout).await?;
        // A fence must not wait forever behind someone's lock, nor a statement hang the window.
        client
            .batch_execute("SET lock_timeout = '5s'; SET statement_timeout = '120s'; SET idle_in_transaction_session_timeout = '60s'")
            .await
            .map_err(|e| eyre!("{}: {}", s.side.upper(), pg_error_text(&e)))?;
        Ok(Db {
            side: s.side,
            client,
            timeout: Duration::from_secs(130),
            settings: std::sync::Arc::new(s.clone()),
        })
    }

    /// This connection for statements that take as long as the data they read (ANALYZE of a
    /// large table): no statement timeout on the server, a day's bound here. SIGINT still
    /// cancels them.
    pub async fn unbounded(mut self, ctx: &Ctx<'_>, step: StepId) -> Result<Db> {
        self.run(ctx, step, &Stmt::new(UNBOUNDED)).await?;
        self.timeout = Duration::from_hours(24);
        Ok(self)
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Run one statement, journaled; returns its rows as text. A statement that carries a secret
    /// runs inside `SECRET_GUARD`; any other must run exactly as it is shown and journaled.
    pub async fn run(&self, ctx: &Ctx<'_>, step: StepId, stmt: &Stmt) -> Result<Rows> {
        if !stmt.secret {
            if stmt.sql != stmt.shown {
                bail!(
                    "internal: the statement of step {} differs from the one shown in its plan; nothing was run",
                    step.as_str()
                );
            }
            return self.run_one(ctx, step, stmt).await;
        }
        let res = async {
            self.run_one(ctx, step, &Stmt::new(SECRET_GUARD)).await?;
            let rows = self.run_one(ctx, step, stmt).await?;
            self.run_one(ctx, step, &Stmt::new("COMMIT")).await?;
            Ok(rows)
        }
        .await;
        if res.is_err() {
            // Never leave the engine's connection inside a failed transaction: whatever stopped
            // the statement (an error, SIGINT), the next one on this connection must run.
            let _ = self.client.simple_query("ROLLBACK").await;
        }
        res
    }

    async fn run_one(&self, ctx: &Ctx<'_>, step: StepId, stmt: &Stmt) -> Result<Rows> {
        // Waiting loops (drain, fence) send statements without new steps: stop them here.
        ctx.check_interrupt(step)?;
        // Only the shown form ever reaches a logger: the executed text may carry a password.
        tracing::debug!(side = %self.side, step = step.as_str(), sql = %stmt.shown, "statement");
        let t = Instant::now();
        let ticket = ctx
            .interrupt
            .running(self.client.cancel_token(), &self.settings);
        let res = tokio::time::timeout(self.timeout, self.client.simple_query(&stmt.sql)).await;
        ctx.interrupt.finished(ticket);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let side = self.side;
        match res {
            Ok(Ok(msgs)) => {
                let rows: Rows = msgs
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect();
                let first = rows.first().and_then(|r| r.first()).cloned().flatten();
                ctx.journal().write(Record {
                    event: "statement",
                    step: Some(step.as_str()),
                    side: Some(side),
                    sql: Some(&stmt.shown),
                    ok: Some(true),
                    result: first.as_deref(),
                    ms: Some(ms),
                    ..Default::default()
                })?;
                Ok(rows)
            }
            Ok(Err(e)) => self.fail(
                ctx,
                step,
                stmt,
                ms,
                StatementFailed {
                    code: e.code().cloned(),
                    text: format!("{}: {}", side.upper(), pg_error_text(&e)),
                },
            ),
            Err(_) => {
                let msg = format!(
                    "{}: no answer within {} s",
                    side.upper(),
                    self.timeout.as_secs()
                );
                self.fail(
                    ctx,
                    step,
                    stmt,
                    ms,
                    StatementFailed {
                        code: None,
                        text: msg,
                    },
                )
            }
        }
    }

    /// Journal a failed statement and return its error.
    fn fail(
        &self,
        ctx: &Ctx<'_>,
        step: StepId,
        stmt: &Stmt,
        ms: f64,
        failed: StatementFailed,
    ) -> Result<Rows> {
        ctx.journal().write(Record {
            event: "statement",
            step: Some(step.as_str()),
            side: Some(self.side),
            sql: Some(&stmt.shown),
            ok: Some(false),
            error: Some(&failed.text),
            ms: Some(ms),
            ..Default::default()
        })?;
        Err(failed.into())
    }

    /// First column of the first row, or an error naming the statement.
    pub async fn value(&self, ctx: &Ctx<'_>, step: StepId, stmt: &Stmt) -> Result<Option<String>> {
        let rows = self.run(ctx, step, stmt).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten())
    }
}

/// A statement the server refused (with its SQLSTATE) or did not answer in time.
#[derive(Debug)]
pub struct StatementFailed {
    pub code: Option<SqlState>,
    pub text: String,
}

impl std::fmt::Display for StatementFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for StatementFailed {}

/// The SQLSTATE of a failed statement anywhere in the error's chain.
pub fn sqlstate(e: &color_eyre::eyre::Report) -> Option<&SqlState> {
    e.chain()
        .find_map(|c| c.downcast_ref::<StatementFailed>())
        .and_then(|f| f.code.as_ref())
}
