//! A dataset of the workspace: one unit type, one row per unit ordered by unit id, and named
//! variables as Arrow arrays. Keeping rows ordered by id lets an import join by merging two
//! sorted lists instead of hashing, the shape the datastore itself has.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::collections::HashMap;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use shared::metadata::UnitType;

use super::{EngineError, Invariant};

/// What a variable is, beyond its values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VarInfo {
    /// Code → label, for code-list variables.
    pub labels: Option<Arc<BTreeMap<String, String>>>,
    /// A pointer (`_FNR`) or other identifier: usable only as a merge key (rule 2).
    pub pointer: bool,
    /// Where it came from, such as `db/INNTEKT_WLONN 2021-12-31`.
    pub source: String,
    /// The most units that share one copied value: `aggregate` gives a group's statistic to
    /// every member, `merge … on` gives one unit's value to every unit holding its key. 0 and 1
    /// mean not copied. Outputs count each contributor this many times over, so ten copies of
    /// one person's wage cannot pass as ten contributors.
    pub copies: u64,
}

impl VarInfo {
    pub fn copies(&self) -> u64 {
        self.copies.max(1)
    }
}

#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub values: ArrayRef,
    pub info: VarInfo,
}

/// Which datastore version a dataset's units come from: its gate protects the outputs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub datastore: String,
    pub version: u32,
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub unit_type: Option<UnitType>,
    pub origin: Option<Origin>,
    /// Unit ids, ascending; unique but in a panel (see `panel`).
    pub ids: Int64Array,
    pub variables: Vec<Variable>,
    /// For a collapsed dataset, whose units are groups: the units in each group.
    pub members: Option<Arc<Members>>,
    /// For a panel dataset (`import-panel`): rows are (unit, date) pairs, ordered by unit id
    /// and then date, so `ids` repeats each unit once per date it has.
    pub panel: Option<Panel>,
    /// For an event dataset (`import-event`): rows are spells, ordered by unit id and start,
    /// and this is the most spells any unit has.
    pub spells: Option<u64>,
}

/// The dates of a panel dataset's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The panel's dates, ascending, in days since 1970-01-01.
    pub dates: Vec<i32>,
    /// Each row's index into `dates`.
    pub rows: Vec<u32>,
}

impl Panel {
    /// The date of row `i`, in days since 1970-01-01.
    pub fn date_of(&self, i: usize) -> i32 {
        self.dates[self.rows[i] as usize]
    }
}

/// The member units of each group of a collapsed dataset. Outputs over groups are outputs over
/// their members: rule 11 compares member populations, and a group's record key is the sum of
/// its members' keys, so the same people give the same noise however they are grouped.
#[derive(Debug, PartialEq)]
pub struct Members {
    /// The unit type of the members, such as persons for groups of `famnr`.
    pub unit_type: Option<UnitType>,
    /// Group ids, ascending.
    groups: Vec<i64>,
    /// `ids[offsets[g]..offsets[g + 1]]` are the members of `groups[g]`.
    offsets: Vec<usize>,
    ids: Vec<i64>,
}

impl Members {
    /// Builds from (group, member) pairs in any order.
    pub fn new(unit_type: Option<UnitType>, mut pairs: Vec<(i64, i64)>) -> Members {
        // A collapse of units hands them over in order already; only groups of groups need it.
        if !pairs.is_sorted() {
            pairs.sort_unstable();
        }
        let mut groups = Vec::new();
        let mut offsets = Vec::new();
        let mut ids = Vec::with_capacity(pairs.len());
        for (g, m) in pairs {
            if groups.last() != Some(&g) {
                groups.push(g);
                offsets.push(ids.len());
            }
            ids.push(m);
        }
        offsets.push(ids.len());
        Members { unit_type, groups, offsets, ids }
    }

    pub fn of(&self, group: i64) -> &[i64] {
        match self.groups.binary_search(&group) {
            Ok(g) => &self.ids[self.offsets[g]..self.offsets[g + 1]],
            Err(_) => &[],
        }
    }

