//! Disclosure control: the only way from a computed aggregate to something a user may see.
//!
//! The engine computes [`raw`] aggregates (counts with contributor keys, magnitudes with their
//! largest contributions, percentiles with the units beside them, fitted models). A
//! [`Releaser`] applies the rules of ../shared/reference/disclosure.md to them and returns
//! [`Released`] outputs, writing each to the audit log as it is made. `Released` has private
//! fields and no other constructor, and the HTTP and CLI layers accept nothing else; a test in
//! `tests/tests/invariants.rs` fails if code outside this module builds a `shared::output`
//! value.
//!
//! Refusals ([`Refusal`]) name the rule and how to proceed, never the protected number.

pub mod audit;
pub mod ckm;
pub mod differencing;
pub mod memory;
pub mod raw;
mod release;
pub mod rules;
pub mod survival;

use shared::output::{Output, OutputBody};

pub use audit::{AuditEntry, AuditLog};
use ckm::{CellKey, PerturbationTable, RecordKeySecret};
pub use release::BarLayout;
pub use rules::Rules;

/// The rules and secrets of one datastore version.
#[derive(Clone, Debug)]
pub struct Gate {
    rules: Rules,
    secret: RecordKeySecret,
    table: PerturbationTable,
    /// How many units may share each value of the output (see [`Gate::for_copies`]).
    copies: u64,
}

impl Gate {
    pub fn new(rules: Rules, secret: RecordKeySecret) -> Gate {
        let table = PerturbationTable::new(rules.ckm());
        Gate { rules, secret, table, copies: 1 }
    }

