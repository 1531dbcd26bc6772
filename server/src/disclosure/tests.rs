use super::memory::Cleared;
use super::raw::{Cell, CellStatistic, Contributors, Magnitude, Table};
use super::*;
use shared::output::OutputBody;

fn gate() -> Gate {
    Gate::new(Rules::default(), RecordKeySecret::new([7; 16]))
}

fn cell_of(gate: &Gate, ids: std::ops::Range<i64>) -> Cell {
    let mut c = Contributors::default();
    ids.for_each(|id| c.add(gate.record_key(id)));
    Cell { contributors: c, ..Cell::default() }
}

fn release_table(gate: &Gate, table: Table) -> Released {
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "tabulate x");
    let released =
        releaser.table(gate, &Cleared::for_test(), Origin { line: 1, command: "tabulate" }, table);
    assert_eq!(audit.entries.lock().unwrap().len(), 1, "every release is audited");
    released
}

fn one_way(gate: &Gate, sizes: &[i64]) -> Table {
    let mut start = 0;
    let mut cells = Vec::new();
    for &n in sizes {
        cells.push(vec![cell_of(gate, start..start + n)]);
        start += n;
    }
    Table {
        row_variable: "x".into(),
        column_variable: None,
        row_labels: (0..sizes.len()).map(|i| i.to_string()).collect(),
        column_labels: Vec::new(),
        cells,
        row_margins: Vec::new(),
        column_margins: Vec::new(),
        total: cell_of(gate, 0..start),
        statistic: CellStatistic::Count,
        options: Default::default(),
        population: Default::default(),
    }
}

#[test]
fn a_level_under_the_cell_threshold_is_never_named_and_the_total_cannot_give_it_back() {
    let gate = gate();
    let mut table = one_way(&gate, &[400, 3, 500, 600, 0, 1]);
    table.row_labels =
        ["0301", "417 513", "1103", "4601", "5001", "512 004"].map(String::from).to_vec();
    let released = release_table(&gate, table);
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    // The levels of 3 units and 1 are one unnamed row; the empty level is left out.
    let other = super::release::other_levels_label(5);
    assert_eq!(t.row_labels, ["0301", "1103", "4601", other.as_str(), "Total"]);
    assert!(t.row_labels.iter().all(|l| !l.contains("417") && !l.contains("512")));
    assert_eq!(t.cells[3][0], None, "the other levels' 4 units are withheld");
    let withheld = t.cells[..4].iter().filter(|r| r[0].is_none()).count();
    assert_eq!(withheld, 2, "one more cell is withheld so the total cannot give it back: {t:?}");
    assert_eq!(t.cells[0][0], None, "the smallest other cell is the one chosen");
    let total = t.cells[4][0].unwrap();
    assert!((1504.0 - 2.0..=1504.0 + 2.0).contains(&total));
}

#[test]
fn sparse_tables_are_withheld_naming_rule_6() {
    let gate = gate();
    let table = two_way(&gate, &[&[1, 2, 300], &[3, 1, 200], &[2, 2, 1]]);
    let released = release_table(&gate, table);
    let OutputBody::Error { rule, message, .. } = &released.output().body else {
        panic!("{released:?}")
    };
    assert_eq!(rule.as_deref(), Some("rule 6"));
    assert!(message.contains("withheld"), "{message}");
    assert!(!message.contains("300"), "a refusal never echoes numbers from the data");
}

#[test]
fn the_same_contributors_give_the_same_count_whatever_their_order() {
    let gate = gate();
    let mut forward = Contributors::default();
    let mut backward = Contributors::default();
    (0..1000).for_each(|id| forward.add(gate.record_key(id)));
    (0..1000).rev().for_each(|id| backward.add(gate.record_key(id)));
    assert_eq!(gate.perturb(forward), gate.perturb(backward));
}

