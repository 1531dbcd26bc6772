use std::sync::Arc;

use shared::output::{Output, OutputBody};

use super::*;
use crate::disclosure::audit::MemoryAudit;
use crate::test_support::small_demo;
use commands::describe;

fn engine() -> Engine {
    let registry = Registry::open(small_demo()).expect("demo opens");
    Engine::new(Arc::new(registry), Limits::default()).expect("engine")
}

async fn run_in(engine: &Engine, workspace: &mut Workspace, script: &str) -> Vec<Output> {
    let audit = MemoryAudit::default();
    let outputs: Vec<Output> = engine
        .run(workspace, script, &audit, "tester")
        .await
        .iter()
        .map(|r| r.output().clone())
        .collect();
    assert_eq!(audit.entries.lock().unwrap().len(), outputs.len(), "every output is audited");
    outputs
}

async fn run(script: &str) -> Vec<Output> {
    run_in(&engine(), &mut Workspace::default(), script).await
}

fn errors(outputs: &[Output]) -> Vec<(u32, String)> {
    outputs
        .iter()
        .filter_map(|o| match &o.body {
            OutputBody::Error { message, .. } => Some((o.line, message.clone())),
            _ => None,
        })
        .collect()
}

const PERSONS: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
generate age = 2021 - int(birth / 100)
import db/INNTEKT_WLONN 2021-12-31 as wage
";

#[tokio::test]
async fn a_typical_script_gives_a_table_a_summary_and_a_model() {
    let script = format!(
        "{PERSONS}keep if age >= 16 & age <= 90\ntabulate sex\nsummarize wage age\nregress wage age i.sex\n"
    );
    let outputs = run(&script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let table = outputs.iter().find_map(|o| match &o.body {
        OutputBody::Table(t) => Some((o.line, t)),
        _ => None,
    });
    let (line, table) = table.expect("a table");
    assert_eq!(line, 8);
    assert_eq!(table.row_labels.len(), 3, "two sexes and the total: {table:?}");
    let men = table.cells[0][0].expect("shown");
    let women = table.cells[1][0].expect("shown");
    let total = table.cells[2][0].expect("shown");
    assert!((men + women - total).abs() <= 6.0, "perturbed cells add up within the noise");
    assert!(total > 1500.0 && total < 3000.0, "{total}");

    let summary = outputs.iter().find_map(|o| match &o.body {
        OutputBody::Summary(s) => Some(s),
        _ => None,
    });
    let age = &summary.expect("a summary").rows[1];
    assert_eq!(age.variable, "age");
    let mean = age.mean.expect("shown");
    assert!((30.0..60.0).contains(&mean), "{mean}");
    let shown: Vec<&str> =
        age.percentiles.iter().filter(|(_, v)| v.is_some()).map(|(p, _)| p.as_str()).collect();
    // P1 is the youngest age kept (16): no unit lies below it, so rule 8 withholds it.
    assert_eq!(age.percentiles[0], ("P1".to_owned(), None));
    for p in ["P25", "P50", "P75"] {
        assert!(shown.contains(&p), "{p} of age is shown: {age:?}");
    }

    let model = outputs.iter().find_map(|o| match &o.body {
        OutputBody::Model(m) => Some(m),
        _ => None,
    });
    let model = model.expect("a model");
    let terms: Vec<&str> = model.coefficients.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(terms, ["age", "sex=2", "constant"]);
    assert!(model.coefficients[1].estimate < 0.0, "women earn less in the synthetic data");
}

#[tokio::test]
async fn a_script_that_does_not_parse_runs_nothing_and_reports_every_problem() {
    let outputs =
        run("require demo:1 as db\ncreate-dataset p\ntabluate x\nsummarize y, robust\n").await;
    let errors = errors(&outputs);
    assert_eq!(errors.len(), 2, "{outputs:#?}");
    assert_eq!(errors[0].0, 3);
    assert!(errors[0].1.contains("did you mean tabulate"), "{}", errors[0].1);
    assert_eq!(errors[1].0, 4);
    assert_eq!(outputs.len(), 2, "nothing ran");
}

#[tokio::test]
async fn every_unknown_name_is_reported_before_anything_runs() {
    let outputs = run(
        "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJONN as sex\nimport db/INNTEKT_WLONN 2021-12-31 as wage\ngenerate w2 = wage * 2\ntabulate sexx\nsummarize w2 wagee\nuse q\n",
    )
    .await;
    let errors = errors(&outputs);
    assert_eq!(outputs.len(), errors.len(), "nothing ran: {outputs:?}");
    let lines: Vec<u32> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, vec![3, 6, 7, 8], "{errors:?}");
    assert!(errors[0].1.contains("did you mean BEFOLKNING_KJOENN"), "{}", errors[0].1);
    // The misspelt import still names its variable, so the later lines are judged with it.
    assert!(errors[1].1.contains("no variable sexx: did you mean sex?"), "{}", errors[1].1);
    assert!(errors[2].1.contains("no variable wagee: did you mean wage?"), "{}", errors[2].1);
    assert!(errors[3].1.contains("no dataset q"), "{}", errors[3].1);
    let columns: Vec<Option<u32>> = outputs
        .iter()
        .map(|o| match &o.body {
            OutputBody::Error { column, .. } => *column,
            _ => None,
        })
        .collect();
    assert_eq!(columns, vec![Some(11), Some(10), Some(14), Some(5)]);
}

