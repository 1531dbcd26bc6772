//! Identity and access: accounts, sign-in (password + TOTP, or passkeys), server-side sessions,
//! terms of use, and projects with their grants. The rules are MONA's (see
//! `../shared/reference/platforms.md`); the HTTP layer (`http::auth`, `http::admin`) is a thin
//! shell over [`Identity`].
//!
//! Every operation is synchronous (SQLite and argon2 both block); handlers run them on the
//! blocking pool. Time comes from a [`Clock`], so tests move it instead of sleeping.

pub mod areas;
pub mod country;
pub mod mail;
pub mod passkey;
pub mod password;
pub mod sealed;
pub mod store;
mod tokens;
pub use tokens::{MAX_TOKEN_DAYS, TOKEN_PREFIX};
mod throttle;
pub mod totp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::disclosure::AuditLog;
use crate::disclosure::audit::SecurityEvent;
pub use store::{AppStore, SqliteStore, StoreError};
pub use throttle::{Factor, Throttle};

/// Unix seconds, injectable.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// A clock that moves only when told, for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(now: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// The application database (SQLite file).
    pub database: std::path::PathBuf,
    /// The address users reach the server at: enrolment links and the passkey origin.
    pub public_url: String,
    /// Signed out after this long without activity.
    pub idle_timeout_seconds: i64,
    /// The "stay signed in?" prompt shows for the last this many seconds.
    pub idle_warning_seconds: i64,
    /// Signed out this long after signing in, whatever the activity.
    pub absolute_lifetime_seconds: i64,
    /// A password older than this must be changed at sign-in (MONA's policy only).
    pub max_password_age_days: i64,
    /// The key that seals TOTP secrets in the database; beside the database when absent.
    pub totp_key_file: Option<std::path::PathBuf>,
    /// The rules for new passwords: `mona` (the default) or `nist` (SP 800-63B).
    pub password_policy: password::PasswordPolicy,
    /// How long an enrolment link works.
    pub enrolment_hours: i64,
    /// The version of the terms of use in force; raising it asks everyone to accept again.
    pub terms_version: u32,
    /// The terms text (Markdown); the built-in text when absent.
    pub terms_file: Option<std::path::PathBuf>,
    /// Consecutive failures before an account is locked, and the first lock's length
    /// (doubling with each further failure, up to an hour).
    pub lockout_after_failures: u32,
    pub lockout_seconds: i64,
    /// Sign-in attempts per minute from one address.
    pub attempts_per_minute_per_address: u32,
    /// Days between a user's deletion request and its execution, unless a steward acts first.
    pub deletion_grace_days: i64,
    /// Bytes in a user's personal area.
    pub personal_area_bytes: u64,
    /// Bytes in a project's shared area.
    pub project_area_bytes: u64,
    /// Which countries may reach the service.
    pub countries: country::CountrySettings,
    /// Enrolment links by e-mail; off unless an SMTP server is set.
    pub mail: mail::MailSettings,
}

impl Default for IdentitySettings {
    fn default() -> IdentitySettings {
        IdentitySettings {
            database: ".skjold/app.sqlite3".into(),
            public_url: "http://localhost:8080".into(),
            idle_timeout_seconds: 300,
            idle_warning_seconds: 90,
            absolute_lifetime_seconds: 12 * 3600,
            max_password_age_days: 365,
            password_policy: password::PasswordPolicy::Mona,
            totp_key_file: None,
            enrolment_hours: 72,
            terms_version: 1,
            terms_file: None,
            lockout_after_failures: 5,
            lockout_seconds: 30,
            attempts_per_minute_per_address: 20,
            deletion_grace_days: 30,
            personal_area_bytes: 250_000_000,
            project_area_bytes: 2_000_000_000,
            countries: country::CountrySettings::default(),
            mail: mail::MailSettings::default(),
        }
    }
}

impl IdentitySettings {
    /// Opens the application database, its TOTP secrets sealed with the key of
    /// `totp_key_file` (by default `<database>.totp-key`, made on first use).
    pub fn open_store(&self) -> anyhow::Result<SqliteStore> {
        let key_file = self.totp_key_file.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(format!("{}.totp-key", self.database.display()))
        });
        let sealer = sealed::Sealer::from_key_file(&key_file)
            .map_err(|e| anyhow::anyhow!("cannot read the TOTP key {}: {e}", key_file.display()))?;
        SqliteStore::open(&self.database, sealer).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the application database {}: {e} (setting identity.database or SKJOLD_DATABASE)",
                self.database.display()
            )
        })
    }

    /// Cookies get `Secure` when users reach the server over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    /// Owns projects and runs courses.
    Teacher,
    /// Loads registers, manages users, projects and grants.
    Steward,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Teacher => "teacher",
            Role::Steward => "steward",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "member" => Some(Role::Member),
            "teacher" => Some(Role::Teacher),
            "steward" => Some(Role::Steward),
            _ => None,
        }
    }
}