#[test]
fn the_dominance_rule_suppresses_a_cell_led_by_one_company() {
    // X = 100 000, x1 = 50 000, x2 = 49 000: the second could estimate the first within 2 %.
    let gate = gate();
    let mut m = Magnitude::default();
    m.add(50_000.0);
    m.add(49_000.0);
    for _ in 0..10 {
        m.add(100.0);
    }
    let mut c = Contributors::default();
    (0..12).for_each(|id| c.add(gate.record_key(id)));
    assert_eq!(gate.released_magnitude_for_test(c, &m), None);
    // Without the dominant pair the cell is released, with noise.
    let mut even = Magnitude::default();
    (0..12).for_each(|_| even.add(1000.0));
    let (sum, mean) = gate.released_magnitude_for_test(c, &even).unwrap();
    assert!(
        sum != 12_000.0 && (sum - 12_000.0).abs() <= 2_100.0,
        "the count's noise and up to 10 % more, in units of the largest: {sum}"
    );
    assert!((mean - sum / 12.0).abs() < 1e-9);
}

#[test]
fn refusals_of_data_changes_name_their_rule() {
    let gate = gate();
    assert!(gate.check_population(1000).is_ok());
    assert_eq!(gate.check_population(999).unwrap_err().rule, 3);
    assert!(gate.check_change(0, 5000).is_ok());
    assert!(gate.check_change(10, 4990).is_ok());
    assert_eq!(gate.check_change(1, 4999).unwrap_err().rule, 4);
    assert_eq!(gate.check_change(4991, 9).unwrap_err().rule, 4);
}

#[test]
fn significant_digits_round_as_published() {
    assert_eq!(significant(412_345.0, 3), 412_000.0);
    assert_eq!(significant(0.012345, 3), 0.0123);
    assert_eq!(significant(-98_765.0, 3), -98_800.0);
}

/// A two-way table from true counts, with its margins and total as cells of their own.
fn two_way(gate: &Gate, sizes: &[&[i64]]) -> Table {
    let mut next = 0;
    let mut ids: Vec<Vec<std::ops::Range<i64>>> = Vec::new();
    for row in sizes {
        ids.push(
            row.iter()
                .map(|&n| {
                    next += n;
                    next - n..next
                })
                .collect(),
        );
    }
    let union = |ranges: Vec<std::ops::Range<i64>>| {
        let mut c = Contributors::default();
        ranges.into_iter().flatten().for_each(|id| c.add(gate.record_key(id)));
        Cell { contributors: c, ..Cell::default() }
    };
    let columns = sizes[0].len();
    Table {
        row_variable: "r".into(),
        column_variable: Some("c".into()),
        row_labels: (0..sizes.len()).map(|i| i.to_string()).collect(),
        column_labels: (0..columns).map(|i| i.to_string()).collect(),
        cells: ids.iter().map(|row| row.iter().map(|r| union(vec![r.clone()])).collect()).collect(),
        row_margins: ids.iter().map(|row| union(row.clone())).collect(),
        column_margins: (0..columns)
            .map(|c| union(ids.iter().map(|row| row[c].clone()).collect()))
            .collect(),
        total: union((0..next).map(|id| id..id + 1).collect()),
        statistic: CellStatistic::Count,
        options: Default::default(),
        population: Default::default(),
    }
}

#[test]
fn no_row_or_column_with_its_margin_is_left_with_one_withheld_entry() {
    let gate = gate();
    // Children have almost no wages: two small cells in the first column.
    let table = two_way(&gate, &[&[743, 230, 379], &[8, 1343, 518], &[3, 1776, 2]]);
    let released = release_table(&gate, table);
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    let withheld = |cells: Vec<Option<f64>>| cells.iter().filter(|c| c.is_none()).count();
    for (r, row) in t.cells.iter().enumerate() {
        let n = withheld(row.clone());
        assert!(n != 1, "row {r} has one withheld entry: {t:?}");
    }
    for c in 0..t.cells[0].len() {
        let n = withheld(t.cells.iter().map(|row| row[c]).collect());
        assert!(n != 1, "column {c} has one withheld entry: {t:?}");
    }
    assert_eq!(t.cells[2][0], None, "the 3 is withheld");
    assert_eq!(t.cells[2][2], None, "the 2 is withheld");
    let shown = t.cells.iter().flatten().filter(|c| c.is_some()).count();
    assert!(shown >= 12, "complements are few: {shown} of 16 entries shown: {t:?}");
}

