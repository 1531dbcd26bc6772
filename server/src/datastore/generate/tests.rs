//! The synthetic population read back from its Parquet files: exact counts, sound links, and the
//! dependence researchers expect (wages on education, age and sex; mortality on age).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shared::Date;
use shared::metadata::{ValueDomain, VariableMetadata};

#[derive(Debug, Clone, PartialEq)]
enum V {
    S(String),
    L(i64),
    D(f64),
}

impl V {
    fn s(&self) -> &str {
        match self {
            V::S(s) => s,
            other => panic!("{other:?} is not a string"),
        }
    }
    fn l(&self) -> i64 {
        match self {
            V::L(v) => *v,
            other => panic!("{other:?} is not a whole number"),
        }
    }
}

struct Row {
    part: usize,
    id: i64,
    value: V,
    start: Option<i32>,
    stop: Option<i32>,
}

fn read(root: &Path, name: &str) -> Vec<Row> {
    let dir = root.join("demo/1/data").join(name);
    let mut rows = Vec::new();
    let mut parts: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    parts.sort();
    for (part_index, part) in parts.iter().enumerate() {
        let file = std::fs::File::open(part).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let values = batch.column(1);
            let starts = batch.column(2).as_primitive::<Int32Type>();
            let stops = batch.column(3).as_primitive::<Int32Type>();
            for i in 0..batch.num_rows() {
                let value = match values.data_type() {
                    arrow::datatypes::DataType::Utf8 => {
                        V::S(values.as_string::<i32>().value(i).to_owned())
                    }
                    arrow::datatypes::DataType::Int64 => {
                        V::L(values.as_primitive::<Int64Type>().value(i))
                    }
                    arrow::datatypes::DataType::Float64 => {
                        V::D(values.as_primitive::<Float64Type>().value(i))
                    }
                    arrow::datatypes::DataType::Date32 => {
                        V::L(values.as_primitive::<Date32Type>().value(i) as i64)
                    }
                    other => panic!("unexpected type {other}"),
                };
                let start = (!starts.is_null(i)).then(|| starts.value(i));
                let stop = (!stops.is_null(i)).then(|| stops.value(i));
                rows.push(Row { part: part_index, id: ids.value(i), value, start, stop });
            }
        }
    }
    rows
}

fn metadata(root: &Path, name: &str) -> VariableMetadata {
    let text = std::fs::read_to_string(root.join("demo/1/variables").join(format!("{name}.json")))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> i32 {
    Date::from_ymd(y, m, d).unwrap().epoch_days()
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// One population shared by the tests below (generating it is the slow part).
fn population() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| crate::test_support::generated(12_000, 3)).path()
}

#[test]
fn every_person_appears_once_with_sex_and_birth() {
    let root = population();
    let sex = read(root, "BEFOLKNING_KJOENN");
    assert_eq!(sex.len(), 12_000);
    let ids: HashSet<i64> = sex.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 12_000, "unit ids repeat");
    let men = sex.iter().filter(|r| r.value.s() == "1").count() as f64 / 12_000.0;
    assert!((0.45..0.55).contains(&men), "share of men {men}");
    let births = read(root, "BEFOLKNING_FOEDSELS_AAR_MND");
    assert_eq!(births.iter().map(|r| r.id).collect::<HashSet<_>>(), ids);
    // Rows are ordered by unit id within each part: the layout the delta encoding relies on.
    let parts: HashSet<usize> = sex.iter().map(|r| r.part).collect();
    assert!(parts.len() > 1, "expected several parts, found {}", parts.len());
    for pair in sex.windows(2).filter(|p| p[0].part == p[1].part) {
        assert!(
            pair[0].id < pair[1].id,
            "ids out of order within a part: {} then {}",
            pair[0].id,
            pair[1].id
        );
    }
}

