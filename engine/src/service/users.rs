//! Creating and managing users.

use domain::user::UserSummary;
use domain::{Email, Password, Role, UserName};
use serde_json::json;

use crate::auth::{password, Caller, RequestMeta};
use crate::clock::Clock;
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::{append, NewEvent};
use crate::store::Store;
use crate::store::{tokens, users};

/// A new user, as typed in a form or on the command line.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    pub email: Option<String>,
    pub password: String,
}

fn parse_role(s: &str) -> ServiceResult<Role> {
    s.trim()
        .parse()
        .map_err(|e: domain::role::UnknownRole| ServiceError::invalid("role", e))
}

fn parse_name(s: &str) -> ServiceResult<UserName> {
    UserName::parse(s.trim()).map_err(|e| ServiceError::invalid("name", e))
}

fn summary(row: users::UserRow) -> ServiceResult<UserSummary> {
    Ok(UserSummary {
        role: row
            .role
            .parse()
            .map_err(|e| anyhow::anyhow!("user {} has a bad stored role: {e}", row.name))?,
        name: row.name,
        email: row.email,
        disabled: row.disabled_at.is_some(),
        created_at: crate::store::time_column("created_at", &row.created_at)?,
    })
}

async fn find(conn: &mut crate::store::Conn, name: &UserName) -> ServiceResult<users::UserRow> {
    users::by_name(conn, name.as_str())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("there is no user named `{name}`")))
}

/// An address is one person's: it tells whose commits are whose.
async fn email_free(conn: &mut crate::store::Conn, email: &Email) -> ServiceResult<()> {
    if users::email_taken(conn, email.as_str()).await? {
        return Err(ServiceError::Conflict(format!(
            "another user already has the e-mail address {email}"
        )));
    }
    Ok(())
}

/// People and their roles.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
}

