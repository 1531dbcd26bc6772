//! The linear mixed model with a random intercept per group, y = x′β + u_g + e, as pure
//! numerics: restricted maximum likelihood (REML) as statsmodels' `MixedLM` and Stata's
//! `mixed, reml` fit it.
//!
//! With γ = σ²_u/σ²_e, each group's covariance is σ²_e(I + γ11′), whose inverse and determinant
//! have closed forms. So X′V⁻¹X, X′V⁻¹y and y′V⁻¹y need only each group's sums, β and σ²_e
//! follow from γ, and the REML likelihood is maximised over γ alone: one dimension, searched
//! on a grid of ln γ and then by golden section. The fixed effects' standard errors are
//! σ²_e(X′V⁻¹X)⁻¹, as Stata and R's lme4 report them. No dataset, no gate:
//! `engine::commands::mixed::mixed_raw` builds the sample and decides what may be released.

use std::collections::BTreeMap;

use nalgebra::{DMatrix, DVector};

/// A REML fit.
#[derive(Clone, Debug)]
pub struct MixedFit {
    pub beta: DVector<f64>,
    /// σ²_e(X′V⁻¹X)⁻¹.
    pub covariance: DMatrix<f64>,
    /// γ = σ²_u/σ²_e at the maximum (0 at the boundary, where the model is OLS).
    pub gamma: f64,
    /// σ²_e.
    pub scale: f64,
    pub log_likelihood: f64,
}

/// Why a REML fit has no estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixedFailure {
    /// X′V⁻¹X is singular at every γ, or the time ran out.
    Collinear,
    /// X′V⁻¹X is singular at the maximum.
    Singular,
}

/// Fits the model over observations 0..n: `regressors` writes each one's row of `width`
/// columns (the constant among them), `groups[i]` is its group's number. Stops when
/// `expired` says the time is up.
pub fn fit(
    width: usize,
    regressors: &dyn Fn(usize, &mut [f64]),
    outcome: &[f64],
    groups: &[usize],
    expired: impl Fn() -> bool,
) -> Result<MixedFit, MixedFailure> {
    let k = width;
    let empty = || GroupSums {
        n: 0.0,
        xtx: DMatrix::zeros(k, k),
        x_sum: DVector::zeros(k),
        xty: DVector::zeros(k),
        y_sum: 0.0,
        yty: 0.0,
    };
    let mut by_group: BTreeMap<usize, GroupSums> = BTreeMap::new();
    let mut x = vec![0.0; k];
    for (i, (&yi, &g)) in outcome.iter().zip(groups).enumerate() {
        regressors(i, &mut x);
        let xi = DVector::from_column_slice(&x);
        let sums = by_group.entry(g).or_insert_with(empty);
        sums.n += 1.0;
        sums.xtx.ger(1.0, &xi, &xi, 1.0);
        sums.x_sum += &xi;
        sums.xty.axpy(yi, &xi, 1.0);
        sums.y_sum += yi;
        sums.yty += yi * yi;
    }
    let groups: Vec<GroupSums> = by_group.into_values().collect();
    let mut totals = empty();
    for g in &groups {
        totals.n += g.n;
        totals.xtx += &g.xtx;
        totals.x_sum += &g.x_sum;
        totals.xty += &g.xty;
        totals.y_sum += g.y_sum;
        totals.yty += g.yty;
    }
    let (gamma, at) =
        maximize_over_gamma(&groups, &totals, k, expired).ok_or(MixedFailure::Collinear)?;
    let covariance = at
        .information
        .clone()
        .cholesky()
        .map(|c| c.inverse() * at.scale)
        .ok_or(MixedFailure::Singular)?;
    Ok(MixedFit {
        beta: at.beta,
        covariance,
        gamma,
        scale: at.scale,
        log_likelihood: at.log_likelihood,
    })
}

/// One group's sums: units, X′X, X′1, X′y, 1′y and y′y.
struct GroupSums {
    n: f64,
    xtx: DMatrix<f64>,
    x_sum: DVector<f64>,
    xty: DVector<f64>,
    y_sum: f64,
    yty: f64,
}

/// The REML fit at one γ.
struct Profile {
    log_likelihood: f64,
    beta: DVector<f64>,
    /// σ²_e.
    scale: f64,
    /// X′V⁻¹X × σ²_e.
    information: DMatrix<f64>,
}

