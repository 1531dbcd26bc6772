//! Tables: `tabulate` and the grids inside other outputs, with rules 5–7 on their cells,
//! small levels merged, secondary suppression and the tests computed from released counts.

use super::*;

impl Releaser<'_> {
    pub fn table(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        table: raw::Table,
    ) -> Released {
        let started = std::time::Instant::now();
        let released = self.table_rules(gate, origin, table);
        self.account(started.elapsed());
        released
    }

    pub(super) fn table_rules(
        &self,
        gate: &Gate,
        origin: Origin<'_>,
        table: raw::Table,
    ) -> Released {
        match released_table(gate, table) {
            Ok((table, decisions)) => self.emit(origin, OutputBody::Table(table), decisions),
            Err(refusal) => self.refusal(origin, refusal),
        }
    }
}

/// An analysis-of-variance table with its residual and total df taken from the released N
/// (`n − k` and `n − 1`), and the mean squares, F and p that follow from them: the exact df
/// would give back the exact N.
pub(super) fn restate_anova(values: &mut [Vec<Option<f64>>], n: f64, k: f64, constant: bool) {
    use statrs::distribution::{ContinuousCDF, FisherSnedecor};
    let rows = values.len();
    if rows < 2 {
        return;
    }
    let df_residual = (n - k).max(1.0);
    let residual_ss = values[rows - 2][0].unwrap_or(0.0);
    let ms_residual = residual_ss / df_residual;
    values[rows - 2][1] = Some(df_residual);
    values[rows - 2][2] = Some(ms_residual);
    values[rows - 1][1] = Some(if constant { (n - 1.0).max(1.0) } else { n });
    for row in &mut values[..rows - 2] {
        let (Some(ss), Some(df)) = (row[0], row[1]) else { continue };
        let f = (ss / df) / ms_residual;
        row[2] = Some(ss / df);
        row[3] = Some(f);
        row[4] = FisherSnedecor::new(df, df_residual).ok().map(|d| d.sf(f));
    }
}

/// The label of the row (column) that holds the levels too small to be named.
pub(in crate::disclosure) fn other_levels_label(min_cell: u64) -> String {
    format!("other levels (each under {min_cell} units)")
}

/// Rule 6 for labels: a level with fewer than `min_cell` units in the table is never named.
/// Such rows (and columns) are merged into one row labelled as other levels, their cells
/// added as disjoint cells are; empty levels are left out. Without this a derived variable
/// could carry any unit's value as a level, and the suppressed cell would still show the
/// value in its label. Returns how many levels were merged.
pub(super) fn merge_small_levels(gate: &Gate, table: &mut raw::Table) -> usize {
    let min = gate.rules().min_cell;
    let two_way = table.column_variable.is_some();
    let rows = table.cells.len();
    let columns = table.cells.first().map_or(0, Vec::len);
    let row_units = |t: &raw::Table, r: usize| -> u64 {
        if two_way { t.row_margins[r].contributors.units } else { t.cells[r][0].contributors.units }
    };
    let row_small: Vec<bool> = (0..rows).map(|r| row_units(table, r) < min).collect();
    let mut merged = 0;
    if row_small.iter().any(|&s| s) {
        let mut other: Option<(Vec<raw::Cell>, raw::Cell)> = None;
        let (mut cells, mut labels, mut margins) = (Vec::new(), Vec::new(), Vec::new());
        let old_margins = std::mem::take(&mut table.row_margins);
        for (r, (row, label)) in std::mem::take(&mut table.cells)
            .into_iter()
            .zip(std::mem::take(&mut table.row_labels))
            .enumerate()
        {
            let margin = old_margins.get(r).cloned().unwrap_or_default();
            if !row_small[r] {
                cells.push(row);
                labels.push(label);
                margins.push(margin);
                continue;
            }
            if margin.contributors.units == 0 && row.iter().all(|c| c.contributors.units == 0) {
                continue;
            }
            merged += 1;
            other = Some(match other {
                None => (row, margin),
                Some((acc, acc_margin)) => (
                    acc.into_iter().zip(row).map(|(a, b)| merged_cell(a, b)).collect(),
                    merged_cell(acc_margin, margin),
                ),
            });
        }
        if let Some((row, margin)) = other {
            cells.push(row);
            labels.push(other_levels_label(min));
            margins.push(margin);
        }
        table.cells = cells;
        table.row_labels = labels;
        if two_way {
            table.row_margins = margins;
        }
    }
    if two_way {
        let column_small: Vec<bool> =
            (0..columns).map(|c| table.column_margins[c].contributors.units < min).collect();
        if column_small.iter().any(|&s| s) {
            let keep: Vec<usize> = (0..columns).filter(|&c| !column_small[c]).collect();
            let small: Vec<usize> = (0..columns)
                .filter(|&c| column_small[c] && table.column_margins[c].contributors.units > 0)
                .collect();
            merged += small.len();
            let regroup = |line: &[raw::Cell]| -> Vec<raw::Cell> {
                let mut out: Vec<raw::Cell> = keep.iter().map(|&c| line[c].clone()).collect();
                if let Some(first) = small.first() {
                    let other = small[1..]
                        .iter()
                        .fold(line[*first].clone(), |acc, &c| merged_cell(acc, line[c].clone()));
                    out.push(other);
                }
                out
            };
            table.cells = table.cells.iter().map(|row| regroup(row)).collect();
            table.column_margins = regroup(&table.column_margins);
            let mut labels: Vec<String> =
                keep.iter().map(|&c| table.column_labels[c].clone()).collect();
            if !small.is_empty() {
                labels.push(other_levels_label(min));
            }
            table.column_labels = labels;
        }
    }
    merged
}

