//! Checks every request passes before any handler: the country gate, and that a
//! state-changing API request is a same-origin JSON request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::AppError;
use super::auth::ClientAddress;
use crate::AppState;

/// Resolves the client address (trusted proxies considered), refuses countries outside the
/// allow-list, and hands the address to the handlers.
pub async fn country(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // In-process tests have no peer; treat them as loopback.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let forwarded: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let verdict = state.countries.decide(peer, &forwarded);
    if !verdict.allowed {
        let place = match &verdict.country {
            Some(c) => format!("from {c}"),
            None => "from a network whose country cannot be determined".to_owned(),
        };
        tracing::info!(address = %verdict.address, country = ?verdict.country, "refused by the country gate");
        let message = format!(
            "Skjold cannot be used {place}. Access to register microdata is limited to the EU/EEA \
             and countries with an EU adequacy decision. If you are in one of them, contact your \
             data steward."
        );
        if request.uri().path().starts_with("/api/") {
            return AppError::ForbiddenCode { message, code: "country" }.into_response();
        }
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Skjold: not \
             available here</title></head><body><main><h1>Not available in your country</h1>\
             <p>{message}</p></main></body></html>"
        );
        return (StatusCode::FORBIDDEN, Html(page)).into_response();
    }
    request.extensions_mut().insert(ClientAddress(verdict.address));
    next.run(request).await
}

/// The host (and port) of an origin such as `http://localhost:8080`.
fn origin_host(origin: &str) -> Option<&str> {
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
}

/// Whether a Host header names this machine in a way no one else's DNS can: an address
/// literal or `localhost`. A page on an attacker's domain that re-resolves to our address
/// (DNS rebinding) sends its own domain as both Origin and Host, so "Origin equals Host" alone
/// proves nothing; only public_url and these are trusted.
fn unrebindable(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<IpAddr>().is_ok()
}

/// A cross-site page can make a browser send a form (urlencoded, multipart or text) to us, but
/// not JSON without a CORS preflight this server never grants; and a browser names the page's
/// origin in `Origin`. So state-changing API requests must be JSON and, when an Origin is
/// sent, come from our own. The session's CSRF token is checked on top (`auth::signed_in`).
pub async fn same_origin_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    // A DELETE says everything in its path; POST, PUT and PATCH must carry JSON, which a
    // cross-site form cannot send.
    let json = *request.method() == Method::DELETE
        || headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return AppError::BadRequest {
            parameter: "body",
            message: "send JSON with Content-Type: application/json".into(),
        }
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let public = state.identity.settings.public_url.trim_end_matches('/');
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let own = origin == public || (unrebindable(host) && origin_host(origin) == Some(host));
        if !own {
            tracing::warn!(origin, "cross-origin write refused");
            return AppError::ForbiddenCode {
                message: format!("requests from {origin} may not change anything here"),
                code: "csrf",
            }
            .into_response();
        }
    }
    next.run(request).await
}
