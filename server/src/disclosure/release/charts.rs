//! Charts: bars, histograms, hexbins, box plots, sankey flows and coefficient plots, all
//! drawn from released counts and statistics.

use super::*;

impl Releaser<'_> {
    /// Tables drawn as bars (`barchart`) or slices (`piechart`): the same rules as the tables,
    /// then each released inner cell becomes a bar; totals are not drawn. One one-way table
    /// gives a bar per row. A two-way table (rows the `over()` groups) gives a bar per cell,
    /// its column the bar's series. Several one-way tables over the same groups (one per
    /// variable) give a bar per group and table. If any table is refused, so is the chart.
    pub fn bar_chart(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        tables: Vec<raw::Table>,
        layout: BarLayout<'_>,
    ) -> Released {
        let started = std::time::Instant::now();
        let several = tables.len() > 1;
        let mut released = Vec::with_capacity(tables.len());
        for table in tables {
            match released_table(gate, table) {
                Ok(t) => released.push(t),
                Err(refusal) => {
                    let refused = self.refusal(origin, refusal);
                    self.account(started.elapsed());
                    return refused;
                }
            }
        }
        let mut bars = Vec::new();
        let mut decisions = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for (t, table_decisions) in &released {
            let rows = t.row_labels.len().saturating_sub(usize::from(t.totals));
            let columns = if t.column_variable.is_some() {
                t.column_labels.len().saturating_sub(usize::from(t.totals))
            } else {
                1
            };
            for r in 0..rows {
                for c in 0..columns {
                    let series = match (&t.column_variable, several) {
                        (Some(_), _) => Some(t.column_labels[c].clone()),
                        (None, true) => Some(t.statistic.clone()),
                        (None, false) => None,
                    };
                    bars.push(output::Bar {
                        label: Some(t.row_labels[r].clone()),
                        series,
                        start: r as f64,
                        end: r as f64 + 1.0,
                        height: t.cells[r].get(c).copied().flatten(),
                    });
                }
            }
            decisions.extend(table_decisions.iter().cloned());
            for note in &t.notes {
                if !notes.contains(note) {
                    notes.push(note.clone());
                }
            }
        }
        let first = &released[0].0;
        let statistic = if several {
            first.statistic.split(" of ").next().unwrap_or_default().to_owned()
        } else {
            first.statistic.clone()
        };
        let title = match &first.column_variable {
            Some(column) => format!("{statistic} of {column} by {}", first.row_variable),
            None => format!("{statistic} by {}", first.row_variable),
        };
        let body = OutputBody::Chart(output::Chart {
            chart: layout.chart.to_owned(),
            title: format!(
                "{title}{}",
                layout.group.map(|g| format!(" ({g})")).unwrap_or_default()
            ),
            x_label: first.row_variable.clone(),
            y_label: statistic,
            bars,
            hexes: None,
            boxes: None,
            estimates: None,
            flows: None,
            normal: None,
            stacked: layout.stacked,
            horizontal: layout.horizontal,
            notes,
        });
        let emitted = self.emit(origin, body, decisions);
        self.account(started.elapsed());
        emitted
    }
}

/// The upper bounds of `k` classes of equal width over the cells' released counts.
pub(super) fn count_classes(cells: &[output::Hex], k: usize) -> Vec<f64> {
    let lo = cells.iter().map(|c| c.count).fold(f64::INFINITY, f64::min);
    let hi = cells.iter().map(|c| c.count).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || k == 0 {
        return Vec::new();
    }
    (1..=k).map(|i| lo + (hi - lo) * i as f64 / k as f64).collect()
}

/// How `bar_chart` draws its bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct BarLayout<'a> {
    /// `barchart` or `piechart`.
    pub chart: &'a str,
    /// The `by()` group this chart is for.
    pub group: Option<&'a str>,
    pub stacked: bool,
    pub horizontal: bool,
}