#[tokio::test]
async fn dates_follow_the_temporality() {
    let fixed =
        run("require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN 2020-01-01\n")
            .await;
    assert!(errors(&fixed)[0].1.contains("FIXED"), "{fixed:?}");
    let status = run("require demo:1 as db\ncreate-dataset p\nimport db/BOSATTEFDT_BOSTED\n").await;
    assert!(errors(&status)[0].1.contains("needs a date"), "{status:?}");
    let not_a_status_date =
        run("require demo:1 as db\ncreate-dataset p\nimport db/BOSATTEFDT_BOSTED 2020-06-15\n")
            .await;
    assert!(
        errors(&not_a_status_date)[0].1.contains("nearest is 2020-01-01"),
        "{not_a_status_date:?}"
    );
    let ok = run("require demo:1 as db\ncreate-dataset p\nimport db/BOSATTEFDT_BOSTED 2020-01-01 as kommune\n").await;
    assert_eq!(errors(&ok), vec![]);
}

#[tokio::test]
async fn types_are_checked_with_a_hint() {
    let outputs = run(&format!("{PERSONS}generate woman = sex == 2\n")).await;
    let e = errors(&outputs);
    assert!(e[0].1.contains("quote the code, as '2'"), "{e:?}");
    assert_eq!(e[0].0, 7);
}

#[tokio::test]
async fn one_person_flags_are_refused_by_the_minimum_change_rule() {
    let engine = engine();
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, PERSONS).await;
    assert_eq!(errors(&outputs), vec![]);
    // The oldest person's birth month: a condition that singles out very few units.
    let dataset = workspace.current().unwrap();
    let birth = super::dataset::numbers(dataset.variable("birth").unwrap()).unwrap();
    let oldest = birth.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    for attack in [
        format!("generate flag = 1 if birth == {oldest}"),
        format!("generate flag = birth == {oldest}"),
        format!("generate flag = 0\nreplace flag = 1 if birth == {oldest}"),
    ] {
        let outputs = run_in(&engine, &mut workspace, &attack).await;
        let refused = outputs.iter().find_map(|o| match &o.body {
            OutputBody::Error { rule, .. } => rule.clone(),
            _ => None,
        });
        assert_eq!(refused.as_deref(), Some("rule 4"), "{attack}: {outputs:#?}");
        // A refused generate leaves nothing behind for the next attempt.
        let _ = run_in(&engine, &mut workspace, "drop flag").await;
    }
}

