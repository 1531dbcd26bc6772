//! The semantic pass before a run: follows the names each dataset will hold through the script,
//! without data, and reports every unknown variable, dataset or alias and every import whose
//! variable or date is wrong, all at once and before anything runs, so a typo on line 40 does
//! not wait for the imports of lines 2–39.
//!
//! It only reports what it is sure of. After a command it does not model, the dataset's names
//! are unknown and nothing more is checked there; the commands themselves check again as they
//! run.

use std::collections::{BTreeMap, BTreeSet};

use shared::script::{Command, Expr, Span, Token, TokenKind, Verb};

use super::dataset::Origin;
use super::expand::{Expanded, Problem};
use super::{Engine, Workspace};
use crate::datastore::DatastoreVersion;

/// What the pass knows of a dataset: its variable names, or nothing.
type Names = Option<BTreeSet<String>>;

struct Simulation<'a> {
    engine: &'a Engine,
    datasets: BTreeMap<String, Names>,
    current: Option<String>,
    aliases: BTreeMap<String, Option<Origin>>,
    problems: Vec<Problem>,
}

pub fn check(engine: &Engine, workspace: &Workspace, steps: &[Expanded]) -> Vec<Problem> {
    let mut sim = Simulation {
        engine,
        datasets: workspace
            .datasets
            .iter()
            .map(|(name, d)| {
                (name.clone(), Some(d.variables.iter().map(|v| v.name.clone()).collect()))
            })
            .collect(),
        current: workspace.current.clone(),
        aliases: workspace.aliases.iter().map(|(a, o)| (a.clone(), Some(o.clone()))).collect(),
        problems: Vec::new(),
    };
    for step in steps {
        sim.step(step);
    }
    sim.problems
}

