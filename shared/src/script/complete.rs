//! What the editor offers to complete at the caret, from the script itself and the catalogue:
//! command names at the start of a line, a command's option names after its comma, the
//! variables of the dataset in use (as the lines above the caret leave it) and the language's
//! functions in a command's arguments, dataset names where a command takes one, and the
//! datastore's variables after `alias/`.
//!
//! The dataset's variables come from reading the script, not from the server's workspace:
//! what the lines above the caret import, generate, rename and drop is what the line being
//! written will see when the script runs from the top.

use std::collections::BTreeMap;

use super::catalog::{self, Verb};
use super::lexer::{Token, TokenKind};
use super::parse::{Command, Item, parse};

/// The word before the caret (bytes `start..caret`) and the names that continue it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub start: usize,
    pub items: Vec<String>,
}

/// At most this many names are offered at once.
const SHOWN: usize = 8;

/// What continues the word before byte `caret` of `script`, or `None` where nothing does.
/// `catalog(datastore)` gives the variable names of a datastore the script requires (empty
/// when the editor has not fetched them).
pub fn completions_at(
    script: &str,
    caret: usize,
    catalog: &dyn Fn(&str) -> Vec<String>,
) -> Option<Completion> {
    let caret = (0..=caret.min(script.len())).rev().find(|&i| script.is_char_boundary(i))?;
    let line_start = script[..caret].rfind('\n').map_or(0, |i| i + 1);
    let line = &script[line_start..caret];
    if line.contains("//") || line.matches(['\'', '"']).count() % 2 == 1 {
        return None;
    }
    let trailing = |is_word: fn(char) -> bool| {
        let len = line.len() - line.trim_end_matches(is_word).len();
        (&line[line.len() - len..], &line[..line.len() - len])
    };
    let (word, before) = trailing(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if before.trim_start().is_empty() {
        if word.is_empty() {
            return None;
        }
        let names = catalog::commands().iter().map(|c| c.name.to_owned());
        return offer(caret - word.len(), word, names);
    }
    // A name inside an expression or an argument list ends at a minus sign.
    let (word, before) = trailing(|c| c.is_ascii_alphanumeric() || c == '_');
    let start = caret - word.len();
    let name: String = before
        .trim_start()
        .chars()
        .take_while(|&c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .collect();
    let spec = catalog::command(&name)?;

    if let Some(alias_part) = before.strip_suffix('/') {
        let alias_len = alias_part.len()
            - alias_part.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
        let alias = &alias_part[alias_part.len() - alias_len..];
        let datastore = bound_datastore(&script[..line_start], alias)?;
        // Catalogue names are upper case; a lower-case start finds them too.
        let upper = word.to_uppercase();
        let mut names = catalog(&datastore);
        names.retain(|n| n.starts_with(&upper) && n.as_str() != word);
        names.sort();
        return (!names.is_empty() || word.is_empty())
            .then(|| Completion { start, items: names.into_iter().take(SHOWN).collect() })
            .filter(|c| !c.items.is_empty());
    }

    // Options: after the command's comma, outside any parentheses.
    let in_parentheses = |text: &str| text.matches('(').count() > text.matches(')').count();
    if let Some((_, options)) = before.split_once(',')
        && !in_parentheses(options)
    {
        let at_option_start =
            options.trim_end().is_empty() || before.ends_with(char::is_whitespace);
        if !at_option_start {
            return None;
        }
        return offer(start, word, spec.options.iter().map(|o| o.name.to_owned()));
    }

    if word.is_empty() {
        return None;
    }
    let datasets = Datasets::read(&script[..line_start]);
    let arguments = before.trim_start()[name.len()..].trim_start();
    let words: Vec<&str> = arguments.split_whitespace().collect();
    let previous = if before.ends_with(char::is_whitespace) { words.last() } else { None };
    if takes_dataset(spec.verb, words.len(), previous.copied()) {
        return offer(start, word, datasets.names());
    }
    if names_a_new_variable(spec.verb, words.len(), previous.copied(), in_parentheses(before)) {
        return None;
    }
    let variables = datasets.current_variables();
    let functions = catalog::functions().map(str::to_owned);
    offer(start, word, variables.into_iter().chain(functions))
}

/// The names among `names` that continue `word` (not `word` itself), in their order.
fn offer(start: usize, word: &str, names: impl Iterator<Item = String>) -> Option<Completion> {
    let mut items: Vec<String> = Vec::new();
    for name in names.filter(|n| n.starts_with(word) && n != word) {
        if !items.contains(&name) {
            items.push(name);
        }
        if items.len() == SHOWN {
            break;
        }
    }
    (!items.is_empty()).then_some(Completion { start, items })
}

/// The datastore that `require DATASTORE:VERSION as ALIAS` binds to `alias` in `script`.
fn bound_datastore(script: &str, alias: &str) -> Option<String> {
    script.lines().rev().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "require").then_some(())?;
        let store = words.next()?;
        (words.next()? == "as" && words.next()? == alias)
            .then(|| store.split(':').next().unwrap_or(store).to_owned())
    })
}

