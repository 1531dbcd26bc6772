//! The sharp and fuzzy regression discontinuity, as pure numerics, as the `rdrobust` package
//! of Calonico, Cattaneo, Farrell and Titiunik estimates it by default: local linear fits
//! (p = 1) on each side with a triangular kernel, a local quadratic (q = 2) for the bias
//! correction, one MSE-optimal bandwidth (`mserd`, with mass points in the running variable
//! adjusted for) and rdrobust's nearest-neighbour errors (`vce(nn)`, 3 matches). No dataset,
//! no gate: `engine::commands::discontinuity::rdd_raw` builds the sides and asks the gate
//! about each before these fit them.

use nalgebra::{DMatrix, DVector};

/// The local polynomial's order, and the bias correction's.
pub const P: usize = 1;
pub const Q: usize = 2;
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

/// One side of the threshold, ordered by the running variable: its values, the outcome and,
/// in a fuzzy design, the treatment.
pub struct Side {
    pub x: Vec<f64>,
    /// One column per outcome: y, then the treatment when there is one.
    outcomes: Vec<Vec<f64>>,
}

impl Side {
    pub fn new(mut rows: Vec<(f64, f64, Option<f64>)>) -> Side {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let fuzzy = rows.first().is_some_and(|r| r.2.is_some());
        let mut outcomes = vec![rows.iter().map(|r| r.1).collect::<Vec<f64>>()];
        if fuzzy {
            outcomes.push(rows.iter().map(|r| r.2.unwrap_or(f64::NAN)).collect());
        }
        Side { x: rows.iter().map(|r| r.0).collect(), outcomes }
    }

    /// The rows the kernel weighs at bandwidth h: a contiguous run, as x is sorted.
    pub fn within(&self, c: f64, h: f64) -> std::ops::Range<usize> {
        let start = self.x.partition_point(|&x| kernel(x, c, h) == 0.0 && x < c);
        let end = self.x.partition_point(|&x| x < c || kernel(x, c, h) > 0.0);
        start..end.max(start)
    }

    /// rdrobust's nearest-neighbour residuals (`vce(nn)`, 3 matches) on the rows `range`:
    /// each value less the mean of its nearest neighbours in x (ties taken whole), scaled by
    /// √(J/(J+1)). One column per outcome.
    fn nearest_neighbour_residuals(&self, range: std::ops::Range<usize>) -> Vec<Vec<f64>> {
        const MATCHES: usize = 3;
        let x = &self.x[range.clone()];
        let n = x.len();
        // Each row's count of ties, and its place among them (from 1).
        let (mut dups, mut dups_id) = (vec![0usize; n], vec![0usize; n]);
        let mut start = 0;
        while start < n {
            let mut end = start;
            while end < n && x[end] == x[start] {
                end += 1;
            }
            for i in start..end {
                dups[i] = end - start;
                dups_id[i] = i - start + 1;
            }
            start = end;
        }
        let tolerance = f64::EPSILON.sqrt();
        let cap = MATCHES.min(n.saturating_sub(1));
        (0..n)
            .map(|pos| {
                let (mut right, mut left) = (dups[pos] - dups_id[pos], dups_id[pos] - 1);
                while left + right < cap {
                    if pos < left + 1 {
                        right += dups[pos + right + 1];
                    } else if pos + right + 1 >= n {
                        left += dups[pos - left - 1];
                    } else {
                        let d_left = x[pos] - x[pos - left - 1];
                        let d_right = x[pos + right + 1] - x[pos];
                        let tie = d_left.max(d_right) * tolerance;
                        if d_left - d_right > tie {
                            right += dups[pos + right + 1];
                        } else if d_right - d_left > tie {
                            left += dups[pos - left - 1];
                        } else {
                            right += dups[pos + right + 1];
                            left += dups[pos - left - 1];
                        }
                    }
                }
                let (lo, hi) = (pos - left, pos + right + 1);
                let j = (hi - lo - 1) as f64;
                let scale = (j / (j + 1.0)).sqrt();
                self.outcomes
                    .iter()
                    .map(|column| {
                        let column = &column[range.clone()];
                        let others = column[lo..hi].iter().sum::<f64>() - column[pos];
                        scale * (column[pos] - others / j)
                    })
                    .collect()
            })
            .collect()
    }
}

