//! Who is asking: principals, callers, password and token hashing.

pub mod limits;
pub mod password;
pub mod refusals;
pub mod token;

use domain::audit::ActorKind;
use domain::{Role, UserName};

use crate::error::ServiceError;

/// A signed-in user, by session or by API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: UserName,
    pub role: Role,
    pub email: Option<String>,
    /// The zone the user reads times in; `None`: each environment's.
    pub time_zone: Option<domain::spec::TimeZone>,
    /// Set when the request came with an API token rather than a session.
    pub token: Option<TokenRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub id: i64,
    pub label: String,
}

impl Principal {
    pub fn require(&self, required: Role) -> Result<(), ServiceError> {
        if self.role.allows(required) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                required,
                held: self.role,
            })
        }
    }

    pub fn me(&self) -> domain::user::Me {
        domain::user::Me {
            name: self.name.to_string(),
            role: self.role,
            email: self.email.clone(),
            time_zone: self.time_zone.map(|z| z.name().to_owned()),
        }
    }
}

/// Who a service call acts for: a principal, or tierdeck itself (its command line run on the
/// server, its background tasks), which may do anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(Principal),
    System,
}

impl Caller {
    pub fn require(&self, required: Role) -> Result<(), ServiceError> {
        match self {
            Caller::User(p) => p.require(required),
            Caller::System => Ok(()),
        }
    }

    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::User(p) => Some(p),
            Caller::System => None,
        }
    }

    /// The audit log's actor for this caller.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::User(p) => Actor::of(p),
            Caller::System => Actor::system(),
        }
    }
}

/// The actor columns of an audit event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
    pub token: Option<String>,
}

impl Actor {
    pub fn of(p: &Principal) -> Self {
        match &p.token {
            Some(t) => Actor {
                kind: ActorKind::Token,
                name: p.name.to_string(),
                token: Some(t.label.clone()),
            },
            None => Actor::user(p.name.as_str()),
        }
    }

    pub fn user(name: &str) -> Self {
        Actor {
            kind: ActorKind::User,
            name: name.to_owned(),
            token: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            name: "system".to_owned(),
            token: None,
        }
    }
}

/// What the HTTP edge knows about a request that the audit log records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestMeta {
    pub client_addr: Option<String>,
}

impl RequestMeta {
    pub fn from_addr(addr: impl ToString) -> Self {
        Self {
            client_addr: Some(addr.to_string()),
        }
    }
}

/// What the HTTP edge resolved for a request: put in its extensions for handlers and server
/// functions to read.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    pub principal: Option<Principal>,
    pub meta: RequestMeta,
}

impl RequestAuth {
    /// The caller for a service call, or `Unauthenticated`.
    pub fn caller(&self) -> Result<Caller, ServiceError> {
        self.principal
            .clone()
            .map(Caller::User)
            .ok_or_else(|| ServiceError::Unauthenticated("sign in first".into()))
    }
}
