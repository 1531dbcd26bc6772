//! Expansion: from a parsed script to the flat list of commands to run.
//!
//! `let` values depend on nothing but the script, so they are evaluated here, loops are
//! unrolled and `$name` is replaced by its value's text, as a macro would. Each command is
//! re-parsed from its own text, so execution sees spans relative to the command it runs.

use std::collections::BTreeMap;

use shared::Date;

use shared::script::{
    BinaryOp, Command, Expr, ExprParser, Item, Span, TokenKind, Typed, Verb, lex, line_column,
    parse,
};

/// A command ready to run.
#[derive(Clone, Debug)]
pub struct Expanded {
    /// 1-based line in the script.
    pub line: u32,
    /// Added to columns within `text` to give columns in the script line.
    pub column_offset: u32,
    /// The command's text after substitution.
    pub text: String,
    pub command: Command,
    /// The command read against the catalogue: its verb and typed options.
    pub typed: Typed,
}

impl Expanded {
    /// The verb the command runs.
    pub fn verb(&self) -> Verb {
        self.typed.verb
    }
}

/// Why a script cannot run.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub line: u32,
    pub column: u32,
    pub command: String,
    pub message: String,
}

/// The longest text a binding may hold, and a command after substitution. `let a = $a ++ $a`
/// doubles with every line, so without a bound thirty short lines would ask for gigabytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// All the commands' text after expansion, together.
pub const MAX_EXPANDED_BYTES: usize = 16 * 1024 * 1024;

pub fn expand(script: &str, max_commands: usize) -> Result<Vec<Expanded>, Vec<Problem>> {
    let parsed = parse(script);
    if !parsed.diagnostics.is_empty() {
        return Err(parsed
            .diagnostics
            .iter()
            .map(|d| {
                let (line, column) = line_column(script, d.span.start);
                let command = script
                    .lines()
                    .nth(line - 1)
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("");
                Problem {
                    line: line as u32,
                    column: column as u32,
                    command: command.to_owned(),
                    message: d.message.clone(),
                }
            })
            .collect());
    }
    let mut expander = Expander {
        script,
        bindings: BTreeMap::new(),
        out: Vec::new(),
        out_bytes: 0,
        iterations: 0,
        max_commands,
    };
    expander.items(&parsed.items)?;
    Ok(expander.out)
}

struct Expander<'a> {
    script: &'a str,
    bindings: BTreeMap<String, String>,
    out: Vec<Expanded>,
    /// The text of `out`, in bytes.
    out_bytes: usize,
    /// Loop steps taken so far: loops with empty bodies add no commands but still cost time.
    iterations: usize,
    max_commands: usize,
}

