//! Script expressions as DataFusion expressions, checked for types first.
//!
//! The language's rules differ from SQL's in places, and the lowering makes them explicit:
//! `/` always divides as real numbers, a comparison yields 1/0 when stored, a number used as a
//! condition is true when it is not 0, and `.` is SQL's NULL. A comparison with a missing value
//! is missing, and `if` treats missing as false (*ours*; Stata would call missing +∞).

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::functions::expr_fn as f;
use datafusion::logical_expr::{Expr as Df, Operator, binary_expr, cast, lit};
use datafusion::prelude::SessionContext;
use shared::script::{BinaryOp, Expr, Span, UnaryOp};

use super::EngineError;
use super::dataset::{Dataset, Kind};

pub struct Lowered {
    pub expr: Df,
    pub kind: Kind,
}

/// Lowers `expr` against `dataset`, collecting the variables it reads into `used`.
pub fn lower(
    expr: &Expr,
    dataset: &Dataset,
    name: &str,
    used: &mut Vec<String>,
) -> Result<Lowered, EngineError> {
    Lowering { dataset, name, used }.lower(expr)
}

/// Evaluates an expression over every row; conditions come back as 1/0 numbers.
pub fn evaluate(
    ctx: &SessionContext,
    dataset: &Dataset,
    name: &str,
    expr: &Expr,
) -> Result<(ArrayRef, Kind), EngineError> {
    let mut used = Vec::new();
    let lowered = lower(expr, dataset, name, &mut used)?;
    let (expr, kind) = match lowered.kind {
        Kind::Bool => (cast(lowered.expr, DataType::Int64), Kind::Number),
        k => (lowered.expr, k),
    };
    let array = run(ctx, dataset, &used, expr)?;
    Ok((array, kind))
}

/// Evaluates a condition; missing counts as false.
pub fn condition(
    ctx: &SessionContext,
    dataset: &Dataset,
    name: &str,
    expr: &Expr,
) -> Result<BooleanArray, EngineError> {
    let mut used = Vec::new();
    let lowered = lower(expr, dataset, name, &mut used)?;
    let expr = truthy(lowered, expr.span())?;
    let array = run(ctx, dataset, &used, expr)?;
    let mask = array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| EngineError::internal("a condition did not evaluate to booleans"))?;
    // Missing is false. (`prep_null_mask_filter` panics on a mask without nulls.)
    Ok(match mask.nulls() {
        Some(_) => compute::prep_null_mask_filter(&mask),
        None => mask,
    })
}

fn run(
    ctx: &SessionContext,
    dataset: &Dataset,
    used: &[String],
    expr: Df,
) -> Result<ArrayRef, EngineError> {
    let batch = dataset.batch(Some(used))?;
    let schema = DFSchema::try_from(batch.schema().as_ref().clone())
        .map_err(|e| EngineError::internal(e.to_string()))?;
    let physical = ctx
        .create_physical_expr(expr, &schema)
        .map_err(|e| EngineError::new(format!("cannot evaluate the expression: {}", clean(&e))))?;
    let value = physical
        .evaluate(&batch)
        .map_err(|e| EngineError::new(format!("cannot evaluate the expression: {}", clean(&e))))?;
    value.into_array(batch.num_rows()).map_err(|e| EngineError::internal(e.to_string()))
}

fn clean(e: &datafusion::error::DataFusionError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

fn truthy(lowered: Lowered, span: Span) -> Result<Df, EngineError> {
    Ok(match lowered.kind {
        Kind::Bool => lowered.expr,
        Kind::Number => lowered.expr.not_eq(lit(0i64)),
        Kind::Text => {
            return Err(EngineError::at(
                span,
                "text cannot be a condition: compare it, such as sex == '1'",
            ));
        }
    })
}

struct Lowering<'a> {
    dataset: &'a Dataset,
    name: &'a str,
    used: &'a mut Vec<String>,
}

fn number(expr: Df) -> Lowered {
    Lowered { expr, kind: Kind::Number }
}

