//! `import`: a register variable into the current dataset.
//!
//! DataFusion scans the variable's Parquet parts with the temporality's date predicate pushed
//! down (row groups whose start/stop statistics cannot match are skipped). The selected
//! (unit_id, value) pairs are sorted by unit id and merged into the dataset's sorted ids: no
//! hash table, one pass.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;
use shared::metadata::{Temporality, ValueDomain, VariableMetadata};
use shared::script::{Span, TokenKind};
use shared::{Date, VariableName};

use super::dataset::{Dataset, Origin, VarInfo, Variable};
use super::{EngineError, Invariant, Step};
use crate::datastore::DatastoreVersion;

struct ImportArgs {
    alias: String,
    variable: String,
    variable_span: Span,
    date: Option<(Date, Span)>,
    name: Option<String>,
}

impl<'a> Step<'a> {
    /// The datastore version bound to `alias` and its variable `variable`, which the
    /// workspace's project must be granted; errors name the alias or variable and the fix.
    pub(in crate::engine) fn resolve_variable(
        &self,
        alias: &str,
        alias_span: Span,
        variable: &str,
        variable_span: Span,
    ) -> Result<(Origin, &'a DatastoreVersion, &'a VariableMetadata), EngineError> {
        let origin = self.workspace.aliases.get(alias).cloned().ok_or_else(|| {
            EngineError::at(
                alias_span,
                format!(
                    "{alias} is not bound to a datastore: add require <datastore>:<version> as {alias} first"
                ),
            )
        })?;
        let registry: &'a crate::datastore::Registry = self.engine.registry();
        let version = registry
            .datastores
            .iter()
            .find(|(n, _)| n.as_str() == origin.datastore)
            .and_then(|(_, vs)| vs.iter().find(|v| v.metadata.version == origin.version))
            .ok_or_else(|| EngineError::internal("a bound datastore version disappeared"))?;
        let meta = VariableName::parse(variable)
            .ok()
            .and_then(|n| version.variables.get(&n))
            .ok_or_else(|| {
                let names = version.variables.keys().map(|n| n.as_str());
                let hint = match shared::script::catalog::nearest(variable, names) {
                    Some(near) => format!(": did you mean {near}?"),
                    None => ": search the catalog for its name".into(),
                };
                EngineError::at(
                    variable_span,
                    format!(
                        "{}:{} has no variable {variable}{hint}",
                        origin.datastore, origin.version
                    ),
                )
            })?;
        if let Some(grants) = &self.workspace.grants
            && !grants.allows_variable(&origin.datastore, meta.name.as_str())
        {
            return Err(EngineError::at(
                variable_span,
                format!(
                    "this workspace's project is not granted {}/{}: ask your data steward to grant it",
                    origin.datastore,
                    meta.name.as_str()
                ),
            ));
        }
        Ok((origin, version, meta))
    }
}

