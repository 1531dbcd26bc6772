//! Maximum likelihood, as pure numerics: the models' per-observation contributions (value,
//! score and observed information), the trigamma function the negative binomial needs, and
//! Newton–Raphson. No dataset, no gate: the engine's model commands build the design and
//! decide what may be released; this only fits.

use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

/// The models fitted by maximum likelihood.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Likelihood {
    /// Binary outcome, logistic link.
    Logit,
    /// Binary outcome, normal link.
    Probit,
    /// Count outcome, log link.
    Poisson,
    /// Overdispersed count outcome, log link, variance μ + αμ² (NB2, as Stata's nbreg and
    /// statsmodels' NegativeBinomial).
    NegativeBinomial,
}

/// ψ′(x), the trigamma function, for x > 0: the recurrence ψ′(x) = ψ′(x+1) + 1/x² up to
/// x ≥ 10, then the asymptotic series (error below 1e-15 there). statrs has ψ but not ψ′.
pub fn trigamma(mut x: f64) -> f64 {
    let mut sum = 0.0;
    while x < 10.0 {
        sum += 1.0 / (x * x);
        x += 1.0;
    }
    let x2 = 1.0 / (x * x);
    sum + 1.0 / x
        + x2 / 2.0
        + (1.0 / 6.0 - x2 * (1.0 / 30.0 - x2 * (1.0 / 42.0 - x2 * (1.0 / 30.0 - x2 * 5.0 / 66.0))))
            / (x * x * x)
}

/// One observation's part of the log likelihood: its value, the score and the observed
/// information (−∂²ℓ) with respect to η = x′β, and for the negative binomial also those
/// with respect to θ = ln α and the cross term.
struct Contribution {
    ll: f64,
    score: f64,
    weight: f64,
    /// (∂ℓ/∂θ, −∂²ℓ/∂θ², −∂²ℓ/∂η∂θ), negative binomial only.
    dispersion: Option<(f64, f64, f64)>,
}

fn contribution(link: Likelihood, y: f64, eta: f64, theta: f64, normal: &Normal) -> Contribution {
    use statrs::function::gamma::{digamma, ln_gamma};
    let plain = |ll, score, weight| Contribution { ll, score, weight, dispersion: None };
    match link {
        Likelihood::Logit => {
            let p = 1.0 / (1.0 + (-eta).exp());
            // log(1 + e^η) computed without overflow.
            let log1pexp = if eta > 0.0 { eta + (-eta).exp().ln_1p() } else { eta.exp().ln_1p() };
            plain(y * eta - log1pexp, y - p, p * (1.0 - p))
        }
        Likelihood::Probit => {
            let q = 2.0 * y - 1.0;
            let cdf = normal.cdf(q * eta).max(f64::MIN_POSITIVE);
            let lambda = q * normal.pdf(q * eta) / cdf;
            plain(cdf.ln(), lambda, lambda * (lambda + eta))
        }
        Likelihood::Poisson => {
            let mu = eta.exp();
            plain(y * eta - mu - ln_gamma(y + 1.0), y - mu, mu)
        }
        Likelihood::NegativeBinomial => {
            // With r = 1/α: ℓ = lnΓ(y+r) − lnΓ(r) − lnΓ(y+1) + r ln r + yη − (r+y) ln(r+μ).
            let (mu, r) = (eta.exp(), (-theta).exp());
            let rm = r + mu;
            let ll = ln_gamma(y + r) - ln_gamma(r) - ln_gamma(y + 1.0) + r * r.ln() + y * eta
                - (r + y) * rm.ln();
            let score = r * (y - mu) / rm;
            let weight = r * mu * (r + y) / (rm * rm);
            // Derivatives in r, then by the chain rule in θ = −ln r.
            let g_r = digamma(y + r) - digamma(r) + r.ln() + 1.0 - rm.ln() - (r + y) / rm;
            let h_rr = trigamma(y + r) - trigamma(r) + 1.0 / r - 1.0 / rm - (mu - y) / (rm * rm);
            let d_theta = -r * g_r;
            let info_theta = -(r * r * h_rr + r * g_r);
            let info_cross = r * (y - mu) * mu / (rm * rm);
            Contribution { ll, score, weight, dispersion: Some((d_theta, info_theta, info_cross)) }
        }
    }
}

