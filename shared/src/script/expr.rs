//! Expressions: `2021 - int(birth/100)`, `kjonn == '1' & !sysmiss(wage)`.
//!
//! A Pratt parser over the lexer's tokens. It never fails: a missing operand becomes an `Error`
//! node with a diagnostic, so the editor can show every problem in a line at once. Precedence,
//! loosest first: `|`, `&`, comparisons, `+ - ++`, `* /`, unary `- !`, `^` (right-associative,
//! so `-2^2` is `-(2^2)` as in Stata).

use super::lexer::{Token, TokenKind};
use super::{Diagnostic, Span};
use crate::Date;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    /// `++`: joins values into a name or text (in `let` and import dates).
    Concat,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Number {
        value: f64,
        span: Span,
    },
    Text {
        value: String,
        span: Span,
    },
    /// A date literal, as days since 1970-01-01.
    Date {
        days: i32,
        span: Span,
    },
    /// `.`, the missing value.
    Missing {
        span: Span,
    },
    Variable {
        name: String,
        span: Span,
    },
    /// `$name`, a `let` binding.
    Binding {
        name: String,
        span: Span,
    },
    Call {
        function: String,
        function_span: Span,
        args: Vec<Expr>,
        span: Span,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
        span: Span,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
    /// Where an expression should have been; a diagnostic says why.
    Error {
        span: Span,
    },
}

impl Expr {
    /// The names of the variables the expression reads, in order, with repeats.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_variables(&mut out);
        out
    }

    fn collect_variables<'e>(&'e self, out: &mut Vec<&'e str>) {
        match self {
            Expr::Variable { name, .. } => out.push(name),
            Expr::Call { args, .. } => args.iter().for_each(|a| a.collect_variables(out)),
            Expr::Unary { operand, .. } => operand.collect_variables(out),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.collect_variables(out);
                rhs.collect_variables(out);
            }
            _ => {}
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Expr::Number { span, .. }
            | Expr::Text { span, .. }
            | Expr::Date { span, .. }
            | Expr::Missing { span }
            | Expr::Variable { span, .. }
            | Expr::Binding { span, .. }
            | Expr::Call { span, .. }
            | Expr::Unary { span, .. }
            | Expr::Binary { span, .. }
            | Expr::Error { span } => *span,
        }
    }
}

/// The deepest expression the parser builds: nested parentheses, calls and unary operators,
/// and each operator of a chain (`1 + 1 + …` is a tree as deep as it is long), all count.
/// Every later pass over the tree (checks, `let` evaluation, lowering to DataFusion, even
/// dropping it) recurses, and a stack overflow aborts the whole process, so the bound is
/// here, where every expression is made. Real scripts stay far below it.
pub const MAX_EXPR_DEPTH: u32 = 100;
/// The most nodes in one expression (a call with thousands of arguments is shallow but long).
pub const MAX_EXPR_NODES: usize = 5_000;

/// Reads expressions from a run of tokens (trivia already removed).
pub struct ExprParser<'a> {
    source: &'a str,
    tokens: &'a [Token],
    pos: usize,
    /// Parentheses, calls and unary operators open around the current token.
    nesting: u32,
    nodes: usize,
    /// Set once a limit is passed: the rest of the tokens are consumed unread.
    abandoned: bool,
    pub diagnostics: Vec<Diagnostic>,
}

fn binary_op(kind: TokenKind) -> Option<(BinaryOp, u8, u8)> {
    use BinaryOp::*;
    // (operator, left binding power, right binding power)
    Some(match kind {
        TokenKind::Pipe => (Or, 1, 2),
        TokenKind::Amp => (And, 3, 4),
        TokenKind::EqEq => (Eq, 5, 6),
        TokenKind::NotEq => (Ne, 5, 6),
        TokenKind::Lt => (Lt, 5, 6),
        TokenKind::LtEq => (Le, 5, 6),
        TokenKind::Gt => (Gt, 5, 6),
        TokenKind::GtEq => (Ge, 5, 6),
        TokenKind::Plus => (Add, 7, 8),
        TokenKind::Minus => (Sub, 7, 8),
        TokenKind::PlusPlus => (Concat, 7, 8),
        TokenKind::Star => (Mul, 9, 10),
        TokenKind::Slash => (Div, 9, 10),
        TokenKind::Caret => (Pow, 14, 13),
        _ => return None,
    })
}

