//! Request layers: who is asking (session or bearer token), cross-origin refusal, and the
//! redirect of anonymous page views to the sign-in page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use engine::service::identity::SessionAuth;
use engine::{Principal, RequestAuth, RequestMeta, ServiceError};
use tower_sessions::Session;

use super::error::ApiError;
use super::state::AppState;

/// The session key holding [`SessionAuth`].
pub const SESSION_AUTH: &str = "auth";
/// The minute a session was last seen (Unix time / 60).
const SEEN: &str = "seen";

/// Whether a session signed in at `signed_in_at` is past its absolute lifetime at `now`.
fn session_over(signed_in_at: i64, now: i64, max_secs: i64) -> bool {
    now.saturating_sub(signed_in_at) > max_secs
}

/// Paths that need no session work at all.
fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/healthz" || path == "/metrics" || path == "/favicon.svg"
}

/// The client address: the socket's peer, or the last `X-Forwarded-For` entry when configured
/// to trust the proxy in front.
pub fn client_addr(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<String> {
    if trust_forwarded_for {
        if let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|s| !s.is_empty())
        {
            return Some(last.to_owned());
        }
    }
    peer.map(|p| p.ip().to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the principal and puts a [`RequestAuth`] in the request's extensions.
pub async fn resolve(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_static(&path) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let meta = RequestMeta {
        client_addr: client_addr(req.headers(), peer, st.trust_forwarded_for),
    };
    let principal = if let Some(token) = bearer(req.headers()) {
        match st.engine.identity().token_principal(token, &meta).await {
            Ok(p) => Some(p),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, &st).await;
        req = Request::from_parts(parts, body);
        match session {
            Ok(session) => match session_principal(&st, &session).await {
                Ok(p) => p,
                Err(e) => return ApiError::from(e).into_response(),
            },
            Err((status, msg)) => return (status, msg).into_response(),
        }
    };
    req.extensions_mut().insert(RequestAuth { principal, meta });
    next.run(req).await
}

async fn session_principal(
    st: &AppState,
    session: &Session,
) -> Result<Option<Principal>, ServiceError> {
    let auth: Option<SessionAuth> = session
        .get(SESSION_AUTH)
        .await
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("reading the session: {e}")))?;
    let Some(auth) = auth else { return Ok(None) };
    let now = chrono::Utc::now().timestamp();
    let principal = if session_over(auth.signed_in_at, now, st.session_max_secs) {
        None
    } else {
        st.engine.identity().session_principal(auth).await?
    };
    if principal.is_some() {
        // A write at most once a minute keeps an active session from its idle end.
        let minute = now / 60;
        let seen: Option<i64> = session.get(SEEN).await.ok().flatten();
        if seen != Some(minute) {
            session
                .insert(SEEN, minute)
                .await
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("marking the session: {e}")))?;
        }
    }
    if principal.is_none() {
        // Disabled, password reset, or deleted: this session is over.
        session
            .flush()
            .await
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("ending a session: {e}")))?;
    }
    Ok(principal)
}

/// Sends anonymous page views to the sign-in page, and signed-in ones away from it.
pub async fn guard_pages(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !is_static(path)
        && !path.starts_with("/api/")
        && !path.starts_with("/sfn/");
    if !is_page {
        return next.run(req).await;
    }
    let signed_in = req
        .extensions()
        .get::<RequestAuth>()
        .is_some_and(|a| a.principal.is_some());
    match (path == "/login", signed_in) {
        (true, true) => Redirect::to("/").into_response(),
        (false, false) => {
            let next_path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", urlencoding::encode(next_path))).into_response()
        }
        _ => next.run(req).await,
    }
}

/// `host[:port]` of an origin or referer URL, port only when not the scheme's default, as a
/// `Host` header carries it.
fn authority_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Refuses state-changing requests (anything but GET, HEAD, OPTIONS) from another origin:
/// forms, server functions and the REST API alike. The browser's `Origin` (or `Referer`)
/// must be the panel's own; a request without either is only accepted when it carries no
/// session cookie (a script with a bearer token, which a browser cannot forge).
pub async fn refuse_cross_origin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == "/api/v1/hooks/git"
    {
        return next.run(req).await;
    }
    match same_origin(&st, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(why) => ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("cross-origin request refused: {why}"),
        )
        .into_response(),
    }
}

fn same_origin(st: &AppState, headers: &HeaderMap) -> Result<(), String> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err("the browser marked it cross-site".into());
    }
    let claimed = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(|o| ("Origin", o.to_owned()))
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .map(|r| ("Referer", r.to_owned()))
        });
    let Some((which, claimed)) = claimed else {
        let has_cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.contains("tierdeck_session="));
        return if has_cookie && bearer(headers).is_none() {
            Err("a request with a session cookie must carry Origin or Referer".into())
        } else {
            Ok(())
        };
    };
    let ok = match &st.public_origin {
        Some(public) => {
            authority_of(&claimed) == authority_of(public)
                && url::Url::parse(&claimed)
                    .ok()
                    .map(|u| u.scheme().to_owned())
                    == url::Url::parse(public).ok().map(|u| u.scheme().to_owned())
        }
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            host.is_some() && authority_of(&claimed) == host
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{which} `{claimed}` is not this panel's origin"))
    }
}

/// The authenticated principal of an API request; 401 without one.
pub struct ApiUser(pub Principal);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let auth = parts
            .extensions
            .get::<RequestAuth>()
            .cloned()
            .unwrap_or_default();
        match auth.principal {
            Some(p) => Ok(ApiUser(p)),
            None => Err(ApiError::from(ServiceError::Unauthenticated(
                "sign in, or send an API token as `Authorization: Bearer`".into(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_a_fixed_time_after_sign_in() {
        let week = 7 * 24 * 3600;
        let signed_in = 1_800_000_000;
        assert!(!session_over(signed_in, signed_in + week, week));
        assert!(session_over(signed_in, signed_in + week + 1, week));
        // Sessions from before the sign-in time was kept.
        assert!(session_over(0, signed_in, week));
    }
}
