//! Fixtures for unit tests: small synthetic datastores.

use std::path::Path;
use std::sync::OnceLock;

use crate::AppState;
use crate::datastore::generate::{GenerateOptions, generate};
use crate::settings::Settings;

/// A `demo` datastore of `persons` generated under a new temporary root.
pub fn generated(persons: u64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let options =
        GenerateOptions { persons, seed, out: dir.path().to_owned(), force: false, threads: 2 };
    let report = generate(&options, &|_, _| {}).expect("the demo generates");
    assert_eq!(report.persons, persons);
    dir
}

/// A 3 000-person `demo` datastore, generated once per test binary.
pub fn small_demo() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| generated(3_000, 11)).path()
}

pub fn demo_state() -> AppState {
    let settings = Settings { datastores: small_demo().to_owned(), ..Settings::default() };
    let audit = std::sync::Arc::new(crate::disclosure::audit::MemoryAudit::default());
    AppState::with_audit(&settings, audit).expect("the demo loads")
}