impl Expander<'_> {
    fn problem(&self, span: Span, command: &str, message: impl Into<String>) -> Vec<Problem> {
        let (line, column) = line_column(self.script, span.start);
        vec![Problem {
            line: line as u32,
            column: column as u32,
            command: command.to_owned(),
            message: message.into(),
        }]
    }

    fn items(&mut self, items: &[Item]) -> Result<(), Vec<Problem>> {
        for item in items {
            match item {
                Item::TextBlock { text, span } => {
                    let (line, _) = line_column(self.script, span.start);
                    let command = Command {
                        span: *span,
                        name: "textblock".into(),
                        name_span: *span,
                        args: Vec::new(),
                        condition: None,
                        options: Vec::new(),
                    };
                    self.push(
                        Expanded {
                            line: line as u32,
                            column_offset: 0,
                            text: text.trim_end().to_owned(),
                            command,
                            typed: Typed {
                                verb: Verb::Textblock,
                                spec: Verb::Textblock.spec(),
                                options: Vec::new(),
                            },
                        },
                        *span,
                    )?;
                }
                Item::Command(command) if command.name == "let" => self.let_binding(command)?,
                Item::Command(command) => {
                    let expanded = self.command(command)?;
                    self.push(expanded, command.span)?;
                }
                Item::For { header, body, .. } => self.for_loop(header, body)?,
            }
        }
        Ok(())
    }

    fn push(&mut self, expanded: Expanded, span: Span) -> Result<(), Vec<Problem>> {
        if self.out.len() >= self.max_commands {
            return Err(self.problem(
                span,
                &expanded.command.name,
                format!("the script unrolls to more than {} commands (max_commands): use fewer loop values", self.max_commands),
            ));
        }
        self.out_bytes += expanded.text.len();
        if self.out_bytes > MAX_EXPANDED_BYTES {
            return Err(self.problem(
                span,
                &expanded.command.name,
                format!("the script unrolls to more than {} MiB of commands: use fewer loop values or shorter bindings", MAX_EXPANDED_BYTES / (1024 * 1024)),
            ));
        }
        self.out.push(expanded);
        Ok(())
    }

    /// The command's own text with `$name` replaced, parsed again on its own.
    fn command(&self, command: &Command) -> Result<Expanded, Vec<Problem>> {
        let original = command.span.text(self.script);
        let text = self.substitute(original, command.span.start)?;
        // An import's dates may be written with the functions of let (in an expression they
        // would read variables, which these functions never do).
        let text = if ["import", "import-event", "import-panel"].contains(&command.name.as_str()) {
            evaluate_macro_calls(&text).map_err(|m| self.problem(command.span, &command.name, m))?
        } else {
            text
        };
        let (line, column) = line_column(self.script, command.span.start);
        let at = command.span;
        let reparsed = parse(&text);
        if let Some(d) = reparsed.diagnostics.first() {
            return Err(self.problem(
                command.span,
                &command.name,
                format!("after substituting bindings: {}", d.message),
            ));
        }
        let Some(Item::Command(command)) = reparsed.items.into_iter().next() else {
            return Err(self.problem(
                command.span,
                &command.name,
                "after substituting bindings, nothing is left to run",
            ));
        };
        // The parse above read the command against the catalogue already, so this does not
        // fail; were it to, the problem is reported at the original line.
        let typed = command.typed(&text).map_err(|problems| {
            let message = problems.first().map_or("", |d| d.message.as_str());
            self.problem(at, &command.name, format!("after substituting bindings: {message}"))
        })?;
        Ok(Expanded { line: line as u32, column_offset: column as u32 - 1, text, command, typed })
    }

    /// Replaces `$name` by its value. `++` next to a binding joins names (`wage_ ++ $year` is
    /// `wage_2021`), so it disappears with the spaces around it.
    fn substitute(&self, text: &str, offset: u32) -> Result<String, Vec<Problem>> {
        let (tokens, _) = lex(text);
        let mut pieces: Vec<(TokenKind, String)> = Vec::with_capacity(tokens.len());
        let mut length = 0;
        for t in &tokens {
            let piece = t.span.text(text);
            if t.kind != TokenKind::Dollar {
                length += piece.len();
                pieces.push((t.kind, piece.to_owned()));
                continue;
            }
            let name = &piece[1..];
            let Some(value) = self.bindings.get(name) else {
                let span = Span { start: t.span.start + offset, end: t.span.end + offset };
                return Err(self.problem(
                    span,
                    "let",
                    format!("${name} is not bound: add let {name} = … or a for loop over {name}"),
                ));
            };
            length += value.len();
            if length > MAX_TEXT_BYTES {
                let span = Span { start: t.span.start + offset, end: t.span.end + offset };
                return Err(self.problem(
                    span,
                    "let",
                    format!("substituting ${name} makes this text longer than {} KiB: use shorter bindings", MAX_TEXT_BYTES / 1024),
                ));
            }
            pieces.push((TokenKind::Dollar, value.clone()));
        }
        let meaningful = |i: usize| pieces[i].0 != TokenKind::Whitespace;
        let mut drop = vec![false; pieces.len()];
        for i in 0..pieces.len() {
            if pieces[i].0 != TokenKind::PlusPlus {
                continue;
            }
            let before = (0..i).rev().find(|&j| meaningful(j));
            let after = (i + 1..pieces.len()).find(|&j| meaningful(j));
            let binding = |j: Option<usize>| j.is_some_and(|j| pieces[j].0 == TokenKind::Dollar);
            if binding(before) || binding(after) {
                let from = before.map_or(0, |b| b + 1);
                let to = after.unwrap_or(pieces.len());
                drop[from..to].iter_mut().for_each(|d| *d = true);
            }
        }
        Ok(pieces.into_iter().zip(drop).filter(|(_, d)| !d).map(|((_, p), _)| p).collect())
    }

    fn let_binding(&mut self, command: &Command) -> Result<(), Vec<Problem>> {
        let usage = "write let <name> = <value>, such as let year = 2021";
        let args = &command.args;
        if args.len() < 3 || args[0].kind != TokenKind::Ident || args[1].kind != TokenKind::Eq {
            return Err(self.problem(command.span, "let", usage));
        }
        let name = args[0].span.text(self.script).to_owned();
        // Substitute earlier bindings into the value's text, then read it as an expression.
        let value_span = Span { start: args[2].span.start, end: args[args.len() - 1].span.end };
        let text = self.substitute(value_span.text(self.script), value_span.start)?;
        let (tokens, _) = lex(&text);
        let tokens: Vec<_> = tokens
            .into_iter()
            .filter(|t| !t.kind.is_trivia() && t.kind != TokenKind::Newline)
            .collect();
        let mut parser = ExprParser::new(&text, &tokens);
        let expr = parser.parse();
        if let Some(d) = parser.diagnostics.first() {
            return Err(self.problem(value_span, "let", d.message.clone()));
        }
        if let Some(rest) = tokens.get(parser.position()) {
            let rest = &text[rest.span.start as usize..];
            return Err(self.problem(
                value_span,
                "let",
                format!("'{rest}' follows the value: join values with ++, such as let name = wage_ ++ $year"),
            ));
        }
        let value = evaluate_let(&expr, &text).map_err(|m| self.problem(value_span, "let", m))?;
        self.bindings.insert(name, value);
        Ok(())
    }

    /// `for i in 1 2 3` and `for i in a, b, c` list values; `for i in 2015 : 2020` is a range;
    /// `for i in …; j in …` nests; `for i, j in 2019 2020, a b` zips one list per name, the
    /// lists separated by commas.
    fn for_loop(&mut self, header: &Command, body: &[Item]) -> Result<(), Vec<Problem>> {
        let text = Span { start: header.name_span.end, end: header.span.end }.text(self.script);
        let text = self.substitute(text, header.name_span.end)?;
        let mut loops: Vec<Vec<Vec<(String, String)>>> = Vec::new();
        let max_loops = shared::script::parse::MAX_LOOP_DEPTH as usize;
        if text.split(';').count() > max_loops {
            return Err(self.problem(
                header.span,
                "for",
                format!("one for line opens at most {max_loops} loops (separated by ;): split it"),
            ));
        }
        for segment in text.split(';') {
            let Some((names, values)) = segment.split_once(" in ") else {
                return Err(self.problem(
                    header.span,
                    "for",
                    "write for <name> in <values>, such as for year in 2019 : 2021",
                ));
            };
            let names: Vec<&str> = names.split(',').map(str::trim).collect();
            let lists: Vec<Vec<String>> = if names.len() == 1 {
                vec![self.loop_values(header, values)?]
            } else {
                let groups: Vec<&str> = values.split(',').collect();
                if groups.len() != names.len() {
                    return Err(self.problem(
                        header.span,
                        "for",
                        format!(
                            "a zipped loop over {} names takes {} lists separated by commas, one per name, such as for year, name in 2019 2020, a b; this has {}",
                            names.len(),
                            names.len(),
                            groups.len()
                        ),
                    ));
                }
                groups.iter().map(|g| self.loop_values(header, g)).collect::<Result<_, _>>()?
            };
            if let Some(other) = lists.iter().find(|l| l.len() != lists[0].len()) {
                return Err(self.problem(
                    header.span,
                    "for",
                    format!(
                        "the lists of a zipped loop must be as long as each other; here one has {} values and another {}",
                        lists[0].len(),
                        other.len()
                    ),
                ));
            }
            let steps = (0..lists[0].len())
                .map(|k| {
                    names.iter().zip(&lists).map(|(n, l)| ((*n).to_owned(), l[k].clone())).collect()
                })
                .collect();
            loops.push(steps);
        }
        self.nested(&loops, body, header.span)
    }

    /// One loop's values: a range `2015 : 2020`, or values separated by commas or spaces.
    fn loop_values(&self, header: &Command, values: &str) -> Result<Vec<String>, Vec<Problem>> {
        let values = values.trim();
        let list: Vec<String> = match values.split_once(':') {
            Some((from, to)) if !values.contains(',') => {
                let (from, to) = (from.trim().parse::<i64>(), to.trim().parse::<i64>());
                let (Ok(from), Ok(to)) = (from, to) else {
                    return Err(self.problem(
                        header.span,
                        "for",
                        "a range takes two whole numbers: for i in 2015 : 2020",
                    ));
                };
                if to < from || to - from >= self.max_commands as i64 {
                    return Err(self.problem(header.span, "for", format!("the range {from} : {to} is empty or longer than the limit of {} (max_commands)", self.max_commands)));
                }
                (from..=to).map(|v| v.to_string()).collect()
            }
            _ => split_values(values),
        };
        if list.is_empty() {
            return Err(self.problem(header.span, "for", "the loop has no values"));
        }
        Ok(list)
    }

    fn nested(
        &mut self,
        loops: &[Vec<Vec<(String, String)>>],
        body: &[Item],
        header: Span,
    ) -> Result<(), Vec<Problem>> {
        let Some((steps, rest)) = loops.split_first() else {
            return self.items(body);
        };
        // Every command a step adds counts against max_commands; this bounds the steps of
        // loops whose bodies add none (each outer step is followed by at least one inner).
        let max_iterations = 2 * self.max_commands;
        let names: Vec<&String> = steps[0].iter().map(|(n, _)| n).collect();
        let saved: Vec<Option<String>> =
            names.iter().map(|n| self.bindings.get(*n).cloned()).collect();
        for step in steps {
            self.iterations += 1;
            if self.iterations > max_iterations {
                return Err(self.problem(
                    header,
                    "for",
                    format!("the loops take more than {max_iterations} steps (twice max_commands): use fewer loop values"),
                ));
            }
            for (name, value) in step {
                self.bindings.insert(name.clone(), value.clone());
            }
            self.nested(rest, body, header)?;
        }
        for (name, saved) in names.into_iter().zip(saved) {
            match saved {
                Some(v) => self.bindings.insert(name.clone(), v),
                None => self.bindings.remove(name),
            };
        }
        Ok(())
    }
}

