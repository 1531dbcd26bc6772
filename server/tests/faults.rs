//! Faults from outside the program, through the real `skjold` binary: the application
//! database locked by another process or moved away, datastore files cut short or corrupted,
//! a full disk under the audit log, SIGTERM while batch jobs run, and a client that hangs up
//! mid-run. Each checks what a user is told and that nothing is lost
//! or half-made.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::*;

fn submit(install: &Installation, token: &str, script: &str) -> Answer {
    let body = serde_json::json!({ "script": script, "project": "p" }).to_string();
    http(install, "POST", "/api/jobs", token, Some(&body))
}

fn submitted_id(answer: &Answer) -> i64 {
    assert!((200..300).contains(&answer.status), "{answer:?}");
    answer.json()["id"].as_i64().unwrap()
}

/// The messages of a job's error outputs.
fn errors(job: &serde_json::Value) -> Vec<String> {
    let outputs = job["outputs"].as_array().cloned().unwrap_or_default();
    let messages = outputs.iter().filter(|o| o["kind"] == "error");
    messages.map(|o| o["message"].as_str().unwrap_or_default().to_owned()).collect()
}

const SMALL: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
tabulate sex
";

#[test]
fn a_locked_application_database_answers_503_and_nothing_is_half_made() {
    let (install, token) = installation();
    let mut server = install.serve();
    // Another process (an administrator's command, a backup tool) holds the write lock.
    let holder = rusqlite::Connection::open(install.path("app.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let asked = Instant::now();
    let refused = submit(&install, &token, SMALL);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("5"));
    let error = refused.json();
    assert_eq!(error["code"], "unavailable");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("application database is busy") && message.contains("try again"));
    // It waited out the busy timeout first: a short lock is waited for, not refused.
    assert!(asked.elapsed() >= Duration::from_secs(4), "{:?}", asked.elapsed());
    // The server is up meanwhile.
    assert_eq!(http(&install, "GET", "/api/health", "", None).status, 200);

    holder.execute_batch("ROLLBACK").unwrap();
    let id = submitted_id(&submit(&install, &token, SMALL));
    assert_eq!(finished_job(&install, &token, id)["state"], "done");
    // The refused submission left no job behind.
    let listed = http(&install, "GET", "/api/jobs", &token, None).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_removed_application_database_answers_503_until_it_is_back() {
    let (install, token) = installation();
    let mut server = install.serve();
    let id = submitted_id(&submit(&install, &token, SMALL));
    assert_eq!(finished_job(&install, &token, id)["state"], "done");
    // Moved away while the server runs: SQLite would go on writing into a file nobody will
    // read again, so every request answers 503 instead.
    let database = install.path("app.db");
    let moved = install.path("app.db.moved");
    std::fs::rename(&database, &moved).unwrap();
    for (method, path) in
        [("POST", "/api/jobs"), ("GET", "/api/jobs"), ("GET", &*format!("/api/jobs/{id}"))]
    {
        let body = (method == "POST").then(|| serde_json::json!({ "script": SMALL }).to_string());
        let refused = http(&install, method, path, &token, body.as_deref());
        assert_eq!(refused.status, 503, "{method} {path}: {refused:?}");
        assert_eq!(refused.json()["code"], "unavailable");
        // The client is not told where the server keeps its files.
        assert!(!refused.body.contains("app.db"), "{}", refused.body);
    }
    assert_eq!(http(&install, "GET", "/api/health", "", None).status, 200);
    // Back in its place, the same file: everything as before, nothing written meanwhile.
    std::fs::rename(&moved, &database).unwrap();
    let listed = http(&install, "GET", "/api/jobs", &token, None).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let again = submitted_id(&submit(&install, &token, SMALL));
    assert_eq!(finished_job(&install, &token, again)["state"], "done");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Copies the files under `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn a_cut_or_corrupt_datastore_file_is_an_error_naming_the_variable_and_the_server_stays_up() {
    let root = tempfile::tempdir().unwrap();
    copy_tree(datastores(), root.path());
    let part = |variable: &str| {
        let dir = root.path().join("demo/1/data").join(variable);
        let mut parts: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        parts.sort();
        parts.remove(0)
    };
    // Cut short, as by a copy that stopped: the footer is gone.
    let wage = part("INNTEKT_WLONN");
    let length = std::fs::metadata(&wage).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&wage).unwrap().set_len(length / 2).unwrap();
    // Corrupted inside, the footer intact: the pages' bytes overwritten.
    let sex = part("BEFOLKNING_KJOENN");
    let mut bytes = std::fs::read(&sex).unwrap();
    let end = bytes.len() / 2;
    bytes[8..end].iter_mut().enumerate().for_each(|(i, b)| *b = (i as u8).wrapping_mul(151));
    std::fs::write(&sex, bytes).unwrap();

    let (install, token) = installation_with(root.path());
    let mut server = install.serve();
    for (variable, import) in [
        ("INNTEKT_WLONN", "import db/INNTEKT_WLONN 2021-12-31 as wage\nsummarize wage"),
        ("BEFOLKNING_KJOENN", "import db/BEFOLKNING_KJOENN as sex\ntabulate sex"),
    ] {
        let script = format!("require demo:1 as db\ncreate-dataset persons\n{import}\n");
        let job = finished_job(&install, &token, submitted_id(&submit(&install, &token, &script)));
        let errors = errors(&job);
        assert!(
            errors.iter().any(|e| e.contains(variable)),
            "{variable}: the error does not name it: {errors:?} ({job})"
        );
        assert!(!errors.iter().any(|e| e.contains("internal error")), "{errors:?}");
    }
    // The server is up, and the files that are whole still serve.
    assert_eq!(http(&install, "GET", "/api/health", "", None).status, 200);
    let whole = "require demo:1 as db\ncreate-dataset persons\nimport db/BOSATTEFDT_BOSTED 2021-01-01 as kommune\ntabulate kommune\n";
    let job = finished_job(&install, &token, submitted_id(&submit(&install, &token, whole)));
    assert_eq!(job["state"], "done", "{job}");
    assert!(errors(&job).is_empty(), "{job}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The states of the jobs in the installation's database, by id.
fn states(install: &Installation) -> Vec<(i64, String, i64)> {
    let db = rusqlite::Connection::open(install.path("app.db")).unwrap();
    let mut query = db.prepare("SELECT id, state, attempts FROM jobs ORDER BY id").unwrap();
    let rows = query.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Sends SIGTERM to the server and waits for it to exit; the time it took.
fn terminate(server: &mut Server) -> Duration {
    let sent = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(kill.success());
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "the server exited with {status} after SIGTERM");
            return sent.elapsed();
        }
        assert!(sent.elapsed() < Duration::from_secs(60), "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until job `id` is running.
fn wait_running(install: &Installation, token: &str, id: i64) {
    let started = Instant::now();
    while http(install, "GET", &format!("/api/jobs/{id}"), token, None).json()["state"] != "running"
    {
        assert!(started.elapsed() < Duration::from_secs(60), "job {id} never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_a_running_job_finish_within_the_grace_and_requeues_one_that_does_not() {
    let (install, token) = installation();
    let script = install.path("job.mds");
    std::fs::write(&script, SCRIPT).unwrap();
    let reference = reference_outputs(&install, &script);

    // A long grace: the jobs in hand finish before the exit.
    let mut server = install.serve();
    let first = submitted_id(&submit(&install, &token, SCRIPT));
    let second = submitted_id(&submit(&install, &token, SCRIPT));
    wait_running(&install, &token, first);
    wait_running(&install, &token, second);
    terminate(&mut server);
    let after = states(&install);
    assert_eq!(after, [(first, "done".into(), 1), (second, "done".into(), 1)], "{after:?}");

    // No grace: the job in hand stops at its next command and goes back to the queue, its
    // start given back; the next start runs it to the end.
    let config = std::fs::read_to_string(install.path("skjold.toml")).unwrap();
    let config = config.replace("[jobs]\n", "[jobs]\nshutdown_grace_seconds = 0\n");
    std::fs::write(install.path("skjold.toml"), config).unwrap();
    let mut server = install.serve();
    let third = submitted_id(&submit(&install, &token, SCRIPT));
    wait_running(&install, &token, third);
    let took = terminate(&mut server);
    let after = states(&install);
    assert_eq!(after[2], (third, "queued".into(), 0), "{after:?}");
    assert!(took < Duration::from_secs(15), "the stop took {took:?}");

    let mut server = install.serve();
    for id in [first, second, third] {
        let job = finished_job(&install, &token, id);
        assert_eq!(job["state"], "done", "{job}");
        assert_same_outputs(&job["outputs"], &reference, &format!("job {id}"), true);
    }
    assert_eq!(states(&install).iter().map(|s| s.2).collect::<Vec<_>>(), [1, 1, 1]);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_client_gone_mid_run_leaves_the_run_to_finish_as_a_job_and_frees_its_place() {
    use std::io::{Read, Write};
    let (install, _) = installation();
    let script = install.path("job.mds");
    std::fs::write(&script, SCRIPT).unwrap();
    let reference = reference_outputs(&install, &script);
    let mut server = install.serve();
    // More runs than a guest may have in flight at once (runs_in_flight = 2), each abandoned
    // after its first progress line.
    for n in 1..=3_i64 {
        let body = serde_json::json!({ "script": SCRIPT }).to_string();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", install.port)).unwrap();
        let request = format!(
            "POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Accept: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            install.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !text(&seen).contains("\"progress\"") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "the stream ended before any progress: {}", text(&seen));
            seen.extend_from_slice(&buffer[..read]);
        }
        assert!(text(&seen).starts_with("HTTP/1.1 200"), "{}", text(&seen));
        drop(stream);
        // The run goes on without its client and is recorded with what it released.
        let started = Instant::now();
        loop {
            let db = rusqlite::Connection::open(install.path("app.db")).unwrap();
            let (state, outputs): (String, Option<String>) = db
                .query_row("SELECT state, outputs FROM jobs WHERE id=?1", [n], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            if state != "running" {
                assert_eq!(state, "done", "run {n}");
                let outputs: serde_json::Value = serde_json::from_str(&outputs.unwrap()).unwrap();
                let what = format!("run {n}, its client gone");
                assert_same_outputs(&outputs, &reference, &what, true);
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "run {n} never finished");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The places those runs held are free again: a run now is not refused for runs in flight.
    let body = serde_json::json!({ "script": "help summarize" }).to_string();
    let answer = http(&install, "POST", "/api/run", "", Some(&body));
    assert_eq!(answer.status, 200, "{answer:?}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_full_disk_under_the_audit_log_withholds_every_output_with_a_clear_error() {
    let (install, token) = installation();
    let config = std::fs::read_to_string(install.path("skjold.toml")).unwrap();
    let audit = format!("audit_log = {:?}", install.path("audit.jsonl"));
    assert!(config.contains(&audit), "{config}");
    // /dev/full answers every write with "no space left on device".
    std::fs::write(
        install.path("skjold.toml"),
        config.replace(&audit, "audit_log = \"/dev/full\""),
    )
    .unwrap();
    let mut server = install.serve();
    let job = finished_job(&install, &token, submitted_id(&submit(&install, &token, SMALL)));
    let outputs = job["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4, "{job}");
    // Not one output left without its audit record: the table is withheld like the notices.
    for output in outputs {
        assert_eq!(output["kind"], "error", "{output}");
        let message = output["message"].as_str().unwrap();
        assert!(message.contains("withheld because the audit log cannot be written"), "{message}");
    }
    assert_eq!(http(&install, "GET", "/api/health", "", None).status, 200);
    server.kill().unwrap();
    server.wait().unwrap();
}