#[test]
fn the_differencing_detector_refuses_1_to_9_and_flags_10_to_19_units_for_review() {
    use differencing::PopulationSketch;
    let gate = gate();
    let sketch = |ids: std::ops::Range<i64>| {
        let mut s = PopulationSketch::default();
        ids.for_each(|id| s.insert(id));
        s
    };
    let earlier = [sketch(0..1000)];
    assert_eq!(gate.check_differencing(&earlier, &sketch(0..995)).unwrap_err().rule, 11);
    assert_eq!(gate.check_differencing(&earlier, &sketch(0..985)), Ok(Some(15)));
    assert_eq!(gate.check_differencing(&earlier, &sketch(0..900)), Ok(None));
    assert_eq!(gate.check_differencing(&earlier, &sketch(0..1000)), Ok(None), "the same");

    // The flag reaches the next output's audit entry, and only that one.
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "summarize x");
    let origin = Origin { line: 1, command: "summarize" };
    releaser.flag_for_review("population differs by 15 units".into());
    releaser.notice(origin, "first".into());
    releaser.notice(origin, "second".into());
    releaser.refusal(origin, gate.check_differencing(&earlier, &sketch(1..1000)).unwrap_err());
    let entries = audit.entries.lock().unwrap();
    let reviews: Vec<Option<&str>> = entries.iter().map(|e| e.review.as_deref()).collect();
    assert_eq!(
        reviews,
        [Some("population differs by 15 units"), None, Some("refused as differencing (rule 11)")]
    );
}

#[test]
fn chi2_comes_from_the_released_counts_and_top_keeps_the_largest_rows() {
    let gate = gate();
    let mut table = two_way(&gate, &[&[100, 200], &[300, 250], &[40, 90]]);
    table.options = raw::TableOptions { chi2: true, top: Some(2), ..Default::default() };
    let released = release_table(&gate, table);
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    // top(2): the rows with the largest released totals, then Total.
    assert_eq!(t.row_labels, ["1", "0", "Total"]);
    // The note's χ² is over the whole 3 × 2 table, from counts that carry ±2 of noise:
    // scipy.stats.chi2_contingency of the true counts, without continuity correction, gives
    // 47.399.
    let note = t.notes.iter().find(|n| n.starts_with("Pearson chi2(2)")).expect("a chi2 note");
    let value: f64 = note["Pearson chi2(2) = ".len()..].split(',').next().unwrap().parse().unwrap();
    assert!((value - 47.399).abs() < 0.01 * 47.399, "{note}");
}

#[test]
fn chi2_is_withheld_when_a_cell_is() {
    let gate = gate();
    let mut table = two_way(&gate, &[&[100, 200], &[300, 2], &[40, 90]]);
    table.options.chi2 = true;
    let released = release_table(&gate, table);
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    assert!(t.notes.iter().any(|n| n.contains("chi2 withheld")), "{:?}", t.notes);
}

/// The released N a statistics table states in its first note ("N = 123 (perturbed); …").
fn noted_n(t: &shared::output::Table) -> f64 {
    t.notes[0]
        .strip_prefix("N = ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the note states N")
}

#[test]
fn an_anova_table_states_its_df_from_the_released_n_never_the_exact_one() {
    let gate = gate();
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "anova y f");
    // Find a sample whose perturbed N differs from the true one, so the test can tell them apart.
    let (units, released_n) = (200..400)
        .find_map(|n| {
            let mut c = Contributors::default();
            (0..n).for_each(|id| c.add(gate.record_key(id)));
            let table = raw::StatisticsTable {
                title: "anova".into(),
                row_variable: "source".into(),
                row_labels: vec!["f".into(), "residual".into(), "total".into()],
                column_labels: ["SS", "df", "MS", "F", "p"].map(String::from).to_vec(),
                values: vec![
                    vec![Some(50.0), Some(2.0), Some(25.0), Some(1.0), Some(0.5)],
                    vec![Some(900.0), Some(n as f64 - 3.0), Some(0.0), None, None],
                    vec![Some(950.0), Some(n as f64 - 1.0), None, None, None],
                ],
                contributors: c,
                levels: Vec::new(),
                notes: Vec::new(),
                restate: raw::Restate::Anova { parameters: 3, constant: true },
                population: Default::default(),
            };
            let released = releaser.statistics(
                &gate,
                &Cleared::for_test(),
                Origin { line: 1, command: "anova" },
                table,
            );
            let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
            let df = t.cells[1][1].unwrap();
            let noted = noted_n(t);
            // Residual df and total df follow the released N, whatever the true one is.
            assert_eq!((df, t.cells[2][1].unwrap()), (noted - 3.0, noted - 1.0));
            (noted != n as f64).then_some((n as f64, noted))
        })
        .expect("some N among 200 gets noise");
    assert_ne!(units, released_n);
}

