//! The panel models of Stata's `xtreg`, as pure numerics, as Python's linearmodels computes
//! them: fixed effects (within), random effects (Swamy–Arora GLS), between effects and pooled
//! OLS, and the Hausman test of the first against the second. No dataset, no gate:
//! `engine::commands::panel` builds the sample, names the columns and asks the gate.

use std::ops::Range;

use nalgebra::{DMatrix, DVector};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// The panel models of `regress-panel`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    /// Within units: each unit's deviations from its own means.
    Fixed,
    /// GLS with a unit effect drawn from a distribution (Swamy–Arora variances).
    Random,
    /// OLS on the units' means.
    Between,
    /// OLS on the rows, as if they were independent.
    Pooled,
}

/// A unit's observations, with its means of the columns and of y.
struct Group {
    rows: Range<usize>,
    x_mean: Vec<f64>,
    y_mean: f64,
}

/// The observations of a panel model, numbered 0..n with each unit's next to each other.
pub struct Panel<'a> {
    width: usize,
    /// The constant's column, if the model has one.
    constant: Option<usize>,
    regressors: &'a dyn Fn(usize, &mut [f64]),
    outcome: &'a [f64],
    groups: Vec<Group>,
    x_grand: Vec<f64>,
    y_grand: f64,
}

/// One estimator's coefficients (one per column) and their covariance.
#[derive(Clone, Debug)]
pub struct PanelFit {
    pub beta: DVector<f64>,
    pub covariance: DMatrix<f64>,
    pub residual_df: f64,
    /// (name, value) of the fit statistics.
    pub statistics: Vec<(String, f64)>,
}

/// Why a panel model has no estimate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PanelFailure {
    /// These columns are collinear in the (transformed) rows.
    Collinear(Vec<usize>),
    /// The units' means of the columns are collinear (between effects).
    MeansCollinear,
    /// These columns (not the constant) do not vary within units: fixed effects cannot
    /// estimate them.
    InvariantWithin(Vec<usize>),
    /// Fixed effects: no more rows than units plus columns.
    FixedDegrees,
    /// Between effects: no more units than columns.
    BetweenDegrees,
    /// Random effects: too few rows or units for the two variance components.
    RandomDegrees,
}

/// (β, (X′X)⁻¹, residual sum of squares) of a least-squares fit.
type Ols = (DVector<f64>, DMatrix<f64>, f64);