    /// The gate for an output over values that `aggregate` or `merge` copied onto up to
    /// `copies` units each. Every unit threshold (cells, statistics, percentiles, models,
    /// levels) is multiplied by `copies`, and the dominance rule and magnitude noise treat the
    /// largest value as `copies` contributions of one unit: ten copies of one wage then count
    /// as one contributor, which is what they are.
    pub fn for_copies(&self, copies: u64) -> std::borrow::Cow<'_, Gate> {
        if copies <= 1 {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut gate = self.clone();
        let rules = &mut gate.rules;
        for threshold in [
            &mut rules.min_units_for_statistics,
            &mut rules.min_cell,
            &mut rules.min_units_beside_percentile,
            &mut rules.min_model_n,
            &mut rules.min_residual_df,
            &mut rules.min_level_units,
        ] {
            *threshold = threshold.saturating_mul(copies);
        }
        gate.copies = copies;
        std::borrow::Cow::Owned(gate)
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// A unit's record key. Keys are harmless to hold inside the server: without the secret they
    /// say nothing, and they only ever leave summed into a perturbation.
    pub fn record_key(&self, unit_id: i64) -> u64 {
        self.secret.record_key(unit_id)
    }

    /// The record keys of many units at once (one per id, in order).
    pub fn record_keys(&self, unit_ids: &datafusion::arrow::array::Int64Array) -> Vec<u64> {
        unit_ids.values().iter().map(|&id| self.secret.record_key(id)).collect()
    }

    /// Rule 3: a dataset may not shrink below the population floor.
    pub fn check_population(&self, remaining: u64) -> Result<(), Refusal> {
        if remaining < self.rules.population_floor {
            return Err(Refusal::new(
                3,
                format!(
                    "this would leave fewer than {} units in the dataset (rule 3, population floor): choose a wider condition, or tabulate the group instead of keeping it",
                    self.rules.population_floor
                ),
            ));
        }
        Ok(())
    }

    /// Rule 13: whether rows count as many where a command decides something on them: so many
    /// fail a check on their values (a negative duration, an event other than 0/1) that the
    /// command stops with an error, or a level holds enough units to be a second level. It is
    /// decided on the rows' perturbed count: an error raised for a single row would answer a
    /// yes/no question about that row's value, and a binary search on a threshold would read
    /// the value off. Rows that fail a check but are not many leave the sample quietly.
    pub fn counts_as_many(&self, rows: raw::Contributors) -> bool {
        rows.units > 0 && self.perturb(rows) >= self.rules.min_change
    }

    /// Rule 13: a count a command draws on (`sample <n>` against the dataset's size), as the
    /// gate would release it, so that what the command does cannot tell the exact count.
    pub fn perturbed_count(&self, rows: raw::Contributors) -> u64 {
        self.perturb(rows)
    }

    /// Rule 4: a change of 1..min_change units, or one that leaves 1..min_change unchanged.
    pub fn check_change(&self, changed: u64, unchanged: u64) -> Result<(), Refusal> {
        self.minimum_change(changed, unchanged, "this would change, or leave unchanged,")
    }

    /// Rule 4 for a part of an expression (a comparison, a logical operator, a rounding): the
    /// part holds for `held` units and not for `not_held`; 1..min_change on either side would
    /// single those units out, however the expression goes on to use them.
    pub fn check_split(&self, held: u64, not_held: u64) -> Result<(), Refusal> {
        self.minimum_change(
            held,
            not_held,
            "a comparison or rounding in this expression would set apart, even inside arithmetic,",
        )
    }

    /// Rule 4 for arithmetic that singles out without a comparison: a part of an expression
    /// whose variation (squared distance from its median) lies for the most part in fewer than
    /// `min_change` units, when its inputs' does not. exp(-1000·(wealth − k)²) is 1 for the
    /// one unit with wealth k and exactly 0 for everyone else, an indicator without `==`;
    /// multiplied into a copy of a variable it changes that unit's value alone.
    /// `share` is the part's share of variation in its `min_change − 1` farthest units, and
    /// `inputs` the largest such share of the variables it reads.
    pub fn check_concentration(&self, share: f64, inputs: f64) -> Result<(), Refusal> {
        if share >= CONCENTRATED_SHARE && share >= inputs + CONCENTRATION_MARGIN {
            return Err(Refusal::new(
                4,
                format!(
                    "a part of this expression is far from its usual value for fewer than {} units, which sets them apart as a comparison would (rule 4, minimum change): rewrite it so that at least {} units share its variation",
                    self.rules.min_change, self.rules.min_change
                ),
            ));
        }
        Ok(())
    }

    /// The units a part of an expression may not concentrate its variation in (rule 4).
    pub fn concentration_units(&self) -> usize {
        self.rules.min_change.saturating_sub(1) as usize
    }

    fn minimum_change(&self, one_side: u64, other_side: u64, what: &str) -> Result<(), Refusal> {
        let min = self.rules.min_change;
        let small = |n: u64| (1..min).contains(&n);
        if small(one_side) || small(other_side) {
            return Err(Refusal::new(
                4,
                format!(
                    "{what} between 1 and {} units (rule 4, minimum change): widen or narrow it so that at least {min} units are on each side",
                    min - 1
                ),
            ));
        }
        Ok(())
    }

    /// Rule 4 for a new variable: every value it takes must be held by 0 or ≥ min_change units,
    /// so no value singles out a few units.
    pub fn check_value_classes(
        &self,
        class_sizes: impl IntoIterator<Item = u64>,
    ) -> Result<(), Refusal> {
        for n in class_sizes {
            self.check_change(n, 0)?;
        }
        Ok(())
    }

    /// Rule 11: an output over a population that differs from an earlier one by 1..min_change
    /// units would give that small group away by subtraction, and is refused. One that differs
    /// by min_change..2·min_change units passes, but the difference is returned so the output
    /// can be flagged for a steward: a run of such outputs is how a patient attacker would go.
    pub fn check_differencing<'s>(
        &self,
        earlier: impl IntoIterator<Item = &'s differencing::PopulationSketch>,
        population: &differencing::PopulationSketch,
    ) -> Result<Option<usize>, Refusal> {
        let min = self.rules.min_change as usize;
        let mut near = None;
        for e in earlier {
            // The sizes bound the difference from below: far apart, nothing to decode.
            if e.len().abs_diff(population.len()) >= 2 * min as u64 {
                continue;
            }
            match e.difference(population) {
                Some(d) if (1..min).contains(&d) => {
                    return Err(Refusal::new(
                        11,
                        format!(
                            "this output's population differs from an earlier output's by fewer than {min} units, so comparing the two would reveal those units (rule 11, differencing); it is logged for review. Use groups that differ by at least {min} units"
                        ),
                    ));
                }
                Some(d) if (min..2 * min).contains(&d) => {
                    near = Some(near.map_or(d, |n: usize| n.min(d)));
                }
                _ => {}
            }
        }
        Ok(near)
    }

