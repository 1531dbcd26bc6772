//! The HTTP API and the static app, one module per feature, each returning its own `Router`.

mod admin;
mod areas;
pub mod auth;
#[cfg(test)]
mod auth_tests;
mod catalog;
mod error;
mod guard;
mod headers;
mod health;
mod jobs;
pub mod rate_limit;
pub mod run;
#[cfg(test)]
mod tests;

use std::path::Path;

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::header;
use axum::response::IntoResponse;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use error::AppError;

use crate::AppState;

/// The whole application: `/api/…` and, for every other path, the browser app.
pub fn router(state: AppState, app_dir: &Path) -> Router {
    let api = Router::new()
        .merge(health::router())
        .nest("/catalog", catalog::router())
        .merge(run::router())
        .merge(auth::router())
        .merge(admin::router())
        .merge(areas::router())
        .merge(jobs::router())
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::same_origin_writes))
        .layer(axum::middleware::map_response(error::json_rejections))
        // Answers carry the CSRF token and private results: no cache may keep them.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        ));
    let hsts = state
        .identity
        .settings
        .secure_cookies()
        .then(|| header::HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    // The app routes in the browser, so unknown paths get index.html and the app decides.
    let index = app_dir.join("index.html");
    let app = ServeDir::new(app_dir).fallback(ServeFile::new(index));
    Router::new()
        .nest("/api", api)
        .fallback_service(app)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::country))
        .with_state(state)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            headers::content_security_policy(app_dir),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        ))
        // Only behind TLS: HSTS over plain HTTP would be ignored, and is wrong on localhost.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &axum::http::Response<axum::body::Body>| hsts.clone(),
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

// Inside the nested router the path has lost its `/api` prefix; report the one the user sent.
async fn api_not_found(OriginalUri(uri): OriginalUri) -> impl IntoResponse {
    AppError::NotFound {
        message: format!("no API endpoint at {}; see /api/health and /api/catalog/…", uri.path()),
        did_you_mean: Vec::new(),
    }
}
