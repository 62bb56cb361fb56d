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
use crate::engine::journal::Record;

/// Rows as text, as PostgreSQL sends them over the simple protocol.
pub type Rows = Vec<Vec<Option<String>>>;

pub struct Db {
    pub side: Side,
    client: Client,
    timeout: Duration,
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
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Run one statement, journaled; returns its rows as text.
    pub async fn run(&self, ctx: &mut Ctx<'_>, step: &str, stmt: &Stmt) -> Result<Rows> {
        let t = Instant::now();
        let res = tokio::time::timeout(self.timeout, self.client.simple_query(&stmt.sql)).await;
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
                ctx.journal.write(Record {
                    event: "statement",
                    step: Some(step),
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
                format!("{}: {}", side.upper(), pg_error_text(&e)),
            ),
            Err(_) => {
                let msg = format!(
                    "{}: no answer within {} s",
                    side.upper(),
                    self.timeout.as_secs()
                );
                self.fail(ctx, step, stmt, ms, msg)
            }
        }
    }

    /// Journal a failed statement and return its error.
    fn fail(
        &self,
        ctx: &mut Ctx<'_>,
        step: &str,
        stmt: &Stmt,
        ms: f64,
        msg: String,
    ) -> Result<Rows> {
        ctx.journal.write(Record {
            event: "statement",
            step: Some(step),
            side: Some(self.side),
            sql: Some(&stmt.shown),
            ok: Some(false),
            error: Some(&msg),
            ms: Some(ms),
            ..Default::default()
        })?;
        bail!(msg)
    }

    /// First column of the first row, or an error naming the statement.
    pub async fn value(
        &self,
        ctx: &mut Ctx<'_>,
        step: &str,
        stmt: &Stmt,
    ) -> Result<Option<String>> {
        let rows = self.run(ctx, step, stmt).await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten())
    }
}
