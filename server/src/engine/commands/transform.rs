//! Commands that change a dataset: generate, replace, rename, keep, drop. Changes that could
//! single out units ask the gate first (rules 3 and 4); a refused command changes nothing.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use shared::script::{Expr, TokenKind};

use super::dataset::{Dataset, Kind, VarInfo, Variable, value_classes};
use super::expr::{self, storable};
use super::{EngineError, Invariant, Step, partition};
use crate::disclosure::raw::Contributors;

impl Step<'_> {
    pub(in crate::engine) fn generate_or_replace(
        &mut self,
        generate: bool,
    ) -> Result<(), EngineError> {
        let verb = if generate { "generate" } else { "replace" };
        let t = &self.command().args;
        let src = self.source();
        let usage = format!("write {verb} <name> = <expression> [if <condition>]");
        if t.len() < 3 || t[0].kind != TokenKind::Ident || t[1].kind != TokenKind::Eq {
            return Err(EngineError::at(self.command().span, usage));
        }
        let name = t[0].span.text(src).to_owned();
        let name_span = t[0].span;
        let mut parser = shared::script::ExprParser::new(src, &t[2..]);
        let value_expr: Expr = parser.parse();
        if let Some(d) = parser.diagnostics.first() {
            return Err(EngineError::at(d.span, d.message.clone()));
        }
        if parser.position() < t.len() - 2 {
            let extra = t[2 + parser.position()].span;
            return Err(EngineError::at(
                extra,
                "this does not belong to the expression: conditions go after if",
            ));
        }
        let (dataset_name, dataset) = self.populated()?;
        let dataset_name = dataset_name.to_owned();
        let existing = dataset.variable(&name).cloned();
        match (&existing, generate) {
            (Some(_), true) => {
                return Err(EngineError::at(
                    name_span,
                    format!("{name} already exists: use replace {name} = …, or another name"),
                ));
            }
            (None, false) => {
                dataset.require(&name, &dataset_name).map_err(|e| e.with_span(name_span))?;
            }
            _ => {}
        }
        if generate && !valid_name(&name) {
            return Err(EngineError::at(
                name_span,
                "variable names start with a letter and use letters, digits and _",
            ));
        }
        if existing.as_ref().is_some_and(|v| v.info.pointer) {
            return Err(EngineError::at(
                name_span,
                format!("{name} is an identifier and can only be a merge key (rule 2)"),
            ));
        }
        let ctx = &self.engine.ctx;
        let gate = self.gate();
        partition::check_splits(gate, ctx, dataset, &dataset_name, &value_expr)?;
        let (values, kind) = expr::evaluate(ctx, dataset, &dataset_name, &value_expr)?;
        let values = storable(values)?;
        // A value missing where all it is computed from is present (`1 / (x - 123)`) is a
        // flag too: the units it makes missing must be 0 or min_change or more.
        let made_missing = missing_without_missing_inputs(dataset, &value_expr, &values);
        gate.check_split(made_missing, dataset.len() as u64 - made_missing)?;
        let mask = match &self.command().condition {
            Some(c) => {
                partition::check_splits(gate, ctx, dataset, &dataset_name, c)?;
                Some(expr::condition(ctx, dataset, &dataset_name, c)?)
            }
            None => None,
        };
        let arrow = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
        let n = dataset.len() as u64;
        // A value computed from copied values is as copied as they are.
        let copies = dataset.copies(value_expr.variables());

        let (result, info) = match existing {
            None => {
                let result = match &mask {
                    Some(m) => {
                        compute::nullif(&values, &compute::not(m).map_err(arrow)?).map_err(arrow)?
                    }
                    None => values,
                };
                if let Some(m) = &mask {
                    let selected = m.true_count() as u64;
                    gate.check_change(selected, n - selected)?;
                }
                if let Some(classes) = value_classes(&result) {
                    gate.check_value_classes(classes)?;
                }
                (
                    result,
                    VarInfo { source: format!("generate {name}"), copies, ..VarInfo::default() },
                )
            }
            Some(old) => {
                let old_kind = Kind::of(old.values.data_type());
                if (old_kind == Kind::Text) != (kind == Kind::Text) {
                    return Err(EngineError::at(
                        name_span,
                        format!(
                            "{name} holds {} and the new values are {}: convert one of them (destring, string())",
                            old_kind.describe(),
                            kind.describe()
                        ),
                    ));
                }
                let (old_values, new_values) = common_type(&old.values, &values)?;
                let result = match &mask {
                    Some(m) => {
                        compute::kernels::zip::zip(m, &new_values, &old_values).map_err(arrow)?
                    }
                    None => new_values,
                };
                let changed = count_changed(&old_values, &result)?;
                gate.check_change(changed, n - changed)?;
                (result, VarInfo { copies: copies.max(old.info.copies()), ..old.info.clone() })
            }
        };
        let dataset = self.current_mut()?;
        dataset.set(Variable { name: name.clone(), values: result, info });
        self.notice(if generate {
            format!("{name} generated")
        } else {
            format!("{name} replaced")
        });
        Ok(())
    }

    pub(in crate::engine) fn rename(&mut self) -> Result<(), EngineError> {
        let names = self.names_in_args()?;
        let [(old, old_span), (new, new_span)] = names.as_slice() else {
            return Err(EngineError::at(self.command().span, "write rename <old> <new>"));
        };
        let (dataset_name, dataset) = self.populated()?;
        let dataset_name = dataset_name.to_owned();
        dataset.require(old, &dataset_name).map_err(|e| e.with_span(*old_span))?;
        if dataset.variable(new).is_some() {
            return Err(EngineError::at(
                *new_span,
                format!("{new} already exists: choose another name"),
            ));
        }
        if !valid_name(new) {
            return Err(EngineError::at(
                *new_span,
                "variable names start with a letter and use letters, digits and _",
            ));
        }
        let dataset = self.current_mut()?;
        let i = dataset.position(old).invariant("the variable was checked above")?;
        dataset.variables[i].name = new.clone();
        self.notice(format!("{old} renamed to {new}"));
        Ok(())
    }

    pub(in crate::engine) fn keep_or_drop(&mut self, keep: bool) -> Result<(), EngineError> {
        let verb = if keep { "keep" } else { "drop" };
        let (dataset_name, dataset) = self.populated()?;
        let dataset_name = dataset_name.to_owned();
        if let Some(condition) = &self.command().condition {
            if !self.command().args.is_empty() {
                return Err(EngineError::at(
                    self.command().span,
                    format!("{verb} takes variables or if <condition>, not both"),
                ));
            }
            let ctx = &self.engine.ctx;
            partition::check_splits(self.gate(), ctx, dataset, &dataset_name, condition)?;
            let mask = expr::condition(ctx, dataset, &dataset_name, condition)?;
            let mask = if keep {
                mask
            } else {
                compute::not(&mask).map_err(|e| EngineError::internal(e.to_string()))?
            };
            let remaining = mask.true_count() as u64;
            self.gate().check_population(remaining)?;
            self.current_mut()?.filter(&mask)?;
            self.notice(format!("{verb} if: done"));
            return Ok(());
        }
        let names = self.names_in_args()?;
        if names.is_empty() {
            return Err(EngineError::at(
                self.command().span,
                format!("write {verb} <variable>… or {verb} if <condition>"),
            ));
        }
        for (n, span) in &names {
            dataset.require(n, &dataset_name).map_err(|e| e.with_span(*span))?;
        }
        let listed: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let dataset = self.current_mut()?;
        dataset.variables.retain(|v| listed.contains(&v.name.as_str()) == keep);
        self.notice(format!("{verb}: {}", listed.join(" ")));
        Ok(())
    }
}