    /// Whether `unit` is a member of `group`.
    pub fn contains(&self, group: i64, unit: i64) -> bool {
        self.of(group).binary_search(&unit).is_ok()
    }
}

impl Default for Dataset {
    fn default() -> Dataset {
        Dataset {
            unit_type: None,
            origin: None,
            ids: Int64Array::from(Vec::<i64>::new()),
            variables: Vec::new(),
            members: None,
            panel: None,
            spells: None,
        }
    }
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.unit_type.is_none()
    }

    /// An error for a command that needs one row per unit, when this is a panel or spells.
    pub fn require_cross_section(&self, dataset: &str, command: &str) -> Result<(), EngineError> {
        match (&self.panel, self.spells) {
            (Some(_), _) => Err(EngineError::new(format!(
                "dataset {dataset} is a panel (a row per unit and date, from import-panel) and {command} needs a row per unit: use the -panel commands on it, or do this in a dataset made with import"
            ))),
            (None, Some(_)) => Err(EngineError::new(format!(
                "dataset {dataset} holds spells (a row per spell, from import-event) and {command} needs a row per unit: describe the spells here, or do this in a dataset made with import"
            ))),
            (None, None) => Ok(()),
        }
    }

    /// The units behind row `i`: its own id, or a group's members.
    pub fn units_of_row(&self, i: usize) -> &[i64] {
        match &self.members {
            Some(m) => m.of(self.ids.value(i)),
            None => std::slice::from_ref(&self.ids.values()[i]),
        }
    }

    /// Adds the units behind row `i` to an output's population (rule 11).
    pub fn add_to_population(
        &self,
        population: &mut crate::disclosure::differencing::PopulationSketch,
        i: usize,
    ) {
        for &unit in self.units_of_row(i) {
            population.insert(unit);
        }
    }

    /// The most copies any of the named variables holds (see [`VarInfo::copies`]), leaving
    /// a panel's dates aside: what an output over one date of a panel counts.
    pub fn variable_copies<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> u64 {
        names
            .into_iter()
            .filter_map(|n| self.variable(n))
            .map(|v| v.info.copies())
            .max()
            .unwrap_or(1)
    }

    /// The most copies any of the named variables holds (see [`VarInfo::copies`]). In a panel
    /// every unit has a row per date, so a pooled output counts each unit up to that many
    /// times over: the panel's dates multiply the copies.
    pub fn copies<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> u64 {
        let copies = self.variable_copies(names);
        let rows_per_unit = match (&self.panel, self.spells) {
            (Some(p), _) => p.dates.len() as u64,
            (None, Some(spells)) => spells,
            (None, None) => 1,
        };
        copies.saturating_mul(rows_per_unit.max(1))
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.variables.iter().position(|v| v.name == name)
    }

    /// The variable called `name`, or an error that suggests the nearest name.
    pub fn require(&self, name: &str, dataset: &str) -> Result<&Variable, EngineError> {
        self.variable(name).ok_or_else(|| {
            let names = self.variables.iter().map(|v| v.name.as_str());
            let hint = match shared::script::catalog::nearest(name, names) {
                Some(near) => format!(": did you mean {near}?"),
                None if self.variables.is_empty() => {
                    ": it has no variables yet; import some first".into()
                }
                None => format!(
                    "; it has {}",
                    self.variables.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            EngineError::new(format!("dataset {dataset} has no variable {name}{hint}"))
        })
    }

    /// A record batch of the named variables (all when `names` is `None`), for DataFusion.
    pub fn batch(&self, names: Option<&[String]>) -> Result<RecordBatch, EngineError> {
        let chosen: Vec<&Variable> = match names {
            Some(names) => self.variables.iter().filter(|v| names.contains(&v.name)).collect(),
            None => self.variables.iter().collect(),
        };
        let fields: Vec<Field> = chosen
            .iter()
            .map(|v| Field::new(&v.name, v.values.data_type().clone(), true))
            .collect();
        let columns: Vec<ArrayRef> = chosen.iter().map(|v| v.values.clone()).collect();
        let options =
            datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(self.len()));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
            .map_err(|e| EngineError::internal(format!("building a batch: {e}")))
    }

    /// Keeps the rows where `mask` is true.
    pub fn filter(&mut self, mask: &BooleanArray) -> Result<(), EngineError> {
        let internal =
            |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
        let ids = compute::filter(&self.ids, mask).map_err(internal)?;
        self.ids = ids.as_any().downcast_ref::<Int64Array>().cloned().invariant("ids are Int64")?;
        for v in &mut self.variables {
            v.values = compute::filter(&v.values, mask).map_err(internal)?;
        }
        if let Some(panel) = &mut self.panel {
            let mut kept = Vec::with_capacity(self.ids.len());
            kept.extend(
                panel
                    .rows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
                    .map(|(_, r)| *r),
            );
            panel.rows = kept;
        }
        Ok(())
    }

    pub fn set(&mut self, variable: Variable) {
        match self.position(&variable.name) {
            Some(i) => self.variables[i] = variable,
            None => self.variables.push(variable),
        }
    }
}

