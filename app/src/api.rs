//! Server functions: each checks who is asking, calls one engine service and converts its
//! error. They live at `/sfn/<name>`.

use domain::audit::{AuditPage, AuditQuery, ChainReport};
use domain::user::{TokenSummary, UserSummary};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Public facts about the panel's configuration (never secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelStatus {
    pub repo_url: Option<String>,
    pub repo_branch: String,
    pub aws_endpoint: Option<String>,
    pub aws_region: String,
    pub prometheus_url: Option<String>,
}

/// A token just created: the secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: TokenSummary,
    pub secret: String,
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use axum::http::request::Parts;
    use axum::http::{header, StatusCode};
    use engine::{Caller, Engine, RequestAuth, ServiceError};
    use leptos::prelude::*;

    /// The engine and the caller of this request.
    pub async fn caller() -> Result<(Engine, Caller, RequestAuth), ServerFnError> {
        let engine = use_context::<Engine>()
            .ok_or_else(|| ServerFnError::new("the server is not set up (no engine)"))?;
        // Read in place: extracting would copy the whole request head (headers, extensions)
        // for each server function a page loads.
        let auth = with_context::<Parts, _>(|p| p.extensions.get::<RequestAuth>().cloned())
            .flatten()
            .ok_or_else(|| ServerFnError::new("reading the request: no sign-in state"))?;
        let caller = auth.caller().map_err(fail)?;
        Ok((engine, caller, auth))
    }

    /// Converts a service error for the browser: the sentence, and the status for script
    /// callers (a plain form post is sent back to its page instead).
    /// An environment's name from a request; one no environment can have names none.
    pub fn env(name: &str) -> Result<domain::spec::EnvName, ServerFnError> {
        name.parse().map_err(|_| {
            fail(ServiceError::NotFound(format!(
                "there is no environment `{name}`"
            )))
        })
    }

    pub fn fail(e: ServiceError) -> ServerFnError {
        if let ServiceError::Internal(cause) = &e {
            tracing::error!(
                error = format!("{cause:#}"),
                "internal error in a server function"
            );
        }
        let plain_form = with_context::<Parts, _>(|p| {
            p.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        })
        .unwrap_or(false);
        if !plain_form {
            if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
                res.set_status(
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
                if let ServiceError::Throttled { retry_after_secs }
                | ServiceError::TooOften {
                    retry_after_secs, ..
                } = &e
                {
                    res.insert_header(
                        header::RETRY_AFTER,
                        header::HeaderValue::from(*retry_after_secs),
                    );
                }
            }
        }
        ServerFnError::new(e.to_string())
    }
}

#[server(prefix = "/sfn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine.users().list_users(&caller).await.map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "create_user")]
pub async fn create_user(
    name: String,
    email: String,
    role: String,
    password: String,
) -> Result<UserSummary, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    let new = engine::service::users::NewUser {
        name,
        role,
        email: Some(email),
        password,
    };
    engine
        .users()
        .create_user(&caller, new, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "set_role")]
pub async fn set_role(name: String, role: String) -> Result<UserSummary, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .users()
        .set_role(&caller, &name, &role, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "set_email")]
pub async fn set_email(name: String, email: String) -> Result<UserSummary, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .users()
        .set_email(&caller, &name, &email, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "set_disabled")]
pub async fn set_disabled(name: String, disabled: bool) -> Result<UserSummary, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .users()
        .set_disabled(&caller, &name, disabled, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "reset_password")]
pub async fn reset_password(name: String, password: String) -> Result<String, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .users()
        .reset_password(&caller, &name, &password, &auth.meta)
        .await
        .map_err(ssr::fail)?;
    Ok(name)
}

