//! A data order from a script: the datastores, variables, dates and population definitions it
//! uses, as an attachment to an application to the statistics office for access to the full
//! microdata (as microdata.no users attach a script to theirs). It is read from the script
//! alone, after expansion (loops unrolled, `$bindings` substituted) and against the datastore
//! catalogue (an unpinned `require` gets the newest version, labels are looked up), so it
//! reads no data and tells nothing about any unit.

use std::collections::BTreeMap;

use shared::api::{DataOrder, OrderedDatastore, OrderedVariable, PopulationRule};
use shared::script::{TokenKind, Verb};

use crate::datastore::{DatastoreVersion, Registry};
use crate::engine::expand::{Expanded, expand};

/// Why no order can be made: the script does not parse or expand.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct OrderError {
    pub line: u32,
    pub message: String,
}

/// The data order of `script`, resolved against `registry`.
pub fn data_order(
    script: &str,
    registry: &Registry,
    max_commands: usize,
) -> Result<DataOrder, OrderError> {
    let steps = expand(script, max_commands).map_err(|problems| {
        let first = problems.into_iter().next();
        OrderError {
            line: first.as_ref().map_or(1, |p| p.line),
            message: first.map_or_else(|| "the script cannot be read".into(), |p| p.message),
        }
    })?;
    let mut aliases: BTreeMap<String, OrderedDatastore> = BTreeMap::new();
    let mut variables: BTreeMap<(String, u32, String), OrderedVariable> = BTreeMap::new();
    let mut populations = Vec::new();
    let mut dataset = String::new();
    for step in &steps {
        let src = step.text.as_str();
        let words: Vec<&str> = step
            .command
            .args
            .iter()
            .filter(|t| t.kind != TokenKind::Comma)
            .map(|t| t.span.text(src))
            .collect();
        match step.verb() {
            Verb::Require => {
                if let Some(required) = required(step, registry) {
                    aliases.insert(required.alias.clone(), required);
                }
            }
            Verb::CreateDataset | Verb::Use => {
                dataset = words.first().map_or_else(String::new, |w| (*w).to_owned());
            }
            Verb::Import | Verb::ImportEvent | Verb::ImportPanel => {
                for (alias, variable, dates) in imported(step) {
                    let Some(store) = aliases.get(&alias) else { continue };
                    let key = (store.name.clone(), store.version, variable.clone());
                    let label = versions_of(registry, &store.name)
                        .and_then(|versions| {
                            versions.iter().find(|v| v.metadata.version == store.version)
                        })
                        .and_then(|v| v.variables.iter().find(|(n, _)| n.as_str() == variable))
                        .map(|(_, m)| m.label.clone());
                    let entry = variables.entry(key).or_insert_with(|| OrderedVariable {
                        datastore: store.name.clone(),
                        version: store.version,
                        variable: variable.clone(),
                        label,
                        command: step.command.name.clone(),
                        dates: Vec::new(),
                        lines: Vec::new(),
                    });
                    for date in dates {
                        if !entry.dates.contains(&date) {
                            entry.dates.push(date);
                        }
                    }
                    if !entry.lines.contains(&step.line) {
                        entry.lines.push(step.line);
                    }
                }
            }
            Verb::Keep | Verb::Drop | Verb::Sample | Verb::CloneUnits => {
                let rule = step.text.trim().to_owned();
                let is_population = step.verb() == Verb::Sample
                    || step.verb() == Verb::CloneUnits
                    || step.command.condition.is_some();
                if is_population {
                    populations.push(PopulationRule {
                        dataset: dataset.clone(),
                        line: step.line,
                        rule,
                    });
                }
            }
            _ => {}
        }
    }
    let mut variables: Vec<OrderedVariable> = variables.into_values().collect();
    for v in &mut variables {
        v.dates.sort();
    }
    Ok(DataOrder { datastores: aliases.into_values().collect(), variables, populations })
}

/// The published versions of the datastore called `name`, oldest first.
fn versions_of<'r>(registry: &'r Registry, name: &str) -> Option<&'r [DatastoreVersion]> {
    registry.datastores.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v.as_slice())
}

/// `require NAME[:VERSION] as ALIAS`, its version resolved (the newest when not given).
fn required(step: &Expanded, registry: &Registry) -> Option<OrderedDatastore> {
    let src = step.text.as_str();
    let t = &step.command.args;
    let as_at = t.iter().position(|x| x.kind == TokenKind::Ident && x.span.text(src) == "as")?;
    let (first, alias) = (t.first()?, t.get(as_at + 1)?);
    if as_at == 0 {
        return None;
    }
    let target = &src[first.span.start as usize..t[as_at - 1].span.end as usize];
    let (name, version) = match target.split_once(':') {
        Some((n, v)) => (n.trim(), v.trim().parse::<u32>().ok()),
        None => (target.trim(), None),
    };
    let versions = versions_of(registry, name)?;
    let version = version.or_else(|| versions.last().map(|v| v.metadata.version))?;
    let label = versions.iter().find(|v| v.metadata.version == version)?.metadata.label.clone();
    Some(OrderedDatastore {
        alias: alias.span.text(src).to_owned(),
        name: name.to_owned(),
        version,
        label,
    })
}

