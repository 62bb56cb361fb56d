//! Where an unfinished verify stands, kept after every few chunks, so that a rerun (of the same
//! direction and tables) goes on from there instead of reading everything again. A finished run
//! removes it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::observed::Side;
use crate::domain::verify::{HotRange, Live, RowDiff, TableResult, Underway};

/// What a table's chunks came to so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub rows: i64,
    pub chunks: usize,
    #[serde(default, rename = "hot_ranges")]
    pub hot: Vec<HotRange>,
    pub diffs: Vec<RowDiff>,
}

/// A table part-way through: the chunks up to `lower` are compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Current {
    pub database: Option<String>,
    pub table: String,
    pub lower: Vec<String>,
    pub end: Vec<String>,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub source: Side,
    pub patterns: Vec<String>,
    pub started_at: String,
    pub finished: Vec<TableResult>,
    pub current: Option<Current>,
    /// How the run goes, for the dashboard (absent in a file kept before it existed).
    #[serde(default)]
    pub live: Option<Live>,
}

impl Current {
    /// The table, with its database when several are replicated.
    pub fn name(&self) -> String {
        crate::domain::verify::table_name(self.database.as_deref(), &self.table)
    }
}

impl Saved {
    /// Rows compared so far: the finished tables' and the part-way table's.
    pub fn rows(&self) -> i64 {
        self.finished.iter().map(|t| t.rows).sum::<i64>()
            + self.current.as_ref().map_or(0, |c| c.tally.rows)
    }

    pub fn new(source: Side, patterns: &[String]) -> Saved {
        Saved {
            source,
            patterns: patterns.to_vec(),
            started_at: crate::format::now_rfc3339(),
            finished: Vec::new(),
            current: None,
            live: None,
        }
    }

    /// A table this run (or the one it resumes) has finished.
    pub fn done(&self, database: Option<&str>, table: &str) -> Option<&TableResult> {
        self.finished
            .iter()
            .find(|t| t.database.as_deref() == database && t.table == table)
    }

    /// Where the table stands if it was part-way through.
    pub fn current(&self, database: Option<&str>, table: &str) -> Option<&Current> {
        self.current
            .as_ref()
            .filter(|c| c.database.as_deref() == database && c.table == table)
    }
}

pub fn path() -> Option<PathBuf> {
    crate::config::verify_dir().map(|d| d.join("verify-progress.json"))
}

/// The unfinished run to go on with: same direction, same tables asked for.
pub fn load(source: Side, patterns: &[String]) -> Option<Saved> {
    let text = crate::files::read_text_capped(&path()?, 64 << 20, "verify progress").ok()?;
    let saved: Saved = serde_json::from_str(&text).ok()?;
    (saved.source == source && saved.patterns == patterns).then_some(saved)
}

/// Keep where the run stands (0600, replaced whole). Best effort: a run that cannot keep its
/// place still verifies, it only cannot be resumed.
pub fn save(saved: &Saved) {
    let Some(path) = path() else { return };
    let Ok(text) = serde_json::to_string(saved) else {
        return;
    };
    let _ = crate::files::replace_private(&path, text.as_bytes());
}

/// The run under way (or stopped part-way), whatever its direction and tables: what the
/// dashboard's Verify panel shows while the file exists.
pub fn underway() -> Option<Underway> {
    let text = crate::files::read_text_capped(&path()?, 64 << 20, "verify progress").ok()?;
    let saved: Saved = serde_json::from_str(&text).ok()?;
    let live = saved.live?;
    Some(Underway {
        source: saved.source,
        alive: still_running(&live),
        live,
        finished: saved.finished,
    })
}

/// Whether the process that keeps this progress still runs: its pid where `/proc` tells,
/// else a progress kept in the last minute.
pub fn still_running(live: &Live) -> bool {
    let proc = std::path::Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(live.pid.to_string()).exists();
    }
    crate::format::seconds_since(&live.updated_at, time::OffsetDateTime::now_utc())
        .is_some_and(|s| s < 60)
}

/// The run finished: nothing to resume.
pub fn clear() {
    if let Some(p) = path() {
        let _ = std::fs::remove_file(p);
    }
}
