//! regress-mml: a linear model with a random intercept per group, y = x′β + u_g + e, fitted by
//! restricted maximum likelihood (REML) as statsmodels' `MixedLM` and Stata's `mixed, reml` do.
//!
//! With γ = σ²_u/σ²_e, each group's covariance is σ²_e(I + γ11′), whose inverse and determinant
//! have closed forms. So X′V⁻¹X, X′V⁻¹y and y′V⁻¹y need only each group's sums, β and σ²_e
//! follow from γ, and the REML likelihood is maximised over γ alone: one dimension, searched
//! on a grid of ln γ and then by golden section. The fixed effects' standard errors are
//! σ²_e(X′V⁻¹X)⁻¹, as Stata and R's lme4 report them.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, BooleanArray};
use nalgebra::{DMatrix, DVector};
use shared::script::TokenKind;

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::levels;
use super::models::{Design, Errors, OlsRequest, Term, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw::{self, Contributors};

/// One group's sums: units, X′X, X′1, X′y, 1′y and y′y.
struct GroupSums {
    n: f64,
    xtx: DMatrix<f64>,
    x_sum: DVector<f64>,
    xty: DVector<f64>,
    y_sum: f64,
    yty: f64,
}

/// The REML fit at one γ.
struct Profile {
    log_likelihood: f64,
    beta: DVector<f64>,
    /// σ²_e.
    scale: f64,
    /// X′V⁻¹X × σ²_e.
    information: DMatrix<f64>,
}

fn profile(groups: &[GroupSums], totals: &GroupSums, gamma: f64, k: usize) -> Option<Profile> {
    let mut a = totals.xtx.clone();
    let mut b = totals.xty.clone();
    let mut c = totals.yty;
    let mut log_det_v = 0.0;
    for g in groups {
        // (I + γ11′)⁻¹ = I − w11′ with w = γ / (1 + nγ).
        let w = gamma / (1.0 + g.n * gamma);
        a.ger(-w, &g.x_sum, &g.x_sum, 1.0);
        b.axpy(-w * g.y_sum, &g.x_sum, 1.0);
        c -= w * g.y_sum * g.y_sum;
        log_det_v += (g.n * gamma).ln_1p();
    }
    let cholesky = a.clone().cholesky()?;
    let beta = cholesky.solve(&b);
    let df = totals.n - k as f64;
    let scale = (c - b.dot(&beta)) / df;
    let log_det_a: f64 = 2.0 * cholesky.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
    let log_likelihood = -0.5
        * (df * scale.ln()
            + log_det_v
            + log_det_a
            + df * (1.0 + (2.0 * std::f64::consts::PI).ln()));
    (scale > 0.0 && log_likelihood.is_finite()).then_some(Profile {
        log_likelihood,
        beta,
        scale,
        information: a,
    })
}

/// The γ ≥ 0 with the highest REML likelihood, and the fit there.
fn maximize_over_gamma(
    groups: &[GroupSums],
    totals: &GroupSums,
    k: usize,
) -> Option<(f64, Profile)> {
    let at = |log_gamma: f64| profile(groups, totals, log_gamma.exp(), k);
    let value = |log_gamma: f64| at(log_gamma).map_or(f64::NEG_INFINITY, |p| p.log_likelihood);
    // A grid over ln γ from e⁻²⁰ (no group effect to speak of) to e¹⁵ brackets the maximum.
    let grid: Vec<f64> = (-20..=15).map(f64::from).collect();
    let best = grid.iter().copied().max_by(|a, b| value(*a).total_cmp(&value(*b))).expect("a grid");
    let (mut lo, mut hi) = (best - 1.0, best + 1.0);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
    let (mut f1, mut f2) = (value(x1), value(x2));
    while hi - lo > 1e-11 {
        if super::deadline::expired() {
            return None;
        }
        if f1 < f2 {
            lo = x1;
            (x1, f1) = (x2, f2);
            x2 = lo + ratio * (hi - lo);
            f2 = value(x2);
        } else {
            hi = x2;
            (x2, f2) = (x1, f1);
            x1 = hi - ratio * (hi - lo);
            f1 = value(x1);
        }
    }
    let log_gamma = (lo + hi) / 2.0;
    // At the grid's lower end the variance of the groups is zero in all but name: γ = 0 is
    // the boundary optimum, the model there is OLS.
    let boundary = profile(groups, totals, 0.0, k)?;
    match at(log_gamma) {
        Some(p) if p.log_likelihood > boundary.log_likelihood => Some((log_gamma.exp(), p)),
        _ => Some((0.0, boundary)),
    }
}

/// The fit before disclosure.
pub fn mixed_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    group: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let group_variable =
        dataset.variable(group).ok_or_else(|| EngineError::new(format!("no variable {group}")))?;
    let (group_rows, _) = levels(group_variable, false, false)?;
    let with_group: BooleanArray = (0..dataset.len())
        .map(|i| Some(mask.is_none_or(|m| m.is_valid(i) && m.value(i)) && group_rows[i].is_some()))
        .collect();
    let request = OlsRequest { constant: true, errors: Errors::Classical, ..request.clone() };
    let design = Design::new(dataset, keys, &request, Some(&with_group), None)?;
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    let k = design.k();
    let empty = || GroupSums {
        n: 0.0,
        xtx: DMatrix::zeros(k, k),
        x_sum: DVector::zeros(k),
        xty: DVector::zeros(k),
        y_sum: 0.0,
        yty: 0.0,
    };
    let mut by_group: BTreeMap<usize, GroupSums> = BTreeMap::new();
    let mut group_units: BTreeMap<usize, Contributors> = BTreeMap::new();
    let mut x = vec![0.0; k];
    for i in design.rows() {
        design.row(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let yi = design.outcome(i);
        let g = group_rows.in_sample(i);
        group_units.entry(g).or_default().add(keys[i]);
        let sums = by_group.entry(g).or_insert_with(empty);
        sums.n += 1.0;
        sums.xtx.ger(1.0, &xi, &xi, 1.0);
        sums.x_sum += &xi;
        sums.xty.axpy(yi, &xi, 1.0);
        sums.y_sum += yi;
        sums.yty += yi * yi;
    }
    let groups: Vec<GroupSums> = by_group.into_values().collect();
    // Two groups that count as many (rule 13), so the error says nothing about a small one.
    if group_units.values().filter(|&&c| gate.counts_as_many(c)).count() < 2 {
        return Err(EngineError::new(format!(
            "a random intercept needs at least two groups, and {group} has fewer in the estimation sample: choose a grouping with several levels"
        )));
    }
    let mut totals = empty();
    for g in &groups {
        totals.n += g.n;
        totals.xtx += &g.xtx;
        totals.x_sum += &g.x_sum;
        totals.xty += &g.xty;
        totals.y_sum += g.y_sum;
        totals.yty += g.yty;
    }
    let Some((gamma, fit)) = maximize_over_gamma(&groups, &totals, k) else {
        return Err(EngineError::new(format!(
            "the terms are collinear (one is a combination of others): remove one of {}",
            design.names.join(", ")
        )));
    };
    let covariance =
        fit.information.clone().cholesky().map(|c| c.inverse() * fit.scale).ok_or_else(|| {
            EngineError::new("the model's information matrix is singular: remove a collinear term")
        })?;
    let coefficients = design
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let se = covariance[(j, j)].max(0.0).sqrt();
            z_coefficient(name.clone(), fit.beta[j], se, request.level, false, name == "constant")
        })
        .collect();
    let group_variance = gamma * fit.scale;
    // The number of groups is not shown: under a condition it would tell which small groups
    // hold a unit at all.
    let statistics = vec![
        (format!("sd of the {group} intercepts"), group_variance.sqrt()),
        ("sd of the residual".to_owned(), fit.scale.sqrt()),
        ("intraclass correlation".to_owned(), group_variance / (group_variance + fit.scale)),
        ("REML log likelihood".to_owned(), fit.log_likelihood),
    ];
    Ok(raw::Model {
        population: design.population,
        title: format!("Mixed linear model, a random intercept per {group} (REML)"),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: k + 2,
        residual_df: design.n as f64 - (k + 2) as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: None,
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    })
}

impl Step<'_> {
    /// `regress-mml <dependent> <term>… by <group>`.
    pub(in crate::engine) fn regress_mml(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let source = self.source();
        let args = &self.command().args;
        let usage = "write regress-mml <dependent> <term>… by <group>, such as regress-mml wage age i.sex by kommune";
        let by_at = args
            .iter()
            .position(|t| t.kind == TokenKind::Ident && t.span.text(source) == "by")
            .ok_or_else(|| EngineError::at(self.command().span, usage))?;
        let group = match &args[by_at + 1..] {
            [g] if g.kind == TokenKind::Ident => {
                let name = g.span.text(source).to_owned();
                dataset.require(&name, dataset_name).map_err(|e| e.with_span(g.span))?;
                name
            }
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let mut terms =
            self.terms_of(&args[..by_at], dataset, dataset_name)?.into_iter().map(|(t, _)| t);
        let dependent = match terms.next() {
            Some(Term::Continuous(y)) => y,
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let terms: Vec<Term> = terms.collect();
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: true, errors: Errors::Classical, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[group.as_str()]);
        let raw = mixed_raw(&gate, dataset, &keys, &request, &group, mask.as_ref())?;
        self.release_model(&gate, raw)
    }
}
