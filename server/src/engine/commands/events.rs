//! `import-event alias/VAR d1 to d2 [as name]`: every spell of an EVENT variable that overlaps
//! the period, a row per spell, into an empty dataset. The spell's value is `name`, its start
//! and stop (days since 1970-01-01, as every date in expressions) are `name_start` and
//! `name_stop`; the stop is missing while the spell goes on.
//!
//! A unit can have many spells, so outputs over the rows count it once per spell: the most
//! spells any unit has is the dataset's `spells`, which multiplies the gate's thresholds as
//! `Dataset::copies` does for panels.

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{self, SortColumn};
use datafusion::arrow::datatypes::DataType;
use futures::TryStreamExt;
use shared::Date;
use shared::metadata::Temporality;
use shared::script::TokenKind;

use super::dataset::{Dataset, VarInfo, Variable};
use super::import::labels;
use super::{EngineError, Invariant, Step};

impl Step<'_> {
    pub(in crate::engine) async fn import_event(&mut self) -> Result<(), EngineError> {
        let usage = "write import-event <alias>/<VARIABLE> <date> to <date> [as name], such as import-event db/ARBSOEK_ARBSOKERSTATUS 2020-01-01 to 2020-12-31 as seeker";
        let t = self.command().args.clone();
        let src = self.source();
        let ident = |i: usize| t.get(i).filter(|t| t.kind == TokenKind::Ident);
        let date = |i: usize| -> Result<Option<(Date, shared::script::Span)>, EngineError> {
            match t.get(i).filter(|t| t.kind == TokenKind::Date) {
                Some(d) => {
                    d.span.text(src).parse().map(|parsed| Some((parsed, d.span))).map_err(
                        |e: shared::date::DateError| EngineError::at(d.span, e.to_string()),
                    )
                }
                None => Ok(None),
            }
        };
        let (Some(alias), Some(slash), Some(variable)) = (ident(0), t.get(1), ident(2)) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        let to = ident(4).filter(|w| w.span.text(src) == "to");
        let (Some((from, _)), Some(_), Some((until, until_span))) = (date(3)?, to, date(5)?) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        if slash.kind != TokenKind::Slash {
            return Err(EngineError::at(slash.span, usage));
        }
        if until < from {
            return Err(EngineError::at(
                until_span,
                format!("the period ends ({until}) before it starts ({from})"),
            ));
        }
        let name = match (ident(6), ident(7)) {
            (None, None) if t.len() == 6 => variable.span.text(src).to_owned(),
            (Some(a), Some(n)) if a.span.text(src) == "as" && t.len() == 8 => {
                n.span.text(src).to_owned()
            }
            _ => return Err(EngineError::at(self.command().span, usage)),
        };
        let (origin, version, meta) = self.resolve_variable(
            alias.span.text(src),
            alias.span,
            variable.span.text(src),
            variable.span,
        )?;
        if meta.temporality != Temporality::Event {
            return Err(EngineError::at(
                variable.span,
                format!(
                    "{} is {}, not EVENT: import-event takes spells; import it with a date instead",
                    meta.name.as_str(),
                    meta.temporality.as_str()
                ),
            ));
        }
        let dataset_name = self.current_name()?;
        if self.workspace.datasets[&dataset_name].unit_type.is_some() {
            return Err(EngineError::at(
                self.command().name_span,
                format!(
                    "import-event fills an empty dataset and {dataset_name} has data: create-dataset a new one first (one event variable per dataset)"
                ),
            ));
        }

        let dir = version.data_dir(&meta.name);
        let batches: Vec<RecordBatch> = self
            .scan_spells(
                &dir,
                Some((from, until)),
                &["unit_id", "value", "start_epoch_days", "stop_epoch_days"],
            )
            .await?
            .try_collect()
            .await?;
        let Some(schema) = batches.first().map(|b| b.schema()) else {
            return Err(EngineError::at(
                variable.span,
                format!("{} has no spells between {from} and {until}", meta.name.as_str()),
            ));
        };
        let arrow = |e: datafusion::arrow::error::ArrowError| EngineError::internal(e.to_string());
        let all = compute::concat_batches(&schema, &batches).map_err(arrow)?;
        if all.num_rows() > self.engine.limits.max_rows {
            return Err(EngineError::new(format!(
                "the spells would exceed the row limit of {} (max_rows): import a shorter period",
                self.engine.limits.max_rows
            )));
        }
        let as_int64 = |a: &ArrayRef| -> Result<ArrayRef, EngineError> {
            match a.data_type() {
                DataType::Date32 => compute::cast(
                    &compute::cast(a, &DataType::Int32).map_err(arrow)?,
                    &DataType::Int64,
                )
                .map_err(arrow),
                _ => compute::cast(a, &DataType::Int64).map_err(arrow),
            }
        };
        let (ids, start, stop) =
            (all.column(0).clone(), as_int64(all.column(2))?, as_int64(all.column(3))?);
        let mut values = all.column(1).clone();
        if values.data_type() == &DataType::Date32 {
            values = as_int64(&values)?;
        }
        if matches!(values.data_type(), DataType::Utf8View | DataType::LargeUtf8) {
            values = compute::cast(&values, &DataType::Utf8).map_err(arrow)?;
        }
        // By unit, then start: a unit's spells side by side, in time order.
        let order = compute::lexsort_to_indices(
            &[
                SortColumn { values: ids.clone(), options: None },
                SortColumn { values: start.clone(), options: None },
            ],
            None,
        )
        .map_err(arrow)?;
        let take = |a: &ArrayRef, order: &UInt32Array| compute::take(a, order, None).map_err(arrow);
        let ids = take(&ids, &order)?;
        let ids = ids
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| EngineError::internal("unit_id is not Int64"))?;
        let mut most = 0u64;
        let mut run = 0u64;
        for i in 0..ids.len() {
            run = if i > 0 && ids.value(i) == ids.value(i - 1) { run + 1 } else { 1 };
            most = most.max(run);
        }
        let source = format!("{}/{} {from} to {until}", alias.span.text(src), meta.name.as_str());
        let info = |labels| VarInfo { labels, pointer: false, source: source.clone(), copies: 1 };
        let dataset = Dataset {
            unit_type: Some(meta.unit_type),
            origin: Some(origin),
            ids,
            variables: vec![
                Variable {
                    name: name.clone(),
                    values: take(&values, &order)?,
                    info: VarInfo { pointer: meta.points_to.is_some(), ..info(labels(meta)) },
                },
                Variable {
                    name: format!("{name}_start"),
                    values: take(&start, &order)?,
                    info: info(None),
                },
                Variable {
                    name: format!("{name}_stop"),
                    values: take(&stop, &order)?,
                    info: info(None),
                },
            ],
            members: None,
            panel: None,
            spells: Some(most),
        };
        *self
            .workspace
            .datasets
            .get_mut(&dataset_name)
            .invariant("the current dataset exists")? = dataset;
        self.notice(format!(
            "{} imported as spells: {name}, {name}_start, {name}_stop",
            meta.name.as_str()
        ));
        Ok(())
    }
}
