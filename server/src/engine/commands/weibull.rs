//! weibull: the Weibull proportional-hazards regression of a duration, h(t) = p t^(p−1) e^(x′β),
//! with right censoring, by maximum likelihood as Stata's `streg, distribution(weibull)`
//! fits it. Shown as hazard ratios (the constant as the baseline hazard's scale), with the
//! shape p.

use datafusion::arrow::array::{Array, BooleanArray};
use nalgebra::{DMatrix, DVector};
use statrs::distribution::ContinuousCDF;

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::{numbers, numbers_of};
use super::describe::screened;
use super::models::{Design, Errors, OlsRequest, maximize, z_coefficient};
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
    let mut xs = vec![0.0; rows.len() * k];
    for (r, &i) in rows.iter().enumerate() {
        design.row(i, &mut xs[r * k..(r + 1) * k]);
    }
    let log_t: Vec<f64> = rows.iter().map(|&i| design.outcome(i).ln()).collect();
    let died: Vec<f64> = rows.iter().map(|&i| events.in_sample(i)).collect();
    // Parameters (β, θ = ln p). Per unit, with u = e^(η + p ln t):
    // ℓ = d(θ + (p−1) ln t + η) − u, and its derivatives in η and θ below.
    let evaluate = |params: &DVector<f64>| {
        let (beta, theta) = (params.rows(0, k), params[k]);
        let p = theta.exp();
        let mut ll = 0.0;
        let mut gradient = DVector::<f64>::zeros(k + 1);
        let mut information = DMatrix::<f64>::zeros(k + 1, k + 1);
        let mut x = DVector::<f64>::zeros(k);
        for r in 0..rows.len() {
            x.copy_from_slice(&xs[r * k..(r + 1) * k]);
            let eta = x.dot(&beta);
            let (d, pl) = (died[r], p * log_t[r]);
            let u = (eta + pl).exp();
            ll += d * (theta + (p - 1.0) * log_t[r] + eta) - u;
            // Scores in η and θ, then −∂² in (η, η), (η, θ), (θ, θ).
            let (s_eta, s_theta) = (d - u, d * (1.0 + pl) - u * pl);
            let (h_ee, h_et, h_tt) = (u, u * pl, u * pl * (pl + 1.0) - d * pl);
            gradient.rows_mut(0, k).axpy(s_eta, &x, 1.0);
            gradient[k] += s_theta;
            for a in 0..k {
                for b in 0..=a {
                    information[(a, b)] += h_ee * x[a] * x[b];
                }
                information[(k, a)] += h_et * x[a];
            }
            information[(k, k)] += h_tt;
        }
        for a in 0..=k {
            for b in 0..a {
                information[(b, a)] = information[(a, b)];
            }
        }
        (ll, gradient, information)
    };
    // Start from the exponential model's constant, ln(events / total time), and p = 1.
    let total_time: f64 = log_t.iter().map(|l| l.exp()).sum();
    let constant_at = design.names.iter().position(|n| n == "constant").expect("with a constant");
    let mut start = DVector::<f64>::zeros(k + 1);
    start[constant_at] = ((n_events.max(1)) as f64 / total_time).ln();
    let Some((params, ll, information)) =
        maximize(start.clone(), evaluate).filter(|(b, _, _)| b.rows(0, k).amax() <= 700.0)
    else {
        return Err(EngineError::new(
            "the model did not converge: a term may predict the event perfectly, or terms are collinear; remove one or group its levels",
        ));
    };
    let covariance = information.cholesky().map(|c| c.inverse()).ok_or_else(|| {
        EngineError::new("the model's information matrix is singular: remove a collinear term")
    })?;
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
    // The likelihood ratio test against the model with the constant and shape only.
    let null = {
        let mut only = DVector::<f64>::zeros(2);
        only[0] = start[constant_at];
        let one_column = |params: &DVector<f64>| {
            let mut full = DVector::<f64>::zeros(k + 1);
            full[constant_at] = params[0];
            full[k] = params[1];
            let (l, g, h) = evaluate(&full);
            let pick = [constant_at, k];
            let g2 = DVector::from_fn(2, |a, _| g[pick[a]]);
            let h2 = DMatrix::from_fn(2, 2, |a, b| h[(pick[a], pick[b])]);
            (l, g2, h2)
        };
        maximize(only, one_column).map(|(_, l, _)| l)
    };
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
