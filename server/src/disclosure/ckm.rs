//! The cell-key method (ABS TableBuilder) for counts.
//!
//! Every unit gets a secret *record key*: a keyed hash (SipHash-2-4) of its id under a
//! per-datastore secret. A cell's *cell key* is the sum of its units' record keys modulo 2^64,
//! which is exact whatever order the units are summed in. The noise for a cell is looked up
//! from (true count, cell key) in the perturbation table. The same set of contributors
//! therefore always gets the same noise, however the script was worded.
//!
//! The table holds one distribution of the noise `d` per original count `n`. Each row is built
//! to the published rules: `d` lies in `[-D, D]`, the released count `n + d` is never negative
//! and never in `1..=js`, zero stays zero, and the mean of `d` is exactly zero. Among the
//! distributions meeting these rules, a row takes the one of maximum entropy with variance `V`.
//! Where small counts make `V` impossible (n = 1 can only become 0 or 3), it takes the
//! feasible variance closest to `V`. All counts from `js + D + 1` on share one row.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

/// The parameters of the perturbation table; defaults are the datastore defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CkmParameters {
    /// Largest absolute change of a count.
    pub max_deviation: i64,
    /// Target variance of the change.
    pub variance: f64,
    /// Released counts `1..=js` never occur.
    pub js: i64,
}

impl Default for CkmParameters {
    fn default() -> CkmParameters {
        CkmParameters { max_deviation: 2, variance: 1.0, js: 2 }
    }
}

/// The per-datastore secret behind the record keys. Never printed.
#[derive(Clone)]
pub struct RecordKeySecret([u8; 16]);

impl RecordKeySecret {
    pub fn new(bytes: [u8; 16]) -> RecordKeySecret {
        RecordKeySecret(bytes)
    }

    /// A unit's record key, uniform on `0..2^64` (read as a fraction of 2^64).
    pub fn record_key(&self, unit_id: i64) -> u64 {
        let mut hasher = SipHasher24::new_with_key(&self.0);
        hasher.write_i64(unit_id);
        hasher.finish()
    }
}

impl std::fmt::Debug for RecordKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKeySecret(…)")
    }
}

/// A cell key accumulated from record keys: a sum modulo 2^64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellKey(pub u64);

impl CellKey {
    pub fn with_record(self, record_key: u64) -> CellKey {
        CellKey(self.0.wrapping_add(record_key))
    }

    /// The key as a fraction in `[0, 1)`.
    pub fn fraction(self) -> f64 {
        self.0 as f64 / 18_446_744_073_709_551_616.0
    }
}

/// One row: the possible changes of a count with their cumulative probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub changes: Vec<i64>,
    pub probabilities: Vec<f64>,
    cumulative: Vec<f64>,
}

impl Row {
    fn new(changes: Vec<i64>, probabilities: Vec<f64>) -> Row {
        let mut sum = 0.0;
        let cumulative = probabilities
            .iter()
            .map(|p| {
                sum += p;
                sum
            })
            .collect();
        Row { changes, probabilities, cumulative }
    }

    pub fn mean(&self) -> f64 {
        self.changes.iter().zip(&self.probabilities).map(|(&d, p)| d as f64 * p).sum()
    }

    pub fn variance(&self) -> f64 {
        let mean = self.mean();
        self.changes
            .iter()
            .zip(&self.probabilities)
            .map(|(&d, p)| (d as f64 - mean).powi(2) * p)
            .sum()
    }

    fn change_for(&self, u: f64) -> i64 {
        let i = self.cumulative.partition_point(|&c| c <= u).min(self.changes.len() - 1);
        self.changes[i]
    }
}

/// The perturbation table: row `n` for counts `n`, the last row for all larger counts.
#[derive(Clone, Debug)]
pub struct PerturbationTable {
    parameters: CkmParameters,
    rows: Vec<Row>,
}

impl PerturbationTable {
    pub fn new(parameters: CkmParameters) -> PerturbationTable {
        let CkmParameters { max_deviation: big_d, js, .. } = parameters;
        let last = js + big_d + 1;
        let rows = (0..=last).map(|n| build_row(n, parameters)).collect();
        debug_assert!(big_d >= 1 && js >= 0);
        PerturbationTable { parameters, rows }
    }

    pub fn parameters(&self) -> CkmParameters {
        self.parameters
    }

