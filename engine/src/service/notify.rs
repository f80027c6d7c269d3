//! Notifications: outgoing webhooks (a Slack-compatible `{"text": …}` body, and a generic JSON
//! body) for the workflow's events. Each is queued in the transaction of the event it reports
//! and delivered by a background worker with retries and backoff, so a failing receiver never
//! holds up approvals or applies.

use std::time::Duration;

use domain::notify::Delivery;
use domain::Role;
use serde_json::json;
use sqlx::SqliteConnection;

use crate::auth::Caller;
use crate::error::ServiceResult;
use crate::store::notifications::{self, NewNotification};
use crate::store::{format_time, now_text};

fn text_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

crate::service::handle!(
    /// Outgoing notifications.
    Notifications
);

impl Notifications<'_> {
    /// A link to a change for a message, when the panel's public URL is known.
    pub(crate) fn change_link(&self, id: domain::change::ChangeId) -> String {
        match &self.settings.public_url {
            Some(u) => format!(" {}/changes/{id}", u.trim_end_matches('/')),
            None => String::new(),
        }
    }

    /// Queues `event` for every configured receiver, in the caller's transaction. A change that
    /// edits the rules it is judged by is labelled here, once for every notification: the text
    /// starts "POLICY CHANGE: " and the generic webhook's body says `policy_change`.
    pub(crate) async fn queue_notification(
        &self,
        conn: &mut SqliteConnection,
        event: &str,
        environment: Option<&str>,
        change: Option<&crate::store::changes::Change>,
        text: &str,
    ) -> Result<(), sqlx::Error> {
        let now = now_text();
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
                    "at": now,
                }),
            ),
        ];
        for (receiver, url, body) in receivers {
            if url.is_none() {
                continue;
            }
            notifications::insert(
                conn,
                NewNotification {
                    event,
                    environment,
                    change_id,
                    receiver,
                    body: &body.to_string(),
                },
                &now,
            )
            .await?;
        }
        Ok(())
    }

    /// Tells the worker there is something to send (call after the transaction commits).
    pub fn wake_notifier(&self) {
        self.notify_wake.notify_one();
    }

    /// Delivers due notifications, for ever.
    pub async fn notification_worker(self) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "notifications are off: no HTTP client");
                return;
            }
        };
        loop {
            match self.deliver_due(&http).await {
                Ok(0) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.notify_wake.notified())
                            .await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "delivering notifications failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn deliver_due(&self, http: &reqwest::Client) -> ServiceResult<usize> {
        let due = {
            let mut conn = self.store.pool().acquire().await?;
            notifications::due(&mut conn, &now_text(), 20).await?
        };
        let n = &self.settings.notify;
        for row in &due {
            let url = match row.receiver.as_str() {
                "slack" => n.slack_url.as_ref(),
                _ => n.webhook_url.as_ref(),
            };
            let outcome = match url {
                None => Err("the receiver is no longer configured".to_owned()),
                Some(url) => http
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
            };
            let attempts = row.attempts as u32 + 1;
            let now = chrono::Utc::now();
            let (status, error, next) = match outcome {
                Ok(()) => ("delivered", None, now),
                Err(e) if attempts >= n.max_attempts || url.is_none() => ("failed", Some(e), now),
                Err(e) => {
                    let wait = n.first_retry * 2u32.saturating_pow(attempts - 1).min(64);
                    let wait = chrono::Duration::from_std(wait).unwrap_or_default();
                    ("pending", Some(e), now + wait)
                }
            };
            if let Some(e) = &error {
                tracing::warn!(notification = row.id, attempts, error = %e, "a notification was not delivered");
            }
            let mut conn = self.store.pool().acquire().await?;
            notifications::attempted(
                &mut conn,
                row.id,
                status,
                error.as_deref(),
                &format_time(next),
                &format_time(now),
            )
            .await?;
        }
        Ok(due.len())
    }

    /// The delivery log, newest first (admins).
    pub async fn notification_log(&self, caller: &Caller) -> ServiceResult<Vec<Delivery>> {
        caller.require(Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(notifications::recent(&mut conn, 200)
            .await?
            .into_iter()
            .map(|r| Delivery {
                text: text_of(&r.body),
                id: r.id,
                event: r.event,
                environment: r.environment,
                change_id: r.change_id,
                receiver: r.receiver,
                status: r.status,
                attempts: r.attempts,
                last_error: r.last_error,
                next_attempt_at: r.next_attempt_at,
                created_at: r.created_at,
                delivered_at: r.delivered_at,
            })
            .collect())
    }
}
