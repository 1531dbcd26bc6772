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

/// Rule 1 of disclosure.md: only `server::disclosure` may build a released output. Anything
/// else that names a `shared::output` shape by its constructor would be a way around the gate.
#[test]
fn only_the_disclosure_module_builds_outputs() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../server/src"));
    let constructors = [
        "OutputBody::",
        "output::Table {",
        "output::Summary {",
        "output::Model {",
        "output::Chart {",
        "output::Output {",
        "Output {",
        "SummaryRow {",
        "Coefficient {",
        "output::Bar {",
    ];
    let mut offenders = Vec::new();
    let mut files = vec![root.to_path_buf()];
    let mut scanned = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let is_test = relative.ends_with("tests.rs") || relative.contains("/tests/");
        if relative.starts_with("disclosure/") || is_test || !relative.ends_with(".rs") {
            continue;
        }
        scanned += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let matches_body = code.contains("OutputBody::") && !code.contains("matches!");
            let builds = constructors[1..].iter().any(|c| code.contains(c))
                && !code.contains("struct ")
                && code.contains("output::");
            if matches_body || builds {
                offenders.push(format!("server/src/{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(scanned > 20, "the scan found the server's sources ({scanned} files)");
    assert!(offenders.is_empty(), "outputs built outside disclosure:\n{}", offenders.join("\n"));
}
