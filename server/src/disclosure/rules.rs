//! The thresholds of ../shared/reference/disclosure.md, as per-datastore settings.
//!
//! Defaults are the published ones; a datastore version may override any of them in
//! `disclosure.json` beside its data. `describe` turns them into the plain words of the rules
//! page, so what users read is generated from what the gate enforces.

use serde::{Deserialize, Serialize};

use super::ckm::CkmParameters;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Rule 3: a dataset may not shrink below this many units.
    pub population_floor: u64,
    /// Rule 3: statistics on any subpopulation need this many units.
    pub min_units_for_statistics: u64,
    /// Rule 4: generate/replace/recode may not change, or leave unchanged, 1..this-1 units.
    pub min_change: u64,
    /// Rule 5: cell-key perturbation of counts.
    pub max_deviation: i64,
    pub variance: f64,
    pub js: i64,
    /// Rule 6: cells under this released count are suppressed.
    pub min_cell: u64,
    /// Rule 6: a table is withheld when more than this share of its non-empty cells are small.
    pub max_small_cell_share: f64,
    /// Rule 7: magnitudes are coded to [P(lo), P(hi)] of the dataset.
    pub coding_percentiles: (f64, f64),
    /// Rule 7: the p % dominance rule.
    pub dominance_p: f64,
    /// Rule 7: the value-keyed noise added to a sum, as a share of its largest contribution
    /// (spread evenly within ± this).
    pub magnitude_noise: f64,
    /// Rule 8: units needed on each side of a percentile.
    pub min_units_beside_percentile: u64,
    /// Rule 8: percentiles are rounded to this many significant digits.
    pub significant_digits: u32,
    /// Rule 9.
    pub min_model_n: u64,
    pub min_residual_df: u64,
    pub min_level_units: u64,
    /// Rule 10.
    pub max_hexbin_grid: u64,
    /// Rule 11: refusals of rules 4 and 11 a workspace may meet before it runs nothing more.
    /// Each answers "does this condition, or this population, set apart a few units?", which
    /// a binary search over thresholds turns into a value; the budget caps how many such
    /// answers one workspace gets before a steward looks.
    pub max_refusals: u32,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            population_floor: 1000,
            min_units_for_statistics: 10,
            min_change: 10,
            max_deviation: 2,
            variance: 1.0,
            js: 2,
            min_cell: 5,
            max_small_cell_share: 0.5,
            coding_percentiles: (1.0, 99.0),
            dominance_p: 10.0,
            magnitude_noise: 1.5,
            min_units_beside_percentile: 5,
            significant_digits: 3,
            min_model_n: 50,
            min_residual_df: 10,
            min_level_units: 5,
            max_hexbin_grid: 25,
            max_refusals: 20,
        }
    }
}

impl Rules {
    pub fn ckm(&self) -> CkmParameters {
        CkmParameters { max_deviation: self.max_deviation, variance: self.variance, js: self.js }
    }

    /// The rules in plain words, numbered as in the published document.
    pub fn describe(&self) -> Vec<(u32, String)> {
        vec![
            (
                1,
                "Every output passes one gate and is written to the audit log with the script line that produced it.".into(),
            ),
            (
                2,
                "No command lists units, and no minimum or maximum is shown. Pointer variables (_FNR) can only be merge keys.".into(),
            ),
            (
                3,
                format!(
                    "A dataset may not shrink below {} units. Statistics on any group need at least {} units.",
                    self.population_floor, self.min_units_for_statistics
                ),
            ),
            (
                4,
                format!(
                    "generate, replace and recode are refused when they change, or leave unchanged, between 1 and {} units. Every comparison, logical operator and rounding inside any expression or condition must also leave 0 or at least {} units on each side, and a value may not become missing for 1 to {} units. A function, power or product of variables inside an expression may not put half or more of its variation in fewer than {} units when its inputs do not (a smooth spike such as exp(-1000 * (wealth - k)^2) singles out one unit as == would).",
                    self.min_change - 1,
                    self.min_change,
                    self.min_change - 1,
                    self.min_change
                ),
            ),
            (
                5,
                format!(
                    "Counts carry noise of at most ±{} from the cell-key method: the same units always give the same count, and no count of 1 to {} is shown.",
                    self.max_deviation, self.js
                ),
            ),
            (
                6,
                format!(
                    "Table cells under {} are suppressed, with further cells where the totals would give them back; a level with fewer than {} units is never named but counted under other levels; where any cell is withheld, empty cells are too; a table with more than {:.0} % small cells is withheld.",
                    self.min_cell,
                    self.min_cell,
                    self.max_small_cell_share * 100.0
                ),
            ),
            (
                7,
                format!(
                    "Values are limited to the {}th–{}th percentile range before sums, means and standard deviations. Sums, means and standard deviations carry noise of the size of a count's noise times the largest value, plus a part keyed to the values of up to {} times the largest value, so a sum of a 0/1 variable says no more than the perturbed count and a copy of a variable with one unit's value changed does not give that value back; and a cell is suppressed when its largest unit could be estimated within {} % by the second largest.",
                    self.coding_percentiles.0,
                    self.coding_percentiles.1,
                    self.magnitude_noise,
                    self.dominance_p
                ),
            ),
            (
                8,
                format!(
                    "Percentiles need {} units on each side; each is a point drawn from the values within {} ranks of it on either side, shown to {} significant digits, so no single unit sets it.",
                    self.min_units_beside_percentile,
                    super::raw::QUANTILE_WINDOW,
                    self.significant_digits
                ),
            ),
            (
                9,
                format!(
                    "Models need N ≥ {}, at most N/3 parameters, {} residual degrees of freedom, and {} units in every level of a categorical term; no unit may have a leverage of 0.9 or more, or 0.9 of a regressor's sum of squares; no residuals or fitted values are shown.",
                    self.min_model_n, self.min_residual_df, self.min_level_units
                ),
            ),
            (
                10,
                format!(
                    "Charts come from protected counts: small bins are withheld and hexbin grids are at most {}.",
                    self.max_hexbin_grid
                ),
            ),
            (
                11,
                format!(
                    "An output is refused when its population, or a row's or a histogram bar's, differs by 1 to {} units from an earlier output's or from another in the same output, since comparing the two would reveal those units; it is logged for review. After {} refusals under rules 4 and 11 a workspace runs nothing more until a data steward has looked.",
                    self.min_change - 1,
                    self.max_refusals
                ),
            ),
            (
                12,
                "A value copied to many units (by aggregate, merge or collapse) counts as one contributor in every output, also after it has passed through generate, recode or a model's -predict.".into(),
            ),
            (
                13,
                format!(
                    "Errors say nothing about a few units: rows whose values a command cannot use (a negative duration, an event or treatment other than 0/1, a negative count) leave its sample as missing values do, and stop it with an error only when their perturbed count reaches {}, the size rule 4 asks of a change; a second level or group must hold that many too; sample <n> draws a share of the dataset's perturbed size. An error raised for one row would answer a yes/no question about its value.",
                    self.min_change
                ),
            ),
        ]
    }
}