const PREFIX_POWER: u8 = 11;

impl<'a> ExprParser<'a> {
    pub fn new(source: &'a str, tokens: &'a [Token]) -> ExprParser<'a> {
        ExprParser {
            source,
            tokens,
            pos: 0,
            nesting: 0,
            nodes: 0,
            abandoned: false,
            diagnostics: Vec::new(),
        }
    }

    /// Tokens consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> Expr {
        self.diagnostics.push(Diagnostic { span, message: message.into() });
        Expr::Error { span }
    }

    /// Where the next token would be, for errors at the end of the input.
    fn here(&self) -> Span {
        match (self.peek(), self.tokens.last()) {
            (Some(t), _) => t.span,
            (None, Some(last)) => Span { start: last.span.end, end: last.span.end },
            (None, None) => Span::default(),
        }
    }

    pub fn parse(&mut self) -> Expr {
        self.expr(0).0
    }

    /// Counts a node at `depth`; past a limit, reports it once at `span` and gives up on the
    /// rest of the tokens, so that no pass after this one meets a tree without bounds.
    fn within_limits(&mut self, depth: u32, span: Span) -> bool {
        self.nodes += 1;
        if self.abandoned {
            return false;
        }
        let message = if depth > MAX_EXPR_DEPTH || self.nesting > MAX_EXPR_DEPTH {
            format!(
                "this expression is nested more than {MAX_EXPR_DEPTH} levels deep (each operator of a chain counts as a level): split it into several generate or replace commands"
            )
        } else if self.nodes > MAX_EXPR_NODES {
            format!(
                "this expression has more than {MAX_EXPR_NODES} parts: split it into several generate or replace commands"
            )
        } else {
            return true;
        };
        self.diagnostics.push(Diagnostic { span, message });
        self.abandoned = true;
        self.pos = self.tokens.len();
        false
    }

    /// The expression and the depth of its tree.
    fn expr(&mut self, min_power: u8) -> (Expr, u32) {
        let (mut lhs, mut depth) = self.prefix();
        while let Some(token) = self.peek() {
            let Some((op, left, right)) = binary_op(token.kind) else { break };
            if left < min_power {
                break;
            }
            self.pos += 1;
            let (rhs, rhs_depth) = if self.peek().is_some() {
                // Through `nested`: a right-associative chain (`2^2^2…`) recurses once per
                // operator before any depth is known.
                self.nested(|parser| parser.expr(right))
            } else {
                let operator = token.span.text(self.source).to_owned();
                (self.error(token.span, format!("'{operator}' needs a value after it")), 1)
            };
            depth = depth.max(rhs_depth) + 1;
            if matches!(op, BinaryOp::Eq | BinaryOp::Ne)
                && (matches!(rhs, Expr::Missing { .. }) || matches!(lhs, Expr::Missing { .. }))
            {
                let tested = if matches!(rhs, Expr::Missing { .. }) { &lhs } else { &rhs };
                let name = tested.span().text(self.source).to_owned();
                let negate = if op == BinaryOp::Ne { "!" } else { "" };
                let span = Span { start: lhs.span().start, end: rhs.span().end };
                self.diagnostics.push(Diagnostic {
                    span,
                    message: format!(
                        "compare with the missing value using {negate}sysmiss({name}), not '.'"
                    ),
                });
            }
            let span = Span { start: lhs.span().start, end: rhs.span().end };
            lhs = Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), span };
            if !self.within_limits(depth, span) {
                break;
            }
        }
        (lhs, depth)
    }

    /// A value, a variable, a call, a unary operation or a parenthesised expression.
    fn prefix(&mut self) -> (Expr, u32) {
        if self.abandoned {
            return (Expr::Error { span: self.here() }, 1);
        }
        let Some(token) = self.peek() else {
            let here = self.here();
            return (self.error(here, "an expression is missing here"), 1);
        };
        if !self.within_limits(1, token.span) {
            return (Expr::Error { span: token.span }, 1);
        }
        let text = token.span.text(self.source);
        self.pos += 1;
        let leaf = match token.kind {
            TokenKind::Number => match text.parse::<f64>() {
                Ok(value) => Expr::Number { value, span: token.span },
                Err(_) => self.error(token.span, format!("'{text}' is not a number")),
            },
            TokenKind::String => {
                Expr::Text { value: text[1..text.len() - 1].to_owned(), span: token.span }
            }
            TokenKind::Date => match text.parse::<Date>() {
                Ok(date) => Expr::Date { days: date.epoch_days(), span: token.span },
                Err(e) => self.error(token.span, e.to_string()),
            },
            TokenKind::Dot => Expr::Missing { span: token.span },
            TokenKind::Dollar => Expr::Binding { name: text[1..].to_owned(), span: token.span },
            TokenKind::Ident
                if self.peek().is_some_and(|t| {
                    t.kind == TokenKind::LParen && t.span.start == token.span.end
                }) =>
            {
                return self.nested(|parser| parser.call(token));
            }
            TokenKind::Ident => Expr::Variable { name: text.to_owned(), span: token.span },
            TokenKind::Minus | TokenKind::Bang => {
                let op = if token.kind == TokenKind::Minus { UnaryOp::Neg } else { UnaryOp::Not };
                return self.nested(|parser| {
                    let (operand, depth) = parser.expr(PREFIX_POWER);
                    let span = Span { start: token.span.start, end: operand.span().end };
                    (Expr::Unary { op, operand: Box::new(operand), span }, depth + 1)
                });
            }
            TokenKind::LParen => {
                return self.nested(|parser| {
                    let inner = parser.expr(0);
                    if !parser.abandoned {
                        parser.expect_close(token.span);
                    }
                    inner
                });
            }
            kind => {
                // A binary operator is left in place, so `a + * b` still reads `* b`.
                if binary_op(kind).is_some() {
                    self.pos -= 1;
                }
                self.error(
                    token.span,
                    format!("expected a value, a variable or '(' but found '{text}'"),
                )
            }
        };
        (leaf, 1)
    }

    /// Parses inside one more level of parentheses, call or unary operator, refusing to go
    /// deeper than the limit: the recursion here is the parser's own stack.
    fn nested(&mut self, parse: impl FnOnce(&mut Self) -> (Expr, u32)) -> (Expr, u32) {
        self.nesting += 1;
        let here = self.here();
        let result =
            if self.within_limits(1, here) { parse(self) } else { (Expr::Error { span: here }, 1) };
        self.nesting -= 1;
        result
    }

    fn call(&mut self, name: Token) -> (Expr, u32) {
        let open = self.peek().expect("checked by the caller").span;
        self.pos += 1;
        let mut args = Vec::new();
        let mut depth = 1;
        if self.peek().is_some_and(|t| t.kind == TokenKind::RParen) {
            self.pos += 1;
        } else {
            loop {
                let (arg, arg_depth) = self.expr(0);
                depth = depth.max(arg_depth + 1);
                args.push(arg);
                if self.abandoned {
                    break;
                }
                match self.peek() {
                    Some(t) if t.kind == TokenKind::Comma => self.pos += 1,
                    _ => {
                        self.expect_close(open);
                        break;
                    }
                }
            }
        }
        let end = self.tokens[self.pos - 1].span.end;
        let call = Expr::Call {
            function: name.span.text(self.source).to_owned(),
            function_span: name.span,
            args,
            span: Span { start: name.span.start, end },
        };
        (call, depth)
    }

    fn expect_close(&mut self, open: Span) {
        match self.peek() {
            Some(t) if t.kind == TokenKind::RParen => self.pos += 1,
            _ => {
                self.diagnostics.push(Diagnostic {
                    span: open,
                    message: "this '(' is never closed: add ')'".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::script::lex;

    /// Renders the tree as an S-expression, then the unread tokens and the diagnostics.
    fn check(input: &str, expected: Expect) {
        let (tokens, _) = lex(input);
        let tokens: Vec<Token> = tokens.into_iter().filter(|t| !t.kind.is_trivia()).collect();
        let mut parser = ExprParser::new(input, &tokens);
        let expr = parser.parse();
        let mut out = render(&expr);
        if parser.position() < tokens.len() {
            out.push_str(&format!(
                "\nrest: {:?}",
                &input[tokens[parser.position()].span.start as usize..]
            ));
        }
        for d in &parser.diagnostics {
            out.push_str(&format!("\nerror {:?}: {}", d.span.text(input), d.message));
        }
        expected.assert_eq(&out);
    }

    fn render(e: &Expr) -> String {
        match e {
            Expr::Number { value, .. } => format!("{value}"),
            Expr::Text { value, .. } => format!("{value:?}"),
            Expr::Date { days, .. } => format!("date:{}", Date::from_epoch_days(*days)),
            Expr::Missing { .. } => ".".into(),
            Expr::Variable { name, .. } => name.clone(),
            Expr::Binding { name, .. } => format!("${name}"),
            Expr::Call { function, args, .. } => {
                let args: Vec<String> = args.iter().map(render).collect();
                format!("({function} {})", args.join(" ")).replace(" )", ")")
            }
            Expr::Unary { op, operand, .. } => format!("({op:?} {})", render(operand)),
            Expr::Binary { op, lhs, rhs, .. } => {
                format!("({op:?} {} {})", render(lhs), render(rhs))
            }
            Expr::Error { .. } => "ERROR".into(),
        }
    }

    #[test]
    fn arithmetic_follows_the_usual_precedence() {
        check(
            "2021 - int(birth/100) * 2 + 1",
            expect![[r#"(Add (Sub 2021 (Mul (int (Div birth 100)) 2)) 1)"#]],
        );
        check("-2^2^3", expect![[r#"(Neg (Pow 2 (Pow 2 3)))"#]]);
        check("(a + b) / c", expect![[r#"(Div (Add a b) c)"#]]);
    }

    #[test]
    fn logic_binds_looser_than_comparison() {
        check(
            "kjonn == '1' & age >= 25 | !sysmiss(wage)",
            expect![[r#"(Or (And (Eq kjonn "1") (Ge age 25)) (Not (sysmiss wage)))"#]],
        );
    }

    #[test]
    fn calls_take_several_arguments_and_none() {
        check(
            "inrange(age, 25, 66) & pi() > 3",
            expect![[r#"(And (inrange age 25 66) (Gt (pi) 3))"#]],
        );
        check(
            "date(2021, 1, 1) < 2021-06-30",
            expect![[r#"(Lt (date 2021 1 1) date:2021-06-30)"#]],
        );
    }

    #[test]
    fn bindings_and_concatenation() {
        check("wage_ ++ $year", expect![[r#"(Concat wage_ $year)"#]]);
    }

    #[test]
    fn comparing_with_missing_suggests_sysmiss() {
        check(
            "wage == .",
            expect![[r#"
                (Eq wage .)
                error "wage == .": compare with the missing value using sysmiss(wage), not '.'"#]],
        );
        check(
            "wage != .",
            expect![[r#"
                (Ne wage .)
                error "wage != .": compare with the missing value using !sysmiss(wage), not '.'"#]],
        );
    }

    #[test]
    fn a_broken_expression_still_parses_and_says_where() {
        check(
            "a + * b",
            expect![[r#"
                (Add a (Mul ERROR b))
                error "*": expected a value, a variable or '(' but found '*'"#]],
        );
        check(
            "round(x, 2",
            expect![[r#"
                (round x 2)
                error "(": this '(' is never closed: add ')'"#]],
        );
        check(
            "x +",
            expect![[r#"
                (Add x ERROR)
                error "+": '+' needs a value after it"#]],
        );
        check(
            "",
            expect![[r#"
            ERROR
            error "": an expression is missing here"#]],
        );
    }

    /// The tree's depth, counted without recursion so the test itself cannot overflow.
    fn depth(e: &Expr) -> u32 {
        let mut deepest = 0;
        let mut stack = vec![(e, 1)];
        while let Some((e, d)) = stack.pop() {
            deepest = deepest.max(d);
            match e {
                Expr::Call { args, .. } => stack.extend(args.iter().map(|a| (a, d + 1))),
                Expr::Unary { operand, .. } => stack.push((operand, d + 1)),
                Expr::Binary { lhs, rhs, .. } => stack.extend([(&**lhs, d + 1), (&**rhs, d + 1)]),
                _ => {}
            }
        }
        deepest
    }

    fn parse_all(input: &str) -> (Expr, Vec<Diagnostic>) {
        let (tokens, _) = lex(input);
        let tokens: Vec<Token> = tokens.into_iter().filter(|t| !t.kind.is_trivia()).collect();
        let mut parser = ExprParser::new(input, &tokens);
        let expr = parser.parse();
        (expr, parser.diagnostics)
    }

    #[test]
    fn deep_and_long_expressions_get_one_diagnostic_and_a_bounded_tree() {
        let nested = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let chain = format!("1{}", "+1".repeat(128 * 1024));
        let unary = format!("{}x", "-!".repeat(50_000));
        let calls = format!("{}1{}", "abs(".repeat(50_000), ")".repeat(50_000));
        let power = format!("2{}", "^2".repeat(100_000));
        for (what, input, message) in [
            ("nesting", &nested, "nested more than 100 levels deep"),
            ("a chain", &chain, "nested more than 100 levels deep"),
            ("unary operators", &unary, "nested more than 100 levels deep"),
            ("calls", &calls, "nested more than 100 levels deep"),
            ("a right-associative chain", &power, "nested more than 100 levels deep"),
        ] {
            let (expr, diagnostics) = parse_all(input);
            assert_eq!(diagnostics.len(), 1, "{what}: {:?}", &diagnostics[..3]);
            assert!(diagnostics[0].message.contains(message), "{what}: {}", diagnostics[0].message);
            // What was built before the limit was met, and the nodes around it.
            assert!(depth(&expr) <= MAX_EXPR_DEPTH + 2, "{what}: depth {}", depth(&expr));
        }
        let wide = format!("rowtotal(1{})", ",1".repeat(10_000));
        let (_, diagnostics) = parse_all(&wide);
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.contains("more than 5000 parts"));
    }

    #[test]
    fn expressions_up_to_the_limit_still_parse() {
        let nested = format!("{}1{}", "(".repeat(90), ")".repeat(90));
        let chain = format!("1{}", "+1".repeat(99));
        for input in [&nested, &chain] {
            let (_, diagnostics) = parse_all(input);
            assert!(diagnostics.is_empty(), "{diagnostics:?}");
        }
        let (_, diagnostics) = parse_all(&format!("1{}", "+1".repeat(100)));
        assert_eq!(diagnostics.len(), 1);
    }

    #[test]
    fn parsing_stops_at_what_is_not_an_expression() {
        check(
            "x + 1 if y",
            expect![[r#"
            (Add x 1)
            rest: "if y""#]],
        );
    }
}
