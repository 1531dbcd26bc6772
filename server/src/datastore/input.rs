//! Loading a real register: `skjold datastore validate` and `skjold datastore build`.
//!
//! The input is a folder with `datastore.json` (name, labels, description) and, per variable,
//! `NAME.json` (its metadata) and `NAME.csv` (`id;value;start;stop`, dates `YYYY-MM-DD`, an
//! optional header line). Every problem is collected with its file and line; a build writes into
//! a staging folder and publishes only when there was none.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use shared::Date;
use shared::metadata::{DataType, DatastoreMetadata, Temporality, ValueDomain, VariableMetadata};

use super::writer::{Cell, CoverageTracker, VariableWriter};
use super::{DatastoreError, Staging};

/// Problems kept per file; the rest are counted, so a file of garbage cannot flood the report.
const PROBLEMS_KEPT_PER_FILE: usize = 1_000;

/// One thing wrong with the input, located to a file and (where it applies) a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Everything found wrong, plus counts of problems not listed one by one.
#[derive(Debug, Default)]
pub struct Problems {
    pub listed: Vec<Problem>,
    /// File → problems beyond [`PROBLEMS_KEPT_PER_FILE`].
    pub unlisted: BTreeMap<PathBuf, usize>,
}

impl Problems {
    pub fn total(&self) -> usize {
        self.listed.len() + self.unlisted.values().sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.listed {
            writeln!(f, "{p}")?;
        }
        for (file, n) in &self.unlisted {
            writeln!(f, "{}: … and {n} more problems in this file", file.display())?;
        }
        write!(f, "{} problem(s) found", self.total())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the input has problems; nothing was published\n{0}")]
    Invalid(Problems),
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
}

/// What a clean input holds.
#[derive(Debug, Clone)]
pub struct InputSummary {
    pub name: String,
    pub variables: usize,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub summary: InputSummary,
    pub version: u32,
    pub path: PathBuf,
}

/// Checks an input folder without writing anything.
pub fn validate(input: &Path) -> Result<InputSummary, Problems> {
    let mut sink = Sink::Check;
    load(input, &mut sink)
}

/// Checks and publishes an input folder as the next version of its datastore under `out`.
pub fn build(input: &Path, out: &Path) -> Result<BuildReport, BuildError> {
    let mut problems = Problems::default();
    let Some(datastore) = read_datastore_json(input, &mut problems) else {
        return Err(BuildError::Invalid(problems));
    };
    let staging = Staging::new(out, &datastore.name)?;
    let mut sink = Sink::Write { staging: &staging, failed: None };
    let summary = load(input, &mut sink).map_err(BuildError::Invalid)?;
    if let Sink::Write { failed: Some(e), .. } = sink {
        return Err(e.into());
    }
    // `staging` is removed on drop if publishing fails, so a failed build leaves no trace.
    let version = staging.publish(datastore, None, false)?;
    let path = out.join(&summary.name).join(version.to_string());
    Ok(BuildReport { summary, version, path })
}

/// Where checked rows go: nowhere (validate) or into a staging folder (build).
enum Sink<'a> {
    Check,
    Write { staging: &'a Staging, failed: Option<DatastoreError> },
}

struct Row {
    line: usize,
    id: i64,
    value: Value,
    start: Option<i32>,
    stop: Option<i32>,
}

enum Value {
    Str(String),
    Long(i64),
    Double(f64),
    Date(i32),
}

impl Value {
    fn cell(&self) -> Cell<'_> {
        match self {
            Value::Str(s) => Cell::Str(s),
            Value::Long(v) => Cell::Long(*v),
            Value::Double(v) => Cell::Double(*v),
            Value::Date(v) => Cell::Date(*v),
        }
    }
}

