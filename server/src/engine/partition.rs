//! Rule 4 inside expressions: no part of an expression may single out a few units.
//!
//! A one-unit flag does not need an `if`: `wage * (id_key == 123)` hides a comparison inside
//! arithmetic, and with many distinct results the new variable's value classes say nothing.
//! So every part of an expression that splits the units — a comparison, a logical operator,
//! a function with a true/false result, and the rounding and min/max functions that can turn
//! a threshold into a class — is evaluated over the dataset, and the split must leave 0 or at
//! least `min_change` units on each side, as an `if` of its own would. The whole expression
//! is a part too: a condition is checked like any other.

use datafusion::prelude::SessionContext;
use shared::script::Expr;

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
    for part in parts {
        let mut used = Vec::new();
        let kind = expr::lower(part, dataset, name, &mut used)?.kind;
        if kind == Kind::Bool {
            let held = expr::condition(ctx, dataset, name, part)?.true_count() as u64;
            gate.check_split(held, n - held)
                .map_err(|r| EngineError::from(r).with_span(part.span()))?;
        } else if matches!(part, Expr::Call { function, .. } if CLASSING_FUNCTIONS.contains(&function.as_str()))
        {
            let (values, _) = expr::evaluate(ctx, dataset, name, part)?;
            if let Some(classes) = super::transform::value_classes(&values) {
                for size in classes {
                    gate.check_split(size, n - size)
                        .map_err(|r| EngineError::from(r).with_span(part.span()))?;
                }
            }
        }
    }
    Ok(())
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
