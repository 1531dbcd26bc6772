//! regress: ordinary least squares with classical, HC1-robust or cluster-robust standard
//! errors, as Stata and statsmodels compute them. Linear algebra by nalgebra, distributions by
//! statrs.

use crate::disclosure::memory::Rule11Check;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, Float64Array};
use nalgebra::{DMatrix, DVector};
use shared::script::{TokenKind, Verb};
use statrs::distribution::{Continuous, ContinuousCDF, Normal, StudentsT};

use super::dataset::InSample;
use super::dataset::{Dataset, VarInfo, Variable};
use super::dataset::{display, levels, numbers, numbers_of};
use super::describe::screened;
use super::transform::valid_name;
use super::{EngineError, Step};
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::raw::{self, Contributors};
use crate::stats::iv::IvColumns;
pub use crate::stats::iv::IvEstimator;
pub use crate::stats::likelihood::Likelihood;
use crate::stats::likelihood::{self, FitFailure, Observations, Variance};
use crate::stats::ols::OlsFailure;

/// A model term as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Continuous(String),
    /// `i.var`: a dummy per level but the first.
    Factor(String),
    /// `a#b`: the products of its parts' columns (each part continuous or a factor, whose
    /// levels but the first count), as Stata's factor-variable interactions.
    Interaction(Vec<Term>),
}

