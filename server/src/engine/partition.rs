//! Rule 4 inside expressions: no part of an expression may single out a few units.
//!
//! A one-unit flag does not need an `if`: `wage * (id_key == 123)` hides a comparison inside
//! arithmetic, and with many distinct results the new variable's value classes say nothing.
//! So every part of an expression that splits the units — a comparison, a logical operator,
//! a function with a true/false result, and the rounding and min/max functions that can turn
//! a threshold into a class — is evaluated over the dataset, and the split must leave 0 or at
//! least `min_change` units on each side, as an `if` of its own would. The whole expression
//! is a part too: a condition is checked like any other.

use std::collections::HashMap;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;
use shared::script::{BinaryOp, Expr};

use super::EngineError;
use super::dataset::{Dataset, Kind};
use super::expr;
use crate::disclosure::Gate;

/// More splitting parts than this in one expression are refused: each costs a pass over the
/// dataset, and no real script writes hundreds of comparisons in one line.
pub(super) const MAX_SPLITTING_PARTS: usize = 200;

/// Functions whose value turns a threshold into a class: `floor(wealth / w)` is 0 below `w`
/// and 1 above it, an indicator without a comparison.
const CLASSING_FUNCTIONS: &[&str] = &["ceil", "floor", "int", "round", "rowmax", "rowmin"];

/// Refuses `expr` when one of its parts splits the units of `dataset` into a side of
/// 1..min_change units.
pub(super) fn check_splits(
    gate: &Gate,
    ctx: &SessionContext,
    dataset: &Dataset,
    name: &str,
    whole: &Expr,
) -> Result<(), EngineError> {
    let mut parts = Vec::new();
    splitting_parts(whole, &mut parts);
    if parts.len() > MAX_SPLITTING_PARTS {
        return Err(EngineError::at(
            whole.span(),
            format!(
                "the expression has more than {MAX_SPLITTING_PARTS} comparisons and roundings: split it over several generate lines"
            ),
        ));
    }
    let n = dataset.len() as u64;
    let mut input_shares: HashMap<String, f64> = HashMap::new();
    for part in parts {
        let mut used = Vec::new();
        let kind = expr::lower(part, dataset, name, &mut used)?.kind;
        if kind == Kind::Bool {
            let held = expr::condition(ctx, dataset, name, part)?.true_count() as u64;
            gate.check_split(held, n - held)
                .map_err(|r| EngineError::from(r).with_span(part.span()))?;
        } else if kind == Kind::Number && nonlinear(part) {
            check_concentration(gate, ctx, dataset, name, part, &mut input_shares)?;
        }
        if kind != Kind::Bool
            && matches!(part, Expr::Call { function, .. } if CLASSING_FUNCTIONS.contains(&function.as_str()))
        {
            let (values, _) = expr::evaluate(ctx, dataset, name, part)?;
            if let Some(classes) = super::dataset::value_classes(&values) {
                for size in classes {
                    gate.check_split(size, n - size)
                        .map_err(|r| EngineError::from(r).with_span(part.span()))?;
                }
            }
        }
    }
    Ok(())
}

/// A part that can bend its inputs: a function, a power, or a product or quotient of two
/// parts that both read variables. Sums and multiples of variables are not checked: they
/// only combine variation that is there (a spell's stop − start may well be skewed), and a
/// spike needs a bend, such as exp(-1000·(wealth − k)²) or 1 / (wealth − k).
fn nonlinear(part: &Expr) -> bool {
    let reads = |e: &Expr| !e.variables().is_empty();
    match part {
        Expr::Call { .. } => true,
        Expr::Binary { op: BinaryOp::Pow, lhs, rhs, .. } => reads(lhs) || reads(rhs),
        Expr::Binary { op: BinaryOp::Mul | BinaryOp::Div, lhs, rhs, .. } => {
            reads(lhs) && reads(rhs)
        }
        _ => false,
    }
}

/// Refuses a numeric part whose variation lies for the most part in a few units, when that
/// of the variables it reads does not (rule 4; `Gate::check_concentration`).
fn check_concentration(
    gate: &Gate,
    ctx: &SessionContext,
    dataset: &Dataset,
    name: &str,
    part: &Expr,
    input_shares: &mut HashMap<String, f64>,
) -> Result<(), EngineError> {
    let few = gate.concentration_units();
    let (values, _) = expr::evaluate(ctx, dataset, name, part)?;
    let share = concentrated_share(&values, few);
    if share < crate::disclosure::CONCENTRATED_SHARE {
        return Ok(());
    }
    let mut inputs = 0.0_f64;
    for variable in part.variables() {
        let known = input_shares.get(variable).copied();
        let input = match known {
            Some(s) => s,
            None => {
                let s = dataset
                    .variable(variable)
                    .filter(|v| Kind::of(v.values.data_type()) == Kind::Number)
                    .map_or(0.0, |v| concentrated_share(&v.values, few));
                input_shares.insert(variable.to_owned(), s);
                s
            }
        };
        inputs = inputs.max(input);
    }
    gate.check_concentration(share, inputs).map_err(|r| EngineError::from(r).with_span(part.span()))
}

/// The share of a column's variation (squared distance from its median, over the rows with a
/// finite value) held by its `few` farthest rows; 0 for a constant column.
fn concentrated_share(values: &ArrayRef, few: usize) -> f64 {
    let Ok(floats) = compute::cast(values, &DataType::Float64) else { return 0.0 };
    let floats = floats.as_primitive::<Float64Type>();
    let mut xs: Vec<f64> = floats.iter().flatten().filter(|x| x.is_finite()).collect();
    // With min_change at 1 or 0 there is no few to set apart (and nothing to select).
    if few == 0 || xs.len() <= 4 * few {
        return 0.0;
    }
    let middle = xs.len() / 2;
    let (_, median, _) = xs.select_nth_unstable_by(middle, f64::total_cmp);
    let median = *median;
    let mut deviations: Vec<f64> = xs.iter().map(|x| (x - median) * (x - median)).collect();
    let total: f64 = deviations.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return 0.0;
    }
    let cut = deviations.len() - few;
    deviations.select_nth_unstable_by(cut, f64::total_cmp);
    deviations[cut..].iter().sum::<f64>() / total
}

/// The parts that can split units, outermost first. The parser bounds the depth of every
/// expression (shared::script::MAX_EXPR_DEPTH), so this recursion is bounded too.
fn splitting_parts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary { lhs, rhs, .. } => {
            out.push(e);
            splitting_parts(lhs, out);
            splitting_parts(rhs, out);
        }
        Expr::Unary { operand, .. } => {
            out.push(e);
            splitting_parts(operand, out);
        }
        Expr::Call { args, .. } => {
            out.push(e);
            args.iter().for_each(|a| splitting_parts(a, out));
        }
        _ => {}
    }
}