fn read_datastore_json(input: &Path, problems: &mut Problems) -> Option<DatastoreMetadata> {
    let path = input.join("datastore.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.listed.push(Problem {
                file: path,
                line: None,
                message: format!(
                    "cannot read it ({e}); every input folder needs a datastore.json with name, label and description"
                ),
            });
            return None;
        }
    };
    match serde_json::from_str::<DatastoreMetadata>(&text) {
        Ok(meta) => Some(meta),
        Err(e) => {
            problems.listed.push(Problem {
                file: path,
                line: Some(e.line()),
                message: json_message(&e),
            });
            None
        }
    }
}

fn json_message(e: &serde_json::Error) -> String {
    // serde_json appends "at line L column C"; the line is reported separately.
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text).to_owned();
    format!("{text} (column {})", e.column())
}

fn load(input: &Path, sink: &mut Sink<'_>) -> Result<InputSummary, Problems> {
    let mut problems = Problems::default();
    let datastore = read_datastore_json(input, &mut problems);
    let entries = match std::fs::read_dir(input) {
        Ok(entries) => entries,
        Err(e) => {
            problems.listed.push(Problem {
                file: input.to_owned(),
                line: None,
                message: format!("cannot read the input folder: {e}"),
            });
            return Err(problems);
        }
    };
    let mut jsons = Vec::new();
    let mut csvs = HashSet::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") if stem != "datastore" => jsons.push((stem, path)),
            Some("csv") => {
                csvs.insert(stem);
            }
            _ => {}
        }
    }
    jsons.sort();
    let mut variables = 0;
    let mut rows = 0;
    for (stem, json_path) in &jsons {
        let Some(meta) = read_variable_json(json_path, stem, &mut problems) else { continue };
        let csv_path = json_path.with_extension("csv");
        if !csvs.remove(stem.as_str()) {
            problems.listed.push(Problem {
                file: json_path.clone(),
                line: None,
                message: format!(
                    "no data file for {stem}: add {stem}.csv with lines id;value;start;stop"
                ),
            });
            continue;
        }
        variables += 1;
        rows += load_variable(&meta, &csv_path, &mut problems, sink);
    }
    let mut orphans: Vec<_> = csvs.into_iter().collect();
    orphans.sort();
    for stem in orphans {
        problems.listed.push(Problem {
            file: input.join(format!("{stem}.csv")),
            line: None,
            message: format!("no metadata for {stem}: add {stem}.json describing the variable"),
        });
    }
    if variables == 0 && problems.is_empty() {
        problems.listed.push(Problem {
            file: input.to_owned(),
            line: None,
            message: "no variables found: add NAME.json and NAME.csv for each variable".into(),
        });
    }
    match datastore {
        Some(d) if problems.is_empty() => {
            Ok(InputSummary { name: d.name.to_string(), variables, rows })
        }
        _ => Err(problems),
    }
}

fn read_variable_json(
    path: &Path,
    stem: &str,
    problems: &mut Problems,
) -> Option<VariableMetadata> {
    let problem = |line, message| Problem { file: path.to_owned(), line, message };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.listed.push(problem(None, format!("cannot read it: {e}")));
            return None;
        }
    };
    let meta = match serde_json::from_str::<VariableMetadata>(&text) {
        Ok(m) => m,
        Err(e) => {
            problems.listed.push(problem(Some(e.line()), json_message(&e)));
            return None;
        }
    };
    let mut ok = true;
    if meta.name.as_str() != stem {
        problems.listed.push(problem(
            None,
            format!(
                "the file is named {stem}.json but describes {}: name the file after the variable",
                meta.name
            ),
        ));
        ok = false;
    }
    if let ValueDomain::CodeList { codes, .. } = &meta.value_domain {
        if meta.data_type != DataType::String {
            problems.listed.push(problem(
                None,
                format!("a code list needs data_type STRING, not {}", meta.data_type.as_str()),
            ));
            ok = false;
        }
        if codes.is_empty() {
            problems.listed.push(problem(
                None,
                "the code list is empty: list the codes or use a measure".into(),
            ));
            ok = false;
        }
        let mut seen = HashSet::new();
        for c in codes {
            if !seen.insert((&c.code, c.valid_from)) {
                problems.listed.push(problem(
                    None,
                    format!("code '{}' is listed twice with the same valid_from", c.code),
                ));
                ok = false;
            }
        }
    }
    if meta.points_to.is_some() && meta.data_type != DataType::Long {
        problems
            .listed
            .push(problem(None, "a pointer variable (points_to) needs data_type LONG".into()));
        ok = false;
    }
    ok.then_some(meta)
}

