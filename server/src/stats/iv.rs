//! Instrumental-variables regression, as pure numerics: two-stage least squares, LIML and
//! two-step GMM from the cross-products of the design's columns, as Stata's `ivregress` and
//! linearmodels compute them. No dataset, no gate: `engine::commands::models::ivregress_raw`
//! builds the sample, names the columns and decides what may be released.

use nalgebra::{DMatrix, DVector};

/// The estimators of `ivregress`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum IvEstimator {
    /// Two-stage least squares (`tsls`, `2sls`).
    #[default]
    Tsls,
    /// Limited-information maximum likelihood: the k-class estimator with κ the smallest
    /// eigenvalue of (W′M_Z W)⁻¹ W′M_X₁ W, W = [y, endogenous].
    Liml,
    /// Two-step efficient GMM with a heteroskedasticity-robust weight matrix (from the 2SLS
    /// residuals) and robust errors (from the final ones), as linearmodels' IVGMM.
    Gmm,
}

/// Which of a row's columns play which part. Each is a list of column indices into the
/// row `fit`'s `row` writes.
pub struct IvColumns<'a> {
    /// X: the endogenous and exogenous regressors (and the constant), in the order of the
    /// estimate.
    pub regressors: &'a [usize],
    /// The endogenous regressors among `regressors`.
    pub endogenous: &'a [usize],
    /// Z: the exogenous regressors, the excluded instruments and the constant.
    pub instruments: &'a [usize],
}

/// An instrumental-variables fit.
#[derive(Clone, Debug)]
pub struct IvFit {
    /// One coefficient per regressor column, in `IvColumns::regressors`' order.
    pub beta: DVector<f64>,
    /// σ² = RSS/N times the inverse (Stata's default, without `small`); robust for GMM.
    pub covariance: DMatrix<f64>,
    /// LIML's κ.
    pub kappa: Option<f64>,
    /// The residual and total (about the mean) sums of squares.
    pub rss: f64,
    pub tss: f64,
}

/// The instruments or regressors are collinear: a cross-product matrix is singular.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collinear;