/// The kind of values a column holds, as the language sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Number,
    Text,
    Bool,
}

impl Kind {
    pub fn of(data_type: &DataType) -> Kind {
        match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Boolean => Kind::Bool,
            _ => Kind::Number,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "text (a code)",
            Kind::Bool => "a condition",
        }
    }
}

// Column helpers: a variable's values read as numbers, levels or text. Every command reads
// columns through these, so they live beside the dataset, below the commands.

/// A numeric column as f64 with nulls as `None`.
pub(super) fn numbers(variable: &Variable) -> Result<Vec<Option<f64>>, EngineError> {
    if Kind::of(variable.values.data_type()) != Kind::Number {
        return Err(EngineError::new(format!(
            "{} holds codes, not numbers: tabulate it, or destring it first",
            variable.name
        )));
    }
    if variable.info.pointer {
        return Err(EngineError::new(format!(
            "{} is an identifier and can only be a merge key (rule 2)",
            variable.name
        )));
    }
    let floats = compute::cast(&variable.values, &DataType::Float64)
        .map_err(|e| EngineError::internal(e.to_string()))?;
    let Some(floats) = floats.as_any().downcast_ref::<Float64Array>() else {
        return Err(EngineError::internal(format!("{} did not cast to Float64", variable.name)));
    };
    Ok(floats.iter().map(|v| v.filter(|x| x.is_finite())).collect())
}

/// The numbers of the variable `name` of `dataset` (see [`numbers`]).
pub(super) fn numbers_of(dataset: &Dataset, name: &str) -> Result<Vec<Option<f64>>, EngineError> {
    numbers(dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))?)
}

/// Each row's index among the column's distinct values (`None` for missing), and those values
/// as text, in order of first appearance. Keyed by the values themselves, not their text: this
/// runs over every row of a table's variables, and a String per row was most of its cost.
fn distinct_values(values: &ArrayRef) -> (Vec<Option<usize>>, Vec<String>) {
    fn index_by<K: std::hash::Hash + Eq>(
        len: usize,
        key: impl Fn(usize) -> Option<K>,
        text: impl Fn(usize) -> String,
    ) -> (Vec<Option<usize>>, Vec<String>) {
        let mut index: HashMap<K, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut keys = Vec::new();
        let rows = (0..len)
            .map(|i| {
                let k = key(i)?;
                let next = index.len();
                Some(*index.entry(k).or_insert_with(|| {
                    keys.push(text(i));
                    next
                }))
            })
            .collect();
        (rows, keys)
    }
    let text = |i| display(values, i);
    let len = values.len();
    if let Some(a) = values.as_any().downcast_ref::<Int64Array>() {
        index_by(len, |i| a.is_valid(i).then(|| a.value(i)), text)
    } else if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        // Adding 0.0 turns -0.0 into 0.0, which display shows alike.
        index_by(len, |i| a.is_valid(i).then(|| (a.value(i) + 0.0).to_bits()), text)
    } else if let Some(a) = values.as_any().downcast_ref::<StringArray>() {
        index_by(len, |i| a.is_valid(i).then(|| a.value(i)), text)
    } else {
        index_by(len, |i| values.is_valid(i).then(|| display(values, i)), text)
    }
}