/// Sets the zone the signed-in user reads times in (empty: each environment's own).
#[server(prefix = "/sfn", endpoint = "set_time_zone")]
pub async fn set_time_zone(time_zone: String) -> Result<Option<String>, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .users()
        .set_own_time_zone(&caller, &time_zone, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    if new_password != confirm_password {
        return Err(ssr::fail(engine::ServiceError::invalid(
            "confirm_password",
            "the two new passwords differ",
        )));
    }
    let epoch = engine
        .users()
        .change_own_password(&caller, &current_password, &new_password, &auth.meta)
        .await
        .map_err(ssr::fail)?;
    // Other sessions end with the old epoch; this one carries on with the new.
    if auth.principal.as_ref().is_some_and(|p| p.token.is_none()) {
        let session = leptos_axum::extract::<tower_sessions::Session>()
            .await
            .map_err(|e| ServerFnError::new(format!("reading the session: {e}")))?;
        let user_id = auth
            .principal
            .as_ref()
            .map(|p| p.user_id)
            .unwrap_or_default();
        // The session keeps its sign-in time: a new password does not lengthen it.
        let signed_in_at = session
            .get::<engine::service::identity::SessionAuth>("auth")
            .await
            .ok()
            .flatten()
            .map(|a| a.signed_in_at)
            .unwrap_or_default();
        session
            .insert(
                "auth",
                engine::service::identity::SessionAuth {
                    user_id,
                    epoch,
                    signed_in_at,
                },
            )
            .await
            .map_err(|e| ServerFnError::new(format!("updating the session: {e}")))?;
    }
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "list_my_tokens")]
pub async fn list_my_tokens() -> Result<Vec<TokenSummary>, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    let me = auth
        .principal
        .map(|p| p.name.to_string())
        .unwrap_or_default();
    engine
        .tokens()
        .list_tokens(&caller, &me)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "create_token")]
pub async fn create_token(label: String) -> Result<NewToken, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    let me = auth
        .principal
        .as_ref()
        .map(|p| p.name.to_string())
        .unwrap_or_default();
    let created = engine
        .tokens()
        .create_token(&caller, &me, &label, &auth.meta)
        .await
        .map_err(ssr::fail)?;
    Ok(NewToken {
        token: created.summary,
        secret: created.secret,
    })
}

/// Every live API token of every user (admins).
#[server(prefix = "/sfn", endpoint = "list_all_tokens")]
pub async fn list_all_tokens() -> Result<Vec<TokenSummary>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .tokens()
        .list_all_tokens(&caller)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<(), ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .tokens()
        .revoke_token(&caller, id, &auth.meta)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "audit_page")]
pub async fn load_audit_page(query: AuditQuery) -> Result<AuditPage, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .audit()
        .audit_page(&caller, &query)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "audit_chain")]
pub async fn audit_chain() -> Result<ChainReport, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .audit()
        .audit_verify(&caller)
        .await
        .map_err(ssr::fail)
}

use domain::change::{
    ChangeDetail, ChangeSummary, EnvironmentDetail, EnvironmentSummary, RepoStatus,
};

#[server(prefix = "/sfn", endpoint = "repo_status")]
pub async fn load_repo_status() -> Result<Option<RepoStatus>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .changes()
        .repo_status(&caller)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "environments")]
pub async fn load_environments() -> Result<Vec<EnvironmentSummary>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .changes()
        .list_environments(&caller)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "environment")]
pub async fn load_environment(
    name: String,
    hours: u32,
) -> Result<EnvironmentDetail, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .changes()
        .environment_detail(&caller, &ssr::env(&name)?, hours)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "cost")]
pub async fn load_cost(env: String) -> Result<domain::cost::CostReport, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .cost()
        .environment_cost(&caller, &ssr::env(&env)?)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "changes")]
pub async fn load_changes(
    env: Option<String>,
    status: Option<String>,
) -> Result<Vec<ChangeSummary>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    let (env, status) = domain::change::list_filters(env.as_deref(), status.as_deref())
        .map_err(|(field, message)| ssr::fail(engine::ServiceError::invalid(field, message)))?;
    engine
        .changes()
        .list_changes(&caller, env.as_ref(), status)
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "change")]
pub async fn load_change(id: i64) -> Result<ChangeDetail, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .changes()
        .change_detail(&caller, domain::change::ChangeId(id))
        .await
        .map_err(ssr::fail)
}

/// Fetches the spec repository now (operators); returns a sentence saying what happened.
#[server(prefix = "/sfn", endpoint = "sync")]
pub async fn sync_now() -> Result<String, ServerFnError> {
    let (_, caller, auth) = ssr::caller().await?;
    caller.require(domain::Role::Operator).map_err(ssr::fail)?;
    let watcher = use_context::<Option<std::sync::Arc<engine::service::repo_sync::Watcher>>>()
        .flatten()
        .ok_or_else(|| {
            ssr::fail(engine::ServiceError::Unavailable(
                "no spec repository is configured: set repo.url".into(),
            ))
        })?;
    let outcome = watcher.sync(&auth.meta).await.map_err(ssr::fail)?;
    let head = outcome.head.unwrap_or_default();
    let head = domain::commit::short_sha(&head);
    Ok(match outcome.changes.len() {
        0 => format!("Fetched {head}: nothing new."),
        1 => format!("Fetched {head}: 1 new change."),
        n => format!("Fetched {head}: {n} new changes."),
    })
}

