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

/// Reads expressions from a run of tokens (trivia already removed).
pub struct ExprParser<'a> {
    source: &'a str,
    tokens: &'a [Token],
    pos: usize,
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
        ExprParser { source, tokens, pos: 0, diagnostics: Vec::new() }
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
        self.expr(0)
    }

    fn expr(&mut self, min_power: u8) -> Expr {
        let mut lhs = self.prefix();
        while let Some(token) = self.peek() {
            let Some((op, left, right)) = binary_op(token.kind) else { break };
            if left < min_power {
                break;
            }
            self.pos += 1;
            let rhs = if self.peek().is_some() {
                self.expr(right)
            } else {
                let operator = token.span.text(self.source).to_owned();
                self.error(token.span, format!("'{operator}' needs a value after it"))
            };
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
        }
        lhs
    }

    fn prefix(&mut self) -> Expr {
        let Some(token) = self.peek() else {
            let here = self.here();
            return self.error(here, "an expression is missing here");
        };
        let text = token.span.text(self.source);
        self.pos += 1;
        match token.kind {
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
                self.call(token)
            }
            TokenKind::Ident => Expr::Variable { name: text.to_owned(), span: token.span },
            TokenKind::Minus | TokenKind::Bang => {
                let op = if token.kind == TokenKind::Minus { UnaryOp::Neg } else { UnaryOp::Not };
                let operand = self.expr(PREFIX_POWER);
                let span = Span { start: token.span.start, end: operand.span().end };
                Expr::Unary { op, operand: Box::new(operand), span }
            }
            TokenKind::LParen => {
                let inner = self.expr(0);
                self.expect_close(token.span);
                inner
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
        }
    }

    fn call(&mut self, name: Token) -> Expr {
        let open = self.peek().expect("checked by the caller").span;
        self.pos += 1;
        let mut args = Vec::new();
        if self.peek().is_some_and(|t| t.kind == TokenKind::RParen) {
            self.pos += 1;
        } else {
            loop {
                args.push(self.expr(0));
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
        Expr::Call {
            function: name.span.text(self.source).to_owned(),
            function_span: name.span,
            args,
            span: Span { start: name.span.start, end },
        }
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
