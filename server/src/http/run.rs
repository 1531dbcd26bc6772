//! `POST /api/run`: runs a script in the caller's workspace and answers with released outputs.
//!
//! Until sign-in exists, a caller is a *guest*: a random id in an HttpOnly, SameSite=Strict
//! cookie names a workspace that may bind only the `demo` datastore. The body must be JSON,
//! which a cross-site form cannot send without a CORS preflight this server never grants; with
//! the SameSite cookie that is the CSRF defence until sessions bring tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use shared::api::RunRequest;

use super::AppError;
use crate::AppState;
use crate::disclosure::Released;
use crate::engine::Workspace;

const COOKIE: &str = "skjold_guest";
/// The datastores a guest may bind.
pub const GUEST_DATASTORES: &[&str] = &["demo"];
/// Guests kept in memory; the least recently used is dropped beyond this.
const MAX_GUESTS: usize = 1000;
/// Scripts longer than this are refused before parsing.
const MAX_SCRIPT_BYTES: usize = 256 * 1024;

type SharedWorkspace = Arc<tokio::sync::Mutex<Workspace>>;

/// Guest workspaces by cookie id.
#[derive(Default)]
pub struct Guests {
    /// Cookie id → (last use, workspace).
    workspaces: Mutex<HashMap<String, (Instant, SharedWorkspace)>>,
}

impl Guests {
    fn workspace(&self, id: &str) -> SharedWorkspace {
        let mut map = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(id)
            && map.len() >= MAX_GUESTS
            && let Some(oldest) = map.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let entry = map.entry(id.to_owned()).or_insert_with(|| {
            (
                Instant::now(),
                Arc::new(tokio::sync::Mutex::new(Workspace::restricted_to(GUEST_DATASTORES))),
            )
        });
        entry.0 = Instant::now();
        entry.1.clone()
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/run", post(run))
}

#[derive(serde::Serialize)]
struct RunResponse {
    outputs: Vec<Released>,
}

fn guest_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| {
            *name == COOKIE && value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(|(_, value)| value.to_owned())
}

async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(guests) = state.guests.clone() else {
        return Err(AppError::Forbidden(
            "scripts run for signed-in users only on this server".into(),
        ));
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(AppError::BadRequest {
            parameter: "body",
            message:
                "send the script as JSON: {\"script\": \"…\"} with Content-Type: application/json"
                    .into(),
        });
    }
    if body.len() > MAX_SCRIPT_BYTES {
        return Err(AppError::BadRequest {
            parameter: "script",
            message: format!("the script is over {} KiB: split it", MAX_SCRIPT_BYTES / 1024),
        });
    }
    let request: RunRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        parameter: "body",
        message: format!("{e}: send {{\"script\": \"…\"}}"),
    })?;
    let (id, new_cookie) = match guest_id(&headers) {
        Some(id) => (id, false),
        None => {
            let bytes: [u8; 16] = rand::random();
            (bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(), true)
        }
    };
    let user = format!("guest:{}", &id[..8]);
    // Per user and per address: a guest who drops the cookie is still the same address.
    let address = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| format!("address:{}", c.0.ip()));
    let keys: Vec<&str> = std::iter::once(user.as_str()).chain(address.as_deref()).collect();
    state.rate_limits.admit(&keys, Instant::now()).map_err(|limited| {
        tracing::warn!(%user, "run refused by the rate limit");
        AppError::TooManyRequests(limited)
    })?;
    let workspace = guests.workspace(&id);
    let engine = state.engine.clone();
    let audit = state.audit.clone();
    let run_user = user.clone();
    // The run gets a task of its own, so a slow script never holds up this connection's task.
    let outputs = tokio::spawn(async move {
        let mut workspace = workspace.lock().await;
        engine.run(&mut workspace, &request.script, audit.as_ref(), &run_user).await
    })
    .await
    .map_err(|e| anyhow::anyhow!("the run task failed: {e}"))?;
    state.rate_limits.spend_outputs(&keys, outputs.len(), Instant::now());
    let mut response = Json(RunResponse { outputs }).into_response();
    if new_cookie {
        let cookie = format!("{COOKIE}={id}; Path=/api; HttpOnly; SameSite=Strict");
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}