#[server(prefix = "/sfn", endpoint = "apply_state")]
pub async fn load_apply_state(id: i64) -> Result<domain::change::ApplyState, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .changes()
        .apply_state(&caller, domain::change::ChangeId(id))
        .await
        .map_err(ssr::fail)
}

/// Plans again, checks the gates and starts applying (operators); returns the run's id. An
/// emergency (outside the change windows) needs a reason.
#[server(prefix = "/sfn", endpoint = "apply")]
pub async fn apply_change(
    id: i64,
    #[server(default)] emergency_reason: Option<String>,
) -> Result<i64, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .applies()
        .apply_change(
            &caller,
            &auth.meta,
            domain::change::ChangeId(id),
            emergency_reason.as_deref(),
        )
        .await
        .map_err(ssr::fail)
}

/// Continue now, Cancel or Roll back the rollout a change's apply runs (operators): `action`
/// is `continue`, `cancel` or `rollback`; returns what happens now.
#[server(prefix = "/sfn", endpoint = "rollout")]
pub async fn rollout_action(id: i64, action: String) -> Result<String, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    let command = action
        .parse::<domain::rollout::Command>()
        .map_err(|e| ssr::fail(engine::ServiceError::invalid("action", e)))?;
    engine
        .applies()
        .rollout_command(&caller, &auth.meta, domain::change::ChangeId(id), command)
        .await
        .map_err(ssr::fail)
}

/// Records a revert of an applied change (operators); returns the revert's id.
#[server(prefix = "/sfn", endpoint = "revert")]
pub async fn revert_change(id: i64) -> Result<i64, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .reverts()
        .revert(&caller, &auth.meta, domain::change::ChangeId(id))
        .await
        .map(|id| id.0)
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "approve")]
pub async fn approve_change(
    id: i64,
    #[server(default)] comment: Option<String>,
) -> Result<(), ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .reviews()
        .approve(
            &caller,
            &auth.meta,
            domain::change::ChangeId(id),
            comment.as_deref(),
        )
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "reject")]
pub async fn reject_change(
    id: i64,
    #[server(default)] reason: Option<String>,
) -> Result<(), ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .reviews()
        .reject(
            &caller,
            &auth.meta,
            domain::change::ChangeId(id),
            reason.as_deref(),
        )
        .await
        .map_err(ssr::fail)
}

#[server(prefix = "/sfn", endpoint = "comment")]
pub async fn comment_change(
    id: i64,
    #[server(default)] comment: Option<String>,
) -> Result<(), ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .reviews()
        .comment(
            &caller,
            &auth.meta,
            domain::change::ChangeId(id),
            comment.as_deref(),
        )
        .await
        .map_err(ssr::fail)
}

/// The notification delivery log (admins).
#[server(prefix = "/sfn", endpoint = "notifications")]
pub async fn load_notifications() -> Result<Vec<domain::notify::Delivery>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .notifications()
        .notification_log(&caller)
        .await
        .map_err(ssr::fail)
}

/// The jobs not over and the latest that failed for good (admins).
#[server(prefix = "/sfn", endpoint = "jobs")]
pub async fn load_jobs() -> Result<Vec<domain::job::JobView>, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine.jobs().list(&caller).await.map_err(ssr::fail)
}

/// The replicas on the panel's database and which one leads (admins).
#[server(prefix = "/sfn", endpoint = "cluster")]
pub async fn load_cluster() -> Result<domain::cluster::ClusterView, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine.cluster.view(&caller).await.map_err(ssr::fail)
}

/// Plans a change against live AWS now.
#[server(prefix = "/sfn", endpoint = "replan")]
pub async fn replan_change(id: i64) -> Result<(), ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .plans()
        .plan_again(&caller, domain::change::ChangeId(id))
        .await
        .map(|_| ())
        .map_err(ssr::fail)
}

/// Turns an environment's drift into a change (operators); returns the change's id.
#[server(prefix = "/sfn", endpoint = "reconcile")]
pub async fn reconcile_environment(env: String) -> Result<i64, ServerFnError> {
    let (engine, caller, auth) = ssr::caller().await?;
    engine
        .drift()
        .reconcile(&caller, &auth.meta, &ssr::env(&env)?)
        .await
        .map(|id| id.0)
        .map_err(ssr::fail)
}

/// An environment's SLO status from Prometheus.
#[server(prefix = "/sfn", endpoint = "slo")]
pub async fn load_slo(env: String) -> Result<domain::slo::SloReport, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .slo()
        .slo_report(&caller, &ssr::env(&env)?, None)
        .await
        .map_err(ssr::fail)
}

