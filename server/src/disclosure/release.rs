//! The rules applied to each kind of raw aggregate.

use super::memory::Cleared;
use shared::output::{self, OutputBody};

use super::ckm::CellKey;
use super::raw::{self, CellStatistic, Contributors};
use super::{Decision, Gate, Origin, Refusal, Released, Releaser, noise_factor, significant};

/// A cell after the rules: released value, or withheld.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Released1 {
    Shown(f64),
    Suppressed,
}

impl Released1 {
    fn value(self) -> Option<f64> {
        match self {
            Released1::Shown(v) => Some(v),
            Released1::Suppressed => None,
        }
    }
}

/// Rule 9: the most one unit may weigh in a model, as leverage or as its share of a term's
/// sum of squares.
const MAX_INFLUENCE: f64 = 0.9;

/// Keeps the percentiles' noise apart from the other noise of the same cell.
const QUANTILE_NOISE_STREAM: u64 = 0x0C7A_11E5_0C7A_11E5;

/// Keeps the SD's noise apart from the sum's, though both are keyed by the same cell.
const SD_NOISE_STREAM: u64 = 0x5D5D_0F0F_A5A5_3C3C;

/// The key of a magnitude's noise: its contributors and its values.
fn magnitude_key(c: Contributors, m: &raw::Magnitude) -> CellKey {
    CellKey(c.key.0 ^ raw::mix(m.content))
}

impl Gate {
    /// Rule 5 and the small-cell part of rule 6 for one count.
    ///
    /// A cell is small when its true count or its released count is under the threshold, so
    /// a cell of 4 is withheld even when its noise would show it as 5 or 6.
    pub(super) fn released_count(&self, c: Contributors) -> (u64, bool) {
        let n = self.perturb(c);
        let min = self.rules.min_cell;
        (n, c.units > 0 && (c.units < min || n < min))
    }

    /// Rule 7: a noisy mean or sum of a magnitude cell, or `None` when the cell is too small or
    /// dominated.
    fn released_magnitude(&self, c: Contributors, m: &raw::Magnitude) -> Option<(f64, f64)> {
        if m.n < self.rules.min_units_for_statistics
            || c.units < self.rules.min_units_for_statistics
        {
            return None;
        }
        // Copied values: the largest contributor may stand behind `copies` units.
        let copies = self.copies as f64;
        let (largest, second) = (m.largest * copies, m.second * copies);
        let remainder = m.sum.abs() - largest - second;
        if largest > 0.0 && remainder < self.rules.dominance_p / 100.0 * largest {
            return None;
        }
        let noise = largest * self.count_like_noise(c, magnitude_key(c, m));
        let sum = m.sum + noise;
        Some((sum, sum / m.n as f64))
    }

    /// The noise of a magnitude in units of its largest contribution: the cell's count noise
    /// (rule 5, keyed by the contributors) plus up to `magnitude_noise` more, spread evenly
    /// and keyed by the values. The sum of a 0/1 variable is a count, and noise of a tenth of
    /// its largest value rounded away: every N was exact. With the count's own noise in it,
    /// such a sum says no more than the perturbed count. The second part keeps two variables
    /// over the same units from sharing their noise, and it is as large as one unit's whole
    /// contribution (1.5 × the largest): at a tenth, a variable and a copy with one person's
    /// 0/1 value set to 0.5 told that person's value in 20 of 20 trials (the attack suite).
    fn count_like_noise(&self, c: Contributors, content: CellKey) -> f64 {
        let count_change = self.perturb(c) as f64 - c.units as f64;
        count_change + self.rules.magnitude_noise * noise_factor(content)
    }

    /// Rule 7 for dispersion: the SD of a cell whose sum passes, from its sum of squared
    /// deviations with noise of the same kind as the sum's (in units of the largest
    /// contribution squared), its value-keyed part apart from the sum's.
    fn released_sd(&self, c: Contributors, m: &raw::Magnitude) -> Option<f64> {
        self.released_magnitude(c, m)?;
        let sd = m.sd()?;
        let deviations = sd * sd * (m.n - 1) as f64;
        let largest = m.largest * self.copies as f64;
        let key = CellKey(magnitude_key(c, m).0 ^ SD_NOISE_STREAM);
        let noise = largest * largest * self.count_like_noise(c, key);
        Some(((deviations + noise).max(0.0) / (m.n - 1) as f64).sqrt())
    }

    #[cfg(test)]
    pub(super) fn released_magnitude_for_test(
        &self,
        c: Contributors,
        m: &raw::Magnitude,
    ) -> Option<(f64, f64)> {
        self.released_magnitude(c, m)
    }