impl Term {
    /// The dataset variables the term reads.
    pub fn variables(&self) -> Vec<&str> {
        match self {
            Term::Continuous(v) | Term::Factor(v) => vec![v.as_str()],
            Term::Interaction(parts) => parts.iter().flat_map(Term::variables).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Errors {
    Classical,
    Robust,
    Cluster(String),
}

#[derive(Clone, Debug)]
pub struct OlsRequest {
    pub dependent: String,
    pub terms: Vec<Term>,
    pub constant: bool,
    pub errors: Errors,
    /// Confidence level in percent.
    pub level: f64,
}

/// Dense X'X costs k² per row; beyond this many parameters a model is refused before fitting.
const MAX_PARAMETERS: usize = 200;

/// The level index of each row of a factor, shared by its dummy columns.
type LevelRows = std::sync::Arc<Vec<Option<usize>>>;

/// One column of the design matrix.
enum Column {
    Values(Vec<Option<f64>>),
    Dummy {
        rows: std::sync::Arc<Vec<Option<usize>>>,
        level: usize,
    },
    /// An interaction column: the product of continuous values and of level dummies.
    Product {
        values: Vec<std::sync::Arc<Vec<Option<f64>>>>,
        dummies: Vec<(LevelRows, usize)>,
    },
    Constant,
}

/// The variables a design column is made of, so a margin can change one variable in every
/// column it enters.
#[derive(Clone, Debug)]
enum Source {
    Value(String),
    /// A factor's dummy: (variable, level, label).
    Dummy(String, usize, String),
    Product {
        values: Vec<String>,
        dummies: Vec<(String, usize, String)>,
    },
    Constant,
}

/// A change to one variable in every column: its derivative (for a continuous variable), a
/// value it is set to (0 or 1 for a 0/1 one), or a level a factor is set to (`None`: the base,
/// which no dummy marks).
#[derive(Clone, Copy, Debug)]
enum Change<'a> {
    Derivative(&'a str),
    Set(&'a str, f64),
    Level(&'a str, Option<usize>),
}

/// The design matrix of a model, its estimation sample and what the gate needs to know about
/// that sample. Shared by every model command.
pub(in crate::engine) struct Design {
    pub(in crate::engine) names: Vec<String>,
    columns: Vec<Column>,
    sources: Vec<Source>,
    /// The index in `request.terms` each column comes from; `None` for the constant.
    terms: Vec<Option<usize>>,
    /// The dependent variable's values.
    pub(in crate::engine) y: Vec<Option<f64>>,
    /// Rows in the estimation sample: inside the condition, every value present.
    pub(in crate::engine) sample: Vec<bool>,
    /// Rows a fitted model can predict (`regress-predict` …): inside the condition, every
    /// regressor present, and each factor at a level the sample has (a level the model never
    /// saw has no coefficient). The dependent variable may be missing.
    predictable: Vec<bool>,
    /// Units in the sample.
    pub(in crate::engine) n: usize,
    pub(in crate::engine) contributors: Contributors,
    pub(in crate::engine) population: PopulationSketch,
    /// Units per level of each `i.` term, and of each 0/1 regressor (rule 9).
    pub(in crate::engine) categorical_levels: Vec<(String, Vec<u64>)>,
    pub(in crate::engine) smallest_crossing: Option<u64>,
    /// The largest leverage or column share of one unit (`largest_influence`), for rule 9.
    pub(in crate::engine) influence: f64,
}

impl Design {
    pub(in crate::engine) fn new(
        dataset: &Dataset,
        keys: &[u64],
        request: &OlsRequest,
        mask: Option<&BooleanArray>,
        cluster: Option<&[Option<String>]>,
    ) -> Result<Design, EngineError> {
        let dependent = dataset
            .variable(&request.dependent)
            .ok_or_else(|| EngineError::new(format!("no variable {}", request.dependent)))?;
        Design::with_outcome(dataset, keys, request, mask, cluster, numbers(dependent)?)
    }

    /// As `new`, with the outcome given: mlogit's is the level index of a categorical one.
    fn with_outcome(
        dataset: &Dataset,
        keys: &[u64],
        request: &OlsRequest,
        mask: Option<&BooleanArray>,
        cluster: Option<&[Option<String>]>,
        y: Vec<Option<f64>>,
    ) -> Result<Design, EngineError> {
        let get = |name: &str| {
            dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))
        };
        // Each term's values, then the estimation sample: rows with every value present.
        enum TermData {
            Values(String, Vec<Option<f64>>),
            Factor(String, LevelRows, Vec<String>),
            /// (name, values) of continuous parts; (name, levels, labels) of factor parts.
            Interaction(
                Vec<(String, std::sync::Arc<Vec<Option<f64>>>)>,
                Vec<(String, LevelRows, Vec<String>)>,
            ),
        }
        let mut data = Vec::new();
        for term in &request.terms {
            data.push(match term {
                Term::Continuous(name) => TermData::Values(name.clone(), numbers(get(name)?)?),
                Term::Factor(name) => {
                    let (rows, labels) = levels(get(name)?, false, false)?;
                    TermData::Factor(name.clone(), std::sync::Arc::new(rows), labels)
                }
                Term::Interaction(parts) => {
                    let (mut values, mut factors) = (Vec::new(), Vec::new());
                    for part in parts {
                        match part {
                            Term::Continuous(name) => values
                                .push((name.clone(), std::sync::Arc::new(numbers(get(name)?)?))),
                            Term::Factor(name) => {
                                let (rows, labels) = levels(get(name)?, false, false)?;
                                factors.push((name.clone(), std::sync::Arc::new(rows), labels));
                            }
                            Term::Interaction(_) => {
                                return Err(EngineError::new(
                                    "an interaction's parts are variables, c.var or i.var",
                                ));
                            }
                        }
                    }
                    TermData::Interaction(values, factors)
                }
            });
        }
        let mut predictable: Vec<bool> = (0..dataset.len())
            .map(|i| {
                mask.is_none_or(|m| m.value(i))
                    && data.iter().all(|d| match d {
                        TermData::Values(_, v) => v[i].is_some(),
                        TermData::Factor(_, rows, _) => rows[i].is_some(),
                        TermData::Interaction(values, factors) => {
                            values.iter().all(|(_, v)| v[i].is_some())
                                && factors.iter().all(|(_, rows, _)| rows[i].is_some())
                        }
                    })
            })
            .collect();
        let sample: Vec<bool> = (0..dataset.len())
            .map(|i| predictable[i] && y[i].is_some() && cluster.is_none_or(|c| c[i].is_some()))
            .collect();
        // A factor level outside the sample has no coefficient: its rows cannot be predicted.
        let mut seen_levels_only = |rows: &[Option<usize>], present: &[bool]| {
            for (i, r) in rows.iter().enumerate() {
                predictable[i] &= r.is_some_and(|l| present[l]);
            }
        };
        let mut names = Vec::new();
        let mut columns = Vec::new();
        let mut sources = Vec::new();
        let mut terms = Vec::new();
        // (variable, level per row, number of levels)
        let mut factors: Vec<(String, LevelRows, usize)> = Vec::new();
        // 0/1 regressors: (variable, units at 0, units at 1), None once another value shows.
        let mut binary: Vec<(String, Option<[u64; 2]>)> = Vec::new();
        // Units in each combination of an interaction's factors.
        let mut categorical_levels_extra: Vec<(String, Vec<u64>)> = Vec::new();
        for (term, d) in data.into_iter().enumerate() {
            match d {
                TermData::Values(name, values) => {
                    terms.push(Some(term));
                    let counts = values.iter().zip(&sample).filter(|(_, s)| **s).try_fold(
                        [0u64; 2],
                        |mut c, (v, _)| match v {
                            Some(x) if *x == 0.0 || *x == 1.0 => {
                                c[*x as usize] += 1;
                                Some(c)
                            }
                            _ => None,
                        },
                    );
                    binary.push((name.clone(), counts));
                    sources.push(Source::Value(name.clone()));
                    names.push(name);
                    columns.push(Column::Values(values));
                }
                TermData::Factor(name, rows, labels) => {
                    // Only levels present in the sample get a dummy; the first is the base.
                    let mut present = vec![false; labels.len()];
                    for (i, r) in rows.iter().enumerate() {
                        if let (true, Some(l)) = (sample[i], r) {
                            present[*l] = true;
                        }
                    }
                    seen_levels_only(&rows, &present);
                    for (level, label) in
                        labels.iter().enumerate().filter(|(l, _)| present[*l]).skip(1)
                    {
                        names.push(format!("{name}={label}"));
                        sources.push(Source::Dummy(name.clone(), level, label.clone()));
                        columns.push(Column::Dummy { rows: rows.clone(), level });
                        terms.push(Some(term));
                    }
                    factors.push((name, rows, labels.len()));
                }
                TermData::Interaction(values, parts) => {
                    // Each combination of the factor parts' levels but the first (present in
                    // the sample), times the continuous parts; rule 9 sees the combinations
                    // as the levels of one categorical term.
                    let mut combinations: Vec<Vec<usize>> = vec![Vec::new()];
                    let mut counts: HashMap<Vec<usize>, u64> = HashMap::new();
                    for (i, _) in sample.iter().enumerate().filter(|(_, s)| **s) {
                        let combo: Vec<usize> =
                            parts.iter().map(|(_, rows, _)| rows.in_sample(i)).collect();
                        *counts.entry(combo).or_default() += 1;
                    }
                    for (_, rows, labels) in &parts {
                        let mut present = vec![false; labels.len()];
                        for (i, r) in rows.iter().enumerate() {
                            if let (true, Some(l)) = (sample[i], r) {
                                present[*l] = true;
                            }
                        }
                        seen_levels_only(rows, &present);
                        let levels: Vec<usize> =
                            (0..labels.len()).filter(|&l| present[l]).skip(1).collect();
                        combinations = combinations
                            .into_iter()
                            .flat_map(|c| {
                                levels.iter().map(move |&l| {
                                    let mut c = c.clone();
                                    c.push(l);
                                    c
                                })
                            })
                            .collect();
                    }
                    for combination in combinations {
                        let mut label: Vec<String> =
                            values.iter().map(|(name, _)| name.clone()).collect();
                        label.extend(
                            parts
                                .iter()
                                .zip(&combination)
                                .map(|((name, _, labels), &l)| format!("{name}={}", labels[l])),
                        );
                        names.push(label.join("#"));
                        sources.push(Source::Product {
                            values: values.iter().map(|(name, _)| name.clone()).collect(),
                            dummies: parts
                                .iter()
                                .zip(&combination)
                                .map(|((name, _, labels), &l)| (name.clone(), l, labels[l].clone()))
                                .collect(),
                        });
                        columns.push(Column::Product {
                            values: values.iter().map(|(_, v)| v.clone()).collect(),
                            dummies: parts
                                .iter()
                                .zip(&combination)
                                .map(|((_, rows, _), &l)| (rows.clone(), l))
                                .collect(),
                        });
                        terms.push(Some(term));
                    }
                    if !parts.is_empty() {
                        let name: Vec<&str> = parts.iter().map(|(n, _, _)| n.as_str()).collect();
                        categorical_levels_extra
                            .push((name.join("#"), counts.into_values().collect()));
                    }
                }
            }
        }
        if request.constant {
            names.push("constant".into());
            sources.push(Source::Constant);
            columns.push(Column::Constant);
            terms.push(None);
        }
        let k = columns.len();
        if k > MAX_PARAMETERS {
            return Err(EngineError::new(format!(
                "the model has {k} parameters, more than the {MAX_PARAMETERS} this server fits: group the levels of the i. terms with recode"
            )));
        }
        let mut contributors = Contributors::default();
        let mut population = PopulationSketch::default();
        let mut n = 0;
        let mut level_counts: Vec<Vec<u64>> = factors.iter().map(|(_, _, l)| vec![0; *l]).collect();
        let mut crossings: HashMap<Vec<usize>, u64> = HashMap::new();
        for i in (0..dataset.len()).filter(|&i| sample[i]) {
            n += 1;
            contributors.add(keys[i]);
            dataset.add_to_population(&mut population, i);
            if !factors.is_empty() {
                let combo: Vec<usize> =
                    factors.iter().map(|(_, rows, _)| rows.in_sample(i)).collect();
                for (f, &l) in combo.iter().enumerate() {
                    level_counts[f][l] += 1;
                }
                *crossings.entry(combo).or_default() += 1;
            }
        }
        let mut categorical_levels: Vec<(String, Vec<u64>)> = factors
            .iter()
            .zip(level_counts)
            .map(|((name, _, _), counts)| {
                (name.clone(), counts.into_iter().filter(|&c| c > 0).collect())
            })
            .collect();
        // A 0/1 regressor is a categorical one by another name: its levels need units too.
        categorical_levels
            .extend(binary.into_iter().filter_map(|(name, c)| Some((name, c?.to_vec()))));
        categorical_levels.extend(categorical_levels_extra);
        if n <= k {
            return Err(EngineError::new(
                "the estimation sample has no more units than parameters: check for missing values or use fewer terms",
            ));
        }
        let mut design = Design {
            names,
            columns,
            sources,
            terms,
            y,
            sample,
            predictable,
            n,
            contributors,
            population,
            categorical_levels,
            smallest_crossing: crossings.values().min().copied(),
            influence: 0.0,
        };
        design.influence = design.largest_influence();
        Ok(design)
    }

    /// The most any one unit of the sample weighs in the design: the larger of its leverage
    /// (hᵢ = xᵢ′(X′X)⁻¹xᵢ) and its share of a column's sum of squares. Near 1, the fit passes
    /// through that unit and its coefficients are its values (`exp((w − wₖ)/s)` is 1 for one
    /// unit and 0 for the rest, with no comparison for rule 4 to see). 0 when X′X is singular:
    /// the estimators refuse that case themselves.
    fn largest_influence(&self) -> f64 {
        let k = self.k();
        let mut xtx = DMatrix::<f64>::zeros(k, k);
        let mut squares = vec![0.0f64; k];
        let mut largest_square = vec![0.0f64; k];
        let mut x = vec![0.0; k];
        for i in (0..self.sample.len()).filter(|&i| self.sample[i]) {
            self.row(i, &mut x);
            let row = DVector::from_column_slice(&x);
            xtx.ger(1.0, &row, &row, 1.0);
            for j in 0..k {
                let square = x[j] * x[j];
                squares[j] += square;
                largest_square[j] = largest_square[j].max(square);
            }
        }
        let column_share = (0..k)
            .filter(|&j| squares[j] > 0.0)
            .map(|j| largest_square[j] / squares[j])
            .fold(0.0, f64::max);
        let Some(inverse) = xtx.cholesky().map(|c| c.inverse()) else { return column_share };
        let mut leverage = 0.0f64;
        for i in (0..self.sample.len()).filter(|&i| self.sample[i]) {
            self.row(i, &mut x);
            let row = DVector::from_column_slice(&x);
            leverage = leverage.max((row.transpose() * &inverse * &row)[(0, 0)]);
        }
        leverage.max(column_share)
    }

    pub(in crate::engine) fn k(&self) -> usize {
        self.columns.len()
    }

    pub(in crate::engine) fn row(&self, i: usize, x: &mut [f64]) {
        for (j, c) in self.columns.iter().enumerate() {
            x[j] = match c {
                Column::Values(v) => v[i].unwrap_or(0.0),
                Column::Dummy { rows, level } => f64::from(rows[i] == Some(*level)),
                Column::Product { values, dummies } => {
                    let dummy = dummies.iter().all(|(rows, level)| rows[i] == Some(*level));
                    values.iter().map(|v| v[i].unwrap_or(0.0)).product::<f64>() * f64::from(dummy)
                }
                Column::Constant => 1.0,
            };
        }
    }

    /// Row i with `change` made to one variable in every column it enters.
    fn changed_row(&self, i: usize, x: &mut [f64], change: Change<'_>) {
        let level_of = |name: &str, rows: &LevelRows, level: usize| match change {
            Change::Level(f, to) if f == name => f64::from(to == Some(level)),
            _ => f64::from(rows[i] == Some(level)),
        };
        for (j, (c, source)) in self.columns.iter().zip(&self.sources).enumerate() {
            x[j] = match (c, source) {
                (Column::Values(v), Source::Value(name)) => match change {
                    Change::Derivative(d) if d == name => 1.0,
                    Change::Derivative(_) => 0.0,
                    Change::Set(s, value) if s == name => value,
                    _ => v[i].unwrap_or(0.0),
                },
                (Column::Dummy { rows, level }, Source::Dummy(name, _, _)) => match change {
                    Change::Derivative(_) => 0.0,
                    _ => level_of(name, rows, *level),
                },
                (
                    Column::Product { values, dummies },
                    Source::Product { values: names, dummies: factors },
                ) => {
                    let dummy: f64 = dummies
                        .iter()
                        .zip(factors)
                        .map(|((rows, level), (name, _, _))| level_of(name, rows, *level))
                        .product();
                    let value = |k: usize| values[k][i].unwrap_or(0.0);
                    let product: f64 = match change {
                        // The product rule: one occurrence differentiated at a time.
                        Change::Derivative(d) => (0..values.len())
                            .filter(|&k| names[k] == d)
                            .map(|k| {
                                (0..values.len()).filter(|&m| m != k).map(value).product::<f64>()
                            })
                            .sum(),
                        Change::Set(s, to) => (0..values.len())
                            .map(|k| if names[k] == s { to } else { value(k) })
                            .product(),
                        Change::Level(..) => (0..values.len()).map(value).product(),
                    };
                    product * dummy
                }
                (Column::Constant, _) => f64::from(!matches!(change, Change::Derivative(_))),
                _ => unreachable!("a column and its source are built together"),
            };
        }
    }

    /// A variable's value at row i, from any column it enters.
    fn value_of(&self, name: &str, i: usize) -> Option<f64> {
        self.columns.iter().zip(&self.sources).find_map(|(c, source)| match (c, source) {
            (Column::Values(v), Source::Value(n)) if n == name => v[i],
            (Column::Product { values, .. }, Source::Product { values: names, .. }) => {
                names.iter().position(|n| n == name).and_then(|k| values[k][i])
            }
            _ => None,
        })
    }

    /// x'β for every row the model can predict, `None` for the others.
    pub(in crate::engine) fn linear_predictions(&self, beta: &[f64]) -> Vec<Option<f64>> {
        let mut x = vec![0.0; self.k()];
        (0..self.predictable.len())
            .map(|i| {
                self.predictable[i].then(|| {
                    self.row(i, &mut x);
                    x.iter().zip(beta).map(|(a, b)| a * b).sum()
                })
            })
            .collect()
    }

    /// The outcome of sample row `i` (see [`InSample`]).
    pub(in crate::engine) fn outcome(&self, i: usize) -> f64 {
        self.y.in_sample(i)
    }

    /// The rows of the estimation sample.
    pub(in crate::engine) fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.sample.len()).filter(|&i| self.sample[i])
    }
}

/// Each row's cluster (`cluster(v)`), as text; `None` without clustering.
fn cluster_keys(
    dataset: &Dataset,
    errors: &Errors,
) -> Result<Option<Vec<Option<String>>>, EngineError> {
    let Errors::Cluster(name) = errors else { return Ok(None) };
    let v =
        dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))?;
    Ok(Some(
        (0..dataset.len()).map(|i| (!v.values.is_null(i)).then(|| display(&v.values, i))).collect(),
    ))
}

