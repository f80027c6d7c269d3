//! AWS adapters: one per service, each behind a trait, built from aws-config's default
//! credential chain with the environment's region. `[aws] endpoint_url` points every client
//! at an emulator. Retries are explicit (standard mode: bounded attempts, exponential backoff
//! with jitter) and every call has timeouts. Errors say what failed in a person's words and
//! keep the SDK error.

pub mod access;
pub mod autoscaling;
pub mod calls;
pub mod clients;
pub mod cloudwatch;
pub mod ec2;
pub mod elbv2;
pub mod execute;
#[cfg(test)]
pub mod memory;
pub mod observe;
pub mod pricing;
pub mod rds;
pub mod sandbox;
pub mod settle;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// How tierdeck talks to AWS, from the configuration.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub endpoint_url: Option<String>,
    pub default_region: String,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    /// Each environment's account and roles (`[aws.environments.NAME]`); an environment
    /// without one uses the default chain.
    pub environments: std::collections::BTreeMap<String, access::EnvironmentAccess>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            default_region: "ap-northeast-2".into(),
            max_attempts: 4,
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            environments: Default::default(),
        }
    }
}

/// The SDK configuration for one region, with the default credential chain.
pub async fn sdk_config(settings: &AwsSettings, region: &str) -> SdkConfig {
    sdk_config_with(settings, region, settings.endpoint_url.as_deref(), None).await
}

/// The SDK configuration for one region: at `endpoint` when given, with `credentials` when
/// given (else the default chain).
pub async fn sdk_config_with(
    settings: &AwsSettings,
    region: &str,
    endpoint: Option<&str>,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(settings.attempt_timeout)
                .operation_timeout(settings.operation_timeout)
                .build(),
        );
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(c);
    }
    loader.load().await
}

/// What kind of failure, for the applier's retry and the plan's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// Throttling, 5xx, timeouts, connection trouble: worth another try.
    Retryable,
    /// The IAM action that was refused.
    AccessDenied { action: String },
    /// No credentials were found, or AWS rejected them (unknown key, wrong secret, expired
    /// session): not the IAM policy, and not worth another try.
    Credentials,
    /// The resource does not exist.
    NotFound,
    /// AWS refused the request as invalid.
    Rejected,
}

/// A failed AWS call: what was being done, why, and the SDK's own error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct AwsError {
    pub what: String,
    pub message: String,
    pub kind: AwsErrorKind,
    /// AWS's error code (`Throttling`, `InvalidPermission.Duplicate`), when AWS answered.
    pub code: Option<String>,
    pub request_id: Option<String>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AwsError {
    pub fn is_retryable(&self) -> bool {
        self.kind == AwsErrorKind::Retryable
    }

    pub fn not_found(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::plain(what, message, AwsErrorKind::NotFound)
    }

    /// A request tierdeck refused to make, or AWS refused as invalid.
    pub fn rejected(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::plain(what, message, AwsErrorKind::Rejected)
    }

    fn plain(what: impl Into<String>, message: impl Into<String>, kind: AwsErrorKind) -> Self {
        AwsError {
            what: what.into(),
            message: message.into(),
            kind,
            code: None,
            request_id: None,
            source: None,
        }
    }
}

pub type AwsResult<T> = Result<T, AwsError>;

/// Resources named in a call's tracing span: one name, or the first and how many more.
pub(crate) fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    }
}

/// An AWS failure keeps its class up to the API: throttled, down or unreachable is 503, access
/// denied 403 naming the IAM action, a missing resource 404, a refused request 422.
impl From<AwsError> for crate::error::ServiceError {
    fn from(e: AwsError) -> Self {
        use crate::error::ServiceError;
        tracing::warn!(error = ?e, "AWS call failed");
        let message = e.to_string();
        match e.kind {
            AwsErrorKind::Retryable => ServiceError::Unavailable(message),
            AwsErrorKind::AccessDenied { action } => ServiceError::AwsDenied { action, message },
            AwsErrorKind::Credentials => ServiceError::AwsCredentials(message),
            AwsErrorKind::NotFound => ServiceError::NotFound(message),
            AwsErrorKind::Rejected => ServiceError::Rejected(message),
        }
    }
}

const THROTTLING: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];
const DENIED: [&str; 3] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];
/// Codes by which AWS rejects the credentials themselves, whatever the policy: an unknown key
/// (`InvalidClientTokenId`; EC2's `AuthFailure`; JSON services' `UnrecognizedClientException`),
/// a wrong secret (`SignatureDoesNotMatch`), an expired session (`ExpiredToken`) or none at all.
const CREDENTIALS_REJECTED: [&str; 10] = [
    "InvalidClientTokenId",
    "AuthFailure",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "MissingAuthenticationToken",
];

