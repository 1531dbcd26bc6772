//! Models: coefficients, their errors and fit statistics under rule 9.

use super::*;

impl Releaser<'_> {
    pub fn model(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        model: raw::Model,
    ) -> Released {
        let started = std::time::Instant::now();
        let released = self.model_rules(gate, origin, model);
        self.account(started.elapsed());
        released
    }

    pub(super) fn model_rules(
        &self,
        gate: &Gate,
        origin: Origin<'_>,
        model: raw::Model,
    ) -> Released {
        let rules = gate.rules();
        let n = model.contributors.units;
        let refuse = |message: String| self.refusal(origin, Refusal::new(9, message));
        if n < rules.min_model_n {
            return refuse(format!(
                "models need at least {} units in the estimation sample (rule 9): use a wider population",
                rules.min_model_n
            ));
        }
        if model.parameters as u64 * 3 > n {
            return refuse(
                "the model has more parameters than a third of its units (rule 9): use fewer terms or group the categories".into(),
            );
        }
        if model.residual_df < rules.min_residual_df as f64 {
            return refuse(format!(
                "the model leaves fewer than {} residual degrees of freedom (rule 9): use fewer terms",
                rules.min_residual_df
            ));
        }
        for (variable, levels) in &model.categorical_levels {
            if let Err(refusal) = gate.check_levels(variable, levels, false) {
                return self.refusal(origin, refusal);
            }
        }
        if let Some(levels) = &model.outcome_levels
            && let Err(refusal) = gate.check_levels(&model.dependent, levels, true)
        {
            return self.refusal(origin, refusal);
        }
        // After the level rules, whose message names the level to group.
        if model.influence >= MAX_INFLUENCE {
            return refuse(
                "one unit weighs so much in this model (leverage or share of a term's values near 1) that its coefficients would give that unit's values (rule 9): remove or transform the term that sets it apart".into(),
            );
        }
        let hide_constant = model.smallest_crossing.is_some_and(|u| u < rules.min_level_units);
        let mut decisions = vec![Decision { rule: 9, outcome: "passed".into() }];
        let mut notes = vec!["No residuals, leverage or fitted values are shown.".to_owned()];
        if hide_constant {
            decisions.push(Decision { rule: 9, outcome: "constant hidden".into() });
            notes.push(format!(
                "The constant is hidden: a crossing of the categorical terms has fewer than {} units.",
                rules.min_level_units
            ));
        }
        let constant = model.coefficients.iter().any(|c| c.is_constant);
        let n = gate.perturb(model.contributors) as f64;
        let absorbed = model.absorbed.map_or(0.0, |units| gate.perturb(units) as f64);
        let released_df = (n - absorbed - model.parameters as f64).max(1.0);
        // t tests on the released residual df (see raw::Model::t_test).
        let t_test = model.t_test.and_then(|(_, level)| {
            use statrs::distribution::{ContinuousCDF, StudentsT};
            let t = StudentsT::new(0.0, 1.0, released_df).ok()?;
            Some((t.inverse_cdf(1.0 - (1.0 - level / 100.0) / 2.0), t))
        });
        let coefficients = model
            .coefficients
            .into_iter()
            .filter(|c| !(hide_constant && c.is_constant))
            .map(|c| {
                let (p_value, ci_low, ci_high) = match &t_test {
                    Some((critical, t)) => {
                        use statrs::distribution::ContinuousCDF;
                        (
                            2.0 * t.sf(c.statistic.abs()),
                            c.estimate - critical * c.std_error,
                            c.estimate + critical * c.std_error,
                        )
                    }
                    None => (c.p_value, c.ci_low, c.ci_high),
                };
                output::Coefficient {
                    term: c.term,
                    estimate: c.estimate,
                    std_error: c.std_error,
                    statistic: c.statistic,
                    p_value,
                    ci_low,
                    ci_high,
                }
            })
            .collect();
        let mut statistics = vec![("N".to_owned(), n)];
        statistics.extend(with_released_n(
            model.statistics,
            n,
            released_df,
            model.residual_df,
            constant,
        ));
        decisions.push(Decision { rule: 5, outcome: "N perturbed".into() });
        let body = OutputBody::Model(output::Model {
            title: model.title,
            dependent: model.dependent,
            estimate_label: model.estimate_label.into(),
            test_label: model.test_label.into(),
            coefficients,
            statistics,
            notes,
        });
        self.emit(origin, body, decisions)
    }
}
