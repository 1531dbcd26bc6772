//! What the engine hands the gate: aggregates that still carry exact values and contributor
//! keys. None of these types can be serialised or sent; only [`super::Releaser`] turns them
//! into output, after the rules.

use super::ckm::CellKey;
use super::differencing::PopulationSketch;

/// Who contributed to a cell: how many units, and the sum of their record keys.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Contributors {
    pub units: u64,
    pub key: CellKey,
}

impl Contributors {
    pub fn add(&mut self, record_key: u64) {
        self.units += 1;
        self.key = self.key.with_record(record_key);
    }

    /// The contributors of two disjoint cells together.
    pub fn merged(self, other: Contributors) -> Contributors {
        Contributors { units: self.units + other.units, key: self.key.with_record(other.key.0) }
    }
}

/// Sums over a cell's (already top/bottom-coded) values, with its two largest contributions
/// by absolute value for the dominance rule and the noise scale.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Magnitude {
    /// Units with a value (missing values are not counted).
    pub n: u64,
    pub sum: f64,
    pub sum_of_squares: f64,
    pub largest: f64,
    pub second: f64,
    /// An order-free digest of the values (a sum of their mixed bits modulo 2^64). Magnitude
    /// noise is keyed by it as well as by the contributors, so two variables over the same
    /// units get the same noise only when they hold the same values: otherwise a variable and
    /// a copy with one unit's value changed would cancel their noise in a difference.
    pub content: u64,
}

impl Magnitude {
    pub fn add(&mut self, value: f64) {
        self.n += 1;
        // +0.0 makes -0.0 and 0.0 one value.
        self.content = self.content.wrapping_add(mix((value + 0.0).to_bits()));
        self.sum += value;
        self.sum_of_squares += value * value;
        let a = value.abs();
        if a > self.largest {
            self.second = self.largest;
            self.largest = a;
        } else if a > self.second {
            self.second = a;
        }
    }

    /// The values of two disjoint cells together.
    pub fn merged(self, other: Magnitude) -> Magnitude {
        let mut top = [self.largest, self.second, other.largest, other.second];
        top.sort_by(|a, b| b.total_cmp(a));
        Magnitude {
            n: self.n + other.n,
            sum: self.sum + other.sum,
            sum_of_squares: self.sum_of_squares + other.sum_of_squares,
            largest: top[0],
            second: top[1],
            content: self.content.wrapping_add(other.content),
        }
    }

    /// The sample standard deviation (n − 1), from a shifted two-pass-free formula that is
    /// accurate enough for coded register values.
    pub fn sd(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let variance = ((self.sum_of_squares - n * mean * mean) / (n - 1.0)).max(0.0);
        Some(variance.sqrt())
    }
}

/// One percentile as computed: its value and how many units lie strictly on each side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile {
    /// In percent: 50.0 is the median.
    pub percent: f64,
    pub value: f64,
    pub below: u64,
    pub above: u64,
    /// The lowest and highest of the order statistics within [`QUANTILE_WINDOW`] ranks of
    /// the percentile's on each side: the range the released value is drawn from.
    pub window: (f64, f64),
}

/// Ranks on each side of a percentile whose values set the scale of its noise.
pub const QUANTILE_WINDOW: usize = 5;

/// What a table cell holds besides its count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    pub contributors: Contributors,
    pub magnitude: Option<Magnitude>,
    pub quantiles: Vec<Quantile>,
    /// The Gini coefficient of the cell's coded values, for `Gini` cells.
    pub gini: Option<f64>,
}

/// The statistic a table's cells show.
#[derive(Clone, Debug, PartialEq)]
pub enum CellStatistic {
    Count,
    RowPercent,
    ColumnPercent,
    CellPercent,
    Mean(String),
    Sum(String),
    Sd(String),
    Percentile(String, f64),
    Gini(String),
    /// P75 − P25.
    Iqr(String),
}

