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
    /// The run's job, to open again from the Jobs page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<i64>,
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

impl Output {
    /// The message of an error output (a failure or a refusal).
    pub fn error_message(&self) -> Option<&str> {
        match &self.body {
            OutputBody::Error { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&Table> {
        match &self.body {
            OutputBody::Table(table) => Some(table),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputBody {
    Table(Table),
    Summary(Summary),
    Model(Model),
    Chart(Chart),
    /// Markdown from a `textblock`, or help text.
    Text {
        markdown: String,
    },
    /// What a command did, such as "1 000 units imported", without protected numbers.
    Notice {
        message: String,
    },
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

impl Table {
    /// The table as CSV (RFC 4180): a header of the row variable and the column labels, then
    /// a line per row. A withheld cell is empty.
    pub fn to_csv(&self) -> String {
        self.delimited(",", "\r\n", |text| {
            if text.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.to_owned()
            }
        })
    }

    /// The table as tab-separated text, as spreadsheets paste it: the CSV's lines with tabs,
    /// tabs and line breaks inside a label turned into spaces. A withheld cell is empty.
    pub fn to_tsv(&self) -> String {
        self.delimited("\t", "\n", |text| text.replace(['\t', '\n', '\r'], " "))
    }

    /// The header and a line per row, the labels through `field`, each line ended by `end`.
    fn delimited(&self, separator: &str, end: &str, field: impl Fn(&str) -> String) -> String {
        let mut text = String::new();
        let header = std::iter::once(self.row_variable.as_str())
            .chain(self.column_labels.iter().map(String::as_str));
        text.push_str(&header.map(&field).collect::<Vec<_>>().join(separator));
        text.push_str(end);
        for (label, row) in self.row_labels.iter().zip(&self.cells) {
            let cells = row.iter().map(|c| c.map(|v| v.to_string()).unwrap_or_default());
            let line: Vec<String> = std::iter::once(field(label)).chain(cells).collect();
            text.push_str(&line.join(separator));
            text.push_str(end);
        }
        text
    }
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
    /// What the estimates are ("coef", "odds ratio") and which test they carry ("t", "z").
    #[serde(default = "coef")]
    pub estimate_label: String,
    #[serde(default = "t")]
    pub test_label: String,
    pub coefficients: Vec<Coefficient>,
    /// Fit statistics: ("N", …), ("R²", …), ("F", …).
    pub statistics: Vec<(String, f64)>,
    pub notes: Vec<String>,
}

fn coef() -> String {
    "coef".into()
}

fn t() -> String {
    "t".into()
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
    /// A hexbin's cells; only cells that passed the rules are listed, so a withheld cell and an
    /// empty one look the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hexes: Option<HexGrid>,
    /// A box plot's boxes: quartiles and P5/P95 whiskers, each shown only where rule 8 allows.
    /// There are no outlier points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boxes: Option<Vec<BoxSummary>>,
    /// A coefficient plot: each estimate with its confidence interval, as the model released
    /// just before it showed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimates: Option<Vec<Estimate>>,
    /// A sankey diagram's flows between the levels of consecutive variables; a withheld flow
    /// is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<Flow>>,
    /// A histogram's normal curve (`normal`): the mean and SD of the released bars, drawn on
    /// the bars' scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<NormalCurve>,
    /// Bars of one label stacked on each other rather than side by side (`barchart …, stack`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stacked: bool,
    /// Bars or boxes laid along the y axis (`horizontal`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub horizontal: bool,
    pub notes: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormalCurve {
    pub mean: f64,
    pub sd: f64,
}

/// Units going from one level of a variable to a level of the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub from_variable: String,
    pub from: String,
    pub to_variable: String,
    pub to: String,
    pub count: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub term: String,
    pub estimate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxSummary {
    pub label: String,
    /// P5, P25, P50, P75, P95; `None` where withheld.
    pub p5: Option<f64>,
    pub p25: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
}

/// Hexagonal cells of equal size over two variables: counts per cell, never points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HexGrid {
    /// Distance between neighbouring centres along x, and between rows along y.
    pub width: f64,
    pub height: f64,
    pub cells: Vec<Hex>,
    /// `groups(k)`: the upper bounds of k count classes of equal width, lowest first; a cell
    /// is coloured by the first class its count does not exceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<f64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hex {
    pub x: f64,
    pub y: f64,
    pub count: f64,
}

/// A bar or a histogram bin: `[start, end)` on the x axis (a category has `label` instead).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Which of several bars under one label this is: a level of the counted variable, or a
    /// variable of several (`barchart (mean) a b, over(g)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    pub start: f64,
    pub end: f64,
    /// `None` is a bar withheld by a disclosure rule.
    pub height: Option<f64>,
}

/// Numbers as people read them: integers without decimals, others to 4 significant decimals.
pub fn format_number(value: f64) -> String {
    if value.abs() >= 1e15 && value.is_finite() {
        // Sums of squares of incomes: digits no one reads, in a width no table fits.
        format!("{value:.3e}")
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else if value.abs() >= 1000.0 {
        format!("{value:.1}")
    } else if value.abs() < 0.001 && value != 0.0 {
        // Densities and small p-values: four significant digits, not a row of zeros.
        format!("{value:.3e}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "·".to_owned(), format_number)
}

/// Rows of text columns, aligned: the first column left, the rest right.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

impl Output {
    /// The output as plain text, as `skjold run --format text` prints it. Withheld values
    /// show as `·`.
    pub fn to_text(&self) -> String {
        let head = format!("[line {}] {}\n", self.line, self.command);
        let body = match &self.body {
            OutputBody::Table(t) => {
                let mut rows = vec![
                    std::iter::once(t.row_variable.clone())
                        .chain(t.column_labels.iter().cloned())
                        .collect(),
                ];
                for (label, cells) in t.row_labels.iter().zip(&t.cells) {
                    rows.push(
                        std::iter::once(label.clone())
                            .chain(cells.iter().map(|c| cell(*c)))
                            .collect(),
                    );
                }
                let statistic = if t.statistic.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", t.statistic)
                };
                format!("{}{statistic}\n{}{}", t.title, aligned(&rows), notes(&t.notes))
            }
            OutputBody::Summary(s) => {
                let mut header =
                    vec!["variable".to_owned(), "N".into(), "mean".into(), "sd".into()];
                let labels = |r: &SummaryRow| {
                    r.percentiles.iter().chain(&r.extra).map(|(p, _)| p.clone()).collect::<Vec<_>>()
                };
                header.extend(s.rows.first().map(labels).unwrap_or_default());
                let mut rows = vec![header];
                for r in &s.rows {
                    let mut row = vec![r.variable.clone(), cell(r.n), cell(r.mean), cell(r.sd)];
                    row.extend(r.percentiles.iter().chain(&r.extra).map(|(_, v)| cell(*v)));
                    rows.push(row);
                }
                format!("{}{}", aligned(&rows), notes(&s.notes))
            }
            OutputBody::Model(m) => {
                let mut rows = vec![vec![
                    m.dependent.clone(),
                    m.estimate_label.clone(),
                    "std err".into(),
                    m.test_label.clone(),
                    format!("P>|{}|", m.test_label),
                    "ci low".into(),
                    "ci high".into(),
                ]];
                for c in &m.coefficients {
                    rows.push(vec![
                        c.term.clone(),
                        format_number(c.estimate),
                        format_number(c.std_error),
                        format!("{:.2}", c.statistic),
                        format!("{:.3}", c.p_value),
                        format_number(c.ci_low),
                        format_number(c.ci_high),
                    ]);
                }
                let stats: Vec<String> = m
                    .statistics
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", format_number(*v)))
                    .collect();
                format!("{}\n{}{}\n{}", m.title, aligned(&rows), stats.join(", "), notes(&m.notes))
            }
            OutputBody::Chart(c) => {
                let mut rows = vec![vec![c.x_label.clone(), c.y_label.clone()]];
                if let Some(boxes) = &c.boxes {
                    rows = vec![vec![
                        c.x_label.clone(),
                        "P5".into(),
                        "P25".into(),
                        "P50".into(),
                        "P75".into(),
                        "P95".into(),
                    ]];
                    for b in boxes {
                        rows.push(vec![
                            b.label.clone(),
                            cell(b.p5),
                            cell(b.p25),
                            cell(b.p50),
                            cell(b.p75),
                            cell(b.p95),
                        ]);
                    }
                }
                if let Some(estimates) = &c.estimates {
                    rows = vec![vec![
                        c.x_label.clone(),
                        c.y_label.clone(),
                        "ci low".into(),
                        "ci high".into(),
                    ]];
                    for e in estimates {
                        rows.push(vec![
                            e.term.clone(),
                            format_number(e.estimate),
                            format_number(e.ci_low),
                            format_number(e.ci_high),
                        ]);
                    }
                }
                if let Some(flows) = &c.flows {
                    rows = vec![vec!["from".into(), "to".into(), "count".into()]];
                    for f in flows {
                        rows.push(vec![
                            format!("{} {}", f.from_variable, f.from),
                            format!("{} {}", f.to_variable, f.to),
                            format_number(f.count),
                        ]);
                    }
                }
                if let Some(grid) = &c.hexes {
                    rows[0].push("count".into());
                    for h in &grid.cells {
                        rows.push(vec![
                            format_number(h.x),
                            format_number(h.y),
                            format_number(h.count),
                        ]);
                    }
                }
                if let Some(normal) = &c.normal {
                    rows.push(vec![
                        format!("normal curve: mean {}", format_number(normal.mean)),
                        format!("SD {}", format_number(normal.sd)),
                    ]);
                }
                // Bars with series: a column for the series, between label and height.
                let series = c.bars.iter().any(|b| b.series.is_some());
                if series {
                    rows[0].insert(1, "series".into());
                }
                for b in &c.bars {
                    let label = b.label.clone().unwrap_or_else(|| {
                        format!("[{}, {})", format_number(b.start), format_number(b.end))
                    });
                    let mut row = vec![label, cell(b.height)];
                    if series {
                        row.insert(1, b.series.clone().unwrap_or_default());
                    }
                    rows.push(row);
                }
                let layout: Vec<&str> = [(c.stacked, "stacked"), (c.horizontal, "horizontal")]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect();
                let mut drawn = String::new();
                if !layout.is_empty() {
                    drawn += &format!("drawn {}\n", layout.join(", "));
                }
                if let Some(classes) = c.hexes.as_ref().and_then(|g| g.classes.as_ref()) {
                    let tops: Vec<String> =
                        classes.iter().map(|&top| format!("≤ {}", format_number(top))).collect();
                    drawn += &format!("count classes: {}\n", tops.join(", "));
                }
                format!("{}\n{}{drawn}{}", c.title, aligned(&rows), notes(&c.notes))
            }
            OutputBody::Text { markdown } => format!("{markdown}\n"),
            OutputBody::Notice { message } => format!("{message}\n"),
            OutputBody::Error { message, column, rule } => {
                let at = column.map(|c| format!(" (column {c})")).unwrap_or_default();
                let rule = rule.as_ref().map(|r| format!(" [{r}]")).unwrap_or_default();
                format!("error{at}{rule}: {message}\n")
            }
        };
        head + &body
    }
}

fn notes(notes: &[String]) -> String {
    notes.iter().map(|n| format!("note: {n}\n")).collect()
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

    #[test]
    fn a_table_as_csv_quotes_what_needs_it_and_leaves_withheld_cells_empty() {
        let table = Table {
            title: "t".into(),
            statistic: "count".into(),
            row_variable: "municipality".into(),
            column_variable: Some("sex".into()),
            row_labels: vec!["Oslo".into(), "Nes, \"Akershus\"".into()],
            column_labels: vec!["1 man".into(), "2 woman".into()],
            cells: vec![vec![Some(1520.0), None], vec![Some(12.5), Some(30.0)]],
            totals: false,
            notes: Vec::new(),
        };
        assert_eq!(
            table.to_csv(),
            "municipality,1 man,2 woman\r\nOslo,1520,\r\n\"Nes, \"\"Akershus\"\"\",12.5,30\r\n"
        );
        assert_eq!(
            table.to_tsv(),
            "municipality\t1 man\t2 woman\nOslo\t1520\t\nNes, \"Akershus\"\t12.5\t30\n"
        );
    }
}
