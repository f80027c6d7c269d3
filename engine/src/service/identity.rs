//! Turning a session or a bearer token into a principal, on every request: a disabled user, a
//! reset password or a revoked token takes effect at once.

use domain::UserName;
use serde::{Deserialize, Serialize};

use crate::auth::{token, Principal, RequestMeta, TokenRef};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::memo::ByCommits;
use crate::store::users::UserRow;
use crate::store::Store;
use crate::store::{tokens, users};

/// What a session stores about its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: i64,
    /// The user's `auth_epoch` at sign-in; a later reset or disable moves it on.
    pub epoch: i64,
    /// When the person signed in (Unix seconds): a session ends a fixed time after, however
    /// busy. Sessions from before this was kept read as 0, so they are over.
    #[serde(default)]
    pub signed_in_at: i64,
}

fn principal(row: users::UserRow, token: Option<TokenRef>) -> ServiceResult<Principal> {
    Ok(Principal {
        user_id: row.id,
        name: UserName::parse(&row.name)
            .map_err(|e| anyhow::anyhow!("stored user name {:?}: {e}", row.name))?,
        role: row
            .role
            .parse()
            .map_err(|e| anyhow::anyhow!("user {}: {e}", row.name))?,
        email: row.email,
        // A zone this build does not know (stored by a newer one) reads as none set.
        time_zone: row.time_zone.as_deref().and_then(|z| z.parse().ok()),
        token,
    })
}

/// Who a session or a token is.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    pub(crate) store: &'a Store,
    pub(crate) users_read: &'a ByCommits<i64, Option<UserRow>>,
    pub(crate) clock: &'a dyn Clock,
}

impl Identity<'_> {
    /// The principal of a session, or `None` when the session is no longer good.
    pub async fn session_principal(&self, auth: SessionAuth) -> ServiceResult<Option<Principal>> {
        let row = self
            .users_read
            .get_or_read(self.store, auth.user_id, || async {
                let mut conn = self.store.pool().acquire().await?;
                users::by_id(&mut conn, auth.user_id).await
            })
            .await?;
        match row {
            Some(row) if row.disabled_at.is_none() && row.auth_epoch == auth.epoch => {
                principal(row, None).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The principal of an `Authorization: Bearer` token; records its last use.
    pub async fn token_principal(
        &self,
        secret: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<Principal> {
        let invalid =
            || ServiceError::Unauthenticated("the API token is not valid or was revoked".into());
        if !token::looks_valid(secret) {
            return Err(invalid());
        }
        let mut conn = self.store.pool().acquire().await?;
        let row = tokens::active_by_hash(&mut conn, &token::digest(secret))
            .await?
            .ok_or_else(invalid)?;
        let user = users::by_id(&mut conn, row.user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(invalid)?;
        // Last use is kept to the minute: a script calling every second must not turn every
        // read into a write (writes queue behind each other in SQLite).
        let now = self.clock.now_text();
        let fresh = row
            .last_used_at
            .as_deref()
            .is_some_and(|t| t.get(..16) == now.get(..16))
            && row.last_used_addr.as_deref() == meta.client_addr.as_deref();
        if !fresh {
            tokens::touch(&mut conn, row.id, &now, meta.client_addr.as_deref()).await?;
        }
        principal(
            user,
            Some(TokenRef {
                id: row.id,
                label: row.label,
            }),
        )
    }
}