    /// Rule 11's budget: a workspace that has met `refusals` refusals of rules 4 and 11 runs
    /// nothing more once they reach `max_refusals`. Each such refusal is a yes/no answer on
    /// exact data; the budget bounds how many one workspace gets.
    pub fn check_refusal_budget(&self, refusals: u32) -> Result<(), Refusal> {
        let budget = self.rules.max_refusals;
        if refusals < budget {
            return Ok(());
        }
        Err(Refusal::new(
            11,
            format!(
                "this workspace has met {budget} refusals of rules 4 and 11 (max_refusals), so it runs nothing more; this is logged for a data steward's review"
            ),
        ))
    }

    /// Rule 9: every level of a categorical regressor, or of a binary or categorical outcome,
    /// needs `min_level_units` units. Checked before a model is fitted too, so that a failed fit
    /// cannot say what a small level holds.
    pub fn check_levels(
        &self,
        variable: &str,
        levels: &[u64],
        outcome: bool,
    ) -> Result<(), Refusal> {
        if levels.iter().any(|&u| u < self.rules.min_level_units) {
            let what = if outcome { "an outcome level" } else { "a level" };
            let fix = if outcome {
                "group the outcome's levels"
            } else {
                "group its small levels with recode"
            };
            return Err(Refusal::new(
                9,
                format!(
                    "{what} of {variable} has fewer than {} units (rule 9): {fix}",
                    self.rules.min_level_units
                ),
            ));
        }
        Ok(())
    }

    /// Rule 9 for one part of a model fitted in parts (each group of an `oaxaca`, each side
    /// of an `rdd`): the part needs `min_model_n` units, three per parameter and
    /// `min_residual_df` residual degrees of freedom, as a model of its own would.
    pub fn check_model_part(
        &self,
        part: &str,
        units: u64,
        parameters: usize,
        fix: &str,
    ) -> Result<(), Refusal> {
        let rules = &self.rules;
        let enough = units >= rules.min_model_n
            && parameters as u64 * 3 <= units
            && units.saturating_sub(parameters as u64) >= rules.min_residual_df;
        if !enough {
            return Err(Refusal::new(
                9,
                format!(
                    "{part} has too few units for a model with {parameters} parameters (rule 9: at least {}, three per parameter and {} residual degrees of freedom): {fix}",
                    rules.min_model_n, rules.min_residual_df
                ),
            ));
        }
        Ok(())
    }

    /// Rule 3 for statistics on a subpopulation.
    pub fn check_statistics_population(&self, units: u64) -> Result<(), Refusal> {
        if units < self.rules.min_units_for_statistics {
            return Err(Refusal::new(
                3,
                format!(
                    "statistics need at least {} units (rule 3): widen the condition or the group",
                    self.rules.min_units_for_statistics
                ),
            ));
        }
        Ok(())
    }

    /// The coding bounds of rule 7 for a column: its P1 and P99 (linear interpolation). The
    /// values, in any order, are reordered.
    pub fn coding_bounds(&self, values: &mut [f64]) -> Option<(f64, f64)> {
        let (lo, hi) = self.rules.coding_percentiles;
        Some((
            crate::stats::quantile_unsorted(values, lo / 100.0)?,
            crate::stats::quantile_unsorted(values, hi / 100.0)?,
        ))
    }

    fn perturb(&self, contributors: raw::Contributors) -> u64 {
        self.table.perturb(contributors.units, contributors.key)
    }
}

/// A rule said no. The message names the rule and what to do, never the protected number.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub rule: u32,
    pub message: String,
}

impl Refusal {
    fn new(rule: u32, message: String) -> Refusal {
        Refusal { rule, message }
    }
}

/// One rule's decision on one output, kept in the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Decision {
    pub rule: u32,
    pub outcome: String,
}

/// An output that passed the gate. The only thing the HTTP and CLI layers can send.
#[derive(Clone, Debug, PartialEq)]
pub struct Released {
    output: Output,
    decisions: Vec<Decision>,
}

impl Released {
    pub fn output(&self) -> &Output {
        &self.output
    }

    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }
}

impl serde::Serialize for Released {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.output.serialize(serializer)
    }
}

/// Where an output comes from: the script line and command.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub line: u32,
    pub command: &'a str,
}

