//! The names of the engine's steps: one vocabulary for the plan shown, the code that runs, the
//! journal's records and the dashboard's log, so none of them can drift from the others.

use serde::Serialize;

macro_rules! step_ids {
    ($($(#[$doc:meta])* $id:ident = $text:literal,)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StepId {
            $($(#[$doc])* $id,)+
        }

        impl StepId {
            pub const ALL: &[StepId] = &[$(StepId::$id,)+];

            /// The id as the journal and `--json` write it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(StepId::$id => $text,)+
                }
            }
        }
    };
}

step_ids! {
    // prepare
    Grant = "grant",
    Publication = "publication",
    Slot = "slot",
    // subscribe
    FenceGreen = "fence_green",
    DropCopiedSlot = "drop_copied_slot",
    Subscription = "subscription",
    // start
    AdvanceOrigin = "advance_origin",
    Enable = "enable",
    Verify = "verify",
    // finalize
    DropReverseSubscription = "drop_reverse_subscription",
    DropReverseSlot = "drop_reverse_slot",
    // analyze
    /// ANALYZE of a database's tables without planner statistics, on several connections.
    Analyze = "analyze",
    // verify
    /// Compare a database's tables on both sides (`pgcutover verify` as an action).
    Compare = "compare",
    // fence and unfence, alone or as the edges of the switch window
    Fence = "fence",
    Unfence = "unfence",
    /// `[cutover] move_pg_cron`: the source's active pg_cron jobs paused in the window …
    CronPause = "cron_pause",
    /// … and the same jobs activated on the target before it serves.
    CronResume = "cron_resume",
    // cutover and rollback, before the window
    SyncCommit = "sync_commit",
    ResumeForward = "resume_forward",
    ForwardStreaming = "forward_streaming",
    ArmSlot = "arm_slot",
    ArmPublication = "arm_publication",
    ArmSubscription = "arm_subscription",
    LagGate = "lag_gate",
    /// The sequences copied once before the window as well (the window copies them again).
    SequencesAhead = "sequences_ahead",
    TrafficPause = "traffic_pause",
    // inside the window
    PreparedXacts = "prepared_xacts",
    SourceLsn = "source_lsn",
    Drain = "drain",
    /// Each database's forward subscription disabled, in its database …
    StopForward = "stop_forward",
    /// … their workers ended from one connection, only when a slot is to be decoded (else they
    /// end on their own, after the window).
    EndForwardWorkers = "end_forward_workers",
    TargetLsn = "target_lsn",
    ArmOrigin = "arm_origin",
    Sequences = "sequences",
    CarrySlots = "carry_slots",
    /// What holds a transaction id on the source, and whether any ended since its last LSN, in
    /// every database at once …
    VerifyFence = "verify_fence",
    /// … and, only if one ended, each database's slot decoded for a write after the drain.
    DecodeSlot = "decode_slot",
    // after the window: the application's traffic follows
    TrafficRetarget = "traffic_retarget",
    TrafficResume = "traffic_resume",
    RouterCommand = "router_command",
    // after the window
    DropForward = "drop_forward",
    DropSourceSlot = "drop_source_slot",
    MarkRollback = "mark_rollback",
    StartReverse = "start_reverse",
    ReverseStreaming = "reverse_streaming",
    // a failed window put back
    Undo = "undo",
    UndoUnfenceSource = "undo_unfence_source",
    UndoEnableForward = "undo_enable_forward",
    UndoDisarm = "undo_disarm",
    /// The pg_cron jobs the window moved put back: paused on the target, active on the source.
    UndoCron = "undo_cron",
    UndoResumeTraffic = "undo_resume_traffic",
    /// The router's command failed after the unfence: the target fenced again and read for writes.
    UndoTargetWrites = "undo_target_writes",
    // RDS
    SnapshotCall = "snapshot",
    UpgradeSnapshotCall = "upgrade-snapshot",
    RestoreCall = "restore",
    RdsWait = "wait",
}

impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl StepId {
    /// A step on what belongs to the whole instance (roles, the WAL position, the traffic),
    /// done once however many databases are replicated; every other step is per database.
    pub fn instance_wide(self) -> bool {
        matches!(
            self,
            StepId::Grant
                | StepId::FenceGreen
                | StepId::Fence
                | StepId::Unfence
                | StepId::CronPause
                | StepId::CronResume
                | StepId::TrafficPause
                | StepId::PreparedXacts
                | StepId::SourceLsn
                | StepId::Drain
                | StepId::TargetLsn
                | StepId::TrafficRetarget
                | StepId::TrafficResume
                | StepId::RouterCommand
                | StepId::SnapshotCall
                | StepId::UpgradeSnapshotCall
                | StepId::RestoreCall
                | StepId::RdsWait
        )
    }
}

/// A step that opens or closes the write-unavailability window (source fenced → target serving).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    Opens,
    Closes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_words() {
        let mut seen = std::collections::HashSet::new();
        for id in StepId::ALL {
            let s = id.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-'),
                "{s}"
            );
            assert_eq!(
                serde_json::to_string(id).unwrap(),
                format!("\"{s}\""),
                "JSON writes the id"
            );
        }
    }
}
