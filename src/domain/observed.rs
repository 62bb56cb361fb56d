//! What one poll observes on one PostgreSQL server. Plain data: the collectors fill it, the pure
//! logic (phase, checks, diffs) reads it. Field names match the JSON the fast poll query builds.

use serde::{Deserialize, Serialize};

use super::lsn::Lsn;

/// Which of the two servers. Source/target are roles that change with the direction; a side is
/// fixed by the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Blue,
    Green,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Blue, Side::Green];

    pub fn other(self) -> Side {
        match self {
            Side::Blue => Side::Green,
            Side::Green => Side::Blue,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Blue => "blue",
            Side::Green => "green",
        }
    }

    pub fn upper(self) -> &'static str {
        match self {
            Side::Blue => "BLUE",
            Side::Green => "GREEN",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    pub version: String,
    pub version_num: i32,
    pub wal_level: String,
    pub in_recovery: bool,
    /// `pg_current_wal_lsn()`, or the replay LSN while in recovery.
    pub current_lsn: Option<Lsn>,
    pub max_replication_slots: i64,
    pub replication_slots_used: i64,
    pub max_wal_senders: i64,
    pub wal_senders_used: i64,
    /// The `rds_replication` role exists: this is RDS (or looks like it).
    pub is_rds: bool,
    pub database: String,
    pub user: String,
    pub prepared_xacts: i64,
    /// Apply workers this server can run as a subscriber: one per subscription.
    #[serde(default)]
    pub max_logical_replication_workers: Option<i64>,
    /// Background workers of every kind; the apply workers and their launcher are among them.
    #[serde(default)]
    pub max_worker_processes: Option<i64>,
    /// pg_cron's database (`cron.database_name`), when pg_cron is loaded: its jobs live there.
    #[serde(default)]
    pub cron_database: Option<String>,
    /// The connected role may run `pg_logical_emit_message`, which the switch's LSN statement
    /// needs (`None`: not read).
    #[serde(default)]
    pub can_emit_message: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub name: String,
    pub plugin: Option<String>,
    pub slot_type: String,
    pub database: Option<String>,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub temporary: bool,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
    /// The walsender streaming this slot, from `pg_stat_replication` (none while no one
    /// streams it).
    #[serde(default)]
    pub sender: Option<Sender>,
}

/// The walsender's own measure of how far behind its consumer is, in seconds: the server's
/// clock, not the dashboard's, so it does not depend on how often it is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// `state`; NULL (with every other column) when the role may not see the row's details
    /// (it needs `pg_read_all_stats`).
    pub state: Option<String>,
    pub write_lag_s: Option<f64>,
    pub flush_lag_s: Option<f64>,
    pub replay_lag_s: Option<f64>,
    /// Seconds since the consumer's last reply (`now() - reply_time`).
    pub reply_age_s: Option<f64>,
}

impl Slot {
    pub fn is_logical(&self) -> bool {
        self.slot_type == "logical"
    }

    /// Bytes the consumer has yet to confirm: current LSN − confirmed_flush (not sent_lsn: what
    /// was sent but not flushed by the subscriber is not safe yet).
    pub fn lag_bytes(&self, current: Option<Lsn>) -> Option<u64> {
        Some(current?.bytes_since(self.confirmed_flush_lsn?))
    }

