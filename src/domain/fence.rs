//! Whether any transaction ended on the fenced source after its last LSN was read. If none did,
//! nothing written after that LSN can be missing on the target, and the fence check needs no
//! logical decoding: decoding starts at the slot's restart point, which trails by one
//! `running_xacts` record (15 s of WAL under load, often more), and inside the window that is
//! the longest step by far under a heavy write load.
//!
//! Every write needs a transaction id, and ids are handed out in order. The last-LSN statement
//! takes one (its logical message) and reads, from its own snapshot, the counter of ended
//! transactions (`xmax`, the latest ended id + 1) and the ids still running. If no id was
//! running when the statement began and ours is the next one handed out, every other
//! transaction with an id is older and ended before the statement began (so before the LSN it
//! read) or newer than ours. If later `xmax` is still ours + 1, no newer one has ended: no
//! commit, of any database of the instance, can be past the LSN.

/// The id counter as the last-LSN statement saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XidMark {
    /// The statement's own transaction id.
    pub ours: u64,
    /// Its snapshot's `xmax`: the latest ended id + 1, when the statement began.
    pub xmax: u64,
    /// The ids its snapshot saw running.
    pub running: u64,
}

impl XidMark {
    /// From the statement's cells: its id, its snapshot's xmax, the number of ids running.
    pub fn parse(ours: Option<&str>, xmax: Option<&str>, running: Option<&str>) -> Option<Self> {
        let n = |v: Option<&str>| v?.trim().parse::<u64>().ok();
        Some(XidMark {
            ours: n(ours)?,
            xmax: n(xmax)?,
            running: n(running)?,
        })
    }

    /// No other transaction held an id when the statement began, nor took one before ours.
    pub fn alone(&self) -> bool {
        self.running == 0 && self.ours == self.xmax
    }

    /// Given the `xmax` read now: no transaction but ours has ended since the LSN was read.
    pub fn quiet_until(&self, xmax_now: u64) -> bool {
        self.alone() && xmax_now == self.ours + 1
    }

    /// Why the check has to decode, for the journal.
    pub fn why_not_quiet(&self, xmax_now: u64) -> String {
        if self.alone() {
            format!(
                "{} transaction(s) ended since the last LSN",
                xmax_now.saturating_sub(self.ours + 1)
            )
        } else {
            // listed as running, or not listed because newer than the snapshot's xmax
            "another transaction held an id when the last LSN was read".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(ours: u64, xmax: u64, running: u64) -> XidMark {
        XidMark {
            ours,
            xmax,
            running,
        }
    }

    #[test]
    fn quiet_only_when_ours_was_the_next_id_and_nothing_ended_after_it() {
        let m = mark(750, 750, 0);
        assert!(m.quiet_until(751));
        // another transaction ended (committed or aborted) after ours
        assert!(!m.quiet_until(752));
        assert!(m.why_not_quiet(753).starts_with("2 transaction(s) ended"));
    }

    #[test]
    fn a_transaction_running_when_the_lsn_was_read_may_commit_past_it() {
        // listed as running (older than xmax)
        let m = mark(750, 750, 1);
        assert!(!m.quiet_until(751));
        assert!(
            m.why_not_quiet(751)
                .starts_with("another transaction held an id")
        );
        // running with an id at or past xmax: not listed, but ours is not the next id
        let m = mark(752, 750, 0);
        assert!(!m.quiet_until(753));
        assert!(
            m.why_not_quiet(753)
                .starts_with("another transaction held an id")
        );
    }

    #[test]
    fn cells_that_are_not_ids_give_no_mark() {
        assert_eq!(
            XidMark::parse(Some("750"), Some("750"), Some("0")),
            Some(mark(750, 750, 0))
        );
        assert_eq!(XidMark::parse(None, Some("750"), Some("0")), None);
        assert_eq!(XidMark::parse(Some("x"), Some("750"), Some("0")), None);
    }
}
