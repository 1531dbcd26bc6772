//! Turning script text into tokens. Lossless: every byte belongs to exactly one token
//! (whitespace and comments included), so the editor can highlight from the same tokens and
//! spans always point into the text. Lexing never fails: unknown characters and unterminated
//! strings become `Error` tokens with a diagnostic.

use super::{Diagnostic, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Letters, digits and `_`, starting with a letter or `_`: commands, variables, options.
    Ident,
    /// `12`, `1.5`, `.5`, `1e-3`.
    Number,
    /// `2021-01-01`: a date literal, written as in import commands.
    Date,
    /// `'…'` or `"…"`.
    String,
    /// `$name`: a `let` binding used in a command.
    Dollar,
    Whitespace,
    /// `// …` to the end of the line.
    Comment,
    /// A line break that ends a command.
    Newline,
    /// `\` at the end of a line: the command goes on (the line break is part of this token).
    Continuation,
    /// `.` alone: the missing value; also the separator in `i.var`.
    Dot,
    EqEq,
    NotEq,
    LtEq,
    GtEq,
    Lt,
    Gt,
    Eq,
    Amp,
    Pipe,
    Bang,
    Plus,
    PlusPlus,
    Minus,
    Arrow,
    Star,
    Slash,
    Caret,
    LParen,
    RParen,
    Comma,
    Colon,
    Semicolon,
    Hash,
    HashHash,
    /// Anything the language does not know.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

impl TokenKind {
    /// Tokens the parser never sees: layout and comments.
    pub fn is_trivia(self) -> bool {
        matches!(self, TokenKind::Whitespace | TokenKind::Comment | TokenKind::Continuation)
    }
}

/// Splits `source` into tokens, with a diagnostic for every `Error` token.
pub fn lex(source: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut lexer = Lexer {
        source,
        bytes: source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        diagnostics: Vec::new(),
    };
    while lexer.pos < lexer.bytes.len() {
        lexer.next_token();
    }
    (lexer.tokens, lexer.diagnostics)
}

struct Lexer<'a> {
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    diagnostics: Vec<Diagnostic>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token { kind, span: Span::new(start, self.pos) });
    }

    fn eat_while(&mut self, f: impl Fn(u8) -> bool) {
        while self.pos < self.bytes.len() && f(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn next_token(&mut self) {
        let start = self.pos;
        let c = self.peek(0);
        let kind = match c {
            b'\n' => {
                self.pos += 1;
                TokenKind::Newline
            }
            b'\r' if self.peek(1) == b'\n' => {
                self.pos += 2;
                TokenKind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                self.eat_while(|b| matches!(b, b' ' | b'\t' | b'\r'));
                TokenKind::Whitespace
            }
            b'/' if self.peek(1) == b'/' => {
                self.eat_while(|b| b != b'\n');
                TokenKind::Comment
            }
            b'\\' => return self.continuation(start),
            b'\'' | b'"' => return self.string(start, c),
            b'$' if is_ident_start(self.peek(1)) => {
                self.pos += 1;
                self.eat_while(is_ident_continue);
                TokenKind::Dollar
            }
            b'0'..=b'9' => self.number_or_date(),
            b'.' if self.peek(1).is_ascii_digit() => self.number_or_date(),
            c if is_ident_start(c) => {
                self.eat_while(is_ident_continue);
                TokenKind::Ident
            }
            _ => self.operator(),
        };
        self.push(kind, start);
    }

    /// `\` must end its line (trailing spaces and a comment allowed); it swallows the newline.
    fn continuation(&mut self, start: usize) {
        self.pos += 1;
        let rest = &self.source[self.pos..];
        let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let before_newline = rest[..line_end].trim_end_matches('\n').trim_end_matches('\r');
        let after = before_newline.trim_start();
        if after.is_empty() || after.starts_with("//") {
            self.pos += line_end;
            self.push(TokenKind::Continuation, start);
        } else {
            self.push(TokenKind::Error, start);
            self.diagnostics.push(Diagnostic {
                span: Span::new(start, self.pos),
                message: "'\\' continues a command on the next line, so it must be the last thing on its line".into(),
            });
        }
    }

    fn string(&mut self, start: usize, quote: u8) {
        self.pos += 1;
        self.eat_while(|b| b != quote && b != b'\n');
        if self.peek(0) == quote {
            self.pos += 1;
            self.push(TokenKind::String, start);
        } else {
            self.push(TokenKind::Error, start);
            self.diagnostics.push(Diagnostic {
                span: Span::new(start, self.pos),
                message: format!(
                    "this string has no closing {}: add it before the end of the line",
                    quote as char
                ),
            });
        }
    }

    fn number_or_date(&mut self) -> TokenKind {
        let rest = &self.bytes[self.pos..];
        let is_date = rest.len() >= 10
            && rest[..4].iter().all(u8::is_ascii_digit)
            && rest[4] == b'-'
            && rest[5..7].iter().all(u8::is_ascii_digit)
            && rest[7] == b'-'
            && rest[8..10].iter().all(u8::is_ascii_digit)
            && !rest.get(10).is_some_and(|b| b.is_ascii_alphanumeric());
        if is_date {
            self.pos += 10;
            return TokenKind::Date;
        }
        self.eat_while(|b| b.is_ascii_digit());
        if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.pos += 1;
            self.eat_while(|b| b.is_ascii_digit());
        } else if self.peek(0) == b'.' && !is_ident_start(self.peek(1)) {
            // `5.` is a number; `i.var` is not reached here (it starts with a letter).
            self.pos += 1;
        }
        let exponent_digits = match (self.peek(0), self.peek(1)) {
            (b'e' | b'E', b'0'..=b'9') => 1,
            (b'e' | b'E', b'+' | b'-') if self.peek(2).is_ascii_digit() => 2,
            _ => 0,
        };
        if exponent_digits > 0 {
            self.pos += exponent_digits;
            self.eat_while(|b| b.is_ascii_digit());
        }
        TokenKind::Number
    }

    fn operator(&mut self) -> TokenKind {
        use TokenKind::*;
        let two = [self.peek(0), self.peek(1)];
        let (kind, len) = match &two {
            b"==" => (EqEq, 2),
            b"!=" => (NotEq, 2),
            b"<=" => (LtEq, 2),
            b">=" => (GtEq, 2),
            b"++" => (PlusPlus, 2),
            b"->" => (Arrow, 2),
            b"##" => (HashHash, 2),
            [b'<', _] => (Lt, 1),
            [b'>', _] => (Gt, 1),
            [b'=', _] => (Eq, 1),
            [b'&', _] => (Amp, 1),
            [b'|', _] => (Pipe, 1),
            [b'!', _] => (Bang, 1),
            [b'+', _] => (Plus, 1),
            [b'-', _] => (Minus, 1),
            [b'*', _] => (Star, 1),
            [b'/', _] => (Slash, 1),
            [b'^', _] => (Caret, 1),
            [b'(', _] => (LParen, 1),
            [b')', _] => (RParen, 1),
            [b',', _] => (Comma, 1),
            [b':', _] => (Colon, 1),
            [b';', _] => (Semicolon, 1),
            [b'#', _] => (Hash, 1),
            [b'.', _] => (Dot, 1),
            _ => {
                // One whole character, however many bytes it takes.
                let len = self.source[self.pos..].chars().next().map_or(1, char::len_utf8);
                let text = &self.source[self.pos..self.pos + len];
                self.diagnostics.push(Diagnostic {
                    span: Span::new(self.pos, self.pos + len),
                    message: format!(
                        "'{text}' has no meaning in a script; remove it or put text in quotes"
                    ),
                });
                (Error, len)
            }
        };
        self.pos += len;
        kind
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Lexes `input` and renders each non-whitespace token as `Kind "text"`, then diagnostics.
    fn check(input: &str, expected: Expect) {
        let (tokens, diagnostics) = lex(input);
        let covered: usize = tokens.iter().map(|t| t.span.len()).sum();
        assert_eq!(covered, input.len(), "tokens must cover every byte");
        let mut out = String::new();
        for t in tokens.iter().filter(|t| t.kind != TokenKind::Whitespace) {
            out.push_str(&format!("{:?} {:?}\n", t.kind, t.span.text(input)));
        }
        for d in diagnostics {
            let (line, column) = super::super::line_column(input, d.span.start);
            out.push_str(&format!("error {line}:{column}: {}\n", d.message));
        }
        expected.assert_eq(&out);
    }

    #[test]
    fn an_import_line_with_a_date_and_an_alias() {
        check(
            "import db/INNTEKT_WLONN 2021-12-31 as wage",
            expect![[r#"
                Ident "import"
                Ident "db"
                Slash "/"
                Ident "INNTEKT_WLONN"
                Date "2021-12-31"
                Ident "as"
                Ident "wage"
            "#]],
        );
    }

    #[test]
    fn hyphenated_commands_are_words_joined_by_minus() {
        check(
            "import-event db/ARBSOEK 2020-01-01 to 2020-12-31",
            expect![[r#"
                Ident "import"
                Minus "-"
                Ident "event"
                Ident "db"
                Slash "/"
                Ident "ARBSOEK"
                Date "2020-01-01"
                Ident "to"
                Date "2020-12-31"
            "#]],
        );
    }

    #[test]
    fn expressions_numbers_missing_and_factor_notation() {
        check(
            "generate x = 2021 - int(birth/100) + .5 * 1e-3 if !sysmiss(y) & y >= . \n regress y i.sex c.age##i.edu",
            expect![[r###"
                Ident "generate"
                Ident "x"
                Eq "="
                Number "2021"
                Minus "-"
                Ident "int"
                LParen "("
                Ident "birth"
                Slash "/"
                Number "100"
                RParen ")"
                Plus "+"
                Number ".5"
                Star "*"
                Number "1e-3"
                Ident "if"
                Bang "!"
                Ident "sysmiss"
                LParen "("
                Ident "y"
                RParen ")"
                Amp "&"
                Ident "y"
                GtEq ">="
                Dot "."
                Newline "\n"
                Ident "regress"
                Ident "y"
                Ident "i"
                Dot "."
                Ident "sex"
                Ident "c"
                Dot "."
                Ident "age"
                HashHash "##"
                Ident "i"
                Dot "."
                Ident "edu"
            "###]],
        );
    }

    #[test]
    fn strings_lets_comments_and_continuations() {
        check(
            "let v = wage_ ++ $year // the year\nkeep if kjonn == '1' & \\\n  fylke != \"03\"",
            expect![[r#"
                Ident "let"
                Ident "v"
                Eq "="
                Ident "wage_"
                PlusPlus "++"
                Dollar "$year"
                Comment "// the year"
                Newline "\n"
                Ident "keep"
                Ident "if"
                Ident "kjonn"
                EqEq "=="
                String "'1'"
                Amp "&"
                Continuation "\\\n"
                Ident "fylke"
                NotEq "!="
                String "\"03\""
            "#]],
        );
    }

    #[test]
    fn lexing_never_fails_and_says_what_is_wrong_where() {
        check(
            "tabulate x € y\nkeep if name == 'open\nreplace x = 1 \\ y",
            expect![[r#"
                Ident "tabulate"
                Ident "x"
                Error "€"
                Ident "y"
                Newline "\n"
                Ident "keep"
                Ident "if"
                Ident "name"
                EqEq "=="
                Error "'open"
                Newline "\n"
                Ident "replace"
                Ident "x"
                Eq "="
                Number "1"
                Error "\\"
                Ident "y"
                error 1:12: '€' has no meaning in a script; remove it or put text in quotes
                error 2:17: this string has no closing ': add it before the end of the line
                error 3:15: '\' continues a command on the next line, so it must be the last thing on its line
            "#]],
        );
    }

    #[test]
    fn a_date_needs_its_exact_shape() {
        check(
            "2021-1-01 2021-01-011 20210101",
            expect![[r#"
                Number "2021"
                Minus "-"
                Number "1"
                Minus "-"
                Number "01"
                Number "2021"
                Minus "-"
                Number "01"
                Minus "-"
                Number "011"
                Number "20210101"
            "#]],
        );
    }
}