/// The one sign-in method an account has linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Not enrolled yet.
    None,
    Password,
    Passkey,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Password => "password",
            Method::Passkey => "passkey",
        }
    }

    fn parse(text: &str) -> Method {
        match text {
            "password" => Method::Password,
            "passkey" => Method::Passkey,
            _ => Method::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub method: Method,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<i64>,
    pub must_change_password: bool,
    pub totp_secret: Option<String>,
    /// The TOTP time step of the last accepted code: a code of that step or earlier is refused.
    pub totp_last_step: Option<i64>,
    pub created_at: i64,
    pub deletion_requested_at: Option<i64>,
}

/// Where a session is on the way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The password was right; the TOTP code is next.
    SecondFactor,
    /// Signed in, but the password must be changed before anything else.
    ChangePassword,
    Active,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::ChangePassword => "change_password",
            Stage::Active => "active",
        }
    }

    fn parse(text: &str) -> Stage {
        match text {
            "active" => Stage::Active,
            "change_password" => Stage::ChangePassword,
            _ => Stage::SecondFactor,
        }
    }
}

/// A server-side session. The cookie holds a random id; the database holds its SHA-256, so a
/// copy of the database does not give working cookies.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id_hash: String,
    pub user: i64,
    /// Sent back by the app in `X-CSRF-Token` on every state-changing request.
    pub csrf: String,
    pub stage: Stage,
    pub created_at: i64,
    pub last_seen: i64,
    /// When the holder last proved the credential again; what could hand the account over
    /// (switching method, adding a passkey) needs this within [`REAUTHENTICATION_SECONDS`].
    pub reauthenticated_at: Option<i64>,
}

/// How long a re-authentication lets a session switch method or add a passkey.
pub const REAUTHENTICATION_SECONDS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectKind {
    Project,
    /// A teacher's course on the synthetic datastore, joined with a code.
    Course,
}

impl ProjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectKind::Project => "project",
            ProjectKind::Course => "course",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub kind: ProjectKind,
    pub owner: Option<i64>,
    pub join_code: Option<String>,
    pub created_at: i64,
}

/// What a project may import: datastore → every variable (`None`) or the named ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grants(pub BTreeMap<String, Option<BTreeSet<String>>>);

impl Grants {
    pub fn allows_datastore(&self, datastore: &str) -> bool {
        self.0.contains_key(datastore)
    }

    pub fn allows_variable(&self, datastore: &str, variable: &str) -> bool {
        match self.0.get(datastore) {
            Some(None) => true,
            Some(Some(variables)) => variables.contains(variable),
            None => false,
        }
    }
}

/// Why an identity operation was refused. Messages are for the user; none says whether an
/// account exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the user name or password is wrong")]
    BadCredentials,
    #[error("the code is wrong or was used already; wait for the next code and try again")]
    BadCode,
    #[error("too many failed attempts: try again in {retry_after} s")]
    Locked { retry_after: i64 },
    #[error("you are not signed in, or your session has ended: sign in again")]
    NoSession,
    #[error("{0}")]
    NotAllowed(String),
    #[error("this enrolment link is unknown, used or expired: ask your data steward for a new one")]
    BadEnrolment,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new session: the cookie value to set, and the session.
#[derive(Debug)]
pub struct NewSession {
    pub cookie: String,
    pub session: Session,
}

/// A session found for a request, with its user.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub session: Session,
    pub user: User,
    /// The user has not accepted the terms in force: nothing but the terms page is reachable.
    pub needs_terms: bool,
    /// Seconds until idle sign-out.
    pub idle_left: i64,
}

/// The terms text built in when no `terms_file` is set.
const DEFAULT_TERMS: &str = include_str!("terms.md");