impl Step<'_> {
    /// `sample n seed` or `sample fraction seed`: a reproducible random subset of the units.
    /// Each unit's draw is a hash of the seed and its id, so the same seed gives the same
    /// sample whatever the order of rows; the floor of rule 3 applies as for keep.
    pub(in crate::engine) fn sample(&mut self) -> Result<(), EngineError> {
        let usage =
            "write sample <n> <seed> (n above 1000) or sample <fraction> <seed> (between 0 and 1)";
        let t = &self.command().args;
        let source = self.source();
        let [size, seed] = t.as_slice() else {
            return Err(EngineError::at(self.command().span, usage));
        };
        if size.kind != TokenKind::Number || seed.kind != TokenKind::Number {
            return Err(EngineError::at(self.command().span, usage));
        }
        let size_value: f64 =
            size.span.text(source).parse().map_err(|_| EngineError::at(size.span, usage))?;
        let seed_value: u64 =
            seed.span.text(source).parse().map_err(|_| {
                EngineError::at(seed.span, "the seed is a whole number, such as 2021")
            })?;
        let (dataset_name, dataset) = self.populated()?;
        if size_value >= 1.0 {
            // A fraction draws units (all of a unit's dates go together); a count of rows
            // would not be a count of units.
            dataset
                .require_cross_section(dataset_name, "sample <n>")
                .map_err(|e| e.with_span(size.span))?;
        }
        let draw = |id: i64| {
            use std::hash::Hasher;
            let mut h = siphasher::sip::SipHasher13::new_with_keys(seed_value, 0x005a_4d50_4c45);
            h.write_i64(id);
            h.finish()
        };
        let draws: Vec<u64> = dataset.ids.values().iter().map(|&id| draw(id)).collect();
        let mask: BooleanArray = if size_value > 0.0 && size_value < 1.0 {
            let cut = (size_value * u64::MAX as f64) as u64;
            draws.iter().map(|&d| Some(d < cut)).collect()
        } else if size_value.fract() == 0.0 && size_value > 1000.0 {
            // n is drawn as a share of the dataset's perturbed size (rule 13): cut at the exact
            // size, `sample <n>` would tell whether the dataset holds n units (an error, or all
            // of them kept), and so its exact count.
            let n = size_value as usize;
            let gate = self.gate();
            let mut units = Contributors::default();
            for key in self.record_keys(gate, dataset) {
                units.add(key);
            }
            let shown = gate.perturbed_count(units) as usize;
            if n >= shown {
                return Err(EngineError::at(
                    size.span,
                    "the sample is about as large as the dataset: choose a smaller n or a fraction",
                ));
            }
            let cut = (n as f64 / shown as f64 * u64::MAX as f64) as u64;
            draws.iter().map(|&d| Some(d < cut)).collect()
        } else {
            return Err(EngineError::at(size.span, usage));
        };
        self.gate().check_population(mask.true_count() as u64)?;
        self.current_mut()?.filter(&mask)?;
        self.notice(format!("sample drawn with seed {seed_value}"));
        Ok(())
    }
}

