//! Pure numerics, apart from the commands that use them: no dataset, no gate, no `Step`.
//! Small helpers shared by the engine and the disclosure gate here; the estimators' numerics
//! in the modules below. Matrices and distributions come from nalgebra and statrs.

pub mod cox;
pub mod iv;
pub mod likelihood;
pub mod mixed;
pub mod mlogit;
pub mod oaxaca;
pub mod ols;
pub mod panel;
pub mod rdd;
pub mod weibull;

use nalgebra::{DMatrix, DVector};

/// The normal equations of a least-squares fit, summed one observation at a time: X′X (its
/// lower triangle while summing) and X′y.
pub struct NormalEquations {
    xtx: DMatrix<f64>,
    xty: DVector<f64>,
}

impl NormalEquations {
    pub fn new(k: usize) -> NormalEquations {
        NormalEquations { xtx: DMatrix::zeros(k, k), xty: DVector::zeros(k) }
    }

    /// Adds one observation: its regressors `x` and its outcome `y`.
    pub fn add(&mut self, x: &[f64], y: f64) {
        for a in 0..x.len() {
            self.xty[a] += x[a] * y;
            for b in 0..=a {
                self.xtx[(a, b)] += x[a] * x[b];
            }
        }
    }

    /// X′X whole (the upper triangle mirrored from the lower) and X′y.
    pub fn finish(mut self) -> (DMatrix<f64>, DVector<f64>) {
        let k = self.xty.len();
        for a in 0..k {
            for b in 0..a {
                self.xtx[(b, a)] = self.xtx[(a, b)];
            }
        }
        (self.xtx, self.xty)
    }
}

/// Adds the outer product of each cluster's summed scores to `meat` and returns the number of
/// clusters (for Stata's G/(G−1)); `None`, adding nothing, when there are fewer than two.
pub fn add_cluster_scores<'s>(
    meat: &mut DMatrix<f64>,
    sums: impl ExactSizeIterator<Item = &'s DVector<f64>>,
) -> Option<f64> {
    let clusters = sums.len();
    if clusters < 2 {
        return None;
    }
    for s in sums {
        meat.ger(1.0, s, s, 1.0);
    }
    Some(clusters as f64)
}

/// The `p` quantile (0..=1) of sorted values by linear interpolation between order statistics
/// (Hyndman–Fan type 7, the default of R, NumPy and pandas).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// [`quantile_sorted`] without sorting: two selections, linear in the number of values. The
/// values are reordered.
pub fn quantile_unsorted(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (values.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let (_, &mut at_lo, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let at_hi = if h > lo as f64 {
        above.iter().copied().min_by(f64::total_cmp).unwrap_or(at_lo)
    } else {
        at_lo
    };
    Some(at_lo + (h - lo as f64) * (at_hi - at_lo))
}

/// How many sorted values lie strictly below and strictly above `value`.
pub fn units_beside(sorted: &[f64], value: f64) -> (u64, u64) {
    let below = sorted.partition_point(|&v| v < value);
    let not_above = sorted.partition_point(|&v| v <= value);
    (below as u64, (sorted.len() - not_above) as u64)
}

/// The Gini coefficient of sorted values: Σ (2i − n − 1) x₍ᵢ₎ / (n Σ x), i = 1..n.
pub fn gini_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len() as f64;
    let total: f64 = sorted.iter().sum();
    if sorted.is_empty() || total == 0.0 {
        return None;
    }
    let weighted: f64 =
        sorted.iter().enumerate().map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x).sum();
    Some(weighted / (n * total))
}

/// Sorts finite values ascending.
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_unstable_by(f64::total_cmp);
    values
}

