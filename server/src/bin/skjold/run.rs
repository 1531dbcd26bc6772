//! `skjold run`: one script through the engine and the gate, outputs on stdout.

use std::process::ExitCode;

use server::settings::Settings;
use server::{AppState, telemetry};

use crate::args::OutputFormat;

pub(crate) fn run_script(
    settings: &Settings,
    file: &std::path::Path,
    format: OutputFormat,
    timings: bool,
) -> ExitCode {
    // Logs go to stderr, so stdout holds only the outputs.
    telemetry::init(settings.log_format);
    let script = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the script {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    if !settings.datastores.exists() {
        eprintln!(
            "error: no datastore folder at {}: pass --datastore, or create one with `skjold datastore generate --out {}`",
            settings.datastores.display(),
            settings.datastores.display()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<(String, bool)> = runtime.block_on(async {
        let state = AppState::load_for_batch(settings)?;
        let user =
            std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
        let mut workspace = server::engine::Workspace::default();
        let (outputs, spent) =
            state.engine.run_timed(&mut workspace, &script, state.audit.as_ref(), &user).await;
        if timings {
            eprintln!(
                "timings: run {:.3} s, disclosure gate {:.3} s ({:.1} %), workspace Arrow memory {} bytes",
                spent.total.as_secs_f64(),
                spent.gate.as_secs_f64(),
                100.0 * spent.gate.as_secs_f64() / spent.total.as_secs_f64().max(1e-9),
                workspace.arrow_bytes()
            );
        }
        let failed = outputs
            .iter()
            .any(|o| matches!(o.output().body, shared::output::OutputBody::Error { .. }));
        let text = match format {
            OutputFormat::Json => {
                let mut text =
                    serde_json::to_string_pretty(&serde_json::json!({ "outputs": outputs }))?;
                text.push('\n');
                text
            }
            OutputFormat::Text => outputs.iter().map(|o| o.output().to_text() + "\n").collect(),
        };
        Ok((text, failed))
    });
    match result {
        Ok((text, failed)) => {
            print!("{text}");
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `skjold order`: the data order of a script, as text or JSON on stdout.
pub(crate) fn order(settings: &Settings, file: &std::path::Path, format: OutputFormat) -> ExitCode {
    let script = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the script {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let registry = match server::datastore::Registry::open(&settings.datastores) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: cannot read the datastores under {}: {e}",
                settings.datastores.display()
            );
            return ExitCode::from(2);
        }
    };
    let max_commands = server::engine::Limits::default().max_commands;
    match server::order::data_order(&script, &registry, max_commands) {
        Ok(order) => {
            match format {
                OutputFormat::Text => print!("{}", server::order::order_text(&order)),
                OutputFormat::Json => match serde_json::to_string_pretty(&order) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
