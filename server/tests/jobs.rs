//! Batch jobs through the real `skjold` binary: the batch client against a real server, and
//! the server killed by SIGKILL at random points while it runs jobs.

use std::time::Duration;

mod common;
use common::*;

#[test]
fn the_batch_client_submits_waits_and_fetches_from_a_real_server() {
    let (install, token) = installation();
    let script = install.path("job.mds");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut server = install.serve();

    let submitted = batch(&install, &token, &["submit", script.to_str().unwrap()]);
    assert!(submitted.status.success(), "{}", text(&submitted.stderr));
    let said = text(&submitted.stdout);
    let id = said.split_whitespace().nth(2).unwrap().to_owned();
    assert!(said.starts_with(&format!("submitted job {id} (")), "{said}");
    let waited = batch(&install, &token, &["wait", &id, "--timeout", "120"]);
    assert!(waited.status.success(), "{}", text(&waited.stderr));
    assert!(text(&waited.stdout).starts_with(&format!("job {id}\tbatch\tdone")));

    let job = fetched(&install, &token, &id);
    assert_same_outputs(&job["outputs"], &reference_outputs(&install, &script), "the job", true);
    let tables = job["outputs"].as_array().unwrap().iter().filter(|o| o["kind"] == "table");
    let csv = install.path(&format!("fetched-{id}/job-{id}-06-tabulate.csv"));
    assert_eq!(tables.count(), 23);
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("sex,"), "{csv}");

    // A wrong token and a bad address are told apart, and name the fix.
    let wrong = batch(&install, "skj_0123", &["list"]);
    assert!(text(&wrong.stderr).contains("make a new one in the app"), "{}", text(&wrong.stderr));
    let mut far = install.command();
    let far = far
        .env("SKJOLD_TOKEN", &token)
        .args(["batch", "--server", "http://127.0.0.1:9", "list"])
        .output()
        .unwrap();
    assert!(text(&far.stderr).contains("cannot reach http://127.0.0.1:9"), "{}", text(&far.stderr));

    // A queued job is cancelled; cancelling a finished one says why not.
    let listed = text(&batch(&install, &token, &["list"]).stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let again = batch(&install, &token, &["cancel", &id]);
    assert!(text(&again.stderr).contains("is done already"), "{}", text(&again.stderr));
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Guards the promise that a batch job survives the server: 20 SIGKILLs at points spread
/// over the jobs' run, and every job still ends done with the outputs of an undisturbed run.
#[test]
fn jobs_survive_twenty_kills_of_the_server_and_release_what_an_undisturbed_run_does() {
    let (install, token) = installation();
    let script = install.path("job.mds");
    std::fs::write(&script, SCRIPT).unwrap();
    let reference = reference_outputs(&install, &script);

    let mut server = install.serve();
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let out = batch(&install, &token, &["submit", script.to_str().unwrap()]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).split_whitespace().nth(2).unwrap().to_owned()
        })
        .collect();
    // A fixed spread of delays (a linear congruential sequence): reproducible, yet landing at
    // start-up, mid-import, mid-table and between jobs.
    let mut seed: u64 = 20_261_207;
    let mut kills = 0;
    let mut killed_running = 0;
    while kills < 20 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(50 + (seed >> 33) % 700);
        std::thread::sleep(delay);
        let status = text(&batch(&install, &token, &["list"]).stdout);
        killed_running += usize::from(status.contains("\trunning"));
        server.kill().unwrap(); // SIGKILL on Unix
        server.wait().unwrap();
        kills += 1;
        server = install.serve();
    }
    // One more job, run undisturbed by this server: what every rerun must have released.
    let out = batch(&install, &token, &["submit", script.to_str().unwrap()]);
    let last = text(&out.stdout).split_whitespace().nth(2).unwrap().to_owned();
    let waited = batch(&install, &token, &["wait", &last, "--timeout", "300"]);
    assert!(waited.status.success(), "job {last}: {}", text(&waited.stdout));
    let undisturbed = fetched(&install, &token, &last);
    assert_same_outputs(&undisturbed["outputs"], &reference, "the undisturbed job", true);
    let mut attempts = Vec::new();
    for id in &ids {
        let waited = batch(&install, &token, &["wait", id, "--timeout", "300"]);
        assert!(waited.status.success(), "job {id}: {}", text(&waited.stdout));
        let job = fetched(&install, &token, id);
        assert_eq!(job["state"], "done");
        attempts.push(job["attempts"].as_u64().unwrap());
        let what = format!("job {id} against the undisturbed job");
        assert_same_outputs(&job["outputs"], &undisturbed["outputs"], &what, false);
    }
    assert!(attempts.iter().any(|&a| a > 1), "no job was started again: {attempts:?}");
    let ids: Vec<String> = ids.into_iter().chain([last]).collect();
    let listed = text(&batch(&install, &token, &["list"]).stdout);
    assert_eq!(listed.lines().filter(|l| l.contains("\tdone")).count(), ids.len(), "{listed}");
    assert!(killed_running >= 5, "only {killed_running} of 20 kills hit a running job");
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "20 kills, {killed_running} while a job ran; {} of {} jobs done",
        ids.len(),
        ids.len()
    );
}
