//! Turning a side's settings into a live connection: libpq defaults, the password lookup order,
//! and TLS through rustls (verified against `sslrootcert` when one is given).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use tokio_postgres::Client;
use tokio_postgres::config::SslMode as PgSslMode;

use crate::config::libpq_files::{default_passfile, passfile_problem, pgpass_lookup};
use crate::config::{SideSettings, SslMode};

/// Everything needed to open a connection; `Debug` never shows the password.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Option<rustls::ClientConfig>,
    /// `user@host:port/dbname`, for messages.
    pub label: String,
}

fn os_user() -> String {
    std::env::var("PGUSER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "postgres".into())
}

/// Who and where a side's login goes, with libpq's defaults filled in.
struct Login {
    user: String,
    dbname: String,
    hosts: Vec<String>,
    ports: Vec<u16>,
}

fn login(s: &SideSettings) -> Result<Login> {
    let ci = &s.conninfo;
    let user = ci.get("user").map_or_else(os_user, str::to_string);
    let dbname = ci
        .get("dbname")
        .map_or_else(|| user.clone(), str::to_string);
    let hosts: Vec<String> = match ci.get("host") {
        Some(h) => h.split(',').map(str::to_string).collect(),
        None if ci.get("hostaddr").is_some() => Vec::new(),
        None => vec![
            if std::path::Path::new("/var/run/postgresql").is_dir() {
                "/var/run/postgresql"
            } else {
                "localhost"
            }
            .to_string(),
        ],
    };
    let ports: Vec<u16> = match ci.get("port") {
        None => vec![5432],
        Some(p) => p
            .split(',')
            .map(|x| {
                if x.is_empty() {
                    Ok(5432)
                } else {
                    x.parse::<u16>()
                }
            })
            .collect::<Result<_, _>>()
            .map_err(|_| eyre!("{}: port {p:?} is not a port number", s.origin))?,
    };
    Ok(Login {
        user,
        dbname,
        hosts,
        ports,
    })
}

/// The user this side logs in as and the password the login would use (same lookup order).
pub fn login_credentials(s: &SideSettings) -> (String, Option<String>) {
    match login(s) {
        Ok(l) => {
            let pw = find_password(s, &l.hosts, l.ports[0], &l.dbname, &l.user);
            (l.user, pw)
        }
        Err(_) => (
            s.conninfo.get("user").map_or_else(os_user, str::to_string),
            None,
        ),
    }
}

/// The database a side's connection opens (from its DSN, service file or libpq's default).
pub fn database(s: &SideSettings) -> String {
    match login(s) {
        Ok(l) => l.dbname,
        Err(_) => s
            .conninfo
            .get("dbname")
            .or(s.conninfo.get("user"))
            .map_or_else(os_user, str::to_string),
    }
}

/// Build the connection settings. `application_name` marks our sessions so that fencing never
/// terminates the tool's own connections.
pub fn target(s: &SideSettings, connect_timeout: Duration) -> Result<Target> {
    let ci = &s.conninfo;
    let mut cfg = tokio_postgres::Config::new();
    let Login {
        user,
        dbname,
        hosts,
        ports,
    } = login(s)?;
    for h in &hosts {
        cfg.host(h);
    }
    if let Some(addrs) = ci.get("hostaddr") {
        for a in addrs.split(',') {
            let ip = a
                .parse()
                .map_err(|_| eyre!("{}: hostaddr {a:?} is not an IP address", s.origin))?;
            cfg.hostaddr(ip);
        }
    }
    for p in &ports {
        cfg.port(*p);
    }
    cfg.user(&user).dbname(&dbname);
    cfg.application_name(ci.get("application_name").unwrap_or("pgcutover"));
    if let Some(o) = ci.get("options") {
        cfg.options(o);
    }
    // libpq's 0 means "wait forever": here every wait has a limit, so 0 means the default.
    let timeout = match ci.get("connect_timeout").map(|t| t.trim().parse::<u64>()) {
        Some(Ok(0)) | None => connect_timeout,
        Some(Ok(n)) => Duration::from_secs(n),
        Some(Err(_)) => bail!("{}: connect_timeout is not a number of seconds", s.origin),
    };
    cfg.connect_timeout(timeout);
    cfg.keepalives(ci.get("keepalives") != Some("0"));
    cfg.keepalives_idle(Duration::from_secs(10));

    let label = format!(
        "{user}@{}:{}/{dbname}",
        hosts
            .first()
            .map(String::as_str)
            .or(ci.get("hostaddr"))
            .unwrap_or("?"),
        ports[0]
    );
    if let Some(pw) = find_password(s, &hosts, ports[0], &dbname, &user) {
        cfg.password(pw);
    }

    let tls = match s.sslmode {
        SslMode::Disable => {
            cfg.ssl_mode(PgSslMode::Disable);
            None
        }
        mode => {
            cfg.ssl_mode(if mode == SslMode::Prefer {
                PgSslMode::Prefer
            } else {
                PgSslMode::Require
            });
            Some(rustls_config(s)?)
        }
    };
    Ok(Target {
        config: cfg,
        tls,
        label,
    })
}

/// libpq's order, per side: the side's env var, `PGPASSWORD`, a password from the service file,
/// then the password file.
fn find_password(
    s: &SideSettings,
    hosts: &[String],
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    if let Ok(p) = std::env::var(&s.password_env) {
        return Some(p);
    }
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    if let Some(p) = s.conninfo.get("password") {
        return Some(p.to_string());
    }
    let file = passfile(s)?;
    let host = hosts.first().map_or("localhost", String::as_str);
    pgpass_lookup(&file, host, port, db, user)
}

/// The side's password file: `passfile` in its DSN, else libpq's default.
fn passfile(s: &SideSettings) -> Option<PathBuf> {
    s.conninfo
        .get("passfile")
        .map(PathBuf::from)
        .or_else(default_passfile)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn rustls_config(s: &SideSettings) -> Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .wrap_err("TLS setup failed")?;
    use crate::config::Roots;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let add_all =
        |certs: Vec<CertificateDer<'static>>, what: &str| -> Result<rustls::RootCertStore> {
            if certs.is_empty() {
                bail!("{what} holds no PEM certificate");
            }
            let mut roots = rustls::RootCertStore::empty();
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| eyre!("{what}: unusable certificate: {e}"))?;
            }
            Ok(roots)
        };
    let cfg = match &s.roots {
        Roots::File(path) => {
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .and_then(std::iter::Iterator::collect)
                .map_err(|e| {
                    eyre!(
                        "cannot read certificates from sslrootcert {}: {e}",
                        path.display()
                    )
                })?;
            let roots = add_all(certs, &format!("sslrootcert {}", path.display()))?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Roots::RdsBundle => {
            let certs: Vec<CertificateDer> =
                CertificateDer::pem_slice_iter(crate::aws::RDS_CA_BUNDLE)
                    .collect::<Result<_, _>>()
                    .map_err(|e| eyre!("the embedded RDS CA bundle: {e}"))?;
            let roots = add_all(certs, "the embedded RDS CA bundle")?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        // libpq's require/prefer without a root file: encrypted, server not authenticated.
        Roots::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider())))
            .with_no_client_auth(),
    };
    Ok(cfg)
}