    #[cfg(test)]
    pub(super) fn released_sd_for_test(&self, c: Contributors, m: &raw::Magnitude) -> Option<f64> {
        self.released_sd(c, m)
    }

    /// Rule 8: a percentile with enough units on each side, released as a point drawn from
    /// the range of the order statistics around its rank (raw::QUANTILE_WINDOW on each side),
    /// then rounded. The exact percentile of a set built around one unit (a few values below
    /// it, a few above) would be that unit's value; the drawn point is no closer to it than to
    /// its ten neighbours. In dense data the range, and so the error, is small. The draw is
    /// keyed by the contributors and the percent, so asking again gains nothing.
    fn released_quantile(&self, q: &raw::Quantile, c: Contributors) -> Option<f64> {
        let need = self.rules.min_units_beside_percentile;
        if q.below < need || q.above < need {
            return None;
        }
        let key = raw::mix(c.key.0 ^ raw::mix(q.percent.to_bits() ^ QUANTILE_NOISE_STREAM));
        let u = (key >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = q.window;
        Some(significant(low + u * (high - low), self.rules.significant_digits))
    }

    fn cell_value(&self, cell: &raw::Cell, statistic: &CellStatistic) -> Released1 {
        let magnitude =
            || cell.magnitude.as_ref().and_then(|m| self.released_magnitude(cell.contributors, m));
        let value = match statistic {
            CellStatistic::Count
            | CellStatistic::RowPercent
            | CellStatistic::ColumnPercent
            | CellStatistic::CellPercent => {
                let (n, small) = self.released_count(cell.contributors);
                (!small).then_some(n as f64)
            }
            CellStatistic::Mean(_) => magnitude().map(|(_, mean)| mean),
            CellStatistic::Sum(_) => magnitude().map(|(sum, _)| sum),
            CellStatistic::Sd(_) => {
                cell.magnitude.as_ref().and_then(|m| self.released_sd(cell.contributors, m))
            }
            CellStatistic::Percentile(_, p) => {
                let enough = cell.contributors.units >= self.rules.min_units_for_statistics;
                cell.quantiles
                    .iter()
                    .find(|q| q.percent == *p)
                    .filter(|_| enough)
                    .and_then(|q| self.released_quantile(q, cell.contributors))
            }
            // As the SD: only where the cell's magnitude passes (size and dominance).
            CellStatistic::Gini(_) => magnitude().and(cell.gini).map(|g| significant(g, 4)),
            // Both quartiles must pass rule 8; the range is their released difference.
            CellStatistic::Iqr(_) => {
                let enough = cell.contributors.units >= self.rules.min_units_for_statistics;
                let quartile = |p: f64| {
                    cell.quantiles
                        .iter()
                        .find(|q| q.percent == p)
                        .filter(|_| enough)
                        .and_then(|q| self.released_quantile(q, cell.contributors))
                };
                quartile(25.0).zip(quartile(75.0)).map(|(lo, hi)| hi - lo)
            }
        };
        value.map_or(Released1::Suppressed, Released1::Shown)
    }
}

/// Every method here that releases data takes the output's rule-11 clearance ([`Cleared`]),
/// which only [`super::memory::clear`] makes and which remembers the output's populations when
/// it ends: no output leaves without rule 11.
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

    fn table_rules(&self, gate: &Gate, origin: Origin<'_>, table: raw::Table) -> Released {
        match released_table(gate, table) {
            Ok((table, decisions)) => self.emit(origin, OutputBody::Table(table), decisions),
            Err(refusal) => self.refusal(origin, refusal),
        }
    }