impl Lowering<'_> {
    fn lower(&mut self, expr: &Expr) -> Result<Lowered, EngineError> {
        Ok(match expr {
            Expr::Number { value, .. } => {
                if value.fract() == 0.0 && value.abs() < 9.0e15 {
                    number(lit(*value as i64))
                } else {
                    number(lit(*value))
                }
            }
            Expr::Text { value, .. } => Lowered { expr: lit(value.clone()), kind: Kind::Text },
            Expr::Date { days, .. } => number(lit(*days as i64)),
            Expr::Missing { .. } => number(lit(ScalarValue::Float64(None))),
            Expr::Variable { name, span } => {
                let variable =
                    self.dataset.require(name, self.name).map_err(|e| e.with_span(*span))?;
                if variable.info.pointer {
                    return Err(EngineError::at(
                        *span,
                        format!(
                            "{name} is an identifier and can only be a merge key (rule 2): use it in merge … on {name}"
                        ),
                    ));
                }
                if !self.used.contains(name) {
                    self.used.push(name.clone());
                }
                let kind = Kind::of(variable.values.data_type());
                Lowered { expr: Df::Column(Column::new_unqualified(name)), kind }
            }
            Expr::Binding { name, span } => {
                return Err(EngineError::at(
                    *span,
                    format!("${name} is not bound: add let {name} = … before this line"),
                ));
            }
            Expr::Error { span } => {
                return Err(EngineError::at(*span, "this expression is incomplete"));
            }
            Expr::Unary { op: UnaryOp::Neg, operand, span } => {
                let inner = self.lower(operand)?;
                self.expect_number(&inner, operand.span(), "-")?;
                let _ = span;
                number(Df::Negative(Box::new(as_number(inner))))
            }
            Expr::Unary { op: UnaryOp::Not, operand, .. } => {
                let inner = self.lower(operand)?;
                Lowered {
                    expr: Df::Not(Box::new(truthy(inner, operand.span())?)),
                    kind: Kind::Bool,
                }
            }
            Expr::Binary { op, lhs, rhs, span } => self.binary(*op, lhs, rhs, *span)?,
            Expr::Call { function, function_span, args, span } => {
                self.call(function, *function_span, args, *span)?
            }
        })
    }

    fn expect_number(&self, l: &Lowered, span: Span, operator: &str) -> Result<(), EngineError> {
        if l.kind == Kind::Text {
            return Err(EngineError::at(
                span,
                format!(
                    "{operator} needs numbers, and this is text: destring it first, or compare codes with =="
                ),
            ));
        }
        Ok(())
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Result<Lowered, EngineError> {
        let l = self.lower(lhs)?;
        let r = self.lower(rhs)?;
        use BinaryOp::*;
        match op {
            Or | And => {
                let (a, b) = (truthy(l, lhs.span())?, truthy(r, rhs.span())?);
                let expr = if op == Or { a.or(b) } else { a.and(b) };
                Ok(Lowered { expr, kind: Kind::Bool })
            }
            Eq | Ne | Lt | Le | Gt | Ge => {
                let text = |l: &Lowered| l.kind == Kind::Text;
                if text(&l) != text(&r) {
                    let (code_side, other) = if text(&l) { (lhs, rhs) } else { (rhs, lhs) };
                    let hint = match other {
                        Expr::Number { value, .. } => format!(": quote the code, as '{value}'"),
                        _ => ": compare codes with quoted codes, or destring the variable".into(),
                    };
                    return Err(EngineError::at(
                        span,
                        format!(
                            "cannot compare text ({}) with a number{hint}",
                            describe(code_side)
                        ),
                    ));
                }
                let operator = match op {
                    Eq => Operator::Eq,
                    Ne => Operator::NotEq,
                    Lt => Operator::Lt,
                    Le => Operator::LtEq,
                    Gt => Operator::Gt,
                    _ => Operator::GtEq,
                };
                let (a, b) = if text(&l) { (l.expr, r.expr) } else { (as_number(l), as_number(r)) };
                Ok(Lowered { expr: binary_expr(a, operator, b), kind: Kind::Bool })
            }
            Concat => {
                Ok(Lowered { expr: f::concat(vec![as_text(l), as_text(r)]), kind: Kind::Text })
            }
            Add if l.kind == Kind::Text && r.kind == Kind::Text => {
                Ok(Lowered { expr: f::concat(vec![l.expr, r.expr]), kind: Kind::Text })
            }
            Add | Sub | Mul | Div | Pow => {
                let symbol = match op {
                    Add => "+",
                    Sub => "-",
                    Mul => "*",
                    Div => "/",
                    _ => "^",
                };
                self.expect_number(&l, lhs.span(), symbol)?;
                self.expect_number(&r, rhs.span(), symbol)?;
                let (a, b) = (as_number(l), as_number(r));
                let expr = match op {
                    Add => a + b,
                    Sub => a - b,
                    Mul => a * b,
                    // Real division, never SQL's integer division.
                    Div => cast(a, DataType::Float64) / cast(b, DataType::Float64),
                    _ => f::power(cast(a, DataType::Float64), cast(b, DataType::Float64)),
                };
                Ok(number(expr))
            }
        }
    }

    /// `quantile(x, n)`: the group 0..n-1 of x among n quantile groups, as Stata's xtile.
    fn quantile_groups(
        &self,
        function: &str,
        args: &[Expr],
        mut lowered: Vec<Lowered>,
        span: Span,
    ) -> Result<Lowered, EngineError> {
        // quantile(x, n): the group 0..n-1 of x among n quantile groups, as Stata's
        // xtile: x ≤ P(1/n) is group 0, P(1/n) < x ≤ P(2/n) is group 1, … The cut points
        // are computed here from the column and never shown.
        let usage = "quantile takes a variable and a number of groups: quantile(wage, 10)";
        let (Some(Expr::Variable { name, .. }), Some(Expr::Number { value: n, span: n_span })) =
            (args.first(), args.get(1))
        else {
            return Err(EngineError::at(span, usage));
        };
        if args.len() != 2 {
            return Err(EngineError::at(span, usage));
        }
        if n.fract() != 0.0 || !(2.0..=100.0).contains(n) {
            return Err(EngineError::at(
                *n_span,
                "the number of groups is a whole number from 2 to 100",
            ));
        }
        self.expect_number(&lowered[0], args[0].span(), function)?;
        let variable = self.dataset.variable(name).ok_or_else(|| {
            EngineError::internal(format!("{name} was lowered but is not in the dataset"))
        })?;
        let values = super::dataset::numbers(variable).map_err(|e| e.with_span(args[0].span()))?;
        let sorted = crate::stats::sorted(values.into_iter().flatten().collect());
        let groups = *n as usize;
        let x = as_number(lowered.remove(0));
        let mut whens = Vec::new();
        for k in 1..groups {
            if let Some(cut) = crate::stats::quantile_sorted(&sorted, k as f64 / groups as f64) {
                whens.push((
                    Box::new(cast(x.clone(), DataType::Float64).lt_eq(lit(cut))),
                    Box::new(lit((k - 1) as i64)),
                ));
            }
        }
        Ok(number(Df::Case(datafusion::logical_expr::Case::new(
            None,
            whens,
            Some(Box::new(Df::Case(datafusion::logical_expr::Case::new(
                None,
                vec![(Box::new(x.is_null()), Box::new(lit(ScalarValue::Int64(None))))],
                Some(Box::new(lit((groups - 1) as i64))),
            )))),
        ))))
    }

    /// `label_to_code`, `inlabels` and `labelcontains`: codes found by their labels.
    fn label_function(
        &self,
        function: &str,
        args: &[Expr],
        mut lowered: Vec<Lowered>,
        span: Span,
    ) -> Result<Lowered, EngineError> {
        let usage = format!(
            "{function} takes a variable with labels, then quoted text: {function}(sex, 'Kvinne')"
        );
        let (Some(Expr::Variable { name, .. }), true) = (args.first(), args.len() >= 2) else {
            return Err(EngineError::at(span, usage));
        };
        let texts: Vec<&str> = args[1..]
            .iter()
            .map(|a| match a {
                Expr::Text { value, .. } => Ok(value.as_str()),
                other => Err(EngineError::at(other.span(), usage.clone())),
            })
            .collect::<Result<_, _>>()?;
        let variable = self.dataset.variable(name).ok_or_else(|| {
            EngineError::internal(format!("{name} was lowered but is not in the dataset"))
        })?;
        let labels = variable.info.labels.clone().ok_or_else(|| {
            EngineError::at(
                args[0].span(),
                format!("{name} has no labels: assign some with assign-labels, or compare codes"),
            )
        })?;
        let text = lowered[0].kind == Kind::Text;
        let code_literal = |code: &str| -> Df {
            if text {
                lit(code.to_owned())
            } else {
                code.parse::<i64>()
                    .map(lit)
                    .unwrap_or_else(|_| lit(code.parse::<f64>().unwrap_or(f64::NAN)))
            }
        };
        let codes: Vec<&String> = labels
            .iter()
            .filter(|(_, label)| match function {
                "labelcontains" => {
                    let label = label.to_lowercase();
                    texts.iter().any(|t| label.contains(&t.to_lowercase()))
                }
                _ => texts.contains(&label.as_str()),
            })
            .map(|(code, _)| code)
            .collect();
        let x = lowered.remove(0).expr;
        Ok(match function {
            "label_to_code" => {
                let [code] = codes.as_slice() else {
                    return Err(EngineError::at(
                        args[1].span(),
                        format!(
                            "{name} has no code labelled '{}': list-labels shows its labels",
                            texts[0]
                        ),
                    ));
                };
                Lowered {
                    expr: code_literal(code),
                    kind: if text { Kind::Text } else { Kind::Number },
                }
            }
            _ if codes.is_empty() => Lowered { expr: lit(false), kind: Kind::Bool },
            _ => Lowered {
                expr: x.in_list(codes.iter().map(|c| code_literal(c)).collect(), false),
                kind: Kind::Bool,
            },
        })
    }

    fn call(
        &mut self,
        function: &str,
        function_span: Span,
        args: &[Expr],
        span: Span,
    ) -> Result<Lowered, EngineError> {
        let arity = |n: usize| -> Result<(), EngineError> {
            if args.len() != n {
                return Err(EngineError::at(
                    span,
                    format!(
                        "{function} takes {n} argument{}, not {}",
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ),
                ));
            }
            Ok(())
        };
        let mut lowered = Vec::with_capacity(args.len());
        for a in args {
            lowered.push(self.lower(a)?);
        }
        let numbers = |lowered: &mut Vec<Lowered>, this: &Self| -> Result<Vec<Df>, EngineError> {
            for (l, a) in lowered.iter().zip(args) {
                this.expect_number(l, a.span(), function)?;
            }
            Ok(lowered.drain(..).map(as_number).collect())
        };
        let float = |e: Df| cast(e, DataType::Float64);
        let days_to_date = |e: Df| cast(cast(e, DataType::Int32), DataType::Date32);
        let date_part = |part: &str, e: Df| {
            number(cast(f::date_part(lit(part), days_to_date(e)), DataType::Int64))
        };
        Ok(match function {
            "abs" | "ceil" | "floor" | "int" | "sqrt" | "exp" | "ln" | "log10" | "sin" | "cos"
            | "tan" | "asin" | "acos" | "atan" => {
                arity(1)?;
                let x = numbers(&mut lowered, self)?.remove(0);
                number(match function {
                    "abs" => f::abs(x),
                    "ceil" => f::ceil(float(x)),
                    "floor" => f::floor(float(x)),
                    "int" => cast(f::trunc(vec![float(x)]), DataType::Int64),
                    "sqrt" => f::sqrt(float(x)),
                    "exp" => f::exp(float(x)),
                    "ln" => f::ln(float(x)),
                    "log10" => f::log10(float(x)),
                    "sin" => f::sin(float(x)),
                    "cos" => f::cos(float(x)),
                    "tan" => f::tan(float(x)),
                    "asin" => f::asin(float(x)),
                    "acos" => f::acos(float(x)),
                    _ => f::atan(float(x)),
                })
            }
            "logit" => {
                arity(1)?;
                let p = float(numbers(&mut lowered, self)?.remove(0));
                number(f::ln(p.clone() / (lit(1.0) - p)))
            }
            "round" => {
                let mut xs = numbers(&mut lowered, self)?;
                match xs.len() {
                    1 => number(f::round(vec![float(xs.remove(0))])),
                    2 => {
                        let unit = float(xs.remove(1));
                        let x = float(xs.remove(0));
                        number(f::round(vec![x / unit.clone()]) * unit)
                    }
                    _ => {
                        return Err(EngineError::at(
                            span,
                            "round takes a value and an optional unit: round(x) or round(x, 100)",
                        ));
                    }
                }
            }
            "pi" => {
                arity(0)?;
                number(f::pi())
            }
            "date" => {
                arity(3)?;
                let mut xs = numbers(&mut lowered, self)?;
                let (y, m, d) = (xs.remove(0), xs.remove(0), xs.remove(0));
                let date = f::make_date(
                    cast(y, DataType::Int32),
                    cast(m, DataType::Int32),
                    cast(d, DataType::Int32),
                );
                number(cast(cast(date, DataType::Int32), DataType::Int64))
            }
            "year" | "month" | "day" | "quarter" | "week" | "dow" | "doy" => {
                arity(1)?;
                let x = numbers(&mut lowered, self)?.remove(0);
                let part = function;
                date_part(part, x)
            }
            "halfyear" => {
                arity(1)?;
                let x = numbers(&mut lowered, self)?.remove(0);
                let month = cast(f::date_part(lit("month"), days_to_date(x)), DataType::Int64);
                number(Df::Case(datafusion::logical_expr::Case::new(
                    None,
                    vec![(Box::new(month.lt_eq(lit(6i64))), Box::new(lit(1i64)))],
                    Some(Box::new(lit(2i64))),
                )))
            }
            "sysmiss" => {
                arity(1)?;
                Lowered { expr: lowered.remove(0).expr.is_null(), kind: Kind::Bool }
            }
            "inrange" => {
                arity(3)?;
                let mut xs = numbers(&mut lowered, self)?;
                let (x, lo, hi) = (xs.remove(0), xs.remove(0), xs.remove(0));
                Lowered { expr: x.between(lo, hi), kind: Kind::Bool }
            }
            "inlist" => {
                if args.len() < 2 {
                    return Err(EngineError::at(
                        span,
                        "inlist takes a value and at least one candidate: inlist(x, 1, 2)",
                    ));
                }
                let kind = lowered[0].kind;
                if lowered.iter().any(|l| (l.kind == Kind::Text) != (kind == Kind::Text)) {
                    return Err(EngineError::at(
                        span,
                        "inlist compares like with like: quote every candidate when x holds codes",
                    ));
                }
                let mut all: Vec<Df> = lowered
                    .into_iter()
                    .map(|l| if kind == Kind::Text { l.expr } else { as_number(l) })
                    .collect();
                let x = all.remove(0);
                Lowered { expr: x.in_list(all, false), kind: Kind::Bool }
            }
            "lower" | "upper" | "trim" | "ltrim" | "rtrim" | "length" => {
                arity(1)?;
                let x = as_text(lowered.remove(0));
                match function {
                    "lower" => Lowered { expr: f::lower(x), kind: Kind::Text },
                    "upper" => Lowered { expr: f::upper(x), kind: Kind::Text },
                    "trim" => Lowered { expr: f::btrim(vec![x]), kind: Kind::Text },
                    "ltrim" => Lowered { expr: f::ltrim(vec![x]), kind: Kind::Text },
                    "rtrim" => Lowered { expr: f::rtrim(vec![x]), kind: Kind::Text },
                    _ => number(cast(f::character_length(x), DataType::Int64)),
                }
            }
            "string" => {
                arity(1)?;
                Lowered { expr: as_text(lowered.remove(0)), kind: Kind::Text }
            }
            "substr" => {
                arity(3)?;
                let s = as_text(lowered.remove(0));
                let pos = as_number(lowered.remove(0));
                let len = as_number(lowered.remove(0));
                Lowered { expr: f::substring(s, pos, len), kind: Kind::Text }
            }
            "startswith" | "endswith" => {
                arity(2)?;
                let s = as_text(lowered.remove(0));
                let t = as_text(lowered.remove(0));
                let expr = if function == "startswith" {
                    f::starts_with(s, t)
                } else {
                    f::ends_with(s, t)
                };
                Lowered { expr, kind: Kind::Bool }
            }
            "rowconcat" => {
                if args.is_empty() {
                    return Err(EngineError::at(
                        span,
                        "rowconcat needs at least one variable: rowconcat(a, b, …)",
                    ));
                }
                // Each value as text, a missing one as nothing, as Stata's egen concat joins.
                let parts = std::mem::take(&mut lowered).into_iter().map(as_text).collect();
                Lowered { expr: f::concat(parts), kind: Kind::Text }
            }
            "rowmax" | "rowmin" | "rowtotal" | "rowmean" | "rowmissing" | "rowvalid" => {
                if args.is_empty() {
                    return Err(EngineError::at(
                        span,
                        format!("{function} needs at least one variable"),
                    ));
                }
                let raw: Vec<Df> = lowered.iter().map(|l| l.expr.clone()).collect();
                let xs = numbers(&mut lowered, self)?;
                // Sums from a zero: 0 + a + b … is a + b …, and no argument list can panic.
                let valid = || {
                    raw.iter()
                        .map(|e| cast(e.clone().is_not_null(), DataType::Int64))
                        .fold(lit(0i64), |a, b| a + b)
                };
                let total = || {
                    xs.iter()
                        .map(|e| f::coalesce(vec![float(e.clone()), lit(0.0)]))
                        .fold(lit(0.0), |a, b| a + b)
                };
                number(match function {
                    "rowmax" => f::greatest(xs),
                    "rowmin" => f::least(xs),
                    "rowtotal" => total(),
                    "rowmean" => total() / f::nullif(float(valid()), lit(0.0)),
                    "rowvalid" => valid(),
                    _ => lit(args.len() as i64) - valid(),
                })
            }
            "quantile" => return self.quantile_groups(function, args, lowered, span),
            "label_to_code" | "inlabels" | "labelcontains" => {
                return self.label_function(function, args, lowered, span);
            }
            "normal" | "normalden" | "t" | "ttail" | "invt" | "invttail" | "F" | "Ftail"
            | "invF" | "chi2" | "chi2tail" | "invchi2" | "binomial" | "binomialp"
            | "binomialtail" | "lnfactorial" | "comb" | "rowmedian" | "rowstd" => {
                let arity_of = match function {
                    "normal" | "lnfactorial" => Some(1),
                    "normalden" if args.len() == 3 => Some(3),
                    "normalden" => Some(1),
                    "t" | "ttail" | "invt" | "invttail" | "chi2" | "chi2tail" | "invchi2"
                    | "comb" => Some(2),
                    "F" | "Ftail" | "invF" | "binomial" | "binomialp" | "binomialtail" => Some(3),
                    _ => None,
                };
                match arity_of {
                    Some(n) => arity(n)?,
                    None if args.is_empty() => {
                        return Err(EngineError::at(
                            span,
                            format!("{function} needs at least one variable"),
                        ));
                    }
                    None => {}
                }
                let xs = numbers(&mut lowered, self)?;
                number(
                    numeric_function(function, xs.len()).call(xs.into_iter().map(float).collect()),
                )
            }
            "isoformatdate" => {
                arity(1)?;
                let x = numbers(&mut lowered, self)?.remove(0);
                Lowered { expr: f::to_char(days_to_date(x), lit("%Y-%m-%d")), kind: Kind::Text }
            }
            _ => {
                let known = shared::script::catalog::functions();
                let hint = match shared::script::catalog::nearest(function, known) {
                    Some(near) if near != function => format!(": did you mean {near}?"),
                    Some(_) => ": it is part of the language but not supported yet".into(),
                    None => ": help-function lists the functions".into(),
                };
                return Err(EngineError::at(
                    function_span,
                    format!("unknown function {function}{hint}"),
                ));
            }
        })
    }
}