/// The enrolment of a password: the TOTP secret to put into an authenticator app.
#[derive(Clone, Debug, Serialize)]
pub struct TotpEnrolment {
    pub otpauth_uri: String,
    pub secret: String,
    /// The otpauth URI as a QR code, an SVG document.
    pub qr_svg: String,
}

pub struct Identity {
    pub store: Arc<dyn AppStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: IdentitySettings,
    pub throttle: Throttle,
    audit: Arc<dyn AuditLog>,
    terms_text: String,
    /// `None` when the public URL has no host name a passkey can be bound to.
    passkeys: Option<passkey::Passkeys>,
    /// `None` unless an SMTP server is configured.
    mailer: Option<mail::Mailer>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// 32 random bytes, hex.
fn random_token() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A name typed at sign-in, parsed before anything counts, stores or logs it: at most 64
/// bytes of the characters accounts have. A made-up name of megabytes once grew the throttle
/// and the audit log by as much on every try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(text: &str) -> Result<UserName, AuthError> {
        let trimmed = text.trim();
        if trimmed.len() > 64 {
            return Err(AuthError::Invalid(format!(
                "the user name is {} characters long: user names have at most 64",
                trimmed.chars().count()
            )));
        }
        let name = trimmed.to_lowercase();
        check_user_name(&name)?;
        Ok(UserName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// User names: 2–64 of lower-case letters, digits, `.`, `-`, `_`.
fn check_user_name(name: &str) -> Result<(), AuthError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "user name '{name}': use 2–64 lower-case letters, digits, '.', '-' or '_'"
        )))
    }
}

