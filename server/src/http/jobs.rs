//! `/api/jobs`: batch jobs and the records of interactive runs; `/api/tokens`: the personal
//! access tokens the batch client signs in with.
//!
//! A jobs request is signed in by a session cookie (with the session's CSRF token on writes)
//! or by `Authorization: Bearer skj_…`. A token request is judged by the token alone: its
//! cookies are not read, so a token cannot borrow a session, and CSRF does not apply to it (a
//! browser never adds the header by itself). Tokens are made and revoked from a session only.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shared::api::{
    AccessTokenInfo, CreatedAccessToken, JobDetail, JobState, JobSummary, NewAccessToken, SubmitJob,
};

use super::AppError;
use super::auth::{Need, blocking, signed_in};
use crate::AppState;
use crate::identity::User;
use crate::identity::store::AccessToken;
use crate::jobs::{self, SubmitError};

/// Jobs one listing shows.
const MAX_LISTED: u32 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list).post(submit))
        .route("/jobs/{id}", get(detail))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/progress", get(progress))
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
}

/// The caller of a jobs request: a token's user, or a fully signed-in session's.
async fn caller(state: &AppState, headers: &HeaderMap, method: &Method) -> Result<User, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .map(str::to_owned)
            .ok_or_else(|| AppError::Unauthorized {
                message: "send the token as: Authorization: Bearer skj_…".into(),
                code: "signed_out",
            })?;
        return blocking(state, move |identity| identity.token_user(&token)).await;
    }
    // Reading jobs is not activity: a Jobs page that polls must not keep an idle session alive.
    let activity = *method != Method::GET;
    Ok(signed_in(state, headers, method, Need::Active, activity).await?.user)
}

#[derive(serde::Deserialize)]
struct Listing {
    #[serde(default)]
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(listing): Query<Listing>,
) -> Result<Json<Vec<JobSummary>>, AppError> {
    let user = caller(&state, &headers, &Method::GET).await?;
    let limit = listing.limit.unwrap_or(MAX_LISTED).clamp(1, MAX_LISTED);
    let jobs = blocking(&state, move |identity| {
        Ok(identity.store.jobs_of(&jobs::owner_of(&user), limit)?)
    })
    .await?;
    Ok(Json(jobs))
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, AppError> {
    let user = caller(&state, &headers, &Method::POST).await?;
    super::run::within_script_limit(&body)?;
    let request: SubmitJob = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest {
        parameter: "body",
        message: format!("{e}: send {{\"script\": \"…\", \"project\": \"…\"}}"),
    })?;
    let submitted = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            jobs::submit(&state, &user, request.project, request.script)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the submit task failed: {e}"))?
    };
    match submitted {
        Ok(summary) => Ok((StatusCode::ACCEPTED, Json(summary))),
        Err(SubmitError::Auth(e)) => Err(AppError::from_auth(e)),
        Err(full @ SubmitError::QueueFull(_)) => {
            Err(AppError::TooManyRequests(super::rate_limit::Limited {
                message: full.to_string(),
                retry_after: std::time::Duration::from_secs(60),
            }))
        }
    }
}

/// A job of the caller's; someone else's job is as unknown as one that does not exist.
async fn own_job(state: &AppState, user: &User, id: i64) -> Result<jobs::JobRecord, AppError> {
    let owner = jobs::owner_of(user);
    let record = blocking(state, move |identity| Ok(identity.store.job(id)?)).await?;
    record.filter(|r| r.owner == owner).ok_or_else(|| AppError::NotFound {
        message: format!("you have no job {id}: list yours with GET /api/jobs"),
        did_you_mean: Vec::new(),
    })
}