impl Simulation<'_> {
    fn problem(&mut self, step: &Expanded, span: Span, message: String) {
        let column =
            shared::script::line_column(&step.text, span.start).1 as u32 + step.column_offset;
        self.problems.push(Problem {
            line: step.line,
            column,
            command: step.command.name.clone(),
            message,
        });
    }

    fn current_names(&self) -> Option<&BTreeSet<String>> {
        self.current.as_ref().and_then(|c| self.datasets.get(c)).and_then(|n| n.as_ref())
    }

    fn forget_all(&mut self) {
        self.datasets.values_mut().for_each(|n| *n = None);
    }

    fn forget_current(&mut self) {
        if let Some(c) = &self.current {
            self.datasets.insert(c.clone(), None);
        }
    }

    /// Reports `name` when the current dataset's names are known and it is not among them.
    fn require(&mut self, step: &Expanded, name: &str, span: Span) {
        let Some(names) = self.current_names() else { return };
        if names.contains(name) {
            return;
        }
        let dataset = self.current.clone().unwrap_or_default();
        let hint = match shared::script::catalog::nearest(name, names.iter().map(String::as_str)) {
            Some(near) => format!(": did you mean {near}?"),
            None if names.is_empty() => ": it has no variables yet; import some first".into(),
            None => String::new(),
        };
        self.problem(step, span, format!("dataset {dataset} will have no variable {name}{hint}"));
    }

    fn require_expr(&mut self, step: &Expanded, expr: &Expr) {
        let mut found = Vec::new();
        collect(expr, &mut found);
        for (name, span) in found {
            self.require(step, &name, span);
        }
    }

    fn add(&mut self, name: &str) {
        if let Some(Some(names)) = self.current.as_ref().and_then(|c| self.datasets.get_mut(c)) {
            names.insert(name.to_owned());
        }
    }

    fn step(&mut self, step: &Expanded) {
        let c = &step.command;
        let src = step.text.as_str();
        let idents: Vec<(String, Span)> = c
            .args
            .iter()
            .filter(|t| t.kind == TokenKind::Ident)
            .map(|t| (t.span.text(src).to_owned(), t.span))
            .collect();
        if let Some(condition) = &c.condition {
            self.require_expr(step, condition);
        }
        match step.verb() {
            Verb::Require => self.require_line(step),
            Verb::CreateDataset => {
                if let Some((name, _)) = idents.first() {
                    self.datasets.insert(name.clone(), Some(BTreeSet::new()));
                    self.current = Some(name.clone());
                }
            }
            Verb::Use => {
                if let Some((name, span)) = idents.first()
                    && self.dataset_exists(step, name, *span)
                {
                    self.current = Some(name.clone());
                }
            }
            Verb::DeleteDataset => {
                if let Some((name, span)) = idents.first()
                    && self.dataset_exists(step, name, *span)
                {
                    self.datasets.remove(name);
                    if self.current.as_deref() == Some(name) {
                        self.current = None;
                    }
                }
            }
            Verb::CloneDataset | Verb::RenameDataset | Verb::CloneUnits => {
                if let [(from, span), (to, _)] = idents.as_slice()
                    && self.dataset_exists(step, from, *span)
                {
                    let names = match step.verb() {
                        Verb::CloneUnits => Some(BTreeSet::new()),
                        _ => self.datasets[from].clone(),
                    };
                    if step.verb() == Verb::RenameDataset {
                        self.datasets.remove(from);
                        if self.current.as_deref() == Some(from) {
                            self.current = Some(to.clone());
                        }
                    }
                    self.datasets.insert(to.clone(), names);
                }
            }
            Verb::Merge => {
                // merge v… into target [on key]: the values join the target's names.
                let into = idents.iter().position(|(n, _)| n == "into");
                match into.and_then(|at| Some((at, idents.get(at + 1)?))) {
                    Some((at, (target, span))) => {
                        for (name, span) in &idents[..at] {
                            self.require(step, name, *span);
                        }
                        if self.dataset_exists(step, target, *span)
                            && let Some(Some(names)) = self.datasets.get_mut(target)
                        {
                            names.extend(idents[..at].iter().map(|(n, _)| n.clone()));
                        }
                    }
                    None => self.forget_all(),
                }
            }
            Verb::Clear => {
                self.datasets.clear();
                self.current = None;
            }
            Verb::Import => self.import(step),
            Verb::Generate | Verb::Replace => {
                if let Some(first) = c.args.first().filter(|t| t.kind == TokenKind::Ident) {
                    let name = first.span.text(src).to_owned();
                    let mut parser =
                        shared::script::ExprParser::new(src, &c.args[2.min(c.args.len())..]);
                    let value = parser.parse();
                    if parser.diagnostics.is_empty() {
                        self.require_expr(step, &value);
                    }
                    if step.verb() == Verb::Replace {
                        self.require(step, &name, first.span);
                    }
                    self.add(&name);
                }
            }
            Verb::Rename => {
                if let [(old, span), (new, _)] = idents.as_slice() {
                    self.require(step, old, *span);
                    if let Some(Some(names)) =
                        self.current.as_ref().and_then(|c| self.datasets.get_mut(c))
                    {
                        names.remove(old);
                        names.insert(new.clone());
                    }
                }
            }
            Verb::Keep | Verb::Drop if c.condition.is_none() => {
                for (name, span) in &idents {
                    self.require(step, name, *span);
                }
                if let Some(Some(names)) =
                    self.current.as_ref().and_then(|d| self.datasets.get_mut(d))
                {
                    let listed: BTreeSet<String> = idents.iter().map(|(n, _)| n.clone()).collect();
                    names.retain(|n| listed.contains(n) == (step.verb() == Verb::Keep));
                }
            }
            // Commands that read variables and change no names.
            Verb::Summarize
            | Verb::Tabulate
            | Verb::Histogram
            | Verb::Hexbin
            | Verb::Regress
            | Verb::Logit
            | Verb::Probit
            | Verb::Poisson
            | Verb::NegativeBinomial
            | Verb::Ivregress
            | Verb::Mlogit
            | Verb::Cox
            | Verb::Correlate
            | Verb::Ci
            | Verb::Normaltest
            | Verb::Anova
            | Verb::Boxplot
            | Verb::Piechart
            | Verb::Barchart
            | Verb::SummarizePanel
            | Verb::TabulatePanel
            | Verb::TransitionsPanel
            | Verb::RegressPanel
            | Verb::Hausman
            | Verb::KaplanMeier
            | Verb::Sankey
            | Verb::Oaxaca
            | Verb::Rdd
            | Verb::Weibull => {
                for (name, span) in variable_arguments(&c.args, src) {
                    self.require(step, &name, span);
                }
                self.require_option_variables(step);
            }
            // `regress-mml y x… by g`: `by` is a keyword here, not a variable.
            Verb::RegressMml => {
                for (name, span) in variable_arguments(&c.args, src) {
                    if name != "by" {
                        self.require(step, &name, span);
                    }
                }
            }
            // Models that add their predictions as variables.
            Verb::RegressPredict
            | Verb::LogitPredict
            | Verb::ProbitPredict
            | Verb::PoissonPredict => {
                for (name, span) in variable_arguments(&c.args, src) {
                    self.require(step, &name, span);
                }
                self.require_option_variables(step);
                for option in ["predicted", "residuals"] {
                    if let Some((name, _)) = option_variable(c, src, option) {
                        self.add(&name);
                    }
                }
            }
            // Commands that change no names.
            Verb::Keep
            | Verb::Drop
            | Verb::Sample
            | Verb::Textblock
            | Verb::Help
            | Verb::HelpFunction
            | Verb::Variables
            | Verb::History
            | Verb::DefineLabels
            | Verb::DropLabels
            | Verb::ListLabels
            | Verb::AssignLabels => {}
            // Commands whose new names the pass does not model.
            Verb::ImportEvent
            | Verb::ImportPanel
            | Verb::ReshapeToPanel
            | Verb::ReshapeFromPanel
            | Verb::CloneVariables
            | Verb::Recode
            | Verb::Destring
            | Verb::Aggregate
            | Verb::Collapse
            | Verb::Coefplot => self.forget_current(),
            // Expansion consumed these.
            Verb::Let | Verb::For => {}
        }
    }

    /// Every option the catalogue types as variables (`cluster()`, `by()`, `exposure()`, …)
    /// names variables the dataset must hold.
    fn require_option_variables(&mut self, step: &Expanded) {
        for option in &step.typed.options {
            if let shared::script::OptionValue::Names(names) = &option.value {
                for (name, span) in names {
                    self.require(step, name, *span);
                }
            }
        }
    }

    fn dataset_exists(&mut self, step: &Expanded, name: &str, span: Span) -> bool {
        if self.datasets.contains_key(name) {
            return true;
        }
        let hint = match shared::script::catalog::nearest(
            name,
            self.datasets.keys().map(String::as_str),
        ) {
            Some(near) => format!(": did you mean {near}?"),
            None => ": create it with create-dataset".into(),
        };
        self.problem(step, span, format!("there will be no dataset {name}{hint}"));
        false
    }

    fn require_line(&mut self, step: &Expanded) {
        let src = step.text.as_str();
        let t = &step.command.args;
        let Some(as_at) =
            t.iter().position(|x| x.kind == TokenKind::Ident && x.span.text(src) == "as")
        else {
            return;
        };
        let (Some(first), Some(alias)) = (t.first(), t.get(as_at + 1)) else { return };
        if as_at == 0 {
            return;
        }
        let target = &src[first.span.start as usize..t[as_at - 1].span.end as usize];
        let (name, version) = match target.split_once(':') {
            Some((n, v)) => (n.trim(), v.trim().parse::<u32>().ok()),
            None => (target.trim(), None),
        };
        let origin =
            self.engine.registry().datastores.iter().find(|(n, _)| n.as_str() == name).and_then(
                |(n, versions)| {
                    let latest = versions.last()?.metadata.version;
                    let version = version.unwrap_or(latest);
                    versions
                        .iter()
                        .any(|v| v.metadata.version == version)
                        .then(|| Origin { datastore: n.as_str().to_owned(), version })
                },
            );
        // A datastore that does not exist is reported when the line runs.
        self.aliases.insert(alias.span.text(src).to_owned(), origin);
    }

    fn version(&self, origin: &Origin) -> Option<&DatastoreVersion> {
        self.engine
            .registry()
            .datastores
            .iter()
            .find(|(n, _)| n.as_str() == origin.datastore)?
            .1
            .iter()
            .find(|v| v.metadata.version == origin.version)
    }

    fn import(&mut self, step: &Expanded) {
        let src = step.text.as_str();
        let t = &step.command.args;
        let ident = |i: usize| t.get(i).filter(|x| x.kind == TokenKind::Ident);
        let (Some(alias), Some(slash), Some(variable)) = (ident(0), t.get(1), ident(2)) else {
            self.forget_current();
            return;
        };
        if slash.kind != TokenKind::Slash {
            self.forget_current();
            return;
        }
        let alias_name = alias.span.text(src);
        let variable_name = variable.span.text(src);
        let date = t.get(3).filter(|x| x.kind == TokenKind::Date).and_then(|d| {
            d.span.text(src).parse::<shared::date::Date>().ok().map(|date| (date, d.span))
        });
        let rest = if date.is_some() { 4 } else { 3 };
        let target = match (ident(rest), ident(rest + 1)) {
            (Some(a), Some(n)) if a.span.text(src) == "as" => n.span.text(src).to_owned(),
            _ => variable_name.to_owned(),
        };
        match self.aliases.get(alias_name).cloned() {
            None => {
                let hint = match shared::script::catalog::nearest(
                    alias_name,
                    self.aliases.keys().map(String::as_str),
                ) {
                    Some(near) => format!("did you mean {near}?"),
                    None => format!("write require <datastore> as {alias_name} first"),
                };
                self.problem(
                    step,
                    alias.span,
                    format!("no datastore is bound as {alias_name}: {hint}"),
                );
            }
            Some(None) => {}
            Some(Some(origin)) => {
                let Some(version) = self.version(&origin) else { return };
                let meta = version.variables.values().find(|m| m.name.as_str() == variable_name);
                match meta {
                    None => {
                        let hint = match shared::script::catalog::nearest(
                            variable_name,
                            version.variables.values().map(|m| m.name.as_str()),
                        ) {
                            Some(near) => format!(": did you mean {near}?"),
                            None => ": search the catalog for its name".into(),
                        };
                        self.problem(
                            step,
                            variable.span,
                            format!(
                                "{}:{} has no variable {variable_name}{hint}",
                                origin.datastore, origin.version
                            ),
                        );
                    }
                    Some(meta) => {
                        if let Err(e) = super::import::check_date(meta, date, variable.span) {
                            self.problem(step, e.span.unwrap_or(variable.span), e.message);
                        }
                    }
                }
            }
        }
        self.add(&target);
    }
}