/// D'Agostino and Pearson's omnibus test of normality from the sample skewness, kurtosis and
/// size, as scipy.stats.normaltest: (z of skewness, z of kurtosis, K², p of χ²(2)).
pub fn dagostino_pearson(skew: f64, kurt: f64, n: f64) -> (f64, f64, f64, f64) {
    // skewtest
    let y = skew * ((n + 1.0) * (n + 3.0) / (6.0 * (n - 2.0))).sqrt();
    let beta2 = 3.0 * (n * n + 27.0 * n - 70.0) * (n + 1.0) * (n + 3.0)
        / ((n - 2.0) * (n + 5.0) * (n + 7.0) * (n + 9.0));
    let w2 = -1.0 + (2.0 * (beta2 - 1.0)).sqrt();
    let delta = 1.0 / (0.5 * w2.ln()).sqrt();
    let alpha = (2.0 / (w2 - 1.0)).sqrt();
    let y = if y == 0.0 { 1.0 } else { y };
    let z_skew = delta * (y / alpha + ((y / alpha).powi(2) + 1.0).sqrt()).ln();
    // kurtosistest
    let e = 3.0 * (n - 1.0) / (n + 1.0);
    let var = 24.0 * n * (n - 2.0) * (n - 3.0) / ((n + 1.0).powi(2) * (n + 3.0) * (n + 5.0));
    let x = (kurt - e) / var.sqrt();
    let sqrt_beta1 = 6.0 * (n * n - 5.0 * n + 2.0) / ((n + 7.0) * (n + 9.0))
        * (6.0 * (n + 3.0) * (n + 5.0) / (n * (n - 2.0) * (n - 3.0))).sqrt();
    let a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + (1.0 + 4.0 / sqrt_beta1.powi(2)).sqrt());
    let term1 = 1.0 - 2.0 / (9.0 * a);
    let denom = 1.0 + x * (2.0 / (a - 4.0)).sqrt();
    let term2 = denom.signum() * ((1.0 - 2.0 / a) / denom.abs()).cbrt();
    let z_kurt = (term1 - term2) / (2.0 / (9.0 * a)).sqrt();
    let k2 = z_skew * z_skew + z_kurt * z_kurt;
    // The survival function of χ²(2) is exp(−x/2).
    (z_skew, z_kurt, k2, (-k2 / 2.0).exp())
}

/// Pairwise comparisons of group means after a one-way analysis of variance: for each pair
/// (i < j, in order) the difference mean_i − mean_j, its standard error
/// √(MSE (1/n_i + 1/n_j)) with MSE = residual SS / (N − k), t, and the two-sided p multiplied
/// by the number of pairs (Bonferroni), capped at 1.
pub fn pairwise_bonferroni(
    means: &[f64],
    counts: &[f64],
    residual_ss: f64,
    n: f64,
) -> Vec<[f64; 4]> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let k = means.len();
    let df = (n - k as f64).max(1.0);
    let mse = residual_ss / df;
    let pairs = (k * k.saturating_sub(1) / 2).max(1) as f64;
    let t_dist = StudentsT::new(0.0, 1.0, df).ok();
    let mut rows = Vec::with_capacity(k * k.saturating_sub(1) / 2);
    for i in 0..k {
        for j in i + 1..k {
            let difference = means[i] - means[j];
            let se = (mse * (1.0 / counts[i] + 1.0 / counts[j])).sqrt();
            let t = difference / se;
            let p = t_dist.as_ref().map_or(f64::NAN, |d| (2.0 * d.sf(t.abs()) * pairs).min(1.0));
            rows.push([difference, se, t, p]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selecting_gives_the_same_quantiles_as_sorting() {
        let values: Vec<f64> = (0..1001).map(|i| ((i * 7919) % 1009) as f64 * 0.5).collect();
        let sorted = sorted(values.clone());
        for p in [0.0, 0.01, 0.25, 0.5, 0.99, 0.999, 1.0] {
            let mut scratch = values.clone();
            assert_eq!(quantile_unsorted(&mut scratch, p), quantile_sorted(&sorted, p), "p = {p}");
        }
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(3.0));
        assert_eq!(quantile_sorted(&v, 0.25), Some(2.0));
        // numpy.percentile([1,2,3,4,10], 90) == 7.6
        assert!((quantile_sorted(&v, 0.9).unwrap() - 7.6).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(units_beside(&[1.0, 2.0, 2.0, 3.0], 2.0), (1, 1));
    }
}
