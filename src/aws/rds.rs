//! RDS reads: instances, the snapshot, events, the logical-replication parameter, log files.

use std::time::Duration;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, SourceType};
use time::OffsetDateTime;

use super::explain;
use crate::domain::rds::{Event, Instance, Snapshot};

pub fn to_time(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    let t = t?;
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()),
    )
    .ok()
}

pub fn instance_from(d: &DbInstance) -> Instance {
    let mut pending = Vec::new();
    if let Some(p) = d.pending_modified_values() {
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                pending.push(format!("{k}={v}"));
            }
        };
        add("EngineVersion", p.engine_version().map(str::to_string));
        add("DBInstanceClass", p.db_instance_class().map(str::to_string));
        add(
            "AllocatedStorage",
            p.allocated_storage().map(|v| v.to_string()),
        );
        add("MultiAZ", p.multi_az().map(|v| v.to_string()));
        add("StorageType", p.storage_type().map(str::to_string));
        add("Iops", p.iops().map(|v| v.to_string()));
    }
    Instance {
        id: d.db_instance_identifier().unwrap_or_default().to_string(),
        status: d.db_instance_status().unwrap_or("unknown").to_string(),
        engine: d.engine().map(str::to_string),
        engine_version: d.engine_version().map(str::to_string),
        class: d.db_instance_class().map(str::to_string),
        storage_type: d.storage_type().map(str::to_string),
        allocated_storage_gib: d.allocated_storage(),
        multi_az: d.multi_az().unwrap_or(false),
        pending,
        create_time: to_time(d.instance_create_time()),
        endpoint: d.endpoint().and_then(|e| {
            e.address()
                .map(|a| format!("{a}:{}", e.port().unwrap_or(5432)))
        }),
        log_exports: d.enabled_cloudwatch_logs_exports().to_vec(),
        parameter_groups: d
            .db_parameter_groups()
            .iter()
            .map(|g| {
                (
                    g.db_parameter_group_name().unwrap_or_default().to_string(),
                    g.parameter_apply_status().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        subnet_group: d
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        security_groups: d
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        iam_auth: d.iam_database_authentication_enabled().unwrap_or(false),
    }
}

pub fn snapshot_from(s: &DbSnapshot) -> Snapshot {
    Snapshot {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        instance: s.db_instance_identifier().map(str::to_string),
        status: s.status().unwrap_or("unknown").to_string(),
        percent_progress: s.percent_progress(),
        engine_version: s.engine_version().map(str::to_string),
        create_time: to_time(s.snapshot_create_time()),
    }
}

/// One instance; `Ok(None)` when it does not exist (yet).
pub async fn instance(rds: &Client, id: &str) -> Result<Option<Instance>, String> {
    match rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().map(instance_from)),
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError::is_db_instance_not_found_fault) =>
        {
            Ok(None)
        }
        Err(e) => Err(explain(&format!("DescribeDBInstances {id}"), &e)),
    }
}

/// One snapshot; `Ok(None)` when it does not exist (yet).
pub async fn snapshot(rds: &Client, id: &str) -> Result<Option<Snapshot>, String> {
    match rds
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_snapshots().first().map(snapshot_from)),
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError::is_db_snapshot_not_found_fault) =>
        {
            Ok(None)
        }
        Err(e) => Err(explain(&format!("DescribeDBSnapshots {id}"), &e)),
    }
}

/// The instance's events of the last `span`, oldest first.
pub async fn events(rds: &Client, id: &str, span: Duration) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let r = rds
            .describe_events()
            .source_type(SourceType::DbInstance)
            .source_identifier(id)
            .duration(i32::try_from((span.as_secs() / 60).max(1)).unwrap_or(i32::MAX))
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| explain(&format!("DescribeEvents {id}"), &e))?;
        out.extend(r.events().iter().map(|e| Event {
            time: to_time(e.date()),
            source: e.source_identifier().unwrap_or(id).to_string(),
            message: e.message().unwrap_or_default().to_string(),
        }));
        marker = super::next_page(&marker, r.marker());
        if marker.is_none() {
            break;
        }
    }
    out.sort_by_key(|e| e.time);
    Ok(out)
}

/// `rds.logical_replication` in the named parameter group (`None`: the group does not list it).
pub async fn logical_replication(rds: &Client, group: &str) -> Result<Option<String>, String> {
    let mut marker: Option<String> = None;
    loop {
        let r = rds
            .describe_db_parameters()
            .db_parameter_group_name(group)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| explain(&format!("DescribeDBParameters {group}"), &e))?;
        if let Some(p) = r
            .parameters()
            .iter()
            .find(|p| p.parameter_name() == Some("rds.logical_replication"))
        {
            return Ok(Some(p.parameter_value().unwrap_or("").to_string()));
        }
        marker = super::next_page(&marker, r.marker());
        if marker.is_none() {
            return Ok(None);
        }
    }
}

/// A server log file RDS keeps for an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub name: String,
    /// Unix milliseconds.
    pub last_written: i64,
    pub size: i64,
}

/// The instance's log files, oldest first.
pub async fn log_files(rds: &Client, id: &str) -> Result<Vec<LogFile>, String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let r = rds
            .describe_db_log_files()
            .db_instance_identifier(id)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| explain(&format!("DescribeDBLogFiles {id}"), &e))?;
        out.extend(r.describe_db_log_files().iter().map(|f| LogFile {
            name: f.log_file_name().unwrap_or_default().to_string(),
            last_written: f.last_written().unwrap_or(0),
            size: f.size().unwrap_or(0),
        }));
        marker = super::next_page(&marker, r.marker());
        if marker.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| (a.last_written, &a.name).cmp(&(b.last_written, &b.name)));
    Ok(out)
}

/// The whole of one log file. DownloadDBLogFilePortion hands out portions; we loop while
/// `AdditionalDataPending` says more is there, passing the marker on. (The SDK's paginator
/// makes one call too many, after the last portion.)
pub async fn download_log_file(rds: &Client, id: &str, file: &str) -> Result<String, String> {
    let mut text = String::new();
    download_log_file_with(rds, id, file, |d| {
        text.push_str(d);
        false
    })
    .await?;
    Ok(text)
}

/// The file portion by portion, each handed to `on_portion` as it arrives (memory stays at one
/// portion); `on_portion` returns true to stop reading. Returns whether it was stopped.
pub async fn download_log_file_with(
    rds: &Client,
    id: &str,
    file: &str,
    mut on_portion: impl FnMut(&str) -> bool,
) -> Result<bool, String> {
    let mut marker = "0".to_string();
    for _ in 0..100_000 {
        let r = rds
            .download_db_log_file_portion()
            .db_instance_identifier(id)
            .log_file_name(file)
            .marker(&marker)
            .send()
            .await
            .map_err(|e| explain(&format!("DownloadDBLogFilePortion {id} {file}"), &e))?;
        if let Some(d) = r.log_file_data()
            && on_portion(d)
        {
            return Ok(true);
        }
        let next = r.marker().unwrap_or_default();
        if !r.additional_data_pending().unwrap_or(false) {
            return Ok(false);
        }
        if next.is_empty() || next == marker {
            return Err(format!(
                "DownloadDBLogFilePortion {id} {file}: RDS says more data is pending but gave no new marker ({}); \
                 try again, or download the file with the console and use [redo] source = \"file\"",
                crate::text::echo(next)
            ));
        }
        marker = next.to_string();
    }
    Err(format!(
        "DownloadDBLogFilePortion {id} {file}: too many portions"
    ))
}