/// cluster(v) needs two clusters that each count as many (rule 13): decided on exact counts,
/// "fewer than two clusters" would say whether a second cluster of one or two units exists.
fn check_two_clusters(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    errors: &Errors,
    mask: Option<&BooleanArray>,
) -> Result<(), EngineError> {
    let Some(clusters) = cluster_keys(dataset, errors)? else { return Ok(()) };
    let mut units: HashMap<String, raw::Contributors> = HashMap::new();
    for (i, cluster) in clusters.into_iter().enumerate() {
        if let Some(c) = cluster
            && mask.is_none_or(|m| m.is_valid(i) && m.value(i))
        {
            units.entry(c).or_default().add(keys[i]);
        }
    }
    if units.values().filter(|&&c| gate.counts_as_many(c)).count() < 2 {
        return Err(EngineError::new(
            "cluster() needs at least two clusters in the estimation sample",
        ));
    }
    Ok(())
}

/// OLS before disclosure.
pub fn ols_raw(
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let cluster = cluster_keys(dataset, &request.errors)?;
    let design = Design::new(dataset, keys, request, mask, cluster.as_deref())?;
    let (k, names) = (design.k(), &design.names);
    // The fit itself is pure numerics (stats::ols), over the sample's observations.
    let rows: Vec<usize> = design.rows().collect();
    let outcome: Vec<f64> = rows.iter().map(|&i| design.outcome(i)).collect();
    let cluster_of = sample_clusters(cluster.as_deref(), &rows);
    let variance = variance_of(&request.errors, cluster_of.as_deref());
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit =
        crate::stats::ols::fit(k, &regressors, &outcome, variance).map_err(
            |failure| match failure {
                OlsFailure::Collinear => EngineError::new(format!(
                    "the terms are collinear (one is a combination of others): remove one of {}",
                    names.join(", ")
                )),
                OlsFailure::OneCluster => one_cluster(),
            },
        )?;
    let (beta, covariance, df_t) = (&fit.beta, &fit.covariance, fit.df_t);
    let (rss, sum_y, sum_y2, df_resid) = (fit.rss, fit.sum_y, fit.sum_y2, fit.df_resid);
    let (nf, kf) = (design.n as f64, k as f64);
    let sigma2 = rss / df_resid;
    let t = StudentsT::new(0.0, 1.0, df_t).map_err(|e| EngineError::internal(e.to_string()))?;
    let critical = t.inverse_cdf(1.0 - (1.0 - request.level / 100.0) / 2.0);
    let coefficients = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let estimate = beta[j];
            let se = covariance[(j, j)].max(0.0).sqrt();
            let statistic = estimate / se;
            raw::Coefficient {
                term: name.clone(),
                estimate,
                std_error: se,
                statistic,
                p_value: 2.0 * (1.0 - t.cdf(statistic.abs())),
                ci_low: estimate - critical * se,
                ci_high: estimate + critical * se,
                is_constant: name == "constant" && request.constant,
            }
        })
        .collect();
    let tss = if request.constant { sum_y2 - sum_y * sum_y / nf } else { sum_y2 };
    let r2 = 1.0 - rss / tss;
    let df_model = if request.constant { kf - 1.0 } else { kf };
    let mut statistics = vec![
        ("R²".to_owned(), r2),
        (
            "adjusted R²".to_owned(),
            1.0 - (1.0 - r2) * (nf - f64::from(request.constant)) / df_resid,
        ),
        ("root MSE".to_owned(), sigma2.sqrt()),
        ("model df".to_owned(), df_model),
        ("residual df".to_owned(), df_resid),
    ];
    if request.errors == Errors::Classical && df_model > 0.0 {
        statistics.push(("F".to_owned(), ((tss - rss) / df_model) / sigma2));
    }
    Ok(raw::Model {
        population: design.population,
        title: match request.errors {
            Errors::Classical => "Linear regression (OLS)".into(),
            Errors::Robust => "Linear regression (OLS), robust (HC1) standard errors".into(),
            Errors::Cluster(ref c) => {
                format!("Linear regression (OLS), standard errors clustered by {c}")
            }
        },
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "t",
        coefficients,
        contributors: design.contributors,
        parameters: k,
        residual_df: df_resid,
        t_test: (!matches!(request.errors, Errors::Cluster(_)))
            .then_some((df_resid, request.level)),
        categorical_levels: design.categorical_levels,
        outcome_levels: None,
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    })
}

/// `regress …, vif standardize`: each term's variance inflation factor 1 / (1 − R²ⱼ) (the
/// diagonal of the inverse correlation matrix of the regressors) and its standardized
/// coefficient bⱼ·sd(xⱼ)/sd(y) from the `fitted` model, over the model's estimation sample.
pub fn regression_diagnostics(
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    mask: Option<&BooleanArray>,
    vif: bool,
    fitted: Option<&raw::Model>,
) -> Result<raw::StatisticsTable, EngineError> {
    let design = Design::new(dataset, keys, request, mask, None)?;
    let terms: Vec<usize> = (0..design.k()).filter(|&j| design.terms[j].is_some()).collect();
    let m = terms.len();
    let n = design.n as f64;
    // Centred cross-products of the terms and y (y last).
    let mut sums = vec![0.0; m + 1];
    let mut products = DMatrix::<f64>::zeros(m + 1, m + 1);
    let mut row = vec![0.0; design.k()];
    let mut v = vec![0.0; m + 1];
    for i in design.rows() {
        design.row(i, &mut row);
        for (a, &j) in terms.iter().enumerate() {
            v[a] = row[j];
        }
        v[m] = design.outcome(i);
        for a in 0..=m {
            sums[a] += v[a];
            for b in 0..=a {
                products[(a, b)] += v[a] * v[b];
            }
        }
    }
    let covariance = DMatrix::from_fn(m + 1, m + 1, |a, b| {
        let (a, b) = (a.max(b), a.min(b));
        (products[(a, b)] - sums[a] * sums[b] / n) / (n - 1.0)
    });
    let sd = |a: usize| covariance[(a, a)].sqrt();
    let mut columns = Vec::new();
    let mut values = vec![Vec::new(); m];
    if vif {
        let correlation = DMatrix::from_fn(m, m, |a, b| covariance[(a, b)] / (sd(a) * sd(b)));
        let inverse = correlation.try_inverse().ok_or_else(|| {
            EngineError::new("the terms are collinear (one is a combination of others): remove one")
        })?;
        columns.push("VIF".to_owned());
        for (a, row) in values.iter_mut().enumerate() {
            row.push(Some(inverse[(a, a)]));
        }
    }
    if let Some(fitted) = fitted {
        columns.push("standardized coef".to_owned());
        for (a, &j) in terms.iter().enumerate() {
            let b = fitted.coefficients[j].estimate;
            values[a].push(Some(b * sd(a) / sd(m)));
        }
    }
    Ok(raw::StatisticsTable {
        title: format!("Diagnostics of the regression of {}", request.dependent),
        row_variable: "term".into(),
        row_labels: terms.iter().map(|&j| design.names[j].clone()).collect(),
        column_labels: columns,
        values,
        contributors: design.contributors,
        levels: design.categorical_levels,
        restate: raw::Restate::Nothing,
        notes: vec![
            "VIF = 1 / (1 − R²) of each term on the others; standardized coefficients are b × sd(term) / sd(dependent), over the estimation sample.".into(),
        ],
        population: design.population,
    })
}

/// The user's message for a maximum-likelihood fit that failed; `predicted` names what a term
/// may predict perfectly (the outcome, a level of it, the event).
pub(in crate::engine) fn fit_failure(failure: FitFailure, predicted: &str) -> EngineError {
    match failure {
        FitFailure::NotConverged => EngineError::new(format!(
            "the model did not converge: a term may predict {predicted} perfectly, or terms are collinear; remove one or group its levels"
        )),
        FitFailure::Singular => {
            EngineError::new("the model's information matrix is singular: remove a collinear term")
        }
        FitFailure::OneCluster => one_cluster(),
    }
}

fn one_cluster() -> EngineError {
    EngineError::new("cluster() needs at least two clusters in the estimation sample")
}

/// Each sample row's cluster key, in the order of `rows`, for the fits of `crate::stats`.
fn sample_clusters<'c>(
    cluster: Option<&'c [Option<String>]>,
    rows: &[usize],
) -> Option<Vec<&'c str>> {
    cluster.map(|c| {
        rows.iter()
            .map(|&i| {
                let key = c[i].as_deref();
                debug_assert!(key.is_some(), "row {i} is outside the sample");
                key.unwrap_or_default()
            })
            .collect()
    })
}

