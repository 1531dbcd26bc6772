//! Panel data. `import-panel` builds a long dataset, a row per unit and date (see
//! [`Panel`]); the -panel commands describe it date by date, count its transitions from one
//! date to the next, and fit the panel models of Stata's `xtreg` as Python's linearmodels
//! computes them: fixed effects (within), random effects (Swamy–Arora GLS), between effects
//! and pooled OLS, with the Hausman test of the first against the second.
//!
//! Disclosure: an output pooled over the rows of a panel counts each unit once per date, and
//! the gate treats those repeats as copies (`Dataset::copies`), multiplying its thresholds by
//! the number of dates. The per-date outputs are cross-sections and need no such factor.

use crate::disclosure::memory::Rule11Check;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use nalgebra::{DMatrix, DVector};
use shared::Date;
use shared::metadata::Temporality;
use shared::script::{Span, TokenKind};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::dataset::{Dataset, Panel, VarInfo, Variable};
use super::describe::summarize_raw;
use super::import::{check_date, labels, merge_into};
use super::models::{Design, Errors, OlsRequest, Term};
use super::{EngineError, Invariant, Step};
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::raw;
pub use crate::stats::panel::Estimator;
use crate::stats::panel::{Hausman, HausmanFailure, PanelFailure};

/// The column `tabulate-panel` adds for the date of each row. The `@` keeps it apart from
/// every name a script can write.
const DATE_COLUMN: &str = "panel@date";

/// A model's title.
fn title(estimator: Estimator) -> &'static str {
    match estimator {
        Estimator::Fixed => "Panel regression: fixed effects (within units)",
        Estimator::Random => "Panel regression: random effects (GLS, Swamy–Arora)",
        Estimator::Between => "Panel regression: between effects (OLS on unit means)",
        Estimator::Pooled => "Panel regression: pooled OLS",
    }
}

/// The estimation sample of a panel model, grouped by unit: the rows of a unit are next to
/// each other in a panel, so one pass finds the groups. The fits are pure numerics
/// (`crate::stats::panel`).
pub struct PanelSample {
    design: Design,
    /// Sample rows, in dataset order.
    rows: Vec<usize>,
    /// y of each sample row.
    outcome: Vec<f64>,
    /// Each unit's run of positions in `rows`.
    unit_rows: Vec<std::ops::Range<usize>>,
    /// The units of the sample, each once (the rows' contributors are in the design).
    units: raw::Contributors,
}

/// One estimator's coefficients and their covariance, before disclosure.
pub struct PanelEstimate {
    pub names: Vec<String>,
    pub beta: DVector<f64>,
    pub covariance: DMatrix<f64>,
    pub residual_df: f64,
    /// (name, value) of the fit statistics.
    pub statistics: Vec<(String, f64)>,
}

impl PanelSample {
    pub fn new(
        dataset: &Dataset,
        keys: &[u64],
        request: &OlsRequest,
        mask: Option<&BooleanArray>,
    ) -> Result<PanelSample, EngineError> {
        let design = Design::new(dataset, keys, request, mask, None)?;
        let rows: Vec<usize> = design.rows().collect();
        let outcome = rows.iter().map(|&i| design.outcome(i)).collect();
        let mut unit_rows = Vec::new();
        let mut units = raw::Contributors::default();
        let mut start = 0;
        for (at, &i) in rows.iter().enumerate() {
            let unit = dataset.ids.value(i);
            if rows.get(at + 1).is_none_or(|&next| dataset.ids.value(next) != unit) {
                unit_rows.push(start..at + 1);
                units.add(keys[i]);
                start = at + 1;
            }
        }
        Ok(PanelSample { design, rows, outcome, unit_rows, units })
    }

    /// Units in the estimation sample.
    #[cfg(test)]
    pub fn units(&self) -> u64 {
        self.units.units
    }

    /// Rows in the estimation sample.
    #[cfg(test)]
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    fn constant_column(&self) -> Option<usize> {
        self.design.names.iter().position(|n| n == "constant")
    }

