//! Which AWS account and powers an environment's calls carry: from the panel's configuration
//! (`[aws.environments.NAME]`), never from the spec. An environment with a plan role reads
//! (observe, plan, drift, monitoring, cost) with it and applies with its apply role, each
//! assumed through the SDK's own provider (`sts:AssumeRole`), whose credentials the SDK keeps
//! until shortly before they expire and renews on the next call after; a role that cannot be
//! assumed fails the call with the role, the action and AWS's reason, and never falls back to
//! the panel's own credentials. An environment without an entry uses the default chain.

use std::fmt;

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An environment's AWS access, from the panel's configuration.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvironmentAccess {
    /// Assumed to read: observe, plan, drift, monitoring, cost.
    pub plan_role_arn: Option<String>,
    /// Assumed by an apply (a revert's and a reconcile's too), once per run.
    pub apply_role_arn: Option<String>,
    /// What the roles' trust policies ask for (`sts:ExternalId`).
    pub external_id: Option<String>,
    /// The environment's region, over its spec's.
    pub region: Option<String>,
    /// The role session's name; default `tierdeck-<env>-<user or system>`.
    pub session_name: Option<String>,
    /// Another endpoint for this environment's calls (tests, an emulator).
    pub endpoint_url: Option<String>,
}

impl fmt::Debug for EnvironmentAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentAccess")
            .field("plan_role_arn", &self.plan_role_arn)
            .field("apply_role_arn", &self.apply_role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "…"))
            .field("region", &self.region)
            .field("session_name", &self.session_name)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

/// What a set of clients is for, which decides the role it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose<'a> {
    /// Reading, as tierdeck itself.
    Read,
    /// One apply run, for the person (or `system`) who started it.
    Apply { actor: &'a str },
}

impl EnvironmentAccess {
    /// The role `purpose` carries, if the environment names one.
    pub fn role(&self, purpose: Purpose<'_>) -> Option<&str> {
        match purpose {
            Purpose::Read => self.plan_role_arn.as_deref(),
            Purpose::Apply { .. } => self.apply_role_arn.as_deref(),
        }
    }

    /// The role session's name: the configured one, or `tierdeck-<env>-<who>`, in the
    /// characters STS takes (letters, digits and `+=,.@-`), at most 64 of them, so CloudTrail
    /// names who asked.
    pub fn session_name(&self, env: &str, purpose: Purpose<'_>) -> String {
        let name = match (&self.session_name, purpose) {
            (Some(n), _) => n.clone(),
            (None, Purpose::Read) => format!("tierdeck-{env}-system"),
            (None, Purpose::Apply { actor }) => format!("tierdeck-{env}-{actor}"),
        };
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        if name.len() < 2 {
            format!("tierdeck-{name}")
        } else {
            name
        }
    }
}

/// Whether `arn` is shaped like an IAM role's ARN (`arn:aws:iam::123456789012:role/name`).
pub fn role_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty());
    (!ok).then(|| format!("`{arn}` is not an IAM role's ARN (arn:aws:iam::123456789012:role/NAME)"))
}

/// Why a role could not be assumed: the role, the action and AWS's reason.
#[derive(Debug)]
pub struct RoleRefused {
    pub role: String,
    pub reason: String,
}

impl fmt::Display for RoleRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tierdeck could not assume {} (sts:AssumeRole): {}; it makes no call with other credentials",
            self.role, self.reason
        )
    }
}

impl std::error::Error for RoleRefused {}

/// AWS's reason, from the error the SDK's provider returned.
fn reason(e: &CredentialsError) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(sdk) = err.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return match sdk {
                SdkError::ServiceError(se) => {
                    let err = se.err();
                    format!(
                        "{}: {}",
                        err.code().unwrap_or("refused"),
                        err.message().unwrap_or_default()
                    )
                }
                SdkError::TimeoutError(_) => "STS did not answer in time".into(),
                SdkError::DispatchFailure(_) => "STS could not be reached".into(),
                other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
            };
        }
        cur = err.source();
    }
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}

/// The SDK's assume-role provider, whose failure says which role and why.
#[derive(Debug)]
pub(crate) struct RoleCredentials {
    role: String,
    inner: AssumeRoleProvider,
}

impl RoleCredentials {
    pub(crate) fn new(role: String, inner: AssumeRoleProvider) -> Self {
        Self { role, inner }
    }
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.inner.provide_credentials().await.map_err(|e| {
                let refused = RoleRefused {
                    role: self.role.clone(),
                    reason: reason(&e),
                };
                tracing::warn!(error = %refused, "assuming a role failed");
                CredentialsError::provider_error(refused)
            })
        })
    }
}

/// The role refusal inside a failed call, if that is why it failed.
pub(crate) fn role_refused<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a RoleRefused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<RoleRefused>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_name_the_environment_and_who_asked_in_what_sts_takes() {
        let a = EnvironmentAccess::default();
        assert_eq!(
            a.session_name("prod", Purpose::Read),
            "tierdeck-prod-system"
        );
        assert_eq!(
            a.session_name("prod", Purpose::Apply { actor: "sejin" }),
            "tierdeck-prod-sejin"
        );
        assert_eq!(
            a.session_name(
                "prod",
                Purpose::Apply {
                    actor: "정호 kim"
                }
            ),
            "tierdeck-prod----kim"
        );
        let long = "x".repeat(80);
        assert_eq!(
            a.session_name("prod", Purpose::Apply { actor: &long })
                .len(),
            64
        );
        let named = EnvironmentAccess {
            session_name: Some("deck".into()),
            ..EnvironmentAccess::default()
        };
        assert_eq!(named.session_name("prod", Purpose::Read), "deck");
    }

    #[test]
    fn a_purpose_carries_its_own_role() {
        let a = EnvironmentAccess {
            plan_role_arn: Some("arn:aws:iam::111111111111:role/read".into()),
            apply_role_arn: Some("arn:aws:iam::111111111111:role/write".into()),
            ..EnvironmentAccess::default()
        };
        assert_eq!(
            a.role(Purpose::Read),
            Some("arn:aws:iam::111111111111:role/read")
        );
        assert_eq!(
            a.role(Purpose::Apply { actor: "x" }),
            Some("arn:aws:iam::111111111111:role/write")
        );
        assert!(!format!(
            "{:?}",
            EnvironmentAccess {
                external_id: Some("s3cret".into()),
                ..EnvironmentAccess::default()
            }
        )
        .contains("s3cret"));
    }

    #[test]
    fn only_iam_role_arns_are_roles() {
        assert_eq!(
            role_arn_problem("arn:aws:iam::123456789012:role/tierdeck-read"),
            None
        );
        assert_eq!(
            role_arn_problem("arn:aws-cn:iam::123456789012:role/path/deck"),
            None
        );
        for bad in [
            "tierdeck-read",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/",
        ] {
            assert!(role_arn_problem(bad).is_some(), "{bad}");
        }
    }
}