/// The values of a loop list: separated by commas or by spaces, as microdata.no writes
/// `for i in 1 2 3`. A quoted value keeps its spaces.
fn split_values(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, c) if c == ',' || c.is_whitespace() => {
                if !current.is_empty() {
                    values.push(std::mem::take(&mut current));
                }
            }
            (None, c) => current.push(c),
        }
    }
    if !current.is_empty() {
        values.push(current);
    }
    values
}

/// A `let` value as the text it stands for: numbers, quoted text, dates and symbols, joined
/// by `++` or combined by arithmetic, and the conversion functions.
fn evaluate_let(expr: &Expr, source: &str) -> Result<String, String> {
    #[derive(Clone)]
    enum V {
        Number(f64),
        Text(String),
        Symbol(String),
    }
    fn show(v: &V) -> String {
        match v {
            V::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            V::Number(n) => n.to_string(),
            V::Text(t) => format!("'{t}'"),
            V::Symbol(s) => s.clone(),
        }
    }
    fn bare(v: &V) -> String {
        match v {
            V::Text(t) => t.clone(),
            other => show(other),
        }
    }
    fn eval(expr: &Expr, source: &str) -> Result<V, String> {
        Ok(match expr {
            Expr::Number { value, .. } => V::Number(*value),
            Expr::Text { value, .. } => V::Text(value.clone()),
            Expr::Date { span, .. } => V::Symbol(span.text(source).to_owned()),
            Expr::Variable { name, .. } => V::Symbol(name.clone()),
            Expr::Binary { op: BinaryOp::Concat, lhs, rhs, .. } => {
                let (l, r) = (eval(lhs, source)?, eval(rhs, source)?);
                match l {
                    V::Text(t) => V::Text(t + &bare(&r)),
                    other => V::Symbol(bare(&other) + &bare(&r)),
                }
            }
            Expr::Binary { op, lhs, rhs, .. } => {
                let (V::Number(a), V::Number(b)) = (eval(lhs, source)?, eval(rhs, source)?) else {
                    return Err("arithmetic in let needs numbers; join names with ++".into());
                };
                V::Number(match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    BinaryOp::Pow => a.powf(b),
                    _ => return Err("let takes numbers, text, names, ++ and + - * / ^".into()),
                })
            }
            Expr::Unary { op: shared::script::UnaryOp::Neg, operand, .. } => {
                match eval(operand, source)? {
                    V::Number(n) => V::Number(-n),
                    _ => return Err("only numbers can be negated".into()),
                }
            }
            Expr::Call { function, args, .. } if function == "bind" && !args.is_empty() => {
                // bind(a, b, …): the values joined into one name, as a ++ b ++ … joins them.
                let mut joined = String::new();
                for arg in args {
                    joined += &bare(&eval(arg, source)?);
                }
                V::Symbol(joined)
            }
            Expr::Call { function, args, .. } if function == "date_fmt" => {
                let values =
                    args.iter().map(|a| eval(a, source)).collect::<Result<Vec<V>, String>>()?;
                V::Symbol(date_fmt(&values.iter().map(bare).collect::<Vec<_>>())?.to_string())
            }
            Expr::Call { function, args, .. } if args.len() == 1 => {
                let v = eval(&args[0], source)?;
                match function.as_str() {
                    "to_int" => match &v {
                        V::Number(n) => V::Number(n.trunc()),
                        other => V::Number(
                            bare(other)
                                .trim()
                                .parse::<f64>()
                                .map_err(|_| {
                                    format!("to_int cannot read '{}' as a number", bare(other))
                                })?
                                .trunc(),
                        ),
                    },
                    "to_str" => V::Text(bare(&v)),
                    "to_symbol" | "bind" => V::Symbol(bare(&v)),
                    other => {
                        return Err(format!(
                            "only date_fmt, to_int, to_str, to_symbol and bind work inside let, not {other}"
                        ));
                    }
                }
            }
            _ => return Err("let takes numbers, text, names, ++ and + - * / ^".into()),
        })
    }
    eval(expr, source).map(|v| show(&v))
}