fn profile(groups: &[GroupSums], totals: &GroupSums, gamma: f64, k: usize) -> Option<Profile> {
    let mut a = totals.xtx.clone();
    let mut b = totals.xty.clone();
    let mut c = totals.yty;
    let mut log_det_v = 0.0;
    for g in groups {
        // (I + γ11′)⁻¹ = I − w11′ with w = γ / (1 + nγ).
        let w = gamma / (1.0 + g.n * gamma);
        a.ger(-w, &g.x_sum, &g.x_sum, 1.0);
        b.axpy(-w * g.y_sum, &g.x_sum, 1.0);
        c -= w * g.y_sum * g.y_sum;
        log_det_v += (g.n * gamma).ln_1p();
    }
    let cholesky = a.clone().cholesky()?;
    let beta = cholesky.solve(&b);
    let df = totals.n - k as f64;
    let scale = (c - b.dot(&beta)) / df;
    let log_det_a: f64 = 2.0 * cholesky.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
    let log_likelihood = -0.5
        * (df * scale.ln()
            + log_det_v
            + log_det_a
            + df * (1.0 + (2.0 * std::f64::consts::PI).ln()));
    (scale > 0.0 && log_likelihood.is_finite()).then_some(Profile {
        log_likelihood,
        beta,
        scale,
        information: a,
    })
}

/// The γ ≥ 0 with the highest REML likelihood, and the fit there.
fn maximize_over_gamma(
    groups: &[GroupSums],
    totals: &GroupSums,
    k: usize,
    expired: impl Fn() -> bool,
) -> Option<(f64, Profile)> {
    let at = |log_gamma: f64| profile(groups, totals, log_gamma.exp(), k);
    let value = |log_gamma: f64| at(log_gamma).map_or(f64::NEG_INFINITY, |p| p.log_likelihood);
    // A grid over ln γ from e⁻²⁰ (no group effect to speak of) to e¹⁵ brackets the maximum.
    let best = (-20..=15).map(f64::from).max_by(|a, b| value(*a).total_cmp(&value(*b)));
    let best = best.unwrap_or_default();
    let (mut lo, mut hi) = (best - 1.0, best + 1.0);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
    let (mut f1, mut f2) = (value(x1), value(x2));
    while hi - lo > 1e-11 {
        if expired() {
            return None;
        }
        if f1 < f2 {
            lo = x1;
            (x1, f1) = (x2, f2);
            x2 = lo + ratio * (hi - lo);
            f2 = value(x2);
        } else {
            hi = x2;
            (x2, f2) = (x1, f1);
            x1 = hi - ratio * (hi - lo);
            f1 = value(x1);
        }
    }
    let log_gamma = (lo + hi) / 2.0;
    // At the grid's lower end the variance of the groups is zero in all but name: γ = 0 is
    // the boundary optimum, the model there is OLS.
    let boundary = profile(groups, totals, 0.0, k)?;
    match at(log_gamma) {
        Some(p) if p.log_likelihood > boundary.log_likelihood => Some((log_gamma.exp(), p)),
        _ => Some((0.0, boundary)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Balanced one-way random effects with a constant only: REML has the closed form of the
    /// ANOVA estimators, σ²_e = MSW and σ²_u = (MSB − MSW)/m for groups of m, when positive;
    /// the constant is the grand mean.
    #[test]
    fn balanced_groups_give_the_anova_estimators() {
        let data: [[f64; 4]; 5] = [
            [3.1, 4.0, 3.6, 2.9],
            [6.2, 5.1, 5.9, 6.6],
            [1.0, 2.2, 1.7, 0.9],
            [4.4, 4.9, 3.8, 5.0],
            [7.5, 6.8, 8.1, 7.0],
        ];
        let (groups, m) = (data.len() as f64, 4.0);
        let outcome: Vec<f64> = data.iter().flatten().copied().collect();
        let group_of: Vec<usize> = (0..outcome.len()).map(|i| i / 4).collect();
        let constant = |_: usize, x: &mut [f64]| x[0] = 1.0;
        let fit = fit(1, &constant, &outcome, &group_of, || false).unwrap();
        let grand = outcome.iter().sum::<f64>() / outcome.len() as f64;
        let means: Vec<f64> = data.iter().map(|g| g.iter().sum::<f64>() / m).collect();
        let msb = m * means.iter().map(|g| (g - grand).powi(2)).sum::<f64>() / (groups - 1.0);
        let msw = data
            .iter()
            .zip(&means)
            .map(|(g, mean)| g.iter().map(|y| (y - mean).powi(2)).sum::<f64>())
            .sum::<f64>()
            / (groups * (m - 1.0));
        let sigma_u2 = (msb - msw) / m;
        assert!((fit.beta[0] - grand).abs() < 1e-9, "{} ≠ {grand}", fit.beta[0]);
        assert!((fit.scale - msw).abs() < 1e-6 * msw, "σ²_e {} ≠ {msw}", fit.scale);
        let got = fit.gamma * fit.scale;
        assert!((got - sigma_u2).abs() < 1e-6 * sigma_u2, "σ²_u {got} ≠ {sigma_u2}");
        // The constant's variance: (σ²_e + mσ²_u) / (groups·m) = MSB / N.
        let var = msb / outcome.len() as f64;
        assert!((fit.covariance[(0, 0)] - var).abs() < 1e-6 * var);
    }
}
