//! The `skjold` binary as users run it: help, datastore generate, build and validate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn skjold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skjold")).args(args).output().expect("skjold runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_documents_every_subcommand_and_setting() {
    let top = skjold(&["--help"]);
    assert!(top.status.success());
    let help = text(&top.stdout);
    for expected in ["serve", "datastore", "SKJOLD_LISTEN", "SKJOLD_DATASTORES", "SKJOLD_APP_DIR"] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
    let datastore = text(&skjold(&["datastore", "--help"]).stdout);
    for expected in ["generate", "build", "validate"] {
        assert!(datastore.contains(expected), "datastore --help lacks {expected}:\n{datastore}");
    }
    let generate = text(&skjold(&["datastore", "generate", "--help"]).stdout);
    for expected in ["--persons", "--seed", "--out", "[default: 200000]"] {
        assert!(generate.contains(expected), "generate --help lacks {expected}:\n{generate}");
    }
}

/// Every file of a tree with its bytes, for comparing two outputs exactly.
fn tree_bytes(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(root).unwrap().to_owned(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn generate_is_deterministic_for_a_seed_whatever_the_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let run = |dir: &Path, seed: &str, threads: &str| {
        let out = skjold(&[
            "datastore",
            "generate",
            "--persons",
            "5000",
            "--seed",
            seed,
            "--threads",
            threads,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let report = run(a.path(), "42", "1");
    assert!(report.contains("published datastore demo version 1"), "{report}");
    assert!(report.contains("5000 persons, 63 variables"), "{report}");
    run(b.path(), "42", "2");
    run(c.path(), "43", "2");
    let (ta, tb, tc) = (tree_bytes(a.path()), tree_bytes(b.path()), tree_bytes(c.path()));
    assert!(ta.len() > 63, "expected metadata and data files, found {}", ta.len());
    assert!(ta == tb, "the same seed gave different files with 1 and 2 threads");
    assert!(ta != tc, "a different seed gave the same data");
}

#[test]
fn generate_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    assert!(skjold(&["datastore", "generate", "--persons", "2000", "--out", out]).status.success());
    let again = skjold(&["datastore", "generate", "--persons", "2000", "--out", out]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("version 1 already exists"), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("--force"));
    let forced = skjold(&[
        "datastore",
        "generate",
        "--persons",
        "2000",
        "--seed",
        "9",
        "--force",
        "--out",
        out,
    ]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
}

const DATASTORE_JSON: &str = r#"{
  "name": "testreg",
  "label": {"nb": "Testregister", "en": "Test register"},
  "description": {"nb": "Et lite register", "en": "A small register"}
}"#;

fn variable_json(name: &str, temporality: &str, data_type: &str, domain: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "label": {{"nb": "Etikett", "en": "Label"}},
  "description": {{"nb": "Beskrivelse", "en": "Description"}},
  "unit_type": "PERSON",
  "temporality": "{temporality}",
  "data_type": "{data_type}",
  "subject_fields": ["Test"],
  "population": {{"nb": "Alle", "en": "Everyone"}},
  "value_domain": {domain}
}}"#
    )
}

const SEX_CODES: &str = r#"{"kind": "code_list", "codes": [
  {"code": "1", "label": {"nb": "Mann", "en": "Male"}},
  {"code": "2", "label": {"nb": "Kvinne", "en": "Female"}}]}"#;
const NOK: &str = r#"{"kind": "measure", "unit": {"nb": "kroner", "en": "NOK"},
  "description": {"nb": "Beløp", "en": "Amount"}}"#;

