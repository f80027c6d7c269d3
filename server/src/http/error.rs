//! Error answers of the REST API and the layers in front of it: `{"error": {"code": "...",
//! "message": "..."}}` with its status, and the request-parsing helpers that produce them.

use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::ServiceError;
use serde_json::json;

/// An error answer: status, stable code, a sentence for people.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The IAM action AWS refused, for an `aws_access_denied` answer.
    action: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            action: None,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let retry_after = match &e {
            ServiceError::Throttled { retry_after_secs }
            | ServiceError::TooOften {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let action = match &e {
            ServiceError::AwsDenied { action, .. } => Some(action.clone()),
            _ => None,
        };
        Self {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code(),
            message: e.to_string(),
            retry_after,
            action,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(action) = self.action {
            error["action"] = json!(action);
        }
        let mut res = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// An optional JSON body: empty is the default, anything else must parse.
pub(super) fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("request body: {e}"),
        )
    })
}