#[test]
fn a_correlations_p_value_is_tested_on_the_released_n() {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let gate = gate();
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "correlate a b, sig");
    let mut c = Contributors::default();
    (0..300).for_each(|id| c.add(gate.record_key(id)));
    let r = 0.3;
    let table = raw::StatisticsTable {
        title: "Correlations (Pearson)".into(),
        row_variable: String::new(),
        row_labels: vec!["a".into(), "  p (a)".into()],
        column_labels: vec!["a".into(), "b".into()],
        values: vec![vec![Some(1.0), Some(r)], vec![None, Some(0.123)]],
        contributors: c,
        levels: Vec::new(),
        notes: Vec::new(),
        restate: raw::Restate::Pairs(vec![raw::Pair {
            value: (0, 1),
            p: Some((1, 1)),
            n: None,
            r,
            units: c,
        }]),
        population: Default::default(),
    };
    let released = releaser.statistics(
        &gate,
        &Cleared::for_test(),
        Origin { line: 1, command: "correlate" },
        table,
    );
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    let n = noted_n(t);
    let df = n - 2.0;
    let expected = 2.0 * StudentsT::new(0.0, 1.0, df).unwrap().sf(r * (df / (1.0 - r * r)).sqrt());
    let shown = t.cells[1][1].unwrap();
    assert!((shown - significant(expected, 4)).abs() < 1e-12, "{shown} vs {expected}");
    assert_eq!(t.cells[1][0], None);
}

#[test]
fn a_normality_test_is_computed_on_the_released_n() {
    let gate = gate();
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "normaltest a");
    let mut c = Contributors::default();
    (0..300).for_each(|id| c.add(gate.record_key(id)));
    let (skew, kurt) = (0.8, 4.1);
    let table = raw::StatisticsTable {
        title: "Tests for normality".into(),
        row_variable: "variable".into(),
        row_labels: vec!["a".into()],
        column_labels: ["skewness", "kurtosis", "z skewness", "z kurtosis", "chi2(2)", "p"]
            .map(String::from)
            .to_vec(),
        // What the engine computed with the exact N, to be replaced.
        values: vec![vec![Some(skew), Some(kurt), Some(9.0), Some(9.0), Some(9.0), Some(0.5)]],
        contributors: c,
        levels: Vec::new(),
        notes: Vec::new(),
        restate: raw::Restate::Normality,
        population: Default::default(),
    };
    let released = releaser.statistics(
        &gate,
        &Cleared::for_test(),
        Origin { line: 1, command: "normaltest" },
        table,
    );
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    let n = noted_n(t);
    let (z_skew, z_kurt, k2, p) = crate::stats::dagostino_pearson(skew, kurt, n);
    let expected = [skew, kurt, z_skew, z_kurt, k2, p].map(|v| Some(significant(v, 4)));
    assert_eq!(t.cells[0], expected);
}