/// A one- or two-way table before disclosure control. A one-way table has one column and no
/// row margins.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub row_variable: String,
    pub column_variable: Option<String>,
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
    /// One per row (two-way tables only).
    pub row_margins: Vec<Cell>,
    /// One per column (two-way tables only).
    pub column_margins: Vec<Cell>,
    pub total: Cell,
    pub statistic: CellStatistic,
    /// How to present the released table.
    pub options: TableOptions,
    /// The units counted in the table (rule 11).
    pub population: PopulationSketch,
}

/// tabulate's presentation options. They act on the released table only, so they can show
/// nothing the rules did not release.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableOptions {
    /// Pearson's χ² test of independence, from the released counts.
    pub chi2: bool,
    /// Keep the n rows with the largest (or smallest) released totals.
    pub top: Option<usize>,
    pub bottom: Option<usize>,
    /// Order rows (columns) by their released totals, largest first.
    pub rowsort: bool,
    pub colsort: bool,
}

/// `summarize` for one variable.
#[derive(Clone, Debug, PartialEq)]
pub struct VariableSummary {
    pub variable: String,
    pub contributors: Contributors,
    pub magnitude: Magnitude,
    pub quantiles: Vec<Quantile>,
    /// The Gini coefficient of the coded values, when asked for.
    pub gini: Option<f64>,
    /// Whether the interquartile range was asked for.
    pub iqr: bool,
    pub population: PopulationSketch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Coefficient {
    pub term: String,
    pub estimate: f64,
    pub std_error: f64,
    pub statistic: f64,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub is_constant: bool,
}

/// A fitted model before disclosure control.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub title: String,
    pub dependent: String,
    /// "coef" or "odds ratio"; "t" or "z".
    pub estimate_label: &'static str,
    pub test_label: &'static str,
    pub coefficients: Vec<Coefficient>,
    /// The estimation sample.
    pub contributors: Contributors,
    pub parameters: usize,
    pub residual_df: f64,
    /// For t tests on the residual degrees of freedom: (those df, the confidence level in
    /// percent). The gate restates the p-values and intervals with the released N, since the
    /// exact df could be read back from a t statistic and its p-value.
    pub t_test: Option<(f64, f64)>,
    /// Units in each level of each categorical term: (variable, units per level).
    pub categorical_levels: Vec<(String, Vec<u64>)>,
    /// Units in each outcome level of a binary or categorical outcome.
    pub outcome_levels: Option<Vec<u64>>,
    /// The fewest units in any crossing of the categorical covariates.
    pub smallest_crossing: Option<u64>,
    /// The largest leverage of one unit in the design, or its share of a column's sum of
    /// squares, whichever is larger (0–1).
    pub influence: f64,
    /// Units whose effects the model absorbed, each a parameter the residual df loses (fixed
    /// effects). The gate restates that df with this count perturbed, as it does N.
    pub absorbed: Option<Contributors>,
    /// Fit statistics safe to show: R², F, log likelihood, …
    pub statistics: Vec<(String, f64)>,
    /// The estimation sample (rule 11).
    pub population: PopulationSketch,
}

/// A histogram before disclosure control: bins over the coded range.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub variable: String,
    pub bins: Vec<(f64, f64, Contributors)>,
    /// What the bars' heights show.
    pub scale: HistogramScale,
    /// The group of a `by()` histogram, as "sex=1 Mann".
    pub group: Option<String>,
    /// Whether to fit a normal curve to the released bars (`normal`).
    pub normal: bool,
    pub population: PopulationSketch,
    /// Each bin's units, in the order of `bins`: moving an edge moves a few units from one
    /// bin to the next, so rule 11 looks at every bin as a population of its own.
    pub bin_populations: Vec<PopulationSketch>,
}

/// A histogram's heights: counts, or shares of the released N.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum HistogramScale {
    #[default]
    Count,
    Percent,
    Fraction,
    /// Fraction per unit of the variable: the bars' areas add up to 1.
    Density,
}

