//! Ordinary least squares, as pure numerics: the normal equations by Cholesky, then the
//! residuals for the classical, robust (HC1) or clustered covariance, as Stata's `regress`
//! computes them. No dataset, no gate: `engine::commands::models::ols_raw` builds the sample
//! and the output.

use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};

use super::likelihood::Variance;

/// A least-squares fit.
#[derive(Clone, Debug)]
pub struct OlsFit {
    pub beta: DVector<f64>,
    pub covariance: DMatrix<f64>,
    /// The residual sum of squares.
    pub rss: f64,
    /// Σy and Σy², for the total sum of squares with or without a constant.
    pub sum_y: f64,
    pub sum_y2: f64,
    pub df_resid: f64,
    /// The degrees of freedom of the t tests: the residual df, or G − 1 clustered.
    pub df_t: f64,
}

/// Why a least-squares fit has no estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OlsFailure {
    /// X′X is singular: one term is a combination of others.
    Collinear,
    /// Clustered errors over fewer than two clusters.
    OneCluster,
}

/// Fits y = Xβ + e over observations 0..n, `regressors` writing each one's row of X.
pub fn fit(
    width: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    outcome: &[f64],
    variance: Variance<'_>,
) -> Result<OlsFit, OlsFailure> {
    let k = width;
    let mut equations = super::NormalEquations::new(k);
    let mut x = vec![0.0; k];
    let (mut sum_y, mut sum_y2) = (0.0, 0.0);
    for (j, &yj) in outcome.iter().enumerate() {
        regressors(j, &mut x);
        equations.add(&x, yj);
        sum_y += yj;
        sum_y2 += yj * yj;
    }
    let (xtx, xty) = equations.finish();
    let inverse = xtx.cholesky().map(|c| c.inverse()).ok_or(OlsFailure::Collinear)?;
    let beta = &inverse * &xty;

    // Second pass: residuals for the error variance and the robust "meat".
    let mut rss = 0.0;
    let mut meat = DMatrix::<f64>::zeros(k, k);
    let mut scores: HashMap<&str, DVector<f64>> = HashMap::new();
    for (j, &yj) in outcome.iter().enumerate() {
        regressors(j, &mut x);
        let xj = DVector::from_column_slice(&x);
        let e = yj - xj.dot(&beta);
        rss += e * e;
        match variance {
            Variance::Robust => meat += (&xj * xj.transpose()) * (e * e),
            Variance::Clustered(keys) => {
                *scores.entry(keys[j]).or_insert_with(|| DVector::zeros(k)) += xj * e;
            }
            Variance::Information => {}
        }
    }
    let (nf, kf) = (outcome.len() as f64, k as f64);
    let df_resid = nf - kf;
    let sigma2 = rss / df_resid;
    let (covariance, df_t) = match variance {
        Variance::Information => (&inverse * sigma2, df_resid),
        Variance::Robust => (&inverse * meat * &inverse * (nf / df_resid), df_resid),
        Variance::Clustered(_) => {
            let g = super::add_cluster_scores(&mut meat, scores.values())
                .ok_or(OlsFailure::OneCluster)?;
            let correction = g / (g - 1.0) * (nf - 1.0) / df_resid;
            (&inverse * meat * &inverse * correction, g - 1.0)
        }
    };
    Ok(OlsFit { beta, covariance, rss, sum_y, sum_y2, df_resid, df_t })
}