/// The covariance a model's `Errors` ask for, over the sample's cluster keys.
fn variance_of<'k>(errors: &Errors, clusters: Option<&'k [&'k str]>) -> Variance<'k> {
    match errors {
        Errors::Classical => Variance::Information,
        Errors::Robust => Variance::Robust,
        // Without keys the fit answers that there are fewer than two clusters.
        Errors::Cluster(_) => Variance::Clustered(clusters.unwrap_or_default()),
    }
}

/// A coefficient with a z test and a normal interval at `level` percent; `exponentiate`
/// shows exp(b) (odds, incidence-rate or hazard ratios) with its delta-method error, the test
/// staying on b.
pub(in crate::engine) fn z_coefficient(
    term: String,
    b: f64,
    se: f64,
    level: f64,
    exponentiate: bool,
    is_constant: bool,
) -> raw::Coefficient {
    let normal = Normal::standard();
    let critical = normal.inverse_cdf(1.0 - (1.0 - level / 100.0) / 2.0);
    let shown = |v: f64| if exponentiate { v.exp() } else { v };
    raw::Coefficient {
        term,
        estimate: shown(b),
        std_error: if exponentiate { b.exp() * se } else { se },
        statistic: b / se,
        p_value: 2.0 * normal.sf((b / se).abs()),
        ci_low: shown(b - critical * se),
        ci_high: shown(b + critical * se),
        is_constant,
    }
}

/// logit, probit, poisson or negative-binomial by maximum likelihood (Newton–Raphson on the
/// observed information, as statsmodels and Stata do), before disclosure. For logit and probit
/// the outcome is 1 where the dependent variable is non-zero, as in Stata, and both outcomes
/// need units (rule 9). `exponentiate` reports exp(b) — odds ratios for logit, incidence-rate
/// ratios for the count models — with delta-method errors.
#[allow(clippy::too_many_arguments)]
pub fn likelihood_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    link: Likelihood,
    odds_ratios: bool,
    mask: Option<&BooleanArray>,
    exposure: Option<&str>,
    margins: Option<Margins>,
) -> Result<(raw::Model, Option<raw::Model>), EngineError> {
    // exposure(e): ln e is an offset with coefficient 1, for counts over time or population
    // at risk. Rows without a positive exposure leave the sample.
    let offsets: Option<Vec<Option<f64>>> = match exposure {
        None => None,
        Some(name) => {
            let values =
                numbers(dataset.variable(name).ok_or_else(|| {
                    EngineError::new(format!("no variable {name} for exposure()"))
                })?)?;
            let values = screened(gate, keys, values, mask, |v| v > 0.0).ok_or_else(|| {
                EngineError::new(format!(
                    "exposure({name}) must be positive: {name} has values of 0 or less; keep only rows with {name} > 0"
                ))
            })?;
            Some(values.into_iter().map(|v| v.map(f64::ln)).collect())
        }
    };
    // A count model's rows with a negative count leave the sample; only many of them stop the
    // command (rule 13), so the error cannot be aimed at one unit.
    let counts = matches!(link, Likelihood::Poisson | Likelihood::NegativeBinomial);
    let counts_kept: Option<Vec<Option<f64>>> = if counts {
        let values = numbers_of(dataset, &request.dependent)?;
        Some(screened(gate, keys, values, mask, |y| y >= 0.0).ok_or_else(|| {
            let command = if link == Likelihood::NegativeBinomial {
                "negative-binomial"
            } else {
                "poisson"
            };
            EngineError::new(format!(
                "{command} models counts: {} has negative values; model it with regress, or recode it",
                request.dependent
            ))
        })?)
    } else {
        None
    };
    // Rows without a count (missing, or screened out) or without an exposure leave the sample.
    let combined: Option<BooleanArray> = (offsets.is_some() || counts_kept.is_some()).then(|| {
        (0..dataset.len())
            .map(|i| {
                Some(
                    mask.is_none_or(|m| m.is_valid(i) && m.value(i))
                        && offsets.as_ref().is_none_or(|o| o[i].is_some())
                        && counts_kept.as_ref().is_none_or(|y| y[i].is_some()),
                )
            })
            .collect()
    });
    let mask = combined.as_ref().or(mask);
    let cluster = cluster_keys(dataset, &request.errors)?;
    let design = Design::new(dataset, keys, request, mask, cluster.as_deref())?;
    let k = design.k();
    let rows: Vec<usize> = design.rows().collect();
    let dispersion = link == Likelihood::NegativeBinomial;
    let outcome: Vec<f64> = rows
        .iter()
        .map(|&i| {
            let y = design.outcome(i);
            if counts { y } else { f64::from(y != 0.0) }
        })
        .collect();
    let ones = outcome.iter().filter(|&&v| v == 1.0).count() as u64;
    let outcome_levels = (!counts).then(|| vec![design.n as u64 - ones, ones]);
    // The level rules come before the fit: a fit that fails on a small level would say why.
    if let Some(levels) = &outcome_levels {
        gate.check_levels(&request.dependent, levels, true)?;
    }
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    // The fit itself is pure numerics (stats::likelihood), over the sample's observations.
    let sample_offsets: Option<Vec<f64>> =
        offsets.as_ref().map(|o| rows.iter().map(|&i| o.in_sample(i)).collect());
    let cluster_of = sample_clusters(cluster.as_deref(), &rows);
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let variance = variance_of(&request.errors, cluster_of.as_deref());
    let observations = Observations {
        width: k,
        regressors: &regressors,
        outcome: &outcome,
        offsets: sample_offsets.as_deref(),
    };
    let fit = likelihood::fit(link, &observations, variance, super::deadline::expired)
        .map_err(|failure| fit_failure(failure, &request.dependent))?;
    let p = k + usize::from(dispersion);
    let (beta, covariance) = (fit.estimate, fit.covariance);
    let (ll, ll0) = (fit.log_likelihood, fit.null_log_likelihood);
    let coefficients = design
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let se = covariance[(j, j)].max(0.0).sqrt();
            let constant = name == "constant" && request.constant;
            z_coefficient(name.clone(), beta[j], se, request.level, odds_ratios, constant)
        })
        .collect();
    let df_model = (k - usize::from(request.constant)) as f64;
    let chi2 = 2.0 * (ll - ll0);
    let chi2_p = statrs::distribution::ChiSquared::new(df_model.max(1.0))
        .map(|d| 1.0 - d.cdf(chi2))
        .unwrap_or(f64::NAN);
    let mut statistics = vec![
        ("log likelihood".to_owned(), ll),
        ("LR chi²".to_owned(), chi2),
        ("p (LR chi²)".to_owned(), chi2_p),
        ("pseudo R²".to_owned(), 1.0 - ll / ll0),
        ("model df".to_owned(), df_model),
    ];
    if dispersion {
        let alpha = beta[k].exp();
        statistics.push(("alpha".to_owned(), alpha));
        // The delta method from θ = ln α.
        statistics
            .push(("alpha std. error".to_owned(), alpha * covariance[(k, k)].max(0.0).sqrt()));
    }
    let (name, what, ratio) = match link {
        Likelihood::Logit => ("Logistic regression", ", odds ratios", "odds ratio"),
        Likelihood::Probit => ("Probit regression", "", "coef"),
        Likelihood::Poisson => ("Poisson regression", ", incidence-rate ratios", "IRR"),
        Likelihood::NegativeBinomial => {
            ("Negative binomial regression", ", incidence-rate ratios", "IRR")
        }
    };
    let what = if odds_ratios { what } else { "" };
    let effects = match margins {
        Some(margins) if matches!(link, Likelihood::Logit | Likelihood::Probit) => Some(margins),
        _ => None,
    };
    let effects = if let Some(margins) = effects {
        let coefficients = average_marginal_effects(
            &design,
            &rows,
            (&beta, &covariance),
            link,
            margins,
            request.level,
        );
        let binary = match margins {
            Margins::DyDx => "; discrete change for 0/1 and i. terms",
            Margins::EyDx => "; change in ln P for 0/1 and i. terms",
            Margins::EyEx | Margins::DyEx => "; 0/1 and i. terms have none",
        };
        Some(raw::Model {
            population: design.population.clone(),
            title: format!(
                "Average marginal effects ({}) of the {} model{binary}",
                margins.label(),
                if link == Likelihood::Logit { "logit" } else { "probit" }
            ),
            dependent: request.dependent.clone(),
            estimate_label: margins.label(),
            test_label: "z",
            coefficients,
            contributors: design.contributors,
            parameters: p,
            residual_df: design.n as f64 - p as f64,
            t_test: None,
            categorical_levels: design.categorical_levels.clone(),
            outcome_levels: outcome_levels.clone(),
            smallest_crossing: design.smallest_crossing,
            influence: design.influence,
            absorbed: None,
            statistics: Vec::new(),
        })
    } else {
        None
    };
    let model = raw::Model {
        population: design.population,
        title: format!(
            "{name} (maximum likelihood){what}{}{}",
            exposure.map(|e| format!(", exposure {e}")).unwrap_or_default(),
            match &request.errors {
                Errors::Classical => String::new(),
                Errors::Robust => ", robust standard errors".to_owned(),
                Errors::Cluster(c) => format!(", standard errors clustered by {c}"),
            }
        ),
        dependent: request.dependent.clone(),
        estimate_label: if odds_ratios { ratio } else { "coef" },
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: p,
        residual_df: design.n as f64 - p as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels,
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    };
    Ok((model, effects))
}

/// What `mfx()` averages over the sample, with P = P(y = 1): dP/dx (`dydx`), the elasticity
/// d ln P / d ln x (`eyex`), dP / d ln x (`dyex`) and d ln P / dx (`eydx`), as Stata's
/// margins options of the same names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Margins {
    DyDx,
    EyEx,
    DyEx,
    EyDx,
}

impl Margins {
    pub fn parse(text: &str) -> Option<Margins> {
        match text.trim() {
            "" | "dydx" => Some(Margins::DyDx),
            "eyex" => Some(Margins::EyEx),
            "dyex" => Some(Margins::DyEx),
            "eydx" => Some(Margins::EyDx),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Margins::DyDx => "dy/dx",
            Margins::EyEx => "ey/ex",
            Margins::DyEx => "dy/ex",
            Margins::EyDx => "ey/dx",
        }
    }
}

