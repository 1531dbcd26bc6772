//! Signing in and out, sessions, terms, enrolment and the caller's own account.
//!
//! Sessions are server-side (`identity::Session`); the browser holds only a random id in an
//! HttpOnly, SameSite=Strict cookie (Secure behind TLS). Every state-changing request of a
//! signed-in caller carries the session's CSRF token in `X-CSRF-Token`, compared in constant
//! time. Each sign-in step issues a new session id, so an id planted before sign-in is worth
//! nothing after it.

use std::net::IpAddr;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::api::{
    CodeRequest, EnrolRequest, EnrolStatus, EnrolmentLink, LoginRequest, PasskeyBegin,
    PasskeyChallenge, PasskeyFinish, PasswordChange, Reauthentication, SessionInfo, Terms,
    TotpSetup,
};

use super::AppError;
use crate::AppState;
use crate::identity::passkey::Registrant;
use crate::identity::{AuthError, Identity, Method as SignInMethod, NewSession, SignedIn, Stage};

pub const SESSION_COOKIE: &str = "skjold_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The client's address as the country gate resolved it (trusted proxies considered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", get(session_info))
        .route("/session/keepalive", post(keepalive))
        .route("/auth/login", post(login))
        .route("/auth/totp", post(totp))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/terms", get(terms).post(accept_terms))
        .route("/account/password", post(change_password))
        .route("/account/delete", post(request_deletion))
        .route("/account/switch-method", post(switch_method))
        .route("/account/reauth", post(reauthenticate))
        .route("/account/reauth/passkey/start", post(reauth_passkey_start))
        .route("/enrol/status", post(enrol_status))
        .route("/enrol/password", post(enrol_password))
        .route("/enrol/totp", post(enrol_totp))
        .route("/auth/passkey/start", post(passkey_sign_in_start))
        .route("/auth/passkey/finish", post(passkey_sign_in_finish))
        .route("/enrol/passkey/start", post(enrol_passkey_start))
        .route("/enrol/passkey/finish", post(enrol_passkey_finish))
        .route("/account/passkeys/start", post(add_passkey_start))
        .route("/account/passkeys/finish", post(add_passkey_finish))
        // Names, passwords, codes and WebAuthn credentials are small; nothing here needs the
        // default 2 MB, which let one sign-in attempt carry a name of megabytes.
        .layer(axum::extract::DefaultBodyLimit::max(AUTH_BODY_LIMIT))
}

/// The largest body a sign-in, enrolment or account request may have.
pub const AUTH_BODY_LIMIT: usize = 16 * 1024;

/// The value of cookie `name`, if it looks like one of ours (64 hex digits).
pub fn cookie(headers: &HeaderMap, name: &str, length: usize) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, value)| {
            *n == name && value.len() == length && value.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(|(_, value)| value.to_owned())
}

/// Runs an identity operation (database, argon2) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    operation: impl FnOnce(&Identity) -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AppError> {
    let identity = state.identity.clone();
    tokio::task::spawn_blocking(move || operation(&identity))
        .await
        .map_err(|e| anyhow::anyhow!("identity task failed: {e}"))?
        .map_err(AppError::from_auth)
}

/// What a handler requires of the caller's session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any session, even half-way through signing in (sign out, session info).
    Any,
    /// The password was right and the TOTP code is next.
    SecondFactor,
    /// Signed in, possibly with a password to change first.
    PasswordChange,
    /// Signed in with the terms accepted or not (the terms page).
    Terms,
    /// Fully signed in, terms accepted: everything else.
    Active,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller's session, checked against `need`, the CSRF token (state-changing methods) and
