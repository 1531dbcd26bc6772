//! Security headers every response carries, and the Content-Security-Policy for the app.
//!
//! The policy allows only this origin's scripts, the app's WebAssembly (`'wasm-unsafe-eval'`)
//! and, by hash, the inline module Trunk writes into `index.html` to start it. The hashes are
//! taken from the built `index.html` when the server starts, so a rebuilt app needs no
//! configuration; an inline script anyone adds later without rebuilding does not run.

use std::path::Path;

use axum::http::HeaderValue;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// `'sha256-…'` for every inline `<script>` (one without `src`) of an HTML page.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else { break };
        let tag = &after[..open_end];
        let body = &after[open_end + 1..];
        let Some(close) = body.find("</script>") else { break };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..close]);
            let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
            hashes.push(format!("'sha256-{encoded}'"));
        }
        rest = &body[close..];
    }
    hashes
}

/// The policy for the app in `app_dir` (its `index.html` may be missing: then no inline
/// script may run).
pub fn content_security_policy(app_dir: &Path) -> HeaderValue {
    let html = std::fs::read_to_string(app_dir.join("index.html")).unwrap_or_default();
    let hashes = inline_script_hashes(&html).join(" ");
    let policy = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {hashes}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_scripts_with_src_are_not() {
        let html = r#"<script src="/public/passkey.js"></script><script type="module">import init from '/app.js';init();</script>"#;
        let digest = Sha256::digest(b"import init from '/app.js';init();");
        let expected = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(inline_script_hashes(html), vec![format!("'sha256-{expected}'")]);
        assert!(inline_script_hashes("<script>unclosed").is_empty());
    }
}