/// Where the SDK's default credential chain looks, in its order, and what to set for each.
pub const CREDENTIAL_CHAIN: &str = "the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for a temporary key), the shared files ~/.aws/credentials and ~/.aws/config (the profile AWS_PROFILE names, else `default`), a web identity (AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE), the ECS task role and the EC2 instance profile (its IAM role)";

/// The credentials error inside a failed call, when it failed for want of credentials: the SDK
/// reports that as a dispatch failure, like an unreachable endpoint.
fn credentials_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a CredentialsError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

/// What a credentials failure says: where tierdeck looked and what to set.
fn missing_credentials(e: &CredentialsError) -> String {
    // A role the panel's configuration names for the environment was refused: that, and only
    // that, is the reason (the default chain was not the one asked).
    if let Some(refused) = access::role_refused(e) {
        return refused.to_string();
    }
    match e {
        CredentialsError::CredentialsNotLoaded(_) => format!(
            "no AWS credentials: tierdeck looked in the SDK's default chain ({CREDENTIAL_CHAIN}) and found none; set one of them for the account (or the role) tierdeck should use"
        ),
        other => {
            let mut text = other.to_string();
            let mut cur = std::error::Error::source(other);
            while let Some(cause) = cur {
                text.push_str(&format!(": {cause}"));
                cur = cause.source();
            }
            format!(
                "the AWS credentials could not be loaded ({text}); tierdeck reads them through the SDK's default chain ({CREDENTIAL_CHAIN})"
            )
        }
    }
}
const NOT_FOUND: [&str; 7] = [
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "InvalidGroup.NotFound",
    "InvalidNetworkAclID.NotFound",
    "InvalidNetworkAclEntry.NotFound",
    "InvalidSubnetID.NotFound",
    "ResourceNotFound",
];

