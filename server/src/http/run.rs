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
    let limits = state.rate_limits.clone();
    let run_user = user.clone();
    let owned_keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    // The run goes to the blocking pool: its CPU-heavy loops (tabulate over millions of rows)
    // must not hold the async workers that serve everyone else. DataFusion's own async work
    // still runs on the runtime, through the handle.
    let runtime = tokio::runtime::Handle::current();
    let (lines, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let run = tokio::task::spawn_blocking(move || {
        let mut workspace = workspace.blocking_lock();
        let tell = |p: crate::engine::Progress| {
            if streaming {
                let _ = lines.send(serde_json::json!({ "progress": p }).to_string());
            }
        };
        let (outputs, _) = runtime.block_on(engine.run_with_progress(
            &mut workspace,
            &request.script,
            audit.as_ref(),
            &run_user,
            &tell,
        ));
        let keys: Vec<&str> = owned_keys.iter().map(String::as_str).collect();
        limits.spend_outputs(&keys, outputs.len(), Instant::now());
        outputs
    });
    if streaming {
        // NDJSON: one {"progress": …} line as each command starts, then {"outputs": […]}.
        let body =
            futures::stream::unfold((Some(run), received), |(run, mut received)| async move {
                if let Some(line) = received.recv().await {
                    return Some((Ok::<_, std::convert::Infallible>(line + "\n"), (run, received)));
                }
                let outputs = match run?.await {
                    Ok(outputs) => {
                        serde_json::to_string(&RunResponse { outputs }).unwrap_or_default()
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the run task failed");
                        serde_json::json!({ "error": "internal error; it has been logged" })
                            .to_string()
                    }
                };
                Some((Ok(outputs + "\n"), (None, received)))
            });
        let mut response = axum::body::Body::from_stream(body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        return with_cookie(response, new_cookie.then_some(id.as_str()));
    }
    received.close();
    let outputs = run.await.map_err(|e| anyhow::anyhow!("the run task failed: {e}"))?;
    with_cookie(Json(RunResponse { outputs }).into_response(), new_cookie.then_some(id.as_str()))
}

/// Sets the guest cookie on a new guest's first response.
fn with_cookie(mut response: Response, new_guest: Option<&str>) -> Result<Response, AppError> {
    if let Some(id) = new_guest {
        let cookie = format!("{COOKIE}={id}; Path=/api; HttpOnly; SameSite=Strict");
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}
