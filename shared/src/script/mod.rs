//! The analysis language (the microdata.no dialect): lexer, expression parser, command parser
//! and the command catalogue. Runs in the browser (diagnostics as you type) and on the server,
//! so it depends on nothing but `std` and serde.

pub mod catalog;
pub mod complete;
pub mod expr;
pub mod lexer;
pub mod parse;
pub mod typed;

pub use catalog::Verb;
pub use expr::{BinaryOp, Expr, ExprParser, UnaryOp};
pub use lexer::{Token, TokenKind, lex};
pub use parse::{Command, CommandOption, Item, Script, parse};
pub use typed::{OptionValue, Typed, TypedOption};

/// A byte range of the script text. `u32` keeps tokens small; scripts are far below 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    pub fn text(self, source: &str) -> &str {
        &source[self.start as usize..self.end as usize]
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// A problem found in a script, located by byte span; line and column are derived for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(source: &str, offset: u32) -> (usize, usize) {
    let before = &source[..(offset as usize).min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
