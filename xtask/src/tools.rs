//! Installing the tools the builds and tests need — from package registries only (crates.io,
//! npm, Debian), never by downloading binaries from elsewhere.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::state_dir;
use crate::util::{output, project_root, run};

const TRUNK_VERSION: &str = "0.21.14";
/// wasm-opt older than 132 (Debian ships 108) silently breaks the release build.
const BINARYEN_VERSION: &str = "132";

/// Where the build tools are, for the PATH of the commands that need them.
pub struct BuildTools {
    node_bin: PathBuf,
    cargo_bin: PathBuf,
}

impl BuildTools {
    /// PATH with npm's binaryen and cargo-installed tools first.
    pub fn path_with_tools(&self) -> OsString {
        let mut paths = vec![self.node_bin.clone(), self.cargo_bin.clone()];
        if let Some(existing) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&existing));
        }
        std::env::join_paths(paths).expect("paths without separators")
    }
}

fn cargo_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin")
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// Installs a Debian package when running as root; otherwise says what to install.
fn apt_install(package: &str, why: &str) -> Result<(), String> {
    if !is_root() {
        return Err(format!(
            "{why} is missing: install it (sudo apt-get install {package}) and run again"
        ));
    }
    println!("      installing {package} with apt-get ({why})");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", package])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// C libraries the -sys crates link: OpenSSL, which webauthn-rs uses for its signature checks.
fn ensure_native_libraries() -> Result<(), String> {
    if output(Command::new("pkg-config").arg("--version")).is_none() {
        apt_install("pkg-config", "pkg-config (to find OpenSSL for webauthn-rs)")?;
    }
    let found = Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        apt_install("libssl-dev", "OpenSSL's headers (webauthn-rs verifies passkeys with it)")?;
    }
    Ok(())
}

/// What the workspace's own build needs before it starts: OpenSSL's headers and the wasm32
/// target. Quick when present; everything else can install beside the build.
pub fn ensure_build_prerequisites() -> Result<(), String> {
    ensure_native_libraries()?;
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        println!("      adding the wasm32-unknown-unknown target");
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// The tools a first run installs, started on a thread of their own while the workspace
/// builds: on two cores, one cargo build leaves a core idle for long stretches (linking, the
/// crates everything waits for), and the Debian, npm and PyPI installs mostly wait on the
/// network. Their output goes to `.skjold/tools.log`; what they print themselves still shows.
pub struct Background<T>(std::thread::JoinHandle<Result<T, String>>);

impl<T: Send + 'static> Background<T> {
    pub fn start(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> Background<T> {
        let log = state_dir().join("tools.log");
        Background(std::thread::spawn(move || {
            std::fs::create_dir_all(state_dir())
                .map_err(|e| format!("cannot create {}: {e}", state_dir().display()))?;
            crate::util::with_output_to(&log, work)
        }))
    }

    /// The tools, once installed; a note when the build has to wait for them.
    pub fn wait(self) -> Result<T, String> {
        if !self.0.is_finished() {
            println!(
                "      waiting for the tools installing in the background (.skjold/tools.log)"
            );
        }
        self.0.join().map_err(|_| "the tool installation thread panicked".to_owned())?
    }
}

pub fn ensure_build_tools() -> Result<BuildTools, String> {
    ensure_build_prerequisites()?;
    let bin = cargo_bin();
    // Without its default features trunk has no TLS stack and no update check: it can reach
    // nothing on the network (it finds wasm-bindgen and wasm-opt on PATH, installed here from
    // the registries), and rustls and ring no longer build, a minute and more on two cores.
    ensure_cargo_tool(&bin, "trunk", "trunk", TRUNK_VERSION, true, &["--no-default-features"])?;
    // The CLI must match the wasm-bindgen library exactly. Its own lockfile pins a crate version
    // this registry lacks, so it is installed without --locked.
    let wasm_bindgen = wasm_bindgen_version()?;
    ensure_cargo_tool(&bin, "wasm-bindgen", "wasm-bindgen-cli", &wasm_bindgen, false, &[])?;

    if output(Command::new("npm").arg("--version")).is_none() {
        apt_install("npm", "npm (for wasm-opt from the binaryen package and the browser tests)")?;
    }
    let tools = state_dir().join("tools");
    let wasm_opt = tools.join("node_modules/.bin/wasm-opt");
    let version = output(Command::new(&wasm_opt).arg("--version")).unwrap_or_default();
    if !version.contains(&format!("version {BINARYEN_VERSION}")) {
        println!("      installing wasm-opt {BINARYEN_VERSION} (npm package binaryen)");
        std::fs::create_dir_all(&tools)
            .map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&tools)
            .arg(format!("binaryen@{BINARYEN_VERSION}")))?;
    }
    Ok(BuildTools { node_bin: tools.join("node_modules/.bin"), cargo_bin: bin })
}

fn ensure_cargo_tool(
    bin: &std::path::Path,
    command: &str,
    krate: &str,
    version: &str,
    locked: bool,
    extra: &[&str],
) -> Result<(), String> {
    let reported = output(Command::new(bin.join(command)).arg("--version")).unwrap_or_default();
    if reported.split_whitespace().nth(1) == Some(version) {
        return Ok(());
    }
    println!("      installing {krate} {version} from crates.io (a few minutes, once)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut install = Command::new(cargo);
    install.args(["install", krate, "--version", version]);
    // Build tools need not be as fast as a release: trunk's own profile asks for fat LTO in
    // one codegen unit, many minutes on two cores. Cargo's profile settings from the
    // environment take precedence over the package's manifest.
    install
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    if locked {
        install.arg("--locked");
    }
    run(install.args(extra))
}

/// The wasm-bindgen version Cargo.lock resolved.
pub fn wasm_bindgen_version() -> Result<String, String> {
    let lock = std::fs::read_to_string(project_root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    Err("Cargo.lock does not list wasm-bindgen; run `cargo fetch`".into())
}

/// Debian's Chromium and the browser tests' packages: the driver (playwright-core, which never
/// downloads a browser of its own) and axe-core for the accessibility checks.
pub fn ensure_test_tools() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        apt_install("chromium", "Chromium (for the browser tests)")?;
    }
    let e2e = project_root().join("tests/e2e");
    let installed = ["playwright-core", "axe-core"]
        .iter()
        .all(|package| e2e.join("node_modules").join(package).exists());
    if !installed {
        println!("      installing playwright-core and axe-core for the browser tests (npm ci)");
        run(Command::new("npm").current_dir(&e2e).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

/// A Python virtual environment with the reference packages of
/// `tests/reference/requirements.txt` (pandas, statsmodels, pyarrow, DuckDB), from PyPI.
/// Returns its interpreter. Reinstalls only when the requirements change.
pub fn ensure_python_env() -> Result<PathBuf, String> {
    let root = project_root();
    let venv = crate::state_dir().join("venv");
    let python = venv.join("bin/python");
    let requirements = root.join("tests/reference/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let marker = venv.join("skjold-requirements.txt");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(python);
    }
    println!("      creating the Python reference environment in {} (PyPI)", venv.display());
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).map_err(|e| {
        format!("{e}\nthe reference tests need Python 3 with venv (Debian: python3-venv)")
    })?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&marker, wanted)
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(python)
}
