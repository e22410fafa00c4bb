//! Bearer-token authentication of API requests.
//!
//! The token is read once from `control.token_file` (surrounding whitespace trimmed). A
//! request carries it as `Authorization: Bearer <token>`. Both sides are hashed with SHA-256
//! and the hashes compared in constant time (`subtle`), so neither the token's content nor its
//! length shows in response times.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Tokens shorter than this are refused at start (easy to guess).
pub const MIN_TOKEN_BYTES: usize = 16;

/// The expected token, kept as its hash.
#[derive(Clone)]
pub struct Token {
    hash: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token from its text (trimmed); an error names what is wrong, never the token.
    pub fn new(text: &str) -> Result<Token, String> {
        let t = text.trim();
        if t.len() < MIN_TOKEN_BYTES {
            return Err(format!("the token must be at least {MIN_TOKEN_BYTES} bytes long"));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Token { hash: Sha256::digest(t.as_bytes()).into() })
    }

    /// The token in `path`.
    pub fn from_file(path: &Path) -> Result<Token, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Token::new(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else { return false };
        let Some(given) = strip_bearer(value) else { return false };
        let hash: [u8; 32] = Sha256::digest(given).into();
        bool::from(hash.ct_eq(&self.hash))
    }
}

/// The credentials of `Bearer <credentials>` (the scheme is case-insensitive).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_token() {
        let t = Token::new(" s3cret-token-0123456789\n").unwrap();
        assert!(t.accepts(Some(b"Bearer s3cret-token-0123456789")));
        assert!(t.accepts(Some(b"bearer s3cret-token-0123456789")));
        assert!(!t.accepts(Some(b"Bearer s3cret-token-012345678")));
        assert!(!t.accepts(Some(b"Bearer s3cret-token-01234567890")));
        assert!(!t.accepts(Some(b"Basic s3cret-token-0123456789")));
        assert!(!t.accepts(Some(b"Bearer")));
        assert!(!t.accepts(Some(b"")));
        assert!(!t.accepts(None));
        assert!(Token::new("short").is_err());
        assert!(Token::new("has a space in it, too long").is_err());
        assert_eq!(format!("{t:?}"), "Token(..)");
    }
}