/// The variables an import line brings in, each as (alias, variable, its dates as written).
fn imported(step: &Expanded) -> Vec<(String, String, Vec<String>)> {
    let src = step.text.as_str();
    let t = &step.command.args;
    let dates: Vec<String> = t
        .iter()
        .filter(|x| x.kind == TokenKind::Date)
        .map(|x| x.span.text(src).to_owned())
        .collect();
    // import-event's dates are one window.
    let dates = if step.verb() == Verb::ImportEvent && dates.len() == 2 {
        vec![format!("{} to {}", dates[0], dates[1])]
    } else {
        dates
    };
    t.windows(3)
        .filter(|w| {
            w[0].kind == TokenKind::Ident
                && w[1].kind == TokenKind::Slash
                && w[2].kind == TokenKind::Ident
        })
        .map(|w| (w[0].span.text(src).to_owned(), w[2].span.text(src).to_owned(), dates.clone()))
        .collect()
}

/// The order as a page a reviewer reads.
pub fn order_text(order: &DataOrder) -> String {
    let mut out = String::from("Data order\n\nDatastores\n");
    for d in &order.datastores {
        out.push_str(&format!(
            "  {} version {} ({}), as {}\n",
            d.name, d.version, d.label.en, d.alias
        ));
    }
    out.push_str(&format!("\nVariables ({})\n", order.variables.len()));
    for v in &order.variables {
        let label = v.label.as_ref().map(|l| format!(": {}", l.en)).unwrap_or_default();
        let dates =
            if v.dates.is_empty() { String::new() } else { format!(", at {}", v.dates.join(", ")) };
        let lines: Vec<String> = v.lines.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "  {}:{} {}{label} ({}{dates}; line {})\n",
            v.datastore,
            v.version,
            v.variable,
            v.command,
            lines.join(", ")
        ));
    }
    out.push_str("\nPopulation\n");
    if order.populations.is_empty() {
        out.push_str("  every unit the imports bring in\n");
    }
    for p in &order.populations {
        out.push_str(&format!("  {}: {} (line {})\n", p.dataset, p.rule, p.line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::open(crate::test_support::small_demo()).unwrap()
    }

    const SCRIPT: &str = "require demo as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
for y in 2019 : 2021
  import db/INNTEKT_WLONN $y-12-31 as wage_ ++ $y
end
import db/INNTEKT_WLONN 2019-12-31 as again
import-event db/ARBSOEK_ARBSOKERSTATUS 2020-01-01 to 2020-12-31 as seeking
keep if sex == 2
drop wage_2019
sample 0.5 42
tabulate sex
";

    #[test]
    fn an_order_lists_each_variable_once_with_its_dates_and_the_lines_that_choose_units() {
        let registry = registry();
        let order = data_order(SCRIPT, &registry, 10_000).unwrap();
        // An unpinned require is pinned to the newest version.
        let [demo] = order.datastores.as_slice() else { panic!("{:?}", order.datastores) };
        assert_eq!((demo.alias.as_str(), demo.name.as_str(), demo.version), ("db", "demo", 1));
        let names: Vec<&str> = order.variables.iter().map(|v| v.variable.as_str()).collect();
        assert_eq!(names, ["ARBSOEK_ARBSOKERSTATUS", "BEFOLKNING_KJOENN", "INNTEKT_WLONN"]);
        let wage = &order.variables[2];
        assert_eq!(wage.dates, ["2019-12-31", "2020-12-31", "2021-12-31"], "the loop unrolled");
        assert_eq!(wage.lines, [5, 7]);
        let demo_1 = &versions_of(&registry, "demo").unwrap()[0];
        let catalogued =
            &demo_1.variables.iter().find(|(n, _)| n.as_str() == "INNTEKT_WLONN").unwrap().1.label;
        assert_eq!(wage.label.as_ref(), Some(catalogued));
        assert_eq!(order.variables[0].dates, ["2020-01-01 to 2020-12-31"]);
        assert_eq!(order.variables[0].command, "import-event");
        assert!(order.variables[1].dates.is_empty(), "a fixed variable has no date");
        // Conditions and samples choose units; dropping a variable does not.
        let rules: Vec<(u32, &str, &str)> = order
            .populations
            .iter()
            .map(|p| (p.line, p.dataset.as_str(), p.rule.as_str()))
            .collect();
        assert_eq!(rules, [(9, "persons", "keep if sex == 2"), (11, "persons", "sample 0.5 42")]);

        let text = order_text(&order);
        assert!(text.contains("  demo version 1 ("), "{text}");
        assert!(
            text.contains("  demo:1 INNTEKT_WLONN: ")
                && text.contains("(import, at 2019-12-31, 2020-12-31, 2021-12-31; line 5, 7)"),
            "{text}"
        );
        assert!(text.contains("  persons: keep if sex == 2 (line 9)"), "{text}");
    }

    #[test]
    fn a_script_that_cannot_be_read_names_its_line() {
        let error =
            data_order("require demo as db\ntabluate sex\n", &registry(), 10_000).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("tabulate"), "{error}");
        // A variable the catalogue does not have is still ordered, without a label.
        let order = data_order(
            "require demo:1 as db\ncreate-dataset p\nimport db/NOPE as x\n",
            &registry(),
            10_000,
        )
        .unwrap();
        assert_eq!(order.variables[0].variable, "NOPE");
        assert_eq!(order.variables[0].label, None);
    }
}