/// An environment's scaling history over the last `hours`.
#[server(prefix = "/sfn", endpoint = "scaling")]
pub async fn load_scaling(
    env: String,
    hours: u32,
) -> Result<domain::scaling::ScalingHistory, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .scaling()
        .scaling_history(&caller, &ssr::env(&env)?, hours)
        .await
        .map_err(ssr::fail)
}

/// An environment's monitoring charts over `range`.
#[server(prefix = "/sfn", endpoint = "monitoring")]
pub async fn load_monitoring(
    env: String,
    range: String,
) -> Result<domain::monitoring::MonitoringReport, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .slo()
        .monitoring(&caller, &ssr::env(&env)?, &range, None)
        .await
        .map_err(ssr::fail)
}

/// An environment's target health: each group beside its healthy targets, and every target.
#[server(prefix = "/sfn", endpoint = "target_health")]
pub async fn load_target_health(
    env: String,
) -> Result<domain::cloudwatch::TargetHealthReport, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    engine
        .slo()
        .target_health(&caller, &ssr::env(&env)?)
        .await
        .map_err(ssr::fail)
}

/// Everything the overview shows, in one load: the page waits for all of it anyway, and each
/// load a page starts costs the server a task and its bookkeeping for every request. Each part
/// keeps its own error, so a part that fails leaves the others shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub status: PanelStatus,
    pub repo: Result<Option<RepoStatus>, ServerFnError>,
    pub environments: Result<Vec<EnvironmentSummary>, ServerFnError>,
    /// Changes the caller could approve now; `None` for those who may not approve (their page
    /// neither reads nor ships the list).
    pub waiting: Option<Result<Vec<ChangeSummary>, ServerFnError>>,
    /// Every environment's SLO report, for the badges.
    pub slos: Result<Vec<domain::slo::SloReport>, ServerFnError>,
    /// Targets that take no traffic, by environment (those with load balancers).
    pub targets: Result<Vec<domain::cloudwatch::UnhealthyTargets>, ServerFnError>,
    /// The audit chain's state: walked whole at most once a minute, and between walks only
    /// the events written since.
    pub chain: Result<ChainReport, ServerFnError>,
}

#[server(prefix = "/sfn", endpoint = "overview")]
pub async fn load_overview() -> Result<OverviewData, ServerFnError> {
    let (engine, caller, _) = ssr::caller().await?;
    let status = with_context::<std::sync::Arc<PanelStatus>, _>(|s| PanelStatus::clone(s))
        .ok_or_else(|| ServerFnError::new("the server is not set up"))?;
    let may_review = caller.require(domain::Role::Approver).is_ok();
    let (changes, reviews, slo, audit) = (
        engine.changes(),
        engine.reviews(),
        engine.slo(),
        engine.audit(),
    );
    let (repo, environments, waiting, slos, chain, targets) = futures::join!(
        changes.repo_status(&caller),
        changes.list_environments(&caller),
        async {
            match may_review {
                true => Some(reviews.waiting_for(&caller).await),
                false => None,
            }
        },
        slo.reports(&caller),
        audit.audit_verify_recent(&caller),
        slo.unhealthy_targets(&caller),
    );
    Ok(OverviewData {
        status,
        repo: repo.map_err(ssr::fail),
        environments: environments.map_err(ssr::fail),
        waiting: waiting.map(|w| w.map_err(ssr::fail)),
        slos: slos.map_err(ssr::fail),
        chain: chain.map_err(ssr::fail),
        targets: targets.map_err(ssr::fail),
    })
}

/// An import of what runs (admins): the files written from the account, how they stand, and
/// the round trip. Nothing is written or committed.
#[server(prefix = "/sfn", endpoint = "import_preview")]
pub async fn import_preview(
    env: String,
    region: String,
    by: String,
    value: String,
) -> Result<domain::import::Preview, ServerFnError> {
    use engine::ServiceError;
    let (engine, caller, _) = ssr::caller().await?;
    let env: domain::spec::EnvName = env
        .parse()
        .map_err(|e: String| ssr::fail(ServiceError::Rejected(format!("environment: {e}"))))?;
    let selector = domain::import::Selector::from_form(&by, &value)
        .map_err(|e| ssr::fail(ServiceError::Rejected(e)))?;
    engine
        .imports()
        .import(&caller, &env, region.trim(), &selector)
        .await
        .map(|o| o.preview(&env, region.trim(), &selector))
        .map_err(ssr::fail)
}