impl Step<'_> {
    fn import_args(&self) -> Result<ImportArgs, EngineError> {
        let t = &self.command().args;
        let src = self.source();
        let usage = "write import <alias>/<VARIABLE> [date] [as name], such as import db/INNTEKT_WLONN 2021-12-31 as wage";
        let ident = |i: usize| t.get(i).filter(|t| t.kind == TokenKind::Ident);
        let (Some(alias), Some(slash), Some(variable)) = (ident(0), t.get(1), ident(2)) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        if slash.kind != TokenKind::Slash {
            return Err(EngineError::at(slash.span, usage));
        }
        let mut i = 3;
        let mut date = None;
        if let Some(d) = t.get(i).filter(|t| t.kind == TokenKind::Date) {
            let text = d.span.text(src);
            let parsed: Date = text
                .parse()
                .map_err(|e: shared::date::DateError| EngineError::at(d.span, e.to_string()))?;
            date = Some((parsed, d.span));
            i += 1;
        }
        let mut name = None;
        if let Some(a) = ident(i).filter(|a| a.span.text(src) == "as") {
            let n = ident(i + 1)
                .ok_or_else(|| EngineError::at(a.span, "as needs a name after it: as wage"))?;
            name = Some(n.span.text(src).to_owned());
            i += 2;
        }
        if let Some(extra) = t.get(i) {
            return Err(EngineError::at(
                extra.span,
                format!("'{}' does not belong here: {usage}", extra.span.text(src)),
            ));
        }
        Ok(ImportArgs {
            alias: alias.span.text(src).to_owned(),
            variable: variable.span.text(src).to_owned(),
            variable_span: variable.span,
            date,
            name,
        })
    }

    pub(in crate::engine) async fn import(&mut self) -> Result<(), EngineError> {
        let args = self.import_args()?;
        let alias_span = self.command().args[0].span;
        let (origin, version, meta) =
            self.resolve_variable(&args.alias, alias_span, &args.variable, args.variable_span)?;
        check_date(meta, args.date, args.variable_span)?;

        let target_name = args.name.clone().unwrap_or_else(|| args.variable.clone());
        let dataset_name = self.current_name()?;
        {
            let (_, dataset) = self.current()?;
            // Into spells, each spell gets its unit's value (a left join on the unit, whose
            // spells are next to each other); a full join would add rows that are no spell.
            if dataset.spells.is_some() && self.flag("outer_join") {
                return Err(EngineError::at(
                    self.option_span("outer_join"),
                    format!(
                        "dataset {dataset_name} holds spells, and outer_join would add units without one: import without it, so each spell gets its unit's value"
                    ),
                ));
            }
            if dataset.spells.is_none() {
                dataset
                    .require_cross_section(&dataset_name, "import")
                    .map_err(|e| e.with_span(self.command().name_span))?;
            }
            if dataset.members.is_some() {
                return Err(EngineError::at(
                    args.variable_span,
                    format!(
                        "dataset {dataset_name} holds groups made by collapse, not register units: import into a dataset of units, then merge the groups' values into it"
                    ),
                ));
            }
            if let Some(unit) = dataset.unit_type {
                if unit != meta.unit_type {
                    return Err(EngineError::at(
                        args.variable_span,
                        format!(
                            "{} describes {} units but dataset {dataset_name} holds {} units: import it into a dataset of its own (create-dataset), then collapse and merge",
                            meta.name.as_str(),
                            meta.unit_type.as_str(),
                            unit.as_str()
                        ),
                    ));
                }
                if dataset.origin.as_ref().is_some_and(|o| *o != origin) {
                    return Err(EngineError::at(
                        self.command().args[0].span,
                        "a dataset holds units of one datastore version: import into a new dataset",
                    ));
                }
            }
            if dataset.variable(&target_name).is_some() {
                return Err(EngineError::at(
                    args.variable_span,
                    format!(
                        "dataset {dataset_name} already has a variable {target_name}: add as <other name>"
                    ),
                ));
            }
        }

        let (ids, values) =
            self.scan(&version.data_dir(&meta.name), meta, args.date.map(|d| d.0)).await?;
        if ids.is_empty() {
            let when = args.date.map(|(d, _)| format!(" on {d}")).unwrap_or_default();
            let coverage = meta
                .coverage
                .as_ref()
                .map(|c| format!(": it covers {} to {}", c.start, c.latest))
                .unwrap_or_default();
            return Err(EngineError::at(
                args.variable_span,
                format!("{} has no values{when}{coverage}", meta.name.as_str()),
            ));
        }
        let outer = self.flag("outer_join");
        let max_rows = self.engine.limits.max_rows;
        let dataset = self
            .workspace
            .datasets
            .get_mut(&dataset_name)
            .invariant("the current dataset exists")?;
        let info = VarInfo {
            labels: labels(meta),
            pointer: meta.points_to.is_some(),
            source: format!(
                "{}/{}{}",
                args.alias,
                meta.name.as_str(),
                args.date.map(|(d, _)| format!(" {d}")).unwrap_or_default()
            ),
            copies: 1,
        };
        if dataset.unit_type.is_none() {
            dataset.unit_type = Some(meta.unit_type);
            dataset.origin = Some(origin);
            dataset.ids = ids;
            dataset.variables.push(Variable { name: target_name.clone(), values, info });
        } else {
            merge_into(dataset, ids, values, target_name.clone(), info, outer)?;
        }
        if dataset.len() > max_rows {
            return Err(EngineError::new(format!(
                "the dataset would exceed the row limit of {max_rows} (max_rows): import a narrower population"
            )));
        }
        self.notice(format!("{} imported as {target_name}", meta.name.as_str()));
        Ok(())
    }

    /// (unit ids ascending and unique, values aligned) of a variable at a date.
    pub(in crate::engine) async fn scan(
        &self,
        dir: &std::path::Path,
        meta: &VariableMetadata,
        date: Option<Date>,
    ) -> Result<(Int64Array, ArrayRef), EngineError> {
        let window = date.map(|d| (d, d));
        let mut batches = self.scan_spells(dir, window, &["unit_id", "value"]).await?;
        // Each batch is copied into one growing column as it arrives and then dropped, so the
        // import never holds its thousands of small filtered batches at once: those come from
        // the allocator's arenas, which keep what they free, and held together they nearly
        // doubled a workspace's peak memory.
        let mut column = Column::default();
        while let Some(batch) = batches.next().await {
            column.append(&batch?, meta)?;
        }
        column.sorted_by_unit(meta)
    }

    /// The one way the engine reads a variable's Parquet files (`import`, `import-panel` and
    /// `import-event` alike): the rows whose spell overlaps `window` (from, until; every row
    /// without one), with `columns`, as a stream. The predicate is pushed down, so row groups
    /// whose start/stop statistics cannot match are skipped. A stop for DataFusion's memory
    /// limit becomes the user's error naming `max_memory_mb`, decided on the error's kind;
    /// any other failure is a file that cannot be read, named by its variable.
    pub(in crate::engine) async fn scan_spells(
        &self,
        dir: &std::path::Path,
        window: Option<(Date, Date)>,
        columns: &[&str],
    ) -> Result<impl futures::Stream<Item = Result<RecordBatch, EngineError>> + use<>, EngineError>
    {
        let shown = dir.display().to_string();
        // A file cut short or corrupted (a copy that stopped, a bad disk) fails the one
        // variable, by name; the details, with the path, go to the operators' log only.
        let variable =
            dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let unreadable = {
            let shown = shown.clone();
            move |e: datafusion::error::DataFusionError| {
                tracing::error!(path = %shown, error = %e, "a datastore file cannot be read");
                EngineError::new(format!(
                    "the datastore's files for {variable} cannot be read (damaged or incomplete): it cannot be imported until a data steward repairs the datastore; the error is logged for the operators"
                ))
            }
        };
        let mut frame = self
            .engine
            .ctx
            .read_parquet(format!("{shown}/"), ParquetReadOptions::default())
            .await
            .map_err(&unreadable)?;
        if let Some((from, until)) = window {
            let overlapping = col("start_epoch_days").lt_eq(lit(until.epoch_days())).and(
                col("stop_epoch_days")
                    .is_null()
                    .or(col("stop_epoch_days").gt_eq(lit(from.epoch_days()))),
            );
            frame = frame.filter(overlapping).map_err(&unreadable)?;
        }
        let stream = frame
            .select_columns(columns)
            .map_err(&unreadable)?
            .execute_stream()
            .await
            .map_err(&unreadable)?;
        let max_memory_mb = self.engine.limits.max_memory_mb;
        Ok(stream.map(move |batch| {
            batch.map_err(|e| {
                if exceeds_memory_limit(&e) {
                    EngineError::new(format!(
                        "the import exceeded the memory limit of {max_memory_mb} MB (max_memory_mb)"
                    ))
                } else {
                    unreadable(e)
                }
            })
        }))
    }
}