    /// The distribution of the change for original count `n`.
    pub fn row(&self, n: u64) -> &Row {
        let i = (n as usize).min(self.rows.len() - 1);
        &self.rows[i]
    }

    /// The count to release for a cell with `n` contributors and cell key `key`.
    pub fn perturb(&self, n: u64, key: CellKey) -> u64 {
        let change = self.row(n).change_for(key.fraction());
        (n as i64 + change).max(0) as u64
    }
}

/// The changes allowed for count `n`: within `[-D, D]`, never negative, never into `1..=js`.
fn allowed_changes(n: i64, p: CkmParameters) -> Vec<i64> {
    if n == 0 {
        return vec![0];
    }
    (-p.max_deviation..=p.max_deviation)
        .filter(|&d| {
            let released = n + d;
            released >= 0 && !(1..=p.js).contains(&released)
        })
        .collect()
}

fn build_row(n: i64, p: CkmParameters) -> Row {
    let changes = allowed_changes(n, p);
    let negatives: Vec<i64> = changes.iter().copied().filter(|&d| d < 0).collect();
    let positives: Vec<i64> = changes.iter().copied().filter(|&d| d > 0).collect();
    // With zero mean, the variance ranges over [lowest, highest]: the extremes put all weight
    // on {0} or on one pair a < 0 < b (variance -a·b).
    let pairs: Vec<(i64, i64)> =
        negatives.iter().flat_map(|&a| positives.iter().map(move |&b| (a, b))).collect();
    let pair_variance = |&(a, b): &(i64, i64)| (-a * b) as f64;
    let lowest = if changes.contains(&0) {
        0.0
    } else {
        pairs.iter().map(pair_variance).fold(f64::INFINITY, f64::min)
    };
    let highest = pairs
        .iter()
        .map(pair_variance)
        .fold(if changes.contains(&0) { 0.0 } else { f64::NEG_INFINITY }, f64::max);

    const EDGE: f64 = 1e-9;
    if highest - lowest < EDGE || p.variance <= lowest + EDGE || p.variance >= highest - EDGE {
        // The target is at or beyond what the rules allow: take the extreme distribution.
        let want_high = p.variance >= highest - EDGE && highest - lowest >= EDGE;
        let chosen = if want_high {
            pairs.iter().copied().max_by(|x, y| pair_variance(x).total_cmp(&pair_variance(y)))
        } else if changes.contains(&0) {
            None
        } else {
            pairs.iter().copied().min_by(|x, y| pair_variance(x).total_cmp(&pair_variance(y)))
        };
        return match chosen {
            Some((a, b)) => {
                let (pa, pb) = (b as f64 / (b - a) as f64, -a as f64 / (b - a) as f64);
                Row::new(vec![a, b], vec![pa, pb])
            }
            None => Row::new(vec![0], vec![1.0]),
        };
    }
    max_entropy(changes, p.variance)
}

