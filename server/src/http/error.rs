//! The one error type of the HTTP layer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::api::ApiError;

/// 4xx errors carry a message for the user; 5xx errors are logged once with their cause and
/// reach the client as a generic message.
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
    Forbidden(String),
    /// 429 with Retry-After.
    TooManyRequests(super::rate_limit::Limited),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> AppError {
        AppError::Internal(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            AppError::BadRequest { parameter, message } => (
                StatusCode::BAD_REQUEST,
                ApiError {
                    error: format!("parameter '{parameter}': {message}"),
                    did_you_mean: Vec::new(),
                },
            ),
            AppError::NotFound { message, did_you_mean } => {
                (StatusCode::NOT_FOUND, ApiError { error: message, did_you_mean })
            }
            AppError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, ApiError { error: message, did_you_mean: Vec::new() })
            }
            AppError::TooManyRequests(limited) => {
                let body = ApiError { error: limited.message, did_you_mean: Vec::new() };
                let retry = limited.retry_after.as_secs().to_string();
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(axum::http::header::RETRY_AFTER, retry)],
                    Json(body),
                )
                    .into_response();
            }
            AppError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiError {
                        error: "internal error; it has been logged".into(),
                        did_you_mean: Vec::new(),
                    },
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