/// Whether DataFusion stopped for the memory limit, by the error's kind (its text may change
/// between versions), looking through the context, sharing and Arrow wrappers around it.
fn exceeds_memory_limit(e: &datafusion::error::DataFusionError) -> bool {
    matches!(e.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_))
}

#[cfg(test)]
#[test]
fn the_memory_limit_is_known_by_its_kind_inside_wrappers() {
    use datafusion::error::DataFusionError as E;
    let exhausted = || E::ResourcesExhausted("Failed to allocate 1 MB".into());
    assert!(exceeds_memory_limit(&exhausted()));
    assert!(exceeds_memory_limit(&exhausted().context("reading the parquet file")));
    assert!(exceeds_memory_limit(&E::Shared(std::sync::Arc::new(exhausted()))));
    assert!(exceeds_memory_limit(&E::External(Box::new(exhausted()))));
    // Another error that only says the words is not it.
    assert!(!exceeds_memory_limit(&E::Execution("Resources exhausted".into())));
}

/// One variable's rows as they arrive from a scan: unit ids and values, each in one buffer.
#[derive(Default)]
struct Column {
    ids: Vec<i64>,
    values: Option<Values>,
}

/// A scanned value column. Datastore values are never missing (the schema says so).
enum Values {
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    /// Days since 1970-01-01, kept as whole numbers.
    Date(Vec<i64>),
    Utf8 {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
}

impl Column {
    fn append(&mut self, batch: &RecordBatch, meta: &VariableMetadata) -> Result<(), EngineError> {
        use datafusion::arrow::array::{AsArray, Date32Array, Float64Array, StringArray};
        let unexpected =
            |what: &str| EngineError::internal(format!("{} has {what}", meta.name.as_str()));
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| unexpected("unit ids that are not Int64"))?;
        let value = batch.column(1);
        if ids.null_count() > 0 || value.null_count() > 0 {
            return Err(unexpected("rows without a unit id or a value"));
        }
        self.ids.extend_from_slice(ids.values());
        let values = self.values.get_or_insert_with(|| match value.data_type() {
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Date32 => Values::Date(Vec::new()),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                Values::Utf8 { offsets: vec![0], bytes: Vec::new() }
            }
            _ => Values::Int64(Vec::new()),
        });
        match values {
            Values::Int64(v) => {
                let cast = compute::cast(value, &DataType::Int64)
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                v.extend_from_slice(
                    cast.as_primitive::<datafusion::arrow::datatypes::Int64Type>().values(),
                );
            }
            Values::Float64(v) => v.extend_from_slice(
                value
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .ok_or_else(|| unexpected("mixed value types"))?
                    .values(),
            ),
            Values::Date(v) => v.extend(
                value
                    .as_any()
                    .downcast_ref::<Date32Array>()
                    .ok_or_else(|| unexpected("mixed value types"))?
                    .values()
                    .iter()
                    .map(|&d| i64::from(d)),
            ),
            Values::Utf8 { offsets, bytes } => {
                let text = compute::cast(value, &DataType::Utf8)
                    .map_err(|e| EngineError::internal(e.to_string()))?;
                let text = text.as_any().downcast_ref::<StringArray>().invariant("cast to Utf8")?;
                for s in text.iter().flatten() {
                    bytes.extend_from_slice(s.as_bytes());
                    let end = i32::try_from(bytes.len()).map_err(|_| {
                        EngineError::new(format!(
                            "{} holds more than 2 GB of text: import it at a date",
                            meta.name.as_str()
                        ))
                    })?;
                    offsets.push(end);
                }
            }
        }
        Ok(())
    }

    /// (unit ids ascending and unique, values aligned).
    ///
    /// The rows of one date come out of each datastore file (and each row group of it) in
    /// ascending unit ids, so the rows hold a few sorted runs (more when the scan interleaves
    /// its partitions), which are merged rather than sorted from scratch. Of several rows with
    /// one id (which a validated datastore does not have), the first is kept.
    fn sorted_by_unit(
        self,
        meta: &VariableMetadata,
    ) -> Result<(Int64Array, ArrayRef), EngineError> {
        let Column { ids: scanned, values } = self;
        let values: ArrayRef = match values {
            None => Arc::new(Int64Array::from(Vec::<i64>::new())),
            Some(Values::Int64(v) | Values::Date(v)) => Arc::new(Int64Array::from(v)),
            Some(Values::Float64(v)) => Arc::new(datafusion::arrow::array::Float64Array::from(v)),
            Some(Values::Utf8 { offsets, bytes }) => Arc::new(
                datafusion::arrow::array::StringArray::try_new(
                    datafusion::arrow::buffer::OffsetBuffer::new(offsets.into()),
                    bytes.into(),
                    None,
                )
                .map_err(|e| EngineError::internal(e.to_string()))?,
            ),
        };
        if scanned.len() > u32::MAX as usize {
            return Err(EngineError::new(format!(
                "{} has more rows than one import can hold: import it at a date",
                meta.name.as_str()
            )));
        }
        if scanned.is_sorted_by(|a, b| a < b) {
            return Ok((Int64Array::from(scanned), values));
        }
        // Row numbers in the order of their ids. The standard library's stable sort finds the
        // sorted runs already there and merges them, sequentially and without comparing ids
        // within a run: several times faster here than a heap over the runs. Being stable, it
        // keeps the first row of a repeated id first.
        let mut rows: Vec<u32> = (0..scanned.len() as u32).collect();
        rows.sort_by_key(|&r| scanned[r as usize]);
        let mut ids: Vec<i64> = Vec::with_capacity(scanned.len());
        let mut repeated = false;
        rows.retain(|&r| {
            let id = scanned[r as usize];
            let new = ids.last() != Some(&id);
            if new {
                ids.push(id);
            }
            repeated |= !new;
            new
        });
        drop(scanned);
        if repeated {
            tracing::warn!(
                variable = meta.name.as_str(),
                "several values for one unit on a date; the first is used"
            );
        }
        let values = compute::take(&values, &UInt32Array::from(rows), None)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        Ok((Int64Array::from(ids), values))
    }
}

