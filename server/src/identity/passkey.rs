//! Passkeys through webauthn-rs: registration and authentication ceremonies, user verification
//! required (webauthn-rs's passkey flow insists on it), several passkeys per account.
//!
//! Sign-in is username-first. For a name without passkeys the options are made up (a random
//! challenge; credential ids from webauthn-rs's fake generator keyed by an installation secret,
//! as many and as long as real authenticators' and the same for a name every time, with their
//! transports): the answer does not tell whether the account exists. Ceremony
//! state lives in memory for five minutes; a restart asks the user to try again.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use webauthn_rs::fake::{self, FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
use webauthn_rs::prelude::{
    Base64UrlSafeData, CreationChallengeResponse, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::throttle::Factor;
use super::{AuthError, Identity, Method, NewSession, Stage, User, sha256_hex};

const CEREMONY_SECONDS: i64 = 300;

enum Ceremony {
    Registration {
        user: i64,
        state: PasskeyRegistration,
    },
    /// `user` and `state` are `None` for a decoy: a name without passkeys.
    Authentication {
        name: String,
        user: Option<i64>,
        state: Option<PasskeyAuthentication>,
    },
}

/// Who finishes a registration: the holder of an enrolment link, or a signed-in account
/// adding another passkey. The ceremony must have been started for the same account.
#[derive(Clone, Copy)]
pub enum Registrant<'a> {
    Enrolment(&'a str),
    /// The account, and the session (its id hash) that stays signed in.
    SignedIn {
        user: i64,
        keep_session: &'a str,
    },
}

pub struct Passkeys {
    webauthn: Webauthn,
    ceremonies: Mutex<HashMap<String, (i64, Ceremony)>>,
    /// webauthn-rs's generator of made-up credential ids: as many, as long, as real accounts'
    /// tend to be, and the same for a name every time (keyed by the installation secret).
    decoys: WebauthnFakeCredentialGenerator<FakePasskeyDistribution>,
    secret: String,
}

/// Ceremonies kept at most; beyond this the oldest go (each is a few kilobytes).
const MAX_CEREMONIES: usize = 10_000;

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passkeys")
    }
}

impl Passkeys {
    /// The relying party is the host of `public_url`; its origin is the only one accepted.
    pub fn new(public_url: &str, secret: String) -> anyhow::Result<Passkeys> {
        let origin = Url::parse(public_url)
            .map_err(|e| anyhow::anyhow!("identity.public_url '{public_url}': {e}"))?;
        let rp_id = origin.host_str().ok_or_else(|| {
            anyhow::anyhow!("identity.public_url '{public_url}' has no host name for passkeys")
        })?;
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .and_then(|b| b.rp_name("Skjold").build())
            .map_err(|e| anyhow::anyhow!("identity.public_url '{public_url}' cannot serve passkeys: {e} (passkeys need a host name such as localhost, not an address)"))?;
        let decoy_key = Sha256::digest(format!("skjold passkey decoys:{secret}").as_bytes());
        let decoys = WebauthnFakeCredentialGenerator::new(&decoy_key[..16])
            .map_err(|e| anyhow::anyhow!("cannot make the passkey decoy generator: {e}"))?;
        Ok(Passkeys { webauthn, ceremonies: Mutex::default(), decoys, secret })
    }

    fn keep(&self, now: i64, ceremony: Ceremony) -> String {
        let id: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.ceremonies.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (started, _)| now - *started < CEREMONY_SECONDS);
        if map.len() >= MAX_CEREMONIES {
            let oldest =
                map.iter().min_by_key(|(_, (started, _))| *started).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), (now, ceremony));
        id
    }

    fn take(&self, id: &str, now: i64) -> Option<Ceremony> {
        let mut map = self.ceremonies.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id).filter(|(started, _)| now - *started < CEREMONY_SECONDS).map(|(_, c)| c)
    }

    /// Options for a name without passkeys, shaped as real ones: one or more credential ids
    /// of the lengths real authenticators give (webauthn-rs's fake generator), each with the
    /// transports such an authenticator reports, the same for the same name every time.
    fn decoy_options(&self, name: &str) -> RequestChallengeResponse {
        use webauthn_rs_proto::{
            AllowCredentials, AuthenticatorTransport as T, PublicKeyCredentialRequestOptions,
            UserVerificationPolicy,
        };
        let mut ids: Vec<Vec<u8>> = self
            .decoys
            .generate(name.as_bytes())
            .map(|ids| ids.iter().map(|id| id.as_ref().to_vec()).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            // Every account that signs in with passkeys has at least one.
            let id = Sha256::digest(format!("{}:{name}", self.secret).as_bytes());
            ids.push(id[..20].to_vec());
        }
        let allow_credentials = ids
            .into_iter()
            .map(|id| {
                let transports = match id.len() {
                    fake::TPM_CRED_LEN => vec![T::Internal],
                    fake::YUBIKEY_CRED_LEN | fake::YUBIKEY_EDDSA_CRED_LEN => vec![T::Nfc, T::Usb],
                    _ => vec![T::Hybrid, T::Internal],
                };
                AllowCredentials {
                    type_: "public-key".into(),
                    id: Base64UrlSafeData::from(id),
                    transports: Some(transports),
                }
            })
            .collect();
        RequestChallengeResponse {
            public_key: PublicKeyCredentialRequestOptions {
                challenge: Base64UrlSafeData::from(rand::random::<[u8; 32]>().to_vec()),
                timeout: Some(webauthn_rs::DEFAULT_AUTHENTICATOR_TIMEOUT.as_millis() as u32),
                rp_id: self.webauthn.get_allowed_origins()[0]
                    .host_str()
                    .unwrap_or_default()
                    .to_owned(),
                allow_credentials,
                user_verification: UserVerificationPolicy::Required,
                hints: None,
                extensions: None,
            },
            mediation: None,
        }
    }
}

