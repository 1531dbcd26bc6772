//! One error type for every handler: the status code and the JSON body `{"error": "…"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::api::ApiError;

use crate::identity::AuthError;

/// Errors a handler returns; each becomes a status and a message that tells the user what to do.
#[derive(Debug)]
pub enum AppError {
    BadRequest {
        parameter: &'static str,
        message: String,
    },
    NotFound {
        message: String,
        did_you_mean: Vec<String>,
    },
    /// 401: not signed in (or no longer); `code` tells the app which page to show.
    Unauthorized {
        message: String,
        code: &'static str,
    },
    Forbidden(String),
    /// 403 with a code the app acts on (terms, change_password, csrf, country).
    ForbiddenCode {
        message: String,
        code: &'static str,
    },
    /// 409: the thing exists already.
    Conflict(String),
    /// 422: well-formed but refused (a weak password, a wrong code).
    Refused(String),
    /// 429 with Retry-After.
    TooManyRequests(super::rate_limit::Limited),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> AppError {
        AppError::Internal(error.into())
    }
}

impl AppError {
    pub fn from_auth(error: AuthError) -> AppError {
        match error {
            AuthError::BadCredentials | AuthError::BadCode => {
                AppError::Unauthorized { message: error.to_string(), code: "bad_credentials" }
            }
            AuthError::Locked { retry_after } => {
                AppError::TooManyRequests(super::rate_limit::Limited {
                    message: error.to_string(),
                    retry_after: std::time::Duration::from_secs(retry_after.max(1) as u64),
                })
            }
            AuthError::NoSession => {
                AppError::Unauthorized { message: error.to_string(), code: "signed_out" }
            }
            AuthError::NotAllowed(message) => AppError::Forbidden(message),
            AuthError::BadEnrolment => AppError::Refused(error.to_string()),
            AuthError::Invalid(message) => AppError::Refused(message),
            AuthError::NotFound(message) => {
                AppError::NotFound { message, did_you_mean: Vec::new() }
            }
            AuthError::Store(crate::identity::StoreError::Conflict(message)) => {
                AppError::Conflict(message)
            }
            AuthError::Store(e) => AppError::Internal(e.into()),
        }
    }
}

/// Seconds a client is told to wait when the application database is unavailable.
const DATABASE_RETRY_AFTER: u64 = 5;

/// Whether `error` is the application database being locked by another process (past the
/// busy timeout), removed or replaced under the server, read-only or full: a state of the machine, not a bug, which passes
/// when an administrator's command ends or the disk is mended. The request failed as a whole
/// (each change is one transaction), so the client may send it again.
fn database_unavailable(error: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode;
    let gone = |e: &(dyn std::error::Error + 'static)| {
        matches!(e.downcast_ref(), Some(crate::identity::StoreError::Gone(_)))
    };
    error.chain().any(gone)
        || error.chain().filter_map(|e| e.downcast_ref::<rusqlite::Error>()).any(|e| {
            matches!(
                e.sqlite_error_code(),
                Some(
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::CannotOpen
                        | ErrorCode::ReadOnly
                        | ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                )
            )
        })
}

fn body(error: String, code: Option<&str>) -> ApiError {
    ApiError { error, did_you_mean: Vec::new(), code: code.map(str::to_owned) }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::BadRequest { parameter, message } => {
                (StatusCode::BAD_REQUEST, body(format!("parameter '{parameter}': {message}"), None))
            }
            AppError::NotFound { message, did_you_mean } => {
                (StatusCode::NOT_FOUND, ApiError { error: message, did_you_mean, code: None })
            }
            AppError::Unauthorized { message, code } => {
                (StatusCode::UNAUTHORIZED, body(message, Some(code)))
            }
            AppError::Forbidden(message) => (StatusCode::FORBIDDEN, body(message, None)),
            AppError::ForbiddenCode { message, code } => {
                (StatusCode::FORBIDDEN, body(message, Some(code)))
            }
            AppError::Conflict(message) => (StatusCode::CONFLICT, body(message, None)),
            AppError::Refused(message) => (StatusCode::UNPROCESSABLE_ENTITY, body(message, None)),
            AppError::TooManyRequests(limited) => {
                let retry = limited.retry_after.as_secs().to_string();
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, retry)],
                    Json(body(limited.message, Some("too_many"))),
                )
                    .into_response();
            }
            AppError::Internal(error) if database_unavailable(&error) => {
                tracing::warn!(error = format!("{error:#}"), "application database unavailable");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, DATABASE_RETRY_AFTER.to_string())],
                    Json(body(
                        format!(
                            "the application database is busy or cannot be reached; nothing was changed: try again in {DATABASE_RETRY_AFTER} seconds"
                        ),
                        Some("unavailable"),
                    )),
                )
                    .into_response();
            }
            AppError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("internal error; it has been logged".into(), None),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// axum's own refusals (a body over the limit: 413; JSON of the wrong shape: 400, 415 or 422)
/// answer in plain text; the API answers every error in the one JSON shape, so the app and
/// other clients read them all the same way.
pub async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is too large for this endpoint: send less".to_owned()
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("refused").to_owned(),
        _ => text,
    };
    let mut answer = (status, Json(body_of(message))).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

fn body_of(error: String) -> ApiError {
    body(error, None)
}
