//! Validated user input: a value of these types is known to be well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("user name must be 1 to 64 characters of a-z, 0-9, `.`, `_` or `-`, starting with a letter or digit")]
    UserName,
    #[error("e-mail address must look like name@example.com")]
    Email,
    #[error("password must be at least {min} characters long", min = Password::MIN_LEN)]
    PasswordTooShort,
    #[error("password must be at most {max} characters long", max = Password::MAX_LEN)]
    PasswordTooLong,
}

/// A login name: lower-case ASCII letters, digits, `.`, `_`, `-`; 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInput::UserName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserName> for String {
    fn from(n: UserName) -> String {
        n.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, compared case-insensitively (stored lower-case). Used to match commit
/// authors to users, so only the shape is checked, not deliverability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        let ok = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if ok {
            Ok(Self(s.to_lowercase()))
        } else {
            Err(InvalidInput::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the length policy. It never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 1024;

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let n = s.chars().count();
        if n < Self::MIN_LEN {
            Err(InvalidInput::PasswordTooShort)
        } else if n > Self::MAX_LEN {
            Err(InvalidInput::PasswordTooLong)
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_documented_shape() {
        for good in ["alice", "a", "ops.bot", "jin-ho_2", "9lives"] {
            assert!(UserName::parse(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(65);
        for bad in [
            "",
            "Alice",
            "-x",
            ".x",
            "a b",
            "a/b",
            "<script>",
            too_long.as_str(),
        ] {
            assert_eq!(UserName::parse(bad), Err(InvalidInput::UserName), "{bad}");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse(" Seo@Example.COM ").unwrap().as_str(),
            "seo@example.com"
        );
        for bad in ["", "x", "@a.b", "a@", "a@@b", "a b@c.d", "a@.b", "a@b."] {
            assert_eq!(Email::parse(bad), Err(InvalidInput::Email), "{bad}");
        }
    }

    #[test]
    fn passwords_have_a_length_policy_and_hide_in_debug_output() {
        assert_eq!(
            Password::parse("short"),
            Err(InvalidInput::PasswordTooShort)
        );
        assert_eq!(
            Password::parse(&"x".repeat(1025)),
            Err(InvalidInput::PasswordTooLong)
        );
        let p = Password::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "Password(****)");
    }
}

/// A user as shown to admins and in listings; never carries a password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub email: Option<String>,
    pub role: crate::Role,
    pub disabled: bool,
    #[serde(with = "crate::time::stored")]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An API token as listed to its owner or an admin; the secret itself is shown only once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub id: i64,
    pub owner: String,
    pub label: String,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    #[serde(with = "crate::time::stored")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "crate::time::stored::option", default)]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_addr: Option<String>,
    #[serde(with = "crate::time::stored::option", default)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Who is signed in, as the pages see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: crate::Role,
    pub email: Option<String>,
    /// The zone the user chose to read times in (an IANA name); `None`: each environment's.
    #[serde(default)]
    pub time_zone: Option<String>,
}
