//! The Blinder–Oaxaca decomposition, as pure numerics: one least-squares fit per group, then
//! the threefold decomposition of the gap in means from the second group's point of view, as
//! Jann's `oaxaca` for Stata and statsmodels' `OaxacaBlinder.three_fold` compute it, with
//! Jann's delta-method variances (regressors taken as stochastic). No dataset, no gate:
//! `engine::commands::decompose::oaxaca_raw` builds each group's sample and asks the gate.

use nalgebra::{DMatrix, DVector};

/// One group's regression: coefficients, their covariance, and the regressors' means with the
/// covariance of those means.
#[derive(Clone, Debug)]
pub struct GroupFit {
    pub beta: DVector<f64>,
    pub beta_covariance: DMatrix<f64>,
    pub means: DVector<f64>,
    pub means_covariance: DMatrix<f64>,
}

/// Fits one group's regression over observations 0..n, `regressors` writing each one's row
/// of `width` columns (the constant among them); `None` when X′X is singular.
pub fn fit_group(
    width: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    outcome: &[f64],
) -> Option<GroupFit> {
    let (k, n) = (width, outcome.len() as f64);
    let mut xtx = DMatrix::<f64>::zeros(k, k);
    let mut xty = DVector::<f64>::zeros(k);
    let mut sum = DVector::<f64>::zeros(k);
    let mut x = vec![0.0; k];
    for (i, &yi) in outcome.iter().enumerate() {
        regressors(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        xtx.ger(1.0, &xi, &xi, 1.0);
        xty.axpy(yi, &xi, 1.0);
        sum += &xi;
    }
    let inverse = xtx.clone().cholesky().map(|c| c.inverse())?;
    let beta = &inverse * &xty;
    let means = &sum / n;
    let mut rss = 0.0;
    let mut scatter = DMatrix::<f64>::zeros(k, k);
    for (i, &yi) in outcome.iter().enumerate() {
        regressors(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let e = yi - xi.dot(&beta);
        rss += e * e;
        let d = &xi - &means;
        scatter.ger(1.0, &d, &d, 1.0);
    }
    let sigma2 = rss / (n - k as f64);
    Some(GroupFit {
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

/// The decomposition's parts, each an estimate with its variance.
#[derive(Clone, Copy, Debug)]
pub struct Decomposition {
    pub mean_one: (f64, f64),
    pub mean_two: (f64, f64),
    pub difference: (f64, f64),
    pub endowments: (f64, f64),
    pub coefficients: (f64, f64),
    pub interaction: (f64, f64),
}

/// The threefold decomposition of ȳ₁ − ȳ₂ with the second group's coefficients as the
/// reference: endowments (x̄₁ − x̄₂)′β₂, coefficients x̄₂′(β₁ − β₂) and their interaction.
pub fn threefold(one: &GroupFit, two: &GroupFit) -> Decomposition {
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
    let ((y1, v1), (y2, v2)) = (mean_of(one), mean_of(two));
    Decomposition {
        mean_one: (y1, v1),
        mean_two: (y2, v2),
        difference: (y1 - y2, v1 + v2),
        endowments: (
            mean_gap.dot(&two.beta),
            quadratic(&mean_gap, &two.beta_covariance) + quadratic(&two.beta, &both_means),
        ),
        coefficients: (
            two.means.dot(&beta_gap),
            quadratic(&two.means, &both_beta) + quadratic(&beta_gap, &two.means_covariance),
        ),
        interaction: (
            mean_gap.dot(&beta_gap),
            quadratic(&mean_gap, &both_beta) + quadratic(&beta_gap, &both_means),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three parts add up to the gap in means, each group's mean is its sample mean,
    /// and with one regressor the parts have their closed forms.
    #[test]
    fn parts_add_up_to_the_gap_in_means() {
        let x1 = [1.0, 2.0, 3.0, 4.0, 6.0];
        let y1 = [2.1, 3.9, 6.2, 7.8, 12.1];
        let x2 = [0.5, 1.0, 2.0, 2.5, 3.0, 3.5];
        let y2 = [1.2, 1.4, 2.6, 2.9, 3.1, 3.9];
        fn group(x: &[f64], y: &[f64]) -> GroupFit {
            let row = |i: usize, r: &mut [f64]| r.copy_from_slice(&[x[i], 1.0]);
            fit_group(2, &row, y).unwrap()
        }
        let (one, two) = (group(&x1, &y1), group(&x2, &y2));
        let d = threefold(&one, &two);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((d.mean_one.0 - mean(&y1)).abs() < 1e-12);
        assert!((d.mean_two.0 - mean(&y2)).abs() < 1e-12);
        let parts = d.endowments.0 + d.coefficients.0 + d.interaction.0;
        assert!((parts - (mean(&y1) - mean(&y2))).abs() < 1e-12, "{parts}");
        // Endowments: (x̄₁ − x̄₂) times the second group's slope.
        let slope2 = {
            let (mx, my) = (mean(&x2), mean(&y2));
            let sxy: f64 = x2.iter().zip(&y2).map(|(x, y)| (x - mx) * (y - my)).sum();
            sxy / x2.iter().map(|x| (x - mx).powi(2)).sum::<f64>()
        };
        let endowments = (mean(&x1) - mean(&x2)) * slope2;
        assert!((d.endowments.0 - endowments).abs() < 1e-12, "{:?}", d.endowments);
        for (_, variance) in [d.difference, d.endowments, d.coefficients, d.interaction] {
            assert!(variance > 0.0);
        }
    }

    #[test]
    fn a_regressor_constant_within_the_group_is_collinear() {
        let row = |_: usize, r: &mut [f64]| r.copy_from_slice(&[2.0, 1.0]);
        assert!(fit_group(2, &row, &[1.0, 2.0, 3.0]).is_none());
    }
}
