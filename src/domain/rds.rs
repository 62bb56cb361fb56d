//! What the AWS APIs say about the two instances, the migration's snapshot and their metrics,
//! as plain values (no SDK types), so that checks, the report and the dashboard need no AWS.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

/// `*.rds.amazonaws.com` (and the China partition): RDS endpoints, whose certificates chain to
/// the RDS CA bundle.
pub fn is_rds_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h.ends_with(".rds.amazonaws.com") || h.ends_with(".rds.amazonaws.com.cn")
}

/// The longest DB instance identifier RDS accepts.
pub const MAX_INSTANCE_ID: usize = 63;
/// The longest DB snapshot identifier RDS accepts.
pub const MAX_SNAPSHOT_ID: usize = 255;

/// RDS instance and snapshot identifiers: a letter first, then letters, digits and single
/// hyphens, no hyphen last, at most `max` long.
pub fn valid_identifier(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.ends_with('-')
        && !id.contains("--")
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub id: String,
    pub status: String,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub class: Option<String>,
    pub storage_type: Option<String>,
    pub allocated_storage_gib: Option<i32>,
    pub multi_az: bool,
    /// Changes waiting for the next maintenance window or reboot, as `Name=value`.
    pub pending: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub create_time: Option<OffsetDateTime>,
    /// `host:port`.
    pub endpoint: Option<String>,
    pub log_exports: Vec<String>,
    /// Parameter group names with their apply status (`in-sync`, `pending-reboot`).
    pub parameter_groups: Vec<(String, String)>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub iam_auth: bool,
}

impl Instance {
    pub fn available(&self) -> bool {
        self.status == "available"
    }
    pub fn exports_postgresql_log(&self) -> bool {
        self.log_exports.iter().any(|e| e == "postgresql")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub instance: Option<String>,
    pub status: String,
    pub percent_progress: Option<i32>,
    pub engine_version: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub create_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(with = "time::serde::rfc3339::option")]
    pub time: Option<OffsetDateTime>,
    pub source: String,
    pub message: String,
}

/// The CloudWatch metrics of one instance, oldest point first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub series: BTreeMap<String, Vec<Point>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Unix seconds.
    pub t: i64,
    pub v: f64,
}

impl Metrics {
    pub fn latest(&self, metric: &str) -> Option<f64> {
        self.series.get(metric)?.last().map(|p| p.v)
    }
}

/// The metrics read for every instance, with their CloudWatch statistic and unit.
pub const METRICS: [(&str, &str, &str); 7] = [
    ("OldestReplicationSlotLag", "Maximum", "bytes"),
    ("ReplicationSlotDiskUsage", "Maximum", "bytes"),
    ("TransactionLogsDiskUsage", "Maximum", "bytes"),
    ("FreeStorageSpace", "Minimum", "bytes"),
    ("CPUUtilization", "Average", "percent"),
    ("DatabaseConnections", "Maximum", "count"),
    ("WriteIOPS", "Average", "per second"),
];

/// The AWS facts about one side. Each part is read on its own and may fail on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InstanceFacts {
    pub instance: Option<Result<Instance, String>>,
    pub metrics: Option<Result<Metrics, String>>,
    pub events: Option<Result<Vec<Event>, String>>,
    /// `rds.logical_replication` in the instance's parameter group (BLUE only).
    pub logical_replication: Option<Result<Option<String>, String>>,
    /// How many server log files RDS lists for the instance (GREEN only).
    pub log_files: Option<Result<usize, String>>,
}

impl InstanceFacts {
    pub fn instance(&self) -> Option<&Instance> {
        self.instance.as_ref()?.as_ref().ok()
    }
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_ref()?.as_ref().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_hosts() {
        assert!(is_rds_host("db.abc123.eu-west-1.rds.amazonaws.com"));
        assert!(is_rds_host("DB.ABC.cn-north-1.rds.amazonaws.com.cn."));
        assert!(!is_rds_host("rds.amazonaws.com.evil.example"));
        assert!(!is_rds_host("127.0.0.1"));
    }

    #[test]
    fn identifiers() {
        assert!(valid_identifier("green-1", MAX_INSTANCE_ID));
        assert!(!valid_identifier("1green", MAX_INSTANCE_ID));
        assert!(!valid_identifier("a--b", MAX_INSTANCE_ID));
        assert!(!valid_identifier("a-", MAX_INSTANCE_ID));
        assert!(!valid_identifier("a_b", MAX_INSTANCE_ID));
        assert!(!valid_identifier("", MAX_INSTANCE_ID));
        let long = format!("a{}", "b".repeat(63));
        assert!(
            !valid_identifier(&long, MAX_INSTANCE_ID),
            "64 is too long for an instance"
        );
        assert!(valid_identifier(&long, MAX_SNAPSHOT_ID));
    }

    #[test]
    fn latest_is_last_point() {
        let mut m = Metrics::default();
        m.series.insert(
            "FreeStorageSpace".into(),
            vec![Point { t: 1, v: 5.0 }, Point { t: 2, v: 4.0 }],
        );
        assert_eq!(m.latest("FreeStorageSpace"), Some(4.0));
        assert_eq!(m.latest("CPUUtilization"), None);
    }
}
