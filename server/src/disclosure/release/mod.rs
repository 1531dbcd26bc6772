//! The rules applied to each kind of raw aggregate: the per-number rules here (counts,
//! magnitudes, SDs, percentiles), and one module per kind of output. Every method of the
//! `Releaser` that releases data takes the output's rule-11 clearance ([`Cleared`]), which only
//! [`super::memory::clear`] makes and which remembers the output's populations when it ends:
//! no output leaves without rule 11.

mod charts;
mod models;
mod summaries;
mod tables;

pub use charts::BarLayout;
#[cfg(test)]
pub(in crate::disclosure) use tables::other_levels_label;
use tables::*;

use super::memory::Cleared;
use shared::output::{self, OutputBody};

use super::ckm::CellKey;
use super::raw::{self, CellStatistic, Contributors};
use super::{Decision, Gate, Origin, Refusal, Released, Releaser, noise_factor, significant};

/// A cell after the rules: released value, or withheld.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Released1 {
    Shown(f64),
    Suppressed,
}

impl Released1 {
    fn value(self) -> Option<f64> {
        match self {
            Released1::Shown(v) => Some(v),
            Released1::Suppressed => None,
        }
    }
}

/// Rule 9: the most one unit may weigh in a model, as leverage or as its share of a term's
/// sum of squares.
const MAX_INFLUENCE: f64 = 0.9;

/// Keeps the percentiles' noise apart from the other noise of the same cell.
const QUANTILE_NOISE_STREAM: u64 = 0x0C7A_11E5_0C7A_11E5;

/// Keeps the SD's noise apart from the sum's, though both are keyed by the same cell.
const SD_NOISE_STREAM: u64 = 0x5D5D_0F0F_A5A5_3C3C;

/// The key of a magnitude's noise: its contributors and its values.
fn magnitude_key(c: Contributors, m: &raw::Magnitude) -> CellKey {
    CellKey(c.key.0 ^ raw::mix(m.content))
}

impl Gate {
    /// Rule 5 and the small-cell part of rule 6 for one count.
    ///
    /// A cell is small when its true count or its released count is under the threshold, so
    /// a cell of 4 is withheld even when its noise would show it as 5 or 6.
    pub(super) fn released_count(&self, c: Contributors) -> (u64, bool) {
        let n = self.perturb(c);
        let min = self.rules.min_cell;
        (n, c.units > 0 && (c.units < min || n < min))
    }

    /// Rule 7: a noisy mean or sum of a magnitude cell, or `None` when the cell is too small or
    /// dominated.
    fn released_magnitude(&self, c: Contributors, m: &raw::Magnitude) -> Option<(f64, f64)> {
        if m.n < self.rules.min_units_for_statistics
            || c.units < self.rules.min_units_for_statistics
        {
            return None;
        }
        // Copied values: the largest contributor may stand behind `copies` units.
        let copies = self.copies as f64;
        let (largest, second) = (m.largest * copies, m.second * copies);
        let remainder = m.sum.abs() - largest - second;
        if largest > 0.0 && remainder < self.rules.dominance_p / 100.0 * largest {
            return None;
        }
        let noise = largest * self.count_like_noise(c, magnitude_key(c, m));
        let sum = m.sum + noise;
        Some((sum, sum / m.n as f64))
    }

    /// The noise of a magnitude in units of its largest contribution: the cell's count noise
    /// (rule 5, keyed by the contributors) plus up to `magnitude_noise` more, spread evenly
    /// and keyed by the values. The sum of a 0/1 variable is a count, and noise of a tenth of
    /// its largest value rounded away: every N was exact. With the count's own noise in it,
    /// such a sum says no more than the perturbed count. The second part keeps two variables
    /// over the same units from sharing their noise, and it is as large as one unit's whole
    /// contribution (1.5 × the largest): at a tenth, a variable and a copy with one person's
    /// 0/1 value set to 0.5 told that person's value in 20 of 20 trials (the attack suite).
    fn count_like_noise(&self, c: Contributors, content: CellKey) -> f64 {
        let count_change = self.perturb(c) as f64 - c.units as f64;
        count_change + self.rules.magnitude_noise * noise_factor(content)
    }

