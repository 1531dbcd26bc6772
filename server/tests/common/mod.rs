//! What the tests of the real `skjold` binary share: a demo datastore generated once, a
//! server's folder with an account, and the batch client.
// Each test file uses its own part of this.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A job heavy enough to be running when the server is killed: imports, then many tables.
/// About 2 s in a debug build on 20 000 persons.
pub const SCRIPT: &str = "require demo:1 as db
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

/// One demo datastore for the tests of a file, generated once.
pub fn datastores() -> &'static Path {
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

pub struct Installation {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Installation {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_skjold"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SKJOLD_CONFIG", self.path("skjold.toml"))
            .env("SKJOLD_SERVER", self.url())
            .env("RUST_LOG", "warn");
        command
    }

    pub fn skjold(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("skjold runs")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.skjold(args);
        assert!(out.status.success(), "skjold {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    pub fn serve(&self) -> Server {
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let started = Instant::now();
        let server = Server(child);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

/// A running `skjold serve`, killed when dropped: a test that fails half-way leaves no server
/// behind holding its port and folder.
pub struct Server(pub Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server's folder: a small demo datastore, an account in a project granted it that has
/// accepted the terms, and a token for it.
pub fn installation() -> (Installation, String) {
    installation_with(datastores())
}

/// [`installation`] over the datastores under `datastores`.
pub fn installation_with(datastores: &Path) -> (Installation, String) {
    let install = Installation { dir: tempfile::tempdir().unwrap(), port: free_port() };
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

pub fn batch(install: &Installation, token: &str, args: &[&str]) -> Output {
    let mut command = install.command();
    command.env("SKJOLD_TOKEN", token).arg("batch").args(args);
    command.output().expect("skjold batch runs")
}

/// The outputs of `skjold run` on the same datastore: what a job must release.
pub fn reference_outputs(install: &Installation, script: &Path) -> serde_json::Value {
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
pub fn assert_same_outputs(
    got: &serde_json::Value,
    want: &serde_json::Value,
    what: &str,
    ulps: bool,
) {
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

pub fn fetched(install: &Installation, token: &str, id: &str) -> serde_json::Value {
    let out_dir = install.path(&format!("fetched-{id}"));
    let out = batch(install, token, &["fetch", id, "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(out_dir.join(format!("job-{id}.json"))).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// A response read in full: the status, the headers (names in lower case) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request to the server with a bearer token (none when empty), as the batch
/// client sends it, read until the server closes the connection.
pub fn http(
    install: &Installation,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Answer {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", install.port)).expect("the server listens");
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.unwrap_or("");
    let authorization =
        if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        install.port,
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = text(&raw);
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { unchunk(rest) } else { rest.to_owned() };
    Answer { status: status.unwrap_or(0), headers, body }
}

/// The body of a chunked response.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// Waits until job `id` has finished and returns its record with its outputs.
pub fn finished_job(install: &Installation, token: &str, id: i64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let job = http(install, "GET", &format!("/api/jobs/{id}"), token, None).json();
        if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "job {id} did not finish: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
