//! `[blue]` and `[green]`: how to reach a side, from the file, the environment or a flag, with
//! everything that can be judged without connecting judged here (a mistake is a configuration
//! error, exit 2, not an unreachable side, exit 3).

use std::path::PathBuf;

use color_eyre::eyre::{Result, bail, eyre};

use super::conninfo::{self, ConnInfo};
use super::file::{Place, SideFile};
use super::{Auth, AwsSettings, Roots, SideSettings, SslMode, libpq_files};
use crate::domain;
use crate::domain::observed::Side;
use crate::domain::rds::{MAX_INSTANCE_ID, valid_identifier};

pub(super) fn resolve(
    s: Side,
    f: Option<&SideFile>,
    flag: Option<&String>,
    aws: Option<&AwsSettings>,
    p: &Place<'_>,
) -> Result<SideSettings> {
    let f = f.cloned().unwrap_or_default();
    let (conninfo, origin) = connection(s, &f, flag, p)?;
    let rds_instance = match &f.rds_instance {
        Some(v) if !valid_identifier(v.get_ref(), MAX_INSTANCE_ID) => bail!(
            "{}: [{s}] rds_instance = \"{}\": RDS instance identifiers are 1 to {MAX_INSTANCE_ID} letters, digits and \
             hyphens, starting with a letter, with no two hyphens in a row and no hyphen at the end",
            p.at(v.span()),
            crate::text::echo(v.get_ref())
        ),
        v => v.as_ref().map(|v| v.get_ref().clone()),
    };
    let auth = auth(s, &f, aws, p)?;
    let (sslmode, roots) = tls(&f, &conninfo, &origin, &auth, rds_instance.is_some(), p)?;
    let replication_conninfo = replication_conninfo(s, &f, p)?;
    Ok(SideSettings {
        side: s,
        replication_conninfo,
        conninfo,
        sslmode,
        roots,
        rds_instance,
        auth,
        password_env: f
            .password_env
            .unwrap_or_else(|| format!("PGCUTOVER_{}_PASSWORD", s.upper())),
        origin,
    })
}

/// The connection parameters (flag, then environment, then file, with a service file's entry
/// under them) and where they came from, for messages.
fn connection(
    s: Side,
    f: &SideFile,
    flag: Option<&String>,
    p: &Place<'_>,
) -> Result<(ConnInfo, String)> {
    let env_var = format!("PGCUTOVER_{}_DSN", s.upper());
    let env_dsn = std::env::var(&env_var).ok().filter(|v| !v.is_empty());
    let (dsn, origin) = match (flag, env_dsn, &f.dsn) {
        (Some(d), _, _) => (Some(d.clone()), format!("--{s}-dsn")),
        (None, Some(d), _) => (Some(d), format!("${env_var}")),
        (None, None, Some(d)) => (
            Some(d.get_ref().clone()),
            format!("[{s}] dsn in {}", p.at(d.span())),
        ),
        (None, None, None) => (None, format!("[{s}] in {}", p.label)),
    };
    let mut ci = match &dsn {
        Some(d) => conninfo::parse(d).map_err(|e| eyre!("{origin}: {e}"))?,
        None => ConnInfo::default(),
    };
    if ci.get("password").is_some() {
        bail!(
            "{origin} contains a password; passwords never go in the configuration or on the command line: \
             set $PGCUTOVER_{}_PASSWORD or use ~/.pgpass or a service file",
            s.upper()
        );
    }
    let service = f
        .service
        .as_ref()
        .map(|v| v.get_ref().clone())
        .or_else(|| ci.get("service").map(str::to_string));
    if let Some(svc) = service {
        let entry = libpq_files::lookup_service(&svc, &libpq_files::service_files())
            .map_err(|e| eyre!("{origin}: {e}"))?;
        ci = ci.with_defaults(&entry);
        ci.params.remove("service");
    } else if dsn.is_none() {
        bail!(
            "{} has no [{s}] connection: give [{s}] dsn = \"host=… port=… dbname=… user=…\" or service = \"name\", \
             or set ${env_var} or --{s}-dsn",
            p.label
        );
    }
    check_static(&ci, &origin)?;
    Ok((ci, origin))
}

/// `auth = "password" | "iam"`; IAM needs the AWS settings to make its tokens.
fn auth(s: Side, f: &SideFile, aws: Option<&AwsSettings>, p: &Place<'_>) -> Result<Auth> {
    Ok(
        match f.auth.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
            None | Some(("password", _)) => Auth::Password,
            Some(("iam", span)) => match aws {
                Some(a) => Auth::Iam(Box::new(a.clone())),
                None => bail!(
                    "{}: [{s}] auth = \"iam\" needs AWS settings: add [{s}] rds_instance or an [aws] section with region",
                    p.at(span)
                ),
            },
            Some((other, span)) => bail!(
                "{}: [{s}] auth = \"{}\" is not \"password\" or \"iam\"",
                p.at(span),
                crate::text::echo(other)
            ),
        },
    )
}

