//! A command read against its catalogue entry, once: which command it is ([`Verb`]) and the
//! value of each option as the catalogue types it (a flag, a number, variable names or text),
//! each with its span. The editor reports what does not fit as the user types; the server's
//! expansion reads every command this way before anything runs, and the engine dispatches on
//! the verb and reads the values, never the option's tokens again.

use super::catalog::{self, CommandSpec, OptionArg, OptionSpec, Verb};
use super::lexer::TokenKind;
use super::parse::{Command, CommandOption};
use super::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub struct Typed {
    pub verb: Verb,
    /// The entry whose options the command takes: the model's own for `coefplot <model>`.
    pub spec: &'static CommandSpec,
    pub options: Vec<TypedOption>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypedOption {
    pub spec: &'static OptionSpec,
    /// The whole option, `cluster(famnr)`.
    pub span: Span,
    /// The text between the parentheses, trimmed; empty for a flag.
    pub text: String,
    pub value: OptionValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    Flag,
    Number(f64),
    /// `cluster(famnr)`, `by(sex region)`: the names with their spans.
    Names(Vec<(String, Span)>),
    /// Text, a term list, or a value that still holds a `$binding` (read after expansion).
    Text,
}

impl Typed {
    /// The option `name` as written, if it was.
    pub fn option(&self, name: &str) -> Option<&TypedOption> {
        self.options.iter().find(|o| o.spec.name == name)
    }
}

impl Command {
    /// Reads the command against the catalogue: every problem at once, each at its span.
    pub fn typed(&self, source: &str) -> Result<Typed, Vec<Diagnostic>> {
        let verb = Verb::named(&self.name).ok_or_else(|| vec![unknown_command(self)])?;
        let spec = options_spec(self, verb, source).map_err(|d| vec![d])?;
        let mut options = Vec::with_capacity(self.options.len());
        let mut problems = Vec::new();
        for option in &self.options {
            match typed_option(spec, option, source) {
                Ok(typed) => options.push(typed),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() { Ok(Typed { verb, spec, options }) } else { Err(problems) }
    }
}

fn unknown_command(command: &Command) -> Diagnostic {
    let names = catalog::commands().iter().map(|c| c.name);
    let message = match catalog::nearest(&command.name, names) {
        Some(near) => format!("unknown command '{}': did you mean {near}?", command.name),
        None => format!("unknown command '{}': help lists the commands", command.name),
    };
    Diagnostic { span: command.name_span, message }
}

/// The entry whose options `command` takes: its own, or for `coefplot` the wrapped model's.
pub(super) fn options_spec(
    command: &Command,
    verb: Verb,
    source: &str,
) -> Result<&'static CommandSpec, Diagnostic> {
    if verb != Verb::Coefplot {
        return Ok(verb.spec());
    }
    let Some(first) = command.args.first() else {
        return Err(Diagnostic {
            span: command.name_span,
            message: "write coefplot <model command>, such as coefplot regress y x".into(),
        });
    };
    let rest = Span { start: first.span.start, end: command.span.end }.text(source);
    let name = rest.split(|c: char| c.is_whitespace() || c == ',').next().unwrap_or_default();
    match catalog::command(name) {
        Some(model) if model.family == catalog::Family::Models && model.verb != Verb::Hausman => {
            Ok(model)
        }
        _ => Err(Diagnostic {
            span: first.span,
            message: format!(
                "coefplot plots a model, and '{name}' is not one: write coefplot regress y x…"
            ),
        }),
    }
}

fn typed_option(
    spec: &'static CommandSpec,
    option: &CommandOption,
    source: &str,
) -> Result<TypedOption, Diagnostic> {
    let problem = |message: String| Diagnostic { span: option.span, message };
    let Some(option_spec) = spec.option(&option.name) else {
        if option.name == "control" && spec.family == catalog::Family::Models {
            // Listed in the language, but described nowhere this server could learn its
            // meaning from; a model controls for a variable by having it among its terms.
            return Err(problem(format!(
                "{} has no option 'control': list the variables to control for among the terms, as in {} wage educ age i.sex",
                spec.name, spec.name
            )));
        }
        let names = spec.options.iter().map(|o| o.name);
        return Err(problem(match catalog::nearest(&option.name, names) {
            Some(near) => {
                format!("{} has no option '{}': did you mean {near}?", spec.name, option.name)
            }
            None if spec.options.is_empty() => {
                format!("{} takes no options: remove ', {}'", spec.name, option.name)
            }
            None => format!(
                "{} has no option '{}'; its options are {}",
                spec.name,
                option.name,
                spec.options.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
            ),
        }));
    };
    let name = option_spec.name;
    let tokens = match (&option.args, option_spec.arg) {
        (None, OptionArg::Flag) => {
            return Ok(TypedOption {
                spec: option_spec,
                span: option.span,
                text: String::new(),
                value: OptionValue::Flag,
            });
        }
        (Some(_), OptionArg::Flag) => {
            return Err(problem(format!("{name} takes no value: write just {name}")));
        }
        (None, _) => {
            return Err(problem(format!("{name} needs a value in parentheses: {name}(…)")));
        }
        (Some(tokens), _) => tokens,
    };
    let text = match (tokens.first(), tokens.last()) {
        (Some(first), Some(last)) => {
            Span { start: first.span.start, end: last.span.end }.text(source).trim().to_owned()
        }
        _ => String::new(),
    };
    // Before expansion a `$binding` stands for text not yet known: it is read after.
    let unexpanded = tokens.iter().any(|t| t.kind == TokenKind::Dollar);
    let value = match option_spec.arg {
        _ if unexpanded => OptionValue::Text,
        OptionArg::Number => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => OptionValue::Number(number),
            _ => return Err(problem(format!("{name}() takes a number, not '{text}'"))),
        },
        OptionArg::Variable | OptionArg::Variables => {
            let names: Vec<(String, Span)> = tokens
                .iter()
                .filter(|t| t.kind == TokenKind::Ident)
                .map(|t| (t.span.text(source).to_owned(), t.span))
                .collect();
            let one = option_spec.arg == OptionArg::Variable;
            if names.is_empty() || names.len() != tokens.len() || (one && names.len() > 1) {
                let wanted = if one { "one variable name" } else { "variable names" };
                return Err(problem(format!("{name}() takes {wanted}, not '{text}'")));
            }
            OptionValue::Names(names)
        }
        OptionArg::Text | OptionArg::Any | OptionArg::Flag => OptionValue::Text,
    };
    Ok(TypedOption { spec: option_spec, span: option.span, text, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Item, parse};

    fn typed(line: &str) -> Result<Typed, Vec<String>> {
        let script = parse(line);
        let Some(Item::Command(command)) = script.items.first() else { panic!("no command") };
        command.typed(line).map_err(|d| d.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn options_are_read_as_the_catalogue_types_them() {
        let line = "regress wage age, robust level(90) cluster(famnr)";
        let t = typed(line).unwrap();
        assert_eq!(t.verb, Verb::Regress);
        assert_eq!(t.option("robust").map(|o| &o.value), Some(&OptionValue::Flag));
        assert_eq!(t.option("level").map(|o| &o.value), Some(&OptionValue::Number(90.0)));
        let Some(OptionValue::Names(names)) = t.option("cluster").map(|o| &o.value) else {
            panic!("cluster is a variable")
        };
        assert_eq!(names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["famnr"]);
        let at = line.find("famnr").unwrap();
        assert_eq!(names[0].1, Span::new(at, at + 5));
        assert!(t.option("noconstant").is_none());
    }

    #[test]
    fn a_value_that_does_not_fit_is_named_with_the_fix() {
        assert_eq!(
            typed("regress wage age, level(high)").unwrap_err(),
            ["level() takes a number, not 'high'"]
        );
        assert_eq!(
            typed("regress wage age, cluster(famnr kommune)").unwrap_err(),
            ["cluster() takes one variable name, not 'famnr kommune'"]
        );
        assert_eq!(
            typed("regress wage age, robust(1) level").unwrap_err(),
            [
                "robust takes no value: write just robust",
                "level needs a value in parentheses: level(…)"
            ]
        );
        assert_eq!(
            typed("regress wage age, robst").unwrap_err(),
            ["regress has no option 'robst': did you mean robust?"]
        );
        // control() is not guessed at (it would be "did you mean cluster?"): the message says
        // how a model controls for a variable.
        for command in ["regress", "mlogit"] {
            assert_eq!(
                typed(&format!("{command} wage age, control(sex)")).unwrap_err(),
                [format!(
                    "{command} has no option 'control': list the variables to control for among the terms, as in {command} wage educ age i.sex"
                )]
            );
        }
    }

    #[test]
    fn coefplot_takes_the_options_of_its_model() {
        let t = typed("coefplot logit y x, or").unwrap();
        assert_eq!((t.verb, t.spec.verb), (Verb::Coefplot, Verb::Logit));
        assert!(typed("coefplot tabulate x").is_err());
    }

    #[test]
    fn a_binding_in_an_option_is_read_after_expansion() {
        let t = typed("regress wage age, level($level)").unwrap();
        assert_eq!(t.option("level").map(|o| &o.value), Some(&OptionValue::Text));
    }

    #[test]
    fn every_verb_is_its_catalogue_entry() {
        for &verb in Verb::ALL {
            assert_eq!(verb.spec().verb, verb);
            assert_eq!(Verb::named(verb.name()), Some(verb));
            assert_eq!(catalog::command(verb.name()).map(|c| c.name), Some(verb.name()));
        }
        assert_eq!(Verb::ALL.len(), catalog::commands().len());
        assert_eq!(Verb::named("tabulat"), None);
    }
}