fn user_uuid(user: &User) -> Uuid {
    // "skjold" and the account id: stable, and no personal data in the authenticator.
    Uuid::from_u64_pair(0x736b_6a6f_6c64, user.id as u64)
}

fn stored(identity: &Identity, user: i64) -> Result<Vec<Passkey>, AuthError> {
    Ok(identity
        .store
        .passkeys(user)?
        .into_iter()
        .filter_map(|(_, json)| serde_json::from_str(&json).ok())
        .collect())
}

impl Identity {
    fn passkeys(&self) -> Result<&Passkeys, AuthError> {
        self.passkeys.as_ref().ok_or_else(|| {
            AuthError::Invalid(
                "passkeys are not available: identity.public_url has no host name".into(),
            )
        })
    }

    /// Starts registering a passkey for `user` (from an enrolment link or a signed-in session).
    pub fn start_passkey_registration(
        &self,
        user: &User,
    ) -> Result<(String, CreationChallengeResponse), AuthError> {
        let passkeys = self.passkeys()?;
        let existing: Vec<_> = stored(self, user.id)?.iter().map(|p| p.cred_id().clone()).collect();
        let (options, state) = passkeys
            .webauthn
            .start_passkey_registration(
                user_uuid(user),
                &user.name,
                &user.display_name,
                Some(existing),
            )
            .map_err(|e| {
                AuthError::Invalid(format!("cannot start the passkey registration: {e}"))
            })?;
        let id = passkeys.keep(self.now(), Ceremony::Registration { user: user.id, state });
        Ok((id, options))
    }