    /// Tables drawn as bars (`barchart`) or slices (`piechart`): the same rules as the tables,
    /// then each released inner cell becomes a bar; totals are not drawn. One one-way table
    /// gives a bar per row. A two-way table (rows the `over()` groups) gives a bar per cell,
    /// its column the bar's series. Several one-way tables over the same groups (one per
    /// variable) give a bar per group and table. If any table is refused, so is the chart.
    pub fn bar_chart(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        tables: Vec<raw::Table>,
        layout: BarLayout<'_>,
    ) -> Released {
        let started = std::time::Instant::now();
        let several = tables.len() > 1;
        let mut released = Vec::with_capacity(tables.len());
        for table in tables {
            match released_table(gate, table) {
                Ok(t) => released.push(t),
                Err(refusal) => {
                    let refused = self.refusal(origin, refusal);
                    self.account(started.elapsed());
                    return refused;
                }
            }
        }
        let mut bars = Vec::new();
        let mut decisions = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for (t, table_decisions) in &released {
            let rows = t.row_labels.len().saturating_sub(usize::from(t.totals));
            let columns = if t.column_variable.is_some() {
                t.column_labels.len().saturating_sub(usize::from(t.totals))
            } else {
                1
            };
            for r in 0..rows {
                for c in 0..columns {
                    let series = match (&t.column_variable, several) {
                        (Some(_), _) => Some(t.column_labels[c].clone()),
                        (None, true) => Some(t.statistic.clone()),
                        (None, false) => None,
                    };
                    bars.push(output::Bar {
                        label: Some(t.row_labels[r].clone()),
                        series,
                        start: r as f64,
                        end: r as f64 + 1.0,
                        height: t.cells[r].get(c).copied().flatten(),
                    });
                }
            }
            decisions.extend(table_decisions.iter().cloned());
            for note in &t.notes {
                if !notes.contains(note) {
                    notes.push(note.clone());
                }
            }
        }
        let first = &released[0].0;
        let statistic = if several {
            first.statistic.split(" of ").next().unwrap_or_default().to_owned()
        } else {
            first.statistic.clone()
        };
        let title = match &first.column_variable {
            Some(column) => format!("{statistic} of {column} by {}", first.row_variable),
            None => format!("{statistic} by {}", first.row_variable),
        };
        let body = OutputBody::Chart(output::Chart {
            chart: layout.chart.to_owned(),
            title: format!(
                "{title}{}",
                layout.group.map(|g| format!(" ({g})")).unwrap_or_default()
            ),
            x_label: first.row_variable.clone(),
            y_label: statistic,
            bars,
            hexes: None,
            boxes: None,
            estimates: None,
            flows: None,
            normal: None,
            stacked: layout.stacked,
            horizontal: layout.horizontal,
            notes,
        });
        let emitted = self.emit(origin, body, decisions);
        self.account(started.elapsed());
        emitted
    }
}

/// The upper bounds of `k` classes of equal width over the cells' released counts.
fn count_classes(cells: &[output::Hex], k: usize) -> Vec<f64> {
    let lo = cells.iter().map(|c| c.count).fold(f64::INFINITY, f64::min);
    let hi = cells.iter().map(|c| c.count).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || k == 0 {
        return Vec::new();
    }
    (1..=k).map(|i| lo + (hi - lo) * i as f64 / k as f64).collect()
}

/// How `bar_chart` draws its bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct BarLayout<'a> {
    /// `barchart` or `piechart`.
    pub chart: &'a str,
    /// The `by()` group this chart is for.
    pub group: Option<&'a str>,
    pub stacked: bool,
    pub horizontal: bool,
}

