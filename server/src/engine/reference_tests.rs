//! The engine's statistics against an independent reference: pandas, NumPy and statsmodels
//! (tests/reference/reference.py) on the same Parquet files, compared before disclosure to
//! 1e-6 relative. `cargo xtask test` provides the Python environment (SKJOLD_PYTHON).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::commands::decompose::oaxaca_raw;
use super::commands::describe::{TableRequest, summarize_raw, tabulate_raw};
use super::commands::discontinuity::rdd_raw;
use super::commands::mixed::mixed_raw;
use super::commands::weibull::weibull_raw;
use super::dataset::numbers;
use super::models::{
    Errors, IvEstimator, IvRequest, Likelihood, Margins, OlsRequest, Term, cox_raw, ivregress_raw,
    likelihood_raw, mlogit_raw, ols_raw,
};
use super::*;
use crate::disclosure::audit::MemoryAudit;
use crate::disclosure::raw::{self, CellStatistic};
use crate::test_support::small_demo;
use commands::statistics;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SKJOLD_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.skjold/venv/bin/python");
    assert!(
        venv.exists(),
        "the reference tests need pandas and statsmodels: run `cargo xtask test` once (it creates .skjold/venv), or set SKJOLD_PYTHON"
    );
    venv
}

fn reference() -> Value {
    let version = small_demo().join("demo/1");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/reference.py");
    let output = std::process::Command::new(python())
        .arg(script)
        .arg(&version)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "reference.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("reference.py prints JSON")
}

/// Every command of the script ran: no error and no refusal among its outputs.
fn assert_ran(outputs: &[crate::disclosure::Released]) {
    assert!(
        outputs
            .iter()
            .all(|o| !matches!(o.output().body, shared::output::OutputBody::Error { .. })),
        "{outputs:#?}"
    );
}

fn close(ours: f64, theirs: f64, what: &str) {
    let scale = theirs.abs().max(1e-12);
    assert!((ours - theirs).abs() / scale < 1e-6, "{what}: ours {ours}, reference {theirs}");
}

