//! API tokens: created for oneself (or by an admin for anyone), shown once, revocable.

use domain::user::TokenSummary;
use domain::{Role, UserName};
use serde_json::json;

use crate::auth::{token, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::{append, NewEvent};
use crate::store::Store;
use crate::store::{time_column, time_column_opt, tokens, users};

const MAX_LABEL: usize = 64;

fn summary(row: tokens::TokenRow) -> sqlx::Result<TokenSummary> {
    Ok(TokenSummary {
        created_at: time_column("created_at", &row.created_at)?,
        last_used_at: time_column_opt("last_used_at", row.last_used_at.as_deref())?,
        revoked_at: time_column_opt("revoked_at", row.revoked_at.as_deref())?,
        id: row.id,
        owner: row.owner,
        label: row.label,
        prefix: row.prefix,
        last_used_addr: row.last_used_addr,
    })
}

/// Only the owner or an admin may see or change a user's tokens.
fn may_manage(caller: &Caller, owner_id: i64) -> ServiceResult<()> {
    match caller.principal() {
        Some(p) if p.user_id != owner_id => p.require(Role::Admin),
        _ => Ok(()),
    }
}

/// A newly created token: the secret is in here and nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub summary: TokenSummary,
    pub secret: String,
}

/// API tokens.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
}

impl Tokens<'_> {
    pub async fn create_token(
        &self,
        caller: &Caller,
        owner: &str,
        label: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<CreatedToken> {
        let owner = UserName::parse(owner.trim()).map_err(|e| ServiceError::invalid("user", e))?;
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_LABEL
            || label.chars().any(char::is_control)
        {
            return Err(ServiceError::invalid(
                "label",
                format!("a label is 1 to {MAX_LABEL} printable characters"),
            ));
        }
        let mut tx = self.store.begin_write().await?;
        let user = users::by_name(&mut tx, owner.as_str())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no user named `{owner}`")))?;
        may_manage(caller, user.id)?;
        if user.disabled_at.is_some() {
            return Err(ServiceError::Conflict(format!("`{owner}` is disabled")));
        }
        if tokens::active_label_exists(&mut tx, user.id, label).await? {
            return Err(ServiceError::Conflict(format!(
                "`{owner}` already has an active token labelled `{label}`"
            )));
        }
        let secret = token::generate();
        let id = tokens::insert(
            &mut tx,
            user.id,
            label,
            &token::display_prefix(&secret),
            &token::digest(&secret),
            &self.clock.now_text(),
        )
        .await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "token.created",
                environment: None,
                target: Some(owner.as_str()),
                detail: json!({ "token_id": id, "label": label }),
                meta,
            },
        )
        .await?;
        let row = tokens::by_id(&mut tx, id).await?.expect("just inserted");
        tx.commit().await?;
        Ok(CreatedToken {
            summary: summary(row)?,
            secret,
        })
    }

    pub async fn revoke_token(
        &self,
        caller: &Caller,
        id: i64,
        meta: &RequestMeta,
    ) -> ServiceResult<()> {
        let mut tx = self.store.begin_write().await?;
        let row = tokens::by_id(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no token {id}")))?;
        may_manage(caller, row.user_id)?;
        if row.revoked_at.is_some() {
            return Ok(());
        }
        tokens::revoke(&mut tx, id, &self.clock.now_text()).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "token.revoked",
                environment: None,
                target: Some(&row.owner),
                detail: json!({ "token_id": id, "label": row.label }),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_tokens(
        &self,
        caller: &Caller,
        owner: &str,
    ) -> ServiceResult<Vec<TokenSummary>> {
        let mut conn = self.store.pool().acquire().await?;
        let user = users::by_name(&mut conn, owner)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no user named `{owner}`")))?;
        may_manage(caller, user.id)?;
        Ok(tokens::list_for_user(&mut conn, user.id)
            .await?
            .into_iter()
            .map(summary)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Every live token of every user (admins): who may call the API now.
    pub async fn list_all_tokens(&self, caller: &Caller) -> ServiceResult<Vec<TokenSummary>> {
        caller.require(Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(tokens::active(&mut conn, 1000)
            .await?
            .into_iter()
            .map(summary)
            .collect::<sqlx::Result<_>>()?)
    }
}
