//! The one error type services return; the HTTP edge maps each kind to a status.

use domain::Role;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Not signed in, or the credentials are not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("this needs the {required} role (you are {held})")]
    Forbidden { required: Role, held: Role },
    /// Allowed for the role, but not for this person or this change (an author approving
    /// their own change).
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    /// Input that does not meet the rules; `field` names the parameter.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// A conflict that may pass in a moment (another apply holds the environment; the plan
    /// moved and was recorded anew): 409 like [`ServiceError::Conflict`], and a job tries again.
    #[error("{0}")]
    Busy(String),
    /// Something tierdeck depends on (the spec repository, AWS, Prometheus) is not there.
    #[error("{0}")]
    Unavailable(String),
    /// AWS refused a call that the panel's credentials may not make; `action` is its IAM
    /// action, for the policy to grant.
    #[error("{message}")]
    AwsDenied { action: String, message: String },
    /// The panel has no AWS credentials, or AWS rejected them (unknown, wrong or expired); the
    /// message says where tierdeck looked and what to set.
    #[error("{0}")]
    AwsCredentials(String),
    /// AWS refused a request as invalid (a value it does not take).
    #[error("{0}")]
    Rejected(String),
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    /// Asked too often (see [`crate::auth::limits`]): what, and when it may be asked again.
    #[error("{what}; try again in {retry_after_secs} seconds")]
    TooOften { what: String, retry_after_secs: u64 },
    /// A fault of ours or of the machine; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// The text for the log: what [`Display`](std::fmt::Display) shows, and for an internal
    /// error its whole cause, which is never shown to people.
    pub fn logged(&self) -> String {
        match self {
            ServiceError::Internal(cause) => format!("internal error: {cause:#}"),
            e => e.to_string(),
        }
    }

    pub fn invalid(field: &'static str, message: impl ToString) -> Self {
        ServiceError::Invalid {
            field,
            message: message.to_string(),
        }
    }

    /// A stable machine-readable code for the REST error body.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Unauthenticated(_) => "unauthenticated",
            ServiceError::Forbidden { .. } | ServiceError::Denied(_) => "forbidden",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Invalid { .. } => "invalid",
            ServiceError::Conflict(_) | ServiceError::Busy(_) => "conflict",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::AwsDenied { .. } => "aws_access_denied",
            ServiceError::AwsCredentials(_) => "aws_credentials",
            ServiceError::Rejected(_) => "rejected",
            ServiceError::Throttled { .. } | ServiceError::TooOften { .. } => "throttled",
            ServiceError::Internal(_) => "internal",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ServiceError::Unauthenticated(_) => 401,
            ServiceError::Forbidden { .. } | ServiceError::Denied(_) => 403,
            ServiceError::NotFound(_) => 404,
            ServiceError::Invalid { .. } => 422,
            ServiceError::Conflict(_) | ServiceError::Busy(_) => 409,
            ServiceError::Unavailable(_) => 503,
            ServiceError::AwsDenied { .. } => 403,
            ServiceError::AwsCredentials(_) => 503,
            ServiceError::Rejected(_) => 422,
            ServiceError::Throttled { .. } | ServiceError::TooOften { .. } => 429,
            ServiceError::Internal(_) => 500,
        }
    }
}

/// A gate's or the lifecycle's refusal: its kind decides the status.
impl From<domain::lifecycle::Refusal> for ServiceError {
    fn from(r: domain::lifecycle::Refusal) -> Self {
        use domain::lifecycle::RefusalKind;
        match r.kind {
            RefusalKind::Forbidden => ServiceError::Denied(r.message),
            RefusalKind::Conflict => ServiceError::Conflict(r.message),
            RefusalKind::Busy => ServiceError::Busy(r.message),
            RefusalKind::Invalid { field } => ServiceError::Invalid {
                field,
                message: r.message,
            },
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Internal(anyhow::Error::new(e).context("database"))
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