/// Whether the word being written names a dataset: `use d`, `delete-dataset d`, the first
/// dataset of `clone-dataset`, `rename-dataset` and `clone-units`, and `merge … into d`.
fn takes_dataset(verb: Verb, written: usize, previous: Option<&str>) -> bool {
    match verb {
        Verb::Use | Verb::DeleteDataset => written == 0,
        Verb::CloneDataset | Verb::RenameDataset | Verb::CloneUnits => written == 0,
        Verb::Merge => previous == Some("into"),
        _ => false,
    }
}

/// Whether the word being written is a new name, where offering existing ones would only get
/// in the way: what `generate` creates, what follows `as` or `->`, a new dataset's name, and
/// the names inside options such as `predicted()`.
fn names_a_new_variable(verb: Verb, written: usize, previous: Option<&str>, inside: bool) -> bool {
    if matches!(previous, Some("as" | "->")) {
        return true;
    }
    match verb {
        Verb::Generate => written == 0,
        Verb::Rename => written == 1,
        Verb::CreateDataset | Verb::Let | Verb::For | Verb::Require => true,
        Verb::CloneDataset | Verb::RenameDataset | Verb::CloneUnits => written == 1,
        Verb::RegressPredict
        | Verb::LogitPredict
        | Verb::ProbitPredict
        | Verb::PoissonPredict
        | Verb::Recode
        | Verb::Destring => inside,
        _ => false,
    }
}

/// The datasets a script makes and the variables of each, as far as its text tells.
#[derive(Debug, Default)]
pub struct Datasets {
    variables: BTreeMap<String, Vec<String>>,
    current: Option<String>,
}

impl Datasets {
    /// Reads `script` from the top. Names built from `$bindings` inside loops are not known
    /// until the script runs, so they are left out.
    pub fn read(script: &str) -> Datasets {
        let mut datasets = Datasets::default();
        let parsed = parse(script);
        datasets.items(script, &parsed.items);
        datasets
    }

