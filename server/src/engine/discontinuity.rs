//! rdd: a sharp regression discontinuity, the jump in the mean of y where the running variable
//! crosses a threshold, as the `rdrobust` package of Calonico, Cattaneo, Farrell and Titiunik
//! estimates it by default: local linear fits (p = 1) on each side with a triangular kernel, a
//! local quadratic (q = 2) for the bias correction, one MSE-optimal bandwidth (`mserd`, with
//! mass points in the running variable adjusted for), and three rows: the conventional
//! estimate, the bias-corrected one, and the bias-corrected one with its robust standard
//! error. Errors are heteroskedasticity-robust (rdrobust's `vce(hc1)`).
//!
//! Only aggregates of the units inside the bandwidth leave: each side must pass rule 9 as a
//! model of its own, and their count is released perturbed, as every model's N.

use datafusion::arrow::array::{Array, BooleanArray};
use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ContinuousCDF, Normal};

use super::dataset::Dataset;
use super::models::{Design, Errors, OlsRequest, Term};
use super::{EngineError, Step};
use crate::disclosure::raw;

/// The local polynomial's order, and the bias correction's.
const P: usize = 1;
const Q: usize = 2;
/// rdrobust's constant for the pilot bandwidth with a triangular kernel.
const PILOT_CONSTANT: f64 = 2.576;

/// The triangular kernel at (x − c)/h, divided by h as rdrobust weights.
fn kernel(x: f64, c: f64, h: f64) -> f64 {
    let u = ((x - c) / h).abs();
    if u <= 1.0 { (1.0 - u) / h } else { 0.0 }
}

/// 1, u, u², …, u^order.
fn powers(u: f64, order: usize) -> DVector<f64> {
    let mut out = DVector::<f64>::zeros(order + 1);
    out[0] = 1.0;
    for j in 1..=order {
        out[j] = out[j - 1] * u;
    }
    out
}

/// One side of the threshold: running values and outcomes.
struct Side {
    x: Vec<f64>,
    y: Vec<f64>,
}

/// A kernel-weighted polynomial fit of `order` at c with bandwidth h, over the rows the
/// kernel gives weight.
struct LocalFit {
    rows: Vec<usize>,
    weights: Vec<f64>,
    regressors: Vec<DVector<f64>>,
    inverse: DMatrix<f64>,
    beta: DVector<f64>,
}

impl LocalFit {
    fn new(side: &Side, c: f64, h: f64, order: usize) -> Option<LocalFit> {
        let rows: Vec<usize> =
            (0..side.x.len()).filter(|&i| kernel(side.x[i], c, h) > 0.0).collect();
        let mut distinct: Vec<f64> = rows.iter().map(|&i| side.x[i]).collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() < order + 1 {
            return None;
        }
        let weights: Vec<f64> = rows.iter().map(|&i| kernel(side.x[i], c, h)).collect();
        let regressors: Vec<DVector<f64>> =
            rows.iter().map(|&i| powers(side.x[i] - c, order)).collect();
        let mut gram = DMatrix::<f64>::zeros(order + 1, order + 1);
        let mut moment = DVector::<f64>::zeros(order + 1);
        for ((r, &w), &i) in regressors.iter().zip(&weights).zip(&rows) {
            gram.ger(w, r, r, 1.0);
            moment.axpy(w * side.y[i], r, 1.0);
        }
        let inverse = gram.cholesky()?.inverse();
        let beta = &inverse * moment;
        Some(LocalFit { rows, weights, regressors, inverse, beta })
    }

    /// HC1 residuals, rdrobust's: scaled by √(n / (n − parameters)) on this fit's rows.
    fn residuals(&self, side: &Side) -> Vec<f64> {
        let n = self.rows.len() as f64;
        let scale = (n / (n - self.beta.len() as f64)).sqrt();
        self.rows
            .iter()
            .zip(&self.regressors)
            .map(|(&i, r)| scale * (side.y[i] - r.dot(&self.beta)))
            .collect()
    }

