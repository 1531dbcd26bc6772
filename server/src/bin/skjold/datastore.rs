//! `skjold datastore`: generate, build and validate register datastores.

use std::process::ExitCode;
use std::time::Instant;

use server::datastore::{generate, input};

use crate::args::DatastoreCommand;

pub(crate) fn datastore(command: DatastoreCommand) -> ExitCode {
    match command {
        DatastoreCommand::Generate { persons, seed, out, force, threads } => {
            if persons == 0 {
                eprintln!("error: --persons must be at least 1");
                return ExitCode::from(2);
            }
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let options = generate::GenerateOptions { persons, seed, out, force, threads };
            let started = Instant::now();
            let progress = |done: usize, total: usize| {
                eprintln!(
                    "generated chunk {done}/{total} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            };
            match generate::generate(&options, &progress) {
                Ok(report) => {
                    println!(
                        "published datastore demo version {} at {}: {} persons, {} variables, {} rows in {:.1} s",
                        report.version,
                        report.path.display(),
                        report.persons,
                        report.variables,
                        report.rows,
                        started.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        DatastoreCommand::Build { input, out } => match input::build(&input, &out) {
            Ok(report) => {
                println!(
                    "published datastore {} version {} at {}: {} variables, {} rows",
                    report.summary.name,
                    report.version,
                    report.path.display(),
                    report.summary.variables,
                    report.summary.rows
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        DatastoreCommand::Validate { input } => match input::validate(&input) {
            Ok(summary) => {
                println!(
                    "{} is valid: datastore {}, {} variables, {} rows",
                    input.display(),
                    summary.name,
                    summary.variables,
                    summary.rows
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
        },
    }
}