    /// WAL this slot keeps on disk: current LSN − restart_lsn.
    pub fn wal_retained_bytes(&self, current: Option<Lsn>) -> Option<u64> {
        Some(current?.bytes_since(self.restart_lsn?))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub name: String,
    pub oid: u32,
    pub enabled: bool,
    pub slot_name: Option<String>,
    pub publications: Vec<String>,
    pub synchronous_commit: String,
    pub comment: Option<String>,
    /// Replication origin progress (`pg_replication_origin_status.remote_lsn`).
    pub origin_lsn: Option<Lsn>,
    pub worker_pid: Option<i32>,
    pub received_lsn: Option<Lsn>,
    pub latest_end_lsn: Option<Lsn>,
    pub last_msg_receipt_time: Option<String>,
    pub latest_end_time: Option<String>,
    /// PostgreSQL 15+ (`pg_stat_subscription_stats`); `None` where the version lacks them.
    pub apply_error_count: Option<i64>,
    pub sync_error_count: Option<i64>,
    /// Its tables whose initial copy is not finished (`pg_subscription_rel` not ready): the
    /// apply worker skips their changes until it is.
    #[serde(default)]
    pub unsynced: Vec<UnsyncedTable>,
}

/// A subscribed table still being copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsyncedTable {
    #[serde(flatten)]
    pub table: QualName,
    /// `srsubstate`: i, d, f, s (r is ready, and not listed).
    pub state: String,
}

impl UnsyncedTable {
    /// `public.stray (copying its rows)`.
    pub fn describe(&self) -> String {
        let what = match self.state.as_str() {
            "i" => "waiting for its copy to start",
            "d" => "copying its rows",
            "f" => "copied, catching up",
            "s" => "synchronized, handing over to the apply worker",
            _ => "in an unknown copy state",
        };
        format!("{} ({what})", self.table)
    }
}

impl Subscription {
    pub fn is_streaming(&self) -> bool {
        self.enabled && self.worker_pid.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub name: String,
    pub all_tables: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub truncate: bool,
}

impl Publication {
    pub fn missing_operations(&self) -> Vec<&'static str> {
        [
            (self.insert, "insert"),
            (self.update, "update"),
            (self.delete, "delete"),
            (self.truncate, "truncate"),
        ]
        .into_iter()
        .filter(|(on, _)| !on)
        .map(|(_, n)| n)
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub exists: bool,
    pub can_login: bool,
    pub sessions: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationRole {
    pub name: String,
    pub exists: bool,
    pub superuser: bool,
    pub replication: bool,
    pub rds_replication: bool,
}

impl ReplicationRole {
    pub fn may_replicate(&self) -> bool {
        self.exists && (self.superuser || self.replication || self.rds_replication)
    }
}

/// Everything the fast poll reads: small, cheap, read every interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub server: Server,
    pub slots: Vec<Slot>,
    pub subscriptions: Vec<Subscription>,
    pub publications: Vec<Publication>,
    pub app_roles: Vec<Role>,
    pub replication_role: ReplicationRole,
    /// Client sessions inside a transaction for a while, or idle in one: the fence ends them.
    /// The oldest first, at most ten.
    #[serde(default)]
    pub open_xacts: Vec<OpenXact>,
}

/// A client session with a transaction open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenXact {
    pub pid: i32,
    /// NULL for a session the connected role may not see the details of.
    pub user: Option<String>,
    pub state: Option<String>,
    pub application_name: Option<String>,
    pub xact_age_s: Option<f64>,
}

impl OpenXact {
    /// `pid 4242 (app, idle in transaction for 45 s)`.
    pub fn describe(&self) -> String {
        let mut what = vec![
            self.user
                .as_deref()
                .map_or_else(|| "?".to_string(), crate::sql::ident),
        ];
        if let Some(a) = self.application_name.as_deref().filter(|a| !a.is_empty()) {
            what.push(crate::text::one_line(a).into_owned());
        }
        let state = self.state.as_deref().unwrap_or("in a transaction");
        let age = self
            .xact_age_s
            .filter(|a| a.is_finite() && *a >= 0.0)
            .map(|a| {
                format!(
                    " for {}",
                    crate::format::seconds(std::time::Duration::from_secs_f64(a))
                )
            })
            .unwrap_or_default();
        format!("pid {} ({}, {state}{age})", self.pid, what.join(", "))
    }
}

/// What belongs to one database rather than to the instance: its subscriptions and its
/// publications. The instance's facts (server, slots, roles) are read once, in the main
/// database; each other replicated database adds only these.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DbLive {
    pub subscriptions: Vec<Subscription>,
    pub publications: Vec<Publication>,
}

