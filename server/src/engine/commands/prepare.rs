//! Preparing variables without changing what they say: destring, clone-variables, the label
//! commands and help-function. None of them releases data: error messages name variables and
//! never quote their values.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::DataType;
use shared::script::{Span, TokenKind};

use super::dataset::{Kind, Variable};
use super::transform::valid_name;
use super::{EngineError, Invariant, Step};
use shared::script::catalog::FUNCTION_GROUPS;

/// Label sets a workspace defines with `define-labels`.
pub type LabelSet = Arc<BTreeMap<String, String>>;

impl Step<'_> {
    /// Variable names up to the first non-name token, each checked against the current dataset.
    fn existing_names(&self) -> Result<Vec<(String, Span)>, EngineError> {
        let (dataset_name, dataset) = self.populated()?;
        let names = self.names_in_args()?;
        for (n, span) in &names {
            dataset.require(n, dataset_name).map_err(|e| e.with_span(*span))?;
        }
        Ok(names)
    }

    pub(in crate::engine) fn destring(&mut self) -> Result<(), EngineError> {
        let names = self.existing_names()?;
        if names.is_empty() {
            return Err(EngineError::at(self.command().span, "write destring <variable>…"));
        }
        let prefix = self.option_text("prefix").map(|p| unquote(&p));
        let ignore: Vec<char> =
            self.option_text("ignore").map(|i| unquote(&i).chars().collect()).unwrap_or_default();
        let (force, comma) = (self.flag("force"), self.flag("dpcomma"));
        let (_, dataset) = self.populated()?;
        let mut results = Vec::new();
        for (name, span) in &names {
            let variable = dataset.variable(name).invariant("the variable was checked")?;
            let target = format!("{}{name}", prefix.as_deref().unwrap_or(""));
            if prefix.is_some() && (dataset.variable(&target).is_some() || !valid_name(&target)) {
                return Err(EngineError::at(
                    *span,
                    format!(
                        "{target} exists already or is not a valid name: choose another prefix()"
                    ),
                ));
            }
            if Kind::of(variable.values.data_type()) != Kind::Text {
                return Err(EngineError::at(*span, format!("{name} holds numbers already")));
            }
            let strings = compute::cast(&variable.values, &DataType::Utf8)
                .map_err(|e| EngineError::internal(e.to_string()))?;
            let strings =
                strings.as_any().downcast_ref::<StringArray>().invariant("cast to Utf8")?;
            let mut numbers = Vec::with_capacity(strings.len());
            for value in strings.iter() {
                let Some(text) = value else {
                    numbers.push(None);
                    continue;
                };
                let mut cleaned: String =
                    text.trim().chars().filter(|c| !ignore.contains(c)).collect();
                if comma {
                    cleaned = cleaned.replace('.', "").replace(',', ".");
                }
                match cleaned.parse::<f64>() {
                    Ok(x) if x.is_finite() => numbers.push(Some(x)),
                    _ if cleaned.is_empty() => numbers.push(None),
                    _ if force => numbers.push(None),
                    _ => {
                        return Err(EngineError::at(
                            *span,
                            format!(
                                "{name} has values that are not numbers: add force to make them missing, or ignore('…') to drop characters such as spaces or %"
                            ),
                        ));
                    }
                }
            }
            let whole = numbers.iter().flatten().all(|x| x.fract() == 0.0 && x.abs() < 9e15);
            let values: ArrayRef = if whole {
                Arc::new(Int64Array::from_iter(numbers.iter().map(|v| v.map(|x| x as i64))))
            } else {
                Arc::new(Float64Array::from(numbers))
            };
            let mut info = variable.info.clone();
            info.labels = None;
            results.push(Variable { name: target, values, info });
        }
        let made: Vec<String> = results.iter().map(|v| v.name.clone()).collect();
        let dataset = self.current_mut()?;
        results.into_iter().for_each(|v| dataset.set(v));
        self.notice(format!("now numbers: {}", made.join(" ")));
        Ok(())
    }

    /// `clone-variables a [-> b] … [, prefix() suffix()]`.
    pub(in crate::engine) fn clone_variables(&mut self) -> Result<(), EngineError> {
        let source = self.source();
        let t = &self.command().args;
        let (dataset_name, dataset) = self.populated()?;
        let prefix = self.option_text("prefix").map(|p| unquote(&p)).unwrap_or_default();
        let suffix = self.option_text("suffix").map(|p| unquote(&p)).unwrap_or_default();
        let mut pairs: Vec<(String, String, Span)> = Vec::new();
        let mut i = 0;
        while i < t.len() {
            if t[i].kind != TokenKind::Ident {
                return Err(EngineError::at(
                    t[i].span,
                    "write clone-variables <variable> [-> <new>] …",
                ));
            }
            let from = t[i].span.text(source).to_owned();
            dataset.require(&from, dataset_name).map_err(|e| e.with_span(t[i].span))?;
            let mut to = format!("{prefix}{from}{suffix}");
            if t.get(i + 1).is_some_and(|a| a.kind == TokenKind::Arrow) {
                let new = t.get(i + 2).filter(|n| n.kind == TokenKind::Ident).ok_or_else(|| {
                    EngineError::at(t[i + 1].span, "write -> followed by the new name")
                })?;
                to = new.span.text(source).to_owned();
                i += 2;
            }
            pairs.push((from, to, t[i].span));
            i += 1;
        }
        if pairs.is_empty() {
            return Err(EngineError::at(
                self.command().span,
                "write clone-variables <variable> [-> <new>] …",
            ));
        }
        for (from, to, span) in &pairs {
            if to == from || dataset.variable(to).is_some() || !valid_name(to) {
                return Err(EngineError::at(
                    *span,
                    format!(
                        "{to} exists already or is not a valid name: give the clone a new name with -> <new>, prefix() or suffix()"
                    ),
                ));
            }
        }
        let clones = pairs
            .iter()
            .map(|(from, to, _)| {
                let from = dataset.variable(from).invariant("the variable was checked")?;
                Ok(Variable { name: to.clone(), ..from.clone() })
            })
            .collect::<Result<Vec<Variable>, EngineError>>()?;
        let dataset = self.current_mut()?;
        clones.into_iter().for_each(|v| dataset.set(v));
        self.notice(format!(
            "cloned: {}",
            pairs.iter().map(|(f, t, _)| format!("{f} → {t}")).collect::<Vec<_>>().join(", ")
        ));
        Ok(())
    }

    /// `define-labels name code label [code label]…`
    pub(in crate::engine) fn define_labels(&mut self) -> Result<(), EngineError> {
        let source = self.source();
        let t = &self.command().args;
        let usage = "write define-labels <name> <code> '<label>' …, such as define-labels yesno 0 'no' 1 'yes'";
        let Some(name) = t.first().filter(|n| n.kind == TokenKind::Ident) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        let rest = &t[1..];
        if rest.is_empty() || !rest.len().is_multiple_of(2) {
            return Err(EngineError::at(self.command().span, usage));
        }
        let mut set = BTreeMap::new();
        for pair in rest.chunks(2) {
            let code = match pair[0].kind {
                TokenKind::Number => pair[0].span.text(source).to_owned(),
                TokenKind::String => unquote(pair[0].span.text(source)),
                _ => return Err(EngineError::at(pair[0].span, usage)),
            };
            if pair[1].kind != TokenKind::String {
                return Err(EngineError::at(pair[1].span, "a label is quoted text, such as 'yes'"));
            }
            set.insert(code, unquote(pair[1].span.text(source)));
        }
        let name = name.span.text(source).to_owned();
        let count = set.len();
        self.workspace.labels.insert(name.clone(), Arc::new(set));
        self.notice(format!("labels {name} defined ({count} codes)"));
        Ok(())
    }

    /// `assign-labels variable labels`
    pub(in crate::engine) fn assign_labels(&mut self) -> Result<(), EngineError> {
        let names = self.names_in_args()?;
        let [(variable, variable_span), (labels, labels_span)] = names.as_slice() else {
            return Err(EngineError::at(
                self.command().span,
                "write assign-labels <variable> <labels>",
            ));
        };
        let (dataset_name, dataset) = self.populated()?;
        dataset.require(variable, dataset_name).map_err(|e| e.with_span(*variable_span))?;
        let set = self.workspace.labels.get(labels).cloned().ok_or_else(|| {
            let hint = match shared::script::catalog::nearest(
                labels,
                self.workspace.labels.keys().map(String::as_str),
            ) {
                Some(near) => format!("did you mean {near}?"),
                None => "define it first with define-labels".into(),
            };
            EngineError::at(*labels_span, format!("there are no labels {labels}: {hint}"))
        })?;
        let dataset = self.current_mut()?;
        let i = dataset.position(variable).invariant("the variable was checked")?;
        dataset.variables[i].info.labels = Some(set);
        self.notice(format!("labels {labels} assigned to {variable}"));
        Ok(())
    }

    /// `drop-labels labels…`
    pub(in crate::engine) fn drop_labels(&mut self) -> Result<(), EngineError> {
        let names = self.names_in_args()?;
        if names.is_empty() {
            return Err(EngineError::at(self.command().span, "write drop-labels <labels>…"));
        }
        for (name, span) in &names {
            if self.workspace.labels.remove(name).is_none() {
                return Err(EngineError::at(*span, format!("there are no labels {name}")));
            }
        }
        self.notice(format!(
            "labels dropped: {}",
            names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" ")
        ));
        Ok(())
    }

    /// `list-labels labels` or `list-labels alias/VARIABLE`: metadata, never data.
    pub(in crate::engine) fn list_labels(&mut self) -> Result<(), EngineError> {
        let source = self.source();
        let t = &self.command().args;
        let text: String = t.iter().map(|x| x.span.text(source)).collect();
        let (title, set): (String, BTreeMap<String, String>) = match text.split_once('/') {
            Some((alias, variable)) => {
                let origin = self.workspace.aliases.get(alias).cloned().ok_or_else(|| {
                    EngineError::at(self.command().span, format!("there is no datastore bound as {alias}: write require <datastore> as {alias} first"))
                })?;
                let version = self
                    .engine
                    .registry()
                    .datastores
                    .iter()
                    .find(|(n, _)| n.as_str() == origin.datastore)
                    .and_then(|(_, versions)| {
                        versions.iter().find(|v| v.metadata.version == origin.version)
                    })
                    .ok_or_else(|| EngineError::internal("bound version is gone"))?;
                let meta =
                    version.variables.values().find(|v| v.name.as_str() == variable).ok_or_else(
                        || {
                            EngineError::at(
                                self.command().span,
                                format!("{alias} has no variable {variable}"),
                            )
                        },
                    )?;
                let set = super::import::labels(meta).map(|l| (*l).clone()).ok_or_else(|| {
                    EngineError::at(
                        self.command().span,
                        format!("{variable} is a measure, not a code list"),
                    )
                })?;
                (format!("{alias}/{variable}"), set)
            }
            None => {
                let set = self.workspace.labels.get(&text).ok_or_else(|| {
                    EngineError::at(
                        self.command().span,
                        format!("there are no labels {text}: define them with define-labels"),
                    )
                })?;
                (text.clone(), (**set).clone())
            }
        };
        let mut out = format!("## Labels {title}\n\n| code | label |\n|---|---|\n");
        for (code, label) in &set {
            out.push_str(&format!("| {code} | {label} |\n"));
        }
        let released = self.releaser.text(self.origin(), out);
        self.outputs.push(released);
        Ok(())
    }

    pub(in crate::engine) fn help_function(&mut self) -> Result<(), EngineError> {
        let names = self.names_in_args()?;
        let text = match names.first() {
            None => {
                let mut text = String::from("## Functions\n");
                for (group, functions, _) in FUNCTION_GROUPS {
                    text.push_str(&format!("\n**{group}**: {}", functions.join(", ")));
                }
                text.push_str("\n\nhelp-function <name> shows one group in full.");
                text
            }
            Some((name, span)) => {
                let (group, functions, usage) = FUNCTION_GROUPS
                    .iter()
                    .find(|(_, f, _)| f.contains(&name.as_str()))
                    .ok_or_else(|| {
                        let all = FUNCTION_GROUPS.iter().flat_map(|(_, f, _)| f.iter().copied());
                        let hint = match shared::script::catalog::nearest(name, all) {
                            Some(n) => format!("did you mean {n}?"),
                            None => "help-function lists them".into(),
                        };
                        EngineError::at(*span, format!("unknown function {name}: {hint}"))
                    })?;
                format!("## {name}\n\n{group}: {}\n\n{usage}", functions.join(", "))
            }
        };
        let released = self.releaser.text(self.origin(), text);
        self.outputs.push(released);
        Ok(())
    }
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    if t.len() >= 2 && (t.starts_with('\'') || t.starts_with('"')) {
        t[1..t.len() - 1].to_owned()
    } else {
        t.to_owned()
    }
}