    pub fn estimate(&self, estimator: Estimator) -> Result<PanelEstimate, EngineError> {
        let regressors = |j: usize, x: &mut [f64]| self.design.row(self.rows[j], x);
        let panel = crate::stats::panel::Panel::new(
            self.design.k(),
            self.constant_column(),
            &regressors,
            &self.outcome,
            self.unit_rows.iter().cloned(),
        );
        let names = |columns: &[usize]| -> Vec<&str> {
            columns.iter().map(|&c| self.design.names[c].as_str()).collect()
        };
        let fit = panel.fit(estimator).map_err(|failure| match failure {
            PanelFailure::Collinear(columns) => EngineError::new(format!(
                "the terms are collinear (one is a combination of others): remove one of {}",
                names(&columns).join(", ")
            )),
            PanelFailure::MeansCollinear => EngineError::new(format!(
                "the units' means of the terms are collinear: remove one of {}",
                self.design.names.join(", ")
            )),
            PanelFailure::InvariantWithin(columns) => {
                let one = columns.len() == 1;
                EngineError::new(format!(
                    "{} do{} not vary within units, so fixed effects cannot estimate {}: drop {}, or use re",
                    names(&columns).join(", "),
                    if one { "es" } else { "" },
                    if one { "it" } else { "them" },
                    if one { "it" } else { "them" },
                ))
            }
            PanelFailure::FixedDegrees => EngineError::new(
                "fixed effects need more rows than units plus terms: the panel has too few dates per unit",
            ),
            PanelFailure::BetweenDegrees => EngineError::new(
                "between effects need more units than parameters: use fewer terms",
            ),
            PanelFailure::RandomDegrees => EngineError::new(
                "random effects need more rows than units plus terms and more units than parameters: use fewer terms",
            ),
        })?;
        Ok(PanelEstimate {
            names: self.design.names.clone(),
            beta: fit.beta,
            covariance: fit.covariance,
            residual_df: fit.residual_df,
            statistics: fit.statistics,
        })
    }

    /// The model for the gate: t tests on the estimate's residual df.
    pub fn model(
        &self,
        estimator: Estimator,
        estimate: PanelEstimate,
        dependent: &str,
        level: f64,
    ) -> Result<raw::Model, EngineError> {
        let df = estimate.residual_df;
        let t = StudentsT::new(0.0, 1.0, df).map_err(|e| EngineError::internal(e.to_string()))?;
        let critical = t.inverse_cdf(1.0 - (1.0 - level / 100.0) / 2.0);
        let coefficients = estimate
            .names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let b = estimate.beta[j];
                let se = estimate.covariance[(j, j)].max(0.0).sqrt();
                raw::Coefficient {
                    term: name.clone(),
                    estimate: b,
                    std_error: se,
                    statistic: b / se,
                    p_value: 2.0 * (1.0 - t.cdf((b / se).abs())),
                    ci_low: b - critical * se,
                    ci_high: b + critical * se,
                    is_constant: name == "constant",
                }
            })
            .collect();
        let design = &self.design;
        // Between effects fit one row per unit: its N is the units. Fixed effects spend a
        // parameter on each unit; the gate restates the residual df with their count
        // perturbed, since the exact df would tell the exact number of units.
        let (contributors, absorbed) = match estimator {
            Estimator::Between => (self.units, None),
            Estimator::Fixed => (design.contributors, Some(self.units)),
            Estimator::Random | Estimator::Pooled => (design.contributors, None),
        };
        Ok(raw::Model {
            title: title(estimator).to_owned(),
            dependent: dependent.to_owned(),
            estimate_label: "coef",
            test_label: "t",
            coefficients,
            contributors,
            absorbed,
            parameters: estimate.names.len(),
            residual_df: df,
            t_test: Some((df, level)),
            categorical_levels: design.categorical_levels.clone(),
            outcome_levels: None,
            smallest_crossing: design.smallest_crossing,
            influence: design.influence,
            statistics: estimate.statistics,
            population: design.population.clone(),
        })
    }
}

