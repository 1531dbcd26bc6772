//! `cargo xtask bench`: measurements on a release build, kept out of CI because they take
//! minutes and need quiet cores.
//!
//! 1. Generating the synthetic population (default 5.5 million persons): wall time and peak
//!    memory (the generator's VmHWM, sampled from /proc).
//! 2. Catalog search latency, p50/p99, directly and through the HTTP router.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::flag_value;
use crate::util::{cargo, project_root};

pub fn command(args: &[String]) -> Result<(), String> {
    let persons = flag_value(args, "--persons")?.unwrap_or_else(|| "5500000".into());
    let skip_generate = args.iter().any(|a| a == "--skip-generate");
    let root = project_root();
    let datastores = root.join("target/bench/datastores");
    println!("[1/3] building the release binary");
    cargo(&["build", "--release", "-p", "server", "--bin", "skjold"])?;
    if !skip_generate {
        println!("[2/3] generating {persons} persons");
        let _ = std::fs::remove_dir_all(&datastores);
        let (elapsed, peak_kib) = measure(
            Command::new(root.join("target/release/skjold"))
                .args(["datastore", "generate", "--persons", &persons, "--out"])
                .arg(&datastores),
        )?;
        let bytes = folder_size(&datastores);
        println!(
            "generate: {persons} persons in {:.1} s, peak memory {:.0} MiB, {:.2} GiB on disk",
            elapsed.as_secs_f64(),
            peak_kib as f64 / 1024.0,
            bytes as f64 / (1u64 << 30) as f64
        );
    }
    println!("[3/3] catalog search latency");
    cargo(&[
        "bench",
        "-p",
        "server",
        "--bench",
        "catalog_search",
        "--",
        datastores.to_str().unwrap_or_default(),
    ])
}

/// Runs a command to completion, returning its wall time and peak resident memory in KiB.
fn measure(command: &mut Command) -> Result<(Duration, u64), String> {
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        // VmHWM is the process's own high-water mark, so sampling misses nothing but growth
        // in its last 50 ms.
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                return Err(format!("{command:?} failed ({status})"));
            }
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn folder_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    };
    entries.filter_map(|e| e.ok()).map(|e| folder_size(&e.path())).sum()
}
