//! correlate, ci, normaltest and anova: statistics of a whole sample, on values coded to
//! P1/P99 (rule 7). `correlation_raw`, `normality_raw` and `anova_raw` are what the reference
//! tests compare with pandas, scipy and statsmodels.

use datafusion::arrow::array::BooleanArray;
use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::{levels, numbers};
use super::describe::{coded, summarize_raw};
use super::{EngineError, Invariant, Step};
use crate::disclosure::Gate;
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::raw::{self, Contributors};

/// Each named variable's values, coded to the gate's P1/P99 bounds.
fn coded_columns(
    gate: &Gate,
    dataset: &Dataset,
    names: &[String],
) -> Result<Vec<Vec<Option<f64>>>, EngineError> {
    names
        .iter()
        .map(|n| {
            let v =
                dataset.variable(n).ok_or_else(|| EngineError::new(format!("no variable {n}")))?;
            Ok(coded(gate, &numbers(v)?))
        })
        .collect()
}

/// Coded columns of the named variables over the rows where all are present (listwise).
fn complete_rows(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    names: &[String],
    mask: Option<&BooleanArray>,
) -> Result<(Vec<Vec<f64>>, Contributors, PopulationSketch), EngineError> {
    let columns = coded_columns(gate, dataset, names)?;
    let mut out = vec![Vec::new(); names.len()];
    let mut contributors = Contributors::default();
    let mut population = PopulationSketch::default();
    for i in 0..dataset.len() {
        // A row with a missing value in any column is not in the sample.
        if mask.is_some_and(|m| !m.value(i)) || columns.iter().any(|c| c[i].is_none()) {
            continue;
        }
        for (column, values) in out.iter_mut().zip(&columns) {
            column.extend(values[i]);
        }
        contributors.add(keys[i]);
        dataset.add_to_population(&mut population, i);
    }
    Ok((out, contributors, population))
}

/// What `correlate` shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct CorrelationOptions {
    pub covariance: bool,
    /// A p-value row under each variable.
    pub significance: bool,
    /// An N row under each variable.
    pub obs: bool,
    /// Each pair over the units with both values, instead of the units with every value.
    pub pairwise: bool,
}