/// Two disjoint cells as one: contributors and magnitudes add; percentiles and the Gini
/// coefficient cannot be added, so the merged cell has none (and shows none).
pub(super) fn merged_cell(a: raw::Cell, b: raw::Cell) -> raw::Cell {
    let magnitude = match (a.magnitude, b.magnitude) {
        (Some(x), Some(y)) => Some(x.merged(y)),
        (x, y) => x.or(y),
    };
    raw::Cell {
        contributors: a.contributors.merged(b.contributors),
        magnitude,
        quantiles: Vec::new(),
        gini: None,
    }
}

/// Rules 5–7 on a table: the released table, with the decisions, or the refusal.
pub(super) fn released_table(
    gate: &Gate,
    table: raw::Table,
) -> Result<(output::Table, Vec<Decision>), Refusal> {
    let rules = gate.rules();
    let mut table = table;
    let merged_levels = merge_small_levels(gate, &mut table);
    let rows = table.row_labels.len();
    let two_way = table.column_variable.is_some();
    let mut chi2_note = None;
    let counting = matches!(
        table.statistic,
        CellStatistic::Count
            | CellStatistic::RowPercent
            | CellStatistic::ColumnPercent
            | CellStatistic::CellPercent
    );
    let mut decisions = Vec::new();
    if merged_levels > 0 {
        decisions.push(Decision {
            rule: 6,
            outcome: format!("{merged_levels} levels under the cell threshold merged, unnamed"),
        });
    }

    // Inner cells, margins and the total are each their own cell (rule 5).
    let mut inner: Vec<Vec<Released1>> = table
        .cells
        .iter()
        .map(|row| row.iter().map(|c| gate.cell_value(c, &table.statistic)).collect())
        .collect();
    let mut row_margins: Vec<Released1> =
        table.row_margins.iter().map(|c| gate.cell_value(c, &table.statistic)).collect();
    let mut column_margins: Vec<Released1> =
        table.column_margins.iter().map(|c| gate.cell_value(c, &table.statistic)).collect();
    let mut total = gate.cell_value(&table.total, &table.statistic);

    if counting {
        decisions.push(Decision { rule: 5, outcome: "counts perturbed".into() });
        // Rule 6: withhold a sparse table.
        let counts: Vec<u64> = table
            .cells
            .iter()
            .flatten()
            .map(|c| gate.perturb(c.contributors))
            .filter(|&n| n > 0)
            .collect();
        let small = counts.iter().filter(|&&n| n < rules.min_cell).count();
        if !counts.is_empty() && small as f64 > rules.max_small_cell_share * counts.len() as f64 {
            return Err(Refusal::new(
                6,
                format!(
                    "the table is withheld: more than {:.0} % of its cells are under {} (rule 6, sparse tables). Group the categories (recode) or use fewer variables",
                    rules.max_small_cell_share * 100.0,
                    rules.min_cell
                ),
            ));
        }
        let primary = inner.iter().flatten().filter(|c| **c == Released1::Suppressed).count();
        if primary > 0 {
            decisions.push(Decision { rule: 6, outcome: format!("{primary} cells suppressed") });
        }
        // Secondary suppression: no row or column with a shown margin may have exactly one
        // withheld cell, or the margin would give it back.
        let secondary = secondary_suppression(
            &table,
            &mut inner,
            &mut row_margins,
            &mut column_margins,
            &mut total,
            two_way,
        );
        if secondary > 0 {
            decisions.push(Decision {
                rule: 6,
                outcome: format!("{secondary} cells suppressed to protect others"),
            });
        }
        // A released 0 beside a withheld cell says "nobody" where the withheld one says "a
        // few": for a population built around one unit, which cell holds it. Where any cell
        // is withheld, empty cells are withheld too (after secondary suppression, which must
        // not count them as protection: a known zero protects nothing).
        if inner.iter().flatten().any(|c| *c == Released1::Suppressed) {
            let mut zeros = 0;
            for (row, cells) in inner.iter_mut().zip(&table.cells) {
                for (released, cell) in row.iter_mut().zip(cells) {
                    if cell.contributors.units == 0 && *released != Released1::Suppressed {
                        *released = Released1::Suppressed;
                        zeros += 1;
                    }
                }
            }
            if zeros > 0 {
                decisions.push(Decision {
                    rule: 6,
                    outcome: format!("{zeros} empty cells withheld like the small ones"),
                });
            }
        }
        if table.options.chi2 && two_way {
            chi2_note = Some(pearson_chi2(&inner));
        }
    } else {
        let withheld = inner.iter().flatten().filter(|c| **c == Released1::Suppressed).count();
        decisions.push(Decision {
            rule: 7,
            outcome: format!("magnitudes coded, noised; {withheld} cells withheld"),
        });
    }

    // Percentages from released counts.
    let percent = |part: Released1, whole: Released1| match (part, whole) {
        (Released1::Shown(p), Released1::Shown(w)) if w > 0.0 => Released1::Shown(100.0 * p / w),
        (Released1::Shown(_), Released1::Shown(_)) => Released1::Shown(0.0),
        _ => Released1::Suppressed,
    };
    let statistic_name;
    match &table.statistic {
        CellStatistic::RowPercent if two_way => {
            for (r, row) in inner.iter_mut().enumerate() {
                for c in row.iter_mut() {
                    *c = percent(*c, row_margins[r]);
                }
            }
            for m in column_margins.iter_mut() {
                *m = percent(*m, total);
            }
            row_margins.iter_mut().for_each(|m| *m = percent(*m, *m));
            statistic_name = "row percent".to_owned();
        }
        CellStatistic::ColumnPercent if two_way => {
            for row in inner.iter_mut() {
                for (c, cell) in row.iter_mut().enumerate() {
                    *cell = percent(*cell, column_margins[c]);
                }
            }
            for m in row_margins.iter_mut() {
                *m = percent(*m, total);
            }
            column_margins.iter_mut().for_each(|m| *m = percent(*m, *m));
            statistic_name = "column percent".to_owned();
        }
        CellStatistic::RowPercent | CellStatistic::ColumnPercent | CellStatistic::CellPercent => {
            inner.iter_mut().flatten().for_each(|c| *c = percent(*c, total));
            row_margins.iter_mut().for_each(|c| *c = percent(*c, total));
            column_margins.iter_mut().for_each(|c| *c = percent(*c, total));
            statistic_name = "percent".to_owned();
        }
        CellStatistic::Count => statistic_name = "count".to_owned(),
        CellStatistic::Mean(v) => statistic_name = format!("mean of {v}"),
        CellStatistic::Sum(v) => statistic_name = format!("sum of {v}"),
        CellStatistic::Sd(v) => statistic_name = format!("standard deviation of {v}"),
        CellStatistic::Percentile(v, p) => statistic_name = format!("P{p} of {v}"),
        CellStatistic::Gini(v) => statistic_name = format!("Gini coefficient of {v}"),
        CellStatistic::Iqr(v) => statistic_name = format!("interquartile range of {v}"),
    }
    let total_value = match &table.statistic {
        CellStatistic::RowPercent | CellStatistic::ColumnPercent | CellStatistic::CellPercent => {
            percent(total, total)
        }
        _ => total,
    };

    // Assemble rows × columns with the margins as the last column and row.
    let mut cells: Vec<Vec<Option<f64>>> = Vec::with_capacity(rows + 1);
    for r in 0..rows {
        let mut line: Vec<Option<f64>> = inner[r].iter().map(|c| c.value()).collect();
        if two_way {
            line.push(row_margins[r].value());
        }
        cells.push(line);
    }
    let mut last: Vec<Option<f64>> =
        if two_way { column_margins.iter().map(|c| c.value()).collect() } else { Vec::new() };
    last.push(total_value.value());
    cells.push(last);
    let mut row_labels = table.row_labels.clone();
    row_labels.push("Total".into());
    let mut column_labels =
        if two_way { table.column_labels.clone() } else { vec![statistic_name.clone()] };
    if two_way {
        column_labels.push("Total".into());
    }
    debug_assert!(cells.iter().all(|r| r.len() == column_labels.len()));
    arrange(&table.options, &mut row_labels, &mut column_labels, &mut cells, two_way);

    let mut notes = Vec::new();
    if let Some(note) = chi2_note {
        notes.push(note);
    }
    if counting {
        notes.push(format!(
            "Counts carry cell-key noise (±{} at most); cells under {} are withheld, and where any is, so are empty cells.",
            rules.max_deviation, rules.min_cell
        ));
    } else if matches!(table.statistic, CellStatistic::Gini(..)) {
        notes.push(format!(
            "The Gini coefficient of values coded to P{}–P{}; cells with fewer than {} units or a dominant unit are withheld.",
            rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_units_for_statistics
        ));
    } else if matches!(table.statistic, CellStatistic::Percentile(..) | CellStatistic::Iqr(..)) {
        notes.push(format!(
                "Percentiles need {} units on each side and show {} significant digits; cells with fewer than {} units are withheld.",
                rules.min_units_beside_percentile, rules.significant_digits, rules.min_units_for_statistics
            ));
    } else {
        notes.push(format!(
                "Values are coded to P{}–P{} and carry noise; cells with fewer than {} units or a dominant unit are withheld.",
                rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_units_for_statistics
            ));
    }
    let title = match &table.column_variable {
        Some(c) => format!("{} by {}", table.row_variable, c),
        None => table.row_variable.clone(),
    };
    let body = output::Table {
        title,
        statistic: statistic_name,
        row_variable: table.row_variable,
        column_variable: table.column_variable,
        row_labels,
        column_labels,
        cells,
        totals: true,
        notes,
    };
    Ok((body, decisions))
}

