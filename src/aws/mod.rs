//! Everything that talks to AWS: RDS (instances, snapshots, events, parameters, log files),
//! CloudWatch metrics and CloudWatch Logs. Every call has a time limit and the SDK's standard
//! retry (throttling and 5xx, with backoff); errors become one line that says what to do.

pub mod metrics;
#[cfg(test)]
#[allow(clippy::float_cmp)] // exact values parsed from canned responses
mod mock_tests;
pub mod rds;
pub mod redo_source;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use color_eyre::eyre::{Result, eyre};
use tokio::sync::OnceCell;

use crate::config::AwsSettings;

/// The RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem): the
/// self-signed roots of every region, RSA2048/RSA4096/ECC384 G1. RDS endpoints' certificates
/// chain to one of them.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("rds-ca-bundle.pem");

/// The three service clients, sharing one SDK configuration.
#[derive(Clone, Debug)]
pub struct Aws {
    pub rds: aws_sdk_rds::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sdk: aws_config::SdkConfig,
}

/// Throttling and 5xx are retried by the SDK with jittered exponential backoff.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5))
}

/// The shared SDK configuration for these settings: region, profile and endpoint from the
/// settings, else from the standard places (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`,
/// `~/.aws/config`); credentials from the standard chain, SSO and credential_process included.
pub async fn sdk_config(s: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(s.timeout)
                .operation_timeout(s.timeout * 2)
                .build(),
        );
    if let Some(p) = &s.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &s.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &s.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

impl Aws {
    pub async fn new(s: &AwsSettings) -> Aws {
        Aws::from_sdk(sdk_config(s).await)
    }

    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Aws {
        Aws {
            rds: aws_sdk_rds::Client::new(&sdk),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            sdk,
        }
    }

    /// One process talks to one AWS account with one configuration: build it once.
    pub async fn shared(s: &AwsSettings) -> &'static Aws {
        static AWS: OnceCell<Aws> = OnceCell::const_new();
        AWS.get_or_init(|| Aws::new(s)).await
    }
}

/// An IAM database authentication token for `user` at `host:port` (valid 15 minutes, so made
/// fresh for every connection).
pub async fn iam_token(s: &AwsSettings, host: &str, port: u16, user: &str) -> Result<String> {
    use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
    let aws = Aws::shared(s).await;
    let mut b = Config::builder()
        .hostname(host)
        .port(u64::from(port))
        .username(user);
    if let Some(r) = aws.sdk.region() {
        b = b.region(r.clone());
    }
    let cfg = b
        .build()
        .map_err(|e| eyre!("IAM auth token for {user}@{host}: {e}"))?;
    let token = AuthTokenGenerator::new(cfg)
        .auth_token(&aws.sdk)
        .await
        .map_err(|e| {
            eyre!(
                "cannot make an IAM auth token for {user}@{host}: {e}; check the AWS credentials (aws sts \
                 get-caller-identity, or aws sso login) and [aws] region"
            )
        })?;
    Ok(token.as_str().to_string())
}

/// An SDK error as one line for the operator: what failed, why, and what to do.
pub fn explain<E, R>(what: &str, err: &aws_sdk_rds::error::SdkError<E, R>) -> String
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_rds::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = e.message().unwrap_or("");
            let hint = hint_for(code, msg);
            format!("{what}: {code}: {msg}{hint}")
        }
        SdkError::TimeoutError(_) => format!(
            "{what}: no answer within the time limit; check the network path to AWS (or [aws] endpoint_url)"
        ),
        SdkError::DispatchFailure(d) => {
            let detail = std::error::Error::source(err)
                .map_or_else(|| format!("{d:?}"), crate::format::error_chain);
            no_credentials(what, &detail).unwrap_or_else(|| {
                format!(
                    "{what}: cannot reach AWS: {detail}; check the network, [aws] region and endpoint_url"
                )
            })
        }
        other => {
            let detail = crate::format::error_chain(other);
            no_credentials(what, &detail).unwrap_or_else(|| {
                if detail.contains("region") {
                    format!("{what}: {detail}; set [aws] region or AWS_REGION")
                } else {
                    format!("{what}: {detail}")
                }
            })
        }
    }
}

/// The message for a failure that came from the credential chain, whatever stage it hit.
fn no_credentials(what: &str, detail: &str) -> Option<String> {
    (detail.contains("credential") || detail.contains("Credential")).then(|| {
        format!(
            "{what}: no AWS credentials: {detail}; set AWS_PROFILE (and run aws sso login), or \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    })
}

/// The next page's marker (or token): `None` ends the paging. An empty marker, or the one just
/// sent again, ends it too: a service repeating itself must not keep us asking forever.
pub fn next_page(sent: &Option<String>, got: Option<&str>) -> Option<String> {
    got.filter(|g| !g.is_empty() && Some(*g) != sent.as_deref())
        .map(str::to_string)
}

/// What to do about the common error codes.
fn hint_for(code: &str, msg: &str) -> &'static str {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => {
            " (the AWS identity lacks this permission: add it to its IAM policy, or use another AWS_PROFILE)"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            " (the AWS session expired: run aws sso login, or refresh the credentials)"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
            " (the AWS credentials are not valid here: check AWS_PROFILE and that the keys belong to this partition)"
        }
        "DBInstanceNotFound" | "DBInstanceNotFoundFault" => {
            " (check [blue]/[green] rds_instance and [aws] region: instances are per region)"
        }
        "DBSnapshotNotFound" | "DBSnapshotNotFoundFault" => {
            " (check [aws] snapshot and region, or run the snapshot action first)"
        }
        "ResourceNotFoundException" if msg.contains("log group") => {
            " (GREEN does not export its PostgreSQL log to CloudWatch: enable the postgresql log export, or use [redo] source = \"rds-logs\")"
        }
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            " (AWS throttled the calls even after retries: raise [poll] intervals or try again in a minute)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_holds_only_rds_roots() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(RDS_CA_BUNDLE)
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(certs.len() >= 90, "{} certificates", certs.len());
        let mut roots = rustls::RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(certs);
        assert_eq!(ignored, 0);
        assert_eq!(added, roots.len());
    }

    #[test]
    fn paging_ends_on_no_empty_or_repeated_marker() {
        assert_eq!(next_page(&None, Some("a")), Some("a".into()));
        assert_eq!(next_page(&Some("a".into()), Some("b")), Some("b".into()));
        assert_eq!(next_page(&Some("a".into()), Some("a")), None);
        assert_eq!(next_page(&Some("a".into()), Some("")), None);
        assert_eq!(next_page(&Some("a".into()), None), None);
    }

    #[test]
    fn hints_name_the_fix() {
        assert!(hint_for("AccessDenied", "").contains("IAM policy"));
        assert!(hint_for("DBInstanceNotFound", "").contains("region"));
        assert!(
            hint_for(
                "ResourceNotFoundException",
                "The specified log group does not exist."
            )
            .contains("rds-logs")
        );
        assert_eq!(hint_for("SomethingElse", ""), "");
    }
}
