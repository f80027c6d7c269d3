//! Signing in and out with plain HTML forms: they work without JavaScript, and the hydrated
//! page submits the same forms.

use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use engine::{RequestAuth, ServiceError};
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::SESSION_AUTH;
use super::error::ApiError;
use super::state::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Only a local path may be a redirect target: `/audit`, never `//evil.example` or a URL.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if same_origin_path(n) && same_origin_path(&percent_decoded(n)) => n,
        _ => "/",
    }
}

/// A path on this origin: one leading `/`, and nothing a browser drops or bends into another
/// origin (control characters such as tabs and line feeds, which browsers strip, and
/// backslashes, which they read as `/`).
fn same_origin_path(p: &str) -> bool {
    p.starts_with('/')
        && !p[1..].starts_with('/')
        && !p.chars().any(|c| c.is_control() || c == '\\')
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decoded(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn login(
    State(st): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    session: Session,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return render_login(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter a user name and a password.",
            "",
            None,
        )
        .await;
    };
    match st
        .engine
        .sessions()
        .login(&form.username, &form.password, &auth.meta)
        .await
    {
        Ok((_, session_auth)) => {
            st.metrics.login("ok");
            // A new id at sign-in: a session id planted before it is worth nothing after.
            let stored = async {
                session.cycle_id().await?;
                session.insert(SESSION_AUTH, session_auth).await
            };
            if let Err(e) = stored.await {
                return ApiError::from(ServiceError::Internal(anyhow::anyhow!(
                    "storing the session: {e}"
                )))
                .into_response();
            }
            Redirect::to(safe_next(form.next.as_deref())).into_response()
        }
        Err(ServiceError::Unauthenticated(msg)) => {
            st.metrics.login("failed");
            render_login(
                &st,
                StatusCode::UNAUTHORIZED,
                &capitalise(&msg),
                &form.username,
                form.next.as_deref(),
            )
            .await
        }
        Err(e @ ServiceError::Throttled { retry_after_secs }) => {
            st.metrics.login("throttled");
            let mut res = render_login(
                &st,
                StatusCode::TOO_MANY_REQUESTS,
                &capitalise(&e.to_string()),
                &form.username,
                form.next.as_deref(),
            )
            .await;
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// The sign-in page with a notice, through the same Leptos renderer as every page, answered
/// with `status`.
async fn render_login(
    st: &AppState,
    status: StatusCode,
    message: &str,
    user: &str,
    next: Option<&str>,
) -> Response {
    let mut req = Request::builder()
        .method("GET")
        .uri("/login")
        .body(Body::empty())
        .expect("static request");
    req.extensions_mut().insert(app::LoginNotice {
        message: message.to_owned(),
        user: user.chars().take(128).collect(),
        next: next.map(str::to_owned),
    });
    let mut res = (st.render_page)(req).await;
    *res.status_mut() = status;
    res
}

pub async fn logout(
    State(st): State<AppState>,
    Extension(auth): Extension<RequestAuth>,
    session: Session,
) -> Response {
    if let Some(p) = &auth.principal {
        if p.token.is_none() {
            if let Err(e) = st.engine.sessions().logout(p, &auth.meta).await {
                return ApiError::from(e).into_response();
            }
        }
    }
    if let Err(e) = session.flush().await {
        return ApiError::from(ServiceError::Internal(anyhow::anyhow!(
            "ending the session: {e}"
        )))
        .into_response();
    }
    Redirect::to("/login").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_origin_are_followed_after_sign_in() {
        for ok in ["/", "/changes/3", "/audit?env=prod&page=2", "/a%20b"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "https://evil.example",
            "/\n/evil.example",
            "evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
