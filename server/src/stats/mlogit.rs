//! The multinomial logit, as pure numerics: Newton–Raphson on the observed information of
//! the log likelihood Σᵢ (η_{i,yᵢ} − ln(1 + Σⱼ exp η_{ij})), the base outcome's η being 0,
//! then the classical, robust or clustered covariance as Stata's `mlogit` computes them. No
//! dataset, no gate: `engine::commands::models::mlogit_raw` builds the sample, decides what
//! may be released and names the levels.

use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};

use super::likelihood::{FitFailure, Variance, newton_raphson};

/// A multinomial-logit fit over `others` outcomes besides the base one.
#[derive(Clone, Debug)]
pub struct MlogitFit {
    /// The coefficients of the j-th other outcome (j = 0..others) at `j * width ..`.
    pub estimate: DVector<f64>,
    pub covariance: DMatrix<f64>,
    pub log_likelihood: f64,
}

/// Each outcome's probability at η (one per other outcome), and ln(1 + Σ exp ηⱼ), computed
/// without overflow.
fn probabilities(eta: &[f64], into: &mut [f64]) -> f64 {
    let top = eta.iter().copied().fold(0.0, f64::max);
    let denominator = (-top).exp() + eta.iter().map(|e| (e - top).exp()).sum::<f64>();
    for (pj, e) in into.iter_mut().zip(eta) {
        *pj = (e - top).exp() / denominator;
    }
    top + denominator.ln()
}

/// Fits the multinomial logit over observations 0..n: `regressors` writes each one's row of
/// `width` columns, `choices[i]` is 0 for the base outcome and j + 1 for the j-th of the
/// `others`. Stops when `expired` says the time is up.
pub fn fit(
    width: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    choices: &[usize],
    others: usize,
    variance: Variance<'_>,
    expired: impl Fn() -> bool,
) -> Result<MlogitFit, FitFailure> {
    let (k, m) = (width, others);
    let p = m * k;
    let evaluate = |beta: &DVector<f64>| {
        let mut ll = 0.0;
        let mut gradient = DVector::<f64>::zeros(p);
        let mut information = DMatrix::<f64>::zeros(p, p);
        let mut x = vec![0.0; k];
        let mut probability = vec![0.0; m];
        for (i, &chosen) in choices.iter().enumerate() {
            regressors(i, &mut x);
            let xi = DVector::from_column_slice(&x);
            let eta: Vec<f64> = (0..m).map(|j| xi.dot(&beta.rows(j * k, k))).collect();
            let log_denominator = probabilities(&eta, &mut probability);
            ll += if chosen > 0 { eta[chosen - 1] } else { 0.0 } - log_denominator;
            let outer = &xi * xi.transpose();
            for j in 0..m {
                let observed = f64::from(chosen == j + 1);
                gradient.rows_mut(j * k, k).axpy(observed - probability[j], &xi, 1.0);
                for l in 0..m {
                    let weight = probability[j] * (f64::from(j == l) - probability[l]);
                    let mut block = information.view_mut((j * k, l * k), (k, k));
                    block += &outer * weight;
                }
            }
        }
        (ll, gradient, information)
    };
    let Some((beta, ll, information)) =
        newton_raphson(DVector::zeros(p), evaluate, expired).filter(|(b, _, _)| b.amax() <= 50.0)
    else {
        return Err(FitFailure::NotConverged);
    };
    let bread = information.cholesky().map(|c| c.inverse()).ok_or(FitFailure::Singular)?;
    // robust and cluster(): the sandwich of the scores (yᵢⱼ − pᵢⱼ)·xᵢ, with Stata's n/(n−1)
    // or G/(G−1), as for the binary models.
    let covariance = if let Variance::Information = variance {
        bread
    } else {
        let mut x = vec![0.0; k];
        let mut probability = vec![0.0; m];
        let mut meat = DMatrix::<f64>::zeros(p, p);
        let mut by_cluster: HashMap<&str, DVector<f64>> = HashMap::new();
        for (i, &chosen) in choices.iter().enumerate() {
            regressors(i, &mut x);
            let xi = DVector::from_column_slice(&x);
            let eta: Vec<f64> = (0..m).map(|j| xi.dot(&beta.rows(j * k, k))).collect();
            probabilities(&eta, &mut probability);
            let mut score = DVector::<f64>::zeros(p);
            for (j, pj) in probability.iter().enumerate() {
                score.rows_mut(j * k, k).axpy(f64::from(chosen == j + 1) - pj, &xi, 0.0);
            }
            match variance {
                Variance::Clustered(keys) => {
                    let key = keys.get(i).copied().unwrap_or_default();
                    *by_cluster.entry(key).or_insert_with(|| DVector::zeros(p)) += score;
                }
                _ => meat += &score * score.transpose(),
            }
        }
        let correction = if let Variance::Clustered(_) = variance {
            let g = super::add_cluster_scores(&mut meat, by_cluster.values())
                .ok_or(FitFailure::OneCluster)?;
            g / (g - 1.0)
        } else {
            let n = choices.len() as f64;
            n / (n - 1.0)
        };
        &bread * meat * &bread * correction
    };
    Ok(MlogitFit { estimate: beta, covariance, log_likelihood: ll })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With one constant regressor the fit is the saturated one: each outcome's coefficient
    /// is the log odds of its share against the base's, and ℓ = Σ nⱼ ln(nⱼ/n).
    #[test]
    fn constant_only_fit_gives_the_log_odds_of_the_shares() {
        let choices: Vec<usize> = [vec![0; 50], vec![1; 30], vec![2; 20]].concat();
        let constant = |_: usize, x: &mut [f64]| x[0] = 1.0;
        let fit = fit(1, &constant, &choices, 2, Variance::Information, || false).unwrap();
        assert!((fit.estimate[0] - (30.0f64 / 50.0).ln()).abs() < 1e-9, "{}", fit.estimate);
        assert!((fit.estimate[1] - (20.0f64 / 50.0).ln()).abs() < 1e-9, "{}", fit.estimate);
        let expected: f64 = [50.0f64, 30.0, 20.0].iter().map(|c| c * (c / 100.0).ln()).sum();
        assert!((fit.log_likelihood - expected).abs() < 1e-9, "{}", fit.log_likelihood);
        // The variance of a log odds ratio of two shares: 1/n₁ + 1/n₀.
        assert!((fit.covariance[(0, 0)] - (1.0 / 30.0 + 1.0 / 50.0)).abs() < 1e-9);
        assert!((fit.covariance[(0, 1)] - 1.0 / 50.0).abs() < 1e-9);
    }

    #[test]
    fn clustered_errors_over_one_cluster_are_refused() {
        let choices = [0, 1, 0, 1, 1, 0];
        let constant = |_: usize, x: &mut [f64]| x[0] = 1.0;
        let keys = ["a"; 6];
        let failure = fit(1, &constant, &choices, 1, Variance::Clustered(&keys), || false);
        assert_eq!(failure.unwrap_err(), FitFailure::OneCluster);
    }

    #[test]
    fn an_outcome_predicted_perfectly_does_not_converge() {
        // x separates the two outcomes: the likelihood rises without bound.
        let choices = [0, 0, 0, 1, 1, 1];
        let row = |i: usize, x: &mut [f64]| {
            x[0] = 1.0;
            x[1] = i as f64;
        };
        let failure = fit(2, &row, &choices, 1, Variance::Information, || false);
        assert_eq!(failure.unwrap_err(), FitFailure::NotConverged);
    }
}