impl Identity {
    pub fn new(
        store: Arc<dyn AppStore>,
        clock: Arc<dyn Clock>,
        settings: IdentitySettings,
        audit: Arc<dyn AuditLog>,
    ) -> anyhow::Result<Identity> {
        let terms_text = match &settings.terms_file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the terms file {}: {e} (setting terms_file)",
                    path.display()
                )
            })?,
            None => DEFAULT_TERMS.to_owned(),
        };
        let throttle = Throttle::new(
            settings.lockout_after_failures,
            settings.lockout_seconds,
            settings.attempts_per_minute_per_address,
        );
        let passkeys =
            match passkey::Passkeys::new(&settings.public_url, store.installation_secret()?) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "passkeys are off");
                    None
                }
            };
        let mailer = mail::Mailer::new(&settings.mail, "Skjold")?;
        // Made now, so the first unknown name does not pay for making it.
        let _ = password::decoy_hash();
        Ok(Identity { store, clock, settings, throttle, audit, terms_text, passkeys, mailer })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn terms(&self) -> (u32, &str) {
        (self.settings.terms_version, &self.terms_text)
    }

    fn event(&self, event: &str, user: Option<&str>, address: Option<&str>, detail: String) {
        self.audit.event(&SecurityEvent {
            time: self.now(),
            event: event.to_owned(),
            user: user.map(str::to_owned),
            address: address.map(str::to_owned),
            detail,
        });
    }

    fn user_named(&self, name: &str) -> Result<User, AuthError> {
        self.store
            .user_by_name(name)?
            .ok_or_else(|| AuthError::NotFound(format!("there is no user named '{name}'")))
    }

    // ----- accounts ------------------------------------------------------------------------

    /// Creates an account (by a steward, `by`) and returns it with its enrolment link.
    pub fn add_user(
        &self,
        name: &str,
        display_name: &str,
        email: Option<&str>,
        role: Role,
        by: &str,
    ) -> Result<(User, String), AuthError> {
        check_user_name(name)?;
        let mut user = User {
            id: 0,
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            email: email.map(str::to_owned),
            role,
            method: Method::None,
            password_hash: None,
            password_changed_at: None,
            must_change_password: false,
            totp_secret: None,
            totp_last_step: None,
            created_at: self.now(),
            deletion_requested_at: None,
        };
        user.id = self.store.insert_user(&user)?;
        self.event("user-added", Some(name), None, format!("role {} by {by}", role.as_str()));
        let link = self.enrolment_link(&user)?;
        Ok((user, link))
    }

    /// A new one-time link with which the user links (or switches) their sign-in method.
    pub fn enrolment_link(&self, user: &User) -> Result<String, AuthError> {
        let token = random_token();
        let expires = self.now() + self.settings.enrolment_hours * 3600;
        self.store.insert_enrolment(&sha256_hex(&token), user.id, expires)?;
        self.event("enrolment-issued", Some(&user.name), None, String::new());
        // The token travels in the fragment, which browsers never send to a server or in a
        // Referer: it stays out of access logs.
        Ok(format!("{}/enrol#{token}", self.settings.public_url.trim_end_matches('/')))
    }

    /// Mails `link` to the user when mail is configured and the account has an address; says
    /// what happened, for the steward (`None`: nothing was tried).
    pub fn mail_enrolment(&self, user: &User, link: &str) -> Option<String> {
        let (mailer, address) = (self.mailer.as_ref()?, user.email.as_deref()?);
        let hours = self.settings.enrolment_hours;
        Some(match mailer.send_enrolment(&user.display_name, address, link, hours) {
            Ok(()) => {
                self.event("enrolment-mailed", Some(&user.name), None, address.into());
                format!("sent to {address}")
            }
            Err(e) => {
                tracing::warn!(user = %user.name, error = %e, "enrolment mail not sent");
                format!("not sent ({e}): pass the link on yourself")
            }
        })
    }

    /// The user an enrolment token belongs to.
    pub fn enrolment(&self, token: &str) -> Result<User, AuthError> {
        let id = self
            .store
            .enrolment_user(&sha256_hex(token), self.now())?
            .ok_or(AuthError::BadEnrolment)?;
        self.store.user(id)?.ok_or(AuthError::BadEnrolment)
    }

    /// First step of enrolling a password: checks the policy, keeps the hash and a new TOTP
    /// secret *in the enrolment*, and returns what the authenticator app needs. The account
    /// signs in as before until the first code confirms them: a link used by someone else
    /// half-way changes nothing.
    pub fn enrol_password(&self, token: &str, password: &str) -> Result<TotpEnrolment, AuthError> {
        let user = self.enrolment(token)?;
        password::check_policy_of(self.settings.password_policy, password, &user.name)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let secret = totp::new_secret();
        let hash = password::hash(password);
        self.store.set_pending_credentials(&sha256_hex(token), &hash, &secret)?;
        totp::enrolment(&secret, &user.name).map_err(AuthError::Invalid)
    }

    /// Second step: the first code from the app confirms it; the password becomes the sign-in
    /// method, any passkeys are removed (one method per account), the link is spent and every
    /// session of the account ends: whoever held one before the change holds nothing now.
    pub fn confirm_password_enrolment(&self, token: &str, code: &str) -> Result<(), AuthError> {
        let mut user = self.enrolment(token)?;
        let (hash, secret) =
            self.store.pending_credentials(&sha256_hex(token))?.ok_or_else(|| {
                AuthError::Invalid("choose a password first, then confirm the code".into())
            })?;
        let step = totp::verify(&secret, code, self.now(), None).ok_or(AuthError::BadCode)?;
        if !self.store.use_enrolment(&sha256_hex(token), self.now())? {
            return Err(AuthError::BadEnrolment);
        }
        let switched = user.method == Method::Passkey;
        user.method = Method::Password;
        user.password_hash = Some(hash);
        user.totp_secret = Some(secret);
        user.totp_last_step = Some(step);
        user.password_changed_at = Some(self.now());
        user.must_change_password = false;
        self.store.save_user(&user)?;
        self.store.delete_passkeys(user.id)?;
        let ended = self.store.delete_sessions_of(user.id)?;
        let method = if switched { "password + TOTP; passkeys removed" } else { "password + TOTP" };
        self.event("enrolled", Some(&user.name), None, format!("{method}; {ended} sessions ended"));
        Ok(())
    }

    /// A steward gives an account a temporary password, to be changed at first sign-in. The
    /// account keeps its TOTP secret; without one it must enrol instead.
    pub fn set_temporary_password(&self, name: &str, by: &str) -> Result<String, AuthError> {
        let mut user = self.user_named(name)?;
        if user.method != Method::Password || user.totp_secret.is_none() {
            return Err(AuthError::Invalid(format!(
                "'{name}' has no password and authenticator app to keep: send an enrolment link"
            )));
        }
        // Four groups from a 32-letter alphabet with a digit and a dash: meets the policy.
        let alphabet = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
        let mut temporary = String::new();
        for group in 0..4 {
            if group > 0 {
                temporary.push('-');
            }
            for _ in 0..5 {
                temporary.push(alphabet[rand::random_range(0..alphabet.len())] as char);
            }
        }
        temporary.push_str("7Q");
        user.password_hash = Some(password::hash(&temporary));
        user.must_change_password = true;
        self.store.save_user(&user)?;
        self.store.delete_sessions_of(user.id)?;
        self.event("temporary-password", Some(name), None, format!("by {by}"));
        Ok(temporary)
    }

    pub fn set_role(&self, name: &str, role: Role, by: &str) -> Result<(), AuthError> {
        let mut user = self.user_named(name)?;
        let before = user.role;
        user.role = role;
        self.store.save_user(&user)?;
        self.event(
            "role-changed",
            Some(name),
            None,
            format!("{} → {} by {by}", before.as_str(), role.as_str()),
        );
        Ok(())
    }

    // ----- signing in ----------------------------------------------------------------------

    /// Password step. Unknown users cost one argon2 verification like everyone else and get
    /// the same answer; lockouts count per name whether or not it exists.
    pub fn login_password(
        &self,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<NewSession, AuthError> {
        let now = self.now();
        let key = UserName::parse(name)?.0;
        self.throttle.admit(Factor::Password, &key, address, now).inspect_err(|_| {
            self.event("sign-in-refused", Some(&key), Some(address), "throttled".into());
        })?;
        let user = self.store.user_by_name(&key)?;
        let hash = user
            .as_ref()
            .filter(|u| u.method == Method::Password)
            .and_then(|u| u.password_hash.clone());
        let right = password::verify(password, hash.as_deref().unwrap_or(password::decoy_hash()));
        let (Some(user), true) = (user, right && hash.is_some()) else {
            self.failed(Factor::Password, &key, address, "password");
            return Err(AuthError::BadCredentials);
        };
        self.event("password-accepted", Some(&user.name), Some(address), String::new());
        self.open_session(&user, Stage::SecondFactor)
    }

    fn failed(&self, factor: Factor, key: &str, address: &str, what: &str) {
        let locked = self.throttle.failure(factor, key, self.now());
        let address = Some(address).filter(|a| !a.is_empty());
        let event = if factor == Factor::CourseCode { "join-failed" } else { "sign-in-failed" };
        self.event(event, Some(key), address, what.into());
        if let Some(seconds) = locked {
            self.event("lockout", Some(key), address, format!("{seconds} s"));
        }
    }

    /// TOTP step: the code must be of the current step ±1 and newer than the last one
    /// accepted. Success replaces the session with a new one (a new id: no fixation).
    pub fn login_totp(
        &self,
        pending: &Session,
        code: &str,
        address: &str,
    ) -> Result<NewSession, AuthError> {
        let now = self.now();
        let user = self.store.user(pending.user)?.ok_or(AuthError::NoSession)?;
        let key = user.name.clone();
        self.throttle.admit(Factor::Password, &key, address, now)?;
        let secret = user.totp_secret.clone().ok_or(AuthError::NoSession)?;
        if !self.use_totp_code(&user, &secret, code)? {
            self.failed(Factor::Password, &key, address, "totp");
            return Err(AuthError::BadCode);
        }
        self.throttle.success(Factor::Password, &key);
        self.store.delete_session(&pending.id_hash)?;
        let too_old = self.settings.password_policy.expires()
            && user
                .password_changed_at
                .is_none_or(|t| now - t > self.settings.max_password_age_days * 86_400);
        let stage = if user.must_change_password || too_old {
            Stage::ChangePassword
        } else {
            Stage::Active
        };
        self.event("signed-in", Some(&user.name), Some(address), "password + TOTP".into());
        self.open_session(&user, stage)
    }

    pub(crate) fn open_session(&self, user: &User, stage: Stage) -> Result<NewSession, AuthError> {
        let cookie = random_token();
        let now = self.now();
        let session = Session {
            id_hash: sha256_hex(&cookie),
            user: user.id,
            csrf: random_token(),
            stage,
            created_at: now,
            last_seen: now,
            reauthenticated_at: None,
        };
        self.store.insert_session(&session)?;
        Ok(NewSession { cookie, session })
    }

    /// The session a cookie names, if it is still alive. Ended sessions are deleted.
    pub fn session(&self, cookie: &str) -> Result<SignedIn, AuthError> {
        let now = self.now();
        let id_hash = sha256_hex(cookie);
        let session = self.store.session(&id_hash)?.ok_or(AuthError::NoSession)?;
        let idle_limit = match session.stage {
            // The code must follow the password within five minutes.
            Stage::SecondFactor => 300.min(self.settings.idle_timeout_seconds),
            _ => self.settings.idle_timeout_seconds,
        };
        let idle_left = idle_limit - (now - session.last_seen);
        let too_old = now - session.created_at >= self.settings.absolute_lifetime_seconds;
        if idle_left <= 0 || too_old {
            self.store.delete_session(&id_hash)?;
            let user = self.store.user(session.user)?;
            let why = if too_old { "absolute lifetime" } else { "idle" };
            self.event("signed-out", user.as_ref().map(|u| u.name.as_str()), None, why.into());
            return Err(AuthError::NoSession);
        }
        let user = self.store.user(session.user)?.ok_or(AuthError::NoSession)?;
        let needs_terms =
            self.store.accepted_terms(user.id)?.is_none_or(|v| v < self.settings.terms_version);
        Ok(SignedIn { session, user, needs_terms, idle_left })
    }

    /// Activity: resets the idle clock.
    pub fn touch(&self, signed_in: &mut SignedIn) -> Result<(), AuthError> {
        let now = self.now();
        self.store.touch_session(&signed_in.session.id_hash, now)?;
        signed_in.session.last_seen = now;
        signed_in.idle_left = self.settings.idle_timeout_seconds;
        Ok(())
    }

    pub fn logout(&self, signed_in: &SignedIn, address: &str) -> Result<(), AuthError> {
        self.store.delete_session(&signed_in.session.id_hash)?;
        self.event("signed-out", Some(&signed_in.user.name), Some(address), "by the user".into());
        Ok(())
    }

    pub fn logout_everywhere(
        &self,
        signed_in: &SignedIn,
        address: &str,
    ) -> Result<usize, AuthError> {
        let n = self.store.delete_sessions_of(signed_in.user.id)?;
        self.event(
            "signed-out",
            Some(&signed_in.user.name),
            Some(address),
            format!("all {n} sessions, by the user"),
        );
        Ok(n)
    }

    pub fn accept_terms(&self, signed_in: &SignedIn, version: u32) -> Result<(), AuthError> {
        if version != self.settings.terms_version {
            return Err(AuthError::Invalid(format!(
                "the terms in force are version {}; reload the page and read them",
                self.settings.terms_version
            )));
        }
        self.store.record_terms(signed_in.user.id, version, self.now())?;
        self.event(
            "terms-accepted",
            Some(&signed_in.user.name),
            None,
            format!("version {version}"),
        );
        Ok(())
    }

    /// Changes a password: the current one must be right, the new one must meet the policy and
    /// differ. Other sessions of the user end; this one becomes active.
    pub fn change_password(
        &self,
        signed_in: &SignedIn,
        current: &str,
        new: &str,
        address: &str,
    ) -> Result<NewSession, AuthError> {
        let mut user = signed_in.user.clone();
        let hash = user.password_hash.clone().filter(|_| user.method == Method::Password);
        let Some(hash) = hash else {
            return Err(AuthError::Invalid("this account signs in with a passkey".into()));
        };
        self.throttle.admit(Factor::Password, &user.name, address, self.now())?;
        if !password::verify(current, &hash) {
            self.failed(Factor::Password, &user.name.clone(), address, "current password");
            return Err(AuthError::BadCredentials);
        }
        password::check_policy_of(self.settings.password_policy, new, &user.name)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        if new == current {
            return Err(AuthError::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        user.password_hash = Some(password::hash(new));
        user.password_changed_at = Some(self.now());
        user.must_change_password = false;
        self.store.save_user(&user)?;
        self.store.delete_sessions_of(user.id)?;
        self.event("password-changed", Some(&user.name), Some(address), String::new());
        self.open_session(&user, Stage::Active)
    }

    /// Whether `code` is a TOTP code of `user` valid now and of a step not used before. The
    /// check against the step the caller read is a first filter; the store's conditional
    /// update decides, so of two requests with the same code only one passes.
    fn use_totp_code(&self, user: &User, secret: &str, code: &str) -> Result<bool, AuthError> {
        match totp::verify(secret, code, self.now(), user.totp_last_step) {
            Some(step) => Ok(self.store.claim_totp_step(user.id, step)?),
            None => Ok(false),
        }
    }

    /// Re-authentication for a step that could hand the account over: the password and a
    /// fresh TOTP code of a password account, or a passkey assertion of a passkey account.
    /// Failures count towards the same lockouts as sign-in.
    pub fn reauthenticate(
        &self,
        signed_in: &SignedIn,
        proof: &shared::api::Reauthentication,
        address: &str,
    ) -> Result<(), AuthError> {
        let user = &signed_in.user;
        let name = user.name.clone();
        let refused = |what: &str| {
            self.event("reauthentication-failed", Some(&name), Some(address), what.into());
            AuthError::BadCredentials
        };
        match user.method {
            Method::Password => {
                let (Some(password), Some(code)) = (&proof.password, &proof.code) else {
                    return Err(AuthError::Invalid(
                        "confirm it is you: send your password and a code from your authenticator app".into(),
                    ));
                };
                self.throttle.admit(Factor::Password, &name, address, self.now())?;
                let hash = user.password_hash.clone().unwrap_or_default();
                if !password::verify(password, &hash) {
                    self.failed(Factor::Password, &name, address, "reauthentication password");
                    return Err(refused("password"));
                }
                let secret = user.totp_secret.clone().unwrap_or_default();
                if !self.use_totp_code(user, &secret, code)? {
                    self.failed(Factor::Password, &name, address, "reauthentication code");
                    return Err(refused("totp"));
                }
            }
            Method::Passkey => {
                let (Some(ceremony), Some(credential)) = (&proof.ceremony, &proof.credential)
                else {
                    return Err(AuthError::Invalid(
                        "confirm it is you with your passkey: start at /api/account/reauth/passkey/start".into(),
                    ));
                };
                let credential = serde_json::from_value(credential.clone())
                    .map_err(|e| AuthError::Invalid(format!("not a WebAuthn credential ({e})")))?;
                let proved = self.verify_passkey(ceremony, &credential, address)?;
                if proved.id != user.id {
                    return Err(refused("passkey of another account"));
                }
            }
            Method::None => {
                return Err(AuthError::Invalid("this account has no sign-in method yet".into()));
            }
        }
        self.store.mark_reauthenticated(&signed_in.session.id_hash, self.now())?;
        self.event("reauthenticated", Some(&name), Some(address), String::new());
        Ok(())
    }

    /// Refuses unless this session re-authenticated within the last few minutes.
    pub fn require_recent_reauthentication(&self, signed_in: &SignedIn) -> Result<(), AuthError> {
        let recent = signed_in
            .session
            .reauthenticated_at
            .is_some_and(|t| self.now() - t < REAUTHENTICATION_SECONDS);
        if recent {
            Ok(())
        } else {
            Err(AuthError::Invalid(
                "confirm it is you first (password and code, or your passkey): this step could hand your account to someone else".into(),
            ))
        }
    }

    // ----- deletion ------------------------------------------------------------------------

    pub fn request_deletion(&self, signed_in: &SignedIn) -> Result<i64, AuthError> {
        let mut user = signed_in.user.clone();
        let now = self.now();
        user.deletion_requested_at = Some(now);
        self.store.save_user(&user)?;
        self.event("deletion-requested", Some(&user.name), None, String::new());
        Ok(now + self.settings.deletion_grace_days * 86_400)
    }

    pub fn delete_user(&self, name: &str, by: &str) -> Result<(), AuthError> {
        let user = self.user_named(name)?;
        self.delete_personal_area(user.id)?;
        self.store.delete_user(user.id)?;
        self.event("user-deleted", Some(name), None, format!("by {by}"));
        Ok(())
    }

    /// Carries out deletion requests older than the grace period; returns how many.
    pub fn purge_due_deletions(&self) -> Result<usize, AuthError> {
        let due = self.now() - self.settings.deletion_grace_days * 86_400;
        let mut n = 0;
        for user in self.store.users()? {
            if user.deletion_requested_at.is_some_and(|t| t <= due) {
                self.delete_user(&user.name, "the grace period")?;
                n += 1;
            }
        }
        Ok(n)
    }

    // ----- projects ------------------------------------------------------------------------

    pub fn create_project(
        &self,
        name: &str,
        kind: ProjectKind,
        owner: Option<&str>,
        by: &str,
    ) -> Result<Project, AuthError> {
        if name.trim().is_empty() || name.len() > 100 {
            return Err(AuthError::Invalid("a project name has 1–100 characters".into()));
        }
        let owner = match owner {
            Some(o) => Some(self.user_named(o)?),
            None => None,
        };
        let join_code = (kind == ProjectKind::Course).then(|| {
            let alphabet = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
            (0..8).map(|_| alphabet[rand::random_range(0..alphabet.len())] as char).collect()
        });
        let mut project = Project {
            id: 0,
            name: name.to_owned(),
            kind,
            owner: owner.as_ref().map(|o| o.id),
            join_code,
            created_at: self.now(),
        };
        project.id = self.store.insert_project(&project)?;
        if let Some(owner) = &owner {
            self.store.add_member(project.id, owner.id)?;
        }
        self.event(
            "project-created",
            owner.as_ref().map(|o| o.name.as_str()),
            None,
            format!("{} '{name}' by {by}", kind.as_str()),
        );
        Ok(project)
    }

    pub fn project_named(&self, name: &str) -> Result<Project, AuthError> {
        self.store
            .project_by_name(name)?
            .ok_or_else(|| AuthError::NotFound(format!("there is no project named '{name}'")))
    }

    pub fn grant(
        &self,
        project: &str,
        datastore: &str,
        variable: Option<&str>,
        by: &str,
    ) -> Result<(), AuthError> {
        let p = self.project_named(project)?;
        self.store.add_grant(p.id, datastore, variable)?;
        let what = match variable {
            Some(v) => format!("{datastore}/{v}"),
            None => format!("{datastore} (all variables)"),
        };
        self.event("grant-added", None, None, format!("project '{project}': {what} by {by}"));
        Ok(())
    }

    pub fn add_member(&self, project: &str, user: &str, by: &str) -> Result<(), AuthError> {
        let p = self.project_named(project)?;
        let u = self.user_named(user)?;
        self.store.add_member(p.id, u.id)?;
        self.event("member-added", Some(user), None, format!("project '{project}' by {by}"));
        Ok(())
    }

    /// A student joins a course with the teacher's code.
    pub fn join_course(&self, signed_in: &SignedIn, code: &str) -> Result<Project, AuthError> {
        let code = code.trim().to_uppercase();
        // Join codes are short enough to guess: wrong ones count like wrong passwords.
        let name = signed_in.user.name.clone();
        let now = self.now();
        self.throttle.admit(Factor::CourseCode, &name, &format!("user:{name}"), now)?;
        let Some(project) = self.store.project_by_join_code(&code)? else {
            self.failed(Factor::CourseCode, &name, "", "course join code");
            return Err(AuthError::Invalid(
                "no course has this join code: check it with your teacher".into(),
            ));
        };
        self.throttle.success(Factor::CourseCode, &name);
        self.store.add_member(project.id, signed_in.user.id)?;
        self.event(
            "member-added",
            Some(&signed_in.user.name),
            None,
            format!("course '{}' by join code", project.name),
        );
        Ok(project)
    }

    /// The grants of a project the user belongs to.
    /// The project a run of `user` goes to (`project`, or their only one) and its grants.
    pub fn project_for_run(
        &self,
        user: &User,
        project: Option<String>,
    ) -> Result<(String, Grants), AuthError> {
        let project = match project {
            Some(p) => p,
            None => {
                let mine = self.store.projects_of(user.id)?;
                match mine.as_slice() {
                    [only] => only.name.clone(),
                    [] => {
                        return Err(AuthError::NotAllowed(
                            "you are in no project yet: join a course with its code, or ask your data steward to add you to a project".into(),
                        ));
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
                        return Err(AuthError::Invalid(format!(
                            "choose the project to run in: {}",
                            names.join(", ")
                        )));
                    }
                }
            }
        };
        let grants = self.grants_for(user, &project)?;
        Ok((project, grants))
    }

    pub fn grants_for(&self, user: &User, project: &str) -> Result<Grants, AuthError> {
        let p = self.project_named(project)?;
        let member = p.owner == Some(user.id) || self.store.members(p.id)?.contains(&user.id);
        if !member {
            return Err(AuthError::NotAllowed(format!(
                "you are not a member of project '{project}'"
            )));
        }
        let mut grants = Grants::default();
        for (datastore, variable) in self.store.grants(p.id)? {
            let entry = grants.0.entry(datastore).or_insert_with(|| Some(BTreeSet::new()));
            match (entry, variable) {
                (entry, None) => *entry = None,
                (Some(set), Some(v)) => {
                    set.insert(v);
                }
                (None, Some(_)) => {}
            }
        }
        Ok(grants)
    }
}

#[cfg(test)]
mod tests;
