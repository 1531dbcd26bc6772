//! weibull: the Weibull proportional-hazards regression of a duration, h(t) = p t^(p−1) e^(x′β),
//! with right censoring, by maximum likelihood as Stata's `streg, distribution(weibull)`
//! fits it. Shown as hazard ratios (the constant as the baseline hazard's scale), with the
//! shape p.

use datafusion::arrow::array::{Array, BooleanArray};
use statrs::distribution::ContinuousCDF;

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::{numbers, numbers_of};
use super::describe::screened;
use super::models::{Design, Errors, OlsRequest, fit_failure, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw;

/// The fit before disclosure: hazard ratios for the terms and the constant, then ln p.
pub fn weibull_raw(
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
    // Rows that fail a check leave the sample; only many of them stop the command (rule 13).
    let events = screened(gate, keys, events, mask, |e| e == 0.0 || e == 1.0).ok_or_else(|| {
        EngineError::new(format!(
            "{event} must be 1 where the event happened and 0 where the unit was censored: make it so with generate {event}01 = {event} == <value>"
        ))
    })?;
    let durations = numbers_of(dataset, &request.dependent)?;
    let durations = screened(gate, keys, durations, mask, |d| d > 0.0).ok_or_else(|| {
        EngineError::new(format!(
            "{} is a duration and some units have none (0 or less); a Weibull model needs positive times: keep if {} > 0",
            request.dependent, request.dependent
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
    let request = OlsRequest { constant: true, errors: Errors::Classical, ..request.clone() };
    let design = Design::new(dataset, keys, &request, Some(&combined), None)?;
    let rows: Vec<usize> = design.rows().collect();
    let n_events = rows.iter().filter(|&&i| events[i] == Some(1.0)).count() as u64;
    let outcome_levels = vec![rows.len() as u64 - n_events, n_events];
    gate.check_levels(event, &outcome_levels, true)?;
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    let k = design.k();
    // The fit itself is pure numerics (stats::weibull), over the sample's observations.
    let log_t: Vec<f64> = rows.iter().map(|&i| design.outcome(i).ln()).collect();
    let died: Vec<f64> = rows.iter().map(|&i| events.in_sample(i)).collect();
    let constant_at = design
        .names
        .iter()
        .position(|n| n == "constant")
        .ok_or_else(|| EngineError::new("weibull's design has no constant term"))?;
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit = crate::stats::weibull::fit(
        k,
        constant_at,
        &regressors,
        &log_t,
        &died,
        super::deadline::expired,
    )
    .map_err(|failure| fit_failure(failure, "the event"))?;
    let (params, covariance, ll) = (fit.estimate, fit.covariance, fit.log_likelihood);
    let se = |j: usize| covariance[(j, j)].max(0.0).sqrt();
    let mut coefficients: Vec<raw::Coefficient> = design
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            z_coefficient(name.clone(), params[j], se(j), request.level, true, name == "constant")
        })
        .collect();
    coefficients.push(z_coefficient("ln p".into(), params[k], se(k), request.level, false, false));
    let null = fit.null_log_likelihood;
    let mut statistics = vec![
        ("p (shape)".to_owned(), params[k].exp()),
        ("log likelihood".to_owned(), ll),
        ("model df".to_owned(), (k - 1) as f64),
    ];
    if let Some(ll0) = null {
        let chi2 = 2.0 * (ll - ll0);
        let p = statrs::distribution::ChiSquared::new((k - 1).max(1) as f64)
            .map(|d| d.sf(chi2))
            .unwrap_or(f64::NAN);
        statistics.push(("LR chi²".to_owned(), chi2));
        statistics.push(("p (LR chi²)".to_owned(), p));
    }
    Ok(raw::Model {
        population: design.population,
        title: format!("Weibull proportional hazards regression; event {event}"),
        dependent: request.dependent.clone(),
        estimate_label: "hazard ratio",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: k + 1,
        residual_df: design.n as f64 - (k + 1) as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: Some(outcome_levels),
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    })
}

impl Step<'_> {
    /// `weibull <duration> <event> <term>…`.
    pub(in crate::engine) fn weibull(&mut self) -> Result<(), EngineError> {
        self.duration_model(true, weibull_raw)
    }
}