/// Pearson correlations (or covariances), with p-values and numbers of units when asked.
/// Listwise, every pair uses the units with every value; pairwise, each pair its own units,
/// and each pair's N and population then go to the gate on their own (rules 3, 5 and 11).
pub fn correlation_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    names: &[String],
    options: CorrelationOptions,
    mask: Option<&BooleanArray>,
) -> Result<(raw::StatisticsTable, Vec<PopulationSketch>), EngineError> {
    let columns = coded_columns(gate, dataset, names)?;
    let inside = |i: usize| mask.is_none_or(|m| m.value(i));
    // The table's units: with every value (listwise) or with any (pairwise).
    let mut contributors = Contributors::default();
    let mut population = PopulationSketch::default();
    for i in (0..dataset.len()).filter(|&i| inside(i)) {
        let present = |c: &Vec<Option<f64>>| c[i].is_some();
        let counted = if options.pairwise {
            columns.iter().any(present)
        } else {
            columns.iter().all(present)
        };
        if counted {
            contributors.add(keys[i]);
            dataset.add_to_population(&mut population, i);
        }
    }
    let k = names.len();
    // Each pair's sample: its rows, units and population.
    let mut pair_populations = Vec::new();
    let mut stats = vec![vec![(0.0, 0.0, Contributors::default()); k]; k];
    for a in 0..k {
        for b in 0..=a {
            let rows: Vec<usize> = (0..dataset.len())
                .filter(|&i| {
                    inside(i)
                        && if options.pairwise {
                            columns[a][i].is_some() && columns[b][i].is_some()
                        } else {
                            columns.iter().all(|c| c[i].is_some())
                        }
                })
                .collect();
            let n = rows.len() as f64;
            let mean = |c: &Vec<Option<f64>>| rows.iter().map(|&i| c.in_sample(i)).sum::<f64>() / n;
            let (ma, mb) = (mean(&columns[a]), mean(&columns[b]));
            let moment = |x: &Vec<Option<f64>>, mx: f64, y: &Vec<Option<f64>>, my: f64| {
                rows.iter().map(|&i| (x.in_sample(i) - mx) * (y.in_sample(i) - my)).sum::<f64>()
                    / (n - 1.0)
            };
            let cov = moment(&columns[a], ma, &columns[b], mb);
            let r = cov
                / (moment(&columns[a], ma, &columns[a], ma)
                    * moment(&columns[b], mb, &columns[b], mb))
                .sqrt();
            let mut units = Contributors::default();
            let mut pair_population = PopulationSketch::default();
            for &i in &rows {
                units.add(keys[i]);
                dataset.add_to_population(&mut pair_population, i);
            }
            if options.pairwise && a != b {
                pair_populations.push(pair_population);
            }
            stats[a][b] = (cov, r, units);
            stats[b][a] = (cov, r, units);
        }
    }
    let mut row_labels = Vec::new();
    let mut values = Vec::new();
    let mut pairs = Vec::new();
    for a in 0..k {
        let value_row = values.len();
        row_labels.push(names[a].clone());
        values.push(
            (0..k)
                .map(|b| {
                    let (cov, r, _) = stats[a][b];
                    Some(if options.covariance { cov } else { r })
                })
                .collect::<Vec<_>>(),
        );
        let p_row = options.significance.then(|| {
            row_labels.push(format!("  p ({})", names[a]));
            values.push(vec![None; k]);
            values.len() - 1
        });
        let n_row = options.obs.then(|| {
            row_labels.push(format!("  N ({})", names[a]));
            values.push(vec![None; k]);
            values.len() - 1
        });
        for b in 0..k {
            let (_, r, units) = stats[a][b];
            // The p cell holds the test on the exact N (what the reference tests compare);
            // the gate replaces it with the test on the released N, and fills the N cell.
            if let (Some(row), true) = (p_row, a != b) {
                let df = units.units as f64 - 2.0;
                values[row][b] = StudentsT::new(0.0, 1.0, df.max(1.0))
                    .ok()
                    .map(|t| 2.0 * t.sf((r * (df / (1.0 - r * r)).sqrt()).abs()));
            }
            pairs.push(raw::Pair {
                value: (value_row, b),
                p: p_row.filter(|_| a != b).map(|row| (row, b)),
                n: n_row.map(|row| (row, b)),
                r,
                units,
            });
        }
    }
    let sample = if options.pairwise {
        "Each pair over the units with both values (pairwise)"
    } else {
        "Units with a value on every variable (listwise)"
    };
    Ok((
        raw::StatisticsTable {
            title: if options.covariance {
                "Covariances".into()
            } else {
                "Correlations (Pearson)".into()
            },
            row_variable: String::new(),
            row_labels,
            column_labels: names.to_vec(),
            values,
            contributors,
            levels: Vec::new(),
            restate: raw::Restate::Pairs(pairs),
            notes: vec![format!("{sample}; values coded to P1–P99.")],
            population,
        },
        pair_populations,
    ))
}

/// D'Agostino and Pearson's omnibus test of normality (as scipy.stats.normaltest): skewness,
/// kurtosis, their z-scores and the χ²(2) statistic with its p-value, per variable.
pub fn normality_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    names: &[String],
    mask: Option<&BooleanArray>,
) -> Result<raw::StatisticsTable, EngineError> {
    let (columns, contributors, population) = complete_rows(gate, dataset, keys, names, mask)?;
    let mut values = Vec::new();
    for c in &columns {
        let n = c.len() as f64;
        if n < 8.0 {
            values.push(vec![None; 6]);
            continue;
        }
        let mean = c.iter().sum::<f64>() / n;
        let m2 = c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m3 = c.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
        let m4 = c.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        let skew = m3 / m2.powf(1.5);
        let kurt = m4 / (m2 * m2);
        let (z_skew, z_kurt, k2, p) = crate::stats::dagostino_pearson(skew, kurt, n);
        values.push(vec![Some(skew), Some(kurt), Some(z_skew), Some(z_kurt), Some(k2), Some(p)]);
    }
    Ok(raw::StatisticsTable {
        title: "Tests for normality (D'Agostino–Pearson)".into(),
        row_variable: "variable".into(),
        row_labels: names.to_vec(),
        column_labels: ["skewness", "kurtosis", "z skewness", "z kurtosis", "chi2(2)", "p"]
            .map(String::from)
            .to_vec(),
        values,
        contributors,
        levels: Vec::new(),
        // The z-scores depend on N: the gate tests again on the released N.
        restate: raw::Restate::Normality,
        notes: vec!["Values coded to P1–P99 before the moments.".into()],
        population,
    })
}

