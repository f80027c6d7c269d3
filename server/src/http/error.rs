//! Error answers of the REST API and the layers in front of it: `{"error": {"code": "...",
//! "message": "..."}}` with its status, and the request-parsing helpers that produce them.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts};
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

/// A part of a request (`query string`, `path`) that does not parse: 400, saying why.
fn unparsable(part: &str, why: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", format!("{part}: {why}"))
}

/// The query string parsed into `T`, or the API's own 400 naming what is wrong
/// (`query string: cursor: invalid digit found in string`), never the framework's plain text.
#[derive(Debug)]
pub(super) struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let why = text.strip_prefix("Failed to deserialize query string: ");
                unparsable("query string", why.unwrap_or(&text))
            })
    }
}

/// A path parameter, or the API's own 400 (a segment that is not UTF-8 once decoded).
#[derive(Debug)]
pub(super) struct Path<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| unparsable("path", &e.body_text()))
    }
}

/// The request body, or the API's own error: `413 too_large` past the route's limit, `400`
/// when it cannot be read.
#[derive(Debug)]
pub(super) struct RequestBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RequestBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RequestBody)
            .map_err(|e| {
                let status = e.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "too_large"
                } else {
                    "invalid"
                };
                let status = if status.is_server_error() {
                    StatusCode::BAD_REQUEST
                } else {
                    status
                };
                ApiError::new(status, code, format!("request body: {}", e.body_text()))
            })
    }
}

/// An API route asked with a method it does not take: `405` in the API's shape.
pub(super) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this API endpoint does not take {method}"),
    )
}

/// The panel's whole-request body limit (in front of every route) answers in plain text; an
/// API request gets it in the API's shape (`413 too_large`), like every other rejection.
pub(super) async fn api_body_limit_in_shape(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if api && res.status() == StatusCode::PAYLOAD_TOO_LARGE && !json {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "request body: larger than the panel takes ({} KiB)",
                super::MAX_BODY_BYTES >> 10
            ),
        )
        .into_response();
    }
    res
}
