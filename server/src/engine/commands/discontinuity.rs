//! rdd: a sharp regression discontinuity, the jump in the mean of y where the running variable
//! crosses a threshold, as the `rdrobust` package of Calonico, Cattaneo, Farrell and Titiunik
//! estimates it by default: local linear fits (p = 1) on each side with a triangular kernel, a
//! local quadratic (q = 2) for the bias correction, one MSE-optimal bandwidth (`mserd`, with
//! mass points in the running variable adjusted for), and three rows: the conventional
//! estimate, the bias-corrected one, and the bias-corrected one with its robust standard
//! error. Errors are rdrobust's default nearest-neighbour ones (`vce(nn)`, 3 matches). With
//! `fuzzy(t)` the jump in y is divided by the jump in the treatment t (a fuzzy design).
//!
//! Only aggregates of the units inside the bandwidth leave: each side must pass rule 9 as a
//! model of its own, and their count is released perturbed, as every model's N.

use datafusion::arrow::array::{Array, BooleanArray};

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::numbers;
use super::describe::screened;
use super::models::{Design, Errors, OlsRequest, Term, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw;
use crate::stats::rdd::{P, Q, Side, SideEstimate, combination, estimate_side, mse_bandwidths};

/// `rdd` before disclosure. `bandwidth` fixes h (and b = h, as rdrobust does when h is given);
/// `treatment` makes the design fuzzy.
#[allow(clippy::too_many_arguments)]
pub fn rdd_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    dependent: &str,
    running: &str,
    treatment: Option<&str>,
    threshold: f64,
    bandwidth: Option<f64>,
    level: f64,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let get = |name: &str| {
        dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))
    };
    let running_values = numbers(get(running)?)?;
    let treated = treatment.map(|t| numbers(get(t)?)).transpose()?;
    // Rows whose treatment is not 0/1 leave the sample; only many of them stop the command
    // (rule 13), so the error cannot be aimed at one unit.
    let treated = match (treatment, treated) {
        (Some(t), Some(values)) => Some(
            screened(gate, keys, values, mask, |v| v == 0.0 || v == 1.0).ok_or_else(|| {
                EngineError::new(format!(
                    "fuzzy() takes a treatment dummy, 1 where the unit was treated and 0 where not, and {t} has other values: make one with generate {t}01 = <condition>"
                ))
            })?,
        ),
        _ => None,
    };
    let inside = |i: usize| {
        mask.is_none_or(|m| m.is_valid(i) && m.value(i))
            && treated.as_ref().is_none_or(|t| t[i].is_some())
    };
    let in_sample: BooleanArray = (0..dataset.len()).map(|i| Some(inside(i))).collect();
    let request = OlsRequest {
        dependent: dependent.to_owned(),
        terms: vec![Term::Continuous(running.to_owned())],
        constant: true,
        errors: Errors::Classical,
        level,
    };
    let whole = Design::new(dataset, keys, &request, Some(&in_sample), None)?;
    let (mut below, mut above) = (Vec::new(), Vec::new());
    for i in whole.rows() {
        let x = running_values.in_sample(i);
        let row = (x, whole.y.in_sample(i), treated.as_ref().and_then(|t| t[i]));
        if x < threshold { below.push(row) } else { above.push(row) }
    }
    let (left, right) = (Side::new(below), Side::new(above));
    let distinct = |s: &Side| {
        let mut d = s.x.clone();
        d.dedup();
        d.len()
    };
    // Rule 9 on each whole side first: were the distinct values counted first, a side of one
    // or two units would answer whether those units exist beyond the threshold.
    for (side, name) in [(&left, "below"), (&right, "at or above")] {
        gate.check_model_part(
            &format!("the side {name} the threshold"),
            side.x.len() as u64,
            Q + 1,
            "choose a threshold inside the range of the running variable with threshold()",
        )?;
    }
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
    for (side, name) in [(&left, "below"), (&right, "at or above")] {
        gate.check_model_part(
            &format!("the side {name} the threshold, within the bandwidth,"),
            side.within(threshold, reach).len() as u64,
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
    let jump = |estimates: fn(&SideEstimate) -> &Vec<f64>, column: usize| {
        estimates(&above)[column] - estimates(&below)[column]
    };
    let (tau_y, tau_y_corrected) = (jump(|e| &e.conventional, 0), jump(|e| &e.corrected, 0));
    let (conventional, corrected, s) = match treatment {
        None => (tau_y, tau_y_corrected, vec![1.0]),
        Some(t) => {
            let tau_t = jump(|e| &e.conventional, 1);
            if tau_t.abs() < 1e-12 {
                return Err(EngineError::new(format!(
                    "{t} does not change at the threshold, so a fuzzy design has nothing to scale by: check the treatment, or drop fuzzy() for a sharp design"
                )));
            }
            let s = combination(tau_y, Some(tau_t));
            let tau = tau_y / tau_t;
            // rdrobust's bias correction of the ratio, to first order.
            let bias =
                s[0] * (tau_y - tau_y_corrected) + s[1] * (tau_t - jump(|e| &e.corrected, 1));
            (tau, tau - bias, s)
        }
    };
    let ((v_below, rv_below), (v_above, rv_above)) = (below.variances(&s), above.variances(&s));
    // The estimation sample, for N and rule 11: the units the kernel weighs.
    let near = |x: f64| (x - threshold).abs() < reach;
    let within: BooleanArray = (0..dataset.len())
        .map(|i| Some(inside(i) && running_values[i].is_some_and(near)))
        .collect();
    let sample = Design::new(dataset, keys, &request, Some(&within), None)?;
    let (conventional_se, robust_se) = ((v_below + v_above).sqrt(), (rv_below + rv_above).sqrt());
    let row = |term: &str, estimate: f64, se: f64| {
        z_coefficient(term.to_owned(), estimate, se, level, false, false)
    };
    let design = match treatment {
        None => "Sharp regression discontinuity".to_owned(),
        Some(t) => format!("Fuzzy regression discontinuity, treatment {t},"),
    };
    Ok(raw::Model {
        population: sample.population,
        title: format!(
            "{design} at {running} = {threshold}: local linear, triangular kernel, {} bandwidth, nearest-neighbour robust errors",
            if bandwidth.is_some() { "given" } else { "MSE-optimal (rdrobust's mserd)" }
        ),
        dependent: dependent.to_owned(),
        estimate_label: "effect",
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
        influence: sample.influence,
        absorbed: None,
        statistics: vec![
            ("threshold".to_owned(), threshold),
            ("bandwidth h".to_owned(), h),
            ("bias bandwidth b".to_owned(), b),
        ],
    })
}

impl Step<'_> {
    /// `rdd <dependent> <running variable> [if] [, threshold() bandwidth() fuzzy()]`.
    pub(in crate::engine) fn rdd(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let usage = "write rdd <dependent> <running variable> [, threshold(<number>) bandwidth(<number>) fuzzy(<treatment>)]";
        let running = match terms.as_slice() {
            [Term::Continuous(x)] => x.clone(),
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let treatment = self.option_text("fuzzy");
        if let Some(t) = &treatment {
            let span = self.option_span("fuzzy");
            dataset.require(t, dataset_name).map_err(|e| e.with_span(span))?;
        }
        let threshold = self.option_number("threshold")?.unwrap_or(0.0);
        let bandwidth = self.option_number("bandwidth")?;
        let level = self.confidence_level()?;
        let mask = self.mask(dataset, dataset_name)?;
        let copies = dataset
            .copies([dependent.as_str(), running.as_str()].into_iter().chain(treatment.as_deref()));
        let gate = &*self.gate_for(copies);
        let keys = self.record_keys(gate, dataset);
        let raw = rdd_raw(
            gate,
            dataset,
            &keys,
            &dependent,
            &running,
            treatment.as_deref(),
            threshold,
            bandwidth,
            level,
            mask.as_ref(),
        )?;
        self.release_model(gate, raw)
    }
}
