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
    /// While the engine puts the databases back in a safe state, a failed write is remembered
    /// here instead of stopping that work; it is reported once the databases are safe.
    lenient: bool,
    failed: Option<String>,
    /// Test hook (`PGCUTOVER_TEST_JOURNAL_FULL_AT=step`): every write from that step on fails
    /// like a full disk, to prove the undo never depends on the journal.
    full_at: Option<String>,
    full: bool,
}

impl Journal {
    /// Open (append) the journal at `path`, creating its directory.
    pub fn open(path: &Path, action: &str) -> Result<Journal> {
        // 0600: the journal holds every statement and the state of both servers.
        let file = crate::files::append_private(path).wrap_err_with(|| {
            format!(
                "cannot open the journal {} as a private regular file; pass --journal PATH",
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
            lenient: false,
            failed: None,
            full_at: std::env::var("PGCUTOVER_TEST_JOURNAL_FULL_AT").ok(),
            full: false,
        })
    }

    /// From now on a failed write does not stop the caller (see `failed`).
    pub fn set_lenient(&mut self) {
        self.lenient = true;
    }

    /// The first write that failed while lenient, if any.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write one record. A journal that cannot be written stops the action: running without a
    /// record of what was done is not allowed, except while the engine restores safety.
    pub fn write(&mut self, rec: Record) -> Result<()> {
        let res = self.write_record(rec);
        match res {
            Err(e) if self.lenient => {
                self.failed
                    .get_or_insert_with(|| crate::format::report_chain(&e));
                Ok(())
            }
            r => r,
        }
    }

    fn write_record(&mut self, rec: Record) -> Result<()> {
        if self.full_at.is_some() && rec.step == self.full_at.as_deref() {
            self.full = true;
        }
        if self.full {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
                .wrap_err_with(|| format!("writing the journal {}", self.path.display()));
        }
        #[derive(Serialize)]
        struct Line<'a> {
            ts: String,
            run: &'a str,
            action: &'a str,
            #[serde(flatten)]
            rec: Record<'a>,
        }
        let line = Line {
            ts: crate::format::now_rfc3339_ms(),
            run: &self.run,
            action: &self.action,
            rec,
        };
        // Inert for a terminal that `cat`s or `tail -f`s the journal, and still the same JSON.
        let mut line = crate::text::json_safe(&serde_json::to_string(&line)?).into_owned();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .wrap_err_with(|| format!("writing the journal {}", self.path.display()))
    }
}

/// The default journal: `$XDG_STATE_HOME/pgcutover/journal.jsonl`.
pub fn default_path() -> Option<PathBuf> {
    crate::config::state_dir().map(|d| d.join("journal.jsonl"))
}
