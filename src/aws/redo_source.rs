//! Where GREEN's `redo done at` line comes from: CloudWatch Logs, RDS log files or a local file.
//! Every source feeds the same parser (`domain::redo::find`) with the same time bound: GREEN's
//! creation time, so that an earlier attempt's lines under the same name are never taken.

use serde::Serialize;
use time::OffsetDateTime;

use super::explain;
use crate::config::{RedoSource, Settings};
use crate::domain::redo::{self, RedoError, RedoLine};

/// A redo line and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub line: RedoLine,
    /// e.g. `CloudWatch Logs /aws/rds/instance/green/postgresql, stream green`.
    pub source: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Lines read before a match to see the recovery it ends (`redo starts at`,
/// `recovery stopping before …`).
const CONTEXT_WINDOW_MS: i64 = 30 * 60 * 1000;
const CONTEXT_LINES: usize = 2000;

/// FilterLogEvents `"redo done"` on GREEN's PostgreSQL log group from `not_before` on, every
/// page; then the lines just before the first match, from its stream, for the recovery's
/// context. The parser decides on the text, as it does for a file.
pub async fn from_cloudwatch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    instance: &str,
    not_before: Option<OffsetDateTime>,
) -> Result<Found, String> {
    let group = format!("/aws/rds/instance/{instance}/postgresql");
    let start = not_before.map(ms);
    let matches = filter(logs, &group, None, Some("\"redo done\""), start, None).await?;
    let Some(first) = matches.first() else {
        let none = filter(
            logs,
            &group,
            None,
            Some("\"redo is not required\""),
            start,
            None,
        )
        .await?;
        if let Some(e) = none.first() {
            return Err(RedoError::NotRequired {
                line_no: 1,
                text: e.message.trim().to_string(),
            }
            .to_string());
        }
        return Err(format!(
            "CloudWatch Logs {group}: no `redo done at` line{}: is this GREEN's first start after the restore, \
             and is its postgresql log export on? Else pass --lsn X/Y",
            not_before
                .map(|t| format!(" since GREEN's creation ({t})"))
                .unwrap_or_default()
        ));
    };
    let ctx_start = first.timestamp - CONTEXT_WINDOW_MS;
    let ctx_start = start.map_or(ctx_start, |s| ctx_start.max(s));
    let mut context = filter(
        logs,
        &group,
        Some(&first.stream),
        None,
        Some(ctx_start),
        Some(first.timestamp),
    )
    .await?;
    // Everything up to and including the match, the last lines only.
    let cut = context
        .iter()
        .position(|e| e.id == first.id)
        .map_or(context.len(), |p| p + 1);
    context.truncate(cut);
    if !context.iter().any(|e| e.id == first.id) {
        context.push(first.clone());
    }
    let skip = context.len().saturating_sub(CONTEXT_LINES);
    let mut text = String::new();
    for e in &context[skip..] {
        text.push_str(e.message.trim_end_matches('\n'));
        text.push('\n');
    }
    let line =
        redo::find(&text, not_before).map_err(|e| format!("CloudWatch Logs {group}: {e}"))?;
    Ok(Found {
        line,
        source: format!("CloudWatch Logs {group}, stream {}", first.stream),
        not_before,
    })
}

#[derive(Debug, Clone)]
struct LogEvent {
    id: String,
    stream: String,
    timestamp: i64,
    message: String,
}

async fn filter(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: Option<&str>,
    pattern: Option<&str>,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<Vec<LogEvent>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    // Bounded: a log group with a million matches is not GREEN's restore.
    for _ in 0..10_000 {
        let mut req = logs
            .filter_log_events()
            .log_group_name(group)
            .set_filter_pattern(pattern.map(str::to_string))
            .set_start_time(start)
            .set_end_time(end)
            .set_next_token(token.clone());
        if let Some(s) = stream {
            req = req.log_stream_names(s);
        }
        let r = req
            .send()
            .await
            .map_err(|e| explain(&format!("CloudWatch Logs FilterLogEvents {group}"), &e))?;
        out.extend(r.events().iter().map(|e| LogEvent {
            id: e.event_id().unwrap_or_default().to_string(),
            stream: e.log_stream_name().unwrap_or_default().to_string(),
            timestamp: e.timestamp().unwrap_or(0),
            message: e.message().unwrap_or_default().to_string(),
        }));
        // Keep paging while a token comes back, even after an empty page: CloudWatch may
        // return empty pages while it searches.
        token = super::next_page(&token, r.next_token());
        if token.is_none() {
            break;
        }
    }
    // Stable: events with equal timestamps keep CloudWatch's (ingestion) order.
    out.sort_by_key(|e| e.timestamp);
    Ok(out)
}