async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<JobDetail>, AppError> {
    let user = caller(&state, &headers, &Method::GET).await?;
    let record = own_job(&state, &user, id).await?;
    let outputs = record.outputs.as_ref().map(jobs::StoredOutputs::outputs).unwrap_or_default();
    Ok(Json(JobDetail { summary: record.summary, script: record.script, outputs }))
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<JobSummary>, AppError> {
    let user = caller(&state, &headers, &Method::POST).await?;
    let record = own_job(&state, &user, id).await?;
    if record.summary.state.is_finished() {
        return Err(AppError::Conflict(format!(
            "job {id} is {} already: there is nothing to cancel",
            record.summary.state.as_str()
        )));
    }
    let owner = record.owner.clone();
    {
        let state = state.clone();
        tokio::task::spawn_blocking(move || jobs::cancel(&state, &owner, id))
            .await
            .map_err(|e| anyhow::anyhow!("the cancel task failed: {e}"))?
            .map_err(AppError::from_auth)?;
    }
    Ok(Json(own_job(&state, &user, id).await?.summary))
}

/// A progress stream reads the job's record at most this often.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// A job queued, or running in another process, is read again this often.
const FOLLOW_IDLE: std::time::Duration = std::time::Duration::from_millis(750);
/// A stream ends after this long even if its job has not; the client opens another.
const FOLLOW_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// `GET /api/jobs/{id}/progress`: NDJSON, one `{"job": summary}` line now and one at each
/// change (state, step, error) until the job has finished, whose last line it is. The steps
/// of a run in this process come as it reaches them; those of one queued or elsewhere, as its
/// record is written. A stream lasts at most [`FOLLOW_FOR`].
async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, AppError> {
    let user = caller(&state, &headers, &Method::GET).await?;
    let first = own_job(&state, &user, id).await?;
    let Some(follower) = state.jobs.open_follower(&first.owner) else {
        return Err(AppError::TooManyRequests(super::rate_limit::Limited {
            message: format!(
                "you have {} progress streams open: close a Jobs page, or read GET /api/jobs/{id}",
                jobs::FOLLOWERS_PER_OWNER
            ),
            retry_after: std::time::Duration::from_secs(10),
        }));
    };
    let (lines, received) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        let _follower = follower;
        let until = tokio::time::Instant::now() + FOLLOW_FOR;
        let mut summary = first.summary;
        let mut sent = None::<JobSummary>;
        loop {
            let live = state.jobs.follow(id);
            if let (Some(p), JobState::Running) =
                (live.as_ref().and_then(|l| l.borrow().clone()), summary.state)
            {
                summary.step = u32::try_from(p.step).unwrap_or(u32::MAX);
                summary.steps = u32::try_from(p.of).unwrap_or(u32::MAX);
                summary.command = p.command;
            }
            if sent.as_ref() != Some(&summary) {
                let line = serde_json::json!({ "job": summary }).to_string() + "\n";
                if lines.send(line).await.is_err() {
                    return; // the client has gone
                }
                sent = Some(summary.clone());
            }
            if summary.state.is_finished() || tokio::time::Instant::now() >= until {
                return;
            }
            match live {
                Some(mut live) => {
                    // Steps come faster than anyone reads them: wait for one, then a moment.
                    let _ = tokio::time::timeout(FOLLOW_IDLE, live.changed()).await;
                    tokio::time::sleep(FOLLOW_EVERY).await;
                }
                None => tokio::time::sleep(FOLLOW_IDLE).await,
            }
            let read = blocking(&state, move |identity| Ok(identity.store.job(id)?)).await;
            match read {
                Ok(Some(record)) => summary = record.summary,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(job = id, error = ?e, "a progress stream cannot read its job");
                    return;
                }
            }
        }
    });
    let mut received = received;
    // poll_fn, not unfold: the compression layer polls once more after the end.
    let body = futures::stream::poll_fn(move |cx| {
        received.poll_recv(cx).map(|line| line.map(Ok::<_, std::convert::Infallible>))
    });
    let mut response = axum::body::Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

fn token_info(t: AccessToken) -> AccessTokenInfo {
    AccessTokenInfo {
        id: t.id,
        name: t.name,
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
    }
}

/// Tokens are managed from a browser session only: a token cannot make another.
async fn session_user(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<User, AppError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(AppError::Forbidden(
            "tokens are made and revoked in the app, signed in, not with a token".into(),
        ));
    }
    Ok(signed_in(state, headers, method, Need::Active, true).await?.user)
}

async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<AccessTokenInfo>>, AppError> {
    let user = session_user(&state, &headers, &Method::GET).await?;
    let tokens = blocking(&state, move |identity| identity.tokens(&user)).await?;
    Ok(Json(tokens.into_iter().map(token_info).collect()))
}

async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<NewAccessToken>,
) -> Result<impl IntoResponse, AppError> {
    let user = session_user(&state, &headers, &Method::POST).await?;
    let (token, record) =
        blocking(&state, move |identity| identity.create_token(&user, &request.name, request.days))
            .await?;
    Ok((StatusCode::CREATED, Json(CreatedAccessToken { token, info: token_info(record) })))
}

async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let user = session_user(&state, &headers, &Method::DELETE).await?;
    blocking(&state, move |identity| identity.revoke_token(&user, id)).await?;
    Ok(Json(serde_json::json!({ "revoked": id })))
}
