//! summarize, tabulate and histogram: raw aggregates for the gate.
//!
//! The functions `summarize_raw`, `tabulate_raw` and `histogram_raw` are what the reference
//! tests compare with pandas; the commands hand their results to the releaser.

use crate::disclosure::memory::Rule11Check;
use std::collections::HashMap;

use datafusion::arrow::array::{Array, BooleanArray};

use super::dataset::{Dataset, Kind, Variable, levels, numbers};
use super::{EngineError, Step, expr};
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::raw::{self, CellStatistic, Contributors, Magnitude, Quantile};
use crate::disclosure::{BarLayout, Gate, Released};
use crate::stats;
use shared::script::TokenKind;

/// The percentiles `summarize` reports (rule 2).
pub const SUMMARY_PERCENTS: [f64; 7] = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0];

/// `values` with the sample's rows that fail `valid` made missing, so they leave the sample;
/// `None` when so many fail that the command should stop with an error instead (rule 13,
/// decided on the failing rows' perturbed count, never on whether one row fails).
pub(in crate::engine) fn screened(
    gate: &Gate,
    keys: &[u64],
    mut values: Vec<Option<f64>>,
    mask: Option<&BooleanArray>,
    valid: impl Fn(f64) -> bool,
) -> Option<Vec<Option<f64>>> {
    let mut failing = Contributors::default();
    for (i, value) in values.iter_mut().enumerate() {
        let in_sample = mask.is_none_or(|m| m.is_valid(i) && m.value(i));
        if let Some(v) = *value
            && !valid(v)
        {
            if in_sample {
                failing.add(keys[i]);
            }
            *value = None;
        }
    }
    (!gate.counts_as_many(failing)).then_some(values)
}

/// The rule-7 coding of a column: its values clamped to P1/P99 of the whole dataset.
pub(in crate::engine) fn coded(gate: &Gate, values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    match gate.coding_bounds(&mut present) {
        Some((lo, hi)) => values.iter().map(|v| v.map(|x| x.clamp(lo, hi))).collect(),
        None => values.to_vec(),
    }
}

fn quantiles(sorted: &[f64], percents: &[f64]) -> Vec<Quantile> {
    percents
        .iter()
        .filter_map(|&p| {
            let value = stats::quantile_sorted(sorted, p / 100.0)?;
            let (below, above) = stats::units_beside(sorted, value);
            // The window stops short of the smallest and the largest value: a draw near the
            // end of a tail would be near an extreme (rule 2).
            let (w, last) = (raw::QUANTILE_WINDOW, sorted.len() - 1);
            let rank = last as f64 * p / 100.0;
            let low = (rank.floor() as usize).saturating_sub(w).max(1.min(last));
            let high = (rank.ceil() as usize + w).min(last.saturating_sub(1)).max(low);
            let window = (sorted[low], sorted[high]);
            Some(Quantile { percent: p, value, below, above, window })
        })
        .collect()
}

/// `summarize` before disclosure: N, coded moments and percentiles of each variable, over the
/// rows in `mask`.
pub fn summarize_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    names: &[String],
    mask: Option<&BooleanArray>,
    gini: bool,
    iqr: bool,
) -> Result<Vec<raw::VariableSummary>, EngineError> {
    let mut out = Vec::new();
    for name in names {
        let variable = dataset
            .variable(name)
            .ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
        let values = numbers(variable)?;
        let coded = coded(gate, &values);
        let mut contributors = Contributors::default();
        let mut population = PopulationSketch::default();
        let mut magnitude = Magnitude::default();
        let mut raw_values = Vec::new();
        for i in 0..values.len() {
            if mask.is_some_and(|m| !m.value(i)) {
                continue;
            }
            let (Some(v), Some(c)) = (values[i], coded[i]) else { continue };
            contributors.add(keys[i]);
            dataset.add_to_population(&mut population, i);
            magnitude.add(c);
            raw_values.push(v);
        }
        let sorted = stats::sorted(raw_values);
        let gini = if gini {
            // Coding is monotone, so the coded values are the sorted ones clamped.
            let bounds =
                gate.coding_bounds(&mut values.iter().flatten().copied().collect::<Vec<_>>());
            let coded_sorted: Vec<f64> = match bounds {
                Some((lo, hi)) => sorted.iter().map(|v| v.clamp(lo, hi)).collect(),
                None => sorted.clone(),
            };
            stats::gini_sorted(&coded_sorted)
        } else {
            None
        };
        out.push(raw::VariableSummary {
            variable: name.clone(),
            contributors,
            magnitude,
            quantiles: quantiles(&sorted, &SUMMARY_PERCENTS),
            gini,
            iqr,
            population,
        });
    }
    Ok(out)
}

/// One table behind a bar chart: (row, column, statistic, magnitude variable).
type BarTable = (String, Option<String>, CellStatistic, Option<String>);