impl Releaser<'_> {
    /// A sankey diagram: each pair of consecutive variables is a two-way table under the table
    /// rules (perturbed counts, small cells withheld with secondary suppression), and each
    /// released inner cell above zero becomes a flow. A withheld cell is no flow at all.
    pub fn sankey(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        tables: Vec<raw::Table>,
    ) -> Released {
        let started = std::time::Instant::now();
        let mut flows = Vec::new();
        let mut decisions = Vec::new();
        let mut withheld = 0;
        let mut notes = Vec::new();
        let variables: Vec<String> = tables
            .iter()
            .map(|t| t.row_variable.clone())
            .chain(tables.last().and_then(|t| t.column_variable.clone()))
            .collect();
        for table in tables {
            let (from_variable, to_variable) =
                (table.row_variable.clone(), table.column_variable.clone().unwrap_or_default());
            let (released, mut table_decisions) = match released_table(gate, table) {
                Ok(r) => r,
                Err(refusal) => {
                    self.account(started.elapsed());
                    return self.refusal(origin, refusal);
                }
            };
            decisions.append(&mut table_decisions);
            notes = released.notes.clone();
            // The last row and column are the margins.
            let rows = released.row_labels.len().saturating_sub(1);
            let columns = released.column_labels.len().saturating_sub(1);
            for r in 0..rows {
                for c in 0..columns {
                    match released.cells[r][c] {
                        Some(count) if count > 0.0 => flows.push(output::Flow {
                            from_variable: from_variable.clone(),
                            from: released.row_labels[r].clone(),
                            to_variable: to_variable.clone(),
                            to: released.column_labels[c].clone(),
                            count,
                        }),
                        Some(_) => {}
                        None => withheld += 1,
                    }
                }
            }
        }
        if withheld > 0 {
            notes.push(format!("{withheld} flows withheld as small cells."));
        }
        let body = OutputBody::Chart(output::Chart {
            chart: "sankey".into(),
            title: format!("Flows between {}", variables.join(", ")),
            x_label: variables.join(" → "),
            y_label: "count".into(),
            bars: Vec::new(),
            hexes: None,
            boxes: None,
            estimates: None,
            flows: Some(flows),
            normal: None,
            stacked: false,
            horizontal: false,
            notes,
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

/// An analysis-of-variance table with its residual and total df taken from the released N
/// (`n − k` and `n − 1`), and the mean squares, F and p that follow from them: the exact df
/// would give back the exact N.
fn restate_anova(values: &mut [Vec<Option<f64>>], n: f64, k: f64, constant: bool) {
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
pub(super) fn other_levels_label(min_cell: u64) -> String {
    format!("other levels (each under {min_cell} units)")
}

/// Rule 6 for labels: a level with fewer than `min_cell` units in the table is never named.
/// Such rows (and columns) are merged into one row labelled as other levels, their cells
/// added as disjoint cells are; empty levels are left out. Without this a derived variable
/// could carry any unit's value as a level, and the suppressed cell would still show the
/// value in its label. Returns how many levels were merged.
fn merge_small_levels(gate: &Gate, table: &mut raw::Table) -> usize {
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
fn merged_cell(a: raw::Cell, b: raw::Cell) -> raw::Cell {
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
fn released_table(
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

impl Releaser<'_> {
    pub fn summary(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        variables: Vec<raw::VariableSummary>,
    ) -> Released {
        let started = std::time::Instant::now();
        let released = self.summary_rules(gate, origin, variables);
        self.account(started.elapsed());
        released
    }

    fn summary_rules(
        &self,
        gate: &Gate,
        origin: Origin<'_>,
        variables: Vec<raw::VariableSummary>,
    ) -> Released {
        let rules = gate.rules();
        let mut rows = Vec::new();
        let mut withheld = 0;
        for v in variables {
            let (n, small) = gate.released_count(v.contributors);
            let magnitude = gate.released_magnitude(v.contributors, &v.magnitude);
            let enough = v.magnitude.n >= rules.min_units_for_statistics;
            let sd = gate.released_sd(v.contributors, &v.magnitude).filter(|_| enough);
            let percentiles: Vec<(String, Option<f64>)> = v
                .quantiles
                .iter()
                .map(|q| {
                    let shown =
                        if enough { gate.released_quantile(q, v.contributors) } else { None };
                    (format!("P{}", q.percent), shown)
                })
                .collect();
            withheld += percentiles.iter().filter(|(_, v)| v.is_none()).count();
            let mut extra = Vec::new();
            if let Some(gini) = v.gini {
                let shown = magnitude.is_some() && enough;
                extra.push((
                    "gini".to_owned(),
                    shown.then(|| significant(gini, rules.significant_digits)),
                ));
            }
            if v.iqr {
                let find = |label: &str| {
                    percentiles.iter().find(|(p, _)| p == label).and_then(|(_, v)| *v)
                };
                let iqr = find("P75").zip(find("P25")).map(|(hi, lo)| hi - lo);
                extra.push(("iqr".to_owned(), iqr));
            }
            rows.push(output::SummaryRow {
                variable: v.variable,
                n: (!small).then_some(n as f64),
                mean: magnitude.map(|(_, mean)| mean),
                sd,
                percentiles,
                extra,
            });
        }
        let notes = vec![format!(
            "N is perturbed; values are coded to P{}–P{} before the mean and SD, which carry noise; percentiles need {} units on each side and show {} significant digits. No minimum or maximum is shown.",
            rules.coding_percentiles.0,
            rules.coding_percentiles.1,
            rules.min_units_beside_percentile,
            rules.significant_digits
        )];
        let decisions = vec![
            Decision { rule: 5, outcome: "N perturbed".into() },
            Decision { rule: 7, outcome: "coded, noised".into() },
            Decision { rule: 8, outcome: format!("{withheld} percentiles withheld") },
        ];
        self.emit(origin, OutputBody::Summary(output::Summary { rows, notes }), decisions)
    }

    pub fn model(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        model: raw::Model,
    ) -> Released {
        let started = std::time::Instant::now();
        let released = self.model_rules(gate, origin, model);
        self.account(started.elapsed());
        released
    }

    fn model_rules(&self, gate: &Gate, origin: Origin<'_>, model: raw::Model) -> Released {
        let rules = gate.rules();
        let n = model.contributors.units;
        let refuse = |message: String| self.refusal(origin, Refusal::new(9, message));
        if n < rules.min_model_n {
            return refuse(format!(
                "models need at least {} units in the estimation sample (rule 9): use a wider population",
                rules.min_model_n
            ));
        }
        if model.parameters as u64 * 3 > n {
            return refuse(
                "the model has more parameters than a third of its units (rule 9): use fewer terms or group the categories".into(),
            );
        }
        if model.residual_df < rules.min_residual_df as f64 {
            return refuse(format!(
                "the model leaves fewer than {} residual degrees of freedom (rule 9): use fewer terms",
                rules.min_residual_df
            ));
        }
        for (variable, levels) in &model.categorical_levels {
            if let Err(refusal) = gate.check_levels(variable, levels, false) {
                return self.refusal(origin, refusal);
            }
        }
        if let Some(levels) = &model.outcome_levels
            && let Err(refusal) = gate.check_levels(&model.dependent, levels, true)
        {
            return self.refusal(origin, refusal);
        }
        // After the level rules, whose message names the level to group.
        if model.influence >= MAX_INFLUENCE {
            return refuse(
                "one unit weighs so much in this model (leverage or share of a term's values near 1) that its coefficients would give that unit's values (rule 9): remove or transform the term that sets it apart".into(),
            );
        }
        let hide_constant = model.smallest_crossing.is_some_and(|u| u < rules.min_level_units);
        let mut decisions = vec![Decision { rule: 9, outcome: "passed".into() }];
        let mut notes = vec!["No residuals, leverage or fitted values are shown.".to_owned()];
        if hide_constant {
            decisions.push(Decision { rule: 9, outcome: "constant hidden".into() });
            notes.push(format!(
                "The constant is hidden: a crossing of the categorical terms has fewer than {} units.",
                rules.min_level_units
            ));
        }
        let constant = model.coefficients.iter().any(|c| c.is_constant);
        let n = gate.perturb(model.contributors) as f64;
        let absorbed = model.absorbed.map_or(0.0, |units| gate.perturb(units) as f64);
        let released_df = (n - absorbed - model.parameters as f64).max(1.0);
        // t tests on the released residual df (see raw::Model::t_test).
        let t_test = model.t_test.and_then(|(_, level)| {
            use statrs::distribution::{ContinuousCDF, StudentsT};
            let t = StudentsT::new(0.0, 1.0, released_df).ok()?;
            Some((t.inverse_cdf(1.0 - (1.0 - level / 100.0) / 2.0), t))
        });
        let coefficients = model
            .coefficients
            .into_iter()
            .filter(|c| !(hide_constant && c.is_constant))
            .map(|c| {
                let (p_value, ci_low, ci_high) = match &t_test {
                    Some((critical, t)) => {
                        use statrs::distribution::ContinuousCDF;
                        (
                            2.0 * t.sf(c.statistic.abs()),
                            c.estimate - critical * c.std_error,
                            c.estimate + critical * c.std_error,
                        )
                    }
                    None => (c.p_value, c.ci_low, c.ci_high),
                };
                output::Coefficient {
                    term: c.term,
                    estimate: c.estimate,
                    std_error: c.std_error,
                    statistic: c.statistic,
                    p_value,
                    ci_low,
                    ci_high,
                }
            })
            .collect();
        let mut statistics = vec![("N".to_owned(), n)];
        statistics.extend(with_released_n(
            model.statistics,
            n,
            released_df,
            model.residual_df,
            constant,
        ));
        decisions.push(Decision { rule: 5, outcome: "N perturbed".into() });
        let body = OutputBody::Model(output::Model {
            title: model.title,
            dependent: model.dependent,
            estimate_label: model.estimate_label.into(),
            test_label: model.test_label.into(),
            coefficients,
            statistics,
            notes,
        });
        self.emit(origin, body, decisions)
    }

    pub fn histogram(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        histogram: raw::Histogram,
    ) -> Released {
        let rules = gate.rules();
        let mut withheld = 0;
        // Shares are of the released N (all bins' units, perturbed as a count of its own), so
        // a withheld bin's count cannot be read off the others.
        let total = histogram.bins.iter().fold(Contributors::default(), |t, b| t.merged(b.2));
        let released_total = (gate.perturb(total) as f64).max(1.0);
        let scale = |n: f64, width: f64| match histogram.scale {
            raw::HistogramScale::Count => n,
            raw::HistogramScale::Percent => 100.0 * n / released_total,
            raw::HistogramScale::Fraction => n / released_total,
            raw::HistogramScale::Density => n / released_total / width,
        };
        // As in tables: where a bin is withheld, an empty bin is too, or "0" beside
        // "withheld" would say which bin holds the few units.
        let any_small = histogram.bins.iter().any(|&(_, _, c)| gate.released_count(c).1);
        let bars: Vec<output::Bar> = histogram
            .bins
            .iter()
            .map(|&(start, end, c)| {
                let (n, small) = gate.released_count(c);
                let small = small || (any_small && c.units == 0);
                withheld += usize::from(small);
                output::Bar {
                    label: None,
                    series: None,
                    start,
                    end,
                    height: (!small).then_some(scale(n as f64, end - start)),
                }
            })
            .collect();
        let decisions = vec![
            Decision { rule: 5, outcome: "counts perturbed".into() },
            Decision { rule: 10, outcome: format!("{withheld} bins withheld") },
        ];
        let y_label = match histogram.scale {
            raw::HistogramScale::Count => "count",
            raw::HistogramScale::Percent => "percent",
            raw::HistogramScale::Fraction => "fraction",
            raw::HistogramScale::Density => "density",
        };
        // The normal curve of the released bars: their midpoints weighted by their heights,
        // so it shows nothing the bars do not.
        let normal = histogram.normal.then(|| {
            let shown: Vec<(f64, f64)> =
                bars.iter().filter_map(|b| Some(((b.start + b.end) / 2.0, b.height?))).collect();
            let weight: f64 = shown.iter().map(|(_, h)| h).sum();
            let mean = shown.iter().map(|(m, h)| m * h).sum::<f64>() / weight;
            let variance = shown.iter().map(|(m, h)| h * (m - mean).powi(2)).sum::<f64>() / weight;
            output::NormalCurve { mean: significant(mean, 4), sd: significant(variance.sqrt(), 4) }
        });
        let group = histogram.group.map(|g| format!(" ({g})")).unwrap_or_default();
        let body = OutputBody::Chart(output::Chart {
            chart: "histogram".into(),
            title: format!("Histogram of {}{group}", histogram.variable),
            x_label: histogram.variable,
            y_label: y_label.into(),
            bars,
            hexes: None,
            boxes: None,
            estimates: None,
            flows: None,
            normal,
            stacked: false,
            horizontal: false,
            notes: vec![format!(
                "Values coded to P{}–P{}; counts perturbed; bins under {} withheld.",
                rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_cell
            )],
        });
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    /// Rule 10 for a hexbin: counts perturbed, and cells under the threshold left out
    /// altogether, so the chart does not even say that a few units sit there.
    /// `classes` (`groups(k)`): the released counts are also put in k classes of equal width
    /// between the smallest and the largest, the colour bands of the chart's legend.
    pub fn hexbin(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        hexbin: raw::Hexbin,
        classes: Option<usize>,
    ) -> Released {
        let started = std::time::Instant::now();
        let rules = gate.rules();
        let mut withheld = 0;
        let cells: Vec<output::Hex> = hexbin
            .cells
            .iter()
            .filter_map(|&(x, y, c)| {
                let (n, small) = gate.released_count(c);
                withheld += usize::from(small);
                (!small && n > 0).then_some(output::Hex { x, y, count: n as f64 })
            })
            .collect();
        let decisions = vec![
            Decision { rule: 5, outcome: "counts perturbed".into() },
            Decision { rule: 10, outcome: format!("{withheld} cells withheld") },
        ];
        let body = OutputBody::Chart(output::Chart {
            chart: "hexbin".into(),
            title: format!("Hexbin of {} by {}", hexbin.y_variable, hexbin.x_variable),
            x_label: hexbin.x_variable,
            y_label: hexbin.y_variable,
            bars: Vec::new(),
            hexes: Some(output::HexGrid {
                width: hexbin.width,
                height: hexbin.height,
                classes: classes.map(|k| count_classes(&cells, k)),
                cells,
            }),
            boxes: None,
            estimates: None,
            flows: None,
            normal: None,
            stacked: false,
            horizontal: false,
            notes: vec![format!(
                "Values coded to P{}–P{}; counts perturbed; cells under {} units are not drawn.",
                rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_cell
            )],
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

/// Fit statistics that would give the exact N back (residual df directly; adjusted R², F and
/// root MSE next to R² and a summary's SD) are restated with the released N, as a table's N
/// is.
fn with_released_n(
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
fn pearson_chi2(inner: &[Vec<Released1>]) -> String {
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
fn arrange(
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
fn secondary_suppression(
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

impl Releaser<'_> {
    /// Rule 8 for a box plot: each percentile needs units on each side, each group enough
    /// units for statistics; whiskers end at P5 and P95 and there are no outlier points.
    pub fn boxplot(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        plot: raw::BoxPlot,
        horizontal: bool,
    ) -> Released {
        let started = std::time::Instant::now();
        let rules = gate.rules();
        let mut withheld = 0;
        let boxes: Vec<output::BoxSummary> = plot
            .groups
            .iter()
            .map(|(label, contributors, quantiles)| {
                let enough = contributors.units >= rules.min_units_for_statistics;
                let mut shown = quantiles.iter().map(|q| {
                    let v = if enough { gate.released_quantile(q, *contributors) } else { None };
                    withheld += usize::from(v.is_none());
                    v
                });
                let mut next = || shown.next().flatten();
                output::BoxSummary {
                    label: label.clone(),
                    p5: next(),
                    p25: next(),
                    p50: next(),
                    p75: next(),
                    p95: next(),
                }
            })
            .collect();
        let decisions =
            vec![Decision { rule: 8, outcome: format!("{withheld} percentiles withheld") }];
        let title = match &plot.over {
            Some(over) => format!("Box plot of {} over {over}", plot.variable),
            None => format!("Box plot of {}", plot.variable),
        };
        let body = OutputBody::Chart(output::Chart {
            chart: "boxplot".into(),
            title,
            x_label: plot.over.unwrap_or_default(),
            y_label: plot.variable,
            bars: Vec::new(),
            hexes: None,
            boxes: Some(boxes),
            estimates: None,
            flows: None,
            normal: None,
            stacked: false,
            horizontal,
            notes: vec![format!(
                "Boxes are P25–P75 with the median; whiskers end at P5 and P95, and no single unit is drawn. Each percentile needs {} units on each side and shows {} significant digits.",
                rules.min_units_beside_percentile, rules.significant_digits
            )],
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    /// Rule 3 (and 9 for levels) on statistics of a whole sample; values are shown to four
    /// significant digits, and N is perturbed like any count.
    pub fn statistics(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        table: raw::StatisticsTable,
    ) -> Released {
        if let Err(refusal) = gate.check_statistics_population(table.contributors.units) {
            return self.refusal(origin, refusal);
        }
        for (variable, levels) in &table.levels {
            if let Err(refusal) = gate.check_levels(variable, levels, false) {
                return self.refusal(origin, refusal);
            }
        }
        let (n, _) = gate.released_count(table.contributors);
        let mut table = table;
        match std::mem::take(&mut table.restate) {
            raw::Restate::Nothing => {}
            raw::Restate::Anova { parameters, constant } => {
                restate_anova(&mut table.values, n as f64, parameters as f64, constant);
            }
            raw::Restate::PairwiseMeans { groups, residual_ss } => {
                let counts: Vec<f64> =
                    groups.iter().map(|(c, _)| gate.released_count(*c).0 as f64).collect();
                let means: Vec<f64> = groups.iter().map(|(_, m)| *m).collect();
                let rows =
                    crate::stats::pairwise_bonferroni(&means, &counts, residual_ss, n as f64);
                for (row, values) in table.values.iter_mut().zip(rows) {
                    *row = values.into_iter().map(Some).collect();
                }
            }
            raw::Restate::Normality => {
                for row in &mut table.values {
                    let (Some(skew), Some(kurt)) = (row[0], row[1]) else { continue };
                    let (z_skew, z_kurt, k2, p) =
                        crate::stats::dagostino_pearson(skew, kurt, n as f64);
                    row[2..6].copy_from_slice(&[Some(z_skew), Some(z_kurt), Some(k2), Some(p)]);
                }
            }
            raw::Restate::Pairs(pairs) => {
                use statrs::distribution::{ContinuousCDF, StudentsT};
                for pair in pairs {
                    let (units, small) = gate.released_count(pair.units);
                    if small || pair.units.units < gate.rules().min_units_for_statistics {
                        for (row, column) in
                            [Some(pair.value), pair.p, pair.n].into_iter().flatten()
                        {
                            table.values[row][column] = None;
                        }
                        continue;
                    }
                    if let Some((row, column)) = pair.n {
                        table.values[row][column] = Some(units as f64);
                    }
                    if let Some((row, column)) = pair.p {
                        let df = (units as f64 - 2.0).max(1.0);
                        let statistic = pair.r * (df / (1.0 - pair.r * pair.r)).sqrt();
                        table.values[row][column] =
                            StudentsT::new(0.0, 1.0, df).ok().map(|t| 2.0 * t.sf(statistic.abs()));
                    }
                }
            }
        }
        let cells = table
            .values
            .iter()
            .map(|row| row.iter().map(|v| v.map(|x| significant(x, 4))).collect())
            .collect();
        let mut notes = vec![format!("N = {n} (perturbed); values to 4 significant digits.")];
        notes.extend(table.notes);
        let body = OutputBody::Table(output::Table {
            title: table.title,
            statistic: String::new(),
            row_variable: table.row_variable,
            column_variable: None,
            row_labels: table.row_labels,
            column_labels: table.column_labels,
            cells,
            totals: false,
            notes,
        });
        let decisions = vec![Decision { rule: 3, outcome: "passed".into() }];
        self.emit(origin, body, decisions)
    }

    /// `ci`: the released (noisy, coded) mean of each variable with its standard error and
    /// interval; a variable whose mean the rules withhold gets no interval either.
    pub fn mean_intervals(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        intervals: raw::MeanIntervals,
    ) -> Released {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let rules = gate.rules();
        let mut row_labels = Vec::new();
        let mut cells = Vec::new();
        for v in &intervals.summaries {
            let (n, small) = gate.released_count(v.contributors);
            let mean = gate.released_magnitude(v.contributors, &v.magnitude).map(|(_, m)| m);
            let sd = gate.released_sd(v.contributors, &v.magnitude);
            // The released N, not the true one: SD (shown by summarize) over this standard
            // error would otherwise give the exact count back.
            let interval = mean.zip(sd).filter(|_| !small).and_then(|(mean, sd)| {
                let released_n = (n as f64).max(2.0);
                let se = sd / released_n.sqrt();
                let t = StudentsT::new(0.0, 1.0, released_n - 1.0).ok()?;
                let critical = t.inverse_cdf(1.0 - (1.0 - intervals.level / 100.0) / 2.0);
                Some((mean, se, mean - critical * se, mean + critical * se))
            });
            row_labels.push(v.variable.clone());
            cells.push(match interval {
                Some((mean, se, lo, hi)) => {
                    vec![Some(n as f64), Some(mean), Some(significant(se, 4)), Some(lo), Some(hi)]
                }
                None => vec![(!small).then_some(n as f64), None, None, None, None],
            });
        }
        let body = OutputBody::Table(output::Table {
            title: format!("{} % confidence intervals for the mean", intervals.level),
            statistic: String::new(),
            row_variable: "variable".into(),
            column_variable: None,
            row_labels,
            column_labels: ["N", "mean", "std err", "ci low", "ci high"].map(String::from).to_vec(),
            cells,
            totals: false,
            notes: vec![format!(
                "N is perturbed; values are coded to P{}–P{} and the mean carries noise; a mean with fewer than {} units or a dominant unit is withheld.",
                rules.coding_percentiles.0,
                rules.coding_percentiles.1,
                rules.min_units_for_statistics
            )],
        });
        self.emit(
            origin,
            body,
            vec![Decision { rule: 7, outcome: "magnitudes coded, noised".into() }],
        )
    }
}

impl Releaser<'_> {
    /// coefplot: the estimates and intervals of the model released just before, drawn. It adds
    /// nothing the model did not show, and a refused model draws nothing. The constant is left
    /// out, as it is on another scale.
    pub fn coefplot(&self, origin: Origin<'_>, model: &Released) -> Option<Released> {
        let OutputBody::Model(m) = &model.output().body else { return None };
        let estimates: Vec<output::Estimate> = m
            .coefficients
            .iter()
            .filter(|c| c.term != "constant")
            .map(|c| output::Estimate {
                term: c.term.clone(),
                estimate: c.estimate,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
            })
            .collect();
        let body = OutputBody::Chart(output::Chart {
            chart: "coefplot".into(),
            title: format!("Coefficients: {}", m.title),
            x_label: "term".into(),
            y_label: m.estimate_label.clone(),
            bars: Vec::new(),
            hexes: None,
            boxes: None,
            estimates: Some(estimates),
            flows: None,
            normal: None,
            stacked: false,
            horizontal: false,
            notes: vec!["Estimates and intervals as the model above released them.".into()],
        });
        let decisions = vec![Decision { rule: 9, outcome: "drawn from the released model".into() }];
        Some(self.emit(origin, body, decisions))
    }
}