#[test]
fn wages_rise_with_education_and_men_earn_more() {
    let root = population();
    let year_start = day(2020, 1, 1);
    let wages: HashMap<i64, i64> = read(root, "INNTEKT_WLONN")
        .into_iter()
        .filter(|r| r.start == Some(year_start) && r.value.l() > 0)
        .map(|r| (r.id, r.value.l()))
        .collect();
    let education: HashMap<i64, char> = read(root, "NUDB_BU")
        .into_iter()
        .filter(|r| r.start == Some(day(2019, 10, 1)))
        .map(|r| (r.id, r.value.s().chars().next().unwrap()))
        .collect();
    let by_level = |levels: &[char]| {
        median(
            wages
                .iter()
                .filter(|(id, _)| education.get(id).is_some_and(|l| levels.contains(l)))
                .map(|(_, w)| *w)
                .collect(),
        )
    };
    let (compulsory, secondary, higher) =
        (by_level(&['2']), by_level(&['4']), by_level(&['6', '7', '8']));
    assert!(
        compulsory < secondary && secondary < higher,
        "medians {compulsory} {secondary} {higher}"
    );
    assert!(
        higher as f64 > 1.3 * secondary as f64,
        "higher education premium too small: {higher} vs {secondary}"
    );
    let sex: HashMap<i64, String> = read(root, "BEFOLKNING_KJOENN")
        .into_iter()
        .map(|r| (r.id, r.value.s().to_owned()))
        .collect();
    let by_sex =
        |s: &str| median(wages.iter().filter(|(id, _)| sex[id] == s).map(|(_, w)| *w).collect());
    let (men, women) = (by_sex("1"), by_sex("2"));
    assert!(men > women && (men as f64) < 1.6 * women as f64, "men {men}, women {women}");
    // Wage levels are plausible for Norway (median around NOK 450 000 – 700 000 for men).
    assert!((400_000..800_000).contains(&men), "median wage of men {men}");
}

#[test]
fn mortality_rises_steeply_with_age() {
    let root = population();
    let births: HashMap<i64, i64> = read(root, "BEFOLKNING_FOEDSELS_AAR_MND")
        .into_iter()
        .map(|r| (r.id, r.value.l() / 100))
        .collect();
    let status_2010: HashMap<i64, String> = read(root, "BEFOLKNING_STATUSKODE")
        .into_iter()
        .filter(|r| r.start == Some(day(2010, 1, 1)))
        .map(|r| (r.id, r.value.s().to_owned()))
        .collect();
    let deaths: HashMap<i64, i64> =
        read(root, "BEFOLKNING_DOEDS_DATO").into_iter().map(|r| (r.id, r.value.l())).collect();
    let rate = |ages: std::ops::Range<i64>| {
        let alive: Vec<i64> = status_2010
            .iter()
            .filter(|(id, s)| *s == "1" && ages.contains(&(2010 - births[id])))
            .map(|(id, _)| *id)
            .collect();
        let died = alive
            .iter()
            .filter(|id| deaths.get(id).is_some_and(|&d| d < day(2015, 1, 1) as i64))
            .count();
        died as f64 / alive.len() as f64
    };
    let (middle, old) = (rate(40..50), rate(80..90));
    assert!(old > 10.0 * middle, "five-year death rates: 40-49 {middle}, 80-89 {old}");
    assert!((0.2..0.7).contains(&old), "five-year death rate at 80-89: {old}");
}

#[test]
fn mothers_link_to_older_women_in_the_register() {
    let root = population();
    let sex: HashMap<i64, String> = read(root, "BEFOLKNING_KJOENN")
        .into_iter()
        .map(|r| (r.id, r.value.s().to_owned()))
        .collect();
    let births: HashMap<i64, i64> = read(root, "BEFOLKNING_FOEDSELS_AAR_MND")
        .into_iter()
        .map(|r| (r.id, r.value.l() / 100))
        .collect();
    let mothers = read(root, "BEFOLKNING_MOR_FNR");
    assert!(mothers.len() > 3_000, "only {} persons have a mother linked", mothers.len());
    let mut found = 0;
    for m in &mothers {
        let mother = m.value.l();
        if let Some(s) = sex.get(&mother) {
            found += 1;
            assert_eq!(s, "2", "mother {mother} is not a woman");
            let gap = births[&m.id] - births[&mother];
            assert!((15..=50).contains(&gap), "mother {gap} years older than her child");
        }
    }
    // Mothers who died before 2000 are outside the population, as in the real registers.
    assert!(
        found as f64 > 0.85 * mothers.len() as f64,
        "{found} of {} mothers found",
        mothers.len()
    );
}