/// Average marginal effects of a binary model over its estimation sample, with delta-method
/// errors, as statsmodels' `get_margeff(at="overall")` and Stata's `margins, dydx(*)`: for
/// each variable (not each column: a variable in an interaction changes every column it
/// enters), the mean of each unit's derivative for a continuous one; for a 0/1 variable or
/// each level of an `i.` one the mean change from 0 (the base) to 1 (the level) (`dydx`, of
/// P; `eydx`, of ln P), and none for `eyex` and `dyex`, which need a continuous x. The
/// constant has none.
fn average_marginal_effects(
    design: &Design,
    rows: &[usize],
    (beta, covariance): (&DVector<f64>, &DMatrix<f64>),
    link: Likelihood,
    margins: Margins,
    level: f64,
) -> Vec<raw::Coefficient> {
    let normal = Normal::standard();
    let k = design.k();
    // P(y = 1), its derivative and second derivative in η.
    let cdf = |eta: f64| match link {
        Likelihood::Logit => 1.0 / (1.0 + (-eta).exp()),
        _ => normal.cdf(eta),
    };
    let pdf = |eta: f64| match link {
        Likelihood::Logit => {
            let p = 1.0 / (1.0 + (-eta).exp());
            p * (1.0 - p)
        }
        _ => normal.pdf(eta),
    };
    let slope = |eta: f64| match link {
        Likelihood::Logit => {
            let p = 1.0 / (1.0 + (-eta).exp());
            p * (1.0 - p) * (1.0 - 2.0 * p)
        }
        _ => -eta * normal.pdf(eta),
    };
    // The effects, in the order their variables first enter the design.
    enum Effect {
        Continuous(String),
        Binary(String),
        Level(String, usize, String),
    }
    let mut effects: Vec<Effect> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add_value = |name: &String, effects: &mut Vec<Effect>| {
        if seen.insert(name.clone()) {
            let binary = rows
                .iter()
                .all(|&i| matches!(design.value_of(name, i), Some(x) if x == 0.0 || x == 1.0));
            effects.push(if binary {
                Effect::Binary(name.clone())
            } else {
                Effect::Continuous(name.clone())
            });
        }
    };
    let mut levels_seen = std::collections::HashSet::new();
    for source in &design.sources {
        let (values, dummies): (Vec<&String>, Vec<&(String, usize, String)>) = match source {
            Source::Value(name) => (vec![name], vec![]),
            Source::Dummy(..) => (vec![], vec![]),
            Source::Product { values, dummies } => {
                (values.iter().collect(), dummies.iter().collect())
            }
            Source::Constant => (vec![], vec![]),
        };
        for name in values {
            add_value(name, &mut effects);
        }
        let own = match source {
            Source::Dummy(name, level, label) => Some((name, *level, label)),
            _ => None,
        };
        for (name, level, label) in
            own.into_iter().chain(dummies.into_iter().map(|(n, l, b)| (n, *l, b)))
        {
            if levels_seen.insert((name.clone(), level)) {
                effects.push(Effect::Level(name.clone(), level, label.clone()));
            }
        }
    }
    let n = rows.len() as f64;
    let log_y = matches!(margins, Margins::EyEx | Margins::EyDx);
    let times_x = matches!(margins, Margins::EyEx | Margins::DyEx);
    let effects: Vec<Effect> =
        effects.into_iter().filter(|e| matches!(e, Effect::Continuous(_)) || !times_x).collect();
    let m = effects.len();
    let mut means = vec![0.0; m];
    let mut jacobian = DMatrix::<f64>::zeros(m, k);
    let (mut x, mut one, mut zero) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    for &i in rows {
        design.row(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let eta = xi.dot(beta);
        let p = cdf(eta);
        for (e, effect) in effects.iter().enumerate() {
            let discrete = match effect {
                Effect::Continuous(name) => {
                    // g = f · dη/dv, times v for the ex forms, over P for the ey forms.
                    design.changed_row(i, &mut one, Change::Derivative(name));
                    let d = DVector::from_column_slice(&one);
                    let scale = if times_x { design.value_of(name, i).unwrap_or(0.0) } else { 1.0 };
                    let d_eta = d.dot(beta);
                    let g = pdf(eta) * d_eta;
                    means[e] += scale * if log_y { g / p } else { g } / n;
                    for l in 0..k {
                        let dg = slope(eta) * x[l] * d_eta + pdf(eta) * d[l];
                        let dl = if log_y { dg / p - g * pdf(eta) * x[l] / (p * p) } else { dg };
                        jacobian[(e, l)] += scale * dl / n;
                    }
                    None
                }
                Effect::Binary(name) => Some((Change::Set(name, 1.0), Change::Set(name, 0.0))),
                Effect::Level(name, level, _) => {
                    Some((Change::Level(name, Some(*level)), Change::Level(name, None)))
                }
            };
            if let Some((to, from)) = discrete {
                design.changed_row(i, &mut one, to);
                design.changed_row(i, &mut zero, from);
                let (one, zero) =
                    (DVector::from_column_slice(&one), DVector::from_column_slice(&zero));
                let (e1, e0) = (one.dot(beta), zero.dot(beta));
                // The change in P, or in ln P (whose derivative in η is pdf / cdf).
                let (p1, p0) = (cdf(e1), cdf(e0));
                let (w1, w0) = if log_y { (1.0 / p1, 1.0 / p0) } else { (1.0, 1.0) };
                means[e] += if log_y { (p1.ln() - p0.ln()) / n } else { (p1 - p0) / n };
                for l in 0..k {
                    jacobian[(e, l)] += (w1 * pdf(e1) * one[l] - w0 * pdf(e0) * zero[l]) / n;
                }
            }
        }
    }
    let variance = &jacobian * covariance.view((0, 0), (k, k)) * jacobian.transpose();
    effects
        .iter()
        .enumerate()
        .map(|(e, effect)| {
            let name = match effect {
                Effect::Continuous(name) | Effect::Binary(name) => name.clone(),
                Effect::Level(name, _, label) => format!("{name}={label}"),
            };
            let se = variance[(e, e)].max(0.0).sqrt();
            z_coefficient(name, means[e], se, level, false, false)
        })
        .collect()
}

/// Multinomial logit by maximum likelihood, before disclosure, as statsmodels' MNLogit: the
/// lowest outcome level in the sample is the base, and each other level has its own
/// coefficients. Every outcome level needs units (rule 9).
pub fn mlogit_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let outcome = dataset
        .variable(&request.dependent)
        .ok_or_else(|| EngineError::new(format!("no variable {}", request.dependent)))?;
    let (outcome_rows, labels) = levels(outcome, false, false)?;
    let y = outcome_rows.iter().map(|r| r.map(|l| l as f64)).collect();
    let cluster = cluster_keys(dataset, &request.errors)?;
    let design = Design::with_outcome(dataset, keys, request, mask, cluster.as_deref(), y)?;
    let k = design.k();
    let rows: Vec<usize> = design.rows().collect();
    let level_of = |i: usize| design.outcome(i) as usize;
    let mut counts = vec![0u64; labels.len()];
    for &i in &rows {
        counts[level_of(i)] += 1;
    }
    let present: Vec<usize> = (0..labels.len()).filter(|&l| counts[l] > 0).collect();
    if present.len() < 2 {
        return Err(EngineError::new(format!(
            "{} has one level in the estimation sample: mlogit needs two or more",
            request.dependent
        )));
    }
    let outcome_levels: Vec<u64> = present.iter().map(|&l| counts[l]).collect();
    gate.check_levels(&request.dependent, &outcome_levels, true)?;
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    // 0 for the base outcome, j + 1 for the j-th other one.
    let mut position = vec![0usize; labels.len()];
    for (p, &l) in present.iter().enumerate() {
        position[l] = p;
    }
    let m = present.len() - 1;
    let p = m * k;
    if p > MAX_PARAMETERS {
        return Err(EngineError::new(format!(
            "the model has {p} parameters, more than the {MAX_PARAMETERS} this server fits: group the outcome's levels or the i. terms with recode"
        )));
    }
    // The fit itself is pure numerics (stats::mlogit), over the sample's observations.
    let choices: Vec<usize> = rows.iter().map(|&i| position[level_of(i)]).collect();
    let cluster_of = sample_clusters(cluster.as_deref(), &rows);
    let variance = variance_of(&request.errors, cluster_of.as_deref());
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit =
        crate::stats::mlogit::fit(k, &regressors, &choices, m, variance, super::deadline::expired)
            .map_err(|failure| {
                fit_failure(failure, &format!("a level of {}", request.dependent))
            })?;
    let (beta, covariance, ll) = (fit.estimate, fit.covariance, fit.log_likelihood);
    let mut coefficients = Vec::with_capacity(p);
    for j in 0..m {
        for (t, name) in design.names.iter().enumerate() {
            let a = j * k + t;
            let se = covariance[(a, a)].max(0.0).sqrt();
            let term = format!("{}: {name}", labels[present[j + 1]]);
            let constant = name == "constant" && request.constant;
            coefficients.push(z_coefficient(term, beta[a], se, request.level, false, constant));
        }
    }
    let n = design.n as f64;
    let ll0: f64 = outcome_levels.iter().map(|&c| c as f64 * (c as f64 / n).ln()).sum();
    let df_model = (m * (k - usize::from(request.constant))) as f64;
    let chi2 = 2.0 * (ll - ll0);
    let chi2_p = statrs::distribution::ChiSquared::new(df_model.max(1.0))
        .map(|d| 1.0 - d.cdf(chi2))
        .unwrap_or(f64::NAN);
    Ok(raw::Model {
        population: design.population,
        title: format!(
            "Multinomial logistic regression (maximum likelihood{}); base outcome {}",
            match &request.errors {
                Errors::Classical => String::new(),
                Errors::Robust => ", robust standard errors".into(),
                Errors::Cluster(c) => format!(", standard errors clustered by {c}"),
            },
            labels[present[0]]
        ),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: p,
        residual_df: n - p as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: Some(outcome_levels),
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics: vec![
            ("log likelihood".to_owned(), ll),
            ("LR chi²".to_owned(), chi2),
            ("p (LR chi²)".to_owned(), chi2_p),
            ("pseudo R²".to_owned(), 1.0 - ll / ll0),
            ("model df".to_owned(), df_model),
        ],
    })
}

/// Cox proportional hazards by maximum partial likelihood, Breslow's method for ties (Stata's
/// and statsmodels' default), before disclosure. `request.dependent` is the duration; `event`
/// is 1 (or non-zero) where the unit's duration ended in the event, 0 where it was censored.
/// There is no constant: the baseline hazard absorbs it. Events and censorings both need
/// units (rule 9), as a binary outcome's levels do.
pub fn cox_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    event: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let events = numbers(
        dataset.variable(event).ok_or_else(|| EngineError::new(format!("no variable {event}")))?,
    )?;
    // Rows with a negative duration leave the sample; only many of them stop the command
    // (rule 13), so the error cannot be aimed at one unit.
    let durations = numbers_of(dataset, &request.dependent)?;
    let durations = screened(gate, keys, durations, mask, |d| d >= 0.0).ok_or_else(|| {
        EngineError::new(format!(
            "{} is a duration and has negative values: check how it was computed",
            request.dependent
        ))
    })?;
    let combined: BooleanArray = (0..dataset.len())
        .map(|i| {
            Some(
                mask.is_none_or(|m| m.is_valid(i) && m.value(i))
                    && events[i].is_some()
                    && durations[i].is_some(),
            )
        })
        .collect();
    let request = OlsRequest { constant: false, ..request.clone() };
    let design = Design::new(dataset, keys, &request, Some(&combined), None)?;
    let k = design.k();
    if k == 0 {
        return Err(EngineError::new("cox needs at least one term after the duration and event"));
    }
    let rows: Vec<usize> = design.rows().collect();
    let failed: Vec<bool> = rows.iter().map(|&i| events.in_sample(i) != 0.0).collect();
    let n_events = failed.iter().filter(|&&f| f).count() as u64;
    let outcome_levels = vec![rows.len() as u64 - n_events, n_events];
    gate.check_levels(event, &outcome_levels, true)?;
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    // The fit itself is pure numerics (stats::cox), over the sample's observations.
    let durations: Vec<f64> = rows.iter().map(|&i| design.outcome(i)).collect();
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit = crate::stats::cox::fit(k, &regressors, &durations, &failed, super::deadline::expired)
        .map_err(|failure| fit_failure(failure, "the event"))?;
    let (beta, covariance) = (fit.estimate, fit.covariance);
    let (ll, ll0) = (fit.log_likelihood, fit.null_log_likelihood);
    let coefficients = design
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            // Hazard ratios, with delta-method errors, as Stata's stcox shows them.
            let se = covariance[(j, j)].max(0.0).sqrt();
            z_coefficient(name.clone(), beta[j], se, request.level, true, false)
        })
        .collect();
    let chi2 = 2.0 * (ll - ll0);
    let chi2_p = statrs::distribution::ChiSquared::new(k as f64)
        .map(|d| 1.0 - d.cdf(chi2))
        .unwrap_or(f64::NAN);
    Ok(raw::Model {
        population: design.population,
        title: format!("Cox proportional hazards regression (Breslow ties); event {event}"),
        dependent: request.dependent.clone(),
        estimate_label: "hazard ratio",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: k,
        residual_df: design.n as f64 - k as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: Some(outcome_levels),
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics: vec![
            ("log partial likelihood".to_owned(), ll),
            ("LR chi²".to_owned(), chi2),
            ("p (LR chi²)".to_owned(), chi2_p),
            ("model df".to_owned(), k as f64),
        ],
    })
}

