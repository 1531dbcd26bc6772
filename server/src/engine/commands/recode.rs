//! `recode`: values mapped by rules applied in order, each value recoded at most once.
//!
//! Rule 4 holds per rule and for the whole command: no rule may recode between 1 and
//! `min_change − 1` units, and the command may not change, or leave unchanged, that few. So
//! `recode wealth (123456 = 1) (* = 0)` cannot build a one-person flag.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use shared::script::{Span, Token, TokenKind};

use super::dataset::{Kind, VarInfo, Variable};
use super::transform::valid_name;
use super::{EngineError, Invariant, Step};

/// A value as recode sees it.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Number(f64),
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Pattern {
    Is(Value),
    /// `lo/hi`, inclusive; `min` and `max` leave a side open.
    Range(Option<f64>, Option<f64>),
    Missing,
    NonMissing,
    /// `*`: every value not yet recoded.
    Any,
}

#[derive(Clone, Debug)]
struct Rule {
    patterns: Vec<Pattern>,
    /// `None` makes the value missing (`= .`).
    to: Option<Value>,
    label: Option<String>,
    span: Span,
}

impl Pattern {
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Pattern::Any, _) => true,
            (Pattern::Missing, v) => v.is_none(),
            (Pattern::NonMissing, v) => v.is_some(),
            (Pattern::Is(p), Some(v)) => p == v,
            (Pattern::Range(lo, hi), Some(Value::Number(x))) => {
                lo.is_none_or(|lo| *x >= lo) && hi.is_none_or(|hi| *x <= hi)
            }
            _ => false,
        }
    }
}

fn parse_rules(source: &str, tokens: &[Token]) -> Result<Vec<Rule>, EngineError> {
    let usage = "a rule is (<values> = <new value> ['label']), such as (1 2 = 0), (18/66 = 1), (min/17 = 0), (missing = 9) or ('3' '5' = '0')";
    let mut rules = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let open = &tokens[i];
        if open.kind != TokenKind::LParen {
            return Err(EngineError::at(open.span, usage));
        }
        let close = tokens[i..]
            .iter()
            .position(|t| t.kind == TokenKind::RParen)
            .map(|p| i + p)
            .ok_or_else(|| EngineError::at(open.span, "this rule has no closing )"))?;
        let inner = &tokens[i + 1..close];
        let span = Span { start: open.span.start, end: tokens[close].span.end };
        let eq = inner
            .iter()
            .position(|t| t.kind == TokenKind::Eq)
            .ok_or_else(|| EngineError::at(span, usage))?;
        let patterns = parse_patterns(source, &inner[..eq], span)?;
        let right = &inner[eq + 1..];
        let (to, rest) = match right.first().map(|t| t.kind) {
            Some(TokenKind::Dot) => (None, &right[1..]),
            Some(TokenKind::Minus) if right.get(1).is_some_and(|t| t.kind == TokenKind::Number) => {
                (Some(Value::Number(-number(source, &right[1])?)), &right[2..])
            }
            Some(TokenKind::Number) => {
                (Some(Value::Number(number(source, &right[0])?)), &right[1..])
            }
            Some(TokenKind::String) => (Some(Value::Text(text(source, &right[0]))), &right[1..]),
            _ => return Err(EngineError::at(span, usage)),
        };
        let label = match rest {
            [] => None,
            [t] if t.kind == TokenKind::String => Some(text(source, t)),
            _ => return Err(EngineError::at(span, usage)),
        };
        if patterns.is_empty() {
            return Err(EngineError::at(span, usage));
        }
        rules.push(Rule { patterns, to, label, span });
        i = close + 1;
    }
    Ok(rules)
}