/// Newton–Raphson on the observed information from `start`, halving steps that lower the
/// likelihood, and adding a ridge where the information is not positive definite far from
/// the optimum. Returns the estimate, its log likelihood and information, or `None` when it
/// does not converge, or when `expired` says the time is up (checked before every
/// evaluation, so a run's deadline stops a fit that would go on for minutes).
pub fn newton_raphson(
    start: DVector<f64>,
    evaluate: impl Fn(&DVector<f64>) -> (f64, DVector<f64>, DMatrix<f64>),
    expired: impl Fn() -> bool,
) -> Option<(DVector<f64>, f64, DMatrix<f64>)> {
    let mut beta = start;
    let (mut ll, mut gradient, mut information) = evaluate(&beta);
    for _ in 0..200 {
        if expired() {
            return None;
        }
        let p = beta.len();
        let scale = information.diagonal().amax().max(1.0);
        let mut ridge = 0.0;
        let step = loop {
            let damped = &information + DMatrix::<f64>::identity(p, p) * ridge;
            if let Some(c) = damped.cholesky() {
                break c.solve(&gradient);
            }
            ridge = if ridge == 0.0 { scale * 1e-8 } else { ridge * 10.0 };
            if ridge > scale * 1e8 {
                return None;
            }
        };
        let mut size = 1.0;
        let (next, next_ll, next_gradient, next_information) = loop {
            let candidate = &beta + &step * size;
            let (l, g, h) = evaluate(&candidate);
            if l.is_finite() && l >= ll - 1e-12 || size < 1e-6 {
                break (candidate, l, g, h);
            }
            if expired() {
                return None;
            }
            size /= 2.0;
        };
        let change = (&next - &beta).amax();
        let gain = next_ll - ll;
        (beta, ll, gradient, information) = (next, next_ll, next_gradient, next_information);
        if ridge == 0.0 && (change < 1e-10 || gain.abs() < 1e-13) {
            return Some((beta, ll, information));
        }
    }
    None
}

/// The observations of a fit, numbered 0..n: each one's regressors (written into a slice of
/// `width`), its outcome (0/1 for the binary models, a count for the others) and its offset
/// (ln exposure; 0 without).
pub struct Observations<'a> {
    pub width: usize,
    pub regressors: &'a dyn Fn(usize, &mut [f64]),
    pub outcome: &'a [f64],
    pub offsets: Option<&'a [f64]>,
}

/// How the estimate's covariance is computed.
#[derive(Clone, Copy, Debug)]
pub enum Variance<'a> {
    /// The inverse of the observed information.
    Information,
    /// The sandwich (Huber–White) around each observation's score, with Stata's n/(n−1).
    Robust,
    /// The sandwich around each cluster's summed score (one key per observation), with
    /// G/(G−1).
    Clustered(&'a [&'a str]),
}

/// A maximum-likelihood fit.
#[derive(Clone, Debug)]
pub struct Fit {
    /// β, and for the negative binomial θ = ln α last.
    pub estimate: DVector<f64>,
    pub covariance: DMatrix<f64>,
    pub log_likelihood: f64,
    /// The log likelihood of the constant-only model (with its own α for the negative
    /// binomial); NaN when that does not converge.
    pub null_log_likelihood: f64,
}

/// Why a fit has no estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitFailure {
    /// Newton–Raphson did not converge, or a coefficient ran off (|β| > 50: separation).
    NotConverged,
    /// The information matrix at the estimate is singular.
    Singular,
    /// Clustered errors over fewer than two clusters.
    OneCluster,
}