/// A kernel-weighted polynomial fit of `order` at c with bandwidth h, over the rows the
/// kernel weighs, of every outcome column.
struct LocalFit {
    range: std::ops::Range<usize>,
    weights: Vec<f64>,
    regressors: Vec<DVector<f64>>,
    inverse: DMatrix<f64>,
    /// One column per outcome.
    beta: DMatrix<f64>,
}

impl LocalFit {
    fn new(side: &Side, c: f64, h: f64, order: usize) -> Option<LocalFit> {
        let range = side.within(c, h);
        let mut distinct = side.x[range.clone()].to_vec();
        distinct.dedup();
        if distinct.len() < order + 1 {
            return None;
        }
        let weights: Vec<f64> = side.x[range.clone()].iter().map(|&x| kernel(x, c, h)).collect();
        let regressors: Vec<DVector<f64>> =
            side.x[range.clone()].iter().map(|&x| powers(x - c, order)).collect();
        let columns = side.outcomes.len();
        let mut gram = DMatrix::<f64>::zeros(order + 1, order + 1);
        let mut moment = DMatrix::<f64>::zeros(order + 1, columns);
        for (k, (r, &w)) in regressors.iter().zip(&weights).enumerate() {
            gram.ger(w, r, r, 1.0);
            for (j, column) in side.outcomes.iter().enumerate() {
                moment.column_mut(j).axpy(w * column[range.start + k], r, 1.0);
            }
        }
        let inverse = gram.cholesky()?.inverse();
        let beta = &inverse * moment;
        Some(LocalFit { range, weights, regressors, inverse, beta })
    }

    /// A(Σ (s′eᵢ)² gᵢgᵢ′)A with A this fit's inverse Gram matrix, for the score rows g and the
    /// residual rows e combined by s (rdrobust's `rdrobust_vce`).
    fn sandwich(&self, scores: &[DVector<f64>], residuals: &[Vec<f64>], s: &[f64]) -> DMatrix<f64> {
        let k = self.inverse.nrows();
        let mut meat = DMatrix::<f64>::zeros(k, k);
        for (g, e) in scores.iter().zip(residuals) {
            let combined: f64 = e.iter().zip(s).map(|(e, s)| e * s).sum();
            meat.ger(combined * combined, g, g, 1.0);
        }
        &self.inverse * meat * &self.inverse
    }

    /// The weighted regressors wᵢrᵢ, the scores of a plain weighted fit.
    fn weighted(&self) -> Vec<DVector<f64>> {
        self.regressors.iter().zip(&self.weights).map(|(r, &w)| r * w).collect()
    }
}

/// The weights that combine the outcome columns into the estimate's linearisation: 1 for a
/// sharp design; for a fuzzy one, the derivative of τ_Y/τ_T in (τ_Y, τ_T).
pub fn combination(tau_y: f64, tau_t: Option<f64>) -> Vec<f64> {
    match tau_t {
        None => vec![1.0],
        Some(t) => vec![1.0 / t, -tau_y / (t * t)],
    }
}