/// DescribeDBLogFiles, then each file written since `not_before`, oldest first, streamed portion
/// by portion through the parser until it finds the restore's redo line.
pub async fn from_rds_logs(
    rds: &aws_sdk_rds::Client,
    instance: &str,
    not_before: Option<OffsetDateTime>,
) -> Result<Found, String> {
    let files = super::rds::log_files(rds, instance).await?;
    let bound = not_before.map_or(i64::MIN, ms);
    // One search across the files, oldest first: a recovery's lines may straddle two files.
    let mut finder = redo::Finder::new(not_before);
    let mut read = Vec::new();
    for f in files.iter().filter(|f| f.last_written >= bound) {
        read.push(f.name.clone());
        let stopped =
            super::rds::download_log_file_with(rds, instance, &f.name, |d| finder.feed(d)).await?;
        if stopped || finder.end_of_input() {
            break;
        }
    }
    match finder.finish() {
        Ok(line) => Ok(Found {
            line,
            source: format!("RDS log files of {instance}: {}", read.join(", ")),
            not_before,
        }),
        Err(RedoError::NotFound) => Err(format!(
            "RDS log files of {instance}: no `redo done at` line in {} file(s) written since GREEN's creation; pass --lsn X/Y",
            read.len()
        )),
        Err(e) => Err(format!("RDS log files of {instance}: {e}")),
    }
}

/// Longest a local log may take to read: a log on a hung network mount must not hang `status`,
/// `start` or the dashboard.
pub const FILE_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// From a local file (GREEN's server log, copied off the host or downloaded): a regular file,
/// streamed line by line off the async runtime, within `FILE_READ_LIMIT`.
pub async fn from_file(
    path: &std::path::Path,
    not_before: Option<OffsetDateTime>,
) -> Result<Found, String> {
    let p = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let f = crate::files::open_regular(&p).map_err(|e| format!("[redo] log_file: {e}"))?;
        redo::find_in(std::io::BufReader::with_capacity(256 * 1024, f), not_before)
            .map_err(|e| format!("{}: {e}", p.display()))
    });
    let line = match tokio::time::timeout(FILE_READ_LIMIT, read).await {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => {
            return Err(format!(
                "reading the redo log {} failed: {e}",
                path.display()
            ));
        }
        Err(_) => {
            return Err(format!(
                "the redo log {} was not read within {} s (a hung network mount?): copy it to a local disk",
                path.display(),
                FILE_READ_LIMIT.as_secs()
            ));
        }
    };
    Ok(Found {
        source: format!("file {}:{}", path.display(), line.line_no),
        line,
        not_before,
    })
}

/// The restore's redo line from the configured source. With `auto`, an RDS GREEN is read from
/// CloudWatch Logs, then its log files; a self-managed GREEN from `[redo] log_file`.
pub async fn locate(settings: &Settings) -> Result<Found, String> {
    let green = settings.green.rds_instance.as_deref();
    let aws = match (&settings.aws, green) {
        (Some(a), Some(_)) => Some(super::Aws::shared(a).await),
        _ => None,
    };
    // GREEN's creation time bounds every source unless the operator set one.
    let mut not_before = settings.redo_not_before;
    if not_before.is_none()
        && let (Some(aws), Some(id)) = (aws, green)
    {
        match super::rds::instance(&aws.rds, id).await {
            Ok(Some(i)) => not_before = i.create_time,
            Ok(None) => {
                return Err(format!(
                    "GREEN's RDS instance {id} does not exist (yet): restore it first, or fix [green] rds_instance"
                ));
            }
            Err(e) => return Err(format!("cannot read GREEN's creation time: {e}")),
        }
    }
    let file = || async {
        match &settings.redo_log_file {
            Some(p) => from_file(p, not_before).await,
            None => Err(
                "no [redo] log_file configured: set it to GREEN's server log, or pass --lsn X/Y from its \
                 `redo done at X/Y` line"
                    .to_string(),
            ),
        }
    };
    match (settings.redo_source, aws, green) {
        (RedoSource::File, _, _) | (RedoSource::Auto, None, _) | (RedoSource::Auto, _, None) => {
            file().await
        }
        (RedoSource::CloudWatch, Some(aws), Some(id)) => {
            from_cloudwatch(&aws.logs, id, not_before).await
        }
        (RedoSource::RdsLogs, Some(aws), Some(id)) => from_rds_logs(&aws.rds, id, not_before).await,
        (RedoSource::Auto, Some(aws), Some(id)) => {
            match from_cloudwatch(&aws.logs, id, not_before).await {
                Ok(f) => Ok(f),
                // A restore that logged `redo is not required` says so in every source.
                Err(e) if e.contains("redo is not required") => Err(e),
                Err(cw) => from_rds_logs(&aws.rds, id, not_before)
                    .await
                    .map_err(|rl| format!("{cw}; then {rl}")),
            }
        }
        (_, _, _) => Err("[redo] source needs GREEN's rds_instance and AWS settings".into()),
    }
}
