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
    demo_state_with(Settings::default(), std::sync::Arc::new(crate::identity::SystemClock)).0
}

/// The demo with these settings (their datastores replaced), an application database in
/// memory, the given clock, and the audit log to read back.
pub fn demo_state_with(
    settings: Settings,
    clock: std::sync::Arc<dyn crate::identity::Clock>,
) -> (AppState, std::sync::Arc<crate::disclosure::audit::MemoryAudit>) {
    let settings = Settings { datastores: small_demo().to_owned(), ..settings };
    let audit = std::sync::Arc::new(crate::disclosure::audit::MemoryAudit::default());
    let store = std::sync::Arc::new(crate::identity::SqliteStore::in_memory().unwrap());
    let state = AppState::assemble(&settings, audit.clone(), store, clock).expect("the demo loads");
    (state, audit)
}