#[test]
fn a_pairwise_correlation_over_too_few_units_is_withheld_with_its_n_and_p() {
    let gate = gate();
    let audit = audit::MemoryAudit::default();
    let releaser = Releaser::new(&audit, "tester", "correlate a b c, pairwise obs sig");
    let units = |n: i64| {
        let mut c = Contributors::default();
        (0..n).for_each(|id| c.add(gate.record_key(id)));
        c
    };
    // Rows: r, p and N of a; columns b (300 units with a) and c (4 units with a).
    let pair = |column: usize, n: i64| raw::Pair {
        value: (0, column),
        p: Some((1, column)),
        n: Some((2, column)),
        r: 0.2,
        units: units(n),
    };
    let table = raw::StatisticsTable {
        title: "Correlations (Pearson)".into(),
        row_variable: String::new(),
        row_labels: vec!["a".into(), "  p (a)".into(), "  N (a)".into()],
        column_labels: vec!["b".into(), "c".into()],
        values: vec![vec![Some(0.2), Some(0.2)], vec![Some(0.5), Some(0.5)], vec![None, None]],
        contributors: units(300),
        levels: Vec::new(),
        notes: Vec::new(),
        restate: raw::Restate::Pairs(vec![pair(0, 300), pair(1, 4)]),
        population: Default::default(),
    };
    let released = releaser.statistics(
        &gate,
        &Cleared::for_test(),
        Origin { line: 1, command: "correlate" },
        table,
    );
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    let column = |c: usize| [t.cells[0][c], t.cells[1][c], t.cells[2][c]];
    assert_eq!(column(1), [None, None, None], "the pair of 4 units shows nothing");
    assert!(column(0).iter().all(Option::is_some), "{t:?}");
    assert!((298.0..=302.0).contains(&t.cells[2][0].unwrap()), "a perturbed N");
}

#[test]
fn two_variables_over_the_same_units_do_not_share_their_noise() {
    // A variable and a copy with one unit's value doubled: with noise keyed only by the
    // contributors, the difference of the two sums was that unit's value, exactly.
    let gate = gate();
    let mut c = Contributors::default();
    (0..500).for_each(|id| c.add(gate.record_key(id)));
    let values: Vec<f64> =
        (0..500).map(|i| 300_000.0 + 1_000.0 * ((i * 37) % 400) as f64).collect();
    let mut plain = Magnitude::default();
    values.iter().for_each(|v| plain.add(*v));
    let mut errors = Vec::new();
    for target in 0..40usize {
        let mut doubled = Magnitude::default();
        for (i, v) in values.iter().enumerate() {
            doubled.add(if i == target { 2.0 * v } else { *v });
        }
        let (a, _) = gate.released_magnitude_for_test(c, &plain).unwrap();
        let (b, _) = gate.released_magnitude_for_test(c, &doubled).unwrap();
        errors.push(((b - a) - values[target]).abs() / values[target]);
    }
    let exact = errors.iter().filter(|e| **e < 1e-9).count();
    assert_eq!(exact, 0, "no difference gives the value back exactly: {errors:?}");
    let mut sorted = errors.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(sorted[sorted.len() / 2] > 0.05, "the typical error is over 5 %: {sorted:?}");
    // The same values over the same units keep their noise (rewording gains nothing).
    assert_eq!(
        gate.released_magnitude_for_test(c, &plain),
        gate.released_magnitude_for_test(c, &plain.merged(Magnitude::default()))
    );
}

#[test]
fn standard_deviations_carry_noise_keyed_apart_from_the_mean() {
    let gate = gate();
    let mut c = Contributors::default();
    (0..30).for_each(|id| c.add(gate.record_key(id)));
    let mut m = Magnitude::default();
    (0..30).for_each(|i| m.add(f64::from(i % 7) * 1_000.0));
    let exact = m.sd().unwrap();
    let released = gate.released_sd_for_test(c, &m).unwrap();
    assert!(released != exact, "the SD is not the exact one");
    // Noise of up to 3.5 times the largest value squared on the sum of squared deviations
    // (the count's ±2 and the value-keyed ±1.5).
    let noise = Rules::default().magnitude_noise + 2.0;
    let bound = ((exact * exact * 29.0 + noise * 6_000.0f64.powi(2)) / 29.0).sqrt();
    assert!(released <= bound + 1e-9, "{released} within the noise bound {bound}");
    assert_eq!(released, gate.released_sd_for_test(c, &m).unwrap(), "keyed, not random");
}