/// A hexbin before disclosure control: cells of a hexagonal grid over the coded ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Hexbin {
    pub x_variable: String,
    pub y_variable: String,
    /// Distance between neighbouring centres along x, and between rows along y.
    pub width: f64,
    pub height: f64,
    /// (centre x, centre y, contributors) of every non-empty cell.
    pub cells: Vec<(f64, f64, Contributors)>,
    pub population: PopulationSketch,
}

/// A box plot before disclosure control: per group, its units and five percentiles.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxPlot {
    pub variable: String,
    pub over: Option<String>,
    /// (group label, contributors, P5 P25 P50 P75 P95).
    pub groups: Vec<(String, Contributors, Vec<Quantile>)>,
    pub population: PopulationSketch,
}

/// Statistics over a sample that are not cells of a table: a correlation matrix, confidence
/// intervals, normality tests, an analysis of variance. The gate checks the sample, not each
/// value: every value here summarises the whole sample (or a level of `levels`).
#[derive(Clone, Debug, PartialEq)]
pub struct StatisticsTable {
    pub title: String,
    pub row_variable: String,
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
    /// The units behind the statistics.
    pub contributors: Contributors,
    /// Units per level of each grouping variable (rule 9's level rule applies).
    pub levels: Vec<(String, Vec<u64>)>,
    pub notes: Vec<String>,
    /// Values that depend on the exact N, which the gate restates from the released N.
    pub restate: Restate,
    pub population: PopulationSketch,
}

/// What of a statistics table the gate computes again from the released N: a test's
/// degrees of freedom are counts of units less constants, and would give back the exact N.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Restate {
    #[default]
    Nothing,
    /// An analysis-of-variance table (columns SS, df, MS, F, p; the last two rows residual
    /// and total) whose model has this many parameters: the residual and total df, with the
    /// mean squares, F and p. Without a constant the total is uncentred and has N df.
    Anova { parameters: usize, constant: bool },
    /// `anova …, posthoc`: each pair of groups' difference in mean, its standard error from
    /// the pooled residual variance, t and the Bonferroni-adjusted p (a row per pair, in the
    /// order of `groups`' pairs). The gate computes the errors from the released group
    /// counts: with exact counts, three pairs' errors would give each group's exact size.
    PairwiseMeans { groups: Vec<(Contributors, f64)>, residual_ss: f64 },
    /// A correlation matrix: each pair's cells.
    Pairs(Vec<Pair>),
    /// A normality table (skewness, kurtosis, z skewness, z kurtosis, K², p per row): the
    /// tests from the moments and the released N.
    Normality,
}

/// One pair of a correlation matrix: where its value, p and N cells are (row, column), its
/// correlation, and its units. The gate withholds the pair when its units are too few, and
/// otherwise fills N with the released count and p with the test on the released N − 2.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub value: (usize, usize),
    pub p: Option<(usize, usize)>,
    pub n: Option<(usize, usize)>,
    pub r: f64,
    pub units: Contributors,
}

/// `ci`: a confidence interval for the mean of each variable, from its summary.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanIntervals {
    pub summaries: Vec<VariableSummary>,
    /// In percent.
    pub level: f64,
}

/// One interval of a life table: units at risk at its start, and the events and censorings
/// in it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LifeInterval {
    pub at_risk: Contributors,
    pub events: Contributors,
    pub censored: Contributors,
}

/// A group's intervals (`by()` gives one group per level).
#[derive(Clone, Debug, PartialEq)]
pub struct LifeGroup {
    pub label: String,
    pub units: Contributors,
    pub intervals: Vec<LifeInterval>,
}

/// `kaplan-meier` before disclosure: counts in equal intervals of the coded duration.
#[derive(Clone, Debug, PartialEq)]
pub struct LifeTable {
    pub duration: String,
    pub event: String,
    pub by: Option<String>,
    /// The intervals' bounds: `bounds[j]..bounds[j + 1]` is interval j.
    pub bounds: Vec<f64>,
    pub groups: Vec<LifeGroup>,
    pub population: PopulationSketch,
}

/// SplitMix64's finaliser: spreads the bits of one value over the whole word.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
