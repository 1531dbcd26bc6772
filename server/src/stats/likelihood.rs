//! Maximum likelihood, as pure numerics: the models' per-observation contributions (value,
//! score and observed information), the trigamma function the negative binomial needs, and
//! Newton–Raphson. No dataset, no gate: the engine's model commands build the design and
//! decide what may be released; this only fits.

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
pub struct Contribution {
    pub ll: f64,
    pub score: f64,
    pub weight: f64,
    /// (∂ℓ/∂θ, −∂²ℓ/∂θ², −∂²ℓ/∂η∂θ), negative binomial only.
    pub dispersion: Option<(f64, f64, f64)>,
}

pub fn contribution(
    link: Likelihood,
    y: f64,
    eta: f64,
    theta: f64,
    normal: &Normal,
) -> Contribution {
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
