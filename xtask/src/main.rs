//! `cargo xtask`: the project's task runner. Each command does its own set-up on a fresh machine
//! that has only the Rust toolchain, installing tools from package registries only.
//!
//! - `cargo xtask run [--listen ADDR] [--persons N]` — build everything and serve the demo.
//! - `cargo xtask test` — everything CI checks.
//! - `cargo xtask bench [--persons N] [--skip-generate] [--engine-only] [--jobs-only] [--peer-datastore DIR]`
//!   — benchmarks (release build; not part of CI).

mod bench;
mod tools;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use util::{Step, cargo, project_root, run};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  run [--listen ADDR] [--persons N]   build the app and server, create the demo datastore when
                                      absent, and serve on http://127.0.0.1:8080 (or ADDR,
                                      or $SKJOLD_LISTEN)
  test                                fmt, clippy, all Rust tests, the WASM build and the
                                      browser tests: everything CI checks
  bench [--persons N] [--skip-generate] [--engine-only] [--jobs-only] [--peer-datastore DIR]
                                      benchmarks on a release build (default 5 500 000 persons);
                                      --peer-datastore also times DuckDB on another layout of
                                      the same data, in the same run; --jobs-only times
                                      /api/health during 10 heavy jobs alone";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_command(&args[1..]),
        Some("test") => test_command(&args[1..]),
        Some("bench") => bench::command(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where the demo datastore and other local state live (ignored by git).
pub fn state_dir() -> PathBuf {
    project_root().join(".skjold")
}

fn flag_value(args: &[String], flag: &str) -> Result<Option<String>, String> {
    match args.iter().position(|a| a == flag) {
        Some(i) => {
            args.get(i + 1).cloned().map(Some).ok_or_else(|| format!("{flag} needs a value"))
        }
        None => Ok(None),
    }
}

fn run_command(args: &[String]) -> Result<(), String> {
    let listen = flag_value(args, "--listen")?;
    let persons = flag_value(args, "--persons")?.unwrap_or_else(|| "200000".into());
    let started = Instant::now();
    let mut step = Step::new(5);
    step.next("checking build tools (a first run installs them while the server builds)");
    tools::ensure_build_prerequisites()?;
    cargo(&["fetch"])?;
    let tools = tools::Background::start(tools::ensure_build_tools);
    step.next("building the server (and the tests, which share its build)");
    build_workspace()?;
    step.next("building the browser app (WASM, release)");
    build_app(&tools.wait()?)?;
    let skjold = util::target_dir().join("debug/skjold");
    let datastores = state_dir().join("datastores");
    step.next("checking the demo datastore");
    if datastores.join("demo/1/datastore.json").exists() {
        println!("      demo datastore present in {}", datastores.display());
    } else {
        println!("      generating {persons} synthetic persons into {}", datastores.display());
        run(std::process::Command::new(&skjold)
            .args(["datastore", "generate", "--persons", &persons, "--out"])
            .arg(&datastores))?;
    }
    let address = listen
        .clone()
        .or_else(|| std::env::var("SKJOLD_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    step.next(&format!("starting the server after {:.0} s", started.elapsed().as_secs_f64()));
    println!("\n    Skjold: http://{address}\n    (Ctrl-C stops it)\n");
    let mut command = std::process::Command::new(&skjold);
    command
        .arg("serve")
        .arg("--datastores")
        .arg(&datastores)
        .arg("--app-dir")
        .arg(project_root().join("dist"));
    if let Some(l) = &listen {
        command.args(["--listen", l]);
    }
    run(&mut command)
}

/// One build for `run` and `test`. `cargo build -p server` would unify dependency features
/// differently from the test build (dev-dependencies add tokio and hyper features) and rebuild
/// most crates; `--workspace --tests` resolves exactly as `cargo test --workspace` does, and
/// builds `debug/skjold` in the target folder for the server's CLI tests.
fn build_workspace() -> Result<(), String> {
    cargo(&["build", "--workspace", "--tests"])
}

/// `trunk build --release`, skipped when `dist/` is newer than everything it is built from.
pub fn build_app(tools: &tools::BuildTools) -> Result<(), String> {
    let root = project_root();
    let inputs = ["app", "shared", "style", "public", "Cargo.lock", "Trunk.toml", "Cargo.toml"];
    let built = util::modified(&root.join("dist/index.html"));
    let newest = inputs.iter().filter_map(|i| util::newest_modification(&root.join(i))).max();
    if let (Some(built), Some(newest)) = (built, newest)
        && built > newest
    {
        println!("      dist/ is up to date");
        return Ok(());
    }
    // Trunk runs cargo offline so it never reaches for the network itself; fetch first.
    cargo(&["fetch"])?;
    let mut trunk = std::process::Command::new("trunk");
    trunk.current_dir(&root).args(["build", "--release"]).env("PATH", tools.path_with_tools());
    run(&mut trunk)
}

fn test_command(_args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let mut step = Step::new(6);
    step.next("checking build and test tools (a first run installs them while the tests build)");
    tools::ensure_build_prerequisites()?;
    // Every package of Cargo.lock, for every target: the invariant tests read the dependency
    // tree offline, wasm32 dependencies included, before the browser app is built.
    cargo(&["fetch"])?;
    let tools = tools::Background::start(|| {
        let build = tools::ensure_build_tools()?;
        tools::ensure_test_tools()?;
        Ok((build, tools::ensure_python_env()?))
    });
    step.next("cargo fmt --check");
    cargo(&["fmt", "--all", "--", "--check"])
        .map_err(|e| format!("{e}\nformatting differs: run `cargo fmt --all`"))?;
    // Clippy lints our crates *during* the one real build: a separate `cargo clippy` would
    // type-check every dependency a second time, several minutes on a 2-core CI machine.
    let lint = clippy_env()?;
    step.next("building the server and the tests once, linted by clippy (warnings are errors)");
    run(std::process::Command::new(env!("CARGO"))
        .current_dir(project_root())
        .args(["build", "--workspace", "--all-targets"])
        .envs(lint.iter().cloned()))?;
    step.next("running the Rust tests (statistics checked against pandas and statsmodels)");
    let (tools, python) = tools.wait()?;
    // The same wrapper and arguments, or cargo would see new fingerprints and build again.
    run(std::process::Command::new(env!("CARGO"))
        .current_dir(project_root())
        .args(["test", "--workspace"])
        .envs(lint.iter().cloned())
        .env("SKJOLD_PYTHON", &python))?;
    step.next("building the browser app (WASM, release)");
    build_app(&tools)?;
    step.next("browser end-to-end tests in headless Chromium");
    browser_tests()?;
    println!("\nxtask test: everything passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The environment that makes cargo run clippy-driver (as `cargo clippy` does) on workspace
/// members only, with warnings as errors, while still producing real artifacts.
fn clippy_env() -> Result<Vec<(String, String)>, String> {
    let sysroot = util::output(std::process::Command::new("rustc").args(["--print", "sysroot"]))
        .ok_or("cannot run `rustc --print sysroot`")?;
    let driver = std::path::Path::new(sysroot.trim()).join("bin/clippy-driver");
    if !driver.exists() {
        return Err(format!(
            "{} is missing: install clippy (rustup component add clippy)",
            driver.display()
        ));
    }
    Ok(vec![
        ("RUSTC_WORKSPACE_WRAPPER".into(), driver.display().to_string()),
        // clippy-driver reads its own arguments from here, joined as cargo-clippy joins them.
        ("CLIPPY_ARGS".into(), "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__".into()),
    ])
}

/// Starts the real server on a small generated datastore and runs `tests/e2e` against it.
fn browser_tests() -> Result<(), String> {
    let root = project_root();
    // `build_workspace` built this binary for the server's own integration tests.
    let skjold = util::target_dir().join("debug/skjold");
    let datastores = util::target_dir().join("e2e/datastores");
    if !datastores.join("demo/1/datastore.json").exists() {
        run(std::process::Command::new(&skjold)
            .args(["datastore", "generate", "--persons", "20000", "--seed", "7", "--out"])
            .arg(&datastores))?;
    }
    let port = util::free_port()?;
    let address = format!("127.0.0.1:{port}");
    // Passkeys are bound to a host name, so the browser uses localhost, not the address; the
    // tests make their accounts in the server's (fresh) application database with the CLI.
    let public_url = format!("http://localhost:{port}");
    let database = util::target_dir().join("e2e/app.sqlite3");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    // The CLI the tests run writes its security events to the server's audit log.
    let identity_env = [
        ("SKJOLD_DATABASE", database.display().to_string()),
        ("SKJOLD_PUBLIC_URL", public_url.clone()),
        ("SKJOLD_AUDIT_LOG", util::target_dir().join("e2e/audit.jsonl").display().to_string()),
    ];
    let mut server = util::Server::start(
        std::process::Command::new(&skjold)
            .args(["serve", "--listen", &address, "--datastores"])
            .arg(&datastores)
            .arg("--app-dir")
            .arg(root.join("dist"))
            .envs(identity_env.iter().cloned()),
        &address,
    )?;
    let e2e = root.join("tests/e2e");
    let result = run(std::process::Command::new("npm")
        .current_dir(&e2e)
        .args(["test", "--silent"])
        .env("SKJOLD_URL", &public_url)
        .env("SKJOLD_BIN", &skjold)
        // For tests that start a server of their own, with settings of their own.
        .env("SKJOLD_E2E_DATASTORES", &datastores)
        .env("SKJOLD_E2E_APP_DIR", root.join("dist"))
        .envs(identity_env.iter().cloned()));
    let stopped = server.stop_gracefully();
    result?;
    stopped
}