/// Fit statistics that would give the exact N back (residual df directly; adjusted R², F and
/// root MSE next to R² and a summary's SD) are restated with the released N, as a table's N
/// is.
pub(super) fn with_released_n(
    statistics: Vec<(String, f64)>,
    n: f64,
    residual_df: f64,
    true_residual_df: f64,
    constant: bool,
) -> Vec<(String, f64)> {
    let find = |name: &str| statistics.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let (r2, model_df) = (find("R²"), find("model df"));
    statistics
        .iter()
        .map(|(name, value)| {
            let restated = match name.as_str() {
                "residual df" => Some(residual_df),
                "adjusted R²" => {
                    r2.map(|r2| 1.0 - (1.0 - r2) * (n - f64::from(constant)) / residual_df)
                }
                "F" => r2.zip(model_df).map(|(r2, m)| (r2 / m) / ((1.0 - r2) / residual_df)),
                // The residual sum of squares over the released df.
                "root MSE" => Some((value * value * true_residual_df / residual_df).sqrt()),
                _ => None,
            };
            (name.clone(), restated.unwrap_or(*value))
        })
        .collect()
}

/// Pearson's χ² test of independence from the released inner counts, as a note; withheld when
/// any inner cell is, since the test would then say something about it.
pub(super) fn pearson_chi2(inner: &[Vec<Released1>]) -> String {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let counts: Option<Vec<Vec<f64>>> =
        inner.iter().map(|row| row.iter().map(|c| c.value()).collect()).collect();
    let Some(counts) = counts else {
        return "Pearson chi2 withheld: the table has withheld cells.".into();
    };
    let row_sums: Vec<f64> = counts.iter().map(|r| r.iter().sum()).collect();
    let columns = counts.first().map_or(0, Vec::len);
    let column_sums: Vec<f64> = (0..columns).map(|c| counts.iter().map(|r| r[c]).sum()).collect();
    let total: f64 = row_sums.iter().sum();
    let mut chi2 = 0.0;
    for (r, row) in counts.iter().enumerate() {
        for (c, observed) in row.iter().enumerate() {
            let expected = row_sums[r] * column_sums[c] / total;
            if expected > 0.0 {
                chi2 += (observed - expected).powi(2) / expected;
            }
        }
    }
    let used = |sums: &[f64]| sums.iter().filter(|s| **s > 0.0).count().saturating_sub(1);
    let df = used(&row_sums) * used(&column_sums);
    if df == 0 || total == 0.0 {
        return "Pearson chi2: not defined for a table with one non-empty row or column.".into();
    }
    let p = ChiSquared::new(df as f64).map(|d| d.sf(chi2)).unwrap_or(f64::NAN);
    format!(
        "Pearson chi2({df}) = {}, p = {} (from the released counts).",
        significant(chi2, 4),
        significant(p, 3)
    )
}

