//! Summaries and statistics: `summarize`, the tests and correlations, mean intervals.

use super::*;

impl Releaser<'_> {
    pub fn summary(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        variables: Vec<raw::VariableSummary>,
    ) -> Released {
        let started = std::time::Instant::now();
        let released = self.summary_rules(gate, origin, variables);
        self.account(started.elapsed());
        released
    }

    pub(super) fn summary_rules(
        &self,
        gate: &Gate,
        origin: Origin<'_>,
        variables: Vec<raw::VariableSummary>,
    ) -> Released {
        let rules = gate.rules();
        let mut rows = Vec::new();
        let mut withheld = 0;
        for v in variables {
            let (n, small) = gate.released_count(v.contributors);
            let magnitude = gate.released_magnitude(v.contributors, &v.magnitude);
            let enough = v.magnitude.n >= rules.min_units_for_statistics;
            let sd = gate.released_sd(v.contributors, &v.magnitude).filter(|_| enough);
            let percentiles: Vec<(String, Option<f64>)> = v
                .quantiles
                .iter()
                .map(|q| {
                    let shown =
                        if enough { gate.released_quantile(q, v.contributors) } else { None };
                    (format!("P{}", q.percent), shown)
                })
                .collect();
            withheld += percentiles.iter().filter(|(_, v)| v.is_none()).count();
            let mut extra = Vec::new();
            if let Some(gini) = v.gini {
                let shown = magnitude.is_some() && enough;
                extra.push((
                    "gini".to_owned(),
                    shown.then(|| significant(gini, rules.significant_digits)),
                ));
            }
            if v.iqr {
                let find = |label: &str| {
                    percentiles.iter().find(|(p, _)| p == label).and_then(|(_, v)| *v)
                };
                let iqr = find("P75").zip(find("P25")).map(|(hi, lo)| hi - lo);
                extra.push(("iqr".to_owned(), iqr));
            }
            rows.push(output::SummaryRow {
                variable: v.variable,
                n: (!small).then_some(n as f64),
                mean: magnitude.map(|(_, mean)| mean),
                sd,
                percentiles,
                extra,
            });
        }
        let notes = vec![format!(
            "N is perturbed; values are coded to P{}–P{} before the mean and SD, which carry noise; percentiles need {} units on each side and show {} significant digits. No minimum or maximum is shown.",
            rules.coding_percentiles.0,
            rules.coding_percentiles.1,
            rules.min_units_beside_percentile,
            rules.significant_digits
        )];
        let decisions = vec![
            Decision { rule: 5, outcome: "N perturbed".into() },
            Decision { rule: 7, outcome: "coded, noised".into() },
            Decision { rule: 8, outcome: format!("{withheld} percentiles withheld") },
        ];
        self.emit(origin, OutputBody::Summary(output::Summary { rows, notes }), decisions)
    }
}

