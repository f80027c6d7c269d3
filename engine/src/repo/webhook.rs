//! Checking push webhooks. A webhook only wakes the watcher; its body is never trusted.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a webhook was refused, for the 401 and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoSignature,
    BadSignature,
    BadToken,
}

impl Refusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::NoSignature => "no X-Hub-Signature-256 or X-Gitlab-Token header",
            Refusal::BadSignature => "the X-Hub-Signature-256 signature does not match",
            Refusal::BadToken => "the X-Gitlab-Token does not match",
        }
    }
}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex HMAC of the body>` or GitLab's
/// `X-Gitlab-Token: <secret>`, in constant time.
pub fn verify(
    secret: &str,
    github_signature: Option<&str>,
    gitlab_token: Option<&str>,
    body: &[u8],
) -> Result<&'static str, Refusal> {
    if let Some(sig) = github_signature {
        let Some(hex_sig) = sig.trim().strip_prefix("sha256=") else {
            return Err(Refusal::BadSignature);
        };
        let Ok(given) = hex::decode(hex_sig) else {
            return Err(Refusal::BadSignature);
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(body);
        // verify_slice compares in constant time.
        return mac
            .verify_slice(&given)
            .map(|()| "github")
            .map_err(|_| Refusal::BadSignature);
    }
    if let Some(token) = gitlab_token {
        // An empty secret matches nothing (the configuration refuses one too).
        return if !secret.is_empty() && bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
            Ok("gitlab")
        } else {
            Err(Refusal::BadToken)
        };
    }
    Err(Refusal::NoSignature)
}

/// `sha256=<hex>` for a body, as GitHub signs it (used by tests and tools).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signatures_and_gitlab_tokens_are_checked() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = github_signature("s3cret", body);
        assert_eq!(verify("s3cret", Some(&good), None, body), Ok("github"));
        assert_eq!(
            verify("other", Some(&good), None, body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some(&good), None, b"tampered"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some("sha1=abc"), None, body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", Some("sha256=zz"), None, body),
            Err(Refusal::BadSignature)
        );
        assert_eq!(verify("s3cret", None, Some("s3cret"), body), Ok("gitlab"));
        assert_eq!(
            verify("s3cret", None, Some("s3cre"), body),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            verify("s3cret", None, None, body),
            Err(Refusal::NoSignature)
        );
        // An empty secret never matches an empty token.
        assert_eq!(verify("", None, Some(""), body), Err(Refusal::BadToken));
    }
}