    /// The names of the datasets.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.variables.keys().cloned()
    }

    /// The variables of the dataset in use, in the order they came.
    pub fn current_variables(&self) -> Vec<String> {
        self.current.as_ref().and_then(|c| self.variables.get(c)).cloned().unwrap_or_default()
    }

    fn items(&mut self, src: &str, items: &[Item]) {
        for item in items {
            match item {
                Item::Command(c) => self.command(src, c),
                Item::For { body, .. } => self.items(src, body),
                Item::TextBlock { .. } => {}
            }
        }
    }

    fn current(&mut self) -> Option<&mut Vec<String>> {
        let current = self.current.clone()?;
        Some(self.variables.entry(current).or_default())
    }

    fn add(&mut self, names: impl IntoIterator<Item = String>) {
        if let Some(variables) = self.current() {
            for name in names {
                if !variables.contains(&name) {
                    variables.push(name);
                }
            }
        }
    }

    fn command(&mut self, src: &str, c: &Command) {
        // A name built from a binding is known only when the loop runs.
        if c.args.iter().any(|t| matches!(t.kind, TokenKind::Dollar | TokenKind::PlusPlus)) {
            return;
        }
        let Some(verb) = Verb::named(&c.name) else { return };
        let text = |t: &Token| t.span.text(src).to_owned();
        // The names outside parentheses: `(mean)` in collapse and the rules of recode are no
        // variables.
        let mut depth = 0_i32;
        let idents: Vec<String> = c
            .args
            .iter()
            .filter(|t| {
                match t.kind {
                    TokenKind::LParen => depth += 1,
                    TokenKind::RParen => depth -= 1,
                    _ => {}
                }
                depth == 0 && t.kind == TokenKind::Ident
            })
            .map(text)
            .collect();
        let option = |name: &str| -> Vec<String> {
            c.options
                .iter()
                .filter(|o| o.name == name)
                .flat_map(|o| o.args.iter().flatten())
                .filter(|t| t.kind == TokenKind::Ident)
                .map(text)
                .collect()
        };
        let first = idents.first().cloned();
        match verb {
            Verb::CreateDataset => {
                if let Some(d) = first {
                    self.variables.insert(d.clone(), Vec::new());
                    self.current = Some(d);
                }
            }
            Verb::Use => self.current = first.or(self.current.take()),
            Verb::DeleteDataset => {
                for d in &idents {
                    self.variables.remove(d);
                }
            }
            Verb::CloneDataset | Verb::RenameDataset | Verb::CloneUnits => {
                if let [from, to, ..] = idents.as_slice() {
                    let variables = match verb {
                        Verb::CloneUnits => Vec::new(),
                        Verb::RenameDataset => self.variables.remove(from).unwrap_or_default(),
                        _ => self.variables.get(from).cloned().unwrap_or_default(),
                    };
                    self.variables.insert(to.clone(), variables);
                    if verb == Verb::RenameDataset && self.current.as_ref() == Some(from) {
                        self.current = Some(to.clone());
                    }
                }
            }
            Verb::Clear => self.variables.clear(),
            Verb::Import | Verb::ImportEvent => {
                let named = idents.iter().position(|w| w == "as").and_then(|i| idents.get(i + 1));
                // alias / VARIABLE: the variable is the second name.
                if let Some(name) = named.or(idents.get(1)) {
                    self.add([name.clone()]);
                }
            }
            Verb::ImportPanel => {
                let variables = c.args.windows(2).filter(|w| w[0].kind == TokenKind::Slash);
                let names: Vec<String> = variables.map(|w| text(&w[1])).collect();
                self.add(names);
            }
            Verb::Generate => self.add(first),
            Verb::Rename => {
                if let (Some(old), Some(new), Some(variables)) =
                    (idents.first().cloned(), idents.get(1).cloned(), self.current())
                {
                    variables.iter_mut().filter(|v| **v == old).for_each(|v| *v = new.clone());
                }
            }
            Verb::CloneVariables | Verb::Aggregate | Verb::Destring | Verb::Recode => {
                let (prefix, suffix) = (option("prefix"), option("suffix"));
                let mut made = arrow_targets(src, &c.args);
                if made.is_empty() && !(prefix.is_empty() && suffix.is_empty()) {
                    let affix = |v: &String| format!("{}{v}{}", prefix.concat(), suffix.concat());
                    made = idents.iter().map(affix).collect();
                }
                made.extend(option("generate"));
                self.add(made);
            }
            Verb::Collapse => {
                let mut kept = option("by");
                let targets = arrow_targets(src, &c.args);
                kept.extend(if targets.is_empty() { idents } else { targets });
                if let Some(variables) = self.current() {
                    *variables = kept;
                }
            }
            Verb::Merge => {
                if let Some(i) = idents.iter().position(|w| w == "into")
                    && let Some(target) = idents.get(i + 1)
                {
                    let into = self.variables.entry(target.clone()).or_default();
                    for name in &idents[..i] {
                        if !into.contains(name) {
                            into.push(name.clone());
                        }
                    }
                }
            }
            Verb::Keep | Verb::Drop if c.condition.is_none() && !idents.is_empty() => {
                if let Some(variables) = self.current() {
                    let keep = verb == Verb::Keep;
                    variables.retain(|v| idents.contains(v) == keep);
                }
            }
            Verb::ReshapeToPanel => {
                if let Some(variables) = self.current() {
                    variables.retain(|v| !idents.iter().any(|p| v.starts_with(p.as_str())));
                }
                self.add(idents.iter().map(|p| p.trim_end_matches('_').to_owned()));
            }
            Verb::RegressPredict
            | Verb::LogitPredict
            | Verb::ProbitPredict
            | Verb::PoissonPredict => {
                let made = [option("predicted"), option("residuals")].concat();
                self.add(made);
            }
            _ => {}
        }
    }
}