pub struct TableRequest<'a> {
    pub options: raw::TableOptions,
    pub row: &'a str,
    pub column: Option<&'a str>,
    pub statistic: CellStatistic,
    /// The variable behind a magnitude statistic.
    pub of: Option<&'a str>,
    pub missing: bool,
    pub labels: bool,
}

/// `tabulate` before disclosure.
/// `flatten`: one variable whose levels are the combinations of the given variables' levels,
/// labelled "a × b × c", so a table of many variables is one long one-way table under the
/// same rules. A row missing any of them is missing.
fn flattened(
    dataset: &Dataset,
    names: &[String],
    missing: bool,
    labels: bool,
) -> Result<Variable, EngineError> {
    let mut parts = Vec::with_capacity(names.len());
    let mut copies = 1;
    for name in names {
        let v = dataset
            .variable(name)
            .ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
        copies = copies.max(v.info.copies());
        parts.push(levels(v, missing, labels)?);
    }
    let values: datafusion::arrow::array::StringArray = (0..dataset.len())
        .map(|i| {
            let text: Option<Vec<&str>> =
                parts.iter().map(|(rows, labels)| Some(labels[rows[i]?].as_str())).collect();
            text.map(|t| t.join(" × "))
        })
        .collect();
    Ok(Variable {
        name: names.join(" × "),
        values: std::sync::Arc::new(values),
        info: super::dataset::VarInfo {
            labels: None,
            pointer: false,
            source: format!("flatten of {}", names.join(", ")),
            copies,
        },
    })
}

pub fn tabulate_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &TableRequest<'_>,
    mask: Option<&BooleanArray>,
) -> Result<raw::Table, EngineError> {
    let row_var = dataset
        .variable(request.row)
        .ok_or_else(|| EngineError::new(format!("no variable {}", request.row)))?;
    let (row_levels, row_labels) = levels(row_var, request.missing, request.labels)?;
    let (col_levels, column_labels) = match request.column {
        Some(c) => {
            let v =
                dataset.variable(c).ok_or_else(|| EngineError::new(format!("no variable {c}")))?;
            let (l, labels) = levels(v, request.missing, request.labels)?;
            (Some(l), labels)
        }
        None => (None, Vec::new()),
    };
    let magnitude_values = match request.of {
        Some(name) => {
            let v = dataset
                .variable(name)
                .ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
            let values = numbers(v)?;
            Some((coded(gate, &values), values))
        }
        None => None,
    };
    let columns = column_labels.len().max(1);
    let rows = row_labels.len();
    let new_cell = || raw::Cell {
        magnitude: magnitude_values.as_ref().map(|_| Magnitude::default()),
        ..raw::Cell::default()
    };
    let mut cells = vec![vec![new_cell(); columns]; rows];
    let mut population = PopulationSketch::default();
    let mut row_margins = vec![new_cell(); if col_levels.is_some() { rows } else { 0 }];
    let mut column_margins = vec![new_cell(); if col_levels.is_some() { columns } else { 0 }];
    let mut total = new_cell();
    // Raw values per cell, for percentile statistics only.
    let wants_quantile = matches!(
        request.statistic,
        CellStatistic::Percentile(..) | CellStatistic::Iqr(..) | CellStatistic::Gini(..)
    );
    // The Gini coefficient is of the coded values; percentiles are of the values themselves.
    let gini = matches!(request.statistic, CellStatistic::Gini(..));
    let mut cell_values: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    let mut margin_values: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    const ROW_MARGIN: usize = usize::MAX;

    for i in 0..dataset.len() {
        if mask.is_some_and(|m| !m.value(i)) {
            continue;
        }
        let Some(r) = row_levels[i] else { continue };
        let c = match &col_levels {
            Some(l) => match l[i] {
                Some(c) => c,
                None => continue,
            },
            None => 0,
        };
        let value = match &magnitude_values {
            Some((coded, raw_values)) => match (coded[i], raw_values[i]) {
                (Some(c), Some(v)) => Some((c, v)),
                _ => continue,
            },
            None => None,
        };
        let key = keys[i];
        let add = |cell: &mut raw::Cell| {
            cell.contributors.add(key);
            if let (Some(m), Some((c, _))) = (cell.magnitude.as_mut(), value) {
                m.add(c);
            }
        };
        add(&mut cells[r][c]);
        add(&mut total);
        dataset.add_to_population(&mut population, i);
        if col_levels.is_some() {
            add(&mut row_margins[r]);
            add(&mut column_margins[c]);
        }
        if let (true, Some((coded_value, raw_value))) = (wants_quantile, value) {
            let v = if gini { coded_value } else { raw_value };
            cell_values.entry((r, c)).or_default().push(v);
            margin_values.entry((ROW_MARGIN, ROW_MARGIN)).or_default().push(v);
            if col_levels.is_some() {
                margin_values.entry((r, ROW_MARGIN)).or_default().push(v);
                margin_values.entry((ROW_MARGIN, c)).or_default().push(v);
            }
        }
    }
    if wants_quantile {
        let percents: Vec<f64> = match request.statistic {
            CellStatistic::Percentile(_, p) => vec![p],
            CellStatistic::Iqr(_) => vec![25.0, 75.0],
            _ => Vec::new(),
        };
        let fill = |cell: &mut raw::Cell, values: Option<Vec<f64>>| {
            let sorted = stats::sorted(values.unwrap_or_default());
            if gini {
                cell.gini = stats::gini_sorted(&sorted);
            } else {
                cell.quantiles = quantiles(&sorted, &percents);
            }
        };
        for (r, row) in cells.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                fill(cell, cell_values.remove(&(r, c)));
            }
        }
        for (r, cell) in row_margins.iter_mut().enumerate() {
            fill(cell, margin_values.remove(&(r, ROW_MARGIN)));
        }
        for (c, cell) in column_margins.iter_mut().enumerate() {
            fill(cell, margin_values.remove(&(ROW_MARGIN, c)));
        }
        fill(&mut total, margin_values.remove(&(ROW_MARGIN, ROW_MARGIN)));
    }
    Ok(raw::Table {
        population,
        row_variable: request.row.to_owned(),
        column_variable: request.column.map(str::to_owned),
        row_labels,
        column_labels,
        cells,
        row_margins,
        column_margins,
        total,
        statistic: request.statistic.clone(),
        options: request.options.clone(),
    })
}

