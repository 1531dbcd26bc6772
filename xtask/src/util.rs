//! Running commands, printing progress, and small file-system helpers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR` when set (relative to the project
/// root when relative, as cargo reads it), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// Numbered progress lines, so a long first run shows where it is.
pub struct Step {
    current: usize,
    total: usize,
    started: Instant,
}

impl Step {
    pub fn new(total: usize) -> Step {
        Step { current: 0, total, started: Instant::now() }
    }

    pub fn next(&mut self, what: &str) {
        self.current += 1;
        println!(
            "[{}/{}] {what} ({:.0} s)",
            self.current,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }
}

thread_local! {
    /// Where `run` sends the output of the commands of this thread: the terminal, or a log
    /// file for work done in the background beside a build (see [`with_output_to`]).
    static OUTPUT_TO: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Runs `work` with the output of the commands it runs appended to `log` instead of shown, so
/// that installs in the background do not interleave with a build's progress.
pub fn with_output_to<T>(log: &Path, work: impl FnOnce() -> T) -> T {
    OUTPUT_TO.with(|to| *to.borrow_mut() = Some(log.to_owned()));
    let result = work();
    OUTPUT_TO.with(|to| *to.borrow_mut() = None);
    result
}

/// Runs a command with inherited output (or into this thread's log, see [`with_output_to`]);
/// an unsuccessful exit is an error naming the command.
pub fn run(command: &mut Command) -> Result<(), String> {
    if let Some(log) = OUTPUT_TO.with(|to| to.borrow().clone()) {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| format!("cannot write {}: {e}", log.display()))
        };
        command.stdout(open()?).stderr(open()?);
        let status = command.status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        return if status.success() {
            Ok(())
        } else {
            Err(format!("{command:?} failed ({status}); its output is in {}", log.display()))
        };
    }
    let status = command.status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

/// Runs a command and returns its standard output, or `None` if it cannot run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(project_root()).args(args))
}

pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// The newest modification time of a file or of anything below a folder.
pub fn newest_modification(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest_modification(&e.path()))
        .max()
}

pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A GET over plain HTTP/1.1; returns the status code.
pub fn http_status(address: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// A POST of a JSON body over plain HTTP/1.1; returns the status code and the body.
pub fn http_post_json(address: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// A server process started for tests, stopped with SIGTERM (as a service manager would).
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts the command and waits until `GET /api/health` answers 200.
    pub fn start(command: &mut Command, address: &str) -> Result<Server, String> {
        let child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let mut server = Server { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_status(address, "/api/health") == Some(200) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("the server exited before it was ready ({status})"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = server.child.kill();
        Err(format!("the server did not answer /api/health on {address} within 60 s"))
    }

    /// SIGTERM, then waits: a clean exit shows graceful shutdown works.
    pub fn stop_gracefully(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        run(Command::new("kill").args(["-TERM", &pid]))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the server exited with {status} on SIGTERM"))
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        Err("the server did not stop within 20 s of SIGTERM".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