/// The names after `->` in `v -> new …`.
fn arrow_targets(src: &str, args: &[Token]) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0].kind == TokenKind::Arrow && w[1].kind == TokenKind::Ident)
        .map(|w| w[1].span.text(src).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Vec<String> {
        Vec::new()
    }

    fn at_end(script: &str) -> Option<Completion> {
        completions_at(script, script.len(), &none)
    }

    fn items(script: &str) -> Vec<String> {
        at_end(script).map(|c| c.items).unwrap_or_default()
    }

    #[test]
    fn command_names_at_the_start_of_a_line_then_the_commands_options() {
        let first = at_end("require demo:1 as db\ntab").unwrap();
        assert_eq!(
            (first.start, first.items),
            (21, vec!["tabulate".into(), "tabulate-panel".into()])
        );
        assert_eq!(items("  import-"), ["import-event", "import-panel"]);
        let options = at_end("regress wage age, robust cl").unwrap();
        assert_eq!((options.start, options.items), (25, vec!["cluster".to_owned()]));
        assert_eq!(items("regress wage age, ").len(), 6);
        assert_eq!(items("tabulate"), ["tabulate-panel"]);
        // Not after a whole name, not on an empty line, not in a comment or a string.
        assert_eq!(at_end("tabulate-panel"), None);
        assert_eq!(at_end(""), None);
        assert_eq!(at_end("// tab"), None);
        assert_eq!(at_end("define-labels k 1 'tab"), None);
    }

    const PERSONS: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/INNTEKT_WLONN 2021-12-31 as wage
import db/BEFOLKNING_STATSBORGERSKAP
generate wage_k = wage / 1000
";

    #[test]
    fn variables_of_the_dataset_in_use_and_functions_in_arguments() {
        let script = |line: &str| format!("{PERSONS}{line}");
        assert_eq!(items(&script("summarize wa")), ["wage", "wage_k"]);
        assert_eq!(items(&script("summarize BEF")), ["BEFOLKNING_STATSBORGERSKAP"]);
        assert_eq!(items(&script("tabulate sex if wa")), ["wage", "wage_k"]);
        // Inside an option's parentheses the variables are offered as well.
        assert_eq!(items(&script("tabulate sex, summarize(wag")), ["wage", "wage_k"]);
        // Functions after the variables, in the catalogue's order; a minus ends a name.
        assert_eq!(
            items(&script("generate x = wage-ro")),
            [
                "round",
                "rowmax",
                "rowmin",
                "rowmean",
                "rowmedian",
                "rowtotal",
                "rowstd",
                "rowmissing"
            ]
        );
        let started = at_end(&script("generate x = wage-ro")).unwrap().start;
        assert_eq!(started, PERSONS.len() + "generate x = wage-".len());
        // Not the name generate creates, not after as, not without a first letter.
        assert_eq!(at_end(&script("generate wa")), None);
        assert_eq!(at_end(&script("import db/X as wa")), None);
        assert_eq!(at_end(&script("summarize ")), None);
    }

    #[test]
    fn the_script_above_decides_what_the_dataset_holds() {
        let after = |lines: &str| Datasets::read(&format!("{PERSONS}{lines}")).current_variables();
        assert_eq!(
            after("rename wage pay\n"),
            ["sex", "pay", "BEFOLKNING_STATSBORGERSKAP", "wage_k"]
        );
        assert_eq!(after("drop wage wage_k\n"), ["sex", "BEFOLKNING_STATSBORGERSKAP"]);
        assert_eq!(after("keep sex\n"), ["sex"]);
        assert_eq!(after("keep if wage > 0\n").len(), 4);
        assert_eq!(after("clone-variables wage -> pay, prefix(x_)\n").last().unwrap(), "pay");
        assert_eq!(after("clone-variables sex, prefix(x_)\n").last().unwrap(), "x_sex");
        assert_eq!(
            after("regress-predict wage sex, predicted(fit) residuals(res)\n")[4..],
            ["fit", "res"]
        );
        assert_eq!(after("collapse (mean) wage -> mean_wage, by(sex)\n"), ["sex", "mean_wage"]);
        assert_eq!(after("collapse (mean) wage, by(sex)\n"), ["sex", "wage"]);
        let recoded = after("recode sex (1 = 0) (nonmissing = 1), prefix(r_)\n");
        assert_eq!(recoded[4..], ["r_sex"]);
        // Another dataset, then back; merge adds to the dataset it names.
        let two = "create-dataset families\nimport db/BEFOLKNING_REGSTAT_FAMNR as famnr\n";
        assert_eq!(after(two), ["famnr"]);
        let merged = after(&format!("{two}merge famnr into persons\nuse persons\n"));
        assert_eq!(merged.last().unwrap(), "famnr");
        assert_eq!(items(&format!("{PERSONS}{two}use pe")), ["persons"]);
        assert_eq!(items(&format!("{PERSONS}{two}merge famnr into fa")), ["families"]);
        // Names made from a loop's binding are left out.
        let looped = after("for y in 2019, 2020\ngenerate w_$y = wage\nend\n");
        assert_eq!(looped.len(), 4);
        let panel =
            "create-dataset p\nimport-panel db/INNTEKT_WLONN db/SIVSTANDFDT_SIVSTAND 2016-01-01\n";
        assert_eq!(after(panel), ["INNTEKT_WLONN", "SIVSTANDFDT_SIVSTAND"]);
    }

    #[test]
    fn the_datastores_variables_after_its_alias() {
        let catalog = |datastore: &str| -> Vec<String> {
            match datastore {
                "demo" => ["INNTEKT_WLONN", "BEFOLKNING_KJOENN", "INNTEKT_WYRKINNT"]
                    .map(str::to_owned)
                    .to_vec(),
                _ => Vec::new(),
            }
        };
        let at = |line: &str| {
            let script = format!("require demo:1 as db\n{line}");
            completions_at(&script, script.len(), &catalog)
        };
        let inn = at("import db/INN").unwrap();
        assert_eq!(inn.items, ["INNTEKT_WLONN", "INNTEKT_WYRKINNT"]);
        assert_eq!(inn.start, "require demo:1 as db\nimport db/".len());
        assert_eq!(at("import db/inntekt_wl").unwrap().items, ["INNTEKT_WLONN"]);
        assert_eq!(at("import db/").unwrap().items.len(), 3, "all, sorted, before a letter");
        assert_eq!(at("import db/").unwrap().items[0], "BEFOLKNING_KJOENN");
        assert_eq!(at("import other/INN"), None, "an alias no require binds");
        assert_eq!(at("import db/XYZ"), None);
    }
}
