//! `skjold serve`: the HTTP server.

use std::process::ExitCode;

use server::settings::Settings;
use server::{AppState, telemetry};

pub(crate) fn serve(settings: Settings) -> ExitCode {
    telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        let state = AppState::load(&settings)?;
        if state.registry.datastores.is_empty() {
            tracing::warn!(
                datastores = %settings.datastores.display(),
                "no datastore found; create one with `skjold datastore generate --out {}`",
                settings.datastores.display()
            );
        }
        let listener = tokio::net::TcpListener::bind(settings.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (choose another with --listen or SKJOLD_LISTEN)",
                settings.listen
            )
        })?;
        let address = listener.local_addr()?;
        tracing::info!(
            url = %format!("http://{address}"),
            variables = state.catalog.len(),
            "skjold is listening"
        );
        server::run(listener, state, &settings, server::shutdown_signal()).await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