/// Analysis of variance of `dependent` over the levels of one or more factors (main effects).
/// With one factor it is the one-way table; with several, each factor's sum of squares is
/// partial (Stata's `anova`, statsmodels' Type II, which agree without interactions): the
/// residual sum of squares gained by adding that factor last, from OLS on level dummies.
pub fn anova_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    dependent: &str,
    factors: &[String],
    mask: Option<&BooleanArray>,
    constant: bool,
) -> Result<raw::StatisticsTable, EngineError> {
    let y = dataset
        .variable(dependent)
        .ok_or_else(|| EngineError::new(format!("no variable {dependent}")))?;
    let y = coded(gate, &numbers(y)?);
    let mut factor_levels = Vec::new();
    for factor in factors {
        let f = dataset
            .variable(factor)
            .ok_or_else(|| EngineError::new(format!("no variable {factor}")))?;
        factor_levels.push(levels(f, false, false)?);
    }
    // The sample: y and every factor present.
    let rows: Vec<usize> = (0..dataset.len())
        .filter(|&i| {
            mask.is_none_or(|m| m.value(i))
                && y[i].is_some()
                && factor_levels.iter().all(|(groups, _)| groups[i].is_some())
        })
        .collect();
    let mut contributors = Contributors::default();
    let mut population = PopulationSketch::default();
    let mut counts: Vec<Vec<u64>> =
        factor_levels.iter().map(|(_, labels)| vec![0; labels.len()]).collect();
    let mut level_units: Vec<Vec<Contributors>> = factor_levels
        .iter()
        .map(|(_, labels)| vec![Contributors::default(); labels.len()])
        .collect();
    for &i in &rows {
        contributors.add(keys[i]);
        dataset.add_to_population(&mut population, i);
        for (f, (groups, _)) in factor_levels.iter().enumerate() {
            let level = groups.in_sample(i);
            counts[f][level] += 1;
            level_units[f][level].add(keys[i]);
        }
    }
    // Dummy columns: every present level of each factor but its first. Without a constant
    // the first factor keeps all its levels, which together stand in for the constant.
    // `columns[0]` is the constant's place either way, so a column's index is stable.
    let mut columns: Vec<(usize, usize)> = Vec::new();
    let mut present_levels = Vec::new();
    for (f, c) in counts.iter().enumerate() {
        let present: Vec<usize> = (0..c.len()).filter(|&l| c[l] > 0).collect();
        // Two levels that count as many (rule 13): were a level of one unit enough, the error
        // would say whether anyone is in it. Small levels are refused by rule 9 below.
        let many = present.iter().filter(|&&l| gate.counts_as_many(level_units[f][l])).count();
        if many < 2 {
            return Err(EngineError::new(format!(
                "anova needs at least two levels of {} in the sample",
                factors[f]
            )));
        }
        let skip = usize::from(constant || f > 0);
        columns.extend(present[skip..].iter().map(|&l| (f, l)));
        present_levels.push(present.iter().map(|&l| c[l]).collect::<Vec<u64>>());
    }
    let k = columns.len() + 1;
    // The model's parameters: the constant (when there is one) and the dummies.
    let parameters = columns.len() + usize::from(constant);
    if k > 200 {
        return Err(EngineError::new(
            "the factors have more than 200 levels together: group levels with recode",
        ));
    }
    let n = rows.len() as f64;
    if n <= parameters as f64 {
        return Err(EngineError::new("anova needs more units than levels"));
    }
    // With a constant, sums of squares are about the grand mean; without, about zero.
    let grand = if constant { rows.iter().map(|&i| y.in_sample(i)).sum::<f64>() / n } else { 0.0 };
    let x_of = |i: usize, x: &mut [f64]| {
        x[0] = f64::from(u8::from(constant));
        for (j, &(f, l)) in columns.iter().enumerate() {
            x[j + 1] = f64::from(factor_levels[f].0[i] == Some(l));
        }
    };
    let mut equations = crate::stats::NormalEquations::new(k);
    let mut x = vec![0.0; k];
    for &i in &rows {
        x_of(i, &mut x);
        equations.add(&x, y.in_sample(i) - grand);
    }
    let (xtx, xty) = equations.finish();
    // The residual sum of squares of OLS on the chosen columns, by a second pass.
    let rss = |keep: &[usize]| -> Result<f64, EngineError> {
        let keep: Vec<usize> = keep.iter().copied().filter(|&c| c > 0 || constant).collect();
        let keep = keep.as_slice();
        if keep.is_empty() {
            return Ok(rows.iter().map(|&i| (y.in_sample(i) - grand).powi(2)).sum());
        }
        let sub = DMatrix::from_fn(keep.len(), keep.len(), |a, b| xtx[(keep[a], keep[b])]);
        let rhs = DVector::from_fn(keep.len(), |a, _| xty[keep[a]]);
        let beta = sub.cholesky().map(|c| c.solve(&rhs)).ok_or_else(|| {
            EngineError::new("the factors are collinear (one determines another): drop one of them")
        })?;
        let mut x = vec![0.0; k];
        Ok(rows
            .iter()
            .map(|&i| {
                x_of(i, &mut x);
                let fit: f64 = keep.iter().zip(beta.iter()).map(|(&c, b)| x[c] * b).sum();
                (y.in_sample(i) - grand - fit).powi(2)
            })
            .sum())
    };
    let all: Vec<usize> = (0..k).collect();
    let residual_ss = rss(&all)?;
    let total_ss: f64 = rows.iter().map(|&i| (y.in_sample(i) - grand).powi(2)).sum();
    let df_residual = n - parameters as f64;
    let ms_residual = residual_ss / df_residual;
    let f_test = |ss: f64, df: f64| -> Result<(f64, f64), EngineError> {
        let f = (ss / df) / ms_residual;
        let p = FisherSnedecor::new(df, df_residual)
            .map(|d| d.sf(f))
            .map_err(|e| EngineError::internal(e.to_string()))?;
        Ok((f, p))
    };
    let row = |ss: f64, df: f64| -> Result<Vec<Option<f64>>, EngineError> {
        let (f, p) = f_test(ss, df)?;
        Ok(vec![Some(ss), Some(df), Some(ss / df), Some(f), Some(p)])
    };
    let mut row_labels = Vec::new();
    let mut values = Vec::new();
    // The model's df: its parameters less the constant, whose sum of squares the total
    // leaves out when centred.
    let df_model = (parameters - usize::from(constant)) as f64;
    if factors.len() > 1 {
        row_labels.push("model".to_owned());
        values.push(row(total_ss - residual_ss, df_model)?);
    }
    for (f, factor) in factors.iter().enumerate() {
        let without: Vec<usize> =
            std::iter::once(0).chain((1..k).filter(|&c| columns[c - 1].0 != f)).collect();
        let ss =
            if factors.len() == 1 { total_ss - residual_ss } else { rss(&without)? - residual_ss };
        let df = (present_levels[f].len() - usize::from(constant || f > 0)) as f64;
        row_labels.push(factor.clone());
        values.push(row(ss, df)?);
    }
    row_labels.extend(["residual".to_owned(), "total".to_owned()]);
    values.push(vec![Some(residual_ss), Some(df_residual), Some(ms_residual), None, None]);
    values.push(vec![Some(total_ss), Some(if constant { n - 1.0 } else { n }), None, None, None]);
    let partial = if factors.len() > 1 { " (partial sums of squares)" } else { "" };
    let mut notes = vec![format!("{dependent} coded to P1–P99.")];
    if !constant {
        notes.push("No constant: sums of squares are about zero, not the mean.".into());
    }
    Ok(raw::StatisticsTable {
        title: format!("Analysis of variance of {dependent} by {}{partial}", factors.join(", ")),
        row_variable: "source".into(),
        row_labels,
        column_labels: ["SS", "df", "MS", "F", "p"].map(String::from).to_vec(),
        values,
        contributors,
        levels: factors.iter().cloned().zip(present_levels).collect(),
        restate: raw::Restate::Anova { parameters, constant },
        notes,
        population,
    })
}