#[test]
fn residence_codes_are_valid_on_their_status_dates() {
    let root = population();
    let meta = metadata(root, "BOSATTEFDT_BOSTED");
    let ValueDomain::CodeList { codes, .. } = meta.value_domain else {
        panic!("code list expected")
    };
    let rows = read(root, "BOSATTEFDT_BOSTED");
    assert!(rows.len() > 150_000);
    for r in &rows {
        assert_eq!(r.start, r.stop, "STATUS rows have start = stop");
        let d = Date::from_epoch_days(r.start.unwrap());
        let valid = codes.iter().any(|c| {
            c.code == r.value.s()
                && c.valid_from.is_none_or(|f| f <= d)
                && c.valid_until.is_none_or(|u| d <= u)
        });
        assert!(valid, "code {} is not valid on {d}", r.value.s());
    }
    let coverage = meta.coverage.unwrap();
    assert_eq!(coverage.status_dates.len(), 25);
    assert_eq!(coverage.start.to_string(), "2000-01-01");
}

#[test]
fn job_wages_add_up_to_each_persons_wage_income() {
    let root = population();
    let year_start = day(2021, 1, 1);
    let job_person: HashMap<i64, i64> =
        read(root, "ARBLONN_ARB_FNR").into_iter().map(|r| (r.id, r.value.l())).collect();
    let mut from_jobs: HashMap<i64, i64> = HashMap::new();
    for r in read(root, "ARBLONN_LONN_BELOP").into_iter().filter(|r| r.start == Some(year_start)) {
        assert_eq!(r.stop, Some(day(2021, 12, 31)));
        *from_jobs.entry(job_person[&r.id]).or_default() += r.value.l();
    }
    let wages: HashMap<i64, i64> = read(root, "INNTEKT_WLONN")
        .into_iter()
        .filter(|r| r.start == Some(year_start))
        .map(|r| (r.id, r.value.l()))
        .collect();
    assert!(from_jobs.len() > 3_000);
    for (person, total) in &from_jobs {
        let wage = wages.get(person).copied().unwrap_or(0);
        assert!(
            (wage - total).abs() <= 2,
            "person {person}: jobs paid {total}, wage income {wage}"
        );
    }
}

#[test]
fn a_dated_variable_is_laid_out_by_date_so_an_import_can_skip_other_dates() {
    use parquet::arrow::arrow_reader::ArrowReaderOptions;
    use parquet::file::metadata::PageIndexPolicy;
    let root = population();
    let dir = root.join("demo/1/data/INNTEKT_WLONN");
    let mut checked_groups = 0;
    for part in std::fs::read_dir(&dir).unwrap() {
        let path = part.unwrap().path();
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let open = || std::fs::File::open(&path).unwrap();
        let builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(open(), options.clone()).unwrap();
        let meta = builder.metadata().clone();
        for group in 0..meta.num_row_groups() {
            let rows = meta.row_group(group).num_rows() as usize;
            // The start column's pages, as the page index lists them: small enough that each
            // holds a few of the 25 years.
            let pages = meta.offset_index().expect("a page index is written")[group][2]
                .page_locations()
                .len();
            assert!(pages >= rows / 2048, "{} rows in only {pages} pages", rows);
            let reader =
                ParquetRecordBatchReaderBuilder::try_new_with_options(open(), options.clone())
                    .unwrap()
                    .with_row_groups(vec![group])
                    .build()
                    .unwrap();
            let mut keys = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch.column(0).as_primitive::<Int64Type>();
                let starts = batch.column(2).as_primitive::<Int32Type>();
                keys.extend((0..batch.num_rows()).map(|i| (starts.value(i), ids.value(i))));
            }
            assert_eq!(keys.len(), rows);
            assert!(
                keys.windows(2).all(|w| w[0] < w[1]),
                "{} row group {group} is not ordered by (start, unit id)",
                path.display()
            );
            let years: HashSet<i32> = keys.iter().map(|k| k.0).collect();
            assert!(years.len() > 10, "only {} start dates in a row group", years.len());
            checked_groups += 1;
        }
    }
    assert!(checked_groups >= 2, "{checked_groups} row groups");
}