/// rowsort, colsort, top(n) and bottom(n) on the released table: rows (and columns) ordered
/// by their released totals. The Total row and column stay last.
pub(super) fn arrange(
    options: &raw::TableOptions,
    row_labels: &mut Vec<String>,
    column_labels: &mut Vec<String>,
    cells: &mut Vec<Vec<Option<f64>>>,
    two_way: bool,
) {
    let data_rows = cells.len().saturating_sub(1);
    let total_of_row = |row: &Vec<Option<f64>>| row.last().copied().flatten();
    if options.rowsort || options.top.is_some() || options.bottom.is_some() {
        let mut order: Vec<usize> = (0..data_rows).collect();
        let key = |r: &usize| total_of_row(&cells[*r]).unwrap_or(f64::NEG_INFINITY);
        order.sort_by(|a, b| key(b).total_cmp(&key(a)));
        if let Some(n) = options.bottom {
            order.reverse();
            order.truncate(n);
        } else if let Some(n) = options.top {
            order.truncate(n);
        }
        let mut new_cells: Vec<Vec<Option<f64>>> =
            order.iter().map(|&r| cells[r].clone()).collect();
        let mut new_labels: Vec<String> = order.iter().map(|&r| row_labels[r].clone()).collect();
        new_cells.push(cells[data_rows].clone());
        new_labels.push(row_labels[data_rows].clone());
        *cells = new_cells;
        *row_labels = new_labels;
    }
    if options.colsort && two_way {
        let data_columns = column_labels.len().saturating_sub(1);
        let totals = cells.last().cloned().unwrap_or_default();
        let mut order: Vec<usize> = (0..data_columns).collect();
        let key = |c: &usize| totals[*c].unwrap_or(f64::NEG_INFINITY);
        order.sort_by(|a, b| key(b).total_cmp(&key(a)));
        order.push(data_columns);
        for row in cells.iter_mut() {
            *row = order.iter().map(|&c| row[c]).collect();
        }
        *column_labels = order.iter().map(|&c| column_labels[c].clone()).collect();
    }
}

