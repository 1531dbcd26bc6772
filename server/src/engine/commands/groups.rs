//! collapse, aggregate and merge: statistics per group, and moving variables between datasets.
//!
//! Group values must not undo the rules that protect single units, so two things travel with
//! them:
//! - A value copied onto several units (`aggregate` gives a group's statistic to each member,
//!   `merge … on` gives one unit's value to every unit holding its key) records how many units
//!   share it, in `VarInfo::copies`; outputs that use it go through `Gate::for_copies`, which
//!   counts each copy as the one contributor it is.
//! - The units of a collapsed dataset remember their members (`Dataset::members`): outputs over
//!   groups are outputs over the member units for rule 11, and a group's record key is the sum
//!   of its members' keys.
//!
//! Values are coded to P1/P99 of the dataset (rule 7) before any statistic is taken.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt32Array,
};
use datafusion::arrow::compute;
use shared::script::TokenKind;

use super::dataset::numbers;
use super::dataset::{Dataset, Members, VarInfo, Variable};
use super::describe::coded;
use super::transform::valid_name;
use super::{EngineError, Invariant, Step};
use crate::stats;

/// The statistics of collapse and aggregate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GroupStatistic {
    Mean,
    Min,
    Max,
    Median,
    Count,
    Sum,
    SeMean,
    SeBinomial,
    Sd,
    Percent,
    Iqr,
    Gini,
    P25,
    P75,
}

impl GroupStatistic {
    const ALL: [(&'static str, GroupStatistic); 14] = [
        ("mean", GroupStatistic::Mean),
        ("min", GroupStatistic::Min),
        ("max", GroupStatistic::Max),
        ("median", GroupStatistic::Median),
        ("count", GroupStatistic::Count),
        ("sum", GroupStatistic::Sum),
        ("semean", GroupStatistic::SeMean),
        ("sebinomial", GroupStatistic::SeBinomial),
        ("sd", GroupStatistic::Sd),
        ("percent", GroupStatistic::Percent),
        ("iqr", GroupStatistic::Iqr),
        ("gini", GroupStatistic::Gini),
        ("p25", GroupStatistic::P25),
        ("p75", GroupStatistic::P75),
    ];

    fn parse(name: &str) -> Option<GroupStatistic> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Whether the statistic needs the group's values in order; the others stream.
    fn needs_sorting(self) -> bool {
        matches!(
            self,
            GroupStatistic::Min
                | GroupStatistic::Max
                | GroupStatistic::Median
                | GroupStatistic::Iqr
                | GroupStatistic::Gini
                | GroupStatistic::P25
                | GroupStatistic::P75
        )
    }

    /// A statistic that does not need sorting, from the group's moments.
    fn of_moments(self, m: &Moments, total: usize) -> Option<f64> {
        let n = m.n as f64;
        let sd = || (m.n > 1).then(|| (m.m2 / (n - 1.0)).sqrt());
        match self {
            GroupStatistic::Count => Some(n),
            GroupStatistic::Sum => Some(m.sum),
            GroupStatistic::Mean => (m.n > 0).then_some(m.mean),
            GroupStatistic::Sd => sd(),
            GroupStatistic::SeMean => sd().map(|s| s / n.sqrt()),
            GroupStatistic::SeBinomial => (m.n > 0).then(|| (m.mean * (1.0 - m.mean) / n).sqrt()),
            GroupStatistic::Percent => (total > 0).then(|| 100.0 * n / total as f64),
            _ => None,
        }
    }

    /// An order statistic (or the Gini) of one group's values, ascending.
    fn of(self, sorted: &[f64]) -> Option<f64> {
        let q = |p: f64| stats::quantile_sorted(sorted, p);
        match self {
            GroupStatistic::Min => sorted.first().copied(),
            GroupStatistic::Max => sorted.last().copied(),
            GroupStatistic::Median => q(0.5),
            GroupStatistic::Iqr => Some(q(0.75)? - q(0.25)?),
            GroupStatistic::Gini => stats::gini_sorted(sorted),
            GroupStatistic::P25 => q(0.25),
            GroupStatistic::P75 => q(0.75),
            _ => None,
        }
    }
}

/// Count, sum, mean and squared deviations of a group, in one pass (Welford).
#[derive(Default)]
struct Moments {
    n: u64,
    sum: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn of(values: impl Iterator<Item = f64>) -> Moments {
        let mut m = Moments::default();
        for x in values {
            m.n += 1;
            m.sum += x;
            let delta = x - m.mean;
            m.mean += delta / m.n as f64;
            m.m2 += delta * (x - m.mean);
        }
        m
    }
}

/// One `(stat) variable [-> new]` of a collapse or aggregate.
#[derive(Clone, Debug)]
struct Request {
    statistic: GroupStatistic,
    variable: String,
    new_name: String,
}

/// The group id of each row: the value of the `by()` variable when it is a whole number, else a
/// stable hash of its code. Missing values belong to no group.
pub fn group_ids(variable: &Variable) -> Result<Vec<Option<i64>>, EngineError> {
    let values = &variable.values;
    if let Some(a) = values.as_any().downcast_ref::<Int64Array>() {
        return Ok(a.iter().collect());
    }
    if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        return a
            .iter()
            .map(|v| match v {
                Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
                Some(_) => Err(EngineError::new(format!(
                    "{} has fractional values and cannot define groups: use round() or quantile() first",
                    variable.name
                ))),
                None => Ok(None),
            })
            .collect();
    }
    if let Some(a) = values.as_any().downcast_ref::<StringArray>() {
        return Ok(a.iter().map(|v| v.map(code_id)).collect());
    }
    Err(EngineError::new(format!("{} cannot define groups", variable.name)))
}

