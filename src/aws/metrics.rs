//! CloudWatch metrics of both instances in one GetMetricData call (billed per metric, so the
//! caller reads at most once a minute).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use aws_smithy_types::DateTime;

use super::explain;
use crate::domain::rds::{METRICS, Metrics, Point};

/// `m<instance index>_<metric index>`: GetMetricData ids must start with a lower-case letter.
fn query_id(instance: usize, metric: usize) -> String {
    format!("m{instance}_{metric}")
}

pub fn queries(instances: &[&str], period: Duration) -> Vec<MetricDataQuery> {
    let mut out = Vec::new();
    for (i, id) in instances.iter().enumerate() {
        for (m, (name, stat, _)) in METRICS.iter().enumerate() {
            let metric = Metric::builder()
                .namespace("AWS/RDS")
                .metric_name(*name)
                .dimensions(
                    Dimension::builder()
                        .name("DBInstanceIdentifier")
                        .value(*id)
                        .build(),
                )
                .build();
            out.push(
                MetricDataQuery::builder()
                    .id(query_id(i, m))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(i32::try_from(period.as_secs().max(60)).unwrap_or(i32::MAX))
                            .stat(*stat)
                            .build(),
                    )
                    .return_data(true)
                    .build(),
            );
        }
    }
    out
}

/// The last `span` of every metric for each instance, in the order given.
pub async fn read(
    cw: &Client,
    instances: &[&str],
    span: Duration,
    period: Duration,
) -> Result<Vec<Metrics>, String> {
    let end = SystemTime::now();
    let start = end - span;
    let mut out: Vec<Metrics> = vec![Metrics::default(); instances.len()];
    let mut token: Option<String> = None;
    loop {
        let r = cw
            .get_metric_data()
            .set_metric_data_queries(Some(queries(instances, period)))
            .start_time(DateTime::from(start))
            .end_time(DateTime::from(end))
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| explain("CloudWatch GetMetricData", &e))?;
        for res in r.metric_data_results() {
            let Some((i, m)) = res.id().and_then(parse_id) else {
                continue;
            };
            let (Some(target), Some((name, _, _))) = (out.get_mut(i), METRICS.get(m)) else {
                continue;
            };
            let series = target.series.entry(name.to_string()).or_default();
            series.extend(
                res.timestamps()
                    .iter()
                    .zip(res.values())
                    .map(|(t, v)| Point { t: t.secs(), v: *v }),
            );
        }
        token = super::next_page(&token, r.next_token());
        if token.is_none() {
            break;
        }
    }
    for m in &mut out {
        sort_dedup(&mut m.series);
    }
    Ok(out)
}

fn parse_id(id: &str) -> Option<(usize, usize)> {
    let (i, m) = id.strip_prefix('m')?.split_once('_')?;
    Some((i.parse().ok()?, m.parse().ok()?))
}

/// CloudWatch answers newest first by default, and pages may overlap: oldest first, one point
/// per timestamp.
fn sort_dedup(series: &mut BTreeMap<String, Vec<Point>>) {
    for pts in series.values_mut() {
        pts.sort_by_key(|p| p.t);
        pts.dedup_by_key(|p| p.t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_cover_every_metric() {
        let q = queries(&["blue", "green"], Duration::from_secs(30));
        assert_eq!(q.len(), 2 * METRICS.len());
        for (n, q) in q.iter().enumerate() {
            let (i, m) = parse_id(q.id().unwrap()).unwrap();
            assert_eq!(i * METRICS.len() + m, n);
            let stat = q.metric_stat().unwrap();
            assert_eq!(stat.period(), Some(60), "period is at least a minute");
            let dim = &stat.metric().unwrap().dimensions()[0];
            assert_eq!(dim.value(), Some(["blue", "green"][i]));
        }
    }
}
