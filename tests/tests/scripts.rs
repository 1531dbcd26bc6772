//! Script-file tests in the spirit of sqllogictest: every `tests/scripts/NAME.mds` runs through
//! the real engine and disclosure gate on a generated datastore (5 000 persons, seed 42), and
//! its text output must equal `NAME.expected`. New scripts need no recompiling: add the file and
//! run `SKJOLD_BLESS=1 cargo test -p tests --test scripts` to write its expected output, then
//! read that output before committing it. `SKJOLD_SCRIPT=NAME[,NAME…]` runs (or blesses) only
//! those files, named without `.mds`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use server::datastore::Registry;
use server::datastore::generate::{GenerateOptions, generate};
use server::disclosure::audit::MemoryAudit;
use server::engine::{Engine, Limits, Workspace};

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

#[tokio::test]
async fn every_script_gives_its_expected_output() {
    let data = tempfile::tempdir().unwrap();
    let options = GenerateOptions {
        persons: 5_000,
        seed: 42,
        out: data.path().to_owned(),
        force: false,
        threads: 2,
    };
    generate(&options, &|_, _| {}).unwrap();
    let engine =
        Engine::new(Arc::new(Registry::open(data.path()).unwrap()), Limits::default()).unwrap();
    let bless = std::env::var_os("SKJOLD_BLESS").is_some();

    let mut scripts: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mds"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "found {} scripts in {}", scripts.len(), scripts_dir().display());
    if let Ok(only) = std::env::var("SKJOLD_SCRIPT") {
        let names: Vec<&str> = only.split(',').map(str::trim).collect();
        let stem = |p: &PathBuf| p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let known: Vec<String> = scripts.iter().filter_map(stem).collect();
        let unknown: Vec<&&str> =
            names.iter().filter(|n| !known.iter().any(|k| k == **n)).collect();
        assert!(unknown.is_empty(), "SKJOLD_SCRIPT names {unknown:?}, not among {known:?}");
        scripts.retain(|p| stem(p).is_some_and(|s| names.contains(&s.as_str())));
    }
    let mut failures = Vec::new();
    for script in &scripts {
        let source = std::fs::read_to_string(script).unwrap();
        let audit = MemoryAudit::default();
        let outputs = engine.run(&mut Workspace::default(), &source, &audit, "scripts").await;
        let actual: String = outputs.iter().map(|o| o.output().to_text() + "\n").collect();
        let expected_path = script.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
            failures.push(format!(
                "{}: differs from {} at output line {}:\n  expected: {}\n  actual:   {}",
                script.display(),
                expected_path.display(),
                line + 1,
                expected.lines().nth(line).unwrap_or("<end>"),
                actual.lines().nth(line).unwrap_or("<end>"),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(SKJOLD_BLESS=1 rewrites expected outputs)",
        failures.join("\n\n")
    );
}
