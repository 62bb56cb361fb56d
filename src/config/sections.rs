//! Each section of the file resolved into its settings, with the environment and flags on top
//! where they apply. (The `[blue]`/`[green]` sections are in `side.rs`.)

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, bail, eyre};
use toml::Spanned;

use super::file::{
    AwsFile, CutoverFile, KeysValue, PollFile, RedoFile, ReplicationFile, RestoreFile,
};
use super::file::{Place, SideFile};
use super::{
    AwsSettings, CutoverSettings, DEFAULT_PUBLICATION, DEFAULT_SLOT, DEFAULT_SUBSCRIPTION,
    Overrides, PollSettings, RedoSource,
};
use crate::domain;
use crate::domain::names::DatabaseSet;
use crate::domain::phase::MigrationNames;
use crate::domain::rds::{MAX_SNAPSHOT_ID, valid_identifier};
use crate::domain::rds_plan::RestoreSettings;

/// `[replication]`: the migration's object names and the role replication connects as.
pub(super) fn replication(
    r: &ReplicationFile,
    p: &Place<'_>,
) -> Result<(MigrationNames, Option<String>)> {
    let name = |v: &Option<Spanned<String>>, key: &str, default: &str| -> Result<String> {
        match v {
            None => Ok(default.to_string()),
            Some(s) => {
                domain::names::identifier(s.get_ref())
                    .map_err(|e| eyre!("{}: [replication] {key}: {e}", p.at(s.span())))?;
                Ok(s.get_ref().clone())
            }
        }
    };
    let publication = name(&r.publication, "publication", DEFAULT_PUBLICATION)?;
    let subscription = name(&r.subscription, "subscription", DEFAULT_SUBSCRIPTION)?;
    let slot = name(&r.slot, "slot", DEFAULT_SLOT)?;
    if let Err(e) = domain::names::slot(&slot) {
        let span = r.slot.as_ref().map(Spanned::span).unwrap_or(0..0);
        bail!("{}: [replication] slot = {e}", p.at(span));
    }
    let user = match &r.user {
        Some(u) => {
            domain::names::identifier(u.get_ref())
                .map_err(|e| eyre!("{}: [replication] user: {e}", p.at(u.span())))?;
            Some(u.get_ref().clone())
        }
        None => None,
    };
    let databases = databases(r, p)?;
    let names = MigrationNames {
        publication,
        slot_family: slot.clone(),
        slot,
        subscription,
        databases,
    };
    Ok((names, user))
}

/// `[replication] databases`: a list of names (each once, each a valid name) or `"all"`.
fn databases(r: &ReplicationFile, p: &Place<'_>) -> Result<DatabaseSet> {
    let Some(v) = &r.databases else {
        return Ok(DatabaseSet::Dsn);
    };
    let at = p.at(v.span());
    match v.get_ref() {
        KeysValue::One(s) if s == "all" => Ok(DatabaseSet::All),
        KeysValue::One(s) => bail!(
            "{at}: [replication] databases = \"{}\": give a list of names (databases = [\"{}\"]) or \"all\"",
            crate::text::echo(s),
            crate::text::echo(s)
        ),
        KeysValue::Many(list) => {
            if list.is_empty() {
                bail!(
                    "{at}: [replication] databases is empty: list the databases to replicate, write \"all\", or leave the key out for the database of the connection"
                );
            }
            for db in list {
                domain::names::identifier(db)
                    .map_err(|e| eyre!("{at}: [replication] databases: {e}"))?;
            }
            if let Some((_, db)) = repeated(list, str::to_string) {
                bail!(
                    "{at}: [replication] databases names \"{}\" twice",
                    crate::text::echo(db)
                );
            }
            // two names with one tag would share a slot
            if list.len() > 1
                && let Some((other, db)) = repeated(list, |d| domain::names::for_database("s", d))
            {
                bail!(
                    "{at}: [replication] databases \"{}\" and \"{}\" would share slot and subscription names; rename one",
                    crate::text::echo(other),
                    crate::text::echo(db)
                );
            }
            Ok(DatabaseSet::Listed(list.clone()))
        }
    }
}