/// `ivregress y exogenous… (endogenous… = instruments…)`.
#[derive(Clone, Debug)]
pub struct IvRequest {
    pub dependent: String,
    pub exogenous: Vec<Term>,
    pub endogenous: Vec<Term>,
    pub instruments: Vec<Term>,
    pub constant: bool,
    pub level: f64,
    pub estimator: IvEstimator,
}

/// Two-stage least squares before disclosure, as Stata's `ivregress 2sls`: the endogenous
/// regressors are replaced by their projection on the exogenous ones and the instruments,
/// residuals are taken with the original regressors, and the errors use σ² = RSS/N with z
/// statistics (Stata's default, without `small`).
pub fn ivregress_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &IvRequest,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let (n_endogenous, n_regressors) =
        (request.endogenous.len(), request.endogenous.len() + request.exogenous.len());
    let all = OlsRequest {
        dependent: request.dependent.clone(),
        terms: [&request.endogenous[..], &request.exogenous, &request.instruments].concat(),
        constant: request.constant,
        errors: Errors::Classical,
        level: request.level,
    };
    let design = Design::new(dataset, keys, &all, mask, None)?;
    // Regressors: endogenous, exogenous, constant. Instruments: exogenous, excluded, constant.
    let x_columns: Vec<usize> =
        (0..design.k()).filter(|&j| design.terms[j].is_none_or(|t| t < n_regressors)).collect();
    let z_columns: Vec<usize> =
        (0..design.k()).filter(|&j| design.terms[j].is_none_or(|t| t >= n_endogenous)).collect();
    let endogenous_columns =
        design.terms.iter().filter(|t| t.is_some_and(|t| t < n_endogenous)).count();
    if excluded(&design, n_regressors) < endogenous_columns {
        return Err(EngineError::new(format!(
            "ivregress needs at least as many excluded instruments as endogenous regressors (here {} for {}): add instruments",
            excluded(&design, n_regressors),
            endogenous_columns
        )));
    }
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    let (kx, kz) = (x_columns.len(), z_columns.len());
    // The fit itself is pure numerics (stats::iv), over the sample's observations.
    let k = design.k();
    let rows: Vec<usize> = design.rows().collect();
    let outcome: Vec<f64> = rows.iter().map(|&i| design.outcome(i)).collect();
    let endogenous_x: Vec<usize> = x_columns
        .iter()
        .copied()
        .filter(|&j| design.terms[j].is_some_and(|t| t < n_endogenous))
        .collect();
    let columns =
        IvColumns { regressors: &x_columns, endogenous: &endogenous_x, instruments: &z_columns };
    let row = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit = crate::stats::iv::fit(k, &row, &outcome, &columns, request.estimator).map_err(|_| {
        EngineError::new(
            "the instruments or regressors are collinear: remove one, or check that each instrument varies",
        )
    })?;
    let (beta, covariance, kappa) = (fit.beta, fit.covariance, fit.kappa);
    let (rss, tss, n) = (fit.rss, fit.tss, design.n as f64);
    let coefficients: Vec<raw::Coefficient> = x_columns
        .iter()
        .enumerate()
        .map(|(a, &j)| {
            let se = covariance[(a, a)].max(0.0).sqrt();
            let constant = design.terms[j].is_none();
            z_coefficient(design.names[j].clone(), beta[a], se, request.level, false, constant)
        })
        .collect();
    // Wald test that every coefficient but the constant is zero.
    let tested: Vec<usize> = (0..kx).filter(|&a| design.terms[x_columns[a]].is_some()).collect();
    let b = DVector::from_iterator(tested.len(), tested.iter().map(|&a| beta[a]));
    let v = DMatrix::from_fn(tested.len(), tested.len(), |r, c| covariance[(tested[r], tested[c])]);
    let wald = v.cholesky().map(|c| b.dot(&c.solve(&b))).unwrap_or(f64::NAN);
    let wald_p = statrs::distribution::ChiSquared::new(tested.len().max(1) as f64)
        .map(|d| 1.0 - d.cdf(wald))
        .unwrap_or(f64::NAN);
    let mut statistics = vec![
        ("R²".to_owned(), 1.0 - rss / tss),
        ("Wald chi²".to_owned(), wald),
        ("p (Wald chi²)".to_owned(), wald_p),
        ("model df".to_owned(), tested.len() as f64),
    ];
    if let Some(kappa) = kappa {
        statistics.push(("κ".to_owned(), kappa));
    }
    let instruments: Vec<&str> = z_columns
        .iter()
        .filter(|&&j| design.terms[j].is_some_and(|t| t >= n_regressors))
        .map(|&j| design.names[j].as_str())
        .collect();
    Ok(raw::Model {
        population: design.population,
        title: format!(
            "Instrumental-variables regression ({}); instruments: {}",
            match request.estimator {
                IvEstimator::Tsls => "two-stage least squares",
                IvEstimator::Liml => "limited-information maximum likelihood",
                IvEstimator::Gmm => "two-step GMM, robust standard errors",
            },
            instruments.join(", ")
        ),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: kz.max(kx),
        residual_df: n - kx as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: None,
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    })
}

/// The index subsets of `0..n` with `size` members, in order.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    if size == 0 {
        return vec![Vec::new()];
    }
    (0..n)
        .flat_map(|first| {
            subsets(n, size - 1)
                .into_iter()
                .filter(move |rest| rest.first().is_none_or(|&r| r > first))
                .map(move |mut rest| {
                    rest.insert(0, first);
                    rest
                })
        })
        .collect()
}

/// Columns of the excluded instruments (terms after the regressors).
fn excluded(design: &Design, n_regressors: usize) -> usize {
    design.terms.iter().filter(|t| t.is_some_and(|t| t >= n_regressors)).count()
}

impl<'a> Step<'a> {
    /// The gate for a model over `request`'s variables and `extra` ones (an event, a group),
    /// sized by their copies, and the dataset's record keys: what every model is fitted with.
    pub(in crate::engine) fn model_gate(
        &self,
        dataset: &Dataset,
        request: &OlsRequest,
        extra: &[&str],
    ) -> (std::borrow::Cow<'a, crate::disclosure::Gate>, Vec<u64>) {
        let copies = dataset.copies(
            std::iter::once(request.dependent.as_str())
                .chain(extra.iter().copied())
                .chain(request.terms.iter().flat_map(Term::variables)),
        );
        let gate = self.gate_for(copies);
        let keys = self.record_keys(&gate, dataset);
        (gate, keys)
    }
}