/// counted as activity when `activity` is set.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    need: Need,
    activity: bool,
) -> Result<SignedIn, AppError> {
    let Some(cookie) = cookie(headers, SESSION_COOKIE, 64) else {
        return Err(AppError::from_auth(AuthError::NoSession));
    };
    let mut caller = blocking(state, move |identity| identity.session(&cookie)).await?;
    let stage = caller.session.stage;
    match (need, stage) {
        (Need::Any, _) | (Need::SecondFactor, Stage::SecondFactor) => {}
        (Need::SecondFactor, _) => {
            return Err(AppError::Refused("you are signed in already".into()));
        }
        (_, Stage::SecondFactor) => {
            return Err(AppError::Unauthorized {
                message: "enter the code from your authenticator app first".into(),
                code: "second_factor",
            });
        }
        (Need::PasswordChange, _) => {}
        (_, Stage::ChangePassword) => {
            return Err(AppError::ForbiddenCode {
                message: "change your password first".into(),
                code: "change_password",
            });
        }
        (Need::Terms, _) => {}
        (Need::Active, _) if caller.needs_terms => {
            return Err(AppError::ForbiddenCode {
                message: "accept the terms of use first".into(),
                code: "terms",
            });
        }
        (Need::Active, _) => {}
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
        if !constant_time_eq(sent, caller.session.csrf.as_bytes()) {
            return Err(AppError::ForbiddenCode {
                message: "the request lacks this session's X-CSRF-Token: reload the page".into(),
                code: "csrf",
            });
        }
    }
    if activity {
        caller = blocking(state, move |identity| {
            let mut caller = caller;
            identity.touch(&mut caller).map(|()| caller)
        })
        .await?;
    }
    Ok(caller)
}

pub fn info(state: &AppState, caller: Option<&SignedIn>) -> SessionInfo {
    let settings = &state.identity.settings;
    let mut info = SessionInfo {
        guest_workspace: state.guests.is_some(),
        idle_warning: settings.idle_warning_seconds,
        ..SessionInfo::default()
    };
    if let Some(c) = caller {
        info.signed_in = c.session.stage == Stage::Active;
        info.user = Some(c.user.name.clone());
        info.display_name = Some(c.user.display_name.clone());
        info.role = Some(c.user.role.as_str().into());
        info.method = Some(c.user.method.as_str().into());
        info.stage = Some(
            match c.session.stage {
                Stage::SecondFactor => "second_factor",
                Stage::ChangePassword => "change_password",
                Stage::Active => "active",
            }
            .into(),
        );
        info.needs_terms = c.needs_terms;
        info.csrf = Some(c.session.csrf.clone());
        info.idle_left = c.idle_left;
    }
    info
}

fn set_cookie(response: &mut Response, value: &str, secure: bool, max_age: Option<i64>) {
    let mut cookie = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A response that carries a new session: its cookie, and its info with the CSRF token.
async fn with_new_session(state: &AppState, new: NewSession) -> Result<Response, AppError> {
    let cookie = new.cookie.clone();
    let caller = blocking(state, move |identity| identity.session(&new.cookie)).await?;
    let mut response = Json(info(state, Some(&caller))).into_response();
    set_cookie(&mut response, &cookie, state.identity.settings.secure_cookies(), None);
    Ok(response)
}

fn signed_out_response(state: &AppState) -> Response {
    let mut response = Json(info(state, None)).into_response();
    set_cookie(&mut response, "", state.identity.settings.secure_cookies(), Some(0));
    response
}

async fn session_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Reading the session is not activity: the app polls this to time the idle prompt.
    match signed_in(&state, &headers, &Method::GET, Need::Any, false).await {
        Ok(caller) => Json(info(&state, Some(&caller))).into_response(),
        Err(_) if cookie(&headers, SESSION_COOKIE, 64).is_some() => signed_out_response(&state),
        Err(_) => Json(info(&state, None)).into_response(),
    }
}

async fn keepalive(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::PasswordChange, true).await?;
    Ok(Json(info(&state, Some(&caller))).into_response())
}

fn address(client: Option<Extension<ClientAddress>>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |Extension(ClientAddress(a))| a.to_string())
}

async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddress>>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, AppError> {
    let address = address(client);
    let new = blocking(&state, move |identity| {
        identity.login_password(&request.user, &request.password, &address)
    })
    .await?;
    with_new_session(&state, new).await
}

async fn totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
    Json(request): Json<CodeRequest>,
) -> Result<Response, AppError> {
    let pending = signed_in(&state, &headers, &Method::POST, Need::SecondFactor, false).await?;
    let address = address(client);
    let new = blocking(&state, move |identity| {
        identity.login_totp(&pending.session, &request.code, &address)
    })
    .await?;
    with_new_session(&state, new).await
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
) -> Result<Response, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Any, false).await?;
    let address = address(client);
    blocking(&state, move |identity| identity.logout(&caller, &address)).await?;
    Ok(signed_out_response(&state))
}

async fn logout_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
) -> Result<Response, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::PasswordChange, false).await?;
    let address = address(client);
    blocking(&state, move |identity| identity.logout_everywhere(&caller, &address)).await?;
    Ok(signed_out_response(&state))
}

