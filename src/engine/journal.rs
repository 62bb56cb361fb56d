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

/// The ids an unsettled `paused` record lists: the last `paused` record of `side` in the
/// journal at `path` with no `settled` record of that side after it. A journal that cannot be
/// read, or a line that is not a record, counts as none.
pub fn unsettled(path: &Path, paused: &str, settled: &str, side: Side) -> Vec<i64> {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct Line {
        event: String,
        side: Option<Side>,
        result: Option<String>,
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut last = Vec::new();
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let Ok(rec) = serde_json::from_str::<Line>(&line) else {
            continue;
        };
        if rec.side != Some(side) {
            continue;
        }
        if rec.event == paused {
            last = rec
                .result
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default();
        } else if rec.event == settled {
            last.clear();
        }
    }
    last
}

/// The default journal: `$XDG_STATE_HOME/pgcutover/journal.jsonl`.
pub fn default_path() -> Option<PathBuf> {
    crate::config::state_dir().map(|d| d.join("journal.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsettled_pause_is_the_last_one_of_its_side_not_settled_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut j = Journal::open(&path, "cutover").unwrap();
        let mut rec = |event, side, result| {
            j.write(Record {
                event,
                side: Some(side),
                result,
                ..Default::default()
            })
            .unwrap();
        };
        let un = |side| unsettled(&path, "cron_paused", "cron_settled", side);
        assert!(un(Side::Blue).is_empty(), "nothing journaled");
        rec("cron_paused", Side::Blue, Some("[1, 3]"));
        rec("cron_settled", Side::Blue, None);
        assert!(un(Side::Blue).is_empty(), "settled");
        rec("cron_paused", Side::Blue, Some("[4]"));
        rec("step_started", Side::Blue, Some("fence"));
        // a rollback's pause on the other side is another matter
        rec("cron_settled", Side::Green, None);
        assert_eq!(un(Side::Blue), vec![4]);
        assert!(un(Side::Green).is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"not json\n{\"event\":\"cron_paused\"}\n"))
            .unwrap();
        assert_eq!(
            un(Side::Blue),
            vec![4],
            "lines that are no record are skipped"
        );
    }
}
