//! The Skjold server as a library: the binary (`bin/skjold/`) parses the command line and
//! calls it; everything else is here so tests can start the real application on port 0.

pub mod batch_client;
pub mod catalog;
pub mod datastore;
pub mod disclosure;
pub mod engine;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod order;
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
    /// Signed-in users' workspaces, one per user and project.
    pub workspaces: Arc<http::run::Workspaces>,
    pub identity: Arc<identity::Identity>,
    pub countries: Arc<identity::country::CountryGate>,
    pub rate_limits: Arc<http::rate_limit::RateLimits>,
    /// The batch queue's workers and the cancellation flags of runs in progress.
    pub jobs: Arc<jobs::Jobs>,
    /// What the gate remembers per user (rule 11, the refusal budget), kept in the database.
    pub memories: Arc<disclosure::memory::Memories>,
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

    /// For `skjold run`: the batch path needs no accounts, so it leaves the application
    /// database alone and keeps an empty one in memory.
    pub fn load_for_batch(settings: &Settings) -> anyhow::Result<AppState> {
        let audit = JsonLinesAudit::open(&settings.audit_log).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the audit log {}: {e} (set audit_log or SKJOLD_AUDIT_LOG)",
                settings.audit_log.display()
            )
        })?;
        let store = identity::SqliteStore::in_memory()?;
        AppState::assemble(
            settings,
            Arc::new(audit),
            Arc::new(store),
            Arc::new(identity::SystemClock),
        )
    }

    /// With the application database of the settings and the system clock.
    pub fn with_audit(settings: &Settings, audit: Arc<dyn AuditLog>) -> anyhow::Result<AppState> {
        let store = settings.identity.open_store()?;
        AppState::assemble(settings, audit, Arc::new(store), Arc::new(identity::SystemClock))
    }

    /// From parts, so tests can give an in-memory database and a clock they control.
    pub fn assemble(
        settings: &Settings,
        audit: Arc<dyn AuditLog>,
        store: Arc<dyn identity::AppStore>,
        clock: Arc<dyn identity::Clock>,
    ) -> anyhow::Result<AppState> {
        let memories = Arc::new(disclosure::memory::Memories::new(store.clone()));
        let identity =
            identity::Identity::new(store, clock, settings.identity.clone(), audit.clone())?;
        let countries = identity::country::CountryGate::new(&settings.identity.countries)?;
        let registry = Arc::new(Registry::open(&settings.datastores)?);
        let catalog = Catalog::build(&registry)?;
        let engine = Engine::new(registry.clone(), settings.limits.clone())?;
        let mib = |m: usize| m.saturating_mul(1024 * 1024);
        let guests = settings.guest_workspace.then(|| {
            Arc::new(http::run::Guests::new(mib(settings.limits.guest_workspaces_total_mb)))
        });
        Ok(AppState {
            registry,
            catalog: Arc::new(catalog),
            engine: Arc::new(engine),
            audit,
            guests,
            workspaces: Arc::new(http::run::Workspaces::new(mib(settings
                .limits
                .workspaces_total_mb))),
            identity: Arc::new(identity),
            countries: Arc::new(countries),
            rate_limits: Arc::new(http::rate_limit::RateLimits::new(settings.rate_limits.clone())),
            jobs: Arc::new(jobs::Jobs::new(settings.jobs.clone())),
            memories,
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
    // Deletion requests past their grace period are carried out hourly.
    let identity = state.identity.clone();
    tokio::spawn(async move {
        let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            hourly.tick().await;
            let identity = identity.clone();
            match tokio::task::spawn_blocking(move || identity.purge_due_deletions()).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::info!(accounts = n, "deleted accounts past their grace period")
                }
                Ok(Err(e)) => tracing::error!(error = %e, "cannot carry out deletion requests"),
                Err(e) => tracing::error!(error = %e, "the deletion task failed"),
            }
        }
    });
    // Batch jobs a stopped server left running go back to the queue before the workers start.
    jobs::start(&state, tokio::runtime::Handle::current())?;
    let jobs = state.jobs.clone();
    let app = http::router(state, &settings.app_dir);
    // At the signal the workers take no more jobs while the requests in flight finish.
    let stop_taking = jobs.clone();
    let shutdown = async move {
        shutdown.await;
        stop_taking.stop();
    };
    let served =
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
    // Then the running batch jobs get their grace, and what is left goes back to the queue.
    let grace = std::time::Duration::from_secs(u64::from(jobs.settings.shutdown_grace_seconds));
    let cut = tokio::task::spawn_blocking(move || jobs.drain(grace, DRAIN_WAIT)).await;
    match cut {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(jobs = n, "running jobs cut short by the stop went back to the queue")
        }
        Err(e) => tracing::error!(error = %e, "the stop of the jobs failed"),
    }
    served
}

/// How long a stopping server waits for cut-short jobs to reach the end of their command.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Writes `contents` to a new file readable by its owner only, unless the file exists (another
/// process may have made it first); returns whether this call made it. For secrets.
pub(crate) fn create_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(contents)?;
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes a file readable and writable by its owner only (the application database with its
/// TOTP secrets, the audit log, record-key secrets). Files are made with the process's umask,
/// commonly 0644: readable by every account on the machine.
pub(crate) fn owner_only(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
