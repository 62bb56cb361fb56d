//! A step as data: what the plan shows and what the run executes are read from the same value,
//! so the dialog cannot show one thing while another runs.

use super::PlanStep;
use super::sqlgen::Stmt;
use super::traffic::RouterOp;
use crate::domain::observed::Side;
use crate::domain::step::{Edge, StepId};

pub struct Step {
    pub id: StepId,
    pub title: String,
    pub side: Side,
    /// Statements run exactly as they are, in order; the plan shows their `shown` form.
    pub stmts: Vec<Stmt>,
    /// Statements built while running from values read then, as the plan shows them (`<…>`).
    pub later: Vec<String>,
    /// How the last statement repeats (a wait), as the plan says it.
    pub repeat: Option<String>,
    /// A note the plan shows after a statement (by its place in `stmts`), such as the side it
    /// runs on when the step reads one side and writes the other. Never part of the statement:
    /// a statement whose shown text differs from the one run is refused unless it holds a
    /// secret (`Stmt::secret`).
    pub stmt_notes: Vec<(usize, String)>,
    pub window: Option<Edge>,
    /// What the step asks of the application's router (PgBouncer, the operator's command),
    /// each with the text the plan shows for it.
    pub router: Vec<(RouterOp, String)>,
    /// The objects the statements create, one per statement, for an undo to name and remove.
    pub creates: Vec<String>,
    /// The database the step runs in; `None`: the database of the side's connection (a step
    /// of the whole instance, such as the fence, or the only database replicated).
    pub db: Option<String>,
}

impl Step {
    pub fn new(id: StepId, side: Side, title: impl Into<String>) -> Step {
        Step {
            id,
            title: title.into(),
            side,
            stmts: Vec::new(),
            later: Vec::new(),
            repeat: None,
            stmt_notes: Vec::new(),
            window: None,
            router: Vec::new(),
            creates: Vec::new(),
            db: None,
        }
    }

    /// The step of one of several replicated databases: it runs there, and its title says so.
    pub fn in_db(mut self, db: Option<&str>) -> Step {
        if let Some(d) = db {
            self.title = format!("{}{}", crate::domain::names::db_prefix(db), self.title);
            self.db = Some(d.to_string());
        }
        self
    }

    /// A statement that creates `name`, which an undo removes.
    pub fn creating(mut self, name: &str, s: Stmt) -> Step {
        self.stmts.push(s);
        self.creates.push(name.to_string());
        self
    }

    pub fn op(mut self, op: RouterOp, shown: impl Into<String>) -> Step {
        self.router.push((op, shown.into()));
        self
    }

    pub fn stmt(mut self, s: Stmt) -> Step {
        self.stmts.push(s);
        self
    }

    /// A statement, shown with `note` after it.
    pub fn stmt_noted(mut self, s: Stmt, note: impl Into<String>) -> Step {
        self.stmt_notes.push((self.stmts.len(), note.into()));
        self.stmts.push(s);
        self
    }

    pub fn stmts(mut self, s: impl IntoIterator<Item = Stmt>) -> Step {
        self.stmts.extend(s);
        self
    }

    pub fn later(mut self, shown: impl Into<String>) -> Step {
        self.later.push(shown.into());
        self
    }

    pub fn repeat(mut self, how: impl Into<String>) -> Step {
        self.repeat = Some(how.into());
        self
    }

    pub fn edge(mut self, e: Edge) -> Step {
        self.window = Some(e);
        self
    }

    /// The i-th statement; a step built without it is a bug in its builder, reported as an
    /// error (never a panic) before anything of the step ran.
    pub fn sql(&self, i: usize) -> color_eyre::eyre::Result<&Stmt> {
        self.stmts.get(i).ok_or_else(|| {
            color_eyre::eyre::eyre!("internal: step {} has no statement {i}", self.id)
        })
    }

    pub fn to_plan(&self) -> PlanStep {
        let mut sql: Vec<String> = self.stmts.iter().map(|s| s.shown.clone()).collect();
        for (i, note) in &self.stmt_notes {
            if let Some(line) = sql.get_mut(*i) {
                line.push_str("  -- ");
                line.push_str(note);
            }
        }
        sql.extend(self.router.iter().map(|(_, shown)| shown.clone()));
        sql.extend(self.later.iter().cloned());
        if let (Some(how), Some(last)) = (&self.repeat, sql.last_mut()) {
            last.push_str("  -- ");
            last.push_str(how);
        }
        PlanStep {
            step: self.id,
            title: self.title.clone(),
            side: self.side,
            sql,
            window: self.window,
            db: self.db.clone(),
        }
    }
}

/// Each database's steps, merged step by step (every database's first step, then every
/// database's second…), so that each step runs in all databases at once. A database without
/// a step (already done there) is skipped; each database keeps its own order.
pub fn by_step(lists: impl IntoIterator<Item = Vec<Step>>) -> Vec<Step> {
    let mut lists: Vec<std::collections::VecDeque<Step>> =
        lists.into_iter().map(Into::into).collect();
    let mut out = Vec::new();
    loop {
        let heads: Vec<StepId> = lists
            .iter()
            .filter_map(|l| l.front().map(|s| s.id))
            .collect();
        let Some(first) = heads.first().copied() else {
            return out;
        };
        // the earliest step: one no database still has to run after something else
        let id = heads
            .iter()
            .copied()
            .find(|h| !lists.iter().any(|l| l.iter().skip(1).any(|s| s.id == *h)))
            .unwrap_or(first);
        for l in &mut lists {
            if l.front().is_some_and(|s| s.id == id) {
                out.extend(l.pop_front());
            }
        }
    }
}
