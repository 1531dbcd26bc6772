//! `skjold batch`: the batch client, a thin shell over `server::batch_client`.

use std::process::ExitCode;

use crate::args::BatchCommand;

pub(crate) fn batch(
    server: Option<String>,
    token: Option<String>,
    action: BatchCommand,
) -> ExitCode {
    use server::batch_client::{Action, Client};
    let action = match action {
        BatchCommand::Submit { file, project } => Action::Submit { file, project },
        BatchCommand::Status { id } => Action::Status { id },
        BatchCommand::Wait { id, timeout } => {
            Action::Wait { id, timeout: std::time::Duration::from_secs(timeout) }
        }
        BatchCommand::Fetch { id, out } => Action::Fetch { id, out },
        BatchCommand::List => Action::List,
        BatchCommand::Cancel { id } => Action::Cancel { id },
    };
    let Some(server) = server else {
        eprintln!("error: give the server with --server URL or SKJOLD_SERVER");
        return ExitCode::from(2);
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            let client = Client::new(&server, token.as_deref().unwrap_or_default())?;
            runtime.block_on(client.run(action))
        });
    match outcome {
        Ok(outcome) => {
            println!("{}", outcome.text);
            if outcome.success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