    /// Finishes a registration: the passkey becomes (or stays) the account's method, and a
    /// password and TOTP secret it had are removed.
    pub fn finish_passkey_registration(
        &self,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        registrant: Registrant<'_>,
    ) -> Result<(), AuthError> {
        let passkeys = self.passkeys()?;
        let Some(Ceremony::Registration { user, state }) = passkeys.take(ceremony, self.now())
        else {
            return Err(AuthError::Invalid(
                "the passkey registration timed out: start again".into(),
            ));
        };
        let registrant_id = match registrant {
            Registrant::Enrolment(token) => self.enrolment(token)?.id,
            Registrant::SignedIn { user, .. } => user,
        };
        if registrant_id != user {
            return Err(AuthError::Invalid(
                "this passkey registration was started for another account: start again".into(),
            ));
        }
        let passkey = passkeys
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|e| AuthError::Invalid(format!("the passkey was not accepted: {e}")))?;
        if let Registrant::Enrolment(token) = registrant
            && !self.store.use_enrolment(&sha256_hex(token), self.now())?
        {
            return Err(AuthError::BadEnrolment);
        }
        let mut account = self.store.user(user)?.ok_or(AuthError::BadEnrolment)?;
        let json =
            serde_json::to_string(&passkey).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let credential_id = sha256_hex(&format!("{:?}", passkey.cred_id()));
        self.store.insert_passkey(user, &credential_id, &json, self.now())?;
        let switched = account.method == Method::Password;
        account.method = Method::Passkey;
        account.password_hash = None;
        account.totp_secret = None;
        account.totp_last_step = None;
        account.must_change_password = false;
        self.store.save_user(&account)?;
        // A new credential through a link ends every session: whoever signed in before the
        // change holds nothing after it. A passkey added while signed in keeps that session
        // (its holder just proved it), and ends the others.
        let ended = match registrant {
            Registrant::Enrolment(_) => self.store.delete_sessions_of(user)?,
            Registrant::SignedIn { keep_session, .. } => {
                self.store.delete_other_sessions_of(user, keep_session)?
            }
        };
        let what = if switched { "passkey; password and TOTP removed" } else { "passkey" };
        let event = if matches!(registrant, Registrant::SignedIn { .. }) {
            "passkey-added"
        } else {
            "enrolled"
        };
        self.event(
            event,
            Some(&account.name),
            None,
            format!("{what}; {ended} other sessions ended"),
        );
        Ok(())
    }

    /// Starts a passkey sign-in for `name`. Unknown names get decoy options.
    pub fn start_passkey_sign_in(
        &self,
        name: &str,
        address: &str,
    ) -> Result<(String, RequestChallengeResponse), AuthError> {
        let passkeys = self.passkeys()?;
        let key = super::UserName::parse(name)?.as_str().to_owned();
        self.throttle.admit(Factor::Passkey, &key, address, self.now())?;
        let user = self.store.user_by_name(&key)?.filter(|u| u.method == Method::Passkey);
        let keys = match &user {
            Some(u) => stored(self, u.id)?,
            None => Vec::new(),
        };
        if keys.is_empty() {
            let decoy = Ceremony::Authentication { name: key.clone(), user: None, state: None };
            let id = passkeys.keep(self.now(), decoy);
            return Ok((id, passkeys.decoy_options(&key)));
        }
        let (options, state) = passkeys
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(|e| AuthError::Invalid(format!("cannot start the passkey sign-in: {e}")))?;
        let id = passkeys.keep(
            self.now(),
            Ceremony::Authentication { name: key, user: user.map(|u| u.id), state: Some(state) },
        );
        Ok((id, options))
    }

    /// Finishes a passkey sign-in: a new, active session.
    pub fn finish_passkey_sign_in(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        address: &str,
    ) -> Result<NewSession, AuthError> {
        let mut account = self.verify_passkey(ceremony, credential, address)?;
        account.must_change_password = false;
        self.event("signed-in", Some(&account.name), Some(address), "passkey".into());
        self.open_session(&account, Stage::Active)
    }

    /// Checks a passkey assertion to a challenge from [`Identity::start_passkey_sign_in`]:
    /// the account it proves, its counters kept current, failures counted.
    pub fn verify_passkey(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        address: &str,
    ) -> Result<User, AuthError> {
        let passkeys = self.passkeys()?;
        let Some(Ceremony::Authentication { name, user, state }) =
            passkeys.take(ceremony, self.now())
        else {
            return Err(AuthError::Invalid("the passkey sign-in timed out: start again".into()));
        };
        self.throttle.admit(Factor::Passkey, &name, address, self.now())?;
        let (Some(user), Some(state)) = (user, state) else {
            self.failed(Factor::Passkey, &name, address, "passkey");
            return Err(AuthError::BadCredentials);
        };
        let account = self.store.user(user)?.ok_or(AuthError::BadCredentials)?;
        let result = match passkeys.webauthn.finish_passkey_authentication(credential, &state) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "passkey sign-in refused");
                self.failed(Factor::Passkey, &name, address, "passkey");
                return Err(AuthError::BadCredentials);
            }
        };
        // Keep the signature counter and backup state current.
        for (id, json) in self.store.passkeys(user)? {
            if let Ok(mut key) = serde_json::from_str::<Passkey>(&json)
                && key.update_credential(&result) == Some(true)
            {
                let json =
                    serde_json::to_string(&key).map_err(|e| AuthError::Invalid(e.to_string()))?;
                self.store.update_passkey(&id, &json, self.now())?;
            }
        }
        self.throttle.success(Factor::Passkey, &account.name);
        Ok(account)
    }
}

#[cfg(test)]
mod decoy_tests {
    use super::*;

    /// Guards the review's finding that made-up options had another shape than real ones
    /// (always one 16-byte id, no transports).
    #[test]
    fn decoys_look_like_real_accounts_and_stay_the_same_for_a_name() {
        let passkeys = Passkeys::new("http://localhost:8080", "secret".into()).unwrap();
        let ids = |name: &str| -> Vec<(usize, bool)> {
            passkeys
                .decoy_options(name)
                .public_key
                .allow_credentials
                .iter()
                .map(|c| {
                    (c.id.as_ref().len(), c.transports.as_ref().is_some_and(|t| !t.is_empty()))
                })
                .collect()
        };
        let mut lengths = std::collections::BTreeSet::new();
        for i in 0..200 {
            let name = format!("name{i}");
            let first = ids(&name);
            assert_eq!(first, ids(&name), "the same name gets the same ids");
            assert!(!first.is_empty() && first.iter().all(|(_, transports)| *transports));
            lengths.extend(first.iter().map(|(len, _)| *len));
        }
        assert!(lengths.len() >= 3, "ids of several authenticators' lengths: {lengths:?}");
        let other = Passkeys::new("http://localhost:8080", "another".into()).unwrap();
        let differ = (0..20).any(|i| {
            let name = format!("name{i}");
            other.decoy_options(&name).public_key.allow_credentials[0].id
                != passkeys.decoy_options(&name).public_key.allow_credentials[0].id
        });
        assert!(differ, "another installation makes other ids");
    }
}