/// `date_fmt(y, m, d)` (a date from its parts), `date_fmt(days)` (days since 1970-01-01) or
/// `date_fmt('2021-12-31')`: the date, as an import takes it.
fn date_fmt(args: &[String]) -> Result<Date, String> {
    let number =
        |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.fract() == 0.0 && n.abs() < 1e9);
    // Dates an import reads are written YYYY-MM-DD: four-digit years.
    let readable = |date: Date| (1000..=9999).contains(&date.year()).then_some(date);
    let usage = "date_fmt takes a year, month and day (date_fmt(2021, 12, 31)), days since 1970-01-01, or a date's text";
    match args {
        [y, m, d] => {
            let (Some(y), Some(m), Some(d)) = (number(y), number(m), number(d)) else {
                return Err(format!("{usage}, not ({y}, {m}, {d})"));
            };
            let part = |v: f64| u32::try_from(v as i64).ok();
            i32::try_from(y as i64)
                .ok()
                .zip(part(m).zip(part(d)))
                .and_then(|(y, (m, d))| Date::from_ymd(y, m, d))
                .and_then(readable)
                .ok_or_else(|| {
                    format!(
                        "date_fmt({y}, {m}, {d}) is no date: the month is 1 to 12, the day within the month, the year 1000 to 9999"
                    )
                })
        }
        [one] => match number(one) {
            Some(days) => i32::try_from(days as i64)
                .ok()
                .map(Date::from_epoch_days)
                .and_then(readable)
                .ok_or_else(|| format!("date_fmt({one}) is no date from year 1000 to 9999")),
            None => one.trim().parse::<Date>().map_err(|e| format!("date_fmt: {e}")),
        },
        _ => Err(usage.to_owned()),
    }
}