/// Levels of a grouping column: a level index per row (`None` for missing) and the labels.
pub(crate) fn levels(
    variable: &Variable,
    with_missing: bool,
    with_labels: bool,
) -> Result<(Vec<Option<usize>>, Vec<String>), EngineError> {
    if variable.info.pointer {
        return Err(EngineError::new(format!(
            "{} is an identifier and can only be a merge key (rule 2)",
            variable.name
        )));
    }
    let (rows, keys) = distinct_values(&variable.values);
    // Order levels numerically when they are numbers, else as text.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| match (keys[a].parse::<f64>(), keys[b].parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => keys[a].cmp(&keys[b]),
    });
    let mut rank = vec![0; keys.len()];
    for (r, &k) in order.iter().enumerate() {
        rank[k] = r;
    }
    let missing_level = with_missing && rows.iter().any(Option::is_none);
    let rows: Vec<Option<usize>> = rows
        .into_iter()
        .map(|r| match r {
            Some(k) => Some(rank[k]),
            None if missing_level => Some(keys.len()),
            None => None,
        })
        .collect();
    let mut labels: Vec<String> = order
        .iter()
        .map(|&k| {
            let code = &keys[k];
            match (&variable.info.labels, with_labels) {
                (Some(l), true) => match l.get(code) {
                    Some(label) => format!("{code} {label}"),
                    None => code.clone(),
                },
                _ => code.clone(),
            }
        })
        .collect();
    if missing_level {
        labels.push("missing".into());
    }
    if labels.len() > 10_000 {
        return Err(EngineError::new(format!(
            "{} has more than 10 000 levels: group it with recode before tabulating",
            variable.name
        )));
    }
    Ok((rows, labels))
}

/// Results with at most this many distinct values are checked value by value (rule 4).
pub(super) const CATEGORICAL_LIMIT: usize = 20;

/// Sizes of the value classes (missing included) when there are few distinct values.
pub(super) fn value_classes(values: &ArrayRef) -> Option<Vec<u64>> {
    let mut counts: HashMap<Option<String>, u64> = HashMap::new();
    for i in 0..values.len() {
        let key = if values.is_null(i) { None } else { Some(display(values, i)) };
        *counts.entry(key).or_default() += 1;
        if counts.len() > CATEGORICAL_LIMIT {
            return None;
        }
    }
    Some(counts.into_values().collect())
}

/// A value as text, for grouping and labels.
pub(super) fn display(values: &ArrayRef, i: usize) -> String {
    if let Some(a) = values.as_any().downcast_ref::<Int64Array>() {
        a.value(i).to_string()
    } else if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        let v = a.value(i);
        if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { v.to_string() }
    } else if let Some(a) = values.as_any().downcast_ref::<StringArray>() {
        a.value(i).to_owned()
    } else {
        String::from("?")
    }
}

/// A value the estimation sample guarantees. Every row of a sample has its values (that is
/// what puts it there), so reading one outside it is a mistake in the engine: tests fail on a
/// debug assertion, and a release build reads a neutral value (NaN for a number) instead of
/// stopping the server.
pub(super) trait InSample {
    type Value;
    fn in_sample(&self, row: usize) -> Self::Value;
}

impl InSample for [Option<f64>] {
    type Value = f64;
    fn in_sample(&self, row: usize) -> f64 {
        let value = self.get(row).copied().flatten();
        debug_assert!(value.is_some(), "row {row} is outside the sample");
        value.unwrap_or(f64::NAN)
    }
}

impl InSample for [Option<usize>] {
    type Value = usize;
    fn in_sample(&self, row: usize) -> usize {
        let value = self.get(row).copied().flatten();
        debug_assert!(value.is_some(), "row {row} is outside the sample");
        value.unwrap_or_default()
    }
}

impl InSample for [Option<String>] {
    type Value = String;
    fn in_sample(&self, row: usize) -> String {
        let value = self.get(row).cloned().flatten();
        debug_assert!(value.is_some(), "row {row} is outside the sample");
        value.unwrap_or_default()
    }
}