/// `[cutover] app_roles` or `--app-roles`: one validation for every way the roles arrive.
pub(super) fn app_roles(ov: &Overrides, c: &CutoverFile, p: &Place<'_>) -> Result<Vec<String>> {
    let (roles, from) = match (&ov.app_roles, &c.app_roles) {
        (Some(r), _) => (r.clone(), "--app-roles".to_string()),
        (None, Some(r)) => (
            r.get_ref().clone(),
            format!("{}: [cutover] app_roles", p.at(r.span())),
        ),
        (None, None) => return Ok(Vec::new()),
    };
    if roles.is_empty() {
        bail!(
            "{from} is empty: list the roles the application logs in as (the cutover fences exactly \
             these); a fence of no role would report success and stop nothing"
        );
    }
    for r in &roles {
        domain::names::identifier(r).map_err(|e| eyre!("{from}: role {e}"))?;
    }
    if let Some((_, dup)) = repeated(&roles, str::to_string) {
        bail!("{from} names \"{}\" twice", crate::text::echo(dup));
    }
    Ok(roles)
}

/// The first name whose `key` an earlier one has, with that earlier one.
fn repeated(names: &[String], key: impl Fn(&str) -> String) -> Option<(&str, &str)> {
    let mut seen = std::collections::HashMap::new();
    for n in names {
        if let Some(first) = seen.insert(key(n), n.as_str()) {
            return Some((first, n.as_str()));
        }
    }
    None
}

/// `[aws]` and `[restore]`: present when configured or when a side is an RDS instance.
pub(super) fn aws(
    a: Option<&AwsFile>,
    restore: Option<&RestoreFile>,
    sides: [Option<&SideFile>; 2],
    p: &Place<'_>,
) -> Result<Option<AwsSettings>> {
    let any_rds = sides.iter().flatten().any(|f| f.rds_instance.is_some());
    if a.is_none() && !any_rds {
        if restore.is_some() {
            bail!(
                "{}: [restore] is set but no side has rds_instance and there is no [aws] section",
                p.label
            );
        }
        return Ok(None);
    }
    let endpoint_url = endpoint_url(a, p)?;
    let metrics_interval = match a.and_then(|a| a.metrics_interval_s.as_ref()) {
        Some(v) if *v.get_ref() < 60 => bail!(
            "{}: [aws] metrics_interval_s = {} is below 60: RDS publishes these metrics once a minute and every \
             GetMetricData call is billed; use 60 or more",
            p.at(v.span()),
            v.get_ref()
        ),
        v => Duration::from_secs(p.within(v, "[aws] metrics_interval_s", 60, 3600, 60)?),
    };
    let snapshot = match a.and_then(|a| a.snapshot.as_ref()) {
        Some(v) if !valid_identifier(v.get_ref(), MAX_SNAPSHOT_ID) => bail!(
            "{}: [aws] snapshot = \"{}\": RDS snapshot identifiers are 1 to {MAX_SNAPSHOT_ID} letters, digits and \
             hyphens, starting with a letter, with no two hyphens in a row and no hyphen at the end",
            p.at(v.span()),
            crate::text::echo(v.get_ref())
        ),
        v => v.map(|v| v.get_ref().clone()),
    };
    let r = restore.cloned().unwrap_or_default();
    let poll_interval = p.within(
        a.and_then(|a| a.poll_interval_s.as_ref()),
        "[aws] poll_interval_s",
        0.05,
        600.0,
        10.0,
    )?;
    let timeout = p.within(
        a.and_then(|a| a.timeout_s.as_ref()),
        "[aws] timeout_s",
        1,
        600,
        20,
    )?;
    let action_timeout_min = p.within(
        a.and_then(|a| a.action_timeout_min.as_ref()),
        "[aws] action_timeout_min",
        1,
        24 * 60,
        240,
    )?;
    Ok(Some(AwsSettings {
        region: a.and_then(|a| a.region.clone()),
        profile: a.and_then(|a| a.profile.clone()),
        endpoint_url,
        snapshot,
        engine_version: a.and_then(|a| a.engine_version.clone()),
        restore: RestoreSettings {
            instance_class: r.instance_class,
            multi_az: r.multi_az,
            subnet_group: r.subnet_group,
            security_groups: r.security_groups,
            parameter_group: r.parameter_group,
        },
        poll_interval: Duration::from_secs_f64(poll_interval),
        metrics_interval,
        timeout: Duration::from_secs(timeout),
        action_timeout: Duration::from_secs(60 * action_timeout_min),
    }))
}