/// As `close`, to a looser relative tolerance where the reference itself is only that exact.
fn close_to(ours: f64, theirs: f64, tolerance: f64, what: &str) {
    let scale = theirs.abs().max(1e-12);
    assert!(
        (ours - theirs).abs() / scale < tolerance,
        "{what}: ours {ours}, reference {theirs}, relative difference {:e}",
        (ours - theirs).abs() / scale
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

const SCRIPT: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
import db/INNTEKT_WLONN 2021-12-31 as wage
import db/BOSATTEFDT_BOSTED 2021-01-01 as kommune
generate age = 2021 - int(birth / 100)
keep if age >= 25 & age <= 66
generate decade = int(age / 10)
";

#[tokio::test]
async fn statistics_match_pandas_and_statsmodels_on_the_same_parquet() {
    let registry = Registry::open(small_demo()).unwrap();
    let engine = Engine::new(Arc::new(registry), Limits::default()).unwrap();
    let mut workspace = Workspace::default();
    let audit = MemoryAudit::default();
    let outputs = engine.run(&mut workspace, SCRIPT, &audit, "reference").await;
    assert_ran(&outputs);
    let dataset = workspace.current().unwrap();
    let gate = engine.gate(dataset.origin.as_ref());
    let reference = reference();
    let keys = gate.record_keys(&dataset.ids);

    assert_eq!(dataset.len() as u64, reference["units"].as_u64().unwrap());

    // tabulate sex: true counts per level.
    let request = |statistic, of| TableRequest {
        options: Default::default(),
        row: "sex",
        column: None,
        statistic,
        of,
        missing: false,
        labels: false,
    };
    let counts =
        tabulate_raw(gate, dataset, &keys, &request(CellStatistic::Count, None), None).unwrap();
    for (label, cell) in counts.row_labels.iter().zip(&counts.cells) {
        let theirs = reference["sex_counts"][label].as_u64().unwrap();
        assert_eq!(cell[0].contributors.units, theirs, "count of sex {label}");
    }

    // tabulate sex, summarize(wage): coded means per level.
    let means = tabulate_raw(
        gate,
        dataset,
        &keys,
        &request(CellStatistic::Mean("wage".into()), Some("wage")),
        None,
    )
    .unwrap();
    for (label, cell) in means.row_labels.iter().zip(&means.cells) {
        let m = cell[0].magnitude.unwrap();
        close(
            m.sum / m.n as f64,
            f(&reference["mean_wage_by_sex"][label]),
            &format!("mean wage, sex {label}"),
        );
    }

    // kaplan-meier age high: the life table's exact counts, and the actuarial survival from them.
    {
        use crate::disclosure::survival::actuarial_survival;
        let mut with_event = dataset.clone();
        let high: datafusion::arrow::array::Float64Array =
            numbers(dataset.variable("wage").unwrap())
                .unwrap()
                .into_iter()
                .map(|w| w.map(|w| f64::from(w > 500_000.0)))
                .collect();
        with_event.set(super::dataset::Variable {
            name: "high".into(),
            values: Arc::new(high),
            info: Default::default(),
        });
        let table = super::commands::survival::life_table_raw(
            gate,
            &with_event,
            &keys,
            "age",
            "high",
            None,
            None,
        )
        .unwrap();
        let rows = reference["life_table"].as_array().unwrap();
        let intervals = &table.groups[0].intervals;
        assert_eq!(intervals.len(), rows.len());
        let counts: Vec<(f64, f64, f64)> = intervals
            .iter()
            .map(|i| (i.at_risk.units as f64, i.events.units as f64, i.censored.units as f64))
            .collect();
        for (j, ((ours, s), theirs)) in
            counts.iter().zip(actuarial_survival(&counts)).zip(rows).enumerate()
        {
            assert_eq!(ours.0, f(&theirs["at_risk"]), "at risk in interval {j}");
            assert_eq!(ours.1, f(&theirs["events"]), "events in interval {j}");
            assert_eq!(ours.2, f(&theirs["censored"]), "censored in interval {j}");
            close(s, f(&theirs["survival"]), &format!("survival after interval {j}"));
        }
    }

    // tabulate sex, summarize(wage) gini / iqr.
    for (statistic, key) in [
        (CellStatistic::Gini("wage".into()), "gini_wage_by_sex"),
        (CellStatistic::Iqr("wage".into()), "iqr_wage_by_sex"),
    ] {
        let table =
            tabulate_raw(gate, dataset, &keys, &request(statistic, Some("wage")), None).unwrap();
        for (label, cell) in table.row_labels.iter().zip(&table.cells) {
            let ours = match key {
                "gini_wage_by_sex" => cell[0].gini.unwrap(),
                _ => cell[0].quantiles[1].value - cell[0].quantiles[0].value,
            };
            close(ours, f(&reference[key][label]), &format!("{key}, sex {label}"));
        }
    }

    // summarize wage age.
    let names = ["wage".to_owned(), "age".to_owned()];
    for summary in summarize_raw(gate, dataset, &keys, &names, None, true, false).unwrap() {
        let theirs = &reference["summaries"][&summary.variable];
        assert_eq!(summary.magnitude.n, theirs["n"].as_u64().unwrap());
        close(summary.magnitude.sum / summary.magnitude.n as f64, f(&theirs["mean_coded"]), "mean");
        close(summary.magnitude.sum, f(&theirs["sum_coded"]), "sum");
        close(summary.magnitude.sd().unwrap(), f(&theirs["sd_coded"]), "sd");
        close(summary.gini.unwrap(), f(&theirs["gini_coded"]), "gini");
        for (q, p) in summary.quantiles.iter().zip(theirs["percentiles"].as_array().unwrap()) {
            close(q.value, f(p), &format!("P{} of {}", q.percent, summary.variable));
        }
    }

    // regress wage age i.sex, with classical, robust and clustered standard errors.
    let ols = |errors| OlsRequest {
        dependent: "wage".into(),
        terms: vec![Term::Continuous("age".into()), Term::Factor("sex".into())],
        constant: true,
        errors,
        level: 95.0,
    };
    // quantile(wage, 10): group sizes as numpy's searchsorted over the decile cut points.
    {
        let mut w = Workspace::default();
        let script = format!("{SCRIPT}generate decile = quantile(wage, 10)\n");
        let outputs = engine.run(&mut w, &script, &audit, "reference").await;
        assert_ran(&outputs);
        let with_deciles = w.current().unwrap();
        let request = TableRequest {
            options: Default::default(),
            row: "decile",
            column: None,
            statistic: CellStatistic::Count,
            of: None,
            missing: false,
            labels: false,
        };
        let table = tabulate_raw(gate, with_deciles, &keys, &request, None).unwrap();
        assert_eq!(table.row_labels.len(), 10);
        for (label, cell) in table.row_labels.iter().zip(&table.cells) {
            let theirs = reference["deciles"][label].as_u64().unwrap();
            assert_eq!(cell[0].contributors.units, theirs, "decile {label}");
        }
    }

    // correlate, normaltest and anova on coded values.
    {
        let names = ["wage".to_owned(), "age".to_owned()];
        let theirs = &reference["correlate"];
        let options = statistics::CorrelationOptions { significance: true, ..Default::default() };
        let (r, _) =
            statistics::correlation_raw(gate, dataset, &keys, &names, options, None).unwrap();
        assert_eq!(r.contributors.units, theirs["n"].as_u64().unwrap());
        close(r.values[0][1].unwrap(), f(&theirs["r"]), "correlation");
        close(r.values[1][1].unwrap(), f(&theirs["p"]), "p of the correlation");
        let options = statistics::CorrelationOptions { covariance: true, ..Default::default() };
        let (c, _) =
            statistics::correlation_raw(gate, dataset, &keys, &names, options, None).unwrap();
        close(c.values[0][1].unwrap(), f(&theirs["cov"]), "covariance");
        // Pairwise over wage, age and kommune's number (missing for some): pandas' pairwise
        // complete observations.
        let three = ["wage".to_owned(), "age".to_owned(), "kommune_number".to_owned()];
        let mut with_number = dataset.clone();
        let number: datafusion::arrow::array::Float64Array = (0..dataset.len())
            .map(|i| {
                let v = &dataset.variable("kommune").unwrap().values;
                (!v.is_null(i)).then(|| super::dataset::display(v, i).parse::<f64>().ok()).flatten()
            })
            .collect();
        with_number.set(super::dataset::Variable {
            name: "kommune_number".into(),
            values: Arc::new(number),
            info: Default::default(),
        });
        let options = statistics::CorrelationOptions { pairwise: true, ..Default::default() };
        let (pairwise, populations) =
            statistics::correlation_raw(gate, &with_number, &keys, &three, options, None).unwrap();
        assert_eq!(populations.len(), 3, "one population per pair");
        let theirs = &reference["pairwise"];
        for a in 0..3 {
            for b in 0..3 {
                close(
                    pairwise.values[a][b].unwrap(),
                    f(&theirs["r"][a][b]),
                    &format!("pairwise r of {} and {}", three[a], three[b]),
                );
            }
        }
        let raw::Restate::Pairs(pairs) = &pairwise.restate else { panic!("pairs") };
        let n_of =
            |a: usize, b: usize| pairs.iter().find(|p| p.value == (a, b)).unwrap().units.units;
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            assert_eq!(n_of(a, b), theirs["n"][a][b].as_u64().unwrap(), "pair N {a}, {b}");
        }
        let normal = statistics::normality_raw(gate, dataset, &keys, &names, None).unwrap();
        for (row, name) in normal.values.iter().zip(&names) {
            let theirs = &reference["normaltest"][name];
            for (j, key) in ["skew", "kurtosis", "z_skew", "z_kurt", "k2", "p"].iter().enumerate() {
                close(row[j].unwrap(), f(&theirs[key]), &format!("normaltest {name} {key}"));
            }
        }
        let aov = statistics::anova_raw(
            gate,
            dataset,
            &keys,
            "wage",
            &["kommune".to_owned()],
            None,
            true,
        )
        .unwrap();
        let theirs = &reference["anova"];
        close(aov.values[0][0].unwrap(), f(&theirs["ss_between"]), "SS between");
        close(aov.values[1][0].unwrap(), f(&theirs["ss_within"]), "SS within");
        close(aov.values[0][1].unwrap(), f(&theirs["df_between"]), "df between");
        close(aov.values[1][1].unwrap(), f(&theirs["df_within"]), "df within");
        close(aov.values[0][3].unwrap(), f(&theirs["F"]), "F");
        close(aov.values[0][4].unwrap(), f(&theirs["p"]), "p of F");
        // noconstant: the cell-means model (statsmodels without an intercept).
        let aov = statistics::anova_raw(
            gate,
            dataset,
            &keys,
            "wage",
            &["kommune".to_owned()],
            None,
            false,
        )
        .unwrap();
        let theirs = &reference["anova_noconstant"];
        close(aov.values[0][0].unwrap(), f(&theirs["ss_model"]), "SS model, no constant");
        close(aov.values[0][1].unwrap(), f(&theirs["df_model"]), "df model, no constant");
        close(aov.values[1][0].unwrap(), f(&theirs["ss_residual"]), "SS residual, no constant");
        close(aov.values[1][1].unwrap(), f(&theirs["df_residual"]), "df residual, no constant");
        close(aov.values[0][3].unwrap(), f(&theirs["F"]), "F, no constant");
        close(aov.values[0][4].unwrap(), f(&theirs["p"]), "p, no constant");
        // posthoc: the comparisons from exact counts (the gate uses released ones).
        let posthoc =
            statistics::posthoc_raw(gate, dataset, &keys, "wage", "decade", None).unwrap();
        let raw::Restate::PairwiseMeans { groups, residual_ss } = &posthoc.restate else {
            panic!("posthoc restates from the released counts")
        };
        let means: Vec<f64> = groups.iter().map(|(_, m)| *m).collect();
        let counts: Vec<f64> = groups.iter().map(|(c, _)| c.units as f64).collect();
        let n = counts.iter().sum();
        let ours = crate::stats::pairwise_bonferroni(&means, &counts, *residual_ss, n);
        let theirs = reference["posthoc"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "pairs");
        assert_eq!(posthoc.row_labels.len(), theirs.len(), "pair labels");
        for (k, (row, their)) in ours.iter().zip(theirs).enumerate() {
            for (j, what) in ["difference", "SE", "t", "p"].iter().enumerate() {
                close(row[j], f(&their[j]), &format!("posthoc pair {k} {what}"));
            }
        }
        // Two factors: partial sums of squares (statsmodels' Type II).
        let factors = ["kommune".to_owned(), "sex".to_owned()];
        let aov =
            statistics::anova_raw(gate, dataset, &keys, "wage", &factors, None, true).unwrap();
        let theirs = &reference["anova2"];
        assert_eq!(aov.row_labels, ["model", "kommune", "sex", "residual", "total"]);
        for (row, source) in [(1, "kommune"), (2, "sex"), (3, "residual")] {
            let theirs = &theirs[source];
            close(aov.values[row][0].unwrap(), f(&theirs["ss"]), &format!("SS {source}"));
            close(aov.values[row][1].unwrap(), f(&theirs["df"]), &format!("df {source}"));
            if source != "residual" {
                close(aov.values[row][3].unwrap(), f(&theirs["F"]), &format!("F {source}"));
                close(aov.values[row][4].unwrap(), f(&theirs["p"]), &format!("p {source}"));
            }
        }
    }

    // logit and probit of (wage > 500000) on age i.sex.
    {
        let dataset = {
            let mut w = Workspace::default();
            let script = format!(
                "{SCRIPT}generate high = wage > 500000 if !sysmiss(wage)\ngenerate hundreds = floor(wage / 100000)\ngenerate band = 1 + (wage > 300000) + (wage > 600000) if !sysmiss(wage)\ngenerate month = birth - 100 * int(birth / 100)\ngenerate treated = (age >= 40 & month <= 9) | (age < 40 & month <= 3)\n"
            );
            let outputs = engine.run(&mut w, &script, &audit, "reference").await;
            assert_ran(&outputs);
            w.current().unwrap().clone()
        };
        let request = OlsRequest {
            dependent: "high".into(),
            terms: vec![Term::Continuous("age".into()), Term::Factor("sex".into())],
            constant: true,
            errors: Errors::Classical,
            level: 95.0,
        };
        for (key, link) in [
            ("logit", Likelihood::Logit),
            ("probit", Likelihood::Probit),
            ("poisson", Likelihood::Poisson),
            ("negative-binomial", Likelihood::NegativeBinomial),
        ] {
            let counts = matches!(link, Likelihood::Poisson | Likelihood::NegativeBinomial);
            let request = OlsRequest {
                dependent: if counts { "hundreds".into() } else { "high".into() },
                ..request.clone()
            };
            let (model, effects) = likelihood_raw(
                gate,
                &dataset,
                &keys,
                &request,
                link,
                false,
                None,
                None,
                Some(Margins::DyDx),
            )
            .unwrap();
            if let Some(effects) = effects {
                let theirs = &reference[&format!("{key}_mfx")];
                for (j, c) in effects.coefficients.iter().enumerate() {
                    close(c.estimate, f(&theirs["effects"][j]), &format!("{key} mfx {}", c.term));
                    close(c.std_error, f(&theirs["se"][j]), &format!("{key} mfx se {}", c.term));
                }
                // The elasticities: eydx for both terms (i.sex as a change in ln P), eyex and
                // dyex for age only (statsmodels refuses them for a 0/1 column, and so do we).
                for (margins, name, terms) in [
                    (Margins::EyDx, "eydx", 2),
                    (Margins::EyEx, "eyex", 1),
                    (Margins::DyEx, "dyex", 1),
                ] {
                    let (_, effects) = likelihood_raw(
                        gate,
                        &dataset,
                        &keys,
                        &request,
                        link,
                        false,
                        None,
                        None,
                        Some(margins),
                    )
                    .unwrap();
                    let effects = effects.unwrap();
                    assert_eq!(effects.coefficients.len(), terms, "{key} {name} terms");
                    let theirs = &reference[&format!("{key}_{name}")];
                    for (j, c) in effects.coefficients.iter().enumerate() {
                        close(
                            c.estimate,
                            f(&theirs["effects"][j]),
                            &format!("{key} {name} {}", c.term),
                        );
                        close(
                            c.std_error,
                            f(&theirs["se"][j]),
                            &format!("{key} {name} se {}", c.term),
                        );
                    }
                }
            }
            if link == Likelihood::Logit {
                // logit high c.age##i.sex, mfx(dydx | eydx): one effect per variable, through
                // every column it enters.
                let interacted = OlsRequest {
                    terms: vec![
                        Term::Continuous("age".into()),
                        Term::Factor("sex".into()),
                        Term::Interaction(vec![
                            Term::Continuous("age".into()),
                            Term::Factor("sex".into()),
                        ]),
                    ],
                    ..request.clone()
                };
                for (margins, name) in [(Margins::DyDx, "dydx"), (Margins::EyDx, "eydx")] {
                    let (_, effects) = likelihood_raw(
                        gate,
                        &dataset,
                        &keys,
                        &interacted,
                        link,
                        false,
                        None,
                        None,
                        Some(margins),
                    )
                    .unwrap();
                    let effects = effects.unwrap();
                    let terms: Vec<&str> =
                        effects.coefficients.iter().map(|c| c.term.as_str()).collect();
                    assert_eq!(terms, ["age", "sex=2"], "interaction {name} effects");
                    let theirs = &reference[&format!("logit_interaction_{name}")];
                    for (j, c) in effects.coefficients.iter().enumerate() {
                        close(c.estimate, f(&theirs["effects"][j]), &format!("{name} {}", c.term));
                        close(c.std_error, f(&theirs["se"][j]), &format!("{name} se {}", c.term));
                    }
                }
            }
            let theirs = &reference[key];
            for (j, c) in model.coefficients.iter().enumerate() {
                close(c.estimate, f(&theirs["params"][j]), &format!("{key} {}", c.term));
                close(c.std_error, f(&theirs["bse"][j]), &format!("{key} se {}", c.term));
            }
            let robust = OlsRequest { errors: Errors::Robust, ..request.clone() };
            let (sandwich, _) =
                likelihood_raw(gate, &dataset, &keys, &robust, link, false, None, None, None)
                    .unwrap();
            for (j, c) in sandwich.coefficients.iter().enumerate() {
                close(
                    c.std_error,
                    f(&theirs["robust_bse"][j]),
                    &format!("{key} robust {}", c.term),
                );
            }
            let by_kommune =
                OlsRequest { errors: Errors::Cluster("kommune".into()), ..request.clone() };
            let (clustered, _) =
                likelihood_raw(gate, &dataset, &keys, &by_kommune, link, false, None, None, None)
                    .unwrap();
            for (j, c) in clustered.coefficients.iter().enumerate() {
                close(
                    c.std_error,
                    f(&theirs["cluster_bse"][j]),
                    &format!("{key} cluster {}", c.term),
                );
            }
            if link == Likelihood::NegativeBinomial {
                let last = sandwich.coefficients.len();
                let alpha = sandwich.statistics.iter().find(|(k, _)| k == "alpha std. error");
                close(alpha.unwrap().1, f(&theirs["robust_bse"][last]), "robust alpha std. error");
            }
            let stat = |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
            close(stat("log likelihood"), f(&theirs["llf"]), &format!("{key} log likelihood"));
            close(stat("pseudo R²"), f(&theirs["prsquared"]), &format!("{key} pseudo R²"));
            if link == Likelihood::Logit {
                // cox age high i.sex hundreds.
                let request = OlsRequest {
                    dependent: "age".into(),
                    terms: vec![Term::Factor("sex".into()), Term::Continuous("hundreds".into())],
                    constant: false,
                    ..request.clone()
                };
                let model = cox_raw(gate, &dataset, &keys, &request, "high", None).unwrap();
                let theirs = &reference["cox"];
                for (j, c) in model.coefficients.iter().enumerate() {
                    let b = f(&theirs["params"][j]);
                    close(c.estimate, b.exp(), &format!("cox hazard ratio {}", c.term));
                    close(
                        c.std_error,
                        b.exp() * f(&theirs["bse"][j]),
                        &format!("cox se {}", c.term),
                    );
                }
                let ll = model.statistics.iter().find(|(k, _)| k == "log partial likelihood");
                close(ll.unwrap().1, f(&theirs["llf"]), "cox log partial likelihood");
            }
            if link == Likelihood::Logit {
                // weibull age high i.sex hundreds: the same data as cox, a parametric hazard.
                let request = OlsRequest {
                    dependent: "age".into(),
                    terms: vec![Term::Factor("sex".into()), Term::Continuous("hundreds".into())],
                    constant: true,
                    ..request.clone()
                };
                let model = weibull_raw(gate, &dataset, &keys, &request, "high", None).unwrap();
                let theirs = &reference["weibull"];
                assert_eq!(model.coefficients.len(), 4, "sex=2, hundreds, constant, ln p");
                for (j, c) in model.coefficients.iter().enumerate() {
                    let b = f(&theirs["params"][j]);
                    let exponentiated = c.term != "ln p";
                    let shown = if exponentiated { b.exp() } else { b };
                    close(c.estimate, shown, &format!("weibull {}", c.term));
                    let se = f(&theirs["bse"][j]) * if exponentiated { b.exp() } else { 1.0 };
                    close(c.std_error, se, &format!("weibull se {}", c.term));
                }
                let ll = model.statistics.iter().find(|(k, _)| k == "log likelihood");
                close(ll.unwrap().1, f(&theirs["llf"]), "weibull log likelihood");

                // oaxaca wage age, by(sex).
                let request = OlsRequest {
                    dependent: "wage".into(),
                    terms: vec![Term::Continuous("age".into())],
                    constant: true,
                    ..request.clone()
                };
                let model = oaxaca_raw(gate, &dataset, &keys, &request, "sex", None).unwrap();
                let theirs = &reference["oaxaca"];
                let estimate = |term: &str| {
                    model.coefficients.iter().find(|c| c.term == term).unwrap().estimate
                };
                for (term, key) in [
                    ("difference", "gap"),
                    ("endowments", "endowments"),
                    ("coefficients", "coefficients"),
                    ("interaction", "interaction"),
                ] {
                    close(estimate(term), f(&theirs[key]), &format!("oaxaca {term}"));
                }
                for (j, c) in model.coefficients.iter().enumerate() {
                    close(c.std_error, f(&theirs["se"][j]), &format!("oaxaca se {}", c.term));
                }

                // regress-mml wage i.sex by age.
                let request = OlsRequest {
                    dependent: "wage".into(),
                    terms: vec![Term::Factor("sex".into())],
                    constant: true,
                    ..request.clone()
                };
                let model = mixed_raw(gate, &dataset, &keys, &request, "age", None).unwrap();
                let theirs = &reference["mixed"];
                let stat = |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
                close(stat("REML log likelihood"), f(&theirs["llf"]), "mixed REML log likelihood");
                close(stat("sd of the residual").powi(2), f(&theirs["scale"]), "mixed σ²_e");
                // statsmodels' Nelder–Mead stops within about 1e-5 of the variance ratio.
                close_to(
                    stat("sd of the age intercepts").powi(2),
                    f(&theirs["group_variance"]),
                    1e-4,
                    "mixed σ²_u",
                );
                for (j, c) in model.coefficients.iter().enumerate() {
                    close(c.estimate, f(&theirs["params"][j]), &format!("mixed {}", c.term));
                    close_to(
                        c.std_error,
                        f(&theirs["bse"][j]),
                        1e-5,
                        &format!("mixed se {}", c.term),
                    );
                    // statsmodels inverts the full observed Hessian: within 1e-4 here, not equal.
                    close_to(
                        c.std_error,
                        f(&theirs["bse_statsmodels"][j]),
                        1e-3,
                        &format!("mixed se (statsmodels) {}", c.term),
                    );
                }
            }
            if link == Likelihood::Logit {
                // rdd wage age, threshold(40): rdrobust's bandwidth, bandwidth(8), fuzzy(treated).
                for (key, given, fuzzy) in [
                    ("mserd", None, None),
                    ("given", Some(8.0), None),
                    ("fuzzy", None, Some("treated")),
                ] {
                    let model = rdd_raw(
                        gate, &dataset, &keys, "wage", "age", fuzzy, 40.0, given, 95.0, None,
                    )
                    .unwrap();
                    let theirs = &reference["rdd"][key];
                    let stat =
                        |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
                    close(stat("bandwidth h"), f(&theirs["h"]), &format!("rdd {key} h"));
                    close(stat("bias bandwidth b"), f(&theirs["b"]), &format!("rdd {key} b"));
                    assert_eq!(model.coefficients.len(), 3);
                    for (j, c) in model.coefficients.iter().enumerate() {
                        close(c.estimate, f(&theirs["coef"][j]), &format!("rdd {key} {}", c.term));
                        close(
                            c.std_error,
                            f(&theirs["se"][j]),
                            &format!("rdd {key} se {}", c.term),
                        );
                    }
                }
            }
            if link == Likelihood::Logit {
                // mlogit of the three wage bands on the same terms.
                let request = OlsRequest { dependent: "band".into(), ..request.clone() };
                let model = mlogit_raw(gate, &dataset, &keys, &request, None).unwrap();
                let theirs = &reference["mlogit"];
                assert_eq!(model.coefficients.len(), 6);
                for (j, c) in model.coefficients.iter().enumerate() {
                    close(c.estimate, f(&theirs["params"][j]), &format!("mlogit {}", c.term));
                    close(c.std_error, f(&theirs["bse"][j]), &format!("mlogit se {}", c.term));
                }
                for (errors, key) in [
                    (Errors::Robust, "robust_bse"),
                    (Errors::Cluster("kommune".into()), "cluster_bse"),
                ] {
                    let request = OlsRequest { errors, ..request.clone() };
                    let model = mlogit_raw(gate, &dataset, &keys, &request, None).unwrap();
                    for (j, c) in model.coefficients.iter().enumerate() {
                        close(c.std_error, f(&theirs[key][j]), &format!("mlogit {key} {}", c.term));
                    }
                }
                let stat = |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
                close(stat("log likelihood"), f(&theirs["llf"]), "mlogit log likelihood");
                close(stat("pseudo R²"), f(&theirs["prsquared"]), "mlogit pseudo R²");
            }
            if link == Likelihood::Poisson {
                let (with_exposure, _) = likelihood_raw(
                    gate,
                    &dataset,
                    &keys,
                    &request,
                    link,
                    false,
                    None,
                    Some("age"),
                    None,
                )
                .unwrap();
                let theirs = &reference["poisson_exposure"];
                for (j, c) in with_exposure.coefficients.iter().enumerate() {
                    close(c.estimate, f(&theirs["params"][j]), &format!("exposure {}", c.term));
                    close(c.std_error, f(&theirs["bse"][j]), &format!("exposure se {}", c.term));
                }
                let stat = |name: &str| {
                    with_exposure.statistics.iter().find(|(k, _)| k == name).unwrap().1
                };
                close(stat("log likelihood"), f(&theirs["llf"]), "exposure log likelihood");
                let ll0 = stat("log likelihood") / (1.0 - stat("pseudo R²"));
                close(ll0, f(&theirs["llnull"]), "exposure null log likelihood");
            }
            if link == Likelihood::NegativeBinomial {
                let last = model.coefficients.len();
                close(stat("alpha"), f(&theirs["params"][last]), "negative-binomial alpha");
                close(stat("alpha std. error"), f(&theirs["bse"][last]), "alpha std. error");
            }
        }
    }

    // ivregress earned i.sex (wage = age month).
    {
        let dataset = {
            let mut w = Workspace::default();
            let script = format!(
                "{SCRIPT}import db/INNTEKT_WYRKINNT 2021-12-31 as earned\ngenerate month = birth - 100 * int(birth / 100)\n"
            );
            let outputs = engine.run(&mut w, &script, &audit, "reference").await;
            assert_ran(&outputs);
            w.current().unwrap().clone()
        };
        let request = IvRequest {
            dependent: "earned".into(),
            exogenous: vec![Term::Factor("sex".into())],
            endogenous: vec![Term::Continuous("wage".into())],
            instruments: vec![Term::Continuous("age".into()), Term::Continuous("month".into())],
            constant: true,
            level: 95.0,
            estimator: IvEstimator::Tsls,
        };
        let model = ivregress_raw(gate, &dataset, &keys, &request, None).unwrap();
        let theirs = &reference["ivregress"];
        let terms: Vec<&str> = model.coefficients.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(terms, ["wage", "sex=2", "constant"]);
        for (j, c) in model.coefficients.iter().enumerate() {
            close(c.estimate, f(&theirs["params"][j]), &format!("ivregress {}", c.term));
            close(c.std_error, f(&theirs["bse"][j]), &format!("ivregress se {}", c.term));
        }
        assert_eq!(model.contributors.units, theirs["n"].as_u64().unwrap());
        let stat = |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
        close(stat("R²"), f(&theirs["rsquared"]), "ivregress R²");
        close(stat("Wald chi²"), f(&theirs["wald"]), "ivregress Wald chi²");
        for (key, estimator) in
            [("ivregress_liml", IvEstimator::Liml), ("ivregress_gmm", IvEstimator::Gmm)]
        {
            let request = IvRequest { estimator, ..request.clone() };
            let model = ivregress_raw(gate, &dataset, &keys, &request, None).unwrap();
            let theirs = &reference[key];
            for (j, c) in model.coefficients.iter().enumerate() {
                close(c.estimate, f(&theirs["params"][j]), &format!("{key} {}", c.term));
                close(c.std_error, f(&theirs["bse"][j]), &format!("{key} se {}", c.term));
            }
            if estimator == IvEstimator::Liml {
                let kappa = model.statistics.iter().find(|(k, _)| k == "κ").unwrap().1;
                close(kappa, f(&theirs["kappa"]), "LIML κ");
            }
        }
    }

    // Interactions: regress wage c.age##i.sex and regress wage i.sex##i.band.
    {
        let mut with_band = dataset.clone();
        let band: datafusion::arrow::array::Float64Array =
            numbers(dataset.variable("age").unwrap())
                .unwrap()
                .into_iter()
                .map(|a| a.map(|a| 1.0 + f64::from(a > 35.0) + f64::from(a > 50.0)))
                .collect();
        with_band.set(super::dataset::Variable {
            name: "band".into(),
            values: Arc::new(band),
            info: Default::default(),
        });
        let c = |n: &str| Term::Continuous(n.into());
        let i = |n: &str| Term::Factor(n.into());
        for (key, terms, names) in [
            (
                "age_sex",
                vec![c("age"), i("sex"), Term::Interaction(vec![c("age"), i("sex")])],
                vec!["age", "sex=2", "age#sex=2", "constant"],
            ),
            (
                "sex_band",
                vec![i("sex"), i("band"), Term::Interaction(vec![i("sex"), i("band")])],
                vec!["sex=2", "band=2", "band=3", "sex=2#band=2", "sex=2#band=3", "constant"],
            ),
        ] {
            let request = OlsRequest { terms, ..ols(Errors::Classical) };
            let model = ols_raw(&with_band, &keys, &request, None).unwrap();
            let ours: Vec<&str> = model.coefficients.iter().map(|c| c.term.as_str()).collect();
            assert_eq!(ours, names);
            let theirs = &reference["interactions"][key];
            for (j, c) in model.coefficients.iter().enumerate() {
                close(c.estimate, f(&theirs["params"][j]), &format!("{key} {}", c.term));
                close(c.std_error, f(&theirs["bse"][j]), &format!("{key} se {}", c.term));
            }
        }
    }

    // regress wage age i.sex, vif standardize.
    {
        let model = ols_raw(dataset, &keys, &ols(Errors::Classical), None).unwrap();
        let table = super::models::regression_diagnostics(
            dataset,
            &keys,
            &ols(Errors::Classical),
            None,
            true,
            Some(&model),
        )
        .unwrap();
        let theirs = &reference["models"]["diagnostics"];
        assert_eq!(table.row_labels, ["age", "sex=2"]);
        for j in 0..2 {
            close(table.values[j][0].unwrap(), f(&theirs["vif"][j]), "VIF");
            close(table.values[j][1].unwrap(), f(&theirs["beta"][j]), "standardized coefficient");
        }
    }

    for (key, errors) in [
        ("classical", Errors::Classical),
        ("robust", Errors::Robust),
        ("cluster", Errors::Cluster("kommune".into())),
    ] {
        let model = ols_raw(dataset, &keys, &ols(errors), None).unwrap();
        let theirs = &reference["models"][key];
        for (j, c) in model.coefficients.iter().enumerate() {
            close(c.estimate, f(&theirs["params"][j]), &format!("{key} {}", c.term));
            close(c.std_error, f(&theirs["bse"][j]), &format!("{key} se {}", c.term));
        }
        if key == "classical" {
            for (j, c) in model.coefficients.iter().enumerate() {
                let p = f(&theirs["pvalues"][j]);
                // p-values far below 1e-12 are zero in both; compare absolutely there.
                assert!(
                    (c.p_value - p).abs() < 1e-9 || (c.p_value - p).abs() / p < 1e-6,
                    "p {}: {} vs {p}",
                    c.term,
                    c.p_value
                );
            }
            let stat = |name: &str| model.statistics.iter().find(|(k, _)| k == name).unwrap().1;
            close(stat("R²"), f(&theirs["rsquared"]), "R²");
            close(stat("F"), f(&theirs["fvalue"]), "F");
            assert_eq!(model.contributors.units, theirs["n"].as_u64().unwrap());
        }
    }

    // regress-predict and logit-predict: the new variables against statsmodels' predict on
    // every row with the regressors (wage may be missing there), and its residuals.
    {
        let mut w = Workspace::default();
        let script = format!(
            "{SCRIPT}regress-predict wage age i.sex, predicted(fitted) residuals(residual)\ngenerate high = wage > 500000 if !sysmiss(wage)\nlogit-predict high age i.sex, predicted(p_high) residuals(r_high)\n"
        );
        let outputs = engine.run(&mut w, &script, &audit, "reference").await;
        assert_ran(&outputs);
        let dataset = w.current().unwrap();
        let moments = |name: &str| {
            let values = numbers(dataset.variable(name).unwrap()).unwrap();
            let present: Vec<f64> = values.into_iter().flatten().collect();
            (
                present.len() as u64,
                present.iter().sum::<f64>(),
                present.iter().map(|v| v * v).sum::<f64>(),
            )
        };
        for (name, key) in [("fitted", "ols"), ("p_high", "logit")] {
            let theirs = &reference["predict"][key];
            let (n, sum, squares) = moments(name);
            assert_eq!(n, theirs["n"].as_u64().unwrap(), "{key} predictions");
            close(sum, f(&theirs["sum"]), &format!("{key} sum of predictions"));
            close(squares, f(&theirs["sum_sq"]), &format!("{key} sum of squared predictions"));
        }
        for (name, key) in [("residual", "ols"), ("r_high", "logit")] {
            let theirs = &reference["predict"][key];
            let (n, _, squares) = moments(name);
            assert_eq!(n, theirs["n_resid"].as_u64().unwrap(), "{key} residuals");
            close(squares, f(&theirs["resid_sq"]), &format!("{key} sum of squared residuals"));
        }
    }
}

#[tokio::test]
async fn collapse_matches_pandas_groupby_on_the_same_parquet() {
    let registry = Registry::open(small_demo()).unwrap();
    let engine = Engine::new(Arc::new(registry), Limits::default()).unwrap();
    let mut workspace = Workspace::default();
    let audit = MemoryAudit::default();
    let script = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_REGSTAT_FAMNR 2021-01-01 as famnr
import db/INNTEKT_WYRKINNT 2021-12-31 as earned
collapse (sum) earned -> sum (mean) earned -> mean (count) earned -> count (median) earned -> median (sd) earned -> sd (p25) earned -> p25 (p75) earned -> p75 (min) earned -> min (max) earned -> max (semean) earned -> semean, by(famnr)
";
    let outputs = engine.run(&mut workspace, script, &audit, "reference").await;
    assert_ran(&outputs);
    let reference = reference();
    let theirs = reference["collapse"].as_object().unwrap();
    let dataset = workspace.current().unwrap();
    assert_eq!(dataset.len(), theirs.len(), "number of groups");
    let stats = ["sum", "mean", "count", "median", "sd", "p25", "p75", "min", "max", "semean"];
    let columns: Vec<_> = stats
        .iter()
        .map(|s| {
            let v = dataset.variable(s).unwrap();
            datafusion::arrow::compute::cast(
                &v.values,
                &datafusion::arrow::datatypes::DataType::Float64,
            )
            .unwrap()
        })
        .collect();
    for (i, group) in dataset.ids.values().iter().enumerate() {
        let row = &theirs[&group.to_string()];
        for (s, column) in stats.iter().zip(&columns) {
            let ours =
                column.as_any().downcast_ref::<datafusion::arrow::array::Float64Array>().unwrap();
            match row[*s].as_f64() {
                None => assert!(
                    ours.is_null(i),
                    "{s} of group {group}: ours {}, pandas none",
                    ours.value(i)
                ),
                Some(v) => {
                    assert!(ours.is_valid(i), "{s} of group {group}: ours none, pandas {v}");
                    let x = ours.value(i);
                    assert!(
                        (x - v).abs() <= 1e-6 * v.abs().max(1.0),
                        "{s} of group {group}: ours {x}, pandas {v}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn distribution_functions_match_scipy() {
    let registry = Registry::open(small_demo()).unwrap();
    let engine = Engine::new(Arc::new(registry), Limits::default()).unwrap();
    let reference = reference();
    let functions = reference["functions"].as_object().unwrap();
    let mut script = String::from(
        "require demo:1 as db\ncreate-dataset persons\nimport db/BEFOLKNING_KJOENN as sex\n",
    );
    let expressions: Vec<&String> = functions.keys().collect();
    for (i, e) in expressions.iter().enumerate() {
        script.push_str(&format!("generate f{i} = {e}\n"));
    }
    let mut workspace = Workspace::default();
    let audit = MemoryAudit::default();
    let outputs = engine.run(&mut workspace, &script, &audit, "reference").await;
    assert_ran(&outputs);
    let dataset = workspace.current().unwrap();
    for (i, e) in expressions.iter().enumerate() {
        let v = dataset.variable(&format!("f{i}")).unwrap();
        let ours = datafusion::arrow::compute::cast(
            &v.values,
            &datafusion::arrow::datatypes::DataType::Float64,
        )
        .unwrap();
        let ours = ours
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .unwrap()
            .value(0);
        close(ours, f(&functions[e.as_str()]), e);
    }
}

#[tokio::test]
async fn panel_models_match_linearmodels_on_the_same_parquet() {
    use super::commands::panel::{Estimator, PanelSample, hausman};
    let registry = Registry::open(small_demo()).unwrap();
    let engine = Engine::new(Arc::new(registry), Limits::default()).unwrap();
    let mut workspace = Workspace::default();
    let audit = MemoryAudit::default();
    let script = "require demo:1 as db
create-dataset panel
import-panel db/INNTEKT_WLONN db/SIVSTANDFDT_SIVSTAND db/BEFOLKNING_KJOENN 2019-01-01 2020-01-01 2021-01-01
generate married = SIVSTANDFDT_SIVSTAND == '2'
generate female = BEFOLKNING_KJOENN == '2'
";
    let outputs = engine.run(&mut workspace, script, &audit, "reference").await;
    assert_ran(&outputs);
    let reference = reference();
    let dataset = workspace.current().unwrap();
    assert_eq!(dataset.len() as u64, reference["panel_rows"].as_u64().unwrap(), "panel rows");
    let gate = engine.gate(dataset.origin.as_ref());
    let keys = gate.record_keys(&dataset.ids);
    let request = |terms: &[&str]| OlsRequest {
        dependent: "INNTEKT_WLONN".into(),
        terms: terms.iter().map(|t| Term::Continuous((*t).to_owned())).collect(),
        constant: true,
        errors: Errors::Classical,
        level: 95.0,
    };
    let theirs = &reference["panel"];
    let fit = |estimator, terms: &[&str]| {
        let sample = PanelSample::new(dataset, &keys, &request(terms), None).unwrap();
        let estimate = sample.estimate(estimator).unwrap();
        (sample, estimate)
    };
    let mut estimates = Vec::new();
    for (name, estimator, terms) in [
        ("fe", Estimator::Fixed, &["married"][..]),
        ("re", Estimator::Random, &["married", "female"][..]),
        ("be", Estimator::Between, &["married", "female"][..]),
        ("pooled", Estimator::Pooled, &["married", "female"][..]),
    ] {
        let (sample, estimate) = fit(estimator, terms);
        let reference = &theirs[name];
        // linearmodels counts the units of the between regression, and rows otherwise.
        let n = if estimator == Estimator::Between { sample.units() } else { sample.rows() as u64 };
        assert_eq!(n, reference["nobs"].as_u64().unwrap(), "{name} observations");
        for (j, term) in estimate.names.iter().enumerate() {
            close(estimate.beta[j], f(&reference["params"][j]), &format!("{name} {term}"));
            close(
                estimate.covariance[(j, j)].sqrt(),
                f(&reference["bse"][j]),
                &format!("{name} {term} standard error"),
            );
        }
        let statistic = |label: &str| {
            estimate.statistics.iter().find(|(l, _)| l == label).map(|(_, v)| *v).unwrap()
        };
        for (label, key) in
            [("R² within", "r2_within"), ("R² between", "r2_between"), ("R² overall", "r2_overall")]
        {
            close(statistic(label), f(&reference[key]), &format!("{name} {label}"));
        }
        if estimator == Estimator::Random {
            close(statistic("σ_u"), f(&reference["sigma_u"]), "re σ_u");
            close(statistic("σ_e"), f(&reference["sigma_e"]), "re σ_e");
            close(statistic("ρ"), f(&reference["rho"]), "re ρ");
        }
        estimates.push(estimate);
    }

    // hausman INNTEKT_WLONN married: fixed against random effects on the same sample.
    let fixed = estimates.remove(0);
    let (_, random) = fit(Estimator::Random, &["married"]);
    let test = hausman(&fixed, &random).unwrap();
    assert_eq!(test.df, 1);
    close(test.chi2, f(&theirs["hausman"]["chi2"]), "hausman χ²");
    close(test.p_value, f(&theirs["hausman"]["p"]), "hausman p");
}