/// Fits y = Xβ + e with instruments Z over observations 0..n: `row` writes each one's
/// `width` columns, `outcome` holds y. 2SLS replaces the endogenous regressors by their
/// projection on Z and takes residuals with the original regressors.
pub fn fit(
    width: usize,
    row: &dyn Fn(usize, &mut [f64]),
    outcome: &[f64],
    columns: &IvColumns<'_>,
    estimator: IvEstimator,
) -> Result<IvFit, Collinear> {
    let IvColumns { regressors: x_columns, endogenous, instruments: z_columns } = *columns;
    let k = width;
    let kz = z_columns.len();
    // Every cross-product of the columns and y, in one pass: each estimator takes the blocks
    // it needs.
    let mut moments = DMatrix::<f64>::zeros(k + 1, k + 1);
    let mut values = vec![0.0; k + 1];
    for (i, &y) in outcome.iter().enumerate() {
        row(i, &mut values[..k]);
        values[k] = y;
        let v = DVector::from_column_slice(&values);
        moments.ger(1.0, &v, &v, 1.0);
    }
    let block =
        |a: &[usize], b: &[usize]| DMatrix::from_fn(a.len(), b.len(), |r, c| moments[(a[r], b[c])]);
    let y_index = [k];
    let (zz, zx, zy) =
        (block(z_columns, z_columns), block(z_columns, x_columns), block(z_columns, &y_index));
    let (xx, xy) = (block(x_columns, x_columns), block(x_columns, &y_index));
    let zz_inverse = zz.clone().cholesky().ok_or(Collinear)?.inverse();
    // X′P_Z X = X′Z (Z′Z)⁻¹ Z′X and X′P_Z y = X′Z (Z′Z)⁻¹ Z′y.
    let projected = zx.transpose() * &zz_inverse;
    let (xpx, xpy) = (&projected * &zx, &projected * &zy);
    let residuals = |beta: &DVector<f64>| -> Vec<f64> {
        let mut values = vec![0.0; k];
        outcome
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                row(i, &mut values);
                let fitted: f64 =
                    x_columns.iter().zip(beta.iter()).map(|(&j, b)| values[j] * b).sum();
                y - fitted
            })
            .collect()
    };
    let n = outcome.len() as f64;
    let (beta, covariance, kappa) = match estimator {
        IvEstimator::Tsls | IvEstimator::Gmm => {
            let inverse = xpx.clone().cholesky().ok_or(Collinear)?.inverse();
            let beta: DVector<f64> = (&inverse * &xpy).column(0).into();
            let rss: f64 = residuals(&beta).iter().map(|e| e * e).sum();
            (beta, inverse * (rss / n), None)
        }
        IvEstimator::Liml => {
            // W = [y, endogenous]; X₁ = the exogenous regressors with the constant.
            let exogenous_x: Vec<usize> =
                x_columns.iter().copied().filter(|j| !endogenous.contains(j)).collect();
            let w: Vec<usize> = std::iter::once(k).chain(endogenous.iter().copied()).collect();
            let residual_of = |on: &[usize]| -> Result<DMatrix<f64>, Collinear> {
                if on.is_empty() {
                    return Ok(block(&w, &w));
                }
                let inverse = block(on, on).cholesky().ok_or(Collinear)?.inverse();
                Ok(block(&w, &w) - block(&w, on) * inverse * block(on, &w))
            };
            let (w_mz_w, w_mx1_w) = (residual_of(z_columns)?, residual_of(&exogenous_x)?);
            // The smallest eigenvalue of (W′M_Z W)⁻¹ W′M_X₁ W, symmetrised by the Cholesky
            // factor L of W′M_Z W: L⁻¹ (W′M_X₁ W) L⁻ᵀ.
            let l = w_mz_w.cholesky().ok_or(Collinear)?.l();
            let l_inverse = l.try_inverse().ok_or(Collinear)?;
            let q = &l_inverse * w_mx1_w * l_inverse.transpose();
            let kappa = q.symmetric_eigen().eigenvalues.min();
            let v = &xx * (1.0 - kappa) + &xpx * kappa;
            let rhs = &xy * (1.0 - kappa) + &xpy * kappa;
            let inverse = v.cholesky().ok_or(Collinear)?.inverse();
            let beta: DVector<f64> = (&inverse * rhs).column(0).into();
            let rss: f64 = residuals(&beta).iter().map(|e| e * e).sum();
            (beta, inverse * (rss / n), Some(kappa))
        }
    };
    let (beta, covariance) = if estimator == IvEstimator::Gmm {
        // S = Σ e² z z′ / n of given residuals.
        let moment_cov = |e: &[f64]| {
            let mut s = DMatrix::<f64>::zeros(kz, kz);
            let mut values = vec![0.0; k];
            for (i, e) in e.iter().enumerate() {
                row(i, &mut values);
                let z = DVector::from_iterator(kz, z_columns.iter().map(|&j| values[j]));
                s.ger(e * e / n, &z, &z, 1.0);
            }
            s
        };
        let weight = moment_cov(&residuals(&beta)).cholesky().ok_or(Collinear)?.inverse();
        let xzw = zx.transpose() * &weight;
        let bread = (&xzw * &zx).cholesky().ok_or(Collinear)?.inverse();
        let beta: DVector<f64> = (&bread * (&xzw * &zy)).column(0).into();
        // Robust errors from the final residuals: (X′Z W Z′X)⁻¹ X′Z W S W Z′X (X′Z W Z′X)⁻¹,
        // in sums (the factors of n cancel but one).
        let s = moment_cov(&residuals(&beta)) * n;
        let covariance = &bread * (&xzw * s * xzw.transpose()) * &bread;
        (beta, covariance)
    } else {
        (beta, covariance)
    };
    let rss: f64 = residuals(&beta).iter().map(|e| e * e).sum();
    let (sum, sum_sq) = outcome.iter().fold((0.0, 0.0), |(s, q), &y| (s + y, q + y * y));
    Ok(IvFit { beta, covariance, kappa, rss, tss: sum_sq - sum * sum / n })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Just identified with one instrument, 2SLS is the Wald estimator
    /// cov(z, y) / cov(z, x), and LIML equals it (κ = 1).
    #[test]
    fn just_identified_fit_is_the_ratio_of_covariances() {
        let z = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let x = [1.5, 1.9, 3.8, 3.9, 5.6, 6.1, 7.7, 8.4];
        let y = [2.0, 3.5, 5.1, 6.8, 8.1, 9.9, 11.2, 13.5];
        // Columns: 0 = x (endogenous), 1 = z (excluded instrument), 2 = constant.
        let row = |i: usize, r: &mut [f64]| r.copy_from_slice(&[x[i], z[i], 1.0]);
        let columns = IvColumns { regressors: &[0, 2], endogenous: &[0], instruments: &[1, 2] };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let cov = |a: &[f64], b: &[f64]| {
            let (ma, mb) = (mean(a), mean(b));
            a.iter().zip(b).map(|(p, q)| (p - ma) * (q - mb)).sum::<f64>()
        };
        let wald = cov(&z, &y) / cov(&z, &x);
        for estimator in [IvEstimator::Tsls, IvEstimator::Liml, IvEstimator::Gmm] {
            let fit = fit(3, &row, &y, &columns, estimator).unwrap();
            assert!((fit.beta[0] - wald).abs() < 1e-9, "{estimator:?}: {} ≠ {wald}", fit.beta[0]);
            let intercept = mean(&y) - wald * mean(&x);
            assert!((fit.beta[1] - intercept).abs() < 1e-9, "{estimator:?}");
            if let Some(kappa) = fit.kappa {
                assert!((kappa - 1.0).abs() < 1e-9, "κ = {kappa}");
            }
        }
    }

    #[test]
    fn an_instrument_that_never_varies_is_collinear() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let row = |i: usize, r: &mut [f64]| r.copy_from_slice(&[i as f64, 1.0, 1.0]);
        let columns = IvColumns { regressors: &[0, 2], endogenous: &[0], instruments: &[1, 2] };
        let failure = fit(3, &row, &y, &columns, IvEstimator::Tsls);
        assert_eq!(failure.unwrap_err(), Collinear);
    }
}