/// `[aws] endpoint_url`, else `$AWS_ENDPOINT_URL` (moto, LocalStack, a VPC endpoint).
fn endpoint_url(a: Option<&AwsFile>, p: &Place<'_>) -> Result<Option<String>> {
    Ok(match a.and_then(|a| a.endpoint_url.as_ref()) {
        Some(u) => {
            if !(u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://")) {
                bail!(
                    "{}: [aws] endpoint_url must start with http:// or https://",
                    p.at(u.span())
                );
            }
            Some(u.get_ref().clone())
        }
        None => std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|v| !v.is_empty()),
    })
}

/// `[poll]`.
pub(super) fn poll(f: &PollFile, p: &Place<'_>) -> Result<PollSettings> {
    let interval = p.within(
        f.interval_ms.as_ref(),
        "[poll] interval_ms",
        100,
        60_000,
        1000,
    )?;
    let timeout = p.within(
        f.timeout_ms.as_ref(),
        "[poll] timeout_ms",
        100,
        120_000,
        5000,
    )?;
    let every = p.within(
        f.inventory_every.as_ref(),
        "[poll] inventory_every",
        1,
        10_000,
        15,
    )?;
    Ok(PollSettings {
        interval: Duration::from_millis(interval),
        timeout: Duration::from_millis(timeout),
        // within 1..=10 000, so it fits
        inventory_every: u32::try_from(every).unwrap_or(u32::MAX),
    })
}

/// `[redo]`: where `start` reads GREEN's `redo done at` line, and what it ignores.
pub(super) fn redo(
    f: &RedoFile,
    green_is_rds: bool,
    p: &Place<'_>,
) -> Result<(RedoSource, Option<PathBuf>, Option<time::OffsetDateTime>)> {
    let source = match f.source.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
        None | Some(("auto", _)) => RedoSource::Auto,
        Some(("cloudwatch", _)) => RedoSource::CloudWatch,
        Some(("rds-logs", _)) => RedoSource::RdsLogs,
        Some(("file", _)) => RedoSource::File,
        Some((other, span)) => bail!(
            "{}: [redo] source = \"{}\" is not one of auto, cloudwatch, rds-logs, file",
            p.at(span),
            crate::text::echo(other)
        ),
    };
    if matches!(source, RedoSource::CloudWatch | RedoSource::RdsLogs) && !green_is_rds {
        bail!(
            "{}: [redo] source = {:?} reads GREEN's RDS logs, but [green] has no rds_instance",
            p.label,
            source.name()
        );
    }
    if source == RedoSource::File && f.log_file.is_none() {
        bail!(
            "{}: [redo] source = \"file\" needs log_file = \"/path/to/green/postgresql.log\"",
            p.label
        );
    }
    let not_before = match &f.not_before {
        None => None,
        Some(t) => Some(
            time::OffsetDateTime::parse(t.get_ref(), &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    eyre!(
                        "{}: [redo] not_before = \"{}\" is not an RFC 3339 time like 2026-11-21T10:00:00Z",
                        p.at(t.span()),
                        crate::text::echo(t.get_ref())
                    )
                })?,
        ),
    };
    Ok((source, f.log_file.clone(), not_before))
}

