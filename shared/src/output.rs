//! The shapes of what a script run sends back: released tables, statistics, models, chart data,
//! text and notices.
//!
//! These are *shapes* only. On the server, the one way to fill them is
//! `server::disclosure`, which builds them from raw aggregates after the disclosure rules; the
//! browser deserialises them to draw. JSON: `{"outputs":[{"line":N,"command":"…","kind":"table",
//! …}]}`, one object per output, in the order the script produced them.

use serde::{Deserialize, Serialize};

/// The answer to a script run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResponse {
    pub outputs: Vec<Output>,
}

/// One output of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// 1-based line of the command in the script that was run.
    pub line: u32,
    /// The command's name, such as `tabulate`.
    pub command: String,
    #[serde(flatten)]
    pub body: OutputBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputBody {
    Table(Table),
    Summary(Summary),
    Model(Model),
    Chart(Chart),
    /// Markdown from a `textblock`, or help text.
    Text { markdown: String },
    /// What a command did, such as "1 000 units imported", without protected numbers.
    Notice { message: String },
    /// A command that could not run, or was refused by a disclosure rule (then `rule` names it).
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        column: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
    },
}

/// A frequency or magnitude table. One-way tables have one column of statistics; two-way tables
/// have a column per level of the column variable. The last row and column hold the totals when
/// `totals` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    /// What the cells hold: `count`, `mean of wage`, `row percent`, …
    pub statistic: String,
    pub row_variable: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_variable: Option<String>,
    pub row_labels: Vec<String>,
    pub column_labels: Vec<String>,
    /// `cells[row][column]`; `None` is a cell withheld by a disclosure rule.
    pub cells: Vec<Vec<Option<f64>>>,
    pub totals: bool,
    /// The rules applied, in plain words: "counts are perturbed (cell-key method)", …
    pub notes: Vec<String>,
}

/// `summarize`: one row per variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub variable: String,
    pub n: Option<f64>,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    /// (label, value) such as ("P50", Some(412000.0)); `None` where rule 8 withholds it.
    pub percentiles: Vec<(String, Option<f64>)>,
    /// Extra statistics asked for by options (`gini`, `iqr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, Option<f64>)>,
}

/// An estimated model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// "Linear regression (OLS)", …
    pub title: String,
    pub dependent: String,
    pub coefficients: Vec<Coefficient>,
    /// Fit statistics: ("N", …), ("R²", …), ("F", …).
    pub statistics: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub term: String,
    pub estimate: f64,
    pub std_error: f64,
    /// t or z.
    pub statistic: f64,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Chart data, drawn by the browser: bins and bars, never points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// `histogram`, `barchart`, …
    pub chart: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub bars: Vec<Bar>,
    pub notes: Vec<String>,
}

/// A bar or a histogram bin: `[start, end)` on the x axis (a category has `label` instead).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub start: f64,
    pub end: f64,
    /// `None` is a bar withheld by a disclosure rule.
    pub height: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_serialise_flat_with_their_kind() {
        let output = Output {
            line: 3,
            command: "tabulate".into(),
            body: OutputBody::Notice { message: "done".into() },
        };
        let json = serde_json::to_value(&output).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"line": 3, "command": "tabulate", "kind": "notice", "message": "done"})
        );
        let back: Output = serde_json::from_value(json).unwrap();
        assert_eq!(back, output);
    }
}
