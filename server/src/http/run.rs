//! `POST /api/run`: runs a script in the caller's workspace and answers with released outputs.
//!
//! A signed-in caller runs in the workspace of one of their projects, which may import only
//! what the project is granted. Without a session the caller is a *guest* (when the server
//! allows guests): a random id in an HttpOnly, SameSite=Strict cookie names a workspace that
//! may bind only the `demo` datastore. A caller whose session cookie is stale is told to sign
//! in again, not quietly made a guest.

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
use super::auth::{Need, blocking, signed_in};
use crate::AppState;
use crate::disclosure::Released;
use crate::engine::{RunControl, Workspace};
use crate::jobs::NewJob;
use shared::api::{JobKind, JobState};

const COOKIE: &str = "skjold_guest";
/// The guest cookie's name behind TLS: a `__Host-` cookie must be Secure, for the whole host
/// and no domain, so neither a sibling domain nor plain HTTP can plant or read one.
const SECURE_COOKIE: &str = "__Host-skjold_guest";
/// The datastores a guest may bind.
pub const GUEST_DATASTORES: &[&str] = &["demo"];
/// Guests kept in memory; the least recently used is dropped beyond this.
const MAX_GUESTS: usize = 1000;
/// Scripts longer than this are refused before parsing.
const MAX_SCRIPT_BYTES: usize = 256 * 1024;

/// Refuses a request body over [`MAX_SCRIPT_BYTES`] before it is parsed (runs and batch jobs).
pub(super) fn within_script_limit(body: &[u8]) -> Result<(), AppError> {
    if body.len() > MAX_SCRIPT_BYTES {
        return Err(AppError::BadRequest {
            parameter: "script",
            message: format!("the script is over {} KiB: split it", MAX_SCRIPT_BYTES / 1024),
        });
    }
    Ok(())
}

type SharedWorkspace = Arc<tokio::sync::Mutex<Workspace>>;

/// Workspaces kept in memory between runs: guests' by cookie id, users' by user and project.
/// Bounded in count and in bytes: beyond either, the least recently used are dropped.
pub struct Workspaces {
    workspaces: Mutex<HashMap<String, Kept>>,
    /// All workspaces' bytes together, at most.
    total_bytes: usize,
}

struct Kept {
    last_use: Instant,
    /// What the workspace held after its last run.
    bytes: usize,
    workspace: SharedWorkspace,
}

/// The guests' workspaces; `AppState::guests` is `None` when guests are switched off.
pub type Guests = Workspaces;

impl Workspaces {
    pub fn new(total_bytes: usize) -> Workspaces {
        Workspaces { workspaces: Mutex::default(), total_bytes }
    }

    fn workspace(&self, id: &str, make: impl FnOnce() -> Workspace) -> SharedWorkspace {
        let mut map = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(id) && map.len() >= MAX_GUESTS {
            evict_oldest(&mut map, id);
        }
        let entry = map.entry(id.to_owned()).or_insert_with(|| Kept {
            last_use: Instant::now(),
            bytes: 0,
            workspace: Arc::new(tokio::sync::Mutex::new(make())),
        });
        entry.last_use = Instant::now();
        entry.workspace.clone()
    }

    /// After a run: records what workspace `id` holds now, and drops the least recently used
    /// others until all together fit the budget.
    fn settle(&self, id: &str, bytes: usize) {
        let mut map = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(kept) = map.get_mut(id) {
            kept.bytes = bytes;
        }
        while map.values().map(|k| k.bytes).sum::<usize>() > self.total_bytes {
            if !evict_oldest(&mut map, id) {
                break;
            }
        }
    }

    /// Workspaces kept and their bytes together.
    pub fn held(&self) -> (usize, usize) {
        let map = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        (map.len(), map.values().map(|k| k.bytes).sum())
    }
}

/// Drops the least recently used workspace other than `keep`; false when there is none.
fn evict_oldest(map: &mut HashMap<String, Kept>, keep: &str) -> bool {
    let oldest = map
        .iter()
        .filter(|(k, _)| k.as_str() != keep)
        .min_by_key(|(_, kept)| kept.last_use)
        .map(|(k, _)| k.clone());
    oldest.is_some_and(|k| map.remove(&k).is_some())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/run", post(run)).route("/order", post(order))
}

/// A request whose body is a script as JSON (`/api/run`, `/api/order`): its content type, its
/// size and its shape checked, each refusal naming the fix.
fn script_request<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, AppError> {
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
    within_script_limit(body)?;
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest {
        parameter: "body",
        message: format!("{e}: send {{\"script\": \"…\"}}"),
    })
}

/// `POST /api/order` takes a script and nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRequest {
    script: String,
}