pub(in crate::engine) fn check_date(
    meta: &VariableMetadata,
    date: Option<(Date, Span)>,
    span: Span,
) -> Result<(), EngineError> {
    let name = meta.name.as_str();
    match (meta.temporality, date) {
        (Temporality::Fixed, Some((_, d))) => Err(EngineError::at(
            d,
            format!("{name} is FIXED (one value for all time): remove the date"),
        )),
        (Temporality::Fixed, None) => Ok(()),
        (t, None) => {
            let example = meta.coverage.as_ref().map_or("2021-01-01".to_owned(), |c| {
                match c.status_dates.last() {
                    Some(d) => d.to_string(),
                    None => c.latest.to_string(),
                }
            });
            Err(EngineError::at(
                span,
                format!("{name} is {} and needs a date: import … {name} {example}", t.as_str()),
            ))
        }
        (Temporality::Status, Some((d, dspan))) => {
            if let Some(c) = &meta.coverage
                && !c.status_dates.is_empty()
                && !c.status_dates.contains(&d)
            {
                let near = c
                    .status_dates
                    .iter()
                    .min_by_key(|s| (s.epoch_days() - d.epoch_days()).abs())
                    .invariant("a variable with status dates has one")?;
                return Err(EngineError::at(
                    dspan,
                    format!(
                        "{name} is measured on status dates only, and {d} is not one: the nearest is {near}"
                    ),
                ));
            }
            Ok(())
        }
        (_, Some(_)) => Ok(()),
    }
}

