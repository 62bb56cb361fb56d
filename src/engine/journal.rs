//! The append-only journal: one JSON line per event, flushed as written, so a crash leaves a
//! record of every statement that was sent.

use std::io::Write;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;

use crate::domain::observed::Side;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Record<'a> {
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The statement as shown (passwords redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
}

pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    pub run: String,
    pub action: String,
}

impl Journal {
    /// Open (append) the journal at `path`, creating its directory.
    pub fn open(path: &Path, action: &str) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).wrap_err_with(|| {
                format!("cannot create the journal directory {}", dir.display())
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .wrap_err_with(|| {
                format!(
                    "cannot open the journal {}; pass --journal PATH",
                    path.display()
                )
            })?;
        let run = format!(
            "{}-{}",
            time::OffsetDateTime::now_utc().unix_timestamp(),
            std::process::id()
        );
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            run,
            action: action.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write one record. A journal that cannot be written stops the action: running without a
    /// record of what was done is not allowed.
    pub fn write(&mut self, rec: Record) -> Result<()> {
        #[derive(Serialize)]
        struct Line<'a> {
            ts: String,
            run: &'a str,
            action: &'a str,
            #[serde(flatten)]
            rec: Record<'a>,
        }
        let line = Line {
            ts: crate::report::now_rfc3339_ms(),
            run: &self.run,
            action: &self.action,
            rec,
        };
        let mut line = serde_json::to_string(&line)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .wrap_err_with(|| format!("writing the journal {}", self.path.display()))
    }
}

/// The default journal: `$XDG_STATE_HOME/pgcutover/journal.jsonl`.
pub fn default_path() -> Option<PathBuf> {
    crate::config::state_dir().map(|d| d.join("journal.jsonl"))
}