/// Turns an SDK error into an [`AwsError`]: `what` says what tierdeck was doing, `action` is
/// the IAM action of the call.
pub fn classify<E>(what: impl Into<String>, action: &str, e: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = what.into();
    if let Some(cred) = credentials_error(&e) {
        let message = missing_credentials(cred);
        return AwsError {
            what,
            message,
            kind: AwsErrorKind::Credentials,
            code: None,
            request_id: None,
            source: Some(Box::new(e)),
        };
    }
    let (kind, message, request_id, code) = match &e {
        SdkError::TimeoutError(_) => (AwsErrorKind::Retryable, "timed out".to_owned(), None, None),
        SdkError::DispatchFailure(_) => (
            AwsErrorKind::Retryable,
            "could not reach AWS".to_owned(),
            None,
            None,
        ),
        SdkError::ResponseError(_) => (
            AwsErrorKind::Retryable,
            "AWS sent a response that could not be read".to_owned(),
            None,
            None,
        ),
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or_default().to_owned();
            let text = err.message().unwrap_or_default().to_owned();
            let request_id = err.meta().extra("aws_request_id").map(str::to_owned);
            let server_error = se.raw().status().is_server_error();
            let kind = if server_error
                || THROTTLING.contains(&code.as_str())
                || code.starts_with("Internal")
                || code == "ServiceUnavailable"
            {
                AwsErrorKind::Retryable
            } else if CREDENTIALS_REJECTED.contains(&code.as_str()) {
                AwsErrorKind::Credentials
            } else if DENIED.contains(&code.as_str()) {
                AwsErrorKind::AccessDenied {
                    action: action.to_owned(),
                }
            } else if NOT_FOUND.contains(&code.as_str()) {
                AwsErrorKind::NotFound
            } else {
                AwsErrorKind::Rejected
            };
            let message = match &kind {
                AwsErrorKind::AccessDenied { action } => {
                    format!("access denied: the credentials may not call {action} ({code}: {text})")
                }
                AwsErrorKind::Credentials => format!(
                    "AWS rejected the credentials ({code}: {text}): the key tierdeck found is unknown, its secret wrong or its session expired; tierdeck reads them through the SDK's default chain ({CREDENTIAL_CHAIN}): set valid ones there"
                ),
                _ if code.is_empty() => format!("AWS refused the request: {text}"),
                _ => format!("{code}: {text}"),
            };
            (
                kind,
                message,
                request_id,
                (!code.is_empty()).then_some(code),
            )
        }
        _ => {
            // Construction failures and anything newer than this code.
            (
                AwsErrorKind::Rejected,
                format!("the request could not be made: {e}"),
                None,
                None,
            )
        }
    };
    AwsError {
        what,
        message,
        kind,
        code,
        request_id,
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsError as E;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    const ACTION: &str = "autoscaling:DescribeAutoScalingGroups";

    fn answered(status: u16, code: &str, message: &str) -> AwsError {
        let err = E::generic(ErrorMetadata::builder().code(code).message(message).build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(""));
        classify("reading groups", ACTION, SdkError::service_error(err, raw))
    }

    #[test]
    fn missing_credentials_say_where_tierdeck_looked_not_that_aws_is_unreachable() {
        let none = CredentialsError::not_loaded("no providers in chain provided credentials");
        let failure: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(none), None));
        let e = classify("reading groups", ACTION, failure);
        assert_eq!(e.kind, AwsErrorKind::Credentials);
        assert!(!e.is_retryable());
        for named in [
            "no AWS credentials",
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_ROLE_ARN",
            "instance profile",
        ] {
            assert!(e.message.contains(named), "{named}: {}", e.message);
        }
        let e = ServiceError::from(e);
        assert_eq!((e.status(), e.code()), (503, "aws_credentials"));

        // A role that could not be assumed names itself, the action and AWS's reason.
        let refused = CredentialsError::provider_error(access::RoleRefused {
            role: "arn:aws:iam::111111111111:role/read".into(),
            reason: "AccessDenied: not authorized to perform sts:AssumeRole".into(),
        });
        let failure: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(refused), None));
        let e = classify("reading groups", ACTION, failure);
        assert_eq!(e.kind, AwsErrorKind::Credentials);
        assert_eq!(
            e.message,
            "tierdeck could not assume arn:aws:iam::111111111111:role/read (sts:AssumeRole): AccessDenied: not authorized to perform sts:AssumeRole; it makes no call with other credentials"
        );

        // A provider that failed says its own reason.
        let broken =
            CredentialsError::invalid_configuration("profile `ops` is not in ~/.aws/config");
        let failure: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(broken), None));
        let e = classify("reading groups", ACTION, failure);
        assert_eq!(e.kind, AwsErrorKind::Credentials);
        assert!(
            e.message.contains("profile `ops` is not in ~/.aws/config"),
            "{}",
            e.message
        );

        // An unreachable endpoint is still that.
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let failure: SdkError<E, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let e = classify("reading groups", ACTION, failure);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (AwsErrorKind::Retryable, "could not reach AWS")
        );
    }

    #[test]
    fn rejected_credentials_are_told_apart_from_a_refused_action() {
        for (status, code) in [
            (403, "InvalidClientTokenId"),
            (401, "AuthFailure"),
            (403, "SignatureDoesNotMatch"),
            (400, "ExpiredToken"),
            (400, "UnrecognizedClientException"),
        ] {
            let e = answered(
                status,
                code,
                "The security token included in the request is invalid.",
            );
            assert_eq!(e.kind, AwsErrorKind::Credentials, "{code}");
            assert!(
                e.message
                    .starts_with(&format!("AWS rejected the credentials ({code}:")),
                "{}",
                e.message
            );
            assert!(e.message.contains("AWS_ACCESS_KEY_ID"), "{}", e.message);
        }
        let e = answered(
            403,
            "AccessDenied",
            "User: arn:aws:iam::1:user/x is not authorized",
        );
        assert_eq!(
            e.kind,
            AwsErrorKind::AccessDenied {
                action: ACTION.into()
            }
        );
    }

    #[test]
    fn an_aws_failure_keeps_its_class_up_to_the_api() {
        let denied = AwsError::plain(
            "reading groups",
            "access denied: the credentials may not call autoscaling:DescribeAutoScalingGroups",
            AwsErrorKind::AccessDenied {
                action: "autoscaling:DescribeAutoScalingGroups".into(),
            },
        );
        let e = ServiceError::from(denied);
        assert_eq!((e.status(), e.code()), (403, "aws_access_denied"));
        assert!(
            matches!(&e, ServiceError::AwsDenied { action, .. } if action == "autoscaling:DescribeAutoScalingGroups")
        );
        let cases = [
            (AwsErrorKind::Retryable, 503, "unavailable"),
            (AwsErrorKind::NotFound, 404, "not_found"),
            (AwsErrorKind::Rejected, 422, "rejected"),
        ];
        for (kind, status, code) in cases {
            let e = ServiceError::from(AwsError::plain("x", "y", kind));
            assert_eq!((e.status(), e.code()), (status, code));
            assert_eq!(e.to_string(), "x: y");
        }
    }
}