pub(in crate::engine) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Rows where `values` is missing although every variable `expr` reads is present there.
fn missing_without_missing_inputs(dataset: &Dataset, expr: &Expr, values: &ArrayRef) -> u64 {
    let inputs: Vec<&ArrayRef> = expr
        .variables()
        .into_iter()
        .filter_map(|v| dataset.variable(v))
        .map(|v| &v.values)
        .collect();
    (0..values.len())
        .filter(|&i| values.is_null(i) && inputs.iter().all(|input| input.is_valid(i)))
        .count() as u64
}

/// Both arrays as one type: Float64 when either is, else as they are.
fn common_type(a: &ArrayRef, b: &ArrayRef) -> Result<(ArrayRef, ArrayRef), EngineError> {
    if a.data_type() == b.data_type() {
        return Ok((a.clone(), b.clone()));
    }
    let cast = |x: &ArrayRef| {
        compute::cast(x, &DataType::Float64).map_err(|e| EngineError::internal(e.to_string()))
    };
    Ok((cast(a)?, cast(b)?))
}

/// Units whose value differs, missing counting as a value of its own.
fn count_changed(old: &ArrayRef, new: &ArrayRef) -> Result<u64, EngineError> {
    let differs: BooleanArray = compute::kernels::cmp::distinct(old, new)
        .map_err(|e| EngineError::internal(e.to_string()))?;
    Ok(differs.true_count() as u64)
}
