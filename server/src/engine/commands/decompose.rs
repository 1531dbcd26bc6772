//! oaxaca: the Blinder–Oaxaca decomposition of the difference in a mean between two groups,
//! threefold and from the second group's point of view, as Jann's `oaxaca` for Stata and
//! statsmodels' `OaxacaBlinder.three_fold` compute it, with Jann's delta-method standard
//! errors (regressors taken as stochastic). Fitted as two regressions, one per group; the
//! gate sees the decomposition as one model whose every part passed rule 9.

use datafusion::arrow::array::{Array, BooleanArray};
use nalgebra::{DMatrix, DVector};

use super::dataset::Dataset;
use super::dataset::levels;
use super::models::{Design, Errors, OlsRequest, Term, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw;

/// One group's regression: coefficients, their covariance, and the regressors' means with the
/// covariance of those means.
struct GroupFit {
    beta: DVector<f64>,
    beta_covariance: DMatrix<f64>,
    means: DVector<f64>,
    means_covariance: DMatrix<f64>,
}

fn fit_group(design: &Design, label: &str) -> Result<GroupFit, EngineError> {
    let (k, n) = (design.k(), design.n as f64);
    let mut xtx = DMatrix::<f64>::zeros(k, k);
    let mut xty = DVector::<f64>::zeros(k);
    let mut sum = DVector::<f64>::zeros(k);
    let mut x = vec![0.0; k];
    for i in design.rows() {
        design.row(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let yi = design.outcome(i);
        xtx.ger(1.0, &xi, &xi, 1.0);
        xty.axpy(yi, &xi, 1.0);
        sum += &xi;
    }
    let inverse = xtx.clone().cholesky().map(|c| c.inverse()).ok_or_else(|| {
        EngineError::new(format!(
            "in the group {label} the terms are collinear (a level may be missing from the group): remove a term or recode its levels"
        ))
    })?;
    let beta = &inverse * &xty;
    let means = &sum / n;
    let mut rss = 0.0;
    let mut scatter = DMatrix::<f64>::zeros(k, k);
    for i in design.rows() {
        design.row(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let e = design.outcome(i) - xi.dot(&beta);
        rss += e * e;
        let d = &xi - &means;
        scatter.ger(1.0, &d, &d, 1.0);
    }
    let sigma2 = rss / (n - k as f64);
    Ok(GroupFit {
        beta,
        beta_covariance: inverse * sigma2,
        means,
        // The sample covariance of the regressors over n: the variance of their means.
        means_covariance: scatter / ((n - 1.0) * n),
    })
}

/// a′Va.
fn quadratic(a: &DVector<f64>, v: &DMatrix<f64>) -> f64 {
    (a.transpose() * v * a)[(0, 0)]
}

/// The decomposition before disclosure. `by` must have exactly two levels in the sample;
/// group 1 is the lower.
pub fn oaxaca_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    by: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let by_variable =
        dataset.variable(by).ok_or_else(|| EngineError::new(format!("no variable {by}")))?;
    let (groups, names) = levels(by_variable, false, true)?;
    let inside = |i: usize| mask.is_none_or(|m| m.is_valid(i) && m.value(i));
    let with_group: BooleanArray =
        (0..dataset.len()).map(|i| Some(inside(i) && groups[i].is_some())).collect();
    let request = OlsRequest { constant: true, errors: Errors::Classical, ..request.clone() };
    let whole = Design::new(dataset, keys, &request, Some(&with_group), None)?;
    let mut present: Vec<usize> = whole.rows().filter_map(|i| groups[i]).collect();
    present.sort_unstable();
    present.dedup();
    // How many levels the sample has is not said: under a condition it would tell which small
    // groups hold a unit at all.
    if present.len() != 2 {
        let fewer = if present.len() < 2 { "fewer" } else { "more" };
        return Err(EngineError::new(format!(
            "oaxaca compares two groups, and {by} has {fewer} than two in the estimation sample: recode it to two levels, or keep if one of two"
        )));
    }
    let label = |g: usize| format!("{by}={}", names[g]);
    let mut fits = Vec::new();
    let mut designs = Vec::new();
    for &g in &present {
        let in_group: BooleanArray =
            (0..dataset.len()).map(|i| Some(whole.sample[i] && groups[i] == Some(g))).collect();
        let design = Design::new(dataset, keys, &request, Some(&in_group), None)?;
        gate.check_model_part(
            &format!("the group {}", label(g)),
            design.n as u64,
            design.k(),
            "use fewer terms or a wider population",
        )?;
        for (variable, levels) in &design.categorical_levels {
            gate.check_levels(variable, levels, false)?;
        }
        if design.names != whole.names {
            return Err(EngineError::new(format!(
                "a level of a factor term is missing from the group {}: both groups need every level, so recode the levels or keep if the rows that have them",
                label(g)
            )));
        }
        fits.push(fit_group(&design, &label(g))?);
        designs.push(design);
    }
    let (one, two) = (&fits[0], &fits[1]);
    let mean_gap = &one.means - &two.means;
    let beta_gap = &one.beta - &two.beta;
    let both_beta = &one.beta_covariance + &two.beta_covariance;
    let both_means = &one.means_covariance + &two.means_covariance;
    // ȳ = x̄′β in each group (OLS with a constant), and Jann's variance x̄′V_β x̄ + β′V_x̄ β.
    let mean_of = |f: &GroupFit| {
        (
            f.means.dot(&f.beta),
            quadratic(&f.means, &f.beta_covariance) + quadratic(&f.beta, &f.means_covariance),
        )
    };
    let (y1, v1) = mean_of(one);
    let (y2, v2) = mean_of(two);
    let components = [
        (format!("mean, {}", label(present[0])), y1, v1),
        (format!("mean, {}", label(present[1])), y2, v2),
        ("difference".to_owned(), y1 - y2, v1 + v2),
        (
            "endowments".to_owned(),
            mean_gap.dot(&two.beta),
            quadratic(&mean_gap, &two.beta_covariance) + quadratic(&two.beta, &both_means),
        ),
        (
            "coefficients".to_owned(),
            two.means.dot(&beta_gap),
            quadratic(&two.means, &both_beta) + quadratic(&beta_gap, &two.means_covariance),
        ),
        (
            "interaction".to_owned(),
            mean_gap.dot(&beta_gap),
            quadratic(&mean_gap, &both_beta) + quadratic(&beta_gap, &both_means),
        ),
    ];
    let coefficients = components
        .into_iter()
        .map(|(term, estimate, variance)| {
            z_coefficient(term, estimate, variance.max(0.0).sqrt(), request.level, false, false)
        })
        .collect();
    let k = whole.k();
    let categorical_levels =
        designs.iter_mut().flat_map(|d| std::mem::take(&mut d.categorical_levels)).collect();
    Ok(raw::Model {
        population: whole.population,
        title: format!(
            "Blinder–Oaxaca decomposition (threefold, coefficients of {}); {} less {}",
            label(present[1]),
            label(present[0]),
            label(present[1])
        ),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: whole.contributors,
        parameters: 2 * k,
        residual_df: whole.n as f64 - 2.0 * k as f64,
        t_test: None,
        categorical_levels,
        outcome_levels: None,
        smallest_crossing: None,
        influence: whole.influence,
        absorbed: None,
        statistics: vec![("parameters per group".to_owned(), k as f64)],
    })
}

impl Step<'_> {
    /// `oaxaca <dependent> <term>…, by(<group>)`.
    pub(in crate::engine) fn oaxaca(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let Some(by) = self.option_text("by") else {
            return Err(EngineError::at(
                self.command().span,
                "oaxaca needs the two groups to compare: oaxaca wage age edu, by(sex)",
            ));
        };
        let by_span = self.option_span("by");
        dataset.require(&by, dataset_name).map_err(|e| e.with_span(by_span))?;
        if terms.iter().flat_map(Term::variables).any(|v| v == by) {
            return Err(EngineError::at(
                by_span,
                format!(
                    "{by} splits the groups and cannot be a term as well: remove it from the terms"
                ),
            ));
        }
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: true, errors: Errors::Classical, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[by.as_str()]);
        let raw = oaxaca_raw(&gate, dataset, &keys, &request, &by, mask.as_ref())?;
        self.release_model(&gate, raw)
    }
}