fn parse_patterns(source: &str, tokens: &[Token], span: Span) -> Result<Vec<Pattern>, EngineError> {
    let mut patterns = Vec::new();
    let mut i = 0;
    // A bound: a number (maybe negative), or min/max.
    let bound = |i: &mut usize| -> Result<Option<f64>, EngineError> {
        let t = tokens.get(*i).ok_or_else(|| EngineError::at(span, "a range needs two ends"))?;
        match t.kind {
            TokenKind::Ident if matches!(t.span.text(source), "min" | "max") => {
                *i += 1;
                Ok(None)
            }
            TokenKind::Minus => {
                let n = tokens
                    .get(*i + 1)
                    .filter(|n| n.kind == TokenKind::Number)
                    .ok_or_else(|| EngineError::at(t.span, "expected a number after -"))?;
                *i += 2;
                Ok(Some(-number(source, n)?))
            }
            TokenKind::Number => {
                *i += 1;
                Ok(Some(number(source, t)?))
            }
            _ => Err(EngineError::at(t.span, "a range's ends are numbers, min or max")),
        }
    };
    while i < tokens.len() {
        let t = &tokens[i];
        match (t.kind, t.span.text(source)) {
            (TokenKind::Star, _) => {
                patterns.push(Pattern::Any);
                i += 1;
            }
            (TokenKind::Dot, _) | (TokenKind::Ident, "missing") => {
                patterns.push(Pattern::Missing);
                i += 1;
            }
            (TokenKind::Ident, "nonmissing") => {
                patterns.push(Pattern::NonMissing);
                i += 1;
            }
            (TokenKind::String, _) => {
                patterns.push(Pattern::Is(Value::Text(text(source, t))));
                i += 1;
            }
            (TokenKind::Number | TokenKind::Minus, _) | (TokenKind::Ident, "min" | "max") => {
                let lo = bound(&mut i)?;
                if tokens.get(i).is_some_and(|s| s.kind == TokenKind::Slash) {
                    i += 1;
                    let hi = bound(&mut i)?;
                    patterns.push(Pattern::Range(lo, hi));
                } else {
                    let value = lo.ok_or_else(|| {
                        EngineError::at(t.span, "min and max are ends of a range, such as min/17")
                    })?;
                    patterns.push(Pattern::Is(Value::Number(value)));
                }
            }
            _ => {
                return Err(EngineError::at(
                    t.span,
                    format!(
                        "'{}' is not a value, a range, missing, nonmissing or *",
                        t.span.text(source)
                    ),
                ));
            }
        }
    }
    Ok(patterns)
}

fn number(source: &str, t: &Token) -> Result<f64, EngineError> {
    t.span.text(source).parse().map_err(|_| EngineError::at(t.span, "not a number"))
}

fn text(source: &str, t: &Token) -> String {
    let s = t.span.text(source);
    s[1..s.len().saturating_sub(1)].to_owned()
}