/// The maximum-entropy distribution on `changes` with mean 0 and the given variance:
/// `p(d) ∝ exp(l1·d + l2·d²)`, with (l1, l2) found by Newton's method on the moment equations.
fn max_entropy(changes: Vec<i64>, variance: f64) -> Row {
    let ds: Vec<f64> = changes.iter().map(|&d| d as f64).collect();
    let (mut l1, mut l2) = (0.0f64, 0.0f64);
    let distribution = |l1: f64, l2: f64| -> Vec<f64> {
        let weights: Vec<f64> = ds.iter().map(|d| (l1 * d + l2 * d * d).exp()).collect();
        let total: f64 = weights.iter().sum();
        weights.into_iter().map(|w| w / total).collect()
    };
    for _ in 0..200 {
        let p = distribution(l1, l2);
        let moment = |k: i32| -> f64 { ds.iter().zip(&p).map(|(d, q)| d.powi(k) * q).sum() };
        let (m1, m2, m3, m4) = (moment(1), moment(2), moment(3), moment(4));
        let (r1, r2) = (m1, m2 - variance);
        if r1.abs() < 1e-14 && r2.abs() < 1e-14 {
            break;
        }
        // Jacobian of (E[d], E[d²]) in (l1, l2): the covariance matrix of (d, d²).
        let (j11, j12, j22) = (m2 - m1 * m1, m3 - m1 * m2, m4 - m2 * m2);
        let det = j11 * j22 - j12 * j12;
        let (step1, step2) = ((j22 * r1 - j12 * r2) / det, (j11 * r2 - j12 * r1) / det);
        // Damped steps keep the iteration stable when the start is far from the answer.
        let scale = 1.0f64.min(2.0 / (step1.abs() + step2.abs()));
        l1 -= scale * step1;
        l2 -= scale * step2;
    }
    Row::new(changes, distribution(l1, l2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PerturbationTable {
        PerturbationTable::new(CkmParameters::default())
    }

    #[test]
    fn every_row_keeps_the_published_rules() {
        let t = table();
        for n in 0..=40u64 {
            let row = t.row(n);
            let total: f64 = row.probabilities.iter().sum();
            assert!((total - 1.0).abs() < 1e-12, "row {n} sums to {total}");
            assert!(row.mean().abs() < 1e-12, "row {n} has mean {}", row.mean());
            for (&d, &p) in row.changes.iter().zip(&row.probabilities) {
                assert!(p > 0.0 && d.abs() <= 2, "row {n}: change {d} with probability {p}");
                let released = n as i64 + d;
                assert!(released == 0 || released > 2, "row {n} can release {released}");
            }
        }
        assert_eq!(t.row(0).changes, vec![0], "zero must stay zero");
    }

    #[test]
    fn rows_have_the_target_variance_where_the_rules_allow_it() {
        let t = table();
        // n = 1 can only become 0 or 3, n = 2 only 0, 3 or 4, n = 3 only 3, 4 or 5: the
        // closest zero-mean variances are 2, 2 and 0.
        let expected =
            [(1, 2.0), (2, 2.0), (3, 0.0), (4, 1.0), (5, 1.0), (100, 1.0), (1_000_000, 1.0)];
        for (n, variance) in expected {
            let got = t.row(n).variance();
            assert!((got - variance).abs() < 1e-9, "row {n}: variance {got}, expected {variance}");
        }
        let one = t.row(1);
        assert_eq!(one.changes, vec![-1, 2]);
        assert!((one.probabilities[0] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn large_counts_use_a_symmetric_distribution() {
        let row = table().row(50).clone();
        assert_eq!(row.changes, vec![-2, -1, 0, 1, 2]);
        for i in 0..2 {
            assert!((row.probabilities[i] - row.probabilities[4 - i]).abs() < 1e-12);
        }
        assert!(
            row.probabilities[2] > row.probabilities[1]
                && row.probabilities[1] > row.probabilities[0]
        );
    }

    #[test]
    fn the_same_contributors_get_the_same_count_in_any_order() {
        let secret = RecordKeySecret::new(*b"0123456789abcdef");
        let t = table();
        let ids: Vec<i64> = (1..=37).map(|i| i * 7919).collect();
        let forward =
            ids.iter().fold(CellKey::default(), |k, &id| k.with_record(secret.record_key(id)));
        let backward = ids
            .iter()
            .rev()
            .fold(CellKey::default(), |k, &id| k.with_record(secret.record_key(id)));
        assert_eq!(forward, backward);
        assert_eq!(t.perturb(37, forward), t.perturb(37, backward));
        let other_secret = RecordKeySecret::new(*b"fedcba9876543210");
        assert_ne!(secret.record_key(42), other_secret.record_key(42));
        assert_eq!(format!("{secret:?}"), "RecordKeySecret(…)");
    }

    #[test]
    fn noise_over_many_cells_has_zero_mean_and_the_table_variance() {
        // Cells of 100 units drawn from a population: the released counts must average out to
        // the truth and spread with variance 1 (an independent check of the lookup).
        let secret = RecordKeySecret::new(*b"an example key!!");
        let t = table();
        let (mut sum, mut sum_sq, cells) = (0.0, 0.0, 20_000);
        for cell in 0..cells {
            let key = (0..100).fold(CellKey::default(), |k, u| {
                k.with_record(secret.record_key(cell * 1_000 + u))
            });
            let change = t.perturb(100, key) as f64 - 100.0;
            sum += change;
            sum_sq += change * change;
        }
        let mean = sum / cells as f64;
        let variance = sum_sq / cells as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "mean change {mean}");
        assert!((variance - 1.0).abs() < 0.05, "variance {variance}");
        assert_eq!(t.perturb(0, CellKey(u64::MAX)), 0);
    }
}