    /// Rule 7 for dispersion: the SD of a cell whose sum passes, from its sum of squared
    /// deviations with noise of the same kind as the sum's (in units of the largest
    /// contribution squared), its value-keyed part apart from the sum's.
    fn released_sd(&self, c: Contributors, m: &raw::Magnitude) -> Option<f64> {
        self.released_magnitude(c, m)?;
        let sd = m.sd()?;
        let deviations = sd * sd * (m.n - 1) as f64;
        let largest = m.largest * self.copies as f64;
        let key = CellKey(magnitude_key(c, m).0 ^ SD_NOISE_STREAM);
        let noise = largest * largest * self.count_like_noise(c, key);
        Some(((deviations + noise).max(0.0) / (m.n - 1) as f64).sqrt())
    }

    #[cfg(test)]
    pub(super) fn released_magnitude_for_test(
        &self,
        c: Contributors,
        m: &raw::Magnitude,
    ) -> Option<(f64, f64)> {
        self.released_magnitude(c, m)
    }

    #[cfg(test)]
    pub(super) fn released_sd_for_test(&self, c: Contributors, m: &raw::Magnitude) -> Option<f64> {
        self.released_sd(c, m)
    }

    /// Rule 8: a percentile with enough units on each side, released as a point drawn from
    /// the range of the order statistics around its rank (raw::QUANTILE_WINDOW on each side),
    /// then rounded. The exact percentile of a set built around one unit (a few values below
    /// it, a few above) would be that unit's value; the drawn point is no closer to it than to
    /// its ten neighbours. In dense data the range, and so the error, is small. The draw is
    /// keyed by the contributors and the percent, so asking again gains nothing.
    fn released_quantile(&self, q: &raw::Quantile, c: Contributors) -> Option<f64> {
        let need = self.rules.min_units_beside_percentile;
        if q.below < need || q.above < need {
            return None;
        }
        let key = raw::mix(c.key.0 ^ raw::mix(q.percent.to_bits() ^ QUANTILE_NOISE_STREAM));
        let u = (key >> 11) as f64 / (1u64 << 53) as f64;
        let (low, high) = q.window;
        Some(significant(low + u * (high - low), self.rules.significant_digits))
    }

    fn cell_value(&self, cell: &raw::Cell, statistic: &CellStatistic) -> Released1 {
        let magnitude =
            || cell.magnitude.as_ref().and_then(|m| self.released_magnitude(cell.contributors, m));
        let value = match statistic {
            CellStatistic::Count
            | CellStatistic::RowPercent
            | CellStatistic::ColumnPercent
            | CellStatistic::CellPercent => {
                let (n, small) = self.released_count(cell.contributors);
                (!small).then_some(n as f64)
            }
            CellStatistic::Mean(_) => magnitude().map(|(_, mean)| mean),
            CellStatistic::Sum(_) => magnitude().map(|(sum, _)| sum),
            CellStatistic::Sd(_) => {
                cell.magnitude.as_ref().and_then(|m| self.released_sd(cell.contributors, m))
            }
            CellStatistic::Percentile(_, p) => {
                let enough = cell.contributors.units >= self.rules.min_units_for_statistics;
                cell.quantiles
                    .iter()
                    .find(|q| q.percent == *p)
                    .filter(|_| enough)
                    .and_then(|q| self.released_quantile(q, cell.contributors))
            }
            // As the SD: only where the cell's magnitude passes (size and dominance).
            CellStatistic::Gini(_) => magnitude().and(cell.gini).map(|g| significant(g, 4)),
            // Both quartiles must pass rule 8; the range is their released difference.
            CellStatistic::Iqr(_) => {
                let enough = cell.contributors.units >= self.rules.min_units_for_statistics;
                let quartile = |p: f64| {
                    cell.quantiles
                        .iter()
                        .find(|q| q.percent == p)
                        .filter(|_| enough)
                        .and_then(|q| self.released_quantile(q, cell.contributors))
                };
                quartile(25.0).zip(quartile(75.0)).map(|(lo, hi)| hi - lo)
            }
        };
        value.map_or(Released1::Suppressed, Released1::Shown)
    }
}