#[test]
fn an_empty_cell_beside_a_withheld_one_is_withheld_too() {
    // Class 7: "0" next to "withheld" says which cell holds the few units.
    let gate = gate();
    let sizes: [&[i64]; 3] = [&[3, 400, 500, 0], &[300, 450, 0, 600], &[350, 0, 520, 610]];
    let released = release_table(&gate, two_way(&gate, &sizes));
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    for (r, c) in [(0, 0), (0, 3), (1, 2), (2, 1)] {
        assert_eq!(t.cells[r][c], None, "cell ({r}, {c}) of {t:?}");
    }
    let inner = t.cells[..3].iter().flat_map(|r| &r[..4]);
    assert!(inner.clone().flatten().all(|v| *v > 0.0), "no 0 is shown: {t:?}");
    assert!(inner.flatten().count() >= 4, "the large cells are still shown: {t:?}");
    // Without any withheld cell an empty cell is shown as the 0 it is.
    let table = two_way(&gate, &[&[0, 300, 400], &[250, 300, 200]]);
    let released = release_table(&gate, table);
    let OutputBody::Table(t) = &released.output().body else { panic!("{released:?}") };
    assert_eq!(t.cells[0][0], Some(0.0));
}

/// The one release path: rule 11 passes or refuses before an output, and what passed is
/// remembered only when its clearance ends, so the next output is checked against it.
#[test]
fn a_clearance_remembers_its_populations_when_it_ends_and_the_next_near_one_is_refused() {
    use super::differencing::PopulationSketch;
    use super::memory::{Rule11Check, SharedMemory, clear};
    let sketch = |ids: std::ops::Range<i64>| {
        let mut s = PopulationSketch::default();
        ids.for_each(|id| s.insert(id));
        s
    };
    let gate = gate();
    let memory = SharedMemory::default();
    let everyone = sketch(0..500);
    let all_but_three = sketch(3..500);
    let all_but_fifteen = sketch(15..500);
    fn check(p: &PopulationSketch) -> Rule11Check<'_> {
        Rule11Check { together: vec![p], apart: Vec::new(), remember: vec![p.clone()] }
    }
    let (cleared, near) = clear(&gate, &memory, check(&everyone)).unwrap();
    assert_eq!(near, None);
    // Until the clearance ends, nothing is remembered ...
    assert_eq!(memory.lock().unwrap().populations.len(), 0);
    drop(cleared);
    // ... then it is, and a population three units off is refused by rule 11.
    assert_eq!(memory.lock().unwrap().populations.len(), 1);
    let refused = clear(&gate, &memory, check(&all_but_three)).unwrap_err();
    assert_eq!(refused.rule, 11);
    // Fifteen units off passes, flagged as near (between min_change and twice it).
    let (_cleared, near) = clear(&gate, &memory, check(&all_but_fifteen)).unwrap();
    assert_eq!(near, Some(15));
    // Within one output: two rows three units apart are refused together, passed apart.
    let fresh = SharedMemory::default();
    let rows = Rule11Check {
        together: vec![&everyone, &all_but_three],
        apart: Vec::new(),
        remember: Vec::new(),
    };
    assert_eq!(clear(&gate, &fresh, rows).unwrap_err().rule, 11);
    let bars = Rule11Check {
        together: Vec::new(),
        apart: vec![&everyone, &all_but_three],
        remember: Vec::new(),
    };
    assert!(clear(&gate, &fresh, bars).is_ok());
}

#[test]
fn a_few_rows_never_count_as_many_and_enough_always_do() {
    // Rule 13: an error decided on a few rows would answer a question about them. With the
    // count noise at most ±2, 1 to 7 rows can never reach min_change (10), 12 or more always
    // do, and in between the decision follows the perturbed count, not the exact one.
    let gate = gate();
    let (mut at_8_to_11_yes, mut at_8_to_11_no) = (0, 0);
    for start in 0..200_i64 {
        for n in 1..=14_i64 {
            let mut rows = Contributors::default();
            (start * 100..start * 100 + n).for_each(|id| rows.add(gate.record_key(id)));
            let many = gate.counts_as_many(rows);
            match n {
                ..=7 => assert!(!many, "{n} rows counted as many"),
                12.. => assert!(many, "{n} rows did not count as many"),
                _ if many => at_8_to_11_yes += 1,
                _ => at_8_to_11_no += 1,
            }
            assert_eq!(many, gate.perturbed_count(rows) >= 10, "decided on the perturbed count");
        }
    }
    assert!(at_8_to_11_yes > 0 && at_8_to_11_no > 0, "8–11 rows go either way");
    assert!(!gate.counts_as_many(Contributors::default()), "no rows are not many");
}
