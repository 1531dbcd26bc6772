//! regress-mml: a linear model with a random intercept per group, y = x′β + u_g + e, fitted by
//! restricted maximum likelihood (REML) in `crate::stats::mixed`. Here: the sample, the
//! groups, and what the gate must see.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, BooleanArray};
use shared::script::TokenKind;

use super::dataset::Dataset;
use super::dataset::InSample;
use super::dataset::levels;
use super::models::{Design, Errors, OlsRequest, Term, z_coefficient};
use super::{EngineError, Step};
use crate::disclosure::raw::{self, Contributors};
use crate::stats::mixed::MixedFailure;

/// The fit before disclosure.
pub fn mixed_raw(
    gate: &crate::disclosure::Gate,
    dataset: &Dataset,
    keys: &[u64],
    request: &OlsRequest,
    group: &str,
    mask: Option<&BooleanArray>,
) -> Result<raw::Model, EngineError> {
    let group_variable =
        dataset.variable(group).ok_or_else(|| EngineError::new(format!("no variable {group}")))?;
    let (group_rows, _) = levels(group_variable, false, false)?;
    let with_group: BooleanArray = (0..dataset.len())
        .map(|i| Some(mask.is_none_or(|m| m.is_valid(i) && m.value(i)) && group_rows[i].is_some()))
        .collect();
    let request = OlsRequest { constant: true, errors: Errors::Classical, ..request.clone() };
    let design = Design::new(dataset, keys, &request, Some(&with_group), None)?;
    for (variable, levels) in &design.categorical_levels {
        gate.check_levels(variable, levels, false)?;
    }
    let k = design.k();
    let rows: Vec<usize> = design.rows().collect();
    let mut group_units: BTreeMap<usize, Contributors> = BTreeMap::new();
    for &i in &rows {
        group_units.entry(group_rows.in_sample(i)).or_default().add(keys[i]);
    }
    // Two groups that count as many (rule 13), so the error says nothing about a small one.
    if group_units.values().filter(|&&c| gate.counts_as_many(c)).count() < 2 {
        return Err(EngineError::new(format!(
            "a random intercept needs at least two groups, and {group} has fewer in the estimation sample: choose a grouping with several levels"
        )));
    }
    // The fit itself is pure numerics (stats::mixed), over the sample's observations.
    let outcome: Vec<f64> = rows.iter().map(|&i| design.outcome(i)).collect();
    let group_of: Vec<usize> = rows.iter().map(|&i| group_rows.in_sample(i)).collect();
    let regressors = |j: usize, x: &mut [f64]| design.row(rows[j], x);
    let fit =
        crate::stats::mixed::fit(k, &regressors, &outcome, &group_of, super::deadline::expired)
            .map_err(|failure| match failure {
                MixedFailure::Collinear => EngineError::new(format!(
                    "the terms are collinear (one is a combination of others): remove one of {}",
                    design.names.join(", ")
                )),
                MixedFailure::Singular => EngineError::new(
                    "the model's information matrix is singular: remove a collinear term",
                ),
            })?;
    let (gamma, covariance) = (fit.gamma, &fit.covariance);
    let coefficients = design
        .names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let se = covariance[(j, j)].max(0.0).sqrt();
            z_coefficient(name.clone(), fit.beta[j], se, request.level, false, name == "constant")
        })
        .collect();
    let group_variance = gamma * fit.scale;
    // The number of groups is not shown: under a condition it would tell which small groups
    // hold a unit at all.
    let statistics = vec![
        (format!("sd of the {group} intercepts"), group_variance.sqrt()),
        ("sd of the residual".to_owned(), fit.scale.sqrt()),
        ("intraclass correlation".to_owned(), group_variance / (group_variance + fit.scale)),
        ("REML log likelihood".to_owned(), fit.log_likelihood),
    ];
    Ok(raw::Model {
        population: design.population,
        title: format!("Mixed linear model, a random intercept per {group} (REML)"),
        dependent: request.dependent.clone(),
        estimate_label: "coef",
        test_label: "z",
        coefficients,
        contributors: design.contributors,
        parameters: k + 2,
        residual_df: design.n as f64 - (k + 2) as f64,
        t_test: None,
        categorical_levels: design.categorical_levels,
        outcome_levels: None,
        smallest_crossing: design.smallest_crossing,
        influence: design.influence,
        absorbed: None,
        statistics,
    })
}

impl Step<'_> {
    /// `regress-mml <dependent> <term>… by <group>`.
    pub(in crate::engine) fn regress_mml(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let source = self.source();
        let args = &self.command().args;
        let usage = "write regress-mml <dependent> <term>… by <group>, such as regress-mml wage age i.sex by kommune";
        let by_at = args
            .iter()
            .position(|t| t.kind == TokenKind::Ident && t.span.text(source) == "by")
            .ok_or_else(|| EngineError::at(self.command().span, usage))?;
        let group = match &args[by_at + 1..] {
            [g] if g.kind == TokenKind::Ident => {
                let name = g.span.text(source).to_owned();
                dataset.require(&name, dataset_name).map_err(|e| e.with_span(g.span))?;
                name
            }
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let mut terms =
            self.terms_of(&args[..by_at], dataset, dataset_name)?.into_iter().map(|(t, _)| t);
        let dependent = match terms.next() {
            Some(Term::Continuous(y)) => y,
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let terms: Vec<Term> = terms.collect();
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: true, errors: Errors::Classical, level };
        let mask = self.mask(dataset, dataset_name)?;
        let (gate, keys) = self.model_gate(dataset, &request, &[group.as_str()]);
        let raw = mixed_raw(&gate, dataset, &keys, &request, &group, mask.as_ref())?;
        self.release_model(&gate, raw)
    }
}