    /// The sandwich A⁻¹ (Σ eᵢ² sᵢsᵢ′) A⁻¹ for the score rows s.
    fn sandwich(&self, scores: &[DVector<f64>], residuals: &[f64]) -> DMatrix<f64> {
        let k = self.inverse.nrows();
        let mut meat = DMatrix::<f64>::zeros(k, k);
        for (s, e) in scores.iter().zip(residuals) {
            meat.ger(e * e, s, s, 1.0);
        }
        &self.inverse * meat * &self.inverse
    }

    /// The weighted regressors wᵢrᵢ, the scores of a plain weighted fit.
    fn weighted(&self) -> Vec<DVector<f64>> {
        self.regressors.iter().zip(&self.weights).map(|(r, &w)| r * w).collect()
    }
}

/// rdrobust's `rdrobust_bw` on one side: the variance, bias and regularisation terms of the
/// MSE of the ν-th derivative of an order-o fit at pilot bandwidth h_v, its bias estimated
/// from an order-o_b fit at h_b.
struct BandwidthTerms {
    variance: f64,
    bias: f64,
    regularisation: f64,
}

#[allow(clippy::too_many_arguments)]
fn bandwidth_terms(
    side: &Side,
    c: f64,
    o: usize,
    nu: usize,
    o_b: usize,
    h_v: f64,
    h_b: f64,
    scale: f64,
) -> Option<BandwidthTerms> {
    let pilot = LocalFit::new(side, c, h_v, o)?;
    let v_v = pilot.sandwich(&pilot.weighted(), &pilot.residuals(side))[(nu, nu)];
    let mut v = DVector::<f64>::zeros(o + 1);
    for ((r, &w), &i) in pilot.regressors.iter().zip(&pilot.weights).zip(&pilot.rows) {
        v.axpy(w * ((side.x[i] - c) / h_v).powi(o as i32 + 1), r, 1.0);
    }
    let b_const = h_v.powi(nu as i32) * (&pilot.inverse * v)[nu];
    let fit_b = LocalFit::new(side, c, h_b, o_b)?;
    let regularisation = if scale > 0.0 {
        let v_b = fit_b.sandwich(&fit_b.weighted(), &fit_b.residuals(side))[(o_b, o_b)];
        scale * 2.0 * (o + 1 - nu) as f64 * 3.0 * b_const * b_const * v_b
    } else {
        0.0
    };
    Some(BandwidthTerms {
        variance: (2 * nu + 1) as f64 * h_v.powi(2 * nu as i32 + 1) * v_v,
        bias: (2.0 * (o + 1 - nu) as f64).sqrt() * b_const * fit_b.beta[o_b],
        regularisation,
    })
}

/// R's type-2 quantile (the average at a discontinuity), as rdrobust takes the IQR.
fn quantile_type2(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let h = n as f64 * p;
    let j = h.floor() as usize;
    if h == j as f64 { 0.5 * (sorted[j - 1] + sorted[j]) } else { sorted[j] }
}

