//! Fixtures for unit tests: one small synthetic datastore, generated once per test binary.

use std::path::Path;
use std::sync::OnceLock;

use crate::AppState;
use crate::datastore::generate::{GenerateOptions, generate};
use crate::settings::Settings;

/// A 3 000-person `demo` datastore under a temporary root.
pub fn small_demo() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let options = GenerateOptions {
            persons: 3_000,
            seed: 11,
            out: dir.path().to_owned(),
            force: false,
            threads: 2,
        };
        generate(&options, &|_, _| {}).expect("the demo generates");
        dir
    })
    .path()
}

pub fn demo_state() -> AppState {
    let settings = Settings { datastores: small_demo().to_owned(), ..Settings::default() };
    AppState::load(&settings).expect("the demo loads")
}