/// Secondary suppression on the table with its margins and total, as one grid: every row and
/// every column of it adds up, so none may hold exactly one withheld entry, or the others would
/// give it back. For a line with one, it withholds one more shown, non-zero entry, preferring
/// (1) one whose crossing line also has exactly one withheld entry, so a single complement
/// mends both; (2) one whose crossing line already has two or more; (3) inner cells before
/// margins; (4) the fewest units. That is τ-Argus's "hypercube" idea on two dimensions, and
/// it stops the cascades of the simplest heuristic. Returns how many entries it withheld.
pub(super) fn secondary_suppression(
    table: &raw::Table,
    inner: &mut [Vec<Released1>],
    row_margins: &mut [Released1],
    column_margins: &mut [Released1],
    total: &mut Released1,
    two_way: bool,
) -> usize {
    let rows = inner.len();
    let columns = inner.first().map_or(0, Vec::len);
    // The grid: inner cells, then the row margins as the last column and the column margins
    // (and total) as the last row. A one-way table is its column and the total.
    let (height, width) = if two_way { (rows + 1, columns + 1) } else { (rows + 1, 1) };
    let mut grid = vec![vec![Released1::Suppressed; width]; height];
    let mut units = vec![vec![0u64; width]; height];
    for r in 0..rows {
        for c in 0..columns.min(width) {
            grid[r][c] = inner[r][c];
            units[r][c] = table.cells[r][c].contributors.units;
        }
        if two_way {
            grid[r][columns] = row_margins[r];
            units[r][columns] = table.row_margins[r].contributors.units;
        }
    }
    if two_way {
        for c in 0..columns {
            grid[rows][c] = column_margins[c];
            units[rows][c] = table.column_margins[c].contributors.units;
        }
    }
    grid[height - 1][width - 1] = *total;
    units[height - 1][width - 1] = table.total.contributors.units;

    let withheld_in_row = |g: &[Vec<Released1>], r: usize| {
        g[r].iter().filter(|e| **e == Released1::Suppressed).count()
    };
    let withheld_in_column = |g: &[Vec<Released1>], c: usize| {
        g.iter().filter(|row| row[c] == Released1::Suppressed).count()
    };
    let mut added = 0;
    loop {
        // A line with exactly one withheld entry: (is_row, index).
        let lonely = (0..height)
            .filter(|_| two_way)
            .map(|r| (true, r))
            .find(|&(_, r)| withheld_in_row(&grid, r) == 1)
            .or_else(|| {
                (0..width).map(|c| (false, c)).find(|&(_, c)| withheld_in_column(&grid, c) == 1)
            });
        let Some((is_row, line)) = lonely else { break };
        let candidates: Vec<(usize, usize)> = if is_row {
            (0..width).map(|c| (line, c)).collect()
        } else {
            (0..height).map(|r| (r, line)).collect()
        };
        let choice = candidates
            .into_iter()
            .filter(|&(r, c)| matches!(grid[r][c], Released1::Shown(v) if v > 0.0))
            .min_by_key(|&(r, c)| {
                let crossing = if is_row {
                    withheld_in_column(&grid, c)
                } else if two_way {
                    withheld_in_row(&grid, r)
                } else {
                    0
                };
                let mends = match crossing {
                    1 => 0,
                    0 => 2,
                    _ => 1,
                };
                let margin = usize::from(r == height - 1 || (two_way && c == width - 1));
                (mends, margin, units[r][c])
            });
        match choice {
            Some((r, c)) => {
                grid[r][c] = Released1::Suppressed;
                added += 1;
            }
            // Nothing left to withhold in this line: every other entry is zero or withheld,
            // so the lone one is already the line's sum and hides nothing more.
            None => break,
        }
    }
    for r in 0..rows {
        for c in 0..columns.min(width) {
            inner[r][c] = grid[r][c];
        }
        if two_way {
            row_margins[r] = grid[r][columns];
        }
    }
    if two_way {
        column_margins[..columns].copy_from_slice(&grid[rows][..columns]);
    }
    *total = grid[height - 1][width - 1];
    added
}
