//! API tokens: `tdk_` and 64 hex digits (256 random bits). Only a SHA-256 of the token is
//! stored; with that much entropy a slow hash adds nothing.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "tdk_";

/// A new token's secret text, shown to its owner once.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The part shown in listings.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(PREFIX.len() + 8).collect()
}

/// Whether a string has the shape of a token, before any database look-up.
pub fn looks_valid(secret: &str) -> bool {
    secret
        .strip_prefix(PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_and_well_formed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_valid(&a), "{a}");
        assert_eq!(display_prefix(&a).len(), 12);
        assert_eq!(digest(&a).len(), 64);
        assert!(!looks_valid("tdk_xyz"));
        assert!(!looks_valid(&a.replace(PREFIX, "tok_")));
    }
}