/// The Hausman test of the fixed against the random effects (`crate::stats::panel::hausman`)
/// on the coefficients both estimate, all but the constant.
pub fn hausman(fixed: &PanelEstimate, random: &PanelEstimate) -> Result<Hausman, EngineError> {
    let constant = fixed.names.iter().position(|n| n == "constant");
    let (fe, re) = ((&fixed.beta, &fixed.covariance), (&random.beta, &random.covariance));
    crate::stats::panel::hausman(fe, re, constant).map_err(|failure| {
        match failure {
            HausmanFailure::NoDegrees => EngineError::new(
                "the fixed- and random-effects covariances do not differ, so the Hausman test has no degrees of freedom",
            ),
            HausmanFailure::Numerics(e) => EngineError::internal(e),
        }
    })
}

fn date_text(days: i32) -> String {
    Date::from_epoch_days(days).to_string()
}

impl Step<'_> {
    /// The current dataset's panel, or an error that says how to make one.
    fn panel_of<'d>(
        &self,
        dataset_name: &str,
        dataset: &'d Dataset,
    ) -> Result<&'d Panel, EngineError> {
        dataset.panel.as_ref().ok_or_else(|| {
            EngineError::at(
                self.command().name_span,
                format!(
                    "dataset {dataset_name} is not a panel: make one with import-panel in an empty dataset, or use {} on this one",
                    self.command().name.trim_end_matches("-panel")
                ),
            )
        })
    }

    /// The one variable the command names, or `usage` as the error.
    fn one_variable<'d>(
        &self,
        dataset: &'d Dataset,
        dataset_name: &str,
        usage: &str,
    ) -> Result<&'d Variable, EngineError> {
        let names = self.names_in_args()?;
        let [(name, span)] = names.as_slice() else {
            return Err(EngineError::at(self.command().span, usage));
        };
        dataset.require(name, dataset_name).map_err(|e| e.with_span(*span))
    }

    /// `import-panel alias/V1 alias/V2 … d1 d2 …`: each variable on each date, a row per unit
    /// and date where the unit has a value of any of them.
    pub(in crate::engine) async fn import_panel(&mut self) -> Result<(), EngineError> {
        let usage = "write import-panel <alias>/<VARIABLE>… <date>…, such as import-panel db/INNTEKT_WLONN db/SIVSTANDFDT_SIVSTAND 2019-01-01 2020-01-01";
        let t = self.command().args.clone();
        let src = self.source().to_owned();
        let mut requested: Vec<(String, Span, String, Span)> = Vec::new();
        let mut i = 0;
        while i < t.len() && t[i].kind == TokenKind::Ident {
            let (Some(slash), Some(var)) = (t.get(i + 1), t.get(i + 2)) else {
                return Err(EngineError::at(t[i].span, usage));
            };
            if slash.kind != TokenKind::Slash || var.kind != TokenKind::Ident {
                return Err(EngineError::at(t[i].span, usage));
            }
            requested.push((
                t[i].span.text(&src).to_owned(),
                t[i].span,
                var.span.text(&src).to_owned(),
                var.span,
            ));
            i += 3;
        }
        let mut dates: Vec<(Date, Span)> = Vec::new();
        while let Some(d) = t.get(i).filter(|d| d.kind == TokenKind::Date) {
            let parsed: Date = d
                .span
                .text(&src)
                .parse()
                .map_err(|e: shared::date::DateError| EngineError::at(d.span, e.to_string()))?;
            if dates.iter().any(|(x, _)| *x == parsed) {
                return Err(EngineError::at(d.span, format!("{parsed} is given twice")));
            }
            dates.push((parsed, d.span));
            i += 1;
        }
        if let Some(extra) = t.get(i) {
            return Err(EngineError::at(
                extra.span,
                format!("'{}' does not belong here: {usage}", extra.span.text(&src)),
            ));
        }
        if requested.is_empty() {
            return Err(EngineError::at(self.command().span, usage));
        }
        if dates.len() < 2 {
            return Err(EngineError::at(
                self.command().span,
                "a panel needs at least two dates: list them after the variables, such as 2019-01-01 2020-01-01",
            ));
        }
        dates.sort_by_key(|(d, _)| *d);

        type Resolved<'r> = (
            super::dataset::Origin,
            &'r crate::datastore::DatastoreVersion,
            &'r shared::metadata::VariableMetadata,
            String,
        );
        let mut resolved: Vec<Resolved<'_>> = Vec::new();
        for (alias, alias_span, variable, variable_span) in &requested {
            let (origin, version, meta) =
                self.resolve_variable(alias, *alias_span, variable, *variable_span)?;
            if resolved.iter().any(|r: &Resolved<'_>| r.2.name == meta.name) {
                return Err(EngineError::at(*variable_span, format!("{variable} is listed twice")));
            }
            if let Some((first_origin, _, first, _)) = resolved.first() {
                if *first_origin != origin {
                    return Err(EngineError::at(
                        *alias_span,
                        "a panel holds units of one datastore version: bind every variable's alias to the same one",
                    ));
                }
                if first.unit_type != meta.unit_type {
                    return Err(EngineError::at(
                        *variable_span,
                        format!(
                            "{} describes {} units but {} describes {}: a panel holds one unit type",
                            meta.name.as_str(),
                            meta.unit_type.as_str(),
                            first.name.as_str(),
                            first.unit_type.as_str()
                        ),
                    ));
                }
            }
            if meta.temporality == Temporality::Fixed {
                check_date(meta, None, *variable_span)?;
            } else {
                for &date in &dates {
                    check_date(meta, Some(date), *variable_span)?;
                }
            }
            resolved.push((origin, version, meta, alias.clone()));
        }
        let dataset_name = self.current_name()?;
        // An empty dataset, or one of units only (from clone-units): then the panel is of
        // those units.
        let population = {
            let (_, current) = self.current()?;
            let (origin, _, meta, _) = &resolved[0];
            match current.unit_type {
                None => None,
                Some(_)
                    if !current.variables.is_empty()
                        || current.panel.is_some()
                        || current.spells.is_some()
                        || current.members.is_some() =>
                {
                    return Err(EngineError::at(
                        self.command().name_span,
                        format!(
                            "import-panel fills an empty dataset, or one of units only (from clone-units), and {dataset_name} has variables: create-dataset a new one first"
                        ),
                    ));
                }
                Some(unit) if unit != meta.unit_type => {
                    return Err(EngineError::at(
                        requested[0].3,
                        format!(
                            "{} describes {} units but dataset {dataset_name} holds {} units: import the panel into a dataset of its own",
                            meta.name.as_str(),
                            meta.unit_type.as_str(),
                            unit.as_str()
                        ),
                    ));
                }
                Some(_) if current.origin.as_ref().is_some_and(|o| o != origin) => {
                    return Err(EngineError::at(
                        requested[0].1,
                        "a dataset holds units of one datastore version: bind the variables' alias to the version its units come from",
                    ));
                }
                Some(_) => Some(current.ids.clone()),
            }
        };

        // Each date as a cross-section (an outer join of the variables on that date), then
        // the dates stacked and ordered by unit and date.
        let mut parts: Vec<Dataset> = Vec::new();
        let mut types: Vec<Option<DataType>> = vec![None; resolved.len()];
        for (date, _) in &dates {
            let mut part = Dataset::default();
            for (v, (_, version, meta, _)) in resolved.iter().enumerate() {
                let when = (meta.temporality != Temporality::Fixed).then_some(*date);
                let (ids, values) = self.scan(&version.data_dir(&meta.name), meta, when).await?;
                if ids.is_empty() {
                    continue;
                }
                types[v] = Some(values.data_type().clone());
                let name = meta.name.as_str().to_owned();
                if part.unit_type.is_none() {
                    part.unit_type = Some(meta.unit_type);
                    part.ids = ids;
                    part.variables.push(Variable { name, values, info: VarInfo::default() });
                } else {
                    merge_into(&mut part, ids, values, name, VarInfo::default(), true)?;
                }
            }
            if let Some(units) = &population {
                // Only the dataset's units (ids ascending and unique in both).
                let units = units.values();
                let kept: BooleanArray = part
                    .ids
                    .values()
                    .iter()
                    .map(|id| Some(units.binary_search(id).is_ok()))
                    .collect();
                part.filter(&kept)?;
            }
            parts.push(part);
        }
        for (v, (_, _, meta, _)) in resolved.iter().enumerate() {
            if types[v].is_none() {
                let listed: Vec<String> = dates.iter().map(|(d, _)| d.to_string()).collect();
                return Err(EngineError::new(format!(
                    "{} has no values on any of {}",
                    meta.name.as_str(),
                    listed.join(", ")
                )));
            }
        }
        let total: usize = parts.iter().map(Dataset::len).sum();
        let max_rows = self.engine.limits.max_rows;
        if total > max_rows {
            return Err(EngineError::new(format!(
                "the panel would have more than the row limit of {max_rows} (max_rows): use fewer dates or a narrower population"
            )));
        }
        let arrow = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
        let ids: Vec<i64> = parts.iter().flat_map(|p| p.ids.values().iter().copied()).collect();
        let date_rows: Vec<u32> = parts
            .iter()
            .enumerate()
            .flat_map(|(d, p)| std::iter::repeat_n(d as u32, p.len()))
            .collect();
        let mut order: Vec<u32> = (0..total as u32).collect();
        order.sort_unstable_by_key(|&r| (ids[r as usize], date_rows[r as usize]));
        let order = UInt32Array::from(order);
        let mut variables = Vec::new();
        for (v, (_, _, meta, alias)) in resolved.iter().enumerate() {
            let data_type = types[v].clone().invariant("every variable has a type")?;
            let name = meta.name.as_str();
            let pieces: Vec<ArrayRef> = parts
                .iter()
                .map(|p| match p.variable(name) {
                    Some(var) => var.values.clone(),
                    None => new_null_array(&data_type, p.len()),
                })
                .collect();
            let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
            let stacked = compute::concat(&refs).map_err(arrow)?;
            variables.push(Variable {
                name: name.to_owned(),
                values: compute::take(&stacked, &order, None).map_err(arrow)?,
                info: VarInfo {
                    labels: labels(meta),
                    pointer: meta.points_to.is_some(),
                    source: format!("{alias}/{name} (panel)"),
                    copies: 1,
                },
            });
        }
        let sorted_ids: Vec<i64> = order.values().iter().map(|&r| ids[r as usize]).collect();
        let rows: Vec<u32> = order.values().iter().map(|&r| date_rows[r as usize]).collect();
        let (origin, _, meta, _) = &resolved[0];
        let dataset = self
            .workspace
            .datasets
            .get_mut(&dataset_name)
            .invariant("the current dataset exists")?;
        *dataset = Dataset {
            unit_type: Some(meta.unit_type),
            origin: Some(origin.clone()),
            ids: Int64Array::from(sorted_ids),
            variables,
            members: None,
            panel: Some(Panel { dates: dates.iter().map(|(d, _)| d.epoch_days()).collect(), rows }),
            spells: None,
        };
        let names: Vec<&str> = resolved.iter().map(|(_, _, m, _)| m.name.as_str()).collect();
        self.notice(format!("{} imported as a panel at {} dates", names.join(", "), dates.len()));
        Ok(())
    }

    /// `summarize-panel var… [, gini iqr]`: summarize on each date, in one output.
    pub(in crate::engine) fn summarize_panel(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let panel = self.panel_of(dataset_name, dataset)?;
        let names = self.summarized_names(dataset, dataset_name)?;
        let mask = self.mask(dataset, dataset_name)?;
        // Each date is a cross-section: a unit once, so only copied values count as copies.
        let gate = &*self.gate_for(dataset.variable_copies(names.iter().map(String::as_str)));
        let mut summaries = Vec::new();
        for (d, &day) in panel.dates.iter().enumerate() {
            let on_date: BooleanArray = (0..dataset.len())
                .map(|i| {
                    Some(
                        panel.rows[i] as usize == d
                            && mask.as_ref().is_none_or(|m| m.is_valid(i) && m.value(i)),
                    )
                })
                .collect();
            let mut part = dataset.clone();
            part.filter(&on_date)?;
            part.panel = None;
            let keys = self.record_keys(gate, &part);
            let raw = summarize_raw(
                gate,
                &part,
                &keys,
                &names,
                None,
                self.flag("gini"),
                self.flag("iqr"),
            )?;
            summaries.extend(raw.into_iter().map(|mut s| {
                s.variable = format!("{} {}", s.variable, date_text(day));
                s
            }));
        }
        // Each date's rows against the earlier outputs (a panel's dates hold the same units).
        let apart: Vec<&PopulationSketch> = summaries.iter().map(|s| &s.population).collect();
        let remember = apart.iter().map(|&p| p.clone()).collect();
        let cleared = self.clear(Rule11Check { together: Vec::new(), apart, remember })?;
        let released = self.releaser.summary(gate, &cleared, self.origin(), summaries);
        self.outputs.push(released);
        Ok(())
    }

    /// `tabulate-panel var [, options]`: var against the panel dates, with tabulate's options.
    pub(in crate::engine) fn tabulate_panel(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let panel = self.panel_of(dataset_name, dataset)?;
        let name = self
            .one_variable(
                dataset,
                dataset_name,
                "write tabulate-panel <variable>: the table has a column per panel date",
            )?
            .name
            .clone();
        let dates: StringArray =
            panel.rows.iter().map(|&r| Some(date_text(panel.dates[r as usize]))).collect();
        let mut with_dates = dataset.clone();
        with_dates.set(Variable {
            name: DATE_COLUMN.to_owned(),
            values: Arc::new(dates),
            info: VarInfo::default(),
        });
        let released =
            self.tabulate_of(dataset_name, &with_dates, vec![name, DATE_COLUMN.to_owned()])?;
        self.outputs.extend(released);
        Ok(())
    }

    /// `transitions-panel var [, freq rowpct]`: units by their value on one date (rows) and on
    /// the next (columns), over every pair of consecutive dates.
    pub(in crate::engine) fn transitions_panel(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let panel = self.panel_of(dataset_name, dataset)?;
        let variable = self.one_variable(
            dataset,
            dataset_name,
            "write transitions-panel <variable>: one variable, from each date to the next",
        )?;
        let (name, span) = (&variable.name, self.command().args[0].span);
        let values = &variable.values;
        let (mut from, mut to) = (Vec::new(), Vec::new());
        for i in 1..dataset.len() {
            if dataset.ids.value(i) == dataset.ids.value(i - 1)
                && panel.rows[i] == panel.rows[i - 1] + 1
                && !values.is_null(i - 1)
                && !values.is_null(i)
            {
                from.push(i as u32 - 1);
                to.push(i as u32);
            }
        }
        if from.is_empty() {
            return Err(EngineError::at(
                span,
                format!("no unit has {name} on two dates in a row, so there are no transitions"),
            ));
        }
        let arrow = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
        let (from, to) = (UInt32Array::from(from), UInt32Array::from(to));
        let ids = compute::take(&dataset.ids, &from, None).map_err(arrow)?;
        // A unit makes a transition per pair of dates: up to dates − 1 of them.
        let info = VarInfo {
            copies: variable.info.copies().saturating_mul((panel.dates.len() as u64 - 1).max(1)),
            ..variable.info.clone()
        };
        let (from_name, to_name) = (format!("{name} (from)"), format!("{name} (to)"));
        let transitions = Dataset {
            unit_type: dataset.unit_type,
            origin: dataset.origin.clone(),
            ids: ids.as_any().downcast_ref::<Int64Array>().cloned().invariant("ids are Int64")?,
            variables: vec![
                Variable {
                    name: from_name.clone(),
                    values: compute::take(values, &from, None).map_err(arrow)?,
                    info: info.clone(),
                },
                Variable {
                    name: to_name.clone(),
                    values: compute::take(values, &to, None).map_err(arrow)?,
                    info,
                },
            ],
            members: None,
            panel: None,
            spells: None,
        };
        let released = self.tabulate_of(dataset_name, &transitions, vec![from_name, to_name])?;
        self.outputs.extend(released);
        Ok(())
    }

    fn estimator(&self) -> Result<Estimator, EngineError> {
        let chosen: Vec<(&str, Estimator)> = [
            ("fe", Estimator::Fixed),
            ("re", Estimator::Random),
            ("be", Estimator::Between),
            ("pooled", Estimator::Pooled),
        ]
        .into_iter()
        .filter(|(name, _)| self.flag(name))
        .collect();
        match chosen.as_slice() {
            [] => Ok(Estimator::Fixed),
            [(_, e)] => Ok(*e),
            [_, (second, _), ..] => Err(EngineError::at(
                self.option_span(second),
                "choose one of fe, re, be and pooled",
            )),
        }
    }

    /// The sample of a panel model of the current dataset, with its gate's copies.
    fn panel_sample(&self) -> Result<(PanelSample, String, u64), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        self.panel_of(dataset_name, dataset)?;
        let (dependent, terms) = self.model_terms(dataset, dataset_name)?;
        let level = self.confidence_level()?;
        let request =
            OlsRequest { dependent, terms, constant: true, errors: Errors::Classical, level };
        let copies = dataset.copies(
            std::iter::once(request.dependent.as_str())
                .chain(request.terms.iter().flat_map(Term::variables)),
        );
        let mask = self.mask(dataset, dataset_name)?;
        let gate = self.gate_for(copies);
        let keys = self.record_keys(&gate, dataset);
        let sample = PanelSample::new(dataset, &keys, &request, mask.as_ref())?;
        Ok((sample, request.dependent, copies))
    }

    /// `regress-panel y x… [, fe re be pooled level()]`.
    pub(in crate::engine) fn regress_panel(&mut self) -> Result<(), EngineError> {
        let estimator = self.estimator()?;
        let level = self.confidence_level()?;
        let (sample, dependent, copies) = self.panel_sample()?;
        let estimate = sample.estimate(estimator)?;
        let raw = sample.model(estimator, estimate, &dependent, level)?;
        let gate = self.gate_for(copies);
        self.release_model(&gate, raw)
    }

    /// `hausman y x…`: both models, as regress-panel releases them, then the test.
    pub(in crate::engine) fn hausman(&mut self) -> Result<(), EngineError> {
        let level = self.confidence_level().unwrap_or(95.0);
        let (sample, dependent, copies) = self.panel_sample()?;
        let fixed = sample.estimate(Estimator::Fixed)?;
        let random = sample.estimate(Estimator::Random)?;
        let test = hausman(&fixed, &random)?;
        let levels = sample.design.categorical_levels.clone();
        let contributors = sample.design.contributors;
        let population = sample.design.population.clone();
        let gate = self.gate_for(copies);
        // The test shows the two models' coefficients: it is released only if both models are.
        let cleared = self.clear_one(&population)?;
        let mut shown = true;
        for (estimator, estimate) in [(Estimator::Fixed, fixed), (Estimator::Random, random)] {
            let raw = sample.model(estimator, estimate, &dependent, level)?;
            let released = self.releaser.model(&gate, &cleared, self.origin(), raw);
            shown &= matches!(released.output().body, shared::output::OutputBody::Model(_));
            self.outputs.push(released);
        }
        if shown {
            let mut row_labels: Vec<String> =
                test.columns.iter().map(|&j| sample.design.names[j].clone()).collect();
            let mut values: Vec<Vec<Option<f64>>> = (0..test.columns.len())
                .map(|j| {
                    vec![
                        Some(test.fixed[j]),
                        Some(test.random[j]),
                        Some(test.fixed[j] - test.random[j]),
                        test.std_errors[j],
                    ]
                })
                .collect();
            for (label, value) in [
                ("χ²", test.chi2),
                ("degrees of freedom", test.df as f64),
                ("p-value", test.p_value),
            ] {
                row_labels.push(label.to_owned());
                values.push(vec![Some(value), None, None, None]);
            }
            let table = raw::StatisticsTable {
                title: "Hausman test: fixed against random effects".into(),
                row_variable: "term".into(),
                row_labels,
                column_labels: vec![
                    "fe".into(),
                    "re".into(),
                    "fe − re".into(),
                    "√diag(V_fe − V_re)".into(),
                ],
                values,
                contributors,
                levels,
                restate: raw::Restate::Nothing,
                notes: vec![
                    "A small p-value rejects random effects: the unit effects are correlated with the terms, and fixed effects are consistent where random effects are not.".into(),
                ],
                population,
            };
            let released = self.releaser.statistics(&gate, &cleared, self.origin(), table);
            self.outputs.push(released);
        }
        Ok(())
    }
}