impl Step<'_> {
    /// Model terms from `tokens`: `x`, `c.x`, `i.x`; each a variable of the dataset that is
    /// not an identifier.
    pub(in crate::engine) fn terms_of(
        &self,
        tokens: &[shared::script::Token],
        dataset: &Dataset,
        dataset_name: &str,
    ) -> Result<Vec<(Term, shared::script::Span)>, EngineError> {
        let src = self.source();
        let mut out: Vec<(Term, shared::script::Span)> = Vec::new();
        // One part: `x`, `c.x` or `i.x`; `bare` is what a bare name is (continuous on its
        // own, a factor inside an interaction, as in Stata).
        let part = |i: usize,
                    bare_factor: bool|
         -> Result<(Term, shared::script::Span, usize), EngineError> {
            let token = tokens[i];
            if token.kind != TokenKind::Ident {
                return Err(EngineError::at(
                    token.span,
                    "model terms are variables, c.var or i.var, joined by # or ##",
                ));
            }
            let word = token.span.text(src);
            if matches!(word, "i" | "c")
                && tokens.get(i + 1).is_some_and(|d| d.kind == TokenKind::Dot)
            {
                let var =
                    tokens.get(i + 2).filter(|v| v.kind == TokenKind::Ident).ok_or_else(|| {
                        EngineError::at(token.span, format!("{word}. needs a variable: {word}.sex"))
                    })?;
                let name = var.span.text(src).to_owned();
                let term = if word == "i" { Term::Factor(name) } else { Term::Continuous(name) };
                Ok((term, var.span, i + 3))
            } else {
                let name = word.to_owned();
                let term = if bare_factor { Term::Factor(name) } else { Term::Continuous(name) };
                Ok((term, token.span, i + 1))
            }
        };
        let joined = |i: usize| {
            tokens
                .get(i)
                .map(|t| t.kind)
                .filter(|k| matches!(k, TokenKind::Hash | TokenKind::HashHash))
        };
        let mut i = 0;
        while i < tokens.len() {
            if joined(i).is_some() {
                return Err(EngineError::at(tokens[i].span, "# joins two terms: a#b or a##b"));
            }
            // A bare name is a factor when an interaction follows or precedes it.
            let interacted = {
                let (_, _, next) = part(i, false)?;
                joined(next).is_some()
            };
            let (first, span, mut next) = part(i, interacted)?;
            if !interacted {
                out.push((first, span));
                i = next;
                continue;
            }
            let mut parts = vec![first];
            let mut full = false;
            while let Some(kind) = joined(next) {
                full |= kind == TokenKind::HashHash;
                if next + 1 >= tokens.len() {
                    return Err(EngineError::at(
                        tokens[next].span,
                        "# joins two terms: a#b or a##b",
                    ));
                }
                let (term, _, after) = part(next + 1, true)?;
                parts.push(term);
                next = after;
            }
            // a##b is a, b and a#b (with three parts, every lower-order product too).
            if full {
                for size in 1..parts.len() {
                    for subset in subsets(parts.len(), size) {
                        let chosen: Vec<Term> = subset.iter().map(|&p| parts[p].clone()).collect();
                        out.push((
                            if size == 1 { chosen[0].clone() } else { Term::Interaction(chosen) },
                            span,
                        ));
                    }
                }
            }
            out.push((Term::Interaction(parts), span));
            i = next;
        }
        for (term, span) in &out {
            for n in term.variables() {
                let v = dataset.require(n, dataset_name).map_err(|e| e.with_span(*span))?;
                if v.info.pointer {
                    return Err(EngineError::at(
                        *span,
                        format!("{n} is an identifier and can only be a merge key (rule 2)"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The standard errors the options ask for: `cluster(v)`, `robust`, or classical.
    fn model_errors(&self, dataset: &Dataset, dataset_name: &str) -> Result<Errors, EngineError> {
        Ok(match (self.flag("robust"), self.option_text("cluster")) {
            (_, Some(c)) => {
                dataset.require(&c, dataset_name)?;
                Errors::Cluster(c)
            }
            (true, None) => Errors::Robust,
            (false, None) => Errors::Classical,
        })
    }

    /// `dependent term…` from the arguments.
    pub(in crate::engine) fn model_terms(
        &self,
        dataset: &Dataset,
        dataset_name: &str,
    ) -> Result<(String, Vec<Term>), EngineError> {
        let t = &self.command().args;
        let mut terms = self.terms_of(t, dataset, dataset_name)?.into_iter().map(|(t, _)| t);
        match terms.next() {
            Some(Term::Continuous(y)) => Ok((y, terms.collect())),
            Some(Term::Factor(_) | Term::Interaction(_)) => Err(EngineError::at(
                t[0].span,
                "the dependent variable comes first, without i. or #",
            )),
            None => Err(EngineError::at(self.command().span, "write regress <dependent> <term>…")),
        }
    }

    /// `ivregress y exogenous… (endogenous… = instruments…) [, firststage level()]`.
    pub(in crate::engine) fn ivregress(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let chosen: Vec<(&str, IvEstimator)> =
            [("tsls", IvEstimator::Tsls), ("liml", IvEstimator::Liml), ("gmm", IvEstimator::Gmm)]
                .into_iter()
                .filter(|(name, _)| self.flag(name))
                .collect();
        let estimator = match chosen.as_slice() {
            [] => IvEstimator::Tsls,
            [(_, e)] => *e,
            [_, (second, _), ..] => {
                return Err(EngineError::at(
                    self.option_span(second),
                    "choose one of tsls, liml and gmm",
                ));
            }
        };
        let usage = "write ivregress <dependent> <exogenous>… (<endogenous>… = <instrument>…)";
        let args = &self.command().args;
        let open = args.iter().position(|t| t.kind == TokenKind::LParen);
        let close = args.iter().position(|t| t.kind == TokenKind::RParen);
        let (Some(open), Some(close)) = (open, close) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        let equals =
            args[open..close].iter().position(|t| t.kind == TokenKind::Eq).map(|e| e + open);
        let Some(equals) = equals.filter(|&e| open < close && e > open) else {
            return Err(EngineError::at(args[open].span, usage));
        };
        let mut outside = args[..open].to_vec();
        outside.extend_from_slice(&args[close + 1..]);
        let mut outside = self.terms_of(&outside, dataset, dataset_name)?.into_iter();
        let dependent = match outside.next() {
            Some((Term::Continuous(y), _)) => y,
            Some((Term::Factor(_) | Term::Interaction(_), span)) => {
                return Err(EngineError::at(
                    span,
                    "the dependent variable comes first, without i.",
                ));
            }
            None => return Err(EngineError::at(self.command().span, usage)),
        };
        let plain = |v: Vec<(Term, shared::script::Span)>| v.into_iter().map(|(t, _)| t).collect();
        let endogenous: Vec<Term> =
            plain(self.terms_of(&args[open + 1..equals], dataset, dataset_name)?);
        let instruments: Vec<Term> =
            plain(self.terms_of(&args[equals + 1..close], dataset, dataset_name)?);
        if endogenous.is_empty() || instruments.is_empty() {
            return Err(EngineError::at(args[open].span, usage));
        }
        let level = self.confidence_level()?;
        let request = IvRequest {
            dependent,
            exogenous: outside.map(|(t, _)| t).collect(),
            endogenous,
            instruments,
            constant: !self.flag("noconstant"),
            level,
            estimator,
        };
        let mask = self.mask(dataset, dataset_name)?;
        let names = std::iter::once(request.dependent.as_str()).chain(
            request
                .exogenous
                .iter()
                .chain(&request.endogenous)
                .chain(&request.instruments)
                .flat_map(Term::variables),
        );
        let copies = dataset.copies(names);
        let gate = &*self.gate_for(copies);
        let keys = self.record_keys(gate, dataset);
        let mut models = Vec::new();
        if self.flag("firststage") {
            // One first-stage regression per endogenous regressor, on every instrument, over
            // the estimation sample of the model itself: two samples a few units apart would
            // let their difference be read (rule 11).
            let mut in_sample: Vec<bool> =
                (0..dataset.len()).map(|i| mask.as_ref().is_none_or(|m| m.value(i))).collect();
            for term in std::iter::once(&Term::Continuous(request.dependent.clone()))
                .chain(&request.endogenous)
            {
                for name in term.variables() {
                    let values = numbers(dataset.require(name, dataset_name)?)?;
                    for (keep, v) in in_sample.iter_mut().zip(values) {
                        *keep &= v.is_some();
                    }
                }
            }
            let first_mask = BooleanArray::from(in_sample);
            for endogenous in &request.endogenous {
                let Term::Continuous(name) = endogenous else {
                    return Err(EngineError::new(
                        "firststage needs continuous endogenous regressors; leave out i. or drop firststage",
                    ));
                };
                let first = OlsRequest {
                    dependent: name.clone(),
                    terms: [&request.exogenous[..], &request.instruments].concat(),
                    constant: request.constant,
                    errors: Errors::Classical,
                    level,
                };
                let mut raw = ols_raw(dataset, &keys, &first, Some(&first_mask))?;
                raw.title = format!("First stage for {name}: {}", raw.title);
                models.push(raw);
            }
        }
        models.push(ivregress_raw(gate, dataset, &keys, &request, mask.as_ref())?);
        // Each stage against the earlier outputs: the first stages' samples are the second's.
        let apart: Vec<_> = models.iter().map(|m| &m.population).collect();
        let remember = apart.iter().map(|&p| p.clone()).collect();
        let cleared = self.clear(Rule11Check { together: Vec::new(), apart, remember })?;
        let released: Vec<_> = models
            .into_iter()
            .map(|raw| self.releaser.model(gate, &cleared, self.origin(), raw))
            .collect();
        self.outputs.extend(released);
        Ok(())
    }

    /// `coefplot <model command>`: runs the model as its own command would, then draws the
    /// estimates the gate released for it.
    pub(in crate::engine) fn coefplot(&mut self) -> Result<(), EngineError> {
        let usage = "write coefplot <model command>, such as coefplot regress wage age";
        let command = self.command();
        let first = command.args.first().ok_or_else(|| EngineError::at(command.span, usage))?;
        let text = shared::script::Span { start: first.span.start, end: command.span.end }
            .text(self.source())
            .to_owned();
        let parsed = shared::script::parse(&text);
        let Some(shared::script::Item::Command(model)) = parsed.items.into_iter().next() else {
            return Err(EngineError::at(first.span, usage));
        };
        if let Some(d) = parsed.diagnostics.first() {
            let span = shared::script::Span {
                start: d.span.start + first.span.start,
                end: d.span.end + first.span.start,
            };
            return Err(EngineError::at(span, d.message.clone()));
        }
        let typed = model.typed(&text).map_err(|problems| {
            let message = problems.first().map_or("", |d| d.message.as_str());
            EngineError::at(first.span, message.to_owned())
        })?;
        let inner = super::expand::Expanded {
            line: self.step.line,
            column_offset: self.step.column_offset + first.span.start,
            text,
            command: model,
            typed,
        };
        let before = self.outputs.len();
        {
            let mut step = Step {
                engine: self.engine,
                workspace: &mut *self.workspace,
                releaser: self.releaser,
                step: &inner,
                outputs: &mut *self.outputs,
            };
            match inner.verb() {
                Verb::Regress => step.regress(),
                Verb::Logit => step.likelihood_model(Likelihood::Logit),
                Verb::Probit => step.likelihood_model(Likelihood::Probit),
                Verb::Poisson => step.likelihood_model(Likelihood::Poisson),
                Verb::NegativeBinomial => step.likelihood_model(Likelihood::NegativeBinomial),
                Verb::Ivregress => step.ivregress(),
                Verb::Mlogit => step.mlogit(),
                Verb::Cox => step.cox(),
                other => Err(EngineError::at(
                    first.span,
                    format!(
                        "coefplot plots the estimates of regress, logit, probit, mlogit, poisson, negative-binomial, ivregress and cox, not of {}: run one of them inside it",
                        other.name()
                    ),
                )),
            }?;
        }
        let Some(model) = self.outputs[before..].last() else { return Ok(()) };
        if let Some(chart) = self.releaser.coefplot(self.origin(), model) {
            self.outputs.push(chart);
        }
        Ok(())
    }

    pub(in crate::engine) fn regress(&mut self) -> Result<(), EngineError> {
        self.model(None).map(drop)
    }

    /// logit, probit, poisson and negative-binomial.
    pub(in crate::engine) fn likelihood_model(
        &mut self,
        link: Likelihood,
    ) -> Result<(), EngineError> {
        self.model(Some(link)).map(drop)
    }

    /// `regress-predict`, `logit-predict`, `probit-predict` and `poisson-predict`: the model
    /// as its own command shows it, then its predictions (`predicted(name)`: the fitted mean,
    /// a probability for the binary models) and residuals (`residuals(name)`: the outcome less
    /// that) as new variables. The values are never shown; outputs over them pass the gate
    /// like any other.
    pub(in crate::engine) fn predict(
        &mut self,
        link: Option<Likelihood>,
    ) -> Result<(), EngineError> {
        let command = self.command().name.clone();
        let targets: Vec<(&str, String)> = ["predicted", "residuals"]
            .into_iter()
            .filter_map(|option| Some((option, self.option_text(option)?)))
            .collect();
        if targets.is_empty() {
            return Err(EngineError::at(
                self.command().span,
                format!(
                    "{command} adds variables: name them with predicted(<name>), residuals(<name>) or both"
                ),
            ));
        }
        {
            let (dataset_name, dataset) = self.populated()?;
            for (option, name) in &targets {
                let span = self.option_span(option);
                if !valid_name(name) {
                    return Err(EngineError::at(
                        span,
                        format!(
                            "{name} is not a variable name: start with a letter, then letters, digits or _"
                        ),
                    ));
                }
                if dataset.variable(name).is_some() {
                    return Err(EngineError::at(
                        span,
                        format!(
                            "dataset {dataset_name} already has a variable {name}: choose another name"
                        ),
                    ));
                }
            }
        }
        let beta = self.model(link)?;
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let request = OlsRequest {
            dependent,
            terms,
            constant: !self.flag("noconstant"),
            errors: Errors::Classical,
            level: 95.0,
        };
        let mask = self.mask(dataset, dataset_name)?;
        // The design only evaluates rows; nothing from it is released, so no record keys.
        let keys = vec![0; dataset.len()];
        let exposure = self.option_text("exposure");
        let design = Design::new(dataset, &keys, &request, mask.as_ref(), None)?;
        let offsets = match &exposure {
            Some(e) => Some(numbers(dataset.require(e, dataset_name)?)?),
            None => None,
        };
        let normal = Normal::standard();
        let fitted: Vec<Option<f64>> = design
            .linear_predictions(&beta[..design.k()])
            .into_iter()
            .enumerate()
            .map(|(i, eta)| {
                let eta = eta?;
                Some(match link {
                    None => eta,
                    Some(Likelihood::Logit) => 1.0 / (1.0 + (-eta).exp()),
                    Some(Likelihood::Probit) => normal.cdf(eta),
                    Some(Likelihood::Poisson | Likelihood::NegativeBinomial) => {
                        let offset = match &offsets {
                            Some(e) => e[i].filter(|&v| v > 0.0)?.ln(),
                            None => 0.0,
                        };
                        (eta + offset).exp()
                    }
                })
            })
            .collect();
        // The binary models' outcome is 1 where the dependent variable is non-zero.
        let binary = matches!(link, Some(Likelihood::Logit | Likelihood::Probit));
        let residuals: Vec<Option<f64>> = fitted
            .iter()
            .zip(&design.y)
            .map(|(f, y)| {
                let y = y.map(|y| if binary { f64::from(u8::from(y != 0.0)) } else { y });
                Some(y? - (*f)?)
            })
            .collect();
        let source = format!("{command} on line {}", self.origin().line);
        // A prediction is computed from every variable of the model: where one of them holds
        // values copied onto many units, so does the prediction (a model of a copied wage on
        // a constant predicts that wage for every copy).
        let copies = dataset.variable_copies(
            std::iter::once(request.dependent.as_str())
                .chain(request.terms.iter().flat_map(Term::variables))
                .chain(exposure.as_deref()),
        );
        let dataset = self.current_mut()?;
        let mut added = Vec::new();
        for (option, name) in targets {
            let values = if option == "predicted" { &fitted } else { &residuals };
            dataset.set(Variable {
                name: name.clone(),
                values: Arc::new(Float64Array::from(values.clone())),
                info: VarInfo { source: source.clone(), copies, ..VarInfo::default() },
            });
            added.push(format!(
                "{} as {name}",
                if option == "predicted" { "fitted values" } else { "residuals" }
            ));
        }
        self.notice(format!("{} added", added.join(" and ")));
        Ok(())
    }

    /// Rule 11 for the model's estimation sample, then the gate's model rules; the released
    /// output and its population are kept. Every model command ends here.
    pub(in crate::engine) fn release_model(
        &mut self,
        gate: &crate::disclosure::Gate,
        raw: raw::Model,
    ) -> Result<(), EngineError> {
        let cleared = self.clear_one(&raw.population)?;
        let released = self.releaser.model(gate, &cleared, self.origin(), raw);
        self.outputs.push(released);
        Ok(())
    }

    /// `cox <duration> <event> <term>…`.
    pub(in crate::engine) fn cox(&mut self) -> Result<(), EngineError> {
        self.duration_model(false, cox_raw)
    }

    /// A model of a duration and its event (`cox`, `weibull`): `<duration> <event> <term>…`,
    /// fitted by `fit` with or without a constant.
    pub(in crate::engine) fn duration_model(
        &mut self,
        constant: bool,
        fit: impl FnOnce(
            &crate::disclosure::Gate,
            &Dataset,
            &[u64],
            &OlsRequest,
            &str,
            Option<&BooleanArray>,
        ) -> Result<raw::Model, EngineError>,
    ) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (duration, mut terms) = self.model_terms(dataset, dataset_name)?;
        let event = match terms.is_empty() {
            true => None,
            false => match terms.remove(0) {
                Term::Continuous(e) => Some(e),
                Term::Factor(_) | Term::Interaction(_) => None,
            },
        };
        let Some(event) = event else {
            return Err(EngineError::at(
                self.command().span,
                format!(
                    "write {} <duration> <event> <term>…, the event 1 where it happened and 0 where the unit was censored",
                    self.command().name
                ),
            ));
        };
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent: duration, terms, constant, errors: Errors::Classical, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[event.as_str()]);
        let raw = fit(&gate, dataset, &keys, &request, &event, mask.as_ref())?;
        self.release_model(&gate, raw)
    }

    /// mlogit.
    pub(in crate::engine) fn mlogit(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let errors = self.model_errors(dataset, dataset_name)?;
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: !self.flag("noconstant"), errors, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[]);
        check_two_clusters(&gate, dataset, &keys, &request.errors, mask.as_ref())?;
        let raw = mlogit_raw(&gate, dataset, &keys, &request, mask.as_ref())?;
        self.release_model(&gate, raw)
    }

    /// A model command: its outputs are released, and its coefficients, unrounded and on the
    /// linear scale (never odds ratios), are returned for `-predict` to evaluate.
    fn model(&mut self, binary: Option<Likelihood>) -> Result<Vec<f64>, EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        if binary == Some(Likelihood::Probit) && self.flag("or") {
            return Err(EngineError::at(
                self.option_span("or"),
                "odds ratios (or) belong to logit; probit coefficients are on the normal scale",
            ));
        }
        let errors = self.model_errors(dataset, dataset_name)?;
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: !self.flag("noconstant"), errors, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[]);
        let gate = &*gate;
        check_two_clusters(gate, dataset, &keys, &request.errors, mask.as_ref())?;
        let (vif, standardize) = (self.flag("vif"), self.flag("standardize"));
        let (raw, beta) = match binary {
            None if vif || standardize => {
                let model = ols_raw(dataset, &keys, &request, mask.as_ref())?;
                let diagnostics = regression_diagnostics(
                    dataset,
                    &keys,
                    &request,
                    mask.as_ref(),
                    vif,
                    standardize.then_some(&model),
                )?;
                let beta = linear_estimates(&model, false);
                // One sample, one population: checked once, as the model and its table.
                let cleared = self.clear_one(&model.population)?;
                let released = self.releaser.model(gate, &cleared, self.origin(), model);
                let shown = matches!(released.output().body, shared::output::OutputBody::Model(_));
                self.outputs.push(released);
                if shown {
                    let table =
                        self.releaser.statistics(gate, &cleared, self.origin(), diagnostics);
                    self.outputs.push(table);
                }
                return Ok(beta);
            }
            None => {
                let model = ols_raw(dataset, &keys, &request, mask.as_ref())?;
                let beta = linear_estimates(&model, false);
                (model, beta)
            }
            Some(link) => {
                let exponentiate = self.flag("or") || self.flag("irr");
                let exposure = self.option_text("exposure");
                if let Some(e) = &exposure {
                    let span = self.option_span("exposure");
                    dataset.require(e, dataset_name).map_err(|err| err.with_span(span))?;
                }
                let marginal = match self.option_text("mfx") {
                    None => None,
                    Some(kind) => Some(Margins::parse(&kind).ok_or_else(|| {
                        EngineError::at(
                            self.option_span("mfx"),
                            format!(
                                "unknown effect mfx({kind}): write mfx(dydx), mfx(eyex), mfx(dyex) or mfx(eydx)"
                            ),
                        )
                    })?),
                };
                let (model, effects) = likelihood_raw(
                    gate,
                    dataset,
                    &keys,
                    &request,
                    link,
                    exponentiate,
                    mask.as_ref(),
                    exposure.as_deref(),
                    marginal,
                )?;
                if let Some(effects) = effects {
                    let beta = linear_estimates(&model, exponentiate);
                    // The effects come from the same sample: one population, checked once.
                    let cleared = self.clear_one(&model.population)?;
                    let released = self.releaser.model(gate, &cleared, self.origin(), model);
                    let effects = self.releaser.model(gate, &cleared, self.origin(), effects);
                    self.outputs.push(released);
                    self.outputs.push(effects);
                    return Ok(beta);
                }
                let beta = linear_estimates(&model, exponentiate);
                (model, beta)
            }
        };
        self.release_model(gate, raw)?;
        Ok(beta)
    }
}

/// A fitted model's coefficients on the linear scale: `exponentiated` ones (odds and
/// incidence-rate ratios) are logged back.
fn linear_estimates(model: &raw::Model, exponentiated: bool) -> Vec<f64> {
    let linear = |v: f64| if exponentiated { v.ln() } else { v };
    model.coefficients.iter().map(|c| linear(c.estimate)).collect()
}

#[cfg(test)]
mod tests {
    use crate::engine::deadline;
    use crate::stats::likelihood::newton_raphson;
    use nalgebra::{DMatrix, DVector};
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    /// A likelihood that never converges: it keeps rising along its one axis (gradient 1,
    /// information tiny), so Newton–Raphson runs its 200 iterations unless stopped.
    fn evaluations_of_an_unbounded_likelihood(deadline: Option<Instant>) -> (usize, bool) {
        let calls = Cell::new(0usize);
        let evaluate = |b: &DVector<f64>| {
            calls.set(calls.get() + 1);
            (b[0], DVector::from_element(1, 1.0), DMatrix::from_element(1, 1, 1e-3))
        };
        let fitted = match deadline {
            Some(at) => deadline::within_sync(at, || {
                newton_raphson(DVector::zeros(1), evaluate, deadline::expired)
            }),
            None => newton_raphson(DVector::zeros(1), evaluate, deadline::expired),
        };
        (calls.get(), fitted.is_some())
    }

    #[test]
    fn newton_raphson_stops_at_the_run_deadline_inside_the_command() {
        let (unlimited, converged) = evaluations_of_an_unbounded_likelihood(None);
        assert!(!converged);
        assert!(unlimited > 200, "without a deadline it iterates to the end: {unlimited} calls");
        let past = Instant::now() - Duration::from_secs(1);
        let (limited, converged) = evaluations_of_an_unbounded_likelihood(Some(past));
        assert!(!converged);
        assert_eq!(limited, 1, "past the deadline only the starting point is evaluated");
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(evaluations_of_an_unbounded_likelihood(Some(later)).0, unlimited);
    }
}
