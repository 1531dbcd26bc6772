//! `reshape-to-panel` and `reshape-from-panel`: between one variable per date (wide, a row per
//! unit) and a panel (long, a row per unit and date; see `panel.rs`). A wide variable is named
//! by its prefix and a date: `wage_2019` (1 January of the year) or `wage_20190630`.

use std::collections::BTreeSet;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, UInt32Array, new_null_array};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use shared::Date;

use super::dataset::{Dataset, Kind, Panel, VarInfo, Variable};
use super::{EngineError, Invariant, Step};

/// The date a wide variable's suffix names: `2019` or `20190630`.
fn date_suffix(suffix: &str) -> Option<Date> {
    if !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match suffix.len() {
        4 => Date::from_ymd(suffix.parse().ok()?, 1, 1),
        8 => Date::from_ymd(
            suffix[..4].parse().ok()?,
            suffix[4..6].parse().ok()?,
            suffix[6..].parse().ok()?,
        ),
        _ => None,
    }
}

/// The suffixes of a panel's dates: years when every date is 1 January, else YYYYMMDD.
fn suffixes(dates: &[i32]) -> Vec<String> {
    let dates: Vec<(i32, u32, u32)> =
        dates.iter().map(|&d| Date::from_epoch_days(d).ymd()).collect();
    let years_only = dates.iter().all(|&(_, m, d)| m == 1 && d == 1);
    dates
        .iter()
        .map(|&(y, m, d)| if years_only { format!("{y}") } else { format!("{y}{m:02}{d:02}") })
        .collect()
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> EngineError {
    EngineError::internal(e.to_string())
}

impl Step<'_> {
    /// `reshape-to-panel prefix…`: each prefix's dated variables become one variable (the
    /// prefix without a trailing `_`) on a row per unit and date; the other variables are
    /// repeated on each of a unit's rows.
    pub(in crate::engine) fn reshape_to_panel(&mut self) -> Result<(), EngineError> {
        let prefixes = self.names_in_args()?;
        let (dataset_name, dataset) = self.populated()?;
        dataset.require_cross_section(dataset_name, "reshape-to-panel")?;
        if dataset.members.is_some() {
            return Err(EngineError::at(
                self.command().name_span,
                format!(
                    "dataset {dataset_name} holds groups made by collapse: reshape a dataset of units, then collapse"
                ),
            ));
        }
        if prefixes.is_empty() {
            return Err(EngineError::at(
                self.command().span,
                "write reshape-to-panel <prefix>…, such as reshape-to-panel wage_ for wage_2019 wage_2020",
            ));
        }
        // (long name, [(date, variable index)]) per prefix.
        let mut reshaped: Vec<(String, Vec<(i32, usize)>)> = Vec::new();
        let mut used = BTreeSet::new();
        for (prefix, span) in &prefixes {
            let matched: Vec<(i32, usize)> = dataset
                .variables
                .iter()
                .enumerate()
                .filter_map(|(j, v)| {
                    let date = date_suffix(v.name.strip_prefix(prefix.as_str())?)?;
                    Some((date.epoch_days(), j))
                })
                .collect();
            if matched.is_empty() {
                return Err(EngineError::at(
                    *span,
                    format!(
                        "no variable is named {prefix} followed by a year or a date, such as {prefix}2019 or {prefix}20190101"
                    ),
                ));
            }
            let long = prefix.trim_end_matches('_').to_owned();
            if long.is_empty() {
                return Err(EngineError::at(*span, "a prefix needs a name before the date"));
            }
            let kinds: BTreeSet<&str> = matched
                .iter()
                .map(|&(_, j)| Kind::of(dataset.variables[j].values.data_type()).describe())
                .collect();
            if kinds.len() > 1 {
                return Err(EngineError::at(
                    *span,
                    format!(
                        "the {prefix} variables hold different kinds of values ({}): make them alike with destring or generate first",
                        kinds.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            used.extend(matched.iter().map(|&(_, j)| j));
            reshaped.push((long, matched));
        }
        for (long, _) in &reshaped {
            if let Some(j) = dataset.position(long)
                && !used.contains(&j)
            {
                return Err(EngineError::at(
                    self.command().span,
                    format!(
                        "dataset {dataset_name} already has a variable {long}: rename it first"
                    ),
                ));
            }
        }
        let dates: Vec<i32> = reshaped
            .iter()
            .flat_map(|(_, m)| m.iter().map(|&(d, _)| d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (n, t) = (dataset.len(), dates.len());
        let max_rows = self.engine.limits.max_rows;
        if n * t > max_rows {
            return Err(EngineError::new(format!(
                "the panel would have more than the row limit of {max_rows} (max_rows): reshape fewer dates"
            )));
        }
        // Row r of the panel is unit r / t on date r % t.
        let repeat =
            UInt32Array::from_iter_values((0..n as u32).flat_map(|i| std::iter::repeat_n(i, t)));
        let mut variables = Vec::new();
        for (j, v) in dataset.variables.iter().enumerate() {
            if used.contains(&j) {
                continue;
            }
            variables.push(Variable {
                name: v.name.clone(),
                values: compute::take(&v.values, &repeat, None).map_err(arrow)?,
                info: v.info.clone(),
            });
        }
        for (long, matched) in &reshaped {
            let wide: Vec<&Variable> =
                matched.iter().map(|&(_, j)| &dataset.variables[j]).collect();
            let numeric = wide.iter().any(|v| v.values.data_type() != wide[0].values.data_type());
            let cast = |a: &ArrayRef| -> Result<ArrayRef, EngineError> {
                if numeric {
                    compute::cast(a, &DataType::Float64).map_err(arrow)
                } else {
                    Ok(a.clone())
                }
            };
            let data_type = cast(&wide[0].values)?.data_type().clone();
            let mut by_date: Vec<ArrayRef> = Vec::with_capacity(t);
            for &date in &dates {
                by_date.push(match matched.iter().position(|&(d, _)| d == date) {
                    Some(at) => cast(&wide[at].values)?,
                    None => new_null_array(&data_type, n),
                });
            }
            let refs: Vec<&dyn Array> = by_date.iter().map(|a| a.as_ref()).collect();
            let indices: Vec<(usize, usize)> =
                (0..n).flat_map(|i| (0..t).map(move |d| (d, i))).collect();
            let values = compute::interleave(&refs, &indices).map_err(arrow)?;
            let sources: Vec<&str> = wide.iter().map(|v| v.name.as_str()).collect();
            variables.push(Variable {
                name: long.clone(),
                values,
                info: VarInfo {
                    labels: wide[0].info.labels.clone(),
                    pointer: wide.iter().any(|v| v.info.pointer),
                    source: format!("reshape-to-panel of {}", sources.join(", ")),
                    copies: wide.iter().map(|v| v.info.copies()).max().unwrap_or(1),
                },
            });
        }
        let ids = compute::take(&dataset.ids, &repeat, None).map_err(arrow)?;
        let long = Dataset {
            unit_type: dataset.unit_type,
            origin: dataset.origin.clone(),
            ids: ids.as_any().downcast_ref::<Int64Array>().cloned().invariant("ids are Int64")?,
            variables,
            members: None,
            panel: Some(Panel { dates, rows: (0..n * t).map(|r| (r % t) as u32).collect() }),
            spells: None,
        };
        let names: Vec<&str> = reshaped.iter().map(|(l, _)| l.as_str()).collect();
        let message = format!("{} reshaped to a panel at {t} dates", names.join(", "));
        *self.current_mut()? = long;
        self.notice(message);
        Ok(())
    }

    /// `reshape-from-panel`: a row per unit; a variable that changes over a unit's dates
    /// becomes one per date (`name_2019`), one that never does stays one variable.
    pub(in crate::engine) fn reshape_from_panel(&mut self) -> Result<(), EngineError> {
        if let Some(extra) = self.command().args.first() {
            return Err(EngineError::at(extra.span, "reshape-from-panel takes no arguments"));
        }
        let (dataset_name, dataset) = self.populated()?;
        let Some(panel) = &dataset.panel else {
            return Err(EngineError::at(
                self.command().name_span,
                format!("dataset {dataset_name} is not a panel: it has a row per unit already"),
            ));
        };
        // Each unit's first row, and the row of each (unit, date).
        let mut units: Vec<i64> = Vec::new();
        let mut first_row: Vec<u32> = Vec::new();
        let t = panel.dates.len();
        let mut at: Vec<Option<u32>> = Vec::new();
        for i in 0..dataset.len() {
            let id = dataset.ids.value(i);
            if units.last() != Some(&id) {
                units.push(id);
                first_row.push(i as u32);
                at.extend(std::iter::repeat_n(None, t));
            }
            at[(units.len() - 1) * t + panel.rows[i] as usize] = Some(i as u32);
        }
        let suffixes = suffixes(&panel.dates);
        let mut variables = Vec::new();
        for v in &dataset.variables {
            let varies = (1..dataset.len()).any(|i| {
                dataset.ids.value(i) == dataset.ids.value(i - 1)
                    && (v.values.is_null(i) != v.values.is_null(i - 1)
                        || (v.values.is_valid(i)
                            && super::dataset::display(&v.values, i)
                                != super::dataset::display(&v.values, i - 1)))
            });
            if !varies {
                variables.push(Variable {
                    name: v.name.clone(),
                    values: compute::take(&v.values, &UInt32Array::from(first_row.clone()), None)
                        .map_err(arrow)?,
                    info: v.info.clone(),
                });
                continue;
            }
            for (d, suffix) in suffixes.iter().enumerate() {
                let name = format!("{}_{suffix}", v.name);
                if dataset.variable(&name).is_some() {
                    return Err(EngineError::new(format!(
                        "dataset {dataset_name} already has a variable {name}: rename it before reshape-from-panel"
                    )));
                }
                let rows: UInt32Array = (0..units.len()).map(|u| at[u * t + d]).collect();
                variables.push(Variable {
                    name,
                    values: compute::take(&v.values, &rows, None).map_err(arrow)?,
                    info: VarInfo {
                        source: format!("{} on {}", v.name, Date::from_epoch_days(panel.dates[d])),
                        ..v.info.clone()
                    },
                });
            }
        }
        let wide = Dataset {
            unit_type: dataset.unit_type,
            origin: dataset.origin.clone(),
            ids: Int64Array::from(units),
            variables,
            members: None,
            panel: None,
            spells: None,
        };
        let message = format!("{dataset_name} reshaped to a row per unit, a variable per date");
        *self.current_mut()? = wide;
        self.notice(message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_name_years_or_days() {
        assert_eq!(date_suffix("2019"), Date::from_ymd(2019, 1, 1));
        assert_eq!(date_suffix("20190630"), Date::from_ymd(2019, 6, 30));
        assert_eq!(date_suffix("2019_"), None);
        assert_eq!(date_suffix("201906"), None);
        assert_eq!(date_suffix("20191340"), None);
        let jan = |y| Date::from_ymd(y, 1, 1).unwrap().epoch_days();
        assert_eq!(suffixes(&[jan(2019), jan(2020)]), ["2019", "2020"]);
        let june = Date::from_ymd(2020, 6, 30).unwrap().epoch_days();
        assert_eq!(suffixes(&[jan(2019), june]), ["20190101", "20200630"]);
    }
}