impl Live {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }
    pub fn subscription(&self, name: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.name == name)
    }
    pub fn publication(&self, name: &str) -> Option<&Publication> {
        self.publications.iter().find(|p| p.name == name)
    }
    /// Logical slots of other consumers (CDC, DMS, another subscriber): every permanent logical
    /// slot but the migration's own (those of every replicated database).
    pub fn other_logical_slots<'a>(
        &'a self,
        names: &'a super::phase::MigrationNames,
    ) -> impl Iterator<Item = &'a Slot> {
        self.slots
            .iter()
            .filter(move |s| s.is_logical() && !s.temporary && !names.owns_slot(&s.name))
    }
    /// The instance as seen from database `db`: its facts with that database's objects.
    pub fn in_database(&self, db: &str, objects: &DbLive) -> Live {
        let mut l = self.clone();
        l.server.database = db.to_string();
        l.subscriptions.clone_from(&objects.subscriptions);
        l.publications.clone_from(&objects.publications);
        l
    }
    /// The application can log in here: any configured app role exists with LOGIN.
    pub fn writable(&self) -> bool {
        self.app_roles.iter().any(|r| r.exists && r.can_login)
    }
    /// Some app roles can log in and some cannot: a fence that did not finish.
    pub fn partially_fenced(&self) -> bool {
        let existing: Vec<_> = self.app_roles.iter().filter(|r| r.exists).collect();
        existing.iter().any(|r| r.can_login) && existing.iter().any(|r| !r.can_login)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QualName {
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for QualName {
    /// Shown the way SQL would need it, so an operator can paste it: `"Ünïcode"."Order Items"`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            crate::sql::ident(&self.schema),
            crate::sql::ident(&self.name)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableIdentity {
    pub table: QualName,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: String,
    pub has_primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceValue {
    pub sequence: QualName,
    /// `None` before the first `nextval` (or without the privilege to read it).
    pub last_value: Option<i64>,
}

/// What the slow poll reads: catalogue-wide facts for the checks and diffs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Tables (leaf partitions included) whose UPDATE/DELETE cannot be published: no primary key
    /// with default identity, or identity `nothing`.
    pub identity_problems: Vec<TableIdentity>,
    pub unlogged_tables: Vec<QualName>,
    pub large_objects: i64,
    pub materialized_views: Vec<QualName>,
    pub extensions: Vec<Extension>,
    /// Read separately from the rest (in batches), hence the default.
    #[serde(default)]
    pub sequences: Vec<SequenceValue>,
    /// Every database of the instance but templates and `rdsadmin`, each with its user tables
    /// (read through a connection of its own).
    #[serde(default)]
    pub databases: Vec<Database>,
    /// LOGIN roles outside the app roles, this tool's own role and the replication role, that
    /// can change a user table of this database.
    #[serde(default)]
    pub writers: Vec<Writer>,
    /// The largest user tables and whether the planner has statistics for them.
    #[serde(default)]
    pub largest_tables: Vec<TableStats>,
    /// pg_cron's jobs, when its `cron.job` table is in this database.
    #[serde(default)]
    pub cron: Option<CronJobs>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub name: String,
    pub allow_conn: bool,
    /// User tables (leaf partitions and plain tables); `None` when it could not be read.
    pub tables: Option<i64>,
    pub bytes: Option<i64>,
    /// Why it could not be read.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Writer {
    pub name: String,
    pub superuser: bool,
    pub sessions: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    pub table: QualName,
    pub bytes: i64,
    /// `pg_stats` has rows for it; `None` when the role may not read them.
    pub has_stats: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronJobs {
    pub active: i64,
    pub total: i64,
    /// The database `cron.job` is in, when it is not the connection's (`cron.database_name`).
    #[serde(default)]
    pub database: Option<String>,
    /// Why the jobs could not be read there: the counts are then unknown, not zero.
    #[serde(default)]
    pub error: Option<String>,
}