/// Variables named in an expression, with their spans.
fn collect(expr: &Expr, out: &mut Vec<(String, Span)>) {
    match expr {
        Expr::Variable { name, span } => out.push((name.clone(), *span)),
        Expr::Call { args, .. } => args.iter().for_each(|a| collect(a, out)),
        Expr::Unary { operand, .. } => collect(operand, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect(lhs, out);
            collect(rhs, out);
        }
        _ => {}
    }
}

/// The variable names among a command's arguments: identifiers, skipping `i.`/`c.` prefixes
/// and statistics in parentheses such as `(mean)`.
fn variable_arguments(args: &[Token], src: &str) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for (i, t) in args.iter().enumerate() {
        if t.kind != TokenKind::Ident {
            continue;
        }
        let prefix = args.get(i + 1).is_some_and(|n| n.kind == TokenKind::Dot);
        let in_parens = i > 0 && args[i - 1].kind == TokenKind::LParen;
        if !prefix && !in_parens {
            out.push((t.span.text(src).to_owned(), t.span));
        }
    }
    out
}

/// The single variable inside `option(…)`, if the command has it.
fn option_variable(command: &Command, src: &str, option: &str) -> Option<(String, Span)> {
    let o = command.options.iter().find(|o| o.name == option)?;
    match o.args.as_deref()? {
        [t] if t.kind == TokenKind::Ident => Some((t.span.text(src).to_owned(), t.span)),
        _ => None,
    }
}