/// `anova y factor, posthoc`: the groups' coded means and units, and the one-way residual
/// sum of squares; the gate fills in each pair's comparison from the released counts.
pub fn posthoc_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    dependent: &str,
    factor: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::StatisticsTable, EngineError> {
    let y = dataset
        .variable(dependent)
        .ok_or_else(|| EngineError::new(format!("no variable {dependent}")))?;
    let y = coded(gate, &numbers(y)?);
    let f = dataset
        .variable(factor)
        .ok_or_else(|| EngineError::new(format!("no variable {factor}")))?;
    let (groups, labels) = levels(f, false, true)?;
    let mut contributors = Contributors::default();
    let mut population = PopulationSketch::default();
    let mut per_group = vec![(Contributors::default(), 0.0_f64); labels.len()];
    for i in 0..dataset.len() {
        let (Some(v), Some(g)) = (y[i], groups[i]) else { continue };
        if mask.is_some_and(|m| !m.value(i)) {
            continue;
        }
        contributors.add(keys[i]);
        dataset.add_to_population(&mut population, i);
        per_group[g].0.add(keys[i]);
        per_group[g].1 += v;
    }
    let present: Vec<usize> = (0..labels.len()).filter(|&g| per_group[g].0.units > 0).collect();
    // Two groups that count as many (rule 13), so the error says nothing about a small one.
    if present.iter().filter(|&&g| gate.counts_as_many(per_group[g].0)).count() < 2 {
        return Err(EngineError::new(format!(
            "posthoc compares groups: {factor} has fewer than two levels in the sample"
        )));
    }
    if present.len() > 20 {
        return Err(EngineError::new(format!(
            "posthoc compares every pair of groups, and {factor} has {} levels: group them with recode (at most 20)",
            present.len()
        )));
    }
    let means: Vec<(Contributors, f64)> = present
        .iter()
        .map(|&g| (per_group[g].0, per_group[g].1 / per_group[g].0.units as f64))
        .collect();
    let mut residual_ss = 0.0;
    for i in 0..dataset.len() {
        let (Some(v), Some(g)) = (y[i], groups[i]) else { continue };
        if mask.is_some_and(|m| !m.value(i)) {
            continue;
        }
        let at = present.binary_search(&g).ok().invariant("a present group")?;
        residual_ss += (v - means[at].1).powi(2);
    }
    let mut row_labels = Vec::new();
    for (a, &i) in present.iter().enumerate() {
        for &j in &present[a + 1..] {
            row_labels.push(format!("{} − {}", labels[i], labels[j]));
        }
    }
    Ok(raw::StatisticsTable {
        title: format!("Pairwise comparisons of the mean of {dependent} by {factor} (Bonferroni)"),
        row_variable: "pair".into(),
        values: vec![vec![None; 4]; row_labels.len()],
        row_labels,
        column_labels: ["difference", "std. error", "t", "p (Bonferroni)"].map(String::from).to_vec(),
        contributors,
        levels: vec![(factor.to_owned(), means.iter().map(|(c, _)| c.units).collect())],
        restate: raw::Restate::PairwiseMeans { groups: means, residual_ss },
        notes: vec![
            format!("{dependent} coded to P1–P99."),
            "Standard errors pool the residual variance of the one-way model; p is multiplied by the number of pairs.".into(),
        ],
        population,
    })
}