fn sd(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// rdrobust's `mserd` bandwidths (h, b), computed on standardised x and y as it does.
fn mse_bandwidths(left: &Side, right: &Side, c: f64) -> Option<(f64, f64)> {
    let all_x: Vec<f64> = left.x.iter().chain(&right.x).copied().collect();
    let all_y: Vec<f64> = left.y.iter().chain(&right.y).copied().collect();
    let (x_sd, y_sd) = (sd(&all_x), sd(&all_y));
    let mut sorted = all_x.clone();
    sorted.sort_by(f64::total_cmp);
    let iqr = quantile_type2(&sorted, 0.75) - quantile_type2(&sorted, 0.25);
    let spread = (iqr / x_sd / 1.349).min(1.0);
    let standard = |s: &Side| Side {
        x: s.x.iter().map(|x| x / x_sd).collect(),
        y: s.y.iter().map(|y| y / y_sd).collect(),
    };
    let (l, r, c) = (standard(left), standard(right), c / x_sd);
    let distinct = |s: &Side| {
        let mut d = s.x.clone();
        d.sort_by(f64::total_cmp);
        d.dedup();
        d
    };
    let (unique_l, unique_r) = (distinct(&l), distinct(&r));
    let (m_l, m_r) = (unique_l.len(), unique_r.len());
    let (x_min, x_max) = (unique_l[0], unique_r[m_r - 1]);
    let (range_l, range_r) = (c - x_min, x_max - c);
    let bw_max = range_l.max(range_r);
    // Mass points: when a fifth of either side repeats a value, every pilot bandwidth holds at
    // least ten distinct values on each side, and the pilot's rate counts distinct values.
    let massed =
        1.0 - m_l as f64 / l.x.len() as f64 >= 0.2 || 1.0 - m_r as f64 / r.x.len() as f64 >= 0.2;
    let pad = 1.0 + f64::EPSILON.sqrt();
    let bw_min = massed.then(|| {
        let nearest_l = c - unique_l[m_l - 10.min(m_l)];
        let nearest_r = unique_r[10.min(m_r) - 1] - c;
        (nearest_l * pad).max(nearest_r * pad)
    });
    let floor = |bw: f64| bw_min.map_or(bw, |m| bw.max(m));
    let pilot = floor((PILOT_CONSTANT * spread * ((m_l + m_r) as f64).powf(-0.2)).min(bw_max));
    let combine = |a: &BandwidthTerms, b: &BandwidthTerms, rate: f64| {
        ((a.variance + b.variance)
            / ((b.bias - a.bias).powi(2) + a.regularisation + b.regularisation))
            .powf(rate)
    };
    let d_l = bandwidth_terms(&l, c, Q + 1, Q + 1, Q + 2, pilot, range_l * pad, 0.0)?;
    let d_r = bandwidth_terms(&r, c, Q + 1, Q + 1, Q + 2, pilot, range_r * pad, 0.0)?;
    let d = floor(combine(&d_l, &d_r, 1.0 / (2 * (Q + 1) + 3) as f64).min(bw_max));
    let b_l = bandwidth_terms(&l, c, Q, P + 1, Q + 1, pilot, d, 1.0)?;
    let b_r = bandwidth_terms(&r, c, Q, P + 1, Q + 1, pilot, d, 1.0)?;
    let b = combine(&b_l, &b_r, 1.0 / (2 * Q + 3) as f64).min(bw_max);
    let h_l = bandwidth_terms(&l, c, P, 0, Q, pilot, b, 1.0)?;
    let h_r = bandwidth_terms(&r, c, P, 0, Q, pilot, b, 1.0)?;
    let h = combine(&h_l, &h_r, 1.0 / (2 * P + 3) as f64).min(bw_max);
    (h.is_finite() && b.is_finite() && h > 0.0 && b > 0.0).then_some((h * x_sd, b * x_sd))
}

/// One side's estimates at the threshold: the intercept of the local linear fit, the
/// bias-corrected intercept, and their conventional and robust variances.
struct SideEstimate {
    conventional: f64,
    corrected: f64,
    variance: f64,
    robust_variance: f64,
    /// Units with weight in either fit.
    units: usize,
}

fn estimate_side(side: &Side, c: f64, h: f64, b: f64) -> Option<SideEstimate> {
    let fit_p = LocalFit::new(side, c, h, P)?;
    let fit_q = LocalFit::new(side, c, b, Q)?;
    // rdrobust's effective sample: the rows of the wider bandwidth.
    let rows: Vec<usize> =
        (0..side.x.len()).filter(|&i| kernel(side.x[i], c, h.max(b)) > 0.0).collect();
    let n = rows.len() as f64;
    let w_h: Vec<f64> = rows.iter().map(|&i| kernel(side.x[i], c, h)).collect();
    let w_b: Vec<f64> = rows.iter().map(|&i| kernel(side.x[i], c, b)).collect();
    let r_q: Vec<DVector<f64>> = rows.iter().map(|&i| powers(side.x[i] - c, Q)).collect();
    let rw_p: Vec<DVector<f64>> =
        r_q.iter().zip(&w_h).map(|(r, &w)| r.rows(0, P + 1) * w).collect();
    // L = Σ wᵢ rᵢ uᵢ^(p+1) with u = (x − c)/h; the bias-corrected scores
    // Qᵢ = wᵢrᵢ − h^(p+1) (rᵢ′ G_q⁻¹ e_(p+1)) w_bᵢ L.
    let mut l = DVector::<f64>::zeros(P + 1);
    for (k, &i) in rows.iter().enumerate() {
        l.axpy(((side.x[i] - c) / h).powi(P as i32 + 1), &rw_p[k], 1.0);
    }
    let bias_row = fit_q.inverse.row(P + 1).transpose();
    let scores_q: Vec<DVector<f64>> = (0..rows.len())
        .map(|k| &rw_p[k] - &l * (h.powi(P as i32 + 1) * r_q[k].dot(&bias_row) * w_b[k]))
        .collect();
    let inverse_p = &fit_p.inverse;
    let corrected_beta = inverse_p
        * scores_q
            .iter()
            .zip(&rows)
            .fold(DVector::<f64>::zeros(P + 1), |acc, (s, &i)| acc + s * side.y[i]);
    // HC1 residuals on the effective sample, from the order-p and order-q fits.
    let residual = |k: usize, fit: &LocalFit, order: usize| {
        let i = rows[k];
        let r = powers(side.x[i] - c, order);
        (n / (n - (order + 1) as f64)).sqrt() * (side.y[i] - r.dot(&fit.beta))
    };
    let meat = |scores: &[DVector<f64>], fit: &LocalFit, order: usize| {
        let mut m = DMatrix::<f64>::zeros(P + 1, P + 1);
        for (k, s) in scores.iter().enumerate() {
            let e = residual(k, fit, order);
            m.ger(e * e, s, s, 1.0);
        }
        inverse_p * m * inverse_p
    };
    let variance = meat(&rw_p, &fit_p, P)[(0, 0)];
    let robust_variance = meat(&scores_q, &fit_q, Q)[(0, 0)];
    Some(SideEstimate {
        conventional: fit_p.beta[0],
        corrected: corrected_beta[0],
        variance,
        robust_variance,
        units: rows.len(),
    })
}

/// `rdd` before disclosure. `bandwidth` fixes h (and b = h, as rdrobust does when h is given).
#[allow(clippy::too_many_arguments)]
pub fn rdd_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    dependent: &str,
    running: &str,
    threshold: f64,
    bandwidth: Option<f64>,
    level: f64,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let request = OlsRequest {
        dependent: dependent.to_owned(),
        terms: vec![Term::Continuous(running.to_owned())],
        constant: true,
        errors: Errors::Classical,
        level,
    };
    let inside = |i: usize| mask.is_none_or(|m| m.is_valid(i) && m.value(i));
    let whole = Design::new(dataset, keys, &request, mask, None)?;
    let running_values = super::describe::numbers(
        dataset
            .variable(running)
            .ok_or_else(|| EngineError::new(format!("no variable {running}")))?,
    )?;
    let (mut left, mut right) = (Side { x: vec![], y: vec![] }, Side { x: vec![], y: vec![] });
    let mut index = (vec![], vec![]);
    for i in whole.rows() {
        let (x, y) = (running_values[i].expect("in sample"), whole.y[i].expect("in sample"));
        let (side, at) =
            if x < threshold { (&mut left, &mut index.0) } else { (&mut right, &mut index.1) };
        side.x.push(x);
        side.y.push(y);
        at.push(i);
    }
    let distinct = |s: &Side| {
        let mut d = s.x.clone();
        d.sort_by(f64::total_cmp);
        d.dedup();
        d.len()
    };
    if distinct(&left) < Q + 1 || distinct(&right) < Q + 1 {
        return Err(EngineError::new(format!(
            "rdd needs at least {} distinct values of {running} on each side of the threshold {threshold}: choose a threshold inside its range with threshold()",
            Q + 1
        )));
    }
    let (h, b) = match bandwidth {
        Some(h) if h > 0.0 && h.is_finite() => (h, h),
        Some(h) => {
            return Err(EngineError::new(format!(
                "bandwidth() is a distance on {running} and must be positive, not {h}"
            )));
        }
        None => mse_bandwidths(&left, &right, threshold).ok_or_else(|| {
            EngineError::new(format!(
                "no bandwidth could be chosen from the data: {running} has too few distinct values near {threshold}; give one with bandwidth()"
            ))
        })?,
    };
    let reach = h.max(b);
    let near = |x: f64| (x - threshold).abs() < reach;
    for (side, name) in [(&left, "below"), (&right, "at or above")] {
        let units = side.x.iter().filter(|&&x| near(x)).count() as u64;
        gate.check_model_part(
            &format!("the side {name} the threshold, within the bandwidth,"),
            units,
            Q + 1,
            "widen the bandwidth with bandwidth()",
        )?;
    }
    let too_few = || {
        EngineError::new(format!(
            "too few distinct values of {running} within the bandwidth on a side of the threshold: widen it with bandwidth()"
        ))
    };
    let below = estimate_side(&left, threshold, h, b).ok_or_else(too_few)?;
    let above = estimate_side(&right, threshold, h, b).ok_or_else(too_few)?;
    debug_assert_eq!(
        below.units + above.units,
        whole.rows().filter(|&i| near(running_values[i].unwrap_or(f64::NAN))).count()
    );
    // The estimation sample, for N and rule 11: the units the kernel weighs.
    let within: BooleanArray = (0..dataset.len())
        .map(|i| Some(inside(i) && running_values[i].is_some_and(near)))
        .collect();
    let sample = Design::new(dataset, keys, &request, Some(&within), None)?;
    let normal = Normal::standard();
    let critical = normal.inverse_cdf(1.0 - (1.0 - level / 100.0) / 2.0);
    let conventional_se = (below.variance + above.variance).sqrt();
    let robust_se = (below.robust_variance + above.robust_variance).sqrt();
    let row = |term: &str, estimate: f64, se: f64| raw::Coefficient {
        term: term.to_owned(),
        estimate,
        std_error: se,
        statistic: estimate / se,
        p_value: 2.0 * normal.sf((estimate / se).abs()),
        ci_low: estimate - critical * se,
        ci_high: estimate + critical * se,
        is_constant: false,
    };
    let conventional = above.conventional - below.conventional;
    let corrected = above.corrected - below.corrected;
    Ok(raw::Model {
        population: sample.population,
        title: format!(
            "Sharp regression discontinuity at {running} = {threshold}: local linear, triangular kernel, {} bandwidth, robust (HC1) errors",
            if bandwidth.is_some() { "given" } else { "MSE-optimal (rdrobust's mserd)" }
        ),
        dependent: dependent.to_owned(),
        estimate_label: "jump",
        test_label: "z",
        coefficients: vec![
            row("conventional", conventional, conventional_se),
            row("bias-corrected", corrected, conventional_se),
            row("robust", corrected, robust_se),
        ],
        contributors: sample.contributors,
        parameters: 2 * (P + 1),
        residual_df: sample.n as f64 - 2.0 * (P + 1) as f64,
        t_test: None,
        categorical_levels: vec![],
        outcome_levels: None,
        smallest_crossing: None,
        absorbed: None,
        statistics: vec![
            ("threshold".to_owned(), threshold),
            ("bandwidth h".to_owned(), h),
            ("bias bandwidth b".to_owned(), b),
        ],
    })
}

impl Step<'_> {
    /// `rdd <dependent> <running variable> [if] [, threshold() bandwidth()]`.
    pub(super) fn rdd(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let usage =
            "write rdd <dependent> <running variable> [, threshold(<number>) bandwidth(<number>)]";
        let running = match terms.as_slice() {
            [Term::Continuous(x)] => x.clone(),
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let threshold = self.option_number("threshold")?.unwrap_or(0.0);
        let bandwidth = self.option_number("bandwidth")?;
        let level = self.confidence_level()?;
        let mask = self.mask(dataset, dataset_name)?;
        let copies = dataset.copies([dependent.as_str(), running.as_str()]);
        let gate = &*self.gate_for(copies);
        let keys = self.record_keys(gate, dataset);
        let raw = rdd_raw(
            gate,
            dataset,
            &keys,
            &dependent,
            &running,
            threshold,
            bandwidth,
            level,
            mask.as_ref(),
        )?;
        self.release_model(gate, raw)
    }
}
