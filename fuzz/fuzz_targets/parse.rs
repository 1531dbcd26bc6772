//! Any text must parse without panicking, and every span must point into the text on character
//! boundaries (the editor slices the text with them). `cargo fuzz run parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::script::{Span, parse};

fn check(source: &str, span: Span) {
    assert!(span.start <= span.end && span.end as usize <= source.len());
    assert!(
        source.is_char_boundary(span.start as usize) && source.is_char_boundary(span.end as usize)
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        for span in parse(source).spans() {
            check(source, span);
        }
    }
});
