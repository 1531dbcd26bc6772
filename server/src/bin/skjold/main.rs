//! `skjold`: the server and its administrative commands. This file parses the command line
//! and hands each subcommand to its module; the work is in the library (`server`).

mod accounts;
mod args;
mod audit;
mod batch;
mod datastore;
mod run;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use server::settings::{LogFormat, Settings};
use server::telemetry;

use args::{AuditCommand, Cli, Command};

/// glibc's allocator raises its trim threshold as large blocks come and go, so the memory a
/// scan's decode buffers give back stays with the process: a workspace of 5.5 M persons × 10
/// variables peaked at 1.6× its Arrow size, against 1.4× with a fixed threshold. The threshold
/// can only be set before the allocator starts (mallopt would need unsafe code), so the process
/// starts itself once more with it in the environment. A value the operator set is kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory_to_the_system() {
    use std::os::unix::process::CommandExt;
    const TRIM: &str = "MALLOC_TRIM_THRESHOLD_";
    if std::env::var_os(TRIM).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    // exec returns only if it failed; then the process simply runs untuned.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(TRIM, (4u32 << 20).to_string())
        .exec();
}

/// Other allocators return memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory_to_the_system() {}

fn main() -> ExitCode {
    return_freed_memory_to_the_system();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve { listen, datastores, app_dir } => {
            let mut settings = settings;
            settings.listen = listen.unwrap_or(settings.listen);
            settings.datastores = datastores.unwrap_or(settings.datastores);
            settings.app_dir = app_dir.unwrap_or(settings.app_dir);
            serve::serve(settings)
        }
        Command::Run { file, datastore, format, timings } => {
            let mut settings = settings;
            settings.datastores = datastore.unwrap_or(settings.datastores);
            run::run_script(&settings, &file, format, timings)
        }
        Command::Order { file, datastore, format } => {
            let mut settings = settings;
            settings.datastores = datastore.unwrap_or(settings.datastores);
            run::order(&settings, &file, format)
        }
        Command::User(command) => accounts::accounts(&settings, |identity, by| {
            accounts::user_command(identity, command, by)
        }),
        Command::Project(command) => accounts::accounts(&settings, |identity, by| {
            accounts::project_command(identity, command, by)
        }),
        Command::Datastore(command) => {
            telemetry::init(LogFormat::Pretty);
            datastore::datastore(command)
        }
        Command::Audit(AuditCommand::Verify { file, head }) => {
            audit::verify_audit(&file.unwrap_or(settings.audit_log), head.as_deref())
        }
        Command::Batch { server, token, action } => batch::batch(server, token, action),
    }
}
