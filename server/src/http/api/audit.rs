//! The audit log's handlers: a page of events, the chain's verification, and the streamed
//! export as CSV or JSON with its CSV helpers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::audit::{AuditEntry, AuditQuery};
use engine::{Caller, ServiceError};
use futures::StreamExt;
use serde::Deserialize;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, Query};
use crate::http::state::AppState;

/// `GET /api/v1/audit?actor=&action=&env=&since=&until=&cursor=&limit=`: newest first.
pub(super) async fn audit(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<domain::audit::AuditPage>, ApiError> {
    Ok(Json(
        st.engine.audit().audit_page(&Caller::User(p), &q).await?,
    ))
}

/// The verification state of the whole chain.
pub(super) async fn audit_verify(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
) -> Result<Json<domain::audit::ChainReport>, ApiError> {
    Ok(Json(
        st.engine.audit().audit_verify(&Caller::User(p)).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(flatten)]
    filter: AuditQuery,
}

/// `GET /api/v1/audit/export?format=csv|json&…filters`: every matching event, streamed.
pub(super) async fn audit_export(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("format: expected csv or json, not `{format}`"),
        ));
    }
    let events = st
        .engine
        .audit()
        .audit_export(&Caller::User(p), &q.filter)?;
    let (body, content_type) = if format == "csv" {
        let header_row = futures::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(CSV_HEADER.as_bytes()))
        });
        let rows = events.map(|r| r.map(|e| bytes::Bytes::from(csv_row(&e))).map_err(io_err));
        (
            Body::from_stream(header_row.chain(rows)),
            "text/csv; charset=utf-8",
        )
    } else {
        let mut first = true;
        let open = futures::stream::once(async {
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"[\n"))
        });
        let rows = events.map(move |r| {
            r.map_err(io_err).and_then(|e| {
                let mut s = if first {
                    String::new()
                } else {
                    ",\n".to_owned()
                };
                first = false;
                s.push_str(&serde_json::to_string(&e).map_err(std::io::Error::other)?);
                Ok(bytes::Bytes::from(s))
            })
        });
        let close = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"\n]\n")) });
        (
            Body::from_stream(open.chain(rows).chain(close)),
            "application/json",
        )
    };
    let filename = format!("tierdeck-audit.{format}");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn io_err(e: ServiceError) -> std::io::Error {
    tracing::error!(error = %e, "audit export stopped");
    std::io::Error::other(e.to_string())
}

const CSV_HEADER: &str =
    "seq,at,actor_kind,actor,token,action,environment,target,detail,client_addr,prev_hash,hash\n";

fn csv_row(e: &AuditEntry) -> String {
    let fields = [
        e.seq.to_string(),
        e.at.clone(),
        e.actor_kind.to_string(),
        e.actor.clone(),
        e.token.clone().unwrap_or_default(),
        e.action.clone(),
        e.environment.clone().unwrap_or_default(),
        e.target.clone().unwrap_or_default(),
        e.detail.to_string(),
        e.client_addr.clone().unwrap_or_default(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Quotes a CSV field when needed, and defuses text a spreadsheet would run as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }
}