fn write_input(dir: &Path, files: &[(&str, &str)]) {
    std::fs::write(dir.join("datastore.json"), DATASTORE_JSON).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn good_input(dir: &Path) {
    write_input(
        dir,
        &[
            ("TEST_KJOENN.json", &variable_json("TEST_KJOENN", "FIXED", "STRING", SEX_CODES)),
            ("TEST_KJOENN.csv", "id;value;start;stop\n1;1;;\n2;2;;\n3;2;;\n"),
            ("TEST_LONN.json", &variable_json("TEST_LONN", "ACCUMULATED", "LONG", NOK)),
            (
                "TEST_LONN.csv",
                "1;500000;2020-01-01;2020-12-31\n1;520000;2021-01-01;2021-12-31\n2;410000;2021-01-01;2021-12-31\n",
            ),
        ],
    );
}

#[test]
fn validate_accepts_a_good_register_and_writes_nothing() {
    let input = tempfile::tempdir().unwrap();
    good_input(input.path());
    let before = tree_bytes(input.path());
    let out = skjold(&["datastore", "validate", "--input", input.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("datastore testreg, 2 variables, 6 rows"),
        "{}",
        text(&out.stdout)
    );
    assert!(before == tree_bytes(input.path()));
}

#[test]
fn validate_reports_every_problem_with_file_and_line() {
    let input = tempfile::tempdir().unwrap();
    write_input(
        input.path(),
        &[
            ("TEST_KJOENN.json", &variable_json("TEST_KJOENN", "FIXED", "STRING", SEX_CODES)),
            // Line 2: unknown code; line 3: a date on a FIXED variable; line 4: duplicate id;
            // line 5: three fields.
            ("TEST_KJOENN.csv", "1;1;;\n2;3;;\n3;1;2020-01-01;\n1;2;;\n4;1;\n"),
            ("TEST_LONN.json", &variable_json("TEST_LONN", "ACCUMULATED", "LONG", NOK)),
            // Line 1: not a number; line 3: overlaps line 2; line 4: stop before start.
            (
                "TEST_LONN.csv",
                "1;lots;2020-01-01;2020-12-31\n2;1;2020-01-01;2020-12-31\n2;1;2020-06-01;2021-05-31\n3;1;2021-01-01;2020-01-01\n",
            ),
            ("TEST_ORPHAN.csv", "1;1;;\n"),
        ],
    );
    let out = skjold(&["datastore", "validate", "--input", input.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let report = text(&out.stderr);
    let kjoenn = input.path().join("TEST_KJOENN.csv").display().to_string();
    let lonn = input.path().join("TEST_LONN.csv").display().to_string();
    for expected in [
        format!("{kjoenn}:2: '3' is not in the code list of TEST_KJOENN"),
        format!("{kjoenn}:3: a FIXED variable has no dates"),
        format!("{kjoenn}:4: id 1 appears again (first on line 1)"),
        format!("{kjoenn}:5: expected 4 fields id;value;start;stop, found 3"),
        format!("{lonn}:1: value 'lots' is not a whole number"),
        format!("{lonn}:3: id 2 has a period overlapping the one on line 2"),
        format!("{lonn}:4: stop 2020-01-01 is before start 2021-01-01"),
        "TEST_ORPHAN.csv: no metadata for TEST_ORPHAN".to_owned(),
        "8 problem(s) found".to_owned(),
    ] {
        assert!(report.contains(&expected), "missing «{expected}» in:\n{report}");
    }
}

#[test]
fn build_publishes_versions_atomically_and_a_failed_build_changes_nothing() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    good_input(input.path());
    let (input_arg, out_arg) = (input.path().to_str().unwrap(), out.path().to_str().unwrap());

    let first = skjold(&["datastore", "build", "--input", input_arg, "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("published datastore testreg version 1"));
    let second = skjold(&["datastore", "build", "--input", input_arg, "--out", out_arg]);
    assert!(
        text(&second.stdout).contains("published datastore testreg version 2"),
        "{}",
        text(&second.stderr)
    );

    let published = tree_bytes(out.path());
    std::fs::write(input.path().join("TEST_LONN.csv"), "1;oops;2020-01-01;2020-12-31\n").unwrap();
    let failed = skjold(&["datastore", "build", "--input", input_arg, "--out", out_arg]);
    assert!(!failed.status.success());
    assert!(text(&failed.stderr).contains("nothing was published"), "{}", text(&failed.stderr));
    assert!(published == tree_bytes(out.path()), "a failed build changed the published datastore");

    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("testreg/2/variables/TEST_LONN.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["coverage"]["start"], "2020-01-01");
    assert_eq!(meta["coverage"]["latest"], "2021-12-31");
}

/// `skjold audit verify` on a log: (exit code, what it printed).
fn verify(log: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify", log.to_str().unwrap()];
    args.extend(extra);
    let out = skjold(&args);
    (out.status.code().unwrap_or(-1), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn audit_verify_finds_each_kind_of_tampering_in_a_real_log() {
    // A real log: a script run through the engine and the gate by the binary, twice (a
    // second process continues the first one's chain).
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out =
        skjold(&["datastore", "generate", "--persons", "2000", "--out", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = dir.path().join("intro.txt");
    std::fs::write(
        &script,
        "require demo:1 as db\ncreate-dataset persons\nimport db/BEFOLKNING_KJOENN as sex\nimport db/INNTEKT_WLONN 2021-12-31 as wage\ntabulate sex\nsummarize wage\n",
    )
    .unwrap();
    let log = dir.path().join("audit.jsonl");
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_skjold"))
            .args(["run", script.to_str().unwrap(), "--datastore", store.to_str().unwrap()])
            .env("SKJOLD_AUDIT_LOG", &log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    }
    let lines: Vec<String> =
        std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 12, "six outputs per run: {lines:#?}");
    assert_eq!(
        verify(&log, &[]),
        (
            0,
            format!(
                "{}: 12 records, the chain is whole; its end matches the head\n",
                log.display()
            )
        )
    );
    let head = std::fs::read_to_string(dir.path().join("audit.jsonl.head")).unwrap();
    assert!(head.starts_with("12 "), "{head}");

    // Each tampering on a copy of the log, with the head kept elsewhere.
    let tampered = |name: &str, lines: Vec<String>, tail: &str| -> (i32, String) {
        let copy = dir.path().join(name);
        std::fs::write(&copy, lines.join("\n") + tail).unwrap();
        let (code, said) = verify(&copy, &["--head", head.trim()]);
        (code, said.replace(&format!("{}: ", copy.display()), ""))
    };
    let mut edited = lines.clone();
    edited[4] = edited[4].replace("\"user\":\"", "\"user\":\"x");
    assert_eq!(
        tampered("edited", edited, "\n"),
        (1, "line 5: record 5 was edited: its content no longer matches its hash\n".into())
    );
    let mut removed = lines.clone();
    removed.remove(6);
    assert_eq!(
        tampered("removed", removed, "\n"),
        (1, "line 7: record 7 is missing before record 8\n".into())
    );
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    assert_eq!(
        tampered("reordered", reordered, "\n"),
        (1, "line 3: record 3 is missing before record 4\n".into())
    );
    let cut_short = lines[..10].to_vec();
    assert_eq!(
        tampered("cut", cut_short, "\n"),
        (1, "line 11: records 11 to 12 are missing at the end (the head says the log ends with 12)\n".into())
    );
    let mut half = lines.clone();
    let last = half.pop().unwrap();
    half.push(last[..last.len() / 2].to_owned());
    assert_eq!(
        tampered("half", half, ""),
        (1, "line 12: is not a record of the chain: it was edited, written half, or comes from before the chain\n".into())
    );
    // An edit whose hash was recomputed still breaks the link to the next record.
    let mut rehashed = lines.clone();
    rehashed[4] = rehash(&rehashed[4].replace("\"user\":\"", "\"user\":\"x"));
    assert_eq!(
        tampered("rehashed", rehashed, "\n"),
        (1, "line 6: record 6 does not follow record 5: one of the two was replaced\n".into())
    );
}

/// A line with its hash recomputed over its (edited) content, as a tamperer who knows the
/// format would write it.
fn rehash(line: &str) -> String {
    use sha2::{Digest, Sha256};
    let cut = line.rfind(",\"hash\":\"").unwrap();
    let unsigned = format!("{}}}", &line[..cut]);
    let hash: String =
        Sha256::digest(unsigned.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("{},\"hash\":\"{hash}\"}}", &line[..cut])
}

#[test]
fn order_prints_what_a_script_uses_as_text_and_as_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_str().unwrap();
    let made = skjold(&["datastore", "generate", "--persons", "2000", "--out", dir]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    // A file beside the datastores is not taken for one.
    let script = root.path().join("wages.mds");
    std::fs::write(
        &script,
        "require demo as db\ncreate-dataset persons\nfor y in 2020 : 2021\n  import db/INNTEKT_WLONN $y-12-31 as wage_ ++ $y\nend\nkeep if wage_2021 > 0\n",
    )
    .unwrap();
    let file = script.to_str().unwrap();
    let out = skjold(&["order", file, "--datastore", dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains("Variables (1)\n  demo:1 INNTEKT_WLONN: "), "{page}");
    assert!(page.contains("(import, at 2020-12-31, 2021-12-31; line 4)"), "{page}");
    assert!(page.contains("  persons: keep if wage_2021 > 0 (line 6)"), "{page}");
    let out = skjold(&["order", file, "--datastore", dir, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["datastores"][0]["version"], 1);
    assert_eq!(json["variables"][0]["dates"].as_array().unwrap().len(), 2);
    // A script that does not read says where.
    std::fs::write(&script, "require demo as db\ntabluate x\n").unwrap();
    let out = skjold(&["order", file, "--datastore", dir]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("line 2"), "{}", text(&out.stderr));
}