impl Step<'_> {
    pub(in crate::engine) fn recode(&mut self) -> Result<(), EngineError> {
        let source = self.source();
        let args = &self.command().args;
        let first_rule =
            args.iter().position(|t| t.kind == TokenKind::LParen).unwrap_or(args.len());
        let names: Vec<(String, Span)> = args[..first_rule]
            .iter()
            .map(|t| match t.kind {
                TokenKind::Ident => Ok((t.span.text(source).to_owned(), t.span)),
                _ => Err(EngineError::at(t.span, "write recode <variable>… (<rule>) …")),
            })
            .collect::<Result<_, _>>()?;
        if names.is_empty() || first_rule == args.len() {
            return Err(EngineError::at(
                self.command().span,
                "write recode <variable>… (<rule>) …, such as recode age (0/17 = 0) (18/max = 1)",
            ));
        }
        let rules = parse_rules(source, &args[first_rule..])?;
        let (dataset_name, dataset) = self.populated()?;
        let dataset_name = dataset_name.to_owned();
        // Where the results go: in place, generate(a b …) or prefix(p).
        let targets: Vec<String> = match (self.option_names("generate"), self.option_text("prefix"))
        {
            (Some(_), Some(_)) => {
                return Err(EngineError::new("recode takes generate() or prefix(), not both"));
            }
            (Some(list), None) => {
                let new: Vec<String> = list.iter().map(|(name, _)| name.clone()).collect();
                if new.len() != names.len() {
                    return Err(EngineError::at(
                        self.option_span("generate"),
                        format!("generate() needs one new name per variable ({})", names.len()),
                    ));
                }
                new
            }
            (None, Some(prefix)) => names.iter().map(|(n, _)| format!("{prefix}{n}")).collect(),
            (None, None) => names.iter().map(|(n, _)| n.clone()).collect(),
        };
        let in_place = self.option("generate").is_none() && self.option("prefix").is_none();
        for t in &targets {
            if !in_place && dataset.variable(t).is_some() {
                return Err(EngineError::new(format!("{t} already exists: choose another name")));
            }
            if !valid_name(t) {
                return Err(EngineError::new(format!(
                    "{t} is not a valid name: names start with a letter and use letters, digits and _"
                )));
            }
        }
        let mask = self.mask(dataset, &dataset_name)?;
        let n = dataset.len() as u64;
        let gate = self.gate();
        let mut results = Vec::new();
        for ((name, span), target) in names.iter().zip(&targets) {
            let variable = dataset.require(name, &dataset_name).map_err(|e| e.with_span(*span))?;
            if variable.info.pointer {
                return Err(EngineError::at(
                    *span,
                    format!("{name} is an identifier and can only be a merge key (rule 2)"),
                ));
            }
            let text = Kind::of(variable.values.data_type()) == Kind::Text;
            let values = values_of(&variable.values, text)?;
            for rule in &rules {
                let kinds_agree =
                    rule.patterns.iter().all(|p| match p {
                        Pattern::Is(Value::Text(_)) => text,
                        Pattern::Is(Value::Number(_)) | Pattern::Range(..) => !text,
                        _ => true,
                    }) && rule.to.as_ref().is_none_or(|v| matches!(v, Value::Text(_)) == text);
                if !kinds_agree {
                    return Err(EngineError::at(
                        rule.span,
                        if text {
                            format!("{name} holds codes: quote the values of this rule, as '1'")
                        } else {
                            format!("{name} holds numbers: write this rule's values without quotes")
                        },
                    ));
                }
            }
            let mut out = values.clone();
            let mut per_rule = vec![0u64; rules.len()];
            let mut changed = 0u64;
            for (i, value) in values.iter().enumerate() {
                if mask.as_ref().is_some_and(|m| !m.value(i)) {
                    continue;
                }
                if let Some(r) =
                    rules.iter().position(|r| r.patterns.iter().any(|p| p.matches(value.as_ref())))
                {
                    per_rule[r] += 1;
                    if *value != rules[r].to {
                        changed += 1;
                    }
                    out[i] = rules[r].to.clone();
                }
            }
            for (rule, count) in rules.iter().zip(&per_rule) {
                gate.check_change(*count, n - count)
                    .map_err(|e| EngineError::from(e).with_span(rule.span))?;
            }
            gate.check_change(changed, n - changed)?;
            let mut labels: BTreeMap<String, String> = match (&variable.info.labels, in_place) {
                (Some(l), true) => (**l).clone(),
                _ => BTreeMap::new(),
            };
            for rule in &rules {
                if let (Some(label), Some(to)) = (&rule.label, &rule.to) {
                    labels.insert(display(to), label.clone());
                }
            }
            let info = VarInfo {
                labels: (!labels.is_empty()).then(|| Arc::new(labels)),
                source: if in_place {
                    variable.info.source.clone()
                } else {
                    format!("recode {name}")
                },
                copies: variable.info.copies(),
                pointer: false,
            };
            results.push(Variable { name: target.clone(), values: column(out, text), info });
        }
        let dataset = self.current_mut()?;
        let made: Vec<String> = results.iter().map(|v| v.name.clone()).collect();
        for v in results {
            dataset.set(v);
        }
        self.notice(format!("recoded: {}", made.join(" ")));
        Ok(())
    }
}

fn values_of(array: &ArrayRef, text: bool) -> Result<Vec<Option<Value>>, EngineError> {
    let internal = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
    if text {
        let strings = compute::cast(array, &DataType::Utf8).map_err(internal)?;
        let strings = strings.as_any().downcast_ref::<StringArray>().invariant("cast to Utf8")?;
        return Ok(strings.iter().map(|v| v.map(|s| Value::Text(s.to_owned()))).collect());
    }
    let floats = compute::cast(array, &DataType::Float64).map_err(internal)?;
    let floats = floats.as_any().downcast_ref::<Float64Array>().invariant("cast to Float64")?;
    Ok(floats.iter().map(|v| v.map(Value::Number)).collect())
}

fn display(value: &Value) -> String {
    match value {
        Value::Text(s) => s.clone(),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", *x as i64),
        Value::Number(x) => x.to_string(),
    }
}

/// Whole numbers stay whole (Int64); anything else is Float64.
fn column(values: Vec<Option<Value>>, text: bool) -> ArrayRef {
    if text {
        return Arc::new(StringArray::from_iter(values.into_iter().map(|v| match v {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        })));
    }
    let numbers: Vec<Option<f64>> = values
        .into_iter()
        .map(|v| match v {
            Some(Value::Number(x)) => Some(x),
            _ => None,
        })
        .collect();
    if numbers.iter().flatten().all(|x| x.fract() == 0.0 && x.abs() < 9e15) {
        Arc::new(Int64Array::from_iter(numbers.into_iter().map(|v| v.map(|x| x as i64))))
    } else {
        Arc::new(Float64Array::from(numbers))
    }
}
