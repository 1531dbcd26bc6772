//! Invariants of the workspace's shape, written as what a crate must not know.

use std::process::Command;

fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--target",
            "all",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `shared` compiles for the browser and the server alike: no runtime, web framework, query
/// engine or browser bindings may creep into it.
#[test]
fn shared_depends_on_no_server_or_browser_crate() {
    let deps = normal_dependencies("shared");
    assert!(deps.contains(&"serde".to_owned()), "cargo tree listed {deps:?}");
    for forbidden in
        ["tokio", "axum", "datafusion", "arrow", "parquet", "web-sys", "leptos", "tantivy"]
    {
        assert!(!deps.iter().any(|d| d == forbidden), "shared depends on {forbidden}");
    }
}

/// The app reaches the server only through HTTP: it must not link the server crate.
#[test]
fn the_app_does_not_depend_on_the_server() {
    let deps = normal_dependencies("app");
    assert!(deps.contains(&"shared".to_owned()));
    for forbidden in ["server", "axum", "arrow", "parquet", "tantivy", "datafusion"] {
        assert!(!deps.iter().any(|d| d == forbidden), "app depends on {forbidden}");
    }
}