#[tokio::test]
async fn keep_cannot_shrink_a_dataset_below_the_floor() {
    let outputs = run(&format!("{PERSONS}keep if age == 30\n")).await;
    let refused = outputs.last().unwrap();
    assert!(
        matches!(&refused.body, OutputBody::Error { rule: Some(r), .. } if r == "rule 3"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn loops_and_bindings_unroll_with_their_lines() {
    let script = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\nlet stem = wage_\nfor y in 2019 : 2021\nimport db/INNTEKT_WLONN $y-12-31 as $stem ++ $y\nend\nvariables\n";
    let outputs = run(script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let OutputBody::Text { markdown } = &outputs.last().unwrap().body else { panic!() };
    for y in 2019..=2021 {
        assert!(markdown.contains(&format!("| wage_{y} |")), "{markdown}");
    }
    let import_lines: Vec<u32> =
        outputs.iter().filter(|o| o.command == "import").map(|o| o.line).collect();
    assert_eq!(import_lines, [3, 6, 6, 6]);
}

#[tokio::test]
async fn identifiers_are_keys_only() {
    let script = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_MOR_FNR as mother\nsummarize mother\n";
    let outputs = run(script).await;
    assert!(errors(&outputs)[0].1.contains("merge key"), "{outputs:?}");
}

#[tokio::test]
async fn an_unrolled_loop_over_the_limit_stops_before_running() {
    let registry = Registry::open(small_demo()).unwrap();
    let engine =
        Engine::new(Arc::new(registry), Limits { max_commands: 50, ..Limits::default() }).unwrap();
    let outputs =
        run_in(&engine, &mut Workspace::default(), "for i in 1 : 1000\nhelp\nend\n").await;
    assert_eq!(outputs.len(), 1);
    assert!(errors(&outputs)[0].1.contains("max_commands"), "{outputs:?}");
}

/// Guards the expansion against scripts that are short but ask for unbounded work: bindings
/// that double with each line, loops with empty bodies, a `for` line of thousands of loops.
#[tokio::test]
async fn expansion_bounds_memory_and_steps_of_short_scripts() {
    let doubling = format!("let a = x\n{}help\n", "let a = $a ++ $a\n".repeat(40));
    let empty_loops = "for a in 1 : 9000\nfor b in 1 : 9000\nfor c in 1 : 9000\nend\nend\nend\n";
    let many_loops = format!(
        "for {}\nhelp\nend\n",
        (0..20).map(|i| format!("v{i} in 1 2")).collect::<Vec<_>>().join("; ")
    );
    for (what, script, expected) in [
        ("doubling bindings", doubling.as_str(), "longer than 64 KiB"),
        ("empty nested loops", empty_loops, "the loops take more than 20000 steps"),
        ("one line of 20 loops", many_loops.as_str(), "at most 10 loops"),
    ] {
        let outputs = run(script).await;
        assert_eq!(outputs.len(), 1, "{what}: {outputs:?}");
        let errors = errors(&outputs);
        assert!(errors.first().is_some_and(|e| e.1.contains(expected)), "{what}: {outputs:?}");
    }
}

/// Guards the review's finding that the audit write failed open: an output the log could not
/// hold was still released. `/dev/full` answers every write with "no space left on device".
#[tokio::test]
async fn outputs_are_withheld_when_the_audit_log_cannot_be_written() {
    let full = crate::disclosure::audit::JsonLinesAudit::open(std::path::Path::new("/dev/full"))
        .expect("/dev/full opens for appending");
    let script = format!("{PERSONS}tabulate sex\nsummarize wage\n");
    let released = engine().run(&mut Workspace::default(), &script, &full, "tester").await;
    assert_eq!(released.len(), 8);
    for output in released.iter().map(|r| r.output()) {
        match &output.body {
            OutputBody::Error { message, rule: None, .. } => {
                assert!(message.contains("withheld because the audit log cannot be written"))
            }
            other => panic!("line {} was released without an audit entry: {other:?}", output.line),
        }
    }
    // With a log that works, the same script releases its table.
    let outputs = run(&script).await;
    assert!(matches!(outputs[6].body, OutputBody::Table(_)), "{:?}", outputs[6]);
}

#[tokio::test]
async fn a_script_with_thousands_of_mistakes_answers_the_first_fifty_and_a_count() {
    let outputs = run(&"generate x = (\n".repeat(5_000)).await;
    assert_eq!(outputs.len(), 51);
    let last = &errors(&outputs)[50].1;
    assert!(last.contains("more problems: fix these first"), "{last}");
}

#[test]
fn hexbin_puts_each_unit_in_the_nearest_centre_of_two_offset_lattices() {
    use crate::disclosure::ckm::RecordKeySecret;
    use datafusion::arrow::array::{Float64Array, Int64Array};
    use dataset::{Dataset, VarInfo, Variable};
    // A 4 × 2 grid over x ∈ [0, 4], y ∈ [0, 2] (ny = round(4 / √3) = 2): centres of the first
    // lattice at whole (x, y), of the second at (x + 0.5, y + 0.5).
    let points =
        [(0.0, 0.0), (0.1, 0.1), (1.5, 0.5), (1.4, 0.6), (4.0, 2.0), (2.0, 1.0), (2.1, 0.9)];
    let column = |f: fn(&(f64, f64)) -> f64| Variable {
        name: String::new(),
        values: Arc::new(Float64Array::from(points.iter().map(f).collect::<Vec<_>>())),
        info: VarInfo::default(),
    };
    let dataset = Dataset {
        unit_type: Some(shared::metadata::UnitType::Person),
        ids: Int64Array::from((1..=points.len() as i64).collect::<Vec<_>>()),
        variables: vec![
            Variable { name: "x".into(), ..column(|p| p.0) },
            Variable { name: "y".into(), ..column(|p| p.1) },
        ],
        ..Dataset::default()
    };
    // No coding: P0–P100.
    let rules = Rules { coding_percentiles: (0.0, 100.0), ..Rules::default() };
    let gate = Gate::new(rules, RecordKeySecret::new([7; 16]));
    let keys = gate.record_keys(&dataset.ids);
    let raw = describe::hexbin_raw(&gate, &dataset, &keys, ("y", "x"), 4, None).unwrap();
    assert_eq!((raw.width, raw.height), (1.0, 1.0));
    let cells: Vec<(f64, f64, u64)> = raw.cells.iter().map(|(x, y, c)| (*x, *y, c.units)).collect();
    assert_eq!(cells, vec![(0.0, 0.0, 2), (2.0, 1.0, 2), (4.0, 2.0, 1), (1.5, 0.5, 2)]);
}

#[tokio::test]
async fn the_same_seed_draws_the_same_sample_and_another_seed_another() {
    let engine = engine();
    let script = |seed: u32| format!("{PERSONS}sample 0.5 {seed}\n");
    let mut ids = Vec::new();
    for seed in [11, 11, 12] {
        let mut w = Workspace::default();
        let outputs = run_in(&engine, &mut w, &script(seed)).await;
        assert!(errors(&outputs).is_empty(), "{outputs:?}");
        ids.push(w.current().unwrap().ids.values().to_vec());
    }
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    let full = {
        let mut w = Workspace::default();
        run_in(&engine, &mut w, PERSONS).await;
        w.current().unwrap().len() as f64
    };
    let share = ids[0].len() as f64 / full;
    assert!((0.45..0.55).contains(&share), "half the units: {share}");
}

const PANEL: &str = "require demo:1 as db
create-dataset panel
import-panel db/INNTEKT_WLONN db/BEFOLKNING_KJOENN 2019-01-01 2020-01-01 2021-01-01
";

#[tokio::test]
async fn import_panel_gives_a_row_per_unit_and_date_in_order() {
    let engine = engine();
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, PANEL).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let panel = workspace.current().unwrap();
    let dates = &panel.panel.as_ref().expect("a panel").dates;
    assert_eq!(dates.len(), 3);
    // Sex is FIXED: every person is there on every date, so the rows are persons × 3.
    let persons = {
        let mut w = Workspace::default();
        let s = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN\n";
        run_in(&engine, &mut w, s).await;
        w.current().unwrap().len()
    };
    assert_eq!(panel.len(), persons * 3);
    let rows = &panel.panel.as_ref().unwrap().rows;
    for i in 1..panel.len() {
        let (a, b) = (panel.ids.value(i - 1), panel.ids.value(i));
        assert!(a < b || (a == b && rows[i - 1] < rows[i]), "row {i} out of order");
    }
    // The gate counts each person once per date.
    assert_eq!(panel.copies(["INNTEKT_WLONN"]), 3);
    assert_eq!(panel.variable_copies(["INNTEKT_WLONN"]), 1);
}

#[tokio::test]
async fn panel_commands_say_what_they_need() {
    let cases = [
        (
            format!("{PERSONS}summarize-panel wage\n"),
            "is not a panel: make one with import-panel in an empty dataset, or use summarize",
        ),
        (format!("{PANEL}import db/INNTEKT_WLONN 2021-12-31 as wage\n"), "is a panel"),
        (format!("{PANEL}collapse (mean) INNTEKT_WLONN, by(BEFOLKNING_KJOENN)\n"), "is a panel"),
        (format!("{PANEL}sample 2000 1\n"), "is a panel"),
        (
            "require demo:1 as db\ncreate-dataset p\nimport-panel db/INNTEKT_WLONN 2021-01-01\n"
                .to_owned(),
            "at least two dates",
        ),
        (
            format!("{PERSONS}import-panel db/INNTEKT_WLONN 2020-01-01 2021-01-01\n"),
            "fills an empty dataset",
        ),
        (
            format!(
                "{PANEL}generate female = BEFOLKNING_KJOENN == '2'\nregress-panel INNTEKT_WLONN female, fe\n"
            ),
            "female does not vary within units, so fixed effects cannot estimate it: drop it, or use re",
        ),
        (
            format!("{PANEL}regress-panel INNTEKT_WLONN BEFOLKNING_KJOENN, fe re\n"),
            "choose one of fe, re, be and pooled",
        ),
        (format!("{PANEL}transitions-panel INNTEKT_WLONN BEFOLKNING_KJOENN\n"), "one variable"),
        (
            format!("{PERSONS}import-event db/ARBSOEK_ARBSOKERSTATUS 2020-01-01 to 2020-12-31\n"),
            "fills an empty dataset",
        ),
        (
            "require demo:1 as db\ncreate-dataset s\nimport-event db/INNTEKT_WLONN 2020-01-01 to 2020-12-31\n".to_owned(),
            "is ACCUMULATED, not EVENT",
        ),
        (
            "require demo:1 as db\ncreate-dataset s\nimport-event db/ARBSOEK_ARBSOKERSTATUS 2020-12-31 to 2020-01-01\n".to_owned(),
            "ends (2020-01-01) before it starts",
        ),
        (
            "require demo:1 as db\ncreate-dataset s\nimport-event db/ARBSOEK_ARBSOKERSTATUS 2020-01-01 to 2020-12-31 as a\nmerge a into s\n".to_owned(),
            "holds spells",
        ),
        (format!("{PERSONS}reshape-to-panel pay_\n"), "no variable is named pay_ followed by a year"),
        (format!("{PERSONS}reshape-from-panel\n"), "is not a panel"),
        (format!("{PERSONS}kaplan-meier age sex\n"), "sex holds codes"),
        (format!("{PERSONS}kaplan-meier age wage\n"), "must be 1 where the event happened"),
        (format!("{PERSONS}sankey sex\n"), "two to six variables"),
    ];
    for (script, expected) in cases {
        let outputs = run(&script).await;
        let errors = errors(&outputs);
        assert!(
            errors.first().is_some_and(|(_, m)| m.contains(expected)),
            "{script}: expected an error containing {expected:?}, got {errors:?}"
        );
    }
}

#[tokio::test]
async fn a_panel_population_is_its_units_each_once() {
    // Rule 11 compares populations of units: a panel output over a person's three dates and a
    // cross-section without that person differ by one unit, which the rule refuses.
    use crate::disclosure::differencing::PopulationSketch;
    let engine = engine();
    let mut workspace = Workspace::default();
    run_in(&engine, &mut workspace, PANEL).await;
    let panel = workspace.current().unwrap();
    let mut pooled = PopulationSketch::default();
    (0..panel.len()).for_each(|i| panel.add_to_population(&mut pooled, i));
    let mut units: Vec<i64> = panel.ids.values().to_vec();
    units.dedup();
    let mut all_but_one = PopulationSketch::default();
    units[1..].iter().for_each(|&id| all_but_one.insert(id));
    assert_eq!(pooled.difference(&all_but_one), Some(1));
    all_but_one.insert(units[0]);
    assert_eq!(pooled.difference(&all_but_one), Some(0));
}

#[tokio::test]
async fn a_life_table_shows_no_small_count_and_merges_sparse_intervals() {
    // A rare event (a wage over 1.5 million) leaves most intervals with a few events: they
    // are merged forward until each shown count is 0 or at least the threshold.
    let script = format!(
        "{PERSONS}keep if age >= 25 & age <= 66\ngenerate rare = wage > 1500000 if !sysmiss(wage)\nkaplan-meier age rare, by(sex)\n"
    );
    let outputs = run(&script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let OutputBody::Table(table) = &outputs.last().unwrap().body else { panic!("a table") };
    assert!(table.title.contains("life table"), "{}", table.title);
    let min_cell = crate::disclosure::rules::Rules::default().min_cell as f64;
    for (label, row) in table.row_labels.iter().zip(&table.cells) {
        for count in row[..3].iter().flatten() {
            assert!(*count == 0.0 || *count >= min_cell, "{label}: a count of {count}");
        }
    }
    // Each group's rows run from 0 without gaps, and at least one interval was merged: fewer
    // than the 10 intervals per group are shown.
    for sex in ["1", "2"] {
        let rows: Vec<&String> =
            table.row_labels.iter().filter(|l| l.starts_with(&format!("sex={sex}"))).collect();
        assert!(!rows.is_empty() && rows.len() < 10, "{rows:?}");
        assert!(rows[0].contains("[0, "), "{rows:?}");
        for pair in rows.windows(2) {
            let end = pair[0].rsplit(", ").next().unwrap().trim_end_matches([')', ']']);
            assert!(pair[1].contains(&format!("[{end}, ")), "{pair:?}");
        }
    }
    let survival: Vec<f64> = table.cells.iter().filter_map(|r| r[3]).collect();
    assert!(survival.iter().all(|s| (0.0..=1.0).contains(s)), "{survival:?}");
}

#[tokio::test]
async fn histogram_shares_are_of_the_released_n_and_by_draws_one_per_group() {
    let script = format!(
        "{PERSONS}keep if age >= 25 & age <= 66\nhistogram wage, bin(8) percent\nhistogram wage, bin(8) density\nhistogram age, discrete\nhistogram wage, bin(6) by(sex)\nhistogram age, bin(10) normal\n"
    );
    let outputs = run(&script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let charts: Vec<&shared::output::Chart> = outputs
        .iter()
        .filter_map(|o| match &o.body {
            OutputBody::Chart(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(charts.len(), 6, "percent, density, discrete, one per sex and normal");
    // The normal curve comes from the released bars: ages 25–66 average in the forties.
    let normal = charts[5].normal.expect("a normal curve");
    assert!((40.0..50.0).contains(&normal.mean) && (8.0..16.0).contains(&normal.sd), "{normal:?}");
    assert!(charts[..5].iter().all(|c| c.normal.is_none()));
    let shown = |c: &shared::output::Chart| c.bars.iter().filter_map(|b| b.height).sum::<f64>();
    let percent = shown(charts[0]);
    assert!((95.0..=101.0).contains(&percent), "percents add up to {percent}");
    assert_eq!(charts[0].y_label, "percent");
    // Densities are percents over 100 per unit of width: the areas add up to about 1.
    let area: f64 = charts[1].bars.iter().filter_map(|b| Some(b.height? * (b.end - b.start))).sum();
    assert!((0.95..=1.01).contains(&area), "density area {area}");
    // discrete: unit-wide bars centred on whole ages.
    assert!(charts[2].bars.iter().all(|b| b.end - b.start == 1.0 && b.start.fract() == 0.5));
    assert!(
        charts[3].title.ends_with("(sex=1 Mann)") && charts[4].title.ends_with("(sex=2 Kvinne)")
    );
    assert_eq!(charts[3].bars.len(), 6);
}

/// Guards the review's finding that a guest workspace had no byte budget (each fresh-cookie
/// run kept about 175 MB): over its budget a workspace drops its datasets and says why, but
/// keeps its rule-11 memory.
#[tokio::test]
async fn a_workspace_over_its_byte_budget_drops_its_datasets_and_keeps_its_memory() {
    let engine = engine();
    let mut within = Workspace::default();
    let outputs = run_in(&engine, &mut within, &format!("{PERSONS}summarize wage\n")).await;
    assert!(errors(&outputs).is_empty(), "{outputs:?}");
    let needed = within.arrow_bytes();
    assert!(needed > 0);

    let mut workspace = Workspace::default();
    workspace.set_byte_budget(needed / 2);
    // The command's own notice is audited before the budget clears it, so the audit holds
    // one entry more than the answer: these runs go around `run_in`'s count.
    let audit = MemoryAudit::default();
    let outputs: Vec<Output> = engine
        .run(&mut workspace, PERSONS, &audit, "tester")
        .await
        .iter()
        .map(|r| r.output().clone())
        .collect();
    let problems = errors(&outputs);
    assert_eq!(problems.len(), 1, "{outputs:?}");
    assert!(problems[0].1.contains("guest_workspace_mb"), "{problems:?}");
    assert_eq!(workspace.dataset_names().count(), 0, "the datasets are gone");
    assert_eq!(workspace.arrow_bytes(), 0);

    // Within the budget everything stays; the memory of released populations is kept
    // either way, so clearing is no way to forget what was released.
    let mut roomy = Workspace::default();
    roomy.set_byte_budget(needed * 2);
    let outputs = run_in(&engine, &mut roomy, &format!("{PERSONS}summarize wage\n")).await;
    assert!(errors(&outputs).is_empty(), "{outputs:?}");
    assert_eq!(roomy.dataset_names().count(), 1);
    let remembered = roomy.memory().populations.len();
    roomy.set_byte_budget(1);
    let _ = engine.run(&mut roomy, "generate one = 1\n", &audit, "tester").await;
    assert_eq!(roomy.dataset_names().count(), 0);
    assert_eq!(roomy.memory().populations.len(), remembered);
}

#[tokio::test]
async fn two_variables_over_nearly_the_same_units_are_differenced_within_one_output() {
    // Rule 11 inside one output: `summarize wage wage2`, where wage2 is wage without three
    // persons, gives two means whose difference is those three persons' wages.
    let engine = engine();
    let mut workspace = Workspace::default();
    run_in(&engine, &mut workspace, PERSONS).await;
    let name = workspace.current.clone().unwrap();
    let dataset = workspace.datasets.get_mut(&name).unwrap();
    let wage = dataset.variable("wage").unwrap().clone();
    let earners: Vec<usize> = (0..wage.values.len()).filter(|&i| wage.values.is_valid(i)).collect();
    // wage, missing for the first `n` earners.
    let without = |name: &str, n: usize| {
        let dropped = datafusion::arrow::array::BooleanArray::from(
            (0..wage.values.len()).map(|i| earners[..n].contains(&i)).collect::<Vec<_>>(),
        );
        let values = datafusion::arrow::compute::nullif(&wage.values, &dropped).unwrap();
        dataset::Variable { name: name.into(), values, ..wage.clone() }
    };
    // Ten persons fewer is a different population, which the rule lets through.
    let (near_copy, far_copy) = (without("wage2", 3), without("wage3", 10));
    dataset.set(near_copy);
    dataset.set(far_copy);
    for (script, refused) in
        [("summarize wage wage2", true), ("ci wage wage2", true), ("summarize wage wage3", false)]
    {
        // Each script on its own, so that what one remembers does not refuse the next.
        workspace.memory().populations.clear();
        let outputs = run_in(&engine, &mut workspace, script).await;
        let rule = outputs.iter().find_map(|o| match &o.body {
            OutputBody::Error { rule, .. } => rule.clone(),
            _ => None,
        });
        let expected = refused.then(|| "rule 11".to_owned());
        assert_eq!(rule, expected, "{script}: {outputs:#?}");
    }
}

/// `wage` of the current dataset, missing for its first `n` earners, as a new variable.
fn wage_without_first_earners(workspace: &mut Workspace, name: &str, n: usize) {
    let current = workspace.current.clone().unwrap();
    let dataset = workspace.datasets.get_mut(&current).unwrap();
    let wage = dataset.variable("wage").unwrap().clone();
    let earners: Vec<usize> = (0..wage.values.len()).filter(|&i| wage.values.is_valid(i)).collect();
    let dropped = datafusion::arrow::array::BooleanArray::from(
        (0..wage.values.len()).map(|i| earners[..n].contains(&i)).collect::<Vec<_>>(),
    );
    let values = datafusion::arrow::compute::nullif(&wage.values, &dropped).unwrap();
    dataset.set(dataset::Variable { name: name.into(), values, ..wage });
}

fn refused_rule(outputs: &[Output]) -> Option<String> {
    outputs.iter().find_map(|o| match &o.body {
        OutputBody::Error { rule, .. } => rule.clone(),
        _ => None,
    })
}

/// Guards the case: two sessions of one user, with a restart of the server between
/// them, cannot difference two populations that one session could not. The first session's
/// workspace is gone; the second is new, in a new process (a new `Memories` over the same
/// database file).
#[tokio::test]
async fn a_users_memory_outlives_the_workspace_the_session_and_a_restart() {
    use crate::disclosure::memory::Memories;
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let open = || {
        let sealer = crate::identity::sealed::Sealer::new([3; 32]);
        Arc::new(crate::identity::SqliteStore::open(&path, sealer).unwrap())
    };
    {
        let memories = Memories::new(open());
        let mut first = Workspace::default();
        first.set_memory(memories.of("user:1").unwrap());
        let outputs = run_in(&engine, &mut first, &format!("{PERSONS}summarize wage\n")).await;
        assert_eq!(refused_rule(&outputs), None, "{outputs:?}");
        memories.save("user:1").unwrap();
    }
    // The restart: nothing of the first process is left but the database.
    let memories = Memories::new(open());
    let mut second = Workspace::default();
    second.set_memory(memories.of("user:1").unwrap());
    run_in(&engine, &mut second, PERSONS).await;
    wage_without_first_earners(&mut second, "wage2", 3);
    let outputs = run_in(&engine, &mut second, "summarize wage2").await;
    assert_eq!(refused_rule(&outputs).as_deref(), Some("rule 11"), "{outputs:?}");
    // The refusal counts against the budget that was saved, too.
    memories.save("user:1").unwrap();
    let reloaded = Memories::new(open());
    assert_eq!(reloaded.of("user:1").unwrap().lock().unwrap().oracle_refusals, 1);

    // Someone else never released wage: for them the same output is no difference.
    let mut other = Workspace::default();
    other.set_memory(memories.of("user:2").unwrap());
    run_in(&engine, &mut other, PERSONS).await;
    wage_without_first_earners(&mut other, "wage2", 3);
    let outputs = run_in(&engine, &mut other, "summarize wage2").await;
    assert_eq!(refused_rule(&outputs), None, "{outputs:?}");
}

#[test]
fn a_population_sketch_comes_back_from_its_bytes_as_it_was() {
    let mut sketch = PopulationSketch::default();
    for id in [5, 9, 9, 1_000_000_007, -3] {
        sketch.insert(id);
    }
    let back = PopulationSketch::from_bytes(&sketch.to_bytes()).unwrap();
    assert_eq!(back, sketch);
    assert_eq!((back.len(), back.to_bytes()), (sketch.len(), sketch.to_bytes()));
    assert!(PopulationSketch::from_bytes(&[1, 2, 3]).is_none());
}

#[tokio::test]
async fn every_command_of_the_catalogue_reaches_its_implementation() {
    // Each command alone, with no arguments, after a dataset with variables: the run gets
    // past parsing and checks to the dispatch, whose implementation answers (usually with
    // its usage). A command the catalogue lists and the dispatch lacks would say it is "not
    // supported yet by this server"; one the dispatch misspells would be "unknown".
    let engine = engine();
    let mut reached = Vec::new();
    let mut missing = Vec::new();
    for spec in shared::script::catalog::commands() {
        let mut workspace = Workspace::default();
        run_in(&engine, &mut workspace, PERSONS).await;
        let script = match spec.name {
            // Blocks need their end; `for` and `textblock` are unrolled before the dispatch.
            "for" => "for i in 1 : 1\n  summarize age\nend".to_owned(),
            "textblock" => "textblock\nendblock".to_owned(),
            name => name.to_owned(),
        };
        let outputs = run_in(&engine, &mut workspace, &script).await;
        // A loop's outputs are its body's.
        let answered = outputs.iter().any(|o| o.command == spec.name)
            || (spec.name == "for" && outputs.iter().any(|o| o.command == "summarize"));
        let message = format!("{outputs:?}");
        if message.contains("not supported yet by this server")
            || message.contains("unknown command")
        {
            missing.push(spec.name);
        } else if answered {
            reached.push(spec.name);
        }
    }
    assert!(missing.is_empty(), "listed but not dispatched: {missing:?}");
    let all = shared::script::catalog::commands().len();
    assert_eq!(
        reached.len(),
        all,
        "these never reached the dispatch: {:?}",
        shared::script::catalog::commands()
            .iter()
            .map(|s| s.name)
            .filter(|n| !reached.contains(n))
            .collect::<Vec<_>>()
    );
}

/// Each value of a cross-section import, by unit id.
async fn values_by_unit(engine: &Engine, script: &str, variable: &str) -> BTreeMap<i64, String> {
    let mut workspace = Workspace::default();
    let outputs = run_in(engine, &mut workspace, script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let dataset = workspace.current().unwrap();
    let values = &dataset.variable(variable).unwrap().values;
    (0..dataset.len())
        .filter(|&i| !values.is_null(i))
        .map(|i| (dataset.ids.value(i), dataset::display(values, i)))
        .collect()
}

#[tokio::test]
async fn a_person_variable_imported_into_spells_gives_each_spell_its_persons_value() {
    let engine = engine();
    let spells = "require demo:1 as db
create-dataset spells
import-event db/ARBSOEK_ARBSOKERSTATUS 2020-01-01 to 2020-12-31 as seeker
import db/BEFOLKNING_KJOENN as sex
";
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, spells).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let dataset = workspace.current().unwrap();
    assert!(dataset.spells.is_some_and(|most| most > 1), "some person has several spells");
    let sexes = values_by_unit(
        &engine,
        "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n",
        "sex",
    )
    .await;
    let sex = &dataset.variable("sex").unwrap().values;
    let mut repeated = 0;
    for i in 0..dataset.len() {
        let id = dataset.ids.value(i);
        let expected = sexes.get(&id).cloned();
        let got = (!sex.is_null(i)).then(|| dataset::display(sex, i));
        assert_eq!(got, expected, "spell row {i} of unit {id}");
        repeated += usize::from(i > 0 && dataset.ids.value(i - 1) == id);
    }
    assert!(repeated > 0, "a unit's later spells get the same value as its first");
    // The spells stay spells: as many rows as before, and a full join is refused.
    let rows = {
        let mut w = Workspace::default();
        run_in(&engine, &mut w, &spells.lines().take(3).collect::<Vec<_>>().join("\n")).await;
        w.current().unwrap().len()
    };
    assert_eq!(dataset.len(), rows);
    let outer = format!("{spells}import db/INNTEKT_WLONN 2020-12-31 as wage, outer_join\n");
    let refused = errors(&run_in(&engine, &mut Workspace::default(), &outer).await);
    assert!(refused.iter().any(|(_, m)| m.contains("outer_join would add units")), "{refused:?}");
}

#[tokio::test]
async fn import_panel_into_cloned_units_gives_the_panel_of_those_units() {
    let engine = engine();
    let script = "require demo:1 as db
create-dataset a
import db/BEFOLKNING_KJOENN as sex
keep if sex == '2'
clone-units a b
use b
import-panel db/INNTEKT_WLONN db/BEFOLKNING_KJOENN 2019-01-01 2020-01-01
";
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let panel = workspace.current().unwrap();
    assert_eq!(panel.panel.as_ref().map(|p| p.dates.len()), Some(2));
    let sexes = values_by_unit(
        &engine,
        "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n",
        "sex",
    )
    .await;
    let women: Vec<i64> = sexes.iter().filter(|(_, s)| *s == "2").map(|(id, _)| *id).collect();
    // Sex is FIXED, so each woman has a row at both dates, and nobody else has any.
    let mut expected: Vec<i64> = women.iter().flat_map(|&id| [id, id]).collect();
    expected.sort_unstable();
    assert_eq!(panel.ids.values().to_vec(), expected);
    let sex = &panel.variable("BEFOLKNING_KJOENN").unwrap().values;
    assert!((0..panel.len()).all(|i| dataset::display(sex, i) == "2"));
    // A dataset with variables is not a population to fill.
    let full = script.replace("clone-units a b\nuse b\n", "");
    let refused = errors(&run_in(&engine, &mut Workspace::default(), &full).await);
    assert!(refused.iter().any(|(_, m)| m.contains("one of units only")), "{refused:?}");
}

#[tokio::test]
async fn an_import_dated_by_date_fmt_in_a_loop_equals_the_literal_date() {
    let engine = engine();
    let script = "require demo:1 as db
create-dataset wages
import db/BEFOLKNING_KJOENN as sex
for y in 2019 : 2020
  import db/INNTEKT_WLONN date_fmt($y, 12, 31) as wage_$y
end
let mid = bind(2020, '-06-30')
import db/INNTEKT_WLONN $mid as wage_mid
import db/INNTEKT_WLONN 2019-12-31 as literal_2019
import db/INNTEKT_WLONN 2020-12-31 as literal_2020
import db/INNTEKT_WLONN 2020-06-30 as literal_mid
";
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let dataset = workspace.current().unwrap();
    for (looped, literal) in
        [("wage_2019", "literal_2019"), ("wage_2020", "literal_2020"), ("wage_mid", "literal_mid")]
    {
        let (a, b) =
            (&dataset.variable(looped).unwrap().values, &dataset.variable(literal).unwrap().values);
        assert_eq!(a.as_ref(), b.as_ref(), "{looped} differs from {literal}");
        assert!(a.len() - a.null_count() > 1000, "{looped} has values");
    }
    // Wages change from year to year: the two years' imports are not one column twice.
    let (a, b) = (
        &dataset.variable("wage_2019").unwrap().values,
        &dataset.variable("wage_2020").unwrap().values,
    );
    assert_ne!(a.as_ref(), b.as_ref());
}

#[tokio::test]
async fn rowconcat_joins_each_rows_values_as_text_and_skips_missing_ones() {
    let engine = engine();
    let script = format!("{PERSONS}generate label = rowconcat(sex, '-', age, '-', wage)\n");
    let mut workspace = Workspace::default();
    let outputs = run_in(&engine, &mut workspace, &script).await;
    assert_eq!(errors(&outputs), vec![], "{outputs:#?}");
    let dataset = workspace.current().unwrap();
    let column = |name: &str| dataset.variable(name).unwrap().values.clone();
    let (sex, age, wage, label) = (column("sex"), column("age"), column("wage"), column("label"));
    let text = |values: &datafusion::arrow::array::ArrayRef, i: usize| {
        if values.is_null(i) { String::new() } else { dataset::display(values, i) }
    };
    let mut missing_wages = 0;
    for i in 0..dataset.len() {
        let expected = format!("{}-{}-{}", text(&sex, i), text(&age, i), text(&wage, i));
        assert_eq!(text(&label, i), expected, "row {i}");
        missing_wages += usize::from(wage.is_null(i));
    }
    assert!(missing_wages > 0, "some rows have no wage, and end in '-'");
}

#[tokio::test]
async fn every_function_of_the_catalogue_is_implemented() {
    // Called with no arguments each function answers (an arity error at most): none reaches
    // the "part of the language but not supported yet" answer for a listed function.
    let engine = engine();
    let mut unimplemented = Vec::new();
    for function in shared::script::catalog::functions() {
        let script = format!("{PERSONS}generate z = {function}()\n");
        let outputs = run_in(&engine, &mut Workspace::default(), &script).await;
        if errors(&outputs).iter().any(|(_, m)| m.contains("not supported yet")) {
            unimplemented.push(function);
        }
    }
    assert!(unimplemented.is_empty(), "listed but not implemented: {unimplemented:?}");
}