impl<'a> Panel<'a> {
    /// The panel of observations 0..n: `regressors` writes each one's row of `width` columns,
    /// `outcome` holds y, `units` are the consecutive ranges of each unit's observations.
    pub fn new(
        width: usize,
        constant: Option<usize>,
        regressors: &'a dyn Fn(usize, &mut [f64]),
        outcome: &'a [f64],
        units: impl IntoIterator<Item = Range<usize>>,
    ) -> Panel<'a> {
        let k = width;
        let mut x = vec![0.0; k];
        let mut x_grand = vec![0.0; k];
        let mut y_grand = 0.0;
        let mut groups = Vec::new();
        for range in units {
            let t = range.len() as f64;
            let mut x_mean = vec![0.0; k];
            let mut y_mean = 0.0;
            for r in range.clone() {
                regressors(r, &mut x);
                for ((m, g), v) in x_mean.iter_mut().zip(x_grand.iter_mut()).zip(&x) {
                    *m += v / t;
                    *g += v;
                }
                y_mean += outcome[r] / t;
                y_grand += outcome[r];
            }
            groups.push(Group { rows: range, x_mean, y_mean });
        }
        let n = outcome.len() as f64;
        x_grand.iter_mut().for_each(|g| *g /= n);
        y_grand /= n;
        Panel { width, constant, regressors, outcome, groups, x_grand, y_grand }
    }

    /// The number of units.
    pub fn units(&self) -> usize {
        self.groups.len()
    }

    /// OLS of the transformed rows: x − θ_g·x̄_g (+ x̄ when `grand`), and y alike. θ = 1 with
    /// the grand means added back is the within transformation with Stata's constant; θ = 0
    /// is pooled OLS; θ_g in (0, 1) is random-effects GLS. `columns` picks the columns.
    fn transformed_ols(
        &self,
        theta: &dyn Fn(&Group) -> f64,
        grand: bool,
        columns: &[usize],
    ) -> Result<Ols, PanelFailure> {
        let k = columns.len();
        let mut equations = super::NormalEquations::new(k);
        let mut full = vec![0.0; self.width];
        let mut x = vec![0.0; k];
        let transform = |g: &Group, r: usize, full: &mut [f64], x: &mut [f64]| -> f64 {
            let th = theta(g);
            (self.regressors)(r, full);
            for (slot, &c) in x.iter_mut().zip(columns) {
                *slot = full[c] - th * g.x_mean[c] + if grand { self.x_grand[c] } else { 0.0 };
            }
            self.outcome[r] - th * g.y_mean + if grand { self.y_grand } else { 0.0 }
        };
        for g in &self.groups {
            for r in g.rows.clone() {
                let y = transform(g, r, &mut full, &mut x);
                equations.add(&x, y);
            }
        }
        let (xtx, xty) = equations.finish();
        let inverse = xtx
            .cholesky()
            .map(|c| c.inverse())
            .ok_or_else(|| PanelFailure::Collinear(columns.to_vec()))?;
        let beta = &inverse * &xty;
        let mut ssr = 0.0;
        for g in &self.groups {
            for r in g.rows.clone() {
                let y = transform(g, r, &mut full, &mut x);
                let e = y - x.iter().zip(beta.iter()).map(|(a, b)| a * b).sum::<f64>();
                ssr += e * e;
            }
        }
        Ok((beta, inverse, ssr))
    }

    /// OLS of the units' means (between effects).
    fn between_ols(&self) -> Result<Ols, PanelFailure> {
        let k = self.width;
        let mut xtx = DMatrix::<f64>::zeros(k, k);
        let mut xty = DVector::<f64>::zeros(k);
        for g in &self.groups {
            let x = DVector::from_column_slice(&g.x_mean);
            xtx += &x * x.transpose();
            xty += x * g.y_mean;
        }
        let inverse = xtx.cholesky().map(|c| c.inverse()).ok_or(PanelFailure::MeansCollinear)?;
        let beta = &inverse * &xty;
        let ssr = self
            .groups
            .iter()
            .map(|g| {
                let e =
                    g.y_mean - g.x_mean.iter().zip(beta.iter()).map(|(a, b)| a * b).sum::<f64>();
                e * e
            })
            .sum();
        Ok((beta, inverse, ssr))
    }

    /// The columns that vary within units (all but the constant and time-invariant terms):
    /// the ones fixed effects can estimate. A column counts as constant when its within
    /// variation is below 1e-12 of its size, as linearmodels judges rank.
    fn varying_within(&self) -> Vec<usize> {
        let mut x = vec![0.0; self.width];
        let mut within = vec![0.0; self.width];
        let mut size = vec![0.0; self.width];
        for g in &self.groups {
            for r in g.rows.clone() {
                (self.regressors)(r, &mut x);
                for c in 0..x.len() {
                    let d = x[c] - g.x_mean[c];
                    within[c] += d * d;
                    size[c] += x[c] * x[c];
                }
            }
        }
        (0..self.width).filter(|&c| size[c] > 0.0 && within[c] > 1e-12 * size[c]).collect()
    }

    /// R² within, between and overall of coefficients `beta` on the columns, as linearmodels
    /// defines them: one minus the residual over the total sum of squares of the demeaned
    /// rows, of the units' means, and of the rows.
    fn r_squared(&self, beta: &DVector<f64>) -> [(String, f64); 3] {
        let mut x = vec![0.0; self.width];
        let fit = |x: &[f64]| x.iter().zip(beta.iter()).map(|(a, b)| a * b).sum::<f64>();
        let (mut within_rss, mut within_tss, mut overall_rss, mut overall_tss) =
            (0.0, 0.0, 0.0, 0.0);
        for g in &self.groups {
            for r in g.rows.clone() {
                (self.regressors)(r, &mut x);
                let y = self.outcome[r];
                let e = y - fit(&x);
                overall_rss += e * e;
                overall_tss += (y - self.y_grand).powi(2);
                let demeaned: Vec<f64> = x.iter().zip(&g.x_mean).map(|(a, m)| a - m).collect();
                let yd = y - g.y_mean;
                within_rss += (yd - fit(&demeaned)).powi(2);
                within_tss += yd * yd;
            }
        }
        let mean_of_means =
            self.groups.iter().map(|g| g.y_mean).sum::<f64>() / self.groups.len() as f64;
        let (mut between_rss, mut between_tss) = (0.0, 0.0);
        for g in &self.groups {
            between_rss += (g.y_mean - fit(&g.x_mean)).powi(2);
            between_tss += (g.y_mean - mean_of_means).powi(2);
        }
        [
            ("R² within".to_owned(), 1.0 - within_rss / within_tss),
            ("R² between".to_owned(), 1.0 - between_rss / between_tss),
            ("R² overall".to_owned(), 1.0 - overall_rss / overall_tss),
        ]
    }

    /// A fit from OLS on transformed data: its covariance σ²(X′X)⁻¹ with σ² = SSR/df, and
    /// the R²s, `extra` statistics and the residual df.
    fn fit_from(&self, (beta, inverse, ssr): Ols, df: f64, extra: Vec<(String, f64)>) -> PanelFit {
        let mut statistics = self.r_squared(&beta).to_vec();
        statistics.extend(extra);
        statistics.push(("residual df".to_owned(), df));
        PanelFit { covariance: inverse * (ssr / df), beta, residual_df: df, statistics }
    }

    /// Fixed effects: the within regression of the columns that vary within units, with the
    /// constant of the grand means; residual df N − units − those columns.
    fn fixed(&self) -> Result<PanelFit, PanelFailure> {
        let varying = self.varying_within();
        let invariant: Vec<usize> =
            (0..self.width).filter(|c| !varying.contains(c) && Some(*c) != self.constant).collect();
        if !invariant.is_empty() {
            return Err(PanelFailure::InvariantWithin(invariant));
        }
        let columns: Vec<usize> = (0..self.width).collect();
        let fit = self.transformed_ols(&|_| 1.0, true, &columns)?;
        let df = self.outcome.len() as f64 - self.groups.len() as f64 - varying.len() as f64;
        if df <= 0.0 {
            return Err(PanelFailure::FixedDegrees);
        }
        let sigma_e = (fit.2 / df).sqrt();
        Ok(self.fit_from(fit, df, vec![("σ_e".to_owned(), sigma_e)]))
    }

    fn between(&self) -> Result<PanelFit, PanelFailure> {
        let df = self.groups.len() as f64 - self.width as f64;
        if df <= 0.0 {
            return Err(PanelFailure::BetweenDegrees);
        }
        Ok(self.fit_from(self.between_ols()?, df, Vec::new()))
    }

    fn pooled(&self) -> Result<PanelFit, PanelFailure> {
        let columns: Vec<usize> = (0..self.width).collect();
        let fit = self.transformed_ols(&|_| 0.0, false, &columns)?;
        Ok(self.fit_from(fit, self.outcome.len() as f64 - self.width as f64, Vec::new()))
    }

    /// Random effects, as Stata's `xtreg, re` and linearmodels' RandomEffects: σ²_e from the
    /// within regression, σ²_u from the between regression less σ²_e over the harmonic mean
    /// of the units' row counts, then OLS of y − θ_g·ȳ_g on x − θ_g·x̄_g with
    /// θ_g = 1 − √(σ²_e / (T_g·σ²_u + σ²_e)).
    fn random(&self) -> Result<PanelFit, PanelFailure> {
        let varying = self.varying_within();
        let (_, _, within_ssr) = if varying.is_empty() {
            (DVector::zeros(0), DMatrix::zeros(0, 0), self.within_ssr_of_y())
        } else {
            self.transformed_ols(&|_| 1.0, false, &varying)?
        };
        let (n, units) = (self.outcome.len() as f64, self.groups.len() as f64);
        let df_within = n - units - varying.len() as f64;
        let df_between = units - self.width as f64;
        if df_within <= 0.0 || df_between <= 0.0 {
            return Err(PanelFailure::RandomDegrees);
        }
        let sigma2_e = within_ssr / df_within;
        let (_, _, between_ssr) = self.between_ols()?;
        let harmonic = units / self.groups.iter().map(|g| 1.0 / g.rows.len() as f64).sum::<f64>();
        let sigma2_u = (between_ssr / df_between - sigma2_e / harmonic).max(0.0);
        let theta =
            |g: &Group| 1.0 - (sigma2_e / (g.rows.len() as f64 * sigma2_u + sigma2_e)).sqrt();
        let columns: Vec<usize> = (0..self.width).collect();
        let fit = self.transformed_ols(&theta, false, &columns)?;
        let extra = vec![
            ("σ_u".to_owned(), sigma2_u.sqrt()),
            ("σ_e".to_owned(), sigma2_e.sqrt()),
            ("ρ".to_owned(), sigma2_u / (sigma2_u + sigma2_e)),
        ];
        Ok(self.fit_from(fit, n - self.width as f64, extra))
    }

    /// The within sum of squares of y alone (a model with no term that varies within units).
    fn within_ssr_of_y(&self) -> f64 {
        self.groups
            .iter()
            .flat_map(|g| g.rows.clone().map(move |r| (self.outcome[r] - g.y_mean).powi(2)))
            .sum()
    }

    /// Fits `estimator`.
    pub fn fit(&self, estimator: Estimator) -> Result<PanelFit, PanelFailure> {
        match estimator {
            Estimator::Fixed => self.fixed(),
            Estimator::Random => self.random(),
            Estimator::Between => self.between(),
            Estimator::Pooled => self.pooled(),
        }
    }
}