fn factorial(n: usize) -> f64 {
    (1..=n).map(|k| k as f64).product()
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
    let fuzzy = side.outcomes.len() > 1;
    let s = combination(
        factorial(nu) * pilot.beta[(nu, 0)],
        fuzzy.then(|| factorial(nu) * pilot.beta[(nu, 1)]),
    );
    let residuals = side.nearest_neighbour_residuals(pilot.range.clone());
    let v_v = pilot.sandwich(&pilot.weighted(), &residuals, &s)[(nu, nu)];
    let mut v = DVector::<f64>::zeros(o + 1);
    for (k, (r, &w)) in pilot.regressors.iter().zip(&pilot.weights).enumerate() {
        let x = side.x[pilot.range.start + k];
        v.axpy(w * ((x - c) / h_v).powi(o as i32 + 1), r, 1.0);
    }
    let b_const = h_v.powi(nu as i32) * (&pilot.inverse * v)[nu];
    let fit_b = LocalFit::new(side, c, h_b, o_b)?;
    let regularisation = if scale > 0.0 {
        let residuals = side.nearest_neighbour_residuals(fit_b.range.clone());
        let v_b = fit_b.sandwich(&fit_b.weighted(), &residuals, &s)[(o_b, o_b)];
        scale * 2.0 * (o + 1 - nu) as f64 * 3.0 * b_const * b_const * v_b
    } else {
        0.0
    };
    let last: f64 = fit_b.beta.row(o_b).iter().zip(&s).map(|(b, s)| b * s).sum();
    Some(BandwidthTerms {
        variance: (2 * nu + 1) as f64 * h_v.powi(2 * nu as i32 + 1) * v_v,
        bias: (2.0 * (o + 1 - nu) as f64).sqrt() * b_const * last,
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

/// rdrobust's `mserd` bandwidths (h, b), computed on standardised x and y as it does. A
/// fuzzy design's treatment enters them unless it is constant on a side.
pub fn mse_bandwidths(left: &Side, right: &Side, c: f64) -> Option<(f64, f64)> {
    let all_x: Vec<f64> = left.x.iter().chain(&right.x).copied().collect();
    let all_y: Vec<f64> = left.outcomes[0].iter().chain(&right.outcomes[0]).copied().collect();
    let (x_sd, y_sd) = (sd(&all_x), sd(&all_y));
    let mut sorted = all_x.clone();
    sorted.sort_by(f64::total_cmp);
    let iqr = quantile_type2(&sorted, 0.75) - quantile_type2(&sorted, 0.25);
    let spread = (iqr / x_sd / 1.349).min(1.0);
    let varies = |column: &[f64]| column.iter().any(|&v| v != column[0]);
    let fuzzy = left.outcomes.len() > 1 && varies(&left.outcomes[1]) && varies(&right.outcomes[1]);
    let standard = |s: &Side| {
        let mut outcomes = vec![s.outcomes[0].iter().map(|y| y / y_sd).collect()];
        if fuzzy {
            outcomes.push(s.outcomes[1].clone());
        }
        Side { x: s.x.iter().map(|x| x / x_sd).collect(), outcomes }
    };
    let (l, r, c) = (standard(left), standard(right), c / x_sd);
    let distinct = |s: &Side| {
        let mut d = s.x.clone();
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

/// One side's fits at the threshold: the local linear and bias-corrected intercepts of each
/// outcome, and what their variances need.
pub struct SideEstimate {
    /// Per outcome column.
    pub conventional: Vec<f64>,
    pub corrected: Vec<f64>,
    inverse_p: DMatrix<f64>,
    /// The local linear fit's scores wᵢrᵢ and the bias-corrected ones, on the effective rows.
    scores_p: Vec<DVector<f64>>,
    scores_q: Vec<DVector<f64>>,
    residuals: Vec<Vec<f64>>,
}

impl SideEstimate {
    /// The conventional and robust variances of the combination s of the intercepts.
    pub fn variances(&self, s: &[f64]) -> (f64, f64) {
        let sandwich = |scores: &[DVector<f64>]| {
            let mut meat = DMatrix::<f64>::zeros(P + 1, P + 1);
            for (g, e) in scores.iter().zip(&self.residuals) {
                let combined: f64 = e.iter().zip(s).map(|(e, s)| e * s).sum();
                meat.ger(combined * combined, g, g, 1.0);
            }
            (&self.inverse_p * meat * &self.inverse_p)[(0, 0)]
        };
        (sandwich(&self.scores_p), sandwich(&self.scores_q))
    }
}

/// One side's local linear fit at the threshold `c` with bandwidth `h`, and the local
/// quadratic bias correction with bandwidth `b`; `None` when a side has too few distinct
/// values within them for the fits.
pub fn estimate_side(side: &Side, c: f64, h: f64, b: f64) -> Option<SideEstimate> {
    let fit_p = LocalFit::new(side, c, h, P)?;
    let fit_q = LocalFit::new(side, c, b, Q)?;
    // rdrobust's effective sample: the rows of the wider bandwidth.
    let range = side.within(c, h.max(b));
    let xs = &side.x[range.clone()];
    let w_b: Vec<f64> = xs.iter().map(|&x| kernel(x, c, b)).collect();
    let r_q: Vec<DVector<f64>> = xs.iter().map(|&x| powers(x - c, Q)).collect();
    let scores_p: Vec<DVector<f64>> =
        xs.iter().zip(&r_q).map(|(&x, r)| r.rows(0, P + 1) * kernel(x, c, h)).collect();
    // L = Σ wᵢ rᵢ uᵢ^(p+1) with u = (x − c)/h; the bias-corrected scores
    // Qᵢ = wᵢrᵢ − h^(p+1) (rᵢ′ G_q⁻¹ e_(p+1)) w_bᵢ L.
    let mut l = DVector::<f64>::zeros(P + 1);
    for (&x, g) in xs.iter().zip(&scores_p) {
        l.axpy(((x - c) / h).powi(P as i32 + 1), g, 1.0);
    }
    let bias_row = fit_q.inverse.row(P + 1).transpose();
    let scores_q: Vec<DVector<f64>> = (0..xs.len())
        .map(|k| &scores_p[k] - &l * (h.powi(P as i32 + 1) * r_q[k].dot(&bias_row) * w_b[k]))
        .collect();
    let corrected = side
        .outcomes
        .iter()
        .map(|column| {
            let moment = scores_q
                .iter()
                .zip(&column[range.clone()])
                .fold(DVector::<f64>::zeros(P + 1), |acc, (q, &y)| acc + q * y);
            (&fit_p.inverse * moment)[0]
        })
        .collect();
    Some(SideEstimate {
        conventional: fit_p.beta.row(0).iter().copied().collect(),
        corrected,
        inverse_p: fit_p.inverse.clone(),
        scores_p,
        scores_q,
        residuals: side.nearest_neighbour_residuals(range),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outcomes on two lines with a jump of 3 at c: the local linear and the local quadratic
    /// fits reproduce a line exactly, so the conventional and the bias-corrected jumps are 3,
    /// and a fuzzy design whose treatment jumps by ½ scales it to 6.
    #[test]
    fn a_jump_between_two_lines_is_found_exactly() {
        let c = 10.0;
        let line = |x: f64| 2.0 + 0.5 * x + if x >= c { 3.0 } else { 0.0 };
        let treatment = |x: f64| if x >= c { 0.75 } else { 0.25 };
        let side = |xs: &mut dyn Iterator<Item = f64>| {
            Side::new(xs.map(|x| (x, line(x), Some(treatment(x)))).collect())
        };
        let left = side(&mut (0..100).map(|i| i as f64 / 10.0));
        let right = side(&mut (100..200).map(|i| i as f64 / 10.0));
        let (below, above) = (
            estimate_side(&left, c, 4.0, 4.0).unwrap(),
            estimate_side(&right, c, 4.0, 4.0).unwrap(),
        );
        for (column, jump) in [(0, 3.0), (1, 0.5)] {
            let conventional = above.conventional[column] - below.conventional[column];
            let corrected = above.corrected[column] - below.corrected[column];
            assert!((conventional - jump).abs() < 1e-9, "column {column}: {conventional}");
            assert!((corrected - jump).abs() < 1e-9, "column {column}: {corrected}");
        }
        assert_eq!(combination(3.0, Some(0.5)), vec![2.0, -12.0]);
        let (v, robust) = below.variances(&[1.0]);
        assert!(v.is_finite() && v >= 0.0 && robust.is_finite() && robust >= 0.0, "{v}, {robust}");
        // The side's rows within h = 4 of c: x in (6, 10) below, [10, 14) above.
        assert_eq!(left.within(c, 4.0).len(), 39);
        assert_eq!(right.within(c, 4.0).len(), 40);
    }
}
