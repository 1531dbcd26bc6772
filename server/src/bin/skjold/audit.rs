//! `skjold audit verify`: checks the audit log's hash chain.

use std::process::ExitCode;

pub(crate) fn verify_audit(path: &std::path::Path, head: Option<&str>) -> ExitCode {
    use server::disclosure::audit;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot open the audit log {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let head = match head {
        Some(text) => match audit::parse_head(text) {
            Some(head) => Some(head),
            None => {
                eprintln!(
                    "error: --head is \"SEQ HASH\", as the .head file holds it, not {text:?}"
                );
                return ExitCode::from(2);
            }
        },
        None => match audit::read_head(path) {
            Ok(head) => head,
            Err(e) => {
                eprintln!("error: cannot read the head beside {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let checked_end = head.is_some();
    match audit::verify(std::io::BufReader::new(file), head) {
        Ok(records) => {
            let end = if checked_end {
                "its end matches the head"
            } else {
                "no head to check its end against"
            };
            println!("{}: {records} records, the chain is whole; {end}", path.display());
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("{}: {broken}", path.display());
            ExitCode::FAILURE
        }
    }
}
