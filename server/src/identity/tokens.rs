//! Personal access tokens: how the batch client (`skjold batch …`) signs in. A user makes one
//! in the app and sees it once; the database keeps only its SHA-256. A token acts for its user
//! with exactly the grants and gate of a browser session, and expires.

use super::store::AccessToken;
use super::{AuthError, Identity, User, sha256_hex};

/// What every token starts with, so a token pasted into a log or a repository can be found.
pub const TOKEN_PREFIX: &str = "skj_";
/// The longest a token may live.
pub const MAX_TOKEN_DAYS: u32 = 365;
/// Tokens one user may hold at once.
const MAX_TOKENS_PER_USER: usize = 20;

impl Identity {
    /// Makes a token for `user`; the secret is in the answer and nowhere else.
    pub fn create_token(
        &self,
        user: &User,
        name: &str,
        days: u32,
    ) -> Result<(String, AccessToken), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(AuthError::Invalid(
                "name the token (1 to 64 characters), e.g. the machine it is for".into(),
            ));
        }
        if !(1..=MAX_TOKEN_DAYS).contains(&days) {
            return Err(AuthError::Invalid(format!(
                "a token lives 1 to {MAX_TOKEN_DAYS} days, not {days}"
            )));
        }
        if self.store.tokens_of(user.id)?.len() >= MAX_TOKENS_PER_USER {
            return Err(AuthError::NotAllowed(format!(
                "you hold {MAX_TOKENS_PER_USER} tokens already: revoke one you no longer use"
            )));
        }
        let secret: String =
            rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("{TOKEN_PREFIX}{secret}");
        let now = self.now();
        let mut record = AccessToken {
            id: 0,
            user: user.id,
            name: name.to_owned(),
            created_at: now,
            expires_at: now + i64::from(days) * 86_400,
            last_used_at: None,
        };
        record.id = self.store.insert_token(&record, &sha256_hex(&token))?;
        self.event("token-created", Some(&user.name), None, format!("'{name}', {days} days"));
        Ok((token, record))
    }

    /// The user a token acts for: unknown, revoked and expired tokens are no session, and the
    /// user must have accepted the terms in force, as in the browser.
    pub fn token_user(&self, token: &str) -> Result<User, AuthError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(AuthError::NoSession);
        }
        let record =
            self.store.use_token(&sha256_hex(token), self.now())?.ok_or(AuthError::NoSession)?;
        let user = self.store.user(record.user)?.ok_or(AuthError::NoSession)?;
        let needs_terms =
            self.store.accepted_terms(user.id)?.is_none_or(|v| v < self.settings.terms_version);
        if needs_terms {
            return Err(AuthError::NotAllowed(
                "accept the terms of use in the app first: tokens act only for users who have"
                    .into(),
            ));
        }
        Ok(user)
    }

    pub fn tokens(&self, user: &User) -> Result<Vec<AccessToken>, AuthError> {
        Ok(self.store.tokens_of(user.id)?)
    }

    pub fn revoke_token(&self, user: &User, id: i64) -> Result<(), AuthError> {
        if !self.store.delete_token(user.id, id)? {
            return Err(AuthError::NotFound(format!("you have no token {id}")));
        }
        self.event("token-revoked", Some(&user.name), None, format!("token {id}"));
        Ok(())
    }
}