/// The axis of a chart: the coding bounds of the whole column (P1, P99), widened to round
/// numbers. Never the extremes of the selection, which would show a small group's minimum and
/// maximum (rule 2) at the ends of the axis.
pub(in crate::engine) fn axis_range(gate: &Gate, values: &[Option<f64>]) -> (f64, f64) {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    let Some((lo, hi)) = gate.coding_bounds(&mut present) else { return (0.0, 1.0) };
    if hi <= lo {
        return (lo, lo + 1.0);
    }
    let step = 10f64.powf((hi - lo).log10().floor() - 1.0);
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

/// `histogram` before disclosure: equal-width bins over the coded range.
/// How a histogram cuts its axis: `count` equal bins, or bins of `width`, or (`discrete`) a
/// bin per whole number.
#[derive(Clone, Copy, Debug)]
pub struct Bins {
    pub count: usize,
    pub width: Option<f64>,
    pub discrete: bool,
}

pub fn histogram_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    name: &str,
    bins: Bins,
    mask: Option<&BooleanArray>,
) -> Result<raw::Histogram, EngineError> {
    let Bins { count: bins, width, discrete } = bins;
    let variable =
        dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
    let raw_values = numbers(variable)?;
    let values = coded(gate, &raw_values);
    let selected: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.is_none_or(|m| m.value(*i)))
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let (mut lo, hi) = axis_range(gate, &raw_values);
    if selected.is_empty() {
        return Ok(raw::Histogram {
            variable: name.to_owned(),
            bins: Vec::new(),
            scale: raw::HistogramScale::Count,
            group: None,
            normal: false,
            population: PopulationSketch::default(),
            bin_populations: Vec::new(),
        });
    }
    // discrete: a bar per whole number, centred on it.
    let width = if discrete {
        lo = lo.floor() - 0.5;
        Some(1.0)
    } else {
        width
    };
    let (count, step) = match width {
        Some(w) if w > 0.0 => (((hi - lo) / w).floor() as usize + 1, w),
        _ => {
            let n = bins.max(1);
            (n, if hi > lo { (hi - lo) / n as f64 } else { 1.0 })
        }
    };
    if count > 200 {
        return Err(EngineError::new("a histogram may have at most 200 bins: use a wider width()"));
    }
    let mut contributors = vec![Contributors::default(); count];
    let mut population = PopulationSketch::default();
    let mut bin_populations = vec![PopulationSketch::default(); count];
    for (i, v) in selected {
        let b = (((v - lo) / step).floor() as usize).min(count - 1);
        contributors[b].add(keys[i]);
        dataset.add_to_population(&mut population, i);
        dataset.add_to_population(&mut bin_populations[b], i);
    }
    let bins = contributors
        .into_iter()
        .enumerate()
        .map(|(b, c)| (lo + b as f64 * step, lo + (b + 1) as f64 * step, c))
        .collect();
    Ok(raw::Histogram {
        variable: name.to_owned(),
        bins,
        scale: raw::HistogramScale::Count,
        group: None,
        normal: false,
        population,
        bin_populations,
    })
}

