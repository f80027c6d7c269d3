//! Notifications: outgoing webhooks (a Slack-compatible `{"text": …}` body, and a generic JSON
//! body) for the workflow's events. Each is queued in the transaction of the event it reports,
//! with a job that delivers it (retried with growing pauses), so a failing receiver never holds
//! up approvals or applies and a notification asked for is never lost.

use std::time::Duration;

use crate::store::Conn;
use domain::job::{JobKind, Outcome};
use domain::notify::Delivery;
use domain::Role;
use serde_json::json;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::error::ServiceResult;
use crate::jobs::{self, worker::retry_of, Job};
use crate::settings::EngineSettings;
use crate::store::notifications::{self, NewNotification};
use crate::store::Store;
use crate::store::{format_time, time_column, time_column_opt};

fn text_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Outgoing notifications.
#[derive(Clone, Copy)]
pub struct Notifications<'a> {
    pub(crate) store: &'a Store,
    pub(crate) settings: &'a EngineSettings,
    pub(crate) clock: &'a dyn Clock,
}

impl Notifications<'_> {
    /// A link to a change for a message, when the panel's public URL is known.
    pub(crate) fn change_link(&self, id: domain::change::ChangeId) -> String {
        match &self.settings.public_url {
            Some(u) => format!(" {}/changes/{id}", u.trim_end_matches('/')),
            None => String::new(),
        }
    }

    /// Queues `event` for every configured receiver, in the caller's transaction: a row of the
    /// delivery log and a job that delivers it. A change that edits the rules it is judged by
    /// is labelled here, once for every notification: the text starts "POLICY CHANGE: " and the
    /// generic webhook's body says `policy_change`. The caller wakes the worker once its
    /// transaction commits.
    pub(crate) async fn queue_notification(
        &self,
        conn: &mut Conn,
        event: &str,
        environment: Option<&str>,
        change: Option<&crate::store::changes::Change>,
        text: &str,
    ) -> Result<(), sqlx::Error> {
        let now = self.clock.now();
        let at = format_time(now);
        let change_id = change.map(|c| c.id.0);
        let policy_change = change.is_some_and(|c| !c.policy_edits.is_empty());
        let n = &self.settings.notify;
        let text = if policy_change {
            format!("tierdeck: POLICY CHANGE: {text}")
        } else {
            format!("tierdeck: {text}")
        };
        let receivers = [
            ("slack", n.slack_url.as_ref(), json!({ "text": text })),
            (
                "webhook",
                n.webhook_url.as_ref(),
                json!({
                    "event": event,
                    "environment": environment,
                    "change": change_id,
                    "policy_change": policy_change,
                    "text": text,
                    "at": at,
                }),
            ),
        ];
        for (receiver, url, body) in receivers {
            if url.is_none() {
                continue;
            }
            let id = notifications::insert(
                conn,
                NewNotification {
                    event,
                    environment,
                    change_id,
                    receiver,
                    body: &body.to_string(),
                },
                &at,
            )
            .await?;
            let job = Job::Notify {
                notification: id,
                environment: environment.map(str::to_owned),
                change: change.map(|c| c.id),
            };
            let retry = retry_of(self.settings, JobKind::Notify);
            jobs::enqueue(conn, &job, retry.attempts, "system", now).await?;
        }
        Ok(())
    }

    /// Delivers notification `id` (a job's try `attempt`), and records the try in the
    /// delivery log; the job's retry policy spaces the tries.
    pub(crate) async fn deliver_job(&self, id: i64, attempt: u32) -> Outcome {
        let row = async {
            let mut conn = self.store.pool().acquire().await?;
            notifications::get(&mut conn, id).await
        }
        .await;
        let row = match row {
            Ok(Some(row)) if row.status == "pending" => row,
            // Delivered or given up already (a try whose end was not recorded).
            Ok(Some(_)) => return Outcome::Done,
            Ok(None) => return Outcome::Final(format!("there is no notification {id}")),
            Err(e) => return Outcome::Retry(format!("reading notification {id}: {e}")),
        };
        let n = &self.settings.notify;
        let url = match row.receiver.as_str() {
            "slack" => n.slack_url.as_ref(),
            _ => n.webhook_url.as_ref(),
        };
        let sent = match url {
            None => Err("the receiver is no longer configured".to_owned()),
            Some(url) => match self.http_client() {
                Err(e) => Err(e),
                Ok(http) => http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(row.body.clone())
                    .send()
                    .await
                    .map_err(|e| format!("sending failed: {}", e.without_url()))
                    .and_then(|r| {
                        if r.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("the receiver answered {}", r.status()))
                        }
                    }),
            },
        };
        let retry = retry_of(self.settings, JobKind::Notify);
        let now = self.clock.now();
        let (status, error, next, outcome) = match sent {
            Ok(()) => ("delivered", None, now, Outcome::Done),
            Err(e) => match retry.after(attempt).filter(|_| url.is_some()) {
                Some(pause) => (
                    "pending",
                    Some(e.clone()),
                    now + chrono::Duration::from_std(pause).unwrap_or_default(),
                    Outcome::Retry(e),
                ),
                None => ("failed", Some(e.clone()), now, Outcome::Final(e)),
            },
        };
        if let Some(e) = &error {
            tracing::warn!(notification = id, attempt, error = %e, "a notification was not delivered");
        }
        let recorded = async {
            let mut conn = self.store.pool().acquire().await?;
            notifications::attempted(
                &mut conn,
                id,
                status,
                error.as_deref(),
                &format_time(next),
                &format_time(now),
            )
            .await
        }
        .await;
        match recorded {
            Ok(()) => outcome,
            Err(e) => Outcome::Retry(format!("recording the delivery of notification {id}: {e}")),
        }
    }

    /// The client notifications are sent with, made once.
    fn http_client(&self) -> Result<reqwest::Client, String> {
        static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> =
            std::sync::OnceLock::new();
        CLIENT
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("no HTTP client: {e}"))
            })
            .clone()
    }

    /// The delivery log, newest first (admins).
    pub async fn notification_log(&self, caller: &Caller) -> ServiceResult<Vec<Delivery>> {
        caller.require(Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(notifications::recent(&mut conn, 200)
            .await?
            .into_iter()
            .map(|r| {
                Ok(Delivery {
                    text: text_of(&r.body),
                    id: r.id,
                    event: r.event,
                    environment: r.environment,
                    change_id: r.change_id,
                    receiver: r.receiver,
                    status: r.status,
                    attempts: r.attempts,
                    last_error: r.last_error,
                    next_attempt_at: time_column("next_attempt_at", &r.next_attempt_at)?,
                    created_at: time_column("created_at", &r.created_at)?,
                    delivered_at: time_column_opt("delivered_at", r.delivered_at.as_deref())?,
                })
            })
            .collect::<sqlx::Result<_>>()?)
    }
}
