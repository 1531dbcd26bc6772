//! `kaplan-meier` as a life table: survival at grouped times, computed from released counts
//! only.
//!
//! A Kaplan–Meier curve steps at every event time, and each step's size with its risk set
//! gives away single units' event times near the tail. So the engine counts units at risk,
//! events and censorings in equal intervals over the coded range of the duration (like a
//! histogram's bins), and this module perturbs those counts (rule 5), merges an interval
//! into the next until its events and censorings are not small cells (rule 6), ends the curve
//! where fewer than the threshold remain at risk, and only then computes the survival by the
//! actuarial (life-table) estimator from the released counts. Nothing it shows depends on a
//! count that was not released.

use super::memory::Cleared;
use shared::output::{self, OutputBody};

use super::raw::{self, Contributors};
use super::{Decision, Gate, Origin, Released, Releaser};

/// Survival after each interval by the actuarial estimator: with n at risk at its start, d
/// events and c censorings in it, S ← S·(1 − d / (n − c/2)).
pub fn actuarial_survival(intervals: &[(f64, f64, f64)]) -> Vec<f64> {
    let mut survival = 1.0;
    intervals
        .iter()
        .map(|&(n, d, c)| {
            let exposed = n - c / 2.0;
            if exposed > 0.0 {
                survival *= (1.0 - d / exposed).max(0.0);
            }
            survival
        })
        .collect()
}

impl Releaser<'_> {
    pub fn life_table(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        table: raw::LifeTable,
    ) -> Released {
        let started = std::time::Instant::now();
        let rules = gate.rules();
        let min = rules.min_cell;
        let mut row_labels = Vec::new();
        let mut cells = Vec::new();
        let mut merged_intervals = 0;
        let mut ended_early = 0;
        let prefix = |label: &str| match &table.by {
            Some(by) => format!("{by}={label}: "),
            None => String::new(),
        };
        for group in &table.groups {
            if let Err(refusal) = gate.check_statistics_population(group.units.units) {
                if table.groups.len() == 1 {
                    self.account(started.elapsed());
                    return self.refusal(origin, refusal);
                }
                row_labels.push(format!("{}withheld", prefix(&group.label)));
                cells.push(vec![None; 4]);
                continue;
            }
            let k = group.intervals.len();
            let mut released: Vec<(String, f64, f64, f64)> = Vec::new();
            let mut j = 0;
            while j < k {
                let (at_risk, small) = gate.released_count(group.intervals[j].at_risk);
                if small || group.intervals[j].at_risk.units == 0 {
                    ended_early += usize::from(j < k);
                    break;
                }
                let mut events = group.intervals[j].events;
                let mut censored = group.intervals[j].censored;
                let mut end = j + 1;
                let is_small = |c: &Contributors| c.units > 0 && c.units < min;
                while (is_small(&events) || is_small(&censored)) && end < k {
                    events = events.merged(group.intervals[end].events);
                    censored = censored.merged(group.intervals[end].censored);
                    end += 1;
                    merged_intervals += 1;
                }
                let (d, d_small) = gate.released_count(events);
                let (c, c_small) = gate.released_count(censored);
                if d_small || c_small {
                    // The last intervals together still hold a small cell: the curve ends.
                    ended_early += 1;
                    break;
                }
                let label = format!(
                    "{}[{}, {}{}",
                    prefix(&group.label),
                    super::significant(table.bounds[j], 6),
                    super::significant(table.bounds[end], 6),
                    if end == k { "]" } else { ")" }
                );
                released.push((label, at_risk as f64, d as f64, c as f64));
                j = end;
            }
            let survival = actuarial_survival(
                &released.iter().map(|&(_, n, d, c)| (n, d, c)).collect::<Vec<_>>(),
            );
            for ((label, n, d, c), s) in released.into_iter().zip(survival) {
                row_labels.push(label);
                cells.push(vec![Some(n), Some(d), Some(c), Some(super::significant(s, 4))]);
            }
        }
        let decisions = vec![
            Decision { rule: 3, outcome: "passed".into() },
            Decision { rule: 5, outcome: "counts perturbed".into() },
            Decision {
                rule: 6,
                outcome: format!(
                    "{merged_intervals} intervals merged, {ended_early} curves ended early"
                ),
            },
        ];
        let body = OutputBody::Table(output::Table {
            title: format!("Survival of {} (event: {}), life table", table.duration, table.event),
            statistic: "survival".into(),
            row_variable: match &table.by {
                Some(by) => format!("{by}: interval of {}", table.duration),
                None => format!("interval of {}", table.duration),
            },
            column_variable: None,
            row_labels,
            column_labels: vec![
                "at risk".into(),
                "events".into(),
                "censored".into(),
                "survival".into(),
            ],
            cells,
            totals: false,
            notes: vec![
                format!(
                    "Durations coded to P{}–P{}; counts perturbed. An interval whose events or censorings are under {min} is merged with the next; the curve ends where fewer than {min} are at risk.",
                    rules.coding_percentiles.0, rules.coding_percentiles.1
                ),
                "Survival at the end of each interval by the actuarial estimator, S × (1 − events / (at risk − censored/2)), from the counts shown.".into(),
            ],
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

#[cfg(test)]
mod tests {
    use super::actuarial_survival;

    #[test]
    fn the_actuarial_estimator_counts_censorings_as_half_exposed() {
        // 100 at risk, 10 events, 20 censored: 1 − 10/90; then 70 at risk, 7 events, none.
        let s = actuarial_survival(&[(100.0, 10.0, 20.0), (70.0, 7.0, 0.0)]);
        assert!((s[0] - 80.0 / 90.0).abs() < 1e-12);
        assert!((s[1] - 80.0 / 90.0 * 0.9).abs() < 1e-12);
    }
}