/// Parses, checks and (for a build) writes one variable; returns its row count.
fn load_variable(
    meta: &VariableMetadata,
    path: &Path,
    problems: &mut Problems,
    sink: &mut Sink<'_>,
) -> u64 {
    let mut report = FileProblems::new(path);
    let mut rows = parse_rows(meta, path, &mut report);
    rows.sort_unstable_by_key(|r| (r.id, r.start, r.line));
    check_periods(meta, &rows, &mut report);
    let count = rows.len() as u64;
    let clean = report.count == 0 && problems.is_empty();
    report.into(problems);
    if let (true, Sink::Write { staging, failed }) = (clean, sink)
        && failed.is_none()
        && let Err(e) = write_rows(staging, meta, &rows)
    {
        *failed = Some(e);
    }
    count
}

struct FileProblems {
    file: PathBuf,
    listed: Vec<Problem>,
    count: usize,
}

impl FileProblems {
    fn new(file: &Path) -> FileProblems {
        FileProblems { file: file.to_owned(), listed: Vec::new(), count: 0 }
    }

    fn add(&mut self, line: usize, message: String) {
        self.count += 1;
        if self.listed.len() < PROBLEMS_KEPT_PER_FILE {
            self.listed.push(Problem { file: self.file.clone(), line: Some(line), message });
        }
    }

    fn into(self, problems: &mut Problems) {
        let unlisted = self.count - self.listed.len();
        problems.listed.extend(self.listed);
        if unlisted > 0 {
            problems.unlisted.insert(self.file, unlisted);
        }
    }
}

fn parse_rows(meta: &VariableMetadata, path: &Path, report: &mut FileProblems) -> Vec<Row> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            report.add(0, format!("cannot open it: {e}"));
            return Vec::new();
        }
    };
    let codes: Option<HashSet<&str>> = match &meta.value_domain {
        ValueDomain::CodeList { codes, missing_codes } => {
            Some(codes.iter().chain(missing_codes).map(|c| c.code.as_str()).collect())
        }
        ValueDomain::Measure { .. } => None,
    };
    let mut rows = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                report.add(
                    number,
                    format!("cannot read the line: {e} (the file must be UTF-8 text)"),
                );
                break;
            }
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty()
            || (number == 1 && line.eq_ignore_ascii_case("id;value;start;stop"))
        {
            continue;
        }
        let fields: Vec<&str> = line.split(';').map(|f| f.trim().trim_matches('"')).collect();
        if fields.len() != 4 {
            report.add(
                number,
                format!("expected 4 fields id;value;start;stop, found {}", fields.len()),
            );
            continue;
        }
        let mut bad = false;
        let mut fail = |message: String| {
            report.add(number, message);
            bad = true;
        };
        let id = fields[0]
            .parse::<i64>()
            .map_err(|_| fail(format!("id '{}' is not a whole number", fields[0])))
            .ok();
        let value = parse_value(meta, fields[1], codes.as_ref()).map_err(&mut fail).ok();
        let date = |text: &str, what: &str| -> Result<Option<i32>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<Date>().map(|d| Some(d.epoch_days())).map_err(|e| format!("{what}: {e}"))
        };
        let start = date(fields[2], "start").map_err(&mut fail).ok().flatten();
        let stop = date(fields[3], "stop").map_err(&mut fail).ok().flatten();
        let (has_start, has_stop) = (!fields[2].is_empty(), !fields[3].is_empty());
        match meta.temporality {
            Temporality::Fixed if has_start || has_stop => {
                fail("a FIXED variable has no dates: leave start and stop empty".into())
            }
            Temporality::Status if !has_start => {
                fail("a STATUS variable needs the status date as start".into())
            }
            Temporality::Status if has_stop && start != stop => {
                fail("a STATUS row has start = stop (the status date)".into())
            }
            Temporality::Accumulated if !has_start || !has_stop => {
                fail("an ACCUMULATED variable needs start and stop of its period".into())
            }
            Temporality::Event if !has_start => {
                fail("an EVENT variable needs the start of the spell".into())
            }
            _ => {}
        }
        if let (Some(s), Some(e)) = (start, stop)
            && e < s
        {
            fail(format!("stop {} is before start {}", fields[3], fields[2]));
        }
        if bad {
            continue;
        }
        let stop = if meta.temporality == Temporality::Status { start } else { stop };
        if let (Some(id), Some(value)) = (id, value) {
            rows.push(Row { line: number, id, value, start, stop });
        }
    }
    rows
}

