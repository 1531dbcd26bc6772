//! oaxaca: the Blinder–Oaxaca decomposition of the difference in a mean between two groups
//! (the numerics in `crate::stats::oaxaca`). Fitted as two regressions, one per group; the
//! gate sees the decomposition as one model whose every part passed rule 9.

use datafusion::arrow::array::{Array, BooleanArray};

use super::dataset::Dataset;
use super::dataset::levels;
use super::models::{Design, Errors, OlsRequest, Term, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw;
use crate::stats::oaxaca;

/// The decomposition before disclosure. `by` must have exactly two levels in the sample;
/// group 1 is the lower.
pub fn oaxaca_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    by: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let by_variable =
        dataset.variable(by).ok_or_else(|| EngineError::new(format!("no variable {by}")))?;
    let (groups, names) = levels(by_variable, false, true)?;
    let inside = |i: usize| mask.is_none_or(|m| m.is_valid(i) && m.value(i));
    let with_group: BooleanArray =
        (0..dataset.len()).map(|i| Some(inside(i) && groups[i].is_some())).collect();
    let request = OlsRequest { constant: true, errors: Errors::Classical, ..request.clone() };
    let whole = Design::new(dataset, keys, &request, Some(&with_group), None)?;
    let mut present: Vec<usize> = whole.rows().filter_map(|i| groups[i]).collect();
    present.sort_unstable();
    present.dedup();
    // How many levels the sample has is not said: under a condition it would tell which small
    // groups hold a unit at all.
    if present.len() != 2 {
        let fewer = if present.len() < 2 { "fewer" } else { "more" };
        return Err(EngineError::new(format!(
            "oaxaca compares two groups, and {by} has {fewer} than two in the estimation sample: recode it to two levels, or keep if one of two"
        )));
    }
    let label = |g: usize| format!("{by}={}", names[g]);
    let mut fits = Vec::new();
    let mut designs = Vec::new();
    for &g in &present {
        let in_group: BooleanArray =
            (0..dataset.len()).map(|i| Some(whole.sample[i] && groups[i] == Some(g))).collect();
        let design = Design::new(dataset, keys, &request, Some(&in_group), None)?;
        gate.check_model_part(
            &format!("the group {}", label(g)),
            design.n as u64,
            design.k(),
            "use fewer terms or a wider population",
        )?;
        for (variable, levels) in &design.categorical_levels {
            gate.check_levels(variable, levels, false)?;
        }
        if design.names != whole.names {
            return Err(EngineError::new(format!(
                "a level of a factor term is missing from the group {}: both groups need every level, so recode the levels or keep if the rows that have them",
                label(g)
            )));
        }
        // The group's fit itself is pure numerics (stats::oaxaca).
        let rows: Vec<usize> = design.rows().collect();
        let outcome: Vec<f64> = rows.iter().map(|&i| design.outcome(i)).collect();
        let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
        let fit = oaxaca::fit_group(design.k(), &regressors, &outcome).ok_or_else(|| {
            EngineError::new(format!(
                "in the group {} the terms are collinear (a level may be missing from the group): remove a term or recode its levels",
                label(g)
            ))
        })?;
        fits.push(fit);
        designs.push(design);
    }
    let parts = oaxaca::threefold(&fits[0], &fits[1]);
    let components = [
        (format!("mean, {}", label(present[0])), parts.mean_one),
        (format!("mean, {}", label(present[1])), parts.mean_two),
        ("difference".to_owned(), parts.difference),
        ("endowments".to_owned(), parts.endowments),
        ("coefficients".to_owned(), parts.coefficients),
        ("interaction".to_owned(), parts.interaction),
    ];
    let coefficients = components
        .into_iter()
        .map(|(term, (estimate, variance))| {
            z_coefficient(term, estimate, variance.max(0.0).sqrt(), request.level, false, false)
        })
        .collect();
    let k = whole.k();
    let categorical_levels =
        designs.iter_mut().flat_map(|d| std::mem::take(&mut d.categorical_levels)).collect();
    Ok(raw::Model {
        population: whole.population,
        title: format!(
            "Blinder–Oaxaca decomposition (threefold, coefficients of {}); {} less {}",
            label(present[1]),
            label(present[0]),
            label(present[1])
        ),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: whole.contributors,
        parameters: 2 * k,
        residual_df: whole.n as f64 - 2.0 * k as f64,
        t_test: None,
        categorical_levels,
        outcome_levels: None,
        smallest_crossing: None,
        influence: whole.influence,
        absorbed: None,
        statistics: vec![("parameters per group".to_owned(), k as f64)],
    })
}

impl Step<'_> {
    /// `oaxaca <dependent> <term>…, by(<group>)`.
    pub(in crate::engine) fn oaxaca(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let Some(by) = self.option_text("by") else {
            return Err(EngineError::at(
                self.command().span,
                "oaxaca needs the two groups to compare: oaxaca wage age edu, by(sex)",
            ));
        };
        let by_span = self.option_span("by");
        dataset.require(&by, dataset_name).map_err(|e| e.with_span(by_span))?;
        if terms.iter().flat_map(Term::variables).any(|v| v == by) {
            return Err(EngineError::at(
                by_span,
                format!(
                    "{by} splits the groups and cannot be a term as well: remove it from the terms"
                ),
            ));
        }
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: true, errors: Errors::Classical, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[by.as_str()]);
        let raw = oaxaca_raw(&gate, dataset, &keys, &request, &by, mask.as_ref())?;
        self.release_model(&gate, raw)
    }
}
