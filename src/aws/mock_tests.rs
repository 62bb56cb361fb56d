//! The calls moto cannot answer, through the SDK's own mock layer (`aws-smithy-mocks`): real
//! SDK clients with their retry and error handling, canned responses instead of the network.
//! DownloadDBLogFilePortion paging, throttling then success, access denied, GetMetricData parsing, FilterLogEvents paging.

use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::download_db_log_file_portion::DownloadDbLogFilePortionOutput;
use aws_sdk_rds::types::DbInstance;
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;

fn query_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>r-1</RequestId></ErrorResponse>"
    )
}

fn rds_client(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_rds::Client {
    mock_client!(aws_sdk_rds, RuleMode::Sequential, rules, |c| c
        .retry_config(
            retry_config().with_initial_backoff(std::time::Duration::from_millis(1))
        ))
}

#[tokio::test]
async fn log_file_download_follows_additional_data_pending() {
    let portions = mock!(aws_sdk_rds::Client::download_db_log_file_portion)
        .match_requests(|r| r.log_file_name() == Some("error/postgresql.log.2026-11-21-07"))
        .sequence()
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data("line 1\n")
                .marker("1:100")
                .additional_data_pending(true)
                .build()
        })
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data("line 2\n")
                .marker("1:200")
                .additional_data_pending(true)
                .build()
        })
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data("line 3\n")
                .marker("1:300")
                .additional_data_pending(false)
                .build()
        })
        .build();
    let client = rds_client(&[&portions]);
    let text = rds::download_log_file(&client, "green", "error/postgresql.log.2026-11-21-07")
        .await
        .unwrap();
    assert_eq!(text, "line 1\nline 2\nline 3\n");
    assert_eq!(
        portions.num_calls(),
        3,
        "no extra call after the last portion"
    );
}

#[tokio::test]
async fn a_pending_portion_without_a_new_marker_is_an_error_not_a_loop() {
    let stuck = mock!(aws_sdk_rds::Client::download_db_log_file_portion).then_output(|| {
        DownloadDbLogFilePortionOutput::builder()
            .log_file_data("x")
            .marker("0")
            .additional_data_pending(true)
            .build()
    });
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&stuck]);
    let e = rds::download_log_file(&client, "green", "f")
        .await
        .unwrap_err();
    assert!(e.contains("no new marker"), "{e}");
}

#[tokio::test]
async fn throttling_is_retried_then_succeeds() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .http_status(400, Some(query_error("Throttling", "Rate exceeded")))
        .times(2)
        .output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("blue")
                        .db_instance_status("available")
                        .build(),
                )
                .build()
        })
        .build();
    let client = rds_client(&[&rule]);
    let i = rds::instance(&client, "blue").await.unwrap().unwrap();
    assert_eq!(i.status, "available");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn access_denied_is_one_line_with_the_fix() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_instances).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
            aws_smithy_types::body::SdkBody::from(query_error(
                "AccessDenied",
                "User: arn:aws:iam::123:user/ops is not authorized to perform: rds:DescribeDBInstances",
            )),
        )
    });
    let client = rds_client(&[&rule]);
    let e = rds::instance(&client, "blue").await.unwrap_err();
    assert!(
        e.starts_with("DescribeDBInstances blue: AccessDenied"),
        "{e}"
    );
    assert!(e.contains("IAM policy") && !e.contains('\n'), "{e}");
    assert_eq!(rule.num_calls(), 1, "not retried");
}

#[tokio::test]
async fn metric_data_lands_on_the_right_instance_and_metric() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_types::DateTime;
    // Free storage is metric 3 of METRICS; GREEN is instance 1. Newest first, as CloudWatch answers.
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 14)
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("m1_3")
                        .timestamps(DateTime::from_secs(120))
                        .timestamps(DateTime::from_secs(60))
                        .values(7.0e9)
                        .values(8.0e9)
                        .build(),
                )
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("m0_4")
                        .timestamps(DateTime::from_secs(60))
                        .values(12.5)
                        .build(),
                )
                .build()
        });
    let cw = mock_client!(aws_sdk_cloudwatch, [&rule]);
    let m = metrics::read(
        &cw,
        &["blue", "green"],
        std::time::Duration::from_mins(15),
        std::time::Duration::from_mins(1),
    )
    .await
    .unwrap();
    assert_eq!(
        m[1].latest("FreeStorageSpace"),
        Some(7.0e9),
        "newest point last"
    );
    assert_eq!(m[1].series["FreeStorageSpace"][0].v, 8.0e9);
    assert_eq!(m[0].latest("CPUUtilization"), Some(12.5));
    assert_eq!(m[0].latest("FreeStorageSpace"), None);
}

