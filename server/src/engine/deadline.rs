//! The run's time limit, seen from inside a command.
//!
//! The engine's timeout fires only at an await point; an estimator iterating on the CPU never
//! reaches one, so a run over its limit would go on until the estimator gave up by itself.
//! The deadline is set as a task-local for each command's future, and long loops ask
//! [`expired`] between iterations and stop early; the engine then reports the time limit, not
//! the estimator's failure to converge.

use std::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `command` with `deadline` visible to [`expired`] in every poll.
pub(super) async fn within<F: Future>(deadline: Instant, command: F) -> F::Output {
    DEADLINE.scope(deadline, command).await
}

/// The same, for synchronous code (tests and callers outside a task).
#[cfg(test)]
pub(super) fn within_sync<R>(deadline: Instant, work: impl FnOnce() -> R) -> R {
    DEADLINE.sync_scope(deadline, work)
}

/// Whether the current command is past the run's time limit. Outside a run (no deadline
/// set) nothing expires.
pub(crate) fn expired() -> bool {
    DEADLINE.try_with(|deadline| Instant::now() > *deadline).unwrap_or(false)
}