/// A code's group id: a keyless hash, the same in every dataset, so a key of codes in one
/// dataset finds the groups of the same codes in another.
fn code_id(code: &str) -> i64 {
    let mut hasher = siphasher::sip::SipHasher13::new();
    hasher.write(code.as_bytes());
    (hasher.finish() >> 2) as i64
}

impl Step<'_> {
    /// `(stat) v [-> new] v2 … (stat) …` and `by(g)`.
    fn group_requests(
        &self,
        dataset: &Dataset,
        name: &str,
    ) -> Result<(Vec<Request>, String), EngineError> {
        let source = self.source();
        let tokens = &self.command().args;
        let usage =
            format!("write {} (<stat>) <variable> [-> <new>] …, by(<group>)", self.command().name);
        let mut requests: Vec<Request> = Vec::new();
        let mut statistic = None;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            match t.kind {
                TokenKind::LParen => {
                    let (Some(s), Some(close)) = (tokens.get(i + 1), tokens.get(i + 2)) else {
                        return Err(EngineError::at(t.span, usage));
                    };
                    if close.kind != TokenKind::RParen {
                        return Err(EngineError::at(t.span, usage));
                    }
                    let text = s.span.text(source);
                    statistic = Some(GroupStatistic::parse(text).ok_or_else(|| {
                        let names = GroupStatistic::ALL.iter().map(|(n, _)| *n);
                        let hint = match shared::script::catalog::nearest(text, names) {
                            Some(n) => format!("did you mean {n}?"),
                            None => "the statistics are mean min max median count sum semean sebinomial sd percent iqr gini p25 p75".into(),
                        };
                        EngineError::at(s.span, format!("unknown statistic {text}: {hint}"))
                    })?);
                    i += 3;
                }
                TokenKind::Ident => {
                    let Some(statistic) = statistic else {
                        return Err(EngineError::at(
                            t.span,
                            format!(
                                "put the statistic first, such as (mean) {}",
                                t.span.text(source)
                            ),
                        ));
                    };
                    let variable = t.span.text(source).to_owned();
                    dataset.require(&variable, name).map_err(|e| e.with_span(t.span))?;
                    let mut new_name = variable.clone();
                    if tokens.get(i + 1).is_some_and(|a| a.kind == TokenKind::Arrow) {
                        let Some(n) = tokens.get(i + 2).filter(|n| n.kind == TokenKind::Ident)
                        else {
                            return Err(EngineError::at(
                                t.span,
                                "write -> followed by the new name",
                            ));
                        };
                        new_name = n.span.text(source).to_owned();
                        if !valid_name(&new_name) {
                            return Err(EngineError::at(
                                n.span,
                                "variable names start with a letter and use letters, digits and _",
                            ));
                        }
                        i += 2;
                    }
                    if requests.iter().any(|r| r.new_name == new_name) {
                        return Err(EngineError::at(
                            t.span,
                            format!("{new_name} is made twice: name one of them with -> <new>"),
                        ));
                    }
                    requests.push(Request { statistic, variable, new_name });
                    i += 1;
                }
                _ => return Err(EngineError::at(t.span, usage)),
            }
        }
        if requests.is_empty() {
            return Err(EngineError::at(self.command().span, usage));
        }
        let by = self.option_text("by").ok_or_else(|| {
            EngineError::at(self.command().span, format!("{usage}: the by() option is missing"))
        })?;
        let by_span = self.option_span("by");
        dataset.require(&by, name).map_err(|e| e.with_span(by_span))?;
        if requests.iter().any(|r| r.variable == by) {
            return Err(EngineError::at(
                by_span,
                format!("{by} is the group: it cannot also be summarised"),
            ));
        }
        Ok((requests, by))
    }

    pub(in crate::engine) fn collapse_or_aggregate(
        &mut self,
        collapse: bool,
    ) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let dataset_name = dataset_name.to_owned();
        if collapse {
            dataset.require_cross_section(&dataset_name, "collapse")?;
        }
        let (requests, by) = self.group_requests(dataset, &dataset_name)?;
        let by_variable = dataset.variable(&by).invariant("the by variable was checked")?;
        let groups = group_ids(by_variable)?;
        // Rows of each group, groups in ascending id order and rows ascending within a group:
        // one sort of (group, row) pairs, which also leaves each group's members in order.
        let mut keyed: Vec<(i64, u32)> =
            groups.iter().enumerate().filter_map(|(i, g)| g.map(|g| (g, i as u32))).collect();
        keyed.sort_unstable();
        let order: Vec<usize> = keyed.iter().map(|&(_, i)| i as usize).collect();
        let mut runs: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
        let mut start = 0;
        for k in 1..=keyed.len() {
            if k == keyed.len() || keyed[k].0 != keyed[start].0 {
                runs.push((keyed[start].0, start..k));
                start = k;
            }
        }
        drop(keyed);
        let gate = self.gate();
        // Each statistic's value per group.
        let mut columns: Vec<(Vec<Option<f64>>, VarInfo)> = Vec::new();
        let mut buffer = Vec::new();
        // Each variable's coded values in group order, once however many statistics use it:
        // coding selects P1 and P99 from every row, and gathering is a pass of cache misses.
        let mut in_group_order: HashMap<&str, Vec<Option<f64>>> = HashMap::new();
        for r in &requests {
            if !in_group_order.contains_key(r.variable.as_str()) {
                let variable =
                    dataset.variable(&r.variable).invariant("the variable was checked")?;
                let values = coded(gate, &numbers(variable)?);
                in_group_order
                    .insert(r.variable.as_str(), order.iter().map(|&i| values[i]).collect());
            }
        }
        for r in &requests {
            let variable = dataset.variable(&r.variable).invariant("the variable was checked")?;
            let values = &in_group_order[r.variable.as_str()];
            let total = values.iter().filter(|v| v.is_some()).count();
            let per_group: Vec<Option<f64>> = runs
                .iter()
                .map(|(_, rows)| {
                    let present = values[rows.clone()].iter().filter_map(|v| *v);
                    if r.statistic.needs_sorting() {
                        buffer.clear();
                        buffer.extend(present);
                        buffer.sort_unstable_by(f64::total_cmp);
                        r.statistic.of(&buffer)
                    } else {
                        r.statistic.of_moments(&Moments::of(present), total)
                    }
                })
                .collect();
            let info = VarInfo {
                source: format!(
                    "{} ({:?}) {} by {by}",
                    self.command().name,
                    r.statistic,
                    r.variable
                )
                .to_lowercase(),
                copies: variable.info.copies(),
                ..VarInfo::default()
            };
            columns.push((per_group, info));
        }
        if collapse {
            let group_ids: Vec<i64> = runs.iter().map(|(g, _)| *g).collect();
            let mut pairs = Vec::with_capacity(order.len());
            for (g, rows) in &runs {
                for &i in &order[rows.clone()] {
                    pairs.extend(dataset.units_of_row(i).iter().map(|&m| (*g, m)));
                }
            }
            let member_type = match &dataset.members {
                Some(m) => m.unit_type,
                None => dataset.unit_type,
            };
            let firsts: Vec<u32> = runs.iter().map(|(_, rows)| order[rows.start] as u32).collect();
            let by_values = compute::take(&by_variable.values, &UInt32Array::from(firsts), None)
                .map_err(|e| EngineError::internal(e.to_string()))?;
            let mut variables = vec![Variable {
                name: by.clone(),
                values: by_values,
                info: by_variable.info.clone(),
            }];
            for (r, (values, info)) in requests.iter().zip(columns) {
                variables.push(Variable {
                    name: r.new_name.clone(),
                    values: as_column(r.statistic, values),
                    info,
                });
            }
            let collapsed = Dataset {
                unit_type: dataset.unit_type,
                origin: dataset.origin.clone(),
                ids: Int64Array::from(group_ids),
                variables,
                members: Some(Arc::new(Members::new(member_type, pairs))),
                panel: None,
                spells: None,
            };
            let groups = collapsed.len();
            *self.current_mut()? = collapsed;
            self.notice(format!(
                "{dataset_name} now has one unit per group of {by}{}",
                if groups == 0 { " (there were no groups)" } else { "" }
            ));
            return Ok(());
        }
        // aggregate: every member gets its group's value.
        for r in &requests {
            if r.new_name != r.variable && dataset.variable(&r.new_name).is_some() {
                return Err(EngineError::new(format!(
                    "{} already exists: choose another name with -> <new>",
                    r.new_name
                )));
            }
        }
        let largest_group = runs.iter().map(|(_, rows)| rows.len() as u64).max().unwrap_or(1);
        let mut new_variables = Vec::new();
        for (r, (per_group, mut info)) in requests.iter().zip(columns) {
            let mut values = vec![None; dataset.len()];
            for ((_, rows), value) in runs.iter().zip(&per_group) {
                for &i in &order[rows.clone()] {
                    values[i] = *value;
                }
            }
            info.copies = info.copies().saturating_mul(largest_group);
            new_variables.push(Variable {
                name: r.new_name.clone(),
                values: as_column(r.statistic, values),
                info,
            });
        }
        let dataset = self.current_mut()?;
        let names: Vec<String> = new_variables.iter().map(|v| v.name.clone()).collect();
        for v in new_variables {
            dataset.set(v);
        }
        self.notice(format!("{} added, by {by}", names.join(", ")));
        Ok(())
    }

    /// `merge var… into dataset [on key]`.
    pub(in crate::engine) fn merge(&mut self) -> Result<(), EngineError> {
        let source = self.source();
        let tokens = &self.command().args;
        let usage = "write merge <variable>… into <dataset> [on <key>]";
        let word = |i: usize| {
            tokens.get(i).filter(|t| t.kind == TokenKind::Ident).map(|t| t.span.text(source))
        };
        let Some(into_at) = (0..tokens.len()).find(|&i| word(i) == Some("into")) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        let names: Vec<(String, shared::script::Span)> = tokens[..into_at]
            .iter()
            .map(|t| match t.kind {
                TokenKind::Ident => Ok((t.span.text(source).to_owned(), t.span)),
                _ => Err(EngineError::at(t.span, usage)),
            })
            .collect::<Result<_, _>>()?;
        let Some(target_name) = word(into_at + 1) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        let target_span = tokens[into_at + 1].span;
        let key = match (word(into_at + 2), word(into_at + 3), tokens.len()) {
            (None, None, n) if n == into_at + 2 => None,
            (Some("on"), Some(k), n) if n == into_at + 4 => {
                Some((k.to_owned(), tokens[into_at + 3].span))
            }
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        if names.is_empty() {
            return Err(EngineError::at(self.command().span, usage));
        }
        let (source_name, from) = self.populated()?;
        from.require_cross_section(source_name, "merge")?;
        for (n, span) in &names {
            from.require(n, source_name).map_err(|e| e.with_span(*span))?;
        }
        let Some(target) = self.workspace.dataset(target_name) else {
            let hint =
                match shared::script::catalog::nearest(target_name, self.workspace.dataset_names())
                {
                    Some(near) => format!(": did you mean {near}?"),
                    None => ": create it with create-dataset".into(),
                };
            return Err(EngineError::at(
                target_span,
                format!("there is no dataset {target_name}{hint}"),
            ));
        };
        if target_name == source_name {
            return Err(EngineError::at(
                target_span,
                "merge into another dataset, not the one in use",
            ));
        }
        if target.unit_type.is_none() {
            return Err(EngineError::at(
                target_span,
                format!("dataset {target_name} is empty: import its units first"),
            ));
        }
        target.require_cross_section(target_name, "merge").map_err(|e| e.with_span(target_span))?;
        if target.origin != from.origin {
            return Err(EngineError::at(
                target_span,
                format!("{target_name} comes from another datastore version than {source_name}"),
            ));
        }
        for (n, span) in &names {
            if target.variable(n).is_some() {
                return Err(EngineError::at(
                    *span,
                    format!("{target_name} already has {n}: rename one of them first"),
                ));
            }
        }
        // The source row of each target row.
        let wanted: Vec<Option<i64>> = match &key {
            Some((k, span)) => {
                let key_variable =
                    target.require(k, target_name).map_err(|e| e.with_span(*span))?;
                group_ids(key_variable).map_err(|e| e.with_span(*span))?
            }
            None => {
                if from.members.is_some()
                    || target.members.is_some()
                    || from.unit_type != target.unit_type
                {
                    return Err(EngineError::at(
                        self.command().span,
                        format!(
                            "{source_name} and {target_name} hold different units: say which variable of {target_name} holds the key, with on <key>"
                        ),
                    ));
                }
                target.ids.iter().collect()
            }
        };
        let source_ids = from.ids.values();
        // Keys arrive in the target's order, so look them up by hash rather than by a binary
        // search per row (millions of cache misses on a large source).
        let mut row_of: std::collections::HashMap<i64, u32, foldhash::fast::RandomState> =
            std::collections::HashMap::with_capacity_and_hasher(
                source_ids.len(),
                foldhash::fast::RandomState::default(),
            );
        row_of.extend(source_ids.iter().enumerate().map(|(r, &id)| (id, r as u32)));
        let rows: Vec<Option<u32>> =
            wanted.iter().map(|w| w.and_then(|id| row_of.get(&id).copied())).collect();
        drop(row_of);
        let mut receivers = vec![0u64; source_ids.len()];
        for r in rows.iter().flatten() {
            receivers[*r as usize] += 1;
        }
        let most_receivers = receivers.iter().copied().max().unwrap_or(1).max(1);
        let covered = rows.iter().filter(|r| r.is_some()).count() as u64;
        // A merged variable that reaches only a few units, or all but a few, singles them out.
        self.gate().check_change(covered, target.len() as u64 - covered)?;
        let take = UInt32Array::from(rows);
        let mut merged = Vec::new();
        for (n, _) in &names {
            let v = from.variable(n).invariant("the variable was checked")?;
            let values = compute::take(&v.values, &take, None)
                .map_err(|e| EngineError::internal(e.to_string()))?;
            let info = VarInfo {
                source: format!("merge from {source_name}"),
                copies: v.info.copies().saturating_mul(most_receivers),
                ..v.info.clone()
            };
            merged.push(Variable { name: n.clone(), values, info });
        }
        let target =
            self.workspace.datasets.get_mut(target_name).invariant("the target dataset exists")?;
        for v in merged {
            target.set(v);
        }
        let listed: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        self.notice(format!("{} merged into {target_name}", listed.join(", ")));
        Ok(())
    }
}

/// A statistic's values as a column: counts as whole numbers, the rest as reals.
fn as_column(statistic: GroupStatistic, values: Vec<Option<f64>>) -> ArrayRef {
    match statistic {
        GroupStatistic::Count => {
            Arc::new(Int64Array::from_iter(values.into_iter().map(|v| v.map(|x| x as i64))))
        }
        _ => Arc::new(Float64Array::from(values)),
    }
}