/// Accepts any certificate but still checks the handshake signatures, as libpq does for
/// `sslmode=require` without a root certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Open a connection and drive it on a background task. The error names the side and the
/// server (never the password) and says what to look at.
pub async fn connect(s: &SideSettings, timeout: Duration) -> Result<Client> {
    connect_named(s.side.upper(), s, timeout).await
}

/// `connect` for a server that is not a side (a PgBouncer's admin console): `side` names it in
/// messages.
pub async fn connect_named(side: &str, s: &SideSettings, timeout: Duration) -> Result<Client> {
    let mut t = target(s, timeout)?;
    if let crate::config::Auth::Iam(aws) = &s.auth {
        // A token per connection: each is valid for 15 minutes.
        let host = t
            .config
            .get_hosts()
            .iter()
            .find_map(|h| {
                // (`if let`: the Unix-socket variant exists only on unix targets)
                #[allow(irrefutable_let_patterns)]
                if let tokio_postgres::config::Host::Tcp(h) = h {
                    Some(h.clone())
                } else {
                    None
                }
            })
            .ok_or_else(|| eyre!("{side}: auth = \"iam\" needs a host name (the RDS endpoint)"))?;
        let port = t.config.get_ports().first().copied().unwrap_or(5432);
        let user = t.config.get_user().unwrap_or_default().to_string();
        let token = crate::aws::iam_token(aws, &host, port, &user)
            .await
            .map_err(|e| eyre!("{side}: {e}"))?;
        t.config.password(token);
    }
    let label = t.label.clone();
    let fut = async {
        match t.tls {
            None => {
                let (client, conn) = t.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection closed: {e}");
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            }
            Some(tls) => {
                let (client, conn) = t
                    .config
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                    .await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection closed: {e}");
                    }
                });
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), fut).await {
        Err(_) => bail!(
            "{side} ({label}): no connection within {} s; check host, port and firewall",
            timeout.as_secs()
        ),
        Ok(Err(e)) => {
            let mut text = pg_error_text(&e);
            // libpq ignores a loose password file silently; we say so where it matters.
            if text.contains("password")
                && let Some(p) = passfile(s).as_deref().and_then(passfile_problem)
            {
                text.push_str(&format!(" ({p})"));
            }
            Err(eyre!("{side} ({label}): {text}"))
        }
        Ok(Ok(c)) => Ok(c),
    }
}

/// Ask the server to cancel the statement running on the connection `token` belongs to (what
/// libpq's PQcancel does on Ctrl-C), over the same TLS settings as the connection.
pub async fn cancel(token: &tokio_postgres::CancelToken, s: &SideSettings) -> Result<()> {
    let t = target(s, Duration::from_secs(5))?;
    let res = match t.tls {
        None => token.cancel_query(tokio_postgres::NoTls).await,
        Some(tls) => {
            token
                .cancel_query(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                .await
        }
    };
    res.map_err(|e| eyre!("{}: cancel: {}", s.side.upper(), pg_error_text(&e)))
}

/// A tokio-postgres error as one line with the server's message and hint when there is one.
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(h) = db.hint() {
            s.push_str(&format!(" (hint: {h})"));
        }
        s
    } else {
        crate::format::error_chain(e)
    }
}
