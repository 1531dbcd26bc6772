//! The Weibull proportional-hazards model h(t) = p t^(p−1) e^(x′β) with right censoring, as
//! pure numerics: Newton–Raphson on the log likelihood in (β, θ = ln p), as Stata's
//! `streg, distribution(weibull)` fits it. No dataset, no gate:
//! `engine::commands::weibull::weibull_raw` builds the sample and decides what may be
//! released.

use nalgebra::{DMatrix, DVector};

use super::likelihood::{FitFailure, newton_raphson};

/// A Weibull fit.
#[derive(Clone, Debug)]
pub struct WeibullFit {
    /// β, then θ = ln p last.
    pub estimate: DVector<f64>,
    /// The inverse of the observed information.
    pub covariance: DMatrix<f64>,
    pub log_likelihood: f64,
    /// The log likelihood of the model with the constant and the shape only; `None` when
    /// that does not converge.
    pub null_log_likelihood: Option<f64>,
}

/// Fits the model over observations 0..n: `regressors` writes each one's row of `width`
/// columns, of which column `constant` is the constant; `log_times[i]` is ln of its
/// (positive) duration and `died[i]` 1 where that ended in the event, 0 where censored.
/// Stops when `expired` says the time is up.
pub fn fit(
    width: usize,
    constant: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    log_times: &[f64],
    died: &[f64],
    expired: impl Fn() -> bool,
) -> Result<WeibullFit, FitFailure> {
    let (k, n) = (width, log_times.len());
    let mut xs = vec![0.0; n * k];
    for r in 0..n {
        regressors(r, &mut xs[r * k..(r + 1) * k]);
    }
    // Per unit, with u = e^(η + p ln t): ℓ = d(θ + (p−1) ln t + η) − u, and its derivatives
    // in η and θ below.
    let evaluate = |params: &DVector<f64>| {
        let (beta, theta) = (params.rows(0, k), params[k]);
        let p = theta.exp();
        let mut ll = 0.0;
        let mut gradient = DVector::<f64>::zeros(k + 1);
        let mut information = DMatrix::<f64>::zeros(k + 1, k + 1);
        let mut x = DVector::<f64>::zeros(k);
        for r in 0..n {
            x.copy_from_slice(&xs[r * k..(r + 1) * k]);
            let eta = x.dot(&beta);
            let (d, pl) = (died[r], p * log_times[r]);
            let u = (eta + pl).exp();
            ll += d * (theta + (p - 1.0) * log_times[r] + eta) - u;
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
    let total_time: f64 = log_times.iter().map(|l| l.exp()).sum();
    let events = died.iter().filter(|&&d| d == 1.0).count();
    let mut start = DVector::<f64>::zeros(k + 1);
    start[constant] = (events.max(1) as f64 / total_time).ln();
    let Some((estimate, log_likelihood, information)) =
        newton_raphson(start.clone(), evaluate, &expired)
            .filter(|(b, _, _)| b.rows(0, k).amax() <= 700.0)
    else {
        return Err(FitFailure::NotConverged);
    };
    let covariance = information.cholesky().map(|c| c.inverse()).ok_or(FitFailure::Singular)?;
    // The model with the constant and the shape only, for the likelihood-ratio test.
    let null_log_likelihood = {
        let mut only = DVector::<f64>::zeros(2);
        only[0] = start[constant];
        let one_column = |params: &DVector<f64>| {
            let mut full = DVector::<f64>::zeros(k + 1);
            full[constant] = params[0];
            full[k] = params[1];
            let (l, g, h) = evaluate(&full);
            let pick = [constant, k];
            let g2 = DVector::from_fn(2, |a, _| g[pick[a]]);
            let h2 = DMatrix::from_fn(2, 2, |a, b| h[(pick[a], pick[b])]);
            (l, g2, h2)
        };
        newton_raphson(only, one_column, &expired).map(|(_, l, _)| l)
    };
    Ok(WeibullFit { estimate, covariance, log_likelihood, null_log_likelihood })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the constant alone and every unit dying, the maximum-likelihood shape p solves
    /// 1/p + mean(ln t) − Σ tᵖ ln t / Σ tᵖ = 0 and the scale e^β₀ = n / Σ tᵖ: the textbook
    /// equations, checked here at the fit.
    #[test]
    fn constant_only_fit_solves_the_weibull_likelihood_equations() {
        let times = [0.4, 1.1, 1.7, 2.0, 2.6, 3.3, 4.1, 5.0, 6.2, 8.5];
        let log_times: Vec<f64> = times.iter().map(|t: &f64| t.ln()).collect();
        let died = [1.0; 10];
        let constant = |_: usize, x: &mut [f64]| x[0] = 1.0;
        let fit = fit(1, 0, &constant, &log_times, &died, || false).unwrap();
        let (b0, p) = (fit.estimate[0], fit.estimate[1].exp());
        let tp: f64 = times.iter().map(|t| t.powf(p)).sum();
        let tp_ln: f64 = times.iter().map(|t| t.powf(p) * t.ln()).sum();
        let mean_ln = log_times.iter().sum::<f64>() / 10.0;
        let shape_equation = 1.0 / p + mean_ln - tp_ln / tp;
        assert!(shape_equation.abs() < 1e-9, "{shape_equation} at p = {p}");
        assert!((b0.exp() - 10.0 / tp).abs() < 1e-9, "scale {} ≠ {}", b0.exp(), 10.0 / tp);
        // The null model is this model: the likelihood-ratio statistic is 0.
        let null = fit.null_log_likelihood.unwrap();
        assert!((null - fit.log_likelihood).abs() < 1e-9);
    }
}