/// Fits `link` to the observations by Newton–Raphson (as statsmodels and Stata do), stopping
/// when `expired` says the time is up.
pub fn fit(
    link: Likelihood,
    observations: &Observations<'_>,
    variance: Variance<'_>,
    expired: impl Fn() -> bool,
) -> Result<Fit, FitFailure> {
    let Observations { width: k, regressors, outcome, offsets } = *observations;
    let n = outcome.len();
    let dispersion = link == Likelihood::NegativeBinomial;
    let offset = |j: usize| offsets.map_or(0.0, |o| o[j]);
    let normal = Normal::standard();
    // Log likelihood, gradient and information at (β, and θ = ln α last for the negative
    // binomial), with `row` giving each observation's regressors.
    let evaluate = |beta: &DVector<f64>, width: usize, row: &dyn Fn(usize, &mut [f64])| {
        let p = width + usize::from(dispersion);
        let theta = if dispersion { beta[width] } else { 0.0 };
        let mut ll = 0.0;
        let mut gradient = DVector::<f64>::zeros(p);
        let mut information = DMatrix::<f64>::zeros(p, p);
        let mut x = vec![0.0; width];
        for (j, &y) in outcome.iter().enumerate() {
            row(j, &mut x);
            let xi = DVector::from_column_slice(&x);
            let eta = xi.dot(&beta.rows(0, width)) + offset(j);
            let c = contribution(link, y, eta, theta, &normal);
            ll += c.ll;
            gradient.rows_mut(0, width).axpy(c.score, &xi, 1.0);
            information.view_mut((0, 0), (width, width)).ger(c.weight, &xi, &xi, 1.0);
            if let Some((d_theta, info_theta, info_cross)) = c.dispersion {
                gradient[width] += d_theta;
                information[(width, width)] += info_theta;
                for j in 0..width {
                    information[(j, width)] += info_cross * x[j];
                    information[(width, j)] += info_cross * x[j];
                }
            }
        }
        (ll, gradient, information)
    };
    let p = k + usize::from(dispersion);
    let fitted = newton_raphson(DVector::zeros(p), |b| evaluate(b, k, regressors), &expired);
    let Some((beta, ll, information)) = fitted.filter(|(b, _, _)| b.rows(0, k).amax() <= 50.0)
    else {
        return Err(FitFailure::NotConverged);
    };
    let mut covariance = information.cholesky().map(|c| c.inverse()).ok_or(FitFailure::Singular)?;
    if !matches!(variance, Variance::Information) {
        // The sandwich: the information's inverse around the sum of outer products of each
        // observation's score, or of each cluster's summed score.
        let theta = if dispersion { beta[k] } else { 0.0 };
        let mut meat = DMatrix::<f64>::zeros(p, p);
        let mut by_cluster: HashMap<&str, DVector<f64>> = HashMap::new();
        let mut x = vec![0.0; k];
        for (j, &y) in outcome.iter().enumerate() {
            regressors(j, &mut x);
            let xi = DVector::from_column_slice(&x);
            let eta = xi.dot(&beta.rows(0, k)) + offset(j);
            let c = contribution(link, y, eta, theta, &normal);
            let mut g = DVector::<f64>::zeros(p);
            g.rows_mut(0, k).axpy(c.score, &xi, 0.0);
            if let Some((d_theta, _, _)) = c.dispersion {
                g[k] = d_theta;
            }
            match variance {
                Variance::Clustered(keys) => {
                    *by_cluster.entry(keys[j]).or_insert_with(|| DVector::zeros(p)) += g;
                }
                _ => meat.ger(1.0, &g, &g, 1.0),
            }
        }
        let correction = if let Variance::Clustered(_) = variance {
            let groups = super::add_cluster_scores(&mut meat, by_cluster.values())
                .ok_or(FitFailure::OneCluster)?;
            groups / (groups - 1.0)
        } else {
            n as f64 / (n as f64 - 1.0)
        };
        covariance = &covariance * meat * &covariance * correction;
    }
    let constant = |_: usize, x: &mut [f64]| x[0] = 1.0;
    let null_log_likelihood = match link {
        Likelihood::Poisson if offsets.is_some() => {
            newton_raphson(DVector::zeros(1), |b| evaluate(b, 1, &constant), &expired)
                .map_or(f64::NAN, |(_, ll0, _)| ll0)
        }
        Likelihood::Poisson => {
            let mean = outcome.iter().sum::<f64>() / n as f64;
            outcome
                .iter()
                .map(|&y| y * mean.ln() - mean - statrs::function::gamma::ln_gamma(y + 1.0))
                .sum()
        }
        Likelihood::NegativeBinomial => {
            newton_raphson(DVector::zeros(2), |b| evaluate(b, 1, &constant), &expired)
                .map_or(f64::NAN, |(_, ll0, _)| ll0)
        }
        Likelihood::Logit | Likelihood::Probit => {
            let ones = outcome.iter().filter(|&&v| v == 1.0).count();
            let p = ones as f64 / n as f64;
            n as f64 * (p * p.ln() + (1.0 - p) * (1.0 - p).ln())
        }
    };
    Ok(Fit { estimate: beta, covariance, log_likelihood: ll, null_log_likelihood })
}

#[cfg(test)]
mod tests {
    use super::trigamma;

    #[test]
    fn trigamma_matches_known_values() {
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        for (x, expected) in [
            (1.0, pi2 / 6.0),
            (0.5, pi2 / 2.0),
            (10.0, 0.105_166_335_681_685_75),
            (0.01, 10_001.621_213_528_313),
        ] {
            let got = trigamma(x);
            assert!((got - expected).abs() / expected < 1e-12, "ψ′({x}) = {got}, not {expected}");
        }
    }
}
