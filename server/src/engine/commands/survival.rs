//! `kaplan-meier duration event [if] [, by(v)]`: the counts of a life table in equal
//! intervals of the duration's coded range. The gate (`disclosure/survival.rs`) releases the
//! counts and computes the survival from them.

use datafusion::arrow::array::BooleanArray;

use super::dataset::Dataset;
use super::dataset::{levels, numbers};
use super::describe::{axis_range, coded, screened};
use super::{EngineError, Step};
use crate::disclosure::Gate;
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::raw::{self, Contributors, LifeGroup, LifeInterval};

/// Intervals of a life table: as many as a histogram's default bins.
pub const INTERVALS: usize = 10;

/// Counts of a life table before disclosure.
pub fn life_table_raw(
    gate: &Gate,
    dataset: &Dataset,
    keys: &[u64],
    duration: &str,
    event: &str,
    by: Option<&str>,
    mask: Option<&BooleanArray>,
) -> Result<raw::LifeTable, EngineError> {
    let get = |name: &str| {
        dataset.variable(name).ok_or_else(|| EngineError::new(format!("no variable {name}")))
    };
    let durations = numbers(get(duration)?)?;
    let events = numbers(get(event)?)?;
    // Rows that fail a check leave the sample; only many of them stop the command (rule 13).
    let events = screened(gate, keys, events, mask, |e| e == 0.0 || e == 1.0).ok_or_else(|| {
        EngineError::new(format!(
            "{event} must be 1 where the event happened and 0 where the unit was censored: make it so with generate {event}01 = {event} == <value>"
        ))
    })?;
    let durations = screened(gate, keys, durations, mask, |d| d >= 0.0).ok_or_else(|| {
        EngineError::new(format!(
            "{duration} has negative durations: survival times start at 0; keep if {duration} >= 0 first"
        ))
    })?;
    let (group_of, labels) = match by {
        Some(b) => {
            let (rows, labels) = levels(get(b)?, false, true)?;
            (Some(rows), labels)
        }
        None => (None, vec![String::new()]),
    };
    // The axis as a histogram's: from 0 to the coding bound rounded outward, never the
    // longest duration itself (rule 2).
    let (_, end) = axis_range(gate, &durations);
    let end = end.max(1.0);
    let width = end / INTERVALS as f64;
    let bounds: Vec<f64> = (0..=INTERVALS).map(|j| j as f64 * width).collect();
    let coded = coded(gate, &durations);
    let mut groups: Vec<LifeGroup> = labels
        .iter()
        .map(|label| LifeGroup {
            label: label.clone(),
            units: Contributors::default(),
            intervals: vec![LifeInterval::default(); INTERVALS],
        })
        .collect();
    let mut population = PopulationSketch::default();
    for i in 0..dataset.len() {
        if mask.is_some_and(|m| !m.value(i)) {
            continue;
        }
        let (Some(d), Some(e)) = (coded[i], events[i]) else { continue };
        let g = match &group_of {
            Some(rows) => match rows[i] {
                Some(g) => g,
                None => continue,
            },
            None => 0,
        };
        let group = &mut groups[g];
        group.units.add(keys[i]);
        dataset.add_to_population(&mut population, i);
        let j = ((d / width) as usize).min(INTERVALS - 1);
        for interval in &mut group.intervals[..=j] {
            interval.at_risk.add(keys[i]);
        }
        if e == 1.0 {
            group.intervals[j].events.add(keys[i]);
        } else {
            group.intervals[j].censored.add(keys[i]);
        }
    }
    groups.retain(|g| g.units.units > 0);
    Ok(raw::LifeTable {
        duration: duration.to_owned(),
        event: event.to_owned(),
        by: by.map(str::to_owned),
        bounds,
        groups,
        population,
    })
}

impl Step<'_> {
    pub(in crate::engine) fn kaplan_meier(&mut self) -> Result<(), EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.names_in_args()?;
        let [(duration, duration_span), (event, event_span)] = names.as_slice() else {
            return Err(EngineError::at(
                self.command().span,
                "write kaplan-meier <duration> <event> [, by(variable)], the event 1 where it happened and 0 where the unit was censored",
            ));
        };
        dataset.require(duration, dataset_name).map_err(|e| e.with_span(*duration_span))?;
        dataset.require(event, dataset_name).map_err(|e| e.with_span(*event_span))?;
        let by = self.option_text("by");
        if let Some(b) = &by {
            dataset.require(b, dataset_name).map_err(|e| e.with_span(self.option_span("by")))?;
        }
        let mask = self.mask(dataset, dataset_name)?;
        let gate = &*self.gate_for(
            dataset.copies([duration.as_str(), event.as_str()].into_iter().chain(by.as_deref())),
        );
        let keys = self.record_keys(gate, dataset);
        let raw =
            life_table_raw(gate, dataset, &keys, duration, event, by.as_deref(), mask.as_ref())
                .map_err(|e| e.with_span(*duration_span))?;
        let cleared = self.clear_one(&raw.population)?;
        let released = self.releaser.life_table(gate, &cleared, self.origin(), raw);
        self.outputs.push(released);
        Ok(())
    }
}