impl Releaser<'_> {
    /// A sankey diagram: each pair of consecutive variables is a two-way table under the table
    /// rules (perturbed counts, small cells withheld with secondary suppression), and each
    /// released inner cell above zero becomes a flow. A withheld cell is no flow at all.
    pub fn sankey(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        tables: Vec<raw::Table>,
    ) -> Released {
        let started = std::time::Instant::now();
        let mut flows = Vec::new();
        let mut decisions = Vec::new();
        let mut withheld = 0;
        let mut notes = Vec::new();
        let variables: Vec<String> = tables
            .iter()
            .map(|t| t.row_variable.clone())
            .chain(tables.last().and_then(|t| t.column_variable.clone()))
            .collect();
        for table in tables {
            let (from_variable, to_variable) =
                (table.row_variable.clone(), table.column_variable.clone().unwrap_or_default());
            let (released, mut table_decisions) = match released_table(gate, table) {
                Ok(r) => r,
                Err(refusal) => {
                    self.account(started.elapsed());
                    return self.refusal(origin, refusal);
                }
            };
            decisions.append(&mut table_decisions);
            notes = released.notes.clone();
            // The last row and column are the margins.
            let rows = released.row_labels.len().saturating_sub(1);
            let columns = released.column_labels.len().saturating_sub(1);
            for r in 0..rows {
                for c in 0..columns {
                    match released.cells[r][c] {
                        Some(count) if count > 0.0 => flows.push(output::Flow {
                            from_variable: from_variable.clone(),
                            from: released.row_labels[r].clone(),
                            to_variable: to_variable.clone(),
                            to: released.column_labels[c].clone(),
                            count,
                        }),
                        Some(_) => {}
                        None => withheld += 1,
                    }
                }
            }
        }
        if withheld > 0 {
            notes.push(format!("{withheld} flows withheld as small cells."));
        }
        let body = OutputBody::Chart(output::Chart {
            chart: "sankey".into(),
            title: format!("Flows between {}", variables.join(", ")),
            x_label: variables.join(" → "),
            y_label: "count".into(),
            bars: Vec::new(),
            hexes: None,
            boxes: None,
            estimates: None,
            flows: Some(flows),
            normal: None,
            stacked: false,
            horizontal: false,
            notes,
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    pub fn histogram(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        histogram: raw::Histogram,
    ) -> Released {
        let rules = gate.rules();
        let mut withheld = 0;
        // Shares are of the released N (all bins' units, perturbed as a count of its own), so
        // a withheld bin's count cannot be read off the others.
        let total = histogram.bins.iter().fold(Contributors::default(), |t, b| t.merged(b.2));
        let released_total = (gate.perturb(total) as f64).max(1.0);
        let scale = |n: f64, width: f64| match histogram.scale {
            raw::HistogramScale::Count => n,
            raw::HistogramScale::Percent => 100.0 * n / released_total,
            raw::HistogramScale::Fraction => n / released_total,
            raw::HistogramScale::Density => n / released_total / width,
        };
        // As in tables: where a bin is withheld, an empty bin is too, or "0" beside
        // "withheld" would say which bin holds the few units.
        let any_small = histogram.bins.iter().any(|&(_, _, c)| gate.released_count(c).1);
        let bars: Vec<output::Bar> = histogram
            .bins
            .iter()
            .map(|&(start, end, c)| {
                let (n, small) = gate.released_count(c);
                let small = small || (any_small && c.units == 0);
                withheld += usize::from(small);
                output::Bar {
                    label: None,
                    series: None,
                    start,
                    end,
                    height: (!small).then_some(scale(n as f64, end - start)),
                }
            })
            .collect();
        let decisions = vec![
            Decision { rule: 5, outcome: "counts perturbed".into() },
            Decision { rule: 10, outcome: format!("{withheld} bins withheld") },
        ];
        let y_label = match histogram.scale {
            raw::HistogramScale::Count => "count",
            raw::HistogramScale::Percent => "percent",
            raw::HistogramScale::Fraction => "fraction",
            raw::HistogramScale::Density => "density",
        };
        // The normal curve of the released bars: their midpoints weighted by their heights,
        // so it shows nothing the bars do not.
        let normal = histogram.normal.then(|| {
            let shown: Vec<(f64, f64)> =
                bars.iter().filter_map(|b| Some(((b.start + b.end) / 2.0, b.height?))).collect();
            let weight: f64 = shown.iter().map(|(_, h)| h).sum();
            let mean = shown.iter().map(|(m, h)| m * h).sum::<f64>() / weight;
            let variance = shown.iter().map(|(m, h)| h * (m - mean).powi(2)).sum::<f64>() / weight;
            output::NormalCurve { mean: significant(mean, 4), sd: significant(variance.sqrt(), 4) }
        });
        let group = histogram.group.map(|g| format!(" ({g})")).unwrap_or_default();
        let body = OutputBody::Chart(output::Chart {
            chart: "histogram".into(),
            title: format!("Histogram of {}{group}", histogram.variable),
            x_label: histogram.variable,
            y_label: y_label.into(),
            bars,
            hexes: None,
            boxes: None,
            estimates: None,
            flows: None,
            normal,
            stacked: false,
            horizontal: false,
            notes: vec![format!(
                "Values coded to P{}–P{}; counts perturbed; bins under {} withheld.",
                rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_cell
            )],
        });
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    /// Rule 10 for a hexbin: counts perturbed, and cells under the threshold left out
    /// altogether, so the chart does not even say that a few units sit there.
    /// `classes` (`groups(k)`): the released counts are also put in k classes of equal width
    /// between the smallest and the largest, the colour bands of the chart's legend.
    pub fn hexbin(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        hexbin: raw::Hexbin,
        classes: Option<usize>,
    ) -> Released {
        let started = std::time::Instant::now();
        let rules = gate.rules();
        let mut withheld = 0;
        let cells: Vec<output::Hex> = hexbin
            .cells
            .iter()
            .filter_map(|&(x, y, c)| {
                let (n, small) = gate.released_count(c);
                withheld += usize::from(small);
                (!small && n > 0).then_some(output::Hex { x, y, count: n as f64 })
            })
            .collect();
        let decisions = vec![
            Decision { rule: 5, outcome: "counts perturbed".into() },
            Decision { rule: 10, outcome: format!("{withheld} cells withheld") },
        ];
        let body = OutputBody::Chart(output::Chart {
            chart: "hexbin".into(),
            title: format!("Hexbin of {} by {}", hexbin.y_variable, hexbin.x_variable),
            x_label: hexbin.x_variable,
            y_label: hexbin.y_variable,
            bars: Vec::new(),
            hexes: Some(output::HexGrid {
                width: hexbin.width,
                height: hexbin.height,
                classes: classes.map(|k| count_classes(&cells, k)),
                cells,
            }),
            boxes: None,
            estimates: None,
            flows: None,
            normal: None,
            stacked: false,
            horizontal: false,
            notes: vec![format!(
                "Values coded to P{}–P{}; counts perturbed; cells under {} units are not drawn.",
                rules.coding_percentiles.0, rules.coding_percentiles.1, rules.min_cell
            )],
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    /// Rule 8 for a box plot: each percentile needs units on each side, each group enough
    /// units for statistics; whiskers end at P5 and P95 and there are no outlier points.
    pub fn boxplot(
        &self,
        gate: &Gate,
        _cleared: &Cleared,
        origin: Origin<'_>,
        plot: raw::BoxPlot,
        horizontal: bool,
    ) -> Released {
        let started = std::time::Instant::now();
        let rules = gate.rules();
        let mut withheld = 0;
        let boxes: Vec<output::BoxSummary> = plot
            .groups
            .iter()
            .map(|(label, contributors, quantiles)| {
                let enough = contributors.units >= rules.min_units_for_statistics;
                let mut shown = quantiles.iter().map(|q| {
                    let v = if enough { gate.released_quantile(q, *contributors) } else { None };
                    withheld += usize::from(v.is_none());
                    v
                });
                let mut next = || shown.next().flatten();
                output::BoxSummary {
                    label: label.clone(),
                    p5: next(),
                    p25: next(),
                    p50: next(),
                    p75: next(),
                    p95: next(),
                }
            })
            .collect();
        let decisions =
            vec![Decision { rule: 8, outcome: format!("{withheld} percentiles withheld") }];
        let title = match &plot.over {
            Some(over) => format!("Box plot of {} over {over}", plot.variable),
            None => format!("Box plot of {}", plot.variable),
        };
        let body = OutputBody::Chart(output::Chart {
            chart: "boxplot".into(),
            title,
            x_label: plot.over.unwrap_or_default(),
            y_label: plot.variable,
            bars: Vec::new(),
            hexes: None,
            boxes: Some(boxes),
            estimates: None,
            flows: None,
            normal: None,
            stacked: false,
            horizontal,
            notes: vec![format!(
                "Boxes are P25–P75 with the median; whiskers end at P5 and P95, and no single unit is drawn. Each percentile needs {} units on each side and shows {} significant digits.",
                rules.min_units_beside_percentile, rules.significant_digits
            )],
        });
        self.account(started.elapsed());
        self.emit(origin, body, decisions)
    }
}

impl Releaser<'_> {
    /// coefplot: the estimates and intervals of the model released just before, drawn. It adds
    /// nothing the model did not show, and a refused model draws nothing. The constant is left
    /// out, as it is on another scale.
    pub fn coefplot(&self, origin: Origin<'_>, model: &Released) -> Option<Released> {
        let OutputBody::Model(m) = &model.output().body else { return None };
        let estimates: Vec<output::Estimate> = m
            .coefficients
            .iter()
            .filter(|c| c.term != "constant")
            .map(|c| output::Estimate {
                term: c.term.clone(),
                estimate: c.estimate,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
            })
            .collect();
        let body = OutputBody::Chart(output::Chart {
            chart: "coefplot".into(),
            title: format!("Coefficients: {}", m.title),
            x_label: "term".into(),
            y_label: m.estimate_label.clone(),
            bars: Vec::new(),
            hexes: None,
            boxes: None,
            estimates: Some(estimates),
            flows: None,
            normal: None,
            stacked: false,
            horizontal: false,
            notes: vec!["Estimates and intervals as the model above released them.".into()],
        });
        let decisions = vec![Decision { rule: 9, outcome: "drawn from the released model".into() }];
        Some(self.emit(origin, body, decisions))
    }
}