async fn terms(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Terms>, AppError> {
    let (version, text) = state.identity.terms();
    let (version, text) = (version, text.to_owned());
    // Readable before signing in too; the accepted version only for a signed-in caller.
    let accepted_version = match signed_in(&state, &headers, &Method::GET, Need::Terms, false).await
    {
        Ok(caller) => {
            let user = caller.user.id;
            blocking(&state, move |identity| Ok(identity.store.accepted_terms(user)?)).await?
        }
        Err(_) => None,
    };
    Ok(Json(Terms { version, text, accepted_version }))
}

#[derive(serde::Deserialize)]
struct AcceptTerms {
    version: u32,
}

async fn accept_terms(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<AcceptTerms>,
) -> Result<Response, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Terms, true).await?;
    let cookie = cookie(&headers, SESSION_COOKIE, 64).unwrap_or_default();
    let caller = blocking(&state, move |identity| {
        identity.accept_terms(&caller, request.version)?;
        identity.session(&cookie)
    })
    .await?;
    Ok(Json(info(&state, Some(&caller))).into_response())
}

async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
    Json(request): Json<PasswordChange>,
) -> Result<Response, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::PasswordChange, true).await?;
    let address = address(client);
    let new = blocking(&state, move |identity| {
        identity.change_password(&caller, &request.current, &request.new, &address)
    })
    .await?;
    with_new_session(&state, new).await
}

#[derive(serde::Serialize)]
struct DeletionScheduled {
    /// Unix seconds: when the account goes unless a steward acts first.
    deleted_by: i64,
}

async fn request_deletion(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<DeletionScheduled>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Terms, true).await?;
    let deleted_by = blocking(&state, move |identity| identity.request_deletion(&caller)).await?;
    Ok(Json(DeletionScheduled { deleted_by }))
}

/// A signed-in user switches sign-in method through a fresh enrolment link of their own,
/// after proving again that they hold the account (`reauth`): a session alone (left open on a
/// shared machine, say) must not be enough to give the account a credential of someone else's.
async fn switch_method(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<EnrolmentLink>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let link = blocking(&state, move |identity| {
        identity.require_recent_reauthentication(&caller)?;
        identity.enrolment_link(&caller.user)
    })
    .await?;
    Ok(Json(EnrolmentLink { link, mailed: None }))
}

#[derive(serde::Serialize)]
struct Reauthenticated {
    /// Unix seconds: until when this session may switch method or add a passkey.
    confirmed_until: i64,
}

/// The caller proves the credential again: the password and a fresh code, or a passkey
/// assertion to a challenge from `reauth/passkey/start`. For a few minutes the session may
/// then switch method and add passkeys.
async fn reauthenticate(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
    Json(proof): Json<Reauthentication>,
) -> Result<Json<Reauthenticated>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let address = address(client);
    let confirmed_until = blocking(&state, move |identity| {
        identity.reauthenticate(&caller, &proof, &address)?;
        Ok(identity.now() + crate::identity::REAUTHENTICATION_SECONDS)
    })
    .await?;
    Ok(Json(Reauthenticated { confirmed_until }))
}

/// A challenge for a passkey user's re-authentication (see [`switch_method`]).
async fn reauth_passkey_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddress>>,
) -> Result<Json<PasskeyChallenge>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let address = address(client);
    let name = caller.user.name.clone();
    let (ceremony, options) =
        blocking(&state, move |identity| identity.start_passkey_sign_in(&name, &address)).await?;
    challenge(ceremony, options)
}

async fn enrol_status(
    State(state): State<AppState>,
    Json(request): Json<EnrolRequest>,
) -> Result<Json<EnrolStatus>, AppError> {
    let user = blocking(&state, move |identity| identity.enrolment(&request.token)).await?;
    Ok(Json(EnrolStatus {
        user: user.name,
        display_name: user.display_name,
        method: user.method.as_str().into(),
    }))
}

async fn enrol_password(
    State(state): State<AppState>,
    Json(request): Json<EnrolRequest>,
) -> Result<Json<TotpSetup>, AppError> {
    let password = request.password.ok_or_else(|| AppError::BadRequest {
        parameter: "password",
        message: "send the new password".into(),
    })?;
    let setup =
        blocking(&state, move |identity| identity.enrol_password(&request.token, &password))
            .await?;
    Ok(Json(TotpSetup {
        otpauth_uri: setup.otpauth_uri,
        secret: setup.secret,
        qr_svg: setup.qr_svg,
    }))
}

