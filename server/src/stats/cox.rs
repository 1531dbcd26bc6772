//! Cox proportional hazards, as pure numerics: Newton–Raphson on Breslow's partial likelihood
//! for ties (Stata's and statsmodels' default). No dataset, no gate:
//! `engine::commands::models::cox_raw` builds the sample and decides what may be released.

use nalgebra::{DMatrix, DVector};

use super::likelihood::{FitFailure, newton_raphson};

/// A Cox fit.
#[derive(Clone, Debug)]
pub struct CoxFit {
    pub estimate: DVector<f64>,
    /// The inverse of the observed information.
    pub covariance: DMatrix<f64>,
    pub log_likelihood: f64,
    /// The log partial likelihood at β = 0.
    pub null_log_likelihood: f64,
}

/// Fits the hazard ratios exp(β) over observations 0..n: `regressors` writes each one's row
/// of `width` columns (no constant: the baseline hazard absorbs it), `durations[i]` is its
/// time and `failed[i]` whether that time ended in the event rather than in censoring. Stops
/// when `expired` says the time is up.
pub fn fit(
    width: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    durations: &[f64],
    failed: &[bool],
    expired: impl Fn() -> bool,
) -> Result<CoxFit, FitFailure> {
    let k = width;
    // Observations by duration, longest first, so each risk set is a prefix.
    let mut order: Vec<usize> = (0..durations.len()).collect();
    order.sort_by(|&a, &b| durations[b].total_cmp(&durations[a]));
    let mut xs = vec![0.0; order.len() * k];
    for (r, &i) in order.iter().enumerate() {
        regressors(i, &mut xs[r * k..(r + 1) * k]);
    }
    let evaluate = |beta: &DVector<f64>| {
        let mut ll = 0.0;
        let mut gradient = DVector::<f64>::zeros(k);
        let mut information = DMatrix::<f64>::zeros(k, k);
        // Risk-set sums of exp(η), x exp(η) and x x′ exp(η), growing as durations shorten.
        let (mut s0, mut s1, mut s2) = (0.0, DVector::<f64>::zeros(k), DMatrix::<f64>::zeros(k, k));
        let mut r = 0;
        while r < order.len() {
            // All observations with this duration join the risk set before its events count.
            let t = durations[order[r]];
            let mut end = r;
            let (mut d, mut event_x) = (0.0, DVector::<f64>::zeros(k));
            while end < order.len() && durations[order[end]] == t {
                let x = DVector::from_column_slice(&xs[end * k..(end + 1) * k]);
                let eta = x.dot(beta);
                let w = eta.exp();
                s0 += w;
                s1.axpy(w, &x, 1.0);
                s2.ger(w, &x, &x, 1.0);
                if failed[order[end]] {
                    d += 1.0;
                    ll += eta;
                    event_x += &x;
                }
                end += 1;
            }
            if d > 0.0 {
                let mean = &s1 / s0;
                ll -= d * s0.ln();
                gradient += event_x - &mean * d;
                information += (&s2 / s0 - &mean * mean.transpose()) * d;
            }
            r = end;
        }
        (ll, gradient, information)
    };
    let Some((beta, ll, information)) =
        newton_raphson(DVector::zeros(k), evaluate, expired).filter(|(b, _, _)| b.amax() <= 50.0)
    else {
        return Err(FitFailure::NotConverged);
    };
    let covariance = information.cholesky().map(|c| c.inverse()).ok_or(FitFailure::Singular)?;
    let (null_log_likelihood, _, _) = evaluate(&DVector::zeros(k));
    Ok(CoxFit { estimate: beta, covariance, log_likelihood: ll, null_log_likelihood })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two groups without ties or censoring: the partial likelihood of one binary regressor
    /// has the closed form checked here at its maximum (the score is zero there), and at
    /// β = 0 it is −Σ ln(size of each risk set).
    #[test]
    fn partial_likelihood_is_breslows() {
        // Durations 1..=6; x = 1 for the units that fail at 2, 4 and 5.
        let durations = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let xs = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        let failed = [true; 6];
        let row = |i: usize, x: &mut [f64]| x[0] = xs[i];
        let fit = fit(1, &row, &durations, &failed, || false).unwrap();
        let null: f64 = -(1..=6).map(|n| (n as f64).ln()).sum::<f64>();
        assert!((fit.null_log_likelihood - null).abs() < 1e-12, "{}", fit.null_log_likelihood);
        // The score Σ over events of x − (Σ_risk x e^{βx}) / (Σ_risk e^{βx}), at the estimate.
        let b = fit.estimate[0];
        let score: f64 = (0..6)
            .map(|event| {
                let risk = event..6;
                let s0: f64 = risk.clone().map(|j| (b * xs[j]).exp()).sum();
                let s1: f64 = risk.map(|j| xs[j] * (b * xs[j]).exp()).sum();
                xs[event] - s1 / s0
            })
            .sum();
        assert!(score.abs() < 1e-9, "score {score} at β = {b}");
        assert!(fit.log_likelihood > fit.null_log_likelihood || b.abs() < 1e-9);
        assert!(fit.covariance[(0, 0)] > 0.0);
    }

    /// Breslow's log partial likelihood written out directly: each event against every
    /// observation whose duration is at least its own (ties share one risk set).
    fn breslow(beta: &[f64], xs: &[[f64; 2]], durations: &[f64], failed: &[bool]) -> f64 {
        let eta = |j: usize| beta[0] * xs[j][0] + beta[1] * xs[j][1];
        (0..xs.len())
            .filter(|&i| failed[i])
            .map(|i| {
                let risk: f64 = (0..xs.len())
                    .filter(|&j| durations[j] >= durations[i])
                    .map(|j| eta(j).exp())
                    .sum();
                eta(i) - risk.ln()
            })
            .sum()
    }

    #[test]
    fn ties_and_censoring_follow_breslow_at_the_maximum() {
        let durations = [5.0, 2.0, 2.0, 7.0, 3.0, 2.0, 9.0, 3.0, 6.0, 1.0, 4.0, 8.0];
        let failed = [true, true, false, true, true, true, false, false, true, true, true, true];
        let xs: Vec<[f64; 2]> =
            (0..12).map(|i| [(i % 3) as f64 - 1.0, ((i * 7) % 5) as f64 / 2.0]).collect();
        let row = |i: usize, x: &mut [f64]| x.copy_from_slice(&xs[i]);
        let fit = fit(2, &row, &durations, &failed, || false).unwrap();
        let b = [fit.estimate[0], fit.estimate[1]];
        let at = |b: [f64; 2]| breslow(&b, &xs, &durations, &failed);
        assert!((fit.log_likelihood - at(b)).abs() < 1e-10, "{} ≠ {}", fit.log_likelihood, at(b));
        assert!((fit.null_log_likelihood - at([0.0, 0.0])).abs() < 1e-10);
        // The maximum: every central difference of the direct likelihood is zero there.
        let h = 1e-5;
        for a in 0..2 {
            let (mut up, mut down) = (b, b);
            up[a] += h;
            down[a] -= h;
            let slope = (at(up) - at(down)) / (2.0 * h);
            assert!(slope.abs() < 1e-6, "∂ℓ/∂β{a} = {slope} at {b:?}");
        }
    }
}