/// The functions a script evaluates before it runs, as `let` does: outside `let` they may
/// stand for an import's dates, as in a loop over years.
const MACRO_FUNCTIONS: &[&str] = &["date_fmt", "to_int", "to_str", "to_symbol", "bind"];

/// Replaces each call of a [`MACRO_FUNCTIONS`] function in a command's text by its value.
fn evaluate_macro_calls(text: &str) -> Result<String, String> {
    let (tokens, _) = lex(text);
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| !t.kind.is_trivia() && t.kind != TokenKind::Newline)
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_call = t.kind == TokenKind::Ident
            && MACRO_FUNCTIONS.contains(&t.span.text(text))
            && tokens.get(i + 1).is_some_and(|n| n.kind == TokenKind::LParen);
        if !is_call {
            i += 1;
            continue;
        }
        // The expression parser reads the call to its closing parenthesis and stops there.
        let mut parser = ExprParser::new(text, &tokens[i..]);
        let expr = parser.parse();
        if let Some(d) = parser.diagnostics.first() {
            return Err(d.message.clone());
        }
        if !matches!(expr, Expr::Call { .. }) {
            return Err(format!(
                "{} stands for a value here, and nothing may follow it but a name or a date",
                t.span.text(text)
            ));
        }
        let end = i + parser.position() - 1;
        let value = evaluate_let(&expr, text)?;
        out.push_str(&text[copied..t.span.start as usize]);
        out.push_str(&value);
        copied = tokens[end].span.end as usize;
        i = end + 1;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(args: &[&str]) -> Result<String, String> {
        date_fmt(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()).map(|d| d.to_string())
    }

    #[test]
    fn date_fmt_reads_parts_days_and_text() {
        assert_eq!(date(&["2021", "12", "31"]), Ok("2021-12-31".to_owned()));
        assert_eq!(date(&["2020", "2", "29"]), Ok("2020-02-29".to_owned()));
        // 2020-01-01 is day 18 262 after 1970-01-01.
        assert_eq!(date(&["18262"]), Ok("2020-01-01".to_owned()));
        assert_eq!(date(&["2019-06-30"]), Ok("2019-06-30".to_owned()));
        assert!(
            date(&["2021", "2", "29"]).unwrap_err().contains("is no date: the month is 1 to 12")
        );
        assert!(date(&["2021", "12"]).unwrap_err().contains("takes a year, month and day"));
        assert!(date(&["-800000"]).unwrap_err().contains("from year 1000 to 9999"));
    }

    #[test]
    fn calls_in_an_import_are_replaced_by_their_values() {
        let text = "import db/INNTEKT_WLONN date_fmt(2019, 12, 31) as wage";
        assert_eq!(
            evaluate_macro_calls(text),
            Ok("import db/INNTEKT_WLONN 2019-12-31 as wage".to_owned())
        );
        let nested =
            "import-event db/A date_fmt(bind(2020, '-01-01')) to date_fmt(to_int('2020'), 6, 30)";
        assert_eq!(
            evaluate_macro_calls(nested),
            Ok("import-event db/A 2020-01-01 to 2020-06-30".to_owned())
        );
        assert!(evaluate_macro_calls("import db/A date_fmt(2019, 12").is_err());
    }

    #[test]
    fn an_import_date_in_a_loop_is_evaluated_per_value() {
        let script = "for y in 2018 : 2019\nimport db/INNTEKT_WLONN date_fmt($y, 12, 31) as w_$y\nend\nlet d = bind($y_missing)\n";
        // The loop expands; the unbound $y_missing after it is the only problem.
        let problems = expand(script, 100).unwrap_err();
        assert!(problems[0].message.contains("$y_missing is not bound"), "{problems:?}");
        let ok =
            "for y in 2018 : 2019\nimport db/INNTEKT_WLONN date_fmt($y, 12, 31) as w_$y\nend\n";
        let texts: Vec<String> = expand(ok, 100).unwrap().into_iter().map(|e| e.text).collect();
        assert_eq!(
            texts,
            [
                "import db/INNTEKT_WLONN 2018-12-31 as w_2018",
                "import db/INNTEKT_WLONN 2019-12-31 as w_2019"
            ]
        );
    }
}