#[tokio::test]
async fn filter_log_events_pages_until_no_token_even_through_empty_pages() {
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
    use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
    let ev = |id: &str, t: i64, msg: &str| {
        FilteredLogEvent::builder()
            .event_id(id)
            .log_stream_name("green")
            .timestamp(t)
            .message(msg)
            .build()
    };
    let matches = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.filter_pattern() == Some("\"redo done\""))
        .sequence()
        .output(|| FilterLogEventsOutput::builder().next_token("t1").build())
        .output(move || {
            FilterLogEventsOutput::builder()
                .events(ev(
                    "e2",
                    2_000,
                    "2026-11-21 07:00:02 UTC::@:[9]:LOG:  redo done at 0/3000148 system usage: x",
                ))
                .next_token("t2")
                .build()
        })
        .output(move || {
            FilterLogEventsOutput::builder()
                .events(ev(
                    "e9",
                    9_000,
                    "2026-11-21 07:00:09 UTC::@:[9]:LOG:  redo done at 0/5000000 system usage: x",
                ))
                .build()
        })
        .build();
    let context = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.filter_pattern().is_none() && r.end_time() == Some(2_000))
        .then_output(move || {
            FilterLogEventsOutput::builder()
                .events(ev(
                    "e1",
                    1_000,
                    "2026-11-21 07:00:01 UTC::@:[9]:LOG:  recovery stopping before commit of transaction 750",
                ))
                .events(ev(
                    "e2",
                    2_000,
                    "2026-11-21 07:00:02 UTC::@:[9]:LOG:  redo done at 0/3000148 system usage: x",
                ))
                .build()
        });
    let logs = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        [&matches, &context]
    );
    let f = redo_source::from_cloudwatch(&logs, "green", None)
        .await
        .unwrap();
    assert_eq!(
        matches.num_calls(),
        3,
        "followed every token, through the empty page"
    );
    assert_eq!(
        f.line.redo_lsn.to_string(),
        "0/3000148",
        "the first match, not the later one"
    );
    assert!(f.line.stopped_before, "the context line was seen");
    assert_eq!(
        f.line.origin_lsn.to_string(),
        "0/3000148",
        "PITR: origin = redo LSN"
    );
}

/// RDS log files are streamed through the parser: a redo line split across two portions is
/// found, and nothing after the answer is downloaded.
#[tokio::test]
async fn rds_log_portions_are_streamed_and_reading_stops_at_the_answer() {
    use aws_sdk_rds::operation::describe_db_log_files::DescribeDbLogFilesOutput;
    use aws_sdk_rds::types::DescribeDbLogFilesDetails;
    let files = mock!(aws_sdk_rds::Client::describe_db_log_files).then_output(|| {
        DescribeDbLogFilesOutput::builder()
            .describe_db_log_files(
                DescribeDbLogFilesDetails::builder()
                    .log_file_name("error/postgresql.log.1")
                    .last_written(1)
                    .size(10)
                    .build(),
            )
            .build()
    });
    let portions = mock!(aws_sdk_rds::Client::download_db_log_file_portion)
        .sequence()
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data(
                    "2024-05-01 10:00:00 UTC::@:[7]:LOG:  redo starts at 0/100\n2024-05-01 10:00:01 UTC::@:[7]:LOG:  redo do",
                )
                .marker("1:100")
                .additional_data_pending(true)
                .build()
        })
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data("ne at 0/3000148 system usage: x\nmore\n")
                .marker("1:200")
                .additional_data_pending(true)
                .build()
        })
        .output(|| {
            DownloadDbLogFilePortionOutput::builder()
                .log_file_data("never needed\n")
                .marker("1:300")
                .additional_data_pending(false)
                .build()
        })
        .build();
    let client = rds_client(&[&files, &portions]);
    let found = crate::aws::redo_source::from_rds_logs(&client, "green", None)
        .await
        .unwrap();
    assert_eq!(found.line.origin_lsn.to_string(), "0/3000149");
    assert_eq!(found.line.line_no, 2);
    assert_eq!(portions.num_calls(), 2, "stops at the answer");
}