/// `hexbin` before disclosure: the hexagonal binning of matplotlib and Stata's `hexbin`, with
/// `gridsize` cells across x and two offset lattices; each unit counts in the nearest centre.
pub fn hexbin_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    (y_name, x_name): (&str, &str),
    gridsize: usize,
    mask: Option<&BooleanArray>,
) -> Result<raw::Hexbin, EngineError> {
    let column = |name: &str| -> Result<Vec<Option<f64>>, EngineError> {
        let v = dataset
            .variable(name)
            .ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
        Ok(coded(gate, &numbers(v)?))
    };
    // Coding is idempotent, so the axis of coded values is the axis of the raw ones.
    let (xs, ys) = (column(x_name)?, column(y_name)?);
    let points: Vec<(usize, f64, f64)> = (0..dataset.len())
        .filter(|&i| mask.is_none_or(|m| m.value(i)))
        .filter_map(|i| Some((i, xs[i]?, ys[i]?)))
        .collect();
    let (x_lo, x_hi) = axis_range(gate, &xs);
    let (y_lo, y_hi) = axis_range(gate, &ys);
    let nx = gridsize.max(1) as f64;
    let ny = (nx / 3f64.sqrt()).round().max(1.0);
    let sx = if x_hi > x_lo { (x_hi - x_lo) / nx } else { 1.0 };
    let sy = if y_hi > y_lo { (y_hi - y_lo) / ny } else { 1.0 };
    // (lattice, column, row) → contributors
    let mut cells: std::collections::BTreeMap<(u8, i64, i64), Contributors> = Default::default();
    let mut population = PopulationSketch::default();
    for &(i, x, y) in &points {
        let (u, v) = ((x - x_lo) / sx, (y - y_lo) / sy);
        let (i1, j1) = (u.round(), v.round());
        let (i2, j2) = (u.floor(), v.floor());
        let d1 = (u - i1).powi(2) + 3.0 * (v - j1).powi(2);
        let d2 = (u - i2 - 0.5).powi(2) + 3.0 * (v - j2 - 0.5).powi(2);
        let cell = if d1 <= d2 { (0, i1 as i64, j1 as i64) } else { (1, i2 as i64, j2 as i64) };
        cells.entry(cell).or_default().add(keys[i]);
        dataset.add_to_population(&mut population, i);
    }
    let cells = cells
        .into_iter()
        .map(|((lattice, c, r), contributors)| {
            let offset = f64::from(lattice) * 0.5;
            (x_lo + (c as f64 + offset) * sx, y_lo + (r as f64 + offset) * sy, contributors)
        })
        .collect();
    Ok(raw::Hexbin {
        x_variable: x_name.to_owned(),
        y_variable: y_name.to_owned(),
        width: sx,
        height: sy,
        cells,
        population,
    })
}

/// `boxplot` before disclosure: five percentiles of the raw values per group.
pub fn boxplot_raw(
    dataset: &Dataset,
    keys: &[u64],
    name: &str,
    over: Option<&str>,
    mask: Option<&BooleanArray>,
) -> Result<raw::BoxPlot, EngineError> {
    let variable =
        dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
    let values = numbers(variable)?;
    let (groups, labels) = match over {
        Some(o) => {
            let v =
                dataset.variable(o).ok_or_else(|| EngineError::new(format!("no variable {o}")))?;
            levels(v, false, true)?
        }
        None => (vec![Some(0); dataset.len()], vec![name.to_owned()]),
    };
    let mut per_group: Vec<(Contributors, Vec<f64>)> =
        vec![(Contributors::default(), Vec::new()); labels.len()];
    let mut population = PopulationSketch::default();
    for i in 0..dataset.len() {
        if mask.is_some_and(|m| !m.value(i)) {
            continue;
        }
        let (Some(g), Some(v)) = (groups[i], values[i]) else { continue };
        per_group[g].0.add(keys[i]);
        per_group[g].1.push(v);
        dataset.add_to_population(&mut population, i);
    }
    let groups = labels
        .into_iter()
        .zip(per_group)
        .map(|(label, (contributors, values))| {
            let sorted = stats::sorted(values);
            (label, contributors, quantiles(&sorted, &[5.0, 25.0, 50.0, 75.0, 95.0]))
        })
        .collect();
    Ok(raw::BoxPlot {
        variable: name.to_owned(),
        over: over.map(str::to_owned),
        groups,
        population,
    })
}