impl Step<'_> {
    fn numeric_args(&self) -> Result<Vec<String>, EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.names_in_args()?;
        for (n, span) in &names {
            let v = dataset.require(n, dataset_name).map_err(|e| e.with_span(*span))?;
            numbers(v).map_err(|e| e.with_span(*span))?;
        }
        Ok(names.into_iter().map(|(n, _)| n).collect())
    }

    /// Runs a whole-sample statistic through rule 11 and the gate.
    fn release_statistics(
        &mut self,
        names: &[String],
        build: impl FnOnce(
            &Gate,
            &Dataset,
            &[u64],
            Option<&BooleanArray>,
        ) -> Result<raw::StatisticsTable, EngineError>,
    ) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(dataset.copies(names.iter().map(String::as_str)));
        let keys = self.record_keys(gate, dataset);
        let raw = build(gate, dataset, &keys, mask.as_ref())?;
        let cleared = self.clear_one(&raw.population)?;
        let released = self.releaser.statistics(gate, &cleared, self.origin(), raw);
        self.outputs.push(released);
        Ok(())
    }

    pub(in crate::engine) fn correlate(&mut self) -> Result<(), EngineError> {
        let names = self.numeric_args()?;
        if names.len() < 2 {
            return Err(EngineError::at(
                self.command().span,
                "write correlate <variable> <variable>…",
            ));
        }
        let options = CorrelationOptions {
            covariance: self.flag("covariance"),
            significance: self.flag("sig"),
            obs: self.flag("obs"),
            pairwise: self.flag("pairwise"),
        };
        let (dataset_name, dataset) = self.populated()?;
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(dataset.copies(names.iter().map(String::as_str)));
        let keys = self.record_keys(gate, dataset);
        let (raw, pair_populations) =
            correlation_raw(gate, dataset, &keys, &names, options, mask.as_ref())?;
        // Pairwise, each pair's units are a population of their own (rule 11).
        let cleared =
            self.clear_all(&pair_populations.iter().chain([&raw.population]).collect::<Vec<_>>())?;
        let released = self.releaser.statistics(gate, &cleared, self.origin(), raw);
        self.outputs.push(released);
        Ok(())
    }

    pub(in crate::engine) fn normaltest(&mut self) -> Result<(), EngineError> {
        let names = self.numeric_args()?;
        if names.is_empty() {
            return Err(EngineError::at(self.command().span, "write normaltest <variable>…"));
        }
        self.release_statistics(&names.clone(), |gate, dataset, keys, mask| {
            normality_raw(gate, dataset, keys, &names, mask)
        })
    }

    pub(in crate::engine) fn anova(&mut self) -> Result<(), EngineError> {
        let names = self.names_in_args()?;
        let (dataset_name, dataset) = self.populated()?;
        for (n, span) in &names {
            dataset.require(n, dataset_name).map_err(|e| e.with_span(*span))?;
        }
        let [(dependent, _), factors @ ..] = names.as_slice() else {
            return Err(EngineError::at(self.command().span, "write anova <dependent> <factor>…"));
        };
        if factors.is_empty() {
            return Err(EngineError::at(self.command().span, "write anova <dependent> <factor>…"));
        }
        let posthoc = self.flag("posthoc");
        if posthoc && factors.len() > 1 {
            return Err(EngineError::at(
                self.option_span("posthoc"),
                "posthoc compares the levels of one factor: run anova <dependent> <factor>, posthoc for each factor",
            ));
        }
        let constant = !self.flag("noconstant");
        let dependent = dependent.clone();
        let factors: Vec<String> = factors.iter().map(|(f, _)| f.clone()).collect();
        let names: Vec<String> =
            std::iter::once(dependent.clone()).chain(factors.clone()).collect();
        self.release_statistics(&names, |gate, dataset, keys, mask| {
            anova_raw(gate, dataset, keys, &dependent, &factors, mask, constant)
        })?;
        if posthoc {
            self.release_statistics(&names, |gate, dataset, keys, mask| {
                posthoc_raw(gate, dataset, keys, &dependent, &factors[0], mask)
            })?;
        }
        Ok(())
    }

    pub(in crate::engine) fn ci(&mut self) -> Result<(), EngineError> {
        let names = self.numeric_args()?;
        if names.is_empty() {
            return Err(EngineError::at(self.command().span, "write ci <variable>…"));
        }
        let level = self.confidence_level()?;
        let (dataset_name, dataset) = self.populated()?;
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(dataset.copies(names.iter().map(String::as_str)));
        let keys = self.record_keys(gate, dataset);
        let summaries = summarize_raw(gate, dataset, &keys, &names, mask.as_ref(), false, false)?;
        let cleared =
            self.clear_all(&summaries.iter().map(|s| &s.population).collect::<Vec<_>>())?;
        let released = self.releaser.mean_intervals(
            gate,
            &cleared,
            self.origin(),
            raw::MeanIntervals { summaries, level },
        );
        self.outputs.push(released);
        Ok(())
    }
}
