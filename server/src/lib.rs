//! The Skjold server as a library: `main.rs` parses the command line, everything else is here so
//! tests can start the real application on port 0.

pub mod catalog;
pub mod datastore;
pub mod disclosure;
pub mod engine;
pub mod http;
pub mod identity;
pub mod settings;
pub mod stats;
pub mod telemetry;
#[cfg(test)]
mod test_support;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use catalog::Catalog;
use datastore::Registry;
use disclosure::AuditLog;
use disclosure::audit::JsonLinesAudit;
use engine::Engine;
use settings::Settings;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub catalog: Arc<Catalog>,
    pub engine: Arc<Engine>,
    pub audit: Arc<dyn AuditLog>,
    /// `None` when the guest workspace is switched off.
    pub guests: Option<Arc<http::run::Guests>>,
    pub rate_limits: Arc<http::rate_limit::RateLimits>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("registry", &self.registry.root).finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the datastores under `settings.datastores`, indexes their catalog and opens the
    /// audit log.
    pub fn load(settings: &Settings) -> anyhow::Result<AppState> {
        let audit = JsonLinesAudit::open(&settings.audit_log).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the audit log {}: {e} (set audit_log or SKJOLD_AUDIT_LOG)",
                settings.audit_log.display()
            )
        })?;
        AppState::with_audit(settings, Arc::new(audit))
    }

    pub fn with_audit(settings: &Settings, audit: Arc<dyn AuditLog>) -> anyhow::Result<AppState> {
        let registry = Arc::new(Registry::open(&settings.datastores)?);
        let catalog = Catalog::build(&registry)?;
        let engine = Engine::new(registry.clone(), settings.limits.clone())?;
        let guests = settings.guest_workspace.then(|| Arc::new(http::run::Guests::default()));
        Ok(AppState {
            registry,
            catalog: Arc::new(catalog),
            engine: Arc::new(engine),
            audit,
            guests,
            rate_limits: Arc::new(http::rate_limit::RateLimits::new(settings.rate_limits.clone())),
        })
    }
}

/// Serves the application on `listener` until `shutdown` completes, then finishes the requests
/// in flight.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = http::router(state, &settings.app_dir);
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