/// The Hausman test of fixed against random effects on the coefficients both estimate:
/// (b_fe − b_re)′ (V_fe − V_re)⁻ (b_fe − b_re), χ² with the rank of V_fe − V_re as df (a
/// generalised inverse, as Stata's `hausman`).
#[derive(Clone, Debug)]
pub struct Hausman {
    /// The columns compared: all but the constant.
    pub columns: Vec<usize>,
    pub fixed: Vec<f64>,
    pub random: Vec<f64>,
    /// √ of the diagonal of V_fe − V_re (missing where it is negative).
    pub std_errors: Vec<Option<f64>>,
    pub chi2: f64,
    pub df: usize,
    pub p_value: f64,
}

/// Why the Hausman test has no statistic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HausmanFailure {
    /// V_fe − V_re is zero: no degrees of freedom.
    NoDegrees,
    /// The generalised inverse or the χ² distribution failed.
    Numerics(String),
}

/// The Hausman test of two estimates (β, V) over the same columns, the `constant` left out.
pub fn hausman(
    (fixed_beta, fixed_covariance): (&DVector<f64>, &DMatrix<f64>),
    (random_beta, random_covariance): (&DVector<f64>, &DMatrix<f64>),
    constant: Option<usize>,
) -> Result<Hausman, HausmanFailure> {
    let columns: Vec<usize> = (0..fixed_beta.len()).filter(|&j| Some(j) != constant).collect();
    let m = columns.len();
    let mut d = DVector::<f64>::zeros(m);
    let mut v = DMatrix::<f64>::zeros(m, m);
    for (a, &i) in columns.iter().enumerate() {
        d[a] = fixed_beta[i] - random_beta[i];
        for (b, &j) in columns.iter().enumerate() {
            v[(a, b)] = fixed_covariance[(i, j)] - random_covariance[(i, j)];
        }
    }
    let scale = v.amax().max(f64::MIN_POSITIVE);
    let svd = v.clone().svd(true, true);
    let rank = svd.rank(1e-10 * scale);
    let pinv = svd
        .pseudo_inverse(1e-10 * scale)
        .map_err(|e| HausmanFailure::Numerics(format!("hausman: {e}")))?;
    let chi2 = (d.transpose() * pinv * &d)[(0, 0)];
    if rank == 0 {
        return Err(HausmanFailure::NoDegrees);
    }
    let distribution =
        ChiSquared::new(rank as f64).map_err(|e| HausmanFailure::Numerics(e.to_string()))?;
    Ok(Hausman {
        fixed: columns.iter().map(|&j| fixed_beta[j]).collect(),
        random: columns.iter().map(|&j| random_beta[j]).collect(),
        std_errors: (0..m).map(|a| (v[(a, a)] > 0.0).then(|| v[(a, a)].sqrt())).collect(),
        columns,
        chi2,
        df: rank,
        p_value: 1.0 - distribution.cdf(chi2.max(0.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two units of three dates, y = 2x + the unit's effect exactly: fixed effects find the
    /// slope 2 with no residual, and between effects fit the two means exactly.
    #[test]
    fn fixed_effects_remove_each_units_level() {
        let x = [1.0, 2.0, 3.0, 1.0, 3.0, 5.0];
        let y: Vec<f64> =
            x.iter().enumerate().map(|(i, x)| 2.0 * x + if i < 3 { 10.0 } else { -4.0 }).collect();
        let row = |j: usize, r: &mut [f64]| r.copy_from_slice(&[x[j], 1.0]);
        let panel = Panel::new(2, Some(1), &row, &y, [0..3, 3..6]);
        assert_eq!(panel.units(), 2);
        let fixed = panel.fit(Estimator::Fixed).unwrap();
        assert!((fixed.beta[0] - 2.0).abs() < 1e-12, "{}", fixed.beta);
        // df = 6 rows − 2 units − 1 varying column.
        assert_eq!(fixed.residual_df, 3.0);
        assert!(fixed.covariance[(0, 0)].abs() < 1e-20);
        // Between effects: two means, two parameters, no residual df.
        assert_eq!(panel.fit(Estimator::Between).unwrap_err(), PanelFailure::BetweenDegrees);
        // Pooled OLS sees the unit effects as noise: its slope is not 2.
        let pooled = panel.fit(Estimator::Pooled).unwrap();
        assert!((pooled.beta[0] - 2.0).abs() > 0.5, "{}", pooled.beta);
    }

    #[test]
    fn a_term_constant_within_units_is_named() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let row = |j: usize, r: &mut [f64]| r.copy_from_slice(&[(j / 2) as f64, j as f64, 1.0]);
        let panel = Panel::new(3, Some(2), &row, &y, [0..2, 2..4]);
        assert_eq!(
            panel.fit(Estimator::Fixed).unwrap_err(),
            PanelFailure::InvariantWithin(vec![0])
        );
    }

    #[test]
    fn hausman_of_equal_estimates_has_no_degrees_of_freedom() {
        let beta = DVector::from_vec(vec![1.0, 2.0]);
        let v = DMatrix::from_diagonal(&DVector::from_vec(vec![0.5, 0.1]));
        let failure = hausman((&beta, &v), (&beta, &v), Some(1)).unwrap_err();
        assert_eq!(failure, HausmanFailure::NoDegrees);
        // One column compared, V_fe − V_re = 0.25: χ² = d²/0.25.
        let random = DVector::from_vec(vec![0.5, 2.0]);
        let smaller = DMatrix::from_diagonal(&DVector::from_vec(vec![0.25, 0.1]));
        let test = hausman((&beta, &v), (&random, &smaller), Some(1)).unwrap();
        assert_eq!((test.columns.clone(), test.df), (vec![0], 1));
        assert!((test.chi2 - 1.0).abs() < 1e-12, "{}", test.chi2);
        assert!((test.p_value - 0.317_310_507_862_914).abs() < 1e-9, "{}", test.p_value);
    }
}
