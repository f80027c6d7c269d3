//! Services: each checks the caller's role itself, does its work in one transaction with the
//! audit event that records it, and returns plain data.
//!
//! Each service is a handle borrowed from the [`Engine`]: `engine.reviews().approve(…)`. A
//! service reaches another the same way (`self.audit().record_event(…)`), so a call names the
//! service it uses. The handles are listed once, below.

use crate::Engine;

/// Declares a service's handle: a borrow of the engine, through which the service reads the
/// store, the settings and the other services.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<'a>(pub(crate) &'a crate::Engine);

        impl std::ops::Deref for $name<'_> {
            type Target = crate::Engine;
            fn deref(&self) -> &crate::Engine {
                self.0
            }
        }
    };
}
pub(crate) use handle;

pub mod apply;
pub mod audit;
pub mod changes;
pub mod cost;
pub mod drift;
pub mod identity;
pub mod jobs;
pub mod judge;
pub mod login;
pub mod notify;
pub mod plans;
pub mod repo_sync;
pub mod revert;
pub mod reviews;
pub mod scaling;
pub mod slo;
pub mod tokens;
pub mod users;
pub mod watch;

/// The services, one handle each.
impl Engine {
    /// People and their roles.
    pub fn users(&self) -> users::Users<'_> {
        users::Users(self)
    }
    /// API tokens.
    pub fn tokens(&self) -> tokens::Tokens<'_> {
        tokens::Tokens(self)
    }
    /// Signing in and out.
    pub fn sessions(&self) -> login::Sessions<'_> {
        login::Sessions(self)
    }
    /// Who a session or a token is.
    pub fn identity(&self) -> identity::Identity<'_> {
        identity::Identity(self)
    }
    /// Environments and changes as the pages read them.
    pub fn changes(&self) -> changes::Changes<'_> {
        changes::Changes(self)
    }
    /// Plans against live AWS.
    pub fn plans(&self) -> plans::Plans<'_> {
        plans::Plans(self)
    }
    /// The one judgement of a change.
    pub(crate) fn judge(&self) -> judge::Judge<'_> {
        judge::Judge(self)
    }
    /// Approvals, rejections and comments.
    pub fn reviews(&self) -> reviews::Reviews<'_> {
        reviews::Reviews(self)
    }
    /// Applying changes, their lock and their recovery.
    pub fn applies(&self) -> apply::Applies<'_> {
        apply::Applies(self)
    }
    /// Reverting an applied change.
    pub fn reverts(&self) -> revert::Reverts<'_> {
        revert::Reverts(self)
    }
    /// The SLO watch after an apply.
    pub fn watches(&self) -> watch::Watches<'_> {
        watch::Watches(self)
    }
    /// Drift between the applied spec and AWS.
    pub fn drift(&self) -> drift::Drifts<'_> {
        drift::Drifts(self)
    }
    /// Scaling history.
    pub fn scaling(&self) -> scaling::Scaling<'_> {
        scaling::Scaling(self)
    }
    /// SLO status and monitoring.
    pub fn slo(&self) -> slo::Slos<'_> {
        slo::Slos(self)
    }
    /// Costs of environments and changes.
    pub fn cost(&self) -> cost::Costs<'_> {
        cost::Costs(self)
    }
    /// The audit log.
    pub fn audit(&self) -> audit::AuditLog<'_> {
        audit::AuditLog(self)
    }
    /// The jobs queue, read.
    pub fn jobs(&self) -> jobs::Jobs<'_> {
        jobs::Jobs(self)
    }
    /// Outgoing notifications.
    pub fn notifications(&self) -> notify::Notifications<'_> {
        notify::Notifications(self)
    }
}

/// The row of environment `env`, or "there is no environment" (404).
pub(crate) async fn known_environment(
    conn: &mut sqlx::SqliteConnection,
    env: &str,
) -> crate::error::ServiceResult<crate::store::repo::EnvironmentRow> {
    crate::store::repo::environment(conn, env)
        .await?
        .ok_or_else(|| {
            crate::error::ServiceError::NotFound(format!("there is no environment `{env}`"))
        })
}
