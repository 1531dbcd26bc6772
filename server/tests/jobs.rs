//! Batch jobs through the real `skjold` binary: the batch client against a real server, and
//! the server killed by SIGKILL at random points while it runs jobs.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A job heavy enough to be running when the server is killed: imports, then many tables.
/// About 2 s in a debug build on 20 000 persons.
const SCRIPT: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BOSATTEFDT_BOSTED 2021-01-01 as kommune
for y in 2011 : 2021
  import db/INNTEKT_WLONN $y-12-31 as wage_ ++ $y
  tabulate sex, summarize(wage_ ++ $y)
  summarize wage_ ++ $y
  regress wage_ ++ $y i.sex
  tabulate kommune, summarize(wage_ ++ $y)
end
tabulate kommune sex
";

/// One demo datastore for the tests of this file, generated once.
fn datastores() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_skjold"))
            .args(["datastore", "generate", "--persons", "20000", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir
    })
    .path()
}

struct Installation {
    dir: tempfile::TempDir,
    port: u16,
}

impl Installation {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_skjold"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SKJOLD_CONFIG", self.path("skjold.toml"))
            .env("SKJOLD_SERVER", self.url())
            .env("RUST_LOG", "warn");
        command
    }

    fn skjold(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("skjold runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.skjold(args);
        assert!(out.status.success(), "skjold {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn serve(&self) -> Child {
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server's folder: a small demo datastore, an account in a project granted it that has
/// accepted the terms, and a token for it.
fn installation() -> (Installation, String) {
    let install = Installation { dir: tempfile::tempdir().unwrap(), port: free_port() };
    let datastores = datastores();
    let app = install.path("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "<html></html>").unwrap();
    let config = format!(
        "listen = \"127.0.0.1:{}\"\ndatastores = {:?}\napp_dir = {:?}\naudit_log = {:?}\n\
         [identity]\ndatabase = {:?}\n[jobs]\nworkers = 2\nmax_attempts = 1000\n",
        install.port,
        datastores,
        app,
        install.path("audit.jsonl"),
        install.path("app.db"),
    );
    std::fs::write(install.path("skjold.toml"), config).unwrap();
    install.ok(&["user", "add", "ola", "--display-name", "Ola Nordmann"]);
    install.ok(&["project", "add", "p"]);
    install.ok(&["project", "grant", "p", "demo"]);
    install.ok(&["project", "member", "p", "ola"]);
    // The terms are accepted in the app; here straight in the database.
    let settings = server::settings::Settings::load(Some(&install.path("skjold.toml"))).unwrap();
    let store = settings.identity.open_store().unwrap();
    use server::identity::AppStore;
    let ola = store.user_by_name("ola").unwrap().unwrap();
    store.record_terms(ola.id, settings.identity.terms_version, 1).unwrap();
    let token = install.ok(&["user", "token", "ola", "--days", "2"]);
    let token = token.lines().next().unwrap().to_owned();
    (install, token)
}

fn batch(install: &Installation, token: &str, args: &[&str]) -> Output {
    let mut command = install.command();
    command.env("SKJOLD_TOKEN", token).arg("batch").args(args);
    command.output().expect("skjold batch runs")
}

/// The outputs of `skjold run` on the same datastore: what a job must release.
fn reference_outputs(install: &Installation, script: &Path) -> serde_json::Value {
    let out = install.ok(&[
        "run",
        script.to_str().unwrap(),
        "--datastore",
        datastores().to_str().unwrap(),
        "--format",
        "json",
    ]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["outputs"].clone()
}

/// Asserts two output lists are equal, naming the first output that differs. With `ulps`,
/// numbers may differ in their last bits (p-values far in a tail have been seen to, between
/// processes); without, every byte must agree.
fn assert_same_outputs(got: &serde_json::Value, want: &serde_json::Value, what: &str, ulps: bool) {
    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if ulps {
            assert!(close(g, w), "{what}: output {i} differs:\n{g}\n{w}");
        } else {
            assert_eq!(g, w, "{what}: output {i} differs");
        }
    }
    assert_eq!(got.len(), want.len(), "{what}: the number of outputs differs");
}

fn fetched(install: &Installation, token: &str, id: &str) -> serde_json::Value {
    let out_dir = install.path(&format!("fetched-{id}"));
    let out = batch(install, token, &["fetch", id, "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(out_dir.join(format!("job-{id}.json"))).unwrap();
    serde_json::from_str(&json).unwrap()
}

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