async fn enrol_totp(
    State(state): State<AppState>,
    Json(request): Json<CodeRequest>,
) -> Result<Json<serde_json::Value>, AppError> {
    let token = request.token.ok_or_else(|| AppError::BadRequest {
        parameter: "token",
        message: "send the enrolment token from the link".into(),
    })?;
    blocking(&state, move |identity| identity.confirm_password_enrolment(&token, &request.code))
        .await?;
    Ok(Json(serde_json::json!({ "enrolled": "password" })))
}

fn challenge(
    ceremony: String,
    options: impl serde::Serialize,
) -> Result<Json<PasskeyChallenge>, AppError> {
    let options = serde_json::to_value(options)
        .map_err(|e| anyhow::anyhow!("cannot encode the passkey options: {e}"))?;
    Ok(Json(PasskeyChallenge { ceremony, options }))
}

/// The authenticator's answer, in the shape webauthn-rs reads.
fn credential<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_json::from_value(value).map_err(|e| AppError::BadRequest {
        parameter: "credential",
        message: format!("not a WebAuthn credential ({e}): send PublicKeyCredential.toJSON()"),
    })
}

fn required(
    value: Option<String>,
    parameter: &'static str,
    what: &str,
) -> Result<String, AppError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AppError::BadRequest { parameter, message: format!("send {what}") })
}

async fn passkey_sign_in_start(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddress>>,
    Json(request): Json<PasskeyBegin>,
) -> Result<Json<PasskeyChallenge>, AppError> {
    let user = required(request.user, "user", "the user name")?;
    let address = address(client);
    let (ceremony, options) =
        blocking(&state, move |identity| identity.start_passkey_sign_in(&user, &address)).await?;
    challenge(ceremony, options)
}

async fn passkey_sign_in_finish(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddress>>,
    Json(request): Json<PasskeyFinish>,
) -> Result<Response, AppError> {
    let credential = credential(request.credential)?;
    let address = address(client);
    let new = blocking(&state, move |identity| {
        identity.finish_passkey_sign_in(&request.ceremony, &credential, &address)
    })
    .await?;
    with_new_session(&state, new).await
}

async fn enrol_passkey_start(
    State(state): State<AppState>,
    Json(request): Json<PasskeyBegin>,
) -> Result<Json<PasskeyChallenge>, AppError> {
    let token = required(request.token, "token", "the enrolment token from the link")?;
    let (ceremony, options) = blocking(&state, move |identity| {
        let user = identity.enrolment(&token)?;
        identity.start_passkey_registration(&user)
    })
    .await?;
    challenge(ceremony, options)
}

async fn enrol_passkey_finish(
    State(state): State<AppState>,
    Json(request): Json<PasskeyFinish>,
) -> Result<Json<serde_json::Value>, AppError> {
    let token = required(request.token, "token", "the enrolment token from the link")?;
    let credential = credential(request.credential)?;
    blocking(&state, move |identity| {
        identity.finish_passkey_registration(
            &request.ceremony,
            &credential,
            Registrant::Enrolment(&token),
        )
    })
    .await?;
    Ok(Json(serde_json::json!({ "enrolled": "passkey" })))
}

/// A signed-in passkey user registers another passkey (a second device, a spare key), after
/// proving again with one they have (`reauth`).
async fn add_passkey_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PasskeyChallenge>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    if caller.user.method != SignInMethod::Passkey {
        return Err(AppError::Refused(
            "this account signs in with a password: switch method to use passkeys".into(),
        ));
    }
    let (ceremony, options) = blocking(&state, move |identity| {
        identity.require_recent_reauthentication(&caller)?;
        identity.start_passkey_registration(&caller.user)
    })
    .await?;
    challenge(ceremony, options)
}

async fn add_passkey_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<PasskeyFinish>,
) -> Result<Json<serde_json::Value>, AppError> {
    let caller = signed_in(&state, &headers, &Method::POST, Need::Active, true).await?;
    let credential = credential(request.credential)?;
    let user = caller.user.id;
    let keep_session = caller.session.id_hash.clone();
    blocking(&state, move |identity| {
        identity.finish_passkey_registration(
            &request.ceremony,
            &credential,
            Registrant::SignedIn { user, keep_session: &keep_session },
        )
    })
    .await?;
    Ok(Json(serde_json::json!({ "added": "passkey" })))
}
