//! Splitting a script into commands: the layer between tokens and per-command syntax.
//!
//! Every command has the shape `name args [if condition] [, options]`, one per logical line
//! (`\` continues a line). `for … end` nests commands; `textblock … endblock` holds Markdown that
//! is never lexed as commands. The arguments stay tokens here: what they mean depends on the
//! command, and the command catalogue reads them. Parsing never fails; problems become
//! diagnostics and the rest of the script is still read.

use super::catalog;
use super::expr::{Expr, ExprParser};
use super::lexer::{Token, TokenKind, lex};
use super::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    pub items: Vec<Item>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Command(Command),
    /// `for <header> … end`; the header's arguments are the loop bindings.
    For {
        header: Command,
        body: Vec<Item>,
        span: Span,
    },
    /// The Markdown between `textblock` and `endblock`.
    TextBlock {
        text: String,
        span: Span,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The whole command, continuation lines included.
    pub span: Span,
    /// `import-event`, `tabulate`, …
    pub name: String,
    pub name_span: Span,
    /// Tokens between the name and `if` or the options.
    pub args: Vec<Token>,
    pub condition: Option<Expr>,
    pub options: Vec<CommandOption>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CommandOption {
    pub name: String,
    pub span: Span,
    /// The tokens inside `name(…)`; `None` for a bare `name`.
    pub args: Option<Vec<Token>>,
}

impl Script {
    /// Every span the parse produced (items, names, conditions, options, diagnostics), for
    /// checks that they all point into the text.
    pub fn spans(&self) -> Vec<Span> {
        fn walk(items: &[Item], out: &mut Vec<Span>) {
            for item in items {
                match item {
                    Item::Command(c) => {
                        out.extend([c.span, c.name_span]);
                        out.extend(c.condition.as_ref().map(Expr::span));
                        out.extend(c.options.iter().map(|o| o.span));
                    }
                    Item::For { header, body, span } => {
                        out.extend([*span, header.span]);
                        walk(body, out);
                    }
                    Item::TextBlock { span, .. } => out.push(*span),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.items, &mut out);
        out.extend(self.diagnostics.iter().map(|d| d.span));
        out
    }
}

/// Parses a whole script.
pub fn parse(source: &str) -> Script {
    let text_blocks = find_text_blocks(source);
    let (tokens, lex_diagnostics) = lex(source);
    // Everything from `textblock` to `endblock` (keywords included) is text, not script.
    // The blocks are in order and apart, so the one that could hold a span is found by
    // bisection: a script of many small blocks must not cost blocks × tokens.
    let inside = |span: Span| {
        let after = text_blocks.partition_point(|b| b.span.start <= span.start);
        after > 0 && span.end <= text_blocks[after - 1].span.end
    };
    let mut diagnostics: Vec<Diagnostic> =
        lex_diagnostics.into_iter().filter(|d| !inside(d.span)).collect();

    // Logical lines: runs of meaningful tokens between newlines, outside text blocks.
    let mut lines: Vec<Line> = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    for token in tokens {
        if inside(token.span) || token.kind.is_trivia() {
            continue;
        }
        if token.kind == TokenKind::Newline {
            if !current.is_empty() {
                lines.push(Line::Tokens(std::mem::take(&mut current)));
            }
            continue;
        }
        current.push(token);
    }
    if !current.is_empty() {
        lines.push(Line::Tokens(current));
    }
    // Put each text block where its `textblock` line was.
    let mut with_blocks: Vec<Line> = Vec::new();
    let mut blocks = text_blocks.iter().peekable();
    for line in lines {
        let Line::Tokens(tokens) = &line else { unreachable!("only token lines so far") };
        let start = tokens[0].span.start;
        while let Some(b) = blocks.next_if(|b| b.span.start <= start) {
            with_blocks.push(Line::Text(b.clone()));
        }
        with_blocks.push(line);
    }
    with_blocks.extend(blocks.cloned().map(Line::Text));

    let mut parser = Parser {
        source,
        lines: with_blocks,
        pos: 0,
        loops_open: 0,
        too_deep_reported: false,
        diagnostics: &mut diagnostics,
    };
    let items = parser.items(None);
    for b in text_blocks.iter().filter(|b| !b.closed) {
        diagnostics.push(Diagnostic {
            span: b.opening,
            message: "this textblock has no endblock: add a line with endblock after the text"
                .into(),
        });
    }
    diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
    Script { items, diagnostics }
}

#[derive(Clone, Debug)]
struct TextBlock {
    /// From `textblock` to the end of `endblock`.
    span: Span,
    /// The `textblock` keyword.
    opening: Span,
    /// The lines between the two keywords.
    body: Span,
    closed: bool,
}

enum Line {
    Tokens(Vec<Token>),
    Text(TextBlock),
}

/// Text blocks are found on raw lines, before lexing, because Markdown is not script.
fn find_text_blocks(source: &str) -> Vec<TextBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim();
        let start = offset + (line.len() - line.trim_start().len());
        match open {
            None if trimmed == "textblock" => open = Some((start, offset + line.len())),
            Some((opening, body_start)) if trimmed == "endblock" => {
                blocks.push(TextBlock {
                    span: Span::new(opening, start + "endblock".len()),
                    opening: Span::new(opening, opening + "textblock".len()),
                    body: Span::new(body_start, offset),
                    closed: true,
                });
                open = None;
            }
            _ => {}
        }
        offset += line.len();
    }
    if let Some((opening, body_start)) = open {
        blocks.push(TextBlock {
            span: Span::new(opening, source.len()),
            opening: Span::new(opening, opening + "textblock".len()),
            body: Span::new(body_start, source.len()),
            closed: false,
        });
    }
    blocks
}

/// The most `for` loops open inside each other. Loops nest by recursion here and in every
/// pass after (expansion, the editor's outline), so their depth is bounded where they are read.
pub const MAX_LOOP_DEPTH: u32 = 10;

struct Parser<'a, 'd> {
    source: &'a str,
    lines: Vec<Line>,
    pos: usize,
    /// `for` loops open around the current line.
    loops_open: u32,
    too_deep_reported: bool,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Parser<'_, '_> {
    fn report(&mut self, span: Span, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic { span, message: message.into() });
    }

    /// Unknown commands and options, and option values that do not fit, are found here, as
    /// the user types, with the nearest name.
    fn check_against_catalogue(&mut self, command: &Command) {
        let spec = match command.typed(self.source) {
            Ok(typed) => typed.spec,
            Err(problems) => {
                self.diagnostics.extend(problems);
                // Without its entry the command's arguments cannot be read; with it, they can.
                match catalog::Verb::named(&command.name)
                    .map(|verb| super::typed::options_spec(command, verb, self.source))
                {
                    Some(Ok(spec)) => spec,
                    _ => return,
                }
            }
        };
        // Expressions in arguments are checked here too, so the editor shows their mistakes.
        if matches!(spec.name, "generate" | "replace")
            && command.args.len() >= 2
            && command.args[1].kind == TokenKind::Eq
        {
            let tokens = &command.args[2..];
            if tokens.is_empty() {
                self.report(command.args[1].span, "an expression is expected after =");
            } else {
                let mut parser = ExprParser::new(self.source, tokens);
                parser.parse();
                let consumed = parser.position();
                self.diagnostics.append(&mut parser.diagnostics);
                if consumed < tokens.len() {
                    let extra = Span {
                        start: tokens[consumed].span.start,
                        end: tokens[tokens.len() - 1].span.end,
                    };
                    self.report(
                        extra,
                        format!(
                            "'{}' does not belong to the expression: conditions go after if",
                            extra.text(self.source)
                        ),
                    );
                }
            }
        }
    }

    /// Items until the end of the script, or until `end` when inside the `for` at `opened`.
    fn items(&mut self, opened: Option<Span>) -> Vec<Item> {
        let mut items = Vec::new();
        while self.pos < self.lines.len() {
            let index = self.pos;
            self.pos += 1;
            let tokens = match &self.lines[index] {
                Line::Text(block) => {
                    let text = block.body.text(self.source).to_owned();
                    items.push(Item::TextBlock { text, span: block.span });
                    continue;
                }
                Line::Tokens(tokens) => tokens.clone(),
            };
            let Some(command) = self.command(&tokens) else { continue };
            match command.name.as_str() {
                "end" => {
                    if opened.is_some() {
                        return items;
                    }
                    self.report(command.name_span, "this end closes no for loop: remove it");
                }
                "for" if self.loops_open >= MAX_LOOP_DEPTH => {
                    // Once is enough: a script of nothing but `for` lines would say it
                    // thousands of times.
                    if !std::mem::replace(&mut self.too_deep_reported, true) {
                        self.report(
                            command.name_span,
                            format!("for loops nest more than {MAX_LOOP_DEPTH} deep here: unroll the innermost loops or split the script"),
                        );
                    }
                }
                "for" => {
                    self.loops_open += 1;
                    let body = self.items(Some(command.name_span));
                    self.loops_open -= 1;
                    let end = self.pos.checked_sub(1).and_then(|i| match &self.lines.get(i) {
                        Some(Line::Tokens(t)) if t[0].span.text(self.source) == "end" => {
                            Some(t[t.len() - 1].span.end)
                        }
                        _ => None,
                    });
                    let span =
                        Span { start: command.span.start, end: end.unwrap_or(command.span.end) };
                    items.push(Item::For { header: command, body, span });
                }
                _ => {
                    self.check_against_catalogue(&command);
                    items.push(Item::Command(command));
                }
            }
        }
        if let Some(span) = opened {
            self.report(span, "this for loop has no end: add a line with end after its commands");
        }
        items
    }

    fn command(&mut self, tokens: &[Token]) -> Option<Command> {
        let first = tokens[0];
        if first.kind != TokenKind::Ident {
            self.report(
                first.span,
                format!(
                    "a command starts with its name, such as import or tabulate, not '{}'",
                    first.span.text(self.source)
                ),
            );
            return None;
        }
        // Hyphenated names are words joined by '-' with no space: import-event, regress-panel.
        let mut i = 1;
        let mut name_end = first.span.end;
        while i + 1 < tokens.len()
            && tokens[i].kind == TokenKind::Minus
            && tokens[i].span.start == name_end
            && tokens[i + 1].kind == TokenKind::Ident
            && tokens[i + 1].span.start == tokens[i].span.end
        {
            name_end = tokens[i + 1].span.end;
            i += 2;
        }
        let name_span = Span { start: first.span.start, end: name_end };
        let name = name_span.text(self.source).to_owned();
        let span = Span { start: first.span.start, end: tokens[tokens.len() - 1].span.end };
        let rest = &tokens[i..];
        // Loop headers (`for i in a, b`) and `let` use commas and `if` as plain text.
        if matches!(name.as_str(), "for" | "let" | "end") {
            return Some(Command {
                span,
                name,
                name_span,
                args: rest.to_vec(),
                condition: None,
                options: Vec::new(),
            });
        }
        let comma = top_level(rest, |t| t.kind == TokenKind::Comma);
        let (before, options) = match comma {
            Some(c) => (&rest[..c], self.options(&rest[c + 1..], rest[c].span)),
            None => (rest, Vec::new()),
        };
        let is_if = |t: &Token| t.kind == TokenKind::Ident && t.span.text(self.source) == "if";
        let (args, condition) = match top_level(before, is_if) {
            Some(at) => {
                let condition_tokens = &before[at + 1..];
                if condition_tokens.is_empty() {
                    self.report(
                        before[at].span,
                        "'if' needs a condition after it, such as if age >= 18",
                    );
                    let missing = Expr::Error {
                        span: Span { start: before[at].span.end, end: before[at].span.end },
                    };
                    return Some(Command {
                        span,
                        name,
                        name_span,
                        args: before[..at].to_vec(),
                        condition: Some(missing),
                        options,
                    });
                }
                let mut expr = ExprParser::new(self.source, condition_tokens);
                let condition = expr.parse();
                let consumed = expr.position();
                self.diagnostics.append(&mut expr.diagnostics);
                if consumed < condition_tokens.len() {
                    let extra = Span {
                        start: condition_tokens[consumed].span.start,
                        end: before[before.len() - 1].span.end,
                    };
                    self.report(extra, format!(
                            "'{}' does not belong to the condition: join conditions with & or |, and put options after a comma",
                            extra.text(self.source)
                        ));
                }
                (before[..at].to_vec(), Some(condition))
            }
            None => (before.to_vec(), None),
        };
        Some(Command { span, name, name_span, args, condition, options })
    }

    fn options(&mut self, tokens: &[Token], comma: Span) -> Vec<CommandOption> {
        let mut options = Vec::new();
        let mut i = 0;
        if tokens.is_empty() {
            self.report(
                comma,
                "options are expected after this comma: add them or remove the comma",
            );
        }
        while i < tokens.len() {
            let t = tokens[i];
            if t.kind != TokenKind::Ident {
                self.report(
                    t.span,
                    format!(
                        "expected an option name such as robust or by(…), found '{}'",
                        t.span.text(self.source)
                    ),
                );
                i += 1;
                continue;
            }
            let name = t.span.text(self.source).to_owned();
            i += 1;
            if i < tokens.len()
                && tokens[i].kind == TokenKind::LParen
                && tokens[i].span.start == t.span.end
            {
                let open = i;
                let mut depth = 0;
                let mut close = None;
                for (j, token) in tokens.iter().enumerate().skip(open) {
                    match token.kind {
                        TokenKind::LParen => depth += 1,
                        TokenKind::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = close.unwrap_or(tokens.len() - 1);
                if close.is_none() {
                    self.report(
                        tokens[open].span,
                        format!("the '(' of option {name} is never closed: add ')'"),
                    );
                }
                let inner_end = if close.is_some() { end } else { end + 1 };
                options.push(CommandOption {
                    name,
                    span: Span { start: t.span.start, end: tokens[end].span.end },
                    args: Some(tokens[open + 1..inner_end].to_vec()),
                });
                i = end + 1;
            } else {
                options.push(CommandOption { name, span: t.span, args: None });
            }
        }
        options
    }
}

/// The index of the first token at parenthesis depth 0 that matches.
fn top_level(tokens: &[Token], matches: impl Fn(&Token) -> bool) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth -= 1,
            _ if depth == 0 && matches(t) => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::script::line_column;

    fn check(input: &str, expected: Expect) {
        let script = parse(input);
        let mut out = String::new();
        render(&script.items, input, 0, &mut out);
        for d in &script.diagnostics {
            let (line, column) = line_column(input, d.span.start);
            out.push_str(&format!(
                "error {line}:{column} {:?}: {}\n",
                d.span.text(input),
                d.message
            ));
        }
        expected.assert_eq(&out);
    }

    fn tokens(tokens: &[Token], source: &str) -> String {
        tokens.iter().map(|t| t.span.text(source)).collect::<Vec<_>>().join(" ")
    }

    fn render(items: &[Item], source: &str, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        for item in items {
            match item {
                Item::Command(c) => {
                    out.push_str(&format!("{indent}{} [{}]", c.name, tokens(&c.args, source)));
                    if let Some(cond) = &c.condition {
                        out.push_str(&format!(" if {{{}}}", cond.span().text(source)));
                    }
                    for o in &c.options {
                        match &o.args {
                            Some(a) => {
                                out.push_str(&format!(" ,{}({})", o.name, tokens(a, source)))
                            }
                            None => out.push_str(&format!(" ,{}", o.name)),
                        }
                    }
                    out.push('\n');
                }
                Item::For { header, body, .. } => {
                    out.push_str(&format!("{indent}for [{}]\n", tokens(&header.args, source)));
                    render(body, source, depth + 1, out);
                    out.push_str(&format!("{indent}end\n"));
                }
                Item::TextBlock { text, .. } => {
                    out.push_str(&format!("{indent}textblock {text:?}\n"))
                }
            }
        }
    }

    #[test]
    fn coefplot_takes_the_options_of_the_model_it_draws() {
        check(
            "coefplot regress wage age, robust\ncoefplot logit high age, bogus\ncoefplot tabulate sex\ncoefplot\n",
            expect![[r#"
                coefplot [regress wage age] ,robust
                coefplot [logit high age] ,bogus
                coefplot [tabulate sex]
                coefplot []
                error 2:26 "bogus": logit has no option 'bogus'; its options are noconstant, level, robust, cluster, or, mfx
                error 3:10 "tabulate": coefplot plots a model, and 'tabulate' is not one: write coefplot regress y x…
                error 4:1 "coefplot": write coefplot <model command>, such as coefplot regress y x
            "#]],
        );
    }

    #[test]
    fn the_first_example_script_of_the_language_reference() {
        check(
            "require no.ssb.fdb:30 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
generate age = 2021 - int(birth/100)
import db/INNTEKT_WLONN 2021-12-31 as wage
keep if age >= 25 & age <= 66
tabulate sex, summarize(wage)
regress wage age i.sex
",
            expect![[r#"
                require [no . ssb . fdb : 30 as db]
                create-dataset [persons]
                import [db / BEFOLKNING_KJOENN as sex]
                import [db / BEFOLKNING_FOEDSELS_AAR_MND as birth]
                generate [age = 2021 - int ( birth / 100 )]
                import [db / INNTEKT_WLONN 2021-12-31 as wage]
                keep [] if {age >= 25 & age <= 66}
                tabulate [sex] ,summarize(wage)
                regress [wage age i . sex]
            "#]],
        );
    }

    #[test]
    fn options_conditions_and_continued_lines() {
        check(
            "regress wage age i.sex if inlist(fylke, '03', '46'), robust cluster(kommune) \\\n  level(90)\ncollapse (mean) wage -> mean_wage (count) id, by(famnr)",
            expect![[r#"
                regress [wage age i . sex] if {inlist(fylke, '03', '46')} ,robust ,cluster(kommune) ,level(90)
                collapse [( mean ) wage -> mean_wage ( count ) id] ,by(famnr)
            "#]],
        );
    }

    #[test]
    fn loops_nest_and_textblocks_are_left_as_text() {
        check(
            "for y in 2019 : 2021\n  for k in a, b\n    summarize wage_$y\n  end\nend\ntextblock\n# Results €\nIncome *rose*.\nendblock\nhistogram wage",
            expect![[r##"
                for [y in 2019 : 2021]
                  for [k in a , b]
                    summarize [wage_ $y]
                  end
                end
                textblock "# Results €\nIncome *rose*.\n"
                histogram [wage]
            "##]],
        );
    }

    #[test]
    fn structural_mistakes_are_reported_and_the_rest_still_parses() {
        check(
            "for i in 1 : 3\n  summarize x\n= 5\nkeep if\ntabulate x, (robust)\nend\nend\ntextblock\nno end",
            expect![[r#"
                for [i in 1 : 3]
                  summarize [x]
                  keep [] if {}
                  tabulate [x] ,robust
                end
                textblock "no end"
                error 3:1 "=": a command starts with its name, such as import or tabulate, not '='
                error 4:6 "if": 'if' needs a condition after it, such as if age >= 18
                error 5:13 "(": expected an option name such as robust or by(…), found '('
                error 5:14 "robust": tabulate has no option 'robust'; its options are missing, nolabels, freq, rowpct, colpct, cellpct, chi2, flatten, rowsort, colsort, top, bottom, summarize, mean, std, sum, p25, p50, p75, gini, iqr
                error 5:20 ")": expected an option name such as robust or by(…), found ')'
                error 7:1 "end": this end closes no for loop: remove it
                error 8:1 "textblock": this textblock has no endblock: add a line with endblock after the text
            "#]],
        );
    }

    #[test]
    fn a_condition_that_runs_on_points_to_the_comma() {
        check(
            "summarize wage if age > 30 robust",
            expect![[r#"
                summarize [wage] if {age > 30}
                error 1:28 "robust": 'robust' does not belong to the condition: join conditions with & or |, and put options after a comma
            "#]],
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// Fragments chosen to stress the lexer and parser: unbalanced brackets, stray quotes,
    /// continuations, block keywords, multi-byte characters, operators in odd places.
    const FRAGMENTS: &[&str] = &[
        "import",
        "import-event",
        "-",
        "db/X",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\\",
        "\\\n",
        "if",
        ",",
        "(",
        ")",
        "'",
        "\"",
        "'a'",
        "for",
        "end",
        "textblock",
        "endblock",
        "let",
        "$x",
        "x",
        "==",
        "=",
        ".",
        "1",
        "2021-01-01",
        "1e",
        "e-",
        "#",
        "##",
        "^",
        "!",
        "&",
        "|",
        "->",
        "++",
        "//c",
        "ø",
        "€",
        "😀",
        "robust",
        "by(",
        "i.",
        "0.5",
        ":",
        ";",
        "\t",
    ];

    /// A small xorshift generator: the test is the same on every run and needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn check_span(source: &str, span: Span) {
        assert!(
            span.start <= span.end && span.end as usize <= source.len(),
            "{span:?} out of {source:?}"
        );
        assert!(
            source.is_char_boundary(span.start as usize)
                && source.is_char_boundary(span.end as usize),
            "{span:?} splits a character in {source:?}"
        );
    }

    #[test]
    fn random_scripts_never_panic_and_every_span_is_in_bounds() {
        // SKJOLD_PARSE_ROUNDS raises the count for a longer local run.
        let rounds = std::env::var("SKJOLD_PARSE_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(20_000);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..rounds {
            let length = (rng.next() % 40) as usize;
            let source: String = (0..length)
                .map(|_| FRAGMENTS[(rng.next() % FRAGMENTS.len() as u64) as usize])
                .collect();
            let script = parse(&source);
            for span in script.spans() {
                check_span(&source, span);
            }
            assert!(script.diagnostics.iter().all(|d| !d.message.is_empty()));
        }
    }
}
