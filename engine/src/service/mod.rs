//! Services: each checks the caller's role itself, does its work in one transaction with the
//! audit event that records it, and returns plain data.
//!
//! Each service is built with the handles it uses — the store, the AWS clients, Prometheus,
//! the clock, what is kept between requests — and the services it calls, never the whole
//! [`Engine`]: the engine is where they are put together (below), once, and the doors (the
//! REST API, the pages' server functions, the command line) and the jobs worker ask it for
//! them (`engine.reviews().approve(…)`). Calls between services run one way, from the top of
//! this list down:
//!
//! ```text
//! doors (http, pages, CLI) · jobs worker · repository watcher
//!   changes (the pages' reads)
//!   applies ──► watches ──► reverts ──► plans ──► judge ──► cost ──► specs
//!           └─► reverts (settling open changes after a revert)
//!           └─► drift ───► plans          reviews ──► judge, plans
//!           └─► scaling, slo, notifications
//!   imports ──► plans
//!   users, tokens, sessions ──► identity · audit · jobs (read)
//! parts: store (and the jobs queue), repo reads, AWS clients (and the CloudWatch reads kept
//! between requests), Prometheus, clock
//! ```

use std::sync::Arc;

use crate::Engine;

pub mod apply;
pub mod audit;
pub mod changes;
pub mod cloudwatch;
pub mod cost;
pub mod drift;
pub mod identity;
pub mod import;
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
pub mod spec_reads;
pub mod tokens;
pub mod users;
pub mod watch;

/// The services, each put together from the engine's parts and the services it calls.
impl Engine {
    fn clock(&self) -> &dyn crate::clock::Clock {
        &*self.clock
    }

    fn prom(&self) -> Option<&dyn crate::prometheus::PromApi> {
        self.prometheus.as_ref().map(Arc::as_ref)
    }