impl Releaser<'_> {
    /// Rule 3 (and 9 for levels) on statistics of a whole sample; values are shown to four
    /// significant digits, and N is perturbed like any count.
    pub fn statistics(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        table: raw::StatisticsTable,
    ) -> Released {
        if let Err(refusal) = gate.check_statistics_population(table.contributors.units) {
            return self.refusal(origin, refusal);
        }
        for (variable, levels) in &table.levels {
            if let Err(refusal) = gate.check_levels(variable, levels, false) {
                return self.refusal(origin, refusal);
            }
        }
        let (n, _) = gate.released_count(table.contributors);
        let mut table = table;
        match std::mem::take(&mut table.restate) {
            raw::Restate::Nothing => {}
            raw::Restate::Anova { parameters, constant } => {
                restate_anova(&mut table.values, n as f64, parameters as f64, constant);
            }
            raw::Restate::PairwiseMeans { groups, residual_ss } => {
                let counts: Vec<f64> =
                    groups.iter().map(|(c, _)| gate.released_count(*c).0 as f64).collect();
                let means: Vec<f64> = groups.iter().map(|(_, m)| *m).collect();
                let rows =
                    crate::stats::pairwise_bonferroni(&means, &counts, residual_ss, n as f64);
                for (row, values) in table.values.iter_mut().zip(rows) {
                    *row = values.into_iter().map(Some).collect();
                }
            }
            raw::Restate::Normality => {
                for row in &mut table.values {
                    let (Some(skew), Some(kurt)) = (row[0], row[1]) else { continue };
                    let (z_skew, z_kurt, k2, p) =
                        crate::stats::dagostino_pearson(skew, kurt, n as f64);
                    row[2..6].copy_from_slice(&[Some(z_skew), Some(z_kurt), Some(k2), Some(p)]);
                }
            }
            raw::Restate::Pairs(pairs) => {
                use statrs::distribution::{ContinuousCDF, StudentsT};
                for pair in pairs {
                    let (units, small) = gate.released_count(pair.units);
                    if small || pair.units.units < gate.rules().min_units_for_statistics {
                        for (row, column) in
                            [Some(pair.value), pair.p, pair.n].into_iter().flatten()
                        {
                            table.values[row][column] = None;
                        }
                        continue;
                    }
                    if let Some((row, column)) = pair.n {
                        table.values[row][column] = Some(units as f64);
                    }
                    if let Some((row, column)) = pair.p {
                        let df = (units as f64 - 2.0).max(1.0);
                        let statistic = pair.r * (df / (1.0 - pair.r * pair.r)).sqrt();
                        table.values[row][column] =
                            StudentsT::new(0.0, 1.0, df).ok().map(|t| 2.0 * t.sf(statistic.abs()));
                    }
                }
            }
        }
        let cells = table
            .values
            .iter()
            .map(|row| row.iter().map(|v| v.map(|x| significant(x, 4))).collect())
            .collect();
        let mut notes = vec![format!("N = {n} (perturbed); values to 4 significant digits.")];
        notes.extend(table.notes);
        let body = OutputBody::Table(output::Table {
            title: table.title,
            statistic: String::new(),
            row_variable: table.row_variable,
            column_variable: None,
            row_labels: table.row_labels,
            column_labels: table.column_labels,
            cells,
            totals: false,
            notes,
        });
        let decisions = vec![Decision { rule: 3, outcome: "passed".into() }];
        self.emit(origin, body, decisions)
    }

    /// `ci`: the released (noisy, coded) mean of each variable with its standard error and
    /// interval; a variable whose mean the rules withhold gets no interval either.
    pub fn mean_intervals(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        intervals: raw::MeanIntervals,
    ) -> Released {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let rules = gate.rules();
        let mut row_labels = Vec::new();
        let mut cells = Vec::new();
        for v in &intervals.summaries {
            let (n, small) = gate.released_count(v.contributors);
            let mean = gate.released_magnitude(v.contributors, &v.magnitude).map(|(_, m)| m);
            let sd = gate.released_sd(v.contributors, &v.magnitude);
            // The released N, not the true one: SD (shown by summarize) over this standard
            // error would otherwise give the exact count back.
            let interval = mean.zip(sd).filter(|_| !small).and_then(|(mean, sd)| {
                let released_n = (n as f64).max(2.0);
                let se = sd / released_n.sqrt();
                let t = StudentsT::new(0.0, 1.0, released_n - 1.0).ok()?;
                let critical = t.inverse_cdf(1.0 - (1.0 - intervals.level / 100.0) / 2.0);
                Some((mean, se, mean - critical * se, mean + critical * se))
            });
            row_labels.push(v.variable.clone());
            cells.push(match interval {
                Some((mean, se, lo, hi)) => {
                    vec![Some(n as f64), Some(mean), Some(significant(se, 4)), Some(lo), Some(hi)]
                }
                None => vec![(!small).then_some(n as f64), None, None, None, None],
            });
        }
        let body = OutputBody::Table(output::Table {
            title: format!("{} % confidence intervals for the mean", intervals.level),
            statistic: String::new(),
            row_variable: "variable".into(),
            column_variable: None,
            row_labels,
            column_labels: ["N", "mean", "std err", "ci low", "ci high"].map(String::from).to_vec(),
            cells,
            totals: false,
            notes: vec![format!(
                "N is perturbed; values are coded to P{}–P{} and the mean carries noise; a mean with fewer than {} units or a dominant unit is withheld.",
                rules.coding_percentiles.0,
                rules.coding_percentiles.1,
                rules.min_units_for_statistics
            )],
        });
        self.emit(
            origin,
            body,
            vec![Decision { rule: 7, outcome: "magnitudes coded, noised".into() }],
        )
    }
}
