//! `GET /api/health`: liveness for load balancers and the start-up script.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use shared::api::Health;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        datastores: state.registry.datastores.len(),
    })
}