    /// People and their roles.
    pub fn users(&self) -> users::Users<'_> {
        users::Users {
            store: &self.store,
            clock: self.clock(),
        }
    }
    /// API tokens.
    pub fn tokens(&self) -> tokens::Tokens<'_> {
        tokens::Tokens {
            store: &self.store,
            clock: self.clock(),
        }
    }
    /// Signing in and out.
    pub fn sessions(&self) -> login::Sessions<'_> {
        login::Sessions {
            store: &self.store,
            settings: &self.settings,
            hashing: &self.hashing,
            refusals: &self.refusals,
            identity: self.identity(),
            clock: self.clock(),
        }
    }
    /// Who a session or a token is.
    pub fn identity(&self) -> identity::Identity<'_> {
        identity::Identity {
            store: &self.store,
            users_read: &self.users_read,
            clock: self.clock(),
        }
    }
    /// Specs and changes as recorded.
    pub(crate) fn specs(&self) -> spec_reads::Specs<'_> {
        spec_reads::Specs {
            store: &self.store,
            settings: &self.settings,
            reads: &self.reads,
        }
    }
    /// Environments and changes as the pages read them.
    pub fn changes(&self) -> changes::Changes<'_> {
        changes::Changes {
            store: &self.store,
            settings: &self.settings,
            reads: &self.reads,
            repo_read: &self.repo_read,
            environments_read: &self.environments_read,
            specs: self.specs(),
            judge: self.judge(),
            plans: self.plans(),
            applies: self.applies(),
            reviews: self.reviews(),
            jobs: self.jobs(),
            notifications: self.notifications(),
            clock: self.clock(),
        }
    }
    /// Plans against live AWS.
    pub fn plans(&self) -> plans::Plans<'_> {
        plans::Plans {
            store: &self.store,
            settings: &self.settings,
            specs: self.specs(),
            judge: self.judge(),
            aws: &self.aws,
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
            plan_again: &self.plan_again,
        }
    }
    /// Reading an account for `tierdeck import`, and its round trip.
    pub fn imports(&self) -> import::Imports<'_> {
        import::Imports {
            aws: &self.aws,
            settings: &self.settings,
            plans: self.plans(),
        }
    }
    /// The one judgement of a change.
    pub(crate) fn judge(&self) -> judge::Judge<'_> {
        judge::Judge {
            store: &self.store,
            settings: &self.settings,
            specs: self.specs(),
            cost: self.cost(),
            clock: self.clock(),
        }
    }
    /// Approvals, rejections and comments.
    pub fn reviews(&self) -> reviews::Reviews<'_> {
        reviews::Reviews {
            store: &self.store,
            specs: self.specs(),
            judge: self.judge(),
            notifications: self.notifications(),
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
        }
    }
    /// Applying changes, their lock and their recovery.
    pub fn applies(&self) -> apply::Applies<'_> {
        apply::Applies {
            store: &self.store,
            settings: &self.settings,
            holder: &self.holder,
            aws: &self.aws,
            specs: self.specs(),
            plans: self.plans(),
            judge: self.judge(),
            slo: self.slo(),
            watches: self.watches(),
            reverts: self.reverts(),
            notifications: self.notifications(),
            scaling: self.scaling(),
            drift: self.drift(),
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
        }
    }
    /// Reverting an applied change.
    pub fn reverts(&self) -> revert::Reverts<'_> {
        revert::Reverts {
            store: &self.store,
            settings: &self.settings,
            reads: &self.reads,
            specs: self.specs(),
            judge: self.judge(),
            plans: self.plans(),
            notifications: self.notifications(),
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
        }
    }
    /// The SLO watch after an apply.
    pub fn watches(&self) -> watch::Watches<'_> {
        watch::Watches {
            store: &self.store,
            settings: &self.settings,
            prometheus: self.prom(),
            specs: self.specs(),
            slo: self.slo(),
            reverts: self.reverts(),
            notifications: self.notifications(),
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
        }
    }
    /// Drift between the applied spec and AWS.
    pub fn drift(&self) -> drift::Drifts<'_> {
        drift::Drifts {
            store: &self.store,
            specs: self.specs(),
            plans: self.plans(),
            notifications: self.notifications(),
            jobs_waker: &self.jobs_waker,
            clock: self.clock(),
        }
    }
    /// Scaling history.
    pub fn scaling(&self) -> scaling::Scaling<'_> {
        scaling::Scaling {
            store: &self.store,
            settings: &self.settings,
            aws: &self.aws,
            specs: self.specs(),
            clock: self.clock(),
        }
    }
    /// SLO status and monitoring.
    pub fn slo(&self) -> slo::Slos<'_> {
        slo::Slos {
            store: &self.store,
            prometheus: self.prom(),
            cloudwatch: cloudwatch::CloudWatchReads {
                aws: &self.aws,
                caches: &self.cloudwatch,
                max_attempts: self.settings.aws.max_attempts,
            },
            specs: self.specs(),
            heads_read: &self.heads_read,
            clock: self.clock(),
        }
    }
    /// Costs of environments and changes.
    pub fn cost(&self) -> cost::Costs<'_> {
        cost::Costs {
            store: &self.store,
            settings: &self.settings,
            aws: &self.aws,
            cost_facts: &self.cost_facts,
            cost_results: &self.cost_results,
            specs: self.specs(),
            clock: self.clock(),
        }
    }
    /// The audit log.
    pub fn audit(&self) -> audit::AuditLog<'_> {
        audit::AuditLog {
            store: &self.store,
            chain_checked: &self.chain_checked,
            chain_read: &self.chain_read,
        }
    }
    /// The jobs queue, read.
    pub fn jobs(&self) -> jobs::Jobs<'_> {
        jobs::Jobs { store: &self.store }
    }
    /// Outgoing notifications.
    pub fn notifications(&self) -> notify::Notifications<'_> {
        notify::Notifications {
            store: &self.store,
            settings: &self.settings,
            clock: self.clock(),
        }
    }
}

/// The row of environment `env`, or "there is no environment" (404).
pub(crate) async fn known_environment(
    conn: &mut crate::store::Conn,
    env: &str,
) -> crate::error::ServiceResult<crate::store::repo::EnvironmentRow> {
    crate::store::repo::environment(conn, env)
        .await?
        .ok_or_else(|| {
            crate::error::ServiceError::NotFound(format!("there is no environment `{env}`"))
        })
}