/// `[cutover]`'s gate and time limits.
pub(super) fn cutover(c: &CutoverFile, p: &Place<'_>) -> Result<CutoverSettings> {
    let max_lag_bytes = p.within(
        c.max_lag_bytes.as_ref(),
        "[cutover] max_lag_bytes",
        0,
        1 << 40,
        100 * 1024,
    )?;
    let steady_samples = p.within(
        c.steady_samples.as_ref(),
        "[cutover] steady_samples",
        1,
        100,
        3,
    )?;
    let sample_interval = p.within(
        c.sample_interval_ms.as_ref(),
        "[cutover] sample_interval_ms",
        10,
        10_000,
        200,
    )?;
    let drain = p.within(
        c.drain_timeout_s.as_ref(),
        "[cutover] drain_timeout_s",
        1,
        3600,
        30,
    )?;
    let fence = p.within(
        c.fence_timeout_s.as_ref(),
        "[cutover] fence_timeout_s",
        1,
        600,
        10,
    )?;
    let gate_timeout = p.within(
        c.gate_timeout_s.as_ref(),
        "[cutover] gate_timeout_s",
        0,
        3600,
        60,
    )?;
    let fence_grace = p.within(
        c.fence_grace_ms.as_ref(),
        "[cutover] fence_grace_ms",
        0,
        60_000,
        0,
    )?;
    let carry_slots = match &c.carry_slots {
        None => Vec::new(),
        Some(v) => {
            for name in v.get_ref() {
                domain::names::slot(name)
                    .map_err(|e| eyre!("{}: [cutover] carry_slots: {e}", p.at(v.span())))?;
            }
            v.get_ref().clone()
        }
    };
    let cutover = CutoverSettings {
        carry_slots,
        move_pg_cron: c.move_pg_cron.unwrap_or(false),
        max_lag_bytes,
        steady_samples: steady_samples.try_into().unwrap_or(usize::MAX),
        sample_interval: Duration::from_millis(sample_interval),
        drain_timeout: Duration::from_secs(drain),
        fence_timeout: Duration::from_secs(fence),
        gate_timeout: Duration::from_secs(gate_timeout),
        fence_grace: Duration::from_millis(fence_grace),
    };
    // The gate's samples are taken by `plan` too, which must answer promptly.
    let gate =
        cutover.sample_interval * u32::try_from(cutover.steady_samples - 1).unwrap_or(u32::MAX);
    if gate > Duration::from_mins(1) {
        bail!(
            "{}: [cutover] steady_samples × sample_interval_ms spans {} s; keep the lag gate within 60 s",
            p.label,
            gate.as_secs()
        );
    }
    Ok(cutover)
}

/// `[keys]` as written; the dashboard builds (and judges) its keymap from it.
pub(super) fn keys(
    k: Option<&std::collections::BTreeMap<String, KeysValue>>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    k.into_iter()
        .flatten()
        .map(|(k, v)| {
            let keys = match v {
                KeysValue::One(s) => vec![s.clone()],
                KeysValue::Many(v) => v.clone(),
            };
            (k.clone(), keys)
        })
        .collect()
}

/// `[analyze] jobs`.
pub(super) fn analyze_jobs(f: &super::file::AnalyzeFile, p: &Place<'_>) -> Result<usize> {
    let jobs = p.within(f.jobs.as_ref(), "[analyze] jobs", 1, 32, 2)?;
    Ok(usize::try_from(jobs).unwrap_or(2))
}

/// `[verify]`: how hard `verify` may read, and whether the switch needs its result.
pub(super) fn verify(f: &super::file::VerifyFile, p: &Place<'_>) -> Result<super::VerifySettings> {
    Ok(super::VerifySettings {
        max_rows_per_s: p.within(
            f.max_rows_per_s.as_ref(),
            "[verify] max_rows_per_s",
            0,
            100_000_000,
            200_000,
        )?,
        chunk_rows: p.within(
            f.chunk_rows.as_ref(),
            "[verify] chunk_rows",
            10,
            1_000_000,
            10_000,
        )?,
        statement_timeout: Duration::from_millis(p.within(
            f.statement_timeout_ms.as_ref(),
            "[verify] statement_timeout_ms",
            100,
            3_600_000,
            30_000,
        )?),
        required: f.required.unwrap_or(false),
        apply_timeout: Duration::from_secs(p.within(
            f.apply_timeout_s.as_ref(),
            "[verify] apply_timeout_s",
            1,
            3600,
            60,
        )?),
    })
}