/// The TLS mode and the certificates it trusts. RDS hosts are verified against the RDS CA
/// bundle unless the operator chose otherwise; IAM tokens are bearer credentials and never
/// travel without TLS.
fn tls(
    f: &SideFile,
    ci: &ConnInfo,
    origin: &str,
    auth: &Auth,
    rds_instance: bool,
    p: &Place<'_>,
) -> Result<(SslMode, Roots)> {
    let mode_text = f
        .sslmode
        .as_ref()
        .map(|m| (m.get_ref().clone(), p.at(m.span())))
        .or_else(|| {
            ci.get("sslmode")
                .map(|m| (m.to_string(), origin.to_string()))
        });
    let sslmode = match &mode_text {
        None => SslMode::Prefer,
        Some((m, where_)) => SslMode::parse(m).ok_or_else(|| {
            eyre!(
                "{where_}: sslmode \"{}\" is not one of disable, prefer, require, verify-ca, verify-full",
                crate::text::echo(m)
            )
        })?,
    };
    let rds_host = ci
        .get("host")
        .is_some_and(|h| h.split(',').any(domain::rds::is_rds_host));
    let iam = matches!(auth, Auth::Iam(_));
    let sslmode = match (mode_text.is_some(), sslmode) {
        (false, _) if rds_host => SslMode::VerifyFull,
        (false, _) if iam => SslMode::Require,
        (_, m) => m,
    };
    if iam && matches!(sslmode, SslMode::Disable | SslMode::Prefer) {
        bail!(
            "{origin}: auth = \"iam\" sends a token that works as a password for 15 minutes; it needs TLS: set \
             sslmode = \"require\" or \"verify-full\" (the default for RDS hosts)"
        );
    }
    let sslrootcert = f
        .sslrootcert
        .clone()
        .or_else(|| ci.get("sslrootcert").map(PathBuf::from));
    if let Some(bundle) = &f.rds_ca_bundle
        && sslrootcert.is_some()
    {
        bail!(
            "{origin}: both sslrootcert and rds_ca_bundle ({}) are set; keep one",
            bundle.display()
        );
    }
    let root_file = sslrootcert.or_else(|| f.rds_ca_bundle.clone());
    if let Some(path) = &root_file {
        // Read now: an unreadable root file is a configuration error, not an unreachable side.
        let pem = crate::files::read_text_capped(path, 4 * 1024 * 1024, "certificate file")
            .map_err(|e| eyre!("{origin}: sslrootcert: {e}"))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            bail!(
                "{origin}: sslrootcert {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
    }
    let roots = match (sslmode, root_file) {
        (SslMode::Disable, Some(_)) => {
            bail!("{origin}: sslrootcert is set but sslmode = disable; remove one of them")
        }
        (SslMode::Disable, None) => Roots::None,
        (_, Some(path)) => Roots::File(path),
        (SslMode::VerifyFull, None) if rds_host || rds_instance => Roots::RdsBundle,
        (SslMode::VerifyFull, None) => bail!(
            "{origin}: sslmode verify-ca/verify-full needs sslrootcert = \"/path/to/root.crt\""
        ),
        (_, None) => Roots::None,
    };
    Ok((sslmode, roots))
}

/// `replication_dsn`: how the other server reaches this one, when not derived from `dsn`.
fn replication_conninfo(s: Side, f: &SideFile, p: &Place<'_>) -> Result<Option<ConnInfo>> {
    let Some(d) = &f.replication_dsn else {
        return Ok(None);
    };
    let where_ = format!("[{s}] replication_dsn in {}", p.at(d.span()));
    let ci = conninfo::parse(d.get_ref()).map_err(|e| eyre!("{where_}: {e}"))?;
    if ci.get("password").is_some() {
        bail!(
            "{where_} contains a password; set $PGCUTOVER_{}_REPLICATION_PASSWORD instead",
            s.upper()
        );
    }
    Ok(Some(ci))
}

/// Connection values that can be judged without connecting: a mistake here is a configuration
/// error (exit 2), not an unreachable side (exit 3).
fn check_static(ci: &ConnInfo, origin: &str) -> Result<()> {
    let bad = |key: &str, v: &str, want: &str| {
        eyre!("{origin}: {key} \"{}\" is not {want}", crate::text::echo(v))
    };
    if let Some(p) = ci.get("port") {
        for x in p.split(',') {
            if !(x.is_empty() || x.parse::<u16>().is_ok_and(|n| n > 0)) {
                return Err(bad("port", x, "a port number (1 to 65535)"));
            }
        }
    }
    let count = |k: &str| ci.get(k).map_or(0, |v| v.split(',').count());
    if let Some(h) = ci.get("host")
        && h.split(',').any(str::is_empty)
    {
        return Err(bad("host", h, "a list of host names without empty entries"));
    }
    let (hosts, ports) = (count("host").max(count("hostaddr")), count("port"));
    if ports > 1 && ports != hosts {
        return Err(eyre!(
            "{origin}: {ports} ports for {hosts} hosts: give one port for all hosts, or one per host"
        ));
    }
    if let Some(a) = ci.get("hostaddr") {
        for x in a.split(',') {
            if x.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("hostaddr", x, "an IP address"));
            }
        }
    }
    if let Some(t) = ci.get("connect_timeout")
        && !t.trim().parse::<u64>().is_ok_and(|n| n <= 3600)
    {
        return Err(bad("connect_timeout", t, "a number of seconds (0 to 3600)"));
    }
    if let Some(k) = ci.get("keepalives")
        && !matches!(k, "0" | "1")
    {
        return Err(bad("keepalives", k, "0 or 1"));
    }
    if let Some(k) = ci.get("keepalives_idle")
        && !k.parse::<u64>().is_ok_and(|n| n <= 86_400)
    {
        return Err(bad("keepalives_idle", k, "a number of seconds"));
    }
    if let Some(t) = ci.get("target_session_attrs")
        && !matches!(t, "any" | "read-write")
    {
        return Err(bad("target_session_attrs", t, "any or read-write"));
    }
    for key in ["host", "user", "dbname", "application_name", "options"] {
        if let Some(v) = ci.get(key)
            && v.contains('\0')
        {
            return Err(bad(key, v, "free of NUL bytes"));
        }
    }
    Ok(())
}