impl Users<'_> {
    pub async fn create_user(
        &self,
        caller: &Caller,
        new: NewUser,
        meta: &RequestMeta,
    ) -> ServiceResult<UserSummary> {
        caller.require(Role::Admin)?;
        let name = parse_name(&new.name)?;
        let role = parse_role(&new.role)?;
        let email = match new
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            Some(e) => Some(Email::parse(e).map_err(|err| ServiceError::invalid("email", err))?),
            None => None,
        };
        let pw =
            Password::parse(&new.password).map_err(|e| ServiceError::invalid("password", e))?;
        let hash = password::hash(&pw).await?;

        let mut tx = self.store.begin_write().await?;
        if users::by_name(&mut tx, name.as_str()).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "a user named `{name}` already exists"
            )));
        }
        if let Some(e) = &email {
            email_free(&mut tx, e).await?;
        }
        let now = self.clock.now_text();
        let id = users::insert(
            &mut tx,
            name.as_str(),
            email.as_ref().map(Email::as_str),
            role.as_str(),
            &hash,
            &now,
        )
        .await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.created",
                environment: None,
                target: Some(name.as_str()),
                detail: json!({ "role": role, "email": email.as_ref().map(Email::as_str) }),
                meta,
            },
        )
        .await?;
        let row = users::by_id(&mut tx, id).await?.expect("just inserted");
        tx.commit().await?;
        summary(row)
    }

    pub async fn list_users(&self, caller: &Caller) -> ServiceResult<Vec<UserSummary>> {
        caller.require(Role::Admin)?;
        let mut conn = self.store.pool().acquire().await?;
        users::list(&mut conn)
            .await?
            .into_iter()
            .map(summary)
            .collect()
    }

    pub async fn set_role(
        &self,
        caller: &Caller,
        name: &str,
        role: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<UserSummary> {
        caller.require(Role::Admin)?;
        let name = parse_name(name)?;
        let role = parse_role(role)?;
        let mut tx = self.store.begin_write().await?;
        let row = find(&mut tx, &name).await?;
        if row.role == role.as_str() {
            return summary(row);
        }
        if row.role == "admin"
            && row.disabled_at.is_none()
            && users::other_active_admins(&mut tx, row.id).await? == 0
        {
            return Err(ServiceError::Conflict(format!(
                "`{name}` is the last enabled admin; make another admin first"
            )));
        }
        users::set_role(&mut tx, row.id, role.as_str(), &self.clock.now_text()).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.role_changed",
                environment: None,
                target: Some(name.as_str()),
                detail: json!({ "from": row.role, "to": role }),
                meta,
            },
        )
        .await?;
        let row = users::by_id(&mut tx, row.id).await?.expect("exists");
        tx.commit().await?;
        summary(row)
    }

    /// Sets or changes a user's e-mail address: the one their commits carry, by which
    /// tierdeck tells whether they wrote a change (an approver without one cannot approve).
    pub async fn set_email(
        &self,
        caller: &Caller,
        name: &str,
        email: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<UserSummary> {
        caller.require(Role::Admin)?;
        let name = parse_name(name)?;
        let email =
            Email::parse(email.trim()).map_err(|err| ServiceError::invalid("email", err))?;
        let mut tx = self.store.begin_write().await?;
        let row = find(&mut tx, &name).await?;
        if row.email.as_deref() == Some(email.as_str()) {
            return summary(row);
        }
        email_free(&mut tx, &email).await?;
        users::set_email(&mut tx, row.id, email.as_str(), &self.clock.now_text()).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.email_changed",
                environment: None,
                target: Some(name.as_str()),
                detail: json!({ "from": row.email, "to": email.as_str() }),
                meta,
            },
        )
        .await?;
        let row = users::by_id(&mut tx, row.id).await?.expect("exists");
        tx.commit().await?;
        summary(row)
    }

    /// Disables a user: their sessions end and their API tokens are revoked at once. Enabling
    /// again restores sign-in with the same password, not the revoked tokens.
    pub async fn set_disabled(
        &self,
        caller: &Caller,
        name: &str,
        disabled: bool,
        meta: &RequestMeta,
    ) -> ServiceResult<UserSummary> {
        caller.require(Role::Admin)?;
        let name = parse_name(name)?;
        let mut tx = self.store.begin_write().await?;
        let row = find(&mut tx, &name).await?;
        if row.disabled_at.is_some() == disabled {
            return summary(row);
        }
        if disabled && caller.principal().is_some_and(|p| p.user_id == row.id) {
            return Err(ServiceError::Conflict("you cannot disable yourself".into()));
        }
        if disabled
            && row.role == "admin"
            && users::other_active_admins(&mut tx, row.id).await? == 0
        {
            return Err(ServiceError::Conflict(format!(
                "`{name}` is the last enabled admin; make another admin first"
            )));
        }
        let now = self.clock.now_text();
        users::set_disabled(&mut tx, row.id, disabled, &now).await?;
        let (action, detail) = if disabled {
            let revoked = tokens::revoke_all_for_user(&mut tx, row.id, &now).await?;
            ("user.disabled", json!({ "tokens_revoked": revoked }))
        } else {
            ("user.enabled", json!({}))
        };
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action,
                environment: None,
                target: Some(name.as_str()),
                detail,
                meta,
            },
        )
        .await?;
        let row = users::by_id(&mut tx, row.id).await?.expect("exists");
        tx.commit().await?;
        summary(row)
    }

    /// An admin sets a new password for someone; their sessions end and their API tokens are
    /// revoked.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        name: &str,
        new_password: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<()> {
        caller.require(Role::Admin)?;
        let name = parse_name(name)?;
        let pw = Password::parse(new_password).map_err(|e| ServiceError::invalid("password", e))?;
        let hash = password::hash(&pw).await?;
        let mut tx = self.store.begin_write().await?;
        let row = find(&mut tx, &name).await?;
        let now = self.clock.now_text();
        users::set_password(&mut tx, row.id, &hash, &now).await?;
        // A reset means the account may be someone else's: its tokens end with its sessions.
        let revoked = tokens::revoke_all_for_user(&mut tx, row.id, &now).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.password_reset",
                environment: None,
                target: Some(name.as_str()),
                detail: json!({ "tokens_revoked": revoked }),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user changes their own password, proving the current one. Every other session of
    /// theirs ends; the returned epoch keeps the current session valid.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        current: &str,
        new_password: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<i64> {
        let Some(me) = caller.principal() else {
            return Err(ServiceError::Unauthenticated("sign in first".into()));
        };
        let pw =
            Password::parse(new_password).map_err(|e| ServiceError::invalid("new_password", e))?;
        let stored = {
            let mut conn = self.store.pool().acquire().await?;
            users::by_id(&mut conn, me.user_id).await?
        }
        .ok_or_else(|| ServiceError::Unauthenticated("your account no longer exists".into()))?;
        if !password::verify(current, Some(stored.password_hash)).await? {
            return Err(ServiceError::invalid(
                "current_password",
                "the current password is wrong",
            ));
        }
        let hash = password::hash(&pw).await?;
        let mut tx = self.store.begin_write().await?;
        let epoch = users::set_password(&mut tx, me.user_id, &hash, &self.clock.now_text()).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.password_changed",
                environment: None,
                target: Some(me.name.as_str()),
                detail: json!({}),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(epoch)
    }

    /// A user sets the zone they read times in (an IANA name such as `Asia/Seoul`; empty: each
    /// environment's own zone). Returns the zone now set.
    pub async fn set_own_time_zone(
        &self,
        caller: &Caller,
        zone: &str,
        meta: &RequestMeta,
    ) -> ServiceResult<Option<String>> {
        let Some(me) = caller.principal() else {
            return Err(ServiceError::Unauthenticated("sign in first".into()));
        };
        let zone = zone.trim();
        let zone: Option<domain::spec::TimeZone> = if zone.is_empty() {
            None
        } else {
            Some(
                zone.parse()
                    .map_err(|e: String| ServiceError::invalid("time_zone", e))?,
            )
        };
        let name = zone.map(|z| z.name());
        let mut tx = self.store.begin_write().await?;
        users::set_time_zone(&mut tx, me.user_id, name, &self.clock.now_text()).await?;
        append(
            &mut tx,
            NewEvent {
                actor: caller.actor(),
                action: "user.time_zone_set",
                environment: None,
                target: Some(me.name.as_str()),
                detail: json!({ "time_zone": name }),
                meta,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(name.map(str::to_owned))
    }
}