fn parse_value(
    meta: &VariableMetadata,
    text: &str,
    codes: Option<&HashSet<&str>>,
) -> Result<Value, String> {
    match meta.data_type {
        DataType::String => {
            if text.is_empty() {
                return Err(
                    "the value is empty: use a missing code from the code list instead".into()
                );
            }
            if let Some(codes) = codes
                && !codes.contains(text)
            {
                return Err(format!(
                    "'{text}' is not in the code list of {}: add it to the code list or fix the value",
                    meta.name
                ));
            }
            Ok(Value::Str(text.to_owned()))
        }
        DataType::Long => text.parse().map(Value::Long).map_err(|_| {
            format!("value '{text}' is not a whole number, as data_type LONG requires")
        }),
        DataType::Double => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Value::Double(v)),
            _ => Err(format!(
                "value '{text}' is not a number, as data_type DOUBLE requires (use '.' as decimal point)"
            )),
        },
        DataType::Date => text
            .parse::<Date>()
            .map(|d| Value::Date(d.epoch_days()))
            .map_err(|e| format!("value: {e}")),
    }
}

/// FIXED: one row per id. STATUS: one row per id and date. ACCUMULATED and EVENT: no two
/// periods of one id overlap (an open EVENT spell runs to the end of time).
fn check_periods(meta: &VariableMetadata, rows: &[Row], report: &mut FileProblems) {
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.id != b.id {
            continue;
        }
        let message = match meta.temporality {
            Temporality::Fixed => Some(format!(
                "id {} appears again (first on line {}); a FIXED variable has one value per unit",
                b.id, a.line
            )),
            Temporality::Status if a.start == b.start => Some(format!(
                "id {} has a second value for the same status date (first on line {})",
                b.id, a.line
            )),
            Temporality::Accumulated | Temporality::Event
                if a.stop.is_none_or(|stop| b.start.is_some_and(|s| s <= stop)) =>
            {
                Some(format!(
                    "id {} has a period overlapping the one on line {}; periods of one unit may not overlap",
                    b.id, a.line
                ))
            }
            _ => None,
        };
        if let Some(message) = message {
            report.add(b.line, message);
        }
    }
}

fn write_rows(
    staging: &Staging,
    meta: &VariableMetadata,
    rows: &[Row],
) -> Result<(), DatastoreError> {
    let mut writer =
        VariableWriter::create(staging.dir(), &meta.name, meta.data_type, meta.temporality, 0)?;
    for row in rows {
        writer.push(row.id, row.value.cell(), row.start, row.stop)?;
    }
    let (_, coverage): (u64, CoverageTracker) = writer.finish()?;
    let mut meta = meta.clone();
    meta.coverage = Some(coverage.coverage(fixed_period()));
    staging.write_variable_metadata(&meta)
}

/// FIXED variables carry no dates; their coverage is "always" (the epoch to today).
fn fixed_period() -> (Date, Date) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i32)
        .unwrap_or(0);
    (Date::from_epoch_days(0), Date::from_epoch_days(today))
}