impl Step<'_> {
    /// The command's `if` condition over `dataset`, when it has one.
    pub(in crate::engine) fn mask(
        &self,
        dataset: &Dataset,
        name: &str,
    ) -> Result<Option<BooleanArray>, EngineError> {
        match &self.command().condition {
            Some(c) => {
                super::partition::check_splits(self.gate(), &self.engine.ctx, dataset, name, c)?;
                Ok(Some(expr::condition(&self.engine.ctx, dataset, name, c)?))
            }
            None => Ok(None),
        }
    }

    fn variable_args(
        &self,
        dataset: &Dataset,
        dataset_name: &str,
    ) -> Result<Vec<String>, EngineError> {
        let names = self.names_in_args()?;
        for (n, span) in &names {
            dataset.require(n, dataset_name).map_err(|e| e.with_span(*span))?;
        }
        Ok(names.into_iter().map(|(n, _)| n).collect())
    }

    /// The variables `summarize` (and `summarize-panel`) describe: those named, or every
    /// numeric one that is not an identifier.
    pub(in crate::engine) fn summarized_names(
        &self,
        dataset: &Dataset,
        dataset_name: &str,
    ) -> Result<Vec<String>, EngineError> {
        let names = self.variable_args(dataset, dataset_name)?;
        if !names.is_empty() {
            return Ok(names);
        }
        Ok(dataset
            .variables
            .iter()
            .filter(|v| Kind::of(v.values.data_type()) == Kind::Number && !v.info.pointer)
            .map(|v| v.name.clone())
            .collect())
    }

    pub(in crate::engine) fn summarize(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.summarized_names(dataset, dataset_name)?;
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(dataset.copies(names.iter().map(String::as_str)));
        let keys = self.record_keys(gate, dataset);
        let raw = summarize_raw(
            gate,
            dataset,
            &keys,
            &names,
            mask.as_ref(),
            self.flag("gini"),
            self.flag("iqr"),
        )?;
        let cleared = self.clear_all(&raw.iter().map(|s| &s.population).collect::<Vec<_>>())?;
        let released = self.releaser.summary(gate, &cleared, self.origin(), raw);
        self.outputs.push(released);
        Ok(())
    }

    pub(in crate::engine) fn tabulate(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.variable_args(dataset, dataset_name)?;
        let released = self.tabulate_of(dataset_name, dataset, names)?;
        self.outputs.extend(released);
        Ok(())
    }

    /// tabulate's work over `dataset` with the command's options, up to and including rule
    /// 11's check: the released tables and the population to remember. The panel tables
    /// build their own dataset (a date column, or one row per transition) and come here too.
    pub(in crate::engine) fn tabulate_of(
        &self,
        dataset_name: &str,
        dataset: &Dataset,
        names: Vec<String>,
    ) -> Result<Vec<Released>, EngineError> {
        let flatten = self.flag("flatten");
        if names.is_empty() || (names.len() > 2 && !flatten) {
            return Err(EngineError::at(
                self.command().span,
                if names.is_empty() {
                    "write tabulate <variable> [<variable>]"
                } else {
                    "a table of more than two variables is one long table: add flatten (tabulate a b c, flatten)"
                },
            ));
        }
        // The gate counts copies over the variables as written, before any flattening.
        let copies = dataset.copies(
            names.iter().map(String::as_str).chain(self.option_text("summarize").as_deref()),
        );
        let flat;
        let (dataset, names) = if flatten && names.len() >= 2 {
            let mut d = dataset.clone();
            let combined =
                flattened(dataset, &names, self.flag("missing"), !self.flag("nolabels"))?;
            let name = combined.name.clone();
            d.set(combined);
            flat = d;
            (&flat, vec![name])
        } else {
            (dataset, names)
        };
        let of = self.option_text("summarize");
        if let Some(of) = &of {
            dataset
                .require(of, dataset_name)
                .map_err(|e| e.with_span(self.option_span("summarize")))?;
        }
        let statistic = match &of {
            Some(v) => {
                if self.flag("sum") {
                    CellStatistic::Sum(v.clone())
                } else if self.flag("std") {
                    CellStatistic::Sd(v.clone())
                } else if self.flag("p25") {
                    CellStatistic::Percentile(v.clone(), 25.0)
                } else if self.flag("p50") {
                    CellStatistic::Percentile(v.clone(), 50.0)
                } else if self.flag("p75") {
                    CellStatistic::Percentile(v.clone(), 75.0)
                } else if self.flag("gini") {
                    CellStatistic::Gini(v.clone())
                } else if self.flag("iqr") {
                    CellStatistic::Iqr(v.clone())
                } else {
                    CellStatistic::Mean(v.clone())
                }
            }
            None if self.flag("rowpct") => CellStatistic::RowPercent,
            None if self.flag("colpct") => CellStatistic::ColumnPercent,
            None if self.flag("cellpct") => CellStatistic::CellPercent,
            None => CellStatistic::Count,
        };
        let count = |name: &str| -> Result<Option<usize>, EngineError> {
            match self.option_number(name)? {
                None => Ok(None),
                Some(n) if n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
                Some(_) => Err(EngineError::at(
                    self.option_span(name),
                    format!("{name}() takes a whole number of rows, such as {name}(10)"),
                )),
            }
        };
        let options = raw::TableOptions {
            chi2: self.flag("chi2"),
            top: count("top")?,
            bottom: count("bottom")?,
            rowsort: self.flag("rowsort"),
            colsort: self.flag("colsort"),
        };
        if options.chi2 && names.len() != 2 {
            return Err(EngineError::at(
                self.option_span("chi2"),
                "chi2 tests two variables against each other: tabulate <row> <column>, chi2",
            ));
        }
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(copies);
        let percent = matches!(
            statistic,
            CellStatistic::RowPercent | CellStatistic::ColumnPercent | CellStatistic::CellPercent
        );
        let request = |statistic: CellStatistic| TableRequest {
            options: options.clone(),
            row: &names[0],
            column: names.get(1).map(String::as_str),
            statistic,
            of: of.as_deref(),
            missing: self.flag("missing"),
            labels: !self.flag("nolabels"),
        };
        let keys = self.record_keys(gate, dataset);
        let raw = tabulate_raw(gate, dataset, &keys, &request(statistic), mask.as_ref())?;
        let cleared = self.clear_one(&raw.population)?;
        let mut released = Vec::new();
        if percent && self.flag("freq") {
            // The counts beside the percents: the same population, cleared with them.
            let counts =
                tabulate_raw(gate, dataset, &keys, &request(CellStatistic::Count), mask.as_ref())?;
            released.push(self.releaser.table(gate, &cleared, self.origin(), counts));
        }
        released.push(self.releaser.table(gate, &cleared, self.origin(), raw));
        Ok(released)
    }

    /// The groups of a chart's `by(v)` option: each level's label ("sex=1 Mann") and the rows
    /// in it and in `mask`; without `by()`, one group of `mask`.
    #[allow(clippy::type_complexity)]
    fn by_groups(
        &self,
        dataset: &Dataset,
        dataset_name: &str,
        mask: Option<BooleanArray>,
    ) -> Result<Vec<(Option<String>, Option<BooleanArray>)>, EngineError> {
        let Some(by) = self.option_text("by") else { return Ok(vec![(None, mask)]) };
        let span = self.option_span("by");
        let variable = dataset.require(&by, dataset_name).map_err(|e| e.with_span(span))?;
        let (rows, labels) = levels(variable, false, true).map_err(|e| e.with_span(span))?;
        Ok(labels
            .iter()
            .enumerate()
            .map(|(level, label)| {
                let in_group: BooleanArray = (0..dataset.len())
                    .map(|i| {
                        Some(
                            rows[i] == Some(level)
                                && mask.as_ref().is_none_or(|m| m.is_valid(i) && m.value(i)),
                        )
                    })
                    .collect();
                (Some(format!("{by}={label}")), Some(in_group))
            })
            .collect())
    }

    /// `sankey a b …`: flows of units between the levels of consecutive variables, over the
    /// units with a value of every one of them.
    pub(in crate::engine) fn sankey(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.variable_args(dataset, dataset_name)?;
        if !(2..=6).contains(&names.len()) {
            return Err(EngineError::at(
                self.command().span,
                "write sankey <variable> <variable>…: two to six variables, such as a status on several dates",
            ));
        }
        let condition = self.mask(dataset, dataset_name)?;
        let columns: Vec<&Variable> = names.iter().filter_map(|n| dataset.variable(n)).collect();
        // One population for every stage: the units with all the variables.
        let mask: BooleanArray = (0..dataset.len())
            .map(|i| {
                Some(
                    condition.as_ref().is_none_or(|m| m.is_valid(i) && m.value(i))
                        && columns.iter().all(|v| v.values.is_valid(i)),
                )
            })
            .collect();
        let gate = &*self.gate_for(dataset.copies(names.iter().map(String::as_str)));
        let keys = self.record_keys(gate, dataset);
        let mut tables = Vec::new();
        for pair in names.windows(2) {
            let request = TableRequest {
                options: raw::TableOptions::default(),
                row: &pair[0],
                column: Some(&pair[1]),
                statistic: CellStatistic::Count,
                of: None,
                missing: false,
                labels: true,
            };
            tables.push(tabulate_raw(gate, dataset, &keys, &request, Some(&mask))?);
        }
        let cleared = self.clear_one(&tables[0].population)?;
        let released = self.releaser.sankey(gate, &cleared, self.origin(), tables);
        self.outputs.push(released);
        Ok(())
    }

    pub(in crate::engine) fn histogram(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.variable_args(dataset, dataset_name)?;
        let [name] = names.as_slice() else {
            return Err(EngineError::at(self.command().span, "write histogram <variable>"));
        };
        let scales = [
            ("percent", raw::HistogramScale::Percent),
            ("fraction", raw::HistogramScale::Fraction),
            ("density", raw::HistogramScale::Density),
            ("freq", raw::HistogramScale::Count),
        ];
        let chosen: Vec<_> = scales.iter().filter(|(n, _)| self.flag(n)).collect();
        if let [_, (second, _), ..] = chosen.as_slice() {
            return Err(EngineError::at(
                self.option_span(second),
                "choose one of percent, fraction, density and freq",
            ));
        }
        let scale = chosen.first().map_or(raw::HistogramScale::Count, |(_, s)| *s);
        let bins = Bins {
            count: self.option_number("bin")?.map_or(20, |b| b.clamp(1.0, 200.0) as usize),
            width: self.option_number("width")?,
            discrete: self.flag("discrete"),
        };
        let by = self.option_text("by");
        let mask = self.mask(dataset, dataset_name)?;
        let gate =
            &*self.gate_for(dataset.copies([name.as_str()].into_iter().chain(by.as_deref())));
        let keys = self.record_keys(gate, dataset);
        // by(): a histogram per level, on one axis (the whole column's coding bounds).
        let groups = self.by_groups(dataset, dataset_name, mask)?;
        let mut raws = Vec::new();
        for (group, mask) in groups {
            let mut raw = histogram_raw(gate, dataset, &keys, name, bins, mask.as_ref())?;
            raw.scale = scale;
            raw.group = group;
            raw.normal = self.flag("normal");
            raws.push(raw);
        }
        // Each group's population against the earlier outputs' and the groups before it. A bin a few units away from an earlier output's population (the same bin with an
        // edge moved, a group padded by a few units) refuses the whole histogram under rule
        // 11. Withholding just that bin would not do: a withheld bin among shown ones says
        // which bin the few units left. Small bins are checked too (a shown bar of 6 that
        // comes back withheld with 4 says where two units went), but not remembered: they
        // are withheld anyway, and would only make later small bins look near them.
        let min_cell = gate.rules().min_cell;
        let mut remember = Vec::new();
        for raw in &raws {
            remember.push(raw.population.clone());
            remember.extend(raw.bin_populations.iter().filter(|b| b.len() >= min_cell).cloned());
        }
        let cleared = self.clear(Rule11Check {
            together: raws.iter().map(|r| &r.population).collect(),
            apart: raws
                .iter()
                .flat_map(|r| r.bin_populations.iter().filter(|b| !b.is_empty()))
                .collect(),
            remember,
        })?;
        for raw in raws {
            let released = self.releaser.histogram(gate, &cleared, self.origin(), raw);
            self.outputs.push(released);
        }
        Ok(())
    }

    pub(in crate::engine) fn hexbin(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.variable_args(dataset, dataset_name)?;
        let [y, x] = names.as_slice() else {
            return Err(EngineError::at(
                self.command().span,
                "write hexbin <y variable> <x variable>",
            ));
        };
        let classes = match self.option_number("groups")? {
            None => None,
            Some(k) if (1.0..=10.0).contains(&k) && k.fract() == 0.0 => Some(k as usize),
            Some(_) => {
                return Err(EngineError::at(
                    self.option_span("groups"),
                    "groups() is a whole number of count classes from 1 to 10",
                ));
            }
        };
        let largest = self.gate().rules().max_hexbin_grid;
        let gridsize = self.option_number("gridsize")?.unwrap_or(largest.min(20) as f64);
        if !(1.0..=largest as f64).contains(&gridsize) || gridsize.fract() != 0.0 {
            return Err(EngineError::at(
                self.option_span("gridsize"),
                format!(
                    "gridsize() is a whole number from 1 to {largest} (rule 10): finer grids would isolate units"
                ),
            ));
        }
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(dataset.copies([x.as_str(), y.as_str()]));
        let keys = self.record_keys(gate, dataset);
        let raw = hexbin_raw(gate, dataset, &keys, (y, x), gridsize as usize, mask.as_ref())?;
        let cleared = self.clear_one(&raw.population)?;
        let released = self.releaser.hexbin(gate, &cleared, self.origin(), raw, classes);
        self.outputs.push(released);
        Ok(())
    }

    /// `barchart (stat) var… [, over() by() stack horizontal]` and `piechart var`: tables
    /// drawn as bars. Counts and percents of one variable are a one-way table, or with `over()`
    /// a two-way table (the groups as rows, percents within each group). Magnitudes need
    /// `over()` and take several variables: a one-way table of the groups per variable.
    pub(in crate::engine) fn bar_or_pie_chart(&mut self, pie: bool) -> Result<(), EngineError> {
        let source = self.source();
        let t = &self.command().args;
        let (statistic_name, rest) = match (t.first().map(|x| x.kind), pie) {
            (_, true) => ("count", &t[..]),
            (Some(TokenKind::LParen), false) if t.len() >= 3 && t[2].kind == TokenKind::RParen => {
                (t[1].span.text(source), &t[3..])
            }
            _ => {
                return Err(EngineError::at(
                    self.command().span,
                    "write barchart (count|percent|mean|median|sum|sd) <variable>… [, over(<group>) by(<group>) stack horizontal]",
                ));
            }
        };
        let (dataset_name, dataset) = self.populated()?;
        if rest.is_empty() || (pie && rest.len() > 1) {
            return Err(EngineError::at(
                self.command().span,
                if pie { "write piechart <variable>" } else { "name the variable to draw" },
            ));
        }
        let mut names = Vec::with_capacity(rest.len());
        for variable in rest {
            let name = variable.span.text(source).to_owned();
            dataset.require(&name, dataset_name).map_err(|e| e.with_span(variable.span))?;
            names.push(name);
        }
        let over = self.option_text("over");
        if let Some(o) = &over {
            dataset.require(o, dataset_name).map_err(|e| e.with_span(self.option_span("over")))?;
        }
        let magnitude = |s: fn(String) -> CellStatistic| -> Result<Vec<BarTable>, EngineError> {
            let over = over.clone().ok_or_else(|| {
                EngineError::at(
                    self.command().span,
                    format!(
                        "barchart ({statistic_name}) draws one bar per group: add over(<group>)"
                    ),
                )
            })?;
            Ok(names.iter().map(|n| (over.clone(), None, s(n.clone()), Some(n.clone()))).collect())
        };
        // (row, column, statistic, magnitude variable) of each table.
        let requests = match statistic_name {
            "count" | "percent" => {
                let [name] = names.as_slice() else {
                    return Err(EngineError::at(
                        self.command().span,
                        format!(
                            "barchart ({statistic_name}) counts one variable: write one barchart per variable, or flatten them in a tabulate"
                        ),
                    ));
                };
                let statistic = match (statistic_name, &over) {
                    ("count", _) => CellStatistic::Count,
                    (_, Some(_)) => CellStatistic::RowPercent,
                    (_, None) => CellStatistic::CellPercent,
                };
                match &over {
                    Some(o) => vec![(o.clone(), Some(name.clone()), statistic, None)],
                    None => vec![(name.clone(), None, statistic, None)],
                }
            }
            "mean" => magnitude(CellStatistic::Mean)?,
            "median" => magnitude(|n| CellStatistic::Percentile(n, 50.0))?,
            "sum" => magnitude(CellStatistic::Sum)?,
            "sd" => magnitude(CellStatistic::Sd)?,
            other => {
                return Err(EngineError::at(
                    t[1].span,
                    format!(
                        "unknown statistic {other}: barchart draws count, percent, mean, median, sum or sd"
                    ),
                ));
            }
        };
        let mask = self.mask(dataset, dataset_name)?;
        let by = self.option_text("by");
        let gate =
            &*self.gate_for(dataset.copies(
                names.iter().map(String::as_str).chain(over.as_deref()).chain(by.as_deref()),
            ));
        let keys = self.record_keys(gate, dataset);
        // by(): a chart per level of the group variable, each its own population.
        let groups = self.by_groups(dataset, dataset_name, mask)?;
        let mut charts = Vec::new();
        for (group, mask) in groups {
            let mut tables = Vec::with_capacity(requests.len());
            for (row, column, statistic, of) in &requests {
                let request = TableRequest {
                    options: Default::default(),
                    row,
                    column: column.as_deref(),
                    statistic: statistic.clone(),
                    of: of.as_deref(),
                    missing: false,
                    labels: true,
                };
                tables.push(tabulate_raw(gate, dataset, &keys, &request, mask.as_ref())?);
            }
            charts.push((group, tables));
        }
        // Each table against the earlier outputs (the groups are disjoint, and a chart's
        // tables over one group have one population).
        let populations: Vec<&PopulationSketch> =
            charts.iter().flat_map(|(_, tables)| tables.iter().map(|t| &t.population)).collect();
        let remember = populations.iter().map(|&p| p.clone()).collect();
        let cleared =
            self.clear(Rule11Check { together: Vec::new(), apart: populations, remember })?;
        let (stacked, horizontal) = (self.flag("stack"), self.flag("horizontal"));
        for (group, tables) in charts {
            let layout = BarLayout {
                chart: if pie { "piechart" } else { "barchart" },
                group: group.as_deref(),
                stacked,
                horizontal,
            };
            let released = self.releaser.bar_chart(gate, &cleared, self.origin(), tables, layout);
            self.outputs.push(released);
        }
        Ok(())
    }

    pub(in crate::engine) fn boxplot(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.variable_args(dataset, dataset_name)?;
        let [name] = names.as_slice() else {
            return Err(EngineError::at(
                self.command().span,
                "write boxplot <variable> [, over(<group>)]: one variable at a time",
            ));
        };
        let over = self.option_text("over");
        if let Some(o) = &over {
            dataset.require(o, dataset_name).map_err(|e| e.with_span(self.option_span("over")))?;
        }
        let mask = self.mask(dataset, dataset_name)?;
        let gate =
            &*self.gate_for(dataset.copies([name.as_str()].into_iter().chain(over.as_deref())));
        let keys = self.record_keys(gate, dataset);
        let raw = boxplot_raw(dataset, &keys, name, over.as_deref(), mask.as_ref())?;
        let cleared = self.clear_one(&raw.population)?;
        let released =
            self.releaser.boxplot(gate, &cleared, self.origin(), raw, self.flag("horizontal"));
        self.outputs.push(released);
        Ok(())
    }
}