pub(in crate::engine) fn labels(meta: &VariableMetadata) -> Option<Arc<BTreeMap<String, String>>> {
    match &meta.value_domain {
        ValueDomain::CodeList { codes, .. } => {
            Some(Arc::new(codes.iter().map(|c| (c.code.clone(), c.label.nb.clone())).collect()))
        }
        _ => None,
    }
}

/// Left join (or full join with `outer`) of sorted (ids, values) into the dataset, whose ids
/// ascend: repeated in a dataset of spells, where each spell then gets its unit's value.
pub(in crate::engine) fn merge_into(
    dataset: &mut Dataset,
    ids: Int64Array,
    values: ArrayRef,
    name: String,
    info: VarInfo,
    outer: bool,
) -> Result<(), EngineError> {
    let arrow = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
    let left = dataset.ids.values();
    let right = ids.values();
    if !outer && left == right {
        // The same population, as when a register covers every unit: nothing to align.
        dataset.variables.push(Variable { name, values, info });
        return Ok(());
    }
    if !outer {
        // Built straight into the index array, and the new ids dropped before the values are
        // aligned: this runs while the whole workspace is held, at the import's peak.
        let mut j = 0;
        let indices: UInt32Array = left
            .iter()
            .map(|&id| {
                while j < right.len() && right[j] < id {
                    j += 1;
                }
                (j < right.len() && right[j] == id).then_some(j as u32)
            })
            .collect();
        drop(ids);
        let aligned = compute::take(&values, &indices, None).map_err(arrow)?;
        drop(values);
        dataset.variables.push(Variable { name, values: aligned, info });
        return Ok(());
    }
    // Full join: the union of ids; old variables get missing values for new units.
    let (mut union, mut from_left, mut from_right) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        let (l, r) = (left.get(i).copied(), right.get(j).copied());
        match (l, r) {
            (Some(a), Some(b)) if a == b => {
                union.push(a);
                from_left.push(Some(i as u32));
                from_right.push(Some(j as u32));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                union.push(a);
                from_left.push(Some(i as u32));
                from_right.push(None);
                i += 1;
            }
            (Some(a), None) => {
                union.push(a);
                from_left.push(Some(i as u32));
                from_right.push(None);
                i += 1;
            }
            (_, Some(b)) => {
                union.push(b);
                from_left.push(None);
                from_right.push(Some(j as u32));
                j += 1;
            }
            (None, None) => unreachable!("the loop condition"),
        }
    }
    let left_idx = UInt32Array::from(from_left);
    for v in &mut dataset.variables {
        v.values = compute::take(&v.values, &left_idx, None).map_err(arrow)?;
    }
    let aligned = compute::take(&values, &UInt32Array::from(from_right), None).map_err(arrow)?;
    dataset.ids = Int64Array::from(union);
    dataset.variables.push(Variable { name, values: aligned, info });
    Ok(())
}