/// A row-wise numeric function as a DataFusion UDF: missing in, or an undefined result (a
/// negative degree of freedom, a probability outside [0, 1]), gives missing out.
fn numeric_function(name: &str, arity: usize) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use statrs::distribution::{
        Binomial, ChiSquared, Continuous, ContinuousCDF, Discrete, DiscreteCDF, FisherSnedecor,
        Normal, StudentsT,
    };
    let owned = name.to_owned();
    let compute = move |x: &[f64]| -> Option<f64> {
        let standard = Normal::standard();
        let whole = |v: f64| (v >= 0.0 && v.fract() == 0.0).then_some(v as u64);
        let probability = |p: f64| (0.0..=1.0).contains(&p).then_some(p);
        let value = match owned.as_str() {
            "normal" => standard.cdf(x[0]),
            "normalden" if x.len() == 3 => standard.pdf((x[0] - x[1]) / x[2]) / x[2],
            "normalden" => standard.pdf(x[0]),
            "t" => StudentsT::new(0.0, 1.0, x[0]).ok()?.cdf(x[1]),
            "ttail" => StudentsT::new(0.0, 1.0, x[0]).ok()?.sf(x[1]),
            "invt" => StudentsT::new(0.0, 1.0, x[0]).ok()?.inverse_cdf(probability(x[1])?),
            "invttail" => {
                StudentsT::new(0.0, 1.0, x[0]).ok()?.inverse_cdf(1.0 - probability(x[1])?)
            }
            "F" => FisherSnedecor::new(x[0], x[1]).ok()?.cdf(x[2]),
            "Ftail" => FisherSnedecor::new(x[0], x[1]).ok()?.sf(x[2]),
            "invF" => FisherSnedecor::new(x[0], x[1]).ok()?.inverse_cdf(probability(x[2])?),
            "chi2" => ChiSquared::new(x[0]).ok()?.cdf(x[1]),
            "chi2tail" => ChiSquared::new(x[0]).ok()?.sf(x[1]),
            "invchi2" => ChiSquared::new(x[0]).ok()?.inverse_cdf(probability(x[1])?),
            "binomial" | "binomialp" | "binomialtail" => {
                let (n, k, p) = (whole(x[0])?, whole(x[1])?, probability(x[2])?);
                let b = Binomial::new(p, n).ok()?;
                match owned.as_str() {
                    "binomial" => b.cdf(k),
                    "binomialp" => b.pmf(k),
                    _ if k == 0 => 1.0,
                    _ => b.sf(k - 1),
                }
            }
            "lnfactorial" => statrs::function::factorial::ln_factorial(whole(x[0])?),
            "comb" => {
                let (n, k) = (whole(x[0])?, whole(x[1])?);
                if k > n { 0.0 } else { statrs::function::factorial::binomial(n, k) }
            }
            "rowmedian" | "rowstd" => {
                let mut present: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
                if present.is_empty() {
                    return None;
                }
                if owned == "rowmedian" {
                    present.sort_by(f64::total_cmp);
                    crate::stats::quantile_sorted(&present, 0.5)?
                } else {
                    let n = present.len() as f64;
                    if n < 2.0 {
                        return None;
                    }
                    let mean = present.iter().sum::<f64>() / n;
                    (present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                }
            }
            _ => return None,
        };
        value.is_finite().then_some(value)
    };
    // Row functions look past missing values; the others give missing for a missing argument.
    let skips_missing = matches!(name, "rowmedian" | "rowstd");
    let implementation = std::sync::Arc::new(
        move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let columns: Vec<&datafusion::arrow::array::Float64Array> = arrays
                .iter()
                .map(|a| {
                    a.as_any().downcast_ref::<datafusion::arrow::array::Float64Array>().ok_or_else(
                        || datafusion::error::DataFusionError::Internal("expected Float64".into()),
                    )
                })
                .collect::<datafusion::error::Result<_>>()?;
            let rows = columns.first().map_or(1, |c| c.len());
            let mut row = vec![0.0; columns.len()];
            let out: datafusion::arrow::array::Float64Array = (0..rows)
                .map(|i| {
                    for (j, c) in columns.iter().enumerate() {
                        if c.is_null(i) && !skips_missing {
                            return None;
                        }
                        row[j] = if c.is_null(i) { f64::NAN } else { c.value(i) };
                    }
                    compute(&row)
                })
                .collect();
            Ok(ColumnarValue::Array(std::sync::Arc::new(out)))
        },
    );
    create_udf(
        name,
        vec![DataType::Float64; arity],
        DataType::Float64,
        Volatility::Immutable,
        implementation,
    )
}

fn as_number(l: Lowered) -> Df {
    match l.kind {
        Kind::Bool => cast(l.expr, DataType::Int64),
        _ => l.expr,
    }
}

fn as_text(l: Lowered) -> Df {
    match l.kind {
        Kind::Text => l.expr,
        _ => cast(as_number(l), DataType::Utf8),
    }
}

fn describe(expr: &Expr) -> String {
    match expr {
        Expr::Variable { name, .. } => format!("{name} holds codes"),
        _ => "a text value".into(),
    }
}

/// Wraps an evaluated array as the type stored in a dataset: Int64, Float64 or Utf8.
pub fn storable(array: ArrayRef) -> Result<ArrayRef, EngineError> {
    let target = match array.data_type() {
        DataType::Int64 | DataType::Float64 | DataType::Utf8 => return Ok(array),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => DataType::Int64,
        DataType::Boolean => DataType::Int64,
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Null => DataType::Float64,
        _ => DataType::Float64,
    };
    compute::cast(&array, &target).map_err(|e| EngineError::internal(e.to_string()))
}