/// `POST /api/order`: the data order of a script (`crate::order`), for an application for
/// access to the full microdata. Open to everyone, as the catalogue is: it reads only the
/// script and the catalogue, never data.
async fn order(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<shared::api::OrderResponse>, AppError> {
    let request: OrderRequest = script_request(&headers, &body)?;
    let max_commands = state.engine.limits.max_commands;
    let order = crate::order::data_order(&request.script, state.engine.registry(), max_commands)
        .map_err(|e| {
            AppError::Refused(format!("the script cannot be read, so no order is made: {e}"))
        })?;
    let text = crate::order::order_text(&order);
    Ok(Json(shared::api::OrderResponse { order, text }))
}

#[derive(serde::Serialize)]
struct RunResponse {
    /// The run's job record, when the database took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<i64>,
    outputs: Vec<Released>,
}

fn guest_id(headers: &HeaderMap, secure: bool) -> Option<String> {
    super::auth::cookie(headers, if secure { SECURE_COOKIE } else { COOKIE }, 32)
}

/// A signed-in caller's run: who, in which project, and the workspace of that project.
struct UserRun {
    user: crate::identity::User,
    project: String,
    key: String,
    workspace: SharedWorkspace,
}

/// The workspace of a signed-in caller: their project's, with its grants.
async fn user_workspace(
    state: &AppState,
    headers: &HeaderMap,
    project: Option<String>,
) -> Result<UserRun, AppError> {
    let caller = signed_in(state, headers, &axum::http::Method::POST, Need::Active, true).await?;
    let user = caller.user.clone();
    let (project, grants) =
        blocking(state, move |identity| identity.project_for_run(&user, project)).await?;
    let key = format!("user:{}:{project}", caller.user.id);
    let workspace = state.workspaces.workspace(&key, || Workspace::with_grants(grants.clone()));
    // Grants may have changed since the workspace was made; the newest apply.
    workspace.lock().await.set_grants(grants);
    Ok(UserRun { user: caller.user, project, key, workspace })
}

async fn run(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let request: RunRequest = script_request(&headers, &body)?;
    let signed_in_user = super::auth::cookie(&headers, super::auth::SESSION_COOKIE, 64).is_some();
    let secure = state.identity.settings.secure_cookies();
    let (user, kept, workspace, new_guest, job) = if signed_in_user {
        let run = user_workspace(&state, &headers, request.project.clone()).await?;
        let job = NewJob {
            owner: crate::jobs::owner_of(&run.user),
            user_id: Some(run.user.id),
            project: Some(run.project),
            kind: JobKind::Interactive,
            script: request.script.clone(),
            state: JobState::Running,
            now_ms: crate::jobs::now_ms(),
        };
        (run.user.name, (state.workspaces.clone(), run.key), run.workspace, None, job)
    } else {
        let Some(guests) = state.guests.clone() else {
            return Err(AppError::Unauthorized {
                message: "sign in to run scripts on this server".into(),
                code: "signed_out",
            });
        };
        let (id, new_cookie) = match guest_id(&headers, secure) {
            Some(id) => (id, false),
            None => {
                let bytes: [u8; 16] = rand::random();
                (bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(), true)
            }
        };
        let budget = state.engine.limits.guest_workspace_mb * 1024 * 1024;
        let workspace = guests.workspace(&id, || {
            let mut workspace = Workspace::restricted_to(GUEST_DATASTORES);
            workspace.set_byte_budget(budget);
            workspace
        });
        let user = format!("guest:{}", &id[..8]);
        let job = NewJob {
            // The cookie is the guest's credential: the record keeps a hash of it.
            owner: format!("guest:{}", &crate::identity::sha256_hex(&id)[..16]),
            user_id: None,
            project: None,
            kind: JobKind::Interactive,
            script: request.script.clone(),
            state: JobState::Running,
            now_ms: crate::jobs::now_ms(),
        };
        (user, (guests, id.clone()), workspace, new_cookie.then_some(id), job)
    };
    // Per user and per address: a guest who drops the cookie is still the same address.
    let address =
        extensions.get::<super::auth::ClientAddress>().map(|c| format!("address:{}", c.0));
    let keys: Vec<&str> = std::iter::once(user.as_str()).chain(address.as_deref()).collect();
    state.rate_limits.admit(&keys, Instant::now()).map_err(|limited| {
        tracing::warn!(%user, "run refused by the rate limit");
        AppError::TooManyRequests(limited)
    })?;
    let in_flight = state.rate_limits.begin(&keys).map_err(AppError::TooManyRequests)?;
    // The turn is taken here, and held by the run to its end, even when the client has gone.
    let turn = state.rate_limits.turn().await;
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
    // The gate's memory is the user's (a guest's: their address's), whatever the workspace:
    // a new cookie, another project or a restart starts from what was released before.
    let memory_owner = match (&job.user_id, &address) {
        (Some(_), _) => job.owner.clone(),
        (None, Some(address)) => format!("guest-{address}"),
        (None, None) => job.owner.clone(),
    };
    let memories = state.memories.clone();
    let memory = {
        let (memories, owner) = (memories.clone(), memory_owner.clone());
        tokio::task::spawn_blocking(move || memories.of(&owner))
            .await
            .map_err(|e| anyhow::anyhow!("the memory task failed: {e}"))?
            .map_err(|e| anyhow::anyhow!("cannot read the disclosure memory: {e}"))?
    };
    let jobs = state.jobs.clone();
    let store = state.identity.store.clone();
    let run = tokio::task::spawn_blocking(move || {
        let _running = (in_flight, turn);
        let mut workspace = workspace.blocking_lock();
        workspace.set_memory(memory);
        // The record comes first: a run the server does not live to finish is found at the
        // next start. Without the database the run still goes on; the log says so.
        let id = store
            .insert_job(&job)
            .inspect_err(|e| tracing::error!(error = %e, "cannot record a run as a job"))
            .ok();
        let cancelled = id.map(|id| jobs.register(id)).unwrap_or_default();
        let tell = |p: crate::engine::Progress| {
            if let Some(id) = id {
                jobs.publish(id, &p);
            }
            if streaming {
                let _ = lines.send(serde_json::json!({ "progress": p }).to_string());
            }
        };
        let control = RunControl { progress: &tell, cancelled: cancelled.clone() };
        let (outputs, _) = runtime.block_on(engine.run_controlled(
            &mut workspace,
            &request.script,
            audit.as_ref(),
            &run_user,
            &control,
        ));
        if let Some(id) = id {
            jobs.unregister(id);
            let finish = crate::jobs::finish_of(
                &outputs,
                cancelled.load(std::sync::atomic::Ordering::SeqCst),
                workspace.bound_datastores(),
            );
            if let Err(e) = store.finish_job(id, &finish) {
                tracing::error!(job = id, error = %e, "cannot record a finished run");
            }
        }
        if let Err(e) = memories.save(&memory_owner) {
            tracing::error!(error = %e, "cannot save the disclosure memory; it is kept in memory");
        }
        let keys: Vec<&str> = owned_keys.iter().map(String::as_str).collect();
        limits.spend_outputs(&keys, outputs.len(), Instant::now());
        let (workspaces, key) = kept;
        workspaces.settle(&key, workspace.approximate_bytes());
        (id, outputs)
    });
    if streaming {
        // NDJSON: one {"progress": …} line as each command starts, then {"outputs": […]}.
        let body =
            futures::stream::unfold((Some(run), received), |(run, mut received)| async move {
                if let Some(line) = received.recv().await {
                    return Some((Ok::<_, std::convert::Infallible>(line + "\n"), (run, received)));
                }
                let outputs = match run?.await {
                    Ok((job, outputs)) => {
                        serde_json::to_string(&RunResponse { job, outputs }).unwrap_or_default()
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the run task failed");
                        serde_json::json!({ "error": "internal error; it has been logged" })
                            .to_string()
                    }
                };
                Some((Ok(outputs + "\n"), (None, received)))
            });
        // Fused: the compression layer polls once more after the end, and an unfold polled
        // after its end panics (which broke every streamed run of a browser asking for gzip).
        let mut response =
            axum::body::Body::from_stream(futures::StreamExt::fuse(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        return with_cookie(response, new_guest.as_deref(), secure);
    }
    received.close();
    let (job, outputs) = run.await.map_err(|e| anyhow::anyhow!("the run task failed: {e}"))?;
    with_cookie(Json(RunResponse { job, outputs }).into_response(), new_guest.as_deref(), secure)
}

/// Sets the guest cookie on a new guest's first response.
fn with_cookie(
    mut response: Response,
    new_guest: Option<&str>,
    secure: bool,
) -> Result<Response, AppError> {
    if let Some(id) = new_guest {
        let cookie = if secure {
            format!("{SECURE_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
        } else {
            format!("{COOKIE}={id}; Path=/api; HttpOnly; SameSite=Strict")
        };
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the review's finding that guests' workspaces were bounded only in count: the
    /// bytes of all of them together are bounded too, the least recently used going first.
    #[test]
    fn workspaces_past_their_total_bytes_evict_the_least_recently_used() {
        let kept = Workspaces::new(100);
        let _ = kept.workspace("first", Workspace::default);
        kept.settle("first", 60);
        let _ = kept.workspace("second", Workspace::default);
        kept.settle("second", 30);
        assert_eq!(kept.held(), (2, 90));
        let _ = kept.workspace("first", Workspace::default);
        let _ = kept.workspace("third", Workspace::default);
        kept.settle("third", 30);
        // 120 bytes: "second" was used longest ago and goes; "first" was used again.
        assert_eq!(kept.held(), (2, 90));
        let map = kept.workspaces.lock().unwrap();
        assert!(map.contains_key("first") && map.contains_key("third"));
        drop(map);
        // One workspace alone over the total is kept: it was just used.
        kept.settle("third", 500);
        assert_eq!(kept.held(), (1, 500));
    }
}