/// Releases the outputs of one script run, and writes each to the audit log.
pub struct Releaser<'a> {
    audit: &'a dyn AuditLog,
    user: &'a str,
    script_hash: String,
    /// Time spent on disclosure work in this run, for the benchmark's gate share.
    gate_nanos: std::sync::atomic::AtomicU64,
    /// A review flag for the next output's audit entry.
    review: std::sync::Mutex<Option<String>>,
}

impl<'a> Releaser<'a> {
    pub fn new(audit: &'a dyn AuditLog, user: &'a str, script: &str) -> Releaser<'a> {
        Releaser {
            audit,
            user,
            script_hash: audit::script_hash(script),
            gate_nanos: std::sync::atomic::AtomicU64::new(0),
            review: std::sync::Mutex::new(None),
        }
    }

    /// Adds disclosure work done outside the releaser (record keys) to this run's gate time.
    pub fn account(&self, elapsed: std::time::Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.gate_nanos.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn gate_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.gate_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn emit(&self, origin: Origin<'_>, body: OutputBody, decisions: Vec<Decision>) -> Released {
        let output = Output { line: origin.line, command: origin.command.to_owned(), body };
        let mut entry = AuditEntry::new(self.user, &self.script_hash, &output, &decisions);
        let pending = self.review.lock().unwrap_or_else(|p| p.into_inner()).take();
        entry.review = pending.or_else(|| {
            decisions
                .iter()
                .any(|d| d.rule == 11 && d.outcome == "refused")
                .then(|| "refused as differencing (rule 11)".to_owned())
        });
        if self.audit.record(&entry).is_err() {
            // Fail closed: what the log does not hold is not released. The message says
            // nothing of the output, so it needs no entry of its own.
            let message = "the output was withheld because the audit log cannot be written: tell your data steward, and run the script again later".to_owned();
            let body = OutputBody::Error { message, column: None, rule: None };
            let output = Output { line: output.line, command: output.command, body };
            return Released { output, decisions: Vec::new() };
        }
        Released { output, decisions }
    }

    /// Flags the next output for steward review in the audit log, with the reason.
    pub fn flag_for_review(&self, reason: String) {
        *self.review.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// A message that carries no data: what a command did, help text, a text block.
    pub fn notice(&self, origin: Origin<'_>, message: String) -> Released {
        self.emit(origin, OutputBody::Notice { message }, Vec::new())
    }

    pub fn text(&self, origin: Origin<'_>, markdown: String) -> Released {
        self.emit(origin, OutputBody::Text { markdown }, Vec::new())
    }

    /// A command that failed for a reason that is not a disclosure rule (syntax, types, names).
    pub fn error(&self, origin: Origin<'_>, message: String, column: Option<u32>) -> Released {
        self.emit(origin, OutputBody::Error { message, column, rule: None }, Vec::new())
    }

    pub fn refusal(&self, origin: Origin<'_>, refusal: Refusal) -> Released {
        let decisions = vec![Decision { rule: refusal.rule, outcome: "refused".into() }];
        self.emit(
            origin,
            OutputBody::Error {
                message: refusal.message,
                column: None,
                rule: Some(format!("rule {}", refusal.rule)),
            },
            decisions,
        )
    }
}

/// A deterministic number spread evenly over [-1, 1] from a cell key, for magnitude noise. The
/// key is remixed (SplitMix64) so that the noise of a sum is not a function of its count noise.
/// Even, with no gap around 0: noise that is never small has a hole an attacker can use, since
/// two hypotheses one unit apart then fall into disjoint ranges.
fn noise_factor(key: CellKey) -> f64 {
    let z = raw::mix(key.0);
    2.0 * ((z >> 11) as f64 / (1u64 << 53) as f64) - 1.0
}

/// Rule 4's concentration check: a part whose few farthest units hold this share of its
/// variation is refused, when its inputs' few hold at least `CONCENTRATION_MARGIN` less. A
/// squared or exponentiated register variable concentrates its variation more than the
/// variable does, so the margin keeps ordinary transforms of skewed variables allowed.
pub(crate) const CONCENTRATED_SHARE: f64 = 0.5;
const CONCENTRATION_MARGIN: f64 = 0.25;

/// Rounds to `digits` significant digits (rule 8).
pub fn significant(value: f64, digits: u32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.abs().log10().floor() as i32;
    let factor = 10f64.powi(digits as i32 - 1 - magnitude);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests;
